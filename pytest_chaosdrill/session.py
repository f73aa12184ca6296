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


class DrillSession:
    """Run id, evidence root, backends and the outcomes of every drill of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.info: Any = None
        self.outcomes: list[Any] = []
        self.notes: list[str] = []
        self.announcements: list[str] = []   # printed in the terminal summary (e.g. a minimal failing drill)
        self.drill_modules: list[str] = []   # drill tests parametrized in this session
        self._backends: dict[str, Any] = {}
        self._unavailable: dict[str, str] = {}
        self._registry: Any = None
        self._target: Any = None
        self._target_error: str | None = None
        self._old_sigterm: Any = None
        self._install_sigterm()

    # --- session facts ---------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.run_info().run_id

    def run_info(self) -> Any:
        if self.info is None:
            from .evidence import RunInfo, git_commit, new_run_id
            from .timeline import utc_now

            root = setting_path(self.config, "evidence_dir") or (self.config.invocation_params.dir / "evidence")
            commit = git_commit(Path(self.config.invocation_params.dir))
            self.info = RunInfo(new_run_id(commit), root, commit, utc_now(), str(setting(self.config, "backend")),
                                build_id=os.environ.get("BUILD_ID") or (commit[:12] if commit else None))
            self.info.create()
            xml = _junit(self.config)
            if xml is not None:
                xml.add_global_property("chaosdrill_run_id", self.info.run_id)
                xml.add_global_property("chaosdrill_commit", commit or "")
                xml.add_global_property("chaosdrill_evidence", str(self.info.run_dir))
        return self.info

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
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or not any(STASH_STATE in i.stash or "chaosdrill_drill" in getattr(i, "fixturenames", ())
                                 for i in session.items):
            return
        target = setting_path(self.config, "target")
        tr.write_line(f"chaosdrill: backend={setting(self.config, 'backend')}, "
                      f"target={target or 'bundled reference target (okx_demo_api)'}, "
                      f"evidence={setting_path(self.config, 'evidence_dir') or 'evidence'}")
        for line in self.notes:
            tr.write_line(f"chaosdrill: {line}")

    # --- one drill -------------------------------------------------------------------------------------

    def begin(self, item: pytest.Item, drill: Any, backend: str) -> DrillState:
        state = DrillState(drill, backend)
        item.stash[STASH_STATE] = state
        return state

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
        run = DrillRun(ctx, drill, contract=contract, contract_info=info, triggers=registry.triggers,
                       checks=registry.checks, expectation=expectation,
                       allow_live=bool(setting(self.config, "allow_live")), backend=backend,
                       missing=missing_target_fields(target.target.config, needs.target_fields))
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
        if excinfo is not None and isinstance(excinfo.value, (DrillFailed, DrillNotProven)):
            # The drill's own message says everything, reason first; the runner's source lines would hide it.
            report.longrepr = str(excinfo.value)
        item.stash.setdefault(STASH_REPORTS, {})[report.when] = report
        return report

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
        from .evidence import EvidenceWriter, Redactor, folder_name, write_drill_evidence
        from .report import DrillOutcome, files_complete, outcome_from

        verdict, reason = self._verdict(item, state)
        info = self.run_info()
        target = state.target
        rendered = getattr(target, "target", None)
        redactor = Redactor(rendered.secrets() if rendered else [])
        writer = EvidenceWriter(info, state.drill.group, folder_name(state.drill.id, state.backend), redactor)
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
        self.outcomes.append(outcome)
        props = [("drill_id", state.drill.id), ("verdict", verdict), ("backend", state.backend),
                 ("time_to_safe_ms", "" if outcome.time_to_safe_ms is None else f"{outcome.time_to_safe_ms:.1f}"),
                 ("evidence_folder", result["folder"]), ("ieb_sha256", result.get("ieb_sha256") or "")]
        item.user_properties.extend(props)
        item.config.hook.pytest_chaosdrill_evidence_written(item=item, folder=Path(result["folder"]), verdict=verdict)

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

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from .report import signoff_markdown

        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:  # pragma: no cover - report, keep closing the others
                log.warning("closing the %s backend failed: %s", backend.name, exc)
        self._restore_sigterm()
        if self.info is None or not self.outcomes:
            return
        run_dir = self.info.run_dir
        (run_dir / "SIGNOFF.md").write_text(signoff_markdown(self.outcomes, self.info.run_id, self.info.commit),
                                            encoding="utf-8")
        try:
            shutil.copyfile(run_dir / "SIGNOFF.md", self.info.root / "SIGNOFF.md")
        except OSError:
            pass

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
