"""The aiohttp application (REST, public and private WebSocket, control API on one port) and
:class:`VenueServer`, which runs it on its own thread and event loop."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from typing import Any, Awaitable, Callable, TypeVar

from aiohttp import web

from .control import VenueControl, add_control_routes
from .conn import CLOSE_GOING_AWAY, Conn
from .ws import ws_private, ws_public
from .core import CORE_KEY, VenueCore
from ..witness import S_EXP_TIME_PASSED
from .faults import stamp
from .ledger import utc_iso
from .market import INSTRUMENTS, fmt
from .orders import now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")

RECON_PATHS = frozenset({"/api/v5/account/positions", "/api/v5/trade/orders-pending"})
MAX_BATCH = 20
# OKX honours the expTime header on place / place-multiple / amend order requests (amend is not simulated).
EXP_TIME_PATHS = frozenset({"/api/v5/trade/order", "/api/v5/trade/batch-orders"})
MSG_EXP_TIME_PASSED = "The expTime can't be earlier than the current system time. Please adjust the expTime and try again."
# Request-scoped facts the handlers copy onto order entries (RequestKey where aiohttp has it, >= 3.11).
REQ_META: Any = (web.RequestKey("chaosdrill_request", dict) if hasattr(web, "RequestKey")  # type: ignore[attr-defined]
                 else "chaosdrill_request")


def okx(data: list[Any], code: str = "0", msg: str = "", status: int = 200) -> web.Response:
    """An OKX v5 envelope ``{"code", "msg", "data"}`` as a JSON response."""
    return web.json_response({"code": code, "msg": msg, "data": data}, status=status)


class _BadRequest(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.text())
    except ValueError:
        raise _BadRequest("50002", "JSON syntax error") from None


def _core(request: web.Request) -> VenueCore:
    return request.app[CORE_KEY]


# -- REST middleware: faults, latency, witness ----------------------------------------------------

@web.middleware
async def rest_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Applies REST faults to ``/api/v5/`` requests and records each one in the witness ledger."""
    if not request.path.startswith("/api/v5/"):
        return await handler(request)
    core = _core(request)
    core.counters["rest_requests"] += 1
    # When the request arrived (headers complete), before any fault holds it: a partition that
    # delivers a request late shows here, not at processing time.
    meta: dict[str, Any] = {"received_mono": time.monotonic(), "received_utc": utc_iso(),
                            "accessTs": request.headers.get("OK-ACCESS-TIMESTAMP")}
    order_req = request.method == "POST" and request.path in EXP_TIME_PATHS
    if order_req:
        meta["expTime"] = request.headers.get("expTime")
    request[REQ_META] = meta
    latency = core.rest_latency()
    if latency is not None:
        # Held until the delay elapses or the fault is cleared: clearing it releases the requests it
        # holds at once (a venue that recovers processes what queued up meanwhile).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + latency.params["ms"] / 1000
        while latency.active and loop.time() < deadline:
            await asyncio.sleep(min(0.01, deadline - loop.time()))
    if order_req:
        # The venue "gets to" a request only once all of it has arrived: a body the network held back
        # past the deadline is as late as a request that arrived late as a whole (aiohttp keeps the body
        # for the handler).
        await request.read()
    expired, early = _check_exp_time(core, meta) if order_req else (False, None)
    fault = core.http_fault() if early is None else None
    resp: web.StreamResponse
    if early is not None:
        resp = early
    elif fault is not None:
        status, _ = fault
        core.counters["http_429" if status == 429 else "http_503"] += 1
        resp = (okx([], "50011", "Too Many Requests", 429) if status == 429
                else okx([], "50001", "Service temporarily unavailable", 503))
    else:
        try:
            resp = await handler(request)
        except _BadRequest as e:
            resp = okx([], e.code, str(e), 400)
        except web.HTTPException as e:
            resp = okx([], str(e.status), e.reason, e.status)
        except Exception as e:  # a venue bug: answer and witness it rather than drop the request
            log.exception("venue REST handler failed: %s %s", request.method, request.path)
            resp = okx([], "50000", f"venue internal error: {type(e).__name__}: {e}", 500)
    # OK-ACCESS-KEY identifies the caller; sign and passphrase are secrets and are never recorded.
    extra: dict[str, Any] = dict(meta, expired=bool(expired), okx_code=_okx_code(resp))
    if order_req:
        extra["clOrdIds"] = await _cl_ord_ids(request)
    elif request.path == "/api/v5/trade/order":
        extra["clOrdId"] = request.query.get("clOrdId")
    core.ledger.append("request", method=request.method, path=request.path, query=request.query_string,
                       status=resp.status, recon_read=request.method == "GET" and request.path in RECON_PATHS,
                       apiKey=request.headers.get("OK-ACCESS-KEY"), **extra)
    # Write the answer now so that a fault lands only once its answer is really on the wire.
    began = stamp()
    try:
        await resp.prepare(request)
        await resp.write_eof()
    except ConnectionError:
        # The client is gone (it gave up on a request the network delivered late): the request was
        # processed and witnessed all the same; there is no one left to answer.
        log.debug("venue REST answer not delivered, client gone: %s %s", request.method, request.path)
        return resp
    if fault is not None:
        core.faults.land(fault[1], began)
    if latency is not None:
        latency.detail["delayed_requests"] = latency.detail.get("delayed_requests", 0) + 1
        core.faults.land(latency, began)
    return resp


