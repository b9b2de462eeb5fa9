"""Marketing-mix model library: transforms, solver, estimator, calibration, optimiser, weekly frame."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks as ec

from marketing_assets.lib.mmm import (
    GeometricAdstock,
    HillSaturation,
    MarketingMixModel,
    WeibullAdstock,
    geometric_adstock,
    hill,
    hill_derivative,
    holdout_mape,
    optimize_allocation,
    solve_direct_nnls,
    solve_partialled_nnls,
    weekly_frame_sql,
)
from marketing_assets.lib.mmm.optimize import ChannelCurve, percentile_interval
from marketing_assets.lib.mmm.search import ROI_FLOOR, Problem, lift_design, normal_deviance
from marketing_assets.lib.mmm.params import COMPUTE_SETTINGS

FAST = {"n_init": 16, "n_passes": 1, "n_bootstrap": 0}


# ---------------------------------------------------------------- transforms
def test_geometric_adstock_hand_values() -> None:
    x = [100.0, 0.0, 0.0, 50.0]
    # a0 = 100, a1 = 50, a2 = 25, a3 = 50 + 12.5
    assert np.allclose(geometric_adstock(x, 0.5), [100.0, 50.0, 25.0, 62.5])
    assert np.allclose(geometric_adstock(x, 0.5, normalize=True), [50.0, 25.0, 12.5, 31.25])
    two = geometric_adstock(np.array([[1.0, 1.0], [1.0, 1.0]]), [0.0, 0.9])
    assert np.allclose(two, [[1.0, 1.0], [1.0, 1.9]])
    with pytest.raises(ValueError):
        geometric_adstock(x, 1.0)


def test_hill_hand_values_and_derivative() -> None:
    assert np.allclose(hill([0.0, 10.0, 20.0], 10.0, 1.0), [0.0, 0.5, 2 / 3])
    # 20**2 / (20**2 + 10**2) = 0.8
    assert np.isclose(hill([20.0], 10.0, 2.0)[0], 0.8)
    assert hill([-5.0], 10.0, 2.0)[0] == 0.0
    x, eps = np.array([3.0, 12.0, 40.0]), 1e-6
    numeric = (hill(x + eps, 10.0, 1.7) - hill(x - eps, 10.0, 1.7)) / (2 * eps)
    assert np.allclose(hill_derivative(x, 10.0, 1.7), numeric, rtol=1e-6)


def test_weibull_adstock_and_transformers() -> None:
    x = np.array([1.0, 0.0, 0.0, 0.0])
    w = WeibullAdstock(shape=1.0, scale=0.5, max_lag=2).fit_transform(x[:, None])[:, 0]
    # weights exp(-(l / (0.5 * 2))) for l = 0, 1, 2 -> 1, e^-1, e^-2; nothing beyond max_lag
    assert np.allclose(w, [1.0, np.exp(-1.0), np.exp(-2.0), 0.0])
    pipe = make_pipeline(GeometricAdstock(decay=0.5), HillSaturation(half_saturation=100.0, slope=1.0))
    out = pipe.fit_transform(np.array([[100.0], [0.0]]))
    assert np.allclose(out[:, 0], [0.5, 50.0 / 150.0])
    assert clone(pipe).get_params()["geometricadstock__decay"] == 0.5


# ---------------------------------------------------------------- solver
def test_partialled_nnls_matches_direct_nnls() -> None:
    rng = np.random.default_rng(3)
    n = 120
    Z = np.column_stack([np.ones(n), np.linspace(-1, 1, n), rng.normal(size=n), -rng.normal(size=n)])
    M = rng.uniform(0, 1, size=(n, 4))
    y = (
        Z @ np.array([5.0, -2.0, 1.5, -0.7])
        + M @ np.array([2.0, 0.0, 1.0, 0.5])
        - 1.2 * M[:, 1]
        + rng.normal(0, 0.1, n)
    )
    for lam in (0.0, 0.5):
        g1, b1 = solve_partialled_nnls(Z, M, y, lam)
        g2, b2 = solve_direct_nnls(Z, M, y, lam)
        assert np.all(b1 >= 0)
        assert np.allclose(b1, b2, atol=1e-7) and np.allclose(g1, g2, atol=1e-7)

        def obj(g: np.ndarray, b: np.ndarray, lam: float = lam) -> float:
            return float(np.sum((y - Z @ g - M @ b) ** 2) + lam * b @ b)

        assert obj(g1, b1) <= obj(g2, b2) + 1e-9
    assert b1[1] == 0.0  # the negatively related column is clipped at zero


# ---------------------------------------------------------------- search priors and lift designs
def test_normal_deviance_plain_and_pooled_hand_values() -> None:
    # plain: ((0 - 1) / 0.5)^2 + ((2 - 1) / 0.5)^2 = 4 + 4
    assert normal_deviance(np.array([0.0, 2.0]), 1.0, 0.5) == pytest.approx(8.0)
    # pooled: values ~ N(m, 1), m ~ N(0, 1); m = (2 * mean 1 + 1 * 0) / (2 + 1) = 2/3
    # deviance = (2/3)^2 + (4/3)^2 + (2/3)^2 = 24/9
    assert normal_deviance(np.array([0.0, 2.0]), 0.0, 1.0, 1.0) == pytest.approx(24 / 9)
    # a vague hyperprior leaves only the scatter around the values' mean: 1 + 1
    assert normal_deviance(np.array([0.0, 2.0]), 0.0, 1e6, 1.0) == pytest.approx(2.0)
    # one center per value: ((0 - 1) / 1)^2 + ((2 - 4) / 1)^2
    assert normal_deviance(np.array([0.0, 2.0]), np.array([1.0, 4.0]), 1.0) == pytest.approx(5.0)


def test_perturbed_priors_draw_centers_per_channel_or_shared() -> None:
    model = MarketingMixModel(priors={"slope": (1.0, 0.5), "decay": (0.3, 0.1)}, prior_pooling={"slope": 0.3})
    model.channels_ = ["a", "b", "c"]
    draws = [model._perturbed_priors(np.random.default_rng(seed)) for seed in range(400)]
    assert all(np.ndim(d["slope"][0]) == 0 and np.shape(d["decay"][0]) == (3,) for d in draws)
    assert all(d["slope"][1] == 0.5 and d["decay"][1] == 0.1 for d in draws)
    # slope centers are log-normal around 1 (log-sd 0.5), decay centers normal around 0.3 (sd 0.1)
    log_slope = np.log([d["slope"][0] for d in draws])
    assert abs(log_slope.mean()) < 0.08 and log_slope.std() == pytest.approx(0.5, rel=0.15)
    decay = np.concatenate([d["decay"][0] for d in draws])
    assert decay.mean() == pytest.approx(0.3, abs=0.01) and decay.std() == pytest.approx(0.1, rel=0.1)


def test_roi_prior_deviance_hand_values() -> None:
    spend = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    problem = Problem(
        np.ones((2, 1)), spend, np.zeros(2), None, 0, 1, 1.0, 0.0, priors={"roi": (np.e, 0.5)}, y_scale=2.0
    )
    M = np.array([[0.5, 1.0, 0.0], [0.5, 0.0, 0.0]])
    # channel 0: (0.5 + 0.5) * 2 * y_scale 2 / spend 4 = ROI 1; channel 1: zero effect -> ROI_FLOOR;
    # channel 2 has no spend and no ROI
    expected = ((0.0 - 1.0) / 0.5) ** 2 + ((np.log(ROI_FLOOR) - 1.0) / 0.5) ** 2
    assert problem.roi_deviance(M, np.array([2.0, 0.0, 5.0])) == pytest.approx(expected)
    assert Problem(np.ones((2, 1)), spend, np.zeros(2), None, 0, 1, 1.0, 0.0).roi_deviance(M, np.ones(3)) == 0.0
    with pytest.raises(ValueError):
        Problem(np.ones((2, 1)), spend, np.zeros(2), None, 0, 1, 1.0, 0.0, pooling={"roi": 0.3})


def test_lift_design_hand_values() -> None:
    spend = np.array([100.0, 0.0, 100.0, 0.0])
    window = np.array([False, True, True, False])
    # adstock (decay 0.5) 100, 50, 125, 62.5 -> hill(k=100) 1/2, 1/3, 5/9, 5/13: the window holds 1/3 + 5/9
    assert lift_design(spend, 0.5, 100.0, 1.0, window, "window_contribution") == pytest.approx(8 / 9)
    # without the window's spend: adstock 100, 50, 25, 12.5 -> 1/2, 1/3, 1/5, 1/9; the difference from the
    # window's first week on, carryover after the window included: (5/9 - 1/5) + (5/13 - 1/9)
    assert lift_design(spend, 0.5, 100.0, 1.0, window, "incremental") == pytest.approx(16 / 45 + 32 / 117)


# ---------------------------------------------------------------- simulation helpers
def simulate(n: int = 156, seed: int = 0, noise: float = 0.0) -> tuple[pd.DataFrame, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2022-01-03", periods=n, freq="7D")
    spend = {
        "search": rng.uniform(20, 80, n) * 1000,
        "social": np.where(rng.uniform(size=n) < 0.3, 0.0, rng.uniform(10, 60, n) * 1000),
    }
    params = {
        "search": {"decay": 0.3, "half_saturation": 60000.0, "slope": 1.0, "coefficient": 200000.0},
        "social": {"decay": 0.6, "half_saturation": 60000.0, "slope": 1.0, "coefficient": 120000.0},
    }
    promo = (np.arange(n) % 13 == 5).astype(float)
    phase = 2 * np.pi * weeks.dayofyear.to_numpy() / 365.25
    y = 1_000_000 + 800 * np.arange(n) + 40_000 * np.sin(phase) + 60_000 * promo
    for ch, p in params.items():
        y = y + p["coefficient"] * hill(geometric_adstock(spend[ch], p["decay"]), p["half_saturation"], p["slope"])
    y = y + rng.normal(0, noise, n)
    X = pd.DataFrame({"week": weeks, **spend, "promo": promo})
    return X, y, params


def true_roi(X: pd.DataFrame, params: dict, ch: str) -> float:
    p = params[ch]
    return float(
        p["coefficient"]
        * hill(geometric_adstock(X[ch].to_numpy(), p["decay"]), p["half_saturation"], p["slope"]).sum()
        / X[ch].sum()
    )


# ---------------------------------------------------------------- estimator
def test_recovers_known_parameters_on_noiseless_simulation() -> None:
    X, y, params = simulate()
    model = MarketingMixModel(
        channels=["search", "social"], controls=["promo"], n_init=32, n_passes=3, n_bootstrap=0, priors={}
    )
    model.fit(X, y)
    assert model.diagnostics_["r2"] > 0.999
    for ch in ("search", "social"):
        assert model.channel_params_[ch]["decay"] == pytest.approx(params[ch]["decay"], abs=0.1)
        assert model.roi_[ch] == pytest.approx(true_roi(X, params, ch), rel=0.05)
    contrib = model.contributions(X)
    assert np.allclose(contrib["predicted"], model.predict(X))
    assert set(contrib.columns) >= {"baseline", "trend", "seasonality", "promo", "search", "social"}
    assert contrib["promo"].max() == pytest.approx(60_000, rel=0.05)
    assert (contrib[["search", "social"]] >= 0).all().all()
    assert holdout_mape(model.set_params(n_init=8, n_passes=1), X, y, holdout_weeks=26) < 0.01


def test_lift_test_moves_estimate_toward_the_lift() -> None:
    X, y, _ = simulate(noise=30_000, seed=5)
    base = MarketingMixModel(channels=["search", "social"], controls=["promo"], **FAST).fit(X, y)
    # a lift 40% above what the uncalibrated model predicts for the social channel over weeks 60-67
    start, end = X["week"].iloc[60], X["week"].iloc[67] + pd.Timedelta(days=6)
    p = base.channel_params_["social"]
    window = ((X["week"] >= start) & (X["week"] <= end)).to_numpy()
    predicted = p["coefficient"] * lift_design(
        X["social"].to_numpy(), p["decay"], p["half_saturation"], p["slope"], window, "incremental"
    )
    target = 1.4 * predicted
    lifts = pd.DataFrame([{"channel": "social", "start": start, "end": end, "lift": target, "lift_se": 0.03 * target}])
    cal = clone(base).fit(X, y, lift_tests=lifts)
    got = cal.lift_tests_.loc[0, "predicted_lift"]
    assert abs(got - target) < abs(predicted - target)
    assert cal.roi_["social"] > base.roi_["social"]
    assert np.isfinite(cal.diagnostics_["lift_mean_abs_z"])


def test_bootstrap_interval_optimizer_and_response_curve() -> None:
    X, y, _ = simulate(noise=20_000, seed=2)
    model = MarketingMixModel(
        channels=["search", "social"], controls=["promo"], n_init=8, n_passes=1, n_bootstrap=4, random_state=1
    )
    model.fit(X, y)
    assert list(model.roi_interval_.columns) == ["low", "high"]
    assert (model.roi_interval_["low"] <= model.roi_interval_["high"]).all()
    assert len(model.bootstrap_params_) == 4
    total = float(X[["search", "social"]].to_numpy().sum())
    bounds = {"search": (0.5 * X["search"].sum(), 1.2 * X["search"].sum()), "social": (0.0, 2.0 * X["social"].sum())}
    plan = model.optimize_budget(total=total, bounds=bounds)
    alloc = plan.allocation
    assert alloc["optimal_spend"].sum() == pytest.approx(total, rel=1e-9)
    for ch, (lo, hi) in bounds.items():
        assert lo - 1e-6 <= alloc.loc[ch, "optimal_spend"] <= hi + 1e-6
    assert plan.uplift >= -1e-6
    assert np.isfinite(plan.uplift_interval[0]) and plan.uplift_interval[0] <= plan.uplift_interval[1]
    curve = model.response_curve("social", np.linspace(0, 2 * X["social"].sum(), 5))
    assert curve["contribution"].is_monotonic_increasing and curve["contribution"].iloc[0] == 0.0
    assert {"contribution_low", "contribution_high", "mroi"} <= set(curve.columns)


def test_optimizer_respects_total_and_bounds_and_finds_known_optimum() -> None:
    # two identical linear-ish channels with different coefficients: all budget goes to the better one up to its cap
    ref = np.ones(10)
    curves = {
        "a": ChannelCurve(ref, {"decay": 0.0, "half_saturation": 1e9, "slope": 1.0, "coefficient": 2e9}),
        "b": ChannelCurve(ref, {"decay": 0.0, "half_saturation": 1e9, "slope": 1.0, "coefficient": 1e9}),
    }
    plan = optimize_allocation(
        curves, {"a": 50.0, "b": 50.0}, total=100.0, bounds={"a": (10.0, 70.0), "b": (5.0, 100.0)}
    )
    assert plan.allocation["optimal_spend"].sum() == pytest.approx(100.0)
    assert plan.allocation.loc["a", "optimal_spend"] == pytest.approx(70.0, abs=1e-4)
    assert plan.allocation.loc["b", "optimal_spend"] == pytest.approx(30.0, abs=1e-4)
    with pytest.raises(ValueError):
        optimize_allocation(curves, {"a": 1.0, "b": 1.0}, total=100.0, bounds={"a": (0.0, 10.0), "b": (0.0, 10.0)})


def test_percentile_interval_uses_weibull_positions() -> None:
    # quantile p sits at order statistic p * (n + 1): with 19 draws 1..19 the 90% interval is (x_1, x_19)
    low, high = percentile_interval(np.arange(1.0, 20.0), 0.9)
    assert (low, high) == (pytest.approx(1.0), pytest.approx(19.0))
    # with 20 draws: positions 1.05 and 19.95 -> 1 + 0.05 * (2 - 1) and 19 + 0.95 * (20 - 19)
    low, high = percentile_interval(np.column_stack([np.arange(1.0, 21.0), 10 * np.arange(1.0, 21.0)]), 0.9)
    assert np.allclose(low, [1.05, 10.5]) and np.allclose(high, [19.95, 199.5])


# ---------------------------------------------------------------- scikit-learn conventions
def test_clone_and_params_round_trip() -> None:
    model = MarketingMixModel(channels=["search"], controls=["promo"], n_init=8, lift_weight=2.0)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    twin.set_params(n_init=4, decomp_weight=0.5)
    assert twin.n_init == 4 and model.n_init == 8


SKLEARN_CHECKS = [
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_fit2d_predict1d",
    "check_fit2d_1sample",
    "check_fit1d",
    "check_estimators_dtypes",
    "check_estimators_empty_data_messages",
    "check_estimators_pickle",
    "check_dict_unchanged",
    "check_complex_data",
    "check_regressors_int",
    "check_estimators_nan_inf",
    "check_n_features_in",
    "check_fit_check_is_fitted",
    "check_estimators_unfitted",
    "check_regressors_no_decision_function",
    "check_estimators_overwrite_params",
    "check_fit_score_takes_y",
]
"""The subset of ``check_estimator`` that applies. Not applicable: checks that shuffle or subsample rows
(``check_methods_subset_invariance``, ``check_methods_sample_order_invariance``, ``check_fit_idempotent``
on permuted data) — rows are consecutive weeks and carryover makes a row's prediction depend on earlier
rows; ``check_regressors_train`` / ``check_regressor_data_not_an_array`` expect a fit to arbitrary
Gaussian features, which the non-negative saturating media model does not aim at; sample-weight checks
(no ``sample_weight``)."""


@pytest.mark.parametrize("check_name", SKLEARN_CHECKS)
def test_sklearn_estimator_checks_subset(check_name: str) -> None:
    estimator = MarketingMixModel(n_init=4, n_passes=0, n_bootstrap=0, n_splits=2, fourier_order=0)
    getattr(ec, check_name)(type(estimator).__name__, estimator)


# ---------------------------------------------------------------- weekly frame in DuckDB
def test_weekly_frame_sql() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA sources; CREATE SCHEMA spend;")
    con.execute(
        """CREATE TABLE sources.erp_orders AS SELECT * FROM (VALUES
            ('o1', TIMESTAMPTZ '2024-01-01 10:00:00+00', 'sale', 100.0, NULL),
            ('o2', TIMESTAMPTZ '2024-01-07 23:00:00+00', 'sale', 50.0, 'NEWYEAR'),
            ('o3', TIMESTAMPTZ '2024-01-10 12:00:00+00', 'sale', 80.0, NULL),
            ('o1', TIMESTAMPTZ '2024-01-12 12:00:00+00', 'return', 30.0, NULL),
            ('o4', TIMESTAMPTZ '2024-01-21 12:00:00+00', 'sale', 10.0, NULL),
            ('o5', TIMESTAMPTZ '2024-01-23 12:00:00+00', 'sale', 99.0, NULL)
        ) t(order_id, order_date, transaction_type, amount, promo_code)"""
    )
    con.execute(
        """CREATE TABLE spend.ad_spend_daily AS SELECT * FROM (VALUES
            (DATE '2024-01-02', 'google_ads', 'SEARCH', 10.0),
            (DATE '2024-01-03', 'google_ads', 'DISPLAY', 5.0),
            (DATE '2024-01-09', 'meta_ads', NULL, 7.0),
            (DATE '2024-01-15', 'linkedin_ads', NULL, 3.0),
            (DATE '2024-01-16', 'google_ads', 'VIDEO', 100.0)
        ) t(date_day, platform, campaign_type, spend)"""
    )
    df = weekly_frame_sql(con)
    # weeks of 2024-01-01, -08, -15; the week of 2024-01-22 is partial (orders end on the 23rd) and dropped
    assert list(df["week"].dt.strftime("%Y-%m-%d")) == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert list(df["revenue"]) == [150.0, 50.0, 10.0]
    assert list(df["promo"]) == [1, 0, 0]
    assert df.loc[0, "promo_share"] == pytest.approx(50 / 150)
    assert list(df["google_search"]) == [10.0, 0.0, 0.0]
    assert list(df["google_display"]) == [5.0, 0.0, 0.0]
    assert list(df["meta"]) == [0.0, 7.0, 0.0]
    assert list(df["linkedin"]) == [0.0, 0.0, 3.0]


def test_group_returns_weight_channels_by_spend_and_take_intervals_draw_by_draw():
    """Hand-computed: channels a (spend 100), b (100), c (200); groups G1 = {a}, G2 = {b, c}; five bootstrap draws."""
    import numpy as np
    import pandas as pd

    from marketing_assets.lib.mmm import MarketingMixModel

    m = MarketingMixModel(channels=["a", "b", "c"], interval=0.8)
    m.coef_ = np.zeros(1)  # fitted
    m.channels_ = ["a", "b", "c"]
    m.spend_ = np.array([[50.0, 40.0, 100.0], [50.0, 60.0, 100.0]])  # totals 100, 100, 200
    m.roi_ = pd.Series({"a": 3.0, "b": 1.0, "c": 2.5})
    m.mroi_ = pd.Series({"a": 2.0, "b": 0.5, "c": 1.1})
    m.roi_bootstrap_ = pd.DataFrame({"a": [3.0] * 5, "b": [1.0] * 5, "c": [2.5] * 5})
    m.mroi_bootstrap_ = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [0.5] * 5, "c": [0.8, 0.9, 1.0, 1.1, 1.2]})
    out = m.group_returns({"a": "G1", "b": "G2", "c": "G2"}, interval=0.8).set_index("group")
    # G2: spend 300; ROI (100 × 1.0 + 200 × 2.5) / 300 = 2.0; marginal ROI (0.5 × 100 + 1.1 × 200) / 300 = 0.9.
    assert out.loc["G2", "spend"] == 300 and out.loc["G2", "roi"] == pytest.approx(2.0) and out.loc["G2", "mroi"] == pytest.approx(0.9)
    assert out.loc["G2", "contribution"] == pytest.approx(600.0) and out.loc["G2", "channels"] == "b, c"
    # G2 draws: (0.5 + 2 × c) / 3 = 0.7, 0.766.., 0.833.., 0.9, 0.966..; the 80 % type-6 interval of 5 draws is the min and max.
    assert out.loc["G2", "mroi_low"] == pytest.approx(0.7) and out.loc["G2", "mroi_high"] == pytest.approx(0.5 / 3 + 2.4 / 3)
    # Each group is compared with the best other one, draw by draw: G2 - G1 = -0.3, -1.233.., ... , -4.033..
    assert out.loc["G2", "best_other"] == "G1" and out.loc["G1", "best_other"] == "G2"
    assert out.loc["G2", "mroi_gap"] == pytest.approx(0.9 - 2.0)
    assert out.loc["G2", "mroi_gap_high"] == pytest.approx(0.7 - 1.0) and out.loc["G2", "mroi_gap_low"] == pytest.approx(0.5 / 3 + 2.4 / 3 - 5.0)
    assert out.loc["G1", "mroi_gap_low"] == pytest.approx(1.0 - 0.7) and out.loc["G1", "mroi_gap_high"] == pytest.approx(5.0 - (0.5 / 3 + 2.4 / 3))


def test_channel_curve_counts_the_adstock_carried_in():
    """Hand-computed: pattern [1, 0] with decay 0.5 gives unit adstock [1, 0.5]; 0.5 and 0.25 are carried in.
    At spend 2 the adstock is [2.5, 1.25]; hill(a) = a / (a + 1) and hill'(a) = 1 / (a + 1)²."""
    from marketing_assets.lib.mmm import ChannelCurve

    params = {"decay": 0.5, "half_saturation": 1.0, "slope": 1.0, "coefficient": 1.0}
    curve = ChannelCurve(np.array([2.0, 0.0]), params, carry_in=np.array([0.5, 0.25]))
    assert curve.contribution(2.0) == pytest.approx(2.5 / 3.5 + 1.25 / 2.25)
    assert curve.marginal(2.0) == pytest.approx(1 / 3.5**2 + 0.5 / 2.25**2)
    # nothing carried in: the curve of before
    assert ChannelCurve(np.array([2.0, 0.0]), params).contribution(2.0) == pytest.approx(2 / 3 + 1 / 2)


