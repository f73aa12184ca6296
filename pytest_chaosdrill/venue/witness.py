"""Witness queries: pure functions over the venue's witness ledger (a list of dict entries, as
``GET /_venue/ledger`` exports it; layout in docs/venue-protocol.md, "Witness ledger").

They answer questions the target's own report cannot: did the venue accept an order it had just
answered "not found" for (the in-flight-request hazard across a partition), was an order the venue
saw while OPEN was blocked decided during the block or merely delivered during it, and what counts as
"an order that could add exposure" (one definition, shared with the venue ledger).

The ``check_*`` functions return ``(passed, reason)`` with ``passed=None`` when the ledger holds no
fact to decide on (NOT PROVEN), so wiring them into drill checks is one line each.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

#: OKX v5 code for an order request that reached the venue after its ``expTime`` header
#: ("The expTime can't be earlier than the current system time"), from OKX's REST error-code table.
S_EXP_TIME_PASSED = "50036"
#: OKX v5 "Order does not exist".
S_NO_ORDER = "51603"

Entry = dict[str, Any]


def _truthy(v: Any) -> bool:
    return v is True or v == "true" or v == "True"


def could_add_exposure(order: Entry) -> bool:
    """THE definition of an order (attempt) that could add exposure.

    An order could add exposure when it is not flagged reduce-only (nothing stops the venue from
    growing the position with it), or when its recorded ``effect`` says it did grow ``|position|``
    (``open``, or ``flip`` across zero). A reduce-only order whose effect is ``reduce`` or ``none``
    could not. Rejected and duplicate attempts are judged the same way: they say what the target
    *dispatched*; pair with ``accepted`` to ask what the venue *did*. The venue ledger records this
    value on every ``order`` entry (``could_add_exposure``) and ``Ledger.opens`` uses this function,
    so the venue and the checks cannot disagree.
    """
    return not _truthy(order.get("reduceOnly")) or order.get("effect") in ("open", "flip")


# -- helpers ---------------------------------------------------------------------------------------

def _orders(ledger: Iterable[Entry]) -> list[Entry]:
    return [e for e in ledger if e.get("type") == "order"]


def _parse_utc(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def not_found_queries(ledger: Iterable[Entry]) -> list[Entry]:
    """``GET /api/v5/trade/order`` requests the venue answered "order does not exist" (51603)."""
    return [e for e in ledger if e.get("type") == "request" and e.get("method") == "GET"
            and e.get("path") == "/api/v5/trade/order" and str(e.get("okx_code")) == S_NO_ORDER
            and e.get("clOrdId")]


def live_requests(ledger: Iterable[Entry]) -> list[Entry]:
    """Private REST requests that arrived without OKX's demo-trading header (``x-simulated-trading: 1``):
    the target is configured for real money, whatever the venue answered (OKX: 50101)."""
    return [e for e in ledger if e.get("type") == "request" and e.get("simulated") is False]


def expired_requests(ledger: Iterable[Entry]) -> list[Entry]:
    """Order requests the venue refused because they arrived after their ``expTime``."""
    return [e for e in ledger if e.get("type") == "request" and e.get("expired")]


def not_found_then_accepted(ledger: Iterable[Entry]) -> list[Entry]:
    """Every clOrdId the venue answered "not found" for and later accepted as a new order.

    Each finding names both requests and both times (venue ``mono`` and ``utc``): the not-found
    query (its earliest one) and the first accepted order entry after it. "Not found"
    proves nothing while the original request can still arrive; this is the witness of that.
    """
    entries = list(ledger)
    first_nf: dict[str, Entry] = {}
    for q in not_found_queries(entries):
        first_nf.setdefault(str(q["clOrdId"]), q)
    findings = []
    for cid, q in first_nf.items():
        # A repeated clOrdId counts too: as on OKX, the venue accepts a clOrdId again once its earlier
        # order is final, and that is a new order.
        later = [o for o in _orders(entries) if o.get("clOrdId") == cid and _truthy(o.get("accepted"))
                 and o.get("seq", 0) > q.get("seq", 0)]
        if not later:
            continue
        o = later[0]
        findings.append({
            "clOrdId": cid,
            "not_found_mono": q.get("mono"), "not_found_utc": q.get("utc"), "not_found_seq": q.get("seq"),
            "accepted_mono": o.get("mono"), "accepted_utc": o.get("utc"), "accepted_seq": o.get("seq"),
            "received_mono": o.get("received_mono"), "expTime": o.get("expTime"),
            "gap_ms": round((o["mono"] - q["mono"]) * 1000, 1) if "mono" in o and "mono" in q else None,
            "query": {"method": q.get("method"), "path": q.get("path"), "query": q.get("query")},
            "order": {k: o.get(k) for k in ("ordId", "instId", "side", "sz", "reduceOnly", "effect",
                                            "pos_before", "pos_after")},
        })
    return sorted(findings, key=lambda f: f["accepted_seq"] or 0)


def client_sent_upper_mono(order: Entry) -> float | None:
    """Latest venue-monotonic instant at which the target can have signed this request, or None.

    From the request's own ``OK-ACCESS-TIMESTAMP`` (ISO 8601 UTC, recorded as ``accessTs``) mapped onto
    the venue's monotonic clock through the entry's (``received_mono``, ``received_utc``) pair. OKX
    timestamps carry milliseconds; one with ``.000`` may be truncated to the second, so it is read as
    the *end* of that second (never earlier than the truth). Valid when the target and the venue share
    a clock (one host: the process and docker backends).
    """
    ts = _parse_utc(order.get("accessTs"))
    rx_utc = _parse_utc(order.get("received_utc"))
    rx_mono = order.get("received_mono")
    if ts is None or rx_utc is None or not isinstance(rx_mono, (int, float)):
        return None
    if ts.microsecond == 0:
        ts += timedelta(milliseconds=999)
    # Both stamps are truncated to the millisecond: +1 ms keeps the bound an upper bound.
    return rx_mono - (rx_utc - ts).total_seconds() + 0.001


def open_orders_in_window(ledger: Iterable[Entry], start_mono: float | None, end_mono: float | None,
                          block_start_mono: float) -> list[Entry]:
    """Orders that could add exposure which the venue received in ``[start_mono, end_mono]``, each
    classified (as a copy with ``kind``) as:

    * ``"sent_before_block"``: the request provably left the target before ``block_start_mono`` and
      was only delivered during the window (a partition held it). Proof needs both the request's own
      signed timestamp (see :func:`client_sent_upper_mono`) before the block and a venue arrival time;
    * ``"decided_while_blocked"``: everything else, including an order that carries no timestamp
      (fail closed: what cannot be shown to predate the block counts against the target).

    ``sent_upper_mono`` is added to each copy (None when unknown).
    """
    out = []
    for o in _orders(ledger):
        m = o.get("received_mono", o.get("mono"))
        if not isinstance(m, (int, float)) or (start_mono is not None and m < start_mono) \
                or (end_mono is not None and m > end_mono) or not could_add_exposure(o):
            continue
        sent = client_sent_upper_mono(o)
        kind = "sent_before_block" if sent is not None and sent < block_start_mono else "decided_while_blocked"
        out.append({**o, "kind": kind, "sent_upper_mono": sent})
    return out


def _fmt(o: Entry) -> str:
    return (f"{o.get('clOrdId')} {o.get('side')} {o.get('sz')} {o.get('instId')} reduceOnly={o.get('reduceOnly')} "
            f"effect={o.get('effect')} accepted={o.get('accepted')}")


# -- checks (plain functions; the drill framework wraps them) --------------------------------------

def check_no_order_accepted_after_not_found(ledger: Iterable[Entry], start_mono: float | None = None,
                                            end_mono: float | None = None) -> tuple[bool | None, str]:
    """FAIL when the venue accepted an order after answering "not found" for its clOrdId.

    Only findings whose acceptance lies in ``[start_mono, end_mono]`` count. NOT PROVEN (None) when no
    not-found query happened at all: the hazard was never exercised.
    """
    entries = list(ledger)
    queries = [q for q in not_found_queries(entries)]
    found = [f for f in not_found_then_accepted(entries)
             if (start_mono is None or f["accepted_mono"] >= start_mono) and (end_mono is None or f["accepted_mono"] <= end_mono)]
    if found:
        f = found[0]
        return False, (f"{len(found)} order(s) accepted after the venue answered 'not found' for their clOrdId; first: "
                       f"{f['clOrdId']} not found at mono {f['not_found_mono']:.3f} ({f['not_found_utc']}), accepted "
                       f"{f['gap_ms']} ms later at mono {f['accepted_mono']:.3f} ({f['accepted_utc']}) "
                       f"side={f['order']['side']} effect={f['order']['effect']} pos {f['order']['pos_before']}→"
                       f"{f['order']['pos_after']}")
    if not queries:
        return None, "the target never got a 'not found' answer for an order: the in-flight hazard was not exercised"
    expired = expired_requests(entries)
    return True, (f"{len(queries)} 'not found' answer(s) for {len({q['clOrdId'] for q in queries})} clOrdId(s); none "
                  f"accepted later ({len(expired)} order request(s) refused by the venue as past their expTime)")


def check_no_open_dispatch_while_blocked(ledger: Iterable[Entry], start_mono: float | None, end_mono: float | None,
                                         block_start_mono: float) -> tuple[bool | None, str]:
    """FAIL on any order that could add exposure, decided while OPEN was blocked, which the venue
    received in the window; orders sent before the block and only delivered during it are named in the
    reason (the in-flight hazard has its own check) but do not fail this one."""
    found = open_orders_in_window(ledger, start_mono, end_mono, block_start_mono)
    decided = [o for o in found if o["kind"] == "decided_while_blocked"]
    late = [o for o in found if o["kind"] == "sent_before_block"]
    late_txt = (f"; {len(late)} sent before the block and delivered during it "
                f"(accepted: {sum(_truthy(o.get('accepted')) for o in late)}): {'; '.join(_fmt(o) for o in late[:3])}"
                if late else "")
    if decided:
        return False, (f"{len(decided)} OPEN order(s) decided while OPEN was blocked reached the venue: "
                       f"{'; '.join(_fmt(o) for o in decided[:5])}{late_txt}")
    return True, f"no OPEN order decided while blocked reached the venue{late_txt}"
