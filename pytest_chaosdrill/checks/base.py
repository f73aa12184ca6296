"""What a check returns (:class:`CheckResult`), how it declares the target-file fields it reads, and
the helpers the families share."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from ..record import DrillRecord


@dataclass
class CheckResult:
    name: str
    passed: bool | None
    detail: str
    criterion: str = ""
    #: Facts the check established, for reports (e.g. whether Kill had exposure to reduce).
    facts: dict[str, Any] = field(default_factory=dict)
    #: The check itself broke (it raised): the traceback's last line. A harness ERROR, not the target's.
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        return {True: "PASS", False: "FAIL", None: "NOT PROVEN"}[self.passed]


Check = Callable[..., CheckResult]


def needs(*fields: str) -> Callable[[Check], Check]:
    """Declare the target-file fields a check reads (``@needs("files.run_manifest")``): a drill naming
    the check against a target file without them ends NOT PROVEN before the service starts."""
    def mark(fn: Check) -> Check:
        fn.needs = tuple(fields)  # type: ignore[attr-defined]
        return fn
    return mark


def fault_origin(rec: "DrillRecord") -> float | None:
    """When the fault took effect (the step's landing), else the trigger: exposure is judged from here,
    so an order sent between the landing and the first safe sample (a fast flatten) still counts."""
    return rec.t_landed if rec.t_landed is not None else rec.t_trigger


def fmt_orders(orders: list[dict[str, Any]], limit: int = 5) -> str:
    return "; ".join(f"{o.get('clOrdId')} {o.get('side')} {o.get('sz')} {o.get('instId')} reduceOnly={o.get('reduceOnly')} "
                     f"effect={o.get('effect')}" for o in orders[:limit]) + (" ..." if len(orders) > limit else "")


def parse_utc(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
