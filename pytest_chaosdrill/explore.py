"""Exploring fault schedules with Hypothesis (trigger kind ``schedule.explore``): a driver above the
runner, in the layer of the registry (which lists it as a trigger kind so drill files name it), never
imported by a fault or a check.

Hypothesis draws schedules (1 to ``max_steps`` steps of distinct kinds from ``pool``, each at one of
``offsets_s`` after the step before it);
each one runs as a compound drill (kind ``schedule``) against a fresh service: the target is stopped,
the venue reset, and the example's drill starts the target again, proves steady state, injects the
steps, verifies recovery and evaluates the global invariants. A violation (the example's verdict is
FAIL) is shrunk by Hypothesis (fewer steps, earlier offsets, simpler parameters, the same way of
failing), and the smallest failing schedule is written as ``minimal_drill.yaml``, a drill file that
``pytest --chaosdrill-drills minimal_drill.yaml`` replays.

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
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from . import deadline
from .backends.base import START
from .checks.invariants import violation_names
from .context import DrillContext
from .drill import parse_drill
from .evidence import EvidenceWriter, Redactor, RunInfo, write_drill_evidence
from .faults import CompositeKind, FaultNotLanded, Trigger, requirements
from .runner import DrillFailed, DrillNotProven, DrillRun
from .schedule_steps import EXPLORE, MINIMAL_FILE, SCHEDULE
from .timeline import Timeline, utc_now

if TYPE_CHECKING:  # pragma: no cover
    from .record import DrillRecord

log = logging.getLogger("chaosdrill")
PARAMS = ("pool", "offsets_s", "max_steps", "time_to_safe_budget_ms", "recovery_timeout_s", "land_timeout_s")
POOL_FIELDS = ("kind", "params", "release_after_s", "code")
EXPLORED_FILE = "explored.jsonl"
FIRST_FAILURE_FILE = "failing_drill.yaml"


def import_hypothesis() -> Any:
    """Hypothesis, or a clear error naming the extra that brings it."""
    try:
        import hypothesis
    except ImportError:
        raise FaultNotLanded("schedule.explore needs Hypothesis, which is not installed: "
                             "pip install 'pytest-chaosdrill[test]' (or pip install hypothesis)") from None
    return hypothesis


@dataclass(frozen=True)
class PoolEntry:
    """One trigger kind the explorer may draw, with its parameter and release alternatives (the first of
    each is the simplest: Hypothesis shrinks towards it)."""

    kind: str
    params: tuple[dict[str, Any], ...]
    release_after_s: tuple[float | None, ...] = (None,)
    code: Any = ...  # ... : the kind's default latch code

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> "PoolEntry":
        params = d.get("params", {})
        alts = tuple(dict(p) for p in (params if isinstance(params, list) else [params]))
        rel = d.get("release_after_s")
        rels = tuple(rel) if isinstance(rel, list) else (rel,)
        return cls(str(d["kind"]), alts or ({},), rels, d["code"] if "code" in d else ...)

    def step(self, at_s: float, p: int, r: int) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "params": dict(self.params[p]), "at_s": at_s}
        if self.release_after_s[r] is not None:
            out["release_after_s"] = self.release_after_s[r]
        if self.code is not ...:
            out["code"] = self.code
        return out


def pool_of(params: Mapping[str, Any]) -> list[PoolEntry]:
    return [PoolEntry.parse(d) for d in params.get("pool", [])]


class ExploreKind(CompositeKind):
    """The factory of ``schedule.explore`` triggers (validated at collection like any trigger): it needs
    what every kind of its pool needs, and a backend that can start the service (every example does)."""

    kind = EXPLORE
    base_requires = frozenset({START})

    def __call__(self, ctx: "DrillContext", params: dict[str, Any]) -> "ExploreTrigger":
        return ExploreTrigger(ctx, params, self.table)

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
    choices: tuple[tuple[int, int, int, int], ...]
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


class ExploreTrigger(Trigger):
    """Draws schedules, runs each on a fresh service, shrinks a violation; the proof is the exploration's
    summary (every example's verdict). The service is left stopped (the drill's ``safe_when: target_exited``)."""

    kind = EXPLORE
    manages_target = True

    def __init__(self, ctx: "DrillContext", params: dict[str, Any], table: Mapping[str, Any]) -> None:
        super().__init__(ctx, params)
        self.table = table
        self.pool = pool_of(params)
        self.offsets = [float(o) for o in params.get("offsets_s", [0.0])]
        self.max_steps = int(params.get("max_steps", 4))
        self.run: "DrillRun | None" = None
        self.examples: list[Example] = []
        self.signature: tuple[str, ...] | None = None
        self.summary: dict[str, Any] = {}
        self._cache: dict[str, Example] = {}
        self.cache_hits = 0

    def bind_run(self, run: "DrillRun") -> None:
        """The outer drill run: its contract, registries, settings and recorder (for attachments)."""
        self.run = run

    # --- the search -------------------------------------------------------------------------------------

    def steps_of(self, choices: tuple[tuple[int, int, int, int], ...]) -> list[dict[str, Any]]:
        """The schedule of drawn choices. ``offsets_s`` are gaps after the previous step (the first step is
        at 0): a step lands inside the reconciliation or recovery of the one before it."""
        steps, at = [], 0.0
        for n, (k, o, p, r) in enumerate(choices):
            at = round(at + (self.offsets[o] if n else 0.0), 3)
            steps.append(self.pool[k].step(at, p, r))
        return steps

    def strategy(self, st: Any) -> Any:
        def entry(k: int) -> Any:
            e = self.pool[k]
            return st.tuples(st.just(k), st.integers(0, len(self.offsets) - 1), st.integers(0, len(e.params) - 1),
                             st.integers(0, len(e.release_after_s) - 1))

        one = st.integers(0, len(self.pool) - 1).flatmap(entry)
        return st.lists(one, min_size=1, max_size=self.max_steps, unique_by=lambda c: c[0]).map(tuple)

    def fire(self) -> dict[str, Any]:
        hyp = import_hypothesis()
        from hypothesis import strategies as st

        assert self.run is not None, "schedule.explore runs only inside a drill run"
        settings = self.run.settings
        budget = float(settings.get("explore_budget_s") or 60)
        seed = self.seed = int(settings.get("explore_seed") or 0)
        self.scratch = self._scratch()
        self.explored = self.scratch / EXPLORED_FILE
        self.explored.write_text("", encoding="utf-8")
        self.run.rec.attach(EXPLORED_FILE, str(self.explored))  # kept even if the exploration is interrupted
        self.t_begin = time.monotonic()
        deadline = self.t_begin + budget
        ctx = self.ctx
        # The examples sample the service with their own timelines; the outer sampler would only double
        # the load on the service, so it stops here (its samples end at the start of the exploration).
        ctx.expect_downtime(True)
        if ctx.sampler is not None:
            ctx.sampler.stop()
        ctx.target.stop(ctx.rendered.config.stop_timeout_s)
        stopped_by = "search exhausted"

        @hyp.settings(max_examples=10_000, deadline=None, database=None, report_multiple_bugs=False,
                      phases=(hyp.Phase.generate, hyp.Phase.shrink), suppress_health_check=list(hyp.HealthCheck),
                      verbosity=hyp.Verbosity.quiet)
        @hyp.seed(seed)
        @hyp.given(self.strategy(st))
        def prop(choices: tuple[tuple[int, int, int, int], ...]) -> None:
            if time.monotonic() >= deadline:
                raise _BudgetSpent()
            # A schedule already run is not run again (Hypothesis may draw it twice while shrinking): its
            # verdict is reused, and counted as a cache hit in the summary.
            steps_key = json.dumps(self.steps_of(choices), sort_keys=True)
            ex = self._cache.get(steps_key)
            if ex is None:
                ex = self._cache[steps_key] = self._run_example(choices)
            else:
                self.cache_hits += 1
            if ex.violation and (self.signature is None or ex.signature == self.signature):
                self.signature = self.signature or ex.signature
                raise _Violation(ex.reason)

        try:
            prop()
        except _BudgetSpent:
            stopped_by = "budget"
        except _Violation:
            stopped_by = "shrunk"  # Hypothesis replayed its minimal example and it failed again
        except Exception as exc:  # e.g. Flaky: the minimal example did not fail again on replay
            stopped_by = f"hypothesis: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            if ctx.target.running():
                ctx.target.stop(ctx.rendered.config.stop_timeout_s)
        self.summary = self._summarize(budget, seed, stopped_by)
        return {"budget_s": budget, "seed": seed, "pool": [e.kind for e in self.pool], "offsets_s": self.offsets,
                "max_steps": self.max_steps, "hypothesis": hyp.__version__}

    def _scratch(self) -> Path:
        base = getattr(self.ctx.target, "log_dir", None)
        root = Path(base).parent if base else Path(tempfile.mkdtemp(prefix="chaosdrill-explore-"))
        out = root / "explore"
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _run_example(self, choices: tuple[tuple[int, int, int, int], ...]) -> Example:
        """Run one schedule as a compound drill on a fresh service (stopped target, venue reset)."""
        assert self.run is not None
        ctx, outer = self.ctx, self.run
        n = len(self.examples) + 1
        ex = Example(n, self.steps_of(choices), choices)
        drill_id = f"{outer.drill.id}_example_{n}"
        raw = example_drill(outer.drill.raw, ex.steps, drill_id)
        drill = parse_drill(raw, Path(f"{drill_id}.yaml"))
        if ctx.target.running():
            ctx.target.stop(ctx.rendered.config.stop_timeout_s)
        ctx.venue.reset()  # fresh venue: no orders, positions, faults or ledger from earlier examples
        nctx = DrillContext(target=ctx.target, rendered=ctx.rendered, venue=ctx.venue, proxy=ctx.proxy,
                            timeline=Timeline(), sample_interval_s=ctx.sample_interval_s, local_hosts=ctx.local_hosts,
                            harness_info=ctx.harness_info)
        nrun = DrillRun(nctx, drill, contract=outer.contract, contract_info=outer.rec["contract"],
                        triggers=outer.triggers, checks=outer.checks, allow_live=outer.allow_live,
                        backend=outer.rec["backend"])
        t = time.monotonic()
        timer = deadline.remaining()
        error = ""
        try:
            nrun.execute()
        except (DrillFailed, DrillNotProven):
            pass
        except Exception as exc:  # a harness error in one example is recorded (ERROR), not shrunk as a bug
            error = f"{type(exc).__name__}: {exc}"
        finally:
            deadline.resume(timer, time.monotonic() - t)
            ex.duration_s = time.monotonic() - t
            ctx.target.stop(ctx.rendered.config.stop_timeout_s)
        ev = nrun.evaluation
        ex.verdict = ev.verdict.value if ev is not None else "ERROR"
        ex.reason = ev.reason if ev is not None else error
        ex.signature = signature_of(nrun.record, ev) if ex.violation else ()
        ex.run = nrun
        self.examples.append(ex)
        with self.explored.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(ex.summary(), sort_keys=True, default=str) + "\n")
        log.info("%s: example %d (%d step(s)): %s %s", outer.drill.id, n, len(ex.steps), ex.verdict, ex.reason[:200])
        if not ex.violation:
            ex.run = None  # keep only failing runs in memory (their evidence is written below)
        return ex

    def _summarize(self, budget: float, seed: int, stopped_by: str) -> dict[str, Any]:
        assert self.run is not None
        rec = self.run.rec
        rec.attach(EXPLORED_FILE, str(self.explored))
        fails = [e for e in self.examples if e.violation]
        same = [e for e in fails if e.signature == self.signature]
        out: dict[str, Any] = {
            "examples": len(self.examples), "conclusive": sum(e.verdict in ("PASS", "FAIL") for e in self.examples),
            "verdicts": {v: sum(e.verdict == v for e in self.examples) for v in sorted({e.verdict for e in self.examples})},
            "violations": len(fails), "signature": list(self.signature or ()), "budget_s": budget, "seed": seed,
            "elapsed_s": round(time.monotonic() - self.t_begin, 1), "stopped_by": stopped_by,
            "schedule_runtime_s": round(sum(e.duration_s for e in self.examples), 1), "cache_hits": self.cache_hits,
            "schedules_per_minute": round(len(self.examples) / max(1e-9, time.monotonic() - self.t_begin) * 60, 1),
        }
        if same:
            first = same[0]
            minimal = min(same, key=lambda e: (e.size(), -e.n))
            out["first_failure"] = self._keep(first, "first_failure", FIRST_FAILURE_FILE)
            out["minimal"] = self._keep(minimal, "minimal", MINIMAL_FILE)
            out["time_to_first_failure_s"] = round(self._elapsed_at(first), 1)
            out["time_to_minimal_s"] = round(self._elapsed_at(minimal), 1)
        return out

    def _elapsed_at(self, ex: Example) -> float:
        return sum(e.duration_s for e in self.examples[: ex.n])

    def _keep(self, ex: Example, name: str, drill_file: str) -> dict[str, Any]:
        """Write ``ex``'s drill file and full evidence into the scratch folder and attach both."""
        assert self.run is not None
        drill_id = f"{self.run.drill.id}_{name}"
        note = (f"{'Smallest' if name == 'minimal' else 'First'} failing schedule found by {self.run.drill.id} "
                f"(example {ex.n}, seed {self.seed}); it failed with: {ex.reason[:500]}")
        path = self.scratch / drill_file
        path.write_text(yaml.safe_dump(example_drill(self.run.drill.raw, ex.steps, drill_id, note), sort_keys=False),
                        encoding="utf-8")
        self.run.rec.attach(drill_file, str(path))
        folder = self._example_evidence(ex, name)
        if folder is not None:
            self.run.rec.attach(f"examples/{name}", str(folder))
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
                             nodeid=f"{self.run.drill.id}::example_{ex.n}" if self.run else "", drill_id=run.drill.id,
                             title=run.drill.title, backend=str(run.rec["backend"]), verdict=ex.verdict,
                             reason=ex.reason, backend_info={}, log_files=start_log)
        return writer.dir

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        conclusive = self.summary.get("conclusive", 0)
        if not conclusive:
            raise FaultNotLanded(f"no explored schedule ran to a verdict within the budget "
                                 f"({self.summary.get('verdicts')}; see {EXPLORED_FILE})")
        self.landed_mono = self.condition_ended_mono = time.monotonic()
        self.proof = dict(self.summary)
        return self.proof
