"""Every venue fault observed from the client side over loopback, and its FaultRecord (landed or not)."""
from __future__ import annotations

import json
import statistics
import time
from typing import Any

import pytest
import requests

from pytest_chaosdrill.venue import FaultRecord, VenueClient, VenueControlError, VenueServer
from pytest_chaosdrill.venue.probe import WsProbe

BTC = "BTC-USDT-SWAP"
ETH = "ETH-USDT-SWAP"
LOGIN = {"op": "login", "args": [{"apiKey": "k", "passphrase": "p", "timestamp": "1769440410", "sign": "s"}]}


def is_data(channel: str, inst: str = BTC):
    return lambda m: isinstance(m, dict) and m.get("arg") == {"channel": channel, "instId": inst} and "data" in m


def subscribe(url: str, *channels: str, inst: str = BTC) -> WsProbe:
    ws = WsProbe(url)
    ws.send({"op": "subscribe", "args": [{"channel": c, "instId": inst} for c in channels]})
    for c in channels:
        ws.wait_for(is_data(c, inst), 2, f"first {c} message")
    return ws


def login(url: str) -> WsProbe:
    ws = WsProbe(url)
    ws.send(LOGIN)
    assert ws.wait_for(lambda m: m.get("event") in ("login", "error"), 2)["code"] == "0"
    return ws


def test_book_gap_is_visible_and_lands_when_written(venue: VenueServer) -> None:
    with subscribe(venue.ws_public_url, "books") as ws:
        last = ws.wait_for(is_data("books"), 2)["data"][0]["seqId"]
        rec = venue.control.book_gap(BTC, skip=5)
        assert isinstance(rec, FaultRecord) and rec.kind == "book_gap" and not rec.landed
        while True:
            d = ws.wait_for(is_data("books"), 2)["data"][0]
            if d["prevSeqId"] != last:
                break
            last = d["seqId"]
        got_mono = ws.messages[-1][0]
        assert d["prevSeqId"] - last == 5 and d["seqId"] == d["prevSeqId"] + 1
        landed = venue.control.wait_landed(rec, 2)
        assert landed.detail["skipped_seq_ids"] == list(range(last + 1, last + 6))
        assert rec.requested_mono <= landed.effective_mono <= got_mono
        assert landed.effective_utc.endswith("Z")
        # One-shot: the stream continues contiguously after the gap.
        nxt = ws.wait_for(is_data("books"), 2)["data"][0]
        assert nxt["prevSeqId"] == d["seqId"]
        assert [e["id"] for e in venue.control.ledger() if e["type"] == "fault"] == [rec.id]


def test_fault_without_subscriber_does_not_land(venue: VenueServer) -> None:
    rec = venue.control.book_gap(ETH, skip=2)
    with pytest.raises(TimeoutError, match=r"book_gap.*did not take effect within 0.2s.*books update for ETH-USDT-SWAP"):
        venue.control.wait_landed(rec, 0.2)
    assert not venue.control.faults()[0].landed
    # Session termination with nobody logged in has nothing to act on either.
    st = venue.control.session_termination(refuse_reauth_s=0)
    with pytest.raises(TimeoutError, match="session_termination"):
        venue.control.wait_landed(st.id, 0.2)
    # Once someone subscribes, the pending book gap acts and lands.
    with subscribe(venue.ws_public_url, "books", inst=ETH):
        assert venue.control.wait_landed(rec, 2).landed


def next_trade(ws) -> tuple[int, int, int]:  # noqa: ANN001 - the subscribe() client
    """(tradeId, count, seqId) of the next trades push."""
    d = ws.wait_for(is_data("trades"), 2)["data"][0]
    return int(d["tradeId"]), int(d["count"]), int(d["seqId"])


def next_trade_id(ws) -> int:  # noqa: ANN001
    """The tradeId of the next trades push."""
    return next_trade(ws)[0]


def first_jump(ws, last: int) -> tuple[int, tuple[int, int, int]]:  # noqa: ANN001
    """Read trades until a push's tradeId - count is not the tradeId before it (OKX's continuity rule):
    (the tradeId before it, that push)."""
    while (t := next_trade(ws))[0] - t[1] == last:
        last = t[0]
    return last, t


