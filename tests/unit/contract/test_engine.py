"""The status-contract engine: golden fixtures, one passing and one failing payload per rule, API."""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.contract import (
    TAGS,
    Contract,
    ContractLoadError,
    ContractViolation,
    Finding,
    assert_status_valid,
    check_status,
    findings_by_tag,
    format_findings,
)

FIXTURES = resources.fixtures_dir()
GOLDEN = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXACT = resources.default_schema(exact=True)


def golden(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


@pytest.fixture(scope="module")
def exact() -> Contract:
    return Contract.load(EXACT)


def tags(findings: list[Finding]) -> set[str]:
    return {f.tag for f in findings}


# --- golden fixtures -----------------------------------------------------------------------
def test_all_golden_fixtures_are_present() -> None:
    assert set(GOLDEN) == {
        "active_healthy", "partial_fill_containment", "market_data_stale", "wal_backpressure",
        "restart_reconcile", "ws_book_gap", "ws_trades_gap", "session_termination", "unknown_token_force_kill",
    }


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_fixture_is_valid_strict_under_exact_schema(name: str, exact: Contract, contract: Contract) -> None:
    payload = golden(name)
    assert exact.check(payload, strict=True) == []
    assert contract.check(payload, strict=True) == []
    # The plain jsonschema verdict agrees, independently of the engine's fast path.
    from jsonschema import Draft202012Validator

    assert list(Draft202012Validator(exact.schema).iter_errors(payload)) == []


# The checklist's "Expected /status" per drill; the golden fixtures must carry these fields.
CHECKLIST_EXPECTED: dict[str, dict[str, Any]] = {
    "partial_fill_containment": {
        "trading_mode": "ReduceOnly", "risk_state": "Degraded",
        "mode_reasons": ["REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", "REDUCEONLY_RISKSTATE_DEGRADED"],
        "open_permission_blocked_latch": False},
    "market_data_stale": {
        "trading_mode": "ReduceOnly", "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED"],
        "open_permission_blocked_latch": True, "open_permission_reason_codes": ["WS_DATA_STALE_RECONCILE_REQUIRED"],
        "open_permission_requires_reconcile": True, "connectivity_degraded": True, "ws_event_lag_ms": 3200},
    "wal_backpressure": {
        "trading_mode": "ReduceOnly", "risk_state": "Degraded", "mode_reasons": ["REDUCEONLY_RISKSTATE_DEGRADED"],
        "wal_queue_depth": 1024, "wal_queue_capacity": 1024, "wal_queue_enqueue_failures": 17},
    "restart_reconcile": {
        "trading_mode": "ReduceOnly", "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED"],
        "open_permission_blocked_latch": True, "open_permission_reason_codes": ["RESTART_RECONCILE_REQUIRED"],
        "open_permission_requires_reconcile": True},
    "ws_book_gap": {
        "trading_mode": "ReduceOnly", "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED"],
        "open_permission_blocked_latch": True, "open_permission_reason_codes": ["WS_BOOK_GAP_RECONCILE_REQUIRED"]},
    "ws_trades_gap": {
        "trading_mode": "ReduceOnly", "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED"],
        "open_permission_blocked_latch": True, "open_permission_reason_codes": ["WS_TRADES_GAP_RECONCILE_REQUIRED"]},
    "session_termination": {
        "trading_mode": "ReduceOnly",
        "mode_reasons": ["REDUCEONLY_OPEN_PERMISSION_LATCHED", "REDUCEONLY_RISKSTATE_DEGRADED",
                         "REDUCEONLY_SESSION_KILL_UNCONFIRMED"],
        "open_permission_blocked_latch": True,
        "open_permission_reason_codes": ["SESSION_TERMINATION_RECONCILE_REQUIRED"], "10028_count_5m": 1},
    "unknown_token_force_kill": {"trading_mode": "Kill", "mode_reasons": ["KILL_CORTEX_FORCE_KILL"]},
    "active_healthy": {"trading_mode": "Active", "risk_state": "Healthy", "mode_reasons": [],
                       "open_permission_blocked_latch": False, "open_permission_reason_codes": [],
                       "open_permission_requires_reconcile": False},
}


