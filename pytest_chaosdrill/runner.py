"""The drill lifecycle: start → steady state proven → trigger + proof → sample → assert → recover.

A :class:`DrillRun` owns one drill against one assembled environment (:class:`DrillContext`). Its
``execute`` raises :class:`DrillNotProven` when the steady state or the fault cannot be proven and
:class:`DrillFailed` when a criterion fails; either way the facts it gathered stay on the object for
the evidence writer.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import requests

from .checks import CheckResult, Check, ledger_orders
from .contract import Contract, Finding
from .drill import Drill
from .expect import Comparison, Expectation
from .faults import FaultNotLanded, Trigger, TriggerFactory
from .target import RenderedTarget, refuse_live
from .timeline import Sample, StatusSampler, Timeline, open_blocked, utc_now, wait_until


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_PROVEN = "NOT PROVEN"
    ERROR = "ERROR"
    TIMEOUT = "TIMEOUT"
    INTERRUPTED = "INTERRUPTED"
    SKIPPED = "SKIPPED"


class DrillNotProven(AssertionError):
    """The drill could not prove its steady state or its fault; it fails closed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"NOT PROVEN: {reason}")
        self.reason = reason


class DrillFailed(AssertionError):
    """At least one pass criterion failed."""


@dataclass
class DrillContext:
    """Everything a drill acts on and observes. Fixtures assemble it; plugins may extend it."""

    drill: Drill
    target: Any                 # a backend: ProcessTarget, DockerTarget, ExternalTarget
    rendered: RenderedTarget
    venue: Any                  # VenueControl / VenueClient
    proxy: Any                  # ProxyLink (the target↔venue link), or None
    timeline: Timeline
    contract: Contract
    contract_paths: dict[str, str]
    fixture_dirs: list[Path] = field(default_factory=list)
    triggers: dict[str, TriggerFactory] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    sample_interval_s: float = 0.005
    allow_live: bool = False
    local_hosts: tuple[str, ...] = ()
    sampler: StatusSampler | None = None

    def expect_downtime(self, down: bool) -> None:
        """Mark planned downtime (crash, restart, STOP): status errors inside it are expected, and the
        sampler gives up on a hanging request quickly so the first answer after a restart is not missed."""
        self.timeline.mark("target_down" if down else "target_up")
        if self.sampler is not None:
            self.sampler.timeout_s = 0.3 if down else self.sampler.default_timeout_s

    def status_once(self, timeout: float = 1.0) -> Any:
        resp = requests.get(self.rendered.status_url, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def wait_target_serving(self, timeout: float | None = None) -> Any:
        """Wait until the status endpoint answers a JSON object; returns it."""
        timeout = timeout or self.rendered.config.startup_timeout_s

        def probe() -> Any:
            if hasattr(self.target, "running") and not self.target.running():
                raise DrillNotProven(f"target exited during start-up (exit status {self.target.returncode()}); "
                                     "see the target log in the evidence folder")
            try:
                st = self.status_once()
            except (requests.RequestException, ValueError):
                return None
            return st if isinstance(st, dict) else None

        status = wait_until(probe, timeout, pause=0.05)
        if status is None:
            raise DrillNotProven(f"target status {self.rendered.status_url} did not answer within {timeout}s")
        return status

    def read_json_file(self, name: str) -> Any:
        path = self.rendered.files.get(name)
        if not path or not Path(path).exists():
            return None
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            return {"_unreadable": f"{type(exc).__name__}: {exc}"}


class DrillRun:
    """One execution of one drill; its attributes are the facts the evidence is written from."""

    def __init__(self, ctx: DrillContext) -> None:
        self.ctx = ctx
        self.drill = ctx.drill
        self.timeline = ctx.timeline
        self.contract_paths = ctx.contract_paths
        self.verdict: Verdict | None = None
        self.reason = ""
        self.phase = "created"
        self.trigger: Trigger | None = None
        self.trigger_info: dict[str, Any] = {}
        self.release_info: dict[str, Any] = {}
        self.t_start = time.monotonic()
        self.t_trigger: float | None = None
        self.t_landed: float | None = None
        self.t_release: float | None = None
        self.t_recovered: float | None = None
        self.t_end: float | None = None
        self.first_safe: Sample | None = None
        self.baseline: Sample | None = None
        self.observed: dict[str, Any] | None = None
        self.observed_sample: Sample | None = None
        self.expectation: Expectation | None = None
        self.comparison: Comparison | None = None
        self.sample_findings: list[tuple[Sample, list[Finding]]] = []
        self.check_results: list[CheckResult] = []
        self.ledger: list[dict[str, Any]] = []
        self.files: dict[str, Any] = {}
        self.facts: dict[str, Any] = {}
        self.notes: list[str] = []
        self.sampler: StatusSampler | None = None
        self.started_utc = utc_now()

    # --- derived facts ----------------------------------------------------------------------------

    @property
    def time_to_safe_ms(self) -> float | None:
        if self.first_safe is None or self.t_safe_origin is None:
            return None
        return max(0.0, (self.first_safe.mono - self.t_safe_origin) * 1000)

    @property
    def t_safe_origin(self) -> float | None:
        """Time-to-safe counts from the moment the fault physically landed (else from the trigger)."""
        return self.t_landed if self.t_landed is not None else self.t_trigger

    @property
    def observed_findings(self) -> list[Finding] | None:
        """Contract findings of the observed status (None when nothing was observed); computed once."""
        if self.observed is None:
            return None
        if getattr(self, "_observed_findings", None) is None or self._observed_for is not self.observed:
            self._observed_findings, self._observed_for = self.ctx.contract.check(self.observed), self.observed
        return self._observed_findings

    @property
    def t_condition_ended(self) -> float | None:
        """When the fault's condition ended: a one-shot fault ends as it lands, a held one at release,
        a crash at the restart."""
        if self.trigger is not None and getattr(self.trigger, "condition_ended_mono", None) is not None:
            return self.trigger.condition_ended_mono
        return self.t_release

    def blocked_window(self) -> tuple[float | None, float | None]:
        """The span in which the status proved OPEN blocked: from the first blocked answer to the request
        time of the last blocked sample before recovery. Bounded by samples on both sides, so an order
        sent just after the target unblocked (before the next sample could show it) is not counted."""
        if self.first_safe is None:
            return None, None
        end_limit = self.t_recovered or self.t_end or time.monotonic()
        if self.first_safe.ok:
            last = None
            for s in self.timeline.between(self.first_safe.sent_mono, end_limit):
                if s.ok and s.mono < end_limit and s.blocked:
                    last = s
            end = last.sent_mono if last is not None else self.first_safe.mono
            return self.first_safe.mono, max(end, self.first_safe.mono)
        return self.first_safe.mono, end_limit

    def blocked_window_samples(self) -> list[Sample]:
        if self.first_safe is None:
            return []
        end_limit = self.t_recovered or self.t_end or time.monotonic()
        # End exclusive: the sample that shows recovery is not part of the blocked window.
        return [s for s in self.timeline.between(self.first_safe.sent_mono, end_limit) if s.ok and s.mono < end_limit]

    # --- lifecycle ----------------------------------------------------------------------------------

    def execute(self) -> None:
        try:
            self._execute()
        finally:
            self.t_end = self.t_end or time.monotonic()
            self._stop_sampler()
            self._collect_witness()

    def _set_phase(self, phase: str, **detail: Any) -> None:
        self.phase = phase
        self.timeline.mark(phase, **detail)

    def _execute(self) -> None:
        ctx = self.ctx
        refuse_live(ctx.rendered, allow_live=ctx.allow_live, extra_hosts=ctx.local_hosts)
        self._set_phase("start")
        ctx.target.start()
        first = ctx.wait_target_serving()
        refuse_live(ctx.rendered, allow_live=ctx.allow_live, extra_hosts=ctx.local_hosts, status=first)
        self.sampler = StatusSampler(ctx.rendered.status_url, self.timeline, interval_s=ctx.sample_interval_s).start()
        ctx.sampler = self.sampler

        self._set_phase("steady_state")
        self._prove_steady_state()

        self._set_phase("trigger")
        factory = ctx.triggers.get(self.drill.trigger_kind)
        if factory is None:
            raise DrillNotProven(f"unknown trigger kind {self.drill.trigger_kind!r}; known: {sorted(ctx.triggers)}")
        self.trigger = factory(ctx, dict(self.drill.trigger_params))
        self.t_trigger = time.monotonic()
        try:
            self.trigger_info = {"requested": _jsonable(self.trigger.fire() or {})}
            proof = self.trigger.wait_landed(self.drill.land_timeout_s)
        except FaultNotLanded as exc:
            self.trigger_info["not_landed"] = str(exc)
            self._release()
            raise DrillNotProven(str(exc)) from None
        self.trigger_info["proof"] = _jsonable(proof)
        self.t_landed = self.trigger.landed_mono if self.trigger.landed_mono is not None else self.t_trigger
        self.timeline.mark("fault_landed", proof=_jsonable(proof))

        self._set_phase("observe")
        self._observe_until_safe()
        self._release()
        self._set_phase("recovery")
        self._verify_recovery()
        self.t_end = time.monotonic()
        self._set_phase("assert")
        self._stop_sampler()
        self._collect_witness()
        if self.trigger is not None:
            self.trigger.finalize()
        self._assert()

    def _prove_steady_state(self) -> None:
        cfg = self.drill.steady_state
        rate = float(cfg.get("min_orders_per_s", 5))
        window = float(cfg.get("window_s", 1.0))
        timeout = float(cfg.get("timeout_s", 20))
        need_fp = bool(cfg.get("require_fingerprint", "fingerprint" in self.ctx.rendered.files))
        why: dict[str, str] = {}

        def steady() -> bool:
            now = time.monotonic()
            recent = self.timeline.between(now - window, now)
            if len(recent) < 3:
                why["status"] = f"only {len(recent)} status samples in the last {window}s"
                return False
            bad = [s for s in recent if not s.ok or s.blocked]
            if bad:
                s = bad[-1]
                why["status"] = (f"sample {s.i}: " + (s.error or f"trading_mode={s.status.get('trading_mode')}, "
                                 f"latch={s.status.get('open_permission_blocked_latch')}"))
                return False
            findings = self.ctx.contract.check(recent[-1].status)
            if findings:
                why["status"] = f"status not contract-valid: {findings[0]}"
                return False
            orders = len(ledger_orders(self._ledger(), now - window, now))
            if orders < rate * window:
                why["orders"] = f"venue saw {orders} orders in the last {window}s (need ≥ {rate * window:g})"
                return False
            if need_fp and self.ctx.read_json_file("fingerprint") is None:
                why["fingerprint"] = "execution fingerprint not written yet"
                return False
            why.clear()
            return True

        if not wait_until(steady, timeout, pause=0.05):
            raise DrillNotProven("steady state not reached within {}s: {}".format(
                timeout, "; ".join(why.values()) or "unknown"))
        self.baseline = self.timeline.last_ok()
        self.facts["steady_state"] = {"orders_per_s_min": rate, "window_s": window,
                                      "baseline_sample": self.baseline.i if self.baseline else None}
        if "fingerprint" in self.ctx.rendered.files:
            self.facts["fingerprint_before"] = self.ctx.read_json_file("fingerprint")

    def _observe_until_safe(self) -> None:
        budget_s = self.drill.time_to_safe_budget_ms / 1000
        deadline = max(10.0, budget_s * 4)
        hold = self.drill.hold_s
        exited = self.drill.safe_when == "target_exited"
        fp_snaps: list[dict[str, Any]] = []

        def safe() -> Sample | None:
            if exited:
                if hasattr(self.ctx.target, "running") and not self.ctx.target.running():
                    return Sample(-1, time.monotonic(), time.monotonic(), utc_now(), None, None, "target exited")
                return None
            return self.timeline.first(lambda s: s.blocked, start=self.t_trigger)

        start = time.monotonic()
        while time.monotonic() - start < deadline:
            self._snapshot_fingerprint(fp_snaps)
            s = safe()
            if s is not None:
                self.first_safe = s
                break
            time.sleep(0.02)
        if self.first_safe is not None:
            self.timeline.mark("safe_observed", sample=self.first_safe.i)
        # Hold the fault: release relative to the trigger, or to the first safe sample.
        anchor = self.first_safe.mono if (self.drill.release_when == "safe_observed" and self.first_safe) else self.t_trigger
        while time.monotonic() < anchor + hold and not exited:
            self._snapshot_fingerprint(fp_snaps)
            time.sleep(0.05)
        self._snapshot_fingerprint(fp_snaps)
        if fp_snaps:
            self.facts["fingerprint_midrun"] = fp_snaps

    def _snapshot_fingerprint(self, snaps: list[dict[str, Any]]) -> None:
        if "fingerprint" not in self.ctx.rendered.files:
            return
        if hasattr(self.ctx.target, "running") and not self.ctx.target.running():
            return  # mid-run means while the target runs
        content = self.ctx.read_json_file("fingerprint")
        if isinstance(content, dict) and (not snaps or snaps[-1]["content"] != content):
            snaps.append({"mono": time.monotonic(), "utc": utc_now(), "content": content})

    def _release(self) -> None:
        if self.trigger is None or self.t_release is not None:
            return
        self.t_release = time.monotonic()
        self.release_info = self.trigger.release() or {}
        self.timeline.mark("release", info=_jsonable(self.release_info))

    def _verify_recovery(self) -> None:
        kind = self.drill.recovery_kind
        timeout = self.drill.recovery_timeout_s
        if kind == "none":
            return
        if kind == "process_exit":
            code = self.ctx.target.wait_exit(timeout)
            self.facts["exit_code"] = code
            if code is not None:
                self.t_recovered = time.monotonic()
                self.timeline.mark("recovered", exit_code=code)
            self.files = self._read_files()
            return
        if kind == "restart_required":
            # Observe that it does not resume by itself, then restart it the way an operator would.
            observe = float(self.drill.raw.get("recovery", {}).get("observe_s", 2.0))
            time.sleep(observe)
            self.ctx.expect_downtime(True)
            code = self.ctx.target.stop(self.ctx.rendered.config.stop_timeout_s)
            self.facts["exit_code_before_restart"] = code
            self.files = self._read_files()
            self.timeline.mark("restart")
            self.ctx.target.start()
            self.ctx.wait_target_serving()
            self.ctx.expect_downtime(False)
        since = self.t_release or time.monotonic()

        def active() -> Sample | None:
            return self.timeline.first(lambda s: s.ok and not open_blocked(s.status), start=since)

        rec = wait_until(active, timeout, pause=0.05)
        if rec is not None:
            self.t_recovered = rec.mono
            self.timeline.mark("recovered", sample=rec.i)
        else:
            self.facts["recovery_missing"] = f"target did not return to Active with the latch clear within {timeout}s"

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None

    def _ledger(self) -> list[dict[str, Any]]:
        """The witness ledger so far, fetched incrementally (``seq`` > the last one seen)."""
        try:
            last = self.ledger[-1].get("seq", 0) if self.ledger else 0
            self.ledger.extend(self.ctx.venue.ledger(since_seq=last))
        except Exception as exc:  # the venue may be gone: record it, do not mask the drill's own error
            self.facts["ledger_error"] = f"{type(exc).__name__}: {exc}"
        return self.ledger

    def _collect_witness(self) -> None:
        self._ledger()
        if not self.files:
            self.files = self._read_files()

    def _read_files(self) -> dict[str, Any]:
        return {name: self.ctx.read_json_file(name) for name, path in self.ctx.rendered.files.items()
                if path.endswith(".json")}

    # --- assertions -----------------------------------------------------------------------------------

    def _downtime(self) -> list[tuple[float, float]]:
        spans, start = [], None
        for m in self.timeline.marks:
            if m.label == "target_down":
                start = m.mono
            elif m.label == "target_up" and start is not None:
                spans.append((start, m.mono))
                start = None
        if start is not None:
            spans.append((start, float("inf")))
        return spans

    def _assert(self) -> None:
        ctx = self.ctx
        down = self._downtime()
        samples = self.timeline.samples
        errors_outside = []
        for s in samples:
            if s.ok:
                f = ctx.contract.check(s.status)
                if f:
                    self.sample_findings.append((s, f))
            elif not any(s.mono >= a and s.sent_mono <= b for a, b in down):  # request overlapped downtime
                errors_outside.append(s)
        if self.drill.safe_when == "target_exited":
            exited_at = self.first_safe.mono if self.first_safe else float("inf")
            errors_outside = [s for s in errors_outside if s.sent_mono < exited_at - 0.05]
        self.facts["sampling"] = self.timeline.interval_stats()
        self.facts["status_errors"] = len(errors_outside)

        # Expected status: the first sample after the fault that matches; else the last before release.
        exp = self.drill.expected
        if exp.get("fixture") or exp.get("status"):
            self.expectation = Expectation.from_drill(exp, ctx.fixture_dirs)
            window = [s for s in self.timeline.between(self.t_trigger, self.t_recovered or self.t_end) if s.ok]
            base = self.baseline.status if self.baseline else None
            chosen = None
            for s in window:
                if self.expectation.compare(s.status, base).matched:
                    chosen = s
                    break
            if chosen is None:
                blocked = [s for s in window if s.blocked]
                chosen = blocked[-1] if blocked else (window[-1] if window else None)
            if chosen is not None:
                self.observed_sample = chosen
                self.observed = chosen.status
                self.comparison = self.expectation.compare(chosen.status, base)
        elif self.first_safe is not None and self.first_safe.ok:
            self.observed_sample, self.observed = self.first_safe, self.first_safe.status
        if self.observed is None:
            last = self.timeline.last_ok()
            self.observed = last.status if last else None

        for spec in self.drill.checks:
            fn = ctx.checks.get(spec.name)
            if fn is None:
                res = CheckResult(spec.name, None, f"unknown check {spec.name!r}; known: {sorted(ctx.checks)}")
            else:
                try:
                    res = fn(self, **spec.params)
                except Exception as exc:  # a broken check must not hide the others
                    res = CheckResult(spec.name, False, f"check raised {type(exc).__name__}: {exc}")
            if not spec.criterion and fn is not None and fn.__doc__:
                res.criterion = fn.__doc__.strip().splitlines()[0]
            else:
                res.criterion = spec.criterion
            self.check_results.append(res)

        failures: list[str] = []
        unproven: list[str] = []
        if self.first_safe is None:
            # The fault is proven to have landed: a target that never reaches safety fails.
            failures.append(f"the safe state ({self.drill.safe_when}) was never observed after the fault landed")
        elif self.time_to_safe_ms is not None and self.time_to_safe_ms > self.drill.time_to_safe_budget_ms:
            failures.append(f"time to safe {self.time_to_safe_ms:.0f} ms exceeds the budget "
                            f"{self.drill.time_to_safe_budget_ms:.0f} ms")
        if self.sample_findings:
            s, f = self.sample_findings[0]
            tags = sorted({x.tag for _, fs in self.sample_findings for x in fs})
            failures.append(f"{len(self.sample_findings)} of {len(samples)} status samples violate the contract "
                            f"({', '.join(tags)}); first: sample {s.i}: {f[0]}")
        if errors_outside:
            s = errors_outside[0]
            failures.append(f"{len(errors_outside)} status samples failed outside planned downtime; first: sample {s.i}: {s.error}")
        if self.comparison is not None and not self.comparison.matched:
            failures.append("expected status not observed: " + "; ".join(self.comparison.problems))
        if self.expectation is not None and self.observed_sample is None:
            unproven.append("no status sample after the fault to compare with the expected status")
        if "recovery_missing" in self.facts:
            failures.append("recovery not verified: " + self.facts["recovery_missing"])
        for r in self.check_results:
            if r.passed is False:
                failures.append(f"{r.name}: {r.detail}")
            elif r.passed is None:
                unproven.append(f"{r.name}: {r.detail}")
        if failures:
            self.verdict = Verdict.FAIL
            self.reason = "; ".join(failures)
            raise DrillFailed(f"drill {self.drill.id} FAILED:\n  - " + "\n  - ".join(failures + unproven))
        if unproven:
            self.verdict = Verdict.NOT_PROVEN
            self.reason = "; ".join(unproven)
            raise DrillNotProven("; ".join(unproven))
        self.verdict = Verdict.PASS


def _jsonable(obj: Any) -> Any:
    try:
        json.dumps(obj)
        return obj
    except TypeError:
        return json.loads(json.dumps(obj, default=str))
