"""Draw a :class:`~marketing_assets.lib.reports.blocks.Chart` as inline SVG, twice: a wide version for laptops and a
narrow one (larger relative text) for phones; the stylesheet shows one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketing_assets.lib import svg

NARROW_WIDTH = 440
CHARTS = {
    "line": svg.line_chart,
    "stacked_area": svg.stacked_area_chart,
    "hbar": svg.hbar_chart,
    "grouped_bar": svg.grouped_bar_chart,
    "funnel": svg.funnel_chart,
    "band": svg.band_chart,
    "interval": svg.interval_chart,
}


def _legend_safe(series: Mapping[str, Any]) -> dict[str, Any]:
    """Series under unique string names; the chart legend shows each name whole (it wraps into rows instead of cutting)."""
    out: dict[str, Any] = {}
    for name, values in series.items():
        text = str(name)
        while text in out:
            text += " "
        out[text] = values
    return out


def draw(kind: str, args: tuple, options: Mapping[str, Any], narrow: Mapping[str, Any]) -> tuple[str, str]:
    """(wide SVG, narrow SVG) of one chart."""
    fn = CHARTS[kind]
    if kind in ("line", "stacked_area") and len(args) > 1 and isinstance(args[1], Mapping):
        args = (args[0], _legend_safe(args[1]), *args[2:])
    nkw = dict(options, width=NARROW_WIDTH)
    if kind in ("hbar", "interval"):
        nkw["label_width"] = min(int(options.get("label_width", 170)), 125)
    if kind == "funnel":
        nkw.update(label_width=90, note_width=130)
    if "height" in options:
        nkw["height"] = int(options["height"]) + 20
    nkw.update(narrow or {})
    return fn(*args, **options), fn(*args, **nkw)
