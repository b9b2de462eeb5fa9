"""Extract assets: governed KPI definitions and dashboard marts, in the warehouse and as Parquet + CSV files.

Every KPI value comes from its formula in ``config/kpis.yaml`` (via :mod:`marketing_assets.lib.kpis`);
nothing here re-types a formula. Files are audited before they are published to ``MARKETING_EXTRACTS_DIR``
(write-audit-publish, see :func:`publish_extract`).
"""

import functools
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.constants import ALL_CHANNELS, ATTRIBUTION, EXTRACTS, IDENTITY, MMM, SOURCES, TOUCHPOINTS, fq
from marketing_assets.lib import forecast, kpis, recommend
from marketing_assets.lib.channels import campaign_key_sql
from marketing_assets.lib.mmm.frame import DEFAULT_CHANNEL_RULES, channel_case_sql
from marketing_assets.lib.publish import (
    AuditFailed,
    audit_no_pii,
    audit_published_columns,
    extract_files,
    stage_extract,
)
from marketing_assets.lib.quality import table_exists
from marketing_assets.resources import Warehouse

# Published column lists: a BI tool connects once; changing one is a versioned, announced change.
EXTRACT_COLUMNS: dict[str, dict[str, str]] = {
    "kpi_dictionary": {
        "name": "string", "label": "string", "description": "string", "formula": "string", "base": "string",
        "time_grains": "string", "dimensions": "string", "breakdown": "string", "source_assets": "string", "owner": "string",
        "refresh": "string", "unit": "string", "target_value": "float", "target_direction": "string",
        "threshold_value": "float", "threshold_direction": "string", "version": "int", "changed": "string",
        "dictionary_version": "int",
    },
    "executive_kpis": {
        "grain": "string", "period": "date", "kpi": "string", "dimension": "string", "dimension_value": "string",
        "value": "float", "unit": "string", "kpi_version": "int",
    },
    "marketing_roi": {
        "level": "string", "channel_group": "string", "campaign_key": "string", "attribution_model": "string",
        "period_start": "date", "period_end": "date", "spend": "float", "leads": "float",
        "attributed_pipeline": "float", "attributed_opportunities": "float", "attributed_revenue": "float",
        "attributed_customers": "float", "roas": "float", "cpa": "float", "roas_min": "float", "roas_max": "float",
        "weeks_below_break_even": "float", "mmm_channel": "string", "mmm_roi": "float", "mmm_roi_low": "float",
        "mmm_roi_high": "float", "mmm_mroi": "float", "recommendation": "string", "recommendation_rule": "string",
        "recommendation_reason": "string", "rules_version": "int", "dictionary_version": "int",
    },
    "funnel": {
        "month": "date", "channel_group": "string", "stage": "string", "stage_order": "int", "contacts": "float",
        "stage_conversion": "float", "conversion_from_known": "float", "dictionary_version": "int",
    },
    "cohort_ltv": {
        "cohort_month": "date", "channel_group": "string", "months_since_acquisition": "int", "customers": "float",
        "active_customers": "float", "cumulative_revenue": "float", "cumulative_gross_margin": "float",
        "ltv_per_customer": "float", "retention_30d": "float", "retention_60d": "float", "retention_90d": "float",
        "new_customers": "float", "cac": "float", "payback_month": "float", "dictionary_version": "int",
    },
    "pipeline_forecast": {
        "as_of": "date", "forecast_month": "date", "sales_segment": "string", "open_opportunities": "int",
        "open_pipeline": "float", "expected_revenue": "float", "lower": "float", "upper": "float", "method": "string",
    },
    "data_quality_report": {
        "section": "string", "asset_key": "string", "check_name": "string", "severity": "string", "blocking": "bool",
        "status": "string", "evaluated_at": "timestamp", "run_id": "string", "description": "string", "metric": "string",
        "value": "float", "metadata_json": "string",
    },
}
NO_CAMPAIGN = "(no campaign)"
FUNNEL_STAGES = ("known", "engaged", "mql", "sql", "opportunity", "customer")

EXECUTIVE_KPIS = {
    "week": ["total_revenue", "revenue_growth_wow", "gross_margin_pct", "roas", "cac", "conversion_rate_session_to_lead",
             "revenue_by_product", "margin_by_product", "revenue_by_channel"],
    "month": ["total_revenue", "revenue_growth_mom", "revenue_growth_yoy", "gross_margin_pct", "roas", "cac",
              "conversion_rate_session_to_lead", "inventory_turnover", "revenue_by_product", "margin_by_product", "revenue_by_channel"],
}
BREAKDOWN_COLUMNS = ("product_name", "product_id", "category", "sales_channel", "channel_group")


