"""Attribution checks: contracts, credit conservation per opportunity, totals that reconcile with the CRM."""

import dagster as dg

from marketing_assets.checks.contracts import build_contract_checks
from marketing_assets.constants import ATTRIBUTION, SOURCES
from marketing_assets.lib.refs import ref
from marketing_assets.resources import Warehouse
from marketing_assets.schemas import ATTRIBUTION_MODELS, ATTRIBUTION_TABLE_MODELS

REL_TOL = 1e-6


@dg.asset_check(asset=dg.AssetKey([ATTRIBUTION, "attribution_credits"]), name="credits_sum_to_pipeline", blocking=True)
def credits_sum_to_pipeline(warehouse: Warehouse) -> dg.AssetCheckResult:
    """For every model, an opportunity's credits sum to its pipeline_amount (relative tolerance 1e-6)."""
    sums = ", ".join(f"sum({m}_credit) AS {m}" for m in ATTRIBUTION_MODELS)
    bad = " + ".join(f"count(*) FILTER (WHERE abs({m} - pipeline_amount) > {REL_TOL} * greatest(abs(pipeline_amount), 1))" for m in ATTRIBUTION_MODELS)
    per_model = ", ".join(f"count(*) FILTER (WHERE abs({m} - pipeline_amount) > {REL_TOL} * greatest(abs(pipeline_amount), 1)) AS {m}" for m in ATTRIBUTION_MODELS)
    with warehouse.get_connection() as con:
        row = con.execute(
            f"""WITH per_opp AS (SELECT opportunity_id, any_value(pipeline_amount) AS pipeline_amount, {sums}
                FROM {ref(ATTRIBUTION, 'attribution_credits')} GROUP BY opportunity_id)
                SELECT count(*), {bad}, {per_model} FROM per_opp"""
        ).fetchone()
    opps, failures, by_model = row[0], row[1], dict(zip(ATTRIBUTION_MODELS, row[2:], strict=True))
    return dg.AssetCheckResult(
        passed=failures == 0,
        description=f"credits sum to pipeline for all {opps} opportunities and every model" if failures == 0 else f"{failures} opportunity × model sums off",
        metadata={"opportunities": int(opps), "failures_by_model": {k: int(v) for k, v in by_model.items()}},
    )


@dg.asset_check(asset=dg.AssetKey([ATTRIBUTION, "attribution_by_channel"]), name="reconciles_with_crm_pipeline", blocking=True)
def reconciles_with_crm_pipeline(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Per model, attributed + unattributed pipeline = total CRM pipeline (no double counting, nothing lost)."""
    with warehouse.get_connection() as con:
        (opportunities,) = con.execute(f"SELECT count(*) FROM {ref(SOURCES, 'crm_opportunities')}").fetchone()
        if not opportunities:
            return dg.AssetCheckResult(passed=True, description="skipped: crm_opportunities has no rows", metadata={"skipped": True})
        frame = con.execute(
            f"""SELECT model, sum(pipeline_amount) AS credited, (SELECT sum(CAST(pipeline_amount AS DOUBLE)) FROM {ref(SOURCES, 'crm_opportunities')}) AS crm
                FROM {ref(ATTRIBUTION, 'attribution_by_channel')} GROUP BY ALL ORDER BY model"""
        ).df()
    frame["gap"] = frame["credited"] - frame["crm"]
    bad = frame[frame["gap"].abs() > REL_TOL * frame["crm"].abs().clip(lower=1)]
    missing = sorted(set(ATTRIBUTION_MODELS) - set(frame["model"]))
    ok = bad.empty and not missing
    return dg.AssetCheckResult(
        passed=ok,
        description="every model reconciles with CRM pipeline" if ok else f"off for {list(bad.model)}; missing models {missing}",
        metadata={"by_model": dg.MetadataValue.md(frame.round(2).to_markdown(index=False)), "missing_models": missing},
    )


attribution_checks = [*build_contract_checks(ATTRIBUTION, ATTRIBUTION_TABLE_MODELS), credits_sum_to_pipeline, reconciles_with_crm_pipeline]
