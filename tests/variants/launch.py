"""Buggy variants of the reference target okx_demo_api, one bug each, for the not-vacuous drill tests.

Run as ``python tests/variants/launch.py <bug> [target flags...]`` (or ``python -m tests.variants.launch``
from the repository root). The launcher imports the reference target, applies exactly one monkeypatch
selected by name, then runs the target's normal entry point with the same environment. The target
package itself is never edited: every bug lives here, patched onto stable behaviour-level functions.
``none`` runs the unmodified target (a control for the launcher itself). The variants in ``CORRECT`` are
not bugs but different correct behaviour (faster, more talkative): their drills must PASS.
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from typing import Any, Callable, Sequence

from okx_demo_api import app as app_mod
from okx_demo_api import main as main_mod
from okx_demo_api import status as status_mod
from okx_demo_api.dispatcher import fmt_sz
from okx_demo_api.policy import ACTIVE, Decision, PolicyGuard
from okx_demo_api.reconcile import IntentResolver
from okx_demo_api.telemetry import Telemetry
from okx_demo_api.venue_client import RestClient
from okx_demo_api.wal import read_records

App = app_mod.App

# Variant 2: how long a latch code stays set before the (buggy) timer clears it. Far below drill 2's
# 2.5 s freeze, so the first clear lands while the feed is still silent.
LATCH_TIMER_S = 0.4
# Variant 8: how many of the journal's last intents the (buggy) replay re-sends.
REPLAY_TAIL = 3
# Variant exposure_grows_in_containment: the retry backoff before the rejected leg is sent again; past
# drill 1's first safe sample plus its in-flight grace, so the OPEN is also one sent while blocked.
REHEDGE_AFTER_S = 0.3
# Variant loop_stalls_on_wal: the back-off after the WAL drained; longer than the time drill 3 stays
# blocked after the queue drains, so the loop stays frozen for the whole blocked window.
WAL_BACKOFF_S = 1.0


def latch_never_set_on_gap() -> None:
    """A book seqId gap is logged (and the book re-subscribed) but the latch is never set."""
    def on_book_gap(self: App, inst: str, detail: dict) -> None:
        self.log("book_gap_ignored", **detail)  # detail already names the instrument

    App._on_book_gap = on_book_gap  # type: ignore[method-assign]


def latch_cleared_on_timer() -> None:
    """Latch codes clear LATCH_TIMER_S after they were set, with no reconciliation behind the clear."""
    orig = App._monitor_step

    def monitor_step(self: App) -> None:
        orig(self)
        # clear_reconciled(t) drops codes set before t: passing "now - timer" turns it into a timer.
        cleared = self.latch.clear_reconciled(time.monotonic() - LATCH_TIMER_S, detail="latch timer expired")
        if cleared:
            self.log("latch_cleared_by_timer", codes=cleared)

    App._monitor_step = monitor_step  # type: ignore[method-assign]


def active_while_latched() -> None:
    """/status says trading_mode=Active with empty mode_reasons while the latch is set (orders stay gated)."""
    orig = status_mod.build

    def build(app: App) -> dict[str, Any]:
        doc = orig(app)
        if doc["open_permission_blocked_latch"] and doc["trading_mode"] != "Kill":
            d = Decision(ACTIVE, doc["risk_state"], ())
            doc["trading_mode"], doc["mode_reasons"] = ACTIVE, []
            # owner_view derived from the lying decision, so the only inconsistency is the latch one.
            doc["owner_view"] = status_mod.owner_view(app, d, doc["open_permission_reason_codes"], app.manifest)
        return doc

    status_mod.build = build


def open_while_latched() -> None:
    """The order path (strategy and dispatcher) decides without the latch; /status stays honest."""
    orig_init = App.__init__

    def init(self: App, cfg: Any) -> None:
        orig_init(self, cfg)

        def decide_ignoring_latch() -> Decision:
            return self.guard.resolve(dataclasses.replace(self.inputs(), latched=False))

        self.strategy.decide = decide_ignoring_latch
        self.dispatcher.decide = decide_ignoring_latch

    App.__init__ = init  # type: ignore[method-assign]


def mode_reasons_out_of_order() -> None:
    """mode_reasons come out in reverse manifest order (modes and tiers unchanged)."""
    orig = PolicyGuard.resolve

    def resolve(self: PolicyGuard, inputs: Any) -> Decision:
        d = orig(self, inputs)
        return dataclasses.replace(d, mode_reasons=tuple(reversed(d.mode_reasons)))

    PolicyGuard.resolve = resolve  # type: ignore[method-assign]


def stop_recorded_as_completed() -> None:
    """A run ended by the STOP file is recorded as status=completed instead of interrupted."""
    orig = App.manifest_doc

    def manifest_doc(self: App) -> dict:
        doc = orig(self)
        if self.stop_reason == "stop_file" and doc["status"] == "interrupted":
            doc["status"] = "completed"
        return doc

    App.manifest_doc = manifest_doc  # type: ignore[method-assign]


def connection_errors_not_counted() -> None:
    """The seeds' C2.3 failure: only HTTP error responses are counted, not resets/timeouts/WS errors."""
    orig = Telemetry.error

    def error(self: Telemetry, kind: str, endpoint: str, status: int | None = None, detail: str = "") -> None:
        if kind == "http_error":
            orig(self, kind, endpoint, status, detail)

    Telemetry.error = error  # type: ignore[method-assign]


