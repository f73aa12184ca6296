"""Conformance, WebSocket side: python-okx's asyncio WebSocket clients, unmodified, over ``wss://``.

python-okx always connects with TLS (``okx.websocket.WebSocketFactory`` passes an ``ssl`` context, which
the ``websockets`` library refuses for a ``ws://`` URL). So the venue is reached as a drill's target
reaches it with ``venue: {tls: true}``: through the fault proxy's TLS listener, with the session CA
(pytest_chaosdrill/tls.py). Only the URL and ``SSL_CERT_FILE`` (which ``ssl.create_default_context()``
reads) differ from a bot's configuration.

The issue's four python-okx WebSocket calls: public ``subscribe`` (``books``, ``books5``, ``bbo-tbt``,
``tickers``, ``trades``), private ``login``, private ``subscribe`` (``orders``, ``positions``,
``account``, ``balance_and_position``) and the trading ops (``place_order``, ``batch_orders``,
``batch_cancel_orders``, ``amend_order``, ``cancel_order``).
"""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest
import requests

okx_ws = pytest.importorskip("okx.websocket.WsPublicAsync")
okx_ws_private = pytest.importorskip("okx.websocket.WsPrivateAsync")

from pytest_chaosdrill.backends.base import Harness  # noqa: E402
from pytest_chaosdrill.backends.local import local_harness  # noqa: E402
from pytest_chaosdrill.tls import SessionCA  # noqa: E402
from pytest_chaosdrill.venue.auth import ApiKey  # noqa: E402
from pytest_chaosdrill.wiring import VenueEndpoints  # noqa: E402

BTC = "BTC-USDT-SWAP"


@pytest.fixture(scope="module")
def key() -> ApiKey:
    return ApiKey.generate("conformance")


@pytest.fixture(scope="module")
def harness(key: ApiKey) -> Iterator[Harness]:
    """The venue behind the fault proxy and its TLS listener, as in a drill with ``venue: {tls: true}``."""
    ca = SessionCA()
    try:
        with local_harness(seed=11, api_key=key, tls=ca.files()) as h:
            yield h
    finally:
        ca.cleanup()


