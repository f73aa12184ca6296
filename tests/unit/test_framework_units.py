"""Unit tests of the drill framework's plain modules: timeline, expectations, target files, evidence."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from pytest_chaosdrill.drill import DrillDefinitionError, load_drill, load_drills
from pytest_chaosdrill.evidence import EvidenceWriter, RunInfo, verify_tree
from pytest_chaosdrill.redaction import Redactor
from pytest_chaosdrill.expect import Expectation, ExpectationError, apply_rule
from pytest_chaosdrill.resources import drills_dir, fixtures_dir
from pytest_chaosdrill.target import LiveEnvironmentRefused, TargetConfigError, load_target, refuse_live
from pytest_chaosdrill.timeline import Sample, StatusSampler, Timeline, open_blocked, wait_until

# --- wait_until with an injected clock: no real sleeping ----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_wait_until_returns_the_first_truthy_value() -> None:
    clock = FakeClock()
    values = iter([None, 0, "ready"])
    assert wait_until(lambda: next(values), timeout=10, pause=1, clock=clock, sleep=clock.sleep) == "ready"
    assert clock.now == 2


def test_wait_until_gives_up_at_the_deadline() -> None:
    clock = FakeClock()
    calls = []
    assert wait_until(lambda: calls.append(1), timeout=3, pause=1, clock=clock, sleep=clock.sleep) is None
    assert len(calls) == 4 and clock.now == 3


# --- the status sampler against a real HTTP server with hostile answers ----------------------------------


class _Handler(BaseHTTPRequestHandler):
    answers: list[tuple[int, bytes]] = []
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        code, body = self.answers[min(self.server.hits, len(self.answers) - 1)]  # type: ignore[attr-defined]
        self.server.hits += 1  # type: ignore[attr-defined]
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = 0  # type: ignore[attr-defined]
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()
    t.join()


def test_sampler_records_malformed_and_error_answers_as_error_samples(status_server: ThreadingHTTPServer) -> None:
    _Handler.answers = [(200, b'{"trading_mode": "Active"}'), (200, b"{not json"), (500, b"oops"),
                        (200, b'"a string"'), (200, b'{"trading_mode": "Kill"}')]
    tl = Timeline()
    sampler = StatusSampler(f"http://127.0.0.1:{status_server.server_address[1]}/s", tl, interval_s=0.001)
    with __import__("requests").Session() as session:
        samples = [sampler.poll_once(session) for _ in range(5)]
    assert samples[0].ok and samples[0].status == {"trading_mode": "Active"}
    assert not samples[1].ok and "[PARSE] $: status body is not valid JSON" in samples[1].error
    assert not samples[2].ok and "HTTP 500" in samples[2].error
    assert not samples[3].ok and "status is a JSON string, not an object" in samples[3].error
    assert samples[4].blocked and [s.i for s in tl.samples] == [0, 1, 2, 3, 4]


def test_sampler_survives_a_dead_target_and_keeps_sampling() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tl = Timeline()
    with StatusSampler(f"http://127.0.0.1:{port}/s", tl, interval_s=0.001, timeout_s=0.2):
        assert wait_until(lambda: len(tl.samples) >= 3, timeout=10)
    assert all(not s.ok and "ConnectionError" in s.error for s in tl.samples)


def test_sampler_survives_a_hostile_deeply_nested_body(status_server: ThreadingHTTPServer) -> None:
    _Handler.answers = [(200, b"[" * 200_000 + b"]" * 200_000)]
    sampler = StatusSampler(f"http://127.0.0.1:{status_server.server_address[1]}/", Timeline(), max_body=500_000)
    with __import__("requests").Session() as session:
        sample = sampler.poll_once(session)
    assert not sample.ok and "nests deeper than 64 levels" in sample.error


def test_sampler_refuses_an_oversized_body(status_server: ThreadingHTTPServer) -> None:
    _Handler.answers = [(200, b'{"x": "' + b"a" * 5000 + b'"}')]
    sampler = StatusSampler(f"http://127.0.0.1:{status_server.server_address[1]}/", Timeline(), max_body=1000)
    with __import__("requests").Session() as session:
        sample = sampler.poll_once(session)
    assert not sample.ok and "larger than 1000" in sample.error


def test_open_blocked_definition() -> None:
    assert not open_blocked({"trading_mode": "Active", "open_permission_blocked_latch": False})
    assert open_blocked({"trading_mode": "Active", "open_permission_blocked_latch": True})
    assert open_blocked({"trading_mode": "ReduceOnly"}) and open_blocked({"trading_mode": "Kill"})
    assert not open_blocked(None) and not open_blocked([1])


def test_timeline_windows_and_interval_stats() -> None:
    tl = Timeline()
    for i in range(5):
        tl.add(Sample(i, sent_mono=i * 0.01, mono=i * 0.01 + 0.001, utc="", http_status=200, status={"i": i}))
    assert [s.i for s in tl.between(0.015, 0.035)] == [2, 3]
    assert tl.first(lambda s: s.status["i"] > 2).i == 3
    stats = tl.interval_stats()
    assert stats["count"] == 5 and abs(stats["p50_ms"] - 10) < 1e-6


# --- expectations ---------------------------------------------------------------------------------------


def test_expectation_from_fixture_matches_fields_and_rules() -> None:
    exp = Expectation.from_drill({"fixture": "session_termination.json",
                                  "fields": ["trading_mode", "open_permission_reason_codes"],
                                  "rules": {"10028_count_5m": {"op": "increased"}}})
    good = dict(exp.payload, **{"10028_count_5m": 1})
    assert exp.compare(good, baseline={"10028_count_5m": 0}).matched
    bad = exp.compare(dict(good, trading_mode="Active"), baseline={"10028_count_5m": 1})
    assert not bad.matched
    assert any("trading_mode" in p for p in bad.problems) and any("10028_count_5m" in p for p in bad.problems)
    assert "trading_mode" in bad.deepdiff_text


def test_expectation_errors_are_clear() -> None:
    with pytest.raises(ExpectationError, match="not found"):
        Expectation.from_drill({"fixture": "nope.json"})
    with pytest.raises(ExpectationError, match="not in the expected status"):
        Expectation.from_drill({"status": {"a": 1}, "fields": ["b"]})


@pytest.mark.parametrize(("rule", "observed", "ok"), [
    ({"op": "gte", "value": 500}, {"k": 700}, True),
    ({"op": "gte", "value": 500}, {"k": 300}, False),
    ({"op": "eq_field", "field": "cap"}, {"k": 16, "cap": 16}, True),
    ({"op": "eq_field", "field": "cap"}, {"k": 15, "cap": 16}, False),
    ({"op": "contains", "value": "X"}, {"k": ["X", "Y"]}, True),
    ({"op": "type", "value": "integer"}, {"k": True}, False),
    ({"op": "gt", "value": 1}, {"k": "text"}, False),   # a wrong type is a failure, never an exception
    ({"op": "present"}, {}, False),
])
def test_rules(rule: dict, observed: dict, ok: bool) -> None:
    assert apply_rule("k", rule, observed, None)[0] is ok


# --- drill files ----------------------------------------------------------------------------------------


def test_bundled_drills_load_and_name_their_fixtures() -> None:
    drills = load_drills([drills_dir()])
    assert [d.id for d in drills if d.group == "phase2"] == [f"drill_{n}_{s}" for n, s in [
        (1, "partial_fill"), (2, "market_data_stale"), (3, "wal_backpressure"), (4, "crash_restart"),
        (5, "ws_book_gap"), (6, "ws_trades_gap"), (7, "session_termination"), (8, "unknown_token")]]
    assert {d.id for d in drills if d.group == "ops"} == {"ops_c2_1_stop", "ops_c2_2_network_disconnect", "ops_c2_3_degradation",
                                                            "ops_c2_4_partition_inflight", "ops_c2_5_timeouts"}
    for d in drills:
        if d.expected.get("fixture"):
            assert (fixtures_dir() / d.expected["fixture"]).is_file()


@pytest.mark.parametrize(("text", "field"), [
    ("id: x\n", "title' is required"),
    ("id: Bad-Id\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: 1\n"
     "checks: []\nrecovery: {kind: none}\n", "id"),
    ("id: x\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: -1\n"
     "checks: []\nrecovery: {kind: none}\n", "time_to_safe_budget_ms"),
    ("id: x\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: 1\n"
     "checks: [{params: {}}]\nrecovery: {kind: never}\n", "recovery.kind"),
])
def test_broken_drill_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "d.yaml"
    p.write_text(text)
    with pytest.raises(DrillDefinitionError) as err:
        load_drill(p)
    assert str(p) in str(err.value) and (f"field '{field}'" in str(err.value) or field in str(err.value))


def test_duplicate_drill_ids_are_refused(tmp_path: Path) -> None:
    src = (drills_dir() / "drill_5_ws_book_gap.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src)
    with pytest.raises(DrillDefinitionError, match="already defined"):
        load_drills([tmp_path])


# --- target files and the live-environment refusal -------------------------------------------------------


def _target(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return p


def test_target_placeholders_are_filled_and_unknown_ones_named(tmp_path: Path) -> None:
    t = load_target(_target(tmp_path, 'name: s\ncommand: ["{python}", "-m", "svc"]\n'
                                      'env: {URL: "{venue_rest_url}", KEY: "abc-{drill_id}"}\n'
                                      'status_url: "http://127.0.0.1:{status_port}/s"\n'))
    r = t.render({"venue_rest_url": "http://127.0.0.1:9", "status_port": 5, "drill_id": "d"})
    assert r.env == {"URL": "http://127.0.0.1:9", "KEY": "abc-d"} and r.status_url.endswith(":5/s")
    assert r.secrets() == ["abc-d"]
    bad = load_target(_target(tmp_path, 'name: s\ncommand: ["x"]\nenv: {A: "{nope}"}\nstatus_url: "http://127.0.0.1/"\n'))
    with pytest.raises(TargetConfigError, match=r"field 'env.A': unknown placeholder \{nope\}"):
        bad.render({})


def test_target_file_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigError, match="field 'command' is required"):
        load_target(_target(tmp_path, "name: s\nstatus_url: u\n"))
    with pytest.raises(TargetConfigError, match="list of strings"):
        load_target(_target(tmp_path, "name: s\ncommand: run me\nstatus_url: u\n"))
    with pytest.raises(TargetConfigError, match="cannot read"):
        load_target(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("env", "environment", "status", "refused"), [
    ({"URL": "http://127.0.0.1:1"}, "PAPER", {}, False),
    ({"URL": "https://www.okx.com"}, "PAPER", {}, True),
    ({"URL": "wss://10.1.2.3:8443/ws"}, "PAPER", {}, True),
    ({"URL": "http://localhost:1"}, "LIVE", {}, True),
    ({"URL": "http://[::1]:1"}, "PAPER", {"deployment_environment": "LIVE"}, True),
])
def test_refuse_live(tmp_path: Path, env: dict, environment: str, status: dict, refused: bool) -> None:
    env_yaml = json.dumps(env)
    t = load_target(_target(tmp_path, f'name: s\nenvironment: {environment}\ncommand: ["x"]\nenv: {env_yaml}\n'
                                      'status_url: "http://127.0.0.1:1/s"\n')).render({})
    if refused:
        with pytest.raises(LiveEnvironmentRefused, match="--chaosdrill-allow-live"):
            refuse_live(t, allow_live=False, status=status)
        refuse_live(t, allow_live=True, status=status)  # the explicit override
    else:
        refuse_live(t, allow_live=False, status=status)


# --- evidence --------------------------------------------------------------------------------------------


def test_redactor_removes_secret_values_not_key_names() -> None:
    r = Redactor(["s3cr3t-value", "abc123"])
    out = r.text('token s3cr3t-value; {"apiKey": "abc123", "token": "KILL_X"} OK-ACCESS-KEY: kkk')
    assert "s3cr3t-value" not in out and "abc123" not in out
    assert '"token": "KILL_X"' in out and "kkk" in out   # names alone never redact: only known values do


def test_evidence_folder_hashes_archive_and_never_overwrites(tmp_path: Path) -> None:
    info = RunInfo("run_test", tmp_path, "abc", "2026-01-01T00:00:00Z", "process")
    info.create()
    with pytest.raises(FileExistsError):
        info.create()
    w1 = EvidenceWriter(info, "phase2", "drill_x", Redactor(["hunter2"]))
    w1.text("notes.md", "password hunter2")
    out = w1.finish()
    w2 = EvidenceWriter(info, "phase2", "drill_x", Redactor())
    w2.text("notes.md", "second")
    w2.finish()
    assert w1.dir != w2.dir and (w1.dir / "notes.md").read_text() != "second"
    assert "hunter2" not in (w1.dir / "notes.md").read_text()
    checked, problems = verify_tree(tmp_path / "runs")
    assert checked >= 4 and problems == []
    assert Path(out["ieb"]).is_file() and len(out["ieb_sha256"]) == 64
    (w1.dir / "extra.txt").write_text("sneaked in")
    _, problems = verify_tree(w1.dir)
    assert any("not listed" in p for p in problems)


def test_redactor_leaves_words_that_merely_contain_a_secret_name() -> None:
    assert Redactor().text("manifest with fake token KILL_DRIFT_TOKEN: 1 finding") == \
        "manifest with fake token KILL_DRIFT_TOKEN: 1 finding"


def test_process_backend_pause_resume_and_kill_are_proven_by_the_kernel(tmp_path: Path) -> None:
    import signal
    import sys

    from pytest_chaosdrill.backends.process import ProcessTarget

    t = load_target(_target(tmp_path, 'name: sleeper\ncommand: ["{python}", "-c", "import time; time.sleep(60)"]\n'
                                      'status_url: "http://127.0.0.1:1/"\n')).render({"python": sys.executable})
    target = ProcessTarget(t, tmp_path / "logs")
    target.start()
    try:
        paused = target.pause()
        assert paused["proven"] and paused["proc_state"] == "T"
        assert target.resume()["signal"] == "SIGCONT"
        assert wait_until(lambda: target._proc_state() in ("S", "R"), timeout=5)
        killed = target.kill()
        assert killed["killed_by_sigkill"] and killed["returncode"] == -signal.SIGKILL
        assert target.logs() and target.describe()["exits"][0]["returncode"] == -signal.SIGKILL
    finally:
        target.stop(2)
    assert not target.running()
