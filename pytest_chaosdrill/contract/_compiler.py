"""A small JSON Schema (Draft 2020-12) compiler: schema -> (is_valid, explain) closures.

It handles the keywords the status contract uses and turns each schema node into
two nested Python closures:

* ``check(instance) -> bool``, the fast path, called on every payload;
* ``explain(instance, path) -> list[Error]``, called only when ``check`` said
  "invalid"; it descends only into the failing parts and reports each error with
  its instance path and keyword, the way jsonschema's ``iter_errors`` does (same
  paths and keywords; messages in the same style, with long values shortened).

A schema with any keyword outside :data:`SUPPORTED` raises :class:`Unsupported`
so the caller can fall back to jsonschema entirely; malformed values of known
keywords raise :class:`SchemaShapeError` (the schema file itself is broken).
Semantics follow jsonschema's (booleans are not numbers, ``1 == 1.0``, keywords
ignore instances of other types); a Hypothesis test checks agreement of both the
verdict and the (path, keyword) list of errors.
"""
from __future__ import annotations

import reprlib
from collections import namedtuple
from collections.abc import Callable, Mapping

# ``typing`` is imported for type checkers only: importing it costs the CLI's start-up more than
# everything else this module does at import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    Check = Callable[[Any], bool]

    class Error(NamedTuple):
        """One schema error: instance path (tuple of keys/indexes), keyword, message, detail."""

        path: tuple[Any, ...]
        keyword: str
        message: str
        detail: Any = None

    Explain = Callable[[Any, tuple[Any, ...]], list[Error]]
    Node = tuple[Check, Explain]
else:
    Check = Explain = Callable
    Node = tuple
    Error = namedtuple("Error", ("path", "keyword", "message", "detail"), defaults=(None,))
    Error.__doc__ = """One schema error: instance path (tuple of keys/indexes), keyword, message, detail.

    ``detail`` is the missing property for ``required`` errors, else None.
    """

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


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 4, 60, 60, 8, 6


def bounded_repr(value: Any) -> str:
    """``_REPR.repr(value)``, with the common scalar cases answered without reprlib's dispatch.

    Each branch returns exactly what reprlib would (a test compares them): a short ``str`` or
    ``int`` is its plain repr, as are ``float``/``bool``/``None`` (far below ``maxother``) and
    the empty containers. Anything else goes to reprlib.
    """
    t = type(value)
    if t is str:
        if len(value) <= _REPR.maxstring:
            text = repr(value)
            if len(text) <= _REPR.maxstring:
                return text
    elif t is int:
        text = repr(value)
        if len(text) <= _REPR.maxlong:
            return text
    elif t is float or t is bool or value is None:
        return repr(value)
    elif (t is list or t is dict) and not value:
        return "[]" if t is list else "{}"
    return _REPR.repr(value)


def _short(value: Any, limit: int = 60) -> str:
    """repr() for messages: bounded in length and nesting (a deep value cannot blow the stack)."""
    text = bounded_repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _true(_: Any) -> bool:
    return True


def _false(_: Any) -> bool:
    return False


def _no_errors(_: Any, __: tuple[Any, ...]) -> list[Error]:
    return []


def _false_errors(x: Any, path: tuple[Any, ...]) -> list[Error]:
    return [Error(path, "false", f"False schema does not allow {_short(x)}")]


TRUE_NODE: Node = (_true, _no_errors)
FALSE_NODE: Node = (_false, _false_errors)


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


def _leaf(check: Check, keyword: str, message: Callable[[Any], str]) -> Node:
    """A node whose failure is one error at the instance's own path."""
    return check, lambda x, path: [Error(path, keyword, message(x))]


def _all(nodes: list[Node]) -> Node:
    if not nodes:
        return TRUE_NODE
    if len(nodes) == 1:
        return nodes[0]
    checks = tuple(c for c, _ in nodes)

    def every(x: Any) -> bool:
        for c in checks:
            if not c(x):
                return False
        return True

    # An explain that checks its children itself needs no (second) check of the whole value first.
    steps = tuple((None if getattr(e, "selfcheck", False) else c, e) for c, e in nodes)

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        out: list[Error] = []
        for c, e in steps:
            if c is None or not c(x):
                out.extend(e(x, path))
        return out

    explain.selfcheck = True  # type: ignore[attr-defined]
    return every, explain


_FUSABLE = frozenset({"type", "const", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                      "minLength", "maxLength"})
_FUSED_TYPE = {
    "integer": "(type(x) is int or _is_integer(x))",
    "number": "(type(x) is int or type(x) is float or _is_number(x))",
    "string": "isinstance(x, str)",
    "boolean": "(x is True or x is False)",
    "null": "x is None",
    "object": "isinstance(x, dict)",
    "array": "isinstance(x, list)",
}
_FUSED_BOUND = {"minimum": "x < {v}", "maximum": "x > {v}", "exclusiveMinimum": "x <= {v}",
                "exclusiveMaximum": "x >= {v}"}


