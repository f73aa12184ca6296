"""The record of one drill run: everything a check or the verdict reads, and nothing else.

The runner fills a :class:`Recorder` while the drill runs and freezes it into a :class:`DrillRecord`.
Checks and the verdict are functions of the record, so a verdict can be re-derived later from the
evidence folder alone (``chaosdrill recheck``): :func:`DrillRecord.load` reads back what
:meth:`DrillRecord.write` stored.

Times are ``time.monotonic()`` seconds of the machine that ran the drill (the venue's witness
ledger uses the same clock); UTC strings are for people.
"""
from __future__ import annotations

import gzip
import json
import time
import zlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .timeline import Mark, Sample, Timeline, utc_now

RECORD_FILE = "record.json"
#: Every status sample, one strict-JSON line each, gzip-compressed (the samples repeat nearly the same
#: body every 5 ms: about 30:1); nothing is dropped or rounded.
TIMELINE_FILE = "timeline.jsonl.gz"
#: The uncompressed timeline of evidence written before 0.2 (still read).
LEGACY_TIMELINE_FILE = "timeline.jsonl"
MARKS_FILE = "marks.json"
LEDGER_FILE = "witness_ledger.jsonl"
RECORD_VERSION = 1

#: How a run ended, as the runner saw it (the verdict is derived from this and the checks).
COMPLETED = "completed"          # every phase ran; the checks decide
NOT_PROVEN = "not_proven"        # start-up, steady state or the fault's landing could not be proven
REFUSED = "refused"              # the live-environment interlock refused (at start or mid-drill)
ERROR = "error"                  # the harness itself failed (a bug or a broken environment)
TIMEOUT = "timeout"              # the drill's own deadline passed
INTERRUPTED = "interrupted"      # Ctrl-C / SIGTERM
OUTCOMES = (COMPLETED, NOT_PROVEN, REFUSED, ERROR, TIMEOUT, INTERRUPTED)


@dataclass(frozen=True)
class StepRecord:
    """One fault injected by the drill: what was asked, the proof it landed, and its release."""

    kind: str
    params: dict[str, Any]
    target_side_hook: bool = False
    requested: dict[str, Any] = field(default_factory=dict)
    proof: dict[str, Any] = field(default_factory=dict)
    not_landed: str | None = None
    fired_mono: float | None = None
    landed_mono: float | None = None
    condition_ended_mono: float | None = None
    released_mono: float | None = None
    release: dict[str, Any] = field(default_factory=dict)
    release_error: str | None = None


