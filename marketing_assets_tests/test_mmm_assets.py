"""The mmm group on demo data: fitted, plotted, checked; each check failing on bad data."""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from marketing_assets.constants import MMM
from marketing_assets_tests.conftest import checks_after_tampering


def mats(result) -> dict:
    return {
        e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.path[0] == MMM
    }


def test_mmm_group_fits_on_demo_data_with_plots_and_passing_checks(demo_graph):
    result, tmp, _ = demo_graph
    meta = mats(result)
    assert set(meta) == {"mmm_weekly_frame", "mmm_model", "mmm_fit", "mmm_lift_test_fit", "mmm_channel_group_roi", "mmm_contributions",
                         "mmm_response_curves", "mmm_budget_plan"}
    assert meta["mmm_model"]["holdout_mape"].value < 0.05
    for asset, key in [("mmm_model", "fit_vs_actual"), ("mmm_contributions", "decomposition"), ("mmm_response_curves", "response_curves"), ("mmm_budget_plan", "plan")]:
        assert "data:image/svg+xml;base64," in meta[asset][key].value
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == MMM]
    assert checks and all(e.passed for e in checks), {e.check_name: e.description for e in checks if not e.passed}
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        channels = {r[0] for r in con.execute("SELECT channel FROM mmm.mmm_model").fetchall()}
        scenarios = con.execute("SELECT count(DISTINCT scenario) FROM mmm.mmm_budget_plan").fetchone()[0]
        labels = {r[0]: (r[1], r[2]) for r in con.execute("SELECT channel, channel_group, channel_label FROM mmm.mmm_model").fetchall()}
        period_start, period_weeks, current = con.execute(
            "SELECT min(period_start), min(period_weeks), sum(current_spend) FROM mmm.mmm_budget_plan WHERE scenario = 'optimal_same_total'"
        ).fetchone()
        last_week, run_rate = con.execute(
            "SELECT max(week), (SELECT sum(google_search + google_display + meta + linkedin) FROM (SELECT * FROM mmm.mmm_weekly_frame ORDER BY week DESC LIMIT 13)) "
            "FROM mmm.mmm_weekly_frame"
        ).fetchone()
    assert channels == {"google_search", "google_display", "meta", "linkedin"}
    assert scenarios == 1 + 4 * 6  # the optimal plan and each channel ±10/25/50%
    # One channel vocabulary: MMM channels carry the channel group of their spend and a label in that vocabulary.
    assert labels == {"google_search": ("Paid Search", "Paid Search"), "google_display": ("Display", "Display"),
                      "meta": ("Paid Social", "Paid Social – Meta"), "linkedin": ("Paid Social", "Paid Social – LinkedIn")}
    # The plan covers the next quarter after the last modelled week, from the run rate of the quarter before.
    assert period_weeks == 13 and (pd.Timestamp(period_start) - pd.Timestamp(last_week)).days == 7 and current == pytest.approx(run_rate)


TAMPER = [
    ("mmm_budget_plan", "UPDATE mmm.mmm_budget_plan SET scenario_spend = scenario_spend * 1.1 WHERE scenario = 'optimal_same_total'", "plan_respects_total_and_bounds"),
    ("mmm_model", "UPDATE mmm.mmm_fit SET holdout_mape = 0.4", "holdout_mape"),
    ("mmm_model", "UPDATE mmm.mmm_model SET contribution = -1 WHERE channel = 'meta'", "no_negative_contribution"),
    ("mmm_model", "UPDATE mmm.mmm_model SET decay = 0.99 WHERE channel = 'meta'", "sane_parameters"),
    ("mmm_model", "UPDATE mmm.mmm_lift_test_fit SET z = 5", "lift_test_agreement"),
    ("mmm_fit", "UPDATE mmm.mmm_fit SET fit_seconds = -1", "contract"),
    ("mmm_fit", "UPDATE mmm.mmm_fit SET params = NULL", "parameters_rebuild_model"),
    ("mmm_fit", "UPDATE mmm.mmm_fit SET params = replace(params, '\"coefficient\": ', '\"coefficient\": 3')", "parameters_rebuild_model"),
    ("mmm_fit", "INSERT INTO mmm.mmm_fit SELECT * FROM mmm.mmm_fit", "parameters_rebuild_model"),
    ("mmm_lift_test_fit", "UPDATE mmm.mmm_lift_test_fit SET lift_se = 0", "contract"),
    ("mmm_weekly_frame", "UPDATE mmm.mmm_weekly_frame SET promo = 3 WHERE rowid = 0", "contract"),
    ("mmm_channel_group_roi", "UPDATE mmm.mmm_channel_group_roi SET spend = spend * 2 WHERE channel_group = 'Paid Social'", "groups_add_up"),
    ("mmm_channel_group_roi", "UPDATE mmm.mmm_model SET channel_group = 'Display' WHERE channel = 'meta'", "groups_add_up"),
]


@pytest.mark.parametrize(("asset", "sql", "check"), TAMPER, ids=[f"{a}-{c}" for a, _, c in TAMPER])
def test_each_mmm_check_fails_on_bad_data(demo_graph, tmp_path, asset, sql, check):
    ev = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([MMM, asset]), sql)[check]
    assert not ev.passed, ev.description


@pytest.mark.parametrize(
    ("weeks", "channels", "reason"),
    [
        (148, 0, "not fitted: 0 channels with spend (need 2)"),  # the weeks are enough: not listed as a failure
        (30, 3, "not fitted: 30 weeks of data (need 52)"),
        (10, 1, "not fitted: 10 weeks of data (need 52) and 1 channel with spend (need 2)"),
    ],
)
def test_not_fitted_reason_names_only_the_unmet_conditions(weeks, channels, reason):
    from marketing_assets.mmm import not_fitted_reason

    assert not_fitted_reason(weeks, channels) == reason


def test_the_model_is_published_as_data_and_rebuilds_downstream(demo_graph):
    """No pickle and no undeclared table: mmm_fit holds the parameters, from which the estimator is rebuilt exactly."""
    import json

    from marketing_assets.lib.mmm import MarketingMixModel

    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'mmm'").fetchall()}
        status, params = con.execute("SELECT status, params FROM mmm.mmm_fit").fetchone()
        frame = con.execute("SELECT * FROM mmm.mmm_weekly_frame ORDER BY week").df()
        contributions = con.execute("SELECT * FROM mmm.mmm_contributions ORDER BY week").df()
        lift_columns = con.execute("SELECT * FROM mmm.mmm_lift_test_fit LIMIT 0").df().columns.tolist()
    assert tables == {"mmm_weekly_frame", "mmm_model", "mmm_fit", "mmm_lift_test_fit", "mmm_contributions", "mmm_response_curves",
                      "mmm_budget_plan", "mmm_channel_group_roi"}
    assert lift_columns == ["channel", "start_date", "end_date", "lift", "lift_se", "predicted_lift", "z"]
    model = MarketingMixModel.from_params(json.loads(params))
    assert status == "fitted" and set(model.channels_) == {"google_search", "google_display", "meta", "linkedin"}
    rebuilt = model.contributions(frame[["week", *model.channels_, *model.controls_]])
    assert np.allclose(rebuilt[model.channels_].to_numpy(), contributions[model.channels_].to_numpy(), rtol=1e-12, atol=0)
