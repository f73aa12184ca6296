"""The aiohttp application (REST, public and private WebSocket, control API on one port) and
:class:`VenueServer`, which runs it on its own thread and event loop."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Iterable, TypeVar

from aiohttp import web

from .auth import ApiKey
from .control import VenueControl, add_control_routes
from .conn import CLOSE_GOING_AWAY, Conn
from .core import VenueCore
from .rest import CORE_KEY, add_rest_routes, rest_middleware
from .wsloop import ws_private, ws_public

log = logging.getLogger(__name__)
T = TypeVar("T")



def build_app(core: VenueCore) -> web.Application:
    """The venue's aiohttp application around ``core``."""
    app = web.Application(middlewares=[rest_middleware])
    app[CORE_KEY] = core
    r = app.router
    add_rest_routes(app)
    r.add_get("/ws/v5/public", ws_public)
    r.add_get("/ws/v5/private", ws_private)
    add_control_routes(app, core)
    return app


async def run_ticker(core: VenueCore) -> None:
    """Call ``core.tick()`` every ``tick_ms`` (0 = never); skips missed ticks instead of bursting."""
    if core.tick_ms <= 0:
        return
    period = core.tick_ms / 1000
    next_t = time.monotonic() + period
    while True:
        await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        try:
            core.tick()
        except Exception:  # a bug in one tick must not silence the feed for the rest of the drill
            log.exception("venue tick failed")
        next_t += period
        if time.monotonic() - next_t > period:
            next_t = time.monotonic() + period


# -- the threaded server --------------------------------------------------------------------------

class VenueServer:
    """The venue simulator on its own thread and event loop.

    ``VenueServer(port=0).start()`` returns once the port is listening; ``stop()`` closes every
    socket, stops the loop and joins the thread. Usable as a context manager. ``keys``: the demo API
    keys private requests must be signed with (more can be added through the control API); with no key
    at all the venue does not authenticate (its own unit tests, the benchmark).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 7, tick_ms: int = 50,
                 keys: Iterable[ApiKey] = ()) -> None:
        self._host = host
        self._req_port = port
        self.core = VenueCore(seed=seed, tick_ms=tick_ms)
        for k in keys:
            self.core.auth.add(k)
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.control = VenueControl(self)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> "VenueServer":
        """Start serving; returns self once listening. Raises the bind error if it cannot listen."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("VenueServer already started (a stopped server cannot be restarted)")
            self._thread = threading.Thread(target=self._run, name=f"venue-{self._host}:{self._req_port}", daemon=True)
            self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"venue did not start listening within {timeout}s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # surfaces in start() when it happens before listening
            if not self._started.is_set():
                self._error = e
            else:
                log.exception("venue loop crashed")
        finally:
            self._started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(build_app(self.core), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        ticker: asyncio.Task | None = None
        try:
            site = web.TCPSite(runner, self._host, self._req_port, reuse_address=True)
            await site.start()
            self._port = runner.addresses[0][1]
            ticker = asyncio.get_running_loop().create_task(run_ticker(self.core), name="venue-ticker")
            self._started.set()
            await self._stopping.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
            conns: list[Conn] = list(self.core.conns.values())
            for c in conns:
                c.task.cancel()
            await asyncio.gather(*(c.ws.close(code=CLOSE_GOING_AWAY, message=b"venue stopping") for c in conns),
                                 return_exceptions=True)
            await runner.cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

    def stop(self, timeout: float = 10.0) -> None:
        """Close all sockets, stop the loop and join the thread. Idempotent."""
        with self._lock:
            thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # loop closed meanwhile
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"venue thread did not stop within {timeout}s")

    def __enter__(self) -> "VenueServer":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- in-loop calls ---------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """Run ``fn(*args)`` on the venue loop (where the core lives) and return its result."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive() or loop.is_closed():
            raise RuntimeError("venue is not running (call start() first)")
        if threading.current_thread() is thread:
            return fn(*args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as e:
                    fut.set_exception(e)
        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    # -- addresses -------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The interface the venue listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("venue not started: no port yet")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``."""
        return f"http://{self._host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """The REST base URL (same as :attr:`base_url`)."""
        return self.base_url

    @property
    def ws_public_url(self) -> str:
        """The public WebSocket URL."""
        return f"ws://{self._host}:{self.port}/ws/v5/public"

    @property
    def ws_private_url(self) -> str:
        """The private WebSocket URL."""
        return f"ws://{self._host}:{self.port}/ws/v5/private"

    @property
    def control_url(self) -> str:
        """The control API base URL (``.../_venue``)."""
        return f"{self.base_url}/_venue"
