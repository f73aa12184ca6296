"""The drill record's storage: the timeline compressed without losing a sample, older evidence still read."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pytest_chaosdrill.record import (LEGACY_TIMELINE_FILE, TIMELINE_FILE, DrillRecord, read_timeline,
                                      timeline_file)
from pytest_chaosdrill.timeline import Mark, Sample


def _record(n: int = 2000) -> DrillRecord:
    status = {"trading_mode": "Active", "mode_reasons": [], "open_permission_blocked_latch": False, "x": 0.1}
    samples = tuple(Sample(i, 100 + i * 0.005, 100.0004 + i * 0.005 + i * 1e-9, f"2026-01-01T00:00:{i % 60:02d}.000001Z",
                           200, dict(status, x=i / 7)) for i in range(n))
    samples += (Sample(n, 200.0, 200.1, "2026-01-01T00:01:00.000000Z", None, None, "ConnectionError: refused"),)
    return DrillRecord(drill={"id": "drill_x"}, drill_path="d.yaml", backend="process", target_name="t",
                       target_files=(), contract={}, started_utc="u", t_start=100.0, samples=samples,
                       marks=(Mark("trigger", 101.0, "u", {"a": 1}),), ledger=({"kind": "order"},))


def test_the_timeline_is_compressed_and_every_sample_comes_back_exactly(tmp_path: Path) -> None:
    rec = _record()
    rec.write(tmp_path)
    assert (tmp_path / TIMELINE_FILE).is_file() and not (tmp_path / LEGACY_TIMELINE_FILE).exists()
    plain = "".join(json.dumps(s.to_json(), sort_keys=True) + "\n" for s in rec.samples)
    assert (tmp_path / TIMELINE_FILE).stat().st_size * 5 < len(plain)  # repeated bodies compress well
    assert read_timeline(tmp_path) == plain  # byte for byte: no sample dropped, no number rounded
    back = DrillRecord.load(tmp_path)
    assert [s.to_json() for s in back.samples] == [s.to_json() for s in rec.samples]


def test_the_same_record_gives_the_same_bytes(tmp_path: Path) -> None:
    # gzip's header time is fixed: a re-written folder hashes the same
    _record(10).write(tmp_path / "a")
    _record(10).write(tmp_path / "b")
    assert (tmp_path / "a" / TIMELINE_FILE).read_bytes() == (tmp_path / "b" / TIMELINE_FILE).read_bytes()


def test_older_evidence_with_an_uncompressed_timeline_is_still_read(tmp_path: Path) -> None:
    rec = _record(5)
    rec.write(tmp_path)
    gz = tmp_path / TIMELINE_FILE
    (tmp_path / LEGACY_TIMELINE_FILE).write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    assert timeline_file(tmp_path).name == LEGACY_TIMELINE_FILE
    assert [s.to_json() for s in DrillRecord.load(tmp_path).samples] == [s.to_json() for s in rec.samples]


def test_a_cut_short_timeline_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    _record(50).write(tmp_path)
    gz = tmp_path / TIMELINE_FILE
    gz.write_bytes(gz.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"timeline\.jsonl\.gz: cannot read: not a complete gzip file"):
        DrillRecord.load(tmp_path)
