"""Unit tests of okx_demo_api's single modules: PolicyGuard, latch, WAL, reconciliation, config, ops files."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from okx_demo_api import config as config_mod
from okx_demo_api import wal as wal_mod
from okx_demo_api.dispatcher import Intent
from okx_demo_api.inventory import Inventory
from okx_demo_api.latch import OpenPermissionLatch
from okx_demo_api.ops_files import OpsFiles, atomic_write_json, provenance
from okx_demo_api.policy import (ACTIVE, DEGRADED, FORCE_KILL, HEALTHY, KILL, LATCHED,
                                                   REDUCE_ONLY, RISK_DEGRADED, Inputs, Manifest, PolicyGuard)
from okx_demo_api.reconcile import IntentResolver, compare, venue_positions
from okx_demo_api.strategy import MAX_POS, Strategy
from okx_demo_api.telemetry import Telemetry, percentile
from okx_demo_api.venue_client import RestClient, RestResult
from okx_demo_api.wal import Wal, pending_intents, read_records
from pytest_chaosdrill.resources import default_manifest

INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.load(default_manifest())


# -- PolicyGuard -------------------------------------------------------------------------------------

def test_manifest_loads_every_tier_in_manifest_order(manifest: Manifest) -> None:
    doc = json.loads(Path(default_manifest()).read_text())
    assert manifest.contract_version == doc["contract_version"]
    assert list(manifest.kill) == [e["code"] for e in doc["registries"]["ModeReasonCode"]["Kill"]]
    assert list(manifest.reduce_only) == [e["code"] for e in doc["registries"]["ModeReasonCode"]["ReduceOnly"]]
    assert list(manifest.latch) == [e["code"] for e in doc["registries"]["OpenPermissionReasonCode"]["values"]]


def test_active_when_no_inputs(manifest: Manifest) -> None:
    d = PolicyGuard(manifest).resolve(Inputs())
    assert (d.trading_mode, d.risk_state, d.mode_reasons) == (ACTIVE, HEALTHY, ())


def test_reduceonly_reasons_in_manifest_order_regardless_of_input_order(manifest: Manifest) -> None:
    g = PolicyGuard(manifest)
    tokens = ["REDUCEONLY_SESSION_KILL_UNCONFIRMED", "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE"]
    for order in (tokens, list(reversed(tokens))):
        d = g.resolve(Inputs(risk_state=DEGRADED, latched=True, reasons=set(order)))
        assert d.trading_mode == REDUCE_ONLY
        assert d.mode_reasons == ("REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", LATCHED, RISK_DEGRADED,
                                  "REDUCEONLY_SESSION_KILL_UNCONFIRMED")
        rank = {c: i for i, c in enumerate(manifest.reduce_only)}
        assert [rank[r] for r in d.mode_reasons] == sorted(rank[r] for r in d.mode_reasons)


def test_session_termination_golden_reasons(manifest: Manifest) -> None:
    d = PolicyGuard(manifest).resolve(Inputs(risk_state=DEGRADED, latched=True,
                                             reasons={"REDUCEONLY_SESSION_KILL_UNCONFIRMED"}))
    assert list(d.mode_reasons) == ["REDUCEONLY_OPEN_PERMISSION_LATCHED", "REDUCEONLY_RISKSTATE_DEGRADED",
                                    "REDUCEONLY_SESSION_KILL_UNCONFIRMED"]


def test_kill_beats_reduceonly_and_is_tier_pure(manifest: Manifest) -> None:
    d = PolicyGuard(manifest).resolve(Inputs(risk_state=DEGRADED, latched=True,
                                             reasons={"KILL_CORTEX_FORCE_KILL", "KILL_RISKSTATE_KILL",
                                                      "REDUCEONLY_POLICY_STALE"}))
    assert d.trading_mode == KILL
    assert d.mode_reasons == ("KILL_RISKSTATE_KILL", "KILL_CORTEX_FORCE_KILL")
    assert all(r.startswith("KILL_") for r in d.mode_reasons)


def test_unknown_token_forces_sticky_kill(manifest: Manifest) -> None:
    g = PolicyGuard(manifest)
    d = g.resolve(Inputs(reasons={"REDUCEONLY_NOT_IN_MANIFEST"}))
    assert (d.trading_mode, d.mode_reasons) == (KILL, (FORCE_KILL,))
    # The token is gone from the inputs, the Kill is not: only a restart (new guard) resumes.
    assert g.resolve(Inputs()).trading_mode == KILL
    assert PolicyGuard(manifest).resolve(Inputs()).trading_mode == ACTIVE


def test_decision_allows_capital_supremacy(manifest: Manifest) -> None:
    g = PolicyGuard(manifest)
    active = g.resolve(Inputs())
    ro = g.resolve(Inputs(latched=True))
    assert active.allows(False, 0, 1) and active.allows(True, 1, 0)
    assert not ro.allows(False, 0, 1) and ro.allows(True, 2, 1)
    g.ingest_unknown("X")
    kill = g.resolve(Inputs())
    assert kill.allows(True, 3, 2), "Kill must still allow a risk-reducing order while exposure != 0"
    assert not kill.allows(False, 3, 4)
    assert not kill.allows(True, 0, 0), "nothing to reduce: nothing leaves"


# -- latch ----------------------------------------------------------------------------------------

def test_latch_codes_in_manifest_order_and_clear_only_by_reconcile(manifest: Manifest) -> None:
    events = []
    latch = OpenPermissionLatch(manifest, on_event=events.append)
    assert not latch.is_set and latch.codes == []
    latch.set("SESSION_TERMINATION_RECONCILE_REQUIRED")
    latch.set("WS_BOOK_GAP_RECONCILE_REQUIRED")
    latch.set("RESTART_RECONCILE_REQUIRED")
    assert latch.codes == ["RESTART_RECONCILE_REQUIRED", "WS_BOOK_GAP_RECONCILE_REQUIRED",
                           "SESSION_TERMINATION_RECONCILE_REQUIRED"]
    started = time.monotonic()
    time.sleep(0.001)
    latch.set("WS_DATA_STALE_RECONCILE_REQUIRED")  # raised after the reconciliation started
    cleared = latch.clear_reconciled(started)
    assert set(cleared) == {"RESTART_RECONCILE_REQUIRED", "WS_BOOK_GAP_RECONCILE_REQUIRED",
                            "SESSION_TERMINATION_RECONCILE_REQUIRED"}
    assert latch.codes == ["WS_DATA_STALE_RECONCILE_REQUIRED"]
    assert [e.event for e in events].count("set") == 4 and [e.event for e in events].count("clear") == 3


def test_latch_refuses_unknown_codes(manifest: Manifest) -> None:
    with pytest.raises(ValueError):
        OpenPermissionLatch(manifest).set("FREE_TEXT_REASON")


# -- WAL ------------------------------------------------------------------------------------------

def _run(coro):
    return asyncio.run(coro)


def test_wal_record_is_fsynced_before_the_future_resolves(tmp_path: Path, monkeypatch) -> None:
    synced_lines: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        real_fsync(fd)
        synced_lines.append(len(read_records(tmp_path / "wal.jsonl")))

    monkeypatch.setattr(wal_mod.os, "fsync", spy)

    async def main() -> None:
        w = Wal(tmp_path / "wal.jsonl", 8)
        w.start(asyncio.get_running_loop())
        fut = w.enqueue({"t": "intent", "clOrdId": "a1"})
        assert fut is not None
        await asyncio.wait_for(fut, 2)
        # When the dispatcher may send, the record is on disk and was fsynced.
        assert synced_lines and synced_lines[0] >= 1
        assert read_records(tmp_path / "wal.jsonl")[0]["clOrdId"] == "a1"
        w.close()
    _run(main())


def test_wal_bounded_queue_fails_enqueue_when_stalled(tmp_path: Path) -> None:
    changes: list[tuple[bool, dict]] = []

    async def main() -> None:
        w = Wal(tmp_path / "wal.jsonl", 4, on_stall_change=lambda s, d: changes.append((s, d)))
        w.start(asyncio.get_running_loop())
        w.request_stall(True)
        deadline = time.monotonic() + 2
        while not w.stalled and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert w.stalled and changes and changes[0][0] is True
        futs = [w.enqueue({"t": "intent", "clOrdId": f"c{i}"}) for i in range(6)]
        assert sum(f is not None for f in futs) == 4 and futs[4] is None and futs[5] is None
        assert (w.depth, w.capacity, w.enqueue_failures) == (4, 4, 2)
        await asyncio.sleep(0.1)
        assert not any(f.done() for f in futs if f is not None), "stalled writer must not make records durable"
        w.request_stall(False)
        await asyncio.wait_for(asyncio.gather(*[f for f in futs if f is not None]), 2)
        assert w.depth == 0 and changes[-1][0] is False
        assert [r["clOrdId"] for r in read_records(tmp_path / "wal.jsonl")] == ["c0", "c1", "c2", "c3"]
        w.close()
    _run(main())


def test_wal_replay_is_idempotent(tmp_path: Path) -> None:
    p = tmp_path / "wal.jsonl"
    lines = [
        {"t": "intent", "clOrdId": "x1", "instId": INSTS[0], "side": "buy", "sz": 1},
        {"t": "outcome", "clOrdId": "x1", "result": "acked"},
        {"t": "intent", "clOrdId": "x2", "instId": INSTS[0], "side": "buy", "sz": 1},
        {"t": "outcome", "clOrdId": "x2", "result": "unknown"},
        {"t": "intent", "clOrdId": "x3", "instId": INSTS[1], "side": "sell", "sz": 1},
    ]
    p.write_text("\n".join(json.dumps(r) for r in lines) + '\n{"t": "intent", "clOrdId": "torn')
    pending = pending_intents(read_records(p))
    assert [r["clOrdId"] for r in pending] == ["x2", "x3"]  # maybe dispatched; the torn line never was
    with open(p, "a") as fh:  # what a restart journals after asking the venue
        fh.write("\n" + json.dumps({"t": "outcome", "clOrdId": "x2", "result": "resolved_found"}) + "\n")
        fh.write(json.dumps({"t": "outcome", "clOrdId": "x3", "result": "resolved_absent"}) + "\n")
    assert pending_intents(read_records(p)) == []
    assert pending_intents(read_records(p)) == []  # replaying again changes nothing


# -- reconciliation -------------------------------------------------------------------------------

def test_compare_positions_and_open_orders() -> None:
    venue = venue_positions([{"instId": INSTS[0], "pos": "2"}, {"instId": INSTS[1], "pos": "-1"}])
    assert venue == {INSTS[0]: 2.0, INSTS[1]: -1.0}
    assert compare({INSTS[0]: 2.0, INSTS[1]: -1.0}, venue, INSTS, [], set(), "cd") == []
    diffs = compare({INSTS[0]: 1.0, INSTS[1]: -1.0}, venue, INSTS, [], set(), "cd")
    assert diffs == [f"position {INSTS[0]}: local 1 venue 2"]
    assert compare({INSTS[0]: 0.0}, {}, INSTS, [{"clOrdId": "cdabc1"}, {"clOrdId": "other1"}], set(), "cd") == [
        "open order cdabc1 at venue, unknown locally"]


class _FakeRest:
    """Stands in for RestClient in this single-module test: canned answers per clOrdId."""

    def __init__(self, answers: dict[str, RestResult]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, dict]] = []

    async def request(self, method: str, path: str, params: dict | None = None, body=None) -> RestResult:
        self.calls.append((method, path, params or {}))
        return self.answers[params["clOrdId"]]


class _ListWal:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def enqueue(self, rec: dict):
        self.records.append(rec)
        return None


def test_resolver_asks_by_clordid_and_never_resends() -> None:
    rest = _FakeRest({
        "f1": RestResult(200, {"code": "0", "data": [{"ordId": "9", "instId": INSTS[0], "side": "buy",
                                                      "accFillSz": "1", "state": "filled"}]}),
        "a1": RestResult(200, {"code": "51603", "msg": "Order does not exist", "data": []}),
        "t1": RestResult(None, None, "timeout"),
    })
    inv = Inventory(INSTS)
    wal = _ListWal()
    resolved: list[tuple[str, bool]] = []
    r = IntentResolver(rest, inv, wal, lambda *a, **k: None, lambda item, placed: resolved.append((item["clOrdId"], placed)))
    for cid in ("f1", "a1", "t1"):
        r.add({"clOrdId": cid, "instId": INSTS[0], "side": "buy", "sz": 1})
    assert _run(r.resolve_once()) is False
    assert resolved == [("f1", True), ("a1", False)]
    assert inv.pos[INSTS[0]] == 1.0
    assert set(r.pending) == {"t1"}
    assert all(m == "GET" and p == "/api/v5/trade/order" for m, p, _ in rest.calls), "only queries, no order sent"
    assert [w["result"] for w in wal.records] == ["resolved_found", "resolved_absent"]


def test_resolver_takes_not_found_as_final_only_after_exptime_and_margin() -> None:
    """While the original request can still reach the venue (until expTime + margin), "not found" leaves
    the intent pending; after it, the venue would refuse the request, so "absent" is final."""
    from okx_demo_api.clock import now_ms
    rest = _FakeRest({"o1": RestResult(200, {"code": "51603", "msg": "Order does not exist", "data": []}),
                      "o2": RestResult(200, {"code": "51603", "msg": "Order does not exist", "data": []})})
    wal = _ListWal()
    resolved: list[tuple[str, bool]] = []
    r = IntentResolver(rest, Inventory(INSTS), wal, lambda *a, **k: None,
                       lambda item, placed: resolved.append((item["clOrdId"], placed)), margin_ms=300)
    r.add({"clOrdId": "o1", "instId": INSTS[0], "side": "buy", "sz": 1, "expTime": now_ms() + 200})
    r.add({"clOrdId": "o2", "instId": INSTS[0], "side": "buy", "sz": 1, "expTime": now_ms() - 301})
    assert _run(r.resolve_once()) is False
    assert resolved == [("o2", False)] and set(r.pending) == {"o1"}
    assert r.may_still_arrive(r.pending["o1"], now=r.pending["o1"]["expTime"] + 300)
    assert not r.may_still_arrive(r.pending["o1"], now=r.pending["o1"]["expTime"] + 301)


def test_inventory_dedupes_fills_per_clordid() -> None:
    inv = Inventory(INSTS)
    inv.apply_fill("a", INSTS[0], "buy", 1)  # REST ack of a market order
    inv.apply_fill("a", INSTS[0], "buy", 1)  # the WS update of the same fill
    inv.apply_fill("b", INSTS[1], "sell", 2)
    assert inv.pos == {INSTS[0]: 1.0, INSTS[1]: -2.0} and inv.exposure() == 3.0


# -- strategy -------------------------------------------------------------------------------------

class _NoDispatch:
    def submit(self, intents):  # pragma: no cover - not called by decide_action
        raise AssertionError


def _strategy(manifest: Manifest, inputs: Inputs, containment: bool = False) -> tuple[Strategy, Inventory]:
    inv = Inventory(INSTS)
    g = PolicyGuard(manifest)
    s = Strategy(inv, _NoDispatch(), lambda: g.resolve(inputs), lambda: containment, 8.0, "cdt")
    return s, inv


def test_strategy_mixes_opens_closes_and_two_leg_orders(manifest: Manifest) -> None:
    s, inv = _strategy(manifest, Inputs())
    kinds = []
    for k in range(1, 25):
        acts = s.decide_action(k) or []
        for it in acts:
            inv.apply_fill(it.cl_ord_id, it.inst, it.side, it.sz)
        kinds.append(tuple(i.purpose for i in acts))
        assert all(abs(p) <= MAX_POS for p in inv.pos.values())
    assert ("two_leg", "two_leg") in kinds and ("open",) in kinds and ("close",) in kinds


@pytest.mark.parametrize("start", [(3.0, 4.0), (4.0, 3.0), (4.0, 4.0), (-4.0, -4.0), (-3.0, -4.0), (4.0, -4.0), (6.0, 5.0)])
def test_strategy_sends_two_leg_batches_from_pinned_positions(manifest: Manifest, start: tuple[float, float]) -> None:
    """Drill 1's fault lands on the next two-leg batch: from positions pinned at (or past) the limit,
    with fills applied as they come, every two-leg tick from the second one on sends both legs."""
    s, inv = _strategy(manifest, Inputs())
    inv.adopt({INSTS[0]: start[0], INSTS[1]: start[1]})
    two_leg_ticks = []
    for k in range(1, 12 * 8 + 1):
        acts = s.decide_action(k) or []
        if [i.purpose for i in acts] == ["two_leg", "two_leg"]:
            assert [i.inst for i in acts] == list(INSTS) and acts[0].side != acts[1].side
            two_leg_ticks.append(k)
        for it in acts:
            inv.apply_fill(it.cl_ord_id, it.inst, it.side, it.sz)
        if k > 24:
            assert all(abs(p) <= MAX_POS for p in inv.pos.values()), inv.pos
    assert set(range(24, 12 * 8 + 1, 12)) <= set(two_leg_ticks), f"from {start}: two-leg ticks {two_leg_ticks}"


def test_strategy_sends_no_open_outside_active(manifest: Manifest) -> None:
    for inputs, containment in ((Inputs(latched=True), False), (Inputs(reasons={"KILL_RISKSTATE_KILL"}), False),
                                (Inputs(), True)):
        s, inv = _strategy(manifest, inputs, containment)
        inv.adopt({INSTS[0]: 2.0, INSTS[1]: -1.0})
        for k in range(1, 40):
            for it in s.decide_action(k) or []:
                assert it.reduce_only, f"{it} left the strategy outside Active"
                assert abs(inv.pos[it.inst] + it.signed) < abs(inv.pos[it.inst]), "must reduce"
                inv.apply_fill(it.cl_ord_id, it.inst, it.side, it.sz)
        assert inv.exposure() == 0 or not containment


# -- telemetry: network failures are error events --------------------------------------------------

def _cfg(tmp_path: Path, rest_url: str, **extra: str) -> config_mod.Config:
    env = {"OKX_REST_URL": rest_url, "TARGET_CONTROL_DIR": str(tmp_path / "c"),
           "TARGET_DATA_DIR": str(tmp_path / "d"), "TARGET_REASON_MANIFEST": str(default_manifest()), **extra}
    return config_mod.load(None, env)


def test_connection_refused_and_timeout_are_counted(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts, never answers
    try:
        async def main() -> tuple[RestResult, RestResult, Telemetry]:
            tel = Telemetry()
            a = RestClient(_cfg(tmp_path, f"http://127.0.0.1:{dead_port}"), tel)
            b = RestClient(_cfg(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}", TARGET_HTTP_TIMEOUT_MS="200"), tel)
            await a.start()
            await b.start()
            try:
                return await a.request("GET", "/api/v5/public/time"), await b.request("GET", "/api/v5/public/time"), tel
            finally:
                await a.close()
                await b.close()
        ra, rb, tel = _run(main())
    finally:
        silent.close()
    assert ra.error == "connection_error" and rb.error == "timeout"
    assert tel.error_count == 2 and tel.api_calls == 2
    assert [e["type"] for e in tel.error_events] == ["connection_error", "timeout"]
    assert all(e["endpoint"] == "GET /api/v5/public/time" and e["utc"].endswith("Z") for e in tel.error_events)


def test_classify_transport_failures() -> None:
    import aiohttp
    from aiohttp.client_reqrep import ConnectionKey

    from okx_demo_api.venue_client import classify
    key = ConnectionKey("venue.invalid", 80, False, True, None, None, None)
    assert classify(asyncio.TimeoutError()) == "timeout"
    assert classify(aiohttp.ClientConnectorError(key, socket.gaierror(-2, "Name or service not known"))) == "dns_failure"
    assert classify(aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))) == "connection_error"
    assert classify(aiohttp.ServerDisconnectedError()) == "connection_error"


def test_percentile() -> None:
    assert percentile([], 95) == 0.0
    assert percentile(list(range(1, 101)), 95) == 95.0


# -- config and ops files -------------------------------------------------------------------------

def test_config_env_flags_and_validation(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "http://127.0.0.1:9")
    assert cfg.ws_public_url == "ws://127.0.0.1:9/ws/v5/public" and cfg.order_rate == 8.0
    assert cfg.instruments == INSTS and cfg.wal_capacity == 1024 and cfg.environment == "PAPER"
    with pytest.raises(config_mod.ConfigError):
        config_mod.load(None, {"TARGET_DATA_DIR": "x"})
    with pytest.raises(config_mod.ConfigError, match="TARGET_REASON_MANIFEST"):
        config_mod.load(None, {"TARGET_CONTROL_DIR": "c", "TARGET_DATA_DIR": "d"})
    with pytest.raises(config_mod.ConfigError):
        _cfg(tmp_path, "http://x", TARGET_ORDER_RATE="4")
    import argparse
    p = argparse.ArgumentParser()
    config_mod.add_arguments(p)
    args = p.parse_args(["--rest-url", "http://127.0.0.1:7", "--order-rate", "6", "--control-dir", "c",
                         "--data-dir", "d", "--reason-manifest", str(default_manifest())])
    cfg = config_mod.load(args, {"OKX_REST_URL": "http://ignored"})
    assert cfg.rest_url == "http://127.0.0.1:7" and cfg.order_rate == 6.0
    assert "demo-secret" not in json.dumps(cfg.public_dict())


def test_provenance_never_unknown() -> None:
    p = provenance("", "", "")
    assert all(v and v != "unknown" for v in p.values())
    assert p["git_commit"] == "not-applicable:package-not-in-a-git-checkout" or len(p["git_commit"]) == 40
    assert provenance("abc", "img:1", "b7") == {"git_commit": "abc", "docker_image_tag": "img:1", "build_id": "b7"}


def test_unclean_marker_marks_previous_run_crashed(tmp_path: Path) -> None:
    ops = OpsFiles(tmp_path / "c", tmp_path / "d")
    assert ops.begin("run_a") is None
    ops.write_manifest({"run_id": "run_a", "status": "running"})
    # run_a never called end(): killed
    ops2 = OpsFiles(tmp_path / "c", tmp_path / "d")
    unclean = ops2.begin("run_b")
    assert unclean is not None and unclean["run_id"] == "run_a"
    prev = json.loads((tmp_path / "d" / "run_manifest.previous.json").read_text())
    assert prev["status"] == "crashed" and prev["run_id"] == "run_a"
    ops2.end()
    assert OpsFiles(tmp_path / "c", tmp_path / "d").begin("run_c") is None


def test_atomic_write_never_exposes_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_json(target, {"n": 0})
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads(target.read_text())
            except ValueError as exc:
                bad.append(str(exc))

    th = threading.Thread(target=reader)
    th.start()
    for i in range(200):
        atomic_write_json(target, {"n": i, "pad": "x" * 2000})
    stop.set()
    th.join()
    assert bad == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_intent_body_is_okx_shaped() -> None:
    it = Intent("cdx1", INSTS[0], "buy", 1.0, False, "open")
    assert it.body() == {"instId": INSTS[0], "tdMode": "cross", "clOrdId": "cdx1", "side": "buy",
                         "ordType": "market", "sz": "1", "reduceOnly": False}


def test_wal_write_error_keeps_records_queued_and_unsent(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(wal_mod.os, "fsync", failing_fsync)

    async def main() -> None:
        w = Wal(tmp_path / "wal.jsonl", 8)
        w.start(asyncio.get_running_loop())
        fut = w.enqueue({"t": "intent", "clOrdId": "e1"})
        await asyncio.sleep(0.05)
        assert not fut.done() and w.write_errors >= 1 and w.depth == 1, "not durable: must not be released"
        await asyncio.wait_for(fut, 2)  # the disk recovers: the record becomes durable
        assert w.write_errors == 2 and w.depth == 0
        w.close()
    _run(main())


# -- public feed: gap detection, dedupe, lag --------------------------------------------------------

class _FakeWs:
    """Records what the feed sends back (re-subscriptions)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send_json(self, obj: dict) -> None:
        self.sent.append(obj)


