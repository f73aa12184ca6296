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
