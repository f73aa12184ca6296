"""JSON-schema validation errors said the way a person fixing a YAML file needs them: file, field, what."""
from __future__ import annotations

import re
from typing import Any, Iterable


def json_path(parts: Iterable[Any]) -> str:
    """``trigger.params`` / ``checks[2].params`` from a jsonschema ``absolute_path``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def describe(error: Any) -> str:
    """One line for one ``jsonschema.ValidationError``: ``field 'x.y': what is wrong``."""
    where = json_path(error.absolute_path)
    if error.validator == "required":
        # jsonschema raises one error per missing property, each with the whole list: the name is in the message
        m = re.match(r"^'(.+)' is a required property", error.message)
        missing = m.group(1) if m else next((n for n in error.validator_value if n not in (error.instance or {})), None)
        if missing is not None:
            return f"field '{where + '.' if where else ''}{missing}' is required"
    if error.validator == "type" and error.validator_value == "array" and isinstance(error.instance, str):
        return f"field '{where}': must be a list of strings, got the string {error.instance!r}"
    return f"field '{where or '(top level)'}': {error.message}"


def describe_all(errors: Iterable[Any], limit: int = 10) -> list[str]:
    ordered = sorted(errors, key=lambda e: [str(p) for p in e.absolute_path])
    lines = list(dict.fromkeys(describe(e) for e in ordered))  # each problem once
    return lines[:limit]
