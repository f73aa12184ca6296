"""The session's drill machinery: the backends, the registries and the target file (each made once),
the drills parametrized at collection, and one drill's life (its state, its run, its evidence), with
what a drill test reports kept free of secrets."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .. import __version__
from ..backends.base import Backend, BackendSettings
from ..context import DrillContext
from ..drill import Drill, load_drills
from ..errors import BackendUnavailable, DrillDefinitionError, DrillFailed, DrillNotProven, TargetConfigError
from ..evidence import (EvidenceWriter, LiveEvidence, folder_name, mark_folder_incomplete, sha256_file,
                        write_drill_evidence)
from ..expect import Expectation
from ..explore import Exploration
from ..redaction import Redactor
from ..registry import Registry, Requirements, missing_target_fields, validate_drill
from ..report import DrillOutcome, files_complete, outcome_from
from ..resources import default_target, drills_dir
from ..runner import DrillRun
from ..settings import SETTINGS, backend_names, evidence_dir_problem, setting, setting_path, setting_paths
from ..target import TargetConfig, load_target
from .state import STASH_REPORTS, STASH_STATE, DrillState, SessionState

log = logging.getLogger("chaosdrill")


class DrillSession:
    """Backends, registries, collection and the life of each drill test of one pytest session."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.config = state.config
        #: drill id -> the backend capabilities its fault and recovery need (a backend places some
        #: drills differently, e.g. a ``dns`` drill's venue behind a hostname only its DNS stub answers)
        self.capabilities_needed: dict[str, frozenset[str]] = {}
        self._backends: dict[str, Backend] = {}
        self._unavailable: dict[str, str] = {}
        self._registry: Registry | None = None
        self._target: TargetConfig | None = None
        self._target_error: str | None = None

    # --- session facts ---------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.state.run_id

    @property
    def drill_modules(self) -> list[str]:
        return self.state.drill_modules

    def note(self, line: str) -> None:
        self.state.note(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist controller: one run for the whole session, handed to every worker."""
        info = self.state.run_info()
        node.workerinput["chaosdrill_run"] = {"run_id": info.run_id, "commit": info.commit,
                                              "started_utc": info.started_utc, "build_id": info.build_id}

    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.build(self.config.hook)
        return self._registry

    def target_config(self) -> TargetConfig:
        """The target file (validated once); a broken file fails every drill with the same clear line."""
        if self._target is None and self._target_error is None:
            path = setting_path(self.config, "target") or default_target()
            try:
                self._target = load_target(path)
            except TargetConfigError as exc:
                self._target_error = str(exc)
        if self._target_error is not None:
            pytest.fail(self._target_error, pytrace=False)
        assert self._target is not None
        return self._target

    def backend(self, name: str) -> Backend:
        """The session's backend ``name``: created once; unavailable means skipped (or failed where the
        environment requires it, e.g. CHAOSDRILL_REQUIRE_DOCKER=1 for docker)."""
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

    def _require_backends(self, items: list[pytest.Item]) -> None:
        """Fail closed: a backend the user asked for and cannot have stops the run before any drill
        (non-zero exit, one line saying how to get it), never a green run of skips."""
        wanted = sorted({i.callspec.params["chaosdrill_backend"] for i in items
                         if hasattr(i, "callspec") and "chaosdrill_backend" in i.callspec.params
                         and i.get_closest_marker("skip") is None})
        for name in wanted:
            if name in self._backends or name in self._unavailable:
                continue
            try:
                self.backend(name)
            except (pytest.skip.Exception, pytest.fail.Exception):  # fail: CHAOSDRILL_REQUIRE_<NAME>=1
                raise pytest.UsageError(f"--chaosdrill-backend {name}: {self._unavailable[name]}") from None

    def _unavailable_outcome(self, name: str, reason: str) -> None:
        if os.environ.get(f"CHAOSDRILL_REQUIRE_{name.upper()}") == "1":
            pytest.fail(f"{name} backend: {reason} (and CHAOSDRILL_REQUIRE_{name.upper()}=1)", pytrace=False)
        pytest.skip(f"{name} backend: {reason}")

    # --- collection ------------------------------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize a drill test over every drill × backend; validate every drill first."""
        config = metafunc.config
        why = evidence_dir_problem(self.state.evidence_root())
        if why:
            pytest.fail(f"cannot write evidence: {why}; pass --chaosdrill-evidence-dir=A_WRITABLE_FOLDER", pytrace=False)
        locations = setting_paths(config, "drills") or [drills_dir()]
        problems = []  # every bad input of the drill and target files, each once, in one collection error
        try:
            drills = load_drills(locations)
        except DrillDefinitionError as exc:
            drills = []
            problems += str(exc).splitlines()
        registry = self.registry()
        fixture_dirs = setting_paths(config, "fixtures")
        checked = []
        for d in drills:
            found, needs = validate_drill(d, registry, fixture_dirs)
            problems += [f"{d.path}: {p}" for p in found]
            self.capabilities_needed[d.id] = frozenset(needs.capabilities)
            checked.append((d, needs))
        try:
            self.target_config()  # a broken target file is a collection error naming file and field
        except pytest.fail.Exception as exc:
            problems += str(exc.msg).splitlines()
        if problems:  # failed outside any except block: one message, no "During handling of ..."
            pytest.fail("broken drill or target file(s):\n  " + "\n  ".join(p.strip() for p in problems), pytrace=False)
        classes = {b: config.hook.pytest_chaosdrill_backend_class(name=b, config=config) for b in backend_names(config)}
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
    def _cannot_run(drill: Drill, backend: str, cls: Any, needs: Requirements) -> str:
        if drill.backends is not None and backend not in drill.backends:
            return f"{drill.id} runs only on {', '.join(drill.backends)} (its file's 'backends')"
        lacking = sorted(set(needs.capabilities) - set(cls.capabilities))
        if lacking:
            return f"the {backend} backend cannot {', '.join(lacking)}, which {drill.trigger_kind} needs"
        return ""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Drills skipped at collection (a backend without the capability) never run: not "unfinished".
        self.state.collected = sum(1 for i in session.items if "chaosdrill_drill" in getattr(i, "fixturenames", ())
                                   and i.get_closest_marker("skip") is None)
        if self.state.collected and not self.config.option.collectonly:
            self._require_backends(session.items)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or not self.state.collected:
            return
        target = setting_path(self.config, "target")
        tr.write_line(f"chaosdrill: backend={setting(self.config, 'backend')}, "
                      f"target={target or 'bundled reference target (okx_demo_api)'}, "
                      f"evidence={self.state.evidence_root()}")
        for line in self.state.notes:
            tr.write_line(f"chaosdrill: {line}")

    # --- one drill -------------------------------------------------------------------------------------

    def begin(self, item: pytest.Item, drill: Drill, backend: str) -> DrillState:
        """The test's state, and its evidence folder created at once (so even a set-up error has one)."""
        state = DrillState(drill, backend)
        item.stash[STASH_STATE] = state
        state.writer = EvidenceWriter(self.state.run_info(), drill.group, folder_name(drill.id, backend), Redactor())
        return state

    def make_run(self, state: DrillState, *, drill: Drill, target: Any, harness: Any, timeline: Any, contract: Any,
                 contract_paths: dict[str, str], backend: str) -> "DrillRun | Exploration":
        registry = self.registry()
        fixture_dirs = setting_paths(self.config, "fixtures")
        expectation = Expectation.from_drill(drill.expected, fixture_dirs) if (
            drill.expected.get("fixture") or drill.expected.get("status")) else None
        _, needs = validate_drill(drill, registry, fixture_dirs)
        # the service's own budget where its target file gives one (the verdict reads the record's drill)
        budget = target.target.config.budget(drill.id, drill.time_to_safe_budget_ms, drill.budget_timing)
        drill = replace(drill, time_to_safe_budget_ms=budget.ms, raw={
            **drill.raw, "time_to_safe_budget_ms": budget.ms,
            "budget_source": {"source": budget.source, "why": budget.why}})
        interval_ms = float(setting(self.config, "sample_interval_ms"))  # range checked at start-up (settings)
        ctx = DrillContext(target=target, rendered=target.target, venue=harness.venue, proxy=harness.proxy,
                           timeline=timeline, sample_interval_s=interval_ms / 1000, local_hosts=harness.local_hosts,
                           harness_info=dict(harness.info))
        info = dict(contract_paths)
        for k in ("schema", "manifest"):
            try:
                info[f"{k}_sha256"] = sha256_file(Path(contract_paths[k]))
            except OSError:
                pass
        assert state.writer is not None
        state.writer.redact = state.secrets()
        state.live = LiveEvidence(state.writer.dir, state.writer.dump, nodeid=state.writer.name, drill_id=drill.id,
                                  backend=backend, run_id=self.run_id)
        missing = missing_target_fields(target.target.config, needs.target_fields)
        run: DrillRun | Exploration
        if registry.is_driven(drill):  # exploration: a driver above the runner runs drills of its own
            run = Exploration(ctx, drill, contract=contract, contract_info=info, triggers=registry.triggers,
                              checks=registry.checks, allow_live=bool(setting(self.config, "allow_live")),
                              backend=backend, settings={name: setting(self.config, name) for name in SETTINGS},
                              missing=missing)
        else:
            run = DrillRun(ctx, drill, contract=contract, contract_info=info, triggers=registry.triggers,
                           checks=registry.checks, expectation=expectation,
                           allow_live=bool(setting(self.config, "allow_live")), backend=backend,
                           missing=missing, live=state.live)
        state.run = run
        return run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A drill test's reports: the drill's own message, secrets redacted, the outcome carried by the
        teardown report (across pytest-xdist too)."""
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
            report.longrepr = state.secrets().text(report.longreprtext)
        if report.sections and (state.target is not None or report.when != "setup"):
            # Captured output and logs go to the terminal and into JUnit's system-out/err too.
            redact = state.secrets().text
            report.sections = [(title, redact(content)) for title, content in report.sections]
        item.stash.setdefault(STASH_REPORTS, {})[report.when] = report
        if report.when == "teardown" and state.outcome is not None:
            report.chaosdrill = state.outcome.to_json()  # type: ignore[attr-defined]  # crosses xdist as report data
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
        """The drill's evidence folder, whatever the outcome; its outcome kept for the reports. Written
        once: a second call (the fixture's teardown after the interrupt handler wrote it) does nothing."""
        if state.outcome is not None:
            return
        verdict, reason = self._verdict(item, state)
        target = state.target
        rendered = getattr(target, "target", None)
        redactor = state.secrets()
        reason = redactor.text(reason)
        writer = state.writer
        assert writer is not None
        writer.redact = redactor
        if state.live is not None:
            state.live.stop()  # no more appends; the partial files and the marker go once the folder is whole
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
            versions = {"pytest-chaosdrill": __version__, "pytest": pytest.__version__}
            result = write_drill_evidence(
                writer, record=record, evaluation=evaluation, rendered=rendered, nodeid=item.nodeid,
                drill_id=state.drill.id, title=state.drill.title, backend=state.backend, verdict=verdict,
                reason=reason, backend_info=_describe(target), log_files=list(dict.fromkeys(logs)), versions=versions)
        except Exception as exc:  # never lose the outcome because of an evidence problem: say it loudly
            (writer.dir / "EVIDENCE_ERROR.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
            result = {"folder": str(writer.dir), "ieb": "", "ieb_sha256": ""}
        except BaseException as exc:  # Ctrl-C or SIGTERM while the folder is written: marked, never half and unmarked
            state.evidence_interrupted = True
            verdict = "INCOMPLETE"
            reason = ("interrupted (Ctrl-C or SIGTERM) while this drill's evidence was written; the files kept are "
                      "what was written before. Never a finished run.")
            mark_folder_incomplete(writer.dir, reason)
            result = {"folder": str(writer.dir), "ieb": "", "ieb_sha256": ""}
            self._keep_outcome(item, state, verdict, reason, result)
            raise exc
        if state.live is not None:
            state.live.close()  # the folder is whole: the partial files and the in-progress marker go last
        self._keep_outcome(item, state, verdict, reason, result)

    def _keep_outcome(self, item: pytest.Item, state: DrillState, verdict: str, reason: str,
                      result: dict[str, str]) -> None:
        """The drill's outcome kept for the reports (the table, SIGNOFF.md, the JUnit facts)."""
        record = state.run.record if state.run is not None else None
        evaluation = state.run.evaluation if state.run is not None else None
        state.evidence, state.verdict, state.reason = result, verdict, reason
        outcome = DrillOutcome(item.nodeid, state.drill.id, state.drill.title, state.drill.group, state.backend,
                               verdict, reason, folder=result["folder"], ieb_sha256=result.get("ieb_sha256"),
                               budget_ms=state.drill.time_to_safe_budget_ms)
        outcome_from(record, evaluation, outcome)
        outcome.files_complete = files_complete(result["folder"])
        outcome.has_notes = (Path(result["folder"]) / "notes.md").is_file()
        state.outcome = outcome
        self.state.written.append(outcome)
        item.config.hook.pytest_chaosdrill_evidence_written(item=item, folder=Path(result["folder"]), verdict=verdict)

    def _attach(self, writer: EvidenceWriter, attachments: dict[str, str]) -> None:
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
                self.state.announcements.append(f"minimal failing schedule: {writer.dir / name} (replay: pytest "
                                                f"--chaosdrill-drills {writer.dir / name})")

    def keep(self, state: DrillState) -> None:
        """``--chaosdrill-keep``: after the drill (its evidence written, its own processes stopped), start its
        service, venue and proxy again, detached, on the process backend in a keeper on the drill's
        addresses, on the docker backend in containers labelled as kept; say where (the terminal summary,
        the run folder's ``kept.json``). A backend that cannot keep, or a failure, is said, never hidden."""
        if not setting(self.config, "keep") or state.target is None or state.harness is None:
            return
        from urllib.parse import urlsplit

        from ..backends import keeper

        harness, rendered, name = state.harness, state.target.target, state.drill.id
        why = ("" if state.backend in ("process", "docker") else f"the {state.backend} backend does not keep its "
               "environment (the process and docker backends do)")
        if not why and harness.tls_listen:
            why = "a TLS venue is not kept (its session CA ends with the session)"
        if why:
            self.state.announcements.append(f"--chaosdrill-keep: {name} not kept: {why}")
            return
        site = state.site
        keep_id = f"{self.run_id}-{state.writer.dir.name}"
        seed = int(setting(self.config, "venue_seed"))
        try:
            if state.backend == "docker":
                from ..backends import docker_keep

                record = docker_keep.keep(state.target, keep_id, run_id=self.run_id, seed=seed,
                                          api_key=harness.api_key)
                keeper.remember(keep_id, record)
            else:
                spec = {"drill": name, "run_id": self.run_id, "seed": seed,
                        "venue_port": urlsplit(harness.info["venue"]).port,
                        "proxy_port": int(harness.proxy_listen.rsplit(":", 1)[1]),
                        "api_key": dict(harness.api_key.__dict__) if harness.api_key is not None else None,
                        "command": list(rendered.command), "env": dict(rendered.env),
                        "cwd": str(rendered.config.folder), "status_url": rendered.status_url,
                        "service_log": str(site.log_dir / "kept.service.log")}
                record = keeper.spawn(keep_id, spec, site.log_dir / "keeper.log")
        except (RuntimeError, OSError) as exc:
            self.state.announcements.append(f"--chaosdrill-keep: {name} not kept: {exc}")
            return
        shown = {k: record[k] for k in ("drill", "pid", "containers", "status_url", "venue_url", "proxy",
                                         "service_log") if k in record}
        kept_file = self.state.run_info().run_dir / "kept.json"
        try:
            previous = json.loads(kept_file.read_text(encoding="utf-8")) if kept_file.is_file() else []
        except (OSError, ValueError):
            previous = []
        kept_file.write_text(json.dumps(previous + [shown], indent=2) + "\n", encoding="utf-8")
        self.state.announcements.append(
            f"kept {name}: status {record['status_url']}, venue {record['venue_url']} (through the proxy at "
            f"{record['proxy']}), service log {record['service_log']}; stop it: chaosdrill keep-reap")

    @pytest.hookimpl(trylast=True)  # after pytest's own teardown of what an interrupt left set up
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:  # pragma: no cover - report, keep closing the others
                log.warning("closing the %s backend failed: %s", backend.name, exc)


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
