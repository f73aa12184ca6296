"""kubernetes.oom_kill on a mocked API and a fake memory cgroup: where the cgroup is found, that the
pressure process always ends and an unkilled container gets its limit back, and what the API must
show. The real proof is the cluster run (.ci/k8s/ci.sh: cluster_3_oom_crash_loop)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from pytest_chaosdrill.backends.k8s import KubeTarget, nodeaccess
from pytest_chaosdrill.errors import CannotOnThisBackend
from pytest_chaosdrill.faults.kubernetes import OomKill

CID = "containerd://" + "ab" * 32


def test_memory_cgroup_v1_and_v2(tmp_path: Path) -> None:
    v1 = "12:pids:/k8s.io/x\n9:memory:/k8s.io/abab\n1:name=systemd:/k8s.io/x\n"
    folder, names = nodeaccess.parse_memory_cgroup(v1, tmp_path)
    assert folder == tmp_path / "memory/k8s.io/abab" and names["limit"] == "memory.limit_in_bytes"
    folder, names = nodeaccess.parse_memory_cgroup("0::/kubepods/pod1/abab\n", tmp_path)
    assert folder == tmp_path / "kubepods/pod1/abab" and names["limit"] == "memory.max"
    assert nodeaccess.parse_memory_cgroup("", tmp_path) is None


def _cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: bool) -> tuple[Path, subprocess.Popen]:
    """A fake v2 cgroup folder and a real child process standing for the service."""
    (tmp_path / "memory.current").write_text(str(40 << 20))
    (tmp_path / "memory.max").write_text("max")
    (tmp_path / "memory.events").write_text("low 0\noom 0\noom_kill 0\n")
    (tmp_path / "cgroup.procs").write_text("")
    service = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    monkeypatch.setattr(nodeaccess, "memory_cgroup", lambda pid: (tmp_path, {
        "usage": "memory.current", "limit": "memory.max", "events": "memory.events"}))
    state = {"go": False}

    def pids(cid: str) -> list[int]:
        # the "kernel": once the pressure process is in the cgroup, the service is killed (or never is)
        if (tmp_path / "cgroup.procs").read_text() and killed:
            if not state["go"]:
                state["go"] = True
                service.kill()
                service.wait()
                (tmp_path / "memory.events").write_text("low 0\noom 1\noom_kill 1\n")
            return []
        return [service.pid]

    monkeypatch.setattr(nodeaccess, "container_pids", pids)
    return tmp_path, service


def test_oom_kill_proven_by_the_kernel_and_the_pressure_process_ends(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, service = _cgroup(tmp_path, monkeypatch, killed=True)
    info = nodeaccess.oom_kill_container(CID, margin_mib=8, timeout=5)
    hog = int((folder / "cgroup.procs").read_text())
    assert info["oom_killed"] is True and info["processes_gone"] is True
    assert (info["oom_kills_before"], info["oom_kills_after"]) == (0, 1)
    assert info["limit_set"] == (40 << 20) + (8 << 20) and (folder / "memory.max").read_text() == str(48 << 20)
    assert not Path(f"/proc/{hog}").exists() or Path(f"/proc/{hog}/stat").read_text().split()[2] == "Z"


def test_no_kill_puts_the_limit_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, service = _cgroup(tmp_path, monkeypatch, killed=False)
    try:
        info = nodeaccess.oom_kill_container(CID, margin_mib=8, timeout=0.3)
        assert info["oom_killed"] is False and info["processes_gone"] is False
        assert (folder / "memory.max").read_text() == "max"
        assert Path(f"/proc/{service.pid}/oom_score_adj").read_text().strip() == "1000"
    finally:
        service.kill()
        service.wait()


def _pod(restarts: int, waiting: str | None = None, last: tuple[str, int] | None = None) -> Any:
    cs = NS(name="service", restart_count=restarts, container_id=f"containerd://c{restarts}",
            state=NS(waiting=NS(reason=waiting) if waiting else None, running=None if waiting else True),
            last_state=NS(terminated=NS(reason=last[0], exit_code=last[1]) if last else None))
    return NS(status=NS(container_statuses=[cs]))


def _target(pods: list[Any], node_access: str = "local") -> KubeTarget:
    t = KubeTarget.__new__(KubeTarget)
    seq = iter(pods)
    last = {"pod": pods[0]}

    def read(name: str, ns: str) -> Any:
        last["pod"] = next(seq, last["pod"])
        return last["pod"]

    t.core, t.ns, t.name, t.proofs = NS(read_namespaced_pod=read), "ns", "cd-x", []
    t.spec = NS(node_access=node_access)
    return t


def test_confirm_needs_oomkilled_and_a_restart() -> None:
    t = _target([_pod(1, "CrashLoopBackOff", ("OOMKilled", 137)), _pod(2, None, ("OOMKilled", 137))])
    out = t.confirm_oom_kill({"pod": "p", "restart_count_before": 1}, timeout=5)
    assert out["api_proven"] is True and out["restart_count"] == 2 and "CrashLoopBackOff" in out["waiting_reasons_seen"]
    assert t.proofs[-1]["action"] == "oom_kill_confirmed"
    # restarted, but the kernel's OOM killer was not the reason: not this fault's proof
    t = _target([_pod(1, None, ("Error", 137))])
    out = t.confirm_oom_kill({"pod": "p", "restart_count_before": 0}, timeout=0.3)
    assert out["api_proven"] is False and out["last_terminated"] == {"reason": "Error", "exit_code": 137}


def test_oom_kill_refused_without_node_access() -> None:
    with pytest.raises(CannotOnThisBackend, match="node_access: local"):
        _target([_pod(0)], node_access="none").oom_kill()


def test_params() -> None:
    assert OomKill.check_params({"kills": 2, "between_s": 3.0, "hold_reconcile_s": 3.0}) == []
    assert any("at least 1" in p for p in OomKill.check_params({"kills": 0}))
    assert any("unknown parameter 'limit'" in p for p in OomKill.check_params({"limit": "16Mi"}))


def test_pressure_process_ends_with_its_parent() -> None:
    """A pytest killed mid-fault leaves no pressure process: it polls its parent and exits."""
    parent = subprocess.run([sys.executable, "-c", (
        "import subprocess, sys\n"
        "import os\n"
        "p = subprocess.Popen([sys.executable, '-c', sys.argv[1], '1', str(os.getpid())], stdin=subprocess.PIPE)\n"
        "p.stdin.write(b'go\\n'); p.stdin.flush(); print(p.pid)\n"), nodeaccess._PRESSURE],
        capture_output=True, text=True, timeout=20, check=True)
    hog = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{hog}").exists() \
            and Path(f"/proc/{hog}/stat").read_text().split()[2] != "Z":
        time.sleep(0.05)
    assert not Path(f"/proc/{hog}").exists() or Path(f"/proc/{hog}/stat").read_text().split()[2] == "Z"
