"""The target contract as documented: the two file schemas match what the checks read, the reference
target's and the example service's real files validate against them, and the docs name every
check, trigger kind, fixture and placeholder the code has.

The schemas cannot drift from the checks: every check that declares it reads ``files.run_manifest`` or
``files.fingerprint`` runs here against a record whose files log each key read, with the parameters
the bundled drills give it; the keys read must be exactly the schema's required fields.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest

from pytest_chaosdrill.drill import load_drills
from pytest_chaosdrill.registry import builtin_checks, builtin_triggers
from pytest_chaosdrill.record import DrillRecord, StepRecord
from pytest_chaosdrill.resources import drills_dir, specs_dir
from pytest_chaosdrill.venue import VenueServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
pytestmark = pytest.mark.timeout(90)


def _schema(name: str) -> dict[str, Any]:
    return json.loads((specs_dir() / name).read_text(encoding="utf-8"))


MANIFEST = _schema("run_manifest.schema.json")
FINGERPRINT = _schema("execution_fingerprint.schema.json")


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _problems(schema: dict[str, Any], doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in _validator(schema).iter_errors(doc)]


# --- the schemas follow the checks --------------------------------------------------------------------


class Reads(dict):
    """A dict that logs every key a check looks up (``get``, ``[]``, ``in``) under ``name``."""

    def __init__(self, log: dict[str, set[str]], name: str, data: dict[str, Any]) -> None:
        super().__init__(data)
        self._log, self._name = log, name

    def _note(self, key: Any) -> None:
        if isinstance(key, str) and not key.startswith("_"):  # "_unreadable" is the plugin's own marker
            self._log.setdefault(self._name, set()).add(key)

    def _wrap(self, key: Any, value: Any) -> Any:
        # Nested objects log under "<name>.<key>", the objects of a list under "<name>.<key>[]".
        if isinstance(value, dict) and not isinstance(value, Reads):
            return Reads(self._log, f"{self._name}.{key}", value)
        if isinstance(value, list):
            return [Reads(self._log, f"{self._name}.{key}[]", v) if isinstance(v, dict) and not isinstance(v, Reads)
                    else v for v in value]
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return self._wrap(key, super().get(key, default))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return self._wrap(key, super().__getitem__(key))

    def __contains__(self, key: Any) -> bool:
        self._note(key)
        return super().__contains__(key)


def _file_checks() -> dict[str, tuple[Callable[..., Any], tuple[str, ...]]]:
    """Built-in checks that declare (``@needs``) a read of the run manifest or the fingerprint."""
    out = {}
    for name, fn in builtin_checks().items():
        needs = tuple(n for n in getattr(fn, "needs", ()) if n in ("files.run_manifest", "files.fingerprint"))
        if needs:
            out[name] = (fn, needs)
    return out


def _keys_read() -> dict[str, set[str]]:
    """Run every file-reading check with every parameter set the bundled drills give it."""
    log: dict[str, set[str]] = {}
    utc = "2026-01-01T00:00:00.100000Z"
    manifest = Reads(log, "run_manifest", {"stop_detected": True, "stop_time": utc, "status": "interrupted"})
    event = Reads(log, "error_event", {"type": "timeout"})
    before = Reads(log, "fingerprint", {"api_calls": 1, "error_count": 0, "error_events": []})
    during = Reads(log, "fingerprint", {"api_calls": 9, "error_count": 1, "error_events": [event]})
    record = DrillRecord(
        drill={}, drill_path="", backend="process", target_name="t", target_files=("run_manifest", "fingerprint"),
        contract={}, started_utc=utc, t_start=0.0, files={"run_manifest": manifest}, fingerprint_before=before,
        fingerprint_midrun=({"mono": 1.0, "utc": utc, "content": during},),
        steps=(StepRecord("file.stop", {}, requested={"created_utc": "2026-01-01T00:00:00Z"}),))
    params: dict[str, list[dict[str, Any]]] = {}
    for d in load_drills([drills_dir()]):
        for spec in d.checks:
            params.setdefault(spec.name, []).append(dict(spec.params))
    for name, (fn, _) in _file_checks().items():
        for p in params.get(name) or [{}]:
            fn(record, **p)
    _optional_reads(log, utc)
    return log


def _optional_reads(log: dict[str, set[str]], utc: str) -> None:
    """The fingerprint fields only some drills read: drill 6's trades counters (with a fault that repeated
    trades, so the check gets as far as reading them) and the latch check's latch_events."""
    from pytest_chaosdrill.checks.status import _service_clear_mono

    trades_before = Reads(log, "fingerprint", {"trades": {"processed": 1, "duplicates_dropped": 0}})
    trades_after = Reads(log, "fingerprint", {"trades": {"processed": 5, "duplicates_dropped": 1}})
    proof = {"detail": {"repeated_trade_ids": [7], "repeats_per_socket": 1, "sockets": 1}}
    rec = DrillRecord(
        drill={}, drill_path="", backend="process", target_name="t", target_files=("fingerprint",), contract={},
        started_utc=utc, t_start=0.0, files={"fingerprint": trades_after}, fingerprint_before=trades_before,
        steps=(StepRecord("venue.trades_gap", {}, proof=proof),))
    assert builtin_checks()["no_duplicate_trade_processing"](rec).passed is True
    latch = Reads(log, "fingerprint", {"latch_events": [{"event": "clear", "mono": 1.5, "code": "X"}]})
    rec = DrillRecord(
        drill={}, drill_path="", backend="process", host_clock=True, target_name="t", target_files=("fingerprint",), contract={},
        started_utc=utc, t_start=0.0, files={"fingerprint": latch})
    assert _service_clear_mono(rec, 1.0, 2.0) == 1.5


