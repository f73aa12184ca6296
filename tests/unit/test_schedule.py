"""Unit tests of fault schedules (pytest_chaosdrill.faults.schedule, checks.invariants): validation at collection, the step
runner (offsets, landing proofs, timed releases, release in finally) with fake steps, and the global
invariants over hand-built records."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_chaosdrill.drill import parse_drill
from pytest_chaosdrill.record import DrillRecord, StepRecord
from pytest_chaosdrill.checks import global_invariants
from pytest_chaosdrill.faults import FaultNotLanded, ScheduleKind, ScheduleTrigger, Trigger, requirements
from pytest_chaosdrill.registry import Registry, builtin_checks, builtin_triggers, validate_drill
from pytest_chaosdrill.timeline import Mark, Sample, Timeline

GAP = "WS_BOOK_GAP_RECONCILE_REQUIRED"
SESSION = "SESSION_TERMINATION_RECONCILE_REQUIRED"


def drill_of(steps: list[dict[str, Any]], **extra: Any) -> Any:
    data = {"id": "compound_test", "title": "t", "markers": ["compound"],
            "trigger": {"kind": "schedule", "params": {"steps": steps}}, "expected": {},
            "time_to_safe_budget_ms": 1000, "checks": ["global_invariants"], "recovery": {"kind": "reconcile"}, **extra}
    return parse_drill(data, Path("compound_test.yaml"))


def registry() -> Registry:
    return Registry(builtin_triggers(), builtin_checks())


# --- validation ---------------------------------------------------------------------------------------


def test_a_valid_schedule_needs_the_capabilities_of_its_steps() -> None:
    d = drill_of([{"kind": "venue.book_gap", "params": {"skip": 5}},
                  {"kind": "process.kill_restart", "params": {"hold_reconcile_s": 1.0}, "at_s": 0.2}])
    problems, req = validate_drill(d, registry())
    assert problems == []
    assert {"start", "kill"} <= req.capabilities


@pytest.mark.parametrize("steps, fragment", [
    ([{"kind": "venue.nope"}], "steps[0].kind: unknown trigger kind 'venue.nope'"),
    ([{"kind": "venue.freeze", "params": {"chanels": []}}], "steps[0].params (venue.freeze): "),
    ([{"kind": "venue.book_gap", "at_s": -1}], "steps[0].at_s: must be a number ≥ 0"),
    ([{"kind": "venue.book_gap", "when": 1}], "steps[0]: unknown field 'when'"),
    ([{"kind": "schedule", "params": {"steps": []}}], "a schedule cannot contain a schedule"),
    ([{"kind": "venue.freeze", "at_s": 0}, {"kind": "venue.freeze", "at_s": 1}], "overlaps steps[0] (venue.freeze)"),
    ([], "'steps' must be a non-empty list"),
])
def test_schedule_problems_name_the_step(steps: list[dict[str, Any]], fragment: str) -> None:
    problems, _ = validate_drill(drill_of(steps), registry())
    assert any(fragment in p for p in problems), problems
    assert all(p.startswith("field 'trigger.params'") for p in problems)


def test_released_held_steps_of_one_kind_may_follow_each_other() -> None:
    steps = [{"kind": "venue.freeze", "at_s": 0, "release_after_s": 1.0}, {"kind": "venue.freeze", "at_s": 1.5}]
    assert validate_drill(drill_of(steps), registry())[0] == []


def test_schedule_sees_kinds_plugins_add_after_it_was_made() -> None:
    table = builtin_triggers()
    table["plugin.thing"] = type("PluginThing", (Trigger,), {"kind": "plugin.thing", "requires": frozenset({"pause"})})
    caps, _, problems = requirements(table["schedule"], {"steps": [{"kind": "plugin.thing"}]})
    assert problems == [] and caps == frozenset({"pause"})


# --- the step runner, with fake steps -----------------------------------------------------------------


class Ctx:
    def __init__(self) -> None:
        self.timeline = Timeline()


class Fake(Trigger):
    """Lands at once unless ``blocked_by`` names a step whose release it waits for (a gap during a freeze)."""

    events: list[tuple[str, str, float]] = []
    gates: dict[str, threading.Event] = {}

    def fire(self) -> dict[str, Any]:
        Fake.events.append(("fire", self.params["name"], time.monotonic()))
        return {"name": self.params["name"]}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if self.params.get("never"):
            raise FaultNotLanded("never lands")
        gate = self.params.get("blocked_by")
        if gate and not Fake.gates.setdefault(gate, threading.Event()).wait(timeout):
            raise FaultNotLanded(f"{gate} still held")
        self.landed_mono = time.monotonic()
        return {"landed": self.params["name"]}

    def release(self) -> dict[str, Any]:
        Fake.events.append(("release", self.params["name"], time.monotonic()))
        Fake.gates.setdefault(self.params["name"], threading.Event()).set()
        return {}


@pytest.fixture
def fake_table() -> dict[str, Any]:
    Fake.events, Fake.gates = [], {}
    table: dict[str, Any] = {"fake.step": lambda ctx, params: Fake(ctx, params)}
    table["schedule"] = ScheduleKind(table)
    return table


def test_steps_fire_at_their_offsets_and_a_timed_release_runs_while_a_step_waits_to_land(fake_table: Any) -> None:
    steps = [{"kind": "fake.step", "params": {"name": "freeze"}, "at_s": 0.0, "release_after_s": 0.3},
             {"kind": "fake.step", "params": {"name": "gap", "blocked_by": "freeze"}, "at_s": 0.1},
             {"kind": "fake.step", "params": {"name": "late"}, "at_s": 0.15}]
    ctx = Ctx()
    trig = fake_table["schedule"](ctx, {"steps": steps})
    t0 = time.monotonic()
    trig.fire()
    trig.wait_landed(5.0)
    fires = {n: t - t0 for e, n, t in Fake.events if e == "fire"}
    assert fires["freeze"] < 0.05 and 0.1 <= fires["gap"] < 0.2
    assert fires["late"] >= 0.3  # fired no earlier than its offset, after the gap proved its landing
    recs = trig.step_records()
    assert [r["params"]["name"] for r in recs] == ["freeze", "gap", "late"]
    assert recs[1]["landed_mono"] >= recs[0]["released_mono"]
    trig.release()
    assert sorted(n for e, n, _ in Fake.events if e == "release") == ["freeze", "gap", "late"]  # each once
    labels = [m.label for m in ctx.timeline.marks]
    for n in (1, 2, 3):
        assert {f"step_{n}_fired", f"step_{n}_landed", f"step_{n}_released"} <= set(labels)


def test_a_step_that_does_not_land_stops_the_schedule_and_every_fired_step_is_released(fake_table: Any) -> None:
    steps = [{"kind": "fake.step", "params": {"name": "a"}},
             {"kind": "fake.step", "params": {"name": "b", "never": True}, "at_s": 0.05},
             {"kind": "fake.step", "params": {"name": "c"}, "at_s": 0.1}]
    trig = fake_table["schedule"](Ctx(), {"steps": steps})
    trig.fire()
    with pytest.raises(FaultNotLanded, match=r"step 2 \(fake.step\) did not land"):
        trig.wait_landed(1.0)
    trig.release()
    recs = trig.step_records()
    assert [r["params"]["name"] for r in recs] == ["a", "b"] and recs[1]["not_landed"] == "never lands"
    assert sorted(n for e, n, _ in Fake.events if e == "release") == ["a", "b"]


# --- global invariants over hand-built records ---------------------------------------------------------


def status(mode: str = "Active", codes: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"trading_mode": mode if not codes or mode != "Active" else "ReduceOnly",
            "open_permission_blocked_latch": bool(codes), "open_permission_reason_codes": list(codes)}


def record(timeline: list[tuple[float, dict[str, Any]]], steps: list[StepRecord], ledger: list[dict] = (),
           marks: list[tuple[str, float]] = (), step_defs: list[dict] | None = None) -> DrillRecord:
    samples = tuple(Sample(i, t - 0.001, t, "", 200, st) for i, (t, st) in enumerate(timeline))
    defs = step_defs or [{"kind": s.kind, "at_s": 0} for s in steps]
    return DrillRecord(drill={"id": "x", "trigger": {"kind": "schedule", "params": {"steps": defs}}}, drill_path="",
                       backend="process", target_name="t", target_files=(), contract={}, started_utc="", t_start=0.0,
                       samples=samples, marks=tuple(Mark(label, t, "") for label, t in marks), ledger=tuple(ledger),
                       steps=tuple(steps), t_trigger=1.0, t_end=20.0)


def reads(t: float) -> list[dict]:
    return [{"type": "request", "recon_read": True, "path": "/api/v5/account/positions", "mono": t, "status": 200},
            {"type": "request", "recon_read": True, "path": "/api/v5/trade/orders-pending", "mono": t + 0.01,
             "status": 200}]


GAP_STEP = StepRecord("venue.book_gap", {}, landed_mono=1.0, condition_ended_mono=1.0, released_mono=1.0)
SESSION_STEP = StepRecord("venue.session_termination", {}, landed_mono=1.2, condition_ended_mono=3.0, released_mono=3.5)


def test_latch_cleared_while_a_second_condition_is_active_is_a_violation() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (1.3, status(codes=(GAP, SESSION))), (2.0, status())]
    res = global_invariants(record(tl, [GAP_STEP, SESSION_STEP], ledger=reads(1.8)))
    assert res.passed is False
    assert [v["invariant"] for v in res.facts["violations"]] == ["latch_clears_after_reconcile"]
    assert "step 2 (venue.session_termination)" in res.detail and "still active" in res.detail


def test_latch_cleared_after_both_conditions_and_fresh_reads_passes() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (1.3, status(codes=(GAP, SESSION))), (3.6, status())]
    res = global_invariants(record(tl, [GAP_STEP, SESSION_STEP], ledger=reads(3.4)))
    assert res.passed is True, res.detail


def test_latch_cleared_without_reads_after_the_condition_ended_is_a_violation() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (1.3, status(codes=(GAP, SESSION))), (3.6, status())]
    res = global_invariants(record(tl, [GAP_STEP, SESSION_STEP], ledger=reads(2.5)))
    assert res.passed is False and "no successful positions / orders_pending read" in res.detail


def test_a_step_whose_code_is_opted_out_is_not_held_to_the_latch() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (1.3, status(codes=(GAP, SESSION))), (2.0, status())]
    defs = [{"kind": "venue.book_gap"}, {"kind": "venue.session_termination", "code": None}]
    res = global_invariants(record(tl, [GAP_STEP, SESSION_STEP], ledger=reads(1.8), step_defs=defs))
    assert res.passed is True, res.detail


def test_open_order_in_any_blocked_span_is_a_violation() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (2.0, status()), (4.0, status(codes=(GAP,))),
          (6.0, status(codes=(GAP,))), (7.0, status())]
    order = {"type": "order", "mono": 5.0, "reduceOnly": False, "clOrdId": "cd1", "side": "buy", "sz": "1"}
    res = global_invariants(record(tl, [GAP_STEP], ledger=reads(1.5) + reads(6.5) + [order]))
    assert res.passed is False and [v["invariant"] for v in res.facts["violations"]] == ["no_open_while_blocked"]
    ok = global_invariants(record(tl, [GAP_STEP], ledger=reads(1.5) + reads(6.5) + [{**order, "mono": 3.0}]))
    assert ok.passed is True, ok.detail


def test_kill_ends_only_by_a_restart() -> None:
    tl = [(0.5, status()), (1.1, status("Kill", (GAP,))), (2.0, status())]
    bad = global_invariants(record(tl, [GAP_STEP], ledger=reads(1.5)))
    assert bad.passed is False and "without a restart" in bad.detail
    good = global_invariants(record(tl, [GAP_STEP], ledger=reads(1.5), marks=[("restart", 1.5)]))
    assert good.passed is True, good.detail


def test_duplicate_dispatch_is_a_violation() -> None:
    tl = [(0.5, status()), (1.1, status(codes=(GAP,))), (2.0, status())]
    dup = {"type": "order", "mono": 0.2, "duplicate": True, "clOrdId": "cd7", "reduceOnly": True}
    res = global_invariants(record(tl, [GAP_STEP], ledger=reads(1.5) + [dup]))
    assert res.passed is False and "cd7" in res.detail


def test_no_landed_step_is_not_proven() -> None:
    res = global_invariants(record([(0.5, status())], [StepRecord("venue.book_gap", {}, not_landed="no")]))
    assert res.passed is None


class FakeVenue:
    """The venue's control surface as an aligned step uses it: a recon_hold whose record reports a read
    held from ``read_at`` (seconds after the hold was asked for) for ``hold_s``."""

    def __init__(self, read_at: float | None, hold_s: float = 0.2) -> None:
        self.read_at, self.hold_s = read_at, hold_s
        self.t_hold: float | None = None
        self.cleared: list[str | None] = []

    def recon_hold(self, ms: int) -> Any:
        self.t_hold = time.monotonic()
        return type("Rec", (), {"id": "f1"})()

    def faults(self) -> list[Any]:
        age = time.monotonic() - (self.t_hold or 0)
        holding = self.read_at is not None and self.read_at <= age < self.read_at + self.hold_s
        detail = {"holding": 1, "holding_since_mono": (self.t_hold or 0) + (self.read_at or 0),
                  "first_held_path": "/api/v5/account/positions"} if holding else {"holding": 0}
        return [type("Rec", (), {"id": "f1", "detail": detail})()]

    def clear(self, kind: str | None = None) -> None:
        self.cleared.append(kind)


def test_an_aligned_step_fires_while_a_reconciliation_read_is_held(fake_table: Any) -> None:
    ctx = Ctx()
    ctx.venue = FakeVenue(read_at=0.15)  # type: ignore[attr-defined]
    trig = fake_table["schedule"](ctx, {"steps": [{"kind": "fake.step", "params": {"name": "gap"}, "align": "recon_read"}]})
    trig.fire()
    trig.wait_landed(2.0)
    fired = next(t for e, n, t in Fake.events if e == "fire")
    venue = ctx.venue  # type: ignore[attr-defined]
    assert venue.t_hold + 0.15 <= fired < venue.t_hold + 0.15 + 0.2  # inside the held read, not before it
    aligned = trig.step_records()[0]["proof"]["aligned"]
    assert aligned["event"] == "recon_read" and aligned["read_path"] == "/api/v5/account/positions"
    assert venue.cleared == ["recon_hold"]  # the hold ends with the step
    trig.release()


def test_an_aligned_step_with_no_read_to_align_to_does_not_land(fake_table: Any) -> None:
    ctx = Ctx()
    ctx.venue = FakeVenue(read_at=None)  # type: ignore[attr-defined]
    trig = fake_table["schedule"](ctx, {"steps": [{"kind": "fake.step", "params": {"name": "gap"}, "align": "recon_read"}]})
    trig.fire()
    with pytest.raises(FaultNotLanded, match="no reconciliation read reached the venue within 0.2s"):
        trig.wait_landed(0.2)
    assert not Fake.events and ctx.venue.cleared == ["recon_hold"]  # type: ignore[attr-defined]
    trig.release()


def test_align_names_a_known_event() -> None:
    problems = validate_drill(drill_of([{"kind": "venue.book_gap", "align": "recon_write"}]), registry())[0]
    assert any("steps[0].align: 'recon_write' is not an event" in p for p in problems), problems
