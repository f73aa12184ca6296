"""The service: wires the venue connectors, PolicyGuard, latch, WAL, strategy, reconciliation,
ops files, fault hooks and the status HTTP server into one asyncio process."""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
from typing import Any

from aiohttp import web

from . import status as status_mod
from .clock import now_ms, sleep_unless, utc_now
from .config import Config
from .cortex import Cortex
from .dispatcher import Dispatcher, Intent
from .eventlog import EventLog
from .gate import DispatchGate
from .hooks import HookLog, Hooks
from .inventory import Inventory
from .latch import LatchEvent, OpenPermissionLatch
from .ops_files import OpsFiles, new_run_id, provenance
from .policy import DEGRADED, HEALTHY, Decision, Inputs, Manifest, PolicyGuard
from .reconcile import IntentResolver, Reconciler
from .strategy import Strategy
from .telemetry import Telemetry
from .venue_client import PrivateSession, PublicFeed, RestClient
from .lease import TradingLease
from .wal import Wal, pending_intents, read_records

RESTART = "RESTART_RECONCILE_REQUIRED"
BOOK_GAP = "WS_BOOK_GAP_RECONCILE_REQUIRED"
TRADES_GAP = "WS_TRADES_GAP_RECONCILE_REQUIRED"
STALE = "WS_DATA_STALE_RECONCILE_REQUIRED"
MISMATCH = "INVENTORY_MISMATCH_RECONCILE_REQUIRED"
SESSION = "SESSION_TERMINATION_RECONCILE_REQUIRED"
INPUT_MISSING = "REDUCEONLY_INPUT_MISSING_OR_STALE"
BUNKER = "REDUCEONLY_BUNKER_MODE_ACTIVE"
F1_INVALID = "REDUCEONLY_F1_CERT_INVALID"
EMERGENCY = "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE"
SESSION_UNCONFIRMED = "REDUCEONLY_SESSION_KILL_UNCONFIRMED"

CL_PREFIX = "cd"  # every clOrdId of this service starts with it (reconciliation knows its own orders)
MONITOR_PERIOD_S = 0.01
FILES_PERIOD_S = 0.5
FILES_ERROR_POLL_S = 0.05
BALANCE_PERIOD_S = 2.0
RECONCILE_RETRY_S = 0.25
RECONCILE_PERIOD_S = 5.0
BUNKER_STABLE_S = 2.0  # REST must answer (no refused/reset/timeout call) this long to leave bunker mode
POLICY_REFRESH_S = 10.0


