"""Strict reading of a ``/api/v1/status`` body: hostile answers become ``[PARSE]`` findings.

``json.loads`` is lenient where a safety check must not be: with duplicate keys the last value
wins silently (``"trading_mode": "Kill"`` first, ``"Active"`` after), ``NaN``/``Infinity`` are
accepted and later written back as bare ``NaN`` (not JSON), a deeply nested body raises
``RecursionError``, and any size is accepted. :func:`read_status` refuses all of these with a
reason a person understands, and keeps the raw bytes for evidence.

>>> r = read_status(b'{"trading_mode": "Kill", "trading_mode": "Active"}')
>>> r.payload is None, str(r.findings[0])
(True, '[PARSE] $.trading_mode: duplicate key "trading_mode" (2 times); a reader would silently keep the last value')
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .contract import Finding, json_path

TAG = "PARSE"

DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_DEPTH = 64

# Tokens for the depth pre-check: a whole string literal (so "[" inside text is not nesting) or
# one bracket. The string alternative is possessive and also ends at the end of the text, so it
# never fails after scanning: the scan stays linear even on an unterminated hostile string.
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.S)


#: (payload or None, findings, syntax) -- what :func:`parse_status` returns.
_Parsed = tuple  # tuple[dict[str, Any] | None, list[Finding], bool]


class _NonFinite:
    """Placeholder the parser puts where ``NaN``/``Infinity`` (or an overflowing number) stood."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


@dataclass(frozen=True)
class StatusRead:
    """The result of :func:`read_status`.

    ``payload`` is the status object, or ``None`` when any finding was raised (a rejected body
    must not be used as a status, not even partly). ``raw`` is the body exactly as received.
    ``syntax`` is True when the body is not JSON at all (not UTF-8, or a JSON syntax error), as
    opposed to JSON that is hostile or not a status object.
    """

    payload: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)
    raw: bytes = b""
    syntax: bool = False

    @property
    def ok(self) -> bool:
        return self.payload is not None and not self.findings

    @property
    def reason(self) -> str | None:
        """All findings as one line (for a failed sample's ``error``), or ``None`` when ok."""
        return "; ".join(str(f) for f in self.findings) if self.findings else None


class _Dups(dict):  # type: ignore[type-arg]
    """A dict that arrived with repeated keys; ``pairs`` holds every (key, value) as it came."""

    pairs: list[tuple[str, Any]]


class _Hostile(Exception):
    """Raised inside the fast decoder at the first duplicate key or non-finite number."""


def _fast_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Hostile
    return d


def _fast_constant(token: str) -> Any:
    raise _Hostile


def _fast_float(token: str) -> float:
    value = float(token)
    if value - value != 0.0:  # inf (from "1e999"); NaN cannot come from a JSON number
        raise _Hostile
    return value


_FAST = json.JSONDecoder(object_pairs_hook=_fast_pairs, parse_constant=_fast_constant, parse_float=_fast_float)
_SCAN = _FAST.scan_once
_SPACE = json.decoder.WHITESPACE.match


def _fast_decode(text: str) -> Any:
    """``_FAST.decode(text)`` without its two Python-level wrappers: same result, same errors."""
    try:
        obj, end = _SCAN(text, _SPACE(text, 0).end())
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    end = _SPACE(text, end).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return obj


def _fail(message: str, path: str = "$", *, syntax: bool = False) -> _Parsed:
    return None, [Finding(TAG, path, message)], syntax


def _nesting_depth(text: str, limit: int) -> int:
    """Deepest ``[``/``{`` nesting of ``text``, stopping as soon as it exceeds ``limit``."""
    depth = deepest = 0
    for m in _DEPTH_TOKENS.finditer(text):
        tok = m.group()
        if tok == "[" or tok == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif tok == "]" or tok == "}":
            depth -= 1
    return deepest


