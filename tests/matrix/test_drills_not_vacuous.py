"""Drills are not vacuous: each buggy variant of the reference target (tests/variants/, one bug each) makes
the matching drill FAIL for the right reason, while the same drills PASS against the unmodified target
started through the same launcher.

Every run is a separate pytest process (pytester) holding only the drill involved, so a variant costs one
drill. The verdict and reason are read from the evidence (meta.json), and the reason must name the check
or contract tag that catches the bug: a FAIL for any other reason does not count.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_chaosdrill.record import read_timeline
from tests.variants.targets import write_variant_target

# the one-bug variant matrix: `pytest -m matrix` (left out of the default run; .ci/run runs it)
pytestmark = pytest.mark.matrix

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "drills"
PY_ERROR = re.compile(r"(TypeError|AttributeError|KeyError|NameError|IndexError|ValueError|AssertionError)\b")
TEST_MODULE = "def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n"


@dataclass(frozen=True)
class Case:
    bug: str
    drill: str
    group: str  # evidence group: phase2 | ops
    reason: tuple[str, ...]  # fragments the FAIL reason must contain (the check and its finding)
    tag: str | None = None  # contract tag that must be among the sample findings' tags, e.g. ORDER
    one_of: tuple[str, ...] = ()  # the reason must also contain one of these (a check with two findings)


CASES = [
    Case("latch_never_set_on_gap", "drill_5_ws_book_gap", "phase2",
         ("latch_set_with: no status sample after the trigger has the latch set with WS_BOOK_GAP_RECONCILE_REQUIRED",)),
    Case("latch_cleared_on_timer", "drill_2_market_data_stale", "phase2",
         ("latch_clears_only_after_reconcile: latch cleared at sample", "while the fault was still active")),
    Case("active_while_latched", "drill_5_ws_book_gap", "phase2",
         ("status samples violate the contract",), tag="DECISION-A"),
    # drill 2, not 5: its blocked window (~2 s of stale feed) spans ~15 strategy ticks, so OPENs are
    # certain to be attempted in it; drill 5's window (~0.5 s) is only a few ticks.
    Case("open_while_latched", "drill_2_market_data_stale", "phase2",
         ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
    Case("mode_reasons_out_of_order", "drill_7_session_termination", "phase2",
         ("status samples violate the contract",), tag="ORDER"),
    Case("stop_recorded_as_completed", "ops_c2_1_stop", "ops",
         ("run_manifest_fields: status='completed' (expected 'interrupted')",)),
    Case("connection_errors_not_counted", "ops_c2_3_degradation", "ops",
         ("fingerprint_error_gate: the fault produces connection_error, but no connection_error event appeared",
          "error_count=0, error_events=0")),
    Case("duplicate_dispatch_after_restart", "drill_4_crash_restart", "phase2",
         ("no_duplicate_dispatch:", "client order id(s) reached the venue twice")),
    Case("not_found_taken_as_absent", "ops_c2_4_partition_inflight", "ops",
         ("no_order_accepted_after_not_found:", "accepted after the venue answered 'not found' for their clOrdId")),
    # the reference target declares the occasion hook reduce_exposure: asked to reduce while its WAL is
    # stalled, the variant acknowledges ("applied") and its reduce-only orders wait for the WAL
    Case("reduce_only_blocked_by_wal", "drill_3_wal_backpressure", "phase2",
         ("reduce_only_permitted: exposure", "and no reduce-only order reached the venue",
          "answered the drill's reduce_exposure hook 'applied'")),
    Case("trades_processed_twice", "drill_6_ws_trades_gap", "phase2",
         ("no_duplicate_trade_processing: the venue repeated tradeId", "repeated trade(s) not dropped, so processed twice")),
    Case("timeouts_not_counted", "ops_c2_5_timeouts", "ops",
         ("fingerprint_error_gate: the fault produces timeout, but no timeout event appeared",)),
    Case("skew_refusals_not_counted", "ops_c2_6_clock_skew", "ops",
         ("fingerprint_error_gate: the fault produces http_error, but no http_error event appeared",)),
    Case("no_clock_resync", "ops_c2_6_clock_skew", "ops",
         ("resynced_during_skew:", "refused with 50102 and none accepted", "never re-synced its clock")),
    # drill 2: its condition ends at the release and no reconciliation starts while the feed is stale,
    # so every read after the release belongs to a reconciliation that began after the fault.
    Case("latch_cleared_before_reads", "drill_2_market_data_stale", "phase2", ("latch_clears_only_after_reconcile:",),
         one_of=("before the venue received the", "read between the end of the fault and the clear",
                 "before the venue answered the")),
    Case("exposure_grows_in_containment", "drill_1_partial_fill", "phase2",
         ("exposure_monotonic_to_neutral: exposure grew from", "during containment",
          "no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
    Case("partial_fill_goes_kill", "drill_1_partial_fill", "phase2", ("mode_held:", "samples not ReduceOnly")),
    Case("no_containment", "drill_1_partial_fill", "phase2",
         ("containment_proceeds: exposure", "but no reduce-only order reached the venue before the blocked window ended")),
    Case("kill_blocks_risk_reduction", "drill_8_unknown_token", "phase2",
         ("capital_supremacy: exposure", "but no risk-reducing order reached the venue")),
    Case("opens_in_kill", "drill_8_unknown_token", "phase2",
         ("capital_supremacy:", "exposure-adding order(s) in Kill", "no_open_dispatch_while_blocked:")),
    Case("kill_resumes_on_its_own", "drill_8_unknown_token", "phase2", ("stays_kill: left Kill without a restart",)),
    Case("ws_lag_capped", "drill_2_market_data_stale", "phase2", ("ws_event_lag_reflects:", "feed silent for")),
    Case("enqueue_failures_not_counted", "drill_3_wal_backpressure", "phase2",
         ("counter_increased: wal_queue_enqueue_failures: 0 before the fault, peak 0 after",)),
    Case("loop_stalls_on_wal", "drill_3_wal_backpressure", "phase2", ("loop_keeps_ticking:",),
         one_of=("loop_tick_last_ts_ms took only", "largest gap")),
    Case("no_restart_latch", "drill_4_crash_restart", "phase2",
         ("restart_latch_on_startup: first status after restart", "latch=False")),
    Case("session_10028_not_counted", "drill_7_session_termination", "phase2",
         ("counter_increased: 10028_count_5m:", "peak 0 after")),
    Case("stop_detected_late", "ops_c2_1_stop", "ops", ("stop_detected: STOP file created", "limit 250 ms")),
    Case("stop_exits_nonzero", "ops_c2_1_stop", "ops", ("graceful_exit: target exit status 1 (expected 0)",)),
    Case("latch_never_set", "drill_7_session_termination", "phase2",
         ("latch_set_with: no status sample after the trigger has the latch set with SESSION_TERMINATION_RECONCILE_REQUIRED",)),
    *[Case("opens_ignore_guard", d, g, ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked"))
      for d, g in (("drill_4_crash_restart", "phase2"), ("drill_7_session_termination", "phase2"), ("ops_c2_5_timeouts", "ops"))],
    *[Case("latch_cleared_before_reads", d, "phase2", ("latch_clears_only_after_reconcile:",),
           one_of=("before the venue received the", "read between the end of the fault and the clear",
                   "before the venue answered the"))
      for d in ("drill_4_crash_restart", "drill_5_ws_book_gap", "drill_6_ws_trades_gap", "drill_7_session_termination")],
    # --- wip/varlatch ---
    # Drills 2 and 6: the condition is detected and degrades to ReduceOnly (so the safe state is observed
    # at once, no wait for the observation deadline), but the latch is never set.
    Case("stale_feed_not_latched", "drill_2_market_data_stale", "phase2",
         ("latch_set_with: no status sample after the trigger has the latch set with WS_DATA_STALE_RECONCILE_REQUIRED",)),
    Case("trades_gap_not_latched", "drill_6_ws_trades_gap", "phase2",
         ("latch_set_with: no status sample after the trigger has the latch set with WS_TRADES_GAP_RECONCILE_REQUIRED",)),
    Case("opens_unjournalled_under_wal_backpressure", "drill_3_wal_backpressure", "phase2",
         ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
    # --- wip/varopen ---
    # Drills 5 and 6 block OPEN for only ~0.5 s (gap -> reconciliation), but the strategy opens on two
    # ticks in three at 8 ticks/s, so an order path deciding without the latch sends 2 OPENs in it.
    *[Case("open_while_latched", d, "phase2", ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked"))
      for d in ("drill_5_ws_book_gap", "drill_6_ws_trades_gap")],
    # C2.3/C2.4 block OPEN by connectivity degradation, not by the latch (open_while_latched PASSES them).
    *[Case("opens_ignore_guard", d, "ops", ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked"))
      for d in ("ops_c2_3_degradation", "ops_c2_4_partition_inflight", "ops_c2_6_clock_skew")],
    # The OPENs held by the cut time out; re-sent with the same clOrdId once the link is back, they land
    # while OPEN is blocked. The held originals arrive past their expTime and are refused (50036), so
    # each clOrdId is placed once: no duplicate (see docs/criteria.md, C2.4's duplicate-dispatch row).
    Case("retry_orders_on_transport_error", "ops_c2_4_partition_inflight", "ops",
         ("no_open_dispatch_while_blocked:", "OPEN order(s) reached the venue while OPEN was blocked")),
    # --- wip/vardup ---
    Case("resend_after_not_found", "ops_c2_4_partition_inflight", "ops",
         ("no_duplicate_dispatch:", "client order id(s) reached the venue twice")),
]


@dataclass(frozen=True)
class Correct:
    """A correct variant (different from the reference, not buggy): its drill must PASS, and the evidence must
    show the variant's behaviour really happened (else the PASS proves nothing)."""
    variant: str
    drill: str
    group: str
    shows: str  # what the evidence must show: "flatten_at_once" | "extra_reason"


