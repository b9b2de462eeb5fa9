"""The executive summary as data: headline tiles, revenue trend, products, sales channels, spend vs revenue, funnel,
pipeline forecast and KPI definitions, all from the ``executive_kpis`` extract (long form: grain, period, kpi,
dimension, dimension_value, value) and the other extracts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Callout, Grid, Page, Section, Span, Tile, Tiles, rich
from marketing_assets.lib.reports.common import (
    Col,
    additive_total,
    definitions,
    figure,
    forecast,
    funnel_summary,
    get_frame,
    kpi_col,
    latest_full_month,
    na,
    table,
)
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import fmt_date, fmt_datetime, fmt_month, fmt_tile, fmt_value, is_num

HEADLINE_KPIS = ("total_revenue", "revenue_growth_mom", "revenue_growth_yoy", "gross_margin_pct", "blended_roas", "cac", "conversion_rate_session_to_lead")


def kpi_series(kpis: pd.DataFrame, kpi: str, grain: str = "month") -> pd.Series:
    """Total (undimensioned) KPI values by period, sorted."""
    f = kpis[(kpis["kpi"] == kpi) & (kpis["grain"] == grain)]
    if "dimension" in f.columns:
        f = f[f["dimension"].isna() | (f["dimension"].astype(str).isin(["", "None", "total"]))]
    if f.empty:
        return pd.Series(dtype="float64", index=pd.DatetimeIndex([]))
    s = pd.Series(pd.to_numeric(f["value"], errors="coerce").to_numpy(), index=pd.to_datetime(f["period"]).to_numpy())
    return s.groupby(level=0).first().sort_index()


def data_start(kpis: pd.DataFrame) -> pd.Timestamp | None:
    """First day with data as far as the extract shows it (its earliest week), to spot a partial first month."""
    weeks = kpis.loc[kpis["grain"].isin(["week", "day"]), "period"]
    return pd.Timestamp(weeks.min()) if len(weeks) else None


def dimension_frame(kpis: pd.DataFrame, kpi: str, months: Sequence[pd.Timestamp]) -> pd.DataFrame:
    f = kpis[(kpis["kpi"] == kpi) & (kpis["grain"] == "month")].copy()
    if f.empty or "dimension_value" not in f.columns:
        return pd.DataFrame(columns=["period", "dimension_value", "value"])
    f["period"] = pd.to_datetime(f["period"])
    f["value"] = pd.to_numeric(f["value"], errors="coerce")
    f["dimension_value"] = f["dimension_value"].astype(str)
    return f[f["period"].isin(list(months))][["period", "dimension_value", "value"]]


def tile(lookup: KpiLookup, name: str, series: pd.Series, month: pd.Timestamp, currency: str, change: str | None, change_series: pd.Series) -> Tile:
    """One headline tile: the month's value against target, and how it moved since the month before: the dictionary's
    change KPI of ``name`` when there is one (``change``), else the previous month's value."""
    unit = lookup.unit(name, "number")
    v = series.get(month)
    state, target_text = lookup.status(name, v)
    prev_month = month - pd.DateOffset(months=1)
    prev = series.get(prev_month)
    delta: list = [fmt_month(month)]
    if is_num(v) and is_num(prev):
        rose, fell = float(v) > float(prev), float(v) < float(prev)
        hib = lookup.higher_is_better(name)
        arrow = "▲" if rose else ("▼" if fell else "▶")
        good = None if hib is None or not (rose or fell) else rose == hib
        cls = "flat" if good is None else ("up" if good else "down")
        moved = change_series.get(month) if change else None
        if is_num(moved):
            delta = [Span(f"{arrow} {fmt_value(moved, lookup.unit(change, 'percent'), signed=True)}", cls), T.TILE_CHANGE.format(month=fmt_month(prev_month))]
        else:
            delta = [Span(arrow, cls), T.TILE_PREVIOUS.format(value=fmt_value(prev, unit, currency=currency), month=fmt_month(prev_month))]
    return Tile([lookup.link(name)], fmt_tile(v, unit, currency), fmt_value(v, unit, currency=currency), name, state, T.TILE_TITLES[state], delta,
                target_text or T.NO_TARGET)


def headline(kpis: pd.DataFrame, lookup: KpiLookup, month: pd.Timestamp, currency: str) -> list:
    available = set(kpis.loc[kpis["grain"] == "month", "kpi"].astype(str))
    tiles = []
    for name in HEADLINE_KPIS:
        s = kpi_series(kpis, name)
        if s.empty:
            continue
        change = lookup.change_kpi(name, sorted(available))
        tiles.append(tile(lookup, name, s, month, currency, change, kpi_series(kpis, change) if change else s.iloc[0:0]))
    return [Tiles(tiles, legend=True)] if tiles else [na("no_headline")]


