"""Drill texts and the two-line drill module shared by the end-to-end tests (each writes them into a
pytester project)."""

TEST_MODULE = "def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n"

BOOK_GAP = """
id: drill_5_ws_book_gap
title: WS book gap (plugin test)
markers: [phase2]
trigger: {kind: venue.book_gap, params: {inst_id: BTC-USDT-SWAP, skip: 3}}
time_to_safe_budget_ms: 1000
expected:
  fixture: ws_book_gap.json
  fields: [trading_mode, open_permission_blocked_latch, open_permission_reason_codes]
checks:
  - {check: latch_set_with, params: {code: WS_BOOK_GAP_RECONCILE_REQUIRED}}
  - no_open_dispatch_while_blocked
  - latch_clears_only_after_reconcile
recovery: {kind: reconcile, timeout_s: 20}
timeout_s: 60
"""
