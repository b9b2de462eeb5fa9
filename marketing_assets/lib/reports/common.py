"""View helpers shared by the three pages: reading the frames, KPI table columns, definitions, the funnel and the
forecast (on both the executive and the marketing ROI page).

The rule of the view modules: numbers come from the extracts as they are. Reshaping (filter, pivot, sort, pick the
latest month) is fine; a KPI is never computed from other columns. Adding up a KPI over periods or members goes through
:func:`additive_total`, which refuses a KPI whose dictionary formula does not add up (a ratio, an average).
``marketing_assets_tests/test_report_views.py`` enforces the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from marketing_assets.constants import ALL_CHANNELS
from marketing_assets.lib.freshness import period_complete
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import (
    Callout,
    Cell,
    Chart,
    Code,
    Column,
    Definition,
    Definitions,
    Figure,
    How,
    NotAvailable,
    Note,
    Parts,
    Table,
    rich,
)
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import (
    STAGE_LABELS,
    fmt_date,
    fmt_datetime,
    fmt_month,
    fmt_value,
    is_missing,
    is_num,
    slug,
    stage_label,
)

NUMERIC_UNITS = ("currency", "percent", "ratio", "count", "months", "number")


# ---------------------------------------------------------------------------------------------- frames


def get_frame(data: Mapping[str, Any] | None, key: str, required: Iterable[str] = ()) -> pd.DataFrame | None:
    """The frame, or None when missing, not a frame, empty, or without the required columns."""
    frame = (data or {}).get(key)
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return None
    if any(c not in frame.columns for c in required):
        return None
    return frame


def col(frame: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series([default] * len(frame), index=frame.index)


def numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(col(frame, name), errors="coerce")


def additive_total(values: pd.Series | pd.DataFrame, kpi: str, lookup: KpiLookup, *, column: str | None = None, by: Any = None) -> Any:
    """The sum of an additive KPI's values over periods or members (grouped ``by`` when given): the same KPI for their
    union. Raises ``ValueError`` for a KPI that does not add up (its dictionary formula is a ratio or an average)."""
    if not lookup.is_additive(kpi):
        raise ValueError(f"{kpi} does not add up over periods or members (see its formula in the KPI dictionary)")
    if by is not None:
        grouped = values.groupby(by)
        return (grouped[column] if column is not None else grouped).sum()
    return (values if column is None else values[column]).sum()


def latest_full_month(periods: Iterable[pd.Timestamp], fresh_to: Any) -> pd.Timestamp | None:
    months = sorted({pd.Timestamp(p).to_period("M").to_timestamp() for p in periods})
    if not months:
        return None
    if fresh_to is None:
        return months[-1]
    fresh = pd.Timestamp(fresh_to)
    if fresh.tzinfo is not None:
        fresh = fresh.tz_convert(None)
    full = [m for m in months if period_complete("month", m.date(), fresh.date())]
    return full[-1] if full else months[-1]


def by_channel(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of single channel groups: without the extract's all-channels rows, which would count everything twice."""
    return frame[frame["channel_group"] != ALL_CHANNELS] if "channel_group" in frame.columns else frame


# ---------------------------------------------------------------------------------------------- tables


@dataclass
class Col:
    """A table column: the frame column, its header, how its cells show (a unit, ``date``/``month``/``datetime``,
    ``change`` for a signed percent, None for text, or a callable ``(value, row) -> parts``) and the KPI it carries."""

    name: str
    header: str
    fmt: Any = None
    kpi: str | None = None
    inner_num: bool = False  # a callable's content is a figure: right-aligned inside a text cell


def kpi_col(lookup: KpiLookup, kpi: str, column: str | None = None, currency: str = "USD", fmt: Any = None, qualifier: str = "") -> Col:
    """A column showing a dictionary KPI: header = the KPI's label (+ currency), cells tagged with the KPI."""
    unit = lookup.unit(kpi)
    lookup.use(kpi)
    header = lookup.label(kpi) + (f" {qualifier}" if qualifier else "") + (f" ({currency})" if unit == "currency" else "")
    return Col(column or kpi, header, fmt or unit, kpi)


