"""The drill lifecycle: start → steady state proven → fault + proof → observe → release → recover.

:class:`DrillRun` drives one drill against one assembled :class:`~pytest_chaosdrill.context.DrillContext`
and produces a :class:`~pytest_chaosdrill.record.DrillRecord`. The fault's release always runs (in a
``finally``, also on Ctrl-C, SIGTERM and timeouts) and is recorded. The verdict is not decided here:
:func:`pytest_chaosdrill.verdict.evaluate` derives it from the record.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from .checks import Check, exposure_at, ledger_orders
from . import deadline, halt
from .context import DrillContext, StartupFailed
from .deadline import DrillTimeout
from .contract import Contract
from .drill import Drill
from .expect import Expectation
from .faults import FaultNotLanded, OccasionHook, Trigger, TriggerFactory, jsonable
from .record import COMPLETED, ERROR, INTERRUPTED, NOT_PROVEN, REFUSED, TIMEOUT, DrillRecord, Recorder
from .guard import LiveEnvironmentRefused, refuse_live
from .venue.witness import live_requests
from .timeline import LiveInterlock, Sample, StatusSampler, open_blocked, utc_now, wait_until
from .verdict import Evaluation, Verdict, evaluate
from .errors import DrillFailed, DrillHalted, DrillInterrupted, DrillNotProven

log = logging.getLogger("chaosdrill")
# the venue holds each reconciliation read's answer this many sampling intervals while a latch-order
# check runs, so "cleared after the answers" and "cleared before asking" are told apart by sampling
RECON_HOLD_INTERVALS = 8
# how long after the recovery the fingerprint is re-read for the service's latch clear event
LATCH_EVENTS_REREAD_S = 1.0
WIRE_CHECK_S = 0.2  # how often a drill's waits read the venue's ledger for live (no demo header) requests


class _Stop(Exception):
    """Internal: end the lifecycle with an outcome other than completed."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


