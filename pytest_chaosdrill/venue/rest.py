"""The venue's OKX v5 REST side: the middleware (REST faults, latency, ``expTime``, authentication,
the witness ``request`` entry) and the handlers of every ``/api/v5/`` endpoint.

Routing lives in :mod:`pytest_chaosdrill.venue.server` (:func:`add_rest_routes` is called from there).
"""
from __future__ import annotations

import asyncio
import json
from decimal import ROUND_DOWN, Decimal
import logging
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from .auth import R_KEY_INVALID, R_LIVE_KEY_IN_DEMO, R_TS_EXPIRED, AuthError
from .core import VenueCore
from .witness import S_EXP_TIME_PASSED
from .faults import stamp
from .ledger import utc_iso
from .market import INSTRUMENTS, fmt
from .orders import (MSG_MARGIN, S_EMPTY, S_MARGIN, S_NO_INST, S_NO_ORDER, S_NO_POSITION, S_PARAM, Order,
                     missing_param)
from .prints import bar_ms

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
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "ANY")


def okx(data: list[Any], code: str = "0", msg: str = "", status: int = 200, **extra: Any) -> web.Response:
    """An OKX v5 envelope ``{"code", "msg", "data"}`` (plus ``extra`` top-level fields) as a JSON response."""
    return web.json_response({"code": code, "msg": msg, "data": data, **extra}, status=status)


def _gateway_times(request: web.Request) -> dict[str, str]:
    """OKX's ``inTime`` / ``outTime`` of trade answers: when the gateway got the request and answers it,
    Unix microseconds."""
    meta = request.get(REQ_META) or {}
    out = time.time_ns() // 1000
    return {"inTime": str(meta.get("in_us", out)), "outTime": str(out)}