def duplicate_dispatch_after_restart() -> None:
    """WAL replay re-sends the journal's last intents (and unresolved ones) with the same clOrdId,
    instead of asking the venue what became of them."""
    orig_replay = App._replay_wal
    orig_run = IntentResolver.run

    def replay_wal(self: App) -> None:
        orig_replay(self)  # the honest replay queues unresolved intents for the resolver...
        intents = [r for r in read_records(self.wal.path) if r.get("t") == "intent"]
        by_id = {r["clOrdId"]: r for r in intents}
        resend = {r["clOrdId"]: r for r in intents[-REPLAY_TAIL:]}
        for cid in list(self.resolver.pending):  # ...the bug: they are re-sent instead of queried
            if cid in by_id:
                resend[cid] = by_id[cid]
                del self.resolver.pending[cid]
        self.resolver.variant_resend = list(resend.values())  # type: ignore[attr-defined]

    async def run(self: IntentResolver, stopping: asyncio.Event, period_s: float = 0.2) -> None:
        # The resolver task starts once the REST session is up: re-send first, then resolve as usual.
        for r in getattr(self, "variant_resend", []):
            body = {"instId": r["instId"], "tdMode": "cross", "clOrdId": r["clOrdId"], "side": r["side"],
                    "ordType": "market", "sz": fmt_sz(float(r["sz"])), "reduceOnly": bool(r.get("reduceOnly"))}
            res = await self.rest.request("POST", "/api/v5/trade/order", body=body)
            self.log("wal_replay_resent", clOrdId=r["clOrdId"], status=res.status, code=res.code)
        await orig_run(self, stopping, period_s)

    App._replay_wal = replay_wal  # type: ignore[method-assign]
    IntentResolver.run = run  # type: ignore[method-assign]


def not_found_taken_as_absent() -> None:
    """No expiry handling (the behaviour before issue 14): order requests carry no expTime, and the first
    "order does not exist" answer resolves a maybe-dispatched intent as never placed, although its
    original request can still reach the venue."""
    RestClient.exp_time_header = staticmethod(lambda exp_time_ms: {})  # type: ignore[method-assign]
    IntentResolver.may_still_arrive = lambda self, item, now=None: False  # type: ignore[method-assign]


def reduce_only_blocked_by_wal() -> None:
    """Reduce-only orders wait for the WAL like opens, so a saturated WAL blocks risk reduction too."""
    from okx_demo_api.dispatcher import Dispatcher

    Dispatcher._bypasses_wal = lambda self, intents: False  # type: ignore[method-assign]


def reconcile_waits_for_first_code() -> None:
    """Two-fault bug: the readiness to reconcile follows only the latch code raised first. A second code
    raised while latched (a session termination after a book gap) is then cleared by a reconciliation
    that never waited for the second condition to end. With one code latched, behaviour is unchanged."""
    orig = App._reconcile_ready

    def reconcile_ready(self: App, now: float) -> bool:
        codes = self.latch.codes
        if len(codes) < 2 or not self.startup_done:
            return orig(self, now)
        first = min(codes, key=lambda c: self.latch.set_mono(c) or now)
        since = self._clear_since(first)
        return since is not None and now - since >= self.cfg.reconcile_stable_ms / 1000.0

    App._reconcile_ready = reconcile_ready  # type: ignore[method-assign]


def inflight_reconcile_clears_new_code() -> None:
    """Exploration's target (issue 19, point 7), held out of the single-fault matrix: a latch code raised
    while a reconciliation is already in flight is cleared by that reconciliation. The reconciliation
    clears every code set when its answers arrive, not only those raised before its reads began. With no
    reconciliation in flight when a code is raised (every single-fault drill, which waits for the
    condition to end before reading), behaviour is unchanged; the global invariant
    ``reconcile_clears_only_older_codes`` is what catches it, once a schedule fires a fault while the
    reads are outstanding."""
    from okx_demo_api.latch import OpenPermissionLatch as Latch

    orig = Latch.clear_reconciled

    def clear_reconciled(self: Latch, reconcile_started_mono: float, detail: str = "",
                         only: Any = None) -> list[str]:
        return orig(self, time.monotonic() + 1.0, detail, only)  # the bug: "started" taken as the answer's time

    Latch.clear_reconciled = clear_reconciled  # type: ignore[method-assign]