def _cell(value: Any, rec: Mapping[str, Any], c: Col, currency: str, wrap: Sequence[str]) -> Cell:
    if callable(c.fmt):
        return Cell(c.fmt(value, rec), c.kpi, wrap=c.name in wrap, inner_num=c.inner_num)
    if c.fmt in NUMERIC_UNITS:
        return Cell([fmt_value(value, None if c.fmt == "number" else c.fmt, currency=currency)], c.kpi, num=True)
    if c.fmt == "change":
        return Cell([fmt_value(value, "percent", signed=True)], c.kpi, num=True)
    if c.fmt == "date":
        return Cell([fmt_date(value)])
    if c.fmt == "month":
        return Cell([fmt_month(value) if value is not None and not pd.isna(value) else "–"])
    if c.fmt == "datetime":
        return Cell([fmt_datetime(value)])
    return Cell(["–" if is_missing(value) else str(value)], wrap=c.name in wrap)


def table(frame: pd.DataFrame, columns: Sequence[Col], *, caption: str | None = None, currency: str = "USD", wrap: Sequence[str] = ()) -> Table:
    cols = [c for c in columns if c.name in frame.columns or callable(c.fmt)]
    head = [Column(c.header, c.kpi, num=isinstance(c.fmt, str) and c.fmt in (*NUMERIC_UNITS, "change")) for c in cols]
    rows = [[_cell(rec.get(c.name), rec, c, currency, wrap) for c in cols] for rec in frame.to_dict("records")]
    return Table(head, rows, caption)


def figure(title: str, kind: str, *args: Any, how: Parts | str | None = None, compact: bool = False, narrow: Mapping[str, Any] | None = None, **options: Any) -> Figure:
    return Figure(title, Chart(kind, args, options, dict(narrow or {})), [how] if isinstance(how, str) else how, compact)


def na(key: str, **values: Any) -> NotAvailable:
    return NotAvailable(T.NA[key].format(**values))


# ---------------------------------------------------------------------------------------------- definitions


def definitions(lookup: KpiLookup, names: Sequence[str], terms: Mapping[str, str] | None = None) -> list:
    items = [Definition(slug(term), term, text) for term, text in (terms or {}).items()]
    for name in names:
        if name not in lookup.rows:
            items.append(Definition(slug(name), lookup.label(name), "", code=name, missing=True))
            continue
        unit = lookup.unit(name)
        targets = []
        for field, what in (("target", "target"), ("threshold", "alert line")):
            if is_num(lookup.get(name, f"{field}_value")):
                direction = str(lookup.get(name, f"{field}_direction", "")).replace("_", " ")
                targets.append(f"{what} {fmt_value(lookup.get(name, f'{field}_value'), unit)} ({direction})")
        version = f"v{lookup.get(name, 'version', '?')}" + (f" (dictionary v{lookup.get(name, 'dictionary_version')})" if lookup.get(name, "dictionary_version") is not None else "")
        values = [[Code(str(lookup.get(name, "formula", "–")))], [T.UNIT_NAMES.get(str(unit), unit or "–")], ["; ".join(targets) or "none set"],
                  [str(lookup.get(name, "owner", "–"))], [str(lookup.get(name, "refresh", "–"))], [str(lookup.get(name, "source_assets", "–"))], [version]]
        if lookup.get(name, "changed"):
            values.append([str(lookup.get(name, "changed"))])
        items.append(Definition(slug(name), lookup.label(name), str(lookup.get(name, "description", "")), code=name,
                                fields=list(zip(T.DEFINITION_FIELDS, values))))
    return [Definitions(items)] if items else [na("no_dictionary")]


# ---------------------------------------------------------------------------------------------- funnel


