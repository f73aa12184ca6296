"""Unit tests of the ``dns.failure`` trigger (faults/network.py) over a real DNS stub: the proof is the
stub's own count of refused lookups, so a service that never asks again leaves the fault unproven."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from dnslib import RCODE, DNSRecord

from pytest_chaosdrill import dnsstub
from pytest_chaosdrill.errors import FaultNotLanded
from pytest_chaosdrill.faults.network import FAIL_MODES, DNSFailure
from pytest_chaosdrill.registry import builtin_triggers

NAME = "venue.chaosdrill.internal"


class StubTarget:
    """What a backend with the ``dns`` capability offers: the stub's control, here in process."""

    backend = "unit"

    def __init__(self, stub: dnsstub.DNSStub) -> None:
        self.stub = stub

    def dns_fail(self, mode: str) -> dict:
        return self.stub.resolver.set_mode(mode)

    def dns_restore(self) -> dict:
        return self.stub.resolver.set_mode("answer")

    def dns_state(self) -> dict:
        return self.stub.resolver.state()


class Proxy:
    def __init__(self) -> None:
        self.toxics: list[str] = []
        self.removed: list[str] = []

    def add_toxic(self, type: str, **kw):
        self.toxics.append(type)
        return SimpleNamespace(name=f"{type}_downstream")

    def remove_toxic(self, name: str) -> None:
        self.removed.append(name)


@pytest.fixture
def stub():
    with dnsstub.DNSStub({NAME: "10.0.0.9"}) as s:
        yield s


def _lookup(stub) -> int:
    host, port = stub.address
    return DNSRecord.parse(DNSRecord.question(NAME).send(host, port, timeout=2)).header.rcode


def test_registered_and_needs_dns():
    assert builtin_triggers()["dns.failure"] is DNSFailure
    assert DNSFailure.requires == frozenset({"dns"})
    assert set(FAIL_MODES) == set(dnsstub.MODES) - {"answer"}


@pytest.mark.parametrize("params,problem", [
    ({"mode": "refused"}, "mode"), ({"min_failed": 0}, "min_failed"), ({"bogus": 1}, "bogus"),
    ({"reset_connections": "yes"}, "reset_connections")])
def test_bad_params(params, problem):
    problems = DNSFailure.check_params(params)
    assert problems and problem in problems[0]


@pytest.mark.parametrize("mode,rcode", [("nxdomain", RCODE.NXDOMAIN), ("servfail", RCODE.SERVFAIL)])
def test_landed_only_when_the_service_is_refused(stub, mode, rcode):
    assert _lookup(stub) == RCODE.NOERROR         # lookups before the fault are not its proof
    proxy = Proxy()
    trig = DNSFailure(SimpleNamespace(target=StubTarget(stub), proxy=proxy), {"mode": mode, "min_failed": 2})
    info = trig.fire()
    assert info["failed_before"] == 0 and proxy.toxics == ["reset_peer"]
    asker = threading.Thread(target=lambda: [time.sleep(0.1), _lookup(stub), _lookup(stub)])
    asker.start()
    proof = trig.wait_landed(timeout=5)
    asker.join()
    assert proof["failed_lookups"] == 2 and proof["stub_counts"][NAME][mode] == 2
    assert trig.landed_mono is not None
    out = trig.release()
    assert out["mode"] == "answer" and proxy.removed == ["reset_peer_downstream"]
    assert _lookup(stub) == RCODE.NOERROR


def test_not_landed_when_nobody_asks(stub):
    trig = DNSFailure(SimpleNamespace(target=StubTarget(stub), proxy=Proxy()), {"reset_connections": False})
    trig.fire()
    with pytest.raises(FaultNotLanded, match="never looked the venue's name up again"):
        trig.wait_landed(timeout=0.3)
    trig.release()


def test_backend_without_stub_cannot_fire():
    trig = DNSFailure(SimpleNamespace(target=SimpleNamespace(backend="process"), proxy=Proxy()), {})
    with pytest.raises(FaultNotLanded, match="no DNS stub"):
        trig.fire()
