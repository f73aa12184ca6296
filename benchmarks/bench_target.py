"""Measure okx_demo_api: STOP detection latency and time-to-safe per condition.

    .venv/bin/python benchmarks/bench_target.py [--repeat N] [--only book_gap,stop,...]

Time-to-safe = fault landed (venue fault record ``effective_mono`` / hook applied / file created)
-> first /status sample (sampled every ~10 ms) with OPEN blocked (trading_mode ReduceOnly or Kill).
Recovery = landed/cleared -> first sample back to Active. STOP latency = STOP file created ->
``stop_detected_mono`` in run_manifest.json (same host clock, time.monotonic()).
Prints one line per measurement and a summary (min / median / max).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from okx_demo_api.harness import TargetProcess, open_blocked
from pytest_chaosdrill.resources import default_manifest
from pytest_chaosdrill.venue import VenueServer

# what the target file hands the service: the contract's reason-code manifest
MANIFEST_ENV = {"TARGET_REASON_MANIFEST": str(default_manifest())}


def _active(st: dict) -> bool:
    return st["trading_mode"] == "Active"


def _start(venue: VenueServer, root: Path, name: str, **env: str) -> TargetProcess:
    t = TargetProcess(venue.rest_url, venue.ws_public_url, venue.ws_private_url, root / name, env={**MANIFEST_ENV, **env})
    t.start()
    t.wait_status(_active, 15, "Active")
    return t


def venue_condition(venue: VenueServer, t: TargetProcess, inject, clear=None,
                    from_request: bool = False) -> tuple[float, float]:
    """(time-to-safe, time-to-Active) in ms from the fault's effective_mono (or requested_mono)."""
    samples: list[dict] = []
    rec = inject()
    t.wait_status(open_blocked, 10, "OPEN blocked", samples)  # sampling starts at once
    landed_rec = venue.control.wait_landed(rec, 10)  # proof the fault physically happened
    # lag: effective_mono is when the first *delayed* message went out (after the delay), but the
    # silence the target must react to starts when the fault was requested.
    landed = landed_rec.requested_mono if from_request else landed_rec.effective_mono
    safe = samples[-1]["_mono"]
    if clear is not None:
        clear()
    back = t.wait_status(_active, 20, "Active again")["_mono"]
    return (safe - landed) * 1000, (back - landed) * 1000


def run(only: set[str] | None, repeat: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {}
    root = Path(tempfile.mkdtemp(prefix="bench_target_"))
    venue = VenueServer(seed=7).start()
    c = venue.control
    try:
        t = _start(venue, root, "main", TARGET_WAL_CAPACITY="16")
        try:
            cases = {
                "book_gap": (lambda: c.book_gap("BTC-USDT-SWAP", 5), None),
                "trades_gap": (lambda: c.trades_gap("ETH-USDT-SWAP", "skip", 3), None),
                "freeze": (lambda: c.freeze(), lambda: (time.sleep(0.2), c.clear("freeze"))),
                "lag_3000": (lambda: c.lag(3000), lambda: c.clear("lag")),  # measured from the request
                "session_termination": (lambda: c.session_termination(0.5), None),
                "partial_fill": (lambda: c.partial_fill(), None),
            }
            for name, (inject, clear) in cases.items():
                if only and name not in only:
                    continue
                for _ in range(repeat):
                    t.wait_status(_active, 20, "Active before trigger")
                    r = venue_condition(venue, t, inject, clear, from_request=name.startswith("lag"))
                    results.setdefault(name, []).append(r)
                    print(f"{name:22s} time_to_safe_ms={r[0]:8.1f} recovery_ms={r[1]:8.1f}", flush=True)
            if not only or "wal_stall" in only:
                for _ in range(repeat):
                    t.wait_status(_active, 20, "Active before trigger")
                    n0 = len(t.hooks_log())
                    t.touch_control("wal_stall")
                    applied = t.wait_for(lambda: [h for h in t.hooks_log()[n0:] if h["event"] == "applied"], 5)[0]
                    safe = t.wait_status(open_blocked, 30, "OPEN blocked")["_mono"]
                    (t.control_dir / "wal_stall").unlink()
                    back = t.wait_status(_active, 20, "Active again")["_mono"]
                    r = ((safe - applied["mono"]) * 1000, (back - applied["mono"]) * 1000)
                    results.setdefault("wal_stall(cap=16)", []).append(r)
                    print(f"{'wal_stall(cap=16)':22s} time_to_safe_ms={r[0]:8.1f} recovery_ms={r[1]:8.1f} "
                          f"(from hook applied)", flush=True)
        finally:
            t.stop()
        if not only or "unknown_token" in only:
            for i in range(repeat):
                t = _start(venue, root, f"tok{i}")
                try:
                    t.touch_control("emit_reason_token", "CORTEX_NOT_A_REAL_TOKEN")
                    applied = t.wait_for(lambda: t.hooks_log(), 5)[0]
                    safe = t.wait_status(lambda s: s["trading_mode"] == "Kill", 5, "Kill")["_mono"]
                    r = ((safe - applied["mono"]) * 1000, float("nan"))
                    results.setdefault("unknown_token", []).append(r)
                    print(f"{'unknown_token':22s} time_to_safe_ms={r[0]:8.1f} (not resumable)", flush=True)
                finally:
                    t.stop()
        if not only or "stop" in only:
            for i in range(repeat):
                t = _start(venue, root, f"stop{i}")
                try:
                    created = t.touch_control("STOP")
                    rc = t.proc.wait(10)
                    exited = time.monotonic()
                    m = t.read_json("run_manifest.json")
                    r = ((m["stop_detected_mono"] - created) * 1000, (exited - created) * 1000)
                    results.setdefault("stop", []).append(r)
                    print(f"{'stop':22s} detection_ms={r[0]:8.1f} exit_ms={r[1]:8.1f} rc={rc} status={m['status']}",
                          flush=True)
                finally:
                    t.stop()
        if not only or "restart" in only:
            for i in range(repeat):
                t = _start(venue, root, f"crash{i}")
                t.kill()
                t2 = TargetProcess(venue.rest_url, venue.ws_public_url, venue.ws_private_url, t.workdir,
                                   env=MANIFEST_ENV)
                t0 = time.monotonic()
                try:
                    t2.start()
                    first = t2.wait_status(lambda s: True, 5, "first status")
                    back = t2.wait_status(_active, 20, "Active after restart")["_mono"]
                    r = ((first["_mono"] - t0) * 1000, (back - t0) * 1000)
                    results.setdefault("restart", []).append(r)
                    print(f"{'restart':22s} first_status_ms={r[0]:8.1f} (latched={first['open_permission_reason_codes']}) "
                          f"active_ms={r[1]:8.1f}", flush=True)
                finally:
                    t2.stop()
    finally:
        venue.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    results = run(only, args.repeat)
    print("\nsummary (ms): condition  time_to_safe min/median/max  |  second figure median")
    for name, rs in results.items():
        a = [r[0] for r in rs]
        b = [r[1] for r in rs if r[1] == r[1]]
        print(f"  {name:22s} {min(a):7.1f} {statistics.median(a):7.1f} {max(a):7.1f}  |  "
              f"{statistics.median(b) if b else float('nan'):7.1f}")


if __name__ == "__main__":
    main()
