"""OKX-v5-shaped REST client on ``requests`` with the telemetry the service reports.

Every call is counted (``api_calls``); a call that gets no answer at all (refused, reset, timeout,
DNS) is an error event and marks REST connectivity as lost, which the policy turns into bunker mode.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable

import requests


#: OKX: "Timestamp request expired", a request signed outside the venue's 30 s window.
TS_EXPIRED = "50102"
#: refusals come in bursts (every thread at once): one public/time re-sync per this interval
RESYNC_MIN_INTERVAL_S = 0.25


def utc_now(offset_ms: int = 0) -> str:
    """Now (plus ``offset_ms``) as OKX's ISO 8601 timestamp with milliseconds."""
    return datetime.fromtimestamp(time.time() + offset_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class NoAnswer(Exception):
    """The venue gave no HTTP answer (connection refused/reset, timeout, DNS)."""


class Telemetry:
    """Counters for the fingerprint and the status payload; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.api_calls = 0
        self.orders_sent = 0
        self.error_count = 0
        self.error_events: deque[dict[str, Any]] = deque(maxlen=200)
        self.latencies: deque[float] = deque(maxlen=200)
        self.http_429: deque[float] = deque()
        self.last_no_answer_mono: float | None = None
        self.last_answer_mono: float | None = None

    def error(self, type_: str, endpoint: str, **extra: Any) -> None:
        with self.lock:
            self.error_count += 1
            self.error_events.append({"type": type_, "endpoint": endpoint, "utc": utc_now(), **extra})

    def p95(self) -> float:
        with self.lock:
            lat = sorted(self.latencies)
        return round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else 0.0

    def count_429_5m(self) -> int:
        cutoff = time.monotonic() - 300
        with self.lock:
            while self.http_429 and self.http_429[0] < cutoff:
                self.http_429.popleft()
            return len(self.http_429)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            lat = list(self.latencies)
            events = list(self.error_events)
            calls, orders, errors = self.api_calls, self.orders_sent, self.error_count
        return {"api_calls": calls, "orders_sent": orders, "error_count": errors, "error_events": events,
                "latency_stats_ms": {"mean": round(sum(lat) / len(lat), 2) if lat else 0.0, "p95": self.p95()},
                "updated_utc": utc_now()}


class Rest:
    """One ``requests.Session`` per thread (sessions are not shared across threads)."""

    def __init__(self, base_url: str, api_key: str, secret: str, passphrase: str, timeout_s: float,
                 telemetry: Telemetry, on_no_answer: Callable[[], None] | None = None, demo: bool = True) -> None:
        self.base = base_url.rstrip("/")
        self.key, self.secret, self.passphrase = api_key, secret, passphrase
        self.demo = demo
        self.timeout_s = timeout_s
        self.t = telemetry
        self._local = threading.local()
        self._on_no_answer = on_no_answer
        # The venue's clock minus ours, learnt from public/time when the venue refuses a timestamp.
        self.offset_ms = 0
        self._resync_lock = threading.Lock()
        self._last_resync_mono = float("-inf")

    def venue_time(self) -> float:
        """The venue's now as estimated here (Unix seconds): what requests and logins are signed with."""
        return time.time() + self.offset_ms / 1000

    def resync_clock(self) -> None:
        """Re-learn ``offset_ms`` from ``GET /api/v5/public/time`` (unsigned); at most once per
        RESYNC_MIN_INTERVAL_S, whichever thread asks."""
        with self._resync_lock:
            if time.monotonic() - self._last_resync_mono < RESYNC_MIN_INTERVAL_S:
                return
            self._last_resync_mono = time.monotonic()
            sent = time.time()
            try:
                r = self._session().get(self.base + "/api/v5/public/time", timeout=self.timeout_s)
                venue_ms = int(r.json()["data"][0]["ts"])
            except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
                self.t.error("http_error", "/api/v5/public/time", detail=str(exc)[:120])
                return
            self.offset_ms = int(venue_ms - (sent + time.time()) / 2 * 1000)

    def _session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
        return s

    def _headers(self, method: str, path: str, body: str, exp_time_ms: int | None) -> dict[str, str]:
        ts = utc_now(self.offset_ms)
        sign = base64.b64encode(hmac.new(self.secret.encode(), (ts + method + path + body).encode(),
                                         hashlib.sha256).digest()).decode()
        h = {"OK-ACCESS-KEY": self.key, "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
             "OK-ACCESS-PASSPHRASE": self.passphrase, "Content-Type": "application/json"}
        if self.demo:
            h["x-simulated-trading"] = "1"  # OKX demo trading (without it: a live, real-money key)
        if exp_time_ms is not None:
            # OKX's request expiry: a venue that honours it rejects the request after this time, so an
            # unanswered order can be declared absent once it has passed.
            h["expTime"] = str(exp_time_ms + self.offset_ms)  # judged by the venue's clock
        return h

    def call(self, method: str, path: str, params: dict[str, str] | None = None, body: Any = None,
             exp_time_ms: int | None = None, is_order: bool = False) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer). Raises NoAnswer when nothing came back."""
        query = ""
        if params:
            query = "?" + "&".join(f"{k}={v}" for k, v in params.items())
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        headers = self._headers(method, path + query, text, exp_time_ms)
        with self.t.lock:
            self.t.api_calls += 1
            if is_order:
                self.t.orders_sent += 1
        t0 = time.monotonic()
        try:
            r = self._session().request(method, self.base + path + query, data=text or None, headers=headers,
                                        timeout=self.timeout_s)
        except requests.Timeout:
            self._lost("timeout", path)
            raise NoAnswer(f"timeout {path}") from None
        except requests.ConnectionError as exc:
            kind = "dns_failure" if "Name or service not known" in str(exc) or "NameResolution" in str(exc) \
                else "connection_error"
            self._lost(kind, path)
            raise NoAnswer(f"{kind} {path}") from None
        dt = (time.monotonic() - t0) * 1000
        with self.t.lock:
            self.t.latencies.append(dt)
            self.t.last_answer_mono = time.monotonic()
            if r.status_code == 429:
                self.t.http_429.append(time.monotonic())
        if r.status_code >= 500 or r.status_code == 429:
            self.t.error("http_error", path, status=r.status_code)
        try:
            data = r.json()
        except ValueError:
            data = {"code": "-1", "msg": r.text[:200], "data": []}
        if r.status_code == 401 and isinstance(data, dict) and str(data.get("code")) == TS_EXPIRED:
            # Signed outside the venue's window: nothing signed gets through until the clock is re-synced,
            # so REST counts as lost (bunker) and the offset is re-learnt now.
            self.t.error("http_error", path, status=401, code=TS_EXPIRED)
            with self.t.lock:
                self.t.last_no_answer_mono = time.monotonic()
            self.resync_clock()
        return r.status_code, data if isinstance(data, dict) else {"code": "-1", "data": []}

    def _lost(self, kind: str, path: str) -> None:
        self.t.error(kind, path)
        with self.t.lock:
            self.t.last_no_answer_mono = time.monotonic()
        # A reset connection must not be reused from the pool.
        s = getattr(self._local, "s", None)
        if s is not None:
            s.close()
            self._local.s = None
        if self._on_no_answer:
            self._on_no_answer()