def _fuse_leaf(schema: Mapping[str, Any], c: Compiler | None = None) -> Check | None:
    """One straight-line function for a leaf schema (type + bounds + enum ...): no closure chain.

    Most properties of a status payload are such leaves ({"type": "integer", "minimum": 0}),
    and calling one function instead of one closure per keyword is what makes the fast path fast.
    Returns None when the schema has other keywords or only one check (nothing to fuse).
    """
    keywords = [k for k in schema if k in ASSERTIONS]
    if len(keywords) < 2 or not set(keywords) <= _FUSABLE:
        return None
    kind = schema.get("type")
    if kind is not None and not isinstance(kind, str):
        return None
    env: dict[str, Any] = {"_is_integer": _is_integer, "_is_number": _is_number}
    lines = ["def fused(x):"]
    if kind is not None:
        lines.append(f"    if not {_FUSED_TYPE[kind]}: return False")
    numeric_known = kind in ("integer", "number")
    for i, keyword in enumerate(keywords):
        value = schema[keyword]
        name = f"v{i}"
        env[name] = value
        if keyword in _FUSED_BOUND:
            test = _FUSED_BOUND[keyword].format(v=name)
            guard = "" if numeric_known else "_is_number(x) and "
            lines.append(f"    if {guard}{test}: return False")
        elif keyword in ("minLength", "maxLength"):
            op = "<" if keyword == "minLength" else ">"
            lines.append(f"    if isinstance(x, str) and len(x) {op} {name}: return False")
        elif keyword in ("const", "enum"):
            env[name] = _value_check([value] if keyword == "const" else value)
            lines.append(f"    if not {name}(x): return False")
    lines.append("    return True")
    _run_source(c, "\n".join(lines), env)
    return env["fused"]


def _run_source(c: Compiler | None, source: str, env: dict[str, Any]) -> None:
    """``exec`` generated ``source`` in ``env``, reusing the compiler's cached code object if any."""
    cache = c.code_cache if c is not None else None
    code = cache.get(source) if cache is not None else None
    if code is None:
        code = compile(source, "<chaosdrill generated check>", "exec")
        if cache is not None:
            cache[source] = code
    if c is not None:
        c.code_used[source] = code
    exec(code, env)  # noqa: S102 - source built from fixed templates and bound names only


_M = object()  # "key absent" marker of generated code
_TYPE_EXPR = {
    "integer": "(type({v}) is int or _is_integer({v}))",
    "number": "(type({v}) is int or type({v}) is float or _is_number({v}))",
    "string": "isinstance({v}, str)",
    "boolean": "({v} is True or {v} is False)",
    "null": "{v} is None",
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
}
_BOUND_FAIL = {"minimum": "{v} < {b}", "maximum": "{v} > {b}", "exclusiveMinimum": "{v} <= {b}",
               "exclusiveMaximum": "{v} >= {b}"}

class _Gen:
    """Source lines and the names they refer to, for one generated check function."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {"_is_integer": _is_integer, "_is_number": _is_number, "_M": _M}
        self.lines: list[str] = []

    def bind(self, value: Any) -> str:
        name = f"c{len(self.env)}"
        self.env[name] = value
        return name

    def fail_if(self, pad: str, cond: str) -> None:
        self.lines.append(f"{pad}if {cond}: return False")

    def var(self) -> str:
        self._vars = getattr(self, "_vars", 0) + 1
        return f"v{self._vars}"


def _leaf_lines(schema: Any, var: str, g: _Gen, pad: str) -> bool:
    """Emit the checks of a leaf schema (type/bounds/lengths/enum/const) on ``var``; False if not a leaf."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    keywords = [k for k in schema if k in ASSERTIONS]
    if not set(keywords) <= _FUSABLE:
        return False
    kind = schema.get("type")
    if kind is not None and not isinstance(kind, str):
        return False
    if kind is not None:
        g.fail_if(pad, "not " + _TYPE_EXPR[kind].format(v=var))
    # The type test comes first and each line returns on failure, so later lines may rely on it.
    numeric_known = kind in ("integer", "number")
    string_known = kind == "string"
    for keyword in keywords:
        value = schema[keyword]
        if keyword in _BOUND_FAIL:
            test = _BOUND_FAIL[keyword].format(v=var, b=g.bind(value))
            g.fail_if(pad, test if numeric_known else f"_is_number({var}) and {test}")
        elif keyword in ("minLength", "maxLength"):
            op = "<" if keyword == "minLength" else ">"
            test = f"len({var}) {op} {g.bind(value)}"
            g.fail_if(pad, test if string_known else f"isinstance({var}, str) and {test}")
        elif keyword in ("const", "enum"):
            values = [value] if keyword == "const" else value
            if values and all(isinstance(v, str) for v in values):
                test = f"{var} in {g.bind(frozenset(values))}"
                g.fail_if(pad, f"not {test}" if string_known else f"not (isinstance({var}, str) and {test})")
            elif len(values) == 1 and (values[0] is None or isinstance(values[0], bool)):
                g.fail_if(pad, f"{var} is not {values[0]!r}")  # JSON equality of true/false/null is identity
            else:
                g.fail_if(pad, f"not {g.bind(_value_check(values))}({var})")
    return True


_OBJECT_KW = ("required", "properties", "additionalProperties", "minProperties", "maxProperties")
_ARRAY_KW = ("items", "minItems", "maxItems", "uniqueItems", "contains")
_SCALAR_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
              "const", "enum")
# Keywords whose compiled closure the generated code calls as a whole.
_CALLED_KW = ("$ref", "anyOf", "oneOf", "not", "uniqueItems", "contains")


def _block(g: _Gen, pad: str, header: str, body: Callable[[str], None]) -> None:
    """``header:`` then ``body`` one level in; dropped entirely when the body emits nothing."""
    g.lines.append(f"{pad}{header}")
    mark = len(g.lines)
    body(pad + "    ")
    if len(g.lines) == mark:
        g.lines.pop()


