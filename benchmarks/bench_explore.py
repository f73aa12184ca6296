"""Schedule exploration: schedules run per minute, time to the first failing schedule and to the shrunk
one, and the minimal schedule, for the bundled exploring drill against a variant of the reference
target (default: ``inflight_reconcile_clears_new_code``, a code raised while a reconciliation is in flight
is cleared by it; ``--variant targets`` runs every variant only exploration is expected to find,
``EXPLORATION_TARGETS`` in tests/variants/launch.py). Each run is made with two generators side by side:
``aimed`` (the bundled drill: steps at time offsets or aligned to an outstanding reconciliation read) and
``baseline`` (the same drill without ``align``: the fixed-offset generator). ``aimed_rotated`` is ``aimed`` with
the pool rotated so that it starts with ``venue.freeze``: Hypothesis's first example is the first pool entry
aligned, which on the bundled pool (a book gap first) is already the bug; rotated, the search has to find it.
Prints numbers; it is not a test.

    python benchmarks/bench_explore.py [--variant inflight_reconcile_clears_new_code ...|targets] [--budget 240]
        [--seed 6 ...] [--generator aimed baseline aimed_rotated]

Times to the failures are the summed run times (start, steady state, faults, recovery, stop) of the
examples up to and including the one that failed; schedules per minute is over the exploration's wall time.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the variants' target files come from tests/variants/targets.py
from tests.variants.targets import write_variant_target  # noqa: E402

DRILL = ROOT / "drills" / "explore_1_fault_schedules.yaml"


def drill_file(generator: str, folder: Path) -> Path:
    """The bundled exploring drill, or (baseline) the same drill with time offsets only."""
    if generator == "aimed":
        return DRILL
    doc = yaml.safe_load(DRILL.read_text(encoding="utf-8"))
    params = doc["trigger"]["params"]
    if generator == "baseline":
        params.pop("align", None)
    else:  # aimed_rotated
        kinds = [e["kind"] for e in params["pool"]]
        i = kinds.index("venue.freeze")
        params["pool"] = params["pool"][i:] + params["pool"][:i]
    path = folder / DRILL.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run_once(variant: str, budget: float, seed: int, generator: str = "aimed") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        target = tmp_path / "target.yaml"
        write_variant_target(variant, target)
        drill = drill_file(generator, tmp_path)
        evidence = tmp_path / "evidence"
        # -m explore: the project's addopts leave the explore marker out of a default run
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "drills" / "test_drills.py"), "-q", "-p", "no:cacheprovider", "-m", "explore",
               f"--chaosdrill-drills={drill}", f"--chaosdrill-target={target}", f"--chaosdrill-evidence-dir={evidence}",
               f"--chaosdrill-explore-budget-s={budget}", f"--chaosdrill-explore-seed={seed}"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        folders = list(evidence.glob("runs/*/explore/explore_1_fault_schedules"))
        if not folders:
            return {"wall": wall, "rc": proc.returncode, "tail": proc.stdout[-2000:]}
        folder = folders[0]
        proof = json.loads((folder / "record.json").read_text())["steps"][0].get("proof") or {}
        minimal = folder / "minimal_drill.yaml"
        steps = yaml.safe_load(minimal.read_text())["trigger"]["params"]["steps"] if minimal.is_file() else None
        return {"wall": wall, "rc": proc.returncode, "proof": proof, "minimal": steps}


def _s(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", nargs="+", default=["inflight_reconcile_clears_new_code"],
                    help="variants of tests/variants/launch.py (none: no bug; targets: every exploration target)")
    ap.add_argument("--budget", type=float, default=240)
    ap.add_argument("--seed", type=int, nargs="+", default=[6])
    ap.add_argument("--generator", nargs="+", default=["aimed", "baseline"], choices=["aimed", "baseline", "aimed_rotated"])
    args = ap.parse_args()
    if args.variant == ["targets"]:
        from tests.variants.launch import EXPLORATION_TARGETS

        args.variant = list(EXPLORATION_TARGETS)
    rows = []
    for variant, seed, gen in ((v, s, g) for v in args.variant for s in args.seed for g in args.generator):
        r = run_once(variant, args.budget, seed, gen)
        p = r.get("proof")
        print(f"\n{gen}: variant {variant}, seed {seed}, budget {args.budget:g} s: pytest exit {r['rc']}, "
              f"{r['wall']:.0f} s wall", flush=True)
        if not p:
            print(r.get("tail", ""))
            continue
        print(f"  schedules run: {p['examples']} ({p.get('cache_hits', 0)} repeats served from the cache), "
              f"{p.get('schedules_per_minute')} schedules/minute, verdicts {p.get('verdicts')}")
        print(f"  stopped by: {p.get('stopped_by')} after {p.get('elapsed_s')} s")
        print(f"  time to first failure: {p.get('time_to_first_failure_s', '-')} s, "
              f"time to the shrunk schedule: {p.get('time_to_minimal_s', '-')} s")
        if r["minimal"] is not None:
            print(f"  minimal schedule ({len(r['minimal'])} step(s)):")
            print("    " + yaml.safe_dump(r["minimal"], sort_keys=False, default_flow_style=None).replace("\n", "\n    "))
        rows.append((gen, variant, seed, p))
    if rows:
        print("\ngenerator  variant                               seed  schedules/min  first failure  shrunk   stopped by")
        for gen, variant, seed, p in rows:
            print(f"{gen:<10} {variant:<37} {seed:>4}  {p.get('schedules_per_minute', '-'):>13}  "
                  f"{_s(p.get('time_to_first_failure_s')):>13}  {_s(p.get('time_to_minimal_s')):>7}  {p.get('stopped_by')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
