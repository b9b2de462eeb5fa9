"""The marketing-mix model: a scikit-learn regressor over a weekly frame of channel spend and controls.

Outcome model (weekly)::

    y_t = intercept + trend * t + sum_k (a_k sin(k w_t) + b_k cos(k w_t)) + sum_j g_j control_jt
          + sum_c beta_c * hill(adstock(spend_c, decay_c)_t; half_saturation_c, slope_c) + e_t

with ``w_t = 2 pi * day_of_year_t / 365.25`` and ``t`` in years from the first fitted week. Baseline, trend,
seasonality and controls are unpenalised and sign-free; ``beta_c >= 0`` with a ridge penalty. The
non-linear hyperparameters are chosen by :func:`~marketing_assets.lib.mmm.search.search_hyperparameters`
under weakly informative priors (:data:`DEFAULT_PRIORS`, :data:`DEFAULT_POOLING`); lift tests enter both the
solver (as pseudo-observations on ``beta``) and the search objective.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .params import model_from_params, model_to_params
from .optimize import BudgetPlan, ChannelCurve, optimize_allocation, percentile_interval, total_contribution
from .search import LiftSpec, Problem, SearchResult, lift_design, search_hyperparameters
from .transforms import geometric_adstock, hill, hill_derivative

SYNTHETIC_START = pd.Timestamp("2000-01-03")
"""First week used when ``X`` carries no dates (a Monday)."""

DEFAULT_PRIORS: dict[str, tuple[float, float]] = {"ratio": (1.0, 0.5), "slope": (1.0, 0.5), "roi": (1.22, 0.9)}
"""Weakly informative priors, ``(center, sd of the log)``: half-saturation near the channel's typical adstock
level (as Meridian's default ``ec`` prior), a Hill slope near 1 and an ROI (outcome per unit of spend) that is
log-normal with median ``e^0.2 = 1.22`` and log-sd 0.9 (Meridian's default ROI prior; it assumes the outcome is
revenue in the spend's currency). Pass ``priors={}`` for a flat search."""

DEFAULT_POOLING: dict[str, float] = {"slope": 0.3}
"""Hierarchical priors, ``{hyperparameter: within-channel sd}``: the channels' log Hill slopes scatter with
sd 0.3 around a shared center that gets the ``slope`` prior. Pass ``prior_pooling={}`` for independent priors."""

LIFT_COLUMNS = ("channel", "start", "end", "lift", "lift_se")
CARRYOVER_WEEKS = 26
"""Weeks after a planning horizon over which its spend's carry-over is still counted."""


WORKER_IDLE_SECONDS = 1
"""The bootstrap's worker processes exit this long after their last resample (joblib's default keeps them, and their
memory, for five minutes)."""


class MarketingMixModel(RegressorMixin, BaseEstimator):
    """Marketing-mix regression with adstock, Hill saturation, lift-test calibration and a bootstrap.

    Args:
        channels: spend columns of ``X``; ``None`` means every column that is not a control or the date column.
        controls: control columns of ``X`` (unpenalised, any sign), e.g. promo or holiday flags.
        date_column: column of ``X`` holding the week start when ``X`` has no ``DatetimeIndex``.
        fourier_order: number of yearly sine/cosine pairs (0 disables seasonality).
        trend: include a linear trend.
        cv_scheme: ``"blocked"`` (contiguous blocks held out in turn) or ``"expanding"`` (forward chaining)
            time-series cross-validation.
        n_splits: number of folds.
        cv_test_size: weeks per fold of the expanding scheme.
        n_init: Sobol candidates before the coordinate passes (rounded up to a power of two).
        n_passes: coordinate passes over the hyperparameter grids.
        n_refine: evaluations of the continuous (Powell) refinement after the grid passes (0 = none).
        lift_weight: weight of the lift tests (1 = treat them as independent Gaussian measurements).
        lift_mode: ``"incremental"`` (contribution with minus without the channel's spend in the window,
            carryover after the window included) or ``"window_contribution"`` (the channel's modelled
            contribution during the window).
        decomp_weight: weight of Robyn's decomposition distance in the search objective (0 = off).
        priors: penalties on the hyperparameters and the ROI, see :class:`~marketing_assets.lib.mmm.search.Problem`;
            ``None`` uses :data:`DEFAULT_PRIORS`, ``{}`` none.
        prior_pooling: hyperparameters whose prior is hierarchical across channels (``{name: within sd}``);
            ``None`` uses :data:`DEFAULT_POOLING`, ``{}`` none.
        n_bootstrap: randomised-MAP block-bootstrap resamples (see :meth:`_bootstrap`), each redoing the search
            (0 = no intervals).
        block_size: bootstrap block length in weeks.
        interval: central probability of the reported intervals.
        random_state: seed of the search and the bootstrap.
        n_jobs: processes that run the bootstrap's searches (joblib: ``None`` or 1 in this process, -1 one per
            CPU). The draws are made first, in order, so the fit is the same for any ``n_jobs``; a compute
            setting, not a model setting, it is not part of :meth:`to_params`.

    Attributes (after ``fit``):
        channel_params_: per channel ``decay``, ``half_saturation`` (absolute, spend units),
            ``half_saturation_ratio``, ``slope`` and ``coefficient`` (outcome at full saturation).
        coef_: unpenalised coefficients (names in ``base_names_``) followed by the media coefficients.
        roi_: per channel modelled contribution ÷ spend over the fit period.
        mroi_: per channel d contribution / d spend when every week's spend scales together.
        roi_interval_, mroi_interval_: ``low`` / ``high`` bootstrap percentiles (``interval``, see
            :func:`~marketing_assets.lib.mmm.optimize.percentile_interval`); NaN without a bootstrap.
        roi_bootstrap_, mroi_bootstrap_: ROI and marginal ROI of each bootstrap model (one row per draw);
            ``bootstrap_params_`` their channel parameters.
        lift_tests_: the lift tests inside the fit period with ``predicted_lift`` and ``z``.
        diagnostics_: ``r2``, ``nrmse`` (RMSE ÷ range), ``mape``, ``cv_rmse``, ``decomp_rssd``,
            ``lift_mean_abs_z``, ``lift_mape``, ``penalty``, ``search_evaluations``.
        search_: the :class:`~marketing_assets.lib.mmm.search.SearchResult`.
        fit_seconds_search_, fit_seconds_: wall time of search + fit, and of the whole fit incl. bootstrap.
    """

    def __init__(
        self,
        channels: Sequence[str] | None = None,
        controls: Sequence[str] = (),
        date_column: str = "week",
        fourier_order: int = 2,
        trend: bool = True,
        cv_scheme: str = "blocked",
        n_splits: int = 6,
        cv_test_size: int = 13,
        n_init: int = 64,
        n_passes: int = 2,
        n_refine: int = 150,
        lift_weight: float = 1.0,
        lift_mode: str = "incremental",
        decomp_weight: float = 0.0,
        priors: Mapping[str, tuple[float, float]] | None = None,
        n_bootstrap: int = 20,
        block_size: int = 8,
        interval: float = 0.9,
        random_state: int | None = 0,
        prior_pooling: Mapping[str, float] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.channels = channels
        self.controls = controls
        self.date_column = date_column
        self.fourier_order = fourier_order
        self.trend = trend
        self.cv_scheme = cv_scheme
        self.n_splits = n_splits
        self.cv_test_size = cv_test_size
        self.n_init = n_init
        self.n_passes = n_passes
        self.n_refine = n_refine
        self.lift_weight = lift_weight
        self.lift_mode = lift_mode
        self.decomp_weight = decomp_weight
        self.priors = priors
        self.n_bootstrap = n_bootstrap
        self.block_size = block_size
        self.interval = interval
        self.random_state = random_state
        self.prior_pooling = prior_pooling
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ data preparation
    def _frame(self, X: Any) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
        """``X`` as a DataFrame with its week dates (synthetic consecutive weeks when there are none)."""
        if isinstance(X, pd.DataFrame):
            df = X
        else:
            arr = np.asarray(X)
            if np.iscomplexobj(arr):
                raise ValueError("Complex data not supported")
            if arr.dtype == object:
                arr = arr.astype(float)
            if arr.ndim != 2:
                raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead. Reshape your data.")
            df = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        if isinstance(df.index, pd.DatetimeIndex):
            dates = (
                pd.DatetimeIndex(df.index).tz_localize(None) if df.index.tz is not None else pd.DatetimeIndex(df.index)
            )
        elif self.date_column in df.columns:
            dates = pd.DatetimeIndex(pd.to_datetime(df[self.date_column]))
            df = df.drop(columns=[self.date_column])
        else:
            dates = pd.date_range(SYNTHETIC_START, periods=len(df), freq="7D")
        return df, dates.normalize()

    def _resolve_columns(self, df: pd.DataFrame) -> tuple[list[str], list[str]]:
        controls = list(self.controls or [])
        channels = list(self.channels) if self.channels is not None else [c for c in df.columns if c not in controls]
        missing = [c for c in channels + controls if c not in df.columns]
        if missing:
            raise ValueError(f"X lacks columns: {missing}")
        return channels, controls

    def _numeric(self, df: pd.DataFrame, cols: list[str], what: str) -> np.ndarray:
        if not cols:
            return np.zeros((len(df), 0))
        arr = df[cols].to_numpy(dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} columns contain NaN or infinity")
        return arr

    def _base_columns(self, dates: pd.DatetimeIndex, controls: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Unpenalised columns: intercept, trend, Fourier terms, controls."""
        cols, names = [np.ones(len(dates))], ["intercept"]
        if self.trend:
            cols.append(np.asarray((dates - self.origin_).days, dtype=float) / 365.25)
            names.append("trend")
        phase = 2 * np.pi * np.asarray(dates.dayofyear, dtype=float) / 365.25
        for k in range(1, self.fourier_order + 1):
            cols += [np.sin(k * phase), np.cos(k * phase)]
            names += [f"sin{k}", f"cos{k}"]
        for j in range(controls.shape[1]):
            cols.append(controls[:, j])
        names += list(self.controls_)
        return np.column_stack(cols), names

    def _lift_spec(self, lift_tests: pd.DataFrame | None, dates: pd.DatetimeIndex) -> LiftSpec | None:
        if lift_tests is None or len(lift_tests) == 0:
            return None
        lt = pd.DataFrame(lift_tests)
        missing = [c for c in LIFT_COLUMNS if c not in lt.columns]
        if missing:
            raise ValueError(f"lift_tests lacks columns: {missing}")
        unknown = sorted(set(lt["channel"]) - set(self.channels_))
        if unknown:
            raise ValueError(f"lift_tests name unknown channels: {unknown}")
        if self.lift_mode not in ("incremental", "window_contribution"):
            raise ValueError("lift_mode must be 'incremental' or 'window_contribution'")
        start = pd.to_datetime(lt["start"]).dt.normalize().to_numpy()
        end = pd.to_datetime(lt["end"]).dt.normalize().to_numpy()
        week_start = dates.to_numpy()
        week_end = week_start + np.timedelta64(6, "D")
        window = (week_end[None, :] >= start[:, None]) & (week_start[None, :] <= end[:, None])
        se = lt["lift_se"].to_numpy(dtype=float)
        if np.any(se <= 0):
            raise ValueError("lift_se must be positive")
        keep = window.any(axis=1)
        idx = np.array([self.channels_.index(c) for c in lt["channel"]], dtype=int)
        return LiftSpec(idx[keep], window[keep], lt["lift"].to_numpy(dtype=float)[keep], se[keep], self.lift_mode)

    # ------------------------------------------------------------------ fitting
    def _priors(self) -> tuple[Mapping[str, tuple[Any, float]], Mapping[str, float]]:
        """The priors and the pooling in effect (defaults when ``None``)."""
        priors = DEFAULT_PRIORS if self.priors is None else self.priors
        return priors, DEFAULT_POOLING if self.prior_pooling is None else self.prior_pooling

    def _search(
        self,
        Z: np.ndarray,
        spend: np.ndarray,
        y_scaled: np.ndarray,
        lifts: LiftSpec | None,
        seed: int | None,
        priors: Mapping[str, tuple[Any, float]] | None = None,
    ) -> tuple[SearchResult, Problem]:
        default_priors, pooling = self._priors()
        problem = Problem(
            Z,
            spend,
            y_scaled,
            lifts,
            self.n_splits,
            self.cv_test_size,
            self.lift_weight,
            self.decomp_weight,
            default_priors if priors is None else priors,
            self.cv_scheme,
            pooling,
            self.y_scale_,
        )
        return search_hyperparameters(problem, self.n_init, self.n_passes, seed, self.n_refine), problem

    def _params_from(
        self, res: SearchResult, problem: Problem, scale: float
    ) -> tuple[dict[str, dict[str, float]], np.ndarray, np.ndarray]:
        """Channel parameters (absolute half-saturation, unscaled coefficient) and the full-data coefficients."""
        M, L = problem.design(res.decay, res.ratio, res.slope)
        g, b = problem.solve(M, L, 10.0**res.log10_penalty)
        params = {}
        for c, ch in enumerate(self.channels_):
            params[ch] = {
                "decay": float(res.decay[c]),
                "half_saturation": float(problem.half_saturation(c, res.decay[c], res.ratio[c])),
                "half_saturation_ratio": float(res.ratio[c]),
                "slope": float(res.slope[c]),
                "coefficient": float(b[c] * scale),
            }
        return params, g * scale, b * scale

    def fit(self, X: Any, y: Any, lift_tests: pd.DataFrame | None = None) -> MarketingMixModel:
        """Search the hyperparameters, fit the coefficients and (optionally) bootstrap the intervals.

        Args:
            X: weekly frame (``DatetimeIndex`` or ``date_column``) with channel spend and control columns;
                rows must be consecutive weeks.
            y: weekly outcome.
            lift_tests: optional DataFrame with ``channel``, ``start``, ``end`` (inclusive dates), ``lift``
                (incremental outcome measured over the window) and ``lift_se``.
        """
        t0 = time.perf_counter()
        df, dates = self._frame(X)
        if df.shape[1] == 0:
            raise ValueError(f"X has 0 feature(s) (shape=({len(df)}, 0)) while a minimum of 1 is required.")
        if np.iscomplexobj(np.asarray(y)):
            raise ValueError("Complex data not supported")
        y_arr = np.asarray(y, dtype=float)
        if y_arr.ndim != 1:
            y_arr = y_arr.reshape(len(y_arr), -1)
            if y_arr.shape[1] != 1:
                raise ValueError("y must be one-dimensional")
            y_arr = y_arr[:, 0]
        if len(y_arr) != len(df):
            raise ValueError(f"X has {len(df)} rows but y has {len(y_arr)}")
        if len(df) < 3:
            raise ValueError(f"n_samples={len(df)}: at least 3 weeks are needed")
        if not np.all(np.isfinite(y_arr)):
            raise ValueError("y contains NaN or infinity")
        self.channels_, self.controls_ = self._resolve_columns(df)
        if not dates.is_monotonic_increasing or dates.has_duplicates:
            raise ValueError("weeks must be unique and increasing")
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(list(df.columns), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = df.shape[1]
        spend = self._numeric(df, self.channels_, "channel")
        controls = self._numeric(df, self.controls_, "control")
        self.origin_ = dates[0]
        self.dates_ = dates
        self.spend_ = spend
        self.control_values_ = controls
        Z, self.base_names_ = self._base_columns(dates, controls)
        self.y_scale_ = float(np.std(y_arr)) or float(np.abs(y_arr).mean()) or 1.0
        lifts = self._lift_spec(lift_tests, dates)
        scaled_lifts = None
        if lifts is not None:
            scaled_lifts = LiftSpec(
                lifts.channel_index, lifts.window, lifts.lift / self.y_scale_, lifts.se / self.y_scale_, lifts.mode
            )
        self.lift_spec_ = lifts
        res, problem = self._search(Z, spend, y_arr / self.y_scale_, scaled_lifts, self.random_state)
        self.search_ = res
        self.channel_params_, self.base_coef_, beta = self._params_from(res, problem, self.y_scale_)
        self.coef_ = np.concatenate([self.base_coef_, beta])
        self.intercept_ = float(self.base_coef_[0])
        self.penalty_ = 10.0**res.log10_penalty
        fitted = self._predict_arrays(Z, spend, self.channel_params_)
        self.fit_seconds_search_ = time.perf_counter() - t0
        self.roi_ = self._roi(spend, self.channel_params_)
        self.mroi_ = self._mroi(spend, self.channel_params_)
        self.lift_tests_ = self._lift_table(lift_tests, lifts)
        self.diagnostics_ = self._diagnostics(y_arr, fitted, spend, res)
        self._bootstrap(Z, spend, y_arr, fitted, lifts)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _bootstrap(
        self, Z: np.ndarray, spend: np.ndarray, y: np.ndarray, fitted: np.ndarray, lifts: LiftSpec | None
    ) -> None:
        """Randomised-MAP block bootstrap; every resample reruns the hyperparameter search.

        Each resample perturbs everything the fit is conditioned on by a draw of its uncertainty and refits:
        the outcome by moving blocks of residuals (``y* = y + e*``), each lift test by its standard error and
        each prior center by its prior (:meth:`_perturbed_priors`). For a linear-Gaussian model the refits
        are exact posterior draws ("randomised maximum likelihood"); unlike a residual bootstrap around the
        fit, the intervals also widen where the data leave the answer to the prior (e.g. the ROI of an
        always-on channel). The residuals are rescaled by ``sqrt(n / (n - p))`` with ``p`` the fitted
        parameters (unpenalised columns plus coefficient, decay, half-saturation and slope per channel), as a
        fitted model's residuals understate the noise.
        """
        self.bootstrap_params_: list[dict[str, dict[str, float]]] = []
        rows = []
        if self.n_bootstrap <= 0:
            self.roi_interval_ = pd.DataFrame({"low": np.nan, "high": np.nan}, index=self.channels_)
            self.mroi_interval_ = self.roi_interval_.copy()
            self.roi_bootstrap_ = pd.DataFrame(columns=self.channels_, dtype=float)
            self.mroi_bootstrap_ = self.roi_bootstrap_.copy()
            return
        rng = np.random.default_rng(self.random_state)
        resid = y - fitted
        n, block = len(y), max(1, min(self.block_size, len(y)))
        n_params = Z.shape[1] + 4 * spend.shape[1]
        inflated = resid * np.sqrt(n / (n - n_params)) if n > n_params else resid
        mrois = []
        draws = []  # every resample's draws first, in the generator's order: the searches then run in any order
        for _ in range(self.n_bootstrap):
            starts = rng.integers(0, n - block + 1, size=int(np.ceil(n / block)))
            e = np.concatenate([inflated[s : s + block] for s in starts])[:n]
            y_star = y + e - e.mean()
            star_lifts = None
            if lifts is not None:
                l_star = lifts.lift + rng.normal(0.0, lifts.se)
                star_lifts = LiftSpec(
                    lifts.channel_index, lifts.window, l_star / self.y_scale_, lifts.se / self.y_scale_, lifts.mode
                )
            priors = self._perturbed_priors(rng)
            seed = int(rng.integers(0, 2**31 - 1))
            draws.append((y_star / self.y_scale_, star_lifts, seed, priors))
        n_jobs = min(self.n_jobs, len(draws)) if self.n_jobs is not None and self.n_jobs > 0 else self.n_jobs
        refit = delayed(self._resample_params)
        with parallel_config(backend="loky", idle_worker_timeout=WORKER_IDLE_SECONDS):
            fits = Parallel(n_jobs=n_jobs)(refit(Z, spend, *draw) for draw in draws)
        for params in fits:
            self.bootstrap_params_.append(params)
            rows.append(self._roi(spend, params))
            mrois.append(self._mroi(spend, params))
        self.roi_bootstrap_ = pd.DataFrame(rows)
        low, high = percentile_interval(self.roi_bootstrap_.to_numpy(), self.interval)
        self.roi_interval_ = pd.DataFrame({"low": low, "high": high}, index=self.channels_)
        self.mroi_bootstrap_ = pd.DataFrame(mrois)
        low, high = percentile_interval(self.mroi_bootstrap_.to_numpy(), self.interval)
        self.mroi_interval_ = pd.DataFrame({"low": low, "high": high}, index=self.channels_)

    def _resample_params(
        self,
        Z: np.ndarray,
        spend: np.ndarray,
        y_scaled: np.ndarray,
        lifts: LiftSpec | None,
        seed: int,
        priors: Mapping[str, tuple[Any, float]],
    ) -> dict[str, dict[str, float]]:
        """The channel parameters of one bootstrap resample: the search rerun on its draws."""
        res, problem = self._search(Z, spend, y_scaled, lifts, seed, priors)
        params, _, _ = self._params_from(res, problem, self.y_scale_)
        return params

    def _perturbed_priors(self, rng: np.random.Generator) -> dict[str, tuple[Any, float]]:
        """The priors with their centers drawn from themselves: one draw per channel, or one draw of the shared
        center for a pooled hyperparameter (log scale except for ``decay``)."""
        priors, pooling = self._priors()
        out: dict[str, tuple[Any, float]] = {}
        for key, (center, sd) in priors.items():
            shift = rng.normal(0.0, sd, None if key in pooling else len(self.channels_))
            out[key] = (center + shift if key == "decay" else center * np.exp(shift), sd)
        return out

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _channel_effect(spend: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
        return p["coefficient"] * hill(geometric_adstock(spend, p["decay"]), p["half_saturation"], p["slope"])

    def _predict_arrays(
        self, Z: np.ndarray, spend: np.ndarray, params: Mapping[str, Mapping[str, float]]
    ) -> np.ndarray:
        out = Z @ self.base_coef_
        for c, ch in enumerate(self.channels_):
            out = out + self._channel_effect(spend[:, c], params[ch])
        return out

    def _roi(self, spend: np.ndarray, params: Mapping[str, Mapping[str, float]]) -> pd.Series:
        vals = {}
        for c, ch in enumerate(self.channels_):
            total = spend[:, c].sum()
            vals[ch] = float(self._channel_effect(spend[:, c], params[ch]).sum() / total) if total > 0 else np.nan
        return pd.Series(vals, name="roi")

    def _mroi(self, spend: np.ndarray, params: Mapping[str, Mapping[str, float]]) -> pd.Series:
        vals = {}
        for c, ch in enumerate(self.channels_):
            p, total = params[ch], spend[:, c].sum()
            if total <= 0:
                vals[ch] = np.nan
                continue
            a = geometric_adstock(spend[:, c], p["decay"])
            deriv = hill_derivative(a, p["half_saturation"], p["slope"])
            deriv = np.where(np.isfinite(deriv), deriv, 0.0)
            vals[ch] = float(p["coefficient"] * np.sum(deriv * a) / total)
        return pd.Series(vals, name="mroi")

    def _predict_lift(self, i: int, lifts: LiftSpec, params: Mapping[str, Mapping[str, float]]) -> float:
        c = int(lifts.channel_index[i])
        p = params[self.channels_[c]]
        return p["coefficient"] * lift_design(
            self.spend_[:, c], p["decay"], p["half_saturation"], p["slope"], lifts.window[i], lifts.mode
        )

    def _lift_table(self, lift_tests: pd.DataFrame | None, lifts: LiftSpec | None) -> pd.DataFrame:
        cols = ["channel", "start", "end", "lift", "lift_se", "predicted_lift", "z"]
        if lifts is None or lift_tests is None:
            return pd.DataFrame(columns=cols)
        lt = pd.DataFrame(lift_tests).reset_index(drop=True)
        inside = [i for i in range(len(lt)) if self._lift_in_range(lt.loc[i])]
        lt = lt.loc[inside, ["channel", "start", "end", "lift", "lift_se"]].reset_index(drop=True)
        lt["predicted_lift"] = [self._predict_lift(i, lifts, self.channel_params_) for i in range(len(lifts.lift))]
        lt["z"] = (lt["predicted_lift"] - lt["lift"]) / lt["lift_se"]
        return lt

    def _lift_in_range(self, row: pd.Series) -> bool:
        start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
        return bool(((self.dates_ + pd.Timedelta(days=6) >= start) & (self.dates_ <= end)).any())

    def _diagnostics(self, y: np.ndarray, fitted: np.ndarray, spend: np.ndarray, res: SearchResult) -> dict[str, float]:
        resid = y - fitted
        ss_tot = float(((y - y.mean()) ** 2).sum())
        effect = np.array(
            [self._channel_effect(spend[:, c], self.channel_params_[ch]).sum() for c, ch in enumerate(self.channels_)]
        )
        spend_share = spend.sum(0) / max(spend.sum(), 1e-12)
        effect_share = effect / max(effect.sum(), 1e-12)
        out = {
            "r2": 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else float("nan"),
            "nrmse": float(np.sqrt(np.mean(resid**2)) / (y.max() - y.min())) if y.max() > y.min() else float("nan"),
            "mape": float(np.mean(np.abs(resid) / np.abs(y))) if np.all(y != 0) else float("nan"),
            "cv_rmse": float(np.sqrt(res.cv_mse) * self.y_scale_),
            "decomp_rssd": float(np.sqrt(((effect_share - spend_share) ** 2).sum())),
            "lift_mean_abs_z": float(np.mean(np.abs(self.lift_tests_["z"]))) if len(self.lift_tests_) else float("nan"),
            "lift_mape": float(np.mean(np.abs(self.lift_tests_["predicted_lift"] / self.lift_tests_["lift"] - 1)))
            if len(self.lift_tests_)
            else float("nan"),
            "penalty": float(self.penalty_),
            "search_evaluations": int(res.n_evaluations),
        }
        return out

    # ------------------------------------------------------------------ public API after fit
    def _prepare(self, X: Any) -> tuple[np.ndarray, np.ndarray, pd.DatetimeIndex]:
        check_is_fitted(self, "coef_")
        df, dates = self._frame(X)
        if not isinstance(X, pd.DataFrame):
            if df.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {df.shape[1]} features, but MarketingMixModel is expecting {self.n_features_in_} features as input"
                )
            df.columns = [f"x{i}" for i in range(df.shape[1])]
        spend = self._numeric(df, self.channels_, "channel")
        Z, _ = self._base_columns(dates, self._numeric(df, self.controls_, "control"))
        return Z, spend, dates

    def predict(self, X: Any) -> np.ndarray:
        """Predicted outcome per row; adstock starts from zero at the first row of ``X``."""
        Z, spend, _ = self._prepare(X)
        return self._predict_arrays(Z, spend, self.channel_params_)

    def contributions(self, X: Any) -> pd.DataFrame:
        """Weekly decomposition: ``baseline``, ``trend``, ``seasonality``, one column per control and per
        channel, and ``predicted`` (their sum), indexed by week."""
        Z, spend, dates = self._prepare(X)
        names = self.base_names_
        out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="week"))
        out["baseline"] = Z[:, 0] * self.base_coef_[0]
        out["trend"] = Z[:, 1] * self.base_coef_[1] if "trend" in names else 0.0
        seas = [i for i, n in enumerate(names) if n.startswith(("sin", "cos"))]
        out["seasonality"] = Z[:, seas] @ self.base_coef_[seas] if seas else 0.0
        for ctl in self.controls_:
            i = names.index(ctl)
            out[ctl] = Z[:, i] * self.base_coef_[i]
        for c, ch in enumerate(self.channels_):
            out[ch] = self._channel_effect(spend[:, c], self.channel_params_[ch])
        out["predicted"] = out.sum(axis=1)
        return out

    def _curves(
        self, params: Mapping[str, Mapping[str, float]] | None = None, horizon_weeks: int | None = None
    ) -> dict[str, ChannelCurve]:
        params = self.channel_params_ if params is None else params
        if horizon_weeks is None:
            return {ch: ChannelCurve(self.spend_[:, c], params[ch]) for c, ch in enumerate(self.channels_)}
        return {ch: self._planning_curve(c, params[ch], int(horizon_weeks)) for c, ch in enumerate(self.channels_)}

    def _planning_curve(self, c: int, params: Mapping[str, float], weeks: int) -> ChannelCurve:
        """Response over the ``weeks`` after the fit period: their spend follows the last ``weeks`` weeks' pattern
        (the current run rate), the adstock built up before carries in, and :data:`CARRYOVER_WEEKS` weeks without
        spend follow, so that carry-over out of the period is counted too."""
        pattern = np.concatenate([self.spend_[-weeks:, c], np.zeros(CARRYOVER_WEEKS)])
        built_up = geometric_adstock(self.spend_[:, c], params["decay"])[-1]
        carry = built_up * params["decay"] ** np.arange(1, len(pattern) + 1)
        return ChannelCurve(pattern, params, carry_in=carry)

    def current_spend(self, horizon_weeks: int | None = None) -> dict[str, float]:
        """Per channel spend over the fit period, or over its last ``horizon_weeks`` weeks (the run rate a
        plan for the next ``horizon_weeks`` weeks starts from)."""
        check_is_fitted(self, "coef_")
        rows = self.spend_ if horizon_weeks is None else self.spend_[-int(horizon_weeks):]
        return {ch: float(rows[:, c].sum()) for c, ch in enumerate(self.channels_)}

    def group_returns(self, groups: Mapping[str, str], interval: float | None = None) -> pd.DataFrame:
        """ROI and marginal ROI of groups of channels (e.g. channel groups) with bootstrap intervals.

        ``groups`` maps each channel to its group. A group's ROI is its channels' contribution ÷ spend; its
        marginal ROI is d contribution / d spend when all its channels' spend scales together, i.e. the
        spend-weighted mean of the channels' marginal ROIs. The intervals come from the same bootstrap draws,
        group by group (not from averaging the channels' interval ends, which would ignore their correlation), at
        ``interval`` (default: the model's ``interval``). ``best_other`` is the other group with the highest
        marginal ROI and ``mroi_gap_low`` / ``_high`` the interval of this group's marginal ROI minus that group's,
        draw by draw: whether a dollar moved between the two clearly gains or loses.
        Returns one row per group: ``group``, ``channels`` (comma-separated), ``spend``, ``contribution``,
        ``roi``, ``roi_low``, ``roi_high``, ``mroi``, ``mroi_low``, ``mroi_high``, ``best_other``, ``mroi_gap``,
        ``mroi_gap_low``, ``mroi_gap_high``.
        """
        check_is_fitted(self, "coef_")
        level = interval or self.interval
        spend = pd.Series(self.spend_.sum(axis=0), index=self.channels_)
        names = list(dict.fromkeys(groups[ch] for ch in self.channels_ if ch in groups))
        weights = {g: spend[[ch for ch in self.channels_ if groups.get(ch) == g]] for g in names}

        def weighted(values: pd.Series | pd.DataFrame, group: str) -> Any:
            w = weights[group]
            return (values[list(w.index)] * w).sum(axis=1 if isinstance(values, pd.DataFrame) else 0) / w.sum()

        live = [g for g in names if weights[g].sum() > 0]
        point = {g: float(weighted(self.mroi_, g)) for g in live}
        draws = {g: np.asarray(weighted(self.mroi_bootstrap_, g), dtype=float) for g in live} if len(self.mroi_bootstrap_) else {}
        rows = []
        for group in names:
            total = float(weights[group].sum())
            roi = float(weighted(self.roi_, group)) if total > 0 else np.nan
            row = {"group": group, "channels": ", ".join(weights[group].index), "spend": total, "contribution": roi * total,
                   "roi": roi, "mroi": point.get(group, np.nan)}
            for name, boot in (("roi", self.roi_bootstrap_), ("mroi", self.mroi_bootstrap_)):
                low, high = percentile_interval(weighted(boot, group).to_numpy(), level) if len(boot) and total > 0 else (np.nan, np.nan)
                row[f"{name}_low"], row[f"{name}_high"] = float(low), float(high)
            others = [g for g in live if g != group]
            best = max(others, key=point.get) if others and group in point else None
            row["best_other"] = best
            row["mroi_gap"] = point[group] - point[best] if best else np.nan
            low, high = percentile_interval(draws[group] - draws[best], level) if best and draws else (np.nan, np.nan)
            row["mroi_gap_low"], row["mroi_gap_high"] = float(low), float(high)
            rows.append(row)
        cols = ["group", "channels", "spend", "contribution", "roi", "roi_low", "roi_high", "mroi", "mroi_low", "mroi_high",
                "best_other", "mroi_gap", "mroi_gap_low", "mroi_gap_high"]
        return pd.DataFrame(rows, columns=cols)

    def response_curve(self, channel: str, spend_grid: Sequence[float] | np.ndarray) -> pd.DataFrame:
        """Modelled contribution over the fit period when the channel's total spend over the period is each
        grid value (every week's spend scaled by the same factor, so the weekly pattern is kept).

        Returns a DataFrame with ``spend``, ``contribution``, ``roi``, ``mroi`` (d contribution / d spend) and,
        after a bootstrap, ``contribution_low`` / ``contribution_high``.
        """
        check_is_fitted(self, "coef_")
        if channel not in self.channels_:
            raise ValueError(f"unknown channel {channel!r}")
        grid = np.asarray(spend_grid, dtype=float)
        curve = self._curves()[channel]
        contrib = np.array([curve.contribution(s) for s in grid])
        out = pd.DataFrame({"spend": grid, "contribution": contrib})
        with np.errstate(divide="ignore", invalid="ignore"):
            out["roi"] = np.where(grid > 0, contrib / grid, np.nan)
        out["mroi"] = [curve.marginal(s) for s in grid]
        if self.bootstrap_params_:
            boot_curves = [self._curves(p)[channel] for p in self.bootstrap_params_]
            boot = np.array([[bc.contribution(s) for s in grid] for bc in boot_curves])
            out["contribution_low"], out["contribution_high"] = percentile_interval(boot, self.interval)
        return out

    def optimize_budget(
        self,
        total: float | None = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
        horizon_weeks: int | None = None,
    ) -> BudgetPlan:
        """Allocation of ``total`` spend that maximises modelled media contribution.

        Args:
            total: total spend over the period (default: the actual total).
            bounds: per channel ``(low, high)`` total spend; channels not given get ``(0, total)``.
            horizon_weeks: plan the next ``horizon_weeks`` weeks from the current run rate (the last
                ``horizon_weeks`` weeks of spend, their weekly pattern kept, carry-over after the period
                counted); ``None`` re-plans the whole fit period.

        Returns:
            A :class:`~marketing_assets.lib.mmm.optimize.BudgetPlan` whose uplift (vs the current allocation
            scaled to ``total``) carries an interval from the bootstrap models.
        """
        check_is_fitted(self, "coef_")
        curves = self._curves(horizon_weeks=horizon_weeks)
        current = self.current_spend(horizon_weeks)
        boot = [self._curves(p, horizon_weeks) for p in self.bootstrap_params_]
        base = self.contributions(self._design_frame()).drop(columns=self.channels_ + ["predicted"]).sum(axis=1)
        base = float(base.to_numpy().sum() if horizon_weeks is None else base.to_numpy()[-int(horizon_weeks):].sum())
        return optimize_allocation(curves, current, total, bounds, boot, self.interval, base_outcome=base)

    def _design_frame(self) -> pd.DataFrame:
        """The fitted data as a frame (dates as index) for :meth:`contributions`."""
        df = pd.DataFrame({ch: self.spend_[:, c] for c, ch in enumerate(self.channels_)}, index=self.dates_)
        for j, ctl in enumerate(self.controls_):
            df[ctl] = self.control_values_[:, j]
        return df

    def total_contribution(self, spend_totals: Mapping[str, float], horizon_weeks: int | None = None) -> float:
        """Modelled media contribution for per-channel total spends (pattern kept), over the fit period or a
        planning horizon (see :meth:`optimize_budget`)."""
        return total_contribution(self._curves(horizon_weeks=horizon_weeks), spend_totals)

    def to_params(self) -> dict[str, Any]:
        """The fitted model as plain JSON-able data (settings, fit weeks, coefficients, channel and bootstrap
        parameters, intervals, lift-test calibration, diagnostics): :meth:`from_params` rebuilds it exactly."""
        check_is_fitted(self, "coef_")
        return model_to_params(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MarketingMixModel:
        """A fitted model rebuilt from :meth:`to_params` data, without refitting: its predictions, decomposition,
        response curves, returns, intervals and budget plans equal the original's."""
        return model_from_params(cls, dict(params))

    def __sklearn_tags__(self) -> Any:
        """Tags: no missing values; scores on random data are not meaningful for a media model."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.regressor_tags.poor_score = True
        return tags


def holdout_mape(
    model: MarketingMixModel,
    X: pd.DataFrame,
    y: Any,
    holdout_weeks: int = 26,
    lift_tests: pd.DataFrame | None = None,
) -> float:
    """Out-of-time error: fit a clone (without bootstrap) on all but the last ``holdout_weeks`` rows, predict
    the whole frame (so the carryover into the holdout is kept) and return the MAPE over the holdout rows."""
    from sklearn.base import clone

    n = len(X)
    if not 0 < holdout_weeks < n:
        raise ValueError(f"holdout_weeks must lie in (0, {n})")
    y_arr = np.asarray(y, dtype=float)
    cut = n - holdout_weeks
    twin = clone(model).set_params(n_bootstrap=0)
    twin.fit(X.iloc[:cut], y_arr[:cut], lift_tests=lift_tests)
    pred = twin.predict(X)[cut:]
    actual = y_arr[cut:]
    return float(np.mean(np.abs(pred - actual) / np.abs(actual)))


__all__ = ["DEFAULT_POOLING", "DEFAULT_PRIORS", "LIFT_COLUMNS", "MarketingMixModel", "holdout_mape"]
