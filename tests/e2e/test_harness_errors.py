"""ERROR is the harness's verdict, FAIL the service's: a venue that dies mid-drill and a check that
raises end as ERROR (component and the traceback's last line), JUnit ``<error>``, never FAIL."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from drilltexts import BOOK_GAP
from junit_rules import junit10_problems
from test_plugin_drills import assert_complete, assert_pid_gone, make_drill, only_folder, run

#: A trigger that really stops the in-process venue server mid-drill (as a crashed venue would), and
#: proves it: the venue's own address refuses connections.
VENUE_DIES = '''
import gc, socket, threading, time
from pytest_chaosdrill.faults import Trigger
from pytest_chaosdrill.venue import VenueServer


class VenueDies(Trigger):
    kind = "test.venue_dies"

    def fire(self):
        self.servers = [o for o in gc.get_objects() if isinstance(o, VenueServer)]
        threading.Thread(target=lambda: [s.stop() for s in self.servers], daemon=True).start()
        return {"stopping": len(self.servers)}

    def wait_landed(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection((self.servers[0].host, self.servers[0].port), timeout=0.2).close()
            except OSError:
                return {"venue": "refuses connections"}
            time.sleep(0.02)
        raise AssertionError("the venue did not die")

    def release(self):
        return {}


def pytest_chaosdrill_add_triggers(triggers):
    triggers["test.venue_dies"] = VenueDies
'''

RAISING_CHECK = '''
def broken_check(record):
    """A check with a bug of its own."""
    return {}["missing_key"]


def pytest_chaosdrill_add_checks(checks):
    checks["broken_check"] = broken_check
'''

GAP_TRIGGER = "trigger: {kind: venue.book_gap, params: {inst_id: BTC-USDT-SWAP, skip: 3}}"


def junit_case(pytester: pytest.Pytester) -> ET.Element:
    root = ET.parse(pytester.path / "junit.xml").getroot()
    assert junit10_problems(root) == []
    (case,) = list(root.iter("testcase"))
    suite = root.find("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    return case


def test_a_venue_killed_mid_drill_is_error_not_fail(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(VENUE_DIES)
    make_drill(pytester, "dies.yaml", BOOK_GAP.replace(GAP_TRIGGER, "trigger: {kind: test.venue_dies}"))
    result = run(pytester, f"--junitxml={pytester.path / 'junit.xml'}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ERROR: harness error in venue*refuses connections*"])
    meta = assert_complete(only_folder(pytester))
    assert meta["verdict"] == "ERROR", meta
    assert_pid_gone(meta)
    case = junit_case(pytester)
    assert case.find("failure") is None and "harness error in venue" in case.find("error").get("message")
    # recheck re-derives ERROR from the stored record (the harness fact is in it), not FAIL
    out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "recheck", str(only_folder(pytester))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "same      drill_5_ws_book_gap: ERROR" in out.stdout, out.stdout


def test_a_raising_check_is_error_not_fail(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RAISING_CHECK)
    make_drill(pytester, "gap.yaml", BOOK_GAP.replace("  - no_open_dispatch_while_blocked",
                                                        "  - no_open_dispatch_while_blocked\n  - broken_check"))
    result = run(pytester, f"--junitxml={pytester.path / 'junit.xml'}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ERROR: harness error in check broken_check: KeyError: 'missing_key'*"])
    folder = only_folder(pytester)
    meta = assert_complete(folder)
    assert meta["verdict"] == "ERROR", meta
    assert "FAIL" not in meta["reason"]
    junit_case(pytester)
