"""The kubernetes backend's safety on a real cluster: the namespace interlock, and nothing left behind
after Ctrl-C or SIGKILL of pytest mid-drill (SIGKILL: `chaosdrill k8s-reap` removes what the killed
run left, and nothing else). Needs KUBECONFIG and CHAOSDRILL_K8S_HARNESS_HOST (the loopback cluster of
.ci/k8s/up.sh, run by .ci/k8s/ci.sh); skips without them, fails under CHAOSDRILL_REQUIRE_KUBERNETES=1."""
from __future__ import annotations

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
