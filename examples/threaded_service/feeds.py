"""The two WebSocket clients (websocket-client, one thread each).

Public: books + trades per instrument; a ``prevSeqId`` that is not the last ``seqId`` is a book gap
(latch, then unsubscribe + subscribe for a fresh snapshot). Trades come aggregated as OKX sends them
(one push per taker order, ``tradeId`` the last match, ``count`` the matches), so a push whose
``tradeId - count`` is not the last ``tradeId`` is a trades gap (latch; a repeated or lower id is
dropped, never processed twice). A dropped socket is a hole in every book, so it latches a book gap too.

Private: signed login + ``orders``; OKX ending the session (close 4007, API key updated or deleted, or
the ``notice`` 64008 before a service-upgrade disconnect) is a session termination, which the status
counts as ``10028_count_5m``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import struct
import threading
import time
from typing import Any

import websocket

from .core import State

log = logging.getLogger("threaded_service.feeds")

CLOSE_KEY_CHANGED = 4007          # OKX: "API key has been updated or deleted. Please reconnect."
NOTICE_SERVICE_UPGRADE = "64008"  # OKX: "The connection will soon be closed for a service upgrade."
LOGIN_TS_EXPIRED = "60006"       # OKX: the login was signed outside the venue's 30 s window


def _close_quietly(ws: websocket.WebSocket | None) -> None:
    """Close a socket that may already be dead (closing is best effort: the thread reconnects anyway)."""
    if ws is not None:
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass


class PublicFeed(threading.Thread):
    def __init__(self, url: str, state: State, stop: threading.Event) -> None:
        super().__init__(name="ws-public", daemon=True)
        self.url, self.state, self.stop_evt = url, state, stop
        self.last_seq: dict[str, int] = {}
        self.last_trade: dict[str, int] = {}
        self.ws: websocket.WebSocket | None = None

    def _subs(self, inst: str | None = None) -> list[dict[str, str]]:
        insts = [inst] if inst else list(self.state.instruments)
        return [{"channel": ch, "instId": i} for i in insts for ch in ("books", "trades")]

    def run(self) -> None:
        connected_once = False
        while not self.stop_evt.is_set():
            try:
                self.ws = websocket.create_connection(self.url, timeout=5)
                self.ws.settimeout(0.5)
                self.last_seq.clear()
                with self.state.lock:
                    for i in self.state.instruments:
                        self.state.book_ready[i] = False
                self.ws.send(json.dumps({"op": "subscribe", "args": self._subs()}))
                connected_once = True
                self._loop()
            except (OSError, websocket.WebSocketException) as exc:
                if self.stop_evt.is_set():
                    return
                self.state.t.error("ws_error", "ws/public", detail=str(exc)[:120])
                if connected_once:
                    self.state.set_latch("WS_BOOK_GAP_RECONCILE_REQUIRED", "public socket lost")
                time.sleep(0.2)
            finally:
                if self.ws is not None:
                    try:
                        self.ws.close()
                    except Exception:  # noqa: BLE001 - closing a broken socket
                        pass

    def _loop(self) -> None:
        assert self.ws is not None
        while not self.stop_evt.is_set():
            try:
                text = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if not text:
                raise websocket.WebSocketConnectionClosedException("closed by venue")
            if text == "pong":
                continue
            msg = json.loads(text)
            arg = msg.get("arg") or {}
            if "data" in msg and arg.get("channel") == "books":
                self._book(arg["instId"], msg)
            elif "data" in msg and arg.get("channel") == "trades":
                self._trades(arg["instId"], msg["data"])

    def _book(self, inst: str, msg: dict[str, Any]) -> None:
        d = msg["data"][0]
        seq, prev = int(d["seqId"]), int(d["prevSeqId"])
        self.state.market_event("books", inst, int(d["ts"]))
        if msg.get("action") == "snapshot":
            self.last_seq[inst] = seq
            with self.state.lock:
                self.state.book_ready[inst] = True
            return
        last = self.last_seq.get(inst)
        if last is None:
            return  # waiting for the snapshot of a re-subscription
        if prev != last:
            with self.state.lock:
                self.state.book_ready[inst] = False
                self.state.book_gaps += 1
            self.state.set_latch("WS_BOOK_GAP_RECONCILE_REQUIRED", f"{inst} prevSeqId {prev} != {last}")
            del self.last_seq[inst]
            assert self.ws is not None
            self.ws.send(json.dumps({"op": "unsubscribe", "args": [{"channel": "books", "instId": inst}]}))
            self.ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": inst}]}))
            return
        self.last_seq[inst] = seq

    def _trades(self, inst: str, data: list[dict[str, Any]]) -> None:
        for t in data:
            tid, count = int(t["tradeId"]), int(t.get("count") or 1)
            self.state.market_event("trades", inst, int(t["ts"]))
            last = self.last_trade.get(inst)
            self.last_trade[inst] = tid if last is None else max(last, tid)
            if last is None or tid > last:
                with self.state.lock:
                    self.state.trades_processed += 1   # a new trade (after a gap too); a repeat never
            if last is None or tid - count == last:
                continue  # continuous: processed
            with self.state.lock:
                self.state.trades_gaps += 1
                if tid <= last:
                    self.state.trades_dropped += 1
            self.state.set_latch("WS_TRADES_GAP_RECONCILE_REQUIRED", f"{inst} tradeId {tid} after {last}")

    def close(self) -> None:
        _close_quietly(self.ws)


class PrivateSession(threading.Thread):
    def __init__(self, url: str, api_key: str, secret: str, passphrase: str, state: State, stop: threading.Event,
                 clock: Any = None) -> None:
        super().__init__(name="ws-private", daemon=True)
        self.url, self.key, self.secret, self.passphrase = url, api_key, secret, passphrase
        # The REST client's venue clock (``venue_time()``, ``resync_clock()``), or None: the local clock.
        self.clock = clock
        self.state, self.stop_evt = state, stop
        self.ws: websocket.WebSocket | None = None

    def _terminated(self, why: str) -> None:
        with self.state.lock:
            self.state.terminations.append(time.monotonic())
            self.state.session_up = False
            self.state.session_lost = True
        self.state.set_latch("SESSION_TERMINATION_RECONCILE_REQUIRED", why)
        self.state.mark_bad("SESSION_TERMINATION_RECONCILE_REQUIRED")

    def _login_arg(self) -> dict[str, str]:
        ts = str(int(self.clock.venue_time() if self.clock is not None else time.time()))
        mac = hmac.new(self.secret.encode(), (ts + "GET/users/self/verify").encode(), hashlib.sha256).digest()
        return {"apiKey": self.key, "passphrase": self.passphrase, "timestamp": ts, "sign": base64.b64encode(mac).decode()}

    def _down(self) -> None:
        with self.state.lock:
            if self.state.session_up:
                self.state.session_lost = True
            self.state.session_up = False

    def run(self) -> None:
        backoff = 0.1
        while not self.stop_evt.is_set():
            terminated = False
            try:
                self.ws = websocket.create_connection(self.url, timeout=5)
                self.ws.settimeout(0.5)
                self.ws.send(json.dumps({"op": "login", "args": [self._login_arg()]}))
                while not self.stop_evt.is_set():
                    try:
                        opcode, data = self.ws.recv_data(control_frame=True)
                    except websocket.WebSocketTimeoutException:
                        continue
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                        if code == CLOSE_KEY_CHANGED and not terminated:
                            terminated = True
                            self._terminated(f"close {code}")
                        raise websocket.WebSocketConnectionClosedException(f"closed {code}")
                    if opcode != websocket.ABNF.OPCODE_TEXT:
                        continue
                    text = data.decode()
                    if text == "pong":
                        continue
                    msg = json.loads(text)
                    ev, code = msg.get("event"), str(msg.get("code", ""))
                    if ev == "login" and code == "0":
                        self.ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]}))
                    elif ev == "subscribe":
                        backoff = 0.1
                        with self.state.lock:
                            self.state.session_up = True
                            self.state.session_lost = False
                    elif ev == "notice" and code == NOTICE_SERVICE_UPGRADE and not terminated:
                        terminated = True
                        self._terminated(f"notice {code}")
                    elif ev == "error" and not self.state.session_up:
                        if code == LOGIN_TS_EXPIRED and self.clock is not None:
                            self.clock.resync_clock()  # the next login is signed with the venue's time
                        raise websocket.WebSocketException(f"login refused {code}")
            except (OSError, websocket.WebSocketException, ValueError) as exc:
                if self.stop_evt.is_set():
                    return
                if not terminated:
                    self.state.t.error("ws_error", "ws/private", detail=str(exc)[:120])
                self._down()
                if self.state.latch.get("SESSION_TERMINATION_RECONCILE_REQUIRED"):
                    self.state.mark_bad("SESSION_TERMINATION_RECONCILE_REQUIRED")
                time.sleep(backoff)
                backoff = min(1.0, backoff * 2)
            finally:
                self.close()

    def close(self) -> None:
        _close_quietly(self.ws)
