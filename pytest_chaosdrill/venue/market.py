"""Seeded, tick-driven market: price walk, top-of-book levels and public trades per instrument.

Everything random comes from one ``random.Random(seed)`` drawn in a fixed order on every tick, so
the n-th tick of two markets with the same seed is identical, whoever is watching. Published
sequence numbers (book ``seqId``, ``tradeId``) are kept separately in :class:`BookFeed` and
:class:`TradeFeed` because faults bend them without touching the price path.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

DEPTH = 5          # levels per side in the book
SPREAD_TICKS = 2   # ask - bid, in ticks
FIRST_SEQ_ID = 1000
FIRST_TRADE_ID = 5001


@dataclass(frozen=True)
class Instrument:
    """Static instrument data (OKX perpetual swap shaped)."""

    inst_id: str
    tick_sz: Decimal
    ct_val: Decimal      # contract value in the base currency
    start_px: Decimal    # initial best bid


INSTRUMENTS: dict[str, Instrument] = {
    i.inst_id: i
    for i in (
        Instrument("BTC-USDT-SWAP", Decimal("0.5"), Decimal("0.01"), Decimal("43000.5")),
        Instrument("ETH-USDT-SWAP", Decimal("0.01"), Decimal("0.1"), Decimal("2300.00")),
    )
}


def fmt(d: Decimal) -> str:
    """Decimal as an OKX number string: no exponent, no trailing zeros (``"43000.5"``, ``"1"``)."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s if s not in ("-0", "") else "0"


Level = tuple[Decimal, int]  # (price, size in contracts)


@dataclass
class InstrumentState:
    """The current (not necessarily published) market of one instrument."""

    inst: Instrument
    bid_ticks: int
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)
    last_px: Decimal = Decimal(0)
    last_sz: int = 0
    last_side: str = "buy"

    @property
    def best_bid(self) -> Decimal:
        """Best bid price."""
        return self.bids[0][0]

    @property
    def best_ask(self) -> Decimal:
        """Best ask price."""
        return self.asks[0][0]

    @property
    def mid(self) -> Decimal:
        """Mid price (used as mark price)."""
        return (self.best_bid + self.best_ask) / 2


@dataclass(frozen=True)
class TickTrade:
    """The trade one tick produced (before a tradeId is assigned)."""

    inst_id: str
    px: Decimal
    sz: int
    side: str


class Market:
    """Random-walk market for all instruments; :meth:`tick` advances it by one step."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.tick_count = 0
        self.state: dict[str, InstrumentState] = {}
        for inst_id in sorted(INSTRUMENTS):
            inst = INSTRUMENTS[inst_id]
            st = InstrumentState(inst, int(inst.start_px / inst.tick_sz))
            self._draw_levels(st)
            st.last_px = st.best_bid
            st.last_sz = 1
            self.state[inst_id] = st

    def _draw_levels(self, st: InstrumentState) -> None:
        tick = st.inst.tick_sz
        ask_ticks = st.bid_ticks + SPREAD_TICKS
        st.bids = [((st.bid_ticks - i) * tick, self._rng.randint(1, 20)) for i in range(DEPTH)]
        st.asks = [((ask_ticks + i) * tick, self._rng.randint(1, 20)) for i in range(DEPTH)]

    def tick(self) -> list[TickTrade]:
        """Advance every instrument one step (fixed draw order) and return the trades it produced."""
        self.tick_count += 1
        trades = []
        for inst_id in sorted(self.state):
            st = self.state[inst_id]
            st.bid_ticks = max(SPREAD_TICKS + DEPTH, st.bid_ticks + self._rng.randint(-2, 2))
            self._draw_levels(st)
            side = "buy" if self._rng.random() < 0.5 else "sell"
            sz = self._rng.randint(1, 5)
            px = st.best_ask if side == "buy" else st.best_bid
            st.last_px, st.last_sz, st.last_side = px, sz, side
            trades.append(TickTrade(inst_id, px, sz, side))
        return trades


def okx_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """OKX v5 order-book checksum: CRC32 (signed) of up to 25 interleaved ``px:sz`` pairs."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _levels_json(levels: list[Level]) -> list[list[str]]:
    return [[fmt(px), str(sz), "0", "1"] for px, sz in levels]