def _check_exp_time(core: VenueCore, meta: dict[str, Any]) -> tuple[bool, web.Response | None]:
    """OKX: "the request will not be processed if the current system time of the server is after the
    expTime". Checked when the venue gets to the request (after any latency it added).

    Returns (expired, the early answer or None to process the request).
    """
    raw = meta.get("expTime")
    if raw is None:
        return False, None
    try:
        exp_ms = int(str(raw))
    except ValueError:
        return False, okx([], "51000", "Parameter expTime error", 400)
    meta["expTime"] = exp_ms
    if now_ms() <= exp_ms:
        return False, None
    core.counters["expired_requests"] += 1
    return True, okx([], S_EXP_TIME_PASSED, MSG_EXP_TIME_PASSED)


def _okx_code(resp: web.StreamResponse) -> str | None:
    """The ``code`` of an OKX envelope answer (None for anything else)."""
    body = getattr(resp, "body", None)
    if not isinstance(body, (bytes, bytearray)):
        return None
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return None if code is None else str(code)


async def _cl_ord_ids(request: web.Request) -> list[str]:
    """The clOrdIds an order request carried (the body is cached: reading it again is free)."""
    try:
        body = json.loads(await request.text())
    except (ValueError, ConnectionError, RuntimeError):
        return []
    items = body if isinstance(body, list) else [body]
    return [str(o["clOrdId"]) for o in items if isinstance(o, dict) and o.get("clOrdId")]


# -- REST handlers --------------------------------------------------------------------------------

def _order_meta(request: web.Request) -> dict[str, Any]:
    """The request facts copied onto an order's ledger entry."""
    meta = request.get(REQ_META) or {}
    return {k: meta.get(k) for k in ("expTime", "accessTs", "received_mono", "received_utc")}


def _single(res: dict[str, Any]) -> web.Response:
    """The OKX answer for one order result: code 0, or 1 with the result's own sCode."""
    ok = res["sCode"] == "0"
    return okx([res], "0" if ok else "1", "" if ok else "All operations failed")


