"""``proxy.http_match``: requests read off a byte stream (chunked, keep-alive, split anywhere) and
matched by method, path and JSON fields whatever the serialization."""
from __future__ import annotations

import json

import pytest

from pytest_chaosdrill.proxy.http_match import HttpMatchError, RequestMatch, RequestReader

OPEN = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1",
        "clOrdId": "o1", "reduceOnly": False}
MATCH = RequestMatch.from_attributes("post", r"/api/v5/trade/(order|batch-orders)", '{"reduceOnly": [false, "", null]}')


def _post(body: bytes, path: str = "/api/v5/trade/order", extra: bytes = b"") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: venue\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra + b"\r\n" + body


def _chunked(body: bytes, path: str = "/api/v5/trade/order") -> bytes:
    parts = [body[:7], body[7:]]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return (f"POST {path} HTTP/1.1\r\nHost: venue\r\nTransfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"


def _requests(*chunks: bytes) -> list:
    reader = RequestReader()
    return [r for c in chunks for r in reader.feed(c)]


@pytest.mark.parametrize("body", [
    json.dumps(OPEN).encode(),                                   # json.dumps default: '"reduceOnly": false'
    json.dumps(OPEN, separators=(",", ":")).encode(),           # compact
    json.dumps(dict(reversed(list(OPEN.items()))), indent=2).encode(),  # reordered keys, indented
    json.dumps({**OPEN, "reduceOnly": "false"}).encode(),        # the string form OKX also accepts
    json.dumps({**OPEN, "reduceOnly": ""}).encode(),             # python-okx's default (an OPEN order)
    json.dumps({k: v for k, v in OPEN.items() if k != "reduceOnly"}).encode(),  # ccxt omits it
], ids=["default", "compact", "reordered", "string", "empty", "absent"])
def test_an_open_order_matches_in_every_serialization(body: bytes) -> None:
    for raw in (_post(body), _chunked(body)):
        reqs = _requests(raw)
        assert [r.method for r in reqs] == ["POST"] and MATCH is not None and MATCH.matches(reqs[0])
        one_byte_at_a_time = _requests(*[raw[i:i + 1] for i in range(len(raw))])
        assert len(one_byte_at_a_time) == 1 and MATCH.matches(one_byte_at_a_time[0])


@pytest.mark.parametrize("value", [True, "true"])
def test_a_reduce_only_order_and_other_paths_do_not_match(value: object) -> None:
    assert MATCH is not None
    reduce_only = json.dumps({**OPEN, "reduceOnly": value}).encode()
    assert not MATCH.matches(_requests(_post(reduce_only))[0])
    cancel = json.dumps({"instId": "BTC-USDT-SWAP", "clOrdId": "o1"}).encode()
    assert not MATCH.matches(_requests(_post(cancel, "/api/v5/trade/cancel-order"))[0])
    get = _requests(b"GET /api/v5/trade/order?clOrdId=o1 HTTP/1.1\r\nHost: venue\r\n\r\n")
    assert get[0].path == "/api/v5/trade/order" and not MATCH.matches(get[0])


def test_batch_bodies_match_when_any_order_is_open() -> None:
    assert MATCH is not None
    batch = json.dumps([{**OPEN, "reduceOnly": True}, {**OPEN, "clOrdId": "o2"}]).encode()
    assert MATCH.matches(_requests(_post(batch, "/api/v5/trade/batch-orders"))[0])
    all_reduce = json.dumps([{**OPEN, "reduceOnly": True}]).encode()
    assert not MATCH.matches(_requests(_post(all_reduce, "/api/v5/trade/batch-orders"))[0])


def test_keep_alive_requests_in_one_chunk_and_across_chunks() -> None:
    a = _post(json.dumps({**OPEN, "reduceOnly": True}).encode())
    b = _chunked(json.dumps(OPEN).encode())
    c = b"GET /api/v5/account/positions HTTP/1.1\r\nHost: venue\r\n\r\n"
    stream = a + b + c
    reqs = _requests(stream[:50], stream[50:len(a) + 3], stream[len(a) + 3:])
    assert [(r.method, r.path) for r in reqs] == [("POST", "/api/v5/trade/order"), ("POST", "/api/v5/trade/order"),
                                                  ("GET", "/api/v5/account/positions")]
    assert MATCH is not None and [MATCH.matches(r) for r in reqs] == [False, True, False]


def test_a_reader_joining_mid_request_waits_for_the_next_request_line_and_stops_after_an_upgrade() -> None:
    body = json.dumps(OPEN).encode()
    raw = _post(body)
    assert len(_requests(raw[20:], raw)) == 1  # the tail of a request it never saw is skipped
    upgrade = (b"GET /ws/v5/private HTTP/1.1\r\nHost: venue\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    reader = RequestReader()
    assert [r.path for r in reader.feed(upgrade)] == ["/ws/v5/private"]
    assert list(reader.feed(b"\x81\x05hello" + raw)) == []  # WebSocket frames, never parsed as HTTP


def test_invalid_match_attributes_are_refused_naming_the_attribute() -> None:
    assert RequestMatch.from_attributes("", "", "") is None
    with pytest.raises(HttpMatchError, match="match_json"):
        RequestMatch.from_attributes("", "", '{"reduceOnly": fals')
    with pytest.raises(HttpMatchError, match="match_json"):
        RequestMatch.from_attributes("", "", "[1]")
    with pytest.raises(HttpMatchError, match="match_path"):
        RequestMatch.from_attributes("", "(", "")