CORRECT_CASES = [
    Correct("flatten_at_once", "drill_1_partial_fill", "phase2", "flatten_at_once"),
    Correct("flatten_at_once", "drill_8_unknown_token", "phase2", "flatten_at_once"),
    Correct("extra_truthful_reason", "drill_2_market_data_stale", "phase2", "extra_reason"),
    # the latch order is proven by the venue's held reconciliation answers, not by the service's extras
    *[Correct("fast_reconciler_without_latch_events", d, "phase2", "no_latch_events")
      for d in ("drill_5_ws_book_gap", "drill_7_session_termination")],
    # the partition lands on the OPEN order's meaning, not on one JSON spelling of it
    Correct("other_json_formatting", "ops_c2_4_partition_inflight", "ops", "partition_landed"),
]


def write_target(pytester: pytest.Pytester, bug: str) -> Path:
    """The variant's target file (the reference target's, started through the launcher)."""
    return write_variant_target(bug, pytester.path / f"target_{bug}.yaml")


def run_drills(pytester: pytest.Pytester, bug: str, drills: list[str], *, target: Path | None = None,
               backend: str | None = None) -> pytest.RunResult:
    """Run ``drills`` (copied from drills/) against the variant ``bug`` in a separate pytest process
    (``target``: a target file to use instead of the variant's; ``backend``: other than the default)."""
    d = pytester.path / "mydrills"
    d.mkdir()
    for drill in drills:
        shutil.copy(DRILLS / f"{drill}.yaml", d)
    pytester.makepyfile(test_drills=TEST_MODULE)
    target = target or write_target(pytester, bug)
    extra = [f"--chaosdrill-backend={backend}"] if backend else []
    # "--opt=value" forms: a bare path argument would take part in pytest's rootdir choice.
    return pytester.runpytest_subprocess(f"--chaosdrill-drills={d}", f"--chaosdrill-target={target}",
                                         f"--chaosdrill-evidence-dir={pytester.path / 'evidence'}",
                                         *extra, "-p", "no:cacheprovider", timeout=170)


