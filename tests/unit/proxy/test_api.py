"""Fault proxy HTTP API (Toxiproxy-shaped), ProxyClient, and the ``chaosdrill proxy`` command."""
from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from pytest_chaosdrill.proxy import ProxyAPIError, ProxyClient, ProxyServer


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo_upstream() -> Iterator[str]:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), name="test-echo", daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def api() -> Iterator[ProxyServer]:
    with ProxyServer() as srv:
        yield srv


def echo_once(listen: str, payload: bytes = b"ping", timeout: float = 5.0) -> bytes:
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
        sock.sendall(payload)
        buf = b""
        while len(buf) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


def test_proxy_crud_shapes_and_status_codes(api: ProxyServer, echo_upstream: str) -> None:
    base = api.api_url
    r = requests.post(f"{base}/proxies", json={"name": "venue", "upstream": echo_upstream, "listen": "127.0.0.1:0"})
    assert r.status_code == 201
    proxy = r.json()
    assert set(proxy) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert proxy["enabled"] is True and proxy["toxics"] == [] and not proxy["listen"].endswith(":0")
    assert echo_once(proxy["listen"]) == b"ping"

    dup = requests.post(f"{base}/proxies", json={"name": "venue", "upstream": echo_upstream})
    assert dup.status_code == 409 and "already exists" in dup.json()["error"]
    missing = requests.post(f"{base}/proxies", json={"name": "x"})
    assert missing.status_code == 400 and "upstream" in missing.json()["error"]
    bad_json = requests.post(f"{base}/proxies", data=b"{nope", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "bad request body" in bad_json.json()["error"]

    assert requests.get(f"{base}/proxies").json() == {"venue": proxy}
    assert requests.get(f"{base}/proxies/venue").json() == proxy
    assert requests.get(f"{base}/proxies/nope").status_code == 404
    assert requests.get(f"{base}/proxies/nope").json()["error"].startswith("proxy not found")

    off = requests.post(f"{base}/proxies/venue", json={"enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    with pytest.raises(ConnectionRefusedError):
        echo_once(proxy["listen"])
    on = requests.post(f"{base}/proxies/venue", json={"enabled": True})
    assert on.json()["enabled"] is True and on.json()["listen"] == proxy["listen"]
    assert echo_once(proxy["listen"]) == b"ping"

    assert requests.delete(f"{base}/proxies/venue").status_code == 204
    assert requests.delete(f"{base}/proxies/venue").status_code == 404
    assert requests.get(f"{base}/proxies").json() == {}


def test_toxic_crud_and_errors(api: ProxyServer, echo_upstream: str) -> None:
    base = api.api_url
    requests.post(f"{base}/proxies", json={"name": "p", "upstream": echo_upstream}).raise_for_status()
    r = requests.post(f"{base}/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 30}})
    assert r.status_code == 200
    assert r.json() == {"name": "latency_downstream", "type": "latency", "stream": "downstream",
                        "toxicity": 1.0, "attributes": {"latency": 30, "jitter": 0}}
    assert requests.post(f"{base}/proxies/p/toxics", json={"type": "latency"}).status_code == 409

    for body, fragment in [
        ({"type": "nonsense"}, "invalid toxic type"),
        ({"type": "latency", "name": "l2", "attributes": {"latencyy": 1}}, "unknown attribute"),
        ({"type": "latency", "name": "l3", "attributes": {"latency": -1}}, ">= 0"),
        ({"type": "latency", "name": "l4", "stream": "sideways"}, "stream was invalid"),
        ({"type": "latency", "name": "l5", "toxicity": 2}, "toxicity"),
        ({"name": "l6"}, "type"),
    ]:
        bad = requests.post(f"{base}/proxies/p/toxics", json=body)
        assert bad.status_code == 400, body
        assert fragment in bad.json()["error"], (body, bad.json())

    assert requests.get(f"{base}/proxies/p/toxics").json() == [r.json()]
    assert requests.get(f"{base}/proxies/p/toxics/latency_downstream").json() == r.json()
    assert requests.get(f"{base}/proxies/p/toxics/nope").status_code == 404
    assert requests.get(f"{base}/proxies/nope/toxics").status_code == 404
    up = requests.post(f"{base}/proxies/p/toxics/latency_downstream", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    assert up.status_code == 200
    assert up.json()["attributes"] == {"latency": 30, "jitter": 5} and up.json()["toxicity"] == 0.5
    assert requests.post(f"{base}/proxies/p/toxics/nope", json={"attributes": {}}).status_code == 404
    assert requests.get(f"{base}/proxies/p").json()["toxics"] == [up.json()]

    assert requests.delete(f"{base}/proxies/p/toxics/latency_downstream").status_code == 204
    assert requests.delete(f"{base}/proxies/p/toxics/latency_downstream").status_code == 404
    assert requests.get(f"{base}/version").json()["version"]
    assert requests.get(f"{base}/no/such/path").status_code == 404


def test_reset_removes_toxics_and_enables(api: ProxyServer, echo_upstream: str) -> None:
    client = ProxyClient(api.api_url)
    p = client.create_proxy("a", echo_upstream)
    client.add_toxic("a", "timeout", timeout=0)
    client.set_enabled("a", False)
    client.reset()
    assert client.proxy("a")["enabled"] is True and client.toxics("a") == []
    assert echo_once(p["listen"]) == b"ping"
    client.close()


def test_populate(api: ProxyServer, echo_upstream: str) -> None:
    base = api.api_url
    r = requests.post(f"{base}/populate", json=[{"name": "a", "upstream": echo_upstream},
                                                 {"name": "b", "upstream": echo_upstream}])
    assert r.status_code == 201 and [p["name"] for p in r.json()["proxies"]] == ["a", "b"]
    again = requests.post(f"{base}/populate", json=[{"name": "a", "upstream": echo_upstream}])
    assert again.json()["proxies"][0]["listen"] == r.json()["proxies"][0]["listen"]  # unchanged, kept


def test_client_round_trip_with_counters(api: ProxyServer, echo_upstream: str) -> None:
    with ProxyClient(api.api_url) as client:
        listen = client.create_proxy("venue", echo_upstream)["listen"]
        toxic = client.add_toxic("venue", "latency", stream="upstream", latency=20, name="slow")
        assert (toxic.name, toxic.stream, toxic.attributes["latency"]) == ("slow", "upstream", 20)
        with pytest.raises(TimeoutError, match="'slow' on proxy 'venue' did not act"):
            client.wait_toxic_acted("venue", "slow", timeout=0.1)
        start = time.monotonic()
        assert echo_once(listen, b"x" * 100) == b"x" * 100
        assert time.monotonic() - start >= 0.019
        acted = client.wait_toxic_acted("venue", "slow", timeout=2)
        assert acted["bytes_acted"] == 100 and acted["first_acted_utc"]
        assert client.update_toxic("venue", "slow", latency=0).attributes["latency"] == 0
        c = client.counters("venue")
        assert c["bytes_upstream"] == 100 and c["bytes_downstream"] == 100 and c["connections_opened"] == 1
        assert c["toxics"]["slow"]["connections_acted"] == 1
        client.remove_toxic("venue", "slow")
        assert client.counters("venue")["removed_toxics"][0]["name"] == "slow"
        with pytest.raises(ProxyAPIError) as err:
            client.add_toxic("venue", "latency", latency=-5)
        assert err.value.status == 400
        with pytest.raises(ProxyAPIError) as err:
            client.toxic_counters("venue", "nope")
        assert err.value.status == 404


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "pytest_chaosdrill.cli", "proxy", "--api-port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "API listening on " in line:
            return proc, line.rsplit(" ", 1)[1].strip()
    proc.kill()
    out, err = proc.communicate(timeout=10)
    raise AssertionError(f"no API URL printed: {lines}{out} / {err}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_version_and_exits_0_on_signal(tmp_path: Path, echo_upstream: str, sig: signal.Signals) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "venue", "listen": "127.0.0.1:0", "upstream": echo_upstream}]))
    proc, url = _start_cli("--config", str(config))
    try:
        assert requests.get(f"{url}/version", timeout=5).json()["version"]
        listen = requests.get(f"{url}/proxies/venue", timeout=5).json()["listen"]
        assert echo_once(listen) == b"ping"
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err


def test_cli_bad_config_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps([{"name": "x"}]))
    proc = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "proxy", "--api-port", "0",
                           "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "lacks upstream" in proc.stderr


def test_update_upstream_and_localhost_listen(api: ProxyServer, echo_upstream: str) -> None:
    with ProxyClient(api.api_url) as client:
        p = client.create_proxy("moving", echo_upstream, listen="localhost:0")
        assert p["listen"].rsplit(":", 1)[0] in ("127.0.0.1", "[::1]")  # one socket, resolved address
        assert echo_once(p["listen"]) == b"ping"
        with socket.socket() as s:  # a port with nothing listening
            s.bind(("127.0.0.1", 0))
            dead = f"127.0.0.1:{s.getsockname()[1]}"
        moved = client._request("POST", "/proxies/moving", {"upstream": dead})
        assert moved["upstream"] == dead
        assert echo_once(p["listen"]) == b""  # closed: upstream refused
        deadline = time.monotonic() + 5
        while client.counters("moving")["connections_refused"] < 1:
            assert time.monotonic() < deadline, "refused upstream connection not counted"
            time.sleep(0.01)
        assert client.counters("moving")["connections_opened"] == 1


def test_python_reset(api: ProxyServer, echo_upstream: str) -> None:
    proxy = api.create_proxy("r", echo_upstream)
    proxy.add_toxic("timeout", timeout=0)
    proxy.enabled = False
    api.reset()
    assert proxy.enabled and proxy.toxics() == [] and list(api.proxies()) == ["r"]
    assert echo_once(proxy.listen) == b"ping"
