"""Checks on the files the service writes (run manifest, fingerprint): STOP detection, graceful exit,
error gates, call pressure, trade processing."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .base import CheckResult, needs, parse_utc

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord


@needs("files.run_manifest")
def stop_detected(rec: "DrillRecord", max_ms: float = 1000.0) -> CheckResult:
    """The STOP file was detected: run_manifest.json says stop_detected, at most ``max_ms`` after the file appeared."""
    manifest = rec.files.get("run_manifest")
    if not isinstance(manifest, dict):
        return CheckResult("stop_detected", False, "no readable run_manifest.json after the STOP")
    requested = rec.trigger_info.get("requested", {})
    created = parse_utc(requested.get("created_utc"))
    stop_time = parse_utc(manifest.get("stop_time"))
    if manifest.get("stop_detected") is not True or stop_time is None or created is None:
        return CheckResult("stop_detected", False, f"stop_detected={manifest.get('stop_detected')!r}, "
                           f"stop_time={manifest.get('stop_time')!r}")
    ms = (stop_time - created).total_seconds() * 1000
    # A stop_time written to the millisecond (ISO 8601 allows it) may read up to 1 ms before the
    # file's microsecond creation time: that is truncation, not a detection before the STOP existed.
    return CheckResult("stop_detected", -1.0 <= ms <= max_ms + 5,
                       f"STOP file created {requested.get('created_utc')}, detected {manifest.get('stop_time')} "
                       f"({ms:.0f} ms, limit {max_ms} ms)", facts={"stop_detection_ms": ms})


def graceful_exit(rec: "DrillRecord", code: int = 0) -> CheckResult:
    """The target exited by itself with status ``code`` within the recovery timeout."""
    rc = rec.exit_code
    if rc is None:
        return CheckResult("graceful_exit", False, "the target did not exit within the recovery timeout")
    return CheckResult("graceful_exit", rc == code, f"target exit status {rc} (expected {code})")


@needs("files.run_manifest")
def run_manifest_fields(rec: "DrillRecord", expect: dict[str, Any], audit_fields: list[str] | None = None) -> CheckResult:
    """run_manifest.json holds the expected values and every audit field."""
    manifest = rec.files.get("run_manifest")
    if not isinstance(manifest, dict) or "_unreadable" in manifest:
        return CheckResult("run_manifest_fields", False, f"no readable run_manifest.json ({manifest})")
    problems = [f"{k}={manifest.get(k)!r} (expected {v!r})" for k, v in expect.items() if manifest.get(k) != v]
    for k in audit_fields or []:
        v = manifest.get(k)
        if v in (None, "") or "unknown" in str(v).lower():
            problems.append(f"audit field {k}={v!r}")
    return CheckResult("run_manifest_fields", not problems,
                       "; ".join(problems) if problems else f"run_manifest has {expect} and audit fields {audit_fields}")


#: The error classes (``error_events[].type``) each network fault produces at the target: a proxy
#: ``reset_peer`` resets connections (connection_error); a ``timeout`` toxic holds requests past the
#: target's client timeout (timeout). A docker network disconnect yields timeouts on the connections
#: that were open, and refused or unresolvable new ones, depending on what the client was doing when it
#: hit: ``a|b`` means at least one of them. A venue clock skew gets signed requests refused with HTTP 401
#: (OKX 50102): http_error. A DNS failure of the venue's name: dns_failure (the resets that force the
#: lookups also give connection_error, which the drill does not ask for).
FAULT_ERROR_CLASSES: dict[str, tuple[str, ...]] = {
    "proxy.toxic:reset_peer": ("connection_error",),
    "proxy.toxic:timeout": ("timeout",),
    "network.disconnect": ("timeout|connection_error|dns_failure",),
    "venue.clock_skew": ("http_error",),
    "dns.failure": ("dns_failure",),
}


def fault_error_classes(rec: "DrillRecord") -> tuple[str, ...]:
    """The error classes the drill's fault produces (see :data:`FAULT_ERROR_CLASSES`); () if unknown."""
    s = rec.step
    if s is None:
        return ()
    key = f"{s.kind}:{s.params.get('type')}" if s.kind == "proxy.toxic" else s.kind
    return FAULT_ERROR_CLASSES.get(key, ())


