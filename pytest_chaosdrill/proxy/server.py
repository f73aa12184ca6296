"""Thread-side API: ``ProxyServer`` runs the proxies and the HTTP API on its own event loop thread;
``FaultProxy`` is a thread-safe handle on one proxy."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, TypeVar

from aiohttp import web

from .api import build_app
from .core import Hub, format_address
from .toxics import Toxic

T = TypeVar("T")
CALL_TIMEOUT = 30.0
POLL_INTERVAL = 0.01


class ProxyServer:
    """Hosts many fault proxies and a Toxiproxy-style HTTP API on one event loop thread."""

    def __init__(self, api_host: str = "127.0.0.1", api_port: int = 0) -> None:
        self.api_host = api_host
        self.api_port = api_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hub: Hub | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "ProxyServer":
        """Start the loop thread and the HTTP API; return self. Raises if the API cannot listen."""
        with self._lock:
            if self._thread is not None:
                return self
            loop = asyncio.new_event_loop()
            ready: Future[None] = Future()
            thread = threading.Thread(target=self._run, args=(loop, ready), name="chaosdrill-proxy", daemon=True)
            thread.start()
            try:
                ready.result(timeout=CALL_TIMEOUT)
            except BaseException:
                thread.join(CALL_TIMEOUT)
                raise
            self._loop, self._thread = loop, thread
            return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: Future[None]) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # report to start() instead of dying silently
            ready.set_exception(exc)
            self._close_loop(loop)
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            self._close_loop(loop)

    def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self._teardown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            # Joins the resolver threads (getaddrinfo) so that stop() leaves no thread behind.
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def _startup(self) -> None:
        self._hub = Hub()
        self._runner = web.AppRunner(build_app(self._hub), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.api_host, self.api_port)
        await site.start()
        server = site._server  # aiohttp does not expose the bound port otherwise
        assert server is not None and server.sockets
        self.api_port = server.sockets[0].getsockname()[1]

    async def _teardown(self) -> None:
        if self._hub is not None:
            await self._hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
        # Whatever is left (link tasks cancelled a moment ago, client handlers) must end here.
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.gather(*rest, return_exceptions=True)

    def stop(self) -> None:
        """Close every proxy, connection and the API, and join the thread. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            loop.call_soon_threadsafe(loop.stop)
            thread.join(CALL_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError("chaosdrill proxy thread did not stop within 30 s")
            self._loop = self._thread = None

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._thread is not None

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:8474``."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "") else self.api_host
        return f"http://{format_address(host, self.api_port)}"

    # -- calls into the loop -------------------------------------------------------------
    def call(self, fn: Callable[[Hub], T | Awaitable[T]]) -> T:
        """Run ``fn(hub)`` on the loop thread and return its result (awaited if a coroutine)."""
        loop = self._loop
        if loop is None or self._hub is None:
            raise RuntimeError("ProxyServer is not running: call start() first")
        if threading.current_thread() is self._thread:
            raise RuntimeError("ProxyServer's blocking API cannot be called from its own loop thread")
        hub = self._hub

        async def runner() -> T:
            result = fn(hub)
            if asyncio.iscoroutine(result):
                return await result
            return result  # type: ignore[return-value]

        return asyncio.run_coroutine_threadsafe(runner(), loop).result(CALL_TIMEOUT)

    # -- proxies -------------------------------------------------------------------------
    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                     tls: dict[str, str] | None = None) -> "FaultProxy":
        """Create and enable a proxy listening on ``listen`` ("host:port", port 0 = free); with
        ``tls={"cert": PEM file of key and chain}`` its listener speaks TLS (proxy/tls.py)."""
        self.call(lambda hub: hub.create_proxy(name, upstream, listen, tls=tls))
        return FaultProxy(self, name)

    def proxies(self) -> dict[str, "FaultProxy"]:
        """Handles on every proxy, by name."""
        return {name: FaultProxy(self, name) for name in self.call(lambda hub: list(hub.proxies))}

    def delete_proxy(self, name: str) -> None:
        """Close the proxy's listener and connections and forget it."""
        self.call(lambda hub: hub.delete_proxy(name))

    def reset(self) -> None:
        """Remove every toxic and re-enable every proxy (POST /reset)."""
        self.call(lambda hub: hub.reset())


