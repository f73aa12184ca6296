"""Fault schedules: compound drills that inject several faults, and the invariants every one must keep.

A trigger of kind ``schedule`` runs ``params.steps``, each ``{kind, params, at_s, release_after_s, code}``:
``kind`` is any registered trigger kind, ``at_s`` the offset from the schedule's start, ``release_after_s``
(optional) when the step is released relative to its firing (else it is held until the drill releases
the fault), ``code`` (optional) the open-permission latch code the fault must raise; known kinds have a
default (:data:`DEFAULT_CODES`), ``code: null`` opts out.

Steps run in order of ``at_s``, one at a time: a step fires no earlier than its offset, then proves its
own landing before the next one fires (a step that does not land ends the drill NOT PROVEN). Every fired
step is released exactly once, in the drill's ``finally`` (timed releases run during the schedule). Each
step is its own :class:`~pytest_chaosdrill.record.StepRecord` and leaves ``step_N_fired`` /
``step_N_landed`` / ``step_N_released`` marks on the timeline (N counts from 1: ``step_1`` is ``steps[0]``).

The global invariants (:func:`global_invariants`, a check) are pure functions of the record.
"""
from __future__ import annotations

import heapq
import json
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .checks import CheckResult, is_open, ledger_orders
from .faults import FaultNotLanded, Trigger, requirements

if TYPE_CHECKING:  # pragma: no cover
    from .context import DrillContext
    from .record import DrillRecord, StepRecord
    from .timeline import Sample

SCHEDULE = "schedule"
STEP_FIELDS = ("kind", "params", "at_s", "release_after_s", "code")

#: The latch code a fault of each kind must raise (the status contract's open-permission codes).
DEFAULT_CODES: dict[str, str] = {
    "venue.book_gap": "WS_BOOK_GAP_RECONCILE_REQUIRED",
    "venue.trades_gap": "WS_TRADES_GAP_RECONCILE_REQUIRED",
    "venue.freeze": "WS_DATA_STALE_RECONCILE_REQUIRED",
    "venue.session_termination": "SESSION_TERMINATION_RECONCILE_REQUIRED",
    "process.kill_restart": "RESTART_RECONCILE_REQUIRED",
}
#: Venue faults the venue keeps as one held condition per kind: two overlapping steps of one of these
#: kinds would be released together, so a schedule may not overlap them.
HELD_VENUE_KINDS = ("venue.freeze", "venue.lag", "venue.rate_limit", "venue.http_5xx", "venue.rest_latency")


def _jsonable_dict(obj: Any) -> Any:
    try:
        json.dumps(obj)
        return obj
    except (TypeError, ValueError):
        return json.loads(json.dumps(obj, default=str))


def step_code(step: Mapping[str, Any]) -> str | None:
    """The latch code a step's fault must raise (``code`` wins; ``code: null`` means none)."""
    if "code" in step:
        return step["code"]
    return DEFAULT_CODES.get(str(step.get("kind")))


