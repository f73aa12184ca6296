"""Expected status: a golden fixture (or inline payload) matched by field and by rule."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from deepdiff import DeepDiff

from .resources import fixtures_dir
from .errors import ExpectationError

#: List fields where the checklist names the reasons that must be present: by default a truthful superset
#: (the expected reasons as a subsequence, extra ones allowed) matches; the contract checks on every
#: sample already hold the extra reasons to their tier and the manifest order.
REASON_LISTS = ("mode_reasons", "open_permission_reason_codes")

_TYPES = {"integer": int, "number": (int, float), "string": str, "boolean": bool, "array": list, "object": dict,
          "null": type(None)}


def find_fixture(name: str, search: Iterable[Path] = ()) -> Path:
    """Look ``name`` up in the user's fixture folders first, then the bundled ones."""
    candidates = [Path(d) / name for d in search] + [fixtures_dir() / name]
    for c in candidates:
        if c.is_file():
            return c
    raise ExpectationError(f"golden fixture {name!r} not found in: {', '.join(str(c.parent) for c in candidates)}")


@dataclass
class Expectation:
    """What a drill expects of the status once the fault has taken effect."""

    payload: dict[str, Any]
    fields: tuple[str, ...]
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "inline"
    #: Fields compared exactly even where a superset of reasons would match (``expected.exact``).
    exact: tuple[str, ...] = ()

    @classmethod
    def from_drill(cls, expected: Mapping[str, Any], fixture_dirs: Iterable[Path] = ()) -> "Expectation":
        payload: dict[str, Any] = {}
        source = "inline"
        if expected.get("fixture"):
            path = find_fixture(expected["fixture"], fixture_dirs)
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ExpectationError(f"{path}: cannot load golden fixture: {exc}") from None
            source = str(path)
        payload.update(expected.get("status", {}))
        fields = tuple(expected.get("fields") or expected.get("status", {}).keys())
        missing = [f for f in fields if f not in payload]
        if missing:
            raise ExpectationError(f"expected fields {missing} are not in the expected status ({source})")
        return cls(payload, fields, dict(expected.get("rules", {})), source, tuple(expected.get("exact", ())))

    def to_json(self) -> dict[str, Any]:
        return {"payload": self.payload, "fields": list(self.fields), "rules": self.rules, "source": self.source,
                "exact": list(self.exact)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Expectation":
        return cls(dict(data["payload"]), tuple(data["fields"]), dict(data.get("rules") or {}),
                   data.get("source", "inline"), tuple(data.get("exact") or ()))

    def field_matches(self, key: str, observed: Any) -> bool:
        want = self.payload[key]
        if key in REASON_LISTS and key not in self.exact and isinstance(want, list) and isinstance(observed, list):
            it = iter(observed)
            return all(any(w == o for o in it) for w in want)  # want is a subsequence of observed
        return observed == want

    def subset(self) -> dict[str, Any]:
        """The part of the expected status compared by equality."""
        return {k: self.payload[k] for k in self.fields}

    def compare(self, observed: Any, baseline: Any = None) -> "Comparison":
        """Compare one observed status with this expectation (``baseline``: the last pre-fault status)."""
        if not isinstance(observed, dict):
            return Comparison(False, ["observed status is not a JSON object"], "observed status is not a JSON object")
        got = {k: observed.get(k, "<missing>") for k in self.fields}
        diff = DeepDiff(self.subset(), got, ignore_order=False, verbose_level=2)
        problems = [f"{k}: expected {self.payload[k]!r}"
                    + (" (in this order, extra reasons allowed)" if k in REASON_LISTS and k not in self.exact else "")
                    + f", observed {observed.get(k, '<missing>')!r}"
                    for k in self.fields if not self.field_matches(k, observed.get(k, "<missing>"))]
        for key, rule in self.rules.items():
            ok, why = apply_rule(key, rule, observed, baseline)
            if not ok:
                problems.append(why)
        text = diff.pretty() if diff else ""
        return Comparison(not problems, problems, text)


@dataclass
class Comparison:
    matched: bool
    problems: list[str]
    deepdiff_text: str


def apply_rule(key: str, rule: Mapping[str, Any], observed: Mapping[str, Any], baseline: Any) -> tuple[bool, str]:
    """Check ``observed[key]`` against one rule; returns (ok, explanation)."""
    op = rule["op"]
    if key not in observed:
        return op == "absent", f"{key}: missing from observed status (rule {op})"
    value = observed[key]
    want = rule.get("value")
    try:
        if op == "present":
            return True, ""
        if op == "type":
            return isinstance(value, _TYPES[want]) and not (want in ("integer", "number") and isinstance(value, bool)), \
                f"{key}: expected type {want}, observed {type(value).__name__}"
        if op == "eq_field":
            other = observed.get(rule["field"])
            return value == other, f"{key}: expected equal to {rule['field']}={other!r}, observed {value!r}"
        if op == "increased":
            if not isinstance(baseline, dict) or key not in baseline:
                return False, f"{key}: no pre-fault value to compare with"
            return value > baseline[key], f"{key}: expected more than the pre-fault {baseline[key]!r}, observed {value!r}"
        if op == "contains":
            return want in value, f"{key}: expected to contain {want!r}, observed {value!r}"
        ops = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
               "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        return ops[op](value, want), f"{key}: expected {op} {want!r}, observed {value!r}"
    except (TypeError, KeyError) as exc:
        return False, f"{key}: rule {op} cannot apply to {value!r} ({exc})"
