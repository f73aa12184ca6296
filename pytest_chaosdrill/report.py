"""Reports over a run's drills: the terminal table and SIGNOFF.md (the checklist's sign-off boxes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .evidence import REQUIRED_FILES


@dataclass
class DrillOutcome:
    """What the reports need to know about one drill test."""

    nodeid: str
    drill_id: str
    title: str
    group: str
    backend: str
    verdict: str
    reason: str = ""
    time_to_safe_ms: float | None = None
    budget_ms: float | None = None
    folder: str | None = None
    ieb_sha256: str | None = None
    observed_valid: bool | None = None
    tokens_known: bool | None = None
    latch_checks: list[bool] = field(default_factory=list)
    capital_supremacy: bool | None = None
    owner_view_ok: bool | None = None
    has_notes: bool = False
    files_complete: bool = False
    missing_files: list[str] = field(default_factory=list)
    hash_problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data: it rides on the test report across pytest-xdist's process boundary."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DrillOutcome":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def signoff_state(drills: Iterable[Any], expected_phase2: int = 8) -> tuple[bool, list[str]]:
    """The one READY TO SIGN rule (SIGNOFF.md and the HTML report): every Phase 2 drill PASSED, all
    ``expected_phase2`` of them ran, and each evidence folder is complete with valid hashes.

    ``drills`` are objects with ``drill_id``, ``group``, ``backend``, ``verdict``, ``reason``,
    ``missing_files`` and ``hash_problems``. Returns (ready, the open items behind NOT READY).
    """
    p2 = [d for d in drills if d.group == "phase2"]
    why: list[str] = []
    if not p2:
        why.append("no Phase 2 drill in this run")
    for d in p2:
        if d.verdict != "PASS":
            why.append(f"{d.drill_id} ({d.backend}): {d.verdict}" + (f": {d.reason}" if d.reason else ""))
        if d.missing_files:
            why.append(f"{d.drill_id} ({d.backend}): evidence incomplete, missing {', '.join(d.missing_files)}")
        if d.hash_problems:
            why.append(f"{d.drill_id} ({d.backend}): evidence hashes: {'; '.join(d.hash_problems[:5])}")
    passed = {d.drill_id for d in p2 if d.verdict == "PASS"}
    ran = {d.drill_id for d in p2}
    if p2 and len(ran) < expected_phase2:
        why.append(f"only {len(ran)} of {expected_phase2} Phase 2 drills ran in this run")
    return (bool(p2) and not why and len(passed) >= expected_phase2), why


def summary_table(outcomes: Iterable[DrillOutcome]) -> list[str]:
    rows = [("drill", "backend", "verdict", "time to safe", "budget", "evidence")]
    for o in outcomes:
        tts = f"{o.time_to_safe_ms:.0f} ms" if o.time_to_safe_ms is not None else "-"
        budget = f"{o.budget_ms:.0f} ms" if o.budget_ms else "-"
        rows.append((o.drill_id, o.backend, o.verdict, tts, budget, o.folder or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def files_complete(folder: str | Path | None) -> bool:
    return bool(folder) and all((Path(folder) / f).is_file() for f in REQUIRED_FILES)


def missing_files(folder: str | Path | None) -> list[str]:
    """The required evidence files a drill folder lacks (all of them without a folder)."""
    if not folder:
        return list(REQUIRED_FILES)
    return [f for f in REQUIRED_FILES if not (Path(folder) / f).is_file()]


def signoff_markdown(outcomes: list[DrillOutcome], run_id: str, commit: str | None, expected_phase2: int = 8) -> str:
    """The checklist's "Phase 2 Sign-Off Checklist", each box ticked only where this run proved it."""
    p2 = [o for o in outcomes if o.group == "phase2"]
    passed = [o for o in p2 if o.verdict == "PASS"]
    distinct = {o.drill_id for o in passed}

    def box(ok: bool, text: str, why: str) -> str:
        return f"- [{'x' if ok else ' '}] {text}  \n  _{why}_"

    all_run = len(distinct) >= expected_phase2
    folders_ok = bool(p2) and all(o.files_complete for o in p2)
    valid_ok = bool(p2) and all(o.observed_valid for o in p2)
    tokens_ok = bool(p2) and all(o.tokens_known for o in p2)
    latch = [v for o in p2 for v in o.latch_checks]
    latch_ok = bool(latch) and all(latch)
    cap = [o.capital_supremacy for o in p2 if o.capital_supremacy is not None]
    cap_ok = bool(cap) and all(cap)
    owner_ok = bool(p2) and all(o.owner_view_ok for o in p2)
    notes_ok = bool(p2) and all(o.has_notes for o in p2)
    for o in p2:
        if not o.missing_files and not o.files_complete:
            o.missing_files = missing_files(o.folder)
    ready, why = signoff_state(outcomes, expected_phase2)
    machine_boxes = [all_run, folders_ok, valid_ok, tokens_ok, latch_ok, cap_ok, notes_ok]
    ready = ready and all(machine_boxes)
    if ready:
        head = ["# READY TO SIGN", "",
                "Every machine-checkable box below is ticked. One box stays a person's: the owner dashboard "
                "5-second rule (a person must read the dashboard and tick it before signing)."]
    else:
        names = ["All 8 drills executed", "Each drill has evidence folder with all required files",
                 "`validate_status.py` passes for all observed_status.json files", "No free-text reason codes",
                 "Latch invariants hold in all applicable drills", "Capital supremacy verified",
                 "1-page summary written for each drill"]
        open_boxes = [n for n, ok in zip(names, machine_boxes) if not ok]
        head = ["# NOT READY", "",
                "Open boxes: " + ("; ".join(open_boxes) if open_boxes else "none (but see the drills below)") + ".", "",
                "Drills behind it:"] + [f"- {w}" for w in why] + ([] if why else ["- (every drill passed)"])
    lines = head + [
        "", "## Phase 2 Sign-Off", "",
        f"Run `{run_id}`, commit `{commit or 'not in a git checkout'}`.", "",
        "Each box below is ticked by pytest-chaosdrill only where this run proved it; an unticked box names what is missing.", "",
        "| drill | backend | verdict | time to safe (ms) | evidence |", "|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(f"| {o.drill_id} | {o.backend} | {o.verdict} | "
                     f"{'%.0f' % o.time_to_safe_ms if o.time_to_safe_ms is not None else '-'} | {o.folder or '-'} |")
    lines += ["", "## Phase 2 Sign-Off Checklist", "",
              box(all_run, "All 8 drills executed",
                  f"{len(distinct)} of {expected_phase2} Phase 2 drills passed in this run"),
              box(folders_ok, "Each drill has evidence folder with all required files",
                  f"{sum(o.files_complete for o in p2)} of {len(p2)} folders have {', '.join(REQUIRED_FILES)}"),
              box(valid_ok, "`validate_status.py` passes for all observed_status.json files",
                  f"{sum(bool(o.observed_valid) for o in p2)} of {len(p2)} observed statuses pass `chaosdrill validate-status`"),
              box(tokens_ok, "No free-text reason codes (all tokens in manifest)",
                  f"{sum(bool(o.tokens_known) for o in p2)} of {len(p2)} drills: every sample's reason tokens are in the manifest"),
              box(latch_ok, "Latch invariants hold in all applicable drills",
                  f"{sum(latch)} of {len(latch)} latch checks passed ([LATCH]/[DECISION-A] on every sample, latch clears only after reconcile)"),
              box(cap_ok, "Capital supremacy verified (Kill mode still allows risk-reducing)",
                  "verified by the unknown-token drill's capital_supremacy check with exposure at Kill" if cap_ok
                  else "no drill in this run exercised Kill with exposure to reduce"),
              box(False, "Owner dashboard passes 5-second rule for each scenario (open for a person)",
                  "needs a person reading the dashboard; what a machine can check holds: owner_view consistent with "
                  "the contract on every sample ([OWNER-VIEW])" if owner_ok
                  else "owner_view contradicted the contract in some drill ([OWNER-VIEW] findings)"),
              box(notes_ok, "1-page summary written for each drill (`notes.md`)",
                  f"{sum(o.has_notes for o in p2)} of {len(p2)} drills have notes.md"),
              ""]
    if ready:
        lines += ["**Sign-off statement:**",
                  "> All Phase 2 chaos drills have been executed with contract-valid `/status` outputs.",
                  "> Evidence packs are stored in `evidence/phase2/`.",
                  "> The system correctly transitions to safe states under all tested fault conditions.", "",
                  "Signed: _________________ Date: _____________", ""]
    else:
        lines += ["_No sign-off statement: this run does not prove every machine-checkable box._", ""]
    return "\n".join(lines)


def outcome_from(record: Any, evaluation: Any, base: DrillOutcome) -> DrillOutcome:
    """Fill the sign-off facts of ``base`` from a drill's record and evaluation (either may be None)."""
    if record is None or evaluation is None:
        return base
    base.time_to_safe_ms = record.time_to_safe_ms
    base.budget_ms = float(record.drill.get("time_to_safe_budget_ms", 0)) or base.budget_ms
    if evaluation.observed is not None:
        base.observed_valid = not evaluation.observed_findings
    tags = {f.tag for _, fs in evaluation.sample_findings for f in fs}
    sampled = any(s.ok for s in record.samples)
    base.tokens_known = sampled and not (tags & {"TIER", "ENUM", "ORDER"})
    base.owner_view_ok = sampled and "OWNER-VIEW" not in tags
    latch = [sampled and not (tags & {"LATCH", "DECISION-A"})]
    latch += [r.passed is True for r in evaluation.checks if r.name.startswith("latch_")]
    base.latch_checks = latch
    cap = [r for r in evaluation.checks if r.name == "capital_supremacy"]
    if cap and cap[0].facts.get("capital_supremacy_exercised"):
        base.capital_supremacy = cap[0].passed is True
    return base
