"""The status sampler against a hostile status server (real HTTP on loopback)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from pytest_chaosdrill import resources
from pytest_chaosdrill.statusread import unescape_raw
from pytest_chaosdrill.timeline import RAW_KEEP_BYTES, LiveInterlock, SamplerRefused, StatusSampler, Timeline

GOLDEN = json.loads((resources.fixtures_dir() / "active_healthy.json").read_text())


class _Server(ThreadingHTTPServer):
    answers: list[tuple[int, dict[str, str], bytes]]
    hits: int
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        code, headers, body = srv.answers[min(srv.hits, len(srv.answers) - 1)]
        srv.hits += 1
        srv.paths.append(self.path)
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve() -> _Server:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.answers, srv.hits, srv.paths = [(200, {}, b"{}")], 0, []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _serve()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv: _Server, path: str = "/api/v1/status") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def poll(srv: _Server, n: int, **kw: object) -> tuple[StatusSampler, list]:
    sampler = StatusSampler(url(srv), Timeline(), interval_s=0.001, **kw)  # type: ignore[arg-type]
    with sampler.new_session() as session:
        return sampler, [sampler.poll_once(session) for _ in range(n)]


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_duplicate_trading_mode_is_an_error_sample_not_the_last_value(server: _Server) -> None:
    real = json.dumps(GOLDEN)[1:]  # the real keys after a planted "Kill"
    server.answers = [(200, {}, b'{"trading_mode": "Kill", ' + real.encode())]
    _, (sample,) = poll(server, 1)
    assert not sample.ok and sample.status is None and not sample.blocked
    assert '[PARSE] $.trading_mode: duplicate key "trading_mode"' in sample.error
    assert sample.raw.startswith(b'{"trading_mode": "Kill"')


def test_redirect_is_never_followed_and_names_its_location(server: _Server) -> None:
    other = _serve()
    try:
        for location in ("http://203.0.113.7/api/v1/status", url(other)):
            server.answers, server.hits = [(302, {"Location": location}, b"")], 0
            _, samples = poll(server, 3)
            assert all(not s.ok and "HTTP 302 redirect to" in s.error and location in s.error for s in samples)
            assert server.hits == 3
        assert other.hits == 0  # a loopback redirect target is not contacted either
    finally:
        other.shutdown()
        other.server_close()


def test_nan_status_is_refused_and_timeline_jsonl_is_strict(server: _Server) -> None:
    server.answers = [(200, {}, b'{"trading_mode": "Active", "mm_util": NaN}'), (200, {}, body(GOLDEN))]
    sampler, samples = poll(server, 2)
    assert not samples[0].ok and "non-finite number NaN" in samples[0].error and samples[1].ok

    def no_constants(token: str) -> object:
        raise AssertionError(token)
    lines = list(sampler.timeline.iter_jsonl())
    assert [json.loads(line, parse_constant=no_constants)["i"] for line in lines] == [0, 1]


def test_a_sample_built_elsewhere_with_nan_still_serialises_strictly() -> None:
    from pytest_chaosdrill.timeline import Sample
    s = Sample(0, 1.0, 1.1, "t", 200, {"x": float("nan")})
    json.dumps(s.to_json(), allow_nan=False)


def test_array_status_names_what_it_is(server: _Server) -> None:
    server.answers = [(200, {}, b"[1, 2, 3]")]
    _, (s,) = poll(server, 1)
    assert s.error == "[PARSE] $: status is a JSON array, not an object"


def test_deep_and_oversized_bodies_are_failed_samples_with_bounded_raw(server: _Server) -> None:
    server.answers = [(200, {}, b"[" * 100_000 + b"]" * 100_000), (200, {}, b" " * 2_000_000 + b"{}")]
    _, (deep, big) = poll(server, 2)
    assert "nests deeper than 64 levels" in deep.error
    assert "larger than 1000000 bytes" in big.error
    for s in (deep, big):
        assert len(s.raw) == RAW_KEEP_BYTES and s.raw_length > RAW_KEEP_BYTES


def test_raw_samples_jsonl_holds_bad_bodies_only_redacted_and_reversible(server: _Server) -> None:
    server.answers = [(200, {}, body(GOLDEN)), (200, {}, b'{"a": "s3cr3t\xff"}'), (500, {}, b"boom")]
    sampler, _ = poll(server, 3)
    recs = [json.loads(x) for x in sampler.timeline.iter_raw_jsonl(lambda b: b.replace(b"s3cr3t", b"***"))]
    assert [r["i"] for r in recs] == [1, 2]
    assert unescape_raw(recs[0]["escaped"]) == b'{"a": "***\xff"}' and "s3cr3t" not in json.dumps(recs)
    assert recs[1]["error"] == "HTTP 500" and unescape_raw(recs[1]["escaped"]) == b"boom"


@pytest.mark.parametrize("bad_url", ["http://203.0.113.7:8080/api/v1/status", "http://example.invalid/s",
                                     "file:///etc/passwd", "http://10.0.0.1/"])
def test_refuses_a_non_loopback_host_at_construction(bad_url: str) -> None:
    with pytest.raises(SamplerRefused):
        StatusSampler(bad_url, Timeline())


def test_allowed_hosts_and_loopback_forms_are_accepted() -> None:
    for ok in ("http://localhost:1/s", "http://127.0.0.5:1/s", "http://[::1]:1/s"):
        StatusSampler(ok, Timeline())
    StatusSampler("http://chaosdrill-target-1:8080/s", Timeline(), allowed_hosts=("chaosdrill-target-1",))


def test_environment_proxy_is_ignored(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail every request if honoured
    monkeypatch.setenv("NO_PROXY", "")
    server.answers = [(200, {}, body(GOLDEN))]
    _, (s,) = poll(server, 1)
    assert s.ok


def test_live_interlock_trips_on_the_sample_turning_live(server: _Server) -> None:
    live = dict(GOLDEN, deployment_environment="LIVE")
    server.answers = [(200, {}, body(dict(GOLDEN, deployment_environment="DEMO")))] * 3 + [(200, {}, body(live))]
    trips: list[str] = []
    interlock = LiveInterlock(on_trip=trips.append)
    sampler, samples = poll(server, 6, on_sample=interlock)
    assert interlock.tripped.is_set() and interlock.sample is samples[3]
    assert trips == [interlock.reason] and "sample 3" in trips[0] and "'LIVE'" in trips[0]


def test_a_failing_on_sample_hook_does_not_stop_sampling(server: _Server) -> None:
    server.answers = [(200, {}, body(GOLDEN))]

    def boom(sample: object) -> None:
        raise RuntimeError("hook broke")
    tl = Timeline()
    with StatusSampler(url(server), tl, interval_s=0.001, on_sample=boom) as sampler:
        deadline = __import__("time").monotonic() + 10
        while len(tl.samples) < 3 and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.005)
    assert len(tl.samples) >= 3 and all(s.ok for s in tl.samples)
    assert sampler.callback_errors and "hook broke" in sampler.callback_errors[0]


def test_sampler_sends_no_compression_request(server: _Server) -> None:
    seen: list[str] = []
    orig = _Handler.do_GET

    def spy(self: _Handler) -> None:
        seen.append(self.headers.get("Accept-Encoding", ""))
        orig(self)
    _Handler.do_GET = spy  # type: ignore[method-assign]
    try:
        server.answers = [(200, {}, body(GOLDEN))]
        poll(server, 1)
    finally:
        _Handler.do_GET = orig  # type: ignore[method-assign]
    assert seen == ["identity"]


def test_requests_session_default_would_have_followed(server: _Server) -> None:
    """Control: the plain client follows this redirect, so the refusal above is the sampler's doing."""
    other = _serve()
    try:
        other.answers = [(200, {}, body(GOLDEN))]
        server.answers = [(302, {"Location": url(other)}, b"")]
        assert requests.get(url(server), timeout=5).json() == GOLDEN and other.hits == 1
    finally:
        other.shutdown()
        other.server_close()


def test_a_body_cut_short_is_an_error_sample_not_a_dead_sampler() -> None:
    """A target that dies mid-answer (headers promise 40 bytes, the connection closes): urllib3's
    IncompleteRead reaches the sampler unwrapped by requests; it must be one failed sample."""
    import socket
    import threading

    import requests

    from pytest_chaosdrill.timeline import StatusSampler, Timeline

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        sampler = StatusSampler(f"http://127.0.0.1:{srv.getsockname()[1]}/api/v1/status", Timeline())
        with requests.Session() as session:
            sample = sampler.poll_once(session)
        assert sample.error is not None and not sample.ok
        assert "IncompleteRead" in sample.error or "Connection broken" in sample.error or "ProtocolError" in sample.error
    finally:
        stop.set()
        t.join(2)
        srv.close()
