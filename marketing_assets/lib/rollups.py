"""Attribution roll-ups as DuckDB SQL over the wide credits table, and the spend status of channel ROI rows. No Dagster import.

Every model's figures come from one scan of the wide credits (one aggregate per model and measure); the
result is then put in long form (``model``, dimensions, figures) so a BI tool filters by model.
Pipeline of opportunities without any touch in their window is not spread over channels: it
appears as ``(unattributed)`` so totals reconcile with the CRM.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from marketing_assets.lib.sql import ident, literal

UNATTRIBUTED = "(unattributed)"
OPPORTUNITY_DIMS = {"sales_segment"}
NO_TOUCH_DIMS = {"campaign_key"}  # an opportunity without a touch has no campaign: NULL ("no campaign"), not a channel label


def _outcomes(opportunities: str) -> str:
    return f"""SELECT opportunity_id, sales_segment, CAST(pipeline_amount AS DOUBLE) AS pipeline_amount,
               coalesce(is_won, false) AS is_won, CAST(coalesce(won_amount, 0) AS DOUBLE) AS won_amount,
               date_trunc('month', opportunity_created_date)::DATE AS created_month,
               date_trunc('month', closed_date)::DATE AS closed_month
        FROM {opportunities}"""


def _models_sql(models: Sequence[str]) -> str:
    return "SELECT unnest([" + ", ".join(literal(m) for m in models) + "]) AS model"


def _credited(credits: str, models: Sequence[str], keys: Sequence[str]) -> str:
    """Credited rows per model × ``keys`` from one scan of the wide credits (joined to CTE ``outcomes``): one
    aggregate per model and measure, then one row per model; a model whose credits are all NULL in a group has no
    row there (as when the credits are unpivoted first)."""
    aggregates, per_model = [], []
    for i, m in enumerate(models):
        credit = f"c.{ident(m + '_credit')}"
        share = f"{credit} / nullif(o.pipeline_amount, 0)"  # the touch's share of its opportunity
        measures = {
            "pipeline_amount": f"sum({credit})",
            "opportunities": f"sum({share})",
            "customers": f"sum(CASE WHEN o.is_won THEN {share} END)",
            "won_revenue": f"sum(CASE WHEN o.is_won THEN {share} * o.won_amount END)",
        }
        aggregates += [f"count({credit}) AS _m{i}_n"] + [f"{expr} AS _m{i}_{k}" for k, expr in measures.items()]
        per_model.append("{" + ", ".join([f"'model': {literal(m)}", f"'_n': _m{i}_n", *(f"'{k}': _m{i}_{k}" for k in measures)]) + "}")
    return f"""
        SELECT * EXCLUDE (_n) FROM (
            SELECT {', '.join(keys)}, unnest([{', '.join(per_model)}], recursive := true)
            FROM (SELECT {', '.join('c.' + k for k in keys)}, {', '.join(aggregates)}
                  FROM {credits} c JOIN outcomes o USING (opportunity_id)
                  GROUP BY ALL)
        ) WHERE _n > 0"""


def rollup_sql(credits: str, opportunities: str, models: Sequence[str], dims: Sequence[str], windows: Sequence[int] | None = None) -> str:
    """One row per model × ``dims``: credited pipeline, opportunities, customers and won revenue (share-weighted).

    With ``windows`` the credits hold one credited set of touches per lookback window (a ``lookback_days`` column,
    :func:`~marketing_assets.lib.attribution.credits.attribution_credits_sql` with ``partition_by``) and the roll-up
    is one per window: a leading ``lookback_days`` column, each window's unattributed pipeline (opportunities
    without a touch in that window) and shares within the window. Every model's figures come from one scan.
    """
    keys = (["lookback_days"] if windows is not None else []) + list(dims)
    by = "lookback_days, " if windows is not None else ""
    unattributed_dims = ", ".join(
        f"o.{d}" if d in OPPORTUNITY_DIMS else f"NULL AS {d}" if d in NO_TOUCH_DIMS else f"'{UNATTRIBUTED}' AS {d}" for d in dims)
    if windows is None:
        uncredited = f"outcomes o ANTI JOIN (SELECT DISTINCT opportunity_id FROM {credits}) c USING (opportunity_id)"
    else:
        uncredited = (
            f"outcomes o CROSS JOIN (SELECT unnest([{', '.join(str(w) for w in sorted({int(w) for w in windows}))}]) AS lookback_days) w"
            f" ANTI JOIN (SELECT DISTINCT lookback_days, opportunity_id FROM {credits}) c USING (lookback_days, opportunity_id)"
        )
    return f"""
    WITH outcomes AS ({_outcomes(opportunities)}),
    credited AS ({_credited(credits, models, keys)}),
    unattributed AS (
        SELECT {by}m.model, {unattributed_dims}, sum(o.pipeline_amount) AS pipeline_amount, count(*) AS opportunities,
               count(*) FILTER (WHERE o.is_won) AS customers, sum(CASE WHEN o.is_won THEN o.won_amount END) AS won_revenue
        FROM {uncredited}
        CROSS JOIN ({_models_sql(models)}) m
        GROUP BY ALL
    )
    SELECT {by}model, {', '.join(dims)}, pipeline_amount, opportunities, coalesce(customers, 0) AS customers, coalesce(won_revenue, 0) AS won_revenue,
           pipeline_amount / sum(pipeline_amount) OVER (PARTITION BY {by}model) AS pipeline_share
    FROM (SELECT * FROM credited UNION ALL BY NAME SELECT * FROM unattributed)
    ORDER BY {by}model, pipeline_amount DESC"""


def spend_status(ad_spend: pd.Series, finance_spend: pd.Series) -> pd.Series:
    """Why a channel group's spend ratios may be empty: ``ok`` (ad-platform spend), ``zero spend``, ``finance spend
    only`` (journal spend but no ad platform: the ratios, defined on ad spend, stay empty) or ``no spend data``."""
    out = pd.Series("no spend data", index=ad_spend.index, dtype=object)
    out[finance_spend.fillna(0) > 0] = "finance spend only"
    out[ad_spend.notna() & (ad_spend == 0)] = "zero spend"
    out[ad_spend.fillna(0) > 0] = "ok"
    return out
