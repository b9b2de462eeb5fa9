"""Attribution math, usable from a notebook (no Dagster import).

- :func:`markov_attribution` and :func:`shapley_attribution` take a ChannelAttribution-style path
  table (``path``, ``conversions``, ``value``, ``nulls``) and return one row per channel.
- :func:`attribution_credits_sql` writes per-opportunity × touchpoint credits for every model
  (:data:`MODELS`) into a DuckDB table, entirely in SQL.
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
from marketing_assets.lib.attribution.shapley import shapley_attribution, shapley_values, subset_sums

__all__ = [
    "MODELS",
    "REQUIRED_COLUMNS",
    "RULE_MODELS",
    "WEIGHTED_MODELS",
    "attribution_credits_sql",
    "credit_column",
    "markov_attribution",
    "shapley_attribution",
    "shapley_values",
    "subset_sums",
]
