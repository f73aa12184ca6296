"""Local inventory: signed positions per instrument, built from fills and deduplicated per clOrdId."""
from __future__ import annotations

from typing import Iterable, Mapping


def _signed(side: str, sz: float) -> float:
    return sz if side == "buy" else -sz


class Inventory:
    """Positions from fills (REST acks of market orders, private WS updates, resolved queries).

    Fills are applied per clOrdId as "accumulated filled size": the same fill reported twice (REST ack
    and WS update) is counted once. ``inflight`` holds the signed size of orders on the wire so limits
    and reduce-only sizing use the committed position.
    """

    def __init__(self, instruments: Iterable[str]) -> None:
        self.instruments = tuple(instruments)
        self.pos: dict[str, float] = {i: 0.0 for i in self.instruments}
        self.inflight: dict[str, float] = {i: 0.0 for i in self.instruments}
        self._applied: dict[str, float] = {}

    def apply_fill(self, cl_ord_id: str, inst: str, side: str, acc_fill_sz: float) -> float:
        """Apply an accumulated fill size for ``cl_ord_id``; returns the newly applied signed delta."""
        if inst not in self.pos:
            return 0.0
        delta = acc_fill_sz - self._applied.get(cl_ord_id, 0.0)
        if delta <= 0:
            return 0.0
        self._applied[cl_ord_id] = acc_fill_sz
        signed = _signed(side, delta)
        self.pos[inst] = round(self.pos[inst] + signed, 8)
        return signed

    def known(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._applied

    def committed(self, inst: str) -> float:
        return self.pos.get(inst, 0.0) + self.inflight.get(inst, 0.0)

    def exposure(self) -> float:
        """Sum of absolute positions (the contract's exposure)."""
        return round(sum(abs(p) for p in self.pos.values()), 8)

    def adopt(self, venue_positions: Mapping[str, float]) -> None:
        """Take venue truth as local state (start-up bootstrap or after a mismatch)."""
        for i in self.instruments:
            self.pos[i] = round(float(venue_positions.get(i, 0.0)), 8)

    def snapshot(self) -> dict[str, float]:
        return dict(self.pos)
