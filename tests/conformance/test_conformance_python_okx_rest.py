"""python-okx's REST clients (flag "1", demo trading), unmodified, against the venue: every call a bot
makes, and the cases where a venue that differs from OKX would let a bot pass a drill and then behave
differently on OKX (clOrdId reuse, comma-list positions, instType filters, OKX's rule codes)."""
from __future__ import annotations

from typing import Any

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.auth import ApiKey, rest_headers

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"
# python-okx posts its JSON through httpx's data= (its own code, unmodified here)
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning")


def ok(ans: dict) -> list[dict]:
    assert ans["code"] == "0", ans
    return ans["data"]


def s_code(ans: dict) -> str:
    return ans["data"][0]["sCode"]


def test_public_endpoints(po: Any) -> None:
    (inst,) = ok(po.public.get_instruments(instType="SWAP", instId=BTC))
    assert {k: inst[k] for k in ("ctVal", "ctMult", "ctValCcy", "tickSz", "lotSz", "minSz", "settleCcy", "state")} == {
        "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "tickSz": "0.5", "lotSz": "1", "minSz": "1",
        "settleCcy": "USDT", "state": "live"}
    assert ok(po.public.get_instruments(instType="SPOT")) == []
    assert int(ok(po.public.get_system_time())[0]["ts"]) > 0
    assert {t["instId"] for t in ok(po.market.get_tickers(instType="SWAP"))} == {BTC, ETH}
    assert ok(po.market.get_tickers(instType="FUTURES")) == []
    t = ok(po.market.get_ticker(BTC))[0]
    book = ok(po.market.get_orderbook(BTC, sz="3"))[0]
    assert len(book["bids"]) == 3 and book["bids"][0][0] == t["bidPx"] and book["asks"][0][0] == t["askPx"]
    assert ok(po.market.get_candlesticks(BTC, bar="1m"))[0][8] == "0"  # the current bar is unconfirmed
    assert isinstance(ok(po.market.get_history_candlesticks(BTC, bar="1m")), list)
    assert isinstance(ok(po.market.get_trades(BTC)), list)
    assert float(ok(po.public.get_mark_price(instType="SWAP", instId=BTC))[0]["markPx"]) > 0
    (idx,) = ok(po.market.get_index_tickers(instId="BTC-USDT"))  # OKX's index id: the pair, not the swap
    assert float(idx["idxPx"]) > 0 and {i["instId"] for i in ok(po.market.get_index_tickers(quoteCcy="USDT"))} == {
        "BTC-USDT", "ETH-USDT"}


def test_account_endpoints(po: Any) -> None:
    (cfg,) = ok(po.account.get_account_config())
    assert (cfg["posMode"], cfg["acctLv"]) == ("net_mode", "2")
    assert ok(po.account.set_leverage(lever="7", mgnMode="cross", instId=BTC))[0]["lever"] == "7"
    assert ok(po.account.get_leverage(mgnMode="cross", instId=BTC))[0]["lever"] == "7"
    (bal,) = ok(po.account.get_account_balance())
    assert bal["details"][0]["ccy"] == "USDT" and float(bal["totalEq"]) == 100000
    (mx,) = ok(po.account.get_max_order_size(instId=BTC, tdMode="cross"))
    assert int(mx["maxBuy"]) > 0
    assert int(ok(po.account.get_max_avail_size(instId=BTC, tdMode="cross"))[0]["availBuy"]) > 0


def test_trade_endpoints(po: Any) -> None:
    placed = ok(po.trade.place_order(BTC, "cross", "buy", "market", "2", clOrdId="p1"))[0]
    assert (placed["sCode"], placed["clOrdId"]) == ("0", "p1")
    o = ok(po.trade.get_order(BTC, clOrdId="p1"))[0]
    assert (o["state"], o["accFillSz"], o["ordId"], o["fillSz"], o["execType"]) == ("filled", "2", placed["ordId"], "2", "T")
    bid = float(ok(po.market.get_ticker(BTC))[0]["bidPx"])
    batch = ok(po.trade.place_multiple_orders([
        {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1", "px": str(bid - 100)},
        {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "post_only", "sz": "1", "px": str(bid - 150)}]))
    ids = [b["ordId"] for b in batch]
    assert {x["ordId"] for x in ok(po.trade.get_order_list(instType="SWAP"))} == set(ids)
    assert s_code(po.trade.amend_order(BTC, ordId=ids[0], newSz="3")) == "0"
    assert ok(po.trade.get_order(BTC, ordId=ids[0]))[0]["sz"] == "3"
    assert s_code(po.trade.cancel_order(BTC, ordId=ids[0])) == "0"
    assert s_code(po.trade.cancel_multiple_orders([{"instId": BTC, "ordId": ids[1]}])) == "0"
    assert ok(po.trade.get_order_list()) == []
    hist = ok(po.trade.get_orders_history(instType="SWAP"))
    assert {(h["ordId"], h["state"]) for h in hist} == {(placed["ordId"], "filled"), (ids[0], "canceled"), (ids[1], "canceled")}
    assert len(ok(po.trade.get_orders_history_archive(instType="SWAP"))) == 3
    assert [f["ordId"] for f in ok(po.trade.get_fills(instType="SWAP"))] == [placed["ordId"]]
    assert [f["ordId"] for f in ok(po.trade.get_fills_history(instType="SWAP"))] == [placed["ordId"]]
    assert ok(po.trade.close_positions(BTC, "cross", clOrdId="close1"))[0]["clOrdId"] == "close1"
    assert ok(po.account.get_positions()) == []
    assert po.trade.close_positions(BTC, "cross")["code"] == "51023"  # nothing left to close


def test_clordid_unique_among_pending_only_and_reusable_after_a_final_state(po: Any, venue: VenueServer) -> None:
    first = ok(po.trade.place_order(BTC, "cross", "buy", "market", "1", clOrdId="reuse1"))[0]
    again = po.trade.place_order(BTC, "cross", "sell", "market", "3", clOrdId="reuse1")
    # a NEW order after the first filled (never the old one answered with sCode 0)
    assert s_code(again) == "0" and again["data"][0]["ordId"] != first["ordId"]
    assert ok(po.account.get_positions(instId=BTC))[0]["pos"] == "-2"
    bid = float(ok(po.market.get_ticker(BTC))[0]["bidPx"])
    ok(po.trade.place_order(BTC, "cross", "buy", "limit", "1", px=str(bid - 100), clOrdId="live1"))
    dup = po.trade.place_order(BTC, "cross", "buy", "market", "1", clOrdId="live1")
    assert (dup["code"], s_code(dup)) == ("1", "51016")
    po.trade.cancel_order(BTC, clOrdId="live1")
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "market", "1", clOrdId="live1")) == "0"  # canceled: reusable
    dups = venue.control.witness().duplicates()
    assert [(d["clOrdId"], d["accepted"]) for d in dups] == [("reuse1", True), ("live1", False), ("live1", True)]


