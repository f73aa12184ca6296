"""Unit tests of pytest_chaosdrill.backends.process: pause, resume and kill proven by the kernel."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from pytest_chaosdrill.backends.process import ProcessTarget
from pytest_chaosdrill.target import load_target
from pytest_chaosdrill.timeline import wait_until


def test_process_backend_pause_resume_and_kill_are_proven_by_the_kernel(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text('name: sleeper\ncommand: ["{python}", "-c", "import time; time.sleep(60)"]\n'
                    'status_url: "http://127.0.0.1:1/"\n')
    t = load_target(path).render({"python": sys.executable})
    target = ProcessTarget(t, tmp_path / "logs")
    target.start()
    try:
        paused = target.pause()
        assert paused["proven"] and paused["proc_state"] == "T"
        assert target.resume()["signal"] == "SIGCONT"
        assert wait_until(lambda: target._proc_state() in ("S", "R"), timeout=5)
        killed = target.kill()
        assert killed["killed_by_sigkill"] and killed["returncode"] == -signal.SIGKILL
        assert target.logs() and target.describe()["exits"][0]["returncode"] == -signal.SIGKILL
    finally:
        target.stop(2)
    assert not target.running()