# ---------------------------------------------------------------- the fitted model as data
def hand_params(**changes) -> dict:
    """One channel ``tv`` (decay 0.5, half-saturation 100, slope 1, coefficient 100), intercept 10, no trend or
    seasonality, two fit weeks with spend 100 and 0, no bootstrap: the layout of ``to_params`` written by hand."""
    settings = MarketingMixModel(channels=["tv"], fourier_order=0, trend=False, n_bootstrap=0).get_params()
    settings = {k: v for k, v in settings.items() if k not in COMPUTE_SETTINGS}  # how a fit runs, not the model
    tv = {"decay": 0.5, "half_saturation": 100.0, "half_saturation_ratio": 1.0, "slope": 1.0, "coefficient": 100.0}
    params = {
        "format": "marketing_assets.mmm/1", "settings": {**settings, "channels": ["tv"], "controls": [], "priors": None, "prior_pooling": None},
        "channels": ["tv"], "controls": [], "n_features_in": 1, "feature_names_in": ["tv"],
        "origin": "2024-01-01T00:00:00", "weeks": ["2024-01-01T00:00:00", "2024-01-08T00:00:00"],
        "spend": [[100.0], [0.0]], "control_values": [[], []], "base_names": ["intercept"], "base_coef": [10.0],
        "coef": [10.0, 100.0], "intercept": 10.0, "y_scale": 1.0, "penalty": 0.001, "channel_params": {"tv": tv},
        "roi": {"tv": (50 + 100 / 3) / 100}, "mroi": {"tv": 0.0}, "roi_interval": {"low": [None], "high": [None]},
        "mroi_interval": {"low": [None], "high": [None]}, "bootstrap_params": [], "roi_bootstrap": [], "mroi_bootstrap": [],
        "lift_spec": None, "lift_tests": {"columns": [], "data": {}}, "diagnostics": {"r2": None, "search_evaluations": 0},
        "search": {"decay": [0.5], "ratio": [1.0], "slope": [1.0], "log10_penalty": -3.0, "objective": 0.0, "cv_mse": 0.0,
                   "lift_z": [], "n_evaluations": 0, "history": []},
        "fit_seconds_search": 0.0, "fit_seconds": 0.0, "bootstrap_index": {"roi": [], "mroi": []}, "shape": [2, 1], "order": {"spend": "C", "control_values": "C"},
    }
    return {**params, **changes}