#: Variants only exploration is expected to find (two faults, a narrow moment): not in the single-fault matrix.
EXPLORATION_TARGETS = ("reconcile_waits_for_first_code", "inflight_reconcile_clears_new_code")


def trades_processed_twice() -> None:
    """A repeated tradeId (the same trade sent again) is taken as a new trade and processed a second time;
    gaps (a higher id than expected) are still detected and latched."""
    from okx_demo_api.venue_client import PublicFeed

    orig = PublicFeed._on_trade

    def on_trade(self: PublicFeed, inst: str, d: dict) -> None:
        try:
            tid = int(d.get("tradeId"))
        except (TypeError, ValueError):
            return orig(self, inst, d)
        if self.last_trade_id[inst] is not None and tid == self.last_trade_id[inst]:
            self.last_trade_mono[inst] = time.monotonic()
            self.trades_processed += 1  # the bug: processed again, not dropped
            return
        orig(self, inst, d)

    PublicFeed._on_trade = on_trade  # type: ignore[method-assign]


def timeouts_not_counted() -> None:
    """Client timeouts are not error events (only HTTP errors, resets and WS errors are counted)."""
    orig = Telemetry.error

    def error(self: Telemetry, kind: str, endpoint: str, status: int | None = None, detail: str = "") -> None:
        if kind != "timeout":
            orig(self, kind, endpoint, status, detail)

    Telemetry.error = error  # type: ignore[method-assign]


def no_clock_resync() -> None:
    """Requests refused for their timestamp (OKX 50102 / 60006) are counted and fail closed, but the clock
    offset is never re-learnt from public/time: the target stays refused until the venue's skew ends."""
    async def resync_clock(self: RestClient) -> int | None:
        return None

    RestClient.resync_clock = resync_clock  # type: ignore[method-assign]


def skew_refusals_not_counted() -> None:
    """Requests the venue refuses for their timestamp (HTTP 401, OKX 50102) are not error events (the
    clock is re-synced all the same)."""
    orig = Telemetry.error

    def error(self: Telemetry, kind: str, endpoint: str, status: int | None = None, detail: str = "") -> None:
        if not (kind == "http_error" and status == 401):
            orig(self, kind, endpoint, status, detail)

    Telemetry.error = error  # type: ignore[method-assign]


def dns_failures_not_counted() -> None:
    """Failed lookups of the venue's name are not error events (resets, timeouts and HTTP errors are)."""
    orig = Telemetry.error

    def error(self: Telemetry, kind: str, endpoint: str, status: int | None = None, detail: str = "") -> None:
        if kind != "dns_failure":
            orig(self, kind, endpoint, status, detail)

    Telemetry.error = error  # type: ignore[method-assign]


def latch_cleared_before_reads() -> None:
    """The latch clears when a reconciliation starts, before its positions / open-orders reads (and
    whatever they find)."""
    orig = App._reconcile

    async def reconcile(self: App) -> None:
        cleared = self.latch.clear_reconciled(time.monotonic(), detail="reconciliation started")
        if cleared:
            self.log("latch_cleared_before_reads", codes=cleared)
        await orig(self)

    App._reconcile = reconcile  # type: ignore[method-assign]


def exposure_grows_in_containment() -> None:
    """Legging-risk handling completes the pair instead of only flattening: after a retry backoff
    (REHEDGE_AFTER_S) the rejected leg is sent again as a new OPEN on its own path, outside the guard,
    so exposure grows during containment (it is flattened afterwards)."""
    from okx_demo_api.dispatcher import Dispatcher

    orig_check, orig_naked = Dispatcher._check_group, App._on_naked

    def check_group(self: Dispatcher, group: str, placed: dict, intents: Any) -> None:
        self.variant_naked = (placed, intents)  # type: ignore[attr-defined]
        orig_check(self, group, placed, intents)

    def on_naked(self: App, detail: dict) -> None:
        orig_naked(self, detail)
        placed, intents = getattr(self.dispatcher, "variant_naked", ({}, None))
        for it in intents or []:
            if placed.get(it.leg) is False:
                body = dict(it.body(), clOrdId=self.strategy.next_id("h"), reduceOnly=False)
                loop = asyncio.get_running_loop()
                loop.call_later(REHEDGE_AFTER_S, lambda b=body: loop.create_task(
                    self.rest.request("POST", "/api/v5/trade/order", body=b)))
                self.log("variant_rehedge", clOrdId=body["clOrdId"], instId=it.inst, side=it.side)

    Dispatcher._check_group = check_group  # type: ignore[method-assign]
    App._on_naked = on_naked  # type: ignore[method-assign]


