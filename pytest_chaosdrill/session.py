"""The drill machinery of one pytest session, registered as a plugin only once drills are collected.

It owns the run id and evidence root, the backends, the registries, the per-test state (in
``item.stash``), the drill timer, the evidence writing and the reports (terminal table, SIGNOFF.md).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from .settings import backend_names, setting, setting_path, setting_paths

log = logging.getLogger("chaosdrill")
STASH_STATE = pytest.StashKey["DrillState"]()
STASH_REPORTS = pytest.StashKey[dict]()


@dataclass
class DrillState:
    """Per-test state kept in ``item.stash``."""

    drill: Any
    backend: str
    run: Any = None
    target: Any = None
    harness: Any = None
    site: Any = None
    evidence: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None
    reason: str = ""
    outcome: Any = None
    redactor: Any = None
    writer: Any = None
    live: Any = None


class DrillSession:
    """Run id, evidence root, backends and the outcomes of every drill of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.info: Any = None
        self.outcomes: list[Any] = []
        self.notes: list[str] = []
        self._current: Any = None            # the drill test running now (for an interrupt's report)
        self.announcements: list[str] = []   # printed in the terminal summary (e.g. a minimal failing drill)
        self.drill_modules: list[str] = []   # drill tests parametrized in this session
        self.is_worker = hasattr(config, "workerinput")
        self._written: list[Any] = []    # outcomes written in this process (a report may never come: Ctrl-C)
        self.collected = 0
        self._backends: dict[str, Any] = {}
        self._unavailable: dict[str, str] = {}
        self._registry: Any = None
        self._target: Any = None
        self._target_error: str | None = None
        self._old_sigterm: Any = None
        self._install_sigterm()
        self._progress: Any = None
        self._install_progress()

    # --- session facts ---------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.run_info().run_id

    def run_info(self) -> Any:
        if self.info is None:
            from .evidence import RunInfo, git_commit, new_run_id
            from .timeline import utc_now

            root = self.evidence_root()
            given = getattr(self.config, "workerinput", {}).get("chaosdrill_run")
            if given:  # a pytest-xdist worker: the controller decided the run and created its folder
                self.info = RunInfo(given["run_id"], root, given["commit"], given["started_utc"],
                                    str(setting(self.config, "backend")), build_id=given["build_id"])
                return self.info
            commit = git_commit(Path(self.config.invocation_params.dir))
            self.info = RunInfo(new_run_id(commit), root, commit, utc_now(), str(setting(self.config, "backend")),
                                build_id=os.environ.get("BUILD_ID") or (commit[:12] if commit else None))
            self.info.create()
            from .evidence import mark_incomplete

            for line in mark_incomplete(root):  # folders of runs that were killed mid-drill
                self.note(line)
                log.warning("%s", line)
            xml = _junit(self.config)
            if xml is not None:
                xml.add_global_property("chaosdrill_run_id", self.info.run_id)
                xml.add_global_property("chaosdrill_commit", commit or "")
                xml.add_global_property("chaosdrill_evidence", str(self.info.run_dir))
        return self.info

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist controller: one run for the whole session, handed to every worker."""
        info = self.run_info()
        node.workerinput["chaosdrill_run"] = {"run_id": info.run_id, "commit": info.commit,
                                              "started_utc": info.started_utc, "build_id": info.build_id}

    def evidence_root(self) -> Path:
        return setting_path(self.config, "evidence_dir") or (self.config.invocation_params.dir / "evidence")

    def note(self, line: str) -> None:
        self.notes.append(line)

    def registry(self) -> Any:
        if self._registry is None:
            from .registry import Registry

            self._registry = Registry.build(self.config.hook)
        return self._registry

    def target_config(self) -> Any:
        """The target file (validated once); a broken file fails every drill with the same clear line."""
        if self._target is None and self._target_error is None:
            from .resources import default_target
            from .target import TargetConfigError, load_target

            path = setting_path(self.config, "target") or default_target()
            try:
                self._target = load_target(path)
            except TargetConfigError as exc:
                self._target_error = str(exc)
        if self._target_error is not None:
            pytest.fail(self._target_error, pytrace=False)
        return self._target

    def backend(self, name: str) -> Any:
        """The session's backend ``name``: created once; unavailable means skipped (or failed where the
        environment requires it, e.g. CHAOSDRILL_REQUIRE_DOCKER=1 for docker)."""
        from .backends.base import BackendSettings, BackendUnavailable

        if name in self._unavailable:
            self._unavailable_outcome(name, self._unavailable[name])
        if name not in self._backends:
            cls = self.config.hook.pytest_chaosdrill_backend_class(name=name, config=self.config)
            settings = BackendSettings(run_id=self.run_id, venue_seed=int(setting(self.config, "venue_seed")),
                                       worker_index=_worker_index(self.config))
            backend = cls(settings)
            try:
                backend.check_available()
            except BackendUnavailable as exc:
                self._unavailable[name] = str(exc)
                self._unavailable_outcome(name, str(exc))
            self._backends[name] = backend
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            for line in backend.reaped:
                log.warning("%s backend: removed a leftover of a killed run: %s", name, line)
                if tr is not None:
                    tr.write_line(f"chaosdrill: {name} backend removed a leftover of a killed run: {line}", yellow=True)
        return self._backends[name]

    def _unavailable_outcome(self, name: str, reason: str) -> None:
        if os.environ.get(f"CHAOSDRILL_REQUIRE_{name.upper()}") == "1":
            pytest.fail(f"{name} backend: {reason} (and CHAOSDRILL_REQUIRE_{name.upper()}=1)", pytrace=False)
        pytest.skip(f"{name} backend: {reason}")

    # --- collection ------------------------------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize a drill test over every drill × backend; validate every drill first."""
        from .drill import DrillDefinitionError, load_drills
        from .registry import validate_drill
        from .resources import drills_dir

        config = metafunc.config
        from .settings import evidence_dir_problem

        why = evidence_dir_problem(self.evidence_root())
        if why:
            pytest.fail(f"cannot write evidence: {why}; pass --chaosdrill-evidence-dir=A_WRITABLE_FOLDER", pytrace=False)
        locations = setting_paths(config, "drills") or [drills_dir()]
        try:
            drills = load_drills(locations)
        except DrillDefinitionError as exc:
            pytest.fail(f"broken drill definition: {exc}", pytrace=False)
        registry = self.registry()
        fixture_dirs = setting_paths(config, "fixtures")
        problems = []
        checked = []
        for d in drills:
            found, needs = validate_drill(d, registry, fixture_dirs)
            problems += [f"{d.path}: {p}" for p in found]
            checked.append((d, needs))
        if problems:
            pytest.fail("broken drill definition(s):\n  " + "\n  ".join(problems), pytrace=False)
        self.target_config()  # a broken target file is a collection error naming file and field
        classes = {b: config.hook.pytest_chaosdrill_backend_class(name=b, config=config) for b in backend_names(config)}
        config.addinivalue_line("markers", "chaosdrill(id): the drill definition a test runs")
        params = []
        for d, needs in checked:
            for m in d.markers:
                config.addinivalue_line("markers", f"{m}: chaos drills (pytest-chaosdrill)")
            for b, cls in classes.items():
                marks = [getattr(pytest.mark, m) for m in d.markers] + [pytest.mark.chaosdrill(d.id)]
                why = self._cannot_run(d, b, cls, needs)
                if why:
                    marks.append(pytest.mark.skip(reason=why))
                params.append(pytest.param(d, b, id=f"{d.id}-{b}", marks=marks))
        metafunc.parametrize(("chaosdrill_drill", "chaosdrill_backend"), params)

    @staticmethod
    def _cannot_run(drill: Any, backend: str, cls: Any, needs: Any) -> str:
        if drill.backends is not None and backend not in drill.backends:
            return f"{drill.id} runs only on {', '.join(drill.backends)} (its file's 'backends')"
        lacking = sorted(set(needs.capabilities) - set(cls.capabilities))
        if lacking:
            return f"the {backend} backend cannot {', '.join(lacking)}, which {drill.trigger_kind} needs"
        return ""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Drills skipped at collection (a backend without the capability) never run: not "unfinished".
        self.collected = sum(1 for i in session.items if "chaosdrill_drill" in getattr(i, "fixturenames", ())
                             and i.get_closest_marker("skip") is None)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or not self.collected:
            return
        target = setting_path(self.config, "target")
        tr.write_line(f"chaosdrill: backend={setting(self.config, 'backend')}, "
                      f"target={target or 'bundled reference target (okx_demo_api)'}, "
                      f"evidence={self.run_info().root}")
        for line in self.notes:
            tr.write_line(f"chaosdrill: {line}")

    # --- one drill -------------------------------------------------------------------------------------

    def begin(self, item: pytest.Item, drill: Any, backend: str) -> DrillState:
        """The test's state, and its evidence folder created at once (so even a set-up error has one)."""
        from .evidence import EvidenceWriter, folder_name
        from .redaction import Redactor

        state = DrillState(drill, backend)
        item.stash[STASH_STATE] = state
        state.writer = EvidenceWriter(self.run_info(), drill.group, folder_name(drill.id, backend), Redactor())
        return state

    def redactor(self, state: DrillState) -> Any:
        """Secrets by value: every secret-looking variable of the environment the target gets (pytest's
        own and the target file's), every credential inside a URL there, and the target file's ``secrets``."""
        from .redaction import Redactor

        if state.redactor is None:
            rendered = getattr(state.target, "target", None)
            env = dict(os.environ)
            extra: list[str] = []
            if rendered is not None:
                env.update(rendered.env)
                extra = list(rendered.extra_secrets)
            state.redactor = Redactor.collect(env, extra)
            from .redaction import guard_logs

            guard_logs(state.redactor)  # the runner's log lines carry the reason: live logs, captured logs, JUnit
        return state.redactor

    def make_run(self, state: DrillState, *, drill: Any, target: Any, harness: Any, timeline: Any, contract: Any,
                 contract_paths: dict[str, str], backend: str) -> Any:
        from .context import DrillContext
        from .evidence import sha256_file
        from .expect import Expectation
        from .registry import missing_target_fields, validate_drill
        from .runner import DrillRun

        registry = self.registry()
        fixture_dirs = setting_paths(self.config, "fixtures")
        expectation = Expectation.from_drill(drill.expected, fixture_dirs) if (
            drill.expected.get("fixture") or drill.expected.get("status")) else None
        _, needs = validate_drill(drill, registry, fixture_dirs)
        interval_ms = min(10.0, float(setting(self.config, "sample_interval_ms")))
        ctx = DrillContext(target=target, rendered=target.target, venue=harness.venue, proxy=harness.proxy,
                           timeline=timeline, sample_interval_s=interval_ms / 1000, local_hosts=harness.local_hosts)
        info = dict(contract_paths)
        for k in ("schema", "manifest"):
            try:
                info[f"{k}_sha256"] = sha256_file(Path(contract_paths[k]))
            except OSError:
                pass
        from .evidence import LiveEvidence

        state.writer.redact = self.redactor(state)
        state.live = LiveEvidence(state.writer.dir, state.writer.dump, nodeid=state.writer.name, drill_id=drill.id,
                                  backend=backend, run_id=self.run_id)
        run = DrillRun(ctx, drill, contract=contract, contract_info=info, triggers=registry.triggers,
                       checks=registry.checks, expectation=expectation,
                       allow_live=bool(setting(self.config, "allow_live")), backend=backend,
                       missing=missing_target_fields(target.target.config, needs.target_fields), live=state.live)
        from .settings import SETTINGS

        run.settings = {name: setting(self.config, name) for name in SETTINGS}
        state.run = run
        return run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """The drill's own deadline: ``timeout_s`` of its file raises DrillTimeout into the runner."""
        state = item.stash.get(STASH_STATE, None)
        if state is None or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            return (yield)
        from .runner import DrillTimeout

        def expired(signum: int, frame: Any) -> None:
            raise DrillTimeout()

        old = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, float(state.drill.timeout_s))
        try:
            return (yield)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> Any:
        # Drills keep their own deadline (above), so a timeout always releases the fault and is a
        # TIMEOUT verdict; pytest-timeout still times every other test.
        return True if STASH_STATE in item.stash or "chaosdrill_drill" in getattr(item, "fixturenames", ()) else None

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> Any:
        return True if STASH_STATE in item.stash else None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        from .runner import DrillFailed, DrillNotProven

        report = yield
        if STASH_STATE not in item.stash:
            return report
        excinfo = call.excinfo
        state = item.stash[STASH_STATE]
        if excinfo is not None and isinstance(excinfo.value, (DrillFailed, DrillNotProven)):
            # The drill's own message says everything, reason first; the runner's source lines would hide it.
            report.longrepr = str(excinfo.value)
        if report.longrepr is not None and (state.target is not None or report.when != "setup"):
            # Secrets never reach the terminal or the JUnit file, whatever the target echoed.
            report.longrepr = self.redactor(state).text(report.longreprtext)
        if report.sections and (state.target is not None or report.when != "setup"):
            # Captured output and logs go to the terminal and into JUnit's system-out/err too.
            redact = self.redactor(state).text
            report.sections = [(title, redact(content)) for title, content in report.sections]
        item.stash.setdefault(STASH_REPORTS, {})[report.when] = report
        outcome = state.outcome
        if report.when == "teardown" and outcome is not None:
            report.chaosdrill = outcome.to_json()  # type: ignore[attr-defined]  # crosses xdist as report data
            self._html_extras(report, outcome)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        self._current = item if "chaosdrill_drill" in getattr(item, "fixturenames", ()) else None
        result = yield
        self._current = None  # kept when an interrupt ends the protocol early: see pytest_keyboard_interrupt
        return result

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C or SIGTERM mid-drill: pytest makes no report for the drill's call or teardown, so the
        JUnit file would get a nameless test case. Report the drill as it ended: INTERRUPTED, and why."""
        item = self._current
        if item is None or STASH_STATE not in item.stash or "call" in item.stash.get(STASH_REPORTS, {}):
            return
        state = item.stash[STASH_STATE]
        ev = state.run.evaluation if state.run is not None else None
        reason = self.redactor(state).text(ev.reason if ev is not None else "interrupted before the drill ran")
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
        self._junit_facts(teardown, props)

    def _html_extras(self, report: pytest.TestReport, outcome: Any) -> None:
        """With pytest-html installed, the drill's timeline chart and evidence link go into its row."""
        if not self.config.pluginmanager.hasplugin("html") or not outcome.folder:
            return
        try:
            from pytest_html import extras

            from .report import drill_section_html

            htmlpath = getattr(self.config.option, "htmlpath", None)
            base = Path(htmlpath).resolve().parent if htmlpath else None
            report.extras = list(getattr(report, "extras", [])) + [  # type: ignore[attr-defined]
                extras.html(drill_section_html(Path(outcome.folder), link_base=base)),
                extras.url(str(Path(outcome.folder).resolve().as_uri()), name="evidence folder")]
        except Exception as exc:  # a view of the evidence: never a reason to lose the report
            log.warning("pytest-html extras not added: %s: %s", type(exc).__name__, exc)

    def _verdict(self, item: pytest.Item, state: DrillState) -> tuple[str, str]:
        reports = item.stash.get(STASH_REPORTS, {})
        setup = reports.get("setup")
        run = state.run
        if run is not None and run.evaluation is not None:
            return run.evaluation.verdict.value, run.evaluation.reason
        if setup is not None and setup.skipped:
            return "SKIPPED", str(setup.longrepr[-1]) if isinstance(setup.longrepr, tuple) else ""
        if setup is not None and setup.failed:
            return "ERROR", _short(setup.longreprtext)
        return "INTERRUPTED", "the run was interrupted before this drill started"

    def write_evidence(self, item: pytest.Item, state: DrillState) -> None:
        from .evidence import write_drill_evidence
        from .report import DrillOutcome, files_complete, outcome_from

        verdict, reason = self._verdict(item, state)
        info = self.run_info()
        target = state.target
        rendered = getattr(target, "target", None)
        redactor = self.redactor(state)
        reason = redactor.text(reason)
        writer = state.writer
        writer.redact = redactor
        if state.live is not None:
            state.live.close()  # the finished evidence replaces what was appended while the drill ran
        run = state.run
        record = run.record if run is not None else None
        evaluation = run.evaluation if run is not None else None
        try:
            logs = list(target.logs()) if target is not None else []
        except Exception as exc:  # a dead engine must not cost the evidence
            logs = []
            reason += f" (service logs unavailable: {type(exc).__name__}: {exc})"
        if rendered is not None:
            logs += [Path(p) for k, p in rendered.files.items() if k.startswith("log")]
        if record is not None and record.attachments:
            self._attach(writer, record.attachments)
        try:
            import pytest_chaosdrill

            versions = {"pytest-chaosdrill": pytest_chaosdrill.__version__, "pytest": pytest.__version__}
            result = write_drill_evidence(
                writer, record=record, evaluation=evaluation, rendered=rendered, nodeid=item.nodeid,
                drill_id=state.drill.id, title=state.drill.title, backend=state.backend, verdict=verdict,
                reason=reason, backend_info=_describe(target), log_files=logs, versions=versions)
        except Exception as exc:  # never lose the outcome because of an evidence problem: say it loudly
            (writer.dir / "EVIDENCE_ERROR.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
            result = {"folder": str(writer.dir), "ieb": "", "ieb_sha256": ""}
        state.evidence, state.verdict, state.reason = result, verdict, reason
        outcome = DrillOutcome(item.nodeid, state.drill.id, state.drill.title, state.drill.group, state.backend,
                               verdict, reason, folder=result["folder"], ieb_sha256=result.get("ieb_sha256"),
                               budget_ms=state.drill.time_to_safe_budget_ms)
        outcome_from(record, evaluation, outcome)
        outcome.files_complete = files_complete(result["folder"])
        outcome.has_notes = (Path(result["folder"]) / "notes.md").is_file()
        state.outcome = outcome
        self._written.append(outcome)
        item.config.hook.pytest_chaosdrill_evidence_written(item=item, folder=Path(result["folder"]), verdict=verdict)

    def collect(self, report: pytest.TestReport, data: dict[str, Any]) -> None:
        """A drill's outcome, from its teardown report (here, or from a pytest-xdist worker)."""
        from .report import DrillOutcome

        outcome = DrillOutcome.from_json(data)
        self.outcomes.append(outcome)
        props = [("drill_id", outcome.drill_id), ("verdict", outcome.verdict), ("backend", outcome.backend),
                 ("time_to_safe_ms", "" if outcome.time_to_safe_ms is None else f"{outcome.time_to_safe_ms:.1f}"),
                 ("evidence_folder", outcome.folder or ""), ("ieb_sha256", outcome.ieb_sha256 or "")]
        self._junit_facts(report, props)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "chaosdrill", None)
        if report.when == "teardown" and isinstance(data, dict) and not self.is_worker:
            self.collect(report, data)

    def _junit_facts(self, report: pytest.TestReport, props: list[tuple[str, str]]) -> None:
        """Per-drill facts for CI tools. xunit1/legacy: ``<properties>`` inside the ``<testcase>``; xunit2
        (pytest's default, junit-10.xsd has no per-testcase properties): suite properties named
        ``chaosdrill[<test id>].<fact>``, so the file stays schema-valid and the facts still arrive."""
        xml = _junit(self.config)
        if xml is None:
            return
        family = str(self.config.getini("junit_family") or "xunit2")
        if family in ("xunit1", "legacy"):
            reporter = xml.node_reporter(report)
            for key, value in props:
                reporter.add_property(key, value)
            return
        test_id = report.nodeid.rsplit("[", 1)[-1].rstrip("]") if "[" in report.nodeid else report.nodeid
        for key, value in props:
            xml.add_global_property(f"chaosdrill[{test_id}].{key}", value)

    def _attach(self, writer: Any, attachments: dict[str, str]) -> None:
        """Copy the files a trigger produced (``record.attachments``) into the evidence folder, before it is
        hashed; a minimal failing drill is announced in the terminal summary."""
        for name, src in attachments.items():
            src_path = Path(src)
            files = sorted(p for p in src_path.rglob("*") if p.is_file()) if src_path.is_dir() else [src_path]
            for f in files:
                rel = name if f == src_path else f"{name}/{f.relative_to(src_path).as_posix()}"
                (writer.dir / rel).parent.mkdir(parents=True, exist_ok=True)
                writer.copy(f, rel)
            if name.endswith("minimal_drill.yaml") and (writer.dir / name).is_file():
                self.announcements.append(f"minimal failing schedule: {writer.dir / name} (replay: pytest "
                                          f"--chaosdrill-drills {writer.dir / name})")

    # --- end of session --------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after pytest's own teardown of what an interrupt left set up
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report import write_signoff

        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:  # pragma: no cover - report, keep closing the others
                log.warning("closing the %s backend failed: %s", backend.name, exc)
        self._restore_sigterm()
        if self._progress is not None:
            log.removeHandler(self._progress)
            self._progress = None
        seen = {o.nodeid for o in self.outcomes}
        self.outcomes += [o for o in self._written if o.nodeid not in seen]   # teardown after an interrupt
        self.outcomes.sort(key=_outcome_order)  # the checklist's order, whichever worker finished first
        if self.is_worker or self.info is None or not self.outcomes:
            return
        run_dir = self.info.run_dir
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
        preface = ""
        if interrupted or len(self.outcomes) < self.collected:
            preface = (f"> **PARTIAL RUN** ({'interrupted' if interrupted else 'stopped early'}): "
                       f"{len(self.outcomes)} of {self.collected} collected drill test(s) finished; this sign-off "
                       "covers only those.\n\n")
        write_signoff(run_dir, self.outcomes, self.info.run_id, self.info.commit, preface=preface)
        try:
            shutil.copyfile(run_dir / "SIGNOFF.md", self.info.root / "SIGNOFF.md")
        except OSError:
            pass
        try:  # one self-contained HTML page per run, and the latest one at the evidence root
            from .report import write_run_report

            write_run_report(run_dir)
            write_run_report(run_dir, self.info.root / "report.html")
        except Exception as exc:  # the report is a view of the evidence: its failure must not cost the run
            log.warning("HTML report not written: %s: %s", type(exc).__name__, exc)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        from .report import summary_table

        if not self.outcomes:
            return
        terminalreporter.write_sep("=", "chaos drills")
        for line in summary_table(self.outcomes):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"evidence: {self.info.run_dir}  (sign-off: {self.info.run_dir / 'SIGNOFF.md'})")
        for line in self.announcements:
            terminalreporter.write_line(f"chaosdrill: {line}")

    # --- progress at -v: one line per phase as it happens -------------------------------------------------

    def _install_progress(self) -> None:
        """At ``-v`` the runner's lifecycle lines (the ``chaosdrill`` logger) go to the terminal as they
        happen; with ``--log-cli-level`` pytest's live log shows them instead."""
        if self.is_worker or self.config.option.verbose < 1 or self.config.getoption("log_cli_level", None):
            return
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return

        capman = self.config.pluginmanager.get_plugin("capturemanager")

        class ToTerminal(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if threading.current_thread() is not threading.main_thread():
                    return  # capture can only be suspended from the test's own thread
                try:
                    if capman is not None:
                        with capman.global_and_fixture_disabled():
                            tr.write_line(f"    chaosdrill: {record.getMessage()}")
                    else:
                        tr.write_line(f"    chaosdrill: {record.getMessage()}")
                except Exception:  # pragma: no cover - a closed terminal must not fail a drill
                    pass

        self._progress = ToTerminal(level=logging.INFO)
        log.addHandler(self._progress)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)

    # --- SIGTERM is handled like Ctrl-C: release, stop, evidence ----------------------------------------

    def _install_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        from .runner import DrillInterrupted

        def terminated(signum: int, frame: Any) -> None:
            raise DrillInterrupted()

        try:
            self._old_sigterm = signal.signal(signal.SIGTERM, terminated)
        except (ValueError, OSError):  # pragma: no cover - not the main interpreter
            self._old_sigterm = None

    def _restore_sigterm(self) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None


def _outcome_order(o: Any) -> tuple[Any, ...]:
    parts = o.drill_id.split("_")
    number = int(parts[1]) if len(parts) > 1 and parts[0] == "drill" and parts[1].isdigit() else 10**6
    return (o.group != "phase2", o.group, number, o.drill_id, o.backend, o.nodeid)


def _describe(target: Any) -> dict[str, Any]:
    if target is None:
        return {}
    try:
        return target.describe()
    except Exception as exc:
        return {"describe_error": f"{type(exc).__name__}: {exc}"}


def _short(text: str, limit: int = 2000) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    out = "\n".join(ln[2:].strip() for ln in lines) or text
    return out[-limit:]


def _worker_index(config: pytest.Config) -> int:
    wid = getattr(config, "workerinput", {}).get("workerid", "") if hasattr(config, "workerinput") else ""
    return int(wid[2:]) if wid.startswith("gw") and wid[2:].isdigit() else 0


def _junit(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return None
    return config.stash.get(xml_key, None)