def test_positions_take_comma_lists_and_instType(po: Any) -> None:
    ok(po.trade.place_order(BTC, "cross", "buy", "market", "1"))
    ok(po.trade.place_order(ETH, "cross", "sell", "market", "2"))
    both = ok(po.account.get_positions(instId=f"{BTC},{ETH}"))
    assert {(p["instId"], p["pos"]) for p in both} == {(BTC, "1"), (ETH, "-2")}
    assert ok(po.account.get_positions(instType="SWAP", instId=ETH))[0]["pos"] == "-2"
    assert ok(po.account.get_positions(instType="FUTURES")) == []
    assert po.account.get_positions(instType="NOPE")["code"] == "51000"


def test_okx_rule_codes(po: Any) -> None:
    t = ok(po.market.get_ticker(BTC))[0]
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "limit", "1", px="43000.3")) == "51000"  # off tickSz 0.5
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "market", "1.5")) == "51121"  # off lotSz
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "market", "1000000000")) == "51202"  # above maxMktSz
    # a limit order the 100k USDT account cannot margin (1e7 contracts at 10x = 4.3e8 USDT of margin)
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "limit", "10000000", px=t["bidPx"])) == "51008"
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "market", "1", reduceOnly="true")) == "51169"  # flat
    ok(po.trade.place_order(BTC, "cross", "buy", "market", "2"))
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "market", "1", reduceOnly="true")) == "51170"  # same side
    assert s_code(po.trade.place_order(BTC, "cross", "sell", "market", "1", reduceOnly="true")) == "0"
    assert s_code(po.trade.place_order(BTC, "cross", "buy", "fok", "1", px=t["bidPx"])) == "0"  # accepted, then canceled
    ioc = ok(po.trade.place_order(BTC, "cross", "buy", "ioc", "1", px=t["bidPx"]))[0]  # does not cross: canceled
    assert ok(po.trade.get_order(BTC, ordId=ioc["ordId"]))[0]["state"] == "canceled"
    no_td = po.trade.place_order(BTC, "", "buy", "market", "1")
    assert (no_td["code"], no_td["msg"]) == ("50014", "Parameter tdMode can not be empty.")


def test_empty_body_and_authentication_codes(venue: VenueServer, key: ApiKey) -> None:
    path = "/api/v5/trade/order"

    def post(body: str, k: ApiKey = key, **kw: Any) -> tuple[int, str]:
        r = requests.post(venue.rest_url + path, data=body, headers=rest_headers(k, "POST", path, body, **kw), timeout=5)
        return r.status_code, r.json()["code"]

    assert post("") == (400, "50000")
    body = '{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}'
    assert post(body, ApiKey(key.api_key, "wrong-secret", key.passphrase)) == (401, "50113")
    assert post(body, ApiKey(key.api_key, key.secret_key, "wrong-pass")) == (401, "50105")
    assert post(body, epoch_s=1_000_000_000) == (401, "50102")  # outside OKX's 30 s window
    assert post(body, demo=False) == (401, "50101")
    h = rest_headers(key, "POST", path, body)
    del h["OK-ACCESS-SIGN"]
    assert requests.post(venue.rest_url + path, data=body, headers=h, timeout=5).json()["code"] == "50106"
    assert venue.control.witness().orders() == []  # nothing refused reached the order book
    assert post(body) == (200, "0")
    # public endpoints need no key
    assert requests.get(venue.rest_url + "/api/v5/public/time", timeout=5).json()["code"] == "0"
