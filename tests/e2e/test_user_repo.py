"""Issue 23, from a user's own repository: no silent green, every bad input one line at collection,
nothing written by --co, the README's "In your own repository" as written, from an empty folder."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chaosdrill.resources import data_dir

ROOT = Path(__file__).resolve().parents[2]
#: The user's own target file: the reference one, its one relative path (resolved against the file's folder)
#: made absolute, as a user's file for their own service would say where its files are.
TARGET = (ROOT / "targets" / "okx_demo_api.yaml").read_text().replace("../specs/", f"{ROOT / 'specs'}/")


#: what a user's terminal does not have: CI's own switches (pytest prints whole summary lines under CI;
#: the REQUIRE switches are this repository's CI's)
NOT_A_USERS_TERMINAL = ("CI", "BUILD_NUMBER", "CHAOSDRILL_REQUIRE_DOCKER", "CHAOSDRILL_REQUIRE_BROWSER")


def run(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """pytest in ``cwd`` as a user runs it (no conftest, no ini file of this repository)."""
    base = {k: v for k, v in os.environ.items() if k not in NOT_A_USERS_TERMINAL}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty folder holding only a target file, where the README puts it."""
    (tmp_path / "chaos").mkdir()
    (tmp_path / "chaos" / "my_service.yaml").write_text(TARGET)
    return tmp_path


def test_readme_in_your_own_repository_works_from_an_empty_folder(project: Path) -> None:
    """The README's command, collected as written (8 drills), and one of its drills run (the whole Phase 2
    run is the `-m phase2` sanity run); a partial run never becomes the evidence root's sign-off."""
    checked = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "validate", "chaos/my_service.yaml"],
                             cwd=project, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    collected = run(project, "-m", "phase2", "--chaosdrill-target=chaos/my_service.yaml", "--junitxml=phase2.xml", "--co", "-q")
    assert collected.returncode == 0, collected.stdout[-3000:]
    bundled = len(list(data_dir("drills").glob("*.yaml")))
    assert f"8/{bundled} tests collected" in collected.stdout, collected.stdout[-2000:]
    assert not (project / "evidence").exists()   # --co writes no evidence (the JUnit file is pytest's own)
    (project / "phase2.xml").unlink()
    # Issue 23 (6): a bundled drill's node id is a path pytest accepts back
    nodeid = next(line for line in collected.stdout.splitlines() if "drill_5_ws_book_gap" in line)
    assert nodeid.endswith("pytest_chaosdrill/drill_tests.py::test_drill[drill_5_ws_book_gap-process]")
    again = run(project, nodeid, "--chaosdrill-target=chaos/my_service.yaml", "--co", "-q")
    # (pytest may pick another rootdir for a path argument outside this folder: the id's suffix is the test)
    ids = [line for line in again.stdout.splitlines() if "::test_drill[" in line]
    assert again.returncode == 0 and len(ids) == 1 and ids[0].endswith(nodeid.split("pytest_chaosdrill/", 1)[1]), \
        again.stdout[-2000:]
    out = run(project, "-m", "phase2", "--chaosdrill-target=chaos/my_service.yaml", "--junitxml=phase2.xml",
              "-k", "drill_5", timeout=180)
    assert out.returncode == 0, out.stdout[-3000:]
    lines = out.stdout.splitlines()
    table = lines[lines.index(next(line for line in lines if "chaos drills" in line)) + 1:]
    row = next(line for line in table if line.startswith("drill_5_ws_book_gap"))
    assert row.split()[2] == "PASS" and row.rstrip().endswith("phase2/drill_5_ws_book_gap")   # relative, fits
    assert max(len(line) for line in table if line.startswith(("drill", "---"))) <= 120
    assert any(line.startswith("sign-off: NOT READY") for line in table)
    assert any(line.startswith("report:   evidence/runs/") for line in table)
    (run_dir,) = list((project / "evidence" / "runs").iterdir())
    assert (run_dir / "SIGNOFF.md").is_file() and (project / "phase2.xml").is_file()
    assert not (project / "evidence" / "SIGNOFF.md").exists()     # a partial run is not the latest sign-off
    assert 'classname="pytest_chaosdrill.drill_tests"' in (project / "phase2.xml").read_text()