async def place_order(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/order."""
    return _single(_core(request).engine.place(await _json_body(request), request=_order_meta(request)))


async def batch_orders(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/batch-orders (two legs are tagged A/B; the partial-fill fault acts here)."""
    core = _core(request)
    body = await _json_body(request)
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_BATCH:
        raise _BadRequest("51000", f"Parameter error: body must be a JSON array of 1-{MAX_BATCH} orders")
    two_leg = len(body) == 2
    partial = core.pending_partial_fill() if two_leg else None
    results = []
    for i, leg_body in enumerate(body):
        leg = ("A", "B")[i] if two_leg else None
        reject = None
        # The fault acts only when leg A really filled: otherwise the batch is not a partial fill
        # and the fault keeps waiting for the next two-leg batch.
        if partial is not None and leg == "B" and results[0]["sCode"] == "0":
            reject = ("51008", "Order failed. Insufficient USDT margin in account")
            core.faults.end(partial)
        results.append(core.engine.place(leg_body, leg=leg, force_reject=reject, request=_order_meta(request)))
    if reject is None:
        partial = None
    n_ok = sum(r["sCode"] == "0" for r in results)
    code, msg = ("0", "") if n_ok == len(results) else (("2", "Some operations failed") if n_ok else ("1", "All operations failed"))
    resp = okx(results, code, msg)
    if partial is not None:
        began = stamp()
        await resp.prepare(request)
        await resp.write_eof()
        core.faults.land(partial, began, legA=results[0], legB=results[1])
    return resp


async def cancel_order(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/cancel-order."""
    return _single(_core(request).engine.cancel(await _json_body(request)))


async def get_order(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/order by ordId or clOrdId."""
    q = request.query
    o = _core(request).engine.find(q.get("ordId"), q.get("clOrdId"))
    if o is None or (q.get("instId") and q.get("instId") != o.inst_id):
        return okx([], "51603", "Order does not exist")
    return okx([o.to_okx()])


async def orders_pending(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/orders-pending (a reconciliation read)."""
    return okx([o.to_okx() for o in _core(request).engine.pending(request.query.get("instId") or None)])


async def fills(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/fills, newest first."""
    return okx([f.to_okx() for f in _core(request).engine.fills(request.query.get("instId") or None)])


async def positions(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/positions (a reconciliation read)."""
    return okx(_core(request).engine.positions_okx(request.query.get("instId") or None))


async def balance(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/balance."""
    return okx(_core(request).engine.balance_okx())


async def ticker(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/ticker."""
    inst_id = request.query.get("instId")
    if inst_id not in INSTRUMENTS:
        return okx([], "51001", f"Instrument ID {inst_id} does not exist")
    st = _core(request).market.state[inst_id]
    return okx([{"instId": inst_id, "instType": "SWAP", "last": fmt(st.last_px), "lastSz": str(st.last_sz),
                 "bidPx": fmt(st.best_bid), "bidSz": str(st.bids[0][1]), "askPx": fmt(st.best_ask),
                 "askSz": str(st.asks[0][1]), "ts": str(now_ms())}])


async def public_time(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/public/time."""
    return okx([{"ts": str(now_ms())}])


def build_app(core: VenueCore) -> web.Application:
    """The venue's aiohttp application around ``core``."""
    app = web.Application(middlewares=[rest_middleware])
    app[CORE_KEY] = core
    r = app.router
    r.add_post("/api/v5/trade/order", place_order)
    r.add_post("/api/v5/trade/batch-orders", batch_orders)
    r.add_post("/api/v5/trade/cancel-order", cancel_order)
    r.add_get("/api/v5/trade/order", get_order)
    r.add_get("/api/v5/trade/orders-pending", orders_pending)
    r.add_get("/api/v5/trade/fills", fills)
    r.add_get("/api/v5/account/positions", positions)
    r.add_get("/api/v5/account/balance", balance)
    r.add_get("/api/v5/market/ticker", ticker)
    r.add_get("/api/v5/public/time", public_time)
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
    socket, stops the loop and joins the thread. Usable as a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int = 7, tick_ms: int = 50) -> None:
        self._host = host
        self._req_port = port
        self.core = VenueCore(seed=seed, tick_ms=tick_ms)
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
