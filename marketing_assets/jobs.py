"""Jobs as asset selections, and the daily refresh schedule."""

import dagster as dg

from marketing_assets.constants import SOURCES

full_refresh = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Every asset and its checks, in one process (DuckDB allows one writer).",
)

sources_refresh = dg.define_asset_job(
    "sources_refresh",
    selection=dg.AssetSelection.groups(SOURCES),
    executor_def=dg.in_process_executor,
    description="Re-read the landing zone: every source table, the quarantine and their checks.",
)

daily_full_refresh = dg.ScheduleDefinition(
    name="daily_full_refresh",
    job=full_refresh,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    description="Full refresh every morning at 05:00 UTC, after the overnight exports land.",
)
