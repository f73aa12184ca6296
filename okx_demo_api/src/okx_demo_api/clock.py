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
