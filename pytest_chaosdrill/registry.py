"""The registries of trigger kinds and checks (built once per session from the hookspecs) and the
validation of drills against them, before anything starts.

Every mistake in a drill file is reported with the file and the field: an unknown trigger kind or
check, a misspelt parameter, a missing golden fixture, a hook the target file does not declare.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .backends.base import EXIT, START
from .checks import Check, builtin_checks
from .drill import Drill
from .expect import Expectation, ExpectationError
from .faults import TriggerFactory, builtin_triggers, requirements
from .target import TargetConfig

#: What each recovery kind needs of the backend.
RECOVERY_REQUIRES = {"process_exit": frozenset({EXIT}), "restart_required": frozenset({START})}


@dataclass
class Registry:
    """Trigger kinds and checks known to this session (built-ins plus plugins' additions)."""

    triggers: dict[str, TriggerFactory] = field(default_factory=dict)
    checks: dict[str, Check] = field(default_factory=dict)

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
    factory = registry.triggers.get(drill.trigger_kind)
    if factory is None:
        problems.append(f"field 'trigger.kind': unknown trigger kind {drill.trigger_kind!r}; "
                        f"known: {', '.join(sorted(registry.triggers))}")
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
