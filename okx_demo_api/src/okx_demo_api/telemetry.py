"""Call telemetry: API calls, latency, 429s, 10028s and error events (network failures included).

The seeds' C2.3 drill failed because only HTTP error responses were counted: here connection errors,
timeouts and DNS failures are error events too, and they show up in ``execution_fingerprint.json``
while the run is still going.
"""
from __future__ import annotations

import math
import time
from collections import deque

from .clock import utc_now

WINDOW_5M = 300.0
WINDOW_24H = 86400.0


class WindowCounter:
    """Events in a sliding time window (monotonic clock)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._t: deque[float] = deque()

    def add(self, t: float | None = None) -> None:
        self._t.append(time.monotonic() if t is None else t)

    def count(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        while self._t and self._t[0] < now - self.window_s:
            self._t.popleft()
        return len(self._t)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return float(s[k])


class Telemetry:
    """Counters behind the fingerprint, the run manifest and /status."""

    def __init__(self, latency_window: int = 512, max_events: int = 200) -> None:
        self.api_calls = 0
        self.orders_sent = 0
        self.error_count = 0
        self.error_events: deque[dict] = deque(maxlen=max_events)
        self._lat: deque[float] = deque(maxlen=latency_window)
        self._lat_sum_all = 0.0
        self._lat_n_all = 0
        self.http_429 = WindowCounter(WINDOW_5M)
        self.session_10028 = WindowCounter(WINDOW_5M)
        self.naked_events = WindowCounter(WINDOW_24H)
        self._p95_cache: tuple[int, float] = (-1, 0.0)

    def call(self, latency_ms: float) -> None:
        """One REST call completed or failed after ``latency_ms``."""
        self.api_calls += 1
        self._lat.append(latency_ms)
        self._lat_sum_all += latency_ms
        self._lat_n_all += 1

    def error(self, kind: str, endpoint: str, status: int | None = None, detail: str = "") -> None:
        """Record an error event: http_error (with status), connection_error, timeout, dns_failure, ws_error."""
        self.error_count += 1
        ev = {"type": kind, "utc": utc_now(), "mono": time.monotonic(), "endpoint": endpoint}
        if status is not None:
            ev["status"] = status
        if detail:
            ev["detail"] = detail[:200]
        self.error_events.append(ev)
        if status == 429:
            self.http_429.add()

    def p95_ms(self) -> float:
        """p95 of recent REST latencies (cached per call count: /status is sampled every few ms)."""
        if self._p95_cache[0] != self._lat_n_all:
            self._p95_cache = (self._lat_n_all, round(percentile(list(self._lat), 95), 3))
        return self._p95_cache[1]

    def latency_stats(self) -> dict:
        lat = list(self._lat)
        mean = sum(lat) / len(lat) if lat else 0.0
        return {"mean": round(mean, 3), "p95": self.p95_ms(), "samples": len(lat),
                "mean_all": round(self._lat_sum_all / self._lat_n_all, 3) if self._lat_n_all else 0.0}
