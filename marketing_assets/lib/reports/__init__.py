"""Self-contained HTML stakeholder reports: executive, marketing ROI and data quality. No Dagster import.

Each ``render_*`` function takes a mapping of pandas frames (missing or empty frames render a
"not available" note instead of failing) and returns one HTML document with inline CSS and inline
SVG charts (:mod:`marketing_assets.lib.svg`): no scripts, no fonts, no network. ``write_report``
writes it through staging and audits, then moves it into place atomically.

Frames (extra columns are ignored):

* ``kpi_dictionary`` – the governed KPI dictionary (label, description, formula, owner, unit,
  target/threshold, version) – feeds KPI tiles and the definitions section.
* ``executive_kpis`` – long-form KPI values (grain, period, kpi, dimension, dimension_value, value).
* ``marketing_roi``, ``funnel``, ``cohort_ltv``, ``pipeline_forecast`` – the extracts of the same names,
  with their published columns (``marketing_assets.extracts.EXTRACT_COLUMNS``); ``channel_group`` rows
  equal to ``ALL_CHANNELS`` are totals over every channel group.
* ``mmm_contributions`` – weekly decomposition, long (week, component, contribution) or wide (week
  plus one column per component, as the ``mmm.mmm_contributions`` table; ``actual``/``predicted``
  are drawn as lines, not as components).
* ``mmm_budget_plan`` – scenario, channel, current_spend, planned_spend (or ``scenario_spend``),
  predicted_outcome (or ``media_contribution``), uplift, uplift_low, uplift_high.
* ``mmm_roi`` – channel, roi, roi_low, roi_high, mroi (the ``mmm.mmm_model`` table fits).
* ``data_quality_report`` – section (check/freshness/identity), asset_key, check_name, severity,
  blocking, status, evaluated_at, description, metric, value.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from marketing_assets.constants import ALL_CHANNELS
from marketing_assets.lib import svg, tally
from marketing_assets.lib.publish import Audit, write_audit_publish

__all__ = ["fmt_value", "render_data_quality", "render_executive", "render_marketing_roi", "write_report"]

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF ", "CAD": "C$", "AUD": "A$"}
MODEL_LABELS = {
    "first_touch": "First touch",
    "last_touch": "Last touch",
    "last_non_direct": "Last non-direct",
    "linear": "Linear",
    "time_decay": "Time decay",
    "position_based": "Position-based",
    "w_shaped": "W-shaped",
    "markov": "Markov",
    "shapley": "Shapley",
}
DEFAULT_MODEL_ORDER = tuple(MODEL_LABELS)
PRIMARY_MODEL_PREFERENCE = ("markov", "shapley", "w_shaped", "position_based", "linear", "time_decay", "last_non_direct", "last_touch", "first_touch")
STAGE_LABELS = {"known": "Known", "engaged": "Engaged", "mql": "MQL", "sql": "SQL", "opportunity": "Opportunity", "customer": "Customer"}
RECOMMENDATION_ORDER = {"scale": 0, "reduce": 1, "test": 2, "hold": 3}
HEADLINE_KPIS = ("total_revenue", "revenue_growth_mom", "revenue_growth_yoy", "gross_margin_pct", "blended_roas", "cac", "conversion_rate_session_to_lead")
ROI_TILES = ("ad_spend", "attributed_revenue", "paid_attributed_revenue", "paid_media_roas", "attributed_pipeline", "attributed_won_deals")
ROI_CHANNEL_COLUMNS = ("ad_spend", "attributed_pipeline", "attributed_revenue", "new_leads", "attributed_opportunities", "attributed_won_deals")
ROI_EFFICIENCY_COLUMNS = ("channel_roas", "cost_per_lead", "cost_per_opportunity", "cost_per_won_deal", "mmm_roi")
ROI_CAMPAIGN_COLUMNS = ("ad_spend", "attributed_revenue", "channel_roas", "attributed_opportunities", "attributed_won_deals", "cost_per_opportunity")
ROI_COHORT_KPIS = ("cohort_ltv", "cac", "repeat_rate_30d", "repeat_rate_60d", "repeat_rate_90d", "funnel_contacts", "funnel_stage_conversion")
ROI_NUMERIC = tuple(dict.fromkeys([*ROI_TILES, *ROI_CHANNEL_COLUMNS, *ROI_EFFICIENCY_COLUMNS, "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high", "planned_spend_change_pct"]))

MARKETING_TERMS = {  # words that are not KPIs; every figure's definition comes from the KPI dictionary
    "First touch / Last touch": "All credit to the first (last) touchpoint before the opportunity.",
    "Last non-direct": "All credit to the last touchpoint that was not direct traffic.",
    "Linear": "Equal credit to every touchpoint.",
    "Time decay": "More credit to touchpoints close to the opportunity.",
    "Position-based": "40 % first, 40 % last, 20 % shared by the touchpoints in between.",
    "W-shaped": "Most credit to first touch, lead creation and opportunity creation; the rest shared.",
    "Markov": "Data-driven: credit equals the drop in conversions when the channel is removed from all journeys.",
    "Shapley": "Data-driven: each channel's average marginal contribution over all channel combinations.",
    "Recommendation": "Per channel group: scale = add budget; reduce = cut budget; test = run an experiment before deciding. Campaigns follow their channel group. The rule and reason columns say why.",
}


# ---------------------------------------------------------------------------------------------- formatting


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _is_num(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _cur(code: str) -> str:
    return CURRENCY_SYMBOLS.get(code, f"{code} ")


def fmt_value(v: Any, unit: str | None = None, *, currency: str = "USD", compact: bool = False, signed: bool = False) -> str:
    """A number for people: thousands separators, currency symbol, percentages from fractions (1 decimal)."""
    if not _is_num(v):
        return "–"
    f = float(v)
    sign = "+" if signed and f > 0 else ""
    unit = (unit or "").lower()
    if unit == "percent":
        f = 0.0 if round(f * 100, 1) == 0 else f
        sign = "+" if signed and f > 0 else ""
        return f"{sign}{f * 100:,.1f}%"
    if unit == "ratio":
        return f"{sign}{f:,.2f}×"
    if unit == "months":
        return f"{sign}{f:,.1f} months"
    if unit == "count":
        return f"{sign}{f:,.0f}"
    if unit == "currency":
        sym = _cur(currency)
        neg = "−" if f < 0 else sign
        a = abs(f)
        if compact and a >= 1e6:
            return f"{neg}{sym}{a / 1e6:,.1f}M"
        if compact and a >= 1e4:
            return f"{neg}{sym}{a / 1e3:,.0f}k"
        return f"{neg}{sym}{a:,.0f}" if a >= 1000 else f"{neg}{sym}{a:,.2f}"
    if abs(f) >= 100 or f == int(f):
        return f"{sign}{f:,.0f}"
    return f"{sign}{f:,.2f}"


def _date(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return _esc(v)
    if pd.isna(ts):
        return "–"
    return ts.strftime("%Y-%m-%d")


def _month(v: Any) -> str:
    ts = pd.Timestamp(v)
    return ts.strftime("%b %Y")


def _datetime(v: Any) -> str:
    if v is None:
        return "–"
    ts = pd.Timestamp(v)
    if pd.isna(ts):
        return "–"
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
        return ts.strftime("%Y-%m-%d %H:%M UTC")
    if ts.hour == ts.minute == ts.second == 0 and not isinstance(v, (dt.datetime, pd.Timestamp)):
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M")


def _slug(name: Any) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", str(name).lower()).strip("-") or "x"


def _model_label(m: Any) -> str:
    return MODEL_LABELS.get(str(m), str(m).replace("_", " ").capitalize())


# ---------------------------------------------------------------------------------------------- frames


def _get(data: Mapping[str, Any] | None, key: str, required: Iterable[str] = ()) -> pd.DataFrame | None:
    """The frame, or None when missing, not a frame, empty, or without the required columns."""
    frame = (data or {}).get(key)
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return None
    if any(c not in frame.columns for c in required):
        return None
    return frame


def _col(frame: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([default] * len(frame), index=frame.index)


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_col(frame, name), errors="coerce")


class _Dictionary:
    """KPI dictionary lookups with graceful fallbacks (a KPI missing from the dictionary still renders)."""

    def __init__(self, frame: pd.DataFrame | None):
        self.rows: dict[str, dict[str, Any]] = {}
        if frame is not None and "name" in frame.columns:
            for rec in frame.to_dict("records"):
                self.rows[str(rec["name"])] = rec
        self.used: list[str] = []

    def get(self, name: str, field: str, default: Any = None) -> Any:
        v = self.rows.get(name, {}).get(field)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return default
        return v

    def label(self, name: str) -> str:
        return str(self.get(name, "label", name.replace("_", " ").capitalize()))

    def unit(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, "unit", default)

    def use(self, name: str) -> None:
        """Note that the report shows ``name``: its definition is listed in the report's definitions."""
        if name not in self.used:
            self.used.append(name)

    def link(self, name: str, text: str | None = None) -> str:
        """KPI label linking to its definition (description as a hover title)."""
        self.use(name)
        desc = self.get(name, "description", "")
        return f'<a class="kpi-link" href="#def-{_slug(name)}" title="{_esc(desc)}">{_esc(text or self.label(name))}</a>'

    def status(self, name: str, value: Any) -> tuple[str, str]:
        """('good'|'warn'|'bad'|'none', human text) against the dictionary's target and alert threshold."""
        if not _is_num(value):
            return "none", ""
        v = float(value)
        unit = self.unit(name)
        notes, state = [], "none"
        target, tdir = self.get(name, "target_value"), str(self.get(name, "target_direction", "higher_is_better"))
        thr, hdir = self.get(name, "threshold_value"), str(self.get(name, "threshold_direction", tdir))
        lower_t = "lower" in tdir or "below" in tdir or "min" == tdir
        lower_h = "lower" in hdir or "below" in hdir or "min" == hdir
        if _is_num(target):
            t = float(target)
            meets = v <= t if lower_t else v >= t
            notes.append(f"Target {'≤' if lower_t else '≥'} {fmt_value(t, unit)}")
            state = "good" if meets else "warn"
        if _is_num(thr):
            h = float(thr)
            breached = v > h if lower_h else v < h
            notes.append(f"Alert {'>' if lower_h else '<'} {fmt_value(h, unit)}")
            if breached:
                state = "bad"
            elif state == "none":
                state = "good"
        return state, " · ".join(notes)

    def higher_is_better(self, name: str) -> bool | None:
        d = self.get(name, "target_direction") or self.get(name, "threshold_direction")
        if d is None:
            return None
        d = str(d)
        return not ("lower" in d or "below" in d)


# ---------------------------------------------------------------------------------------------- HTML pieces

