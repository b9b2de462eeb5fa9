"""Marketing-mix checks: forecast error, non-negative media, lift-test agreement, parameter ranges, plan constraints.

When the model was not fitted (too little data), every check WARNs with the reason instead of passing; when there is
no ad spend at all (no ad-platform export landed: nothing to model), they are skipped.
"""

import dagster as dg
import numpy as np

from marketing_assets.checks.contracts import build_contract_checks
from marketing_assets.constants import MMM, SPEND
from marketing_assets.lib.quality import table_exists
from marketing_assets.lib.refs import ref
from marketing_assets.mmm import load_model
from marketing_assets.resources import CheckThresholds, Warehouse
from marketing_assets.schemas import MMM_MODELS

MODEL = dg.AssetKey([MMM, "mmm_model"])
FIT = ref(MMM, "mmm_fit")


def _status(con) -> tuple[str, float | None]:
    rows = con.execute(f"SELECT status, holdout_mape FROM {FIT}").fetchall() if table_exists(con, MMM, "mmm_fit") else []
    status, mape = (rows[0][0], rows[0][1]) if rows else ("no model stored", None)
    if status != "fitted" and not _has_spend(con):
        status = f"skipped: no ad spend to model (no ad-platform export landed); {status}"
    return status, mape


def _has_spend(con) -> bool:
    spend = ref(SPEND, "ad_spend_daily")
    return table_exists(con, SPEND, "ad_spend_daily") and bool(con.execute(f"SELECT count(*) FROM {spend} WHERE spend > 0").fetchone()[0])


def _not_fitted(status: str) -> dg.AssetCheckResult:
    if status.startswith("skipped:"):
        return dg.AssetCheckResult(passed=True, description=status, metadata={"status": status, "skipped": True})
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description=status, metadata={"status": status})


@dg.asset_check(asset=MODEL, name="holdout_mape")
def holdout_mape(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Forecast error on the held-out last weeks stays under the threshold."""
    limit = float(thresholds.section("mmm")["max_holdout_mape"])
    with warehouse.get_connection() as con:
        status, mape = _status(con)
    if status != "fitted":
        return _not_fitted(status)
    return dg.AssetCheckResult(
        passed=mape <= limit, description=f"holdout MAPE {mape:.2%} (limit {limit:.0%})", metadata={"holdout_mape": mape, "limit": limit}
    )


@dg.asset_check(asset=MODEL, name="no_negative_contribution", blocking=True)
def no_negative_contribution(warehouse: Warehouse) -> dg.AssetCheckResult:
    """No media channel contributes negatively, in total or in any week."""
    with warehouse.get_connection() as con:
        status, _ = _status(con)
        if status != "fitted":
            return _not_fitted(status)
        channels = [r[0] for r in con.execute(f"SELECT channel FROM {ref(MMM, 'mmm_model')}").fetchall()]
        (negative_total,) = con.execute(f"SELECT count(*) FROM {ref(MMM, 'mmm_model')} WHERE contribution < 0").fetchone()
        has_weekly = table_exists(con, MMM, "mmm_contributions")
        negatives = ", ".join('count(*) FILTER (WHERE "' + c + '" < -1e-9)' for c in channels)
        weekly = con.execute(f"SELECT {negatives} FROM {ref(MMM, 'mmm_contributions')}").fetchone() if channels and has_weekly else ()
    bad_weeks = {c: int(v) for c, v in zip(channels, weekly) if v}
    ok = negative_total == 0 and not bad_weeks
    return dg.AssetCheckResult(
        passed=ok,
        description="every channel contributes ≥ 0" if ok else f"{negative_total} channel(s) negative in total; weeks negative: {bad_weeks}",
        metadata={"negative_channels": int(negative_total), "negative_weeks_by_channel": bad_weeks},
    )


@dg.asset_check(asset=MODEL, name="lift_test_agreement")
def lift_test_agreement(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when the model's incremental outcome over a lift test's window is more than the threshold of standard errors from the measured lift."""
    limit = float(thresholds.section("mmm")["max_lift_abs_z"])
    with warehouse.get_connection() as con:
        status, _ = _status(con)
        if status != "fitted":
            return _not_fitted(status)
        tests = con.execute(f"SELECT * FROM {ref(MMM, 'mmm_lift_test_fit')}").df()
    if tests.empty:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN, description="skipped: no lift tests", metadata={"skipped": True})
    zcol = next((c for c in tests.columns if c in ("z", "z_score", "abs_z")), None)
    worst = float(tests[zcol].abs().max()) if zcol else float("nan")
    return dg.AssetCheckResult(
        passed=bool(zcol) and worst <= limit,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"worst lift-test disagreement {worst:.2f} standard errors (limit {limit})",
        metadata={"tests": dg.MetadataValue.md(tests.round(3).to_markdown(index=False)), "worst_abs_z": worst},
    )


