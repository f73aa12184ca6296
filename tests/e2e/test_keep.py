"""``--chaosdrill-keep``: the drill's service, venue and proxy answer after pytest exited, their URLs in the
terminal and the run folder; the next drill session and ``chaosdrill keep-reap`` stop them. On the process
backend and on the docker backend (without an engine or the project image, ``CHAOSDRILL_IMAGE``, the docker
tests skip with that reason; ``CHAOSDRILL_REQUIRE_DOCKER=1`` turns the skip into a failure)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from drilltexts import BOOK_GAP, TEST_MODULE

from pytest_chaosdrill.backends import docker_engine as de
from pytest_chaosdrill.backends.procguard import alive

IMAGE = os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False


def _kept(keep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(keep_dir.glob("*.json"))]


def _need_docker() -> None:
    ok, reason = de.engine_available()
    if ok and subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        ok, reason = False, f"image {IMAGE} not built (chaosdrill build-images --tag {IMAGE})"
    if not ok:
        if os.environ.get("CHAOSDRILL_REQUIRE_DOCKER") == "1":
            pytest.fail(f"CHAOSDRILL_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)


def _containers(label: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return out.split()


def _labels(container: str) -> dict[str, str]:
    out = subprocess.run(["docker", "inspect", "--format", "{{json .Config.Labels}}", container],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


class KeepSite:
    """A user's project with one drill file and its own keep folder (``CHAOSDRILL_KEEP_DIR``)."""

    def __init__(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.pytester, self.keep_dir = pytester, tmp_path / "kept"
        monkeypatch.setenv("CHAOSDRILL_KEEP_DIR", str(self.keep_dir))
        self.drills = pytester.path / "mydrills"
        self.drills.mkdir()
        (self.drills / "d.yaml").write_text(BOOK_GAP, encoding="utf-8")
        pytester.makepyfile(test_drills=TEST_MODULE)

    def run(self, *args: str, timeout: float) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(f"--chaosdrill-drills={self.drills}", "-p", "no:cacheprovider",
                                                  *args, timeout=timeout)

    def reap(self, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "keep-reap"], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "CHAOSDRILL_KEEP_DIR": str(self.keep_dir)})


@pytest.fixture
def site(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> KeepSite:
    return KeepSite(pytester, monkeypatch, tmp_path)



def test_kept_environment_outlives_pytest_and_is_stopped_by_the_next_run_and_keep_reap(
        pytester: pytest.Pytester, site: KeepSite) -> None:
    keep_dir = site.keep_dir

    def drill_run() -> pytest.RunResult:
        return site.run("--chaosdrill-keep", timeout=150)

    def reap() -> subprocess.CompletedProcess[str]:
        return site.reap(timeout=60)

    try:
        first = drill_run()
        first.assert_outcomes(passed=1)
        (kept,) = _kept(keep_dir)
        # pytest has exited: the service and the venue still answer, where the terminal and the evidence say
        assert _answers(kept["status_url"]) and _answers(kept["venue_url"] + "/api/v5/public/time")
        first.stdout.fnmatch_lines([f"chaosdrill: kept drill_5_ws_book_gap: status {kept['status_url']}, venue "
                                    f"{kept['venue_url']}*chaosdrill keep-reap"])
        (run_dir,) = (pytester.path / "evidence" / "runs").iterdir()
        assert json.loads((run_dir / "kept.json").read_text())[0]["status_url"] == kept["status_url"]

        second = drill_run()  # the next session stops what the first kept, and keeps its own
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["*stopped kept drill_5_ws_book_gap (pid *"])
        assert not alive(kept["pid"], kept["pid_start"]) and not _answers(kept["status_url"])
        (again,) = _kept(keep_dir)
        assert again["pid"] != kept["pid"] and _answers(again["status_url"])

        out = reap()
        assert out.returncode == 0 and "stopped kept drill_5_ws_book_gap" in out.stdout, out.stdout + out.stderr
        assert not alive(again["pid"], again["pid_start"]) and not _answers(again["status_url"])
        assert _kept(keep_dir) == []
    finally:
        reap()  # nothing of this test outlives it, whatever failed


