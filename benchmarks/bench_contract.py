"""Benchmark of the status-contract engine.

    .venv/bin/python benchmarks/bench_contract.py [--seconds 1.0] [--cold-runs 10]

Prints payloads/s (medians of 10 interleaved rounds) of ``Contract.check`` against a baseline that builds a fresh
``Draft202012Validator`` per payload (schema only, so the baseline does strictly
less work), on one corpus of golden and mutated payloads, plus the CLI cold-start
time for one file (median of N subprocess runs).
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
            p.setdefault("owner_view", {"unblock": []})["primary_owner_reason_code"] = rng.choice(tokens)

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=500, help="payloads per half of the corpus")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per function and corpus (10 rounds)")
    parser.add_argument("--cold-runs", type=int, default=10)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the goal says

    from jsonschema import Draft202012Validator

    contract = Contract.load()
    schema = contract.schema
    valid, mutated = build_corpus(args.size)
    mixed = [p for pair in zip(valid, mutated) for p in pair]
    n_bad = sum(bool(contract.check(p)) for p in mutated)

    def baseline(payload: Any) -> list[Any]:
        return list(Draft202012Validator(schema).iter_errors(payload))

    reused = Draft202012Validator(schema)

    print(f"corpus: {len(valid)} valid + {len(mutated)} mutated payloads ({n_bad} of the mutated ones invalid)")
    results = {}
    for label, corpus in (("mixed", mixed), ("valid", valid), ("mutated", mutated)):
        fns: dict[str, Callable[[Any], Any]] = {"engine": contract.check, "baseline": baseline}
        if label == "mixed":
            fns["reused"] = lambda p: list(reused.iter_errors(p))
        r, ratio = rates(fns, corpus, args.seconds)
        engine, base = r["engine"], r["baseline"]
        results[label] = (engine, ratio["baseline"])
        print(f"[{label:7}] engine Contract.check:                  {engine:10,.0f} payloads/s")
        print(f"[{label:7}] baseline fresh Draft202012Validator:    {base:10,.0f} payloads/s")
        print(f"[{label:7}] speed-up engine / baseline:             {ratio['baseline']:10.1f}x")
        if "reused" in r:
            print(f"[{label:7}] (info) one reused Draft202012Validator: {r['reused']:9,.0f} payloads/s")
    cli_ms, python_ms = cold_start(args.cold_runs)
    print(f"CLI cold start, validate-status --file (median of {args.cold_runs}): {cli_ms:.1f} ms "
          f"(bare 'python -c pass': {python_ms:.1f} ms)")
    engine, speedup = results["mixed"]
    ok = engine >= 10_000 and speedup >= 10
    print(f"goal (>= 10,000 payloads/s and >= 10x baseline on the mixed corpus): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
