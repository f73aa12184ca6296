"""docs/criteria.md stays true: the criterion matrix names real checks used by the drills it names, real
variants with a not-vacuous case that FAILs them for that check, real contract tests, and every check of
every drill file has a row."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pytest_chaosdrill.registry import builtin_checks
from tests.matrix.test_drills_not_vacuous import CASES as PROCESS_CASES, CORRECT_CASES
from tests.matrix.test_drills_not_vacuous_docker import DOCKER_CASES
from tests.variants.launch import CORRECT, VARIANTS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "criteria.md"
DRILLS = ROOT / "drills"
#: Every not-vacuous FAIL case: the process backend's and the docker-only drills' (variant in a container).
CASES = [*PROCESS_CASES, *DOCKER_CASES]
TAG = re.compile(r"^\[[A-Z-]+\]$")
VARIANT_REF = re.compile(r"^`([a-z0-9_]+)`(?:@`([a-z0-9_]+)`)?$")
CONTRACT_REF = re.compile(r"^contract engine: `(tests/[a-z_/]+\.py)::([a-z0-9_]+)(?:\[([a-z0-9-]+)\])?`$")
NEVER_FAILS = re.compile(r"^never FAILs: `(tests/[a-z_/]+\.py)::([a-z0-9_]+)`$")


@dataclass(frozen=True)
class Row:
    criterion: str
    source: str
    drill: str  # a drill id, or "every drill"
    check: str  # a check name, or a contract tag like [ORDER]
    fails: tuple[str, ...]  # the "fails it" items


def _unquote(cell: str) -> str:
    return cell.strip().strip("`")


def matrix() -> list[Row]:
    """The rows of the table under '## Matrix'."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Matrix", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["criterion", "source", "drill", "check", "stimulus", "precondition", "fails it"], header
    rows = []
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip().strip("|").split(" | ")]
        assert len(cells) == 7, f"malformed row: {ln}"
        rows.append(Row(cells[0], cells[1], _unquote(cells[2]), _unquote(cells[3]),
                        tuple(x.strip() for x in re.split(r"[;,] (?=`|contract|never)", cells[6]) if x.strip())))
    return rows


ROWS = matrix()


def drill_checks() -> dict[str, list[str]]:
    """The checks of the checklist's drills (phase2, ops). Compound and exploring drills check the global
    invariants of fault schedules; their bugs are found by tests/unit/test_schedule.py and test_explore_ci.py."""
    out = {}
    for f in sorted(DRILLS.glob("*.yaml")):
        d = yaml.safe_load(f.read_text(encoding="utf-8"))
        if {"phase2", "ops"} & set(d["markers"]):
            out[d["id"]] = [c if isinstance(c, str) else c["check"] for c in d["checks"]]
    return out


DRILL_CHECKS = drill_checks()


def test_matrix_is_not_empty_and_every_row_names_a_proof() -> None:
    assert len(ROWS) >= 40
    for r in ROWS:
        assert r.fails, f"row without 'fails it': {r}"


@pytest.mark.parametrize("row", [r for r in ROWS if not TAG.match(r.check)], ids=lambda r: f"{r.drill}-{r.check}")
def test_check_exists_and_is_used_by_the_drill(row: Row) -> None:
    assert row.check in builtin_checks(), f"{row.check} is not a built-in check"
    assert row.drill in DRILL_CHECKS, f"{row.drill} is not a drill in drills/"
    assert row.check in DRILL_CHECKS[row.drill], f"{row.drill} does not use {row.check}"


def _case_fails_with(variant: str, drill: str, check: str) -> bool:
    return any(c.bug == variant and c.drill == drill and any(f.startswith(f"{check}:") for f in c.reason)
               for c in CASES)


def _contract_test_exists(path: str, fn: str, param: str | None) -> bool:
    text = (ROOT / path).read_text(encoding="utf-8")
    if not re.search(rf"^def {re.escape(fn)}\(", text, re.M):
        return False
    # Parametrized by the rule name (the first element of each FAILING tuple).
    return param is None or re.search(rf'\(\s*"{re.escape(param)}"\s*,', text) is not None


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.drill}-{r.check}")
def test_every_row_can_fail(row: Row) -> None:
    """Each 'fails it' item is a variant with a FAIL case naming the check (on this drill, or the one
    after @), a contract engine test that exists, or (a precondition) a unit test of its NOT PROVEN."""
    for item in row.fails:
        m = VARIANT_REF.match(item)
        if m:
            variant, other = m.group(1), m.group(2)
            assert variant in VARIANTS and variant not in CORRECT, f"{variant}: not a buggy variant in launch.py"
            drill = other or row.drill
            if TAG.match(row.check):
                assert any(c.bug == variant and c.drill == drill and c.tag == row.check.strip("[]") for c in CASES), \
                    f"no case runs {variant} on {drill} expecting a {row.check} finding"
            else:
                assert drill in DRILL_CHECKS and row.check in DRILL_CHECKS[drill], f"{drill} does not use {row.check}"
                assert _case_fails_with(variant, drill, row.check), \
                    f"no case in tests/test_drills_not_vacuous[_docker].py runs {variant} on {drill} with a {row.check} FAIL"
            continue
        m = CONTRACT_REF.match(item)
        if m:
            assert _contract_test_exists(m.group(1), m.group(2), m.group(3)), f"{item}: no such test"
            continue
        m = NEVER_FAILS.match(item)
        if m:
            assert row.check in ("sustained_call_pressure",), f"{row.check} is a pass criterion: it must be able to FAIL"
            assert _contract_test_exists(m.group(1), m.group(2), None), f"{item}: no such test"
            continue
        pytest.fail(f"unreadable 'fails it' item {item!r} in row {row}")


def test_every_drill_check_is_in_the_matrix() -> None:
    covered = {(r.drill, r.check) for r in ROWS}
    missing = [(d, c) for d, checks in DRILL_CHECKS.items() for c in checks if (d, c) not in covered]
    assert not missing, f"drill checks without a matrix row: {missing}"


def test_every_failing_case_and_correct_variant_is_in_the_matrix() -> None:
    """The matrix is the index of the not-vacuous cases: none is left out of it."""
    text = DOC.read_text(encoding="utf-8")
    for c in CASES:
        assert f"`{c.bug}`" in text, f"{c.bug} ({c.drill}) is not in docs/criteria.md"
    for c in CORRECT_CASES:
        assert f"`{c.variant}`" in text, f"correct variant {c.variant} is not in docs/criteria.md"


#: Rows whose check is shown failing only on another drill (`variant`@`drill`): the known gaps. None is
#: left; a new row proven only on another drill must be added here on purpose.
SHARED: list[tuple[str, str]] = []


def test_shared_proofs_are_pinned() -> None:
    """A row proven only on another drill is a decision, not an accident: the list is pinned (shrink it
    by adding a case on the row's own drill)."""
    shared = sorted({(r.drill, r.check) for r in ROWS if not TAG.match(r.check)
                     and not any(VARIANT_REF.match(i) and not VARIANT_REF.match(i).group(2) for i in r.fails)  # type: ignore[union-attr]
                     and not any(i.startswith(("contract", "never")) for i in r.fails)})
    assert shared == SHARED