@pytest.mark.parametrize("name", sorted(CHECKLIST_EXPECTED))
def test_golden_fixture_carries_the_checklist_fields(name: str) -> None:
    payload = golden(name)
    for key, value in CHECKLIST_EXPECTED[name].items():
        assert payload[key] == value, f"{name}.{key}"
    assert set(payload["owner_view"]) == {"primary_owner_reason_code", "owner_message", "unblock"}


# --- contract metadata ----------------------------------------------------------------------
def test_mandatory_keys_come_from_the_schema(contract: Contract, tmp_path: Path) -> None:
    schema = json.loads(resources.default_schema().read_text())
    assert contract.mandatory_keys == tuple(schema["required"])
    assert len(contract.mandatory_keys) == 33
    schema["required"].append("extra_mandatory_key")
    other = Contract(schema, contract.manifest)
    assert other.mandatory_keys[-1] == "extra_mandatory_key"
    assert [f.path for f in other.check(golden("active_healthy")) if f.tag == "CSP-MIN"] == ["$.extra_mandatory_key"]


def test_registries_in_manifest_order(contract: Contract) -> None:
    assert contract.contract_version == "5.2"
    assert contract.trading_modes == ("Active", "ReduceOnly", "Kill")
    assert contract.risk_states == ("Healthy", "Degraded", "Maintenance")
    assert contract.tiers["Kill"][0] == "KILL_WATCHDOG_HEARTBEAT_STALE"
    assert contract.tiers["Kill"][-1] == "KILL_CORTEX_FORCE_KILL"
    assert len(contract.tiers["Kill"]) == 6 and len(contract.tiers["ReduceOnly"]) == 15
    assert contract.tiers["ReduceOnly"].index("REDUCEONLY_OPEN_PERMISSION_LATCHED") < \
        contract.tiers["ReduceOnly"].index("REDUCEONLY_RISKSTATE_DEGRADED")
    assert contract.latch_codes == (
        "RESTART_RECONCILE_REQUIRED", "WS_BOOK_GAP_RECONCILE_REQUIRED", "WS_TRADES_GAP_RECONCILE_REQUIRED",
        "WS_DATA_STALE_RECONCILE_REQUIRED", "INVENTORY_MISMATCH_RECONCILE_REQUIRED",
        "SESSION_TERMINATION_RECONCILE_REQUIRED")
    assert "STATE_IDLE_HEALTHY" in contract.owner_state_codes
    assert contract.registry_findings == []


# --- one passing and one failing payload per rule --------------------------------------------
Mutation = Callable[[dict[str, Any]], None]


def _set(**kv: Any) -> Mutation:
    def apply(p: dict[str, Any]) -> None:
        p.update(kv)
    return apply


def _ov(**kv: Any) -> Mutation:
    def apply(p: dict[str, Any]) -> None:
        p["owner_view"].update(kv)
    return apply


def _delete(*keys: str) -> Mutation:
    def apply(p: dict[str, Any]) -> None:
        for k in keys:
            del p[k]
    return apply


def _step_type(value: Any) -> Mutation:
    def apply(p: dict[str, Any]) -> None:
        p["owner_view"]["unblock"][0]["type"] = value
    return apply


def _latch_on(*codes: str) -> Mutation:
    return _set(open_permission_blocked_latch=True, open_permission_requires_reconcile=True,
                open_permission_reason_codes=list(codes))


def _chain(*ms: Mutation) -> Mutation:
    def apply(p: dict[str, Any]) -> None:
        for m in ms:
            m(p)
    return apply


