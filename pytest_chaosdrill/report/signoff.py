"""The sign-off: the one READY TO SIGN rule, SIGNOFF.md, and the facts it was decided on.

:func:`decide` is the rule; SIGNOFF.md (:func:`signoff_markdown`) and the HTML report both show its
answer. The session stores the outcomes it decided on next to SIGNOFF.md (``signoff.json``,
:func:`write_signoff`), so ``chaosdrill report`` later decides on exactly the same facts.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..evidence import REQUIRED_FILES
from .outcome import DrillOutcome, missing_files

#: How many Phase 2 drills a complete run has (the checklist's "All 8 drills executed").
EXPECTED_PHASE2 = 8
#: The outcomes SIGNOFF.md was decided on, beside it in the run folder.
SIGNOFF_FACTS = "signoff.json"


@dataclass
class Box:
    """One box of the checklist: ticked only where the run proved it; ``why`` says what was seen."""

    text: str
    ok: bool
    why: str
    machine: bool = True  # False: a person's box, never ticked by the tool


@dataclass
class Decision:
    """READY or not, the checklist's boxes, and the drills behind a NOT READY."""

    ready: bool
    boxes: list[Box] = field(default_factory=list)
    why: list[str] = field(default_factory=list)

    @property
    def open_boxes(self) -> list[str]:
        """The machine-checkable boxes this run did not prove."""
        return [b.text for b in self.boxes if b.machine and not b.ok]


def decide(outcomes: Iterable[Any], expected_phase2: int = EXPECTED_PHASE2) -> Decision:
    """THE READY TO SIGN rule: every Phase 2 drill PASSED, all ``expected_phase2`` of them ran, each
    evidence folder is complete with valid hashes, and every machine-checkable box holds.

    ``outcomes`` are :class:`DrillOutcome` (or objects with its fields).
    """
    outs = list(outcomes)
    p2 = [o for o in outs if o.group == "phase2"]
    why: list[str] = []
    if not p2:
        why.append("no Phase 2 drill in this run")
    for o in p2:
        if o.verdict == "ERROR":  # the harness broke: the service was not judged, re-run after fixing it
            why.append(f"{o.drill_id} ({o.backend}): ERROR (harness, the service was not judged; fix the "
                       "harness and re-run)" + (f": {o.reason}" if o.reason else ""))
        elif o.verdict != "PASS":
            why.append(f"{o.drill_id} ({o.backend}): {o.verdict}" + (f": {o.reason}" if o.reason else ""))
        if o.missing_files:
            why.append(f"{o.drill_id} ({o.backend}): evidence incomplete, missing {', '.join(o.missing_files)}")
        if o.hash_problems:
            why.append(f"{o.drill_id} ({o.backend}): evidence hashes: {'; '.join(o.hash_problems[:5])}")
    ran = {o.drill_id for o in p2}
    if p2 and len(ran) < expected_phase2:
        why.append(f"only {len(ran)} of {expected_phase2} Phase 2 drills ran in this run")

    passed = {o.drill_id for o in p2 if o.verdict == "PASS"}
    latch = [v for o in p2 for v in o.latch_checks]
    cap = [o.capital_supremacy for o in p2 if o.capital_supremacy is not None]
    cap_ok = bool(cap) and all(cap)
    owner_ok = bool(p2) and all(o.owner_view_ok for o in p2)
    boxes = [
        Box(f"All {expected_phase2} drills executed", len(passed) >= expected_phase2,
            f"{len(passed)} of {expected_phase2} Phase 2 drills passed in this run"),
        Box("Each drill has evidence folder with all required files", bool(p2) and all(o.files_complete for o in p2),
            f"{sum(bool(o.files_complete) for o in p2)} of {len(p2)} folders have {', '.join(REQUIRED_FILES)}"),
        Box("`validate_status.py` passes for all observed_status.json files",
            bool(p2) and all(o.observed_valid for o in p2),
            f"{sum(bool(o.observed_valid) for o in p2)} of {len(p2)} observed statuses pass "
            "`chaosdrill validate-status`"),
        Box("No free-text reason codes (all tokens in manifest)", bool(p2) and all(o.tokens_known for o in p2),
            f"{sum(bool(o.tokens_known) for o in p2)} of {len(p2)} drills: every sample's reason tokens are in "
            "the manifest"),
        Box("Latch invariants hold in all applicable drills", bool(latch) and all(latch),
            f"{sum(latch)} of {len(latch)} latch checks passed ([LATCH]/[DECISION-A] on every sample, latch "
            "clears only after reconcile)"),
        Box("Capital supremacy verified (Kill mode still allows risk-reducing)", cap_ok,
            "verified by the unknown-token drill's capital_supremacy check with exposure at Kill" if cap_ok
            else "no drill in this run exercised Kill with exposure to reduce"),
        Box("Owner dashboard passes 5-second rule for each scenario (open for a person)", False,
            "needs a person reading the dashboard; what a machine can check holds: owner_view consistent with "
            "the contract on every sample ([OWNER-VIEW])" if owner_ok
            else "owner_view contradicted the contract in some drill ([OWNER-VIEW] findings)", machine=False),
        Box("1-page summary written for each drill (`notes.md`)", bool(p2) and all(o.has_notes for o in p2),
            f"{sum(bool(o.has_notes) for o in p2)} of {len(p2)} drills have notes.md"),
    ]
    ready = bool(p2) and not why and all(b.ok for b in boxes if b.machine)
    return Decision(ready, boxes, why)