def _emit(c: "Compiler", schema: Any, var: str, g: _Gen, pad: str) -> None:
    """Emit statements that ``return False`` when ``var`` is invalid under ``schema``.

    Object properties, array items, allOf and if/then/else are inlined recursively; $ref, anyOf,
    oneOf, not, contains and uniqueItems call their compiled closures. Semantics are the
    closures' (each keyword ignores instances of other types, as in jsonschema).
    """
    if schema is True:
        return
    if schema is False or not isinstance(schema, dict):
        g.fail_if(pad, f"not {g.bind(c.compile(schema)[0])}({var})")
        return
    kind = schema.get("type")
    if kind is not None and not isinstance(kind, str):
        g.fail_if(pad, f"not {g.bind(_b_type(c, kind, schema)[0])}({var})")
        kind = None
    elif kind is not None:
        g.fail_if(pad, "not " + _TYPE_EXPR[kind].format(v=var))
    numeric_known = kind in ("integer", "number")
    for keyword in _SCALAR_KW:
        if keyword not in schema:
            continue
        value = schema[keyword]
        if keyword in _BOUND_FAIL:
            test = _BOUND_FAIL[keyword].format(v=var, b=g.bind(value))
            g.fail_if(pad, test if numeric_known else f"_is_number({var}) and {test}")
        elif keyword in ("minLength", "maxLength"):
            op = "<" if keyword == "minLength" else ">"
            g.fail_if(pad, f"isinstance({var}, str) and len({var}) {op} {g.bind(value)}")
        else:
            values = [value] if keyword == "const" else value
            if values and all(isinstance(v, str) for v in values):
                g.fail_if(pad, f"not (isinstance({var}, str) and {var} in {g.bind(frozenset(values))})")
            elif len(values) == 1 and (values[0] is None or isinstance(values[0], bool)):
                g.fail_if(pad, f"{var} is not {values[0]!r}")  # JSON equality of true/false/null is identity
            else:
                g.fail_if(pad, f"not {g.bind(_value_check(values))}({var})")

    if any(k in schema for k in _OBJECT_KW):
        def object_body(opad: str) -> None:
            required = schema.get("required")
            if isinstance(required, list) and required:
                g.fail_if(opad, f"not {var}.keys() >= {g.bind(frozenset(required))}")
            props = schema.get("properties")
            if isinstance(props, dict):
                for key, sub in props.items():
                    if sub is True:
                        continue
                    pv = g.var()
                    g.lines.append(f"{opad}{pv} = {var}.get({g.bind(key)}, _M)")
                    _block(g, opad, f"if {pv} is not _M:", lambda p, sub=sub, pv=pv: _emit(c, sub, pv, g, p))
            extra = schema.get("additionalProperties", True)
            if extra is False:
                g.fail_if(opad, f"not {var}.keys() <= {g.bind(frozenset(props or ()))}")
            elif extra is not True:
                g.fail_if(opad, f"not {g.bind(_b_additional(c, extra, schema)[0])}({var})")  # type: ignore[index]
            for keyword, op in (("minProperties", "<"), ("maxProperties", ">")):
                if keyword in schema:
                    g.fail_if(opad, f"len({var}) {op} {g.bind(schema[keyword])}")
        if kind == "object":
            object_body(pad)
        else:
            _block(g, pad, f"if isinstance({var}, dict):", object_body)

    if any(k in schema for k in _ARRAY_KW):
        def array_body(apad: str) -> None:
            for keyword, op in (("minItems", "<"), ("maxItems", ">")):
                if keyword in schema:
                    g.fail_if(apad, f"len({var}) {op} {g.bind(schema[keyword])}")
            items = schema.get("items", True)
            if isinstance(items, list):
                raise Unsupported("array-form 'items' (use prefixItems in Draft 2020-12)")
            if items is not True:
                ev = g.var()
                _block(g, apad, f"for {ev} in {var}:", lambda p: _emit(c, items, ev, g, p))
        if kind == "array":
            array_body(pad)
        else:
            _block(g, pad, f"if isinstance({var}, list):", array_body)

    for sub in schema.get("allOf") or ():
        _emit(c, sub, var, g, pad)
    if "if" in schema:
        cond = g.bind(c.compile(schema["if"])[0])
        then_s, else_s = schema.get("then", True), schema.get("else", True)
        g.lines.append(f"{pad}if {cond}({var}):")
        mark = len(g.lines)
        _emit(c, then_s, var, g, pad + "    ")
        if len(g.lines) == mark:
            g.lines.append(f"{pad}    pass")
        _block(g, pad, "else:", lambda p: _emit(c, else_s, var, g, p))
    for keyword in _CALLED_KW:
        if keyword in schema:
            node = _BUILDERS[keyword](c, schema[keyword], schema)
            if node is not None:
                g.fail_if(pad, f"not {g.bind(node[0])}({var})")


def _codegen(c: "Compiler", schema: Mapping[str, Any]) -> Check | None:
    """One straight-line function for a composite schema (object, array, allOf, if/then/else).

    The status schema is one object of ~40 leaf properties plus six if/then branches; calling
    a closure per keyword and per property was most of the fast path's time. Only the fast
    ``check`` is generated: ``explain`` stays the closures' (it runs on invalid payloads only).
    """
    if not any(k in schema for k in (*_OBJECT_KW, *_ARRAY_KW, "allOf", "if")):
        return None
    g = _Gen()
    g.lines.append("def generated(x):")
    _emit(c, schema, "x", g, "    ")
    g.lines.append("    return True")
    _run_source(c, "\n".join(g.lines), g.env)
    fn = g.env["generated"]
    fn.source = "\n".join(g.lines)  # for debugging the compiler
    return fn


