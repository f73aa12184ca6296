"""Kubernetes faults (``kubernetes.*``): act on the pods of the service's Deployment; each proves that
it landed from the cluster's API (backend ``kubernetes``, docs/kubernetes.md)."""
from __future__ import annotations

import time
from typing import Any

from ..backends.base import KILL, NODE_LOSS, OOM_KILL, POD_DELETE, POD_NETWORK_CUT, POD_TEMPLATE, SCALE
from ..timeline import wait_until
from .base import FaultNotLanded, Trigger, known_params, record_dict, start_hold_proof


class PodDelete(Trigger):
    """Delete the serving pod mid-flight (``kill``: SIGKILL its container first, a crash rather than a
    graceful stop); its ReplicaSet starts a replacement (possibly on another node) on the same data.
    Proof: the old pod's UID gone from the API, a new UID Ready (with ``kill``: the old processes gone).

    ``hold_reconcile_s`` keeps the venue's REST slow from before the delete until the first status
    answer of the new pod (then ``hold_reconcile_s`` more), so a correct service's start-up latch is
    observable however fast it reconciles; the hold is in the proof."""

    kind = "kubernetes.pod_delete"
    manages_target = True
    requires = frozenset({POD_DELETE})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {"grace_s": int, "kill": bool, "hold_reconcile_s": (int, float),
                                     "timeout_s": (int, float)})

    @classmethod
    def requires_for(cls, params: dict[str, Any]) -> frozenset[str]:
        """``kill`` (SIGKILL the container before the delete: a crash) needs the kill capability too."""
        return frozenset({KILL}) if params.get("kill") else frozenset()

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        hold_s = float(self.params.get("hold_reconcile_s", 0))
        # Long enough to cover the replacement's scheduling and start; lifted after its first answer.
        self.hold = self.ctx.venue.rest_latency(ms=int(hold_s * 1000) + 1000) if hold_s > 0 else None
        self.hold_s = hold_s
        self.info = self.ctx.target.delete_pod(grace_s=int(self.params.get("grace_s", 0)),
                                               timeout=float(self.params.get("timeout_s", 60)),
                                               kill=bool(self.params.get("kill", False)))
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.info.get("proven"):
            if self.hold is not None:
                self.ctx.venue.clear(kind="rest_latency")
            raise FaultNotLanded(f"the API did not show the old pod gone and a new one Ready: {self.info}")
        self.landed_mono = self.info["sent_mono"]
        self.ctx.timeline.mark("restart")
        self.proof = dict(self.info)
        self.ctx.wait_target_serving()
        self.ctx.expect_downtime(False)
        self.condition_ended_mono = time.monotonic()
        if self.hold is not None:
            restart = self.ctx.timeline.get_mark("restart")
            seen = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok, start=restart.mono), self.hold_s)
            self.condition_ended_mono = time.monotonic()
            self.ctx.venue.clear(kind="rest_latency")
            # the venue's own record after the release: a hold that delayed nothing is "not landed"
            self.proof["reconcile_hold"] = start_hold_proof(self.ctx.venue, self.hold, self.hold_s,
                                                            self.condition_ended_mono, seen.i if seen else None)
        return self.proof


