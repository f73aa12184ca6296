"""kubernetes.network_cut on a mocked API and node: the rules it inserts (status port and loopback
kept), that the probe from inside the namespace is the proof, that the rules always come out, and that
a NetworkPolicy cut is NOT PROVEN. The real proof is a cluster run (docs/kubernetes.md)."""
from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest

from pytest_chaosdrill.backends.k8s import KubeTarget, nodeaccess
from pytest_chaosdrill.errors import CannotOnThisBackend
from pytest_chaosdrill.faults.base import FaultNotLanded
from pytest_chaosdrill.faults.kubernetes import NetworkCut


def test_cut_rules_keep_the_status_port_and_loopback() -> None:
    rules = nodeaccess.cut_rules(8080, "chaosdrill-cut-x")
    assert all(r[-4:] == ["-m", "comment", "--comment", "chaosdrill-cut-x"] for r in rules)
    # inserted each at position 1: the DROPs go in first, so every ACCEPT ends up above them
    assert [r[0] for r in rules[:2]] == ["INPUT", "OUTPUT"] and all("DROP" in r for r in rules[:2])
    assert ["INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT"] == rules[2][:7]
    assert ["OUTPUT", "-p", "tcp", "--sport", "8080", "-j", "ACCEPT"] == rules[3][:7]


class FakeNode:
    """The node: iptables rules per namespace and a probe that fails while any rule is in."""

    def __init__(self, probe_before: bool = True) -> None:
        self.rules: list[list[str]] = []
        self.probe_before = probe_before

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(nodeaccess, "netns_of", lambda cid: "/proc/42/ns/net")
        monkeypatch.setattr(nodeaccess, "probe", lambda ns, host, port, timeout=1.0: (not self.rules) and self.probe_before)
        monkeypatch.setattr(nodeaccess, "cut", lambda ns, rules: self.rules.extend(rules) or [])

        def uncut(ns: str, rules: list[list[str]]) -> int:
            n = sum(1 for r in rules if r in self.rules)
            self.rules = [r for r in self.rules if r not in rules]
            return n

        monkeypatch.setattr(nodeaccess, "uncut", uncut)


def _target(node_access: str = "local") -> KubeTarget:
    t = KubeTarget.__new__(KubeTarget)
    cs = NS(name="service", container_id="containerd://" + "c" * 64)
    pod = NS(metadata=NS(name="p1"), status=NS(pod_ip="10.244.1.5", container_statuses=[cs]))
    t.current_pod = lambda: pod
    t.ns, t.name, t.target_id, t.proofs, t._cut = "ns", "cd-x", "abc", [], None
    t.spec = NS(node_access=node_access, status_port=8080)
    t.proxy_listen = "10.244.1.1:36841"
    return t


def test_cut_proven_by_the_probe_and_released(monkeypatch: pytest.MonkeyPatch) -> None:
    node = FakeNode()
    node.install(monkeypatch)
    t = _target()
    info = t.network_cut()
    assert info["proven"] is True and info["probe_before"] is True and info["probe_during"] is False
    assert info["probe"] == "10.244.1.1:36841" and len(node.rules) == 6
    out = t.network_restore()
    assert out == {**out, "rules_removed": 6, "probe_after": True, "restored": True} and node.rules == []
    assert t.network_restore()["nothing_cut"] is True


def test_not_proven_when_the_probe_never_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    node = FakeNode(probe_before=False)   # the pod could not reach the proxy anyway: a cut proves nothing
    node.install(monkeypatch)
    t = _target()
    assert t.network_cut()["proven"] is False
    trig = NetworkCut(NS(target=t), {})
    trig.via, trig.info = "iptables", t.proofs[-1]
    with pytest.raises(FaultNotLanded, match="did not open before the cut"):
        trig.wait_landed(1)
    assert node.rules == []   # removed at once, not left for the release


def test_networkpolicy_is_not_proven_and_node_access_is_needed() -> None:
    trig = NetworkCut(NS(target=None), {"via": "networkpolicy"})
    assert trig.fire() == {"via": "networkpolicy"}
    with pytest.raises(FaultNotLanded, match="not proven on this cluster"):
        trig.wait_landed(1)
    with pytest.raises(CannotOnThisBackend, match="node_access: local"):
        _target("none").network_cut()
    assert NetworkCut.check_params({"via": "netpol"}) != [] and NetworkCut.check_params({}) == []
