"""``chaosdrill venue``: run the venue simulator standalone until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the venue options to the subcommand's parser."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8900, help="port for REST, WebSockets and control API (0 = a free port)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the deterministic market (default 7)")
    parser.add_argument("--tick-ms", type=int, default=50, help="market tick period in ms (0 = no ticks; default 50)")


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then stop cleanly and return 0 (1 if the port cannot be bound)."""
    from pytest_chaosdrill.venue import VenueServer  # imported here so `chaosdrill --help` stays light

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server = VenueServer(host=args.host, port=args.port, seed=args.seed, tick_ms=args.tick_ms)
    try:
        try:
            server.start()
        except OSError as e:
            print(f"chaosdrill venue: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
            return 1
        # One URL per line, "name=url", so scripts and tests can parse them.
        print(f"rest_url={server.rest_url}", flush=True)
        print(f"ws_public_url={server.ws_public_url}", flush=True)
        print(f"ws_private_url={server.ws_private_url}", flush=True)
        print(f"control_url={server.control_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    print("venue stopped", flush=True)
    return 0