def _codegen_explain(c: "Compiler", schema: Mapping[str, Any]) -> Explain | None:
    """A generated ``explain`` for an object schema with properties: same errors, same order.

    The closures' explain re-runs one check call per property and per keyword before explaining
    the failing ones; this function tests the leaf properties with inlined conditions and calls
    a closure's explain only for what failed. Keyword order is the schema's, property order the
    ``properties`` order, exactly as :func:`_all` and the properties closure report them.
    """
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return None
    kind = schema.get("type")
    if kind is not None and not isinstance(kind, str):
        return None
    g = _Gen()
    g.lines += ["def generated_explain(x, path):", "    out = []"]
    for keyword, value in schema.items():
        build = _BUILDERS.get(keyword)
        if build is None:
            continue
        if keyword == "properties":
            g.lines.append("    if isinstance(x, dict):")
            for key, sub in value.items():
                if sub is True:
                    continue
                check, expl = c.compile(sub)
                pv = g.var()
                probe = _Gen()
                probe.env = g.env  # share bound names
                probe._vars = getattr(g, "_vars", 0)  # type: ignore[attr-defined]
                inlined = _leaf_lines(sub, pv, probe, "")
                conds = [line[3:-len(": return False")] for line in probe.lines] if inlined else None
                if conds is None or not all(line.startswith("if ") and line.endswith(": return False")
                                            for line in probe.lines):
                    conds = [f"not {g.bind(check)}({pv})"]
                if not conds:
                    continue
                k = g.bind(key)
                g.lines.append(f"        {pv} = x.get({k}, _M)")
                joined = " or ".join(f"({cond})" for cond in conds)
                g.lines.append(f"        if {pv} is not _M and ({joined}):")
                g.lines.append(f"            out.extend({g.bind(expl)}({pv}, path + ({k},)))")
            if g.lines[-1] == "    if isinstance(x, dict):":
                g.lines.pop()  # every property schema was ``true``: nothing to explain
            continue
        node = build(c, value, schema)
        if node is None:
            continue
        check, expl = node
        if getattr(expl, "selfcheck", False):
            g.lines.append(f"    out.extend({g.bind(expl)}(x, path))")
        else:
            g.lines.append(f"    if not {g.bind(check)}(x):")
            g.lines.append(f"        out.extend({g.bind(expl)}(x, path))")
    g.lines.append("    return out")
    _run_source(c, "\n".join(g.lines), g.env)
    fn = g.env["generated_explain"]
    fn.selfcheck = True
    return fn


# --- single pass: errors of a whole instance, [] when it is valid --------------------------------
_NUM_EXPR = "(type({v}) is int or type({v}) is float or _is_number({v}))"
_SIZE_KW = {"minItems": ("list", "<"), "maxItems": ("list", ">"), "minLength": ("str", "<"),
            "maxLength": ("str", ">"), "minProperties": ("dict", "<"), "maxProperties": ("dict", ">")}
# Deeper schemas call their compiled nodes instead of nesting more generated blocks (Python caps
# the static nesting of ``for`` blocks at 20).
_MAX_INLINE_DEPTH = 8


def _path_expr(parts: tuple[str, ...]) -> str:
    return f"path + ({', '.join(parts)},)" if parts else "path"


def _leaf_fail_expr(schema: Any, var: str, g: _Gen) -> str | None:
    """One expression, true when ``var`` fails the leaf ``schema`` (None: not a leaf, or never fails)."""
    probe = _Gen()
    probe.env = g.env  # bound names land in the generated function's namespace
    if not _leaf_lines(schema, var, probe, "") or not probe.lines:
        return None
    suffix = ": return False"
    if not all(line.startswith("if ") and line.endswith(suffix) for line in probe.lines):
        return None
    conds = [line[3:-len(suffix)] for line in probe.lines]
    return conds[0] if len(conds) == 1 else " or ".join(f"({cond})" for cond in conds)


def _cond_expr(c: "Compiler", schema: Any, var: str, g: _Gen) -> str:
    """An expression for ``schema``'s verdict on ``var`` (for ``if``): inlined for ``properties`` of leaves."""
    if isinstance(schema, dict) and set(k for k in schema if k in ASSERTIONS) == {"properties"} \
            and isinstance(schema["properties"], dict):
        terms = []
        for key, sub in schema["properties"].items():
            if sub is True:
                continue
            tv = g.var()
            fail = _leaf_fail_expr(sub, tv, g)
            if fail is None:
                break
            terms.append(f"(({tv} := {var}.get({g.bind(key)}, _M)) is _M or not ({fail}))")
        else:
            return f"(not isinstance({var}, dict) or ({' and '.join(terms) or 'True'}))"
    return f"{g.bind(c.compile(schema)[0])}({var})"


