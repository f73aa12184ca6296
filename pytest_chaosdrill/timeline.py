"""The status timeline: ``/api/v1/status`` sampled continuously over one keep-alive connection."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import requests


def utc_now() -> str:
    """UTC time, ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def open_blocked(status: Any) -> bool:
    """True when the status says no OPEN risk may be created (any mode but Active, or the latch set)."""
    if not isinstance(status, dict):
        return False
    return status.get("trading_mode") != "Active" or status.get("open_permission_blocked_latch") is True


@dataclass
class Sample:
    """One poll of the status endpoint."""

    i: int
    sent_mono: float
    mono: float
    utc: str
    http_status: int | None
    status: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and isinstance(self.status, dict)

    @property
    def blocked(self) -> bool:
        return self.ok and open_blocked(self.status)

    @property
    def latched(self) -> bool:
        return self.ok and self.status.get("open_permission_blocked_latch") is True

    def to_json(self) -> dict[str, Any]:
        return {"i": self.i, "sent_mono": round(self.sent_mono, 6), "mono": round(self.mono, 6), "utc": self.utc,
                "http_status": self.http_status, "status": self.status, "error": self.error}


@dataclass
class Mark:
    """A labelled moment of the drill (trigger, fault landed, release, restart, ...)."""

    label: str
    mono: float
    utc: str
    detail: dict[str, Any] = field(default_factory=dict)


class Timeline:
    """Thread-safe, append-only list of samples and marks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._marks: list[Mark] = []

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def mark(self, label: str, **detail: Any) -> Mark:
        m = Mark(label, time.monotonic(), utc_now(), detail)
        with self._lock:
            self._marks.append(m)
        return m

    @property
    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    @property
    def marks(self) -> list[Mark]:
        with self._lock:
            return list(self._marks)

    def get_mark(self, label: str) -> Mark | None:
        return next((m for m in reversed(self.marks) if m.label == label), None)

    def between(self, start: float | None = None, end: float | None = None) -> list[Sample]:
        """Samples whose request was sent at or after ``start`` and answered before ``end``."""
        return [s for s in self.samples
                if (start is None or s.sent_mono >= start) and (end is None or s.mono <= end)]

    def first(self, pred: Callable[[Sample], bool], start: float | None = None,
              end: float | None = None) -> Sample | None:
        return next((s for s in self.between(start, end) if pred(s)), None)

    def last_ok(self, end: float | None = None) -> Sample | None:
        return next((s for s in reversed(self.between(None, end)) if s.ok), None)

    def interval_stats(self) -> dict[str, float]:
        """Achieved sampling interval (ms) between consecutive requests."""
        s = self.samples
        gaps = sorted((b.sent_mono - a.sent_mono) * 1000 for a, b in zip(s, s[1:]))
        if not gaps:
            return {"count": len(s), "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {"count": len(s), "p50_ms": gaps[len(gaps) // 2], "p99_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))],
                "max_ms": gaps[-1]}

    def iter_jsonl(self) -> Iterator[str]:
        for s in self.samples:
            yield json.dumps(s.to_json(), sort_keys=True)

    def write_jsonl(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for line in self.iter_jsonl():
                fh.write(line + "\n")

    def write_marks(self, path: Path) -> None:
        path.write_text(json.dumps([m.__dict__ for m in self.marks], indent=2) + "\n", encoding="utf-8")


class StatusSampler:
    """Polls a status URL on one keep-alive connection until stopped; every answer becomes a :class:`Sample`.

    Transport errors, non-200 answers and non-JSON bodies are recorded as samples with ``error``
    set, so a dead or misbehaving target shows in the timeline instead of stopping it.
    """

    def __init__(self, url: str, timeline: Timeline, *, interval_s: float = 0.005, timeout_s: float = 1.0,
                 max_body: int = 1_000_000) -> None:
        self.url = url
        self.timeline = timeline
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.default_timeout_s = timeout_s
        self.max_body = max_body
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._count = 0

    def start(self) -> "StatusSampler":
        self._thread = threading.Thread(target=self._run, name="chaosdrill-status-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 2)
            self._thread = None

    def __enter__(self) -> "StatusSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poll_once(self, session: requests.Session) -> Sample:
        sent = time.monotonic()
        code = None
        try:
            resp = session.get(self.url, timeout=self.timeout_s, stream=True)
            code = resp.status_code
            body = resp.raw.read(self.max_body + 1, decode_content=True)
            resp.close()
            if len(body) > self.max_body:
                raise ValueError(f"status body larger than {self.max_body} bytes")
            if code != 200:
                raise ValueError(f"HTTP {code}")
            payload = json.loads(body)
            sample = Sample(self._count, sent, time.monotonic(), utc_now(), code, payload)
        except (requests.RequestException, ValueError, OSError, RecursionError) as exc:
            # RecursionError: a hostile body nested deeper than the JSON decoder can follow.
            sample = Sample(self._count, sent, time.monotonic(), utc_now(), code, None,
                            f"{type(exc).__name__}: {str(exc)[:300]}")
        self._count += 1
        self.timeline.add(sample)
        return sample

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                sample = self.poll_once(session)
                # After a transport error back off a little: a dead target should not be hammered.
                pause = self.interval_s if sample.error is None else max(self.interval_s, 0.02)
                remaining = pause - (time.monotonic() - sample.sent_mono)
                if remaining > 0:
                    self._stop.wait(remaining)


def wait_until(check: Callable[[], Any], timeout: float, pause: float = 0.02,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Any:
    """Call ``check`` until it returns a truthy value or ``timeout`` seconds pass (then ``None``).

    ``clock`` and ``sleep`` are injectable so waiting can be tested without sleeping.
    """
    deadline = clock() + timeout
    while True:
        result = check()
        if result:
            return result
        if clock() >= deadline:
            return None
        sleep(pause)
