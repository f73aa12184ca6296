"""Connectors to the venue: signed REST calls, the public market-data feed and the private order session.

Every failure is classified and recorded in Telemetry (http_error with status, connection_error,
timeout, dns_failure, ws_error): a fault between the target and the venue must show up in the
fingerprint while the run is going.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urlencode

import aiohttp

from .clock import VenueClock, now_ms
from .config import Config
from .telemetry import Telemetry

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 1.0
HEARTBEAT_S = 2.0  # WS ping period; no pong within half of it closes the socket
TS_EXPIRED_REST = "50102"  # OKX: "Timestamp request expired" (the request was signed outside its 30 s window)
TS_EXPIRED_WS = "60006"    # the same refusal for a private WebSocket login
RESYNC_MIN_INTERVAL_S = 0.25  # at most one public/time re-sync per this interval (refusals come in bursts)


def classify(exc: BaseException) -> str:
    """Map a transport exception to an error-event type."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout"
    dns_cls = getattr(aiohttp, "ClientConnectorDNSError", None)
    if dns_cls is not None and isinstance(exc, dns_cls):
        return "dns_failure"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(getattr(exc, "os_error", None), socket.gaierror):
        return "dns_failure"
    if isinstance(exc, socket.gaierror):
        return "dns_failure"
    return "connection_error"


def ws_handshake_timeout(cfg: Config) -> aiohttp.ClientTimeout:
    """Bound the WebSocket handshake (a black-holed proxy must not hang it); open sockets are unaffected."""
    return aiohttp.ClientTimeout(total=max(3.0, 2 * cfg.http_timeout_ms / 1000.0))


