"""Counters that prove what the proxy did: per proxy, per direction and per toxic."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc_now_iso() -> str:
    """ISO 8601 UTC now, with microseconds (the format of ``first_acted_utc``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(eq=False)
class ToxicCounters:
    """What one toxic did to real traffic. ``first_acted_*`` stay None until it acted."""

    name: str
    type: str
    stream: str
    connections_applied: int = 0  # connections where the toxicity roll made it apply
    connections_skipped: int = 0  # connections where the roll spared them
    connections_acted: int = 0  # connections it actually changed (delayed, held, cut, ...)
    bytes_acted: int = 0  # bytes it delayed, held, sliced, throttled or dropped
    first_acted_mono: float | None = None  # time.monotonic() of the first action
    first_acted_utc: str | None = None  # ISO 8601 UTC of the first action
    last_acted_mono: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # type-specific proof (partition: see docs/proxy.md)

    def note(self, nbytes: int) -> None:
        """Record one action on ``nbytes`` bytes (0 for actions on the connection itself)."""
        now = time.monotonic()
        if self.first_acted_mono is None:
            self.first_acted_mono = now
            self.first_acted_utc = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        self.last_acted_mono = now
        self.bytes_acted += nbytes

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["extra"] = dict(self.extra)
        return d


@dataclass
class DirectionCounters:
    """Bytes of one direction. held = received - sent - dropped (what sits in the proxy now)."""

    bytes_received: int = 0  # read from the source side
    bytes_sent: int = 0  # written to the destination side
    bytes_dropped: int = 0  # discarded: cut by limit_data, or pending when a connection closed

    def to_dict(self) -> dict[str, int]:
        d = dict(self.__dict__)
        d["bytes_held"] = self.bytes_received - self.bytes_sent - self.bytes_dropped
        return d


@dataclass
class ProxyCounters:
    """Connection and byte counters of one proxy since it was created."""

    connections_opened: int = 0  # accepted and connected to the upstream
    connections_closed: int = 0
    connections_reset: int = 0  # ended by a TCP RST (injected by reset_peer or from an endpoint)
    connections_refused: int = 0  # accepted while disabled, or the upstream could not be reached
    upstream: DirectionCounters = field(default_factory=DirectionCounters)  # client -> upstream
    downstream: DirectionCounters = field(default_factory=DirectionCounters)  # upstream -> client

    def to_dict(self) -> dict[str, Any]:
        up, down = self.upstream.to_dict(), self.downstream.to_dict()
        return {
            "connections_opened": self.connections_opened,
            "connections_closed": self.connections_closed,
            "connections_active": self.connections_opened - self.connections_closed,
            "connections_reset": self.connections_reset,
            "connections_refused": self.connections_refused,
            "bytes_upstream": up["bytes_sent"],
            "bytes_downstream": down["bytes_sent"],
            "bytes_held": up["bytes_held"] + down["bytes_held"],
            "upstream": up,
            "downstream": down,
        }
