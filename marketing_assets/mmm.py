"""Marketing-mix assets: weekly design matrix, fitted model, decomposition, response curves, budget plan."""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from marketing_assets.constants import MMM, SOURCES, SPEND
from marketing_assets.lib import svg
from marketing_assets.lib.mmm import MarketingMixModel, weekly_frame_sql
from marketing_assets.lib.mmm.frame import channel_groups_sql, channel_labels
from marketing_assets.lib.refs import ref, this
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse, machine_cpus

DECISION_INTERVAL = 0.8
"""Central interval of the channel-group returns budget decisions read: "clearly above break-even" = the 80 %
interval (10th-90th percentile of the bootstrap draws) lies above it, i.e. at least 90 % of the draws pay back.
Stated in the labels of the mmm_*_low / _high KPIs of the metric dictionary: changing it changes their definition."""
MIN_WEEKS = 52
MIN_CHANNELS = 2
HOLDOUT_WEEKS = 26


class MmmConfig(dg.Config):
    n_bootstrap: int = Field(default=20, ge=0, le=500, description="Bootstrap resamples (each redoes the search) for intervals.")
    holdout_weeks: int = Field(default=HOLDOUT_WEEKS, ge=4, description="Weeks held out to measure forecast error.")
    random_state: int = Field(default=0, description="Seed of the search and the bootstrap.")
    processes: int = Field(
        default=0, ge=0,
        description="Processes that run the bootstrap's searches: 0 = one per CPU this run may use (cgroup-aware), 1 = the run's own "
        "process. The fitted model is the same for any number.",
    )
    lift_mode: str = Field(
        default="window_contribution",
        description="What a lift test's `lift` measures: the channel's contribution during the test window ('window_contribution', "
        "as the experiments contract defines it) or spend-on minus spend-off including carry-over after it ('incremental').",
    )


class BudgetConfig(dg.Config):
    horizon_weeks: int = Field(
        default=13, ge=1, le=104,
        description="Planning period in weeks (13 = next quarter). The plan starts from the run rate of the last as many weeks.",
    )
    min_share_of_current: float = Field(default=0.5, ge=0, description="Lower bound per channel, as a share of its current spend.")
    max_share_of_current: float = Field(default=2.0, gt=0, description="Upper bound per channel, as a share of its current spend.")
    what_if_steps: list[float] = Field(default=[-0.5, -0.25, -0.1, 0.1, 0.25, 0.5], description="Per-channel spend changes to simulate.")


def _write(con, table: str, frame: pd.DataFrame) -> None:
    con.register("_mmm_df", frame)
    con.execute(f"CREATE OR REPLACE TABLE {this(MMM, table)} AS SELECT * FROM _mmm_df")
    con.unregister("_mmm_df")


def _channels(frame: pd.DataFrame) -> list[str]:
    fixed = {"week", "revenue", "sales", "returns", "orders", "promo_share", "promo"}
    return [c for c in frame.columns if c not in fixed and frame[c].sum() > 0]


def _empty(text: list[str], numbers: list[str], dates: list[str] = ()) -> pd.DataFrame:
    """A typed empty table: the columns a downstream query reads exist even without a fitted model."""
    return pd.DataFrame(
        {**{c: pd.Series(dtype="datetime64[ns]") for c in dates}, **{c: pd.Series(dtype=str) for c in text}, **{c: pd.Series(dtype=float) for c in numbers}}
    )


GROUP_ROI_EMPTY = (
    ["channel_group", "mmm_channels", "best_other_group"],
    ["spend", "contribution", "roi", "roi_low", "roi_high", "mroi", "mroi_low", "mroi_high", "mroi_gap", "mroi_gap_low", "mroi_gap_high"],
)
BUDGET_PLAN_EMPTY = (
    ["scenario", "channel", "channel_group", "channel_label"],
    ["period_weeks", "current_spend", "scenario_spend", "bound_low", "bound_high", "media_contribution", "uplift", "uplift_low", "uplift_high",
     "spend_change", "uplift_per_extra_spend"],
    ["period_start", "period_end"],
)


def _without_model(con, table: str, empty: pd.DataFrame) -> dg.MaterializeResult:
    """Publish an empty, typed table and say why: there is no fitted model to derive it from."""
    _write(con, table, empty)
    return dg.MaterializeResult(metadata={"dagster/row_count": 0, "status": "no fitted model (see mmm_model)"})