def _feed(tmp_path: Path):
    from okx_demo_api.venue_client import PublicFeed
    gaps: list[tuple[str, dict]] = []
    feed = PublicFeed(_cfg(tmp_path, "http://127.0.0.1:9"), Telemetry(),
                      lambda i, d: gaps.append(("book", d)), lambda i, d: gaps.append(("trades", d)),
                      lambda *a, **k: None)
    return feed, gaps


def _book(inst: str, seq: int, prev: int, ts: int, action: str = "update") -> str:
    return json.dumps({"arg": {"channel": "books", "instId": inst}, "action": action,
                       "data": [{"asks": [], "bids": [], "ts": str(ts), "seqId": seq, "prevSeqId": prev}]})


def _trade(inst: str, tid: int, ts: int, count: int = 1) -> str:
    return json.dumps({"arg": {"channel": "trades", "instId": inst},
                       "data": [{"instId": inst, "tradeId": str(tid), "px": "1", "sz": "1", "side": "buy",
                                 "source": "0", "count": str(count), "ts": str(ts)}]})


def test_feed_detects_book_gap_and_resubscribes(tmp_path: Path) -> None:
    feed, gaps = _feed(tmp_path)
    ws = _FakeWs()
    now = int(time.time() * 1000)

    async def main() -> None:
        await feed._handle_text(ws, _book(INSTS[0], 100, -1, now, "snapshot"))
        await feed._handle_text(ws, _book(INSTS[0], 101, 100, now))
        assert feed.book_synced[INSTS[0]] and not gaps
        await feed._handle_text(ws, _book(INSTS[0], 107, 106, now))  # 102..106 skipped
        assert gaps == [("book", {"instId": INSTS[0], "expected_prevSeqId": 101, "prevSeqId": 106, "seqId": 107})]
        assert not feed.book_synced[INSTS[0]]
        assert [m["op"] for m in ws.sent] == ["unsubscribe", "subscribe"]
        await feed._handle_text(ws, _book(INSTS[0], 108, 107, now))  # ignored until the snapshot
        assert not feed.book_synced[INSTS[0]] and len(gaps) == 1
        await feed._handle_text(ws, _book(INSTS[0], 200, -1, now, "snapshot"))
        assert feed.book_synced[INSTS[0]]
    _run(main())


