"""``chaosdrill validate-status``: exit codes, messages, inputs (file, glob, URL, timeline), formats."""
from __future__ import annotations

import copy
import http.server
import importlib.util
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chaosdrill import resources
from pytest_chaosdrill.cli import main

FIXTURES = resources.fixtures_dir()
EXACT = str(resources.default_schema(exact=True))
_SCRIPT = Path(sys.executable).parent / "chaosdrill"
# The console script when installed next to this interpreter, else the module entry point.
CHAOSDRILL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pytest_chaosdrill.cli"]


def golden(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate-status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload))
    return path


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("chaosdrill validate-status: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


# --- valid inputs ---------------------------------------------------------------------------
def test_all_fixtures_pass_strict_with_exact_schema_via_subprocess() -> None:
    proc = subprocess.run(
        [*CHAOSDRILL, "validate-status", "--file", str(FIXTURES / "*.json"), "--schema", EXACT, "--strict"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("OK   ") == len(list(FIXTURES.glob("*.json")))
    assert proc.stdout.strip().endswith("valid, 0 invalid")


def test_module_entry_point_runs() -> None:
    good = str(FIXTURES / "wal_backpressure.json")
    proc = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "validate-status", "--file", good],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""


def test_valid_file_exit_0_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(FIXTURES / "restart_reconcile.json")
    code, out, err = run_cli(capsys, "--file", path)
    assert (code, err) == (0, "") and f"OK   {path}" in out
    code, out, _ = run_cli(capsys, "--file", path, "--quiet")
    assert code == 0 and out.splitlines() == ["summary: 1 checked, 1 valid, 0 invalid"]


# --- invalid payloads -----------------------------------------------------------------------
def test_invalid_file_exit_1_findings_grouped_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = golden("session_termination")
    bad["mode_reasons"] = list(reversed(bad["mode_reasons"]))
    del bad["build_id"]
    bad_path = write(tmp_path / "bad.json", bad)
    good_path = FIXTURES / "ws_book_gap.json"
    code, out, err = run_cli(capsys, "--file", str(bad_path), "--file", str(good_path), "--quiet")
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"FAIL {bad_path}: ") and "CSP-MIN: 1" in lines[0] and "ORDER: 2" in lines[0]
    assert "  [CSP-MIN] $.build_id: mandatory key is missing" in lines
    assert any(line.startswith("  [ORDER] $.mode_reasons[1]: ") for line in lines)
    assert str(good_path) not in out  # --quiet hides passing inputs
    assert lines[-1] == "summary: 2 checked, 1 valid, 1 invalid"


def test_strict_flags_extension_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = golden("active_healthy")
    payload["vendor_debug"] = True
    path = write(tmp_path / "ext.json", payload)
    assert run_cli(capsys, "--file", str(path))[0] == 0
    code, out, _ = run_cli(capsys, "--file", str(path), "--strict")
    assert code == 1 and "  [STRICT] $.vendor_debug: key is not defined by the schema" in out


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = golden("active_healthy")
    bad["trading_mode"] = "Paused"
    path = write(tmp_path / "bad.json", bad)
    code, out, _ = run_cli(capsys, "--file", str(path), "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["valid"] is False and doc["contract_version"] == "5.2"
    assert doc["summary"] == {"checked": 1, "valid": 0, "invalid": 1}
    assert {"tag": "ENUM", "path": "$.trading_mode"} in [
        {k: f[k] for k in ("tag", "path")} for f in doc["results"][0]["findings"]]


# --- set-up errors: exit 2, one clear line on stderr ------------------------------------------
def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--file", str(tmp_path / "absent.json"))
    assert code == 2
    assert_one_error_line(err, "absent.json", "file not found")


def test_glob_matching_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--file", str(tmp_path / "*.json"))
    assert code == 2
    assert_one_error_line(err, "glob matched no file")


def test_glob_expands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("ws_book_gap", "ws_trades_gap"):
        write(tmp_path / f"{name}.json", golden(name))
    code, out, _ = run_cli(capsys, "--file", str(tmp_path / "ws_*.json"))
    assert code == 0 and "2 checked, 2 valid" in out


def test_several_paths_after_one_file_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # What an unquoted glob looks like after the shell expanded it.
    code, out, _ = run_cli(capsys, "--file", str(FIXTURES / "ws_book_gap.json"), str(FIXTURES / "ws_trades_gap.json"))
    assert code == 0 and "2 checked, 2 valid" in out


def test_invalid_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"trading_mode": ')
    code, _, err = run_cli(capsys, "--file", str(path))
    assert code == 2
    assert_one_error_line(err, "broken.json", "invalid JSON")


def test_directory_instead_of_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--file", str(tmp_path))
    assert code == 2
    assert_one_error_line(err, "is a directory")


def test_no_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys)
    assert code == 2
    assert_one_error_line(err, "nothing to check")


@pytest.mark.parametrize("which,content,needle", [
    ("--schema", None, "schema file not found"),
    ("--schema", "{oops", "schema file"),
    ("--schema", json.dumps({"type": "objekt"}), "not a valid JSON Schema"),
    ("--manifest", None, "manifest file not found"),
    ("--manifest", "[]", "must be a JSON object"),
    ("--manifest", json.dumps({"contract_version": "5.2"}), "'registries' must be an object"),
])
def test_bad_schema_or_manifest(which: str, content: str | None, needle: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "contract.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run_cli(capsys, which, str(path), "--file", str(FIXTURES / "active_healthy.json"))
    assert code == 2
    assert_one_error_line(err, needle)


def test_bad_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--url", "http://127.0.0.1:1/", "--timeout", "0")
    assert code == 2
    assert_one_error_line(err, "--timeout")


# --- URLs -----------------------------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        status, body = self.routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    bad = golden("market_data_stale")
    bad["open_permission_requires_reconcile"] = False
    _Handler.routes = {
        "/ok": (200, json.dumps(golden("market_data_stale")).encode()),
        "/bad": (200, json.dumps(bad).encode()),
        "/html": (200, b"<html>"),
        "/boom": (503, b"{}"),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_valid_and_invalid(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--url", f"{server}/ok")[0] == 0
    code, out, _ = run_cli(capsys, "--url", f"{server}/bad", "--timeout", "3")
    assert code == 1 and f"FAIL {server}/bad" in out and "[LATCH] $.open_permission_requires_reconcile" in out


@pytest.mark.parametrize("route,needle", [("/html", "not valid JSON"), ("/boom", "HTTP 503")])
def test_url_bad_responses(server: str, route: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--url", server + route)
    assert code == 2
    assert_one_error_line(err, needle)


def test_unreachable_url(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run_cli(capsys, "--url", f"http://127.0.0.1:{port}/api/v1/status", "--timeout", "2")
    assert code == 2
    assert_one_error_line(err, "unreachable")


# --- timelines ------------------------------------------------------------------------------
def _timeline(tmp_path: Path, rows: list[Any]) -> Path:
    path = tmp_path / "timeline.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_timeline_of_records_reports_first_failure_and_total(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    ok = golden("ws_trades_gap")
    bad = copy.deepcopy(ok)
    bad["trading_mode"] = "Active"
    rows = [{"i": 0, "mono": 1.0, "utc": "2026-11-23T16:00:00Z", "status": ok},
            {"i": 1, "mono": 1.1, "utc": "2026-11-23T16:00:00.1Z", "status": ok},
            {"i": 2, "mono": 1.2, "utc": "2026-11-23T16:00:00.2Z", "status": bad},
            {"i": 3, "mono": 1.3, "status": None, "error": "ConnectionResetError"},
            {"i": 4, "mono": 1.4, "status": ok}]
    path = _timeline(tmp_path, rows)
    code, out, _ = run_cli(capsys, "--timeline", str(path))
    assert code == 1
    assert f"FAIL {path}: 2 of 5 samples invalid; first at line 3 (sample 2)" in out
    assert "[DECISION-A] $.trading_mode" in out
    code, out, _ = run_cli(capsys, "--timeline", str(path), "--format", "json")
    result = json.loads(out)["results"][0]
    assert result["samples"] == 5 and result["failing_samples"] == 2
    assert result["first_failure"]["line"] == 3 and result["first_failure"]["index"] == 2


def test_timeline_error_record_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _timeline(tmp_path, [golden("active_healthy"), {"i": 7, "status": None, "error": "timeout after 1s"}])
    code, out, _ = run_cli(capsys, "--timeline", str(path))
    assert code == 1
    assert "first at line 2 (sample 7)" in out and "[SAMPLE] $: status fetch failed: timeout after 1s" in out


def test_timeline_of_bare_payloads_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bare.jsonl"
    path.write_text(json.dumps(golden("active_healthy")) + "\n\n" + json.dumps(golden("market_data_stale")) + "\n")
    code, out, _ = run_cli(capsys, "--timeline", str(path))
    assert code == 0 and "(2 samples)" in out


@pytest.mark.parametrize("content,needle", [("", "no samples"), ('{"status": \n', ":1: invalid JSON")])
def test_timeline_setup_errors(content: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    code, _, err = run_cli(capsys, "--timeline", str(path))
    assert code == 2
    assert_one_error_line(err, needle)


# --- registry drift (checklist drill 8, trigger A) --------------------------------------------
def test_fake_token_in_manifest_makes_cli_exit_1_naming_it(tmp_path: Path) -> None:
    manifest = json.loads(resources.default_manifest().read_text())
    manifest["registries"]["ModeReasonCode"]["ReduceOnly"].insert(2, {
        "code": "REDUCEONLY_TOTALLY_FAKE_TOKEN", "display": "injected by the drift test", "latched": False,
        "unblock": {"type": "AUTO", "condition": "never"}})
    path = write(tmp_path / "manifest.json", manifest)
    proc = subprocess.run([*CHAOSDRILL, "validate-status", "--manifest", str(path),
                           "--file", str(FIXTURES / "wal_backpressure.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FAIL contract files: ")
    assert "[CONTRACT] schema:" in proc.stdout and "REDUCEONLY_TOTALLY_FAKE_TOKEN" in proc.stdout


# --- cold start -----------------------------------------------------------------------------
def test_cold_start_imports_neither_requests_pytest_nor_aiohttp_for_a_valid_file() -> None:
    # With jsonschema-rs installed (the test extra has it) a valid file needs no explanation, so
    # jsonschema itself is not imported either.
    heavy = ("requests", "pytest", "aiohttp") + (("jsonschema",) if importlib.util.find_spec("jsonschema_rs") else ())
    code = (
        "import sys\n"
        "from pytest_chaosdrill.cli import main\n"
        f"rc = main(['validate-status', '--quiet', '--file', {str(FIXTURES / 'wal_backpressure.json')!r}])\n"
        f"heavy = sorted(m for m in {heavy!r} if m in sys.modules)\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr


# --- hostile payloads and URLs (strict reading) ----------------------------------------------
@pytest.mark.parametrize("body,needle", [
    (b'{"trading_mode": "Kill", "trading_mode": "Active"}', '[PARSE] $.trading_mode: duplicate key "trading_mode"'),
    (b'{"mm_util": NaN}', "[PARSE] $.mm_util: non-finite number NaN"),
    (b"[1, 2]", "[PARSE] $: status is a JSON array, not an object"),
    (b"[" * 100_000 + b"]" * 100_000, "[PARSE] $: status body nests deeper than 64 levels"),
])
def test_hostile_file_is_a_parse_finding_naming_the_file(body: bytes, needle: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hostile.json"
    path.write_bytes(body)
    code, out, err = run_cli(capsys, "--file", str(path))
    assert code == 1 and err == ""
    assert out.splitlines()[0] == f"FAIL {path}: 1 finding(s) (PARSE: 1)"
    assert needle in out


def test_duplicate_key_hiding_a_kill_fails_even_when_the_last_value_is_valid(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    real = json.dumps(golden("active_healthy"))
    path = tmp_path / "dup.json"
    path.write_bytes(b'{"trading_mode": "Kill", ' + real[1:].encode())
    assert json.loads(path.read_bytes()) == golden("active_healthy")  # what a lenient reader would see
    code, out, _ = run_cli(capsys, "--file", str(path), "--format", "json")
    result = json.loads(out)["results"][0]
    assert code == 1 and result["valid"] is False and result["findings"][0]["tag"] == "PARSE"


def test_invalid_utf8_file_is_a_setup_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"a": "\xff"}')
    code, _, err = run_cli(capsys, "--file", str(path))
    assert code == 2
    assert_one_error_line(err, "latin.json", "invalid JSON", "not valid UTF-8")


def test_timeline_line_with_duplicate_keys_fails_that_sample(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    ok = json.dumps({"i": 0, "status": golden("active_healthy")})
    dup = '{"i": 1, "status": {"trading_mode": "Kill"}, "status": ' + json.dumps(golden("active_healthy")) + "}"
    path = tmp_path / "t.jsonl"
    path.write_text(ok + "\n" + dup + "\n")
    code, out, _ = run_cli(capsys, "--timeline", str(path))
    assert code == 1 and "1 of 2 samples invalid; first at line 2" in out and '[PARSE] $.status: duplicate key' in out


class _Redirect(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self.send_response(302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_url_redirect_is_refused_not_followed(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    _Redirect.target = f"{server}/ok"  # a valid payload: following the redirect would pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        code, _, err = run_cli(capsys, "--url", f"http://127.0.0.1:{httpd.server_address[1]}/api/v1/status")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 2
    assert_one_error_line(err, "HTTP 302", "refused", "never follows redirects")


def test_remote_url_refused_without_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--url", "http://203.0.113.9:8080/api/v1/status")
    assert code == 2
    assert_one_error_line(err, "not loopback", "--allow-remote")


def test_url_ignores_environment_proxy(server: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert run_cli(capsys, "--url", f"{server}/ok")[0] == 0


def test_url_hostile_body_is_a_parse_finding(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    _Handler.routes["/dup"] = (200, b'{"trading_mode": "Kill", "trading_mode": "Active"}')
    code, out, _ = run_cli(capsys, "--url", f"{server}/dup")
    assert code == 1 and f"FAIL {server}/dup" in out and "[PARSE] $.trading_mode" in out


def test_fast_glob_matches_glob_module(tmp_path: Path) -> None:
    import glob as globmod

    from pytest_chaosdrill.commands.validate_status import _glob

    for name in ("a.json", "b.JSON", ".hidden.json", "c.json.bak", "d[1].json", "sub", "x.json\n", "json", ".json"):
        (tmp_path / name).mkdir() if name == "sub" else (tmp_path / name).write_text("{}")
    (tmp_path / "sub" / "e.json").write_text("{}")
    for pattern in ("*.json", "?.json", "*", ".*", "[ab].*", "**/*.json", "sub/*.json", "d*.json", "*json",
                    ".*.json", "*.json\n", "*.JSON", "*.bak"):
        full = str(tmp_path / pattern)
        assert _glob(full) == sorted(globmod.glob(full, recursive=True)), pattern
