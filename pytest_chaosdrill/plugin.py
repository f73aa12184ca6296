"""pytest plugin entry point (``pytest11``): options, markers, fixtures and hooks.

Thin by design: the drill lifecycle lives in :mod:`pytest_chaosdrill.runner`, evidence in
:mod:`pytest_chaosdrill.evidence`, reports in :mod:`pytest_chaosdrill.report`.
"""
from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import hookspecs
from .drill import Drill, DrillDefinitionError, load_drills
from .resources import default_manifest, default_schema, drills_dir, data_dir

MARKERS = (
    "phase2: a Phase 2 chaos drill from the contract-keyed checklist",
    "ops: an ops-only drill (STOP file, degradation telemetry gate)",
    "drill(id): the drill definition a test runs",
)

# One help text per setting, shared by the command-line option and its ini key.
SETTINGS: dict[str, tuple[str, Any]] = {
    "backend": ("where the target runs: process (default), docker, external; several comma-separated", "process"),
    "evidence_dir": ("folder for evidence; every run gets runs/<run id>/ and <group>/<drill> links to the latest",
                     "evidence"),
    "target": ("target file (YAML) saying how to start and configure the service under drill; "
               "default: the bundled reference target okx_demo_api", None),
    "schema": ("status JSON Schema used for every sample (default: the bundled min schema)", None),
    "manifest": ("reason-code registry manifest (default: the bundled manifest)", None),
    "drills": ("drill files or folders to run (default: the bundled drills)", None),
    "fixtures": ("extra folders searched first for golden fixtures", None),
    "sample_interval_ms": ("time between /status samples in ms (at most 10)", "5"),
    "venue_seed": ("seed of the venue simulator's deterministic prices and fills", "7"),
    "allow_live": ("allow drills against a target that looks live (real money). Never in CI", "false"),
}

STASH_STATE = pytest.StashKey["DrillState"]()
STASH_REPORTS = pytest.StashKey[dict]()
STASH_SESSION = pytest.StashKey["ChaosSession"]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaosdrill", "chaos drills (pytest-chaosdrill)")
    for name, (help_text, default) in SETTINGS.items():
        flag = "--chaosdrill-" + name.replace("_", "-")
        if name == "allow_live":
            group.addoption(flag, action="store_true", default=None, dest=f"chaosdrill_{name}", help=help_text)
            parser.addini(f"chaosdrill_{name}", help_text, type="bool", default=False)
        elif name in ("drills", "fixtures"):
            group.addoption(flag, action="append", default=None, dest=f"chaosdrill_{name}", help=help_text)
            parser.addini(f"chaosdrill_{name}", help_text, type="paths", default=[])
        else:
            group.addoption(flag, default=None, dest=f"chaosdrill_{name}", help=help_text)
            parser.addini(f"chaosdrill_{name}", help_text, default=default)


def setting(config: pytest.Config, name: str) -> Any:
    """A setting's value: the command line wins over the ini file."""
    value = config.getoption(f"chaosdrill_{name}")
    if value is None:
        value = config.getini(f"chaosdrill_{name}")
    return value


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    for name, kind in (("sample_interval_ms", float), ("venue_seed", int)):
        try:
            kind(setting(config, name))
        except (TypeError, ValueError):
            raise pytest.UsageError(f"--chaosdrill-{name.replace('_', '-')} (ini chaosdrill_{name}) must be "
                                    f"a {kind.__name__}, got {setting(config, name)!r}") from None
    backends(config)  # an unknown backend is a usage error before collection
    config.stash[STASH_SESSION] = ChaosSession(config)


def pytest_report_header(config: pytest.Config) -> str:
    target = setting(config, "target") or "okx_demo_api (bundled reference target)"
    return (f"chaosdrill: backend={setting(config, 'backend')}, target={target}, "
            f"evidence={setting(config, 'evidence_dir')}")


# --- session state -------------------------------------------------------------------------------


@dataclass
class DrillState:
    """Per-test state kept in ``item.stash``."""

    drill: Drill
    backend: str
    run: Any = None
    target: Any = None
    workdir: Path | None = None
    evidence: dict[str, str] = field(default_factory=dict)
    verdict: str | None = None