def test_feed_trades_gap_and_no_duplicate_processing(tmp_path: Path) -> None:
    """OKX's rule: tradeId - count is the previous tradeId; aggregation skips ids without a gap."""
    feed, gaps = _feed(tmp_path)
    ws = _FakeWs()
    now = int(time.time() * 1000)

    async def main() -> None:
        # (tradeId, count): aggregated, a lost push, a late push, continuing, a duplicate push
        for tid, count in ((5000, 1), (5003, 3), (5008, 2), (5006, 3), (5010, 2), (5010, 2)):
            await feed._handle_text(ws, _trade(INSTS[1], tid, now, count))
    _run(main())
    assert [g[1]["tradeId"] for g in gaps] == [5008, 5006, 5010]
    assert feed.trades_processed == 4 and feed.trades_dropped == 2  # 5006 (late) and the repeated 5010


class _FakePrivateWs:
    """Feeds PrivateSession._read a scripted sequence of frames, then a close with ``code``."""

    def __init__(self, texts: list[dict], code: int) -> None:
        self._msgs = [aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, json.dumps(t), None) for t in texts]
        self._msgs.append(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSE, code, ""))
        self.close_code = code

    async def receive(self) -> aiohttp.WSMessage:
        return self._msgs.pop(0)


@pytest.mark.parametrize("texts, code, counted", [
    ([], 4007, 1),                                                               # API key updated or deleted
    ([{"event": "notice", "code": "64008", "msg": "service upgrade"}], 1012, 1),  # notice, then the close
    ([], 1006, 0),                                                               # a lost connection
])
def test_private_session_maps_okx_terminations_to_10028(tmp_path: Path, texts: list[dict], code: int,
                                                        counted: int) -> None:
    from okx_demo_api.venue_client import PrivateSession

    seen: list[dict] = []
    sess = PrivateSession(_cfg(tmp_path, "http://127.0.0.1:9"), Telemetry(), lambda d: None, seen.append,
                          lambda *a, **k: None)
    terminated = _run(sess._read(_FakePrivateWs(texts, code), asyncio.Event()))  # type: ignore[arg-type]
    assert terminated is bool(counted) and sess.terminations == counted
    assert [s["code"] for s in seen] == ["10028"] * counted


