"""Spend checks: the unified spend's contract, and that it reconciles with every platform export."""

import dagster as dg

from marketing_assets.checks.contracts import build_contract_checks
from marketing_assets.constants import SOURCES, SPEND
from marketing_assets.lib.refs import ref
from marketing_assets.lib.spend import platform_fields
from marketing_assets.resources import CheckThresholds, Warehouse
from marketing_assets.schemas import SPEND_MODELS


@dg.asset_check(asset=dg.AssetKey([SPEND, "ad_spend_daily"]), name="spend_reconciles_to_sources", blocking=True)
def spend_reconciles_to_sources(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Per platform, rows and spend in the account currency equal the platform export's."""
    tol = float(thresholds.section("identity")["spend_tolerance"])
    src = " UNION ALL ".join(
        f"SELECT '{p}' AS platform, count(*) AS rows, coalesce(sum({f['spend_local']}), 0) AS spend FROM {ref(SOURCES, f['table'])}"
        for p, f in platform_fields().items()
    )
    with warehouse.get_connection() as con:
        frame = con.execute(
            f"""SELECT s.platform, s.rows AS source_rows, coalesce(u.rows, 0) AS unified_rows,
                       round(s.spend, 4) AS source_spend, round(coalesce(u.spend, 0), 4) AS unified_spend
                FROM ({src}) s LEFT JOIN (
                    SELECT platform, count(*) AS rows, sum(spend_local) AS spend FROM {ref(SPEND, 'ad_spend_daily')} GROUP BY ALL
                ) u USING (platform) ORDER BY platform"""
        ).df()
    bad = frame[(frame.source_rows != frame.unified_rows) | ((frame.source_spend - frame.unified_spend).abs() > tol)]
    return dg.AssetCheckResult(
        passed=bad.empty,
        description="spend reconciles with every platform export" if bad.empty else f"mismatch on {', '.join(bad.platform)}",
        metadata={"by_platform": dg.MetadataValue.md(frame.to_markdown(index=False)), "mismatched_platforms": list(bad.platform)},
    )


spend_checks = [*build_contract_checks(SPEND, SPEND_MODELS), spend_reconciles_to_sources]
