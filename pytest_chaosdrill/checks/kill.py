"""Checks of the Kill state: it holds until a restart, capital comes first, an unregistered drift token is refused."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..contract import Contract
from .base import CheckResult, fault_origin, fmt_orders
from .ledger import exposure_at, is_open, ledger_orders

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord
    from ..timeline import Sample


def _kill_window(rec: "DrillRecord") -> tuple["Sample | None", float]:
    """The first Kill sample after the trigger, and when Kill could legitimately end (the restart)."""
    first = rec.timeline.first(lambda s: s.ok and s.status.get("trading_mode") == "Kill", start=rec.t_trigger)
    restart = rec.timeline.get_mark("restart")
    end = restart.mono if first and restart and restart.mono > first.mono else rec.t_end
    return first, end


def stays_kill(rec: "DrillRecord") -> CheckResult:
    """Once Kill, the target never resumes on its own (until it is restarted)."""
    first, end = _kill_window(rec)
    if first is None:
        return CheckResult("stays_kill", False, "Kill was never observed")
    after = [s for s in rec.timeline.between(first.mono, end) if s.ok]
    resumed = [s for s in after if s.status.get("trading_mode") != "Kill"]
    if resumed:
        return CheckResult("stays_kill", False, f"left Kill without a restart at sample {resumed[0].i} "
                           f"({resumed[0].status.get('trading_mode')})")
    return CheckResult("stays_kill", True, f"Kill held for {(end - first.mono):.1f}s over {len(after)} samples "
                       f"(after the hook was released) until the restart")


def capital_supremacy(rec: "DrillRecord", grace_ms: float = 100.0) -> CheckResult:
    """Kill still allows risk-reducing actions if exposure is not zero: in Kill no order may add exposure,
    and a risk-reducing order reached the venue.

    Precondition: the venue held a position when the fault landed (else NOT PROVEN: capital supremacy was
    not exercised). Risk-reducing orders count by the venue's receive time from the fault's landing, so a
    flatten sent at once (before the first Kill sample is seen) counts; exposure-adding orders count from
    the first Kill answer plus ``grace_ms`` for orders already on the wire.
    """
    first, end = _kill_window(rec)
    if first is None:
        return CheckResult("capital_supremacy", None, "Kill was never observed")
    origin = fault_origin(rec)
    origin = first.sent_mono if origin is None else min(origin, first.sent_mono)
    opens = [o for o in ledger_orders(rec.ledger, first.mono + grace_ms / 1000, end) if is_open(o)]
    if opens:
        return CheckResult("capital_supremacy", False, f"{len(opens)} exposure-adding order(s) in Kill: {fmt_orders(opens)}",
                           facts={"capital_supremacy_exercised": True})
    exposure = exposure_at(rec.ledger, origin) or 0.0
    if exposure <= 1e-9:
        return CheckResult("capital_supremacy", None, "exposure 0.0 when the fault landed: nothing to reduce in Kill, "
                           "capital supremacy not exercised", facts={"capital_supremacy_exercised": False})
    reduces = [o for o in ledger_orders(rec.ledger, origin, end) if o.get("effect") == "reduce"
               and o.get("accepted", True) is not False]
    if not reduces:
        return CheckResult("capital_supremacy", False, f"exposure {exposure} at Kill, but no risk-reducing order reached "
                           f"the venue in {(end - origin):.1f}s of Kill", facts={"capital_supremacy_exercised": True})
    return CheckResult("capital_supremacy", True, f"exposure {exposure} at Kill; {len(reduces)} risk-reducing order(s) "
                       f"(first {(reduces[0]['mono'] - origin) * 1000:.0f} ms after the fault) and no exposure-adding "
                       "order in Kill", facts={"capital_supremacy_exercised": True})


def registry_drift_blocked(rec: "DrillRecord", token: str = "KILL_UNREGISTERED_DRIFT_TOKEN") -> CheckResult:
    """Drill 8, trigger A: a fake token in the contract inputs makes the contract checks fail."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = json.loads(Path(rec.contract["manifest"]).read_text(encoding="utf-8"))
        manifest["registries"]["ModeReasonCode"]["Kill"].append(
            {"code": token, "display": "injected by drill 8", "latched": True,
             "unblock": {"type": "MANUAL", "condition": "never"}})
        tampered = Path(tmp) / "manifest.json"
        tampered.write_text(json.dumps(manifest), encoding="utf-8")
        schema = Path(tmp) / "schema.json"
        shutil.copy(rec.contract["schema"], schema)
        drift = Contract.load(schema, tampered).registry_findings
    last = rec.timeline.last_ok()
    observed = dict(last.status if last else {})
    observed["mode_reasons"] = list(observed.get("mode_reasons") or []) + [token]
    findings = Contract.load(rec.contract["schema"], rec.contract["manifest"]).check(observed)
    named = [f for f in drift if token in f.message]
    ok = bool(named) and bool(findings)
    return CheckResult("registry_drift_blocked", ok,
                       f"manifest with fake token {token}: {len(named)} registry finding(s) naming it; "
                       f"status carrying it: {sorted({f.tag for f in findings})}")