def test_feed_lag_is_the_worse_of_data_age_and_silence(tmp_path: Path) -> None:
    feed, _ = _feed(tmp_path)
    ws = _FakeWs()
    now = int(time.time() * 1000)

    async def main() -> None:
        for inst in INSTS:
            await feed._handle_text(ws, _book(inst, 1, -1, now - 3000, "snapshot"))  # 3 s old data
            await feed._handle_text(ws, _trade(inst, 1, now))
    assert feed.lag_ms() is None
    _run(main())
    assert 2900 <= feed.lag_ms() <= 3500  # delayed feed: data age
    for k in feed.stream_ts:
        feed.stream_ts[k] = int(time.time() * 1000)  # fresh timestamps...
        feed.stream_rx_mono[k] = time.monotonic() - 2.0  # ...but nothing arrived for 2 s: silence
    assert 1900 <= feed.lag_ms() <= 2500


# -- /status payload built from App state (no network: the App is constructed, not run) --------------

def _app(tmp_path: Path, **env: str):
    from okx_demo_api.app import App
    return App(_cfg(tmp_path, "http://127.0.0.1:9", **env))


def _problems(payload: dict) -> list[str]:
    from status_checks import sample_problems
    return sample_problems([payload])


def test_status_payload_valid_in_every_state(tmp_path: Path) -> None:
    from okx_demo_api import status
    app = _app(tmp_path)
    st = status.build(app)  # start-up: nothing reachable yet
    assert _problems(st) == []
    assert st["trading_mode"] == "ReduceOnly" and st["mode_reasons"] == ["REDUCEONLY_INPUT_MISSING_OR_STALE"]
    assert st["owner_view"]["primary_owner_reason_code"] == "REDUCEONLY_INPUT_MISSING_OR_STALE"
    app.startup_done = True
    st = status.build(app)
    assert st["trading_mode"] == "Active" and _problems(st) == []
    assert st["owner_view"] == {"primary_owner_reason_code": "STATE_PAPER_MODE",
                                "owner_message": app.manifest.display("STATE_PAPER_MODE"), "unblock": []}
    app.latch.set("SESSION_TERMINATION_RECONCILE_REQUIRED")
    app.session_unconfirmed = True
    st = status.build(app)
    assert _problems(st) == []
    assert st["mode_reasons"] == ["REDUCEONLY_OPEN_PERMISSION_LATCHED", "REDUCEONLY_RISKSTATE_DEGRADED",
                                  "REDUCEONLY_SESSION_KILL_UNCONFIRMED"]
    assert [u["condition"].split(":")[0] for u in st["owner_view"]["unblock"]] == [
        *st["mode_reasons"], "SESSION_TERMINATION_RECONCILE_REQUIRED"]
    app.emergency_since = time.monotonic()
    app.guard.ingest_unknown("NOT_A_TOKEN")
    st = status.build(app)
    assert st["trading_mode"] == "Kill" and st["mode_reasons"] == ["KILL_CORTEX_FORCE_KILL"] and _problems(st) == []
    assert st["open_permission_blocked_latch"] is True  # Kill with the latch still reported
    app.log.close()


