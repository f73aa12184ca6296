"""The run's HTML report: Jinja2 templates (autoescaped) over the drill views and the sign-off decision.

The page has inline CSS and inline SVG only: no script, no font, no network access, so it opens the
same from a CI artifact as from a laptop. Everything from the evidence (a target's reason strings,
status values, order ids) is escaped by the template engine; only the SVG (escaped where it is built,
:mod:`.svg`) is inserted as markup.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .history import history_context
from .outcome import DrillOutcome
from .signoff import EXPECTED_PHASE2, Decision, decide, load_outcomes
from .svg import LEGEND, STATES, drill_svg
from ..record import TIMELINE_FILE, timeline_file
from .view import LINKED_FILES, DrillData, drill_folders, load_drill

#: Mode-change rows shown per drill (timeline.jsonl.gz keeps them all).
MAX_TABLE_ROWS = 200
_VERDICT_CLASS = {"PASS": "pass", "FAIL": "fail", "NOT PROVEN": "np", "ERROR": "err", "TIMEOUT": "err",
                  "INTERRUPTED": "err"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=PackageLoader("pytest_chaosdrill.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["verdict_class"] = lambda v: _VERDICT_CLASS.get(v, "err")
    return env


def _css() -> str:
    return (Path(__file__).parent / "templates" / "report.css").read_text(encoding="utf-8")


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", s)[:60] or "d"


def _href(target: Path, base: Path | None) -> str:
    return Path(os.path.relpath(target, base) if base is not None else target).as_posix()


def _check_verdict(c: dict[str, Any]) -> str:
    v = c.get("verdict")
    if isinstance(v, str) and v in ("PASS", "FAIL", "NOT PROVEN", "ERROR"):
        return v
    return {True: "PASS", False: "FAIL"}.get(c.get("passed"), "NOT PROVEN")


def _tts(d: DrillData) -> dict[str, Any]:
    if d.time_to_safe_ms is None:
        return {"text": "not observed", "over": False}
    text = f"{d.time_to_safe_ms:.0f} ms"
    over = False
    if d.budget_ms:
        text += f" / {d.budget_ms:.0f} ms"
        over = d.time_to_safe_ms > d.budget_ms
    return {"text": text, "over": over}


def _drill_context(d: DrillData, base: Path) -> dict[str, Any]:
    t0 = d.mode_bands[0].start if d.mode_bands else 0.0
    return {
        "d": d, "anchor": _slug(f"{d.drill_id}-{d.backend}-{d.folder.name}"), "tts": _tts(d),
        "svg": Markup(drill_svg(d)),
        "bands": [{"from": f"{b.start - t0:.2f} s", "state": STATES.get(b.state, ("?",))[0], "samples": b.samples,
                   "first_i": b.first_i, "detail": b.detail} for b in d.mode_bands[:MAX_TABLE_ROWS]],
        "more_bands": max(0, len(d.mode_bands) - MAX_TABLE_ROWS),
        "checks": [{"name": c.get("name", "?"), "verdict": _check_verdict(c), "criterion": c.get("criterion") or "",
                    "detail": c.get("detail") or ""} for c in d.checks],
        "problems": [f"missing {f}" for f in d.missing_files] + d.hash_problems,
        "folder_href": _href(d.folder, base),
        "links": [{"href": _href(d.folder / f, base), "name": f} for f in _linked(d.folder) if (d.folder / f).is_file()],
        "not_present": [f for f in _linked(d.folder)[:6] if not (d.folder / f).is_file()],
    }


def _linked(folder: Path) -> list[str]:
    """The files to link, with the timeline under the name this folder has (older evidence: uncompressed)."""
    name = timeline_file(folder).name
    return [name if f == TIMELINE_FILE else f for f in LINKED_FILES]


def drill_section_html(drill_folder: Path | DrillData, *, link_base: Path | None = None,
                       include_css: bool = True) -> str:
    """One drill's ``<section data-drill=ID data-backend=B>``: verdict, timeline SVG, criteria, evidence links.

    ``link_base`` is the folder the HTML will be saved in (links to evidence files are relative to it);
    by default the run folder. ``include_css`` adds the stylesheet and legend inline, for use outside
    the run report (e.g. pytest-html extras).
    """
    d = drill_folder if isinstance(drill_folder, DrillData) else load_drill(Path(drill_folder))
    base = link_base if link_base is not None else d.folder.parent.parent
    return _env().get_template("drill.html.j2").render(
        **_drill_context(d, base), standalone=include_css, css=_css() if include_css else "", legend=Markup(LEGEND))


def outcomes_for(run_dir: Path, drills: list[DrillData]) -> list[DrillOutcome]:
    """The sign-off facts per drill: the session's (``signoff.json``) where stored, else what the folder shows.

    Either way the evidence is verified now: missing files and hash problems are the folder's as it is.
    """
    stored = {os.path.realpath(o.folder): o for o in load_outcomes(run_dir) or [] if o.folder}
    out = []
    for d in drills:
        o = stored.get(os.path.realpath(d.folder))
        if o is None:  # facts the session did not store (a run stopped before its end) stay unproven
            o = DrillOutcome(nodeid="", drill_id=d.drill_id, title=d.title, group=d.group, backend=d.backend,
                             verdict=d.verdict, reason=d.reason, time_to_safe_ms=d.time_to_safe_ms,
                             budget_ms=d.budget_ms, folder=str(d.folder), has_notes=(d.folder / "notes.md").is_file())
        o.missing_files, o.hash_problems = list(d.missing_files), list(d.hash_problems)
        o.files_complete = not d.missing_files
        out.append(o)
    return out


def render_run_report(run_dir: Path, *, title: str | None = None, link_base: Path | None = None,
                      expected_phase2: int = EXPECTED_PHASE2) -> str:
    """The run's report as one self-contained HTML page (links relative to ``link_base``, default ``run_dir``)."""
    run_dir = Path(run_dir)
    base = Path(link_base) if link_base is not None else run_dir
    drills = [load_drill(f) for f in drill_folders(run_dir)]
    decision: Decision = decide(outcomes_for(run_dir, drills), expected_phase2)
    run_id = next((d.run_id for d in drills if d.run_id), None) or run_dir.name
    counts: dict[str, int] = {}
    for d in drills:
        counts[d.verdict] = counts.get(d.verdict, 0) + 1
    signoff = run_dir / "SIGNOFF.md"
    return _env().get_template("run.html.j2").render(
        title=title or f"Chaos drill report: {run_id}", css=_css(), legend=Markup(LEGEND), decision=decision,
        expected_phase2=expected_phase2, run_id=run_id,
        commits=", ".join(sorted({str(d.commit) for d in drills if d.commit})) or "unknown",
        backends=", ".join(sorted({d.backend for d in drills})) or "none", counts=sorted(counts.items()),
        signoff_href=_href(signoff, base) if signoff.is_file() else None,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        drills=[{**_drill_context(d, base), "rel": os.path.relpath(d.folder, run_dir)} for d in drills],
        # the run's siblings under evidence/runs/ (stored records only): verdicts, time to safe, flakiness
        history=history_context(run_dir.parent) if run_dir.parent.name == "runs" else [],
        standalone=False)


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
