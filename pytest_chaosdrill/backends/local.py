"""The in-process harness shared by the ``process`` and ``external`` backends: the venue simulator
and the fault proxy run in this pytest process, each on its own thread and event loop, on loopback."""
from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING, Any, Iterator

from ..target import RenderedTarget, TargetConfig
from ..tls import ca_env
from ..wiring import ProxyLink
from .base import DrillSite, Harness, key_placeholders

if TYPE_CHECKING:  # pragma: no cover
    from ..tls import TLSFiles

#: The TLS-terminating proxy in front of the ``venue`` proxy (target file ``venue: {tls: true}``).
TLS_PROXY = "venue_tls"


@contextlib.contextmanager
def local_harness(*, seed: int, venue_port: int = 0, proxy_port: int = 0, api_key: Any = None,
                  tls: "TLSFiles | None" = None, tls_port: int = 0) -> Iterator[Harness]:
    """Start a venue (accepting ``api_key``, a :class:`~pytest_chaosdrill.venue.auth.ApiKey`) and a
    fault proxy in front of it; stop both afterwards, whatever happened.

    With ``tls`` (the session CA's files) a second proxy, ``venue_tls``, terminates TLS on a free
    loopback port and passes the plaintext to the ``venue`` proxy, whose toxics so act on every
    connection the target makes, TLS or not."""
    from ..proxy import ProxyServer
    from ..venue import VenueServer

    venue = VenueServer(port=venue_port, seed=seed, keys=[api_key] if api_key is not None else ()).start()
    try:
        server = ProxyServer().start()
        try:
            proxy = server.create_proxy("venue", upstream=f"{venue.host}:{venue.port}", listen=f"127.0.0.1:{proxy_port}")
            info = {"venue": venue.rest_url, "proxy": proxy.listen}
            tls_listen = None
            if tls is not None:
                tls_listen = server.create_proxy(TLS_PROXY, upstream=proxy.listen, listen=f"127.0.0.1:{tls_port}",
                                                 tls={"cert": str(tls.leaf_file)}).listen
                info["proxy_tls"] = tls_listen
            yield Harness(venue=venue.control, proxy=ProxyLink("venue", proxy, proxy.listen, in_process=True),
                          proxy_listen=proxy.listen, info=info, tls_listen=tls_listen,
                          ca_file=str(tls.ca_file) if tls is not None else None, api_key=api_key)
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
    return {**harness.placeholders(),
            "control_dir": control_dir or str(site.control_dir), "data_dir": data_dir or str(site.data_dir),
            "host": host, "status_port": status_port, "drill_id": site.drill_id, "python": python,
            "target_dir": str(config.folder), **key_placeholders(harness)}


def render_local(config: TargetConfig, site: DrillSite, harness: Harness, status_port: int) -> RenderedTarget:
    rendered = config.render(placeholders(config, site, harness, status_port=status_port))
    if harness.ca_file:
        # The CA for every TLS stack the service may use; the target file's own env wins.
        rendered.env = {**ca_env(harness.ca_file), **rendered.env}
    return rendered
