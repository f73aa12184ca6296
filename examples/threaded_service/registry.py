"""The reason-code registries this service emits, in the contract's precedence order.

A service normally generates this from the contract's registry manifest; it is written out here so
the service has no dependency on the drill tooling. tests/examples/test_threaded_service.py checks it against
the bundled manifest, so drift fails CI.
"""
from __future__ import annotations

CONTRACT_VERSION = "5.2"

# (code, unblock type, unblock condition), precedence order per tier.
KILL: tuple[tuple[str, str, str], ...] = (
    ("KILL_WATCHDOG_HEARTBEAT_STALE", "MANUAL", "Incident record + system restart + heartbeat confirmed"),
    ("KILL_RISKSTATE_KILL", "MANUAL", "Incident record + explicit operator reset"),
    ("KILL_MARGIN_MM_UTIL_CRITICAL", "AUTO", "mm_util < 0.90 for >= 300s"),
    ("KILL_RATE_LIMIT_SESSION_TERMINATION", "MANUAL", "Re-auth + full reconciliation + incident record"),
    ("KILL_DISK_WATERMARK_KILL", "MANUAL", "Disk cleanup + verification + restart"),
    ("KILL_CORTEX_FORCE_KILL", "MANUAL", "Fix deployed + incident record + explicit approval"),
)
REDUCE_ONLY: tuple[tuple[str, str, str], ...] = (
    ("REDUCEONLY_RISKSTATE_MAINTENANCE", "AUTO", "Exchange maintenance ends + connectivity confirmed"),
    ("REDUCEONLY_EMERGENCY_REDUCEONLY_ACTIVE", "AUTO", "Cooldown expires (configurable, default 300s)"),
    ("REDUCEONLY_OPEN_PERMISSION_LATCHED", "AUTO", "Reconciliation succeeds + latch clears"),
    ("REDUCEONLY_BUNKER_MODE_ACTIVE", "AUTO", "Connectivity stable for >= 60s"),
    ("REDUCEONLY_F1_CERT_INVALID", "MANUAL", "Re-certify + deploy certified build"),
    ("REDUCEONLY_EVIDENCE_CHAIN_NOT_GREEN", "AUTO", "Evidence chain returns to GREEN"),
    ("REDUCEONLY_CORTEX_FORCE_REDUCE_ONLY", "AUTO", "Cortex stress signal clears"),
    ("REDUCEONLY_FEE_MODEL_HARD_STALE", "AUTO", "Fee model refreshed within staleness threshold"),
    ("REDUCEONLY_RISKSTATE_DEGRADED", "AUTO", "RiskState returns to Healthy"),
    ("REDUCEONLY_POLICY_STALE", "AUTO", "Policy refreshed within staleness threshold"),
    ("REDUCEONLY_MARGIN_MM_UTIL_HIGH", "AUTO", "mm_util < 0.80 for >= 60s"),
    ("REDUCEONLY_INPUT_MISSING_OR_STALE", "AUTO", "All required inputs fresh"),
    ("REDUCEONLY_WATCHDOG_UNCONFIRMED", "AUTO", "All watchdog signals confirmed"),
    ("REDUCEONLY_DISK_KILL_UNCONFIRMED", "AUTO", "Disk predicate confirmed safe"),
    ("REDUCEONLY_SESSION_KILL_UNCONFIRMED", "AUTO", "Session predicate confirmed safe"),
)
LATCH: tuple[tuple[str, str, str], ...] = (
    ("RESTART_RECONCILE_REQUIRED", "AUTO", "Reconciliation completes successfully"),
    ("WS_BOOK_GAP_RECONCILE_REQUIRED", "AUTO", "Book snapshot refreshed + no gaps for >= 10s"),
    ("WS_TRADES_GAP_RECONCILE_REQUIRED", "AUTO", "Trades stream continuous + reconciled"),
    ("WS_DATA_STALE_RECONCILE_REQUIRED", "AUTO", "ws_event_lag_ms <= 500 for >= 60s + reconciliation"),
    ("INVENTORY_MISMATCH_RECONCILE_REQUIRED", "AUTO", "Local inventory matches venue truth"),
    ("SESSION_TERMINATION_RECONCILE_REQUIRED", "MANUAL", "Re-authenticate + full reconciliation"),
)

KILL_CODES = tuple(c for c, _, _ in KILL)
REDUCE_ONLY_CODES = tuple(c for c, _, _ in REDUCE_ONLY)
LATCH_CODES = tuple(c for c, _, _ in LATCH)
UNBLOCK = {c: (t, cond) for c, t, cond in KILL + REDUCE_ONLY + LATCH}
_RANK = {c: i for tier in (KILL_CODES, REDUCE_ONLY_CODES, LATCH_CODES) for i, c in enumerate(tier)}


def ordered(codes: "set[str] | list[str]", tier: tuple[str, ...]) -> list[str]:
    """The codes of ``tier`` present in ``codes``, in the tier's precedence order, each once."""
    present = set(codes)
    return [c for c in tier if c in present]


def tier_of(token: str) -> str | None:
    """``"Kill"``, ``"ReduceOnly"`` or None for a token no mode-reason registry knows."""
    if token in KILL_CODES:
        return "Kill"
    if token in REDUCE_ONLY_CODES:
        return "ReduceOnly"
    return None