class DrillRun:
    """One execution of one drill. After :meth:`execute`, :attr:`record` and :attr:`evaluation` hold
    what happened and what it means (also when it raised)."""

    def __init__(self, ctx: DrillContext, drill: Drill, *, contract: Contract, contract_info: Mapping[str, str],
                 triggers: Mapping[str, TriggerFactory], checks: Mapping[str, Check],
                 expectation: Expectation | None = None, allow_live: bool = False, backend: str = "",
                 missing: tuple[str, ...] | list[str] = (), live: Any = None) -> None:
        self.ctx = ctx
        self.drill = drill
        self.contract = contract
        self.triggers = triggers
        self.checks = checks
        self.allow_live = allow_live
        self._live_scanned = 0             # witness entries already searched for live requests
        self._live_found: list[dict[str, Any]] = []
        self._live_read_mono = float("-inf")
        self.rec = Recorder(drill=drill.raw, drill_path=str(drill.path), backend=backend or ctx.target.backend,
                            target_name=ctx.rendered.config.name, target_files=tuple(ctx.rendered.files),
                            contract=contract_info, timeline=ctx.timeline)
        self.rec.set(expected=expectation.to_json() if expectation is not None else None,
                     host_clock=bool(getattr(ctx.target, "shares_host_clock", False)))
        self.trigger: Trigger | None = None
        self.sampler: StatusSampler | None = None
        self.interlock = LiveInterlock()
        self.record: DrillRecord | None = None
        self.evaluation: Evaluation | None = None
        self._released = False
        self._recon_hold: Any = None  # the venue's hold of reconciliation answers, while it is in force
        self._occasion: OccasionHook | None = None  # the drill's occasion hook, once given
        self.missing = list(missing)
        self.live = live  # evidence appended as the drill goes (evidence.LiveEvidence), or None

    # --- the lifecycle ----------------------------------------------------------------------------------

    def execute(self) -> Evaluation:
        """Run the drill; raise :class:`DrillFailed` / :class:`DrillNotProven` unless it passed."""
        try:
            self._lifecycle()
        except _Stop as stop:
            self.rec.set(outcome=stop.outcome, outcome_reason=stop.reason)
        except DrillHalted as exc:
            self._end(INTERRUPTED, f"HALTED ({exc}) during phase {self.rec['phase']}")
            self.rec.fact("halted", True)
            raise
        except DrillInterrupted:
            self._end(INTERRUPTED, "interrupted (SIGTERM) during phase " + str(self.rec["phase"]))
            raise
        except KeyboardInterrupt:
            self._end(INTERRUPTED, "interrupted (Ctrl-C) during phase " + str(self.rec["phase"]))
            raise
        except DrillTimeout:
            self._end(TIMEOUT, f"the drill's timeout ({self.drill.timeout_s:g}s) passed during phase "
                               f"{self.rec['phase']}")
            raise DrillFailed(f"TIMEOUT: the drill exceeded its timeout_s ({self.drill.timeout_s:g}s) "
                              f"in phase {self.rec['phase']}") from None
        except BaseException as exc:
            component, last = harness_error_of(exc)
            self.rec.fact("harness_error", {"component": component, "error": last})
            self._end(ERROR, f"harness error in {component}: {last} (phase {self.rec['phase']})")
            raise
        finally:
            self._finish()
        assert self.evaluation is not None
        return raise_unless_passed(self.evaluation)

    def _end(self, outcome: str, reason: str) -> None:
        if self.rec["outcome"] in (None, COMPLETED):
            self.rec.set(outcome=outcome, outcome_reason=reason)

    def _finish(self) -> None:
        """Always: release the fault, stop sampling, collect the witness, freeze, evaluate."""
        deadline.disarm()  # the deadline interrupts the drill, never its release
        with halt.releasing():  # nor does a halt: it stops the session after this drill's teardown
            self._finish_released()

    def _finish_released(self) -> None:
        try:
            self._release()
            self._end_recon_hold()
            self._end_occasion()
            if self.rec["outcome"] == REFUSED:
                self._stop_target()
        finally:
            self._stop_sampler()
            self.rec.set(t_end=self.rec["t_end"] or time.monotonic())
            self._ledger()
            wire = self._wire_live(force=True)
            if wire is not None and self.rec["outcome"] in (None, COMPLETED, NOT_PROVEN):
                # the venue's view outranks a NOT PROVEN the refused requests caused (no steady state)
                self.rec.set(outcome=REFUSED, outcome_reason=f"refused: {wire}")
            dead = self._harness_dead()
            if dead is not None and self.rec["outcome"] in (None, COMPLETED, NOT_PROVEN):
                # the harness, not the target, broke: ERROR, and the target is not judged on this run
                self.rec.fact("harness_error", {"component": dead[0], "error": dead[1]})
                self.rec.set(outcome=ERROR, outcome_reason=f"harness error in {dead[0]}: {dead[1]}")
            if not self.rec["files"]:
                self.rec.set(files=self._read_files())
            if hasattr(self.trigger, "step_records"):  # a schedule: one step per fault it injected
                self.rec.steps[:] = self.trigger.step_records()
            self.record = self.rec.freeze()
            self.evaluation = evaluate(self.record, self.contract, self.checks)
            log.info("%s: %s%s", self.drill.id, self.evaluation.verdict.value,
                     f" ({self.evaluation.reason})" if self.evaluation.reason else "")

    def _on_sample(self, sample: Sample) -> None:
        """Every sample (sampler thread): the live interlock, and the evidence appended as it comes."""
        if not self.allow_live:
            self.interlock(sample)
        if self.live is not None:
            self.live.sample(sample)

    def _phase(self, name: str, **detail: Any) -> None:
        self.rec.phase(name, **detail)
        if self.live is not None:
            self.live.marks(self.ctx.timeline.marks)
        log.debug("%s: phase %s", self.drill.id, name)

    def _lifecycle(self) -> None:
        ctx = self.ctx
        self.rec.set(outcome=COMPLETED)
        if self.missing:
            raise _Stop(NOT_PROVEN, f"the target file ({ctx.rendered.config.source}) declares no "
                        f"{', '.join(self.missing)}, which this drill's fault or checks need (docs/targets.md)")
        self._refuse_live()
        self._phase("start")
        try:
            ctx.target.start()
            first = ctx.wait_target_serving()
        except StartupFailed as exc:
            raise _Stop(NOT_PROVEN, f"{exc}{self._log_tail()}") from None
        self._refuse_live(status=first)
        self.sampler = StatusSampler(ctx.rendered.status_url, ctx.timeline, interval_s=ctx.sample_interval_s,
                                     allowed_hosts=ctx.local_hosts, on_sample=self._on_sample).start()
        ctx.sampler = self.sampler

        self._phase("steady_state")
        self._prove_steady_state()
        log.info("%s: steady state proven", self.drill.id)

        self._phase("trigger")
        factory = self.triggers[self.drill.trigger_kind]  # validated at collection
        self.trigger = factory(ctx, dict(self.drill.trigger_params))
        step = self.rec.step(self.trigger.kind or self.drill.trigger_kind, self.drill.trigger_params,
                             self.trigger.target_side_hook)
        self._hold_recon_answers()
        t_trigger = time.monotonic()
        self.rec.set(t_trigger=t_trigger)
        step["fired_mono"] = t_trigger
        try:
            step["requested"] = jsonable(self.trigger.fire() or {})
            proof = self.trigger.wait_landed(self.drill.land_timeout_s)
        except FaultNotLanded as exc:
            step["not_landed"] = str(exc)
            raise _Stop(NOT_PROVEN, f"the fault was not proven to land: {exc}") from None
        step["proof"] = jsonable(proof)
        step["landed_mono"] = self.trigger.landed_mono if self.trigger.landed_mono is not None else t_trigger
        ctx.timeline.mark("fault_landed", proof=jsonable(proof))
        log.info("%s: fault %s landed (proof: %s)", self.drill.id, step["kind"], _brief(step["proof"]))

        self._phase("observe")
        self._observe_until_safe()
        self._release()
        self._end_occasion()
        self._phase("recovery")
        self._verify_recovery()
        self._live_check()
        self.rec.set(t_end=time.monotonic())
        self._phase("assert")
        self._stop_sampler()
        self._ledger()
        self.trigger.finalize()
        self._step_times()

    def _live_check(self) -> None:
        """Any sample that reports a live environment, or any private request the venue received
        without the demo-trading header, ends the drill at once (refused, never a PASS)."""
        if self.interlock.tripped.is_set():
            raise _Stop(REFUSED, f"refusing to go on: the target reported a live environment mid-drill "
                                 f"({self.interlock.reason}); the fault was released and the target stopped")
        reason = self._wire_live()
        if reason is not None:
            raise _Stop(REFUSED, f"refusing to go on: {reason}; the fault was released and the target stopped")

    def _wire_live(self, force: bool = False) -> str | None:
        """The venue's own view of the interlock: private requests without ``x-simulated-trading: 1``
        (the target is configured for real money), from the witness ledger (read at most every
        :data:`WIRE_CHECK_S` unless ``force``: on the docker backend each read is an HTTP request)."""
        if self.allow_live:
            return None
        if force or time.monotonic() - self._live_read_mono >= WIRE_CHECK_S:
            self._live_read_mono = time.monotonic()
            ledger = self._ledger()
            self._live_found += live_requests(ledger[self._live_scanned:])
            self._live_scanned = len(ledger)
        found = self._live_found
        if not found:
            return None
        e = found[0]

        return (f"the venue received {len(found)} private request(s) without the demo-trading header "
                f"x-simulated-trading: 1 (the target is configured for real money; OKX answers 50101); first: "
                f"{e.get('method')} {e.get('path')} at {e.get('utc')}")

    def _wait(self, check: Any, timeout: float, pause: float = 0.05) -> Any:
        """``wait_until`` that also watches the live interlock."""
        def guarded() -> Any:
            self._live_check()
            return check()
        return wait_until(guarded, timeout, pause=pause)

    def _refuse_live(self, status: Any = None) -> None:
        try:
            refuse_live(self.ctx.rendered, allow_live=self.allow_live, extra_hosts=self.ctx.local_hosts, status=status)
        except LiveEnvironmentRefused as exc:
            raise _Stop(REFUSED, str(exc)) from None

    def _log_tail(self, lines: int = 15) -> str:
        """The last lines of the target's log, for a start-up failure message."""
        try:
            logs = [p for p in self.ctx.target.logs() if p.is_file()]
        except Exception:  # the backend may be half-started: the message must still come out
            return ""
        if not logs:
            return ""
        path = logs[-1]
        tail = path.read_bytes()[-4000:].decode("utf-8", "replace").splitlines()[-lines:]
        return f"; service log {path} ends with:\n" + "\n".join("    " + ln for ln in tail)

    def _prove_steady_state(self) -> None:
        cfg = self.drill.steady_state
        rate = float(cfg.get("min_orders_per_s", 5))
        window = float(cfg.get("window_s", 1.0))
        timeout = float(cfg.get("timeout_s", 20))
        need_fp = bool(cfg.get("require_fingerprint", "fingerprint" in self.ctx.rendered.files))
        # A drill whose criterion needs a position to reduce (WAL backpressure, Kill) waits for the
        # venue to hold one (sum of |position| in the witness ledger) before the fault, rather than
        # ending NOT PROVEN by luck of the moment.
        min_exposure = float(cfg.get("min_exposure", 0))
        why: dict[str, str] = {}

        def steady() -> bool:
            now = time.monotonic()
            recent = self.ctx.timeline.between(now - window, now)
            if len(recent) < 3:
                why["status"] = f"only {len(recent)} status samples in the last {window}s"
                return False
            bad = [s for s in recent if not s.ok or s.blocked]
            if bad:
                s = bad[-1]
                why["status"] = (f"sample {s.i}: " + (s.error or f"trading_mode={s.status.get('trading_mode')}, "
                                 f"latch={s.status.get('open_permission_blocked_latch')}"))
                return False
            findings = self.contract.check(recent[-1].status)
            if findings:
                why["status"] = f"status not contract-valid: {findings[0]}"
                return False
            orders = len(ledger_orders(self._ledger(), now - window, now))
            if orders < rate * window:
                why["orders"] = f"venue saw {orders} orders in the last {window}s (need ≥ {rate * window:g})"
                return False
            if min_exposure > 0:
                held = exposure_at(self._ledger(), now) or 0.0
                if held < min_exposure:
                    why["exposure"] = f"venue exposure {held:g} (need ≥ {min_exposure:g} before the fault)"
                    return False
            if need_fp and self.ctx.read_json_file("fingerprint") is None:
                why["fingerprint"] = "execution fingerprint not written yet"
                return False
            why.clear()
            return True

        if not self._wait(steady, timeout):
            raise _Stop(NOT_PROVEN, "steady state not reached within {}s: {}".format(
                timeout, "; ".join(why.values()) or "unknown"))
        base = self.ctx.timeline.last_ok()
        self.rec.set(baseline_i=base.i if base else None)
        fact: dict[str, Any] = {"orders_per_s_min": rate, "window_s": window}
        if min_exposure > 0:
            fact["exposure"] = exposure_at(self._ledger(), time.monotonic()) or 0.0
        self.rec.fact("steady_state", fact)
        if "fingerprint" in self.ctx.rendered.files:
            self.rec.set(fingerprint_before=self.ctx.read_json_file("fingerprint"))

    def _observe_until_safe(self) -> None:
        budget_s = self.drill.time_to_safe_budget_ms / 1000
        deadline = max(10.0, budget_s * 4)
        exited = self.drill.safe_when == "target_exited"
        t_trigger = self.rec["t_trigger"]
        first_safe: Sample | None = None
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            self._live_check()
            self._snapshot_fingerprint()
            if exited:
                if not self.ctx.target.running():
                    self.rec.set(first_safe_i=-1, first_safe_mono=time.monotonic())
                    break
            else:
                first_safe = self.ctx.timeline.first(lambda s: s.blocked, start=t_trigger)
                if first_safe is not None:
                    self.rec.set(first_safe_i=first_safe.i)
                    break
            time.sleep(0.02)
        if self.rec["first_safe_i"] is not None:
            self.ctx.timeline.mark("safe_observed", sample=self.rec["first_safe_i"])
            landed = self.rec.steps[0]["landed_mono"]
            safe_mono = first_safe.mono if first_safe is not None else self.rec["first_safe_mono"]
            log.info("%s: safe after %.0f ms", self.drill.id, max(0.0, safe_mono - landed) * 1000)
        # Hold the fault: release relative to the trigger, or to the first safe sample; an occasion given
        # while OPEN is blocked holds it until the service answered and had hold_after_s to act.
        anchor = first_safe.mono if (self.drill.release_when == "safe_observed" and first_safe) else t_trigger
        occasion = self._give_occasion() if first_safe is not None else None
        while not exited:
            until = anchor + self.drill.hold_s
            if occasion is not None:
                occasion.poll()
                until = max(until, occasion.deadline())
            if time.monotonic() >= until:
                break
            self._live_check()
            self._snapshot_fingerprint()
            time.sleep(0.02 if occasion is not None else 0.05)
        self._snapshot_fingerprint()

    def _give_occasion(self) -> OccasionHook | None:
        """The drill's occasion hook, written once OPEN is seen blocked when the target file declares it
        (docs/targets.md, "Occasion hooks"); what happened is the record's ``occasion``."""
        spec = self.drill.occasion
        if not spec:
            return None
        occasion = OccasionHook(self.ctx.rendered, spec)
        self._occasion = occasion
        if not occasion.usable:
            return None
        occasion.fire()
        self.ctx.timeline.mark("occasion", hook=occasion.hook)
        return occasion

    def _end_occasion(self) -> None:
        occasion, self._occasion = self._occasion, None
        if occasion is None:
            return
        try:
            self.rec.set(occasion=jsonable(occasion.finish()))
        except OSError as exc:
            self.rec.set(occasion={"hook": occasion.hook, "error": f"{type(exc).__name__}: {exc}"})

    def _snapshot_fingerprint(self) -> None:
        if "fingerprint" not in self.ctx.rendered.files or not self.ctx.target.running():
            return  # mid-run means while the target runs
        content = self.ctx.read_json_file("fingerprint")
        snaps = self.rec.midrun
        if isinstance(content, dict) and (not snaps or snaps[-1]["content"] != content):
            snaps.append({"mono": time.monotonic(), "utc": utc_now(), "content": content})

    def _release(self) -> None:
        """Release the fault exactly once, whatever happened before; a failed release is recorded."""
        if self.trigger is None or self._released:
            return
        self._released = True
        step = self.rec.steps[-1]
        t = time.monotonic()
        self.rec.set(t_release=t)
        step["released_mono"] = t
        try:
            step["release"] = jsonable(self.trigger.release() or {})
        except Exception as exc:
            step["release_error"] = f"{type(exc).__name__}: {exc}"
            log.warning("%s: releasing the fault failed: %s", self.drill.id, step["release_error"])
        self.ctx.timeline.mark("release", info=step.get("release") or {"error": step.get("release_error")})
        log.info("%s: fault released", self.drill.id)

    def _step_times(self) -> None:
        if self.trigger is not None and self.rec.steps:
            self.rec.steps[-1]["condition_ended_mono"] = self.trigger.condition_ended_mono

    def _verify_recovery(self) -> None:
        kind = self.drill.recovery_kind
        timeout = self.drill.recovery_timeout_s
        if kind == "none":
            return
        if kind == "process_exit":
            code = self.ctx.target.wait_exit(timeout)
            self.rec.set(exit_code=code)
            if code is not None:
                self.rec.set(t_recovered=time.monotonic())
                self.ctx.timeline.mark("recovered", exit_code=code)
            self.rec.set(files=self._read_files())
            return
        if kind == "restart_required":
            # Observe that it does not resume by itself, then restart it the way an operator would.
            time.sleep(self.drill.recovery_observe_s)
            self.ctx.expect_downtime(True)
            code = self.ctx.target.stop(self.ctx.rendered.config.stop_timeout_s)
            self.rec.set(exit_code_before_restart=code, files=self._read_files())
            self.ctx.timeline.mark("restart")
            self.ctx.target.start()
            try:
                self.ctx.wait_target_serving()
            except StartupFailed as exc:
                self.rec.set(recovery_missing=f"the operator restart failed: {exc}")
                return
            self.ctx.expect_downtime(False)
        since = self.rec["t_release"] or time.monotonic()

        def active() -> Sample | None:
            return self.ctx.timeline.first(lambda s: s.ok and not open_blocked(s.status), start=since)

        recovered = self._wait(active, timeout)
        if recovered is not None:
            self.rec.set(t_recovered=recovered.mono)
            self.ctx.timeline.mark("recovered", sample=recovered.i)
            log.info("%s: recovered (sample %d)", self.drill.id, recovered.i)
            self._reread_latch_events()
        else:
            self.rec.set(recovery_missing=f"target did not return to Active with the latch clear within {timeout}s")
        self._end_recon_hold()

    def _orders_latch(self) -> bool:
        return any(c.name == "latch_clears_only_after_reconcile" for c in self.drill.checks)

    def _hold_recon_answers(self) -> None:
        """From the fault to the recovery, the venue holds its answers to reconciliation reads for
        several sampling intervals (the stimulus that makes the latch clear's order observable)."""
        if not self._orders_latch():
            return
        ms = max(1, round(RECON_HOLD_INTERVALS * self.ctx.sample_interval_s * 1000))
        try:
            self._recon_hold = self.ctx.venue.recon_hold(ms=ms)
        except Exception as exc:  # the proof then rests on sampling and latch_events alone: recorded
            self.rec.fact("recon_hold", {"error": f"{type(exc).__name__}: {exc}"})

    def _end_recon_hold(self) -> None:
        hold, self._recon_hold = self._recon_hold, None
        if hold is None:
            return
        try:
            self.ctx.venue.clear(kind="recon_hold")
            final = next((f for f in self.ctx.venue.faults() if f.id == hold.id), hold)
            self.rec.fact("recon_hold", {"ms": final.params["ms"], "landed": final.landed,
                                         "held_reads": final.detail.get("held_reads", 0)})
        except Exception as exc:
            self.rec.fact("recon_hold", {"error": f"{type(exc).__name__}: {exc}"})

    def _reread_latch_events(self) -> None:
        """Re-read the fingerprint after the recovery, until it holds a latch ``clear`` event from this
        drill or LATCH_EVENTS_REREAD_S passed: a service may write its clear event a little after its
        status shows the clear (the event is an optional extra; see docs/targets.md)."""
        if "fingerprint" not in self.ctx.rendered.files or not self._orders_latch():
            return
        since = self.rec["t_trigger"] or 0.0
        end = time.monotonic() + LATCH_EVENTS_REREAD_S
        while time.monotonic() < end:
            self._snapshot_fingerprint()
            content = self.rec.midrun[-1]["content"] if self.rec.midrun else None
            events = content.get("latch_events") if isinstance(content, dict) else None
            if isinstance(events, list) and any(isinstance(e, dict) and e.get("event") == "clear"
                                                and isinstance(e.get("mono"), (int, float)) and e["mono"] >= since
                                                for e in events):
                return
            time.sleep(0.02)

    def _stop_target(self) -> None:
        try:
            self.ctx.target.stop(self.ctx.rendered.config.stop_timeout_s)
            self.ctx.timeline.mark("target_stopped", why=self.rec["outcome_reason"])
        except Exception as exc:  # recorded; the fixture's teardown tries again
            self.rec.fact("stop_error", f"{type(exc).__name__}: {exc}")

    def _stop_sampler(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None

    def _ledger(self) -> list[dict[str, Any]]:
        """The witness ledger so far, fetched incrementally (``seq`` > the last one seen)."""
        ledger = self.rec.ledger
        try:
            last = ledger[-1].get("seq", 0) if ledger else 0
            new = self.ctx.venue.ledger(since_seq=last)
            ledger.extend(new)
            if self.live is not None and new:
                self.live.ledger(new)
        except Exception as exc:  # the venue may be gone: record it, do not mask the drill's own error
            self.rec.fact("ledger_error", f"{type(exc).__name__}: {exc}")
        return ledger

    def _harness_dead(self) -> tuple[str, str] | None:
        """The harness component that died during the drill, and how we know; None when all answer.

        The venue is dead when its ledger could not be read or its own address refuses connections; the
        proxy when its listener refuses them after the fault's release."""
        ledger_error = self.rec.values["facts"].get("ledger_error")
        if ledger_error:
            return "venue", f"its witness ledger could not be read: {ledger_error}"
        info = self.ctx.harness_info
        probes = [("venue", info.get("venue"))]
        if self._released or self.trigger is None:
            probes.append(("proxy", info.get("proxy")))
        for component, address in probes:
            problem = _refused(address) if isinstance(address, str) else None
            if problem is not None:
                return component, problem
        return None

    def _read_files(self) -> dict[str, Any]:
        return {name: self.ctx.read_json_file(name) for name, path in self.ctx.rendered.files.items()
                if path.endswith(".json")}


def raise_unless_passed(ev: Evaluation) -> Evaluation:
    """``ev`` if it is a PASS; else :class:`DrillNotProven` or :class:`DrillFailed` with its reasons (the
    way a drill test ends, for a drill run or a driver's)."""
    if ev.verdict is Verdict.PASS:
        return ev
    lines = ev.failures + ev.unproven
    if ev.verdict is Verdict.NOT_PROVEN:
        raise DrillNotProven("; ".join(lines))
    # Reason first: the first line is what a CI summary shows.
    raise DrillFailed(f"{ev.verdict.value}: {lines[0]}" + "".join(f"\n  - {x}" for x in lines[1:]))


def harness_error_of(exc: BaseException) -> tuple[str, str]:
    """The harness component an exception came from (the plugin module of the deepest frame, e.g.
    ``faults.venue``; ``plugin`` when none) and the traceback's last line."""
    import traceback

    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    component = "plugin"
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = frame.filename.replace("\\", "/").split("/pytest_chaosdrill/")
        if len(parts) > 1:
            component = parts[-1].removesuffix(".py").replace("/", ".")
    return component, last


def _refused(address: str) -> str | None:
    """Why a loopback ``host:port`` or URL refuses a TCP connection, or None if it accepts (or is not a
    loopback address the harness can probe from here)."""
    import socket
    from urllib.parse import urlsplit

    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port or not (host == "localhost" or host.startswith("127.")):
        return None
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return None
    except OSError as exc:
        return f"{address} refuses connections ({type(exc).__name__}: {exc})"


def _brief(proof: Any, limit: int = 120) -> str:
    """A proof in one short line for people (the full proof is in trigger.md)."""
    if isinstance(proof, dict):
        text = ", ".join(f"{k}={v}" for k, v in proof.items() if not isinstance(v, (dict, list)))
    else:
        text = str(proof)
    return text if len(text) <= limit else text[:limit - 1] + "…"
