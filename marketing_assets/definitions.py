"""The code location: assets per layer, their checks, resources, jobs and schedules."""

import datetime as dt
import os

import dagster as dg

from marketing_assets import (
    attribution,
    checks,
    extracts,
    identity,
    jobs,
    kpi_bases,
    mmm,
    reports,
    sources,
    spend,
    touchpoints,
)
from marketing_assets.bi import bundle as dashboards
from marketing_assets.bi.server import DEFAULT_PORT, dashboard_url
from marketing_assets.column_schemas import table_schemas, with_column_schema
from marketing_assets.constants import ATTRIBUTION, EXTRACTS, IDENTITY, MMM, SOURCES, SPEND, TOUCHPOINTS
from marketing_assets.lib.owners import load_owners
from marketing_assets.resources import build_resources
from marketing_assets.sensors import all_sensors

source_assets = dg.load_assets_from_modules([sources], group_name=SOURCES, key_prefix=SOURCES)
spend_assets = dg.load_assets_from_modules([spend], group_name=SPEND, key_prefix=SPEND)
identity_assets = dg.load_assets_from_modules([identity], group_name=IDENTITY, key_prefix=IDENTITY)
touchpoint_assets = dg.load_assets_from_modules([touchpoints], group_name=TOUCHPOINTS, key_prefix=TOUCHPOINTS)
attribution_assets = dg.load_assets_from_modules([attribution], group_name=ATTRIBUTION, key_prefix=ATTRIBUTION)
mmm_assets = dg.load_assets_from_modules([mmm], group_name=MMM, key_prefix=MMM)
kpi_base_assets = kpi_bases.kpi_base_assets  # keyed kpis/<base>, group kpis
extract_assets = dg.load_assets_from_modules([extracts, reports], group_name=EXTRACTS, key_prefix=EXTRACTS)
# The data-quality report lists every check of the code location: it is built from them here.
extract_assets += [reports.build_data_quality_report(checks.all_checks, key_prefix=EXTRACTS, group_name=EXTRACTS)]

# Stakeholders read the extracts and reports: the daily 05:00 UTC refresh keeps them under a day old, so
# the UI warns after 26 h (one missed refresh plus slack) and fails after 30 h.
SCHEMAS = table_schemas()
STAKEHOLDER_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=30), warn_window=dt.timedelta(hours=26))
extract_assets = [a.map_asset_specs(lambda spec: spec.replace_attributes(freshness_policy=STAKEHOLDER_FRESHNESS)) for a in extract_assets]

# Each extract links to the dashboards that read it (`make dashboards` / `make ui` serve them on BI_PORT).
DASHBOARDS_URL = f"http://127.0.0.1:{os.environ.get('BI_PORT') or DEFAULT_PORT}"


def dashboard_links() -> dict[str, dict[str, dg.MetadataValue]]:
    """Extract name -> {"dashboard: <title>": URL} of every dashboard reading it (the spec is read once)."""
    spec = dashboards.load_spec()
    links: dict[str, dict[str, dg.MetadataValue]] = {}
    for slug, names in dashboards.dashboard_datasets(spec).items():
        for name in names:
            links.setdefault(name, {})[f"dashboard: {spec['dashboards'][slug]['title']}"] = dg.MetadataValue.url(dashboard_url(DASHBOARDS_URL, slug))
    return links


DASHBOARD_LINKS = dashboard_links()


def with_dashboard_links(spec: dg.AssetSpec) -> dg.AssetSpec:
    links = DASHBOARD_LINKS.get(spec.key.path[-1])
    return spec.merge_attributes(metadata=links) if links else spec


extract_assets = [a.map_asset_specs(with_dashboard_links) for a in extract_assets]

# Every table asset shows its columns (name, type, nullability, description) from its contract in schemas.py,
# and its layer's owner (config/owners.yaml).
all_assets = dg.map_asset_specs(
    lambda spec: with_column_schema(spec, contracts=SCHEMAS).replace_attributes(owners=[load_owners()[spec.group_name]]),
    [*source_assets, *spend_assets, *identity_assets, *touchpoint_assets, *attribution_assets, *mmm_assets, *kpi_base_assets, *extract_assets],
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=checks.all_checks,
    resources=build_resources(),
    executor=dg.in_process_executor,  # DuckDB allows one writer: every run, also "Materialize all" in the UI, runs its steps in one process
    jobs=jobs.all_jobs,
    schedules=jobs.all_schedules,
    sensors=all_sensors,
)
