"""Order matching, clOrdId idempotency, reduceOnly enforcement, fills, positions and balance.

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

# sCodes (OKX v5 meanings)
S_OK = "0"
S_PARAM = "51000"          # parameter error
S_NO_INST = "51001"        # instrument does not exist
S_MARGIN = "51008"         # insufficient margin (partial-fill fault, leg B)
S_REDUCE_ONLY = "51169"    # reduceOnly order would grow the position
S_CANCEL_FAILED = "51400"  # cancel: filled, canceled or unknown
S_NO_ORDER = "51603"       # order does not exist

MSG_REDUCE_ONLY = "Order failed because you don't have any positions in this direction for this contract to reduce or close"
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
    state: str = "live"
    acc_fill_sz: Decimal = Decimal(0)
    avg_px: Decimal | None = None
    u_time: int = 0
    fill_sz: Decimal = Decimal(0)   # last fill
    fill_px: Decimal | None = None  # last fill

    def to_okx(self) -> dict[str, Any]:
        """The order object of the REST queries."""
        return {
            "ordId": self.ord_id, "clOrdId": self.cl_ord_id, "instId": self.inst_id, "instType": "SWAP",
            "side": self.side, "ordType": self.ord_type, "sz": fmt(self.sz),
            "px": fmt(self.px) if self.px is not None else "", "reduceOnly": str(self.reduce_only).lower(),
            "tdMode": self.td_mode, "posSide": "net", "state": self.state, "accFillSz": fmt(self.acc_fill_sz),
            "avgPx": fmt(self.avg_px) if self.avg_px is not None else "",
            "cTime": str(self.c_time), "uTime": str(self.u_time or self.c_time),
        }

    def push(self) -> dict[str, Any]:
        """The ``orders`` channel data entry for the current state change."""
        d = self.to_okx()
        d["fillSz"] = fmt(self.fill_sz)
        d["fillPx"] = fmt(self.fill_px) if self.fill_px is not None else ""
        return d


@dataclass
class Position:
    """The net position of one instrument."""
    pos: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    u_time: int = 0


@dataclass
class Fill:
    """One execution of an order."""
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    sz: Decimal
    px: Decimal
    trade_id: str
    ts: int

    def to_okx(self) -> dict[str, Any]:
        return {"instId": self.inst_id, "instType": "SWAP", "ordId": self.ord_id, "clOrdId": self.cl_ord_id,
                "side": self.side, "fillSz": fmt(self.sz), "fillPx": fmt(self.px), "tradeId": self.trade_id,
                "posSide": "net", "ts": str(self.ts), "fillTime": str(self.ts)}


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


class OrderEngine:
    """Orders, fills and positions of the single simulated account."""

    def __init__(self, market: Market, ledger: Ledger, on_update: Callable[[Order], None]) -> None:
        self._market = market
        self._ledger = ledger
        self._on_update = on_update
        self._next_ord_id = FIRST_ORD_ID
        self._next_fill_id = 1
        self._request: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        """Forget orders, fills and positions; ordIds keep counting so old ids are never reused."""
        self.orders: dict[str, Order] = {}
        self.by_cl: dict[str, Order] = {}
        self._fills: list[Fill] = []
        self.positions: dict[str, Position] = {i: Position() for i in INSTRUMENTS}
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
        side = body.get("side")
        if side not in ("buy", "sell"):
            raise OrderError(S_PARAM, "Parameter side error")
        ord_type = body.get("ordType")
        if ord_type not in ("market", "limit"):
            raise OrderError(S_PARAM, "Parameter ordType error")
        sz = _parse_decimal(body.get("sz"), "sz")
        px = _parse_decimal(body.get("px"), "px") if ord_type == "limit" else None
        cl = body.get("clOrdId") or ""
        if cl and not (isinstance(cl, str) and CL_ORD_ID_RE.match(cl)):
            raise OrderError(S_PARAM, "Parameter clOrdId error")
        return Order(ord_id="", cl_ord_id=cl, inst_id=inst_id, side=side, ord_type=ord_type, sz=sz, px=px,
                     reduce_only=_parse_bool(body.get("reduceOnly")), td_mode=str(body.get("tdMode") or "cross"),
                     c_time=now_ms())

    def _reduce_only_ok(self, o: Order, sz: Decimal) -> bool:
        pos = self.pos(o.inst_id)
        signed = sz if o.side == "buy" else -sz
        return pos != 0 and (pos > 0) != (signed > 0) and sz <= abs(pos)

    # -- placing ---------------------------------------------------------------------------------

    def place(self, body: Any, leg: str | None = None, force_reject: tuple[str, str] | None = None,
              request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Place one order; returns its per-order answer ``{ordId, clOrdId, tag, sCode, sMsg}``.

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
        # Idempotency comes first: a repeated clOrdId never creates a second order.
        if cl and cl in self.by_cl:
            orig = self.by_cl[cl]
            p = self.pos(orig.inst_id)
            self._ledger_order(raw, orig.inst_id, orig.ord_id, cl, leg, True, S_OK, True, p, p)
            return {"ordId": orig.ord_id, "clOrdId": cl, "tag": "", "sCode": S_OK, "sMsg": ""}
        try:
            o = self._parse(body)
            if force_reject:
                raise OrderError(*force_reject)
            if o.reduce_only and not self._reduce_only_ok(o, o.sz):
                raise OrderError(S_REDUCE_ONLY, MSG_REDUCE_ONLY)
        except OrderError as e:
            inst = raw.get("instId") if raw.get("instId") in INSTRUMENTS else None
            p = self.pos(inst) if inst else Decimal(0)
            self._ledger_order(raw, raw.get("instId"), "", cl, leg, False, e.s_code, False, p, p)
            return {"ordId": "", "clOrdId": cl, "tag": "", "sCode": e.s_code, "sMsg": str(e)}

        o.ord_id = str(self._next_ord_id)
        self._next_ord_id += 1
        self.orders[o.ord_id] = o
        if o.cl_ord_id:
            self.by_cl[o.cl_ord_id] = o
        pos_before = self.pos(o.inst_id)
        fill_px = self._crossing_px(o)
        self._on_update(o)  # "live"
        if fill_px is None:
            self._ledger_order(raw, o.inst_id, o.ord_id, o.cl_ord_id, leg, True, S_OK, False, pos_before, pos_before)
        else:
            self._fill(o, fill_px, o.sz, ledger_order=(raw, leg))
        return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "tag": "", "sCode": S_OK, "sMsg": ""}

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

    def _fill(self, o: Order, px: Decimal, sz: Decimal, ledger_order: tuple[dict, str | None] | None = None) -> None:
        ts = now_ms()
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
        p.pos, p.u_time = after, ts
        prev_acc = o.acc_fill_sz
        o.acc_fill_sz += sz
        o.avg_px = px if o.avg_px is None else (o.avg_px * prev_acc + px * sz) / o.acc_fill_sz
        o.fill_sz, o.fill_px, o.u_time = sz, px, ts
        o.state = "filled" if o.acc_fill_sz >= o.sz else "partially_filled"
        trade_id = str(self._next_fill_id)
        self._next_fill_id += 1
        self._fills.append(Fill(o.ord_id, o.cl_ord_id, o.inst_id, o.side, sz, px, trade_id, ts))
        if ledger_order is not None:
            raw, leg = ledger_order
            self._ledger_order(raw, o.inst_id, o.ord_id, o.cl_ord_id, leg, True, S_OK, False, before, after)
        self._ledger.append("fill", ordId=o.ord_id, clOrdId=o.cl_ord_id, instId=o.inst_id, side=o.side,
                            sz=float(sz), px=float(px), effect=classify_effect(float(before), float(after)),
                            pos_before=float(before), pos_after=float(after))
        self._ledger.append("position", instId=o.inst_id, pos=float(after), exposure=float(self.exposure()))
        self._on_update(o)

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

    # -- cancel, ticks ---------------------------------------------------------------------------

    def find(self, ord_id: str | None = None, cl_ord_id: str | None = None) -> Order | None:
        """The order with this ordId (preferred) or clOrdId, or None."""
        if ord_id:
            return self.orders.get(str(ord_id))
        if cl_ord_id:
            return self.by_cl.get(str(cl_ord_id))
        return None

    def cancel(self, body: Any) -> dict[str, Any]:
        """Cancel a resting order; returns the per-order answer."""
        body = body if isinstance(body, dict) else {}
        o = self.find(body.get("ordId"), body.get("clOrdId"))
        if o is None or (body.get("instId") and body.get("instId") != o.inst_id):
            return {"ordId": str(body.get("ordId") or ""), "clOrdId": str(body.get("clOrdId") or ""),
                    "sCode": S_CANCEL_FAILED, "sMsg": "Order cancellation failed as the order does not exist"}
        if o.state not in ("live", "partially_filled"):
            return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "sCode": S_CANCEL_FAILED,
                    "sMsg": f"Order cancellation failed as the order is {o.state}"}
        self._set_canceled(o)
        return {"ordId": o.ord_id, "clOrdId": o.cl_ord_id, "sCode": S_OK, "sMsg": ""}

    def _set_canceled(self, o: Order) -> None:
        o.state, o.fill_sz, o.fill_px, o.u_time = "canceled", Decimal(0), None, now_ms()
        self._on_update(o)

    def on_tick(self) -> None:
        """Fill resting limit orders the new market price has reached (at their limit price)."""
        for o in [o for o in self.orders.values() if o.state in ("live", "partially_filled")]:
            st = self._market.state[o.inst_id]
            assert o.px is not None
            crossed = (o.side == "buy" and st.best_ask <= o.px) or (o.side == "sell" and st.best_bid >= o.px)
            if not crossed:
                continue
            remaining = o.sz - o.acc_fill_sz
            if o.reduce_only and not self._reduce_only_ok(o, remaining):
                self._set_canceled(o)  # the position it was meant to reduce is gone
                continue
            self._fill(o, o.px, remaining)

    # -- queries ---------------------------------------------------------------------------------

    def pending(self, inst_id: str | None = None) -> list[Order]:
        """Open (resting) orders, newest first."""
        return [o for o in sorted(self.orders.values(), key=lambda o: int(o.ord_id), reverse=True)
                if o.state in ("live", "partially_filled") and inst_id in (None, o.inst_id)]

    def fills(self, inst_id: str | None = None) -> list[Fill]:
        """Fills, newest first."""
        return [f for f in reversed(self._fills) if inst_id in (None, f.inst_id)]

    def positions_okx(self, inst_id: str | None = None) -> list[dict[str, Any]]:
        """The positions answer: non-zero positions only."""
        out = []
        for iid in sorted(self.positions):
            p = self.positions[iid]
            if p.pos == 0 or inst_id not in (None, iid):
                continue
            st = self._market.state[iid]
            upl = p.pos * INSTRUMENTS[iid].ct_val * (st.mid - p.avg_px)
            out.append({"instId": iid, "instType": "SWAP", "mgnMode": "cross", "posSide": "net",
                        "pos": fmt(p.pos), "avgPx": fmt(p.avg_px), "markPx": fmt(st.mid), "upl": fmt(upl),
                        "uTime": str(p.u_time)})
        return out

    def equity(self) -> Decimal:
        """Cash plus unrealised PnL at mid prices, in USDT."""
        upl = Decimal(0)
        for iid, p in self.positions.items():
            if p.pos:
                upl += p.pos * INSTRUMENTS[iid].ct_val * (self._market.state[iid].mid - p.avg_px)
        return self.cash + upl

    def balance_okx(self) -> list[dict[str, Any]]:
        """The balance answer."""
        eq = fmt(self.equity().quantize(Decimal("0.0001")))
        return [{"totalEq": eq, "uTime": str(now_ms()),
                 "details": [{"ccy": "USDT", "eq": eq, "availBal": eq, "cashBal": fmt(self.cash)}]}]