# What the MMM assets read, named through ref(): each asset's deps are derived from the functions it calls.
def weekly_frame_read() -> str:
    return f"SELECT * FROM {ref(MMM, 'mmm_weekly_frame')} ORDER BY week"


def fit_read() -> str:
    return f"SELECT params FROM {ref(MMM, 'mmm_fit')}"


def model_channels_read() -> str:
    return f"SELECT channel, channel_group, channel_label FROM {ref(MMM, 'mmm_model')}"


def lift_tests_read() -> str:
    return f"""SELECT channel, start_date AS start, end_date AS "end", lift, coalesce(lift_se, abs(lift) * 0.1) AS lift_se
            FROM {ref(SOURCES, 'experiments')} WHERE coalesce(metric, 'revenue') = 'revenue' ORDER BY test_id"""


def channel_groups_read() -> str:
    return channel_groups_sql(ad_spend=ref(SPEND, "ad_spend_daily"))


def load_model(con) -> tuple[MarketingMixModel | None, pd.DataFrame]:
    """The estimator rebuilt from ``mmm_fit``'s parameters (None when not fitted) and the weekly frame."""
    frame = con.execute(weekly_frame_read()).df()
    rows = con.execute(fit_read()).fetchall()
    return (MarketingMixModel.from_params(json.loads(rows[0][0])) if rows and rows[0][0] is not None else None), frame


def weekly_frame_inputs() -> dict[str, str]:
    """The revenue (ERP order lines, or CRM won opportunities without ERP) and spend tables of the weekly frame."""
    return {
        "orders": ref(SOURCES, "erp_orders"),
        "ad_spend": ref(SPEND, "ad_spend_daily"),
        # No ERP: won opportunities stand in for revenue, booked at their close date.
        "crm_orders_view": f"""CREATE OR REPLACE TEMP VIEW _mmm_orders AS
                SELECT opportunity_id AS order_id, closed_date AS order_date, 'sale' AS transaction_type,
                       CAST(won_amount AS DOUBLE) AS amount, NULL::VARCHAR AS promo_code
                FROM {ref(SOURCES, 'crm_opportunities')} WHERE is_won AND closed_date IS NOT NULL""",
    }


MODEL_DEPS = upstream(weekly_frame_read, lift_tests_read, channel_groups_read)
MODEL_READER_DEPS = upstream(weekly_frame_read, fit_read, model_channels_read)  # assets that rebuild the model and name its channels


