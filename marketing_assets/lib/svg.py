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
FONT_SIZE = 11
"""Default font size of the axis charts (``line_chart``, ``stacked_area_chart``, ``band_chart``, ``bar_chart``)."""

# Advance widths in em, per character the larger of a Helvetica/Arial-metric sans-serif (macOS, Windows, Liberation
# Sans) and DejaVu Sans (what Debian's fontconfig gives Chromium for ``sans-serif``), both measured in headless
# Chromium; ``text_width`` adds a margin for hinting and wider fonts (Verdana). Characters not listed: 0.64 em
# below the CJK blocks, 1 em within them.
_EM = {
    **dict.fromkeys("'ijl", 0.28), **dict.fromkeys("I", 0.3), **dict.fromkeys(" ,.·", 0.32), **dict.fromkeys("/:;\\|", 0.34),
    **dict.fromkeys("f", 0.36), **dict.fromkeys("-", 0.37), **dict.fromkeys("()[]t", 0.4), **dict.fromkeys("!", 0.41),
    **dict.fromkeys("r", 0.42), **dict.fromkeys('"', 0.46), **dict.fromkeys("*J`", 0.5), **dict.fromkeys("sz", 0.53),
    **dict.fromkeys("c", 0.55), **dict.fromkeys("?L_–", 0.56), **dict.fromkeys("k", 0.58), **dict.fromkeys("vxy", 0.6),
    **dict.fromkeys("F", 0.61), **dict.fromkeys("Taeo", 0.62), **dict.fromkeys("$0123456789bdghnpqu{}£¥€", 0.64),
    **dict.fromkeys("EKPSY", 0.67), **dict.fromkeys("ABVXZ", 0.69), **dict.fromkeys("CR", 0.72), **dict.fromkeys("U", 0.74),
    **dict.fromkeys("N", 0.75), **dict.fromkeys("H", 0.76), **dict.fromkeys("&DG", 0.78), **dict.fromkeys("OQ", 0.79),
    **dict.fromkeys("w", 0.82), **dict.fromkeys("#+<=>^~×≤≥", 0.84), **dict.fromkeys("M", 0.87), **dict.fromkeys("%", 0.96),
    **dict.fromkeys("m", 0.98), **dict.fromkeys("W", 0.99), **dict.fromkeys("—…→", 1.0), **dict.fromkeys("@", 1.02),
}
TEXT_MARGIN = 1.1


def text_width(text: str, size: float = FONT_SIZE, *, bold: bool = False) -> float:
    """Estimated rendered width in px of ``text`` (unescaped) at ``size`` px: per-character widths plus a 10 % margin."""
    em = sum(_EM.get(ch, 0.64 if ord(ch) < 0x2E80 else 1.0) for ch in str(text))
    return em * size * TEXT_MARGIN * (1.1 if bold else 1.0)


def wrap_text(text: str, max_width: float, size: float = FONT_SIZE) -> list[str]:
    """Greedy word wrap at spaces (and after ``_``, ``/``) to lines of at most ``max_width`` px where possible.
    Never cuts a word: a single word wider than ``max_width`` gets a line of its own (callers make room)."""
    words = [w for w in str(text).replace("_", "_ ").replace("/", "/ ").split(" ") if w]
    lines: list[str] = []
    for word in words:
        joiner = "" if lines and lines[-1].endswith(("_", "/")) else " "
        if lines and text_width(lines[-1] + joiner + word, size) <= max_width:
            lines[-1] += joiner + word
        else:
            lines.append(word)
    return lines or [""]


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str | None = None, size: float | None = None, extra: str = "") -> str:
    attrs = f' text-anchor="{anchor}"' if anchor != "start" else ""
    attrs += f' fill="{fill}"' if fill else ""
    attrs += f' font-size="{size:g}"' if size else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{attrs}{extra}>{html.escape(str(text))}</text>'


