"""Redactor: every planted secret, in every form, is gone from every byte; prose and hook tokens stay."""
from __future__ import annotations

import base64
import html
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from pytest_chaosdrill.redaction import MARKER, Redactor, name_looks_secret, url_credentials

# Each secret carries a unique alphanumeric core: if any byte of the core survives anywhere,
# some form of the secret leaked (independently of which forms the redactor knows).
SECRETS = {
    "OKX_API_KEY": "apiCORE1a7f3e9b2",
    "OKX_SECRET_KEY": 'sec"CORE2\\q/x',           # quote, backslash, slash
    "OKX_PASSPHRASE": "päss€CORE3 &<ok>",           # non-ASCII, blank, XML specials
    "OKX_SIGNATURE": "sïgCORE6é'",                  # Latin-1-encodable non-ASCII, single quote
}
DB_PASSWORD = "dbCORE4:p@ss"                        # inside a URL under an innocuous name
EXTRA = "xtraCORE5+/=?"                             # from the target file's secrets: list
CORES = [b"CORE1a7f3e9b2", b"CORE2", b"CORE3", b"CORE4", b"CORE5", b"CORE6"]
ENV = {**SECRETS, "DB_URL": f"postgres://trader:{quote(DB_PASSWORD, safe='')}@db.local:5432/orders",
       "AUTH_MODE": "none", "KEYBOARD_LAYOUT": "us", "HOME": "/root", "DRILL_NAME": "crash"}
HOOK_LINE = b'{"hook": "on_fault", "token": "KILL_X", "note": "reason token: fail closed"}\n'


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.collect(ENV, extra=[EXTRA])


def all_values() -> list[str]:
    return [*SECRETS.values(), DB_PASSWORD, EXTRA]


def planted_forms(v: str) -> list[str]:
    """The forms an outsider planted: raw, JSON (both ensure_ascii), URL-encoded, XML, repr."""
    return [v, json.dumps(v)[1:-1], json.dumps(v, ensure_ascii=False)[1:-1], quote(v, safe=""), quote(v),
            quote_plus(v), html.escape(v), repr(v)[1:-1], json.dumps(json.dumps(v))[1:-1]]


def assert_clean(data: bytes) -> None:
    for core in CORES:
        assert core not in data, f"secret core {core!r} survived"


def test_names_and_url_credentials() -> None:
    assert all(name_looks_secret(n) for n in SECRETS)
    assert not any(name_looks_secret(n) for n in ("DB_URL", "KEYBOARD_LAYOUT", "HOME", "MONKEY", "DRILL_NAME"))
    assert "pw0rd" in url_credentials("see https://u:pw0rd@h/x and more")
    assert url_credentials("https://h/x?token=1") == []


def test_every_form_in_text_is_redacted(redactor: Redactor) -> None:
    for v in all_values():
        for form in planted_forms(v):
            assert any(core in form.encode() for core in CORES)  # the plant really carries the secret
            out = redactor.text(f"before {form} after")
            assert out.startswith("before ") and out.endswith(" after") and MARKER in out, form
            assert_clean(out.encode("utf-8"))


def test_url_password_and_userinfo_redacted(redactor: Redactor) -> None:
    out = redactor.text(f"connecting to {ENV['DB_URL']} as trader:{DB_PASSWORD}")
    assert_clean(out.encode())
    assert "db.local:5432/orders" in out


def test_base64_of_a_whole_value_is_redacted(redactor: Redactor) -> None:
    basic = base64.b64encode(f"trader:{DB_PASSWORD}".encode()).decode()
    key = base64.b64encode(SECRETS["OKX_API_KEY"].encode()).decode()
    out = redactor.text(f"Authorization: Basic {basic}\nkey={key}")
    assert basic not in out and key not in out and out.count(MARKER) == 2


def test_non_utf8_file_is_redacted_at_byte_level(redactor: Redactor, tmp_path: Path) -> None:
    src, dst = tmp_path / "target.log", tmp_path / "evidence.log"
    lines = [b"\xff\xfe garbage \x80 " + v.encode("utf-8") + b" \xc3\n" for v in all_values()]
    lines += [b"latin1 " + SECRETS["OKX_SIGNATURE"].encode("latin-1") + b"\n"]
    lines += [b"quoted " + quote_plus(v).encode() + b"\n" for v in all_values()]
    src.write_bytes(b"".join(lines) + HOOK_LINE)
    with pytest.raises(UnicodeDecodeError):
        src.read_bytes().decode("utf-8")
    assert redactor.file(src, dst) is True
    data = dst.read_bytes()
    assert_clean(data)
    assert b"\xff\xfe garbage \x80 " in data and data.endswith(HOOK_LINE)


