"""VenueServer start/stop hygiene (threads, sockets, port) and the ``chaosdrill venue`` command."""
from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.probe import WsProbe


def venue_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("venue-")]


def test_stop_closes_sockets_joins_thread_and_frees_the_port() -> None:
    before = set(threading.enumerate())
    v = VenueServer(port=0, tick_ms=20).start()
    port = v.port
    assert v.base_url == v.rest_url == f"http://127.0.0.1:{port}"
    assert v.ws_public_url == f"ws://127.0.0.1:{port}/ws/v5/public"
    assert v.ws_private_url == f"ws://127.0.0.1:{port}/ws/v5/private"
    pub, priv = WsProbe(v.ws_public_url), WsProbe(v.ws_private_url)
    pub.send({"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT-SWAP"}]})
    assert pub.recv(2) is not None
    assert requests.get(v.rest_url + "/api/v5/public/time", timeout=5).status_code == 200
    v.stop()
    v.stop()  # idempotent
    assert pub.wait_closed(2) == 1001 and priv.wait_closed(2) == 1001
    pub.close()
    priv.close()
    assert venue_threads() == []
    assert set(threading.enumerate()) <= before
    with pytest.raises(requests.ConnectionError):
        requests.get(v.rest_url + "/api/v5/public/time", timeout=2)
    # The port can be bound again, by a plain socket and by a new venue.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.close()
    with VenueServer(port=port) as again:
        assert requests.get(again.rest_url + "/api/v5/public/time", timeout=5).json()["code"] == "0"
    with pytest.raises(RuntimeError, match="not running"):
        v.control.state()


def test_start_reports_a_busy_port_and_misuse() -> None:
    with VenueServer(port=0) as v:
        with pytest.raises(OSError):
            VenueServer(port=v.port).start()
        with pytest.raises(RuntimeError, match="already started"):
            v.start()
    assert venue_threads() == []
    with pytest.raises(RuntimeError, match="not started"):
        VenueServer().port
    VenueServer().stop()  # stopping a never-started server is a no-op


def test_control_is_thread_safe_under_concurrent_callers() -> None:
    with VenueServer(port=0, tick_ms=5) as v:
        errors: list[BaseException] = []

        def hammer() -> None:
            try:
                for _ in range(30):
                    v.control.state()
                    v.control.lag(1)
                    v.control.faults()
            except BaseException as e:  # collected and re-raised in the test thread
                errors.append(e)
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors
        lags = [r for r in v.control.faults() if r.kind == "lag"]
        assert len(lags) == 120 and sum(r.active for r in lags) == 1  # each new lag replaces the last


def test_cli_venue_serves_and_exits_0_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pytest_chaosdrill.cli", "venue", "--port", "0", "--seed", "3",
                             "--tick-ms", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        # A reader thread, not select() on a buffered pipe: lines already buffered would never wake select().
        lines: "queue.Queue[str]" = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
        reader.start()
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 15
        while len(urls) < 4 and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            key, _, val = line.strip().partition("=")
            urls[key] = val
        assert set(urls) == {"rest_url", "ws_public_url", "ws_private_url", "control_url"}, (urls, proc.poll())
        assert requests.get(urls["rest_url"] + "/api/v5/market/ticker", params={"instId": "ETH-USDT-SWAP"},
                            timeout=5).json()["code"] == "0"
        assert requests.get(urls["control_url"] + "/state", timeout=5).json()["seed"] == 3
        with WsProbe(urls["ws_public_url"]) as ws:
            ws.send({"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USDT-SWAP"}]})
            ws.wait_for(lambda m: isinstance(m, dict) and "data" in m, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        reader.join(5)
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert "venue stopped\n" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_cli_venue_reports_a_busy_port() -> None:
    with VenueServer(port=0) as v:
        proc = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "venue", "--port", str(v.port)],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{v.port}" in proc.stderr