def trend(kpis: pd.DataFrame, lookup: KpiLookup, month: pd.Timestamp, currency: str) -> list:
    rev = kpi_series(kpis, "total_revenue")
    rev = rev[rev.index <= month]
    if rev.empty:
        return [na("kpi_missing", kpi="total_revenue")]
    margin = kpi_series(kpis, "gross_margin")
    series = {"Net revenue": rev.tolist()}
    if not margin.empty:
        series["Gross margin"] = [margin.get(p) if is_num(margin.get(p)) else None for p in rev.index]
    summary = rich(T.TREND_TOTAL, total=fmt_value(additive_total(rev.tail(12), "total_revenue", lookup), "currency", currency=currency))
    growth = kpi_series(kpis, "revenue_growth_yoy").get(month)
    if is_num(growth):
        summary += rich(T.TREND_GROWTH, growth=lookup.link("revenue_growth_yoy"), month=fmt_month(month), value=fmt_value(growth, lookup.unit("revenue_growth_yoy", "percent"), signed=True))
    title = T.TREND_FIGURE.format(revenue=lookup.label("total_revenue").lower(), margin=lookup.label("gross_margin").lower(), currency=currency, n=len(rev), month=fmt_month(month))
    how = rich(T.TREND_HOW, revenue=lookup.link("total_revenue", "net revenue"), margin=lookup.link("gross_margin", "gross margin"))
    return [Callout(summary), figure(title, "line", list(rev.index), series, "", how=how, y_label=currency, height=300)]


def products(kpis: pd.DataFrame, lookup: KpiLookup, months: Sequence[pd.Timestamp], currency: str, top_products: int) -> list:
    window = f"{fmt_month(months[0])} – {fmt_month(months[-1])}" if months else ""
    prod = dimension_frame(kpis, "revenue_by_product", months)
    if prod.empty:
        return [na("kpi_missing", kpi="revenue_by_product")]
    marg = dimension_frame(kpis, "margin_by_product", months)
    by = additive_total(prod, "revenue_by_product", lookup, column="value", by="dimension_value").sort_values(ascending=False)
    mg = additive_total(marg, "margin_by_product", lookup, column="value", by="dimension_value") if not marg.empty else pd.Series(dtype="float64")
    top, rest = by.head(top_products), by.iloc[top_products:]
    labels, revenue, margin = list(top.index), list(top.values), [mg.get(p) for p in top.index]
    if len(rest):
        labels.append(T.PRODUCTS_OTHER.format(n=len(rest)))
        revenue.append(additive_total(rest, "revenue_by_product", lookup))
        margin.append(additive_total(mg[~mg.index.isin(top.index)], "margin_by_product", lookup))
    tab = pd.DataFrame({"product": labels, "revenue": revenue, "margin": margin})
    return [
        figure(T.PRODUCTS_FIGURE.format(n=min(top_products, len(by)), window=window, currency=currency), "hbar", labels, revenue, "", how=T.PRODUCTS_HOW,
               colors=[None] * len(top) + ["#9aa5b1"], value_labels=[fmt_value(v, "currency", currency=currency, compact=True) for v in revenue]),
        table(tab, [Col("product", "Product"), Col("revenue", f"Revenue ({currency})", "currency"), Col("margin", f"Gross margin ({currency})", "currency")], currency=currency),
    ]


def sales_channels(kpis: pd.DataFrame, lookup: KpiLookup, months: Sequence[pd.Timestamp], last12: Sequence[pd.Timestamp], currency: str) -> list:
    chan = dimension_frame(kpis, "revenue_by_channel", months)
    if chan.empty:
        return [na("kpi_missing", kpi="revenue_by_channel")]
    window = f"{fmt_month(last12[0])} – {fmt_month(last12[-1])}" if last12 else ""
    piv = chan.pivot_table(index="period", columns="dimension_value", values="value", aggfunc="first").fillna(0.0).sort_index()
    piv = piv[additive_total(piv, "revenue_by_channel", lookup).sort_values(ascending=False).index]
    last = additive_total(chan[chan["period"].isin(last12)], "revenue_by_channel", lookup, column="value", by="dimension_value").sort_values(ascending=False)
    tab = pd.DataFrame({"channel": last.index, "revenue": last.values})
    return [
        figure(T.CHANNELS_FIGURE.format(currency=currency, start=fmt_month(piv.index[0]), end=fmt_month(piv.index[-1])), "stacked_area", list(piv.index),
               {str(c): piv[c].tolist() for c in piv.columns}, "", how=T.CHANNELS_HOW, y_label=currency, height=300),
        table(tab, [Col("channel", "Sales channel"), Col("revenue", f"Revenue {window} ({currency})", "currency")], currency=currency),
    ]


