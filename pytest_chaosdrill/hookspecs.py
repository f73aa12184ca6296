"""Extension points: plugins and conftest.py files add trigger kinds and checks without forking."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_chaosdrill_add_triggers(triggers: dict[str, Any]) -> None:
    """Add trigger kinds: ``triggers["mykind.fault"] = factory`` where ``factory(ctx, params)``
    returns a :class:`pytest_chaosdrill.faults.Trigger` (``fire``, ``wait_landed``, ``release``)."""


def pytest_chaosdrill_add_checks(checks: dict[str, Any]) -> None:
    """Add named checks: ``checks["my_check"] = fn`` where ``fn(run, **params)`` returns a
    :class:`pytest_chaosdrill.checks.CheckResult` (``passed=None`` means NOT PROVEN)."""


def pytest_chaosdrill_evidence_written(item: pytest.Item, folder: Path, verdict: str) -> None:
    """Called after a drill's evidence folder is complete (hashes and archive written)."""
