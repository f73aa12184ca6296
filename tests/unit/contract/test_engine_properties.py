"""Hypothesis properties: the engine never raises, and the compiled fast path agrees with jsonschema."""
from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pytest_chaosdrill import resources
from pytest_chaosdrill.contract import TAGS, Contract, Finding
from collections import Counter

from pytest_chaosdrill.contract._compiler import compile_errors, compile_node

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTRACT = Contract.load()
EXACT = Contract.load(resources.default_schema(exact=True))
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


# jsonschema 4.x reports a nested False schema's error without the path to it (and without a
# keyword); our explainer gives the real path. The comparison ignores the path for those only.
def reference_errors(validator: Draft202012Validator, instance: Any) -> Counter[tuple[Any, ...]]:
    """(path, keyword) of every jsonschema error."""
    return Counter(((), "false") if e.validator is None else (tuple(e.absolute_path), e.validator)
                   for e in validator.iter_errors(instance))


def compiled_errors(explain: Any, instance: Any) -> Counter[tuple[Any, ...]]:
    return Counter(((), "false") if e.keyword == "false" else (e.path, e.keyword) for e in explain(instance, ()))


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
    for contract, reference in ((CONTRACT, REFERENCE), (EXACT, REFERENCE_EXACT)):
        findings = contract.check(payload, strict=strict)
        assert_well_formed(findings)
        schema_valid = reference.is_valid(payload)
        assert contract.is_schema_valid(payload) == schema_valid
        # Same error locations and keywords as jsonschema's iter_errors.
        assert compiled_errors(contract._explain, payload) == reference_errors(reference, payload)
        # The single-pass errors ``check`` uses: exactly the explanation (messages, order), or [].
        assert contract._errors(payload, ()) == (contract._explain(payload, ()) if not schema_valid else [])
        # Every jsonschema error surfaces as a finding ([SCHEMA], or [CSP-MIN] for a missing key).
        assert schema_valid or any(f.tag in ("SCHEMA", "CSP-MIN") for f in findings)
        assert not schema_valid or not any(f.tag == "SCHEMA" for f in findings)


# --- differential test of the compiler on generated schemas ----------------------------------
small_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 1.5, -2.5]) | st.sampled_from(["", "a", "ab"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=6,
)
type_names = st.sampled_from(["object", "array", "string", "number", "integer", "boolean", "null"])


def one_keyword(names: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda k, v: {k: v}, st.sampled_from(names), values)


def schemas(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.booleans(),
        st.fixed_dictionaries({"type": type_names | st.lists(type_names, min_size=1, max_size=3, unique=True)}),
        st.fixed_dictionaries({"const": small_json}),
        st.fixed_dictionaries({"enum": st.lists(small_json, max_size=3)}),
        st.fixed_dictionaries({"required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True)}),
        one_keyword(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], st.integers(-2, 2) | st.just(0.5)),
        one_keyword(["minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"],
                    st.integers(0, 2)),
        st.fixed_dictionaries({"uniqueItems": st.booleans()}),
        # Several leaf keywords together: the compiler fuses these into one generated function.
        st.fixed_dictionaries({}, optional={
            "type": type_names, "minimum": st.integers(-2, 2), "maximum": st.integers(-2, 2) | st.just(1.5),
            "exclusiveMinimum": st.integers(-2, 2), "exclusiveMaximum": st.just(2.5), "const": small_json,
            "enum": st.lists(small_json, max_size=3), "minLength": st.integers(0, 2), "maxLength": st.integers(0, 2),
        }),
    )
    if depth == 0:
        return leaf
    sub = schemas(depth - 1)
    return st.one_of(
        leaf,
        st.fixed_dictionaries({"properties": st.dictionaries(st.sampled_from(["a", "b"]), sub, max_size=2)},
                              optional={"additionalProperties": sub}),
        st.fixed_dictionaries({"items": sub}),
        st.fixed_dictionaries({"contains": sub}, optional={"minContains": st.integers(0, 2),
                                                            "maxContains": st.integers(0, 2)}),
        one_keyword(["allOf", "anyOf", "oneOf"], st.lists(sub, min_size=1, max_size=3)),
        st.fixed_dictionaries({"not": sub}),
        st.fixed_dictionaries({"if": sub}, optional={"then": sub, "else": sub}),
    )


# $ref only at the root (a nested $defs would not be where "#/$defs/d" points), plus a recursive one.
RECURSIVE = {"$defs": {"d": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#/$defs/d"}}]}},
             "$ref": "#/$defs/d"}
root_schemas = st.one_of(
    schemas(),
    st.builds(lambda d, other: {"$defs": {"d": d}, "allOf": [other, {"$ref": "#/$defs/d"}]}, schemas(1), schemas(1)),
    st.just(RECURSIVE),
)


@SETTINGS
@given(root_schemas, st.lists(small_json, min_size=1, max_size=8))
def test_compiler_agrees_with_jsonschema(schema: Any, instances: list[Any]) -> None:
    check, explain = compile_node(schema)
    errors = compile_errors(schema)
    closure_errors = compile_errors(schema, generate=False)  # as Contract compiles it
    reference = Draft202012Validator(schema)
    for instance in instances:
        valid = reference.is_valid(instance)
        assert check(instance) == valid, (schema, instance)
        if not valid:
            assert compiled_errors(explain, instance) == reference_errors(reference, instance), (schema, instance)
        # One pass gives what check-then-explain gives: the same errors in the same order, or none.
        assert errors(instance, ()) == ([] if valid else explain(instance, ())), (schema, instance)
        assert closure_errors(instance, ()) == errors(instance, ()), (schema, instance)


# --- the scalar fast path of message reprs ----------------------------------------------------
@SETTINGS
@given(st.one_of(json_values, st.text(min_size=55, max_size=70), st.text(alphabet="'\"\\\n\x00é", max_size=64),
                 st.integers(-(10**45), 10**45), st.floats(), st.just([]), st.just({})))
def test_bounded_repr_equals_reprlib(value: Any) -> None:
    from pytest_chaosdrill.contract._compiler import _REPR, bounded_repr

    assert bounded_repr(value) == _REPR.repr(value)
