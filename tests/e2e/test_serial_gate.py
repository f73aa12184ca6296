"""The repository's ``serial`` marker (conftest.py): in a ``pytest -n 2`` run a serial test never runs beside
another test, and the others still run on both workers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("xdist")
ROOT = Path(__file__).resolve().parents[2]

TESTS = '''
import json, os, time
import pytest

def _span(name, tmp_path_factory):
    start = time.monotonic()
    time.sleep(0.4)
    out = tmp_path_factory.getbasetemp().parent / f"span-{name}.json"
    out.write_text(json.dumps([name, start, time.monotonic(), os.environ["PYTEST_XDIST_WORKER"]]))

@pytest.mark.parametrize("n", range(8))
def test_plain(n, tmp_path_factory):
    _span(f"plain{n}", tmp_path_factory)

@pytest.mark.serial
@pytest.mark.parametrize("n", range(2))
def test_alone(n, tmp_path_factory):
    _span(f"serial{n}", tmp_path_factory)
'''


def test_a_serial_test_never_overlaps_another(pytester: pytest.Pytester) -> None:
    pytester.makeconftest((ROOT / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    serial: alone\n")
    pytester.makepyfile(test_spans=TESTS)
    base = pytester.path / "tmp"
    pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", f"--basetemp={base}",
                                  timeout=120).assert_outcomes(passed=10)
    spans = [json.loads(p.read_text()) for p in base.glob("span-*.json")]
    assert len(spans) == 10, spans
    assert {s[3] for s in spans if s[0].startswith("plain")} == {"gw0", "gw1"}  # the others ran in parallel
    for name, start, end, _ in (s for s in spans if s[0].startswith("serial")):
        beside = [o[0] for o in spans if o[0] != name and o[1] < end and start < o[2]]
        assert beside == [], f"{name} ran beside {beside}"
