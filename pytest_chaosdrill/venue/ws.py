"""The venue's WebSocket protocol as OKX v5 clients know it: OKX's envelope, error and close codes, and
the renderers of channel data (the socket loop is :mod:`.wsloop`, routing :mod:`.server`). What a
message *does* (subscriptions, login, trading ops, faults) is the core's business: it runs on the same
loop and owns the state.

Envelope (OKX v5): every answer to a request echoes the request's ``id`` when it had one and carries
the connection's ``connId``; ``"ping"`` text frames get ``"pong"``.
"""
from __future__ import annotations

from typing import Any

from .market import InstrumentState, fmt


PUBLIC_CHANNELS = ("books", "books5", "bbo-tbt", "tickers", "trades")
PRIVATE_CHANNELS = ("orders", "positions", "account", "balance_and_position")
TRADE_OPS = ("order", "batch-orders", "cancel-order", "batch-cancel-orders", "amend-order")
MAX_BATCH = 20

# OKX WebSocket error codes (event "error").
E_LOGGED_OUT = ("60011", "Please log in")
E_INVALID_REQUEST = "60012"                   # "Invalid request: <the request>"
E_INVALID_ARGS = ("60013", "Invalid args")
E_NO_CHANNEL = "60018"                        # "Wrong URL or channel:..., instId:... doesn't exist"
# OKX's notice before a service-upgrade disconnect.
NOTICE_SERVICE_UPGRADE = ("64008", "The connection will soon be closed for a service upgrade. Please reconnect.")

# OKX WebSocket close codes (and one standard one where OKX documents none).
CLOSE_LOGIN_FAILED = 4001
CLOSE_KEY_CHANGED = 4007                      # "API key has been updated or deleted. Please reconnect."
CLOSE_SERVICE_RESTART = 1012                  # RFC 6455 "service restart": the close after a 64008 notice
CLOSE_REASONS = {CLOSE_LOGIN_FAILED: "Login failed.",
                 CLOSE_KEY_CHANGED: "API key has been updated or deleted. Please reconnect.",
                 CLOSE_SERVICE_RESTART: "Service upgrade."}


def answer(body: dict[str, Any], req_id: Any = None) -> dict[str, Any]:
    """An answer to a request: ``body`` with the request's ``id`` first when it had one."""
    return body if req_id is None else {"id": req_id, **body}


def error(code: str, msg: str, conn_id: str, req_id: Any = None) -> dict[str, Any]:
    """An OKX ``error`` event, carrying the request's ``id`` when it had one (ccxt.pro rejects only the
    pending call with that id; without it, every pending call on the socket)."""
    return answer({"event": "error", "code": code, "msg": msg, "connId": conn_id}, req_id)


def invalid_request(raw: str | None, conn_id: str, req_id: Any = None) -> dict[str, Any]:
    """OKX's 60012 answer, quoting the request as OKX does; ``raw=None`` quotes nothing (a private
    socket's request may carry a login's passphrase and signature, which the venue never repeats)."""
    return error(E_INVALID_REQUEST, "Invalid request" if raw is None else f"Invalid request: {raw[:500]}", conn_id, req_id)


def request_id(msg: Any) -> Any:
    """The ``id`` of a client request (None when absent or not a string)."""
    rid = msg.get("id") if isinstance(msg, dict) else None
    return rid if isinstance(rid, str) and rid else None


# -- channel data -------------------------------------------------------------------------------------

def ticker(st: InstrumentState, ts_ms: int) -> dict[str, Any]:
    """The ``tickers`` data entry (24 h figures are the current price: the venue keeps no 24 h window)."""
    last = fmt(st.last_px)
    return {"instType": "SWAP", "instId": st.inst.inst_id, "last": last, "lastSz": str(st.last_sz),
            "askPx": fmt(st.best_ask), "askSz": str(st.asks[0][1]), "bidPx": fmt(st.best_bid),
            "bidSz": str(st.bids[0][1]), "open24h": last, "high24h": last, "low24h": last, "sodUtc0": last,
            "sodUtc8": last, "volCcy24h": "0", "vol24h": "0", "ts": str(ts_ms)}


def position_entries(positions: list[dict[str, Any]], inst_id: str | None = None) -> list[dict[str, Any]]:
    """``positions`` channel entries from the REST positions answer (the same figures)."""
    out = []
    for p in positions:
        if inst_id not in (None, "", p["instId"]):
            continue
        out.append({**p, "posCcy": "", "availPos": p["pos"], "lever": "1", "margin": "", "mgnRatio": "",
                    "liqPx": "", "notionalUsd": "", "cTime": p["uTime"], "pTime": p["uTime"]})
    return out


def account_entry(balance: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``account`` channel entry from the REST balance answer."""
    b = balance[0]
    details = [{**d, "ccy": d["ccy"], "frozenBal": "0", "ordFrozen": "0", "upl": "0", "uTime": b["uTime"]}
               for d in b["details"]]
    return {**b, "details": details, "isoEq": "0", "adjEq": b["totalEq"], "imr": "0", "mmr": "0", "mgnRatio": "",
            "notionalUsd": "0"}


def balance_and_position_entry(balance: list[dict[str, Any]], positions: list[dict[str, Any]], ts_ms: int,
                               event_type: str) -> dict[str, Any]:
    """The ``balance_and_position`` channel entry."""
    b = balance[0]
    return {"pTime": str(ts_ms), "eventType": event_type,
            "balData": [{"ccy": d["ccy"], "cashBal": d["cashBal"], "uTime": b["uTime"]} for d in b["details"]],
            "posData": [{"posId": p["instId"], "tradeId": "", "instId": p["instId"], "instType": p["instType"],
                         "mgnMode": p["mgnMode"], "posSide": p["posSide"], "pos": p["pos"], "ccy": "USDT",
                         "posCcy": "", "avgPx": p["avgPx"], "uTime": p["uTime"]} for p in positions],
            "trades": []}
