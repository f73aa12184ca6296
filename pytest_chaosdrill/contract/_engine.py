"""The status-contract engine: JSON Schema + reason-code registry manifest -> findings.

A :class:`Contract` is built once per (schema, manifest) pair and checks any JSON
value without raising: every problem becomes a :class:`Finding` with a tag (see
``docs/contract.md`` for the rules behind each tag).
"""
from __future__ import annotations

import json
import os
import re
import reprlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from .. import resources
from ._schema import SchemaCheck, SchemaProblem

#: Every tag the engine emits, in the order reports list them.
TAGS: tuple[str, ...] = (
    "PARSE", "SCHEMA", "CSP-MIN", "CONTRACT", "ENUM", "INVARIANT", "TIER", "ORDER",
    "LATCH", "DECISION-A", "OWNER-VIEW", "STRICT",
)

# Field names of the contract (they are the contract itself, not configuration).
MODE = "trading_mode"
RISK = "risk_state"
REASONS = "mode_reasons"
LATCH = "open_permission_blocked_latch"
LATCH_CODES = "open_permission_reason_codes"
RECONCILE = "open_permission_requires_reconcile"
VERSION = "contract_version"
OWNER_VIEW = "owner_view"
ACTIVE = "Active"
#: Decision A: a ReduceOnly payload with the latch set must carry this mode reason.
LATCHED_MODE_REASON = "REDUCEONLY_OPEN_PERMISSION_LATCHED"
TIER_PREFIX = {"Kill": "KILL_", "ReduceOnly": "REDUCEONLY_"}
LATCH_SUFFIX = "_RECONCILE_REQUIRED"
UNBLOCK_TYPES = ("AUTO", "MANUAL")

_IDENT = re.compile(r"^[A-Za-z0-9_]+$")
_ABSENT = object()  # "key not in the payload" for dict.get (a payload value is never this object)


