"""``chaosdrill proxy``: run the fault proxy and its Toxiproxy-style HTTP API until SIGINT/SIGTERM."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the subcommand's options."""
    parser.add_argument("--api-host", default="127.0.0.1", help="HTTP API host (default: 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=8474,
                        help="HTTP API port (default: 8474 like Toxiproxy; 0 = pick a free port)")
    parser.add_argument("--config", metavar="FILE.json",
                        help="JSON list of proxies to create at start: [{name, listen, upstream, enabled?}]")


def _load_config(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, list) or not all(isinstance(p, dict) for p in data):
        raise ValueError(f"{path}: expected a JSON list of proxy objects")
    for i, p in enumerate(data):
        missing = [k for k in ("name", "upstream") if not p.get(k)]
        if missing:
            raise ValueError(f"{path}: proxy #{i} lacks {', '.join(missing)}")
    return data


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; exit 0 then, 1 on a bad config or an unusable port."""
    from pytest_chaosdrill.proxy import ProxyError, ProxyServer

    try:
        proxies = _load_config(args.config) if args.config else []
    except (OSError, ValueError) as exc:
        print(f"chaosdrill proxy: cannot read config: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    # Signal handlers only set a flag: the main thread then stops the server cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    server = ProxyServer(api_host=args.api_host, api_port=args.api_port)
    try:
        server.start()
    except OSError as exc:
        print(f"chaosdrill proxy: cannot listen on {args.api_host}:{args.api_port}: {exc}", file=sys.stderr)
        return 1
    try:
        for p in proxies:
            fp = server.create_proxy(p["name"], p["upstream"], p.get("listen") or "127.0.0.1:0")
            if p.get("enabled") is False:
                fp.enabled = False
            print(f"proxy {fp.name}: {fp.listen} -> {fp.upstream}", flush=True)
        print(f"chaosdrill proxy API listening on {server.api_url}", flush=True)
        while not stop.wait(0.5):
            pass
    except ProxyError as exc:
        print(f"chaosdrill proxy: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    return 0
