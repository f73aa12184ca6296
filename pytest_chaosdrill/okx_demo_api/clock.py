"""Clock helpers shared by the target's modules (UTC strings, wall-clock milliseconds)."""
from __future__ import annotations

import time


def utc_now() -> str:
    """ISO 8601 UTC with microseconds and a Z suffix."""
    return utc_from(time.time())


def utc_from(t: float) -> str:
    """ISO 8601 UTC (Z suffix) for a ``time.time()`` value."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


def now_ms() -> int:
    """Wall-clock Unix milliseconds (the venue's timestamps are in this unit)."""
    return int(time.time() * 1000)
