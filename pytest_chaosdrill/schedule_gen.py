"""The schedules an exploring drill draws: its pool of faults, the timings a step may take (time offsets
after the step before it, or alignment to a venue event), and how Hypothesis's choices become a schedule.

A choice is ``(pool index, timing, params alternative, release alternative)``. Timings ``0 ..
len(offsets_s) - 1`` put the step that long after the one before it (the first step at 0); the timings
after them (drawn as often as the offsets, when ``align`` names events) align the step to an event of ``align`` (``recon_read``: fired while a reconciliation read is
outstanding at the venue, the moment a "code raised during an in-flight reconciliation" bug needs), no
earlier than the step before it. Hypothesis shrinks towards index 0 of each: the first offset, the first
parameter and release alternatives.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .schedule_steps import ALIGN_EVENTS

Choice = tuple[int, int, int, int]
#: the exploring drill's parameters this module reads
GEN_PARAMS = ("pool", "offsets_s", "align", "max_steps")


@dataclass(frozen=True)
class PoolEntry:
    """One trigger kind the explorer may draw, with its parameter and release alternatives (the first of
    each is the simplest: Hypothesis shrinks towards it)."""

    kind: str
    params: tuple[dict[str, Any], ...]
    release_after_s: tuple[float | None, ...] = (None,)
    code: Any = ...  # ... : the kind's default latch code

    @classmethod
    def parse(cls, d: Mapping[str, Any]) -> "PoolEntry":
        params = d.get("params", {})
        alts = tuple(dict(p) for p in (params if isinstance(params, list) else [params]))
        rel = d.get("release_after_s")
        rels = tuple(rel) if isinstance(rel, list) else (rel,)
        return cls(str(d["kind"]), alts or ({},), rels, d["code"] if "code" in d else ...)

    def step(self, at_s: float, p: int, r: int, align: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "params": dict(self.params[p]), "at_s": at_s}
        if align is not None:
            out["align"] = align
        if self.release_after_s[r] is not None:
            out["release_after_s"] = self.release_after_s[r]
        if self.code is not ...:
            out["code"] = self.code
        return out


def align_problems(params: Mapping[str, Any]) -> list[str]:
    """Problems with the exploring drill's ``align`` (a list of events; absent: time offsets only)."""
    align = params.get("align", [])
    if not isinstance(align, list) or any(a not in ALIGN_EVENTS for a in align):
        return [f"'align' must be a list of events a step can be aligned to ({', '.join(ALIGN_EVENTS)}), got {align!r}"]
    return []


class ScheduleGenerator:
    """The schedule space of one exploring drill's parameters (validated at collection)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.pool = [PoolEntry.parse(d) for d in params.get("pool", [])]
        self.offsets = [float(o) for o in params.get("offsets_s", [0.0])]
        self.align = [str(a) for a in params.get("align", [])]
        self.max_steps = int(params.get("max_steps", 4))

    @property
    def timings(self) -> int:
        """How many timings a step may take: the offsets, then the events."""
        return len(self.offsets) + len(self.align)

    def steps_of(self, choices: tuple[Choice, ...]) -> list[dict[str, Any]]:
        """The schedule of drawn choices (a valid ``steps`` list of a ``schedule`` drill)."""
        steps: list[dict[str, Any]] = []
        at = 0.0
        for n, (k, o, p, r) in enumerate(choices):
            event = None
            if o < len(self.offsets):
                at = round(at + (self.offsets[o] if n else 0.0), 3)
            else:
                event = self.align[o - len(self.offsets)]  # at the previous step's offset, then the event
            steps.append(self.pool[k].step(at, p, r, event))
        return steps

    def strategy(self, st: Any) -> Any:
        """Hypothesis's strategy for choices: 1 to ``max_steps`` steps of distinct pool kinds."""
        offsets = st.integers(0, len(self.offsets) - 1)
        # as often a moment as a time (a drawn branch, not one value among the offsets): the moments are
        # where the narrow bugs are; offsets come first, so a failure shrinks towards a plain time offset
        timing = st.one_of(offsets, st.integers(len(self.offsets), self.timings - 1)) if self.align else offsets

        def entry(k: int) -> Any:
            e = self.pool[k]
            return st.tuples(st.just(k), timing, st.integers(0, len(e.params) - 1),
                             st.integers(0, len(e.release_after_s) - 1))

        one = st.integers(0, len(self.pool) - 1).flatmap(entry)
        return st.lists(one, min_size=1, max_size=self.max_steps, unique_by=lambda c: c[0]).map(tuple)
