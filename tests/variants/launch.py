"""Buggy variants of the reference target okx_demo_api, one bug each, for the not-vacuous drill tests.

Run as ``python tests/variants/launch.py <bug> [target flags...]`` (or ``python -m tests.variants.launch``
from the repository root). The launcher imports the reference target, applies exactly one monkeypatch
selected by name, then runs the target's normal entry point with the same environment. The target
package itself is never edited: every bug lives here, patched onto stable behaviour-level functions.
``none`` runs the unmodified target (a control for the launcher itself).
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from typing import Any, Callable, Sequence

from pytest_chaosdrill.reference.okx_demo_api import app as app_mod
from pytest_chaosdrill.reference.okx_demo_api import main as main_mod
from pytest_chaosdrill.reference.okx_demo_api import status as status_mod
from pytest_chaosdrill.reference.okx_demo_api.dispatcher import fmt_sz
from pytest_chaosdrill.reference.okx_demo_api.policy import ACTIVE, Decision, PolicyGuard
from pytest_chaosdrill.reference.okx_demo_api.reconcile import IntentResolver
from pytest_chaosdrill.reference.okx_demo_api.telemetry import Telemetry
from pytest_chaosdrill.reference.okx_demo_api.venue_client import RestClient
from pytest_chaosdrill.reference.okx_demo_api.wal import read_records

App = app_mod.App

# Variant 2: how long a latch code stays set before the (buggy) timer clears it. Far below drill 2's
# 2.5 s freeze, so the first clear lands while the feed is still silent.
LATCH_TIMER_S = 0.4
# Variant 8: how many of the journal's last intents the (buggy) replay re-sends.
REPLAY_TAIL = 3


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
    from pytest_chaosdrill.reference.okx_demo_api.dispatcher import Dispatcher

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


def none() -> None:
    """No bug: the unmodified reference target."""


VARIANTS: dict[str, Callable[[], None]] = {f.__name__: f for f in (
    latch_never_set_on_gap, latch_cleared_on_timer, active_while_latched, open_while_latched,
    mode_reasons_out_of_order, stop_recorded_as_completed, connection_errors_not_counted,
    duplicate_dispatch_after_restart, not_found_taken_as_absent, reduce_only_blocked_by_wal,
    reconcile_waits_for_first_code, none)}


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
