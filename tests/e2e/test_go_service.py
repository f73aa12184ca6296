"""A service in another language, written only from the docs: examples/go_service (Go 1.19, gorilla/websocket
from Debian) is built with its own script and drilled as a user would, ``pytest -m phase2`` / ``-m ops``
with its target file in a child pytest on the process backend.

Every drill must PASS, or end NOT PROVEN for a documented, optional capability the service deliberately
lacks, listed per drill in ``ACCEPTED_NOT_PROVEN`` (nothing else is accepted). The Go service implements
every optional extra the drills read (``latch_events``, the ``trades`` counters), so the list is empty: a
NOT PROVEN here means the service or the docs regressed. Marker ``go_example`` (left out of the README's
command by ``addopts``; ``.ci/run`` runs it, with the docker backend beside it). Without ``go`` or the
Debian websocket package the test SKIPS, except under CI (``CI=true``), where ``.ci/run`` installs them.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ROOT / "examples" / "go_service"
TARGET = SERVICE / "target.yaml"
WEBSOCKET_PKG = Path("/usr/share/gocode/src/github.com/gorilla/websocket")

pytestmark = pytest.mark.go_example

# drill id -> regex its NOT PROVEN reason must match to be accepted: the optional capabilities the
# service deliberately lacks (docs/targets.md, "Required and optional, per drill"). None: it lacks none.
ACCEPTED_NOT_PROVEN: dict[str, str] = {}

DRILLS = {
    "phase2": ["drill_1_partial_fill", "drill_2_market_data_stale", "drill_3_wal_backpressure",
               "drill_4_crash_restart", "drill_5_ws_book_gap", "drill_6_ws_trades_gap",
               "drill_7_session_termination", "drill_8_unknown_token"],
    # ops_c2_2 and ops_c2_7 need the docker backend (network_cut, dns): skipped on process.
    "ops": ["ops_c2_1_stop", "ops_c2_3_degradation", "ops_c2_4_partition_inflight", "ops_c2_5_timeouts",
            "ops_c2_6_clock_skew"],
}


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason} (.ci/run installs golang-go and golang-github-gorilla-websocket-dev)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def go_binary() -> Path:
    if shutil.which("go") is None:
        _skip_or_fail("go is not installed (apt-get install golang-go)")
    if not WEBSOCKET_PKG.is_dir():
        _skip_or_fail(f"{WEBSOCKET_PKG} missing (apt-get install golang-github-gorilla-websocket-dev)")
    proc = subprocess.run(["bash", str(SERVICE / "build.sh")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"build.sh failed:\n{proc.stdout}\n{proc.stderr}"
    binary = Path(proc.stdout.strip().splitlines()[-1])
    assert binary.is_file() and os.access(binary, os.X_OK), f"build.sh printed {binary}, not an executable"
    return binary


def _verdicts(junit: Path) -> dict[str, tuple[str, str]]:
    """test id -> (verdict, failure message) from the suite properties of the JUnit file (docs/ci.md)."""
    root = ET.parse(junit).getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    messages = {}
    for case in root.iter("testcase"):
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                messages[case.get("name")] = child.get("message") or ""
    out = {}
    for name, value in props.items():
        m = re.fullmatch(r"chaosdrill\[(.+)\]\.verdict", name or "")
        if m:
            test_id = m.group(1)
            msg = next((v for k, v in messages.items() if test_id in k), "")
            out[test_id] = (value, msg)
    return out


@pytest.mark.parametrize("marker", ["phase2", "ops"])
def test_go_service_passes_the_drills_on_the_process_backend(go_binary: Path, marker: str, tmp_path: Path) -> None:
    junit = tmp_path / f"{marker}.xml"
    cmd = [sys.executable, "-m", "pytest", "drills", "-m", marker, "-p", "no:cacheprovider",
           f"--chaosdrill-target={TARGET}", f"--chaosdrill-evidence-dir={tmp_path / 'evidence'}",
           f"--junitxml={junit}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert junit.is_file(), f"no JUnit file (exit {proc.returncode}):\n{tail}"
    verdicts = _verdicts(junit)
    ran = {tid.rsplit("-", 1)[0]: v for tid, v in verdicts.items()}
    assert sorted(ran) == sorted(DRILLS[marker]), f"drills run: {sorted(ran)}\n{tail}"
    bad = []
    for drill, (verdict, message) in sorted(ran.items()):
        if verdict == "PASS":
            continue
        accepted = ACCEPTED_NOT_PROVEN.get(drill)
        if verdict == "NOT PROVEN" and accepted and re.search(accepted, message):
            continue
        bad.append(f"{drill}: {verdict}: {message[:300]}")
    assert not bad, "\n".join(bad) + f"\n{tail}"
