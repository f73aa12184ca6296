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

from .conn import CLOSE_LOGIN_REFUSED, CLOSE_SESSION_TERMINATED, Callback, Conn, dumps
from .faults import FaultRecord, FaultRegistry, Stamp
from .ledger import Ledger
from .market import INSTRUMENTS, BookFeed, Market, TickTrade, TradeFeed, fmt
from .orders import Order, OrderEngine, now_ms

class VenueCore:
    """Everything the venue knows; see the module docstring for the threading rule."""

    def __init__(self, seed: int = 7, tick_ms: int = 50) -> None:
        self.seed = seed
        self.tick_ms = tick_ms
        self.ledger = Ledger()
        self.market = Market(seed)
        self.books = {i: BookFeed(st) for i, st in self.market.state.items()}
        self.trades = {i: TradeFeed(i) for i in self.market.state}
        self.faults = FaultRegistry(self.ledger)
        self.engine = OrderEngine(self.market, self.ledger, self._on_order_update)
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
        """One market step: move prices, fill resting orders, publish books and trades."""
        self.faults.expire(time.monotonic())
        trades = self.market.tick()
        self.engine.on_tick()
        ts = now_ms()
        for inst_id in sorted(self.books):
            self._publish_book(inst_id, ts)
        for t in trades:
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
        data = feed.publish(self.market.state[inst_id], ts, skip)
        arg = {"channel": "books", "instId": inst_id}
        update = {"arg": arg, "action": "update", "data": [data]}
        gap_cbs: list[Callback] = []
        if gap:
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

    def _publish_trade(self, trade: TickTrade, ts: int) -> None:
        inst_id = trade.inst_id
        subs = self._public("trades", inst_id)
        if self._withhold("trades", subs):
            return
        feed = self.trades[inst_id]
        gap = self.faults.first("trades_gap", lambda r: r.params["instId"] == inst_id) if subs else None
        arg = {"channel": "trades", "instId": inst_id}
        if gap is None:
            msgs = [({"arg": arg, "data": [feed.assign(trade, ts)]}, [])]
        elif gap.params["mode"] == "skip":
            first_skipped = feed.next_id
            entry = feed.assign(trade, ts, skip=gap.params["count"])
            gap.detail.update(skipped_trade_ids=[str(i) for i in range(first_skipped, first_skipped + gap.params["count"])],
                              tradeId=entry["tradeId"])
            msgs = [({"arg": arg, "data": [entry]}, [lambda at, g=gap: self.faults.land(g, at)])]
        elif gap.params["mode"] in ("repeat", "skip_repeat"):
            # The same trade (same tradeId) written again: "repeat" count more times, "skip_repeat" once
            # after a gap of count ids. Lands with the last repeat, so the proof holds every write.
            gapped = gap.params["mode"] == "skip_repeat"
            first_skipped = feed.next_id
            entry = feed.assign(trade, ts, skip=gap.params["count"] if gapped else 0)
            repeats = 1 if gapped else gap.params["count"]
            if gapped:
                gap.detail.update(skipped_trade_ids=[str(i) for i in range(first_skipped, first_skipped + gap.params["count"])])
            gap.detail.update(tradeId=entry["tradeId"], repeated_trade_ids=[entry["tradeId"]],
                              repeats_per_socket=repeats, sockets=len(subs))
            msgs = [({"arg": arg, "data": [dict(entry)]}, []) for _ in range(repeats)]
            msgs.insert(0, ({"arg": arg, "data": [entry]}, []))
            msgs[-1] = (msgs[-1][0], [lambda at, g=gap: self.faults.land(g, at)])
        else:
            # Reorder: two consecutive trades, the later id sent first.
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

    def public_op(self, conn: Conn, msg: Any) -> None:
        """Handle one text message from a public socket (subscribe / unsubscribe)."""
        op = msg.get("op") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            self.send_public(conn, {"event": "error", "code": "60012", "msg": f"Invalid request: {dumps(msg)[:200]}"})
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId") if isinstance(arg, dict) else None
            if channel not in ("books", "trades") or inst_id not in INSTRUMENTS:
                self.send_public(conn, {"event": "error", "code": "60018",
                                        "msg": f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist"})
                continue
            key = (channel, inst_id)
            out_arg = {"channel": channel, "instId": inst_id}
            if op == "unsubscribe":
                conn.subs.discard(key)
                if channel == "books":
                    conn.needs_snapshot.discard(inst_id)
                self.send_public(conn, {"event": "unsubscribe", "arg": out_arg})
                continue
            conn.subs.add(key)
            self.send_public(conn, {"event": "subscribe", "arg": out_arg})
            if channel == "books":
                conn.needs_snapshot.add(inst_id)
                if self._frozen("books") is None:
                    conn.needs_snapshot.discard(inst_id)
                    self.send_public(conn, {"arg": out_arg, "action": "snapshot",
                                            "data": [self.books[inst_id].snapshot()]})

    # -- private sessions ------------------------------------------------------------------------

    def reauth_refused(self) -> FaultRecord | None:
        """The session-termination fault currently refusing logins, or None."""
        self.faults.expire(time.monotonic())
        return self.faults.first("session_termination", lambda r: r.params["refuse_reauth_s"] != 0)

    def private_op(self, conn: Conn, msg: Any) -> None:
        """Handle one text message from a private socket (login / subscribe / unsubscribe)."""
        op = msg.get("op") if isinstance(msg, dict) else None
        args = msg.get("args") if isinstance(msg, dict) else None
        if op == "login":
            if not isinstance(args, list) or not args or not isinstance(args[0], dict) or not args[0].get("apiKey"):
                conn.send({"event": "error", "code": "60009", "msg": "Login failed: args[0].apiKey missing"})
                return
            refusal = self.reauth_refused()
            if refusal is not None:
                refusal.detail["refused_logins"] = refusal.detail.get("refused_logins", 0) + 1
                self.ledger.append("session", event="login_refused", conn=conn.id, fault=refusal.id)
                conn.send({"event": "error", "code": "60009", "msg": "Login failed: re-authentication refused"})
                conn.close_after_queue(CLOSE_LOGIN_REFUSED)
                return
            conn.logged_in = True
            self.ledger.append("session", event="login", conn=conn.id, apiKey=str(args[0].get("apiKey")))
            conn.send({"event": "login", "code": "0", "msg": "", "connId": conn.id})
            return
        if op in ("subscribe", "unsubscribe") and isinstance(args, list) and args:
            if not conn.logged_in:
                conn.send({"event": "error", "code": "60011", "msg": "Please log in"})
                return
            for arg in args:
                if not isinstance(arg, dict) or arg.get("channel") != "orders":
                    conn.send({"event": "error", "code": "60018", "msg": f"Wrong URL or channel:{arg!r} doesn't exist"})
                    continue
                conn.orders_sub = dict(arg) if op == "subscribe" else None
                conn.send({"event": op, "arg": dict(arg), "connId": conn.id})
            return
        conn.send({"event": "error", "code": "60012", "msg": f"Invalid request: {dumps(msg)[:200]}"})

    def _on_order_update(self, order: Order) -> None:
        for c in self.conns.values():
            sub = c.orders_sub
            if c.kind != "private" or not c.logged_in or sub is None:
                continue
            if sub.get("instId") not in (None, "", order.inst_id):
                continue
            self.counters["ws_private_sent"] += 1
            c.send({"arg": {"channel": "orders", "instType": sub.get("instType", "SWAP")}, "data": [order.push()]})

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
        targets = [c for c in self.conns.values() if c.kind == "private" and c.logged_in]
        rec.detail.update(sessions=[c.id for c in targets], closed_sessions=[])
        if rec.params["refuse_reauth_s"] == 0:
            self.faults.end(rec)
        for c in targets:
            c.logged_in = False  # no more pushes: the session is over from now on
            self.ledger.append("session", event="terminated", conn=c.id, fault=rec.id)
            c.send({"event": "error", "code": "10028", "msg": "Session terminated by venue"})

            def closed(at: Stamp, c: Conn = c) -> None:
                rec.detail["closed_sessions"].append(c.id)
                self.faults.land(rec, at)
            c.close_after_queue(CLOSE_SESSION_TERMINATED, [closed])

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
                           "seqId": self.books[i].seq_id, "nextTradeId": self.trades[i].next_id}
                       for i, st in self.market.state.items()},
            "sessions": {
                "public": [{"conn": c.id, "subs": sorted(f"{a}:{b}" for a, b in c.subs)}
                           for c in self.conns.values() if c.kind == "public"],
                "private": [{"conn": c.id, "logged_in": c.logged_in, "orders": c.orders_sub is not None}
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
CORE_KEY: web.AppKey[VenueCore] = web.AppKey("venue_core", VenueCore)