def no_containment() -> None:
    """The partial-fill emergency is a timer: ReduceOnly for the cooldown, but no containment order is
    sent (the naked leg is left alone), then back to Active."""
    from okx_demo_api.policy import KILL
    from okx_demo_api.strategy import Strategy

    orig_decide, orig_monitor = Strategy.decide_action, App._monitor_step

    def decide_action(self: Strategy, k: int) -> Any:
        if self.containment_active() and self.decide().trading_mode != KILL:
            return None
        return orig_decide(self, k)

    def monitor_step(self: App) -> None:
        if self.emergency_since is not None and \
                (time.monotonic() - self.emergency_since) * 1000 >= self.cfg.emergency_cooldown_ms:
            self.log("emergency_reduceonly_cleared", exposure=self.inventory.exposure(), by="timer")
            self.emergency_since = None
        orig_monitor(self)

    Strategy.decide_action = decide_action  # type: ignore[method-assign]
    App._monitor_step = monitor_step  # type: ignore[method-assign]


def kill_blocks_risk_reduction() -> None:
    """Kill is taken as a full stop: no order at all leaves in Kill, risk-reducing ones included."""
    from okx_demo_api.policy import KILL
    from okx_demo_api.strategy import Strategy

    orig = Strategy.decide_action

    def decide_action(self: Strategy, k: int) -> Any:
        return None if self.decide().trading_mode == KILL else orig(self, k)

    Strategy.decide_action = decide_action  # type: ignore[method-assign]


def opens_in_kill() -> None:
    """The order path (strategy and dispatcher) takes Kill for Active; /status stays honest (Kill)."""
    from okx_demo_api.policy import KILL

    orig_init = App.__init__

    def init(self: App, cfg: Any) -> None:
        orig_init(self, cfg)

        def decide_kill_as_active() -> Decision:
            d = self.decide()
            return Decision(ACTIVE, d.risk_state, ()) if d.trading_mode == KILL else d

        self.strategy.decide = decide_kill_as_active
        self.dispatcher.decide = decide_kill_as_active

    App.__init__ = init  # type: ignore[method-assign]


def partial_fill_goes_kill() -> None:
    """A naked leg escalates to Kill (KILL_CORTEX_FORCE_KILL) for the emergency instead of ReduceOnly."""
    from okx_demo_api.policy import FORCE_KILL

    orig = App.inputs

    def inputs(self: App) -> Any:
        i = orig(self)
        return dataclasses.replace(i, reasons=set(i.reasons) | {FORCE_KILL}) if self.emergency_since is not None else i

    App.inputs = inputs  # type: ignore[method-assign]


def ws_lag_capped() -> None:
    """ws_event_lag_ms in /status never exceeds the stale threshold (the latch still works on the real lag)."""
    orig = App.ws_lag_ms

    def ws_lag_ms(self: App) -> int:
        return min(orig(self), self.cfg.stale_threshold_ms)

    App.ws_lag_ms = ws_lag_ms  # type: ignore[method-assign]


def enqueue_failures_not_counted() -> None:
    """A full WAL queue refuses the enqueue (fail closed) but wal_queue_enqueue_failures is never incremented."""
    from okx_demo_api.wal import Wal

    orig = Wal.enqueue

    def enqueue(self: Wal, record: dict) -> Any:
        n = self.enqueue_failures
        fut = orig(self, record)
        self.enqueue_failures = n
        return fut

    Wal.enqueue = enqueue  # type: ignore[method-assign]


def session_10028_not_counted() -> None:
    """A 10028 session termination is handled as a plain disconnect: latched, but 10028_count_5m stays 0."""
    orig = App._on_session_lost

    def on_session_lost(self: App, info: dict) -> None:
        orig(self, {**info, "code": None} if info.get("code") == "10028" else info)

    App._on_session_lost = on_session_lost  # type: ignore[method-assign]


