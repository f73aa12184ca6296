"""Conformance, WebSocket side: python-okx's asyncio WebSocket clients, unmodified.

python-okx always connects with TLS (``okx.websocket.WebSocketFactory`` passes an ``ssl`` context, which
the ``websockets`` library refuses for a ``ws://`` URL), so these tests need the venue's ``wss://``.
They skip, saying so, while the venue in this checkout serves no TLS (``VenueServer(tls=True)``); the
CA then reaches python-okx through ``SSL_CERT_FILE``, as it would reach a user's bot.
"""
from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any, Iterator

import pytest

okx_ws = pytest.importorskip("okx.websocket.WsPublicAsync")
okx_ws_private = pytest.importorskip("okx.websocket.WsPrivateAsync")

from pytest_chaosdrill.venue import VenueServer  # noqa: E402
from pytest_chaosdrill.venue.auth import ApiKey  # noqa: E402

BTC = "BTC-USDT-SWAP"


@pytest.fixture(scope="module")
def key() -> ApiKey:
    return ApiKey.generate("conformance")


@pytest.fixture(scope="module")
def tls_venue(key: ApiKey) -> Iterator[VenueServer]:
    if "tls" not in inspect.signature(VenueServer).parameters:
        pytest.skip("python-okx's WebSocket client always connects with TLS; this venue serves no wss:// yet")
    with VenueServer(port=0, tls=True) as v:  # type: ignore[call-arg]
        v.call(v.core.auth.add, key)
        yield v


@pytest.fixture
def trusted(tls_venue: VenueServer, monkeypatch: pytest.MonkeyPatch) -> VenueServer:
    monkeypatch.setenv("SSL_CERT_FILE", str(getattr(tls_venue, "ca_path")))
    return tls_venue


async def _collect(client: Any, args: list[dict[str, str]], n: int) -> list[dict]:
    got: list[dict] = []
    done = asyncio.Event()

    def on_message(text: str) -> None:
        got.append(json.loads(text))
        if len(got) >= n:
            done.set()
    await client.start()
    try:
        await client.subscribe(args, callback=on_message)
        await asyncio.wait_for(done.wait(), 15)  # the private client sleeps 5 s after its login
    finally:
        await client.stop()
    return got


def test_public_books_and_trades(trusted: VenueServer) -> None:
    client = okx_ws.WsPublicAsync(url=trusted.ws_public_url)
    msgs = asyncio.run(_collect(client, [{"channel": "books", "instId": BTC}, {"channel": "trades", "instId": BTC}], 8))
    assert any(m.get("action") == "snapshot" for m in msgs)
    assert any(m.get("arg", {}).get("channel") == "trades" and "count" in m["data"][0] for m in msgs if "data" in m)


def test_private_login_and_orders(trusted: VenueServer, key: ApiKey) -> None:
    client = okx_ws_private.WsPrivateAsync(apiKey=key.api_key, passphrase=key.passphrase, secretKey=key.secret_key,
                                           url=trusted.ws_private_url, useServerTime=False)
    msgs = asyncio.run(_collect(client, [{"channel": "orders", "instType": "ANY"}], 2))  # subscribe() logs in
    assert any(m.get("event") == "login" and m.get("code") == "0" for m in msgs)
    assert any(m.get("event") == "subscribe" for m in msgs)
