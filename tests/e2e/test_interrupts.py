"""Interrupts against a real pytest subprocess: SIGKILL and SIGTERM of pytest mid-drill. Afterwards no
target process or port is left, and every drill has evidence (INCOMPLETE where the runner died)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import xml.etree.ElementTree as ET

import pytest

from junit_rules import junit10_problems

TEST_MODULE = "def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n"
LONG_FREEZE = """
id: drill_2_market_data_stale
title: a long stale feed (interrupt test)
markers: [phase2]
trigger: {kind: venue.freeze, params: {channels: [books, trades]}, hold_s: 60}
time_to_safe_budget_ms: 5000
expected: {}
checks: [no_open_dispatch_while_blocked]
recovery: {kind: reconcile, timeout_s: 20}
timeout_s: 120
"""


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(") ", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def start_drill(pytester: pytest.Pytester) -> tuple[subprocess.Popen, Path]:
    drills = pytester.path / "mydrills"
    drills.mkdir()
    (drills / "freeze.yaml").write_text(LONG_FREEZE)
    pytester.makepyfile(test_drills=TEST_MODULE)
    evidence = pytester.path / "evidence"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--chaosdrill-drills={drills}",
                             f"--chaosdrill-evidence-dir={evidence}", "-p", "no:cacheprovider",
                             f"--junitxml={pytester.path / 'junit.xml'}"],
                            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Mid-drill: the fault has landed and samples are being appended to the evidence folder.
    def landed() -> Path | None:
        for partial in evidence.glob("runs/*/phase2/*/marks.partial.json"):
            if "fault_landed" in partial.read_text():
                return partial.parent
        return None
    folder = wait_for("the fault to land", landed, timeout=90)
    return proc, folder


def target_processes(pytest_pid: int) -> list[int]:
    return [p for p in children_of(pytest_pid)
            if b"okx_demo_api" in Path(f"/proc/{p}/cmdline").read_bytes()]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def listening_ports(pid: int) -> set[int]:
    """TCP ports ``pid`` listens on (from /proc/net/tcp and its socket inodes)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and parts[9] in inodes:
            ports.add(int(parts[1].split(":")[1], 16))
    return ports


def test_sigkill_of_pytest_takes_the_target_down_and_leaves_incomplete_evidence(pytester: pytest.Pytester) -> None:
    proc, folder = start_drill(pytester)
    targets = wait_for("the target process", lambda: target_processes(proc.pid))
    ports = set().union(*(listening_ports(p) for p in targets))
    assert ports, "the target listens on no port"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    wait_for("the target to die with pytest", lambda: not any(alive(p) for p in targets), timeout=15)
    wait_for("its ports to close", lambda: not any(port_open(p) for p in ports), timeout=15)
    # What it saw so far is there; the next look at the evidence marks it INCOMPLETE, never finished.
    assert (folder / "timeline.partial.jsonl").read_text().count("\n") > 10
    out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "verify-evidence", str(pytester.path / "evidence")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "INCOMPLETE" in out.stdout, out.stdout
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["verdict"] == "INCOMPLETE" and "died during the drill" in meta["reason"]
    assert not (folder / "IN_PROGRESS.json").exists() and (folder / "INCOMPLETE.json").exists()


def test_sigterm_of_pytest_is_handled_like_ctrl_c(pytester: pytest.Pytester) -> None:
    proc, folder = start_drill(pytester)
    targets = wait_for("the target process", lambda: target_processes(proc.pid))
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out.decode(errors="replace")[-3000:]
    assert not any(alive(p) for p in targets), "the target outlived pytest"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["verdict"] == "INTERRUPTED" and "SIGTERM" in meta["reason"]
    trigger = (folder / "trigger.md").read_text()
    assert "Released: yes" in trigger                       # the fault was released before the stop
    assert not (folder / "IN_PROGRESS.json").exists()
    run = folder.parent.parent
    signoff = (run / "SIGNOFF.md").read_text()
    assert "PARTIAL RUN" in signoff and "interrupted" in signoff
    # JUnit keeps the interrupted drill: its name, an INTERRUPTED failure and its properties.
    root = ET.parse(pytester.path / "junit.xml").getroot()
    assert junit10_problems(root) == []
    (case,) = list(root.iter("testcase"))
    assert case.get("name") == "test_drill[drill_2_market_data_stale-process]"
    assert "INTERRUPTED" in case.find("failure").get("message")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["chaosdrill[drill_2_market_data_stale-process].verdict"] == "INTERRUPTED"
    assert root.find("testsuite").get("tests") == "1"


# --- issue 23: Ctrl-C at every phase, evidence never half and unmarked, a broken pipe costs nothing ------------

#: A conftest of the drilled project that delivers SIGINT to pytest itself at one named point of the
#: drill's life (deterministic: the signal lands exactly there, not after a sleep). The plugin is not
#: changed: the wrapped function runs unmodified once the signal has been raised.
INTERRUPT_AT = '''
import os, signal
import pytest_chaosdrill.evidence as evidence
import pytest_chaosdrill.runner as runner
import pytest_chaosdrill.backends.process as process

POINT = os.environ["INTERRUPT_AT"]
TARGETS = {"steady": (runner.DrillRun, "_prove_steady_state"), "fault": (runner.DrillRun, "_observe_until_safe"),
           "recovery": (runner.DrillRun, "_verify_recovery"), "teardown": (process.ProcessTarget, "close"),
           "evidence": (evidence.EvidenceWriter, "finish")}
cls, name = TARGETS[POINT]
original = getattr(cls, name)

def interrupted(self, *args, **kwargs):
    if not os.path.exists(os.environ["INTERRUPT_MARK"]):  # one Ctrl-C, the first time the point is reached
        open(os.environ["INTERRUPT_MARK"], "w").write(POINT)
        os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C, landing here
    return original(self, *args, **kwargs)

setattr(cls, name, interrupted)
'''