def test_trades_gap_skip_and_reorder(venue: VenueServer) -> None:
    with subscribe(venue.ws_public_url, "trades") as ws:
        last, _, _ = next_trade(ws)
        rec = venue.control.trades_gap(BTC, mode="skip", count=3)
        last, (tid, count, _) = first_jump(ws, last)
        assert tid - count == last + 3  # three trade ids never arrived, beyond what count explains
        assert venue.control.wait_landed(rec, 2).detail["skipped_trade_ids"] == [str(last + i) for i in (1, 2, 3)]
        last = tid
        rec2 = venue.control.trades_gap(BTC, mode="reorder")
        seen = [next_trade_id(ws) for _ in range(4)]
        ids = [last] + seen
        drops = [i for i in range(1, len(ids)) if ids[i] < ids[i - 1]]
        assert len(drops) == 1, ids  # exactly one push with a lower id than the one before it
        k = drops[0]
        assert venue.control.wait_landed(rec2, 2).detail["sent_order"] == [str(ids[k - 1]), str(ids[k])]


def test_trades_repeat_and_skip_repeat(venue: VenueServer) -> None:
    """repeat: the next push is delivered count more times; skip_repeat: a lost push, then the next one twice."""
    with subscribe(venue.ws_public_url, "trades") as ws:
        last = next_trade(ws)
        rec = venue.control.trades_gap(BTC, mode="repeat", count=2)
        seen = [last] + [next_trade(ws) for _ in range(6)]
        k = next(i for i in range(1, len(seen)) if seen[i] == seen[i - 1]) - 1  # the push delivered again
        assert seen[k] == seen[k + 1] == seen[k + 2] and seen[k + 3][0] - seen[k + 3][1] == seen[k][0], seen
        assert seen[k + 3][2] == seen[k][2] + 1  # seqId: no push lost, the repeats carry the same seqId
        landed = venue.control.wait_landed(rec, 2).detail
        assert landed["repeated_trade_ids"] == [str(seen[k][0])] and landed["repeats_per_socket"] == 2
        rec2 = venue.control.trades_gap(BTC, mode="skip_repeat", count=3)
        before, jump = first_jump(ws, seen[-1][0])
        assert jump[0] - jump[1] == before + 3
        assert next_trade(ws) == jump  # the repeat: same tradeId, count and seqId
        after = next_trade(ws)
        assert after[0] - after[1] == jump[0]
        d = venue.control.wait_landed(rec2, 2).detail
        assert d["skipped_trade_ids"] == [str(before + i) for i in (1, 2, 3)]
        assert d["repeated_trade_ids"] == [str(jump[0])] and d["repeats_per_socket"] == 1 and d["sockets"] == 1


def test_freeze_is_silence_on_a_live_socket(venue: VenueServer) -> None:
    with subscribe(venue.ws_public_url, "books", "trades") as ws:
        rec = venue.control.freeze()
        landed = venue.control.wait_landed(rec, 2)
        assert landed.detail["withheld_messages"] >= 1
        ws.collect(0.05)  # drain what was already queued before the freeze landed
        quiet = ws.collect(0.4)
        assert [m for m in quiet if isinstance(m, dict) and "data" in m] == []
        ws.send("ping")
        assert ws.wait_for(lambda m: m == "pong", 1) == "pong" and not ws.closed
        last_seq = [m for _, m in ws.messages if '"books"' in m and '"data"' in m][-1]
        last_seq_id = json.loads(last_seq)["data"][0]["seqId"]
        venue.control.clear("freeze")
        d = ws.wait_for(is_data("books"), 2)["data"][0]
        # The frozen feed did not advance: it resumes without a gap.
        assert d["prevSeqId"] == last_seq_id
        assert not [r for r in venue.control.faults() if r.kind == "freeze"][0].active


def test_freeze_of_one_channel_leaves_the_other_flowing(venue: VenueServer) -> None:
    with subscribe(venue.ws_public_url, "books", "trades") as ws:
        rec = venue.control.freeze(channels=["trades"])
        venue.control.wait_landed(rec, 2)
        ws.collect(0.05)
        msgs = ws.collect(0.3)
        assert not [m for m in msgs if is_data("trades")(m)]
        assert len([m for m in msgs if is_data("books")(m)]) >= 3


