"""Spend assets: ad-platform spend unified to one daily table (one field mapping per platform, from the
ad-platform registry), in the reporting currency. Conformed data between the sources and the models that use spend
(attribution ROI, the marketing-mix model, KPIs); not identity resolution."""

import dagster as dg

from marketing_assets.constants import SOURCES, SPEND
from marketing_assets.lib.refs import this
from marketing_assets.lib.spend import build_ad_spend_daily, load_fx_config, unified_spend_sql
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse


@dg.asset(deps=upstream(lambda: unified_spend_sql(SOURCES)), kinds={"duckdb"})
def ad_spend_daily(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per date × platform × account × campaign: spend in the reporting currency, impressions, clicks, conversions."""
    fx = load_fx_config()
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SPEND}")
        stats = build_ad_spend_daily(con, SOURCES, this(SPEND, "ad_spend_daily"), fx)
        by_platform = con.execute(
            f"""SELECT platform, currency, count(*) AS rows, round(sum(spend_local), 2) AS spend_local, round(sum(spend), 2) AS spend
                FROM {this(SPEND, 'ad_spend_daily')} GROUP BY ALL ORDER BY ALL"""
        ).df()
    context.log.info(f"ad_spend_daily: {stats['rows']} rows, {stats['spend']:,.0f} {stats['reporting_currency']}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": stats["rows"],
            "spend_total": round(stats["spend"], 2),
            "reporting_currency": stats["reporting_currency"],
            "rows_without_fx_rate": stats["rows_without_fx_rate"],
            "rows_currency_assumed": stats["rows_currency_assumed"],
            "by_platform": dg.MetadataValue.md(by_platform.to_markdown(index=False) if len(by_platform) else "no ad platform data"),
            "fx_config_version": fx["version"],
        }
    )