def _ctrl_c_as_a_terminal_has_it() -> None:
    # A runner started in the background (`cmd &`, some CI agents) ignores SIGINT, and Python then never
    # turns it into KeyboardInterrupt: give the child the disposition a terminal's pytest has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_interrupted(pytester: pytest.Pytester, point: str, *, broken_pipe: bool = False) -> tuple[int, str, Path]:
    from drilltexts import BOOK_GAP

    drills = pytester.path / "mydrills"
    drills.mkdir()
    (drills / "gap.yaml").write_text(BOOK_GAP)
    pytester.makepyfile(test_drills=TEST_MODULE)
    pytester.makeconftest(INTERRUPT_AT)
    mark = pytester.path / "interrupt.mark"
    env = {**os.environ, "INTERRUPT_AT": point, "INTERRUPT_MARK": str(mark)}
    cmd = [sys.executable, "-m", "pytest", f"--chaosdrill-drills={drills}", "-p", "no:cacheprovider", "-v",
           f"--chaosdrill-evidence-dir={pytester.path / 'evidence'}", f"--junitxml={pytester.path / 'junit.xml'}"]
    if not broken_pipe:
        out = subprocess.run(cmd, cwd=pytester.path, env=env, capture_output=True, text=True, timeout=180,
                             preexec_fn=_ctrl_c_as_a_terminal_has_it)
        assert mark.read_text() == point
        return out.returncode, out.stdout + out.stderr, pytester.path
    # `pytest ... | tee log` and Ctrl-C: the reader of pytest's output is gone before pytest writes its end.
    read, write = os.pipe()
    proc = subprocess.Popen(cmd, cwd=pytester.path, env=env, stdout=write, stderr=write,
                            preexec_fn=_ctrl_c_as_a_terminal_has_it)
    os.close(write)
    reader = os.fdopen(read, "rb")
    wait_for("the interrupt point", mark.exists, timeout=120)
    reader.close()                                     # tee died with the Ctrl-C
    proc.wait(timeout=120)
    return proc.returncode, "", pytester.path


@pytest.mark.parametrize("point", ["steady", "fault", "recovery", "teardown", "evidence"])
def test_ctrl_c_at_every_phase_leaves_marked_evidence_and_every_report(pytester: pytest.Pytester, point: str) -> None:
    """Issue 23 (1): whatever phase Ctrl-C lands in, the folder is finished or marked INCOMPLETE, the
    JUnit never says passed, and the sign-off and the report are written."""
    rc, out, root = run_interrupted(pytester, point)
    assert rc == pytest.ExitCode.INTERRUPTED, out[-3000:]
    import re  # -v: one line per phase, with the seconds since the drill test started
    assert re.search(r"^    chaosdrill +\+\d+\.\d{3} s: ", out, re.M), out[-3000:]
    (folder,) = [p for p in (root / "evidence" / "runs").glob("*/phase2/*") if p.is_dir()]
    assert not (folder / "IN_PROGRESS.json").exists(), sorted(p.name for p in folder.iterdir())
    meta = json.loads((folder / "meta.json").read_text())
    if point == "teardown":  # the drill had its verdict; its folder is finished whole after the Ctrl-C
        assert meta["verdict"] == "PASS" and (folder / "SHA256SUMS").is_file(), meta
    else:
        assert meta["verdict"] in ("INTERRUPTED", "INCOMPLETE"), meta
    if point == "evidence":
        assert meta["verdict"] == "INCOMPLETE" and (folder / "INCOMPLETE.json").exists()
    verify = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "verify-evidence", str(folder)],
                            capture_output=True, text=True, timeout=60)
    if meta["verdict"] == "INCOMPLETE":
        assert verify.returncode == 1 and str(folder) in verify.stdout, verify.stdout + verify.stderr
    else:
        assert verify.returncode == 0, verify.stdout + verify.stderr
    run = folder.parent.parent
    assert "PARTIAL RUN" in (run / "SIGNOFF.md").read_text() and (run / "report.html").is_file()
    xml = ET.parse(root / "junit.xml").getroot()
    (case,) = list(xml.iter("testcase"))
    assert case.find("failure") is not None or case.find("error") is not None, ET.tostring(case)[:2000]


def test_ctrl_c_under_a_broken_pipe_keeps_junit_signoff_and_report(pytester: pytest.Pytester) -> None:
    """Issue 23 (2): `pytest ... | tee log` and Ctrl-C; the pipe's reader dies first."""
    rc, _, root = run_interrupted(pytester, "recovery", broken_pipe=True)
    assert rc != 0
    (run,) = list((root / "evidence" / "runs").iterdir())
    assert "PARTIAL RUN" in (run / "SIGNOFF.md").read_text() and (run / "report.html").is_file()
    xml = ET.parse(root / "junit.xml").getroot()
    (case,) = list(xml.iter("testcase"))
    assert case.find("failure") is not None or case.find("error") is not None
