"""The service's shared state, its policy (trading mode, risk state, mode reasons, latch) and the
``/api/v1/status`` payload built from it. Every thread changes state through ``State`` under one lock."""
from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections import deque
from typing import Any

from . import registry as reg
from .rest import Telemetry

STREAMS = ("books", "trades")


def now_ms() -> int:
    return int(time.time() * 1000)


class State:
    """Everything the policy reads. Methods are thread-safe; the lock is re-entrant."""

    def __init__(self, *, instruments: tuple[str, ...], wal_capacity: int, stale_threshold_ms: int,
                 stable_ms: int, emergency_cooldown_ms: int, environment: str, build_id: str,
                 config: dict[str, Any], data_dir: str, telemetry: Telemetry) -> None:
        self.lock = threading.RLock()
        self.instruments = instruments
        self.stale_threshold_ms = stale_threshold_ms
        self.stable_s = stable_ms / 1000
        self.emergency_cooldown_s = emergency_cooldown_ms / 1000
        self.environment = environment
        self.build_id = build_id
        self.config_hash = "sha256:" + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        self.data_dir = data_dir
        self.t = telemetry
        self.wal_capacity = wal_capacity
        self.wal_depth = lambda: 0
        self.wal_failures = lambda: 0
        self.started_mono = time.monotonic()
        self.policy_ts_ms = now_ms()
        # open-permission latch: code -> monotonic time it was set
        self.latch: dict[str, float] = {}
        # last time each latched condition was observed bad (the clear predicate needs it stable)
        self.bad_mono: dict[str, float] = {}
        self.generation = 0            # bumps on every new bad observation: reconciliation aborts on change
        self.kill: set[str] = set()
        self.ro_temporary: dict[str, float] = {}    # manifest ReduceOnly reasons raised by the cortex hook
        self.emergency = False
        self.neutral_since: float | None = None
        self.wal_failed_mono: float | None = None
        self.session_up = False
        self.session_lost = False      # the venue ended (or we lost) a session that was up
        self.terminations: deque[float] = deque()
        self.naked_events: deque[float] = deque()
        # market data: (channel, instId) -> last arrival (monotonic) and the venue ts (epoch ms) of the last event
        self.arrival: dict[tuple[str, str], float] = {}
        self.event_ts: dict[tuple[str, str], int] = {}
        self.book_ready: dict[str, bool] = {i: False for i in instruments}
        self.positions: dict[str, float] = {i: 0.0 for i in instruments}
        self.positions_known = False
        self.inflight = 0
        self.unresolved: dict[str, dict[str, Any]] = {}
        self.replay_done = False
        self.reconciling = False
        self.recon = {"count": 0, "attempts": 0, "last_success_utc": None, "last_success_mono": None}
        self.latch_events: deque[dict[str, Any]] = deque(maxlen=8)
        self.loop_tick_ms = now_ms()
        self.shutting_down = False
        self.trades_dropped = 0
        self.trades_processed = 0
        self.book_gaps = 0
        self.trades_gaps = 0
        self._disk = (0.0, 0)

    # -- latch -----------------------------------------------------------------------------------
    def set_latch(self, code: str, why: str = "") -> None:
        with self.lock:
            now = time.monotonic()
            self.bad_mono[code] = now
            self.generation += 1
            if code not in self.latch:
                self.latch[code] = now
                self.latch_events.append({"event": "set", "code": code, "mono": now, "why": why})

    def mark_bad(self, code: str) -> None:
        """The condition behind ``code`` is (still) bad: it must stay good for ``stable_ms`` again."""
        with self.lock:
            self.bad_mono[code] = time.monotonic()
            self.generation += 1

    def clear_latch(self, codes: list[str]) -> None:
        with self.lock:
            for c in codes:
                if self.latch.pop(c, None) is not None:
                    self.latch_events.append({"event": "clear", "code": c, "mono": time.monotonic()})

    def condition_clear(self, code: str) -> bool:
        """Whether the condition behind a latch code is over and has stayed over for ``stable_ms``."""
        with self.lock:
            now = time.monotonic()
            if now - self.bad_mono.get(code, 0) < self.stable_s:
                return False
            if code == "WS_BOOK_GAP_RECONCILE_REQUIRED":
                return all(self.book_ready.values())
            if code == "WS_DATA_STALE_RECONCILE_REQUIRED":
                return self.lag_ms() < self.stale_threshold_ms
            if code == "SESSION_TERMINATION_RECONCILE_REQUIRED":
                return self.session_up
            return True

    # -- market data ---------------------------------------------------------------------------
    def market_event(self, channel: str, inst: str, ts_ms: int | None) -> None:
        with self.lock:
            self.arrival[(channel, inst)] = time.monotonic()
            if ts_ms is not None:
                self.event_ts[(channel, inst)] = ts_ms

    def has_market_data(self) -> bool:
        return len(self.arrival) == len(STREAMS) * len(self.instruments)

    def lag_ms(self) -> int:
        """For the stalest stream, the worse of: time since any event arrived (a silent feed) and
        now minus the venue ts of its newest event (a delayed feed)."""
        with self.lock:
            if not self.has_market_data():
                return 0
            mono, wall = time.monotonic(), now_ms()
            worst = 0.0
            for key, arrived in self.arrival.items():
                silent = (mono - arrived) * 1000
                delayed = wall - self.event_ts.get(key, wall)
                worst = max(worst, silent, delayed)
            return max(0, int(worst))

    def check_stale(self) -> None:
        if self.has_market_data() and self.lag_ms() > self.stale_threshold_ms:
            self.set_latch("WS_DATA_STALE_RECONCILE_REQUIRED", f"ws_event_lag_ms>{self.stale_threshold_ms}")

    # -- other conditions ------------------------------------------------------------------------
    def bunker(self) -> bool:
        """REST gave no answer recently, or has not answered for 2 s since it last gave none."""
        with self.t.lock:
            lost, ok = self.t.last_no_answer_mono, self.t.last_answer_mono
        if lost is None:
            return False
        now = time.monotonic()
        return now - lost < 2.0 or ok is None or ok < lost

    def wal_degraded(self) -> bool:
        with self.lock:
            if self.wal_failed_mono is None:
                return False
            if self.wal_depth() <= self.wal_capacity // 2 and time.monotonic() - self.wal_failed_mono > 0.5:
                self.wal_failed_mono = None
                return False
            return True

    def exposure(self) -> float:
        with self.lock:
            return sum(abs(p) for p in self.positions.values())

    def count_10028_5m(self) -> int:
        with self.lock:
            cutoff = time.monotonic() - 300
            while self.terminations and self.terminations[0] < cutoff:
                self.terminations.popleft()
            return len(self.terminations)

    def emit_token(self, token: str) -> str:
        """The cortex hook: a registered token raises its reason; anything else fails closed to Kill."""
        with self.lock:
            tier = reg.tier_of(token)
            if tier == "Kill":
                self.kill.add(token)
            elif tier == "ReduceOnly":
                self.ro_temporary[token] = time.monotonic() + 3.0
            else:
                self.kill.add("KILL_CORTEX_FORCE_KILL")
            return tier or "unknown"

    # -- policy --------------------------------------------------------------------------------
    def resolve(self) -> tuple[str, str, list[str]]:
        """(trading_mode, risk_state, mode_reasons): Kill beats ReduceOnly beats Active; tier-pure."""
        with self.lock:
            self.check_stale()
            if self.kill:
                return "Kill", "Healthy", reg.ordered(self.kill, reg.KILL_CODES)
            degraded = self.emergency or self.wal_degraded() or self.session_lost
            reasons: set[str] = set()
            if self.emergency:
                reasons.add("REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE")
            if self.latch:
                reasons.add("REDUCEONLY_OPEN_PERMISSION_LATCHED")
            if self.bunker():
                reasons.add("REDUCEONLY_BUNKER_MODE_ACTIVE")
            if self.environment == "LIVE":
                reasons.add("REDUCEONLY_F1_CERT_INVALID")   # no certificate: fail closed
            now = time.monotonic()
            for code, until in list(self.ro_temporary.items()):
                if until > now:
                    reasons.add(code)
                else:
                    del self.ro_temporary[code]
            if degraded:
                reasons.add("REDUCEONLY_RISKSTATE_DEGRADED")
            if not self.has_market_data() or not self.positions_known:
                reasons.add("REDUCEONLY_INPUT_MISSING_OR_STALE")
            if not self.session_up:
                reasons.add("REDUCEONLY_SESSION_KILL_UNCONFIRMED")
            if reasons:
                return "ReduceOnly", "Degraded" if degraded else "Healthy", reg.ordered(reasons, reg.REDUCE_ONLY_CODES)
            return "Active", "Healthy", []

    def open_allowed(self) -> bool:
        return self.resolve()[0] == "Active"

    # -- status --------------------------------------------------------------------------------
    def _disk_used(self) -> tuple[float, int]:
        used, ts = self._disk
        if now_ms() - ts > 1000:
            try:
                du = shutil.disk_usage(self.data_dir)
                used = round(du.used / du.total, 4) if du.total else 0.0
            except OSError:
                used = 0.0
            self._disk = (used, now_ms())
        return self._disk

    def status(self) -> dict[str, Any]:
        with self.lock:
            mode, risk, reasons = self.resolve()
            codes = reg.ordered(set(self.latch), reg.LATCH_CODES)
            latched = bool(codes)
            disk, disk_ts = self._disk_used()
            now = now_ms()
            cutoff = time.monotonic() - 86400
            while self.naked_events and self.naked_events[0] < cutoff:
                self.naked_events.popleft()
            connectivity = bool(self.bunker() or not self.session_up or
                                {"WS_BOOK_GAP_RECONCILE_REQUIRED", "WS_TRADES_GAP_RECONCILE_REQUIRED",
                                 "WS_DATA_STALE_RECONCILE_REQUIRED", "SESSION_TERMINATION_RECONCILE_REQUIRED"} & set(codes)
                                or self.lag_ms() > self.stale_threshold_ms)
            payload: dict[str, Any] = {
                "status_schema_version": 1,
                "contract_version": reg.CONTRACT_VERSION,
                "build_id": self.build_id,
                "runtime_config_hash": self.config_hash,
                "supported_profiles": ["CSP"],
                "enforced_profile": "CSP",
                "trading_mode": mode,
                "risk_state": risk,
                "bunker_mode_active": self.bunker(),
                "connectivity_degraded": connectivity,
                "mode_reasons": reasons,
                "open_permission_blocked_latch": latched,
                "open_permission_reason_codes": codes,
                "open_permission_requires_reconcile": latched,
                "policy_age_sec": max(0, (now - self.policy_ts_ms) // 1000),
                "last_policy_update_ts": self.policy_ts_ms,
                "f1_cert_state": "MISSING",
                "f1_cert_expires_at": None,
                "disk_used_pct": disk,
                "disk_used_last_update_ts_ms": disk_ts,
                "disk_used_pct_secondary": disk,
                "disk_used_secondary_last_update_ts_ms": disk_ts,
                "mm_util": 0.0,
                "mm_util_last_update_ts_ms": now,
                "loop_tick_last_ts_ms": self.loop_tick_ms,
                "wal_queue_depth": self.wal_depth(),
                "wal_queue_capacity": self.wal_capacity,
                "wal_queue_enqueue_failures": self.wal_failures(),
                "atomic_naked_events_24h": len(self.naked_events),
                "429_count_5m": self.t.count_429_5m(),
                "10028_count_5m": self.count_10028_5m(),
                "deribit_http_p95_ms": self.t.p95(),
                "ws_event_lag_ms": self.lag_ms(),
                "owner_view": owner_view(mode, reasons, codes, self.environment),
                # extension keys
                "deployment_environment": self.environment,
                "positions": dict(self.positions),
                "exposure": self.exposure(),
                "reconcile": dict(self.recon, running=self.reconciling),
                "latch_events": list(self.latch_events),
                "market_data": {"book_gaps": self.book_gaps, "trades_gaps": self.trades_gaps,
                                "trades_dropped": self.trades_dropped},
                "shutting_down": self.shutting_down,
            }
            return payload


def owner_view(mode: str, reasons: list[str], codes: list[str], environment: str) -> dict[str, Any]:
    """Decision D: a summary of the contract fields that never contradicts them."""
    if mode == "Active" and not codes:
        primary = "STATE_PAPER_MODE" if environment == "PAPER" else "STATE_IDLE_HEALTHY"
        return {"primary_owner_reason_code": primary, "owner_message": "Trading normally; nothing is blocked.",
                "unblock": []}
    steps = []
    for code in reasons + codes:
        type_, cond = reg.UNBLOCK[code]
        steps.append({"type": type_, "condition": cond, "current": f"{code}=active", "target": f"{code}=clear"})
    primary = reasons[0] if reasons else codes[0]
    msg = f"Trading is {mode}: " + ", ".join(reasons + codes) + "."
    return {"primary_owner_reason_code": primary, "owner_message": msg, "unblock": steps}
