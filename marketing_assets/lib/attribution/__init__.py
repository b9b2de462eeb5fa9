"""Attribution math, usable from a notebook (no Dagster import).

- :func:`markov_attribution` and :func:`shapley_attribution` take a ChannelAttribution-style path
  table (``path``, ``conversions``, ``value``, ``nulls``) and return one row per channel.
- For a warehouse table, :func:`markov_transitions_sql` and :func:`channel_sets_sql` aggregate the
  journeys in DuckDB (transition counts; journeys per channel set) and :func:`markov_from_transitions`
  and :func:`shapley_from_sets` return the same per-channel result from those aggregates.
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
from marketing_assets.lib.attribution.markov import markov_attribution, markov_from_transitions, markov_transitions_sql
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
    channel_sets,
    channel_sets_sql,
    pooled_shapley_from_sets,
    pooled_shapley_weights,
    shapley_attribution,
    shapley_from_sets,
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
    "channel_sets",
    "channel_sets_sql",
    "credit_column",
    "data_driven_models",
    "get_model",
    "markov_attribution",
    "markov_from_transitions",
    "markov_transitions_sql",
    "model_label",
    "model_names",
    "model_terms",
    "pooled_shapley_from_sets",
    "pooled_shapley_weights",
    "reference_model",
    "register",
    "rule_models",
    "shapley_attribution",
    "shapley_from_sets",
    "shapley_values",
    "subset_sums",
]