def publish_extract(context: dg.AssetExecutionContext, warehouse: Warehouse, con, name: str, frame: pd.DataFrame) -> dict:
    """Write-audit-publish extract ``name``: Parquet and CSV are written under ``<extracts_dir>/.staging/`` and
    audited there with the blocking checks' own audits (published columns, no PII). Only when they pass are the
    warehouse table ``extracts.<name>`` replaced and the files moved into place, in one DuckDB transaction that
    rolls back if a move fails. A failed audit fails the asset naming the extract, file and audit; the staged
    files are removed and the previously published table and files stay as they were."""
    frame = frame[list(EXTRACT_COLUMNS[name])]
    con.execute("BEGIN TRANSACTION")
    try:
        audits = [functools.partial(audit_published_columns, columns=EXTRACT_COLUMNS[name]), audit_no_pii]
        with stage_extract(frame, name, Path(warehouse.extracts_dir), audits):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {EXTRACTS}")
            con.register("_extract_df", frame)
            con.execute(f"CREATE OR REPLACE TABLE {fq(EXTRACTS, name)} AS SELECT * FROM _extract_df")
            con.unregister("_extract_df")
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
    paths = extract_files(warehouse.extracts_dir, name)
    context.log.info(f"{name}: {len(frame)} rows audited and published to {paths['parquet'].parent}")
    return {
        "dagster/row_count": len(frame),
        "files": [str(p) for p in paths.values()],
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in EXTRACT_COLUMNS[name].items()]),
    }


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