def _emit_errors(c: "Compiler", schema: Any, var: str, parts: tuple[str, ...], g: _Gen, pad: str,
                 depth: int = 0, expanding: frozenset[str] = frozenset()) -> None:
    """Emit statements appending to ``out`` exactly the errors ``explain`` gives for ``var``.

    Keyword by keyword in schema order (the order :func:`_all` explains them): a keyword's
    failure condition is inlined where it is a plain test, and its compiled ``explain`` (which
    builds the message) is called only when it fails; properties, items, allOf and if/then/else
    are descended into inline, and so is a ``$ref`` target (``expanding`` holds the references
    being inlined: a recursive one is called instead). Nothing is appended for a valid ``var``.
    """
    path = _path_expr(parts)

    def node_call(node: Node) -> None:
        check, expl = node
        if check is _true:
            return
        g.lines.append(f"{pad}if not {g.bind(check)}({var}): out += {g.bind(expl)}({var}, {path})")

    def on_fail(cond: str, expl: Explain) -> None:
        g.lines.append(f"{pad}if {cond}: out += {g.bind(expl)}({var}, {path})")

    if schema is True:
        return
    if not isinstance(schema, dict) or depth > _MAX_INLINE_DEPTH:
        node_call(c.compile(schema))
        return
    for keyword, value in schema.items():
        build = _BUILDERS.get(keyword)
        if build is None or build is _b_noop or build is _b_contains_bound:
            continue
        if keyword == "type" and isinstance(value, str):
            on_fail("not " + _TYPE_EXPR[value].format(v=var), _b_type(c, value, schema)[1])
        elif keyword in _BOUND_FAIL:
            test = _BOUND_FAIL[keyword].format(v=var, b=g.bind(value))
            on_fail(f"{_NUM_EXPR.format(v=var)} and {test}", build(c, value, schema)[1])  # type: ignore[index]
        elif keyword in _SIZE_KW:
            kind, op = _SIZE_KW[keyword]
            on_fail(f"isinstance({var}, {kind}) and len({var}) {op} {g.bind(value)}",
                    build(c, value, schema)[1])  # type: ignore[index]
        elif keyword in ("const", "enum"):
            expl = build(c, value, schema)[1]  # type: ignore[index]
            values = [value] if keyword == "const" else value
            if values and all(isinstance(v, str) for v in values):
                on_fail(f"not (isinstance({var}, str) and {var} in {g.bind(frozenset(values))})", expl)
            elif len(values) == 1 and (values[0] is None or isinstance(values[0], bool)):
                on_fail(f"{var} is not {values[0]!r}", expl)  # JSON equality of true/false/null is identity
            else:
                on_fail(f"not {g.bind(_value_check(values))}({var})", expl)
        elif keyword == "required":
            node = build(c, value, schema)
            if node is not None:
                on_fail(f"isinstance({var}, dict) and not {var}.keys() >= {g.bind(frozenset(value))}", node[1])
        elif keyword == "properties" and isinstance(value, dict):
            def props_body(ppad: str) -> None:
                for key, sub in value.items():
                    if sub is True:
                        continue
                    pv, k = g.var(), g.bind(key)
                    g.lines.append(f"{ppad}{pv} = {var}.get({k}, _M)")
                    lookups.add(g.lines[-1])
                    fail = _leaf_fail_expr(sub, pv, g)
                    if fail is not None:
                        # A leaf: one short-circuit test, and its explain only when it fails.
                        g.lines.append(f"{ppad}if {pv} is not _M and ({fail}): "
                                       f"out += {g.bind(c.compile(sub)[1])}({pv}, {_path_expr((*parts, k))})")
                        continue
                    _block(g, ppad, f"if {pv} is not _M:",
                           lambda p, sub=sub, pv=pv, k=k: _emit_errors(c, sub, pv, (*parts, k), g, p, depth + 1, expanding))
            lookups: set[str] = set()
            mark = len(g.lines)
            _block(g, pad, f"if isinstance({var}, dict):", props_body)
            if len(g.lines) > mark and all(line in lookups for line in g.lines[mark + 1:]):
                del g.lines[mark:]  # only lookups, no check: every property schema was trivial
        elif keyword == "additionalProperties" and value is False:
            node = build(c, value, schema)
            known = frozenset(schema.get("properties") or ())
            on_fail(f"isinstance({var}, dict) and not {var}.keys() <= {g.bind(known)}", node[1])  # type: ignore[index]
        elif keyword == "items" and isinstance(value, dict):
            ev, iv = g.var(), g.var()
            def items_body(ipad: str) -> None:
                _block(g, ipad, f"for {iv}, {ev} in enumerate({var}):",
                       lambda p: _emit_errors(c, value, ev, (*parts, iv), g, p, depth + 1, expanding))
            _block(g, pad, f"if isinstance({var}, list):", items_body)
        elif keyword == "allOf" and isinstance(value, list):
            for sub in value:
                _emit_errors(c, sub, var, parts, g, pad, depth + 1, expanding)
        elif keyword == "if":
            mark = len(g.lines)
            g.lines.append(f"{pad}if {_cond_expr(c, value, var, g)}:")
            _emit_errors(c, schema.get("then", True), var, parts, g, pad + "    ", depth + 1, expanding)
            then_empty = len(g.lines) == mark + 1
            if then_empty:
                g.lines.append(f"{pad}    pass")
            else_mark = len(g.lines)
            _block(g, pad, "else:", lambda p: _emit_errors(c, schema.get("else", True), var, parts, g, p, depth + 1,
                                                          expanding))
            if then_empty and len(g.lines) == else_mark:
                del g.lines[mark:]  # neither branch can fail
        elif keyword == "anyOf" and isinstance(value, list) and value and \
                (fails := [_leaf_fail_expr(sub, var, g) for sub in value]) and None not in fails:
            # anyOf of leaves ({"type": "integer"} or {"type": "null"}): fails when every branch fails.
            on_fail(" and ".join(f"({f})" for f in fails), build(c, value, schema)[1])  # type: ignore[index]
        elif keyword == "contains" and schema.get("minContains", 1) == 1 and "maxContains" not in schema \
                and _leaf_fail_expr(value, "e", _Gen()) is not None:  # a leaf (probed in a scratch namespace)
            # At least one matching item: a loop that stops at the first match, else the error.
            ev = g.var()
            fail = _leaf_fail_expr(value, ev, g)
            g.lines += [f"{pad}if isinstance({var}, list):",
                        f"{pad}    for {ev} in {var}:",
                        f"{pad}        if not ({fail}): break",
                        f"{pad}    else: out += {g.bind(build(c, value, schema)[1])}({var}, {path})"]  # type: ignore[index]
        elif keyword == "uniqueItems" and value is True:
            # Fewer than two items are always unique: no call for the usual short list.
            on_fail(f"isinstance({var}, list) and len({var}) > 1 and not {g.bind(build(c, value, schema)[0])}({var})",
                    build(c, value, schema)[1])  # type: ignore[index]
        elif keyword == "$ref" and isinstance(value, str) and value not in expanding:
            c.ref(value)  # validates the reference (and compiles its target) like the node would
            _emit_errors(c, c._resolve(value), var, parts, g, pad, depth + 1, expanding | {value})
        else:
            node = build(c, value, schema)
            if node is not None:
                node_call(node)


