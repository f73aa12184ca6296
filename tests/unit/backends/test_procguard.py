"""procguard with real processes: SIGKILL of the parent takes the target and its children down;
reap removes a planted leftover, never a live run's target nor a recycled pid."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_chaosdrill.backends.procguard import (
    GroupWatchdog,
    PidRegistry,
    alive,
    default_pid_dir,
    preexec_with_pdeathsig,
    process_start_time,
    reap,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only (prctl, /proc)")

# A "target" that forks a grandchild listening on a TCP port, then waits forever.
TARGET = r"""
import os, socket, sys, time
pid = os.fork()
if pid == 0:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0)); s.listen()
    print(os.getpid(), s.getsockname()[1], flush=True)
    while True:
        s.accept()[0].close()
else:
    while True:
        time.sleep(60)
"""

# A stand-in for pytest: starts the target guarded as the process backend does, reports, waits.
PARENT = r"""
import json, subprocess, sys
from pytest_chaosdrill.backends.procguard import GroupWatchdog, preexec_with_pdeathsig
mode = sys.argv[1]
kw = {"preexec_fn": preexec_with_pdeathsig()} if mode in ("both", "pdeathsig") else {}
target = subprocess.Popen([sys.executable, "-c", sys.argv[2]], stdout=subprocess.PIPE, text=True,
                          start_new_session=True, **kw)
grandchild, port = target.stdout.readline().split()
dog = GroupWatchdog(target.pid) if mode in ("both", "watchdog") else None
print(json.dumps({"target": target.pid, "grandchild": int(grandchild), "port": int(port),
                  "watchdog": dog.pid if dog else None}), flush=True)
sys.stdin.read()  # until killed
"""


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_parent(mode: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode, TARGET], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    info = json.loads(parent.stdout.readline())  # type: ignore[union-attr]
    return parent, info


def cleanup(info: dict[str, int]) -> None:
    for key in ("target", "grandchild", "watchdog"):
        pid = info.get(key)
        if pid and alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_sigkill_of_parent_takes_target_and_grandchild_down_and_closes_port() -> None:
    parent, info = start_parent("both")
    try:
        assert alive(info["target"]) and alive(info["grandchild"]) and port_open(info["port"])
        parent.kill()  # SIGKILL: no handler, no finally, no atexit runs in the parent
        parent.wait()
        assert wait_for(lambda: not alive(info["target"]), 5), "target survived its parent"
        assert wait_for(lambda: not alive(info["grandchild"]), 5), "grandchild survived"
        assert wait_for(lambda: not port_open(info["port"]), 5), "port still open"
        assert wait_for(lambda: not alive(info["watchdog"]), 5), "watchdog lingers"
    finally:
        cleanup(info)


def test_control_without_guards_the_target_and_grandchild_outlive_the_parent() -> None:
    """Without procguard the leak the outsiders found is real: both survive, port open."""
    parent, info = start_parent("none")
    try:
        parent.kill()
        parent.wait()
        time.sleep(0.3)  # a negative control: give the (absent) guard time it would have needed
        assert alive(info["target"]) and alive(info["grandchild"]) and port_open(info["port"])
    finally:
        cleanup(info)


def test_pdeathsig_alone_kills_only_the_direct_child() -> None:
    parent, info = start_parent("pdeathsig")
    try:
        parent.kill()
        parent.wait()
        assert wait_for(lambda: not alive(info["target"]), 5)
        time.sleep(0.3)
        assert alive(info["grandchild"]), "grandchild gone without the watchdog? the watchdog test proves less"
    finally:
        cleanup(info)


def test_watchdog_release_stands_down_without_killing() -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        dog = GroupWatchdog(target.pid)
        dog.release()
        assert dog.proc.returncode == 0 and target.poll() is None
    finally:
        target.kill()
        target.wait()


def test_watchdog_trigger_kills_the_group() -> None:
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    dog = GroupWatchdog(target.pid)
    dog.trigger()
    assert target.wait(timeout=5) == -signal.SIGKILL


def test_preexec_child_leads_its_own_group() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import os; print(os.getpgid(0) == os.getpid())"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=preexec_with_pdeathsig())
    assert proc.communicate(timeout=30)[0].strip() == "True"


# --- registry and reap ------------------------------------------------------------------------
@pytest.fixture
def pid_dir(tmp_path: Path) -> Path:
    return tmp_path / "pids"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []

    def make() -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        procs.append(p)
        return p
    yield make  # type: ignore[misc]
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def dead_pid() -> tuple[int, int]:
    """A pid and start time of a process that has exited (an owner that died)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    start = process_start_time(p.pid)
    p.wait()
    assert start is not None
    return p.pid, start


