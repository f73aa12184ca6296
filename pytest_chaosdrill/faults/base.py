"""The fault trigger interface: a trigger fires, proves that it landed, releases; plus the helpers
every family shares (parameter checks, a record as a dict, the requirements of a kind)."""
from __future__ import annotations

import inspect
import json
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Mapping

from ..errors import FaultNotLanded

if TYPE_CHECKING:  # pragma: no cover
    from ..context import DrillContext


class Trigger:
    """Base class. ``fire`` injects, ``wait_landed`` returns proof or raises, ``release`` undoes."""

    kind = ""
    #: True when the fault is caused through a target-side hook; evidence says so.
    target_side_hook = False
    #: True when the trigger stops or restarts the target itself.
    manages_target = False
    #: Backend capabilities the trigger needs.
    requires: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> list[str]:
        """Problems with ``params`` (a drill's ``trigger.params``), found before anything starts."""
        return []

    @classmethod
    def needs(cls, params: dict[str, Any]) -> list[str]:
        """Target-file fields the trigger needs (``files.stop``, ``hooks.<name>``)."""
        return []

    def __init__(self, ctx: "DrillContext", params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params
        self.landed_mono: float | None = None
        #: When the condition itself ended (None: at release). One-shot faults end as they land.
        self.condition_ended_mono: float | None = None
        self.proof: dict[str, Any] = {}

    def describe(self) -> str:
        return f"{self.kind} {json.dumps(self.params, sort_keys=True)}"

    def fire(self) -> dict[str, Any]:
        raise NotImplementedError

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        raise NotImplementedError

    def release(self) -> dict[str, Any]:
        return {}

    def finalize(self) -> None:
        """Called once before the assertions: refresh facts that settle after release."""


def record_dict(record: Any) -> dict[str, Any]:
    if record is None:
        return {}
    if isinstance(record, dict):
        return dict(record)
    if hasattr(record, "to_dict"):
        return record.to_dict()
    if hasattr(record, "__dataclass_fields__"):
        return asdict(record)
    return dict(vars(record))


def start_hold_proof(venue: Any, hold: Any, hold_s: float, released_mono: float,
                     first_sample: int | None) -> dict[str, Any]:
    """What a start-up hold of the venue's REST answers (``hold_reconcile_s``) really did, from the venue's
    own record after the release (never the request alone): a hold that delayed no answer is "not landed",
    ``held_s`` 0, and the proof says what it then left untested."""
    final = next((f for f in venue.faults() if f.id == hold.id), hold)
    record = record_dict(final)
    landed = bool(record.get("landed"))
    started = record.get("requested_mono")
    proof: dict[str, Any] = {
        "venue_rest_latency": record, "requested_s": hold_s, "landed": landed,
        "delayed_requests": int((record.get("detail") or {}).get("delayed_requests", 0)),
        "held_s": round(released_mono - started, 3) if landed and isinstance(started, (int, float)) else 0.0,
        "released_mono": released_mono, "first_status_sample": first_sample}
    if not landed:
        proof["not_tested"] = ("not landed: the venue delayed no REST answer before the first status answer "
                               "after the restart, so the start-up latch was observable only if the target "
                               "was still latched when first sampled")
    return proof


def known_params(params: dict[str, Any], known: dict[str, Any]) -> list[str]:
    problems = [f"unknown parameter {k!r}; known: {', '.join(sorted(known)) or 'none'}" for k in params if k not in known]
    problems += [f"parameter {k!r} must be {getattr(t, '__name__', 'a number')}, got {params[k]!r}"
                 for k, t in known.items() if k in params and not isinstance(params[k], t)]
    return problems


class BackendFault(Trigger):
    """A fault the backend applies to the target's process or container; the proof is what the
    backend reads back (the kernel's process state, the engine's ``docker inspect``)."""

    apply = ""            # backend method that injects and returns its proof
    undo = ""             # backend method that releases
    proof_key = "proven"  # the proof's own verdict

    def fire(self) -> dict[str, Any]:
        fn = getattr(self.ctx.target, self.apply, None)
        if fn is None:
            raise FaultNotLanded(f"backend {self.ctx.target.backend!r} cannot {self.apply.replace('_', ' ')}")
        self.info = fn()
        return self.info

    def wait_landed(self, timeout: float) -> dict[str, Any]:
        if not self.info.get(self.proof_key):
            raise FaultNotLanded(f"{self.kind} not confirmed by the backend: {self.info}")
        self.landed_mono = self.info.get("mono", time.monotonic())
        self.proof = self.info
        return self.proof

    def release(self) -> dict[str, Any]:
        return getattr(self.ctx.target, self.undo)()


TriggerFactory = Callable[["DrillContext", dict[str, Any]], Trigger]


def param_names(fn: Callable[..., Any]) -> str:
    names = [p for p in inspect.signature(fn).parameters if p not in ("self", "rec", "record")]
    return ", ".join(names) or "no parameters"


def requirements(factory: Any, params: dict[str, Any]) -> tuple[frozenset[str], list[str], list[str]]:
    """(backend capabilities, target-file needs, parameter problems) of a trigger kind's factory."""
    caps = frozenset(getattr(factory, "requires", frozenset()))
    if hasattr(factory, "requires_for"):  # capabilities that depend on the parameters (a schedule's steps)
        caps |= frozenset(factory.requires_for(params))
    needs = list(getattr(factory, "needs", lambda p: [])(params))
    check = getattr(factory, "check_params", None)
    problems = list(check(params)) if check is not None else []
    return caps, needs, problems


class CompositeKind:
    """The factory of a trigger kind made of other kinds of the session's trigger table (a schedule; the
    exploration driver's parameter check reuses it): it needs every backend capability and target-file
    field its parts need. ``table`` is
    the session's table (plugins' kinds included: the hook completes it after this factory is made)."""

    kind = ""
    requires: frozenset[str] = frozenset()
    #: capabilities needed whatever the parts are
    base_requires: frozenset[str] = frozenset()

    def __init__(self, table: Mapping[str, Any]) -> None:
        self.table = table

    def parts(self, params: Mapping[str, Any]) -> Iterable[tuple[Any, dict[str, Any]]]:
        """The (kind, params) pairs the drill's ``params`` name."""
        return ()

    def _parts_requirements(self, params: Mapping[str, Any]) -> tuple[frozenset[str], list[str]]:
        caps, needs = set(self.base_requires), []
        for kind, part_params in self.parts(params):
            factory = self.table.get(kind)
            if factory is not None:
                part_caps, part_needs, _ = requirements(factory, part_params)
                caps |= part_caps
                needs += part_needs
        return frozenset(caps), list(dict.fromkeys(needs))

    def requires_for(self, params: dict[str, Any]) -> frozenset[str]:
        return self._parts_requirements(params)[0]

    def needs(self, params: dict[str, Any]) -> list[str]:
        return self._parts_requirements(params)[1]


def jsonable(answer: Any) -> Any:
    """A trigger's answer (what it requested, its proof, its release) as the record keeps it: itself when
    it is JSON, else its JSON form with everything else as text."""
    try:
        json.dumps(answer)
        return answer
    except (TypeError, ValueError):
        return json.loads(json.dumps(answer, default=str))
