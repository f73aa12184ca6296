"""Start-up cost of the plugin in a project that has no drills: an unrelated project's pytest run, with
the plugin (as installed) and with ``-p no:chaosdrill``, side by side in one run.

    .venv/bin/python benchmarks/bench_startup.py [--runs 15] [--tests 200]

Prints the median wall time of each and their ratio (goal: within 10%). The project is generated in a
temporary folder: ``--tests`` trivial tests, one parametrized over a name ``drill`` and a fixture named
``venue`` (names the plugin must leave alone).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = '''
import pytest

@pytest.fixture
def venue():
    return "theirs"

@pytest.mark.parametrize("drill", range({n}))
def test_unrelated(drill, venue):
    assert venue == "theirs"
'''


def time_once(cwd: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pytest failed in {cwd} ({' '.join(extra)}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tests", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "test_unrelated.py").write_text(PROJECT.format(n=args.tests))
        with_plugin, without = [], []
        time_once(cwd, [])                                  # warm the file system caches and .pyc files
        time_once(cwd, ["-p", "no:chaosdrill"])
        for _ in range(args.runs):                          # interleaved, so drift hits both alike
            with_plugin.append(time_once(cwd, []))
            without.append(time_once(cwd, ["-p", "no:chaosdrill"]))
    a, b = statistics.median(with_plugin), statistics.median(without)
    ratios = sorted(x / y for x, y in zip(with_plugin, without))
    print(f"unrelated project, {args.tests} tests, {args.runs} interleaved runs each (median wall time):")
    print(f"  with pytest-chaosdrill      {a * 1000:7.1f} ms")
    print(f"  with -p no:chaosdrill       {b * 1000:7.1f} ms")
    print(f"  ratio (pairwise median)     {statistics.median(ratios):7.3f}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
