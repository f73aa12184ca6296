"""pytest plugin entry point (``pytest11``): options, fixtures and the few hooks that must always exist.

Invisible until used: in a project without drills this module only adds its options and its
``chaosdrill_*`` fixtures; it parametrizes nothing but tests that request ``chaosdrill_drill``, prints
nothing and imports nothing heavy. The per-session machinery (:mod:`pytest_chaosdrill.session`: the drill
session, its reporting and its interrupts) is registered only once drills are collected.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import hookspecs
from .settings import add_options, backend_names, check_evidence_dir, check_values, setting_path

STASH_SESSION = pytest.StashKey["Any"]()
#: Options whose presence on the command line means "run drills" (so the bundled module is collected
#: when the project has no drill module of its own).
_DRILL_OPTIONS = ("target", "drills", "backend")
_BUILTIN_BACKENDS = ("process", "docker", "external", "kubernetes")
_BUNDLED_MARKERS = (
    "phase2: the Phase 2 checklist drills (pytest-chaosdrill)",
    "ops: operations drills: STOP and degradation with the telemetry gate (pytest-chaosdrill)",
    "compound: compound drills (fault schedules, pytest-chaosdrill)",
    "explore: drills that explore fault schedules with Hypothesis (pytest-chaosdrill)",
    "cluster: drills only a Kubernetes cluster can run (pytest-chaosdrill)",
    "chaosdrill(id): the drill definition a test runs (pytest-chaosdrill)",
)
_DRILL_MARKS = re.compile(r"\b(phase2|ops|compound|explore|cluster)\b")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    check_values(config)
    check_evidence_dir(config)
    # The bundled drills' markers, known before any drill is collected (so `pytest --markers` lists them
    # and -m works under --strict-markers); a drill file's own markers are added at collection.
    for line in _BUNDLED_MARKERS:
        config.addinivalue_line("markers", line)
    for name in backend_names(config):  # an unknown backend is a usage error before collection
        if name not in _BUILTIN_BACKENDS and config.hook.pytest_chaosdrill_backend_class(name=name, config=config) is None:
            raise pytest.UsageError(f"--chaosdrill-backend: unknown backend {name!r}; built in: process, "
                                    "docker, external, kubernetes (plugins add more through pytest_chaosdrill_backend_class)")
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # pytest-xdist controller: it collects nothing itself, yet decides the run id and makes the
        # reports from the workers' test reports.
        _session(config)


@pytest.hookimpl(trylast=True)
def pytest_chaosdrill_backend_class(name: str, config: pytest.Config) -> Any:
    from .backends import builtin_backend_class

    return builtin_backend_class(name)


def _session(config: pytest.Config) -> Any:
    """The session's drill machinery, created and registered on first use."""
    s = config.stash.get(STASH_SESSION, None)
    if s is None:
        # Imported here: the session package loads the runner, the evidence writer and the reports, which
        # a project without drills never needs (tests/test_generic_core.py: no heavy import).
        from . import session

        s = config.stash[STASH_SESSION] = session.start(config)
    return s


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaosdrill_drill" not in metafunc.fixturenames:
        return
    session = _session(metafunc.config)
    session.drill_modules.append(metafunc.definition.nodeid)
    session.parametrize(metafunc)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collect the bundled drill module when drills were asked for on the command line and the
    project has no drill module of its own (runs before ``-m``/``-k`` deselection)."""
    existing = config.stash.get(STASH_SESSION, None)
    if (existing is not None and existing.drill_modules) or any(
            "chaosdrill_drill" in getattr(i, "fixturenames", ()) for i in items):
        return  # the project has a drill module (collected, or broken and reported)
    if not any(config.getoption(f"chaosdrill_{name}") is not None for name in _DRILL_OPTIONS):
        return
    from . import drill_tests

    path = Path(drill_tests.__file__)
    # A node id pytest accepts back on its command line (the module lives outside the rootdir: pytest
    # would make it "::drill_tests.py"): the module's path relative to the rootdir, '..' included.
    module = pytest.Module.from_parent(session, path=path, nodeid=_relative_nodeid(config, path))
    items.extend(i for i in session.genitems(module) if isinstance(i, pytest.Item))
    _session(config).note(f"no drill test module collected: running the bundled drills ({drill_tests.__file__})")


def _relative_nodeid(config: pytest.Config, path: Path) -> str:
    import os

    try:
        return path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, config.rootpath)).as_posix()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A missing drill module is never a silent exit 5.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _DRILL_MARKS.search(session.config.option.markexpr or ""):
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line("chaosdrill: no drills were collected. Pass --chaosdrill-target FILE (the bundled drills "
                          "then run against it) or add a drill test module (docs/targets.md).", yellow=True)


# --- fixtures (all named chaosdrill_*; every one can be overridden in a conftest.py) ----------------------


@pytest.fixture(scope="session")
def chaosdrill_contract_paths(pytestconfig: pytest.Config) -> dict[str, str]:
    """Schema and manifest every sample is checked against (override to point at your own copies)."""
    from .resources import default_manifest, default_schema

    return {"schema": str(setting_path(pytestconfig, "schema") or default_schema()),
            "manifest": str(setting_path(pytestconfig, "manifest") or default_manifest())}


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
    return _session(pytestconfig).target_config()


@pytest.fixture
def chaosdrill_evidence(request: pytest.FixtureRequest, chaosdrill_drill: Any, chaosdrill_backend: str) -> Iterator[Any]:
    """Writes the test's evidence folder at teardown, whatever the outcome (pass, fail, error,
    NOT PROVEN, timeout, Ctrl-C). Requested first, so it is torn down last."""
    state = _session(request.config).begin(request.node, chaosdrill_drill, chaosdrill_backend)
    yield state
    _session(request.config).write_evidence(request.node, state)
    _session(request.config).keep(state)  # --chaosdrill-keep: the service, venue and proxy again, detached


@pytest.fixture
def chaosdrill_site(request: pytest.FixtureRequest, chaosdrill_evidence: Any, tmp_path_factory: pytest.TempPathFactory,
                    chaosdrill_drill: Any) -> Any:
    """Control, data and log folders for one drill's target."""
    from .backends.base import DrillSite

    session = _session(request.config)
    site = DrillSite(chaosdrill_drill.id, tmp_path_factory.mktemp(chaosdrill_drill.id[:40]), session.run_id,
                     needs=session.capabilities_needed.get(chaosdrill_drill.id, frozenset())).create()
    chaosdrill_evidence.site = site
    return site


