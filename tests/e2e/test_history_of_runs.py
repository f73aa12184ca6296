"""History from real runs: the same drill run twice on one commit in a pytester project, once passing
and once failing a check; ``chaosdrill history`` and report.html's History section (checked in
headless Chromium) flag it flaky, with the verdict per run and a time-to-safe plot."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drilltexts import BOOK_GAP
from test_plugin_drills import make_drill, run

ALWAYS_RED = '''
from pytest_chaosdrill.checks import CheckResult

def always_red(record):
    """The second run's verdict differs: a check that fails."""
    return CheckResult("always_red", False, "red on purpose")

def pytest_chaosdrill_add_checks(checks):
    checks["always_red"] = always_red
'''


def _devtools_module() -> Any:
    spec = importlib.util.spec_from_file_location("report_html_tests", Path(__file__).parents[1] / "unit" / "test_report_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_history_of_real_runs_flags_a_flaky_drill(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMIT", "abcdef0123456789abcdef0123456789abcdef01")
    pytester.makeconftest(ALWAYS_RED)
    make_drill(pytester, "gap.yaml", BOOK_GAP)
    run(pytester).assert_outcomes(passed=1)
    make_drill(pytester, "gap.yaml", BOOK_GAP.replace("  - no_open_dispatch_while_blocked",
                                                        "  - no_open_dispatch_while_blocked\n  - always_red"))
    run(pytester).assert_outcomes(failed=1)
    evidence = pytester.path / "evidence"
    runs = sorted((evidence / "runs").iterdir())
    assert len(runs) == 2

    out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "history", str(evidence), "--runs"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = next(x for x in out.stdout.splitlines() if x.startswith("drill_5_ws_book_gap  "))
    assert row.split()[2:5] == ["2", "1/2", "FAIL"] and "abcdef0123" in row, row
    assert "drill_5_ws_book_gap (process) FLAKY" in out.stdout
    assert out.stdout.index(runs[0].name) < out.stdout.index(runs[1].name)
    assert out.stdout.rstrip().endswith("1 drill(s), 2 run(s), 1 flaky")

    report = runs[1] / "report.html"
    assert subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "report", str(runs[1])],
                          capture_output=True, text=True, timeout=60).returncode == 0
    helpers = _devtools_module()
    if not helpers.CHROMIUM.exists():
        if os.environ.get("CHAOSDRILL_REQUIRE_BROWSER") == "1":
            pytest.fail("CHAOSDRILL_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
        pytest.skip("no /usr/bin/chromium; set CHAOSDRILL_REQUIRE_BROWSER=1 to fail instead")
    pytest.importorskip("websocket")
    with helpers.chromium_page(helpers.CHROMIUM, report) as dt:
        def js(expr: str) -> Any:
            r = dt.call("Runtime.evaluate", expression=expr, returnByValue=True)
            assert "exceptionDetails" not in r, r
            return r["result"].get("value")

        assert js("document.querySelector('tr[data-history-drill=drill_5_ws_book_gap]').dataset.flaky") == "yes"
        text = js("document.querySelector('tr[data-history-drill=drill_5_ws_book_gap]').innerText")
        assert "PASS" in text and "FAIL" in text and "FLAKY" in text and "abcdef0123" in text, text
        # the time-to-safe plot was laid out, with one dot per run that observed it
        box = js("document.querySelector('svg.cd-history').getBoundingClientRect().height")
        assert box > 20
        assert js("document.querySelectorAll('svg.cd-history circle').length") == 2
        problems = [e for e in dt.events if e.get("method") == "Runtime.exceptionThrown"
                    or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
        assert problems == [], problems