@dg.asset(
    deps=[dg.AssetKey([SOURCES, t]) for t in ("erp_orders", "erp_products", "erp_inventory", "erp_customers", "web_sessions", "crm_contacts", "crm_opportunities")]
    + [dg.AssetKey([IDENTITY, "ad_spend_daily"]), dg.AssetKey([ATTRIBUTION, "attribution_credits"]), dg.AssetKey([EXTRACTS, "kpi_dictionary"])],
    kinds={"duckdb", "parquet", "csv"},
)
def executive_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per grain (week, month) × period × KPI × dimension: revenue, growth, margin, ROAS, CAC, conversion, inventory turnover, by product and channel."""
    dictionary = kpis.load_kpi_dictionary()
    versions = {k.name: k.version for k in dictionary}
    with warehouse.get_connection() as con:
        parts = [
            _long_form(kpis.compute_kpis(con, names, grain, dictionary=dictionary, skip_missing=True), grain, versions)
            for grain, names in EXECUTIVE_KPIS.items()
        ]
        frame = pd.concat(parts, ignore_index=True)
        meta = publish_extract(context, warehouse, con, "executive_kpis", frame)
    latest = frame[(frame.grain == "month") & frame.dimension.isna()].sort_values("period").groupby("kpi").tail(1)
    return dg.MaterializeResult(
        metadata={**meta, "dictionary_version": dictionary.version, "latest_month": dg.MetadataValue.md(latest[["kpi", "period", "value", "unit"]].to_markdown(index=False))}
    )


def _wide(long: pd.DataFrame, keys: list[str], fill: str = NO_CAMPAIGN) -> pd.DataFrame:
    """Long KPI frame (``period``, dims, ``kpi``, ``value``) to one column per KPI; NULL dims become ``fill``."""
    frame = long.copy()
    for k in keys:
        if k != "period" and frame[k].dtype == object:
            frame[k] = frame[k].fillna(fill)
    return frame.set_index([*keys, "kpi"])["value"].unstack("kpi").reset_index().rename_axis(columns=None)


def _mmm_by_dims(con, dims: list[str]) -> pd.DataFrame:
    """MMM ROI / mROI per channel group (spend-weighted over its MMM channels) or per campaign (its MMM channel).

    The MMM channel of a spend row comes from the same platform / campaign-type rules as the MMM's
    weekly frame; the estimates cover the model's fit period, not the ROI window.
    """
    if not table_exists(con, MMM, "mmm_model") or not con.execute(f"SELECT count(*) FROM {fq(MMM, 'mmm_model')}").fetchone()[0]:
        return pd.DataFrame(columns=[*dims, "mmm_channel", "mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_mroi"])
    key_cols = ", ".join(f"s.{d}" for d in dims)
    return con.execute(
        f"""WITH spend AS (
                SELECT DISTINCT channel_group, {campaign_key_sql('campaign_name')} AS campaign_key,
                       {channel_case_sql(DEFAULT_CHANNEL_RULES)} AS mmm_channel
                FROM {fq(IDENTITY, 'ad_spend_daily')}
            )
            SELECT {key_cols}, string_agg(DISTINCT m.channel, ', ' ORDER BY m.channel) AS mmm_channel,
                   sum(m.contribution) / nullif(sum(m.spend), 0) AS mmm_roi,
                   sum(m.roi_low * m.spend) / nullif(sum(m.spend), 0) AS mmm_roi_low,
                   sum(m.roi_high * m.spend) / nullif(sum(m.spend), 0) AS mmm_roi_high,
                   sum(m.mroi * m.spend) / nullif(sum(m.spend), 0) AS mmm_mroi
            FROM (SELECT DISTINCT {', '.join(dims)}, mmm_channel FROM spend) s
            JOIN {fq(MMM, 'mmm_model')} m ON m.channel = s.mmm_channel
            GROUP BY ALL"""
    ).df().assign(**({"campaign_key": lambda f: f["campaign_key"].fillna(NO_CAMPAIGN)} if "campaign_key" in dims else {}))


def _roi_level(con, dictionary, rules, dims: list[str], between: tuple) -> pd.DataFrame:
    by_model = ["attribution_model", *dims]
    model_kpis = ["attributed_pipeline", "attributed_opportunities", "attributed_revenue", "attributed_customers", "channel_roas", "attributed_cpa"]
    wide = _wide(kpis.compute_kpis(con, model_kpis, "total", by_model, dictionary=dictionary, between=between), by_model)
    spend = _wide(kpis.compute_kpis(con, ["ad_spend", "new_leads"], "total", dims, dictionary=dictionary, between=between, skip_missing=True), dims)
    models = sorted(wide["attribution_model"].unique())
    spend = spend.merge(pd.DataFrame({"attribution_model": models}), how="cross")
    out = wide.merge(spend, on=by_model, how="outer").rename(
        columns={"ad_spend": "spend", "new_leads": "leads", "channel_roas": "roas", "attributed_cpa": "cpa"}
    )
    for col in ("spend", "leads", "attributed_pipeline", "attributed_opportunities", "attributed_revenue", "attributed_customers", "roas", "cpa"):
        if col not in out:
            out[col] = float("nan")
    target, break_even = rules.value("target:channel_roas"), rules.value(rules.break_even)
    spread = out.groupby(dims, dropna=False)["roas"].agg(
        roas_min="min", roas_max="max",
        models_above_target=lambda r: int((r >= target).sum()), models_below_break_even=lambda r: int((r < break_even).sum()),
    ).reset_index()
    weekly = kpis.compute_kpis(con, ["channel_roas"], "week", by_model, dictionary=dictionary, between=between)
    weekly = _wide(weekly, ["period", *by_model]).rename(columns={"channel_roas": "value"})
    weekly = weekly[weekly["attribution_model"] == rules.reference_model]
    below = recommend.trailing_weeks_below(weekly, dims, break_even).rename("weeks_below_break_even").reset_index()
    out = out.merge(spread, on=dims, how="left").merge(below, on=dims, how="left").merge(_mmm_by_dims(con, dims), on=dims, how="left")
    out["weeks_below_break_even"] = out["weeks_below_break_even"].fillna(0)
    ref = out[out["attribution_model"] == rules.reference_model]
    unpaid = (None, None, "No ad spend recorded in the window: the budget rules apply to paid channels.")
    decisions = pd.DataFrame(  # one row per channel group / campaign: small
        [recommend.recommend(row, rules) if row["spend"] > 0 else unpaid for row in ref.to_dict("records")],
        columns=["recommendation", "recommendation_rule", "recommendation_reason"],
        index=ref.index,
    )
    return out.merge(pd.concat([ref[dims], decisions], axis=1), on=dims, how="left")


@dg.asset(
    deps=[dg.AssetKey([SOURCES, "crm_opportunities"]), dg.AssetKey([SOURCES, "crm_contacts"]), dg.AssetKey([IDENTITY, "ad_spend_daily"]),
          dg.AssetKey([TOUCHPOINTS, "touchpoints"]), dg.AssetKey([ATTRIBUTION, "attribution_credits"]), dg.AssetKey([MMM, "mmm_model"]),
          dg.AssetKey([EXTRACTS, "kpi_dictionary"])],
    kinds={"duckdb", "parquet", "csv"},
)
def marketing_roi(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Per channel group and per campaign × attribution model over the trailing window: spend, leads, attributed
    pipeline / revenue / deals, ROAS, CPA, MMM ROI and mROI, and a scale / reduce / test / hold recommendation with its rule and reason."""
    dictionary = kpis.load_kpi_dictionary()
    rules = recommend.load_rules(recommend.kpi_goals(dictionary))
    with warehouse.get_connection() as con:
        end = con.execute(
            f"""SELECT coalesce(max(date_day), (SELECT max(opportunity_created_date)::DATE FROM {fq(SOURCES, 'crm_opportunities')}))
                FROM {fq(IDENTITY, 'ad_spend_daily')}"""
        ).fetchone()[0]
        start = end - pd.Timedelta(days=rules.window_days - 1)
        levels = [
            _roi_level(con, dictionary, rules, ["channel_group"], (start, end)).assign(level="channel", campaign_key=None),
            _roi_level(con, dictionary, rules, ["channel_group", "campaign_key"], (start, end)).assign(level="campaign"),
        ]
        frame = pd.concat(levels, ignore_index=True).assign(
            period_start=start, period_end=end, rules_version=rules.version, dictionary_version=dictionary.version
        )
        frame = frame.sort_values(["level", "channel_group", "campaign_key", "attribution_model"], na_position="first", kind="stable")
        meta = publish_extract(context, warehouse, con, "marketing_roi", frame)
    channel_rows = frame[(frame.level == "channel") & (frame.attribution_model == rules.reference_model)]
    summary = channel_rows[["channel_group", "spend", "attributed_revenue", "roas", "mmm_mroi", "recommendation", "recommendation_rule"]]
    return dg.MaterializeResult(
        metadata={
            **meta, "window": f"{start} to {end}", "reference_model": rules.reference_model, "rules_version": rules.version,
            "recommendations": dg.MetadataValue.json(channel_rows["recommendation"].value_counts().to_dict()),
            "channels": dg.MetadataValue.md(summary.round(2).to_markdown(index=False)),
        }
    )


