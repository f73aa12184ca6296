"""Fault schedules (trigger kind ``schedule``): several triggers fired at offsets, each proving its own
landing, released on a timer or at the end; a step may land inside the recovery of the one before."""
from __future__ import annotations

import heapq
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping

from ..schedule_steps import ALIGN_EVENTS, ALIGN_HOLD_MS, RECON_READ, SCHEDULE, STEP_FIELDS
from .base import CompositeKind, FaultNotLanded, Trigger, jsonable, requirements

if TYPE_CHECKING:  # pragma: no cover
    from ..context import DrillContext

#: Venue faults the venue keeps as one held condition per kind: two overlapping steps of one of these
#: kinds would be released together, so a schedule may not overlap them.
HELD_VENUE_KINDS = ("venue.freeze", "venue.lag", "venue.rate_limit", "venue.http_5xx", "venue.rest_latency",
                    "venue.clock_skew")


class ScheduleKind(CompositeKind):
    """The factory of ``schedule`` triggers: a schedule needs what each of its steps' kinds needs."""

    kind = SCHEDULE

    def __call__(self, ctx: "DrillContext", params: dict[str, Any]) -> "ScheduleTrigger":
        return ScheduleTrigger(ctx, params, self.table)

    def _steps(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        steps = params.get("steps")
        return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []

    def check_params(self, params: dict[str, Any]) -> list[str]:
        return check_steps(params, self.table)

    def parts(self, params: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
        return [(str(s.get("kind")), dict(s.get("params") or {})) for s in self._steps(params)]


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
        if "align" in s and s["align"] not in ALIGN_EVENTS:
            problems.append(f"{where}.align: {s['align']!r} is not an event a step can be aligned to; known: "
                            f"{', '.join(ALIGN_EVENTS)}")
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
                if spec.get("align") == RECON_READ:
                    self._fire_aligned(i)
                else:
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
            rec["requested"] = jsonable(sub.fire() or {})
            proof = sub.wait_landed(self.land_timeout)
        except FaultNotLanded as exc:
            rec["not_landed"] = str(exc)
            raise FaultNotLanded(f"step {i + 1} ({kind}) did not land: {exc}") from None
        rec["proof"] = jsonable(proof)
        rec["landed_mono"] = sub.landed_mono if sub.landed_mono is not None else now
        rec["condition_ended_mono"] = sub.condition_ended_mono
        self.ctx.timeline.mark(f"step_{i + 1}_landed", kind=kind)
        if self.landed_mono is None:
            self.landed_mono = rec["landed_mono"]

    def _fire_aligned(self, i: int) -> None:
        """Fire step ``i`` while a reconciliation read is outstanding at the venue: the venue holds each
        reconciliation answer ALIGN_HOLD_MS from now on; the step fires as soon as the venue reports one held
        (its ``recon_hold`` record's ``holding``), lands inside that hold, and the hold ends once the read it
        fired into was answered. No read within the landing timeout: the step did not land."""
        venue = self.ctx.venue
        hold = venue.recon_hold(ms=ALIGN_HOLD_MS)
        try:
            end = time.monotonic() + self.land_timeout
            held = None
            while held is None:
                rec = next((f for f in venue.faults() if f.id == hold.id), None)
                if rec is not None and rec.detail.get("holding"):
                    held = dict(rec.detail)
                elif time.monotonic() >= end:
                    self.records.append({"kind": self.specs[i]["kind"], "params": dict(self.specs[i].get("params") or {}),
                                         "fired_mono": time.monotonic(),
                                         "not_landed": f"no reconciliation read reached the venue within "
                                                       f"{self.land_timeout:g}s to align to"})
                    raise FaultNotLanded(f"step {i + 1} ({self.specs[i]['kind']}, align: {RECON_READ}): no "
                                         f"reconciliation read reached the venue within {self.land_timeout:g}s")
                else:
                    time.sleep(0.002)  # polling the venue's view of held reads (bounded by ``end``)
            self._fire_step(i)
            # the proof says which read it fired into: that read arrived before the step fired
            self.records[i]["proof"] = {**self.records[i]["proof"], "aligned": {
                "event": RECON_READ, "read_path": held.get("first_held_path"),
                "read_received_mono": held.get("holding_since_mono"), "hold_ms": ALIGN_HOLD_MS}}
            end = time.monotonic() + ALIGN_HOLD_MS / 1000 + 1.0
            while time.monotonic() < end:  # until the read the step fired into is answered
                rec_h = next((f for f in venue.faults() if f.id == hold.id), None)
                if rec_h is None or not rec_h.detail.get("holding"):
                    break
                time.sleep(0.01)
        finally:
            venue.clear(kind="recon_hold")

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
            rec["release"] = jsonable(self.subs[i].release() or {})  # type: ignore[union-attr]
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
