"""kubernetes.network_cut on a mocked API and node: the rules it inserts (status port and loopback
kept), that the probe from inside the namespace is the proof, that the rules always come out, and that
a NetworkPolicy cut happens only where the NetworkPolicy probe proved enforcement (else NOT PROVEN,
naming the probe's result). The real proof is a cluster run (docs/kubernetes.md)."""
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


class FakeBackend:
    """The backend's NetworkPolicy probe result and NetworkingV1Api; an enforcing cluster's node drops the
    probe while the cut's policy exists."""

    def __init__(self, node: FakeNode, enforced: bool | None) -> None:
        self.node, self.found, self.calls = node, {"enforced": enforced, "why": "the probe's words"}, 0
        self.networking = self
        self.policies: dict[str, Any] = {}

    def networkpolicy_probe(self, spec: Any) -> dict[str, Any]:
        self.calls += 1
        return self.found

    def create_namespaced_network_policy(self, ns: str, body: dict[str, Any]) -> None:
        self.policies[body["metadata"]["name"]] = body
        if self.found["enforced"]:
            self.node.rules.append(["policy"])

    def delete_namespaced_network_policy(self, name: str, ns: str) -> None:
        del self.policies[name]
        self.node.rules = [r for r in self.node.rules if r != ["policy"]]


def _policy_target(monkeypatch: pytest.MonkeyPatch, enforced: bool | None) -> tuple[KubeTarget, FakeBackend]:
    node = FakeNode()
    node.install(monkeypatch)
    t = _target()
    t._backend = FakeBackend(node, enforced)
    t.labels = {"app.kubernetes.io/managed-by": "pytest-chaosdrill", "chaosdrill.io/target-id": "abc"}
    return t, t._backend


def test_policy_cut_where_the_probe_proved_enforcement(monkeypatch: pytest.MonkeyPatch) -> None:
    t, backend = _policy_target(monkeypatch, True)
    trig = NetworkCut(NS(target=t), {"via": "networkpolicy"})
    info = trig.fire()
    assert info["via"] == "networkpolicy" and info["proven"] is True
    assert info["probe_before"] is True and info["probe_during"] is False
    (policy,) = backend.policies.values()
    assert policy["spec"]["podSelector"]["matchLabels"] == t.labels
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == []
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]   # status kept
    assert trig.wait_landed(1)["proven"] is True
    out = trig.release()
    assert out["policy_removed"] is True and out["restored"] is True and backend.policies == {}


def test_policy_cut_not_landed_removes_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_chaosdrill.backends.k8s as k8s

    monkeypatch.setattr(k8s, "POLICY_LANDS_S", 0.5)   # the probe keeps opening: retried until this deadline
    t, backend = _policy_target(monkeypatch, True)
    backend.create_namespaced_network_policy = lambda ns, body: backend.policies.update(  # type: ignore[method-assign]
        {body["metadata"]["name"]: body})   # enforced by the probe's pods, yet this one stops nothing
    trig = NetworkCut(NS(target=t), {"via": "networkpolicy"})
    info = trig.fire()
    assert info["proven"] is False and info["probe_during"] is True
    with pytest.raises(FaultNotLanded, match="did not open before the cut"):
        trig.wait_landed(1)
    assert backend.policies == {}


@pytest.mark.parametrize("enforced, words", [(False, "found not enforced"), (None, "found not proven")])
def test_policy_cut_not_proven_unless_enforced(monkeypatch: pytest.MonkeyPatch, enforced: bool | None,
                                               words: str) -> None:
    t, backend = _policy_target(monkeypatch, enforced)
    trig = NetworkCut(NS(target=t), {"via": "networkpolicy"})
    info = trig.fire()
    assert info["proven"] is False and "probe_before" not in info and backend.policies == {}
    with pytest.raises(FaultNotLanded, match=f"{words} \\(the probe's words\\)"):
        trig.wait_landed(1)
    assert t.network_restore()["nothing_cut"] is True


def test_node_access_is_needed_and_via_checked() -> None:
    with pytest.raises(CannotOnThisBackend, match="node_access: local"):
        _target("none").network_cut()
    assert NetworkCut.check_params({"via": "netpol"}) != [] and NetworkCut.check_params({}) == []


def test_the_backend_runs_the_probe_once_per_namespace_and_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_chaosdrill.backends.k8s import KubernetesBackend, netpolprobe

    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(netpolprobe, "probe_networkpolicy",
                        lambda core, net, ns, image, run_id, pull: calls.append((ns, image)) or {"enforced": False})
    b = KubernetesBackend.__new__(KubernetesBackend)
    b._netpol, b.core, b.networking, b.run_id = {}, None, None, "r"
    b.namespace = lambda spec: {}   # type: ignore[method-assign]
    specs = [NS(namespace="a", image="i", image_pull_policy="Never"), NS(namespace="a", image="i", image_pull_policy="Never"),
             NS(namespace="a", image="j", image_pull_policy="Never")]
    assert [b.networkpolicy_probe(s)["enforced"] for s in specs] == [False] * 3
    assert calls == [("a", "i"), ("a", "j")]
