"""The emergency stop: one halt file per user that every running drill watches.

``chaosdrill halt`` writes it; each pytest process that runs drills (every xdist worker, every session)
polls it from a daemon thread and, on seeing it, interrupts its main thread like SIGTERM does, so the
drill releases its fault, stops its target and ends INTERRUPTED with a reason starting ``HALTED``.
While the file exists a new drill run refuses to start; ``chaosdrill halt --clear`` removes it.

Where it lives: ``$CHAOSDRILL_HALT_FILE`` if set, else ``$XDG_RUNTIME_DIR/chaosdrill/HALT``, else
``<temp dir>/chaosdrill-<uid>/HALT`` (one per user, so a halt stops that user's drills on the machine).
"""
from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

#: The environment variable that moves the halt file (tests, or several users sharing one stop).
HALT_ENV = "CHAOSDRILL_HALT_FILE"
#: How often a running drill looks for the halt file; the halt bound is this plus the drill's release.
POLL_S = 0.02


def halt_path() -> Path:
    """Where the halt file is (see the module docstring)."""
    env = os.environ.get(HALT_ENV)
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "chaosdrill" if runtime and Path(runtime).is_dir() else (
        Path(tempfile.gettempdir()) / f"chaosdrill-{os.getuid() if hasattr(os, 'getuid') else 'user'}")
    return base / "HALT"


def read_halt(path: Path | None = None) -> dict[str, Any] | None:
    """The halt's facts (``at``, ``by``, ``reason``) if the halt file exists, else None."""
    path = path or halt_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        return {"reason": f"halt file unreadable: {exc}"}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {"reason": text.strip()[:200]}


def set_halt(reason: str = "", path: Path | None = None) -> Path:
    """Write the halt file (atomically: a watcher never reads half of it); returns its path."""
    path = path or halt_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    facts = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "at_epoch": time.time(),
             "by": f"pid {os.getpid()}", "reason": reason}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(facts), encoding="utf-8")
    os.replace(tmp, path)
    return path


def clear_halt(path: Path | None = None) -> bool:
    """Remove the halt file; True if there was one."""
    try:
        (path or halt_path()).unlink()
        return True
    except FileNotFoundError:
        return False


def refusal(facts: dict[str, Any], path: Path | None = None) -> str:
    """The one line a run prints when it refuses to start under a halt."""
    why = f" ({facts['reason']})" if facts.get("reason") else ""
    since = f" since {facts['at']}" if facts.get("at") else ""
    return (f"chaosdrill: drills are HALTED{since}{why}: {path or halt_path()} exists; "
            "run `chaosdrill halt --clear` to allow drills again")


class HaltWatcher:
    """A daemon thread that calls ``on_halt`` once when the halt file appears."""

    def __init__(self, on_halt: Callable[[dict[str, Any]], None], path: Path | None = None,
                 poll_s: float = POLL_S) -> None:
        self.path = path or halt_path()
        self.on_halt = on_halt
        self.poll_s = poll_s
        self.seen: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="chaosdrill-halt-watcher", daemon=True)

    def start(self) -> "HaltWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            if self.path.exists():
                self.seen = read_halt(self.path) or {}
                self.on_halt(self.seen)
                return


_releasing = 0


@contextmanager
def releasing() -> Iterator[None]:
    """Mark the drill's release and evidence as running: a halt seen meanwhile waits for the next test
    (:func:`in_release`), so the halt never interrupts the release it asks for."""
    global _releasing
    _releasing += 1
    try:
        yield
    finally:
        _releasing -= 1


def in_release() -> bool:
    """Whether a drill is releasing its fault right now (see :func:`releasing`)."""
    return _releasing > 0


def interrupt_main_thread() -> None:
    """Deliver SIGTERM's Python handler in the main thread (no OS signal: only this process)."""
    import _thread

    _thread.interrupt_main(signal.SIGTERM)
