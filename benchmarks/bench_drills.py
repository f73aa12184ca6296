"""Wall time of the whole ``pytest -m phase2`` run, each drill's time-to-safe, and the status
sampling interval actually achieved. Prints numbers; it is not a test.

    python benchmarks/bench_drills.py [--marker phase2] [--backend process] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(marker: str, backend: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        evidence = Path(tmp) / "evidence"
        cmd = [sys.executable, "-m", "pytest", "drills", "-m", marker, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", f"--chaosdrill-evidence-dir={evidence}", f"--chaosdrill-backend={backend}"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        drills = []
        for case in ET.parse(junit).getroot().iter("testcase"):
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            folder = Path(props.get("evidence_folder", ""))
            meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
            sampling = meta.get("facts", {}).get("sampling", {})
            drills.append({"drill": props.get("drill_id"), "verdict": props.get("verdict"),
                           "tts": float(props["time_to_safe_ms"]) if props.get("time_to_safe_ms") else None,
                           "budget": meta.get("facts", {}).get("budget_ms"),
                           "p50": sampling.get("p50_ms"), "p99": sampling.get("p99_ms"), "max": sampling.get("max_ms"),
                           "samples": sampling.get("count"), "seconds": float(case.get("time", 0))})
        return {"wall": wall, "rc": proc.returncode, "drills": drills, "tail": proc.stdout[-400:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--marker", default="phase2")
    ap.add_argument("--backend", default="process")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    walls = []
    for n in range(args.repeat):
        r = run_once(args.marker, args.backend)
        walls.append(r["wall"])
        print(f"\nrun {n + 1}: pytest -m {args.marker} --chaosdrill-backend {args.backend}: "
              f"{r['wall']:.1f} s wall, exit {r['rc']}, {len(r['drills'])} drills (goal: <= 60 s for the 8 Phase 2 drills)")
        print(f"{'drill':30} {'verdict':10} {'tts ms':>8} {'test s':>7} {'samples':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for d in r["drills"]:
            f = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"  # noqa: E731
            print(f"{d['drill'] or '?':30} {d['verdict'] or '?':10} {f(d['tts'], '8.1f')} {d['seconds']:7.1f} "
                  f"{f(d['samples'], '8d')} {f(d['p50'], '7.2f')} {f(d['p99'], '7.2f')} {f(d['max'], '7.2f')}")
        if r["rc"] != 0:
            print(r["tail"])
    if len(walls) > 1:
        print(f"\nwall time over {len(walls)} runs: median {statistics.median(walls):.1f} s, "
              f"min {min(walls):.1f} s, max {max(walls):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