class ChaosSession:
    """Run id, evidence root and the outcomes of every drill of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.info: Any = None
        self.outcomes: list[Any] = []

    def run_info(self) -> Any:
        if self.info is None:
            from .evidence import RunInfo, git_commit, new_run_id
            from .timeline import utc_now

            root = Path(str(setting(self.config, "evidence_dir")))
            if not root.is_absolute():
                root = Path(self.config.rootpath) / root
            commit = git_commit(Path(self.config.rootpath))
            self.info = RunInfo(new_run_id(commit), root, commit, utc_now(), str(setting(self.config, "backend")),
                                build_id=os.environ.get("BUILD_ID") or (commit[:12] if commit else None))
            self.info.create()
            xml = _junit(self.config)
            if xml is not None:
                xml.add_global_property("chaosdrill_run_id", self.info.run_id)
                xml.add_global_property("chaosdrill_commit", commit or "")
                xml.add_global_property("chaosdrill_evidence", str(self.info.run_dir))
        return self.info


def _junit(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return None
    return config.stash.get(xml_key, None)


# --- parametrization -------------------------------------------------------------------------------


def drill_locations(config: pytest.Config) -> list[Path]:
    paths = setting(config, "drills") or []
    return [Path(p) for p in paths] if paths else [drills_dir()]


def backends(config: pytest.Config) -> list[str]:
    names = [b.strip() for b in str(setting(config, "backend")).split(",") if b.strip()]
    unknown = [b for b in names if b not in ("process", "docker", "external")]
    if unknown:
        raise pytest.UsageError(f"--chaosdrill-backend: unknown backend(s) {unknown}; use process, docker or external")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "drill" not in metafunc.fixturenames:
        return
    try:
        drills = load_drills(drill_locations(metafunc.config))
    except DrillDefinitionError as exc:
        pytest.fail(f"broken drill definition: {exc}", pytrace=False)
    params = []
    for d in drills:
        for b in backends(metafunc.config):
            if b not in d.backends:
                continue
            for m in d.markers:
                if m not in ("phase2", "ops"):
                    metafunc.config.addinivalue_line("markers", f"{m}: declared by drill files")
            marks = [getattr(pytest.mark, m) for m in d.markers]
            marks += [pytest.mark.drill(d.id), pytest.mark.timeout(d.timeout_s)]
            params.append(pytest.param(d, b, id=f"{d.id}-{b}", marks=marks))
    metafunc.parametrize(("drill", "chaosdrill_backend"), params)


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chaosdrill_contract_paths(pytestconfig: pytest.Config) -> dict[str, str]:
    """Schema and manifest every sample is checked against (override to point at your own copies)."""
    return {"schema": str(setting(pytestconfig, "schema") or default_schema()),
            "manifest": str(setting(pytestconfig, "manifest") or default_manifest())}


@pytest.fixture(scope="session")
def chaosdrill_contract(chaosdrill_contract_paths: dict[str, str]) -> Any:
    """The loaded status contract; a registry that drifted from its schema stops every drill."""
    from .contract import Contract, format_findings

    contract = Contract.load(chaosdrill_contract_paths["schema"], chaosdrill_contract_paths["manifest"])
    if contract.registry_findings:
        pytest.fail("the status contract's registry is inconsistent (unknown or drifted tokens); fix the "
                    "manifest/schema before drilling:\n" + format_findings(contract.registry_findings), pytrace=False)
    return contract


@pytest.fixture(scope="session")
def chaosdrill_target_config(pytestconfig: pytest.Config) -> Any:
    """The target under drill (override this fixture, or set ``chaosdrill_target``, for your own service)."""
    from .target import TargetConfigError, load_target

    path = setting(pytestconfig, "target") or (data_dir("targets") / "okx_demo_api.yaml")
    path = Path(path)
    if not path.is_absolute():
        path = Path(pytestconfig.rootpath) / path
    try:
        return load_target(path)
    except TargetConfigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def chaos_workdir(tmp_path_factory: pytest.TempPathFactory, drill: Drill) -> Path:
    """Control and data folders for one drill's target."""
    base = tmp_path_factory.mktemp(drill.id[:40])
    (base / "control").mkdir()
    (base / "data").mkdir()
    (base / "logs").mkdir()
    return base


def _external(config: Any) -> dict[str, Any]:
    return dict(getattr(config, "external", {}) or {})


