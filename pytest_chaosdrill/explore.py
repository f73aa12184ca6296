"""Exploring fault schedules with Hypothesis: a driver above the runner (drill files name it as
``trigger.kind: schedule.explore``; it is no trigger, and neither the runner nor any fault knows of it).

:class:`Exploration` is what the session hands a drill test for an exploring drill (the same surface as a
:class:`~pytest_chaosdrill.runner.DrillRun`: ``execute()``, ``record``, ``evaluation``). It draws schedules
(:mod:`.schedule_gen`), runs each through the runner's public entry point as an ordinary compound drill
(kind ``schedule``, check ``global_invariants``) against a fresh service (target stopped, venue reset),
reads each example's verdict from its stored record, lets Hypothesis shrink a violation (fewer steps,
earlier offsets, simpler parameters, the same way of failing) and writes the smallest failing schedule as
``minimal_drill.yaml``, a drill file that ``pytest --chaosdrill-drills minimal_drill.yaml`` replays. Its own
record has one step (``schedule.explore``) whose proof is the exploration's summary; the check
``explore_found_no_violation`` judges it.

The options ``--chaosdrill-explore-budget-s`` (wall time, checked before each example) and
``--chaosdrill-explore-seed`` bound and fix the search. Hypothesis is a test extra, imported only here
(inside :func:`import_hypothesis`, so a session without it still loads the plugin).
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import yaml

from . import deadline
from .backends.base import START
from .checks.invariants import violation_names
from .context import DrillContext
from .contract import Contract
from .drill import Drill, parse_drill
from .errors import DrillFailed, DrillNotProven, DrillTimeout
from .evidence import EvidenceWriter, Redactor, RunInfo, write_drill_evidence
from .faults import CompositeKind, requirements
from .record import COMPLETED, ERROR, INTERRUPTED, NOT_PROVEN, TIMEOUT, Recorder
from .runner import DrillRun, harness_error_of, raise_unless_passed
from .schedule_gen import GEN_PARAMS, Choice, ScheduleGenerator, align_problems
from .schedule_steps import EXPLORE, MINIMAL_FILE, SCHEDULE
from .timeline import Timeline, utc_now
from .verdict import Evaluation, evaluate

if TYPE_CHECKING:  # pragma: no cover
    from .checks import Check
    from .record import DrillRecord

log = logging.getLogger("chaosdrill")
PARAMS = GEN_PARAMS + ("time_to_safe_budget_ms", "recovery_timeout_s", "land_timeout_s")
POOL_FIELDS = ("kind", "params", "release_after_s", "code")
EXPLORED_FILE = "explored.jsonl"
FIRST_FAILURE_FILE = "failing_drill.yaml"


class HypothesisMissing(Exception):
    """Hypothesis is not installed (the exploring drill then ends NOT PROVEN saying how to get it)."""


def import_hypothesis() -> Any:
    """Hypothesis, or a clear error naming the extra that brings it."""
    try:
        import hypothesis
    except ImportError:
        raise HypothesisMissing("schedule.explore needs Hypothesis, which is not installed: "
                                "pip install 'pytest-chaosdrill[test]' (or pip install hypothesis)") from None
    return hypothesis


class ExploreKind(CompositeKind):
    """The validation of an exploring drill's parameters at collection (not a trigger factory: the
    registry keeps it apart from the trigger kinds): it needs what every kind of its pool needs, and a
    backend that can start the service (every example does)."""

    kind = EXPLORE
    base_requires = frozenset({START})

    def check_params(self, params: dict[str, Any]) -> list[str]:
        problems = [f"unknown parameter {k!r}; known: {', '.join(PARAMS)}" for k in params if k not in PARAMS]
        pool = params.get("pool")
        if not isinstance(pool, list) or not pool:
            return problems + ["'pool' must be a non-empty list of {kind, params, release_after_s, code}"]
        for i, d in enumerate(pool):
            where = f"pool[{i}]"
            if not isinstance(d, dict):
                problems.append(f"{where}: must be a mapping")
                continue
            problems += [f"{where}: unknown field {k!r}; known: {', '.join(POOL_FIELDS)}" for k in d if k not in POOL_FIELDS]
            kind = d.get("kind")
            if kind not in self.table or str(kind).split(".")[0] == SCHEDULE:
                problems.append(f"{where}.kind: {kind!r} is not a registered fault kind (schedules cannot be drawn)")
                continue
            alts = d.get("params", {})
            for j, p in enumerate(alts if isinstance(alts, list) else [alts]):
                if not isinstance(p, dict):
                    problems.append(f"{where}.params[{j}]: must be a mapping")
                    continue
                problems += [f"{where}.params[{j}] ({kind}): {x}" for x in requirements(self.table[kind], p)[2]]
            rel = d.get("release_after_s")
            for r in (rel if isinstance(rel, list) else [rel]):
                if r is not None and (not isinstance(r, (int, float)) or isinstance(r, bool) or r < 0):
                    problems.append(f"{where}.release_after_s: {r!r} is not a number ≥ 0 (or null: held)")
        offsets = params.get("offsets_s", [0.0])
        if not isinstance(offsets, list) or not offsets or not all(
                isinstance(o, (int, float)) and not isinstance(o, bool) and o >= 0 for o in offsets):
            problems.append("'offsets_s' must be a non-empty list of numbers ≥ 0")
        problems += align_problems(params)
        steps = params.get("max_steps", 4)
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= len(pool):
            problems.append(f"'max_steps' must be an integer from 1 to the pool size ({len(pool)}), got {steps!r}")
        return problems

    def parts(self, params: Mapping[str, Any]) -> list[tuple[Any, dict[str, Any]]]:
        out = []
        for d in params.get("pool", []) if isinstance(params.get("pool"), list) else []:
            if isinstance(d, dict):
                alts = d.get("params", {})
                out += [(d.get("kind"), dict(p) if isinstance(p, dict) else {})
                        for p in (alts if isinstance(alts, list) else [alts])]
        return out


@dataclass
class Example:
    """One explored schedule and how it ended."""

    n: int
    steps: list[dict[str, Any]]
    choices: tuple[Choice, ...]
    verdict: str = ""
    reason: str = ""
    signature: tuple[str, ...] = ()
    duration_s: float = 0.0
    run: Any = field(default=None, repr=False)

    @property
    def violation(self) -> bool:
        return self.verdict == "FAIL"

    def size(self) -> tuple[Any, ...]:
        """Smaller is simpler: fewer steps, earlier offsets, simpler choices."""
        return (len(self.steps), sum(float(s["at_s"]) for s in self.steps), sum(sum(c) for c in self.choices))

    def summary(self) -> dict[str, Any]:
        return {"n": self.n, "steps": self.steps, "verdict": self.verdict, "signature": list(self.signature),
                "duration_s": round(self.duration_s, 2), "reason": self.reason[:2000]}


class _BudgetSpent(BaseException):
    """The wall-time budget ran out (a BaseException, so Hypothesis lets it through)."""


class _Violation(AssertionError):
    """An explored schedule broke an invariant (raised for Hypothesis to shrink)."""


def signature_of(record: "DrillRecord | None", ev: Any) -> tuple[str, ...]:
    """How an example failed, in words independent of timing: the failed checks (and invariants), contract
    findings, status errors, recovery, the safe state."""
    if ev is None or record is None:
        return ()
    sig: set[str] = set()
    for r in ev.checks:
        if r.passed is False:
            names = violation_names(r.facts)
            sig |= {f"{r.name}:{n}" for n in names} if names else {r.name}
    if ev.sample_findings:
        sig.add("contract")
    if ev.status_errors:
        sig.add("status_errors")
    if record.recovery_missing:
        sig.add("recovery")
    if record.first_safe is None:
        sig.add("safe_not_observed")
    elif (record.time_to_safe_ms or 0) > float(record.drill.get("time_to_safe_budget_ms", 0)):
        sig.add("time_to_safe")
    return tuple(sorted(sig))


def example_drill(outer: Mapping[str, Any], steps: list[dict[str, Any]], drill_id: str, note: str = "") -> dict[str, Any]:
    """The compound drill (kind ``schedule``) that runs ``steps``: a valid drill file's content."""
    params = outer.get("trigger", {}).get("params", {})
    drill: dict[str, Any] = {
        "id": drill_id,
        "title": f"Fault schedule of {len(steps)} step(s) from {outer.get('id')}",
        "description": note or f"Drawn by the exploring drill {outer.get('id')}; replays with "
                               "pytest --chaosdrill-drills <this file>.",
        "markers": ["compound"],
        "trigger": {"kind": SCHEDULE, "params": {"steps": steps}, "hold_s": 0,
                    "land_timeout_s": float(params.get("land_timeout_s", 10.0))},
        "time_to_safe_budget_ms": float(params.get("time_to_safe_budget_ms", 15000)),
        "expected": {},
        "checks": [{"check": "global_invariants", "criterion": "Every fault window keeps the global invariants"}],
        "recovery": {"kind": "reconcile", "timeout_s": float(params.get("recovery_timeout_s", 20))},
        "timeout_s": 180,
    }
    if outer.get("steady_state"):
        drill["steady_state"] = dict(outer["steady_state"])
    if outer.get("backends"):
        drill["backends"] = list(outer["backends"])
    return drill


