"""Unit tests of ``pytest_chaosdrill.proxy.toxics`` (validation, defaults, slicing, jitter)."""
from __future__ import annotations

import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_chaosdrill.proxy import ProxyServer
from pytest_chaosdrill.proxy.toxics import (TOXIC_TYPES, ToxicError, latency_delay_s, make_toxic, slice_sizes,
                                            validate_attributes)


def test_defaults_and_default_name() -> None:
    t = make_toxic("slicer", stream="upstream", attributes={"average_size": 10})
    assert t.name == "slicer_upstream"
    assert t.attributes == {"average_size": 10, "size_variation": 0, "delay": 0}
    assert t.to_json()["toxicity"] == 1.0
    assert set(TOXIC_TYPES) == {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data",
                                "partition"}


@pytest.mark.parametrize("type_,attrs,stream,toxicity,fragment", [
    ("nope", {}, "downstream", 1.0, "invalid toxic type"),
    ("latency", {"latncy": 5}, "downstream", 1.0, "unknown attribute 'latncy'"),
    ("latency", {"latency": -1}, "downstream", 1.0, ">= 0"),
    ("latency", {"latency": 1.5}, "downstream", 1.0, "whole number"),
    ("latency", {"latency": True}, "downstream", 1.0, "must be a number"),
    ("latency", {"latency": "10"}, "downstream", 1.0, "must be a number"),
    ("latency", {}, "both", 1.0, "stream was invalid"),
    ("latency", {}, "downstream", 1.5, "toxicity"),
    ("latency", {}, "downstream", -0.1, "toxicity"),
])
def test_invalid_toxics_are_rejected(type_: str, attrs: dict, stream: str, toxicity: float, fragment: str) -> None:
    with pytest.raises(ToxicError, match=fragment):
        make_toxic(type_, stream=stream, toxicity=toxicity, attributes=attrs)


def test_update_overlays_existing_attributes() -> None:
    assert validate_attributes("latency", {"jitter": 3}, base={"latency": 50, "jitter": 0}) == {"latency": 50, "jitter": 3}
    assert validate_attributes("latency", {"latency": 7.0}) == {"latency": 7, "jitter": 0}


@given(total=st.integers(0, 20_000), avg=st.integers(0, 500), var=st.integers(0, 600), seed=st.integers(0, 2**32))
def test_slice_sizes_cover_everything_within_bounds(total: int, avg: int, var: int, seed: int) -> None:
    sizes = slice_sizes(total, {"average_size": avg, "size_variation": var, "delay": 0}, random.Random(seed))
    assert sum(sizes) == total and all(s >= 1 for s in sizes)
    if avg > 0:
        eff = min(var, avg - 1)
        assert all(s <= avg + eff for s in sizes)
        assert all(s >= avg - eff for s in sizes[:-1])  # only the last slice may be short
    else:
        assert len(sizes) == (1 if total else 0)


@given(lat=st.integers(0, 1000), jit=st.integers(0, 1000), seed=st.integers(0, 2**32))
def test_latency_delay_within_jitter(lat: int, jit: int, seed: int) -> None:
    d = latency_delay_s({"latency": lat, "jitter": jit}, random.Random(seed))
    assert max(0, lat - jit) / 1000 <= d <= (lat + jit) / 1000


def test_server_reports_busy_api_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(OSError):
            ProxyServer(api_port=s.getsockname()[1]).start()
