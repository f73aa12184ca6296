"""The session's reports, from the drills' outcomes: per-drill facts in the JUnit XML, the drill's
chart in a pytest-html row, progress lines at ``-v``, the terminal table, and SIGNOFF.md plus the
HTML report at the end (made by :mod:`pytest_chaosdrill.report`)."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ..report import DrillOutcome, drill_section_html, summary_table, write_run_report, write_signoff
from ..report.signoff import decide, full_run
from .state import STASH_STATE, SessionState, junit

log = logging.getLogger("chaosdrill")


class DrillReporting:
    """Collects every drill's outcome (here or from pytest-xdist workers) and reports them."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.config = state.config
        self._progress: logging.Handler | None = None
        self._test_started = time.time()
        self._install_progress()

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: sees the outcome the session put on the report
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        state = item.stash.get(STASH_STATE, None)
        if report.when == "teardown" and state is not None and state.outcome is not None:
            self._html_extras(report, state.outcome)
        if report.when == "call" and report.failed and state is not None and state.writer is not None:
            report.longrepr = report.longreprtext + _failure_facts(state)
        return report

    def _html_extras(self, report: pytest.TestReport, outcome: DrillOutcome) -> None:
        """With pytest-html installed, the drill's timeline chart and evidence link go into its row."""
        if not self.config.pluginmanager.hasplugin("html") or not outcome.folder:
            return
        try:
            from pytest_html import extras  # an optional plugin: only here, when it is installed

            htmlpath = getattr(self.config.option, "htmlpath", None)
            base = Path(htmlpath).resolve().parent if htmlpath else None
            report.extras = list(getattr(report, "extras", [])) + [  # type: ignore[attr-defined]
                extras.html(drill_section_html(Path(outcome.folder), link_base=base)),
                extras.url(str(Path(outcome.folder).resolve().as_uri()), name="evidence folder")]
        except Exception as exc:  # a view of the evidence: never a reason to lose the report
            log.warning("pytest-html extras not added: %s: %s", type(exc).__name__, exc)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._test_started = time.time()  # the -v phase lines' elapsed time counts from here

    @pytest.hookimpl(tryfirst=True)  # before the JUnit writer records the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "pytest_chaosdrill/drill_tests.py::" in report.nodeid and not report.nodeid.startswith("pytest_chaosdrill/"):
            # the bundled module's node id climbs out of the rootdir; JUnit's classname is its module
            xml = junit(self.config)
            if xml is not None:
                xml.node_reporter(report).add_attribute("classname", "pytest_chaosdrill.drill_tests")
        data = getattr(report, "chaosdrill", None)
        if report.when == "teardown" and isinstance(data, dict) and not self.state.is_worker:
            self.collect(report, data)

    def collect(self, report: pytest.TestReport, data: dict[str, Any]) -> None:
        """A drill's outcome, from its teardown report (here, or from a pytest-xdist worker)."""
        outcome = DrillOutcome.from_json(data)
        self.state.outcomes.append(outcome)
        props = [("drill_id", outcome.drill_id), ("verdict", outcome.verdict), ("backend", outcome.backend),
                 ("time_to_safe_ms", "" if outcome.time_to_safe_ms is None else f"{outcome.time_to_safe_ms:.1f}"),
                 ("budget_ms", "" if outcome.budget_ms is None else f"{outcome.budget_ms:.0f}"),
                 ("budget_source", outcome.budget_source),
                 ("evidence_folder", outcome.folder or ""), ("ieb_sha256", outcome.ieb_sha256 or "")]
        junit_facts(self.config, report, props)

    @pytest.hookimpl(trylast=True)  # after pytest's own teardown of what an interrupt left set up
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._progress is not None:
            log.removeHandler(self._progress)
            self._progress = None
        st = self.state
        seen = {o.nodeid for o in st.outcomes}
        st.outcomes += [o for o in st.written if o.nodeid not in seen]   # teardown after an interrupt
        st.outcomes.sort(key=_outcome_order)  # the checklist's order, whichever worker finished first
        if st.is_worker or st.info is None or not st.outcomes:
            return
        run_dir = st.info.run_dir
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
        preface = ""
        if interrupted or len(st.outcomes) < st.collected:
            preface = (f"> **PARTIAL RUN** ({'interrupted' if interrupted else 'stopped early'}): "
                       f"{len(st.outcomes)} of {st.collected} collected drill test(s) finished; this sign-off "
                       "covers only those.\n\n")
        write_signoff(run_dir, st.outcomes, st.info.run_id, st.info.commit, preface=preface)
        # The evidence root keeps the latest *full* run's sign-off and report: a partial or custom selection
        # (or an interrupted run) never replaces it; its own are in its run folder.
        st.full_run = not preface and full_run(st.outcomes)
        if st.full_run:
            try:
                shutil.copyfile(run_dir / "SIGNOFF.md", st.info.root / "SIGNOFF.md")
            except OSError:
                pass
        try:  # one self-contained HTML page per run, and the latest full one at the evidence root
            write_run_report(run_dir)
            if st.full_run:
                write_run_report(run_dir, st.info.root / "report.html")
        except Exception as exc:  # the report is a view of the evidence: its failure must not cost the run
            log.warning("HTML report not written: %s: %s", type(exc).__name__, exc)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        st = self.state
        if not st.outcomes or st.info is None:
            return
        terminalreporter.write_sep("=", "chaos drills")
        run_dir = st.info.run_dir
        for i, line in enumerate(summary_table(st.outcomes, base=run_dir)):
            o = st.outcomes[i - 2] if i >= 2 else None
            terminalreporter.write_line(line, **({} if o is None else _COLOURS.get(o.verdict, {"red": True})))
        ready = decide(st.outcomes).ready
        shown = _shown(run_dir, config)
        terminalreporter.write_line(f"evidence: {shown}/  (folders above are inside it)")
        terminalreporter.write_line(f"sign-off: {'READY TO SIGN' if ready else 'NOT READY'}  ({shown}/SIGNOFF.md)",
                                    **({"green": True, "bold": True} if ready else {"yellow": True, "bold": True}))
        terminalreporter.write_line(f"report:   {shown}/report.html")
        if not st.full_run:
            terminalreporter.write_line("(a partial or custom run: the latest full run's sign-off and report at the "
                                        "evidence root are kept)")
        for line in st.announcements:
            terminalreporter.write_line(f"chaosdrill: {line}")

    # --- progress at -v: one line per phase as it happens -------------------------------------------------

    def _install_progress(self) -> None:
        """At ``-v`` the runner's lifecycle lines (the ``chaosdrill`` logger) go to the terminal as they
        happen; with ``--log-cli-level`` pytest's live log shows them instead."""
        if self.state.is_worker or self.config.option.verbose < 1 or self.config.getoption("log_cli_level", None):
            return
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return

        capman = self.config.pluginmanager.get_plugin("capturemanager")
        reporting = self

        class ToTerminal(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if threading.current_thread() is not threading.main_thread():
                    return  # capture can only be suspended from the test's own thread
                # seconds since the drill test started (record.created is wall time, as is the start)
                line = f"    chaosdrill {record.created - reporting._test_started:+8.3f} s: {record.getMessage()}"
                try:
                    if capman is not None:
                        with capman.global_and_fixture_disabled():
                            tr.write_line(line)
                    else:
                        tr.write_line(line)
                except Exception:  # pragma: no cover - a closed terminal must not fail a drill
                    pass

        self._progress = ToTerminal(level=logging.INFO)
        log.addHandler(self._progress)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)