class _BadRequest(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code


async def _json_body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        raise _BadRequest("50000", "Body for POST request cannot be empty.")
    try:
        return json.loads(text)
    except ValueError:
        raise _BadRequest("50002", "JSON syntax error") from None


def core_of(request: web.Request) -> VenueCore:
    """The venue core serving this request."""
    return request.app[CORE_KEY]


# -- REST middleware: faults, latency, witness ----------------------------------------------------

@web.middleware
async def rest_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Applies REST faults to ``/api/v5/`` requests and records each one in the witness ledger."""
    if not request.path.startswith("/api/v5/"):
        return await handler(request)
    core = core_of(request)
    core.counters["rest_requests"] += 1
    # When the request arrived (headers complete), before any fault holds it: a partition that
    # delivers a request late shows here, not at processing time.
    meta: dict[str, Any] = {"received_mono": time.monotonic(), "received_utc": utc_iso(), "in_us": time.time_ns() // 1000,
                            "accessTs": request.headers.get("OK-ACCESS-TIMESTAMP")}
    # The TCP peer (host:port): which connection, so a harness that knows who opened it (the fault proxy's
    # connection log) can tell the instances of a service apart.
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    meta["peer"] = f"{peer[0]}:{peer[1]}" if peer else None
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
    recon_read = request.method == "GET" and request.path in RECON_PATHS
    hold = core.recon_hold() if recon_read else None
    if hold is not None:
        # The answer to a reconciliation read leaves ``ms`` after the read arrived (sooner if the hold
        # is cleared): a service that clears its latch only on the answers is seen latched meanwhile.
        # ``holding`` (reads held right now) is how a schedule step aligned to a reconciliation read sees
        # one outstanding (docs/schedules.md); ``holding_since_mono``: when the oldest of them arrived.
        loop = asyncio.get_running_loop()
        until = loop.time() + hold.params["ms"] / 1000
        hold.detail["holding"] = hold.detail.get("holding", 0) + 1
        hold.detail.setdefault("holding_since_mono", meta["received_mono"])
        hold.detail.setdefault("first_held_path", request.path)
        try:
            while hold.active and loop.time() < until:
                await asyncio.sleep(min(0.005, until - loop.time()))
        finally:
            hold.detail["holding"] -= 1
            if not hold.detail["holding"]:
                hold.detail.pop("holding_since_mono", None)
        meta["held_ms"] = round((time.monotonic() - meta["received_mono"]) * 1000, 1)
    if order_req:
        # The venue "gets to" a request only once all of it has arrived: a body the network held back
        # past the deadline is as late as a request that arrived late as a whole (aiohttp keeps the body
        # for the handler).
        await request.read()
    # The gateway authenticates first (a request signed outside the window is refused whatever its
    # expTime: a skewed venue clock shows as 50102, not as expired orders), then judges expTime.
    refused = await _authenticate(core, request, meta) if private else None
    expired, early = _check_exp_time(core, meta) if order_req and refused is None else (False, refused)
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
            # OKX's table: trade-rule codes (51xxx) come with HTTP 200, parameter errors with 400
            resp = okx([], e.code, str(e), 200 if e.code.startswith("51") and e.code != S_PARAM else 400)
        except web.HTTPException as e:
            resp = okx([], str(e.status), e.reason, e.status)
        except Exception as e:  # a venue bug: answer and witness it rather than drop the request
            log.exception("venue REST handler failed: %s %s", request.method, request.path)
            resp = okx([], "50000", f"venue internal error: {type(e).__name__}: {e}", 500)
    # OK-ACCESS-KEY identifies the caller; sign and passphrase are secrets and are never recorded.
    extra: dict[str, Any] = dict({k: v for k, v in meta.items() if k != "in_us"}, expired=bool(expired),
                                 okx_code=_okx_code(resp))
    if order_req:
        extra["clOrdIds"] = await _cl_ord_ids(request)
    elif request.path == "/api/v5/trade/order":
        extra["clOrdId"] = request.query.get("clOrdId")
    core.ledger.append("request", method=request.method, path=request.path, query=request.query_string,
                       status=resp.status, recon_read=recon_read,
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
    if hold is not None:
        hold.detail["held_reads"] = hold.detail.get("held_reads", 0) + 1
        core.faults.land(hold, began)
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
        if e.code == R_TS_EXPIRED[0]:
            core.count_skew_refusal("refused_requests")
        return okx([], e.code, e.msg, 401)
    refusal = core.reauth_refused()
    if refusal is not None and refusal.params["mechanism"] == "key_revoked":
        # The session-termination fault revoked the key: OKX answers it as a key it does not know.
        refusal.detail["refused_rest"] = refusal.detail.get("refused_rest", 0) + 1
        meta["auth"] = R_KEY_INVALID[0]
        return okx([], *R_KEY_INVALID, status=401)
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
    if core.clock.ms() <= exp_ms:
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
    return {k: meta.get(k) for k in ("expTime", "accessTs", "received_mono", "received_utc", "peer")}


def _single(request: web.Request, res: dict[str, Any]) -> web.Response:
    """The OKX answer for one order result: code 0, or 1 with the result's own sCode."""
    ok = res["sCode"] == "0"
    return okx([res], "0" if ok else "1", "" if ok else "All operations failed", **_gateway_times(request))


def _multi(request: web.Request, results: list[dict[str, Any]]) -> web.Response:
    """The OKX answer for a batch: 0 all succeeded, 2 some, 1 none."""
    n_ok = sum(r["sCode"] == "0" for r in results)
    code, msg = ("0", "") if n_ok == len(results) else (("2", "Some operations failed") if n_ok else ("1", "All operations failed"))
    return okx(results, code, msg, **_gateway_times(request))


def _need(q: Any, *names: str) -> None:
    """OKX's 50014 for a missing required parameter."""
    for n in names:
        if q.get(n) in (None, ""):
            raise _BadRequest(S_EMPTY, f"Parameter {n} can not be empty.")


def _inst(inst_id: Any) -> str:
    if inst_id not in INSTRUMENTS:
        raise _BadRequest(S_NO_INST, f"Instrument ID {inst_id} does not exist")  # OKX answers it with HTTP 400 too
    return str(inst_id)


def _inst_type(q: Any) -> bool:
    """Whether an ``instType`` filter lets the venue's SWAPs through (51000 on an unknown type)."""
    t = q.get("instType")
    if t in (None, ""):
        return True
    if t not in INST_TYPES:
        raise _BadRequest(S_PARAM, "Parameter instType error")
    return t == "SWAP"


def _limit(q: Any, default: int = 100, most: int = 100) -> int:
    try:
        n = int(q.get("limit") or default)
    except ValueError:
        raise _BadRequest(S_PARAM, "Parameter limit error") from None
    return max(1, min(n, most))


async def _list_body(request: web.Request) -> list[Any]:
    body = await _json_body(request)
    if not isinstance(body, list) or not 1 <= len(body) <= MAX_BATCH:
        raise _BadRequest(S_PARAM, f"Parameter error: body must be a JSON array of 1-{MAX_BATCH} objects")
    return body


async def place_order(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/order."""
    body = await _json_body(request)
    bad = missing_param(body)
    if bad is not None:
        raise _BadRequest(*bad)
    return _single(request, core_of(request).engine.place(body, request=_order_meta(request)))


async def batch_orders(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/batch-orders (two legs are tagged A/B; the partial-fill fault acts here)."""
    core = core_of(request)
    body = await _list_body(request)
    for o in body:  # OKX checks the whole request before placing any of it
        bad = missing_param(o)
        if bad is not None:
            raise _BadRequest(*bad)
    two_leg = len(body) == 2
    partial = core.pending_partial_fill() if two_leg else None
    results = []
    reject = None
    for i, leg_body in enumerate(body):
        leg = ("A", "B")[i] if two_leg else None
        reject = None
        # The fault acts only when leg A really filled and left exposure to contain: a rejected leg A,
        # or one that left the venue flat, is not the partial fill the drill is about (its checks would
        # have nothing to judge), so the fault keeps waiting for the next two-leg batch.
        if partial is not None and leg == "B" and results[0]["sCode"] == "0" and core.engine.exposure() > 0:
            reject = (S_MARGIN, MSG_MARGIN)
            core.faults.end(partial)
        results.append(core.engine.place(leg_body, leg=leg, force_reject=reject, request=_order_meta(request)))
    if reject is None:
        partial = None
    resp = _multi(request, results)
    if partial is not None:
        began = stamp()
        await resp.prepare(request)
        await resp.write_eof()
        core.faults.land(partial, began, legA=results[0], legB=results[1])
    return resp


def _on_orders(op: str, batch: bool) -> Handler:
    """A handler applying ``engine.<op>`` (``cancel`` / ``amend``) to one order object (``instId``
    required) or to a batch of 1–20."""
    async def handler(request: web.Request) -> web.StreamResponse:
        fn = getattr(core_of(request).engine, op)
        if batch:
            return _multi(request, [fn(o) for o in await _list_body(request)])
        body = await _json_body(request)
        _need(body if isinstance(body, dict) else {}, "instId")
        return _single(request, fn(body))
    return handler


cancel_order = _on_orders("cancel", batch=False)          # POST trade/cancel-order
cancel_batch_orders = _on_orders("cancel", batch=True)    # POST trade/cancel-batch-orders
amend_order = _on_orders("amend", batch=False)            # POST trade/amend-order (newSz / newPx)
amend_batch_orders = _on_orders("amend", batch=True)      # POST trade/amend-batch-orders


async def close_position(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/trade/close-position: a reduce-only market order for the whole net position."""
    core = core_of(request)
    body = await _json_body(request)
    body = body if isinstance(body, dict) else {}
    _need(body, "instId", "mgnMode")
    inst_id = _inst(body["instId"])
    pos = core.engine.pos(inst_id)
    if pos == 0:
        return okx([], S_NO_POSITION, "Position does not exist")
    order = {"instId": inst_id, "tdMode": body["mgnMode"], "side": "sell" if pos > 0 else "buy", "ordType": "market",
             "sz": fmt(abs(pos)), "reduceOnly": True, "clOrdId": body.get("clOrdId") or ""}
    res = core.engine.place(order, request=_order_meta(request))
    if res["sCode"] != "0":
        return okx([], res["sCode"], res["sMsg"])
    return okx([{"instId": inst_id, "posSide": "net", "clOrdId": res["clOrdId"], "tag": ""}])


async def get_order(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/order by ordId or clOrdId (the latest order of a reused clOrdId)."""
    q = request.query
    _need(q, "instId")
    if not q.get("ordId") and not q.get("clOrdId"):
        raise _BadRequest("51003", "Either client order ID or order ID is required")
    o = core_of(request).engine.find(q.get("ordId"), q.get("clOrdId"))
    if o is None or q.get("instId") != o.inst_id:
        return okx([], S_NO_ORDER, "Order does not exist")
    return okx([o.to_okx(o.last_fill)])


def _order_list(orders: list[Order], q: Any) -> list[dict[str, Any]]:
    if not _inst_type(q):
        return []
    types = set(str(q.get("ordType")).split(",")) if q.get("ordType") else None
    out = [o.to_okx(o.last_fill) for o in orders
           if (types is None or o.ord_type in types) and q.get("state") in (None, "", o.state)]
    return out[:_limit(q)]


async def orders_pending(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/orders-pending (a reconciliation read)."""
    q = request.query
    return okx(_order_list(core_of(request).engine.pending(q.get("instId") or None), q))


async def orders_history(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/orders-history and orders-history-archive (final orders; ``instType`` required)."""
    q = request.query
    _need(q, "instType")
    return okx(_order_list(core_of(request).engine.history(q.get("instId") or None), q))


async def fills(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/trade/fills and fills-history, newest first."""
    q = request.query
    if request.path.endswith("fills-history"):
        _need(q, "instType")
    if not _inst_type(q):
        return okx([])
    found = [f.to_okx() for f in core_of(request).engine.fills(q.get("instId") or None)
             if q.get("ordId") in (None, "", f.ord_id)]
    return okx(found[:_limit(q)])


async def positions(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/positions: ``instId`` a comma list (up to 10), ``instType`` filter (a
    reconciliation read)."""
    q = request.query
    if not _inst_type(q):
        return okx([])
    ids = {i for i in str(q.get("instId") or "").split(",") if i} or None
    if ids is not None and len(ids) > 10:
        raise _BadRequest(S_PARAM, "Parameter instId error")
    return okx(core_of(request).engine.positions_okx(ids))


async def balance(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/balance (``ccy`` filter: USDT is the only currency)."""
    data = core_of(request).engine.balance_okx()
    ccys = set(str(request.query.get("ccy") or "").split(",")) - {""}
    if ccys:
        for d in data:
            d["details"] = [x for x in d["details"] if x["ccy"] in ccys]
    return okx(data)


async def account_config(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/config (single-currency margin account, net position mode)."""
    key = request.headers.get("OK-ACCESS-KEY") or ""
    return okx([{"uid": "44705892343619584", "mainUid": "44705892343619584", "acctLv": "2", "acctStpMode": "cancel_maker",
                 "posMode": "net_mode", "autoLoan": False, "greeksType": "PA", "level": "Lv1", "levelTmp": "",
                 "ctIsoMode": "automatic", "mgnIsoMode": "automatic", "spotOffsetType": "", "roleType": "0",
                 "traderInsts": [], "spotRoleType": "0", "spotTraderInsts": [], "opAuth": "0", "kycLv": "2",
                 "label": "chaosdrill", "ip": "", "perm": "read_only,trade", "liquidationGear": "-1",
                 "enableSpotBorrow": False, "spotBorrowAutoRepay": False, "type": "0", "settleCcy": "USDT",
                 "settleCcyList": ["USDT"], "apiKey": key}])


async def set_leverage(request: web.Request) -> web.StreamResponse:
    """POST /api/v5/account/set-leverage (``instId`` + ``lever`` + ``mgnMode``)."""
    core = core_of(request)
    body = await _json_body(request)
    body = body if isinstance(body, dict) else {}
    _need(body, "lever", "mgnMode")
    if body.get("mgnMode") not in ("cross", "isolated"):
        raise _BadRequest(S_PARAM, "Parameter mgnMode error")
    inst_id = _inst(body.get("instId"))
    try:
        lever = int(str(body["lever"]))
    except ValueError:
        raise _BadRequest(S_PARAM, "Parameter lever error") from None
    if not 1 <= lever <= INSTRUMENTS[inst_id].max_lever:
        return okx([], "51039", f"Leverage can't exceed {INSTRUMENTS[inst_id].max_lever}")
    core.engine.set_leverage(inst_id, lever)
    return okx([{"lever": str(lever), "mgnMode": body["mgnMode"], "instId": inst_id, "posSide": "net"}])


async def leverage_info(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/leverage-info (``instId`` comma list, ``mgnMode``)."""
    q = request.query
    _need(q, "instId", "mgnMode")
    engine = core_of(request).engine
    return okx([{"instId": i, "mgnMode": q["mgnMode"], "posSide": "net", "lever": str(engine.leverage[_inst(i)])}
                for i in str(q["instId"]).split(",")])


async def max_size(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/max-size and max-avail-size: contracts the available margin buys."""
    q = request.query
    _need(q, "instId", "tdMode")
    engine = core_of(request).engine
    out = []
    for i in str(q["instId"]).split(","):
        inst = INSTRUMENTS[_inst(i)]
        px = Decimal(str(q["px"])) if q.get("px") else core_of(request).market.state[i].mid
        n = max(Decimal(0), engine.available()) * engine.leverage[i] / (inst.ct_val * px)
        n = fmt((n / inst.lot_sz).to_integral_value(ROUND_DOWN) * inst.lot_sz)
        out.append({"instId": i, "ccy": inst.settle_ccy, "maxBuy": n, "maxSell": n} if request.path.endswith("max-size")
                   else {"instId": i, "availBuy": n, "availSell": n})
    return okx(out)


async def trade_fee(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/account/trade-fee (``instType`` required): the venue charges no fee."""
    _need(request.query, "instType")
    return okx([{"category": "1", "delivery": "", "exercise": "", "instType": request.query["instType"], "level": "Lv1",
                 "maker": "0", "taker": "0", "makerU": "0", "takerU": "0", "makerUSDC": "0", "takerUSDC": "0",
                 "ruleType": "normal", "ts": str(core_of(request).clock.ms()), "fiat": []}])


def _ticker(core: VenueCore, inst_id: str) -> dict[str, str]:
    st = core.market.state[inst_id]
    last = fmt(st.last_px)
    return {"instType": "SWAP", "instId": inst_id, "last": last, "lastSz": str(st.last_sz), "askPx": fmt(st.best_ask),
            "askSz": str(st.asks[0][1]), "bidPx": fmt(st.best_bid), "bidSz": str(st.bids[0][1]), "open24h": last,
            "high24h": last, "low24h": last, "volCcy24h": "0", "vol24h": "0", "sodUtc0": last, "sodUtc8": last,
            "ts": str(core.clock.ms())}


async def ticker(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/ticker."""
    _need(request.query, "instId")
    return okx([_ticker(core_of(request), _inst(request.query.get("instId")))])


async def tickers(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/tickers (``instType`` required)."""
    _need(request.query, "instType")
    core = core_of(request)
    return okx([_ticker(core, i) for i in sorted(INSTRUMENTS)] if _inst_type(request.query) else [])


async def books(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/books (the venue's book is DEPTH levels deep)."""
    q = request.query
    _need(q, "instId")
    st = core_of(request).market.state[_inst(q.get("instId"))]
    n = _limit({"limit": q.get("sz")}, default=1, most=400)
    return okx([{"asks": [[fmt(px), str(sz), "0", "1"] for px, sz in st.asks[:n]],
                 "bids": [[fmt(px), str(sz), "0", "1"] for px, sz in st.bids[:n]], "ts": str(core_of(request).clock.ms())}])


async def trades(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/trades and history-trades: recent prints, newest first."""
    q = request.query
    _need(q, "instId")
    return okx(core_of(request).prints.trades_okx(_inst(q.get("instId")), _limit(q, default=100, most=500)))


async def candles(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/candles and history-candles."""
    q = request.query
    _need(q, "instId")
    core = core_of(request)
    inst_id = _inst(q.get("instId"))
    period = bar_ms(str(q.get("bar") or "1m"))
    if period is None:
        raise _BadRequest(S_PARAM, "Parameter bar error")
    try:
        after = int(q["after"]) if q.get("after") else None
        before = int(q["before"]) if q.get("before") else None
    except ValueError:
        raise _BadRequest(S_PARAM, "Parameter after or before error") from None
    return okx(core.prints.candles_okx(inst_id, period, _limit(q, default=100, most=300), after, before, core.clock.ms(),
                                       core.market.state[inst_id].last_px))


async def instruments(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/public/instruments (``instType`` required; the venue lists SWAPs only)."""
    q = request.query
    _need(q, "instType")
    if not _inst_type(q):
        return okx([])
    return okx([INSTRUMENTS[i].to_okx() for i in sorted(INSTRUMENTS) if q.get("instId") in (None, "", i)])


async def mark_price(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/public/mark-price (the mid price; ``instType`` or ``instId``)."""
    q = request.query
    if not q.get("instId"):
        _need(q, "instType")
    core = core_of(request)
    ts = str(core_of(request).clock.ms())
    return okx([{"instType": "SWAP", "instId": i, "markPx": fmt(core.market.state[i].mid), "ts": ts}
                for i in sorted(INSTRUMENTS) if q.get("instId") in (None, "", i)] if _inst_type(q) else [])


async def funding_rate(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/public/funding-rate (a constant 0.01 % every 8 h)."""
    q = request.query
    _need(q, "instId")
    inst_id = _inst(q.get("instId"))
    now = core_of(request).clock.ms()
    nxt = now - now % 28_800_000 + 28_800_000
    return okx([{"instType": "SWAP", "instId": inst_id, "method": "current_period", "formulaType": "noRate",
                 "fundingRate": "0.0001", "nextFundingRate": "", "fundingTime": str(nxt),
                 "nextFundingTime": str(nxt + 28_800_000), "minFundingRate": "-0.0075", "maxFundingRate": "0.0075",
                 "settState": "settled", "settFundingRate": "0.0001", "premium": "0", "interestRate": "0.0001",
                 "impactValue": "", "ts": str(now)}])


async def index_tickers(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/market/index-tickers (index = the instrument's mid price)."""
    q = request.query
    core = core_of(request)
    ts = str(core_of(request).clock.ms())
    out = []
    for i in sorted(INSTRUMENTS):
        idx = "-".join(i.split("-")[:2])
        if q.get("instId") not in (None, "", idx) or q.get("quoteCcy") not in (None, "", idx.split("-")[1]):
            continue
        px = fmt(core.market.state[i].mid)
        out.append({"instId": idx, "idxPx": px, "high24h": px, "low24h": px, "open24h": px, "sodUtc0": px,
                    "sodUtc8": px, "ts": ts})
    return okx(out)


async def public_time(request: web.Request) -> web.StreamResponse:
    """GET /api/v5/public/time: the venue's clock (skewed under a clock fault, as a client re-syncing reads it)."""
    return okx([{"ts": str(core_of(request).clock.ms())}])


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api/v5/public/time", public_time),
    ("GET", "/api/v5/public/instruments", instruments),
    ("GET", "/api/v5/public/mark-price", mark_price),
    ("GET", "/api/v5/public/funding-rate", funding_rate),
    ("GET", "/api/v5/market/ticker", ticker),
    ("GET", "/api/v5/market/tickers", tickers),
    ("GET", "/api/v5/market/index-tickers", index_tickers),
    ("GET", "/api/v5/market/books", books),
    ("GET", "/api/v5/market/trades", trades),
    ("GET", "/api/v5/market/history-trades", trades),
    ("GET", "/api/v5/market/candles", candles),
    ("GET", "/api/v5/market/history-candles", candles),
    ("GET", "/api/v5/account/balance", balance),
    ("GET", "/api/v5/account/positions", positions),
    ("GET", "/api/v5/account/config", account_config),
    ("POST", "/api/v5/account/set-leverage", set_leverage),
    ("GET", "/api/v5/account/leverage-info", leverage_info),
    ("GET", "/api/v5/account/max-size", max_size),
    ("GET", "/api/v5/account/trade-fee", trade_fee),
    ("GET", "/api/v5/account/max-avail-size", max_size),
    ("POST", "/api/v5/trade/order", place_order),
    ("POST", "/api/v5/trade/batch-orders", batch_orders),
    ("POST", "/api/v5/trade/cancel-order", cancel_order),
    ("POST", "/api/v5/trade/cancel-batch-orders", cancel_batch_orders),
    ("POST", "/api/v5/trade/amend-order", amend_order),
    ("POST", "/api/v5/trade/amend-batch-orders", amend_batch_orders),
    ("POST", "/api/v5/trade/close-position", close_position),
    ("GET", "/api/v5/trade/order", get_order),
    ("GET", "/api/v5/trade/orders-pending", orders_pending),
    ("GET", "/api/v5/trade/orders-history", orders_history),
    ("GET", "/api/v5/trade/orders-history-archive", orders_history),
    ("GET", "/api/v5/trade/fills", fills),
    ("GET", "/api/v5/trade/fills-history", fills),
)


def add_rest_routes(app: web.Application) -> None:
    """Route every REST endpoint the venue serves (:data:`ROUTES`)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
