"""Unit tests of pytest_chaosdrill.commands.recheck: an unfinished folder is named, and the exit is non-zero."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chaosdrill.cli import main
from pytest_chaosdrill.evidence import IN_PROGRESS, mark_folder_incomplete


def test_recheck_names_every_incomplete_folder_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "runs" / "run_x" / "phase2" / "drill_1"
    folder.mkdir(parents=True)
    (folder / IN_PROGRESS).write_text(json.dumps({"drill": "drill_1", "test": "t"}))
    mark_folder_incomplete(folder, "interrupted while its evidence was written")
    assert not (folder / IN_PROGRESS).exists() and json.loads((folder / "meta.json").read_text())["verdict"] == "INCOMPLETE"
    rc = main(["recheck", str(tmp_path)])
    out = capsys.readouterr()
    assert rc != 0 and f"INCOMPLETE {folder}" in out.out, out