def _codegen_errors(c: "Compiler", schema: Any) -> Callable[[Any, tuple[Any, ...]], list[Error]]:
    """One generated function ``errors(x, path)``: the check and the explanation in a single pass.

    It returns ``[]`` for a valid instance and otherwise exactly what ``explain(x, path)`` returns
    (same errors, same order), so a caller that wants the errors needs no separate validity check
    and a failing payload costs about what a passing one does.
    """
    g = _Gen()
    g.lines += ["def generated_errors(x, path):", "    out = []"]
    _emit_errors(c, schema, "x", (), g, "    ")
    g.lines.append("    return out")
    _run_source(c, "\n".join(g.lines), g.env)
    return g.env["generated_errors"]


class Compiler:
    """Compiles one root schema; ``$ref`` may point anywhere inside it (``#`` or ``#/a/b``)."""

    def __init__(self, root: Any, code_cache: dict[str, Any] | None = None, generate: bool = True) -> None:
        self.root = root
        #: generate straight-line code for each node's check and explain (else closures only: the
        #: same verdicts and errors, built faster, for a caller that uses :meth:`errors_root`).
        self.generate = generate
        #: generated source -> its code object; see :func:`compile_node`.
        self.code_cache = code_cache
        #: the entries this compilation used (what a cache file should keep).
        self.code_used: dict[str, Any] = {}
        self._refs: dict[str, list[Node]] = {}
        # id(schema) -> (schema, node): each subschema compiles once (generated code asks again).
        self._memo: dict[int, tuple[Any, Node]] = {}

    def compile_root(self) -> Node:
        return self.compile(self.root)

    def errors_root(self) -> Callable[[Any, tuple[Any, ...]], list[Error]]:
        """The single-pass ``errors(x, path)`` of the root (see :func:`_codegen_errors`)."""
        self.compile_root()  # raises Unsupported / SchemaShapeError first, as compile_root does
        return _codegen_errors(self, self.root)

    def compile(self, schema: Any) -> Node:
        if schema is True:
            return TRUE_NODE
        if schema is False:
            return FALSE_NODE
        if not isinstance(schema, dict):
            raise SchemaShapeError(f"a schema must be an object or a boolean, got {type(schema).__name__}")
        memo = self._memo.get(id(schema))
        if memo is not None and memo[0] is schema:
            return memo[1]
        unknown = {str(k) for k in schema} - SUPPORTED
        if "$id" in schema and schema is not self.root:
            unknown.add("$id (nested: changes the base URI)")
        if unknown:
            raise Unsupported(f"keyword(s) not compiled: {', '.join(sorted(unknown))}")
        nodes: list[Node] = []
        for keyword, value in schema.items():
            build = _BUILDERS.get(keyword)
            if build is not None:
                node = build(self, value, schema)
                if node is not None:
                    nodes.append(node)
        check, explain = _all(nodes)
        if self.generate:
            fused = _fuse_leaf(schema, self) or _codegen(self, schema)
            node = (fused or check), (_codegen_explain(self, schema) or explain)
        else:
            node = check, explain
        self._memo[id(schema)] = (schema, node)
        return node

    def ref(self, value: Any) -> Node:
        _need(isinstance(value, str), "$ref", "a string")
        if value != "#" and not value.startswith("#/"):
            raise Unsupported(f"$ref {value!r}: only local JSON-pointer references are compiled")
        holder = self._refs.get(value)
        if holder is None:
            holder = []
            self._refs[value] = holder  # registered before compiling: recursive refs terminate
            holder.append(self.compile(self._resolve(value)))
        return (lambda x: holder[0][0](x)), (lambda x, path: holder[0][1](x, path))

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

    def many(self, keyword: str, value: Any) -> list[Node]:
        _need(isinstance(value, list) and len(value) > 0, keyword, "a non-empty array of schemas")
        return [self.compile(s) for s in value]


