"""Venue simulator throughput: REST orders/s over one keep-alive session, WebSocket messages/s received.

    .venv/bin/python benchmarks/bench_venue.py [--orders 2000] [--seconds 3] [--tick-ms 2] [--subscribers 1]

"REST place-order" is comparable across versions (a venue without keys does not authenticate);
"signed" is what a drill's venue does (signature checked, the demo header required).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import requests

from pytest_chaosdrill.venue import VenueServer
from pytest_chaosdrill.venue.auth import ApiKey, rest_headers
from pytest_chaosdrill.venue.probe import WsProbe

INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")


def bench_rest(n: int, signed: bool = False) -> dict[str, float]:
    """Place ``n`` market orders (alternating buy/sell) on one keep-alive session; ``signed``: on a venue
    that authenticates, each request signed as OKX clients sign it (as in every drill)."""
    key = ApiKey.generate()
    with VenueServer(port=0, tick_ms=50, keys=[key] if signed else ()) as v, requests.Session() as http:
        path = "/api/v5/trade/order"
        url = v.rest_url + path
        lat = []
        t0 = time.perf_counter()
        for i in range(n):
            body = json.dumps({"instId": INSTS[i % 2], "tdMode": "cross", "clOrdId": f"b{i}", "ordType": "market",
                               "sz": "1", "side": "buy" if (i // 2) % 2 == 0 else "sell"})
            headers = rest_headers(key, "POST", path, body) if signed else {"Content-Type": "application/json"}
            s = time.perf_counter()
            r = http.post(url, data=body, headers=headers, timeout=5)
            lat.append(time.perf_counter() - s)
            if r.status_code != 200 or r.json()["code"] != "0":
                raise RuntimeError(f"order {i} failed: {r.status_code} {r.text}")
        wall = time.perf_counter() - t0
        ledger_entries = len(v.control.ledger())
    lat.sort()
    return {"orders": n, "seconds": wall, "req_per_s": n / wall, "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000, "ledger_entries": ledger_entries}


def bench_ws(seconds: float, tick_ms: int, subscribers: int) -> dict[str, float]:
    """Count books+trades messages received for both instruments by ``subscribers`` sockets."""
    with VenueServer(port=0, tick_ms=tick_ms) as v:
        probes = [WsProbe(v.ws_public_url) for _ in range(subscribers)]
        try:
            for p in probes:
                p.send({"op": "subscribe", "args": [{"channel": c, "instId": i} for c in ("books", "trades") for i in INSTS]})
                p.collect(0.2)  # acks and snapshots
            counts = [0] * subscribers
            t0 = time.perf_counter()
            end = t0 + seconds
            # Read round-robin with short timeouts so no socket's buffer backs up the venue.
            while time.perf_counter() < end:
                for k, p in enumerate(probes):
                    while p.recv(0.001) is not None:
                        counts[k] += 1
            wall = time.perf_counter() - t0
            ticks = v.control.state()["tick"]
        finally:
            for p in probes:
                p.close()
    total = sum(counts)
    return {"subscribers": subscribers, "tick_ms": tick_ms, "seconds": wall, "messages": total,
            "msgs_per_s": total / wall, "expected_per_s": subscribers * 4 * 1000 / tick_ms, "ticks": ticks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--tick-ms", type=int, default=2)
    ap.add_argument("--subscribers", type=int, default=1)
    a = ap.parse_args()
    for label, signed in (("REST place-order", False), ("REST place-order, signed", True)):
        rest = bench_rest(a.orders, signed)
        print(f"{label}: {rest['req_per_s']:.0f} req/s ({rest['orders']} orders in {rest['seconds']:.2f} s, "
              f"p50 {rest['p50_ms']:.2f} ms, p99 {rest['p99_ms']:.2f} ms, {rest['ledger_entries']} ledger entries)")
    ws = bench_ws(a.seconds, a.tick_ms, a.subscribers)
    print(f"WS books+trades: {ws['msgs_per_s']:.0f} msgs/s received ({ws['messages']} in {ws['seconds']:.2f} s, "
          f"{ws['subscribers']} subscriber(s), tick {ws['tick_ms']} ms = {ws['expected_per_s']:.0f} msgs/s nominal, "
          f"{ws['ticks']} ticks done)")


if __name__ == "__main__":
    main()
