"""statusread: hostile status bodies become [PARSE] findings; strict JSON out; raw bytes kept safely."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.guard import is_live_status
from pytest_chaosdrill.statusread import (
    escape_raw,
    raw_record,
    read_status,
    to_strict_json,
    unescape_raw,
)


def _strict_loads(text: str) -> object:
    def no_constants(token: str) -> object:
        raise AssertionError(f"non-strict JSON constant {token} in output")
    return json.loads(text, parse_constant=no_constants)


def golden_bytes() -> list[bytes]:
    return [p.read_bytes() for p in sorted(resources.fixtures_dir().glob("*.json"))]


def test_every_golden_fixture_reads_clean_and_equals_json_loads() -> None:
    for body in golden_bytes():
        r = read_status(body)
        assert r.ok and r.findings == [] and r.payload == json.loads(body) and r.raw == body


@pytest.mark.parametrize("body,path,needle", [
    (b'{"trading_mode": "Kill", "risk_state": "x", "trading_mode": "Active"}', "$.trading_mode",
     'duplicate key "trading_mode" (2 times)'),
    (b'{"owner_view": {"unblock": [{"type": "AUTO", "type": "MANUAL"}]}}', "$.owner_view.unblock[0].type",
     'duplicate key "type"'),
    (b'{"a b": {"x": 1, "x": 1}}', '$["a b"].x', 'duplicate key "x"'),
])
def test_duplicate_keys_at_any_depth_are_named_with_their_path(body: bytes, path: str, needle: str) -> None:
    r = read_status(body)
    assert r.payload is None and not r.ok
    assert [(f.tag, f.path) for f in r.findings] == [("PARSE", path)]
    assert needle in r.findings[0].message and "last value" in r.findings[0].message


def test_every_duplicate_is_reported_not_only_the_first() -> None:
    r = read_status(b'{"a": 1, "a": 2, "b": {"c": 1, "c": 2}, "b": 3}')
    assert sorted(f.path for f in r.findings) == ["$.a", "$.b", "$.b.c"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused(token: str) -> None:
    r = read_status(f'{{"disk_used_pct": {token}, "ok": [1, {token}]}}'.encode())
    assert r.payload is None
    assert [f.path for f in r.findings] == ["$.disk_used_pct", "$.ok[1]"]
    assert all(f.tag == "PARSE" and f"non-finite number {token}" in f.message for f in r.findings)


def test_a_number_too_large_for_a_float_is_refused() -> None:
    r = read_status(b'{"mm_util": 1e999}')
    assert r.payload is None and r.findings[0].path == "$.mm_util" and "too large" in r.findings[0].message


@pytest.mark.parametrize("body,what", [(b"[1, 2]", "a JSON array"), (b'"Active"', "a JSON string"),
                                       (b"null", "JSON null"), (b"42", "a JSON number"), (b"true", "a JSON boolean")])
def test_non_object_top_level(body: bytes, what: str) -> None:
    r = read_status(body)
    assert r.payload is None and [str(f) for f in r.findings] == [f"[PARSE] $: status is {what}, not an object"]
    assert not r.syntax


def test_body_over_max_bytes_is_refused_before_decoding() -> None:
    r = read_status(b'{"x": "' + b"a" * 2000 + b'"}', max_bytes=1000)
    assert r.payload is None and "larger than 1000 bytes" in r.reason


def test_a_20_mb_body_is_refused_by_default() -> None:
    r = read_status(b" " * 20_000_000 + b"{}")
    assert r.payload is None and "larger than 1000000 bytes" in r.reason


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                                  b"[" * 100_000])
def test_deep_nesting_is_refused_without_recursion_error(body: bytes) -> None:
    r = read_status(body)
    assert r.payload is None and "nests deeper than 64 levels" in r.reason


def test_depth_limit_is_exact_and_brackets_inside_strings_do_not_count() -> None:
    at_limit = b'{"a":' + b"[" * 63 + b"]" * 63 + b"}"
    assert read_status(at_limit).ok
    over = b'{"a":' + b"[" * 64 + b"]" * 64 + b"}"
    assert "nests deeper than 64" in read_status(over).reason
    text = b'{"a": "' + b"[{" * 500 + b'\\"[[", "b": [[1]]}'
    assert read_status(text).ok


def test_depth_scan_stays_linear_on_an_unterminated_hostile_string() -> None:
    body = b"[" * 100 + b'"' + b'\\"' * 400_000  # many escaped quotes, never closed
    t0 = time.perf_counter()
    r = read_status(body)
    assert r.payload is None and time.perf_counter() - t0 < 2.0


def test_invalid_utf8_names_the_byte_and_offset() -> None:
    r = read_status(b'{"a": "\xff"}')
    assert r.payload is None and r.syntax
    assert "not valid UTF-8: byte 0xff at offset 7" in r.reason


def test_invalid_json_gives_the_position() -> None:
    r = read_status(b'{"trading_mode": }')
    assert r.payload is None and r.syntax
    assert "not valid JSON" in r.reason and "line 1, column 18, position 17" in r.reason


def test_huge_integer_is_a_parse_finding_not_an_exception() -> None:
    r = read_status(b'{"a": ' + b"9" * 5000 + b"}")
    assert r.payload is None and r.findings[0].tag == "PARSE"


def test_read_status_keeps_raw_bytes_of_a_rejected_body() -> None:
    body = b'{"x": NaN}'
    assert read_status(body).raw == body


def test_is_live_status() -> None:
    assert is_live_status({"deployment_environment": " live "}) is not None
    for env in ("PROD", "production", "Live"):
        assert env in (is_live_status({"deployment_environment": env}) or "")
    for payload in ({"deployment_environment": "DEMO"}, {}, None, [], {"deployment_environment": 1}):
        assert is_live_status(payload) is None


def test_to_strict_json_never_writes_nan_or_infinity() -> None:
    obj = {"a": float("nan"), "b": [float("inf"), -float("inf")], "c": b"\xff", "d": {1, 2}, "e": 1.5}
    text = to_strict_json(obj, sort_keys=True)
    back = _strict_loads(text)
    assert back["e"] == 1.5 and "non-finite" in back["a"] and all("non-finite" in v for v in back["b"])
    assert to_strict_json({"x": 1}) == '{"x": 1}'


def test_to_strict_json_survives_lone_surrogates_and_deep_values() -> None:
    text = to_strict_json({"s": "\ud800"})
    text.encode("utf-8")  # writable to a UTF-8 file
    deep: list[object] = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    _strict_loads(to_strict_json(deep))


@pytest.mark.parametrize("body", [b"", b'{"a": 1}', b"\x00\xff\\x41\\\n\r\t'\"", bytes(range(256))])
def test_escape_raw_is_printable_ascii_and_reversible(body: bytes) -> None:
    text = escape_raw(body)
    assert text.isascii() and all(ch.isprintable() for ch in text)
    assert unescape_raw(text) == body
    rec = raw_record(body, limit=10)
    assert rec["length"] == len(body) and rec["truncated"] == (len(body) > 10)
    _strict_loads(json.dumps(rec))


def test_valid_path_is_fast() -> None:
    """The sampler parses every 5 ms: a golden payload must read in well under a millisecond."""
    body = json.dumps(json.loads(golden_bytes()[1])).encode()
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        read_status(body)
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    assert per_call_us < 500, f"{per_call_us:.0f} us per valid payload"


@pytest.mark.parametrize("text", ["", " ", "{}", ' {"a": 1} ', '{"a": 1} x', "[1,", '{"a" 1}', "\n\n  nul", "1 2",
                                  '"abc', "{}\n", "tru", "[]  ]", '{"a": 1e999}', '{"a": NaN}'])
def test_fast_decode_equals_the_decoders_decode(text: str) -> None:
    from pytest_chaosdrill.statusread import _FAST, _fast_decode

    def outcome(decode: Any) -> Any:
        try:
            return ("ok", decode(text))
        except json.JSONDecodeError as exc:
            return ("error", exc.msg, exc.pos, exc.lineno, exc.colno)
        except Exception as exc:  # the hooks' _Hostile
            return ("raised", type(exc))

    assert outcome(_fast_decode) == outcome(_FAST.decode)
