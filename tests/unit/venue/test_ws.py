"""Venue WebSockets over loopback with websocket-client: books/trades streams, private login and orders."""
from __future__ import annotations

import zlib
from typing import Iterator

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.probe import WsProbe

BTC = "BTC-USDT-SWAP"
LOGIN = {"op": "login", "args": [{"apiKey": "k", "passphrase": "p", "timestamp": "1769440410", "sign": "s"}]}


@pytest.fixture(scope="module")
def venue() -> Iterator[VenueServer]:
    with VenueServer(port=0, seed=3, tick_ms=20) as v:
        yield v


def data_of(channel: str):
    return lambda m: isinstance(m, dict) and m.get("arg", {}).get("channel") == channel and "data" in m


def checksum(bids: dict[str, str], asks: dict[str, str]) -> int:
    b = sorted(bids.items(), key=lambda kv: -float(kv[0]))
    a = sorted(asks.items(), key=lambda kv: float(kv[0]))
    parts = []
    for i in range(25):
        if i < len(b):
            parts.append(f"{b[i][0]}:{b[i][1]}")
        if i < len(a):
            parts.append(f"{a[i][0]}:{a[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def test_books_snapshot_then_contiguous_updates_that_rebuild_the_book(venue: VenueServer) -> None:
    with WsProbe(venue.ws_public_url) as ws:
        ws.send({"op": "subscribe", "args": [{"channel": "books", "instId": BTC}]})
        ack = ws.wait_for(lambda m: m.get("event") == "subscribe", 2)
        assert ack["arg"] == {"channel": "books", "instId": BTC}
        snap = ws.wait_for(data_of("books"), 2)
        assert snap["action"] == "snapshot" and snap["data"][0]["prevSeqId"] == -1
        assert len(snap["data"][0]["bids"]) == len(snap["data"][0]["asks"]) == 400  # OKX's snapshot depth
        book = {"bids": {p: s for p, s, *_ in snap["data"][0]["bids"]}, "asks": {p: s for p, s, *_ in snap["data"][0]["asks"]}}
        assert snap["data"][0]["checksum"] == checksum(book["bids"], book["asks"])
        last = snap["data"][0]["seqId"]
        for _ in range(15):
            upd = ws.wait_for(data_of("books"), 2)
            d = upd["data"][0]
            assert upd["action"] == "update" and d["prevSeqId"] == last and d["seqId"] == last + 1
            # Current levels come first, best first: bids[0]/asks[0] is the best price.
            live_bids = [float(px) for px, sz, *_ in d["bids"] if sz != "0"]
            live_asks = [float(px) for px, sz, *_ in d["asks"] if sz != "0"]
            assert [float(px) for px, *_ in d["bids"][:len(live_bids)]] == live_bids == sorted(live_bids, reverse=True)
            assert [float(px) for px, *_ in d["asks"][:len(live_asks)]] == live_asks == sorted(live_asks)
            for side in ("bids", "asks"):
                for px, sz, *_ in d[side]:
                    if sz == "0":
                        book[side].pop(px, None)
                    else:
                        book[side][px] = sz
            assert d["checksum"] == checksum(book["bids"], book["asks"])
            assert max(map(float, book["bids"])) == live_bids[0] < live_asks[0] == min(map(float, book["asks"]))
            last = d["seqId"]
        # Re-subscribing gives a fresh snapshot.
        ws.send({"op": "unsubscribe", "args": [{"channel": "books", "instId": BTC}]})
        ws.wait_for(lambda m: m.get("event") == "unsubscribe", 2)
        ws.send({"op": "subscribe", "args": [{"channel": "books", "instId": BTC}]})
        snap2 = ws.wait_for(lambda m: data_of("books")(m) and m["action"] == "snapshot", 2)
        assert snap2["data"][0]["prevSeqId"] == -1 and snap2["data"][0]["seqId"] >= last


def test_trades_are_aggregated_per_taker_order_as_on_okx(venue: VenueServer) -> None:
    """One push per taker order: tradeId is the last match, count the matches, so tradeId - count is the
    previous push's tradeId (ids skip by design); seqId numbers the pushes."""
    with WsProbe(venue.ws_public_url) as ws:
        ws.send({"op": "subscribe", "args": [{"channel": "trades", "instId": BTC}]})
        pushes = []
        while len(pushes) < 20:
            m = ws.wait_for(data_of("trades"), 2)
            for t in m["data"]:
                assert t["instId"] == BTC and t["side"] in ("buy", "sell") and float(t["px"]) > 0 and t["source"] == "0"
                pushes.append((int(t["tradeId"]), int(t["count"]), int(t["seqId"])))
        for (a, _, sa), (b, count, sb) in zip(pushes, pushes[1:]):
            assert b - count == a and sb == sa + 1 and count >= 1
        assert any(c > 1 for _, c, _ in pushes)  # aggregation happens: ids do skip


def test_public_errors_and_text_ping(venue: VenueServer) -> None:
    with WsProbe(venue.ws_public_url) as ws:
        ws.send({"id": "q1", "op": "subscribe", "args": [{"channel": "candles", "instId": BTC}]})
        err = ws.wait_for(lambda m: m.get("event") == "error", 2)
        assert err["code"] == "60018" and err["id"] == "q1" and err["connId"]
        ws.send({"op": "subscribe", "args": [{"channel": "books", "instId": "DOGE-USDT-SWAP"}]})
        assert ws.wait_for(lambda m: m.get("event") == "error", 2)["code"] == "60018"
        ws.send("not json")
        assert ws.wait_for(lambda m: m.get("event") == "error", 2)["code"] == "60012"
        ws.send("ping")
        assert ws.wait_for(lambda m: m == "pong", 2) == "pong"


def test_private_login_then_order_state_changes_are_pushed(venue: VenueServer) -> None:
    with WsProbe(venue.ws_private_url) as ws, requests.Session() as http:
        ws.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]})
        assert ws.wait_for(lambda m: m.get("event") == "error", 2)["code"] == "60011"
        ws.send(LOGIN)
        assert ws.wait_for(lambda m: m.get("event") == "login", 2)["code"] == "0"
        ws.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]})
        ws.wait_for(lambda m: m.get("event") == "subscribe", 2)
        bid = float(http.get(venue.rest_url + "/api/v5/market/ticker", params={"instId": BTC}).json()["data"][0]["bidPx"])
        r = http.post(venue.rest_url + "/api/v5/trade/order", json={
            "instId": BTC, "tdMode": "cross", "clOrdId": "ws1", "side": "buy", "ordType": "limit",
            "px": str(bid - 200), "sz": "1"}).json()
        ord_id = r["data"][0]["ordId"]
        http.post(venue.rest_url + "/api/v5/trade/cancel-order", json={"instId": BTC, "ordId": ord_id})
        http.post(venue.rest_url + "/api/v5/trade/order", json={
            "instId": BTC, "tdMode": "cross", "clOrdId": "ws2", "side": "sell", "ordType": "market", "sz": "1"})
        states = []
        while len(states) < 4:
            m = ws.wait_for(data_of("orders"), 2)
            states += [(d["clOrdId"], d["state"]) for d in m["data"]]
        assert states == [("ws1", "live"), ("ws1", "canceled"), ("ws2", "live"), ("ws2", "filled")]
        filled = m["data"][-1]
        assert filled["accFillSz"] == "1" and filled["fillSz"] == "1" and float(filled["avgPx"]) > 0
        assert filled["tradeId"] and filled["fillPx"] == filled["avgPx"] and filled["execType"] == "T" and filled["fillTime"]
        sessions = venue.control.witness().sessions()
        assert any(s["event"] == "login" for s in sessions)


