"""pytest plugin entry point (``pytest11``): options, markers, fixtures and hooks."""
from __future__ import annotations

import pytest

MARKERS = (
    "phase2: a Phase 2 chaos drill from the contract-keyed checklist",
    "ops: an ops-only drill (STOP file, degradation telemetry gate)",
    "drill(id): the drill definition a test runs",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
