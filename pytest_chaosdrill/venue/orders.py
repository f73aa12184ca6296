"""Order matching with OKX's rules (clOrdId unique among pending orders, tick / lot / min / max market
size, margin, reduce-only), fills, positions, leverage and balance.

Single account, net position mode. Loop-confined: only the venue's event loop calls this.
Every order attempt, fill and position change is written to the witness ledger.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from .witness import could_add_exposure
from .ledger import Ledger, classify_effect
from .market import INSTRUMENTS, Market, fmt

FIRST_ORD_ID = 100001
START_CASH = Decimal("100000")
CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")

DEFAULT_LEVER = 10
ORD_TYPES = ("market", "limit", "post_only", "ioc", "fok")
REQUIRED = ("instId", "tdMode", "side", "ordType", "sz")
TD_MODES = ("cross", "isolated")
OPEN_STATES = ("live", "partially_filled")

# sCodes (OKX v5 meanings)
S_OK = "0"
S_EMPTY = "50014"          # Parameter {0} can not be empty (request level)
S_PARAM = "51000"          # Parameter {0} error
S_NO_INST = "51001"        # instrument does not exist
S_MARGIN = "51008"         # insufficient margin (also the partial-fill fault's leg B)
S_DUP_CL = "51016"         # duplicated clOrdId (among pending orders)
S_MIN_SZ = "51020"         # below the instrument's minSz
S_NO_POSITION = "51023"    # close-position: position does not exist
S_LOT = "51121"            # not a multiple of lotSz
S_REDUCE_ONLY = "51169"    # reduce-only with no position in this direction to reduce
S_REDUCE_SAME_SIDE = "51170"  # reduce-only on the same side as the open position
S_MAX_MKT = "51202"        # market order above maxMktSz
S_CANCEL_FAILED = "51400"  # cancel: filled, canceled or unknown
S_AMEND_NO_ORDER = "51503"  # amend: order does not exist
S_AMEND_CANCELED = "51509"  # amend: order canceled
S_AMEND_DONE = "51510"     # amend: order filled
S_NO_ORDER = "51603"       # order does not exist

MSG_REDUCE_ONLY = "Order failed because you don't have any positions in this direction for this contract to reduce or close"
MSG_REDUCE_SAME_SIDE = "Failed to place order. A reduce-only order can't be the same trade side as your open positions."
MSG_MARGIN = "Order failed. Insufficient USDT margin in account"


def now_ms() -> int:
    """Wall-clock Unix time in milliseconds."""
    return int(time.time() * 1000)


class OrderError(ValueError):
    """A request-level rejection carrying an OKX sCode."""

    def __init__(self, s_code: str, msg: str) -> None:
        super().__init__(msg)
        self.s_code = s_code


@dataclass
class Fill:
    """One execution of an order (``exec_type``: ``T`` taker, ``M`` maker)."""
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    sz: Decimal
    px: Decimal
    trade_id: str
    ts: int
    exec_type: str = "T"

    def to_okx(self) -> dict[str, Any]:
        """The ``trade/fills`` / ``fills-history`` entry."""
        return {"instType": "SWAP", "instId": self.inst_id, "tradeId": self.trade_id, "ordId": self.ord_id,
                "clOrdId": self.cl_ord_id, "billId": self.trade_id, "subType": "1" if self.side == "buy" else "2",
                "tag": "", "fillPx": fmt(self.px), "fillSz": fmt(self.sz), "fillIdxPx": "", "fillPnl": "0",
                "fillPxVol": "", "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": fmt(self.px),
                "side": self.side, "posSide": "net", "execType": self.exec_type, "feeCcy": "USDT", "fee": "0",
                "ts": str(self.ts), "fillTime": str(self.ts)}


@dataclass
class Order:
    """One accepted order and its fill state."""
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    ord_type: str
    sz: Decimal
    px: Decimal | None
    reduce_only: bool
    td_mode: str
    c_time: int
    lever: int = DEFAULT_LEVER
    state: str = "live"
    acc_fill_sz: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    u_time: int = 0
    last_fill: Fill | None = None
    cancel_source: str = ""

    def to_okx(self, fill: Fill | None = None) -> dict[str, Any]:
        """THE order object as OKX renders it: ``trade/order`` and the lists (there ``fill`` is the
        order's last fill) and the ``orders`` channel (``fill`` is the fill of that update, None for a
        state change without one: then the fill fields are empty)."""
        f = fill
        return {
            "instType": "SWAP", "instId": self.inst_id, "tgtCcy": "", "ccy": "", "ordId": self.ord_id,
            "clOrdId": self.cl_ord_id, "tag": "", "px": fmt(self.px) if self.px is not None else "",
            "pxUsd": "", "pxVol": "", "pxType": "", "sz": fmt(self.sz), "notionalUsd": "", "pnl": "0",
            "ordType": self.ord_type, "side": self.side, "posSide": "net", "tdMode": self.td_mode,
            "accFillSz": fmt(self.acc_fill_sz), "fillPx": fmt(f.px) if f else "", "tradeId": f.trade_id if f else "",
            "fillSz": fmt(f.sz) if f else "0", "fillTime": str(f.ts) if f else "", "fillFee": "0",
            "fillFeeCcy": "USDT" if f else "", "execType": f.exec_type if f else "", "state": self.state,
            "avgPx": fmt(self.avg_px) if self.avg_px is not None else "", "lever": str(self.lever),
            "attachAlgoClOrdId": "", "tpTriggerPx": "", "tpTriggerPxType": "", "tpOrdPx": "", "slTriggerPx": "",
            "slTriggerPxType": "", "slOrdPx": "", "attachAlgoOrds": [], "stpId": "", "stpMode": "",
            "feeCcy": "USDT", "fee": "0", "rebateCcy": "USDT", "rebate": "0", "source": "", "category": "normal",
            "reduceOnly": str(self.reduce_only).lower(), "isTpLimit": "false", "cancelSource": self.cancel_source,
            "cancelSourceReason": "", "quickMgnType": "", "algoClOrdId": "", "algoId": "", "amendResult": "",
            "reqId": "", "code": "0", "msg": "", "uTime": str(self.u_time or self.c_time), "cTime": str(self.c_time),
        }


#: ``on_update(order, fill)``: called on every state change of an order (``live``, each fill,
#: ``canceled``, an amendment); ``fill`` is the execution of that update or None.
OrderUpdate = Callable[[Order, "Fill | None"], None]


@dataclass
class Position:
    """The net position of one instrument."""
    pos: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    u_time: int = 0
    c_time: int = 0


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if v in (None, "", "false", "False", 0):
        return False
    if v in ("true", "True", 1):
        return True
    raise OrderError(S_PARAM, "Parameter reduceOnly error")


def _parse_decimal(v: Any, name: str) -> Decimal:
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        raise OrderError(S_PARAM, f"Parameter {name} error") from None
    if not d.is_finite() or d <= 0:
        raise OrderError(S_PARAM, f"Parameter {name} error")
    return d


def _multiple(v: Decimal, step: Decimal) -> bool:
    return (v / step) == (v / step).to_integral_value()


def missing_param(body: Any) -> tuple[str, str] | None:
    """OKX's request-level check of a place-order object: (50014, "Parameter X can not be empty.") for
    the first missing required field, or None."""
    if not isinstance(body, dict):
        return S_PARAM, "Parameter error: an order must be a JSON object"
    for name in REQUIRED:
        if body.get(name) in (None, ""):
            return S_EMPTY, f"Parameter {name} can not be empty."
    return None


class OrderEngine:
    """Orders, fills, positions and leverage of the single simulated account.

    ``on_update(order, fill)`` is called on every state change of an order: placed (``live``), each
    fill (``fill`` is that execution: ``tradeId``, ``fillPx``, ``fillSz``, ``fillTime``, ``execType``),
    canceled and amended (``fill`` None). ``order.to_okx(fill)`` renders the ``orders`` channel entry.
    """

    def __init__(self, market: Market, ledger: Ledger, on_update: OrderUpdate,
                 clock_ms: Callable[[], int] = now_ms) -> None:
        self._market = market
        # The venue's clock (a clock-skew fault moves it): every ``ts`` / ``cTime`` / ``uTime`` it stamps.
        self._now_ms = clock_ms
        self._ledger = ledger
        self._on_update = on_update
        self._next_ord_id = FIRST_ORD_ID
        self._next_fill_id = 1
        self._request: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        """Forget orders, fills and positions; ordIds keep counting so old ids are never reused."""
        self.orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}    # the live / partially filled ones (the margin check reads them)
        self.by_cl: dict[str, Order] = {}    # the latest order of each clOrdId
        self._arrived_cl: set[str] = set()   # every clOrdId an order request carried (the witness's "twice")
        self._fills: list[Fill] = []
        self.positions: dict[str, Position] = {i: Position() for i in INSTRUMENTS}
        self.leverage: dict[str, int] = {i: DEFAULT_LEVER for i in INSTRUMENTS}
        self.cash = START_CASH

    # -- helpers ---------------------------------------------------------------------------------

    def pos(self, inst_id: str) -> Decimal:
        """Signed position of ``inst_id`` in contracts."""
        return self.positions[inst_id].pos

    def exposure(self) -> Decimal:
        """Sum of absolute positions over all instruments, in contracts."""
        return sum((abs(p.pos) for p in self.positions.values()), Decimal(0))

    def _parse(self, body: Any) -> Order:
        if not isinstance(body, dict):
            raise OrderError(S_PARAM, "Order must be a JSON object")
        inst_id = body.get("instId")
        if inst_id not in INSTRUMENTS:
            raise OrderError(S_NO_INST, f"Instrument ID {inst_id} does not exist")
        inst = INSTRUMENTS[inst_id]
        if body.get("tdMode") not in TD_MODES:
            raise OrderError(S_PARAM, "Parameter tdMode error")
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise OrderError(S_PARAM, "Parameter side error")
        ord_type = body.get("ordType")
        if ord_type not in ORD_TYPES:
            raise OrderError(S_PARAM, "Parameter ordType error")
        sz = _parse_decimal(body.get("sz"), "sz")
        px = _parse_decimal(body.get("px"), "px") if ord_type != "market" else None
        if px is not None and not _multiple(px, inst.tick_sz):
            raise OrderError(S_PARAM, "Parameter px error")  # OKX: price not a multiple of tickSz
        if not _multiple(sz, inst.lot_sz):
            raise OrderError(S_LOT, "Order count should be the integer multiples of the lot size")
        if sz < inst.min_sz:
            raise OrderError(S_MIN_SZ, "Order amount should be greater than the min available amount")
        if ord_type == "market" and sz > inst.max_mkt_sz:
            raise OrderError(S_MAX_MKT, f"Market order amount exceeds the maximum amount {fmt(inst.max_mkt_sz)}")
        if ord_type != "market" and sz > inst.max_lmt_sz:
            raise OrderError("51005", "Order amount exceeds the limit")
        cl = body.get("clOrdId") or ""
        if cl and not (isinstance(cl, str) and CL_ORD_ID_RE.match(cl)):
            raise OrderError(S_PARAM, "Parameter clOrdId error")
        return Order(ord_id="", cl_ord_id=cl, inst_id=inst_id, side=side, ord_type=ord_type, sz=sz, px=px,
                     reduce_only=_parse_bool(body.get("reduceOnly")), td_mode=str(body["tdMode"]),
                     c_time=self._now_ms(), lever=self.leverage[inst_id])

    def _check_reduce_only(self, o: Order, sz: Decimal) -> None:
        """OKX (net mode): no position → 51169; an order on the position's own side → 51170; more than the
        position → 51169 (the venue does not shrink it)."""
        pos = self.pos(o.inst_id)
        if pos == 0:
            raise OrderError(S_REDUCE_ONLY, MSG_REDUCE_ONLY)
        if (pos > 0) == (o.side == "buy"):
            raise OrderError(S_REDUCE_SAME_SIDE, MSG_REDUCE_SAME_SIDE)
        if sz > abs(pos):
            raise OrderError(S_REDUCE_ONLY, MSG_REDUCE_ONLY)

    def _reduce_only_ok(self, o: Order, sz: Decimal) -> bool:
        try:
            self._check_reduce_only(o, sz)
        except OrderError:
            return False
        return True

    def _margin(self, inst_id: str, contracts: Decimal, px: Decimal) -> Decimal:
        inst = INSTRUMENTS[inst_id]
        return abs(contracts) * inst.ct_val * px / self.leverage[inst_id]

    def available(self) -> Decimal:
        """Equity minus the initial margin of positions and resting orders, in USDT."""
        used = sum((self._margin(i, p.pos, self._market.state[i].mid) for i, p in self.positions.items()), Decimal(0))
        used += sum((self._margin(o.inst_id, o.sz - o.acc_fill_sz, o.px or Decimal(0))
                     for o in self._open.values()), Decimal(0))
        return self.equity() - used

    def _check_margin(self, o: Order) -> None:
        """51008 when the exposure the order could add needs more margin than is available."""
        pos = self.pos(o.inst_id)
        after = pos + (o.sz if o.side == "buy" else -o.sz)
        added = max(Decimal(0), abs(after) - abs(pos))
        if added == 0:
            return
        st = self._market.state[o.inst_id]
        px = o.px if o.px is not None else (st.best_ask if o.side == "buy" else st.best_bid)
        if self._margin(o.inst_id, added, px) > self.available():
            raise OrderError(S_MARGIN, MSG_MARGIN)

    # -- placing ---------------------------------------------------------------------------------

    def place(self, body: Any, leg: str | None = None, force_reject: tuple[str, str] | None = None,
              request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Place one order; returns its per-order answer ``{ordId, clOrdId, tag, ts, sCode, sMsg}``.

        ``force_reject`` = (sCode, sMsg) rejects a valid order (the partial-fill fault's leg B).
        ``request`` = facts about the HTTP request that carried it (``expTime``, ``accessTs``,
        ``received_mono``, ``received_utc``), copied onto the order's ledger entry.
        """
        self._request = request or {}
        try:
            return self._place(body, leg, force_reject)
        finally:
            self._request = {}

    def _place(self, body: Any, leg: str | None, force_reject: tuple[str, str] | None) -> dict[str, Any]:
        raw = body if isinstance(body, dict) else {}
        cl = raw.get("clOrdId") if isinstance(raw.get("clOrdId"), str) else ""
        # "Twice" in the witness is about arrivals: a clOrdId that reached the venue before, whatever
        # the venue answered either time.
        repeated = bool(cl) and cl in self._arrived_cl
        if cl:
            self._arrived_cl.add(cl)
        try:
            o = self._parse(body)
            prev = self.by_cl.get(cl) if cl else None
            if prev is not None and prev.state in OPEN_STATES:
                raise OrderError(S_DUP_CL, "Duplicated clOrdId")  # unique among pending orders only
            if force_reject:
                raise OrderError(*force_reject)
            if o.reduce_only:
                self._check_reduce_only(o, o.sz)
            self._check_margin(o)
        except OrderError as e:
            inst = raw.get("instId") if raw.get("instId") in INSTRUMENTS else None
            p = self.pos(inst) if inst else Decimal(0)
            self._ledger_order(raw, raw.get("instId"), "", cl, leg, False, e.s_code, repeated, p, p)
            return {"ordId": "", "clOrdId": cl, "tag": "", "ts": str(self._now_ms()), "sCode": e.s_code, "sMsg": str(e)}

        o.ord_id = str(self._next_ord_id)
        self._next_ord_id += 1
        self.orders[o.ord_id] = o
        self._open[o.ord_id] = o
        if o.cl_ord_id:
            self.by_cl[o.cl_ord_id] = o
        pos_before = self.pos(o.inst_id)
        fill_px = self._crossing_px(o)
        self._on_update(o, None)  # "live"
        if fill_px is not None and o.ord_type != "post_only":
            self._fill(o, fill_px, o.sz, ledger_order=(raw, leg, repeated))
        else:
            self._ledger_order(raw, o.inst_id, o.ord_id, o.cl_ord_id, leg, True, S_OK, repeated, pos_before, pos_before)
            # post_only that would take liquidity, ioc / fok that cannot fill: canceled at once (as OKX)
            if (fill_px is not None and o.ord_type == "post_only") or (fill_px is None and o.ord_type in ("ioc", "fok")):
                self._set_canceled(o, "")
        return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "tag": "", "ts": str(o.c_time), "sCode": S_OK,
                "sMsg": "Order placed"}

    def _crossing_px(self, o: Order) -> Decimal | None:
        st = self._market.state[o.inst_id]
        if o.ord_type == "market":
            return st.best_ask if o.side == "buy" else st.best_bid
        assert o.px is not None
        if o.side == "buy" and o.px >= st.best_ask:
            return st.best_ask
        if o.side == "sell" and o.px <= st.best_bid:
            return st.best_bid
        return None

    def _fill(self, o: Order, px: Decimal, sz: Decimal, ledger_order: tuple[dict, str | None, bool] | None = None,
              exec_type: str = "T") -> None:
        ts = self._now_ms()
        inst = INSTRUMENTS[o.inst_id]
        p = self.positions[o.inst_id]
        before = p.pos
        signed = sz if o.side == "buy" else -sz
        after = before + signed
        # Average price and realised PnL of a net position.
        if before == 0 or (before > 0) == (signed > 0):
            p.avg_px = (abs(before) * p.avg_px + sz * px) / (abs(before) + sz)
        else:
            closed = min(abs(signed), abs(before))
            direction = 1 if before > 0 else -1
            self.cash += closed * inst.ct_val * (px - p.avg_px) * direction
            if after == 0:
                p.avg_px = Decimal(0)
            elif (after > 0) != (before > 0):
                p.avg_px = px
        if before == 0 or (after != 0 and (after > 0) != (before > 0)):
            p.c_time = ts
        p.pos, p.u_time = after, ts
        prev_acc = o.acc_fill_sz
        o.acc_fill_sz += sz
        o.avg_px = px if o.avg_px is None else (o.avg_px * prev_acc + px * sz) / o.acc_fill_sz
        o.u_time = ts
        o.state = "filled" if o.acc_fill_sz >= o.sz else "partially_filled"
        if o.state == "filled":
            self._open.pop(o.ord_id, None)
        trade_id = str(self._next_fill_id)
        self._next_fill_id += 1
        fill = Fill(o.ord_id, o.cl_ord_id, o.inst_id, o.side, sz, px, trade_id, ts, exec_type)
        o.last_fill = fill
        self._fills.append(fill)
        if ledger_order is not None:
            raw, leg, repeated = ledger_order
            self._ledger_order(raw, o.inst_id, o.ord_id, o.cl_ord_id, leg, True, S_OK, repeated, before, after)
        self._ledger.append("fill", ordId=o.ord_id, clOrdId=o.cl_ord_id, instId=o.inst_id, side=o.side,
                            sz=float(sz), px=float(px), effect=classify_effect(float(before), float(after)),
                            pos_before=float(before), pos_after=float(after))
        self._ledger.append("position", instId=o.inst_id, pos=float(after), exposure=float(self.exposure()))
        self._on_update(o, fill)

    def _ledger_order(self, raw: dict, inst_id: Any, ord_id: str, cl: str, leg: str | None, accepted: bool,
                      s_code: str, duplicate: bool, before: Decimal, after: Decimal) -> None:
        try:
            sz: Any = float(Decimal(str(raw.get("sz"))))
        except (InvalidOperation, ValueError):
            sz = raw.get("sz")
        try:
            reduce_only = _parse_bool(raw.get("reduceOnly"))
        except OrderError:
            reduce_only = False
        entry: dict[str, Any] = dict(
            clOrdId=cl, ordId=ord_id, instId=inst_id, side=raw.get("side"), ordType=raw.get("ordType"),
            sz=sz, reduceOnly=reduce_only, leg=leg, accepted=accepted, sCode=s_code, duplicate=duplicate,
            effect=classify_effect(float(before), float(after)), pos_before=float(before), pos_after=float(after))
        entry["could_add_exposure"] = could_add_exposure(entry)
        self._ledger.append("order", **entry, **self._request)

    # -- cancel, amend, close, ticks -------------------------------------------------------------

    def find(self, ord_id: str | None = None, cl_ord_id: str | None = None) -> Order | None:
        """The order with this ordId (preferred) or the latest one with this clOrdId, or None."""
        if ord_id:
            return self.orders.get(str(ord_id))
        if cl_ord_id:
            return self.by_cl.get(str(cl_ord_id))
        return None

    def cancel(self, body: Any) -> dict[str, Any]:
        """Cancel a resting order; returns the per-order answer."""
        body = body if isinstance(body, dict) else {}
        o = self.find(body.get("ordId"), body.get("clOrdId"))
        ts = str(self._now_ms())
        if o is None or (body.get("instId") and body.get("instId") != o.inst_id):
            return {"ordId": str(body.get("ordId") or ""), "clOrdId": str(body.get("clOrdId") or ""), "ts": ts,
                    "sCode": S_CANCEL_FAILED, "sMsg": "Order cancellation failed as the order does not exist"}
        if o.state not in OPEN_STATES:
            code, why = (("51401", "canceled") if o.state == "canceled" else ("51402", "completed"))
            return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "ts": ts, "sCode": code,
                    "sMsg": f"Cancellation failed as the order has been {why}"}
        self._set_canceled(o, "1")
        return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "ts": ts, "sCode": S_OK, "sMsg": ""}

    def amend(self, body: Any) -> dict[str, Any]:
        """Amend a resting order's ``newSz`` / ``newPx`` (OKX ``amend-order``); returns the per-order answer."""
        body = body if isinstance(body, dict) else {}
        o = self.find(body.get("ordId"), body.get("clOrdId"))
        base = {"ordId": str(body.get("ordId") or (o.ord_id if o else "")),
                "clOrdId": str(body.get("clOrdId") or (o.cl_ord_id if o else "")), "reqId": str(body.get("reqId") or ""),
                "ts": str(self._now_ms())}
        if o is None or (body.get("instId") and body.get("instId") != o.inst_id):
            return {**base, "sCode": S_AMEND_NO_ORDER, "sMsg": "Order modification failed as the order does not exist"}
        if o.state == "canceled":
            return {**base, "sCode": S_AMEND_CANCELED, "sMsg": "Modification failed as the order has been canceled"}
        if o.state == "filled":
            return {**base, "sCode": S_AMEND_DONE, "sMsg": "Modification failed as the order has been completed"}
        if body.get("newSz") in (None, "") and body.get("newPx") in (None, ""):
            return {**base, "sCode": S_PARAM, "sMsg": "Parameter newSz or newPx error"}
        inst = INSTRUMENTS[o.inst_id]
        try:
            sz = _parse_decimal(body["newSz"], "newSz") if body.get("newSz") not in (None, "") else o.sz
            px = _parse_decimal(body["newPx"], "newPx") if body.get("newPx") not in (None, "") else o.px
            if px is not None and not _multiple(px, inst.tick_sz):
                raise OrderError(S_PARAM, "Parameter newPx error")
            if not _multiple(sz, inst.lot_sz):
                raise OrderError(S_LOT, "Order count should be the integer multiples of the lot size")
            if sz <= o.acc_fill_sz:
                raise OrderError("51512", "Modification failed: the new size must be larger than the filled size")
        except OrderError as e:
            return {**base, "sCode": e.s_code, "sMsg": str(e)}
        o.sz, o.px, o.u_time = sz, px, self._now_ms()
        self._on_update(o, None)
        cross = self._crossing_px(o)
        if cross is not None:
            self._fill(o, cross, o.sz - o.acc_fill_sz)
        return {**base, "sCode": S_OK, "sMsg": ""}

    def _set_canceled(self, o: Order, source: str) -> None:
        o.state, o.u_time, o.cancel_source = "canceled", self._now_ms(), source
        self._open.pop(o.ord_id, None)
        self._on_update(o, None)

    def on_tick(self) -> None:
        """Fill resting limit orders the new market price has reached (at their limit price, as maker)."""
        for o in list(self._open.values()):
            st = self._market.state[o.inst_id]
            assert o.px is not None
            crossed = (o.side == "buy" and st.best_ask <= o.px) or (o.side == "sell" and st.best_bid >= o.px)
            if not crossed:
                continue
            remaining = o.sz - o.acc_fill_sz
            if o.reduce_only and not self._reduce_only_ok(o, remaining):
                self._set_canceled(o, "")  # the position it was meant to reduce is gone
                continue
            self._fill(o, o.px, remaining, exec_type="M")

    def set_leverage(self, inst_id: str, lever: int) -> None:
        """Set the leverage of ``inst_id`` (cross margin)."""
        self.leverage[inst_id] = lever

    # -- queries ---------------------------------------------------------------------------------

    def pending(self, inst_id: str | None = None) -> list[Order]:
        """Open (resting) orders, newest first."""
        return [o for o in sorted(self._open.values(), key=lambda o: int(o.ord_id), reverse=True)
                if inst_id in (None, o.inst_id)]

    def history(self, inst_id: str | None = None) -> list[Order]:
        """Orders in a final state (filled, canceled), newest first."""
        return [o for o in sorted(self.orders.values(), key=lambda o: int(o.ord_id), reverse=True)
                if o.state not in OPEN_STATES and inst_id in (None, o.inst_id)]

    def fills(self, inst_id: str | None = None) -> list[Fill]:
        """Fills, newest first."""
        return [f for f in reversed(self._fills) if inst_id in (None, f.inst_id)]

    def positions_okx(self, inst_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """The positions answer: non-zero positions only, of ``inst_ids`` (None: all)."""
        out = []
        for iid in sorted(self.positions):
            p = self.positions[iid]
            if p.pos == 0 or (inst_ids is not None and iid not in inst_ids):
                continue
            st = self._market.state[iid]
            inst = INSTRUMENTS[iid]
            lever = self.leverage[iid]
            upl = p.pos * inst.ct_val * (st.mid - p.avg_px)
            notional = abs(p.pos) * inst.ct_val * st.mid
            imr = notional / lever
            mmr = notional * Decimal("0.004")
            out.append({
                "instType": "SWAP", "instId": iid, "mgnMode": "cross", "posId": str(1000 + sorted(INSTRUMENTS).index(iid)),
                "posSide": "net", "pos": fmt(p.pos), "baseBal": "", "quoteBal": "", "posCcy": "", "availPos": "",
                "avgPx": fmt(p.avg_px), "markPx": fmt(st.mid), "upl": fmt(upl),
                "uplRatio": fmt((upl / imr).quantize(Decimal("0.0001"))) if imr else "0",
                "uplLastPx": fmt(upl), "uplRatioLastPx": "0", "lever": str(lever), "liqPx": "", "imr": fmt(imr),
                "margin": "", "mgnRatio": fmt((self.equity() / mmr).quantize(Decimal("0.01"))) if mmr else "",
                "mmr": fmt(mmr), "liab": "", "liabCcy": "", "interest": "0", "tradeId": "", "optVal": "",
                "notionalUsd": fmt(notional), "adl": "1", "ccy": inst.settle_ccy, "last": fmt(st.last_px),
                "idxPx": fmt(st.mid), "usdPx": "", "bePx": fmt(p.avg_px), "deltaBS": "", "deltaPA": "", "gammaBS": "",
                "gammaPA": "", "thetaBS": "", "thetaPA": "", "vegaBS": "", "vegaPA": "", "spotInUseAmt": "",
                "spotInUseCcy": "", "realizedPnl": "0", "pnl": "0", "fee": "0", "fundingFee": "0",
                "liqPenalty": "0", "closeOrderAlgo": [], "cTime": str(p.c_time or p.u_time), "uTime": str(p.u_time),
                "bizRefId": "", "bizRefType": ""})
        return out

    def equity(self) -> Decimal:
        """Cash plus unrealised PnL at mid prices, in USDT."""
        upl = Decimal(0)
        for iid, p in self.positions.items():
            if p.pos:
                upl += p.pos * INSTRUMENTS[iid].ct_val * (self._market.state[iid].mid - p.avg_px)
        return self.cash + upl

    def balance_okx(self) -> list[dict[str, Any]]:
        """The balance answer (one USDT detail)."""
        q = Decimal("0.0001")
        eq = fmt(self.equity().quantize(q))
        avail = fmt(max(Decimal(0), self.available()).quantize(q))
        frozen = fmt((self.equity() - max(Decimal(0), self.available())).quantize(q))
        ts = str(self._now_ms())
        return [{"totalEq": eq, "adjEq": eq, "isoEq": "0", "ordFroz": "", "imr": "", "mmr": "", "mgnRatio": "",
                 "notionalUsd": "", "upl": "", "borrowFroz": "", "uTime": ts,
                 "details": [{"ccy": "USDT", "eq": eq, "cashBal": fmt(self.cash), "availBal": avail, "availEq": avail,
                              "frozenBal": frozen, "ordFrozen": "0", "upl": fmt((self.equity() - self.cash).quantize(q)),
                              "eqUsd": eq, "disEq": eq, "isoEq": "0", "uTime": ts}]}]
