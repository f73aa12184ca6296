"""Each named check on synthetic facts: it passes on a good story and fails (or is NOT PROVEN) for the
right reason on a bad one. The drills exercise them end to end; these pin the edges."""
from __future__ import annotations

from typing import Any

import pytest

from dataclasses import replace

from pytest_chaosdrill import checks as C
from pytest_chaosdrill.registry import builtin_checks
from pytest_chaosdrill.record import DrillRecord, StepRecord
from pytest_chaosdrill.timeline import Sample, Timeline
from pytest_chaosdrill.verdict import criterion_of

ACTIVE = {"trading_mode": "Active", "open_permission_blocked_latch": False, "open_permission_reason_codes": []}


def latched(code: str = "WS_BOOK_GAP_RECONCILE_REQUIRED", **extra: Any) -> dict:
    return {"trading_mode": "ReduceOnly", "open_permission_blocked_latch": True,
            "open_permission_reason_codes": [code], **extra}


def make_run(statuses: list[tuple[float, Any]], ledger: list[dict] | None = None, *, t_trigger: float = 1.0,
             t_landed: float | None = None, t_release: float | None = None, t_recovered: float | None = None,
             t_end: float = 100.0, files: dict | None = None, requested: dict | None = None,
             answer_s: float = 0.001, **record: Any) -> DrillRecord:
    """A DrillRecord with a hand-written timeline: ``statuses`` are (request time, payload) pairs,
    each answered ``answer_s`` (1 ms) later."""
    samples = [Sample(i, t, t + answer_s, "", 200 if st is not None else None, st, None if st is not None else "down")
               for i, (t, st) in enumerate(statuses)]
    tl = Timeline()
    for s in samples:
        tl.add(s)
    first = tl.first(lambda s: s.blocked, start=t_trigger)
    base = tl.last_ok(t_trigger)
    step = StepRecord("test.fault", {}, requested=requested or {}, landed_mono=t_landed)
    return DrillRecord(drill={"id": "synthetic"}, drill_path="", backend="process", target_name="t", target_files=(), host_clock=True,
                       contract={}, started_utc="", t_start=0.0, samples=tuple(samples), ledger=tuple(ledger or []),
                       steps=(step,), t_trigger=t_trigger, t_release=t_release, t_recovered=t_recovered, t_end=t_end,
                       first_safe_i=first.i if first else None, baseline_i=base.i if base else None,
                       files=files or {}, **record)


def order(mono: float, reduce_only: bool, effect: str, cid: str = "c1", **kw: Any) -> dict:
    return {"type": "order", "mono": mono, "clOrdId": cid, "reduceOnly": reduce_only, "effect": effect, **kw}


def read(mono: float, path: str) -> dict:
    return {"type": "request", "mono": mono, "path": path, "recon_read": True}


def position(mono: float, exposure: float) -> dict:
    return {"type": "position", "mono": mono, "exposure": exposure}


GAP_STORY = [(0.5, ACTIVE), (1.1, latched()), (1.5, latched()), (2.0, latched()), (3.0, ACTIVE)]


# --- no_open_dispatch_while_blocked ------------------------------------------------------------------


def test_no_open_passes_with_only_reduce_orders_and_in_flight_grace() -> None:
    ledger = [order(1.15, False, "open", "inflight"),      # inside the 100 ms grace after the first blocked answer
              order(1.6, True, "reduce"), order(3.5, False, "open", "after")]
    assert C.no_open_dispatch_while_blocked(make_run(GAP_STORY, ledger, t_recovered=3.001)).passed is True


@pytest.mark.parametrize("bad", [order(1.6, False, "open"), order(1.7, True, "open"), order(1.8, False, "none")])
def test_no_open_fails_for_anything_that_could_add_exposure(bad: dict) -> None:
    res = C.no_open_dispatch_while_blocked(make_run(GAP_STORY, [bad], t_recovered=3.001))
    assert res.passed is False and "reached the venue while OPEN was blocked" in res.detail


def test_no_open_window_ends_at_the_last_blocked_request() -> None:
    # An order between the last blocked sample (2.0) and the first Active one (3.0) may follow a
    # legitimate unblock the sampler had not seen yet: not counted.
    assert C.no_open_dispatch_while_blocked(make_run(GAP_STORY, [order(2.5, False, "open")], t_recovered=3.001)).passed


RESUMED_MID_FAULT = [(0.5, ACTIVE), (1.1, latched()), (1.5, latched()), (2.0, ACTIVE), (2.5, ACTIVE),
                     (3.0, latched()), (3.5, latched()), (4.0, ACTIVE)]