@pytest.mark.timeout(420)
def test_docker_kept_environment_outlives_pytest_and_only_its_own_containers_are_removed(
        pytester: pytest.Pytester, site: KeepSite) -> None:
    _need_docker()
    keep_dir = site.keep_dir
    # Someone else's kept container (another user's keep dir, or CI's): neither reap may touch it.
    foreign = f"io.chaosdrill.kept=foreign-{uuid.uuid4().hex[:8]}"
    other = subprocess.run(["docker", "create", "--label", foreign, IMAGE, "true"], capture_output=True, text=True,
                           timeout=60, check=True).stdout.strip()

    def drill_run() -> pytest.RunResult:
        return site.run("--chaosdrill-backend=docker", "--chaosdrill-keep", timeout=300)

    def reap() -> subprocess.CompletedProcess[str]:
        return site.reap(timeout=120)

    try:
        first = drill_run()
        first.assert_outcomes(passed=1)
        (kept,) = _kept(keep_dir)
        assert kept["kind"] == "docker"
        ids = _containers(kept["label"])
        assert len(ids) == 3  # the service, the venue and the proxy
        for cid in ids:  # told apart from a session's resources: no session sweep or teardown takes them
            labels = _labels(cid)
            assert de.MANAGED_KEY not in labels and de.RUN_ID_KEY not in labels, labels
        # pytest has exited: the service and the venue still answer, where the terminal and the evidence say
        assert _answers(kept["status_url"]) and _answers(kept["venue_url"] + "/api/v5/public/time")
        first.stdout.fnmatch_lines([f"chaosdrill: kept drill_5_ws_book_gap: status {kept['status_url']}, venue "
                                    f"{kept['venue_url']}*chaosdrill keep-reap"])
        (run_dir,) = (pytester.path / "evidence" / "runs").iterdir()
        assert json.loads((run_dir / "kept.json").read_text())[0]["status_url"] == kept["status_url"]
        # the session's own stack is gone as always
        assert _containers(f"{de.RUN_ID_KEY}={kept['run_id']}") == []

        second = drill_run()  # the next session removes what the first kept, and keeps its own
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["*stopped kept drill_5_ws_book_gap (3 containers labelled *"])
        assert _containers(kept["label"]) == [] and not _answers(kept["status_url"])
        (again,) = _kept(keep_dir)
        assert again["label"] != kept["label"] and _answers(again["status_url"])

        out = reap()
        assert out.returncode == 0 and "stopped kept drill_5_ws_book_gap" in out.stdout, out.stdout + out.stderr
        assert _containers(again["label"]) == [] and not _answers(again["status_url"])
        assert _kept(keep_dir) == []
        assert _containers(foreign) == [other]
    finally:
        reap()  # nothing of this test outlives it, whatever failed
        subprocess.run(["docker", "rm", "-f", other], capture_output=True, timeout=60)


@pytest.mark.parametrize("backend", ["process", "docker"])
def test_without_the_option_nothing_is_kept(pytester: pytest.Pytester, site: KeepSite, backend: str) -> None:
    if backend == "docker":
        _need_docker()
    keep_dir = site.keep_dir
    site.run(f"--chaosdrill-backend={backend}", timeout=300).assert_outcomes(passed=1)
    assert not keep_dir.exists() or _kept(keep_dir) == []
    (run_dir,) = (pytester.path / "evidence" / "runs").iterdir()
    assert not (run_dir / "kept.json").exists()
    if backend == "docker":  # nothing of the run is left in the engine, kept or managed
        assert _containers(f"{de.KEPT_RUN_ID_KEY}={run_dir.name}") == []
        assert _containers(f"{de.RUN_ID_KEY}={run_dir.name}") == []
