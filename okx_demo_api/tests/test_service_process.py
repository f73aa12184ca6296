"""okx_demo_api process-level drills: hooks, STOP/SIGTERM, crash + restart, unreachable venue, proxy faults.

Each test runs its own target against its own fresh venue, so the witness ledger holds only that
target's orders.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from okx_demo_api.harness import (TargetProcess, active, for_venue, free_port, last_before,
                                                    open_blocked, opens_between)
from pytest_chaosdrill.venue import VenueServer
from status_checks import sample_problems

pytestmark = pytest.mark.timeout(60)

LATCHED = "REDUCEONLY_OPEN_PERMISSION_LATCHED"


@pytest.fixture
def own_venue():
    """A fresh venue for a test that runs its own target: its ledger holds that target's orders only."""
    v = VenueServer(seed=11).start()
    try:
        yield v
    finally:
        v.stop()


# -- target-side hooks ----------------------------------------------------------------------------

def test_wal_stall_fails_open_closed_and_recovers(own_venue, tmp_path) -> None:
    samples: list[dict] = []
    with for_venue(own_venue, tmp_path, TARGET_WAL_CAPACITY="16") as t:
        t.wait_status(active, 20, "Active", samples)
        t.touch_control("wal_stall")
        applied = t.wait_for(lambda: [h for h in t.hooks_log() if h["event"] == "applied"], 5, "hook applied")[0]
        assert applied["hook"] == "wal_stall"
        first = t.wait_status(lambda s: s["wal_queue_enqueue_failures"] > 0 and open_blocked(s), 10, "backpressure",
                              samples)
        assert first["mode_reasons"] == ["REDUCEONLY_RISKSTATE_DEGRADED"] and first["risk_state"] == "Degraded"
        assert first["wal_queue_depth"] == first["wal_queue_capacity"] == 16
        later = t.wait_status(lambda s: s["wal_queue_enqueue_failures"] > first["wal_queue_enqueue_failures"]
                              and s["loop_tick_last_ts_ms"] > first["loop_tick_last_ts_ms"] + 200, 5,
                              "failures grow, loop ticks", samples)
        assert later["trading_mode"] == "ReduceOnly"
        # Nothing reaches the venue while the journal is stalled: no durable record, no dispatch.
        assert own_venue.control.witness().orders(applied["mono"] + 1.1, later["_mono"]) == []
        (t.control_dir / "wal_stall").unlink()
        released = t.wait_for(lambda: [h for h in t.hooks_log() if h["event"] == "released"], 5, "released")[0]
        back = t.wait_status(active, 10, "Active again", samples)
        assert back["wal_queue_depth"] < 16 and released["mono"] < back["_mono"]
    assert sample_problems(samples) == []


def test_unknown_reason_token_forces_kill_until_restart(own_venue, tmp_path) -> None:
    samples: list[dict] = []
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(active, 20, "Active", samples)
        t.touch_control("emit_reason_token", "CORTEX_TOKEN_NOT_IN_REGISTRY")
        st = t.wait_status(lambda s: s["trading_mode"] == "Kill", 5, "Kill", samples)
        assert st["mode_reasons"] == ["KILL_CORTEX_FORCE_KILL"]
        assert not (t.control_dir / "emit_reason_token").exists(), "token file must be consumed"
        hook = t.hooks_log()[-1]
        assert hook["hook"] == "emit_reason_token" and hook["event"] == "applied"
        assert hook["detail"]["known"] is False
        kill_at = st["_mono"]
        calls0 = t.read_json("execution_fingerprint.json")["api_calls"]
        time.sleep(1.0)
        st2 = t.wait_status(lambda s: True, 2, "sample", samples)
        # Even in Kill the loop keeps calling the venue (price probes): a fault would meet traffic.
        calls1 = t.wait_file("execution_fingerprint.json", lambda f: f["api_calls"] >= calls0 + 5, 2,
                             "calls keep flowing in Kill")["api_calls"]
        assert calls1 - calls0 >= 5
        assert st2["trading_mode"] == "Kill", "Kill must not resume without a restart"
        # Capital supremacy: Kill flattens; every order after Kill reduces exposure.
        orders = own_venue.control.witness().orders(kill_at + 0.05, st2["_mono"])
        assert all(o["reduceOnly"] and o["effect"] in ("reduce", "none") for o in orders)
    assert sample_problems(samples) == []


