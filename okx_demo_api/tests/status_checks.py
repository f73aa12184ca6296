"""The status contract check the service's tests apply to every /status sample they take.

The checker is the plugin's (the test tool judges the service); the service itself never imports it.
"""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pytest_chaosdrill.contract import check_status
from pytest_chaosdrill.resources import default_schema


def sample_problems(samples: list[dict]) -> list[str]:
    """Every schema (min JSON Schema, Draft 2020-12) and contract-engine finding over ``samples``."""
    validator = jsonschema.Draft202012Validator(json.loads(Path(default_schema()).read_text()))
    problems = []
    for st in samples:
        st = {k: v for k, v in st.items() if k != "_mono"}
        problems += [f"[SCHEMA] {list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(st)]
        problems += [str(f) for f in check_status(st)]
    return problems