class ScheduleKind:
    """The factory of ``schedule`` triggers. ``table`` is the session's trigger registry (plugins' kinds
    included: the dict is completed by the hook after this factory is made)."""

    kind = SCHEDULE
    requires: frozenset[str] = frozenset()

    def __init__(self, table: Mapping[str, Any]) -> None:
        self.table = table

    def __call__(self, ctx: "DrillContext", params: dict[str, Any]) -> "ScheduleTrigger":
        return ScheduleTrigger(ctx, params, self.table)

    def _steps(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        steps = params.get("steps")
        return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []

    def check_params(self, params: dict[str, Any]) -> list[str]:
        return check_steps(params, self.table)

    def requires_for(self, params: dict[str, Any]) -> frozenset[str]:
        """Backend capabilities of every step's kind."""
        caps: frozenset[str] = frozenset()
        for s in self._steps(params):
            factory = self.table.get(str(s.get("kind")))
            if factory is not None:
                caps |= requirements(factory, dict(s.get("params") or {}))[0]
        return caps

    def needs(self, params: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for s in self._steps(params):
            factory = self.table.get(str(s.get("kind")))
            if factory is not None:
                out += requirements(factory, dict(s.get("params") or {}))[1]
        return list(dict.fromkeys(out))


def check_steps(params: Mapping[str, Any], table: Mapping[str, Any]) -> list[str]:
    """Problems with a schedule's ``params`` (each naming ``steps[i]``), found at collection."""
    unknown = [k for k in params if k != "steps"]
    problems = [f"unknown parameter {k!r}; a schedule takes only 'steps'" for k in unknown]
    steps = params.get("steps")
    if not isinstance(steps, list) or not steps:
        return problems + ["'steps' must be a non-empty list of {kind, params, at_s, release_after_s}"]
    held: list[tuple[float, float, str, int]] = []
    for i, s in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{where}: must be a mapping, got {type(s).__name__}")
            continue
        problems += [f"{where}: unknown field {k!r}; known: {', '.join(STEP_FIELDS)}" for k in s if k not in STEP_FIELDS]
        kind = s.get("kind")
        at = s.get("at_s", 0)
        rel = s.get("release_after_s")
        if not isinstance(at, (int, float)) or isinstance(at, bool) or at < 0:
            problems.append(f"{where}.at_s: must be a number ≥ 0, got {at!r}")
            at = 0
        if rel is not None and (not isinstance(rel, (int, float)) or isinstance(rel, bool) or rel < 0):
            problems.append(f"{where}.release_after_s: must be a number ≥ 0, got {rel!r}")
            rel = None
        if "code" in s and s["code"] is not None and not isinstance(s["code"], str):
            problems.append(f"{where}.code: must be a latch reason code (string) or null, got {s['code']!r}")
        if not isinstance(kind, str) or kind not in table:
            problems.append(f"{where}.kind: unknown trigger kind {kind!r}; known: {', '.join(sorted(table))}")
            continue
        if kind.split(".")[0] == SCHEDULE:
            problems.append(f"{where}.kind: a schedule cannot contain a schedule ({kind})")
            continue
        step_params = s.get("params", {})
        if not isinstance(step_params, dict):
            problems.append(f"{where}.params: must be a mapping, got {type(step_params).__name__}")
            continue
        problems += [f"{where}.params ({kind}): {p}" for p in requirements(table[kind], dict(step_params))[2]]
        if kind in HELD_VENUE_KINDS:
            end = float(at) + float(rel) if rel is not None else float("inf")
            for a, b, k, j in held:
                if k == kind and float(at) < b and a < end:
                    problems.append(f"{where}: overlaps steps[{j}] ({kind}); the venue holds one {kind} "
                                    "condition, so both would be released together")
            held.append((float(at), end, kind, i))
    kinds = {s.get("kind") for s in steps if isinstance(s, dict)}
    if "venue.rest_latency" in kinds and any(isinstance(s, dict) and s.get("kind") == "process.kill_restart"
                                             and (s.get("params") or {}).get("hold_reconcile_s") for s in steps):
        problems.append("process.kill_restart with hold_reconcile_s clears the venue's rest_latency, which a "
                        "venue.rest_latency step of this schedule holds")
    return problems


class ScheduleTrigger(Trigger):
    """Runs a schedule's steps; each step is a trigger of its own kind and proves its own landing."""

    kind = SCHEDULE
    manages_target = True

    def __init__(self, ctx: "DrillContext", params: dict[str, Any], table: Mapping[str, Any]) -> None:
        super().__init__(ctx, params)
        order = sorted(range(len(params["steps"])), key=lambda i: (float(params["steps"][i].get("at_s", 0)), i))
        self.specs = [dict(params["steps"][i]) for i in order]
        self.table = table
        self.subs: list[Trigger | None] = [None] * len(self.specs)
        self.records: list[dict[str, Any]] = []
        self._released: set[int] = set()
        self.t0: float | None = None
        self._cv = threading.Condition()
        self._release_lock = threading.Lock()
        self._due: list[tuple[float, int]] = []   # timed releases: (monotonic due time, step index)
        self._closing = self._abandon = False

    # --- running ------------------------------------------------------------------------------------

    def fire(self) -> dict[str, Any]:
        """Start the schedule's clock; the steps run in :meth:`wait_landed`, which proves each landing."""
        self.t0 = time.monotonic()
        self.ctx.timeline.mark("schedule_started", steps=len(self.specs))
        return {"steps": [{k: s[k] for k in STEP_FIELDS if k in s} for s in self.specs]}

    def _run(self, land_timeout: float) -> None:
        """Fire every step at its offset, each proving its landing within ``land_timeout``; timed releases
        run on a timer thread meanwhile (a gap requested during a freeze lands only once the freeze is
        released), and all of them are done before this returns."""
        assert self.t0 is not None
        self.land_timeout = land_timeout
        releaser = threading.Thread(target=self._releaser, name="chaosdrill-schedule-releases", daemon=True)
        releaser.start()
        try:
            for i, spec in enumerate(self.specs):
                delay = self.t0 + float(spec.get("at_s", 0)) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # the schedule's own offsets: waiting is the drill, not a poll
                self._fire_step(i)
                rel = spec.get("release_after_s")
                if rel is not None:
                    with self._cv:
                        heapq.heappush(self._due, (self.records[i]["fired_mono"] + float(rel), i))
                        self._cv.notify()
            with self._cv:
                self._closing = True  # the releaser ends once every timed release is done
                self._cv.notify()
            releaser.join()
        finally:
            with self._cv:
                self._closing = self._abandon = True  # on failure: the drill's release() releases the rest
                self._cv.notify()

    def _releaser(self) -> None:
        while True:
            with self._cv:
                if self._abandon or (self._closing and not self._due):
                    return
                if not self._due or self._due[0][0] > time.monotonic():
                    self._cv.wait(None if not self._due else self._due[0][0] - time.monotonic())
                    continue
                _, i = heapq.heappop(self._due)
            self._release_step(i)

    def _fire_step(self, i: int) -> None:
        spec = self.specs[i]
        kind, params = spec["kind"], dict(spec.get("params") or {})
        sub = self.table[kind](self.ctx, dict(params))
        self.subs[i] = sub
        now = time.monotonic()
        rec: dict[str, Any] = {"kind": sub.kind or kind, "params": params, "target_side_hook": sub.target_side_hook,
                               "fired_mono": now}
        self.records.append(rec)
        late_ms = max(0.0, (now - (self.t0 or now) - float(spec.get("at_s", 0))) * 1000)
        self.ctx.timeline.mark(f"step_{i + 1}_fired", kind=kind, at_s=spec.get("at_s", 0), late_ms=round(late_ms, 1))
        try:
            rec["requested"] = _jsonable_dict(sub.fire() or {})
            proof = sub.wait_landed(self.land_timeout)
        except FaultNotLanded as exc:
            rec["not_landed"] = str(exc)
            raise FaultNotLanded(f"step {i + 1} ({kind}) did not land: {exc}") from None
        rec["proof"] = _jsonable_dict(proof)
        rec["landed_mono"] = sub.landed_mono if sub.landed_mono is not None else now
        rec["condition_ended_mono"] = sub.condition_ended_mono
        self.ctx.timeline.mark(f"step_{i + 1}_landed", kind=kind)
        if self.landed_mono is None:
            self.landed_mono = rec["landed_mono"]

    def _release_step(self, i: int) -> None:
        with self._release_lock:  # the timer thread and the drill's release() never release a step twice
            if i in self._released or self.subs[i] is None or i >= len(self.records):
                return
            self._released.add(i)
            self._do_release(i)

    def _do_release(self, i: int) -> None:
        rec = self.records[i]
        rec["released_mono"] = time.monotonic()
        try:
            rec["release"] = _jsonable_dict(self.subs[i].release() or {})  # type: ignore[union-attr]
        except Exception as exc:  # recorded; the other steps are still released
            rec["release_error"] = f"{type(exc).__name__}: {exc}"
        self.ctx.timeline.mark(f"step_{i + 1}_released", kind=self.specs[i]["kind"],
                               error=rec.get("release_error"))

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        self._run(timeout)  # raises FaultNotLanded naming the first step that did not land
        if self.landed_mono is None:
            raise FaultNotLanded("the schedule fired no step")
        self.proof = {"steps": [{"kind": r["kind"], "landed_mono": r.get("landed_mono")} for r in self.records]}
        return self.proof

    def release(self) -> dict[str, Any]:
        """Release every fired step not yet released, the latest first."""
        for i in reversed(range(len(self.records))):
            self._release_step(i)
        errors = {i + 1: r["release_error"] for i, r in enumerate(self.records) if r.get("release_error")}
        if errors:
            raise RuntimeError(f"releasing schedule steps failed: {errors}")
        return {"released_steps": len(self.records)}

    def finalize(self) -> None:
        for i, sub in enumerate(self.subs):
            if sub is None:
                continue
            sub.finalize()
            self.records[i]["condition_ended_mono"] = sub.condition_ended_mono
        ends = [r.get("condition_ended_mono") or r.get("released_mono") for r in self.records]
        self.condition_ended_mono = max((e for e in ends if e is not None), default=None)

    def step_records(self) -> list[dict[str, Any]]:
        """One :class:`~pytest_chaosdrill.record.StepRecord` (as a dict) per fired step, in firing order."""
        keep = ("kind", "params", "target_side_hook", "requested", "proof", "not_landed", "fired_mono", "landed_mono",
                "condition_ended_mono", "released_mono", "release", "release_error")
        return [{k: r[k] for k in keep if k in r} for r in self.records]


# --- the global invariants (pure functions of the record) -----------------------------------------


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


def _reads(rec: "DrillRecord", start: float, end: float) -> dict[str, list[float]]:
    reads: dict[str, list[float]] = {"positions": [], "orders_pending": []}
    for e in rec.ledger:
        if e.get("type") == "request" and e.get("recon_read") and start <= e.get("mono", 0) <= end \
                and e.get("status", 200) == 200:
            reads["positions" if "positions" in str(e.get("path", "")) else "orders_pending"].append(e["mono"])
    return reads


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
        missing = [k for k, v in _reads(rec, end, cleared.mono).items() if not v]
        if missing:
            out.append(f"step {n + 1} ({st.kind}): the latch cleared at sample {cleared.i} with no successful "
                       f"{' / '.join(missing)} read at the venue between the end of its condition and the clear")
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
    "no_duplicate_dispatch": invariant_no_duplicate_dispatch,
    "kill_needs_restart": invariant_kill_needs_restart,
}


def global_invariants(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """Every fault window keeps the invariants: no OPEN while blocked, the latch clears only after
    reconciliation reads made after each condition ended, no duplicate dispatch, Kill only ends by a restart.

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


def schedule_steps_yaml(steps: Iterable[Mapping[str, Any]]) -> str:
    """A schedule's steps as YAML (for messages and minimal drills)."""
    import yaml

    return yaml.safe_dump([dict(s) for s in steps], sort_keys=False, default_flow_style=None).rstrip()
