"""ccxt ``okx`` (sync), unmodified, against the venue: every REST call a trading bot makes, answered as
OKX answers it (ccxt parses the answers; a field it cannot parse fails here)."""
from __future__ import annotations

from typing import Any

import ccxt
import pytest

from pytest_chaosdrill.venue import VenueServer

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def test_markets_load_with_okx_instrument_metadata(cx: Any) -> None:
    m = cx.market(BTC)
    assert (m["id"], m["type"], m["linear"], m["settle"], m["contractSize"]) == ("BTC-USDT-SWAP", "swap", True, "USDT", 0.01)
    assert m["precision"]["price"] == 0.5 and m["precision"]["amount"] == 1 and m["limits"]["amount"]["min"] == 1
    assert m["limits"]["leverage"]["max"] == 100 and m["active"] is True
    assert set(cx.markets) == {BTC, ETH}  # spot, futures and options: the venue lists none


def test_public_market_data(cx: Any) -> None:
    t = cx.fetch_ticker(BTC)
    assert t["bid"] < t["ask"] and t["last"] > 0
    assert set(cx.fetch_tickers([BTC, ETH])) == {BTC, ETH}
    book = cx.fetch_order_book(BTC, limit=5)
    assert len(book["bids"]) == 5 and book["bids"][0][0] == t["bid"] and book["asks"][0][0] == t["ask"]
    assert cx.fetch_time() > 0
    assert all(t["symbol"] == BTC and t["price"] > 0 for t in cx.fetch_trades(BTC, limit=10))
    assert cx.fetch_ohlcv(BTC, "1m", limit=5)  # the current bar at least
    assert cx.fetch_mark_price(BTC)["markPrice"] > 0
    assert cx.fetch_funding_rate(BTC)["fundingRate"] == 0.0001


def test_trading_round_trip(cx: Any, venue: VenueServer) -> None:
    cx.set_leverage(5, BTC, params={"mgnMode": "cross"})
    assert cx.fetch_leverage(BTC, params={"marginMode": "cross"})["longLeverage"] == 5
    o = cx.create_order(BTC, "market", "buy", 2, params={"tdMode": "cross", "clOrdId": "cc1"})
    got = cx.fetch_order(o["id"], BTC)
    assert (got["status"], got["filled"], got["clientOrderId"], got["reduceOnly"]) == ("closed", 2, "cc1", False)
    bal = cx.fetch_balance()
    assert bal["USDT"]["total"] > 0 and bal["USDT"]["used"] > 0  # the position's margin
    (p,) = cx.fetch_positions([BTC])
    assert (p["symbol"], p["contracts"], p["side"], p["leverage"]) == (BTC, 2, "long", 5)
    assert cx.fetch_position(BTC)["contracts"] == 2
    assert cx.fetch_trading_fee(BTC)["taker"] == 0  # the venue charges no fee
    assert [t["order"] for t in cx.fetch_order_trades(o["id"], BTC)] == [o["id"]]
    trades = cx.fetch_my_trades(BTC)
    assert [(t["order"], t["amount"], t["takerOrMaker"]) for t in trades] == [(o["id"], 2, "taker")]
    # A resting limit: pending, amended, cancelled; then in the history.
    bid = cx.fetch_ticker(BTC)["bid"]
    lim = cx.create_order(BTC, "limit", "buy", 1, bid - 100, params={"tdMode": "cross"})
    assert [x["id"] for x in cx.fetch_open_orders(BTC)] == [lim["id"]]
    cx.edit_order(lim["id"], BTC, "limit", "buy", 3, bid - 50)
    assert (cx.fetch_order(lim["id"], BTC)["amount"], cx.fetch_order(lim["id"], BTC)["price"]) == (3, bid - 50)
    cx.cancel_order(lim["id"], BTC)
    assert cx.fetch_open_orders(BTC) == []
    assert {x["id"]: x["status"] for x in cx.fetch_closed_orders(BTC)} == {o["id"]: "closed"}
    assert {x["id"]: x["status"] for x in cx.fetch_canceled_orders(BTC)} == {lim["id"]: "canceled"}
    # Batch place and batch cancel.
    batch = cx.create_orders([{"symbol": BTC, "type": "limit", "side": "buy", "amount": 1, "price": bid - 200,
                               "params": {"tdMode": "cross"}},
                              {"symbol": ETH, "type": "market", "side": "sell", "amount": 1, "params": {"tdMode": "cross"}}])
    assert all(b["id"] for b in batch)
    cx.cancel_orders([batch[0]["id"]], BTC)
    assert cx.fetch_open_orders(BTC) == []
    # Both positions through one comma-list call, then closed.
    assert {p["symbol"]: p["side"] for p in cx.fetch_positions([BTC, ETH])} == {BTC: "long", ETH: "short"}
    cx.close_position(BTC)
    assert [p["symbol"] for p in cx.fetch_positions([BTC, ETH])] == [ETH]


