"""Every sentence the stakeholder reports show, in one place: page and section titles, how-to-read notes,
captions, "not available" notes and the glossary.

Lines are :func:`~marketing_assets.lib.reports.blocks.rich` copy: ``{name}`` placeholders the views fill (numbers
already formatted, KPI links), ``**bold**``. KPI names and definitions are not here: they come from the KPI dictionary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketing_assets.lib.attribution.models import model_terms

# ------------------------------------------------------------------------------------------------ pages

EXECUTIVE_TITLE = "Executive summary"
EXECUTIVE_SUBTITLE = "{period} Revenue, margin, marketing efficiency, funnel and pipeline outlook."
EXECUTIVE_PERIOD = "Headline figures for **{month}**, the latest full month."
EXECUTIVE_NO_PERIOD = "No monthly KPI values available."
ROI_TITLE = "Marketing ROI"
ROI_PERIOD = "Period {start} to {end}. "
ROI_SUBTITLE = "{period}Attributed figures use the **{model}** attribution model (the one the budget rules cite); other models are compared below."
ROI_NO_MODEL = "{period}Attribution results not available."
DQ_TITLE = "Data quality"
DQ_SUBTITLE = "Checks, freshness and identity resolution of the marketing data. Fix failed blocking checks first."
DQ_SUBTITLE_EMPTY = "Checks, freshness and identity resolution of the marketing data."
CURRENCY_PILL = "Currency {currency}"

# ------------------------------------------------------------------------------------------------ sections: id -> title

EXECUTIVE_SECTIONS = {
    "headline": "Headline KPIs", "trend": "Revenue trend", "products": "Revenue by product", "channels": "Revenue by sales channel",
    "spend": "Ad spend vs revenue", "funnel": "Marketing funnel", "forecast": "Pipeline revenue forecast", "definitions": "KPI definitions",
}
ROI_SECTIONS = {
    "channels": "Channel performance", "models": "Attribution model comparison", "recommendations": "Budget recommendations",
    "campaigns": "Campaign performance", "funnel": "Funnel by stage", "ltv": "Customer lifetime value by acquisition channel",
    "mmm": "Marketing mix model: what drives revenue", "budget": "Budget plan (marketing mix model)", "definitions": "Definitions",
}
ROI_RECOMMENDATIONS_MISSING_TITLE = "Recommendations"  # the section's title when there is no ROI data at all
DQ_SECTIONS = {
    "summary": "Summary", "problems": "Failing and warning checks", "checks": "All checks by asset", "freshness": "Freshness",
    "identity": "Identity match rates",
}
HEADLINE_TITLE = "Headline KPIs – {month}"

# ------------------------------------------------------------------------------------------------ how to read

HOW = {
    "headline": "Each tile shows the KPI for the latest full month. Click a KPI name for its definition, formula and owner.",
    "products": "See {revenue_by_product} and {margin_by_product}.",
    "channels": "See {revenue_by_channel}.",
    "funnel": "How many people reached each stage; the percentage is the conversion from the stage before.",
    "definitions": "The governed definitions behind every KPI in this report (from the KPI dictionary).",
    "roi_channels": "Column meanings: see {definitions}.",
    "recommendations": "**Scale** = add budget, **reduce** = cut budget, **test** = run an experiment before moving budget. Rule = the condition that fired; reason = the numbers behind it.",
    "campaigns": "Top {n} campaigns by spend, {model} model. The marketing-mix model and the budget plan measure channel groups, "
                 "not campaigns: a campaign's action is its channel group's; its own evidence is the attributed figures in its row.",
    "roi_funnel": "The percentage is the conversion from the stage before; the last table column is the end-to-end conversion. A stage the data cannot tell apart from the stage before shows no conversion.",
    "roi_definitions": "Terms used in this report (metrics, attribution models, MMM) first, then the governed KPIs from the KPI dictionary with formula, owner and version.",
    "dq_summary": "Blocking = a failure stops downstream assets from materialising; warnings are reported but do not block. Skipped = the check did not execute (its asset or an upstream blocking check failed) or it had nothing to check.",
    "dq_problems": "Failed first (blocking before non-blocking), then warnings. Each card: what was checked, what was found, and the measured value.",
    "dq_checks": "Assets with problems are listed first and expanded; click an asset to expand or collapse it.",
    "dq_freshness": "Whether each source or asset was updated recently enough; value = age of the newest data.",
}

# ------------------------------------------------------------------------------------------------ executive

TILE_TITLES = {"good": "meets target", "warn": "below target", "bad": "past the alert line", "none": "no target set"}
NO_TARGET = "No target set"
TILE_CHANGE = " vs {month}"  # after the dictionary's change KPI of the tile's KPI
TILE_PREVIOUS = " from {value} in {month}"  # no change KPI in the dictionary: the previous month's value
TREND_TOTAL = "Last 12 full months: **{total}**."
TREND_GROWTH = " {growth} in {month}: **{value}**."
TREND_FIGURE = "Monthly {revenue} and {margin} ({currency}), {n} months to {month}"
TREND_HOW = "Blue: {revenue} per month; orange: {margin}. Incomplete months (the running month, a partial first month) are left out."
PRODUCTS_FIGURE = "Top {n} products by net revenue, {window} ({currency})"
PRODUCTS_HOW = "Bars: revenue per product over the last 12 full months."
PRODUCTS_OTHER = "All other {n} products"
CHANNELS_FIGURE = "Monthly net revenue by sales channel ({currency}), {start} – {end}"
CHANNELS_HOW = "Stacked areas: each band is one sales channel; the top edge is total revenue."
SPEND_FIGURE = "Monthly {ad_spend} ({currency})"
SPEND_HOW = "Paid media spend of all ad platforms."
ROAS_FIGURE = "{roas}, monthly"
ROAS_HOW = "Blue: {roas}. Higher is better. Orange line: target; red line: alert line."
ROAS_AXIS = "× revenue per 1 of spend"
SPEND_TABLE_CAPTION = "Last 6 full months"
TARGET_LINE, ALERT_LINE = "Target", "Alert line"

# ------------------------------------------------------------------------------------------------ funnel and forecast

NOT_DISTINGUISHABLE = "not distinguishable in the data"
FUNNEL_FIGURE = "Funnel, all channels, {window}"
FUNNEL_HOW = "Bar width = number of people at the stage; the percentage in brackets = conversion from the stage above."
FUNNEL_HOW_FLAGGED = " “not distinguishable” (n/d on small screens) = the data cannot tell the stage apart from the one above, so it has no conversion: see the table."
FUNNEL_CHANNEL_CAPTION = "People per stage by channel, {window}"
FORECAST_CALLOUT = "Expected revenue from the open pipeline over the next {n} months: **{total}** (range {low} – {high})."
FORECAST_FIGURE = "Expected revenue by close month ({currency}), {segments}{as_of}"
FORECAST_HOW = "Line: expected revenue from open opportunities by the month they are expected to close; shaded band: likely range (lower–upper). {method}"

# ------------------------------------------------------------------------------------------------ marketing ROI

TILE_ALL_CHANNELS = "all channels"
ROI_CHART = "{ad_spend} vs {revenue} by paid channel group ({currency}, {model} model)"
ROI_CHART_HOW = ("Grey: spend; blue: revenue the attribution model credits to the channel group. Blue taller than grey = credited revenue exceeds spend; "
                 "whether the spend caused it is the marketing-mix model's question (see Recommendations).")
ROI_UNPAID = " {n} channel group{s} without spend (organic, direct, sales …) are in the table only."
ROI_OUTCOMES_CAPTION = "Outcomes by channel group, {model} model"
ROI_EFFICIENCY_CAPTION = "Efficiency of the paid channel groups"
MODELS_CALLOUT = "Models disagree most on **{group}**: {revenue} ranges from {low} to {high} depending on the model."
MODELS_FIGURE = "{revenue} by channel group under each attribution model ({currency})"
MODELS_TOP = "Top {shown} of {total} channel groups by attributed revenue. "
MODELS_HOW = "One bar per model inside each channel group. Bars of similar height = the models agree; big differences = the credit depends on the method (see the model definitions)."
MODELS_ROAS_CAPTION = "{roas} by attribution model"
RECOMMENDATIONS_HOW = ("Per channel group: the marketing-mix model's {mroi} and its 80 % interval against break-even {break_even}, with the budget plan's "
                       "direction; {roas} ({model}) is context. Campaigns follow their channel group (see Campaign performance).")
RULE = "Rule: {rule}"
INTERVAL_80 = "(80 % interval)"
LTV_FIGURE = "Average cumulative gross margin per customer by months since acquisition ({currency}), first {months} months, by acquisition channel"
LTV_HOW = ("Rule: each line averages only the cohorts observed for at least {months} months ({span}{cohorts} monthly cohorts, "
           "{customers} customers over all channels), the same cohorts at every month, weighted by customers; younger cohorts are left out "
           "so that the curve never mixes ages and only rises with cumulative margin. The table gives each channel's number of cohorts and customers in its line. "
           "Steeper and higher = more valuable customers; compare with the CAC column to see payback.")
LTV_SPAN = "acquired {start} – {end}, "
LTV_CAPTION = "Per channel over the cohorts observed for at least {months} months (LTV at {long_months} months: over those observed for at least {long_months})."
LTV_LONG_NOTE = "{cohorts} cohorts; {value} at {months} m"
MMM_CALLOUT = ("Over {weeks} weeks ({start} to {end}) the model attributes **{share}** of modelled revenue to paid media; the rest is base demand "
               "(baseline, trend, seasonality, promotions).")
MMM_FIGURE = "Weekly revenue decomposed into drivers ({currency})"
MMM_HOW = "Each band is the revenue the model assigns to one driver; bottom bands are base demand, upper bands paid media channels."
MMM_NEGATIVE = " Negative weeks of {names} are drawn at zero."
MMM_FIT_FIGURE = "Model fit: actual vs predicted weekly revenue ({currency})"
MMM_FIT_HOW = "Close lines = the model explains revenue well; read the decomposition with more caution where they diverge."
MMM_ROI_FIGURE = "{mmm_roi} per channel group (× revenue per unit of spend, fit period)"
MMM_ROI_HOW = ("Dot: estimate; bar: 80 % interval. Right of the dashed red line = the channel group pays back its spend on average; "
               "whether the next dollar does is the marginal ROI.")
MMM_ROI_CAUTION = " For {groups} the estimate lies outside its range (the range comes from resampling, the dot from the full fit): treat it with caution."
BREAK_EVEN = "break-even (1.0×)"
BUDGET_CALLOUT = ("Plan for **{period}** at the same total as the current run rate ({total}): predicted revenue change **{uplift}**{interval}.{explain}")
BUDGET_INTERVAL = " (90 % interval {low} to {high})"
BUDGET_CROSSES_ZERO = (" The interval crosses zero: the model is not sure the reallocation gains anything, so move budget in steps and measure each "
                       "(the recommendations say which groups to test).")
BUDGET_ABOVE_ZERO = " The whole interval is above zero: the model is confident the reallocation gains revenue."
BUDGET_FIGURE = "{current} vs {planned} per channel group, {period} ({currency})"
BUDGET_HOW = "Grey: spend at the current run rate (the same number of weeks before the plan); green: spend the plan proposes at the same total, each channel within 50–200 % of its run rate."
WHAT_IF_TITLE = "What-if scenarios, {period}"
WHAT_IF_HOW = ("Predicted revenue change over the plan period (and the carry-over after it) when one channel's spend is changed from its current run rate "
               "and everything else stays the same. Revenue per extra unit of spend below 1.0× means the extra spend would not pay back. The run rate can "
               "differ from the fit period's average spend, so these returns can differ from the MMM Marginal ROI above, which the recommendations read.")

# ------------------------------------------------------------------------------------------------ data quality

DQ_VERDICT = {
    "bad": "{n} blocking check{s} failed: downstream numbers may be wrong until fixed.",
    "warn": "No blocking failures; some checks need attention.",
    "good": "All evaluated checks passed.",
}
DQ_COUNTED = "Counted: {scope}."
DQ_NOT_COUNTED = " {n} {status} not counted."
DQ_LAST = "Last evaluation: {when}. {checks} checks across {assets} assets."
DQ_NOTHING_WRONG = "Nothing failed or warned."
DQ_RATES_FIGURE = "Identity match rates (% of records linked)"
DQ_RATES_HOW = "Longer bar = more records matched across systems (e.g. CRM account ↔ ERP customer). Low rates mean attribution and LTV miss part of the data."

# ------------------------------------------------------------------------------------------------ not available

NA = {
    "executive_kpis": "the executive KPI extract (executive_kpis) was not provided or has no monthly values.",
    "executive_kpis_short": "the executive KPI extract was not provided.",
    "no_headline": "none of the headline KPIs are in the executive KPI extract.",
    "kpi_missing": "{kpi} is not in the KPI extract.",
    "funnel": "the funnel data was not provided.",
    "funnel_window": "the funnel has no rows for the reporting window.",
    "forecast": "the pipeline forecast was not provided.",
    "marketing_roi": "the marketing ROI data (marketing_roi) was not provided.",
    "marketing_roi_short": "the marketing ROI data was not provided.",
    "no_channel_rows": "no channel-level rows for the {model} model.",
    "no_channel_revenue": "no channel-level attributed revenue.",
    "no_recommendations": "no recommendations in the marketing ROI data.",
    "cohort_ltv": "the cohort LTV data was not provided.",
    "cohort_too_young": "no cohort has been observed for {months} months yet (the oldest: {oldest} months).",
    "mmm_contributions": "the MMM decomposition (mmm_contributions) was not provided.",
    "budget_plan": "the MMM budget plan (mmm_budget_plan, marketing_roi) was not provided.",
    "no_budget_plan": "the marketing-mix model has no budget plan (see the mmm_model asset).",
    "data_quality_report": "the data quality report (data_quality_report) was not provided.",
    "no_checks": "no check results.",
    "no_freshness": "no freshness results.",
    "no_identity": "no identity resolution results.",
    "no_dictionary": "no KPI dictionary was provided.",
}

# ------------------------------------------------------------------------------------------------ definitions

DEFINITION_FIELDS = ("Formula", "Unit", "Target", "Owner", "Refresh", "Sources", "Version", "Changed")
UNIT_NAMES = {"percent": "percent (shown as %)", "ratio": "ratio (×)", "currency": "currency"}
NO_DEFINITION = "No definition found in the KPI dictionary for {kpi}."


def marketing_terms(attribution: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Words of the marketing ROI page that are not KPIs (every figure's definition comes from the KPI dictionary).

    One entry per registered attribution model (its label and definition, ``lib/attribution/models.py``) with
    the parameters in ``attribution`` (``position_weights``, ``w_weights``, ``half_life_days``, ... from the
    attribution config) filled in; without them the sentences name no numbers."""
    return {
        **model_terms(attribution),
        "Recommendation": "Per channel group: scale = add budget; reduce = cut budget; test = run an experiment before deciding. "
                          "Campaigns follow their channel group. The rule and reason columns say why.",
    }
