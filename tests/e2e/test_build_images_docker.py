"""``chaosdrill build-images`` for real: with a docker engine and a local base image, one build under a test
tag (removed after) whose image runs the package's commands. Skips without them (``CHAOSDRILL_REQUIRE_DOCKER=1``
turns the skip into a failure, as in CI)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _engine_and_base() -> str | None:
    from pytest_chaosdrill.backends.docker_engine import engine_available

    ok, reason = engine_available(timeout=10)
    if not ok:
        return reason
    base = os.environ.get("CHAOSDRILL_BASE_IMAGE", "chaosdrill/base:bookworm")
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode != 0:
        return f"base image {base} is not local (CHAOSDRILL_BASE_IMAGE names another)"
    return None


@pytest.mark.timeout(900)
def test_a_real_build_under_a_test_tag(tmp_path: Path) -> None:
    why = _engine_and_base()
    if why:
        _skip_or_fail(f"no real build: {why}")
    tag = "chaosdrill/target:build-images-test"
    base = os.environ.get("CHAOSDRILL_BASE_IMAGE", "chaosdrill/base:bookworm")
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "build-images", "--tag", tag,
                               "--base-image", base], capture_output=True, text=True, timeout=880)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"built {tag}: sha256:" in proc.stdout
        # the image runs the installed package's commands (the docker backend's venue and proxy)
        run = subprocess.run(["docker", "run", "--rm", tag, "chaosdrill", "venue", "--help"], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0 and "venue" in run.stdout, run.stdout + run.stderr
        labels = subprocess.run(["docker", "image", "inspect", "-f", "{{index .Config.Labels \"io.chaosdrill.image\"}}",
                                 tag], capture_output=True, text=True).stdout.strip()
        assert labels == "target"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True)
