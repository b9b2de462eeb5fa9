"""Small, dependency-free SVG charts for asset metadata and self-contained HTML reports.

The Dagster UI renders a markdown image with an SVG data URI (``md_image``); reports can inline
the SVG text directly. No network, no plotting library. No Dagster import.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
_PAD = {"left": 64, "right": 150, "top": 34, "bottom": 36}


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def _fmt(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.1f}B"
    if a >= 1e6:
        return f"{v / 1e6:.1f}M"
    if a >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.2g}" if a < 10 else f"{v:.0f}"


def _xnum(x: Sequence) -> list[float]:
    out = []
    for v in x:
        if isinstance(v, (dt.date, dt.datetime)):
            out.append(dt.datetime.combine(v, dt.time()).timestamp() if not isinstance(v, dt.datetime) else v.timestamp())
        elif hasattr(v, "timestamp"):
            out.append(float(v.timestamp()))
        else:
            out.append(float(v))
    return out


def _xlabel(v, is_date: bool) -> str:
    return dt.datetime.fromtimestamp(v, dt.timezone.utc).strftime("%Y-%m") if is_date else _fmt(v)


def _frame(title: str, width: int, height: int, y_lo: float, y_hi: float, x_lo: float, x_hi: float, is_date: bool, y_label: str) -> tuple[list[str], callable, callable]:
    pl, pr, pt, pb = _PAD["left"], _PAD["right"], _PAD["top"], _PAD["bottom"]
    iw, ih = width - pl - pr, height - pt - pb
    ticks = _nice_ticks(y_lo, y_hi)
    y_lo, y_hi = min(ticks[0], y_lo), max(ticks[-1], y_hi)
    sx = lambda v: pl + (v - x_lo) / ((x_hi - x_lo) or 1.0) * iw  # noqa: E731
    sy = lambda v: pt + ih - (v - y_lo) / ((y_hi - y_lo) or 1.0) * ih  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{pl}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for t in ticks:
        y = sy(t)
        parts.append(f'<line x1="{pl}" x2="{pl + iw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{pl - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(t)}</text>')
    for i in range(5):
        xv = x_lo + (x_hi - x_lo) * i / 4
        parts.append(f'<text x="{sx(xv):.1f}" y="{pt + ih + 16}" text-anchor="middle" fill="#555">{html.escape(_xlabel(xv, is_date))}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{pt + ih / 2:.1f}" transform="rotate(-90 12 {pt + ih / 2:.1f})" text-anchor="middle" fill="#555">{html.escape(y_label)}</text>')
    return parts, sx, sy


def _legend(parts: list[str], names: Sequence[str], width: int) -> None:
    x = width - _PAD["right"] + 12
    for i, name in enumerate(names):
        y = _PAD["top"] + 14 * i
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}">{html.escape(str(name)[:22])}</text>')


def line_chart(x: Sequence, series: Mapping[str, Sequence[float]], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Lines sharing one x axis (dates or numbers)."""
    is_date = bool(len(x)) and (isinstance(x[0], (dt.date, dt.datetime)) or hasattr(x[0], "timestamp"))
    xs = _xnum(x)
    values = [float(v) for s in series.values() for v in s if v is not None and math.isfinite(float(v))]
    y_lo, y_hi = (min(values + [0.0]), max(values + [1.0])) if values else (0.0, 1.0)
    parts, sx, sy = _frame(title, width, height, y_lo, y_hi, min(xs or [0]), max(xs or [1]), is_date, y_label)
    for i, (name, ys) in enumerate(series.items()):
        pts = " ".join(f"{sx(a):.1f},{sy(float(b)):.1f}" for a, b in zip(xs, ys) if b is not None and math.isfinite(float(b)))
        parts.append(f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.8" points="{pts}"/>')
    _legend(parts, list(series), width)
    parts.append("</svg>")
    return "".join(parts)


def stacked_area_chart(x: Sequence, series: Mapping[str, Sequence[float]], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Stacked areas (non-negative parts of a total), bottom series first."""
    is_date = bool(len(x)) and (isinstance(x[0], (dt.date, dt.datetime)) or hasattr(x[0], "timestamp"))
    xs = _xnum(x)
    n = len(xs)
    cum = [0.0] * n
    layers = []
    for ys in series.values():
        lower = cum[:]
        cum = [c + max(float(v or 0.0), 0.0) for c, v in zip(cum, ys)]
        layers.append((lower, cum[:]))
    parts, sx, sy = _frame(title, width, height, 0.0, max(cum + [1.0]), min(xs or [0]), max(xs or [1]), is_date, y_label)
    for i, (lower, upper) in enumerate(layers):
        top = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xs, upper))
        bottom = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(reversed(xs), reversed(lower)))
        parts.append(f'<polygon fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.85" points="{top} {bottom}"/>')
    _legend(parts, list(series), width)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Vertical bars, one per label (negative values drawn below zero)."""
    vals = [float(v) for v in values]
    y_lo, y_hi = min(vals + [0.0]), max(vals + [1.0])
    parts, _, sy = _frame(title, width, height, y_lo, y_hi, 0, 1, False, y_label)
    parts = [p for p in parts if 'text-anchor="middle" fill="#555"' not in p]  # no numeric x ticks
    iw = width - _PAD["left"] - _PAD["right"]
    bw = iw / max(len(vals), 1)
    for i, (label, v) in enumerate(zip(labels, vals)):
        x = _PAD["left"] + i * bw + bw * 0.15
        y0, y1 = sy(0.0), sy(v)
        parts.append(f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{bw * 0.7:.1f}" height="{abs(y1 - y0):.1f}" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{height - 20}" text-anchor="middle" fill="#555">{html.escape(str(label)[:14])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def md_image(svg: str, alt: str = "chart") -> str:
    """Markdown image with the SVG as a base64 data URI (rendered by the Dagster UI's metadata view)."""
    return f"![{html.escape(alt)}](data:image/svg+xml;base64,{base64.b64encode(svg.encode('utf-8')).decode('ascii')})"


INLINE_LIMIT = 990
"""The Dagster UI renders markdown metadata inline below 1,000 characters (longer: behind a button)."""


def sparkline_md(series: Mapping[str, Sequence[float]], alt: str = "preview", limit: int = INLINE_LIMIT) -> str:
    """A tiny multi-line chart as a markdown data-URI image short enough to render inline.

    Each series is scaled to a shared 100×30 box and thinned until the markdown fits ``limit``
    characters; the full chart (``line_chart``) belongs in another metadata entry.
    """
    values = [float(v) for s in series.values() for v in s if v is not None and math.isfinite(float(v))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = (hi - lo) or 1.0
    points = max((len(s) for s in series.values()), default=2)
    while points >= 2:
        lines = []
        for i, ys in enumerate(series.values()):
            ys = [float(v) for v in ys]
            idx = [round(k * (len(ys) - 1) / (points - 1)) for k in range(points)] if len(ys) > 1 else [0]
            pts = " ".join(f"{round(100 * k / max(points - 1, 1))},{round(29 - 28 * (ys[j] - lo) / span)}" for k, j in enumerate(idx))
            lines.append(f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" points="{pts}"/>')
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 30" width="320" height="96">{"".join(lines)}</svg>'
        md = md_image(svg, alt)
        if len(md) <= limit:
            return md
        points = int(points * 0.8)
    return md_image('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 30"/>', alt)


# --------------------------------------------------------------------------------------------
# Report charts (horizontal bars, grouped bars, funnel, forecast band, intervals). Same style,
# no dependencies; every label is escaped after truncation so the SVG stays valid XML.


def _label(v, limit: int = 28) -> str:
    text = str(v)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _svg_open(width: int, height: int, title: str) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if title:
        parts.append(f'<text x="8" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>')
    return parts


def _finite(values: Sequence) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return 0.0
    return f if math.isfinite(f) else 0.0


def hbar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    title: str = "",
    *,
    width: int = 760,
    bar_height: int = 22,
    value_labels: Sequence[str] | None = None,
    label_width: int = 190,
    color: str | None = None,
    colors: Sequence[str | None] | None = None,
) -> str:
    """Horizontal bars, one row per label, with the value written at the end of each bar (``colors``: one per bar)."""
    vals = [_num(v) for v in values]
    top = 30 if title else 8
    height = top + bar_height * max(len(vals), 1) + 10
    parts = _svg_open(width, height, title)
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    span = (hi - lo) or 1.0
    x0, iw = label_width, width - label_width - 110
    sx = lambda v: x0 + (v - lo) / span * iw
    for i, (label, v) in enumerate(zip(labels, vals)):
        y = top + i * bar_height
        a, b = sorted((sx(0.0), sx(v)))
        parts.append(f'<text x="{x0 - 8}" y="{y + bar_height * 0.68:.1f}" text-anchor="end" fill="#333">{_label(label)}</text>')
        parts.append(f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 1):.1f}" height="{bar_height - 6}" fill="{(colors[i] if colors is not None and i < len(colors) and colors[i] else None) or color or PALETTE[0]}"/>')
        text = value_labels[i] if value_labels is not None else _fmt(v)
        parts.append(f'<text x="{b + 6:.1f}" y="{y + bar_height * 0.68:.1f}" fill="#333">{html.escape(str(text))}</text>')
    if lo < 0:
        parts.append(f'<line x1="{sx(0.0):.1f}" x2="{sx(0.0):.1f}" y1="{top}" y2="{height - 10}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bar_chart(
    categories: Sequence[str],
    groups: Mapping[str, Sequence[float]],
    title: str = "",
    *,
    width: int = 760,
    height: int = 300,
    y_label: str = "",
    colors: Sequence[str] | None = None,
) -> str:
    """Vertical bars grouped by category: one bar per group (series) inside each category, legend below."""
    colors = list(colors or PALETTE)
    names = list(groups)
    vals = [_finite(groups[n]) for n in names]
    flat = [v for vs in vals for v in vs]
    top = 30 if title else 12
    legend_rows = math.ceil(len(names) / max(int((width - 70) // 150), 1))
    bottom = 40 + 16 * legend_rows
    left = 64
    ih, iw = height - top - bottom, width - left - 12
    ticks = _nice_ticks(min(flat + [0.0]), max(flat + [1.0]))
    lo, hi = ticks[0], ticks[-1]
    sy = lambda v: top + ih - (v - lo) / ((hi - lo) or 1.0) * ih
    parts = _svg_open(width, height, title)
    for t in ticks:
        parts.append(f'<line x1="{left}" x2="{left + iw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555">{_fmt(t)}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{top + ih / 2:.1f}" transform="rotate(-90 12 {top + ih / 2:.1f})" text-anchor="middle" fill="#555">{html.escape(y_label)}</text>')
    n_cat = max(len(categories), 1)
    cw = iw / n_cat
    bw = cw * 0.8 / max(len(names), 1)
    for c, cat in enumerate(categories):
        for g, name in enumerate(names):
            series = list(groups[name])
            v = _num(series[c]) if c < len(series) else 0.0
            x = left + c * cw + cw * 0.1 + g * bw
            y0, y1 = sy(0.0), sy(v)
            parts.append(f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{max(bw - 1, 1):.1f}" height="{abs(y1 - y0):.1f}" fill="{colors[g % len(colors)]}"><title>{_label(cat, 60)} – {_label(name, 60)}: {_fmt(v)}</title></rect>')
        parts.append(f'<text x="{left + c * cw + cw / 2:.1f}" y="{top + ih + 16}" text-anchor="middle" fill="#333">{_label(cat, max(int(cw / 6.5), 4))}</text>')
    per_row = max(int((width - 70) // 150), 1)
    for g, name in enumerate(names):
        x = left + (g % per_row) * 150
        y = top + ih + 28 + 16 * (g // per_row)
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colors[g % len(colors)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}">{_label(name, 20)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def funnel_chart(
    stages: Sequence[str],
    counts: Sequence[float],
    title: str = "",
    *,
    width: int = 760,
    bar_height: int = 34,
    notes: Sequence[str] | None = None,
    label_width: int = 130,
    note_width: int = 230,
) -> str:
    """Centred funnel bars (width ∝ count), stage name left, count and a note (e.g. conversion) right."""
    vals = [max(_num(v), 0.0) for v in counts]
    top = 30 if title else 8
    height = top + bar_height * max(len(vals), 1) + 8
    parts = _svg_open(width, height, title)
    left, right = label_width, note_width
    iw = width - left - right
    hi = max(vals + [1.0])
    cx = left + iw / 2
    for i, (stage, v) in enumerate(zip(stages, vals)):
        y = top + i * bar_height
        w = max(iw * v / hi, 2)
        parts.append(f'<text x="{left - 10}" y="{y + bar_height * 0.62:.1f}" text-anchor="end" fill="#333">{_label(stage, 18)}</text>')
        parts.append(f'<rect x="{cx - w / 2:.1f}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" fill="{PALETTE[i % len(PALETTE)]}"/>')
        note = f"{v:,.0f}" + (f"  ({notes[i]})" if notes is not None and i < len(notes) and notes[i] else "")
        parts.append(f'<text x="{left + iw + 10}" y="{y + bar_height * 0.62:.1f}" fill="#333">{html.escape(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def band_chart(
    x: Sequence,
    y: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    title: str = "",
    *,
    width: int = 760,
    height: int = 280,
    y_label: str = "",
    name: str = "expected",
    band_name: str = "interval",
) -> str:
    """A line with a shaded lower–upper band (forecast with its interval)."""
    is_date = bool(len(x)) and (isinstance(x[0], (dt.date, dt.datetime)) or hasattr(x[0], "timestamp"))
    xs = _xnum(x)
    values = _finite(list(y) + list(lower) + list(upper))
    y_lo, y_hi = (min(values + [0.0]), max(values + [1.0])) if values else (0.0, 1.0)
    parts, sx, sy = _frame(title, width, height, y_lo, y_hi, min(xs or [0]), max(xs or [1]), is_date, y_label)
    band = [(a, _num(lo), _num(hi)) for a, lo, hi in zip(xs, lower, upper)]
    if band:
        top = " ".join(f"{sx(a):.1f},{sy(h):.1f}" for a, _, h in band)
        bottom = " ".join(f"{sx(a):.1f},{sy(lo_):.1f}" for a, lo_, _ in reversed(band))
        parts.append(f'<polygon fill="{PALETTE[0]}" fill-opacity="0.22" points="{top} {bottom}"/>')
    pts = " ".join(f"{sx(a):.1f},{sy(_num(b)):.1f}" for a, b in zip(xs, y))
    parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" points="{pts}"/>')
    for a, b in zip(xs, y):
        parts.append(f'<circle cx="{sx(a):.1f}" cy="{sy(_num(b)):.1f}" r="3" fill="{PALETTE[0]}"/>')
    lx = width - _PAD["right"] + 12
    parts.append(f'<line x1="{lx}" x2="{lx + 12}" y1="{_PAD["top"] + 5}" y2="{_PAD["top"] + 5}" stroke="{PALETTE[0]}" stroke-width="2"/>')
    parts.append(f'<text x="{lx + 16}" y="{_PAD["top"] + 9}">{_label(name, 20)}</text>')
    parts.append(f'<rect x="{lx}" y="{_PAD["top"] + 16}" width="12" height="10" fill="{PALETTE[0]}" fill-opacity="0.22"/>')
    parts.append(f'<text x="{lx + 16}" y="{_PAD["top"] + 25}">{_label(band_name, 20)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    title: str = "",
    *,
    width: int = 760,
    row_height: int = 28,
    reference: float | None = None,
    reference_label: str = "",
    label_width: int = 170,
    value_labels: Sequence[str] | None = None,
) -> str:
    """One row per label: a dot at the estimate and a whisker from low to high (e.g. ROI with its interval)."""
    vals, los, his = [_num(v) for v in values], [_num(v) for v in lows], [_num(v) for v in highs]
    top = (30 if title else 10) + (16 if reference is not None and reference_label else 0)
    height = top + row_height * max(len(vals), 1) + 28
    left, iw = label_width, width - label_width - 90
    flat = vals + los + his + ([reference] if reference is not None else []) + [0.0]
    ticks = _nice_ticks(min(flat), max(flat))
    lo, hi = ticks[0], ticks[-1]
    sx = lambda v: left + (v - lo) / ((hi - lo) or 1.0) * iw
    parts = _svg_open(width, height, title)
    base = top + row_height * max(len(vals), 1)
    for t in ticks:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{base}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{sx(t):.1f}" y="{base + 16}" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    if reference is not None:
        parts.append(f'<line x1="{sx(reference):.1f}" x2="{sx(reference):.1f}" y1="{top - 4}" y2="{base}" stroke="#cf222e" stroke-dasharray="4 3"/>')
        if reference_label:
            parts.append(f'<text x="{sx(reference) + 4:.1f}" y="{top - 6}" fill="#cf222e" font-size="11">{_label(reference_label, 40)}</text>')
    for i, (label, v, a, b) in enumerate(zip(labels, vals, los, his)):
        y = top + i * row_height + row_height / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#333">{_label(label, 24)}</text>')
        parts.append(f'<line x1="{sx(min(a, b)):.1f}" x2="{sx(max(a, b)):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{PALETTE[0]}" stroke-width="3" stroke-opacity="0.5"/>')
        parts.append(f'<circle cx="{sx(v):.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[0]}"/>')
        text = value_labels[i] if value_labels is not None and i < len(value_labels) else _fmt(v)
        parts.append(f'<text x="{max(sx(v), sx(max(a, b))) + 8:.1f}" y="{y + 4:.1f}" fill="#333">{html.escape(str(text))}</text>')
    parts.append("</svg>")
    return "".join(parts)
