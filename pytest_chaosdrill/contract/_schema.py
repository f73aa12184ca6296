"""The JSON Schema half of the contract: one cached ``jsonschema.Draft202012Validator``.

The validator is built once per schema and asked per payload; every [SCHEMA] finding comes from
its ``iter_errors``, so its messages are the same on every installation. When ``jsonschema-rs``
is installed (the ``fast`` extra), its validator answers the common case first: a payload it finds
valid has no errors to explain and skips the Python walk. Only that "valid" answer is trusted; any
other answer, or any error of the accelerator, goes to ``jsonschema``. Measured reason: see
``docs/contract.md`` (benchmarks/bench_contract.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012


class SchemaCheck:
    """A schema's validator, built (and the schema itself checked) once."""

    def __init__(self, schema: dict[str, Any], *, accelerate: bool = True) -> None:
        """Raise :class:`jsonschema.exceptions.SchemaError` if ``schema`` is not a 2020-12 schema."""
        Draft202012Validator.check_schema(schema)
        _check_refs(schema)
        self.validator = Draft202012Validator(schema)
        self.accelerator: Any = _accelerator(schema) if accelerate else None

    def is_valid(self, payload: Any) -> bool:
        """The schema verdict alone."""
        if self._fast_valid(payload):
            return True
        return self.validator.is_valid(payload)

    def errors(self, payload: Any) -> Iterable[ValidationError]:
        """Every schema error of ``payload`` (jsonschema's, in its order); empty when valid."""
        if self._fast_valid(payload):
            return ()
        return self.validator.iter_errors(payload)

    def _fast_valid(self, payload: Any) -> bool:
        fast = self.accelerator
        if fast is None:
            return False
        try:
            return fast.is_valid(payload) is True
        except Exception:  # a value it cannot convert (e.g. an int beyond 64 bits): jsonschema decides
            return False


def _check_refs(schema: dict[str, Any]) -> None:
    """Resolve every ``$ref`` now, so a dangling one is a load error and not a crash mid-drill."""
    resolver = Registry().with_resource("", DRAFT202012.create_resource(schema)).resolver()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise SchemaError(f"$ref {ref!r} does not resolve") from None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _accelerator(schema: dict[str, Any]) -> Any:
    """jsonschema-rs's validator for ``schema``, or None (not installed, or it refuses the schema)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        return jsonschema_rs.Draft202012Validator(schema)
    except Exception:  # a schema jsonschema accepts but the accelerator cannot build: do without it
        return None


__all__ = ["SchemaCheck", "SchemaError"]
