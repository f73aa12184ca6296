"""Allure: with allure-pytest and ``--alluredir`` each drill phase is a step and the evidence is attached,
redacted like the evidence itself; without allure-pytest nothing changes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from drilltexts import BOOK_GAP, TEST_MODULE

pytest.importorskip("allure_pytest")

SECRET = "allure-leak-check-7f3a9c"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    d = pytester.path / "mydrills"
    d.mkdir(exist_ok=True)
    # the secret's value appears in the drill definition (so in record.json) and, by its name, is a secret
    (d / "d.yaml").write_text(BOOK_GAP.replace("title: WS book gap (plugin test)",
                                               f"title: WS book gap {SECRET}"), encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)
    return pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "-p", "no:cacheprovider", *args, timeout=150)


def test_each_phase_is_a_step_and_the_evidence_is_attached(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_VENUE_API_SECRET", SECRET)  # the child pytest inherits it
    out = pytester.path / "allure-results"
    result = _run(pytester, f"--alluredir={out}")
    result.assert_outcomes(passed=1)
    results = [json.loads(p.read_text()) for p in out.glob("*-result.json")]
    assert len(results) == 1, results
    test = results[0]
    assert test["status"] == "passed"
    steps = [s["name"] for s in test["steps"]]
    assert steps[:3] == ["phase: start", "phase: steady_state", "phase: trigger"], steps
    assert "phase: assert" in steps
    for s in test["steps"]:
        assert s["status"] == "passed" and s["start"] <= s["stop"], s
    assert test["steps"][0]["start"] >= test["start"] - 60_000  # real times, not the teardown's
    trigger = next(s for s in test["steps"] if s["name"] == "phase: trigger")
    assert {"name": "fault", "value": "venue.book_gap"} in trigger["parameters"]
    checks = next(s for s in test["steps"] if s["name"] == "phase: assert")["steps"]
    assert [c["name"].split(":")[0] for c in checks] == ["latch_set_with", "no_open_dispatch_while_blocked",
                                                         "latch_clears_only_after_reconcile"]
    assert all(c["status"] == "passed" for c in checks)
    assert "Latch set with the drill's reason code" in checks[0]["name"]  # the criterion, from the docstring
    assert {"name": "verdict", "value": "PASS"} in test["parameters"]
    attached = {a["name"]: out / a["source"] for a in test["attachments"]}
    for name in ("verdict and criteria (notes.md)", "meta.json", "drill record (record.json)", "drill report",
                 "evidence folder"):
        assert name in attached and attached[name].is_file(), (name, sorted(attached))
    assert "drill_5_ws_book_gap: PASS" in attached["verdict and criteria (notes.md)"].read_text()
    assert json.loads(attached["drill record (record.json)"].read_text())["drill"]["id"] == "drill_5_ws_book_gap"
    # the secret was in the drill record: every attachment has it redacted
    texts = [p.read_text(errors="replace") for p in attached.values()]
    assert any("WS book gap" in t for t in texts)
    assert not any(SECRET in t for t in texts)
    assert SECRET not in json.dumps(test)  # nor in the result itself (allure-pytest's parameter values)


def test_without_allure_nothing_changes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_VENUE_API_SECRET", SECRET)
    result = _run(pytester, "-p", "no:allure_pytest")
    result.assert_outcomes(passed=1)
    assert "Allure" not in result.stdout.str() and "allure_pytest" not in result.stdout.str()
    assert not list(Path(pytester.path).glob("**/*-result.json"))
