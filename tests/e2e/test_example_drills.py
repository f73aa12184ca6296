"""The example service's target file and image agree: what the docker backend gives the container
finds the package where examples/threaded_service/Dockerfile puts it.

The drills themselves run against the example on both backends in CI (.ci/run); these tests pin the
wiring those runs depend on, so a mismatch fails here with its cause rather than as twelve start-up
failures. Without an engine or the example's image the container test SKIPS
(CHAOSDRILL_REQUIRE_DOCKER=1 turns that into a failure).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from pytest_chaosdrill.backends.docker import DockerSpec
from pytest_chaosdrill.backends.docker_engine import docker_cli, engine_available
from pytest_chaosdrill.target import TargetConfig, load_target

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "threaded_service"
DEFAULT_IMAGE = "chaosdrill/example-threaded:latest"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
        pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _package_parent_in_image() -> str:
    """The folder the Dockerfile copies the package's parent to (``COPY threaded_service/ /app/threaded_service/``)."""
    m = re.search(r"^COPY\s+threaded_service/\s+(\S+?)/threaded_service/?\s*$",
                  (EXAMPLE / "Dockerfile").read_text(encoding="utf-8"), re.M)
    assert m, "the Dockerfile no longer copies threaded_service/ into the image"
    return m.group(1)


def _container_env(config: TargetConfig, spec: DockerSpec) -> dict[str, str]:
    """The env names the docker backend sets in the container: the target's env, docker.env over it."""
    return {**config.env, **spec.env}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> tuple[TargetConfig, DockerSpec]:
    monkeypatch.delenv("THREADED_SERVICE_IMAGE", raising=False)
    config = load_target(EXAMPLE / "target.yaml")
    return config, DockerSpec.from_config(config)


def test_container_pythonpath_names_the_images_package_folder(example: tuple[TargetConfig, DockerSpec]) -> None:
    config, spec = example
    # The container gets only the target file's env (not the image's PYTHONPATH), so it must say it.
    path = _container_env(config, spec)["PYTHONPATH"].split(":")
    assert _package_parent_in_image() in path
    assert spec.image == DEFAULT_IMAGE
    assert spec.command == ("python3", "-m", "threaded_service")


def test_image_is_overridable_like_the_build_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADED_SERVICE_IMAGE", "chaosdrill/example-threaded:some-tag")
    assert DockerSpec.from_config(load_target(EXAMPLE / "target.yaml")).image == "chaosdrill/example-threaded:some-tag"
    assert "THREADED_SERVICE_IMAGE" in (EXAMPLE / "build-image.sh").read_text(encoding="utf-8")


def test_image_imports_the_service_with_the_container_env(example: tuple[TargetConfig, DockerSpec]) -> None:
    """The image runs ``import threaded_service.service`` as the backend runs it: the host user,
    the target file's PYTHONPATH, the image's own workdir."""
    ok, reason = engine_available()
    if not ok:
        _skip_or_fail(reason)
    config, spec = example
    image = os.environ.get("THREADED_SERVICE_IMAGE", DEFAULT_IMAGE)
    docker = docker_cli()
    assert docker
    if subprocess.run([docker, "image", "inspect", image], capture_output=True).returncode != 0:
        _skip_or_fail(f"image {image} is not built (bash examples/threaded_service/build-image.sh)")
    env = _container_env(config, spec)
    proc = subprocess.run(
        [docker, "run", "--rm", "--init", "--user", f"{os.getuid()}:{os.getgid()}", "-e", f"PYTHONPATH={env['PYTHONPATH']}",
         image, "python3", "-c", "import threaded_service.service, sys; print(threaded_service.service.__file__)"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(_package_parent_in_image() + "/threaded_service/")
