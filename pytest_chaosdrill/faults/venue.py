"""Venue faults (``venue.<method>``): the venue simulator's control methods, proved by its own fault record."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .base import FaultNotLanded, Trigger, param_names, record_dict

if TYPE_CHECKING:  # pragma: no cover
    from ..context import DrillContext


class VenueFault(Trigger):
    """A venue fault (``venue.<method>``): proof is the venue's own fault record with its effective time."""

    def __init__(self, ctx: "DrillContext", params: dict[str, Any], method: str) -> None:
        super().__init__(ctx, params)
        self.method = method
        self.kind = f"venue.{method}"
        self.record: Any = None

    def fire(self) -> dict[str, Any]:
        self.record = getattr(self.ctx.venue, self.method)(**self.params)
        return record_dict(self.record)

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        try:
            rec = self.ctx.venue.wait_landed(self.record, timeout=timeout)
        except TimeoutError as exc:
            raise FaultNotLanded(f"venue fault {self.kind} was requested but never took effect: {exc}") from None
        self.proof = record_dict(rec)
        self.landed_mono = self.proof.get("effective_mono")
        if self.landed_mono is None:
            raise FaultNotLanded(f"venue fault {self.kind} has no effective time in its record: {self.proof}")
        if self.method in ONE_SHOT_VENUE_FAULTS:
            self.condition_ended_mono = self.landed_mono
        return self.proof

    def release(self) -> dict[str, Any]:
        kind = record_dict(self.record).get("kind", self.method)
        return record_dict(self.ctx.venue.clear(kind=kind))

    def finalize(self) -> None:
        # A session termination lasts until re-authentication is allowed again: that, not the
        # moment the socket closed, is when its condition ended.
        if self.method != "session_termination" or self.record is None:
            return
        rec_id = record_dict(self.record).get("id")
        for rec in self.ctx.venue.faults():
            d = record_dict(rec)
            if d.get("id") == rec_id and d.get("ended_mono") is not None:
                self.condition_ended_mono = d["ended_mono"]


class VenueFaultKind:
    """The factory of ``venue.<method>``: parameters are the venue control method's keyword arguments."""

    requires: frozenset[str] = frozenset()

    def __init__(self, method: str) -> None:
        self.method = method

    def __call__(self, ctx: "DrillContext", params: dict[str, Any]) -> Trigger:
        return VenueFault(ctx, params, self.method)

    def check_params(self, params: dict[str, Any]) -> list[str]:
        # Imported here: venue.control brings aiohttp, +185 ms on every pytest start (python -X importtime).
        from ..venue.control import VenueControl

        try:
            inspect.signature(getattr(VenueControl, self.method)).bind(None, **params)
        except TypeError as exc:
            return [f"{exc} (venue.{self.method} takes {param_names(getattr(VenueControl, self.method))})"]
        return []

    def needs(self, params: dict[str, Any]) -> list[str]:
        return []


# Faults that are one event (a gap, a termination, one partial batch) rather than a held condition.
ONE_SHOT_VENUE_FAULTS = ("book_gap", "trades_gap", "session_termination", "partial_fill")
VENUE_FAULTS = ("book_gap", "trades_gap", "freeze", "lag", "session_termination", "partial_fill", "rate_limit",
                "http_5xx", "rest_latency", "clock_skew")
