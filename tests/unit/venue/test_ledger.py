"""Unit tests of the witness ledger (pytest_chaosdrill.venue.ledger) on its own."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from pytest_chaosdrill.venue.ledger import Ledger, classify_effect, parse_jsonl


@pytest.mark.parametrize("before,after,effect", [
    (0, 1, "open"), (1, 3, "open"), (-1, -2, "open"), (0, -1, "open"),
    (3, 1, "reduce"), (2, 0, "reduce"), (-2, -1, "reduce"),
    (1, -1, "flip"), (-2, 3, "flip"), (2, -5, "flip"),
    (0, 0, "none"), (4, 4, "none"),
])
def test_classify_effect(before: float, after: float, effect: str) -> None:
    assert classify_effect(before, after) == effect


def order(led: Ledger, cl: str, reduce_only: bool, effect: str, duplicate: bool = False, accepted: bool = True) -> dict:
    return led.append("order", clOrdId=cl, ordId="1", instId="BTC-USDT-SWAP", side="buy", sz=1, reduceOnly=reduce_only,
                      leg=None, accepted=accepted, sCode="0", duplicate=duplicate, effect=effect, pos_before=0, pos_after=0)


def test_entries_have_seq_mono_utc_and_type() -> None:
    led = Ledger()
    a = led.append("session", event="login", conn="priv-1")
    b = led.append("request", method="GET", path="/x", status=200, recon_read=False)
    assert (a["seq"], b["seq"]) == (1, 2) and a["mono"] <= b["mono"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a["utc"])
    assert [e["type"] for e in led.entries()] == ["session", "request"]
    assert led.entries(since_seq=1) == [b]
    with pytest.raises(ValueError, match="unknown ledger entry type"):
        led.append("gossip")
    led.clear()
    assert len(led) == 0 and led.append("session", event="closed", conn="c")["seq"] == 3


def test_queries() -> None:
    led = Ledger()
    o1 = order(led, "a", False, "open")
    order(led, "b", True, "reduce")
    o3 = order(led, "c", True, "flip")           # reduceOnly but it flipped: could add exposure
    order(led, "d", False, "none", accepted=False)  # rejected open attempt still counts as dispatched
    order(led, "a", False, "none", duplicate=True)
    led.append("request", method="GET", path="/api/v5/account/positions", status=200, recon_read=True)
    led.append("request", method="GET", path="/api/v5/market/ticker", status=200, recon_read=False)
    led.append("position", instId="BTC-USDT-SWAP", pos=2, exposure=2)
    led.append("position", instId="BTC-USDT-SWAP", pos=1, exposure=1)
    led.append("session", event="terminated", conn="priv-1")
    assert [e["clOrdId"] for e in led.opens()] == ["a", "c", "d", "a"]
    assert [e["clOrdId"] for e in led.opens(since_mono=o3["mono"])] == ["c", "d", "a"]
    assert [e["clOrdId"] for e in led.orders(until_mono=o1["mono"])] == ["a"]
    assert [e["clOrdId"] for e in led.duplicates()] == ["a"]
    assert [e["path"] for e in led.recon_reads()] == ["/api/v5/account/positions"]
    assert [x for _, x in led.exposure_series()] == [2.0, 1.0]
    assert [s["event"] for s in led.sessions()] == ["terminated"]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    led = Ledger()
    order(led, "a", False, "open")
    led.append("fault", id="f1", kind="lag")
    text = led.to_jsonl()
    assert text.endswith("\n") and len(text.splitlines()) == 2
    assert all(json.loads(line)["seq"] for line in text.splitlines())
    path = led.write_jsonl(tmp_path / "sub" / "ledger.jsonl")
    assert parse_jsonl(path.read_text()) == led.entries()
    copy = Ledger.from_entries(parse_jsonl(text))
    assert copy.opens() == led.opens() and copy.append("session", event="x", conn="c")["seq"] == 3


def test_concurrent_appends_keep_seq_and_time_order() -> None:
    led = Ledger()

    def writer(n: int) -> None:
        for i in range(500):
            led.append("request", method="GET", path=f"/{n}/{i}", status=200, recon_read=False)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = led.entries()
    assert [e["seq"] for e in entries] == list(range(1, 2001))
    assert all(a["mono"] <= b["mono"] for a, b in zip(entries, entries[1:]))
