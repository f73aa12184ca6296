"""Errors of the fault proxy; each maps to the HTTP status Toxiproxy uses for it."""
from __future__ import annotations

from .toxics import ToxicError


class ProxyError(Exception):
    """Base class: ``status`` is the HTTP status the API answers with."""

    status = 500


class ProxyNotFound(ProxyError, KeyError):
    """No proxy with that name (404)."""

    status = 404

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "proxy not found"


class ProxyExists(ProxyError):
    """A proxy with that name already exists (409)."""

    status = 409


class ToxicNotFound(ProxyError, KeyError):
    """No toxic with that name on the proxy (404)."""

    status = 404

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "toxic not found"


class ToxicExists(ProxyError):
    """A toxic with that name already exists on the proxy (409)."""

    status = 409


class BadRequest(ProxyError, ValueError):
    """The request is malformed: missing field, bad address, bad toxic (400)."""

    status = 400


class ListenError(ProxyError):
    """The proxy could not listen on its address (500, as Toxiproxy)."""

    status = 500


__all__ = [
    "ProxyError",
    "ProxyNotFound",
    "ProxyExists",
    "ToxicNotFound",
    "ToxicExists",
    "BadRequest",
    "ListenError",
    "ToxicError",
]
