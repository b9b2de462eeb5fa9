"""Media transforms for marketing-mix models: carryover (adstock) and diminishing returns (saturation).

Every transform exists twice: as a pure NumPy function working on a 1-D series or column-wise on a
2-D array (rows = consecutive periods), and as a scikit-learn transformer wrapping that function so it
can sit in a ``Pipeline``. All adstocks start from zero before the first row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import lfilter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

ArrayLike = np.ndarray | Sequence[float]


def _as_float_2d(x: ArrayLike) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        return arr[:, None], True
    if arr.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array, got {arr.ndim} dimensions")
    return arr, False


def _per_column(value: float | ArrayLike, n_cols: int, name: str) -> np.ndarray:
    vals = np.broadcast_to(np.asarray(value, dtype=float), (n_cols,)) if np.ndim(value) <= 1 else None
    if vals is None or vals.shape != (n_cols,):
        raise ValueError(f"{name} must be a scalar or have one value per column ({n_cols})")
    return np.array(vals, dtype=float)


def geometric_adstock(x: ArrayLike, decay: float | ArrayLike, normalize: bool = False) -> np.ndarray:
    """Geometric carryover ``a_t = x_t + decay * a_{t-1}`` with ``a_{-1} = 0``.

    Args:
        x: spend per period, 1-D or 2-D (periods × channels).
        decay: retention per period in ``[0, 1)``; a scalar or one value per column.
        normalize: multiply by ``1 - decay`` so that a constant input keeps its level in the long run.

    Returns:
        Array of the same shape as ``x``.
    """
    arr, was_1d = _as_float_2d(x)
    decays = _per_column(decay, arr.shape[1], "decay")
    if np.any((decays < 0) | (decays >= 1)):
        raise ValueError("decay must lie in [0, 1)")
    out = np.empty_like(arr)
    for j, d in enumerate(decays):
        out[:, j] = lfilter([1.0], [1.0, -d], arr[:, j])
        if normalize:
            out[:, j] *= 1.0 - d
    return out[:, 0] if was_1d else out


def weibull_weights(shape: float, scale: float, max_lag: int) -> np.ndarray:
    """Lag weights ``w_l`` for l = 0..max_lag from the Weibull survival function (Robyn's "weibull_cdf" adstock).

    ``w_0 = 1`` and ``w_l = prod_{i<=l} S(i)/S(i-1)`` i.e. the survival ``exp(-(l/(scale*max_lag))**shape)``.
    """
    if shape <= 0 or scale <= 0 or max_lag < 0:
        raise ValueError("shape and scale must be positive and max_lag non-negative")
    lags = np.arange(max_lag + 1, dtype=float)
    return np.exp(-((lags / (scale * max(max_lag, 1))) ** shape))


def weibull_adstock(x: ArrayLike, shape: float, scale: float, max_lag: int = 12) -> np.ndarray:
    """Carryover with Weibull-survival lag weights: ``a_t = sum_l w_l x_{t-l}`` (can peak later than geometric)."""
    arr, was_1d = _as_float_2d(x)
    w = weibull_weights(shape, scale, max_lag)
    out = np.column_stack([np.convolve(arr[:, j], w)[: arr.shape[0]] for j in range(arr.shape[1])])
    return out[:, 0] if was_1d else out


def hill(x: ArrayLike, half_saturation: float | ArrayLike, slope: float | ArrayLike) -> np.ndarray:
    """Hill saturation ``x**slope / (x**slope + half_saturation**slope)`` in ``[0, 1)``; negative inputs count as 0."""
    arr, was_1d = _as_float_2d(x)
    k = _per_column(half_saturation, arr.shape[1], "half_saturation")
    s = _per_column(slope, arr.shape[1], "slope")
    if np.any(k <= 0) or np.any(s <= 0):
        raise ValueError("half_saturation and slope must be positive")
    a = np.maximum(arr, 0.0) / k
    p = a**s
    out = p / (1.0 + p)
    return out[:, 0] if was_1d else out


def hill_derivative(x: ArrayLike, half_saturation: float | ArrayLike, slope: float | ArrayLike) -> np.ndarray:
    """Derivative of :func:`hill` with respect to ``x`` (0 at x <= 0 when slope > 1)."""
    arr, was_1d = _as_float_2d(x)
    k = _per_column(half_saturation, arr.shape[1], "half_saturation")
    s = _per_column(slope, arr.shape[1], "slope")
    a = np.maximum(arr, 0.0) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(
            a > 0, s * a ** (s - 1) / (1.0 + a**s) ** 2 / k, np.where(s < 1, np.inf, np.where(s == 1, 1 / k, 0.0))
        )
    return d[:, 0] if was_1d else d


class GeometricAdstock(TransformerMixin, BaseEstimator):
    """scikit-learn transformer for :func:`geometric_adstock` (rows must be consecutive periods).

    Args:
        decay: retention per period in ``[0, 1)``; a scalar or one value per column.
        normalize: scale by ``1 - decay``.
    """

    def __init__(self, decay: float | Sequence[float] = 0.5, normalize: bool = False) -> None:
        self.decay = decay
        self.normalize = normalize

    def fit(self, X: ArrayLike, y: object = None) -> GeometricAdstock:
        """Validate the input; there is nothing to learn."""
        validate_data(self, X, reset=True)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Adstocked columns."""
        check_is_fitted(self, "n_features_in_")
        arr = validate_data(self, X, reset=False)
        return geometric_adstock(arr, self.decay, self.normalize)


class WeibullAdstock(TransformerMixin, BaseEstimator):
    """scikit-learn transformer for :func:`weibull_adstock`."""

    def __init__(self, shape: float = 1.0, scale: float = 0.3, max_lag: int = 12) -> None:
        self.shape = shape
        self.scale = scale
        self.max_lag = max_lag

    def fit(self, X: ArrayLike, y: object = None) -> WeibullAdstock:
        """Validate the input; there is nothing to learn."""
        validate_data(self, X, reset=True)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Adstocked columns."""
        check_is_fitted(self, "n_features_in_")
        arr = validate_data(self, X, reset=False)
        return weibull_adstock(arr, self.shape, self.scale, self.max_lag)


class HillSaturation(TransformerMixin, BaseEstimator):
    """scikit-learn transformer for :func:`hill`.

    Args:
        half_saturation: input level giving half the maximum effect; scalar or one per column.
        slope: steepness (>1 gives an S-curve); scalar or one per column.
    """

    def __init__(self, half_saturation: float | Sequence[float] = 1.0, slope: float | Sequence[float] = 1.0) -> None:
        self.half_saturation = half_saturation
        self.slope = slope

    def fit(self, X: ArrayLike, y: object = None) -> HillSaturation:
        """Validate the input; there is nothing to learn."""
        validate_data(self, X, reset=True)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Saturated columns in ``[0, 1)``."""
        check_is_fitted(self, "n_features_in_")
        arr = validate_data(self, X, reset=False)
        return hill(check_array(arr), self.half_saturation, self.slope)


__all__ = [
    "GeometricAdstock",
    "HillSaturation",
    "WeibullAdstock",
    "geometric_adstock",
    "hill",
    "hill_derivative",
    "weibull_adstock",
    "weibull_weights",
]
