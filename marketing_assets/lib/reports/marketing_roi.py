"""The marketing ROI page as data: channel performance, attribution model comparison, recommendations, campaigns,
funnel, cohort LTV, marketing-mix model and budget plan, and definitions.

Frames: the ``marketing_roi``, ``funnel`` and ``cohort_ltv`` extracts, ``mmm_contributions`` (weekly decomposition,
long or wide), ``mmm_budget_plan`` and ``mmm_roi`` (the ``mmm.mmm_model`` fits, for the channel labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from marketing_assets.constants import ALL_CHANNELS
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Anchor, Break, Callout, How, Note, Page, Section, Subheading, Tile, Tiles, badge, rich
from marketing_assets.lib.reports.common import (
    Col,
    additive_total,
    by_channel,
    col,
    definitions,
    figure,
    funnel_summary,
    funnel_window,
    get_frame,
    kpi_col,
    na,
    not_distinguishable_text,
    numeric,
    stage_evidence,
    table,
)
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import (
    MODEL_LABELS,
    STAGE_LABELS,
    fmt_date,
    fmt_datetime,
    fmt_month,
    fmt_tile,
    fmt_value,
    is_num,
    model_label,
    plural,
    stage_label,
)

DEFAULT_MODEL_ORDER = tuple(MODEL_LABELS)
PRIMARY_MODEL_PREFERENCE = ("markov", "shapley", "w_shaped", "position_based", "linear", "time_decay", "last_non_direct", "last_touch", "first_touch")
RECOMMENDATION_ORDER = {"scale": 0, "reduce": 1, "test": 2, "hold": 3}
ROI_TILES = ("ad_spend", "attributed_revenue", "paid_attributed_revenue", "paid_media_roas", "attributed_pipeline", "attributed_won_deals")
ROI_CHANNEL_COLUMNS = ("ad_spend", "attributed_pipeline", "attributed_revenue", "new_leads", "attributed_opportunities", "attributed_won_deals")
ROI_EFFICIENCY_COLUMNS = ("channel_roas", "cost_per_lead", "cost_per_opportunity", "cost_per_won_deal", "mmm_roi")
ROI_CAMPAIGN_COLUMNS = ("ad_spend", "attributed_revenue", "channel_roas", "attributed_opportunities", "attributed_won_deals", "cost_per_opportunity")
ROI_COHORT_KPIS = ("cohort_ltv", "cac", "repeat_rate_30d", "repeat_rate_60d", "repeat_rate_90d", "funnel_contacts", "funnel_stage_conversion")
ROI_NUMERIC = tuple(dict.fromkeys([*ROI_TILES, *ROI_CHANNEL_COLUMNS, *ROI_EFFICIENCY_COLUMNS, "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high", "planned_spend_change_pct"]))
MMM_ROI_COLUMNS = ("mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high")


def primary_model(models: Sequence[str], preferred: str | None) -> str | None:
    if preferred and preferred in models:
        return preferred
    for m in PRIMARY_MODEL_PREFERENCE:
        if m in models:
            return m
    return models[0] if models else None


def mroi_with_interval(v: Any, rec: Mapping[str, Any]) -> list:
    """MMM Marginal ROI with its 80 % interval (the row's mmm_marginal_roi_low / _high) in brackets."""
    if not is_num(v):
        return ["–"]
    lo, hi = rec.get("mmm_marginal_roi_low"), rec.get("mmm_marginal_roi_high")
    return [fmt_value(v, "ratio")] + ([" ", Note([f"({fmt_value(lo, 'ratio')}–{fmt_value(hi, 'ratio')})"])] if is_num(lo) and is_num(hi) else [])


def badge_cell(v: Any, _rec: Any = None) -> list:
    return [badge(v)]


# ---------------------------------------------------------------------------------------------- channels and models


def channel_performance(at_primary: pd.DataFrame, lookup: KpiLookup, primary: str, currency: str) -> list:
    ch = at_primary[at_primary["level"] == "channel"].copy()
    everything = at_primary[at_primary["level"] == "all"]
    if ch.empty:
        return [na("no_channel_rows", model=model_label(primary))]
    ch = ch.sort_values("ad_spend" if "ad_spend" in ch.columns else "channel_group", ascending=False, na_position="last")
    blocks: list = []
    if not everything.empty:
        row = everything.iloc[0]
        blocks.append(Tiles([Tile([lookup.link(k)], fmt_tile(row.get(k), lookup.unit(k), currency), fmt_value(row.get(k), lookup.unit(k), currency=currency), k,
                                  delta=[T.TILE_ALL_CHANNELS + ("" if k == "ad_spend" else ", " + model_label(primary))])
                             for k in ROI_TILES if k in row.index]))
    paid = ch[numeric(ch, "ad_spend").fillna(0) > 0]
    paid = paid if not paid.empty else ch
    unpaid = len(ch) - len(paid)
    outcomes = [Col("channel_group", "Channel group"), *(kpi_col(lookup, k, currency=currency) for k in ROI_CHANNEL_COLUMNS)]
    efficiency = [Col("channel_group", "Channel group"), *(kpi_col(lookup, k, currency=currency) for k in ROI_EFFICIENCY_COLUMNS),
                  kpi_col(lookup, "mmm_marginal_roi", fmt=mroi_with_interval, qualifier=T.INTERVAL_80), Col("recommendation", "Recommendation", badge_cell)]
    lookup.use("mmm_marginal_roi_low", "mmm_marginal_roi_high")
    how = T.ROI_CHART_HOW + (T.ROI_UNPAID.format(n=unpaid, s="" if unpaid == 1 else "s") if unpaid else "")
    series = {lookup.label("ad_spend"): numeric(paid, "ad_spend").fillna(0).tolist(), lookup.label("attributed_revenue"): numeric(paid, "attributed_revenue").fillna(0).tolist()}
    return blocks + [
        figure(T.ROI_CHART.format(ad_spend=lookup.label("ad_spend"), revenue=lookup.label("attributed_revenue"), currency=currency, model=model_label(primary)),
               "grouped_bar", paid["channel_group"].astype(str).tolist(), series, "", how=how, y_label=currency, colors=("#9aa5b1", "#4e79a7")),
        table(ch, outcomes, currency=currency, caption=T.ROI_OUTCOMES_CAPTION.format(model=model_label(primary))),
        table(paid, efficiency, currency=currency, caption=T.ROI_EFFICIENCY_CAPTION),
    ]


def model_spread(revenue: pd.DataFrame) -> Any:
    """The channel group (row of ``revenue``: attributed revenue by channel group × model) whose attributed revenue
    differs most between models (largest max − min), or None.

    Known exception to the no-KPI-arithmetic rule: the marketing_roi extract has the range across models for
    channel_roas only (channel_roas_min / _max), not for attributed_revenue (see test_report_views.py)."""
    spread = revenue.max(axis=1) - revenue.min(axis=1)
    return spread.idxmax() if spread.notna().any() else None


def model_comparison(roi: pd.DataFrame, lookup: KpiLookup, models: Sequence[str], primary: str, currency: str) -> list:
    cm = roi[roi["level"] == "channel"]
    if cm.empty or "attributed_revenue" not in cm.columns:
        return [na("no_channel_revenue")]
    piv = cm.pivot_table(index="channel_group", columns="attribution_model", values="attributed_revenue", aggfunc="first").fillna(0.0)
    piv = piv.reindex(columns=[m for m in models if m in piv.columns])
    piv = piv.sort_values(primary, ascending=False) if primary in piv.columns else piv  # ranked by the headline model
    shown = piv.head(8)
    roas = cm[numeric(cm, "ad_spend").fillna(0) > 0].pivot_table(index="channel_group", columns="attribution_model", values="channel_roas", aggfunc="first")
    roas = roas.reindex(columns=[m for m in models if m in roas.columns])
    widest = model_spread(piv)
    money = lambda v: fmt_value(v, "currency", currency=currency)  # noqa: E731
    blocks: list = []
    if widest is not None:
        blocks.append(Callout(rich(T.MODELS_CALLOUT, group=widest, revenue=lookup.link("attributed_revenue"), low=money(piv.loc[widest].min()), high=money(piv.loc[widest].max()))))
    top = T.MODELS_TOP.format(shown=len(shown), total=len(piv)) if len(piv) > len(shown) else ""
    blocks.append(figure(T.MODELS_FIGURE.format(revenue=lookup.label("attributed_revenue"), currency=currency), "grouped_bar", [str(i) for i in shown.index],
                         {model_label(m): shown[m].fillna(0).tolist() for m in shown.columns}, "", how=top + T.MODELS_HOW, y_label=currency, height=360, width=1000,
                         narrow={"height": 420}))
    if not roas.empty:
        rp = roas.rename(columns=model_label).rename_axis(columns=None).reset_index()
        blocks.append(table(rp, [Col("channel_group", "Channel group")] + [Col(c, c, "ratio", "channel_roas") for c in rp.columns[1:]],
                            caption=T.MODELS_ROAS_CAPTION.format(roas=lookup.label("channel_roas"))))
    return blocks


def recommendations(roi: pd.DataFrame, at_primary: pd.DataFrame, lookup: KpiLookup, primary: str, currency: str) -> list:
    rec = at_primary if "recommendation" in roi.columns else roi.iloc[0:0]
    rec = rec[rec["recommendation"].notna() & (rec["level"] == "channel")].copy() if "recommendation" in rec.columns else rec
    if rec.empty:
        return [na("no_recommendations")]
    rec["_o"] = rec["recommendation"].map(lambda r: RECOMMENDATION_ORDER.get(str(r), 9))
    rec = rec.sort_values(["_o", "ad_spend"], ascending=[True, False])
    counts = rec["recommendation"].value_counts()
    summary: list = []
    for k in RECOMMENDATION_ORDER:
        if counts.get(k, 0):
            summary += ([" · "] if summary else []) + [badge(k), f" {int(counts.get(k, 0))} channel {plural(counts.get(k, 0), 'group')}"]
    lookup.use("mmm_marginal_roi_low", "mmm_marginal_roi_high")
    evidence = [kpi_col(lookup, "mmm_marginal_roi", fmt=mroi_with_interval, qualifier=T.INTERVAL_80), kpi_col(lookup, "planned_spend_change_pct", fmt="change"), kpi_col(lookup, "channel_roas")]

    def reason(v: Any, r: Mapping[str, Any]) -> list:
        return [str(v), Note([T.RULE.format(rule=r.get("recommendation_rule"))], block=True)]

    how = rich(T.RECOMMENDATIONS_HOW, mroi=lookup.link("mmm_marginal_roi"), break_even=fmt_value(lookup.get("mmm_marginal_roi", "threshold_value"), "ratio"),
               roas=lookup.link("channel_roas"), model=model_label(primary))
    return [Callout(summary), How(how),
            table(rec, [Col("channel_group", "Channel group"), Col("recommendation", "Action", badge_cell), *evidence, Col("recommendation_reason", "Reason", reason)],
                  currency=currency, wrap=("recommendation_reason",))]


def campaigns(at_primary: pd.DataFrame, lookup: KpiLookup, currency: str) -> tuple[list, int]:
    camp = at_primary[at_primary["level"] == "campaign"].copy()
    camp = camp[numeric(camp, "ad_spend").fillna(0) > 0].sort_values("ad_spend", ascending=False).head(25)
    camp["campaign"] = col(camp, "campaign_key")
    cols = [Col("channel_group", "Channel group"), Col("campaign", "Campaign"), *(kpi_col(lookup, k, currency=currency) for k in ROI_CAMPAIGN_COLUMNS),
            Col("recommendation", "Action (of the channel group)", badge_cell)]
    return [table(camp, cols, currency=currency)], len(camp)


# ---------------------------------------------------------------------------------------------- funnel by channel


def end_to_end(first: pd.Series, last: pd.Series) -> pd.Series:
    """People at the last stage over people at the first, per channel, over the window.

    Known exception to the no-KPI-arithmetic rule: the funnel extract publishes conversion_from_known per month only,
    not over the report's 3-month window (see test_report_views.py)."""
    return pd.Series(last.to_numpy() / first.replace(0, float("nan")).to_numpy(), index=first.index)


def channel_funnel(funnel: pd.DataFrame, fresh_to: Any, lookup: KpiLookup) -> list:
    window, label = funnel_window(funnel, fresh_to)
    w = by_channel(window).copy()
    w["contacts"] = pd.to_numeric(w["contacts"], errors="coerce").fillna(0)
    piv = additive_total(w, "funnel_contacts", lookup, column="contacts", by=["channel_group", "stage"]).unstack("stage").fillna(0)
    stages = [s for s in STAGE_LABELS if s in piv.columns] + [s for s in piv.columns if s not in STAGE_LABELS]
    piv = piv[stages]
    tab = piv.reset_index()
    evidence = stage_evidence(window).set_index("stage")
    hidden = [s for s in stages[1:] if s in evidence.index and not evidence.loc[s, "stage_distinguishable"]]
    cols = [Col("channel_group", "Channel")] + [Col(s, stage_label(s) + (" (not distinguishable)" if s in hidden else ""), "count") for s in stages]
    if len(stages) > 1:
        tab["_overall"] = end_to_end(piv[stages[0]], piv[stages[-1]]).to_numpy()
        cols.append(Col("_overall", f"{stage_label(stages[0])} → {stage_label(stages[-1])}", "percent"))
    tab = tab.sort_values(stages[0], ascending=False)
    return ([table(tab, cols, caption=T.FUNNEL_CHANNEL_CAPTION.format(window=label))]
            + [How([f"{stage_label(s)}: {not_distinguishable_text(evidence.loc[s, 'stage_note'])}."]) for s in hidden])


# ---------------------------------------------------------------------------------------------- cohort LTV


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


# ---------------------------------------------------------------------------------------------- marketing-mix model


def mmm_labels(model: pd.DataFrame | None) -> dict[str, str]:
    """MMM channel key -> reader-facing label (the channel-group vocabulary), from the model table."""
    if model is None or "channel_label" not in model.columns:
        return {}
    return dict(zip(model["channel"].astype(str), model["channel_label"].astype(str)))


def mmm_components(frame: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
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
    return wide.drop(columns=lines_cols), lines


def mmm(data: Mapping[str, pd.DataFrame], lookup: KpiLookup, currency: str) -> list:
    comps, lines = mmm_components(get_frame(data, "mmm_contributions"))
    labels = mmm_labels(get_frame(data, "mmm_roi", ["channel"]))
    blocks: list = []
    if comps is None or comps.empty:
        blocks.append(na("mmm_contributions"))
    else:
        base_first = [c for c in ("baseline", "trend", "seasonality", "promo") if c in comps.columns]
        media = [c for c in comps.columns if c not in base_first]
        order = base_first + sorted(media, key=lambda c: -comps[c].sum())
        comps = comps[order]
        names = {c: labels.get(c, str(c).replace("_", " ")) for c in order}
        negative = [names[c] for c in order if (comps[c] < 0).any()]
        total = comps.sum().sum()
        share = comps.sum() / total if total else comps.sum() * float("nan")
        tab = pd.DataFrame({"component": [names[c] for c in order], "kind": ["base" if c in base_first else "media" for c in order],
                            "contribution": [comps[c].sum() for c in order], "share": [share[c] for c in order]})
        media_share = tab.loc[tab["kind"] == "media", "share"].sum()
        note = T.MMM_NEGATIVE.format(names=", ".join(negative)) if negative else ""
        blocks.append(Callout(rich(T.MMM_CALLOUT, weeks=len(comps), start=fmt_date(comps.index[0]), end=fmt_date(comps.index[-1]), share=fmt_value(media_share, "percent"))))
        blocks.append(figure(T.MMM_FIGURE.format(currency=currency), "stacked_area", list(comps.index), {names[c]: comps[c].fillna(0).tolist() for c in order}, "",
                             how=T.MMM_HOW + note, y_label=currency, height=320))
        if lines is not None and not lines.empty:
            blocks.append(figure(T.MMM_FIT_FIGURE.format(currency=currency), "line", list(lines.index), {str(c).capitalize(): lines[c].tolist() for c in lines.columns}, "",
                                 how=T.MMM_FIT_HOW, y_label=currency, height=240))
        blocks.append(table(tab, [Col("component", "Driver"), Col("kind", "Type"), Col("contribution", f"Modelled revenue over the fit period ({currency})", "currency"),
                                  Col("share", "Share of modelled revenue", "percent")], currency=currency))
    roi = get_frame(data, "marketing_roi", ["channel_group", "mmm_roi"])
    if roi is not None:
        r = roi[(col(roi, "level", "channel") == "channel")].dropna(subset=["mmm_roi"]).drop_duplicates("channel_group").copy()
        for c in MMM_ROI_COLUMNS:
            r[c] = pd.to_numeric(col(r, c), errors="coerce")
        r = r.sort_values("mmm_roi", ascending=False)
        if not r.empty:
            lows, highs = r["mmm_roi_low"].fillna(r["mmm_roi"]), r["mmm_roi_high"].fillna(r["mmm_roi"])
            outside = r.loc[(r["mmm_roi"] < lows) | (r["mmm_roi"] > highs), "channel_group"].tolist()
            caution = T.MMM_ROI_CAUTION.format(groups=", ".join(outside)) if outside else ""
            blocks.append(figure(T.MMM_ROI_FIGURE.format(mmm_roi=lookup.label("mmm_roi")), "interval", r["channel_group"].tolist(), r["mmm_roi"].tolist(), lows.tolist(), highs.tolist(), "",
                                 how=T.MMM_ROI_HOW + caution, reference=1.0, reference_label=T.BREAK_EVEN, value_labels=[fmt_value(v, "ratio") for v in r["mmm_roi"]]))
            blocks.append(table(r, [Col("channel_group", "Channel group"), *(kpi_col(lookup, k) for k in MMM_ROI_COLUMNS)]))
    return blocks


def what_if_returns(others: pd.DataFrame) -> pd.DataFrame:
    """Each what-if scenario's spend change and predicted revenue per extra unit of spend.

    Known exception to the no-KPI-arithmetic rule: mmm_budget_plan publishes scenario and current spend and the
    uplift, not their difference and ratio (see test_report_views.py)."""
    others = others.copy()
    others["change"] = others["scenario_spend"] - others["current_spend"]
    others["roi_change"] = others["uplift"] / others["change"].replace(0, float("nan"))
    return others


def budget(data: Mapping[str, pd.DataFrame], lookup: KpiLookup, currency: str) -> list:
    plan = get_frame(data, "mmm_budget_plan", ["channel", "scenario"])
    roi = get_frame(data, "marketing_roi", ["channel_group"])
    if plan is None or roi is None or "planned_spend" not in roi.columns:
        return [na("budget_plan")]
    p = plan.copy()
    for c in ("current_spend", "scenario_spend", "uplift", "uplift_low", "uplift_high"):
        p[c] = pd.to_numeric(col(p, c), errors="coerce")
    optimal = p[p["scenario"] == "optimal_same_total"]
    groups = roi[(col(roi, "level", "channel") == "channel")].dropna(subset=["planned_spend"]).drop_duplicates("channel_group").copy()
    if optimal.empty or groups.empty:
        return [na("no_budget_plan")]
    for c in ("plan_current_spend", "planned_spend", "planned_spend_change_pct"):
        groups[c] = pd.to_numeric(groups[c], errors="coerce")
    groups = groups.sort_values("plan_current_spend", ascending=False)
    start, end = col(optimal, "period_start").min(), col(optimal, "period_end").max()
    weeks = col(optimal, "period_weeks").max()
    period = f"{fmt_date(start)} to {fmt_date(end)}" + (f" ({int(weeks)} weeks)" if is_num(weeks) else "")
    up, lo, hi = (float(optimal[c].iloc[0]) for c in ("uplift", "uplift_low", "uplift_high"))
    crosses = is_num(lo) and is_num(hi) and lo < 0 < hi
    signed = lambda v: fmt_value(v, "currency", currency=currency, signed=True)  # noqa: E731
    interval = T.BUDGET_INTERVAL.format(low=signed(lo), high=signed(hi)) if is_num(lo) and is_num(hi) else ""
    explain = T.BUDGET_CROSSES_ZERO if crosses else (T.BUDGET_ABOVE_ZERO if is_num(lo) and lo > 0 else "")
    current = additive_total(groups, "plan_current_spend", lookup, column="plan_current_spend")
    blocks: list = [
        Callout(rich(T.BUDGET_CALLOUT, period=period, total=fmt_value(current, "currency", currency=currency), uplift=signed(up), interval=interval, explain=explain),
                "warn" if crosses or not up > 0 else "good"),
        figure(T.BUDGET_FIGURE.format(current=lookup.label("plan_current_spend"), planned=lookup.label("planned_spend"), period=period, currency=currency), "grouped_bar",
               groups["channel_group"].astype(str).tolist(), {lookup.label("plan_current_spend"): groups["plan_current_spend"].fillna(0).tolist(),
                                                              lookup.label("planned_spend"): groups["planned_spend"].fillna(0).tolist()},
               "", how=T.BUDGET_HOW, y_label=currency, colors=("#9aa5b1", "#59a14f")),
        table(groups, [Col("channel_group", "Channel group"), *(kpi_col(lookup, k, currency=currency) for k in ("plan_current_spend", "planned_spend")),
                       kpi_col(lookup, "planned_spend_change_pct", fmt="change")], currency=currency),
    ]
    labels = mmm_labels(get_frame(data, "mmm_roi", ["channel"]))
    others = p[p["scenario"] != "optimal_same_total"]
    if not others.empty:
        others = what_if_returns(others)
        others["channel"] = others["channel"].map(lambda c: labels.get(str(c), str(c)))
        blocks += [Subheading(T.WHAT_IF_TITLE.format(period=period)), How([T.WHAT_IF_HOW]),
                   table(others, [Col("scenario", "Scenario"), Col("change", f"Spend change ({currency})", "currency"), Col("uplift", f"Predicted revenue change ({currency})", "currency"),
                                  Col("roi_change", "Revenue per extra unit of spend", "ratio")], currency=currency)]
    return blocks


# ---------------------------------------------------------------------------------------------- page


def marketing_roi_page(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", model: str | None = None,
                       terms: Mapping[str, str] | None = None) -> Page:
    lookup = KpiLookup(get_frame(data, "kpi_dictionary", ["name"]))
    roi = get_frame(data, "marketing_roi", ["channel_group"])
    titles = T.ROI_SECTIONS
    sections, primary, period = [], None, ""
    if roi is not None:
        roi = roi.copy()
        if "level" not in roi.columns:
            roi["level"] = "channel"
        if "attribution_model" not in roi.columns:
            roi["attribution_model"] = "model"
        for c in ROI_NUMERIC:
            if c in roi.columns:
                roi[c] = pd.to_numeric(roi[c], errors="coerce")
        present = set(roi["attribution_model"].astype(str))
        models = [m for m in DEFAULT_MODEL_ORDER if m in present] + sorted(present - set(DEFAULT_MODEL_ORDER))
        primary = primary_model(models, model)
        if "period_start" in roi.columns and "period_end" in roi.columns:
            period = T.ROI_PERIOD.format(start=fmt_date(roi["period_start"].min()), end=fmt_date(roi["period_end"].max()))
    if roi is None:
        sections += [Section("channels", titles["channels"], [na("marketing_roi")]), Section("models", titles["models"], [na("marketing_roi_short")]),
                     Section("recommendations", T.ROI_RECOMMENDATIONS_MISSING_TITLE, [na("marketing_roi_short")])]
    else:
        at_primary = roi[roi["attribution_model"].astype(str) == primary]
        sections += [
            Section("channels", titles["channels"], channel_performance(at_primary, lookup, primary, currency), rich(T.HOW["roi_channels"], definitions=Anchor("definitions", "definitions"))),
            Section("models", titles["models"], model_comparison(roi, lookup, models, primary, currency)),
            Section("recommendations", titles["recommendations"], recommendations(roi, at_primary, lookup, primary, currency), rich(T.HOW["recommendations"])),
        ]
        if not at_primary[at_primary["level"] == "campaign"].empty:
            blocks, n = campaigns(at_primary, lookup, currency)
            sections.append(Section("campaigns", titles["campaigns"], blocks, [T.HOW["campaigns"].format(n=n, model=model_label(primary))]))
    funnel = get_frame(data, "funnel", ["stage", "contacts"])
    funnel_blocks = [na("funnel")] if funnel is None else funnel_summary(funnel, fresh_to, lookup) + (channel_funnel(funnel, fresh_to, lookup) if "channel_group" in funnel.columns else [])
    sections += [
        Section("funnel", titles["funnel"], funnel_blocks, [T.HOW["roi_funnel"]]),
        Section("ltv", titles["ltv"], cohorts(get_frame(data, "cohort_ltv", ["months_since_acquisition", "ltv_per_customer"]), currency, lookup=lookup)),
        Section("mmm", titles["mmm"], mmm(data, lookup, currency)),
        Section("budget", titles["budget"], budget(data, lookup, currency)),
    ]
    names = [n for n in dict.fromkeys([*lookup.used, *ROI_COHORT_KPIS]) if n in lookup.rows]
    sections.append(Section("definitions", titles["definitions"], definitions(lookup, names, T.marketing_terms() if terms is None else terms), [T.HOW["roi_definitions"]]))
    subtitle = rich(T.ROI_SUBTITLE, period=period, model=model_label(primary)) if primary else rich(T.ROI_NO_MODEL, period=period)
    return Page(T.ROI_TITLE, subtitle, fmt_date(fresh_to), fmt_datetime(generated_at), sections, [T.CURRENCY_PILL.format(currency=currency)], template="marketing_roi.html.j2")
