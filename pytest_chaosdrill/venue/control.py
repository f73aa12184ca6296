"""The venue control surface: fault injection, fault records, witness ledger, state and reset.

:class:`ControlAPI` defines the methods once; :class:`VenueControl` performs them in-process (on the
venue's loop thread) and :class:`~pytest_chaosdrill.venue.client.VenueClient` over the HTTP control
API that :func:`add_control_routes` serves under ``/_venue/``.
"""
from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Iterable

from aiohttp import web

from .auth import ApiKey
from .faults import FAULT_KINDS, FaultRecord
from .ledger import Ledger

if TYPE_CHECKING:
    from .core import VenueCore
    from .server import VenueServer

DEFAULT_INST = "BTC-USDT-SWAP"


class ControlAPI(ABC):
    """Fault injection and witness access; every fault method returns the :class:`FaultRecord`."""

    @abstractmethod
    def _fault(self, kind: str, params: dict[str, Any]) -> FaultRecord: ...

    @abstractmethod
    def _get_fault(self, fault_id: str) -> FaultRecord | None: ...

    @abstractmethod
    def faults(self) -> list[FaultRecord]:
        """All fault records, in request order."""

    @abstractmethod
    def ledger(self, since_seq: int = 0) -> list[dict]:
        """Witness ledger entries with ``seq > since_seq``."""

    @abstractmethod
    def state(self) -> dict:
        """Positions, open orders, market, sessions, active faults and counters."""

    @abstractmethod
    def reset(self) -> None:
        """Clear orders, positions, ledger and faults."""

    @abstractmethod
    def add_key(self, key: ApiKey) -> None:
        """Accept ``key`` for signed private requests from now on (the venue then authenticates)."""

    def witness(self, since_seq: int = 0) -> Ledger:
        """The ledger entries as a :class:`Ledger` to run the drill queries on (opens(), ...)."""
        return Ledger.from_entries(self.ledger(since_seq))

    # -- faults (names and parameters as in docs/venue-protocol.md) -------------------------------

    def book_gap(self, inst_id: str = DEFAULT_INST, skip: int = 5) -> FaultRecord:
        """The next ``books`` update of ``inst_id`` skips ``skip`` seqIds."""
        return self._fault("book_gap", {"instId": inst_id, "skip": skip})

    def trades_gap(self, inst_id: str = DEFAULT_INST, mode: str = "skip", count: int = 3) -> FaultRecord:
        """Skip ``count`` trade ids (mode "skip"), send the next two trades out of order ("reorder"), send the
        next trade ``count`` more times with the same id ("repeat"), or skip ``count`` ids and send that
        trade twice ("skip_repeat": a gap and a repeated id)."""
        return self._fault("trades_gap", {"instId": inst_id, "mode": mode, "count": count})

    def freeze(self, channels: Iterable[str] = ("books", "trades")) -> FaultRecord:
        """Stale feed: public sockets stay open, nothing is sent on ``channels`` until cleared."""
        return self._fault("freeze", {"channels": list(channels)})

    def lag(self, ms: int) -> FaultRecord:
        """Delay every public message by ``ms`` (order kept) until cleared."""
        return self._fault("lag", {"ms": ms})

    def session_termination(self, refuse_reauth_s: float | None = 2.0, mechanism: str = "key_revoked") -> FaultRecord:
        """End every logged-in private session the OKX way (``mechanism`` "key_revoked": close 4007;
        "service_upgrade": notice 64008, then close 1012); refuse logins for ``refuse_reauth_s``
        (None: until :meth:`allow_reauth`)."""
        return self._fault("session_termination", {"refuse_reauth_s": refuse_reauth_s, "mechanism": mechanism})

    def allow_reauth(self) -> FaultRecord:
        """Accept private logins again."""
        return self._fault("allow_reauth", {})

    def partial_fill(self) -> FaultRecord:
        """The next two-leg batch whose leg A fills and leaves exposure to contain: leg B is rejected with sCode 51008."""
        return self._fault("partial_fill", {})

    def rate_limit(self, requests: int | None = None, seconds: float | None = None) -> FaultRecord:
        """HTTP 429 on REST for the next ``requests`` requests and/or ``seconds`` (neither: until cleared)."""
        return self._fault("rate_limit", {"requests": requests, "seconds": seconds})

    def http_5xx(self, requests: int | None = None, seconds: float | None = None) -> FaultRecord:
        """HTTP 503 on REST for the next ``requests`` requests and/or ``seconds`` (neither: until cleared)."""
        return self._fault("http_5xx", {"requests": requests, "seconds": seconds})

    def rest_latency(self, ms: int, seconds: float | None = None) -> FaultRecord:
        """Delay every REST answer by ``ms`` for ``seconds`` (None: until cleared)."""
        return self._fault("rest_latency", {"ms": ms, "seconds": seconds})

    def clock_skew(self, offset_s: float, seconds: float | None = None) -> FaultRecord:
        """Jump the venue's clock by ``offset_s`` seconds for ``seconds`` (None: until cleared): requests
        signed with the client's own time fall outside OKX's 30 s window and are refused (REST 50102,
        WebSocket login 60006); ``public/time`` and every ``ts`` the venue stamps move with it. Lands on
        the first request the venue refuses for its timestamp (``detail``: ``refused_requests``,
        ``refused_logins``)."""
        return self._fault("clock_skew", {"offset_s": offset_s, "seconds": seconds})

    def recon_hold(self, ms: int, seconds: float | None = None) -> FaultRecord:
        """Hold each answer to a reconciliation read (positions, pending orders) for ``ms`` after the
        read arrived, for ``seconds`` (None: until cleared); other requests are not delayed."""
        return self._fault("recon_hold", {"ms": ms, "seconds": seconds})

    def clear(self, kind: str | None = None) -> FaultRecord:
        """End active faults (of one kind, or all)."""
        return self._fault("clear", {"kind": kind})

    # -- proof -----------------------------------------------------------------------------------

    def wait_landed(self, record_or_id: FaultRecord | str, timeout: float) -> FaultRecord:
        """Poll until the fault took effect and return its record; TimeoutError if it never did."""
        fault_id = record_or_id.id if isinstance(record_or_id, FaultRecord) else str(record_or_id)
        deadline = time.monotonic() + timeout
        while True:
            rec = self._get_fault(fault_id)
            if rec is None:
                raise KeyError(f"no fault record {fault_id!r} (was the venue reset?)")
            if rec.landed:
                return rec
            if time.monotonic() >= deadline:
                why = rec.detail.get("waiting_for") or "its trigger condition"
                state = "still active" if rec.active else "no longer active"
                raise TimeoutError(f"venue fault {rec.id} ({rec.kind} {rec.params}) did not take effect within "
                                   f"{timeout}s ({state}): it was waiting for {why}")
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))


