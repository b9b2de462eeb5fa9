"""The weekly MMM design matrix, built in DuckDB from the warehouse tables.

One row per Monday-start week: net revenue (sales minus returns by order week) from the ERP order lines,
spend per MMM channel from the unified daily ad spend (channels: ``mmm_channels`` of the ad-platform registry), and promotion controls derived from the orders'
``promo_code``. Weeks without orders or spend are zero rows; a partial first or last week (orders do not
cover all seven days) is dropped so that it does not look like a revenue collapse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb
import pandas as pd

from marketing_assets.lib.platforms import mmm_channel_rules, platform_labels
from marketing_assets.lib.sql import literal

ChannelRule = tuple[str, str | None, str]
"""``(platform, campaign_type or None for any, mmm_channel)``; the first matching rule wins."""

DEFAULT_CHANNEL_RULES: tuple[ChannelRule, ...] = mmm_channel_rules()
"""The registry's MMM channel rules at import (``mmm_channels`` in ``config/ad_platforms.yaml``); the functions
below read the registry when called without ``rules``."""


def channel_labels(groups: dict[str, str], rules: Sequence[ChannelRule] | None = None) -> dict[str, str]:
    """Reader-facing name of each MMM channel in the channel-group vocabulary of attribution and reports.

    ``groups`` maps an MMM channel to its channel group. A group modelled by one MMM channel names it
    (``google_search`` -> ``Paid Search``); a group split over several adds the platform
    (``meta`` -> ``Paid Social – Meta``), or the channel key where the platform does not tell them apart.
    """
    rules = mmm_channel_rules() if rules is None else rules
    names = platform_labels()  # how a platform is named where it tells two MMM channels of one group apart
    platform = {ch: plat for plat, _, ch in rules}
    members: dict[str, list[str]] = {}
    for ch, group in groups.items():
        members.setdefault(group, []).append(ch)
    labels = {}
    for ch, group in groups.items():
        if len(members[group]) == 1:
            labels[ch] = group
            continue
        plat = platform.get(ch)
        same_platform = sum(platform.get(other) == plat for other in members[group]) > 1
        suffix = ch if plat is None or same_platform else names.get(plat, plat)
        labels[ch] = f"{group} – {suffix}"
    return labels


def channel_groups_sql(rules: Sequence[ChannelRule] | None = None, ad_spend: str = "spend.ad_spend_daily") -> str:
    """SELECT ``mmm_channel``, ``channel_group``: the channel group holding most of each MMM channel's spend (a tie: the first
    group by name)."""
    rules = mmm_channel_rules() if rules is None else rules
    return f"""SELECT mmm_channel, arg_min(channel_group, (-spend, channel_group)) AS channel_group
        FROM (SELECT {channel_case_sql(rules)} AS mmm_channel, channel_group, sum(spend) AS spend
              FROM {_table(ad_spend)} GROUP BY ALL)
        WHERE mmm_channel IS NOT NULL GROUP BY mmm_channel"""


_IDENT = re.compile(r'^("?)[A-Za-z_][A-Za-z0-9_]*\1(\.("?)[A-Za-z_][A-Za-z0-9_]*\3)?$')  # [schema.]table, each part optionally quoted


def _table(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain [schema.]table name (parts optionally double-quoted, as ref() returns): {name!r}")
    return name


def channel_case_sql(
    rules: Sequence[ChannelRule], platform: str = "platform", campaign_type: str = "campaign_type"
) -> str:
    """SQL ``CASE`` mapping a spend row to its MMM channel (NULL when no rule matches)."""
    whens = []
    for plat, ctype, channel in rules:
        cond = f"{platform} = {literal(plat)}"
        if ctype is not None:
            cond += f" AND upper(trim({campaign_type})) = {literal(ctype.upper())}"
        whens.append(f"WHEN {cond} THEN {literal(channel)}")
    return f"CASE {' '.join(whens)} END" if whens else "NULL"


def _weeks_sql(con, orders: str, day: str) -> str:
    """Every Monday from the week of the first order line to the week of the last, as a VALUES list (computed from
    the two bounds: a few hundred rows, the same SQL on every engine)."""
    first, last = con.execute(f"SELECT min({day}), max({day}) FROM {orders}").fetchone()
    if first is None:
        return "SELECT CAST(NULL AS DATE) AS week WHERE false"
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    mondays = pd.date_range(first - pd.Timedelta(days=first.weekday()), last, freq="7D")
    return "SELECT CAST(w AS DATE) AS week FROM (VALUES " + ", ".join(f"(DATE '{d:%Y-%m-%d}')" for d in mondays) + ") t(w)"


def _day_expr(con: duckdb.DuckDBPyConnection, table: str, column: str) -> str:
    """Expression giving the UTC calendar day of ``column`` whatever its type (DATE, TIMESTAMP, TIMESTAMPTZ)."""
    types = {row[0]: row[1] for row in con.execute(f"DESCRIBE {table}").fetchall()}  # column name, type
    kind = str(types.get(column, "")).upper()
    if "WITH TIME ZONE" in kind or kind == "TIMESTAMPTZ":
        return f"CAST(timezone('UTC', {column}) AS DATE)"
    return f"CAST({column} AS DATE)"


def weekly_frame_sql(
    con: duckdb.DuckDBPyConnection,
    orders: str = "sources.erp_orders",
    ad_spend: str = "spend.ad_spend_daily",
    channel_rules: Sequence[ChannelRule] | None = None,
    promo_min_share: float = 0.01,
    drop_partial_weeks: bool = True,
) -> pd.DataFrame:
    """Weekly design matrix from the warehouse.

    Args:
        con: DuckDB connection holding ``orders`` (``order_date``, ``transaction_type`` sale/return,
            ``amount``, ``promo_code``) and ``ad_spend`` (``date_day``, ``platform``, ``campaign_type``, ``spend``).
        orders: order-line table.
        ad_spend: unified daily spend table (reporting currency).
        channel_rules: platform / campaign-type to MMM channel rules (default: the ad-platform registry's);
            unmatched spend is left out.
        promo_min_share: a week is a promo week when promo-coded sales are at least this share of its sales.
        drop_partial_weeks: drop a first or last week that the orders do not cover completely.

    Returns:
        DataFrame with ``week`` (Monday, datetime), ``revenue`` (sales − returns), ``sales``, ``returns``,
        ``orders``, ``promo_share``, ``promo`` (0/1) and one spend column per channel (rule order).
    """
    orders, ad_spend = _table(orders), _table(ad_spend)
    channel_rules = mmm_channel_rules() if channel_rules is None else channel_rules
    channels = list(dict.fromkeys(ch for _, _, ch in channel_rules))
    day = _day_expr(con, orders, "order_date")
    spend_day = _day_expr(con, ad_spend, "date_day")
    pivot = ", ".join(f'coalesce(sum(spend) FILTER (WHERE channel = {literal(ch)}), 0) AS "{ch}"' for ch in channels)
    spend_cols = ", ".join(f'coalesce(s."{ch}", 0.0) AS "{ch}"' for ch in channels)
    sql = f"""
    WITH lines AS (
        SELECT {day} AS d, lower(trim(transaction_type)) AS tx, coalesce(amount, 0) AS amount,
               nullif(trim(promo_code), '') IS NOT NULL AS has_promo, order_id
        FROM {orders}
    ),
    bounds AS (SELECT min(d) AS first_day, max(d) AS last_day FROM lines),
    weeks AS ({_weeks_sql(con, orders, day)}),
    rev AS (
        SELECT CAST(date_trunc('week', d) AS DATE) AS week,
               sum(amount) FILTER (WHERE tx = 'sale') AS sales,
               sum(amount) FILTER (WHERE tx = 'return') AS returns,
               sum(amount) FILTER (WHERE tx = 'sale' AND has_promo) AS promo_sales,
               count(DISTINCT order_id) FILTER (WHERE tx = 'sale') AS orders
        FROM lines GROUP BY 1
    ),
    spend_rows AS (
        SELECT CAST(date_trunc('week', {spend_day}) AS DATE) AS week, {channel_case_sql(channel_rules)} AS channel,
               coalesce(spend, 0) AS spend
        FROM {ad_spend}
    ),
    s AS (SELECT week, {pivot} FROM spend_rows WHERE channel IS NOT NULL GROUP BY week)
    SELECT w.week,
           coalesce(r.sales, 0) - coalesce(r.returns, 0) AS revenue,
           coalesce(r.sales, 0) AS sales, coalesce(r.returns, 0) AS returns, coalesce(r.orders, 0) AS orders,
           CASE WHEN coalesce(r.sales, 0) > 0 THEN coalesce(r.promo_sales, 0) / r.sales ELSE 0 END AS promo_share,
           {spend_cols},
           (SELECT first_day FROM bounds) AS _first_day, (SELECT last_day FROM bounds) AS _last_day
    FROM weeks w LEFT JOIN rev r USING (week) LEFT JOIN s USING (week)
    ORDER BY w.week
    """
    df = con.execute(sql).df()
    if df.empty:
        return pd.DataFrame(
            columns=["week", "revenue", "sales", "returns", "orders", "promo_share", "promo", *channels]
        )
    first_day, last_day = pd.Timestamp(df["_first_day"].iloc[0]), pd.Timestamp(df["_last_day"].iloc[0])
    df = df.drop(columns=["_first_day", "_last_day"])
    df["week"] = pd.to_datetime(df["week"])
    if drop_partial_weeks:
        df = df[(df["week"] >= first_day) & (df["week"] + pd.Timedelta(days=6) <= last_day)]
    df = df.reset_index(drop=True)
    df.insert(df.columns.get_loc("promo_share") + 1, "promo", (df["promo_share"] >= promo_min_share).astype(int))
    for col in ["revenue", "sales", "returns", "promo_share", *channels]:
        df[col] = df[col].astype(float)
    df["orders"] = df["orders"].astype(int)
    return df


__all__ = ["DEFAULT_CHANNEL_RULES", "ChannelRule", "channel_case_sql", "weekly_frame_sql"]