KEYS_READ = _keys_read()


def _named(schema: dict[str, Any], path: str) -> set[str]:
    """The property names the schema gives at ``path`` ("" the top, "trades", "latch_events[]")."""
    node = schema
    for part in filter(None, path.split(".")):
        node = node["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            node = node["items"]
    return set(node.get("properties", {}))


def test_every_fingerprint_field_a_check_reads_is_named_by_the_schema() -> None:
    """A check that reads a field specs/execution_fingerprint.schema.json does not name fails here."""
    for name, keys in KEYS_READ.items():
        if name == "error_event":
            continue
        if name.startswith("fingerprint"):
            path = name.removeprefix("fingerprint").lstrip(".")
            assert keys <= _named(FINGERPRINT, path), f"{name}: read {sorted(keys - _named(FINGERPRINT, path))} unnamed"
    assert KEYS_READ["fingerprint.trades"] == {"processed", "duplicates_dropped"}
    assert {"event", "mono"} <= KEYS_READ["fingerprint.latch_events[]"]


def test_the_file_checks_are_found() -> None:
    assert set(_file_checks()) >= {"stop_detected", "run_manifest_fields", "fingerprint_error_gate",
                                   "sustained_call_pressure"}


def test_schemas_are_valid_draft_2020_12() -> None:
    for schema in (MANIFEST, FINGERPRINT):
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_run_manifest_schema_requires_exactly_what_the_checks_read() -> None:
    read = KEYS_READ["run_manifest"]
    assert set(MANIFEST["required"]) == read, "schema required fields vs fields the checks read"
    assert read <= set(MANIFEST["properties"])


def test_fingerprint_schema_requires_exactly_what_the_checks_read() -> None:
    # Required: what every fingerprint-reading drill reads; the rest read (trades, latch_events) is per drill.
    assert set(FINGERPRINT["required"]) == KEYS_READ["fingerprint"] - {"trades", "latch_events"}
    assert KEYS_READ["fingerprint"] <= set(FINGERPRINT["properties"])
    items = FINGERPRINT["properties"]["error_events"]["items"]
    assert set(items["required"]) == KEYS_READ["error_event"] == {"type"}


def test_audit_fields_of_the_stop_drill_reject_unknown_and_empty() -> None:
    audit = next(spec.params["audit_fields"] for d in load_drills([drills_dir()]) for spec in d.checks
                 if spec.name == "run_manifest_fields")
    good = _good_manifest()
    assert _problems(MANIFEST, good) == []
    for field in audit:
        for bad in ("", "unknown", "not-UNKNOWN-here"):
            assert _problems(MANIFEST, {**good, field: bad}), f"{field}={bad!r} must be rejected"


def _good_manifest() -> dict[str, Any]:
    return {"run_id": "run-1", "start_utc": "2026-01-01T00:00:00.000Z", "end_utc": "2026-01-01T00:01:00.000Z",
            "status": "interrupted", "stop_detected": True, "stop_time": "2026-01-01T00:00:59.500+00:00",
            "stop_reason": "stop_file", "git_commit": "0" * 40,
            "docker_image_tag": "not-applicable:not-running-in-a-container", "build_id": "svc-000000000000"}


def test_manifest_schema_rejects_what_the_checks_cannot_use() -> None:
    good = _good_manifest()
    running = {**good, "status": "running", "end_utc": None, "stop_detected": False, "stop_time": None,
               "stop_reason": None}
    assert _problems(MANIFEST, running) == []
    assert _problems(MANIFEST, {**good, "stop_time": "2026-01-01T00:00:59"}), "a stop_time without a zone"
    assert _problems(MANIFEST, {**good, "stop_time": None}), "stop_detected without stop_time"
    assert _problems(MANIFEST, {**good, "end_utc": None}), "stopped without end_utc"
    assert _problems(MANIFEST, {**good, "stop_detected": "true"}), "stop_detected must be a boolean"
    for field in MANIFEST["required"]:
        assert _problems(MANIFEST, {k: v for k, v in good.items() if k != field}), f"missing {field}"


def test_fingerprint_schema_rejects_what_the_checks_cannot_use() -> None:
    good = {"api_calls": 3, "error_count": 1, "error_events": [{"type": "timeout", "utc": "2026-01-01T00:00:00Z"}]}
    assert _problems(FINGERPRINT, good) == []
    assert _problems(FINGERPRINT, {**good, "error_events": [{"endpoint": "/api/v5/trade/order"}]}), "event without type"
    assert _problems(FINGERPRINT, {**good, "api_calls": "3"})
    assert _problems(FINGERPRINT, {**good, "error_count": 1.5})
    for field in FINGERPRINT["required"]:
        assert _problems(FINGERPRINT, {k: v for k, v in good.items() if k != field}), f"missing {field}"


# --- real services write files that validate -----------------------------------------------------------


@pytest.fixture
def venue():
    v = VenueServer(seed=5).start()
    try:
        yield v
    finally:
        v.stop()


def _wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            val = pred()
        except (OSError, ValueError):  # not written yet
            val = None
        if val:
            return val
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen within {timeout}s")
        time.sleep(0.05)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _check_files_of(proc: subprocess.Popen, data: Path, control: Path) -> None:
    """Mid-run, then after a STOP: both files validate; the STOP branch of the manifest schema applies."""
    fp = _wait(lambda: (d := _read(data / "execution_fingerprint.json"))["api_calls"] > 0 and d, 30,
               "a fingerprint with api_calls > 0")
    assert _problems(FINGERPRINT, fp) == []
    assert _problems(MANIFEST, _read(data / "run_manifest.json")) == []
    (control / "STOP").write_text("stop\n", encoding="utf-8")
    assert proc.wait(15) == 0
    manifest, fp = _read(data / "run_manifest.json"), _read(data / "execution_fingerprint.json")
    assert _problems(MANIFEST, manifest) == [], manifest
    assert _problems(FINGERPRINT, fp) == [], fp
    assert manifest["stop_detected"] is True and manifest["status"] != "running"  # the conditional parts applied


def _start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    full = dict(os.environ)
    full.update(env)
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, env=full, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_reference_target_files_validate(venue: VenueServer, tmp_path: Path) -> None:
    from okx_demo_api.harness import free_port

    control, data = tmp_path / "control", tmp_path / "data"
    proc = _start([sys.executable, "-m", "okx_demo_api"],
                  {"OKX_REST_URL": venue.rest_url, "OKX_WS_PUBLIC_URL": venue.ws_public_url,
                   "OKX_WS_PRIVATE_URL": venue.ws_private_url, "TARGET_PORT": str(free_port()),
                   "TARGET_CONTROL_DIR": str(control), "TARGET_DATA_DIR": str(data),
                   "TARGET_REASON_MANIFEST": str(specs_dir() / "status_reason_registries_manifest.json")}, ROOT, tmp_path / "out.log")
    try:
        _check_files_of(proc, data, control)
    finally:
        _stop(proc)


def test_example_service_files_validate(venue: VenueServer, tmp_path: Path) -> None:
    from okx_demo_api.harness import free_port

    control, data = tmp_path / "control", tmp_path / "data"
    proc = _start([sys.executable, "-m", "threaded_service"],
                  {"PYTHONPATH": str(ROOT / "examples"), "EXCHANGE_REST_URL": venue.rest_url,
                   "EXCHANGE_WS_PUBLIC": venue.ws_public_url, "EXCHANGE_WS_PRIVATE": venue.ws_private_url,
                   "PORT": str(free_port()), "CONTROL_DIR": str(control), "DATA_DIR": str(data)},
                  ROOT, tmp_path / "out.log")
    try:
        _check_files_of(proc, data, control)
    finally:
        _stop(proc)


# --- the docs name what the code has -------------------------------------------------------------------


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_drills_doc_names_every_check_and_trigger_kind() -> None:
    text = _doc("drills.md")
    missing = [f"check {c}" for c in builtin_checks() if f"`{c}" not in text]
    missing += [f"trigger kind {k}" for k in builtin_triggers() if f"`{k}`" not in text]
    assert missing == []


def test_targets_doc_names_every_fixture_placeholder_and_capability() -> None:
    from pytest_chaosdrill.backends.base import ALL_CAPABILITIES

    text = _doc("targets.md")
    fixtures = re.findall(r"@pytest\.fixture[^\n]*\ndef (chaosdrill_\w+)\(",
                          (ROOT / "pytest_chaosdrill/plugin.py").read_text(encoding="utf-8"))
    assert len(fixtures) >= 8
    from pytest_chaosdrill.backends.base import DrillSite, Harness
    from pytest_chaosdrill.backends.local import placeholders as fill
    from pytest_chaosdrill.target import TargetConfig

    # Every placeholder a target can get, TLS ones included (a harness with a TLS listener and a CA).
    harness = Harness(venue=None, proxy=None, proxy_listen="127.0.0.1:1", tls_listen="127.0.0.1:2", ca_file="/ca.pem")
    config = TargetConfig(name="t", command=["x"], env={}, status_url="u", health_url="u")
    placeholders = sorted(fill(config, DrillSite("d", ROOT, "r"), harness, status_port=1))
    assert len(placeholders) >= 11
    missing = [f for f in fixtures if f"`{f}`" not in text]
    missing += [f"{{{p}}}" for p in placeholders if f"{{{p}}}" not in text]
    missing += [c for c in ALL_CAPABILITIES if f"`{c}`" not in text]
    assert missing == []


def test_docs_cite_nothing_outside_the_repository() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in [*DOCS.glob("*.md"), ROOT / "README.md", *drills_dir().glob("*.yaml")]
                 if "DESIGN.md" in p.read_text(encoding="utf-8")]
    assert offenders == []


