"""Order path: policy gate -> WAL (durable) -> policy gate again -> REST -> outcome journalled.

Nothing leaves the process unless (1) the PolicyGuard allows it right before the request is sent and
(2) its WAL record is fsynced. A full WAL queue fails the order closed. A two-leg order whose legs
end differently (one filled, one rejected) is reported as a naked (partial-fill) event.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from .clock import now_ms, utc_now
from .gate import DispatchGate
from .inventory import Inventory
from .policy import Decision
from .telemetry import Telemetry
from .venue_client import RestClient, RestResult
from .wal import Wal

WAL_DURABLE_TIMEOUT_S = 1.0  # an intent not durable by then is abandoned, never sent late
MIN_VALIDITY_MS = 100  # an order whose expTime is closer than this when it would leave is abandoned
S_EXP_TIME_PASSED = "50036"  # OKX: the request reached the venue after its expTime; nothing was processed
# OKX: an order with this clOrdId is still pending. clOrdIds are unique only among pending orders, so
# this says the order exists (an earlier copy of the request got there first): resolve it, never
# count it as rejected.
S_CL_ORD_ID_PENDING = "51016"


def fmt_sz(sz: float) -> str:
    return str(int(sz)) if float(sz).is_integer() else f"{sz:.8f}".rstrip("0")


@dataclass(frozen=True)
class Intent:
    """One order the strategy wants to send."""
    cl_ord_id: str
    inst: str
    side: str  # buy | sell
    sz: float
    reduce_only: bool
    purpose: str  # open | close | flatten | two_leg
    group: str | None = None
    leg: str | None = None

    @property
    def signed(self) -> float:
        return self.sz if self.side == "buy" else -self.sz

    def body(self) -> dict:
        return {"instId": self.inst, "tdMode": "cross", "clOrdId": self.cl_ord_id, "side": self.side,
                "ordType": "market", "sz": fmt_sz(self.sz), "reduceOnly": self.reduce_only}

    def record(self, run_id: str, exp_time_ms: int | None = None) -> dict:
        return {"t": "intent", "clOrdId": self.cl_ord_id, "instId": self.inst, "side": self.side,
                "sz": self.sz, "reduceOnly": self.reduce_only, "purpose": self.purpose, "group": self.group,
                "leg": self.leg, "run_id": run_id, "utc": utc_now(), "mono": time.monotonic(),
                "expTime": exp_time_ms}


class Dispatcher:
    """Sends intents; every step that could let an OPEN through re-checks the policy."""

    def __init__(self, wal: Wal, rest: RestClient, inventory: Inventory, telemetry: Telemetry,
                 gate: DispatchGate, decide: Callable[[], Decision], log: Callable[..., None],
                 on_naked: Callable[[dict], None], on_unknown: Callable[[dict], None], run_id: str,
                 order_expiry_ms: int = 1500, lease_held: Callable[[], bool] = lambda: True) -> None:
        self.wal = wal
        self.rest = rest
        self.inv = inventory
        self.tel = telemetry
        self.gate = gate
        self.decide = decide
        self.log = log
        self.on_naked = on_naked
        self.on_unknown = on_unknown
        self.run_id = run_id
        self.order_expiry_ms = order_expiry_ms
        self.lease_held = lease_held     # False once a newer instance took the data folder's trading lease
        self.fenced_logged = False
        self.stopping = False
        self.tasks: set[asyncio.Task] = set()
        self.counts = {"blocked": 0, "wal_fail_closed": 0, "abandoned": 0, "acked": 0, "rejected": 0,
                       "unknown": 0, "opens_sent": 0, "reduce_sent": 0, "expired": 0}
        self._groups: dict[str, dict[str, bool | None]] = {}

    # -- policy -----------------------------------------------------------------------------------
    def allowed(self, intents: Iterable[Intent]) -> bool:
        """True if the current Decision lets every intent leave the process."""
        if self.stopping:
            return False
        intents = list(intents)
        before = sum(abs(self.inv.committed(i)) for i in self.inv.instruments)
        after_pos = {i: self.inv.committed(i) for i in self.inv.instruments}
        for it in intents:
            after_pos[it.inst] = after_pos.get(it.inst, 0.0) + it.signed
        after = sum(abs(p) for p in after_pos.values())
        d = self.decide()
        return all(d.allows(it.reduce_only, before, after) for it in intents)

    # -- submission -------------------------------------------------------------------------------
    def submit(self, intents: list[Intent]) -> bool:
        """Start dispatching ``intents`` (one order or the two legs of a two-leg order)."""
        if not self.allowed(intents):
            self.counts["blocked"] += 1
            return False
        task = asyncio.get_running_loop().create_task(self._dispatch(intents))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def drain(self, timeout: float) -> None:
        """Wait for in-flight dispatches (graceful stop)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)

    def _fenced(self, intents: list[Intent]) -> None:
        self.counts["abandoned"] += 1
        if not self.fenced_logged:
            self.fenced_logged = True
            self.log("fenced", reason="trading lease taken by a newer instance")
        self.log("order_abandoned", reason="fenced", clOrdIds=[i.cl_ord_id for i in intents])

    def _outcome(self, it: Intent, result: str, **extra: object) -> None:
        rec = {"t": "outcome", "clOrdId": it.cl_ord_id, "result": result, "utc": utc_now(), **extra}
        # If this fails (queue full) the intent stays "maybe dispatched" in the journal and a restart
        # resolves it by asking the venue: safe either way.
        self.wal.enqueue(rec)

    def _bypasses_wal(self, intents: list[Intent]) -> bool:
        """Reduce-only orders never wait for the WAL (see _dispatch)."""
        return all(it.reduce_only for it in intents)

    async def _dispatch(self, intents: list[Intent]) -> None:
        # The request's deadline is fixed with the intent and journalled with it: whatever happens
        # (timeout, partition, crash), the venue refuses the order after it, so "not found" after it
        # (plus a margin) is final. See IntentResolver.may_still_arrive.
        if not self.lease_held():      # fenced: not even journalled (the WAL is the newer instance's now)
            self._fenced(intents)
            return
        exp_ms = now_ms() + self.order_expiry_ms
        if self._bypasses_wal(intents):
            # ReduceOnly actions stay permitted under WAL backpressure: a reduce-only order cannot add
            # exposure (the venue refuses one that would), so it is journalled if the queue takes it but
            # never waits for the WAL. A restart resolves a journalled one by clOrdId, never by re-sending.
            for it in intents:
                if self.wal.enqueue(it.record(self.run_id, exp_ms)) is None:
                    self.counts["reduce_unjournalled"] = self.counts.get("reduce_unjournalled", 0) + 1
            await self._send(intents, exp_ms)
            return
        futs = []
        for it in intents:
            fut = self.wal.enqueue(it.record(self.run_id, exp_ms))
            if fut is None:
                # Fail closed: an order that cannot be journalled is never sent.
                self.counts["wal_fail_closed"] += 1
                self.log("order_fail_closed", reason="wal_enqueue_failed", clOrdId=it.cl_ord_id,
                         purpose=it.purpose, reduceOnly=it.reduce_only, wal_depth=self.wal.depth)
                for done in intents[: len(futs)]:
                    self._outcome(done, "abandoned", reason="wal_enqueue_failed")
                return
            futs.append(fut)
        try:
            await asyncio.wait_for(asyncio.gather(*futs), WAL_DURABLE_TIMEOUT_S)
        except asyncio.TimeoutError:
            self.counts["abandoned"] += 1
            self.log("order_abandoned", reason="wal_not_durable", clOrdIds=[i.cl_ord_id for i in intents])
            for it in intents:
                self._outcome(it, "abandoned", reason="wal_not_durable")
            return
        await self._send(intents, exp_ms)

    async def _send(self, intents: list[Intent], exp_ms: int) -> None:
        lock = self.gate.exclusive() if len(intents) > 1 else self.gate.shared()
        async with lock:
            # Fenced: a newer instance of this service trades on the same data (our node was lost and we
            # were replaced); nothing more leaves this one.
            if not self.lease_held():
                self._fenced(intents)
                for it in intents:
                    self._outcome(it, "abandoned", reason="fenced")
                return
            # Last check, with nothing awaited between it and the request leaving the process.
            if not self.allowed(intents):
                self.counts["abandoned"] += 1
                self.log("order_abandoned", reason="policy", clOrdIds=[i.cl_ord_id for i in intents],
                         mode=self.decide().trading_mode)
                for it in intents:
                    self._outcome(it, "abandoned", reason="policy")
                return
            if now_ms() > exp_ms - MIN_VALIDITY_MS:
                self.counts["abandoned"] += 1
                self.log("order_abandoned", reason="expiry", clOrdIds=[i.cl_ord_id for i in intents], expTime=exp_ms)
                for it in intents:
                    self._outcome(it, "abandoned", reason="expiry")
                return
            for it in intents:
                self.inv.inflight[it.inst] += it.signed
                if it.reduce_only:
                    self.counts["reduce_sent"] += 1
                else:
                    self.counts["opens_sent"] += 1
            self.tel.orders_sent += len(intents)
            try:
                if len(intents) == 1:
                    res = await self.rest.request("POST", "/api/v5/trade/order", body=intents[0].body(),
                                                  exp_time_ms=exp_ms)
                else:
                    res = await self.rest.request("POST", "/api/v5/trade/batch-orders",
                                                  body=[it.body() for it in intents], exp_time_ms=exp_ms)
            finally:
                for it in intents:
                    self.inv.inflight[it.inst] -= it.signed
            self._handle(intents, res, exp_ms)

    # -- results ----------------------------------------------------------------------------------
    def _handle(self, intents: list[Intent], res: RestResult, exp_ms: int | None = None) -> None:
        if res.ok and res.code == S_EXP_TIME_PASSED:
            # The venue got to the request after its deadline and processed nothing: not placed.
            for it in intents:
                self.counts["rejected"] += 1
                self.counts["expired"] += 1
                self._outcome(it, "rejected", reason="expTime_passed", code=res.code)
            return
        if res.status == 429:
            # The rate limiter answered before the order was processed: not placed.
            for it in intents:
                self.counts["rejected"] += 1
                self._outcome(it, "rejected", reason="http_429")
            return
        if not res.ok or len(res.data) != len(intents):
            # Timeout, reset, 5xx: the order may or may not exist; resolve by clOrdId, never re-send.
            for it in intents:
                self.counts["unknown"] += 1
                self._outcome(it, "unknown", reason=res.error or f"status {res.status}")
                self.on_unknown({"clOrdId": it.cl_ord_id, "instId": it.inst, "side": it.side, "sz": it.sz,
                                 "group": it.group, "leg": it.leg, "expTime": exp_ms})
            if len(intents) > 1:
                self._groups[intents[0].group or ""] = {it.leg or "": None for it in intents}
            return
        placed: dict[str, bool | None] = {}
        for it, d in zip(intents, res.data):
            s_code = str(d.get("sCode", res.code))
            if s_code == S_CL_ORD_ID_PENDING:
                self.counts["unknown"] += 1
                self._outcome(it, "unknown", reason="clOrdId_pending", sCode=s_code)
                self.on_unknown({"clOrdId": it.cl_ord_id, "instId": it.inst, "side": it.side, "sz": it.sz,
                                 "group": it.group, "leg": it.leg, "expTime": exp_ms})
                placed[it.leg or ""] = None
            elif s_code == "0":
                self.counts["acked"] += 1
                # Market orders fill completely (venue protocol): apply now, the WS update dedupes.
                self.inv.apply_fill(it.cl_ord_id, it.inst, it.side, it.sz)
                self._outcome(it, "acked", ordId=d.get("ordId"))
                placed[it.leg or ""] = True
            else:
                self.counts["rejected"] += 1
                self._outcome(it, "rejected", sCode=s_code, sMsg=d.get("sMsg"))
                placed[it.leg or ""] = False
        if len(intents) > 1:
            if None in placed.values():
                self._groups[intents[0].group or ""] = placed  # settled once the resolver answers
            else:
                self._check_group(intents[0].group or "", placed, intents)  # type: ignore[arg-type]

    def resolved(self, item: dict, placed: bool) -> None:
        """An unknown outcome was resolved by querying the venue (or by a private WS update)."""
        group = item.get("group")
        if not group or group not in self._groups:
            return
        legs = self._groups[group]
        legs[item.get("leg") or ""] = placed
        if all(v is not None for v in legs.values()):
            del self._groups[group]
            self._check_group(group, legs, None)  # type: ignore[arg-type]

    def _check_group(self, group: str, placed: dict[str, bool], intents: list[Intent] | None) -> None:
        if len(set(placed.values())) > 1:
            detail = {"group": group, "legs": placed,
                      "clOrdIds": [i.cl_ord_id for i in intents] if intents else None}
            self.log("two_leg_naked", **detail)
            self.on_naked(detail)
