"""Unit tests of the schedule explorer (pytest_chaosdrill.explore): its parameters, the schedules it
draws, the drills it writes, its check over the record, and the error without Hypothesis."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_chaosdrill.checks import explore_found_no_violation
from pytest_chaosdrill.drill import load_drill, parse_drill
from pytest_chaosdrill.explore import ExploreTrigger, example_drill, import_hypothesis
from pytest_chaosdrill.faults import FaultNotLanded
from pytest_chaosdrill.record import DrillRecord, StepRecord
from pytest_chaosdrill.registry import Registry, builtin_checks, builtin_triggers, validate_drill
from pytest_chaosdrill.resources import drills_dir

EXPLORE_DRILL = drills_dir() / "explore_1_fault_schedules.yaml"


def registry() -> Registry:
    return Registry(builtin_triggers(), builtin_checks())


def test_the_bundled_explore_drill_is_valid_and_needs_restarts() -> None:
    drill = load_drill(EXPLORE_DRILL)
    problems, req = validate_drill(drill, registry())
    assert problems == []
    assert {"start", "kill"} <= req.capabilities
    assert "explore" in drill.markers and "phase2" not in drill.markers


@pytest.mark.parametrize("params, fragment", [
    ({"pool": []}, "'pool' must be a non-empty list"),
    ({"pool": [{"kind": "venue.nope"}]}, "pool[0].kind: 'venue.nope' is not a registered fault kind"),
    ({"pool": [{"kind": "schedule"}]}, "schedules cannot be drawn"),
    ({"pool": [{"kind": "venue.freeze", "params": [{"channels": ["books"]}, {"chans": 1}]}]}, "pool[0].params[1] (venue.freeze)"),
    ({"pool": [{"kind": "venue.book_gap"}], "max_steps": 2}, "'max_steps' must be an integer from 1 to the pool size (1)"),
    ({"pool": [{"kind": "venue.book_gap"}], "offsets_s": [-1]}, "'offsets_s' must be a non-empty list of numbers ≥ 0"),
    ({"pool": [{"kind": "venue.book_gap", "release_after_s": ["x"]}]}, "pool[0].release_after_s"),
    ({"pool": [{"kind": "venue.book_gap"}], "budget": 3}, "unknown parameter 'budget'"),
])
def test_explore_parameter_problems(params: dict[str, Any], fragment: str) -> None:
    problems = builtin_triggers()["schedule.explore"].check_params(params)
    assert any(fragment in p for p in problems), problems


def trigger() -> ExploreTrigger:
    params = load_drill(EXPLORE_DRILL).trigger_params
    return builtin_triggers()["schedule.explore"](None, params)  # type: ignore[arg-type]


def test_drawn_choices_become_steps_at_offsets_after_the_previous_step() -> None:
    t = trigger()
    kinds = [e.kind for e in t.pool]
    steps = t.steps_of(((kinds.index("venue.trades_gap"), 2, 0, 0), (kinds.index("venue.session_termination"), 0, 0, 0),
                        (kinds.index("venue.freeze"), 1, 0, 1)))
    assert [s["at_s"] for s in steps] == [0.0, t.offsets[0], round(t.offsets[0] + t.offsets[1], 3)]
    assert steps[1]["release_after_s"] == 2.5 and steps[2]["release_after_s"] == 2.5
    assert "release_after_s" not in steps[0]


def test_hypothesis_draws_valid_schedules_of_distinct_kinds() -> None:
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    t = trigger()
    seen: list[list[dict[str, Any]]] = []

    @hyp.settings(max_examples=60, database=None, deadline=None)
    @hyp.given(t.strategy(st))
    def prop(choices: Any) -> None:
        steps = t.steps_of(choices)
        assert 1 <= len(steps) <= t.max_steps
        assert len({s["kind"] for s in steps}) == len(steps)
        drill = parse_drill(example_drill(load_drill(EXPLORE_DRILL).raw, steps, "x_example"), Path("x.yaml"))
        assert validate_drill(drill, registry())[0] == []
        seen.append(steps)

    prop()
    assert any(len(s) > 1 for s in seen)


def test_example_drill_is_a_replayable_compound_drill(tmp_path: Path) -> None:
    steps = [{"kind": "venue.book_gap", "params": {"skip": 5}, "at_s": 0.0},
             {"kind": "venue.session_termination", "params": {"refuse_reauth_s": 1.5}, "at_s": 0.3, "release_after_s": 2.5}]
    path = tmp_path / "minimal_drill.yaml"
    path.write_text(yaml.safe_dump(example_drill(load_drill(EXPLORE_DRILL).raw, steps, "explore_minimal")))
    drill = load_drill(path)
    assert drill.trigger_kind == "schedule" and drill.trigger_params["steps"] == steps
    assert drill.markers == ("compound",) and [c.name for c in drill.checks] == ["global_invariants"]
    assert validate_drill(drill, registry())[0] == []


def rec_with(proof: dict[str, Any]) -> DrillRecord:
    return DrillRecord(drill={"id": "e"}, drill_path="", backend="process", target_name="t", target_files=(),
                       contract={}, started_utc="", t_start=0.0, steps=(StepRecord("schedule.explore", {}, proof=proof),))


def test_explore_check_fails_with_the_minimal_schedule() -> None:
    steps = [{"kind": "venue.trades_gap", "params": {}, "at_s": 0.0}]
    res = explore_found_no_violation(rec_with({"examples": 9, "conclusive": 9, "violations": 2,
                                               "signature": ["global_invariants:latch_clears_after_reconcile"],
                                               "minimal": {"n": 7, "steps": steps, "reason": "why"}}))
    assert res.passed is False
    assert "2 of 9 explored schedules broke an invariant" in res.detail and "kind: venue.trades_gap" in res.detail
    assert "minimal_drill.yaml" in res.detail


def test_explore_check_passes_or_is_not_proven() -> None:
    assert explore_found_no_violation(rec_with({"examples": 5, "conclusive": 5, "violations": 0})).passed is True
    assert explore_found_no_violation(rec_with({"examples": 3, "conclusive": 0, "violations": 0})).passed is None
    assert explore_found_no_violation(rec_with({})).passed is None


def test_without_hypothesis_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(FaultNotLanded, match=r"pip install 'pytest-chaosdrill\[test\]'"):
        import_hypothesis()
