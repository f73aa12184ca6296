"""faults.base: the start-up hold's proof records only what the venue really did (issue 19: a hold that
never landed must not be recorded as held)."""
from __future__ import annotations

import time

import requests

from pytest_chaosdrill.faults.base import start_hold_proof
from pytest_chaosdrill.venue import VenueServer


def test_a_hold_that_delayed_nothing_is_not_landed_and_held_zero() -> None:
    venue = VenueServer(seed=3).start()
    try:
        hold = venue.control.rest_latency(3000)
        venue.control.clear("rest_latency")   # released before any REST request came
        proof = start_hold_proof(venue.control, hold, 3.0, time.monotonic(), first_sample=7)
    finally:
        venue.stop()
    assert proof["landed"] is False and proof["held_s"] == 0.0 and proof["delayed_requests"] == 0
    assert proof["requested_s"] == 3.0 and proof["not_tested"].startswith("not landed")
    assert proof["venue_rest_latency"]["landed"] is False


def test_a_hold_that_delayed_a_request_says_so_with_its_real_length() -> None:
    venue = VenueServer(seed=3).start()
    try:
        hold = venue.control.rest_latency(100)
        assert requests.get(venue.rest_url + "/api/v5/public/time", timeout=5).status_code == 200
        venue.control.wait_landed(hold, 1)
        released = time.monotonic()
        venue.control.clear("rest_latency")
        proof = start_hold_proof(venue.control, hold, 3.0, released, first_sample=None)
    finally:
        venue.stop()
    assert proof["landed"] is True and proof["delayed_requests"] == 1 and "not_tested" not in proof
    assert 0.1 <= proof["held_s"] < 3.0   # measured from the request to the release, not the 3.0 asked for
