"""The "cortex" signal module: a subsystem that emits reason tokens into the PolicyGuard's inputs.

Known tokens become mode reasons (latched ones stick until restart, the others expire after
``HOLD_S`` unless emitted again). A token that is not in the manifest is a registry drift: the guard
fails closed to Kill (``KILL_CORTEX_FORCE_KILL``) for the rest of the process's life.
"""
from __future__ import annotations

import time

from .policy import PolicyGuard

HOLD_S = 3.0


class Cortex:
    def __init__(self, guard: PolicyGuard) -> None:
        self.guard = guard
        self._held: dict[str, float | None] = {}  # token -> expiry (monotonic) or None (sticky)

    def emit(self, token: str) -> dict:
        """Feed ``token`` to the guard; returns what happened (for the hook log)."""
        token = token.strip()
        known = self.guard.is_known(token)
        if not known:
            self.guard.ingest_unknown(token)
            effect = "unknown_token_force_kill"
        else:
            latched = bool(self.guard.manifest.info.get(token, {}).get("latched", False))
            self._held[token] = None if latched else time.monotonic() + HOLD_S
            effect = "reason_raised"
        return {"token": token, "known": known, "effect": effect, "mono": time.monotonic()}

    def reasons(self) -> set[str]:
        now = time.monotonic()
        for tok, exp in list(self._held.items()):
            if exp is not None and exp < now:
                del self._held[tok]
        return set(self._held)
