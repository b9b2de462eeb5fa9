"""Attribution roll-ups as DuckDB SQL over the wide credits table, and the spend status of channel ROI rows. No Dagster import.

Credits are unpivoted to long form (``model``, dimensions, credit) so a BI tool filters by model.
Pipeline of opportunities without any touch in their window is not spread over channels: it
appears as ``(unattributed)`` so totals reconcile with the CRM.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

UNATTRIBUTED = "(unattributed)"
OPPORTUNITY_DIMS = {"sales_segment"}
NO_TOUCH_DIMS = {"campaign_key"}  # an opportunity without a touch has no campaign: NULL ("no campaign"), not a channel label


def _credit_cols(models: Sequence[str]) -> list[str]:
    return [f"{m}_credit" for m in models]


def _long(credits: str, models: Sequence[str], dims: Sequence[str]) -> str:
    cols = _credit_cols(models)
    keep = ", ".join(["opportunity_id", "pipeline_amount", *dims, *cols])
    return f"""SELECT replace(model, '_credit', '') AS model, opportunity_id, pipeline_amount, {', '.join(dims)}, credit
        FROM (UNPIVOT (SELECT {keep} FROM {credits}) ON {', '.join(cols)} INTO NAME model VALUE credit)"""


def _outcomes(opportunities: str) -> str:
    return f"""SELECT opportunity_id, sales_segment, CAST(pipeline_amount AS DOUBLE) AS pipeline_amount,
               coalesce(is_won, false) AS is_won, CAST(coalesce(won_amount, 0) AS DOUBLE) AS won_amount,
               date_trunc('month', opportunity_created_date)::DATE AS created_month,
               date_trunc('month', closed_date)::DATE AS closed_month
        FROM {opportunities}"""


def _models_sql(models: Sequence[str]) -> str:
    return "SELECT unnest([" + ", ".join(f"'{m}'" for m in models) + "]) AS model"


def rollup_sql(credits: str, opportunities: str, models: Sequence[str], dims: Sequence[str]) -> str:
    """One row per model × ``dims``: credited pipeline, opportunities, customers and won revenue (share-weighted)."""
    dim_list = ", ".join(dims)
    unattributed_dims = ", ".join(
        f"o.{d}" if d in OPPORTUNITY_DIMS else f"NULL AS {d}" if d in NO_TOUCH_DIMS else f"'{UNATTRIBUTED}' AS {d}" for d in dims)
    return f"""
    WITH long AS ({_long(credits, models, dims)}),
    outcomes AS ({_outcomes(opportunities)}),
    credited AS (
        SELECT l.model, {', '.join('l.' + d for d in dims)},
               sum(l.credit) AS pipeline_amount,
               sum(l.credit / nullif(o.pipeline_amount, 0)) AS opportunities,
               sum(CASE WHEN o.is_won THEN l.credit / nullif(o.pipeline_amount, 0) END) AS customers,
               sum(CASE WHEN o.is_won THEN l.credit / nullif(o.pipeline_amount, 0) * o.won_amount END) AS won_revenue
        FROM long l JOIN outcomes o USING (opportunity_id)
        GROUP BY ALL
    ),
    unattributed AS (
        SELECT m.model, {unattributed_dims}, sum(o.pipeline_amount) AS pipeline_amount, count(*) AS opportunities,
               count(*) FILTER (WHERE o.is_won) AS customers, sum(CASE WHEN o.is_won THEN o.won_amount END) AS won_revenue
        FROM outcomes o ANTI JOIN (SELECT DISTINCT opportunity_id FROM {credits}) c USING (opportunity_id)
        CROSS JOIN ({_models_sql(models)}) m
        GROUP BY ALL
    )
    SELECT model, {dim_list}, pipeline_amount, opportunities, coalesce(customers, 0) AS customers, coalesce(won_revenue, 0) AS won_revenue,
           pipeline_amount / sum(pipeline_amount) OVER (PARTITION BY model) AS pipeline_share
    FROM (SELECT * FROM credited UNION ALL BY NAME SELECT * FROM unattributed)
    ORDER BY model, pipeline_amount DESC"""


def spend_status(ad_spend: pd.Series, finance_spend: pd.Series) -> pd.Series:
    """Why a channel group's spend ratios may be empty: ``ok`` (ad-platform spend), ``zero spend``, ``finance spend
    only`` (journal spend but no ad platform: the ratios, defined on ad spend, stay empty) or ``no spend data``."""
    out = pd.Series("no spend data", index=ad_spend.index, dtype=object)
    out[finance_spend.fillna(0) > 0] = "finance spend only"
    out[ad_spend.notna() & (ad_spend == 0)] = "zero spend"
    out[ad_spend.fillna(0) > 0] = "ok"
    return out