def test_from_params_hand_values() -> None:
    model = MarketingMixModel.from_params(hand_params())
    X = pd.DataFrame({"week": pd.to_datetime(["2024-01-01", "2024-01-08"]), "tv": [100.0, 0.0]})
    # adstock [100, 50]; hill a / (a + 100) = [1/2, 1/3]; times 100 plus the intercept 10
    assert np.allclose(model.predict(X), [60.0, 10 + 100 / 3])
    contrib = model.contributions(X)
    assert np.allclose(contrib["baseline"], 10.0) and np.allclose(contrib["tv"], [50.0, 100 / 3])
    # twice the spend: adstock [200, 100] -> hill [2/3, 1/2] -> 66.67 + 50
    curve = model.response_curve("tv", [0.0, 200.0])
    assert np.allclose(curve["contribution"], [0.0, 200 / 3 + 50]) and "contribution_low" not in curve
    assert np.isnan(model.roi_interval_.loc["tv", "low"]) and model.current_spend() == {"tv": 100.0}
    assert model.to_params() == hand_params()  # NaN back as None: strict JSON again


def test_to_params_is_strict_json_and_rejects_unknown_formats() -> None:
    import json

    params = MarketingMixModel.from_params(hand_params(roi={"tv": float("inf")})).to_params()
    assert params["roi"] == {"tv": "inf"} and params["roi_interval"]["low"] == [None]
    json.dumps(params, allow_nan=False)
    with pytest.raises(ValueError, match="unknown model parameter format"):
        MarketingMixModel.from_params(hand_params(format="marketing_assets.mmm/0"))


