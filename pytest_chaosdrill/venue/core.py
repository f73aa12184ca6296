"""The venue's state hub: market, order engine, fault registry, ledger and live WebSocket connections.

Loop-confined: every method runs on the venue's event loop thread (the HTTP handlers call it
directly; :class:`~pytest_chaosdrill.venue.control.VenueControl` hops onto the loop). Faults are
performed here, at the moment a message is written or withheld, so "landed" means it happened.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web

from . import ws
from .auth import W_KEY_INVALID, W_LOGIN_FAILED, W_TS_EXPIRED, Authenticator, AuthError
from .clock import VenueClock
from .conn import Callback, Conn, dumps
from .faults import FaultRecord, FaultRegistry, Stamp
from .ledger import Ledger, utc_iso
from .market import INSTRUMENTS, BookFeed, Market, TickTrade, TradeFeed, fmt
from .prints import Prints
from .orders import Fill, Order, OrderEngine

class VenueCore:
    """Everything the venue knows; see the module docstring for the threading rule."""

    def __init__(self, seed: int = 7, tick_ms: int = 50) -> None:
        self.seed = seed
        self.tick_ms = tick_ms
        self.ledger = Ledger()
        self.faults = FaultRegistry(self.ledger)
        self.clock = VenueClock(self.clock_offset)
        # Private REST requests and WS logins must be signed with one of these keys; a venue with no key
        # at all (the venue's own unit tests, the benchmark) does not authenticate.
        self.auth: Authenticator = Authenticator(clock=self.clock.time)
        self.market = Market(seed)
        self.books = {i: BookFeed(st) for i, st in self.market.state.items()}
        self.trades = {i: TradeFeed(i) for i in self.market.state}
        self.prints = Prints()  # REST trade history and candles
        self.engine = OrderEngine(self.market, self.ledger, self._on_order_update, self.clock.ms)
        self.conns: dict[str, Conn] = {}
        self._conn_ids = itertools.count(1)
        self.counters: dict[str, int] = {"rest_requests": 0, "http_429": 0, "http_503": 0, "ws_public_sent": 0,
                                         "ws_private_sent": 0, "expired_requests": 0}

    # -- connections -----------------------------------------------------------------------------

    def open_conn(self, kind: str, ws: web.WebSocketResponse) -> Conn:
        """Register a newly accepted WebSocket."""
        conn = Conn(f"{'pub' if kind == 'public' else 'priv'}-{next(self._conn_ids)}", kind, ws)
        self.conns[conn.id] = conn
        return conn

    def drop_conn(self, conn: Conn) -> None:
        """Forget a connection whose socket has closed."""
        if self.conns.pop(conn.id, None) is not None and conn.kind == "private":
            code = conn.close_code_sent if conn.close_code_sent is not None else conn.ws.close_code
            self.ledger.append("session", event="closed", conn=conn.id, close_code=None if code is None else int(code),
                               by="venue" if conn.close_code_sent is not None else "client")
        conn.task.cancel()

    def _public(self, channel: str, inst_id: str) -> list[Conn]:
        return [c for c in self.conns.values() if c.kind == "public" and (channel, inst_id) in c.subs]

    # -- ticking and publishing ------------------------------------------------------------------

    def _lag(self) -> tuple[int, Callback | None]:
        rec = self.faults.first("lag")
        if rec is None:
            return 0, None

        def landed(at: Stamp) -> None:
            rec.detail["delayed_messages"] = rec.detail.get("delayed_messages", 0) + 1
            self.faults.land(rec, at)
        return rec.params["ms"], landed

    def _frozen(self, channel: str) -> FaultRecord | None:
        return self.faults.first("freeze", lambda r: channel in r.params["channels"])

    def send_public(self, conn: Conn, obj: Any, extra: list[Callback] | None = None) -> None:
        """Send on a public socket, applying the lag fault."""
        delay, lag_cb = self._lag()
        cbs = list(extra or [])
        if lag_cb:
            cbs.append(lag_cb)
        self.counters["ws_public_sent"] += 1
        conn.send(obj, delay, cbs)

    def tick(self) -> None:
        """One market step: move prices, fill resting orders, publish books, tickers and trades."""
        self.faults.expire(time.monotonic())
        trades = self.market.tick()
        self.engine.on_tick()
        ts = self.clock.ms()
        for inst_id in sorted(self.books):
            self._publish_book(inst_id, ts)
            self._publish_top(inst_id)
            subs = self._public("tickers", inst_id)
            if subs and not self._withhold("tickers", subs):
                msg = {"arg": {"channel": "tickers", "instId": inst_id},
                       "data": [ws.ticker(self.market.state[inst_id], ts)]}
                for c in subs:
                    self.send_public(c, msg)
        for t in trades:
            self.prints.record(t, ts)
            self._publish_trade(t, ts)

    def _withhold(self, channel: str, subs: list[Conn]) -> bool:
        rec = self._frozen(channel)
        if rec is None:
            return False
        if subs:
            rec.detail["withheld_messages"] = rec.detail.get("withheld_messages", 0) + len(subs)
            self.faults.land(rec)
        return True

    def _publish_book(self, inst_id: str, ts: int) -> None:
        subs = self._public("books", inst_id)
        # A frozen feed does not advance its seqId: after the freeze the stream resumes without a gap.
        if self._withhold("books", subs):
            return
        feed = self.books[inst_id]
        gap = self.faults.first("book_gap", lambda r: r.params["instId"] == inst_id) if subs else None
        last = feed.seq_id
        skip = gap.params["skip"] if gap else 0
        data = feed.publish(self.market.state[inst_id], ts, skip, render=bool(subs))
        if data is None:
            return
        arg = {"channel": "books", "instId": inst_id}
        update = {"arg": arg, "action": "update", "data": [data]}
        gap_cbs: list[Callback] = []
        if gap:
            # OKX's own mechanism: the update's prevSeqId is not the seqId of the previous message.
            gap.detail.update(skipped_seq_ids=list(range(last + 1, last + 1 + skip)), seqId=data["seqId"],
                              prevSeqId=data["prevSeqId"], last_seq_id_before=last)
            self.faults.end(gap)  # one-shot: consumed by this update
            gap_cbs.append(lambda at, g=gap: self.faults.land(g, at))
        for c in subs:
            if inst_id in c.needs_snapshot:
                c.needs_snapshot.discard(inst_id)
                self.send_public(c, {"arg": arg, "action": "snapshot", "data": [feed.snapshot()]})
            else:
                self.send_public(c, update, gap_cbs)

    def _publish_top(self, inst_id: str) -> None:
        """``books5`` and ``bbo-tbt``: the published book's best levels, each push a full picture."""
        for channel, depth in (("books5", 5), ("bbo-tbt", 1)):
            subs = self._public(channel, inst_id)
            if not subs or self._withhold(channel, subs):
                continue
            msg = {"arg": {"channel": channel, "instId": inst_id}, "data": [self.books[inst_id].top(depth)]}
            for c in subs:
                self.send_public(c, msg)

    def _publish_trade(self, trade: TickTrade, ts: int) -> None:
        inst_id = trade.inst_id
        subs = self._public("trades", inst_id)
        if self._withhold("trades", subs):
            return
        feed = self.trades[inst_id]
        gap = self.faults.first("trades_gap", lambda r: r.params["instId"] == inst_id) if subs else None
        arg = {"channel": "trades", "instId": inst_id}
        mode = gap.params["mode"] if gap is not None else None
        msgs: list[tuple[dict[str, Any], list[Callback]]]
        if gap is None:
            msgs = [({"arg": arg, "data": [feed.assign(trade, ts)]}, [])]
        elif mode in ("skip", "repeat", "skip_repeat"):
            # OKX's own mechanisms: a push lost (its trade ids never arrive, so tradeId jumps beyond what
            # count explains) and a push delivered twice (same tradeId, same seqId).
            gapped = mode != "repeat"
            first_skipped = feed.next_id
            prev_trade_id = feed.next_id - 1
            entry = feed.assign(trade, ts, skip=gap.params["count"] if gapped else 0, lost_pushes=1 if gapped else 0)
            gap.detail.update(tradeId=entry["tradeId"], count=entry["count"], seqId=entry["seqId"],
                              previous_tradeId=str(prev_trade_id))
            if gapped:
                gap.detail["skipped_trade_ids"] = [str(i) for i in range(first_skipped, first_skipped + gap.params["count"])]
            repeats = 0 if mode == "skip" else (1 if mode == "skip_repeat" else gap.params["count"])
            if repeats:
                gap.detail.update(repeated_trade_ids=[entry["tradeId"]], repeats_per_socket=repeats, sockets=len(subs))
            msgs = [({"arg": arg, "data": [dict(entry)]}, []) for _ in range(1 + repeats)]
            # Lands with the last write, so the proof holds every write.
            msgs[-1] = (msgs[-1][0], [lambda at, g=gap: self.faults.land(g, at)])
        else:
            # Reorder: two consecutive pushes, the later one sent first.
            a = feed.assign(trade, ts)
            b = feed.assign(trade, ts)
            gap.detail.update(sent_order=[b["tradeId"], a["tradeId"]])
            msgs = [({"arg": arg, "data": [b]}, []), ({"arg": arg, "data": [a]}, [lambda at, g=gap: self.faults.land(g, at)])]
        if gap is not None:
            self.faults.end(gap)
        for c in subs:
            for msg, cbs in msgs:
                self.send_public(c, msg, cbs)

    # -- public subscriptions --------------------------------------------------------------------

    def public_op(self, conn: Conn, msg: dict[str, Any], raw: str = "") -> None:
        """Handle one JSON request from a public socket (subscribe / unsubscribe)."""
        rid = ws.request_id(msg)
        op, args = msg.get("op"), msg.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            self.send_public(conn, ws.invalid_request(raw or dumps(msg), conn.id, rid))
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId") if isinstance(arg, dict) else None
            if channel not in ws.PUBLIC_CHANNELS or inst_id not in INSTRUMENTS:
                self.send_public(conn, ws.error(ws.E_NO_CHANNEL, f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist",
                                                conn.id, rid))
                continue
            key = (channel, inst_id)
            out_arg = {"channel": channel, "instId": inst_id}
            ack = ws.answer({"event": op, "arg": out_arg, "connId": conn.id}, rid)
            if op == "unsubscribe":
                conn.subs.discard(key)
                if channel == "books":
                    conn.needs_snapshot.discard(inst_id)
                self.send_public(conn, ack)
                continue
            conn.subs.add(key)
            self.send_public(conn, ack)
            if self._frozen(channel) is not None:
                if channel == "books":
                    conn.needs_snapshot.add(inst_id)
                continue
            # The first push follows the subscription at once, as on OKX.
            if channel == "books":
                self.send_public(conn, {"arg": out_arg, "action": "snapshot", "data": [self.books[inst_id].snapshot()]})
            elif channel in ("books5", "bbo-tbt"):
                self.send_public(conn, {"arg": out_arg, "data": [self.books[inst_id].top(5 if channel == "books5" else 1)]})
            elif channel == "tickers":
                self.send_public(conn, {"arg": out_arg, "data": [ws.ticker(self.market.state[inst_id], self.clock.ms())]})

    # -- private sessions ------------------------------------------------------------------------

    def reauth_refused(self) -> FaultRecord | None:
        """The session-termination fault currently refusing logins, or None."""
        self.faults.expire(time.monotonic())
        return self.faults.first("session_termination", lambda r: r.params["refuse_reauth_s"] != 0)

    def private_op(self, conn: Conn, msg: dict[str, Any], raw: str = "") -> None:
        """Handle one JSON request from a private socket: login, (un)subscribe, trading ops."""
        rid = ws.request_id(msg)
        op, args = msg.get("op"), msg.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
            conn.send(ws.invalid_request(None, conn.id, rid))
            return
        if op == "login":
            self._login(conn, args[0], rid)
        elif op in ("subscribe", "unsubscribe"):
            self._private_subscribe(conn, op, args, rid)
        elif op in ws.TRADE_OPS:
            self._trade_op(conn, op, args, rid)
        else:
            conn.send(ws.invalid_request(None, conn.id, rid))

    def _login(self, conn: Conn, arg: dict[str, Any], rid: Any) -> None:
        refusal = self.reauth_refused()
        if refusal is not None:
            # The key was revoked (or the service is upgrading): OKX refuses the login and closes.
            refusal.detail["refused_logins"] = refusal.detail.get("refused_logins", 0) + 1
            code, msg = W_KEY_INVALID if refusal.params["mechanism"] == "key_revoked" else W_LOGIN_FAILED
            self.ledger.append("session", event="login_refused", conn=conn.id, fault=refusal.id, code=code)
            conn.send(ws.error(code, msg, conn.id, rid))
            conn.close_after_queue(ws.CLOSE_LOGIN_FAILED, ws.CLOSE_REASONS[ws.CLOSE_LOGIN_FAILED])
            return
        verified = bool(self.auth.keys)
        if verified:
            try:
                self.auth.check_ws_login(arg)
            except AuthError as e:
                self.ledger.append("session", event="login_refused", conn=conn.id, code=e.code,
                                   apiKey=str(arg.get("apiKey") or ""))
                if e.code == W_TS_EXPIRED[0]:
                    self.count_skew_refusal("refused_logins")
                conn.send(ws.error(e.code, e.msg, conn.id, rid))
                conn.close_after_queue(ws.CLOSE_LOGIN_FAILED, ws.CLOSE_REASONS[ws.CLOSE_LOGIN_FAILED])
                return
        elif not arg.get("apiKey"):
            conn.send(ws.error(*W_KEY_INVALID, conn.id, rid))
            return
        conn.logged_in = True
        conn.api_key = str(arg.get("apiKey"))
        # verified=False: a venue started without keys (a bare VenueServer) takes any login.
        self.ledger.append("session", event="login", conn=conn.id, apiKey=conn.api_key, verified=verified)
        conn.send(ws.answer({"event": "login", "code": "0", "msg": "", "connId": conn.id}, rid))

    def _private_subscribe(self, conn: Conn, op: str, args: list[dict[str, Any]], rid: Any) -> None:
        if not conn.logged_in:
            conn.send(ws.error(*ws.E_LOGGED_OUT, conn.id, rid))
            return
        for arg in args:
            channel = arg.get("channel")
            if channel not in ws.PRIVATE_CHANNELS:
                conn.send(ws.error(ws.E_NO_CHANNEL, f"Wrong URL or channel:{channel}, instId:{arg.get('instId')} doesn't exist",
                                   conn.id, rid))
                continue
            if op == "subscribe":
                conn.private_subs[channel] = dict(arg)
            else:
                conn.private_subs.pop(channel, None)
            conn.send(ws.answer({"event": op, "arg": dict(arg), "connId": conn.id}, rid))
            if op == "subscribe" and channel != "orders":
                # positions / account / balance_and_position push a snapshot on subscription (OKX).
                self._push_account(conn, channel, "snapshot")

    def _push_account(self, conn: Conn, channel: str, event_type: str) -> None:
        arg = conn.private_subs.get(channel)
        if arg is None:
            return
        out_arg = dict(arg, uid="chaosdrill")
        if channel == "positions":
            data = ws.position_entries(self.engine.positions_okx(), arg.get("instId"))
        elif channel == "account":
            data = [ws.account_entry(self.engine.balance_okx())]
        else:
            data = [ws.balance_and_position_entry(self.engine.balance_okx(), self.engine.positions_okx(), self.clock.ms(),
                                                  event_type)]
        self.counters["ws_private_sent"] += 1
        msg: dict[str, Any] = {"arg": out_arg, "data": data}
        if channel == "positions":
            msg["eventType"] = event_type
        conn.send(msg)

    def _trade_op(self, conn: Conn, op: str, args: list[dict[str, Any]], rid: Any) -> None:
        if not conn.logged_in:
            conn.send(ws.error(*ws.E_LOGGED_OUT, conn.id, rid))
            return
        if rid is None or (op in ("order", "cancel-order", "amend-order") and len(args) != 1) or len(args) > ws.MAX_BATCH:
            conn.send(ws.error(*ws.E_INVALID_ARGS, conn.id, rid))
            return
        in_time = str(time.time_ns() // 1000)
        results = []
        for a in args:
            if op in ("order", "batch-orders"):
                results.append(self.engine.place(a, request={"expTime": None, "accessTs": None,
                                                                 "received_mono": time.monotonic(), "received_utc": utc_iso()}))
            elif op in ("cancel-order", "batch-cancel-orders"):
                results.append(self.engine.cancel(a))
            else:
                results.append(self.engine.amend(a))
        n_ok = sum(r["sCode"] == "0" for r in results)
        code, msg = ("0", "") if n_ok == len(results) else (("2", "Some operations failed") if n_ok else ("1", "All operations failed"))
        conn.send({"id": rid, "op": op, "code": code, "msg": msg, "data": results, "inTime": in_time,
                   "outTime": str(time.time_ns() // 1000)})

    def _on_order_update(self, order: Order, fill: Fill | None) -> None:
        """The engine's update callback: push ``order.to_okx(fill)`` on subscribed ``orders`` channels, and
        the account channels after a fill."""
        push: dict[str, Any] | None = None
        for c in self.conns.values():
            if c.kind != "private" or not c.logged_in or not c.private_subs:
                continue
            sub = c.private_subs.get("orders")
            if sub is not None and sub.get("instId") in (None, "", order.inst_id):
                if push is None:
                    push = order.to_okx(fill)
                self.counters["ws_private_sent"] += 1
                c.send({"arg": {"channel": "orders", "instType": sub.get("instType", "ANY"), "uid": "chaosdrill"},
                        "data": [push]})
            if fill is not None:
                for channel in ("positions", "account", "balance_and_position"):
                    self._push_account(c, channel, "filled" if channel == "balance_and_position" else "event_update")

    # -- faults ----------------------------------------------------------------------------------

    def request_fault(self, kind: str, params: dict[str, Any] | None = None) -> FaultRecord:
        """Register a fault and do what must happen at once; returns the live record."""
        if kind == "lag":
            self.faults.end_all(["lag"])  # a new lag replaces the old one
        rec = self.faults.new(kind, params)
        if kind == "session_termination":
            self._terminate_sessions(rec)
        elif kind == "allow_reauth":
            ended = self.faults.end_all(["session_termination"])
            self.faults.land(rec, ended=ended)
            self.faults.end(rec)
        elif kind == "clear":
            k = rec.params["kind"]
            ended = [i for i in self.faults.end_all([k] if k else None) if i != rec.id]
            self.faults.land(rec, cleared=ended)
            self.faults.end(rec)
        return rec

    def _terminate_sessions(self, rec: FaultRecord) -> None:
        """End every logged-in private session the way OKX ends one: the API key revoked (close 4007), or
        a service upgrade (a ``notice`` 64008, then a close)."""
        targets = [c for c in self.conns.values() if c.kind == "private" and c.logged_in]
        revoked = rec.params["mechanism"] == "key_revoked"
        close_code = ws.CLOSE_KEY_CHANGED if revoked else ws.CLOSE_SERVICE_RESTART
        rec.detail.update(sessions=[c.id for c in targets], closed_sessions=[], close_code=close_code,
                          notice=None if revoked else ws.NOTICE_SERVICE_UPGRADE[0])
        if rec.params["refuse_reauth_s"] == 0:
            self.faults.end(rec)
        for c in targets:
            c.logged_in = False  # no more pushes: the session is over from now on
            self.ledger.append("session", event="terminated", conn=c.id, fault=rec.id, mechanism=rec.params["mechanism"],
                               close_code=close_code)
            if not revoked:
                c.send({"event": "notice", "code": ws.NOTICE_SERVICE_UPGRADE[0], "msg": ws.NOTICE_SERVICE_UPGRADE[1],
                        "connId": c.id})

            def closed(at: Stamp, c: Conn = c) -> None:
                rec.detail["closed_sessions"].append(c.id)
                self.faults.land(rec, at)
            c.close_after_queue(close_code, ws.CLOSE_REASONS[close_code], [closed])

    def clock_offset(self) -> float:
        """The venue clock's skew in seconds: the offset of the newest active clock-skew fault, else 0."""
        self.faults.expire(time.monotonic())
        active = self.faults.active("clock_skew")
        return active[-1].params["offset_s"] if active else 0.0

    def count_skew_refusal(self, counter: str) -> None:
        """A signed request or login refused for its timestamp while the clock is skewed: the clock fault's
        proof of landing (the venue itself refused a request because of it)."""
        active = self.faults.active("clock_skew")
        if active:
            rec = active[-1]
            rec.detail[counter] = rec.detail.get(counter, 0) + 1
            self.faults.land(rec)

    def pending_partial_fill(self) -> FaultRecord | None:
        """The partial-fill fault waiting for a two-leg batch, if any (the batch handler ends it)."""
        return self.faults.first("partial_fill")

    def http_fault(self) -> tuple[int, FaultRecord] | None:
        """Which error status (429 / 503) the next REST request gets, counting it against the fault."""
        self.faults.expire(time.monotonic())
        for kind, status in (("rate_limit", 429), ("http_5xx", 503)):
            rec = self.faults.first(kind)
            if rec is None:
                continue
            served = rec.detail.get("served", 0) + 1
            rec.detail["served"] = served
            if rec.params["requests"] is not None and served >= rec.params["requests"]:
                self.faults.end(rec)
            return status, rec
        return None

    def recon_hold(self) -> FaultRecord | None:
        """The active hold of reconciliation-read answers, or None."""
        self.faults.expire(time.monotonic())
        return self.faults.first("recon_hold")

    def rest_latency(self) -> FaultRecord | None:
        """The active REST-latency fault, or None."""
        self.faults.expire(time.monotonic())
        return self.faults.first("rest_latency")

    # -- state -----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-able picture of the venue for drills and debugging."""
        refusal = self.reauth_refused()
        return {
            "seed": self.seed,
            "tick_ms": self.tick_ms,
            "tick": self.market.tick_count,
            "positions": {i: fmt(p.pos) for i, p in self.engine.positions.items()},
            "exposure": fmt(self.engine.exposure()),
            "open_orders": [o.to_okx() for o in self.engine.pending()],
            "market": {i: {"bidPx": fmt(st.best_bid), "askPx": fmt(st.best_ask), "last": fmt(st.last_px),
                           "seqId": self.books[i].seq_id, "nextTradeId": self.trades[i].next_id,
                           "tradesSeqId": self.trades[i].seq_id}
                       for i, st in self.market.state.items()},
            "sessions": {
                "public": [{"conn": c.id, "subs": sorted(f"{a}:{b}" for a, b in c.subs)}
                           for c in self.conns.values() if c.kind == "public"],
                "private": [{"conn": c.id, "logged_in": c.logged_in, "channels": sorted(c.private_subs)}
                            for c in self.conns.values() if c.kind == "private"],
                "reauth_refused": refusal is not None,
            },
            "faults_active": [r.to_dict() for r in self.faults.records if r.active],
            "counters": dict(self.counters, orders=len(self.engine.orders), ledger_entries=len(self.ledger)),
        }

    def reset(self) -> None:
        """Clear orders, positions, ledger and faults (sockets and the market keep going)."""
        self.faults.end_all()
        self.faults.clear()
        self.engine.reset()
        self.ledger.clear()
        for k in self.counters:
            self.counters[k] = 0


#: Where the aiohttp application keeps its :class:`VenueCore` (REST and WebSocket handlers read it).
