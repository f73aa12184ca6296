"""``--chaosdrill-keep``: the drill's service, venue and proxy answer after pytest exited, their URLs in the
terminal and the run folder; the next drill session and ``chaosdrill keep-reap`` stop them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from drilltexts import BOOK_GAP, TEST_MODULE

from pytest_chaosdrill.backends.procguard import alive


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.RequestException:
        return False


def _kept(keep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(keep_dir.glob("*.json"))]


def test_kept_environment_outlives_pytest_and_is_stopped_by_the_next_run_and_keep_reap(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keep_dir = tmp_path / "kept"
    monkeypatch.setenv("CHAOSDRILL_KEEP_DIR", str(keep_dir))
    d = pytester.path / "mydrills"
    d.mkdir()
    (d / "d.yaml").write_text(BOOK_GAP, encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)

    def drill_run() -> pytest.RunResult:
        return pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "-p", "no:cacheprovider",
                                             "--chaosdrill-keep", timeout=150)

    def reap() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_chaosdrill.cli", "keep-reap"], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "CHAOSDRILL_KEEP_DIR": str(keep_dir)})

    try:
        first = drill_run()
        first.assert_outcomes(passed=1)
        (kept,) = _kept(keep_dir)
        # pytest has exited: the service and the venue still answer, where the terminal and the evidence say
        assert _answers(kept["status_url"]) and _answers(kept["venue_url"] + "/api/v5/public/time")
        first.stdout.fnmatch_lines([f"chaosdrill: kept drill_5_ws_book_gap: status {kept['status_url']}, venue "
                                    f"{kept['venue_url']}*chaosdrill keep-reap"])
        (run_dir,) = (pytester.path / "evidence" / "runs").iterdir()
        assert json.loads((run_dir / "kept.json").read_text())[0]["status_url"] == kept["status_url"]

        second = drill_run()  # the next session stops what the first kept, and keeps its own
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines(["*stopped kept drill_5_ws_book_gap (pid *"])
        assert not alive(kept["pid"], kept["pid_start"]) and not _answers(kept["status_url"])
        (again,) = _kept(keep_dir)
        assert again["pid"] != kept["pid"] and _answers(again["status_url"])

        out = reap()
        assert out.returncode == 0 and "stopped kept drill_5_ws_book_gap" in out.stdout, out.stdout + out.stderr
        assert not alive(again["pid"], again["pid_start"]) and not _answers(again["status_url"])
        assert _kept(keep_dir) == []
    finally:
        reap()  # nothing of this test outlives it, whatever failed


def test_without_the_option_nothing_is_kept(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    keep_dir = tmp_path / "kept"
    monkeypatch.setenv("CHAOSDRILL_KEEP_DIR", str(keep_dir))
    d = pytester.path / "mydrills"
    d.mkdir()
    (d / "d.yaml").write_text(BOOK_GAP, encoding="utf-8")
    pytester.makepyfile(test_drills=TEST_MODULE)
    pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", "-p", "no:cacheprovider", timeout=150).assert_outcomes(passed=1)
    assert not keep_dir.exists() or _kept(keep_dir) == []
    assert not list((pytester.path / "evidence" / "runs").glob("*/kept.json"))
