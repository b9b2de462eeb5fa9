"""A fitted :class:`~marketing_assets.lib.mmm.model.MarketingMixModel` as plain JSON-able data, and back.

The data hold the estimator's settings and every fitted attribute its methods read: the fit weeks and their
spend and controls (planning curves and the decomposition start from them), the coefficients, the channel and
bootstrap parameters, ROI / marginal ROI with their draws and intervals, the lift-test calibration, the
diagnostics and the search result. Floats are written as Python floats (``repr`` round-trips exactly), NaN and
infinities as ``None`` / ``"inf"`` / ``"-inf"`` so that the result is strict JSON; dates as ISO strings.
A rebuilt model therefore predicts, decomposes and plans exactly as the fitted one, without refitting.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from .search import LiftSpec, SearchResult

FORMAT = "marketing_assets.mmm/1"
"""Version of the layout below; :func:`model_from_params` refuses any other."""

_INF = {"inf": math.inf, "-inf": -math.inf}


def _num(x: Any) -> float | str | None:
    """One float as strict JSON: ``None`` for NaN, ``"inf"`` / ``"-inf"`` for infinities."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _nums(a: Any) -> Any:
    """An array (any depth) as nested lists of :func:`_num`."""
    arr = np.asarray(a, dtype=float)
    return _num(arr) if arr.ndim == 0 else [_nums(v) for v in arr]


def _float(x: Any) -> float:
    return math.nan if x is None else _INF.get(x, x) if isinstance(x, str) else float(x)