def loop_stalls_on_wal() -> None:
    """The trading loop blocks on WAL backpressure: once the queue is full it waits until the queue has
    drained completely, then backs off WAL_BACKOFF_S before ticking again (loop_tick_last_ts_ms stops
    moving for the whole blocked window)."""
    from okx_demo_api.clock import now_ms, sleep_unless
    from okx_demo_api.strategy import Strategy

    async def run(self: Strategy, stopping: asyncio.Event) -> None:
        wal = self.dispatcher.wal
        next_t = time.monotonic()
        while not stopping.is_set():
            if wal.depth >= wal.capacity:  # the bug: the hot loop waits for the WAL
                while (wal.depth > 0 or wal.stalled) and not stopping.is_set():
                    await asyncio.sleep(0.01)
                await sleep_unless(stopping, WAL_BACKOFF_S)
            self.loop_tick_ms = now_ms()
            self.ticks += 1
            intents = self.decide_action(self.ticks)
            if not (intents and self.dispatcher.submit(intents)):
                self._probe()
            next_t = max(next_t + self.period, time.monotonic() - self.period)
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    Strategy.run = run  # type: ignore[method-assign]


def no_restart_latch() -> None:
    """An unclean previous run is noticed but RESTART_RECONCILE_REQUIRED is never latched."""
    from okx_demo_api.latch import OpenPermissionLatch

    orig = OpenPermissionLatch.set

    def set_(self: OpenPermissionLatch, code: str, detail: str = "") -> bool:
        return False if code == app_mod.RESTART else orig(self, code, detail)

    OpenPermissionLatch.set = set_  # type: ignore[method-assign]


def no_fencing() -> None:
    """The trading lease is taken at start but never checked: an old replica that was replaced (its node
    lost) keeps trading beside its replacement."""
    from okx_demo_api.lease import TradingLease

    TradingLease.held = lambda self: True  # type: ignore[method-assign]


def kill_resumes_on_its_own() -> None:
    """The Kill for an unknown token is not sticky: it lifts by itself after 0.5 s, without a restart."""
    from okx_demo_api.policy import FORCE_KILL

    orig = PolicyGuard.ingest_unknown

    def ingest_unknown(self: PolicyGuard, token: str) -> None:
        orig(self, token)
        asyncio.get_running_loop().call_later(0.5, self.sticky_kill.discard, FORCE_KILL)

    PolicyGuard.ingest_unknown = ingest_unknown  # type: ignore[method-assign]


def stop_detected_late() -> None:
    """The STOP file counts only once it is 0.5 s old (a debounce): STOP is always detected late."""
    from okx_demo_api.ops_files import OpsFiles

    def stop_requested(self: OpsFiles) -> bool:
        try:
            return time.time() - self.stop_path.stat().st_mtime >= 0.5
        except OSError:
            return False

    OpsFiles.stop_requested = stop_requested  # type: ignore[method-assign]


def stop_exits_nonzero() -> None:
    """A run ended by the STOP file exits with status 1, as if it had failed."""
    orig = App.run

    async def run(self: App) -> int:
        rc = await orig(self)
        return 1 if self.stop_reason == "stop_file" else rc

    App.run = run  # type: ignore[method-assign]


def latch_never_set() -> None:
    """Every open-permission latch request is dropped (the conditions are detected and logged, never latched)."""
    from okx_demo_api.latch import OpenPermissionLatch

    OpenPermissionLatch.set = lambda self, code, detail="": False  # type: ignore[method-assign]


def opens_ignore_guard() -> None:
    """The order path (strategy and dispatcher) always decides Active: OPENs go out whatever the mode;
    /status stays honest."""
    orig_init = App.__init__

    def init(self: App, cfg: Any) -> None:
        orig_init(self, cfg)

        def decide_active() -> Decision:
            d = self.decide()
            return Decision(ACTIVE, d.risk_state, ())

        self.strategy.decide = decide_active
        self.strategy.containment_active = lambda: False
        self.dispatcher.decide = decide_active

    App.__init__ = init  # type: ignore[method-assign]


def _flatten_everything(app: App, why: str) -> None:
    """One reduce-only order per instrument for its whole committed position, sent at once."""
    from okx_demo_api.dispatcher import Intent

    for inst in app.inventory.instruments:
        c = app.inventory.committed(inst)
        if abs(c) > 1e-9:
            it = Intent(app.strategy.next_id("x"), inst, "sell" if c > 0 else "buy", abs(c), True, "flatten")
            sent = app.dispatcher.submit([it])
            app.log("variant_flatten_at_once", why=why, clOrdId=it.cl_ord_id, instId=inst, sz=abs(c), sent=sent)


def flatten_at_once() -> None:
    """CORRECT, only faster: on a naked leg or on Kill the whole position is flattened at once, one
    reduce-only order per instrument, within milliseconds of the fault (before /status shows it)."""
    from okx_demo_api.cortex import Cortex

    orig_naked, orig_init, orig_emit = App._on_naked, App.__init__, Cortex.emit

    def on_naked(self: App, detail: dict) -> None:
        orig_naked(self, detail)
        _flatten_everything(self, "naked_leg")

    def init(self: App, cfg: Any) -> None:
        orig_init(self, cfg)
        self.cortex.variant_app = self  # type: ignore[attr-defined]

    def emit(self: Cortex, token: str) -> dict:
        out = orig_emit(self, token)
        app = getattr(self, "variant_app", None)
        if app is not None and app.decide().trading_mode == "Kill":
            _flatten_everything(app, "kill")
        return out

    App._on_naked = on_naked  # type: ignore[method-assign]
    App.__init__ = init  # type: ignore[method-assign]
    Cortex.emit = emit  # type: ignore[method-assign]


