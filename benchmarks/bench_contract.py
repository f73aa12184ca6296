"""Benchmark of the status-contract engine.

    .venv/bin/python benchmarks/bench_contract.py [--seconds 1.0] [--cold-runs 10]

Prints payloads/s (medians of 10 interleaved rounds) of ``Contract.check`` (as installed: with
jsonschema-rs answering "valid" first when it is installed, and with jsonschema alone) against three
schema-only baselines (each does strictly less work than ``Contract.check``, which also runs the
contract's own rules): a fresh ``Draft202012Validator`` per payload, the fair one (one cached
``Draft202012Validator``, built once, ``iter_errors`` per payload) and, when installed,
``jsonschema_rs.validator_for`` (built once, ``iter_errors`` per payload), on one corpus of
golden and mutated payloads. Then the per-sample latency the drill path sees (one
``Contract.check`` per status sample, every 5 ms: p50/p99/max over single calls), and the CLI
cold-start time for one file (median of N subprocess runs).

Then the whole-process figure: ``chaosdrill validate-status --file 'DIR/*.json'`` over
``--files`` (3,000) payload files in one process (wall time of the subprocess, start-up
included), against the upstream way in-process: per file ``json.load`` plus a fresh
``Draft202012Validator``'s ``iter_errors``. Rounds alternate the two, and the ratio is the median
of per-round ratios. The CLI's verdicts are asserted identical to ``Contract.check`` on every
file, and its schema verdict (no [SCHEMA]/[CSP-MIN] finding) to jsonschema's on every file.
The CLI runs with bytecode caching on (a pip-installed package has compiled bytecode), in a
private ``PYTHONPYCACHEPREFIX``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from pytest_chaosdrill import resources
from pytest_chaosdrill.contract import Contract


def build_corpus(size: int, seed: int = 20261123) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid, mutated) payloads: golden fixtures and one-to-three-field mutations of them."""
    rng = random.Random(seed)
    golden = [json.loads(p.read_text()) for p in sorted(resources.fixtures_dir().glob("*.json"))]
    contract = Contract.load()
    tokens = [*contract.tiers["Kill"], *contract.tiers["ReduceOnly"], *contract.latch_codes, "REDUCEONLY_FAKE"]
    keys = list(contract.mandatory_keys)

    def mutate(p: dict[str, Any]) -> None:
        key = rng.choice(keys + ["owner_view"])
        choice = rng.randrange(6)
        if choice == 0:
            p.pop(key, None)
        elif choice == 1:
            p[key] = rng.choice([None, "x", -1, 1.5, [], {}, True])
        elif choice == 2:
            p["mode_reasons"] = rng.sample(tokens, rng.randint(0, 3))
        elif choice == 3:
            p["open_permission_blocked_latch"] = not p.get("open_permission_blocked_latch")
        elif choice == 4:
            p["trading_mode"] = rng.choice(["Active", "ReduceOnly", "Kill", "Paused"])
        else:
            view = p.setdefault("owner_view", {"unblock": []})
            if not isinstance(view, dict):  # an earlier mutation replaced it with a scalar
                view = p["owner_view"] = {"unblock": []}
            view["primary_owner_reason_code"] = rng.choice(tokens)

    valid = [copy.deepcopy(golden[i % len(golden)]) for i in range(size)]
    mutated = []
    for i in range(size):
        p = copy.deepcopy(golden[i % len(golden)])
        for _ in range(rng.randint(1, 3)):
            mutate(p)
        mutated.append(p)
    return valid, mutated


def rates(fns: dict[str, Callable[[Any], Any]], corpus: list[Any], seconds: float,
          rounds: int = 10) -> tuple[dict[str, float], dict[str, float]]:
    """Payloads/s of each function over ``corpus`` in ``rounds`` interleaved rounds.

    Returns (median rate per function, median per-round ratio of the first function to each).
    On a shared machine the load changes from second to second; a ratio taken within one
    round compares the functions under the same load, and medians drop the outlier rounds.
    """
    per_round = seconds / rounds
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            done = 0
            start = time.perf_counter()
            while True:  # whole chunks of 50 in corpus order, so every function sees the same mix
                for payload in corpus[done % len(corpus):][:50]:
                    fn(payload)
                done += min(50, len(corpus) - done % len(corpus))
                elapsed = time.perf_counter() - start
                if elapsed >= per_round:
                    break
            samples[name].append(done / elapsed)
    first = next(iter(fns))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    ratios = {name: statistics.median(a / b for a, b in zip(samples[first], v)) for name, v in samples.items()}
    return medians, ratios


