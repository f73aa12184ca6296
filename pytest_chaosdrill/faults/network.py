"""Network faults: the target's container cut from the venue's network (``network.disconnect``), the
venue's hostname no longer resolving (``dns.failure``)."""
from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..backends.base import DNS, NETWORK_CUT
from .base import BackendFault, FaultNotLanded, Trigger, known_params

if TYPE_CHECKING:  # pragma: no cover
    from ..context import DrillContext


class NetworkDisconnect(BackendFault):
    """Disconnect the target's container from the network it shares with the venue (docker backend)."""

    kind, apply, undo, proof_key = "network.disconnect", "network_disconnect", "network_connect", "disconnected"
    requires = frozenset({NETWORK_CUT})


class DNSFailure(Trigger):
    """The venue's hostname stops resolving (``dns.failure``): the backend's DNS stub answers it with
    NXDOMAIN or SERVFAIL. Proof of landing is the stub's own count of failed lookups of that name
    rising by ``min_failed`` after the switch, i.e. the service really asked and was refused. Clients
    cache answers and keep connections open, so with ``reset_connections`` (default) the trigger also
    resets the target's open connections to the venue (a ``reset_peer`` toxic on the venue link, held
    until release) so that it must reconnect, and look the name up again."""

    kind = "dns.failure"
    requires = frozenset({DNS})
    PARAMS: ClassVar[dict[str, Any]] = {"mode": str, "min_failed": int, "reset_connections": bool}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = known_params(params, cls.PARAMS)
        if params.get("mode", "nxdomain") not in FAIL_MODES:
            problems.append(f"parameter 'mode' must be one of {', '.join(FAIL_MODES)}, got {params['mode']!r}")
        if isinstance(params.get("min_failed"), int) and params["min_failed"] < 1:
            problems.append(f"parameter 'min_failed' must be >= 1, got {params['min_failed']!r}")
        return problems

    def __init__(self, ctx: "DrillContext", params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.mode = params.get("mode", "nxdomain")
        self.min_failed = int(params.get("min_failed", 1))
        self.reset = bool(params.get("reset_connections", True))
        self.toxic: str | None = None
        self.before: dict[str, Any] = {}

    def _failed(self, state: dict[str, Any]) -> int:
        names = state.get("names") or {}
        counts = state.get("counts") or {}
        return sum(int((counts.get(n) or {}).get(self.mode, 0)) for n in names)

    def fire(self) -> dict[str, Any]:
        fn = getattr(self.ctx.target, "dns_fail", None)
        if fn is None:
            raise FaultNotLanded(f"backend {self.ctx.target.backend!r} has no DNS stub to fail")
        self.before = fn(self.mode)
        info: dict[str, Any] = {"mode": self.mode, "failed_before": self._failed(self.before),
                                "names": self.before.get("names")}
        if self.reset:
            toxic = self.ctx.proxy.add_toxic("reset_peer", timeout=0)
            self.toxic = toxic.get("name") if isinstance(toxic, dict) else getattr(toxic, "name", None)
            info["reset_toxic"] = self.toxic
        return info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        base = self._failed(self.before)
        deadline = time.monotonic() + timeout
        state = self.before
        while time.monotonic() < deadline:
            state = self.ctx.target.dns_state()
            failed = self._failed(state) - base
            if failed >= self.min_failed:
                self.landed_mono = time.monotonic()
                self.proof = {"mode": self.mode, "failed_lookups": failed, "stub_counts": state.get("counts"),
                              "names": state.get("names")}
                return self.proof
            time.sleep(0.02)
        raise FaultNotLanded(
            f"dns.failure: the stub refused {self._failed(state) - base} lookups of {sorted(state.get('names') or {})} "
            f"in {timeout:.1f} s (needed {self.min_failed}): the service never looked the venue's name up again "
            "(cached answer, or connections kept open)")

    def release(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.toxic:
            with contextlib.suppress(Exception):
                self.ctx.proxy.remove_toxic(self.toxic)
            out["reset_toxic_removed"] = self.toxic
        state = self.ctx.target.dns_restore()
        out.update({"mode": state.get("mode"), "stub_counts": state.get("counts")})
        return out


#: The stub's failing modes (pytest_chaosdrill.dnsstub.MODES less ``answer``; the stub is a leaf the
#: faults must not import, so the names are repeated and the unit test keeps them equal).
FAIL_MODES = ("nxdomain", "servfail")
