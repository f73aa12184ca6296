"""What the session's plugin objects share: the session's state (run identity, outcomes, notes; one
object in ``config.stash``) and each drill test's state (in ``item.stash``)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import LogXML, xml_key

from ..evidence import EvidenceWriter, LiveEvidence, RunInfo, git_commit, mark_incomplete, prune_runs, new_run_id
from ..redaction import Redactor, guard_logs
from ..report import DrillOutcome
from ..explore import Exploration
from ..runner import DrillRun
from ..settings import setting, setting_path
from ..timeline import utc_now

log = logging.getLogger("chaosdrill")
STASH_STATE = pytest.StashKey["DrillState"]()
STASH_REPORTS = pytest.StashKey[dict]()
STASH_SESSION_STATE = pytest.StashKey["SessionState"]()


@dataclass
class DrillState:
    """Per-test state kept in ``item.stash``."""

    drill: Any
    backend: str
    run: "DrillRun | Exploration | None" = None
    target: Any = None
    harness: Any = None
    site: Any = None
    evidence: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None
    reason: str = ""
    outcome: DrillOutcome | None = None
    redactor: Redactor | None = None
    writer: EvidenceWriter | None = None
    live: LiveEvidence | None = None
    evidence_interrupted: bool = False  # an interrupt landed while the evidence folder was written

    def secrets(self) -> Redactor:
        """Secrets by value: every secret-looking variable of the environment the target gets (pytest's
        own and the target file's), every credential inside a URL there, and the target file's ``secrets``."""
        if self.redactor is None:
            rendered = getattr(self.target, "target", None)
            env = dict(os.environ)
            extra: list[str] = []
            if rendered is not None:
                env.update(rendered.env)
                extra = list(rendered.extra_secrets)
            self.redactor = Redactor.collect(env, extra)
            guard_logs(self.redactor)  # the runner's log lines carry the reason: live logs, captured logs, JUnit
        return self.redactor


@dataclass
class SessionState:
    """The session's run (id, evidence root) and the outcomes of its drills, shared by the session's
    plugin objects (kept in ``config.stash``)."""

    config: pytest.Config
    info: RunInfo | None = None
    outcomes: list[DrillOutcome] = field(default_factory=list)   # from teardown reports (here or from workers)
    written: list[DrillOutcome] = field(default_factory=list)    # written in this process (a report may never come)
    notes: list[str] = field(default_factory=list)
    announcements: list[str] = field(default_factory=list)       # terminal summary lines (a minimal failing drill)
    full_run: bool = False  # this run had every Phase 2 drill: its sign-off is the latest at the evidence root
    drill_modules: list[str] = field(default_factory=list)       # drill tests parametrized in this session
    collected: int = 0
    current: pytest.Item | None = None                           # the drill test running now

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def run_id(self) -> str:
        return self.run_info().run_id

    def note(self, line: str) -> None:
        self.notes.append(line)

    def evidence_root(self) -> Path:
        return setting_path(self.config, "evidence_dir") or (self.config.invocation_params.dir / "evidence")

    def run_info(self) -> RunInfo:
        """The run: decided here, or handed over by the pytest-xdist controller; created on first use."""
        if self.info is None:
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
            from ..backends import keeper

            for line in keeper.reap():  # what an earlier run kept (--chaosdrill-keep) ends when the next one starts
                self.note(line)
            for line in mark_incomplete(root):  # folders of runs that were killed mid-drill
                self.note(line)
                log.warning("%s", line)
            for line in prune_runs(root, int(setting(self.config, "evidence_retention_count")), self.info.run_id,
                                   str(setting(self.config, "evidence_retention_policy"))):
                self.note(line)
            xml = junit(self.config)
            if xml is not None:
                xml.add_global_property("chaosdrill_run_id", self.info.run_id)
                xml.add_global_property("chaosdrill_commit", commit or "")
                xml.add_global_property("chaosdrill_evidence", str(self.info.run_dir))
        return self.info


def junit(config: pytest.Config) -> LogXML | None:
    """pytest's JUnit XML writer, when ``--junitxml`` is given."""
    return config.stash.get(xml_key, None)
