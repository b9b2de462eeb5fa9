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
        parts.append(f'<text x="{x + 14}" y="{y + 9}">{html.escape(str(name))[:22]}</text>')


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
        parts.append(f'<text x="{x + bw * 0.35:.1f}" y="{height - 20}" text-anchor="middle" fill="#555">{html.escape(str(label))[:14]}</text>')
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
