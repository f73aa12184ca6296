"""The drill machinery of one pytest session, registered by the plugin only once drills are collected
(pytest-xdist style: separate plugin objects, one job each, over one shared state):

* :class:`~.core.DrillSession`: backends, registries, the target file, collection, each drill's run
  and evidence;
* :class:`~.reporting.DrillReporting`: JUnit facts, pytest-html extras, progress, the terminal table,
  SIGNOFF.md and the HTML report;
* :class:`~.interrupts.DrillInterrupts`: the drill deadline, SIGTERM and the halt file, reports of
  interrupted drills;
* :class:`~.junit_errors.DrillJUnitErrors`: JUnit ``<error>`` (not ``<failure>``) for ERROR drills;
* :class:`~.allure.DrillAllure`: Allure steps per drill phase and the evidence attached (allure-pytest
  installed and ``--alluredir`` given; otherwise it does nothing);
* :mod:`.state`: what they share (:class:`~.state.SessionState` in ``config.stash``,
  :class:`~.state.DrillState` in ``item.stash``).
"""
from __future__ import annotations

import pytest

from ..halt import read_halt, refusal
from .allure import DrillAllure
from .core import DrillSession
from .interrupts import DrillInterrupts
from .junit_errors import DrillJUnitErrors
from .reporting import DrillReporting
from .state import STASH_SESSION_STATE, SessionState


def start(config: pytest.Config) -> DrillSession:
    """Create the session's plugin objects over one shared state and register them; refuse (one line)
    while ``chaosdrill halt`` is in force."""
    facts = read_halt()
    if facts is not None:
        pytest.exit(refusal(facts), returncode=pytest.ExitCode.USAGE_ERROR)
    state = SessionState(config)
    config.stash[STASH_SESSION_STATE] = state
    session = DrillSession(state)
    config.pluginmanager.register(session, "chaosdrill-session")
    config.pluginmanager.register(DrillReporting(state), "chaosdrill-reporting")
    config.pluginmanager.register(DrillInterrupts(state), "chaosdrill-interrupts")
    config.pluginmanager.register(DrillJUnitErrors(state), "chaosdrill-junit-errors")
    config.pluginmanager.register(DrillAllure(state), "chaosdrill-allure")
    return session


__all__ = ["DrillAllure", "DrillInterrupts", "DrillJUnitErrors", "DrillReporting", "DrillSession", "SessionState", "start"]
