"""Validation harness of the marketing-mix model against the demo generator's planted truth.

For each seed: generate ``default`` demo data, build the warehouse (``sources`` and ``identity`` groups),
build the weekly frame in DuckDB, then fit the model without and with two lift tests. Prints per channel
true vs estimated ROI and marginal ROI with the bootstrap interval, interval coverage, holdout MAPE (fit
on all but the last 26 weeks), fit time, and the share of the true optimal uplift that the optimiser's
plan captures when both plans are evaluated under the true response curves.

Usage::

    python benchmarks/mmm.py [--seeds 1 2 3 4] [--bootstrap 20] [--keep DIR]

With ``--keep DIR`` the data of a seed already generated under ``DIR`` is reused instead of regenerated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import duckdb
import pandas as pd

from marketing_assets.lib.mmm import MarketingMixModel, holdout_mape, weekly_frame_sql
from marketing_assets.lib.mmm.optimize import ChannelCurve, optimize_allocation

CHANNELS = ["google_search", "google_display", "meta", "linkedin"]
CONTROLS = ["promo"]
HOLDOUT_WEEKS = 26
BOUNDS_FACTOR = (0.5, 1.5)
TARGETS = {
    "holdout_mape": "<= 3%",
    "roi_error_uncalibrated": "<= 20%",
    "roi_error_calibrated": "<= 10%",
    "coverage": ">= 80%",
    "plan_capture": ">= 85%",
    "fit_seconds": "<= 10 s",
}


def build_warehouse(landing: Path, database: Path) -> None:
    """Materialise the ``sources`` and ``identity`` groups into ``database``."""
    import dagster as dg

    from marketing_assets.definitions import defs
    from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse

    resources = {
        "landing": LandingZone(path=str(landing)),
        "warehouse": Warehouse(database=str(database)),
        "thresholds": CheckThresholds(),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            list(defs.assets),
            selection=dg.AssetSelection.groups("sources", "identity"),
            resources=resources,
            raise_on_error=True,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
    if not result.success:
        raise RuntimeError("warehouse build failed")


def true_curves(truth: dict, spend: pd.DataFrame) -> dict[str, ChannelCurve]:
    """True response curves over the frame's weekly spend pattern."""
    return {
        ch: ChannelCurve(
            spend[ch].to_numpy(float),
            {k: truth["channels"][ch][k] for k in ("decay", "half_saturation", "slope", "coefficient")},
        )
        for ch in CHANNELS
    }


def plan_capture(model: MarketingMixModel, curves: dict[str, ChannelCurve], spend: pd.DataFrame) -> tuple[float, float]:
    """Share of the true optimal uplift captured by the model's plan, and the model's predicted uplift share."""
    current = {ch: float(spend[ch].sum()) for ch in CHANNELS}
    bounds = {ch: (BOUNDS_FACTOR[0] * v, BOUNDS_FACTOR[1] * v) for ch, v in current.items()}
    plan = model.optimize_budget(bounds=bounds)
    best = optimize_allocation(curves, current, bounds=bounds)

    def value(alloc: dict[str, float] | pd.Series) -> float:
        return sum(curves[ch].contribution(float(alloc[ch])) for ch in CHANNELS)

    ref = value(current)
    got = value(plan.allocation["optimal_spend"])
    opt = value(best.allocation["optimal_spend"])
    return (got - ref) / (opt - ref) if opt > ref else float("nan"), plan.uplift_share