# -- process and filesystem -----------------------------------------------------------------------

def test_stop_file_graceful_exit(own_venue, tmp_path) -> None:
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(active, 20, "Active")
        created = t.touch_control("STOP")
        assert t.proc.wait(10) == 0
        m = t.read_json("run_manifest.json")
        assert m["status"] == "interrupted" and m["stop_detected"] is True and m["stop_reason"] == "stop_file"
        assert m["stop_time"].endswith("Z") and m["end_utc"] is not None
        assert (m["stop_detected_mono"] - created) * 1000 < 100, "STOP not detected within 100 ms"
        assert "unknown" not in {m["git_commit"], m["docker_image_tag"], m["build_id"]}
        fp = t.read_json("execution_fingerprint.json")
        assert fp["api_calls"] == m["api_calls"] > 0
        assert not (t.data_dir / ".running").exists()


def test_sigterm_graceful_exit(own_venue, tmp_path) -> None:
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(active, 20, "Active")
        t.proc.send_signal(signal.SIGTERM)
        assert t.proc.wait(10) == 0
        m = t.read_json("run_manifest.json")
        assert (m["status"], m["stop_reason"], m["stop_detected"]) == ("interrupted", "sigterm", True)


def test_crash_and_restart_latches_and_never_duplicates(own_venue, tmp_path) -> None:
    samples: list[dict] = []
    t = for_venue(own_venue, tmp_path)
    with t:
        t.wait_status(active, 20, "Active")
        time.sleep(0.5)  # orders in flight
        assert t.kill() == -signal.SIGKILL
    restarted = time.monotonic()
    t2 = for_venue(own_venue, tmp_path)
    with t2:
        first = t2.wait_status(lambda s: True, 10, "first sample", samples)
        assert first["open_permission_reason_codes"] == ["RESTART_RECONCILE_REQUIRED"]
        assert first["trading_mode"] == "ReduceOnly" and LATCHED in first["mode_reasons"]
        back = t2.wait_status(active, 20, "Active after reconcile", samples)
        last_blocked = last_before(samples, back["_mono"])
        assert opens_between(own_venue, restarted, last_blocked) == []
        w = own_venue.control.witness()
        assert w.recon_reads(restarted, back["_mono"]), "latch cleared without reconciliation reads"
        time.sleep(0.5)
        assert w.duplicates() == [] and own_venue.control.witness().duplicates() == [], "a clOrdId was dispatched twice"
        # Maybe-dispatched intents from the journal were asked about, not re-sent.
        replay = t2.log_events("wal_replay")[0]
        resolved = {e["clOrdId"] for e in t2.log_events("intent_resolved")}
        assert set(replay["clOrdIds"]) <= resolved
        mine = {o["clOrdId"] for o in w.orders()}
        assert not set(replay["clOrdIds"]) & {o["clOrdId"] for o in w.orders(restarted, back["_mono"])}
        assert len(mine) == len(w.orders()), "a clOrdId reached the venue twice"
        prev = json.loads((t2.data_dir / "run_manifest.previous.json").read_text())
        assert prev["status"] == "crashed"
        assert t2.read_json("run_manifest.json")["previous_run_unclean"] is True
    assert sample_problems(samples) == []