def extra_truthful_reason() -> None:
    """CORRECT, more talkative: while market data is stale it also reports REDUCEONLY_INPUT_MISSING_OR_STALE
    beside the latch reason (the guard keeps manifest order)."""
    orig = App.inputs

    def inputs(self: App) -> Any:
        i = orig(self)
        lag = self.feed.lag_ms()
        if self.latch.has(app_mod.STALE) or (lag is not None and lag > self.cfg.stale_threshold_ms):
            i = dataclasses.replace(i, reasons=set(i.reasons) | {app_mod.INPUT_MISSING})
        return i

    App.inputs = inputs  # type: ignore[method-assign]


def fast_reconciler_without_latch_events() -> None:
    """CORRECT, without the optional extra: the latch keeps no events, so neither the status nor
    execution_fingerprint.json carries a latch clear time (``latch_events`` stays empty); it reconciles
    and clears as fast as the reference."""
    from collections import deque

    from okx_demo_api.latch import OpenPermissionLatch

    orig = OpenPermissionLatch.__init__

    def init(self: OpenPermissionLatch, *args: Any, **kwargs: Any) -> None:
        orig(self, *args, **kwargs)
        self.events = deque(maxlen=0)  # every event is dropped as it is appended

    OpenPermissionLatch.__init__ = init  # type: ignore[method-assign]


def other_json_formatting() -> None:
    """CORRECT, other bytes: REST bodies are serialized as python-okx does (``json.dumps`` default
    spacing, ``"reduceOnly": false``) with the keys in reverse order; the meaning is the same."""
    import json
    import types

    from okx_demo_api import venue_client

    def reorder(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: reorder(obj[k]) for k in reversed(list(obj))}
        if isinstance(obj, list):
            return [reorder(x) for x in obj]
        return obj

    shim = types.SimpleNamespace(**{k: getattr(json, k) for k in ("loads", "JSONDecodeError", "load", "dump")})
    shim.dumps = lambda obj, **_: json.dumps(reorder(obj))  # default separators: ", " and ": "
    venue_client.json = shim  # type: ignore[attr-defined]


def none() -> None:
    """No bug: the unmodified reference target."""


# --- wip/varlatch ---
def stale_feed_not_latched() -> None:
    """Stale market data is handled as a missing input, not as a latch condition: while the feed is
    silent past the stale threshold the service goes ReduceOnly with REDUCEONLY_INPUT_MISSING_OR_STALE,
    but WS_DATA_STALE is never latched, so OPENs resume the moment data flows again, with no
    reconciliation behind them."""
    from okx_demo_api.latch import OpenPermissionLatch

    orig_set, orig_inputs = OpenPermissionLatch.set, App.inputs

    def set_(self: OpenPermissionLatch, code: str, detail: str = "") -> bool:
        return False if code == app_mod.STALE else orig_set(self, code, detail)

    def inputs(self: App) -> Any:
        i = orig_inputs(self)
        lag = self.feed.lag_ms()
        if lag is not None and lag > self.cfg.stale_threshold_ms:
            i = dataclasses.replace(i, reasons=set(i.reasons) | {app_mod.INPUT_MISSING})
        return i

    OpenPermissionLatch.set = set_  # type: ignore[method-assign]
    App.inputs = inputs  # type: ignore[method-assign]


def trades_gap_not_latched() -> None:
    """A tradeId gap is handled as a transient data-quality problem: the service goes ReduceOnly with
    REDUCEONLY_INPUT_MISSING_OR_STALE until the trades stream has flowed past the gap for
    reconcile_stable_ms, then resumes on its own; WS_TRADES_GAP is never latched, so no reconciliation
    runs before OPENs resume. (The gapped trade is still dropped, not processed twice.)"""
    def on_trades_gap(self: App, inst: str, detail: dict) -> None:
        self.log("trades_gap_degraded", **detail)  # detail already names the instrument

    orig_inputs = App.inputs

    def inputs(self: App) -> Any:
        i = orig_inputs(self)
        f = self.feed
        gap = f.last_trades_gap_mono
        if gap:
            resumed = max(f.last_trade_mono.values())
            healthy_for = time.monotonic() - gap if resumed > gap else 0.0
            if healthy_for < self.cfg.reconcile_stable_ms / 1000.0:
                i = dataclasses.replace(i, reasons=set(i.reasons) | {app_mod.INPUT_MISSING})
        return i

    App._on_trades_gap = on_trades_gap  # type: ignore[method-assign]
    App.inputs = inputs  # type: ignore[method-assign]