def assert_launched(pytester: pytest.Pytester, bug: str) -> None:
    """The target really ran through the launcher with ``bug`` (its banner is in the captured target log)."""
    logs = "".join(p.read_text(errors="replace") for p in (pytester.path / "evidence").rglob("target.start*.log"))
    assert f"okx_demo_api variant: {bug}" in logs, f"variant {bug} was not launched"


def assert_patch_did_not_raise(pytester: pytest.Pytester) -> None:
    """A variant must fail through its bug, not because its monkeypatch raised inside the target (the
    target turns such exceptions into error events or a crash, which would change the drill's course)."""
    for fp in (pytester.path / "evidence" / "runs").rglob("execution_fingerprint.json"):
        events = json.loads(fp.read_text(encoding="utf-8")).get("error_events", [])
        raised = [e for e in events if PY_ERROR.match(str(e.get("detail", "")))]
        assert not raised, f"the variant raised inside the target: {raised[:3]}"
    for log in (pytester.path / "evidence" / "runs").rglob("target.log"):
        assert '"event":"crashed"' not in log.read_text(errors="replace"), f"target crashed: {log}"


def meta_of(pytester: pytest.Pytester, group: str, drill: str) -> dict:
    (run,) = list((pytester.path / "evidence" / "runs").iterdir())
    return json.loads((run / group / drill / "meta.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.bug}-{c.drill}" for c in CASES])
