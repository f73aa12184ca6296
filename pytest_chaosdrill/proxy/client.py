"""``ProxyClient``: the ``FaultProxy`` operations over the HTTP API (e.g. a proxy in a container).

It speaks Toxiproxy's API, so apart from the counters it also drives a real Toxiproxy.
"""
from __future__ import annotations

from typing import Any

import requests

from .server import wait_acted
from .toxics import Toxic


class ProxyAPIError(RuntimeError):
    """The API answered with an error status; ``status`` and ``message`` are its fields."""

    def __init__(self, status: int, message: str, method: str, url: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {message}")
        self.status = status
        self.message = message


class ProxyClient:
    """Client of a chaosdrill (or Toxiproxy) HTTP API at ``api_url``."""

    def __init__(self, api_url: str, timeout: float = 5.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def __enter__(self) -> "ProxyClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = self.api_url + path
        resp = self._session.request(method, url, json=body, timeout=self.timeout)
        if resp.status_code >= 400:
            try:
                message = resp.json().get("error") or resp.text
            except ValueError:
                message = resp.text
            raise ProxyAPIError(resp.status_code, message, method, url)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def version(self) -> str:
        """The server's version string."""
        data = self._request("GET", "/version")
        return data["version"] if isinstance(data, dict) else str(data)

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True,
                     tls: dict[str, str] | None = None) -> dict[str, Any]:
        """Create a proxy; returns its JSON (``listen`` holds the real port when 0 was asked).
        ``tls={"cert": PEM file as the proxy process sees it}`` terminates TLS on its listener."""
        body: dict[str, Any] = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        if tls is not None:
            body["tls"] = tls
        return self._request("POST", "/proxies", body)

    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy's JSON, by name."""
        return self._request("GET", "/proxies")

    def proxy(self, name: str) -> dict[str, Any]:
        """One proxy's JSON (with its toxics)."""
        return self._request("GET", f"/proxies/{name}")

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy and close its connections."""
        self._request("DELETE", f"/proxies/{name}")

    def set_enabled(self, proxy: str, enabled: bool) -> dict[str, Any]:
        """Enable, or disable (refuse new and close existing connections), a proxy."""
        return self._request("POST", f"/proxies/{proxy}", {"enabled": bool(enabled)})

    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  name: str | None = None, **attributes: Any) -> Toxic:
        """Add a toxic; the name defaults to ``<type>_<stream>``."""
        body: dict[str, Any] = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes}
        if name is not None:
            body["name"] = name
        return Toxic.from_json(self._request("POST", f"/proxies/{proxy}/toxics", body))

    def update_toxic(self, proxy: str, name: str, toxicity: float | None = None, **attributes: Any) -> Toxic:
        """Change some attributes (and/or the toxicity) of a toxic."""
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._request("POST", f"/proxies/{proxy}/toxics/{name}", body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic; data it held flows on."""
        self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[Toxic]:
        """The proxy's toxics, in the order they act."""
        return [Toxic.from_json(t) for t in self._request("GET", f"/proxies/{proxy}/toxics")]

    def counters(self, proxy: str) -> dict[str, Any]:
        """chaosdrill extension: the proxy's counters (not in Toxiproxy)."""
        return self._request("GET", f"/proxies/{proxy}/counters")

    def toxic_counters(self, proxy: str, name: str) -> dict[str, Any]:
        """chaosdrill extension: one toxic's counters."""
        return self._request("GET", f"/proxies/{proxy}/toxics/{name}/counters")

    def wait_toxic_acted(self, proxy: str, name: str, timeout: float) -> dict[str, Any]:
        """Poll until the toxic acted on traffic; TimeoutError with the counters otherwise."""
        return wait_acted(lambda: self.toxic_counters(proxy, name), lambda: self.counters(proxy), proxy, name, timeout)

    def reset(self) -> None:
        """Remove every toxic and enable every proxy."""
        self._request("POST", "/reset")