def test_register_and_unregister(pid_dir: Path, sleeper) -> None:  # type: ignore[no-untyped-def]
    p = sleeper()
    reg = PidRegistry(pid_dir)
    path = reg.register(p.pid, command=["svc", "--x"], run_id="run_1")
    rec = json.loads(path.read_text())
    assert rec["pid"] == p.pid and rec["pgid"] == p.pid and rec["owner_pid"] == os.getpid()
    assert rec["start_time"] == process_start_time(p.pid) and rec["command"] == ["svc", "--x"]
    reg.unregister(p.pid)
    assert not path.exists() and reg.records() == []


def test_reap_kills_a_leftover_of_a_dead_owner_with_its_children(pid_dir: Path) -> None:
    target = subprocess.Popen([sys.executable, "-c", TARGET], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    grandchild, port = map(int, target.stdout.readline().split())  # type: ignore[union-attr]
    try:
        owner, owner_start = dead_pid()
        reg = PidRegistry(pid_dir)
        path = reg.register(target.pid, command=["target"], run_id="run_dead", owner_pid=owner)
        rec = json.loads(path.read_text())
        rec["owner_start_time"] = owner_start
        path.write_text(json.dumps(rec))
        lines = reap(pid_dir)
        assert len(lines) == 1 and f"killed leftover target pid {target.pid}" in lines[0] and "run_dead" in lines[0]
        assert target.wait(timeout=5) == -signal.SIGKILL
        assert wait_for(lambda: not alive(grandchild), 5) and wait_for(lambda: not port_open(port), 5)
        assert not path.exists()
    finally:
        for pid in (target.pid, grandchild):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        target.wait()


def test_reap_leaves_a_live_runs_target_alone(pid_dir: Path, sleeper) -> None:  # type: ignore[no-untyped-def]
    p = sleeper()
    PidRegistry(pid_dir).register(p.pid, command=["target"])  # owner: this live pytest
    assert reap(pid_dir) == []
    assert p.poll() is None and (pid_dir / f"{p.pid}.json").exists()


def test_reap_never_kills_a_recycled_pid(pid_dir: Path, sleeper) -> None:  # type: ignore[no-untyped-def]
    p = sleeper()  # plays the process that got the leftover's pid number later
    owner, owner_start = dead_pid()
    path = PidRegistry(pid_dir).register(p.pid, command=["target"], owner_pid=owner)
    rec = json.loads(path.read_text())
    rec["start_time"] -= 1  # the recorded target started at another moment: a different process
    rec["owner_start_time"] = owner_start
    path.write_text(json.dumps(rec))
    lines = reap(pid_dir)
    assert len(lines) == 1 and "different process" in lines[0] and "not killed" in lines[0]
    time.sleep(0.1)
    assert p.poll() is None and not path.exists()


def test_reap_treats_an_owner_with_a_recycled_pid_as_dead(pid_dir: Path, sleeper) -> None:  # type: ignore[no-untyped-def]
    target = sleeper()
    path = PidRegistry(pid_dir).register(target.pid, command=["target"])  # owner: this pytest...
    rec = json.loads(path.read_text())
    rec["owner_start_time"] -= 1  # ...but recorded with another start time: the real owner is gone
    path.write_text(json.dumps(rec))
    assert "killed leftover" in reap(pid_dir)[0]
    assert target.wait(timeout=5) == -signal.SIGKILL


def test_reap_removes_records_of_gone_targets_and_broken_records(pid_dir: Path) -> None:
    gone, _ = dead_pid()
    owner, _ = dead_pid()
    reg = PidRegistry(pid_dir)
    (pid_dir / f"{gone}.json").write_text(json.dumps({"pid": gone, "start_time": 1, "pgid": gone,
                                                      "command": ["x"], "owner_pid": owner,
                                                      "owner_start_time": 1}))
    (pid_dir / "999999999.json").write_text("{half")
    lines = reap(pid_dir)
    assert sorted(x.split()[0] for x in lines) == ["removed", "removed"]
    assert reg.records() == []


def test_default_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_pid_dir() == tmp_path / "chaosdrill" / "pids"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_pid_dir() == Path(f"/tmp/chaosdrill-{os.getuid()}/pids")


def test_registry_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PermissionError):
        PidRegistry(tmp_path / "link")


def test_process_backend_start_stop_guards_and_unguards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ProcessTarget.start registers the target and starts a watchdog; stop removes both."""
    from types import SimpleNamespace

    from pytest_chaosdrill.backends.process import ProcessTarget

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    rendered = SimpleNamespace(command=[sys.executable, "-c", "import time; time.sleep(60)"], env={},
                               config=SimpleNamespace(name="sleeper", folder=tmp_path, stop_timeout_s=10))
    target = ProcessTarget(rendered, tmp_path / "logs")  # type: ignore[arg-type]
    target.start()
    pid = target.pid
    assert pid is not None
    reg = PidRegistry(default_pid_dir())
    assert [r["pid"] for r in reg.records()] == [pid]
    (_, dog), = target._guards
    assert dog is not None and alive(dog.pid)
    target.stop(timeout=5)
    assert reg.records() == [] and wait_for(lambda: not alive(dog.pid), 5) and not alive(pid)