def test_no_open_judges_each_blocked_run_not_the_span_between_them() -> None:
    # The service resumed (Active at 2.0 and 2.5, e.g. after re-syncing its clock) and blocked again at
    # 3.0: an OPEN while it showed Active is not a finding; one inside the second run is.
    resumed = make_run(RESUMED_MID_FAULT, [order(2.3, False, "open")], t_recovered=4.001)
    assert C.no_open_dispatch_while_blocked(resumed).passed is True
    assert resumed.blocked_spans() == [(1.101, 1.5), (3.001, 3.5)]   # answered 1 ms after each request
    inside = make_run(RESUMED_MID_FAULT, [order(3.3, False, "open", cid="late")], t_recovered=4.001)
    res = C.no_open_dispatch_while_blocked(inside)
    assert res.passed is False and "late" in res.detail


def test_no_open_not_proven_when_never_blocked() -> None:
    assert C.no_open_dispatch_while_blocked(make_run([(0.5, ACTIVE), (2, ACTIVE)])).passed is None


# --- latch ----------------------------------------------------------------------------------------------


RECON_READS = [read(2.2, "/api/v5/account/positions"), read(2.3, "/api/v5/trade/orders-pending")]


def test_latch_clear_after_reconcile_reads_passes() -> None:
    # A latched sample sent after both reads (2.5) proves the clear came after them.
    story = GAP_STORY[:4] + [(2.5, latched()), (3.0, ACTIVE)]
    run = make_run(story, RECON_READS, t_release=2.1)
    assert C.latch_clears_only_after_reconcile(run).passed is True


def test_latch_clear_between_two_samples_needs_the_service_clear_time() -> None:
    # Reads and clear both between the last latched sample (2.0) and the first clear one (3.0).
    run = make_run(GAP_STORY, RECON_READS, t_release=2.1)
    res = C.latch_clears_only_after_reconcile(run)
    assert res.passed is None and "order not provable" in res.detail
    after = {"latch_events": [{"event": "clear", "code": "X", "mono": 2.35}]}
    assert C.latch_clears_only_after_reconcile(replace(run, files={"fingerprint": after})).passed is True


def held_read(received: float, answered: float, path: str) -> dict:
    return {**read(answered, path), "received_mono": received, "held_ms": (answered - received) * 1000}


# Sampling every 5 ms; the venue holds each reconciliation answer 40 ms (recon_hold).
HELD = [held_read(2.200, 2.240, "/api/v5/account/positions"), held_read(2.201, 2.241, "/api/v5/trade/orders-pending")]


def test_a_fast_reconciler_is_proven_by_the_held_answers_without_latch_events() -> None:
    # Latched while its reads are held; clears within 1 ms of the answers, between samples 2.240 and 2.245.
    story = [(0.5, ACTIVE), (1.1, latched())] + [(2.0 + 0.005 * i, latched()) for i in range(49)] + [(2.245, ACTIVE)]
    res = C.latch_clears_only_after_reconcile(make_run(story, HELD, t_release=2.1))
    assert res.passed is True and "held the reconciliation answers" in res.detail


def test_a_clear_while_the_venue_holds_the_answers_fails() -> None:
    # Asked at 2.200, answers held until 2.240, but seen clear at 2.215: it did not wait for them.
    story = [(0.5, ACTIVE), (1.1, latched())] + [(2.0 + 0.005 * i, latched()) for i in range(42)] + [(2.215, ACTIVE)]
    res = C.latch_clears_only_after_reconcile(make_run(story, HELD, t_release=2.1))
    assert res.passed is False and "before the venue answered the positions read" in res.detail


def test_latch_events_written_after_the_recovery_sample_count() -> None:
    # The file read at the end lacks the field; a re-read after the recovery (a mid-run snapshot) has it.
    run = make_run(GAP_STORY, RECON_READS, t_release=2.1, files={"fingerprint": {"other": 1}},
                   fingerprint_midrun=({"mono": 3.02, "utc": "", "content": {
                       "latch_events": [{"event": "clear", "code": "X", "mono": 2.35}]}},))
    assert C.latch_clears_only_after_reconcile(run).passed is True


def test_latch_cleared_before_its_reads_fails_every_time() -> None:
    # The clear (2.1, the target's own latch_events) precedes the reads however close the first clear sample is.
    for first_clear in (2.31, 2.4, 3.0):
        story = GAP_STORY[:4] + [(first_clear, ACTIVE)]
        run = make_run(story, RECON_READS, t_release=2.05,
                       files={"fingerprint": {"latch_events": [{"event": "clear", "code": "X", "mono": 2.1}]}})
        res = C.latch_clears_only_after_reconcile(run)
        assert res.passed is False and "before the venue received the positions read" in res.detail
    # The clear time in the status samples counts as well; not on a backend without a shared host clock.
    story = GAP_STORY[:4] + [(3.0, {**ACTIVE, "latch_events": [{"event": "clear", "mono": 2.1}]})]
    run = make_run(story, RECON_READS, t_release=2.05)
    assert C.latch_clears_only_after_reconcile(run).passed is False
    assert C.latch_clears_only_after_reconcile(replace(run, host_clock=False)).passed is None


