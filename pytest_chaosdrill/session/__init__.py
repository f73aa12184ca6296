"""The drill machinery of one pytest session, registered by the plugin only once drills are collected
(pytest-xdist style: separate plugin objects, one job each, over one shared state):

* :class:`~.core.DrillSession`: backends, registries, the target file, collection, each drill's run
  and evidence;
* :class:`~.reporting.DrillReporting`: JUnit facts, pytest-html extras, progress, the terminal table,
  SIGNOFF.md and the HTML report;
* :class:`~.interrupts.DrillInterrupts`: the drill deadline, SIGTERM, reports of interrupted drills;
* :mod:`.state`: what they share (:class:`~.state.SessionState` in ``config.stash``,
  :class:`~.state.DrillState` in ``item.stash``).
"""
from __future__ import annotations

import pytest

from .core import DrillSession
from .interrupts import DrillInterrupts
from .reporting import DrillReporting
from .state import STASH_SESSION_STATE, SessionState


def start(config: pytest.Config) -> DrillSession:
    """Create the session's plugin objects over one shared state and register them."""
    state = SessionState(config)
    config.stash[STASH_SESSION_STATE] = state
    session = DrillSession(state)
    config.pluginmanager.register(session, "chaosdrill-session")
    config.pluginmanager.register(DrillReporting(state), "chaosdrill-reporting")
    config.pluginmanager.register(DrillInterrupts(state), "chaosdrill-interrupts")
    return session


__all__ = ["DrillInterrupts", "DrillReporting", "DrillSession", "SessionState", "start"]