def test_a_backend_asked_for_and_unreachable_is_an_error_not_a_green_run_of_skips(project: Path) -> None:
    out = run(project, "-m", "phase2", "--chaosdrill-target=chaos/my_service.yaml", "--chaosdrill-backend", "docker",
              env={"DOCKER_HOST": f"unix://{project}/no-docker.sock"})
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout[-2000:] + out.stderr[-2000:]
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("ERROR:")]
    assert "--chaosdrill-backend docker" in line and "docker" in line and "(" in line   # says how to get it
    assert ".ci/" not in line and "skipped" not in out.stdout


def test_every_bad_input_is_one_line_at_collection_once_without_traceback(project: Path) -> None:
    drills = project / "drills"
    drills.mkdir()
    (drills / "mine.yaml").write_text("id: mine\nmarkers: [phase2]\ntrigger: {kind: venue.book_gap}\n")
    (drills / "svc.yaml").write_text(TARGET)   # a target file among the drills
    (project / "chaos" / "my_service.yaml").write_text(TARGET.replace("{venue_rest_url}", "{venue_url}"))
    out = run(project, "--chaosdrill-target=chaos/my_service.yaml", "--chaosdrill-drills=drills", "-m", "phase2")
    assert out.returncode == pytest.ExitCode.INTERRUPTED, out.stdout[-3000:]
    text = out.stdout
    assert "Traceback" not in text and "During handling" not in text
    for needle in ("mine.yaml: field 'title' is required", "mine.yaml: field 'checks' is required",
                   "svc.yaml: this is a target file, not a drill file", "field 'env.OKX_REST_URL': unknown placeholder {venue_url}"):
        assert sum(needle in line for line in text.splitlines()) == 1, (needle, text[-3000:])


@pytest.mark.parametrize(("option", "says"), [
    ("--chaosdrill-sample-interval-ms=0", "must be more than 0 and at most 10, got 0"),
    ("--chaosdrill-sample-interval-ms=50", "must be more than 0 and at most 10, got 50"),
    ("--chaosdrill-venue-seed=x", "must be an integer, got 'x'"),
])
def test_option_values_out_of_range_are_usage_errors(project: Path, option: str, says: str) -> None:
    out = run(project, option, "--co")
    assert out.returncode == pytest.ExitCode.USAGE_ERROR and says in out.stderr, out.stderr


def test_a_fixed_external_port_in_use_is_one_line_naming_file_and_field(project: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        (project / "chaos" / "ext.yaml").write_text(
            'name: ext\ncommand: ["true"]\nstatus_url: "http://127.0.0.1:1/api/v1/status"\n'
            f"external: {{venue_port: {port}}}\n")
        out = run(project, "--chaosdrill-target=chaos/ext.yaml", "--chaosdrill-backend=external", "-k", "drill_1")
    assert out.returncode == pytest.ExitCode.TESTS_FAILED, out.stdout[-3000:]
    assert f"ext.yaml: field 'external.venue_port': port {port} on 127.0.0.1 cannot be used" in out.stdout
    assert "Traceback" not in out.stdout and "asyncio" not in out.stdout


def test_pytest_markers_lists_the_drill_markers(project: Path) -> None:
    out = run(project, "--markers")
    for name in ("phase2", "ops", "compound", "explore", "chaosdrill(id)"):
        assert f"@pytest.mark.{name}:" in out.stdout


def test_a_failing_drill_s_junit_failure_body_names_its_evidence_folder(project: Path) -> None:
    """GitLab shows a failure's body, not properties: the folder and the numbers are in it."""
    import xml.etree.ElementTree as ET

    drills = project / "drills"
    drills.mkdir()
    gap = (ROOT / "drills" / "drill_5_ws_book_gap.yaml").read_text()
    (drills / "gap.yaml").write_text(gap.replace("time_to_safe_budget_ms: 300", "time_to_safe_budget_ms: 0.001"))
    assert "time_to_safe_budget_ms: 0.001" in (drills / "gap.yaml").read_text()
    out = run(project, "--chaosdrill-target=chaos/my_service.yaml", "--chaosdrill-drills=drills", "--junitxml=j.xml",
              timeout=180)
    assert out.returncode == pytest.ExitCode.TESTS_FAILED, out.stdout[-3000:]
    (case,) = list(ET.parse(project / "j.xml").getroot().iter("testcase"))
    body = case.find("failure").text
    (folder,) = [p for p in (project / "evidence" / "runs").glob("*/phase2/*") if p.is_dir()]
    assert f"evidence folder: {folder}" in body and "(budget 0 ms)" in body and "drill: drill_5_ws_book_gap" in body
