"""Extract assets: governed KPI definitions and dashboard marts, in the warehouse and as Parquet + CSV files (Parquet
only for the largest, PARQUET_ONLY).

Every KPI value comes from its formula in ``config/kpis.yaml`` (via :mod:`marketing_assets.lib.kpis`);
nothing here re-types a formula. Files are audited before they are published to ``MARKETING_EXTRACTS_DIR``
(write-audit-publish, see :func:`publish_extract`).
"""

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.constants import ALL_CHANNELS, ATTRIBUTION, EXTRACTS, MMM, SOURCES, SPEND
from marketing_assets.kpi_bases import kpi_reads, kpi_scope
from marketing_assets.lib import bi_database, bi_datasets, forecast, kpis, recommend
from marketing_assets.lib.attribution.models import model_label
from marketing_assets.lib.cohorts import pool_cohorts, pooled_columns
from marketing_assets.lib.freshness import FRESH_TO, fresh_to, fresh_to_sql, period_complete
from marketing_assets.lib.funnel import stage_distinguishability
from marketing_assets.lib.publish import (
    EXTRACT_FORMATS,
    AuditFailed,
    audit_file_schema,
    audit_no_pii,
    audit_no_pii_at_scale,
    audit_pseudonymised_at_scale,
    audit_published_columns,
    drop_pseudonym,
    extract_files,
    register_pseudonym,
    stage_extract,
    stage_sql_extract,
)
from marketing_assets.lib.quality import column_names, table_exists
from marketing_assets.lib.refs import ref, this
from marketing_assets.lib.spend import reporting_currency
from marketing_assets.lib.sql import literal, unordered_writes
from marketing_assets.lineage import upstream
from marketing_assets.resources import LandingZone, Warehouse

COHORT_SETS = (12, 24)  # cohort_ltv pools the cohorts observed for at least this many months (the page's LTV curves)
class _ExtractColumns(Mapping[str, dict[str, str]]):
    """Each extract's published columns ({name: type}). An entry given as a function (columns derived from a registry:
    one per attribution model) is read anew on every access, so a model registered after import is published too."""

    def __init__(self, entries: dict[str, dict[str, str] | Callable[[], dict[str, str]]]):
        self._entries = entries

    def __getitem__(self, name: str) -> dict[str, str]:
        entry = self._entries[name]
        return entry() if callable(entry) else entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