class App:
    """One running instance of okx_demo_api."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.ops = OpsFiles(cfg.control_dir, cfg.data_dir)
        self.log = EventLog(cfg.data_dir / "target.log")
        self.manifest = Manifest.load(cfg.reason_manifest)
        self.guard = PolicyGuard(self.manifest)
        self.cortex = Cortex(self.guard)
        self.policy_update_ms = now_ms()
        self.prov = provenance(cfg.git_commit, cfg.docker_image_tag, cfg.build_id)
        self.config_hash = cfg.config_hash()
        self.run_id = new_run_id(self.prov["build_id"])
        # clOrdId prefix: CL_PREFIX + 6 random hex digits, unique per run (idempotency across restarts).
        self.cl_prefix = CL_PREFIX + secrets.token_hex(3)
        self.start_ms = now_ms()
        self.start_utc = utc_now()
        self.tel = Telemetry()
        self.latch = OpenPermissionLatch(self.manifest, on_event=self._on_latch_event)
        self.inventory = Inventory(cfg.instruments[:2])
        self.gate = DispatchGate()
        self.hook_log = HookLog(cfg.control_dir, self.log)
        self.wal = Wal(cfg.data_dir / "wal.jsonl", cfg.wal_capacity,
                       on_stall_change=lambda s, d: self.hooks.wal_stall_changed(s, d))
        self.hooks = Hooks(cfg.control_dir, self.wal, self.cortex.emit, self.hook_log, reduce=self.reduce_exposure)
        self.rest = RestClient(cfg, self.tel)
        self.feed = PublicFeed(cfg, self.tel, self._on_book_gap, self._on_trades_gap, self.log)
        self.private = PrivateSession(cfg, self.tel, self._on_order, self._on_session_lost, self.log,
                                      clock=self.rest.clock, resync=self.rest.resync_clock)
        self.lease = TradingLease(cfg.data_dir, self.run_id)
        self.dispatcher = Dispatcher(self.wal, self.rest, self.inventory, self.tel, self.gate, self.decide,
                                     self.log, self._on_naked, self._on_unknown, self.run_id,
                                     order_expiry_ms=cfg.order_expiry_ms, lease_held=self.lease.held)
        self.resolver = IntentResolver(self.rest, self.inventory, self.wal, self.log, self.dispatcher.resolved,
                                       margin_ms=cfg.expiry_margin_ms)
        self.reconciler = Reconciler(self.rest, self.inventory, self.gate, self.resolver, CL_PREFIX, self.log)
        self.strategy = Strategy(self.inventory, self.dispatcher, self.decide, self.containment_active,
                                 cfg.order_rate, self.cl_prefix,
                                 probe=lambda inst: self.rest.request("GET", "/api/v5/market/ticker",
                                                                      params={"instId": inst}))
        self.stopping = asyncio.Event()
        self.stop_reason: str | None = None
        self.stop_time: str | None = None
        self.stop_mono: float | None = None
        self.final_status = "running"
        self.end_utc: str | None = None
        # conditions
        self.startup_done = False
        self.unclean: dict | None = None
        self.session_unconfirmed = False
        self.emergency_since: float | None = None
        self.wal_saturated = False
        self._wal_failures_seen = 0
        self.stale_ok_since: float | None = None
        self._last_monitor_mono = 0.0
        self.reconciling = False
        self._next_reconcile = 0.0
        self.disk = (0.0, 0, 0.0, 0)
        self._disk_next = 0.0
        self.mm_util = 0.0
        self.mm_util_ts_ms = 0
        self.bunker_stable_s = BUNKER_STABLE_S

    def reduce_exposure(self) -> dict:
        """The ``reduce_exposure`` hook: one reduce-only order per instrument for its whole committed
        position, sent at once (reduce-only orders never wait for the WAL). Refused only by the policy."""
        sent: list[str] = []
        refused: list[str] = []
        for inst in self.inventory.instruments:
            c = self.inventory.committed(inst)
            if abs(c) > 1e-9:
                it = Intent(self.strategy.next_id("r"), inst, "sell" if c > 0 else "buy", abs(c), True, "flatten")
                (sent if self.dispatcher.submit([it]) else refused).append(it.cl_ord_id)
        detail: dict = {"orders": sent, "exposure": self.inventory.exposure(), "mode": self.decide().trading_mode}
        if refused:
            detail.update(refused=refused, reason="the policy refused a reduce-only order")
        return detail

    # -- policy inputs ----------------------------------------------------------------------------
    def degraded_causes(self) -> list[str]:
        causes = []
        if self.emergency_since is not None:
            causes.append("partial_fill_containment")
        if self.session_unconfirmed:
            causes.append("session_unconfirmed")
        if self.wal_saturated:
            causes.append("wal_backpressure")
        return causes

    def inputs(self) -> Inputs:
        reasons = self.cortex.reasons()
        if not self.startup_done:
            reasons.add(INPUT_MISSING)
        if self.emergency_since is not None:
            reasons.add(EMERGENCY)
        if self.session_unconfirmed:
            reasons.add(SESSION_UNCONFIRMED)
        if self.bunker_active():
            reasons.add(BUNKER)
        if self.cfg.environment == "LIVE":
            # No F1 certificate exists for this demo service (f1_cert_state MISSING): never Active live.
            reasons.add(F1_INVALID)
        return Inputs(risk_state=DEGRADED if self.degraded_causes() else HEALTHY,
                      latched=self.latch.is_set, reasons=reasons)

    def decide(self) -> Decision:
        self._check_stall(time.monotonic())
        return self.guard.resolve(self.inputs())

    def containment_active(self) -> bool:
        return self.emergency_since is not None

    def emergency_remaining_ms(self) -> int:
        if self.emergency_since is None:
            return 0
        return max(0, int(self.cfg.emergency_cooldown_ms - (time.monotonic() - self.emergency_since) * 1000))

    def ws_lag_ms(self) -> int:
        lag = self.feed.lag_ms()
        # Before every stream has spoken, the honest lag is how long we have gone without data.
        return int(lag) if lag is not None else max(0, now_ms() - self.start_ms)

    def md_healthy(self) -> bool:
        lag = self.feed.lag_ms()
        return self.feed.connected and self.feed.books_synced() and lag is not None and lag <= self.cfg.stale_threshold_ms

    def bunker_active(self) -> bool:
        """Connectivity risk: a REST call got no answer (refused, reset, timeout), or was refused for its
        timestamp (OKX 50102), within BUNKER_STABLE_S."""
        last = self.rest.last_transport_error_mono
        return last is not None and time.monotonic() - last < self.bunker_stable_s

    def connectivity_degraded(self) -> bool:
        return (not self.md_healthy() or not self.private.authed or self.bunker_active()
                or any(c in (BOOK_GAP, TRADES_GAP, STALE, SESSION) for c in self.latch.codes))

    # -- event callbacks --------------------------------------------------------------------------
    def _on_latch_event(self, ev: LatchEvent) -> None:
        self.log("latch_" + ev.event, code=ev.code, detail=ev.detail, latch_mono=ev.mono)

    def _on_book_gap(self, inst: str, detail: dict) -> None:
        self.latch.set(BOOK_GAP, f"book gap {detail}")

    def _on_trades_gap(self, inst: str, detail: dict) -> None:
        self.latch.set(TRADES_GAP, f"trades gap {detail}")

    def _on_order(self, d: dict) -> None:
        try:
            acc = float(d.get("accFillSz") or 0)
        except (TypeError, ValueError):
            acc = 0.0
        cid = str(d.get("clOrdId") or "")
        self.inventory.apply_fill(cid, str(d.get("instId")), str(d.get("side")), acc)
        self.resolver.seen_on_ws(d)

    def _on_session_lost(self, info: dict) -> None:
        if info.get("code") == "10028":
            self.tel.session_10028.add()
            self.log("session_terminated", **info)
        else:
            self.log("session_lost", **info)
        self.session_unconfirmed = True
        self.latch.set(SESSION, f"private session: {info}")

    def _on_naked(self, detail: dict) -> None:
        self.tel.naked_events.add()
        self.emergency_since = time.monotonic()
        self.log("emergency_reduceonly_set", **detail)

    def _on_unknown(self, item: dict) -> None:
        self.resolver.add(item)

    # -- monitor: stale data, WAL saturation, emergency cooldown, reconcile scheduling --------------
    def _clear_since(self, code: str) -> float | None:
        f = self.feed
        if code == BOOK_GAP:
            return max(f.book_synced_mono.values()) if f.books_synced() else None
        if code == TRADES_GAP:
            last_trade = max(f.last_trade_mono.values())
            return f.last_trades_gap_mono if last_trade > f.last_trades_gap_mono else None
        if code == STALE:
            return self.stale_ok_since
        if code == SESSION:
            return self.private.authed_since_mono if self.private.authed else None
        if code == MISMATCH:
            return self.latch.set_mono(code)
        # RESTART (and the start-up reconciliation): market data and the private session both up
        if not (self.md_healthy() and self.private.authed and self.stale_ok_since is not None):
            return None
        return max(self.stale_ok_since, self.private.authed_since_mono, max(f.book_synced_mono.values()))

    def _reconcile_ready(self, now: float) -> bool:
        stable = self.cfg.reconcile_stable_ms / 1000.0
        needed = set(self.latch.codes)
        if not self.startup_done:
            needed.add(RESTART)
        if self.session_unconfirmed:
            needed.add(SESSION)
        if not needed:
            # Routine check while nothing is latched: drift (fills we never saw, a venue-side change)
            # becomes INVENTORY_MISMATCH instead of going unnoticed. After a REST outage (a call got
            # no answer since the last attempt) it runs as soon as the link is back: a request held by
            # the network may have landed meanwhile.
            last = self.reconciler.last_attempt_mono
            err = self.rest.last_transport_error_mono
            if err is not None and (last is None or err > last) and not self.bunker_active():
                return True
            return last is None or now - last >= RECONCILE_PERIOD_S
        for code in needed:
            since = self._clear_since(code)
            if since is None or now - since < stable:
                return False
        return True

    def _check_stall(self, now: float) -> bool:
        """Was the process itself frozen (SIGSTOP, starved CPU) for longer than the stale threshold?

        For that long nothing was seen, whatever backlog the sockets deliver now: same silence, same
        latch. Checked by every decision, so no order goes out on the first tick after a freeze.
        """
        stalled_ms = (now - self._last_monitor_mono) * 1000 if self._last_monitor_mono else 0.0
        if stalled_ms <= self.cfg.stale_threshold_ms or not self.startup_done:
            return False
        self.stale_ok_since = None
        self.latch.set(STALE, f"event loop stalled {stalled_ms:.0f} ms > {self.cfg.stale_threshold_ms}")
        return True

    def _monitor_step(self) -> None:
        now = time.monotonic()
        stalled = self._check_stall(now)
        self._last_monitor_mono = now
        lag = self.feed.lag_ms()
        if not stalled and lag is not None and lag > self.cfg.stale_threshold_ms:
            self.stale_ok_since = None
            if not self.latch.has(STALE):
                self.latch.set(STALE, f"ws_event_lag_ms={lag} > {self.cfg.stale_threshold_ms}")
        elif not stalled and lag is not None and self.stale_ok_since is None:
            self.stale_ok_since = now
        # WAL backpressure: a failed enqueue degrades until the queue has drained.
        fails = self.wal.enqueue_failures
        if fails > self._wal_failures_seen or self.wal.depth >= self.wal.capacity:
            if not self.wal_saturated:
                self.wal_saturated = True
                self.log("wal_backpressure_set", depth=self.wal.depth, failures=fails)
            self._wal_failures_seen = fails
        elif self.wal_saturated and not self.wal.stalled and self.wal.depth <= self.wal.capacity // 2:
            self.wal_saturated = False
            self.log("wal_backpressure_cleared", depth=self.wal.depth, failures=fails)
        # Partial-fill emergency: clears after the cooldown, once exposure is neutral.
        if self.emergency_since is not None:
            neutral = self.inventory.exposure() == 0 and not any(self.inventory.inflight.values())
            if neutral and (now - self.emergency_since) * 1000 >= self.cfg.emergency_cooldown_ms:
                self.log("emergency_reduceonly_cleared", exposure=self.inventory.exposure(),
                         held_ms=round((now - self.emergency_since) * 1000, 1))
                self.emergency_since = None
        if now >= self._disk_next:
            self._disk_next = now + 1.0
            self.disk = (_disk_frac(self.cfg.data_dir), now_ms(), _disk_frac(self.cfg.control_dir), now_ms())
        if (not self.reconciling and not self.stopping.is_set() and now >= self._next_reconcile
                and self._reconcile_ready(now)):
            self.reconciling = True
            asyncio.get_running_loop().create_task(self._reconcile())

    async def _reconcile(self) -> None:
        try:
            bootstrap = not self.startup_done
            out = await self.reconciler.reconcile(bootstrap=bootstrap)
            if out.ok:
                cleared = self.latch.clear_reconciled(out.started_mono, detail="reconciliation succeeded")
                if (self.session_unconfirmed and self.private.authed
                        and self.private.authed_since_mono < out.started_mono):
                    self.session_unconfirmed = False
                    self.log("session_confirmed")
                if not self.startup_done:
                    self.startup_done = True
                    self.log("startup_reconciled", positions=self.inventory.snapshot(), diffs=out.diffs)
                self._next_reconcile = time.monotonic()
                if cleared:
                    self.log("latch_cleared_by_reconcile", codes=cleared)
            else:
                if out.diffs:
                    self.latch.set(MISMATCH, "; ".join(out.diffs)[:300])
                self._next_reconcile = time.monotonic() + RECONCILE_RETRY_S
        finally:
            self.reconciling = False

    async def _monitor(self) -> None:
        while not self.stopping.is_set():
            self._monitor_step()
            await asyncio.sleep(MONITOR_PERIOD_S)

    # -- periodic I/O -----------------------------------------------------------------------------
    async def _control_poll(self) -> None:
        period = self.cfg.stop_poll_ms / 1000.0
        while not self.stopping.is_set():
            if self.ops.stop_requested():
                self.request_stop("stop_file")
                return
            try:
                self.hooks.poll()
            except Exception as exc:  # a hook problem must not stop STOP detection
                self.log("hook_error", error=repr(exc))
            await asyncio.sleep(period)

    async def _files(self) -> None:
        """Rewrite the fingerprint and manifest every FILES_PERIOD_S, and soon after a new error event."""
        while not self.stopping.is_set():
            errors = self.tel.error_count
            self.write_files()
            deadline = time.monotonic() + FILES_PERIOD_S
            while time.monotonic() < deadline and self.tel.error_count == errors and not self.stopping.is_set():
                await asyncio.sleep(FILES_ERROR_POLL_S)

    async def _policy_refresh(self) -> None:
        """Re-read the manifest periodically; a changed or unreadable manifest keeps the loaded one."""
        while not self.stopping.is_set():
            await asyncio.sleep(POLICY_REFRESH_S)
            try:
                fresh = await asyncio.to_thread(Manifest.load, self.cfg.reason_manifest)
            except Exception as exc:
                self.log("policy_refresh_failed", error=repr(exc))
                continue
            if fresh == self.manifest:
                self.policy_update_ms = now_ms()
            else:
                self.log("policy_refresh_drift", detail="manifest changed on disk; restart to adopt it")

    async def _balance(self) -> None:
        while not self.stopping.is_set():
            res = await self.rest.request("GET", "/api/v5/account/balance")
            if res.ok and res.code == "0" and res.data:
                try:
                    row = res.data[0]
                    det = (row.get("details") or [{}])[0]
                    eq = float(det.get("eq") or row.get("totalEq") or 0)
                    avail = float(det.get("availBal") or eq)
                    self.mm_util = round(min(1.0, max(0.0, (eq - avail) / eq)), 6) if eq > 0 else 0.0
                    self.mm_util_ts_ms = now_ms()
                except (TypeError, ValueError, IndexError):
                    pass
            await sleep_unless(self.stopping, BALANCE_PERIOD_S)

    def manifest_doc(self) -> dict:
        return {
            "run_id": self.run_id, "target": "okx_demo_api", "start_utc": self.start_utc, "end_utc": self.end_utc,
            "status": self.final_status, "stop_detected": self.stop_reason is not None,
            "stop_time": self.stop_time, "stop_reason": self.stop_reason,
            "stop_detected_mono": self.stop_mono, "api_calls": self.tel.api_calls,
            "orders_sent": self.tel.orders_sent, "git_commit": self.prov["git_commit"],
            "docker_image_tag": self.prov["docker_image_tag"], "build_id": self.prov["build_id"],
            "runtime_config_hash": self.config_hash, "deployment_environment": self.cfg.environment,
            "pid": os.getpid(), "previous_run_unclean": self.unclean is not None,
            "venue_rest_url": self.cfg.rest_url, "updated_utc": utc_now(),
        }

    def fingerprint_doc(self) -> dict:
        by_type: dict[str, int] = {}
        for ev in self.tel.error_events:
            by_type[ev["type"]] = by_type.get(ev["type"], 0) + 1
        return {
            "run_id": self.run_id, "api_calls": self.tel.api_calls, "orders_sent": self.tel.orders_sent,
            "error_count": self.tel.error_count, "error_events": list(self.tel.error_events),
            "error_events_by_type_recent": by_type, "latency_stats_ms": self.tel.latency_stats(),
            "http_429_count_5m": self.tel.http_429.count(), "session_10028_count_5m": self.tel.session_10028.count(),
            "dispatch": {**self.dispatcher.counts, "opens_suppressed": self.strategy.opens_suppressed},
            "private_session": {"logins": self.private.logins, "login_refusals": self.private.refusals,
                                "terminations": self.private.terminations},
            "wal": {"depth": self.wal.depth, "capacity": self.wal.capacity,
                    "enqueue_failures": self.wal.enqueue_failures, "records_written": self.wal.records_written,
                    "write_errors": self.wal.write_errors, "last_write_error": self.wal.last_write_error},
            # The latch's recent set/clear events with the host's CLOCK_MONOTONIC time: a drill compares a
            # clear with the venue's receive time of the reconciliation reads (same clock on one host).
            "latch_events": [e.as_dict() for e in self.latch.events],
            # Trades feed: processed, and repeated / out-of-order ids dropped (never processed twice).
            "trades": {"processed": self.feed.trades_processed, "duplicates_dropped": self.feed.trades_dropped,
                       "gaps": self.feed.trades_gaps},
            "updated_utc": utc_now(), "updated_mono": time.monotonic(),
        }

    def write_files(self) -> None:
        try:
            self.ops.write_fingerprint(self.fingerprint_doc())
            self.ops.write_manifest(self.manifest_doc())
        except OSError as exc:
            self.log("ops_files_write_failed", error=repr(exc))

    # -- lifecycle --------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if self.stop_reason is not None:
            return
        self.stop_mono = time.monotonic()
        self.stop_time = utc_now()
        self.stop_reason = reason
        self.dispatcher.stopping = True  # from now on nothing leaves the process
        self.log("stop_detected", reason=reason, stop_time=self.stop_time, stop_mono=self.stop_mono)
        self.stopping.set()

    async def _status_handler(self, request: web.Request) -> web.Response:
        return web.json_response(status_mod.build(self))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _start_http(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/api/v1/status", self._status_handler)
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=75.0)
        await runner.setup()
        await web.TCPSite(runner, self.cfg.host, self.cfg.port, reuse_address=True).start()
        return runner

    def _replay_wal(self) -> None:
        """Intents journalled but never resolved (a crash mid-flight) go to the resolver: asked, not re-sent."""
        pending = pending_intents(read_records(self.wal.path))
        for rec in pending:
            self.resolver.add({"clOrdId": rec["clOrdId"], "instId": rec.get("instId"), "side": rec.get("side"),
                               "sz": rec.get("sz"), "group": None, "leg": rec.get("leg"),
                               "expTime": rec.get("expTime")})
        self.log("wal_replay", pending=len(pending), clOrdIds=[r["clOrdId"] for r in pending][:50])

    async def run(self) -> int:
        """Run until STOP / SIGTERM / SIGINT; returns the process exit code."""
        loop = asyncio.get_running_loop()
        self.unclean = self.ops.begin(self.run_id)
        epoch = self.lease.take()   # fences any older instance still running on this data folder
        self.log("starting", run_id=self.run_id, config=self.cfg.public_dict(), provenance=self.prov,
                 unclean_previous=self.unclean, lease_epoch=epoch)
        if self.unclean is not None:
            self.latch.set(RESTART, f"unclean stop of previous run {self.unclean.get('run_id')}")
        runner = await self._start_http()
        self.log("http_listening", host=self.cfg.host, port=self.cfg.port)
        for sig, name in ((signal.SIGTERM, "sigterm"), (signal.SIGINT, "sigint")):
            loop.add_signal_handler(sig, self.request_stop, name)
        self._replay_wal()
        self.wal.start(loop)
        await self.rest.start()
        self.write_files()
        tasks = [loop.create_task(c, name=n) for n, c in (
            ("control", self._control_poll()), ("monitor", self._monitor()), ("files", self._files()),
            ("feed", self.feed.run(self.stopping)), ("private", self.private.run(self.stopping)),
            ("resolver", self.resolver.run(self.stopping)), ("strategy", self.strategy.run(self.stopping)),
            ("balance", self._balance()), ("policy", self._policy_refresh()))]
        crashed: BaseException | None = None
        try:
            done, _ = await asyncio.wait(tasks + [loop.create_task(self.stopping.wait())],
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t in tasks and not t.cancelled() and t.exception() is not None:
                    crashed = t.exception()
                    self.log("crashed", task=t.get_name(), error=repr(crashed))
                    self.request_stop("crash")
        finally:
            await self._shutdown(tasks, runner, crashed)
        return 1 if crashed else 0

    async def _shutdown(self, tasks: list[asyncio.Task], runner: web.AppRunner, crashed: BaseException | None) -> None:
        self.stopping.set()
        self.dispatcher.stopping = True
        await self.dispatcher.drain(1.0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        drained = await asyncio.to_thread(self.wal.close, 1.0)
        await self.rest.close()
        self.final_status = "crashed" if crashed else "interrupted"
        self.end_utc = utc_now()
        self.write_files()
        self.log("stopped", status=self.final_status, reason=self.stop_reason, wal_drained=drained,
                 stop_to_exit_ms=round((time.monotonic() - (self.stop_mono or time.monotonic())) * 1000, 1))
        if not crashed:
            self.ops.end()
        await runner.cleanup()
        self.log.close()


def _disk_frac(path: Any) -> float:
    try:
        u = shutil.disk_usage(path)
        return round(u.used / u.total, 4) if u.total else 0.0
    except OSError:
        return 0.0