# (rule id, fixture, mutation, expected tag, expected path)
FAILING: list[tuple[str, str, Mutation, str, str]] = [
    ("schema-negative-depth", "wal_backpressure", _set(wal_queue_depth=-1), "SCHEMA", "$.wal_queue_depth"),
    ("schema-step-type", "restart_reconcile", _step_type("SOON"), "SCHEMA", "$.owner_view.unblock[0].type"),
    ("schema-profiles", "active_healthy", _set(supported_profiles=["GOP"]), "SCHEMA", "$.supported_profiles"),
    ("schema-digit-key", "active_healthy", _set(**{"429_count_5m": "3"}), "SCHEMA", "$.429_count_5m"),
    ("csp-min", "active_healthy", _delete("build_id"), "CSP-MIN", "$.build_id"),
    ("contract-version", "active_healthy", _set(contract_version="5.3"), "CONTRACT", "$.contract_version"),
    ("invariant-active", "active_healthy", _set(mode_reasons=["REDUCEONLY_POLICY_STALE"]),
     "INVARIANT", "$.mode_reasons"),
    ("invariant-reduceonly-empty", "wal_backpressure", _set(mode_reasons=[]), "INVARIANT", "$.mode_reasons"),
    ("invariant-kill-empty", "unknown_token_force_kill", _set(mode_reasons=[]), "INVARIANT", "$.mode_reasons"),
    ("tier-kill-in-reduceonly", "wal_backpressure", _set(mode_reasons=["KILL_RISKSTATE_KILL"]),
     "TIER", "$.mode_reasons[0]"),
    ("tier-reduceonly-in-kill", "unknown_token_force_kill",
     _set(mode_reasons=["KILL_CORTEX_FORCE_KILL", "REDUCEONLY_POLICY_STALE"]), "TIER", "$.mode_reasons[1]"),
    ("tier-unknown-token", "wal_backpressure",
     _set(mode_reasons=["REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_NOT_A_TOKEN"]), "TIER", "$.mode_reasons[1]"),
    ("order", "partial_fill_containment",
     _set(mode_reasons=["REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE"]),
     "ORDER", "$.mode_reasons[1]"),
    ("order-duplicate", "wal_backpressure",
     _set(mode_reasons=["REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_RISKSTATE_DEGRADED"]),
     "ORDER", "$.mode_reasons[1]"),
    ("latch-not-bool", "market_data_stale", _set(open_permission_blocked_latch="true"),
     "LATCH", "$.open_permission_blocked_latch"),
    ("latch-true-no-reconcile", "market_data_stale", _set(open_permission_requires_reconcile=False),
     "LATCH", "$.open_permission_requires_reconcile"),
    ("latch-true-no-codes", "market_data_stale", _set(open_permission_reason_codes=[]),
     "LATCH", "$.open_permission_reason_codes"),
    ("latch-false-with-codes", "wal_backpressure",
     _set(open_permission_reason_codes=["RESTART_RECONCILE_REQUIRED"]), "LATCH", "$.open_permission_reason_codes"),
    ("latch-false-reconcile", "wal_backpressure", _set(open_permission_requires_reconcile=True),
     "LATCH", "$.open_permission_requires_reconcile"),
    ("latch-codes-order", "market_data_stale",
     _latch_on("WS_DATA_STALE_RECONCILE_REQUIRED", "RESTART_RECONCILE_REQUIRED"),
     "LATCH", "$.open_permission_reason_codes[1]"),
    ("decision-a-active", "active_healthy", _latch_on("RESTART_RECONCILE_REQUIRED"), "DECISION-A", "$.trading_mode"),
    ("decision-a-reason", "wal_backpressure", _latch_on("RESTART_RECONCILE_REQUIRED"),
     "DECISION-A", "$.mode_reasons"),
    ("enum-latch-code", "market_data_stale", _latch_on("FEED_FROZEN_RECONCILE_REQUIRED"),
     "ENUM", "$.open_permission_reason_codes[0]"),
    ("enum-mode", "active_healthy", _set(trading_mode="Paused"), "ENUM", "$.trading_mode"),
    ("enum-risk", "active_healthy", _set(risk_state="Calm"), "ENUM", "$.risk_state"),
    ("owner-other-tier", "wal_backpressure", _ov(primary_owner_reason_code="KILL_RISKSTATE_KILL"),
     "OWNER-VIEW", "$.owner_view.primary_owner_reason_code"),
    ("owner-reason-absent", "wal_backpressure", _ov(primary_owner_reason_code="REDUCEONLY_POLICY_STALE"),
     "OWNER-VIEW", "$.owner_view.primary_owner_reason_code"),
    ("owner-latch-code-unlatched", "wal_backpressure", _ov(primary_owner_reason_code="RESTART_RECONCILE_REQUIRED"),
     "OWNER-VIEW", "$.owner_view.primary_owner_reason_code"),
    ("owner-latch-code-absent", "market_data_stale", _ov(primary_owner_reason_code="RESTART_RECONCILE_REQUIRED"),
     "OWNER-VIEW", "$.owner_view.primary_owner_reason_code"),
    ("owner-state-while-blocked", "ws_book_gap", _ov(primary_owner_reason_code="STATE_IDLE_HEALTHY"),
     "OWNER-VIEW", "$.owner_view.primary_owner_reason_code"),
    ("owner-blocked-no-steps", "unknown_token_force_kill", _ov(unblock=[]), "OWNER-VIEW", "$.owner_view.unblock"),
    ("owner-active-with-steps", "active_healthy",
     _ov(unblock=[{"type": "AUTO", "condition": "c", "current": "a", "target": "b"}]),
     "OWNER-VIEW", "$.owner_view.unblock"),
]

