"""The ``kubernetes`` backend: the service runs as a Deployment in a namespace a person allowed
(labelled ``chaosdrill.io/drills=allowed``); the venue simulator and the fault proxy run in the pytest
process, the proxy listening on ``harness_host``, an address of this machine the pods reach. Status is
read through a loopback relay to the serving pod's IP (no kube-proxy, DNS or port-forward needed).
Everything the backend creates carries its run id and is deleted after any outcome; what a killed run
left is reaped at the next session's start. See ``docs/kubernetes.md``."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlsplit

from ...target import RenderedTarget
from ...wiring import ProxyLink, VenueEndpoints
from ..base import (KILL, NODE_LOSS, OOM_KILL, POD_DELETE, POD_NETWORK_CUT, POD_TEMPLATE, SCALE, START, Backend, BackendSettings, BackendUnavailable, CannotOnThisBackend, DrillSite,
                    Harness, key_placeholders)
from . import cluster, netpolprobe, nodeaccess
from .relay import PodRelay
from .spec import MANAGED_LABEL, MANAGED_VALUE, RUN_LABEL, TARGET_LABEL, KubeSpec

if TYPE_CHECKING:  # pragma: no cover
    from ...target import TargetConfig

CONTAINER = "service"
CONTROL_DIR = "/control"
DATA_DIR = "/data"
#: Leftovers of killed runs older than this are reaped at session start (younger: a parallel session's).
REAP_AFTER_S = 3600.0
#: How long a NetworkPolicy's creation or deletion may take to show in the pod's connectivity.
POLICY_LANDS_S = 10.0


def _bindable(host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


class KubernetesBackend(Backend):
    """Runs the target as a Deployment; pod kill (SIGKILL of the container, proven by the API's
    ``restartCount`` and exit code 137) and restart (scale to zero and back)."""

    name = "kubernetes"
    capabilities = frozenset({START, KILL, POD_DELETE, NODE_LOSS, POD_TEMPLATE, OOM_KILL, SCALE, POD_NETWORK_CUT})
    extra = "kubernetes"

    def __init__(self, settings: BackendSettings) -> None:
        super().__init__(settings)
        self.run_id = re.sub(r"[^a-z0-9.-]+", "-", (settings.run_id + (
            f"-w{settings.worker_index}" if settings.worker_index else "")).lower()).strip("-.")[:63]
        self.api: Any = None
        self.core: Any = None
        self.apps: Any = None
        self.networking: Any = None
        self._netpol: dict[tuple[str, str], dict[str, Any]] = {}   # (namespace, image) -> the probe's result
        self._checked: str | None = None
        self._namespaces: dict[str, dict[str, Any]] = {}
        self._targets: list[KubeTarget] = []

    def check_available(self) -> None:
        """The client is installed and the kubeconfig answers (namespaces are checked per target file)."""
        if self._checked is None:
            try:
                self._connect()
                self._checked = ""
            except BackendUnavailable as exc:
                self._checked = str(exc)
        if self._checked:
            raise BackendUnavailable(self._checked.removeprefix("kubernetes backend: "))

    def _connect(self) -> None:
        if self.api is not None:
            return
        from kubernetes import client

        self.api = cluster.api_client()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)
        try:
            client.VersionApi(self.api).get_code()
        except Exception as exc:  # noqa: BLE001
            self.api = None
            raise BackendUnavailable(f"kubernetes backend: the API server does not answer: {exc}") from None

    def networkpolicy_probe(self, spec: KubeSpec) -> dict[str, Any]:
        """Whether the cluster enforces NetworkPolicy in the spec's namespace, proven by
        :func:`netpolprobe.probe_networkpolicy` with the spec's image; run once per session."""
        key = (spec.namespace, spec.image)
        if key not in self._netpol:
            self.namespace(spec)
            self._netpol[key] = netpolprobe.probe_networkpolicy(self.core, self.networking, spec.namespace,
                                                                spec.image, self.run_id, spec.image_pull_policy)
        return self._netpol[key]

    def namespace(self, spec: KubeSpec) -> dict[str, Any]:
        """The allowed namespace (checked once); leftovers of killed runs in it reaped first."""
        if spec.namespace not in self._namespaces:
            self._connect()
            info = cluster.check_namespace(self.core, spec.namespace)
            self.reaped += cluster.delete_managed(self.apps, self.core, spec.namespace, older_than_s=REAP_AFTER_S,
                                                  networking=self.networking)
            self._namespaces[spec.namespace] = info
        return self._namespaces[spec.namespace]

    @contextlib.contextmanager
    def harness(self, site: DrillSite, config: "TargetConfig") -> Iterator[Harness]:
        """The venue (loopback) and the fault proxy in this process; the proxy listens on the spec's
        ``harness_host``, the address the pods reach this machine at."""
        from ...proxy import ProxyServer
        from ...venue import VenueServer

        spec = KubeSpec.from_config(config)
        self.namespace(spec)
        host = spec.harness_host
        if not host:
            raise BackendUnavailable(
                f"kubernetes backend: {spec.source}: no harness host: set kubernetes.harness_host or "
                "CHAOSDRILL_K8S_HARNESS_HOST to an address of this machine the pods reach (the loopback "
                "cluster's: the first node's bridge gateway, .ci/k8s/up.sh prints it)")
        if not _bindable(host):
            raise BackendUnavailable(f"kubernetes backend: harness host {host} is not an address of this machine")
        key = config.drill_key()   # the drill's demo key (fresh, or the target file's venue.key)
        venue = VenueServer(port=0, seed=self.settings.venue_seed, keys=[key]).start()
        try:
            server = ProxyServer().start()
            try:
                proxy = server.create_proxy("venue", upstream=f"{venue.host}:{venue.port}", listen=f"{host}:0")
                yield Harness(venue=venue.control, proxy=ProxyLink("venue", proxy, proxy.listen, in_process=True),
                              proxy_listen=proxy.listen, local_hosts=(host,),
                              info={"venue": venue.rest_url, "proxy": proxy.listen, "namespace": spec.namespace},
                              api_key=key)
            finally:
                server.stop()
        finally:
            venue.stop()

    def create_target(self, config: "TargetConfig", site: DrillSite, harness: Harness) -> "KubeTarget":
        """The drill's Deployment (created on the first start), its target file rendered as the pods see
        it (env, args) and as the host reads it (status through the relay, files in the drill folder)."""
        from ..docker import _fill  # one home for placeholder filling with field-naming errors

        spec = KubeSpec.from_config(config)
        self.namespace(spec)
        ep = VenueEndpoints.through(harness.proxy_listen)
        common = {"venue_rest_url": ep.rest_url, "venue_ws_public_url": ep.ws_public_url,
                  "venue_ws_private_url": ep.ws_private_url, "drill_id": site.drill_id, **key_placeholders(harness)}
        inside = {**common, "host": "0.0.0.0", "status_port": spec.status_port, "python": "python3",
                  "control_dir": CONTROL_DIR, "data_dir": DATA_DIR, "target_dir": "."}
        target = KubeTarget(self, spec, site)
        target.proxy_listen = harness.proxy_listen   # what a network cut's probe connects to from inside the pod
        host_view = config.render({**common, "host": "127.0.0.1", "status_port": target.relay.port,
                                   "python": "python3", "target_dir": str(config.folder),
                                   "control_dir": str(site.control_dir), "data_dir": str(site.data_dir)})
        env = {k: _fill(config, f"env.{k}", v, inside) for k, v in config.env.items()}
        env.update({k: _fill(config, f"kubernetes.env.{k}", v, inside) for k, v in spec.env.items()})
        args = [_fill(config, f"kubernetes.command[{i}]", c, inside) for i, c in enumerate(spec.command or ())]
        target.target = RenderedTarget(config=config, command=args, env=env, status_url=host_view.status_url,
                                       health_url=host_view.health_url, files=host_view.files,
                                       hooks=host_view.hooks, hooks_log=host_view.hooks_log,
                                       extra_secrets=list(host_view.extra_secrets))
        self._targets.append(target)
        return target

    def close(self) -> None:
        """Remove every target still there (evidence saved first), then anything else labelled with
        this run's id in the namespaces used."""
        for target in list(self._targets):
            with contextlib.suppress(Exception):
                target.close()
        self._targets.clear()
        if self.api is not None:
            for ns in self._namespaces:
                with contextlib.suppress(Exception):
                    cluster.delete_managed(self.apps, self.core, ns, run_id=self.run_id, networking=self.networking)
            with contextlib.suppress(Exception):
                self.api.close()


