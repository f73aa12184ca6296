"""Reports over a run's drills: the terminal table, the sign-off (SIGNOFF.md) and the HTML report.

* :mod:`.outcome` — :class:`DrillOutcome` (what the reports know about one drill test), the table.
* :mod:`.signoff` — the one READY TO SIGN rule (:func:`decide`), SIGNOFF.md and its stored facts.
* :mod:`.view` — one drill folder as the report sees it, built on :meth:`DrillRecord.load`.
* :mod:`.svg` — the drill timeline chart; :mod:`.html` — the page, from Jinja2 templates.
"""
from __future__ import annotations

from .html import drill_section_html, render_run_report, write_run_report
from .outcome import DrillOutcome, files_complete, missing_files, outcome_from, summary_table
from .signoff import EXPECTED_PHASE2, decide, signoff_markdown, signoff_state, write_signoff
from .svg import drill_svg
from .view import DrillData, drill_folders, load_drill

__all__ = [
    "EXPECTED_PHASE2", "DrillData", "DrillOutcome", "decide", "drill_folders", "drill_section_html", "drill_svg",
    "files_complete", "load_drill", "missing_files", "outcome_from", "render_run_report", "signoff_markdown",
    "signoff_state", "summary_table", "write_run_report", "write_signoff",
]