def test_round_trip_of_a_fitted_model_is_exact() -> None:
    import json

    X, y, _ = simulate(n=80, noise=20_000, seed=4)
    lifts = pd.DataFrame([{"channel": "social", "start": X["week"].iloc[30], "end": X["week"].iloc[37], "lift": 2e5, "lift_se": 2e4}])
    model = MarketingMixModel(channels=["search", "social"], controls=["promo"], n_init=8, n_passes=1, n_refine=0, n_bootstrap=3)
    model.fit(X, y, lift_tests=lifts)
    twin = MarketingMixModel.from_params(json.loads(json.dumps(model.to_params(), allow_nan=False)))
    exact = {"rtol": 0, "atol": 0}
    assert np.array_equal(twin.predict(X), model.predict(X))
    pd.testing.assert_frame_equal(twin.contributions(X), model.contributions(X), **exact)
    grid = np.linspace(0, 2 * X["social"].sum(), 5)
    pd.testing.assert_frame_equal(twin.response_curve("social", grid), model.response_curve("social", grid), **exact)
    groups = {"search": "Search", "social": "Social"}
    pd.testing.assert_frame_equal(twin.group_returns(groups, 0.8), model.group_returns(groups, 0.8), **exact)
    for name in ("roi_interval_", "mroi_interval_", "roi_bootstrap_", "mroi_bootstrap_", "lift_tests_"):
        pd.testing.assert_frame_equal(getattr(twin, name), getattr(model, name), **exact)
    pd.testing.assert_series_equal(twin.mroi_, model.mroi_, **exact)
    assert twin.bootstrap_params_ == model.bootstrap_params_ and twin.get_params() == model.get_params()
    plan, twin_plan = model.optimize_budget(horizon_weeks=13), twin.optimize_budget(horizon_weeks=13)
    pd.testing.assert_frame_equal(twin_plan.allocation, plan.allocation, **exact)
    assert (twin_plan.uplift, twin_plan.uplift_interval) == (plan.uplift, plan.uplift_interval)
    assert twin.total_contribution({"search": 1e5, "social": 5e4}, 13) == model.total_contribution({"search": 1e5, "social": 5e4}, 13)


