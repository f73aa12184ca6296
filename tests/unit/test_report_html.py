"""The HTML run report: drill folders whose record is written by the record's own writer
(:meth:`DrillRecord.write`), a real drill run through pytest, and a real headless-Chromium load."""
from __future__ import annotations

from contextlib import contextmanager

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_chaosdrill import __version__
from pytest_chaosdrill import cli
from pytest_chaosdrill.checks import no_open_dispatch_while_blocked
from pytest_chaosdrill.record import DrillRecord, StepRecord, read_timeline
from pytest_chaosdrill.report import (
    DrillOutcome, drill_section_html, drill_svg, load_drill, render_run_report, write_run_report, write_signoff,
)
from pytest_chaosdrill.report.view import MAX_BANDS, Band, bands_from_samples, merge_narrow
from pytest_chaosdrill.timeline import Mark, Sample
from pytest_chaosdrill.venue.witness import could_add_exposure

HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">'
T0 = 100.0


def _sample(i: int, mono: float, mode: str | None, latch: bool = False, error: str | None = None) -> dict[str, Any]:
    status = None if mode is None or error else {"trading_mode": mode, "open_permission_blocked_latch": latch,
                                                 "open_permission_reason_codes": ["X"] if latch else []}
    return {"i": i, "sent_mono": mono - 0.001, "mono": mono, "utc": "2026-01-01T00:00:00Z",
            "http_status": None if error else 200, "status": status, "error": error}


PHASES = (("start", T0), ("steady_state", T0 + 0.5), ("inject", T0 + 0.95), ("hold", T0 + 0.99),
          ("release", T0 + 1.9), ("recover", T0 + 2.0))