def test_status_valid_before_the_venue_is_reachable(tmp_path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    samples: list[dict] = []
    t = TargetProcess(f"http://{dead}", f"ws://{dead}/ws/v5/public", f"ws://{dead}/ws/v5/private", tmp_path)
    with t:
        for _ in range(20):
            t.wait_status(lambda s: True, 2, "sample", samples)
        st = samples[-1]
        assert st["trading_mode"] == "ReduceOnly"
        assert st["mode_reasons"] == ["REDUCEONLY_BUNKER_MODE_ACTIVE", "REDUCEONLY_INPUT_MISSING_OR_STALE"]
        assert st["connectivity_degraded"] is True and st["bunker_mode_active"] is True
        fp = t.wait_file("execution_fingerprint.json", lambda f: f["error_count"] > 0, 5,
                         "connection errors in the fingerprint")
        assert {e["type"] for e in fp["error_events"]} & {"connection_error", "ws_error"}
    assert sample_problems(samples) == []


def test_proxy_timeout_errors_counted_mid_run(own_venue, tmp_path) -> None:
    proxy_mod = pytest.importorskip("pytest_chaosdrill.proxy")
    server = proxy_mod.ProxyServer().start()
    try:
        upstream = own_venue.rest_url.split("://", 1)[1].rstrip("/")
        p = server.create_proxy("venue_rest", upstream=upstream)
        t = TargetProcess(f"http://{p.listen}", own_venue.ws_public_url, own_venue.ws_private_url, tmp_path,
                          env={"TARGET_HTTP_TIMEOUT_MS": "300"})
        with t:
            t.wait_status(active, 20, "Active")
            calls0 = t.read_json("execution_fingerprint.json")["api_calls"]
            t.wait_for(lambda: t.read_json("execution_fingerprint.json")["api_calls"] >= calls0 + 5, 5,
                       "call pressure before the fault")
            p.add_toxic("timeout", timeout=0)
            fp = t.wait_file("execution_fingerprint.json",
                             lambda f: any(e["type"] == "timeout" for e in f["error_events"]), 5,
                             "timeouts in the fingerprint mid-run")
            assert fp["error_count"] > 0
            assert t.read_json("run_manifest.json")["status"] == "running"
            # Calls without an answer are connectivity risk: bunker mode, no OPEN.
            st = t.wait_status(lambda s: s["bunker_mode_active"], 3, "bunker mode")
            assert st["trading_mode"] == "ReduceOnly" and "REDUCEONLY_BUNKER_MODE_ACTIVE" in st["mode_reasons"]
            p.remove_toxic(p.toxics()[0].name)
            t.wait_status(lambda s: active(s) and not s["bunker_mode_active"], 15, "Active after the fault")
    finally:
        server.stop()


def test_drift_found_by_routine_reconciliation_latches_inventory_mismatch(own_venue, tmp_path) -> None:
    samples: list[dict] = []
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(lambda s: active(s) and s["exposure"] > 0, 20, "Active with exposure", samples)
        own_venue.control.reset()  # venue truth changes under the target: positions vanish
        st = t.wait_status(lambda s: "INVENTORY_MISMATCH_RECONCILE_REQUIRED" in s["open_permission_reason_codes"],
                           15, "mismatch latched", samples)
        assert st["trading_mode"] == "ReduceOnly" and LATCHED in st["mode_reasons"]
        back = t.wait_status(active, 15, "Active after a clean reconciliation", samples)
        clear = [e for e in back["latch_events"] if e["code"] == "INVENTORY_MISMATCH_RECONCILE_REQUIRED"]
        assert [e["event"] for e in clear][-2:] == ["set", "clear"]
        assert back["reconcile"]["last_success_mono"] <= clear[-1]["mono"] + 1e-3
    assert sample_problems(samples) == []


def test_target_command_flags(own_venue, tmp_path) -> None:
    """``python -m okx_demo_api`` takes the same flags as the env vars."""
    port = free_port()
    t = TargetProcess("http://127.0.0.1:9", "ws://127.0.0.1:9/x", "ws://127.0.0.1:9/y", tmp_path, port=port)
    cmd = [sys.executable, "-m", "okx_demo_api", "--rest-url", own_venue.rest_url,
           "--ws-public-url", own_venue.ws_public_url, "--ws-private-url", own_venue.ws_private_url,
           "--port", str(port), "--control-dir", str(t.control_dir), "--data-dir", str(t.data_dir),
           "--order-rate", "6", "--environment", "DEV", "--build-id", "cli-test-build"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        st = t.wait_status(active, 20, "Active via its command-line flags")
        assert st["build_id"] == "cli-test-build" and st["deployment_environment"] == "DEV"
        assert st["owner_view"]["primary_owner_reason_code"] == "STATE_IDLE_HEALTHY"
        t.touch_control("STOP")
        assert proc.wait(10) == 0
        assert t.read_json("run_manifest.json")["build_id"] == "cli-test-build"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    bad = subprocess.run([sys.executable, "-m", "okx_demo_api", "--order-rate", "4",
                          "--control-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "TARGET_ORDER_RATE" in bad.stderr


def test_known_cortex_token_is_a_reduceonly_reason_that_expires(own_venue, tmp_path) -> None:
    samples: list[dict] = []
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(active, 20, "Active", samples)
        t.touch_control("emit_reason_token", "REDUCEONLY_CORTEX_FORCE_REDUCE_ONLY")
        st = t.wait_status(open_blocked, 5, "cortex ReduceOnly", samples)
        assert st["mode_reasons"] == ["REDUCEONLY_CORTEX_FORCE_REDUCE_ONLY"]
        assert t.hooks_log()[-1]["detail"]["known"] is True
        back = t.wait_status(active, 10, "Active once the signal expires", samples)
        last_blocked = last_before(samples, back["_mono"])
        assert opens_between(own_venue, st["_mono"], last_blocked) == []
    assert sample_problems(samples) == []


def test_frozen_process_latches_stale_on_resume(own_venue, tmp_path) -> None:
    """SIGSTOP/SIGCONT: after a freeze longer than the stale threshold no order goes out before
    a reconciliation, even though the sockets deliver a continuous backlog."""
    samples: list[dict] = []
    with for_venue(own_venue, tmp_path) as t:
        t.wait_status(active, 20, "Active", samples)
        t.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(1.5)
        finally:
            t.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        first = t.wait_status(lambda s: True, 5, "first sample after resume", samples)
        assert first["open_permission_reason_codes"] == ["WS_DATA_STALE_RECONCILE_REQUIRED"]
        back = t.wait_status(active, 10, "Active again", samples)
        assert opens_between(own_venue, resumed, last_before(samples, back["_mono"])) == []
        assert back["reconcile"]["last_success_mono"] > resumed
    assert sample_problems(samples) == []


def test_reduce_exposure_hook_flattens_while_the_wal_is_stalled(own_venue, tmp_path) -> None:
    """The occasion hook reduce_exposure: consumed, answered "applied", and its reduce-only orders reach the
    venue while the WAL writer is stalled (they never wait for the journal)."""
    samples: list[dict] = []

    def exposure() -> float:
        series = own_venue.control.witness().exposure_series()
        return series[-1][1] if series else 0.0

    with for_venue(own_venue, tmp_path, TARGET_WAL_CAPACITY="16") as t:
        t.wait_status(active, 20, "Active", samples)
        t.wait_for(lambda: exposure() >= 2, 20, "a position at the venue")
        t.touch_control("wal_stall")
        t.wait_status(lambda s: open_blocked(s) and s["wal_queue_enqueue_failures"] > 0, 10, "backpressure", samples)
        asked = t.touch_control("reduce_exposure")
        answer = t.wait_for(lambda: [h for h in t.hooks_log() if h["hook"] == "reduce_exposure"], 5, "answered")[0]
        assert answer["event"] == "applied" and answer["mono"] >= asked - 0.05, answer
        assert not (t.control_dir / "reduce_exposure").exists(), "the hook file must be consumed"
        ids = set(answer["detail"]["orders"])
        if not ids:   # the strategy's own closes flattened it first: nothing was left to send
            assert answer["detail"]["exposure"] == 0
        else:
            reduced = t.wait_for(lambda: [o for o in own_venue.control.witness().orders() if o.get("clOrdId") in ids
                                          and o.get("effect") == "reduce"], 5, "the flatten at the venue")
            assert {o["reduceOnly"] for o in reduced} == {True}
        assert (t.control_dir / "wal_stall").exists()   # all of it while the WAL was still stalled
        assert open_blocked(t.wait_status(lambda s: True, 2, "sample", samples))
        (t.control_dir / "wal_stall").unlink()
    assert sample_problems(samples) == []
