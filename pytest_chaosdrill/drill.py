"""Drill definitions: data files in ``drills/`` checked against ``specs/drill.schema.json``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator

from .resources import specs_dir
from .schema_errors import describe_all
from .errors import DrillDefinitionError

DRILL_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class CheckSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    criterion: str = ""


@dataclass(frozen=True)
class Drill:
    """One drill definition, as loaded from its file."""

    id: str
    title: str
    path: Path
    markers: tuple[str, ...]
    trigger_kind: str
    trigger_params: dict[str, Any]
    hold_s: float
    release_when: str
    land_timeout_s: float
    expected: dict[str, Any]
    time_to_safe_budget_ms: float
    checks: tuple[CheckSpec, ...]
    recovery_kind: str
    recovery_timeout_s: float
    recovery_observe_s: float = 2.0
    safe_when: str = "open_blocked"
    checklist: str = ""
    description: str = ""
    backends: tuple[str, ...] | None = None   # None: every backend with the needed capabilities
    timeout_s: float = 120.0
    steady_state: dict[str, Any] = field(default_factory=dict)
    #: timing fact of the target file -> allowance (ms) added to it: the budget is at least their sum
    budget_timing: dict[str, float] = field(default_factory=dict)
    #: an optional command hook given once OPEN is seen blocked ({hook, answer_timeout_s, hold_after_s}); {} none
    occasion: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def number(self) -> int | None:
        """The checklist number for ids like ``drill_3_wal_backpressure``."""
        parts = self.id.split("_")
        if len(parts) > 1 and parts[0] == "drill" and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def group(self) -> str:
        """Evidence sub-folder: the first marker (``phase2``, ``ops``, ...)."""
        return self.markers[0]


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads((specs_dir() / "drill.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def parse_drill(data: Any, path: Path) -> Drill:
    """Validate ``data`` (already parsed) and build a :class:`Drill`."""
    if not isinstance(data, dict):
        raise DrillDefinitionError(f"{path}: a drill file must hold one mapping, got {type(data).__name__}")
    if "id" not in data and "status_url" in data and "command" in data:
        raise DrillDefinitionError(f"{path}: this is a target file, not a drill file; pass it as "
                                   "--chaosdrill-target (or move it out of the drills folder)")
    lines = describe_all(_validator().iter_errors(data))
    if lines:
        raise DrillDefinitionError("\n".join(f"{path}: {line}" for line in lines))  # one line per problem
    trigger = data["trigger"]
    checks = []
    for item in data["checks"]:
        if isinstance(item, str):
            checks.append(CheckSpec(item))
        else:
            checks.append(CheckSpec(item["check"], dict(item.get("params", {})), item.get("criterion", "")))
    recovery = data["recovery"]
    return Drill(
        id=data["id"],
        title=data["title"],
        path=path,
        markers=tuple(data["markers"]),
        trigger_kind=trigger["kind"],
        trigger_params=dict(trigger.get("params", {})),
        hold_s=float(trigger.get("hold_s", 0.0)),
        release_when=trigger.get("release_when", "hold_elapsed"),
        land_timeout_s=float(trigger.get("land_timeout_s", 10.0)),
        expected=dict(data["expected"]),
        time_to_safe_budget_ms=float(data["time_to_safe_budget_ms"]),
        checks=tuple(checks),
        recovery_kind=recovery["kind"],
        recovery_timeout_s=float(recovery.get("timeout_s", 30.0)),
        recovery_observe_s=float(recovery.get("observe_s", 2.0)),
        safe_when=data.get("safe_when", "open_blocked"),
        checklist=data.get("checklist", ""),
        description=data.get("description", ""),
        backends=tuple(data["backends"]) if "backends" in data else None,
        timeout_s=float(data.get("timeout_s", 120.0)),
        steady_state=dict(data.get("steady_state", {})),
        budget_timing={str(k): float(v) for k, v in (data.get("budget_timing") or {}).items()},
        occasion=dict(data.get("occasion") or {}),
        raw=data,
    )


def load_drill(path: str | Path) -> Drill:
    """Load one drill file (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DrillDefinitionError(f"{path}: cannot read drill file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise DrillDefinitionError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
    return parse_drill(data, path)


def drill_files(locations: Iterable[str | Path]) -> list[Path]:
    """Drill files in ``locations`` (files or folders, not recursive), sorted, without duplicates."""
    found: dict[Path, None] = {}
    for loc in locations:
        p = Path(loc)
        if p.is_dir():
            for child in sorted(p.iterdir()):
                if child.suffix in DRILL_SUFFIXES and not child.name.startswith((".", "_")):
                    found[child.resolve()] = None
        elif p.is_file():
            found[p.resolve()] = None
        else:
            raise DrillDefinitionError(f"{p}: drill location does not exist")
    return list(found)


def load_drills(locations: Iterable[str | Path]) -> list[Drill]:
    """Load every drill in ``locations``; ids must be unique."""
    drills: list[Drill] = []
    seen: dict[str, Path] = {}
    problems: list[str] = []  # every broken file named, not only the first
    for path in drill_files(locations):
        try:
            drill = load_drill(path)
        except DrillDefinitionError as exc:
            problems.append(str(exc))
            continue
        if drill.id in seen:
            problems.append(f"{path}: field 'id': {drill.id!r} is already defined in {seen[drill.id]}")
            continue
        seen[drill.id] = path
        drills.append(drill)
    if problems:
        raise DrillDefinitionError("\n".join(problems))
    return sorted(drills, key=lambda d: (d.group != "phase2", d.group, d.number if d.number is not None else 10**6, d.id))