@dataclass(frozen=True)
class DrillRecord:
    """An immutable record of one drill run. Build it with :class:`Recorder`."""

    drill: dict[str, Any]                    # the drill definition as loaded (its file's content)
    drill_path: str
    backend: str
    target_name: str
    target_files: tuple[str, ...]            # names of the files the target file declares
    contract: dict[str, str]                 # schema/manifest paths (and sha256) the samples were checked with
    started_utc: str
    t_start: float
    outcome: str = COMPLETED
    outcome_reason: str = ""
    phase: str = "created"
    phases: tuple[tuple[str, float], ...] = ()
    samples: tuple[Sample, ...] = ()
    marks: tuple[Mark, ...] = ()
    ledger: tuple[dict[str, Any], ...] = ()
    steps: tuple[StepRecord, ...] = ()
    t_trigger: float | None = None
    t_release: float | None = None
    t_recovered: float | None = None
    t_end: float | None = None
    first_safe_i: int | None = None          # index into samples, or -1: the target exited (safe_when)
    first_safe_mono: float | None = None
    baseline_i: int | None = None
    expected: dict[str, Any] | None = None   # resolved expectation: payload, fields, rules, source
    files: dict[str, Any] = field(default_factory=dict)       # JSON files the target wrote, at the end
    fingerprint_before: Any = None
    fingerprint_midrun: tuple[dict[str, Any], ...] = ()
    exit_code: int | None = None
    exit_code_before_restart: int | None = None
    recovery_missing: str | None = None
    #: the drill's occasion hook (``occasion:`` of the drill file): declared, written, the service's answer
    occasion: dict[str, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)       # informational only: no check reads these
    #: files or folders a trigger produced (name in the evidence folder -> path); the evidence writer copies them
    attachments: dict[str, str] = field(default_factory=dict)
    #: the target's ``shares_host_clock``: times the service reports are on the harness's monotonic clock
    host_clock: bool = False

    # --- derived views (pure) -------------------------------------------------------------------

    @property
    def drill_id(self) -> str:
        return str(self.drill.get("id", ""))

    @property
    def timeline(self) -> Timeline:
        """A read-only timeline view over the recorded samples and marks."""
        cached = self.__dict__.get("_timeline")
        if cached is None:
            cached = Timeline()
            for s in self.samples:
                cached.add(s)
            cached._marks.extend(self.marks)  # noqa: SLF001 - same package, building a view
            object.__setattr__(self, "_timeline", cached)
        return cached

    @property
    def step(self) -> StepRecord | None:
        """The (first) fault of the drill."""
        return self.steps[0] if self.steps else None

    @property
    def t_landed(self) -> float | None:
        s = self.step
        return s.landed_mono if s is not None else None

    @property
    def t_safe_origin(self) -> float | None:
        """Time to safe counts from the moment the fault physically landed (else from the trigger)."""
        return self.t_landed if self.t_landed is not None else self.t_trigger

    @property
    def t_condition_ended(self) -> float | None:
        """When the fault's condition ended: a one-shot fault as it lands, a held one at release,
        a crash at the restart (what the trigger recorded), else the release."""
        s = self.step
        if s is not None and s.condition_ended_mono is not None:
            return s.condition_ended_mono
        return self.t_release

    @property
    def baseline(self) -> Sample | None:
        return self._sample(self.baseline_i)

    @property
    def first_safe(self) -> Sample | None:
        if self.first_safe_i == -1 and self.first_safe_mono is not None:
            return Sample(-1, self.first_safe_mono, self.first_safe_mono, "", None, None, "target exited")
        return self._sample(self.first_safe_i)

    @property
    def time_to_safe_ms(self) -> float | None:
        fs, origin = self.first_safe, self.t_safe_origin
        if fs is None or origin is None:
            return None
        return max(0.0, (fs.mono - origin) * 1000)

    @property
    def trigger_info(self) -> dict[str, Any]:
        s = self.step
        if s is None:
            return {}
        out: dict[str, Any] = {"requested": s.requested}
        if s.proof:
            out["proof"] = s.proof
        if s.not_landed:
            out["not_landed"] = s.not_landed
        return out

    def _sample(self, i: int | None) -> Sample | None:
        if i is None or i < 0:
            return None
        # samples are stored in index order; fall back to a search if a record was edited
        if i < len(self.samples) and self.samples[i].i == i:
            return self.samples[i]
        return next((s for s in self.samples if s.i == i), None)

    def end_limit(self) -> float:
        return self.t_recovered or self.t_end or (self.samples[-1].mono if self.samples else self.t_start)

    def blocked_window(self) -> tuple[float | None, float | None]:
        """The span in which the status proved OPEN blocked: from the first blocked answer to the request
        time of the last blocked sample before recovery."""
        fs = self.first_safe
        if fs is None:
            return None, None
        end_limit = self.end_limit()
        if fs.ok:
            last = None
            for s in self.timeline.between(fs.sent_mono, end_limit):
                if s.ok and s.mono < end_limit and s.blocked:
                    last = s
            end = last.sent_mono if last is not None else fs.mono
            return fs.mono, max(end, fs.mono)
        return fs.mono, end_limit

    def blocked_spans(self) -> list[tuple[float, float]]:
        """The spans in which the status proved OPEN blocked, one per run of blocked answers: from the
        run's first blocked answer to the request time of its last one. An answer showing OPEN allowed
        ends a run (a service that legitimately resumed mid-fault is not judged as blocked then); an
        answer that could not be read does not. When the first safe answer is itself unreadable (the
        target was down), the whole span to recovery counts, as in :meth:`blocked_window`."""
        fs = self.first_safe
        if fs is None:
            return []
        end_limit = self.end_limit()
        if not fs.ok:
            return [(fs.mono, end_limit)]
        spans: list[tuple[float, float]] = []
        start: float | None = None
        last: Sample | None = None
        for s in self.timeline.between(fs.sent_mono, end_limit):
            if not s.ok or s.mono >= end_limit:
                continue
            if s.blocked:
                start = s.mono if start is None else start
                last = s
            elif start is not None and last is not None:
                spans.append((start, max(last.sent_mono, start)))
                start = None
        if start is not None and last is not None:
            spans.append((start, max(last.sent_mono, start)))
        return spans or [(fs.mono, fs.mono)]

    def blocked_window_samples(self) -> list[Sample]:
        fs = self.first_safe
        if fs is None:
            return []
        end_limit = self.end_limit()
        # End exclusive: the sample that shows recovery is not part of the blocked window.
        return [s for s in self.timeline.between(fs.sent_mono, end_limit) if s.ok and s.mono < end_limit]

    def downtime(self) -> list[tuple[float, float]]:
        """Planned downtime spans (crash, restart, STOP, pause) from the marks."""
        spans, start = [], None
        for m in self.marks:
            if m.label == "target_down":
                start = m.mono
            elif m.label == "target_up" and start is not None:
                spans.append((start, m.mono))
                start = None
        if start is not None:
            spans.append((start, float("inf")))
        return spans

    def get_mark(self, label: str) -> Mark | None:
        return next((m for m in reversed(self.marks) if m.label == label), None)

    # --- storage ------------------------------------------------------------------------------------

    def header(self) -> dict[str, Any]:
        """Everything but samples, marks and ledger (those go to their own files)."""
        out: dict[str, Any] = {"record_version": RECORD_VERSION}
        for f in fields(self):
            if f.name in ("samples", "marks", "ledger"):
                continue
            value = getattr(self, f.name)
            if f.name == "steps":
                value = [s.__dict__ for s in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def write(self, folder: Path, dump: Any = None) -> list[Path]:
        """Write the record into ``folder``; ``dump(obj) -> str`` serializes (the evidence writer passes
        one that redacts). Returns the files written."""
        dump = dump or (lambda obj: json.dumps(obj, sort_keys=True, default=str))
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        p = folder / RECORD_FILE
        p.write_text(dump(self.header()) + "\n", encoding="utf-8")
        paths.append(p)
        p = folder / TIMELINE_FILE
        text = "".join(dump(s.to_json()) + "\n" for s in self.samples)
        p.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0))  # mtime 0: same bytes, same hash
        paths.append(p)
        p = folder / MARKS_FILE
        p.write_text(dump([m.__dict__ for m in self.marks]) + "\n", encoding="utf-8")
        paths.append(p)
        p = folder / LEDGER_FILE
        p.write_text("".join(dump(e) + "\n" for e in self.ledger), encoding="utf-8")
        paths.append(p)
        return paths

    @classmethod
    def load(cls, folder: Path) -> "DrillRecord":
        """Read a record back from an evidence folder. Raises ``ValueError`` naming the file when unreadable."""
        folder = Path(folder)

        def read(name: str) -> str:
            try:
                return (folder / name).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"{folder / name}: cannot read: {exc.strerror or exc}") from None

        def parse(name: str, text: str) -> Any:
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{folder / name}: not valid JSON: {exc}") from None

        head = parse(RECORD_FILE, read(RECORD_FILE))
        if not isinstance(head, dict) or head.get("record_version") != RECORD_VERSION:
            raise ValueError(f"{folder / RECORD_FILE}: not a version-{RECORD_VERSION} drill record")
        head.pop("record_version")
        samples = []
        name = timeline_file(folder).name
        try:
            timeline = read_timeline(folder)
        except OSError as exc:
            raise ValueError(f"{folder / name}: cannot read: {exc.strerror or exc}") from None
        for n, line in enumerate(timeline.splitlines(), 1):
            if line.strip():
                d = parse(f"{name} line {n}", line)
                samples.append(Sample(d["i"], d["sent_mono"], d["mono"], d["utc"], d.get("http_status"),
                                      d.get("status"), d.get("error")))
        marks = [Mark(m["label"], m["mono"], m["utc"], m.get("detail") or {})
                 for m in parse(MARKS_FILE, read(MARKS_FILE))]
        ledger = [parse(f"{LEDGER_FILE} line {n}", line)
                  for n, line in enumerate(read(LEDGER_FILE).splitlines(), 1) if line.strip()]
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in head.items() if k in known}
        kwargs["steps"] = tuple(StepRecord(**s) for s in kwargs.get("steps", []))
        for k in ("phases", "target_files", "fingerprint_midrun"):
            if k in kwargs and kwargs[k] is not None:
                kwargs[k] = tuple(tuple(x) if k == "phases" else x for x in kwargs[k])
        return cls(samples=tuple(samples), marks=tuple(marks), ledger=tuple(ledger), **kwargs)

    def with_samples(self, samples: Iterable[Sample]) -> "DrillRecord":
        """A copy with other samples (tests and ``recheck`` use it)."""
        return replace(self, samples=tuple(samples))


