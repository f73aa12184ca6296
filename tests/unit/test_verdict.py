"""``verdict.evaluate`` on hand-built records: each PASS / FAIL / NOT PROVEN rule, one record per rule.

The records are real ``DrillRecord`` objects (the type the runner freezes and ``chaosdrill recheck``
loads), the contract is the bundled one and the status payloads are its golden fixtures, so a rule is
seen to fire on the facts it names and not on a stand-in for the runner.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.checks import CheckResult
from pytest_chaosdrill.contract import Contract
from pytest_chaosdrill.record import COMPLETED, ERROR, INTERRUPTED, NOT_PROVEN, REFUSED, TIMEOUT, DrillRecord, StepRecord
from pytest_chaosdrill.timeline import Mark, Sample, Timeline
from pytest_chaosdrill.verdict import Verdict, evaluate


def golden(name: str) -> dict[str, Any]:
    return json.loads((resources.fixtures_dir() / f"{name}.json").read_text())


ACTIVE = golden("active_healthy")      # Active, contract-valid
BLOCKED = golden("ws_book_gap")        # ReduceOnly with the book-gap latch, contract-valid
# Active while reporting a reason: violates [INVARIANT] (Active => empty mode_reasons) and the schema
LYING = {**copy.deepcopy(ACTIVE), "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED"]}
DOWN = None                            # a sample that got no answer

# Trigger at 1.0 s; blocked from 1.05 s (50 ms to safe); recovered at 3.0 s.
STORY = [(0.5, ACTIVE), (0.9, ACTIVE), (1.05, BLOCKED), (1.5, BLOCKED), (2.0, BLOCKED), (3.0, ACTIVE)]


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


def passing(record: DrillRecord) -> CheckResult:
    """a check that holds"""
    return CheckResult("passing", True, "held")


def failing(record: DrillRecord) -> CheckResult:
    """a check that is broken by the run"""
    return CheckResult("failing", False, "an OPEN reached the venue")


def unproven(record: DrillRecord) -> CheckResult:
    """a check without the facts to decide"""
    return CheckResult("unproven", None, "no ledger entry in the window")


def raising(record: DrillRecord) -> CheckResult:
    """a check with a bug"""
    raise KeyError("ledger")


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "passing": passing, "failing": failing, "unproven": unproven, "raising": raising}


def record(story: list[tuple[float, Any]] = STORY, *, checks: tuple[str, ...] = ("passing",), budget_ms: float = 500,
           t_trigger: float = 1.0, marks: tuple[Mark, ...] = (), drill: dict | None = None, **values: Any) -> DrillRecord:
    """A completed drill record whose samples are ``story`` ((request time, payload or None) pairs, each
    answered 1 ms later); the first safe sample and the baseline are derived as the runner derives them."""
    samples = tuple(Sample(i, t, t + 0.001, "", 200 if st is not None else None, st,
                           None if st is not None else "connection refused")
                    for i, (t, st) in enumerate(story))
    tl = Timeline()
    for s in samples:
        tl.add(s)
    first = tl.first(lambda s: s.blocked, start=t_trigger)
    base = tl.last_ok(t_trigger)
    fields: dict[str, Any] = dict(
        drill={"id": "synthetic", "checks": list(checks), "time_to_safe_budget_ms": budget_ms, **(drill or {})},
        drill_path="", backend="process", target_name="t", target_files=(), contract={}, started_utc="",
        t_start=0.0, samples=samples, marks=marks, steps=(StepRecord("test.fault", {}, landed_mono=t_trigger),),
        t_trigger=t_trigger, t_recovered=3.001, t_end=4.0,
        first_safe_i=first.i if first else None, baseline_i=base.i if base else None)
    fields.update(values)
    return DrillRecord(**fields)


# --- PASS ---------------------------------------------------------------------------------------------

def test_pass_when_safe_in_budget_contract_clean_and_every_check_holds(contract: Contract) -> None:
    ev = evaluate(record(), contract, CHECKS)
    assert ev.verdict is Verdict.PASS, ev.reason
    assert ev.failures == [] and ev.unproven == [] and [r.name for r in ev.checks] == ["passing"]
    assert ev.observed is not None and ev.observed.mono == pytest.approx(1.051)
    assert ev.checks[0].criterion == "a check that holds"  # from the check's docstring


# --- FAIL ---------------------------------------------------------------------------------------------

def test_fail_when_the_safe_state_is_never_observed(contract: Contract) -> None:
    ev = evaluate(record([(0.5, ACTIVE), (1.5, ACTIVE), (2.5, ACTIVE)]), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL
    assert "the safe state (open_blocked) was never observed" in ev.reason


def test_fail_when_time_to_safe_exceeds_the_budget(contract: Contract) -> None:
    ev = evaluate(record(budget_ms=20), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL and "time to safe 51 ms exceeds the budget 20 ms" in ev.reason


def test_fail_when_one_sample_breaks_the_contract(contract: Contract) -> None:
    story = STORY[:5] + [(2.5, LYING), (3.0, ACTIVE)]
    ev = evaluate(record(story), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL
    assert "1 of 7 status samples violate the contract (INVARIANT, SCHEMA)" in ev.reason
    assert [s.i for s, _ in ev.sample_findings] == [5]


def test_fail_on_a_status_error_outside_planned_downtime_only(contract: Contract) -> None:
    story = STORY[:4] + [(1.7, DOWN)] + STORY[4:]
    ev = evaluate(record(story), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL and "1 status samples failed outside planned downtime" in ev.reason
    # the same failed sample inside a target_down .. target_up span (a planned restart) is no failure
    planned = (Mark("target_down", 1.6, ""), Mark("target_up", 1.8, ""))
    ev = evaluate(record(story, marks=planned), contract, CHECKS)
    assert ev.verdict is Verdict.PASS, ev.reason
    assert ev.status_errors == []


def test_errors_after_the_target_exited_count_only_when_exit_is_the_safe_state(contract: Contract) -> None:
    story = [(0.5, ACTIVE), (0.9, ACTIVE), (1.2, DOWN), (1.5, DOWN)]
    exited = record(story, drill={"safe_when": "target_exited"}, first_safe_i=-1, first_safe_mono=1.1)
    ev = evaluate(exited, contract, CHECKS)
    assert ev.verdict is Verdict.PASS, ev.reason
    ev = evaluate(record(story), contract, CHECKS)  # the same silence where the service had to stay up
    assert ev.verdict is Verdict.FAIL and "2 status samples failed" in ev.reason


def test_fail_when_recovery_is_not_verified(contract: Contract) -> None:
    ev = evaluate(record(recovery_missing="never back to Active within 10 s"), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL and "recovery not verified: never back to Active" in ev.reason


def test_a_failing_check_fails_and_beats_an_unproven_one(contract: Contract) -> None:
    ev = evaluate(record(checks=("unproven", "failing", "passing")), contract, CHECKS)
    assert ev.verdict is Verdict.FAIL and ev.reason == "failing: an OPEN reached the venue"
    assert ev.unproven == ["unproven: no ledger entry in the window"]  # still stated, not the verdict


def test_a_raising_check_is_a_harness_error_and_hides_no_other_check(contract: Contract) -> None:
    ev = evaluate(record(checks=("raising", "passing")), contract, CHECKS)
    assert ev.verdict is Verdict.ERROR and ev.reason.startswith("harness error in check raising: KeyError")
    assert [(r.name, r.passed, r.verdict) for r in ev.checks] == [("raising", None, "ERROR"), ("passing", True, "PASS")]


def test_a_raising_check_beats_a_failing_one_which_stays_listed(contract: Contract) -> None:
    ev = evaluate(record(checks=("raising", "failing")), contract, CHECKS)
    assert ev.verdict is Verdict.ERROR and "failing: an OPEN reached the venue" in ev.failures


# --- NOT PROVEN ---------------------------------------------------------------------------------------

def test_not_proven_when_a_check_cannot_decide_and_nothing_failed(contract: Contract) -> None:
    ev = evaluate(record(checks=("passing", "unproven")), contract, CHECKS)
    assert ev.verdict is Verdict.NOT_PROVEN and ev.reason == "unproven: no ledger entry in the window"
    assert ev.failures == []


def test_an_unknown_check_is_not_proven_never_a_pass(contract: Contract) -> None:
    ev = evaluate(record(checks=("passing", "no_such_check")), contract, CHECKS)
    assert ev.verdict is Verdict.NOT_PROVEN and "unknown check 'no_such_check'" in ev.reason


# --- how the run ended: the outcome decides before any check runs --------------------------------------

@pytest.mark.parametrize(("outcome", "verdict", "as_failure"), [
    (NOT_PROVEN, Verdict.NOT_PROVEN, False), (REFUSED, Verdict.NOT_PROVEN, False), (ERROR, Verdict.ERROR, True),
    (TIMEOUT, Verdict.TIMEOUT, True), (INTERRUPTED, Verdict.INTERRUPTED, True)])
def test_an_unfinished_run_takes_its_outcome_and_runs_no_check(contract: Contract, outcome: str, verdict: Verdict,
                                                                as_failure: bool) -> None:
    ev = evaluate(record(checks=("failing",), outcome=outcome, outcome_reason="the fault never landed"),
                  contract, CHECKS)
    assert ev.verdict is verdict and ev.reason == "the fault never landed" and ev.checks == []
    assert (ev.failures if as_failure else ev.unproven) == ["the fault never landed"]


def test_a_contract_violation_seen_before_an_error_is_still_stated(contract: Contract) -> None:
    story = [(0.5, ACTIVE), (0.9, LYING)]
    ev = evaluate(record(story, outcome=ERROR, outcome_reason="venue died"), contract, CHECKS)
    assert ev.verdict is Verdict.ERROR
    assert ev.failures[0] == "venue died" and "violate the contract (INVARIANT, SCHEMA)" in ev.failures[1]
    # a refused run (the live interlock) states only the refusal
    ev = evaluate(record(story, outcome=REFUSED, outcome_reason="LIVE"), contract, CHECKS)
    assert ev.verdict is Verdict.NOT_PROVEN and ev.failures == []


def test_completed_is_the_only_outcome_that_runs_checks(contract: Contract) -> None:
    assert evaluate(record(outcome=COMPLETED), contract, CHECKS).checks  # the control of the test above
