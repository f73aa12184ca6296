"""The venue clock-skew fault as an unmodified ccxt okx client meets it: refused with OKX's 50102 (ccxt's
InvalidNonce) while its clock is 90 s behind the venue's, the refusal counted by the fault as its proof,
and accepted again once ccxt re-learns the offset from public/time (``load_time_difference``)."""
from __future__ import annotations

import json
import time
from typing import Any

import ccxt
import pytest

from pytest_chaosdrill.venue import VenueClient, VenueServer
from pytest_chaosdrill.venue.auth import ApiKey, ws_login_args
from pytest_chaosdrill.venue.probe import WsProbe

SKEW_S = 90.0


def test_a_skewed_venue_refuses_ccxt_until_it_resyncs(venue: VenueServer, make_ccxt: Any) -> None:
    ex = make_ccxt()
    ex.fetch_balance()  # accepted before the fault
    with VenueClient(venue.base_url) as c:
        rec = c.clock_skew(offset_s=SKEW_S)
        assert not rec.landed  # requested, proven only by a refusal
        venue_ms = ex.fetch_time()  # public/time moves with the venue's clock
        assert abs(venue_ms - (time.time() + SKEW_S) * 1000) < 5_000
        with pytest.raises(ccxt.InvalidNonce, match="50102"):
            ex.fetch_balance()
        landed = c.wait_landed(rec, timeout=5)
        assert landed.detail["refused_requests"] >= 1
        ex.load_time_difference()  # ccxt's own re-sync, from public/time
        assert abs(ex.options["timeDifference"] + SKEW_S * 1000) < 5_000
        assert ex.fetch_balance()["info"]["code"] == "0"
        refused = landed.detail["refused_requests"]
        c.clear(kind="clock_skew")
        with pytest.raises(ccxt.InvalidNonce):  # the skew ended: ccxt's offset is now the wrong one
            ex.fetch_balance()
        after = next(r for r in c.faults() if r.id == rec.id)
        assert not after.active and after.detail["refused_requests"] == refused  # nothing counted once cleared


def test_a_skewed_venue_refuses_ws_logins_with_60006(venue: VenueServer, key: ApiKey) -> None:
    with VenueClient(venue.base_url) as c:
        rec = c.clock_skew(offset_s=-SKEW_S)
        with WsProbe(venue.ws_private_url) as ws:
            ws.send({"op": "login", "args": [ws_login_args(key)]})
            ans = json.loads(ws.recv(timeout=5) or "{}")
        assert (ans.get("event"), ans.get("code")) == ("error", "60006")
        assert c.wait_landed(rec, timeout=5).detail["refused_logins"] == 1
        with WsProbe(venue.ws_private_url) as ws:  # signed with the venue's (skewed) time: accepted
            ws.send({"op": "login", "args": [ws_login_args(key, time.time() - SKEW_S)]})
            assert json.loads(ws.recv(timeout=5) or "{}").get("code") == "0"
