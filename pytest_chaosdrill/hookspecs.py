"""Extension points: plugins and conftest.py files add trigger kinds, checks and backends without forking."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def pytest_chaosdrill_add_triggers(triggers: dict[str, Any]) -> None:
    """Add trigger kinds: ``triggers["mykind.fault"] = factory`` where ``factory(ctx, params)`` returns a
    :class:`pytest_chaosdrill.faults.Trigger` (``fire``, ``wait_landed``, ``release``). A factory may
    declare ``requires`` (backend capabilities), ``needs(params)`` (target-file fields) and
    ``check_params(params)`` (problems); drills are validated against them at collection."""


def pytest_chaosdrill_add_checks(checks: dict[str, Any]) -> None:
    """Add named checks: ``checks["my_check"] = fn`` where ``fn(record, **params)`` is a pure function of a
    :class:`pytest_chaosdrill.record.DrillRecord` returning a :class:`pytest_chaosdrill.checks.CheckResult`
    (``passed=None`` means NOT PROVEN). Drill parameters are bound to the signature at collection."""


@pytest.hookspec(firstresult=True)
def pytest_chaosdrill_backend_class(name: str, config: pytest.Config) -> Any:
    """Return the :class:`pytest_chaosdrill.backends.base.Backend` subclass for ``name``, or None.

    The first non-None answer wins; the built-in ``process``, ``docker`` and ``external`` are the
    ``trylast`` default, so a plugin can add a backend or replace a built-in one."""


def pytest_chaosdrill_evidence_written(item: pytest.Item, folder: Path, verdict: str) -> None:
    """Called after a drill's evidence folder is complete (hashes and archive written)."""
