"""Touchpoint assets: every touchpoint on a known contact, opportunity windows and journeys."""

import dagster as dg
from pydantic import Field

from marketing_assets.constants import IDENTITY, SOURCES, TOUCHPOINTS, fq
from marketing_assets.lib import touchpoints as tpl
from marketing_assets.resources import Warehouse


class LookbackConfig(dg.Config):
    lookback_days: int = Field(default=90, ge=1, le=730, description="Days before opportunity creation a touch may count (both ends inclusive).")


def _key(group: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([group, name])


@dg.asset(
    deps=[
        _key(SOURCES, "crm_marketing_touchpoints"),
        _key(SOURCES, "crm_sales_touchpoints"),
        _key(SOURCES, "web_sessions"),
        _key(IDENTITY, "contacts_resolved"),
        _key(IDENTITY, "web_client_identities"),
        _key(IDENTITY, "channel_map"),
    ],
    kinds={"duckdb"},
)
def touchpoints(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per touchpoint on a known contact (CRM marketing, CRM sales, contact-linked web sessions) with channel, group, campaign, type and time."""
    sql = tpl.touchpoints_sql(
        marketing=fq(SOURCES, "crm_marketing_touchpoints"),
        sales=fq(SOURCES, "crm_sales_touchpoints"),
        sessions=fq(SOURCES, "web_sessions"),
        contacts_resolved=fq(IDENTITY, "contacts_resolved"),
        web_clients=fq(IDENTITY, "web_client_identities"),
        channel_map=fq(IDENTITY, "channel_map"),
        contacts=fq(SOURCES, "crm_contacts"),
    )
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {TOUCHPOINTS}")
        con.execute(f"CREATE OR REPLACE TABLE {fq(TOUCHPOINTS, 'touchpoints')} AS {sql}")
        by_type = dict(con.execute(f"SELECT touchpoint_type, count(*) FROM {fq(TOUCHPOINTS, 'touchpoints')} GROUP BY ALL").fetchall())
        orphans = dict(
            con.execute(
                f"""SELECT 'marketing', count(*) FROM {fq(SOURCES, 'crm_marketing_touchpoints')} t
                      ANTI JOIN {fq(IDENTITY, 'contacts_resolved')} c USING (contact_id)
                    UNION ALL SELECT 'sales', count(*) FROM {fq(SOURCES, 'crm_sales_touchpoints')} t
                      ANTI JOIN {fq(IDENTITY, 'contacts_resolved')} c USING (contact_id)"""
            ).fetchall()
        )
        (anonymous,) = con.execute(
            f"""SELECT count(*) FROM {fq(SOURCES, 'web_sessions')} s ANTI JOIN (
                SELECT client_id FROM {fq(IDENTITY, 'web_client_identities')} WHERE canonical_contact_id IS NOT NULL) k USING (client_id)"""
        ).fetchone()
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


@dg.asset(deps=[_key(SOURCES, "crm_opportunities"), _key(TOUCHPOINTS, "touchpoints")], kinds={"duckdb"})
def opportunity_touchpoints(context: dg.AssetExecutionContext, config: LookbackConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per opportunity × touchpoint of its account's contacts inside the lookback window (default 90 days, both ends inclusive)."""
    sql = tpl.opportunity_touchpoints_sql(fq(SOURCES, "crm_opportunities"), fq(TOUCHPOINTS, "touchpoints"), config.lookback_days)
    with warehouse.get_connection() as con:
        con.execute(f"CREATE OR REPLACE TABLE {fq(TOUCHPOINTS, 'opportunity_touchpoints')} AS {sql} ORDER BY opportunity_id, touch_order")
        rows, opps, total_opps = con.execute(
            f"""SELECT count(*), count(DISTINCT opportunity_id), (SELECT count(*) FROM {fq(SOURCES, 'crm_opportunities')})
                FROM {fq(TOUCHPOINTS, 'opportunity_touchpoints')}"""
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "lookback_days": config.lookback_days,
            "opportunities_with_touchpoints": int(opps),
            "opportunities_without_touchpoints": int(total_opps - opps),
        }
    )


@dg.asset(
    deps=[_key(TOUCHPOINTS, "opportunity_touchpoints"), _key(TOUCHPOINTS, "touchpoints"), _key(SOURCES, "crm_opportunities")],
    kinds={"duckdb"},
)
def conversion_paths(context: dg.AssetExecutionContext, config: LookbackConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per journey: the ordered channel path of each opportunity, and of each closed non-converting account journey."""
    with warehouse.get_connection() as con:
        (data_end,) = con.execute(f"SELECT coalesce(max(touchpoint_date), now()::TIMESTAMP) FROM {fq(TOUCHPOINTS, 'touchpoints')}").fetchone()
        sql = tpl.conversion_paths_sql(
            fq(TOUCHPOINTS, "opportunity_touchpoints"), fq(TOUCHPOINTS, "touchpoints"), fq(SOURCES, "crm_opportunities"),
            config.lookback_days, str(data_end),
        )
        con.execute(f"CREATE OR REPLACE TABLE {fq(TOUCHPOINTS, 'conversion_paths')} AS {sql} ORDER BY journey_kind, journey_id")
        by_kind = dict(con.execute(f"SELECT journey_kind, count(*) FROM {fq(TOUCHPOINTS, 'conversion_paths')} GROUP BY ALL").fetchall())
        (distinct_paths,) = con.execute(f"SELECT count(DISTINCT path) FROM {fq(TOUCHPOINTS, 'conversion_paths')}").fetchone()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(sum(by_kind.values())),
            "by_kind": {k: int(v) for k, v in by_kind.items()},
            "distinct_paths": int(distinct_paths),
            "lookback_days": config.lookback_days,
        }
    )
