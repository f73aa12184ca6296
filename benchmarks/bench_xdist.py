"""Serial vs pytest-xdist for the Phase 2 drills: wall time side by side in one run, same verdicts.

    .venv/bin/python benchmarks/bench_xdist.py [--workers 2] [--rounds 1]

Each round runs ``pytest drills -m phase2`` serially and with ``-n WORKERS`` (alternating), each into
its own evidence folder, then compares the per-drill verdicts from the evidence (they must agree) and
prints the median wall time of each and the speed-up.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(evidence: Path, extra: list[str]) -> tuple[float, dict[str, str]]:
    cmd = [sys.executable, "-m", "pytest", "drills", "-m", "phase2", "-q", "-p", "no:cacheprovider",
           f"--chaosdrill-evidence-dir={evidence}", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    verdicts = {json.loads(m.read_text())["drill"]: json.loads(m.read_text())["verdict"]
                for m in evidence.glob("runs/*/phase2/*/meta.json")}
    runs = list(evidence.glob("runs/*"))
    if proc.returncode not in (0, 1) or len(runs) != 1:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}, {len(runs)} run folder(s)\n{proc.stdout[-3000:]}")
    return wall, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    serial, parallel = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            ws, vs = run(Path(tmp) / f"serial{r}", [])
            wp, vp = run(Path(tmp) / f"xdist{r}", ["-n", str(args.workers)])
            serial.append(ws)
            parallel.append(wp)
            same = "same verdicts" if vs == vp else f"VERDICTS DIFFER: serial {vs} / xdist {vp}"
            print(f"round {r + 1}: serial {ws:.1f} s, -n {args.workers} {wp:.1f} s; {len(vs)} drills, {same}")
    a, b = statistics.median(serial), statistics.median(parallel)
    print(f"median wall time: serial {a:.1f} s, -n {args.workers} {b:.1f} s, speed-up {a / b:.2f}x "
          f"(one run folder per session in both)")


if __name__ == "__main__":
    main()