class Search:
    """Hypothesis over a :class:`ScheduleGenerator`: draws choices, runs each new schedule once through
    ``run_example`` (a schedule drawn again is served from the cache), shrinks the first violation keeping
    its signature. Independent of how an example runs, so it is tested without a service."""

    def __init__(self, gen: ScheduleGenerator, run_example: Callable[[int, list[dict[str, Any]], tuple[Choice, ...]], Example],
                 budget_s: float, seed: int) -> None:
        self.gen, self.run_example, self.budget_s, self.seed = gen, run_example, budget_s, seed
        self.examples: list[Example] = []
        self.signature: tuple[str, ...] | None = None
        self.cache_hits = 0
        self.stopped_by = ""
        self._cache: dict[str, Example] = {}

    def run(self) -> None:
        hyp = import_hypothesis()
        from hypothesis import strategies as st

        self.t_begin = time.monotonic()
        end = self.t_begin + self.budget_s
        self.stopped_by = "search exhausted"

        @hyp.settings(max_examples=10_000, deadline=None, database=None, report_multiple_bugs=False,
                      phases=(hyp.Phase.generate, hyp.Phase.shrink), suppress_health_check=list(hyp.HealthCheck),
                      verbosity=hyp.Verbosity.quiet)
        @hyp.seed(self.seed)
        @hyp.given(self.gen.strategy(st))
        def prop(choices: tuple[Choice, ...]) -> None:
            if time.monotonic() >= end:
                raise _BudgetSpent()
            steps = self.gen.steps_of(choices)
            key = json.dumps(steps, sort_keys=True)
            ex = self._cache.get(key)
            if ex is None:
                ex = self._cache[key] = self.run_example(len(self.examples) + 1, steps, choices)
                self.examples.append(ex)
            else:
                self.cache_hits += 1
            if ex.violation and (self.signature is None or ex.signature == self.signature):
                self.signature = self.signature or ex.signature
                raise _Violation(ex.reason)

        try:
            prop()
        except _BudgetSpent:
            self.stopped_by = "budget"
        except _Violation:
            self.stopped_by = "shrunk"  # Hypothesis replayed its minimal example and it failed again
        except Exception as exc:  # e.g. Flaky: the minimal example did not fail again on replay
            self.stopped_by = f"hypothesis: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    def elapsed_at(self, ex: Example) -> float:
        """The summed run time of the examples up to and including ``ex``."""
        return sum(e.duration_s for e in self.examples[: ex.n])

    def summary(self) -> dict[str, Any]:
        fails = [e for e in self.examples if e.violation]
        elapsed = time.monotonic() - self.t_begin
        return {
            "examples": len(self.examples), "conclusive": sum(e.verdict in ("PASS", "FAIL") for e in self.examples),
            "verdicts": {v: sum(e.verdict == v for e in self.examples) for v in sorted({e.verdict for e in self.examples})},
            "violations": len(fails), "signature": list(self.signature or ()), "budget_s": self.budget_s,
            "seed": self.seed, "elapsed_s": round(elapsed, 1), "stopped_by": self.stopped_by,
            "schedule_runtime_s": round(sum(e.duration_s for e in self.examples), 1), "cache_hits": self.cache_hits,
            "schedules_per_minute": round(len(self.examples) / max(1e-9, elapsed) * 60, 1),
        }

    def failing(self) -> tuple[Example, Example] | None:
        """The first failing example and the smallest one failing the same way, if any."""
        same = [e for e in self.examples if e.violation and e.signature == self.signature]
        if not same:
            return None
        return same[0], min(same, key=lambda e: (e.size(), -e.n))