# Published column lists: a BI tool connects once; changing one is a versioned, announced change.
EXTRACT_COLUMNS: Mapping[str, dict[str, str]] = _ExtractColumns({
    "kpi_dictionary": {
        "name": "string", "label": "string", "description": "string", "formula": "string", "base": "string",
        "time_grains": "string", "dimensions": "string", "breakdown": "string", "source_assets": "string", "owner": "string",
        "refresh": "string", "unit": "string", "target_value": "float", "target_direction": "string",
        "threshold_value": "float", "threshold_direction": "string", "version": "int", "changed": "string",
        "dictionary_version": "int",
    },
    "executive_kpis": {
        "grain": "string", "period": "date", "kpi": "string", "dimension": "string", "dimension_value": "string",
        "value": "float", "unit": "string", "kpi_version": "int", "period_complete": "bool",
    },
    "marketing_roi": {
        "level": "string", "channel_group": "string", "campaign_key": "string", "attribution_model": "string",
        "period_start": "date", "period_end": "date", "currency": "string", "ad_spend": "float", "new_leads": "int",
        "attributed_pipeline": "float", "attributed_opportunities": "float", "attributed_revenue": "float",
        "attributed_won_deals": "float", "channel_roas": "float", "channel_roas_min": "float", "channel_roas_max": "float",
        "attributed_revenue_min": "float", "attributed_revenue_max": "float", "attributed_revenue_model_spread": "float",
        "cost_per_lead": "float", "cost_per_opportunity": "float", "cost_per_won_deal": "float",
        "paid_attributed_revenue": "float", "paid_media_roas": "float",
        "mmm_roi": "float", "mmm_roi_low": "float", "mmm_roi_high": "float", "mmm_marginal_roi": "float",
        "mmm_marginal_roi_low": "float", "mmm_marginal_roi_high": "float", "mmm_best_other_group": "string",
        "mmm_marginal_roi_gap_low": "float", "mmm_marginal_roi_gap_high": "float", "plan_period_start": "date", "plan_period_end": "date",
        "plan_current_spend": "float", "planned_spend": "float", "planned_spend_change_pct": "float", "evidence_level": "string",
        "recommendation": "string", "recommendation_rule": "string", "recommendation_reason": "string", "rules_version": "int",
        "dictionary_version": "int",
    },
    "funnel": {
        "month": "date", "channel_group": "string", "stage": "string", "stage_order": "int", "contacts": "int",
        "stage_conversion": "float", "conversion_from_known": "float", "dictionary_version": "int",
        "stage_distinguishable": "bool", "stage_note": "string", "stage_conversion_3m": "float", "conversion_from_known_3m": "float",
    },
    "cohort_ltv": {
        "cohort_month": "date", "channel_group": "string", "months_since_acquisition": "int", "customers": "int",
        "active_customers": "int", "cumulative_revenue": "float", "cumulative_gross_margin": "float",
        "ltv_per_customer": "float", "retention_30d": "float", "retention_60d": "float", "retention_90d": "float",
        "new_customers": "int", "cac": "float", "payback_month": "float", "dictionary_version": "int",
        **{c: t for months in COHORT_SETS for c, t in pooled_columns(months).items()},
    },
    "pipeline_forecast": {
        "as_of": "date", "forecast_month": "date", "sales_segment": "string", "open_opportunities": "int",
        "open_pipeline": "float", "expected_revenue": "float", "lower": "float", "upper": "float", "method": "string",
        "horizon_expected_revenue": "float", "horizon_lower": "float", "horizon_upper": "float",
    },
    "data_quality_report": {
        "section": "string", "asset_key": "string", "check_name": "string", "severity": "string", "blocking": "bool",
        "status": "string", "evaluated_at": "timestamp", "run_id": "string", "description": "string", "metric": "string",
        "value": "float", "metadata_json": "string", "owner": "string",
    },
    # BI datasets written by DuckDB (SQL_EXTRACTS): the per-touchpoint drill-down and copies of warehouse tables
    "opportunity_credit": bi_datasets.opportunity_credit_columns,  # one column per registered attribution model
    "mmm_weekly": {
        "week": "date", "component": "string", "component_kind": "string", "channel_group": "string", "contribution": "float",
        "actual": "float", "predicted": "float",
    },
    "mmm_channels": {
        "channel": "string", "channel_group": "string", "channel_label": "string", "decay": "float", "half_saturation": "float", "slope": "float",
        "spend": "float", "contribution": "float", "roi": "float", "roi_low": "float", "roi_high": "float", "mroi": "float", "mroi_low": "float",
        "mroi_high": "float",
    },
    "mmm_response_curves": {
        "channel": "string", "channel_group": "string", "channel_label": "string", "spend": "float", "share_of_current_spend": "float",
        "contribution": "float", "roi": "float", "mroi": "float", "contribution_low": "float", "contribution_high": "float", "is_current_spend": "bool",
    },
    "mmm_budget_plan": {
        "period_start": "date", "period_end": "date", "period_weeks": "int", "scenario": "string", "channel": "string", "channel_group": "string",
        "channel_label": "string", "current_spend": "float", "scenario_spend": "float", "spend_change": "float", "uplift_per_extra_spend": "float",
        "bound_low": "float", "bound_high": "float", "media_contribution": "float", "uplift": "float", "uplift_low": "float", "uplift_high": "float",
    },
    "mmm_lift_tests": {
        "channel": "string", "start_date": "date", "end_date": "date", "lift": "float", "lift_se": "float", "predicted_lift": "float", "z": "float",
    },
    "attribution_model_comparison": {
        "lookback_days": "int", "channel_name": "string", "model": "string", "pipeline_amount": "float", "share": "float",
        "share_change_vs_default_window": "float", "model_spread": "float",
    },
})
# Published copies of warehouse tables: extract name -> (schema, table, extra columns as SQL over the table, sort order).
# Their columns are EXTRACT_COLUMNS[name]; a column the table lacks (no fitted model) is published empty.
TABLE_COPIES: dict[str, tuple[str, str, dict[str, str], tuple[str, ...]]] = {
    "mmm_channels": (MMM, "mmm_model", {}, ("channel",)),
    "mmm_response_curves": (MMM, "mmm_response_curves", {"is_current_spend": "abs(share_of_current_spend - 1) < 1e-9"},
                            ("channel", "share_of_current_spend")),
    "mmm_budget_plan": (MMM, "mmm_budget_plan", {}, ("scenario", "channel")),
    "mmm_lift_tests": (MMM, "mmm_lift_test_fit", {}, ("channel", "start_date")),
    "attribution_model_comparison": (ATTRIBUTION, "attribution_model_comparison", {}, ("lookback_days", "model", "channel_name")),
}
SQL_EXTRACTS = ("opportunity_credit", "mmm_weekly", *TABLE_COPIES)  # written by DuckDB, audited without loading them into pandas
# Published as Parquet only: millions of rows a BI tool reads from the Parquet file or the warehouse; a CSV of them (GBs at
# scale) would serve no reader. Every other extract is published as Parquet and CSV.
PARQUET_ONLY = frozenset({"opportunity_credit"})
# Kept in the warehouse as a view over the published Parquet file instead of a copy of its rows (DuckDB; see
# publish_sql_extract): the file is written straight from the SELECT. Tens of millions of rows at scale, where the
# warehouse copy took half the step; checks and analysts read the view, which always shows exactly the published file.
FILE_VIEWS = frozenset({"opportunity_credit"})
# Columns of an extract holding keyed pseudonyms: {column: (prefix, SQL condition under which NULL is allowed)}; its files
# are audited by pattern (every value a pseudonym) instead of a scan of its distinct values.
PSEUDONYM_COLUMNS: dict[str, dict[str, tuple[str, str | None]]] = {"opportunity_credit": bi_datasets.OPPORTUNITY_CREDIT_PSEUDONYMS}
# Columns carrying a dictionary KPI under another name; a column named like a KPI carries that KPI. Their
# descriptions and units come from the dictionary (see column_descriptions).
COLUMN_KPIS: dict[str, dict[str, str]] = {
    "marketing_roi": {"channel_roas_min": "channel_roas", "channel_roas_max": "channel_roas", "attributed_revenue_min": "attributed_revenue",
                      "attributed_revenue_max": "attributed_revenue"},
    "funnel": {"contacts": "funnel_contacts", "stage_conversion": "funnel_stage_conversion", "conversion_from_known": "funnel_conversion_from_known",
               "stage_conversion_3m": "funnel_stage_conversion", "conversion_from_known_3m": "funnel_conversion_from_known"},
    "opportunity_credit": {column: prefix for prefix in ("attributed_pipeline", "attributed_revenue")
                           for column in bi_datasets.per_model_columns(prefix)},
    "cohort_ltv": {
        "customers": "cohort_customers", "active_customers": "cohort_active_customers", "cumulative_revenue": "cohort_cumulative_revenue",
        "cumulative_gross_margin": "cohort_cumulative_margin", "ltv_per_customer": "cohort_ltv", "retention_30d": "repeat_rate_30d",
        "retention_60d": "repeat_rate_60d", "retention_90d": "repeat_rate_90d",
    },
}
# KPI columns at another time grain than their extract's rows (the check recomputes them at that grain).
COLUMN_GRAINS: dict[str, dict[str, str]] = {
    "funnel": {"stage_conversion_3m": "trailing_3_months", "conversion_from_known_3m": "trailing_3_months"},
}
# Every other column: what it holds (numbers say their unit). A numeric column is either a KPI or described here.
COLUMN_NOTES: dict[str, str] = {
    "level": "Row level: all (every channel), channel (channel group) or campaign.",
    "channel_group": "Channel group (GA4 default channel grouping + overrides); '(all)' on all-channel rows.",
    "campaign_key": "Normalised campaign name; '(no campaign)' for touches without one.",
    "attribution_model": "Attribution model of the row's credited figures.",
    "period_start": "First day of the trailing window (date).", "period_end": "Last day of the trailing window (date).",
    "currency": "ISO 4217 code of every money column of the row (the reporting currency of config/fx_rates.yaml).",
    "channel_roas_min": "Channel ROAS (attributed): the lowest value across attribution models (ratio).",
    "channel_roas_max": "Channel ROAS (attributed): the highest value across attribution models (ratio).",
    "attributed_revenue_min": "Attributed revenue: the lowest value across attribution models (money; a model crediting the row nothing counts 0).",
    "attributed_revenue_max": "Attributed revenue: the highest value across attribution models (money; a model crediting the row nothing counts 0).",
    "attributed_revenue_model_spread": "Highest minus lowest attributed revenue across attribution models (money): how much the model choice matters.",
    "mmm_best_other_group": "The other channel group with the highest MMM Marginal ROI (the gap columns compare with it).",
    "plan_period_start": "First day of the budget plan's period (date).", "plan_period_end": "Last day of the budget plan's period (date).",
    "evidence_level": "What the row's evidence measures: the channel group (MMM and plan) or a campaign (attribution only).",
    "recommendation": "scale / reduce / test per channel group (config/recommendations.yaml); campaigns follow their group.",
    "recommendation_rule": "Name of the rule that gave the recommendation.", "recommendation_reason": "The rule's reason, citing its numbers.",
    "rules_version": "Version of config/recommendations.yaml (integer).", "dictionary_version": "Version of config/kpis.yaml (integer).",
    "stage": "Funnel stage.", "stage_distinguishable": "False when the data cannot tell the stage apart from the one before (its conversion is then empty).",
    "stage_note": "Why a stage is not distinguishable.",
    "stage_conversion_3m": "Over the contacts created in the row's month and the two months before (KPI grain trailing_3_months):",
    "conversion_from_known_3m": "Over the contacts created in the row's month and the two months before (KPI grain trailing_3_months):", "stage_order": "Position of the stage in the funnel (1 = known; integer).", "month": "Contact-creation month (date).",
    "cohort_month": "Acquisition month of the cohort (date).", "months_since_acquisition": "Months since the cohort's acquisition month (integer; 0 = that month).",
    "payback_month": "First months_since_acquisition at which LTV per customer reaches the cohort's CAC (months).",
    **{c: note.format(months=months) for months in COHORT_SETS for c, note in zip(pooled_columns(months), (
        "True on the rows of a cohort observed for at least {months} months (a row for every month up to {months}).",
        "LTV per customer at the row's months_since_acquisition over the channel group's cohorts observed for at least {months} months: "
        "their cumulative gross margin ÷ their customers (money; the customer-weighted average of their ltv_per_customer; "
        "the same on their rows of that month, empty beyond month {months} and on other cohorts' rows).",
        "CAC of the channel group's cohorts observed for at least {months} months, averaged weighted by their customers (money; the same on all their rows).",
        "pooled_ltv_{months}m at month {months} ÷ pooled_cac_{months}m (ratio; over the cohorts observed for at least {months} months, the same on all their rows; "
        "not KPI ltv_to_cac, which takes the lifetime LTV to date).",
        "30-day repeat-purchase retention of the channel group's cohorts observed for at least {months} months, averaged weighted by their customers (fraction; the same on all their rows).",
        "60-day repeat-purchase retention of the channel group's cohorts observed for at least {months} months, averaged weighted by their customers (fraction; the same on all their rows).",
        "90-day repeat-purchase retention of the channel group's cohorts observed for at least {months} months, averaged weighted by their customers (fraction; the same on all their rows).",
        "Median payback_month of the channel group's cohorts observed for at least {months} months that paid back (months; the same on all their rows).",
    ))},
    "grain": "Time grain of the row: week or month.", "period": "First day of the period (date).", "kpi": "Name of the KPI in the dictionary.",
    "dimension": "Breakdown dimension of the row, empty for the KPI's total.", "dimension_value": "Member of the breakdown dimension.",
    "value": "The KPI's value in the KPI's unit (see unit).", "unit": "Unit of value: currency, percent (fraction), ratio, count or months.",
    "kpi_version": "Version of the KPI's definition (integer).",
    "period_complete": "Whether the data covers the whole period (its last day is on or before the day the ERP orders, ad spend and "
                       "opportunities are all complete to); the running week or month is not, so compare complete periods.",
    "as_of": "Date the forecast was made (latest data day).", "forecast_month": "Month of expected close (date).",
    "sales_segment": "CRM sales segment; All = every segment.", "open_opportunities": "Open opportunities expected to close in the month (integer).",
    "open_pipeline": "Pipeline amount of those opportunities (money).", "expected_revenue": "Won revenue expected from the open pipeline in the month (money; mean of the simulation).",
    "lower": "Lower end of the forecast interval (money).", "upper": "Upper end of the forecast interval (money).", "method": "Forecast method.",
    "horizon_expected_revenue": "Won revenue expected from the open pipeline over the whole horizon (money; the same on every month's row).",
    "horizon_lower": "Lower end of the interval of the horizon total (money; a quantile of the simulated total, not a sum of monthly bounds).",
    "horizon_upper": "Upper end of the interval of the horizon total (money; a quantile of the simulated total, not a sum of monthly bounds).",
    "section": "Report section.", "asset_key": "Asset of the check.", "check_name": "Check name.", "severity": "ERROR or WARN.",
    "blocking": "Whether a failure stops downstream assets.", "status": "passed, warned, failed or skipped.", "evaluated_at": "When the check ran (UTC).",
    "run_id": "Dagster run of the evaluation.", "description": "The check's own words.", "metric": "Name of the row's measured quantity.",
    "metadata_json": "Check metadata (masked), JSON.",
    "name": "KPI name.", "label": "KPI label shown to readers.", "formula": "SQL formula.", "base": "Base relation.", "time_grains": "Allowed time grains.",
    "dimensions": "Allowed dimensions.", "breakdown": "Dimensions always applied.", "source_assets": "Assets read.",
    "owner": "Owning team: a KPI's from config/kpis.yaml, an asset's and its checks' from config/owners.yaml (by layer).",
    "refresh": "Refresh cadence.", "target_value": "Goal value, in the KPI's unit.", "target_direction": "Which side of the target is good.",
    "threshold_value": "Alert line, in the KPI's unit.", "threshold_direction": "Which side of the threshold is good.", "version": "KPI definition version (integer).",
    "changed": "Last change of the definition.",
    # opportunity_credit
    "opportunity_key": "Keyed pseudonym of the CRM opportunity (HMAC-SHA256 under the secret pseudonym key; the same in every refresh).",
    "touchpoint_key": "Keyed pseudonym of the touchpoint (HMAC-SHA256 under the secret pseudonym key); empty on the '(unattributed)' "
                      "row of an opportunity without a touch (credit 1 under every model, its whole pipeline).",
    "opportunity_created_date": "Day the opportunity was created (date; the date basis of attributed pipeline).",
    "opportunity_month": "First day of the opportunity's creation month (date).",
    "channel_name": "Channel label of the touch (CRM channel_name, or the channel channel_map derives).",
    "touchpoint_type": "marketing, sales or web.", "touchpoint_date": "Day of the touch (date).",
    "days_before_opportunity": "Calendar days from the touch to the opportunity's creation (integer, 0 = same day).",
    "touch_order": "Position of the touch in the opportunity's ordered touches (integer, 1 = first).",
    "touch_count": "Touches of the opportunity in its lookback window (integer; 0 on the '(unattributed)' rows of an opportunity without one).",
    "lookback_days": "Lookback window of the attribution, in days (integer; empty on the rows of an opportunity without a touch).",
    "is_won": "The opportunity is closed won.",
    "pipeline_amount": "Pipeline amount (money): the opportunity's own in opportunity_credit; the pipeline the row's model credits the channel "
                       "in the row's lookback window in attribution_model_comparison.",
    # mmm_* and attribution_model_comparison (copies of the warehouse tables)
    "week": "First day of the week (date).", "component": "Component of modelled revenue: a base component (baseline, trend, seasonality, "
    "controls) or a media channel.", "component_kind": "base or media.",
    "contribution": "Revenue the marketing-mix model attributes to the row's component or channel (money): in the week (mmm_weekly), over the fit "
                    "period (mmm_channels), at the row's spend level (mmm_response_curves).",
    "actual": "Actual revenue of the week (money).", "predicted": "Revenue the model predicts for the week (money).",
    "channel": "Media channel of the marketing-mix model.", "channel_label": "Readable label of the channel.",
    "decay": "Adstock decay per week (fraction).", "half_saturation": "Spend at which the channel's saturation curve reaches half its maximum (money per week).",
    "slope": "Shape (Hill slope) of the channel's saturation curve (number).",
    "spend": "Spend of the channel (money): over the fit period (mmm_channels), or the curve's spend level (mmm_response_curves).",
    "roi": "The channel's modelled contribution ÷ its spend (ratio; per channel, not KPI mmm_roi, which is per channel group).",
    "roi_low": "Lower end of the 80 % bootstrap interval of the channel's roi (ratio).", "roi_high": "Upper end of the 80 % bootstrap interval of the channel's roi (ratio).",
    "mroi": "The channel's marginal ROI: revenue of the next unit of spend at the row's spend (ratio; per channel).",
    "mroi_low": "Lower end of the 80 % bootstrap interval of the channel's mroi (ratio).", "mroi_high": "Upper end of the 80 % bootstrap interval of the channel's mroi (ratio).",
    "share_of_current_spend": "The curve's spend level as a fraction of the current spend (fraction; 1 = current).",
    "contribution_low": "Lower end of the 80 % bootstrap interval of contribution (money).", "contribution_high": "Upper end of the 80 % bootstrap interval of contribution (money).",
    "is_current_spend": "The curve's point at the current spend (share_of_current_spend = 1).",
    "period_weeks": "Weeks in the planned period (integer).", "scenario": "Budget scenario (optimal_same_total or a what-if).",
    "current_spend": "Run-rate spend of the channel over a period as long as the plan's (money).", "scenario_spend": "Spend of the channel in the scenario (money).",
    "spend_change": "scenario_spend − current_spend (money).", "uplift_per_extra_spend": "uplift ÷ spend_change (ratio).",
    "bound_low": "Lowest spend the plan may give the channel (money).", "bound_high": "Highest spend the plan may give the channel (money).",
    "media_contribution": "Modelled revenue of the channel at the scenario's spend over the period (money).",
    "uplift": "Revenue change of the scenario over the current spend (money).", "uplift_low": "Lower end of the 80 % bootstrap interval of uplift (money).",
    "uplift_high": "Upper end of the 80 % bootstrap interval of uplift (money).",
    "start_date": "First day of the lift test (date).", "end_date": "Last day of the lift test (date).",
    "lift": "Incremental revenue the lift test measured (money).", "lift_se": "Standard error of lift (money).",
    "predicted_lift": "Incremental revenue the model predicts for the test (money).", "z": "(predicted_lift − lift) ÷ lift_se (standard errors).",
    "model": "Attribution model.", "share": "The channel's share of the model's credited pipeline in the lookback window (fraction).",
    "share_change_vs_default_window": "share minus the channel's share under the longest lookback window (fraction).",
    "model_spread": "Highest minus lowest share of the channel across models in the window (fraction).",
}
# opportunity_credit's per-model columns (bi_datasets.PER_MODEL_COLUMNS): one note per model of the registry
COLUMN_NOTES.update(
    {c: f"Share of the opportunity credited to the touch by the {model_label(m)} model (fraction; an opportunity's shares sum to 1; 1 on "
        "the '(unattributed)' row of an opportunity without a touch; empty for a touch of a zero pipeline amount)."
     for c, m in bi_datasets.per_model_columns("credit").items()}
    | {c: f"The {model_label(m)} model's credit of the touch × the opportunity's pipeline amount, unrounded (sums over rows reconcile "
          "with marketing_roi to the cent):" for c, m in bi_datasets.per_model_columns("attributed_pipeline").items()}
    | {c: f"The {model_label(m)} model's credit of the touch × the opportunity's won amount (0 when not won), unrounded; dated by the "
          "opportunity's close, not by opportunity_created_date:" for c, m in bi_datasets.per_model_columns("attributed_revenue").items()}
)
MONEY_DECIMALS = 2  # money columns are published rounded to cents of the reporting currency
UNIT_TEXT = {"currency": "money, reporting currency, 2 decimals", "percent": "fraction, 0.25 = 25 %", "ratio": "ratio, 1.0 = break-even",
             "count": "count", "months": "months"}


