"""Checks on what reached the venue (the witness ledger): dispatch while blocked, exposure, reduce-only
containment, duplicates; and the ledger queries they share."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..venue.witness import check_no_order_accepted_after_not_found, could_add_exposure, open_orders_in_window
from .base import CheckResult, fault_origin, fmt_orders

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord


def ledger_orders(ledger: Sequence[dict[str, Any]], start: float | None = None, end: float | None = None) -> list[dict]:
    return [e for e in ledger if e.get("type") == "order"
            and (start is None or e.get("mono", 0) >= start) and (end is None or e.get("mono", 0) <= end)]


def is_open(order: dict[str, Any]) -> bool:
    """An order that could add exposure (the one definition, shared with the venue's ledger)."""
    return could_add_exposure(order)


def recon_reads(ledger: Sequence[dict[str, Any]], start: float, end: float,
                answered: bool = False) -> dict[str, list[float]]:
    """When the service read its positions and its open orders at the venue between ``start`` and
    ``end`` (with ``answered``: only the reads the venue answered with 200)."""
    reads: dict[str, list[float]] = {"positions": [], "orders_pending": []}
    for e in ledger:
        if e.get("type") == "request" and e.get("recon_read") and start <= e.get("mono", 0) <= end \
                and (not answered or e.get("status", 200) == 200):
            key = "positions" if "positions" in str(e.get("path", "")) else "orders_pending"
            reads[key].append(e["mono"])
    return reads


def held_recon_reads(ledger: Sequence[dict[str, Any]], start: float) -> dict[str, list[tuple[float, float]]]:
    """Reconciliation reads the venue held (its ``recon_hold``) answered from ``start`` on: per kind,
    ``(received_mono, answered_mono)``."""
    held: dict[str, list[tuple[float, float]]] = {"positions": [], "orders_pending": []}
    for e in ledger:
        if e.get("type") == "request" and e.get("recon_read") and e.get("held_ms") \
                and isinstance(e.get("received_mono"), (int, float)) and e.get("mono", 0) >= start:
            key = "positions" if "positions" in str(e.get("path", "")) else "orders_pending"
            held[key].append((e["received_mono"], e["mono"]))
    return held


def exposure_series(ledger: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(e["mono"], float(e.get("exposure", 0))) for e in ledger if e.get("type") == "position"]


def exposure_at(ledger: Sequence[dict[str, Any]], t: float) -> float | None:
    """The venue's exposure (sum of |position|) at ``t``: the last position entry at or before it;
    None when the venue recorded no position change before ``t`` (no position was ever taken)."""
    before = [x for m, x in exposure_series(ledger) if m <= t]
    return before[-1] if before else None


def is_reduce(order: dict[str, Any]) -> bool:
    """A reduce-only order the venue accepted and that reduced a position."""
    return order.get("reduceOnly") in (True, "true") and order.get("accepted", True) is not False \
        and order.get("effect") == "reduce"


def no_open_dispatch_while_blocked(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """The venue received no order that could add exposure while the status showed OPEN blocked
    (each run of blocked answers between the first safe sample and recovery: :meth:`DrillRecord.blocked_spans`).

    ``grace_ms`` admits orders already on the wire when a block was first observed.
    """
    spans = rec.blocked_spans()
    if not spans:
        return CheckResult("no_open_dispatch_while_blocked", None, "OPEN was never observed blocked")
    opens = [o for a, b in spans for o in open_orders_in_window(rec.ledger, a + grace_ms / 1000, b, block_start_mono=a)]
    if opens:
        # Both are findings; the reason says which: decided while blocked, or sent before the block and
        # delivered during it (the in-flight hazard of a partition).
        kinds = {k: [o for o in opens if o["kind"] == k] for k in ("decided_while_blocked", "sent_before_block")}
        said = "; ".join(f"{len(v)} {k.replace('_', ' ')}: {fmt_orders(v)}" for k, v in kinds.items() if v)
        return CheckResult("no_open_dispatch_while_blocked", False,
                           f"{len(opens)} OPEN order(s) reached the venue while OPEN was blocked ({said})")
    n = sum(len(ledger_orders(rec.ledger, a, b)) for a, b in spans)
    blocked_s = sum(b - a for a, b in spans)
    runs = f" in {len(spans)} runs" if len(spans) > 1 else ""
    return CheckResult("no_open_dispatch_while_blocked", True,
                       f"venue saw {n} order(s) in the blocked window ({blocked_s:.2f}s{runs}), none could add exposure")


def _reduces_while_exposed(rec: "DrillRecord", name: str, begin: float, stop: float, idle_why: str,
                           exercised: str) -> tuple[float, list[dict], CheckResult | None]:
    """The venue's exposure at ``begin`` and the reduce-only orders it received in [begin, stop]; with no
    exposure there is nothing to reduce, and the third item is the NOT PROVEN result (``idle_why``)."""
    exposure = exposure_at(rec.ledger, begin)
    if not exposure:
        return 0.0, [], CheckResult(name, None, f"exposure {exposure or 0.0} {idle_why}", facts={exercised: False})
    return exposure, [o for o in ledger_orders(rec.ledger, begin, stop) if is_reduce(o)], None


def containment_proceeds(rec: "DrillRecord") -> CheckResult:
    """Reduce-only orders reached the venue between the fault and the end of the blocked window (hedge / flatten).

    Precondition: the venue held a position when the fault landed (else there is nothing to contain:
    NOT PROVEN). Orders count from the fault's landing (venue receive time), so a flatten sent before
    the first safe sample is seen counts; orders after the blocked window (normal trading) do not.
    """
    origin = fault_origin(rec)
    _, end = rec.blocked_window()
    if origin is None or end is None:
        return CheckResult("containment_proceeds", None, "the fault's landing or the blocked window was not observed")
    exposure, reduces, idle = _reduces_while_exposed(rec, "containment_proceeds", origin, end,
                                                     "when the fault landed: nothing to contain", "containment_exercised")
    if idle is not None:
        return idle
    if not reduces:
        return CheckResult("containment_proceeds", False, f"exposure {exposure} when the fault landed, but no reduce-only "
                           f"order reached the venue before the blocked window ended ({(end - origin) * 1000:.0f} ms)")
    return CheckResult("containment_proceeds", True, f"exposure {exposure} when the fault landed; {len(reduces)} reduce-only "
                       f"order(s) reached the venue: {fmt_orders(reduces, 3)}", facts={"containment_exercised": True})


def exposure_monotonic_to_neutral(rec: "DrillRecord", neutral: float = 0.0) -> CheckResult:
    """Exposure monotonically reduces to neutral: from the exposure at the fault's landing to the end of the
    blocked window the venue's exposure never grew, and it reached ``neutral`` within the window.

    Precondition: exposure above ``neutral`` at the landing (else NOT PROVEN: nothing to reduce). The series
    ends with the blocked window (the request of the last blocked sample): an OPEN after recovery is normal
    trading, not containment.
    """
    origin = fault_origin(rec)
    _, end = rec.blocked_window()
    if origin is None or end is None:
        return CheckResult("exposure_monotonic_to_neutral", None, "the safe state was never observed")
    first = exposure_at(rec.ledger, origin)
    if first is None or first <= neutral + 1e-9:
        return CheckResult("exposure_monotonic_to_neutral", None,
                           f"exposure {first if first is not None else 0.0} when the fault landed: nothing to reduce")
    series = [(origin, first)] + [(m, x) for m, x in exposure_series(rec.ledger) if origin < m <= end]
    prev = first
    for m, x in series[1:]:
        if x > prev + 1e-9:
            return CheckResult("exposure_monotonic_to_neutral", False,
                               f"exposure grew from {prev} to {x} during containment "
                               f"({(m - origin) * 1000:.0f} ms after the fault landed, inside the blocked window)")
        prev = x
    if abs(prev - neutral) > 1e-9:
        return CheckResult("exposure_monotonic_to_neutral", False,
                           f"exposure went {first} → {prev} without growing, but had not reached {neutral} "
                           f"when the blocked window ended ({(end - origin) * 1000:.0f} ms after the fault)")
    return CheckResult("exposure_monotonic_to_neutral", True,
                       f"exposure went {first} → {prev} over {len(series) - 1} venue position changes, never growing")


#: The occasion hook drills give for reduce_only_permitted (docs/targets.md, "Occasion hooks").
REDUCE_HOOK = "reduce_exposure"


def reduce_only_permitted(rec: "DrillRecord") -> CheckResult:
    """ReduceOnly actions still permitted: while OPEN was blocked and the fault still held, the target was
    not in Kill, and a reduce-only order reached the venue and reduced the position.

    Orders count by the venue's receive time from the first blocked answer to the end of the fault's
    condition (or of the blocked window, if earlier). FAIL needs an occasion the service was seen to have:
    it was in Kill, or the drill's occasion hook (``reduce_exposure``) was answered ``refused``, or answered
    ``applied`` and still no reduce-only order came. A service that sent none with no occasion (no hook
    declared, or not answered) ends NOT PROVEN, naming the hook; so does one with no position to reduce.
    """
    name = "reduce_only_permitted"
    window = rec.blocked_window_samples()
    start, end = rec.blocked_window()
    if not window or start is None or end is None:
        return CheckResult(name, None, "no sample in the blocked window")
    kills = [s for s in window if s.status.get("trading_mode") == "Kill"]
    if kills:
        return CheckResult(name, False, f"{len(kills)} of {len(window)} blocked samples in Kill "
                           f"(first: sample {kills[0].i}); ReduceOnly was not held")
    fs = rec.first_safe
    begin = fs.sent_mono if fs is not None else start
    ended = rec.t_condition_ended
    stop = min(end, ended) if ended is not None and ended > begin else end
    exposure, reduces, idle = _reduces_while_exposed(rec, name, begin, stop, "when OPEN became blocked: nothing to "
                                                     "reduce, the criterion was not exercised", "reduce_only_exercised")
    if idle is not None:
        return idle
    occ = rec.occasion if isinstance(rec.occasion, dict) else {}
    fired = occ.get("fired_mono") if isinstance(occ.get("fired_mono"), (int, float)) else None
    hook = str(occ.get("hook") or REDUCE_HOOK)
    held = f"while OPEN was blocked and the fault held ({(stop - begin) * 1000:.0f} ms, {len(window)} blocked samples)"
    if reduces:
        asked = [o for o in reduces if fired is not None and o.get("mono", 0) >= fired]
        how = (f"after the drill's {hook} hook (answered {occ.get('answer')!r})" if asked and len(asked) == len(reduces)
               else "on its own" if not asked else f"on its own and after the {hook} hook")
        return CheckResult(name, True, f"exposure {exposure} when blocked; {len(reduces)} reduce-only order(s) reached "
                           f"the venue {held}, {how}: {fmt_orders(reduces, 3)}",
                           facts={"reduce_only_exercised": True, "reduce_only_occasion": "hook" if asked else "spontaneous"})
    said = f"exposure {exposure} {held}, and no reduce-only order reached the venue"
    answer, at = occ.get("answer"), occ.get("answer_mono")
    if fired is not None and answer == "refused":
        return CheckResult(name, False, f"{said}: the target refused the drill's {hook} hook itself "
                           f"({occ.get('detail')!r}); ReduceOnly actions were not permitted",
                           facts={"reduce_only_occasion": "hook"})
    if fired is not None and answer == "applied" and isinstance(at, (int, float)):
        return CheckResult(name, False, f"{said}: the target answered the drill's {hook} hook 'applied' "
                           f"{(at - fired) * 1000:.0f} ms after it was written and had {(stop - at) * 1000:.0f} ms "
                           "of the fault left to send one", facts={"reduce_only_occasion": "hook"})
    if fired is not None:
        return CheckResult(name, None, f"{said} on its own; the drill wrote the {hook} hook but the target's hooks_log "
                           f"had no 'applied' or 'refused' answer within {occ.get('answer_timeout_s')} s, so it was "
                           "given no occasion it acknowledged (docs/targets.md, \"Occasion hooks\")",
                           facts={"reduce_only_occasion": None})
    why = (f"the target file declares no hooks.{hook}" if not occ.get("declared")
           else "the target file declares no hooks_log" if not occ.get("hooks_log")
           else f"the {hook} hook was not given")
    return CheckResult(name, None, f"{said} on its own, and it had no occasion to: {why}. Declare hooks.{hook} "
                       f"(and hooks_log) so the drill can ask it to reduce while OPEN is blocked, or reduce on its own "
                       "(docs/targets.md, \"Occasion hooks\")", facts={"reduce_only_occasion": None})


def no_duplicate_dispatch(rec: "DrillRecord") -> CheckResult:
    """No duplicate dispatch: no client order id reached the venue twice (a WAL replay is idempotent)."""
    dups = [o for o in ledger_orders(rec.ledger) if o.get("duplicate")]
    n = len(ledger_orders(rec.ledger))
    if dups:
        return CheckResult("no_duplicate_dispatch", False,
                           f"{len(dups)} client order id(s) reached the venue twice: {fmt_orders(dups)}")
    return CheckResult("no_duplicate_dispatch", True, f"{n} orders at the venue, no client order id dispatched twice")


def no_order_accepted_after_not_found(rec: "DrillRecord") -> CheckResult:
    """The venue accepted no order after answering "not found" for its clOrdId (the in-flight hazard)."""
    passed, reason = check_no_order_accepted_after_not_found(rec.ledger)
    return CheckResult("no_order_accepted_after_not_found", passed, reason)


#: OKX's "Timestamp request expired" (REST), the refusal a skewed venue clock produces.
TS_EXPIRED = "50102"


def resynced_during_skew(rec: "DrillRecord") -> CheckResult:
    """Under a venue clock skew, the target re-synced its clock to the venue's (``GET /api/v5/public/time``,
    as ccxt's ``load_time_difference`` does): after the venue first refused one of its requests for its
    timestamp, and while the skew was still in force, the venue accepted a signed private request from it.
    A target that only recovers once the skew ends FAILs."""
    s = rec.step
    if s is None or s.landed_mono is None:
        return CheckResult("resynced_during_skew", None, "the clock skew never landed (no request refused for its timestamp)")
    end = s.released_mono or rec.t_release or rec.end_limit()
    private = [e for e in rec.ledger if e.get("type") == "request" and e.get("auth") is not None]
    refused = [e for e in private if e.get("auth") == TS_EXPIRED and s.landed_mono <= e.get("mono", 0) <= end]
    accepted = [e for e in private if e.get("auth") == "0" and s.landed_mono <= e.get("mono", 0) <= end]
    span = f"{(end - s.landed_mono) * 1000:.0f} ms of skew after the first refusal"
    if not accepted:
        return CheckResult("resynced_during_skew", False,
                           f"{len(refused)} signed request(s) refused with {TS_EXPIRED} and none accepted in {span}: "
                           "the target never re-synced its clock to the venue's (public/time)")
    first = accepted[0]
    return CheckResult("resynced_during_skew", True,
                       f"first signed request accepted {(first['mono'] - s.landed_mono) * 1000:.0f} ms after the first "
                       f"refusal ({first.get('method')} {first.get('path')}), {len(refused)} refused with {TS_EXPIRED}, "
                       f"{len(accepted)} accepted in {span}")


def _instance_of(order: dict[str, Any], connections: Sequence[dict[str, Any]]) -> str | None:
    """The client host (a pod IP) that opened the connection an order came in on: the proxy's newest
    connection, opened before the order, whose upstream address is the peer the venue saw."""
    peer, at = order.get("peer"), order.get("received_mono", order.get("mono"))
    if not peer or not isinstance(at, (int, float)):
        return None
    opened = [c for c in connections if c.get("upstream_local") == peer and c.get("opened_mono", 0) <= at]
    client = max(opened, key=lambda c: c["opened_mono"])["client"] if opened else None
    return client.rsplit(":", 1)[0].strip("[]") if client else None


def single_instance_trading(rec: "DrillRecord") -> CheckResult:
    """Two instances of the service never trade at once: after the replacement of a lost node's replica
    sent its first order, the old replica (still running, its node cut off from the control plane) sent
    none until the fault's release ended it. Orders are told apart by the pod that opened their
    connection (the venue's peer joined with the fault proxy's connection log); the old and new pod IPs
    and the old replica's processes being alive come from the fault's proof (``kubernetes.node_loss``)."""
    name = "single_instance_trading"
    step = rec.step
    proof = step.proof if step is not None else {}
    release = step.release if step is not None else {}
    old_ip, new_ip = proof.get("old_ip"), proof.get("new_ip")
    if not old_ip or not new_ip or old_ip == new_ip:
        return CheckResult(name, None, "the fault's proof names no old and new pod IP (a kubernetes.node_loss fault "
                           "proves both): the instances cannot be told apart")
    if not proof.get("old_processes_running"):
        return CheckResult(name, None, "the old replica was not proven running after its node was lost: there was no "
                           "second instance to fence")
    connections = release.get("proxy_connections")
    if not isinstance(connections, list):
        return CheckResult(name, None, "no connection log of the fault proxy (it is read in-process at the fault's "
                           f"release: {release.get('proxy_connections_error', 'not recorded')}): orders cannot be "
                           "attributed to an instance")
    end = rec.t_release if rec.t_release is not None else float("inf")
    orders = ledger_orders(rec.ledger, proof.get("sent_mono"), end)
    by: dict[str, list[dict[str, Any]]] = {}
    for o in orders:
        by.setdefault(_instance_of(o, connections) or "unattributed", []).append(o)
    new_orders, old_orders = by.get(new_ip, []), by.get(old_ip, [])
    if by.get("unattributed"):
        return CheckResult(name, None, f"{len(by['unattributed'])} order(s) after the node loss could not be attributed "
                           "to a pod (no venue peer, or no proxy connection for it): two instances not provable")
    if not new_orders:
        return CheckResult(name, None, f"the replacement pod ({new_ip}) sent no order before the release, so no overlap "
                           f"with the old replica ({old_ip}, {len(old_orders)} order(s)) could be seen; hold the fault "
                           "longer (hold_s)")
    first_new = min(o.get("mono", 0) for o in new_orders)
    overlap = [o for o in old_orders if o.get("mono", 0) >= first_new]
    if overlap:
        return CheckResult(name, False, f"two instances traded at once: the old replica ({old_ip}, its node lost) sent "
                           f"{len(overlap)} order(s) after the replacement ({new_ip}) sent its first "
                           f"({(overlap[0].get('mono', 0) - first_new) * 1000:.0f} ms later): {fmt_orders(overlap)}")
    last_old = max((o.get("mono", 0) for o in old_orders), default=None)
    when = (f"its last {(first_new - last_old) * 1000:.0f} ms before the replacement's first" if last_old is not None
            else "none after the node loss")
    return CheckResult(name, True, f"the old replica ({old_ip}, still running: pids {proof.get('old_processes_running')}) "
                       f"sent {len(old_orders)} order(s) after its node was lost, {when}; the replacement ({new_ip}) "
                       f"sent {len(new_orders)} before the release")


def no_dispatch_while_failed(rec: "DrillRecord") -> CheckResult:
    """From the moment the API showed the service's pods failing (the fault's proof: ``OOMKilled``,
    ``ErrImagePull``, ``CrashLoopBackOff``, ...) until the fault's release, the venue received no order:
    a service that cannot run fails closed, whatever it manages to do between crashes. The detail names
    the reasons the API gave (the evidence's ``k8s.events.json`` has the events)."""
    name = "no_dispatch_while_failed"
    step = rec.step
    proof = step.proof if step is not None else {}
    reasons = proof.get("reasons_seen") or {}
    since = proof.get("failing_since_mono")
    if not proof.get("reason") or not isinstance(since, (int, float)) or step is None:
        return CheckResult(name, None, "the fault's proof names no failure reason from the API (a kubernetes."
                           "memory_limit or image_fault fault gives one): the service was not proven failing")
    end = rec.t_release if rec.t_release is not None else rec.t_end
    orders = ledger_orders(rec.ledger, since, end)
    why = f"the API's reasons: {', '.join(sorted(reasons))}; pod {proof.get('pod')} restarts {proof.get('restart_count')}"
    if orders:
        return CheckResult(name, False, f"{len(orders)} order(s) reached the venue while the service's pods were failing "
                           f"({why}): {fmt_orders(orders)}")
    return CheckResult(name, True, f"no order reached the venue in the {(end - since):.1f} s the service's "
                       f"pods were failing ({why})")