def _delays_ms(ws: WsProbe, n: int) -> list[float]:
    out = []
    while len(out) < n:
        m = ws.wait_for(is_data("books"), 3)
        out.append(time.time() * 1000 - int(m["data"][0]["ts"]))
    return out


def test_lag_delays_every_public_message_in_order(venue: VenueServer) -> None:
    with subscribe(venue.ws_public_url, "books") as ws:
        base = statistics.median(_delays_ms(ws, 10))
        rec = venue.control.lag(250)
        venue.control.wait_landed(rec, 2)
        # Skip messages queued before the lag; then every message is ~250 ms late, order kept.
        ws.wait_for(lambda m: is_data("books")(m) and time.time() * 1000 - int(m["data"][0]["ts"]) > 200, 2)
        seqs, delays = [], []
        while len(delays) < 10:
            m = ws.wait_for(is_data("books"), 3)
            delays.append(time.time() * 1000 - int(m["data"][0]["ts"]))
            seqs.append((m["data"][0]["prevSeqId"], m["data"][0]["seqId"]))
        assert all(250 - 5 <= x <= 250 + 150 for x in delays), (base, delays)
        assert all(a[1] == b[0] for a, b in zip(seqs, seqs[1:]))
        assert rec.requested_mono < venue.control.faults()[0].effective_mono
        venue.control.clear()
        ws.wait_for(lambda m: is_data("books")(m) and time.time() * 1000 - int(m["data"][0]["ts"]) < 100, 3)


def test_session_termination_key_revoked_close_4007_refusal_then_allowed(venue: VenueServer) -> None:
    a, b = login(venue.ws_private_url), login(venue.ws_private_url)
    try:
        rec = venue.control.session_termination(refuse_reauth_s=None)
        for ws in (a, b):
            assert ws.wait_closed(2) == 4007  # OKX: "API key has been updated or deleted. Please reconnect."
            assert not [m for _, m in ws.messages if '"error"' in m]  # no invented error code before it
        landed = venue.control.wait_landed(rec, 2)
        assert sorted(landed.detail["closed_sessions"]) == sorted(landed.detail["sessions"]) and len(landed.detail["sessions"]) == 2
        assert landed.detail["close_code"] == 4007
        with WsProbe(venue.ws_private_url) as c:
            c.send(dict(LOGIN, id="r1"))
            err = c.wait_for(lambda m: m.get("event") == "error", 2)
            assert (err["code"], err["id"]) == ("60005", "r1") and c.wait_closed(2) == 4001
        venue.control.allow_reauth()
        login(venue.ws_private_url).close()
        events = [s["event"] for s in venue.control.witness().sessions()]
        assert events.count("terminated") == 2 and events.count("login_refused") == 1 and events.count("login") == 3
    finally:
        a.close()
        b.close()


def test_session_termination_service_upgrade_notice_64008_then_close(venue: VenueServer) -> None:
    with login(venue.ws_private_url) as a:
        rec = venue.control.session_termination(refuse_reauth_s=0, mechanism="service_upgrade")
        notice = a.wait_for(lambda m: m.get("event") == "notice", 2)
        assert notice["code"] == "64008" and "service upgrade" in notice["msg"]
        assert a.wait_closed(2) == 1012
        assert venue.control.wait_landed(rec, 2).detail["notice"] == "64008"
    login(venue.ws_private_url).close()  # refuse_reauth_s=0: logins are taken at once


def test_reauth_refusal_expires_by_itself(venue: VenueServer) -> None:
    with login(venue.ws_private_url) as a:
        rec = venue.control.session_termination(refuse_reauth_s=0.3)
        assert a.wait_closed(2) == 4007
    deadline = time.monotonic() + 3
    while True:
        with WsProbe(venue.ws_private_url) as c:
            c.send(LOGIN)
            ans = c.wait_for(lambda m: m.get("event") in ("login", "error"), 2)
        if ans["code"] == "0":
            break
        assert ans["code"] == "60005" and time.monotonic() < deadline
    assert time.monotonic() - rec.requested_mono >= 0.3


