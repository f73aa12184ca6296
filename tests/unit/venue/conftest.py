"""Shared set-up of the venue's unit tests: a venue on a free loopback port and an HTTP session.

A test module chooses the venue's seed and tick by overriding `venue_options`."""
from __future__ import annotations

from typing import Any, Iterator

import pytest
import requests

from pytest_chaosdrill.venue import VenueServer


@pytest.fixture
def venue_options() -> dict[str, Any]:
    """Keyword arguments of the `venue` fixture's VenueServer (beyond port=0)."""
    return {"seed": 5, "tick_ms": 20}


@pytest.fixture
def venue(venue_options: dict[str, Any]) -> Iterator[VenueServer]:
    with VenueServer(port=0, **venue_options) as v:
        yield v


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s