def _failure_facts(state: Any) -> str:
    """The drill's facts at the end of its failure text: the JUnit failure body is what GitLab and Jenkins
    show (GitLab ignores properties), so the evidence folder and the numbers go there too."""
    record = state.run.record if state.run is not None else None
    tts = getattr(record, "time_to_safe_ms", None)
    lines = ["", "", f"drill: {state.drill.id} ({state.backend})",
             f"time to safe: {'%.1f ms' % tts if tts is not None else 'not observed'} "
             f"(budget {state.drill.time_to_safe_budget_ms:.0f} ms)",
             f"evidence folder: {state.writer.dir}"]
    return "\n".join(lines)


def junit_facts(config: pytest.Config, report: pytest.TestReport, props: list[tuple[str, str]]) -> None:
    """Per-drill facts for CI tools. xunit1/legacy: ``<properties>`` inside the ``<testcase>``; xunit2
    (pytest's default, junit-10.xsd has no per-testcase properties): suite properties named
    ``chaosdrill[<test id>].<fact>``, so the file stays schema-valid and the facts still arrive."""
    xml = junit(config)
    if xml is None:
        return
    family = str(config.getini("junit_family") or "xunit2")
    if family in ("xunit1", "legacy"):
        reporter = xml.node_reporter(report)
        for key, value in props:
            reporter.add_property(key, value)
        return
    test_id = report.nodeid.rsplit("[", 1)[-1].rstrip("]") if "[" in report.nodeid else report.nodeid
    for key, value in props:
        xml.add_global_property(f"chaosdrill[{test_id}].{key}", value)


_COLOURS: dict[str, dict[str, bool]] = {"PASS": {"green": True}, "NOT PROVEN": {"yellow": True},
                                        "SKIPPED": {"yellow": True}}


def _shown(path: Path, config: pytest.Config) -> str:
    """``path`` relative to where pytest was run from, when it is below it."""
    try:
        return Path(path).relative_to(config.invocation_params.dir).as_posix()
    except ValueError:
        return str(path)


def _outcome_order(o: DrillOutcome) -> tuple[Any, ...]:
    parts = o.drill_id.split("_")
    number = int(parts[1]) if len(parts) > 1 and parts[0] == "drill" and parts[1].isdigit() else 10**6
    return (o.group != "phase2", o.group, number, o.drill_id, o.backend, o.nodeid)
