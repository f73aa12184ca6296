"""The report's view of one drill folder, built on the drill's own record.

The record (:meth:`pytest_chaosdrill.record.DrillRecord.load`: samples, marks, phases, the venue's
ledger) is the one source of what happened; ``meta.json`` and ``checks.json`` (the evidence writer's)
add the verdict and the criteria. Orders are classified by the ledger's own ``could_add_exposure``
flag (:func:`pytest_chaosdrill.witness.could_add_exposure` where an entry lacks it), the definition
the checks use, so the chart cannot contradict the verdict. A folder whose record cannot be read
(a run that died early) still shows its verdict, with the reason the chart is missing.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..evidence import REQUIRED_FILES
from ..record import DrillRecord
from ..venue.witness import could_add_exposure

#: The evidence files the drill section links to (relative links; only the ones that exist).
LINKED_FILES = ("notes.md", "trigger.md", "timeline.jsonl.gz", "witness_ledger.jsonl", "diff.txt", "validation.log",
                "observed_status.json", "expected_status.json", "checks.json", "marks.json", "meta.json",
                "record.json", "SHA256SUMS")
#: Above this many mode bands, bands narrower than a pixel are merged into one "mixed" band.
MAX_BANDS = 2000


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(v: Any) -> float | None:
    """A number from a ledger or meta value (the venue's entries are free-form JSON), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip())
    except (TypeError, ValueError):
        return None


@dataclass
class Band:
    """A run of consecutive samples in one state, from its first sample to the next band's first."""

    start: float
    end: float
    state: str
    samples: int
    first_i: Any
    detail: str = ""


@dataclass
class Order:
    """One order the venue received: ``kind`` is "adds" (could add exposure), "reduces" or "none"."""

    mono: float
    kind: str
    text: str
    accepted: bool = True


@dataclass
class DrillData:
    """Everything the report shows about one drill folder (``record`` is None when it cannot be read)."""

    folder: Path
    group: str
    drill_id: str
    backend: str
    verdict: str
    reason: str
    title: str
    time_to_safe_ms: float | None
    budget_ms: float | None
    commit: str | None
    run_id: str | None
    meta: dict[str, Any]
    record: DrillRecord | None
    checks: list[dict[str, Any]]
    marks: list[dict[str, Any]]
    record_problem: str = ""           # why there is no record to draw from ("" when there is one)
    mode_bands: list[Band] = field(default_factory=list)
    latch_bands: list[Band] = field(default_factory=list)
    mode_changes: int = 0
    samples: int = 0
    orders: list[Order] = field(default_factory=list)
    exposure: list[tuple[float, float]] = field(default_factory=list)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    safe_mono: float | None = None     # the first safe sample's response time
    origin_mono: float | None = None   # where the time-to-safe clock (and the budget) starts
    missing_files: list[str] = field(default_factory=list)
    hash_problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_files and not self.hash_problems

    def mark(self, label: str) -> float | None:
        for m in self.marks:
            if m.get("label") == label and _num(m.get("mono")) is not None:
                return _num(m.get("mono"))
        return None


def _mode_state(sample: dict[str, Any]) -> tuple[str, str]:
    if sample.get("error"):
        return "error", str(sample.get("error"))
    st = sample.get("status")
    if not isinstance(st, dict):
        return "no-status", f"HTTP {sample.get('http_status')}"
    mode = st.get("trading_mode")
    if mode in ("Active", "ReduceOnly", "Kill"):
        return str(mode), ""
    return "other", f"trading_mode={mode!r}"


def _latch_state(sample: dict[str, Any]) -> tuple[str, str]:
    st = sample.get("status")
    if sample.get("error") or not isinstance(st, dict):
        return "unknown", ""
    latch = st.get("open_permission_blocked_latch")
    if latch is True:
        codes = st.get("open_permission_reason_codes")
        return "set", ", ".join(map(str, codes)) if isinstance(codes, list) else ""
    return ("clear", "") if latch is False else ("unknown", f"latch={latch!r}")


def bands_from_samples(samples: Iterable[dict[str, Any]], key: Any = _mode_state) -> tuple[list[Band], int, int]:
    """Fold samples into bands of one state. Returns (bands, state changes, samples).

    Every change of state starts a new band, so no mode change is lost however many samples there are;
    the size of the result grows with the number of changes, not with the number of samples.
    """
    bands: list[Band] = []
    n = 0
    for s in samples:
        t = _num(s.get("mono"))
        if t is None:
            continue
        n += 1
        state, detail = key(s)
        if bands and bands[-1].state == state:
            bands[-1].end = t
            bands[-1].samples += 1
            continue
        if bands:
            bands[-1].end = t
        bands.append(Band(t, t, state, 1, s.get("i"), detail))
    return bands, max(0, len(bands) - 1), n


def merge_narrow(bands: list[Band], min_width: float, limit: int = MAX_BANDS) -> list[Band]:
    """Only when there are more than ``limit`` bands: merge runs of bands narrower than ``min_width``.

    A merged band is drawn as "many changes" and its title counts the states inside it; the
    mode-change table and timeline.jsonl.gz keep the details.
    """
    if len(bands) <= limit:
        return bands
    out: list[Band] = []
    run: list[Band] = []

    def flush() -> None:
        if not run:
            return
        if len(run) == 1:
            out.append(run[0])
        else:
            counts: dict[str, int] = {}
            for b in run:
                counts[b.state] = counts.get(b.state, 0) + b.samples
            out.append(Band(run[0].start, run[-1].end, "mixed", sum(b.samples for b in run), run[0].first_i,
                            f"{len(run)} bands: " + ", ".join(f"{k} {v} samples" for k, v in sorted(counts.items()))))
        run.clear()

    for b in bands:
        if b.end - b.start < min_width:
            run.append(b)
        else:
            flush()
            out.append(b)
    flush()
    return out


def _check_hashes(folder: Path) -> list[str]:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return ["SHA256SUMS missing"]
    problems = []
    for line in sums.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, rel = line.partition("  ")
        if not rel:
            continue
        p = folder / rel
        if not p.is_file():
            problems.append(f"{rel}: listed but missing")
            continue
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
        if h.hexdigest() != digest:
            problems.append(f"{rel}: sha256 mismatch")
    return problems


def _order(e: dict[str, Any]) -> Order | None:
    """One ``order`` ledger entry as the chart shows it, classified as the checks classify it."""
    t = _num(e.get("received_mono", e.get("mono")))
    if t is None:
        return None
    flag = e.get("could_add_exposure")
    adds = flag if isinstance(flag, bool) else could_add_exposure(e)
    if adds:
        kind = "adds"
    elif e.get("accepted") is False or e.get("effect") == "none":
        kind = "none"
    else:
        kind = "reduces"
    text = " ".join(f"{k}={e.get(k)}" for k in ("clOrdId", "side", "sz", "instId", "reduceOnly", "effect",
                                              "accepted", "sCode") if k in e)
    return Order(t, kind, text, accepted=e.get("accepted") is not False)


def _phases(rec: DrillRecord) -> list[tuple[str, float, float]]:
    """(name, start, end) from the record's ``(name, mono)`` pairs: each phase lasts until the next."""
    pairs = [(str(name), float(mono)) for name, mono in rec.phases]
    last = rec.t_end if rec.t_end is not None else (rec.samples[-1].mono if rec.samples else None)
    out = []
    for k, (name, start) in enumerate(pairs):
        end = pairs[k + 1][1] if k + 1 < len(pairs) else (last if last is not None and last >= start else start)
        out.append((name, start, end))
    return out


def load_drill(folder: Path, *, verify_hashes: bool = True) -> DrillData:
    """The view of one drill folder: its record, meta.json, checks.json, the required files, SHA256SUMS."""
    folder = Path(folder)
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    checks = _read_json(folder / "checks.json")
    rec: DrillRecord | None
    try:
        rec = DrillRecord.load(folder)
        problem = ""
    except (ValueError, KeyError, TypeError) as exc:
        rec, problem = None, str(exc) if isinstance(exc, ValueError) else f"{folder / 'record.json'}: {exc!r}"
    drill = rec.drill if rec is not None else {}
    budget = drill.get("time_to_safe_budget_ms")
    d = DrillData(
        folder=folder,
        group=str(drill.get("group") or meta.get("group") or folder.parent.name),
        drill_id=str((rec.drill_id if rec is not None else "") or meta.get("drill") or folder.name.split(".")[0]),
        backend=str((rec.backend if rec is not None else "") or meta.get("backend") or "unknown"),
        verdict=str(meta.get("verdict") or "UNKNOWN"),
        reason=str(meta.get("reason") or ""),
        title=str(drill.get("title") or meta.get("title") or ""),
        time_to_safe_ms=rec.time_to_safe_ms if rec is not None else _num(meta.get("time_to_safe_ms")),
        budget_ms=_num(budget) if budget else None,
        commit=meta.get("commit"),
        run_id=meta.get("run_id"),
        meta=meta, record=rec, record_problem=problem,
        checks=[c for c in (checks if isinstance(checks, list) else []) if isinstance(c, dict)],
        marks=[m.__dict__ for m in rec.marks] if rec is not None else [],
    )
    if rec is not None:
        samples = [s.to_json() for s in rec.samples]
        d.mode_bands, d.mode_changes, d.samples = bands_from_samples(samples)
        d.latch_bands, _, _ = bands_from_samples(samples, key=_latch_state)
        d.safe_mono = rec.first_safe.mono if rec.first_safe is not None else None
        # The runner's own origin (the fault's proven landing, else the trigger): what time to safe counts from.
        d.origin_mono = rec.t_safe_origin
        for e in rec.ledger:
            if e.get("type") == "order":
                order = _order(e)
                if order is not None:
                    d.orders.append(order)
            elif e.get("type") == "position":
                t, exposure = _num(e.get("mono")), _num(e.get("exposure"))
                if t is not None and exposure is not None:
                    d.exposure.append((t, exposure))
        d.phases = _phases(rec)
    d.missing_files = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if verify_hashes:
        d.hash_problems = _check_hashes(folder)
    return d


def drill_folders(run_dir: Path) -> list[Path]:
    """The drill folders of a run: ``<run_dir>/<group>/<folder>/`` holding meta.json or record.json."""
    run_dir = Path(run_dir)
    out = [p for p in sorted(run_dir.glob("*/*")) if p.is_dir()
           and ((p / "meta.json").is_file() or (p / "record.json").is_file())]
    return sorted(out, key=lambda p: (p.parent.name != "phase2", p.parent.name, _drill_number(p.name), p.name))


def _drill_number(name: str) -> int:
    m = re.match(r"drill_(\d+)", name)
    return int(m.group(1)) if m else 10**6