def stage_evidence(funnel: pd.DataFrame) -> pd.DataFrame:
    """Per stage: whether the data tells it apart from the stage before (the extract's ``stage_distinguishable``;
    true when the column is absent) and, if not, the extract's ``stage_note`` saying why."""
    f = pd.DataFrame({"stage": funnel["stage"], "ok": col(funnel, "stage_distinguishable", True).ne(False), "note": col(funnel, "stage_note")})
    return f.groupby("stage", sort=False).agg(stage_distinguishable=("ok", "all"), stage_note=("note", "first")).reset_index()


def not_distinguishable_text(note: Any) -> str:
    return f"{T.NOT_DISTINGUISHABLE}: {note}" if isinstance(note, str) and note else T.NOT_DISTINGUISHABLE


def funnel_window(funnel: pd.DataFrame, fresh_to: Any) -> tuple[pd.DataFrame, str]:
    """The last 3 full months of the funnel (all months if there is no month column)."""
    if "month" not in funnel.columns:
        return funnel, "all periods"
    f = funnel.copy()
    f["month"] = pd.to_datetime(f["month"])
    last = latest_full_month(f["month"].dropna(), fresh_to)
    if last is None:
        return f, "all periods"
    months = sorted(m for m in f["month"].dropna().unique() if pd.Timestamp(m) <= last)[-3:]
    f = f[f["month"].isin(months)]
    label = f"{fmt_month(months[0])} – {fmt_month(months[-1])}" if len(months) > 1 else fmt_month(months[0])
    return f, label


def window_end_rows(window: pd.DataFrame) -> pd.DataFrame:
    """The rows of the window's last month: their ``_3m`` columns hold the funnel KPIs over the whole 3-month window
    (the month and the two before it, KPI grain trailing_3_months). All rows when there is no month column."""
    if "month" not in window.columns or window.empty:
        return window
    months = pd.to_datetime(window["month"])
    return window[months == months.max()]


def funnel_totals(funnel: pd.DataFrame, lookup: KpiLookup) -> pd.DataFrame:
    has_all = "channel_group" in funnel.columns and (funnel["channel_group"] == ALL_CHANNELS).any()
    f = (funnel[funnel["channel_group"] == ALL_CHANNELS] if has_all else funnel).copy()
    f["contacts"] = pd.to_numeric(f["contacts"], errors="coerce").fillna(0.0)
    if "stage_order" not in f.columns:
        order = {s: i for i, s in enumerate(STAGE_LABELS, start=1)}
        f["stage_order"] = f["stage"].map(order).fillna(99)
    out = additive_total(f, "funnel_contacts", lookup, column="contacts", by=["stage_order", "stage"]).reset_index().sort_values("stage_order")
    # per stage over the window (one row per stage unless the extract has channel rows only: then no total conversion)
    last = window_end_rows(f if has_all or "channel_group" not in f.columns else f.iloc[0:0]).drop_duplicates("stage").set_index("stage")
    out["conversion_from_previous"] = out["stage"].map(col(last, "stage_conversion_3m")).where(out["stage_order"] > out["stage_order"].min())  # none before the first
    out["conversion_from_first"] = out["stage"].map(col(last, "conversion_from_known_3m"))
    out["stage_label"] = out["stage"].map(stage_label)
    out = out.merge(stage_evidence(f), on="stage", how="left")
    out["stage_distinguishable"] = out["stage_distinguishable"].ne(False)
    # a stage the data cannot tell apart from the one before has no conversion (the KPI is NULL there too)
    out["conversion_from_previous"] = out["conversion_from_previous"].where(out["stage_distinguishable"])
    return out