def test_live_environment_is_never_active_without_a_certificate(tmp_path: Path) -> None:
    from okx_demo_api import status
    app = _app(tmp_path, TARGET_ENVIRONMENT="LIVE")
    app.startup_done = True
    st = status.build(app)
    assert st["trading_mode"] == "ReduceOnly" and st["mode_reasons"] == ["REDUCEONLY_F1_CERT_INVALID"]
    assert st["f1_cert_state"] == "MISSING" and st["f1_cert_expires_at"] is None and _problems(st) == []
    app.log.close()


def test_a_pending_clordid_answer_is_resolved_by_query_never_taken_as_rejected() -> None:
    """OKX keeps a clOrdId unique among pending orders only: sCode 51016 says an order with it exists
    (an earlier copy of the request got there first), so the leg goes to the resolver, and a two-leg
    order with such a leg is not declared naked before the resolver answers."""
    from okx_demo_api.dispatcher import Dispatcher

    class _Wal:
        def __init__(self) -> None:
            self.recs: list[dict] = []

        def enqueue(self, rec: dict) -> bool:
            self.recs.append(rec)
            return True

    wal, unknown, naked = _Wal(), [], []
    d = Dispatcher(wal, None, Inventory(INSTS), None, None, lambda: None, lambda *a, **k: None,  # type: ignore[arg-type]
                   naked.append, unknown.append, "run")
    legs = [Intent("cdA", INSTS[0], "buy", 1, False, "two_leg", "g1", "A"),
            Intent("cdB", INSTS[1], "sell", 1, False, "two_leg", "g1", "B")]
    d._handle(legs, RestResult(200, {"code": "2", "msg": "Some operations failed", "data": [
        {"ordId": "1", "clOrdId": "cdA", "sCode": "0", "sMsg": ""},
        {"ordId": "", "clOrdId": "cdB", "sCode": "51016", "sMsg": "Duplicated clOrdId"}]}))
    assert [u["clOrdId"] for u in unknown] == ["cdB"] and naked == []
    assert {r["clOrdId"]: r["result"] for r in wal.recs} == {"cdA": "acked", "cdB": "unknown"}
    assert d.counts["rejected"] == 0
    d.resolved(unknown[0], placed=True)  # the resolver found it: both legs placed, nothing naked
    assert naked == []


def test_trading_lease_fences_the_older_instance(tmp_path: Path) -> None:
    from okx_demo_api.lease import TradingLease

    old, new = TradingLease(tmp_path, "run-old"), TradingLease(tmp_path, "run-new")
    assert old.take() == 1 and old.held()
    assert new.take() == 2 and new.held()
    assert not old.held() and old.taken_over_by == "run-new"
    assert not old.held() and new.held()
