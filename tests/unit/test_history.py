"""report.history: per-drill runs from stored meta.json files, the flakiness rule, the SVG escapes."""
from __future__ import annotations

import json
from pathlib import Path

from pytest_chaosdrill.report.history import history_lines, load_history, tts_svg


def meta(root: Path, run: str, drill: str, verdict: str, commit: str, tts: float | None, started: str) -> None:
    d = root / "runs" / run / "phase2" / drill
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"drill": drill, "backend": "process", "verdict": verdict, "commit": commit,
                                             "time_to_safe_ms": tts, "run_id": run, "run_started_utc": started}))


def test_flaky_only_when_one_commit_saw_different_judged_verdicts(tmp_path: Path) -> None:
    meta(tmp_path, "r1", "drill_a", "PASS", "c1", 10.0, "2026-01-01T00:00:01Z")
    meta(tmp_path, "r2", "drill_a", "FAIL", "c1", 30.0, "2026-01-01T00:00:02Z")
    meta(tmp_path, "r1", "drill_b", "PASS", "c1", 5.0, "2026-01-01T00:00:01Z")
    meta(tmp_path, "r2", "drill_b", "ERROR", "c1", None, "2026-01-01T00:00:02Z")      # the harness's: not flaky
    meta(tmp_path, "r3", "drill_b", "FAIL", "c2", 9.0, "2026-01-01T00:00:03Z")        # another commit: not flaky
    a, b = load_history(tmp_path)
    assert (a.drill_id, a.flaky_commits, [r.verdict for r in a.runs]) == ("drill_a", ["c1"], ["PASS", "FAIL"])
    assert (b.drill_id, b.flaky_commits, b.passes) == ("drill_b", [], 1)
    lines = history_lines([a, b], verbose=True)
    assert lines[2].split()[:5] == ["drill_a", "process", "2", "1/2", "FAIL"] and lines[2].endswith("c1")
    assert "drill_a (process) FLAKY" in "\n".join(lines)


def test_the_plot_escapes_stored_text(tmp_path: Path) -> None:
    meta(tmp_path, "<script>x<", "drill_a", "PASS", "c1", 10.0, "t")
    (h,) = load_history(tmp_path)
    svg = tts_svg(h)
    assert "<script>" not in svg and "&lt;script&gt;x&lt;" in svg and svg.count("<circle") == 1