@needs("files.fingerprint")
def fingerprint_error_gate(rec: "DrillRecord", classes: list[str] | None = None) -> CheckResult:
    """C2.3 hard gate, per error class: every class of error the fault produced (``classes``, default from
    the fault) shows in execution_fingerprint.json's ``error_events[].type``, captured mid-run while the fault
    was active and the target running. Without named classes: error_count > 0 or error_events non-empty."""
    snaps = rec.fingerprint_midrun
    if not snaps:
        return CheckResult("fingerprint_error_gate", None, "no execution_fingerprint.json could be read during the fault")
    last = snaps[-1]["content"]
    errors = last.get("error_count", 0) if isinstance(last, dict) else 0
    events = last.get("error_events", []) if isinstance(last, dict) else []
    events = events if isinstance(events, list) else []
    kinds: dict[str, int] = {}
    base = rec.fingerprint_before if isinstance(rec.fingerprint_before, dict) else {}
    before_events = base.get("error_events") if isinstance(base.get("error_events"), list) else []
    seen_before = {json.dumps(e, sort_keys=True, default=str) for e in before_events}
    for e in events:
        if isinstance(e, dict) and json.dumps(e, sort_keys=True, default=str) not in seen_before:
            kinds[str(e.get("type"))] = kinds.get(str(e.get("type")), 0) + 1
    wanted = tuple(classes) if classes is not None else fault_error_classes(rec)
    summary = (f"mid-run fingerprint ({len(snaps)} snapshot(s)): error_count={errors}, error_events={len(events)}, "
               f"new during the fault by type {dict(sorted(kinds.items()))}")
    if not wanted:
        ok = (isinstance(errors, int) and errors > 0) or bool(events)
        return CheckResult("fingerprint_error_gate", ok, summary)
    missing = [c for c in wanted if not any(kinds.get(alt) for alt in c.split("|"))]
    if missing:
        return CheckResult("fingerprint_error_gate", False, f"the fault produces {', '.join(wanted)}, but no "
                           f"{' / '.join(missing)} event appeared: {summary}")
    return CheckResult("fingerprint_error_gate", True, f"every class the fault produces ({', '.join(wanted)}) "
                       f"was counted: {summary}")


@needs("files.fingerprint")
def sustained_call_pressure(rec: "DrillRecord", min_calls: int = 5) -> CheckResult:
    """The target kept calling the venue while the fault was active (so the fault met traffic)."""
    snaps = rec.fingerprint_midrun
    base = rec.fingerprint_before or {}
    if not snaps or not isinstance(base, dict):
        return CheckResult("sustained_call_pressure", None, "fingerprint not captured before and during the fault")
    before = base.get("api_calls", 0)
    during = snaps[-1]["content"].get("api_calls", 0)
    # Too little traffic means the fault met no calls: the drill proves nothing (the seeds' C2.2), not a failure.
    return CheckResult("sustained_call_pressure", True if during - before >= min_calls else None,
                       f"api_calls {before} before the fault, {during} during it (need ≥{min_calls} more)")


def _trade_counters(doc: Any) -> dict[str, int] | None:
    """The ``trades`` counters of an execution fingerprint (``processed``, ``duplicates_dropped``), or None."""
    t = doc.get("trades") if isinstance(doc, dict) else None
    if not isinstance(t, dict):
        return None
    vals = {k: t.get(k) for k in ("processed", "duplicates_dropped")}
    if any(isinstance(v, bool) or not isinstance(v, int) for v in vals.values()):
        return None
    return vals  # type: ignore[return-value]


@needs("files.fingerprint")
def no_duplicate_trade_processing(rec: "DrillRecord") -> CheckResult:
    """No duplicate trade processing: every trade message the venue repeated (same tradeId, the fault's
    proof) shows in the target's execution_fingerprint.json as dropped, not processed.

    Reads ``trades.duplicates_dropped`` before the fault (steady state) and at the end of the drill: it must
    have risen by at least the number of repeated messages the venue wrote. NOT PROVEN when the fault
    repeated no trade id, or when the target's fingerprint offers no ``trades`` counters.
    """
    name = "no_duplicate_trade_processing"
    s = rec.step
    detail = (s.proof.get("detail") if s is not None and isinstance(s.proof, dict) else None) or {}
    ids = detail.get("repeated_trade_ids") or []
    per_socket, sockets = detail.get("repeats_per_socket"), detail.get("sockets")
    if not ids or not isinstance(per_socket, int) or not isinstance(sockets, int) or per_socket * sockets < 1:
        return CheckResult(name, None, "the fault repeated no trade id (use venue.trades_gap mode repeat or skip_repeat): "
                           "the criterion was not exercised")
    repeats = per_socket * sockets
    before = _trade_counters(rec.fingerprint_before)
    after_doc = rec.files.get("fingerprint")
    if not isinstance(after_doc, dict) and rec.fingerprint_midrun:
        after_doc = rec.fingerprint_midrun[-1]["content"]
    after = _trade_counters(after_doc)
    if before is None or after is None:
        return CheckResult(name, None, "the target's execution_fingerprint.json offers no trades counters "
                           "(trades.processed, trades.duplicates_dropped) "
                           f"{'before the fault' if before is None else 'at the end'}: duplicate processing not provable "
                           "(the venue cannot see what a service does with a trade it received; add the optional "
                           "trades counters, docs/targets.md, execution_fingerprint.json)")
    dropped = after["duplicates_dropped"] - before["duplicates_dropped"]
    processed = after["processed"] - before["processed"]
    said = (f"the venue repeated tradeId {', '.join(map(str, ids))} {repeats} time(s); the target's trades.duplicates_dropped "
            f"{before['duplicates_dropped']} → {after['duplicates_dropped']} (+{dropped}), trades.processed +{processed}")
    if dropped < repeats:
        return CheckResult(name, False, f"{said}: {repeats - dropped} repeated trade(s) not dropped, so processed twice",
                           facts={"trades_repeated": repeats, "trades_duplicates_dropped": dropped})
    return CheckResult(name, True, f"{said}: every repeat dropped",
                       facts={"trades_repeated": repeats, "trades_duplicates_dropped": dropped})
