"""Marketing-mix modelling: transforms, an exact constrained solver, a fast calibrated hyperparameter
search, the scikit-learn estimator, a budget optimiser and the DuckDB weekly design-matrix builder.

No Dagster import: usable from a notebook.
"""

from .frame import DEFAULT_CHANNEL_RULES, weekly_frame_sql
from .model import DEFAULT_POOLING, DEFAULT_PRIORS, MarketingMixModel, holdout_mape
from .optimize import BudgetPlan, ChannelCurve, optimize_allocation
from .solver import solve_direct_nnls, solve_partialled_nnls
from .transforms import (
    GeometricAdstock,
    HillSaturation,
    WeibullAdstock,
    geometric_adstock,
    hill,
    hill_derivative,
    weibull_adstock,
)

__all__ = [
    "DEFAULT_CHANNEL_RULES",
    "DEFAULT_POOLING",
    "DEFAULT_PRIORS",
    "BudgetPlan",
    "ChannelCurve",
    "GeometricAdstock",
    "HillSaturation",
    "MarketingMixModel",
    "WeibullAdstock",
    "geometric_adstock",
    "hill",
    "hill_derivative",
    "holdout_mape",
    "optimize_allocation",
    "solve_direct_nnls",
    "solve_partialled_nnls",
    "weekly_frame_sql",
    "weibull_adstock",
]
