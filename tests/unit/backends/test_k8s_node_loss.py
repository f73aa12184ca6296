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


def test_template_fault_is_proven_by_the_apis_reason_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """kubernetes.memory_limit / image_fault: the patched pod's OOMKilled (after ``restarts`` restarts)."""
    patches: list[dict] = []
    restarts = [0]

    def pod(image: str, memory: str | None, reason: str | None, ready: bool = False) -> Any:
        c = NS(name="service", image=image, resources=NS(limits={"memory": memory} if memory else None))
        cs = NS(name="service", restart_count=restarts[0], state=NS(waiting=NS(reason="CrashLoopBackOff") if reason else None,
                                                                   terminated=None),
                last_state=NS(terminated=NS(reason=reason) if reason else None))
        return NS(metadata=NS(name="p", deletion_timestamp=None), spec=NS(containers=[c]),
                  status=NS(container_statuses=[cs], conditions=[NS(type="Ready", status="True" if ready else "False")]))

    t = KubeTarget.__new__(KubeTarget)
    t.ns, t.name, t.proofs, t._template_before = "ns", "cd-x", [], None
    t.api_client = NS(sanitize_for_serialization=lambda r: {})
    t.apps = NS(read_namespaced_deployment=lambda n, ns: NS(spec=NS(template=NS(spec=NS(containers=[
                    NS(name="service", image="img:1", resources=None)])))),
                patch_namespaced_deployment=lambda n, ns, body: patches.append(body))

    def pods() -> list:
        restarts[0] += 1
        if len(patches) == 2:   # restored
            return [pod("img:1", None, None, ready=True)]
        return [pod("img:1", None, None), pod("img:1", "16Mi", "OOMKilled")]

    t.pods = pods
    change = {"resources": {"limits": {"memory": "16Mi"}, "requests": {"memory": "16Mi"}}}
    info = t.break_template(change, frozenset({"OOMKilled"}), timeout=5, restarts=3)
    assert info["proven"] and info["reason"] == "OOMKilled" and info["restart_count"] >= 3
    assert info["failing_since_mono"] <= info["proven_mono"] and "CrashLoopBackOff" in info["reasons_seen"]
    assert patches[0]["spec"]["template"]["spec"]["containers"] == [{"name": "service", **change}]
    out = t.restore_template(timeout=5)
    assert out["restored"] and patches[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"
    assert t.restore_template()["nothing_changed"]
    # never the reason asked for: not proven
    restarts[0], patches[:] = 0, []
    assert t.break_template({"image": "x.invalid/y:z"}, frozenset({"ErrImagePull"}), timeout=0.5)["proven"] is False


def test_reap_continues_only_stopped_kubelets(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list = []
    monkeypatch.setattr(nodeaccess, "kubelet_pids", lambda node: {"a": [1], "b": [2]}.get(node, []))
    monkeypatch.setattr(nodeaccess, "process_state", lambda pid: "T" if pid == 1 else "S")
    monkeypatch.setattr(nodeaccess, "signal_pids", lambda pids, sig: sent.append((pids, sig)) or list(pids))
    assert nodeaccess.continue_stopped_kubelets(["a", "b", "c"]) == ["continued the stopped kubelet of node a (pid 1)"]
    assert sent == [([1], signal.SIGCONT), ([], signal.SIGCONT), ([], signal.SIGCONT)]
