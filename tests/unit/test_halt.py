"""The halt file: where it is, what it holds, the refusal line, and the watcher that fires once."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_chaosdrill import halt


def test_the_env_variable_moves_it_else_a_per_user_runtime_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(halt.HALT_ENV, str(tmp_path / "h" / "HALT"))
    assert halt.halt_path() == tmp_path / "h" / "HALT"
    monkeypatch.delenv(halt.HALT_ENV)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert halt.halt_path() == tmp_path / "chaosdrill" / "HALT"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "absent"))
    assert halt.halt_path().name == "HALT" and halt.halt_path().parent.name.startswith("chaosdrill-")


def test_set_read_clear_and_the_refusal_line(tmp_path: Path) -> None:
    path = tmp_path / "d" / "HALT"
    assert halt.read_halt(path) is None and halt.clear_halt(path) is False
    halt.set_halt("venue maintenance", path)
    facts = halt.read_halt(path)
    assert facts is not None and facts["reason"] == "venue maintenance" and facts["at"].endswith("Z")
    line = halt.refusal(facts, path)
    assert "\n" not in line and "HALTED" in line and str(path) in line and "chaosdrill halt --clear" in line
    path.write_text("stop now")  # any content: its presence is the stop
    assert halt.read_halt(path) == {"reason": "stop now"}
    assert halt.clear_halt(path) is True and not path.exists()


def test_the_watcher_calls_back_once_when_the_file_appears(tmp_path: Path) -> None:
    path = tmp_path / "HALT"
    fired: list[dict] = []
    event = threading.Event()
    watcher = halt.HaltWatcher(lambda facts: (fired.append(facts), event.set()), path=path, poll_s=0.005).start()
    try:
        time.sleep(0.05)
        assert fired == []
        halt.set_halt("x", path)
        assert event.wait(5.0)
        assert fired[0]["reason"] == "x" and watcher.seen == fired[0]
    finally:
        watcher.stop()
    assert len(fired) == 1


def test_a_release_in_progress_is_known_to_the_halt_handler() -> None:
    assert not halt.in_release()
    with halt.releasing():
        with halt.releasing():  # nested drill runs (the explorer) keep it set until the outer one ends
            assert halt.in_release()
        assert halt.in_release()
    assert not halt.in_release()