def test_latch_clear_without_reads_fails() -> None:
    run = make_run(GAP_STORY, [read(2.2, "/api/v5/account/positions"), read(0.9, "/api/v5/trade/orders-pending")],
                   t_release=2.1)
    res = C.latch_clears_only_after_reconcile(run)
    assert res.passed is False and "orders_pending" in res.detail


def test_latch_clear_while_fault_active_fails() -> None:
    ledger = [read(2.2, "/api/v5/account/positions"), read(2.3, "/api/v5/trade/orders-pending")]
    res = C.latch_clears_only_after_reconcile(make_run(GAP_STORY, ledger, t_release=4.0))
    assert res.passed is False and "still active" in res.detail


def test_latch_set_with_names_the_code() -> None:
    run = make_run(GAP_STORY, t_landed=1.05)
    assert C.latch_set_with(run, "WS_BOOK_GAP_RECONCILE_REQUIRED").passed
    assert C.latch_set_with(run, "WS_TRADES_GAP_RECONCILE_REQUIRED").passed is False


# --- exposure, containment --------------------------------------------------------------------------------

PF_STORY = [(0.5, ACTIVE), (1.1, {"trading_mode": "ReduceOnly"}), (2.0, {"trading_mode": "ReduceOnly"}), (3.0, ACTIVE)]


def test_exposure_monotonic_to_neutral() -> None:
    good = [position(1.0, 3), position(1.3, 2), position(1.5, 0)]
    assert C.exposure_monotonic_to_neutral(make_run(PF_STORY, good, t_recovered=3.001)).passed is True
    grew = [position(1.0, 3), position(1.3, 2), position(1.4, 4), position(1.5, 0)]
    res = C.exposure_monotonic_to_neutral(make_run(PF_STORY, grew, t_recovered=3.001))
    assert res.passed is False and "grew from 2" in res.detail
    stuck = [position(1.0, 3), position(1.3, 1)]
    assert "had not reached 0.0" in C.exposure_monotonic_to_neutral(make_run(PF_STORY, stuck, t_recovered=3.001)).detail


def test_exposure_fast_single_flatten_counts_from_the_landing() -> None:
    # Fault lands at 1.0 with exposure 5; one flatten order at 1.01, before the first safe sample (1.1).
    fast = [position(0.9, 5), order(1.01, True, "reduce", sz=5, accepted=True), position(1.01, 0)]
    run = make_run(PF_STORY, fast, t_landed=1.0, t_recovered=3.001)
    res = C.exposure_monotonic_to_neutral(run)
    assert res.passed is True and "5.0 → 0.0" in res.detail
    assert C.containment_proceeds(run).passed is True


def test_exposure_open_after_recovery_is_not_containment() -> None:
    # Flattened at 1.3; the blocked window ends with the last blocked request (2.0); an OPEN 1 ms after the
    # first Active sample (3.0) grows exposure, which is normal trading.
    ledger = [position(0.9, 2), position(1.3, 0), position(3.002, 1)]
    res = C.exposure_monotonic_to_neutral(make_run(PF_STORY, ledger, t_landed=1.0, t_recovered=3.001, t_end=5.0))
    assert res.passed is True, res.detail


def test_exposure_nothing_to_reduce_is_not_proven() -> None:
    res = C.exposure_monotonic_to_neutral(make_run(PF_STORY, [position(0.9, 0)], t_landed=1.0, t_recovered=3.001))
    assert res.passed is None and "nothing to reduce" in res.detail


def test_containment_needs_reduce_only_orders() -> None:
    held = [position(0.9, 3)]
    assert C.containment_proceeds(make_run(PF_STORY, held + [order(1.3, True, "reduce")], t_landed=1.05)).passed
    assert C.containment_proceeds(make_run(PF_STORY, held + [order(1.3, False, "open")], t_landed=1.05)).passed is False
    # A reduce-only order after the blocked window (normal trading after recovery) is not containment.
    assert C.containment_proceeds(make_run(PF_STORY, held + [order(3.5, True, "reduce")], t_landed=1.05)).passed is False
    assert C.containment_proceeds(make_run(PF_STORY, [order(1.3, True, "reduce")], t_landed=1.05)).passed is None


WAL_STORY = [(0.5, ACTIVE), (1.1, {"trading_mode": "ReduceOnly"}), (2.0, {"trading_mode": "ReduceOnly"}), (3.0, ACTIVE)]


