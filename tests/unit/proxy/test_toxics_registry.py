"""Toxic types are units behind one interface, registered by name (pytest_chaosdrill.proxy.toxics.base)."""
from __future__ import annotations

import importlib

import pytest

from pytest_chaosdrill.proxy import toxics
from pytest_chaosdrill.proxy.toxics.base import REGISTRY, ToxicKind, register

BUILT_IN = ["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "partition"]


def test_every_built_in_type_is_one_module_registered_under_its_name() -> None:
    assert list(REGISTRY) == BUILT_IN
    for name in BUILT_IN:
        module = importlib.import_module(f"pytest_chaosdrill.proxy.toxics.{name}")
        assert type(REGISTRY[name]).__module__ == module.__name__
        assert isinstance(REGISTRY[name], ToxicKind)
    assert toxics.TOXIC_TYPES == {n: dict(k.defaults) for n, k in REGISTRY.items()}


def test_a_name_is_registered_once() -> None:
    class Again(ToxicKind):
        name = "latency"

    with pytest.raises(ValueError, match="registered twice"):
        register(Again)


def test_a_registered_type_is_validated_like_a_built_in_one() -> None:
    class Blackhole(ToxicKind):
        name = "test_blackhole"
        defaults = {"after": 0}

    register(Blackhole)
    try:
        t = toxics.make_toxic("test_blackhole", attributes={"after": 5})
        assert (t.type, t.attributes) == ("test_blackhole", {"after": 5})
        with pytest.raises(toxics.ToxicError, match="unknown attribute 'before'"):
            toxics.make_toxic("test_blackhole", attributes={"before": 5})
    finally:
        del REGISTRY["test_blackhole"]
    with pytest.raises(toxics.ToxicError, match="invalid toxic type 'test_blackhole'"):
        toxics.make_toxic("test_blackhole")
