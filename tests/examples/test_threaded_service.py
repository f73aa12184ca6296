"""Unit tests of the example target examples/threaded_service (its own modules, no drills)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from examples.threaded_service import registry as reg
from examples.threaded_service.core import State
from examples.threaded_service.feeds import PrivateSession, PublicFeed
from examples.threaded_service.rest import Telemetry
from examples.threaded_service.trader import Trader
from examples.threaded_service.wal import Wal, read_journal, unresolved_intents
from pytest_chaosdrill.contract import Contract
from pytest_chaosdrill.resources import default_manifest
from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.auth import ApiKey

INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")


def make_state(tmp_path: Path, **kw: Any) -> State:
    args = dict(instruments=INSTS, wal_capacity=16, stale_threshold_ms=1000, stable_ms=0, emergency_cooldown_ms=100,
                environment="PAPER", build_id="test-build", config={}, data_dir=str(tmp_path), telemetry=Telemetry())
    args.update(kw)
    return State(**args)


def healthy(state: State) -> State:
    for inst in INSTS:
        for ch in ("books", "trades"):
            state.market_event(ch, inst, int(time.time() * 1000))
        state.book_ready[inst] = True
    state.session_up = True
    state.positions_known = True
    return state


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


def test_registry_matches_the_bundled_manifest() -> None:
    manifest = json.loads(Path(default_manifest()).read_text(encoding="utf-8"))
    regs = manifest["registries"]
    assert manifest["contract_version"] == reg.CONTRACT_VERSION
    for mine, theirs in ((reg.KILL, regs["ModeReasonCode"]["Kill"]), (reg.REDUCE_ONLY, regs["ModeReasonCode"]["ReduceOnly"]),
                         (reg.LATCH, regs["OpenPermissionReasonCode"]["values"])):
        assert list(mine) == [(e["code"], e["unblock"]["type"], e["unblock"]["condition"]) for e in theirs]


def test_start_up_status_is_valid_latched_and_not_active(tmp_path: Path, contract: Contract) -> None:
    s = make_state(tmp_path)
    s.set_latch("RESTART_RECONCILE_REQUIRED")
    p = s.status()
    assert contract.check(p) == []
    assert len([k for k in contract.mandatory_keys if k in p]) == len(contract.mandatory_keys) == 33
    assert p["trading_mode"] == "ReduceOnly" and p["open_permission_reason_codes"] == ["RESTART_RECONCILE_REQUIRED"]
    assert p["mode_reasons"][0] == "REDUCEONLY_OPEN_PERMISSION_LATCHED"


@pytest.mark.parametrize("setup, mode, risk, reasons, codes", [
    (lambda s: None, "Active", "Healthy", [], []),
    (lambda s: s.set_latch("WS_BOOK_GAP_RECONCILE_REQUIRED"), "ReduceOnly", "Healthy",
     ["REDUCEONLY_OPEN_PERMISSION_LATCHED"], ["WS_BOOK_GAP_RECONCILE_REQUIRED"]),
    (lambda s: setattr(s, "emergency", True), "ReduceOnly", "Degraded",
     ["REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", "REDUCEONLY_RISKSTATE_DEGRADED"], []),
    (lambda s: (s.set_latch("SESSION_TERMINATION_RECONCILE_REQUIRED"), setattr(s, "session_up", False),
                setattr(s, "session_lost", True)), "ReduceOnly", "Degraded",
     ["REDUCEONLY_OPEN_PERMISSION_LATCHED", "REDUCEONLY_RISKSTATE_DEGRADED", "REDUCEONLY_SESSION_KILL_UNCONFIRMED"],
     ["SESSION_TERMINATION_RECONCILE_REQUIRED"]),
    (lambda s: setattr(s, "wal_failed_mono", time.monotonic()), "ReduceOnly", "Degraded",
     ["REDUCEONLY_RISKSTATE_DEGRADED"], []),
    (lambda s: s.emit_token("NOT_A_REGISTERED_TOKEN"), "Kill", "Healthy", ["KILL_CORTEX_FORCE_KILL"], []),
])
def test_each_condition_gives_a_contract_valid_status(tmp_path: Path, contract: Contract, setup, mode, risk,
                                                      reasons, codes) -> None:
    s = healthy(make_state(tmp_path))
    s.wal_depth = lambda: 16 if s.wal_failed_mono else 0
    setup(s)
    p = s.status()
    assert contract.check(p) == [], contract.check(p)
    assert (p["trading_mode"], p["risk_state"], p["mode_reasons"], p["open_permission_reason_codes"]) == \
        (mode, risk, reasons, codes)


def test_stale_feed_latches_and_lag_tracks_the_silence(tmp_path: Path, contract: Contract) -> None:
    s = healthy(make_state(tmp_path, stale_threshold_ms=50))
    for key in s.arrival:
        s.arrival[key] -= 0.2   # the feed has been silent for 200 ms
    p = s.status()
    assert p["ws_event_lag_ms"] >= 200
    assert p["open_permission_reason_codes"] == ["WS_DATA_STALE_RECONCILE_REQUIRED"]
    assert p["connectivity_degraded"] is True and contract.check(p) == []


class FakeWs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def book(action: str, seq: int, prev: int) -> dict[str, Any]:
    return {"action": action, "data": [{"seqId": seq, "prevSeqId": prev, "ts": str(int(time.time() * 1000)),
                                        "asks": [], "bids": []}]}


def test_book_gap_latches_and_resubscribes(tmp_path: Path) -> None:
    s = healthy(make_state(tmp_path))
    feed = PublicFeed("ws://unused", s, stop=None)  # type: ignore[arg-type]
    feed.ws = FakeWs()  # type: ignore[assignment]
    inst = INSTS[0]
    feed._book(inst, book("snapshot", 1000, -1))
    feed._book(inst, book("update", 1001, 1000))
    assert not s.latch
    feed._book(inst, book("update", 1007, 1006))   # 1002..1006 skipped
    assert "WS_BOOK_GAP_RECONCILE_REQUIRED" in s.latch and s.book_ready[inst] is False
    assert [m["op"] for m in feed.ws.sent] == ["unsubscribe", "subscribe"]
    assert not s.condition_clear("WS_BOOK_GAP_RECONCILE_REQUIRED")
    feed._book(inst, book("update", 1008, 1007))   # before the new snapshot: ignored
    feed._book(inst, book("snapshot", 1008, -1))
    assert s.book_ready[inst] is True and s.condition_clear("WS_BOOK_GAP_RECONCILE_REQUIRED")


def test_trades_gap_by_okx_aggregation_rule(tmp_path: Path) -> None:
    """tradeId - count must be the previous tradeId: ids that skip by aggregation are no gap."""
    s = healthy(make_state(tmp_path))
    feed = PublicFeed("ws://unused", s, stop=None)  # type: ignore[arg-type]
    inst = INSTS[0]
    ts = str(int(time.time() * 1000))
    feed._trades(inst, [{"tradeId": "5001", "count": "1", "ts": ts}, {"tradeId": "5003", "count": "2", "ts": ts}])
    assert not s.latch                                            # 5002-5003 were one taker order
    feed._trades(inst, [{"tradeId": "5007", "count": "2", "ts": ts}])  # 5004-5005 (a lost push) missing
    assert "WS_TRADES_GAP_RECONCILE_REQUIRED" in s.latch
    feed._trades(inst, [{"tradeId": "5007", "count": "2", "ts": ts}])  # the same push again: dropped
    assert s.trades_dropped == 1 and feed.last_trade[inst] == 5007
    feed._trades(inst, [{"tradeId": "5010", "count": "3", "ts": ts}])
    assert s.trades_gaps == 2 and s.trades_processed == 4


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


@pytest.mark.parametrize("mechanism", ["key_revoked", "service_upgrade"])
def test_private_session_signs_its_login_and_counts_okx_terminations(tmp_path: Path, mechanism: str) -> None:
    """Against a real venue with a key: the signed login is accepted, and OKX's session end (close 4007, or
    notice 64008 then a close) counts once as a termination (the status's 10028_count_5m) and latches."""
    key = ApiKey.generate("example")
    s = make_state(tmp_path)
    stop = threading.Event()
    with VenueServer(port=0, tick_ms=20) as v:
        v.call(v.core.auth.add, key)
        sess = PrivateSession(v.ws_private_url, key.api_key, key.secret_key, key.passphrase, s, stop)
        sess.start()
        try:
            _wait(lambda: s.session_up, 5, "session")
            assert [e["verified"] for e in v.control.witness().sessions() if e["event"] == "login"] == [True]
            v.control.wait_landed(v.control.session_termination(refuse_reauth_s=0.3, mechanism=mechanism), 3)
            _wait(lambda: s.count_10028_5m() == 1, 3, "termination counted")
            assert "SESSION_TERMINATION_RECONCILE_REQUIRED" in s.latch
            _wait(lambda: s.session_up, 5, "re-login after the refusal")
            assert s.count_10028_5m() == 1  # the refusals and the close after a notice are not counted again
        finally:
            stop.set()
            sess.close()
            sess.join(5)
        assert not sess.is_alive()


def test_wal_queue_is_bounded_while_the_writer_stalls(tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal.jsonl", capacity=4)
    wal.set_stall(True)
    wal.start()
    recs = [wal.enqueue({"kind": "intent", "clOrdId": f"c{i}"}) for i in range(6)]
    assert [r is not None for r in recs] == [True] * 4 + [False] * 2
    assert wal.depth == 4 and wal.enqueue_failures == 2
    assert not recs[0].durable.wait(0.1)   # nothing is durable while stalled
    wal.set_stall(False)
    assert recs[3].durable.wait(2.0) and wal.depth == 0
    wal.close()
    assert [r["clOrdId"] for r in read_journal(tmp_path / "wal.jsonl")] == ["c0", "c1", "c2", "c3"]


class StubRest:
    """Answers GET /trade/order from a dict of known orders (a unit-test stand-in for the venue)."""

    def __init__(self, orders: dict[str, dict[str, Any]]) -> None:
        self.orders, self.calls = orders, []

    def call(self, method: str, path: str, params: dict[str, str] | None = None, **_: Any):
        self.calls.append((method, path, dict(params or {})))
        o = self.orders.get((params or {}).get("clOrdId", ""))
        return (200, {"code": "0", "data": [o]}) if o else (200, {"code": "51603", "data": []})


def test_wal_replay_resolves_by_query_never_resends_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "wal.jsonl"
    now = int(time.time() * 1000)
    lines = [
        {"kind": "intent", "clOrdId": "tsA1", "instId": INSTS[0], "side": "buy", "sz": "1", "expTime": now - 5000},
        {"kind": "intent", "clOrdId": "tsA2", "instId": INSTS[0], "side": "sell", "sz": "1", "expTime": now - 5000},
        {"kind": "intent", "clOrdId": "tsA3", "instId": INSTS[1], "side": "buy", "sz": "1", "expTime": now - 5000},
        {"kind": "outcome", "clOrdId": "tsA3", "result": "accepted"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "intent", "clO', encoding="utf-8")
    assert [r["clOrdId"] for r in unresolved_intents(read_journal(path))] == ["tsA1", "tsA2"]

    def replay_once() -> StubRest:
        import threading
        s = make_state(tmp_path)
        wal = Wal(path, capacity=16)
        wal.start()
        rest = StubRest({"tsA1": {"clOrdId": "tsA1", "state": "filled", "accFillSz": "1"}})
        trader = Trader(s, rest, wal, threading.Event(), order_rate=10, run_prefix="x", http_timeout_s=1)  # type: ignore[arg-type]
        trader.replay()
        wal.close()
        assert s.replay_done and not s.unresolved
        assert all(m == "GET" for m, _, _ in rest.calls)   # looked up, never re-sent
        return rest

    first = replay_once()
    assert sorted(p["clOrdId"] for _, _, p in first.calls) == ["tsA1", "tsA2"]
    outcomes = {r["clOrdId"]: r["result"] for r in read_journal(path) if r.get("kind") == "outcome"}
    assert outcomes == {"tsA1": "resolved_found", "tsA2": "resolved_absent", "tsA3": "accepted"}
    size = path.stat().st_size
    second = replay_once()
    assert second.calls == [] and path.stat().st_size == size   # replaying again changes nothing


def test_an_unanswered_order_is_not_declared_absent_before_its_exptime(tmp_path: Path) -> None:
    import threading
    s = make_state(tmp_path)
    wal = Wal(tmp_path / "wal.jsonl", capacity=16)
    wal.start()
    trader = Trader(s, StubRest({}), wal, threading.Event(), order_rate=10, run_prefix="x", http_timeout_s=1)  # type: ignore[arg-type]
    leg = {"clOrdId": "tsB1", "instId": INSTS[0], "side": "buy", "sz": "1", "expTime": int(time.time() * 1000) + 60_000}
    s.unresolved["tsB1"] = leg
    assert trader.resolve_unknown([leg]) is False and "tsB1" in s.unresolved
    leg["expTime"] = int(time.time() * 1000) - 1000
    assert trader.resolve_unknown([leg]) is True and "tsB1" not in s.unresolved
    wal.close()


def test_a_pending_clordid_answer_goes_to_the_resolver_and_is_no_naked_leg(tmp_path: Path) -> None:
    """OKX keeps a clOrdId unique among pending orders only: sCode 51016 says the order exists, so the
    leg is resolved by clOrdId (never journalled as rejected) and the two-leg order is not naked."""
    import threading

    class BatchRest:
        def call(self, method: str, path: str, **_: Any):
            return 200, {"code": "2", "data": [{"ordId": "1", "clOrdId": "xA", "sCode": "0"},
                                                {"ordId": "", "clOrdId": "xB", "sCode": "51016"}]}

    s = healthy(make_state(tmp_path))
    wal = Wal(tmp_path / "wal.jsonl", capacity=16)
    wal.start()
    trader = Trader(s, BatchRest(), wal, threading.Event(), order_rate=10, run_prefix="x", http_timeout_s=1)  # type: ignore[arg-type]
    legs = [{"instId": INSTS[0], "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1", "clOrdId": "xA",
             "expTime": int(time.time() * 1000) + 5000},
            {"instId": INSTS[1], "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "1", "clOrdId": "xB",
             "expTime": int(time.time() * 1000) + 5000}]
    trader._send(legs, opening=False)
    wal.close()
    assert list(s.unresolved) == ["xB"] and not s.emergency and not s.naked_events
    outcomes = {r["clOrdId"]: r["result"] for r in read_journal(tmp_path / "wal.jsonl") if r.get("kind") == "outcome"}
    assert outcomes == {"xA": "accepted"}