# The nearest passing payload for each rule (same fixture, a compliant change).
PASSING: list[tuple[str, str, Mutation]] = [
    ("schema", "wal_backpressure", _set(wal_queue_depth=0, deribit_http_p95_ms=12)),
    ("schema-step-type", "restart_reconcile", _step_type("MANUAL")),
    ("schema-profiles", "active_healthy", _set(supported_profiles=["GOP", "CSP", "FULL"])),
    ("csp-min-extension", "active_healthy", _set(vendor_extension={"x": 1})),
    ("invariant-tier-order", "partial_fill_containment",
     _set(mode_reasons=["REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", "REDUCEONLY_BUNKER_MODE_ACTIVE",
                        "REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_SESSION_KILL_UNCONFIRMED"])),
    ("kill-two-reasons", "unknown_token_force_kill",
     _set(mode_reasons=["KILL_WATCHDOG_HEARTBEAT_STALE", "KILL_CORTEX_FORCE_KILL"])),
    ("latch-two-codes-in-order", "market_data_stale",
     _latch_on("WS_BOOK_GAP_RECONCILE_REQUIRED", "WS_DATA_STALE_RECONCILE_REQUIRED")),
    ("decision-a-kill-latched", "unknown_token_force_kill", _latch_on("RESTART_RECONCILE_REQUIRED")),
    ("owner-free-form", "wal_backpressure", _ov(primary_owner_reason_code="ANY_DASHBOARD_TEXT")),
    ("owner-mode-reason", "wal_backpressure", _ov(primary_owner_reason_code="REDUCEONLY_RISKSTATE_DEGRADED")),
    ("owner-latch-code", "market_data_stale", _ov(primary_owner_reason_code="WS_DATA_STALE_RECONCILE_REQUIRED")),
    ("owner-state-active", "active_healthy", _ov(primary_owner_reason_code="STATE_PAPER_MODE")),
    ("owner-view-absent", "wal_backpressure", _delete("owner_view")),
    ("kill-latched-owner-kill-reason", "unknown_token_force_kill",
     _chain(_latch_on("RESTART_RECONCILE_REQUIRED"), _ov(primary_owner_reason_code="KILL_CORTEX_FORCE_KILL"))),
]


@pytest.mark.parametrize("rule,name,mutate,tag,path", FAILING, ids=[r[0] for r in FAILING])
def test_rule_failing_payload(rule: str, name: str, mutate: Mutation, tag: str, path: str,
                              contract: Contract) -> None:
    payload = golden(name)
    mutate(payload)
    findings = contract.check(payload)
    assert any(f.tag == tag and f.path == path for f in findings), format_findings(findings)
    assert all(f.tag in TAGS for f in findings)


@pytest.mark.parametrize("rule,name,mutate", PASSING, ids=[r[0] for r in PASSING])
def test_rule_passing_payload(rule: str, name: str, mutate: Mutation, contract: Contract) -> None:
    payload = golden(name)
    mutate(payload)
    assert contract.check(payload) == []


def test_csp_min_one_finding_per_missing_key_and_no_schema_duplicate(contract: Contract) -> None:
    payload = golden("active_healthy")
    for key in ("build_id", "ws_event_lag_ms", "mm_util"):
        del payload[key]
    findings = contract.check(payload)
    assert [f.path for f in findings if f.tag == "CSP-MIN"] == ["$.build_id", "$.mm_util", "$.ws_event_lag_ms"]
    assert not any("required" in f.message for f in findings if f.tag == "SCHEMA")


def test_empty_object_reports_every_mandatory_key(contract: Contract) -> None:
    findings = contract.check({})
    assert [f.path[2:] for f in findings if f.tag == "CSP-MIN"] == list(contract.mandatory_keys)


