"""Fault proxy data path: real clients over loopback through ``ProxyServer`` proxies.

Upstreams: an aiohttp app (HTTP + WebSocket echo) and a raw TCP server whose first line
picks a mode ("echo\\n", "send N\\n", "send N close\\n").
"""
from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from typing import Callable, Iterator

import pytest
import requests
import websocket
from aiohttp import web

from pytest_chaosdrill.proxy import FaultProxy, ProxyServer


# ---------------------------------------------------------------------------------------------
# upstream servers
class Upstream:
    """aiohttp HTTP/WS app and a raw TCP server on one loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-upstream", daemon=True)
        self.thread.start()
        self.raw_received = 0
        self.http_port, self.raw_port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> tuple[int, int]:
        app = web.Application()
        app.router.add_get("/bytes/{n}", self._bytes)
        app.router.add_post("/echo", self._echo)
        app.router.add_get("/ws", self._ws)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.raw = await asyncio.start_server(self._raw, "127.0.0.1", 0)
        return site._server.sockets[0].getsockname()[1], self.raw.sockets[0].getsockname()[1]

    async def _bytes(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["n"]))

    async def _echo(self, request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        return ws

    async def _raw(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            words = (await reader.readline()).decode().split()
            if words and words[0] == "send":
                writer.write(b"y" * int(words[1]))
                await writer.drain()
                if "close" in words:
                    writer.close()
                    return
            while True:  # echo (or just wait for EOF after a send)
                data = await reader.read(65536)
                if not data:
                    break
                self.raw_received += len(data)
                if words and words[0] == "echo":
                    writer.write(data)
                    await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def stop(self) -> None:
        async def _stop() -> None:
            self.raw.close()
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[ProxyServer]:
    with ProxyServer() as srv:
        yield srv


_names = iter(range(10**6))


@pytest.fixture
def raw_proxy(server: ProxyServer, upstream: Upstream) -> Iterator[FaultProxy]:
    proxy = server.create_proxy(f"raw{next(_names)}", f"127.0.0.1:{upstream.raw_port}")
    yield proxy
    server.delete_proxy(proxy.name)


@pytest.fixture
def http_proxy(server: ProxyServer, upstream: Upstream) -> Iterator[FaultProxy]:
    proxy = server.create_proxy(f"http{next(_names)}", f"127.0.0.1:{upstream.http_port}")
    yield proxy
    server.delete_proxy(proxy.name)


# ---------------------------------------------------------------------------------------------
# helpers
def connect(proxy_or_port: FaultProxy | int, first_line: str | None = None, timeout: float = 5.0) -> socket.socket:
    port = proxy_or_port if isinstance(proxy_or_port, int) else proxy_or_port.listen_port
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if first_line is not None:
        sock.sendall(first_line.encode() + b"\n")
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def recv_until_eof(sock: socket.socket) -> tuple[bytes, int]:
    """All bytes until EOF and the number of recv() calls that returned data."""
    buf, reads = b"", 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return buf, reads
        buf += chunk
        reads += 1


def poll(cond: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def echo_rtt(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    recv_exactly(sock, len(payload))
    return time.monotonic() - start


# ---------------------------------------------------------------------------------------------
# pass-through
def test_http_passthrough_and_counters(http_proxy: FaultProxy, upstream: Upstream) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    with requests.Session() as s:
        assert s.get(f"http://{http_proxy.listen}/bytes/1000").content == b"x" * 1000
        r = s.post(f"http://{http_proxy.listen}/echo", data=body)
        assert r.status_code == 200 and r.content == body
        del r  # its file object would keep the client socket open after the session closes
    c = poll(lambda: (c := http_proxy.counters())["connections_closed"] == 1 and c, what="connection closed")
    assert c["connections_opened"] == 1 and c["connections_active"] == 0
    assert c["bytes_upstream"] > len(body) and c["bytes_downstream"] > len(body) + 1000
    assert c["bytes_held"] == 0


def test_raw_counters_equal_what_the_client_saw(raw_proxy: FaultProxy) -> None:
    line = b"echo\n"
    payload = b"a" * 5000
    with connect(raw_proxy) as sock:
        sock.sendall(line + payload)
        got = recv_exactly(sock, len(payload))
    assert got == payload
    c = poll(lambda: (c := raw_proxy.counters())["connections_closed"] == 1 and c, what="connection closed")
    assert c["connections_opened"] == 1
    assert c["bytes_upstream"] == len(line) + len(payload)
    assert c["bytes_downstream"] == len(payload)
    assert c["upstream"]["bytes_received"] == c["upstream"]["bytes_sent"]


def test_websocket_passthrough(http_proxy: FaultProxy) -> None:
    ws = websocket.create_connection(f"ws://{http_proxy.listen}/ws", timeout=5)
    try:
        for i in range(20):
            ws.send(f"m{i}")
            assert ws.recv() == f"echo:m{i}"
    finally:
        ws.close()


# ---------------------------------------------------------------------------------------------
# toxics, observed from the client side
@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_adds_its_delay(raw_proxy: FaultProxy, upstream: Upstream, stream: str) -> None:
    latency_ms = 60
    with connect(upstream.raw_port, "echo") as direct, connect(raw_proxy, "echo") as proxied:
        base = statistics.median(echo_rtt(direct) for _ in range(7))
        echo_rtt(proxied)  # the mode line and this ping pass before the toxic exists
        raw_proxy.add_toxic("latency", stream=stream, latency=latency_ms)
        slow = statistics.median(echo_rtt(proxied) for _ in range(7))
    added_ms = (slow - base) * 1000
    assert latency_ms - 5 <= added_ms <= latency_ms + 50, f"added {added_ms:.1f} ms for latency={latency_ms}"
    tc = raw_proxy.wait_toxic_acted(f"latency_{stream}", timeout=1)
    assert tc["connections_acted"] == 1 and tc["bytes_acted"] == 7 * 4


def test_latency_update_applies_to_open_connection(raw_proxy: FaultProxy) -> None:
    with connect(raw_proxy, "echo") as sock:
        raw_proxy.add_toxic("latency", latency=0, name="lat")
        fast = statistics.median(echo_rtt(sock) for _ in range(3))
        raw_proxy.update_toxic("lat", latency=80)
        slow = statistics.median(echo_rtt(sock) for _ in range(3))
    assert (slow - fast) * 1000 >= 75


def test_bandwidth_rate_is_respected(raw_proxy: FaultProxy) -> None:
    rate_kbs, size = 400, 200_000  # expected 0.5 s
    raw_proxy.add_toxic("bandwidth", rate=rate_kbs)
    with connect(raw_proxy) as sock:
        start = time.monotonic()
        sock.sendall(f"send {size}\n".encode())
        recv_exactly(sock, size)
        took = time.monotonic() - start
    expected = size / (rate_kbs * 1000)
    assert 0.85 * expected <= took <= expected + 0.5, f"{size} B at {rate_kbs} KB/s took {took:.3f}s"


def test_slow_close_delays_the_close(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("slow_close", delay=300)
    with connect(raw_proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"send 10 close\n")
        data, _ = recv_until_eof(sock)
        took = time.monotonic() - start
    assert data == b"y" * 10
    assert 0.29 <= took <= 0.8, f"close took {took:.3f}s with slow_close delay=300"
    assert raw_proxy.toxic_counters("slow_close_downstream")["connections_acted"] == 1


def test_timeout_zero_holds_until_removed(raw_proxy: FaultProxy) -> None:
    with connect(raw_proxy, "echo") as sock:
        assert echo_rtt(sock) < 1  # the connection exists before the toxic
        raw_proxy.add_toxic("timeout", timeout=0)
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):  # no byte, no EOF: the connection stays open
            sock.recv(100)
        c = raw_proxy.counters()
        assert c["downstream"]["bytes_held"] == 4 and c["connections_active"] == 1
        assert raw_proxy.toxic_counters("timeout_downstream")["bytes_acted"] == 4
        raw_proxy.remove_toxic("timeout_downstream")
        sock.settimeout(5)
        assert recv_exactly(sock, 4) == b"held"  # held data flows again
        assert echo_rtt(sock) < 1
    assert raw_proxy.counters()["bytes_held"] == 0


def test_timeout_positive_closes(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("timeout", timeout=200)
    start = time.monotonic()
    with connect(raw_proxy, "echo") as sock:
        sock.sendall(b"lost")
        data, _ = recv_until_eof(sock)
    took = time.monotonic() - start
    assert data == b"" and 0.19 <= took <= 0.8, f"closed after {took:.3f}s with {data!r}"
    tc = raw_proxy.toxic_counters("timeout_downstream")
    assert tc["connections_acted"] == 1 and tc["first_acted_utc"] is not None


@pytest.mark.parametrize("stream,timeout_ms", [("upstream", 0), ("downstream", 200)])
def test_reset_peer_gives_connection_reset(raw_proxy: FaultProxy, stream: str, timeout_ms: int) -> None:
    with connect(raw_proxy, "echo") as sock:
        assert echo_rtt(sock) < 1
        raw_proxy.add_toxic("reset_peer", stream=stream, timeout=timeout_ms)
        start = time.monotonic()
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            recv_until_eof(sock)
        took = time.monotonic() - start
    assert timeout_ms / 1000 - 0.01 <= took <= timeout_ms / 1000 + 0.5
    c = poll(lambda: (c := raw_proxy.counters())["connections_closed"] == 1 and c, what="close")
    assert c["connections_reset"] == 1
    assert raw_proxy.toxic_counters(f"reset_peer_{stream}")["connections_acted"] == 1


def test_slicer_delivers_everything_in_many_reads(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("slicer", average_size=200, size_variation=50, delay=2000)
    with connect(raw_proxy) as sock:
        sock.sendall(b"send 10000 close\n")
        data, reads = recv_until_eof(sock)
    assert data == b"y" * 10000
    assert reads >= 10, f"only {reads} reads for 50 slices"
    assert raw_proxy.toxic_counters("slicer_downstream")["bytes_acted"] == 10000


def test_limit_data_closes_after_n_bytes(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("limit_data", bytes=1000)
    with connect(raw_proxy) as sock:
        sock.sendall(b"send 5000\n")
        data, _ = recv_until_eof(sock)
    assert data == b"y" * 1000
    c = poll(lambda: (c := raw_proxy.counters())["connections_closed"] == 1 and c, what="close")
    assert c["bytes_downstream"] == 1000 and c["bytes_held"] == 0
    assert raw_proxy.toxic_counters("limit_data_downstream")["connections_acted"] == 1


def test_toxicity_zero_never_one_always(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("reset_peer", name="never", toxicity=0.0, stream="upstream")
    for _ in range(5):
        with connect(raw_proxy, "echo") as sock:
            assert echo_rtt(sock) < 1
    never = raw_proxy.toxic_counters("never")
    assert never["connections_skipped"] == 5 and never["connections_applied"] == 0
    assert never["first_acted_mono"] is None
    raw_proxy.remove_toxic("never")
    raw_proxy.add_toxic("reset_peer", name="always", toxicity=1.0, stream="upstream")
    for _ in range(5):
        with connect(raw_proxy) as sock:
            with pytest.raises(ConnectionResetError):  # on the send if the RST is fast
                sock.sendall(b"echo\n")
                recv_until_eof(sock)
    always = raw_proxy.toxic_counters("always")
    assert always["connections_applied"] == 5 and always["connections_acted"] == 5


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_direction(raw_proxy: FaultProxy, upstream: Upstream, stream: str) -> None:
    raw_proxy.add_toxic("timeout", stream=stream, timeout=0)
    before = upstream.raw_received
    with connect(raw_proxy, "echo") as sock:
        sock.sendall(b"12345")
        if stream == "upstream":
            c = poll(lambda: (c := raw_proxy.counters())["upstream"]["bytes_held"] == 10 and c, what="held upstream")
            assert c["downstream"]["bytes_received"] == 0
            assert upstream.raw_received == before
        else:
            c = poll(lambda: (c := raw_proxy.counters())["downstream"]["bytes_held"] == 5 and c, what="held downstream")
            assert c["upstream"]["bytes_sent"] == 10 and c["upstream"]["bytes_held"] == 0
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(10)


def test_wait_toxic_acted_times_out_without_traffic(raw_proxy: FaultProxy) -> None:
    raw_proxy.add_toxic("latency", latency=10)
    with pytest.raises(TimeoutError, match="did not act on any traffic"):
        raw_proxy.wait_toxic_acted("latency_downstream", timeout=0.2)


def test_disable_refuses_and_closes_then_enable(raw_proxy: FaultProxy) -> None:
    port = raw_proxy.listen_port
    sock = connect(raw_proxy, "echo")
    try:
        assert echo_rtt(sock) < 1
        raw_proxy.enabled = False
        assert raw_proxy.enabled is False
        assert recv_until_eof(sock)[0] == b""  # existing connection closed
    finally:
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    raw_proxy.enabled = True
    assert raw_proxy.listen_port == port
    with connect(raw_proxy, "echo") as sock:
        assert echo_rtt(sock) < 1


def test_start_stop_leaves_nothing_behind(upstream: Upstream) -> None:
    before = {t.ident for t in threading.enumerate()}
    srv = ProxyServer().start()
    srv.create_proxy("named", f"localhost:{upstream.raw_port}", listen="localhost:0")  # resolver threads
    proxy = srv.create_proxy("p", f"127.0.0.1:{upstream.raw_port}")
    proxy.add_toxic("timeout", timeout=0)
    api_port, listen_port = srv.api_port, proxy.listen_port
    sock = connect(proxy, "echo")
    sock.sendall(b"held")
    poll(lambda: proxy.counters()["bytes_held"] == 4, what="held bytes")
    srv.stop()
    srv.stop()  # idempotent
    try:
        assert recv_until_eof(sock)[0] == b""
    finally:
        sock.close()
    poll(lambda: {t.ident for t in threading.enumerate()} == before, timeout=2,
         what=f"threads to end: {[t.name for t in threading.enumerate() if t.ident not in before]}")
    for port in (api_port, listen_port):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # free again
    with pytest.raises(RuntimeError, match="not running"):
        proxy.counters()


def test_websocket_held_then_released(http_proxy: FaultProxy) -> None:
    ws = websocket.create_connection(f"ws://{http_proxy.listen}/ws", timeout=5)
    try:
        ws.send("before")
        assert ws.recv() == "echo:before"
        http_proxy.add_toxic("timeout", timeout=0)
        ws.send("during")
        ws.settimeout(0.3)
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        http_proxy.remove_toxic("timeout_downstream")
        ws.settimeout(5)
        assert ws.recv() == "echo:during"
    finally:
        ws.close()


def test_deleting_a_proxy_leaves_no_task(server: ProxyServer, upstream: Upstream) -> None:
    def task_count(hub: object) -> int:
        return len(asyncio.all_tasks())

    poll(lambda: server.call(task_count) <= 2, what="idle server")  # the call's own task (+ aiohttp's)
    baseline = server.call(task_count)
    proxy = server.create_proxy("tasks", f"127.0.0.1:{upstream.raw_port}")
    proxy.add_toxic("timeout", timeout=5000)
    proxy.add_toxic("latency", stream="upstream", latency=50)
    socks = [connect(proxy, "echo") for _ in range(3)]
    try:
        poll(lambda: proxy.counters()["connections_active"] == 3, what="3 connections")
        assert server.call(task_count) >= baseline + 3 * 4  # 2 links x (reader + writer) each
        server.delete_proxy(proxy.name)
        poll(lambda: server.call(task_count) == baseline, what="tasks to end")
        for sock in socks:
            assert recv_until_eof(sock)[0] == b""
    finally:
        for sock in socks:
            sock.close()


def test_concurrent_toxic_changes_under_traffic(server: ProxyServer, upstream: Upstream) -> None:
    """Toxics added, updated and removed from two threads while traffic flows: afterwards no
    connection is stuck, nothing is held, no task is left and the loop logged no error.

    Bounded by work, not by time: the threads run until at least 12 connections carried an echo
    through the proxy and the two chaos threads made 200 changes between them (a deadline only
    catches a harness that cannot get there), so a loaded machine makes it slower, never different."""
    import random

    loop_errors: list[str] = []

    def install_handler(hub: object) -> int:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(str(ctx)))
        return len(asyncio.all_tasks())

    baseline = server.call(install_handler)
    proxy = server.create_proxy("stress", f"127.0.0.1:{upstream.raw_port}")
    stop = threading.Event()
    lock = threading.Lock()
    done = {"echoed_connections": 0, "changes": 0}
    api_errors: list[str] = []
    kinds = [("latency", {"latency": 5, "jitter": 3}), ("bandwidth", {"rate": 500}), ("slow_close", {"delay": 10}),
             ("timeout", {"timeout": 0}), ("timeout", {"timeout": 50}), ("reset_peer", {"timeout": 20}),
             ("slicer", {"average_size": 100, "size_variation": 30, "delay": 100}), ("limit_data", {"bytes": 3000})]

    def traffic(seed: int) -> None:
        rnd = random.Random(seed)
        while not stop.is_set():
            echoed = False
            try:
                with connect(proxy, "echo", timeout=0.5) as sock:
                    for _ in range(rnd.randint(1, 10)):
                        sock.sendall(b"z" * rnd.randint(1, 5000))
                        echoed = bool(sock.recv(65536)) or echoed
            except OSError:  # resets, closes and timeouts are the point here
                pass
            if echoed:  # bytes came back: the proxy accepted and relayed this connection
                with lock:
                    done["echoed_connections"] += 1

    def chaos(seed: int) -> None:
        from pytest_chaosdrill.proxy import ToxicExists, ToxicNotFound
        rnd = random.Random(seed)
        while not stop.is_set():
            kind, attrs = rnd.choice(kinds)
            name = f"{kind}{rnd.randint(0, 2)}"
            try:
                op = rnd.random()
                if op < 0.5:
                    proxy.add_toxic(kind, name=name, stream=rnd.choice(["upstream", "downstream"]),
                                    toxicity=rnd.random(), **attrs)
                elif op < 0.7:
                    proxy.update_toxic(name, toxicity=rnd.random())
                elif op < 0.95:
                    proxy.remove_toxic(name)
                else:
                    proxy.enabled = rnd.random() < 0.5
            except (ToxicNotFound, ToxicExists):
                pass
            except Exception as exc:  # anything else is a bug
                api_errors.append(repr(exc))
            with lock:
                done["changes"] += 1
            time.sleep(0.005)  # pacing only: lets traffic in between changes, no outcome depends on it

    threads = ([threading.Thread(target=traffic, args=(i,)) for i in range(3)]
               + [threading.Thread(target=chaos, args=(10 + i,)) for i in range(2)])
    try:
        for t in threads:
            t.start()
        try:
            poll(lambda: done["echoed_connections"] >= 12 and done["changes"] >= 200, timeout=60,
                 what="12 echoed connections and 200 toxic changes")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not any(t.is_alive() for t in threads), "a traffic or chaos thread did not end"
        server.reset()
        c = poll(lambda: (c := proxy.counters())["connections_active"] == 0 and c, timeout=30,
                 what="all connections closed")
        assert c["connections_opened"] >= done["echoed_connections"] >= 12 and c["bytes_held"] == 0
        assert api_errors == [] and loop_errors == []
    finally:
        server.delete_proxy(proxy.name)
        server.call(lambda hub: asyncio.get_running_loop().set_exception_handler(None))
    poll(lambda: server.call(lambda hub: len(asyncio.all_tasks())) <= baseline, timeout=30, what="tasks to end")


def test_connection_log_names_the_client_and_the_upstream_side(raw_proxy: FaultProxy) -> None:
    sock = connect(raw_proxy, "echo")
    try:
        echo_rtt(sock)
        me = "%s:%d" % sock.getsockname()[:2]
        log = poll(lambda: [c for c in raw_proxy.connections() if c["client"] == me], what="connection logged")
        (entry,) = log
        host, port = entry["upstream_local"].rsplit(":", 1)
        assert int(port) > 0 and entry["upstream_local"] != raw_proxy.listen and entry["opened_mono"] > 0
    finally:
        sock.close()
