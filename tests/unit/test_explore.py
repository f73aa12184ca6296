"""Unit tests of the exploration driver (pytest_chaosdrill.explore): its parameters, the search (seeded,
cached, shrinking) over a fake example runner, the driver's own record and verdict, the drills it writes,
its check over the record, and the error without Hypothesis. The generator has its own file
(test_schedule_gen.py)."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from pytest_chaosdrill.checks import explore_found_no_violation
from pytest_chaosdrill.drill import load_drill
from pytest_chaosdrill import explore
from pytest_chaosdrill.errors import DrillFailed
from pytest_chaosdrill.explore import Example, Exploration, HypothesisMissing, Search, example_drill, import_hypothesis
from pytest_chaosdrill.schedule_gen import ScheduleGenerator
from pytest_chaosdrill.timeline import Timeline
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
    problems = registry().drivers["schedule.explore"].check_params(params)
    assert any(fragment in p for p in problems), problems


def test_exploration_is_a_driver_not_a_trigger_kind() -> None:
    reg = registry()
    assert "schedule.explore" not in reg.triggers and "schedule.explore" in reg.drivers
    assert reg.is_driven(load_drill(EXPLORE_DRILL))


def test_an_unknown_align_event_is_named() -> None:
    problems = registry().drivers["schedule.explore"].check_params({"pool": [{"kind": "venue.book_gap"}],
                                                                    "align": ["recon_write"]})
    assert any("'align' must be a list of events" in p and "recon_read" in p for p in problems), problems


GEN = ScheduleGenerator(load_drill(EXPLORE_DRILL).trigger_params)
AIMED = "WS_BOOK_GAP aimed at a reconciliation read"


def fake_runner(log: list[list[dict[str, Any]]]) -> Any:
    """Fails exactly the schedules with a book gap aligned to a reconciliation read (the modelled bug)."""
    def run(n: int, steps: list[dict[str, Any]], choices: Any) -> Example:
        log.append(steps)
        bad = any(s["kind"] == "venue.book_gap" and s.get("align") == "recon_read" for s in steps)
        return Example(n, steps, choices, verdict="FAIL" if bad else "PASS", reason=AIMED if bad else "",
                       signature=("global_invariants:reconcile_clears_only_older_codes",) if bad else (),
                       duration_s=1.0)
    return run


def test_the_search_finds_and_shrinks_the_aimed_bug_to_one_aligned_step() -> None:
    pytest.importorskip("hypothesis")
    log: list[list[dict[str, Any]]] = []
    search = Search(GEN, fake_runner(log), budget_s=60, seed=6)
    search.run()
    first, minimal = search.failing()  # type: ignore[misc]
    assert search.stopped_by == "shrunk"
    assert minimal.steps == [{"kind": "venue.book_gap", "params": {"inst_id": "BTC-USDT-SWAP", "skip": 5},
                              "at_s": 0.0, "align": "recon_read"}]
    assert first.n <= minimal.n and len(log) == len(search.examples)  # every schedule ran once (cache)
    summary = search.summary()
    assert summary["violations"] >= 1 and summary["examples"] == len(log)
    assert search.elapsed_at(first) == first.n * 1.0


def test_a_seed_reproduces_the_schedule_list() -> None:
    pytest.importorskip("hypothesis")

    def drawn(seed: int) -> list[list[dict[str, Any]]]:
        log: list[list[dict[str, Any]]] = []

        def passing(n: int, steps: list[dict[str, Any]], choices: Any) -> Example:
            if len(log) == 15:   # stop by count, not by wall time: a loaded machine draws fewer per second
                raise explore._BudgetSpent()
            log.append(steps)
            return Example(n, steps, choices, verdict="PASS")

        Search(GEN, passing, budget_s=600.0, seed=seed).run()
        assert len(log) == 15
        return log

    first = drawn(11)
    assert drawn(11) == first and drawn(12) != first


def test_the_budget_stops_the_search_before_the_next_example() -> None:
    pytest.importorskip("hypothesis")
    log: list[list[dict[str, Any]]] = []
    search = Search(GEN, fake_runner(log), budget_s=0, seed=6)
    search.run()
    assert search.stopped_by == "budget" and log == []


class FakeTarget:
    backend = "process"
    log_dir = None

    def __init__(self) -> None:
        self.stops = 0

    def running(self) -> bool:
        return False

    def stop(self, timeout: float) -> None:
        self.stops += 1

    def logs(self) -> list[Path]:
        return []


def exploration(tmp_path: Path, budget: float = 60) -> Exploration:
    rendered = SimpleNamespace(config=SimpleNamespace(name="t", source="t.yaml", stop_timeout_s=1.0), files={},
                               secrets=lambda: [])
    ctx = SimpleNamespace(target=FakeTarget(), rendered=rendered, timeline=Timeline())
    contract = SimpleNamespace(check=lambda status: [])
    ex = Exploration(ctx, load_drill(EXPLORE_DRILL), contract=contract, contract_info={},  # type: ignore[arg-type]
                     triggers=builtin_triggers(), checks=builtin_checks(), backend="process",
                     settings={"explore_budget_s": budget, "explore_seed": 6})
    ex._scratch = lambda: tmp_path  # type: ignore[method-assign]
    return ex


def test_the_driver_records_the_exploration_and_fails_with_the_minimal_drill(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("hypothesis")
    ex = exploration(tmp_path)
    runner = fake_runner([])
    monkeypatch.setattr(ex, "_run_example", runner)
    with pytest.raises(DrillFailed, match="explore_found_no_violation"):
        ex.execute()
    assert ex.evaluation is not None and ex.evaluation.verdict.value == "FAIL"
    rec = ex.record
    assert rec is not None and [s.kind for s in rec.steps] == ["schedule.explore"]
    proof = rec.steps[0].proof
    assert proof["minimal"]["steps"][0]["align"] == "recon_read" and proof["stopped_by"] == "shrunk"
    minimal = load_drill(tmp_path / "minimal_drill.yaml")
    assert minimal.trigger_kind == "schedule" and validate_drill(minimal, registry())[0] == []
    assert {"minimal_drill.yaml", "failing_drill.yaml", "explored.jsonl"} <= set(rec.attachments)


def test_the_driver_is_not_proven_when_no_example_ran(tmp_path: Path) -> None:
    pytest.importorskip("hypothesis")
    ex = exploration(tmp_path, budget=0)
    with pytest.raises(AssertionError, match="no explored schedule ran to a verdict"):
        ex.execute()
    assert ex.evaluation is not None and ex.evaluation.verdict.value == "NOT PROVEN"


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
    with pytest.raises(HypothesisMissing, match=r"pip install 'pytest-chaosdrill\[test\]'"):
        import_hypothesis()
