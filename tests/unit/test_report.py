"""SIGNOFF.md never overstates: READY TO SIGN with the statement only when every machine box holds."""
from __future__ import annotations

from pytest_chaosdrill.report import DrillOutcome, signoff_markdown, signoff_state


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


def test_html_report_uses_the_same_rule() -> None:
    from pytest_chaosdrill import report_html

    outs = [outcome(i) for i in range(1, 9)]
    assert report_html.signoff_state(outs) == signoff_state(outs) == (True, [])
    outs[0] = outcome(1, "FAIL")
    assert report_html.signoff_state(outs) == signoff_state(outs)
