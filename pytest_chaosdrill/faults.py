"""Fault triggers: each acts on the target's environment and proves that it landed.

A trigger kind is ``<boundary>.<what>``: ``venue.*`` (the exchange sandbox), ``proxy.*`` (the TCP
link between target and venue), ``network.*`` (container networks), ``process.*`` (signals,
restart), ``file.*`` (control files), ``hook.*`` (a documented target-side hook that makes the
service cause a physical condition; the evidence discloses it). New kinds come from plugins through
the ``pytest_chaosdrill_add_triggers`` hook.

A trigger kind may declare ``requires`` (backend capabilities, see :mod:`pytest_chaosdrill.backends.base`)
and ``needs`` (what the target file must declare, e.g. ``files.stop``); drills are validated against
both at collection. ``check_params(params)`` returns problems with the drill's ``trigger.params``.

"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
import inspect
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from .backends.base import EXIT, KILL, NETWORK_CUT, PAUSE, START
from .timeline import utc_now, wait_until

if TYPE_CHECKING:  # pragma: no cover
    from .context import DrillContext


class FaultNotLanded(Exception):
    """The fault was requested but nothing shows it took effect: the drill is NOT PROVEN."""


class Trigger:
    """Base class. ``fire`` injects, ``wait_landed`` returns proof or raises, ``release`` undoes."""

    kind = ""
    #: True when the fault is caused through a target-side hook; evidence says so.
    target_side_hook = False
    #: True when the trigger stops or restarts the target itself.
    manages_target = False
    #: Backend capabilities the trigger needs.
    requires: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        """Problems with ``params`` (a drill's ``trigger.params``), found before anything starts."""
        return []

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        """Target-file fields the trigger needs (``files.stop``, ``hooks.<name>``)."""
        return []

    def __init__(self, ctx: "DrillContext", params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params
        self.landed_mono: float | None = None
        #: When the condition itself ended (None: at release). One-shot faults end as they land.
        self.condition_ended_mono: float | None = None
        self.proof: dict[str, Any] = {}

    def describe(self) -> str:
        return f"{self.kind} {json.dumps(self.params, sort_keys=True)}"

    def fire(self) -> dict[str, Any]:
        raise NotImplementedError

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    def release(self) -> dict[str, Any]:
        return {}

    def finalize(self) -> None:
        """Called once before the assertions: refresh facts that settle after release."""


def _record_dict(record: Any) -> dict[str, Any]:
    if record is None:
        return {}
    if isinstance(record, dict):
        return dict(record)
    if hasattr(record, "to_dict"):
        return record.to_dict()
    if hasattr(record, "__dataclass_fields__"):
        from dataclasses import asdict
        return asdict(record)
    return dict(vars(record))


class VenueFault(Trigger):
    """A venue fault (``venue.<method>``): proof is the venue's own fault record with its effective time."""

    def __init__(self, ctx: "DrillContext", params: dict[str, Any], method: str) -> None:
        super().__init__(ctx, params)
        self.method = method
        self.kind = f"venue.{method}"
        self.record: Any = None

    def fire(self) -> dict[str, Any]:
        self.record = getattr(self.ctx.venue, self.method)(**self.params)
        return _record_dict(self.record)

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        try:
            rec = self.ctx.venue.wait_landed(self.record, timeout=timeout)
        except TimeoutError as exc:
            raise FaultNotLanded(f"venue fault {self.kind} was requested but never took effect: {exc}") from None
        self.proof = _record_dict(rec)
        self.landed_mono = self.proof.get("effective_mono")
        if self.landed_mono is None:
            raise FaultNotLanded(f"venue fault {self.kind} has no effective time in its record: {self.proof}")
        if self.method in ONE_SHOT_VENUE_FAULTS:
            self.condition_ended_mono = self.landed_mono
        return self.proof

    def release(self) -> dict[str, Any]:
        kind = _record_dict(self.record).get("kind", self.method)
        return _record_dict(self.ctx.venue.clear(kind=kind))

    def finalize(self) -> None:
        # A session termination lasts until re-authentication is allowed again: that, not the
        # moment the socket closed, is when its condition ended.
        if self.method != "session_termination" or self.record is None:
            return
        rec_id = _record_dict(self.record).get("id")
        for rec in self.ctx.venue.faults():
            d = _record_dict(rec)
            if d.get("id") == rec_id and d.get("ended_mono") is not None:
                self.condition_ended_mono = d["ended_mono"]


class ProxyToxic(Trigger):
    """A toxic on the target↔venue link (``proxy.toxic``): proof is the toxic's own counters."""

    kind = "proxy.toxic"

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        from .proxy.toxics import ToxicError, make_toxic

        attrs = {k: v for k, v in params.items() if k not in ("type", "name", "stream", "toxicity")}
        try:
            make_toxic(params.get("type", ""), stream=params.get("stream", "downstream"),
                       toxicity=params.get("toxicity", 1.0), name=params.get("name"), attributes=attrs)
        except ToxicError as exc:
            return [str(exc)]
        return []

    def fire(self) -> dict[str, Any]:
        params = dict(self.params)
        self.toxic_type = params.pop("type")
        self.toxic_name = params.pop("name", f"drill_{self.toxic_type}")
        stream = params.pop("stream", "downstream")
        toxicity = params.pop("toxicity", 1.0)
        self.ctx.proxy.add_toxic(self.toxic_type, name=self.toxic_name, stream=stream, toxicity=toxicity, **params)
        return {"toxic": self.toxic_name, "type": self.toxic_type, "stream": stream, "toxicity": toxicity,
                "attributes": params}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        try:
            counters = self.ctx.proxy.wait_toxic_acted(self.toxic_name, timeout=timeout)
        except TimeoutError as exc:
            raise FaultNotLanded(f"toxic {self.toxic_name} was added but never acted on traffic: {exc}") from None
        self.proof = dict(counters)
        self.landed_mono = self.proof.get("first_acted_mono")
        return self.proof

    def release(self) -> dict[str, Any]:
        counters = dict(self.ctx.proxy.toxic_counters(self.toxic_name))
        self.ctx.proxy.remove_toxic(self.toxic_name)
        return {"removed": self.toxic_name, "final_counters": counters}


class ProcessKillRestart(Trigger):
    """SIGKILL the target mid-flight, then start it again on the same data.

    Proof: the exit status the kernel (or the container engine) reports for the killed process.
    """

    kind = "process.kill_restart"
    manages_target = True
    requires = frozenset({START, KILL})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return _known_params(params, {"restart_after_s": (int, float), "hold_reconcile_s": (int, float)})

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        self.kill_info = self.ctx.target.kill()
        return self.kill_info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.kill_info.get("killed_by_sigkill"):
            raise FaultNotLanded(f"target was signalled but did not die by SIGKILL: {self.kill_info}")
        self.landed_mono = self.kill_info.get("sent_mono", time.monotonic())
        restart_delay = float(self.params.get("restart_after_s", 0.2))
        time.sleep(restart_delay)  # a deliberate gap between crash and restart, part of the fault
        # Optionally keep the venue's REST slow through start-up so reconciliation cannot finish before
        # the first status answer: a correct target then stays latched until the drill has seen it,
        # however fast it reconciles. Recorded in the proof; reconciliation must follow the release.
        hold_s = float(self.params.get("hold_reconcile_s", 0))
        hold = self.ctx.venue.rest_latency(ms=int(hold_s * 1000) + 1000) if hold_s > 0 else None
        self.ctx.timeline.mark("restart")
        self.ctx.target.start()
        self.proof = {**self.kill_info, "restarted_mono": time.monotonic(), "restart_after_s": restart_delay}
        self.ctx.wait_target_serving()
        self.ctx.expect_downtime(False)
        self.condition_ended_mono = time.monotonic()
        if hold is not None:
            restart = self.ctx.timeline.get_mark("restart")
            seen = wait_until(lambda: self.ctx.timeline.first(lambda s: s.ok, start=restart.mono), hold_s)
            # The condition ends as the hold is lifted: reads the venue answers from then on count.
            self.condition_ended_mono = time.monotonic()
            self.ctx.venue.clear(kind="rest_latency")
            self.proof["reconcile_hold"] = {"venue_rest_latency": _record_dict(hold), "held_s": hold_s,
                                            "released_mono": self.condition_ended_mono,
                                            "first_status_sample": seen.i if seen else None}
        return self.proof


class StopFile(Trigger):
    """Create the target's STOP control file; proof is the file on disk with its creation time."""

    kind = "file.stop"
    manages_target = True
    requires = frozenset({START, EXIT})

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        return _known_params(params, {})

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        return ["files.stop"]

    def fire(self) -> dict[str, Any]:
        path = Path(self.ctx.rendered.files.get("stop", ""))
        if not path.name:
            raise FaultNotLanded("the target file declares no 'files.stop' path; the STOP drill cannot run")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.created_mono = time.monotonic()
        self.created_utc = utc_now()
        path.write_text(f"stop requested by pytest-chaosdrill at {self.created_utc}\n", encoding="utf-8")
        return {"file": str(path), "created_utc": self.created_utc}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        # The file lands when it exists on the filesystem the target reads; the target may consume it.
        st = os.stat(self.path) if self.path.exists() else None
        self.landed_mono = self.created_mono
        self.proof = {"file": str(self.path), "created_utc": self.created_utc, "created_mono": self.created_mono,
                      "exists_after_write": st is not None}
        self.ctx.expect_downtime(True)
        return self.proof


class TargetHook(Trigger):
    """A documented target-side hook: a control file whose presence makes the target cause the physical
    condition (its removal releases it). Proof is the target's hook log saying the condition was applied."""

    kind = "hook.apply"
    target_side_hook = True

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = _known_params(params, {"hook": str, "content": str})
        if "hook" not in params:
            problems.append("'hook' is required (the name of a hook the target file declares under hooks)")
        return problems

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        return [f"hooks.{params.get('hook')}", "hooks_log"]

    def fire(self) -> dict[str, Any]:
        name = self.params["hook"]
        spec = self.ctx.rendered.hooks.get(name)
        if spec is None:
            raise FaultNotLanded(f"the target file declares no hook {name!r}; declared: {sorted(self.ctx.rendered.hooks)}")
        self.hook = name
        self.path = Path(spec.file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = str(self.params.get("content", spec.content))
        self.fired_mono = time.monotonic()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, self.path)  # the target never sees a half-written hook file
        return {"hook": name, "file": str(self.path), "content": content}

    def _log_entries(self) -> list[dict[str, Any]]:
        log = self.ctx.rendered.hooks_log
        if not log or not Path(log).exists():
            return []
        out = []
        for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        def applied() -> dict[str, Any] | None:
            for e in self._log_entries():
                mono = e.get("mono")
                if e.get("hook") == self.hook and e.get("event") == "applied" and isinstance(mono, (int, float)) \
                        and mono >= self.fired_mono:
                    return e
            return None

        entry = wait_until(applied, timeout)
        if entry is None:
            raise FaultNotLanded(f"hook {self.hook!r}: file written but the target's hook log "
                                 f"({self.ctx.rendered.hooks_log}) never reported it applied within {timeout}s")
        self.landed_mono = float(entry["mono"])
        self.proof = {"hook_log_entry": entry, "file": str(self.path)}
        return self.proof

    def release(self) -> dict[str, Any]:
        removed = False
        if self.path.exists():
            self.path.unlink()
            removed = True
        return {"hook": self.hook, "file_removed": removed}


def _known_params(params: dict[str, Any], known: dict[str, Any]) -> list[str]:
    problems = [f"unknown parameter {k!r}; known: {', '.join(sorted(known)) or 'none'}" for k in params if k not in known]
    problems += [f"parameter {k!r} must be {getattr(t, '__name__', 'a number')}, got {params[k]!r}"
                 for k, t in known.items() if k in params and not isinstance(params[k], t)]
    return problems


class BackendFault(Trigger):
    """A fault the backend applies to the target's process or container; the proof is what the
    backend reads back (the kernel's process state, the engine's ``docker inspect``)."""

    apply = ""            # backend method that injects and returns its proof
    undo = ""             # backend method that releases
    proof_key = "proven"  # the proof's own verdict

    def fire(self) -> dict[str, Any]:
        fn = getattr(self.ctx.target, self.apply, None)
        if fn is None:
            raise FaultNotLanded(f"backend {self.ctx.target.backend!r} cannot {self.apply.replace('_', ' ')}")
        self.info = fn()
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.info.get(self.proof_key):
            raise FaultNotLanded(f"{self.kind} not confirmed by the backend: {self.info}")
        self.landed_mono = self.info.get("mono", time.monotonic())
        self.proof = self.info
        return self.proof

    def release(self) -> dict[str, Any]:
        return getattr(self.ctx.target, self.undo)()


class NetworkDisconnect(BackendFault):
    """Disconnect the target's container from the network it shares with the venue (docker backend)."""

    kind, apply, undo, proof_key = "network.disconnect", "network_disconnect", "network_connect", "disconnected"
    requires = frozenset({NETWORK_CUT})


class ProcessPause(BackendFault):
    """Freeze the target (SIGSTOP, or ``docker pause``) for ``hold_s``, then thaw it. A frozen target
    cannot answer its status, so the pause is planned downtime for the sampler."""

    kind, apply, undo = "process.pause", "pause", "resume"
    requires = frozenset({PAUSE})

    def fire(self) -> dict[str, Any]:
        self.ctx.expect_downtime(True)
        return super().fire()

    def release(self) -> dict[str, Any]:
        out = super().release()
        self.ctx.expect_downtime(False)
        return out


TriggerFactory = Callable[["DrillContext", dict[str, Any]], Trigger]


class VenueFaultKind:
    """The factory of ``venue.<method>``: parameters are the venue control method's keyword arguments."""

    requires: frozenset[str] = frozenset()

    def __init__(self, method: str) -> None:
        self.method = method

    def __call__(self, ctx: "DrillContext", params: dict[str, Any]) -> Trigger:
        return VenueFault(ctx, params, self.method)

    def check_params(self, params: dict[str, Any]) -> list[str]:
        from .venue.control import VenueControl

        try:
            inspect.signature(getattr(VenueControl, self.method)).bind(None, **params)
        except TypeError as exc:
            return [f"{exc} (venue.{self.method} takes {_param_names(getattr(VenueControl, self.method))})"]
        return []

    def needs(self, params: dict[str, Any]) -> list[str]:
        return []


def _param_names(fn: Callable[..., Any]) -> str:
    names = [p for p in inspect.signature(fn).parameters if p not in ("self", "rec", "record")]
    return ", ".join(names) or "no parameters"


def requirements(factory: Any, params: dict[str, Any]) -> tuple[frozenset[str], list[str], list[str]]:
    """(backend capabilities, target-file needs, parameter problems) of a trigger kind's factory."""
    caps = frozenset(getattr(factory, "requires", frozenset()))
    if hasattr(factory, "requires_for"):  # capabilities that depend on the parameters (a schedule's steps)
        caps |= frozenset(factory.requires_for(params))
    needs = list(getattr(factory, "needs", lambda p: [])(params))
    check = getattr(factory, "check_params", None)
    problems = list(check(params)) if check is not None else []
    return caps, needs, problems

# Faults that are one event (a gap, a termination, one partial batch) rather than a held condition.
ONE_SHOT_VENUE_FAULTS = ("book_gap", "trades_gap", "session_termination", "partial_fill")
VENUE_FAULTS = ("book_gap", "trades_gap", "freeze", "lag", "session_termination", "partial_fill", "rate_limit",
                "http_5xx", "rest_latency")


def builtin_triggers() -> dict[str, TriggerFactory]:
    """The trigger kinds pytest-chaosdrill ships."""
    table: dict[str, TriggerFactory] = {f"venue.{m}": VenueFaultKind(m) for m in VENUE_FAULTS}
    table.update({
        "proxy.toxic": ProxyToxic,
        "process.kill_restart": ProcessKillRestart,
        "file.stop": StopFile,
        "hook.apply": TargetHook,
        "network.disconnect": NetworkDisconnect,
        "process.pause": ProcessPause,
    })
    # Schedules run steps of any kind in the table, plugins' kinds included (the hook adds them to it later).
    from .explore import ExploreKind
    from .schedule import ScheduleKind

    table["schedule"] = ScheduleKind(table)
    table["schedule.explore"] = ExploreKind(table)
    return table
