"""What a fault schedule's steps mean (kind names, step fields, the latch code each fault must raise)
and how they are written back as YAML: shared by the schedule trigger (:mod:`.faults.schedule`), its
invariants (:mod:`.checks.invariants`) and the explorer (:mod:`.explore`)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import yaml

SCHEDULE = "schedule"
STEP_FIELDS = ("kind", "params", "at_s", "align", "release_after_s", "code")
#: What a step may be aligned to (field ``align``): ``recon_read`` fires it, no earlier than its ``at_s``,
#: at the first moment the venue holds an unanswered reconciliation read (positions, pending orders).
RECON_READ = "recon_read"
ALIGN_EVENTS = (RECON_READ,)
#: How long the venue holds each reconciliation answer while an aligned step waits for, and fires into,
#: a read: the step lands and the target reacts inside that window, before the answer leaves.
ALIGN_HOLD_MS = 300

#: The latch code a fault of each kind must raise (the status contract's open-permission codes).
DEFAULT_CODES: dict[str, str] = {
    "venue.book_gap": "WS_BOOK_GAP_RECONCILE_REQUIRED",
    "venue.trades_gap": "WS_TRADES_GAP_RECONCILE_REQUIRED",
    "venue.freeze": "WS_DATA_STALE_RECONCILE_REQUIRED",
    "venue.session_termination": "SESSION_TERMINATION_RECONCILE_REQUIRED",
    "process.kill_restart": "RESTART_RECONCILE_REQUIRED",
}
#: The exploring drill's trigger kind, and the drill file it writes for the smallest failing schedule.
EXPLORE = "schedule.explore"
MINIMAL_FILE = "minimal_drill.yaml"


def step_code(step: Mapping[str, Any]) -> str | None:
    """The latch code a step's fault must raise (``code`` wins; ``code: null`` means none)."""
    if "code" in step:
        return step["code"]
    return DEFAULT_CODES.get(str(step.get("kind")))


def schedule_steps_yaml(steps: Iterable[Mapping[str, Any]]) -> str:
    """A schedule's steps as YAML (for messages and minimal drills)."""
    return yaml.safe_dump([dict(s) for s in steps], sort_keys=False, default_flow_style=None).rstrip()