def test_reduce_only_permitted_passes_on_a_reduce_only_order_while_blocked() -> None:
    held = [position(0.9, 4)]
    ok = make_run(WAL_STORY, held + [order(1.5, True, "reduce")], t_landed=1.0, t_recovered=3.001)
    res = C.reduce_only_permitted(ok)
    assert res.passed is True and "on its own" in res.detail and res.facts["reduce_only_occasion"] == "spontaneous"
    flat = make_run(WAL_STORY, [position(0.9, 0)], t_landed=1.0, t_recovered=3.001)
    assert C.reduce_only_permitted(flat).passed is None
    kill = make_run([(0.5, ACTIVE), (1.1, {"trading_mode": "Kill"}), (3.0, ACTIVE)], held, t_recovered=3.001)
    assert C.reduce_only_permitted(kill).passed is False


def test_reduce_only_permitted_counts_only_while_the_fault_held() -> None:
    # A reduce that waited for the stall to end (released at 1.6) proves nothing about the stall.
    late = make_run(WAL_STORY, [position(0.9, 4), order(1.8, True, "reduce")], t_landed=1.0, t_release=1.6,
                    t_recovered=3.001, occasion={"hook": "reduce_exposure", "declared": False, "hooks_log": True})
    assert C.reduce_only_permitted(late).passed is None


def _asked(answer: str | None, **extra: Any) -> dict:
    occ = {"hook": "reduce_exposure", "declared": True, "hooks_log": True, "fired_mono": 1.15, "answer": answer,
           "answer_timeout_s": 2.0, **extra}
    if answer is not None:
        occ["answer_mono"] = 1.2
    return occ


def test_reduce_only_permitted_is_not_proven_without_an_occasion() -> None:
    """A correct service that had no reason to reduce is not FAILed: NOT PROVEN names the hook."""
    held = [position(0.9, 4)]
    for occ in (None, {"hook": "reduce_exposure", "declared": False, "hooks_log": True}):
        res = C.reduce_only_permitted(make_run(WAL_STORY, held, t_landed=1.0, t_recovered=3.001, occasion=occ))
        assert res.passed is None and "hooks.reduce_exposure" in res.detail, res.detail
    unanswered = C.reduce_only_permitted(make_run(WAL_STORY, held, t_landed=1.0, t_recovered=3.001,
                                                  occasion=_asked(None)))
    assert unanswered.passed is None and "no 'applied' or 'refused' answer" in unanswered.detail


def test_reduce_only_permitted_fails_when_the_occasion_was_acknowledged_or_refused() -> None:
    held = [position(0.9, 4)]
    applied = C.reduce_only_permitted(make_run(WAL_STORY, held, t_landed=1.0, t_release=2.5, t_recovered=3.001,
                                               occasion=_asked("applied")))
    assert applied.passed is False and "answered the drill's reduce_exposure hook 'applied'" in applied.detail
    assert "no reduce-only order reached the venue" in applied.detail
    refused = C.reduce_only_permitted(make_run(WAL_STORY, held, t_landed=1.0, t_recovered=3.001,
                                               occasion=_asked("refused", detail={"reason": "wal_full"})))
    assert refused.passed is False and "refused the drill's reduce_exposure hook itself" in refused.detail
    asked = C.reduce_only_permitted(make_run(WAL_STORY, held + [order(1.3, True, "reduce")], t_landed=1.0,
                                             t_recovered=3.001, occasion=_asked("applied")))
    assert asked.passed is True and "after the drill's reduce_exposure hook" in asked.detail
    assert asked.facts["reduce_only_occasion"] == "hook"


# --- status-derived checks ----------------------------------------------------------------------------------


def test_ws_event_lag_tracks_a_frozen_feed() -> None:
    honest = [(0.5, ACTIVE)] + [(1 + k / 10, latched(ws_event_lag_ms=int(k * 100))) for k in range(1, 20)]
    assert C.ws_event_lag_reflects(make_run(honest, t_landed=1.0, t_release=3.0)).passed is True
    frozen_counter = [(0.5, ACTIVE)] + [(1 + k / 10, latched(ws_event_lag_ms=50)) for k in range(1, 20)]
    res = C.ws_event_lag_reflects(make_run(frozen_counter, t_landed=1.0, t_release=3.0))
    assert res.passed is False and "feed silent for" in res.detail
    # Answers 600 ms after their requests (a loaded machine): an honest service measured its lag somewhere in
    # between, so it reports up to 600 ms more than at the request and still tracks the feed ...
    late = [(0.5, ACTIVE)] + [(1 + k / 10, latched(ws_event_lag_ms=int(k * 100 + 600))) for k in range(1, 20)]
    assert C.ws_event_lag_reflects(make_run(late, t_landed=1.0, t_release=3.0, answer_s=0.6)).passed is True
    # ... but beyond the answer by more than the tolerance it does not, nor a frozen counter however slow the answers
    beyond = [(0.5, ACTIVE)] + [(1 + k / 10, latched(ws_event_lag_ms=int(k * 100 + 1100))) for k in range(1, 20)]
    assert C.ws_event_lag_reflects(make_run(beyond, t_landed=1.0, t_release=3.0, answer_s=0.6)).passed is False
    assert C.ws_event_lag_reflects(make_run(frozen_counter, t_landed=1.0, t_release=3.0, answer_s=0.6)).passed is False


