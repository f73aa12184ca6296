"""pytest-xdist: one run id and one run folder per session, one SIGNOFF.md listing every drill, the
per-drill facts in the controller's JUnit file."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from junit_rules import junit10_problems

pytest.importorskip("xdist")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.serial  # a two-worker drill session of its own: never beside another test of a `pytest -n 2` run
def test_two_workers_make_one_run_with_one_signoff(pytester: pytest.Pytester) -> None:
    drills = pytester.path / "mydrills"
    drills.mkdir()
    for name in ("drill_5_ws_book_gap", "drill_6_ws_trades_gap"):
        (drills / f"{name}.yaml").write_text((ROOT / "drills" / f"{name}.yaml").read_text())
    pytester.makepyfile(test_drills="def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(f"--chaosdrill-drills={drills}", "-n", "2", "-p", "no:cacheprovider",
                                           f"--junitxml={junit}", timeout=300)
    result.assert_outcomes(passed=2)
    runs = list((pytester.path / "evidence" / "runs").iterdir())
    assert len(runs) == 1, runs
    folders = sorted(p.name for p in (runs[0] / "phase2").iterdir() if p.is_dir())
    assert folders == ["drill_5_ws_book_gap", "drill_6_ws_trades_gap"]
    signoff = (runs[0] / "SIGNOFF.md").read_text()
    assert "| drill_5_ws_book_gap |" in signoff and "| drill_6_ws_trades_gap |" in signoff
    # two drills are a partial selection: their sign-off is the run's own, never the evidence root's (issue 23)
    assert not (pytester.path / "evidence" / "SIGNOFF.md").exists()
    result.stdout.fnmatch_lines(["*chaos drills*", "*drill_5_ws_book_gap*PASS*", "*drill_6_ws_trades_gap*PASS*"])
    root = ET.parse(junit).getroot()
    assert junit10_problems(root) == []
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["chaosdrill_run_id"] == runs[0].name
    assert props["chaosdrill[drill_6_ws_trades_gap-process].verdict"] == "PASS"
    assert (runs[0] / "report.html").is_file()
