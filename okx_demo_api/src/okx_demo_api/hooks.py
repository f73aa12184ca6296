"""Hooks: the target-side stimuli a drill may use, all control-dir files.

* ``wal_stall``: while the file exists the WAL writer physically stops draining its queue.
* ``emit_reason_token``: its content is a token the cortex module emits into the PolicyGuard's
  inputs; the file is consumed.
* ``reduce_exposure``: an operator's "reduce exposure now" (an occasion hook): the file is consumed
  and every position is flattened with reduce-only orders, whatever the mode.

Each time a hook physically takes effect or is released a JSON line goes to
``<control dir>/hooks.log``: ``{"hook", "event": "applied"|"released"|"refused", "mono", "utc", "detail"}``.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from .clock import utc_now
from .wal import Wal

WAL_STALL = "wal_stall"
EMIT_TOKEN = "emit_reason_token"
REDUCE_EXPOSURE = "reduce_exposure"
HOOKS_LOG = "hooks.log"


class HookLog:
    """Appends hook events to ``hooks.log`` (called from the event loop and the WAL writer thread)."""

    def __init__(self, control_dir: Path, log: Callable[..., None]) -> None:
        self.path = Path(control_dir) / HOOKS_LOG
        self._lock = threading.Lock()
        self._log = log

    def __call__(self, hook: str, event: str, detail: dict) -> None:
        rec = {"hook": hook, "event": event, "mono": time.monotonic(), "utc": utc_now(), "detail": detail}
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
            fh.flush()
        self._log("hook", **rec)


class Hooks:
    """Polls the control dir for hook files (same cadence as the STOP file)."""

    def __init__(self, control_dir: Path, wal: Wal, emit: Callable[[str], dict], hook_log: HookLog,
                 reduce: Callable[[], dict] | None = None) -> None:
        self.dir = Path(control_dir)
        self.wal = wal
        self.emit = emit
        self.hook_log = hook_log
        self.reduce = reduce
        self._stall_on = False

    def wal_stall_changed(self, stalled: bool, detail: dict) -> None:
        """Called by the WAL writer when it physically stops or resumes draining."""
        self.hook_log(WAL_STALL, "applied" if stalled else "released", detail)

    def poll(self) -> None:
        stall = (self.dir / WAL_STALL).exists()
        if stall != self._stall_on:
            self._stall_on = stall
            self.wal.request_stall(stall)
        tok_path = self.dir / EMIT_TOKEN
        if tok_path.exists():
            try:
                token = tok_path.read_text(encoding="utf-8").strip()
                if not token:
                    return  # still being written: next poll
                tok_path.unlink()
            except OSError:
                return  # already consumed: next poll
            self.hook_log(EMIT_TOKEN, "applied", self.emit(token))
        reduce_path = self.dir / REDUCE_EXPOSURE
        if self.reduce is not None and reduce_path.exists():
            try:
                reduce_path.unlink()  # one command per file
            except OSError:
                return  # already consumed: next poll
            detail = self.reduce()
            self.hook_log(REDUCE_EXPOSURE, "refused" if detail.get("refused") else "applied", detail)
