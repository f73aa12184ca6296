"""The global invariants of a fault schedule (check ``global_invariants``): pure functions of the record."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..schedule_steps import DEFAULT_CODES, SCHEDULE, step_code
from .base import CheckResult
from .ledger import is_open, ledger_orders, recon_reads

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord, StepRecord
    from ..timeline import Sample


def _codes(s: "Sample") -> list[str]:
    return list(s.status.get("open_permission_reason_codes") or []) if s.ok else []


def _step_end(rec: "DrillRecord", st: "StepRecord") -> float:
    """When a step's condition ended: as recorded, else at its release, else at the end of the drill."""
    for t in (st.condition_ended_mono, st.released_mono, rec.t_end):
        if t is not None:
            return t
    return float("inf")


def _step_specs(rec: "DrillRecord") -> list[dict[str, Any]]:
    """The drill's step definitions in firing order (what ``code`` each step carries)."""
    trig = rec.drill.get("trigger", {})
    steps = (trig.get("params") or {}).get("steps") if trig.get("kind") == SCHEDULE else None
    if not isinstance(steps, list):
        return [{"kind": s.kind} for s in rec.steps]
    return [dict(s) for s in sorted(steps, key=lambda s: float(s.get("at_s", 0)))]


def invariant_no_open_while_blocked(rec: "DrillRecord", grace_ms: float = 100.0) -> list[str]:
    """No order that could add exposure reached the venue while the status said OPEN was blocked (every
    blocked span, from its first blocked answer plus ``grace_ms`` to the request of its last one)."""
    out = []
    spans: list[tuple["Sample", "Sample"]] = []
    first = last = None
    for s in rec.samples:
        if not s.ok:
            continue  # the target down (planned) neither ends nor starts a span
        if s.blocked:
            first = first or s
            last = s
        elif first is not None:
            spans.append((first, last))  # type: ignore[arg-type]
            first = last = None
    if first is not None:
        spans.append((first, last))  # type: ignore[arg-type]
    for a, b in spans:
        opens = [o for o in ledger_orders(rec.ledger, a.mono + grace_ms / 1000, b.sent_mono) if is_open(o)]
        if opens:
            o = opens[0]
            out.append(f"{len(opens)} OPEN order(s) reached the venue while OPEN was blocked (samples {a.i}–{b.i}); "
                       f"first: {o.get('clOrdId')} {o.get('side')} {o.get('sz')} reduceOnly={o.get('reduceOnly')}")
    return out


def invariant_latch_clears_after_reconcile(rec: "DrillRecord") -> list[str]:
    """For every step whose latch code was seen set: the latch clears only after that step's condition
    ended, and only after successful reconciliation reads (positions and open orders) made after it."""
    out = []
    specs = _step_specs(rec)
    for n, st in enumerate(rec.steps):
        if st.landed_mono is None:
            continue
        code = step_code(specs[n]) if n < len(specs) else DEFAULT_CODES.get(st.kind)
        if not code:
            continue
        seen = rec.timeline.first(lambda s: code in _codes(s), start=st.landed_mono)
        if seen is None:
            continue
        cleared = rec.timeline.first(lambda s: s.ok and not s.latched, start=seen.mono)
        if cleared is None:
            continue
        end = _step_end(rec, st)
        if cleared.mono < end:
            out.append(f"step {n + 1} ({st.kind}): the latch cleared at sample {cleared.i} while its condition was "
                       f"still active ({(end - cleared.mono) * 1000:.0f} ms before it ended); {code} was set at "
                       f"sample {seen.i}")
            continue
        missing = [k for k, v in recon_reads(rec.ledger, end, cleared.mono, answered=True).items() if not v]
        if missing:
            out.append(f"step {n + 1} ({st.kind}): the latch cleared at sample {cleared.i} with no successful "
                       f"{' / '.join(missing)} read at the venue between the end of its condition and the clear")
    return out


#: Latch codes a reconciliation clears (the contract's ``*_RECONCILE_REQUIRED``); others end otherwise.
RECONCILED_SUFFIX = "_RECONCILE_REQUIRED"


def _read_began(e: dict[str, Any]) -> float:
    """When a reconciliation read reached the venue (``received_mono``; else its answer time, later)."""
    began = e.get("received_mono")
    return float(began) if isinstance(began, (int, float)) else float(e.get("mono", 0))


