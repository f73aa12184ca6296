"""Where the bundled data (specs, fixtures, drills) lives.

A wheel carries copies under ``pytest_chaosdrill/_data``; a source checkout or an
editable install reads the top-level folders of the repository directly.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the bundled data folder ``name`` (``specs``, ``fixtures`` or ``drills``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"bundled data folder {name!r} not found next to {_PACKAGE_DIR}; "
        "reinstall pytest-chaosdrill (pip install pytest-chaosdrill) or pass explicit paths"
    )


def specs_dir() -> Path:
    return data_dir("specs")


def fixtures_dir() -> Path:
    return data_dir("fixtures")


def drills_dir() -> Path:
    return data_dir("drills")


MIN_SCHEMA = "status_csp_min.schema.json"
EXACT_SCHEMA = "status_csp_exact.schema.json"
MANIFEST = "status_reason_registries_manifest.json"


def default_schema(exact: bool = False) -> Path:
    """The bundled min schema, or the exact (fixture) schema when ``exact``."""
    return specs_dir() / (EXACT_SCHEMA if exact else MIN_SCHEMA)


def default_manifest() -> Path:
    return specs_dir() / MANIFEST


def default_target() -> Path:
    """The bundled target file: the reference target the drills run against out of the box."""
    return data_dir("targets") / "okx_demo_api.yaml"