def opens_unjournalled_under_wal_backpressure() -> None:
    """The order path fails open under WAL backpressure (the "oops trade"): it treats the WAL as
    best-effort, so an order the full queue refuses is sent anyway, unjournalled, and never waits for
    fsync; and, as part of the same bug, the order path's decision leaves the WAL backpressure out
    (the strategy and dispatcher ignore the wal_backpressure degraded cause), so OPENs keep flowing.
    /status stays honest (ReduceOnly, risk Degraded)."""
    from okx_demo_api.dispatcher import Dispatcher
    from okx_demo_api.policy import DEGRADED, HEALTHY

    orig_init = App.__init__

    def init(self: App, cfg: Any) -> None:
        orig_init(self, cfg)

        def decide_without_wal() -> Decision:
            self._check_stall(time.monotonic())
            causes = [c for c in self.degraded_causes() if c != "wal_backpressure"]
            i = dataclasses.replace(self.inputs(), risk_state=DEGRADED if causes else HEALTHY)
            return self.guard.resolve(i)

        self.strategy.decide = decide_without_wal
        self.dispatcher.decide = decide_without_wal

    App.__init__ = init  # type: ignore[method-assign]
    # Every order takes the path meant for reduce-only ones: journalled if the queue takes it, sent anyway.
    Dispatcher._bypasses_wal = lambda self, intents: True  # type: ignore[method-assign]


# --- wip/varopen ---
# Variant retry_orders_on_transport_error: the retry period and how long it keeps trying (longer than
# ops_c2_4's 3 s cut, so the retry lands once the venue answers again).
RETRY_EVERY_S = 0.2
RETRY_FOR_S = 6.0


def retry_orders_on_transport_error() -> None:
    """A generic REST retry on order requests: one that failed in transport (timeout, reset, refused
    connection) is re-sent with the same body and clOrdId every RETRY_EVERY_S until the venue answers,
    re-signed with a fresh expTime of the same validity. It trusts clOrdId idempotency, and the re-send
    skips the policy re-check a new dispatch would make, so an OPEN decided before a degradation still
    goes out after it."""
    from okx_demo_api.clock import now_ms

    orig = RestClient.request

    async def request(self: RestClient, method: str, path: str, params: dict | None = None, body: Any = None,
                      exp_time_ms: int | None = None) -> Any:
        t0 = now_ms()
        res = await orig(self, method, path, params, body, exp_time_ms)
        if method != "POST" or path not in ("/api/v5/trade/order", "/api/v5/trade/batch-orders"):
            return res
        deadline = time.monotonic() + RETRY_FOR_S
        while res.status is None and time.monotonic() < deadline:  # no HTTP answer: transport failure
            await asyncio.sleep(RETRY_EVERY_S)
            exp = None if exp_time_ms is None else now_ms() + (exp_time_ms - t0)
            res = await orig(self, method, path, params, body, exp)
        return res

    RestClient.request = request  # type: ignore[method-assign]


# --- wip/vardup ---
# Variant resend_after_not_found: the order requests whose outcome is unknown, kept (by clOrdId) so the
# resolver can send them again.
_UNKNOWN_REQUESTS: dict[str, dict] = {}