def test_strict_reports_undefined_keys_only_when_asked(contract: Contract, exact: Contract) -> None:
    payload = golden("wal_backpressure")
    payload["vendor_note"] = "x"
    assert contract.check(payload) == []
    assert [(f.tag, f.path) for f in contract.check(payload, strict=True)] == [("STRICT", "$.vendor_note")]
    assert tags(exact.check(payload)) == {"SCHEMA"}  # exact schema: additionalProperties false
    payload = golden("wal_backpressure")
    payload["owner_view"]["unblock"][0]["eta"] = "1m"
    strict = contract.check(payload, strict=True)
    assert ("STRICT", "$.owner_view.unblock[0].eta") in [(f.tag, f.path) for f in strict]


@pytest.mark.parametrize("payload", [None, [], [1, 2], "status", 0, 1.5, True, [{"trading_mode": "Active"}]])
def test_non_object_payload_gives_one_schema_finding(payload: Any, contract: Contract) -> None:
    findings = contract.check(payload)
    assert len(findings) == 1 and findings[0].tag == "SCHEMA" and findings[0].path == "$"


def test_wrong_types_everywhere_do_not_raise(contract: Contract) -> None:
    payload = {k: [{"x": None}] for k in contract.mandatory_keys}
    payload["owner_view"] = {"primary_owner_reason_code": ["a"], "owner_message": 1, "unblock": "none"}
    findings = contract.check(payload, strict=True)
    assert findings and all(f.tag in TAGS for f in findings)
    payload = golden("market_data_stale")
    payload.update(mode_reasons="REDUCEONLY_OPEN_PERMISSION_LATCHED", open_permission_reason_codes={"a": 1},
                   trading_mode=["ReduceOnly"], risk_state={"x": 1})
    assert {"SCHEMA", "ENUM", "LATCH"} <= tags(contract.check(payload, strict=True))


def test_deeply_nested_values_do_not_raise(contract: Contract) -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    payload = golden("wal_backpressure")
    payload["mode_reasons"] = deep
    payload["owner_view"]["unblock"] = [deep]
    findings = contract.check(payload, strict=True)
    assert all(f.tag in TAGS for f in findings)
    assert ("TIER", "$.mode_reasons[0]") in [(f.tag, f.path) for f in findings]
    assert ("SCHEMA", "$.owner_view.unblock[0]") in [(f.tag, f.path) for f in findings]


# --- API ------------------------------------------------------------------------------------
def test_finding_str_and_grouping() -> None:
    f = Finding("CSP-MIN", "$.build_id", "mandatory key is missing")
    assert str(f) == "[CSP-MIN] $.build_id: mandatory key is missing"
    fs = [Finding("TIER", "$.a", "x"), f, Finding("TIER", "$.b", "y")]
    assert list(findings_by_tag(fs)) == ["CSP-MIN", "TIER"]
    text = format_findings(fs)
    assert text.splitlines()[0] == "status contract: 3 finding(s) (CSP-MIN: 1, TIER: 2)"
    assert text.splitlines()[1:] == ["  [CSP-MIN] $.build_id: mandatory key is missing", "  [TIER] $.a: x",
                                     "  [TIER] $.b: y"]


def test_assert_status_valid(tmp_path: Path) -> None:
    assert_status_valid(golden("session_termination"))
    assert_status_valid(golden("session_termination"), schema=EXACT, strict=True)
    bad = golden("session_termination")
    bad["trading_mode"] = "Active"
    with pytest.raises(ContractViolation) as info:
        assert_status_valid(bad, context="drill 7 sample 3")
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert message.startswith("drill 7 sample 3: status contract: ")
    assert "[INVARIANT] $.mode_reasons" in message and "[DECISION-A] $.trading_mode" in message
    assert tags(info.value.findings) >= {"INVARIANT", "DECISION-A", "SCHEMA"}
    assert check_status(bad) == info.value.findings


