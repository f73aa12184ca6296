"""Hypothesis properties: the engine never raises, and its schema findings are jsonschema's, with or without the accelerator."""
from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pytest_chaosdrill import resources
from pytest_chaosdrill.contract import TAGS, Contract, Finding, json_path
from collections import Counter

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTRACT = Contract.load()
EXACT = Contract.load(resources.default_schema(exact=True))
# The same contracts on jsonschema alone (no jsonschema-rs verdict first): findings must not differ.
PLAIN = Contract(CONTRACT.schema, CONTRACT.manifest, accelerate=False)
PLAIN_EXACT = Contract(EXACT.schema, EXACT.manifest, accelerate=False)
REFERENCE = Draft202012Validator(CONTRACT.schema)
REFERENCE_EXACT = Draft202012Validator(EXACT.schema)
GOLDEN = [json.loads(p.read_text()) for p in sorted(resources.fixtures_dir().glob("*.json"))]

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)

ALL_TOKENS = (list(CONTRACT.tiers["Kill"]) + list(CONTRACT.tiers["ReduceOnly"]) + list(CONTRACT.latch_codes)
              + list(CONTRACT.owner_state_codes) + ["FREE_FORM_CODE", "REDUCEONLY_FAKE", ""])
# Values that are close to valid, so mutations hit the contract rules and not only type errors.
near_values = st.one_of(
    json_values,
    st.sampled_from(CONTRACT.trading_modes + CONTRACT.risk_states + ("Paused",)),
    st.lists(st.sampled_from(ALL_TOKENS), max_size=4),
    st.booleans(),
    st.integers(-2, 2000),
    st.sampled_from(["5.2", "5.3", "CSP"]),
)
owner_views = st.fixed_dictionaries({
    "primary_owner_reason_code": st.sampled_from(ALL_TOKENS),
    "owner_message": st.text(max_size=5),
    "unblock": st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(["AUTO", "MANUAL", "SOON"]), "condition": st.just("c"),
        "current": st.just("a"), "target": st.just("b")}), max_size=2),
})
KEYS = list(CONTRACT.mandatory_keys) + ["owner_view", "unexpected_key"]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> dict[str, Any]:
    payload = copy.deepcopy(draw(st.sampled_from(GOLDEN)))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(KEYS))
        action = draw(st.sampled_from(["set", "delete", "owner"]))
        if action == "delete":
            payload.pop(key, None)
        elif action == "owner":
            payload["owner_view"] = draw(owner_views)
        else:
            payload[key] = draw(near_values)
    return payload


def assert_well_formed(findings: list[Finding]) -> None:
    assert isinstance(findings, list)
    for f in findings:
        assert isinstance(f, Finding) and f.tag in TAGS
        assert f.path.startswith("$") and f.message
        assert str(f).startswith(f"[{f.tag}] ")


def reference_errors(validator: Draft202012Validator, instance: Any, mandatory: frozenset[str]) -> Counter[str]:
    """Rendered (path, keyword) of every jsonschema error the engine reports as [SCHEMA]."""
    out: Counter[str] = Counter()
    for e in validator.iter_errors(instance):
        if e.validator == "required" and not e.absolute_path and any(e.message == f"{k!r} is a required property"
                                                                      for k in mandatory):
            continue  # [CSP-MIN]
        out[f"{json_path(e.absolute_path)} ({'false' if e.validator is None else e.validator})"] += 1
    return out


def schema_findings(findings: list[Finding]) -> Counter[str]:
    return Counter(f"{f.path} ({f.message.rsplit('(', 1)[-1].rstrip(')')})" for f in findings if f.tag == "SCHEMA")


@SETTINGS
@given(json_values, st.booleans())
def test_arbitrary_json_never_raises(value: Any, strict: bool) -> None:
    findings = CONTRACT.check(value, strict=strict)
    assert_well_formed(findings)
    if not isinstance(value, dict):
        assert [(f.tag, f.path) for f in findings] == [("SCHEMA", "$")]
    else:
        assert findings  # no random object carries all 33 mandatory keys


@SETTINGS
@given(mutated_payloads(), st.booleans())
def test_mutated_payloads_never_raise_and_schema_verdict_matches(payload: dict[str, Any], strict: bool) -> None:
    for contract, plain, reference in ((CONTRACT, PLAIN, REFERENCE), (EXACT, PLAIN_EXACT, REFERENCE_EXACT)):
        findings = contract.check(payload, strict=strict)
        assert_well_formed(findings)
        schema_valid = reference.is_valid(payload)
        assert contract.is_schema_valid(payload) == plain.is_schema_valid(payload) == schema_valid
        # The accelerator (when installed) only ever skips work: the findings are jsonschema's alone.
        assert findings == plain.check(payload, strict=strict)
        # One [SCHEMA] finding per jsonschema error, at its path and with its keyword.
        assert schema_findings(findings) == reference_errors(reference, payload, frozenset(contract.mandatory_keys))
        # Every jsonschema error surfaces as a finding ([SCHEMA], or [CSP-MIN] for a missing key).
        assert schema_valid or any(f.tag in ("SCHEMA", "CSP-MIN") for f in findings)
        assert not schema_valid or not any(f.tag == "SCHEMA" for f in findings)