def test_bootstrap_in_two_processes_gives_the_same_model() -> None:
    """The resamples' draws are made before their searches run: two worker processes fit the same model, bit for bit,
    and the process count is not a parameter of the fitted model."""
    X, y, _ = simulate(n=80, noise=20_000, seed=4)
    lifts = pd.DataFrame([{"channel": "social", "start": X["week"].iloc[30], "end": X["week"].iloc[37], "lift": 2e5, "lift_se": 2e4}])
    settings = {"channels": ["search", "social"], "controls": ["promo"], "n_init": 8, "n_passes": 1, "n_refine": 20, "n_bootstrap": 3}
    one = MarketingMixModel(**settings).fit(X, y, lift_tests=lifts).to_params()
    two = MarketingMixModel(**settings, n_jobs=2).fit(X, y, lift_tests=lifts).to_params()
    timings = ("fit_seconds_search", "fit_seconds")
    assert len(one["bootstrap_params"]) == 3 and "n_jobs" not in one["settings"]
    assert {k: v for k, v in two.items() if k not in timings} == {k: v for k, v in one.items() if k not in timings}
    # the workers exit soon after the fit instead of holding their memory for joblib's five idle minutes
    deadline = time.monotonic() + 15  # model.WORKER_IDLE_SECONDS and the time to notice it
    while _worker_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _worker_processes()


def _worker_processes() -> list[int]:
    """This process's children that are joblib worker processes."""
    me, found = str(os.getpid()), []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "stat").read_text().rsplit(")", 1)[1].split()[1] == me \
                    and b"LokyProcess" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