# --- one builder per assertion keyword: (compiler, value, whole schema) -> Node | None -----
def _b_type(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    names = [v] if isinstance(v, str) else v
    _need(isinstance(names, list) and bool(names) and all(n in _TYPE_NAMES for n in names),
          "type", "a JSON type name or a non-empty array of them")
    if len(names) == 1:
        check = _TYPE_CHECKS[names[0]]
    else:
        checks = tuple(_TYPE_CHECKS[n] for n in names)
        check = lambda x: any(t(x) for t in checks)  # noqa: E731
    wanted = ", ".join(repr(n) for n in names)
    return _leaf(check, "type", lambda x: f"{_short(x)} is not of type {wanted}")


def _b_const(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    return _leaf(_value_check([v]), "const", lambda x: f"{_short(v)} was expected, got {_short(x)}")


def _b_enum(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    _need(isinstance(v, list), "enum", "an array")
    if len(v) > 4:
        # The whole list would bury the offending value; show its size and first entries.
        allowed = f"the {len(v)} allowed values ({', '.join(map(repr, v[:3]))}, ...)"
    else:
        allowed = repr(v)
    return _leaf(_value_check(v), "enum", lambda x: f"{_short(x)} is not one of {allowed}")


def _b_required(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node | None:
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

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        return [Error(path, "required", f"{k!r} is a required property", k) for k in keys if k not in x]

    return required, explain


def _b_properties(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node | None:
    _need(isinstance(v, dict), "properties", "an object of schemas")
    triples = tuple((k, *c.compile(sub)) for k, sub in v.items() if sub is not True)
    if not triples:
        return None

    def properties(x: Any) -> bool:
        if isinstance(x, dict):
            for k, check, _ in triples:
                if k in x and not check(x[k]):
                    return False
        return True

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        out: list[Error] = []
        if not isinstance(x, dict):
            return out
        for k, check, expl in triples:
            if k in x and not check(x[k]):
                out.extend(expl(x[k], path + (k,)))
        return out

    explain.selfcheck = True  # type: ignore[attr-defined] # returns [] for a valid instance
    return properties, explain


def _b_additional(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node | None:
    if v is True:
        return None
    known = frozenset(s.get("properties") or ())
    check, expl = c.compile(v)

    def additional(x: Any) -> bool:
        if isinstance(x, dict):
            for k, val in x.items():
                if k not in known and not check(val):
                    return False
        return True

    if v is False:
        def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
            extras = sorted((k for k in x if k not in known), key=str)
            verb = "was" if len(extras) == 1 else "were"
            listed = ", ".join(repr(k) for k in extras)
            return [Error(path, "additionalProperties", f"Additional properties are not allowed ({listed} {verb} unexpected)")]
    else:
        def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
            out: list[Error] = []
            for k, val in x.items():
                if k not in known and not check(val):
                    out.extend(expl(val, path + (k,)))
            return out

    return additional, explain


def _b_items(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node | None:
    if isinstance(v, list):
        raise Unsupported("array-form 'items' (use prefixItems in Draft 2020-12)")
    check, expl = c.compile(v)
    if check is _true:
        return None

    def items(x: Any) -> bool:
        if isinstance(x, list):
            for e in x:
                if not check(e):
                    return False
        return True

    if v is False:
        return _leaf(items, "items", lambda x: f"Expected at most 0 items but found {len(x)} extra: {_short(x)}")

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        out: list[Error] = []
        if not isinstance(x, list):
            return out
        for i, e in enumerate(x):
            if not check(e):
                out.extend(expl(e, path + (i,)))
        return out

    explain.selfcheck = True  # type: ignore[attr-defined]
    return items, explain


def _b_contains(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    sub, _ = c.compile(v)
    low = s.get("minContains", 1)
    high = s.get("maxContains")
    _need(_nonneg_int(low), "minContains", "a non-negative integer")
    _need(high is None or _nonneg_int(high), "maxContains", "a non-negative integer")

    def count(x: list[Any]) -> int:
        matches = 0
        for e in x:
            if sub(e):
                matches += 1
                if high is not None and matches > high:
                    break
        return matches

    def contains(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        matches = count(x)
        return matches >= low and (high is None or matches <= high)

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        matches = count(x)
        if high is not None and matches > high:
            return [Error(path, "maxContains", f"Too many items match the given schema (expected at most {high})")]
        if matches == 0:
            return [Error(path, "contains", f"{_short(x)} does not contain items matching the given schema")]
        return [Error(path, "minContains", f"Too few items match the given schema (expected at least {low} "
                                           f"but only {matches} matched)")]

    return contains, explain


def _b_unique(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node | None:
    _need(isinstance(v, bool), "uniqueItems", "a boolean")
    if not v:
        return None

    def unique(x: Any) -> bool:
        if not isinstance(x, list):
            return True
        # Hashable JSON values that are JSON-equal are also ==, so distinct set members mean
        # unique items; a smaller set may come from 1 == True (distinct in JSON): decide below.
        try:
            if len(set(x)) == len(x):
                return True
        except TypeError:  # lists or objects among the items
            pass
        if all(isinstance(e, str) for e in x):
            return False
        for i in range(1, len(x)):
            for j in range(i):
                if json_equal(x[i], x[j]):
                    return False
        return True

    return _leaf(unique, "uniqueItems", lambda x: f"{_short(x)} has non-unique elements")


def _size(keyword: str, kind: type, low: bool, noun: str) -> Callable[[Compiler, Any, Mapping[str, Any]], Node]:
    def build(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
        _need(_nonneg_int(v), keyword, "a non-negative integer")
        if low:
            return _leaf(lambda x: not isinstance(x, kind) or len(x) >= v, keyword,
                         lambda x: f"{_short(x)} is too short (fewer than {v} {noun})")
        return _leaf(lambda x: not isinstance(x, kind) or len(x) <= v, keyword,
                     lambda x: f"{_short(x)} is too long (more than {v} {noun})")

    return build


def _bound(op: str) -> Callable[[Compiler, Any, Mapping[str, Any]], Node]:
    text = {"minimum": "less than the minimum of", "maximum": "greater than the maximum of",
            "exclusiveMinimum": "less than or equal to the exclusive minimum of",
            "exclusiveMaximum": "greater than or equal to the exclusive maximum of"}[op]

    def build(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
        _need(_is_number(v), op, "a number")
        # Written as "not (violation)" so that a NaN instance passes exactly as in jsonschema.
        if op == "minimum":
            check = lambda x: not _is_number(x) or not x < v  # noqa: E731
        elif op == "maximum":
            check = lambda x: not _is_number(x) or not x > v  # noqa: E731
        elif op == "exclusiveMinimum":
            check = lambda x: not _is_number(x) or not x <= v  # noqa: E731
        else:
            check = lambda x: not _is_number(x) or not x >= v  # noqa: E731
        return _leaf(check, op, lambda x: f"{_short(x)} is {text} {v!r}")

    return build


def _b_all_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    return _all(c.many("allOf", v))


def _b_any_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    checks = tuple(ch for ch, _ in c.many("anyOf", v))
    return _leaf(lambda x: any(ch(x) for ch in checks), "anyOf",
                 lambda x: f"{_short(x)} is not valid under any of the given schemas")


def _b_one_of(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    checks = tuple(ch for ch, _ in c.many("oneOf", v))

    def message(x: Any) -> str:
        n = sum(1 for ch in checks if ch(x))
        return (f"{_short(x)} is not valid under any of the given schemas" if n == 0
                else f"{_short(x)} is valid under {n} of the given schemas, exactly one is allowed")

    return _leaf(lambda x: sum(1 for ch in checks if ch(x)) == 1, "oneOf", message)


def _b_not(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    sub, _ = c.compile(v)
    return _leaf(lambda x: not sub(x), "not", lambda x: f"{_short(x)} should not be valid under {_short(v)}")


def _b_if(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    cond, _ = c.compile(v)
    then_check, then_explain = c.compile(s["then"]) if "then" in s else TRUE_NODE
    else_check, else_explain = c.compile(s["else"]) if "else" in s else TRUE_NODE

    def check(x: Any) -> bool:
        return then_check(x) if cond(x) else else_check(x)

    def explain(x: Any, path: tuple[Any, ...]) -> list[Error]:
        return then_explain(x, path) if cond(x) else else_explain(x, path)

    return check, explain


def _b_noop(c: Compiler, v: Any, s: Mapping[str, Any]) -> None:
    return None


def _b_ref(c: Compiler, v: Any, s: Mapping[str, Any]) -> Node:
    return c.ref(v)


def _b_contains_bound(c: Compiler, v: Any, s: Mapping[str, Any]) -> None:
    # Evaluated together with "contains"; on its own it has no effect.
    _need(_nonneg_int(v), "minContains/maxContains", "a non-negative integer")
    return None


_BUILDERS: dict[str, Callable[[Compiler, Any, Mapping[str, Any]], Node | None]] = {
    "type": _b_type,
    "const": _b_const,
    "enum": _b_enum,
    "required": _b_required,
    "properties": _b_properties,
    "additionalProperties": _b_additional,
    "$ref": _b_ref,
    "items": _b_items,
    "contains": _b_contains,
    "minContains": _b_contains_bound,
    "maxContains": _b_contains_bound,
    "uniqueItems": _b_unique,
    "minItems": _size("minItems", list, True, "items"),
    "maxItems": _size("maxItems", list, False, "items"),
    "minLength": _size("minLength", str, True, "characters"),
    "maxLength": _size("maxLength", str, False, "characters"),
    "minProperties": _size("minProperties", dict, True, "properties"),
    "maxProperties": _size("maxProperties", dict, False, "properties"),
    "minimum": _bound("minimum"),
    "maximum": _bound("maximum"),
    "exclusiveMinimum": _bound("exclusiveMinimum"),
    "exclusiveMaximum": _bound("exclusiveMaximum"),
    "allOf": _b_all_of,
    "anyOf": _b_any_of,
    "oneOf": _b_one_of,
    "not": _b_not,
    "if": _b_if,
    # then/else are read by "if"; without an "if" they do nothing.
    "then": _b_noop,
    "else": _b_noop,
}


def compile_node(schema: Any, code_cache: dict[str, Any] | None = None) -> Node:
    """Compile ``schema`` to ``(check, explain)``; raises Unsupported or SchemaShapeError.

    ``code_cache`` maps generated source text to its code object: a source found there is not
    compiled again (Python's compiler is most of the time spent here), and every source compiled
    is added to it. Keys are the whole source, so an entry can only ever stand for itself.
    """
    return Compiler(schema, code_cache).compile_root()


def compile_errors(schema: Any, code_cache: dict[str, Any] | None = None,
                   generate: bool = True) -> Callable[[Any, tuple[Any, ...]], list[Error]]:
    """Compile ``schema`` to a single-pass ``errors(instance, path)``: ``[]`` when valid, else the errors.

    With ``generate=False`` the nodes it falls back on are closures (see :class:`Compiler`).
    """
    return Compiler(schema, code_cache, generate).errors_root()


def compile_schema(schema: Any) -> Check:
    """Compile ``schema`` to a validity predicate; raises Unsupported or SchemaShapeError."""
    return compile_node(schema)[0]


__all__ = ["Check", "Error", "Explain", "Node", "SUPPORTED", "SchemaShapeError", "Unsupported",
           "compile_errors", "compile_node", "compile_schema", "json_equal"]
