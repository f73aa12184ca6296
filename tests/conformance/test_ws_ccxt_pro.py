"""Conformance, WebSocket side: ccxt.pro's ``okx`` exchange, unmodified, against a venue with only its
URLs and a demo key changed (sandbox mode, as a bot configured for OKX demo trading runs it).

Markets: ccxt.pro needs them before any call; each exchange loads them with ``load_markets()`` from the
venue's ``GET /api/v5/public/instruments``, as it does against OKX.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Iterator, TypeVar

import pytest

ccxtpro = pytest.importorskip("ccxt.pro")
import ccxt  # noqa: E402 - after the importorskip

from pytest_chaosdrill.venue import VenueServer  # noqa: E402
from pytest_chaosdrill.venue.auth import ApiKey  # noqa: E402

SYMBOL = "BTC/USDT:USDT"
T = TypeVar("T")


@pytest.fixture(scope="module")
def key() -> ApiKey:
    return ApiKey.generate("conformance")


@pytest.fixture(scope="module")
def venue(key: ApiKey) -> Iterator[VenueServer]:
    with VenueServer(port=0, seed=11, tick_ms=20) as v:
        v.call(v.core.auth.add, key)
        yield v


def exchange(venue: VenueServer, key: ApiKey, **overrides: str) -> Any:
    """ccxt.pro okx in demo (sandbox) mode; only the URLs point at the venue."""
    ex = ccxtpro.okx({"apiKey": key.api_key, "secret": key.secret_key, "password": key.passphrase, **overrides})
    ex.set_sandbox_mode(True)
    ex.urls["api"]["ws"] = f"ws://{venue.host}:{venue.port}/ws/v5"
    ex.urls["api"]["rest"] = venue.rest_url
    return ex


def run(venue: VenueServer, key: ApiKey, body: Callable[[Any], Awaitable[T]], timeout: float = 20.0,
        **overrides: str) -> T:
    """Run ``body(exchange)`` on a fresh event loop with a deadline; always closes the exchange."""
    async def main() -> T:
        ex = exchange(venue, key, **overrides)
        try:
            await ex.load_markets()  # from the venue's public/instruments
            return await asyncio.wait_for(body(ex), timeout)
        finally:
            await ex.close()
    return asyncio.run(main())


async def until(fn: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Call a ccxt watch function until its result satisfies ``ok`` (deadline, no sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if ok(got):
            return got
        assert time.monotonic() < deadline, f"no satisfying update within {timeout}s: {got!r}"[:500]


# -- public ---------------------------------------------------------------------------------------

def test_watch_order_book_snapshot_then_contiguous_updates(venue: VenueServer, key: ApiKey) -> None:
    async def body(ex: Any) -> list[int]:
        nonces = []
        for _ in range(5):
            book = await ex.watch_order_book(SYMBOL)  # ccxt checks prevSeqId == its last seqId on every update
            assert book["bids"][0][0] < book["asks"][0][0] and len(book["bids"]) == len(book["asks"]) == 400
            nonces.append(book["nonce"])
        return nonces
    nonces = run(venue, key, body)
    assert nonces == sorted(nonces) and len(set(nonces)) > 1


def test_book_gap_is_seen_by_ccxt_as_an_invalid_nonce(venue: VenueServer, key: ApiKey) -> None:
    """The venue's book gap is OKX's own signal (prevSeqId not the previous seqId): ccxt.pro's
    watch_order_book fails with InvalidNonce, as it would on OKX."""
    async def body(ex: Any) -> None:
        await ex.watch_order_book(SYMBOL)
        rec = venue.control.book_gap("BTC-USDT-SWAP", skip=4)
        with pytest.raises(ccxt.InvalidNonce):
            for _ in range(50):
                await ex.watch_order_book(SYMBOL)
        assert venue.control.wait_landed(rec, 2).landed
    run(venue, key, body)


def test_watch_ticker_and_bids_asks(venue: VenueServer, key: ApiKey) -> None:
    async def body(ex: Any) -> tuple[dict, dict]:
        return await ex.watch_ticker(SYMBOL), (await ex.watch_bids_asks([SYMBOL]))[SYMBOL]
    ticker, bbo = run(venue, key, body)
    assert ticker["symbol"] == SYMBOL and ticker["bid"] < ticker["ask"] and ticker["last"] > 0
    assert bbo["bid"] < bbo["ask"]


def test_watch_trades_aggregated_ids(venue: VenueServer, key: ApiKey) -> None:
    async def body(ex: Any) -> list[dict]:
        got: list[dict] = []  # ccxt.pro returns the trades new since the previous call
        while len(got) < 8:
            got += await ex.watch_trades(SYMBOL)
        return got
    trades = run(venue, key, body)
    infos = [t["info"] for t in trades]
    for a, b in zip(infos, infos[1:]):
        assert int(b["tradeId"]) - int(b["count"]) == int(a["tradeId"])  # OKX's continuity rule
    assert all(t["id"] == t["info"]["tradeId"] and t["symbol"] == SYMBOL for t in trades)


# -- private --------------------------------------------------------------------------------------

def test_orders_create_edit_cancel_ws_pushed_on_watch_orders(venue: VenueServer, key: ApiKey) -> None:
    async def body(ex: Any) -> list[dict]:
        book = await ex.watch_order_book(SYMBOL)
        px = book["bids"][0][0] - 500
        watching = asyncio.ensure_future(until(lambda: ex.watch_orders(SYMBOL), lambda os: any(
            o["status"] == "canceled" for o in os), 10))
        await asyncio.sleep(0)  # the subscription goes out first
        placed = await ex.create_order_ws(SYMBOL, "limit", "buy", 1, px)
        assert placed["id"]
        edited = await ex.edit_order_ws(placed["id"], SYMBOL, "limit", "buy", 2, px - 1)
        assert edited["id"] == placed["id"]
        canceled = await ex.cancel_order_ws(placed["id"], SYMBOL)
        assert canceled["id"] == placed["id"]
        return await watching
    orders = run(venue, key, body)
    mine = [o for o in orders if o["symbol"] == SYMBOL]
    assert mine[-1]["status"] == "canceled" and mine[-1]["amount"] == 2


def test_watch_my_trades_positions_and_balance_after_a_fill(venue: VenueServer, key: ApiKey) -> None:
    async def body(ex: Any) -> tuple[list, list, dict]:
        my_trades = asyncio.ensure_future(until(lambda: ex.watch_my_trades(SYMBOL), lambda ts: len(ts) >= 1, 10))
        positions = asyncio.ensure_future(until(lambda: ex.watch_positions(), lambda ps: any(
            p["symbol"] == SYMBOL and p["contracts"] for p in ps), 10))
        balance = await ex.watch_balance()
        assert balance["USDT"]["total"] > 0
        await asyncio.sleep(0.2)  # let the subscriptions be acknowledged before the fill
        await ex.create_order_ws(SYMBOL, "market", "buy", 1)
        return await my_trades, await positions, balance
    trades, positions, _ = run(venue, key, body)
    t = trades[-1]
    assert t["id"] == t["info"]["tradeId"] and t["amount"] == 1 and t["price"] > 0 and t["side"] == "buy"
    assert any(p["symbol"] == SYMBOL and p["contracts"] >= 1 for p in positions)


def test_a_rejected_ws_order_rejects_only_its_own_call(venue: VenueServer, key: ApiKey) -> None:
    """The answer carries the request's id: ccxt.pro fails that call; a call pending on the same socket
    (watch_orders) survives it and still gets the next order."""
    async def body(ex: Any) -> list[dict]:
        book = await ex.watch_order_book(SYMBOL)
        pending = asyncio.ensure_future(ex.watch_orders(SYMBOL))
        await asyncio.sleep(0.2)  # subscribed before the rejection
        with pytest.raises(ccxt.BaseError, match="51000"):
            await ex.create_order_ws(SYMBOL, "limit", "buy", 1, book["bids"][0][0] - 300, params={"px": "-1"})
        assert not pending.done()
        await ex.create_order_ws(SYMBOL, "limit", "buy", 1, book["bids"][0][0] - 300)
        return await pending
    orders = run(venue, key, body)
    assert orders and orders[-1]["status"] == "open"


@pytest.mark.parametrize("field, code", [("secret", "60007"), ("password", "60024")])
def test_login_with_a_bad_signature_or_passphrase_gets_okx_codes(venue: VenueServer, key: ApiKey, field: str,
                                                                 code: str) -> None:
    async def body(ex: Any) -> None:
        await ex.watch_balance()
    with pytest.raises(ccxt.BaseError, match=code):
        run(venue, key, body, **{field: "wrong"})


def test_login_outside_the_timestamp_window_gets_60006(venue: VenueServer, key: ApiKey) -> None:
    """The venue's clock 100 s ahead of the client's: OKX's timestamp window (30 s) refuses the login."""
    original = venue.core.auth.clock
    venue.call(setattr, venue.core.auth, "clock", lambda: time.time() + 100)
    try:
        with pytest.raises(ccxt.BaseError, match="60006"):
            run(venue, key, lambda ex: ex.watch_balance())
    finally:
        venue.call(setattr, venue.core.auth, "clock", original)
