"""Unit tests of pytest_chaosdrill.drill: bundled drill files load; broken ones name file and field."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaosdrill.drill import DrillDefinitionError, load_drill, load_drills
from pytest_chaosdrill.resources import drills_dir, fixtures_dir


# --- drill files ----------------------------------------------------------------------------------------


def test_bundled_drills_load_and_name_their_fixtures() -> None:
    drills = load_drills([drills_dir()])
    assert [d.id for d in drills if d.group == "phase2"] == [f"drill_{n}_{s}" for n, s in [
        (1, "partial_fill"), (2, "market_data_stale"), (3, "wal_backpressure"), (4, "crash_restart"),
        (5, "ws_book_gap"), (6, "ws_trades_gap"), (7, "session_termination"), (8, "unknown_token")]]
    assert {d.id for d in drills if d.group == "ops"} == {"ops_c2_1_stop", "ops_c2_2_network_disconnect", "ops_c2_3_degradation",
                                                            "ops_c2_4_partition_inflight", "ops_c2_5_timeouts",
                                                            "ops_c2_6_clock_skew", "ops_c2_7_dns_failure"}
    for d in drills:
        if d.expected.get("fixture"):
            assert (fixtures_dir() / d.expected["fixture"]).is_file()


@pytest.mark.parametrize(("text", "field"), [
    ("id: x\n", "title' is required"),
    ("id: Bad-Id\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: 1\n"
     "checks: []\nrecovery: {kind: none}\n", "id"),
    ("id: x\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: -1\n"
     "checks: []\nrecovery: {kind: none}\n", "time_to_safe_budget_ms"),
    ("id: x\ntitle: t\nmarkers: [a]\ntrigger: {kind: a.b}\nexpected: {}\ntime_to_safe_budget_ms: 1\n"
     "checks: [{params: {}}]\nrecovery: {kind: never}\n", "recovery.kind"),
])
def test_broken_drill_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "d.yaml"
    p.write_text(text)
    with pytest.raises(DrillDefinitionError) as err:
        load_drill(p)
    assert str(p) in str(err.value) and (f"field '{field}'" in str(err.value) or field in str(err.value))


def test_duplicate_drill_ids_are_refused(tmp_path: Path) -> None:
    src = (drills_dir() / "drill_5_ws_book_gap.yaml").read_text()
    (tmp_path / "a.yaml").write_text(src)
    (tmp_path / "b.yaml").write_text(src)
    with pytest.raises(DrillDefinitionError, match="already defined"):
        load_drills([tmp_path])
