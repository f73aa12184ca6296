"""Reconciliation with venue truth: maybe-dispatched intents by clOrdId, and positions + open orders.

``compare`` is pure (unit-tested); ``IntentResolver`` asks the venue about intents whose outcome is
unknown (timeouts, resets, a crash between journal and answer) and never re-sends them;
``Reconciler`` runs GET positions + GET orders-pending with no order in flight and compares.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .clock import now_ms, sleep_unless, utc_now
from .gate import DispatchGate
from .inventory import Inventory
from .venue_client import RestClient
from .wal import Wal

POS_TOLERANCE = 1e-6


def venue_positions(data: list[dict]) -> dict[str, float]:
    """``GET /account/positions`` data -> {instId: signed pos}."""
    out: dict[str, float] = {}
    for d in data:
        try:
            out[str(d["instId"])] = out.get(str(d["instId"]), 0.0) + float(d.get("pos") or 0)
        except (KeyError, TypeError, ValueError):
            continue
    return out


def compare(local: Mapping[str, float], venue: Mapping[str, float], instruments: tuple[str, ...],
            venue_pending: list[dict], local_pending: set[str], cl_prefix: str) -> list[str]:
    """Differences between local state and venue truth (empty list: reconciled).

    Positions are compared per traded instrument. Open orders: every resting order carrying our
    clOrdId prefix must be known locally, and every locally resting order must still rest.
    """
    diffs = []
    for inst in instruments:
        lp, vp = float(local.get(inst, 0.0)), float(venue.get(inst, 0.0))
        if abs(lp - vp) > POS_TOLERANCE:
            diffs.append(f"position {inst}: local {lp:g} venue {vp:g}")
    venue_ours = {str(o.get("clOrdId")) for o in venue_pending if str(o.get("clOrdId", "")).startswith(cl_prefix)}
    for cid in sorted(venue_ours - local_pending):
        diffs.append(f"open order {cid} at venue, unknown locally")
    for cid in sorted(local_pending - venue_ours):
        diffs.append(f"open order {cid} expected, not at venue")
    return diffs


S_NO_ORDER = "51603"  # OKX: order does not exist


class IntentResolver:
    """Resolves maybe-dispatched intents by ``GET /trade/order?clOrdId=`` (never by re-sending).

    "Not found" is final only once the original request can no longer reach the venue: after its
    ``expTime`` (which the venue enforces) plus ``margin_ms`` for clock skew. Until then a held or
    retransmitted request may still land, so the intent stays pending (and reconciliation waits).
    """

    def __init__(self, rest: RestClient, inventory: Inventory, wal: Wal, log: Callable[..., None],
                 on_resolved: Callable[[dict, bool], None], margin_ms: int = 500) -> None:
        self.margin_ms = margin_ms
        self.rest = rest
        self.inv = inventory
        self.wal = wal
        self.log = log
        self.on_resolved = on_resolved
        self.pending: dict[str, dict] = {}
        self.resolved_found = 0
        self.resolved_absent = 0

    def add(self, item: dict) -> None:
        self.pending[item["clOrdId"]] = item

    def _done(self, cid: str, placed: bool, **extra: object) -> None:
        item = self.pending.pop(cid, None)
        if item is None:
            return
        if placed:
            self.resolved_found += 1
        else:
            self.resolved_absent += 1
        self.wal.enqueue({"t": "outcome", "clOrdId": cid, "utc": utc_now(),
                          "result": "resolved_found" if placed else "resolved_absent", **extra})
        self.log("intent_resolved", clOrdId=cid, placed=placed, **extra)
        self.on_resolved(item, placed)

    def may_still_arrive(self, item: dict, now: int | None = None) -> bool:
        """Can the intent's original request still reach the venue (and be accepted)?

        True until ``expTime + margin_ms``. An intent journalled without an expTime (older journal)
        has no deadline the venue enforces: "not found" is then taken as final, as before.
        """
        exp = item.get("expTime")
        if not isinstance(exp, (int, float)):
            return False
        return (now_ms() if now is None else now) <= int(exp) + self.margin_ms

    def seen_on_ws(self, d: dict) -> None:
        """A private WS order update proves the order exists."""
        cid = str(d.get("clOrdId") or "")
        if cid in self.pending:
            self._done(cid, True, ordId=d.get("ordId"), state=d.get("state"), via="ws")

    async def resolve_once(self) -> bool:
        """Try every pending intent once; True if none is left."""
        for cid, item in list(self.pending.items()):
            res = await self.rest.request("GET", "/api/v5/trade/order",
                                          params={"instId": item.get("instId"), "clOrdId": cid})
            if cid not in self.pending:
                continue  # resolved meanwhile by a WS update
            if res.ok and res.code == "0" and res.data:
                d = res.data[0]
                try:
                    acc = float(d.get("accFillSz") or 0)
                except (TypeError, ValueError):
                    acc = 0.0
                self.inv.apply_fill(cid, str(d.get("instId") or item.get("instId")),
                                    str(d.get("side") or item.get("side")), acc)
                self._done(cid, True, ordId=d.get("ordId"), state=d.get("state"), accFillSz=acc, via="query")
            elif (res.ok and res.code != "0") or res.status == 404:
                if res.code == S_NO_ORDER and self.may_still_arrive(item):
                    if not item.get("not_found_logged"):
                        item["not_found_logged"] = True
                        self.log("intent_not_found_before_expiry", clOrdId=cid, expTime=item.get("expTime"),
                                 margin_ms=self.margin_ms)
                    continue  # not proof yet: the original request may still be on its way
                self._done(cid, False, code=res.code, via="query", expTime=item.get("expTime"))
            # transport errors, 429, 5xx: still unknown, try again later
        return not self.pending

    async def run(self, stopping: asyncio.Event, period_s: float = 0.2) -> None:
        while not stopping.is_set():
            if self.pending:
                await self.resolve_once()
            await sleep_unless(stopping, period_s)


@dataclass
class ReconcileOutcome:
    ok: bool
    started_mono: float
    diffs: list[str] = field(default_factory=list)
    error: str | None = None
    bootstrap: bool = False


class Reconciler:
    """GET positions + GET orders-pending with no order in flight, compared with local state."""

    def __init__(self, rest: RestClient, inventory: Inventory, gate: DispatchGate, resolver: IntentResolver,
                 cl_prefix: str, log: Callable[..., None]) -> None:
        self.rest = rest
        self.inv = inventory
        self.gate = gate
        self.resolver = resolver
        self.prefix = cl_prefix
        self.log = log
        self.count = 0
        self.attempts = 0
        self.last_success_utc: str | None = None
        self.last_success_mono: float | None = None
        self.last_result: dict | None = None
        self.last_attempt_mono: float | None = None

    async def reconcile(self, bootstrap: bool) -> ReconcileOutcome:
        """One attempt. ``bootstrap`` (start-up): local state is unknown, venue truth is adopted."""
        started = time.monotonic()
        self.attempts += 1
        self.last_attempt_mono = started
        async with self.gate.exclusive():
            if not await self.resolver.resolve_once():
                out = ReconcileOutcome(False, started, error=f"{len(self.resolver.pending)} intents unresolved")
                return self._finish(out)
            pos = await self.rest.request("GET", "/api/v5/account/positions")
            if not (pos.ok and pos.code == "0"):
                return self._finish(ReconcileOutcome(False, started, error=f"positions: {pos.error or pos.code}"))
            pend = await self.rest.request("GET", "/api/v5/trade/orders-pending")
            if not (pend.ok and pend.code == "0"):
                return self._finish(ReconcileOutcome(False, started, error=f"orders-pending: {pend.error or pend.code}"))
            venue = venue_positions(pos.data)
            diffs = compare(self.inv.snapshot(), venue, self.inv.instruments, pend.data, set(), self.prefix)
            if bootstrap:
                self.inv.adopt(venue)
                return self._finish(ReconcileOutcome(True, started, diffs, bootstrap=True))
            if diffs:
                self.inv.adopt(venue)  # venue truth wins; a later clean reconciliation clears the latch
                return self._finish(ReconcileOutcome(False, started, diffs))
            return self._finish(ReconcileOutcome(True, started))

    def _finish(self, out: ReconcileOutcome) -> ReconcileOutcome:
        self.last_result = {"ok": out.ok, "utc": utc_now(), "mono": time.monotonic(), "diffs": out.diffs,
                            "error": out.error, "bootstrap": out.bootstrap}
        if out.ok:
            self.count += 1
            self.last_success_utc = self.last_result["utc"]
            self.last_success_mono = self.last_result["mono"]
        self.log("reconcile", **self.last_result)
        return out