def funnel_summary(funnel: pd.DataFrame | None, fresh_to: Any, lookup: KpiLookup) -> list:
    if funnel is None:
        return [na("funnel")]
    window, label = funnel_window(funnel, fresh_to)
    tot = funnel_totals(window, lookup)
    if tot.empty:
        return [na("funnel_window")]
    flagged = [i > 0 and not ok for i, ok in enumerate(tot["stage_distinguishable"])]
    notes = ["" if i == 0 or not is_num(c) else fmt_value(c, "percent") for i, c in enumerate(tot["conversion_from_previous"])]
    wide_notes = ["not distinguishable" if bad else n for n, bad in zip(notes, flagged)]
    narrow_notes = ["n/d" if bad else n for n, bad in zip(notes, flagged)]

    def conversion(v: Any, rec: Mapping[str, Any]) -> Parts:
        if not rec.get("stage_distinguishable", True):
            return [Note([f"{T.NOT_DISTINGUISHABLE} (see below)"])]
        return [fmt_value(v, "percent")]

    how = T.FUNNEL_HOW + (T.FUNNEL_HOW_FLAGGED if any(flagged) else "")
    blocks = [
        figure(T.FUNNEL_FIGURE.format(window=label), "funnel", tot["stage_label"].tolist(), tot["contacts"].tolist(), "", how=how, compact=True,
               notes=wide_notes, narrow={"notes": narrow_notes}),
        table(tot, [Col("stage_label", "Stage"), Col("contacts", "People", "count"), Col("conversion_from_previous", "Conversion from previous stage", conversion, inner_num=True),
                    Col("conversion_from_first", "Conversion from first stage", "percent")]),
    ]
    blocks += [How([f"{r['stage_label']}: {not_distinguishable_text(r['stage_note'])}."]) for r, bad in zip(tot.to_dict("records"), flagged) if bad]
    return blocks


# ---------------------------------------------------------------------------------------------- forecast


def forecast_totals(f: pd.DataFrame) -> tuple[Any, Any, Any]:
    """Expected revenue over the horizon and its interval, as the extract publishes them (the same on every month's
    row); missing values when the extract has no horizon columns or the rows are a sum of segments."""
    if f.empty or any(c not in f.columns for c in ("horizon_expected_revenue", "horizon_lower", "horizon_upper")):
        return None, None, None
    first = f.iloc[0]
    return first["horizon_expected_revenue"], first["horizon_lower"], first["horizon_upper"]


def forecast(fc: pd.DataFrame | None, currency: str) -> list:
    if fc is None:
        return [na("forecast")]
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
            num = [c for c in ("open_opportunities", "open_pipeline", "expected_revenue", "lower", "upper") if c in f.columns]  # no horizon total: no callout
            f = f.groupby("forecast_month", as_index=False)[num].sum()
            seg_note = "sum of segments"
    f["forecast_month"] = pd.to_datetime(f["forecast_month"])
    f = f.sort_values("forecast_month")
    for c in ("expected_revenue", "lower", "upper", "open_pipeline", "open_opportunities"):
        if c in f.columns:
            f[c] = pd.to_numeric(f[c], errors="coerce")
    lower = f["lower"] if "lower" in f.columns else f["expected_revenue"]
    upper = f["upper"] if "upper" in f.columns else f["expected_revenue"]
    method = f"Method: {f['method'].iloc[0]}. " if "method" in f.columns and len(f) else ""
    total, low, high = forecast_totals(f)
    money = lambda v: fmt_value(v, "currency", currency=currency)  # noqa: E731
    as_of_text = f", as of {fmt_date(as_of)}" if as_of is not None and not pd.isna(as_of) else ""
    callout = [] if is_missing(total) else [Callout(rich(T.FORECAST_CALLOUT, n=len(f), total=money(total), low=money(low), high=money(high)))]
    return callout + [
        figure(T.FORECAST_FIGURE.format(currency=currency, segments=seg_note, as_of=as_of_text), "band", f["forecast_month"].tolist(), f["expected_revenue"].tolist(),
               lower.tolist(), upper.tolist(), "", how=T.FORECAST_HOW.format(method=method), y_label=currency, name="Expected revenue", band_name="Likely range"),
        table(f, [Col("forecast_month", "Close month", "month"), Col("open_opportunities", "Open opportunities", "count"), Col("open_pipeline", f"Open pipeline ({currency})", "currency"),
                  Col("expected_revenue", f"Expected revenue ({currency})", "currency"), Col("lower", "Low", "currency"), Col("upper", "High", "currency")], currency=currency),
    ]