def make_drill(run_dir: Path, drill_id: str, *, verdict: str = "PASS", reason: str = "", backend: str = "process",
               group: str = "phase2", samples: list[dict[str, Any]] | None = None, budget_ms: float = 1000.0,
               tts_ms: float | None = 250.0, checks: list[dict[str, Any]] | None = None,
               ledger: list[dict[str, Any]] | None = None, landed: float = T0 + 0.99,
               landed_mark: float | None = None, omit: tuple[str, ...] = ()) -> Path:
    """A drill folder as a drill run leaves it: the record through :meth:`DrillRecord.write` (record.json,
    timeline.jsonl.gz, marks.json, witness_ledger.jsonl), the other required files, SHA256SUMS.

    The fault lands at ``landed`` (the harness marks it at ``landed_mark``, default the same); the first
    safe sample is the one ``tts_ms`` after it (None: never safe).
    """
    d = run_dir / group / (drill_id if backend == "process" else f"{drill_id}-{backend}")
    d.mkdir(parents=True)
    if samples is None:  # Active 0-1 s, ReduceOnly + latch 1-2 s, Active again until 3 s
        samples = [_sample(i, T0 + i * 0.01, "Active" if i < 100 or i >= 200 else "ReduceOnly", 100 <= i < 200)
                   for i in range(300)]
    timeline = [Sample(**s) for s in samples]
    safe_i = None
    if tts_ms is not None:
        safe_i = min(timeline, key=lambda x: abs(x.mono - (landed + tts_ms / 1000))).i
    marks = [Mark("start", T0, "u"), Mark("trigger", T0 + 0.95, "u"), Mark("fault_landed", landed if landed_mark is None else landed_mark, "u"),
             Mark("safe_observed", landed + (tts_ms or 0) / 1000, "u", {"sample": safe_i}),
             Mark("release", T0 + 1.9, "u"), Mark("recovered", T0 + 2.0, "u")]
    if ledger is None:
        ledger = [{"type": "order", "mono": T0 + 0.5, "clOrdId": "o1", "side": "buy", "sz": 1, "reduceOnly": False,
                   "effect": "open", "accepted": True, "could_add_exposure": True},
                  {"type": "position", "mono": T0 + 0.5, "exposure": 1.0},
                  {"type": "order", "mono": T0 + 1.5, "clOrdId": "o2", "side": "sell", "sz": 1, "reduceOnly": True,
                   "effect": "reduce", "accepted": True, "could_add_exposure": False},
                  {"type": "position", "mono": T0 + 1.5, "exposure": 0.0},
                  {"type": "order", "mono": T0 + 2.5, "clOrdId": "o3", "side": "sell", "sz": 1, "reduceOnly": True,
                   "effect": "none", "accepted": False, "could_add_exposure": False}]
    record = DrillRecord(
        drill={"id": drill_id, "group": group, "title": f"A title for {drill_id}", "time_to_safe_budget_ms": budget_ms},
        drill_path=f"drills/{drill_id}.yaml", backend=backend, target_name="t", target_files=(), contract={},
        started_utc="2026-01-01T00:00:00Z", t_start=T0, phase="done", phases=PHASES, samples=tuple(timeline),
        marks=tuple(marks), ledger=tuple(ledger), t_trigger=T0 + 0.95, t_release=T0 + 1.9, t_recovered=T0 + 2.0,
        t_end=timeline[-1].mono if timeline else T0, first_safe_i=safe_i,
        steps=(StepRecord(kind="proxy", params={}, landed_mono=landed, released_mono=T0 + 1.9),))
    if checks is None:
        checks = [{"name": "mode_held", "passed": verdict == "PASS", "detail": "held", "criterion": "mode held"},
                  {"name": "unproven", "passed": None, "detail": "not exercised", "criterion": "c"}]
    meta = {"run_id": run_dir.name, "drill": drill_id, "backend": backend, "verdict": verdict, "reason": reason,
            "time_to_safe_ms": tts_ms, "commit": "abc123", "facts": {}}
    record.write(d)
    files: dict[str, str] = {
        "trigger.md": "# Trigger\n", "observed_status.json": "{}\n", "expected_status.json": "{}\n",
        "diff.txt": "(identical)\n", "validation.log": "VALID\n",
        "time_to_safe_ms": f"{tts_ms:.1f}\n" if tts_ms is not None else "NOT OBSERVED\n",
        "notes.md": f"# {drill_id}: {verdict}\n", "checks.json": json.dumps(checks), "meta.json": json.dumps(meta),
    }
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    for name in omit:
        (d / name).unlink()
    names = sorted(p.name for p in d.iterdir() if p.is_file())
    sums = [f"{hashlib.sha256((d / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (d / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return d


def sign_off(run: Path, **facts: Any) -> None:
    """Write SIGNOFF.md and signoff.json as the session does, with every drill's sign-off facts proven."""
    outs = []
    for d in sorted(p for p in run.glob("*/*") if p.is_dir()):
        v = load_drill(d, verify_hashes=False)
        o = DrillOutcome(nodeid=v.drill_id, drill_id=v.drill_id, title=v.title, group=v.group, backend=v.backend,
                         verdict=v.verdict, reason=v.reason, time_to_safe_ms=v.time_to_safe_ms, folder=str(d),
                         observed_valid=True, tokens_known=True, latch_checks=[True], owner_view_ok=True,
                         has_notes=True, files_complete=True, capital_supremacy=True)
        for k, val in facts.items():
            setattr(o, k, val)
        outs.append(o)
    write_signoff(run, outs, run.name, "abc123")


def full_run(tmp_path: Path, n: int = 8) -> Path:
    run = tmp_path / "runs" / "run_20260101T000000Z_abc123_000001"
    for k in range(1, n + 1):
        make_drill(run, f"drill_{k}_x")
    sign_off(run)
    return run


class _Tags(HTMLParser):
    """Collects every start tag with its attributes, to see what a browser would build."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


# ------------------------------------------------------------------------------------------ summary

def test_one_section_per_drill_with_backend_and_ready_to_sign(tmp_path: Path) -> None:
    run = full_run(tmp_path)
    html = render_run_report(run)
    sections = [a for t, a in tags(html) if t == "section"]
    assert [s["data-drill"] for s in sections] == [f"drill_{k}_x" for k in range(1, 9)]
    assert all(s["data-backend"] == "process" for s in sections)
    assert 'data-state="READY TO SIGN"' in html and "NOT READY" not in html
    assert html.count('data-verdict="PASS"') >= 8 * 2  # table badge and section per drill
    assert "run_20260101T000000Z_abc123_000001" in html and "abc123" in html
    # drill table: one row per drill, time to safe against budget (budget read from notes.md)
    rows = re.findall(r'<tr data-drill="([^"]+)">(.*?)</tr>', html)
    assert len(rows) == 8 and all("250 ms / 1000 ms" in r for _, r in rows)


def test_not_ready_names_the_drills_behind_it(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    for k in range(1, 9):
        make_drill(run, f"drill_{k}_x", verdict="FAIL" if k == 3 else "NOT PROVEN" if k == 5 else "PASS",
                   reason="latch never set" if k == 3 else "")
    html = render_run_report(run)
    assert 'data-state="NOT READY"' in html
    reasons = re.search(r'<ul id="not-ready-reasons">(.*?)</ul>', html).group(1)
    assert "drill_3_x (process): FAIL: latch never set" in reasons
    assert "drill_5_x (process): NOT PROVEN" in reasons
    assert "drill_1_x" not in reasons
    for v, cls in (("FAIL", "fail"), ("NOT PROVEN", "np"), ("PASS", "pass")):
        assert f'class="cd-badge {cls}" data-verdict="{v}"' in html


@pytest.mark.parametrize("damage", ["missing", "tampered", "too_few", "ops_only"])
def test_not_ready_when_evidence_incomplete(tmp_path: Path, damage: str) -> None:
    if damage == "too_few":
        run = full_run(tmp_path, n=7)
    elif damage == "ops_only":
        run = tmp_path / "runs" / "r"
        make_drill(run, "ops_c2_1_stop", group="ops")
    else:
        run = full_run(tmp_path)
        victim = run / "phase2" / "drill_2_x" / "diff.txt"
        victim.unlink() if damage == "missing" else victim.write_text("edited after the run\n")
    html = render_run_report(run)
    assert 'data-state="NOT READY"' in html
    reasons = re.search(r'<ul id="not-ready-reasons">(.*?)</ul>', html).group(1)
    expected = {"missing": "missing diff.txt", "tampered": "diff.txt: sha256 mismatch",
                "too_few": "only 7 of 8 Phase 2 drills", "ops_only": "no Phase 2 drill"}[damage]
    assert expected in reasons


def test_a_drill_that_died_early_still_renders(tmp_path: Path) -> None:
    run = full_run(tmp_path)
    d = make_drill(run, "drill_9_dead", verdict="ERROR", reason="target never started",
                   omit=("record.json", "timeline.jsonl.gz", "marks.json", "witness_ledger.jsonl", "checks.json",
                         "diff.txt"))
    html = render_run_report(run)
    assert 'data-drill="drill_9_dead"' in html and "target never started" in html
    assert "No record to draw from" in html and "record.json: cannot read" in html
    assert "No checks were recorded" in html and "missing diff.txt" in html
    assert "<svg" in drill_svg(d)


def test_the_phase_lane_is_drawn_from_the_records_phase_pairs(tmp_path: Path) -> None:
    d = make_drill(tmp_path / "runs" / "r", "drill_1_x", budget_ms=200)
    assert json.loads((d / "record.json").read_text())["phases"][0] == ["start", T0]  # the writer's shape
    data = load_drill(d)
    assert [name for name, _, _ in data.phases] == [name for name, _ in PHASES]
    assert data.phases[1] == ("steady_state", T0 + 0.5, T0 + 0.95)  # each phase lasts until the next one
    assert data.phases[-1][2] == pytest.approx(T0 + 2.99)           # the last one until the record's end
    html = drill_section_html(d)
    assert re.findall(r'<g class="phase" data-phase="(\w+)"', html) == [name for name, _ in PHASES]
    assert "250 ms / 200 ms (over budget)" in html and "A title for drill_1_x" in html


def test_a_rejected_order_that_fails_the_check_is_drawn_as_could_add_exposure(tmp_path: Path) -> None:
    # A non-reduce-only order the venue rejected, inside the blocked window: the check fails it (the
    # target dispatched an OPEN while blocked), so the chart must not draw it as "no effect".
    rejected = {"type": "order", "mono": T0 + 1.6, "received_mono": T0 + 1.6, "clOrdId": "o9", "side": "buy",
                "sz": 1, "reduceOnly": False, "effect": "none", "accepted": False, "sCode": "51008"}
    for with_flag in (True, False):  # the venue's own flag, or (an older ledger) the same definition applied
        entry = {**rejected, "could_add_exposure": True} if with_flag else rejected
        d = make_drill(tmp_path / "runs" / f"r{with_flag}", "drill_1_x", ledger=[entry])
        verdict = no_open_dispatch_while_blocked(DrillRecord.load(d))
        assert verdict.passed is False and "o9" in verdict.detail
        svg = drill_svg(d)
        assert re.findall(r'class="order" data-kind="(\w+)" data-while-blocked="1"', svg) == ["adds"]
        assert "rejected by the venue, but dispatched" in svg


# ------------------------------------------------------------------------------------------ escaping

def test_hostile_text_is_shown_never_run(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r"
    samples = [_sample(i, T0 + i * 0.01, HOSTILE if 50 <= i < 60 else "Active") for i in range(100)]
    samples[70] = _sample(70, T0 + 0.7, None, error=HOSTILE)
    make_drill(run, "drill_1_x", verdict="FAIL", reason=HOSTILE, samples=samples,
               checks=[{"name": HOSTILE, "passed": False, "detail": HOSTILE, "criterion": HOSTILE}],
               ledger=[{"type": "order", "mono": T0 + 0.2, "clOrdId": HOSTILE, "effect": "open"}])
    html = render_run_report(run, title=HOSTILE)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    found = tags(html)
    assert not [t for t, _ in found if t in ("script", "img", "iframe", "object", "embed")]
    assert not [a for _, attrs in found for a in attrs if a.startswith("on")]
    # the hostile mode is a band of its own ("unknown mode"), and its text is in the band's title
    assert 'data-state="other"' in html and "trading_mode=&#x27;&lt;script&gt;" in html


def test_no_network_no_script_self_contained(tmp_path: Path) -> None:
    html = render_run_report(full_run(tmp_path))
    assert "<script" not in html and "<link" not in html and "@import" not in html
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace name only, never fetched
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", html))
    assert "default-src 'none'" in html


# ------------------------------------------------------------------------------------------- the SVG

def _svg_scale(svg: str) -> tuple[float, float, float, float]:
    m = re.search(r'data-t0="([\d.]+)" data-t1="([\d.]+)" data-x0="(\d+)" data-width="(\d+)"', svg)
    return tuple(float(g) for g in m.groups())  # type: ignore[return-value]


@pytest.mark.parametrize("budget_ms", [300.0, 1000.0, 2500.0])
def test_budget_span_starts_at_the_fault_and_is_budget_long(tmp_path: Path, budget_ms: float) -> None:
    d = make_drill(tmp_path / "runs" / "r", "drill_1_x", budget_ms=budget_ms, tts_ms=400.0)
    svg = drill_svg(d)
    t0, t1, x0, w = _svg_scale(svg)
    x = lambda t: x0 + (t - t0) / (t1 - t0) * w  # noqa: E731
    landed = T0 + 0.99
    g = re.search(r'<g class="budget" data-start="([\d.]+)" data-end="([\d.]+)">.*?<rect x="([\d.]+)" y="[\d.]+" '
                  r'width="([\d.]+)".*?<line class="budget-end" x1="([\d.]+)"', svg)
    start, end, rx, rw, ex = map(float, g.groups())
    assert start == pytest.approx(landed) and end == pytest.approx(landed + budget_ms / 1000)
    assert rx == pytest.approx(x(landed), abs=0.02)
    assert ex == pytest.approx(x(landed + budget_ms / 1000), abs=0.02)
    assert rw == pytest.approx(x(landed + budget_ms / 1000) - x(landed), abs=0.05)
    tts = re.search(r'<g class="tts" data-start="([\d.]+)" data-end="([\d.]+)">', svg)
    assert float(tts.group(2)) - float(tts.group(1)) == pytest.approx(0.4)
    over = "over budget" in re.search(r'<g class="tts".*?</g>', svg).group(0)
    assert over is (400.0 > budget_ms)


def test_time_to_safe_is_drawn_from_the_safe_sample_back_to_the_faults_effect(tmp_path: Path) -> None:
    # crash style: the fault took effect (process killed) well before the harness marked fault_landed
    d = make_drill(tmp_path / "runs" / "r", "drill_4_x", budget_ms=1000.0, tts_ms=300.0, landed=T0 + 1.2,
                   landed_mark=T0 + 1.6)
    data = load_drill(d, verify_hashes=False)
    assert data.safe_mono == pytest.approx(T0 + 1.5) and data.origin_mono == pytest.approx(T0 + 1.2)
    svg = drill_svg(data)
    tts = re.search(r'<g class="tts" data-start="([\d.]+)" data-end="([\d.]+)">', svg)
    assert (float(tts.group(1)), float(tts.group(2))) == pytest.approx((T0 + 1.2, T0 + 1.5))
    budget = re.search(r'<g class="budget" data-start="([\d.]+)" data-end="([\d.]+)">', svg)
    assert (float(budget.group(1)), float(budget.group(2))) == pytest.approx((T0 + 1.2, T0 + 2.2))


def test_a_budget_far_beyond_the_drill_runs_off_the_chart_labelled(tmp_path: Path) -> None:
    svg = drill_svg(make_drill(tmp_path / "runs" / "r", "drill_4_x", budget_ms=15000.0))
    t0, t1, _, _ = _svg_scale(svg)
    assert t1 - t0 < 5  # the 3 s drill is not squeezed into a 16 s axis
    assert "budget 15000 ms, ends at 15.99 s (off the chart)" in svg and "budget-end" not in svg


def test_svg_has_markers_orders_exposure_and_text_alternative(tmp_path: Path) -> None:
    svg = drill_svg(make_drill(tmp_path / "runs" / "r", "drill_1_x"))
    assert svg.startswith("<svg") and 'role="img"' in svg and "aria-labelledby=" in svg
    assert re.search(r"<title id=[^>]+>drill_1_x \(process\) timeline</title>", svg)
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg).group(1)
    assert "2 mode change(s)" in desc and "Time to safe 250 ms against a budget of 1000 ms" in desc
    assert {m for m in re.findall(r'data-mark="([^"]+)"', svg)} == {
        "trigger", "fault_landed", "safe_observed", "release", "recovered"}
    assert re.findall(r'class="order" data-kind="(\w+)"', svg) == ["adds", "reduces", "none"]
    assert '<g class="exposure">' in svg
    assert "data-while-blocked" not in svg  # the open order came before the blocked window
    assert re.findall(r'<g class="phase" data-phase="(\w+)"', svg) == [name for name, _ in PHASES]
    modes = re.findall(r'data-lane="mode" data-state="(\w+)"', svg)
    latch = re.findall(r'data-lane="latch" data-state="(\w+)"', svg)
    assert modes == ["Active", "ReduceOnly", "Active"] and latch == ["clear", "set", "clear"]
    # not colour alone: ReduceOnly and the latch are patterned
    assert re.search(r'data-state="ReduceOnly".*?url\(#[^)]*-hatch\)', svg)


def test_orders_that_could_add_exposure_while_blocked_are_ringed(tmp_path: Path) -> None:
    ledger = [{"type": "order", "mono": T0 + t, "clOrdId": f"o{k}", "effect": e, "reduceOnly": e == "reduce"}
              for k, (t, e) in enumerate([(0.5, "open"), (1.2, "open"), (1.3, "reduce"), (1.4, "flip"), (2.5, "open")])]
    svg = drill_svg(make_drill(tmp_path / "runs" / "r", "drill_1_x", ledger=ledger))
    ringed = re.findall(r'data-while-blocked="1" data-t="([\d.]+)"', svg)
    assert [float(t) for t in ringed] == pytest.approx([T0 + 1.2, T0 + 1.4])


def test_downsampling_keeps_every_mode_change(tmp_path: Path) -> None:
    # 12,000 samples (a long run's ~1 MB timeline) with short blips, a single-sample Kill among them
    modes = ["Active"] * 12000
    changes = {3000: "ReduceOnly", 3001: "Active", 6000: "Kill", 6400: "ReduceOnly", 9000: "Active"}
    cur = "Active"
    for i in range(12000):
        cur = changes.get(i, cur)
        modes[i] = cur
    samples = [_sample(i, T0 + i * 0.001, modes[i]) for i in range(12000)]
    samples[7000] = _sample(7000, T0 + 7.0, None, error="connection refused")
    d = make_drill(tmp_path / "runs" / "r", "drill_1_x", samples=samples)
    assert len(read_timeline(d)) > 900_000
    svg = drill_svg(d)
    got = [(s, float(t)) for s, t in re.findall(r'data-lane="mode" data-state="([\w-]+)" data-start="([\d.]+)"', svg)]
    want = [("Active", T0), ("ReduceOnly", T0 + 3.0), ("Active", T0 + 3.001), ("Kill", T0 + 6.0),
            ("ReduceOnly", T0 + 6.4), ("error", T0 + 7.0), ("ReduceOnly", T0 + 7.001), ("Active", T0 + 9.0)]
    assert [s for s, _ in got] == [s for s, _ in want]
    assert [t for _, t in got] == pytest.approx([t for _, t in want])
    assert len(svg) < 20_000  # grows with the changes, not with the samples


def test_flapping_beyond_the_band_limit_is_merged_but_counted() -> None:
    samples = [_sample(i, T0 + i * 0.001, "Active" if i % 2 else "ReduceOnly") for i in range(3 * MAX_BANDS)]
    bands, changes, n = bands_from_samples(samples)
    assert len(bands) == 3 * MAX_BANDS and changes == 3 * MAX_BANDS - 1 and n == 3 * MAX_BANDS
    merged = merge_narrow(bands, min_width=0.01)
    assert len(merged) < 10 and merged[0].state == "mixed"
    assert sum(b.samples for b in merged) == n
    wide = [Band(0, 1, "Active", 1, 0), Band(1, 2, "Kill", 1, 1)]
    assert merge_narrow(wide, 5.0, limit=1) != wide  # narrow by width: merged when over the limit
    assert merge_narrow(wide, 5.0) == wide            # under the limit nothing is merged


# ------------------------------------------------------------------------------------ links and CLI

def test_links_are_relative_to_where_the_report_is_written(tmp_path: Path) -> None:
    run = full_run(tmp_path, n=1)
    out = write_run_report(run)
    assert out == run / "report.html"
    hrefs = [a["href"] for t, a in tags(out.read_text()) if t == "a" and not a["href"].startswith("#")]
    for name in ("notes.md", "timeline.jsonl.gz", "witness_ledger.jsonl", "trigger.md", "diff.txt", "validation.log"):
        assert f"phase2/drill_1_x/{name}" in hrefs
    other = tmp_path / "elsewhere" / "r.html"
    write_run_report(run, other)
    for href in [a["href"] for t, a in tags(other.read_text()) if t == "a" and not a["href"].startswith("#")]:
        assert not os.path.isabs(href) and (other.parent / href).exists(), href


def test_section_html_standalone_carries_its_css(tmp_path: Path) -> None:
    d = make_drill(tmp_path / "runs" / "r", "drill_1_x")
    html = drill_section_html(d)
    assert html.startswith("<style>") and '<section class="cd-drill"' in html and "Legend:" in html


def test_cli_report_and_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = full_run(tmp_path, n=2)
    assert cli.main(["report", str(run), "-o", str(tmp_path / "o.html")]) == 0
    assert (tmp_path / "o.html").read_text().count("<section") == 2
    assert capsys.readouterr().out.strip() == str(tmp_path / "o.html")
    with pytest.raises(SystemExit) as e:  # a usage error: argparse exits 2 naming the argument
        cli.main(["report", str(tmp_path / "nope")])
    assert e.value.code == 2 and "EVIDENCE_RUN_DIR: " in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2  # not a run folder
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"chaosdrill {__version__}"


# ------------------------------------------------------------------------------------ headless browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CHAOSDRILL_REQUIRE_BROWSER") == "1":
            pytest.fail("CHAOSDRILL_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium (Debian package chromium); set CHAOSDRILL_REQUIRE_BROWSER=1 to fail instead")
    return CHROMIUM


class _Devtools:
    """A minimal Chrome DevTools Protocol client over one page target's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 20.0, **params: Any) -> dict[str, Any]:
        self.n += 1
        my = self.n
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise AssertionError(f"{method}: no answer in {timeout}s")

    def wait_event(self, method: str, timeout: float = 20.0) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise AssertionError(f"no {method} in {timeout}s")


@contextmanager
def chromium_page(chromium: Path, page_file: Path) -> Iterator[_Devtools]:
    """Headless Chromium with ``page_file`` loaded; yields its DevTools client; always stops the browser."""
    import websocket  # the [test] extra's websocket-client
    import urllib.request

    profile = Path(tempfile.mkdtemp(prefix="chaosdrill-chromium-"))
    proc = subprocess.Popen(
        [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         "--window-size=1200,1600", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port in 30 s"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(p for p in pages if p.get("type") == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=20, suppress_origin=True)
        dt = _Devtools(ws)
        for domain in ("Page", "Runtime", "Log"):
            dt.call(f"{domain}.enable")
        dt.call("Page.navigate", url=page_file.resolve().as_uri())
        dt.wait_event("Page.loadEventFired")
        yield dt
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def test_report_loads_in_headless_chromium(tmp_path: Path, chromium: Path) -> None:
    pytest.importorskip("websocket", reason="websocket-client (the [test] extra) is needed")

    run = tmp_path / "runs" / "run_browser"
    for k in range(1, 9):
        make_drill(run, f"drill_{k}_x", verdict="FAIL" if k == 4 else "PASS", reason=HOSTILE if k == 4 else "")
    samples = [_sample(i, T0 + i * 0.01, HOSTILE if 40 <= i < 50 else "Active") for i in range(100)]
    make_drill(run, "drill_9_hostile", group="ops", samples=samples, reason=HOSTILE)
    report = write_run_report(run)

    with chromium_page(chromium, report) as dt:

        def js(expr: str) -> Any:
            r = dt.call("Runtime.evaluate", expression=expr, returnByValue=True)
            assert "exceptionDetails" not in r, r
            return r["result"].get("value")

        sections = js("[...document.querySelectorAll('section[data-drill]')].map(s => [s.dataset.drill, s.dataset.backend])")
        assert sections == [[f"drill_{k}_x", "process"] for k in range(1, 9)] + [["drill_9_hostile", "process"]]
        assert js("document.getElementById('signoff-state').dataset.state") == "NOT READY"
        assert js("document.querySelectorAll('script, img').length") == 0
        assert js("typeof window.__pwned") == "undefined"
        # the hostile reason is on the page as text
        assert HOSTILE in js("document.querySelector('section[data-drill=drill_4_x]').innerText")
        # every drill's SVG was laid out (a broken SVG would render with no box)
        boxes = js("[...document.querySelectorAll('svg.cd-timeline')].map(s => s.getBoundingClientRect().height)")
        assert len(boxes) == 9 and all(h > 100 for h in boxes)

        shot = base64.b64decode(dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000
        out = os.environ.get("CHAOSDRILL_SCREENSHOT")
        if out:  # keep it to look at (CI artifact or a person checking the layout)
            Path(out).write_bytes(shot)

        dt.call("Runtime.evaluate", expression="1")
        problems = [e for e in dt.events if e.get("method") == "Runtime.exceptionThrown"
                    or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert", "warning"))
                    or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") in ("error", "warning"))]
        assert problems == [], problems


def test_pytest_html_rows_carry_the_drill_chart_and_evidence_link(pytester: pytest.Pytester) -> None:
    """With pytest-html installed, each drill's row gets its timeline SVG and a link to its evidence."""
    pytest.importorskip("pytest_html")
    root = Path(__file__).resolve().parents[2]
    drills = pytester.path / "mydrills"
    drills.mkdir()
    (drills / "gap.yaml").write_text((root / "drills" / "drill_5_ws_book_gap.yaml").read_text())
    pytester.makepyfile(test_drills="def test_drill(chaosdrill_run):\n    chaosdrill_run.execute()\n")
    result = pytester.runpytest_subprocess(f"--chaosdrill-drills={drills}", f"--html={pytester.path / 'r.html'}",
                                           "-p", "no:cacheprovider", timeout=150)
    result.assert_outcomes(passed=1)
    page = (pytester.path / "r.html").read_text()
    assert "data-drill" in page and "evidence folder" in page and "svg" in page  # pytest-html escapes its rows

    # The same run's own record, as the drill wrote it: the report draws its phases and its orders as
    # the checks judge them, and shows the sign-off state SIGNOFF.md was written with.
    (folder,) = [p.parent for p in pytester.path.rglob("record.json")]
    record = DrillRecord.load(folder)
    view = load_drill(folder)
    assert record.phases and [name for name, _, _ in view.phases] == [name for name, _ in record.phases]
    assert re.findall(r'<g class="phase" data-phase="(\w+)"', drill_svg(view)) == [n for n, _ in record.phases]
    orders = [e for e in record.ledger if e.get("type") == "order"]
    assert [o.kind == "adds" for o in view.orders] == [could_add_exposure(e) for e in orders]
    run_dir = folder.parent.parent
    report = (run_dir / "report.html").read_text()
    signoff = (run_dir / "SIGNOFF.md").read_text()
    assert (run_dir / "signoff.json").is_file()
    state = re.search(r'id="signoff-state" data-state="([^"]+)"', report).group(1)
    assert ("# READY TO SIGN" in signoff) == (state == "READY TO SIGN")  # one drill of eight: NOT READY in both
    assert state == "NOT READY"
