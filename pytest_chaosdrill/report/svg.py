"""The drill timeline as one inline SVG (modes, latch, phases, budget, markers, orders, exposure).

Everything drawn comes from a :class:`~pytest_chaosdrill.report.view.DrillData`; every text from the
evidence is escaped. Colour is never the only cue: each state has a pattern and a label too.
"""
from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from .view import Band, DrillData, _num, load_drill, merge_narrow

# Mode states: label, fill colour, pattern id suffix (None = solid). Colour is never the only cue:
# each state has a pattern and a text label in the band (when wide enough) and in its <title>.
STATES: dict[str, tuple[str, str, str | None]] = {
    "Active": ("Active", "#3a9d5d", None),
    "ReduceOnly": ("ReduceOnly", "#e0a526", "hatch"),
    "Kill": ("Kill", "#c0392b", "cross"),
    "error": ("error (no answer)", "#7f8c8d", "dots"),
    "no-status": ("no status payload", "#bdc3c7", "dash"),
    "other": ("unknown mode", "#8e44ad", "dots"),
    "mixed": ("many changes (merged)", "#555555", "cross"),
}
LATCH: dict[str, tuple[str, str, str | None]] = {
    "set": ("latch set", "#6c3483", "hatch"),
    "clear": ("latch clear", "#d5e8d4", None),
    "unknown": ("latch unknown", "#ecf0f1", "dash"),
}
MARKERS = {  # label -> (short text, colour, dash)
    "trigger": ("trigger", "#34495e", "2,2"),
    "fault_landed": ("fault landed", "#c0392b", None),
    "safe_observed": ("safe", "#1f618d", None),
    "release": ("released", "#27ae60", None),
    "recovered": ("recovered", "#117a65", "6,2"),
    "restart": ("restart", "#7d3c98", "4,2"),
    "target_down": ("target down", "#7b241c", "1,2"),
    "target_up": ("target up", "#196f3d", "1,2"),
}


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
    if d.record is None:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{_W}" height="40" viewBox="0 0 {_W} 40">'
                f'<title>{_e(d.drill_id)}: no record to draw from</title><text x="8" y="24" font-size="13">'
                f'No timeline: {_e(d.record_problem or "record.json missing")}</text></svg>')
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
            f"{STATES.get(b.state, ('?',))[0]} from {_fmt_t(rel(b.start))}" for b in d.mode_bands[:12])
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
    parts += _band_rects(mode_bands, STATES, sc, y_mode, 26, p, "mode")
    lane_label(y_latch + 12, "latch")
    parts += _band_rects(merge_narrow(d.latch_bands, sc.sec_per_px), LATCH, sc, y_latch, 16, p, "latch")

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
            what = "could add exposure" + ("" if o.accepted else " (rejected by the venue, but dispatched)")
        elif o.kind == "reduces":
            shape = f'<path d="M{x},{yc - 6}L{x + 5},{yc}L{x},{yc + 6}L{x - 5},{yc}Z" fill="#27ae60" stroke="#000" stroke-width=".6"/>'
            what = "reduce-only / risk-reducing"
        else:
            shape = f'<circle cx="{x}" cy="{yc}" r="4" fill="none" stroke="#555" stroke-width="1.3"/>'
            what = "no effect (reduce-only, rejected or nothing filled)"
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
        if label in MARKERS and t is not None and (label, t) not in seen:
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
        text = " / ".join(dict.fromkeys(MARKERS[label][0] for _, label, _ in g))
        width = 5.6 * len(text) + 6
        flip = x + width > _W - 2  # near the right edge the label goes left of its line
        left = x - width if flip else x
        row = next((i for i, end in enumerate(rows_end) if end < left), None)
        if row is None:  # every row is taken here: use the one that frees up first
            row = min(range(_MARK_ROWS), key=lambda i: rows_end[i])
        rows_end[row] = left + width + 4
        ty = y_mark + row * 12
        colour = MARKERS[g[0][1]][1]
        parts.append(f'<text x="{x - 2 if flip else x + 2}" y="{ty}" font-size="10" fill="{colour}"'
                     + (' text-anchor="end"' if flip else "") + f' aria-hidden="true">{_e(text)}</text>')
        for t, label, m in g:
            mtext, mcolour, dash = MARKERS[label]
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


#: The chart's legend (HTML), shown once per page.
LEGEND = (
    '<div class="cd-legend" aria-label="legend"><strong>Legend:</strong> '
    'trading_mode bands: <b>Active</b> green solid; <b>ReduceOnly</b> amber, diagonal hatch; '
    '<b>Kill</b> red, cross-hatch; <b>error / no answer</b> grey, dotted; <b>no status payload</b> light grey, dashed. '
    'Latch lane: <b>set</b> purple hatch, <b>clear</b> pale green. '
    'Orders: <b>▲ red triangle</b> could add exposure (not reduce-only, even if rejected; or open/flip); <b>◆ green diamond</b> reduce-only or '
    'risk-reducing; <b>○ hollow circle</b> no effect (rejected); a <b>black ring</b> around a triangle: it reached '
    'the venue while the status said OPEN blocked. '
    'Time to safe: solid bar from the fault taking effect to the first safe sample (red when over budget), '
    'hatched box = the budget. Vertical lines: trigger, fault landed, safe, released, recovered, restart. '
    'Exposure: step line from the venue ledger\'s position entries. Hover any shape for its exact values.</div>')
