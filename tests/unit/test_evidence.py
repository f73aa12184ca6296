"""Unit tests of pytest_chaosdrill.evidence: hashed folders, archives, never overwritten."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chaosdrill.evidence import EvidenceWriter, RunInfo, verify_tree
from pytest_chaosdrill.redaction import Redactor


def test_evidence_folder_hashes_archive_and_never_overwrites(tmp_path: Path) -> None:
    info = RunInfo("run_test", tmp_path, "abc", "2026-01-01T00:00:00Z", "process")
    info.create()
    with pytest.raises(FileExistsError):
        info.create()
    w1 = EvidenceWriter(info, "phase2", "drill_x", Redactor(["hunter2"]))
    w1.text("notes.md", "password hunter2")
    out = w1.finish()
    w2 = EvidenceWriter(info, "phase2", "drill_x", Redactor())
    w2.text("notes.md", "second")
    w2.finish()
    assert w1.dir != w2.dir and (w1.dir / "notes.md").read_text() != "second"
    assert "hunter2" not in (w1.dir / "notes.md").read_text()
    checked, problems = verify_tree(tmp_path / "runs")
    assert checked >= 4 and problems == []
    assert Path(out["ieb"]).is_file() and len(out["ieb_sha256"]) == 64
    (w1.dir / "extra.txt").write_text("sneaked in")
    _, problems = verify_tree(w1.dir)
    assert any("not listed" in p for p in problems)


def test_prune_runs_keeps_the_newest_the_current_and_the_running(tmp_path: Path) -> None:
    """Issue 23 (9): retention like pytest's tmp_path_retention_count."""
    from pytest_chaosdrill.evidence import IN_PROGRESS, prune_runs

    runs = tmp_path / "runs"
    names = [f"run_2026120{i}T000000Z_x_000000" for i in range(1, 6)]
    for n in names:
        (runs / n / "phase2" / "drill_1").mkdir(parents=True)
    (runs / names[1] / "phase2" / "drill_1" / IN_PROGRESS).write_text("{}")      # a drill in progress
    (tmp_path / "phase2").mkdir()
    (tmp_path / "phase2" / "drill_1").symlink_to(runs / names[0] / "phase2" / "drill_1")  # latest link of a pruned run
    removed = prune_runs(tmp_path, keep=2, current=names[0])
    assert sorted(p.name for p in runs.iterdir()) == [names[0], names[1], names[3], names[4]]
    assert len(removed) == 1 and names[2] in removed[0]
    assert prune_runs(tmp_path, keep=0, current=names[0]) == []                  # 0 keeps all
    assert (tmp_path / "phase2" / "drill_1").is_symlink()                         # the current run's link stays


def _run_with(runs: Path, name: str, verdicts: list[str]) -> Path:
    for n, verdict in enumerate(verdicts):
        folder = runs / name / "phase2" / f"drill_{n + 1}"
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps({"verdict": verdict}))
    return runs / name


@pytest.mark.parametrize(("policy", "left"), [("all", {0, 1, 2, 3, 4}), ("failed", {0, 1, 3, 4}), ("none", {1, 4})])
def test_prune_runs_by_policy_keeps_the_current_run_and_the_signed_off_one(tmp_path: Path, policy: str,
                                                                           left: set[int]) -> None:
    """Issue 23 (9): a policy like pytest's tmp_path_retention_policy, over the earlier runs."""
    from pytest_chaosdrill.evidence import prune_runs

    runs = tmp_path / "runs"
    names = [f"run_2026120{i}T000000Z_x_000000" for i in range(1, 6)]
    _run_with(runs, names[0], ["PASS", "FAIL"])
    _run_with(runs, names[1], ["PASS", "PASS"])          # the latest full sign-off's run
    _run_with(runs, names[2], ["PASS"])
    _run_with(runs, names[3], ["NOT PROVEN"])
    _run_with(runs, names[4], ["PASS"])                  # the current run
    (tmp_path / "SIGNOFF.md").write_text(f"# READY TO SIGN\n\nRun `{names[1]}`, commit `x`.\n")
    removed = prune_runs(tmp_path, keep=0, current=names[4], policy=policy)
    assert {names.index(p.name) for p in runs.iterdir()} == left
    assert all(f"chaosdrill_evidence_retention_policy={policy}" in line for line in removed)
    assert len(removed) == 5 - len(left)


@pytest.mark.parametrize("value", ["some", "FAILED", ""])
def test_an_unknown_retention_policy_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(f"--chaosdrill-evidence-retention-policy={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaosdrill-evidence-retention-policy*must be all, failed or none*"])
