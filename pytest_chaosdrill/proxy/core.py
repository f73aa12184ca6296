"""The data path: asyncio TCP proxies whose connections run their bytes through toxics.

Everything here runs on one event loop (owned by ``server.ProxyServer``) and is not thread-safe.
Each accepted connection has two links, one per direction ("upstream" = client -> upstream,
"downstream" = upstream -> client). A link has a reader task that reads eagerly from its source
and a writer task that applies the link's toxics in the order they were added, so latency is
measured from when a chunk arrived (pipelined, as Toxiproxy) and held bytes are countable.
With no toxic applying, the reader writes straight through (no queue hop): that is the fast path.
"""
from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import struct
import time
from collections import deque
from typing import Any

from .counters import DirectionCounters, ProxyCounters, ToxicCounters
from .errors import BadRequest, ListenError, ProxyExists, ProxyNotFound, ToxicExists, ToxicNotFound
from .tls import server_context
from .toxics import REGISTRY as TOXICS
from .toxics import Chunk, LinkClosed, Toxic, ToxicError, make_toxic, validate_attributes, validate_toxicity

READ_SIZE = 64 * 1024
# Per link: above this the reader stops reading, so TCP backpressure reaches the sender
# instead of the proxy buffering without bound while a toxic holds data.
MAX_BUFFER = 4 * 1024 * 1024
UPSTREAM_CONNECT_TIMEOUT = 5.0
REMOVED_TOXICS_KEPT = 100
#: connections whose client and upstream addresses the proxy remembers (a drill opens a few hundred)
CONNECTION_LOG_KEPT = 20000


