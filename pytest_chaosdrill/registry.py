"""The registries of trigger kinds and checks: the built-in tables, the session's registry (built once
from the hookspecs, plugins' additions included) and the validation of drills against them, before
anything starts.

Every mistake in a drill file is reported with the file and the field: an unknown trigger kind or
check, a misspelt parameter, a missing golden fixture, a hook the target file does not declare.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .backends.base import EXIT, START
from . import checks as C
from . import faults as F
from .checks import Check
from .drill import Drill
from .expect import Expectation, ExpectationError
from .explore import ExploreKind
from .schedule_steps import EXPLORE
from .faults import TriggerFactory, requirements
from .target import TargetConfig

#: What each recovery kind needs of the backend.
RECOVERY_REQUIRES = {"process_exit": frozenset({EXIT}), "restart_required": frozenset({START})}


def builtin_triggers() -> dict[str, TriggerFactory]:
    """The trigger kinds pytest-chaosdrill ships (``<family>.<what>``; one module per family in :mod:`.faults`)."""
    table: dict[str, TriggerFactory] = {f"venue.{m}": F.VenueFaultKind(m) for m in F.VENUE_FAULTS}
    table.update({
        "proxy.toxic": F.ProxyToxic,
        "process.kill_restart": F.ProcessKillRestart,
        "file.stop": F.StopFile,
        "hook.apply": F.TargetHook,
        "network.disconnect": F.NetworkDisconnect,
        "dns.failure": F.DNSFailure,
        "process.pause": F.ProcessPause,
        "kubernetes.pod_delete": F.PodDelete,
        "kubernetes.node_loss": F.NodeLoss,
        "kubernetes.memory_limit": F.MemoryLimit,
        "kubernetes.oom_kill": F.OomKill,
        "kubernetes.scale": F.Scale,
        "kubernetes.network_cut": F.NetworkCut,
        "kubernetes.image_fault": F.ImageFault,
    })
    # Schedules run steps of any kind in the table, plugins' kinds included (the hook adds them to it later).
    table["schedule"] = F.ScheduleKind(table)
    return table


def builtin_drivers(triggers: dict[str, TriggerFactory]) -> dict[str, Any]:
    """Drill kinds that are no trigger but a driver above the runner, by the ``trigger.kind`` drill files
    give them, with what validates their parameters against the session's trigger table."""
    return {EXPLORE: ExploreKind(triggers)}


def builtin_checks() -> dict[str, Check]:
    """The checks pytest-chaosdrill ships, by name (one module per family in :mod:`.checks`)."""
    return {fn.__name__: fn for fn in (C.global_invariants, C.explore_found_no_violation,
        C.mode_held, C.no_open_dispatch_while_blocked, C.latch_set_with, C.latch_clears_only_after_reconcile,
        C.ws_event_lag_reflects, C.counter_increased, C.containment_proceeds, C.exposure_monotonic_to_neutral,
        C.loop_keeps_ticking, C.reduce_only_permitted, C.restart_latch_on_startup, C.no_duplicate_dispatch, C.stays_kill,
        C.capital_supremacy, C.registry_drift_blocked, C.stop_detected, C.graceful_exit, C.run_manifest_fields,
        C.fingerprint_error_gate, C.sustained_call_pressure, C.no_order_accepted_after_not_found,
        C.no_duplicate_trade_processing, C.resynced_during_skew, C.single_instance_trading,
        C.no_dispatch_while_failed)}


@dataclass
class Registry:
    """Trigger kinds and checks known to this session (built-ins plus plugins' additions)."""

    triggers: dict[str, TriggerFactory] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)
    #: drivers above the runner (exploration), validated like trigger kinds but never run by the runner
    drivers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.drivers:
            self.drivers = builtin_drivers(self.triggers)

    def is_driven(self, drill: Drill) -> bool:
        """Whether ``drill`` runs through a driver (an exploration) rather than the runner alone."""
        return drill.trigger_kind in self.drivers

    @classmethod
    def builtin(cls) -> "Registry":
        """The built-in tables only (no pytest session, so no plugins' additions)."""
        return cls(builtin_triggers(), builtin_checks())

    @classmethod
    def build(cls, hook: Any) -> "Registry":
        triggers = builtin_triggers()
        hook.pytest_chaosdrill_add_triggers(triggers=triggers)
        checks = builtin_checks()
        hook.pytest_chaosdrill_add_checks(checks=checks)
        return cls(triggers, checks)


@dataclass(frozen=True)
class Requirements:
    """What a drill needs: backend capabilities, target-file fields."""

    capabilities: frozenset[str]
    target_fields: tuple[str, ...]


def check_signature_problems(fn: Callable[..., Any], params: dict[str, Any]) -> list[str]:
    """Problems binding ``params`` to a check ``fn(record, **params)``."""
    sig = inspect.signature(fn)
    names = list(sig.parameters)[1:]
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        unknown = [k for k in params if k not in names]
        if unknown:
            return [f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
                    f"{getattr(fn, '__name__', 'the check')} takes {', '.join(names) or 'no parameters'}"]
    try:
        inspect.signature(fn).bind(None, **params)
    except TypeError as exc:
        return [f"{exc}; {getattr(fn, '__name__', 'the check')} takes {', '.join(names) or 'no parameters'}"]
    return []


def validate_drill(drill: Drill, registry: Registry, fixture_dirs: Iterable[Path] = ()) -> tuple[list[str], Requirements]:
    """Problems with ``drill`` (each naming its field) and what it requires."""
    problems: list[str] = []
    caps: frozenset[str] = frozenset()
    needs: list[str] = []
    factory = registry.triggers.get(drill.trigger_kind) or registry.drivers.get(drill.trigger_kind)
    if factory is None:
        problems.append(f"field 'trigger.kind': unknown trigger kind {drill.trigger_kind!r}; "
                        f"known: {', '.join(sorted([*registry.triggers, *registry.drivers]))}")
    else:
        caps, needs, param_problems = requirements(factory, dict(drill.trigger_params))
        problems += [f"field 'trigger.params': {p}" for p in param_problems]
    caps = caps | RECOVERY_REQUIRES.get(drill.recovery_kind, frozenset())
    for i, spec in enumerate(drill.checks):
        fn = registry.checks.get(spec.name)
        if fn is None:
            problems.append(f"field 'checks[{i}]': unknown check {spec.name!r}; known: {', '.join(sorted(registry.checks))}")
            continue
        problems += [f"field 'checks[{i}].params' ({spec.name}): {p}" for p in check_signature_problems(fn, spec.params)]
        needs += list(getattr(fn, "needs", ()))
    if drill.expected.get("fixture") or drill.expected.get("status"):
        try:
            Expectation.from_drill(drill.expected, fixture_dirs)
        except ExpectationError as exc:
            problems.append(f"field 'expected': {exc}")
    return problems, Requirements(caps, tuple(dict.fromkeys(needs)))


def missing_target_fields(config: TargetConfig, fields: Iterable[str]) -> list[str]:
    """Fields of ``fields`` (``files.stop``, ``hooks.wal_stall``, ``hooks_log``) the target file lacks."""
    out = []
    for f in fields:
        section, _, key = f.partition(".")
        if section == "files" and key not in config.files:
            out.append(f)
        elif section == "hooks" and key not in config.hooks:
            out.append(f)
        elif section == "hooks_log" and not config.hooks_log:
            out.append(f)
    return out
