"""Cohort LTV on the marketing ROI page: LTV curves per acquisition channel over the cohorts observed long enough,
and a summary per channel, from the ``cohort_ltv`` extract (one row per cohort month × channel × month since acquisition),
whose pooled columns (``observed_<n>m``, ``pooled_*_<n>m``) carry those figures: this module only reshapes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from marketing_assets.constants import ALL_CHANNELS
from marketing_assets.lib.cohorts import pooled_columns
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Break, Note
from marketing_assets.lib.reports.common import Col, additive_total, figure, na, numeric, table
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import fmt_month, fmt_value, is_num


def ltv_cohorts(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """Rows of the cohorts observed for at least ``months`` months (the extract's ``observed_<months>m``), cut at
    ``months``: the same cohorts at every point, so a curve over them never mixes ages."""
    flag = f"observed_{months}m"
    if flag not in f.columns:
        return f.iloc[0:0]
    return f[f[flag].fillna(False).astype(bool) & (f["months_since_acquisition"] <= months)]


def ltv_curves(f: pd.DataFrame, months: int) -> pd.DataFrame:
    """LTV per customer by months since acquisition (rows) and channel (columns) over the cohorts of
    :func:`ltv_cohorts`: the extract's ``pooled_ltv_<months>m`` (their summed margin ÷ their customers)."""
    rows = ltv_cohorts(f, months).drop_duplicates(["channel_group", "months_since_acquisition"])
    if rows.empty:
        return pd.DataFrame(index=pd.Index([], name="months_since_acquisition"))
    return rows.pivot(index="months_since_acquisition", columns="channel_group", values=f"pooled_ltv_{months}m").sort_index()


def ltv_summary(f: pd.DataFrame, curve: pd.DataFrame, long_curve: pd.DataFrame, months: int, long_months: int, lookup: KpiLookup) -> pd.DataFrame:
    """Per channel over the cohorts of the curve: customers, LTV at ``months`` and ``long_months``, and the extract's
    customer-weighted CAC and retention, LTV / CAC and median payback over those cohorts."""
    start = f["months_since_acquisition"].min()
    first = f[f["months_since_acquisition"] == start]
    efirst, lfirst = (ltv_cohorts(f, n).loc[lambda x, s=start: x["months_since_acquisition"] == s] for n in (months, long_months))
    m = f"{months}m"
    rows = []
    for g in curve.iloc[-1].sort_values(ascending=False).index:
        gfirst = efirst[efirst["channel_group"] == g]
        pooled = gfirst.iloc[0]
        long = long_curve[g] if g in long_curve.columns else pd.Series(dtype=float)
        rows.append({"channel_group": g, "customers": additive_total(numeric(first[first["channel_group"] == g], "customers"), "cohort_customers", lookup),
                     "cohorts": len(gfirst), "curve_customers": additive_total(numeric(gfirst, "customers"), "cohort_customers", lookup),
                     "ltv12": curve[g].get(months, float("nan")), "ltv_long": long.get(long_months, float("nan")), "ltv_long12": long.get(months, float("nan")),
                     "long_cohorts": int((lfirst["channel_group"] == g).sum()), "cac": pooled[f"pooled_cac_{m}"], "ltv_cac": pooled[f"pooled_ltv_to_cac_{m}"],
                     "payback": pooled[f"median_payback_month_{m}"], "r30": pooled[f"pooled_retention_30d_{m}"], "r60": pooled[f"pooled_retention_60d_{m}"],
                     "r90": pooled[f"pooled_retention_90d_{m}"]})
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
    for name in ("months_since_acquisition", "customers", *(c for n in (months, long_months) for c, t in pooled_columns(n).items() if t == "float")):
        if name in f.columns:
            f[name] = pd.to_numeric(f[name], errors="coerce")
    lookup = lookup or KpiLookup(None)
    curve = ltv_curves(f, months)
    if curve.empty:
        oldest = int(f["months_since_acquisition"].max()) if f["months_since_acquisition"].notna().any() else 0
        return [na("cohort_too_young", months=months, oldest=oldest)]
    long_curve = ltv_curves(f, long_months)
    eligible = ltv_cohorts(f, months)
    tab = ltv_summary(f, curve, long_curve, months, long_months, lookup)
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
    n_customers = additive_total(numeric(efirst[efirst["channel_group"] != ALL_CHANNELS], "customers"), "cohort_customers", lookup)
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