@dg.asset(
    deps=[dg.AssetKey([SOURCES, "crm_contacts"]), dg.AssetKey([SOURCES, "crm_opportunities"]), dg.AssetKey([TOUCHPOINTS, "touchpoints"]),
          dg.AssetKey([EXTRACTS, "kpi_dictionary"])],
    kinds={"duckdb", "parquet", "csv"},
)
def funnel(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Known → engaged → MQL → SQL → opportunity → customer: contacts reaching each stage and stage conversion, by
    contact-creation month and first-touch channel group (plus an "(all)" channel)."""
    dictionary = kpis.load_kpi_dictionary()
    names = ["funnel_contacts", "funnel_stage_conversion", "funnel_conversion_from_known"]
    with warehouse.get_connection() as con:
        by_channel = _wide(kpis.compute_kpis(con, names, "month", ["channel_group", "stage"], dictionary=dictionary), ["period", "channel_group", "stage"])
        overall = _wide(kpis.compute_kpis(con, names, "month", ["stage"], dictionary=dictionary), ["period", "stage"]).assign(channel_group=ALL_CHANNELS)
        frame = pd.concat([overall, by_channel], ignore_index=True).rename(
            columns={"period": "month", "funnel_contacts": "contacts", "funnel_stage_conversion": "stage_conversion", "funnel_conversion_from_known": "conversion_from_known"}
        )
        frame["month"] = pd.to_datetime(frame["month"]).dt.date
        frame["stage_order"] = frame["stage"].map({s: i + 1 for i, s in enumerate(FUNNEL_STAGES)}).astype(int)
        frame["dictionary_version"] = dictionary.version
        frame = frame.sort_values(["month", "channel_group", "stage_order"], kind="stable")
        meta = publish_extract(context, warehouse, con, "funnel", frame)
    totals = frame[frame.channel_group == ALL_CHANNELS].groupby(["stage_order", "stage"])["contacts"].sum().reset_index()
    return dg.MaterializeResult(metadata={**meta, "all_time_by_stage": dg.MetadataValue.md(totals.to_markdown(index=False))})


@dg.asset(
    deps=[dg.AssetKey([SOURCES, t]) for t in ("erp_orders", "erp_products")]
    + [dg.AssetKey([IDENTITY, "accounts_resolved"]), dg.AssetKey([IDENTITY, "ad_spend_daily"]), dg.AssetKey([TOUCHPOINTS, "touchpoints"]),
       dg.AssetKey([EXTRACTS, "kpi_dictionary"])],
    kinds={"duckdb", "parquet", "csv"},
)
def cohort_ltv(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Acquisition-month cohort × acquisition channel group × months since acquisition: customers, active customers,
    cumulative revenue and gross margin, LTV per customer, 30/60/90-day repeat-purchase retention, CAC and payback month."""
    dictionary = kpis.load_kpi_dictionary()
    curve = ["cohort_customers", "cohort_active_customers", "cohort_cumulative_revenue", "cohort_cumulative_margin", "cohort_ltv"]
    cohort = ["repeat_rate_30d", "repeat_rate_60d", "repeat_rate_90d", "new_customers", "cac"]
    parts = []
    with warehouse.get_connection() as con:
        for dims, label in ((["channel_group"], None), ([], ALL_CHANNELS)):
            c = _wide(kpis.compute_kpis(con, curve, "month", [*dims, "months_since_acquisition"], dictionary=dictionary), ["period", *dims, "months_since_acquisition"])
            k = _wide(kpis.compute_kpis(con, cohort, "month", dims, dictionary=dictionary, skip_missing=True), ["period", *dims])
            part = c.merge(k, on=["period", *dims], how="left")
            parts.append(part.assign(channel_group=label) if label else part)
        frame = pd.concat(parts, ignore_index=True).rename(
            columns={"period": "cohort_month", "cohort_customers": "customers", "cohort_active_customers": "active_customers",
                     "cohort_cumulative_revenue": "cumulative_revenue", "cohort_cumulative_margin": "cumulative_gross_margin",
                     "cohort_ltv": "ltv_per_customer", "repeat_rate_30d": "retention_30d", "repeat_rate_60d": "retention_60d",
                     "repeat_rate_90d": "retention_90d"}
        )
        for col in EXTRACT_COLUMNS["cohort_ltv"]:
            if col not in frame:
                frame[col] = float("nan")
        frame["cohort_month"] = pd.to_datetime(frame["cohort_month"]).dt.date
        frame["months_since_acquisition"] = frame["months_since_acquisition"].astype(int)
        paid_back = frame[frame["ltv_per_customer"] >= frame["cac"]]
        payback = paid_back.groupby(["cohort_month", "channel_group"])["months_since_acquisition"].min().rename("payback_month")
        frame = frame.drop(columns="payback_month").merge(payback.reset_index(), on=["cohort_month", "channel_group"], how="left")
        frame["dictionary_version"] = dictionary.version
        frame = frame.sort_values(["cohort_month", "channel_group", "months_since_acquisition"], kind="stable")
        meta = publish_extract(context, warehouse, con, "cohort_ltv", frame)
    return dg.MaterializeResult(metadata={**meta, "cohorts": int(frame["cohort_month"].nunique())})


class ForecastConfig(dg.Config):
    horizon_months: int = 3
    interval: float = 0.90
    simulations: int = 2000
    backtest_dates: int = 6  # month-ends, starting horizon + 1 months back, whose forecasts are scored against actuals


@dg.asset(deps=[dg.AssetKey([SOURCES, "crm_opportunities"])], kinds={"duckdb", "parquet", "csv"})
def pipeline_forecast(context: dg.AssetExecutionContext, config: ForecastConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """Won revenue expected from the open pipeline in each of the next months, per sales segment and in total, with a
    Monte-Carlo interval; age-conditional win timing learned from closed history (no stage history needed).
    Metadata scores the same method on past month-ends against what actually closed."""
    with warehouse.get_connection() as con:
        frame = forecast.pipeline_forecast(con, horizon_months=config.horizon_months, interval=config.interval, n_sims=config.simulations)
        meta = publish_extract(context, warehouse, con, "pipeline_forecast", frame)
        as_of = forecast.latest_date(con)
        dates = [(pd.Timestamp(as_of) - pd.offsets.MonthEnd(config.horizon_months + 1 + k)).date() for k in range(config.backtest_dates)]
        scored = forecast.backtest(con, dates, horizon_months=config.horizon_months, interval=config.interval, n_sims=config.simulations)
    total = frame[frame["sales_segment"] == "All"]
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
