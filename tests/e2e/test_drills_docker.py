"""The reference target's drills on the docker backend, so the default test run drills every backend it
can reach.

A pytest session drills on one backend, so these run the bundled drills in a separate pytest process
with ``--chaosdrill-backend docker``, from the repository root as a user would, evidence in the same
``evidence/`` folder. The default run (the README's test command) drills one drill there, the crash and
restart, whose fault goes through the engine (the container is killed and started again); every drill
once (exploration excepted: marker ``explore``) is a matrix that re-proves on docker what the process
run proves, so it carries the ``matrix`` marker and runs in CI's matrix step (``pytest -m matrix``).
Without an engine or the project image (``CHAOSDRILL_IMAGE``, default ``chaosdrill/target:latest``;
``bash docker/build-images.sh``) they SKIP with that reason; ``CHAOSDRILL_REQUIRE_DOCKER=1`` (CI) turns
the skip into a failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_chaosdrill.backends import docker_engine as de

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")
TIMEOUT_S = 900  # 16 drills of at most ~30 s each, on a loaded 2-core machine, with margin
ONE_DRILL_TIMEOUT_S = 180
#: The default run's docker drill: its fault (kill, then start again) is the engine's own work.
SMOKE_DRILL = "drill_4_crash_restart"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _docker_drills(tmp_path: Path, *selection: str, timeout_s: int) -> tuple[int, int, str]:
    """Runs ``pytest drills <selection> --chaosdrill-backend=docker``; asserts it passed; (tests, skipped, tail)."""
    ok, reason = de.engine_available()
    if not ok:
        _skip_or_fail(reason)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        _skip_or_fail(f"image {IMAGE} not built (bash docker/build-images.sh)")
    junit = tmp_path / "docker.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "drills", *selection,
         "--chaosdrill-backend=docker", f"--junitxml={junit}"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, "CHAOSDRILL_IMAGE": IMAGE})
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"docker drills exited {proc.returncode}:\n{tail}"
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None, f"no testsuite in {junit}"
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail
    return int(suite.get("tests", 0)), int(suite.get("skipped", 0)), tail


@pytest.mark.timeout(ONE_DRILL_TIMEOUT_S + 30)
def test_a_drill_runs_on_the_docker_backend(tmp_path: Path) -> None:
    tests, skipped, tail = _docker_drills(tmp_path, "-k", SMOKE_DRILL, timeout_s=ONE_DRILL_TIMEOUT_S)
    assert (tests, skipped) == (1, 0), f"{SMOKE_DRILL} did not run on docker ({tests} collected, {skipped} skipped):\n{tail}"


@pytest.mark.matrix
@pytest.mark.timeout(TIMEOUT_S + 30)
def test_every_drill_runs_on_the_docker_backend(tmp_path: Path) -> None:
    tests, skipped, tail = _docker_drills(tmp_path, "-m", "not explore", timeout_s=TIMEOUT_S)
    # a drill the docker backend cannot run skips with its reason; most must really run
    assert tests - skipped >= 8, f"only {tests - skipped} of {tests} drills ran on docker:\n{tail}"
