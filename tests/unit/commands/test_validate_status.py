"""The fast paths behind ``chaosdrill validate-status`` answer exactly what the slow paths answer.

Each fast path (the file reader, ``parse_status`` without its wrapper) is compared with the path it
short-cuts, on hostile inputs too: a fast path that accepted what the slow path rejects would be a
hole in the check.
"""
from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.cli import main
from pytest_chaosdrill.commands import validate_status as vs
from pytest_chaosdrill.contract import Contract, Finding
from pytest_chaosdrill.statusread import parse_status, read_status

FIXTURES = resources.fixtures_dir()


def golden_payloads() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


# --- argument parsing -----------------------------------------------------------------------
def test_declined_arguments_still_get_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate-status", "--format", "yaml", "--file", "x"])
    assert exc.value.code == 2 and "invalid choice: 'yaml'" in capsys.readouterr().err


# --- reading and parsing --------------------------------------------------------------------
def hostile_bodies() -> list[bytes]:
    real = json.dumps(golden_payloads()[0]).encode()
    deep_ok = b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}"
    return [
        b'{"trading_mode": "Kill", "trading_mode": "Active"}',
        b'{"trading_mode": "Kill", ' + real[1:],  # a duplicate hiding a Kill in front of a valid payload
        b'{"owner_view": {"unblock": [{"type": "AUTO", "type": "MANUAL"}]}}',  # nested three levels down
        b'{"a": {"b": {"c": {"d": 1, "d": 1}}}}',
        b'{"a": [{"x": 1}, {"x": 2, "x": 2}]}',
        b'{"a" : 1, "a"\n:\t2}',  # whitespace between key and colon
        b'{"mm_util": NaN}', b'{"x": [Infinity]}', b'{"x": {"y": -Infinity}}', b'{"x": 1e999}', b"-1e400",
        b"NaN", b"[1, 2]", b'"text"', b"null", b"true", b"42",
        b"[" * 65 + b"]" * 65, b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}", b"{" * 100_000,
        deep_ok, b'{"s": "' + b"[" * 200 + b'"}',  # brackets inside a string are not nesting
        b'{"a": "\xff"}', b"\xef\xbb\xbf{}", b'{"a": "\xed\xa0\x80"}',  # bad UTF-8, a BOM, a surrogate
        b"", b" ", b"{", b'{"a": 1} x', b'{"a": 1,}', b"{'a': 1}", b'{"a": 01}',
        b'{"a": ' + b"9" * 5000 + b"}",  # more digits than int() converts
        b" " * 1_000_001, b'{"pad": "' + b"x" * 1_000_000 + b'"}',  # over the size limit
        b'{"k": 1, "K": 2, "k\\u0000": 3}', b'{"\\u006b": 1, "k": 2}',  # an escaped duplicate
        real,
    ]


# The only bodies of hostile_bodies() that are fine: 63 nested arrays in an object (64 levels,
# the limit), brackets inside a string, keys that only look alike, and a golden payload.
ACCEPTED = {b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}", b'{"s": "' + b"[" * 200 + b'"}',
            b'{"k": 1, "K": 2, "k\\u0000": 3}', json.dumps(golden_payloads()[0]).encode()}


@pytest.mark.parametrize("body", hostile_bodies(), ids=lambda b: repr(b[:40]))
def test_parse_status_refuses_every_hostile_body_as_read_status_does(body: bytes) -> None:
    slow = read_status(body)
    payload, findings, syntax = parse_status(body)
    assert (payload, findings, syntax) == (slow.payload, slow.findings, slow.syntax)
    if body in ACCEPTED:
        assert payload == json.loads(body) and findings == [] and not syntax
    else:
        assert payload is None and findings, "a hostile body must be refused"


def test_parse_status_refuses_every_duplicate_at_any_depth() -> None:
    rng = random.Random(7)
    for _ in range(200):
        depth = rng.randint(1, 31)  # at most 63 levels: under the depth limit
        inner: Any = {"k": 1}
        for _ in range(depth):
            inner = {"n": [inner]} if rng.random() < 0.5 else {"n": inner}
        text = json.dumps(inner)
        dup = text.replace('{"k": 1}', '{"k": 1, "k": 2}')
        payload, findings, _ = parse_status(dup.encode())
        assert payload is None and any('duplicate key "k"' in f.message for f in findings), dup
        assert parse_status(text.encode())[0] == inner


@pytest.mark.parametrize("size", [0, 10, 65_535, 65_536, 65_537, 300_000, 1_000_000, 1_000_001, 3_000_000])
def test_file_reader_returns_exactly_the_first_limit_bytes(tmp_path: Path, size: int) -> None:
    path = tmp_path / "body.json"
    data = bytes(random.Random(size).getrandbits(8) for _ in range(min(size, 4096))) * (size // 4096 + 1)
    path.write_bytes(data[:size])
    limit = 1_000_001
    assert vs._read_bytes(str(path), limit) == data[:size][:limit]


def test_cli_over_a_directory_matches_the_engine_file_by_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    contract = Contract.load()
    bodies = hostile_bodies()[:20] + [json.dumps(p).encode() for p in golden_payloads()]
    broken = copy.deepcopy(golden_payloads()[0])
    broken["trading_mode"] = "Paused"
    bodies.append(json.dumps(broken).encode())
    for i, body in enumerate(bodies):
        (tmp_path / f"s{i:03d}.json").write_bytes(body)
    code = main(["validate-status", "--format", "json", "--file", str(tmp_path / "*.json")])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and len(doc["results"]) == len(bodies)
    for i, body in enumerate(bodies):
        read = read_status(body)
        expected = contract.check(read.payload) if read.payload is not None else read.findings
        result = doc["results"][i]
        assert result["source"] == str(tmp_path / f"s{i:03d}.json")
        assert result["findings"] == [f.as_dict() for f in expected]


# --- Finding -------------------------------------------------------------------------------
def test_finding_is_an_immutable_value() -> None:
    f = Finding("TIER", "$.mode_reasons[0]", "x")
    assert f == Finding("TIER", "$.mode_reasons[0]", "x") and f != Finding("TIER", "$.mode_reasons[0]", "y")
    assert f != ("TIER", "$.mode_reasons[0]", "x")
    assert len({f, Finding("TIER", "$.mode_reasons[0]", "x")}) == 1
    assert repr(f) == "Finding(tag='TIER', path='$.mode_reasons[0]', message='x')"
    assert pickle.loads(pickle.dumps(f)) == f and copy.deepcopy(f) == f
    with pytest.raises(AttributeError):
        f.tag = "SCHEMA"  # type: ignore[misc]
    match f:
        case Finding(tag, path, message):
            assert (tag, path, message) == ("TIER", "$.mode_reasons[0]", "x")
