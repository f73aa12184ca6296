"""``chaosdrill doctor``'s readiness rules, on observations made by hand (no service started)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chaosdrill.commands.doctor import Observation, assess
from pytest_chaosdrill.drill import load_drills
from pytest_chaosdrill.registry import Registry, validate_drill
from pytest_chaosdrill.resources import default_target, drills_dir
from pytest_chaosdrill.target import load_target

PROCESS_CAPS = frozenset({"start", "kill", "pause", "exit"})
FINGERPRINT = {"api_calls": 10, "error_count": 0, "error_events": [], "trades": {"processed": 5, "duplicates_dropped": 0},
               "latch_events": []}


def healthy() -> Observation:
    """What a service meeting every prerequisite shows in a fault-free run."""
    return Observation(
        started=True, samples=100, steady=True, orders_per_s=8,
        requests=[{"method": "POST", "path": "/api/v5/trade/batch-orders", "clOrdIds": ["a", "b"], "expTime": "1"},
                  {"method": "POST", "path": "/api/v5/trade/order", "clOrdIds": ["c"], "expTime": "1"}],
        venue_state={"sessions": {"public": [{"subs": ["books:BTC-USDT-SWAP", "trades:BTC-USDT-SWAP"]}],
                                  "private": [{"logged_in": True}]}},
        files={"fingerprint": dict(FINGERPRINT),
               "run_manifest": {"run_id": "r", "git_commit": "g", "docker_image_tag": "not-applicable:x", "build_id": "b",
                                "start_utc": "2026-01-01T00:00:00Z", "end_utc": None, "status": "running",
                                "stop_detected": False, "stop_time": None, "stop_reason": None}})


@pytest.fixture(scope="module")
def drills() -> tuple[list, dict]:
    ds = load_drills([drills_dir()])
    reg = Registry.builtin()
    return ds, {d.id: validate_drill(d, reg)[1] for d in ds}


def verdicts(drills: tuple[list, dict], obs: Observation, target: Path | None = None,
             caps: frozenset[str] = PROCESS_CAPS) -> dict[str, object]:
    ds, needs = drills
    return {r.drill: r for r in assess(ds, needs, caps, "process", load_target(target or default_target()), obs)}


def test_healthy_service_is_ready_everywhere_the_backend_can_go(drills: tuple[list, dict]) -> None:
    out = verdicts(drills, healthy())
    assert {d: r.verdict for d, r in out.items() if r.verdict != "READY"} == {"ops_c2_2_network_disconnect": "SKIPPED",
                                                                              "cluster_1_pod_rescheduled": "SKIPPED",
                                                                              "cluster_2_node_loss": "SKIPPED",
                                                                              "cluster_3_oom_crash_loop": "SKIPPED",
                                                                              "ops_c2_7_dns_failure": "SKIPPED"}
    assert "--backend docker can" in out["ops_c2_2_network_disconnect"].missing[0]


@pytest.mark.parametrize(("change", "drill", "says"), [
    (lambda o: o.venue_state["sessions"]["public"][0]["subs"].clear(), "drill_2_market_data_stale",
     "books or trades"),
    (lambda o: o.venue_state["sessions"]["public"][0]["subs"].remove("books:BTC-USDT-SWAP"), "drill_5_ws_book_gap",
     "subscription to books"),
    (lambda o: o.venue_state["sessions"]["public"][0]["subs"].remove("trades:BTC-USDT-SWAP"), "drill_6_ws_trades_gap",
     "subscription to trades"),
    (lambda o: o.venue_state["sessions"]["private"].clear(), "drill_7_session_termination", "/ws/v5/private"),
    (lambda o: o.requests.pop(0), "drill_1_partial_fill", "two-leg"),
    (lambda o: o.requests[1].update(expTime=None), "ops_c2_4_partition_inflight", "expTime"),
    (lambda o: o.files["fingerprint"].pop("trades"), "drill_6_ws_trades_gap", "trades.processed"),
    (lambda o: o.files["fingerprint"].pop("api_calls"), "ops_c2_3_degradation", "api_calls"),
    (lambda o: o.files["fingerprint"].update(error_count="none"), "ops_c2_3_degradation", "field error_count"),
])
def test_each_missing_prerequisite_names_its_drill_and_the_fix(drills: tuple[list, dict], change, drill: str,
                                                               says: str) -> None:
    obs = healthy()
    change(obs)
    out = verdicts(drills, obs)
    assert out[drill].verdict == "NOT PROVEN"
    assert any(says in m for m in out[drill].missing), out[drill].missing
    assert out["drill_8_unknown_token"].verdict == "READY"   # the others stay as they were


def test_target_file_without_extras_names_the_fields(drills: tuple[list, dict], tmp_path: Path) -> None:
    bare = tmp_path / "bare.yaml"
    bare.write_text('name: bare\ncommand: ["true"]\nstatus_url: "http://{host}:{status_port}/api/v1/status"\n')
    obs = healthy()
    obs.files = {}
    out = verdicts(drills, obs, bare)
    assert out["drill_3_wal_backpressure"].verdict == "NOT PROVEN"
    assert any("hooks.wal_stall" in m for m in out["drill_3_wal_backpressure"].missing)
    assert any("files.stop" in m for m in out["ops_c2_1_stop"].missing)
    assert out["drill_1_partial_fill"].verdict == "READY"
    assert any("(absent)" in o for o in out["drill_5_ws_book_gap"].optional)   # latch_events: optional, said absent
    # drill 3's occasion hook: optional, said absent with what to add
    assert any(o.startswith("hooks.reduce_exposure") and "(absent; add hooks:" in o
               for o in out["drill_3_wal_backpressure"].optional), out["drill_3_wal_backpressure"].optional


def test_occasion_hook_is_said_present_per_drill(drills: tuple[list, dict]) -> None:
    out = verdicts(drills, healthy())   # the reference target declares reduce_exposure
    assert any(o.startswith("hooks.reduce_exposure") and o.endswith("(present)")
               for o in out["drill_3_wal_backpressure"].optional), out["drill_3_wal_backpressure"].optional
    assert not any("reduce_exposure" in o for o in out["drill_5_ws_book_gap"].optional)


def test_no_steady_state_is_no_drill_ready(drills: tuple[list, dict]) -> None:
    obs = healthy()
    obs.steady, obs.steady_problem = False, "the venue saw 0 orders"
    out = verdicts(drills, obs)
    assert all(r.verdict in ("NOT PROVEN", "SKIPPED") for r in out.values())
    assert "no steady state: the venue saw 0 orders" in out["drill_1_partial_fill"].missing


def test_external_backend_skips_what_it_cannot_do(drills: tuple[list, dict]) -> None:
    out = verdicts(drills, healthy(), caps=frozenset())
    assert out["drill_4_crash_restart"].verdict == "SKIPPED"
    assert out["drill_5_ws_book_gap"].verdict == "READY"
