"""faults.hook: the drill's occasion hook (declared or not, written, answered, held, cleaned up)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from pytest_chaosdrill.faults.hook import OccasionHook
from pytest_chaosdrill.target import HookSpec


def _rendered(tmp_path: Path, declared: bool = True, log: bool = True) -> SimpleNamespace:
    hooks = {"reduce_exposure": HookSpec(str(tmp_path / "reduce_exposure"))} if declared else {}
    return SimpleNamespace(hooks=hooks, hooks_log=str(tmp_path / "hooks.log") if log else None)


def _answer(tmp_path: Path, event: str, mono: float, hook: str = "reduce_exposure") -> None:
    with open(tmp_path / "hooks.log", "a", encoding="utf-8") as fh:
        fh.write("not json\n" + json.dumps({"hook": hook, "event": event, "mono": mono, "detail": {"n": 1}}) + "\n")


def test_undeclared_hook_or_log_is_not_usable_and_says_why(tmp_path: Path) -> None:
    for rendered in (_rendered(tmp_path, declared=False), _rendered(tmp_path, log=False)):
        occ = OccasionHook(rendered, {"hook": "reduce_exposure"})
        assert not occ.usable
        out = occ.finish()
        assert "fired_mono" not in out and (out["declared"] is False or out["hooks_log"] is False)


def test_applied_answer_holds_the_fault_hold_after_s_past_it(tmp_path: Path) -> None:
    occ = OccasionHook(_rendered(tmp_path), {"hook": "reduce_exposure", "hold_after_s": 0.7, "answer_timeout_s": 3})
    occ.fire()
    assert (tmp_path / "reduce_exposure").exists() and occ.poll() is None
    assert occ.deadline() == occ.fired_mono + 3          # unanswered: wait for the answer up to its timeout
    _answer(tmp_path, "applied", occ.fired_mono - 1.0)    # an old line (before the file was written) is no answer
    _answer(tmp_path, "released", time.monotonic(), hook="wal_stall")
    assert occ.poll() is None
    at = time.monotonic()
    _answer(tmp_path, "applied", at)
    assert occ.poll()["event"] == "applied" and occ.deadline() == at + 0.7
    out = occ.finish()   # the service did not consume the file here: the drill removes it
    assert out["answer"] == "applied" and out["answer_mono"] == at and out["detail"] == {"n": 1}
    assert out["file_removed"] is True and not (tmp_path / "reduce_exposure").exists()


def test_refused_answer_ends_the_wait_at_once(tmp_path: Path) -> None:
    occ = OccasionHook(_rendered(tmp_path), {"hook": "reduce_exposure"})
    occ.fire()
    (tmp_path / "reduce_exposure").unlink()   # consumed by the service
    at = time.monotonic()
    _answer(tmp_path, "refused", at)
    assert occ.poll()["event"] == "refused" and occ.deadline() == at
    out = occ.finish()
    assert out["answer"] == "refused" and out["file_removed"] is False


def test_unanswered_is_recorded_as_such(tmp_path: Path) -> None:
    occ = OccasionHook(_rendered(tmp_path), {"hook": "reduce_exposure", "answer_timeout_s": 0.5})
    occ.fire()
    out = occ.finish()
    assert out["answer"] is None and out["answer_timeout_s"] == 0.5 and out["fired_mono"] == occ.fired_mono
