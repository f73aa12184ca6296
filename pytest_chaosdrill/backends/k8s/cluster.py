"""The cluster side of the ``kubernetes`` backend: the API client, the namespace interlock, the reaper
of what killed runs left, and the evidence (events, logs) of the pods a drill created."""
from __future__ import annotations

import contextlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..base import BackendUnavailable
from .spec import ALLOW_LABEL, ALLOW_VALUE, MANAGED_LABEL, MANAGED_VALUE, RUN_LABEL

INSTALL_HINT = "pip install 'pytest-chaosdrill[kubernetes]'"


def api_client(context: str | None = None) -> Any:
    """An API client from ``KUBECONFIG`` (or ``~/.kube/config``, or in-cluster), for ``context``
    (default: ``CHAOSDRILL_K8S_CONTEXT``, else the kubeconfig's current context)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise BackendUnavailable(f"kubernetes backend: the kubernetes client is not installed ({INSTALL_HINT})") from None
    context = context or os.environ.get("CHAOSDRILL_K8S_CONTEXT") or None
    try:
        return config.new_client_from_config(context=context)
    except Exception as first:  # noqa: BLE001 - the kubeconfig loader raises several types
        if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            return client.ApiClient()
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise BackendUnavailable(f"kubernetes backend: no usable kubeconfig ({where}"
                                 f"{', context ' + context if context else ''}): {first}") from None


def check_namespace(core: Any, namespace: str) -> dict[str, Any]:
    """The namespace, if it exists and carries ``chaosdrill.io/drills=allowed``; else one clear line."""
    from kubernetes.client.exceptions import ApiException

    try:
        ns = core.read_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise BackendUnavailable(
                f"kubernetes backend: namespace {namespace!r} does not exist; create it and label it "
                f"{ALLOW_LABEL}={ALLOW_VALUE} (kubectl create namespace {namespace} && kubectl label namespace "
                f"{namespace} {ALLOW_LABEL}={ALLOW_VALUE})") from None
        raise BackendUnavailable(f"kubernetes backend: cannot read namespace {namespace!r}: "
                                 f"{exc.status} {exc.reason}") from None
    except Exception as exc:  # noqa: BLE001 - connection errors come as urllib3 types
        raise BackendUnavailable(f"kubernetes backend: the API server does not answer: {exc}") from None
    labels = ns.metadata.labels or {}
    if labels.get(ALLOW_LABEL) != ALLOW_VALUE:
        raise BackendUnavailable(
            f"kubernetes backend: refusing namespace {namespace!r}: it is not labelled {ALLOW_LABEL}={ALLOW_VALUE} "
            f"(drills run only where a person allowed them: kubectl label namespace {namespace} "
            f"{ALLOW_LABEL}={ALLOW_VALUE})")
    return {"name": namespace, "uid": ns.metadata.uid}


def managed_selector(run_id: str | None = None) -> str:
    sel = f"{MANAGED_LABEL}={MANAGED_VALUE}"
    return sel + (f",{RUN_LABEL}={run_id}" if run_id else "")


def delete_managed(apps: Any, core: Any, namespace: str, run_id: str | None = None,
                   older_than_s: float = 0.0, wait_s: float = 60.0, networking: Any = None) -> list[str]:
    """Delete the Deployments, ReplicaSets, pods, Secrets and (given ``networking``) NetworkPolicies this
    backend created in ``namespace`` (its labels only: never anything else), of one run or
    (``older_than_s``) of any run at least that old; wait until their pods are gone. Returns one line
    per deleted object."""
    from kubernetes.client.exceptions import ApiException

    from .spec import TARGET_LABEL

    sel = managed_selector(run_id)
    now = datetime.now(timezone.utc)
    gone: list[str] = []
    targets: set[str] = set()

    def old(obj: Any) -> bool:
        ts = obj.metadata.creation_timestamp
        return ts is None or (now - ts).total_seconds() >= older_than_s

    for dep in apps.list_namespaced_deployment(namespace, label_selector=sel).items:
        if old(dep):
            targets.add((dep.metadata.labels or {}).get(TARGET_LABEL, ""))
            with contextlib.suppress(ApiException):
                apps.delete_namespaced_deployment(dep.metadata.name, namespace, grace_period_seconds=0,
                                                  propagation_policy="Background")
                gone.append(f"deployment {namespace}/{dep.metadata.name} ({dep.metadata.labels.get(RUN_LABEL)})")
    # pods of a deleted Deployment are its, however young (its ReplicaSet may have just made one)
    for p in core.list_namespaced_pod(namespace, label_selector=sel).items:
        if old(p):
            targets.add((p.metadata.labels or {}).get(TARGET_LABEL, ""))
    targets.discard("")
    for target in sorted(targets):
        tsel = f"{sel},{TARGET_LABEL}={target}"
        for rs in apps.list_namespaced_replica_set(namespace, label_selector=tsel).items:
            with contextlib.suppress(ApiException):
                apps.delete_namespaced_replica_set(rs.metadata.name, namespace, grace_period_seconds=0)
    for secret in core.list_namespaced_secret(namespace, label_selector=sel).items:
        if old(secret):
            with contextlib.suppress(ApiException):
                core.delete_namespaced_secret(secret.metadata.name, namespace)
                gone.append(f"secret {namespace}/{secret.metadata.name}")
    if networking is not None:   # a NetworkPolicy probe's or cut's policy
        with contextlib.suppress(ApiException):
            for pol in networking.list_namespaced_network_policy(namespace, label_selector=sel).items:
                if old(pol):
                    with contextlib.suppress(ApiException):
                        networking.delete_namespaced_network_policy(pol.metadata.name, namespace)
                        gone.append(f"networkpolicy {namespace}/{pol.metadata.name}")
    deadline = time.monotonic() + wait_s
    left: list[str] = []
    while True:
        left = []
        for target in sorted(targets):
            for pod in core.list_namespaced_pod(namespace, label_selector=f"{sel},{TARGET_LABEL}={target}").items:
                left.append(pod.metadata.name)
                if pod.metadata.deletion_timestamp is None:
                    with contextlib.suppress(ApiException):
                        core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
                        gone.append(f"pod {namespace}/{pod.metadata.name}")
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if left:
        gone.append(f"NOT GONE after {wait_s:.0f} s: pods {sorted(left)}")
    return gone


def save_evidence(core: Any, namespace: str, selector: str, deployment: str, pod_names: set[str],
                  log_dir: Path) -> list[Path]:
    """Each pod's log (current and previous container) and the namespace's events about the drill's
    pods and Deployment, into ``log_dir``: ``k8s.pod.<name>.log``, ``k8s.events.json``."""
    from kubernetes.client.exceptions import ApiException

    log_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with contextlib.suppress(ApiException):
        pod_names |= {p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items}
    for name in sorted(pod_names):
        parts = []
        for previous in (True, False):
            try:
                text = core.read_namespaced_pod_log(name, namespace, previous=previous, timestamps=True)
            except ApiException:
                continue
            except Exception:  # noqa: BLE001 - a node that is gone
                continue
            parts.append(f"==> {'previous container' if previous else 'current container'} <==\n{text}")
        if parts:
            path = log_dir / f"k8s.pod.{name}.log"
            path.write_text("\n".join(parts), encoding="utf-8")
            out.append(path)
    try:
        events = core.list_namespaced_event(namespace).items
    except Exception:  # noqa: BLE001
        events = []
    # the pods, the Deployment and its ReplicaSets (named <deployment>-<hash>)
    mine = [e for e in events if e.involved_object and (e.involved_object.name in pod_names
            or (e.involved_object.name or "").startswith(deployment))]
    rows = [{"time": str(e.last_timestamp or e.event_time or e.first_timestamp), "type": e.type, "reason": e.reason,
             "object": f"{e.involved_object.kind}/{e.involved_object.name}", "count": e.count,
             "message": e.message} for e in mine]
    path = log_dir / "k8s.events.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    out.append(path)
    return out
