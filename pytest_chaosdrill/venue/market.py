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
    """Static instrument data (an OKX linear perpetual swap: what ``public/instruments`` serves)."""

    inst_id: str
    tick_sz: Decimal
    ct_val: Decimal      # contract value in the base currency
    start_px: Decimal    # initial best bid
    lot_sz: Decimal = Decimal(1)
    min_sz: Decimal = Decimal(1)
    max_mkt_sz: Decimal = Decimal(10000)
    max_lmt_sz: Decimal = Decimal(100000000)
    max_lever: int = 100

    @property
    def base_ccy(self) -> str:
        """``BTC`` of ``BTC-USDT-SWAP``."""
        return self.inst_id.split("-")[0]

    @property
    def settle_ccy(self) -> str:
        """``USDT`` of ``BTC-USDT-SWAP`` (linear swaps settle in the quote currency)."""
        return self.inst_id.split("-")[1]

    def to_okx(self) -> dict[str, str]:
        """The ``public/instruments`` entry (every field OKX documents for a SWAP; unused ones empty)."""
        uly = f"{self.base_ccy}-{self.settle_ccy}"
        return {"instType": "SWAP", "instId": self.inst_id, "uly": uly, "instFamily": uly, "category": "1",
                "baseCcy": "", "quoteCcy": "", "settleCcy": self.settle_ccy, "ctVal": fmt(self.ct_val),
                "ctMult": "1", "ctValCcy": self.base_ccy, "optType": "", "stk": "", "listTime": "1611916828000",
                "expTime": "", "lever": str(self.max_lever), "tickSz": fmt(self.tick_sz), "lotSz": fmt(self.lot_sz),
                "minSz": fmt(self.min_sz), "ctType": "linear", "alias": "", "state": "live",
                "maxLmtSz": fmt(self.max_lmt_sz), "maxMktSz": fmt(self.max_mkt_sz),
                "maxLmtAmt": "20000000", "maxMktAmt": "", "maxTwapSz": "", "maxIcebergSz": "",
                "maxTriggerSz": fmt(self.max_lmt_sz), "maxStopSz": fmt(self.max_mkt_sz), "ruleType": "normal"}


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


BOOK_LEVELS = 400  # levels per side of the published ``books`` channel (OKX's snapshot depth)
_CACHE_MAX = 100_000   # memoised price strings / checksum parts (cleared when full)