class FaultProxy:
    """Thread-safe handle on one proxy of a running ``ProxyServer``."""

    def __init__(self, server: ProxyServer, name: str) -> None:
        self._server = server
        self.name = name

    def __repr__(self) -> str:
        return f"FaultProxy({self.name!r})"

    def _info(self) -> dict[str, Any]:
        return self._server.call(lambda hub: hub.get(self.name).to_json())

    @property
    def listen_host(self) -> str:
        """Host the proxy listens on (as bound)."""
        return self._server.call(lambda hub: hub.get(self.name).listen_host)

    @property
    def listen_port(self) -> int:
        """Port the proxy listens on (the real one when 0 was asked)."""
        return self._server.call(lambda hub: hub.get(self.name).listen_port)

    @property
    def listen(self) -> str:
        """The address clients connect to, "host:port"."""
        return self._info()["listen"]

    @property
    def upstream(self) -> str:
        """Where the proxy connects to, "host:port"."""
        return self._info()["upstream"]

    @property
    def enabled(self) -> bool:
        """Whether the proxy listens and passes traffic."""
        return self._info()["enabled"]

    @enabled.setter
    def enabled(self, value: bool) -> None:
        """False closes the listener and every connection; True listens again on the same port."""
        self._server.call(lambda hub: hub.update_proxy(self.name, enabled=bool(value)))

    def add_toxic(self, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: Any) -> Toxic:
        """Add a toxic (applies to existing and new connections); name defaults to ``<type>_<stream>``."""
        return self._server.call(lambda hub: hub.add_toxic(
            self.name, type, stream=stream, toxicity=toxicity, name=name, attributes=attributes).spec.copy())

    def update_toxic(self, name: str, toxicity: float | None = None, **attributes: Any) -> Toxic:
        """Change some attributes (and/or the toxicity) of a toxic."""
        return self._server.call(lambda hub: hub.update_toxic(self.name, name, attributes, toxicity).spec.copy())

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; data it held flows on."""
        self._server.call(lambda hub: hub.get(self.name).remove_toxic(name))

    def toxics(self) -> list[Toxic]:
        """Snapshots of the current toxics, in the order they act."""
        return self._server.call(lambda hub: [st.spec.copy() for st in hub.get(self.name).toxics.values()])

    def counters(self) -> dict[str, Any]:
        """Connection, byte and per-toxic counters (see docs/proxy.md)."""
        return self._server.call(lambda hub: hub.get(self.name).counters())

    def connections(self) -> list[dict[str, Any]]:
        """Every connection opened so far (the newest 20000): ``client`` (who opened it), ``upstream_local``
        (the address the upstream saw it come from), ``opened_mono``."""
        return self._server.call(lambda hub: [dict(c) for c in hub.get(self.name).connection_log])

    def toxic_counters(self, name: str) -> dict[str, Any]:
        """Counters of one toxic (ToxicNotFound if it is not installed)."""
        return self._server.call(lambda hub: hub.get(self.name).get_toxic(name).counters.to_dict())

    def wait_toxic_acted(self, name: str, timeout: float) -> dict[str, Any]:
        """Poll until toxic ``name`` has acted on real traffic; return its counters.

        Raises TimeoutError (with the proxy's traffic counters in the message) otherwise.
        """
        return wait_acted(lambda: self.toxic_counters(name), lambda: self.counters(), self.name, name, timeout)


def wait_acted(get_toxic: Callable[[], dict[str, Any]], get_proxy: Callable[[], dict[str, Any]],
               proxy: str, toxic: str, timeout: float) -> dict[str, Any]:
    """Shared polling loop of ``FaultProxy`` and ``ProxyClient`` ``wait_toxic_acted``."""
    deadline = time.monotonic() + timeout
    while True:
        counters = get_toxic()
        if counters.get("first_acted_mono") is not None:
            return counters
        if time.monotonic() >= deadline:
            p = get_proxy()
            raise TimeoutError(
                f"toxic {toxic!r} on proxy {proxy!r} did not act on any traffic within {timeout:g} s "
                f"(toxic: applied to {counters.get('connections_applied')} connection(s), skipped "
                f"{counters.get('connections_skipped')}; proxy: {p.get('connections_opened')} connection(s) opened, "
                f"{p.get('bytes_upstream')} B upstream, {p.get('bytes_downstream')} B downstream)")
        time.sleep(POLL_INTERVAL)