# --- every file a service writes has a schema, and every field the plugin reads is named -----------------

HOOKS_LOG = _schema("hooks_log.schema.json")
STATUS = _schema("status_csp_min.schema.json")
#: The files a service writes that the plugin reads, each with its schema (the status included).
SERVICE_SCHEMAS = {"status": STATUS, "fingerprint": FINGERPRINT, "run_manifest": MANIFEST, "hooks_log": HOOKS_LOG}
#: Status fields beyond the status contract that docs/targets.md names as optional extras the plugin reads.
STATUS_EXTRAS = {"latch_events"}
#: Keys the checks read from the plugin's own records, never from a file the service writes: the venue's
#: witness ledger (docs/venue-protocol.md), a fault's proof and request, the record's occasion, the
#: contract's manifest, schedules and exploration. Each entry says where it comes from.
PLUGIN_OWNED = {
    **dict.fromkeys(("accepted", "auth", "clOrdId", "duplicate", "effect", "exposure", "held_ms", "instId",
                     "method", "path", "received_mono", "recon_read", "reduceOnly", "side", "sz", "kind",
                     "positions", "orders_pending", "peer"), "the venue's witness ledger"),
    **dict.fromkeys(("proxy_connections", "proxy_connections_error", "client", "upstream_local", "opened_mono"),
                    "the fault proxy's connection log (a fault's release record)"),
    **dict.fromkeys(("old_ip", "new_ip", "old_processes_running", "sent_mono", "unattributed", "failing_since_mono",
                     "reasons_seen", "pod", "restart_count"), "a kubernetes fault's proof (the API and the node)"),
    **dict.fromkeys(("created_utc", "requested", "repeated_trade_ids", "repeats_per_socket", "sockets", "at_s",
                     "params", "steps", "trigger", "Sample"), "a fault's request, proof or schedule step"),
    **dict.fromkeys(("answer", "answer_mono", "answer_timeout_s", "declared", "fired_mono", "hook", "hooks_log",
                     "hold_after_s"), "the record's occasion, or the drill file's occasion: section"),
    **dict.fromkeys(("conclusive", "elapsed_s", "examples", "minimal", "n", "reason", "signature", "stopped_by",
                     "verdicts", "violations", "invariant"), "exploration's and the invariants' own results"),
    **dict.fromkeys(("registries", "manifest", "schema", "ModeReasonCode", "Kill"),
                    "the status contract's reason manifest (specs/), or a value compared with"),
    **dict.fromkeys(("content", "fingerprint", "run_manifest", "_unreadable"),
                    "the record's own keys for the files it read (a snapshot's content, files.<name>)"),
    "unknown": "a value compared with (audit fields must not contain it)",
}


