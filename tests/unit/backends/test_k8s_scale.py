"""kubernetes.scale on a mocked API: proven only from the Deployment's status and the pods it lists
(the controller observed the change, ready replicas and pods equal to the request)."""
from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

from pytest_chaosdrill.backends.k8s import KubeTarget
from pytest_chaosdrill.faults.kubernetes import Scale


class FakeApps:
    """A Deployment whose status follows a patch after ``lag`` reads; ``stuck_ready`` caps readyReplicas."""

    def __init__(self, replicas: int, lag: int = 2, stuck_ready: int | None = None) -> None:
        self.spec_replicas, self.status_replicas, self.generation = replicas, replicas, 1
        self.lag, self.reads, self.stuck_ready, self.patches = lag, 0, stuck_ready, []

    def patch_namespaced_deployment_scale(self, name: str, ns: str, body: dict) -> None:
        self.patches.append(body)
        self.spec_replicas, self.generation, self.reads = body["spec"]["replicas"], self.generation + 1, 0

    def read_namespaced_deployment(self, name: str, ns: str) -> Any:
        self.reads += 1
        observed = self.generation if self.reads > self.lag else self.generation - 1
        if observed == self.generation:
            self.status_replicas = self.spec_replicas
        ready = self.status_replicas if self.stuck_ready is None else min(self.stuck_ready, self.status_replicas)
        return NS(metadata=NS(generation=self.generation), spec=NS(replicas=self.spec_replicas),
                  status=NS(observed_generation=observed, replicas=self.status_replicas or None,
                            ready_replicas=ready or None, available_replicas=ready or None))


def _target(apps: FakeApps) -> KubeTarget:
    t = KubeTarget.__new__(KubeTarget)
    t.apps, t.ns, t.name, t.proofs = apps, "ns", "cd-x", []
    t.pods = lambda: [NS(metadata=NS(name=f"p{i}")) for i in range(apps.status_replicas)]
    return t


def test_scale_is_proven_from_the_deployment_status() -> None:
    apps = FakeApps(1)
    out = _target(apps).scale_to(3, timeout=5)
    assert out["proven"] is True and out["replicas_before"] == 1 and apps.patches == [{"spec": {"replicas": 3}}]
    assert out["deployment_status"]["ready_replicas"] == 3 and out["pods"] == ["p0", "p1", "p2"]
    out = _target(apps).scale_to(0, timeout=5)
    assert out["proven"] is True and out["deployment_status"]["replicas"] == 0 and out["pods"] == []


def test_not_proven_while_replicas_are_not_ready() -> None:
    apps = FakeApps(1, stuck_ready=1)
    out = _target(apps).scale_to(2, timeout=0.5)
    assert out["proven"] is False and out["deployment_status"]["ready_replicas"] == 1


def test_params() -> None:
    assert Scale.check_params({"replicas": 0}) == []
    assert any("required" in p for p in Scale.check_params({}))
    assert any("0 or more" in p for p in Scale.check_params({"replicas": -1}))
