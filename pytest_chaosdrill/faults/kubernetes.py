"""Kubernetes faults (``kubernetes.*``): act on the pods of the service's Deployment; each proves that
it landed from the cluster's API (backend ``kubernetes``, docs/kubernetes.md)."""
from __future__ import annotations

import time
from typing import Any

from ..backends.base import KILL, POD_DELETE
from ..timeline import wait_until
from .base import FaultNotLanded, Trigger, known_params, start_hold_proof


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
