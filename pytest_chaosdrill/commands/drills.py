"""``chaosdrill list`` and ``chaosdrill validate``: the drills, and drill or target files checked
without running anything (as ``chaos discover`` / ``chaos validate`` do for Chaos Toolkit).

Both check with the built-in trigger kinds and checks; kinds a plugin adds are checked by
``pytest --co`` (collection builds the session's full registry)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

#: The built-in backends and what they can do (their ``capabilities``), for the list's last column.
_BACKENDS = ("process", "docker", "external")


def configure_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="drill files or folders (default: the bundled drills)")
    parser.add_argument("-m", dest="marker", default=None, help="only drills with this marker (phase2, ops, ...)")


def configure_validate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE",
                        help="drill files, drill folders or target files (the kind is told from the content)")
    parser.add_argument("--fixtures", action="append", default=[], metavar="DIR",
                        help="extra folders searched first for golden fixtures (as --chaosdrill-fixtures)")


def _registry() -> Any:
    from ..registry import Registry, builtin_checks, builtin_triggers

    return Registry(builtin_triggers(), builtin_checks())


def _backend_classes() -> dict[str, Any]:
    from ..backends.docker import DockerBackend
    from ..backends.external import ExternalBackend
    from ..backends.process import ProcessBackend

    return {"process": ProcessBackend, "docker": DockerBackend, "external": ExternalBackend}


def run_list(args: argparse.Namespace) -> int:
    from ..drill import load_drills
    from ..errors import DrillDefinitionError
    from ..registry import validate_drill
    from ..resources import drills_dir

    try:
        drills = load_drills([Path(p) for p in args.paths] or [drills_dir()])
    except DrillDefinitionError as exc:
        print(exc, file=sys.stderr)
        return 2
    registry, classes = _registry(), _backend_classes()
    rows = [("drill", "title", "trigger", "budget", "markers", "backends")]
    for d in drills:
        if args.marker and args.marker not in d.markers:
            continue
        _, needs = validate_drill(d, registry)
        runs_on = [b for b, cls in classes.items() if (d.backends is None or b in d.backends)
                   and not set(needs.capabilities) - set(cls.capabilities)]
        rows.append((d.id, d.title, d.trigger_kind, f"{d.time_to_safe_budget_ms:.0f} ms", ",".join(d.markers),
                     ",".join(runs_on) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    widths[1] = min(widths[1], 40)  # titles are long; the id is what pytest -k takes
    for r in rows:
        cells = [c if i != 1 or len(c) <= widths[1] else c[:widths[1] - 1] + "…" for i, c in enumerate(r)]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    print(f"{len(rows) - 1} drill(s)")
    return 0


def _is_target(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "id" not in data and "status_url" in data and "command" in data


def run_validate(args: argparse.Namespace) -> int:
    from ..drill import drill_files, load_drill
    from ..errors import DrillDefinitionError, TargetConfigError
    from ..registry import validate_drill
    from ..target import load_target

    registry = _registry()
    fixtures = [Path(p) for p in args.fixtures]
    problems: list[str] = []
    checked = 0
    for raw in args.paths:
        path = Path(raw)
        try:
            files = drill_files([path])
        except DrillDefinitionError as exc:
            problems.append(str(exc))
            continue
        for f in files:
            checked += 1
            try:
                if _is_target(f):
                    load_target(f)
                    print(f"ok      {f} (target file)")
                    continue
                drill = load_drill(f)
            except (DrillDefinitionError, TargetConfigError) as exc:
                problems += str(exc).splitlines()
                continue
            found, _ = validate_drill(drill, registry, fixtures)
            if found:
                problems += [f"{f}: {p}" for p in found]
            else:
                print(f"ok      {f} (drill {drill.id})")
    for p in problems:
        print(f"PROBLEM {p}")
    print(f"{checked} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0