def sign(secret: str, ts: str, method: str, path: str, body: str = "") -> str:
    """OKX v5 request signature: base64(HMAC-SHA256(secret, ts + method + path + body))."""
    mac = hmac.new(secret.encode(), (ts + method.upper() + path + body).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class RestResult:
    """Outcome of one REST call. ``error`` is the error-event type when no usable answer came back."""
    status: int | None
    body: Any = None
    error: str | None = None
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        """HTTP 200 with a parseable body (the venue's own ``code`` may still say the request failed)."""
        return self.error is None and self.status == 200 and isinstance(self.body, dict)

    @property
    def code(self) -> str | None:
        return str(self.body.get("code")) if isinstance(self.body, dict) else None

    @property
    def data(self) -> list:
        d = self.body.get("data") if isinstance(self.body, dict) else None
        return d if isinstance(d, list) else []


class RestClient:
    """Signed REST calls with a hard timeout; every call and failure lands in Telemetry."""

    def __init__(self, cfg: Config, telemetry: Telemetry) -> None:
        self.cfg = cfg
        self.tel = telemetry
        self._session: aiohttp.ClientSession | None = None
        # When the last call failed in transport (no answer at all) or was refused for its timestamp
        # (the venue unusable until the clock is re-synced): drives bunker mode.
        self.last_transport_error_mono: float | None = None
        self.clock = VenueClock()
        self._resync_lock = asyncio.Lock()
        self._last_resync_mono = float("-inf")

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.cfg.http_timeout_ms / 1000.0)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=32))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, method: str, path: str, body: str) -> dict:
        # OKX's format, with milliseconds (e.g. 2020-12-08T09:08:57.715Z): the venue witnesses it as
        # the moment the request was signed.
        now = self.clock.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
        h = {"OK-ACCESS-KEY": self.cfg.api_key, "OK-ACCESS-PASSPHRASE": self.cfg.api_passphrase,
             "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign(self.cfg.api_secret, ts, method, path, body),
             "Content-Type": "application/json"}
        if self.cfg.demo_trading:
            h["x-simulated-trading"] = "1"  # OKX demo trading; without it OKX treats the key as live
        return h

    def _venue_ms(self, local_ms: int | None) -> int | None:
        """A deadline in local milliseconds, on the venue's clock (``expTime`` is judged by the venue's)."""
        return None if local_ms is None else local_ms + self.clock.offset_ms

    @staticmethod
    def exp_time_header(exp_time_ms: int | None) -> dict:
        """OKX's ``expTime`` request header (request effective deadline, Unix ms): the venue refuses
        the request if it gets to it later, so an order held by the network cannot land after that."""
        return {} if exp_time_ms is None else {"expTime": str(int(exp_time_ms))}

    async def resync_clock(self) -> int | None:
        """Re-learn the venue's clock offset from ``GET /api/v5/public/time`` (unsigned); the new offset in
        ms, or None when the venue gave no usable answer or a re-sync ran moments ago."""
        assert self._session is not None, "RestClient.start() first"
        async with self._resync_lock:
            if time.monotonic() - self._last_resync_mono < RESYNC_MIN_INTERVAL_S:
                return None
            self._last_resync_mono = time.monotonic()
            sent = time.time()
            try:
                async with self._session.get(self.cfg.rest_url + "/api/v5/public/time") as resp:
                    body = json.loads(await resp.text())
                received = time.time()
                venue_ms = int(body["data"][0]["ts"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no usable answer: counted like any failed call, retried at the next refusal
                self.tel.error(classify(exc) if not isinstance(exc, (ValueError, KeyError, IndexError, TypeError))
                               else "http_error", "GET /api/v5/public/time", detail=f"{type(exc).__name__}: {exc}")
                return None
            return self.clock.learn(venue_ms, sent, received)

    async def request(self, method: str, path: str, params: dict | None = None, body: Any = None,
                      exp_time_ms: int | None = None) -> RestResult:
        """One REST call; never raises for transport problems (they come back as ``error``).

        ``exp_time_ms`` (order requests): sent as the ``expTime`` header."""
        assert self._session is not None, "RestClient.start() first"
        if params:
            path = path + "?" + urlencode({k: v for k, v in params.items() if v is not None})
        payload = json.dumps(body, separators=(",", ":")) if body is not None else ""
        endpoint = f"{method} {path.split('?')[0]}"
        t0 = time.monotonic()
        try:
            async with self._session.request(method, self.cfg.rest_url + path, data=payload or None,
                                             headers={**self._headers(method, path, payload),
                                                      **self.exp_time_header(self._venue_ms(exp_time_ms))}) as resp:
                text = await resp.text()
                status = resp.status
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # transport failure: classify, count, report
            lat = (time.monotonic() - t0) * 1000
            kind = classify(exc)
            self.last_transport_error_mono = time.monotonic()
            self.tel.call(lat)
            self.tel.error(kind, endpoint, detail=f"{type(exc).__name__}: {exc}")
            return RestResult(None, None, kind, lat)
        lat = (time.monotonic() - t0) * 1000
        self.tel.call(lat)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        if status >= 400:
            self.tel.error("http_error", endpoint, status=status, detail=text[:120])
            if status == 401 and isinstance(parsed, dict) and str(parsed.get("code")) == TS_EXPIRED_REST:
                # Signed outside the venue's window: nothing signed gets through until the clock is
                # re-synced, so it is a connectivity risk (bunker) and the offset is re-learnt now.
                self.last_transport_error_mono = time.monotonic()
                await self.resync_clock()
            return RestResult(status, parsed, "http_error", lat)
        if not isinstance(parsed, dict):
            self.tel.error("http_error", endpoint, status=status, detail="unparseable body")
            return RestResult(status, parsed, "http_error", lat)
        return RestResult(status, parsed, None, lat)


class PublicFeed:
    """Public WS: ``books`` and ``trades`` per instrument, with gap and staleness detection.

    A book gap (``prevSeqId`` differs from the last ``seqId``, or the connection dropped) triggers a
    re-subscription (or reconnection) for a fresh snapshot; a trades gap (a skipped, repeated or lower ``tradeId``) is reported and the out-of-order
    trade is not processed (no duplicate trade processing).
    """

    def __init__(self, cfg: Config, telemetry: Telemetry,
                 on_book_gap: Callable[[str, dict], None], on_trades_gap: Callable[[str, dict], None],
                 log: Callable[..., None]) -> None:
        self.cfg = cfg
        self.tel = telemetry
        self.on_book_gap = on_book_gap
        self.on_trades_gap = on_trades_gap
        self.log = log
        self.instruments = cfg.instruments
        self.connected = False
        self.book_seq: dict[str, int | None] = {i: None for i in self.instruments}
        self.book_synced: dict[str, bool] = {i: False for i in self.instruments}
        self.book_synced_mono: dict[str, float] = {i: 0.0 for i in self.instruments}
        self.last_trade_id: dict[str, int | None] = {i: None for i in self.instruments}
        self.trades_processed = 0
        self.trades_dropped = 0
        self.last_trades_gap_mono = 0.0
        self.last_trade_mono: dict[str, float] = {i: 0.0 for i in self.instruments}
        # Per stream: venue timestamp (ms) of the newest event, and when (monotonic) an event last
        # arrived. Lag is the worse of "how old is the newest data" and "how long since any data",
        # so a delayed feed and a silent one both show, and a skewed venue clock cannot hide silence.
        self.stream_ts: dict[tuple[str, str], int] = {}
        self.stream_rx_mono: dict[tuple[str, str], float] = {}
        self.book_gaps = 0
        self.trades_gaps = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def streams(self) -> list[tuple[str, str]]:
        return [(ch, i) for i in self.instruments for ch in ("books", "trades")]

    def lag_ms(self) -> int | None:
        """Event lag of the stalest stream (see ``stream_ts``); None before every stream spoke once."""
        if len(self.stream_ts) < len(self.instruments) * 2:
            return None
        ts_lag = now_ms() - min(self.stream_ts.values())
        silence = (time.monotonic() - min(self.stream_rx_mono.values())) * 1000
        return max(0, int(max(ts_lag, silence)))

    def books_synced(self) -> bool:
        return all(self.book_synced.values())

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = BACKOFF_START_S
        async with aiohttp.ClientSession(timeout=ws_handshake_timeout(self.cfg)) as session:
            while not stopping.is_set():
                try:
                    # Ping frames (heartbeat) detect a dead or black-holed connection; a feed that is
                    # merely silent or delayed keeps its socket (staleness is the latch's business).
                    async with session.ws_connect(self.cfg.ws_public_url, heartbeat=HEARTBEAT_S,
                                                  timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                                                  autoping=True) as ws:
                        self._ws = ws
                        self.connected = True
                        for i in self.instruments:
                            self.book_synced[i] = False
                            self.book_seq[i] = None
                        await ws.send_json({"op": "subscribe", "args": [
                            {"channel": ch, "instId": i} for ch, i in self.streams()]})
                        self.log("ws_public_connected", url=self.cfg.ws_public_url)
                        backoff = BACKOFF_START_S
                        while not stopping.is_set():
                            msg = await ws.receive()
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                await self._handle_text(ws, msg.data)
                            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                              aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                                if not stopping.is_set():
                                    self.tel.error("ws_error", "ws public", detail=f"closed {ws.close_code}")
                                break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not stopping.is_set():
                        self.tel.error(classify(exc) if not isinstance(exc, aiohttp.WSServerHandshakeError)
                                       else "ws_error", "ws public", detail=f"{type(exc).__name__}: {exc}")
                finally:
                    self.connected = False
                    self._ws = None
                if stopping.is_set():
                    break
                # A lost connection is a hole in every book we were following: updates were missed.
                for inst in self.instruments:
                    if self.book_synced[inst]:
                        self.book_synced[inst] = False
                        self.book_gaps += 1
                        self.on_book_gap(inst, {"instId": inst, "reason": "public feed connection lost"})
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _handle_text(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        if text == "pong":
            return
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if "event" in msg:
            if msg.get("event") == "error":
                self.tel.error("ws_error", "ws public", detail=f"{msg.get('code')} {msg.get('msg')}")
            return
        arg = msg.get("arg") or {}
        ch, inst = arg.get("channel"), arg.get("instId")
        if inst not in self.book_seq:
            return
        for d in msg.get("data") or []:
            try:
                ts = int(d.get("ts"))
            except (TypeError, ValueError):
                ts = None
            if ch == "books":
                await self._on_book(ws, inst, msg.get("action"), d)
            elif ch == "trades":
                self._on_trade(inst, d)
            if ts is not None:
                key = (ch, inst)
                self.stream_rx_mono[key] = time.monotonic()
                if ts > self.stream_ts.get(key, 0):
                    self.stream_ts[key] = ts

    async def _on_book(self, ws: aiohttp.ClientWebSocketResponse, inst: str, action: str | None, d: dict) -> None:
        seq, prev = d.get("seqId"), d.get("prevSeqId")
        try:
            seq, prev = int(seq), int(prev)
        except (TypeError, ValueError):
            return
        if action == "snapshot" or prev == -1:
            self.book_seq[inst] = seq
            if not self.book_synced[inst]:
                self.book_synced[inst] = True
                self.book_synced_mono[inst] = time.monotonic()
        elif not self.book_synced[inst]:
            return  # waiting for the snapshot after a (re)subscription
        elif prev != self.book_seq[inst]:
            detail = {"instId": inst, "expected_prevSeqId": self.book_seq[inst], "prevSeqId": prev, "seqId": seq}
            self.book_gaps += 1
            self.book_synced[inst] = False
            self.book_seq[inst] = None
            self.on_book_gap(inst, detail)
            # Re-subscribe for a fresh snapshot (the protocol's recovery path).
            args = [{"channel": "books", "instId": inst}]
            await ws.send_json({"op": "unsubscribe", "args": args})
            await ws.send_json({"op": "subscribe", "args": args})
            return
        else:
            self.book_seq[inst] = seq

    def _on_trade(self, inst: str, d: dict) -> None:
        # OKX aggregates the matches of one taker order into one push: tradeId is the last of them and
        # count how many, so on an intact stream tradeId - count is the previous push's tradeId.
        try:
            tid = int(d.get("tradeId"))
            count = int(d.get("count") or 1)
        except (TypeError, ValueError):
            return
        last = self.last_trade_id[inst]
        if last is not None and tid - count != last:
            self.trades_gaps += 1
            self.last_trades_gap_mono = time.monotonic()
            self.on_trades_gap(inst, {"instId": inst, "expected_tradeId_minus_count": last, "tradeId": tid,
                                      "count": count})
            if tid <= last:
                self.trades_dropped += 1  # repeated or lower id: never processed twice
                return
        self.last_trade_id[inst] = tid
        self.last_trade_mono[inst] = time.monotonic()
        self.trades_processed += 1


# How OKX ends a private session from its side (both count as the contract's "10028" session termination):
CLOSE_KEY_CHANGED = 4007          # close code: "API key has been updated or deleted. Please reconnect."
NOTICE_SERVICE_UPGRADE = "64008"  # notice event: "The connection will soon be closed for a service upgrade."


class PrivateSession:
    """Private WS: login, ``orders`` channel, session-termination detection and re-auth with backoff.

    A session termination is OKX closing the socket with 4007 (API key updated or deleted) or sending
    the ``notice`` 64008 before a service-upgrade disconnect; both are reported as code "10028", the
    contract's name for the event (``10028_count_5m``)."""

    def __init__(self, cfg: Config, telemetry: Telemetry, on_order: Callable[[dict], None],
                 on_terminated: Callable[[dict], None], log: Callable[..., None], clock: VenueClock | None = None,
                 resync: Callable[[], Awaitable[int | None]] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or VenueClock()
        self.resync = resync
        self.tel = telemetry
        self.on_order = on_order
        self.on_terminated = on_terminated
        self.log = log
        self.authed = False
        self.authed_since_mono = 0.0
        self.logins = 0
        self.refusals = 0
        self.terminations = 0

    def _login_msg(self) -> dict:
        ts = str(int(self.clock.time()))
        return {"op": "login", "args": [{"apiKey": self.cfg.api_key, "passphrase": self.cfg.api_passphrase,
                                         "timestamp": ts,
                                         "sign": sign(self.cfg.api_secret, ts, "GET", "/users/self/verify")}]}

    async def run(self, stopping: asyncio.Event) -> None:
        backoff = BACKOFF_START_S
        async with aiohttp.ClientSession(timeout=ws_handshake_timeout(self.cfg)) as session:
            while not stopping.is_set():
                terminated = False
                try:
                    async with session.ws_connect(self.cfg.ws_private_url, heartbeat=HEARTBEAT_S,
                                                  timeout=aiohttp.ClientWSTimeout(ws_close=1.0)) as ws:
                        await ws.send_json(self._login_msg())
                        ans = await ws.receive(timeout=max(2.0, self.cfg.http_timeout_ms / 1000.0 * 2))
                        ok = False
                        if ans.type == aiohttp.WSMsgType.TEXT:
                            try:
                                body = json.loads(ans.data)
                            except ValueError:
                                body = {}
                            if body.get("event") == "login" and str(body.get("code")) == "0":
                                ok = True
                            else:
                                self.refusals += 1
                                self.tel.error("ws_error", "ws private login",
                                               detail=f"{body.get('code')} {body.get('msg')}")
                                self.log("ws_private_login_refused", code=body.get("code"), msg=body.get("msg"))
                                if str(body.get("code")) == TS_EXPIRED_WS and self.resync is not None:
                                    offset = await self.resync()
                                    self.log("clock_resync", offset_ms=offset, trigger=TS_EXPIRED_WS)
                        if ok:
                            await ws.send_json({"op": "subscribe", "args": [{"channel": "orders", "instType": "SWAP"}]})
                            self.authed = True
                            self.authed_since_mono = time.monotonic()
                            self.logins += 1
                            self.log("ws_private_authed", logins=self.logins)
                            backoff = BACKOFF_START_S
                            terminated = await self._read(ws, stopping)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not stopping.is_set():
                        self.tel.error(classify(exc) if not isinstance(exc, aiohttp.WSServerHandshakeError)
                                       else "ws_error", "ws private", detail=f"{type(exc).__name__}: {exc}")
                finally:
                    was_authed = self.authed
                    self.authed = False
                if stopping.is_set():
                    break
                if was_authed and not terminated:
                    # Losing an authenticated session without a 10028 still leaves the session unconfirmed.
                    self.on_terminated({"code": None, "reason": "private session lost"})
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    def _terminated(self, terminated: bool, why: str) -> bool:
        if not terminated:
            self.terminations += 1
            self.authed = False
            self.tel.error("ws_error", "ws private", detail=why)
            self.on_terminated({"code": "10028", "msg": why})
        return True

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, stopping: asyncio.Event) -> bool:
        """Read until the socket ends; True if the venue terminated the session (close 4007 / notice 64008)."""
        terminated = False
        while not stopping.is_set():
            # No receive timeout: the heartbeat (ping frames) closes a black-holed socket.
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "pong":
                    continue
                try:
                    body = json.loads(msg.data)
                except ValueError:
                    continue
                event = body.get("event")
                if event == "notice" and str(body.get("code")) == NOTICE_SERVICE_UPGRADE:
                    terminated = self._terminated(terminated, f"notice {NOTICE_SERVICE_UPGRADE} {body.get('msg')}")
                    continue
                if event == "error":
                    self.tel.error("ws_error", "ws private", detail=f"{body.get('code')} {body.get('msg')}")
                    continue
                if (body.get("arg") or {}).get("channel") == "orders":
                    for d in body.get("data") or []:
                        self.on_order(d)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                code = ws.close_code
                if code == CLOSE_KEY_CHANGED:
                    terminated = self._terminated(terminated, f"closed {code} (API key updated or deleted)")
                elif not terminated and not stopping.is_set():
                    self.tel.error("ws_error", "ws private", detail=f"closed {code}")
                return terminated
        return terminated
