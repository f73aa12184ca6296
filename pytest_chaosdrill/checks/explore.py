"""The exploring drill's check: no explored fault schedule broke an invariant."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..schedule_steps import EXPLORE, MINIMAL_FILE, schedule_steps_yaml
from .base import CheckResult

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord


def explore_found_no_violation(rec: "DrillRecord") -> CheckResult:
    """No explored fault schedule broke an invariant (the smallest failing one is minimal_drill.yaml)."""
    step = next((s for s in rec.steps if s.kind == EXPLORE), None)
    proof = step.proof if step is not None else {}
    if not proof:
        return CheckResult("explore_found_no_violation", None, "no exploration summary in the record")
    n, conclusive = proof.get("examples", 0), proof.get("conclusive", 0)
    facts = {k: proof.get(k) for k in ("examples", "violations", "time_to_first_failure_s", "time_to_minimal_s",
                                       "elapsed_s", "stopped_by")}
    if proof.get("violations"):
        m = proof.get("minimal") or {}
        steps = m.get("steps") or []
        return CheckResult("explore_found_no_violation", False,
                           f"{proof['violations']} of {n} explored schedules broke an invariant "
                           f"({', '.join(proof.get('signature') or [])}); the smallest ({len(steps)} step(s), "
                           f"example {m.get('n')}) failed with: {m.get('reason', '')[:600]}\n"
                           f"minimal schedule (written as {MINIMAL_FILE} in this drill's evidence folder):\n"
                           + schedule_steps_yaml(steps), facts=facts)
    if not conclusive:
        return CheckResult("explore_found_no_violation", None, f"none of {n} explored schedules reached a verdict",
                           facts=facts)
    return CheckResult("explore_found_no_violation", True,
                       f"{conclusive} of {n} explored schedules reached a verdict, none broke an invariant "
                       f"({proof.get('elapsed_s')}s, stopped by {proof.get('stopped_by')}, verdicts "
                       f"{proof.get('verdicts')})", facts=facts)
