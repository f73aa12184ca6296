"""Handles that give drills one interface to the venue and the fault proxy wherever they run
(in this process, or in a container reached over their HTTP APIs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class VenueEndpoints:
    """Where a target finds the venue: its URLs as seen through the fault proxy."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str

    @classmethod
    def through(cls, listen: str, tls: bool = False) -> "VenueEndpoints":
        """The venue's URLs as seen through a proxy listening on ``listen`` (host:port; with ``tls``
        a TLS listener: https/wss, and port 443 is left out as a client writes it)."""
        http, ws = ("https", "wss") if tls else ("http", "ws")
        if tls and listen.endswith(":443"):
            listen = listen[:-4]
        return cls(f"{http}://{listen}", f"{ws}://{listen}/ws/v5/public", f"{ws}://{listen}/ws/v5/private")


class ProxyLink:
    """One named proxy (the target↔venue link), driven in-process or through the Toxiproxy-style API."""

    def __init__(self, name: str, api: Any, listen: str, in_process: bool) -> None:
        self.name = name
        self.api = api
        self.listen = listen
        self.in_process = in_process

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.api, method)
        return fn(*args, **kwargs) if self.in_process else fn(self.name, *args, **kwargs)

    def add_toxic(self, type: str, **kwargs: Any) -> Any:
        return self._call("add_toxic", type, **kwargs)

    def remove_toxic(self, name: str) -> None:
        self._call("remove_toxic", name)

    def toxic_counters(self, name: str) -> dict[str, Any]:
        return self._call("toxic_counters", name)

    def wait_toxic_acted(self, name: str, timeout: float) -> dict[str, Any]:
        return self._call("wait_toxic_acted", name, timeout=timeout)

    def counters(self) -> dict[str, Any]:
        return self._call("counters")

    def connections(self) -> list[dict[str, Any]]:
        """Who opened each proxied connection (in-process proxies only: the Toxiproxy API has no such verb)."""
        if not self.in_process:
            raise NotImplementedError("the proxy's connection log is read in-process only")
        return self.api.connections()
