"""Open-permission latch: while set, no OPEN order leaves the process; cleared only by reconciliation."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from .clock import utc_now
from .policy import Manifest


@dataclass(frozen=True)
class LatchEvent:
    event: str  # "set" | "clear"
    code: str
    mono: float
    utc: str
    detail: str

    def as_dict(self) -> dict:
        return {"event": self.event, "code": self.code, "mono": self.mono, "utc": self.utc, "detail": self.detail}


class OpenPermissionLatch:
    """Reason codes (manifest order) that block OPEN until a reconciliation succeeds.

    Each code remembers when it was (last) set, so a reconciliation that started before a code was
    raised cannot clear it.
    """

    def __init__(self, manifest: Manifest, on_event: Callable[[LatchEvent], None] | None = None,
                 history: int = 32) -> None:
        self._manifest = manifest
        self._set_mono: dict[str, float] = {}
        self._on_event = on_event
        self.events: deque[LatchEvent] = deque(maxlen=history)

    @property
    def is_set(self) -> bool:
        return bool(self._set_mono)

    @property
    def codes(self) -> list[str]:
        """Active codes in manifest order."""
        return self._manifest.order_latch(self._set_mono)

    def has(self, code: str) -> bool:
        return code in self._set_mono

    def set_mono(self, code: str) -> float | None:
        return self._set_mono.get(code)

    def set(self, code: str, detail: str = "") -> bool:
        """Raise ``code``; returns True if it was not already set. Unknown codes are refused."""
        if code not in self._manifest.latch:
            raise ValueError(f"not an open-permission reason code: {code!r}")
        now = time.monotonic()
        new = code not in self._set_mono
        self._set_mono[code] = now  # re-raising refreshes: an older reconciliation cannot clear it
        if new:
            self._emit(LatchEvent("set", code, now, utc_now(), detail))
        return new

    def clear_reconciled(self, reconcile_started_mono: float, detail: str = "",
                         only: Iterable[str] | None = None) -> list[str]:
        """Clear codes raised before a successful reconciliation started; returns the cleared codes."""
        allowed = set(only) if only is not None else None
        cleared = [c for c, t in self._set_mono.items()
                   if t < reconcile_started_mono and (allowed is None or c in allowed)]
        now = time.monotonic()
        for c in self._manifest.order_latch(cleared):
            del self._set_mono[c]
            self._emit(LatchEvent("clear", c, now, utc_now(), detail))
        return cleared

    def _emit(self, ev: LatchEvent) -> None:
        self.events.append(ev)
        if self._on_event is not None:
            self._on_event(ev)
