"""Write-ahead log of order intents: a bounded queue drained by a writer thread that fsyncs.

An intent may be dispatched only after its record is durable (the future returned by ``enqueue``
resolves after ``fsync``). When the queue is full, ``enqueue`` fails and the failure counter grows:
the caller must fail closed. The ``wal_stall`` fault hook makes the writer physically stop draining.
On restart, ``pending_intents`` lists intents whose outcome was never journalled (maybe dispatched):
they are resolved by asking the venue, never re-sent.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

# Outcomes after which an intent needs no resolution on restart.
TERMINAL_OUTCOMES = frozenset({"acked", "rejected", "abandoned", "resolved_found", "resolved_absent"})


class Wal:
    """Bounded, fsynced, append-only journal (``wal.jsonl``)."""

    def __init__(self, path: Path, capacity: int,
                 on_stall_change: Callable[[bool, dict], None] | None = None) -> None:
        self.path = Path(path)
        self.capacity = int(capacity)
        self.enqueue_failures = 0
        self.records_written = 0
        self.write_errors = 0
        self.last_write_error: str | None = None
        self._q: deque[tuple[dict, asyncio.Future | None]] = deque()
        self._writing = 0  # records taken from the queue, not yet fsynced: still count as depth
        self._cv = threading.Condition()
        self._stall_requested = False
        self._stalled = False
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._on_stall_change = on_stall_change

    # -- producer side (event loop) -------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._q) + self._writing

    @property
    def stalled(self) -> bool:
        return self._stalled

    def enqueue(self, record: dict) -> "asyncio.Future | None":
        """Queue ``record``; returns a future resolved once it is durable, or None if the queue is full."""
        fut = self._loop.create_future() if self._loop is not None else None
        with self._cv:
            if self.depth >= self.capacity or self._closing:
                self.enqueue_failures += 1
                return None
            self._q.append((record, fut))
            self._cv.notify()
        return fut

    def request_stall(self, stall: bool) -> None:
        """Ask the writer to stop (True) or resume (False) draining; it reports when it physically does."""
        with self._cv:
            self._stall_requested = stall
            self._cv.notify()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 1.0) -> bool:
        """Drain what can be drained within ``timeout`` and stop the writer; True if fully drained."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.depth and not self._stalled and time.monotonic() < deadline:
                self._cv.wait(0.01)
            drained = self.depth == 0
            self._closing = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()) + 0.2)
        return drained

    # -- writer thread ----------------------------------------------------------------------------
    def _notify_stall(self, stalled: bool, detail: dict) -> None:
        if self._on_stall_change is not None:
            try:
                self._on_stall_change(stalled, detail)
            except Exception:  # a logging failure must not kill the writer
                pass

    def _run(self) -> None:
        stall_started = 0.0
        with open(self.path, "a", encoding="utf-8") as fh:
            while True:
                with self._cv:
                    while not self._closing and (self._stall_requested or not self._q):
                        if self._stall_requested and not self._stalled:
                            self._stalled = True
                            stall_started = time.monotonic()
                            self._notify_stall(True, {"queue_depth": self.depth, "capacity": self.capacity,
                                                      "enqueue_failures": self.enqueue_failures})
                        elif not self._stall_requested and self._stalled:
                            break
                        self._cv.wait(0.05)
                    if self._stalled and not self._stall_requested:
                        self._stalled = False
                        self._notify_stall(False, {"queue_depth": self.depth, "capacity": self.capacity,
                                                   "enqueue_failures": self.enqueue_failures,
                                                   "stalled_ms": round((time.monotonic() - stall_started) * 1000, 1)})
                    if self._closing and (not self._q or self._stalled):
                        self._cv.notify_all()
                        return
                    batch = list(self._q)
                    self._q.clear()
                    self._writing = len(batch)
                if not batch:
                    continue
                try:
                    fh.write("".join(json.dumps(rec, separators=(",", ":")) + "\n" for rec, _ in batch))
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError as exc:
                    # Disk full, I/O error: nothing becomes durable, so nothing is dispatched; the
                    # records go back to the head of the queue and the queue backs up (fail closed).
                    with self._cv:
                        self.write_errors += 1
                        self.last_write_error = repr(exc)
                        self._q.extendleft(reversed(batch))
                        self._writing = 0
                        self._cv.wait(0.1)
                    continue
                with self._cv:
                    self._writing = 0
                    self.records_written += len(batch)
                    self._cv.notify_all()
                futs = [f for _, f in batch if f is not None]
                if futs and self._loop is not None:
                    try:
                        self._loop.call_soon_threadsafe(_resolve_all, futs)
                    except RuntimeError:  # loop closed during shutdown
                        pass


def _resolve_all(futs: list[asyncio.Future]) -> None:
    for f in futs:
        if not f.done():
            f.set_result(True)


def read_records(path: Path) -> list[dict]:
    """All complete records of a journal (a torn last line from a crash is ignored)."""
    out: list[dict] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return out


def pending_intents(records: list[dict]) -> list[dict]:
    """Intents with no terminal outcome, in journal order: they may have reached the venue."""
    intents: dict[str, dict] = {}
    done: set[str] = set()
    for r in records:
        cid = r.get("clOrdId")
        if not cid:
            continue
        if r.get("t") == "intent":
            intents.setdefault(cid, r)
        elif r.get("t") == "outcome" and r.get("result") in TERMINAL_OUTCOMES:
            done.add(cid)
    return [r for cid, r in intents.items() if cid not in done]
