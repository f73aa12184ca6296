"""Fault records and the registry of requested/active venue faults.

A fault is *requested* when a drill asks for it and *effective* (landed) only when it physically
happened on a socket or an HTTP answer; the venue code that performs it calls
:meth:`FaultRegistry.land`. Parameter names follow the HTTP control API (``instId``, ``skip``, ...).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from .ledger import Ledger, utc_iso
from .market import INSTRUMENTS

FAULT_KINDS = ("book_gap", "trades_gap", "freeze", "lag", "session_termination", "allow_reauth",
               "partial_fill", "rate_limit", "http_5xx", "rest_latency", "clock_skew", "recon_hold", "clear")
#: the public channels a freeze can silence (default: all of them)
CHANNELS = ("books", "books5", "bbo-tbt", "tickers", "trades")
#: how a session termination happens, both OKX's own: the API key revoked (close 4007, logins refused
#: with 60005 meanwhile) or a service upgrade (a ``notice`` 64008, then a close; logins refused with 60009).
TERMINATION_MECHANISMS = ("key_revoked", "service_upgrade")
#: trades_gap modes: lose one push of ``count`` trade ids (tradeId jumps beyond what the next push's
#: ``count`` explains); send two pushes out of order; deliver one push ``count`` extra times (a repeated
#: tradeId, no gap); lose a push and deliver the next one twice (a gap and a repeated tradeId).
TRADES_GAP_MODES = ("skip", "reorder", "repeat", "skip_repeat")

Stamp = tuple[float, float]  # (time.monotonic(), time.time()) of one instant


def stamp() -> Stamp:
    """Now, on both clocks."""
    return time.monotonic(), time.time()


@dataclass
class FaultRecord:
    """One requested fault and, once it took effect, when (``effective_*``) and what it did (``detail``)."""

    id: str
    kind: str
    params: dict[str, Any]
    requested_mono: float
    requested_utc: str
    effective_mono: float | None = None
    effective_utc: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    active: bool = True                 # still in force (or still waiting to act)
    ended_mono: float | None = None
    ended_utc: str | None = None

    @property
    def landed(self) -> bool:
        """True once the fault physically took effect."""
        return self.effective_mono is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the record, with ``landed``."""
        d = asdict(self)
        d["landed"] = self.landed
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FaultRecord":
        """Rebuild a record from :meth:`to_dict` output (unknown keys ignored)."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})

    def copy(self) -> "FaultRecord":
        """An independent copy (safe to hand to another thread)."""
        return FaultRecord.from_dict(self.to_dict())


def _num(params: dict, key: str, default: Any, *, minimum: float = 0, integer: bool = False,
         optional: bool = False) -> Any:
    v = params.get(key, default)
    if v is None:
        if optional:
            return None
        raise ValueError(f"{key} is required")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{key} must be a number, got {v!r}")
    if integer and int(v) != v:
        raise ValueError(f"{key} must be an integer, got {v!r}")
    if v < minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {v!r}")
    return int(v) if integer else float(v)


def normalize_params(kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a fault request's parameters and fill in defaults; raises ValueError with the reason."""
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    p = dict(params or {})
    if kind in ("book_gap", "trades_gap"):
        inst = p.get("instId", "BTC-USDT-SWAP")
        if inst not in INSTRUMENTS:
            raise ValueError(f"unknown instId {inst!r}; expected one of {sorted(INSTRUMENTS)}")
        if kind == "book_gap":
            return {"instId": inst, "skip": _num(p, "skip", 5, minimum=1, integer=True)}
        mode = p.get("mode", "skip")
        if mode not in TRADES_GAP_MODES:
            raise ValueError(f"mode must be one of {', '.join(repr(m) for m in TRADES_GAP_MODES)}, got {mode!r}")
        return {"instId": inst, "mode": mode, "count": _num(p, "count", 3, minimum=1, integer=True)}
    if kind == "freeze":
        chans = p.get("channels", list(CHANNELS))
        if isinstance(chans, str):
            chans = [chans]
        if not chans or any(c not in CHANNELS for c in chans):
            raise ValueError(f"channels must be a non-empty subset of {CHANNELS}, got {chans!r}")
        return {"channels": sorted(set(chans))}
    if kind == "lag":
        return {"ms": _num(p, "ms", None, minimum=1, integer=True)}
    if kind == "session_termination":
        mech = p.get("mechanism", "key_revoked")
        if mech not in TERMINATION_MECHANISMS:
            raise ValueError(f"mechanism must be one of {', '.join(repr(m) for m in TERMINATION_MECHANISMS)}, got {mech!r}")
        return {"refuse_reauth_s": _num(p, "refuse_reauth_s", 2.0, optional=True), "mechanism": mech}
    if kind in ("rate_limit", "http_5xx"):
        return {"requests": _num(p, "requests", None, minimum=1, integer=True, optional=True),
                "seconds": _num(p, "seconds", None, optional=True)}
    if kind in ("rest_latency", "recon_hold"):
        return {"ms": _num(p, "ms", None, minimum=1, integer=True),
                "seconds": _num(p, "seconds", None, optional=True)}
    if kind == "clock_skew":
        offset = p.get("offset_s")
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or offset == 0:
            raise ValueError(f"offset_s must be a non-zero number of seconds, got {offset!r}")
        return {"offset_s": float(offset), "seconds": _num(p, "seconds", None, optional=True)}
    if kind == "clear":
        k = p.get("kind")
        if k is not None and k not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {k!r} to clear")
        return {"kind": k}
    return {}  # allow_reauth, partial_fill


