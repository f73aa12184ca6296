"""How long ``chaosdrill halt`` takes to stop every running drill: from the halt file written to each
drill's evidence saying HALTED (fault released, target stopped) and to every pytest process gone.

    .venv/bin/python benchmarks/bench_halt.py [--rounds 3]

Each round starts a session with 2 xdist workers (one drill each) and a second session (one drill),
every drill a 60 s market-data freeze; once all three faults have landed it writes the halt file
(moved to a temp folder with CHAOSDRILL_HALT_FILE, so other runs on the machine are untouched) and
polls every 10 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FREEZE = """
id: {id}
title: a long stale feed (halt benchmark)
markers: [phase2]
trigger: {{kind: venue.freeze, params: {{channels: [books, trades]}}, hold_s: 60}}
time_to_safe_budget_ms: 5000
expected: {{}}
checks: [no_open_dispatch_while_blocked]
recovery: {{kind: reconcile, timeout_s: 20}}
timeout_s: 120
"""


def wait(what: str, check, timeout: float, poll: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def one_round(tmp: Path) -> tuple[float, float]:
    halt = tmp / "HALT"
    env = {**os.environ, "CHAOSDRILL_HALT_FILE": str(halt)}
    procs = []
    for name, ids, extra in (("a", ["halt_a_one", "halt_a_two"], ["-n", "2"]), ("b", ["halt_b_one"], [])):
        drills = tmp / f"drills_{name}"
        drills.mkdir()
        for i in ids:
            (drills / f"{i}.yaml").write_text(FREEZE.format(id=i))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "drills/test_drills.py", f"--chaosdrill-drills={drills}", *extra, "-q",
             "-p", "no:cacheprovider", f"--chaosdrill-evidence-dir={tmp / ('evidence_' + name)}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        def landed() -> bool:
            return sum("fault_landed" in p.read_text() for p in tmp.glob("evidence_*/runs/*/phase2/*/marks.partial.json")) == 3
        wait("all three faults to land", landed, 180, poll=0.1)
        t0 = time.monotonic()
        halt.write_text(json.dumps({"reason": "benchmark"}))

        def halted() -> bool:
            metas = list(tmp.glob("evidence_*/runs/*/phase2/*/meta.json"))
            return len(metas) == 3 and all("HALTED" in json.loads(m.read_text()).get("reason", "") for m in metas)
        wait("every drill's evidence to say HALTED", halted, 60)
        t_evidence = time.monotonic() - t0
        wait("every pytest process to exit", lambda: all(p.poll() is not None for p in procs), 60)
        t_exit = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return t_evidence, t_exit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ev, ex = [], []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = one_round(Path(tmp))
        ev.append(a)
        ex.append(b)
        print(f"round {r + 1}: all 3 drills HALTED with evidence after {a:.2f} s, every process gone after {b:.2f} s")
    print(f"halt bound over {args.rounds} round(s): evidence median {statistics.median(ev):.2f} s, max {max(ev):.2f} s; "
          f"processes gone median {statistics.median(ex):.2f} s, max {max(ex):.2f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