def published_names(name: str) -> dict[str, str]:
    """KPI name -> published column name of an extract whose columns carry KPIs under other names (at the rows' grain)."""
    return {kpi: column for column, kpi in COLUMN_KPIS.get(name, {}).items() if column not in COLUMN_GRAINS.get(name, {})}


def column_kpi(name: str, column: str, dictionary: kpis.KpiDictionary) -> str | None:
    """The dictionary KPI a published column carries, or None (a dimension or a described figure)."""
    kpi = COLUMN_KPIS.get(name, {}).get(column, column)
    return kpi if kpi in dictionary.kpis else None


def column_descriptions(name: str, dictionary: kpis.KpiDictionary) -> dict[str, str]:
    """Published description of every column of an extract: a KPI's label, unit and definition, or its note."""
    out = {}
    for column in EXTRACT_COLUMNS[name]:
        kpi = column_kpi(name, column, dictionary)
        if kpi is not None:
            k = dictionary[kpi]
            qualifier = COLUMN_NOTES[column] + " " if column in COLUMN_KPIS.get(name, {}) and column in COLUMN_NOTES else ""
            out[column] = f"{qualifier}{k.label} [{UNIT_TEXT[k.unit]}; KPI {kpi} v{k.version}]: {k.description}"
        else:
            out[column] = COLUMN_NOTES.get(column, "")
    return out