def timeline_file(folder: Path) -> Path:
    """The timeline of an evidence folder: ``timeline.jsonl.gz``, or the uncompressed ``timeline.jsonl``
    of older evidence when only that exists."""
    folder = Path(folder)
    legacy = folder / LEGACY_TIMELINE_FILE
    return legacy if legacy.is_file() and not (folder / TIMELINE_FILE).is_file() else folder / TIMELINE_FILE


def read_timeline(folder: Path) -> str:
    """The text of a folder's timeline (one JSON line per sample), compressed or not. Raises ``OSError``
    (a file that is missing, unreadable, or not valid gzip, e.g. cut short)."""
    path = timeline_file(folder)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise OSError(f"not a complete gzip file ({exc})") from None
    return data.decode("utf-8")


class Recorder:
    """The mutable side: the runner appends here; :meth:`freeze` makes the :class:`DrillRecord`."""

    def __init__(self, *, drill: Mapping[str, Any], drill_path: str, backend: str, target_name: str,
                 target_files: Iterable[str], contract: Mapping[str, str], timeline: Timeline) -> None:
        self.timeline = timeline
        self.values: dict[str, Any] = {
            "drill": dict(drill), "drill_path": drill_path, "backend": backend, "target_name": target_name,
            "target_files": tuple(target_files), "contract": dict(contract), "started_utc": utc_now(),
            "t_start": time.monotonic(), "facts": {}, "attachments": {},
        }
        self.steps: list[dict[str, Any]] = []
        self.ledger: list[dict[str, Any]] = []
        self.phases: list[tuple[str, float]] = []
        self.midrun: list[dict[str, Any]] = []

    def __getitem__(self, key: str) -> Any:
        return self.values.get(key)

    def set(self, **values: Any) -> None:
        self.values.update(values)

    def phase(self, name: str, **detail: Any) -> None:
        self.values["phase"] = name
        m = self.timeline.mark(name, **detail)
        self.phases.append((name, m.mono))

    def fact(self, key: str, value: Any) -> None:
        self.values["facts"][key] = value

    def attach(self, name: str, path: str) -> None:
        """Have the evidence writer copy ``path`` (a file or a folder) into the evidence folder as ``name``."""
        self.values["attachments"][name] = str(path)

    def step(self, kind: str, params: Mapping[str, Any], target_side_hook: bool) -> dict[str, Any]:
        s: dict[str, Any] = {"kind": kind, "params": dict(params), "target_side_hook": target_side_hook}
        self.steps.append(s)
        return s

    def first_safe(self) -> Sample | None:
        i = self.values.get("first_safe_i")
        if i is None:
            return None
        return next((s for s in self.timeline.samples if s.i == i), None)

    def freeze(self) -> DrillRecord:
        v = dict(self.values)
        v["t_end"] = v.get("t_end") or time.monotonic()
        return DrillRecord(samples=tuple(self.timeline.samples), marks=tuple(self.timeline.marks),
                           ledger=tuple(self.ledger), steps=tuple(StepRecord(**s) for s in self.steps),
                           phases=tuple(self.phases), fingerprint_midrun=tuple(self.midrun), **v)

