"""VenueClient: the control API over HTTP, for a venue running in another process or container."""
from __future__ import annotations

from typing import Any

import requests

from .auth import ApiKey
from .control import ControlAPI
from .faults import FaultRecord
from .ledger import parse_jsonl


class VenueControlError(RuntimeError):
    """The control API refused a request (bad parameters, unknown fault, venue error)."""


class VenueClient(ControlAPI):
    """Same methods as :class:`~pytest_chaosdrill.venue.control.VenueControl`, over ``/_venue/``."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self._http.close()

    def __enter__(self) -> "VenueClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _req(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        url = f"{self.base_url}/_venue/{path}"
        try:
            r = self._http.request(method, url, json=body, params=params or None, timeout=self.timeout)
        except requests.RequestException as e:
            raise VenueControlError(f"venue control API unreachable at {url}: {e}") from e
        if r.status_code != 200:
            try:
                msg = r.json().get("error", r.text)
            except ValueError:
                msg = r.text
            raise VenueControlError(f"{method} {url} -> HTTP {r.status_code}: {msg}")
        return r

    def _fault(self, kind: str, params: dict[str, Any]) -> FaultRecord:
        return FaultRecord.from_dict(self._req("POST", f"faults/{kind}", params).json())

    def _get_fault(self, fault_id: str) -> FaultRecord | None:
        try:
            return FaultRecord.from_dict(self._req("GET", f"faults/{fault_id}").json())
        except VenueControlError as e:
            if "HTTP 404" in str(e):
                return None
            raise

    def faults(self) -> list[FaultRecord]:
        return [FaultRecord.from_dict(d) for d in self._req("GET", "faults").json()]

    def ledger(self, since_seq: int = 0) -> list[dict]:
        return parse_jsonl(self._req("GET", "ledger", since_seq=since_seq).text)

    def state(self) -> dict:
        return self._req("GET", "state").json()

    def reset(self) -> None:
        self._req("POST", "reset", {})

    def add_key(self, key: ApiKey) -> None:
        self._req("POST", "keys", {"api_key": key.api_key, "secret_key": key.secret_key, "passphrase": key.passphrase})
