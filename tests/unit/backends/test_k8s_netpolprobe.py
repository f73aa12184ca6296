"""The NetworkPolicy probe on a mocked API: a fake cluster whose client pod logs one connection attempt
per log read, connected unless an enforcing CNI sees the deny policy. Enforced, not enforced and every
inconclusive path, and that whatever it created is deleted on every outcome. The real run (not
enforced on the loopback cluster) is in docs/kubernetes.md."""
from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from pytest_chaosdrill.backends.k8s import netpolprobe
from pytest_chaosdrill.backends.k8s.spec import MANAGED_LABEL, RUN_LABEL


class FakeCluster:
    """CoreV1Api and NetworkingV1Api in one: pods, their logs, policies."""

    def __init__(self, enforcing: bool = True, baseline: bool = True, comes_back: bool = True,
                 waiting: str | None = None, policy_error: int | None = None) -> None:
        self.enforcing, self.baseline, self.comes_back = enforcing, baseline, comes_back
        self.waiting, self.policy_error = waiting, policy_error
        self.pods: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.attempts: list[str] = []
        self.policy_was_seen = False

    # -- pods --------------------------------------------------------------------------------------
    def create_namespaced_pod(self, ns: str, body: dict[str, Any]) -> None:
        self.pods[body["metadata"]["name"]] = body

    def read_namespaced_pod(self, name: str, ns: str) -> Any:
        if name not in self.pods:
            raise ApiException(status=404, reason="Not Found")
        waiting = NS(reason=self.waiting) if self.waiting else None
        return NS(status=NS(phase="Pending" if waiting else "Running", pod_ip="10.244.2.9",
                            container_statuses=[NS(state=NS(waiting=waiting))]))

    def delete_namespaced_pod(self, name: str, ns: str, grace_period_seconds: int = 0) -> None:
        if self.pods.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")

    def read_namespaced_pod_log(self, name: str, ns: str, timestamps: bool = False) -> str:
        assert name.endswith("-client") and timestamps
        blocked = bool(self.policies) and self.enforcing
        self.policy_was_seen |= blocked
        ok = self.baseline and not blocked and (self.comes_back or not self.policy_was_seen)
        n = len(self.attempts) + 1
        self.attempts.append(f"2026-12-04T20:00:{n % 60:02d}.000000000Z {n} {'open' if ok else 'closed TimeoutError'}")
        return "\n".join(self.attempts) + "\n"

    # -- policies ----------------------------------------------------------------------------------
    def create_namespaced_network_policy(self, ns: str, body: dict[str, Any]) -> None:
        if self.policy_error:
            raise ApiException(status=self.policy_error, reason="Forbidden")
        self.policies[body["metadata"]["name"]] = body

    def delete_namespaced_network_policy(self, name: str, ns: str) -> None:
        if self.policies.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netpolprobe.time, "sleep", lambda s: None)


def _run(c: FakeCluster, **kw: Any) -> dict[str, Any]:
    return netpolprobe.probe_networkpolicy(c, c, "chaosdrill", "img:1", "run-1", start_s=kw.pop("start_s", 2.0),
                                           cut_s=kw.pop("cut_s", 0.5))


def test_enforced_when_the_policy_stops_connections_and_they_come_back() -> None:
    c = FakeCluster(enforcing=True)
    out = _run(c)
    assert out["enforced"] is True and "came back" in out["why"]
    ev = out["evidence"]
    assert ev["policy_applied_s"] <= ev["policy_removed_s"] and ev["server_ip"] == "10.244.2.9"
    assert [line.split()[-1] for line in ev["attempts_under_policy"]][-3:] == ["TimeoutError"] * 3
    assert any(line.endswith(" open") for line in ev["attempts_after_policy"])
    assert c.pods == {} and c.policies == {} and out["cleanup"] == []


def test_pods_and_policy_carry_the_labels_the_reaper_selects() -> None:
    c = FakeCluster(enforcing=False)
    seen: dict[str, Any] = {}
    create = c.create_namespaced_network_policy
    c.create_namespaced_network_policy = lambda ns, body: (seen.update(body), create(ns, body))  # type: ignore[method-assign]
    pods: list[dict[str, Any]] = []
    make = c.create_namespaced_pod
    c.create_namespaced_pod = lambda ns, body: (pods.append(body), make(ns, body))  # type: ignore[method-assign]
    _run(c)
    for obj in [seen, *pods]:
        assert obj["metadata"]["labels"][MANAGED_LABEL] == "pytest-chaosdrill"
        assert obj["metadata"]["labels"][RUN_LABEL] == "run-1"
    assert seen["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in seen["spec"]   # deny all ingress
    server = next(p for p in pods if p["metadata"]["name"].endswith("-server"))
    assert set(seen["spec"]["podSelector"]["matchLabels"].items()) <= set(server["metadata"]["labels"].items())
    client = next(p for p in pods if p["metadata"]["name"].endswith("-client"))
    assert not set(seen["spec"]["podSelector"]["matchLabels"].items()) <= set(client["metadata"]["labels"].items())


def test_not_enforced_when_connections_go_on_under_the_policy() -> None:
    c = FakeCluster(enforcing=False)
    out = _run(c)
    assert out["enforced"] is False and "did not stop a connection" in out["why"]
    assert out["evidence"]["attempts_under_policy"] and all(
        line.endswith(" open") for line in out["evidence"]["attempts_under_policy"])
    assert c.pods == {} and c.policies == {}


@pytest.mark.parametrize("cluster, why", [
    (FakeCluster(baseline=False), "never connected"),                       # no baseline: never "not enforced"
    (FakeCluster(comes_back=False), "did not come back"),                   # a broken listener, not the policy
    (FakeCluster(waiting="ErrImagePull"), "cannot start: ErrImagePull"),
    (FakeCluster(policy_error=403), "could not run: ApiException"),
])
def test_inconclusive_is_not_proven_and_leaves_nothing(cluster: FakeCluster, why: str) -> None:
    out = _run(cluster)
    assert out["enforced"] is None and why in out["why"], out["why"]
    assert cluster.pods == {} and cluster.policies == {} and out["cleanup"] == []


def test_what_cannot_be_deleted_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    c = FakeCluster(enforcing=False)

    def refuse(name: str, ns: str, grace_period_seconds: int = 0) -> None:
        raise ApiException(status=403, reason="Forbidden")

    c.delete_namespaced_pod = refuse  # type: ignore[method-assign]
    wait = netpolprobe._wait
    monkeypatch.setattr(netpolprobe, "_wait", lambda check, deadline_s, poll_s=0.3: wait(check, min(deadline_s, 0.5)))
    out = _run(c)
    assert out["enforced"] is False
    assert sum("403 Forbidden" in line for line in out["cleanup"]) == 2 and "k8s-reap" in out["cleanup"][-1]
