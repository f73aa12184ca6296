"""Drills are not vacuous on the docker backend: ops_c2_2_network_disconnect (a ``docker network
disconnect`` of the target's container, so docker only) FAILs against buggy variants of the reference
target running IN A CONTAINER, and PASSes against the unmodified target started the same way.

The variants are the same monkeypatches as the process ones (tests/variants/launch.py). One image is
built per module: the project image (``CHAOSDRILL_IMAGE``, default chaosdrill/target:latest) plus the
launcher, tagged uniquely and removed at the end; each case's target file is targets/okx_demo_api.yaml
with ``docker.image`` set to it and ``docker.command`` running the launcher with the case's bug. Each
case is a separate pytest process (pytester) holding only the drill, as in test_drills_not_vacuous.py.

Without an engine (or the project image, compose, pytest-docker) every test SKIPS;
``CHAOSDRILL_REQUIRE_DOCKER=1`` turns that skip into a failure.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from pytest_chaosdrill.backends.docker_engine import DockerEngine, compose_command, engine_available
from tests.matrix.test_drills_not_vacuous import Case, assert_patch_did_not_raise, meta_of, run_drills
from tests.variants.targets import LAUNCHER, write_variant_target

# the one-bug variant matrix: `pytest -m matrix` (left out of the default run; .ci/run runs it)
pytestmark = pytest.mark.matrix

pytest_plugins = ["pytester"]

BASE_IMAGE = os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")
DRILL = "ops_c2_2_network_disconnect"
DNS_DRILL = "ops_c2_7_dns_failure"      # needs the docker backend's DNS stub
GROUP = "ops"
IN_IMAGE = "/variants/launch.py"  # where the launcher sits in the variant image

DOCKER_CASES = [
    # Resets, timeouts, refused and unresolvable connections are all dropped: a cut shows as nothing.
    Case("connection_errors_not_counted", DRILL, GROUP,
         ("fingerprint_error_gate: the fault produces timeout|connection_error|dns_failure, but no "
          "timeout|connection_error|dns_failure event appeared", "error_count=0, error_events=0")),
    # While cut off nothing reaches the venue; the OPENs decided while /status says degraded land once
    # the network is back, still inside the blocked window. (open_while_latched PASSES this drill: the
    # latch is the only block only while the network is cut; after it, the degraded risk state and the
    # unconfirmed session hold ReduceOnly until they clear together with the latch.)
    Case("opens_ignore_guard", DRILL, GROUP,
         ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
    # The venue's name stops resolving: the failed lookups are dropped (the resets still count).
    Case("dns_failures_not_counted", DNS_DRILL, GROUP,
         ("fingerprint_error_gate: the fault produces dns_failure, but no dns_failure event appeared",)),
    Case("opens_ignore_guard", DNS_DRILL, GROUP,
         ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
]


def _skip_or_fail(reason: str) -> None:
    """Skip, or fail under CHAOSDRILL_REQUIRE_DOCKER=1 (CI after .ci/docker-setup.sh)."""
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _launcher_imports_only_the_package() -> None:
    """The image gets launch.py alone: it must import nothing from tests/ (else COPY that too)."""
    tree = ast.parse(LAUNCHER.read_text(encoding="utf-8"))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    local = sorted(m for m in mods if m.split(".")[0] == "tests" or (LAUNCHER.parent / f"{m.split('.')[0]}.py").exists())
    assert not local, f"{LAUNCHER} imports {local}: copy them into the variant image too"


@pytest.fixture(scope="module")
def variant_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(tag, image id) of the project image plus the variant launcher, built once, removed afterwards."""
    ok, reason = engine_available()
    if not ok:
        _skip_or_fail(f"docker backend: {reason}")
    if importlib.util.find_spec("pytest_docker") is None:
        _skip_or_fail("pytest-docker is not installed (pip install 'pytest-chaosdrill[docker]')")
    if compose_command() is None:
        _skip_or_fail("neither `docker compose` nor `docker-compose` is installed")
    eng = DockerEngine(f"variants-{uuid.uuid4().hex[:10]}", handle_signals=False)
    if not eng.image_present(BASE_IMAGE):
        _skip_or_fail(f"image {BASE_IMAGE} is not built (bash docker/build-images.sh)")
    _launcher_imports_only_the_package()
    ctx = tmp_path_factory.mktemp("variant-image")
    shutil.copy(LAUNCHER, ctx / "launch.py")
    (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY launch.py {IN_IMAGE}\n", encoding="utf-8")
    # A tag of our own per session: concurrent sessions never build over or remove each other's image.
    tag = f"chaosdrill-variants/target:test-{uuid.uuid4().hex[:10]}"
    try:
        image_id = eng.build_image(ctx, tag, labels={"io.chaosdrill.image": "variants", "io.chaosdrill.base": BASE_IMAGE})
        yield tag, image_id
    finally:
        subprocess.run([eng.docker, "image", "rm", tag], capture_output=True, timeout=120)
        eng.teardown()
        if eng.image_present(tag):
            pytest.fail(f"variant image {tag} was not removed")


def write_docker_target(pytester: pytest.Pytester, bug: str, image: str) -> Path:
    """The reference target file with its docker section running the launcher with ``bug`` from ``image``."""
    return write_variant_target(bug, pytester.path / f"target_{bug}.yaml", image, IN_IMAGE)


def run_in_container(pytester: pytest.Pytester, bug: str, image: tuple[str, str],
                     drill: str = DRILL) -> tuple[pytest.RunResult, dict]:
    """Run ``drill`` against ``bug`` in a container of the variant image; the result and the drill's meta.
    Checks that the container really ran the variant from that image and that the fault was proven."""
    tag, image_id = image
    result = run_drills(pytester, bug, [drill], target=write_docker_target(pytester, bug, tag), backend="docker")
    out = result.stdout.str()
    logs = "".join(p.read_text(errors="replace") for p in (pytester.path / "evidence").rglob("container.target.log"))
    assert f"okx_demo_api variant: {bug}" in logs, f"variant {bug} was not launched in the container\n{out[-3000:]}"
    assert_patch_did_not_raise(pytester)
    meta = meta_of(pytester, GROUP, f"{drill}-docker")
    assert meta["backend"] == "docker", meta["backend"]
    desc = meta["target"]
    assert desc["image_id"] == image_id and desc["command"] == ["python3", IN_IMAGE, bug], desc
    if drill == DRILL:
        cuts = [p for p in desc["engine_proofs"] if p["action"] == "network_disconnect"]
        assert cuts and all(p["proven"] for p in cuts), f"the network cut was not proven: {cuts}"
    else:
        assert desc.get("dns_stub"), f"no DNS stub in the target's description: {desc}"
    return result, meta


@pytest.mark.parametrize("drill", [DRILL, DNS_DRILL])
def test_unmodified_target_in_the_same_image_passes(pytester: pytest.Pytester, variant_image: tuple[str, str],
                                                    drill: str) -> None:
    """Control: the launcher with no bug (``none``) from the same image PASSES, so a variant's FAIL is the
    bug's, not the image's or the launcher's."""
    result, meta = run_in_container(pytester, "none", variant_image, drill)
    assert meta["verdict"] == "PASS", f"none: {meta['verdict']}: {meta.get('reason')}\n{result.stdout.str()[-3000:]}"
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("case", DOCKER_CASES, ids=[f"{c.bug}-{c.drill}" for c in DOCKER_CASES])
def test_variant_fails_in_a_container(pytester: pytest.Pytester, variant_image: tuple[str, str], case: Case) -> None:
    """The variant's drill is a FAIL (not NOT PROVEN / ERROR) whose reason names the catching check."""
    result, meta = run_in_container(pytester, case.bug, variant_image, case.drill)
    out = result.stdout.str()
    assert meta["verdict"] == "FAIL", f"{case.bug}: verdict {meta['verdict']}: {meta.get('reason')}\n{out[-3000:]}"
    for fragment in case.reason:
        assert fragment in meta["reason"], f"{case.bug}: {fragment!r} not in reason: {meta['reason']}"
    if case.one_of:
        assert any(f in meta["reason"] for f in case.one_of), f"{case.bug}: none of {case.one_of} in: {meta['reason']}"
    result.assert_outcomes(failed=1)
    assert f"test_drill[{case.drill}-docker] - FAI" in out, out[-2000:]
    for fragment in case.reason:
        assert fragment in out.replace("\n", " "), f"{case.bug}: {fragment!r} not printed"
