"""The day the reported data is complete to, and which reporting periods it covers in full. No Dagster import.

One definition for the reports (a "latest month" is the latest full one) and the extracts (``executive_kpis``
flags each period as complete or not, so dashboards compare full periods): the earlier of the latest ERP
order day, the latest ad-spend day and the latest opportunity day.
"""

from __future__ import annotations

import datetime as dt

from marketing_assets.constants import SOURCES, SPEND
from marketing_assets.lib.quality import table_exists
from marketing_assets.lib.refs import ref

FRESH_TO = ((SOURCES, "erp_orders", "order_date"), (SPEND, "ad_spend_daily", "date_day"), (SOURCES, "crm_opportunities", "opportunity_created_date"))


def fresh_to_sql(schema: str, table: str, column: str) -> str:
    return f"SELECT max({column})::DATE FROM {ref(schema, table)}"


def fresh_to(con) -> dt.date | None:
    """The day the reported data is complete to: the earliest of the latest days of the FRESH_TO tables present."""
    days = []
    for schema, table, column in FRESH_TO:
        if table_exists(con, schema, table):
            day = con.execute(fresh_to_sql(schema, table, column)).fetchone()[0]
            if day is not None:
                days.append(day)
    return min(days) if days else None


PERIOD_DAYS = {"week": 7}  # weeks start on Monday; a month runs to its last day


def period_end(grain: str, start: dt.date) -> dt.date:
    """Last day of the ``grain`` period starting on ``start``."""
    if grain in PERIOD_DAYS:
        return start + dt.timedelta(days=PERIOD_DAYS[grain] - 1)
    if grain == "month":
        first_of_next = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return first_of_next - dt.timedelta(days=1)
    raise ValueError(f"unknown grain {grain!r}")


def period_complete(grain: str, start: dt.date, fresh: dt.date | None) -> bool:
    """Whether the data covers the whole period (always, when nothing says how fresh it is)."""
    return fresh is None or period_end(grain, start) <= fresh
