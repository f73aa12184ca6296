"""Clock helpers shared by the target's modules (UTC strings, wall-clock milliseconds)."""
from __future__ import annotations

import asyncio
import time


def utc_now() -> str:
    """ISO 8601 UTC with microseconds and a Z suffix."""
    return utc_from(time.time())


def utc_from(t: float) -> str:
    """ISO 8601 UTC (Z suffix) for a ``time.time()`` value."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stopping`` is set, whichever comes first."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=max(0.0, seconds))
    except asyncio.TimeoutError:
        pass


def now_ms() -> int:
    """Wall-clock Unix milliseconds (the venue's timestamps are in this unit)."""
    return int(time.time() * 1000)


class VenueClock:
    """The venue's clock as this service knows it: the local wall clock plus an offset learnt from the
    venue's ``GET /api/v5/public/time`` (what ccxt's ``load_time_difference`` does). Requests are signed
    with it, so a venue whose clock differs by more than OKX's 30 s window still accepts them once the
    offset is re-synced."""

    def __init__(self) -> None:
        self.offset_ms = 0
        self.resyncs = 0

    def time(self) -> float:
        """The venue's now as estimated here, Unix seconds."""
        return time.time() + self.offset_ms / 1000.0

    def learn(self, venue_ms: int, sent: float, received: float) -> int:
        """Set the offset from one ``public/time`` answer (``venue_ms``) asked at ``sent`` and answered at
        ``received`` (local ``time.time()``): the venue read its clock half-way. Returns the offset."""
        self.offset_ms = int(venue_ms - (sent + received) / 2 * 1000)
        self.resyncs += 1
        return self.offset_ms
