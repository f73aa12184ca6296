"""Exploration finds a bug only two faults show, and shrinks it to a replayable drill (marker ``explore``).

The variant ``inflight_reconcile_clears_new_code`` (tests/variants/launch.py, held out of the single-fault
matrix) passes every single-fault drill: a latch code raised while a reconciliation is already in flight is
cleared by that reconciliation. The bundled exploring drill, whose steps may be aimed at the moment a
reconciliation read is outstanding (``align: [recon_read]``), must find it within a CI budget (240 s on 2
cores), shrink it, and write ``minimal_drill.yaml``, which replayed alone fails the same way. The
unmodified target passes the same exploration. Each run is a separate pytest process (pytester).

Run: ``pytest -m explore tests/explore`` (about 5 minutes; the default run leaves the ``explore`` marker out).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.variants.targets import write_variant_target

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.explore

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "drills" / "explore_1_fault_schedules.yaml"
TEST_MODULE = "def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n"
BUDGET_S = 240  # to find the bug (the budget; the aimed generator finds it in its first examples)
CONTROL_BUDGET_S = 240  # the unmodified target's run: the budget the project's CI has always given it
SEED = 6  # the explorer's seed fixes the schedules it draws; CI runs the same search every time
BUG = "inflight_reconcile_clears_new_code"
SIGNATURE = "global_invariants: [reconcile_clears_only_older_codes]"


def target(pytester: pytest.Pytester, variant: str) -> Path:
    return write_variant_target(variant, pytester.path / f"target_{variant}.yaml")


def run(pytester: pytest.Pytester, variant: str, drills: Path, evidence: str, *extra: str) -> pytest.RunResult:
    pytester.makepyfile(test_drills=TEST_MODULE)
    return pytester.runpytest_subprocess(f"--chaosdrill-drills={drills}", f"--chaosdrill-target={target(pytester, variant)}",
                                         f"--chaosdrill-evidence-dir={pytester.path / evidence}", "-p", "no:cacheprovider",
                                         *extra, timeout=BUDGET_S + 180)


def explore(pytester: pytest.Pytester, variant: str, budget_s: int = BUDGET_S) -> tuple[pytest.RunResult, Path]:
    d = pytester.path / "mydrills"
    d.mkdir()
    shutil.copy(DRILL, d)
    result = run(pytester, variant, d, "evidence", f"--chaosdrill-explore-budget-s={budget_s}",
                 f"--chaosdrill-explore-seed={SEED}")
    (run_dir,) = list((pytester.path / "evidence" / "runs").iterdir())
    return result, run_dir / "explore" / "explore_1_fault_schedules"


def test_exploration_finds_the_two_fault_bug_and_shrinks_it_to_a_replayable_drill(pytester: pytest.Pytester) -> None:
    result, folder = explore(pytester, BUG)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["verdict"] == "FAIL", meta["reason"]
    assert "explore_found_no_violation:" in meta["reason"] and "reconcile_clears_only_older_codes" in meta["reason"]
    proof = json.loads((folder / "record.json").read_text())["steps"][0]["proof"]
    assert proof["elapsed_s"] <= BUDGET_S + 30  # the budget is checked before each example
    minimal = yaml.safe_load((folder / "minimal_drill.yaml").read_text())
    steps = minimal["trigger"]["params"]["steps"]
    # The bug needs a latch code raised while a reconciliation is in flight: a fault aimed at an outstanding
    # reconciliation read (into the target's routine reconciliation, or one a first fault caused). Within the
    # budget Hypothesis may stop shrinking a step short: the replay below proves the shrunk drill is the bug.
    assert minimal["trigger"]["kind"] == "schedule" and len(steps) <= 3, steps
    assert any(s.get("align") == "recon_read" for s in steps), steps  # aimed, not a lucky time offset
    explored = [json.loads(line) for line in (folder / "explored.jsonl").read_text().splitlines()]
    assert len(explored) == proof["examples"] and any(e["verdict"] == "FAIL" for e in explored)
    for name in ("first_failure", "minimal"):
        assert (folder / "examples" / name / "record.json").is_file()
        assert (folder / "examples" / name / "meta.json").is_file()
    assert "minimal failing schedule:" in result.stdout.str()
    result.assert_outcomes(failed=1)

    # The minimal drill, replayed on its own, fails the same way.
    replay_dir = pytester.path / "replay"
    replay_dir.mkdir()
    shutil.copy(folder / "minimal_drill.yaml", replay_dir)
    replay = run(pytester, BUG, replay_dir, "evidence_replay")
    (run_dir,) = list((pytester.path / "evidence_replay" / "runs").iterdir())
    replay_meta = json.loads((run_dir / "compound" / minimal["id"] / "meta.json").read_text())
    assert replay_meta["verdict"] == "FAIL" and SIGNATURE in replay_meta["reason"], replay_meta["reason"]
    replay.assert_outcomes(failed=1)


def test_the_unmodified_target_passes_the_same_exploration(pytester: pytest.Pytester) -> None:
    result, folder = explore(pytester, "none", CONTROL_BUDGET_S)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["verdict"] == "PASS", meta["reason"]
    proof = json.loads((folder / "record.json").read_text())["steps"][0]["proof"]
    assert proof["violations"] == 0 and proof["conclusive"] >= 20, proof
    assert not (folder / "minimal_drill.yaml").exists()
    result.assert_outcomes(passed=1)
