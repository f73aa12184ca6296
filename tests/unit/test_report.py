"""SIGNOFF.md never overstates: READY TO SIGN with the statement only when every machine box holds."""
from __future__ import annotations

from pytest_chaosdrill.report import DrillOutcome, decide, signoff_markdown, signoff_state, write_signoff
from pytest_chaosdrill.report.signoff import EXPECTED_PHASE2, load_outcomes


def outcome(i: int, verdict: str = "PASS") -> DrillOutcome:
    return DrillOutcome(nodeid=f"n{i}", drill_id=f"drill_{i}", title="", group="phase2", backend="process",
                        verdict=verdict, reason="" if verdict == "PASS" else "latch_set_with: never set",
                        observed_valid=True, tokens_known=True, latch_checks=[True], owner_view_ok=True,
                        has_notes=True, files_complete=True,
                        capital_supremacy=True if i == 8 else None)


def test_all_pass_is_ready_with_statement_and_person_box_open() -> None:
    md = signoff_markdown([outcome(i) for i in range(1, 9)], "r", "c")
    assert md.splitlines()[0] == "# READY TO SIGN"
    assert "The system correctly transitions to safe states" in md and "Signed:" in md
    assert "- [ ] Owner dashboard passes 5-second rule for each scenario (open for a person)" in md


def test_one_failing_drill_is_not_ready_without_statement() -> None:
    outs = [outcome(i) for i in range(1, 9)]
    outs[2] = outcome(3, "FAIL")
    md = signoff_markdown(outs, "r", "c")
    assert md.splitlines()[0] == "# NOT READY"
    assert "drill_3 (process): FAIL: latch_set_with: never set" in md
    assert "All 8 drills executed" in md.split("Drills behind it:")[0]
    assert "correctly transitions" not in md and "Signed:" not in md


def test_not_proven_and_missing_drills_are_not_ready() -> None:
    outs = [outcome(i) for i in range(1, 8)] + [outcome(8, "NOT PROVEN")]
    assert signoff_markdown(outs, "r", None).startswith("# NOT READY")
    ready, why = signoff_state([outcome(i) for i in range(1, 5)])
    assert not ready and any("only 4 of 8" in w for w in why)


def test_every_machine_box_is_part_of_the_one_rule() -> None:
    # All eight passed, but one drill's observed status failed validate-status: the box is open, so
    # neither SIGNOFF.md nor the state the HTML report shows (signoff_state, the same decide()) is READY.
    outs = [outcome(i) for i in range(1, 9)]
    assert signoff_state(outs) == (True, [])
    outs[4].observed_valid = False
    decision = decide(outs)
    assert not decision.ready and signoff_state(outs) == (False, [])
    assert decision.open_boxes == ["`validate_status.py` passes for all observed_status.json files"]
    md = signoff_markdown(outs, "r", "c")
    assert md.startswith("# NOT READY") and "Open boxes: `validate_status.py` passes" in md


def test_expected_count_is_one_setting() -> None:
    outs = [outcome(i) for i in range(1, 4)]
    outs[2].capital_supremacy = True  # the one drill that exercises Kill with exposure, in this run
    assert signoff_state(outs, expected_phase2=3) == (True, [])
    assert "- [x] All 3 drills executed" in signoff_markdown(outs, "r", "c", expected_phase2=3)
    assert EXPECTED_PHASE2 == 8 and not signoff_state(outs)[0]


def test_write_signoff_stores_the_facts_the_report_decides_on(tmp_path) -> None:
    outs = [outcome(i) for i in range(1, 9)]
    write_signoff(tmp_path, outs, "r", "c", preface="> **PARTIAL RUN**\n\n")
    assert (tmp_path / "SIGNOFF.md").read_text().startswith("> **PARTIAL RUN**\n\n# READY TO SIGN")
    assert load_outcomes(tmp_path) == outs
    assert load_outcomes(tmp_path / "nowhere") is None


def test_an_error_drill_is_not_ready_and_says_the_service_was_not_judged() -> None:
    outs = [outcome(i) for i in range(1, 8)] + [outcome(8, "ERROR")]
    outs[-1].reason = "harness error in venue: refuses connections"
    d = decide(outs)
    assert not d.ready
    (line,) = [w for w in d.why if w.startswith("drill_8")]
    assert "ERROR (harness, the service was not judged" in line and "harness error in venue" in line