class Exploration:
    """The driver of one exploring drill: examples run as drills of their own through
    :meth:`DrillRun.execute`; its own record and verdict as a drill's (``record``, ``evaluation``)."""

    def __init__(self, ctx: DrillContext, drill: Drill, *, contract: Contract, contract_info: Mapping[str, str],
                 triggers: Mapping[str, Any], checks: Mapping[str, "Check"], allow_live: bool = False,
                 backend: str = "", settings: Mapping[str, Any] | None = None,
                 missing: tuple[str, ...] | list[str] = ()) -> None:
        self.missing = list(missing)
        self.ctx, self.drill, self.contract, self.triggers, self.checks = ctx, drill, contract, triggers, checks
        self.allow_live = allow_live
        self.settings = dict(settings or {})
        self.gen = ScheduleGenerator(drill.trigger_params)
        self.rec = Recorder(drill=drill.raw, drill_path=str(drill.path), backend=backend or ctx.target.backend,
                            target_name=ctx.rendered.config.name, target_files=tuple(ctx.rendered.files),
                            contract=contract_info, timeline=ctx.timeline)
        self.contract_info = dict(contract_info)
        self.record: "DrillRecord | None" = None
        self.evaluation: Evaluation | None = None
        self.search: Search | None = None

    # --- the drill ----------------------------------------------------------------------------------

    def execute(self) -> Evaluation:
        """Explore; raise :class:`DrillFailed` / :class:`DrillNotProven` unless the exploration passed."""
        rec, ctx = self.rec, self.ctx
        budget = float(self.settings.get("explore_budget_s") or 60)
        self.seed = seed = int(self.settings.get("explore_seed") or 0)
        rec.set(outcome=COMPLETED)
        step = rec.step(EXPLORE, self.drill.trigger_params, False)
        rec.phase("explore", budget_s=budget, seed=seed)
        self.scratch = self._scratch()
        self.explored = self.scratch / EXPLORED_FILE
        self.explored.write_text("", encoding="utf-8")
        rec.attach(EXPLORED_FILE, str(self.explored))  # kept even if the exploration is interrupted
        t0 = time.monotonic()
        rec.set(t_trigger=t0)
        step["fired_mono"] = t0
        step["requested"] = {"budget_s": budget, "seed": seed, "pool": [e.kind for e in self.gen.pool],
                             "offsets_s": self.gen.offsets, "align": self.gen.align, "max_steps": self.gen.max_steps}
        try:
            self._explore(step, budget, seed)
        except DrillTimeout:  # the drill's own deadline (timeout_s): what was explored is still summarized
            rec.set(outcome=TIMEOUT, outcome_reason=f"the drill's timeout ({self.drill.timeout_s:g}s) passed "
                                                    "during the exploration")
            self._stop_target()
            if self.search is not None:
                step["proof"] = self._summarize()
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, the halt file: reported, then passed on
            rec.set(outcome=INTERRUPTED, outcome_reason="interrupted during the exploration")
            self._stop_target()
            self._finish()
            raise
        except Exception as exc:
            component, last = harness_error_of(exc)
            rec.fact("harness_error", {"component": component, "error": last})
            rec.set(outcome=ERROR, outcome_reason=f"harness error in {component}: {last} (exploring)")
            self._stop_target()
            self._finish()
            raise
        return self._finish()

    def _explore(self, step: dict[str, Any], budget: float, seed: int) -> None:
        rec = self.rec
        if self.missing:
            rec.set(outcome=NOT_PROVEN, outcome_reason=f"the target file ({self.ctx.rendered.config.source}) declares "
                    f"no {', '.join(self.missing)}, which the explored faults need (docs/targets.md)")
            return
        try:
            hyp = import_hypothesis()
        except HypothesisMissing as exc:
            step["not_landed"] = str(exc)
            rec.set(outcome=NOT_PROVEN, outcome_reason=str(exc))
            return
        step["requested"]["hypothesis"] = hyp.__version__
        self.search = Search(self.gen, self._run_example, budget, seed)
        self.search.run()
        self._stop_target()
        summary = self._summarize()
        step["proof"] = summary
        end = time.monotonic()
        if not summary["conclusive"]:
            step["not_landed"] = (f"no explored schedule ran to a verdict within the budget "
                                  f"({summary['verdicts']}; see {EXPLORED_FILE})")
            if rec["outcome"] == COMPLETED:
                rec.set(outcome=NOT_PROVEN, outcome_reason=step["not_landed"])
            return
        step["landed_mono"] = step["condition_ended_mono"] = end
        # the exploration ends with the service stopped: its safe state (safe_when: target_exited)
        rec.set(first_safe_i=-1, first_safe_mono=end)

    def _finish(self) -> Evaluation:
        self.rec.set(t_end=time.monotonic())
        self.record = self.rec.freeze()
        self.evaluation = ev = evaluate(self.record, self.contract, self.checks)
        log.info("%s: %s%s", self.drill.id, ev.verdict.value, f" ({ev.reason})" if ev.reason else "")
        return raise_unless_passed(ev)

    def _stop_target(self) -> None:
        if self.ctx.target.running():
            self.ctx.target.stop(self.ctx.rendered.config.stop_timeout_s)

    def _scratch(self) -> Path:
        base = getattr(self.ctx.target, "log_dir", None)
        root = Path(base).parent if base else Path(tempfile.mkdtemp(prefix="chaosdrill-explore-"))
        out = root / "explore"
        out.mkdir(parents=True, exist_ok=True)
        return out

    # --- one example --------------------------------------------------------------------------------

    def _run_example(self, n: int, steps: list[dict[str, Any]], choices: tuple[Choice, ...]) -> Example:
        """Run one schedule as a compound drill on a fresh service (stopped target, venue reset) through the
        runner, and judge it by its record's verdict."""
        ctx = self.ctx
        ex = Example(n, steps, choices)
        drill_id = f"{self.drill.id}_example_{n}"
        drill = parse_drill(example_drill(self.drill.raw, steps, drill_id), Path(f"{drill_id}.yaml"))
        self._stop_target()
        ctx.venue.reset()  # fresh venue: no orders, positions, faults or ledger from earlier examples
        nctx = DrillContext(target=ctx.target, rendered=ctx.rendered, venue=ctx.venue, proxy=ctx.proxy,
                            timeline=Timeline(), sample_interval_s=ctx.sample_interval_s, local_hosts=ctx.local_hosts,
                            harness_info=ctx.harness_info)
        run = DrillRun(nctx, drill, contract=self.contract, contract_info=self.contract_info, triggers=self.triggers,
                       checks=self.checks, allow_live=self.allow_live, backend=str(self.rec["backend"]))
        t = time.monotonic()
        error = ""
        # the runner disarms the deadline at its release; the exploring drill's goes on (or, spent, ends it)
        with deadline.kept_across():
            try:
                run.execute()
            except (DrillFailed, DrillNotProven):
                pass
            except Exception as exc:  # a harness error in one example is recorded (ERROR), not shrunk as a bug
                error = f"{type(exc).__name__}: {exc}"
            finally:
                ex.duration_s = time.monotonic() - t
                self._stop_target()
        ev = run.evaluation
        ex.verdict = ev.verdict.value if ev is not None else "ERROR"
        ex.reason = ev.reason if ev is not None else error
        ex.signature = signature_of(run.record, ev) if ex.violation else ()
        ex.run = run if ex.violation else None  # only failing runs stay in memory (their evidence is kept)
        with self.explored.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(ex.summary(), sort_keys=True, default=str) + "\n")
        log.info("%s: example %d (%d step(s)): %s %s", self.drill.id, n, len(steps), ex.verdict, ex.reason[:200])
        return ex

    # --- what is kept -------------------------------------------------------------------------------

    def _summarize(self) -> dict[str, Any]:
        search = self.search
        assert search is not None
        out = search.summary()
        found = search.failing()
        if found is not None:
            first, minimal = found
            out["first_failure"] = self._keep(first, "first_failure", FIRST_FAILURE_FILE)
            out["minimal"] = self._keep(minimal, "minimal", MINIMAL_FILE)
            out["time_to_first_failure_s"] = round(search.elapsed_at(first), 1)
            out["time_to_minimal_s"] = round(search.elapsed_at(minimal), 1)
        return out

    def _keep(self, ex: Example, name: str, drill_file: str) -> dict[str, Any]:
        """Write ``ex``'s drill file and full evidence into the scratch folder and attach both."""
        drill_id = f"{self.drill.id}_{name}"
        note = (f"{'Smallest' if name == 'minimal' else 'First'} failing schedule found by {self.drill.id} "
                f"(example {ex.n}, seed {self.seed}); it failed with: {ex.reason[:500]}")
        path = self.scratch / drill_file
        path.write_text(yaml.safe_dump(example_drill(self.drill.raw, ex.steps, drill_id, note), sort_keys=False),
                        encoding="utf-8")
        self.rec.attach(drill_file, str(path))
        folder = self._example_evidence(ex, name)
        if folder is not None:
            self.rec.attach(f"examples/{name}", str(folder))
        return {"n": ex.n, "steps": ex.steps, "reason": ex.reason, "drill_file": drill_file,
                "evidence": f"examples/{name}", "duration_s": round(ex.duration_s, 2)}

    def _example_evidence(self, ex: Example, name: str) -> Path | None:
        """The example's evidence folder, written the way the plugin writes a drill's."""
        run = ex.run
        if run is None or run.record is None:
            return None
        root = self.scratch / f"evidence_{name}"
        info = RunInfo(f"example_{ex.n}", root, None, utc_now(), str(run.rec["backend"]))
        info.create()
        writer = EvidenceWriter(info, "examples", name, Redactor(self.ctx.rendered.secrets()))
        logs = self.ctx.target.logs()
        start_log = [p for p in logs if p.name.endswith(".log")][-1:] if logs else []
        write_drill_evidence(writer, record=run.record, evaluation=run.evaluation, rendered=self.ctx.rendered,
                             nodeid=f"{self.drill.id}::example_{ex.n}", drill_id=run.drill.id,
                             title=run.drill.title, backend=str(run.rec["backend"]), verdict=ex.verdict,
                             reason=ex.reason, backend_info={}, log_files=start_log)
        return writer.dir