@dg.asset(deps=upstream(weekly_frame_inputs), kinds={"duckdb"})
def mmm_weekly_frame(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per week (Monday): net revenue (ERP sales − returns, or CRM won amount without ERP), spend per media channel and promo control."""
    inputs = weekly_frame_inputs()
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {MMM}")
        (orders,) = con.execute(f"SELECT count(*) FROM {inputs['orders']}").fetchone()
        source = "erp_orders"
        if orders == 0:
            con.execute(inputs["crm_orders_view"])
            source = "crm_won_opportunities"
        frame = weekly_frame_sql(con, orders=inputs["orders"] if orders else "_mmm_orders", ad_spend=inputs["ad_spend"])
        _write(con, "mmm_weekly_frame", frame)
    channels = _channels(frame)
    meta = {
        "dagster/row_count": len(frame),
        "revenue_source": source,
        "channels_with_spend": channels,
        "weeks": len(frame),
        "first_week": str(frame["week"].min()) if len(frame) else "",
        "last_week": str(frame["week"].max()) if len(frame) else "",
    }
    if len(frame):
        meta["revenue_and_spend"] = dg.MetadataValue.md(
            svg.md_image(svg.line_chart(list(frame["week"]), {"revenue": frame["revenue"], **{c: frame[c] for c in channels}}, "Weekly revenue and media spend"), "weekly frame")
        )
    return dg.MaterializeResult(metadata=meta)


def not_fitted_reason(weeks: int, channels: int) -> str:
    """Why the model is not fitted, naming only the conditions that are not met."""
    unmet = [f"{weeks} weeks of data (need {MIN_WEEKS})"] if weeks < MIN_WEEKS else []
    unmet += [f"{channels} channel{'s' if channels != 1 else ''} with spend (need {MIN_CHANNELS})"] if channels < MIN_CHANNELS else []
    return "not fitted: " + " and ".join(unmet)


def _channel_groups(con, channels: list[str]) -> dict[str, str]:
    """Channel group of each MMM channel (the group of most of its spend), the vocabulary of attribution and reports."""
    groups = dict(con.execute(channel_groups_read()).fetchall())
    return {c: groups.get(c) or c for c in channels}


def _model_channels(con) -> pd.DataFrame:
    """``channel``, ``channel_group``, ``channel_label`` of the fitted model's channels."""
    return con.execute(model_channels_read()).df()


def _lift_tests(con, channels: list[str]) -> pd.DataFrame | None:
    tests = con.execute(lift_tests_read()).df()
    tests = tests[tests["channel"].isin(channels)]
    return tests if len(tests) else None


MODEL_EMPTY = (["channel", "channel_group", "channel_label"], ["decay", "half_saturation", "slope", "spend", "contribution", "roi", "roi_low", "roi_high", "mroi", "mroi_low", "mroi_high"])
LIFT_FIT_COLUMNS = ["channel", "start_date", "end_date", "lift", "lift_se", "predicted_lift", "z"]


def _write_fit(con, status: str, weeks: int, channels: int, config: MmmConfig, **fitted) -> None:
    """The one row of ``mmm_fit``; ``fitted`` holds holdout_mape, fit_seconds, lift_tests_used and params when fitted."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {this(MMM, 'mmm_fit')} (status VARCHAR, fitted_at TIMESTAMP, weeks INTEGER, channels INTEGER,
            holdout_weeks INTEGER, holdout_mape DOUBLE, fit_seconds DOUBLE, lift_tests_used INTEGER, params VARCHAR)"""
    )
    con.execute(
        f"INSERT INTO {this(MMM, 'mmm_fit')} VALUES (?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?)",
        [status, weeks, channels, config.holdout_weeks, fitted.get("holdout_mape"), fitted.get("fit_seconds"), fitted.get("lift_tests_used", 0), fitted.get("params")],
    )


