"""Checks on what the service said (its status samples): mode, latch and its clearing, event lag,
counters, the loop's heartbeat, the restart latch."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import CheckResult
from .ledger import held_recon_reads, recon_reads

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord
    from ..timeline import Sample


def mode_held(rec: "DrillRecord", mode: str) -> CheckResult:
    """Every status from the first safe sample until recovery reports ``mode``."""
    window = rec.blocked_window_samples()
    if not window:
        return CheckResult("mode_held", None, "no status sample in the blocked window")
    wrong = [s for s in window if s.status.get("trading_mode") != mode]
    if wrong:
        s = wrong[0]
        return CheckResult("mode_held", False, f"{len(wrong)} of {len(window)} samples not {mode}; first: sample "
                           f"{s.i} trading_mode={s.status.get('trading_mode')!r}")
    return CheckResult("mode_held", True, f"all {len(window)} samples in the blocked window report {mode}")


def latch_set_with(rec: "DrillRecord", code: str) -> CheckResult:
    """Latch set with the drill's reason code: after the trigger a status sample has the open-permission
    latch set and ``code`` among its open_permission_reason_codes."""
    s = rec.timeline.first(lambda x: x.latched and code in (x.status.get("open_permission_reason_codes") or []),
                           start=rec.t_trigger)
    if s is None:
        return CheckResult("latch_set_with", False, f"no status sample after the trigger has the latch set with {code}")
    ms = (s.mono - rec.t_safe_origin) * 1000
    return CheckResult("latch_set_with", True, f"latch set with {code} at sample {s.i}, {ms:.0f} ms after the fault landed")


def latch_clears_only_after_reconcile(rec: "DrillRecord") -> CheckResult:
    """Latch clears only after reconciliation succeeds: it stayed set while the fault was active, and cleared
    only after the venue served both reconciliation reads (positions and open orders) made after the
    fault's condition ended.

    The clear happened after the last latched sample's request was sent and before the first clear sample
    was answered. A read the venue served before that last latched request is proven to precede the clear.
    When the reads fall between the two samples, the service's own clear time decides where it exposes one
    (``latch_events`` in execution_fingerprint.json, on a target that shares the host monotonic clock):
    a clear before a read is a FAIL, after the reads a PASS. Without it the order is not provable: NOT PROVEN.
    (``last_policy_update_ts`` is no clear time: the contract defines it as the last policy update.)
    """
    name = "latch_clears_only_after_reconcile"
    first = rec.timeline.first(lambda s: s.latched, start=rec.t_trigger)
    if first is None:
        return CheckResult(name, None, "the latch was never observed set")
    cleared = rec.timeline.first(lambda s: s.ok and not s.latched, start=first.mono)
    if cleared is None:
        return CheckResult(name, None, "the latch was never observed to clear")
    last_latched = [s for s in rec.timeline.between(first.sent_mono, cleared.mono) if s.latched and s.i < cleared.i]
    last = last_latched[-1] if last_latched else first
    ended = rec.t_condition_ended
    if ended is not None and cleared.mono < ended:
        return CheckResult(name, False, f"latch cleared at sample {cleared.i} while the fault was still active "
                           f"({(ended - cleared.mono) * 1000:.0f} ms before it ended)")
    since = ended if ended is not None else first.sent_mono
    reads = recon_reads(rec.ledger, since, cleared.mono)
    missing = [k for k, v in reads.items() if not v]
    held = held_recon_reads(rec.ledger, since)
    early = [k for k in missing if any(r <= cleared.mono < a for r, a in held[k])]
    if early:
        k = early[0]
        r, a = min(((r, a) for r, a in held[k] if a > cleared.mono), key=lambda x: x[1])
        return CheckResult(name, False, f"latch seen clear at sample {cleared.i}, {(a - cleared.mono) * 1000:.0f} ms before "
                           f"the venue answered the {k} read (received {(cleared.mono - r) * 1000:.0f} ms before the clear, "
                           "its answer held): the clear did not wait for reconciliation")
    if missing:
        return CheckResult(name, False, f"latch cleared at sample {cleared.i} but the venue saw no {' / '.join(missing)} "
                           f"read between the end of the fault and the clear")
    # The earliest read of each kind: the clear needs one of each before it.
    earliest = {k: min(v) for k, v in reads.items()}
    latest_needed = max(earliest.values())
    counts = f"({len(reads['positions'])} positions, {len(reads['orders_pending'])} open-orders)"
    if latest_needed <= last.sent_mono:
        return CheckResult(name, True, f"latch still set at sample {last.i}, sent {(last.sent_mono - latest_needed) * 1000:.0f} ms "
                           f"after the venue served the reconciliation reads {counts}; clear at sample {cleared.i}")
    # The venue held the answers (recon_hold): the service asked, was still latched after asking (the
    # last latched sample was sent after the reads arrived) and was seen clear only after the answers left.
    window = cleared.mono - last.sent_mono
    asked = {k: min((x for x in held[k] if x[1] == earliest[k]), default=None) for k in earliest}
    if all(x is not None and x[0] <= last.sent_mono and x[1] - x[0] > window for x in asked.values()):
        longest = min(last.sent_mono - x[0] for x in asked.values() if x is not None)
        return CheckResult(name, True, f"the venue held the reconciliation answers {counts}: latch still set at sample "
                           f"{last.i}, {longest * 1000:.0f} ms after the target asked, and seen clear at sample "
                           f"{cleared.i}, after the answers left (to within one sampling window, {window * 1000:.0f} ms)")
    clear = _service_clear_mono(rec, last.sent_mono, cleared.mono)
    if clear is not None:
        late = {k: m for k, m in earliest.items() if m > clear}
        if late:
            k, m = next(iter(late.items()))
            return CheckResult(name, False, f"the target cleared the latch (its latch_events) {(m - clear) * 1000:.1f} ms "
                               f"before the venue received the {k} read: the clear did not wait for reconciliation")
        return CheckResult(name, True, f"the target cleared the latch (its latch_events) {(clear - latest_needed) * 1000:.1f} ms "
                           f"after the venue received the reconciliation reads {counts}; clear seen at sample {cleared.i}")
    return CheckResult(name, None, f"the reconciliation reads {counts} and the clear both fell between samples {last.i} and "
                       f"{cleared.i}, and the target exposes no clear time (execution_fingerprint.json latch_events): "
                       "order not provable")


def _service_clear_mono(rec: "DrillRecord", after: float, before: float) -> float | None:
    """The target's own time of the latch clear between ``after`` and ``before``: the last ``clear`` event of
    ``latch_events`` (``{"event": "clear", "mono": <CLOCK_MONOTONIC s>}``) in the status samples or in
    execution_fingerprint.json, when the target shares the harness's monotonic clock (its backend's
    ``shares_host_clock``: process, docker, kubernetes with ``node_access: local``)."""
    if not rec.host_clock:
        return None
    # every read of the file (mid-run and after the recovery, then at the end): a service may write its
    # clear event after its status showed the clear
    fps = [snap.get("content") for snap in rec.fingerprint_midrun] + [rec.files.get("fingerprint")]
    sources = [fp.get("latch_events") for fp in fps if isinstance(fp, dict)]
    sources += [s.status.get("latch_events") for s in rec.samples if s.ok and s.mono >= before - 1e-9][:3]
    clears = [e["mono"] for events in sources if isinstance(events, list) for e in events
              if isinstance(e, dict) and e.get("event") == "clear" and isinstance(e.get("mono"), (int, float))
              and not isinstance(e.get("mono"), bool) and after <= e["mono"] <= before]
    return max(clears) if clears else None


def ws_event_lag_reflects(rec: "DrillRecord", ms: float | None = None, tolerance_ms: float = 400.0) -> CheckResult:
    """The reported ``ws_event_lag_ms`` tracks the real lag: with ``ms`` (an injected delay) its peak is
    within the tolerance of ``ms``; without it (a frozen feed) every sample during the fault is within the
    tolerance of the time since the feed stopped, as it was at some instant between the sample's request
    and its answer."""
    origin = rec.t_safe_origin
    window = [s for s in rec.timeline.between(origin, rec.t_condition_ended) if s.ok
              and isinstance(s.status.get("ws_event_lag_ms"), (int, float))]
    if not window or origin is None:
        return CheckResult("ws_event_lag_reflects", None, "no sample with ws_event_lag_ms during the fault")
    if ms is not None:
        peak = max(s.status["ws_event_lag_ms"] for s in window)
        return CheckResult("ws_event_lag_reflects", abs(peak - ms) <= tolerance_ms,
                           f"peak ws_event_lag_ms={peak} during the fault; injected lag {ms} ms (±{tolerance_ms} ms)")

    # The service measured its lag at some instant between the sample's request and its answer; only that
    # interval is observed, so a sample deviates by its distance from it (a slow answer on a loaded machine
    # is the harness's uncertainty, not the service's error).
    def deviation(s: "Sample") -> float:
        lo, hi = (s.sent_mono - origin) * 1000, (s.mono - origin) * 1000
        reported = s.status["ws_event_lag_ms"]
        return reported - hi if reported > hi else (reported - lo if reported < lo else 0.0)

    worst = max(window, key=lambda s: abs(deviation(s)))
    ok = abs(deviation(worst)) <= tolerance_ms
    lo, hi = (worst.sent_mono - origin) * 1000, (worst.mono - origin) * 1000
    return CheckResult("ws_event_lag_reflects", ok,
                       f"{len(window)} samples during the fault; largest deviation at sample {worst.i}: reported "
                       f"{worst.status['ws_event_lag_ms']} ms, feed silent for {lo:.0f} ms when it was requested and "
                       f"{hi:.0f} ms when it was answered (±{tolerance_ms} ms)")


def counter_increased(rec: "DrillRecord", field: str) -> CheckResult:
    """The status counter ``field`` rose above its pre-fault value after the trigger (the service counted the fault)."""
    base = rec.baseline.status.get(field) if rec.baseline else None
    if not isinstance(base, (int, float)):
        return CheckResult("counter_increased", None, f"no pre-fault value of {field}")
    window = [s.status.get(field) for s in rec.timeline.between(rec.t_trigger, rec.t_end) if s.ok]
    values = [v for v in window if isinstance(v, (int, float))]
    peak = max(values, default=base)
    return CheckResult("counter_increased", peak > base, f"{field}: {base} before the fault, peak {peak} after")


def loop_keeps_ticking(rec: "DrillRecord", max_gap_ms: float = 1000.0) -> CheckResult:
    """The decision loop keeps ticking while OPEN is blocked: loop_tick_last_ts_ms advances, no gap above ``max_gap_ms``."""
    ticks = [s.status.get("loop_tick_last_ts_ms") for s in rec.blocked_window_samples()]
    ticks = [t for t in ticks if isinstance(t, int)]
    distinct = sorted(set(ticks))
    if len(distinct) < 3:
        return CheckResult("loop_keeps_ticking", False, f"loop_tick_last_ts_ms took only {len(distinct)} distinct value(s) "
                           "while OPEN was blocked")
    gap = max(b - a for a, b in zip(distinct, distinct[1:]))
    return CheckResult("loop_keeps_ticking", gap <= max_gap_ms,
                       f"{len(distinct)} distinct ticks while blocked, largest gap {gap} ms (limit {max_gap_ms})")


def restart_latch_on_startup(rec: "DrillRecord", code: str = "RESTART_RECONCILE_REQUIRED") -> CheckResult:
    """On startup the latch is set with ``code``: the first status after each restart (every ``restart``
    mark: a fault may restart the service more than once) has the latch and the code."""
    ups = [m for m in rec.timeline.marks if m.label == "restart"]
    if not ups:
        return CheckResult("restart_latch_on_startup", None, "the target was not restarted")
    seen = []
    for up in ups:
        first = rec.timeline.first(lambda s: s.ok, start=up.mono)
        if first is None:
            return CheckResult("restart_latch_on_startup", None, "no status sample after the restart"
                               + (f" ({len(seen) + 1} of {len(ups)})" if len(ups) > 1 else ""))
        codes = first.status.get("open_permission_reason_codes") or []
        seen.append((first, codes, bool(first.latched and code in codes)))
    said = "; ".join(f"first status after restart{f' {n}' if len(ups) > 1 else ''} (sample {first.i}): "
                     f"latch={first.status.get('open_permission_blocked_latch')}, codes={codes}"
                     for n, (first, codes, _) in enumerate(seen, 1))
    return CheckResult("restart_latch_on_startup", all(ok for *_, ok in seen), said)
