"""Structured log: one JSON object per line in ``<data dir>/target.log`` (and stderr for warnings)."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from .clock import utc_now

# Events also echoed to stderr (the process supervisor's log).
_WARN = {"crashed", "latch_set", "two_leg_naked", "session_terminated", "stop_detected"}


class EventLog:
    """Append-only JSON-lines log; thread-safe (the WAL writer thread logs too)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: object) -> None:
        rec = {"utc": utc_now(), "mono": time.monotonic(), "event": event, **fields}
        line = json.dumps(rec, default=str, separators=(",", ":"))
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")
        if event in _WARN:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        with self._lock:
            self._fh.close()