def _books_by_seq(urls: list[str], n: int) -> list[dict[int, tuple[str, str]]]:
    """seqId -> (best bid, best ask) from several venues, read side by side so their seqIds overlap."""
    probes = [WsProbe(u) for u in urls]
    out: list[dict[int, tuple[str, str]]] = [{} for _ in urls]
    try:
        for p in probes:
            p.send({"op": "subscribe", "args": [{"channel": "books", "instId": BTC}]})
        while min(len(o) for o in out) < n:
            for p, o in zip(probes, out):
                d = p.wait_for(data_of("books"), 2)["data"][0]
                o[d["seqId"]] = (d["bids"][0][0], d["asks"][0][0])
    finally:
        for p in probes:
            p.close()
    return out


def test_same_seed_gives_the_same_book_for_the_same_seqid() -> None:
    with VenueServer(port=0, seed=21, tick_ms=10) as a, VenueServer(port=0, seed=21, tick_ms=10) as b, \
            VenueServer(port=0, seed=22, tick_ms=10) as c:
        va, vb, vc = _books_by_seq([a.ws_public_url, b.ws_public_url, c.ws_public_url], 40)
    common = sorted(set(va) & set(vb))
    assert len(common) >= 10, (sorted(va), sorted(vb))
    assert [va[s] for s in common] == [vb[s] for s in common]
    other = sorted(set(va) & set(vc))
    assert [va[s] for s in other] != [vc[s] for s in other]