class VenueControl(ControlAPI):
    """In-process control of a running :class:`VenueServer`; thread-safe (runs on the venue loop)."""

    def __init__(self, server: "VenueServer") -> None:
        self._server = server

    @property
    def _core(self) -> "VenueCore":
        return self._server.core

    def _fault(self, kind: str, params: dict[str, Any]) -> FaultRecord:
        return self._server.call(lambda: self._core.request_fault(kind, params).copy())

    def _get_fault(self, fault_id: str) -> FaultRecord | None:
        def get() -> FaultRecord | None:
            rec = self._core.faults.get(fault_id)
            return rec.copy() if rec else None
        return self._server.call(get)

    def faults(self) -> list[FaultRecord]:
        return self._server.call(lambda: [r.copy() for r in self._core.faults.records])

    def ledger(self, since_seq: int = 0) -> list[dict]:
        return self._core.ledger.entries(since_seq)  # the ledger is thread-safe on its own

    def state(self) -> dict:
        return self._server.call(self._core.state)

    def reset(self) -> None:
        self._server.call(self._core.reset)

    def add_key(self, key: ApiKey) -> None:
        self._server.call(self._core.auth.add, key)


# -- HTTP control API -----------------------------------------------------------------------------

def _err(status: int, msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=status)


def add_control_routes(app: web.Application, core: "VenueCore") -> None:
    """Serve the control API (docs/venue-protocol.md, "Control API") under ``/_venue/``."""

    async def post_fault(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in FAULT_KINDS:
            return _err(404, f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        text = await request.text()
        try:
            body = json.loads(text) if text.strip() else {}
        except ValueError:
            return _err(400, "body must be JSON")
        if not isinstance(body, dict):
            return _err(400, "body must be a JSON object")
        try:
            rec = core.request_fault(kind, body)
        except ValueError as e:
            return _err(400, str(e))
        return web.json_response(rec.to_dict())

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response([r.to_dict() for r in core.faults.records])

    async def get_fault(request: web.Request) -> web.Response:
        rec = core.faults.get(request.match_info["id"])
        return web.json_response(rec.to_dict()) if rec else _err(404, f"no fault {request.match_info['id']!r}")

    async def ledger(request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since_seq", "0"))
        except ValueError:
            return _err(400, "since_seq must be an integer")
        return web.Response(text=core.ledger.to_jsonl(since), content_type="application/x-ndjson")

    async def state(request: web.Request) -> web.Response:
        return web.json_response(core.state())

    async def reset(request: web.Request) -> web.Response:
        core.reset()
        return web.json_response({"ok": True})

    async def add_key(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
            key = ApiKey(str(body["api_key"]), str(body["secret_key"]), str(body["passphrase"]))
        except (ValueError, KeyError, TypeError):
            return _err(400, "body must be a JSON object with api_key, secret_key and passphrase")
        core.auth.add(key)
        return web.json_response({"api_key": key.api_key})  # never the secrets

    app.router.add_post("/_venue/keys", add_key)
    app.router.add_post("/_venue/faults/{kind}", post_fault)
    app.router.add_get("/_venue/faults", list_faults)
    app.router.add_get("/_venue/faults/{id}", get_fault)
    app.router.add_get("/_venue/ledger", ledger)
    app.router.add_get("/_venue/state", state)
    app.router.add_post("/_venue/reset", reset)
