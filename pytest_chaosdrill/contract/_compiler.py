"""A small JSON Schema (Draft 2020-12) compiler: schema -> ``is_valid(instance) -> bool``.

It handles only the keywords the status contract uses and turns them into nested
Python closures, which answers "is this payload valid?" far faster than building
or walking a jsonschema validator.  It never produces error messages: when the
fast answer is "invalid", the engine asks jsonschema for the errors and paths.

A schema with any keyword outside :data:`SUPPORTED` raises :class:`Unsupported`
so the caller can fall back to jsonschema entirely; malformed values of known
keywords raise :class:`SchemaShapeError` (the schema file itself is broken).
The semantics follow jsonschema's own (booleans are not numbers, ``1 == 1.0``,
keywords ignore instances of other types); a Hypothesis test checks agreement.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

#: Keywords that only annotate; they never change validity.
ANNOTATIONS = frozenset(
    {
        "$schema", "$id", "$comment", "$defs", "definitions", "title", "description",
        "default", "examples", "deprecated", "readOnly", "writeOnly", "format",
        "contentMediaType", "contentEncoding",
    }
)
#: Keywords the compiler turns into checks.
ASSERTIONS = frozenset(
    {
        "type", "const", "enum", "required", "properties", "additionalProperties", "$ref",
        "items", "contains", "minContains", "maxContains", "uniqueItems", "minItems", "maxItems",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
        "minProperties", "maxProperties", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
    }
)
SUPPORTED = ANNOTATIONS | ASSERTIONS

_TYPE_NAMES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


class Unsupported(Exception):
    """The schema uses a keyword (or a $ref form) this compiler does not implement."""


class SchemaShapeError(ValueError):
    """A known keyword has a value that no valid Draft 2020-12 schema could have."""


def _true(_: Any) -> bool:
    return True


def _false(_: Any) -> bool:
    return False


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_integer(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    return isinstance(x, float) and x.is_integer()


_TYPE_CHECKS: dict[str, Check] = {
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": _is_integer,
}


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1``; containers compare element-wise."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return a == b


def _value_check(values: list[Any]) -> Check:
    """Membership in ``values`` under JSON equality, with a set fast path for strings."""
    if values and all(isinstance(v, str) for v in values):
        allowed = frozenset(values)
        return lambda x: isinstance(x, str) and x in allowed
    if len(values) == 1:
        only = values[0]
        return lambda x: json_equal(x, only)
    return lambda x: any(json_equal(x, v) for v in values)


def _need(cond: bool, keyword: str, what: str) -> None:
    if not cond:
        raise SchemaShapeError(f"keyword {keyword!r} must be {what}")


def _nonneg_int(v: Any) -> bool:
    return _is_integer(v) and v >= 0


class Compiler:
    """Compiles one root schema; ``$ref`` may point anywhere inside it (``#`` or ``#/a/b``)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self._refs: dict[str, list[Check]] = {}

    def compile_root(self) -> Check:
        return self.compile(self.root)

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _true
        if schema is False:
            return _false
        if not isinstance(schema, dict):
            raise SchemaShapeError(f"a schema must be an object or a boolean, got {type(schema).__name__}")
        unknown = set(schema) - SUPPORTED
        if "$id" in schema and schema is not self.root:
            unknown.add("$id (nested: changes the base URI)")
        if unknown:
            raise Unsupported(f"keyword(s) not compiled: {', '.join(sorted(map(str, unknown)))}")
        checks: list[Check] = []
        for keyword, value in schema.items():
            build = _BUILDERS.get(keyword)
            if build is not None:
                check = build(self, value, schema)
                if check is not None:
                    checks.append(check)
        if "if" in schema:
            checks.append(self._if_then_else(schema))
        return _all(checks)

    # --- keywords needing the compiler itself -------------------------------------------
    def ref(self, value: Any, _schema: Mapping[str, Any]) -> Check:
        _need(isinstance(value, str), "$ref", "a string")
        if value != "#" and not value.startswith("#/"):
            raise Unsupported(f"$ref {value!r}: only local JSON-pointer references are compiled")
        holder = self._refs.get(value)
        if holder is None:
            holder = []
            self._refs[value] = holder  # registered before compiling: recursive refs terminate
            holder.append(self.compile(self._resolve(value)))
        return lambda x: holder[0](x)

    def _resolve(self, pointer: str) -> Any:
        node = self.root
        for raw in pointer[2:].split("/") if pointer != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaShapeError(f"$ref {pointer!r} does not resolve inside the schema")
        return node

    def _if_then_else(self, schema: Mapping[str, Any]) -> Check:
        cond = self.compile(schema["if"])
        then = self.compile(schema["then"]) if "then" in schema else _true
        other = self.compile(schema["else"]) if "else" in schema else _true
        return lambda x: then(x) if cond(x) else other(x)

    def _list(self, keyword: str, value: Any) -> list[Check]:
        _need(isinstance(value, list) and len(value) > 0, keyword, "a non-empty array of schemas")
        return [self.compile(s) for s in value]


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda x: a(x) and b(x)
    frozen = tuple(checks)

    def every(x: Any) -> bool:
        for c in frozen:
            if not c(x):
                return False
        return True

    return every


# --- one builder per assertion keyword: (compiler, value, whole schema) -> Check | None --
def _b_type(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    names = [v] if isinstance(v, str) else v
    _need(isinstance(names, list) and bool(names) and all(n in _TYPE_NAMES for n in names),
          "type", "a JSON type name or a non-empty array of them")
    if len(names) == 1:
        return _TYPE_CHECKS[names[0]]
    checks = tuple(_TYPE_CHECKS[n] for n in names)
    return lambda x: any(t(x) for t in checks)


def _b_const(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    return _value_check([v])


def _b_enum(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    _need(isinstance(v, list), "enum", "an array")
    return _value_check(v)


def _b_required(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check | None:
    _need(isinstance(v, list) and all(isinstance(k, str) for k in v), "required", "an array of strings")
    if not v:
        return None
    keys = tuple(v)

    def required(x: Any) -> bool:
        if isinstance(x, dict):
            for k in keys:
                if k not in x:
                    return False
        return True

    return required


def _b_properties(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check | None:
    _need(isinstance(v, dict), "properties", "an object of schemas")
    pairs = tuple((k, c.compile(sub)) for k, sub in v.items() if sub is not True)
    if not pairs:
        return None

    def properties(x: Any) -> bool:
        if isinstance(x, dict):
            for k, check in pairs:
                if k in x and not check(x[k]):
                    return False
        return True

    return properties


def _b_additional(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check | None:
    if v is True:
        return None
    known = frozenset(s.get("properties") or ())
    sub = c.compile(v)

    def additional(x: Any) -> bool:
        if isinstance(x, dict):
            for k, val in x.items():
                if k not in known and not sub(val):
                    return False
        return True

    return additional


def _b_items(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check | None:
    if isinstance(v, list):
        raise Unsupported("array-form 'items' (use prefixItems in Draft 2020-12)")
    sub = c.compile(v)
    if sub is _true:
        return None

    def items(x: Any) -> bool:
        if isinstance(x, list):
            for e in x:
                if not sub(e):
                    return False
        return True

    return items


def _b_contains(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    sub = c.compile(v)
    low = s.get("minContains", 1)
    high = s.get("maxContains")
    _need(_nonneg_int(low), "minContains", "a non-negative integer")
    _need(high is None or _nonneg_int(high), "maxContains", "a non-negative integer")

    def contains(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        matches = 0
        for e in x:
            if sub(e):
                matches += 1
                if high is not None and matches > high:
                    return False
        return matches >= low

    return contains


def _b_unique(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check | None:
    _need(isinstance(v, bool), "uniqueItems", "a boolean")
    if not v:
        return None

    def unique(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        if all(isinstance(e, str) for e in x):
            return len(set(x)) == len(x)
        for i in range(1, len(x)):
            for j in range(i):
                if json_equal(x[i], x[j]):
                    return False
        return True

    return unique


def _size(kind: type, low: bool) -> Callable[[Compiler, Any, Mapping[str, Any]], Check]:
    def build(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
        _need(_nonneg_int(v), "size keyword", "a non-negative integer")
        if low:
            return lambda x: not isinstance(x, kind) or len(x) >= v
        return lambda x: not isinstance(x, kind) or len(x) <= v

    return build


def _bound(op: str) -> Callable[[Compiler, Any, Mapping[str, Any]], Check]:
    def build(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
        _need(_is_number(v), op, "a number")
        # Written as "not (violation)" so that a NaN instance passes exactly as in jsonschema.
        if op == "minimum":
            return lambda x: not _is_number(x) or not x < v
        if op == "maximum":
            return lambda x: not _is_number(x) or not x > v
        if op == "exclusiveMinimum":
            return lambda x: not _is_number(x) or not x <= v
        return lambda x: not _is_number(x) or not x >= v

    return build


def _b_all_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    return _all(c._list("allOf", v))


def _b_any_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    checks = tuple(c._list("anyOf", v))
    return lambda x: any(ch(x) for ch in checks)


def _b_one_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    checks = tuple(c._list("oneOf", v))
    return lambda x: sum(1 for ch in checks if ch(x)) == 1


def _b_not(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    sub = c.compile(v)
    return lambda x: not sub(x)


def _b_noop(c: Compiler, v: Any, s: Mapping[str, Any]) -> None:
    return None


def _b_ref(c: Compiler, v: Any, s: Mapping[str, Any]) -> Check:
    return c.ref(v, s)


def _b_min_contains(c: Compiler, v: Any, s: Mapping[str, Any]) -> None:
    # Evaluated together with "contains"; on its own it has no effect.
    _need(_nonneg_int(v), "minContains/maxContains", "a non-negative integer")
    return None


_BUILDERS: dict[str, Callable[[Compiler, Any, Mapping[str, Any]], Check | None]] = {
    "type": _b_type,
    "const": _b_const,
    "enum": _b_enum,
    "required": _b_required,
    "properties": _b_properties,
    "additionalProperties": _b_additional,
    "$ref": _b_ref,
    "items": _b_items,
    "contains": _b_contains,
    "minContains": _b_min_contains,
    "maxContains": _b_min_contains,
    "uniqueItems": _b_unique,
    "minItems": _size(list, True),
    "maxItems": _size(list, False),
    "minLength": _size(str, True),
    "maxLength": _size(str, False),
    "minProperties": _size(dict, True),
    "maxProperties": _size(dict, False),
    "minimum": _bound("minimum"),
    "maximum": _bound("maximum"),
    "exclusiveMinimum": _bound("exclusiveMinimum"),
    "exclusiveMaximum": _bound("exclusiveMaximum"),
    "allOf": _b_all_of,
    "anyOf": _b_any_of,
    "oneOf": _b_one_of,
    "not": _b_not,
    # if/then/else are assembled once per schema in Compiler.compile.
    "if": _b_noop,
    "then": _b_noop,
    "else": _b_noop,
}


def compile_root_parts(schema: dict[str, Any]) -> tuple[Check, list[tuple[str, Any, Check, Any]]]:
    """Compile ``schema`` whole and split into independently checkable parts.

    Each part is ``(kind, key, check, subschema)``: kind ``"property"`` (key = property
    name; check and subschema apply to that property's value), ``"allOf"`` (key = index),
    or ``"keyword"`` (key = the root keyword; subschema holds just that keyword and the
    siblings it depends on).  The engine hands only failing parts to jsonschema, which
    is much cheaper than a full ``iter_errors`` over the payload.
    """
    compiler = Compiler(schema)
    whole = compiler.compile_root()
    parts: list[tuple[str, Any, Check, Any]] = []
    props = schema.get("properties") or {}
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS or keyword in ("then", "else", "minContains", "maxContains"):
            continue
        if keyword == "properties":
            for name, sub in value.items():
                parts.append(("property", name, compiler.compile(sub), sub))
            continue
        if keyword == "allOf":
            for i, sub in enumerate(value):
                parts.append(("allOf", i, compiler.compile(sub), sub))
            continue
        if keyword == "if":
            sub = {k: schema[k] for k in ("if", "then", "else") if k in schema}
        elif keyword == "contains":
            sub = {k: schema[k] for k in ("contains", "minContains", "maxContains") if k in schema}
        elif keyword == "additionalProperties":
            sub = {"properties": {k: True for k in props}, "additionalProperties": value}
        else:
            sub = {keyword: value}
        parts.append(("keyword", keyword, compiler.compile(sub), sub))
    return whole, parts


def compile_schema(schema: Any) -> Check:
    """Compile ``schema`` to a validity predicate; raises Unsupported or SchemaShapeError."""
    return Compiler(schema).compile_root()


__all__ = ["Check", "SUPPORTED", "SchemaShapeError", "Unsupported", "compile_root_parts", "compile_schema", "json_equal"]