def bi_ready(name: str, frame: pd.DataFrame, dictionary: kpis.KpiDictionary) -> pd.DataFrame:
    """Published types: integer columns as (nullable) integers, money columns rounded to MONEY_DECIMALS."""
    frame = frame[list(EXTRACT_COLUMNS[name])].copy()
    for column, kind in EXTRACT_COLUMNS[name].items():
        kpi = column_kpi(name, column, dictionary)
        if kind == "int":
            values = pd.to_numeric(frame[column]).round()
            frame[column] = values.astype("Int64") if values.isna().any() else values.astype("int64")
        elif kpi is not None and dictionary[kpi].unit == "currency":
            frame[column] = pd.to_numeric(frame[column]).astype(float).round(MONEY_DECIMALS)
    return frame


NO_CAMPAIGN = "(no campaign)"
FUNNEL_STAGES = ("known", "engaged", "mql", "sql", "opportunity", "customer")

EXECUTIVE_KPIS = {
    "week": ["total_revenue", "revenue_growth_wow", "gross_margin_pct", "ad_spend", "blended_roas", "cac", "conversion_rate_session_to_lead",
             "revenue_by_product", "margin_by_product", "revenue_by_channel"],
    "month": ["total_revenue", "revenue_growth_mom", "revenue_growth_yoy", "gross_margin", "gross_margin_pct", "ad_spend", "blended_roas", "cac",
              "conversion_rate_session_to_lead", "inventory_turnover", "revenue_by_product", "margin_by_product", "revenue_by_channel"],
}
BREAKDOWN_COLUMNS = ("product_name", "product_id", "category", "sales_channel", "channel_group")


def extract_formats(name: str) -> tuple[str, ...]:
    """The file formats extract ``name`` is published in (PARQUET_ONLY or Parquet and CSV)."""
    return ("parquet",) if name in PARQUET_ONLY else EXTRACT_FORMATS


def published_extract_files(out_dir: Path | str, name: str) -> dict[str, Path]:
    """The files extract ``name`` is published as: ``{format: path}``."""
    return extract_files(out_dir, name, extract_formats(name))


def extract_audits(name: str) -> list:
    """The audits of extract ``name``'s files, run on the staged files before publishing and by its blocking file checks:
    published columns and no PII; for the DuckDB-written extracts (SQL_EXTRACTS) their variants that never load the file,
    for an extract with pseudonym columns (PSEUDONYM_COLUMNS) the pattern audit of every key."""
    if name in PSEUDONYM_COLUMNS:
        return [functools.partial(audit_file_schema, columns=EXTRACT_COLUMNS[name]),
                functools.partial(audit_pseudonymised_at_scale, pseudonyms=PSEUDONYM_COLUMNS[name])]
    if name in SQL_EXTRACTS:
        return [functools.partial(audit_file_schema, columns=EXTRACT_COLUMNS[name]), audit_no_pii_at_scale]
    return [functools.partial(audit_published_columns, columns=EXTRACT_COLUMNS[name]), audit_no_pii]