def _names(schema: dict[str, Any]) -> set[str]:
    """Every property name a schema gives, at any depth (objects, array items, subschemas)."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                out.update(props)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return out


def _literal_keys(paths: list[Path]) -> dict[str, set[str]]:
    """String keys read in ``paths``: ``x.get("k")``, ``x["k"]``, ``"k" in x`` (an AST scan, so a new check
    cannot read a field without this test seeing it)."""
    import ast

    keys: dict[str, set[str]] = {}
    for p in paths:
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            k = None
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" and n.args \
                    and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str):
                k = n.args[0].value
            elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str):
                k = n.slice.value
            elif isinstance(n, ast.Compare) and isinstance(n.left, ast.Constant) and isinstance(n.left.value, str) \
                    and any(isinstance(o, (ast.In, ast.NotIn)) for o in n.ops):
                k = n.left.value
            if k is not None:
                keys.setdefault(k, set()).add(p.name)
    return keys


READERS = sorted((ROOT / "pytest_chaosdrill" / "checks").glob("*.py")) + [ROOT / "pytest_chaosdrill/faults/hook.py"]


def test_every_field_a_check_reads_is_named_by_the_contract_or_is_the_plugins_own() -> None:
    """A key read in checks/ (or by the hooks-log reader) that no service-file schema names, that
    docs/targets.md does not name as a status extra, and that is not the plugin's own fails here."""
    named = set().union(*(_names(s) for s in SERVICE_SCHEMAS.values())) | STATUS_EXTRAS
    read = _literal_keys(READERS)
    unnamed = {k: sorted(v) for k, v in read.items() if k not in named and k not in PLUGIN_OWNED}
    assert unnamed == {}, f"fields read but named by no schema of specs/ nor docs/targets.md: {unnamed}"
    stale = sorted(k for k in PLUGIN_OWNED if k not in read)
    assert stale == [], f"PLUGIN_OWNED lists keys no check reads any more: {stale}"
    targets = _doc("targets.md")
    assert all(f"`{k}`" in targets for k in STATUS_EXTRAS)


