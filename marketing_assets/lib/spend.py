"""Ad-platform spend unified to one daily table, from the ad-platform registry (``config/ad_platforms.yaml``).

No Dagster import. The SQL reads the typed source tables (``sources.ads_*``) and writes
date × platform × account × campaign rows with spend converted to the reporting currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files
from marketing_assets.lib.platforms import UNIFIED_TYPES, AdPlatform, load_platforms
from marketing_assets.lib.refs import ref
from marketing_assets.lib.sql import literal

DEFAULT_FX_FILE = CONFIG_DIR / "fx_rates.yaml"


def platform_fields(platforms: Mapping[str, AdPlatform] | None = None) -> dict[str, dict[str, str]]:
    """platform -> source table (``table``) and the SQL expression of each unified field over it (the registry's)."""
    reg = platforms if platforms is not None else load_platforms()
    return {p.name: {"table": p.source_table, **p.fields} for p in reg.values()}


def load_fx_config(path: Path | str = DEFAULT_FX_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml_files.safe_load(fh)


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


def platform_channel_sql(platform: AdPlatform) -> str:
    """SQL giving the channel group of a spend row of ``platform``: by campaign type, else its default group."""
    default = literal(platform.default_group)
    if not platform.groups_by_campaign_type:
        return default
    cases = " ".join(f"WHEN {literal(k.upper())} THEN {literal(v)}" for k, v in platform.groups_by_campaign_type.items())
    return f"CASE upper(campaign_type) {cases} ELSE {default} END"


def split_platforms(platforms: Mapping[str, AdPlatform] | None = None) -> set[str]:
    """Platforms whose spend is split into channel groups by campaign type (``by_campaign_type`` rules)."""
    reg = platforms if platforms is not None else load_platforms()
    return {p.name for p in reg.values() if p.groups_by_campaign_type}


def possible_groups(names: Iterable[str], platforms: Mapping[str, AdPlatform] | None = None) -> set[str]:
    """Every channel group the spend of platforms ``names`` can take (default and by campaign type)."""
    reg = platforms if platforms is not None else load_platforms()
    out = set()
    for name in names:
        if name in reg:
            out |= {reg[name].default_group, *reg[name].groups_by_campaign_type.values()}
        else:
            out.add("Paid Other")
    return out


def unified_spend_sql(source_schema: str, platforms: Mapping[str, AdPlatform] | None = None) -> str:
    """One SELECT per registered platform from its field mapping, unioned: the unified rows before currency conversion."""
    reg = platforms if platforms is not None else load_platforms()
    parts = []
    for platform in reg.values():
        cols = ", ".join(f"CAST({platform.fields[c]} AS {t}) AS {c}" for c, t in UNIFIED_TYPES.items())
        parts.append(
            f"SELECT {literal(platform.name)} AS platform, * , {platform_channel_sql(platform)} AS channel_group "
            f"FROM (SELECT {cols} FROM {ref(source_schema, platform.source_table)})"
        )
    if not parts:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, t in UNIFIED_TYPES.items())
        return f"SELECT NULL::VARCHAR AS platform, {cols}, NULL::VARCHAR AS channel_group WHERE false"
    return "\nUNION ALL\n".join(parts)


def build_ad_spend_daily(
    con: duckdb.DuckDBPyConnection, source_schema: str, target: str, fx: Mapping[str, Any], platforms: Mapping[str, AdPlatform] | None = None
) -> dict[str, Any]:
    """Write ``target``: one row per date × platform × account × campaign, spend in the reporting currency."""
    con.register("_fx_rates_df", fx_rates_frame(fx))
    reporting = reporting_currency(fx)
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
        WITH unified AS ({unified_spend_sql(source_schema, platforms)}),
        priced AS (
            SELECT u.*, upper(coalesce(nullif(trim(u.currency), ''), {literal(reporting)})) AS currency_code,
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