@dataclass(frozen=True)
class Finding:
    """One contract problem: ``tag`` (no brackets, e.g. ``"CSP-MIN"``), JSON ``path``, ``message``."""

    tag: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"[{self.tag}] {self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """The finding as a JSON-ready mapping."""
        return {"tag": self.tag, "path": self.path, "message": self.message}


_TAG_ORDER = {t: i for i, t in enumerate(TAGS)}


class ContractLoadError(ValueError):
    """The schema or manifest cannot be read or is not usable as a contract (set-up error)."""


def json_path(parts: Iterable[Any], root: str = "$") -> str:
    """Render path parts as ``$.owner_view.unblock[0].type`` (odd keys as ``$["a b"]``)."""
    out = [root]
    for p in parts:
        if type(p) is str:  # exactly str: such a key never equals a key of another type
            segment = _KEY_SEGMENTS.get(p)
            if segment is None:
                segment = f".{p}" if _IDENT.match(p) else f"[{json.dumps(p)}]"
                if len(_KEY_SEGMENTS) < 4096:  # the schema's keys recur; payload keys could be endless
                    _KEY_SEGMENTS[p] = segment
            out.append(segment)
        elif isinstance(p, int) and not isinstance(p, bool):
            out.append(f"[{p}]")
        elif isinstance(p, str) and _IDENT.match(p):
            out.append(f".{p}")
        else:
            out.append(f"[{json.dumps(str(p))}]")
    return "".join(out)


_KEY_SEGMENTS: dict[str, str] = {}  # key -> its rendered path segment, for json_path


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 4, 60, 60, 8, 6


def _short(value: Any, limit: int = 80) -> str:
    """repr() for messages: bounded in length and nesting (a deep value cannot blow the stack)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def findings_by_tag(findings: Iterable[Finding]) -> dict[str, list[Finding]]:
    """Group findings by tag; known tags in :data:`TAGS` order, others after them."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        if f.tag in groups:
            groups[f.tag].append(f)
        else:
            groups[f.tag] = [f]
    if len(groups) < 2:
        return groups
    order = _TAG_ORDER
    return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def format_findings(findings: Sequence[Finding]) -> str:
    """A readable block: a header with counts per tag, then every finding grouped by tag."""
    if not findings:
        return "status contract: no findings"
    groups = findings_by_tag(findings)
    counts = ", ".join(f"{tag}: {len(fs)}" for tag, fs in groups.items())
    lines = [f"status contract: {len(findings)} finding(s) ({counts})"]
    for fs in groups.values():
        lines.extend(f"  {f}" for f in fs)
    return "\n".join(lines)


class ContractViolation(AssertionError):
    """Raised by :func:`assert_status_valid`; ``.findings`` holds every finding."""

    def __init__(self, findings: Sequence[Finding], context: str = "") -> None:
        self.findings = list(findings)
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(prefix + format_findings(self.findings))


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
def _read_text(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ContractLoadError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractLoadError(f"cannot read {what} file {path}: {exc}") from None


def _parse_json(text: str, path: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ContractLoadError(f"{what} file {path} is not valid JSON: {exc}") from None


def _read_json(path: str, what: str) -> Any:
    return _parse_json(_read_text(path, what), path, what)


def _resolve(path: str | os.PathLike[str] | None, default: Callable[[], Any]) -> str:
    """The absolute, symlink-free path (as ``Path.expanduser().resolve()``)."""
    return os.path.realpath(os.path.expanduser(os.fspath(default() if path is None else path)))


def _stamp(path: str, what: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        raise ContractLoadError(f"{what} file not found: {path}") from None
    return (path, st.st_mtime_ns, st.st_size)


def _default_schema() -> str:
    return str(resources.default_schema())


def _default_manifest() -> str:
    return str(resources.default_manifest())


_CACHE: dict[tuple[Any, ...], "Contract"] = {}
_CACHE_LOCK = threading.Lock()


def _subschema(schema: Any, *keys: Any) -> Any:
    node = schema
    for k in keys:
        if isinstance(node, dict) and isinstance(k, str) and k in node:
            node = node[k]
        elif isinstance(node, list) and isinstance(k, int) and 0 <= k < len(node):
            node = node[k]
        else:
            return None
    return node


_SIZE_NOUNS = {"Items": "items", "Length": "characters", "Properties": "properties"}
_BOUNDS = {"minimum": "less than the minimum of", "maximum": "greater than the maximum of",
           "exclusiveMinimum": "less than or equal to the exclusive minimum of",
           "exclusiveMaximum": "greater than or equal to the exclusive maximum of"}


def _message(err: Any) -> str:
    """A jsonschema error's message, with the instance shortened and a long ``enum`` summarised.

    jsonschema repeats the whole value (and the whole enum) in its messages; a status field can be
    large and the mode-reason enums list 15 tokens, which would bury the offending value.
    """
    kw, v, x = err.validator, err.validator_value, err.instance
    _s = lambda value: _short(value, 60)  # noqa: E731
    if kw == "type":
        return f"{_s(x)} is not of type {', '.join(map(repr, [v] if isinstance(v, str) else v))}"
    if kw == "const":
        return f"{_s(v)} was expected, got {_s(x)}"
    if kw == "enum" and isinstance(v, list):
        allowed = f"the {len(v)} allowed values ({', '.join(map(repr, v[:3]))}, ...)" if len(v) > 4 else repr(v)
        return f"{_s(x)} is not one of {allowed}"
    if kw in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        noun = _SIZE_NOUNS[kw[3:]]
        return (f"{_s(x)} is too short (fewer than {v} {noun})" if kw.startswith("min")
                else f"{_s(x)} is too long (more than {v} {noun})")
    if kw in _BOUNDS:
        return f"{_s(x)} is {_BOUNDS[kw]} {v!r}"
    if kw == "uniqueItems":
        return f"{_s(x)} has non-unique elements"
    if kw == "anyOf":
        return f"{_s(x)} is not valid under any of the given schemas"
    if kw == "contains":
        return f"{_s(x)} does not contain items matching the given schema"
    return err.message


_MAX_DEPTH = 64  # levels of nesting the schema check walks (a read status is refused deeper than this)


def _cut(value: Any, depth: int) -> Any:
    """A copy of ``value`` with containers below ``depth`` levels replaced by a marker string."""
    if isinstance(value, dict):
        return {k: _cut(v, depth - 1) for k, v in value.items()} if depth > 0 else "<nested too deeply>"
    if isinstance(value, list):
        return [_cut(v, depth - 1) for v in value] if depth > 0 else "<nested too deeply>"
    return value


class _StrictPlan:
    """Which keys the schema defines at one object level, and plans for nested values."""

    __slots__ = ("keys", "children", "items")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.children: dict[str, _StrictPlan] = {}
        self.items: _StrictPlan | None = None


class Contract:
    """A compiled status contract: a JSON Schema plus its reason-code registry manifest."""

    def __init__(self, schema: Mapping[str, Any], manifest: Mapping[str, Any], *,
                 schema_source: str = "<schema>", manifest_source: str = "<manifest>",
                 accelerate: bool = True) -> None:
        if not isinstance(schema, dict):
            raise ContractLoadError(f"schema {schema_source} must be a JSON object")
        if not isinstance(manifest, dict):
            raise ContractLoadError(f"manifest {manifest_source} must be a JSON object")
        self.schema: dict[str, Any] = schema
        self.manifest: dict[str, Any] = manifest
        self.schema_source = schema_source
        self.manifest_source = manifest_source
        self.registry_findings: list[Finding] = []

        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
            raise ContractLoadError(f"schema {schema_source}: 'required' must be an array of strings")
        self.mandatory_keys: tuple[str, ...] = tuple(required)
        self._mandatory_set = frozenset(required)

        self._read_manifest()
        try:
            self._schema_check = SchemaCheck(schema, accelerate=accelerate)
        except SchemaProblem as exc:
            raise ContractLoadError(f"schema {schema_source} is not a valid JSON Schema: {exc}") from None
        self._required_messages = frozenset(f"{k!r} is a required property" for k in required)
        self._strict_plan = self._build_strict_plan()
        self._check_registry_against_schema()

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def load(cls, schema: str | os.PathLike[str] | None = None,
             manifest: str | os.PathLike[str] | None = None) -> "Contract":
        """Load (or reuse) the contract for these files; defaults are the bundled min schema + manifest.

        Cached per resolved paths and their mtime/size, so an edited file is re-read.
        Raises :class:`ContractLoadError` for a missing, unreadable or malformed file.
        """
        schema_path = _resolve(schema, _default_schema)
        manifest_path = _resolve(manifest, _default_manifest)
        key = (_stamp(schema_path, "schema"), _stamp(manifest_path, "manifest"))
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None:
            return cached
        contract = cls(_read_json(schema_path, "schema"), _read_json(manifest_path, "manifest"),
                       schema_source=str(schema_path), manifest_source=str(manifest_path))
        with _CACHE_LOCK:
            _CACHE[key] = contract
        return contract

    def _read_manifest(self) -> None:
        m, src = self.manifest, self.manifest_source
        version = m.get(VERSION)
        if not isinstance(version, str) or not version:
            raise ContractLoadError(f"manifest {src}: 'contract_version' must be a non-empty string")
        self.contract_version: str = version
        regs = m.get("registries")
        if not isinstance(regs, dict):
            raise ContractLoadError(f"manifest {src}: 'registries' must be an object")

        def registry(name: str) -> dict[str, Any]:
            reg = regs.get(name)
            if not isinstance(reg, dict):
                raise ContractLoadError(f"manifest {src}: registry {name!r} is missing or not an object")
            return reg

        def values(name: str) -> list[Any]:
            vals = registry(name).get("values")
            if not isinstance(vals, list):
                raise ContractLoadError(f"manifest {src}: registry {name!r} needs a 'values' array")
            return vals

        self.trading_modes: tuple[str, ...] = self._codes(values("TradingMode"), "registries.TradingMode.values")
        self.risk_states: tuple[str, ...] = self._codes(values("RiskState"), "registries.RiskState.values")
        f1 = regs.get("F1CertState")
        self._f1_states: tuple[str, ...] | None = (
            self._codes(f1["values"], "registries.F1CertState.values")
            if isinstance(f1, dict) and isinstance(f1.get("values"), list) else None
        )
        mode_reg = registry("ModeReasonCode")
        tiers: dict[str, tuple[str, ...]] = {}
        for tier in TIER_PREFIX:
            entries = mode_reg.get(tier)
            if not isinstance(entries, list):
                raise ContractLoadError(f"manifest {src}: ModeReasonCode needs a {tier!r} array")
            where = f"registries.ModeReasonCode.{tier}"
            tiers[tier] = self._codes(entries, where, entry_kind="mode")
            for i, code in enumerate(tiers[tier]):
                if not code.startswith(TIER_PREFIX[tier]):
                    self._drift(f"{where}[{i}]", f"{code!r} is in the {tier} tier but does not start with "
                                f"{TIER_PREFIX[tier]!r}")
        self.tiers: dict[str, tuple[str, ...]] = tiers
        where = "registries.OpenPermissionReasonCode.values"
        self.latch_codes: tuple[str, ...] = self._codes(values("OpenPermissionReasonCode"), where,
                                                        entry_kind="latch")
        for i, code in enumerate(self.latch_codes):
            if not code.endswith(LATCH_SUFFIX):
                self._drift(f"{where}[{i}]", f"latch code {code!r} does not end with {LATCH_SUFFIX!r}")
        owner = regs.get("OwnerStateCode")
        self.owner_state_codes: tuple[str, ...] = (
            self._codes(owner["values"], "registries.OwnerStateCode.values")
            if isinstance(owner, dict) and isinstance(owner.get("values"), list) else ()
        )

        # A token may live in one registry only, or a status field could not say what it means.
        seen: dict[str, str] = {}
        for name, codes in (("ModeReasonCode.Kill", tiers["Kill"]),
                            ("ModeReasonCode.ReduceOnly", tiers["ReduceOnly"]),
                            ("OpenPermissionReasonCode", self.latch_codes),
                            ("OwnerStateCode", self.owner_state_codes)):
            for code in dict.fromkeys(codes):
                if code in seen:
                    self._drift(f"registries.{name}", f"{code!r} is listed in both {seen[code]} and {name}")
                else:
                    seen[code] = name
        for tier in tiers:
            if tier not in self.trading_modes:
                self._drift("registries.TradingMode.values", f"tier {tier!r} is not a trading mode")
        if ACTIVE not in self.trading_modes:
            self._drift("registries.TradingMode.values", f"{ACTIVE!r} is not a trading mode")
        if LATCHED_MODE_REASON not in tiers["ReduceOnly"]:
            self._drift("registries.ModeReasonCode.ReduceOnly",
                        f"{LATCHED_MODE_REASON!r} is missing (Decision A needs it)")

        self._tier_sets = {t: frozenset(c) for t, c in tiers.items()}
        self._tier_index = {t: {c: i for i, c in reversed(list(enumerate(codes)))} for t, codes in tiers.items()}
        self._tier_of = {c: t for t, codes in tiers.items() for c in codes}
        self._latch_set = frozenset(self.latch_codes)
        self._latch_index = {c: i for i, c in reversed(list(enumerate(self.latch_codes)))}
        self._mode_set = frozenset(self.trading_modes)
        self._risk_set = frozenset(self.risk_states)
        self._owner_set = frozenset(self.owner_state_codes)

    def _drift(self, path: str, message: str, source: str = "manifest") -> None:
        self.registry_findings.append(Finding("CONTRACT", f"{source}:{path}", message))

    def _codes(self, entries: list[Any], where: str, entry_kind: str = "") -> tuple[str, ...]:
        """Codes of a registry list (entries are strings or objects with 'code'); drift → findings."""
        codes: list[str] = []
        for i, entry in enumerate(entries):
            here = f"{where}[{i}]"
            code = entry.get("code") if isinstance(entry, dict) else entry
            if not isinstance(code, str) or not code:
                self._drift(here, f"entry {_short(entry)} has no code string")
                continue
            if code in codes:
                self._drift(here, f"{code!r} is listed twice")
                continue
            codes.append(code)
            if isinstance(entry, dict) and entry_kind:
                if entry_kind == "mode" and not isinstance(entry.get("latched"), bool):
                    self._drift(here, f"{code!r}: 'latched' must be true or false")
                unblock = entry.get("unblock")
                if not isinstance(unblock, dict) or unblock.get("type") not in UNBLOCK_TYPES:
                    self._drift(here, f"{code!r}: unblock.type must be one of {list(UNBLOCK_TYPES)}")
                elif not isinstance(unblock.get("condition"), str) or not unblock["condition"]:
                    self._drift(here, f"{code!r}: unblock.condition must be a non-empty string")
        return tuple(codes)

    def _check_registry_against_schema(self) -> None:
        """Registry drift: the schema's enums and version must say what the manifest says."""
        s = self.schema
        const = _subschema(s, "properties", VERSION, "const")
        if const is not None and const != self.contract_version:
            self._drift("properties.contract_version.const",
                        f"schema pins contract_version {const!r} but the manifest says "
                        f"{self.contract_version!r}", source="schema")
        for prop, codes in ((MODE, self.trading_modes), (RISK, self.risk_states),
                            ("f1_cert_state", self._f1_states)):
            enum = _subschema(s, "properties", prop, "enum")
            if codes is not None and isinstance(enum, list):
                self._compare(f"properties.{prop}.enum", enum, codes, ordered=False)
        all_of = s.get("allOf")
        for i, branch in enumerate(all_of if isinstance(all_of, list) else []):
            for tier, codes in self.tiers.items():
                if _subschema(branch, "if", "properties", MODE, "const") == tier:
                    enum = _subschema(branch, "then", "properties", REASONS, "items", "enum")
                    if isinstance(enum, list):
                        self._compare(f"allOf[{i}].then.properties.mode_reasons.items.enum ({tier})",
                                      enum, codes, ordered=True)
            if _subschema(branch, "if", "properties", LATCH, "const") is True:
                enum = _subschema(branch, "then", "properties", LATCH_CODES, "items", "enum")
                if isinstance(enum, list):
                    self._compare(f"allOf[{i}].then.properties.open_permission_reason_codes.items.enum",
                                  enum, self.latch_codes, ordered=True)

    def _compare(self, where: str, schema_list: list[Any], manifest_codes: tuple[str, ...], *,
                 ordered: bool) -> None:
        for token in manifest_codes:
            if token not in schema_list:
                self._drift(where, f"token {token!r} is in the manifest but not in the schema enum",
                            source="schema")
        for token in schema_list:
            if token not in manifest_codes:
                self._drift(where, f"token {token!r} is in the schema enum but not in the manifest",
                            source="schema")
        if ordered and set(map(str, schema_list)) == set(manifest_codes) and tuple(schema_list) != manifest_codes:
            self._drift(where, "schema enum lists the manifest's tokens in a different order", source="schema")

    def _build_strict_plan(self) -> _StrictPlan:
        plans: dict[tuple[int, ...], _StrictPlan] = {}

        def branches(schema: Any, depth: int = 0) -> list[dict[str, Any]]:
            """The schema and every subschema that constrains the same instance."""
            if not isinstance(schema, dict) or depth > 32:
                return []
            out = [schema]
            ref = schema.get("$ref")
            if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
                target: Any = self.schema
                for part in ref[2:].split("/") if ref != "#" else []:
                    target = _subschema(target, part.replace("~1", "/").replace("~0", "~"))
                out += branches(target, depth + 1)
            for kw in ("allOf", "anyOf", "oneOf"):
                subs = schema.get(kw)
                for sub in subs if isinstance(subs, list) else []:
                    out += branches(sub, depth + 1)
            for kw in ("then", "else"):
                out += branches(schema.get(kw), depth + 1)
            return out

        def plan_for(schemas: list[dict[str, Any]]) -> _StrictPlan:
            key = tuple(id(s) for s in schemas)
            if key in plans:
                return plans[key]
            plan = plans[key] = _StrictPlan()
            children: dict[str, list[dict[str, Any]]] = {}
            items: list[dict[str, Any]] = []
            for s in schemas:
                props = s.get("properties")
                if isinstance(props, dict):
                    for k, sub in props.items():
                        plan.keys.add(k)
                        children.setdefault(k, []).extend(branches(sub))
                items.extend(branches(s.get("items")))
            for k, subs in children.items():
                if any(isinstance(s.get("properties"), dict) or "items" in s for s in subs):
                    plan.children[k] = plan_for(subs)
            if items:
                plan.items = plan_for(items)
            return plan

        return plan_for(branches(self.schema))

    # -- checking ------------------------------------------------------------------------
    def is_schema_valid(self, payload: Any) -> bool:
        """Only the JSON Schema verdict."""
        return self._schema_check.is_valid(payload)

    def check(self, payload: object, *, strict: bool = False) -> list[Finding]:
        """Every contract finding for ``payload`` (any JSON value); ``[]`` means valid. Never raises."""
        if not isinstance(payload, dict):
            return [Finding("SCHEMA", "$", f"payload must be a JSON object, got {_type_name(payload)} "
                                            f"{_short(payload, 60)}")]
        try:
            findings = self._schema_findings(payload)
            self._semantic(payload, findings)
            if strict:
                self._strict(payload, self._strict_plan, "$", findings)
            return findings
        except RecursionError:
            return [Finding("SCHEMA", "$", "payload is nested too deeply to check")]

    def _schema_findings(self, payload: dict[str, Any]) -> list[Finding]:
        """[SCHEMA] findings, one per jsonschema error (a missing mandatory key is [CSP-MIN] instead)."""
        try:
            return self._schema_errors(payload)
        except RecursionError:
            # jsonschema (and repr() in its messages) recurses once per level: check a copy cut at
            # _MAX_DEPTH levels, and say that what lies below was not checked.
            out = self._schema_errors(_cut(payload, _MAX_DEPTH))
            out.append(Finding("SCHEMA", "$", f"payload nests deeper than {_MAX_DEPTH} levels; "
                                              "values below that depth were not checked against the schema"))
            return out

    def _schema_errors(self, payload: dict[str, Any]) -> list[Finding]:
        out: list[Finding] = []
        for err in self._schema_check.errors(payload):
            if err.validator == "required" and not err.absolute_path and err.message in self._required_messages:
                continue  # reported once, as [CSP-MIN]
            keyword = "false" if err.validator is None else err.validator  # None: a ``false`` subschema
            out.append(Finding("SCHEMA", json_path(err.absolute_path), f"{_clip(_message(err))} ({keyword})"))
        return out

    def _semantic(self, p: dict[str, Any], out: list[Finding]) -> None:
        add = out.append
        if not p.keys() >= self._mandatory_set:  # one set test for the common case: nothing missing
            for key in self.mandatory_keys:
                if key not in p:
                    add(Finding("CSP-MIN", json_path([key]), "mandatory key is missing"))

        version = p.get(VERSION, _ABSENT)
        if version is not _ABSENT and version != self.contract_version:
            add(Finding("CONTRACT", "$.contract_version",
                        f"{_short(version)} differs from the manifest's {self.contract_version!r}"))

        mode = p.get(MODE)
        mode_ok = isinstance(mode, str) and mode in self._mode_set
        if MODE in p and not mode_ok:
            add(Finding("ENUM", "$.trading_mode", f"unknown trading mode {_short(mode)}; "
                                                  f"expected one of {list(self.trading_modes)}"))
        risk = p.get(RISK, _ABSENT)
        if risk is not _ABSENT and not (isinstance(risk, str) and risk in self._risk_set):
            add(Finding("ENUM", "$.risk_state", f"unknown risk state {_short(risk)}; "
                                                f"expected one of {list(self.risk_states)}"))
        codes = p.get(LATCH_CODES)
        if isinstance(codes, list) and codes:
            latch_set = self._latch_set
            for i, code in enumerate(codes):
                if not (isinstance(code, str) and code in latch_set):
                    add(Finding("ENUM", f"$.open_permission_reason_codes[{i}]",
                                f"unknown open-permission reason code {_short(code)}"))

        reasons = p.get(REASONS)
        if mode_ok and isinstance(reasons, list):
            if mode == ACTIVE:
                if reasons:
                    add(Finding("INVARIANT", "$.mode_reasons",
                                f"trading_mode Active requires mode_reasons == [], got {len(reasons)} reason(s)"))
            elif not reasons:
                add(Finding("INVARIANT", "$.mode_reasons", f"trading_mode {mode} requires at least one reason"))
            if mode in self._tier_sets:
                self._tier_and_order(mode, reasons, out)

        latch = p.get(LATCH)
        if LATCH in p:
            self._latch(p, latch, codes, out)

        if latch is True and mode_ok:
            if mode == ACTIVE:
                add(Finding("DECISION-A", "$.trading_mode",
                            "open-permission latch is set, so trading_mode must not be Active"))
            elif mode == "ReduceOnly" and REASONS in p and not (
                    isinstance(reasons, list) and LATCHED_MODE_REASON in reasons):
                add(Finding("DECISION-A", "$.mode_reasons",
                            f"latch is set in ReduceOnly, so mode_reasons must contain {LATCHED_MODE_REASON}"))

        view = p.get(OWNER_VIEW)
        if isinstance(view, dict):
            self._owner_view(view, mode if mode_ok else None, reasons, latch, codes, out)

    def _tier_and_order(self, mode: str, reasons: list[Any], out: list[Finding]) -> None:
        tier_set, index = self._tier_sets[mode], self._tier_index[mode]
        prev: tuple[int, str] | None = None
        seen: set[str] = set()
        for i, reason in enumerate(reasons):
            if not (isinstance(reason, str) and reason in tier_set):
                other = self._tier_of.get(reason) if isinstance(reason, str) else None
                if other is not None:
                    msg = f"{reason} is a {other}-tier reason but trading_mode is {mode}"
                elif isinstance(reason, str):
                    msg = f"{reason!r} is not a registered {mode}-tier reason (unknown token)"
                else:
                    msg = f"{_short(reason)} is not a reason code string"
                out.append(Finding("TIER", f"$.mode_reasons[{i}]", msg))
                continue
            if reason in seen:
                out.append(Finding("ORDER", f"$.mode_reasons[{i}]", f"{reason} appears more than once"))
                continue
            seen.add(reason)
            pos = index[reason]
            if prev is not None and pos < prev[0]:
                out.append(Finding("ORDER", f"$.mode_reasons[{i}]", f"{reason} must come before {prev[1]} "
                                                                    f"(manifest order of the {mode} tier)"))
            prev = (pos, reason)

    def _latch(self, p: dict[str, Any], latch: Any, codes: Any, out: list[Finding]) -> None:
        add = out.append
        if not isinstance(latch, bool):
            add(Finding("LATCH", "$.open_permission_blocked_latch",
                        f"latch must be a boolean, got {_type_name(latch)} {_short(latch)}"))
        else:
            if RECONCILE in p and p[RECONCILE] is not latch:
                add(Finding("LATCH", "$.open_permission_requires_reconcile",
                            f"must be {str(latch).lower()} when the latch is {str(latch).lower()}, "
                            f"got {_short(p[RECONCILE])}"))
            if LATCH_CODES in p:
                if not isinstance(codes, list):
                    add(Finding("LATCH", "$.open_permission_reason_codes",
                                f"must be an array, got {_type_name(codes)}"))
                elif latch and not codes:
                    add(Finding("LATCH", "$.open_permission_reason_codes",
                                "latch is set but no open-permission reason code is given"))
                elif not latch and codes:
                    add(Finding("LATCH", "$.open_permission_reason_codes",
                                f"latch is clear but {len(codes)} reason code(s) are given"))
        if isinstance(codes, list) and codes:
            prev: tuple[int, str] | None = None
            seen: set[str] = set()
            for i, code in enumerate(codes):
                if not (isinstance(code, str) and code in self._latch_set):
                    continue  # reported as [ENUM]
                if code in seen:
                    add(Finding("LATCH", f"$.open_permission_reason_codes[{i}]", f"{code} appears more than once"))
                    continue
                seen.add(code)
                pos = self._latch_index[code]
                if prev is not None and pos < prev[0]:
                    add(Finding("LATCH", f"$.open_permission_reason_codes[{i}]",
                                f"{code} must come before {prev[1]} (manifest order)"))
                prev = (pos, code)

    def _owner_view(self, view: dict[str, Any], mode: str | None, reasons: Any, latch: Any, codes: Any,
                    out: list[Finding]) -> None:
        """Decision D: the owner view may summarise the contract fields, never contradict them."""
        add = out.append
        blocked = (mode is not None and mode != ACTIVE) or latch is True
        primary = view.get("primary_owner_reason_code")
        where = "$.owner_view.primary_owner_reason_code"
        if isinstance(primary, str):
            tier = self._tier_of.get(primary)
            if tier is not None:
                if mode is not None and mode != tier:
                    add(Finding("OWNER-VIEW", where,
                                f"names {tier}-tier reason {primary} but trading_mode is {mode}"))
                elif isinstance(reasons, list) and primary not in reasons:
                    add(Finding("OWNER-VIEW", where, f"names {primary}, which is not in mode_reasons"))
            elif primary in self._latch_set:
                if latch is not True:
                    add(Finding("OWNER-VIEW", where, f"names latch code {primary} but the latch is not set"))
                elif isinstance(codes, list) and primary not in codes:
                    add(Finding("OWNER-VIEW", where,
                                f"names {primary}, which is not in open_permission_reason_codes"))
            elif primary in self._owner_set and blocked:
                add(Finding("OWNER-VIEW", where,
                            f"names dashboard-only state {primary} while trading is blocked "
                            f"(trading_mode {mode}, latch {latch})"))
        steps = view.get("unblock")
        if isinstance(steps, list) and (mode is not None or isinstance(latch, bool)):
            if blocked and not steps:
                add(Finding("OWNER-VIEW", "$.owner_view.unblock",
                            "trading is blocked but the owner view lists no unblock step"))
            elif not blocked and mode is not None and isinstance(latch, bool) and steps:
                add(Finding("OWNER-VIEW", "$.owner_view.unblock",
                            f"nothing is blocked (Active, latch clear) but {len(steps)} unblock step(s) are listed"))

    def _strict(self, value: Any, plan: _StrictPlan, path: str, out: list[Finding]) -> None:
        if isinstance(value, dict):
            if plan.keys:
                for key in value:
                    if key not in plan.keys:
                        out.append(Finding("STRICT", json_path([key], path), "key is not defined by the schema"))
            for key, child in plan.children.items():
                if key in value:
                    self._strict(value[key], child, json_path([key], path), out)
        elif isinstance(value, list) and plan.items is not None:
            for i, item in enumerate(value):
                self._strict(item, plan.items, f"{path}[{i}]", out)


# ---------------------------------------------------------------------------------------
# Functional API
# ---------------------------------------------------------------------------------------
def check_status(payload: object, *, schema: str | os.PathLike[str] | None = None,
                 manifest: str | os.PathLike[str] | None = None, strict: bool = False) -> list[Finding]:
    """Findings for ``payload`` under the given (default: bundled) schema and manifest."""
    return Contract.load(schema, manifest).check(payload, strict=strict)


def assert_status_valid(payload: object, *, schema: str | os.PathLike[str] | None = None,
                        manifest: str | os.PathLike[str] | None = None, strict: bool = False,
                        context: str = "") -> None:
    """Raise :class:`ContractViolation` (an AssertionError) listing every finding, if any."""
    findings = check_status(payload, schema=schema, manifest=manifest, strict=strict)
    if findings:
        raise ContractViolation(findings, context)
