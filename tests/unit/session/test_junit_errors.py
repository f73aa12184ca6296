"""session.junit_errors.as_errors: a drill's <failure> becomes <error>, the suite's counts follow."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_chaosdrill.session.junit_errors import as_errors

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="2" tests="2">
<testcase classname="test_drills" name="test_drill[a-process]"><failure message="ERROR: harness error in venue">x</failure></testcase>
<testcase classname="test_drills" name="test_drill[b-process]"><failure message="FAIL: too slow">y</failure></testcase>
</testsuite></testsuites>"""


def test_only_the_named_case_turns_into_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert as_errors(path, [("test_drills", "test_drill[a-process]")]) == 1
    suite = ET.parse(path).getroot().find("testsuite")
    a, b = suite.findall("testcase")
    assert a.find("error").get("message") == "ERROR: harness error in venue" and a.find("failure") is None
    assert b.find("failure") is not None
    assert (suite.get("errors"), suite.get("failures")) == ("1", "1")
