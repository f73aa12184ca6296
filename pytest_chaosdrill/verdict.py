"""The verdict: one function over a drill's record, its checks and the status contract.

Nothing else decides PASS, FAIL or NOT PROVEN: the plugin, the reports and ``chaosdrill recheck``
all call :func:`evaluate`. It never looks at exception text: how the run ended is a fact of the
record (``outcome``), and the rest follows from the samples, the witness ledger and the checks.
"""
from __future__ import annotations

import inspect
import traceback
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping

from .checks import Check, CheckResult
from .contract import Contract, Finding
from .expect import Comparison, Expectation
from .record import COMPLETED, ERROR, INTERRUPTED, NOT_PROVEN, REFUSED, TIMEOUT, DrillRecord
from .timeline import Sample


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_PROVEN = "NOT PROVEN"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    INTERRUPTED = "INTERRUPTED"
    SKIPPED = "SKIPPED"
    INCOMPLETE = "INCOMPLETE"


_BY_OUTCOME = {NOT_PROVEN: Verdict.NOT_PROVEN, REFUSED: Verdict.NOT_PROVEN, ERROR: Verdict.ERROR,
               TIMEOUT: Verdict.TIMEOUT, INTERRUPTED: Verdict.INTERRUPTED}


@dataclass
class Evaluation:
    """Everything derived from one record: the verdict, its reasons and what they rest on."""

    verdict: Verdict
    reason: str
    failures: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    sample_findings: list[tuple[Sample, list[Finding]]] = field(default_factory=list)
    status_errors: list[Sample] = field(default_factory=list)
    observed: Sample | None = None
    observed_findings: list[Finding] | None = None
    expectation: Expectation | None = None
    comparison: Comparison | None = None

    @property
    def observed_status(self) -> Any:
        return self.observed.status if self.observed is not None else None

    def check_facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in self.checks:
            out.update(r.facts)
        return out


def criterion_of(fn: Callable[..., Any]) -> str:
    """A check's criterion: the first paragraph of its docstring, on one line."""
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n", 1)[0].replace("``", "").split())


def run_checks(record: DrillRecord, checks: Mapping[str, Check]) -> list[CheckResult]:
    """Run every check the drill names; a check that raises is a harness ERROR (its result carries the
    traceback's last line), never a FAIL of the target, and never hides the other checks."""
    results = []
    for spec in record.drill.get("checks", []):
        name, params, criterion = (spec, {}, "") if isinstance(spec, str) else (
            spec["check"], dict(spec.get("params") or {}), spec.get("criterion", ""))
        fn = checks.get(name)
        if fn is None:  # validation at collection prevents this for live runs; recheck may meet it
            res = CheckResult(name, None, f"unknown check {name!r}; known: {sorted(checks)}")
        else:
            try:
                res = fn(record, **params)
            except Exception as exc:
                last = traceback.format_exception_only(type(exc), exc)[-1].strip()
                res = CheckResult(name, None, f"the check raised: {last}", error=last)
        res.criterion = criterion or (criterion_of(fn) if fn is not None else "")
        results.append(res)
    return results


def _select_observed(record: DrillRecord, expectation: Expectation | None) -> tuple[Sample | None, Comparison | None]:
    """The observed status: the first sample after the fault that matches the expectation; else the last
    blocked one before recovery; without an expectation, the first safe sample."""
    if expectation is not None:
        end = record.t_recovered or record.t_end
        window = [s for s in record.timeline.between(record.t_trigger, end) if s.ok]
        base = record.baseline.status if record.baseline else None
        chosen = next((s for s in window if expectation.compare(s.status, base).matched), None)
        if chosen is None:
            blocked = [s for s in window if s.blocked]
            chosen = blocked[-1] if blocked else (window[-1] if window else None)
        if chosen is not None:
            return chosen, expectation.compare(chosen.status, base)
        return None, None
    fs = record.first_safe
    if fs is not None and fs.ok:
        return fs, None
    return record.timeline.last_ok(), None


