"""A self-contained HTML report of one evidence run, for the person who signs it off.

Pure: it reads a run folder (``runs/<run_id>/<group>/<drill folder>/``) and returns HTML. The page
has inline CSS and inline SVG only: no script, no font, no network access, so it opens the same from
a CI artifact as from a laptop. Everything that comes from the evidence (a target's reason strings,
status values, order ids) is escaped: the page shows hostile text, it never runs it.

Public API:

* :func:`render_run_report` / :func:`write_run_report` — the whole run (summary, sign-off state,
  one ``<section data-drill=ID data-backend=B>`` per drill).
* :func:`drill_svg` — one drill's timeline SVG alone.
* :func:`drill_section_html` — one drill's section (SVG, criteria, links), e.g. for pytest-html extras.
* :func:`signoff_state` — READY TO SIGN or NOT READY, and the drills behind it.

Files read per drill folder (each optional; a run that died early still renders): ``meta.json``,
``record.json`` (preferred where it has a field), ``checks.json``, ``marks.json``, ``timeline.jsonl``,
``witness_ledger.jsonl``, ``notes.md``, ``time_to_safe_ms``, ``SHA256SUMS``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Iterable, Iterator

try:  # the evidence writer's list is the source of truth; keep a copy in case it moves
    from .evidence import REQUIRED_FILES
except ImportError:  # pragma: no cover
    REQUIRED_FILES = ("trigger.md", "observed_status.json", "expected_status.json", "diff.txt", "validation.log",
                      "time_to_safe_ms", "notes.md")

#: The evidence files the drill section links to (relative links; only the ones that exist).
LINKED_FILES = ("notes.md", "trigger.md", "timeline.jsonl", "witness_ledger.jsonl", "diff.txt", "validation.log",
                "observed_status.json", "expected_status.json", "checks.json", "marks.json", "meta.json",
                "record.json", "SHA256SUMS")
#: How many Phase 2 drills a complete run has (the checklist's "All 8 drills executed").
EXPECTED_PHASE2 = 8
#: Above this many mode bands, bands narrower than a pixel are merged into one "mixed" band.
MAX_BANDS = 2000
MAX_TABLE_ROWS = 200

# Mode states: label, fill colour, pattern id suffix (None = solid). Colour is never the only cue:
# each state has a pattern and a text label in the band (when wide enough) and in its <title>.
_STATES: dict[str, tuple[str, str, str | None]] = {
    "Active": ("Active", "#3a9d5d", None),
    "ReduceOnly": ("ReduceOnly", "#e0a526", "hatch"),
    "Kill": ("Kill", "#c0392b", "cross"),
    "error": ("error (no answer)", "#7f8c8d", "dots"),
    "no-status": ("no status payload", "#bdc3c7", "dash"),
    "other": ("unknown mode", "#8e44ad", "dots"),
    "mixed": ("many changes (merged)", "#555555", "cross"),
}
_LATCH: dict[str, tuple[str, str, str | None]] = {
    "set": ("latch set", "#6c3483", "hatch"),
    "clear": ("latch clear", "#d5e8d4", None),
    "unknown": ("latch unknown", "#ecf0f1", "dash"),
}
_VERDICT_CLASS = {"PASS": "pass", "FAIL": "fail", "NOT PROVEN": "np", "ERROR": "err", "TIMEOUT": "err",
                  "INTERRUPTED": "err"}
_MARKERS = {  # label -> (short text, colour, dash)
    "trigger": ("trigger", "#34495e", "2,2"),
    "fault_landed": ("fault landed", "#c0392b", None),
    "safe_observed": ("safe", "#1f618d", None),
    "release": ("released", "#27ae60", None),
    "recovered": ("recovered", "#117a65", "6,2"),
    "restart": ("restart", "#7d3c98", "4,2"),
    "target_down": ("target down", "#7b241c", "1,2"),
    "target_up": ("target up", "#196f3d", "1,2"),
}

CSS = """
.cd-report{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;max-width:1100px;margin:0 auto;padding:0 12px;line-height:1.4}
.cd-report h1{font-size:1.5em;margin:.6em 0 .2em}.cd-report h2{font-size:1.2em;margin:1.2em 0 .3em}
.cd-report h3{font-size:1em;margin:.8em 0 .2em}
.cd-report table{border-collapse:collapse;margin:.4em 0;font-size:.92em}
.cd-report th,.cd-report td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
.cd-report th{background:#f3f3f3}
.cd-report code,.cd-report .mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
.cd-badge{display:inline-block;padding:1px 7px;border-radius:3px;font-weight:700;font-size:.85em;border:2px solid}
.cd-badge.pass{background:#e3f4e8;color:#1e6b3a;border-color:#1e6b3a}
.cd-badge.fail{background:#fbe5e2;color:#922b21;border-color:#922b21;border-style:double;border-width:3px}
.cd-badge.np{background:#fdf1d6;color:#7d5a00;border-color:#7d5a00;border-style:dashed}
.cd-badge.err{background:#eee;color:#222;border-color:#222;border-style:dotted}
.cd-state{font-size:1.3em;padding:8px 12px;border:3px solid;margin:.4em 0;font-weight:700}
.cd-state.ready{background:#e3f4e8;border-color:#1e6b3a;color:#1e6b3a}
.cd-state.notready{background:#fbe5e2;border-color:#922b21;color:#922b21;border-style:double;border-width:5px}
.cd-drill{border-top:2px solid #444;margin-top:1.5em;padding-top:.3em}
.cd-drill svg{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
.cd-over{color:#922b21;font-weight:700}
.cd-legend{font-size:.85em;color:#333}
.cd-muted{color:#666;font-size:.9em}
.cd-report details{margin:.3em 0}
"""


# --------------------------------------------------------------------------------------------- reading

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        fh = open(path, encoding="utf-8")
    except OSError:
        return
    with fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run: skip it, keep the rest
            if isinstance(obj, dict):
                yield obj


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip())
    except (TypeError, ValueError):
        return None


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(k)
    return obj


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


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
    mono: float
    kind: str  # "adds" | "reduces" | "none"
    text: str


@dataclass
class DrillData:
    """Everything the report shows about one drill folder."""

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
    record: dict[str, Any] | None
    checks: list[dict[str, Any]]
    marks: list[dict[str, Any]]
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
    mode-change table and timeline.jsonl keep the details.
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


def _order_kind(e: dict[str, Any]) -> str:
    effect = e.get("effect")
    if e.get("accepted") is False or effect == "none":
        return "none"
    if effect in ("open", "flip"):
        return "adds"
    if effect == "reduce":
        return "reduces"
    return "reduces" if e.get("reduceOnly") is True else "adds"


def _phases_from_record(record: dict[str, Any] | None) -> list[tuple[str, float, float]]:
    """Phases from record.json in any of the shapes it may take: a list of {name, start, end} or a mapping."""
    raw = record.get("phases") if isinstance(record, dict) else None
    out: list[tuple[str, float, float]] = []
    items: list[tuple[str, Any]] = []
    if isinstance(raw, list):
        items = [(str(p.get("name") or p.get("phase") or p.get("label") or "?"), p) for p in raw if isinstance(p, dict)]
    elif isinstance(raw, dict):
        items = [(str(k), v) for k, v in raw.items()]
    for name, p in items:
        if isinstance(p, (list, tuple)) and len(p) == 2:
            a, b = _num(p[0]), _num(p[1])
        elif isinstance(p, dict):
            a = _num(_first(p.get("start_mono"), p.get("start"), p.get("begin_mono"), p.get("mono")))
            b = _num(_first(p.get("end_mono"), p.get("end"), p.get("ended_mono")))
        else:
            continue
        if a is not None:
            out.append((name, a, b if b is not None else a))
    return out


def _budget_from_notes(text: str) -> float | None:
    m = re.search(r"budget\s+([0-9.]+)\s*ms", text)
    return float(m.group(1)) if m else None


def _title_from_notes(text: str) -> str:
    lines = text.splitlines()
    return lines[2].strip() if len(lines) > 2 and lines[0].startswith("#") and not lines[2].startswith("#") else ""


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


def load_drill(folder: Path, *, verify_hashes: bool = True) -> DrillData:
    """Read one drill folder. Missing or unreadable files leave their part empty."""
    folder = Path(folder)
    meta = _read_json(folder / "meta.json")
    meta = meta if isinstance(meta, dict) else {}
    record = _read_json(folder / "record.json")
    record = record if isinstance(record, dict) else None
    rec = record or {}
    notes = ""
    try:
        notes = (folder / "notes.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    tts_file = None
    try:
        tts_file = _num((folder / "time_to_safe_ms").read_text(encoding="utf-8"))
    except OSError:
        pass
    checks = _first(rec.get("checks") if isinstance(rec.get("checks"), list) else None,
                    _read_json(folder / "checks.json"))
    marks = _first(rec.get("marks") if isinstance(rec.get("marks"), list) else None,
                   _read_json(folder / "marks.json"))
    drill_def = rec.get("drill") if isinstance(rec.get("drill"), dict) else {}
    folder_id = folder.name.split(".")[0]
    d = DrillData(
        folder=folder,
        group=str(_first(rec.get("group"), drill_def.get("group"), meta.get("group"), folder.parent.name)),
        drill_id=str(_first(drill_def.get("id"), rec.get("drill_id"), rec.get("drill") if isinstance(rec.get("drill"), str)
                            else None, meta.get("drill"), folder_id)),
        backend=str(_first(rec.get("backend"), meta.get("backend"), "unknown")),
        verdict=str(_first(rec.get("verdict"), meta.get("verdict"), "UNKNOWN")),
        reason=str(_first(rec.get("reason"), meta.get("reason"), "")),
        title=str(_first(drill_def.get("title"), rec.get("title"), meta.get("title"), _title_from_notes(notes))),
        time_to_safe_ms=_num(_first(_dig(rec, "timings", "time_to_safe_ms"), rec.get("time_to_safe_ms"),
                                    meta.get("time_to_safe_ms"), tts_file)),
        budget_ms=_num(_first(drill_def.get("time_to_safe_budget_ms"), _dig(rec, "timings", "budget_ms"),
                              rec.get("time_to_safe_budget_ms"), rec.get("budget_ms"), meta.get("budget_ms"),
                              meta.get("time_to_safe_budget_ms"), _budget_from_notes(notes))),
        commit=_first(rec.get("commit"), meta.get("commit")),
        run_id=_first(rec.get("run_id"), meta.get("run_id")),
        meta=meta, record=record,
        checks=[c for c in (checks or []) if isinstance(c, dict)],
        marks=[m for m in (marks or []) if isinstance(m, dict)],
    )
    safe_i = _dig(next((m for m in d.marks if m.get("label") == "safe_observed"), {}), "detail", "sample")
    safe_sample: list[float] = []

    def watch(samples: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for smp in samples:
            if safe_i is not None and smp.get("i") == safe_i and _num(smp.get("mono")) is not None:
                safe_sample.append(float(_num(smp.get("mono"))))
            yield smp

    d.mode_bands, d.mode_changes, d.samples = bands_from_samples(watch(_iter_jsonl(folder / "timeline.jsonl")))
    _safe_and_origin(d, safe_sample[0] if safe_sample else None)
    d.latch_bands, _, _ = bands_from_samples(_iter_jsonl(folder / "timeline.jsonl"), key=_latch_state)
    for e in _iter_jsonl(folder / "witness_ledger.jsonl"):
        t = _num(e.get("mono"))
        if t is None:
            continue
        if e.get("type") == "order":
            txt = " ".join(f"{k}={e.get(k)}" for k in ("clOrdId", "side", "sz", "instId", "reduceOnly", "effect",
                                                      "accepted", "sCode") if k in e)
            d.orders.append(Order(t, _order_kind(e), txt))
        elif e.get("type") == "position" and _num(e.get("exposure")) is not None:
            d.exposure.append((t, float(_num(e.get("exposure")))))
    d.phases = _phases_from_record(record)
    d.missing_files = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if verify_hashes:
        d.hash_problems = _check_hashes(folder)
    return d


def _safe_and_origin(d: DrillData, safe_sample_mono: float | None) -> None:
    """Place the first safe sample and the clock's origin so the drawing matches the recorded number.

    The runner counts time to safe from when the fault took effect (its proof), which can be well before
    the ``fault_landed`` mark (the harness confirming it, e.g. after a restart). With the safe sample's
    own time and the recorded milliseconds, the origin is exact: ``safe - time_to_safe``.
    """
    rec = d.record or {}
    d.safe_mono = _num(_first(_dig(rec, "timings", "safe_mono"), safe_sample_mono, d.mark("safe_observed")))
    origin = _num(_first(_dig(rec, "timings", "safe_origin_mono"), _dig(rec, "timings", "landed_mono")))
    if origin is None and d.safe_mono is not None and d.time_to_safe_ms is not None:
        origin = d.safe_mono - d.time_to_safe_ms / 1000.0
    if origin is None:
        landed = next((m for m in d.marks if m.get("label") == "fault_landed"), None)
        proof = _dig(landed, "detail", "proof") or {}
        origin = _num(_first(proof.get("landed_mono"), proof.get("effective_mono"), d.mark("fault_landed"),
                             d.mark("trigger")))
    d.origin_mono = origin


def drill_folders(run_dir: Path) -> list[Path]:
    """The drill folders of a run: ``<run_dir>/<group>/<folder>/`` holding meta.json or record.json."""
    run_dir = Path(run_dir)
    out = [p for p in sorted(run_dir.glob("*/*")) if p.is_dir()
           and ((p / "meta.json").is_file() or (p / "record.json").is_file())]
    return sorted(out, key=lambda p: (p.parent.name != "phase2", p.parent.name, _drill_number(p.name), p.name))


def _drill_number(name: str) -> int:
    m = re.match(r"drill_(\d+)", name)
    return int(m.group(1)) if m else 10**6


# ------------------------------------------------------------------------------------------- sign-off

def signoff_state(drills: list[DrillData], expected_phase2: int = EXPECTED_PHASE2) -> tuple[bool, list[str]]:
    """READY TO SIGN only when every Phase 2 drill PASSED, all of them ran, and each evidence folder is complete.

    Returns (ready, reasons it is not ready). The rule is :func:`pytest_chaosdrill.report.signoff_state`,
    the same one SIGNOFF.md uses.
    """
    from .report import signoff_state as rule

    return rule(drills, expected_phase2)


# ---------------------------------------------------------------------------------------------- SVG

_W, _LEFT, _RIGHT = 960, 112, 16
_MARK_ROWS = 4


class _Scale:
    def __init__(self, t0: float, t1: float) -> None:
        self.t0 = t0
        self.t1 = t1 if t1 > t0 else t0 + 1.0
        self.w = _W - _LEFT - _RIGHT

    def x(self, t: float) -> float:
        return round(_LEFT + (t - self.t0) / (self.t1 - self.t0) * self.w, 2)

    @property
    def sec_per_px(self) -> float:
        return (self.t1 - self.t0) / self.w


def _e(v: Any) -> str:
    return escape(str(v), quote=True)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", s)[:60] or "d"


def _patterns(p: str) -> str:
    return (f'<defs>'
            f'<pattern id="{p}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="6" height="6" fill="transparent"/><line x1="0" y1="0" x2="0" y2="6" stroke="#000" '
            f'stroke-opacity=".35" stroke-width="2"/></pattern>'
            f'<pattern id="{p}-cross" width="6" height="6" patternUnits="userSpaceOnUse">'
            f'<path d="M0,0L6,6M6,0L0,6" stroke="#fff" stroke-opacity=".6" stroke-width="1.2"/></pattern>'
            f'<pattern id="{p}-dots" width="5" height="5" patternUnits="userSpaceOnUse">'
            f'<circle cx="2.5" cy="2.5" r="1.1" fill="#000" fill-opacity=".45"/></pattern>'
            f'<pattern id="{p}-dash" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<line x1="0" y1="4" x2="4" y2="4" stroke="#555" stroke-width="1.2"/></pattern>'
            f'<pattern id="{p}-budget" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)">'
            f'<line x1="0" y1="0" x2="0" y2="8" stroke="#1f618d" stroke-opacity=".45" stroke-width="2"/></pattern>'
            f'</defs>')


def _fmt_t(t: float) -> str:
    return f"{t:.2f} s"


def _band_rects(bands: list[Band], table: dict[str, tuple[str, str, str | None]], sc: _Scale, y: float, h: float,
                p: str, lane: str) -> list[str]:
    out = []
    for b in bands:
        label, colour, pat = table.get(b.state, table.get("other", ("?", "#999", None)))
        x0, x1 = sc.x(b.start), sc.x(b.end)
        w = max(x1 - x0, 0.6)  # a single-sample band still shows
        tip = (f"{label}: {_fmt_t(b.start - sc.t0)} to {_fmt_t(b.end - sc.t0)} "
               f"({(b.end - b.start) * 1000:.0f} ms, {b.samples} samples from sample {b.first_i})"
               + (f"; {b.detail}" if b.detail else ""))
        out.append(f'<g class="band" data-lane="{lane}" data-state="{_e(b.state)}" data-start="{b.start:.6f}" '
                   f'data-end="{b.end:.6f}"><title>{_e(tip)}</title>'
                   f'<rect x="{x0}" y="{y}" width="{w:.2f}" height="{h}" fill="{colour}"/>'
                   + (f'<rect x="{x0}" y="{y}" width="{w:.2f}" height="{h}" fill="url(#{p}-{pat})"/>' if pat else "")
                   + (f'<text x="{x0 + 3:.2f}" y="{y + h / 2 + 4}" font-size="10" fill="#000" '
                      f'paint-order="stroke" stroke="#fff" stroke-width="2.5">{_e(label)}</text>' if w > 70 else "")
                   + "</g>")
    return out


def drill_svg(drill_folder: Path | DrillData, *, id_prefix: str | None = None) -> str:
    """The drill's timeline as one inline SVG: modes, latch, budget, markers, orders and exposure over time."""
    d = drill_folder if isinstance(drill_folder, DrillData) else load_drill(Path(drill_folder), verify_hashes=False)
    p = _slug(id_prefix or f"{d.drill_id}-{d.backend}-{d.folder.name}")
    times = [b.start for b in d.mode_bands] + [b.end for b in d.mode_bands]
    times += [t for t in (_num(m.get("mono")) for m in d.marks) if t is not None]
    times += [o.mono for o in d.orders] + [t for t, _ in d.exposure] + [t for _, a, b in d.phases for t in (a, b)]
    landed = d.origin_mono
    if landed is not None:
        times.append(landed)
    if not times and landed is not None and d.budget_ms:
        times = [landed, landed + d.budget_ms / 1000.0]
    elif landed is not None and d.budget_ms:
        # Show the whole budget unless it dwarfs the drill (a 15 s budget on a 3 s drill): then the chart
        # grows by at most a third and the budget box runs off its right edge, labelled so.
        span = max(times) - min(times)
        times.append(min(landed + d.budget_ms / 1000.0, max(times) + max(span / 3, 0.05)))
    if not times:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{_W}" height="40" viewBox="0 0 {_W} 40" '
                f'aria-labelledby="{p}-t"><title id="{p}-t">{_e(d.drill_id)}: no timeline recorded</title>'
                f'<text x="8" y="24" font-size="13">No status samples, marks or ledger entries were recorded.</text></svg>')
    start = d.mark("start")
    sc = _Scale(min(times) if start is None else min(min(times), start), max(times))
    rel = lambda t: t - sc.t0  # noqa: E731

    # lanes (y, height)
    y_mark = 14
    y_phase = y_mark + 12 * _MARK_ROWS + 2
    y_mode = y_phase + (20 if d.phases else 0)
    y_latch, y_budget = y_mode + 34, y_mode + 58
    y_orders, y_exp = y_budget + 30, y_budget + 62
    h_exp = 70
    y_axis = y_exp + h_exp + 6
    height = y_axis + 30
    parts: list[str] = []

    # text alternative
    summary = [f"{d.drill_id} on {d.backend}: {d.verdict}."]
    if d.mode_bands:
        summary.append(f"{d.samples} status samples, {d.mode_changes} mode change(s): " + "; ".join(
            f"{_STATES.get(b.state, ('?',))[0]} from {_fmt_t(rel(b.start))}" for b in d.mode_bands[:12])
            + ("; …" if len(d.mode_bands) > 12 else "") + ".")
    if d.mark("fault_landed") is not None:
        summary.append(f"Fault landed at {_fmt_t(rel(d.mark('fault_landed')))}.")
    if d.time_to_safe_ms is not None:
        summary.append(f"Time to safe {d.time_to_safe_ms:.0f} ms" + (f" against a budget of {d.budget_ms:.0f} ms"
                                                                     if d.budget_ms else "") + ".")
    adds = sum(o.kind == "adds" for o in d.orders)
    summary.append(f"{len(d.orders)} order(s) at the venue, {adds} that could add exposure.")
    parts.append(f'<title id="{p}-t">{_e(d.drill_id)} ({_e(d.backend)}) timeline</title>'
                 f'<desc id="{p}-d">{_e(" ".join(summary))}</desc>')
    parts.append(_patterns(p))

    # lane labels
    def lane_label(y: float, text: str) -> None:
        parts.append(f'<text x="{_LEFT - 6}" y="{y}" font-size="11" text-anchor="end" fill="#333">{_e(text)}</text>')

    if d.phases:
        lane_label(y_phase + 12, "phase")
        for i, (name, a, b) in enumerate(d.phases):
            x0, x1 = sc.x(a), sc.x(b)
            parts.append(f'<g class="phase" data-phase="{_e(name)}"><title>{_e(f"phase {name}: {_fmt_t(rel(a))} to {_fmt_t(rel(b))}")}</title>'
                         f'<rect x="{x0}" y="{y_phase}" width="{max(x1 - x0, 0.6):.2f}" height="16" '
                         f'fill="{"#dfe6ee" if i % 2 else "#c9d6e3"}" stroke="#fff"/>'
                         + (f'<text x="{x0 + 2:.2f}" y="{y_phase + 12}" font-size="10">{_e(name)}</text>' if x1 - x0 > 40 else "")
                         + "</g>")
    lane_label(y_mode + 17, "trading_mode")
    mode_bands = merge_narrow(d.mode_bands, sc.sec_per_px)
    parts += _band_rects(mode_bands, _STATES, sc, y_mode, 26, p, "mode")
    lane_label(y_latch + 12, "latch")
    parts += _band_rects(merge_narrow(d.latch_bands, sc.sec_per_px), _LATCH, sc, y_latch, 16, p, "latch")

    # budget and time to safe
    lane_label(y_budget + 14, "time to safe")
    safe = d.safe_mono
    if safe is None and landed is not None and d.time_to_safe_ms is not None:
        safe = landed + d.time_to_safe_ms / 1000.0
    if landed is not None and d.budget_ms:
        budget_end = landed + d.budget_ms / 1000.0
        clipped = budget_end > sc.t1 + 1e-9
        bx0, bx1 = sc.x(landed), sc.x(min(budget_end, sc.t1))
        parts.append(f'<g class="budget" data-start="{landed:.6f}" data-end="{landed + d.budget_ms / 1000.0:.6f}">'
                     f'<title>{_e(f"budget {d.budget_ms:.0f} ms from the fault taking effect ({_fmt_t(rel(landed))} to {_fmt_t(rel(landed) + d.budget_ms / 1000)})")}</title>'
                     f'<rect x="{bx0}" y="{y_budget + 2}" width="{max(bx1 - bx0, 0.6):.2f}" height="18" '
                     f'fill="url(#{p}-budget)" stroke="#1f618d" stroke-dasharray="3,2"/>'
                     + (f'<text x="{bx1 - 2}" y="{y_budget + 30}" font-size="10" fill="#1f618d" text-anchor="end">'
                        f'budget {d.budget_ms:.0f} ms, ends at {_fmt_t(rel(budget_end))} (off the chart) →</text></g>'
                        if clipped else
                        f'<line class="budget-end" x1="{bx1}" x2="{bx1}" y1="{y_budget - 2}" y2="{y_budget + 24}" '
                        f'stroke="#1f618d" stroke-width="2"/>'
                        f'<text x="{bx1 + 3}" y="{y_budget + 26}" font-size="10" fill="#1f618d"'
                        + (' text-anchor="end"' if bx1 > _W - 90 else "") + f'>budget {d.budget_ms:.0f} ms</text></g>'))
    if landed is not None and safe is not None:
        over = d.budget_ms is not None and d.time_to_safe_ms is not None and d.time_to_safe_ms > d.budget_ms
        sx0, sx1 = sc.x(landed), sc.x(safe)
        tts = d.time_to_safe_ms if d.time_to_safe_ms is not None else (safe - landed) * 1000
        parts.append(f'<g class="tts" data-start="{landed:.6f}" data-end="{safe:.6f}"><title>'
                     f'{_e(f"time to safe {tts:.0f} ms, from the fault taking effect at {_fmt_t(rel(landed))} to the first safe sample at {_fmt_t(rel(safe))}" + (" OVER BUDGET" if over else ""))}</title>'
                     f'<line x1="{sx0}" x2="{sx0}" y1="{y_budget}" y2="{y_budget + 22}" stroke="#000" stroke-width="1.5"/>'
                     f'<rect x="{sx0}" y="{y_budget + 6}" width="{max(sx1 - sx0, 1.5):.2f}" height="10" '
                     f'fill="{"#c0392b" if over else "#1f618d"}"/>'
                     f'<text x="{sx0 + 2}" y="{y_budget}" font-size="10" fill="#000">{_e(f"{tts:.0f} ms" + (" over budget" if over else ""))}</text></g>')
    elif landed is not None:
        parts.append(f'<text x="{sc.x(landed) + 3}" y="{y_budget + 15}" font-size="10" fill="#922b21">safe state not observed</text>')

    # orders
    lane_label(y_orders + 12, "orders")
    blocked = _blocked_spans(d)
    for o in d.orders:
        x = sc.x(o.mono)
        yc = y_orders + 9
        # An order that could add exposure while the status said OPEN is blocked is what the drills hunt for:
        # ring it so it stands out without relying on colour.
        hit = o.kind == "adds" and any(a <= o.mono < b for a, b in blocked)
        if o.kind == "adds":
            shape = f'<path d="M{x},{yc - 7}L{x + 5},{yc + 5}L{x - 5},{yc + 5}Z" fill="#c0392b" stroke="#000" stroke-width=".6"/>'
            what = "could add exposure"
        elif o.kind == "reduces":
            shape = f'<path d="M{x},{yc - 6}L{x + 5},{yc}L{x},{yc + 6}L{x - 5},{yc}Z" fill="#27ae60" stroke="#000" stroke-width=".6"/>'
            what = "reduce-only / risk-reducing"
        else:
            shape = f'<circle cx="{x}" cy="{yc}" r="4" fill="none" stroke="#555" stroke-width="1.3"/>'
            what = "no effect (rejected or nothing filled)"
        if hit:
            what += ", sent while the status said OPEN blocked"
            shape = f'<circle cx="{x}" cy="{yc}" r="8.5" fill="none" stroke="#000" stroke-width="1.6"/>' + shape
        parts.append(f'<g class="order" data-kind="{o.kind}"' + (' data-while-blocked="1"' if hit else "")
                     + f' data-t="{o.mono:.6f}"><title>'
                     f'{_e(f"{_fmt_t(rel(o.mono))}: {what}: {o.text}")}</title>{shape}</g>')

    # exposure
    lane_label(y_exp + h_exp / 2, "exposure")
    parts.append(f'<rect x="{_LEFT}" y="{y_exp}" width="{sc.w}" height="{h_exp}" fill="none" stroke="#eee"/>')
    if d.exposure:
        vals = [v for _, v in d.exposure]
        lo, hi = min(0.0, min(vals)), max(vals)
        hi = hi if hi > lo else lo + 1.0
        ys = lambda v: round(y_exp + h_exp - (v - lo) / (hi - lo) * (h_exp - 6) - 3, 2)  # noqa: E731
        pts = _exposure_points(d.exposure, sc)
        path = [f"M{_LEFT},{ys(0.0 if lo <= 0 else lo)}"]
        for t, v in pts:
            path.append(f"H{sc.x(t)}V{ys(v)}")
        path.append(f"H{_LEFT + sc.w}")
        parts.append(f'<g class="exposure"><title>{_e(f"exposure from the venue ledger: max {max(vals):g}, last {vals[-1]:g}")}</title>'
                     f'<path d="{"".join(path)}" fill="none" stroke="#2c3e50" stroke-width="1.6"/></g>'
                     f'<text x="{_LEFT + 2}" y="{y_exp + 10}" font-size="9" fill="#555">{hi:g}</text>'
                     f'<text x="{_LEFT + 2}" y="{y_exp + h_exp - 2}" font-size="9" fill="#555">{lo:g}</text>')
    else:
        parts.append(f'<text x="{_LEFT + 6}" y="{y_exp + h_exp / 2 + 4}" font-size="10" fill="#666">no position entries in the ledger</text>')

    # markers: vertical lines through every lane. Markers within a few pixels share one label
    # ("fault landed / safe / released") and labels are staggered in rows so they never overlap.
    found: list[tuple[float, str, dict[str, Any]]] = []
    seen: set[tuple[str, float]] = set()
    for m in d.marks:
        label, t = str(m.get("label")), _num(m.get("mono"))
        if label == "safe_observed" and d.safe_mono is not None:
            t = d.safe_mono  # the first safe sample itself, where the time-to-safe bar ends
        if label in _MARKERS and t is not None and (label, t) not in seen:
            seen.add((label, t))
            found.append((t, label, m))
    found.sort(key=lambda f: f[0])
    groups: list[list[tuple[float, str, dict[str, Any]]]] = []
    for f in found:
        if groups and sc.x(f[0]) - sc.x(groups[-1][0][0]) < 4:
            groups[-1].append(f)
        else:
            groups.append([f])
    rows_end = [-1e9] * _MARK_ROWS
    for g in groups:
        x = sc.x(g[0][0])
        text = " / ".join(dict.fromkeys(_MARKERS[label][0] for _, label, _ in g))
        width = 5.6 * len(text) + 6
        flip = x + width > _W - 2  # near the right edge the label goes left of its line
        left = x - width if flip else x
        row = next((i for i, end in enumerate(rows_end) if end < left), None)
        if row is None:  # every row is taken here: use the one that frees up first
            row = min(range(_MARK_ROWS), key=lambda i: rows_end[i])
        rows_end[row] = left + width + 4
        ty = y_mark + row * 12
        colour = _MARKERS[g[0][1]][1]
        parts.append(f'<text x="{x - 2 if flip else x + 2}" y="{ty}" font-size="10" fill="{colour}"'
                     + (' text-anchor="end"' if flip else "") + f' aria-hidden="true">{_e(text)}</text>')
        for t, label, m in g:
            mtext, mcolour, dash = _MARKERS[label]
            parts.append(f'<g class="marker" data-mark="{_e(label)}" data-t="{t:.6f}"><title>'
                         f'{_e(mtext + " at " + _fmt_t(rel(t)) + " (" + str(m.get("utc", "")) + ")")}</title>'
                         f'<line x1="{x if len(g) == 1 else sc.x(t)}" x2="{x if len(g) == 1 else sc.x(t)}" y1="{ty + 2}" '
                         f'y2="{y_axis}" stroke="{mcolour}" stroke-width="1.4"'
                         + (f' stroke-dasharray="{dash}"' if dash else "") + "/></g>")

    # time axis
    parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + sc.w}" y1="{y_axis}" y2="{y_axis}" stroke="#333"/>')
    span = sc.t1 - sc.t0
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1e9)
                if span / s <= 12)
    k = 0
    while k * step <= span + 1e-9:
        x = sc.x(sc.t0 + k * step)
        parts.append(f'<line x1="{x}" x2="{x}" y1="{y_axis}" y2="{y_axis + 4}" stroke="#333"/>'
                     f'<text x="{x}" y="{y_axis + 15}" font-size="10" text-anchor="middle">{k * step:g}</text>')
        k += 1
    parts.append(f'<text x="{_LEFT - 6}" y="{y_axis + 15}" font-size="10" text-anchor="end">seconds</text>')

    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="cd-timeline" role="img" width="{_W}" height="{height}" '
            f'viewBox="0 0 {_W} {height}" aria-labelledby="{p}-t {p}-d" data-t0="{sc.t0:.6f}" data-t1="{sc.t1:.6f}" '
            f'data-x0="{_LEFT}" data-width="{sc.w}">' + "".join(parts) + "</svg>")


def _blocked_spans(d: DrillData) -> list[tuple[float, float]]:
    """Time spans in which the status said OPEN is blocked (mode not Active, or the latch set)."""
    spans = [(b.start, b.end) for b in d.mode_bands if b.state in ("ReduceOnly", "Kill")]
    spans += [(b.start, b.end) for b in d.latch_bands if b.state == "set"]
    return spans


def _exposure_points(points: list[tuple[float, float]], sc: _Scale) -> list[tuple[float, float]]:
    """Step points of the exposure line; with more points than pixels keep each pixel's first, min, max and last."""
    pts = sorted(points)
    if len(pts) <= 2 * sc.w:
        return pts
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    cur = None
    for t, v in pts:
        px = int(sc.x(t))
        if px != cur and bucket:
            keep = {bucket[0], min(bucket, key=lambda q: q[1]), max(bucket, key=lambda q: q[1]), bucket[-1]}
            out += sorted(keep)
            bucket = []
        cur = px
        bucket.append((t, v))
    if bucket:
        out += sorted({bucket[0], min(bucket, key=lambda q: q[1]), max(bucket, key=lambda q: q[1]), bucket[-1]})
    return out


_LEGEND = (
    '<div class="cd-legend" aria-label="legend"><strong>Legend:</strong> '
    'trading_mode bands: <b>Active</b> green solid; <b>ReduceOnly</b> amber, diagonal hatch; '
    '<b>Kill</b> red, cross-hatch; <b>error / no answer</b> grey, dotted; <b>no status payload</b> light grey, dashed. '
    'Latch lane: <b>set</b> purple hatch, <b>clear</b> pale green. '
    'Orders: <b>▲ red triangle</b> could add exposure (open/flip); <b>◆ green diamond</b> reduce-only or '
    'risk-reducing; <b>○ hollow circle</b> no effect (rejected); a <b>black ring</b> around a triangle: it reached '
    'the venue while the status said OPEN blocked. '
    'Time to safe: solid bar from the fault taking effect to the first safe sample (red when over budget), '
    'hatched box = the budget. Vertical lines: trigger, fault landed, safe, released, recovered, restart. '
    'Exposure: step line from the venue ledger\'s position entries. Hover any shape for its exact values.</div>')


# --------------------------------------------------------------------------------------------- HTML

def _badge(verdict: str) -> str:
    return f'<span class="cd-badge {_VERDICT_CLASS.get(verdict, "err")}" data-verdict="{_e(verdict)}">{_e(verdict)}</span>'


def _check_verdict(c: dict[str, Any]) -> str:
    v = c.get("verdict")
    if isinstance(v, str) and v in ("PASS", "FAIL", "NOT PROVEN"):
        return v
    return {True: "PASS", False: "FAIL"}.get(c.get("passed"), "NOT PROVEN")


def _link(target: Path, base: Path | None, text: str | None = None) -> str:
    href = os.path.relpath(target, base) if base is not None else target.as_posix()
    href = Path(href).as_posix()
    return f'<a href="{_e(href)}">{_e(text or target.name)}</a>'


def _tts_text(d: DrillData) -> str:
    if d.time_to_safe_ms is None:
        return "not observed"
    s = f"{d.time_to_safe_ms:.0f} ms"
    if d.budget_ms:
        s += f" / {d.budget_ms:.0f} ms"
        if d.time_to_safe_ms > d.budget_ms:
            return f'<span class="cd-over">{_e(s)} (over budget)</span>'
    return _e(s)


def drill_section_html(drill_folder: Path | DrillData, *, link_base: Path | None = None, include_css: bool = True) -> str:
    """One drill's ``<section data-drill=ID data-backend=B>``: verdict, timeline SVG, criteria, evidence links.

    ``link_base`` is the folder the HTML will be saved in (links to evidence files are relative to it);
    by default the run folder. ``include_css`` adds the stylesheet inline, for use outside the run report.
    """
    d = drill_folder if isinstance(drill_folder, DrillData) else load_drill(Path(drill_folder))
    base = link_base if link_base is not None else d.folder.parent.parent
    anchor = _slug(f"{d.drill_id}-{d.backend}-{d.folder.name}")
    out = []
    if include_css:
        out.append(f"<style>{CSS}</style><div class=\"cd-report\">")
    out.append(f'<section class="cd-drill" id="{anchor}" data-drill="{_e(d.drill_id)}" data-backend="{_e(d.backend)}" '
               f'data-verdict="{_e(d.verdict)}" aria-labelledby="{anchor}-h">')
    out.append(f'<h2 id="{anchor}-h">{_e(d.drill_id)} {_badge(d.verdict)} <span class="cd-muted">'
               f'{_e(d.group)} · backend {_e(d.backend)}</span></h2>')
    if d.title:
        out.append(f"<p>{_e(d.title)}</p>")
    out.append(f'<p><strong>Verdict reason:</strong> {_e(d.reason) if d.reason else "<span class=cd-muted>none given</span>"}</p>')
    out.append(f"<p><strong>Time to safe / budget:</strong> {_tts_text(d)} "
               f'<span class="cd-muted">(counted from the fault taking effect to the first OPEN-blocked sample)</span></p>')
    out.append(drill_svg(d))
    if include_css:
        out.append(_LEGEND)

    # mode changes as text (the SVG's text alternative in full)
    rows = [f"<tr><td>{_fmt_t(b.start - (d.mode_bands[0].start if d.mode_bands else 0))}</td><td>{_e(_STATES.get(b.state, ('?',))[0])}</td>"
            f"<td>{b.samples}</td><td>{_e(b.first_i)}</td><td>{_e(b.detail)}</td></tr>"
            for b in d.mode_bands[:MAX_TABLE_ROWS]]
    more = len(d.mode_bands) - MAX_TABLE_ROWS
    out.append(f"<details><summary>trading_mode over time: {d.samples} samples, {d.mode_changes} change(s)</summary>"
               "<table><tr><th>from (s)</th><th>state</th><th>samples</th><th>first sample</th><th>detail</th></tr>"
               + "".join(rows) + "</table>"
               + (f"<p class=cd-muted>… {more} more bands in timeline.jsonl</p>" if more > 0 else "") + "</details>")

    out.append("<h3>Criteria</h3>")
    if d.checks:
        out.append("<table><tr><th>check</th><th>result</th><th>criterion</th><th>reason</th></tr>")
        for c in d.checks:
            out.append(f"<tr><td><code>{_e(c.get('name', '?'))}</code></td><td>{_badge(_check_verdict(c))}</td>"
                       f"<td>{_e(c.get('criterion') or '')}</td><td>{_e(c.get('detail') or '')}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class=cd-muted>No checks were recorded (checks.json missing: the drill did not reach its assertions).</p>")

    if not d.complete:
        out.append("<p class=cd-over>Evidence incomplete: "
                   + _e("; ".join([f"missing {f}" for f in d.missing_files] + d.hash_problems)) + "</p>")
    links = [_link(d.folder / f, base) for f in LINKED_FILES if (d.folder / f).is_file()]
    missing = [f for f in LINKED_FILES[:6] if not (d.folder / f).is_file()]
    out.append("<p><strong>Evidence:</strong> " + _link(d.folder, base, "folder") + " · " + " · ".join(links)
               + (f' <span class="cd-muted">(not present: {_e(", ".join(missing))})</span>' if missing else "") + "</p>")
    out.append("</section>")
    if include_css:
        out.append("</div>")
    return "".join(out)


def render_run_report(run_dir: Path, *, title: str | None = None, link_base: Path | None = None,
                      expected_phase2: int = EXPECTED_PHASE2) -> str:
    """The run's report as one self-contained HTML page (links relative to ``link_base``, default ``run_dir``)."""
    run_dir = Path(run_dir)
    base = Path(link_base) if link_base is not None else run_dir
    drills = [load_drill(f) for f in drill_folders(run_dir)]
    ready, why = signoff_state(drills, expected_phase2)
    run_id = next((d.run_id for d in drills if d.run_id), None) or run_dir.name
    commits = sorted({str(d.commit) for d in drills if d.commit})
    backends = sorted({d.backend for d in drills})
    counts: dict[str, int] = {}
    for d in drills:
        counts[d.verdict] = counts.get(d.verdict, 0) + 1
    page_title = title or f"Chaos drill report: {run_id}"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    h = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         # No network: the page may not load anything, even if a target's text tried to make it.
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
         "img-src data:\">",
         f"<title>{_e(page_title)}</title><style>{CSS}</style></head>",
         '<body><main class="cd-report">', f"<h1>{_e(page_title)}</h1>"]
    state_text = "READY TO SIGN" if ready else "NOT READY"
    h.append(f'<div class="cd-state {"ready" if ready else "notready"}" id="signoff-state" data-state="{state_text}" '
             f'role="status">{"✔" if ready else "✘"} {state_text}</div>')
    if why:
        h.append('<p>Not ready because:</p><ul id="not-ready-reasons">' + "".join(f"<li>{_e(w)}</li>" for w in why) + "</ul>")
    else:
        h.append(f"<p>Every Phase 2 drill ({expected_phase2}) passed and every evidence folder is complete "
                 "(required files present, SHA256SUMS matches). A person still signs SIGNOFF.md.</p>")
    signoff = run_dir / "SIGNOFF.md"
    h.append("<table>"
             f"<tr><th>run id</th><td><code>{_e(run_id)}</code></td></tr>"
             f"<tr><th>commit</th><td><code>{_e(', '.join(commits) or 'unknown')}</code></td></tr>"
             f"<tr><th>backend</th><td>{_e(', '.join(backends) or 'none')}</td></tr>"
             f"<tr><th>verdicts</th><td>" + (" ".join(f"{_badge(v)} {n}" for v, n in sorted(counts.items())) or "no drills")
             + "</td></tr>"
             + (f"<tr><th>sign-off</th><td>{_link(signoff, base)}</td></tr>" if signoff.is_file() else "")
             + f"<tr><th>generated</th><td>{_e(generated)}</td></tr></table>")

    h.append('<h2>Drills</h2><table id="drill-table"><tr><th>drill</th><th>group</th><th>backend</th><th>verdict</th>'
             "<th>time to safe / budget</th><th>evidence</th></tr>")
    for d in drills:
        anchor = _slug(f"{d.drill_id}-{d.backend}-{d.folder.name}")
        h.append(f'<tr data-drill="{_e(d.drill_id)}"><td><a href="#{anchor}">{_e(d.drill_id)}</a></td><td>{_e(d.group)}</td>'
                 f"<td>{_e(d.backend)}</td><td>{_badge(d.verdict)}</td><td>{_tts_text(d)}</td>"
                 f"<td>{_link(d.folder, base, os.path.relpath(d.folder, run_dir))}"
                 + ("" if d.complete else ' <span class="cd-over">incomplete</span>') + "</td></tr>")
    h.append("</table>")
    if not drills:
        h.append("<p>No drill folders found in this run.</p>")
    if drills:
        h.append(_LEGEND)
    for d in drills:
        h.append(drill_section_html(d, link_base=base, include_css=False))
    h.append("</main></body></html>")
    return "\n".join(h) + "\n"


def write_run_report(run_dir: Path, out: Path | None = None, **kwargs: Any) -> Path:
    """Render the run's report and write it (default ``run_dir/report.html``); links are relative to ``out``."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_run_report(run_dir, link_base=out.parent, **kwargs)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a report
    return out