class NodeLoss(Trigger):
    """Lose the serving pod's node: its kubelet stopped (SIGSTOP), so the control plane marks the node
    NotReady and evicts the pod, and a replacement starts on another node, while the old replica keeps
    running (nothing on the lost node stops it): two instances of the service at once, the split-brain a
    trading service must fence itself against. Proof: the API (node NotReady, the old pod's deletion
    requested, eviction events, a replacement Ready on another node) and the host (the old container's
    processes still running). Release: the kubelet continued, the node Ready again and the old
    replica's processes gone (its kubelet kills the pod the API deleted)."""

    kind = "kubernetes.node_loss"
    manages_target = True
    requires = frozenset({NODE_LOSS})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {"timeout_s": (int, float), "restore_timeout_s": (int, float),
                                     "hold_reconcile_s": (int, float)})

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        self.hold = None
        self.hold_s = float(self.params.get("hold_reconcile_s", 0))
        self.info = self.ctx.target.node_loss()
        return self.info

    def _hold_reconcile(self) -> None:
        # From the replacement's scheduling until its first status answer (+ hold_reconcile_s) the venue's
        # REST answers slowly, so its start-up latch is observable however fast it reconciles; the old
        # replica's requests are slowed as well, never refused (its orders still reach the witness).
        if self.hold_s > 0 and self.hold is None:
            self.hold = self.ctx.venue.rest_latency(ms=int(self.hold_s * 1000) + 1000)

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        # The control plane's own pace (node grace period, the pod's toleration, the scheduling) sets how
        # long this takes: timeout_s, not the drill's land timeout.
        proof = self.ctx.target.node_loss_landed(self.info, float(self.params.get("timeout_s", 120)),
                                                 on_replacement=self._hold_reconcile)
        if not proof.get("proven"):
            if self.hold is not None:
                self.ctx.venue.clear(kind="rest_latency")
            raise FaultNotLanded("the API and the host did not show the node lost with its replica still running "
                                 f"and a replacement Ready elsewhere: {proof}")
        self.landed_mono = proof["sent_mono"]
        self.ctx.timeline.mark("restart")   # the replacement serves status from here (relay switched)
        self.ctx.wait_target_serving()
        self.ctx.expect_downtime(False)
        self.proof = dict(proof)
        if self.hold is not None:
            mark = self.ctx.timeline.get_mark("restart")
            seen = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok, start=mark.mono), self.hold_s)
            self.ctx.venue.clear(kind="rest_latency")
            self.proof["reconcile_hold"] = {"venue_rest_latency": record_dict(self.hold), "held_s": self.hold_s,
                                            "released_mono": time.monotonic(),
                                            "first_status_sample": seen.i if seen else None}
        return self.proof

    def release(self) -> dict[str, Any]:
        out = self.ctx.target.node_restore(float(self.params.get("restore_timeout_s", 90)))
        self.condition_ended_mono = time.monotonic()
        # Who opened each proxied connection (pod IPs): the witness's orders attributed to an instance
        # (single_instance_trading). Read now: the old replica is gone, its connections all logged.
        try:
            out["proxy_connections"] = self.ctx.proxy.connections()
        except Exception as exc:  # noqa: BLE001 - an out-of-process proxy has no connection log
            out["proxy_connections_error"] = f"{type(exc).__name__}: {exc}"
        return out


class OomKill(Trigger):
    """The running service pushed over a memory limit until the kernel's OOM killer ends it mid-trade,
    ``kills`` times: each time the kubelet restarts the container in the same pod, on the same data (the
    second restart after a back-off: ``CrashLoopBackOff``). Between kills the service must come back,
    reconcile and trade for ``between_s``. Proof per kill: the kernel (the container's processes gone,
    its memory cgroup's OOM kill count up) and the API (``lastState.terminated.reason`` ``OOMKilled``,
    ``restartCount`` +1). A correct service comes back latched each time (its previous run was killed)
    and sends no OPEN before reconciling.

    ``hold_reconcile_s`` keeps the venue's REST slow from each kill until the restarted container's first
    status answer (then ``hold_reconcile_s`` more), so the start-up latch is observable however fast the
    service reconciles; each hold is in the proof."""

    kind = "kubernetes.oom_kill"
    manages_target = True
    requires = frozenset({OOM_KILL})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = known_params(params, {"kills": int, "between_s": (int, float), "margin_mib": int,
                                         "hold_reconcile_s": (int, float), "timeout_s": (int, float)})
        if isinstance(params.get("kills"), int) and params["kills"] < 1:
            problems.append(f"parameter 'kills' must be at least 1, got {params['kills']}")
        return problems

    def _kill(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        hold_s = float(self.params.get("hold_reconcile_s", 0))
        self.hold = self.ctx.venue.rest_latency(ms=int(hold_s * 1000) + 1000) if hold_s > 0 else None
        try:
            info = self.ctx.target.oom_kill(margin_mib=int(self.params.get("margin_mib", 32)))
        except Exception:
            if self.hold is not None:   # the venue must not stay slow for the rest of the drill
                self.ctx.venue.clear(kind="rest_latency")
            raise
        if info.get("oom_killed"):
            # the restarted container's first status answer is the first after this mark (the old one is dead)
            self.ctx.timeline.mark("restart", kill=len(self.kills) + 1)
        return info

    def _not_landed(self, why: str) -> FaultNotLanded:
        if self.hold is not None:
            self.ctx.venue.clear(kind="rest_latency")
        return FaultNotLanded(why)

    def fire(self) -> dict[str, Any]:
        self.kills: list[dict[str, Any]] = []
        self.info = self._kill()
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        # The kubelet's back-off (10 s before the second restart) sets the pace: timeout_s per restart.
        restart_timeout = float(self.params.get("timeout_s", 60))
        hold_s = float(self.params.get("hold_reconcile_s", 0))
        total = int(self.params.get("kills", 2))
        info = self.info
        while True:
            if not info.get("oom_killed"):
                raise self._not_landed(f"the kernel did not OOM-kill the service (kill {len(self.kills) + 1}): {info}")
            api = self.ctx.target.confirm_oom_kill(info, restart_timeout)
            entry = {**info, "api": api}
            self.kills.append(entry)
            if not api.get("api_proven"):
                raise self._not_landed(f"the API did not show the container OOMKilled and restarted "
                                       f"(kill {len(self.kills)}): {api}")
            if self.landed_mono is None:
                self.landed_mono = info["sent_mono"]
            restart = self.ctx.timeline.get_mark("restart")
            self.ctx.wait_target_serving()
            self.ctx.expect_downtime(False)
            if self.hold is not None:
                seen = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok, start=restart.mono), hold_s)
                released = time.monotonic()
                self.ctx.venue.clear(kind="rest_latency")
                entry["reconcile_hold"] = start_hold_proof(self.ctx.venue, self.hold, hold_s, released,
                                                           seen.i if seen else None)
                self.hold = None
            if len(self.kills) >= total:
                break
            # Back, reconciled (latch clear) and trading before the next kill: each restart is judged alone.
            back = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok and not s.latched, start=restart.mono),
                              restart_timeout)
            entry["unlatched_sample"] = back.i if back else None
            time.sleep(float(self.params.get("between_s", 3)))   # trading time between kills, part of the fault
            info = self._kill()
        self.condition_ended_mono = time.monotonic()
        self.proof = {"kills": self.kills, "oom_kills": len(self.kills), "sent_mono": self.landed_mono}
        return self.proof


