"""Registry drift (checklist drill 8, trigger A): a bad token in the contract inputs must fail CI."""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.contract import Contract, Finding

SCHEMA = json.loads(resources.default_schema().read_text())
EXACT = json.loads(resources.default_schema(exact=True).read_text())
MANIFEST = json.loads(resources.default_manifest().read_text())


def mode_entry(code: str) -> dict[str, Any]:
    return {"code": code, "display": "fake", "latched": False, "unblock": {"type": "AUTO", "condition": "never"}}


def drift(schema: dict[str, Any] | None = None, manifest: dict[str, Any] | None = None) -> list[Finding]:
    contract = Contract(schema or copy.deepcopy(SCHEMA), manifest or copy.deepcopy(MANIFEST))
    assert all(f.tag == "CONTRACT" for f in contract.registry_findings)
    return contract.registry_findings


def test_bundled_specs_have_no_drift() -> None:
    assert drift() == []
    assert drift(schema=copy.deepcopy(EXACT)) == []


def _mutated(fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    m = copy.deepcopy(MANIFEST)
    fn(m)
    return m


@pytest.mark.parametrize("manifest,token", [
    # A well-prefixed fake token is caught because the schema's tier enum does not list it.
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["ReduceOnly"].append(mode_entry("REDUCEONLY_FAKE_TOKEN"))),
     "REDUCEONLY_FAKE_TOKEN"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["Kill"].insert(0, mode_entry("FAKE_TOKEN"))), "FAKE_TOKEN"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["Kill"].append(mode_entry("REDUCEONLY_POLICY_STALE"))),
     "REDUCEONLY_POLICY_STALE"),
    (_mutated(lambda m: m["registries"]["OpenPermissionReasonCode"]["values"].append(
        {"code": "FAKE_GAP", "unblock": {"type": "AUTO", "condition": "x"}})), "FAKE_GAP"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["ReduceOnly"].append(
        mode_entry("REDUCEONLY_POLICY_STALE"))), "REDUCEONLY_POLICY_STALE"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["ReduceOnly"].pop(0)), "REDUCEONLY_RISKSTATE_MAINTENANCE"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["Kill"][0].update(latched="yes")),
     "KILL_WATCHDOG_HEARTBEAT_STALE"),
    (_mutated(lambda m: m["registries"]["ModeReasonCode"]["Kill"][1]["unblock"].update(type="SOMETIMES")),
     "KILL_RISKSTATE_KILL"),
    (_mutated(lambda m: m["registries"]["TradingMode"]["values"].append("Paused")), "Paused"),
    (_mutated(lambda m: m.update(contract_version="5.3")), "5.3"),
])
def test_manifest_drift_names_the_token(manifest: dict[str, Any], token: str) -> None:
    findings = drift(manifest=manifest)
    assert findings, "drift went unnoticed"
    assert any(token in f.message for f in findings), [str(f) for f in findings]


def test_prefix_and_suffix_rules() -> None:
    m = copy.deepcopy(MANIFEST)
    m["registries"]["ModeReasonCode"]["Kill"].append(mode_entry("HALT_EVERYTHING"))
    m["registries"]["OpenPermissionReasonCode"]["values"].append(
        {"code": "WS_GAP_RESYNC", "unblock": {"type": "AUTO", "condition": "x"}})
    messages = [str(f) for f in drift(manifest=m)]
    assert any("HALT_EVERYTHING" in s and "'KILL_'" in s for s in messages)
    assert any("WS_GAP_RESYNC" in s and "_RECONCILE_REQUIRED" in s for s in messages)


def test_schema_side_drift() -> None:
    s = copy.deepcopy(SCHEMA)
    s["properties"]["contract_version"]["const"] = "6.0"
    s["allOf"][1]["then"]["properties"]["mode_reasons"]["items"]["enum"].append("REDUCEONLY_SCHEMA_ONLY")
    latch_enum = s["allOf"][4]["then"]["properties"]["open_permission_reason_codes"]["items"]["enum"]
    latch_enum.reverse()
    messages = [str(f) for f in drift(schema=s)]
    assert any("'6.0'" in m for m in messages)
    assert any("REDUCEONLY_SCHEMA_ONLY" in m and m.startswith("[CONTRACT] schema:") for m in messages)
    assert any("different order" in m for m in messages)


def test_check_does_not_repeat_registry_findings() -> None:
    m = copy.deepcopy(MANIFEST)
    m["registries"]["ModeReasonCode"]["ReduceOnly"].append(mode_entry("REDUCEONLY_FAKE_TOKEN"))
    contract = Contract(copy.deepcopy(SCHEMA), m)
    assert contract.registry_findings
    payload = json.loads((resources.fixtures_dir() / "wal_backpressure.json").read_text())
    assert contract.check(payload) == []