def invariant_reconcile_clears_only_older_codes(rec: "DrillRecord") -> list[str]:
    """A reconciliation may clear only the codes raised before its reads began: for every clear of the
    latch and every ``*_RECONCILE_REQUIRED`` code set in the latched span before it, a successful
    positions read and a successful pending-orders read that began after the code was raised must be
    answered before the clear. Reported only when it is certain: every such read began before the last
    status answer that did not yet show the code (so before the code existed); a read that began between
    that answer and the first one showing the code may have followed it and is given the benefit."""
    out = []
    ok = [s for s in rec.samples if s.ok]
    span: list["Sample"] = []
    for s in ok:
        if s.latched:
            span.append(s)
            continue
        if not span:
            continue
        clear, latched_span, span = s, span, []
        for code in dict.fromkeys(c for x in latched_span for c in _codes(x) if c.endswith(RECONCILED_SUFFIX)):
            first = next(x for x in latched_span if code in _codes(x))
            before = [x for x in ok if x.mono < first.mono and code not in _codes(x)]
            if not before:
                continue  # set from the first answer on: when it was raised cannot be bounded
            raised_after = before[-1].sent_mono
            reads = [e for e in rec.ledger if e.get("type") == "request" and e.get("recon_read")
                     and e.get("status", 200) == 200 and e.get("mono", 0) <= clear.mono]
            for kind, word in (("positions", "positions"), ("open orders", "orders-pending")):
                mine = [e for e in reads if word in str(e.get("path", ""))]
                if mine and any(_read_began(e) >= raised_after for e in mine):
                    continue
                if not mine:
                    continue  # no read at all: invariant_latch_clears_after_reconcile reports that
                last = max(_read_began(e) for e in mine)
                out.append(f"{code} (first shown at sample {first.i}; absent at sample {before[-1].i}) was cleared at "
                           f"sample {clear.i} by a reconciliation whose last {kind} read began "
                           f"{(raised_after - last) * 1000:.0f} ms before the code could have been raised")
                break
    return out


def invariant_no_duplicate_dispatch(rec: "DrillRecord") -> list[str]:
    """No client order id reached the venue twice."""
    dups = [o for o in ledger_orders(rec.ledger) if o.get("duplicate")]
    return [f"{len(dups)} client order id(s) reached the venue twice; first: {dups[0].get('clOrdId')}"] if dups else []


def invariant_kill_needs_restart(rec: "DrillRecord") -> list[str]:
    """Once Kill, the status never leaves Kill without a restart in between."""
    restarts = sorted(m.mono for m in rec.marks if m.label == "restart")
    killed: "Sample | None" = None
    for s in rec.samples:
        if not s.ok:
            continue
        mode = s.status.get("trading_mode")
        if mode == "Kill":
            killed = killed or s
        elif killed is not None:
            if not any(killed.mono < r < s.mono for r in restarts):
                return [f"left Kill (sample {killed.i}) for {mode} at sample {s.i} without a restart"]
            killed = None
    return []


INVARIANTS: dict[str, Callable[..., list[str]]] = {
    "no_open_while_blocked": invariant_no_open_while_blocked,
    "latch_clears_after_reconcile": invariant_latch_clears_after_reconcile,
    "reconcile_clears_only_older_codes": invariant_reconcile_clears_only_older_codes,
    "no_duplicate_dispatch": invariant_no_duplicate_dispatch,
    "kill_needs_restart": invariant_kill_needs_restart,
}


def global_invariants(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """Every fault window keeps the invariants: no OPEN while blocked, the latch clears only after
    reconciliation reads made after each condition ended, a reconciliation clears only codes raised before
    its reads began, no duplicate dispatch, Kill only ends by a restart.

    (The contract on every sample and status answers outside planned downtime are the verdict's own.)
    """
    violations = []
    for name, fn in INVARIANTS.items():
        found = fn(rec, grace_ms=grace_ms) if name == "no_open_while_blocked" else fn(rec)
        violations += [{"invariant": name, "detail": d} for d in found]
    landed = [s for s in rec.steps if s.landed_mono is not None]
    facts = {"violations": violations, "steps_checked": len(landed)}
    if not landed:
        return CheckResult("global_invariants", None, "no fault landed: nothing to check", facts=facts)
    if violations:
        return CheckResult("global_invariants", False, "; ".join(f"[{v['invariant']}] {v['detail']}" for v in violations),
                           facts=facts)
    return CheckResult("global_invariants", True, f"{len(landed)} fault window(s), {len(rec.samples)} samples, "
                       f"{len(ledger_orders(rec.ledger))} venue orders: {', '.join(INVARIANTS)} hold", facts=facts)


def violation_names(facts: Mapping[str, Any]) -> list[str]:
    return sorted({v["invariant"] for v in facts.get("violations", [])})