@contextlib.contextmanager
def _one_transaction(con):
    """The body's warehouse writes and file moves in one DuckDB transaction, rolled back on any failure; a failed
    audit fails the asset naming the extract, file and audit."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except AuditFailed as err:
        con.execute("ROLLBACK")
        raise dg.Failure(
            description=str(err),
            metadata={"failed_audits": [r.audit for r in err.failed], "problems": "; ".join(r.description for r in err.failed)},
        ) from err
    except BaseException:
        con.execute("ROLLBACK")
        raise


def publish_extract(context: dg.AssetExecutionContext, warehouse: Warehouse, con, name: str, frame: pd.DataFrame) -> dict:
    """Write-audit-publish extract ``name``: Parquet and CSV are written under ``<extracts_dir>/.staging/`` and
    audited there with the blocking checks' own audits (published columns, no PII). Only when they pass are the
    warehouse table ``extracts.<name>`` replaced and the files moved into place, in one DuckDB transaction that
    rolls back if a move fails. A failed audit fails the asset naming the extract, file and audit; the staged
    files are removed and the previously published table and files stay as they were."""
    dictionary = kpis.load_kpi_dictionary()
    frame = bi_ready(name, frame, dictionary)
    with _one_transaction(con), stage_extract(frame, name, Path(warehouse.extracts_dir), extract_audits(name), extract_formats(name)):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {EXTRACTS}")
        con.register("_extract_df", frame)
        con.execute(f"CREATE OR REPLACE TABLE {this(EXTRACTS, name)} AS SELECT * FROM _extract_df")
        con.unregister("_extract_df")
    paths = published_extract_files(warehouse.extracts_dir, name)
    context.log.info(f"{name}: {len(frame)} rows audited and published to {paths['parquet'].parent}")
    return {"dagster/row_count": len(frame), "files": [str(p) for p in paths.values()]}


def publish_sql_extract(context: dg.AssetExecutionContext, warehouse: Warehouse, con, name: str, select_sql: str, ordered: bool = True) -> dict:
    """:func:`publish_extract` for a SELECT too large for pandas, in one transaction. DuckDB writes the files
    (:func:`extract_formats`) under ``.staging/`` and audits them (:func:`extract_audits`, from the Parquet schema, pseudonym
    patterns and DISTINCT text values); only when every audit passed are the files moved into place and the transaction
    committed, else it is rolled back and nothing changes. The warehouse keeps ``extracts.<name>``: for an extract of
    FILE_VIEWS on DuckDB, a view over the published Parquet file (:func:`_file_view`), the files written straight from the
    SELECT; otherwise a table of the SELECT's rows (it runs once), the files written from that table (Spark stores no view
    in a schema). ``ordered=False``: the row order is not part of the extract (a SELECT without ORDER BY): every thread
    writes the table and the files."""
    table = this(EXTRACTS, name)
    out_dir = Path(warehouse.extracts_dir)
    audits, formats = extract_audits(name), extract_formats(name)
    with _one_transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {EXTRACTS}")
        if name in FILE_VIEWS and getattr(con, "engine", "duckdb") == "duckdb":  # Spark keeps no view in a schema: a table there
            with stage_sql_extract(con, select_sql, name, out_dir, audits, formats, ordered=ordered) as staged:
                (rows,) = con.execute(f"SELECT count(*) FROM read_parquet({literal(staged['parquet'])})").fetchone()
            _file_view(con, name, published_extract_files(out_dir, name)["parquet"])
        else:
            with contextlib.nullcontext() if ordered else unordered_writes(con):
                con.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
            with stage_sql_extract(con, f"SELECT * FROM {table}", name, out_dir, audits, formats, ordered=ordered):
                (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    paths = published_extract_files(warehouse.extracts_dir, name)
    context.log.info(f"{name}: {rows} rows written by DuckDB, audited and published to {paths['parquet'].parent}")
    return {"dagster/row_count": int(rows), "files": [str(p) for p in paths.values()]}


def _file_view(con, name: str, parquet: Path) -> None:
    """``extracts.<name>`` as a view over its published Parquet file (a table of that name, published before, is dropped),
    created once the file is in place (DuckDB checks that it exists) and committed with the publication's transaction. A
    failed audit leaves the previous view over the previous file; a crash between the move and the commit leaves the previous
    view, which reads the new file at the same path: the view never names a file that was not published, and shows exactly
    the published rows. The path is absolute (DuckDB would read a relative one from each reading process's working
    directory): a warehouse moved with its extracts folder reads the old folder until the extract is published again."""
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [EXTRACTS, name]).fetchall()
    if kind and kind[0][0] == "BASE TABLE":
        con.execute(f"DROP TABLE {this(EXTRACTS, name)}")
    con.execute(bi_database.view_sql(name, parquet, schema=EXTRACTS))


@dg.asset(kinds={"duckdb", "parquet", "csv"})
def kpi_dictionary(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per governed KPI: definition, SQL formula, grains, sources, owner, refresh, unit, target and version."""
    dictionary = kpis.load_kpi_dictionary()
    frame = kpis.dictionary_frame(dictionary)
    frame["dictionary_version"] = dictionary.version
    with warehouse.get_connection() as con:
        meta = publish_extract(context, warehouse, con, "kpi_dictionary", frame)
    return dg.MaterializeResult(metadata={**meta, "dictionary_version": dictionary.version, "kpis": len(frame)})


def _long_form(frame: pd.DataFrame, grain: str, versions: dict[str, int]) -> pd.DataFrame:
    present = [c for c in BREAKDOWN_COLUMNS if c in frame.columns]
    out = pd.DataFrame({"grain": grain, "period": pd.to_datetime(frame["period"]).dt.date, "kpi": frame["kpi"]})
    out["dimension"], out["dimension_value"] = None, None
    for col in present:
        has = frame[col].notna() & out["dimension"].isna()
        out.loc[has, "dimension"] = col
        out.loc[has, "dimension_value"] = frame.loc[has, col].astype(str)
    out["value"], out["unit"] = frame["value"].astype(float), frame["unit"]
    out["kpi_version"] = out["kpi"].map(versions).astype(int)
    return out


