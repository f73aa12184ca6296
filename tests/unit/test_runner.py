"""runner: the fingerprint is re-read after the recovery for the service's latch clear event (issue 19: a
service that writes its file a little after its status showed the clear must not end NOT PROVEN)."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from pytest_chaosdrill.checks.status import _service_clear_mono
from pytest_chaosdrill.record import Recorder
from pytest_chaosdrill.runner import LATCH_EVENTS_REREAD_S, DrillRun
from pytest_chaosdrill.timeline import Timeline


def _write(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def _run(fp: Path) -> DrillRun:
    """A DrillRun with only what the re-read uses: the target file's fingerprint, a running target, the
    latch-order check among the drill's checks."""
    run = DrillRun.__new__(DrillRun)
    run.ctx = SimpleNamespace(rendered=SimpleNamespace(files={"fingerprint": str(fp)}),
                              target=SimpleNamespace(running=lambda: True),
                              read_json_file=lambda name: json.loads(fp.read_text(encoding="utf-8")))
    run.drill = SimpleNamespace(checks=[SimpleNamespace(name="latch_clears_only_after_reconcile")])
    run.rec = Recorder(drill={"id": "d"}, drill_path="", backend="process", target_name="t",
                       target_files=("fingerprint",), contract={}, timeline=Timeline())
    run.rec.set(host_clock=True)   # the service's clear time is compared only on a shared clock
    return run


def test_a_clear_event_written_15_ms_after_the_recovery_is_read(tmp_path: Path) -> None:
    fp = tmp_path / "execution_fingerprint.json"
    base = {"api_calls": 1, "error_count": 0, "error_events": []}
    _write(fp, base)
    run = _run(fp)
    t_trigger = time.monotonic()
    run.rec.set(t_trigger=t_trigger)
    clear = t_trigger + 0.001  # the service's own clear time, before the status showed it

    def late_writer() -> None:
        time.sleep(0.015)     # the file is rewritten 15 ms after the recovery was seen
        _write(fp, {**base, "latch_events": [{"event": "clear", "code": "X", "mono": clear}]})

    writer = threading.Thread(target=late_writer)
    writer.start()
    started = time.monotonic()
    run._reread_latch_events()
    writer.join()
    assert time.monotonic() - started < LATCH_EVENTS_REREAD_S   # it stopped once the event was there
    record = run.rec.freeze()
    assert _service_clear_mono(record, t_trigger, t_trigger + 1.0) == clear


def test_the_re_read_gives_up_at_its_deadline(tmp_path: Path) -> None:
    fp = tmp_path / "execution_fingerprint.json"
    _write(fp, {"api_calls": 1, "error_count": 0, "error_events": []})
    run = _run(fp)
    run.rec.set(t_trigger=time.monotonic())
    started = time.monotonic()
    run._reread_latch_events()
    assert LATCH_EVENTS_REREAD_S <= time.monotonic() - started < LATCH_EVENTS_REREAD_S + 0.5
    assert _service_clear_mono(run.rec.freeze(), 0.0, time.monotonic()) is None