def test_docs_name_every_schema_and_every_field_of_the_files_a_service_writes() -> None:
    """docs/targets.md and the schemas are one contract: each service-file schema is linked from the page,
    and each field a schema names appears there."""
    targets = _doc("targets.md")
    for name in ("execution_fingerprint", "run_manifest", "hooks_log"):
        assert f"specs/{name}.schema.json" in targets, f"docs/targets.md does not link specs/{name}.schema.json"
        schema = _schema(f"{name}.schema.json")
        missing = sorted(f for f in _names(schema) if f"`{f}`" not in targets and f'"{f}"' not in targets)
        assert missing == [], f"{name}: fields the schema names but docs/targets.md does not: {missing}"


class _Rendered:
    """The part of a rendered target file the hooks-log readers use."""

    def __init__(self, control: Path) -> None:
        from pytest_chaosdrill.target import HookSpec

        self.hooks = {"wal_stall": HookSpec(str(control / "wal_stall")),
                      "reduce_exposure": HookSpec(str(control / "reduce_exposure"))}
        self.hooks_log = str(control / "hooks.log")


def test_every_hooks_log_field_the_plugin_reads_is_named_by_its_schema(tmp_path: Path, monkeypatch) -> None:
    """hook.apply's proof and the occasion hook read hooks-log lines through one reader; with each line a
    key-logging dict, the keys read must be the schema's required fields, all named by it."""
    from types import SimpleNamespace

    from pytest_chaosdrill.faults import hook as hook_mod

    log: dict[str, set[str]] = {}
    real = hook_mod.hook_log_entries
    monkeypatch.setattr(hook_mod, "hook_log_entries", lambda path: [Reads(log, "line", e) for e in real(path)])
    rendered = _Rendered(tmp_path)
    trigger = hook_mod.TargetHook(SimpleNamespace(rendered=rendered), {"hook": "wal_stall"})
    trigger.fire()
    occasion = hook_mod.OccasionHook(rendered, {"hook": "reduce_exposure"})
    occasion.fire()
    lines = [{"hook": "wal_stall", "event": "applied", "mono": time.monotonic(), "utc": "2026-01-01T00:00:00Z"},
             {"hook": "reduce_exposure", "event": "refused", "mono": time.monotonic(), "detail": {"why": "x"}}]
    assert all(_problems(HOOKS_LOG, x) == [] for x in lines)
    Path(rendered.hooks_log).write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    assert trigger.wait_landed(1.0)["hook_log_entry"]["event"] == "applied"
    assert occasion.poll() is not None and occasion.finish()["answer"] == "refused"
    assert log["line"] <= set(HOOKS_LOG["properties"]), sorted(log["line"] - set(HOOKS_LOG["properties"]))
    assert set(HOOKS_LOG["required"]) == log["line"] - {"detail"}
    jsonschema.Draft202012Validator.check_schema(HOOKS_LOG)
    assert _problems(HOOKS_LOG, {"hook": "wal_stall", "event": "applied"}), "a line without mono"
    assert _problems(HOOKS_LOG, {"hook": "wal_stall", "event": "applied", "mono": "1.5"}), "mono as a string"