# KPI extracts take their upstream assets from the SQL of the base relations their KPIs read (lib/kpis.py): the base
# tables built once per run (kpi_bases.py, kpis/<base>) and the source tables of the bases computed inline.
@dg.asset(
    deps=list(dict.fromkeys([*kpi_reads(dict.fromkeys(n for names in EXECUTIVE_KPIS.values() for n in names)),
                             *upstream(*(lambda f=f: fresh_to_sql(*f) for f in FRESH_TO))])),
    kinds={"duckdb", "parquet", "csv"},
)
def executive_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per grain (week, month) × period × KPI × dimension: revenue, growth, margin, ROAS, CAC, conversion, inventory turnover, by product and channel."""
    dictionary = kpis.load_kpi_dictionary()
    versions = {k.name: k.version for k in dictionary}
    with warehouse.get_connection() as con:
        with kpi_scope(con, dictionary) as scope:
            parts = [
                _long_form(kpis.compute_kpis(con, names, grain, dictionary=dictionary, skip_missing=True, scope=scope), grain, versions)
                for grain, names in EXECUTIVE_KPIS.items()
            ]
        frame = pd.concat(parts, ignore_index=True)
        fresh = fresh_to(con)
        frame["period_complete"] = [period_complete(g, p, fresh) for g, p in zip(frame["grain"], frame["period"])]
        meta = publish_extract(context, warehouse, con, "executive_kpis", frame)
    latest = frame[(frame.grain == "month") & frame.dimension.isna()].sort_values("period").groupby("kpi").tail(1)
    return dg.MaterializeResult(
        metadata={**meta, "dictionary_version": dictionary.version, "latest_month": dg.MetadataValue.md(latest[["kpi", "period", "value", "unit"]].to_markdown(index=False))}
    )


def _wide(long: pd.DataFrame, keys: list[str], fill: str = NO_CAMPAIGN, names: tuple[str, ...] | list[str] = ()) -> pd.DataFrame:
    """Long KPI frame (``period``, dims, ``kpi``, ``value``) to one column per KPI; NULL dims become ``fill``.
    Every KPI in ``names`` gets a column, empty when the data had no value for it (a zero-row input)."""
    frame = long.copy()
    for k in keys:
        if k != "period" and frame[k].dtype == object:
            frame[k] = frame[k].fillna(fill)
    wide = frame.set_index([*keys, "kpi"])["value"].unstack("kpi").reset_index().rename_axis(columns=None)
    for name in names:
        if name not in wide:
            wide[name] = pd.Series(dtype="float64")
    return wide


# marketing_roi: KPIs per attribution model, per channel group / campaign (spend and leads have no model: the
# same value on every model's row), and the channel-group evidence of the recommendation (fit period / plan period).
ROI_MODEL_KPIS = ("attributed_pipeline", "attributed_opportunities", "attributed_revenue", "attributed_won_deals", "channel_roas",
                  "cost_per_opportunity", "cost_per_won_deal")
ROI_SPEND_KPIS = ("ad_spend", "new_leads", "cost_per_lead")
ROI_PAID_KPIS = ("paid_attributed_revenue", "paid_media_roas")
ROI_MMM_KPIS = ("mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high",
                "mmm_marginal_roi_gap_low", "mmm_marginal_roi_gap_high")
ROI_PLAN_KPIS = ("plan_current_spend", "planned_spend", "planned_spend_change_pct")
ALL_LEVEL = "all"


def _roi_kpis(con, dictionary, dims: list[str], between: tuple, scope: kpis.KpiScope | None = None) -> pd.DataFrame:
    """One row per attribution model × ``dims``: the model KPIs and the spend KPIs over the window (spend and leads
    have no attribution model: the same on every model's row), with the spread of channel ROAS and attributed revenue
    across models."""
    names = [k for k in (*ROI_MODEL_KPIS, *ROI_SPEND_KPIS) if all(d in dictionary[k].dims for d in dims)]
    names += [] if dims else list(ROI_PAID_KPIS)  # the all-channels row: the ads' own return
    out = kpis.compute_wide(con, names, "total", ["attribution_model", *dims], dictionary=dictionary, between=between, skip_missing=True,
                            scope=scope)
    out = out.dropna(subset=["attribution_model"]).drop(columns="period")
    if "campaign_key" in dims:
        out["campaign_key"] = out["campaign_key"].fillna(NO_CAMPAIGN)
    spread = out.groupby(dims, dropna=False)["channel_roas"] if dims else out.assign(_all=0).groupby("_all")["channel_roas"]
    out["channel_roas_min"], out["channel_roas_max"] = spread.transform("min"), spread.transform("max")
    # a model that credits the row's group no revenue (no value, or no row at all) counts as 0 in the range
    keyed = out.assign(_all=0, _revenue=out["attributed_revenue"].fillna(0.0)).groupby(dims or ["_all"], dropna=False)
    every_model = keyed["attribution_model"].transform("nunique") == out["attribution_model"].nunique()
    # in cents, as published: models crediting the same revenue differ by float noise of the parallel sums, from run to run
    low, high = keyed["_revenue"].transform("min").round(MONEY_DECIMALS), keyed["_revenue"].transform("max").round(MONEY_DECIMALS)
    out["attributed_revenue_min"], out["attributed_revenue_max"] = low.where(every_model, low.clip(upper=0.0)), high.where(every_model, high.clip(lower=0.0))
    out["attributed_revenue_model_spread"] = (out["attributed_revenue_max"] - out["attributed_revenue_min"]).round(MONEY_DECIMALS)
    return out


def group_evidence_reads() -> dict[str, str]:
    """The MMM tables marketing_roi reads besides its KPIs: each group's best other group and the plan period."""
    return {
        "best_other_group": f"SELECT channel_group, best_other_group AS mmm_best_other_group FROM {ref(MMM, 'mmm_channel_group_roi')}",
        "plan_period": f"SELECT min(period_start), max(period_end) FROM {ref(MMM, 'mmm_budget_plan')}",
    }


def roi_window_end_sql() -> str:
    """Last day of marketing_roi's trailing window: the latest spend day, else the latest opportunity creation day."""
    return f"""SELECT coalesce(max(date_day), (SELECT max(opportunity_created_date)::DATE FROM {ref(SOURCES, 'crm_opportunities')}))
                FROM {ref(SPEND, 'ad_spend_daily')}"""


ROI_KPIS = (*ROI_MODEL_KPIS, *ROI_SPEND_KPIS, *ROI_PAID_KPIS, *ROI_MMM_KPIS, *ROI_PLAN_KPIS)


def _group_evidence(con, dictionary, scope: kpis.KpiScope | None = None) -> pd.DataFrame:
    """Per channel group with modelled media: MMM returns (fit period) and the budget plan (plan period)."""
    names = [*ROI_MMM_KPIS, *ROI_PLAN_KPIS]
    present = kpis.compute_kpis(con, names, "total", ["channel_group"], dictionary=dictionary, skip_missing=True, scope=scope)
    if present.empty:
        return pd.DataFrame(columns=["channel_group", *names, "mmm_best_other_group", "plan_period_start", "plan_period_end"])
    out = _wide(present, ["channel_group"])
    reads = group_evidence_reads()
    if table_exists(con, MMM, "mmm_channel_group_roi"):
        best = con.execute(reads["best_other_group"]).df()
        out = out.merge(best, on="channel_group", how="left")
    if table_exists(con, MMM, "mmm_budget_plan"):
        period = con.execute(reads["plan_period"]).fetchone()
        out["plan_period_start"], out["plan_period_end"] = period
    return out


def _recommend(frame: pd.DataFrame, rules) -> pd.DataFrame:
    """recommendation / rule / reason per channel-group row (rules on the group's evidence) and per campaign row
    (follows its group, with the campaign's own attribution figures)."""
    ref = frame[frame["attribution_model"] == rules.reference_model]
    groups = ref[ref["level"] == "channel"].copy()
    groups["plan_period"] = [
        f"{s} to {e}" if pd.notna(s) else "the next period" for s, e in zip(groups["plan_period_start"], groups["plan_period_end"])
    ]
    paid = groups["ad_spend"].fillna(0) > 0
    decided = pd.DataFrame(
        [recommend.recommend(row, rules) for row in groups[paid].to_dict("records")],
        columns=["recommendation", "recommendation_rule", "recommendation_reason"], index=groups[paid].index,
    )
    groups = groups.join(decided)
    camps = ref[(ref["level"] == "campaign") & (ref["ad_spend"].fillna(0) > 0)]
    lookup = groups.set_index("channel_group")
    reasons = []
    for row in camps.to_dict("records"):
        group = lookup.loc[row["channel_group"]] if row["channel_group"] in lookup.index else None
        if group is None or pd.isna(group["recommendation"]):
            reasons.append((None, None, None))
            continue
        context = {**row, **{f"group_{k}": v for k, v in group.items()}, "group_recommendation": group["recommendation"]}
        reasons.append((group["recommendation"], f"follows_channel_group:{group['recommendation_rule']}", recommend.campaign_reason(context, rules)))
    camp_decided = pd.DataFrame(reasons, columns=["recommendation", "recommendation_rule", "recommendation_reason"], index=camps.index)
    keys = ["level", "channel_group", "campaign_key"]
    decisions = pd.concat([groups[[*keys, *camp_decided.columns]], pd.concat([camps[keys], camp_decided], axis=1)], ignore_index=True)
    return frame.merge(decisions, on=keys, how="left")


@dg.asset(deps=list(dict.fromkeys([*kpi_reads(ROI_KPIS), *upstream(lambda: (roi_window_end_sql(), group_evidence_reads()))])),
          kinds={"duckdb", "parquet", "csv"})
def marketing_roi(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per level (all channels, channel group, campaign) × attribution model over the trailing window: spend, leads,
    attributed pipeline / revenue / won deals, ROAS and costs per outcome; per channel group the MMM's (marginal) ROI with
    intervals and the budget plan, and a scale / reduce / test recommendation with its rule and reason."""
    dictionary = kpis.load_kpi_dictionary()
    rules = recommend.load_rules(recommend.kpi_goals(dictionary))
    with warehouse.get_connection() as con:
        end = con.execute(roi_window_end_sql()).fetchone()[0]
        start = end - pd.Timedelta(days=rules.window_days - 1)
        with kpi_scope(con, dictionary, materialize_bases=True) as scope:  # each inline base built once for the three levels
            levels = [
                _roi_kpis(con, dictionary, [], (start, end), scope).assign(level=ALL_LEVEL, channel_group=ALL_CHANNELS, campaign_key=None),
                _roi_kpis(con, dictionary, ["channel_group"], (start, end), scope).assign(level="channel", campaign_key=None),
                _roi_kpis(con, dictionary, ["channel_group", "campaign_key"], (start, end), scope).assign(level="campaign"),
            ]
            evidence = _group_evidence(con, dictionary, scope).assign(level="channel")
        frame = pd.concat(levels, ignore_index=True).merge(evidence, on=["level", "channel_group"], how="left")
        kpi_columns = [*ROI_MODEL_KPIS, *ROI_SPEND_KPIS, *ROI_PAID_KPIS, *ROI_MMM_KPIS, *ROI_PLAN_KPIS, "mmm_best_other_group", "plan_period_start",
                       "plan_period_end"]
        frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *kpi_columns])))  # a KPI whose source is absent stays empty
        frame = _recommend(frame, rules).assign(
            period_start=start, period_end=end, currency=reporting_currency(), rules_version=rules.version, dictionary_version=dictionary.version
        )
        frame["evidence_level"] = frame["level"].map(
            {ALL_LEVEL: "all channels", "channel": "channel group", "campaign": "campaign (attribution only; recommendation of its channel group)"}
        )
        frame["level_order"] = frame["level"].map({ALL_LEVEL: 0, "channel": 1, "campaign": 2})
        frame = frame.sort_values(["level_order", "channel_group", "campaign_key", "attribution_model"], na_position="first", kind="stable")
        meta = publish_extract(context, warehouse, con, "marketing_roi", frame)
    channel_rows = frame[(frame.level == "channel") & (frame.attribution_model == rules.reference_model)]
    summary = channel_rows[["channel_group", "ad_spend", "channel_roas", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high",
                            "planned_spend_change_pct", "recommendation", "recommendation_rule"]].dropna(subset=["recommendation"])
    return dg.MaterializeResult(
        metadata={
            **meta, "window": f"{start} to {end}", "reference_model": rules.reference_model, "rules_version": rules.version,
            "recommendations": dg.MetadataValue.json(summary["recommendation"].value_counts().to_dict()),
            "channels": dg.MetadataValue.md(summary.round(2).to_markdown(index=False)),
        }
    )


FUNNEL_KPIS = ("funnel_contacts", "funnel_stage_conversion", "funnel_conversion_from_known")
FUNNEL_TRAILING = {"stage_conversion_3m": "funnel_stage_conversion", "conversion_from_known_3m": "funnel_conversion_from_known"}


def _funnel_trailing(con, dictionary, scope: kpis.KpiScope | None = None) -> pd.DataFrame:
    """The funnel conversions over each month and the two before it, per channel group (and "(all)") and stage."""
    names = list(FUNNEL_TRAILING.values())
    parts = []
    for dims, label in ((["channel_group"], None), ([], ALL_CHANNELS)):
        part = _wide(kpis.compute_kpis(con, names, "trailing_3_months", [*dims, "stage"], dictionary=dictionary, scope=scope), ["period", *dims, "stage"],
                     names=names)
        parts.append(part.assign(channel_group=label) if label else part)
    out = pd.concat(parts, ignore_index=True).rename(columns={"period": "month", **{k: c for c, k in FUNNEL_TRAILING.items()}})
    out["month"] = pd.to_datetime(out["month"])
    return out[["month", "channel_group", "stage", *FUNNEL_TRAILING]]


# the KPIs (over funnel_stages, which stage_distinguishability reads too)
@dg.asset(deps=kpi_reads(FUNNEL_KPIS), kinds={"duckdb", "parquet", "csv"})
def funnel(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Known → engaged → MQL → SQL → opportunity → customer: contacts reaching each stage and stage conversion, by
    contact-creation month and first-touch channel group (plus an "(all)" channel); a stage the data cannot tell
    apart from the previous one is flagged, with a note, and has no stage conversion."""
    dictionary = kpis.load_kpi_dictionary()
    names = list(FUNNEL_KPIS)
    with warehouse.get_connection() as con, kpi_scope(con, dictionary, materialize_bases=True) as scope:  # funnel_stages: its table
        by_channel = _wide(
            kpis.compute_kpis(con, names, "month", ["channel_group", "stage"], dictionary=dictionary, scope=scope), ["period", "channel_group", "stage"],
            names=names,
        )
        overall = _wide(kpis.compute_kpis(con, names, "month", ["stage"], dictionary=dictionary, scope=scope), ["period", "stage"], names=names)
        overall = overall.assign(channel_group=ALL_CHANNELS)
        frame = pd.concat([overall, by_channel], ignore_index=True).rename(columns={"period": "month", **published_names("funnel")})
        # outer: a channel without contacts in a month still has its trailing window there (its month figures stay empty)
        frame = frame.merge(_funnel_trailing(con, dictionary, scope), on=["month", "channel_group", "stage"], how="outer")
        frame["month"] = pd.to_datetime(frame["month"]).dt.date
        frame["stage_order"] = frame["stage"].map({s: i + 1 for i, s in enumerate(FUNNEL_STAGES)}).astype(int)
        frame["dictionary_version"] = dictionary.version
        flags = stage_distinguishability(con, dictionary, scope)
        frame = frame.merge(flags[["stage", "stage_distinguishable", "stage_note"]], on="stage", how="left")
        frame["stage_distinguishable"] = frame["stage_distinguishable"].ne(False)  # a stage without contacts: nothing to tell apart
        frame = frame.sort_values(["month", "channel_group", "stage_order"], kind="stable")
        meta = publish_extract(context, warehouse, con, "funnel", frame)
    totals = frame[frame.channel_group == ALL_CHANNELS].groupby(["stage_order", "stage"])["contacts"].sum().reset_index()
    hidden = flags[~flags["stage_distinguishable"]]
    if frame.empty:
        meta["note"] = "No contact has a creation date (crm_contacts.created_at absent or empty): the funnel has no cohort to count."
    return dg.MaterializeResult(
        metadata={
            **meta, "all_time_by_stage": dg.MetadataValue.md(totals.to_markdown(index=False) if len(totals) else "no contacts"),
            "stages_not_distinguishable": dg.MetadataValue.json(dict(zip(hidden["stage"], hidden["stage_note"]))),
        }
    )


COHORT_CURVE_KPIS = ("cohort_customers", "cohort_active_customers", "cohort_cumulative_revenue", "cohort_cumulative_margin", "cohort_ltv")
COHORT_KPIS = ("repeat_rate_30d", "repeat_rate_60d", "repeat_rate_90d", "new_customers", "cac")


@dg.asset(deps=kpi_reads([*COHORT_CURVE_KPIS, *COHORT_KPIS]), kinds={"duckdb", "parquet", "csv"})
def cohort_ltv(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Acquisition-month cohort × acquisition channel group × months since acquisition: customers, active customers,
    cumulative revenue and gross margin, LTV per customer, 30/60/90-day repeat-purchase retention, CAC and payback month;
    per channel group, the same figures pooled over its cohorts observed for at least 12 / 24 months (COHORT_SETS)."""
    dictionary = kpis.load_kpi_dictionary()
    curve, cohort = list(COHORT_CURVE_KPIS), list(COHORT_KPIS)
    parts = []
    with warehouse.get_connection() as con:
        with kpi_scope(con, dictionary, materialize_bases=True) as scope:  # customer_months and customers: their tables
            for dims, label in ((["channel_group"], None), ([], ALL_CHANNELS)):
                c = _wide(kpis.compute_kpis(con, curve, "month", [*dims, "months_since_acquisition"], dictionary=dictionary, scope=scope),
                          ["period", *dims, "months_since_acquisition"])
                k = _wide(kpis.compute_kpis(con, cohort, "month", dims, dictionary=dictionary, skip_missing=True, scope=scope), ["period", *dims])
                part = c.merge(k, on=["period", *dims], how="left")
                parts.append(part.assign(channel_group=label) if label else part)
        frame = pd.concat(parts, ignore_index=True).rename(columns={"period": "cohort_month", **published_names("cohort_ltv")})
        for col in EXTRACT_COLUMNS["cohort_ltv"]:
            if col not in frame:
                frame[col] = float("nan")
        frame["cohort_month"] = pd.to_datetime(frame["cohort_month"]).dt.date
        frame["months_since_acquisition"] = frame["months_since_acquisition"].astype(int)
        paid_back = frame[frame["ltv_per_customer"] >= frame["cac"]]
        payback = paid_back.groupby(["cohort_month", "channel_group"])["months_since_acquisition"].min().rename("payback_month")
        frame = frame.drop(columns="payback_month").merge(payback.reset_index(), on=["cohort_month", "channel_group"], how="left")
        frame["dictionary_version"] = dictionary.version
        frame = pool_cohorts(frame, COHORT_SETS)
        frame = frame.sort_values(["cohort_month", "channel_group", "months_since_acquisition"], kind="stable")
        meta = publish_extract(context, warehouse, con, "cohort_ltv", frame)
    return dg.MaterializeResult(metadata={**meta, "cohorts": int(frame["cohort_month"].nunique())})


class ForecastConfig(dg.Config):
    horizon_months: int = 3
    interval: float = 0.90
    simulations: int = 2000
    backtest_dates: int = 6  # month-ends, starting horizon + 1 months back, whose forecasts are scored against actuals


@dg.asset(deps=upstream(forecast.opportunities_table), kinds={"duckdb", "parquet", "csv"})
def pipeline_forecast(context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Won revenue expected from the open pipeline in each of the next months, per sales segment and in total, with a
    Monte-Carlo interval; age-conditional win timing learned from closed history (no stage history needed).
    Metadata scores the same method on past month-ends against what actually closed."""
    with warehouse.get_connection() as con:
        frame = forecast.pipeline_forecast(con, horizon_months=config.horizon_months, interval=config.interval, n_sims=config.simulations)
        meta = publish_extract(context, warehouse, con, "pipeline_forecast", frame)
        as_of = forecast.latest_date(con)
        dates = [(pd.Timestamp(as_of) - pd.offsets.MonthEnd(config.horizon_months + 1 + k)).date() for k in range(config.backtest_dates)] if as_of else []
        scored = forecast.backtest(con, dates, horizon_months=config.horizon_months, interval=config.interval, n_sims=config.simulations)
    total = frame[frame["sales_segment"] == "All"]
    if as_of is None:
        meta["note"] = "crm_opportunities has no rows: no open pipeline to forecast and no history to backtest."
    return dg.MaterializeResult(
        metadata={
            **meta, "as_of": str(as_of),
            "expected_revenue_next_months": float(total["expected_revenue"].sum()),
            "backtest_mean_abs_pct_error": float(scored["abs_pct_error"].mean()) if len(scored) else None,
            "backtest_interval_coverage": float(scored["covered"].mean()) if len(scored) else None,
            "backtest_months": len(scored),
            "forecast": dg.MetadataValue.md(total[["forecast_month", "expected_revenue", "lower", "upper"]].round(0).to_markdown(index=False)),
        }
    )


# ------------------------------------------------------------------------------------------ BI datasets (DuckDB-written)


@dg.asset(deps=upstream(lambda: bi_datasets.opportunity_credit_sql(NO_CAMPAIGN, 0)), kinds={"duckdb", *extract_formats("opportunity_credit")})
def opportunity_credit(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone) -> dg.MaterializeResult:
    """One row per opportunity touchpoint (an opportunity without a touch: one "(unattributed)" row) with every attribution
    model's credit share, attributed pipeline and revenue side by side, the opportunity's dates and segment and the touch's
    channel and campaign; opportunities and touchpoints only as keyed pseudonyms (no contact, account or raw id). Parquet only."""
    dictionary = kpis.load_kpi_dictionary()
    key = warehouse.pseudonym_key_for(landing.root)
    with warehouse.get_connection() as con:
        register_pseudonym(con, key)
        try:
            meta = publish_sql_extract(context, warehouse, con, "opportunity_credit", bi_datasets.opportunity_credit_sql(NO_CAMPAIGN, dictionary.version),
                                       ordered=False)  # no ORDER BY: one row per touch in no particular order
        finally:
            drop_pseudonym(con)
    models = list(bi_datasets.per_model_columns("credit").values())
    return dg.MaterializeResult(metadata={**meta, "attribution_models": models, "dictionary_version": dictionary.version})


def mmm_weekly_sql(con) -> str:
    """mmm_weekly's SELECT for the warehouse as it is: the component columns of mmm_contributions (not week, actual,
    predicted), the media ones named by mmm_model's channel list."""
    present = column_names(con, MMM, "mmm_contributions")
    components = [c for c in present if c not in bi_datasets.MMM_WEEKLY_FIXED]
    return bi_datasets.mmm_weekly_sql(EXTRACT_COLUMNS["mmm_weekly"], components, present)


@dg.asset(deps=upstream(lambda: bi_datasets.mmm_weekly_sql(EXTRACT_COLUMNS["mmm_weekly"], ["baseline"])), kinds={"duckdb", "parquet", "csv"})
def mmm_weekly(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per week × component of modelled revenue (base components and media channels): contribution, actual
    and predicted revenue; empty without a fitted marketing-mix model."""
    with warehouse.get_connection() as con:
        meta = publish_sql_extract(context, warehouse, con, "mmm_weekly", mmm_weekly_sql(con))
    if not meta["dagster/row_count"]:
        meta["note"] = "no fitted marketing-mix model (see mmm/mmm_model): published empty with the contract columns"
    return dg.MaterializeResult(metadata=meta)


def table_copy_sql(con, name: str) -> str:
    """The SELECT of table copy ``name`` (TABLE_COPIES) for the warehouse as it is; ``con=None``: every column present."""
    schema, table, derived, order = TABLE_COPIES[name]
    present = None if con is None else column_names(con, schema, table)
    return bi_datasets.table_copy_sql(schema, table, EXTRACT_COLUMNS[name], present, derived, order)


def _build_table_copy(name: str) -> dg.AssetsDefinition:
    schema, table, _, _ = TABLE_COPIES[name]

    # a multi-asset only to name its op: a copy may share its table's name (attribution_model_comparison)
    @dg.multi_asset(name=f"publish_{name}", specs=[dg.AssetSpec(
        name, deps=upstream(lambda: table_copy_sql(None, name)), kinds={"duckdb", "parquet", "csv"},
        description=f"One row per row of {schema}.{table}, published for dashboards with a fixed column contract "
                    "(empty, with the same columns, when the upstream model was not fitted).")])
    def _copy(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.get_connection() as con:
            meta = publish_sql_extract(context, warehouse, con, name, table_copy_sql(con, name))
        return dg.MaterializeResult(metadata={**meta, "source_table": f"{schema}.{table}"})

    return _copy


table_copies = [_build_table_copy(name) for name in TABLE_COPIES]
