"""Venue REST over loopback with a real HTTP client: orders, idempotency, reduceOnly, positions, queries,
ledger classification and determinism."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer

BTC = "BTC-USDT-SWAP"
ETH = "ETH-USDT-SWAP"


@pytest.fixture
def venue_options() -> dict[str, Any]:
    # A huge tick keeps prices still, so fill prices are predictable within a test.
    return {"seed": 7, "tick_ms": 60_000}


def order(side: str, sz: str, cl: str | None = None, inst: str = BTC, reduce_only: bool = False,
          ord_type: str = "market", px: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"instId": inst, "tdMode": "cross", "side": side, "ordType": ord_type, "sz": sz,
                            "reduceOnly": reduce_only}
    if cl:
        body["clOrdId"] = cl
    if px:
        body["px"] = px
    return body


def post(http: requests.Session, venue: VenueServer, path: str, body: Any) -> dict:
    r = http.post(venue.rest_url + path, json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def get(http: requests.Session, venue: VenueServer, path: str, **params: str) -> dict:
    r = http.get(venue.rest_url + path, params=params, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def pos_of(http: requests.Session, venue: VenueServer, inst: str = BTC) -> str:
    data = get(http, venue, "/api/v5/account/positions", instId=inst)["data"]
    return data[0]["pos"] if data else "0"


def test_market_order_fills_at_best_price_and_moves_position(venue: VenueServer, http: requests.Session) -> None:
    tick = get(http, venue, "/api/v5/market/ticker", instId=BTC)["data"][0]
    ans = post(http, venue, "/api/v5/trade/order", order("buy", "2", "buy1"))
    assert ans["code"] == "0" and ans["data"][0]["sCode"] == "0"
    ord_id = ans["data"][0]["ordId"]
    assert ord_id == "100001"
    o = get(http, venue, "/api/v5/trade/order", instId=BTC, ordId=ord_id)["data"][0]
    assert (o["state"], o["accFillSz"], o["avgPx"], o["reduceOnly"]) == ("filled", "2", tick["askPx"], "false")
    assert get(http, venue, "/api/v5/trade/order", instId=BTC, clOrdId="buy1")["data"][0]["ordId"] == ord_id
    positions = get(http, venue, "/api/v5/account/positions")["data"]
    assert len(positions) == 1 and positions[0]["pos"] == "2"
    assert positions[0]["avgPx"] == tick["askPx"] and positions[0]["posSide"] == "net"
    fills = get(http, venue, "/api/v5/trade/fills")["data"]
    assert [(f["ordId"], f["fillSz"], f["fillPx"]) for f in fills] == [(ord_id, "2", tick["askPx"])]
    bal = get(http, venue, "/api/v5/account/balance")["data"][0]
    assert bal["details"][0]["ccy"] == "USDT" and float(bal["totalEq"]) > 0
    assert int(get(http, venue, "/api/v5/public/time")["data"][0]["ts"]) > 0


def test_clordid_is_unique_among_pending_orders_only_and_every_repeat_is_witnessed(venue: VenueServer,
                                                                                     http: requests.Session) -> None:
    # OKX: a clOrdId may be reused once its order is final, and the repeat is a NEW order.
    first = post(http, venue, "/api/v5/trade/order", order("buy", "1", "idem1"))
    again = post(http, venue, "/api/v5/trade/order", order("buy", "1", "idem1"))
    assert again["data"][0]["sCode"] == "0" and again["data"][0]["ordId"] != first["data"][0]["ordId"]
    assert pos_of(http, venue) == "2"  # a second position, as on OKX
    # While an order with that clOrdId rests: 51016, and nothing is placed.
    post(http, venue, "/api/v5/trade/order", order("buy", "1", "rest1", ord_type="limit", px="1000"))
    dup = post(http, venue, "/api/v5/trade/order", order("sell", "3", "rest1"))
    assert (dup["code"], dup["data"][0]["sCode"], dup["data"][0]["ordId"]) == ("1", "51016", "")
    assert pos_of(http, venue) == "2"
    # GET by clOrdId answers the latest order of that clOrdId.
    assert get(http, venue, "/api/v5/trade/order", instId=BTC, clOrdId="idem1")["data"][0]["ordId"] == again["data"][0]["ordId"]
    led = venue.control.witness()
    # The witness's "duplicate" is about arrivals, whatever the venue answered.
    assert [(d["clOrdId"], d["accepted"], d["sCode"]) for d in led.duplicates()] == [("idem1", True, "0"),
                                                                                    ("rest1", False, "51016")]
    assert len(led.orders()) == 4


def test_reduce_only_may_only_shrink(venue: VenueServer, http: requests.Session) -> None:
    # Flat: any reduceOnly order would grow the position.
    ans = post(http, venue, "/api/v5/trade/order", order("buy", "1", "ro1", reduce_only=True))
    assert ans["code"] == "1" and ans["data"][0]["sCode"] == "51169" and ans["data"][0]["ordId"] == ""
    post(http, venue, "/api/v5/trade/order", order("buy", "3", "o1"))
    # Same side as the position (OKX 51170) and bigger than the position are both rejected.
    assert post(http, venue, "/api/v5/trade/order", order("buy", "1", "ro2", reduce_only=True))["data"][0]["sCode"] == "51170"
    assert post(http, venue, "/api/v5/trade/order", order("sell", "4", "ro3", reduce_only=True))["data"][0]["sCode"] == "51169"
    assert pos_of(http, venue) == "3"
    ok = post(http, venue, "/api/v5/trade/order", order("sell", "2", "ro4", reduce_only=True))
    assert ok["code"] == "0" and pos_of(http, venue) == "1"
    rejected = [o for o in venue.control.witness().orders() if not o["accepted"]]
    assert [(o["clOrdId"], o["sCode"], o["effect"]) for o in rejected] == [
        ("ro1", "51169", "none"), ("ro2", "51170", "none"), ("ro3", "51169", "none")]


def test_ledger_classifies_open_reduce_flip_and_tracks_exposure(venue: VenueServer, http: requests.Session) -> None:
    steps = [("buy", "2", False, "open"), ("sell", "1", True, "reduce"), ("sell", "3", False, "flip"),
             ("sell", "1", False, "open"), ("buy", "3", False, "reduce")]
    for i, (side, sz, ro, _) in enumerate(steps):
        assert post(http, venue, "/api/v5/trade/order", order(side, sz, f"s{i}", reduce_only=ro))["code"] == "0"
    post(http, venue, "/api/v5/trade/order", order("buy", "5", "e1", inst=ETH))
    led = venue.control.witness()
    orders = led.orders()
    assert [o["effect"] for o in orders] == [s[3] for s in steps] + ["open"]
    assert [(o["pos_before"], o["pos_after"]) for o in orders[:5]] == [(0, 2), (2, 1), (1, -2), (-2, -3), (-3, 0)]
    assert [e for _, e in led.exposure_series()] == [2, 1, 2, 3, 0, 5]
    # opens(): everything that could add exposure: non-reduceOnly attempts and any open/flip.
    assert [o["clOrdId"] for o in led.opens()] == ["s0", "s2", "s3", "s4", "e1"]
    t_mid = orders[2]["mono"]
    assert [o["clOrdId"] for o in led.opens(since_mono=t_mid)] == ["s2", "s3", "s4", "e1"]
    assert [o["clOrdId"] for o in led.opens(until_mono=t_mid)] == ["s0", "s2"]


def test_recon_reads_are_witnessed(venue: VenueServer, http: requests.Session) -> None:
    http.headers.update({"OK-ACCESS-KEY": "key1", "OK-ACCESS-SIGN": "c2lnbg==", "OK-ACCESS-PASSPHRASE": "secret-pass",
                         "OK-ACCESS-TIMESTAMP": "2026-01-26T15:13:30.120Z"})
    get(http, venue, "/api/v5/market/ticker", instId=BTC)
    t0 = venue.control.ledger()[-1]["mono"]
    get(http, venue, "/api/v5/account/positions")
    get(http, venue, "/api/v5/trade/orders-pending", instId=BTC)
    get(http, venue, "/api/v5/account/balance")
    reads = venue.control.witness().recon_reads(since_mono=t0)
    assert [(r["method"], r["path"], r["status"]) for r in reads] == [
        ("GET", "/api/v5/account/positions", 200), ("GET", "/api/v5/trade/orders-pending", 200)]
    requests_seen = [e for e in venue.control.ledger() if e["type"] == "request"]
    assert len(requests_seen) == 4 and all(e["utc"].endswith("Z") for e in requests_seen)
    assert {e["apiKey"] for e in requests_seen} == {"key1"}
    assert "secret-pass" not in venue.control.witness().to_jsonl() and "c2lnbg==" not in venue.control.witness().to_jsonl()


def test_limit_orders_rest_cancel_and_cross(venue: VenueServer, http: requests.Session) -> None:
    tick = get(http, venue, "/api/v5/market/ticker", instId=BTC)["data"][0]
    far = str(float(tick["bidPx"]) - 100)
    rest = post(http, venue, "/api/v5/trade/order", order("buy", "1", "lim1", ord_type="limit", px=far))
    ord_id = rest["data"][0]["ordId"]
    pending = get(http, venue, "/api/v5/trade/orders-pending")["data"]
    assert [(o["ordId"], o["state"], o["px"]) for o in pending] == [(ord_id, "live", far.rstrip("0").rstrip("."))]
    assert pos_of(http, venue) == "0"
    assert venue.control.witness().orders()[-1]["effect"] == "none"
    cancel = post(http, venue, "/api/v5/trade/cancel-order", {"instId": BTC, "clOrdId": "lim1"})
    assert cancel["code"] == "0" and cancel["data"][0]["ordId"] == ord_id
    assert get(http, venue, "/api/v5/trade/orders-pending")["data"] == []
    assert get(http, venue, "/api/v5/trade/order", instId=BTC, ordId=ord_id)["data"][0]["state"] == "canceled"
    again = post(http, venue, "/api/v5/trade/cancel-order", {"instId": BTC, "ordId": ord_id})
    assert again["code"] == "1" and again["data"][0]["sCode"] == "51401"  # OKX: already canceled
    # A limit through the book fills at once at the best price.
    cross = post(http, venue, "/api/v5/trade/order", order("sell", "1", "lim2", ord_type="limit",
                                                               px=str(float(tick["bidPx"]) - 50)))
    o = get(http, venue, "/api/v5/trade/order", instId=BTC, ordId=cross["data"][0]["ordId"])["data"][0]
    assert (o["state"], o["avgPx"]) == ("filled", tick["bidPx"]) and pos_of(http, venue) == "-1"


def test_resting_limit_fills_when_the_market_reaches_it() -> None:
    with VenueServer(port=0, seed=11, tick_ms=10) as v, requests.Session() as http:
        bid = float(get(http, v, "/api/v5/market/ticker", instId=BTC)["data"][0]["bidPx"])
        # A buy just under the bid: the random walk reaches it within a few ticks.
        ans = post(http, v, "/api/v5/trade/order", order("buy", "1", "w1", ord_type="limit", px=str(bid - 0.5)))
        ord_id = ans["data"][0]["ordId"]
        deadline = time.monotonic() + 20
        state = ""
        while time.monotonic() < deadline:
            state = get(http, v, "/api/v5/trade/order", instId=BTC, ordId=ord_id)["data"][0]["state"]
            if state == "filled":
                break
            time.sleep(0.02)
        assert state == "filled", "resting limit never filled"
        fill = v.control.witness().fills()[-1]
        assert (fill["ordId"], fill["px"], fill["effect"]) == (ord_id, bid - 0.5, "open")


def test_two_leg_batch_and_errors(venue: VenueServer, http: requests.Session) -> None:
    ans = post(http, venue, "/api/v5/trade/batch-orders", [order("buy", "1", "la"), order("sell", "1", "lb", inst=ETH)])
    assert ans["code"] == "0" and [d["sCode"] for d in ans["data"]] == ["0", "0"]
    assert [o["leg"] for o in venue.control.witness().orders()] == ["A", "B"]
    mixed = post(http, venue, "/api/v5/trade/batch-orders",
                 [order("buy", "1", "m1"), order("buy", "1", "m2", inst="NOPE-USDT-SWAP"), order("buy", "0", "m3")])
    assert mixed["code"] == "2" and [d["sCode"] for d in mixed["data"]] == ["0", "51001", "51000"]
    r = http.post(venue.rest_url + "/api/v5/trade/batch-orders", json=[], timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "51000"
    r = http.post(venue.rest_url + "/api/v5/trade/order", data="{not json", timeout=5)
    assert r.status_code == 400 and r.json()["code"] == "50002"
    bad = post(http, venue, "/api/v5/trade/order", order("buy", "1", "bad-id!"))
    assert bad["code"] == "1" and bad["data"][0]["sCode"] == "51000"
    assert get(http, venue, "/api/v5/trade/order", instId=BTC, ordId="999")["code"] == "51603"
    assert get(http, venue, "/api/v5/market/ticker", instId="X")["code"] == "51001"


def _run_script(seed: int) -> list[Any]:
    with VenueServer(port=0, seed=seed, tick_ms=60_000) as v, requests.Session() as http:
        out: list[Any] = [get(http, v, "/api/v5/market/ticker", instId=i)["data"][0] for i in (BTC, ETH)]
        for d in out:
            d.pop("ts")
        out.append(post(http, v, "/api/v5/trade/order", order("buy", "2", "d1")))
        out.append(post(http, v, "/api/v5/trade/batch-orders", [order("sell", "1", "d2"), order("buy", "3", "d3", inst=ETH)]))
        out.append(post(http, v, "/api/v5/trade/order", order("buy", "2", "d1")))
        for ans in out[2:]:
            del ans["inTime"], ans["outTime"]  # the gateway's times, not the venue's decisions
            for d in ans["data"]:
                d.pop("ts")
        out.append([{k: f[k] for k in ("ordId", "fillSz", "fillPx", "side")} for f in get(http, v, "/api/v5/trade/fills")["data"]])
        out.append([{k: p[k] for k in ("instId", "pos", "avgPx")} for p in get(http, v, "/api/v5/account/positions")["data"]])
        return out


def test_same_seed_same_requests_same_answers() -> None:
    a, b = _run_script(7), _run_script(7)
    assert a == b
    assert _run_script(8)[0] != a[0]  # and the seed matters


def test_unknown_path_is_an_okx_shaped_404(venue: VenueServer, http: requests.Session) -> None:
    r = http.get(venue.rest_url + "/api/v5/account/nothing", timeout=5)
    assert r.status_code == 404 and r.json() == {"code": "404", "msg": "Not Found", "data": []}
    assert venue.control.ledger()[-1]["status"] == 404


def test_exp_time_is_honoured_as_okx_documents(venue: VenueServer, http: requests.Session) -> None:
    """expTime (request header, Unix ms): a place / batch request the venue gets to after it is refused
    with 50036 and not processed; before it, processed normally; a bad value is a parameter error."""
    now_ms = int(time.time() * 1000)

    def send(path: str, body: Any, exp: str) -> requests.Response:
        return http.post(venue.rest_url + path, json=body, headers={"expTime": exp}, timeout=5)

    ok = send("/api/v5/trade/order", order("buy", "1", "fresh1"), str(now_ms + 10_000)).json()
    assert ok["code"] == "0" and ok["data"][0]["sCode"] == "0"
    late = send("/api/v5/trade/order", order("buy", "1", "late1"), str(now_ms - 1)).json()
    assert late == {"code": "50036", "msg": late["msg"], "data": []} and "expTime" in late["msg"]
    batch = send("/api/v5/trade/batch-orders", [order("buy", "1", "late2"), order("sell", "1", "late3", inst=ETH)],
                 str(now_ms - 1)).json()
    assert batch["code"] == "50036" and batch["data"] == []
    bad = send("/api/v5/trade/order", order("buy", "1", "bad1"), "soon")
    assert bad.status_code == 400 and bad.json()["code"] == "51000"
    assert get(http, venue, "/api/v5/trade/order", instId=BTC, clOrdId="late1")["code"] == "51603", "nothing was placed"
    assert pos_of(http, venue) == "1"
    led = venue.control.ledger()
    assert [o["clOrdId"] for o in led if o["type"] == "order"] == ["fresh1"]
    expired = [e for e in led if e["type"] == "request" and e["expired"]]
    assert [e["clOrdIds"] for e in expired] == [["late1"], ["late2", "late3"]]
    assert all(e["okx_code"] == "50036" and e["expTime"] == now_ms - 1 and e["received_mono"] <= e["mono"]
               for e in expired)
    assert venue.control.state()["counters"]["expired_requests"] == 2
    fresh = next(o for o in led if o["type"] == "order")
    assert fresh["expTime"] == now_ms + 10_000 and fresh["could_add_exposure"] is True


def test_exp_time_counts_from_the_whole_request_not_its_headers(venue: VenueServer) -> None:
    """A request whose headers arrive in time but whose body the network holds past expTime is late:
    refused with 50036, nothing placed (the in-flight hazard of a partition that splits a request)."""
    import socket
    import time as _time

    body = json.dumps(order("buy", "1", "heldbody1")).encode()
    exp = int(_time.time() * 1000) + 200
    head = (f"POST /api/v5/trade/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"expTime: {exp}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((venue.host, venue.port), timeout=5) as s:
        s.sendall(head)
        while int(_time.time() * 1000) <= exp + 100:   # hold the body until well past the deadline
            _time.sleep(0.02)
        s.sendall(body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    payload = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert payload["code"] == "50036" and payload["data"] == []
    assert not [e for e in venue.control.ledger() if e.get("type") == "order" and e.get("clOrdId") == "heldbody1"]


def test_requests_and_orders_record_their_tcp_peer(venue: VenueServer) -> None:
    # The peer joins an order to whoever opened its connection (the fault proxy's connection log).
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(venue.rest_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.connect()
    me = "%s:%d" % conn.sock.getsockname()[:2]
    try:
        conn.request("POST", "/api/v5/trade/order", body=json.dumps(order("buy", "1", "peer1")),
                     headers={"Content-Type": "application/json"})
        assert json.loads(conn.getresponse().read())["code"] == "0"
    finally:
        conn.close()
    mine = [e for e in venue.control.ledger() if e.get("clOrdId") == "peer1" or e.get("clOrdIds") == ["peer1"]]
    mine = [e for e in mine if e["type"] in ("order", "request")]
    assert {e["type"] for e in mine} == {"order", "request"} and {e["peer"] for e in mine} == {me}
