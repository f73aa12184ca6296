"""The venue's clock: the host's wall clock plus the offset of an active clock-skew fault.

Everything the venue judges or stamps by time reads it: the signature timestamp window (REST 50102,
WebSocket login 60006), ``expTime``, ``GET /api/v5/public/time`` and the ``ts`` / ``cTime`` / ``uTime``
fields of its answers and pushes. The witness ledger keeps the host's clock, so evidence stays on one
time base whatever the fault does.
"""
from __future__ import annotations

import time
from typing import Callable


class VenueClock:
    """``offset()`` is the current skew in seconds (0 without a clock fault)."""

    def __init__(self, offset: Callable[[], float] = lambda: 0.0) -> None:
        self._offset = offset

    def time(self) -> float:
        """The venue's now, Unix seconds."""
        return time.time() + self._offset()

    def ms(self) -> int:
        """The venue's now, Unix milliseconds (OKX's ``ts`` unit)."""
        return int(self.time() * 1000)