def _nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw)
    if integer:
        step = max(step, 1.0)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step - 1e-9)) + 1)]


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
    """Epoch seconds for dates (naive ones read as UTC) or plain floats."""
    out = []
    for v in x:
        if isinstance(v, dt.datetime) or (hasattr(v, "timestamp") and hasattr(v, "tzinfo")):
            out.append(float((v if v.tzinfo is not None else v.replace(tzinfo=dt.timezone.utc)).timestamp()))
        elif isinstance(v, dt.date):
            out.append(dt.datetime.combine(v, dt.time(), tzinfo=dt.timezone.utc).timestamp())
        elif hasattr(v, "timestamp"):
            out.append(float(v.timestamp()))
        else:
            out.append(float(v))
    return out


def _utc(v: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(v, dt.timezone.utc)


def _month_start(year: int, month0: int) -> float:
    """Epoch seconds (UTC) of the first day of month ``month0`` (0-based, may exceed 11) of ``year``."""
    return dt.datetime.combine(dt.date(year + month0 // 12, month0 % 12 + 1, 1), dt.time(), tzinfo=dt.timezone.utc).timestamp()


def month_ticks(x_lo: float, x_hi: float, max_labels: int) -> list[tuple[float, str]]:
    """(position, label) of month starts in [x_lo, x_hi], each month at most once, thinned to a step of
    1, 2, 3, 6, 12 or 24 months (quarters, half-years, Januaries) so that at most ``max_labels`` remain.
    Without a month start in the range: one tick at ``x_lo`` labelled with its day."""
    first, last = _utc(x_lo), _utc(x_hi)
    starts = []
    y, m = first.year, first.month - 1
    while True:
        pos = _month_start(y, m)
        if pos > x_hi + 1:
            break
        if pos >= x_lo - 1:
            starts.append((pos, (y + m // 12) * 12 + m % 12))
        m += 1
    if not starts:
        return [(x_lo, first.strftime("%Y-%m-%d"))]
    for step in (1, 2, 3, 6, 12, 24, 48):
        ticks = [(pos, idx) for pos, idx in starts if idx % step == 0] if step > 1 else starts
        if ticks and len(ticks) <= max(max_labels, 1):
            break
    if not ticks:
        ticks = starts[:1]
    fmt = "%Y" if step >= 12 else "%b %Y"
    return [(pos, dt.date(idx // 12, idx % 12 + 1, 1).strftime(fmt)) for pos, idx in ticks]


def _x_ticks(x_lo: float, x_hi: float, iw: float, is_date: bool, integer: bool, size: float) -> list[tuple[float, str]]:
    if is_date:
        label_w = text_width("Sep 2026", size) + 14
        return month_ticks(x_lo, x_hi, int(iw // label_w) + 1)
    if x_hi <= x_lo:
        return [(x_lo, _fmt(x_lo))]
    widest = max(text_width(_fmt(x_lo), size), text_width(_fmt(x_hi), size)) + 14
    n = max(min(int(iw // widest), 12), 1)
    return [(t, _fmt(t)) for t in _nice_ticks(x_lo, x_hi, n, integer=integer) if x_lo - 1e-9 <= t <= x_hi + 1e-9]


def _legend_size(entries: Sequence[str], width: int, ih: float, below: float, size: float = FONT_SIZE) -> tuple[str, float, int]:
    """('right', column width, 0) when a legend column fits beside the plot, else ('below', 0, rows) for a legend
    ``below`` px wide: the width it is drawn at, so the rows counted are the rows drawn."""
    if not entries:
        return "right", 0.0, 0
    col = 18 + max(text_width(e, size) for e in entries) + 10
    if col <= 0.3 * width and len(entries) * 14 <= ih + 10:
        return "right", col, 0
    return "below", 0.0, len(_flow(entries, below, size))


def _flow(entries: Sequence[str], avail: float, size: float = FONT_SIZE) -> list[list[tuple[int, float]]]:
    """Legend items in rows: [(entry index, x offset)] per row, each item swatch + text + gap, wrapped at ``avail`` px."""
    rows: list[list[tuple[int, float]]] = [[]]
    x = 0.0
    for i, e in enumerate(entries):
        w = 18 + text_width(e, size) + 16
        if rows[-1] and x + w > avail:
            rows.append([])
            x = 0.0
        rows[-1].append((i, x))
        x += w
    return rows


def _swatch(kind: str, x: float, y: float, color: str) -> str:
    if kind == "line":
        return f'<line x1="{x:.1f}" x2="{x + 12:.1f}" y1="{y + 5:.1f}" y2="{y + 5:.1f}" stroke="{color}" stroke-width="2"/>'
    opacity = ' fill-opacity="0.22"' if kind == "band" else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="10" fill="{color}"{opacity}/>'


def _draw_legend(parts: list[str], items: Sequence[tuple[str, str, str]], layout: tuple, size: float = FONT_SIZE) -> None:
    """``items``: (name, colour, swatch kind); ``layout``: ('right', x0, y0) or ('below', x0, y0, width)."""
    names = [n for n, _, _ in items]
    if layout[0] == "right":
        _, x0, y0 = layout
        for i, (name, color, kind) in enumerate(items):
            y = y0 + 14 * i
            parts.append(_swatch(kind, x0, y, color))
            parts.append(_text(x0 + 18, y + 9, name))
        return
    _, x0, y0, avail = layout
    for r, row in enumerate(_flow(names, avail, size)):
        for i, dx in row:
            name, color, kind = items[i]
            y = y0 + 16 * r
            parts.append(_swatch(kind, x0 + dx, y, color))
            parts.append(_text(x0 + dx + 18, y + 9, name))


def _frame(title: str, width: int, height: int, y_lo: float, y_hi: float, x_lo: float, x_hi: float, is_date: bool, y_label: str,
           legend: Sequence[tuple[str, str, str]] = (), integer_x: bool = False) -> tuple[list[str], callable, callable]:
    """Axes, grid, tick labels, y label and legend; the plot area leaves room for every label it draws."""
    size = FONT_SIZE
    if x_hi <= x_lo:  # a single x value: centre it
        pad = 15 * 86400 if is_date else 0.5
        x_lo, x_hi = x_lo - pad, x_hi + pad
    pt = _PAD["top"] if title else 16
    ticks = _nice_ticks(y_lo, y_hi)
    y_lo, y_hi = min(ticks[0], y_lo), max(ticks[-1], y_hi)
    pl = (26 if y_label else 8) + max(text_width(_fmt(t), size) for t in ticks) + 8
    names = [n for n, _, _ in legend]
    below = width - pl - 8  # a legend below the plot spans it
    where, col, rows = _legend_size(names, width, height - pt - _PAD["bottom"], below, size)
    pr = (col + 10) if where == "right" and legend else 16
    pr = max(pr, text_width("Sep 2026", size) / 2 + 6)  # the last x label is centred on the axis end
    pb = 30 + (16 * rows + 8 if where == "below" and legend else 0)
    height = max(height, int(pt + pb + 120))  # a legend below never squeezes the plot under 120 px
    iw, ih = width - pl - pr, height - pt - pb
    sx = lambda v: pl + (v - x_lo) / ((x_hi - x_lo) or 1.0) * iw  # noqa: E731
    sy = lambda v: pt + ih - (v - y_lo) / ((y_hi - y_lo) or 1.0) * ih  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="{size}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if title:
        parts.append(_text(pl, 18, title, size=13, extra=' font-weight="bold"'))
    for t in ticks:
        y = sy(t)
        parts.append(f'<line x1="{pl:.1f}" x2="{pl + iw:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(_text(pl - 6, y + 4, _fmt(t), anchor="end", fill="#555"))
    for xv, label in _x_ticks(x_lo, x_hi, iw, is_date, integer_x, size):
        parts.append(f'<line x1="{sx(xv):.1f}" x2="{sx(xv):.1f}" y1="{pt + ih:.1f}" y2="{pt + ih + 4:.1f}" stroke="#999"/>')
        parts.append(_text(sx(xv), pt + ih + 17, label, anchor="middle", fill="#555"))
    if y_label:
        parts.append(f'<text x="12" y="{pt + ih / 2:.1f}" transform="rotate(-90 12 {pt + ih / 2:.1f})" text-anchor="middle" fill="#555">{html.escape(y_label)}</text>')
    if legend:
        _draw_legend(parts, legend, ("right", width - pr + 10, pt) if where == "right" else ("below", pl, pt + ih + 30, below), size)
    return parts, sx, sy


def _is_date(x: Sequence) -> bool:
    return bool(len(x)) and (isinstance(x[0], (dt.date, dt.datetime)) or hasattr(x[0], "timestamp"))


def _integer_x(xs: Sequence[float]) -> bool:
    return bool(xs) and all(float(v).is_integer() for v in xs)


def line_chart(x: Sequence, series: Mapping[str, Sequence[float]], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Lines sharing one x axis (dates or numbers)."""
    is_date = _is_date(x)
    xs = _xnum(x)
    values = [float(v) for s in series.values() for v in s if v is not None and math.isfinite(float(v))]
    y_lo, y_hi = (min(values + [0.0]), max(values + [1.0])) if values else (0.0, 1.0)
    legend = [(str(n), PALETTE[i % len(PALETTE)], "rect") for i, n in enumerate(series)]
    parts, sx, sy = _frame(title, width, height, y_lo, y_hi, min(xs or [0]), max(xs or [1]), is_date, y_label, legend, _integer_x(xs))
    for i, (name, ys) in enumerate(series.items()):
        pts = " ".join(f"{sx(a):.1f},{sy(float(b)):.1f}" for a, b in zip(xs, ys) if b is not None and math.isfinite(float(b)))
        parts.append(f'<polyline fill="none" stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="1.8" points="{pts}"/>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_area_chart(x: Sequence, series: Mapping[str, Sequence[float]], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Stacked areas (non-negative parts of a total), bottom series first."""
    is_date = _is_date(x)
    xs = _xnum(x)
    n = len(xs)
    cum = [0.0] * n
    layers = []
    for ys in series.values():
        lower = cum[:]
        cum = [c + max(float(v or 0.0), 0.0) for c, v in zip(cum, ys)]
        layers.append((lower, cum[:]))
    legend = [(str(nm), PALETTE[i % len(PALETTE)], "rect") for i, nm in enumerate(series)]
    parts, sx, sy = _frame(title, width, height, 0.0, max(cum + [1.0]), min(xs or [0]), max(xs or [1]), is_date, y_label, legend, _integer_x(xs))
    for i, (lower, upper) in enumerate(layers):
        top = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xs, upper))
        bottom = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(reversed(xs), reversed(lower)))
        parts.append(f'<polygon fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.85" points="{top} {bottom}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _category_layout(labels: Sequence[str], cw: float, size: float) -> tuple[str, list[list[str]], float]:
    """How category labels fit a slot of ``cw`` px: ('flat', lines, height) on one line, ('wrap', lines, height)
    on up to 3 lines, or ('rotate', lines, height) at −40° when a word is wider than the slot."""
    room = cw - 6
    if all(text_width(t, size) <= room for t in labels):
        return "flat", [[str(t)] for t in labels], size + 8
    wrapped = [wrap_text(t, room, size) for t in labels]
    if all(len(ls) <= 3 and all(text_width(line, size) <= room for line in ls) for ls in wrapped):
        return "wrap", wrapped, (size + 3) * max(len(ls) for ls in wrapped) + 6
    longest = max(text_width(t, size) for t in labels)
    return "rotate", [[str(t)] for t in labels], longest * math.sin(math.radians(40)) + size + 10


def _category_labels(parts: list[str], mode: str, lines: list[list[str]], centers: Sequence[float], y0: float, size: float, fill: str = "#333") -> None:
    for cx, ls in zip(centers, lines):
        if mode == "rotate":
            x, y = cx + 4, y0 + size
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end" fill="{fill}" transform="rotate(-40 {x:.1f} {y:.1f})">{html.escape(ls[0])}</text>')
        else:
            for k, line in enumerate(ls):
                parts.append(_text(cx, y0 + size + k * (size + 3), line, anchor="middle", fill=fill))


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, *, width: int = 760, height: int = 280, y_label: str = "") -> str:
    """Vertical bars, one per label (negative values drawn below zero); labels wrap or turn when they do not fit."""
    return grouped_bar_chart([str(label) for label in labels], {"": list(values)}, title, width=width, height=height, y_label=y_label, colors=None, _per_bar_colors=True)


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
# no dependencies; labels are never cut: columns grow to fit them, wrap onto lines or turn.

REPORT_FONT_SIZE = 12
"""Font size of the report charts (``hbar_chart``, ``grouped_bar_chart``, ``funnel_chart``, ``interval_chart``)."""


def _label_column(labels: Sequence[str], width: int, minimum: int | None, size: float, cap: float = 0.4) -> tuple[float, list[list[str]]]:
    """Width of a right-aligned label column and each label's lines: as wide as the longest label (at least
    ``minimum``) up to ``cap`` × width; longer labels wrap onto lines (a single long word widens the column)."""
    need = max((text_width(t, size) for t in labels), default=0.0) + 16
    col = max(float(minimum or 0), min(need, cap * width))
    lines = [wrap_text(t, col - 16, size) if text_width(t, size) > col - 16 else [str(t)] for t in labels]
    widest = max((text_width(line, size) for ls in lines for line in ls), default=0.0) + 16
    return max(col, widest), lines


def _row_lines(parts: list[str], x: float, y_mid: float, lines: Sequence[str], size: float, anchor: str = "end", fill: str = "#333") -> None:
    """Lines of one label centred vertically on ``y_mid`` (baseline offset ≈ 0.35 em)."""
    step = size + 2
    y0 = y_mid - step * (len(lines) - 1) / 2 + size * 0.35
    for k, line in enumerate(lines):
        parts.append(_text(x, y0 + k * step, line, anchor=anchor, fill=fill))


_HALO = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"'  # a white outline keeps lines behind a label from crossing it


def _svg_open(width: int, height: int, title: str) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" font-family="sans-serif" font-size="{REPORT_FONT_SIZE}">',
        f'<rect width="{width}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    if title:
        parts.append(_text(8, 18, title, size=13, extra=' font-weight="bold"'))
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
    label_width: int | None = None,
    color: str | None = None,
    colors: Sequence[str | None] | None = None,
) -> str:
    """Horizontal bars, one row per label, with the value written at the end of each bar (``colors``: one per bar).
    The label column fits the longest label (``label_width`` is a minimum); longer labels wrap."""
    size = REPORT_FONT_SIZE
    vals = [_num(v) for v in values]
    texts = [str(value_labels[i]) if value_labels is not None and i < len(value_labels) else _fmt(v) for i, v in enumerate(vals)]
    x0, lines = _label_column([str(t) for t in labels], width, label_width, size)
    rows = [max(bar_height, (size + 2) * len(ls) + 6) for ls in lines]
    top = 30 if title else 8
    height = top + sum(rows) + 10
    parts = _svg_open(width, height, title)
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    span = (hi - lo) or 1.0
    right = max((text_width(t, size) for t in texts), default=0.0) + 14
    iw = max(width - x0 - right, 40)
    sx = lambda v: x0 + (v - lo) / span * iw
    y = top
    for i, (ls, v, rh) in enumerate(zip(lines, vals, rows)):
        a, b = sorted((sx(0.0), sx(v)))
        mid = y + rh / 2
        _row_lines(parts, x0 - 8, mid, ls, size)
        parts.append(f'<rect x="{a:.1f}" y="{mid - (bar_height - 6) / 2:.1f}" width="{max(b - a, 1):.1f}" height="{bar_height - 6}" fill="{(colors[i] if colors is not None and i < len(colors) and colors[i] else None) or color or PALETTE[0]}"/>')
        parts.append(_text(b + 6, mid + size * 0.35, texts[i], fill="#333", extra=_HALO))
        y += rh
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
    _per_bar_colors: bool = False,
) -> str:
    """Vertical bars grouped by category: one bar per group (series) inside each category, legend below.
    Category labels wrap or turn to fit their slot; the legend wraps into rows; the plot gives up the height."""
    size = REPORT_FONT_SIZE
    colors = list(colors or PALETTE)
    names = list(groups)
    vals = [_finite(groups[n]) for n in names]
    flat = [v for vs in vals for v in vs]
    ticks = _nice_ticks(min(flat + [0.0]), max(flat + [1.0]))
    lo, hi = ticks[0], ticks[-1]
    top = 30 if title else 12
    left = (26 if y_label else 8) + max(text_width(_fmt(t), size) for t in ticks) + 8
    iw = width - left - 12
    n_cat = max(len(categories), 1)
    cw = iw / n_cat
    mode, cat_lines, cat_h = _category_layout([str(c) for c in categories], cw, size)
    for _ in range(3) if mode == "rotate" else ():  # turned labels reach left of their slot: the first ones must stay in the chart
        reach = max(text_width(str(t), size) * math.cos(math.radians(40)) + size - (c + 0.5) * cw for c, t in enumerate(categories)) + 4
        if reach > left:
            left = reach
            iw = width - left - 12
            cw = iw / n_cat
    show_legend = not _per_bar_colors and any(names)
    legend_rows = _flow([str(n) for n in names], width - left - 8, size) if show_legend else []
    bottom = 6 + cat_h + (16 * len(legend_rows) + 8 if show_legend else 0)
    height = max(height, int(top + bottom + 160))  # long labels make the chart taller, never the plot flatter than 160 px
    ih = height - top - bottom
    sy = lambda v: top + ih - (v - lo) / ((hi - lo) or 1.0) * ih
    parts = _svg_open(width, height, title)
    for t in ticks:
        parts.append(f'<line x1="{left:.1f}" x2="{left + iw:.1f}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#e5e5e5"/>')
        parts.append(_text(left - 6, sy(t) + 4, _fmt(t), anchor="end", fill="#555"))
    if y_label:
        parts.append(f'<text x="12" y="{top + ih / 2:.1f}" transform="rotate(-90 12 {top + ih / 2:.1f})" text-anchor="middle" fill="#555">{html.escape(y_label)}</text>')
    bw = cw * 0.8 / max(len(names), 1)
    for c, cat in enumerate(categories):
        for g, name in enumerate(names):
            series = list(groups[name])
            v = _num(series[c]) if c < len(series) else 0.0
            x = left + c * cw + cw * 0.1 + g * bw
            y0, y1 = sy(0.0), sy(v)
            fill = colors[(c if _per_bar_colors else g) % len(colors)]
            what = f"{cat} – {name}" if name else str(cat)
            parts.append(f'<rect x="{x:.1f}" y="{min(y0, y1):.1f}" width="{max(bw - 1, 1):.1f}" height="{abs(y1 - y0):.1f}" fill="{fill}"><title>{html.escape(what)}: {_fmt(v)}</title></rect>')
    _category_labels(parts, mode, cat_lines, [left + c * cw + cw / 2 for c in range(len(categories))], top + ih + 4, size)
    if show_legend:
        _draw_legend(parts, [(str(n), colors[g % len(colors)], "rect") for g, n in enumerate(names)], ("below", left, top + ih + 6 + cat_h, width - left - 8), size)
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
    label_width: int | None = 130,
    note_width: int | None = 230,
) -> str:
    """Centred funnel bars (width ∝ count), stage name left, count and a note (e.g. conversion) right.
    ``label_width`` and ``note_width`` are minimums: the columns grow to fit their text (labels wrap past 30 %)."""
    size = REPORT_FONT_SIZE
    vals = [max(_num(v), 0.0) for v in counts]
    texts = [f"{v:,.0f}" + (f"  ({notes[i]})" if notes is not None and i < len(notes) and notes[i] else "") for i, v in enumerate(vals)]
    left, lines = _label_column([str(s) for s in stages], width, label_width, size, cap=0.3)
    right = max(float(note_width or 0), max((text_width(t, size) for t in texts), default=0.0) + 20)
    rows = [max(bar_height, (size + 2) * len(ls) + 8) for ls in lines]
    top = 30 if title else 8
    height = top + sum(rows) + 8
    parts = _svg_open(width, height, title)
    iw = max(width - left - right, 40)
    hi = max(vals + [1.0])
    cx = left + iw / 2
    y = top
    for i, (ls, v, rh) in enumerate(zip(lines, vals, rows)):
        w = max(iw * v / hi, 2)
        mid = y + rh / 2
        _row_lines(parts, left - 10, mid, ls, size)
        parts.append(f'<rect x="{cx - w / 2:.1f}" y="{mid - (bar_height - 6) / 2:.1f}" width="{w:.1f}" height="{bar_height - 6}" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(_text(left + iw + 10, mid + size * 0.35, texts[i], fill="#333"))
        y += rh
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
    """A line with a shaded lower–upper band (forecast with its interval); date axes tick each month once."""
    is_date = _is_date(x)
    xs = _xnum(x)
    values = _finite(list(y) + list(lower) + list(upper))
    y_lo, y_hi = (min(values + [0.0]), max(values + [1.0])) if values else (0.0, 1.0)
    legend = [(name, PALETTE[0], "line"), (band_name, PALETTE[0], "band")]
    parts, sx, sy = _frame(title, width, height, y_lo, y_hi, min(xs or [0]), max(xs or [1]), is_date, y_label, legend, _integer_x(xs))
    band = [(a, _num(lo), _num(hi)) for a, lo, hi in zip(xs, lower, upper)]
    if band:
        top = " ".join(f"{sx(a):.1f},{sy(h):.1f}" for a, _, h in band)
        bottom = " ".join(f"{sx(a):.1f},{sy(lo_):.1f}" for a, lo_, _ in reversed(band))
        parts.append(f'<polygon fill="{PALETTE[0]}" fill-opacity="0.22" points="{top} {bottom}"/>')
    pts = " ".join(f"{sx(a):.1f},{sy(_num(b)):.1f}" for a, b in zip(xs, y))
    parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="2" points="{pts}"/>')
    for a, b in zip(xs, y):
        parts.append(f'<circle cx="{sx(a):.1f}" cy="{sy(_num(b)):.1f}" r="3" fill="{PALETTE[0]}"/>')
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
    label_width: int | None = None,
    value_labels: Sequence[str] | None = None,
) -> str:
    """One row per label: a dot at the estimate and a whisker from low to high (e.g. ROI with its interval).
    The label column fits the longest label (``label_width`` is a minimum); longer labels wrap."""
    size = REPORT_FONT_SIZE
    vals, los, his = [_num(v) for v in values], [_num(v) for v in lows], [_num(v) for v in highs]
    texts = [str(value_labels[i]) if value_labels is not None and i < len(value_labels) else _fmt(v) for i, v in enumerate(vals)]
    left, lines = _label_column([str(t) for t in labels], width, label_width, size)
    rows = [max(row_height, (size + 2) * len(ls) + 8) for ls in lines]
    top = (30 if title else 10) + (16 if reference is not None and reference_label else 0)
    height = top + sum(rows) + 28
    right = max((text_width(t, size) for t in texts), default=0.0) + 16
    iw = max(width - left - right, 40)
    flat = vals + los + his + ([reference] if reference is not None else []) + [0.0]
    ticks = _nice_ticks(min(flat), max(flat))
    lo, hi = ticks[0], ticks[-1]
    sx = lambda v: left + (v - lo) / ((hi - lo) or 1.0) * iw
    parts = _svg_open(width, height, title)
    base = top + sum(rows)
    for t in ticks:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{base}" stroke="#e5e5e5"/>')
        parts.append(_text(sx(t), base + 16, _fmt(t), anchor="middle", fill="#555"))
    if reference is not None:
        parts.append(f'<line x1="{sx(reference):.1f}" x2="{sx(reference):.1f}" y1="{top - 4}" y2="{base}" stroke="#cf222e" stroke-dasharray="4 3"/>')
        if reference_label:
            fits = sx(reference) + 4 + text_width(reference_label, 11) <= width - 4
            parts.append(_text(sx(reference) + 4 if fits else sx(reference) - 4, top - 6, reference_label, anchor="start" if fits else "end", fill="#cf222e", size=11))
    y = top
    for i, (ls, v, a, b, rh) in enumerate(zip(lines, vals, los, his, rows)):
        mid = y + rh / 2
        _row_lines(parts, left - 8, mid, ls, size)
        parts.append(f'<line x1="{sx(min(a, b)):.1f}" x2="{sx(max(a, b)):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="{PALETTE[0]}" stroke-width="3" stroke-opacity="0.5"/>')
        parts.append(f'<circle cx="{sx(v):.1f}" cy="{mid:.1f}" r="5" fill="{PALETTE[0]}"/>')
        parts.append(_text(max(sx(v), sx(max(a, b))) + 8, mid + size * 0.35, texts[i], fill="#333", extra=_HALO))
        y += rh
    parts.append("</svg>")
    return "".join(parts)
