"""Fault proxy: a Toxiproxy-style asyncio TCP proxy with toxics, counters and an HTTP API.

    with ProxyServer() as server:
        venue = server.create_proxy("venue", upstream="127.0.0.1:8080")
        venue.add_toxic("latency", latency=200)
        ...  # point the target at venue.listen
        venue.wait_toxic_acted("latency_downstream", timeout=5)
"""
from __future__ import annotations

from .client import ProxyAPIError, ProxyClient
from .errors import (BadRequest, ListenError, ProxyError, ProxyExists, ProxyNotFound, ToxicExists,
                     ToxicNotFound)
from .server import FaultProxy, ProxyServer
from .toxics import TOXIC_TYPES, Toxic, ToxicError

__all__ = [
    "ProxyServer", "FaultProxy", "ProxyClient", "ProxyAPIError", "Toxic", "TOXIC_TYPES",
    "ProxyError", "ProxyNotFound", "ProxyExists", "ToxicNotFound", "ToxicExists", "BadRequest",
    "ListenError", "ToxicError",
]