def test_counter_increased() -> None:
    story = [(0.5, dict(ACTIVE, **{"10028_count_5m": 0})), (1.5, latched(**{"10028_count_5m": 1}))]
    assert C.counter_increased(make_run(story), "10028_count_5m").passed is True
    flat = [(0.5, dict(ACTIVE, **{"10028_count_5m": 2})), (1.5, latched(**{"10028_count_5m": 2}))]
    assert C.counter_increased(make_run(flat), "10028_count_5m").passed is False


def test_loop_keeps_ticking() -> None:
    ticking = [(0.5, ACTIVE)] + [(1 + k / 10, latched(loop_tick_last_ts_ms=1000 + k * 100)) for k in range(10)]
    assert C.loop_keeps_ticking(make_run(ticking)).passed is True
    stalled = [(0.5, ACTIVE)] + [(1 + k / 10, latched(loop_tick_last_ts_ms=1000)) for k in range(10)]
    assert C.loop_keeps_ticking(make_run(stalled)).passed is False


KILL = {"trading_mode": "Kill", "open_permission_blocked_latch": False}


def test_stays_kill_and_capital_supremacy() -> None:
    story = [(0.5, ACTIVE), (1.1, KILL), (1.5, KILL), (2.0, KILL)]
    ledger = [position(0.9, 2), order(1.4, True, "reduce"), position(1.4, 1)]
    run = make_run(story, ledger)
    assert C.stays_kill(run).passed is True and C.capital_supremacy(run).passed is True
    resumed = make_run(story + [(2.5, ACTIVE)], ledger)
    assert C.stays_kill(resumed).passed is False
    opened = make_run(story, ledger + [order(1.6, False, "open", "x")])
    assert C.capital_supremacy(opened).passed is False
    no_reduce = make_run(story, [position(0.9, 2)])
    assert "no risk-reducing order" in C.capital_supremacy(no_reduce).detail


def test_capital_supremacy_counts_a_flatten_before_the_first_kill_sample() -> None:
    # Kill lands at 1.0 with exposure 5; one flatten at 1.005 (before the first Kill sample at 1.1).
    story = [(0.5, ACTIVE), (1.1, KILL), (1.5, KILL), (2.0, KILL)]
    ledger = [position(0.9, 5), order(1.005, True, "reduce", sz=5), position(1.005, 0)]
    res = C.capital_supremacy(make_run(story, ledger, t_landed=1.0))
    assert res.passed is True and "exposure 5.0 at Kill" in res.detail


def test_capital_supremacy_without_exposure_is_not_proven() -> None:
    story = [(0.5, ACTIVE), (1.1, KILL), (2.0, KILL)]
    res = C.capital_supremacy(make_run(story, [position(0.9, 0)], t_landed=1.0))
    assert res.passed is None and res.facts["capital_supremacy_exercised"] is False


def test_fingerprint_gate_per_error_class() -> None:
    def run_with(events: list[dict], kind: str = "proxy.toxic", params: dict | None = None) -> DrillRecord:
        r = make_run([(0.5, ACTIVE)], fingerprint_before={"api_calls": 1, "error_events": []},
                     fingerprint_midrun=({"content": {"api_calls": 30, "error_count": len(events), "error_events": events}},))
        return replace(r, steps=(StepRecord(kind, params or {"type": "timeout"}),))
    only_conn = run_with([{"type": "connection_error"}])
    res = C.fingerprint_error_gate(only_conn)
    assert res.passed is False and "no timeout event" in res.detail          # timeouts not counted
    assert C.fingerprint_error_gate(run_with([{"type": "timeout"}, {"type": "connection_error"}])).passed is True
    resets = run_with([{"type": "connection_error"}], params={"type": "reset_peer"})
    assert C.fingerprint_error_gate(resets).passed is True
    assert C.fingerprint_error_gate(resets, classes=["connection_error", "timeout"]).passed is False


# --- files and telemetry ------------------------------------------------------------------------------------------