@dg.asset_check(asset=dg.AssetKey([MMM, "mmm_fit"]), name="parameters_rebuild_model", blocking=True)
def parameters_rebuild_model(warehouse: Warehouse) -> dg.AssetCheckResult:
    """mmm_fit has one row, parameters exactly when fitted, and the estimator rebuilt from them reproduces mmm_model's contribution per channel."""
    with warehouse.get_connection() as con:
        (rows,) = con.execute(f"SELECT count(*) FROM {FIT}").fetchone()
        if rows != 1:
            return dg.AssetCheckResult(passed=False, description=f"mmm_fit has {rows} rows (expected 1)", metadata={"rows": int(rows)})
        status, has_params = con.execute(f"SELECT status, params IS NOT NULL FROM {FIT}").fetchone()
        if (status == "fitted") != has_params:
            return dg.AssetCheckResult(passed=False, description=f"status {status!r} with{'' if has_params else 'out'} parameters", metadata={"status": status})
        if status != "fitted":
            return _not_fitted(_status(con)[0])
        try:
            model, frame = load_model(con)
            rebuilt = model.contributions(frame[["week", *model.channels_, *model.controls_]])[model.channels_].sum()
        except Exception as err:  # malformed parameters: the downstream assets could not rebuild the model either
            return dg.AssetCheckResult(passed=False, description=f"parameters do not rebuild the model: {err!r}", metadata={"error": repr(err)})
        published = con.execute(f"SELECT channel, contribution FROM {ref(MMM, 'mmm_model')}").df().set_index("channel")["contribution"]
    rebuilt = rebuilt.reindex(published.index.union(rebuilt.index))
    published = published.reindex(rebuilt.index)
    bad = [str(c) for c in rebuilt.index if not np.isclose(rebuilt[c], published[c], rtol=1e-9, atol=1e-6)]
    return dg.AssetCheckResult(
        passed=not bad,
        description="rebuilt model reproduces every channel's contribution" if not bad else f"rebuilt contribution differs for: {', '.join(bad)}",
        metadata={"channels": len(rebuilt), "differing_channels": bad},
    )


@dg.asset_check(asset=MODEL, name="sane_parameters")
def sane_parameters(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Decay and slope inside plausible ranges, positive half-saturation, ROI point estimate inside a finite interval."""
    t = thresholds.section("mmm")
    (d_lo, d_hi), (s_lo, s_hi) = t["decay_range"], t["slope_range"]
    with warehouse.get_connection() as con:
        status, _ = _status(con)
        if status != "fitted":
            return _not_fitted(status)
        bad = con.execute(
            f"""SELECT channel, decay, slope, half_saturation FROM {ref(MMM, 'mmm_model')}
                WHERE NOT (decay BETWEEN {d_lo} AND {d_hi}) OR NOT (slope BETWEEN {s_lo} AND {s_hi})
                   OR NOT (half_saturation > 0) OR NOT isfinite(roi) OR NOT isfinite(mroi)"""
        ).df()
    return dg.AssetCheckResult(
        passed=bad.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description="parameters in range" if bad.empty else f"out of range: {', '.join(bad.channel)}",
        metadata={"out_of_range": bad.astype(str).to_dict("records"), "decay_range": [d_lo, d_hi], "slope_range": [s_lo, s_hi]},
    )


@dg.asset_check(asset=dg.AssetKey([MMM, "mmm_budget_plan"]), name="plan_respects_total_and_bounds", blocking=True)
def plan_respects_total_and_bounds(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """The optimal plan spends exactly the current total and keeps every channel inside its bounds."""
    tol = float(thresholds.section("mmm")["budget_tolerance"])
    with warehouse.get_connection() as con:
        status, _ = _status(con)
        if status != "fitted":
            return _not_fitted(status)
        total_now, total_plan, outside = con.execute(
            f"""SELECT sum(current_spend), sum(scenario_spend),
                       count(*) FILTER (WHERE scenario_spend < bound_low * (1 - {tol}) OR scenario_spend > bound_high * (1 + {tol}))
                FROM {ref(MMM, 'mmm_budget_plan')} WHERE scenario = 'optimal_same_total'"""
        ).fetchone()
    ok = abs(total_plan - total_now) <= tol * max(abs(total_now), 1.0) and outside == 0
    return dg.AssetCheckResult(
        passed=ok,
        description=f"plan total {total_plan:,.2f} vs budget {total_now:,.2f}; {outside} channel(s) outside bounds",
        metadata={"budget": total_now, "plan_total": total_plan, "channels_outside_bounds": int(outside)},
    )


@dg.asset_check(asset=dg.AssetKey([MMM, "mmm_channel_group_roi"]), name="groups_add_up", blocking=True)
def groups_add_up(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every MMM channel is in exactly one channel group, and each group's spend and contribution are its channels' sums."""
    with warehouse.get_connection() as con:
        status, _ = _status(con)
        if status != "fitted":
            return _not_fitted(status)
        bad = con.execute(
            f"""SELECT coalesce(g.channel_group, m.channel_group) AS channel_group, g.spend AS group_spend, m.spend AS channel_spend,
                       g.contribution AS group_contribution, m.contribution AS channel_contribution
                FROM {ref(MMM, 'mmm_channel_group_roi')} g
                FULL JOIN (SELECT channel_group, sum(spend) AS spend, sum(contribution) AS contribution
                           FROM {ref(MMM, 'mmm_model')} GROUP BY ALL) m USING (channel_group)
                WHERE g.channel_group IS NULL OR m.channel_group IS NULL
                   OR abs(g.spend - m.spend) > 1e-6 * greatest(1, abs(m.spend))
                   OR abs(g.contribution - m.contribution) > 1e-6 * greatest(1, abs(m.contribution))"""
        ).df()
    return dg.AssetCheckResult(
        passed=bad.empty,
        description="channel groups add up to their MMM channels" if bad.empty else f"groups that do not add up: {', '.join(map(str, bad.channel_group))}",
        metadata={"differences": bad.round(2).astype(str).to_dict("records")},
    )


mmm_checks = [
    *build_contract_checks(MMM, MMM_MODELS),
    holdout_mape,
    no_negative_contribution,
    lift_test_agreement,
    parameters_rebuild_model,
    sane_parameters,
    plan_respects_total_and_bounds,
    groups_add_up,
]