def _lift_fit(tests: pd.DataFrame) -> pd.DataFrame:
    """The model's lift tests with start/end named as in sources.experiments; a typed empty table without any."""
    if tests.empty:
        return _empty(["channel"], ["lift", "lift_se", "predicted_lift", "z"], ["start_date", "end_date"])[LIFT_FIT_COLUMNS]
    return tests.rename(columns={"start": "start_date", "end": "end_date"})[LIFT_FIT_COLUMNS].reset_index(drop=True)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "mmm_model", deps=MODEL_DEPS, kinds={"duckdb", "scikitlearn"},
            description="One row per media channel: fitted adstock/saturation parameters, ROI and marginal ROI with 90% intervals; diagnostics in metadata.",
        ),
        dg.AssetSpec(
            "mmm_fit", deps=MODEL_DEPS, kinds={"duckdb", "scikitlearn"},
            description="One row: the fitted model as data — status ('fitted' or why not), fit time, holdout MAPE, fit seconds and the "
            "JSON parameters MarketingMixModel.from_params rebuilds the estimator from without refitting.",
        ),
        dg.AssetSpec(
            "mmm_lift_test_fit", deps=MODEL_DEPS, kinds={"duckdb"},
            description="One row per lift test inside the fit period: measured lift, the model's lift over the test window and their "
            "distance in standard errors (z); empty, with the reason in metadata, when there is none.",
        ),
    ]
)
def mmm_model(context: dg.AssetExecutionContext, config: MmmConfig, warehouse: Warehouse):
    """Fits the marketing-mix model once and publishes it as three tables: per channel, as parameters, and its lift-test calibration."""
    key = context.asset_key_for_output
    with warehouse.get_connection() as con:
        frame = con.execute(weekly_frame_read()).df()
        channels = _channels(frame)
        if len(frame) < MIN_WEEKS or len(channels) < MIN_CHANNELS:
            why = not_fitted_reason(len(frame), len(channels))
            context.log.warning(why)
            _write(con, "mmm_model", _empty(*MODEL_EMPTY))
            _write_fit(con, why, len(frame), len(channels), config)
            _write(con, "mmm_lift_test_fit", _lift_fit(pd.DataFrame()))
            yield dg.MaterializeResult(asset_key=key("mmm_model"), metadata={"dagster/row_count": 0, "status": why})
            yield dg.MaterializeResult(asset_key=key("mmm_fit"), metadata={"dagster/row_count": 1, "status": why})
            yield dg.MaterializeResult(asset_key=key("mmm_lift_test_fit"), metadata={"dagster/row_count": 0, "status": why})
            return
        lifts = _lift_tests(con, channels)
        X, y = frame[["week", *channels, "promo"]], frame["revenue"].to_numpy()
        params = {"channels": channels, "controls": ["promo"], "random_state": config.random_state, "lift_mode": config.lift_mode}
        cut = len(frame) - config.holdout_weeks
        holdout = MarketingMixModel(**params, n_bootstrap=0).fit(X.iloc[:cut], y[:cut], lift_tests=lifts)
        forecast = holdout.predict(X)[cut:]
        holdout_mape = float(np.mean(np.abs(forecast - y[cut:]) / np.abs(y[cut:])))
        start = time.perf_counter()
        processes = config.processes or machine_cpus()
        model = MarketingMixModel(**params, n_bootstrap=config.n_bootstrap, n_jobs=processes).fit(X, y, lift_tests=lifts)
        fit_seconds = time.perf_counter() - start
        used = 0 if lifts is None else len(lifts)
        params_json = json.dumps(model.to_params(), allow_nan=False)
        _write_fit(con, "fitted", len(frame), len(channels), config, holdout_mape=holdout_mape, fit_seconds=fit_seconds, lift_tests_used=used, params=params_json)
        decomposition = model.contributions(X)
        table = pd.DataFrame(
            {
                "channel": channels,
                "decay": [model.channel_params_[c].get("decay", np.nan) for c in channels],
                "half_saturation": [model.channel_params_[c].get("half_saturation", np.nan) for c in channels],
                "slope": [model.channel_params_[c].get("slope", np.nan) for c in channels],
                "spend": [float(frame[c].sum()) for c in channels],
                "contribution": [float(decomposition[c].sum()) for c in channels],
                "roi": [float(model.roi_[c]) for c in channels],
                "roi_low": [float(model.roi_interval_.loc[c, "low"]) for c in channels],
                "roi_high": [float(model.roi_interval_.loc[c, "high"]) for c in channels],
                "mroi": [float(model.mroi_[c]) for c in channels],
                "mroi_low": [float(model.mroi_interval_.loc[c, "low"]) for c in channels],
                "mroi_high": [float(model.mroi_interval_.loc[c, "high"]) for c in channels],
            }
        )
        groups = _channel_groups(con, channels)
        labels = channel_labels(groups)
        table.insert(1, "channel_group", [groups[c] for c in channels])
        table.insert(2, "channel_label", [labels[c] for c in channels])
        _write(con, "mmm_model", table)
        lift_fit = _lift_fit(model.lift_tests_)
        _write(con, "mmm_lift_test_fit", lift_fit)
    diag = {k: round(float(v), 5) for k, v in model.diagnostics_.items() if np.isscalar(v)}
    fit_plot = svg.line_chart(list(frame["week"]), {"actual": y, "fitted": model.predict(X)}, "Weekly revenue: fitted vs actual")
    context.log.info(f"mmm_model: holdout MAPE {holdout_mape:.2%}, fit {fit_seconds:.1f}s")
    yield dg.MaterializeResult(
        asset_key=key("mmm_model"),
        metadata={
            "dagster/row_count": len(table),
            "holdout_mape": round(holdout_mape, 5),
            "holdout_weeks": config.holdout_weeks,
            "fit_seconds": round(fit_seconds, 2),
            "lift_tests_used": used,
            **diag,
            "channels": dg.MetadataValue.md(table.round(3).to_markdown(index=False)),
            "fit_vs_actual_preview": dg.MetadataValue.md(svg.sparkline_md({"actual": y, "fitted": model.predict(X)}, "fit vs actual")),
            "fit_vs_actual": dg.MetadataValue.md(svg.md_image(fit_plot, "fit vs actual")),
        },
    )
    yield dg.MaterializeResult(
        asset_key=key("mmm_fit"),
        metadata={"dagster/row_count": 1, "status": "fitted", "holdout_mape": round(holdout_mape, 5), "params_bytes": len(params_json)},
    )
    why_empty = "no lift test on the model's channels in sources.experiments" if lifts is None else f"none of {used} lift test(s) falls in the fit period"
    yield dg.MaterializeResult(
        asset_key=key("mmm_lift_test_fit"),
        metadata={"dagster/row_count": len(lift_fit), "status": f"{len(lift_fit)} lift test(s) calibrated" if len(lift_fit) else why_empty},
    )


