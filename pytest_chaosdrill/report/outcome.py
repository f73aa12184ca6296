"""What the reports know about one drill test (:class:`DrillOutcome`), and the terminal table."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..evidence import REQUIRED_FILES


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
    budget_source: str = ""  # "drill" (its bundled default) | "target file"
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


def summary_table(outcomes: Iterable[DrillOutcome], base: str | Path | None = None) -> list[str]:
    """The terminal summary: one aligned row per drill test; evidence folders relative to ``base`` (the
    run folder, printed once below the table) so the table fits a terminal."""
    rows = [("drill", "backend", "verdict", "time to safe", "budget", "evidence")]
    for o in outcomes:
        tts = f"{o.time_to_safe_ms:.0f} ms" if o.time_to_safe_ms is not None else "-"
        budget = (f"{o.budget_ms:.0f} ms" + (" (target file)" if o.budget_source == "target file" else "")
                  if o.budget_ms else "-")
        rows.append((o.drill_id, o.backend, o.verdict, tts, budget, _relative(o.folder, base) if o.folder else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _relative(folder: str, base: str | Path | None) -> str:
    if base is None:
        return folder
    try:
        return Path(folder).relative_to(base).as_posix()
    except ValueError:
        return folder


def files_complete(folder: str | Path | None) -> bool:
    """Whether ``folder`` holds every required evidence file."""
    return bool(folder) and all((Path(folder) / f).is_file() for f in REQUIRED_FILES)


def missing_files(folder: str | Path | None) -> list[str]:
    """The required evidence files a drill folder lacks (all of them without a folder)."""
    if not folder:
        return list(REQUIRED_FILES)
    return [f for f in REQUIRED_FILES if not (Path(folder) / f).is_file()]


def outcome_from(record: Any, evaluation: Any, base: DrillOutcome) -> DrillOutcome:
    """Fill the sign-off facts of ``base`` from a drill's record and evaluation (either may be None)."""
    if record is None or evaluation is None:
        return base
    base.time_to_safe_ms = record.time_to_safe_ms
    base.budget_ms = float(record.drill.get("time_to_safe_budget_ms", 0)) or base.budget_ms
    base.budget_source = (record.drill.get("budget_source") or {}).get("source", "drill")
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
