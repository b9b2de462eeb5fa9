"""Jobs as asset selections, and the daily and weekly schedules.

Every asset reads or writes the one DuckDB file, which admits a single writer process. So every
job runs in process and carries the ``WAREHOUSE_RUN_TAG``; the instance queues runs with that tag
one at a time (``concurrency.runs.tag_concurrency_limits`` in ``deploy/dagster.local.yaml``), so a
sensor-triggered run and a scheduled run never hold the file together.
"""

import dagster as dg

from marketing_assets.constants import ATTRIBUTION, MMM, SOURCES

WAREHOUSE_TAG_KEY = "marketing_assets/warehouse"
WAREHOUSE_RUN_TAG = {WAREHOUSE_TAG_KEY: "duckdb"}
"""Run tag of every run writing the warehouse; the instance limits it to one run in progress."""


def _asset_job(name: str, selection: dg.AssetSelection, description: str):
    return dg.define_asset_job(
        name,
        selection=selection,
        executor_def=dg.in_process_executor,
        run_tags=WAREHOUSE_RUN_TAG,
        description=description,
    )


full_refresh = _asset_job(
    "full_refresh",
    dg.AssetSelection.all(),
    "Every asset and its checks, in one process (DuckDB allows one writer).",
)

sources_refresh = _asset_job(
    "sources_refresh",
    dg.AssetSelection.groups(SOURCES),
    "Re-read the landing zone: every source table, the quarantine and their checks.",
)

# Attribution reads the touchpoint tables as they stand; what consumes the credits (the
# executive KPI extract) is refreshed with it so dashboards never mix two attribution runs.
attribution_refresh = _asset_job(
    "attribution_refresh",
    dg.AssetSelection.groups(ATTRIBUTION).downstream(),
    "Recompute attribution from the current touchpoints, and the extracts built on it.",
)

mmm_refit = _asset_job(
    "mmm_refit",
    dg.AssetSelection.groups(MMM).downstream(),
    "Refit the marketing-mix model from the current weekly frame, and everything built on it.",
)

# The landing sensor narrows each run to the changed sources and their downstream assets
# (``RunRequest.asset_selection``), so the job itself spans the whole graph.
landing_refresh = _asset_job(
    "landing_refresh",
    dg.AssetSelection.all(),
    "Launched by landing_zone_sensor: the source tables whose files changed and everything downstream.",
)

daily_full_refresh = dg.ScheduleDefinition(
    name="daily_full_refresh",
    job=full_refresh,
    cron_schedule="0 5 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full refresh every morning at 05:00 UTC, after the overnight exports land.",
)

weekly_mmm_refit = dg.ScheduleDefinition(
    name="weekly_mmm_refit",
    job=mmm_refit,
    cron_schedule="0 6 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refit the marketing-mix model every Monday at 06:00 UTC, after the daily refresh.",
)

all_jobs = [full_refresh, sources_refresh, attribution_refresh, mmm_refit, landing_refresh]
all_schedules = [daily_full_refresh, weekly_mmm_refit]