def evaluate(record: DrillRecord, contract: Contract, checks: Mapping[str, Check]) -> Evaluation:
    """Derive the verdict of one drill run from its record."""
    samples = record.samples
    sample_findings: list[tuple[Sample, list[Finding]]] = []
    for s in samples:
        if s.ok:
            found = contract.check(s.status)
            if found:
                sample_findings.append((s, found))
    down = record.downtime()
    errors = [s for s in samples if not s.ok and not any(s.mono >= a and s.sent_mono <= b for a, b in down)]
    if record.drill.get("safe_when") == "target_exited":
        exited = record.first_safe_mono if record.first_safe_mono is not None else float("inf")
        errors = [s for s in errors if s.sent_mono < exited - 0.05]

    expectation = None
    if record.expected:
        expectation = Expectation.from_json(record.expected)
    observed, comparison = _select_observed(record, expectation)
    ev = Evaluation(Verdict.PASS, "", sample_findings=sample_findings, status_errors=errors, observed=observed,
                    observed_findings=contract.check(observed.status) if observed is not None else None,
                    expectation=expectation, comparison=comparison)

    if record.outcome != COMPLETED:
        ev.verdict = _BY_OUTCOME.get(record.outcome, Verdict.ERROR)
        ev.reason = record.outcome_reason or record.outcome
        if record.outcome in (NOT_PROVEN, REFUSED):
            ev.unproven.append(ev.reason)
        else:
            ev.failures.append(ev.reason)
        # A contract violation seen before the run stopped is still a fact worth stating.
        if sample_findings and record.outcome != REFUSED:
            ev.failures.append(_findings_line(sample_findings, len(samples)))
        return ev

    ev.checks = run_checks(record, checks)
    budget = float(record.drill.get("time_to_safe_budget_ms", 0))
    tts = record.time_to_safe_ms
    if record.first_safe is None:
        ev.failures.append(f"the safe state ({record.drill.get('safe_when', 'open_blocked')}) was never observed "
                           "after the fault landed")
    elif tts is not None and tts > budget:
        source = (record.drill.get("budget_source") or {}).get("why", "the drill's default")
        ev.failures.append(f"time to safe {tts:.0f} ms exceeds the budget {budget:.0f} ms ({source})")
    if sample_findings:
        ev.failures.append(_findings_line(sample_findings, len(samples)))
    if errors:
        s = errors[0]
        ev.failures.append(f"{len(errors)} status samples failed outside planned downtime; first: sample {s.i}: {s.error}")
    if comparison is not None and not comparison.matched:
        ev.failures.append("expected status not observed: " + "; ".join(comparison.problems))
    if expectation is not None and observed is None:
        ev.unproven.append("no status sample after the fault to compare with the expected status")
    if record.recovery_missing:
        ev.failures.append("recovery not verified: " + record.recovery_missing)
    broken = [r for r in ev.checks if r.error is not None]
    for r in ev.checks:
        if r.error is not None:
            continue
        if r.passed is False:
            ev.failures.append(f"{r.name}: {r.detail}")
        elif r.passed is None:
            ev.unproven.append(f"{r.name}: {r.detail}")
    if broken:
        # The harness broke: the run cannot judge the target; what else was seen stays in the lists.
        ev.verdict = Verdict.ERROR
        ev.reason = "; ".join(f"harness error in check {r.name}: {r.error}" for r in broken)
        ev.failures.insert(0, ev.reason)
    elif ev.failures:
        ev.verdict, ev.reason = Verdict.FAIL, "; ".join(ev.failures)
    elif ev.unproven:
        ev.verdict, ev.reason = Verdict.NOT_PROVEN, "; ".join(ev.unproven)
    return ev


def _findings_line(sample_findings: list[tuple[Sample, list[Finding]]], total: int) -> str:
    s, f = sample_findings[0]
    tags = sorted({x.tag for _, fs in sample_findings for x in fs})
    return (f"{len(sample_findings)} of {total} status samples violate the contract ({', '.join(tags)}); "
            f"first: sample {s.i}: {f[0]}")
