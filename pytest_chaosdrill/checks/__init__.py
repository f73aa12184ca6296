"""Named pass criteria: pure functions of a :class:`~pytest_chaosdrill.record.DrillRecord` and the
drill's parameters, returning a :class:`CheckResult` (``passed=None``: the facts needed were not
there, NOT PROVEN). A check never changes the record and never reads anything the record does not
hold, so ``chaosdrill recheck`` can re-derive it from the evidence folder.

New checks come from plugins through the ``pytest_chaosdrill_add_checks`` hook.

One module per family: :mod:`.base` (the result type), :mod:`.ledger` (what reached the venue),
:mod:`.status` (what the service said), :mod:`.kill`, :mod:`.files` (what the service wrote),
:mod:`.invariants` (fault schedules), :mod:`.explore`. The table of built-in checks is the registry's.
"""
from __future__ import annotations

from .base import Check, CheckResult, fault_origin, fmt_orders, needs, parse_utc
from .ledger import (
    containment_proceeds, exposure_at, exposure_monotonic_to_neutral, exposure_series, is_open, is_reduce,
    ledger_orders, no_duplicate_dispatch, no_open_dispatch_while_blocked, no_order_accepted_after_not_found,
    recon_reads, reduce_only_permitted, resynced_during_skew, single_instance_trading,
    no_dispatch_while_failed,
)
from .status import (
    counter_increased, latch_clears_only_after_reconcile, latch_set_with, loop_keeps_ticking, mode_held,
    restart_latch_on_startup, ws_event_lag_reflects,
)
from .kill import capital_supremacy, registry_drift_blocked, stays_kill
from .files import (
    FAULT_ERROR_CLASSES, fault_error_classes, fingerprint_error_gate, graceful_exit,
    no_duplicate_trade_processing, run_manifest_fields, stop_detected, sustained_call_pressure,
)
from .invariants import INVARIANTS, global_invariants, violation_names
from .explore import explore_found_no_violation

__all__ = [
    "Check", "CheckResult", "FAULT_ERROR_CLASSES", "INVARIANTS", "capital_supremacy", "containment_proceeds",
    "counter_increased", "explore_found_no_violation", "exposure_at", "exposure_monotonic_to_neutral",
    "exposure_series", "fault_error_classes", "fault_origin", "fingerprint_error_gate", "fmt_orders",
    "global_invariants", "graceful_exit", "is_open", "is_reduce", "latch_clears_only_after_reconcile",
    "latch_set_with", "ledger_orders", "loop_keeps_ticking", "mode_held", "needs", "no_duplicate_dispatch",
    "no_duplicate_trade_processing", "no_open_dispatch_while_blocked", "no_order_accepted_after_not_found",
    "parse_utc", "recon_reads", "reduce_only_permitted", "registry_drift_blocked", "resynced_during_skew", "restart_latch_on_startup",
    "run_manifest_fields", "stays_kill", "stop_detected", "sustained_call_pressure", "violation_names",
    "ws_event_lag_reflects",
]
