"""The DNS stub of DNS-failure drills: answers the venue's drill hostname, or fails it on command.

A leaf (it imports nothing of the plugin). It owns a few names (``name -> IPv4``) and answers them
with an A record while its mode is ``answer``; in mode ``nxdomain`` or ``servfail`` it refuses them
with that response code. Every lookup of an owned name is counted by outcome, so a drill proves its
fault landed by the stub's own count of failed lookups, not by the service's word. Names it does not
own get NXDOMAIN (a drill's container has no route out; nothing is forwarded).

The wire format is :mod:`dnslib`'s (parsing and building packets, its UDP server); control is a tiny
HTTP endpoint on loopback or the drill's own network:

* ``GET /state`` -> ``{"mode": ..., "names": {...}, "counts": {name: {outcome: n}}}``
* ``POST /mode/<answer|nxdomain|servfail>`` -> the state after the switch

Run it as ``python -m pytest_chaosdrill.dnsstub --record venue.chaosdrill.internal=172.18.0.5``.
"""
from __future__ import annotations

import argparse
import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

#: The modes of the stub: ``answer`` resolves owned names, the others fail them with that code.
MODES = ("answer", "nxdomain", "servfail")
_RCODES = {"nxdomain": RCODE.NXDOMAIN, "servfail": RCODE.SERVFAIL}
#: A short TTL, so a client that honours it asks again soon after the fault (aiohttp caches 10 s anyway).
TTL = 1


def _norm(name: str) -> str:
    return str(name).rstrip(".").lower()


class StubResolver(BaseResolver):
    """Answers owned names per the current mode and counts each lookup's outcome (thread-safe)."""

    def __init__(self, records: Mapping[str, str]) -> None:
        self.records = {_norm(k): str(A(v)) for k, v in records.items()}  # A(v) rejects a bad address
        self._lock = threading.Lock()
        self._mode = "answer"
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> dict[str, Any]:
        """Switch the mode; returns the state after the switch."""
        if mode not in MODES:
            raise ValueError(f"unknown DNS stub mode {mode!r}; known: {', '.join(MODES)}")
        with self._lock:
            self._mode = mode
        return self.state()

    def state(self) -> dict[str, Any]:
        """The mode, the owned names and the per-name count of lookups by outcome."""
        with self._lock:
            counts = {n: dict(c) for n, c in self._counts.items()}
            return {"mode": self._mode, "names": dict(self.records), "counts": counts}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = _norm(request.q.qname)
        with self._lock:
            mode = self._mode
            if name not in self.records:
                outcome = "unknown"
                reply.header.rcode = RCODE.NXDOMAIN
            elif mode != "answer":
                outcome = mode
                reply.header.rcode = _RCODES[mode]
            elif request.q.qtype in (QTYPE.A, QTYPE.ANY):
                outcome = "answered"
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.records[name]), ttl=TTL))
            else:   # AAAA and the rest: the name exists, no record of that type (NOERROR, empty)
                outcome = "empty"
            self._counts[name][outcome] += 1
        return reply


class DNSStub:
    """The stub's UDP server and its HTTP control endpoint, started and stopped together."""

    def __init__(self, records: Mapping[str, str], *, host: str = "127.0.0.1", port: int = 0,
                 control_host: str = "127.0.0.1", control_port: int = 0) -> None:
        self.resolver = StubResolver(records)
        self._server = DNSServer(self.resolver, address=host, port=port,
                                 logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False))
        self._control = ThreadingHTTPServer((control_host, control_port), _control_handler(self.resolver))
        self._control.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the DNS server (UDP)."""
        return self._server.server.server_address[:2]

    @property
    def control_address(self) -> tuple[str, int]:
        """(host, port) of the HTTP control endpoint."""
        return self._control.server_address[:2]

    def start(self) -> "DNSStub":
        self._server.start_thread()
        t = threading.Thread(target=self._control.serve_forever, name="dnsstub-control", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._control.shutdown()
        self._control.server_close()
        self._server.stop()
        self._server.server.server_close()

    def __enter__(self) -> "DNSStub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _control_handler(resolver: StubResolver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/state":
                self._send(200, resolver.state())
            else:
                self._send(404, {"error": f"no such path {self.path}; GET /state, POST /mode/<mode>"})

        def do_POST(self) -> None:  # noqa: N802
            mode = self.path.removeprefix("/mode/") if self.path.startswith("/mode/") else None
            try:
                self._send(200, resolver.set_mode(mode or ""))
            except ValueError as exc:
                self._send(400, {"error": str(exc)})

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the state is the record
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run the stub until killed (the sidecar container's command)."""
    p = argparse.ArgumentParser(prog="python -m pytest_chaosdrill.dnsstub", description=__doc__.splitlines()[0])
    p.add_argument("--record", action="append", default=[], metavar="NAME=IPV4", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--control-host", default="127.0.0.1")
    p.add_argument("--control-port", type=int, default=5380)
    a = p.parse_args(argv)
    records = {}
    for item in a.record:
        name, sep, ip = item.partition("=")
        if not sep or not name or not ip:
            p.error(f"--record {item!r}: expected NAME=IPV4")
        records[name] = ip
    stub = DNSStub(records, host=a.host, port=a.port, control_host=a.control_host, control_port=a.control_port)
    stub.start()
    print(json.dumps({"dns": stub.address, "control": stub.control_address}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()
