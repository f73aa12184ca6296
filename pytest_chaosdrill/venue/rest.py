"""The venue's OKX v5 REST side: the middleware (REST faults, latency, ``expTime``, authentication,
the witness ``request`` entry) and the handlers of every ``/api/v5/`` endpoint.

Routing lives in :mod:`pytest_chaosdrill.venue.server` (:func:`add_rest_routes` is called from there).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from .auth import R_LIVE_KEY_IN_DEMO, AuthError
from .core import VenueCore
from .witness import S_EXP_TIME_PASSED
from .faults import stamp
from .ledger import utc_iso
from .market import INSTRUMENTS, fmt
from .orders import now_ms

log = logging.getLogger(__name__)

RECON_PATHS = frozenset({"/api/v5/account/positions", "/api/v5/trade/orders-pending"})
MAX_BATCH = 20
# OKX honours the expTime header on place / place-multiple / amend order requests (amend is not simulated).
EXP_TIME_PATHS = frozenset({"/api/v5/trade/order", "/api/v5/trade/batch-orders"})
MSG_EXP_TIME_PASSED = "The expTime can't be earlier than the current system time. Please adjust the expTime and try again."
# Request-scoped facts the handlers copy onto order entries (RequestKey where aiohttp has it, >= 3.11).
REQ_META: Any = (web.RequestKey("chaosdrill_request", dict) if hasattr(web, "RequestKey")  # type: ignore[attr-defined]
                 else "chaosdrill_request")
CORE_KEY: web.AppKey[VenueCore] = web.AppKey("venue_core", VenueCore)
# OKX's private REST: everything under these prefixes needs a signed request (public ones need none).
PRIVATE_PREFIXES = ("/api/v5/account/", "/api/v5/trade/", "/api/v5/asset/", "/api/v5/users/")
DEMO_HEADER = "x-simulated-trading"


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
    private = request.path.startswith(PRIVATE_PREFIXES)
    if private:
        # The interlock's fact: a private request without the demo header comes from a bot configured
        # for real money, whatever the venue answers it.
        meta["simulated"] = request.headers.get(DEMO_HEADER) == "1"
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
            refused = await _authenticate(core, request, meta) if private else None
            resp = refused if refused is not None else await handler(request)
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


async def _authenticate(core: VenueCore, request: web.Request, meta: dict[str, Any]) -> web.Response | None:
    """OKX's REST authentication (HTTP 401 with OKX's code) or None to go on.

    The demo header is checked after the key: the venue's keys are all demo keys, and OKX answers a demo
    key used without ``x-simulated-trading: 1`` with 50101.
    """
    if not core.auth.keys:
        return None
    body = await request.text()
    try:
        core.auth.check_rest(request.method, request.raw_path, body, request.headers)
    except AuthError as e:
        meta["auth"] = e.code
        return okx([], e.code, e.msg, 401)
    if not meta["simulated"]:
        meta["auth"] = R_LIVE_KEY_IN_DEMO[0]
        return okx([], *R_LIVE_KEY_IN_DEMO, status=401)
    meta["auth"] = "0"
    return None


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



def add_rest_routes(app: web.Application) -> None:
    """Route every REST endpoint the venue serves."""
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