def test_fingerprint_gate_and_call_pressure() -> None:
    run = make_run([(0.5, ACTIVE)], fingerprint_before={"api_calls": 10},
                   fingerprint_midrun=({"content": {"api_calls": 30, "error_count": 0, "error_events": []}},))
    assert C.fingerprint_error_gate(run).passed is False            # the seeds' C2.3 failure
    assert C.sustained_call_pressure(run, min_calls=5).passed is True
    run = replace(run, fingerprint_midrun=({"content": {"api_calls": 11, "error_count": 2,
                                                        "error_events": [{"type": "connection_error"}]}},))
    assert C.fingerprint_error_gate(run).passed is True
    assert C.sustained_call_pressure(run, min_calls=5).passed is None   # no traffic met the fault: NOT PROVEN
    run = replace(run, fingerprint_midrun=())
    assert C.fingerprint_error_gate(run).passed is None


def test_run_manifest_and_stop_detection() -> None:
    run = make_run([(0.5, ACTIVE)], requested={"created_utc": "2026-01-01T00:00:00.000000Z"},
                   files={"run_manifest": {"status": "interrupted", "stop_detected": True, "stop_reason": "stop_file",
                                           "stop_time": "2026-01-01T00:00:00.040000Z", "git_commit": "abc"}})
    assert C.stop_detected(run, max_ms=100).passed is True
    assert C.stop_detected(run, max_ms=10).passed is False
    want = {"status": "interrupted", "stop_detected": True, "stop_reason": "stop_file"}
    assert C.run_manifest_fields(run, want, ["git_commit"]).passed is True
    run.files["run_manifest"]["status"] = "completed"
    assert "status='completed'" in C.run_manifest_fields(run, want).detail
    run.files["run_manifest"].update(status="interrupted", git_commit="unknown")
    assert C.run_manifest_fields(run, want, ["git_commit"]).passed is False
    run = replace(run, files={})
    assert C.run_manifest_fields(run, want).passed is False and C.stop_detected(run).passed is False


def test_no_duplicate_dispatch() -> None:
    assert C.no_duplicate_dispatch(make_run([], [order(1, False, "open")])).passed is True
    dup = make_run([], [order(1, False, "open"), order(2, False, "none", duplicate=True)])
    assert C.no_duplicate_dispatch(dup).passed is False


def test_builtin_check_table_is_complete() -> None:
    names = set(builtin_checks())
    assert {"mode_held", "no_open_dispatch_while_blocked", "latch_clears_only_after_reconcile",
            "fingerprint_error_gate", "registry_drift_blocked"} <= names
    assert all(callable(fn) for fn in builtin_checks().values())


# --- no_duplicate_trade_processing ----------------------------------------------------------------


def trades_run(before: Any, after: Any, detail: dict | None = None) -> DrillRecord:
    run = make_run(GAP_STORY, t_recovered=3.001, files={"fingerprint": after}, fingerprint_before=before)
    proof = {"detail": detail if detail is not None else
             {"repeated_trade_ids": ["1042"], "repeats_per_socket": 1, "sockets": 1, "skipped_trade_ids": ["1039"]}}
    return replace(run, steps=(replace(run.steps[0], proof=proof),))


def counters(processed: int, dropped: int) -> dict:
    return {"trades": {"processed": processed, "duplicates_dropped": dropped, "gaps": 0}}


def test_duplicate_trades_pass_when_every_repeat_was_dropped() -> None:
    res = C.no_duplicate_trade_processing(trades_run(counters(100, 0), counters(140, 1)))
    assert res.passed is True and "+1" in res.detail


def test_duplicate_trades_fail_when_a_repeat_was_processed() -> None:
    res = C.no_duplicate_trade_processing(trades_run(counters(100, 0), counters(141, 0)))
    assert res.passed is False and "1 repeated trade(s) not dropped, so processed twice" in res.detail


def test_duplicate_trades_count_every_socket_the_venue_wrote_to() -> None:
    detail = {"repeated_trade_ids": ["7"], "repeats_per_socket": 2, "sockets": 2}
    assert C.no_duplicate_trade_processing(trades_run(counters(0, 0), counters(9, 3), detail)).passed is False
    assert C.no_duplicate_trade_processing(trades_run(counters(0, 0), counters(9, 4), detail)).passed is True


@pytest.mark.parametrize("before,after", [({"api_calls": 3}, counters(1, 1)), (counters(1, 0), {"trades": {"processed": 2}}),
                                          (counters(1, 0), None), (counters(1, 0), {"trades": {"processed": True,
                                                                                             "duplicates_dropped": 1}})])
def test_duplicate_trades_not_proven_without_trade_counters(before: Any, after: Any) -> None:
    res = C.no_duplicate_trade_processing(trades_run(before, after))
    assert res.passed is None and "offers no trades counters" in res.detail


def test_duplicate_trades_not_proven_when_nothing_was_repeated() -> None:
    res = C.no_duplicate_trade_processing(trades_run(counters(1, 0), counters(5, 0), {"skipped_trade_ids": ["3"]}))
    assert res.passed is None and "repeated no trade id" in res.detail