def test_reference_and_example_hooks_logs_validate(tmp_path: Path) -> None:
    """The lines the bundled services write meet the schema (written by their own hook loggers)."""
    from okx_demo_api.hooks import HookLog

    HookLog(tmp_path, lambda *a, **k: None)("wal_stall", "applied", {"depth": 8})
    lines = [json.loads(x) for x in (tmp_path / "hooks.log").read_text(encoding="utf-8").splitlines()]
    assert lines and all(_problems(HOOKS_LOG, x) == [] for x in lines), lines


# --- the one per-drill table --------------------------------------------------------------------------


def _per_drill_rows() -> dict[str, dict[str, str]]:
    """docs/targets.md's per-drill table, by drill id (first column), cells by header."""
    text = _doc("targets.md")
    section = text[text.index("## Per drill: what the service must do"):]
    section = section[:section.index("\n### ", 1)]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows: dict[str, dict[str, str]] = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip().strip("|").split(" | ")]
        drill = cells[0].strip("`")
        assert drill not in rows, f"{drill} has two rows"
        rows[drill] = dict(zip(header, cells))
    return rows


def test_one_per_drill_table_names_every_bundled_drill_and_what_it_requires() -> None:
    """Every drill file has exactly one row; its required column names every target-file field the drill's
    fault and checks need, its backend column every capability, its optional column the occasion hook."""
    from pytest_chaosdrill.registry import Registry, validate_drill

    text = _doc("targets.md")
    assert text.count("| drill | fault (ends) |") == 1 and text.count("| needs | drills |") == 0, "one table only"
    rows = _per_drill_rows()
    drills = load_drills([drills_dir()])
    assert set(rows) == {d.id for d in drills}
    reg = Registry.builtin()
    for d in drills:
        row = rows[d.id]
        assert len(row) == 6 and all(row.values()), f"{d.id}: incomplete row {row}"
        req = validate_drill(d, reg)[1]
        for f in req.target_fields:
            assert f"`{f}`" in row["required (target file, files, traffic)"], f"{d.id}: required column lacks {f}"
        for cap in req.capabilities:
            assert f"`{cap}`" in row["backend"], f"{d.id}: backend column lacks {cap}"
        if d.occasion:
            assert f"`hooks.{d.occasion['hook']}`" in row["optional (adds evidence, never needed to pass)"]


