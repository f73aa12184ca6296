"""Unit tests of the DNS stub (pytest_chaosdrill.dnsstub): real UDP lookups with dnslib's client."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from pytest_chaosdrill.dnsstub import DNSStub

NAME = "venue.chaosdrill.internal"


@pytest.fixture
def stub():
    with DNSStub({NAME: "10.9.8.7"}) as s:
        yield s


def _ask(stub: DNSStub, name: str = NAME, qtype: str = "A") -> DNSRecord:
    host, port = stub.address
    return DNSRecord.parse(DNSRecord.question(name, qtype).send(host, port, timeout=2))


def _control(stub: DNSStub, method: str, path: str) -> dict:
    host, port = stub.control_address
    req = urllib.request.Request(f"http://{host}:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.loads(r.read())


def test_answers_owned_name_and_counts(stub):
    reply = _ask(stub)
    assert reply.header.rcode == RCODE.NOERROR
    assert [str(rr.rdata) for rr in reply.rr] == ["10.9.8.7"]
    assert _ask(stub, NAME.upper() + ".").rr[0].rtype == QTYPE.A   # case and the root dot do not matter
    assert _control(stub, "GET", "/state")["counts"][NAME] == {"answered": 2}


@pytest.mark.parametrize("mode,rcode", [("nxdomain", RCODE.NXDOMAIN), ("servfail", RCODE.SERVFAIL)])
def test_failure_modes_fail_and_count_then_recover(stub, mode, rcode):
    assert _control(stub, "POST", f"/mode/{mode}")["mode"] == mode
    reply = _ask(stub)
    assert reply.header.rcode == rcode and not reply.rr
    assert _control(stub, "GET", "/state")["counts"][NAME] == {mode: 1}
    _control(stub, "POST", "/mode/answer")
    assert [str(rr.rdata) for rr in _ask(stub).rr] == ["10.9.8.7"]
    assert _control(stub, "GET", "/state")["counts"][NAME] == {mode: 1, "answered": 1}


def test_unknown_name_is_nxdomain_and_not_counted_for_owned(stub):
    assert _ask(stub, "example.com").header.rcode == RCODE.NXDOMAIN
    counts = _control(stub, "GET", "/state")["counts"]
    assert NAME not in counts and counts["example.com"] == {"unknown": 1}


def test_aaaa_is_empty_noerror(stub):
    reply = _ask(stub, qtype="AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr


def test_bad_mode_is_400_and_mode_unchanged(stub):
    with pytest.raises(urllib.error.HTTPError) as exc:
        _control(stub, "POST", "/mode/bogus")
    assert exc.value.code == 400
    assert _control(stub, "GET", "/state")["mode"] == "answer"


def test_bad_address_rejected():
    with pytest.raises(Exception):
        DNSStub({NAME: "not-an-ip"})