def resend_after_not_found() -> None:
    """The classic double order: no expiry handling (order requests carry no expTime), and a
    maybe-dispatched intent the venue answers "order does not exist" for is re-sent with the same
    clOrdId, trusting clOrdId idempotency to make that safe, instead of being resolved as never placed.
    The re-send goes straight from the resolver to the venue, skipping the policy re-check a new dispatch
    would make (so an OPEN decided before a degradation still goes out). Across a partition the re-send
    is placed first, then the held original lands and the venue gets the clOrdId a second time."""
    from okx_demo_api.dispatcher import Dispatcher
    from okx_demo_api.reconcile import S_NO_ORDER

    RestClient.exp_time_header = staticmethod(lambda exp_time_ms: {})  # type: ignore[method-assign]
    orig_handle = Dispatcher._handle

    def handle(self: Dispatcher, intents: list, res: Any, exp_ms: int | None = None) -> None:
        if not res.ok or len(res.data) != len(intents):  # the dispatcher's "outcome unknown" branch
            for it in intents:
                _UNKNOWN_REQUESTS[it.cl_ord_id] = it.body()
        orig_handle(self, intents, res, exp_ms)

    async def resolve_once(self: IntentResolver) -> bool:
        for cid, item in list(self.pending.items()):
            res = await self.rest.request("GET", "/api/v5/trade/order",
                                          params={"instId": item.get("instId"), "clOrdId": cid})
            if cid not in self.pending:
                continue  # resolved meanwhile by a WS update
            if res.ok and res.code == "0" and res.data:
                d = res.data[0]
                try:
                    acc = float(d.get("accFillSz") or 0)
                except (TypeError, ValueError):
                    acc = 0.0
                self.inv.apply_fill(cid, str(d.get("instId") or item.get("instId")),
                                    str(d.get("side") or item.get("side")), acc)
                _UNKNOWN_REQUESTS.pop(cid, None)
                self._done(cid, True, ordId=d.get("ordId"), state=d.get("state"), accFillSz=acc, via="query")
            elif res.code == S_NO_ORDER and cid in _UNKNOWN_REQUESTS:
                body = _UNKNOWN_REQUESTS[cid]
                self.log("intent_resent", clOrdId=cid)
                sent = await self.rest.request("POST", "/api/v5/trade/order", body=body)  # the bug
                if cid not in self.pending:
                    continue
                if sent.ok and sent.code == "0" and sent.data and str(sent.data[0].get("sCode")) == "0":
                    _UNKNOWN_REQUESTS.pop(cid, None)
                    self.inv.apply_fill(cid, str(body["instId"]), str(body["side"]), float(body["sz"]))
                    self._done(cid, True, ordId=sent.data[0].get("ordId"), via="resend")
                elif sent.ok:
                    _UNKNOWN_REQUESTS.pop(cid, None)
                    self._done(cid, False, code=sent.code, via="resend")
                # no answer to the re-send: still unknown, asked (and re-sent) again later
            elif (res.ok and res.code != "0") or res.status == 404:
                _UNKNOWN_REQUESTS.pop(cid, None)
                self._done(cid, False, code=res.code, via="query", expTime=item.get("expTime"))
        return not self.pending

    Dispatcher._handle = handle  # type: ignore[method-assign]
    IntentResolver.resolve_once = resolve_once  # type: ignore[method-assign]

def reduces_only_when_asked() -> None:
    """CORRECT, only less eager: outside Active (and outside Kill and partial-fill containment) the
    strategy sends nothing, so it keeps its positions; reduce-only orders stay permitted and go out
    when asked (the reduce_exposure hook). Without the hook, drill 3 cannot see them: NOT PROVEN."""
    from okx_demo_api.policy import KILL
    from okx_demo_api.strategy import Strategy

    orig = Strategy.decide_action

    def decide_action(self: Strategy, k: int) -> Any:
        d = self.decide()
        if d.trading_mode not in (ACTIVE, KILL) and not self.containment_active():
            return None
        return orig(self, k)

    Strategy.decide_action = decide_action  # type: ignore[method-assign]


VARIANTS: dict[str, Callable[[], None]] = {f.__name__: f for f in (
    latch_never_set_on_gap, latch_cleared_on_timer, active_while_latched, open_while_latched,
    mode_reasons_out_of_order, stop_recorded_as_completed, connection_errors_not_counted,
    duplicate_dispatch_after_restart, not_found_taken_as_absent, reduce_only_blocked_by_wal,
    trades_processed_twice, timeouts_not_counted, latch_cleared_before_reads, exposure_grows_in_containment,
    no_containment, kill_blocks_risk_reduction, opens_in_kill, partial_fill_goes_kill,
    ws_lag_capped, enqueue_failures_not_counted, session_10028_not_counted, loop_stalls_on_wal, no_restart_latch,
    kill_resumes_on_its_own, stop_detected_late, stop_exits_nonzero, latch_never_set, opens_ignore_guard, reconcile_waits_for_first_code, flatten_at_once, extra_truthful_reason, none,
    fast_reconciler_without_latch_events, other_json_formatting,
    stale_feed_not_latched, trades_gap_not_latched, opens_unjournalled_under_wal_backpressure,
    retry_orders_on_transport_error,
    resend_after_not_found, no_clock_resync, skew_refusals_not_counted, inflight_reconcile_clears_new_code,
    dns_failures_not_counted, reduces_only_when_asked, no_fencing)}
#: Variants that are correct (different, not buggy): the drills they run must PASS.
CORRECT = ("flatten_at_once", "extra_truthful_reason", "none", "fast_reconciler_without_latch_events",
           "other_json_formatting", "reduces_only_when_asked")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in VARIANTS:
        print(f"usage: launch.py <bug> [target flags]; bugs: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    VARIANTS[args[0]]()
    print(f"okx_demo_api variant: {args[0]}", file=sys.stderr, flush=True)
    return main_mod.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