class Scale(Trigger):
    """The service's Deployment scaled to ``replicas`` (0: the execution workload scaled to zero; more
    than the target file's: instances the service must fence against). Proof: the Deployment's status
    (observed, ``replicas`` and ``readyReplicas`` equal to ``replicas``) and exactly that many pods.
    Release: scaled back to the target file's replicas, proven the same way, then the service serving."""

    kind = "kubernetes.scale"
    manages_target = True
    requires = frozenset({SCALE})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = known_params(params, {"replicas": int, "timeout_s": (int, float), "restore_timeout_s": (int, float)})
        if "replicas" not in params:
            problems.append("parameter 'replicas' is required (the replicas to scale to)")
        elif isinstance(params["replicas"], int) and params["replicas"] < 0:
            problems.append(f"parameter 'replicas' must be 0 or more, got {params['replicas']}")
        return problems

    def fire(self) -> dict[str, Any]:
        self.down = int(self.params["replicas"]) == 0
        if self.down:
            self.ctx.expect_downtime(True)
        self.info = self.ctx.target.scale_to(int(self.params["replicas"]), float(self.params.get("timeout_s", 60)))
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.info.get("proven"):
            raise FaultNotLanded(f"the Deployment's status did not show {self.params['replicas']} replica(s) ready "
                                 f"(and no other pod): {self.info}")
        self.landed_mono = self.info["proven_mono"]
        self.proof = dict(self.info)
        return self.proof

    def release(self) -> dict[str, Any]:
        target = self.ctx.target
        out = target.scale_to(int(target.spec.replicas), float(self.params.get("restore_timeout_s", 90)))
        if self.down:
            self.ctx.timeline.mark("restart")
            self.ctx.wait_target_serving()
            self.ctx.expect_downtime(False)
        self.condition_ended_mono = time.monotonic()
        return out