@pytest.fixture(scope="session")
def chaosdrill_docker_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Venue and proxy containers for the docker backend (pytest-docker), started once per session.

    Skips, with one reason, when no engine answers or the image is not built; never errors for that."""
    from .backends.docker import DEFAULT_IMAGE, docker_stack
    from .docker_engine import DockerError, engine_available

    def unavailable(reason: str) -> None:
        # CI that installed an engine sets CHAOSDRILL_REQUIRE_DOCKER=1: there a skip would hide a failure.
        if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
            pytest.fail(f"docker backend: {reason} (and CHAOSDRILL_REQUIRE_DOCKER=1)", pytrace=False)
        pytest.skip(f"docker backend: {reason}")

    ok, reason = engine_available()
    if not ok:
        unavailable(reason)
    image = os.environ.get("CHAOSDRILL_IMAGE", DEFAULT_IMAGE)
    session: ChaosSession = request.config.stash[STASH_SESSION]
    try:
        stack_cm = docker_stack(session.run_info().run_id, tmp_path_factory.mktemp("docker-stack"), image=image)
        stack = stack_cm.__enter__()
    except DockerError as exc:
        if "image inspect" in " ".join(exc.cmd):
            unavailable(f"image {image} is not built (build it: bash docker/build-images.sh)")
        raise
    try:
        yield stack
    finally:
        stack_cm.__exit__(None, None, None)


class _DockerVenue:
    """The venue container as the drill sees it: controlled over its HTTP API."""

    def __init__(self, url: str) -> None:
        from .venue import VenueClient

        self.control = VenueClient(url)
        self.host, self.port = "venue", 8900   # as the proxy container reaches it


@pytest.fixture
def venue(chaosdrill_backend: str, chaosdrill_target_config: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The venue simulator for one drill: in this process (its own thread and event loop), or the
    docker backend's venue container, reset. On the external backend it listens on the target
    file's ``external.venue_port`` (0: any free port)."""
    if chaosdrill_backend == "docker":
        handle = _DockerVenue(request.getfixturevalue("chaosdrill_docker_stack").venue_url)
        handle.control.reset()
        yield handle
        return
    from .venue import VenueServer

    port = int(_external(chaosdrill_target_config).get("venue_port", 0)) if chaosdrill_backend == "external" else 0
    server = VenueServer(port=port, seed=int(setting(request.config, "venue_seed"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(venue: Any, chaosdrill_backend: str, chaosdrill_target_config: Any,
                request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fault proxy in front of the venue; the target only ever talks to the venue through it.

    On the external backend it listens on ``external.proxy_port``, where the running service is pointed."""
    from .proxy import ProxyServer
    from .wiring import ProxyLink

    if chaosdrill_backend == "docker":
        from .backends.docker import PROXY_LISTEN_PORT
        from .proxy import ProxyClient

        client = ProxyClient(request.getfixturevalue("chaosdrill_docker_stack").proxy_api_url)
        client.reset()
        if "venue" in client.proxies():
            client.delete_proxy("venue")
        client.create_proxy("venue", upstream=f"{venue.host}:{venue.port}", listen=f"0.0.0.0:{PROXY_LISTEN_PORT}")
        try:
            yield ProxyLink("venue", client, f"proxy:{PROXY_LISTEN_PORT}", in_process=False)
        finally:
            client.close()
        return
    port = int(_external(chaosdrill_target_config).get("proxy_port", 0)) if chaosdrill_backend == "external" else 0
    server = ProxyServer().start()
    try:
        proxy = server.create_proxy("venue", upstream=f"{venue.host}:{venue.port}", listen=f"127.0.0.1:{port}")
        yield ProxyLink("venue", proxy, proxy.listen, in_process=True)
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chaos_target(request: pytest.FixtureRequest, evidence: DrillState, drill: Drill, chaosdrill_backend: str,
                 chaosdrill_target_config: Any, venue: Any, fault_proxy: Any, chaos_workdir: Path) -> Iterator[Any]:
    """The target backend for one drill (not started: the drill starts it). Teardown stops it and its children."""
    from .wiring import VenueEndpoints

    ep = VenueEndpoints.through(fault_proxy.listen)
    external = _external(chaosdrill_target_config)
    values = {"venue_rest_url": ep.rest_url, "venue_ws_public_url": ep.ws_public_url,
              "venue_ws_private_url": ep.ws_private_url, "control_dir": str(chaos_workdir / "control"),
              "data_dir": str(chaos_workdir / "data"), "host": "127.0.0.1", "drill_id": drill.id,
              "status_port": external.get("status_port", 0) if chaosdrill_backend == "external" else _free_port()}
    if chaosdrill_backend == "docker":
        values["venue_rest_url"] = "http://127.0.0.1:0"  # the container gets its URLs from the compose file
    rendered = chaosdrill_target_config.render(values)
    if chaosdrill_backend == "process":
        from .backends.process import ProcessTarget
        target: Any = ProcessTarget(rendered, chaos_workdir / "logs")
    elif chaosdrill_backend == "external":
        from .backends.external import ExternalTarget
        target = ExternalTarget(rendered, chaos_workdir / "logs")
    else:
        from .backends.docker import DockerTarget
        target = DockerTarget(request.getfixturevalue("chaosdrill_docker_stack"), rendered, chaos_workdir,
                              int(values["status_port"]), fault_proxy.listen)
    evidence.target = target
    try:
        yield target
    finally:
        target.stop(rendered.config.stop_timeout_s)
        if hasattr(target, "remove"):
            target.remove()


@pytest.fixture
def status_timeline() -> Any:
    """The drill's status timeline (samples and marks)."""
    from .timeline import Timeline

    return Timeline()


@pytest.fixture
def evidence(request: pytest.FixtureRequest, drill: Drill, chaosdrill_backend: str) -> Iterator[DrillState]:
    """Writes the test's evidence folder at teardown, whatever the outcome (pass, fail, error,
    NOT PROVEN, timeout, Ctrl-C). Requested first, so it is torn down last."""
    state = DrillState(drill, chaosdrill_backend)
    request.node.stash[STASH_STATE] = state
    yield state
    _write_evidence(request.node, state)


@pytest.fixture
def drill_run(evidence: DrillState, drill: Drill, chaos_target: Any, venue: Any, fault_proxy: Any,
              status_timeline: Any, chaosdrill_contract: Any, chaosdrill_contract_paths: dict[str, str],
              request: pytest.FixtureRequest) -> Any:
    """A ready :class:`~pytest_chaosdrill.runner.DrillRun`; call ``.execute()``."""
    from .checks import builtin_checks
    from .faults import builtin_triggers
    from .runner import DrillContext, DrillRun

    config = request.config
    triggers = builtin_triggers()
    config.hook.pytest_chaosdrill_add_triggers(triggers=triggers)
    checks = builtin_checks()
    config.hook.pytest_chaosdrill_add_checks(checks=checks)
    interval_ms = min(10.0, float(setting(config, "sample_interval_ms")))
    ctx = DrillContext(
        drill=drill, target=chaos_target, rendered=chaos_target.target, venue=venue.control, proxy=fault_proxy,
        timeline=status_timeline, contract=chaosdrill_contract, contract_paths=chaosdrill_contract_paths,
        fixture_dirs=[Path(p) for p in (setting(config, "fixtures") or [])], triggers=triggers, checks=checks,
        sample_interval_s=interval_ms / 1000, allow_live=bool(setting(config, "allow_live")),
        # compose service names of the drill's own containers count as drill-created hosts
        local_hosts=("venue", "proxy") if evidence.backend == "docker" else (),
    )
    run = DrillRun(ctx)
    evidence.run = run
    return run


# --- outcome, evidence and reports ---------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    from .runner import DrillFailed, DrillNotProven

    report = yield
    excinfo = call.excinfo
    if excinfo is not None and isinstance(excinfo.value, (DrillFailed, DrillNotProven)):
        # The drill's own message says everything; the runner's source lines would only hide it.
        report.longrepr = f"{item.nodeid}\n{excinfo.value}"
    item.stash.setdefault(STASH_REPORTS, {})[report.when] = report
    return report


def _verdict(item: pytest.Item, state: DrillState) -> tuple[str, str]:
    from .runner import Verdict

    reports = item.stash.get(STASH_REPORTS, {})
    setup, call = reports.get("setup"), reports.get("call")
    run = state.run
    if setup is not None and setup.skipped:
        return Verdict.SKIPPED.value, str(setup.longrepr[-1]) if isinstance(setup.longrepr, tuple) else ""
    if call is None:
        if setup is not None and setup.failed:
            return Verdict.ERROR.value, _short(setup.longreprtext)
        return Verdict.INTERRUPTED.value, "the run was interrupted before this drill finished"
    text = call.longreprtext if call.failed else ""
    if call.passed:
        return (run.verdict.value if run and run.verdict else Verdict.PASS.value), ""
    if "Timeout" in text and ("pytest-timeout" in text or "Timeout >" in text):
        return Verdict.TIMEOUT.value, _short(text)
    if run is not None and run.verdict is not None:
        return run.verdict.value, run.reason
    if "NOT PROVEN" in text:
        return Verdict.NOT_PROVEN.value, _short(text)
    if "DrillFailed" in text or "AssertionError" in text:
        return Verdict.FAIL.value, _short(text)
    return Verdict.ERROR.value, _short(text)


def _short(text: str, limit: int = 2000) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    out = "\n".join(ln[2:].strip() for ln in lines) or text
    return out[-limit:]


def _write_evidence(item: pytest.Item, state: DrillState) -> None:
    from .evidence import EvidenceWriter, Redactor, folder_name, write_drill_evidence
    from .report import DrillOutcome, files_complete, outcome_from_run

    session: ChaosSession = item.config.stash[STASH_SESSION]
    verdict, reason = _verdict(item, state)
    if state.run is not None and verdict in ("TIMEOUT", "INTERRUPTED", "ERROR") and state.run.t_end is None:
        state.run.t_end = __import__("time").monotonic()
    info = session.run_info()
    target = state.target
    rendered = getattr(target, "target", None)
    redactor = Redactor(rendered.secrets() if rendered else [])
    writer = EvidenceWriter(info, state.drill.group, folder_name(state.drill.id, state.backend), redactor)
    logs = list(target.logs()) if target is not None else []
    if rendered is not None:
        logs += [Path(p) for k, p in rendered.files.items() if k.startswith("log")]
    try:
        versions = {"pytest-chaosdrill": __import__("pytest_chaosdrill").__version__, "pytest": pytest.__version__}
        result = write_drill_evidence(
            writer, run=state.run, nodeid=item.nodeid, drill_id=state.drill.id, title=state.drill.title,
            backend=state.backend, verdict=verdict, reason=reason,
            backend_info=target.describe() if target is not None else {}, log_files=logs, versions=versions)
    except Exception as exc:  # never lose the outcome because of an evidence problem: say it loudly
        (writer.dir / "EVIDENCE_ERROR.txt").write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
        result = {"folder": str(writer.dir), "ieb": "", "ieb_sha256": ""}
    state.evidence, state.verdict = result, verdict
    outcome = DrillOutcome(item.nodeid, state.drill.id, state.drill.title, state.drill.group, state.backend, verdict,
                           reason, folder=result["folder"], ieb_sha256=result.get("ieb_sha256"),
                           budget_ms=state.drill.time_to_safe_budget_ms)
    outcome_from_run(state.run, outcome)
    outcome.files_complete = files_complete(result["folder"])
    outcome.has_notes = (Path(result["folder"]) / "notes.md").is_file()
    session.outcomes.append(outcome)
    props = [("drill_id", state.drill.id), ("verdict", verdict), ("backend", state.backend),
             ("time_to_safe_ms", "" if outcome.time_to_safe_ms is None else f"{outcome.time_to_safe_ms:.1f}"),
             ("evidence_folder", result["folder"]), ("ieb_sha256", result.get("ieb_sha256") or "")]
    item.user_properties.extend(props)
    item.config.hook.pytest_chaosdrill_evidence_written(item=item, folder=Path(result["folder"]), verdict=verdict)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from .report import signoff_markdown

    cs: ChaosSession | None = session.config.stash.get(STASH_SESSION, None)
    if cs is None or cs.info is None or not cs.outcomes:
        return
    run_dir = cs.info.run_dir
    (run_dir / "SIGNOFF.md").write_text(signoff_markdown(cs.outcomes, cs.info.run_id, cs.info.commit), encoding="utf-8")
    latest = cs.info.root / "SIGNOFF.md"
    try:
        shutil.copyfile(run_dir / "SIGNOFF.md", latest)
    except OSError:
        pass


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from .report import summary_table

    cs: ChaosSession | None = config.stash.get(STASH_SESSION, None)
    if cs is None or not cs.outcomes:
        return
    terminalreporter.write_sep("=", "chaos drills")
    for line in summary_table(cs.outcomes):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"evidence: {cs.info.run_dir}  (sign-off: {cs.info.run_dir / 'SIGNOFF.md'})")