def test_order_types_post_only_ioc_fok(cx: Any) -> None:
    t = cx.fetch_ticker(BTC)
    # post_only through the book would take liquidity: OKX cancels it.
    po = cx.create_order(BTC, "limit", "buy", 1, t["ask"], params={"tdMode": "cross", "postOnly": True})
    assert cx.fetch_order(po["id"], BTC)["status"] == "canceled"
    resting = cx.create_order(BTC, "limit", "buy", 1, t["bid"] - 10, params={"tdMode": "cross", "postOnly": True})
    assert cx.fetch_order(resting["id"], BTC)["status"] == "open"
    ioc = cx.create_order(BTC, "limit", "buy", 1, t["bid"] - 10, params={"tdMode": "cross", "timeInForce": "IOC"})
    assert cx.fetch_order(ioc["id"], BTC)["status"] == "canceled"
    fok = cx.create_order(BTC, "limit", "buy", 1, t["ask"], params={"tdMode": "cross", "timeInForce": "FOK"})
    assert cx.fetch_order(fok["id"], BTC)["status"] == "closed"


def test_rules_ccxt_sees_as_okx_errors(cx: Any) -> None:
    t = cx.fetch_ticker(BTC)
    # (an amount off the lot size never leaves ccxt: it rounds to the market's precision; see the
    # python-okx tests for 51121)
    with pytest.raises(ccxt.InsufficientFunds, match="51008"):  # the margin check, whatever the faults
        cx.create_order(BTC, "limit", "buy", 9_000_000, t["bid"], params={"tdMode": "cross"})
    with pytest.raises(ccxt.InvalidOrder, match="51202"):  # above maxMktSz
        cx.create_order(BTC, "market", "buy", 1_000_000_000, params={"tdMode": "cross"})
    cx.create_order(BTC, "market", "buy", 1, params={"tdMode": "cross"})
    with pytest.raises(ccxt.ExchangeError, match="51170"):  # reduce-only on the position's own side
        cx.create_order(BTC, "market", "buy", 1, params={"tdMode": "cross", "reduceOnly": True})
    with pytest.raises(ccxt.OrderNotFound):
        cx.fetch_order("424242", BTC)


def test_authentication_is_okx_s(venue: VenueServer, make_ccxt: Any) -> None:
    from pytest_chaosdrill.venue.auth import ApiKey
    with pytest.raises(ccxt.AuthenticationError, match="50111"):  # a key the venue does not know
        make_ccxt(other=ApiKey.generate()).fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="50101"):  # a demo key used as live (real money)
        make_ccxt(demo=False).fetch_balance()
    private = [e for e in venue.control.ledger() if e["type"] == "request" and "simulated" in e]
    assert [(e["auth"], e["simulated"], e["status"]) for e in private] == [("50111", True, 401), ("50101", False, 401)]


def test_a_key_revoked_by_session_termination_is_refused_on_rest_too(venue: VenueServer, cx: Any) -> None:
    """OKX revokes a key everywhere: while the fault's refusal holds, REST answers 50111 (as for a key it
    does not know); a service upgrade leaves REST alone; once re-authentication is allowed the key works."""
    assert cx.fetch_balance()["USDT"]["total"] > 0
    rec = venue.control.session_termination(refuse_reauth_s=None, mechanism="key_revoked")
    with pytest.raises(ccxt.AuthenticationError, match="50111"):
        cx.fetch_balance()
    assert cx.fetch_ticker(BTC)["last"] > 0  # public data needs no key
    venue.control.allow_reauth()
    assert cx.fetch_balance()["USDT"]["total"] > 0
    assert [r.detail.get("refused_rest") for r in venue.control.faults() if r.id == rec.id] == [1]
    venue.control.session_termination(refuse_reauth_s=None, mechanism="service_upgrade")
    assert cx.fetch_balance()["USDT"]["total"] > 0  # an upgrade ends sockets, not keys
    venue.control.allow_reauth()
