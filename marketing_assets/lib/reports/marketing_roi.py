"""The marketing ROI page as data: channel performance, attribution model comparison, recommendations, campaigns,
funnel, cohort LTV, marketing-mix model and budget plan, and definitions.

Frames: the ``marketing_roi``, ``funnel`` and ``cohort_ltv`` extracts, ``mmm_contributions`` (weekly decomposition,
long or wide), ``mmm_budget_plan`` and ``mmm_roi`` (the ``mmm.mmm_model`` fits, for the channel labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from marketing_assets.lib.attribution.models import model_names, reference_model
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Anchor, Callout, How, Note, Page, Section, Tile, Tiles, badge, rich
from marketing_assets.lib.reports.common import (
    Col,
    additive_total,
    by_channel,
    col,
    definitions,
    figure,
    funnel_summary,
    funnel_window,
    window_end_rows,
    get_frame,
    kpi_col,
    na,
    not_distinguishable_text,
    numeric,
    stage_evidence,
    table,
)
from marketing_assets.lib.reports.cohorts import cohorts
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.formatting import (
    STAGE_LABELS,
    fmt_date,
    fmt_datetime,
    fmt_tile,
    fmt_value,
    is_num,
    model_label,
    plural,
    stage_label,
)
from marketing_assets.lib.reports.mmm import budget, mmm

RECOMMENDATION_ORDER = {"scale": 0, "reduce": 1, "test": 2, "hold": 3}
ROI_TILES = ("ad_spend", "attributed_revenue", "paid_attributed_revenue", "paid_media_roas", "attributed_pipeline", "attributed_won_deals")
ROI_CHANNEL_COLUMNS = ("ad_spend", "attributed_pipeline", "attributed_revenue", "new_leads", "attributed_opportunities", "attributed_won_deals")
ROI_EFFICIENCY_COLUMNS = ("channel_roas", "cost_per_lead", "cost_per_opportunity", "cost_per_won_deal", "mmm_roi")
ROI_CAMPAIGN_COLUMNS = ("ad_spend", "attributed_revenue", "channel_roas", "attributed_opportunities", "attributed_won_deals", "cost_per_opportunity")
ROI_COHORT_KPIS = ("cohort_ltv", "cac", "repeat_rate_30d", "repeat_rate_60d", "repeat_rate_90d", "funnel_contacts", "funnel_stage_conversion")
ROI_NUMERIC = tuple(dict.fromkeys([*ROI_TILES, *ROI_CHANNEL_COLUMNS, *ROI_EFFICIENCY_COLUMNS, "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high", "planned_spend_change_pct"]))


def primary_model(models: Sequence[str], preferred: str | None) -> str | None:
    """The headline model: ``preferred`` (the configured reference model) when present, else the first model shown."""
    if preferred and preferred in models:
        return preferred
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


def model_spread(channels: pd.DataFrame) -> pd.Series | None:
    """The channel-group row (of ``channels``: one row per channel group) whose attributed revenue differs most between
    models (the extract's largest ``attributed_revenue_model_spread``), or None."""
    if "attributed_revenue_model_spread" not in channels.columns:
        return None
    spread = pd.to_numeric(channels["attributed_revenue_model_spread"], errors="coerce")
    return channels.loc[spread.idxmax()] if spread.notna().any() else None


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
    widest = model_spread(cm.drop_duplicates("channel_group"))
    money = lambda v: fmt_value(v, "currency", currency=currency)  # noqa: E731
    blocks: list = []
    if widest is not None:
        blocks.append(Callout(rich(T.MODELS_CALLOUT, group=widest["channel_group"], revenue=lookup.link("attributed_revenue"),
                                   low=money(widest["attributed_revenue_min"]), high=money(widest["attributed_revenue_max"]))))
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
        # conversion from known to the last stage over the window, as the extract publishes it (its _3m column)
        last = window_end_rows(by_channel(window))
        last = last[last["stage"] == stages[-1]].drop_duplicates("channel_group").set_index("channel_group")
        tab["_overall"] = tab["channel_group"].map(col(last, "conversion_from_known_3m"))
        cols.append(Col("_overall", f"{stage_label(stages[0])} → {stage_label(stages[-1])}", "percent"))
    tab = tab.sort_values(stages[0], ascending=False)
    return ([table(tab, cols, caption=T.FUNNEL_CHANNEL_CAPTION.format(window=label))]
            + [How([f"{stage_label(s)}: {not_distinguishable_text(evidence.loc[s, 'stage_note'])}."]) for s in hidden])


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
        order = model_names()
        models = [m for m in order if m in present] + sorted(present - set(order))
        primary = primary_model(models, model or reference_model())
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