def test_ws_trading_ops_go_through_the_order_engine_and_the_ledger(venue: VenueServer) -> None:
    with WsProbe(venue.ws_private_url) as ws:
        ws.send({"id": "o0", "op": "order", "args": [{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1"}]})
        assert ws.wait_for(lambda m: m.get("id") == "o0", 2)["code"] == "60011"  # not logged in: the id is echoed
        ws.send(LOGIN)
        ws.wait_for(lambda m: m.get("event") == "login", 2)
        ws.send({"op": "order", "args": [{"instId": BTC, "side": "buy", "ordType": "market", "sz": "1"}]})
        assert ws.wait_for(lambda m: m.get("event") == "error", 2)["code"] == "60013"  # an op needs its id
        bid = float(ws_book_bid(venue))
        ws.send({"id": "b1", "op": "batch-orders", "args": [
            {"instId": BTC, "tdMode": "cross", "clOrdId": "wsA", "side": "buy", "ordType": "limit", "px": str(bid - 300), "sz": "1"},
            {"instId": BTC, "tdMode": "cross", "clOrdId": "wsB", "side": "buy", "ordType": "limit", "px": "-1", "sz": "1"}]})
        ans = ws.wait_for(lambda m: m.get("id") == "b1", 2)
        assert ans["op"] == "batch-orders" and ans["code"] == "2" and [d["sCode"] for d in ans["data"]] == ["0", "51000"]
        ord_id = ans["data"][0]["ordId"]
        ws.send({"id": "a1", "op": "amend-order", "args": [{"instId": BTC, "ordId": ord_id, "newSz": "3"}]})
        assert ws.wait_for(lambda m: m.get("id") == "a1", 2)["data"][0]["sCode"] == "0"
        ws.send({"id": "c1", "op": "cancel-order", "args": [{"instId": BTC, "clOrdId": "wsA"}]})
        assert ws.wait_for(lambda m: m.get("id") == "c1", 2)["code"] == "0"
        ws.send({"id": "c2", "op": "cancel-order", "args": [{"instId": BTC, "clOrdId": "wsA"}]})
        assert ws.wait_for(lambda m: m.get("id") == "c2", 2)["data"][0]["sCode"] == "51401"  # OKX: already canceled
    orders = [e for e in venue.control.ledger() if e["type"] == "order" and e.get("clOrdId") in ("wsA", "wsB")]
    assert [(e["clOrdId"], e["accepted"]) for e in orders] == [("wsA", True), ("wsB", False)]


def ws_book_bid(venue: VenueServer) -> str:
    with WsProbe(venue.ws_public_url) as ws:
        ws.send({"op": "subscribe", "args": [{"channel": "bbo-tbt", "instId": BTC}]})
        return ws.wait_for(data_of("bbo-tbt"), 2)["data"][0]["bids"][0][0]


def test_a_private_invalid_request_never_repeats_the_login_secrets(venue: VenueServer) -> None:
    with WsProbe(venue.ws_private_url) as ws:
        ws.send({"id": "x1", "op": "login", "args": "passphrase=Sekr3t-pass sign=S1gn4ture"})
        err = ws.wait_for(lambda m: m.get("event") == "error", 2)
        assert err["code"] == "60012" and err["id"] == "x1"
        assert not [t for _, t in ws.messages if "Sekr3t" in t or "S1gn4ture" in t]