def signoff_state(drills: Iterable[Any], expected_phase2: int = EXPECTED_PHASE2) -> tuple[bool, list[str]]:
    """(ready, the drills behind NOT READY): :func:`decide` in short."""
    d = decide(drills, expected_phase2)
    return d.ready, d.why


def signoff_markdown(outcomes: list[DrillOutcome], run_id: str, commit: str | None,
                     expected_phase2: int = EXPECTED_PHASE2) -> str:
    """The checklist's "Phase 2 Sign-Off Checklist", each box ticked only where this run proved it."""
    for o in outcomes:
        if o.group == "phase2" and not o.missing_files and not o.files_complete:
            o.missing_files = missing_files(o.folder)
    decision = decide(outcomes, expected_phase2)
    if decision.ready:
        head = ["# READY TO SIGN", "",
                "Every machine-checkable box below is ticked. One box stays a person's: the owner dashboard "
                "5-second rule (a person must read the dashboard and tick it before signing)."]
    else:
        opened = decision.open_boxes
        head = ["# NOT READY", "",
                "Open boxes: " + ("; ".join(opened) if opened else "none (but see the drills below)") + ".", "",
                "Drills behind it:"] + [f"- {w}" for w in decision.why] + ([] if decision.why
                                                                         else ["- (every drill passed)"])
    failed = [o for o in outcomes if o.verdict != "PASS"]
    if failed:  # what failed leads, whatever the drill's group (a run of one's own drills included)
        head[1:1] = ["", f"**Failed in this run ({len(failed)}):**", ""] + [
            f"- {o.drill_id} ({o.backend}): {o.verdict}" + (f": {o.reason}" if o.reason else "") for o in failed]
    lines = head + [
        "", "## Phase 2 Sign-Off", "",
        f"Run `{run_id}`, commit `{commit or 'not in a git checkout'}`.", "",
        "Each box below is ticked by pytest-chaosdrill only where this run proved it; an unticked box names "
        "what is missing.", "",
        "| drill | backend | verdict | time to safe (ms) | evidence |", "|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(f"| {o.drill_id} | {o.backend} | {o.verdict} | "
                     f"{'%.0f' % o.time_to_safe_ms if o.time_to_safe_ms is not None else '-'} | {o.folder or '-'} |")
    lines += ["", "## Phase 2 Sign-Off Checklist", ""]
    lines += [f"- [{'x' if b.ok else ' '}] {b.text}  \n  _{b.why}_" for b in decision.boxes]
    lines.append("")
    if decision.ready:
        lines += ["**Sign-off statement:**",
                  "> All Phase 2 chaos drills have been executed with contract-valid `/status` outputs.",
                  "> Evidence packs are stored in `evidence/phase2/`.",
                  "> The system correctly transitions to safe states under all tested fault conditions.", "",
                  "Signed: _________________ Date: _____________", ""]
    else:
        lines += ["_No sign-off statement: this run does not prove every machine-checkable box._", ""]
    return "\n".join(lines)


def full_run(outcomes: Iterable[Any], expected_phase2: int = EXPECTED_PHASE2) -> bool:
    """Whether a run may stand as the latest sign-off: every one of the ``expected_phase2`` Phase 2 drills
    ran in it. A partial or custom selection gets its own SIGNOFF.md in its run folder only."""
    return len({o.drill_id for o in outcomes if o.group == "phase2"}) >= expected_phase2


def write_signoff(run_dir: Path, outcomes: list[DrillOutcome], run_id: str, commit: str | None, *,
                  preface: str = "") -> Path:
    """Write SIGNOFF.md (``preface`` first) and the outcomes it was decided on (``signoff.json``)."""
    run_dir = Path(run_dir)
    text = preface + signoff_markdown(outcomes, run_id, commit)
    facts = json.dumps({"run_id": run_id, "commit": commit, "outcomes": [o.to_json() for o in outcomes]},
                       indent=2, sort_keys=True, default=str) + "\n"
    for name, body in ((SIGNOFF_FACTS, facts), ("SIGNOFF.md", text)):
        tmp = run_dir / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, run_dir / name)  # a reader never sees half a file
    return run_dir / "SIGNOFF.md"


def load_outcomes(run_dir: Path) -> list[DrillOutcome] | None:
    """The outcomes SIGNOFF.md was decided on, or None when the run has no readable ``signoff.json``."""
    try:
        data = json.loads((Path(run_dir) / SIGNOFF_FACTS).read_text(encoding="utf-8"))
        return [DrillOutcome.from_json(o) for o in data["outcomes"] if isinstance(o, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        return None