def test_variant_fails_its_drill(pytester: pytest.Pytester, case: Case) -> None:
    """The variant's drill is a FAIL (not NOT PROVEN / ERROR) whose reason names the catching check or tag."""
    result = run_drills(pytester, case.bug, [case.drill])
    out = result.stdout.str()
    assert_launched(pytester, case.bug)
    assert_patch_did_not_raise(pytester)
    meta = meta_of(pytester, case.group, case.drill)
    assert meta["verdict"] == "FAIL", f"{case.bug}: verdict {meta['verdict']}: {meta.get('reason')}\n{out[-3000:]}"
    for fragment in case.reason:
        assert fragment in meta["reason"], f"{case.bug}: {fragment!r} not in reason: {meta['reason']}"
    if case.one_of:
        assert any(f in meta["reason"] for f in case.one_of), f"{case.bug}: none of {case.one_of} in: {meta['reason']}"
    if case.tag is not None:
        m = re.search(r"status samples violate the contract \(([^)]*)\)", meta["reason"])
        assert m and case.tag in m.group(1).split(", "), f"{case.bug}: no [{case.tag}] finding: {meta['reason']}"
    result.assert_outcomes(failed=1)
    # pytest's summary line names the drill's test and its verdict; the full reason is in the report.
    assert f"test_drill[{case.drill}-process] - FAI" in out, out[-2000:]
    for fragment in case.reason:
        assert fragment in out.replace("\n", " "), f"{case.bug}: {fragment!r} not printed"


def test_same_drills_pass_against_the_unmodified_target(pytester: pytest.Pytester) -> None:
    """Baseline: the launcher with no bug (``none``) passes every drill the variants fail, in one session."""
    drills = sorted({(c.group, c.drill) for c in CASES})
    result = run_drills(pytester, "none", [d for _, d in drills])
    assert_launched(pytester, "none")
    assert_patch_did_not_raise(pytester)
    verdicts = {d: meta_of(pytester, g, d) for g, d in drills}
    bad = {d: f"{m['verdict']}: {m.get('reason')}" for d, m in verdicts.items() if m["verdict"] != "PASS"}
    assert not bad, bad
    result.assert_outcomes(passed=len(drills))


