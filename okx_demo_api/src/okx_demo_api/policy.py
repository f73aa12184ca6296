"""PolicyGuard: resolves trading_mode, risk_state and ordered, tier-pure mode_reasons from its inputs.

The reason-code order comes from the contract manifest (``TARGET_REASON_MANIFEST``): the
manifest lists each tier in precedence order and the contract requires ``mode_reasons`` to be a
subsequence of it. Kill beats ReduceOnly beats Active. A token that is not in the manifest is a
contract violation: the guard fails closed to Kill (``KILL_CORTEX_FORCE_KILL``) and stays there until
the process restarts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

ACTIVE, REDUCE_ONLY, KILL = "Active", "ReduceOnly", "Kill"
HEALTHY, DEGRADED, MAINTENANCE = "Healthy", "Degraded", "Maintenance"

LATCHED = "REDUCEONLY_OPEN_PERMISSION_LATCHED"
RISK_DEGRADED = "REDUCEONLY_RISKSTATE_DEGRADED"
RISK_MAINTENANCE = "REDUCEONLY_RISKSTATE_MAINTENANCE"
FORCE_KILL = "KILL_CORTEX_FORCE_KILL"


@dataclass(frozen=True)
class Manifest:
    """The parts of the reason-code manifest the service needs, in manifest order."""
    contract_version: str
    kill: tuple[str, ...]
    reduce_only: tuple[str, ...]
    latch: tuple[str, ...]
    owner_states: tuple[str, ...]
    info: dict[str, dict] = field(default_factory=dict)  # code -> {"display", "unblock": {type, condition}}

    @classmethod
    def load(cls, path: Path | str) -> "Manifest":
        """Load the manifest file (``TARGET_REASON_MANIFEST``, given by the target file)."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    @classmethod
    def from_dict(cls, doc: dict) -> "Manifest":
        reg = doc["registries"]
        mode = reg["ModeReasonCode"]
        info: dict[str, dict] = {}

        def codes(entries: Iterable) -> tuple[str, ...]:
            out = []
            for e in entries:
                if isinstance(e, str):
                    out.append(e)
                else:
                    out.append(e["code"])
                    info[e["code"]] = {"display": e.get("display", e["code"]),
                                       "unblock": e.get("unblock") or {},
                                       "latched": bool(e.get("latched", False))}
            return tuple(out)

        return cls(
            contract_version=str(doc["contract_version"]),
            kill=codes(mode["Kill"]),
            reduce_only=codes(mode["ReduceOnly"]),
            latch=codes(reg["OpenPermissionReasonCode"]["values"]),
            owner_states=codes(reg.get("OwnerStateCode", {}).get("values", [])),
            info=info,
        )

    def display(self, code: str) -> str:
        return self.info.get(code, {}).get("display", code)

    def unblock(self, code: str) -> dict:
        return self.info.get(code, {}).get("unblock", {})

    def order_latch(self, codes: Iterable[str]) -> list[str]:
        """Latch codes in manifest order (unknown codes are refused by the latch, never reach here)."""
        s = set(codes)
        return [c for c in self.latch if c in s]


@dataclass(frozen=True)
class Decision:
    """The resolved policy: what /status reports and what the dispatcher enforces."""
    trading_mode: str
    risk_state: str
    mode_reasons: tuple[str, ...]

    def allows(self, reduce_only: bool, exposure_before: float, exposure_after: float) -> bool:
        """May an order leave the process?

        Active: everything. ReduceOnly: only reduceOnly orders. Kill: only risk-reducing orders while
        exposure is not zero (capital supremacy: Kill must still allow flattening).
        """
        if self.trading_mode == ACTIVE:
            return True
        if self.trading_mode == REDUCE_ONLY:
            return reduce_only
        return reduce_only and exposure_before > 0 and exposure_after < exposure_before


@dataclass
class Inputs:
    """What the service knows; the guard turns it into a Decision."""
    risk_state: str = HEALTHY
    latched: bool = False
    reasons: set[str] = field(default_factory=set)  # tokens raised by subsystems (mode-reason codes)


class PolicyGuard:
    """Resolves Decisions from Inputs in manifest order; fails closed on unknown tokens (sticky Kill)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._kill_rank = {c: i for i, c in enumerate(manifest.kill)}
        self._ro_rank = {c: i for i, c in enumerate(manifest.reduce_only)}
        self.sticky_kill: set[str] = set()
        self.unknown_tokens: list[str] = []

    def is_known(self, token: str) -> bool:
        return token in self._kill_rank or token in self._ro_rank

    def ingest_unknown(self, token: str) -> None:
        """A subsystem emitted a token not in the manifest: Kill until restart."""
        self.unknown_tokens.append(token)
        self.sticky_kill.add(FORCE_KILL)

    def resolve(self, inputs: Inputs) -> Decision:
        """Kill beats ReduceOnly beats Active; reasons tier-pure and in manifest order."""
        kill: set[str] = set(self.sticky_kill)
        ro: set[str] = set()
        for tok in inputs.reasons:
            if tok in self._kill_rank:
                kill.add(tok)
            elif tok in self._ro_rank:
                ro.add(tok)
            else:
                # Fail closed: an unmapped token can never be shown, so it forces Kill.
                self.ingest_unknown(tok)
                kill.add(FORCE_KILL)
        risk = inputs.risk_state if inputs.risk_state in (HEALTHY, DEGRADED, MAINTENANCE) else DEGRADED
        if risk == DEGRADED:
            ro.add(RISK_DEGRADED)
        elif risk == MAINTENANCE:
            ro.add(RISK_MAINTENANCE)
        if inputs.latched:
            ro.add(LATCHED)
        if kill:
            return Decision(KILL, risk, tuple(sorted(kill, key=self._kill_rank.__getitem__)))
        if ro:
            return Decision(REDUCE_ONLY, risk, tuple(sorted(ro, key=self._ro_rank.__getitem__)))
        return Decision(ACTIVE, risk, ())