CSS = """
:root{--fg:#1f2933;--muted:#5b6675;--line:#d8dde4;--bg:#f4f6f8;--card:#fff;--accent:#0b5cad;
--good:#1a7f37;--good-bg:#e9f6ec;--warn:#9a6700;--warn-bg:#fff6dc;--bad:#c62828;--bad-bg:#fdecea;--none:#8a94a3}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header.top{background:var(--card);border-bottom:1px solid var(--line);padding:18px 20px 14px}
header.top .inner,main{max-width:1180px;margin:0 auto}
main{padding:8px 16px 48px}
h1{font-size:1.55em;margin:0 0 4px}
h2{font-size:1.2em;margin:0 0 6px}
h3{font-size:1.02em;margin:14px 0 4px}
.subtitle{color:var(--muted);margin:0 0 10px}
.meta{display:flex;flex-wrap:wrap;gap:8px 12px;align-items:center}
.pill{display:inline-block;border-radius:999px;padding:3px 12px;font-size:.92em;border:1px solid var(--line);background:#f8fafc}
.pill.fresh{background:#e7f0fb;border-color:#9cc2ea;color:#0a3f78;font-weight:700;font-size:1.02em}
nav.toc{margin-top:10px;font-size:.92em;display:flex;flex-wrap:wrap;gap:4px 14px}
nav.toc a{color:var(--accent);text-decoration:none}
nav.toc a:hover{text-decoration:underline}
section.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:14px 0}
.how{color:var(--muted);font-size:.9em;margin:2px 0 8px}
.how b{color:var(--fg)}
.na{color:var(--muted);font-style:italic;background:#f8fafc;border:1px dashed var(--line);border-radius:6px;padding:10px 12px}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:10px}
.tile{border:1px solid var(--line);border-left:6px solid var(--none);border-radius:8px;padding:10px 12px;background:var(--card);min-width:0}
.tile.good{border-left-color:var(--good);background:var(--good-bg)}
.tile.warn{border-left-color:#d4a72c;background:var(--warn-bg)}
.tile.bad{border-left-color:var(--bad);background:var(--bad-bg)}
.tile .label{font-size:.88em;font-weight:600}
.tile .value{font-size:1.55em;font-weight:700;margin:2px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.tile .delta,.tile .target{font-size:.82em;color:var(--muted)}
.up{color:var(--good)}.down{color:var(--bad)}.flat{color:var(--muted)}
.delta .neutral{color:var(--fg)}
a.kpi-link{color:inherit;text-decoration:underline dotted;text-underline-offset:2px}
a.kpi-link:hover{color:var(--accent)}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:.84em;color:var(--muted);margin-top:8px}
.legend span::before{content:"";display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px;background:var(--none)}
.legend .good::before{background:var(--good)}.legend .warn::before{background:#d4a72c}.legend .bad::before{background:var(--bad)}
figure.chart{margin:6px 0 10px}
figure.chart svg{display:block;width:100%;height:auto;max-width:100%}
.narrow{display:none}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:4px 22px}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:6px 0 10px;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.9em}
caption{text-align:left;font-weight:600;padding:6px 8px}
th,td{padding:6px 9px;border-bottom:1px solid #e6e9ee;text-align:left;vertical-align:top}
th{background:#f1f4f7;font-weight:600;white-space:normal;position:sticky;top:0}
td{white-space:normal;overflow-wrap:break-word}
td.num,.nowrap{white-space:nowrap}
td:first-child{min-width:9em}
td.wrap{white-space:normal;min-width:220px;max-width:460px}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.group td{background:#f7f8fa;font-weight:700}
tbody tr:hover td{background:#fafbfd}
.badge{white-space:nowrap;display:inline-block;border-radius:4px;padding:1px 7px;font-size:.85em;font-weight:700;text-transform:uppercase;letter-spacing:.02em}
.badge.scale,.badge.passed{background:var(--good-bg);color:var(--good)}
.badge.reduce,.badge.failed{background:var(--bad-bg);color:var(--bad)}
.badge.test,.badge.warned{background:var(--warn-bg);color:var(--warn)}
.badge.hold,.badge.skipped,.badge.pending,.badge.not_in_run,.badge.other{background:#eef1f4;color:#4a5562}
.callout{border-left:5px solid var(--accent);background:#eef5fd;padding:8px 12px;border-radius:4px;margin:6px 0 10px}
.callout.bad{border-color:var(--bad);background:var(--bad-bg)}
.callout.good{border-color:var(--good);background:var(--good-bg)}
.callout.warn{border-color:#d4a72c;background:var(--warn-bg)}
dl.defs{align-items:start;display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:10px;margin:0}
.def{border:1px solid var(--line);border-radius:6px;padding:8px 12px;scroll-margin-top:12px}
.def:target{outline:3px solid #9cc2ea;background:#f3f8fe}
.def dt{font-weight:700}
.def dd{margin:0}
.def .desc{margin:2px 0 6px}
.def table{font-size:.85em}
.def table th{position:static;background:none;width:7.5em;padding:2px 6px 2px 0;color:var(--muted);font-weight:600;vertical-align:top}
.def table td{white-space:normal;padding:2px 0;border:none}
.def table th{border:none}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;background:#f1f4f7;border-radius:3px;padding:0 3px;word-break:break-word}
details.asset{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 10px}
details.asset>summary{cursor:pointer;padding:8px 0;font-weight:600}
.problems{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:10px}
.problem{border:1px solid var(--line);border-left:6px solid #d4a72c;border-radius:6px;padding:8px 12px;background:var(--warn-bg)}
.problem.bad{border-left-color:var(--bad);background:var(--bad-bg)}
.problem .desc{margin:4px 0}
.problem .how{margin:0}
footer{color:var(--muted);font-size:.85em;text-align:center;padding:18px}
@media (max-width:640px){
 .problems{grid-template-columns:1fr}
 body{font-size:14px}
 header.top{padding:14px 12px 10px}
 main{padding:4px 8px 36px}
 section.card{padding:12px 10px;margin:10px 0}
 h1{font-size:1.3em}
 .grid2{grid-template-columns:1fr}
 .tiles{grid-template-columns:repeat(2,minmax(0,1fr));gap:8px}
 .tile .value{font-size:1.25em}
 .wide{display:none}
 .narrow{display:block}
  dl.defs{grid-template-columns:1fr}
}
@media print{body{background:#fff}section.card{break-inside:avoid;border-color:#bbb}nav.toc{display:none}}
"""


def _section(sid: str, title: str, body: str, how: str | None = None) -> tuple[str, str, str]:
    how_html = f'<p class="how">{how}</p>' if how else ""
    return sid, title, f'<section class="card" id="{_esc(sid)}"><h2>{_esc(title)}</h2>{how_html}{body}</section>'


def _na(what: str) -> str:
    return f'<p class="na">Not available: {_esc(what)}</p>'


def _figure(svg_text: str, title: str, how: str | None = None, *, compact: bool = False) -> str:
    cls = "chart compact" if compact else "chart"
    how_html = f'<p class="how">{how}</p>' if how else ""
    return f'<h3>{_esc(title)}</h3>{how_html}<figure class="{cls}" role="img" aria-label="{_esc(title)}">{svg_text}</figure>'


NARROW_WIDTH = 440


def _legend_safe(series: Mapping[str, Any]) -> dict[str, Any]:
    """Series under unique string names; the chart legend shows each name whole (it wraps into rows instead of cutting)."""
    out: dict[str, Any] = {}
    for name, values in series.items():
        text = str(name)
        while text in out:
            text += " "
        out[text] = values
    return out


def _dual(fn: Callable[..., str], *args: Any, narrow: Mapping[str, Any] | None = None, **kw: Any) -> str:
    """The chart twice: a wide version for laptops and a narrow one (larger relative text) for phones; CSS shows one."""
    if fn in (svg.line_chart, svg.stacked_area_chart) and len(args) > 1 and isinstance(args[1], Mapping):
        args = (args[0], _legend_safe(args[1]), *args[2:])
    wide = fn(*args, **kw)
    nkw = dict(kw, width=NARROW_WIDTH)
    if fn in (svg.hbar_chart, svg.interval_chart):
        nkw["label_width"] = min(int(kw.get("label_width", 170)), 125)
    if fn is svg.funnel_chart:
        nkw.update(label_width=90, note_width=130)
    if "height" in kw:
        nkw["height"] = int(kw["height"]) + 20
    nkw.update(narrow or {})
    return f'<div class="wide">{wide}</div><div class="narrow">{fn(*args, **nkw)}</div>'


Column = tuple  # (frame column, header, unit | callable(value, row) -> html[, KPI name of the figures])


def _kcol(dictionary: _Dictionary, kpi: str, column: str | None = None, currency: str = "USD", fmt: Any = None, qualifier: str = "") -> Column:
    """A table column showing a dictionary KPI: header = the KPI's label (+ currency), cells tagged with the KPI."""
    unit = dictionary.unit(kpi)
    dictionary.use(kpi)
    header = dictionary.label(kpi) + (f" {qualifier}" if qualifier else "") + (f" ({currency})" if unit == "currency" else "")
    return (column or kpi, header, fmt or unit, kpi)


def _kpi_attr(kpi: str | None) -> str:
    return f' data-kpi="{_esc(kpi)}"' if kpi else ""


