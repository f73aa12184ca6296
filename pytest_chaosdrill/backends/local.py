"""The in-process harness shared by the ``process`` and ``external`` backends: the venue simulator
and the fault proxy run in this pytest process, each on its own thread and event loop, on loopback."""
from __future__ import annotations

import contextlib
import socket
import sys
from typing import Any, Iterator

from ..target import RenderedTarget, TargetConfig
from ..wiring import ProxyLink, VenueEndpoints
from .base import DrillSite, Harness, key_placeholders


@contextlib.contextmanager
def local_harness(*, seed: int, venue_port: int = 0, proxy_port: int = 0, api_key: Any = None) -> Iterator[Harness]:
    """Start a venue (accepting ``api_key``, a :class:`~pytest_chaosdrill.venue.auth.ApiKey`) and a
    fault proxy in front of it; stop both afterwards, whatever happened."""
    from ..proxy import ProxyServer
    from ..venue import VenueServer

    venue = VenueServer(port=venue_port, seed=seed, keys=[api_key] if api_key is not None else ()).start()
    try:
        server = ProxyServer().start()
        try:
            proxy = server.create_proxy("venue", upstream=f"{venue.host}:{venue.port}", listen=f"127.0.0.1:{proxy_port}")
            yield Harness(venue=venue.control, proxy=ProxyLink("venue", proxy, proxy.listen, in_process=True),
                          proxy_listen=proxy.listen, info={"venue": venue.rest_url, "proxy": proxy.listen},
                          api_key=api_key)
        finally:
            server.stop()
    finally:
        venue.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def placeholders(config: TargetConfig, site: DrillSite, harness: Harness, *, status_port: int,
                 host: str = "127.0.0.1", python: str = sys.executable, control_dir: str | None = None,
                 data_dir: str | None = None) -> dict[str, Any]:
    """The values every ``{placeholder}`` of a target file is filled with (docs/targets.md lists them)."""
    ep = VenueEndpoints.through(harness.proxy_listen)
    return {"venue_rest_url": ep.rest_url, "venue_ws_public_url": ep.ws_public_url,
            "venue_ws_private_url": ep.ws_private_url,
            "control_dir": control_dir or str(site.control_dir), "data_dir": data_dir or str(site.data_dir),
            "host": host, "status_port": status_port, "drill_id": site.drill_id, "python": python,
            "target_dir": str(config.folder), **key_placeholders(harness)}


def render_local(config: TargetConfig, site: DrillSite, harness: Harness, status_port: int) -> RenderedTarget:
    return config.render(placeholders(config, site, harness, status_port=status_port))
