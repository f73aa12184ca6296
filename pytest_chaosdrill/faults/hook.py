"""Target-side hooks (``hook.apply``): the service causes the physical condition itself; the evidence says so."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..timeline import wait_until
from .base import FaultNotLanded, Trigger, known_params


class TargetHook(Trigger):
    """A documented target-side hook: a control file whose presence makes the target cause the physical
    condition (its removal releases it). Proof is the target's hook log saying the condition was applied."""

    kind = "hook.apply"
    target_side_hook = True

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        problems = known_params(params, {"hook": str, "content": str})
        if "hook" not in params:
            problems.append("'hook' is required (the name of a hook the target file declares under hooks)")
        return problems

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        return [f"hooks.{params.get('hook')}", "hooks_log"]

    def fire(self) -> dict[str, Any]:
        name = self.params["hook"]
        spec = self.ctx.rendered.hooks.get(name)
        if spec is None:
            raise FaultNotLanded(f"the target file declares no hook {name!r}; declared: {sorted(self.ctx.rendered.hooks)}")
        self.hook = name
        self.path = Path(spec.file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = str(self.params.get("content", spec.content))
        self.fired_mono = time.monotonic()
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, self.path)  # the target never sees a half-written hook file
        return {"hook": name, "file": str(self.path), "content": content}

    def _log_entries(self) -> list[dict[str, Any]]:
        log = self.ctx.rendered.hooks_log
        if not log or not Path(log).exists():
            return []
        out = []
        for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        def applied() -> dict[str, Any] | None:
            for e in self._log_entries():
                mono = e.get("mono")
                if e.get("hook") == self.hook and e.get("event") == "applied" and isinstance(mono, (int, float)) \
                        and mono >= self.fired_mono:
                    return e
            return None

        entry = wait_until(applied, timeout)
        if entry is None:
            raise FaultNotLanded(f"hook {self.hook!r}: file written but the target's hook log "
                                 f"({self.ctx.rendered.hooks_log}) never reported it applied within {timeout}s")
        self.landed_mono = float(entry["mono"])
        self.proof = {"hook_log_entry": entry, "file": str(self.path)}
        return self.proof

    def release(self) -> dict[str, Any]:
        removed = False
        if self.path.exists():
            self.path.unlink()
            removed = True
        return {"hook": self.hook, "file_removed": removed}
