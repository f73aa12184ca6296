"""Process faults (``process.*``): kill and restart, pause; proved by what the kernel or the engine reports."""
from __future__ import annotations

import time
from typing import Any

from ..backends.base import KILL, PAUSE, START
from ..timeline import wait_until
from .base import BackendFault, FaultNotLanded, Trigger, known_params, start_hold_proof


class ProcessKillRestart(Trigger):
    """SIGKILL the target mid-flight, then start it again on the same data.

    Proof: the exit status the kernel (or the container engine) reports for the killed process.
    """

    kind = "process.kill_restart"
    manages_target = True
    requires = frozenset({START, KILL})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return known_params(params, {"restart_after_s": (int, float), "hold_reconcile_s": (int, float)})

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        self.kill_info = self.ctx.target.kill()
        return self.kill_info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.kill_info.get("killed_by_sigkill"):
            raise FaultNotLanded(f"target was signalled but did not die by SIGKILL: {self.kill_info}")
        self.landed_mono = self.kill_info.get("sent_mono", time.monotonic())
        restart_delay = float(self.params.get("restart_after_s", 0.2))
        time.sleep(restart_delay)  # a deliberate gap between crash and restart, part of the fault
        # Optionally keep the venue's REST slow through start-up so reconciliation cannot finish before
        # the first status answer: a correct target then stays latched until the drill has seen it,
        # however fast it reconciles. Recorded in the proof; reconciliation must follow the release.
        hold_s = float(self.params.get("hold_reconcile_s", 0))
        hold = self.ctx.venue.rest_latency(ms=int(hold_s * 1000) + 1000) if hold_s > 0 else None
        self.ctx.timeline.mark("restart")
        self.ctx.target.start()
        self.proof = {**self.kill_info, "restarted_mono": time.monotonic(), "restart_after_s": restart_delay}
        self.ctx.wait_target_serving()
        self.ctx.expect_downtime(False)
        self.condition_ended_mono = time.monotonic()
        if hold is not None:
            restart = self.ctx.timeline.get_mark("restart")
            seen = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok, start=restart.mono), hold_s)
            # The condition ends as the hold is lifted: reads the venue answers from then on count.
            self.condition_ended_mono = time.monotonic()
            self.ctx.venue.clear(kind="rest_latency")
            self.proof["reconcile_hold"] = start_hold_proof(self.ctx.venue, hold, hold_s, self.condition_ended_mono,
                                                            seen.i if seen else None)
        return self.proof


class ProcessPause(BackendFault):
    """Freeze the target (SIGSTOP, or ``docker pause``) for ``hold_s``, then thaw it. A frozen target
    cannot answer its status, so the pause is planned downtime for the sampler."""

    kind, apply, undo = "process.pause", "pause", "resume"
    requires = frozenset({PAUSE})

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        return super().fire()

    def release(self) -> dict[str, Any]:
        out = super().release()
        self.ctx.expect_downtime(False)
        return out
