"""Target-side hooks: ``hook.apply`` (the service causes the physical condition itself; the evidence says
so) and a drill's occasion hook (a command that gives the service a reason to show a criterion)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..timeline import wait_until
from .base import FaultNotLanded, Trigger, known_params


#: The answers a service may log to an occasion hook (docs/targets.md, "Occasion hooks").
OCCASION_ANSWERS = ("applied", "refused")


def write_hook_file(path: Path, content: str) -> None:
    """Write a hook's control file atomically (``<file>.tmp`` then rename): the service never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


def hook_log_entries(log: str | None) -> list[dict[str, Any]]:
    """The JSON-object lines of the service's hooks log (other lines skipped); [] when there is none yet."""
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


def first_answer(entries: list[dict[str, Any]], hook: str, events: tuple[str, ...], since: float) -> dict[str, Any] | None:
    """The first line for ``hook`` with an ``event`` in ``events`` and a numeric ``mono`` at or after ``since``."""
    for e in entries:
        mono = e.get("mono")
        if e.get("hook") == hook and e.get("event") in events and isinstance(mono, (int, float)) \
                and not isinstance(mono, bool) and mono >= since:
            return e
    return None


class OccasionHook:
    """A drill's occasion (``occasion: {hook: ...}`` in the drill file): once OPEN is seen blocked the drill
    writes the hook's control file, and the service answers in its hooks log, ``applied`` (it acts: e.g. it
    sends reduce-only orders now) or ``refused`` (its own rules refused). Optional: a target file that does
    not declare the hook gets none, and the criterion it serves may then end NOT PROVEN."""

    def __init__(self, rendered: Any, spec: dict[str, Any]) -> None:
        self.hook = str(spec["hook"])
        self.answer_timeout_s = float(spec.get("answer_timeout_s", 2.0))
        self.hold_after_s = float(spec.get("hold_after_s", 1.0))
        self.log = rendered.hooks_log
        hook = rendered.hooks.get(self.hook)
        self.file = Path(hook.file) if hook is not None else None
        self.content = str(hook.content) if hook is not None else ""
        self.fired_mono: float | None = None
        self.answer: dict[str, Any] | None = None

    @property
    def usable(self) -> bool:
        """The target file declares the hook and a hooks log to answer in."""
        return self.file is not None and bool(self.log)

    def fire(self) -> None:
        assert self.file is not None
        self.fired_mono = time.monotonic()
        write_hook_file(self.file, self.content)

    def poll(self) -> dict[str, Any] | None:
        """The service's answer, once it is in the hooks log."""
        if self.answer is None and self.fired_mono is not None:
            self.answer = first_answer(hook_log_entries(self.log), self.hook, OCCASION_ANSWERS, self.fired_mono)
        return self.answer

    def deadline(self) -> float:
        """Until when the fault is held for this occasion: the answer plus ``hold_after_s``; unanswered,
        the answer timeout (then the fault goes as planned and the record says it went unanswered)."""
        assert self.fired_mono is not None
        if self.answer is not None:
            return float(self.answer["mono"]) + (self.hold_after_s if self.answer.get("event") == "applied" else 0.0)
        return self.fired_mono + self.answer_timeout_s

    def finish(self) -> dict[str, Any]:
        """The record's ``occasion``: what was declared, written and answered (the file removed if still there)."""
        out: dict[str, Any] = {"hook": self.hook, "declared": self.file is not None, "hooks_log": bool(self.log)}
        if self.fired_mono is None:
            return out
        self.poll()
        removed = False
        if self.file is not None and self.file.exists():
            self.file.unlink(missing_ok=True)
            removed = True
        out.update(fired_mono=self.fired_mono, file=str(self.file), file_removed=removed,
                   answer_timeout_s=self.answer_timeout_s, hold_after_s=self.hold_after_s)
        if self.answer is not None:
            out.update(answer=self.answer.get("event"), answer_mono=float(self.answer["mono"]),
                       detail=self.answer.get("detail"))
        else:
            out["answer"] = None
        return out


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
        content = str(self.params.get("content", spec.content))
        self.fired_mono = time.monotonic()
        write_hook_file(self.path, content)
        return {"hook": name, "file": str(self.path), "content": content}

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        def applied() -> dict[str, Any] | None:
            return first_answer(hook_log_entries(self.ctx.rendered.hooks_log), self.hook, ("applied",), self.fired_mono)

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