def test_a_service_that_reduces_only_when_asked_is_not_proven_without_the_hook_and_passes_with_it(
        pytester: pytest.Pytester) -> None:
    """Drill 3's "ReduceOnly actions still permitted" FAILs only a service given the occasion: a correct
    service that keeps its position while OPEN is blocked ends NOT PROVEN naming the optional hook when its
    target file has none, and PASSes, by the hook, when it has it."""
    drill, variant = "drill_3_wal_backpressure", "reduces_only_when_asked"
    bare = write_variant_target(variant, pytester.path / "target_no_hook.yaml", drop_hooks=("reduce_exposure",))
    run_drills(pytester, variant, [drill], target=bare)
    assert_launched(pytester, variant)
    meta = meta_of(pytester, "phase2", drill)
    assert meta["verdict"] == "NOT PROVEN", meta
    assert "reduce_only_permitted" in meta["reason"] and "declares no hooks.reduce_exposure" in meta["reason"], meta
    shutil.rmtree(pytester.path / "evidence")
    shutil.rmtree(pytester.path / "mydrills")
    run_drills(pytester, variant, [drill])
    meta = meta_of(pytester, "phase2", drill)
    assert meta["verdict"] == "PASS", meta
    checks = json.loads((_drill_dir(pytester, "phase2", drill) / "checks.json").read_text(encoding="utf-8"))
    items = checks if isinstance(checks, list) else checks.get("checks", [])
    (reduce,) = [c for c in items if c.get("name") == "reduce_only_permitted"]
    assert reduce["passed"] is True and "after the drill's reduce_exposure hook" in reduce["detail"], reduce


def _drill_dir(pytester: pytest.Pytester, group: str, drill: str) -> Path:
    (run,) = list((pytester.path / "evidence" / "runs").iterdir())
    return run / group / drill


@pytest.mark.parametrize("case", CORRECT_CASES, ids=[f"{c.variant}-{c.drill}" for c in CORRECT_CASES])
def test_correct_variants_pass(pytester: pytest.Pytester, case: Correct) -> None:
    """A faster or more talkative but correct target PASSES: the checks judge behaviour, not the reference's
    timing or its exact reason list. Flattening everything within milliseconds of the fault (before /status
    shows the safe state) counts as containment and as capital supremacy; a truthful extra mode reason in
    manifest order is allowed."""
    result = run_drills(pytester, case.variant, [case.drill])
    assert_launched(pytester, case.variant)
    assert_patch_did_not_raise(pytester)
    meta = meta_of(pytester, case.group, case.drill)
    assert meta["verdict"] == "PASS", f"{case.variant}: {meta['verdict']}: {meta.get('reason')}\n{result.stdout.str()[-3000:]}"
    folder = _drill_dir(pytester, case.group, case.drill)
    if case.shows == "flatten_at_once":
        # The variant acted: its one-order-per-instrument flatten reached the venue and reduced exposure.
        log = "".join(p.read_text(errors="replace") for p in folder.rglob("target.log"))
        ids = {json.loads(line)["clOrdId"] for line in log.splitlines()
               if '"event":"variant_flatten_at_once"' in line and '"sent":true' in line}
        assert ids, "the variant never flattened at once"
        ledger = [json.loads(x) for x in (folder / "witness_ledger.jsonl").read_text().splitlines() if x.strip()]
        reduced = [e for e in ledger if e.get("type") == "order" and e.get("clOrdId") in ids and e.get("effect") == "reduce"]
        assert reduced, f"the flatten orders {ids} did not reduce at the venue"
    elif case.shows == "no_latch_events":
        fp = json.loads((folder / "execution_fingerprint.json").read_text(encoding="utf-8"))
        assert not fp.get("latch_events"), "the variant still wrote latch_events"
        checks = json.loads((folder / "checks.json").read_text(encoding="utf-8"))
        items = checks if isinstance(checks, list) else checks.get("checks", [])
        (latch,) = [c for c in items if c.get("name") == "latch_clears_only_after_reconcile"]
        assert latch["passed"] is True and "latch_events" not in latch["detail"], latch
    elif case.shows == "partition_landed":
        record = json.loads((folder / "record.json").read_text(encoding="utf-8"))
        proof = json.dumps(record.get("steps", []))
        assert '"matched_request": "POST /api/v5/trade/' in proof, "the partition never landed on an order"
    else:
        reasons = [json.loads(x).get("status", {}) for x in read_timeline(folder).splitlines() if x.strip()]
        both = [r.get("mode_reasons") for r in reasons if isinstance(r, dict)
                and "REDUCEONLY_INPUT_MISSING_OR_STALE" in (r.get("mode_reasons") or [])
                and "REDUCEONLY_OPEN_PERMISSION_LATCHED" in (r.get("mode_reasons") or [])]
        assert both, "the variant never reported the extra reason beside the latch"
    result.assert_outcomes(passed=1)
