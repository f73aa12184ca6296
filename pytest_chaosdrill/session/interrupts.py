"""How a drill ends early and still reports: its own deadline (``timeout_s``, not pytest-timeout's, so
the fault is always released and the verdict is TIMEOUT), SIGTERM handled like Ctrl-C, and a drill cut
short by either reported as INTERRUPTED with why (pytest makes no report for it)."""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Iterator

import pytest

from ..deadline import drill_deadline
from ..errors import DrillHalted, DrillInterrupted
from ..halt import HaltWatcher, in_release, interrupt_main_thread
from .reporting import junit_facts
from .state import STASH_REPORTS, STASH_STATE, SessionState

log = logging.getLogger("chaosdrill")


class DrillInterrupts:
    """The drill deadline, the SIGTERM handler and the reports of interrupted drills."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self._old_sigterm: Any = None
        self._watcher: HaltWatcher | None = None
        self._install_sigterm()
        _pipe_safe_terminal(state.config)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """The drill's own deadline: ``timeout_s`` of its file raises DrillTimeout into the runner."""
        state = item.stash.get(STASH_STATE, None)
        if state is None:
            return (yield)
        with drill_deadline(state.drill.timeout_s):
            return (yield)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> Any:
        # Drills keep their own deadline (above), so a timeout always releases the fault and is a
        # TIMEOUT verdict; pytest-timeout still times every other test.
        return True if STASH_STATE in item.stash or "chaosdrill_drill" in getattr(item, "fixturenames", ()) else None

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> Any:
        return True if STASH_STATE in item.stash else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        if self._halt_seen() is not None:  # a halt that arrived during a release: stop before the next test
            self._raise_halted()
        self.state.current = item if "chaosdrill_drill" in getattr(item, "fixturenames", ()) else None
        result = yield
        self.state.current = None  # kept when an interrupt ends the protocol early: see pytest_keyboard_interrupt
        return result

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C or SIGTERM mid-drill: pytest makes no report for the drill's call or teardown, so the
        JUnit file would get a nameless test case. Report the drill as it ended: INTERRUPTED, and why."""
        item = self.state.current
        if item is None or STASH_STATE not in item.stash:
            return
        reports = item.stash.get(STASH_REPORTS, {})
        if "call" in reports:
            if "teardown" not in reports:
                self._interrupted_teardown(item)
            return
        state = item.stash[STASH_STATE]
        ev = state.run.evaluation if state.run is not None else None
        reason = state.secrets().text(ev.reason if ev is not None else "interrupted before the drill ran")
        record = state.run.record if state.run is not None else None
        tts = record.time_to_safe_ms if record is not None else None
        common = dict(nodeid=item.nodeid, location=item.location, keywords={k: 1 for k in item.keywords})
        call = pytest.TestReport(outcome="failed", longrepr=f"INTERRUPTED: {reason}", when="call", **common)
        teardown = pytest.TestReport(outcome="passed", longrepr=None, when="teardown", **common)
        for report in (call, teardown):
            item.stash.setdefault(STASH_REPORTS, {})[report.when] = report
            item.ihook.pytest_runtest_logreport(report=report)
        props = [("drill_id", state.drill.id), ("verdict", "INTERRUPTED"), ("backend", state.backend),
                 ("time_to_safe_ms", "" if tts is None else f"{tts:.1f}"),
                 ("evidence_folder", str(state.writer.dir) if state.writer is not None else "")]
        junit_facts(self.state.config, teardown, props)

    def _interrupted_teardown(self, item: pytest.Item) -> None:
        """Ctrl-C after the drill's call, while its target stopped or its evidence was written: the drill
        is not reported as passed (its folder is marked INCOMPLETE, see DrillSession.write_evidence)."""
        state = item.stash[STASH_STATE]
        if state.outcome is None:
            # pytest drops the fixtures' remaining finalizers when Ctrl-C lands in one: stop the target and
            # write the evidence here, or the folder would stay half written and the service running.
            if state.target is not None:
                try:
                    state.target.close()
                except Exception as exc:  # stopping is best effort here; the evidence says what happened
                    log.warning("target not stopped after the interrupt: %s: %s", type(exc).__name__, exc)
            core = self.state.config.pluginmanager.get_plugin("chaosdrill-session")
            if core is not None:
                core.write_evidence(item, state)
        folder = str(state.writer.dir) if state.writer is not None else ""
        common = dict(nodeid=item.nodeid, location=item.location, keywords={k: 1 for k in item.keywords})
        teardown = pytest.TestReport(
            outcome="failed", when="teardown", **common,
            longrepr=f"INTERRUPTED during the drill's teardown (evidence folder {folder or 'not created'}: "
                     "marked INCOMPLETE unless it was finished)")
        item.stash.setdefault(STASH_REPORTS, {})["teardown"] = teardown
        item.ihook.pytest_runtest_logreport(report=teardown)
        junit_facts(self.state.config, teardown, [("drill_id", state.drill.id), ("verdict", "INTERRUPTED"),
                                                  ("backend", state.backend), ("evidence_folder", folder)])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def _halt_seen(self) -> dict[str, Any] | None:
        return self._watcher.seen if self._watcher is not None else None

    def _raise_halted(self) -> None:
        seen = self._halt_seen() or {}
        raise DrillHalted(f"chaosdrill halt at {seen.get('at', '?')}" + (f": {seen['reason']}" if seen.get("reason") else ""))

    def _install_sigterm(self) -> None:
        """SIGTERM is handled like Ctrl-C: the drill releases its fault, stops and writes its evidence.
        The halt file (``chaosdrill halt``) arrives the same way: its watcher thread delivers SIGTERM's
        handler to the main thread, which then raises :class:`DrillHalted`."""
        if threading.current_thread() is not threading.main_thread():
            return

        def terminated(signum: int, frame: Any) -> None:
            if self._halt_seen() is not None:
                if in_release():  # never cut a release short: the next test start stops the session
                    return
                self._raise_halted()
            raise DrillInterrupted()

        try:
            self._old_sigterm = signal.signal(signal.SIGTERM, terminated)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            self._old_sigterm = None
            return
        self._watcher = HaltWatcher(lambda facts: interrupt_main_thread()).start()


class _PipeSafe:
    """The terminal's stream, made harmless once its reader is gone (``pytest ... | tee log`` and
    Ctrl-C: tee dies first). A write to the broken pipe would raise out of whatever hook printed, turn
    the interrupt into an internal error and cost the JUnit file, the sign-off and the report."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                self.broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _pipe_safe_terminal(config: pytest.Config) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    tw = getattr(tr, "_tw", None)
    if tw is not None and hasattr(tw, "_file") and not isinstance(tw._file, _PipeSafe):
        tw._file = _PipeSafe(tw._file)
