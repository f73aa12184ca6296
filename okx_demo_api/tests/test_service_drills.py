"""okx_demo_api against the venue simulator: real subprocess, real HTTP/WebSocket, venue faults.

Every /status sample taken here is validated (min JSON Schema + the contract engine); behaviour is
checked against the venue's witness ledger, never only against the target's own report.
"""
from __future__ import annotations

import time

import pytest

from okx_demo_api.harness import (TargetProcess, active, for_venue, last_before, open_blocked,
                                                    opens_between)
from pytest_chaosdrill.venue import VenueServer
from status_checks import sample_problems

pytestmark = pytest.mark.timeout(60)

LATCHED = "REDUCEONLY_OPEN_PERMISSION_LATCHED"


@pytest.fixture(scope="module")
def venue():
    v = VenueServer(seed=7).start()
    try:
        yield v
    finally:
        v.stop()


@pytest.fixture(scope="module")
def target(venue, tmp_path_factory):
    t = for_venue(venue, tmp_path_factory.mktemp("okx_target"))
    t.start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def steady(target):
    """The shared target, Active, with its samples collected for validation."""
    samples: list[dict] = []
    target.wait_status(active, 20, "Active", samples)
    yield target, samples
    assert sample_problems(samples) == []


def _blocked_window(t: TargetProcess, pred, samples: list[dict], timeout: float = 10) -> tuple[dict, dict]:
    first = t.wait_status(pred, timeout, "safe state", samples)
    back = t.wait_status(active, 20, "Active again", samples)
    last_blocked = last_before(samples, back["_mono"])
    return first, {"back": back, "last_blocked_mono": last_blocked}


# -- steady state and files -----------------------------------------------------------------------

def test_steady_state_traffic_and_live_files(venue, steady) -> None:
    t, samples = steady
    t0 = time.monotonic()
    m1 = t.read_json("run_manifest.json")
    f1 = t.read_json("execution_fingerprint.json")
    t.wait_for(lambda: t.read_json("execution_fingerprint.json")["updated_utc"] != f1["updated_utc"], 2,
               "fingerprint rewritten mid-run")
    time.sleep(1.0)
    samples.append(t.status())
    orders = venue.control.witness().orders(t0, time.monotonic())
    assert len(orders) >= 5, f"order rate below 5/s: {len(orders)} in ~1 s"
    assert {o["reduceOnly"] for o in orders} == {True, False}
    assert m1["status"] == "running" and m1["end_utc"] is None and m1["stop_detected"] is False
    for k in ("run_id", "start_utc", "git_commit", "docker_image_tag", "build_id", "api_calls", "stop_reason", "stop_time"):
        assert k in m1 and m1[k] != "unknown"
    f2 = t.read_json("execution_fingerprint.json")
    assert f2["api_calls"] > f1["api_calls"] and f2["orders_sent"] > 0
    assert set(f2["latency_stats_ms"]) >= {"mean", "p95"}
    st = samples[-1]
    assert st["loop_tick_last_ts_ms"] > 0 and st["reconcile"]["count"] >= 1
    assert st["owner_view"]["unblock"] == []


# -- venue faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fault,code", [
    (lambda c: c.book_gap("BTC-USDT-SWAP", 5), "WS_BOOK_GAP_RECONCILE_REQUIRED"),
    (lambda c: c.trades_gap("ETH-USDT-SWAP", "skip", 3), "WS_TRADES_GAP_RECONCILE_REQUIRED"),
    (lambda c: c.trades_gap("BTC-USDT-SWAP", "reorder", 2), "WS_TRADES_GAP_RECONCILE_REQUIRED"),
], ids=["book_gap", "trades_gap_skip", "trades_gap_reorder"])
def test_feed_gap_latches_until_reconciled(venue, steady, fault, code) -> None:
    t, samples = steady
    rec = venue.control.wait_landed(fault(venue.control), 5)
    first, w = _blocked_window(t, lambda s: code in s["open_permission_reason_codes"], samples)
    assert first["trading_mode"] == "ReduceOnly" and first["mode_reasons"] == [LATCHED]
    assert first["open_permission_blocked_latch"] and first["open_permission_requires_reconcile"]
    assert (first["_mono"] - rec.effective_mono) < 1.0, "latch did not set promptly"
    assert opens_between(venue, first["_mono"], w["last_blocked_mono"]) == []
    back = w["back"]
    # Cleared only after a reconciliation (venue saw the reads) that succeeded.
    reads = venue.control.witness().recon_reads(rec.effective_mono, back["_mono"])
    assert {r["path"] for r in reads} >= {"/api/v5/account/positions", "/api/v5/trade/orders-pending"}
    clear = [e for e in back["latch_events"] if e["event"] == "clear" and e["code"] == code][-1]
    assert back["reconcile"]["last_success_mono"] <= clear["mono"] + 1e-3
    assert clear["mono"] - rec.effective_mono >= t_stable_s(t)


def t_stable_s(t: TargetProcess) -> float:
    return int(t.env.get("TARGET_RECONCILE_STABLE_MS", "500")) / 1000.0