def test_duplicate_trades_needs_the_fingerprint_file() -> None:
    assert C.no_duplicate_trade_processing.needs == ("files.fingerprint",)  # type: ignore[attr-defined]


def test_stop_detected_tolerates_a_stop_time_truncated_to_the_millisecond() -> None:
    run = make_run([(0.5, ACTIVE)], requested={"created_utc": "2026-01-01T00:00:00.178347Z"},
                   files={"run_manifest": {"stop_detected": True, "stop_time": "2026-01-01T00:00:00.178Z"}})
    assert C.stop_detected(run, max_ms=250).passed is True
    early = make_run([(0.5, ACTIVE)], requested={"created_utc": "2026-01-01T00:00:00.178347Z"},
                     files={"run_manifest": {"stop_detected": True, "stop_time": "2026-01-01T00:00:00.170Z"}})
    assert C.stop_detected(early, max_ms=250).passed is False   # 8 ms before the file existed: wrong


# --- resynced_during_skew ----------------------------------------------------------------------------

def signed(mono: float, auth: str, path: str = "/api/v5/account/positions") -> dict:
    return {"type": "request", "mono": mono, "method": "GET", "path": path, "auth": auth}


def test_resynced_during_skew() -> None:
    refused_then_accepted = [signed(0.5, "0"), signed(1.2, "50102"), signed(1.3, "50102"), signed(1.4, "0")]
    run = make_run([(0.5, ACTIVE)], refused_then_accepted, t_landed=1.2, t_release=5.0)
    res = C.resynced_during_skew(run)
    assert res.passed is True and "2 refused with 50102" in res.detail and "200 ms after" in res.detail
    # accepted only before the skew and after its release: the target waited the skew out
    waited = [signed(0.5, "0"), signed(1.2, "50102"), signed(4.9, "50102"), signed(5.1, "0"),
              {"type": "request", "mono": 2.0, "path": "/api/v5/market/ticker"}]  # public: not signed
    res = C.resynced_during_skew(make_run([(0.5, ACTIVE)], waited, t_landed=1.2, t_release=5.0))
    assert res.passed is False and "2 signed request(s) refused with 50102 and none accepted" in res.detail
    # the skew never landed: nothing to judge
    assert C.resynced_during_skew(make_run([(0.5, ACTIVE)], waited, t_landed=None, t_release=5.0)).passed is None
# --- global invariant: a reconciliation clears only codes raised before its reads began ------------------

from pytest_chaosdrill.checks.invariants import invariant_reconcile_clears_only_older_codes as older_codes  # noqa: E402

STALE, GAP = "WS_DATA_STALE_RECONCILE_REQUIRED", "WS_BOOK_GAP_RECONCILE_REQUIRED"
TWO_CODES = [(0.5, ACTIVE), (1.0, latched(STALE)), (1.2, latched(STALE)),
             (1.4, {**latched(STALE), "open_permission_reason_codes": [STALE, GAP]}), (1.6, latched(GAP)), (2.0, ACTIVE)]


def recon(began: float, answered: float) -> list[dict]:
    return [{"type": "request", "recon_read": True, "path": p, "status": 200, "received_mono": began, "mono": answered}
            for p in ("/api/v5/account/positions", "/api/v5/trade/orders-pending")]


def test_in_flight_reconciliation_may_not_clear_a_code_raised_after_its_reads_began() -> None:
    # reads began at 1.1 (STALE only), answered at 1.7: the gap code (absent at 1.2, shown at 1.4) is cleared by them
    found = older_codes(make_run(TWO_CODES, recon(1.1, 1.7)))
    assert len(found) == 1 and GAP in found[0] and "before the code could have been raised" in found[0]
    assert C.global_invariants(make_run(TWO_CODES, recon(1.1, 1.7), t_landed=1.0)).passed is False


def test_reads_begun_after_the_code_clear_it() -> None:
    assert older_codes(make_run(TWO_CODES, recon(1.1, 1.3) + recon(1.5, 1.7))) == []


def test_a_read_that_may_have_followed_the_code_gets_the_benefit() -> None:
    # began at 1.3: after the last answer without the gap code (sent 1.2), before the first with it (1.4)
    assert older_codes(make_run(TWO_CODES, recon(1.3, 1.7))) == []


@pytest.mark.parametrize("name", sorted(builtin_checks()))
def test_every_built_in_check_states_its_criterion(name: str) -> None:
    # the criterion is what notes.md, the report and Allure show beside the check's result
    text = criterion_of(builtin_checks()[name])
    assert len(text) >= 20 and "\n" not in text and "``" not in text, (name, text)