class NetworkCut(Trigger):
    """The serving pod cut off the network inside its network namespace (``via: iptables``, the default:
    rules in the pod's namespace, found through its container on the node, as Chaos Mesh's daemon does;
    the pod's status port stays open so the harness keeps observing). Proof: a TCP probe from inside the
    namespace to the fault proxy opens before the cut and fails during it; the release removes the rules
    and the probe opens again. ``via: networkpolicy``: a policy denying the Deployment's pods all egress
    and all ingress but the status port, only where the backend's NetworkPolicy probe (run once per
    session, as ``chaosdrill k8s-selfcheck`` does) proved the cluster enforces policies; otherwise NOT
    PROVEN naming the probe's result, for a partition is never claimed on an object's word. The same
    probe from inside the namespace proves either cut."""

    kind = "kubernetes.network_cut"
    manages_target = True
    requires = frozenset({POD_NETWORK_CUT})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = known_params(params, {"via": str})
        if params.get("via", "iptables") not in ("iptables", "networkpolicy"):
            problems.append(f"parameter 'via' must be iptables or networkpolicy, got {params['via']!r}")
        return problems

    def fire(self) -> dict[str, Any]:
        self.via = self.params.get("via", "iptables")
        self.info = self.ctx.target.network_cut(via=self.via)
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        found = self.info.get("netpol_probe")
        if found is not None and found.get("enforced") is not True:
            verdict = "not enforced" if found.get("enforced") is False else "not proven"
            raise FaultNotLanded(f"a NetworkPolicy cut is not proven on this cluster: the NetworkPolicy probe found "
                                 f"{verdict} ({found.get('why')}); use via: iptables, a cut inside the pod's "
                                 "network namespace")
        if not self.info.get("proven"):
            self.ctx.target.network_restore()
            raise FaultNotLanded("the probe from inside the pod's network namespace did not open before the cut and "
                                 f"fail during it: {self.info}")
        self.landed_mono = self.info["sent_mono"]
        self.proof = dict(self.info)
        return self.proof

    def release(self) -> dict[str, Any]:
        out = self.ctx.target.network_restore()
        self.condition_ended_mono = time.monotonic()
        return out


class _TemplateFault(Trigger):
    """A fault in the Deployment's pod template: the serving pods are replaced (strategy Recreate) by
    pods that cannot run; proof is the reason the API gives for them. Release puts the template back and
    waits for a Ready pod."""

    manages_target = True
    requires = frozenset({POD_TEMPLATE})
    reasons: frozenset[str] = frozenset()

    def change(self) -> dict[str, Any]:
        raise NotImplementedError

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        self.info = self.ctx.target.break_template(self.change(), self.reasons, float(self.params.get("timeout_s", 90)),
                                                   restarts=int(self.params.get("restarts", 0)))
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.info.get("proven"):
            raise FaultNotLanded(f"the API showed none of {sorted(self.reasons)} for a pod of the changed template "
                                 f"(or fewer than {self.params.get('restarts', 0)} restarts): {self.info}")
        self.landed_mono = self.info["proven_mono"]   # failing since failing_since_mono (the first reason seen)
        self.proof = dict(self.info)
        return self.proof

    def release(self) -> dict[str, Any]:
        out = self.ctx.target.restore_template(float(self.params.get("restore_timeout_s", 120)))
        self.condition_ended_mono = time.monotonic()
        self.ctx.timeline.mark("restart")
        self.ctx.expect_downtime(False)
        return out


class MemoryLimit(_TemplateFault):
    """The container's memory limit lowered to ``limit`` (default ``16Mi``: below what a service needs
    to start): the kernel kills it (``OOMKilled``) and the kubelet backs off restarting it
    (``CrashLoopBackOff``). Proof: ``OOMKilled`` in the container's state or lastState (the API), and
    with ``restarts`` the container's ``restartCount`` reaching it (a crash loop)."""

    kind = "kubernetes.memory_limit"
    reasons = frozenset({"OOMKilled"})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {"limit": str, "restarts": int, "timeout_s": (int, float),
                                     "restore_timeout_s": (int, float)})

    def change(self) -> dict[str, Any]:
        limit = str(self.params.get("limit", "16Mi"))
        return {"resources": {"limits": {"memory": limit}, "requests": {"memory": limit}}}


class ImageFault(_TemplateFault):
    """The container's image replaced by one no registry serves (default
    ``chaosdrill.invalid/missing:fault``; ``.invalid`` never resolves): the kubelet cannot pull it.
    Proof: ``ErrImagePull`` or ``ImagePullBackOff`` as the container's waiting reason (the API)."""

    kind = "kubernetes.image_fault"
    reasons = frozenset({"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {"image": str, "restarts": int, "timeout_s": (int, float),
                                     "restore_timeout_s": (int, float)})

    def change(self) -> dict[str, Any]:
        return {"image": str(self.params.get("image", "chaosdrill.invalid/missing:fault"))}
