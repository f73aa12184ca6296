"""The status timeline: ``/api/v1/status`` sampled continuously over one keep-alive connection."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import requests
import urllib3

from .guard import is_live_status, url_refusal
from .statusread import DEFAULT_MAX_BYTES, raw_record, read_status, to_strict_json
from .errors import SamplerRefused

#: How many raw bytes of a bad sample are kept on the Sample for evidence.
RAW_KEEP_BYTES = 4096


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
    #: First :data:`RAW_KEEP_BYTES` bytes of the body of a *failed* sample (None for good ones).
    raw: bytes | None = None
    #: Full length of that body in bytes (``raw`` may be cut).
    raw_length: int | None = None

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
        """The sample as a mapping that serialises to strict JSON (no NaN/Infinity) whatever arrived."""
        status = self.status
        if status is not None:
            try:
                json.dumps(status, allow_nan=False)
            except (ValueError, TypeError, RecursionError):
                status = json.loads(to_strict_json(status))  # non-finite numbers become marker strings
        out = {"i": self.i, "sent_mono": self.sent_mono, "mono": self.mono, "utc": self.utc,
               "http_status": self.http_status, "status": status, "error": self.error}
        if self.raw is not None:
            out["raw_length"] = self.raw_length
        return out

    def raw_json(self) -> dict[str, Any] | None:
        """A ``raw_samples.jsonl`` record for a failed sample that kept its body, else None."""
        if self.raw is None:
            return None
        rec = raw_record(self.raw, RAW_KEEP_BYTES)
        rec.update(i=self.i, utc=self.utc, http_status=self.http_status, error=self.error,
                   length=self.raw_length if self.raw_length is not None else len(self.raw),
                   truncated=(self.raw_length or 0) > len(self.raw))
        return rec


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
        """One strict-JSON line per sample (``timeline.jsonl``)."""
        for s in self.samples:
            yield to_strict_json(s.to_json(), sort_keys=True)

    def iter_raw_jsonl(self, redact: Callable[[bytes], bytes] | None = None) -> Iterator[str]:
        """One line per failed sample that kept its raw body (``raw_samples.jsonl``).

        ``redact`` (e.g. ``Redactor.bytes``) runs on the raw bytes *before* they are escaped,
        since a secret's bytes are unrecognisable once escaped.
        """
        for s in self.samples:
            if s.raw is None:
                continue
            if redact is not None:
                s = Sample(s.i, s.sent_mono, s.mono, s.utc, s.http_status, None, s.error, redact(s.raw), s.raw_length)
            rec = s.raw_json()
            if rec is not None:
                yield to_strict_json(rec, sort_keys=True)

    def write_raw_jsonl(self, path: Path, redact: Callable[[bytes], bytes] | None = None) -> int:
        """Write :meth:`iter_raw_jsonl` to ``path``; returns the number of records."""
        n = 0
        with open(path, "w", encoding="utf-8") as fh:
            for line in self.iter_raw_jsonl(redact):
                fh.write(line + "\n")
                n += 1
        return n

    def write_jsonl(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for line in self.iter_jsonl():
                fh.write(line + "\n")

    def write_marks(self, path: Path) -> None:
        path.write_text(to_strict_json([m.__dict__ for m in self.marks], indent=2) + "\n", encoding="utf-8")


def fetch_status(session: requests.Session, url: str, *, timeout: float,
                 max_body: int = DEFAULT_MAX_BYTES) -> tuple[int | None, bytes | None, Any, str | None]:
    """One strict read of a status URL, the plugin's only one: no redirect followed, the body bounded to
    ``max_body``, the JSON read by :func:`~pytest_chaosdrill.statusread.read_status`. Returns (HTTP code,
    body, payload, error): ``error`` is None exactly when ``payload`` is the answer; it never raises."""
    code: int | None = None
    body: bytes | None = None
    payload: Any = None
    error: str | None = None
    try:
        resp = session.get(url, timeout=timeout, stream=True, allow_redirects=False)
        code = resp.status_code
        try:
            if 300 <= code < 400:
                location = resp.headers.get("Location", "")
                error = f"HTTP {code} redirect to {location[:200]!r} refused: the sampler never follows redirects"
            else:
                body = resp.raw.read(max_body + 1, decode_content=True)
        finally:
            resp.close()
        if error is None and code != 200:
            error = f"HTTP {code}"
        elif error is None:
            read = read_status(body or b"", max_bytes=max_body)
            if read.ok:
                payload = read.payload
            else:
                error = read.reason
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError, OSError) as exc:
        # urllib3's errors (a body cut short: the target died mid-answer) come through raw.read
        # unwrapped by requests; they are a failed read like any other, never a dead sampler.
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    return code, body, payload, error


class StatusSampler:
    """Polls a status URL on one keep-alive connection until stopped; every answer becomes a :class:`Sample`.

    Transport errors, non-200 answers and bodies :func:`~pytest_chaosdrill.statusread.read_status`
    refuses (duplicate keys, NaN, non-object, too big, too deep, not JSON) are recorded as samples
    with ``error`` set (and the raw body kept, bounded), so a dead or misbehaving target shows in
    the timeline instead of stopping it. Redirects are never followed: a 3xx is a failed sample
    naming its ``Location``. Only a loopback host or one in ``allowed_hosts`` is ever contacted
    (:class:`SamplerRefused` otherwise), and proxy/netrc settings from the environment are ignored.

    ``on_sample(sample)`` runs after every sample is added (e.g. a :class:`LiveInterlock`); an
    exception in it is recorded in :attr:`callback_errors` and sampling goes on.
    """

    def __init__(self, url: str, timeline: Timeline, *, interval_s: float = 0.005, timeout_s: float = 1.0,
                 max_body: int = 1_000_000, allowed_hosts: Iterable[str] = (),
                 on_sample: Callable[[Sample], Any] | None = None) -> None:
        refusal = url_refusal(url, allowed_hosts)
        if refusal is not None:
            raise SamplerRefused(refusal)
        self.url = url
        self.timeline = timeline
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.default_timeout_s = timeout_s
        self.max_body = max_body
        self.allowed_hosts = tuple(allowed_hosts)
        self.on_sample = on_sample
        self.callback_errors: list[str] = []
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

    @staticmethod
    def new_session() -> requests.Session:
        """A session that ignores HTTP(S)_PROXY, netrc and CA settings from the environment."""
        session = requests.Session()
        session.trust_env = False  # a proxy from the environment would carry samples off loopback
        # No compression: max_body then bounds what the wire carries, and no gzip bomb can expand.
        session.headers["Accept-Encoding"] = "identity"
        return session

    def poll_once(self, session: requests.Session) -> Sample:
        sent = time.monotonic()
        code, body, payload, error = fetch_status(session, self.url, timeout=self.timeout_s, max_body=self.max_body)
        if error is not None:
            error = error[:1000]
            raw = body[:RAW_KEEP_BYTES] if body is not None else None
            sample = Sample(self._count, sent, time.monotonic(), utc_now(), code, None, error, raw,
                            len(body) if body is not None else None)
        else:
            sample = Sample(self._count, sent, time.monotonic(), utc_now(), code, payload)
        self._count += 1
        self.timeline.add(sample)
        if self.on_sample is not None:
            try:
                self.on_sample(sample)
            except Exception as exc:  # noqa: BLE001 - a broken hook must not stop the sampling
                self.callback_errors.append(f"sample {sample.i}: {type(exc).__name__}: {exc}"[:500])
        return sample

    def _run(self) -> None:
        with self.new_session() as session:
            while not self._stop.is_set():
                sample = self.poll_once(session)
                # After a transport error back off a little: a dead target should not be hammered.
                pause = self.interval_s if sample.error is None else max(self.interval_s, 0.02)
                remaining = pause - (time.monotonic() - sample.sent_mono)
                if remaining > 0:
                    self._stop.wait(remaining)


class LiveInterlock:
    """An ``on_sample`` hook that trips on the first sample reporting a live environment.

    ``tripped`` is an Event the drill can wait on or check; ``reason`` and ``sample`` say why.
    ``on_trip(reason)`` (optional) is called once, from the sampler thread, when it trips.
    """

    def __init__(self, on_trip: Callable[[str], Any] | None = None) -> None:
        self.tripped = threading.Event()
        self.reason: str | None = None
        self.sample: Sample | None = None
        self._on_trip = on_trip

    def __call__(self, sample: Sample) -> None:
        if self.tripped.is_set() or not sample.ok:
            return
        reason = is_live_status(sample.status)
        if reason is not None:
            self.reason, self.sample = f"sample {sample.i}: {reason}", sample
            self.tripped.set()
            if self._on_trip is not None:
                self._on_trip(self.reason)


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
