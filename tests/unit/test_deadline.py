"""The drill's own deadline (pytest_chaosdrill.deadline): it interrupts, it can be disarmed, and a
nested drill run can hand the rest of it back."""
from __future__ import annotations

import signal
import time

import pytest

from pytest_chaosdrill import deadline
from pytest_chaosdrill.errors import DrillTimeout

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="SIGALRM timers are POSIX only")


def test_the_deadline_raises_drill_timeout_into_the_block() -> None:
    start = time.monotonic()
    with pytest.raises(DrillTimeout):
        with deadline.drill_deadline(0.05) as armed:
            assert armed
            while time.monotonic() - start < 5:
                time.sleep(0.01)
    assert time.monotonic() - start < 2
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed


def test_disarm_stops_it_and_resume_gives_back_what_was_left() -> None:
    with deadline.drill_deadline(10):
        saved = deadline.remaining()
        assert saved is not None and 9 < saved[0] <= 10
        deadline.disarm()
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
        deadline.resume(saved, elapsed=4.0)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 5 < left <= 6
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_a_disarmed_timer_is_not_resumed() -> None:
    deadline.resume((0.0, 0.0), elapsed=1.0)
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_a_driver_keeps_the_deadline_running_across_a_nested_drill() -> None:
    import signal

    from pytest_chaosdrill import deadline

    with deadline.drill_deadline(30) as armed:
        if not armed:
            pytest.skip("no SIGALRM here")
        with deadline.kept_across():
            deadline.disarm()  # what a nested drill run does at its release
            assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 29 < left <= 30  # re-armed with what was left, not the full time again


def test_a_deadline_that_passed_in_a_nested_drill_ends_the_driver_where_it_resumes() -> None:
    import signal

    from pytest_chaosdrill import deadline

    with deadline.drill_deadline(0.05) as armed:
        if not armed:
            pytest.skip("no SIGALRM here")
        with pytest.raises(DrillTimeout):
            with deadline.kept_across():
                deadline.disarm()  # the nested drill's release, during which the deadline passes
                time.sleep(0.1)  # the time that passes is the test: nothing to poll
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
