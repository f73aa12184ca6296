"""``partition`` keyed to meaning, judged by the real OKX clients (unmodified): python-okx (default
``json.dumps`` spacing, ``reduceOnly: ""``) and ccxt (compact JSON, ``reduceOnly`` omitted on an OPEN
order, ``true`` on a reduce-only one) send their orders through the fault proxy to the venue; the cut
starts on the first OPEN order, never on a reduce-only one, whatever the client's bytes."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import ccxt
import pytest
from okx import Trade

from pytest_chaosdrill.proxy import FaultProxy, ProxyServer
from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.auth import ApiKey

INST = "BTC-USDT-SWAP"
OPEN_ORDER = {"match_method": "POST", "match_path": r"/api/v5/trade/(order|batch-orders)",
              "match_json": '{"reduceOnly": [false, "", null]}'}


@pytest.fixture
def key() -> ApiKey:
    return ApiKey.generate()


@pytest.fixture
def proxied(key: ApiKey) -> Iterator[tuple[VenueServer, FaultProxy]]:
    with VenueServer(port=0, seed=7, tick_ms=60_000, keys=[key]) as venue, ProxyServer() as server:
        host, port = venue.rest_url.split("//", 1)[1].rsplit(":", 1)
        yield venue, server.create_proxy("venue", upstream=f"{host}:{port}")


def _url(proxy: FaultProxy) -> str:
    return f"http://{proxy.listen_host}:{proxy.listen_port}"


def _python_okx(proxy: FaultProxy, key: ApiKey) -> Trade.TradeAPI:
    return Trade.TradeAPI(key.api_key, key.secret_key, key.passphrase, flag="1", domain=_url(proxy), debug=False)


def _ccxt(proxy: FaultProxy, key: ApiKey) -> Any:
    ex = ccxt.okx({"apiKey": key.api_key, "secret": key.secret_key, "password": key.passphrase})
    ex.set_sandbox_mode(True)
    ex.urls["api"] = {"rest": _url(proxy)}
    return ex


def _in_thread(call: Callable[[], Any]) -> threading.Thread:
    """Send an order whose request the cut will hold: the client waits for its late answer."""
    t = threading.Thread(target=lambda: _swallow(call), daemon=True)
    t.start()
    return t


def _swallow(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:  # noqa: BLE001 - the held order may time out in the client: not what is tested
        pass


def _not_armed(proxy: FaultProxy) -> bool:
    return proxy.toxic_counters("cut")["extra"]["cut_started_mono"] is None


def test_python_okx_open_order_starts_the_cut_and_its_reduce_only_order_does_not(
        proxied: tuple[VenueServer, FaultProxy], key: ApiKey) -> None:
    _, proxy = proxied
    trade = _python_okx(proxy, key)
    proxy.add_toxic("partition", name="cut", stream="upstream", cut=300, deliver_after=100, **OPEN_ORDER)
    r = trade.place_order(instId=INST, tdMode="cross", side="sell", ordType="market", sz="1", reduceOnly="true")
    assert r["code"] in ("0", "1"), r  # answered by the venue (no position to reduce is a venue refusal)
    assert _not_armed(proxy), "a reduce-only order must not start the cut"
    t = _in_thread(lambda: trade.place_order(instId=INST, tdMode="cross", side="buy", ordType="market", sz="1",
                                             clOrdId="pyokx1"))
    landed = proxy.wait_toxic_acted("cut", timeout=5)
    assert landed["extra"]["matched_request"] == "POST /api/v5/trade/order"
    t.join(timeout=10)


def test_ccxt_open_order_starts_the_cut_and_its_reduce_only_order_does_not(
        proxied: tuple[VenueServer, FaultProxy], key: ApiKey) -> None:
    _, proxy = proxied
    ex = _ccxt(proxy, key)
    ex.load_markets()
    symbol = next(s for s, m in ex.markets.items() if m["id"] == INST)
    proxy.add_toxic("partition", name="cut", stream="upstream", cut=300, deliver_after=100, **OPEN_ORDER)
    try:
        ex.create_order(symbol, "market", "sell", 1, params={"tdMode": "cross", "reduceOnly": True})
    except ccxt.BaseError:
        pass  # the venue may refuse a reduce-only order without a position: it was answered, not held
    assert _not_armed(proxy), "a reduce-only order must not start the cut"
    start = time.monotonic()
    t = _in_thread(lambda: ex.create_order(symbol, "market", "buy", 1, params={"tdMode": "cross", "clOrdId": "ccxt1"}))
    landed = proxy.wait_toxic_acted("cut", timeout=5)
    # ccxt places a single order through OKX's batch endpoint
    assert landed["extra"]["matched_request"] in ("POST /api/v5/trade/order", "POST /api/v5/trade/batch-orders")
    assert landed["extra"]["cut_started_mono"] >= start
    t.join(timeout=10)
