"""JUnit's ``<error>`` for drills whose verdict is ERROR (the harness broke), ``<failure>`` for the rest.

pytest's JUnit writer calls every failed test call a ``<failure>``; CI tools read ``<error>`` as "the
test could not run" and ``<failure>`` as "the code under test is wrong". A drill the harness broke
(venue or proxy died, a check raised, the plugin itself) must not read as the service being unsafe,
so after pytest wrote the file this turns those drills' ``<failure>`` into ``<error>`` and fixes the
suite's counts.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

import pytest

from .state import SessionState


class DrillJUnitErrors:
    """Collects the drills that ended ERROR; rewrites their JUnit ``<failure>`` as ``<error>``."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.nodeids: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "chaosdrill", None)
        if report.when == "teardown" and isinstance(data, dict) and data.get("verdict") == "ERROR":
            self.nodeids.append(report.nodeid)

    @pytest.hookimpl(trylast=True)  # after pytest's JUnit writer wrote the file
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.state.is_worker or not self.nodeids:
            return
        from _pytest.junitxml import mangle_test_address, xml_key

        xml = session.config.stash.get(xml_key, None)
        if xml is None or not Path(xml.logfile).is_file():
            return
        names = []
        for nodeid in self.nodeids:
            parts = mangle_test_address(nodeid)
            if xml.prefix:
                parts.insert(0, xml.prefix)
            names.append((".".join(parts[:-1]), parts[-1]))
        as_errors(Path(xml.logfile), names)


def as_errors(path: Path, cases: Iterable[tuple[str, str]]) -> int:
    """Turn the ``<failure>`` of the test cases ``(classname, name)`` in the JUnit file ``path`` into
    ``<error>``, adjusting each suite's ``failures``/``errors``; returns how many were changed."""
    wanted = set(cases)
    tree = ET.parse(path)
    changed = 0
    for suite in tree.getroot().iter("testsuite"):
        moved = 0
        for case in suite.iter("testcase"):
            if (case.get("classname", ""), case.get("name", "")) not in wanted:
                continue
            for child in case:
                if child.tag == "failure":
                    child.tag = "error"
                    moved += 1
        if moved:
            suite.set("failures", str(max(0, int(suite.get("failures", "0")) - moved)))
            suite.set("errors", str(int(suite.get("errors", "0")) + moved))
            changed += moved
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed
