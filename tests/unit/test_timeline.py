"""Unit tests of pytest_chaosdrill.timeline: wait_until, the status sampler, open_blocked, windows."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

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
