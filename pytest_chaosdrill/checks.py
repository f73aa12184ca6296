"""Named pass criteria: pure functions of a :class:`~pytest_chaosdrill.record.DrillRecord` and the
drill's parameters, returning a :class:`CheckResult` (``passed=None``: the facts needed were not
there, NOT PROVEN). A check never changes the record and never reads anything the record does not
hold, so ``chaosdrill recheck`` can re-derive it from the evidence folder.

New checks come from plugins through the ``pytest_chaosdrill_add_checks`` hook.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence

from .venue.witness import check_no_order_accepted_after_not_found, could_add_exposure, open_orders_in_window

if TYPE_CHECKING:  # pragma: no cover
    from .record import DrillRecord
    from .timeline import Sample


@dataclass
class CheckResult:
    name: str
    passed: bool | None
    detail: str
    criterion: str = ""
    #: Facts the check established, for reports (e.g. whether Kill had exposure to reduce).
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT PROVEN"}[self.passed]


Check = Callable[..., CheckResult]


def needs(*fields: str) -> Callable[[Check], Check]:
    """Declare the target-file fields a check reads (``@needs("files.run_manifest")``): a drill naming
    the check against a target file without them ends NOT PROVEN before the service starts."""
    def mark(fn: Check) -> Check:
        fn.needs = tuple(fields)  # type: ignore[attr-defined]
        return fn
    return mark

# --- witness ledger queries (entries as the venue exports them) -----------------------------------


def ledger_orders(ledger: Sequence[dict[str, Any]], start: float | None = None, end: float | None = None) -> list[dict]:
    return [e for e in ledger if e.get("type") == "order"
            and (start is None or e.get("mono", 0) >= start) and (end is None or e.get("mono", 0) <= end)]


def is_open(order: dict[str, Any]) -> bool:
    """An order that could add exposure (the one definition, shared with the venue's ledger)."""
    return could_add_exposure(order)


def recon_reads(ledger: Sequence[dict[str, Any]], start: float, end: float) -> dict[str, list[float]]:
    reads: dict[str, list[float]] = {"positions": [], "orders_pending": []}
    for e in ledger:
        if e.get("type") == "request" and e.get("recon_read") and start <= e.get("mono", 0) <= end:
            key = "positions" if "positions" in str(e.get("path", "")) else "orders_pending"
            reads[key].append(e["mono"])
    return reads


def exposure_series(ledger: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(e["mono"], float(e.get("exposure", 0))) for e in ledger if e.get("type") == "position"]


def exposure_at(ledger: Sequence[dict[str, Any]], t: float) -> float | None:
    """The venue's exposure (sum of |position|) at ``t``: the last position entry at or before it;
    None when the venue recorded no position change before ``t`` (no position was ever taken)."""
    before = [x for m, x in exposure_series(ledger) if m <= t]
    return before[-1] if before else None


def is_reduce(order: dict[str, Any]) -> bool:
    """A reduce-only order the venue accepted and that reduced a position."""
    return order.get("reduceOnly") in (True, "true") and order.get("accepted", True) is not False \
        and order.get("effect") == "reduce"


def _fault_origin(rec: "DrillRecord") -> float | None:
    """When the fault took effect (the step's landing), else the trigger: exposure is judged from here,
    so an order sent between the landing and the first safe sample (a fast flatten) still counts."""
    return rec.t_landed if rec.t_landed is not None else rec.t_trigger


def _fmt_orders(orders: list[dict[str, Any]], limit: int = 5) -> str:
    return "; ".join(f"{o.get('clOrdId')} {o.get('side')} {o.get('sz')} {o.get('instId')} reduceOnly={o.get('reduceOnly')} "
                     f"effect={o.get('effect')}" for o in orders[:limit]) + (" ..." if len(orders) > limit else "")

# --- the checks ------------------------------------------------------------------------------------


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


def no_open_dispatch_while_blocked(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """The venue received no order that could add exposure between the first safe sample and recovery.

    ``grace_ms`` admits orders already on the wire when the block was first observed.
    """
    start, end = rec.blocked_window()
    if start is None:
        return CheckResult("no_open_dispatch_while_blocked", None, "OPEN was never observed blocked")
    opens = open_orders_in_window(rec.ledger, start + grace_ms / 1000, end, block_start_mono=start)
    if opens:
        # Both are findings; the reason says which: decided while blocked, or sent before the block and
        # delivered during it (the in-flight hazard of a partition).
        kinds = {k: [o for o in opens if o["kind"] == k] for k in ("decided_while_blocked", "sent_before_block")}
        said = "; ".join(f"{len(v)} {k.replace('_', ' ')}: {_fmt_orders(v)}" for k, v in kinds.items() if v)
        return CheckResult("no_open_dispatch_while_blocked", False,
                           f"{len(opens)} OPEN order(s) reached the venue while OPEN was blocked ({said})")
    n = len(ledger_orders(rec.ledger, start, end))
    return CheckResult("no_open_dispatch_while_blocked", True,
                       f"venue saw {n} order(s) in the blocked window ({(end - start):.2f}s), none could add exposure")


def latch_set_with(rec: "DrillRecord", code: str) -> CheckResult:
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
    (``latch_events`` in execution_fingerprint.json, host monotonic clock, process and docker backends):
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
    entries = {"positions": [], "orders_pending": []}  # type: dict[str, list[dict[str, Any]]]
    for e in rec.ledger:
        if e.get("type") == "request" and e.get("recon_read") and since <= e.get("mono", 0) <= cleared.mono:
            entries["positions" if "positions" in str(e.get("path", "")) else "orders_pending"].append(e)
    missing = [k for k, v in entries.items() if not v]
    if missing:
        return CheckResult(name, False, f"latch cleared at sample {cleared.i} but the venue saw no {' / '.join(missing)} "
                           f"read between the end of the fault and the clear")
    # The earliest read of each kind: the clear needs one of each before it.
    earliest = {k: min(v, key=lambda e: e["mono"]) for k, v in entries.items()}
    latest_needed = max(e["mono"] for e in earliest.values())
    counts = f"({len(entries['positions'])} positions, {len(entries['orders_pending'])} open-orders)"
    if latest_needed <= last.sent_mono:
        return CheckResult(name, True, f"latch still set at sample {last.i}, sent {(last.sent_mono - latest_needed) * 1000:.0f} ms "
                           f"after the venue served the reconciliation reads {counts}; clear at sample {cleared.i}")
    clear = _service_clear_mono(rec, last.sent_mono, cleared.mono)
    if clear is not None:
        late = {k: e["mono"] for k, e in earliest.items() if e["mono"] > clear}
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
    execution_fingerprint.json, on backends that share the harness's host clock (process, docker)."""
    if rec.backend not in ("process", "docker"):
        return None
    fp = rec.files.get("fingerprint")
    sources = [fp.get("latch_events") if isinstance(fp, dict) else None]
    sources += [s.status.get("latch_events") for s in rec.samples if s.ok and s.mono >= before - 1e-9][:3]
    clears = [e["mono"] for events in sources if isinstance(events, list) for e in events
              if isinstance(e, dict) and e.get("event") == "clear" and isinstance(e.get("mono"), (int, float))
              and not isinstance(e.get("mono"), bool) and after <= e["mono"] <= before]
    return max(clears) if clears else None


def ws_event_lag_reflects(rec: "DrillRecord", ms: float | None = None, tolerance_ms: float = 400.0) -> CheckResult:
    """The reported ``ws_event_lag_ms`` tracks the real lag: with ``ms`` (an injected delay) its peak is
    within the tolerance of ``ms``; without it (a frozen feed) every sample during the fault is within the
    tolerance of the time since the feed stopped."""
    origin = rec.t_safe_origin
    window = [s for s in rec.timeline.between(origin, rec.t_condition_ended) if s.ok
              and isinstance(s.status.get("ws_event_lag_ms"), (int, float))]
    if not window or origin is None:
        return CheckResult("ws_event_lag_reflects", None, "no sample with ws_event_lag_ms during the fault")
    if ms is not None:
        peak = max(s.status["ws_event_lag_ms"] for s in window)
        return CheckResult("ws_event_lag_reflects", abs(peak - ms) <= tolerance_ms,
                           f"peak ws_event_lag_ms={peak} during the fault; injected lag {ms} ms (±{tolerance_ms} ms)")
    worst = max(window, key=lambda s: abs(s.status["ws_event_lag_ms"] - (s.sent_mono - origin) * 1000))
    actual = (worst.sent_mono - origin) * 1000
    off = worst.status["ws_event_lag_ms"] - actual
    ok = abs(off) <= tolerance_ms
    return CheckResult("ws_event_lag_reflects", ok,
                       f"{len(window)} samples during the fault; largest deviation at sample {worst.i}: reported "
                       f"{worst.status['ws_event_lag_ms']} ms, feed silent for {actual:.0f} ms (±{tolerance_ms} ms)")


def counter_increased(rec: "DrillRecord", field: str) -> CheckResult:
    base = rec.baseline.status.get(field) if rec.baseline else None
    if not isinstance(base, (int, float)):
        return CheckResult("counter_increased", None, f"no pre-fault value of {field}")
    window = [s.status.get(field) for s in rec.timeline.between(rec.t_trigger, rec.t_end) if s.ok]
    values = [v for v in window if isinstance(v, (int, float))]
    peak = max(values, default=base)
    return CheckResult("counter_increased", peak > base, f"{field}: {base} before the fault, peak {peak} after")


def containment_proceeds(rec: "DrillRecord") -> CheckResult:
    """Reduce-only orders reached the venue between the fault and the end of the blocked window (hedge / flatten).

    Precondition: the venue held a position when the fault landed (else there is nothing to contain:
    NOT PROVEN). Orders count from the fault's landing (venue receive time), so a flatten sent before
    the first safe sample is seen counts; orders after the blocked window (normal trading) do not.
    """
    origin = _fault_origin(rec)
    _, end = rec.blocked_window()
    if origin is None or end is None:
        return CheckResult("containment_proceeds", None, "the fault's landing or the blocked window was not observed")
    exposure = exposure_at(rec.ledger, origin)
    if not exposure:
        return CheckResult("containment_proceeds", None, f"exposure {exposure or 0.0} when the fault landed: "
                           "nothing to contain", facts={"containment_exercised": False})
    reduces = [o for o in ledger_orders(rec.ledger, origin, end) if is_reduce(o)]
    if not reduces:
        return CheckResult("containment_proceeds", False, f"exposure {exposure} when the fault landed, but no reduce-only "
                           f"order reached the venue before the blocked window ended ({(end - origin) * 1000:.0f} ms)")
    return CheckResult("containment_proceeds", True, f"exposure {exposure} when the fault landed; {len(reduces)} reduce-only "
                       f"order(s) reached the venue: {_fmt_orders(reduces, 3)}", facts={"containment_exercised": True})


def exposure_monotonic_to_neutral(rec: "DrillRecord", neutral: float = 0.0) -> CheckResult:
    """Exposure monotonically reduces to neutral: from the exposure at the fault's landing to the end of the
    blocked window the venue's exposure never grew, and it reached ``neutral`` within the window.

    Precondition: exposure above ``neutral`` at the landing (else NOT PROVEN: nothing to reduce). The series
    ends with the blocked window (the request of the last blocked sample): an OPEN after recovery is normal
    trading, not containment.
    """
    origin = _fault_origin(rec)
    _, end = rec.blocked_window()
    if origin is None or end is None:
        return CheckResult("exposure_monotonic_to_neutral", None, "the safe state was never observed")
    first = exposure_at(rec.ledger, origin)
    if first is None or first <= neutral + 1e-9:
        return CheckResult("exposure_monotonic_to_neutral", None,
                           f"exposure {first if first is not None else 0.0} when the fault landed: nothing to reduce")
    series = [(origin, first)] + [(m, x) for m, x in exposure_series(rec.ledger) if origin < m <= end]
    prev = first
    for m, x in series[1:]:
        if x > prev + 1e-9:
            return CheckResult("exposure_monotonic_to_neutral", False,
                               f"exposure grew from {prev} to {x} during containment "
                               f"({(m - origin) * 1000:.0f} ms after the fault landed, inside the blocked window)")
        prev = x
    if abs(prev - neutral) > 1e-9:
        return CheckResult("exposure_monotonic_to_neutral", False,
                           f"exposure went {first} → {prev} without growing, but had not reached {neutral} "
                           f"when the blocked window ended ({(end - origin) * 1000:.0f} ms after the fault)")
    return CheckResult("exposure_monotonic_to_neutral", True,
                       f"exposure went {first} → {prev} over {len(series) - 1} venue position changes, never growing")


def loop_keeps_ticking(rec: "DrillRecord", max_gap_ms: float = 1000.0) -> CheckResult:
    ticks = [s.status.get("loop_tick_last_ts_ms") for s in rec.blocked_window_samples()]
    ticks = [t for t in ticks if isinstance(t, int)]
    distinct = sorted(set(ticks))
    if len(distinct) < 3:
        return CheckResult("loop_keeps_ticking", False, f"loop_tick_last_ts_ms took only {len(distinct)} distinct value(s) "
                           "while OPEN was blocked")
    gap = max(b - a for a, b in zip(distinct, distinct[1:]))
    return CheckResult("loop_keeps_ticking", gap <= max_gap_ms,
                       f"{len(distinct)} distinct ticks while blocked, largest gap {gap} ms (limit {max_gap_ms})")


def reduce_only_permitted(rec: "DrillRecord") -> CheckResult:
    """ReduceOnly actions still permitted: while OPEN was blocked the target was not in Kill, and a
    reduce-only order reached the venue and reduced the position.

    Precondition: the venue held a position when the blocked window began (else NOT PROVEN: there was
    nothing to reduce, so the criterion was not exercised). Orders count by the venue's receive time from
    the first blocked answer to the end of the blocked window.
    """
    window = rec.blocked_window_samples()
    start, end = rec.blocked_window()
    if not window or start is None or end is None:
        return CheckResult("reduce_only_permitted", None, "no sample in the blocked window")
    kills = [s for s in window if s.status.get("trading_mode") == "Kill"]
    if kills:
        return CheckResult("reduce_only_permitted", False, f"{len(kills)} of {len(window)} blocked samples in Kill "
                           f"(first: sample {kills[0].i}); ReduceOnly was not held")
    fs = rec.first_safe
    begin = fs.sent_mono if fs is not None else start
    exposure = exposure_at(rec.ledger, begin)
    if not exposure:
        return CheckResult("reduce_only_permitted", None, f"exposure {exposure or 0.0} when OPEN became blocked: "
                           "nothing to reduce, the criterion was not exercised", facts={"reduce_only_exercised": False})
    reduces = [o for o in ledger_orders(rec.ledger, begin, end) if is_reduce(o)]
    if not reduces:
        return CheckResult("reduce_only_permitted", False,
                           f"exposure {exposure} while OPEN was blocked for {(end - begin) * 1000:.0f} ms "
                           f"({len(window)} ReduceOnly samples), but no reduce-only order reached the venue")
    return CheckResult("reduce_only_permitted", True, f"exposure {exposure} when blocked; {len(reduces)} reduce-only "
                       f"order(s) reached the venue while blocked: {_fmt_orders(reduces, 3)}",
                       facts={"reduce_only_exercised": True})


def restart_latch_on_startup(rec: "DrillRecord", code: str = "RESTART_RECONCILE_REQUIRED") -> CheckResult:
    up = rec.timeline.get_mark("restart")
    if up is None:
        return CheckResult("restart_latch_on_startup", None, "the target was not restarted")
    first = rec.timeline.first(lambda s: s.ok, start=up.mono)
    if first is None:
        return CheckResult("restart_latch_on_startup", None, "no status sample after the restart")
    codes = first.status.get("open_permission_reason_codes") or []
    ok = first.latched and code in codes
    return CheckResult("restart_latch_on_startup", ok,
                       f"first status after restart (sample {first.i}): latch={first.status.get('open_permission_blocked_latch')}, "
                       f"codes={codes}")


def no_duplicate_dispatch(rec: "DrillRecord") -> CheckResult:
    dups = [o for o in ledger_orders(rec.ledger) if o.get("duplicate")]
    n = len(ledger_orders(rec.ledger))
    if dups:
        return CheckResult("no_duplicate_dispatch", False,
                           f"{len(dups)} client order id(s) reached the venue twice: {_fmt_orders(dups)}")
    return CheckResult("no_duplicate_dispatch", True, f"{n} orders at the venue, no client order id dispatched twice")


def _kill_window(rec: "DrillRecord") -> tuple["Sample | None", float]:
    """The first Kill sample after the trigger, and when Kill could legitimately end (the restart)."""
    first = rec.timeline.first(lambda s: s.ok and s.status.get("trading_mode") == "Kill", start=rec.t_trigger)
    restart = rec.timeline.get_mark("restart")
    end = restart.mono if first and restart and restart.mono > first.mono else rec.t_end
    return first, end


def stays_kill(rec: "DrillRecord") -> CheckResult:
    """Once Kill, the target never resumes on its own (until it is restarted)."""
    first, end = _kill_window(rec)
    if first is None:
        return CheckResult("stays_kill", False, "Kill was never observed")
    after = [s for s in rec.timeline.between(first.mono, end) if s.ok]
    resumed = [s for s in after if s.status.get("trading_mode") != "Kill"]
    if resumed:
        return CheckResult("stays_kill", False, f"left Kill without a restart at sample {resumed[0].i} "
                           f"({resumed[0].status.get('trading_mode')})")
    return CheckResult("stays_kill", True, f"Kill held for {(end - first.mono):.1f}s over {len(after)} samples "
                       f"(after the hook was released) until the restart")


def capital_supremacy(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """Kill still allows risk-reducing actions if exposure is not zero: in Kill no order may add exposure,
    and a risk-reducing order reached the venue.

    Precondition: the venue held a position when the fault landed (else NOT PROVEN: capital supremacy was
    not exercised). Risk-reducing orders count by the venue's receive time from the fault's landing, so a
    flatten sent at once (before the first Kill sample is seen) counts; exposure-adding orders count from
    the first Kill answer plus ``grace_ms`` for orders already on the wire.
    """
    first, end = _kill_window(rec)
    if first is None:
        return CheckResult("capital_supremacy", None, "Kill was never observed")
    origin = _fault_origin(rec)
    origin = first.sent_mono if origin is None else min(origin, first.sent_mono)
    opens = [o for o in ledger_orders(rec.ledger, first.mono + grace_ms / 1000, end) if is_open(o)]
    if opens:
        return CheckResult("capital_supremacy", False, f"{len(opens)} exposure-adding order(s) in Kill: {_fmt_orders(opens)}",
                           facts={"capital_supremacy_exercised": True})
    exposure = exposure_at(rec.ledger, origin) or 0.0
    if exposure <= 1e-9:
        return CheckResult("capital_supremacy", None, "exposure 0.0 when the fault landed: nothing to reduce in Kill, "
                           "capital supremacy not exercised", facts={"capital_supremacy_exercised": False})
    reduces = [o for o in ledger_orders(rec.ledger, origin, end) if o.get("effect") == "reduce"
               and o.get("accepted", True) is not False]
    if not reduces:
        return CheckResult("capital_supremacy", False, f"exposure {exposure} at Kill, but no risk-reducing order reached "
                           f"the venue in {(end - origin):.1f}s of Kill", facts={"capital_supremacy_exercised": True})
    return CheckResult("capital_supremacy", True, f"exposure {exposure} at Kill; {len(reduces)} risk-reducing order(s) "
                       f"(first {(reduces[0]['mono'] - origin) * 1000:.0f} ms after the fault) and no exposure-adding "
                       "order in Kill", facts={"capital_supremacy_exercised": True})


def registry_drift_blocked(rec: "DrillRecord", token: str = "KILL_UNREGISTERED_DRIFT_TOKEN") -> CheckResult:
    """Drill 8, trigger A: a fake token in the contract inputs makes the contract checks fail."""
    import shutil
    import tempfile
    from pathlib import Path

    from .contract import Contract

    with tempfile.TemporaryDirectory() as tmp:
        manifest = json.loads(Path(rec.contract["manifest"]).read_text(encoding="utf-8"))
        manifest["registries"]["ModeReasonCode"]["Kill"].append(
            {"code": token, "display": "injected by drill 8", "latched": True,
             "unblock": {"type": "MANUAL", "condition": "never"}})
        tampered = Path(tmp) / "manifest.json"
        tampered.write_text(json.dumps(manifest), encoding="utf-8")
        schema = Path(tmp) / "schema.json"
        shutil.copy(rec.contract["schema"], schema)
        drift = Contract.load(schema, tampered).registry_findings
    last = rec.timeline.last_ok()
    observed = dict(last.status if last else {})
    observed["mode_reasons"] = list(observed.get("mode_reasons") or []) + [token]
    findings = Contract.load(rec.contract["schema"], rec.contract["manifest"]).check(observed)
    named = [f for f in drift if token in f.message]
    ok = bool(named) and bool(findings)
    return CheckResult("registry_drift_blocked", ok,
                       f"manifest with fake token {token}: {len(named)} registry finding(s) naming it; "
                       f"status carrying it: {sorted({f.tag for f in findings})}")


def _parse_utc(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


@needs("files.run_manifest")
def stop_detected(rec: "DrillRecord", max_ms: float = 1000.0) -> CheckResult:
    manifest = rec.files.get("run_manifest")
    if not isinstance(manifest, dict):
        return CheckResult("stop_detected", False, "no readable run_manifest.json after the STOP")
    requested = rec.trigger_info.get("requested", {})
    created = _parse_utc(requested.get("created_utc"))
    stop_time = _parse_utc(manifest.get("stop_time"))
    if manifest.get("stop_detected") is not True or stop_time is None or created is None:
        return CheckResult("stop_detected", False, f"stop_detected={manifest.get('stop_detected')!r}, "
                           f"stop_time={manifest.get('stop_time')!r}")
    ms = (stop_time - created).total_seconds() * 1000
    # A stop_time written to the millisecond (ISO 8601 allows it) may read up to 1 ms before the
    # file's microsecond creation time: that is truncation, not a detection before the STOP existed.
    return CheckResult("stop_detected", -1.0 <= ms <= max_ms + 5,
                       f"STOP file created {requested.get('created_utc')}, detected {manifest.get('stop_time')} "
                       f"({ms:.0f} ms, limit {max_ms} ms)", facts={"stop_detection_ms": ms})


def graceful_exit(rec: "DrillRecord", code: int = 0) -> CheckResult:
    rc = rec.exit_code
    if rc is None:
        return CheckResult("graceful_exit", False, "the target did not exit within the recovery timeout")
    return CheckResult("graceful_exit", rc == code, f"target exit status {rc} (expected {code})")


@needs("files.run_manifest")
def run_manifest_fields(rec: "DrillRecord", expect: dict[str, Any], audit_fields: list[str] | None = None) -> CheckResult:
    manifest = rec.files.get("run_manifest")
    if not isinstance(manifest, dict) or "_unreadable" in manifest:
        return CheckResult("run_manifest_fields", False, f"no readable run_manifest.json ({manifest})")
    problems = [f"{k}={manifest.get(k)!r} (expected {v!r})" for k, v in expect.items() if manifest.get(k) != v]
    for k in audit_fields or []:
        v = manifest.get(k)
        if v in (None, "") or "unknown" in str(v).lower():
            problems.append(f"audit field {k}={v!r}")
    return CheckResult("run_manifest_fields", not problems,
                       "; ".join(problems) if problems else f"run_manifest has {expect} and audit fields {audit_fields}")


#: The error classes (``error_events[].type``) each network fault produces at the target: a proxy
#: ``reset_peer`` resets connections (connection_error); a ``timeout`` toxic holds requests past the
#: target's client timeout (timeout). A docker network disconnect yields timeouts on the connections
#: that were open, and refused or unresolvable new ones, depending on what the client was doing when it
#: hit: ``a|b`` means at least one of them.
FAULT_ERROR_CLASSES: dict[str, tuple[str, ...]] = {
    "proxy.toxic:reset_peer": ("connection_error",),
    "proxy.toxic:timeout": ("timeout",),
    "network.disconnect": ("timeout|connection_error|dns_failure",),
}


def fault_error_classes(rec: "DrillRecord") -> tuple[str, ...]:
    """The error classes the drill's fault produces (see :data:`FAULT_ERROR_CLASSES`); () if unknown."""
    s = rec.step
    if s is None:
        return ()
    key = f"{s.kind}:{s.params.get('type')}" if s.kind == "proxy.toxic" else s.kind
    return FAULT_ERROR_CLASSES.get(key, ())


@needs("files.fingerprint")
def fingerprint_error_gate(rec: "DrillRecord", classes: list[str] | None = None) -> CheckResult:
    """C2.3 hard gate, per error class: every class of error the fault produced (``classes``, default from
    the fault) shows in execution_fingerprint.json's ``error_events[].type``, captured mid-run while the fault
    was active and the target running. Without named classes: error_count > 0 or error_events non-empty."""
    snaps = rec.fingerprint_midrun
    if not snaps:
        return CheckResult("fingerprint_error_gate", None, "no execution_fingerprint.json could be read during the fault")
    last = snaps[-1]["content"]
    errors = last.get("error_count", 0) if isinstance(last, dict) else 0
    events = last.get("error_events", []) if isinstance(last, dict) else []
    events = events if isinstance(events, list) else []
    kinds: dict[str, int] = {}
    base = rec.fingerprint_before if isinstance(rec.fingerprint_before, dict) else {}
    before_events = base.get("error_events") if isinstance(base.get("error_events"), list) else []
    seen_before = {json.dumps(e, sort_keys=True, default=str) for e in before_events}
    for e in events:
        if isinstance(e, dict) and json.dumps(e, sort_keys=True, default=str) not in seen_before:
            kinds[str(e.get("type"))] = kinds.get(str(e.get("type")), 0) + 1
    wanted = tuple(classes) if classes is not None else fault_error_classes(rec)
    summary = (f"mid-run fingerprint ({len(snaps)} snapshot(s)): error_count={errors}, error_events={len(events)}, "
               f"new during the fault by type {dict(sorted(kinds.items()))}")
    if not wanted:
        ok = (isinstance(errors, int) and errors > 0) or bool(events)
        return CheckResult("fingerprint_error_gate", ok, summary)
    missing = [c for c in wanted if not any(kinds.get(alt) for alt in c.split("|"))]
    if missing:
        return CheckResult("fingerprint_error_gate", False, f"the fault produces {', '.join(wanted)}, but no "
                           f"{' / '.join(missing)} event appeared: {summary}")
    return CheckResult("fingerprint_error_gate", True, f"every class the fault produces ({', '.join(wanted)}) "
                       f"was counted: {summary}")


@needs("files.fingerprint")
def sustained_call_pressure(rec: "DrillRecord", min_calls: int = 5) -> CheckResult:
    """The target kept calling the venue while the fault was active (so the fault met traffic)."""
    snaps = rec.fingerprint_midrun
    base = rec.fingerprint_before or {}
    if not snaps or not isinstance(base, dict):
        return CheckResult("sustained_call_pressure", None, "fingerprint not captured before and during the fault")
    before = base.get("api_calls", 0)
    during = snaps[-1]["content"].get("api_calls", 0)
    # Too little traffic means the fault met no calls: the drill proves nothing (the seeds' C2.2), not a failure.
    return CheckResult("sustained_call_pressure", True if during - before >= min_calls else None,
                       f"api_calls {before} before the fault, {during} during it (need ≥{min_calls} more)")


def _trade_counters(doc: Any) -> dict[str, int] | None:
    """The ``trades`` counters of an execution fingerprint (``processed``, ``duplicates_dropped``), or None."""
    t = doc.get("trades") if isinstance(doc, dict) else None
    if not isinstance(t, dict):
        return None
    vals = {k: t.get(k) for k in ("processed", "duplicates_dropped")}
    if any(isinstance(v, bool) or not isinstance(v, int) for v in vals.values()):
        return None
    return vals  # type: ignore[return-value]


@needs("files.fingerprint")
def no_duplicate_trade_processing(rec: "DrillRecord") -> CheckResult:
    """No duplicate trade processing: every trade message the venue repeated (same tradeId, the fault's
    proof) shows in the target's execution_fingerprint.json as dropped, not processed.

    Reads ``trades.duplicates_dropped`` before the fault (steady state) and at the end of the drill: it must
    have risen by at least the number of repeated messages the venue wrote. NOT PROVEN when the fault
    repeated no trade id, or when the target's fingerprint offers no ``trades`` counters.
    """
    name = "no_duplicate_trade_processing"
    s = rec.step
    detail = (s.proof.get("detail") if s is not None and isinstance(s.proof, dict) else None) or {}
    ids = detail.get("repeated_trade_ids") or []
    per_socket, sockets = detail.get("repeats_per_socket"), detail.get("sockets")
    if not ids or not isinstance(per_socket, int) or not isinstance(sockets, int) or per_socket * sockets < 1:
        return CheckResult(name, None, "the fault repeated no trade id (use venue.trades_gap mode repeat or skip_repeat): "
                           "the criterion was not exercised")
    repeats = per_socket * sockets
    before = _trade_counters(rec.fingerprint_before)
    after_doc = rec.files.get("fingerprint")
    if not isinstance(after_doc, dict) and rec.fingerprint_midrun:
        after_doc = rec.fingerprint_midrun[-1]["content"]
    after = _trade_counters(after_doc)
    if before is None or after is None:
        return CheckResult(name, None, "the target's execution_fingerprint.json offers no trades counters "
                           "(trades.processed, trades.duplicates_dropped) "
                           f"{'before the fault' if before is None else 'at the end'}: duplicate processing not provable")
    dropped = after["duplicates_dropped"] - before["duplicates_dropped"]
    processed = after["processed"] - before["processed"]
    said = (f"the venue repeated tradeId {', '.join(map(str, ids))} {repeats} time(s); the target's trades.duplicates_dropped "
            f"{before['duplicates_dropped']} → {after['duplicates_dropped']} (+{dropped}), trades.processed +{processed}")
    if dropped < repeats:
        return CheckResult(name, False, f"{said}: {repeats - dropped} repeated trade(s) not dropped, so processed twice",
                           facts={"trades_repeated": repeats, "trades_duplicates_dropped": dropped})
    return CheckResult(name, True, f"{said}: every repeat dropped",
                       facts={"trades_repeated": repeats, "trades_duplicates_dropped": dropped})


def no_order_accepted_after_not_found(rec: "DrillRecord") -> CheckResult:
    """The venue accepted no order after answering "not found" for its clOrdId (the in-flight hazard)."""
    passed, reason = check_no_order_accepted_after_not_found(rec.ledger)
    return CheckResult("no_order_accepted_after_not_found", passed, reason)


def builtin_checks() -> dict[str, Check]:
    from .explore import explore_found_no_violation
    from .schedule import global_invariants

    return {fn.__name__: fn for fn in (global_invariants, explore_found_no_violation,
        mode_held, no_open_dispatch_while_blocked, latch_set_with, latch_clears_only_after_reconcile,
        ws_event_lag_reflects, counter_increased, containment_proceeds, exposure_monotonic_to_neutral,
        loop_keeps_ticking, reduce_only_permitted, restart_latch_on_startup, no_duplicate_dispatch, stays_kill,
        capital_supremacy, registry_drift_blocked, stop_detected, graceful_exit, run_manifest_fields,
        fingerprint_error_gate, sustained_call_pressure, no_order_accepted_after_not_found,
        no_duplicate_trade_processing)}
