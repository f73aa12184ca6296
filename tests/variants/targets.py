"""Target files of the variants: the reference target's own file (targets/okx_demo_api.yaml), with the
launcher as its command, so every variant runs under exactly the settings the reference drills use.

``python tests/variants/targets.py <bug> > my_target.yaml`` prints one, for a drill run by hand:
``pytest drills --chaosdrill-target my_target.yaml -k <drill id>`` from the repository root.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "launch.py"
REFERENCE = HERE.parent.parent / "targets" / "okx_demo_api.yaml"


def variant_target(bug: str) -> dict[str, Any]:
    """The reference target file started through the launcher with ``bug`` (process backend; the
    container variants build their own image, see tests/test_drills_not_vacuous_docker.py)."""
    doc = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    doc.pop("docker", None)
    doc["name"] = f"okx_demo_api_{bug}"
    doc["command"] = ["{python}", str(LAUNCHER), bug]
    return doc


def write_variant_target(bug: str, path: Path) -> Path:
    """Write :func:`variant_target` to ``path``; returns ``path``."""
    path.write_text(yaml.safe_dump(variant_target(bug), sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.stdout.write(yaml.safe_dump(variant_target(sys.argv[1]), sort_keys=False))
