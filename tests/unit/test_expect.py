"""Unit tests of pytest_chaosdrill.expect: expectations from fixtures, their errors and rules."""
from __future__ import annotations

import json

import pytest

from pytest_chaosdrill.expect import Expectation, ExpectationError, apply_rule


# --- expectations ---------------------------------------------------------------------------------------


def test_expectation_from_fixture_matches_fields_and_rules() -> None:
    exp = Expectation.from_drill({"fixture": "session_termination.json",
                                  "fields": ["trading_mode", "open_permission_reason_codes"],
                                  "rules": {"10028_count_5m": {"op": "increased"}}})
    good = dict(exp.payload, **{"10028_count_5m": 1})
    assert exp.compare(good, baseline={"10028_count_5m": 0}).matched
    bad = exp.compare(dict(good, trading_mode="Active"), baseline={"10028_count_5m": 1})
    assert not bad.matched
    assert any("trading_mode" in p for p in bad.problems) and any("10028_count_5m" in p for p in bad.problems)
    assert "trading_mode" in bad.deepdiff_text


def test_expectation_errors_are_clear() -> None:
    with pytest.raises(ExpectationError, match="not found"):
        Expectation.from_drill({"fixture": "nope.json"})
    with pytest.raises(ExpectationError, match="not in the expected status"):
        Expectation.from_drill({"status": {"a": 1}, "fields": ["b"]})


@pytest.mark.parametrize(("rule", "observed", "ok"), [
    ({"op": "gte", "value": 500}, {"k": 700}, True),
    ({"op": "gte", "value": 500}, {"k": 300}, False),
    ({"op": "eq_field", "field": "cap"}, {"k": 16, "cap": 16}, True),
    ({"op": "eq_field", "field": "cap"}, {"k": 15, "cap": 16}, False),
    ({"op": "contains", "value": "X"}, {"k": ["X", "Y"]}, True),
    ({"op": "type", "value": "integer"}, {"k": True}, False),
    ({"op": "gt", "value": 1}, {"k": "text"}, False),   # a wrong type is a failure, never an exception
    ({"op": "present"}, {}, False),
])
def test_rules(rule: dict, observed: dict, ok: bool) -> None:
    assert apply_rule("k", rule, observed, None)[0] is ok
