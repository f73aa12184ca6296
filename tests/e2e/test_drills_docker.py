"""Every drill of the reference target once on the docker backend, so the default test run drills
every backend it can reach.

A pytest session drills on one backend, so this runs the bundled drills (exploration excepted: marker
``explore``) in a separate pytest process with ``--chaosdrill-backend docker``, from the repository
root as a user would, evidence in the same ``evidence/`` folder. Without an engine or the project image
(``CHAOSDRILL_IMAGE``, default ``chaosdrill/target:latest``; ``bash docker/build-images.sh``) it SKIPS
with that reason; ``CHAOSDRILL_REQUIRE_DOCKER=1`` (CI) turns the skip into a failure.
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


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


@pytest.mark.timeout(TIMEOUT_S + 30)
def test_every_drill_runs_on_the_docker_backend(tmp_path: Path) -> None:
    ok, reason = de.engine_available()
    if not ok:
        _skip_or_fail(reason)
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        _skip_or_fail(f"image {IMAGE} not built (bash docker/build-images.sh)")
    junit = tmp_path / "docker.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "drills", "-m", "not explore",
         "--chaosdrill-backend=docker", f"--junitxml={junit}"],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
        env={**os.environ, "CHAOSDRILL_IMAGE": IMAGE})
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"docker drills exited {proc.returncode}:\n{tail}"
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None, f"no testsuite in {junit}"
    tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    assert int(suite.get("failures", 0)) == 0 and int(suite.get("errors", 0)) == 0, tail
    # a drill the docker backend cannot run skips with its reason; most must really run
    assert tests - skipped >= 8, f"only {tests - skipped} of {tests} drills ran on docker:\n{tail}"
