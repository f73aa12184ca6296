"""Allure (allure-pytest, when installed and ``--alluredir`` given): each drill phase becomes an Allure
step with its real start and end, each check a step of the ``assert`` phase (its criterion as the name),
and the drill's evidence is attached (record.json, notes.md with the verdict, meta.json, the report's
drill section). Everything attached is read from the evidence folder, which the evidence writer already
redacted, and goes through the drill's redactor once more. Without allure-pytest this does nothing."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from .state import STASH_STATE, SessionState

log = logging.getLogger("chaosdrill")

#: Evidence files attached to the Allure test result: (file, name shown, attachment type name).
ATTACHED = (("notes.md", "verdict and criteria (notes.md)", "TEXT"), ("meta.json", "meta.json", "JSON"),
            ("record.json", "drill record (record.json)", "JSON"), ("checks.json", "checks.json", "JSON"))
#: The drill's verdict as an Allure status (ERROR: the harness broke, Allure's "broken").
STATUS = {"PASS": "passed", "FAIL": "failed", "NOT PROVEN": "failed", "TIMEOUT": "failed", "INCOMPLETE": "broken",
          "ERROR": "broken", "INTERRUPTED": "broken", "SKIPPED": "skipped"}


class DrillAllure:
    """Adds each drill's phases, checks and evidence to its Allure test result."""

    def __init__(self, state: SessionState) -> None:
        self.state = state

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        # After the teardown the evidence folder is written; Allure's result for the test is still open.
        state = item.stash.get(STASH_STATE, None)
        if report.when == "teardown" and state is not None and state.outcome is not None:
            listener = item.config.pluginmanager.get_plugin("allure_listener")
            if listener is not None:
                try:
                    add_drill(listener.allure_logger, state)
                except Exception as exc:  # a view of the evidence: never a reason to lose the report
                    log.warning("Allure steps not added: %s: %s", type(exc).__name__, exc)
        return report


def add_drill(reporter: Any, state: Any) -> None:
    """Steps and attachments for one drill on the Allure test result being reported (``reporter`` is
    allure-pytest's ``AllureReporter``)."""
    from allure_commons.model2 import Parameter, Status, StatusDetails, TestResult, TestStepResult
    from allure_commons.types import AttachmentType
    from allure_commons.utils import uuid4

    result = reporter.get_test(None)
    if not isinstance(result, TestResult):
        return
    redact = state.secrets().text
    outcome = state.outcome
    record = state.run.record if state.run is not None else None
    evaluation = state.run.evaluation if state.run is not None else None
    for p in result.parameters:  # allure-pytest shows the drill parameter's repr: its definition, secrets too
        p.value = redact(str(p.value))
    if result.statusDetails is not None:
        result.statusDetails.message = redact(result.statusDetails.message or "") or None
        result.statusDetails.trace = redact(result.statusDetails.trace or "") or None
    result.parameters.append(Parameter(name="verdict", value=outcome.verdict))
    if outcome.time_to_safe_ms is not None:
        result.parameters.append(Parameter(name="time to safe", value=f"{outcome.time_to_safe_ms:.0f} ms"))
    if record is not None and record.phases:
        to_ms = _wall_clock(record)
        ends = [m for _, m in record.phases[1:]] + [record.t_end or record.phases[-1][1]]
        final = Status.PASSED if outcome.verdict == "PASS" else getattr(Status, STATUS.get(outcome.verdict, "broken").upper())
        for n, ((name, start), end) in enumerate(zip(record.phases, ends)):
            last = n == len(record.phases) - 1
            step = TestStepResult(name=f"phase: {name}", start=to_ms(start), stop=to_ms(end),
                                  status=final if last else Status.PASSED)
            if last and outcome.verdict != "PASS":
                step.statusDetails = StatusDetails(message=redact(f"{outcome.verdict}: {outcome.reason}"))
            if name == "trigger" and record.step is not None:
                step.parameters.append(Parameter(name="fault", value=record.step.kind))
            if name == "assert" and evaluation is not None:
                for check in evaluation.checks:
                    status = Status.PASSED if check.passed else (Status.BROKEN if check.verdict == "ERROR"
                                                                 else Status.FAILED)
                    step.steps.append(TestStepResult(
                        name=redact(f"{check.name}: {check.criterion or check.name}"), start=step.start,
                        stop=step.stop, status=status, statusDetails=StatusDetails(message=redact(check.detail))))
            result.steps.append(step)
    folder = Path(outcome.folder) if outcome.folder else None
    if folder is None:
        return
    for name, shown, kind in ATTACHED:
        path = folder / name
        if path.is_file():
            reporter.attach_data(uuid4(), redact(path.read_text(encoding="utf-8", errors="replace")), name=shown,
                                 attachment_type=getattr(AttachmentType, kind), parent_uuid=result.uuid)
    try:
        from ..report import drill_section_html

        reporter.attach_data(uuid4(), redact(drill_section_html(folder)), name="drill report",
                             attachment_type=AttachmentType.HTML, parent_uuid=result.uuid)
    except Exception as exc:  # the section needs a readable record; the files above are attached anyway
        log.warning("Allure: drill report section not attached: %s: %s", type(exc).__name__, exc)
    reporter.attach_data(uuid4(), str(folder), name="evidence folder", attachment_type=AttachmentType.TEXT,
                         parent_uuid=result.uuid)


def _wall_clock(record: Any) -> Any:
    """Monotonic seconds of the drill -> Allure's epoch milliseconds, anchored at the record's start."""
    try:
        started = datetime.strptime(record.started_utc, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        started = None

    def to_ms(mono: float) -> int | None:
        return None if started is None else int(round((started + (mono - record.t_start)) * 1000))

    return to_ms