@pytest.fixture
def urls(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> VenueEndpoints:
    """The ``wss://`` URLs, with the session CA trusted through ``SSL_CERT_FILE`` as a target gets it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(harness.ca_file))
    ep = harness.endpoints()
    assert ep.ws_public_url.startswith("wss://") and ep.ws_private_url.startswith("wss://")
    return ep


class Inbox:
    """The messages a python-okx client's callback received, awaited with a deadline."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self._new = asyncio.Event()

    def __call__(self, text: str) -> None:  # python-okx's callback: one JSON text per message
        self.seen.append(json.loads(text))
        self._new.set()

    def summary(self) -> str:
        """What was received, order data cut to ids and states (a failure message stays readable)."""
        out = [{**{k: v for k, v in m.items() if k != "data"},
                "data": [(d.get("ordId"), d.get("state"), d.get("sCode"), d.get("sMsg")) for d in m.get("data", [])]}
               for m in self.seen]
        return repr(out)[-2000:]

    async def first(self, ok: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.seen:
                if ok(m):
                    return m
            self._new.clear()
            left = deadline - time.monotonic()
            assert left > 0, f"no matching message within {timeout}s; got {self.summary()}"
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except asyncio.TimeoutError:
                pass


PUBLIC = ("books", "books5", "bbo-tbt", "tickers", "trades")
PRIVATE = ("orders", "positions", "account", "balance_and_position")


def data_of(channel: str) -> Callable[[dict], bool]:
    return lambda m: m.get("arg", {}).get("channel") == channel and bool(m.get("data"))


def test_public_subscribe_books_and_trades_over_wss(urls: VenueEndpoints) -> None:
    async def main() -> Inbox:
        client = okx_ws.WsPublicAsync(url=urls.ws_public_url)  # made inside the loop: it keeps the loop
        inbox = Inbox()
        await client.start()
        try:
            await client.subscribe([{"channel": c, "instId": BTC} for c in PUBLIC], callback=inbox, id="s1")
            await inbox.first(lambda m: m.get("arg", {}).get("channel") == "books" and m.get("action") == "snapshot")
            for channel in PUBLIC:
                await inbox.first(data_of(channel))
        finally:
            await client.stop()
        return inbox
    inbox = asyncio.run(main())
    subs = [m for m in inbox.seen if m.get("event") == "subscribe"]
    assert {s["arg"]["channel"] for s in subs} == set(PUBLIC)
    assert all(s.get("connId") and s.get("id") == "s1" for s in subs)  # OKX's envelope: connId, the id echoed
    bbo = next(m for m in inbox.seen if data_of("bbo-tbt")(m))["data"][0]
    assert len(bbo["bids"]) == len(bbo["asks"]) == 1
    assert len(next(m for m in inbox.seen if data_of("books5")(m))["data"][0]["bids"]) == 5
    assert float(next(m for m in inbox.seen if data_of("tickers")(m))["data"][0]["last"]) > 0
    book = next(m for m in inbox.seen if m.get("action") == "snapshot")["data"][0]
    assert float(book["bids"][0][0]) < float(book["asks"][0][0]) and "seqId" in book and "checksum" in book
    trade = next(m for m in inbox.seen if m.get("arg", {}).get("channel") == "trades" and "data" in m)["data"][0]
    assert {"tradeId", "px", "sz", "side", "count", "source", "seqId"} <= trade.keys()


def _resting_px(urls: VenueEndpoints, ca_file: str) -> str:
    """A buy price 10% under the bid, on the instrument's tick (from the venue's REST side over https)."""
    get = lambda path: requests.get(f"{urls.rest_url}/api/v5/{path}", params={"instType": "SWAP", "instId": BTC},
                                    verify=ca_file, timeout=5).json()["data"][0]
    tick = Decimal(get("public/instruments")["tickSz"])
    return str((Decimal(get("market/ticker")["bidPx"]) * Decimal("0.9") / tick).to_integral_value() * tick)


def test_private_login_orders_channel_and_trading_ops_over_wss(urls: VenueEndpoints, harness: Harness,
                                                                key: ApiKey) -> None:
    """login (signed by python-okx), ``orders`` subscription, then ``order``, ``batch-orders``,
    ``amend-order``, ``cancel-order``: each answered with the request's ``id`` and ``sCode 0``, and the
    ``orders`` channel pushes the fill (with its fill fields) and the cancel."""
    px = _resting_px(urls, str(harness.ca_file))  # far below the market: the limit orders rest

    async def main() -> tuple[Inbox, str]:
        client = okx_ws_private.WsPrivateAsync(apiKey=key.api_key, passphrase=key.passphrase,
                                               secretKey=key.secret_key, url=urls.ws_private_url)
        inbox = Inbox()
        await client.start()
        try:
            # subscribe() logs in first (and waits 5 s, python-okx's own pause), then subscribes.
            await client.subscribe([{"channel": "orders", "instType": "SWAP"}, {"channel": "positions", "instType": "SWAP"},
                                    {"channel": "account"}, {"channel": "balance_and_position"}], callback=inbox)
            for channel in PRIVATE:
                await inbox.first(lambda m: m.get("event") == "subscribe" and m["arg"]["channel"] == channel)
            await client.place_order([{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "market",
                                       "sz": "1", "clOrdId": "pyokxmkt1"}], id="o1")
            await client.batch_orders([{"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit",
                                        "px": px, "sz": "1", "clOrdId": f"pyokxlim{i}"} for i in (1, 2)],
                                      id="b1")
            batch = await inbox.first(lambda m: m.get("id") == "b1")
            resting, other = batch["data"][0]["ordId"], batch["data"][1]["ordId"]
            await client.batch_cancel_orders([{"instId": BTC, "ordId": other}], id="bc1")
            await client.amend_order([{"instId": BTC, "ordId": resting, "newSz": "2"}], id="a1")
            await inbox.first(lambda m: m.get("id") == "a1")
            await client.cancel_order([{"instId": BTC, "ordId": resting}], id="c1")
            await inbox.first(lambda m: m.get("arg", {}).get("channel") == "orders" and any(
                d["ordId"] == resting and d["state"] == "canceled" for d in m.get("data", [])))
            await inbox.first(lambda m: m.get("arg", {}).get("channel") == "orders" and any(
                d["clOrdId"] == "pyokxmkt1" and d["state"] == "filled" for d in m.get("data", [])))
            # the fill is pushed on the position and balance channels too
            await inbox.first(lambda m: data_of("positions")(m) and any(
                d["instId"] == BTC and d["pos"] == "1" for d in m["data"]))
            await inbox.first(data_of("account"))
            await inbox.first(lambda m: data_of("balance_and_position")(m) and any(
                p["instId"] == BTC and p["pos"] == "1" for p in m["data"][0]["posData"]))
        finally:
            await client.stop()
        return inbox, resting
    inbox, resting = asyncio.run(main())
    assert any(m.get("event") == "login" and m.get("code") == "0" for m in inbox.seen)
    replies = {m["id"]: m for m in inbox.seen if "id" in m and "op" in m}
    assert [replies[i]["op"] for i in ("o1", "b1", "bc1", "a1", "c1")] == [
        "order", "batch-orders", "batch-cancel-orders", "amend-order", "cancel-order"]
    for r in replies.values():
        assert r["code"] == "0" and all(d["sCode"] == "0" for d in r["data"]), r
    assert len(replies["b1"]["data"]) == 2
    pushes = [d for m in inbox.seen if m.get("arg", {}).get("channel") == "orders" for d in m.get("data", [])]
    fill = next(d for d in pushes if d["clOrdId"] == "pyokxmkt1" and d["state"] == "filled")
    assert fill["tradeId"] and float(fill["fillSz"]) == 1 and float(fill["fillPx"]) > 0 and fill["execType"] == "T"  # taker (a market order)
    cancel = next(d for d in pushes if d["ordId"] == resting and d["state"] == "canceled")
    assert cancel["sz"] == "2"  # the amend landed before the cancel


def test_private_login_with_an_unknown_key_gets_60005(urls: VenueEndpoints) -> None:
    wrong = ApiKey.generate("conformance")  # a key the venue does not know

    async def main() -> Inbox:
        client = okx_ws.WsPublicAsync(url=urls.ws_private_url, apiKey=wrong.api_key, passphrase=wrong.passphrase,
                                      secretKey=wrong.secret_key)
        inbox = Inbox()
        client.callback = inbox
        await client.start()
        try:
            await client.login()
            await inbox.first(lambda m: m.get("event") == "error")
        finally:
            await client.stop()
        return inbox
    err = next(m for m in asyncio.run(main()).seen if m.get("event") == "error")
    assert err["code"] == "60005", err  # OKX: an API key it does not know is "Invalid apiKey"
