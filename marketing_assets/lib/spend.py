"""Ad-platform spend unified to one daily table: one field mapping per platform, in one place.

No Dagster import. The SQL reads the typed source tables (``sources.ads_*``) and writes
date × platform × account × campaign rows with spend converted to the reporting currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib.channels import load_channel_config
from marketing_assets.lib.refs import ref

DEFAULT_FX_FILE = CONFIG_DIR / "fx_rates.yaml"

# platform -> source table and the SQL expression of each unified field over that table.
PLATFORM_FIELDS: dict[str, dict[str, str]] = {
    "google_ads": {
        "table": "ads_google",
        "date_day": "segments_date",
        "account_id": "customer_id",
        "currency": "customer_currency_code",
        "campaign_id": "campaign_id",
        "campaign_name": "campaign_name",
        "campaign_type": "campaign_advertising_channel_type",
        "spend_local": "metrics_cost_micros / 1e6",
        "impressions": "metrics_impressions",
        "clicks": "metrics_clicks",
        "conversions": "metrics_conversions",
        "conversion_value": "metrics_conversions_value",
    },
    "meta_ads": {
        "table": "ads_meta",
        "date_day": "date_start",
        "account_id": "account_id",
        "currency": "account_currency",
        "campaign_id": "campaign_id",
        "campaign_name": "campaign_name",
        "campaign_type": "objective",
        "spend_local": "amount_spent",
        "impressions": "impressions",
        "clicks": "clicks",
        "conversions": "conversions",
        "conversion_value": "NULL",
    },
    "linkedin_ads": {
        "table": "ads_linkedin",
        "date_day": "start_date",
        "account_id": "account_id",
        "currency": "currency",
        "campaign_id": "campaign_id",
        "campaign_name": "campaign_name",
        "campaign_type": "NULL",
        "spend_local": "cost_in_local_currency",
        "impressions": "impressions",
        "clicks": "clicks",
        "conversions": "coalesce(one_click_leads, 0) + coalesce(external_website_conversions, 0)",
        "conversion_value": "NULL",
    },
}
UNIFIED_TYPES = {
    "date_day": "DATE",
    "account_id": "VARCHAR",
    "currency": "VARCHAR",
    "campaign_id": "VARCHAR",
    "campaign_name": "VARCHAR",
    "campaign_type": "VARCHAR",
    "spend_local": "DOUBLE",
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "conversions": "DOUBLE",
    "conversion_value": "DOUBLE",
}


def load_fx_config(path: Path | str = DEFAULT_FX_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def reporting_currency(fx: Mapping[str, Any] | None = None) -> str:
    """ISO 4217 code of the reporting currency every money figure is converted to (``config/fx_rates.yaml``)."""
    return str((fx if fx is not None else load_fx_config()).get("reporting_currency", "USD")).upper()


def fx_rates_frame(fx: Mapping[str, Any]) -> pd.DataFrame:
    """Rates as rows (currency, month or None, rate); a month-specific row wins over the default."""
    rows = [(cur.upper(), None, float(rate)) for cur, rate in (fx.get("rates") or {}).items()]
    for month, rates in (fx.get("monthly") or {}).items():
        rows += [(cur.upper(), f"{month}-01", float(rate)) for cur, rate in rates.items()]
    frame = pd.DataFrame(rows, columns=["currency", "month", "rate"])
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    return frame


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def platform_channel_sql(platform: str, channels_cfg: Mapping[str, Any]) -> str:
    rule = (channels_cfg.get("ad_platforms") or {}).get(platform, {})
    default = _lit(rule.get("default_group", "Paid Other"))
    by_type = rule.get("by_campaign_type") or {}
    if not by_type:
        return default
    cases = " ".join(f"WHEN {_lit(k.upper())} THEN {_lit(v)}" for k, v in by_type.items())
    return f"CASE upper(campaign_type) {cases} ELSE {default} END"


def split_platforms(channels_cfg: Mapping[str, Any] | None = None) -> set[str]:
    """Platforms whose spend is split into channel groups by campaign type (``by_campaign_type`` rules)."""
    cfg = channels_cfg if channels_cfg is not None else load_channel_config()
    return {p for p, rule in (cfg.get("ad_platforms") or {}).items() if (rule or {}).get("by_campaign_type")}


def possible_groups(platforms: Iterable[str], channels_cfg: Mapping[str, Any] | None = None) -> set[str]:
    """Every channel group the spend of ``platforms`` can take (default and by campaign type)."""
    cfg = channels_cfg if channels_cfg is not None else load_channel_config()
    out = set()
    for platform in platforms:
        rule = (cfg.get("ad_platforms") or {}).get(platform) or {}
        out |= {rule.get("default_group", "Paid Other"), *(rule.get("by_campaign_type") or {}).values()}
    return out


def unified_spend_sql(source_schema: str, channels_cfg: Mapping[str, Any], platforms: list[str] | None = None) -> str:
    """One SELECT per platform from the field mapping, unioned: the unified rows before currency conversion."""
    parts = []
    for platform in platforms if platforms is not None else list(PLATFORM_FIELDS):
        fields = PLATFORM_FIELDS[platform]
        cols = ", ".join(f"CAST({fields[c]} AS {t}) AS {c}" for c, t in UNIFIED_TYPES.items())
        parts.append(
            f"SELECT {_lit(platform)} AS platform, * , {platform_channel_sql(platform, channels_cfg)} AS channel_group "
            f"FROM (SELECT {cols} FROM {ref(source_schema, fields['table'])})"
        )
    if not parts:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, t in UNIFIED_TYPES.items())
        return f"SELECT NULL::VARCHAR AS platform, {cols}, NULL::VARCHAR AS channel_group WHERE false"
    return "\nUNION ALL\n".join(parts)


def build_ad_spend_daily(
    con: duckdb.DuckDBPyConnection, source_schema: str, target: str, channels_cfg: Mapping[str, Any], fx: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``target``: one row per date × platform × account × campaign, spend in the reporting currency."""
    con.register("_fx_rates_df", fx_rates_frame(fx))
    reporting = reporting_currency(fx)
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
        WITH unified AS ({unified_spend_sql(source_schema, channels_cfg)}),
        priced AS (
            SELECT u.*, upper(coalesce(nullif(trim(u.currency), ''), {_lit(reporting)})) AS currency_code,
                   u.currency IS NULL OR trim(u.currency) = '' AS is_currency_assumed
            FROM unified u
        )
        SELECT p.date_day, p.platform, p.account_id, p.campaign_id, p.campaign_name, p.campaign_type,
               p.channel_group AS channel_name, p.channel_group,
               p.currency_code AS currency, p.is_currency_assumed,
               round(p.spend_local, 6) AS spend_local,
               coalesce(m.rate, d.rate) AS fx_rate,
               round(p.spend_local * coalesce(m.rate, d.rate), 6) AS spend,
               p.impressions, p.clicks, p.conversions, p.conversion_value
        FROM priced p
        LEFT JOIN _fx_rates_df m ON m.currency = p.currency_code AND m.month = date_trunc('month', p.date_day)
        LEFT JOIN (SELECT currency, rate FROM _fx_rates_df WHERE month IS NULL) d ON d.currency = p.currency_code
        ORDER BY p.date_day, p.platform, p.account_id, p.campaign_id"""
    )
    con.unregister("_fx_rates_df")
    rows, missing_fx, assumed, spend = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE fx_rate IS NULL), count(*) FILTER (WHERE is_currency_assumed), sum(spend) FROM {target}"
    ).fetchone()
    return {"rows": int(rows), "rows_without_fx_rate": int(missing_fx), "rows_currency_assumed": int(assumed), "spend": float(spend or 0.0), "reporting_currency": reporting}