def run_seed(seed: int, n_bootstrap: int, keep: Path | None, lift_mode: str) -> list[dict]:
    """All measurements for one seed (one row per channel and calibration setting)."""
    from marketing_assets.demo import generate

    root = Path(tempfile.mkdtemp(prefix=f"mmm_bench_{seed}_")) if keep is None else keep / f"seed{seed}"
    try:
        landing = root / "landing"
        t0 = time.perf_counter()
        if not (keep is not None and (root / "warehouse.duckdb").exists() and (landing / "_truth").exists()):
            generate(landing, scale="default", seed=seed)
            build_warehouse(landing, root / "warehouse.duckdb")
        prep = time.perf_counter() - t0
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        frame = weekly_frame_sql(con)
        con.close()
        truth = json.loads((landing / "_truth" / "mmm_truth.json").read_text())
        first = pd.Timestamp(truth["first_week_start"])
        frame = frame[frame["week"] >= first].iloc[: truth["n_weeks"]].reset_index(drop=True)
        lifts = pd.read_csv(landing / "experiments" / "lift_tests.csv")
        lifts = lifts.rename(columns={"start_date": "start", "end_date": "end"}).iloc[:2]
        X, y = frame[["week", *CHANNELS, *CONTROLS]], frame["revenue"].to_numpy(float)
        curves = true_curves(truth, frame)
        rows = []
        for label, lt in (("uncalibrated", None), ("2 lift tests", lifts)):
            t1 = time.perf_counter()
            model = MarketingMixModel(
                channels=CHANNELS, controls=CONTROLS, n_bootstrap=n_bootstrap, random_state=seed, lift_mode=lift_mode
            )
            model.fit(X, y, lift_tests=lt)
            fit_s = time.perf_counter() - t1
            mape = holdout_mape(model, X, y, HOLDOUT_WEEKS, lift_tests=lt)
            capture, predicted_share = plan_capture(model, curves, frame)
            for ch in CHANNELS:
                t = truth["channels"][ch]
                lo, hi = model.roi_interval_.loc[ch, "low"], model.roi_interval_.loc[ch, "high"]
                rows.append(
                    {
                        "seed": seed,
                        "setting": label,
                        "channel": ch,
                        "roi_true": t["roi"],
                        "roi_est": model.roi_[ch],
                        "roi_low": lo,
                        "roi_high": hi,
                        "covered": bool(lo <= t["roi"] <= hi),
                        "roi_err": abs(model.roi_[ch] / t["roi"] - 1),
                        "mroi_true": t["marginal_roi"],
                        "mroi_est": model.mroi_[ch],
                        "mroi_err": abs(model.mroi_[ch] / t["marginal_roi"] - 1),
                        "holdout_mape": mape,
                        "fit_s": fit_s,
                        "fit_search_s": model.fit_seconds_search_,
                        "capture": capture,
                        "pred_uplift_share": predicted_share,
                        "r2": model.diagnostics_["r2"],
                        "prep_s": prep,
                    }
                )
        return rows
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--bootstrap", type=int, default=20, help="bootstrap resamples (each redoes the search)")
    parser.add_argument(
        "--lift-mode",
        default="window_contribution",
        choices=["window_contribution", "incremental"],
        help="estimand of the lift tests; the demo's tests measure the channel's contribution during the window",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep generated data under this folder (and reuse it when already there)",
    )
    args = parser.parse_args(argv)
    rows = []
    for seed in args.seeds:
        rows += run_seed(seed, args.bootstrap, args.keep, args.lift_mode)
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    detail = df[
        ["seed", "setting", "channel", "roi_true", "roi_est", "roi_low", "roi_high", "covered", "mroi_true", "mroi_est"]
    ]
    print(f"lift_mode={args.lift_mode}, bootstrap={args.bootstrap}, seeds={args.seeds}")
    print("Per channel (ROI interval = 90% block bootstrap redoing the search)")
    print(detail.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    per_seed = df.groupby(["setting", "seed"]).agg(
        roi_err=("roi_err", "mean"),
        mroi_err=("mroi_err", "mean"),
        coverage=("covered", "mean"),
        holdout_mape=("holdout_mape", "first"),
        fit_s=("fit_s", "first"),
        fit_search_s=("fit_search_s", "first"),
        capture=("capture", "first"),
        r2=("r2", "first"),
    )
    print("\nPer seed")
    print(per_seed.to_string(float_format=lambda v: f"{v:.3f}"))
    summary = per_seed.groupby(level="setting").mean()
    print("\nMean over seeds (targets: " + ", ".join(f"{k} {v}" for k, v in TARGETS.items()) + ")")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
