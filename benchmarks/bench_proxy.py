"""Fault proxy overhead with no toxic: per-request latency and bulk throughput, proxy vs direct.

    .venv/bin/python benchmarks/bench_proxy.py [--requests 2000] [--mb 32]

The upstream (aiohttp) runs in a child process, as a target or venue would; the ProxyServer runs
in this process next to the client, as in a pytest session. Direct and proxied requests use the
same kind of keep-alive ``requests.Session`` and alternate in blocks so machine noise hits both.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import requests

from pytest_chaosdrill.proxy import ProxyServer


def serve_upstream() -> None:
    """Child process: aiohttp upstream on a free port, printed on stdout."""
    import asyncio

    from aiohttp import web

    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b"ok")

    async def blob(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        resp = web.StreamResponse(headers={"Content-Length": str(n)})
        await resp.prepare(request)
        chunk = b"x" * (1 << 20)
        while n > 0:
            await resp.write(chunk[: min(n, len(chunk))])
            n -= len(chunk)
        return resp

    async def sink(request: web.Request) -> web.Response:
        total = 0
        async for data in request.content.iter_any():
            total += len(data)
        return web.Response(text=str(total))

    async def main() -> None:
        app = web.Application(client_max_size=1 << 31)
        app.router.add_get("/small", small)
        app.router.add_get("/blob/{n}", blob)
        app.router.add_post("/sink", sink)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def latencies(base: str, sessions: dict[str, requests.Session], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in sessions}
    block = 50
    for _ in range(0, n, block):
        for name, s in sessions.items():
            url = base[name] + "/small"
            for _ in range(block):
                t = time.perf_counter()
                r = s.get(url)
                out[name].append(time.perf_counter() - t)
                assert r.content == b"ok"
    return out  # type: ignore[return-value]


def throughput(url: str, size: int, upload: bool, reps: int = 3) -> float:
    best = 0.0
    payload = b"u" * size if upload else b""
    with requests.Session() as s:
        for _ in range(reps):
            t = time.perf_counter()
            if upload:
                r = s.post(url + "/sink", data=payload)
                assert int(r.text) == size
            else:
                got = 0
                with s.get(url + f"/blob/{size}", stream=True) as r:
                    for chunk in r.iter_content(1 << 20):
                        got += len(chunk)
                assert got == size
            best = max(best, size / (time.perf_counter() - t) / 1e6)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--mb", type=int, default=32, help="body size for the throughput runs")
    ap.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_upstream:
        serve_upstream()
        return 0

    child = subprocess.Popen([sys.executable, __file__, "--serve-upstream"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with ProxyServer() as server:
            proxy = server.create_proxy("bench", f"127.0.0.1:{port}")
            base = {"direct": f"http://127.0.0.1:{port}", "proxy": f"http://{proxy.listen}"}
            sessions = {k: requests.Session() for k in base}
            latencies(base, sessions, 100)  # warm-up: connections, caches
            lat = latencies(base, sessions, args.requests)
            for s in sessions.values():
                s.close()
            size = args.mb * 1_000_000
            tp = {(k, d): throughput(base[k], size, d == "upload") for k in base for d in ("download", "upload")}
            counters = proxy.counters()
    finally:
        child.terminate()
        child.wait(10)

    ms = {k: (pct(v, 50) * 1e3, pct(v, 99) * 1e3) for k, v in lat.items()}
    print(f"requests per path: {args.requests} (keep-alive GET, 2-byte body)")
    for k in ("direct", "proxy"):
        print(f"{k:>6} latency: p50 {ms[k][0]:.3f} ms  p99 {ms[k][1]:.3f} ms  mean {statistics.mean(lat[k]) * 1e3:.3f} ms")
    print(f" added latency: p50 {ms['proxy'][0] - ms['direct'][0]:.3f} ms  p99 {ms['proxy'][1] - ms['direct'][1]:.3f} ms"
          f"  (goal: p50 < 1 ms)")
    for d in ("download", "upload"):
        print(f"throughput {d:<8} ({args.mb} MB, best of 3): direct {tp[('direct', d)]:.0f} MB/s  "
              f"proxy {tp[('proxy', d)]:.0f} MB/s")
    print(f"proxy counters: {counters['connections_opened']} connections, "
          f"{counters['bytes_upstream']} B upstream, {counters['bytes_downstream']} B downstream")
    return 0


if __name__ == "__main__":
    sys.exit(main())