def test_partial_fill_fills_leg_a_rejects_leg_b(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.partial_fill()
    # A batch whose leg A is itself rejected (reduceOnly while flat) is not a partial fill: the fault waits.
    bad_a = [{"instId": BTC, "tdMode": "cross", "clOrdId": "qa", "side": "sell", "ordType": "market", "sz": "1",
              "reduceOnly": True},
             {"instId": ETH, "tdMode": "cross", "clOrdId": "qb", "side": "buy", "ordType": "market", "sz": "1"}]
    first = http.post(venue.rest_url + "/api/v5/trade/batch-orders", json=bad_a, timeout=5).json()
    assert [d["sCode"] for d in first["data"]] == ["51169", "0"]
    assert not venue.control.faults()[0].landed
    http.post(venue.rest_url + "/api/v5/trade/order", json=dict(bad_a[1], side="sell", clOrdId="qc"), timeout=5)
    # A batch whose leg A fills but leaves the venue flat: nothing to contain, the fault waits.
    http.post(venue.rest_url + "/api/v5/trade/order", json=dict(bad_a[1], instId=BTC, clOrdId="qd"), timeout=5)
    closing = [{"instId": BTC, "tdMode": "cross", "clOrdId": "ra", "side": "sell", "ordType": "market", "sz": "1"},
               {"instId": ETH, "tdMode": "cross", "clOrdId": "rb", "side": "buy", "ordType": "market", "sz": "1"}]
    second = http.post(venue.rest_url + "/api/v5/trade/batch-orders", json=closing, timeout=5).json()
    assert [d["sCode"] for d in second["data"]] == ["0", "0"]
    assert not venue.control.faults()[0].landed
    http.post(venue.rest_url + "/api/v5/trade/order", json=dict(bad_a[1], side="sell", clOrdId="qe"), timeout=5)
    legs = [{"instId": BTC, "tdMode": "cross", "clOrdId": "pa", "side": "buy", "ordType": "market", "sz": "2"},
            {"instId": ETH, "tdMode": "cross", "clOrdId": "pb", "side": "sell", "ordType": "market", "sz": "2"}]
    ans = http.post(venue.rest_url + "/api/v5/trade/batch-orders", json=legs, timeout=5).json()
    assert ans["code"] == "2"
    assert [d["sCode"] for d in ans["data"]] == ["0", "51008"]
    positions = {p["instId"]: p["pos"] for p in http.get(venue.rest_url + "/api/v5/account/positions").json()["data"]}
    assert positions == {BTC: "2"}
    landed = venue.control.wait_landed(rec, 1)
    assert landed.detail["legB"]["sCode"] == "51008"
    orders = [o for o in venue.control.witness().orders() if o["clOrdId"] in ("pa", "pb")]
    assert [(o["leg"], o["accepted"], o["effect"]) for o in orders] == [("A", True, "open"), ("B", False, "none")]
    # One-shot: the next two-leg batch is answered normally.
    legs2 = [dict(legs[0], clOrdId="pc"), dict(legs[1], clOrdId="pd")]
    assert http.post(venue.rest_url + "/api/v5/trade/batch-orders", json=legs2, timeout=5).json()["code"] == "0"


def test_rate_limit_serves_exactly_n_429s(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.rate_limit(requests=5)
    statuses = [http.get(venue.rest_url + "/api/v5/public/time", timeout=5) for _ in range(8)]
    assert [r.status_code for r in statuses] == [429] * 5 + [200] * 3
    assert statuses[0].json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
    landed = venue.control.wait_landed(rec, 1)
    assert landed.detail["served"] == 5 and not landed.active
    assert [e["status"] for e in venue.control.ledger() if e["type"] == "request"] == [429] * 5 + [200] * 3
    assert venue.control.state()["counters"]["http_429"] == 5


def test_rate_limit_for_seconds(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.rate_limit(seconds=0.3)
    assert http.get(venue.rest_url + "/api/v5/public/time", timeout=5).status_code == 429
    deadline = time.monotonic() + 3
    while http.get(venue.rest_url + "/api/v5/public/time", timeout=5).status_code == 429:
        assert time.monotonic() < deadline
    assert time.monotonic() - rec.requested_mono >= 0.3
    assert venue.control.wait_landed(rec, 1).detail["served"] >= 1


def test_http_5xx_burst(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.http_5xx(requests=3)
    order = {"instId": BTC, "tdMode": "cross", "clOrdId": "x1", "side": "buy", "ordType": "market", "sz": "1"}
    codes = [http.post(venue.rest_url + "/api/v5/trade/order", json=order, timeout=5) for _ in range(4)]
    assert [r.status_code for r in codes] == [503, 503, 503, 200]
    assert codes[0].json()["code"] == "50001"
    assert venue.control.wait_landed(rec, 1).detail["served"] == 3
    # The 503s never reached the matching engine: exactly one order attempt.
    assert len(venue.control.witness().orders()) == 1


def test_rest_latency_and_clear(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.rest_latency(200)
    t0 = time.monotonic()
    assert http.get(venue.rest_url + "/api/v5/public/time", timeout=5).status_code == 200
    assert 0.2 <= time.monotonic() - t0 < 0.2 + 0.5
    assert venue.control.wait_landed(rec, 1).detail["delayed_requests"] == 1
    cleared = venue.control.clear("rest_latency")
    assert cleared.detail["cleared"] == [rec.id]
    t0 = time.monotonic()
    http.get(venue.rest_url + "/api/v5/public/time", timeout=5)
    assert time.monotonic() - t0 < 0.15


def test_recon_hold_holds_only_reconciliation_answers(venue: VenueServer, http: requests.Session) -> None:
    rec = venue.control.recon_hold(150)
    t0 = time.monotonic()
    assert http.get(venue.rest_url + "/api/v5/public/time", timeout=5).status_code == 200
    assert time.monotonic() - t0 < 0.12  # not a reconciliation read: not held
    for path in ("/api/v5/account/positions", "/api/v5/trade/orders-pending"):
        t0 = time.monotonic()
        http.get(venue.rest_url + path, timeout=5)
        assert 0.15 <= time.monotonic() - t0 < 0.15 + 0.5, path
    landed = venue.control.wait_landed(rec, 1)
    assert landed.detail["held_reads"] == 2
    reads = [e for e in venue.control.ledger() if e.get("recon_read")]
    assert len(reads) == 2 and all(e["held_ms"] >= 150 and e["mono"] - e["received_mono"] >= 0.15 for e in reads)
    venue.control.clear("recon_hold")
    t0 = time.monotonic()
    http.get(venue.rest_url + "/api/v5/account/positions", timeout=5)
    assert time.monotonic() - t0 < 0.12


def test_recon_hold_reports_the_reads_it_holds_right_now(venue: VenueServer, http: requests.Session) -> None:
    import threading

    rec = venue.control.recon_hold(400)
    t0 = time.monotonic()
    call = threading.Thread(target=lambda: http.get(venue.rest_url + "/api/v5/account/positions", timeout=5))
    call.start()
    seen = None
    while seen is None and time.monotonic() < t0 + 0.35:  # polled as an aligned schedule step polls it
        d = next(f for f in venue.control.faults() if f.id == rec.id).detail
        seen = d if d.get("holding") else None
    call.join()
    assert seen is not None and seen["holding"] == 1 and seen["first_held_path"] == "/api/v5/account/positions"
    assert t0 <= seen["holding_since_mono"] < time.monotonic()
    after = next(f for f in venue.control.faults() if f.id == rec.id).detail
    assert after["holding"] == 0 and "holding_since_mono" not in after and after["held_reads"] == 1
    venue.control.clear("recon_hold")


def test_clearing_rest_latency_releases_held_requests(venue: VenueServer) -> None:
    import threading

    venue.control.rest_latency(10_000)
    done: list[float] = []

    def call() -> None:
        requests.get(venue.rest_url + "/api/v5/public/time", timeout=15)
        done.append(time.monotonic())

    before = venue.control.state()["counters"]["rest_requests"]
    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 5
    while venue.control.state()["counters"]["rest_requests"] == before and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the venue's own counter: the request has arrived and is being held
    assert venue.control.state()["counters"]["rest_requests"] == before + 1 and not done
    cleared_at = time.monotonic()
    venue.control.clear("rest_latency")
    t.join(10)
    assert done and done[0] - cleared_at < 1.0  # released at once, not after the 10 s delay


def test_clear_by_kind_leaves_other_faults(venue: VenueServer) -> None:
    lag = venue.control.lag(100)
    rl = venue.control.rate_limit()
    venue.control.clear("lag")
    active = {f["kind"] for f in venue.control.state()["faults_active"]}
    assert active == {"rate_limit"}
    venue.control.clear()
    assert venue.control.state()["faults_active"] == []
    assert {r.id for r in venue.control.faults()} >= {lag.id, rl.id}


def test_http_control_client_drives_the_same_faults(venue: VenueServer, http: requests.Session) -> None:
    with VenueClient(venue.base_url) as client, subscribe(venue.ws_public_url, "books") as ws:
        last = [ws.wait_for(is_data("books"), 2)["data"][0]["seqId"]]
        rec = client.book_gap(BTC, skip=3)
        assert rec.kind == "book_gap" and rec.params == {"instId": BTC, "skip": 3}

        def gap(m: Any) -> bool:
            if not is_data("books")(m):
                return False
            d, prev = m["data"][0], last[0]
            last[0] = d["seqId"]
            return d["prevSeqId"] != prev
        assert ws.wait_for(gap, 2)["data"][0]["prevSeqId"] - 3 >= 1000
        assert client.wait_landed(rec, 2).detail["skipped_seq_ids"][0] >= 1000
        rl = client.rate_limit(requests=2)
        assert [http.get(venue.rest_url + "/api/v5/account/positions").status_code for _ in range(3)] == [429, 429, 200]
        assert client.wait_landed(rl.id, 1).detail["served"] == 2
        assert [f.id for f in client.faults()] == [rec.id, rl.id]
        led = client.witness()
        assert len(led.recon_reads()) == 3 and [e["status"] for e in led.recon_reads()] == [429, 429, 200]
        assert client.ledger(since_seq=led.entries()[-1]["seq"]) == []
        assert client.state()["counters"]["http_429"] == 2
        with pytest.raises(VenueControlError, match="HTTP 400.*skip must be >= 1"):
            client.book_gap(skip=0)
        with pytest.raises(VenueControlError, match="HTTP 400.*mode must be"):
            client.trades_gap(mode="shuffle")
        with pytest.raises(TimeoutError, match="partial_fill"):
            client.wait_landed(client.partial_fill(), 0.1)
        client.reset()
        assert client.faults() == [] and client.ledger() == []
        with pytest.raises(KeyError):
            client.wait_landed(rec, 0.1)


def test_in_process_control_rejects_bad_parameters(venue: VenueServer) -> None:
    bad: list[tuple[str, dict[str, Any]]] = [("lag", {"ms": 0}), ("freeze", {"channels": ["candles"]}),
                                              ("book_gap", {"inst_id": "NOPE"}), ("rest_latency", {"ms": "5"}),
                                              ("clock_skew", {"offset_s": 0}), ("clock_skew", {"offset_s": "90"}),
                                              ("clock_skew", {"offset_s": 90, "seconds": -1})]
    for name, kwargs in bad:
        with pytest.raises(ValueError):
            getattr(venue.control, name)(**kwargs)


def test_clock_skew_moves_public_time_and_every_stamp_then_ends_by_itself(venue: VenueServer,
                                                                          http: requests.Session) -> None:
    def venue_ms() -> int:
        return int(http.get(venue.rest_url + "/api/v5/public/time", timeout=5).json()["data"][0]["ts"])

    assert abs(venue_ms() - time.time() * 1000) < 2_000
    rec = venue.control.clock_skew(offset_s=-120, seconds=0.5)
    assert abs(venue_ms() - (time.time() - 120) * 1000) < 2_000
    ticker = http.get(venue.rest_url + "/api/v5/market/ticker", params={"instId": BTC}, timeout=5).json()["data"][0]
    assert abs(int(ticker["ts"]) - (time.time() - 120) * 1000) < 2_000  # the stamps follow the venue's clock
    deadline = time.monotonic() + 3
    while abs(venue_ms() - time.time() * 1000) > 2_000:  # `seconds` over: back on the host's clock
        assert time.monotonic() < deadline
    # this venue holds no key, so it refuses nothing: the skew ran its course without landing
    assert not next(r for r in venue.control.faults() if r.id == rec.id).landed
