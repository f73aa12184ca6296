"""The /api/v1/status contract engine (see ``docs/contract.md``).

>>> from pytest_chaosdrill.contract import Contract, check_status, assert_status_valid
"""
from __future__ import annotations

from ._engine import (
    TAGS,
    Contract,
    ContractLoadError,
    ContractViolation,
    Finding,
    assert_status_valid,
    check_status,
    findings_by_tag,
    format_findings,
    json_path,
)

__all__ = [
    "TAGS",
    "Contract",
    "ContractLoadError",
    "ContractViolation",
    "Finding",
    "assert_status_valid",
    "check_status",
    "findings_by_tag",
    "format_findings",
    "json_path",
]