def waiting_for(kind: str, params: dict[str, Any]) -> str:
    """What has to happen for a fault of this kind to land (shown when wait_landed times out)."""
    return {
        "book_gap": f"a books update for {params.get('instId')} written to a subscribed public socket",
        "trades_gap": f"a trades message for {params.get('instId')} written to a subscribed public socket",
        "freeze": f"a tick withheld from a public socket subscribed to {params.get('channels')}",
        "lag": "a delayed message written to a subscribed public socket",
        "session_termination": "a logged-in private socket to close (none was logged in when requested)",
        "partial_fill": "a two-leg batch-orders request whose leg A fills and leaves exposure",
        "rate_limit": "a REST request to answer with 429",
        "http_5xx": "a REST request to answer with 503",
        "rest_latency": "a REST request to delay",
        "clock_skew": "a signed REST request or WebSocket login refused for its timestamp (50102 / 60006)",
        "recon_hold": "a reconciliation read (positions, pending orders) to hold",
    }.get(kind, "")


class FaultRegistry:
    """All fault records of one venue, in request order. Loop-confined like the rest of the core."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.records: list[FaultRecord] = []
        self._next_id = 1

    def new(self, kind: str, params: dict[str, Any] | None) -> FaultRecord:
        """Validate and register a fault request (not yet landed)."""
        norm = normalize_params(kind, params)
        rec = FaultRecord(id=f"f{self._next_id}", kind=kind, params=norm, requested_mono=time.monotonic(),
                          requested_utc=utc_iso())
        self._next_id += 1
        if kind not in ("allow_reauth", "clear"):  # those act at once
            rec.detail["waiting_for"] = waiting_for(kind, norm)
        self.records.append(rec)
        return rec

    def land(self, rec: FaultRecord, at: "Stamp | None" = None, **detail: Any) -> None:
        """Mark ``rec`` effective (first call only) and witness it in the ledger.

        ``at`` is the moment the physical act began (see :func:`stamp`), taken *before* the write so
        that the effective time is never later than the moment a client could have seen it.
        """
        rec.detail.update(detail)
        if rec.landed:
            return
        mono, wall = at if at is not None else stamp()
        rec.effective_mono = mono
        rec.effective_utc = utc_iso(wall)
        rec.detail.pop("waiting_for", None)
        self._ledger.append("fault", **{k: v for k, v in rec.to_dict().items() if k not in ("active",)})

    def end(self, rec: FaultRecord) -> None:
        """Take ``rec`` out of force."""
        if rec.active:
            rec.active = False
            rec.ended_mono = time.monotonic()
            rec.ended_utc = utc_iso()

    def active(self, kind: str) -> list[FaultRecord]:
        """Records of ``kind`` still in force, oldest first."""
        return [r for r in self.records if r.kind == kind and r.active]

    def first(self, kind: str, pred: Callable[[FaultRecord], bool] | None = None) -> FaultRecord | None:
        """The oldest active record of ``kind`` (matching ``pred``), or None."""
        for r in self.records:
            if r.kind == kind and r.active and (pred is None or pred(r)):
                return r
        return None

    def get(self, fault_id: str) -> FaultRecord | None:
        """The record with this id, or None."""
        return next((r for r in self.records if r.id == fault_id), None)

    def expire(self, now: float) -> None:
        """End time-bounded faults whose time is up."""
        for r in self.records:
            if not r.active:
                continue
            seconds = r.params.get("seconds") if r.kind in ("rate_limit", "http_5xx", "rest_latency", "clock_skew") else None
            if r.kind == "session_termination":
                seconds = r.params.get("refuse_reauth_s")
            if seconds is not None and now - r.requested_mono >= seconds:
                self.end(r)

    def end_all(self, kinds: Iterable[str] | None = None) -> list[str]:
        """End every active fault (of the given kinds); returns their ids."""
        ended = []
        for r in self.records:
            if r.active and (kinds is None or r.kind in kinds):
                self.end(r)
                ended.append(r.id)
        return ended

    def clear(self) -> None:
        """Forget every record (venue reset)."""
        self.records.clear()