def parse_address(value: str, what: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:port"); raise BadRequest with a clear message."""
    if not isinstance(value, str) or ":" not in value:
        raise BadRequest(f"{what} must be 'host:port', got {value!r}")
    host, _, port_s = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port = int(port_s)
    except ValueError:
        raise BadRequest(f"{what} port must be a number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise BadRequest(f"{what} port out of range: {value!r}")
    return host or "0.0.0.0", port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def format_address(host: str, port: int) -> str:
    """"host:port", with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ToxicState:
    """A toxic installed on a proxy: its current definition, counters and a change signal."""

    def __init__(self, spec: Toxic, counters: ToxicCounters | None = None) -> None:
        self.spec = spec
        self.counters = counters or ToxicCounters(spec.name, spec.type, spec.stream)
        self.removed = False
        self.changed = asyncio.Event()
        # partition: when the cut started (None: armed, waiting for its match) and the links it holds.
        self.cut_start: float | None = None
        self.holding: set["Link"] = set()
        self.readers: dict["Link", Any] = {}  # partition's match_*: each link's HTTP request reader
        if spec.type == "partition":
            self.counters.extra.update(cut_started_mono=None, cut_started_utc=None, cut_ends_mono=None,
                                       release_mono=None, matched=None, matched_request=None, connections_held=0, chunks_held=0,
                                       bytes_held=0, connections_cut=0, chunks_delivered_late=0,
                                       bytes_delivered_late=0, released_mono=None)
            if not any(spec.attributes.get(k) for k in ("match", "match_method", "match_path", "match_json")):
                self.start_cut(time.monotonic(), None)

    # -- partition ---------------------------------------------------------------------
    def start_cut(self, now: float, chunk: bytes | None) -> None:
        """The partition begins now (on ``chunk``, the first bytes that matched, if any)."""
        from .counters import utc_now_iso
        self.cut_start = now
        a = self.spec.attributes
        self.counters.extra.update(
            cut_started_mono=now, cut_started_utc=utc_now_iso(),
            cut_ends_mono=now + a["cut"] / 1000.0 if a["cut"] else None,
            release_mono=now + (a["cut"] + a["deliver_after"]) / 1000.0 if a["cut"] else None,
            matched=chunk[:120].decode("latin-1") if chunk is not None else None)

    def cut_active(self, now: float) -> bool:
        """True while the partition cuts (new connections fail, bytes of open ones are held)."""
        if self.cut_start is None or self.removed:
            return False
        cut = self.spec.attributes["cut"]
        return cut == 0 or now < self.cut_start + cut / 1000.0

    def release_at(self) -> float:
        """When held bytes are delivered: ``deliver_after`` after the cut ended (inf: cut until removed)."""
        a = self.spec.attributes
        if self.cut_start is None or a["cut"] == 0:
            return float("inf")
        return self.cut_start + (a["cut"] + a["deliver_after"]) / 1000.0

    def notify(self) -> None:
        """Wake every link waiting on this toxic (it was updated or removed)."""
        old, self.changed = self.changed, asyncio.Event()
        old.set()

    def acted(self, link: "Link", nbytes: int) -> None:
        """Record that this toxic changed ``nbytes`` of ``link``'s traffic (or its connection)."""
        self.counters.note(nbytes)
        if self.counters not in link.acted:
            link.acted.add(self.counters)
            self.counters.connections_acted += 1


class Link:
    """One direction of one proxied connection."""

    def __init__(self, conn: "Connection", stream: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, stats: DirectionCounters) -> None:
        self.conn = conn
        self.stream = stream
        self.reader = reader
        self.writer = writer
        self.stats = stats
        self.queue: deque[tuple[bytes | None, float]] = deque()  # None marks EOF
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.space = asyncio.Event()
        self.busy = False  # the writer holds a chunk that left the queue
        self.applies: dict[str, bool] = {}  # toxic name -> toxicity roll for this connection
        self.timers: dict[str, asyncio.Task[None]] = {}  # timeout toxics with timeout > 0
        self.acted: set[ToxicCounters] = set()
        self.limit_passed: dict[ToxicCounters, int] = {}
        self.next_send = 0.0  # bandwidth pacing
        self.toxic_free = True
        self.done = False
        self.rng = random.Random()
        self.tasks: list[asyncio.Task[None]] = []
        self.received = self.sent = self.dropped = 0  # this link only; stats sums all links

    def count_received(self, n: int) -> None:
        self.received += n
        self.stats.bytes_received += n

    def count_sent(self, n: int) -> None:
        self.sent += n
        self.stats.bytes_sent += n

    def count_dropped(self, n: int) -> None:
        self.dropped += n
        self.stats.bytes_dropped += n

    def pending(self) -> int:
        """Bytes read from the source and neither delivered nor dropped yet (held back)."""
        return self.received - self.sent - self.dropped

    # -- toxic bookkeeping -------------------------------------------------------------
    def roll(self, st: ToxicState) -> None:
        """Decide once per connection whether ``st`` applies (Toxiproxy's toxicity)."""
        hit = self.rng.random() < st.spec.toxicity
        self.applies[st.spec.name] = hit
        if hit:
            st.counters.connections_applied += 1
        else:
            st.counters.connections_skipped += 1
        self._restart_timer(st)
        self.toxic_free = not any(self.applies.values())

    def forget(self, name: str) -> None:
        """The toxic was removed: stop applying it and cancel its timer."""
        self.applies.pop(name, None)
        timer = self.timers.pop(name, None)
        if timer:
            timer.cancel()
        self.toxic_free = not any(self.applies.values())

    def _restart_timer(self, st: ToxicState) -> None:
        old = self.timers.pop(st.spec.name, None)
        if old:
            old.cancel()
        if self.applies.get(st.spec.name):
            TOXICS[st.spec.type].on_start(self, st)

    def _active(self) -> list[ToxicState]:
        return [st for st in self.conn.proxy.toxics.values()
                if st.spec.stream == self.stream and self.applies.get(st.spec.name)]

    def still(self, st: ToxicState) -> bool:
        """``st`` still applies to this link (not removed, and its toxicity roll hit)."""
        return not st.removed and bool(self.applies.get(st.spec.name))

    # -- tasks ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the reader and writer tasks."""
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._read_loop()), loop.create_task(self._write_loop())]

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                self.count_received(len(data))
                if self.toxic_free and not self.queue and not self.busy:
                    self.writer.write(data)
                    self.count_sent(len(data))
                    await self.writer.drain()
                    continue
                self.queue.append((data, time.monotonic()))
                self.queued_bytes += len(data)
                self.wake.set()
                while self.queued_bytes > MAX_BUFFER:
                    self.space.clear()
                    await self.space.wait()
        except (ConnectionError, OSError) as exc:
            self.conn.close(reset=isinstance(exc, ConnectionResetError), reason=f"{self.stream} read: {exc!r}")
            return
        self.queue.append((None, time.monotonic()))
        self.wake.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                while not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                data, t_arr = self.queue.popleft()
                self.busy = True
                if data is not None:
                    self.queued_bytes -= len(data)
                    if self.queued_bytes <= MAX_BUFFER:
                        self.space.set()
                    await self._deliver(data, t_arr)
                else:
                    await self._finish()
                    return
                self.busy = False
        except LinkClosed:
            return
        except (ConnectionError, OSError) as exc:
            self.conn.close(reset=isinstance(exc, ConnectionResetError), reason=f"{self.stream} write: {exc!r}")

    async def wait_change(self, st: ToxicState, timeout: float | None) -> bool:
        """Wait until ``st`` changes (True) or ``timeout`` seconds pass (False)."""
        if timeout is None:
            await st.changed.wait()
            return True
        if timeout <= 0:
            return False
        try:
            await asyncio.wait_for(st.changed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _deliver(self, data: bytes, t_arr: float) -> None:
        """Run one chunk through the link's toxics (each type's ``on_data``, in the order they were
        added), then write what it became."""
        chunk = Chunk(data, t_arr)
        for st in self._active():
            if self.still(st) and not await TOXICS[st.spec.type].on_data(self, st, chunk):
                break
        pieces, rate, close_after = chunk.pieces, chunk.rate, chunk.close_after
        for piece, pause in pieces:
            if pause > 0:
                await asyncio.sleep(pause)
            if rate:
                now = time.monotonic()
                self.next_send = max(now, self.next_send) + len(piece) / (rate * 1000.0)
                if self.next_send > now:
                    await asyncio.sleep(self.next_send - now)
            self.writer.write(piece)
            self.count_sent(len(piece))
            await self.writer.drain()
        if close_after is not None:
            self.conn.close(reason=f"limit_data toxic {close_after.spec.name!r}")
            raise LinkClosed()

    async def _finish(self) -> None:
        """The source sent EOF: close the destination after the toxics that affect closing."""
        for st in self._active():
            if self.still(st):
                await TOXICS[st.spec.type].on_eof(self, st)
        self.done = True
        # As Toxiproxy, EOF closes the destination fully (no half-close): the other link then
        # sees EOF on that socket, delivers what it still holds and closes the other side.
        self.writer.transport.close()
        self.conn.link_done()


def _set_rst(writer: asyncio.StreamWriter) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


class Connection:
    """A proxied client connection: the client socket, the upstream socket and two links."""

    def __init__(self, proxy: "ProxyRuntime", client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.client_writer = client[1]
        self.upstream_writer = upstream[1]
        self.links = {
            "upstream": Link(self, "upstream", client[0], upstream[1], proxy.stats.upstream),
            "downstream": Link(self, "downstream", upstream[0], client[1], proxy.stats.downstream),
        }
        self.closed = False

    def start(self) -> None:
        """Roll the proxy's toxics for this connection and start both links."""
        for st in self.proxy.toxics.values():
            self.links[st.spec.stream].roll(st)
        for link in self.links.values():
            link.start()

    def link_done(self) -> None:
        """One link delivered its EOF; close once both have."""
        if all(link.done for link in self.links.values()):
            self.close(reason="both sides closed")

    def close(self, reset: bool = False, reason: str = "") -> None:
        """Close both sockets (RST if ``reset``), drop what is still held, stop the link tasks."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for writer in (self.client_writer, self.upstream_writer):
            if reset:
                _set_rst(writer)
                writer.transport.abort()
            else:
                writer.transport.close()
        for link in self.links.values():
            for timer in link.timers.values():
                timer.cancel()
            for task in link.tasks:
                if task is not current:
                    task.cancel()
            link.count_dropped(link.pending())
        self.proxy.connections.discard(self)
        self.proxy.stats.connections_closed += 1
        if reset:
            self.proxy.stats.connections_reset += 1


def _address(addr: Any) -> str | None:
    """``host:port`` of a socket address (IPv4 or IPv6 tuple), None when there is none."""
    return f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) and len(addr) >= 2 else None


class ProxyRuntime:
    """One named proxy: its listener, connections, toxics and counters."""

    def __init__(self, name: str, listen: str, upstream: str, tls: dict[str, str] | None = None) -> None:
        self.name = name
        self.tls = tls                         # {"cert": PEM file}: TLS on the listener (proxy/tls.py)
        self.ssl = server_context(tls)
        self.listen_host, self.listen_port = parse_address(listen, "listen")
        self.upstream_host, self.upstream_port = parse_address(upstream, "upstream")
        self.enabled = False
        self.server: asyncio.base_events.Server | None = None
        self.toxics: dict[str, ToxicState] = {}
        self.connections: set[Connection] = set()
        self.pending: set[asyncio.Task[Any]] = set()
        self.stats = ProxyCounters()
        self.removed_toxics: deque[dict[str, Any]] = deque(maxlen=REMOVED_TOXICS_KEPT)
        #: who opened each connection (client address) and its upstream socket's local address (the peer
        #: the upstream sees): joins the upstream's own record of a request to the client that sent it
        self.connection_log: deque[dict[str, Any]] = deque(maxlen=CONNECTION_LOG_KEPT)

    @property
    def listen(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    @property
    def upstream(self) -> str:
        return format_address(self.upstream_host, self.upstream_port)

    # -- lifecycle -----------------------------------------------------------------------
    async def enable(self) -> None:
        """Listen (ListenError if the address cannot be bound)."""
        if self.enabled:
            return
        try:
            # One listening socket, like Toxiproxy: a name such as "localhost" would otherwise
            # get one socket per address family, each with its own port when port 0 is asked.
            host = self.listen_host
            if not _is_ip(host):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, self.listen_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
                host = infos[0][4][0]
            self.server = await asyncio.start_server(self._on_client, host, self.listen_port, ssl=self.ssl)
        except OSError as exc:
            raise ListenError(f"proxy {self.name!r} cannot listen on {self.listen}: {exc}") from exc
        # Report the address really bound, and keep the port picked for port 0 so that
        # re-enabling reuses it.
        self.listen_host, self.listen_port = host, self.server.sockets[0].getsockname()[1]
        self.enabled = True

    async def disable(self) -> None:
        """Stop listening (new connections are refused) and close every existing connection."""
        self.enabled = False
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for task in list(self.pending):
            task.cancel()
        for conn in list(self.connections):
            conn.close(reason="proxy disabled")

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if not self.enabled or task is None:
            self.stats.connections_refused += 1
            writer.transport.abort()
            return
        cut = self._cut_by_partition()
        if cut is not None:
            # A partition is cutting: the connection fails at once (RST), the upstream never sees it.
            cut.counters.note(0)
            cut.counters.extra["connections_cut"] += 1
            self.stats.connections_refused += 1
            _set_rst(writer)
            writer.transport.abort()
            return
        self.pending.add(task)
        try:
            up = await asyncio.wait_for(
                asyncio.open_connection(self.upstream_host, self.upstream_port), UPSTREAM_CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            self.stats.connections_refused += 1
            writer.transport.abort()
            return
        except asyncio.CancelledError:
            # Only disable() cancels this handler. Returning instead of re-raising: Python 3.11's
            # StreamReaderProtocol calls task.exception() on its handler, which raises (and logs
            # a traceback) for a cancelled task.
            writer.transport.abort()
            return
        finally:
            self.pending.discard(task)
        if not self.enabled:
            self.stats.connections_refused += 1
            writer.transport.abort()
            up[1].transport.abort()
            return
        conn = Connection(self, (reader, writer), up)
        self.connection_log.append({"client": _address(writer.get_extra_info("peername")),
                                    "upstream_local": _address(up[1].get_extra_info("sockname")),
                                    "opened_mono": time.monotonic()})
        self.connections.add(conn)
        self.stats.connections_opened += 1
        conn.start()

    def _cut_by_partition(self) -> ToxicState | None:
        """The partition toxic cutting new connections now (after its toxicity roll), if any."""
        now = time.monotonic()
        for st in self.toxics.values():
            if st.spec.type == "partition" and st.cut_active(now) and random.random() < st.spec.toxicity:
                return st
        return None

    # -- toxics --------------------------------------------------------------------------
    def add_toxic(self, toxic: Toxic) -> ToxicState:
        """Install a validated toxic on this proxy and on its open connections."""
        if toxic.name in self.toxics:
            raise ToxicExists(f"toxic already exists: {toxic.name!r} on proxy {self.name!r}")
        st = ToxicState(toxic)
        self.toxics[toxic.name] = st
        for conn in list(self.connections):
            conn.links[toxic.stream].roll(st)
        return st

    def get_toxic(self, name: str) -> ToxicState:
        """The installed toxic ``name`` (ToxicNotFound otherwise)."""
        try:
            return self.toxics[name]
        except KeyError:
            raise ToxicNotFound(f"toxic not found: {name!r} on proxy {self.name!r}") from None

    def update_toxic(self, name: str, attributes: dict[str, Any], toxicity: Any = None) -> ToxicState:
        """Overlay attributes (and toxicity) on an installed toxic."""
        st = self.get_toxic(name)
        attrs = validate_attributes(st.spec.type, attributes, base=st.spec.attributes)
        tox = st.spec.toxicity if toxicity is None else validate_toxicity(toxicity)
        st.spec = Toxic(st.spec.name, st.spec.type, st.spec.stream, tox, attrs)
        # As Toxiproxy, an update restarts the toxic on every link: re-roll, restart timers.
        for conn in list(self.connections):
            conn.links[st.spec.stream].roll(st)
        st.notify()
        return st

    def remove_toxic(self, name: str) -> None:
        """Uninstall a toxic; links it held resume, its final counters are kept."""
        st = self.get_toxic(name)
        del self.toxics[name]
        st.removed = True
        for conn in list(self.connections):
            conn.links[st.spec.stream].forget(name)
        st.notify()
        self.removed_toxics.append(st.counters.to_dict())

    def counters(self) -> dict[str, Any]:
        """Proxy, direction and toxic counters as one JSON-able dict."""
        data = self.stats.to_dict()
        data["proxy"] = self.name
        data["enabled"] = self.enabled
        data["toxics"] = {name: st.counters.to_dict() for name, st in self.toxics.items()}
        data["removed_toxics"] = [dict(d) for d in self.removed_toxics]
        return data

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's JSON shape for a proxy."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [st.spec.to_json() for st in self.toxics.values()],
            **({"tls": True} if self.tls else {}),
        }


class Hub:
    """All proxies of one server, by name; the operations both the Python and HTTP APIs use."""

    def __init__(self) -> None:
        self.proxies: dict[str, ProxyRuntime] = {}
        # Lifecycle operations await (bind, close); without this, two concurrent enables or
        # creates interleave and the second one fails to bind or duplicates a name.
        self.lifecycle = asyncio.Lock()

    def get(self, name: str) -> ProxyRuntime:
        """The proxy ``name`` (ProxyNotFound otherwise)."""
        try:
            return self.proxies[name]
        except KeyError:
            raise ProxyNotFound(f"proxy not found: {name!r}") from None

    async def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True,
                           tls: dict[str, str] | None = None) -> ProxyRuntime:
        if not isinstance(name, str) or not name or "/" in name:
            raise BadRequest(f"missing required field: name (a non-empty string without '/'), got {name!r}")
        if not upstream:
            raise BadRequest("missing required field: upstream")
        async with self.lifecycle:
            if name in self.proxies:
                raise ProxyExists(f"proxy already exists: {name!r}")
            proxy = ProxyRuntime(name, listen or "127.0.0.1:0", upstream, tls)
            if enabled:
                await proxy.enable()
            self.proxies[name] = proxy
            return proxy

    async def update_proxy(self, name: str, *, enabled: bool | None = None, listen: str | None = None,
                           upstream: str | None = None) -> ProxyRuntime:
        async with self.lifecycle:
            proxy = self.get(name)
            new_listen = parse_address(listen, "listen") if listen else (proxy.listen_host, proxy.listen_port)
            new_up = parse_address(upstream, "upstream") if upstream else (proxy.upstream_host, proxy.upstream_port)
            want = proxy.enabled if enabled is None else bool(enabled)
            moved = (new_listen != (proxy.listen_host, proxy.listen_port)
                     or new_up != (proxy.upstream_host, proxy.upstream_port))
            if moved or not want:
                # As Toxiproxy, changing the addresses restarts the proxy and drops its connections.
                await proxy.disable()
                proxy.listen_host, proxy.listen_port = new_listen
                proxy.upstream_host, proxy.upstream_port = new_up
            if want:
                await proxy.enable()
            return proxy

    async def delete_proxy(self, name: str) -> None:
        async with self.lifecycle:
            proxy = self.get(name)
            del self.proxies[name]
            await proxy.disable()

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        async with self.lifecycle:
            for proxy in list(self.proxies.values()):
                for tname in list(proxy.toxics):
                    proxy.remove_toxic(tname)
                await proxy.enable()

    def add_toxic(self, proxy_name: str, type_: str, *, stream: str = "downstream", toxicity: Any = 1.0,
                  name: str | None = None, attributes: dict[str, Any] | None = None) -> ToxicState:
        proxy = self.get(proxy_name)
        try:
            toxic = make_toxic(type_, stream=stream, toxicity=toxicity, name=name, attributes=attributes)
        except ToxicError as exc:
            raise BadRequest(str(exc)) from None
        return proxy.add_toxic(toxic)

    def update_toxic(self, proxy_name: str, name: str, attributes: dict[str, Any], toxicity: Any = None) -> ToxicState:
        try:
            return self.get(proxy_name).update_toxic(name, attributes, toxicity)
        except ToxicError as exc:
            raise BadRequest(str(exc)) from None

    async def close(self) -> None:
        async with self.lifecycle:
            for proxy in list(self.proxies.values()):
                await proxy.disable()
            self.proxies.clear()
