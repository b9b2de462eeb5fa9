"""Cohort LTV on the marketing ROI page: LTV curves per acquisition channel over the cohorts observed long enough,
and a summary per channel, from the ``cohort_ltv`` extract (one row per cohort month × channel × month since acquisition)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from marketing_assets.constants import ALL_CHANNELS
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Break, Note
from marketing_assets.lib.reports.common import Col, additive_total, figure, na, numeric, table
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import fmt_month, fmt_value, is_num


def ltv_cohorts(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """Rows of the cohorts observed for at least ``months`` months (a row for every month up to that age),
    cut at ``months``: the same cohorts at every point, so a curve averaged over them never mixes ages."""
    key = ["channel_group", "cohort_month"]
    upto = f[f["months_since_acquisition"] <= months]
    ages = upto.groupby(key)["months_since_acquisition"].agg(["max", "nunique"])
    first = f["months_since_acquisition"].min()
    full = ages[(ages["max"] == months) & (ages["nunique"] == months - first + 1)].index
    return upto.set_index(key).loc[lambda x: x.index.isin(full)].reset_index()


def ltv_curves(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """LTV per customer by months since acquisition (rows) and channel (columns): the customer-weighted average of
    ``ltv_per_customer`` over the cohorts of :func:`ltv_cohorts` (equals their summed margin ÷ their customers).

    Known exception to the no-KPI-arithmetic rule: the cohort_ltv extract has one row per cohort; LTV over the
    cohorts old enough is not published (see test_report_views.py)."""
    rows = ltv_cohorts(f, months)
    curve = rows.groupby(["channel_group", "months_since_acquisition"])[["_lw", "_w"]].sum()
    curve["ltv"] = curve["_lw"] / curve["_w"].replace(0, float("nan"))
    out = curve["ltv"].unstack(0).sort_index() if len(curve) else pd.DataFrame(index=pd.Index([], name="months_since_acquisition"))
    out.attrs["cohorts"] = rows.groupby("channel_group")["cohort_month"].nunique().to_dict()
    return out


def ltv_weights(f: pd.DataFrame) -> pd.DataFrame:
    """The frame with the customer weights the curves average over (known exception: see :func:`ltv_curves`)."""
    f = f.copy()
    f["_w"] = numeric(f, "customers").fillna(1.0)
    f["_lw"] = f["ltv_per_customer"] * f["_w"]
    return f


def ltv_summary(f: pd.DataFrame, curve: pd.DataFrame, long_curve: pd.DataFrame, eligible: pd.DataFrame, months: int, long_months: int) -> pd.DataFrame:
    """Per channel over the cohorts of the curve: customers, LTV at ``months`` and ``long_months``, customer-weighted
    CAC and retention, LTV / CAC, median payback (known exception: see :func:`ltv_curves`)."""
    start = f["months_since_acquisition"].min()
    first = f[f["months_since_acquisition"] == start]
    efirst = eligible[eligible["months_since_acquisition"] == start]
    rows = []
    for g in curve.iloc[-1].sort_values(ascending=False).index:
        gfirst = efirst[efirst["channel_group"] == g]
        w = gfirst["_w"].replace(0, float("nan"))

        def wavg(name: str, gfirst: pd.DataFrame = gfirst, w: pd.Series = w) -> float:
            if name not in gfirst.columns:
                return float("nan")
            x = gfirst[name]
            m = x.notna() & w.notna()
            return float((x[m] * w[m]).sum() / w[m].sum()) if m.any() and w[m].sum() else float("nan")

        m12 = curve[g].get(months, float("nan"))
        m_long, m_long12 = (long_curve[g].get(long_months, float("nan")), long_curve[g].get(months, float("nan"))) if g in long_curve.columns else (float("nan"), float("nan"))
        cac = wavg("cac")
        paid_back = gfirst["payback_month"].dropna() if "payback_month" in gfirst.columns else pd.Series(dtype=float)
        rows.append({"channel_group": g, "customers": numeric(first[first["channel_group"] == g], "customers").sum(), "cohorts": len(gfirst),
                     "curve_customers": numeric(gfirst, "customers").sum(), "ltv12": m12, "ltv_long": m_long, "ltv_long12": m_long12,
                     "long_cohorts": long_curve.attrs.get("cohorts", {}).get(g, 0), "cac": cac, "ltv_cac": (m12 / cac) if is_num(m12) and is_num(cac) and cac else float("nan"),
                     "payback": float(paid_back.median()) if len(paid_back) else float("nan"), "r30": wavg("retention_30d"), "r60": wavg("retention_60d"), "r90": wavg("retention_90d")})
    return pd.DataFrame(rows)


def cohorts(c: pd.DataFrame | None, currency: str, months: int = 12, long_months: int = 24, lookup: KpiLookup | None = None) -> list:
    """LTV curves over a fixed set of cohorts per chart: those observed for at least ``months`` months (one
    curve per channel, months 0…``months``); the table adds LTV at ``long_months`` over the cohorts that old."""
    if c is None:
        return [na("cohort_ltv")]
    f = c.copy()
    if "channel_group" not in f.columns:
        f["channel_group"] = "All"
    if "cohort_month" not in f.columns:
        f["cohort_month"] = "all cohorts"
    for name in ("months_since_acquisition", "ltv_per_customer", "customers", "cac", "payback_month", "retention_30d", "retention_60d", "retention_90d", "cumulative_gross_margin"):
        if name in f.columns:
            f[name] = pd.to_numeric(f[name], errors="coerce")
    f = ltv_weights(f)
    curve = ltv_curves(f, months)
    if curve.empty:
        oldest = int(f["months_since_acquisition"].max()) if f["months_since_acquisition"].notna().any() else 0
        return [na("cohort_too_young", months=months, oldest=oldest)]
    long_curve = ltv_curves(f, long_months)
    eligible = ltv_cohorts(f, months)
    tab = ltv_summary(f, curve, long_curve, eligible, months, long_months)
    money = lambda v: fmt_value(v, "currency", currency=currency)  # noqa: E731

    def long_cell(v: Any, rec: Mapping[str, Any]) -> list:
        if not is_num(v):
            return ["–"]
        return [money(v), Break(), Note([T.LTV_LONG_NOTE.format(cohorts=rec["long_cohorts"], value=money(rec["ltv_long12"]), months=months)], nowrap=True)]

    def retention(_v: Any, rec: Mapping[str, Any]) -> list:
        return [Note([" / ".join(fmt_value(rec[k], "percent") for k in ("r30", "r60", "r90"))], nowrap=True)]

    cohort_months = pd.to_datetime(eligible["cohort_month"], errors="coerce").dropna()
    span = T.LTV_SPAN.format(start=fmt_month(cohort_months.min()), end=fmt_month(cohort_months.max())) if len(cohort_months) else ""
    efirst = eligible[eligible["months_since_acquisition"] == f["months_since_acquisition"].min()]
    n_customers = additive_total(numeric(efirst[efirst["channel_group"] != ALL_CHANNELS], "customers"), "cohort_customers", lookup or KpiLookup(None))
    how = T.LTV_HOW.format(months=months, span=span, cohorts=eligible["cohort_month"].nunique(), customers=fmt_value(n_customers, "count"))
    groups = list(tab["channel_group"])
    return [
        figure(T.LTV_FIGURE.format(currency=currency, months=months), "line", [float(m) for m in curve.index], {str(g): curve[g].tolist() for g in groups}, "",
               how=how, y_label=currency, height=300),
        table(tab, [Col("channel_group", "Channel"), Col("customers", "Customers acquired, all cohorts", "count"), Col("cohorts", f"Cohorts ≥ {months} months old", "count"),
                    Col("curve_customers", "Their customers", "count"), Col("ltv12", f"LTV at {months} months ({currency})", "currency"),
                    Col("ltv_long", f"LTV at {long_months} months ({currency})", long_cell), Col("cac", f"CAC ({currency})", "currency"),
                    Col("ltv_cac", f"LTV / CAC ({months} m)", "ratio"), Col("payback", "Median payback month", "number"),
                    Col("r30", "Retention 30 / 60 / 90 d", retention)], currency=currency,
              caption=T.LTV_CAPTION.format(months=months, long_months=long_months)),
    ]