def test_load_is_cached_and_notices_edits(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    manifest = tmp_path / "manifest.json"
    shutil.copy(resources.default_schema(), schema)
    shutil.copy(resources.default_manifest(), manifest)
    first = Contract.load(schema, manifest)
    assert Contract.load(str(schema), manifest) is first
    data = json.loads(schema.read_text())
    data["required"].remove("build_id")
    schema.write_text(json.dumps(data))
    st = schema.stat()
    os.utime(schema, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    second = Contract.load(schema, manifest)
    assert second is not first and "build_id" not in second.mandatory_keys


@pytest.mark.parametrize("content,expected", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"type": 5}), "not a valid JSON Schema"),
    (json.dumps({"required": "build_id"}), "'required' must be an array"),
    (json.dumps({"properties": {"a": {"$ref": "#/$defs/missing"}}}), "does not resolve"),
])
def test_bad_schema_file_raises_load_error(content: str | None, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ContractLoadError, match=expected):
        Contract.load(path)


@pytest.mark.parametrize("mutate,expected", [
    (lambda m: m.pop("contract_version"), "contract_version"),
    (lambda m: m.pop("registries"), "registries"),
    (lambda m: m["registries"].pop("OpenPermissionReasonCode"), "OpenPermissionReasonCode"),
    (lambda m: m["registries"]["ModeReasonCode"].pop("Kill"), "Kill"),
])
def test_bad_manifest_raises_load_error(mutate: Callable[[dict[str, Any]], Any], expected: str,
                                        tmp_path: Path) -> None:
    manifest = json.loads(resources.default_manifest().read_text())
    mutate(manifest)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ContractLoadError, match=expected):
        Contract.load(manifest=path)


def test_any_2020_12_keyword_in_the_schema_is_checked(contract: Contract) -> None:
    schema = copy.deepcopy(contract.schema)
    schema["properties"]["build_id"]["pattern"] = "^[a-z-]+$"
    other = Contract(schema, contract.manifest)
    assert other.check(golden("wal_backpressure")) == []
    payload = golden("wal_backpressure")
    payload["build_id"] = "UPPER CASE"
    assert [(f.tag, f.path) for f in other.check(payload)] == [("SCHEMA", "$.build_id")]


def test_bundled_specs_resolve_from_resources_in_a_wheel_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed wheel has no top-level specs/: the data sits in pytest_chaosdrill/_data/.
    pkg = tmp_path / "site-packages" / "pytest_chaosdrill"
    shutil.copytree(resources.specs_dir(), pkg / "_data" / "specs")
    shutil.copytree(resources.fixtures_dir(), pkg / "_data" / "fixtures")
    monkeypatch.setattr(resources, "_PACKAGE_DIR", pkg)
    assert resources.default_schema() == pkg / "_data" / "specs" / "status_csp_min.schema.json"
    assert resources.default_schema(exact=True).is_file() and resources.default_manifest().is_file()
    loaded = Contract.load()
    assert loaded.schema_source == str((pkg / "_data" / "specs" / "status_csp_min.schema.json").resolve())
    assert loaded.check(json.loads((resources.fixtures_dir() / "ws_trades_gap.json").read_text())) == []


def test_schema_messages_shorten_the_value_and_summarise_a_long_enum(contract: Contract) -> None:
    payload = golden("wal_backpressure")
    payload["trading_mode"] = "Kill"
    payload["mode_reasons"] = ["REDUCEONLY_OPEN_PERMISSION_LATCHED"]
    payload["risk_state"] = "x" * 500
    schema = {f.path: f.message for f in contract.check(payload) if f.tag == "SCHEMA"}
    assert schema["$.mode_reasons[0]"].startswith(
        "'REDUCEONLY_OPEN_PERMISSION_LATCHED' is not one of the 6 allowed values ('KILL_")
    assert schema["$.mode_reasons[0]"].endswith(", ...) (enum)")
    assert len(schema["$.risk_state"]) < 200 and schema["$.risk_state"].endswith("(enum)")


@pytest.mark.parametrize("accelerate", [True, False], ids=["jsonschema-rs first", "jsonschema alone"])
@pytest.mark.parametrize("schema,expected", [
    ({"type": 5}, "not a valid JSON Schema"),
    ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "does not resolve"),
])
def test_bad_schema_is_a_load_error_with_or_without_the_accelerator(contract: Contract, schema: dict[str, Any],
                                                                    expected: str, accelerate: bool) -> None:
    with pytest.raises(ContractLoadError, match=expected):
        Contract(schema, contract.manifest, accelerate=accelerate)
