"""``chaosdrill halt`` against real pytest subprocesses: a session with 2 xdist workers and a second
session, each mid-drill, all stop; no target process or port is left; every drill's evidence says
INTERRUPTED (HALTED) with its fault released; the next run refuses to start until the halt is cleared.

The halt file is moved into the test's folder (``CHAOSDRILL_HALT_FILE``) so the test halts only its
own drills, never other runs on the machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_interrupts import LONG_FREEZE, TEST_MODULE, alive, children_of, listening_ports, port_open, wait_for

pytest.importorskip("xdist")


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def target_processes(pid: int) -> list[int]:
    found = []
    for p in descendants(pid):
        try:
            if b"okx_demo_api" in Path(f"/proc/{p}/cmdline").read_bytes():
                found.append(p)
        except OSError:
            pass
    return found


def drill_folder(n: int, ident: str) -> str:
    # The halt must find all three faults held at once: the two sessions start their drills up to a minute
    # apart on a loaded machine (xdist workers start slower), so the fault is held far longer than that
    # skew (the halt ends it; the drill's own deadline stays above the hold).
    text = LONG_FREEZE.replace("id: drill_2_market_data_stale", f"id: {ident}").replace(
        "(interrupt test)", f"(halt test {n})").replace("hold_s: 60}", "hold_s: 600}").replace(
        "timeout_s: 120\n", "timeout_s: 900\n")
    assert "hold_s: 600}" in text and "timeout_s: 900\n" in text, text
    return text


def chaosdrill(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.serial  # two drill sessions (one on two xdist workers) of its own: never beside another test
def test_halt_stops_every_worker_and_session_and_refuses_the_next_run(pytester: pytest.Pytester) -> None:
    halt_file = pytester.path / "run" / "HALT"
    env = {**os.environ, "CHAOSDRILL_HALT_FILE": str(halt_file)}
    pytester.makepyfile(test_drills=TEST_MODULE)
    a, b = pytester.path / "drills_a", pytester.path / "drills_b"
    a.mkdir()
    b.mkdir()
    (a / "one.yaml").write_text(drill_folder(1, "halt_a_one"))
    (a / "two.yaml").write_text(drill_folder(2, "halt_a_two"))
    (b / "three.yaml").write_text(drill_folder(3, "halt_b_three"))

    def start(drills: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "pytest", f"--chaosdrill-drills={drills}", *extra,
                                 f"--chaosdrill-evidence-dir={pytester.path / ('evidence_' + name)}",
                                 "-p", "no:cacheprovider", f"--junitxml={pytester.path / (name + '.xml')}"],
                                cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    procs = {"a": start(a, "a", "-n", "2"), "b": start(b, "b")}
    try:
        def landed() -> list[Path] | None:
            folders = [p.parent for p in pytester.path.glob("evidence_*/runs/*/phase2/*/marks.partial.json")
                       if "fault_landed" in p.read_text()]
            return folders if len(folders) == 3 else None

        folders = wait_for("the fault to land in all three drills", landed, timeout=240)
        targets = [t for p in procs.values() for t in target_processes(p.pid)]
        assert len(targets) == 3, targets
        ports = set().union(*(listening_ports(t) for t in targets))
        assert ports
        out = chaosdrill("halt", "--reason", "halt test", env=env)
        assert out.returncode == 0 and halt_file.is_file(), out.stdout + out.stderr
        outputs = {name: p.communicate(timeout=180)[0].decode(errors="replace") for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert procs["b"].returncode == pytest.ExitCode.INTERRUPTED, outputs["b"][-3000:]
    assert procs["a"].returncode != 0, outputs["a"][-3000:]
    wait_for("every target to be gone", lambda: not any(alive(t) for t in targets), timeout=15)
    wait_for("every port to close", lambda: not any(port_open(p) for p in ports), timeout=15)
    for folder in folders:
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["verdict"] == "INTERRUPTED" and "HALTED" in meta["reason"], (folder, meta)
        assert "Released: yes" in (folder / "trigger.md").read_text(), folder
        assert not (folder / "IN_PROGRESS.json").exists()

    # While the halt is in force, a new run refuses to start, in one line.
    refused = subprocess.run([sys.executable, "-m", "pytest", f"--chaosdrill-drills={b}", "-p", "no:cacheprovider",
                              f"--chaosdrill-evidence-dir={pytester.path / 'evidence_c'}"],
                             cwd=pytester.path, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == pytest.ExitCode.USAGE_ERROR, refused.stdout[-2000:]
    lines = [x for x in (refused.stdout + refused.stderr).splitlines() if "HALTED" in x]
    assert lines and "chaosdrill halt --clear" in lines[0], refused.stdout[-2000:]
    assert chaosdrill("halt", "--status", env=env).returncode == 1
    assert chaosdrill("halt", "--clear", env=env).returncode == 0 and not halt_file.exists()
    assert chaosdrill("halt", "--status", env=env).returncode == 0
