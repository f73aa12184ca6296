"""The venue's trade prints kept for the REST history endpoints: ``market/trades`` and
``market/candles`` / ``history-candles`` (OHLCV bars aggregated on request).

A bounded window per instrument (:data:`KEEP` prints, about 17 minutes at the default 50 ms tick).
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .market import INSTRUMENTS, TickTrade, fmt

KEEP = 20000
_BAR = re.compile(r"^(\d+)([smHDWM])(utc)?$")
_UNIT_MS = {"s": 1000, "m": 60_000, "H": 3_600_000, "D": 86_400_000, "W": 7 * 86_400_000, "M": 30 * 86_400_000}


@dataclass(frozen=True)
class Print:
    """One public trade as the REST history serves it."""
    trade_id: int
    px: Decimal
    sz: int
    side: str
    ts: int


def bar_ms(bar: str) -> int | None:
    """OKX's ``bar`` (``1m``, ``5m``, ``1H``, ``1D``, ``1Dutc`` ...) in milliseconds; None if not one."""
    m = _BAR.match(bar)
    return int(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


class Prints:
    """Recent trade prints of every instrument."""

    def __init__(self) -> None:
        self._by_inst: dict[str, deque[Print]] = {i: deque(maxlen=KEEP) for i in INSTRUMENTS}
        self._next_id = 1

    def record(self, trade: TickTrade, ts: int) -> None:
        """Keep one tick's trade."""
        self._by_inst[trade.inst_id].append(Print(self._next_id, trade.px, trade.sz, trade.side, ts))
        self._next_id += 1

    def trades_okx(self, inst_id: str, limit: int) -> list[dict[str, Any]]:
        """``market/trades``: the newest ``limit`` prints, newest first."""
        out = []
        for p in list(reversed(self._by_inst[inst_id]))[:limit]:
            out.append({"instId": inst_id, "side": p.side, "sz": str(p.sz), "px": fmt(p.px), "source": "0",
                        "tradeId": str(p.trade_id), "ts": str(p.ts)})
        return out

    def candles_okx(self, inst_id: str, period_ms: int, limit: int, after: int | None, before: int | None,
                    now: int, last_px: Decimal) -> list[list[str]]:
        """OHLCV bars ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, newest first. ``after``:
        bars older than this ts; ``before``: newer. The current bar is unconfirmed (``"0"``); a bar
        without prints (the venue has just started) repeats ``last_px`` with zero volume."""
        ct_val = INSTRUMENTS[inst_id].ct_val
        bars: dict[int, list[Any]] = {}
        for p in self._by_inst[inst_id]:
            start = p.ts - p.ts % period_ms
            b = bars.get(start)
            if b is None:
                bars[start] = [p.px, p.px, p.px, p.px, p.sz]
            else:
                b[1], b[2], b[3] = max(b[1], p.px), min(b[2], p.px), p.px
                b[4] += p.sz
        current = now - now % period_ms
        bars.setdefault(current, [last_px, last_px, last_px, last_px, 0])
        out = []
        for start in sorted(bars, reverse=True):
            if (after is not None and start >= after) or (before is not None and start <= before):
                continue
            o, h, lo, c, vol = bars[start]
            vol_ccy = Decimal(vol) * ct_val
            out.append([str(start), fmt(o), fmt(h), fmt(lo), fmt(c), str(vol), fmt(vol_ccy), fmt(vol_ccy * c),
                        "0" if start == current else "1"])
            if len(out) >= limit:
                break
        return out
