"""kubernetes.node_loss on a mocked API and host: what it proves, what it refuses, and that the
kubelet it stopped is always continued. The real proof is the cluster run (.ci/k8s/ci.sh)."""
from __future__ import annotations

import signal
from types import SimpleNamespace as NS
from typing import Any

import pytest

from pytest_chaosdrill.backends.k8s import KubeTarget, nodeaccess
from pytest_chaosdrill.errors import CannotOnThisBackend


def _node(name: str, ready: str) -> Any:
    return NS(metadata=NS(name=name), spec=NS(unschedulable=False, taints=[NS(key="node.kubernetes.io/unreachable",
              effect="NoExecute")] if ready != "True" else []), status=NS(conditions=[NS(type="Ready", status=ready)]))


def _pod(uid: str, node: str, ip: str, deleting: bool = False, ready: bool = True) -> Any:
    cs = NS(name="service", container_id=f"containerd://{uid * 12}", state=NS(running=True), restart_count=0)
    return NS(metadata=NS(name=f"p-{uid}", uid=uid, deletion_timestamp="now" if deleting else None,
                          creation_timestamp=uid),
              spec=NS(node_name=node), status=NS(phase="Running", pod_ip=ip, container_statuses=[cs],
                                                  conditions=[NS(type="Ready", status="True" if ready else "False")]))


class FakeCore:
    """The API as the control plane moves: node a reports until the kubelet stops, then goes Unknown, the
    old pod is evicted and a replacement runs on node b."""

    def __init__(self) -> None:
        self.lost = False
        self.calls = 0

    def list_node(self) -> Any:
        return NS(items=[_node("a", "True"), _node("b", "True")])

    def read_node(self, name: str) -> Any:
        self.calls += 1
        return _node(name, "Unknown" if self.lost and name == "a" and self.calls > 1 else "True")

    def list_namespaced_event(self, ns: str) -> Any:
        return NS(items=[NS(involved_object=NS(uid="1"), reason="TaintManagerEviction", message="Marking for deletion")])


def _target(monkeypatch: pytest.MonkeyPatch, node_access: str = "local") -> tuple[Any, FakeCore, list]:
    core = FakeCore()
    t = KubeTarget.__new__(KubeTarget)
    t.core, t.ns, t.name, t.proofs, t._stopped_kubelets = core, "ns", "cd-x", [], {}
    t.spec = NS(node_access=node_access, status_port=8080)
    old = _pod("1", "a", "10.0.1.5")
    t.current_pod = lambda: old
    t.pods = lambda: [_pod("1", "a", "10.0.1.5", deleting=core.lost), _pod("2", "b", "10.0.2.7")] if core.lost else [old]
    t._serving = ("10.0.2.7", 8080)
    signals: list = []
    monkeypatch.setattr(nodeaccess, "kubelet_pids", lambda node: [4242] if node == "a" else [])
    monkeypatch.setattr(nodeaccess, "signal_pids", lambda pids, sig: signals.append((pids, sig)) or list(pids))
    monkeypatch.setattr(nodeaccess, "process_state", lambda pid: "T")
    monkeypatch.setattr(nodeaccess, "container_pids", lambda cid: [777] if core.lost else [])
    return t, core, signals


def test_node_loss_is_proven_from_the_api_and_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    t, core, signals = _target(monkeypatch)
    info = t.node_loss()
    assert signals == [([4242], signal.SIGSTOP)] and info["node"] == "a" and info["other_nodes"] == ["b"]
    core.lost = True
    seen: list[str] = []
    proof = t.node_loss_landed(info, timeout=5, on_replacement=lambda: seen.append("hold"))
    assert proof["proven"] is True and seen == ["hold"]
    assert proof["node_ready"] == "Unknown" and "node.kubernetes.io/unreachable:NoExecute" in proof["node_taints"]
    assert proof["new_ip"] == "10.0.2.7" and proof["old_processes_running"] == [777]
    assert proof["pod_events"] == ["TaintManagerEviction: Marking for deletion"]


def test_not_landed_when_the_old_replica_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    t, core, _ = _target(monkeypatch)
    info = t.node_loss()
    core.lost = True
    monkeypatch.setattr(nodeaccess, "container_pids", lambda cid: [])   # nothing left running: no split-brain
    assert t.node_loss_landed(info, timeout=1)["proven"] is False


def test_refuses_without_node_access_or_a_second_node(monkeypatch: pytest.MonkeyPatch) -> None:
    t, core, signals = _target(monkeypatch, node_access="none")
    with pytest.raises(CannotOnThisBackend, match="node_access: local"):
        t.node_loss()
    t, core, signals = _target(monkeypatch)
    core.list_node = lambda: NS(items=[_node("a", "True"), _node("b", "False")])
    with pytest.raises(CannotOnThisBackend, match="second Ready node"):
        t.node_loss()
    monkeypatch.setattr(nodeaccess, "kubelet_pids", lambda node: [])
    core.list_node = FakeCore().list_node
    with pytest.raises(CannotOnThisBackend, match="not a process of this machine"):
        t.node_loss()
    assert signals == []


def test_restore_continues_the_kubelet_and_waits_for_the_old_replica_to_end(monkeypatch: pytest.MonkeyPatch) -> None:
    t, core, signals = _target(monkeypatch)
    t.node_loss()
    core.lost = False     # the kubelet reports again and kills the evicted pod
    out = t.node_restore(timeout=5)
    assert signals[-1] == ([4242], signal.SIGCONT) and out["restored"] is True and t._stopped_kubelets == {}
    assert t.node_restore(timeout=1)["nodes"] == {}    # twice: nothing more to continue


def test_kubelet_pids_match_the_node_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    procs = {"10": ("kubelet", ["kubelet", "--hostname-override=node-a"]), "11": ("kubelet", ["kubelet", "--hostname-override=node-b"]),
             "12": ("bash", ["bash", "--hostname-override=node-a"])}
    for pid, (comm, args) in procs.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "comm").write_text(comm + "\n")
        (tmp_path / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    real = nodeaccess.Path
    monkeypatch.setattr(nodeaccess, "Path", lambda p: tmp_path if p == "/proc" else real(p))
    assert nodeaccess.kubelet_pids("node-a") == [10] and nodeaccess.kubelet_pids("node-c") == []