def test_the_error_gate_asks_what_the_docs_and_the_drill_criteria_say() -> None:
    """C2.2 (network.disconnect) accepts any of connection_error, timeout, dns_failure: the checklist's C2.3
    root cause lists all three as the network failures a service must count (ConnectionError, Timeout,
    DNS failures), and a cut network yields whichever the client was doing. Code, drill criteria and
    docs/targets.md must say the same, class by class, for every drill with the gate."""
    from pytest_chaosdrill.checks.files import FAULT_ERROR_CLASSES

    text = _doc("targets.md")
    gate = text[text.index("`fingerprint_error_gate` passes when"):]
    gate = gate[:gate.index("\n\n")]
    for d in load_drills([drills_dir()]):
        for spec in d.checks:
            if spec.name != "fingerprint_error_gate":
                continue
            key = f"{d.trigger_kind}:{d.trigger_params.get('type')}" if d.trigger_kind == "proxy.toxic" else d.trigger_kind
            wanted = spec.params.get("classes") or list(FAULT_ERROR_CLASSES.get(key, ()))
            assert wanted, f"{d.id}: the gate knows no error class for {key}"
            for alternatives in wanted:
                for cls in alternatives.split("|"):
                    assert cls in spec.criterion, f"{d.id}: criterion does not name {cls}: {spec.criterion}"
                    assert f"`{cls}`" in gate, f"docs/targets.md's gate paragraph does not name {cls}"
            if key == "network.disconnect":
                assert wanted == ["timeout|connection_error|dns_failure"]
                assert "at least\none of `connection_error`, `timeout` or `dns_failure`" in gate