class _Side:
    """One side of a published book: the market's top levels (consecutive ticks) and, behind them,
    deep levels up to :data:`BOOK_LEVELS` whose size is a fixed function of the price, so they change
    only when the top moves past them (nothing random: the seed's price path is untouched)."""

    def __init__(self, inst: Instrument, sign: int) -> None:
        self.tick = inst.tick_sz
        self.sign = sign                      # -1 bids (deep levels below), +1 asks (deep levels above)
        self.salt = zlib.crc32(f"{inst.inst_id}{sign}".encode())
        self.top: dict[int, int] = {}         # ticks -> size, best first
        self.deep_from = 0                    # ticks of the first deep level
        self.n_deep = 0
        self.lo = self.hi = 0                 # the deep levels' tick range (empty when n_deep == 0)
        self._px: dict[int, str] = {}

    def deep_sz(self, ticks: int) -> int:
        return 1 + ((ticks * 2654435761 + self.salt) >> 7) % 40

    def set_top(self, top: list[tuple[int, int]]) -> None:
        """The market's top levels as (ticks, size), best first."""
        self.top = dict(top)
        self.deep_from = top[-1][0] + self.sign
        n = BOOK_LEVELS - len(top)
        # Bids never reach price 0.
        self.n_deep = max(0, min(n, self.deep_from)) if self.sign < 0 else n
        far = self.deep_from + self.sign * (self.n_deep - 1)
        self.lo, self.hi = (far, self.deep_from) if self.sign < 0 else (self.deep_from, far)

    def px(self, ticks: int) -> str:
        got = self._px.get(ticks)
        if got is None:
            if len(self._px) > _CACHE_MAX:
                self._px.clear()
            got = self._px[ticks] = fmt(ticks * self.tick)
        return got

    def size(self, ticks: int) -> int:
        sz = self.top.get(ticks)
        if sz is not None:
            return sz
        return self.deep_sz(ticks) if self.n_deep and self.lo <= ticks <= self.hi else 0

    def levels(self, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels as (ticks, size), best first."""
        out = list(self.top.items())[:n]
        for i in range(min(n - len(out), self.n_deep)):
            t = self.deep_from + self.sign * i
            out.append((t, self.deep_sz(t)))
        return out

    def json(self, levels: list[tuple[int, int]]) -> list[list[str]]:
        return [[self.px(t), str(sz), "0", "1"] for t, sz in levels]

    def diff(self, old: "_Side") -> list[list[str]]:
        """The levels that changed from ``old`` to this side: the top restated first (so ``[0]`` is the
        best price), then the other changed levels, then the removed ones (size ``"0"``), best first."""
        cand = set(old.top)
        cand.update(self.top)
        for (lo, hi, n), (olo, ohi) in (((old.lo, old.hi, old.n_deep), (self.lo, self.hi)),
                                        ((self.lo, self.hi, self.n_deep), (old.lo, old.hi))):
            if n:  # the part of [lo, hi] outside [olo, ohi]
                cand.update(range(lo, min(hi, olo - 1) + 1))
                cand.update(range(max(lo, ohi + 1), hi + 1))
        top, rest, gone = [], [], []
        for t in sorted(cand, reverse=self.sign < 0):
            if t in self.top:
                top.append((t, self.top[t]))
                continue
            new_sz = self.size(t)
            if new_sz != old.size(t):
                (rest if new_sz else gone).append((t, new_sz))
        return self.json(top + rest + gone)

    def copy(self) -> "_Side":
        c = _Side.__new__(_Side)
        c.__dict__.update(self.__dict__)
        return c  # set_top replaces ``top`` rather than mutating it


class BookFeed:
    """The published ``books`` stream of one instrument: :data:`BOOK_LEVELS` levels per side (the
    market's top levels, then deep levels) and the ``seqId``."""

    def __init__(self, st: InstrumentState) -> None:
        self.inst_id = st.inst.inst_id
        self.seq_id = FIRST_SEQ_ID
        self._bids, self._asks = _Side(st.inst, -1), _Side(st.inst, +1)
        self._set(st)
        self.ts = 0
        self._deep_parts: dict[tuple[int, int], str] = {}

    def _set(self, st: InstrumentState) -> None:
        # The market's levels are consecutive ticks from the best bid / ask (see Market._draw_levels).
        ask0 = st.bid_ticks + SPREAD_TICKS
        self._bids.set_top([(st.bid_ticks - i, sz) for i, (_, sz) in enumerate(st.bids)])
        self._asks.set_top([(ask0 + i, sz) for i, (_, sz) in enumerate(st.asks)])
        self.bids: list[Level] = list(st.bids)  # the market's top levels last published
        self.asks: list[Level] = list(st.asks)

    def _checksum(self) -> int:
        """OKX's checksum of the best 25 levels per side; the deep part is memoised (it depends only on
        where the top ends)."""
        b, a = self._bids, self._asks
        nb, na = len(b.top), len(a.top)
        if nb != na or b.n_deep < 25 - nb or a.n_deep < 25 - na:
            return okx_checksum(b.json(b.levels(25)), a.json(a.levels(25)))
        top = ":".join(f"{b.px(tb)}:{sb}:{a.px(ta)}:{sa}" for (tb, sb), (ta, sa) in zip(b.top.items(), a.top.items()))
        key = (b.deep_from, a.deep_from)
        deep = self._deep_parts.get(key)
        if deep is None:
            if len(self._deep_parts) > _CACHE_MAX:
                self._deep_parts.clear()
            db, da = b.levels(25)[nb:], a.levels(25)[na:]
            deep = self._deep_parts[key] = ":".join(f"{b.px(tb)}:{sb}:{a.px(ta)}:{sa}" for (tb, sb), (ta, sa) in zip(db, da))
        crc = zlib.crc32(f"{top}:{deep}".encode())
        return crc - (1 << 32) if crc >= (1 << 31) else crc

    def snapshot(self) -> dict:
        """The current published book as a snapshot data entry (``prevSeqId`` -1)."""
        b, a = self._bids, self._asks
        return {"asks": a.json(a.levels(BOOK_LEVELS)), "bids": b.json(b.levels(BOOK_LEVELS)), "ts": str(self.ts),
                "checksum": self._checksum(), "seqId": self.seq_id, "prevSeqId": -1}

    def top(self, n: int) -> dict:
        """The best ``n`` published levels per side: the data entry of ``books5`` (n=5) and ``bbo-tbt`` (n=1)."""
        return {"asks": _levels_json(self.asks[:n]), "bids": _levels_json(self.bids[:n]), "instId": self.inst_id,
                "ts": str(self.ts), "seqId": self.seq_id}

    def publish(self, st: InstrumentState, ts_ms: int, skip: int = 0, render: bool = True) -> dict | None:
        """Move the published book to ``st`` and return the update data entry (None if not ``render``:
        nobody is listening, the sequence advances all the same).

        The update restates the top levels (best first), then the other levels that changed, then
        removes (size ``"0"``) the levels that left the book, so applying it to the previous book gives
        the new one and ``bids[0]``/``asks[0]`` is always the current best price. ``skip`` > 0 makes the
        sequence jump: ``prevSeqId`` is ``skip`` higher than the last ``seqId`` published.
        """
        old_bids, old_asks = self._bids.copy(), self._asks.copy()
        self._set(st)
        prev = self.seq_id + skip
        self.seq_id = prev + 1
        self.ts = ts_ms
        if not render:
            return None
        return {"asks": self._asks.diff(old_asks), "bids": self._bids.diff(old_bids), "ts": str(ts_ms),
                "checksum": self._checksum(), "seqId": self.seq_id, "prevSeqId": prev}


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
