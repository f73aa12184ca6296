"""A drill's history across runs, from the stored records only (each run's ``meta.json``).

Per drill: its verdict per run with the commit, time to safe over runs (a small SVG), and a flakiness
flag when one commit saw different judged verdicts. Judged verdicts are the target's (PASS, FAIL,
NOT PROVEN, TIMEOUT); ERROR, INTERRUPTED, INCOMPLETE and SKIPPED say nothing about the target, so they
are listed but never make a drill flaky.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from html import escape
from typing import Any

#: Verdicts that judge the target; only these count for flakiness.
JUDGED = ("PASS", "FAIL", "NOT PROVEN", "TIMEOUT")
_COLOUR = {"PASS": "#2e7d32", "FAIL": "#c62828", "NOT PROVEN": "#ef6c00", "TIMEOUT": "#6a1b9a"}


@dataclass
class RunEntry:
    """One run of one drill."""

    run_id: str
    started: str
    commit: str
    verdict: str
    time_to_safe_ms: float | None
    folder: Path


@dataclass
class DrillHistory:
    """Every stored run of one drill (on one backend), oldest first."""

    drill_id: str
    backend: str
    runs: list[RunEntry] = field(default_factory=list)

    @property
    def flaky_commits(self) -> list[str]:
        """Commits that saw more than one judged verdict for this drill."""
        seen: dict[str, set[str]] = {}
        for r in self.runs:
            if r.verdict in JUDGED:
                seen.setdefault(r.commit, set()).add(r.verdict)
        return sorted(c for c, v in seen.items() if len(v) > 1)

    @property
    def passes(self) -> int:
        return sum(r.verdict == "PASS" for r in self.runs)


def runs_root(path: Path) -> Path:
    """The ``runs/`` folder of an evidence root (``evidence/`` or ``evidence/runs``)."""
    path = Path(path)
    return path / "runs" if (path / "runs").is_dir() else path


def load_history(evidence: Path) -> list[DrillHistory]:
    """Every drill's history under an evidence root, sorted by drill id then backend."""
    out: dict[tuple[str, str], DrillHistory] = {}
    for meta_path in sorted(runs_root(evidence).glob("*/*/*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a folder verify-evidence reports; history shows what can be read
        if not isinstance(meta, dict) or not meta.get("drill"):
            continue
        tts = meta.get("time_to_safe_ms")
        key = (str(meta["drill"]), str(meta.get("backend", "?")))
        h = out.setdefault(key, DrillHistory(*key))
        h.runs.append(RunEntry(run_id=str(meta.get("run_id") or meta_path.parent.parent.parent.name),
                               started=str(meta.get("run_started_utc") or meta.get("drill_started_utc") or ""),
                               commit=str(meta.get("commit") or "unknown"), verdict=str(meta.get("verdict", "?")),
                               time_to_safe_ms=float(tts) if isinstance(tts, (int, float)) else None,
                               folder=meta_path.parent))
    for h in out.values():
        h.runs.sort(key=lambda r: (r.started, r.run_id))
    return [out[k] for k in sorted(out)]


def tts_svg(h: DrillHistory, width: int = 240, height: int = 48) -> str:
    """Time to safe over runs: one dot per run that observed it, coloured by verdict, joined by a line."""
    pts = [(i, r.time_to_safe_ms, r.verdict) for i, r in enumerate(h.runs) if r.time_to_safe_ms is not None]
    pad = 4
    body = []
    if pts:
        top = max(t for _, t, _ in pts) or 1.0
        n = max(1, len(h.runs) - 1)

        def xy(i: int, t: float) -> tuple[float, float]:
            return pad + (width - 2 * pad) * i / n, height - pad - (height - 2 * pad) * t / top

        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, t) for i, t, _ in pts))
        body.append(f'<polyline fill="none" stroke="#90a4ae" stroke-width="1" points="{line}"/>')
        for i, t, v in pts:
            x, y = xy(i, t)
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{_COLOUR.get(v, "#555")}">'
                        f'<title>{escape(h.runs[i].run_id)}: {escape(v)}, {t:.0f} ms</title></circle>')
        label = f"max {top:.0f} ms"
    else:
        label = "time to safe never observed"
    return (f'<svg class="cd-history" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="time to safe over runs: {label}">'
            f'<rect x="0" y="0" width="{width}" height="{height}" fill="none" stroke="#cfd8dc"/>'
            + "".join(body) + f'<text x="{width - pad}" y="11" font-size="9" text-anchor="end">{label}</text></svg>')


def history_lines(histories: list[DrillHistory], verbose: bool = False) -> list[str]:
    """The terminal view: one row per drill; with ``verbose`` one line per run under it."""
    rows = [("drill", "backend", "runs", "pass", "last", "time to safe (last)", "flaky commits")]
    for h in histories:
        last = h.runs[-1]
        tts = f"{last.time_to_safe_ms:.0f} ms" if last.time_to_safe_ms is not None else "-"
        rows.append((h.drill_id, h.backend, str(len(h.runs)), f"{h.passes}/{len(h.runs)}", last.verdict, tts,
                     ", ".join(c[:10] for c in h.flaky_commits) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if verbose:
        for h in histories:
            lines.append(f"\n{h.drill_id} ({h.backend})" + (" FLAKY" if h.flaky_commits else ""))
            for r in h.runs:
                tts = f"{r.time_to_safe_ms:.0f} ms" if r.time_to_safe_ms is not None else "-"
                lines.append(f"  {r.started or '?':27}  {r.commit[:10]:10}  {r.verdict:11}  {tts:>9}  {r.run_id}")
    return lines


def history_context(evidence: Path) -> list[dict[str, Any]]:
    """What report.html's history section shows (the SVG built here, escaped by construction)."""
    from markupsafe import Markup

    return [{"h": h, "flaky": h.flaky_commits, "svg": Markup(tts_svg(h)),
             "runs": [{"run_id": r.run_id, "commit": r.commit[:10], "verdict": r.verdict} for r in h.runs]}
            for h in load_history(evidence)]
