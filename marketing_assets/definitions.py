"""The code location: assets per layer, their checks, resources, jobs and schedules."""

import dagster as dg

from marketing_assets import attribution, checks, extracts, identity, jobs, mmm, sources, touchpoints
from marketing_assets.constants import ATTRIBUTION, EXTRACTS, IDENTITY, MMM, SOURCES, TOUCHPOINTS
from marketing_assets.resources import build_resources

source_assets = dg.load_assets_from_modules([sources], group_name=SOURCES, key_prefix=SOURCES)
identity_assets = dg.load_assets_from_modules([identity], group_name=IDENTITY, key_prefix=IDENTITY)
touchpoint_assets = dg.load_assets_from_modules([touchpoints], group_name=TOUCHPOINTS, key_prefix=TOUCHPOINTS)
attribution_assets = dg.load_assets_from_modules([attribution], group_name=ATTRIBUTION, key_prefix=ATTRIBUTION)
mmm_assets = dg.load_assets_from_modules([mmm], group_name=MMM, key_prefix=MMM)
extract_assets = dg.load_assets_from_modules([extracts], group_name=EXTRACTS, key_prefix=EXTRACTS)

defs = dg.Definitions(
    assets=[*source_assets, *identity_assets, *touchpoint_assets, *attribution_assets, *mmm_assets, *extract_assets],
    asset_checks=checks.all_checks,
    resources=build_resources(),
    jobs=[jobs.full_refresh, jobs.sources_refresh],
    schedules=[jobs.daily_full_refresh],
)
