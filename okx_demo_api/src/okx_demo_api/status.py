"""The /api/v1/status payload (contract CSP v5.2) and its derived owner_view.

Everything here is read from live state; nothing is stored for the report's sake. ``owner_view`` is
derived from the contract fields (primary = first mode reason, per the manifest's precedence) and the
manifest's display and unblock texts, so it cannot contradict them.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .clock import now_ms
from .policy import ACTIVE, Decision, Manifest

if TYPE_CHECKING:  # pragma: no cover
    from .app import App

_IDLE_STATE = {"PAPER": "STATE_PAPER_MODE", "LIVE": "STATE_MICRO_LIVE"}


def _current_target(app: "App", code: str) -> tuple[str, str]:
    """(current, target) strings for one unblock step."""
    thr = app.cfg.stale_threshold_ms
    stable = app.cfg.reconcile_stable_ms
    if code == "REDUCEONLY_OPEN_PERMISSION_LATCHED":
        return "latch=" + ",".join(app.latch.codes), "latch=clear (reconciliation success)"
    if code == "RESTART_RECONCILE_REQUIRED":
        return f"reconciliation={'running' if app.reconciling else 'pending'}", "reconciliation=success"
    if code == "WS_BOOK_GAP_RECONCILE_REQUIRED":
        return (f"book_synced={str(app.feed.books_synced()).lower()}, book_gaps={app.feed.book_gaps}",
                f"book snapshot refreshed, no gap for >= {stable}ms, reconciliation=success")
    if code == "WS_TRADES_GAP_RECONCILE_REQUIRED":
        return (f"trades_gaps={app.feed.trades_gaps}",
                f"trades continuous for >= {stable}ms, reconciliation=success")
    if code == "WS_DATA_STALE_RECONCILE_REQUIRED":
        return f"ws_event_lag_ms={app.ws_lag_ms()}", f"ws_event_lag_ms<={thr} for >= {stable}ms, reconciliation=success"
    if code == "INVENTORY_MISMATCH_RECONCILE_REQUIRED":
        return "positions=mismatch", "positions match venue (reconciliation=success)"
    if code in ("SESSION_TERMINATION_RECONCILE_REQUIRED", "REDUCEONLY_SESSION_KILL_UNCONFIRMED"):
        return (f"session={'authenticated' if app.private.authed else 'terminated'}",
                "session=authenticated + reconciliation=success")
    if code == "REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE":
        return (f"exposure={app.inventory.exposure():g}, cooldown_remaining_ms={app.emergency_remaining_ms()}",
                "exposure=0 and cooldown elapsed")
    if code == "REDUCEONLY_RISKSTATE_DEGRADED":
        return f"risk_state=Degraded ({','.join(app.degraded_causes()) or 'none'})", "risk_state=Healthy"
    if code == "REDUCEONLY_INPUT_MISSING_OR_STALE":
        return (f"market_data={'fresh' if app.md_healthy() else 'missing'}, "
                f"private_session={'authenticated' if app.private.authed else 'down'}, startup_reconcile=pending",
                "inputs fresh + startup reconciliation=success")
    if code == "REDUCEONLY_BUNKER_MODE_ACTIVE":
        last = app.rest.last_transport_error_mono
        age = int((time.monotonic() - last) * 1000) if last is not None else -1
        return (f"last_rest_transport_error_age_ms={age}",
                f"no REST transport error for >= {int(app.bunker_stable_s * 1000)}ms")
    if code == "REDUCEONLY_F1_CERT_INVALID":
        return "f1_cert_state=MISSING", "f1_cert_state=PASS (certified build deployed)"
    if code == "KILL_CORTEX_FORCE_KILL":
        toks = ",".join(app.guard.unknown_tokens[-3:]) or "cortex"
        return f"unknown_token_detected={toks}", "fix deployed + restart (new build)"
    return "active", "cleared"


def owner_view(app: "App", d: Decision, latch_codes: list[str], manifest: Manifest) -> dict:
    """Owner dashboard view: exactly primary_owner_reason_code, owner_message, unblock[]."""
    if d.trading_mode == ACTIVE:
        state = _IDLE_STATE.get(app.cfg.environment, "STATE_IDLE_HEALTHY")
        return {"primary_owner_reason_code": state, "owner_message": manifest.display(state), "unblock": []}
    primary = d.mode_reasons[0]
    steps = []
    for code in list(d.mode_reasons) + latch_codes:
        ub = manifest.unblock(code)
        current, target = _current_target(app, code)
        steps.append({"type": ub.get("type", "AUTO") if ub.get("type") in ("AUTO", "MANUAL") else "AUTO",
                      "condition": f"{code}: {ub.get('condition', 'condition clears')}",
                      "current": current, "target": target})
    msg = f"{d.trading_mode}: {manifest.display(primary)}"
    if latch_codes:
        msg += " OPEN blocked until reconciliation: " + ", ".join(manifest.display(c) for c in latch_codes)
    return {"primary_owner_reason_code": primary, "owner_message": msg, "unblock": steps}


def build(app: "App") -> dict:
    """The full contract payload plus extension keys (the min schema allows extensions)."""
    d = app.decide()
    codes = app.latch.codes
    latched = bool(codes)
    tel = app.tel
    now = now_ms()
    return {
        "status_schema_version": 1,
        "contract_version": app.manifest.contract_version,
        "build_id": app.prov["build_id"],
        "runtime_config_hash": app.config_hash,
        "supported_profiles": ["CSP"],
        "enforced_profile": "CSP",
        "trading_mode": d.trading_mode,
        "risk_state": d.risk_state,
        "bunker_mode_active": app.bunker_active(),
        "connectivity_degraded": app.connectivity_degraded(),
        "mode_reasons": list(d.mode_reasons),
        "open_permission_blocked_latch": latched,
        "open_permission_reason_codes": codes,
        "open_permission_requires_reconcile": latched,
        "policy_age_sec": max(0, int((now - app.policy_update_ms) / 1000)),
        "last_policy_update_ts": app.policy_update_ms,
        # No F1 certificate exists for this demo service: reported as such, never invented.
        "f1_cert_state": "MISSING",
        "f1_cert_expires_at": None,
        "disk_used_pct": app.disk[0],
        "disk_used_last_update_ts_ms": app.disk[1],
        "disk_used_pct_secondary": app.disk[2],
        "disk_used_secondary_last_update_ts_ms": app.disk[3],
        "mm_util": app.mm_util,
        "mm_util_last_update_ts_ms": app.mm_util_ts_ms,
        "loop_tick_last_ts_ms": app.strategy.loop_tick_ms,
        "wal_queue_depth": app.wal.depth,
        "wal_queue_capacity": app.wal.capacity,
        "wal_queue_enqueue_failures": app.wal.enqueue_failures,
        "atomic_naked_events_24h": tel.naked_events.count(),
        "429_count_5m": tel.http_429.count(),
        "10028_count_5m": tel.session_10028.count(),
        "deribit_http_p95_ms": tel.p95_ms(),
        "ws_event_lag_ms": app.ws_lag_ms(),
        "owner_view": owner_view(app, d, codes, app.manifest),
        # extensions
        "deployment_environment": app.cfg.environment,
        "exposure": app.inventory.exposure(),
        "positions": app.inventory.snapshot(),
        "reconcile": {"last_success_utc": app.reconciler.last_success_utc,
                      "last_success_mono": app.reconciler.last_success_mono,
                      "count": app.reconciler.count, "attempts": app.reconciler.attempts,
                      "running": app.reconciling},
        "latch_events": [e.as_dict() for e in list(app.latch.events)[-8:]],
        "market_data": {"trades_processed": app.feed.trades_processed, "trades_dropped": app.feed.trades_dropped,
                        "book_gaps": app.feed.book_gaps, "trades_gaps": app.feed.trades_gaps},
        "run_id": app.run_id,
        "status_ts_ms": now,
        "shutting_down": app.stopping.is_set(),
    }