def _split_brain(old_orders: list[float], new_orders: list[float], **proof: Any) -> DrillRecord:
    """A node loss at 1.0: the old pod 10.0.1.5 (connection from proxy port 5001), the replacement
    10.0.2.7 (port 5002), orders at the given venue times, released at 30."""
    conns = [{"client": "10.0.1.5:40000", "upstream_local": "127.0.0.1:5001", "opened_mono": 0.5},
             {"client": "10.0.2.7:40001", "upstream_local": "127.0.0.1:5002", "opened_mono": 20.0}]
    ledger = [order(m, False, "open", cid=f"old{i}", peer="127.0.0.1:5001", received_mono=m) for i, m in enumerate(old_orders)]
    ledger += [order(m, False, "open", cid=f"new{i}", peer="127.0.0.1:5002", received_mono=m) for i, m in enumerate(new_orders)]
    run = make_run([(0.5, ACTIVE)], sorted(ledger, key=lambda o: o["mono"]), t_release=30.0)
    step = replace(run.steps[0], kind="kubernetes.node_loss", release={"proxy_connections": conns},
                   proof={"old_ip": "10.0.1.5", "new_ip": "10.0.2.7", "sent_mono": 1.0,
                          "old_processes_running": [123], **proof})
    return replace(run, steps=(step,))


def test_single_instance_trading() -> None:
    # The old replica stopped (fenced) before the replacement's first order: PASS.
    res = C.single_instance_trading(_split_brain([2.0, 5.0], [21.0, 22.0]))
    assert res.passed is True and "sent 2 order(s) after its node was lost" in res.detail
    # It kept trading after the replacement's first order: two instances at once, FAIL.
    res = C.single_instance_trading(_split_brain([2.0, 21.5, 25.0], [21.0]))
    assert res.passed is False and "two instances traded at once" in res.detail and "2 order(s)" in res.detail
    # Nothing to compare, or no way to tell them apart: NOT PROVEN, never a PASS.
    assert C.single_instance_trading(_split_brain([2.0], [])).passed is None
    assert C.single_instance_trading(_split_brain([2.0], [21.0], old_processes_running=[])).passed is None
    run = _split_brain([2.0], [21.0])
    no_log = replace(run, steps=(replace(run.steps[0], release={"proxy_connections_error": "NotImplementedError"}),))
    assert "NotImplementedError" in C.single_instance_trading(no_log).detail
    assert C.single_instance_trading(no_log).passed is None
    assert C.single_instance_trading(make_run([(0.5, ACTIVE)])).passed is None


def test_no_dispatch_while_failed() -> None:
    def run(order_times: list[float], **proof: Any) -> DrillRecord:
        r = make_run([(0.5, ACTIVE)], [order(m, False, "open", cid=f"c{i}") for i, m in enumerate(order_times)],
                     t_release=20.0)
        p = {"reason": "OOMKilled", "failing_since_mono": 5.0, "reasons_seen": {"OOMKilled": 5.0,
             "CrashLoopBackOff": 6.0}, "pod": "p", "restart_count": 2, **proof}
        return replace(r, steps=(replace(r.steps[0], kind="kubernetes.memory_limit", proof=p),))

    res = C.no_dispatch_while_failed(run([1.0, 4.9, 20.5]))   # before the failure and after the release
    assert res.passed is True and "CrashLoopBackOff, OOMKilled" in res.detail
    res = C.no_dispatch_while_failed(run([1.0, 12.0]))
    assert res.passed is False and "1 order(s)" in res.detail and "OOMKilled" in res.detail
    assert C.no_dispatch_while_failed(run([], reason=None)).passed is None


def test_restart_latch_on_startup_judges_every_restart() -> None:
    from pytest_chaosdrill.timeline import Mark

    restart = latched("RESTART_RECONCILE_REQUIRED")
    story = [(0.5, ACTIVE), (2.0, restart), (3.0, ACTIVE), (5.0, None), (6.0, restart), (7.0, ACTIVE)]
    marks = (Mark("restart", 1.5, "", {}), Mark("restart", 4.5, "", {}))
    res = C.restart_latch_on_startup(make_run(story, marks=marks))
    assert res.passed is True and "restart 2 (sample 4)" in res.detail
    # the second restart comes back trading at once (no latch): one restart unlatched fails the check
    story[4] = (6.0, ACTIVE)
    res = C.restart_latch_on_startup(make_run(story, marks=marks))
    assert res.passed is False and "restart 1 (sample 1): latch=True" in res.detail
    assert "restart 2 (sample 4): latch=False" in res.detail
    # one restart: judged as before
    assert C.restart_latch_on_startup(make_run(story[:3], marks=marks[:1])).passed is True
    assert C.restart_latch_on_startup(make_run(story)).passed is None