def _locate(obj: Any, wanted: set[int], nonfinite: bool, path: tuple[Any, ...],
            out: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Collect (path, node) for dicts whose id is in ``wanted`` and for non-finite placeholders."""
    if isinstance(obj, dict):
        if id(obj) in wanted:
            out.append((path, obj))
        items = obj.pairs if isinstance(obj, _Dups) else obj.items()
        for k, v in items:
            _locate(v, wanted, nonfinite, path + (k,), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _locate(v, wanted, nonfinite, path + (i,), out)
    elif nonfinite and isinstance(obj, _NonFinite):
        out.append((path, obj))


def read_status(body: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> StatusRead:
    """Parse ``body`` as a status object, refusing anything a lenient parser would let through.

    Findings (tag ``PARSE``): body over ``max_bytes``; invalid UTF-8 (byte offset); nesting over
    ``max_depth`` (checked before parsing, so no ``RecursionError``); invalid JSON (line, column,
    position); duplicate keys at any depth (key and path); ``NaN``/``Infinity``/``-Infinity`` or a
    number too large for a float; a top level that is not an object. Never raises.
    """
    raw = body if type(body) is bytes else bytes(body)
    payload, findings, syntax = parse_status(raw, max_bytes=max_bytes, max_depth=max_depth)
    return StatusRead(payload, findings, raw, syntax)


def parse_status(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_depth: int = DEFAULT_MAX_DEPTH) -> _Parsed:
    """:func:`read_status` without the :class:`StatusRead`: ``(payload, findings, syntax)``.

    The same checks in the same order; for callers that read thousands of bodies and keep
    neither the raw bytes nor the wrapper (``chaosdrill validate-status --file 'dir/*.json'``).
    """
    if len(raw) > max_bytes:
        return _fail(f"status body larger than {max_bytes} bytes, the limit ({len(raw):,} bytes read)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _fail(f"status body is not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                     f"({exc.reason})", syntax=True)
    # Cheap pre-check: fewer opening brackets than the limit cannot nest deeper than it.
    if text.count("[") + text.count("{") > max_depth:
        depth = _nesting_depth(text, max_depth)
        if depth > max_depth:
            return _fail(f"status body nests deeper than {max_depth} levels (at least {depth}); refused "
                         "before parsing")

    try:
        # Valid path: one shared, stateless decoder whose hooks raise on the first hostile item.
        obj = _fast_decode(text)
    except _Hostile:
        obj = None  # parsed again below, this time recording every duplicate and non-finite number
    except json.JSONDecodeError as exc:
        return _fail(f"status body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}, "
                     f"position {exc.pos})", syntax=True)
    except (ValueError, RecursionError) as exc:  # e.g. an integer with more digits than Python converts
        return _fail(f"status body is not usable JSON: {str(exc)[:200]}", syntax=True)
    else:
        if type(obj) is dict:
            return obj, [], False
        return None, [_not_object(obj)], False
    return _read_hostile(text)


def _not_object(obj: Any) -> Finding:
    kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null",
            int: "a JSON number", float: "a JSON number", _NonFinite: "a non-finite number"}.get(type(obj), "not JSON")
    return Finding(TAG, "$", f"status is {kind}, not an object")


def _read_hostile(text: str) -> _Parsed:
    """Slow path for a body with duplicate keys or non-finite numbers: name every one with its path."""
    # Each dict that arrived with a repeated key, with its repeated keys and how often each came.
    dup_dicts: list[tuple[dict[str, Any], dict[str, int]]] = []
    nonfinite: list[_NonFinite] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) != len(pairs):
            counts: dict[str, int] = {}
            for k, _ in pairs:
                counts[k] = counts.get(k, 0) + 1
            # The values a plain dict would drop stay reachable, so problems inside them are found too.
            d = _Dups(pairs)
            d.pairs = pairs
            dup_dicts.append((d, {k: n for k, n in counts.items() if n > 1}))
        return d

    def constant(token: str) -> _NonFinite:
        nf = _NonFinite(token)
        nonfinite.append(nf)
        return nf

    def parse_float(token: str) -> Any:
        value = float(token)
        return constant(token) if value - value != 0.0 else value  # inf - inf is NaN

    obj = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=constant, parse_float=parse_float)
    findings: list[Finding] = []
    if dup_dicts or nonfinite:
        located: list[tuple[tuple[Any, ...], Any]] = []
        wanted = {id(d): counts for d, counts in dup_dicts}
        if isinstance(obj, _NonFinite):
            located.append(((), obj))
        else:
            _locate(obj, set(wanted), bool(nonfinite), (), located)
        for path, node in located:
            if isinstance(node, _NonFinite):
                what = (f"non-finite number {node.token}" if node.token in ("NaN", "Infinity", "-Infinity")
                        else f"number {node.token[:40]} is too large for a float")
                findings.append(Finding(TAG, json_path(path), f"{what}: JSON has no NaN or Infinity, a "
                                                              "check on this value would be meaningless"))
            else:
                counts = wanted[id(node)]
                for k in counts:
                    findings.append(Finding(TAG, json_path(path + (k,)),
                                            f"duplicate key {json.dumps(k)} ({counts[k]} times); a reader would "
                                            "silently keep the last value"))
    if not isinstance(obj, dict):
        findings.append(_not_object(obj))
    return None, findings, False


_NONFINITE_MARK = "<non-finite number {}>"


def _sanitize(obj: Any, depth: int = 0) -> Any:
    """A copy of ``obj`` where non-finite floats become marker strings and odd types become str."""
    if depth > 200:
        return "<nested too deeply>"
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else _NONFINITE_MARK.format(repr(obj))
    if isinstance(obj, _NonFinite):
        return _NONFINITE_MARK.format(obj.token)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: _sanitize(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v, depth + 1) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return escape_raw(bytes(obj))
    return repr(obj)


def to_strict_json(obj: Any, **dumps_kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN``/``Infinity`` and never raises on odd values.

    The fast path is plain ``json.dumps(allow_nan=False)``; only if that refuses does the value get
    copied with non-finite floats as ``"<non-finite number nan>"`` and unknown types as ``repr``.
    ``ensure_ascii`` stays on by default, so lone surrogates cannot make the file unwritable.
    """
    dumps_kwargs.setdefault("ensure_ascii", True)
    dumps_kwargs["allow_nan"] = False
    try:
        return json.dumps(obj, **dumps_kwargs)
    except (ValueError, TypeError, RecursionError):
        return json.dumps(_sanitize(obj), **dumps_kwargs)


def escape_raw(body: bytes) -> str:
    """``body`` as printable ASCII, reversible with :func:`unescape_raw`, for ``raw_samples.jsonl``.

    Python bytes-literal escaping: ``\\\\`` for a backslash, ``\\n``/``\\t``/``\\r``, ``\\xNN`` for
    every other byte outside printable ASCII. Readable for text bodies, exact for any bytes.
    Redact *before* escaping: a secret's non-ASCII bytes are unrecognisable once escaped.
    """
    import codecs

    return codecs.escape_encode(bytes(body))[0].decode("ascii")  # type: ignore[attr-defined]


def unescape_raw(text: str) -> bytes:
    """The bytes :func:`escape_raw` escaped."""
    import codecs

    return codecs.escape_decode(text.encode("ascii"))[0]  # type: ignore[attr-defined]


def raw_record(body: bytes, limit: int = 4096) -> dict[str, Any]:
    """An evidence record for a raw body: its length, the first ``limit`` bytes escaped, a base64 copy."""
    import base64

    head = body[:limit]
    return {"length": len(body), "truncated": len(body) > limit, "escaped": escape_raw(head),
            "base64": base64.b64encode(head).decode("ascii")}
