"""Unit tests of pytest_chaosdrill.commands.drills (`chaosdrill list`, `chaosdrill validate`); not named
test_drills.py: that basename is the drill module of drills/."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaosdrill.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_list_names_every_bundled_drill_with_trigger_budget_markers_and_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["drill", "title", "trigger"]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert len(rows) == len(list((ROOT / "drills").glob("*.yaml"))) and out[-1] == f"{len(rows)} drill(s)"
    assert "venue.book_gap" in rows["drill_5_ws_book_gap"] and "300 ms" in rows["drill_5_ws_book_gap"]
    # a kill needs a backend that owns the process: never the external one
    assert rows["drill_4_crash_restart"].rstrip().endswith("process,docker")
    assert rows["ops_c2_2_network_disconnect"].rstrip().endswith("docker")


def test_list_filters_by_marker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "-m", "ops"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "7 drill(s)" and all(line.startswith("ops_") for line in out[1:-1])


def test_validate_accepts_good_drill_and_target_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "drills" / "drill_5_ws_book_gap.yaml"), str(ROOT / "targets" / "okx_demo_api.yaml")]) == 0
    out = capsys.readouterr().out
    assert "(drill drill_5_ws_book_gap)" in out and "(target file)" in out and "2 file(s) checked, 0 problem(s)" in out


def test_validate_names_every_problem_of_every_file_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text("id: x\nmarkers: [phase2]\n")
    target = tmp_path / "t.yaml"
    target.write_text('name: s\ncommand: ["{python}"]\nstatus_url: "http://{host}:{status_port}/s"\nenv: {A: "{venue_url}"}\n')
    gap = (ROOT / "drills" / "drill_5_ws_book_gap.yaml").read_text().replace("venue.book_gap", "venue.book_gapp")
    (tmp_path / "g.yaml").write_text(gap)
    assert main(["validate", str(tmp_path)]) == 1
    problems = [line for line in capsys.readouterr().out.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == len(set(problems))
    assert [p for p in problems if "d.yaml" in p and "'title' is required" in p]
    assert [p for p in problems if "d.yaml" in p and "'checks' is required" in p]   # the second missing field too
    assert [p for p in problems if "t.yaml: field 'env.A': unknown placeholder {venue_url}" in p]
    assert [p for p in problems if "g.yaml: field 'trigger.kind': unknown trigger kind 'venue.book_gapp'" in p]


def test_validate_of_a_missing_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: drill location does not exist" in capsys.readouterr().out
