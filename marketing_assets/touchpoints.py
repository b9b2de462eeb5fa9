"""Touchpoint assets: every touchpoint on a known contact, opportunity windows and journeys."""

import dagster as dg
from pydantic import Field

from marketing_assets.constants import IDENTITY, SOURCES, TOUCHPOINTS
from marketing_assets.lib import touchpoints as tpl
from marketing_assets.lib.refs import ref, this
from marketing_assets.lib.sql import unordered_writes
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse


class LookbackConfig(dg.Config):
    lookback_days: int = Field(default=90, ge=1, le=730, description="Days before opportunity creation a touch may count (both ends inclusive).")


def touchpoints_statements() -> dict[str, str]:
    """The statements of the ``touchpoints`` asset: the table, and the metadata counts over its inputs."""
    sql = tpl.touchpoints_sql(
        marketing=ref(SOURCES, "crm_marketing_touchpoints"),
        sales=ref(SOURCES, "crm_sales_touchpoints"),
        sessions=ref(SOURCES, "web_sessions"),
        contacts_resolved=ref(IDENTITY, "contacts_resolved"),
        web_clients=ref(IDENTITY, "web_client_identities"),
        channel_map=ref(IDENTITY, "channel_map"),
        contacts=ref(SOURCES, "crm_contacts"),
    )
    return {
        "create": f"CREATE OR REPLACE TABLE {this(TOUCHPOINTS, 'touchpoints')} AS {sql}",
        "orphans": f"""SELECT 'marketing', count(*) FROM {ref(SOURCES, 'crm_marketing_touchpoints')} t
                      ANTI JOIN {ref(IDENTITY, 'contacts_resolved')} c USING (contact_id)
                    UNION ALL SELECT 'sales', count(*) FROM {ref(SOURCES, 'crm_sales_touchpoints')} t
                      ANTI JOIN {ref(IDENTITY, 'contacts_resolved')} c USING (contact_id)""",
        "anonymous": f"""SELECT count(*) FROM {ref(SOURCES, 'web_sessions')} s ANTI JOIN (
                SELECT client_id FROM {ref(IDENTITY, 'web_client_identities')} WHERE canonical_contact_id IS NOT NULL) k USING (client_id)""",
    }


@dg.asset(deps=upstream(touchpoints_statements), kinds={"duckdb"})
def touchpoints(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per touchpoint on a known contact (CRM marketing, CRM sales, contact-linked web sessions) with channel, group, campaign, type and time."""
    sql = touchpoints_statements()
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {TOUCHPOINTS}")
        with unordered_writes(con):
            con.execute(sql["create"])
        by_type = dict(con.execute(f"SELECT touchpoint_type, count(*) FROM {this(TOUCHPOINTS, 'touchpoints')} GROUP BY ALL").fetchall())
        orphans = dict(con.execute(sql["orphans"]).fetchall())
        (anonymous,) = con.execute(sql["anonymous"]).fetchone()
    total = sum(by_type.values())
    context.log.info(f"touchpoints: {total} rows {by_type}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "by_type": {k: int(v) for k, v in by_type.items()},
            "crm_touchpoints_on_unknown_contacts": {k: int(v) for k, v in orphans.items()},
            "anonymous_web_sessions": int(anonymous),
        }
    )


def opportunity_touchpoints_statements(lookback_days: int) -> dict[str, str]:
    """The statements of ``opportunity_touchpoints`` for a lookback window of ``lookback_days``: the lead-creation touches
    (a temporary table, ``_ot_lead``, freed before the windowed statement sorts the touches), the table, its counts."""
    opportunities, touches = ref(SOURCES, "crm_opportunities"), ref(TOUCHPOINTS, "touchpoints")
    return {
        "lead": f"CREATE OR REPLACE TEMP TABLE _ot_lead AS {tpl.lead_touches_sql(opportunities, touches, [lookback_days])}",
        # no ORDER BY: readers order by touch_order
        "create": f"""CREATE OR REPLACE TABLE {this(TOUCHPOINTS, 'opportunity_touchpoints')} AS
                {tpl.opportunity_touchpoints_sql(opportunities, touches, lookback_days, lead_touches='_ot_lead')}""",
        "drop": "DROP TABLE IF EXISTS _ot_lead",
        "counts": f"""SELECT count(*), count(DISTINCT opportunity_id), (SELECT count(*) FROM {ref(SOURCES, 'crm_opportunities')})
                FROM {this(TOUCHPOINTS, 'opportunity_touchpoints')}""",
    }


@dg.asset(deps=upstream(lambda: opportunity_touchpoints_statements(LookbackConfig().lookback_days)), kinds={"duckdb"})
def opportunity_touchpoints(context: dg.AssetExecutionContext, config: LookbackConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per opportunity × touchpoint of its account's contacts inside the lookback window (default 90 days, both ends inclusive)."""
    sql = opportunity_touchpoints_statements(config.lookback_days)
    with warehouse.get_connection() as con:
        con.execute(sql["lead"])
        with unordered_writes(con):
            con.execute(sql["create"])
        con.execute(sql["drop"])
        rows, opps, total_opps = con.execute(sql["counts"]).fetchone()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "lookback_days": config.lookback_days,
            "opportunities_with_touchpoints": int(opps),
            "opportunities_without_touchpoints": int(total_opps - opps),
        }
    )


def data_end_sql() -> str:
    """The end of the touchpoint data: non-converting journeys are closed relative to it."""
    return f"SELECT coalesce(max(touchpoint_date), now()::TIMESTAMP) FROM {ref(TOUCHPOINTS, 'touchpoints')}"


def conversion_paths_create(lookback_days: int, data_end: str) -> str:
    sql = tpl.conversion_paths_sql(
        ref(TOUCHPOINTS, "opportunity_touchpoints"), ref(TOUCHPOINTS, "touchpoints"), ref(SOURCES, "crm_opportunities"), lookback_days, data_end
    )
    return f"CREATE OR REPLACE TABLE {this(TOUCHPOINTS, 'conversion_paths')} AS {sql}"


# data_end is read at run time; any timestamp builds the same table references
@dg.asset(deps=upstream(data_end_sql, lambda: conversion_paths_create(LookbackConfig().lookback_days, "2000-01-01 00:00:00")), kinds={"duckdb"})
def conversion_paths(context: dg.AssetExecutionContext, config: LookbackConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per journey: the ordered channel path of each opportunity, and of each closed non-converting account journey."""
    with warehouse.get_connection() as con:
        (data_end,) = con.execute(data_end_sql()).fetchone()
        with unordered_writes(con):
            con.execute(conversion_paths_create(config.lookback_days, str(data_end)))
        by_kind = dict(con.execute(f"SELECT journey_kind, count(*) FROM {this(TOUCHPOINTS, 'conversion_paths')} GROUP BY ALL").fetchall())
        (distinct_paths,) = con.execute(f"SELECT count(DISTINCT path) FROM {this(TOUCHPOINTS, 'conversion_paths')}").fetchone()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(sum(by_kind.values())),
            "by_kind": {k: int(v) for k, v in by_kind.items()},
            "distinct_paths": int(distinct_paths),
            "lookback_days": config.lookback_days,
        }
    )
