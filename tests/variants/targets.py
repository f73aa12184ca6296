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


def variant_target(bug: str, image: str | None = None, launcher_in_image: str = "",
                   drop_hooks: tuple[str, ...] = ()) -> dict[str, Any]:
    """The reference target file started through the launcher with ``bug``. Without ``image``, for the
    process backend (no docker section); with it, the docker section runs ``launcher_in_image`` from
    ``image`` (see tests/matrix/test_drills_not_vacuous_docker.py, which builds that image).
    ``drop_hooks``: optional hooks left out of the file (a service that offers no such hook)."""
    doc = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    for hook in drop_hooks:
        doc["hooks"].pop(hook)
    doc["name"] = f"okx_demo_api_{bug}"
    doc["command"] = ["{python}", str(LAUNCHER), bug]
    # A relative manifest path is relative to the reference file's folder (its cwd); this file is written
    # elsewhere, so the path is made absolute here.
    manifest = doc["env"]["TARGET_REASON_MANIFEST"]
    doc["env"]["TARGET_REASON_MANIFEST"] = str((REFERENCE.parent / manifest).resolve())
    if image is None:
        doc.pop("docker", None)
    else:
        assert "docker" in doc and launcher_in_image, f"{REFERENCE}: no docker section, or no launcher path"
        doc["docker"] = {**doc["docker"], "image": image, "command": ["python3", launcher_in_image, bug]}
    return doc


def write_variant_target(bug: str, path: Path, image: str | None = None, launcher_in_image: str = "",
                         drop_hooks: tuple[str, ...] = ()) -> Path:
    """Write :func:`variant_target` to ``path``; returns ``path``."""
    doc = variant_target(bug, image, launcher_in_image, drop_hooks)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.stdout.write(yaml.safe_dump(variant_target(sys.argv[1]), sort_keys=False))