@dg.asset(deps=upstream(weekly_frame_read, fit_read), kinds={"duckdb"})
def mmm_contributions(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per week: actual revenue and its modelled decomposition (baseline, trend, seasonality, controls, each channel)."""
    with warehouse.get_connection() as con:
        model, frame = load_model(con)
        if model is None:
            return _without_model(con, "mmm_contributions", pd.DataFrame({"week": pd.Series(dtype="datetime64[ns]"), "actual": pd.Series(dtype=float)}))
        X = frame[["week", *model.channels_, *model.controls_]]
        out = model.contributions(X).reset_index()
        out.insert(1, "actual", frame["revenue"].to_numpy())
        _write(con, "mmm_contributions", out)
    parts = {c: out[c].clip(lower=0) for c in ["baseline", "trend", "seasonality", *model.controls_, *model.channels_] if c in out}
    plot = svg.stacked_area_chart(list(out["week"]), parts, "Weekly revenue decomposition")
    shares = {c: round(float(out[c].sum() / out["predicted"].sum()), 4) for c in model.channels_}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(out),
            "media_share_of_revenue": shares,
            "decomposition_preview": dg.MetadataValue.md(
                svg.sparkline_md({"revenue": out["actual"], "media": out[list(model.channels_)].sum(axis=1)}, "revenue and media contribution")
            ),
            "decomposition": dg.MetadataValue.md(svg.md_image(plot, "decomposition")),
        }
    )


@dg.asset(deps=MODEL_READER_DEPS, kinds={"duckdb"})
def mmm_response_curves(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per channel × spend level (0–200% of current, fit period total): modelled contribution, ROI and marginal ROI."""
    with warehouse.get_connection() as con:
        model, frame = load_model(con)
        if model is None:
            return _without_model(con, "mmm_response_curves", pd.DataFrame({"channel": pd.Series(dtype=str), "spend": pd.Series(dtype=float)}))
        multipliers = np.linspace(0.0, 2.0, 21)
        names = _model_channels(con).set_index("channel")
        curves = []
        for c in model.channels_:
            current = float(frame[c].sum())
            curve = model.response_curve(c, multipliers * current)
            curve.insert(0, "channel", c)
            curve.insert(1, "channel_group", names.loc[c, "channel_group"])
            curve.insert(2, "channel_label", names.loc[c, "channel_label"])
            curve.insert(4, "share_of_current_spend", multipliers)
            curves.append(curve)
        table = pd.concat(curves, ignore_index=True)
        _write(con, "mmm_response_curves", table)
    plot = svg.line_chart(
        list(multipliers * 100), {names.loc[c, "channel_label"]: table.loc[table.channel == c, "contribution"].to_numpy() for c in model.channels_},
        "Contribution vs spend (% of current)", y_label="contribution",
    )
    preview = svg.sparkline_md({names.loc[c, "channel_label"]: table.loc[table.channel == c, "contribution"].to_numpy() for c in model.channels_}, "response curves")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "response_curves_preview": dg.MetadataValue.md(preview),
            "response_curves": dg.MetadataValue.md(svg.md_image(plot, "response curves")),
        }
    )


