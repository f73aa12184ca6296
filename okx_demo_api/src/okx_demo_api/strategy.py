"""Trading loop: a simple strategy that keeps order traffic flowing at TARGET_ORDER_RATE.

Cycle of ticks: opens (non-reduceOnly, 1 contract), reduce-only closes, and every 12th tick a two-leg
order (leg A on instrument 1, leg B hedging on instrument 2, opposite sides). |position| stays within
``MAX_POS`` contracts per instrument; single opens stop one contract short of it (``OPEN_CAP``), so a two-leg
order always has room for both legs at steady state, whatever positions the service drifted to. In Kill or during partial-fill containment it only flattens
(reduce-only orders until exposure is zero). The loop ticks whatever the mode: ``loop_tick_ms``
always moves, and a tick without an order probes the ticker, so calls keep flowing in every mode.
"""
from __future__ import annotations

import asyncio
import itertools
import time
from typing import Awaitable, Callable

from .clock import now_ms, sleep_unless
from .dispatcher import Dispatcher, Intent
from .inventory import Inventory
from .policy import ACTIVE, KILL, Decision

MAX_POS = 4.0
# Single opens stop one contract short of MAX_POS: a two-leg order then has room for either side at
# steady state, and positions still pin at 3 + 3 (drill 3 waits for an exposure of 5 before its fault).
OPEN_CAP = MAX_POS - 1.0
TWO_LEG_EVERY = 12
CLOSE_EVERY = 3
FLATTEN_CHUNK = 2.0
MAX_PROBES_IN_FLIGHT = 4


class Strategy:
    """Decides one action per tick and hands it to the Dispatcher."""

    def __init__(self, inventory: Inventory, dispatcher: Dispatcher, decide: Callable[[], Decision],
                 containment_active: Callable[[], bool], order_rate: float, cl_prefix: str,
                 probe: Callable[[str], Awaitable[object]] | None = None) -> None:
        self.inv = inventory
        self.dispatcher = dispatcher
        self.decide = decide
        self.containment_active = containment_active
        self.period = 1.0 / order_rate
        self.prefix = cl_prefix
        self.i1, self.i2 = inventory.instruments[0], inventory.instruments[1]
        self._seq = itertools.count(1)
        self.ticks = 0
        self.loop_tick_ms = now_ms()
        self.opens_suppressed = 0
        self.probe = probe
        self._probes_in_flight = 0

    def _probe(self) -> None:
        """A tick without an order still asks the venue for a price (GET ticker): the service keeps
        ~TARGET_ORDER_RATE calls in flight in every mode, so a network fault always meets traffic."""
        if self.probe is None or self._probes_in_flight >= MAX_PROBES_IN_FLIGHT:
            return
        self._probes_in_flight += 1
        task = asyncio.get_running_loop().create_task(self.probe(self.i1 if self.ticks % 2 else self.i2))
        task.add_done_callback(self._probe_done)

    def _probe_done(self, task: asyncio.Task) -> None:
        self._probes_in_flight -= 1
        if not task.cancelled():
            task.exception()  # transport errors are already counted by the REST client

    def next_id(self, tag: str) -> str:
        """clOrdId: run prefix + tag + counter (unique across runs: OKX keeps a clOrdId unique only among pending orders, so it is no idempotency key)."""
        return f"{self.prefix}{tag}{next(self._seq)}"

    async def run(self, stopping: asyncio.Event) -> None:
        next_t = time.monotonic()
        while not stopping.is_set():
            self.loop_tick_ms = now_ms()
            self.ticks += 1
            intents = self.decide_action(self.ticks)
            if not (intents and self.dispatcher.submit(intents)):
                self._probe()
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -self.period:  # fell behind (machine busy): do not burst to catch up
                next_t = time.monotonic()
                delay = 0.0
            await sleep_unless(stopping, delay)

    # -- decisions --------------------------------------------------------------------------------
    def _flatten(self) -> list[Intent] | None:
        inst = max(self.inv.instruments, key=lambda i: abs(self.inv.committed(i)))
        c = self.inv.committed(inst)
        if abs(c) < 1e-9:
            return None
        sz = min(abs(c), FLATTEN_CHUNK)
        return [Intent(self.next_id("f"), inst, "sell" if c > 0 else "buy", sz, True, "flatten")]

    def _close(self) -> list[Intent] | None:
        inst = max(self.inv.instruments, key=lambda i: abs(self.inv.committed(i)))
        c = self.inv.committed(inst)
        if abs(c) < 1e-9:
            return None
        return [Intent(self.next_id("c"), inst, "sell" if c > 0 else "buy", min(1.0, abs(c)), True, "close")]

    def _open_side(self, inst: str, k: int) -> str | None:
        c = self.inv.committed(inst)
        if c > 0:
            return "buy" if c + 1 <= OPEN_CAP else None
        if c < 0:
            return "sell" if c - 1 >= -OPEN_CAP else None
        return "buy" if (k // TWO_LEG_EVERY) % 2 == 0 else "sell"

    def _two_leg_side(self) -> str | None:
        """Leg A's side: the one of the two (leg B takes the other) that keeps both legs within
        ``MAX_POS`` and leaves the larger |position| smaller; None when neither fits."""
        a, b = self.inv.committed(self.i1), self.inv.committed(self.i2)
        fits = [s for s, d in (("buy", 1.0), ("sell", -1.0)) if abs(a + d) <= MAX_POS and abs(b - d) <= MAX_POS]
        if not fits:
            return None
        d_of = {"buy": 1.0, "sell": -1.0}
        return min(fits, key=lambda s: (max(abs(a + d_of[s]), abs(b - d_of[s])), s != ("buy" if a <= 0 else "sell")))

    def decide_action(self, k: int) -> list[Intent] | None:
        """The tick's action given the current Decision (opens are dropped unless Active)."""
        d = self.decide()
        if d.trading_mode == KILL or self.containment_active():
            return self._flatten()
        if k % TWO_LEG_EVERY == 0:
            if d.trading_mode != ACTIVE:
                self.opens_suppressed += 1
                return self._close()
            side = self._two_leg_side()
            if side is None:  # both positions at the limit, same sign: closes make room by the next one
                return self._close()
            group = self.next_id("g")
            other = "sell" if side == "buy" else "buy"
            return [Intent(group + "a", self.i1, side, 1.0, False, "two_leg", group, "A"),
                    Intent(group + "b", self.i2, other, 1.0, False, "two_leg", group, "B")]
        if k % CLOSE_EVERY == 0:
            return self._close() or (self._open(k) if d.trading_mode == ACTIVE else None)
        if d.trading_mode != ACTIVE:
            self.opens_suppressed += 1
            return self._close()
        return self._open(k) or self._close()

    def _open(self, k: int) -> list[Intent] | None:
        inst = self.i1 if k % 2 else self.i2
        side = self._open_side(inst, k)
        if side is None:
            return None
        return [Intent(self.next_id("o"), inst, side, 1.0, False, "open")]