def _array(values: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Inverse of :func:`_nums`; ``shape`` gives empty arrays their width."""
    def conv(v: Any) -> Any:
        return [conv(u) for u in v] if isinstance(v, list) else _float(v)

    arr = np.asarray(conv(values), dtype=float)
    return arr.reshape(shape) if shape is not None else arr


def _params(p: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    return {ch: {k: _num(v) for k, v in vals.items()} for ch, vals in p.items()}


def _unparams(p: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {ch: {k: _float(v) for k, v in vals.items()} for ch, vals in p.items()}


COMPUTE_SETTINGS = ("n_jobs",)
"""Constructor arguments that change how a fit is computed, not the fitted model: not saved in the parameters."""


def _settings(model: Any) -> dict[str, Any]:
    out = {}
    for key, value in model.get_params(deep=False).items():
        if key in COMPUTE_SETTINGS:
            continue
        if key in ("channels", "controls") and value is not None:
            value = list(value)
        elif key == "priors" and value is not None:
            value = {k: [_nums(center), _num(sd)] for k, (center, sd) in value.items()}
        elif key == "prior_pooling" and value is not None:
            value = {k: _num(v) for k, v in value.items()}
        elif isinstance(value, float):
            value = _num(value)
        out[key] = value
    return out


def _unsettings(settings: dict[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    if out.get("priors") is not None:
        out["priors"] = {
            k: (_array(center) if isinstance(center, list) else _float(center), _float(sd)) for k, (center, sd) in out["priors"].items()
        }
    if out.get("prior_pooling") is not None:
        out["prior_pooling"] = {k: _float(v) for k, v in out["prior_pooling"].items()}
    for key in ("lift_weight", "decomp_weight", "interval"):
        if key in out:
            out[key] = _float(out[key])
    return out


def _frame_records(df: pd.DataFrame) -> dict[str, Any]:
    """A small table (the lift tests) column by column; dates as ISO strings, numbers as :func:`_num`."""
    cols = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            cols[c] = {"kind": "datetime", "dtype": str(s.dtype), "values": [None if pd.isna(v) else pd.Timestamp(v).isoformat() for v in s]}
        elif len(s) and all(type(v) is dt.date for v in s):
            cols[c] = {"kind": "date", "values": [v.isoformat() for v in s]}
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cols[c] = {"kind": "float", "values": [_num(v) for v in s]}
        else:
            cols[c] = {"kind": "object", "values": [None if v is None else v.item() if isinstance(v, np.generic) else v for v in s]}
    return {"columns": list(df.columns), "data": cols}


def _unframe_records(rec: dict[str, Any]) -> pd.DataFrame:
    data = {}
    for c in rec["columns"]:
        col = rec["data"][c]
        if col["kind"] == "datetime":
            data[c] = pd.to_datetime(pd.Series(col["values"], dtype=object)).astype(col["dtype"])
        elif col["kind"] == "date":
            data[c] = pd.Series([dt.date.fromisoformat(v) for v in col["values"]], dtype=object)
        elif col["kind"] == "float":
            data[c] = pd.Series([_float(v) for v in col["values"]], dtype=float)
        else:
            data[c] = pd.Series(col["values"], dtype=object)
    return pd.DataFrame(data, columns=rec["columns"])


def model_to_params(model: Any) -> dict[str, Any]:
    """Settings and fitted state of a fitted ``MarketingMixModel`` as JSON-able data (see the module docstring)."""
    m = model
    n, k = m.spend_.shape
    res: SearchResult = m.search_
    lift = m.lift_spec_
    return {
        "format": FORMAT,
        "settings": _settings(m),
        "channels": list(m.channels_),
        "controls": list(m.controls_),
        "n_features_in": int(m.n_features_in_),
        "feature_names_in": list(m.feature_names_in_) if hasattr(m, "feature_names_in_") else None,
        "origin": pd.Timestamp(m.origin_).isoformat(),
        "weeks": [pd.Timestamp(d).isoformat() for d in m.dates_],
        "spend": _nums(m.spend_),
        "control_values": _nums(m.control_values_),
        "base_names": list(m.base_names_),
        "base_coef": _nums(m.base_coef_),
        "coef": _nums(m.coef_),
        "intercept": _num(m.intercept_),
        "y_scale": _num(m.y_scale_),
        "penalty": _num(m.penalty_),
        "channel_params": _params(m.channel_params_),
        "roi": {ch: _num(m.roi_[ch]) for ch in m.channels_},
        "mroi": {ch: _num(m.mroi_[ch]) for ch in m.channels_},
        "roi_interval": {side: _nums(m.roi_interval_.loc[list(m.channels_), side]) for side in ("low", "high")},
        "mroi_interval": {side: _nums(m.mroi_interval_.loc[list(m.channels_), side]) for side in ("low", "high")},
        "bootstrap_params": [_params(p) for p in m.bootstrap_params_],
        "roi_bootstrap": _nums(m.roi_bootstrap_[list(m.channels_)].to_numpy(dtype=float)) if len(m.roi_bootstrap_) else [],
        "mroi_bootstrap": _nums(m.mroi_bootstrap_[list(m.channels_)].to_numpy(dtype=float)) if len(m.mroi_bootstrap_) else [],
        # row labels of the draws (the Series names the bootstrap collected: "roi" / "mroi")
        "bootstrap_index": {
            name: [v.item() if isinstance(v, np.generic) else v for v in getattr(m, f"{name}_bootstrap_").index] for name in ("roi", "mroi")
        },
        "lift_spec": None if lift is None else {
            "channel_index": [int(i) for i in lift.channel_index],
            "window": [[bool(v) for v in row] for row in lift.window],
            "lift": _nums(lift.lift), "se": _nums(lift.se), "mode": lift.mode,
        },
        "lift_tests": _frame_records(m.lift_tests_),
        "diagnostics": {key: (int(v) if isinstance(v, (int, np.integer)) else _num(v)) for key, v in m.diagnostics_.items()},
        "search": {
            "decay": _nums(res.decay), "ratio": _nums(res.ratio), "slope": _nums(res.slope),
            "log10_penalty": _num(res.log10_penalty), "objective": _num(res.objective), "cv_mse": _num(res.cv_mse),
            "lift_z": _nums(res.lift_z), "n_evaluations": int(res.n_evaluations), "history": _nums(res.history),
        },
        "fit_seconds_search": _num(m.fit_seconds_search_),
        "fit_seconds": _num(m.fit_seconds_),
        "shape": [n, k],
        # memory order of the fit arrays: numpy sums in an order that depends on it, so the last bits of totals do too
        "order": {"spend": "F" if np.isfortran(m.spend_) else "C", "control_values": "F" if np.isfortran(m.control_values_) else "C"},
    }


def model_from_params(cls: type, params: dict[str, Any]) -> Any:
    """A fitted ``cls`` (``MarketingMixModel``) rebuilt from :func:`model_to_params` data, without refitting."""
    if params.get("format") != FORMAT:
        raise ValueError(f"unknown model parameter format {params.get('format')!r} (expected {FORMAT!r})")
    m = cls(**_unsettings(params["settings"]))
    channels = list(params["channels"])
    n, k = params["shape"]
    m.channels_, m.controls_ = channels, list(params["controls"])
    m.n_features_in_ = int(params["n_features_in"])
    if params["feature_names_in"] is not None:
        m.feature_names_in_ = np.asarray(params["feature_names_in"], dtype=object)
    m.origin_ = pd.Timestamp(params["origin"])
    m.dates_ = pd.DatetimeIndex(pd.to_datetime(params["weeks"]))
    order = params.get("order", {})
    m.spend_ = np.asarray(_array(params["spend"], (n, k)), order=order.get("spend", "C"))
    m.control_values_ = np.asarray(_array(params["control_values"], (n, len(m.controls_))), order=order.get("control_values", "C"))
    m.base_names_ = list(params["base_names"])
    m.base_coef_ = _array(params["base_coef"])
    m.coef_ = _array(params["coef"])
    m.intercept_ = _float(params["intercept"])
    m.y_scale_ = _float(params["y_scale"])
    m.penalty_ = _float(params["penalty"])
    m.channel_params_ = _unparams(params["channel_params"])
    m.roi_ = pd.Series({ch: _float(params["roi"][ch]) for ch in channels}, name="roi", dtype=float)
    m.mroi_ = pd.Series({ch: _float(params["mroi"][ch]) for ch in channels}, name="mroi", dtype=float)
    m.roi_interval_ = pd.DataFrame({s: _array(params["roi_interval"][s]) for s in ("low", "high")}, index=channels)
    m.mroi_interval_ = pd.DataFrame({s: _array(params["mroi_interval"][s]) for s in ("low", "high")}, index=channels)
    m.bootstrap_params_ = [_unparams(p) for p in params["bootstrap_params"]]
    for name in ("roi_bootstrap", "mroi_bootstrap"):
        draws = params[name]
        index = params.get("bootstrap_index", {}).get(name.removesuffix("_bootstrap")) or None
        frame = pd.DataFrame(_array(draws, (len(draws), k)), columns=channels, index=index) if draws else pd.DataFrame(columns=channels, dtype=float)
        setattr(m, f"{name}_", frame)
    lift = params["lift_spec"]
    m.lift_spec_ = None if lift is None else LiftSpec(
        np.asarray(lift["channel_index"], dtype=int), np.asarray(lift["window"], dtype=bool).reshape(len(lift["channel_index"]), n),
        _array(lift["lift"]), _array(lift["se"]), lift["mode"],
    )
    m.lift_tests_ = _unframe_records(params["lift_tests"])
    m.diagnostics_ = {key: (v if isinstance(v, int) else _float(v)) for key, v in params["diagnostics"].items()}
    s = params["search"]
    m.search_ = SearchResult(
        _array(s["decay"]), _array(s["ratio"]), _array(s["slope"]), _float(s["log10_penalty"]), _float(s["objective"]),
        _float(s["cv_mse"]), _array(s["lift_z"]), int(s["n_evaluations"]), [_float(v) for v in s["history"]],
    )
    m.fit_seconds_search_ = _float(params["fit_seconds_search"])
    m.fit_seconds_ = _float(params["fit_seconds"])
    return m