def test_frozen_feed_latches_stale_and_reports_live_lag(venue, steady) -> None:
    t, samples = steady
    rec = venue.control.wait_landed(venue.control.freeze(), 5)
    first = t.wait_status(lambda s: "WS_DATA_STALE_RECONCILE_REQUIRED" in s["open_permission_reason_codes"],
                          5, "stale latch", samples)
    assert first["ws_event_lag_ms"] > 1000 and first["connectivity_degraded"] is True
    assert first["mode_reasons"] == [LATCHED]
    later = t.wait_status(lambda s: s["ws_event_lag_ms"] > first["ws_event_lag_ms"] + 200, 3, "lag grows", samples)
    assert later["open_permission_blocked_latch"]
    venue.control.clear("freeze")
    cleared = time.monotonic()
    back = t.wait_status(active, 10, "Active again", samples)
    assert back["_mono"] - cleared >= t_stable_s(t), "latch cleared before the feed stayed fresh long enough"
    assert opens_between(venue, first["_mono"], cleared) == []
    assert back["ws_event_lag_ms"] <= 1000
    assert rec.effective_mono <= first["_mono"]


def test_lagged_feed_latches_stale(venue, steady) -> None:
    t, samples = steady
    venue.control.wait_landed(venue.control.lag(2000), 5)
    st = t.wait_status(lambda s: "WS_DATA_STALE_RECONCILE_REQUIRED" in s["open_permission_reason_codes"],
                       5, "stale latch", samples)
    assert st["trading_mode"] == "ReduceOnly"
    t.wait_status(lambda s: s["ws_event_lag_ms"] >= 1500, 5, "lag reflects the injected delay", samples)
    venue.control.clear("lag")
    t.wait_status(active, 15, "Active again", samples)


def test_session_termination(venue, steady) -> None:
    t, samples = steady
    rec = venue.control.wait_landed(venue.control.session_termination(refuse_reauth_s=1.0), 5)
    first = t.wait_status(lambda s: s["10028_count_5m"] >= 1 and open_blocked(s), 5, "session latch", samples)
    assert first["open_permission_reason_codes"] == ["SESSION_TERMINATION_RECONCILE_REQUIRED"]
    assert first["mode_reasons"] == [LATCHED, "REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_SESSION_KILL_UNCONFIRMED"]
    assert first["risk_state"] == "Degraded"
    back = t.wait_status(active, 15, "Active again", samples)
    last_blocked = last_before(samples, back["_mono"])
    assert opens_between(venue, first["_mono"], last_blocked) == []
    sessions = venue.control.witness().sessions(rec.effective_mono, back["_mono"])
    events = [s["event"] for s in sessions]
    assert "login_refused" in events, "re-auth was not retried while refused"
    relogin = [s for s in sessions if s["event"] == "login"][-1]
    assert back["reconcile"]["last_success_mono"] > relogin["mono"], "resumed without reconciling after re-auth"


def test_partial_fill_containment(venue, steady) -> None:
    t, samples = steady
    naked0 = samples[-1]["atomic_naked_events_24h"]
    rec = venue.control.partial_fill()
    rec = venue.control.wait_landed(rec, 30)  # the strategy sends a two-leg batch every few seconds; slower under load
    first = t.wait_status(lambda s: "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE" in s["mode_reasons"], 5,
                          "emergency", samples)
    assert first["mode_reasons"] == ["REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", "REDUCEONLY_RISKSTATE_DEGRADED"]
    assert first["risk_state"] == "Degraded" and first["atomic_naked_events_24h"] == naked0 + 1
    assert first["open_permission_blocked_latch"] is False
    back = t.wait_status(active, 15, "Active again", samples)
    assert back["_mono"] - rec.effective_mono >= 1.5, "emergency cleared before the cooldown"
    last_blocked = last_before(samples, back["_mono"])
    assert opens_between(venue, rec.effective_mono + 1e-6, last_blocked) == []
    series = [(m, e) for m, e in venue.control.witness().exposure_series() if rec.effective_mono < m < last_blocked]
    exps = [e for _, e in series]
    assert exps and all(b <= a for a, b in zip(exps, exps[1:])), f"exposure grew during containment: {exps}"
    assert exps[-1] == 0, "containment did not reach neutral"
    reduce_orders = venue.control.witness().orders(rec.effective_mono, last_blocked)
    assert reduce_orders and all(o["reduceOnly"] for o in reduce_orders)


def test_rate_limit_counted(venue, steady) -> None:
    t, samples = steady
    venue.control.wait_landed(venue.control.rate_limit(requests=10), 5)
    st = t.wait_status(lambda s: s["429_count_5m"] >= 1, 5, "429 counted", samples)
    fp = t.wait_file("execution_fingerprint.json", lambda f: any(e.get("status") == 429 for e in f["error_events"]),
                     3, "429 in fingerprint")
    assert fp["error_count"] >= 1 and st["deribit_http_p95_ms"] >= 0
    t.wait_status(active, 10, "Active", samples)
    assert venue.control.witness().duplicates() == []


def test_http_5xx_outcomes_resolved_never_resent(venue, steady) -> None:
    t, samples = steady
    rec = venue.control.wait_landed(venue.control.http_5xx(requests=6), 5)
    fp = t.wait_file("execution_fingerprint.json", lambda f: any(e.get("status") == 503 for e in f["error_events"]),
                     5, "503 in the fingerprint")
    assert fp["error_count"] >= 1
    t.wait_for(lambda: t.log_events("intent_resolved"), 5, "unknown outcomes resolved by query")
    t.wait_status(active, 10, "Active", samples)
    w = venue.control.witness()
    assert w.duplicates(rec.effective_mono) == [], "an order with unknown outcome was re-sent"