#: Events of a pod the control plane evicts from a lost node (1.20's taint manager; newer versions).
EVICTION_REASONS = frozenset({"TaintManagerEviction", "NodeNotReady", "Evicted", "DeletingPod"})


def _pod_has(pod: Any, change: dict[str, Any]) -> bool:
    """Whether the pod runs the changed template (its container's image, or memory limit, as asked)."""
    c = next((c for c in pod.spec.containers or [] if c.name == CONTAINER), None)
    if c is None:
        return False
    if "image" in change and c.image != change["image"]:
        return False
    want = ((change.get("resources") or {}).get("limits") or {}).get("memory")
    have = ((c.resources.limits or {}) if c.resources else {}).get("memory")
    return want is None or str(have) == str(want)


def _node_ready(node: Any) -> str:
    """The node's ``Ready`` condition status: "True", "False" or "Unknown" (a node that stopped reporting)."""
    return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "Unknown")


class KubeTarget:
    """One drill's service: a Deployment of ``replicas`` pods. The first :meth:`start` creates it; a
    stop scales it to zero and the next start back up (hostPath ``/control`` and ``/data`` keep the
    data); the kubelet restarts a killed container itself (``restartPolicy: Always``)."""

    backend = "kubernetes"

    def __init__(self, backend: KubernetesBackend, spec: KubeSpec, site: DrillSite) -> None:
        self._backend = backend
        self.core, self.apps = backend.core, backend.apps
        self.spec = spec
        self.site = site
        self.log_dir = site.log_dir
        self.ns = spec.namespace
        suffix = uuid.uuid4().hex[:8]
        slug = re.sub(r"[^a-z0-9-]+", "-", site.drill_id.lower()).strip("-")[:40].strip("-") or "drill"
        self.name = f"cd-{slug}-{suffix}"
        self.target_id = suffix
        self.labels = {MANAGED_LABEL: MANAGED_VALUE, RUN_LABEL: backend.run_id, TARGET_LABEL: suffix}
        self.selector = ",".join(f"{k}={v}" for k, v in self.labels.items())
        self.target: RenderedTarget  # set by the backend right after construction
        self.created = False
        self.starts = 0
        self.proofs: list[dict[str, Any]] = []
        self.pods_seen: dict[str, dict[str, Any]] = {}   # name -> {uid, node, ip}
        self._serving: tuple[str, int] | None = None
        self._pending_kill: dict[str, Any] | None = None
        self._stopped_kubelets: dict[str, list[int]] = {}   # node -> kubelet pids this target SIGSTOPped
        self._template_before: dict[str, Any] | None = None  # the container's image/resources before a template fault
        self._cut: dict[str, Any] | None = None   # a network cut in force: its namespace and rules
        self.proxy_listen = ""
        self.api_client = backend.api
        self._closed = False
        self._stop_poll = threading.Event()
        self.relay = PodRelay(lambda: self._serving).start()
        self._poller = threading.Thread(target=self._poll, name=f"chaosdrill-k8s-{suffix}", daemon=True)
        self._poller.start()

    @property
    def shares_host_clock(self) -> bool:
        """The pods run on this machine (``node_access: local``): their monotonic clock is the harness's."""
        return self.spec.node_access == "local"

    # -- what runs now (polled: the relay's upstream, the pods seen for evidence) -------------------
    def pods(self) -> list[Any]:
        return self.core.list_namespaced_pod(self.ns, label_selector=self.selector).items

    def _poll(self) -> None:
        while not self._stop_poll.wait(0.1):
            if not self.created:
                continue
            try:
                pods = self.pods()
            except Exception:  # noqa: BLE001 - an API hiccup: keep the last answer
                continue
            live = []
            for p in pods:
                self.pods_seen.setdefault(p.metadata.name, {"uid": p.metadata.uid})
                self.pods_seen[p.metadata.name].update(node=p.spec.node_name, ip=p.status.pod_ip)
                if p.metadata.deletion_timestamp is None and p.status.phase == "Running" and p.status.pod_ip:
                    live.append(p)
            live.sort(key=lambda p: p.metadata.creation_timestamp)
            serving = (live[-1].status.pod_ip, self.spec.status_port) if live else None
            if serving != self._serving:
                self.relay.follow(serving)
            self._serving = serving

    def _container(self, pod: Any) -> Any:
        for cs in pod.status.container_statuses or []:
            if cs.name == CONTAINER:
                return cs
        return None

    def current_pod(self) -> Any:
        live = [p for p in self.pods() if p.metadata.deletion_timestamp is None and p.status.phase == "Running"]
        live.sort(key=lambda p: p.metadata.creation_timestamp)
        return live[-1] if live else None

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def _secret_env(self) -> list[str]:
        from ...redaction import name_looks_secret

        return sorted(k for k in self.target.env if name_looks_secret(k))

    def _deployment(self) -> dict[str, Any]:
        health = urlsplit(self.target.health_url).path or "/"
        container: dict[str, Any] = {
            "name": CONTAINER, "image": self.spec.image, "imagePullPolicy": self.spec.image_pull_policy,
            # values whose names look secret come from the drill's Secret, not the Deployment's spec
            "env": [{"name": k, "valueFrom": {"secretKeyRef": {"name": self.name, "key": k}}} if k in self._secret_env
                    else {"name": k, "value": v} for k, v in sorted(self.target.env.items())],
            "ports": [{"containerPort": self.spec.status_port, "name": "status"}],
            "readinessProbe": {"httpGet": {"path": health, "port": self.spec.status_port},
                               "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 2},
            "volumeMounts": [{"name": "control", "mountPath": CONTROL_DIR}, {"name": "data", "mountPath": DATA_DIR}],
        }
        if self.target.command:
            container["args"] = list(self.target.command)   # as docker's Cmd: the image's entrypoint stays
        if self.spec.resources:
            container["resources"] = dict(self.spec.resources)
        tolerate = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
                    for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")]
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": self.name, "namespace": self.ns, "labels": dict(self.labels)},
            "spec": {
                "replicas": self.spec.replicas, "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {TARGET_LABEL: self.target_id}},
                "template": {
                    "metadata": {"labels": dict(self.labels)},
                    "spec": {
                        "containers": [container], "enableServiceLinks": False,
                        "automountServiceAccountToken": False, "tolerations": tolerate,
                        "terminationGracePeriodSeconds": int(max(1, self.target.config.stop_timeout_s)),
                        # the host user: what the service writes in /data and /control pytest can read and delete
                        "securityContext": {"runAsUser": os.getuid(), "runAsGroup": os.getgid()},
                        "volumes": [
                            {"name": "control", "hostPath": {"path": str(self.site.control_dir), "type": "Directory"}},
                            {"name": "data", "hostPath": {"path": str(self.site.data_dir), "type": "Directory"}}],
                    }},
            }}

    def start(self) -> None:
        """Create the Deployment (first time), or scale it back up after a stop; after a kill, confirm
        from the API that the kubelet restarted the killed container (exit 137, ``restartCount`` +1)."""
        if self._closed:
            raise RuntimeError(f"kubernetes target {self.name} was closed")
        self.starts += 1
        if not self.created:
            self.site.create()
            if self._secret_env:
                self.core.create_namespaced_secret(self.ns, {
                    "metadata": {"name": self.name, "namespace": self.ns, "labels": dict(self.labels)},
                    "type": "Opaque", "stringData": {k: self.target.env[k] for k in self._secret_env}})
            self.apps.create_namespaced_deployment(self.ns, self._deployment())
            self.created = True
            self.proofs.append({"action": "create", "deployment": self.name, "replicas": self.spec.replicas,
                                "mono": time.monotonic()})
            return
        if self._pending_kill is not None:
            self._confirm_kill(self._pending_kill)
            self._pending_kill = None
        dep = self.apps.read_namespaced_deployment(self.name, self.ns)
        if not dep.spec.replicas:
            self.apps.patch_namespaced_deployment_scale(self.name, self.ns, {"spec": {"replicas": self.spec.replicas}})
            self.proofs.append({"action": "scale", "replicas": self.spec.replicas, "mono": time.monotonic()})

    def _confirm_kill(self, info: dict[str, Any], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                pod = self.core.read_namespaced_pod(info["pod"], self.ns)
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
                continue
            cs = self._container(pod)
            term = cs.last_state.terminated if cs and cs.last_state else None
            seen = {"restart_count": cs.restart_count if cs else None,
                    "last_terminated": {"exit_code": term.exit_code, "reason": term.reason,
                                        "container_id": term.container_id} if term else None}
            if cs and cs.restart_count > info["restart_count_before"] and term and term.exit_code == 137:
                api = {"restart_count_after": cs.restart_count, "last_state_terminated": seen["last_terminated"],
                       "new_container_id": cs.container_id, "api_proven": True}
                info.update(api)            # the trigger's proof carries the API's word too
                self.proofs.append({"action": "kill_confirmed", **info})
                return
            time.sleep(0.1)
        info.update(api_proven=False, api_seen=seen)
        self.proofs.append({"action": "kill_unconfirmed", **info})
        raise RuntimeError(f"kubernetes: the API did not confirm the kill of {info['pod']} within {timeout:.0f} s "
                           f"(restartCount {info['restart_count_before']} -> {seen})")

    #: Waiting reasons that mean the service failed (not: is still starting).
    FAILED_WAITING = frozenset({"CrashLoopBackOff", "Error", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull",
                                "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
                                "InvalidImageName"})

    def running(self) -> bool:
        """True from the first start while the service has not failed: a pod being scheduled or its
        container being created counts (it has not exited); a terminated container, a crash-loop or an
        image that cannot be pulled does not."""
        if not self.created or self._closed:
            return False
        try:
            pods = [p for p in self.pods() if p.metadata.deletion_timestamp is None]
            dep = self.apps.read_namespaced_deployment(self.name, self.ns)
        except Exception:  # noqa: BLE001 - an API hiccup is not the service's exit
            return True
        if not dep.spec.replicas:
            return False
        if not pods:
            return True     # the controller is creating one
        pod = max(pods, key=lambda p: p.metadata.creation_timestamp)
        cs = self._container(pod)
        if cs is None or cs.state is None:
            return pod.status.phase in ("Pending", "Running")
        if cs.state.terminated:
            return False
        return not (cs.state.waiting and cs.state.waiting.reason in self.FAILED_WAITING)

    def returncode(self) -> int | None:
        """The exit code of the newest pod's container once it stopped (else None)."""
        if not self.created or self._closed:
            return None
        pods = self.pods()
        if not pods:
            return None
        cs = self._container(max(pods, key=lambda p: p.metadata.creation_timestamp))
        if cs is None or cs.state is None or cs.state.running:
            return None
        term = cs.state.terminated or (cs.last_state.terminated if cs.last_state else None)
        return int(term.exit_code) if term else None

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return self.returncode()
            time.sleep(0.1)
        return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Scale to zero (SIGTERM, SIGKILL after the grace period) and wait until no pod is left."""
        if not self.created or self._closed:
            return None
        code = None
        self.apps.patch_namespaced_deployment_scale(self.name, self.ns, {"spec": {"replicas": 0}})
        deadline = time.monotonic() + timeout + 30
        while time.monotonic() < deadline:
            pods = self.pods()
            for p in pods:
                cs = self._container(p)
                if cs and cs.state and cs.state.terminated:
                    code = int(cs.state.terminated.exit_code)
            if not pods:
                break
            time.sleep(0.1)
        self._serving = None
        self.proofs.append({"action": "scale", "replicas": 0, "exit_code": code, "mono": time.monotonic()})
        return code

    # -- faults ----------------------------------------------------------------------------------------
    def _running_on_node(self, fault: str, purpose: str) -> tuple[Any, Any]:
        """The serving pod and its running container, for a fault that acts on the node's processes
        (``fault`` and ``purpose`` word the one-line errors)."""
        if self.spec.node_access != "local":
            raise CannotOnThisBackend(f"kubernetes: {fault} needs node access (kubernetes.node_access: local)")
        pod = self.current_pod()
        cs = self._container(pod) if pod is not None else None
        if cs is None or not cs.container_id or not (cs.state and cs.state.running):
            raise RuntimeError(f"kubernetes: no running container {purpose} in {self.name}")
        return pod, cs

    def kill(self) -> dict[str, Any]:
        """SIGKILL the serving pod's container on its node. Proof now: its processes are gone (the
        kernel); at the restart (:meth:`start`): the API's ``restartCount`` +1 with exit code 137."""
        pod, cs = self._running_on_node("container kill", "to kill")
        sent_mono = time.monotonic()
        sent = nodeaccess.kill_container(cs.container_id)
        deadline = time.monotonic() + 10
        while nodeaccess.container_pids(cs.container_id) and time.monotonic() < deadline:
            time.sleep(0.005)
        gone = bool(sent["pids"]) and not nodeaccess.container_pids(cs.container_id)
        info = {"pod": pod.metadata.name, "pod_uid": pod.metadata.uid, "node": pod.spec.node_name,
                "container_id": cs.container_id, "restart_count_before": cs.restart_count, **sent,
                "processes_gone": gone, "sent_mono": sent_mono,
                "returncode": 137 if gone else None, "killed_by_sigkill": gone}
        self.proofs.append({"action": "kill", **info})
        self._pending_kill = info if gone else None
        if not sent["pids"]:
            raise CannotOnThisBackend(f"kubernetes: container {cs.container_id} has no process on this machine "
                                      "(node_access: local needs the nodes to be this machine)")
        return info

    def oom_kill(self, margin_mib: int = 32, timeout: float = 15.0) -> dict[str, Any]:
        """Push the serving container over a memory limit until the kernel's OOM killer ends the service
        (:func:`nodeaccess.oom_kill_container`: its memory cgroup's limit lowered to usage + ``margin_mib``,
        memory allocated in that cgroup). Proof now: the processes gone and the cgroup's OOM kill count up
        (the kernel); :meth:`confirm_oom_kill`: the API's ``OOMKilled`` and ``restartCount`` +1."""
        pod, cs = self._running_on_node("an OOM kill", "to push over its memory limit")
        info: dict[str, Any] = {"pod": pod.metadata.name, "pod_uid": pod.metadata.uid, "node": pod.spec.node_name,
                                "restart_count_before": cs.restart_count, "requested_mono": time.monotonic()}
        info.update(nodeaccess.oom_kill_container(cs.container_id, margin_mib=margin_mib, timeout=timeout))
        self.proofs.append({"action": "oom_kill", **info})
        if not info.get("pids"):
            raise CannotOnThisBackend(f"kubernetes: container {cs.container_id} has no process on this machine "
                                      "(node_access: local needs the nodes to be this machine)")
        return info

    def confirm_oom_kill(self, info: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the API shows the container of ``info`` (an :meth:`oom_kill`) restarted after an OOM
        kill: ``restartCount`` above the one before and ``lastState.terminated.reason`` ``OOMKilled``.
        Every waiting reason seen meanwhile (``CrashLoopBackOff``) is kept with its time."""
        deadline = time.monotonic() + timeout
        out: dict[str, Any] = {"api_proven": False, "waiting_reasons_seen": {}}
        while time.monotonic() < deadline:
            try:
                pod = self.core.read_namespaced_pod(info["pod"], self.ns)
            except Exception:  # noqa: BLE001 - an API hiccup: ask again
                time.sleep(0.1)
                continue
            cs = self._container(pod)
            waiting = cs.state.waiting if cs and cs.state else None
            if waiting is not None and waiting.reason:
                out["waiting_reasons_seen"].setdefault(waiting.reason, time.monotonic())
            term = cs.last_state.terminated if cs and cs.last_state else None
            out.update(restart_count=cs.restart_count if cs else None,
                       last_terminated={"reason": term.reason, "exit_code": term.exit_code} if term else None)
            if cs and cs.restart_count > info["restart_count_before"] and term and term.reason == "OOMKilled":
                out.update(api_proven=True, api_mono=time.monotonic(), new_container_id=cs.container_id)
                break
            time.sleep(0.1)
        self.proofs.append({"action": "oom_kill_confirmed" if out["api_proven"] else "oom_kill_unconfirmed",
                            "pod": info["pod"], **out})
        return out

    def delete_pod(self, grace_s: int = 0, timeout: float = 60.0, kill: bool = False) -> dict[str, Any]:
        """Delete the serving pod (``grace_s`` 0: at once); with ``kill``, SIGKILL its container first (a
        crash, not a graceful stop: needs node access). Proof from the API: the old pod's UID is gone and
        a pod with another UID is Ready; with node access, also that the old container's processes are
        gone from this machine."""
        from kubernetes.client.exceptions import ApiException

        pod = self.current_pod()
        if pod is None:
            raise RuntimeError(f"kubernetes: no running pod to delete in {self.name}")
        old = self._container(pod)
        old_cid = old.container_id if old else None
        info: dict[str, Any] = {"pod": pod.metadata.name, "old_uid": pod.metadata.uid, "old_node": pod.spec.node_name,
                                "old_container_id": old_cid, "grace_s": grace_s, "sent_mono": time.monotonic()}
        if kill:
            if self.spec.node_access != "local" or not old_cid:
                raise CannotOnThisBackend("kubernetes: killing the pod's container needs node access (node_access: local)")
            info["killed"] = nodeaccess.kill_container(old_cid)
            gone_by = time.monotonic() + 10
            while nodeaccess.container_pids(old_cid) and time.monotonic() < gone_by:
                time.sleep(0.005)
            info["killed"]["processes_gone"] = bool(info["killed"]["pids"]) and not nodeaccess.container_pids(old_cid)
        self.core.delete_namespaced_pod(pod.metadata.name, self.ns, grace_period_seconds=grace_s)
        deadline = time.monotonic() + timeout
        old_gone = None
        while time.monotonic() < deadline:
            if old_gone is None:
                try:
                    still = self.core.read_namespaced_pod(pod.metadata.name, self.ns).metadata.uid == pod.metadata.uid
                except ApiException as exc:
                    still = exc.status != 404
                if not still:
                    old_gone = info["old_gone_mono"] = time.monotonic()
            ready = [p for p in self.pods() if p.metadata.uid != pod.metadata.uid
                     and p.metadata.deletion_timestamp is None
                     and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
            if old_gone is not None and ready:
                new = ready[0]
                info.update(new_pod=new.metadata.name, new_uid=new.metadata.uid, new_node=new.spec.node_name,
                            new_ip=new.status.pod_ip, new_ready_mono=time.monotonic())
                # Status samples from here on reach the new pod only (the relay follows the poller).
                while self._serving != (new.status.pod_ip, self.spec.status_port) and time.monotonic() < deadline:
                    time.sleep(0.01)
                info["relay_on_new_pod"] = self._serving == (new.status.pod_ip, self.spec.status_port)
                break
            time.sleep(0.05)
        if self.spec.node_access == "local" and old_cid:
            info["old_processes_left"] = nodeaccess.container_pids(old_cid)
        info["proven"] = bool(info.get("old_gone_mono") and info.get("new_uid") and info.get("relay_on_new_pod")
                              and (not kill or info["killed"]["processes_gone"]))
        self.proofs.append({"action": "pod_delete", **info})
        return info

    def node_loss(self) -> dict[str, Any]:
        """Stop (SIGSTOP) the kubelet of the serving pod's node: the node stops reporting, the control
        plane marks it NotReady, taints it and evicts its pods, the ReplicaSet starts a replacement on
        another node, while the old replica's container keeps running (nothing on the node kills it).
        Needs node access (the kubelet is a process of this machine) and another Ready node.
        :meth:`node_loss_landed` proves it from the API and the host; :meth:`node_restore` undoes it."""
        if self.spec.node_access != "local":
            raise CannotOnThisBackend("kubernetes: node loss stops a node's kubelet: needs node_access: local")
        pod = self.current_pod()
        cs = self._container(pod) if pod is not None else None
        if cs is None or not cs.container_id:
            raise RuntimeError(f"kubernetes: no running pod of {self.name} to lose its node")
        node = pod.spec.node_name
        others = [n.metadata.name for n in self.core.list_node().items if n.metadata.name != node
                  and not n.spec.unschedulable and _node_ready(n) == "True"]
        if not others:
            raise CannotOnThisBackend(f"kubernetes: node loss needs a second Ready node besides {node} "
                                      "(else no replacement can start)")
        pids = nodeaccess.kubelet_pids(node)
        if not pids:
            raise CannotOnThisBackend(f"kubernetes: the kubelet of node {node} is not a process of this machine "
                                      "(node_access: local needs the nodes to be this machine)")
        sent_mono = time.monotonic()
        stopped = nodeaccess.signal_pids(pids, signal.SIGSTOP)
        self._stopped_kubelets[node] = stopped
        info = {"node": node, "other_nodes": others, "kubelet_pids": stopped, "signal": "SIGSTOP",
                "kubelet_state": {p: nodeaccess.process_state(p) for p in stopped},
                "pod": pod.metadata.name, "old_uid": pod.metadata.uid, "old_container_id": cs.container_id,
                "old_ip": pod.status.pod_ip, "sent_mono": sent_mono}
        self.proofs.append({"action": "node_loss", **info})
        return info

    def node_loss_landed(self, info: dict[str, Any], timeout: float,
                         on_replacement: Callable[[], None] | None = None) -> dict[str, Any]:
        """Wait (up to ``timeout``) until the API shows the node NotReady, the old pod evicted (its
        deletion requested; eviction events) and a replacement Ready on another node, and the host shows
        the old container's processes still running. ``proven`` is True only when all of that was seen.
        ``on_replacement`` is called once, when the API first shows a replacement pod (scheduled)."""
        node, old_uid, old_cid = info["node"], info["old_uid"], info["old_container_id"]
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # an API hiccup: ask again
                n = self.core.read_node(node)
                ready = _node_ready(n)
                if ready != "True" and "node_not_ready_mono" not in seen:
                    seen.update(node_ready=ready, node_not_ready_mono=time.monotonic())
                seen["node_taints"] = sorted(f"{x.key}:{x.effect}" for x in n.spec.taints or [])
                pods = self.pods()
                old = next((p for p in pods if p.metadata.uid == old_uid), None)
                if old is not None and old.metadata.deletion_timestamp is not None and "old_evicted_mono" not in seen:
                    seen["old_evicted_mono"] = time.monotonic()
                if "replacement_seen_mono" not in seen and any(p.metadata.uid != old_uid for p in pods):
                    seen["replacement_seen_mono"] = time.monotonic()
                    if on_replacement is not None:
                        on_replacement()
                new = [p for p in pods if p.metadata.uid != old_uid and p.spec.node_name != node
                       and p.metadata.deletion_timestamp is None
                       and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
                if new and "new_ready_mono" not in seen:
                    seen.update(new_pod=new[0].metadata.name, new_uid=new[0].metadata.uid,
                                new_node=new[0].spec.node_name, new_ip=new[0].status.pod_ip,
                                new_ready_mono=time.monotonic())
                if all(k in seen for k in ("node_not_ready_mono", "old_evicted_mono", "new_ready_mono")):
                    break
            time.sleep(0.2)
        with contextlib.suppress(Exception):
            events = self.core.list_namespaced_event(self.ns).items
            seen["pod_events"] = [f"{e.reason}: {e.message}" for e in events if e.involved_object
                                  and e.involved_object.uid == old_uid and e.reason in EVICTION_REASONS]
        seen["old_processes_running"] = nodeaccess.container_pids(old_cid)
        seen["kubelet_state"] = {p: nodeaccess.process_state(p) for p in self._stopped_kubelets.get(node, [])}
        if "new_ready_mono" in seen:     # status samples from here on reach the replacement only
            target = (seen["new_ip"], self.spec.status_port)
            while self._serving != target and time.monotonic() < deadline + 5:
                time.sleep(0.01)
            seen["relay_on_new_pod"] = self._serving == target
        info.update(seen)
        info["proven"] = bool(all(k in seen for k in ("node_not_ready_mono", "old_evicted_mono", "new_ready_mono"))
                              and seen["old_processes_running"] and seen.get("relay_on_new_pod"))
        self.proofs.append({"action": "node_loss_landed", **info})
        return info

    def node_restore(self, timeout: float = 90.0) -> dict[str, Any]:
        """SIGCONT every kubelet this target stopped; wait until each node is Ready again and the old
        replica's processes are gone (the kubelet kills the pod the API deleted). Safe to call twice."""
        out: dict[str, Any] = {"nodes": {}}
        for node, pids in list(self._stopped_kubelets.items()):
            sent = nodeaccess.signal_pids(pids, signal.SIGCONT)
            del self._stopped_kubelets[node]
            out["nodes"][node] = {"kubelet_pids": sent, "signal": "SIGCONT", "mono": time.monotonic()}
        deadline = time.monotonic() + timeout
        old_cids = [p.get("old_container_id") for p in self.proofs if p.get("action") == "node_loss"]
        for node, row in out["nodes"].items():
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    if _node_ready(self.core.read_node(node)) == "True":
                        row["ready_again_mono"] = time.monotonic()
                        break
                time.sleep(0.2)
        while time.monotonic() < deadline and any(nodeaccess.container_pids(c) for c in old_cids if c):
            time.sleep(0.2)
        out["old_processes_left"] = {c: nodeaccess.container_pids(c) for c in old_cids if c}
        out["restored"] = (all("ready_again_mono" in r for r in out["nodes"].values())
                           and not any(out["old_processes_left"].values()))
        self.proofs.append({"action": "node_restore", **out})
        return out

    def break_template(self, change: dict[str, Any], reasons: frozenset[str], timeout: float,
                       restarts: int = 0) -> dict[str, Any]:
        """Patch the Deployment's container (``change``: ``image`` or ``resources``; the strategy
        Recreate stops the serving pods first) and wait until a pod of the new template shows one of
        ``reasons`` from the API: a container ``state``/``lastState`` reason (``OOMKilled``) or waiting
        reason (``ErrImagePull``, ``ImagePullBackOff``, ``CrashLoopBackOff``); with ``restarts``, also
        until the kubelet restarted that container so often (a crash loop, not one crash).
        :meth:`restore_template` undoes it."""
        dep = self.apps.read_namespaced_deployment(self.name, self.ns)
        before = next(c for c in dep.spec.template.spec.containers if c.name == CONTAINER)
        if self._template_before is None:
            self._template_before = {"image": before.image,
                                     "resources": self.api_client.sanitize_for_serialization(before.resources) or {}}
        sent_mono = time.monotonic()
        self.apps.patch_namespaced_deployment(self.name, self.ns, {"spec": {"template": {"spec": {
            "containers": [{"name": CONTAINER, **change}]}}}})
        info: dict[str, Any] = {"change": change, "before": dict(self._template_before), "sent_mono": sent_mono,
                                "reasons_seen": {}, "proven": False}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):   # an API hiccup: ask again
                for pod in self.pods():
                    if pod.metadata.deletion_timestamp is not None or not _pod_has(pod, change):
                        continue
                    cs = self._container(pod)
                    if cs is None:
                        continue
                    seen = [getattr(s, "reason", None) for s in (
                        cs.state.waiting if cs.state else None, cs.state.terminated if cs.state else None,
                        cs.last_state.terminated if cs.last_state else None) if s is not None]
                    for reason in seen:
                        info["reasons_seen"].setdefault(reason, time.monotonic())
                    info.update(pod=pod.metadata.name, restart_count=cs.restart_count)
                    if set(seen) & reasons and "failing_since_mono" not in info:
                        info["failing_since_mono"] = time.monotonic()
                        info["reason"] = sorted(set(seen) & reasons)[0]
                    if "failing_since_mono" in info and cs.restart_count >= restarts:
                        info["proven"], info["proven_mono"] = True, time.monotonic()
                        break
            if info["proven"]:
                break
            time.sleep(0.2)
        self.proofs.append({"action": "break_template", **info})
        return info

    def restore_template(self, timeout: float = 120.0) -> dict[str, Any]:
        """Put the container's image and resources back and wait until a pod of that template is Ready."""
        if self._template_before is None:
            return {"restored": True, "nothing_changed": True}
        before, self._template_before = self._template_before, None
        resources = before["resources"] or {"limits": None, "requests": None}
        self.apps.patch_namespaced_deployment(self.name, self.ns, {"spec": {"template": {"spec": {
            "containers": [{"name": CONTAINER, "image": before["image"], "resources": resources}]}}}})
        out: dict[str, Any] = {"restored_to": before, "sent_mono": time.monotonic(), "restored": False}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                ready = [p for p in self.pods() if p.metadata.deletion_timestamp is None
                         and _pod_has(p, {"image": before["image"]})
                         and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
                if ready:
                    out.update(restored=True, pod=ready[0].metadata.name, ready_mono=time.monotonic())
                    break
            time.sleep(0.2)
        self.proofs.append({"action": "restore_template", **out})
        return out

    def scale_to(self, replicas: int, timeout: float = 60.0) -> dict[str, Any]:
        """Scale the Deployment to ``replicas`` and wait until its status proves it: the controller has
        observed the change (``observedGeneration``), ``status.replicas`` and ``readyReplicas`` equal
        ``replicas``, and exactly that many pods of the drill exist (none still terminating)."""
        before = self.apps.read_namespaced_deployment(self.name, self.ns).spec.replicas
        sent_mono = time.monotonic()
        self.apps.patch_namespaced_deployment_scale(self.name, self.ns, {"spec": {"replicas": replicas}})
        out: dict[str, Any] = {"replicas_before": before, "replicas": replicas, "sent_mono": sent_mono, "proven": False}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):   # an API hiccup: ask again
                dep = self.apps.read_namespaced_deployment(self.name, self.ns)
                st = dep.status
                status = {"generation": dep.metadata.generation, "observed_generation": st.observed_generation,
                          "replicas": st.replicas or 0, "ready_replicas": st.ready_replicas or 0,
                          "available_replicas": st.available_replicas or 0}
                pods = self.pods()
                out.update(deployment_status=status, pods=sorted(p.metadata.name for p in pods))
                if ((st.observed_generation or 0) >= (dep.metadata.generation or 0)
                        and status["replicas"] == replicas and status["ready_replicas"] == replicas
                        and len(pods) == replicas):
                    out.update(proven=True, proven_mono=time.monotonic())
                    break
            time.sleep(0.2)
        self.proofs.append({"action": "scale_to", **out})
        return out

    def _probe_target(self) -> tuple[str, int]:
        host, _, port = self.proxy_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def network_cut(self, via: str = "iptables") -> dict[str, Any]:
        """Cut the serving pod off the network, all but its loopback and status port. ``via: iptables``:
        rules inside its network namespace (found through its container's processes on this machine: what
        Chaos Mesh's daemon does). ``via: networkpolicy``: only where the backend's NetworkPolicy probe
        proved the cluster enforces policies, a policy denying the Deployment's pods all egress and all
        ingress but the status port (else not proven, the probe's result in ``netpol_probe``). Proof: a TCP
        probe from inside the namespace to the fault proxy opens before the cut and fails during it.
        :meth:`network_restore` removes the rules or the policy."""
        if self.spec.node_access != "local":
            raise CannotOnThisBackend("kubernetes: a network cut needs node access (kubernetes.node_access: local)")
        pod = self.current_pod()
        cs = self._container(pod) if pod is not None else None
        netns = nodeaccess.netns_of(cs.container_id) if cs is not None and cs.container_id else None
        if netns is None:
            raise CannotOnThisBackend(f"kubernetes: the serving container of {self.name} has no process on this "
                                      "machine (node_access: local needs the nodes to be this machine)")
        host, port = self._probe_target()
        info: dict[str, Any] = {"via": via, "pod": pod.metadata.name, "pod_ip": pod.status.pod_ip, "netns": netns,
                                "probe": f"{host}:{port}"}
        if via == "networkpolicy":
            return self._policy_cut(info, netns, host, port)
        rules = nodeaccess.cut_rules(self.spec.status_port, f"chaosdrill-cut-{self.target_id}")
        info["probe_before"] = nodeaccess.probe(netns, host, port)
        info["sent_mono"] = time.monotonic()
        self._cut = {"netns": netns, "rules": rules}
        info["errors"] = nodeaccess.cut(netns, rules)
        info["probe_during"] = nodeaccess.probe(netns, host, port)
        info["proven"] = info["probe_before"] and not info["probe_during"] and not info["errors"]
        info["proven_mono"] = time.monotonic()
        self.proofs.append({"action": "network_cut", **info})
        return info

    def _policy_cut(self, info: dict[str, Any], netns: str, host: str, port: int) -> dict[str, Any]:
        found = self._backend.networkpolicy_probe(self.spec)
        info["netpol_probe"] = found
        if found.get("enforced") is not True:
            info["proven"] = False
            self.proofs.append({"action": "network_cut", **info})
            return info
        name = f"{self.name}-cut"
        policy = {"metadata": {"name": name, "labels": self.labels},
                  "spec": {"podSelector": {"matchLabels": self.labels}, "policyTypes": ["Ingress", "Egress"],
                           "ingress": [{"ports": [{"protocol": "TCP", "port": self.spec.status_port}]}],
                           "egress": []}}
        info["probe_before"] = nodeaccess.probe(netns, host, port)
        info["sent_mono"] = time.monotonic()
        self._cut = {"netns": netns, "policy": name}
        info["errors"] = []
        try:
            self._backend.networking.create_namespaced_network_policy(self.ns, policy)
        except Exception as exc:  # noqa: BLE001 - RBAC or admission: the cut did not happen
            info["errors"].append(f"create networkpolicy {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}"[:300])
        # the CNI applies a policy asynchronously: the probe is retried until it fails or the deadline
        deadline = time.monotonic() + POLICY_LANDS_S
        while True:
            info["probe_during"] = nodeaccess.probe(netns, host, port)
            if info["errors"] or not info["probe_during"] or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        info["proven"] = info["probe_before"] and not info["probe_during"] and not info["errors"]
        info["proven_mono"] = time.monotonic()
        self.proofs.append({"action": "network_cut", **info})
        return info

    def network_restore(self) -> dict[str, Any]:
        """Remove the cut's rules or policy; proof: the probe from inside the namespace opens again."""
        if self._cut is None:
            return {"restored": True, "nothing_cut": True}
        cut, self._cut = self._cut, None
        host, port = self._probe_target()
        if "policy" in cut:
            return self._policy_restore(cut, host, port)
        removed = nodeaccess.uncut(cut["netns"], cut["rules"])
        ok = nodeaccess.probe(cut["netns"], host, port)
        out = {"rules_removed": removed, "rules": len(cut["rules"]), "probe_after": ok, "restored": ok,
               "mono": time.monotonic()}
        self.proofs.append({"action": "network_restore", **out})
        return out

    def _policy_restore(self, cut: dict[str, Any], host: str, port: int) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        out: dict[str, Any] = {"policy": cut["policy"]}
        try:
            self._backend.networking.delete_namespaced_network_policy(cut["policy"], self.ns)
            out["policy_removed"] = True
        except ApiException as exc:
            out["policy_removed"] = exc.status == 404
            if exc.status != 404:
                out["error"] = f"{exc.status} {exc.reason}"
        deadline = time.monotonic() + POLICY_LANDS_S
        while True:
            ok = nodeaccess.probe(cut["netns"], host, port)
            if ok or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        out.update(probe_after=ok, restored=ok, mono=time.monotonic())
        self.proofs.append({"action": "network_restore", **out})
        return out

    def pause(self) -> dict[str, Any]:
        raise CannotOnThisBackend("the kubernetes backend cannot freeze a pod")

    resume = pause

    def network_disconnect(self) -> dict[str, Any]:
        raise CannotOnThisBackend("the kubernetes backend cuts the network with kubernetes.network_cut (inside the "
                                  "pod's network namespace), not network.disconnect")

    network_connect = network_disconnect

    # -- evidence --------------------------------------------------------------------------------------
    def logs(self) -> list[Path]:
        """``k8s.pod.<name>.log`` (current and previous container) per pod seen, ``k8s.events.json``."""
        if self.created and not self._closed:
            with contextlib.suppress(Exception):
                cluster.save_evidence(self.core, self.ns, self.selector, self.name, set(self.pods_seen), self.log_dir)
        return sorted(self.log_dir.glob("k8s.*"), key=lambda p: (p.suffix == ".log", p.name))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "namespace": self.ns, "deployment": self.name, "image": self.spec.image,
                "replicas": self.spec.replicas, "labels": self.labels, "pods": self.pods_seen,
                "relay_port": self.relay.port, "starts": self.starts, "env_keys": sorted(self.target.env),
                "args": self.target.command or "image default", "api_proofs": self.proofs}

    def close(self) -> None:
        """Save the evidence, delete the Deployment and its pods, stop the relay. Idempotent."""
        if self._closed:
            return
        if self._stopped_kubelets:   # never leave a node frozen, whatever happened to the drill
            with contextlib.suppress(Exception):
                self.node_restore()
        if self._cut is not None:    # the pod's deletion ends its namespace too; remove the rules first anyway
            with contextlib.suppress(Exception):
                self.network_restore()
        try:
            if self.created:
                self.logs()
                self._delete()
        finally:
            self._closed = True
            self._stop_poll.set()
            self.relay.stop()
            with contextlib.suppress(ValueError):
                self._backend._targets.remove(self)

    def _delete(self) -> None:
        from kubernetes.client.exceptions import ApiException

        with contextlib.suppress(ApiException):
            self.apps.delete_namespaced_deployment(self.name, self.ns, propagation_policy="Background",
                                                   grace_period_seconds=0)
        for p in self.pods():
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(p.metadata.name, self.ns, grace_period_seconds=0)
        if self._secret_env:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_secret(self.name, self.ns)
        deadline = time.monotonic() + 60
        while self.pods() and time.monotonic() < deadline:
            time.sleep(0.2)
