"""The witness ledger: an append-only, thread-safe record of what the target did to the venue.

Drills read it to check behaviour independently of the target's own report ("no OPEN dispatched while
latched", "exposure only went down", "reconciliation reads happened"). Entry layout: see the
"Witness ledger" section of docs/venue-protocol.md.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .witness import could_add_exposure

ENTRY_TYPES = ("request", "order", "fill", "position", "session", "fault")
EFFECTS = ("open", "reduce", "flip", "none")


def utc_iso(epoch_s: float | None = None) -> str:
    """ISO 8601 UTC timestamp with millisecond precision and a ``Z`` suffix."""
    dt = datetime.fromtimestamp(time.time() if epoch_s is None else epoch_s, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def classify_effect(pos_before: float, pos_after: float) -> str:
    """What an order did to the absolute position of its instrument: open, reduce, flip or none."""
    if pos_before == pos_after:
        return "none"
    if pos_before * pos_after < 0:
        return "flip"
    return "open" if abs(pos_after) > abs(pos_before) else "reduce"


def _in_window(entry: dict, since_mono: float | None, until_mono: float | None) -> bool:
    if since_mono is not None and entry["mono"] < since_mono:
        return False
    if until_mono is not None and entry["mono"] > until_mono:
        return False
    return True


class Ledger:
    """Append-only list of witness entries (``seq``, ``mono``, ``utc``, ``type`` + type fields).

    ``seq`` keeps growing across :meth:`clear`, so a reader polling with ``since_seq`` never misses
    or re-reads an entry.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._next_seq = 1

    @classmethod
    def from_entries(cls, entries: Iterable[dict[str, Any]]) -> "Ledger":
        """A read-only style copy built from entries (e.g. fetched over HTTP) to run the queries on."""
        led = cls()
        led._entries = [dict(e) for e in entries]
        led._next_seq = max((e["seq"] for e in led._entries), default=0) + 1
        return led

    def append(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Record one entry now and return (a copy of) it."""
        if type_ not in ENTRY_TYPES:
            raise ValueError(f"unknown ledger entry type {type_!r}; expected one of {ENTRY_TYPES}")
        with self._lock:
            # mono and utc are taken under the lock so seq order and time order agree.
            entry = {"seq": self._next_seq, "mono": time.monotonic(), "utc": utc_iso(), "type": type_}
            entry.update(fields)
            self._next_seq += 1
            self._entries.append(entry)
            return dict(entry)

    def entries(self, since_seq: int = 0, type_: str | None = None) -> list[dict[str, Any]]:
        """Copies of the entries with ``seq > since_seq`` (optionally of one type), oldest first."""
        with self._lock:
            snapshot = list(self._entries)
        return [dict(e) for e in snapshot if e["seq"] > since_seq and (type_ is None or e["type"] == type_)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        """Forget all entries (``seq`` keeps counting)."""
        with self._lock:
            self._entries.clear()

    # -- serialisation ---------------------------------------------------------------------------

    def to_jsonl(self, since_seq: int = 0) -> str:
        """The entries as JSON Lines (one object per line, trailing newline when non-empty)."""
        return "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries(since_seq))

    def write_jsonl(self, path: str | Path) -> Path:
        """Write :meth:`to_jsonl` to ``path`` (parents created) and return the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_jsonl(), encoding="utf-8")
        return p

    # -- queries drills use ----------------------------------------------------------------------

    def orders(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Order entries (every attempt, duplicates and rejections included) in the time window."""
        return [e for e in self.entries(type_="order") if _in_window(e, since_mono, until_mono)]

    def opens(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Order attempts that could add exposure (:func:`pytest_chaosdrill.venue.witness.could_add_exposure`:
        not reduceOnly, or whose effect was open/flip).

        Rejected and duplicate attempts are included: the target *dispatched* them. Filter on
        ``accepted`` / ``duplicate`` for stricter questions.
        """
        return [e for e in self.orders(since_mono, until_mono) if could_add_exposure(e)]

    def duplicates(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Order attempts that repeated an earlier clOrdId."""
        return [e for e in self.orders(since_mono, until_mono) if e["duplicate"]]

    def recon_reads(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Reconciliation reads (positions and orders-pending requests) in the time window."""
        return [e for e in self.entries(type_="request") if e["recon_read"] and _in_window(e, since_mono, until_mono)]

    def exposure_series(self) -> list[tuple[float, float]]:
        """``(mono, exposure)`` after every position change, oldest first."""
        return [(e["mono"], float(e["exposure"])) for e in self.entries(type_="position")]

    def sessions(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Private-session events (login, login_refused, terminated, closed)."""
        return [e for e in self.entries(type_="session") if _in_window(e, since_mono, until_mono)]

    def fills(self, since_mono: float | None = None, until_mono: float | None = None) -> list[dict]:
        """Fill entries in the time window."""
        return [e for e in self.entries(type_="fill") if _in_window(e, since_mono, until_mono)]


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """Parse ledger JSON Lines (as served by ``GET /_venue/ledger``) back into entries."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def filter_window(entries: Iterable[dict], since_mono: float | None, until_mono: float | None) -> list[dict]:
    """Entries whose ``mono`` lies in the closed window (None = unbounded)."""
    return [e for e in entries if _in_window(e, since_mono, until_mono)]
