"""The ``partition`` toxic over real loopback TCP: a cut that starts on a matching request, fails new
connections, holds what open connections send, and delivers it late, after the cut ended."""
from __future__ import annotations

import socket
import threading
import time
from typing import Callable, Iterator

import pytest

from pytest_chaosdrill.proxy import FaultProxy, ProxyServer
from pytest_chaosdrill.proxy.toxics import ToxicError, make_toxic


class Recorder:
    """A TCP server that records every chunk it receives: (monotonic time, connection number, bytes)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.chunks: list[tuple[float, int, bytes]] = []
        self.lock = threading.Lock()
        self.n = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.n += 1
            threading.Thread(target=self._serve, args=(conn, self.n), daemon=True).start()

    def _serve(self, conn: socket.socket, n: int) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.chunks.append((time.monotonic(), n, data))

    def received(self) -> bytes:
        with self.lock:
            return b"".join(c for _, _, c in self.chunks)

    def first(self, marker: bytes) -> float | None:
        with self.lock:
            return next((t for t, _, c in self.chunks if marker in c), None)


def poll(cond: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def rec() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.sock.close()


@pytest.fixture
def proxy(rec: Recorder) -> Iterator[FaultProxy]:
    with ProxyServer() as server:
        yield server.create_proxy("p", upstream=f"127.0.0.1:{rec.port}")


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection((proxy.listen_host, proxy.listen_port), timeout=5)


def _fails(sock: socket.socket) -> bool:
    """True when the proxy cut this connection (reset or closed before any byte)."""
    try:
        sock.sendall(b"NEW during cut\n")
        return sock.recv(1) == b""
    except OSError:
        return True


def test_partition_holds_the_matching_request_and_delivers_it_after_a_later_connection(
        proxy: FaultProxy, rec: Recorder) -> None:
    a = _connect(proxy)
    a.sendall(b"GET /before HTTP/1.1\r\n\r\n")
    poll(lambda: rec.first(b"/before"), what="pre-cut bytes passing through")
    proxy.add_toxic("partition", name="cut", stream="upstream", cut=400, deliver_after=400,
                    match="POST /api/v5/trade/order")
    a.sendall(b"GET /still-armed HTTP/1.1\r\n\r\n")  # no match yet: passes
    poll(lambda: rec.first(b"/still-armed"), what="armed toxic passing non-matching bytes")
    assert proxy.toxic_counters("cut")["first_acted_mono"] is None

    t_sent = time.monotonic()
    a.sendall(b"POST /api/v5/trade/order HTTP/1.1\r\n\r\n{\"clOrdId\":\"o11\"}")
    landed = proxy.wait_toxic_acted("cut", timeout=5)
    assert landed["extra"]["matched"].startswith("POST /api/v5/trade/order")
    try:
        b: socket.socket | None = _connect(proxy)
    except OSError:  # the proxy's RST can arrive while connect() still checks the handshake: it failed
        b = None
    assert b is None or _fails(b), "a new connection during the cut must fail"
    a.sendall(b"GET /queued-behind HTTP/1.1\r\n\r\n")  # sent during the cut on the held connection

    cut_end = landed["extra"]["cut_ends_mono"]
    poll(lambda: time.monotonic() > cut_end + 0.02, what="the cut to end")
    c = _connect(proxy)  # after the cut: a new connection works at once
    c.sendall(b"GET /api/v5/trade/order?clOrdId=o11 HTTP/1.1\r\n\r\n")
    t_query = poll(lambda: rec.first(b"?clOrdId=o11"), what="the post-cut query")
    t_late = poll(lambda: rec.first(b"\"o11\""), what="the held order", timeout=5)
    t_queued = poll(lambda: rec.first(b"/queued-behind"), what="bytes queued behind the held order")

    assert t_query < t_late <= t_queued, "held bytes arrive after the query on the new connection, in order"
    assert t_late - t_sent >= 0.75, f"held {t_late - t_sent:.3f}s, expected cut 0.4 s + deliver_after 0.4 s"
    x = proxy.toxic_counters("cut")["extra"]
    assert x["connections_held"] == 1 and x["connections_cut"] >= 1
    assert x["chunks_held"] >= 2 and x["chunks_delivered_late"] >= 2
    assert x["bytes_delivered_late"] == x["bytes_held"] > 0
    assert proxy.counters()["connections_refused"] >= 1
    for s in (a, b, c):
        if s is not None:
            s.close()


def test_partition_holds_a_close_and_removal_releases_at_once(proxy: FaultProxy, rec: Recorder) -> None:
    a = _connect(proxy)
    poll(lambda: proxy.counters()["connections_active"] == 1, what="the connection to be proxied")
    proxy.add_toxic("partition", name="cut", stream="upstream", cut=0, deliver_after=0)  # no match: cut now
    a.sendall(b"held until removed")
    poll(lambda: proxy.toxic_counters("cut")["extra"]["chunks_held"] == 1, what="the chunk being held")
    a.close()  # the client gives up (as aiohttp does on its timeout): its bytes are still delivered
    time.sleep(0.2)  # nothing may arrive while the cut lasts (cut=0: until removed)
    assert b"held until removed" not in rec.received()
    proxy.remove_toxic("cut")
    poll(lambda: b"held until removed" in rec.received(), what="delivery on removal")


def test_partition_attribute_validation() -> None:
    t = make_toxic("partition", stream="upstream", attributes={"match": "POST "})
    assert t.attributes == {"cut": 3000, "deliver_after": 1500, "match": "POST ", "match_method": "",
                            "match_path": "", "match_json": ""}
    with pytest.raises(ToxicError, match="match_json is not JSON"):
        make_toxic("partition", attributes={"match_json": "{reduceOnly: false}"})
    with pytest.raises(ToxicError, match="either match"):
        make_toxic("partition", attributes={"match": "POST ", "match_method": "POST"})
    with pytest.raises(ToxicError, match="must be a string"):
        make_toxic("partition", attributes={"match": 5})
    with pytest.raises(ToxicError, match="must be a number"):
        make_toxic("partition", attributes={"cut": "3000"})
