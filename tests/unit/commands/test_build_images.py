"""``chaosdrill build-images``: the plan from the installed package (dry run, no engine) and bad inputs in
one line (the real build: tests/e2e/test_build_images_docker.py)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_chaosdrill import cli
from pytest_chaosdrill.resources import data_dir

ROOT = Path(__file__).resolve().parents[3]


def test_dry_run_plans_every_step_from_package_data_and_runs_nothing(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "ctx"
    rc = cli.main(["build-images", "--dry-run", "--tag", "chaosdrill/target:unit-test", "--base-image", "b:1",
                   "--wheel", str(ROOT / "okx_demo_api"), "--context-dir", str(ctx), "--find-links", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.startswith("harness image chaosdrill/target:unit-test (venue simulator + fault proxy) from b:1")
    assert f"-f {data_dir('docker') / 'Dockerfile'}" in out               # the packaged Dockerfile
    assert f"specs/ from {data_dir('specs')}" in out                      # the packaged contract
    assert "--build-arg BASE_IMAGE=b:1" in out and "-t chaosdrill/target:unit-test" in out
    assert f"--build-arg PYTHON_VERSION={sys.version_info[0]}.{sys.version_info[1]}" in out
    assert f"pip wheel -q --no-deps --find-links {tmp_path} --wheel-dir {ctx / 'project'} {ROOT / 'okx_demo_api'}" in out
    assert "(dry run: nothing was built)" in out
    assert not ctx.exists()  # nothing was made


def test_the_plugin_wheel_comes_from_a_given_wheel_or_the_package_index(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    wheel = tmp_path / "pytest_chaosdrill-9.9.9-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert cli.main(["build-images", "--dry-run", "--source", str(wheel)]) == 0
    assert f"1. plugin wheel {wheel}" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "says"), [
    (["--wheel", "/no/such/wheel.whl"], "--wheel /no/such/wheel.whl: no such file or folder"),
    (["--target", "/no/such/target.yaml"], "/no/such/target.yaml"),
])
def test_bad_inputs_are_one_line_and_exit_2(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build-images", "--dry-run", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_target_file_without_a_build_section_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build-images", "--dry-run", "--target", str(ROOT / "examples/threaded_service/target.yaml")]) == 2
    assert "field 'docker.build': not given, nothing to build" in capsys.readouterr().err


def test_a_target_files_build_section_is_planned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    target = tmp_path / "t.yaml"
    target.write_text((ROOT / "examples/threaded_service/target.yaml").read_text()
                      .replace("docker:\n", "docker:\n  build: svc\n", 1))
    if "build: svc" not in target.read_text():
        pytest.fail("the example target file has no docker section to extend")
    assert cli.main(["build-images", "--dry-run", "--target", str(target)]) == 0, capsys.readouterr().err
    assert f"docker build -f {tmp_path / 'svc' / 'Dockerfile'} {tmp_path / 'svc'}" in capsys.readouterr().out
