"""TLS on a proxy's listener: the proxy terminates TLS from the client and passes the plaintext on
to its upstream, so toxics that read requests (``partition``'s ``match``) see HTTP, not ciphertext.

A proxy gets TLS with ``tls={"cert": PATH}`` (a PEM file holding the private key and the certificate
chain, as the proxy process sees it) on ``create_proxy`` / ``POST /proxies``.
"""
from __future__ import annotations

import ssl
from typing import Any

from .errors import BadRequest


def server_context(tls: Any) -> ssl.SSLContext | None:
    """The listener's SSL context for a proxy's ``tls`` option (None: plain TCP)."""
    if tls is None:
        return None
    if not isinstance(tls, dict) or not isinstance(tls.get("cert"), str) or set(tls) - {"cert"}:
        raise BadRequest(f"bad field tls: want {{\"cert\": \"<PEM file with key and chain>\"}}, got {tls!r}")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(tls["cert"])
    except (OSError, ssl.SSLError) as exc:
        raise BadRequest(f"bad field tls.cert: cannot load {tls['cert']!r}: {exc}") from None
    # HTTP/1.1 only: the proxy forwards bytes to an HTTP/1.1 upstream (WebSocket upgrades need it).
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
