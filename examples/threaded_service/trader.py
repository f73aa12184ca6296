"""The trading loop, the order path and reconciliation.

Order path: policy check -> WAL intent enqueued (full queue: fail closed, counted) -> wait until it is
fsynced (else journal it abandoned) -> policy check again, nothing in between -> REST with an
``expTime`` header. Reduce-only orders are journalled if the queue takes them but never wait for the
WAL: they cannot add exposure, so WAL backpressure does not block risk reduction. One order is on the wire at a time, so reconciliation can find a quiet moment and
a fault never meets a burst. An order that got no answer is unresolved: it is looked up by
``clOrdId`` once its ``expTime`` has passed, never re-sent.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from .core import State, now_ms
from .rest import NoAnswer, Rest
from .wal import Wal, read_journal, unresolved_intents

log = logging.getLogger("threaded_service.trader")
MAX_POS = 3
S_CL_ORD_ID_PENDING = "51016"  # OKX: an order with this clOrdId is pending
EXP_MARGIN_MS = 500   # after expTime, wait this much more before trusting "order does not exist"


class Trader:
    def __init__(self, state: State, rest: Rest, wal: Wal, stop: threading.Event, order_rate: float,
                 run_prefix: str, http_timeout_s: float, lease_held: Any = lambda: True) -> None:
        self.s, self.rest, self.wal, self.stop_evt = state, rest, wal, stop
        self.lease_held = lease_held   # False once a newer instance took the data folder's trading lease
        self.period = 1.0 / order_rate
        self.prefix = run_prefix
        self.counter = 0
        self.exp_ms = int(http_timeout_s * 1000)
        self.rng = random.Random()
        self.ticks = 0
        self.tickers_inflight = 0
        self._tick_lock = threading.Lock()

    # -- identifiers -----------------------------------------------------------------------------
    def next_cl_ord_id(self) -> str:
        self.counter += 1
        return f"ts{self.prefix}{self.counter:08d}"

    # -- WAL ---------------------------------------------------------------------------------------
    def _journal(self, data: dict[str, Any]) -> bool:
        rec = self.wal.enqueue(data)
        if rec is None:
            with self.s.lock:
                self.s.wal_failed_mono = time.monotonic()
            log.warning("wal enqueue failed (queue full): %s %s fails closed", data.get("kind"), data.get("clOrdId"))
            return False
        return True

    def _intents(self, legs: list[dict[str, Any]]) -> bool:
        """Journal each leg's intent and wait until all are durable; False means fail closed. Reduce-only
        legs are journalled when the queue takes them, never waited for (always True)."""
        exp = now_ms() + self.exp_ms
        if all(leg.get("reduceOnly") is True for leg in legs):
            for leg in legs:
                leg["expTime"] = exp
                self.wal.enqueue({"kind": "intent", "utc_ms": now_ms(), "expTime": exp, **leg})
            return True
        recs = []
        for leg in legs:
            leg["expTime"] = exp
            rec = self.wal.enqueue({"kind": "intent", "utc_ms": now_ms(), "expTime": exp, **leg})
            if rec is None:
                with self.s.lock:
                    self.s.wal_failed_mono = time.monotonic()
                for r in recs:
                    self._journal({"kind": "outcome", "clOrdId": r.data["clOrdId"], "result": "abandoned"})
                return False
            recs.append(rec)
        deadline = time.monotonic() + 0.05
        for rec in recs:
            if not rec.durable.wait(max(0.0, deadline - time.monotonic())):
                for r in recs:
                    self._journal({"kind": "outcome", "clOrdId": r.data["clOrdId"], "result": "abandoned"})
                return False
        return True

    # -- dispatch ------------------------------------------------------------------------------
    def _send(self, legs: list[dict[str, Any]], opening: bool) -> None:
        """Send one order (or a two-leg batch) whose intents are durable."""
        # Second policy check, immediately before the request: nothing is awaited in between. A fenced
        # instance (a newer one trades on this data) sends nothing at all.
        if not self.lease_held() or (opening and not self.s.open_allowed()):
            for leg in legs:
                self._journal({"kind": "outcome", "clOrdId": leg["clOrdId"], "result": "abandoned"})
            return
        body = [{k: v for k, v in leg.items() if k != "expTime"} for leg in legs]
        with self.s.lock:
            self.s.inflight += 1
        try:
            if len(body) == 1:
                status, ans = self.rest.call("POST", "/api/v5/trade/order", body=body[0],
                                             exp_time_ms=legs[0]["expTime"], is_order=True)
            else:
                status, ans = self.rest.call("POST", "/api/v5/trade/batch-orders", body=body,
                                             exp_time_ms=legs[0]["expTime"], is_order=True)
        except NoAnswer:
            with self.s.lock:
                for leg in legs:
                    self.s.unresolved[leg["clOrdId"]] = leg
            return
        finally:
            with self.s.lock:
                self.s.inflight -= 1
        results = ans.get("data") or []
        if status != 200 and not results:
            # 429/503/400: not executed
            for leg in legs:
                self._journal({"kind": "outcome", "clOrdId": leg["clOrdId"], "result": "rejected", "http": status})
            return
        accepted, pending = [], 0
        for leg, res in zip(legs, results):
            if str(res.get("sCode")) == S_CL_ORD_ID_PENDING:
                # OKX keeps clOrdIds unique among pending orders only: this one exists (an earlier copy got
                # there first). Resolve it by clOrdId like an unanswered request; never count it rejected.
                with self.s.lock:
                    self.s.unresolved[leg["clOrdId"]] = leg
                pending += 1
                continue
            ok = str(res.get("sCode")) == "0"
            self._journal({"kind": "outcome", "clOrdId": leg["clOrdId"], "result": "accepted" if ok else "rejected",
                           "ordId": res.get("ordId"), "sCode": res.get("sCode")})
            if ok:
                accepted.append(leg)
                self._apply_fill(leg["instId"], leg["side"], float(leg["sz"]))
        if len(legs) == 2 and len(accepted) == 1 and not pending:
            self._naked_leg()

    def _apply_fill(self, inst: str, side: str, sz: float) -> None:
        # Market orders fill completely on arrival at this venue.
        with self.s.lock:
            self.s.positions[inst] = round(self.s.positions[inst] + (sz if side == "buy" else -sz), 8)

    def _naked_leg(self) -> None:
        """One leg filled, the other rejected: emergency ReduceOnly + Degraded until flat and cooled."""
        with self.s.lock:
            self.s.emergency = True
            self.s.neutral_since = None
            self.s.naked_events.append(time.monotonic())
        log.warning("two-leg order filled one leg only: emergency reduce-only containment")

    # -- resolution of unanswered orders -------------------------------------------------------
    def resolve_unknown(self, intents: list[dict[str, Any]]) -> bool:
        """Look each intent up by clOrdId; True when every one has a journalled answer."""
        done = True
        for leg in intents:
            cl = leg["clOrdId"]
            wait_ms = int(leg.get("expTime") or 0) + EXP_MARGIN_MS - now_ms()
            try:
                status, ans = self.rest.call("GET", "/api/v5/trade/order", params={"instId": leg["instId"], "clOrdId": cl})
            except NoAnswer:
                done = False
                continue
            data = ans.get("data") or []
            if str(ans.get("code")) == "0" and data:
                o = data[0]
                filled = float(o.get("accFillSz") or 0)
                self._journal({"kind": "outcome", "clOrdId": cl, "result": "resolved_found", "state": o.get("state"),
                               "accFillSz": o.get("accFillSz")})
                if filled and self.s.positions_known:
                    self._apply_fill(leg["instId"], leg["side"], filled)
                with self.s.lock:
                    self.s.unresolved.pop(cl, None)
            elif str(ans.get("code")) == "51603":
                if wait_ms > 0:
                    # Its request could still reach the venue before expTime: not absent yet.
                    done = False
                    continue
                self._journal({"kind": "outcome", "clOrdId": cl, "result": "resolved_absent"})
                with self.s.lock:
                    self.s.unresolved.pop(cl, None)
            else:
                done = False
        return done

    def replay(self) -> None:
        """Resolve the intents a previous run left without an outcome (runs before any reconcile)."""
        pending = unresolved_intents(read_journal(self.wal.path))
        with self.s.lock:
            for leg in pending:
                self.s.unresolved[leg["clOrdId"]] = leg
        if pending:
            log.info("wal replay: %d intent(s) without outcome", len(pending))
        while not self.stop_evt.is_set():
            with self.s.lock:
                todo = list(self.s.unresolved.values())
            if not todo or self.resolve_unknown(todo):
                break
            time.sleep(0.1)
        with self.s.lock:
            self.s.replay_done = True

    # -- reconciliation --------------------------------------------------------------------------
    def reconcile(self) -> bool:
        """Positions + open orders from the venue against local state, with no order in flight.

        Clears every latch code whose condition stayed over; a mismatch adopts venue truth and latches
        INVENTORY_MISMATCH (the next clean reconciliation clears it)."""
        s = self.s
        with s.lock:
            if s.reconciling:
                return False
            s.reconciling = True
            s.recon["attempts"] += 1
            gen = s.generation
            codes = [c for c in s.latch if s.condition_clear(c)]
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                with s.lock:
                    if s.inflight == 0:
                        break
                time.sleep(0.005)
            else:
                return False
            with s.lock:
                if s.unresolved or not s.replay_done:
                    return False
            st1, pos = self.rest.call("GET", "/api/v5/account/positions")
            st2, pend = self.rest.call("GET", "/api/v5/trade/orders-pending")
            if st1 != 200 or st2 != 200 or str(pos.get("code")) != "0" or str(pend.get("code")) != "0":
                return False
            venue = {i: 0.0 for i in s.instruments}
            for p in pos.get("data") or []:
                if p.get("instId") in venue:
                    venue[p["instId"]] = float(p.get("pos") or 0)
            for o in pend.get("data") or []:
                # This service never rests orders: anything pending is foreign; cancel it.
                try:
                    self.rest.call("POST", "/api/v5/trade/cancel-order", body={"instId": o["instId"], "ordId": o["ordId"]})
                except NoAnswer:
                    return False
            with s.lock:
                if s.generation != gen or s.inflight:
                    return False   # a condition came back (or an order left) during the reads
                match = s.positions_known and all(abs(venue[i] - s.positions[i]) < 1e-9 for i in venue) \
                    and not (pend.get("data") or [])
                first = not s.positions_known
                s.positions = venue
                s.positions_known = True
                if not match and not first:
                    s.set_latch("INVENTORY_MISMATCH_RECONCILE_REQUIRED", f"venue {venue}")
                    return False
                s.clear_latch(codes)
                s.recon["count"] += 1
                s.recon["last_success_mono"] = time.monotonic()
                from .rest import utc_now
                s.recon["last_success_utc"] = utc_now()
            log.info("reconciliation ok: positions %s, cleared %s", venue, codes)
            return True
        except NoAnswer:
            return False
        finally:
            with s.lock:
                s.reconciling = False

    def reconcile_loop(self) -> None:
        while not self.stop_evt.is_set():
            time.sleep(0.02)
            with self.s.lock:
                need = (bool(self.s.latch) or not self.s.positions_known) and self.s.replay_done
                ready = all(self.s.condition_clear(c) for c in self.s.latch)
                if self.s.unresolved and not self.s.reconciling:
                    todo = list(self.s.unresolved.values())
                else:
                    todo = []
            if todo:
                self.resolve_unknown(todo)
                continue
            if need and ready:
                if not self.reconcile():
                    time.sleep(0.1)

    # -- the loop --------------------------------------------------------------------------------
    def _ticker(self) -> None:
        """A price read when no order goes out: traffic in every mode (a network fault meets calls)."""
        inst = self.rng.choice(self.s.instruments)
        try:
            self.rest.call("GET", "/api/v5/market/ticker", params={"instId": inst})
        except NoAnswer:
            pass
        finally:
            with self._tick_lock:
                self.tickers_inflight -= 1

    def _spawn_ticker(self) -> None:
        with self._tick_lock:
            if self.tickers_inflight >= 2:
                return
            self.tickers_inflight += 1
        threading.Thread(target=self._ticker, daemon=True).start()

    def _leg(self, inst: str, side: str, sz: float, reduce_only: bool) -> dict[str, Any]:
        return {"instId": inst, "tdMode": "cross", "clOrdId": self.next_cl_ord_id(), "side": side,
                "ordType": "market", "sz": f"{sz:g}", "reduceOnly": reduce_only}

    def decide(self, mode: str) -> tuple[list[dict[str, Any]], bool] | None:
        """The next order: (legs, opening), or None. Outside Active only reduce-only flattening."""
        s = self.s
        with s.lock:
            pos = dict(s.positions)
        if mode != "Active":
            for inst, p in pos.items():
                if p:
                    return [self._leg(inst, "sell" if p > 0 else "buy", abs(p), True)], False
            return None
        self.ticks += 1
        a, b = s.instruments[0], s.instruments[1]
        if self.ticks % 12 == 0 and abs(pos[a] + 1) <= MAX_POS and abs(pos[b] - 1) <= MAX_POS:
            return [self._leg(a, "buy", 1, False), self._leg(b, "sell", 1, False)], True
        inst = self.rng.choice(s.instruments)
        p = pos[inst]
        if p and (abs(p) >= MAX_POS or self.rng.random() < 0.4):
            return [self._leg(inst, "sell" if p > 0 else "buy", 1, True)], False
        side = self.rng.choice(("buy", "sell"))
        return [self._leg(inst, side, 1, False)], True

    def flatten_now(self) -> dict[str, Any]:
        """The reduce_exposure hook: one reduce-only order per instrument for its whole position, sent now
        (each on its own thread, so the control poller never waits for the venue)."""
        with self.s.lock:
            pos = {i: p for i, p in self.s.positions.items() if p}
        sent = []
        for inst, p in pos.items():
            legs = [self._leg(inst, "sell" if p > 0 else "buy", abs(p), True)]
            if self._intents(legs):
                threading.Thread(target=self._send, args=(legs, False), daemon=True).start()
                sent.append(legs[0]["clOrdId"])
        return {"orders": sent, "positions": pos}

    def _containment(self) -> None:
        with self.s.lock:
            if not self.s.emergency:
                return
            flat = self.s.exposure() == 0 and self.s.inflight == 0 and not self.s.unresolved
            now = time.monotonic()
            if not flat:
                self.s.neutral_since = None
            elif self.s.neutral_since is None:
                self.s.neutral_since = now
            elif now - self.s.neutral_since >= self.s.emergency_cooldown_s:
                self.s.emergency = False
                self.s.neutral_since = None
                log.info("containment over: flat for the cooldown")

    def run(self) -> None:
        next_t = time.monotonic()
        while not self.stop_evt.is_set():
            next_t += self.period
            with self.s.lock:
                self.s.loop_tick_ms = now_ms()
            self._containment()
            mode, _, _ = self.s.resolve()
            sent = False
            with self.s.lock:
                can_trade = (self.s.positions_known and not self.s.reconciling and not self.s.unresolved
                             and self.s.inflight == 0 and not self.s.shutting_down)
            if can_trade:
                choice = self.decide(mode)
                if choice is not None:
                    legs, opening = choice
                    if (opening and mode != "Active") or not self.lease_held():
                        pass   # first policy check: opens leave only in Active; a fenced instance sends nothing
                    elif self._intents(legs):
                        self._send(legs, opening)
                        sent = True
            if not sent:
                self._spawn_ticker()
            delay = next_t - time.monotonic()
            if delay > 0:
                self.stop_evt.wait(delay)
            else:
                next_t = time.monotonic()