def _table(frame: pd.DataFrame, columns: Sequence[Column], *, caption: str | None = None, currency: str = "USD", wrap: Sequence[str] = (), group_by: str | None = None, group_label: Callable[[Any], str] | None = None) -> str:
    cols = [(c[0], c[1], c[2], c[3] if len(c) > 3 else None) for c in columns if c[0] in frame.columns or callable(c[2])]
    head = "".join(f'<th class="{"num" if isinstance(u, str) and u in ("currency", "percent", "ratio", "count", "months", "number", "change") else ""}" scope="col"{_kpi_attr(k)}>{_esc(h)}</th>' for _, h, u, k in cols)
    rows = []
    last_group = object()
    for rec in frame.to_dict("records"):
        if group_by is not None:
            g = rec.get(group_by)
            if g != last_group:
                text = group_label(g) if group_label else _esc(g)
                rows.append(f'<tr class="group"><td colspan="{len(cols)}">{text}</td></tr>')
                last_group = g
        cells = []
        for name, _, unit, kpi in cols:
            v = rec.get(name)
            if callable(unit):
                cls = ' class="wrap"' if name in wrap else ""
                cells.append(f"<td{cls}{_kpi_attr(kpi)}>{unit(v, rec)}</td>")
            elif unit in ("currency", "percent", "ratio", "count", "months", "number"):
                cells.append(f'<td class="num"{_kpi_attr(kpi)}>{_esc(fmt_value(v, None if unit == "number" else unit, currency=currency))}</td>')
            elif unit == "change":  # a percent change, signed
                cells.append(f'<td class="num"{_kpi_attr(kpi)}>{_esc(fmt_value(v, "percent", signed=True))}</td>')
            elif unit == "date":
                cells.append(f"<td>{_esc(_date(v))}</td>")
            elif unit == "month":
                cells.append(f"<td>{_esc(_month(v)) if v is not None and not pd.isna(v) else '–'}</td>")
            elif unit == "datetime":
                cells.append(f"<td>{_esc(_datetime(v))}</td>")
            else:
                text = "–" if v is None or (isinstance(v, float) and math.isnan(v)) else v
                cls = ' class="wrap"' if name in wrap else ""
                cells.append(f"<td{cls}>{_esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _mroi_with_interval(v: Any, rec: Mapping[str, Any]) -> str:
    """MMM Marginal ROI with its 80 % interval (the row's mmm_marginal_roi_low / _high) in brackets."""
    if not _is_num(v):
        return "–"
    lo, hi = rec.get("mmm_marginal_roi_low"), rec.get("mmm_marginal_roi_high")
    rng = f' <span class="how">({_esc(fmt_value(lo, "ratio"))}–{_esc(fmt_value(hi, "ratio"))})</span>' if _is_num(lo) and _is_num(hi) else ""
    return f"{_esc(fmt_value(v, 'ratio'))}{rng}"


def _badge(v: Any, _rec: Any = None) -> str:
    text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
    cls = _slug(text) if _slug(text) in ("scale", "reduce", "test", "hold", "passed", "failed", "warned", "skipped", "pending", "not_in_run") else "other"
    return f'<span class="badge {cls}">{_esc(text.replace("_", " ") or "–")}</span>'


def _definitions(dictionary: _Dictionary, names: Sequence[str], extra_terms: Mapping[str, str] | None = None) -> str:
    items = []
    for term, text in (extra_terms or {}).items():
        items.append(f'<div class="def" id="def-{_slug(term)}"><dt>{_esc(term)}</dt><dd class="desc">{_esc(text)}</dd></div>')
    for name in names:
        if name not in dictionary.rows:
            items.append(f'<div class="def" id="def-{_slug(name)}"><dt>{_esc(dictionary.label(name))}</dt><dd class="desc">No definition found in the KPI dictionary for <code>{_esc(name)}</code>.</dd></div>')
            continue
        unit = dictionary.unit(name)
        t_parts = []
        if _is_num(dictionary.get(name, "target_value")):
            t_parts.append(f"target {fmt_value(dictionary.get(name, 'target_value'), unit)} ({_esc(str(dictionary.get(name, 'target_direction', '')).replace('_', ' '))})")
        if _is_num(dictionary.get(name, "threshold_value")):
            t_parts.append(f"alert line {fmt_value(dictionary.get(name, 'threshold_value'), unit)} ({_esc(str(dictionary.get(name, 'threshold_direction', '')).replace('_', ' '))})")
        fields = [
            ("Formula", f"<code>{_esc(dictionary.get(name, 'formula', '–'))}</code>"),
            ("Unit", _esc({"percent": "percent (shown as %)", "ratio": "ratio (×)", "currency": "currency"}.get(str(unit), unit or "–"))),
            ("Target", "; ".join(t_parts) or "none set"),
            ("Owner", _esc(dictionary.get(name, "owner", "–"))),
            ("Refresh", _esc(dictionary.get(name, "refresh", "–"))),
            ("Sources", _esc(dictionary.get(name, "source_assets", "–"))),
            ("Version", _esc(f"v{dictionary.get(name, 'version', '?')}" + (f" (dictionary v{dictionary.get(name, 'dictionary_version')})" if dictionary.get(name, "dictionary_version") is not None else ""))),
        ]
        if dictionary.get(name, "changed"):
            fields.append(("Changed", _esc(dictionary.get(name, "changed"))))
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in fields)
        items.append(
            f'<div class="def" id="def-{_slug(name)}"><dt>{_esc(dictionary.label(name))} <code>{_esc(name)}</code></dt>'
            f'<dd><p class="desc">{_esc(dictionary.get(name, "description", ""))}</p><table>{rows}</table></dd></div>'
        )
    if not items:
        return _na("no KPI dictionary was provided.")
    return f'<dl class="defs">{"".join(items)}</dl>'


def _page(title: str, subtitle: str, *, fresh_to: Any, generated_at: Any, sections: Sequence[tuple[str, str, str]], extra_meta: str = "") -> str:
    fresh = _date(fresh_to)
    gen = _datetime(generated_at)
    toc = "".join(f'<a href="#{_esc(sid)}">{_esc(t)}</a>' for sid, t, _ in sections)
    body = "".join(s for _, _, s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)} – data fresh to {_esc(fresh)}</title>"
        f"<style>{CSS}</style></head><body>"
        f'<header class="top"><div class="inner"><h1>{_esc(title)}</h1><p class="subtitle">{subtitle}</p>'
        f'<div class="meta"><span class="pill fresh">Data fresh to {_esc(fresh)}</span>'
        f'<span class="pill">Generated {_esc(gen)}</span>{extra_meta}</div>'
        f'<nav class="toc" aria-label="Sections">{toc}</nav></div></header>'
        f"<main>{body}</main>"
        f"<footer>{_esc(title)} · data fresh to {_esc(fresh)} · generated {_esc(gen)} · self-contained file, no external resources</footer>"
        "</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------- executive


def _kpi_series(kpis: pd.DataFrame, kpi: str, grain: str = "month") -> pd.Series:
    """Total (undimensioned) KPI values by period, sorted."""
    f = kpis[(kpis["kpi"] == kpi) & (kpis["grain"] == grain)]
    if "dimension" in f.columns:
        f = f[f["dimension"].isna() | (f["dimension"].astype(str).isin(["", "None", "total"]))]
    if f.empty:
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([]))
    s = pd.Series(pd.to_numeric(f["value"], errors="coerce").to_numpy(), index=pd.to_datetime(f["period"]).to_numpy())
    return s.groupby(level=0).sum(min_count=1).sort_index()


def _data_start(kpis: pd.DataFrame) -> pd.Timestamp | None:
    """First day with data as far as the extract shows it (its earliest week), to spot a partial first month."""
    weeks = kpis.loc[kpis["grain"].isin(["week", "day"]), "period"]
    return pd.Timestamp(weeks.min()) if len(weeks) else None


def _latest_full_month(periods: Iterable[pd.Timestamp], fresh_to: Any) -> pd.Timestamp | None:
    months = sorted({pd.Timestamp(p).to_period("M").to_timestamp() for p in periods})
    if not months:
        return None
    if fresh_to is None:
        return months[-1]
    fresh = pd.Timestamp(fresh_to)
    if fresh.tzinfo is not None:
        fresh = fresh.tz_convert(None)
    full = [m for m in months if (m + pd.offsets.MonthEnd(0)).normalize() <= fresh.normalize()]
    return full[-1] if full else months[-1]


def _tile_value(v: Any, unit: str | None, currency: str) -> str:
    """Tile numbers stay short: currency in millions with 2 decimals from 1M (the full figure is the hover title)."""
    if unit == "currency" and _is_num(v) and abs(float(v)) >= 1e6:
        return f"{'−' if float(v) < 0 else ''}{_cur(currency)}{abs(float(v)) / 1e6:,.2f}M"
    return fmt_value(v, unit, currency=currency)


def _tile(dictionary: _Dictionary, name: str, series: pd.Series, month: pd.Timestamp, currency: str) -> str:
    unit = dictionary.unit(name, "number")
    v = series.get(month)
    state, target_text = dictionary.status(name, v)
    prev_month = month - pd.DateOffset(months=1)
    prev = series.get(prev_month)
    delta_html = f"{_esc(_month(month))}"
    if _is_num(v) and _is_num(prev):
        diff = float(v) - float(prev)
        hib = dictionary.higher_is_better(name)
        arrow = "▲" if diff > 0 else ("▼" if diff < 0 else "▶")
        good = None if hib is None or diff == 0 else (diff > 0) == hib
        cls = "flat" if good is None else ("up" if good else "down")
        if unit == "percent":
            change = f"{diff * 100:+,.1f} pts"
        elif _is_num(prev) and float(prev) != 0:
            change = f"{diff / abs(float(prev)) * 100:+,.1f}%"
        else:
            change = fmt_value(diff, unit, currency=currency, signed=True)
        delta_html = f'<span class="{cls}">{arrow} {_esc(change)}</span> vs {_esc(_month(prev_month))}'
    title = {"good": "meets target", "warn": "below target", "bad": "past the alert line", "none": "no target set"}[state]
    return (
        f'<div class="tile {state}" title="{_esc(title)}" data-kpi="{_esc(name)}"><div class="label">{dictionary.link(name)}</div>'
        f'<div class="value" title="{_esc(fmt_value(v, unit, currency=currency))}">{_esc(_tile_value(v, unit, currency))}</div>'
        f'<div class="delta">{delta_html}</div>'
        f'<div class="target">{_esc(target_text) or "No target set"}</div></div>'
    )


def _exec_tiles(kpis: pd.DataFrame, dictionary: _Dictionary, month: pd.Timestamp, currency: str) -> str:
    tiles = []
    for name in HEADLINE_KPIS:
        s = _kpi_series(kpis, name)
        if s.empty:
            continue
        tiles.append(_tile(dictionary, name, s, month, currency))
    if not tiles:
        return _na("none of the headline KPIs are in the executive KPI extract.")
    legend = (
        '<div class="legend"><span class="good">meets target</span><span class="warn">misses target</span>'
        '<span class="bad">past alert line</span><span>no target set</span>'
        "<span>▲▼ change vs previous month: green = better, red = worse</span></div>"
    )
    return f'<div class="tiles">{"".join(tiles)}</div>{legend}'


def _dimension_frame(kpis: pd.DataFrame, kpi: str, months: Sequence[pd.Timestamp]) -> pd.DataFrame:
    f = kpis[(kpis["kpi"] == kpi) & (kpis["grain"] == "month")].copy()
    if f.empty or "dimension_value" not in f.columns:
        return pd.DataFrame(columns=["period", "dimension_value", "value"])
    f["period"] = pd.to_datetime(f["period"])
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    f["dimension_value"] = f["dimension_value"].astype(str)
    return f[f["period"].isin(list(months))][["period", "dimension_value", "value"]]