def spend(kpis: pd.DataFrame, lookup: KpiLookup, month: pd.Timestamp, currency: str) -> list:
    ad_spend = kpi_series(kpis, "ad_spend")
    ad_spend = ad_spend[ad_spend.index <= month]
    if ad_spend.empty:
        return [na("kpi_missing", kpi="ad_spend")]
    rev, roas = kpi_series(kpis, "total_revenue"), kpi_series(kpis, "blended_roas")
    idx = [p for p in ad_spend.index if p in rev.index]
    lines = {lookup.label("blended_roas"): [roas.get(p) for p in idx]}
    target, threshold = lookup.get("blended_roas", "target_value"), lookup.get("blended_roas", "threshold_value")
    if is_num(target):
        lines[T.TARGET_LINE] = [float(target)] * len(idx)
    if is_num(threshold):
        lines[T.ALERT_LINE] = [float(threshold)] * len(idx)
    tab = pd.DataFrame({"month": idx, "ad_spend": [ad_spend.get(p) for p in idx], "total_revenue": [rev.get(p) for p in idx],
                        "blended_roas": [roas.get(p) for p in idx]}).tail(6).iloc[::-1]
    left = figure(T.SPEND_FIGURE.format(ad_spend=lookup.label("ad_spend"), currency=currency), "line", idx, {lookup.label("ad_spend"): [ad_spend.get(p) for p in idx]}, "",
                  how=T.SPEND_HOW, y_label=currency, height=280, width=560)
    right = figure(T.ROAS_FIGURE.format(roas=lookup.label("blended_roas")), "line", idx, lines, "", how=rich(T.ROAS_HOW, roas=lookup.link("blended_roas")),
                   y_label=T.ROAS_AXIS, height=280, width=560)
    return [Grid([[left], [right]]),
            table(tab, [Col("month", "Month", "month"), *(kpi_col(lookup, k, currency=currency) for k in ("ad_spend", "total_revenue", "blended_roas"))],
                  caption=T.SPEND_TABLE_CAPTION, currency=currency)]


def executive_page(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", top_products: int = 10) -> Page:
    lookup = KpiLookup(get_frame(data, "kpi_dictionary", ["name"]))
    kpis = get_frame(data, "executive_kpis", ["grain", "period", "kpi", "value"])
    titles = T.EXECUTIVE_SECTIONS
    month, full_months = None, []
    if kpis is not None:
        kpis = kpis.copy()
        kpis["period"] = pd.to_datetime(kpis["period"])
        monthly = kpis[kpis["grain"] == "month"]
        month = latest_full_month(monthly["period"], fresh_to) if not monthly.empty else None
        if month is not None:
            full_months = [pd.Timestamp(p) for p in sorted(p for p in monthly["period"].unique() if pd.Timestamp(p) <= month)]
            start = data_start(kpis)
            if full_months and start is not None and start > full_months[0] + pd.Timedelta(days=6) and len(full_months) > 1:
                partial_first = full_months[0]  # a partial first month is left out like the running one
                full_months = full_months[1:]
                kpis = kpis[~((kpis["grain"] == "month") & (kpis["period"] == partial_first))]
    sections = []
    if kpis is None or month is None:
        sections.append(Section("headline", titles["headline"], [na("executive_kpis")]))
        sections += [Section(sid, titles[sid], [na("executive_kpis_short")]) for sid in ("trend", "products", "channels", "spend")]
    else:
        sections += [
            Section("headline", T.HEADLINE_TITLE.format(month=fmt_month(month)), headline(kpis, lookup, month, currency), [T.HOW["headline"]]),
            Section("trend", titles["trend"], trend(kpis, lookup, month, currency)),
            Section("products", titles["products"], products(kpis, lookup, full_months[-12:], currency, top_products),
                    rich(T.HOW["products"], revenue_by_product=lookup.link("revenue_by_product"), margin_by_product=lookup.link("margin_by_product"))),
            Section("channels", titles["channels"], sales_channels(kpis, lookup, full_months[-24:], full_months[-12:], currency),
                    rich(T.HOW["channels"], revenue_by_channel=lookup.link("revenue_by_channel"))),
            Section("spend", titles["spend"], spend(kpis, lookup, month, currency)),
        ]
    sections.append(Section("funnel", titles["funnel"], funnel_summary(get_frame(data, "funnel", ["stage", "contacts"]), fresh_to, lookup), [T.HOW["funnel"]]))
    sections.append(Section("forecast", titles["forecast"], forecast(get_frame(data, "pipeline_forecast", ["forecast_month", "expected_revenue"]), currency)))
    sections.append(Section("definitions", titles["definitions"], definitions(lookup, list(lookup.used)), [T.HOW["definitions"]]))
    period = rich(T.EXECUTIVE_PERIOD, month=fmt_month(month)) if month is not None else [T.EXECUTIVE_NO_PERIOD]
    return Page(T.EXECUTIVE_TITLE, rich(T.EXECUTIVE_SUBTITLE, period=period), fmt_date(fresh_to), fmt_datetime(generated_at), sections,
                [T.CURRENCY_PILL.format(currency=currency)], template="executive.html.j2")
