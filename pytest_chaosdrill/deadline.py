"""The drill's own deadline: ``timeout_s`` of its drill file, as a ``SIGALRM`` timer that raises
:class:`DrillTimeout` into the runner (so a timeout always releases the fault and ends TIMEOUT, unlike
pytest-timeout's). The one home of that timer: the session arms it, the runner disarms it before the
release, a driver that runs drills of its own (exploration) keeps it running across them
(:func:`kept_across`).""" 
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .errors import DrillTimeout


def _usable() -> bool:
    # SIGALRM exists on POSIX only, and a signal handler can be set from the main thread only.
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def drill_deadline(seconds: float) -> Iterator[bool]:
    """Raise :class:`DrillTimeout` into the block after ``seconds``; yields whether the timer is armed."""
    if not _usable():
        yield False
        return

    def expired(signum: int, frame: Any) -> None:
        raise DrillTimeout()

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def disarm() -> None:
    """Stop the timer: the deadline interrupts a drill, never its release."""
    if _usable():
        signal.setitimer(signal.ITIMER_REAL, 0)


def remaining() -> tuple[float, float] | None:
    """The timer's state, for :func:`resume` after a nested drill run disarmed it."""
    return signal.getitimer(signal.ITIMER_REAL) if _usable() else None


def resume(saved: tuple[float, float] | None, elapsed: float) -> None:
    """Re-arm the outer drill's timer with what was left of it at :func:`remaining`, less ``elapsed``."""
    if saved is not None and saved[0] > 0:
        signal.setitimer(signal.ITIMER_REAL, max(0.001, saved[0] - elapsed))


@contextmanager
def kept_across() -> Iterator[None]:
    """Run a nested drill (which disarms the timer at its release) and re-arm the outer drill's timer
    afterwards with what was left of it, less the time the nested drill took. Nothing left: raise
    :class:`DrillTimeout` here, at a known place, rather than from a 1 ms timer somewhere after it."""
    saved, t = remaining(), time.monotonic()
    try:
        yield
    finally:
        if saved is not None and 0 < saved[0] <= time.monotonic() - t:
            raise DrillTimeout()
        resume(saved, time.monotonic() - t)