def latencies(fn: Callable[[Any], Any], corpus: list[Any], calls: int) -> tuple[float, float, float]:
    """(p50, p99, max) in ms of ``calls`` single calls of ``fn``, cycling through ``corpus``.

    One call is one status sample on the drill path; its time must stay well under the
    5 ms sampling interval (p99, not the mean: a slow check delays the next sample).
    """
    times = []
    clock = time.perf_counter
    for i in range(calls):
        payload = corpus[i % len(corpus)]
        t0 = clock()
        fn(payload)
        times.append((clock() - t0) * 1000)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))], times[-1]


def cold_start(runs: int) -> tuple[float, float]:
    """Median wall time (ms) of ``chaosdrill validate-status --file one.json`` and of ``python -c pass``."""
    exe = shutil.which("chaosdrill", path=str(Path(sys.executable).parent)) or "chaosdrill"
    fixture = str(resources.fixtures_dir() / "market_data_stale.json")

    def median_ms(cmd: list[str]) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    return median_ms([exe, "validate-status", "--quiet", "--file", fixture]), median_ms([sys.executable, "-c", "pass"])


def write_files(directory: Path, count: int) -> list[Path]:
    """``count`` payload files (half golden copies, half mutated), pretty-printed like the fixtures."""
    valid, mutated = build_corpus((count + 1) // 2)
    mixed = [p for pair in zip(valid, mutated) for p in pair][:count]
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, payload in enumerate(mixed):
        path = directory / f"status_{i:05d}.json"
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def cli_files(count: int, rounds: int) -> tuple[float, float, float]:
    """(CLI payloads/s whole process, upstream payloads/s in-process, median per-round ratio)."""
    import tempfile

    from jsonschema import Draft202012Validator

    exe = shutil.which("chaosdrill", path=str(Path(sys.executable).parent)) or "chaosdrill"
    contract = Contract.load()
    schema = contract.schema
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        paths = write_files(Path(tmp) / "payloads", count)
        pattern = str(Path(tmp) / "payloads" / "*.json")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        cmd = [exe, "validate-status", "--file", pattern]

        # Verdicts first (untimed): the CLI against the in-process engine and against jsonschema.
        proc = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, env=env)
        doc = json.loads(proc.stdout)
        by_source = {r["source"]: r for r in doc["results"]}
        assert len(by_source) == count, (len(by_source), proc.stderr[:500])
        for path in paths:
            payload = json.loads(path.read_bytes())
            cli = by_source[str(path)]
            engine = [f.as_dict() for f in contract.check(payload)]
            assert cli["findings"] == engine, f"{path}: CLI and engine disagree"
            upstream_valid = next(iter(Draft202012Validator(schema).iter_errors(payload)), None) is None
            cli_schema_valid = not any(f["tag"] in ("SCHEMA", "CSP-MIN") for f in cli["findings"])
            assert upstream_valid == cli_schema_valid, f"{path}: schema verdict differs from jsonschema"
        invalid = sum(not r["valid"] for r in doc["results"])
        print(f"[files  ] verdicts identical on all {count} files ({invalid} invalid): CLI == Contract.check, "
              "schema verdict == jsonschema")

        def upstream_rate() -> float:
            sample = paths[::3]  # every third file: the same mix, a third of the time
            t0 = time.perf_counter()
            for path in sample:
                with open(path, encoding="utf-8") as fh:
                    payload = json.load(fh)
                list(Draft202012Validator(schema).iter_errors(payload))
            return len(sample) / (time.perf_counter() - t0)

        subprocess.run(cmd, capture_output=True, env=env)  # warm-up: writes the bytecode cache
        cli_rates, up_rates = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=env)
            cli_rates.append(count / (time.perf_counter() - t0))
            assert done.returncode == (1 if invalid else 0), done.stderr[:500]
            up_rates.append(upstream_rate())
    ratio = statistics.median(a / b for a, b in zip(cli_rates, up_rates))
    return statistics.median(cli_rates), statistics.median(up_rates), ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500, help="payloads per half of the corpus")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per function and corpus (10 rounds)")
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--files", type=int, default=3000, help="payload files for the whole-process CLI figure")
    parser.add_argument("--file-rounds", type=int, default=7, help="interleaved rounds of the CLI figure")
    parser.add_argument("--only-files", action="store_true", help="run only the whole-process CLI figure")
    parser.add_argument("--calls", type=int, default=20000, help="single calls for the per-sample p50/p99")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the goal says

    from jsonschema import Draft202012Validator

    if args.files > 0:
        cli, upstream, ratio = cli_files(args.files, args.file_rounds)
        print(f"[files  ] CLI validate-status --file 'DIR/*.json', {args.files:,} files, one process: "
              f"{cli:10,.0f} payloads/s (whole process)")
        print(f"[files  ] upstream per-payload Draft202012Validator + json.load, in-process: "
              f"{upstream:10,.0f} payloads/s")
        print(f"[files  ] speed-up CLI / upstream (median of {args.file_rounds} interleaved rounds): {ratio:10.1f}x")
        if args.only_files:
            return 0

    contract = Contract.load()
    schema = contract.schema
    valid, mutated = build_corpus(args.size)
    mixed = [p for pair in zip(valid, mutated) for p in pair]
    n_bad = sum(bool(contract.check(p)) for p in mutated)
    plain = Contract(contract.schema, contract.manifest, accelerate=False)  # jsonschema alone
    assert all(plain.check(p) == contract.check(p) for p in mixed), "the accelerator changed a finding"

    def baseline(payload: Any) -> list[Any]:
        return list(Draft202012Validator(schema).iter_errors(payload))

    reused = Draft202012Validator(schema)
    try:
        import jsonschema_rs
    except ImportError:  # optional: only measured where installed
        rs = None
    else:
        rs = jsonschema_rs.validator_for(schema)

    print(f"corpus: {len(valid)} valid + {len(mutated)} mutated payloads ({n_bad} of the mutated ones invalid)")
    results = {}
    for label, corpus in (("mixed", mixed), ("valid", valid), ("mutated", mutated)):
        fns: dict[str, Callable[[Any], Any]] = {"engine": contract.check, "plain": plain.check, "baseline": baseline,
                                                "cached": lambda p: list(reused.iter_errors(p))}
        if rs is not None:
            fns["rs"] = lambda p: list(rs.iter_errors(p))
        r, ratio = rates(fns, corpus, args.seconds)
        engine, base = r["engine"], r["baseline"]
        results[label] = (engine, ratio["baseline"])
        print(f"[{label:7}] engine Contract.check (schema + rules): {engine:10,.0f} payloads/s"
              f"{' (jsonschema-rs first)' if contract._schema_check.accelerator is not None else ''}")
        print(f"[{label:7}] engine, jsonschema alone:               {r['plain']:10,.0f} payloads/s")
        print(f"[{label:7}] fresh Draft202012Validator per payload: {base:10,.0f} payloads/s "
              f"(engine {ratio['baseline']:.1f}x)")
        print(f"[{label:7}] one cached Draft202012Validator:        {r['cached']:10,.0f} payloads/s "
              f"(engine {ratio['cached']:.2f}x)")
        if "rs" in r:
            print(f"[{label:7}] one cached jsonschema_rs validator:     {r['rs']:10,.0f} payloads/s "
                  f"(engine {ratio['rs']:.2f}x)")
    per_sample = {"engine Contract.check": contract.check, "engine, jsonschema alone": plain.check,
                  "cached Draft202012Validator": lambda p: list(reused.iter_errors(p))}
    if rs is not None:
        per_sample["cached jsonschema_rs"] = lambda p: list(rs.iter_errors(p))
    for label, corpus in (("valid", valid), ("mixed", mixed)):
        for name, fn in per_sample.items():
            p50, p99, worst = latencies(fn, corpus, args.calls)
            print(f"[sample ] {name:28} per call, {args.calls:,} {label} payloads: p50 {p50:.3f} ms, "
                  f"p99 {p99:.3f} ms, max {worst:.3f} ms")
    cli_ms, python_ms = cold_start(args.cold_runs)
    print(f"CLI cold start, validate-status --file (median of {args.cold_runs}): {cli_ms:.1f} ms "
          f"(bare 'python -c pass': {python_ms:.1f} ms)")
    engine, _ = results["mixed"]
    p50, p99, _ = latencies(contract.check, mixed, args.calls)
    ok = engine >= 200 and p99 < 5.0
    print(f"drill-path goal (>= 200 checks/s, one per 5 ms sample, and p99 under the 5 ms interval, mixed "
          f"corpus): {'met' if ok else 'NOT met'} ({engine:,.0f} checks/s, p99 {p99:.3f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
