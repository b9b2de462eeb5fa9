"""Hyperparameter search for the marketing-mix model: time-series cross-validation plus lift-test calibration.

Per channel the search chooses the geometric adstock ``decay``, the Hill ``slope`` and the half-saturation
as a ``ratio`` to the channel's mean adstock over weeks with any adstock; one ridge penalty is shared.
Candidates come from a scrambled Sobol sample followed by coordinate passes over fixed grids.

The objective of a candidate (lower is better) is a profile deviance::

    n * log(cv_mse) + lift_weight * sum_i z_i^2 + prior deviance + decomp_weight * n * rssd

``cv_mse`` is the mean squared error over the cross-validation folds (scaled outcome), ``z_i`` the lift-test
error of the full-data fit in units of the test's standard error, the prior deviance ``-2 log`` the prior
density of the hyperparameters and of the full-data fit's ROI per channel (see :class:`Problem`), and
``rssd`` Robyn's decomposition distance between effect shares and spend shares.

Without spend near zero (an always-on channel) the data pin the marginal ROI but hardly the curvature that
turns it into an ROI: the profile deviance is almost flat along shapes whose ROI differs several-fold. The
ROI prior breaks that tie towards plausible returns, and pooling the Hill slopes lets channels with flighted
spend (whose on/off contrasts do show the curve) inform the shape of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from .solver import orthonormal_basis, solve_partialled_nnls
from .transforms import geometric_adstock, hill

DECAY_RANGE = (0.0, 0.9)
RATIO_RANGE = (0.25, 4.0)
SLOPE_RANGE = (0.5, 3.0)
LOG10_PENALTY_RANGE = (-6.0, -1.0)

PRIOR_KEYS = ("decay", "ratio", "slope", "roi")
ROI_FLOOR = 1e-3
"""ROI used in the log-normal ROI prior for a channel whose fitted effect is zero."""

DECAY_GRID = np.round(np.linspace(0.0, 0.9, 10), 3)
RATIO_GRID = np.round(np.geomspace(0.25, 4.0, 11), 4)
SLOPE_GRID = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0])
LOG10_PENALTY_GRID = np.arange(-6.0, -0.5, 1.0)


@dataclass(frozen=True)
class LiftSpec:
    """Lift tests resolved to row masks: ``window`` (tests × n) and which channel each test measures."""

    channel_index: np.ndarray
    window: np.ndarray
    lift: np.ndarray
    se: np.ndarray
    mode: str = "incremental"


@dataclass
class SearchResult:
    """The winning hyperparameters and the fit they give."""

    decay: np.ndarray
    ratio: np.ndarray
    slope: np.ndarray
    log10_penalty: float
    objective: float
    cv_mse: float
    lift_z: np.ndarray
    n_evaluations: int
    history: list[float] = field(default_factory=list)


def lift_design(
    spend: np.ndarray, decay: float, half_saturation: float, slope: float, window: np.ndarray, mode: str
) -> float:
    """Sum of the saturated media column attributable to the channel's spend in ``window`` (per unit coefficient).

    ``incremental``: hill(adstock(spend)) minus hill(adstock(spend with the window's spend removed)) summed over
    the window and every later row (carryover included). ``window_contribution``: the saturated column summed
    over the window (the channel's whole contribution during the window).
    """
    full = hill(geometric_adstock(spend, decay), half_saturation, slope)
    off = None if mode == "window_contribution" else geometric_adstock(np.where(window, 0.0, spend), decay)
    return _lift_value(full, off, half_saturation, slope, window, mode)


def _lift_value(
    full: np.ndarray,
    off_adstock: np.ndarray | None,
    half_saturation: float,
    slope: float,
    window: np.ndarray,
    mode: str,
) -> float:
    """:func:`lift_design` from the saturated column ``full`` and, for ``incremental``, the adstock of the spend
    with the window's spend removed (``off_adstock``)."""
    if mode == "window_contribution":
        return float(full[window].sum())
    reduced = hill(off_adstock, half_saturation, slope)
    first = int(np.argmax(window)) if window.any() else len(full)
    return float((full[first:] - reduced[first:]).sum())


def normal_deviance(values: np.ndarray, center: float | np.ndarray, sd: float, within_sd: float | None = None) -> float:
    """``-2 log`` density (up to a constant) of ``values`` under a normal prior.

    Without ``within_sd``: ``sum ((v - center) / sd)^2`` (``center`` a scalar or one per value). With it
    (scalar ``center``), the hierarchical prior
    ``v_c ~ N(m, within_sd^2)``, ``m ~ N(center, sd^2)`` at the shared center ``m`` that minimises it
    (a precision-weighted mean of ``center`` and the values' mean, closed form).
    """
    vals = np.asarray(values, dtype=float)
    if not within_sd:
        return float((((vals - center) / sd) ** 2).sum())
    w_vals, w_center = len(vals) / within_sd**2, 1.0 / sd**2
    m = (w_vals * vals.mean() + w_center * center) / (w_vals + w_center) if len(vals) else center
    return float((((vals - m) / within_sd) ** 2).sum() + ((m - center) / sd) ** 2)


def reference_adstock(spend: np.ndarray, decay: float) -> float:
    """Mean adstock over rows with positive adstock (the unit of the half-saturation ratio); 1 if none."""
    return _mean_active(geometric_adstock(spend, decay))


def _mean_active(adstock: np.ndarray) -> float:
    active = adstock[adstock > 0]
    return float(active.mean()) if active.size else 1.0


class Problem:
    """Scaled data and cached media columns for repeated candidate evaluations.

    Args:
        Z: (n, q) unpenalised columns.
        spend: (n, C) media spend.
        y: (n,) outcome (already scaled).
        lifts: optional lift tests with targets scaled like ``y``.
        n_splits: number of folds.
        test_size: rows per fold of the expanding scheme.
        lift_weight: multiplier of the lift term (also of the lift pseudo-observations in the solver).
        decomp_weight: multiplier of the decomposition distance.
        priors: optional ``{"ratio" | "slope" | "roi": (center, log_sd), "decay": (center, sd)}``; each adds
            ``((log v - log center) / log_sd)^2`` (``((v - center) / sd)^2`` for decay) per channel, see
            :func:`normal_deviance`; a center is a scalar or, when not pooled, one value per channel. ``roi`` is
            a log-normal prior on each channel's ROI of the full-data fit (outcome per unit of spend, so the
            outcome must be in the spend's currency).
        cv_scheme: ``"blocked"`` (contiguous blocks each held out once; the adstock runs over the whole
            series, so a held-out block keeps its carryover) or ``"expanding"`` (train on the past, test on
            the next ``test_size`` rows).
        pooling: optional ``{"decay" | "ratio" | "slope": within_sd}``: that hyperparameter's prior becomes
            hierarchical; the channels scatter with ``within_sd`` around a shared center that has the prior.
        y_scale: outcome units per unit of ``y`` (to express the ROI in outcome per unit of spend).
    """

    def __init__(
        self,
        Z: np.ndarray,
        spend: np.ndarray,
        y: np.ndarray,
        lifts: LiftSpec | None,
        n_splits: int,
        test_size: int,
        lift_weight: float,
        decomp_weight: float,
        priors: Mapping[str, tuple[float | np.ndarray, float]] | None = None,
        cv_scheme: str = "blocked",
        pooling: Mapping[str, float] | None = None,
        y_scale: float = 1.0,
    ) -> None:
        self.Z, self.spend, self.y, self.y_scale = Z, spend, y, y_scale
        self.priors = dict(priors or {})
        unknown = set(self.priors) - set(PRIOR_KEYS)
        if unknown:
            raise ValueError(f"unknown prior keys {sorted(unknown)}; allowed: {PRIOR_KEYS}")
        self.pooling = dict(pooling or {})
        unknown = set(self.pooling) - {"decay", "ratio", "slope"}
        if unknown or any(v <= 0 for v in self.pooling.values()):
            raise ValueError(f"pooling takes positive within-sd for decay, ratio or slope, got {self.pooling}")
        self.n, self.C = spend.shape
        self.lifts = lifts if lifts is not None and len(lifts.lift) else None
        self.lift_weight, self.decomp_weight = lift_weight, decomp_weight
        self.factors = self._factor(Z)
        self.folds: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]] = []
        if cv_scheme == "expanding":
            min_train = max(Z.shape[1] + self.C + 8, self.n // 2)
            for k in range(n_splits, 0, -1):
                cut = self.n - k * test_size
                if cut >= min_train:
                    train = np.arange(cut)
                    self.folds.append((train, np.arange(cut, min(cut + test_size, self.n)), self._factor(Z[train])))
        elif cv_scheme == "blocked":
            edges = np.linspace(0, self.n, max(n_splits, 2) + 1).astype(int) if n_splits > 0 else np.zeros(0, dtype=int)
            for lo, hi in pairwise(edges):
                test = np.arange(lo, hi)
                train = np.setdiff1d(np.arange(self.n), test)
                if len(train) >= Z.shape[1] + self.C + 8 and len(test):
                    self.folds.append((train, test, self._factor(Z[train])))
        else:
            raise ValueError("cv_scheme must be 'blocked' or 'expanding'")
        self.spend_share = spend.sum(0) / max(spend.sum(), 1e-12)
        self._adstock_cache: dict[tuple[int, float], np.ndarray] = {}
        self._off_cache: dict[tuple[int, float], np.ndarray] = {}
        self._col_cache: dict[tuple[int, float, float, float], np.ndarray] = {}
        self._lift_cache: dict[tuple[int, float, float, float], np.ndarray] = {}
        self._ref_cache: dict[tuple[int, float], float] = {}
        self.evaluations = 0

    @staticmethod
    def _factor(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Orthonormal basis and pseudo-inverse of ``Z`` (reused by every solve on the same rows)."""
        return orthonormal_basis(Z), np.linalg.pinv(Z)

    @staticmethod
    def _cached(cache: dict, key: tuple, make) -> np.ndarray:
        value = cache.get(key)
        if value is None:
            if len(cache) > 20000:
                cache.clear()
            value = cache[key] = make()
        return value

    def adstock(self, c: int, decay: float) -> np.ndarray:
        """Adstock of channel ``c``'s spend (cached: the search revisits each decay with many ratios and slopes)."""
        return self._cached(self._adstock_cache, (c, float(decay)), lambda: geometric_adstock(self.spend[:, c], decay))

    def _off_adstock(self, test: int, decay: float) -> np.ndarray:
        """Adstock of the tested channel's spend with lift test ``test``'s window removed (cached)."""
        assert self.lifts is not None
        c, window = int(self.lifts.channel_index[test]), self.lifts.window[test]

        def make() -> np.ndarray:
            return geometric_adstock(np.where(window, 0.0, self.spend[:, c]), decay)

        return self._cached(self._off_cache, (test, float(decay)), make)

    def half_saturation(self, c: int, decay: float, ratio: float) -> float:
        """Absolute half-saturation of channel ``c`` for a decay and ratio."""
        key = (c, float(decay))
        if key not in self._ref_cache:
            self._ref_cache[key] = _mean_active(self.adstock(c, decay))
        return ratio * self._ref_cache[key]

    def column(self, c: int, decay: float, ratio: float, slope: float) -> np.ndarray:
        """Saturated adstocked column of channel ``c`` (cached)."""
        key = (c, float(decay), float(ratio), float(slope))
        return self._cached(
            self._col_cache, key, lambda: hill(self.adstock(c, decay), self.half_saturation(c, decay, ratio), slope)
        )

    def lift_row(self, c: int, decay: float, ratio: float, slope: float) -> np.ndarray:
        """Per-test design values of channel ``c`` (zero for tests of other channels)."""
        assert self.lifts is not None
        key = (c, float(decay), float(ratio), float(slope))
        row = self._lift_cache.get(key)
        if row is None:
            k, full, mode = self.half_saturation(c, decay, ratio), self.column(c, decay, ratio, slope), self.lifts.mode

            def value(i: int, window: np.ndarray) -> float:
                off = None if mode == "window_contribution" else self._off_adstock(i, decay)
                return _lift_value(full, off, k, slope, window, mode)

            row = np.array(
                [
                    value(i, w) if ci == c else 0.0
                    for i, (ci, w) in enumerate(zip(self.lifts.channel_index, self.lifts.window))
                ]
            )
            self._lift_cache[key] = row
        return row

    def design(self, decay: np.ndarray, ratio: np.ndarray, slope: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Media matrix and lift rows for a candidate."""
        M = np.column_stack([self.column(c, decay[c], ratio[c], slope[c]) for c in range(self.C)])
        L = None
        if self.lifts is not None:
            L = np.column_stack([self.lift_row(c, decay[c], ratio[c], slope[c]) for c in range(self.C)])
        return M, L

    def solve(
        self,
        M: np.ndarray,
        L: np.ndarray | None,
        lam: float,
        rows: slice | np.ndarray = slice(None),
        factors: tuple[np.ndarray, np.ndarray] | None = None,
        sigma: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fit on ``rows``; with lift tests, weights ``sigma / se`` use the residual scale ``sigma`` of the
        uncalibrated fit (of the fit on ``rows`` when not given)."""
        Z, y, Mr = self.Z[rows], self.y[rows], M[rows]
        basis, pinv = self.factors if factors is None else factors
        if L is None or self.lifts is None or self.lift_weight <= 0:
            return solve_partialled_nnls(Z, Mr, y, lam, basis=basis, pinv=pinv)
        if sigma is None:
            sigma = self.noise_scale(M, lam, rows, factors)
        weights = np.sqrt(self.lift_weight) * sigma / self.lifts.se
        return solve_partialled_nnls(
            Z, Mr, y, lam, L=L, targets=self.lifts.lift, weights=weights, basis=basis, pinv=pinv
        )

    def noise_scale(
        self,
        M: np.ndarray,
        lam: float,
        rows: slice | np.ndarray = slice(None),
        factors: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> float:
        """Residual standard deviation (degrees of freedom corrected) of the uncalibrated fit on ``rows``."""
        Z, y, Mr = self.Z[rows], self.y[rows], M[rows]
        basis, pinv = self.factors if factors is None else factors
        g, b = solve_partialled_nnls(Z, Mr, y, lam, basis=basis, pinv=pinv)
        resid = y - Z @ g - Mr @ b
        return float(np.sqrt(resid @ resid / max(len(y) - basis.shape[1] - M.shape[1], 1)))

    def prior_deviance(self, decay: np.ndarray, ratio: np.ndarray, slope: np.ndarray) -> float:
        """``-2 log`` prior density (up to a constant) of the non-linear hyperparameters."""
        out = 0.0
        for key, vals in (("ratio", np.log(ratio)), ("slope", np.log(slope)), ("decay", decay)):
            if key in self.priors:
                center, sd = self.priors[key]
                out += normal_deviance(vals, center if key == "decay" else np.log(center), sd, self.pooling.get(key))
        return out

    def roi_deviance(self, M: np.ndarray, b: np.ndarray) -> float:
        """``-2 log`` density (up to a constant) of the log-normal ROI prior at a fit's per-channel ROI."""
        if "roi" not in self.priors:
            return 0.0
        center, sd = self.priors["roi"]
        total = self.spend.sum(0)
        active = total > 0
        roi = (M[:, active] * b[active]).sum(0) * self.y_scale / total[active]
        log_center = np.broadcast_to(np.log(center), total.shape)[active]
        return normal_deviance(np.log(np.maximum(roi, ROI_FLOOR)), log_center, sd)

    def evaluate(
        self, decay: np.ndarray, ratio: np.ndarray, slope: np.ndarray, log10_penalty: float
    ) -> tuple[float, float, np.ndarray]:
        """Objective, CV mean squared error and lift z-scores of one candidate."""
        self.evaluations += 1
        lam = 10.0**log10_penalty
        M, L = self.design(decay, ratio, slope)
        # one noise scale (full data) weighs the lift tests in every fold
        sigma = self.noise_scale(M, lam) if L is not None and self.lift_weight > 0 else None
        sq, count = 0.0, 0
        for train, test, factors in self.folds:
            g, b = self.solve(M, L, lam, train, factors, sigma)
            err = self.y[test] - self.Z[test] @ g - M[test] @ b
            sq += float(err @ err)
            count += len(test)
        g, b = self.solve(M, L, lam, sigma=sigma)
        if count == 0:
            err = self.y - self.Z @ g - M @ b
            sq, count = float(err @ err), self.n
        cv_mse = sq / count
        z = np.zeros(0)
        obj = self.n * np.log(max(cv_mse, 1e-300))
        if self.lifts is not None and L is not None:
            z = (L @ b - self.lifts.lift) / self.lifts.se
            obj += self.lift_weight * float(z @ z)
        obj += self.prior_deviance(decay, ratio, slope) + self.roi_deviance(M, b)
        if self.decomp_weight > 0:
            effect = (M * b).sum(0)
            share = effect / max(effect.sum(), 1e-12)
            obj += self.decomp_weight * self.n * float(np.sqrt(((share - self.spend_share) ** 2).sum()))
        return float(obj), cv_mse, z


def _refine(
    problem: Problem, d: np.ndarray, r: np.ndarray, s: np.ndarray, p: float, max_evaluations: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Continuous Powell refinement of the channel hyperparameters from a grid point (penalty kept)."""
    C = problem.C
    lo = np.concatenate(
        [np.full(C, DECAY_RANGE[0]), np.full(C, np.log(RATIO_RANGE[0])), np.full(C, np.log(SLOPE_RANGE[0]))]
    )
    hi = np.concatenate(
        [np.full(C, DECAY_RANGE[1]), np.full(C, np.log(RATIO_RANGE[1])), np.full(C, np.log(SLOPE_RANGE[1]))]
    )

    def f(v: np.ndarray) -> float:
        v = np.clip(v, lo, hi)
        return problem.evaluate(v[:C], np.exp(v[C : 2 * C]), np.exp(v[2 * C :]), p)[0]

    x0 = np.concatenate([d, np.log(r), np.log(s)])
    res = minimize(
        f,
        x0,
        method="Powell",
        bounds=list(zip(lo, hi)),
        options={"maxfev": max_evaluations, "xtol": 1e-3, "ftol": 1e-6},
    )
    v = np.clip(res.x, lo, hi)
    return v[:C], np.exp(v[C : 2 * C]), np.exp(v[2 * C :]), p


def search_hyperparameters(
    problem: Problem, n_init: int = 64, n_passes: int = 2, random_state: int | None = 0, n_refine: int = 0
) -> SearchResult:
    """Sobol sample of ``n_init`` candidates, ``n_passes`` coordinate passes over the grids, then up to
    ``n_refine`` evaluations of a continuous Powell refinement."""
    C = problem.C
    dim = 3 * C + 1
    sampler = qmc.Sobol(d=dim, scramble=True, seed=random_state)
    m = max(int(np.ceil(np.log2(max(n_init, 1)))), 0)
    u = sampler.random_base2(m) if n_init > 0 else np.zeros((0, dim))

    def snap(v: float, grid: np.ndarray) -> float:
        return float(grid[np.argmin(np.abs(grid - v))])

    best: tuple[float, np.ndarray, np.ndarray, np.ndarray, float, float, np.ndarray] | None = None
    history: list[float] = []
    starts = [(np.full(C, 0.3), np.ones(C), np.ones(C), -3.0)]
    for row in u:
        d = DECAY_RANGE[0] + row[:C] * (DECAY_RANGE[1] - DECAY_RANGE[0])
        r = np.exp(np.log(RATIO_RANGE[0]) + row[C : 2 * C] * np.log(RATIO_RANGE[1] / RATIO_RANGE[0]))
        s = SLOPE_RANGE[0] + row[2 * C : 3 * C] * (SLOPE_RANGE[1] - SLOPE_RANGE[0])
        p = LOG10_PENALTY_RANGE[0] + row[-1] * (LOG10_PENALTY_RANGE[1] - LOG10_PENALTY_RANGE[0])
        starts.append(
            (
                np.array([snap(v, DECAY_GRID) for v in d]),
                np.array([snap(v, RATIO_GRID) for v in r]),
                np.array([snap(v, SLOPE_GRID) for v in s]),
                snap(p, LOG10_PENALTY_GRID),
            )
        )
    for d, r, s, p in starts:
        obj, mse, z = problem.evaluate(d, r, s, p)
        if best is None or obj < best[0]:
            best = (obj, d, r, s, p, mse, z)
        history.append(best[0])
    assert best is not None
    obj, d, r, s, p, mse, z = best
    d, r, s = d.copy(), r.copy(), s.copy()
    for _ in range(n_passes):
        improved = False
        for c in range(C):
            for vec, grid in ((d, DECAY_GRID), (r, RATIO_GRID), (s, SLOPE_GRID)):
                for v in grid:
                    if v == vec[c]:
                        continue
                    old = vec[c]
                    vec[c] = v
                    o, mm, zz = problem.evaluate(d, r, s, p)
                    if o < obj - 1e-9:
                        obj, mse, z, improved = o, mm, zz, True
                    else:
                        vec[c] = old
                    history.append(obj)
        for v in LOG10_PENALTY_GRID:
            if v == p:
                continue
            o, mm, zz = problem.evaluate(d, r, s, float(v))
            if o < obj - 1e-9:
                obj, mse, z, p, improved = o, mm, zz, float(v), True
            history.append(obj)
        if not improved:
            break
    if n_refine > 0:
        d2, r2, s2, p2 = _refine(problem, d, r, s, p, n_refine)
        o, mm, zz = problem.evaluate(d2, r2, s2, p2)
        if o < obj:
            obj, mse, z, d, r, s = o, mm, zz, d2, r2, s2
    return SearchResult(d, r, s, float(p), float(obj), float(mse), z, problem.evaluations, history)


__all__ = [
    "LiftSpec",
    "Problem",
    "SearchResult",
    "lift_design",
    "normal_deviance",
    "reference_adstock",
    "search_hyperparameters",
]