def test_json_evidence_ensure_ascii_both_ways(redactor: Redactor, tmp_path: Path) -> None:
    doc = {f"k{i}": {"msg": f"echo {v}", "nested": [v]} for i, v in enumerate(all_values())}
    for ensure_ascii in (True, False):
        path = tmp_path / f"o{ensure_ascii}.json"
        path.write_text(json.dumps(doc, ensure_ascii=ensure_ascii), encoding="utf-8")
        redactor.file(path, path)
        assert_clean(path.read_bytes())
        json.loads(path.read_text(encoding="utf-8"))  # still valid JSON: the marker needs no escaping


def test_json_obj_deep_and_value_based_only(redactor: Redactor) -> None:
    obj = {"token": "KILL_X", "reason": "reason token: fail closed", "enum": SECRETS["OKX_API_KEY"],
           SECRETS["OKX_SECRET_KEY"]: [1, {"x": f"a {EXTRA} b"}], "mode": "none"}
    out = redactor.json_obj(obj)
    assert out["token"] == "KILL_X" and out["reason"] == "reason token: fail closed" and out["mode"] == "none"
    assert out["enum"] == MARKER and MARKER in out and out[MARKER][1]["x"] == f"a {MARKER} b"
    assert_clean(json.dumps(out).encode())


def test_junit_xml_and_pytest_output_forms(redactor: Redactor) -> None:
    """A secret echoed into an enum field shows up in a failure message, then XML-escaped in JUnit."""
    v = SECRETS["OKX_PASSPHRASE"]
    message = f"[ENUM] $.trading_mode: unknown trading mode {v!r}"
    xml = f'<failure message="{html.escape(message)}">{html.escape(message, quote=False)}</failure>'
    assert b"CORE3" in xml.encode()  # the planted form really carries the secret
    assert_clean(redactor.text(message).encode())
    assert_clean(redactor.text(xml).encode())


def test_tar_gz_member_after_redaction(redactor: Redactor, tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "target.log").write_bytes(b"\xff" + "\n".join(all_values()).encode() + b"\n" + HOOK_LINE)
    (root / "observed_status.json").write_text(json.dumps({"owner_message": all_values()}))
    (root / "hooks.jsonl").write_bytes(HOOK_LINE)
    changed = redactor.tree(root)
    assert {p.name for p in changed} == {"target.log", "observed_status.json"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname="evidence")
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        members = [tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()]  # type: ignore[union-attr]
    assert len(members) == 3
    for data in members:
        assert_clean(data)
    assert HOOK_LINE in b"".join(members)


def test_prose_hook_tokens_and_trivial_values_survive(redactor: Redactor) -> None:
    text = HOOK_LINE.decode() + "AUTH_MODE=none layout us\n"
    assert redactor.text(text) == text
    assert redactor.bytes(HOOK_LINE) == HOOK_LINE


def test_min_length_and_empty_redactor() -> None:
    r = Redactor(["abc", "", "true", "abcd"])
    assert len(r) == 1 and r.text("abc abcd") == f"abc {MARKER}"
    empty = Redactor.collect({"HOME": "/root"})
    assert not empty and empty.text("x") == "x" and empty.bytes(b"\xff") == b"\xff"


def test_repr_never_shows_values(redactor: Redactor) -> None:
    assert_clean(repr(redactor).encode())
    assert "secret value" in repr(redactor)


def test_longest_form_wins_when_one_secret_contains_another() -> None:
    r = Redactor(["abcd", "xxabcdyy"])
    assert r.text("xxabcdyy abcd") == f"{MARKER} {MARKER}"


def test_redactor_removes_secret_values_not_key_names() -> None:
    r = Redactor(["s3cr3t-value", "abc123"])
    out = r.text('token s3cr3t-value; {"apiKey": "abc123", "token": "KILL_X"} OK-ACCESS-KEY: kkk')
    assert "s3cr3t-value" not in out and "abc123" not in out
    assert '"token": "KILL_X"' in out and "kkk" in out   # names alone never redact: only known values do


def test_redactor_leaves_words_that_merely_contain_a_secret_name() -> None:
    assert Redactor().text("manifest with fake token KILL_DRIFT_TOKEN: 1 finding") == \
        "manifest with fake token KILL_DRIFT_TOKEN: 1 finding"


def test_private_ws_url_is_an_address_and_target_uses_the_same_words() -> None:
    from pytest_chaosdrill.target import RenderedTarget, TargetConfig

    assert not name_looks_secret("EXCHANGE_WS_PRIVATE") and not name_looks_secret("OKX_WS_PRIVATE_URL")
    assert name_looks_secret("SSH_PRIVATE_KEY") and name_looks_secret("privateKey") and name_looks_secret("API_CREDS")
    env = {"EXCHANGE_WS_PRIVATE": "ws://127.0.0.1:1/ws/v5/private", "API_CREDS": "s3cr3t", "okxPassphrase": "p4ss"}
    cfg = TargetConfig(name="t", command=["x"], env=env, status_url="http://127.0.0.1:1/", health_url="")
    rendered = RenderedTarget(config=cfg, command=["x"], env=env, status_url=cfg.status_url, health_url="", files={},
                              hooks={}, hooks_log=None)
    assert sorted(rendered.secrets()) == ["p4ss", "s3cr3t"]
