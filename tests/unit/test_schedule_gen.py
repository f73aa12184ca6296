"""Unit tests of the schedule generator (pytest_chaosdrill.schedule_gen): how drawn choices become
schedules (time offsets after the step before, or alignment to a reconciliation read), and that every
schedule Hypothesis draws is a valid compound drill."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_chaosdrill.drill import load_drill, parse_drill
from pytest_chaosdrill.explore import example_drill
from pytest_chaosdrill.registry import Registry, builtin_checks, builtin_triggers, validate_drill
from pytest_chaosdrill.resources import drills_dir
from pytest_chaosdrill.schedule_gen import ScheduleGenerator, align_problems

EXPLORE_DRILL = drills_dir() / "explore_1_fault_schedules.yaml"


def gen(**override: Any) -> ScheduleGenerator:
    return ScheduleGenerator({**load_drill(EXPLORE_DRILL).trigger_params, **override})


def test_drawn_choices_become_steps_at_offsets_after_the_previous_step() -> None:
    g = gen()
    kinds = [e.kind for e in g.pool]
    steps = g.steps_of(((kinds.index("venue.trades_gap"), 2, 0, 0), (kinds.index("venue.session_termination"), 0, 0, 0),
                        (kinds.index("venue.freeze"), 1, 0, 1)))
    assert [s["at_s"] for s in steps] == [0.0, g.offsets[0], round(g.offsets[0] + g.offsets[1], 3)]
    assert steps[1]["release_after_s"] == 2.5 and steps[2]["release_after_s"] == 2.5
    assert "release_after_s" not in steps[0] and not any("align" in s for s in steps)


def test_the_timings_after_the_offsets_align_a_step_to_a_reconciliation_read() -> None:
    g = gen()
    assert g.align == ["recon_read"] and g.timings == len(g.offsets) + 1
    kinds = [e.kind for e in g.pool]
    aligned = len(g.offsets)
    steps = g.steps_of(((kinds.index("venue.session_termination"), 0, 0, 0), (kinds.index("venue.book_gap"), 1, 0, 0),
                        (kinds.index("venue.trades_gap"), aligned, 0, 0)))
    # aligned: no earlier than the step before it, then at the first outstanding reconciliation read
    assert steps[2]["align"] == "recon_read" and steps[2]["at_s"] == steps[1]["at_s"] == g.offsets[1]
    assert gen().steps_of(((0, aligned, 0, 0),))[0] == {**g.pool[0].step(0.0, 0, 0), "align": "recon_read"}


def test_without_align_only_time_offsets_are_drawn() -> None:
    g = gen(align=[])
    assert g.timings == len(g.offsets)


def test_align_must_name_known_events() -> None:
    assert align_problems({"align": ["recon_read"]}) == [] and align_problems({}) == []
    assert align_problems({"align": "recon_read"}) and align_problems({"align": ["whenever"]})


@pytest.mark.parametrize("align", [[], ["recon_read"]])
def test_hypothesis_draws_valid_schedules_of_distinct_kinds(align: list[str]) -> None:
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    g = gen(align=align)
    registry = Registry(builtin_triggers(), builtin_checks())
    seen: list[list[dict[str, Any]]] = []

    @hyp.settings(max_examples=60, database=None, deadline=None)
    @hyp.given(g.strategy(st))
    def prop(choices: Any) -> None:
        steps = g.steps_of(choices)
        assert 1 <= len(steps) <= g.max_steps
        assert len({s["kind"] for s in steps}) == len(steps)
        drill = parse_drill(example_drill(load_drill(EXPLORE_DRILL).raw, steps, "x_example"), Path("x.yaml"))
        assert validate_drill(drill, registry)[0] == []
        seen.append(steps)

    prop()
    assert any(len(s) > 1 for s in seen)
    assert any(st_.get("align") for s in seen for st_ in s) == bool(align)