class BookFeed:
    """The published ``books`` stream of one instrument: last published levels and ``seqId``."""

    def __init__(self, st: InstrumentState) -> None:
        self.inst_id = st.inst.inst_id
        self.seq_id = FIRST_SEQ_ID
        self.bids: list[Level] = list(st.bids)
        self.asks: list[Level] = list(st.asks)
        self.ts = 0

    def snapshot(self) -> dict:
        """The current published book as a snapshot data entry (``prevSeqId`` -1)."""
        bids, asks = _levels_json(self.bids), _levels_json(self.asks)
        return {"asks": asks, "bids": bids, "ts": str(self.ts), "checksum": okx_checksum(bids, asks),
                "seqId": self.seq_id, "prevSeqId": -1}

    def top(self, n: int) -> dict:
        """The best ``n`` published levels per side: the data entry of ``books5`` (n=5) and ``bbo-tbt`` (n=1)."""
        return {"asks": _levels_json(self.asks[:n]), "bids": _levels_json(self.bids[:n]), "instId": self.inst_id,
                "ts": str(self.ts), "seqId": self.seq_id}

    def publish(self, st: InstrumentState, ts_ms: int, skip: int = 0) -> dict:
        """Move the published book to ``st`` and return the update data entry.

        The update restates every current level (best first) and then removes (size ``"0"``)
        every level that left the book, so applying it to the previous book gives the new one and
        ``bids[0]``/``asks[0]`` is always the current best price. ``skip`` > 0 makes the sequence
        jump: ``prevSeqId`` is ``skip`` higher than the last ``seqId`` published.
        """
        new_bids, new_asks = list(st.bids), list(st.asks)
        gone_bids = sorted({p for p, _ in self.bids} - {p for p, _ in new_bids}, reverse=True)
        gone_asks = sorted({p for p, _ in self.asks} - {p for p, _ in new_asks})
        upd_bids = new_bids + [(p, 0) for p in gone_bids]
        upd_asks = new_asks + [(p, 0) for p in gone_asks]
        prev = self.seq_id + skip
        self.seq_id = prev + 1
        self.bids, self.asks, self.ts = new_bids, new_asks, ts_ms
        full_bids, full_asks = _levels_json(new_bids), _levels_json(new_asks)
        return {"asks": _levels_json(upd_asks), "bids": _levels_json(upd_bids), "ts": str(ts_ms),
                "checksum": okx_checksum(full_bids, full_asks), "seqId": self.seq_id, "prevSeqId": prev}


def matches_of(trade: TickTrade) -> int:
    """How many maker orders one tick's taker order matched (1-3, from its size: no random draw, so the
    price path stays the seed's)."""
    return 1 + (trade.sz - 1) // 2


class TradeFeed:
    """The published ``trades`` stream of one instrument, aggregated as OKX aggregates it.

    One push per taker order: the matches it made take consecutive trade ids, ``tradeId`` is the last of
    them and ``count`` how many there were, so ``tradeId - count`` equals the previous push's ``tradeId``
    on an intact stream (ids skip by design). ``seqId`` numbers the pushes.
    """

    def __init__(self, inst_id: str) -> None:
        self.inst_id = inst_id
        self.next_id = FIRST_TRADE_ID      # the first trade id of the next aggregation
        self.seq_id = FIRST_SEQ_ID         # the seqId of the last push

    def assign(self, trade: TickTrade, ts_ms: int, skip: int = 0, lost_pushes: int = 0) -> dict:
        """Give ``trade`` its ids and return its data entry; ``skip`` trade ids (in ``lost_pushes``
        pushes) are left out first, as a push the venue lost would leave them out."""
        self.next_id += skip
        self.seq_id += lost_pushes
        count = matches_of(trade)
        last = self.next_id + count - 1
        self.next_id = last + 1
        self.seq_id += 1
        return {"instId": trade.inst_id, "tradeId": str(last), "px": fmt(trade.px), "sz": str(trade.sz),
                "side": trade.side, "source": "0", "count": str(count), "seqId": self.seq_id, "ts": str(ts_ms)}
