"""The venue with one demo key, and ccxt's ``okx`` and python-okx's REST clients pointed at it: the
clients are unmodified, only their base URL (and the key) differ from a bot's configuration."""
from __future__ import annotations

from typing import Any, Iterator

import ccxt
import pytest
from okx import Account, MarketData, PublicData, Trade

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.auth import ApiKey

@pytest.fixture
def key() -> ApiKey:
    return ApiKey.generate()


@pytest.fixture
def venue(key: ApiKey) -> Iterator[VenueServer]:
    # A long tick keeps prices still within a test (resting orders stay resting).
    with VenueServer(port=0, seed=7, tick_ms=60_000, keys=[key]) as v:
        yield v


def ccxt_okx(venue: VenueServer, key: ApiKey, demo: bool = True) -> Any:
    """ccxt's okx as a bot configures it for demo trading, with the venue's URL."""
    ex = ccxt.okx({"apiKey": key.api_key, "secret": key.secret_key, "password": key.passphrase})
    ex.set_sandbox_mode(demo)  # True: sends x-simulated-trading: 1
    ex.urls["api"] = {"rest": venue.rest_url}
    return ex


@pytest.fixture
def make_ccxt(venue: VenueServer, key: ApiKey) -> Any:
    """``make_ccxt(demo=True, key=None)``: a fresh ccxt okx on the venue (another key, or live mode)."""
    return lambda demo=True, other=None: ccxt_okx(venue, other or key, demo)


@pytest.fixture
def cx(venue: VenueServer, key: ApiKey) -> Any:
    ex = ccxt_okx(venue, key)
    ex.load_markets()
    return ex


class PyOkx:
    """python-okx's REST clients (flag "1" = demo trading) on the venue."""

    def __init__(self, venue: VenueServer, key: ApiKey) -> None:
        a = (key.api_key, key.secret_key, key.passphrase)
        self.trade = Trade.TradeAPI(*a, flag="1", domain=venue.rest_url, debug=False)
        self.account = Account.AccountAPI(*a, flag="1", domain=venue.rest_url, debug=False)
        self.market = MarketData.MarketAPI(flag="1", domain=venue.rest_url, debug=False)
        self.public = PublicData.PublicAPI(flag="1", domain=venue.rest_url, debug=False)


@pytest.fixture
def po(venue: VenueServer, key: ApiKey) -> PyOkx:
    return PyOkx(venue, key)