def render_executive(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", top_products: int = 10) -> str:
    """Executive summary: headline KPI tiles, revenue trend, revenue by product and channel, spend vs
    revenue, funnel, pipeline forecast and KPI definitions."""
    dictionary = _Dictionary(_get(data, "kpi_dictionary", ["name"]))
    kpis = _get(data, "executive_kpis", ["grain", "period", "kpi", "value"])
    sections = []
    sym = currency
    month = None
    full_months: list[pd.Timestamp] = []
    if kpis is not None:
        kpis = kpis.copy()
        kpis["period"] = pd.to_datetime(kpis["period"])
        monthly = kpis[kpis["grain"] == "month"]
        month = _latest_full_month(monthly["period"], fresh_to) if not monthly.empty else None
        if month is not None:
            full_months = sorted(p for p in monthly["period"].unique() if pd.Timestamp(p) <= month)
            full_months = [pd.Timestamp(p) for p in full_months]
            data_start = _data_start(kpis)
            if full_months and data_start is not None and data_start > full_months[0] + pd.Timedelta(days=6) and len(full_months) > 1:
                partial_first = full_months[0]
                full_months = full_months[1:]
                kpis = kpis[~((kpis["grain"] == "month") & (kpis["period"] == partial_first))]
    period_text = f"Headline figures for <b>{_esc(_month(month))}</b>, the latest full month." if month is not None else "No monthly KPI values available."
    # headline
    if kpis is None or month is None:
        sections.append(_section("headline", "Headline KPIs", _na("the executive KPI extract (executive_kpis) was not provided or has no monthly values.")))
    else:
        sections.append(_section("headline", f"Headline KPIs – {_month(month)}", _exec_tiles(kpis, dictionary, month, currency),
                                 "Each tile shows the KPI for the latest full month. Click a KPI name for its definition, formula and owner."))
    # revenue trend
    if kpis is not None and month is not None:
        rev = _kpi_series(kpis, "total_revenue")
        rev = rev[rev.index <= month]
        gm = _kpi_series(kpis, "gross_margin_pct")
        if rev.empty:
            body = _na("total_revenue is not in the KPI extract.")
        else:
            series = {"Net revenue": rev.tolist()}
            if not gm.empty:
                series["Gross margin"] = [float(r) * float(gm.get(p)) if _is_num(gm.get(p)) else None for p, r in rev.items()]
            chart = _dual(svg.line_chart, list(rev.index), series, "", y_label=sym, height=300)
            last12 = rev.tail(12).sum()
            prev12 = rev.iloc[-24:-12].sum() if len(rev) >= 24 else float("nan")
            summary = f"Last 12 full months: <b>{_esc(fmt_value(last12, 'currency', currency=currency))}</b>"
            if _is_num(prev12) and prev12:
                summary += f" ({_esc(fmt_value(last12 / prev12 - 1, 'percent', signed=True))} vs the 12 months before)."
            body = (f'<p class="callout">{summary}</p>'
                    + _figure(chart, f"Monthly {dictionary.label('total_revenue').lower()} and gross margin ({currency}), {len(rev)} months to {_month(month)}",
                              f"Blue: {dictionary.link('total_revenue', 'net revenue')} per month; orange: {dictionary.link('gross_margin_pct', 'gross margin')} (revenue × gross margin %). Incomplete months (the running month, a partial first month) are left out."))
        sections.append(_section("trend", "Revenue trend", body))
        # products and channels
        last12m = full_months[-12:]
        window = f"{_month(last12m[0])} – {_month(last12m[-1])}" if last12m else ""
        prod = _dimension_frame(kpis, "revenue_by_product", last12m)
        marg = _dimension_frame(kpis, "margin_by_product", last12m)
        if prod.empty:
            pbody = _na("revenue_by_product is not in the KPI extract.")
        else:
            by = prod.groupby("dimension_value")["value"].sum().sort_values(ascending=False)
            mg = marg.groupby("dimension_value")["value"].sum() if not marg.empty else pd.Series(dtype="float64")
            top = by.head(top_products)
            other = by.iloc[top_products:].sum()
            labels = list(top.index) + ([f"All other {len(by) - top_products} products"] if len(by) > top_products else [])
            vals = list(top.values) + ([other] if len(by) > top_products else [])
            total = by.sum()
            chart = _dual(svg.hbar_chart, labels, vals, "", colors=[None] * len(top) + ["#9aa5b1"], value_labels=[f"{fmt_value(v, 'currency', currency=currency, compact=True)} ({v / total * 100:.1f}%)" if total else "" for v in vals])
            tab = pd.DataFrame({"product": labels, "revenue": vals})
            tab["share"] = tab["revenue"] / total if total else float("nan")
            tab["margin"] = [mg.get(p) if p in mg.index else (mg.sum() - mg.reindex(top.index).sum() if i >= len(top) else None) for i, p in enumerate(labels)]
            tab["margin_pct"] = tab["margin"].astype("float64") / tab["revenue"].replace(0, float("nan"))
            pbody = (_figure(chart, f"Top {min(top_products, len(by))} products by net revenue, {window} ({currency})",
                             "Bars: revenue per product over the last 12 full months; the label gives the share of total revenue.")
                     + _table(tab, [("product", "Product", None), ("revenue", f"Revenue ({currency})", "currency"), ("share", "Share of revenue", "percent"),
                                    ("margin", f"Gross margin ({currency})", "currency"), ("margin_pct", "Gross margin %", "percent")], currency=currency))
        sections.append(_section("products", "Revenue by product", pbody, f"See {dictionary.link('revenue_by_product')} and {dictionary.link('margin_by_product')}."))
        chan = _dimension_frame(kpis, "revenue_by_channel", full_months[-24:])
        if chan.empty:
            cbody = _na("revenue_by_channel is not in the KPI extract.")
        else:
            piv = chan.pivot_table(index="period", columns="dimension_value", values="value", aggfunc="sum").fillna(0.0).sort_index()
            piv = piv[piv.sum().sort_values(ascending=False).index]
            chart = _dual(svg.stacked_area_chart, list(piv.index), {str(c): piv[c].tolist() for c in piv.columns}, "", y_label=sym, height=300)
            last = chan[chan["period"].isin(last12m)].groupby("dimension_value")["value"].sum().sort_values(ascending=False)
            tab = pd.DataFrame({"channel": last.index, "revenue": last.values})
            tab["share"] = tab["revenue"] / tab["revenue"].sum() if tab["revenue"].sum() else float("nan")
            cbody = (_figure(chart, f"Monthly net revenue by sales channel ({currency}), {_month(piv.index[0])} – {_month(piv.index[-1])}",
                             "Stacked areas: each band is one sales channel; the top edge is total revenue.")
                     + _table(tab, [("channel", "Sales channel", None), ("revenue", f"Revenue {window} ({currency})", "currency"), ("share", "Share", "percent")], currency=currency))
        sections.append(_section("channels", "Revenue by sales channel", cbody, f"See {dictionary.link('revenue_by_channel')}."))
        # spend vs revenue
        spend = _kpi_series(kpis, "ad_spend")
        roas = _kpi_series(kpis, "blended_roas")
        spend = spend[spend.index <= month]
        if spend.empty:
            sbody = _na("ad_spend is not in the KPI extract.")
        else:
            idx = [p for p in spend.index if p in rev.index]
            lines = {dictionary.label("blended_roas"): [roas.get(p) for p in idx]}
            target = dictionary.get("blended_roas", "target_value")
            thr = dictionary.get("blended_roas", "threshold_value")
            if _is_num(target):
                lines["Target"] = [float(target)] * len(idx)
            if _is_num(thr):
                lines["Alert line"] = [float(thr)] * len(idx)
            chart1 = _dual(svg.line_chart, idx, {dictionary.label("ad_spend"): [spend.get(p) for p in idx]}, "", y_label=sym, height=280, width=560)
            chart2 = _dual(svg.line_chart, idx, lines, "", y_label="× revenue per 1 of spend", height=280, width=560)
            tab = pd.DataFrame({"month": idx, "ad_spend": [spend.get(p) for p in idx], "total_revenue": [rev.get(p) for p in idx],
                                "blended_roas": [roas.get(p) for p in idx]}).tail(6).iloc[::-1]
            sbody = ('<div class="grid2"><div>' + _figure(chart1, f"Monthly {dictionary.label('ad_spend')} ({currency})", "Paid media spend of all ad platforms.")
                     + "</div><div>" + _figure(chart2, f"{dictionary.label('blended_roas')}, monthly", f"Blue: {dictionary.link('blended_roas')}. Higher is better. Orange line: target; red line: alert line.")
                     + "</div></div>" + _table(tab, [("month", "Month", "month"), *(_kcol(dictionary, k, currency=currency) for k in ("ad_spend", "total_revenue", "blended_roas"))],
                                               caption="Last 6 full months", currency=currency))
        sections.append(_section("spend", "Ad spend vs revenue", sbody))
    else:
        for sid, t in (("trend", "Revenue trend"), ("products", "Revenue by product"), ("channels", "Revenue by sales channel"), ("spend", "Ad spend vs revenue")):
            sections.append(_section(sid, t, _na("the executive KPI extract was not provided.")))
    # funnel
    sections.append(_section("funnel", "Marketing funnel", _funnel_summary(_get(data, "funnel", ["stage", "contacts"]), fresh_to),
                             "How many people reached each stage; the percentage is the conversion from the stage before."))
    # pipeline forecast
    sections.append(_section("forecast", "Pipeline revenue forecast", _forecast(_get(data, "pipeline_forecast", ["forecast_month", "expected_revenue"]), currency)))
    names = [n for n in dictionary.used]
    sections.append(_section("definitions", "KPI definitions", _definitions(dictionary, names),
                             "The governed definitions behind every KPI in this report (from the KPI dictionary)."))
    return _page("Executive summary", period_text + " Revenue, margin, marketing efficiency, funnel and pipeline outlook.",
                 fresh_to=fresh_to, generated_at=generated_at, sections=sections,
                 extra_meta=f'<span class="pill">Currency {_esc(currency)}</span>')


def _by_channel(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of single channel groups: without the extract's all-channels rows, which would count everything twice."""
    return frame[frame["channel_group"] != ALL_CHANNELS] if "channel_group" in frame.columns else frame


NOT_DISTINGUISHABLE = "not distinguishable in the data"


def _stage_evidence(funnel: pd.DataFrame) -> pd.DataFrame:
    """Per stage: whether the data tells it apart from the stage before (the extract's ``stage_distinguishable``;
    true when the column is absent) and, if not, the extract's ``stage_note`` saying why."""
    f = pd.DataFrame({"stage": funnel["stage"], "ok": _col(funnel, "stage_distinguishable", True).ne(False), "note": _col(funnel, "stage_note")})
    return f.groupby("stage", sort=False).agg(stage_distinguishable=("ok", "all"), stage_note=("note", "first")).reset_index()


def _not_distinguishable_text(note: Any) -> str:
    return f"{NOT_DISTINGUISHABLE}: {note}" if isinstance(note, str) and note else NOT_DISTINGUISHABLE


def _funnel_totals(funnel: pd.DataFrame) -> pd.DataFrame:
    has_all = "channel_group" in funnel.columns and (funnel["channel_group"] == ALL_CHANNELS).any()
    f = (funnel[funnel["channel_group"] == ALL_CHANNELS] if has_all else funnel).copy()
    f["contacts"] = pd.to_numeric(f["contacts"], errors="coerce").fillna(0.0)
    if "stage_order" not in f.columns:
        order = {s: i for i, s in enumerate(STAGE_LABELS, start=1)}
        f["stage_order"] = f["stage"].map(order).fillna(99)
    out = f.groupby(["stage_order", "stage"], as_index=False)["contacts"].sum().sort_values("stage_order")
    out["conversion_from_previous"] = out["contacts"] / out["contacts"].shift(1).replace(0, float("nan"))
    first = out["contacts"].iloc[0] if len(out) else float("nan")
    out["conversion_from_first"] = out["contacts"] / first if first else float("nan")
    out["stage_label"] = out["stage"].map(lambda s: STAGE_LABELS.get(str(s), str(s)))
    out = out.merge(_stage_evidence(f), on="stage", how="left")
    out["stage_distinguishable"] = out["stage_distinguishable"].ne(False)
    # a stage the data cannot tell apart from the one before has no conversion (it would read as 100 %)
    out["conversion_from_previous"] = out["conversion_from_previous"].where(out["stage_distinguishable"])
    return out


def _funnel_window(funnel: pd.DataFrame, fresh_to: Any) -> tuple[pd.DataFrame, str]:
    """The last 3 full months of the funnel (all months if there is no month column)."""
    if "month" not in funnel.columns:
        return funnel, "all periods"
    f = funnel.copy()
    f["month"] = pd.to_datetime(f["month"])
    last = _latest_full_month(f["month"].dropna(), fresh_to)
    if last is None:
        return f, "all periods"
    months = sorted(m for m in f["month"].dropna().unique() if pd.Timestamp(m) <= last)[-3:]
    f = f[f["month"].isin(months)]
    label = f"{_month(months[0])} – {_month(months[-1])}" if len(months) > 1 else _month(months[0])
    return f, label


def _funnel_summary(funnel: pd.DataFrame | None, fresh_to: Any) -> str:
    if funnel is None:
        return _na("the funnel data was not provided.")
    window, label = _funnel_window(funnel, fresh_to)
    tot = _funnel_totals(window)
    if tot.empty:
        return _na("the funnel has no rows for the reporting window.")
    flagged = [i > 0 and not ok for i, ok in enumerate(tot["stage_distinguishable"])]
    notes = ["" if i == 0 or not _is_num(c) else f"{c * 100:.1f}%" for i, c in enumerate(tot["conversion_from_previous"])]
    wide_notes = ["not distinguishable" if bad else n for n, bad in zip(notes, flagged)]
    narrow_notes = ["n/d" if bad else n for n, bad in zip(notes, flagged)]
    chart = _dual(svg.funnel_chart, tot["stage_label"].tolist(), tot["contacts"].tolist(), "", notes=wide_notes, narrow={"notes": narrow_notes})

    def conversion(v: Any, rec: Mapping[str, Any]) -> str:
        if not rec.get("stage_distinguishable", True):
            return f'<div class="num"><span class="how">{_esc(NOT_DISTINGUISHABLE)} (see below)</span></div>'
        return f'<div class="num">{_esc(fmt_value(v, "percent"))}</div>'

    table = _table(tot, [("stage_label", "Stage", None), ("contacts", "People", "count"), ("conversion_from_previous", "Conversion from previous stage", conversion),
                         ("conversion_from_first", "Conversion from first stage", "percent")])
    table += "".join(f'<p class="how">{_esc(r["stage_label"])}: {_esc(_not_distinguishable_text(r["stage_note"]))}.</p>'
                     for r, bad in zip(tot.to_dict("records"), flagged) if bad)
    how = "Bar width = number of people at the stage; the percentage in brackets = conversion from the stage above."
    if any(flagged):
        how += " “not distinguishable” (n/d on small screens) = the data cannot tell the stage apart from the one above, so it has no conversion: see the table."
    return _figure(chart, f"Funnel, all channels, {label}", how, compact=True) + table


def _forecast(fc: pd.DataFrame | None, currency: str) -> str:
    if fc is None:
        return _na("the pipeline forecast was not provided.")
    f = fc.copy()
    if "as_of" in f.columns:
        as_of = pd.to_datetime(f["as_of"]).max()
        f = f[pd.to_datetime(f["as_of"]) == as_of]
    else:
        as_of = None
    seg_note = "all segments"
    if "sales_segment" in f.columns:
        if (f["sales_segment"] == "All").any():
            f = f[f["sales_segment"] == "All"]
        else:
            num = [c for c in ("open_opportunities", "open_pipeline", "expected_revenue", "lower", "upper") if c in f.columns]
            f = f.groupby("forecast_month", as_index=False)[num].sum()
            seg_note = "sum of segments"
    f["forecast_month"] = pd.to_datetime(f["forecast_month"])
    f = f.sort_values("forecast_month")
    for c in ("expected_revenue", "lower", "upper", "open_pipeline", "open_opportunities"):
        if c in f.columns:
            f[c] = pd.to_numeric(f[c], errors="coerce")
    lower = f["lower"] if "lower" in f.columns else f["expected_revenue"]
    upper = f["upper"] if "upper" in f.columns else f["expected_revenue"]
    chart = _dual(svg.band_chart, f["forecast_month"].tolist(), f["expected_revenue"].tolist(), lower.tolist(), upper.tolist(), "", y_label=currency,
                           name="Expected revenue", band_name="Likely range")
    method = f"Method: {_esc(f['method'].iloc[0])}. " if "method" in f.columns and len(f) else ""
    total = f["expected_revenue"].sum()
    callout = (f'<p class="callout">Expected revenue from the open pipeline over the next {len(f)} months: <b>{_esc(fmt_value(total, "currency", currency=currency))}</b> '
               f'(range {_esc(fmt_value(lower.sum(), "currency", currency=currency))} – {_esc(fmt_value(upper.sum(), "currency", currency=currency))}).</p>')
    as_of_text = f", as of {_date(as_of)}" if as_of is not None and not pd.isna(as_of) else ""
    return (callout + _figure(chart, f"Expected revenue by close month ({currency}), {seg_note}{as_of_text}",
                              f"Line: expected revenue from open opportunities by the month they are expected to close; shaded band: likely range (lower–upper). {method}")
            + _table(f, [("forecast_month", "Close month", "month"), ("open_opportunities", "Open opportunities", "count"), ("open_pipeline", f"Open pipeline ({currency})", "currency"),
                         ("expected_revenue", f"Expected revenue ({currency})", "currency"), ("lower", "Low", "currency"), ("upper", "High", "currency")], currency=currency))


# ---------------------------------------------------------------------------------------------- marketing ROI


def _primary_model(models: Sequence[str], preferred: str | None) -> str | None:
    if preferred and preferred in models:
        return preferred
    for m in PRIMARY_MODEL_PREFERENCE:
        if m in models:
            return m
    return models[0] if models else None


def _mmm_components(frame: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(wide components by week, actual/predicted by week) from a long or wide decomposition."""
    if frame is None:
        return None, None
    wk = "week" if "week" in frame.columns else ("date" if "date" in frame.columns else None)
    if wk is None:
        return None, None
    f = frame.copy()
    f[wk] = pd.to_datetime(f[wk])
    if {"component", "contribution"} <= set(f.columns):
        f["contribution"] = pd.to_numeric(f["contribution"], errors="coerce")
        wide = f.pivot_table(index=wk, columns="component", values="contribution", aggfunc="sum").sort_index()
    else:
        wide = f.set_index(wk).sort_index().select_dtypes("number")
    lines_cols = [c for c in wide.columns if str(c).lower() in ("actual", "predicted", "fitted", "total", "revenue")]
    lines = wide[lines_cols] if lines_cols else None
    comps = wide.drop(columns=lines_cols)
    return comps, lines


def render_marketing_roi(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", model: str | None = None) -> str:
    """Marketing ROI: channel performance, attribution model comparison, recommendations, funnel,
    cohort LTV, MMM decomposition and budget plan, and definitions."""
    dictionary = _Dictionary(_get(data, "kpi_dictionary", ["name"]))
    roi = _get(data, "marketing_roi", ["channel_group"])
    sym = currency
    sections = []
    primary = None
    period_text = ""
    if roi is not None:
        roi = roi.copy()
        if "level" not in roi.columns:
            roi["level"] = "channel"
        if "attribution_model" not in roi.columns:
            roi["attribution_model"] = "model"
        for c in ROI_NUMERIC:
            if c in roi.columns:
                roi[c] = pd.to_numeric(roi[c], errors="coerce")
        models = [m for m in DEFAULT_MODEL_ORDER if m in set(roi["attribution_model"].astype(str))] + sorted(set(roi["attribution_model"].astype(str)) - set(DEFAULT_MODEL_ORDER))
        primary = _primary_model(models, model)
        if "period_start" in roi.columns and "period_end" in roi.columns:
            period_text = f"Period {_date(roi['period_start'].min())} to {_date(roi['period_end'].max())}. "
    subtitle = (period_text + (f"Attributed figures use the <b>{_esc(_model_label(primary))}</b> attribution model (the one the budget rules cite); other models are compared below." if primary else "Attribution results not available."))
    # ---- channel performance
    if roi is None:
        sections.append(_section("channels", "Channel performance", _na("the marketing ROI data (marketing_roi) was not provided.")))
        sections.append(_section("models", "Attribution model comparison", _na("the marketing ROI data was not provided.")))
        sections.append(_section("recommendations", "Recommendations", _na("the marketing ROI data was not provided.")))
    else:
        at_primary = roi[roi["attribution_model"].astype(str) == primary]
        ch = at_primary[at_primary["level"] == "channel"].copy()
        everything = at_primary[at_primary["level"] == "all"]
        if ch.empty:
            body = _na(f"no channel-level rows for the {_model_label(primary)} model.")
        else:
            ch = ch.sort_values("ad_spend" if "ad_spend" in ch.columns else "channel_group", ascending=False, na_position="last")
            tiles_html = ""
            if not everything.empty:
                row = everything.iloc[0]
                tiles_html = '<div class="tiles">' + "".join(
                    f'<div class="tile" data-kpi="{_esc(k)}"><div class="label">{dictionary.link(k)}</div>'
                    f'<div class="value" title="{_esc(fmt_value(row.get(k), dictionary.unit(k), currency=currency))}">{_esc(_tile_value(row.get(k), dictionary.unit(k), currency))}</div>'
                    f'<div class="delta">all channels{"" if k == "ad_spend" else ", " + _esc(_model_label(primary))}</div></div>'
                    for k in ROI_TILES if k in row.index) + "</div>"
            paid = ch[_numeric(ch, "ad_spend").fillna(0) > 0]
            paid = paid if not paid.empty else ch
            chart = _dual(svg.grouped_bar_chart, paid["channel_group"].astype(str).tolist(),
                          {dictionary.label("ad_spend"): _numeric(paid, "ad_spend").fillna(0).tolist(), dictionary.label("attributed_revenue"): _numeric(paid, "attributed_revenue").fillna(0).tolist()}, "",
                          y_label=sym, colors=("#9aa5b1", "#4e79a7"))
            unpaid = len(ch) - len(paid)

            outcomes = [("channel_group", "Channel group", None), *(_kcol(dictionary, k, currency=currency) for k in ROI_CHANNEL_COLUMNS)]
            efficiency = [("channel_group", "Channel group", None), *(_kcol(dictionary, k, currency=currency) for k in ROI_EFFICIENCY_COLUMNS),
                          _kcol(dictionary, "mmm_marginal_roi", fmt=_mroi_with_interval, qualifier="(80 % interval)"), ("recommendation", "Recommendation", _badge)]
            dictionary.use("mmm_marginal_roi_low"), dictionary.use("mmm_marginal_roi_high")
            body = (tiles_html + _figure(chart, f"{dictionary.label('ad_spend')} vs {dictionary.label('attributed_revenue')} by paid channel group ({currency}, {_model_label(primary)} model)",
                                         "Grey: spend; blue: revenue the attribution model credits to the channel group. Blue taller than grey = credited revenue exceeds spend; whether the spend caused it is the marketing-mix model's question (see Recommendations)."
                                         + (f" {unpaid} channel group{'s' if unpaid != 1 else ''} without spend (organic, direct, sales …) are in the table only." if unpaid else ""))
                    + _table(ch, outcomes, currency=currency, caption=f"Outcomes by channel group, {_model_label(primary)} model")
                    + _table(paid, efficiency, currency=currency, caption="Efficiency of the paid channel groups"))
        sections.append(_section("channels", "Channel performance", body, 'Column meanings: see <a href="#definitions">definitions</a>.'))
        # ---- model comparison
        cm = roi[roi["level"] == "channel"]
        if cm.empty or "attributed_revenue" not in cm.columns:
            body = _na("no channel-level attributed revenue.")
        else:
            piv = cm.pivot_table(index="channel_group", columns="attribution_model", values="attributed_revenue", aggfunc="sum")
            piv = piv.reindex(columns=[m for m in models if m in piv.columns])
            piv = piv.loc[piv.sum(axis=1).sort_values(ascending=False).index]
            shown = piv.head(8)
            chart = _dual(svg.grouped_bar_chart, [str(i) for i in shown.index], {_model_label(m): shown[m].fillna(0).tolist() for m in shown.columns}, "", y_label=sym, height=360, width=1000,
                          narrow={"height": 420})
            roas = cm[_numeric(cm, "ad_spend").fillna(0) > 0].pivot_table(index="channel_group", columns="attribution_model", values="channel_roas", aggfunc="first")
            roas = roas.reindex(columns=[m for m in models if m in roas.columns])
            spread = piv.max(axis=1) - piv.min(axis=1)
            widest = spread.idxmax() if spread.notna().any() else None
            callout = (f'<p class="callout">Models disagree most on <b>{_esc(widest)}</b>: {dictionary.link("attributed_revenue")} ranges from {_esc(fmt_value(piv.loc[widest].min(), "currency", currency=currency))} '
                       f'to {_esc(fmt_value(piv.loc[widest].max(), "currency", currency=currency))} depending on the model.</p>') if widest is not None else ""
            top_note = f"Top {len(shown)} of {len(piv)} channel groups by attributed revenue. " if len(piv) > len(shown) else ""
            body = callout + _figure(chart, f"{dictionary.label('attributed_revenue')} by channel group under each attribution model ({currency})",
                                     top_note + "One bar per model inside each channel group. Bars of similar height = the models agree; big differences = the credit depends on the method (see the model definitions).")
            if not roas.empty:
                rp = roas.rename(columns=_model_label).rename_axis(columns=None).reset_index()
                body += _table(rp, [("channel_group", "Channel group", None)] + [(c, c, "ratio", "channel_roas") for c in rp.columns[1:]],
                               caption=f"{dictionary.label('channel_roas')} by attribution model")
        sections.append(_section("models", "Attribution model comparison", body))
        # ---- recommendations
        rec = at_primary if "recommendation" in roi.columns else roi.iloc[0:0]
        rec = rec[rec["recommendation"].notna() & (rec["level"] == "channel")].copy() if "recommendation" in rec.columns else rec
        if rec.empty:
            body = _na("no recommendations in the marketing ROI data.")
        else:
            rec["_o"] = rec["recommendation"].map(lambda r: RECOMMENDATION_ORDER.get(str(r), 9))
            rec = rec.sort_values(["_o", "ad_spend"], ascending=[True, False])
            counts = rec["recommendation"].value_counts()
            summary = " · ".join(f"{_badge(k)} {int(counts.get(k, 0))} channel group{'s' if counts.get(k, 0) != 1 else ''}" for k in RECOMMENDATION_ORDER if counts.get(k, 0))
            dictionary.use("mmm_marginal_roi_low"), dictionary.use("mmm_marginal_roi_high")
            evidence = [_kcol(dictionary, "mmm_marginal_roi", fmt=_mroi_with_interval, qualifier="(80 % interval)"), _kcol(dictionary, "planned_spend_change_pct", fmt="change"), _kcol(dictionary, "channel_roas")]

            def reason(v, r):
                return f'{_esc(v)}<div class="how">Rule: {_esc(r.get("recommendation_rule"))}</div>'

            body = (f'<p class="callout">{summary}</p>'
                    f'<p class="how">Per channel group: the marketing-mix model\'s {dictionary.link("mmm_marginal_roi")} and its 80 % interval against break-even '
                    f'{_esc(fmt_value(dictionary.get("mmm_marginal_roi", "threshold_value"), "ratio"))}, with the budget plan\'s direction; {dictionary.link("channel_roas")} ({_esc(_model_label(primary))}) is context. '
                    f'Campaigns follow their channel group (see Campaign performance).</p>'
                    + _table(rec, [("channel_group", "Channel group", None), ("recommendation", "Action", _badge), *evidence, ("recommendation_reason", "Reason", reason)],
                             currency=currency, wrap=("recommendation_reason",)))
        sections.append(_section("recommendations", "Budget recommendations", body,
                                 "<b>Scale</b> = add budget, <b>reduce</b> = cut budget, <b>test</b> = run an experiment before moving budget. Rule = the condition that fired; reason = the numbers behind it."))
        # ---- campaign table
        camp = at_primary[at_primary["level"] == "campaign"].copy()
        if not camp.empty:
            camp = camp[_numeric(camp, "ad_spend").fillna(0) > 0].sort_values("ad_spend", ascending=False).head(25)
            camp["campaign"] = _col(camp, "campaign_key")
            cols = [("channel_group", "Channel group", None), ("campaign", "Campaign", None), *(_kcol(dictionary, k, currency=currency) for k in ROI_CAMPAIGN_COLUMNS),
                    ("recommendation", "Action (of the channel group)", _badge)]
            sections.append(_section("campaigns", "Campaign performance", _table(camp, cols, currency=currency),
                                     f"Top {len(camp)} campaigns by spend, {_esc(_model_label(primary))} model. The marketing-mix model and the budget plan measure channel groups, "
                                     "not campaigns: a campaign's action is its channel group's; its own evidence is the attributed figures in its row."))
    # ---- funnel by stage
    funnel = _get(data, "funnel", ["stage", "contacts"])
    if funnel is None:
        fbody = _na("the funnel data was not provided.")
    else:
        fbody = _funnel_summary(funnel, fresh_to)
        if "channel_group" in funnel.columns:
            window, label = _funnel_window(funnel, fresh_to)
            w = _by_channel(window).copy()
            w["contacts"] = pd.to_numeric(w["contacts"], errors="coerce").fillna(0)
            piv = w.pivot_table(index="channel_group", columns="stage", values="contacts", aggfunc="sum").fillna(0)
            stages = [s for s in STAGE_LABELS if s in piv.columns] + [s for s in piv.columns if s not in STAGE_LABELS]
            piv = piv[stages]
            tab = piv.reset_index()
            evidence = _stage_evidence(window).set_index("stage")
            hidden = [s for s in stages[1:] if s in evidence.index and not evidence.loc[s, "stage_distinguishable"]]
            cols: list[Column] = [("channel_group", "Channel", None)]
            for i, s in enumerate(stages):
                cols.append((s, STAGE_LABELS.get(s, str(s)) + (" (not distinguishable)" if s in hidden else ""), "count"))
            if len(stages) > 1:
                tab["_overall"] = piv[stages[-1]].to_numpy() / piv[stages[0]].replace(0, float("nan")).to_numpy()
                cols.append(("_overall", f"{STAGE_LABELS.get(stages[0], stages[0])} → {STAGE_LABELS.get(stages[-1], stages[-1])}", "percent"))
            tab = tab.sort_values(stages[0], ascending=False)
            fbody += _table(tab, cols, caption=f"People per stage by channel, {label}")
            fbody += "".join(f'<p class="how">{_esc(STAGE_LABELS.get(s, str(s)))}: {_esc(_not_distinguishable_text(evidence.loc[s, "stage_note"]))}.</p>' for s in hidden)
    sections.append(_section("funnel", "Funnel by stage", fbody, "The percentage is the conversion from the stage before; the last table column is the end-to-end conversion. A stage the data cannot tell apart from the stage before shows no conversion."))
    # ---- cohort LTV
    sections.append(_section("ltv", "Customer lifetime value by acquisition channel", _cohorts(_get(data, "cohort_ltv", ["months_since_acquisition", "ltv_per_customer"]), currency)))
    # ---- MMM
    sections.append(_section("mmm", "Marketing mix model: what drives revenue", _mmm(data, dictionary, currency, sym)))
    sections.append(_section("budget", "Budget plan (marketing mix model)", _budget(data, dictionary, currency, sym)))
    names = [n for n in dict.fromkeys([*dictionary.used, *ROI_COHORT_KPIS]) if n in dictionary.rows]
    sections.append(_section("definitions", "Definitions", _definitions(dictionary, names, MARKETING_TERMS),
                             "Terms used in this report (metrics, attribution models, MMM) first, then the governed KPIs from the KPI dictionary with formula, owner and version."))
    return _page("Marketing ROI", subtitle, fresh_to=fresh_to, generated_at=generated_at, sections=sections, extra_meta=f'<span class="pill">Currency {_esc(currency)}</span>')


def _ltv_cohorts(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """Rows of the cohorts observed for at least ``months`` months (a row for every month up to that age),
    cut at ``months``: the same cohorts at every point, so a curve averaged over them never mixes ages."""
    key = ["channel_group", "cohort_month"]
    upto = f[f["months_since_acquisition"] <= months]
    ages = upto.groupby(key)["months_since_acquisition"].agg(["max", "nunique"])
    first = f["months_since_acquisition"].min()
    full = ages[(ages["max"] == months) & (ages["nunique"] == months - first + 1)].index
    return upto.set_index(key).loc[lambda x: x.index.isin(full)].reset_index()


def _ltv_curves(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """LTV per customer by months since acquisition (rows) and channel (columns): the customer-weighted average of
    ``ltv_per_customer`` over the cohorts of :func:`_ltv_cohorts` (equals their summed margin ÷ their customers)."""
    rows = _ltv_cohorts(f, months)
    curve = rows.groupby(["channel_group", "months_since_acquisition"])[["_lw", "_w"]].sum()
    curve["ltv"] = curve["_lw"] / curve["_w"].replace(0, float("nan"))
    out = curve["ltv"].unstack(0).sort_index() if len(curve) else pd.DataFrame(index=pd.Index([], name="months_since_acquisition"))
    out.attrs["cohorts"] = rows.groupby("channel_group")["cohort_month"].nunique().to_dict()
    return out


def _cohorts(c: pd.DataFrame | None, currency: str, months: int = 12, long_months: int = 24) -> str:
    """LTV curves over a fixed set of cohorts per chart: those observed for at least ``months`` months (one
    curve per channel, months 0…``months``); the table adds LTV at ``long_months`` over the cohorts that old."""
    if c is None:
        return _na("the cohort LTV data was not provided.")
    f = c.copy()
    if "channel_group" not in f.columns:
        f["channel_group"] = "All"
    if "cohort_month" not in f.columns:
        f["cohort_month"] = "all cohorts"
    for col in ("months_since_acquisition", "ltv_per_customer", "customers", "cac", "payback_month", "retention_30d", "retention_60d", "retention_90d", "cumulative_gross_margin"):
        if col in f.columns:
            f[col] = pd.to_numeric(f[col], errors="coerce")
    f["_w"] = _numeric(f, "customers").fillna(1.0)
    f["_lw"] = f["ltv_per_customer"] * f["_w"]
    curve = _ltv_curves(f, months)
    if curve.empty:
        oldest = int(f["months_since_acquisition"].max()) if f["months_since_acquisition"].notna().any() else 0
        return _na(f"no cohort has been observed for {months} months yet (the oldest: {oldest} months).")
    long_curve = _ltv_curves(f, long_months)
    eligible = _ltv_cohorts(f, months)
    groups = list(curve.iloc[-1].sort_values(ascending=False).index)
    chart = _dual(svg.line_chart, [float(m) for m in curve.index], {str(g): curve[g].tolist() for g in groups}, "", y_label=currency, height=300)
    # summary per channel: every column over the same cohorts as the curve, except "customers acquired" (all cohorts)
    start = f["months_since_acquisition"].min()
    first = f[f["months_since_acquisition"] == start]
    efirst = eligible[eligible["months_since_acquisition"] == start]
    rows = []
    for g in groups:
        gfirst = efirst[efirst["channel_group"] == g]
        w = gfirst["_w"].replace(0, float("nan"))

        def wavg(col: str, gfirst: pd.DataFrame = gfirst, w: pd.Series = w) -> float:
            if col not in gfirst.columns:
                return float("nan")
            x = gfirst[col]
            m = x.notna() & w.notna()
            return float((x[m] * w[m]).sum() / w[m].sum()) if m.any() and w[m].sum() else float("nan")

        m12 = curve[g].get(months, float("nan"))
        m_long, m_long12 = (long_curve[g].get(long_months, float("nan")), long_curve[g].get(months, float("nan"))) if g in long_curve.columns else (float("nan"), float("nan"))
        cac = wavg("cac")
        paid_back = gfirst["payback_month"].dropna() if "payback_month" in gfirst.columns else pd.Series(dtype=float)
        rows.append({"channel_group": g, "customers": _numeric(first[first["channel_group"] == g], "customers").sum(), "cohorts": len(gfirst), "curve_customers": _numeric(gfirst, "customers").sum(),
                     "ltv12": m12, "ltv_long": m_long, "ltv_long12": m_long12, "long_cohorts": long_curve.attrs.get("cohorts", {}).get(g, 0), "cac": cac, "ltv_cac": (m12 / cac) if _is_num(m12) and _is_num(cac) and cac else float("nan"),
                     "payback": float(paid_back.median()) if len(paid_back) else float("nan"), "r30": wavg("retention_30d"), "r60": wavg("retention_60d"), "r90": wavg("retention_90d")})
    tab = pd.DataFrame(rows)

    def long_cell(v: Any, rec: Mapping[str, Any]) -> str:
        if not _is_num(v):
            return "–"
        return (f'{_esc(fmt_value(v, "currency", currency=currency))}<br><span class="how nowrap">{rec["long_cohorts"]} cohorts; '
                f'{_esc(fmt_value(rec["ltv_long12"], "currency", currency=currency))} at {months} m</span>')

    cohort_months = pd.to_datetime(eligible["cohort_month"], errors="coerce").dropna()
    span = (f"acquired {_month(cohort_months.min())} – {_month(cohort_months.max())}, " if len(cohort_months) else "")
    n_cohorts = eligible["cohort_month"].nunique()
    n_customers = _numeric(efirst[efirst["channel_group"] != ALL_CHANNELS], "customers").sum()
    how = (f"Rule: each line averages only the cohorts observed for at least {months} months ({span}{n_cohorts} monthly cohorts, "
           f"{fmt_value(n_customers, 'count')} customers over all channels), the same cohorts at every month, weighted by customers; younger cohorts are left out "
           f"so that the curve never mixes ages and only rises with cumulative margin. The table gives each channel's number of cohorts and customers in its line. "
           f"Steeper and higher = more valuable customers; compare with the CAC column to see payback.")
    return (_figure(chart, f"Average cumulative gross margin per customer by months since acquisition ({currency}), first {months} months, by acquisition channel", how)
            + _table(tab, [("channel_group", "Channel", None), ("customers", "Customers acquired, all cohorts", "count"), ("cohorts", f"Cohorts ≥ {months} months old", "count"),
                           ("curve_customers", "Their customers", "count"), ("ltv12", f"LTV at {months} months ({currency})", "currency"),
                           ("ltv_long", f"LTV at {long_months} months ({currency})", long_cell), ("cac", f"CAC ({currency})", "currency"),
                           ("ltv_cac", f"LTV / CAC ({months} m)", "ratio"), ("payback", "Median payback month", "number"),
                           ("r30", "Retention 30 / 60 / 90 d", lambda v, rec: '<span class="nowrap">' + " / ".join(_esc(fmt_value(rec[k], "percent")) for k in ("r30", "r60", "r90")) + "</span>")], currency=currency,
                     caption=f"Per channel over the cohorts observed for at least {months} months (LTV at {long_months} months: over those observed for at least {long_months})."))


def _mmm(data: Mapping[str, pd.DataFrame], dictionary: _Dictionary, currency: str, sym: str) -> str:
    comps, lines = _mmm_components(_get(data, "mmm_contributions"))
    labels = _mmm_labels(_get(data, "mmm_roi", ["channel"]))
    parts = []
    if comps is None or comps.empty:
        parts.append(_na("the MMM decomposition (mmm_contributions) was not provided."))
    else:
        base_first = [c for c in ("baseline", "trend", "seasonality", "promo") if c in comps.columns]
        media = [c for c in comps.columns if c not in base_first]
        order = base_first + sorted(media, key=lambda c: -comps[c].sum())
        comps = comps[order]
        names = {c: labels.get(c, str(c).replace("_", " ")) for c in order}
        negative = [names[c] for c in order if (comps[c] < 0).any()]
        chart = _dual(svg.stacked_area_chart, list(comps.index), {names[c]: comps[c].fillna(0).tolist() for c in order}, "", y_label=sym, height=320)
        total = comps.sum().sum()
        share = comps.sum() / total if total else comps.sum() * float("nan")
        tab = pd.DataFrame({"component": [names[c] for c in order], "kind": ["base" if c in base_first else "media" for c in order],
                            "contribution": [comps[c].sum() for c in order], "share": [share[c] for c in order]})
        media_share = tab.loc[tab["kind"] == "media", "share"].sum()
        note = f" Negative weeks of {', '.join(negative)} are drawn at zero." if negative else ""
        parts.append(f'<p class="callout">Over {len(comps)} weeks ({_date(comps.index[0])} to {_date(comps.index[-1])}) the model attributes <b>{_esc(fmt_value(media_share, "percent"))}</b> of modelled revenue to paid media; the rest is base demand (baseline, trend, seasonality, promotions).</p>')
        parts.append(_figure(chart, f"Weekly revenue decomposed into drivers ({currency})", "Each band is the revenue the model assigns to one driver; bottom bands are base demand, upper bands paid media channels." + note))
        if lines is not None and not lines.empty:
            parts.append(_figure(_dual(svg.line_chart, list(lines.index), {str(c).capitalize(): lines[c].tolist() for c in lines.columns}, "", y_label=sym, height=240),
                                 f"Model fit: actual vs predicted weekly revenue ({currency})", "Close lines = the model explains revenue well; read the decomposition with more caution where they diverge."))
        parts.append(_table(tab, [("component", "Driver", None), ("kind", "Type", None), ("contribution", f"Modelled revenue over the fit period ({currency})", "currency"), ("share", "Share of modelled revenue", "percent")], currency=currency))
    roi = _get(data, "marketing_roi", ["channel_group", "mmm_roi"])
    if roi is not None:
        r = roi[(_col(roi, "level", "channel") == "channel")].dropna(subset=["mmm_roi"]).drop_duplicates("channel_group").copy()
        for c in ("mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high"):
            r[c] = pd.to_numeric(_col(r, c), errors="coerce")
        r = r.sort_values("mmm_roi", ascending=False)
        if not r.empty:
            lows, highs = r["mmm_roi_low"].fillna(r["mmm_roi"]), r["mmm_roi_high"].fillna(r["mmm_roi"])
            chart = _dual(svg.interval_chart, r["channel_group"].tolist(), r["mmm_roi"].tolist(), lows.tolist(), highs.tolist(), "",
                          reference=1.0, reference_label="break-even (1.0×)", value_labels=[fmt_value(v, "ratio") for v in r["mmm_roi"]])
            outside = r.loc[(r["mmm_roi"] < lows) | (r["mmm_roi"] > highs), "channel_group"].tolist()
            caution = (f" For {', '.join(outside)} the estimate lies outside its range (the range comes from resampling, the dot from the full fit): treat it with caution." if outside else "")
            parts.append(_figure(chart, f"{dictionary.label('mmm_roi')} per channel group (× revenue per unit of spend, fit period)",
                                 "Dot: estimate; bar: 80 % interval. Right of the dashed red line = the channel group pays back its spend on average; whether the next dollar does is the marginal ROI." + caution))
            parts.append(_table(r, [("channel_group", "Channel group", None), *(_kcol(dictionary, k) for k in (
                "mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high"))]))
    return "".join(parts)


def _mmm_labels(model: pd.DataFrame | None) -> dict[str, str]:
    """MMM channel key -> reader-facing label (the channel-group vocabulary), from the model table."""
    if model is None or "channel_label" not in model.columns:
        return {}
    return dict(zip(model["channel"].astype(str), model["channel_label"].astype(str)))


def _budget(data: Mapping[str, pd.DataFrame], dictionary: _Dictionary, currency: str, sym: str) -> str:
    plan = _get(data, "mmm_budget_plan", ["channel", "scenario"])
    roi = _get(data, "marketing_roi", ["channel_group"])
    if plan is None or roi is None or "planned_spend" not in roi.columns:
        return _na("the MMM budget plan (mmm_budget_plan, marketing_roi) was not provided.")
    p = plan.copy()
    for c in ("current_spend", "scenario_spend", "uplift", "uplift_low", "uplift_high"):
        p[c] = pd.to_numeric(_col(p, c), errors="coerce")
    optimal = p[p["scenario"] == "optimal_same_total"]
    groups = roi[(_col(roi, "level", "channel") == "channel")].dropna(subset=["planned_spend"]).drop_duplicates("channel_group").copy()
    if optimal.empty or groups.empty:
        return _na("the marketing-mix model has no budget plan (see the mmm_model asset).")
    for c in ("plan_current_spend", "planned_spend", "planned_spend_change_pct"):
        groups[c] = pd.to_numeric(groups[c], errors="coerce")
    groups = groups.sort_values("plan_current_spend", ascending=False)
    start, end = _col(optimal, "period_start").min(), _col(optimal, "period_end").max()
    weeks = _col(optimal, "period_weeks").max()
    period = f"{_date(start)} to {_date(end)}" + (f" ({int(weeks)} weeks)" if _is_num(weeks) else "")
    up, lo, hi = (float(optimal[c].iloc[0]) for c in ("uplift", "uplift_low", "uplift_high"))
    crosses = _is_num(lo) and _is_num(hi) and lo < 0 < hi
    rng = f" (90 % interval {_esc(fmt_value(lo, 'currency', currency=currency, signed=True))} to {_esc(fmt_value(hi, 'currency', currency=currency, signed=True))})" if _is_num(lo) and _is_num(hi) else ""
    explain = (" The interval crosses zero: the model is not sure the reallocation gains anything, so move budget in steps and measure each (the recommendations say which groups to test)."
               if crosses else " The whole interval is above zero: the model is confident the reallocation gains revenue." if _is_num(lo) and lo > 0 else "")
    chart = _dual(svg.grouped_bar_chart, groups["channel_group"].astype(str).tolist(),
                  {dictionary.label("plan_current_spend"): groups["plan_current_spend"].fillna(0).tolist(), dictionary.label("planned_spend"): groups["planned_spend"].fillna(0).tolist()},
                  "", y_label=sym, colors=("#9aa5b1", "#59a14f"))
    parts = [(f'<p class="callout {"warn" if crosses or not up > 0 else "good"}">Plan for <b>{_esc(period)}</b> at the same total as the current run rate '
              f'({_esc(fmt_value(groups["plan_current_spend"].sum(), "currency", currency=currency))}): predicted revenue change '
              f'<b>{_esc(fmt_value(up, "currency", currency=currency, signed=True))}</b>{rng}.{_esc(explain)}</p>'),
             _figure(chart, f"{dictionary.label('plan_current_spend')} vs {dictionary.label('planned_spend')} per channel group, {period} ({currency})",
                     "Grey: spend at the current run rate (the same number of weeks before the plan); green: spend the plan proposes at the same total, each channel within 50–200 % of its run rate."),
             _table(groups, [("channel_group", "Channel group", None), *(_kcol(dictionary, k, currency=currency) for k in ("plan_current_spend", "planned_spend")),
                                      _kcol(dictionary, "planned_spend_change_pct", fmt="change")],
                    currency=currency)]
    labels = _mmm_labels(_get(data, "mmm_roi", ["channel"]))
    others = p[p["scenario"] != "optimal_same_total"].copy()
    if not others.empty:
        others["change"] = others["scenario_spend"] - others["current_spend"]
        others["roi_change"] = others["uplift"] / others["change"].replace(0, float("nan"))
        others["channel"] = others["channel"].map(lambda c: labels.get(str(c), str(c)))
        parts.append(f"<h3>What-if scenarios, {_esc(period)}</h3><p class=\"how\">Predicted revenue change over the plan period (and the carry-over after it) when one "
                     "channel's spend is changed from its current run rate and everything else stays the same. Revenue per extra unit of spend below 1.0× "
                     "means the extra spend would not pay back. The run rate can differ from the fit period's average spend, so these returns can differ "
                     "from the MMM Marginal ROI above, which the recommendations read.</p>")
        parts.append(_table(others, [("scenario", "Scenario", None), ("change", f"Spend change ({currency})", "currency"), ("uplift", f"Predicted revenue change ({currency})", "currency"),
                                     ("roi_change", "Revenue per extra unit of spend", "ratio")], currency=currency))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- data quality


def _dq_value(v: Any, rec: Mapping[str, Any]) -> str:
    metric = str(rec.get("metric") or "").lower()
    if _is_num(v):
        f = float(v)
        if any(k in metric for k in ("rate", "pct", "share", "ratio", "fraction")) and -1.0 <= f <= 1.0:
            return _esc(fmt_value(f, "percent"))
        if "hour" in metric:
            return _esc(f"{f:,.1f} h")
        return _esc(fmt_value(f, None))
    return _esc("–" if v is None or (isinstance(v, float) and math.isnan(v)) else v)


def _problem_cards(problems: pd.DataFrame) -> str:
    cards = []
    for rec in problems.to_dict("records"):
        status = str(rec.get("status"))
        cls = "bad" if status == "failed" else "warn"
        facts = []
        if rec.get("metric") is not None and not (isinstance(rec.get("metric"), float) and math.isnan(rec.get("metric"))):
            facts.append(f"{_esc(rec.get('metric'))} = <b>{_dq_value(rec.get('value'), rec)}</b>")
        facts.append(f"severity {_esc(rec.get('severity') or '–')}")
        facts.append("<b>blocking</b>" if rec.get("blocking") else "not blocking")
        facts.append(f"evaluated {_esc(_datetime(rec.get('evaluated_at')))}")
        cards.append(f'<div class="problem {cls}"><div>{_badge(status)} <b>{_esc(rec.get("asset_key"))}</b> · {_esc(rec.get("check_name") or "–")}</div>'
                     f'<div class="desc">{_esc(rec.get("description") or "")}</div><div class="how">{" · ".join(facts)}</div></div>')
    return f'<div class="problems">{"".join(cards)}</div>'


def render_data_quality(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any) -> str:
    """Data quality: pass/warn/fail counts, problems first, all checks by asset, freshness, identity match rates."""
    dq = _get(data, "data_quality_report", ["status"])
    sections = []
    if dq is None:
        msg = _na("the data quality report (data_quality_report) was not provided.")
        for sid, t in (("summary", "Summary"), ("problems", "Failing and warning checks"), ("checks", "All checks by asset"), ("freshness", "Freshness"), ("identity", "Identity match rates")):
            sections.append(_section(sid, t, msg))
        return _page("Data quality", "Checks, freshness and identity resolution of the marketing data.", fresh_to=fresh_to, generated_at=generated_at, sections=sections)
    f = dq.copy()
    if "section" not in f.columns:
        f["section"] = "check"
    f["status"] = f["status"].astype(str).str.lower()
    f["blocking"] = _col(f, "blocking", False).fillna(False).astype(bool)
    for c in ("asset_key", "check_name", "severity", "description", "metric", "value", "evaluated_at"):
        if c not in f.columns:
            f[c] = None
    f["asset_key"] = f["asset_key"].fillna("(no asset)").astype(str)
    status_order = {"failed": 0, "warned": 1, "skipped": 2, "passed": 3, "pending": 4, "not_in_run": 5}
    f["_o"] = f["status"].map(status_order).fillna(6)
    # The tally (lib.tally): each check once, latest result wins; the page lists exactly the checks it counts.
    all_checks = f[f["section"] == "check"]
    counted = tally.tally(tally.outcomes_from_rows(all_checks.assign(_row=all_checks.index)))
    counted_rows = all_checks.loc[[o.ref for o in counted.checks]]
    others = all_checks[~all_checks["status"].isin(tally.STATUSES)].drop_duplicates(["asset_key", "check_name"], keep="last")
    checks = pd.concat([counted_rows, others])
    n_fail, n_warn, n_pass, n_skip = (counted.count(k) for k in ("failed", "warned", "passed", "skipped"))
    blocking_fail = len(counted.blocking_failures)
    state = "bad" if blocking_fail else ("warn" if n_fail or n_warn else "good")
    verdict = {"bad": f"{blocking_fail} blocking check{'s' if blocking_fail != 1 else ''} failed: downstream numbers may be wrong until fixed.",
               "warn": "No blocking failures; some checks need attention.", "good": "All evaluated checks passed."}[state]
    last_eval = pd.to_datetime(checks["evaluated_at"], errors="coerce", utc=True).max()
    tiles = "".join(f'<div class="tile {cls}"><div class="label">{_esc(label)}</div><div class="value">{n:,}</div><div class="delta">{_esc(sub)}</div></div>' for label, n, cls, sub in (
        ("Failed", n_fail, "bad" if n_fail else "none", f"{blocking_fail} blocking"), ("Warned", n_warn, "warn" if n_warn else "none", f"{sum(1 for c in counted.checks if c.status == 'warned' and c.blocking)} on blocking checks"),
        ("Passed", n_pass, "good", "checks"), ("Skipped", n_skip, "none", "did not execute or said skipped")))
    uncounted = others["status"].value_counts()
    note = f"Counted: {tally.SCOPE}." + "".join(f" {int(n):,} {k.replace('_', ' ')} not counted." for k, n in uncounted.items())
    sections.append(_section("summary", "Summary", f'<p class="callout {state}"><b>{_esc(verdict)}</b></p><div class="tiles">{tiles}</div><p class="how">{_esc(note)}</p>'
                             + (f'<p class="how">Last evaluation: {_esc(_datetime(last_eval))}. {len(checks):,} checks across {checks["asset_key"].nunique():,} assets.</p>' if not pd.isna(last_eval) else ""),
                             "Blocking = a failure stops downstream assets from materialising; warnings are reported but do not block. Skipped = the check did not execute (its asset or an upstream blocking check failed) or it had nothing to check."))
    cols: list[Column] = [("status", "Status", _badge), ("asset_key", "Asset", None), ("check_name", "Check", None), ("severity", "Severity", None),
                          ("blocking", "Blocking", lambda v, r: "yes" if v else "no"), ("metric", "Metric", None), ("value", "Value", _dq_value),
                          ("description", "What it checks / what was found", None), ("evaluated_at", "Evaluated", "datetime")]
    problems = checks[checks["status"].isin(["failed", "warned"])].sort_values(["_o", "blocking", "asset_key"], ascending=[True, False, True])
    sections.append(_section("problems", "Failing and warning checks", _problem_cards(problems) if not problems.empty else '<p class="callout good">Nothing failed or warned.</p>',
                             "Failed first (blocking before non-blocking), then warnings. Each card: what was checked, what was found, and the measured value."))
    if checks.empty:
        body = _na("no check results.")
    else:
        blocks = []
        for asset, g in sorted(checks.groupby("asset_key"), key=lambda kv: (kv[1]["_o"].min(), kv[0])):
            c = g["status"].value_counts()
            bad = int(c.get("failed", 0)) + int(c.get("warned", 0))
            summ = " · ".join(f"{int(c.get(k, 0))} {k.replace('_', ' ')}" for k in status_order if c.get(k, 0))
            open_attr = " open" if bad else ""
            blocks.append(f'<details class="asset"{open_attr}><summary>{_esc(asset)} <span class="how">— {_esc(summ)}</span></summary>'
                          + _table(g.sort_values(["_o", "check_name"]), [c_ for c_ in cols if c_[0] != "asset_key"], wrap=("description",)) + "</details>")
        body = "".join(blocks)
    sections.append(_section("checks", "All checks by asset", body, "Assets with problems are listed first and expanded; click an asset to expand or collapse it."))
    fr = f[f["section"] == "freshness"]
    sections.append(_section("freshness", "Freshness", _table(fr.sort_values(["_o", "asset_key"]), [c for c in cols if c[0] not in ("check_name",)], wrap=("description",)) if not fr.empty else _na("no freshness results."),
                             "Whether each source or asset was updated recently enough; value = age of the newest data."))
    ident = f[f["section"] == "identity"]
    if ident.empty:
        ibody = _na("no identity resolution results.")
    else:
        ib = ident.copy()
        ib["_v"] = pd.to_numeric(ib["value"], errors="coerce")
        rates = ib[ib["metric"].astype(str).str.contains("rate|share|pct", case=False, regex=True) & ib["_v"].between(0, 1)]
        ibody = ""
        if not rates.empty:
            labels = [str(c if c is not None and not (isinstance(c, float) and math.isnan(c)) else m).replace("_", " ") for c, m in zip(rates["check_name"], rates["metric"])]
            ibody += _figure(_dual(svg.hbar_chart, labels, (rates["_v"] * 100).tolist(), "", value_labels=[fmt_value(v, "percent") for v in rates["_v"]], label_width=260, color="#59a14f"),
                             "Identity match rates (% of records linked)", "Longer bar = more records matched across systems (e.g. CRM account ↔ ERP customer). Low rates mean attribution and LTV miss part of the data.", compact=True)
        ibody += _table(ib.sort_values(["_o", "asset_key"]), [c for c in cols if c[0] not in ("severity",)], wrap=("description",))
    sections.append(_section("identity", "Identity match rates", ibody))
    return _page("Data quality", "Checks, freshness and identity resolution of the marketing data. Fix failed blocking checks first.",
                 fresh_to=fresh_to, generated_at=generated_at, sections=sections)


# ---------------------------------------------------------------------------------------------- writing


def write_report(html_text: str, path: str | os.PathLike, audits: Sequence[Audit] = ()) -> Path:
    """Write-audit-publish one page: written (and fsynced) under ``.staging/`` next to ``path``, checked with
    ``audits`` (e.g. :func:`~marketing_assets.lib.publish.audit_report_html`), then moved into place with
    ``os.replace``; mode 0644. A failed audit raises :class:`~marketing_assets.lib.publish.AuditFailed` and
    leaves the published page as it was."""
    target = Path(path)

    def write(staged: Path) -> None:
        with open(staged, "w", encoding="utf-8") as fh:
            fh.write(html_text)
            fh.flush()
            os.fsync(fh.fileno())

    with write_audit_publish({"html": target}, {"html": write}, audits, what=f"report {target.name}") as staged:
        os.chmod(staged["html"], 0o644)
    return target
