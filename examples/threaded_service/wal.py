"""Write-ahead log of order intents: a bounded in-memory queue drained by one writer thread that
appends JSON lines to ``wal.jsonl`` and fsyncs each batch before any intent in it may be dispatched.

A full queue refuses the record (the caller fails closed and the failure is counted). Replay after a
crash finds intents without a terminal outcome; they are resolved by asking the venue, never re-sent.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

TERMINAL = ("accepted", "rejected", "abandoned", "resolved_found", "resolved_absent", "failed")


class Record:
    """One queued WAL line; ``durable`` is set once it is on disk (written and fsynced)."""

    __slots__ = ("data", "durable")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.durable = threading.Event()


class Wal:
    """Bounded, fsynced, append-only intent journal."""

    def __init__(self, path: Path, capacity: int, on_stall_change: Callable[[str, float], None] | None = None) -> None:
        self.path = path
        self.capacity = capacity
        self.enqueue_failures = 0
        self._q: deque[Record] = deque()
        self._cv = threading.Condition()
        self._stall_requested = False
        self._stalled = False
        self._closed = False
        self._on_stall_change = on_stall_change
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)

    # -- producer side ---------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._q)

    def enqueue(self, data: dict[str, Any]) -> Record | None:
        """Queue one record; None (and a counted failure) when the queue is full."""
        with self._cv:
            if len(self._q) >= self.capacity or self._closed:
                self.enqueue_failures += 1
                return None
            rec = Record(data)
            self._q.append(rec)
            self._cv.notify()
            return rec

    def set_stall(self, stalled: bool) -> None:
        """The ``wal_stall`` hook: while set the writer stops draining (the queue fills)."""
        with self._cv:
            self._stall_requested = stalled
            self._cv.notify()

    # -- writer ----------------------------------------------------------------------------------
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Drain what is queued (unless stalled) and stop the writer."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        with open(self.path, "a+", encoding="utf-8") as fh:
            # A crash can leave a torn last line: end it, or the first new record would be glued to it.
            if fh.tell() > 0:
                fh.seek(fh.tell() - 1)
                if fh.read(1) != "\n":
                    fh.write("\n")
            while True:
                with self._cv:
                    while True:
                        if self._stall_requested != self._stalled:
                            self._stalled = self._stall_requested
                            if self._on_stall_change:
                                # Reported by the writer itself: this is when draining really stops/resumes.
                                self._on_stall_change("applied" if self._stalled else "released", time.monotonic())
                        if self._closed and (self._stalled or not self._q):
                            return
                        if self._q and not self._stalled:
                            break
                        self._cv.wait(0.05)
                    batch = list(self._q)
                for rec in batch:
                    fh.write(json.dumps(rec.data, separators=(",", ":")) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                with self._cv:
                    for _ in batch:
                        self._q.popleft()
                for rec in batch:
                    rec.durable.set()


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All records of a WAL file (a torn last line from a crash is ignored)."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def unresolved_intents(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intents without a terminal outcome: they may have reached the venue before a crash."""
    done = {r.get("clOrdId") for r in records if r.get("kind") == "outcome" and r.get("result") in TERMINAL}
    return [r for r in records if r.get("kind") == "intent" and r.get("clOrdId") not in done]
