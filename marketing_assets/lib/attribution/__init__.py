"""Attribution math, usable from a notebook (no Dagster import).

- :func:`markov_attribution` and :func:`shapley_attribution` take a ChannelAttribution-style path
  table (``path``, ``conversions``, ``value``, ``nulls``) and return one row per channel.
- :func:`attribution_credits_sql` writes per-opportunity × touchpoint credits for every model
  of the registry (:mod:`.models`: :func:`model_names`) into a DuckDB table, entirely in SQL.
"""

from marketing_assets.lib.attribution.credits import (
    MODELS,
    REQUIRED_COLUMNS,
    RULE_MODELS,
    WEIGHTED_MODELS,
    attribution_credits_sql,
    credit_column,
)
from marketing_assets.lib.attribution.markov import markov_attribution
from marketing_assets.lib.attribution.models import (
    REGISTRY,
    AttributionModel,
    data_driven_models,
    get_model,
    model_label,
    model_names,
    model_terms,
    reference_model,
    register,
    rule_models,
)
from marketing_assets.lib.attribution.shapley import (
    OTHER_CHANNELS,
    pooled_shapley_weights,
    shapley_attribution,
    shapley_values,
    subset_sums,
)

__all__ = [
    "MODELS",
    "OTHER_CHANNELS",
    "REGISTRY",
    "REQUIRED_COLUMNS",
    "RULE_MODELS",
    "WEIGHTED_MODELS",
    "AttributionModel",
    "attribution_credits_sql",
    "credit_column",
    "data_driven_models",
    "get_model",
    "markov_attribution",
    "model_label",
    "model_names",
    "model_terms",
    "pooled_shapley_weights",
    "reference_model",
    "register",
    "rule_models",
    "shapley_attribution",
    "shapley_values",
    "subset_sums",
]
