"""The JSON Schema half of the contract: one cached ``jsonschema.Draft202012Validator``.

The validator is built once per schema and asked per payload; every [SCHEMA] finding comes from
its ``iter_errors``, so its errors are the same on every installation. When ``jsonschema-rs`` is
installed (the ``fast`` extra), its validator answers the common case first: a payload it finds
valid has no errors to explain and skips the Python walk. Only that "valid" answer is trusted; any
other answer, or any error of the accelerator, goes to ``jsonschema``. The schema itself is checked
the same way at load: by jsonschema-rs's meta-schema check and validator build where installed (a
refusal goes to jsonschema for its explanation), else by jsonschema. Measured reason:
``docs/contract.md`` (``benchmarks/bench_contract.py``).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


class SchemaProblem(ValueError):
    """The schema is not a usable Draft 2020-12 schema (the message says why)."""


class SchemaCheck:
    """A schema's validator, built (and the schema itself checked) once.

    Raises :class:`SchemaProblem` for a schema that is not valid 2020-12 or has a ``$ref`` that
    does not resolve.
    """

    def __init__(self, schema: dict[str, Any], *, accelerate: bool = True) -> None:
        self.schema = schema
        self.accelerator: Any = _accelerator(schema) if accelerate else None
        self._validator: Draft202012Validator | None = None
        if self.accelerator is None:
            self._validator = _python_validator(schema, check=True)

    @property
    def validator(self) -> Draft202012Validator:
        """jsonschema's validator; with the accelerator it is built when first needed (an invalid
        payload to explain), so a run of valid payloads never imports jsonschema."""
        if self._validator is None:
            # The accelerator already checked the schema and resolved its references.
            self._validator = _python_validator(self.schema, check=False)
        return self._validator

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


def _python_validator(schema: dict[str, Any], *, check: bool) -> Draft202012Validator:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if check:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise SchemaProblem(exc.message) from None
        _check_refs(schema)
    return Draft202012Validator(schema)


def _check_refs(schema: dict[str, Any]) -> None:
    """Resolve every ``$ref`` now, so a dangling one is a load error and not a crash mid-drill."""
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

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
                    raise SchemaProblem(f"$ref {ref!r} does not resolve") from None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _accelerator(schema: dict[str, Any]) -> Any:
    """jsonschema-rs's validator for ``schema``, or None (not installed, or it refuses the schema:
    then jsonschema checks the schema and explains the refusal)."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    try:
        if not jsonschema_rs.meta.is_valid(schema):
            return None
        return jsonschema_rs.Draft202012Validator(schema)
    except Exception:  # a schema it cannot take (e.g. a dangling $ref): jsonschema says why, or copes
        return None


__all__ = ["SchemaCheck", "SchemaProblem"]
