"""The kubernetes backend's safety on a real cluster: the namespace interlock, and nothing left behind
after Ctrl-C or SIGKILL of pytest mid-drill (SIGKILL: `chaosdrill k8s-reap` removes what the killed
run left, and nothing else). Needs KUBECONFIG and CHAOSDRILL_K8S_HARNESS_HOST (the loopback cluster of
.ci/k8s/up.sh, run by .ci/k8s/ci.sh); skips without them, fails under CHAOSDRILL_REQUIRE_KUBERNETES=1."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
NS = os.environ.get("CHAOSDRILL_K8S_NAMESPACE", "chaosdrill")
MANAGED = "app.kubernetes.io/managed-by=pytest-chaosdrill"


@pytest.fixture(scope="module")
def kube() -> Iterator[Any]:
    why = None
    if not os.environ.get("KUBECONFIG") or not os.environ.get("CHAOSDRILL_K8S_HARNESS_HOST"):
        why = "KUBECONFIG and CHAOSDRILL_K8S_HARNESS_HOST are not set (a cluster: .ci/k8s/up.sh)"
    else:
        try:
            from kubernetes import client, config

            api = config.new_client_from_config()
            client.VersionApi(api).get_code()
        except Exception as exc:  # noqa: BLE001
            why = f"no cluster answers: {exc}"
    if why:
        if os.environ.get("CHAOSDRILL_REQUIRE_KUBERNETES") == "1":
            pytest.fail(f"CHAOSDRILL_REQUIRE_KUBERNETES=1 but {why}")
        pytest.skip(why)
    yield client.CoreV1Api(api), client.AppsV1Api(api)
    api.close()


def _drill(tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "drills", "-m", "phase2", "-k", "drill_1",
         "--chaosdrill-backend", "kubernetes", f"--chaosdrill-evidence-dir={tmp_path / 'evidence'}", *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_running_pod(core: Any, proc: subprocess.Popen[bytes], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for p in core.list_namespaced_pod(NS, label_selector=MANAGED).items:
            if p.status.phase == "Running" and p.metadata.deletion_timestamp is None:
                return p.metadata.name
        time.sleep(0.2)
    raise AssertionError(f"no drill pod ran within {timeout} s (pytest exit {proc.poll()})")


def _managed(core: Any, apps: Any) -> list[str]:
    return ([f"deployment {d.metadata.name}" for d in apps.list_namespaced_deployment(NS, label_selector=MANAGED).items]
            + [f"pod {p.metadata.name}" for p in core.list_namespaced_pod(NS, label_selector=MANAGED).items]
            + [f"secret {x.metadata.name}" for x in core.list_namespaced_secret(NS, label_selector=MANAGED).items])


def _gone(core: Any, apps: Any, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _managed(core, apps)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_an_unlabelled_namespace_is_refused_in_one_line(kube: Any) -> None:
    core, _ = kube
    name = f"chaosdrill-unlabelled-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "k8s-reap", "--namespace", name],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2
        line = out.stderr.strip()
        assert "\n" not in line and f"refusing namespace '{name}'" in line and "chaosdrill.io/drills=allowed" in line
    finally:
        core.delete_namespace(name)


def test_ctrl_c_mid_drill_leaves_nothing(kube: Any, tmp_path: Path) -> None:
    core, apps = kube
    proc = _drill(tmp_path)
    try:
        _wait_running_pod(core, proc)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert _gone(core, apps) == []


def test_sigkill_mid_drill_then_reap_removes_only_the_drills_resources(kube: Any, tmp_path: Path) -> None:
    core, apps = kube
    bystander = f"bystander-{uuid.uuid4().hex[:6]}"
    apps.create_namespaced_deployment(NS, {
        "metadata": {"name": bystander, "labels": {"app": bystander}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": bystander}},
                 "template": {"metadata": {"labels": {"app": bystander}}, "spec": {"containers": [
                     {"name": "c", "image": os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest"),
                      "imagePullPolicy": "IfNotPresent", "command": ["sleep", "600"]}]}}}})
    proc = _drill(tmp_path)
    try:
        pod = _wait_running_pod(core, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert any(pod in m for m in _managed(core, apps)), "SIGKILL left nothing to reap: the test proves nothing"
        out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "k8s-reap", "--namespace", NS],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert _gone(core, apps, timeout=5) == []
        assert apps.read_namespaced_deployment(bystander, NS).metadata.deletion_timestamp is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        apps.delete_namespaced_deployment(bystander, NS)


def test_selfcheck_probe_finds_networkpolicy_not_enforced_and_leaves_nothing(kube: Any) -> None:
    """The loopback cluster's CNI (bridge) enforces no NetworkPolicy: the probe must say so, from a
    connection made under a deny-all policy, and delete its pods and policy."""
    from kubernetes import client

    core, apps = kube
    net = client.NetworkingV1Api(core.api_client)
    out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "k8s-selfcheck", "--namespace", NS,
                          "--image", os.environ.get("CHAOSDRILL_IMAGE", "chaosdrill/target:latest")],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("networkpolicy: "))
    assert line.startswith("networkpolicy: not enforced (a deny-all ingress policy did not stop a connection"), line
    assert "[probe took" in line and "LEFT BEHIND" not in line
    assert _gone(core, apps, timeout=5) == []
    assert net.list_namespaced_network_policy(NS, label_selector=MANAGED).items == []


def test_reap_removes_a_left_networkpolicy_only(kube: Any) -> None:
    from kubernetes import client

    core, _ = kube
    net = client.NetworkingV1Api(core.api_client)
    mine, other = f"cd-netpol-{uuid.uuid4().hex[:6]}-deny", f"bystander-{uuid.uuid4().hex[:6]}"
    for name, labels in ((mine, {"app.kubernetes.io/managed-by": "pytest-chaosdrill", "chaosdrill.io/run-id": "x"}),
                         (other, {"app": other})):
        net.create_namespaced_network_policy(NS, {"metadata": {"name": name, "labels": labels},
                                                  "spec": {"podSelector": {"matchLabels": {"none": "x"}}}})
    try:
        out = subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "k8s-reap", "--namespace", NS],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"removed networkpolicy {NS}/{mine}" in out.stdout
        assert [p.metadata.name for p in net.list_namespaced_network_policy(NS).items] == [other]
    finally:
        for name in (mine, other):
            with contextlib.suppress(Exception):
                net.delete_namespaced_network_policy(name, NS)