@pytest.fixture
def chaosdrill_harness(request: pytest.FixtureRequest, chaosdrill_evidence: Any, chaosdrill_backend: str,
                       chaosdrill_site: Any, chaosdrill_target_config: Any) -> Iterator[Any]:
    """The venue simulator and the fault proxy for one drill, placed by the backend."""
    from .errors import TargetConfigError

    backend = _session(request.config).backend(chaosdrill_backend)
    try:
        harness_cm = backend.harness(chaosdrill_site, chaosdrill_target_config)
        harness = harness_cm.__enter__()
    except TargetConfigError as exc:  # the user's to fix (a port in use): one line, no traceback
        pytest.fail(str(exc), pytrace=False)
    try:
        chaosdrill_evidence.harness = harness
        yield harness
    except BaseException:
        if not harness_cm.__exit__(*sys.exc_info()):
            raise
    else:
        harness_cm.__exit__(None, None, None)


@pytest.fixture
def chaosdrill_target(chaosdrill_evidence: Any, chaosdrill_backend: str, chaosdrill_target_config: Any,
                      chaosdrill_site: Any, chaosdrill_harness: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The target for one drill, created by its backend (not started: the drill starts it). Teardown
    stops it and everything it started."""
    backend = _session(request.config).backend(chaosdrill_backend)
    target = backend.create_target(chaosdrill_target_config, chaosdrill_site, chaosdrill_harness)
    chaosdrill_evidence.target = target
    try:
        yield target
    finally:
        target.close()


@pytest.fixture
def chaosdrill_timeline() -> Any:
    """The drill's status timeline (samples and marks)."""
    from .timeline import Timeline

    return Timeline()


@pytest.fixture
def chaosdrill_run(chaosdrill_evidence: Any, chaosdrill_drill: Any, chaosdrill_target: Any, chaosdrill_harness: Any,
                   chaosdrill_timeline: Any, chaosdrill_contract: Any, chaosdrill_contract_paths: dict[str, str],
                   chaosdrill_backend: str, request: pytest.FixtureRequest) -> Any:
    """A ready :class:`~pytest_chaosdrill.runner.DrillRun`; call ``.execute()``."""
    return _session(request.config).make_run(
        chaosdrill_evidence, drill=chaosdrill_drill, target=chaosdrill_target, harness=chaosdrill_harness,
        timeline=chaosdrill_timeline, contract=chaosdrill_contract, contract_paths=chaosdrill_contract_paths,
        backend=chaosdrill_backend)

