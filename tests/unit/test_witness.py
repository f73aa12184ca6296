"""venue/witness.py: the in-flight hazard, the exposure definition and the window classification, on synthetic
ledgers and on a real venue ledger (the venue over loopback, real HTTP)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.witness import (S_EXP_TIME_PASSED, check_no_open_dispatch_while_blocked,
                                       check_no_order_accepted_after_not_found, client_sent_upper_mono,
                                       could_add_exposure, expired_requests, not_found_then_accepted,
                                       open_orders_in_window)

BTC = "BTC-USDT-SWAP"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def _q(seq: int, mono: float, cid: str, code: str = "51603") -> dict[str, Any]:
    return {"seq": seq, "mono": mono, "utc": _iso(T0 + timedelta(seconds=mono)), "type": "request", "method": "GET",
            "path": "/api/v5/trade/order", "query": f"clOrdId={cid}", "clOrdId": cid, "okx_code": code, "status": 200}


def _o(seq: int, mono: float, cid: str, sent: float | None = None, reduce_only: bool = False, effect: str = "open",
       accepted: bool = True, duplicate: bool = False) -> dict[str, Any]:
    return {"seq": seq, "mono": mono, "utc": _iso(T0 + timedelta(seconds=mono)), "type": "order", "clOrdId": cid,
            "side": "buy", "sz": 1.0, "instId": BTC, "reduceOnly": reduce_only, "effect": effect, "accepted": accepted,
            "duplicate": duplicate, "pos_before": 1.0, "pos_after": 2.0, "received_mono": mono,
            "received_utc": _iso(T0 + timedelta(seconds=mono)),
            "accessTs": _iso(T0 + timedelta(seconds=sent)) if sent is not None else None}


def test_could_add_exposure_is_one_definition() -> None:
    assert could_add_exposure({"reduceOnly": False, "effect": "reduce"})  # nothing stopped it from growing
    assert could_add_exposure({"reduceOnly": False, "effect": "none", "accepted": False})  # dispatched all the same
    assert could_add_exposure({"reduceOnly": True, "effect": "flip"})
    assert could_add_exposure({"reduceOnly": "true", "effect": "open"})
    assert not could_add_exposure({"reduceOnly": True, "effect": "reduce"})
    assert not could_add_exposure({"reduceOnly": "true", "effect": "none"})


def test_not_found_then_accepted_names_both_requests_and_times() -> None:
    ledger = [_o(1, 1.0, "a1"), _q(2, 2.0, "x9"), _q(3, 2.1, "x9"), _o(4, 2.12, "x9", sent=0.5),
              _q(5, 3.0, "y1"), _o(6, 3.5, "y1", duplicate=True), _q(7, 4.0, "z1"), _o(8, 4.2, "z1", accepted=False)]
    found = not_found_then_accepted(ledger)
    # a rejection is no acceptance; an accepted repeat of a clOrdId is a new order (OKX reuses a clOrdId
    # once its earlier order is final)
    assert [f["clOrdId"] for f in found] == ["x9", "y1"]
    f = found[0]
    assert (f["not_found_mono"], f["accepted_mono"], f["not_found_seq"], f["accepted_seq"]) == (2.0, 2.12, 2, 4)
    assert f["not_found_utc"] == "2026-01-01T12:00:02.000Z" and f["accepted_utc"] == "2026-01-01T12:00:02.120Z"
    assert f["gap_ms"] == pytest.approx(120.0) and f["query"]["path"] == "/api/v5/trade/order"
    passed, reason = check_no_order_accepted_after_not_found(ledger)
    assert passed is False and "x9" in reason and "120.0 ms later" in reason
    # accepted BEFORE the not-found answer is no finding; no not-found at all is NOT PROVEN
    assert not_found_then_accepted([_o(1, 1.0, "a1"), _q(2, 2.0, "a1")]) == []
    assert check_no_order_accepted_after_not_found([_o(1, 1.0, "a1")])[0] is None
    assert check_no_order_accepted_after_not_found([_q(1, 1.0, "a1")])[0] is True


def test_window_classification_needs_a_timestamp_before_the_block() -> None:
    block = 10.0
    ledger = [_o(1, 11.0, "late", sent=9.5),            # signed before the block, delivered during it
              _o(2, 11.5, "fresh", sent=11.4),          # signed during the block
              _o(3, 11.6, "nots", sent=None),           # no timestamp: cannot be shown to predate the block
              _o(4, 11.7, "trunc", sent=9.2),           # .200 ms: precise
              _o(5, 12.0, "ro", sent=11.9, reduce_only=True, effect="reduce"),  # cannot add exposure
              _o(6, 20.0, "after", sent=19.9)]          # outside the window
    ledger[3]["accessTs"] = "2026-01-01T12:00:09.000Z"  # whole second: may be truncated -> read as 09.999
    got = {o["clOrdId"]: o["kind"] for o in open_orders_in_window(ledger, 10.5, 15.0, block)}
    assert got == {"late": "sent_before_block", "fresh": "decided_while_blocked", "nots": "decided_while_blocked",
                   "trunc": "sent_before_block"}
    ledger[3]["accessTs"] = "2026-01-01T12:00:10.000Z"  # 10.000 → up to 10.999 > block: not provably before
    assert {o["clOrdId"]: o["kind"] for o in open_orders_in_window(ledger, 10.5, 15.0, block)}["trunc"] == \
        "decided_while_blocked"
    assert client_sent_upper_mono(ledger[0]) == pytest.approx(9.501, abs=1e-6)
    passed, reason = check_no_open_dispatch_while_blocked(ledger, 10.5, 15.0, block)
    assert passed is False and "fresh" in reason and "late" in reason and "sent before the block" in reason
    only_late = [ledger[0]]
    assert check_no_open_dispatch_while_blocked(only_late, 10.5, 15.0, block)[0] is True


# -- on a real venue ledger ------------------------------------------------------------------------

@pytest.fixture
def venue() -> Iterator[VenueServer]:
    with VenueServer(port=0, seed=7, tick_ms=60_000) as v:
        yield v


def _ts(t: float) -> str:
    return _iso(datetime.fromtimestamp(t, tz=timezone.utc))


def _post(venue: VenueServer, cid: str, exp_ms: int | None, signed: float) -> dict:
    headers = {"OK-ACCESS-TIMESTAMP": _ts(signed)}
    if exp_ms is not None:
        headers["expTime"] = str(exp_ms)
    body = {"instId": BTC, "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1", "clOrdId": cid}
    r = requests.post(venue.rest_url + "/api/v5/trade/order", json=body, headers=headers, timeout=5)
    assert r.status_code == 200
    return r.json()


def _get(venue: VenueServer, cid: str) -> dict:
    return requests.get(venue.rest_url + "/api/v5/trade/order", params={"instId": BTC, "clOrdId": cid}, timeout=5).json()


def test_real_ledger_not_found_then_accepted_and_expired_late_request(venue: VenueServer) -> None:
    now = time.time()
    assert _get(venue, "late1")["code"] == "51603"
    # "late1" arrives after the not-found answer without an expTime: accepted -- the hazard.
    assert _post(venue, "late1", None, signed=now - 2.0)["code"] == "0"
    assert _get(venue, "late2")["code"] == "51603"
    # "late2" carries an expTime already past: refused, nothing processed.
    ans = _post(venue, "late2", int(now * 1000) - 500, signed=now - 2.0)
    assert ans["code"] == S_EXP_TIME_PASSED and ans["data"] == []
    ledger = venue.control.ledger()
    found = not_found_then_accepted(ledger)
    assert [f["clOrdId"] for f in found] == ["late1"]
    assert found[0]["not_found_mono"] < found[0]["accepted_mono"] and found[0]["order"]["effect"] == "open"
    exp = expired_requests(ledger)
    assert [e["clOrdIds"] for e in exp] == [["late2"]] and exp[0]["expTime"] == int(now * 1000) - 500
    assert not any(o.get("clOrdId") == "late2" for o in ledger if o["type"] == "order"), "an expired request is no order"
    # Window classification on the real entries: signed 2 s before, received now.
    block = time.monotonic() - 1.0
    kinds = {o["clOrdId"]: o["kind"] for o in open_orders_in_window(ledger, None, None, block)}
    assert kinds == {"late1": "sent_before_block"}
    later_block = time.monotonic() - 5.0  # a block that started before the request was signed
    assert {o["clOrdId"]: o["kind"] for o in open_orders_in_window(ledger, None, None, later_block)} == \
        {"late1": "decided_while_blocked"}
    orders = [e for e in ledger if e["type"] == "order"]
    assert all(e["could_add_exposure"] == could_add_exposure(e) for e in orders)
    assert venue.control.witness().opens() == [e for e in orders if could_add_exposure(e)]
