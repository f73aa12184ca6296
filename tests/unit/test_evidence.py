"""Unit tests of pytest_chaosdrill.evidence: hashed folders, archives, never overwritten."""
from __future__ import annotations

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
