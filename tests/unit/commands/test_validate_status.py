"""The fast paths behind ``chaosdrill validate-status`` answer exactly what the slow paths answer.

Each fast path (argument parsing without argparse, the file reader, ``parse_status`` without its
wrapper, the cached code objects of the compiled schema, the bundled-spec lookup without
pathlib, the hand-written ``Finding``) is compared with the path it short-cuts, on hostile
inputs too: a fast path that accepted what the slow path rejects would be a hole in the check.
"""
from __future__ import annotations

import copy
import json
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.cli import build_parser, main
from pytest_chaosdrill.commands import validate_status as vs
from pytest_chaosdrill.contract import Contract, Finding
from pytest_chaosdrill.contract import _engine
from pytest_chaosdrill.statusread import parse_status, read_status

FIXTURES = resources.fixtures_dir()


def golden_payloads() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]


# --- argument parsing -----------------------------------------------------------------------
ANSWERED = [
    [],
    ["--file", "a.json"],
    ["--file", "a.json", "b.json", "--file", "c.json"],
    ["--file", "", "--quiet"],
    ["--file", "venue", "proxy"],  # command names are plain values after validate-status
    ["--url", "http://127.0.0.1:1/api/v1/status", "--timeout", "2.5", "--allow-remote"],
    ["--timeline", "t.jsonl", "--strict", "--format", "json", "--schema", "s.json", "--manifest", "m.json"],
    ["--schema", "one.json", "--schema", "two.json", "--file", "x"],  # the last value wins
    ["--timeout", "1e1", "--timeout", " 3 ", "--file", "x"],
    ["--format", "text", "--quiet", "--quiet", "--file", "x"],
]
DECLINED = [
    ["-h"], ["--help"], ["--file"], ["--file", "--quiet"], ["--file=a.json"], ["--fil", "a.json"],
    ["--file", "a.json", "--", "b.json"], ["--file", "-"], ["--file", "-a b.json"], ["stray"],
    ["--schema"], ["--schema", "--quiet"], ["--timeout", "soon", "--file", "x"], ["--timeout", "-5"],
    ["--format", "yaml", "--file", "x"], ["--quiet", "extra"], ["--version"],
]


@pytest.mark.parametrize("argv", ANSWERED, ids=lambda a: " ".join(a) or "<none>")
def test_parse_fast_equals_argparse_where_it_answers(argv: list[str]) -> None:
    fast = vs.parse_fast(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser("validate-status").parse_args(["validate-status", *argv]))


@pytest.mark.parametrize("argv", DECLINED, ids=" ".join)
def test_parse_fast_leaves_everything_else_to_argparse(argv: list[str]) -> None:
    assert vs.parse_fast(argv) is None


def test_declined_arguments_still_get_argparse_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate-status", "--format", "yaml", "--file", "x"])
    assert exc.value.code == 2 and "invalid choice: 'yaml'" in capsys.readouterr().err


def test_validate_status_start_up_imports_no_argparse_dataclasses_pathlib_or_typing() -> None:
    code = (
        "import sys\n"
        "from pytest_chaosdrill.cli import main\n"
        f"rc = main(['validate-status', '--quiet', '--file', {str(FIXTURES / 'wal_backpressure.json')!r}])\n"
        "print(rc, sorted(m for m in ('argparse', 'dataclasses', 'pathlib', 'typing', 'threading', 'jsonschema')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


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


# --- the cached code objects of the compiled schema -----------------------------------------
def corpus() -> list[Any]:
    rng = random.Random(11)
    out: list[Any] = []
    for p in golden_payloads():
        out.append(p)
        for key in list(p)[:25]:
            q = copy.deepcopy(p)
            q[key] = rng.choice([None, "x", -1, 1.5, [], {}, True, 10**20])
            out.append(q)
            r = copy.deepcopy(p)
            del r[key]
            out.append(r)
    return out


def _fresh_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Contract:
    monkeypatch.setattr(_engine, "_CACHE", {})
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "pyc"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return Contract.load()


def test_code_cache_is_written_then_reused_with_identical_verdicts(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    uncached = Contract(json.loads(resources.default_schema().read_text()),
                        json.loads(resources.default_manifest().read_text()))
    first = _fresh_load(monkeypatch, tmp_path)
    files = list((tmp_path / "pyc").rglob("schema-*.marshal"))
    assert len(files) == 1 and first._code_used
    compiled: list[str] = []
    real_compile = compile
    monkeypatch.setattr("builtins.compile", lambda src, *a, **k: compiled.append(src) or real_compile(src, *a, **k))
    second = _fresh_load(monkeypatch, tmp_path)
    assert compiled == [], "every generated source should have come from the cache"
    for payload in corpus():
        want = uncached.check(payload)
        assert first.check(payload) == want and second.check(payload) == want
        assert second.check(payload, strict=True) == uncached.check(payload, strict=True)


def test_damaged_or_foreign_code_cache_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import marshal

    _fresh_load(monkeypatch, tmp_path)
    (cache_file,) = (tmp_path / "pyc").rglob("schema-*.marshal")
    uncached = Contract(json.loads(resources.default_schema().read_text()),
                        json.loads(resources.default_manifest().read_text()))
    always_true = compile("def generated(x):\n    return True\n", "<x>", "exec")
    table = marshal.loads(cache_file.read_bytes())
    # A foreign entry (another source) must never stand in for a source it is not.
    poisoned = {src + "\n# other": always_true for src in table} | {"def generated(x): pass": always_true}
    for content in (b"", b"garbage", marshal.dumps([1, 2]), marshal.dumps({"a": 1}), marshal.dumps(poisoned)):
        cache_file.write_bytes(content)
        contract = _fresh_load(monkeypatch, tmp_path)
        for payload in corpus():
            assert contract.check(payload) == uncached.check(payload)
        assert set(marshal.loads(cache_file.read_bytes())) == set(table)  # rewritten with what was used


def test_no_code_cache_written_when_bytecode_writing_is_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_engine, "_CACHE", {})
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path / "pyc"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert Contract.load().check(golden_payloads()[0]) == []
    assert not (tmp_path / "pyc").exists()


# --- bundled specs without pathlib, and Finding ---------------------------------------------
def test_bundled_spec_lookup_without_resources_matches_resources() -> None:
    code = (
        "import sys\n"
        "from pytest_chaosdrill.contract import _engine\n"
        "assert 'pytest_chaosdrill.resources' not in sys.modules\n"
        "print(_engine._default_schema()); print(_engine._default_manifest())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(resources.default_schema()), str(resources.default_manifest())]
    loaded = Contract.load()
    assert loaded.schema_source == os.path.realpath(resources.default_schema())


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


@pytest.mark.parametrize("items", [
    [], ["a", "b"], ["a", "a"], [1, True], [0, False], [1, 1.0], [1, True, 1], [None, None], [[1], [1]],
    [[1], [True]], [{"a": 1}, {"a": 1}], [{"a": 1}, {"a": True}], ["1", 1], [1.5, 1.5], [True, False, True],
])
def test_unique_items_set_fast_path_agrees_with_jsonschema(items: list[Any]) -> None:
    from jsonschema import Draft202012Validator

    from pytest_chaosdrill.contract._compiler import compile_node

    check, _ = compile_node({"uniqueItems": True})
    assert check(items) == Draft202012Validator({"uniqueItems": True}).is_valid(items)