@dg.asset(deps=MODEL_READER_DEPS, kinds={"duckdb"})
def mmm_channel_group_roi(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per channel group with modelled media: its MMM channels, spend, contribution, ROI and marginal ROI over the
    fit period with 80% intervals from the bootstrap draws of the group, and the gap to the other group with the highest
    marginal ROI (the evidence budget recommendations read)."""
    with warehouse.get_connection() as con:
        model, _ = load_model(con)
        if model is None:
            return _without_model(con, "mmm_channel_group_roi", _empty(*GROUP_ROI_EMPTY))
        names = _model_channels(con)
        groups = dict(zip(names["channel"], names["channel_group"]))
        labels = dict(zip(names["channel"], names["channel_label"]))
        table = model.group_returns(groups, DECISION_INTERVAL).rename(
            columns={"group": "channel_group", "channels": "mmm_channels", "best_other": "best_other_group"}
        )
        table["mmm_channels"] = [", ".join(labels[c] for c in chans.split(", ")) for c, chans in zip(table.channel_group, table.mmm_channels)]
        _write(con, "mmm_channel_group_roi", table)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": len(table), "groups": dg.MetadataValue.md(table.round(3).to_markdown(index=False))}
    )


def _plan_period(frame: pd.DataFrame, weeks: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day of the planned period: the ``weeks`` weeks after the last modelled week."""
    start = pd.Timestamp(frame["week"].max()) + pd.Timedelta(days=7)
    return start, start + pd.Timedelta(days=7 * weeks - 1)


@dg.asset(deps=MODEL_READER_DEPS, kinds={"duckdb"})
def mmm_budget_plan(context: dg.AssetExecutionContext, config: BudgetConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per scenario × MMM channel for the planning period (next `horizon_weeks` weeks, from the current run rate):
    the optimal reallocation at the same total budget, and what-if changes of each channel's spend (with the predicted
    revenue per extra unit of spend)."""
    weeks = config.horizon_weeks
    with warehouse.get_connection() as con:
        model, frame = load_model(con)
        if model is None:
            return _without_model(con, "mmm_budget_plan", _empty(*BUDGET_PLAN_EMPTY))
        names = _model_channels(con).set_index("channel")
        current = model.current_spend(weeks)
        total = sum(current.values())
        bounds = {c: (config.min_share_of_current * s, config.max_share_of_current * s) for c, s in current.items()}
        plan = model.optimize_budget(total, bounds, horizon_weeks=weeks)
        start, end = _plan_period(frame, weeks)
        rows = [
            {
                "scenario": "optimal_same_total", "channel": r["channel"], "current_spend": current[r["channel"]],
                "scenario_spend": float(r["optimal_spend"]), "bound_low": bounds[r["channel"]][0], "bound_high": bounds[r["channel"]][1],
                "media_contribution": plan.media_contribution, "uplift": plan.uplift,
                "uplift_low": plan.uplift_interval[0], "uplift_high": plan.uplift_interval[1],
            }
            for r in plan.allocation.reset_index().to_dict("records")
        ]
        base = model.total_contribution(current, horizon_weeks=weeks)
        for c in model.channels_:
            for step in config.what_if_steps:
                spends = {**current, c: current[c] * (1 + step)}
                value = model.total_contribution(spends, horizon_weeks=weeks)
                rows.append(
                    {
                        "scenario": f"{names.loc[c, 'channel_label']} {step:+.0%}", "channel": c, "current_spend": current[c],
                        "scenario_spend": spends[c], "bound_low": np.nan, "bound_high": np.nan, "media_contribution": value,
                        "uplift": value - base, "uplift_low": np.nan, "uplift_high": np.nan,
                    }
                )
        table = pd.DataFrame(rows)
        # a what-if's spend change and the predicted revenue per extra unit of spend (the optimal plan's uplift is of
        # the whole reallocation, not of one channel's change: no ratio on its rows)
        table["spend_change"] = table["scenario_spend"] - table["current_spend"]
        what_if = (table["scenario"] != "optimal_same_total") & (table["spend_change"] != 0)
        table["uplift_per_extra_spend"] = (table["uplift"] / table["spend_change"]).where(what_if)
        table.insert(2, "channel_group", table["channel"].map(names["channel_group"]))
        table.insert(3, "channel_label", table["channel"].map(names["channel_label"]))
        table.insert(0, "period_start", start.date())
        table.insert(1, "period_end", end.date())
        table.insert(2, "period_weeks", weeks)
        _write(con, "mmm_budget_plan", table)
    optimal = table[table.scenario == "optimal_same_total"]
    plot = svg.grouped_bar_chart(
        list(optimal.channel_label), {"current run rate": list(optimal.current_spend), "plan": list(optimal.scenario_spend)},
        f"Spend {start.date()} to {end.date()}: current run rate vs optimal plan (same total)",
    )
    low, high = plan.uplift_interval
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "period": f"{start.date()} to {end.date()} ({weeks} weeks)",
            "total_budget": round(total, 2),
            "uplift": round(plan.uplift, 2),
            "uplift_interval": [round(low, 2), round(high, 2)],
            "uplift_interval_crosses_zero": bool(low < 0 < high),
            "converged": bool(plan.converged),
            "plan": dg.MetadataValue.md(svg.md_image(plot, "budget plan")),
        }
    )
