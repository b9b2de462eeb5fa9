"""Attribution roll-ups and channel ROI as DuckDB SQL over the wide credits table. No Dagster import.

Credits are unpivoted to long form (``model``, dimensions, credit) so a BI tool filters by model.
Pipeline of opportunities without any touch in their window is not spread over channels: it
appears as ``(unattributed)`` so totals reconcile with the CRM.
"""

from __future__ import annotations

from collections.abc import Sequence

UNATTRIBUTED = "(unattributed)"
OPPORTUNITY_DIMS = {"sales_segment"}


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
    unattributed_dims = ", ".join(f"o.{d}" if d in OPPORTUNITY_DIMS else f"'{UNATTRIBUTED}' AS {d}" for d in dims)
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


def channel_roi_sql(
    *,
    credits: str,
    opportunities: str,
    ad_spend: str,
    finance: str,
    touchpoints: str,
    contacts: str,
    models: Sequence[str],
    finance_group_sql: str,
) -> str:
    """One row per model × channel group × month with spend, funnel counts and efficiency ratios.

    Pipeline and opportunities count in the opportunity's creation month, customers and won revenue
    in its close month, leads in the lead month under the channel of the latest touch at or before
    the lead date. Spend comes from the ad platforms where a channel group has platform data that
    month, else from finance. Ratios are NULL, never infinite, when spend or the denominator is
    missing; ``spend_status`` says why.
    """
    return f"""
    WITH long AS ({_long(credits, models, ['channel_group'])}),
    outcomes AS ({_outcomes(opportunities)}),
    pipe AS (
        SELECT l.model, l.channel_group, o.created_month AS month, sum(l.credit) AS pipeline,
               sum(l.credit / nullif(o.pipeline_amount, 0)) AS opportunities
        FROM long l JOIN outcomes o USING (opportunity_id) GROUP BY ALL
        UNION ALL
        SELECT m.model, '{UNATTRIBUTED}', o.created_month, sum(o.pipeline_amount), count(*)
        FROM outcomes o ANTI JOIN (SELECT DISTINCT opportunity_id FROM {credits}) c USING (opportunity_id)
        CROSS JOIN ({_models_sql(models)}) m GROUP BY ALL
    ),
    won AS (
        SELECT l.model, l.channel_group, o.closed_month AS month,
               sum(l.credit / nullif(o.pipeline_amount, 0)) AS customers,
               sum(l.credit / nullif(o.pipeline_amount, 0) * o.won_amount) AS won_revenue
        FROM long l JOIN outcomes o USING (opportunity_id) WHERE o.is_won AND o.closed_month IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT m.model, '{UNATTRIBUTED}', o.closed_month, count(*), sum(o.won_amount)
        FROM outcomes o ANTI JOIN (SELECT DISTINCT opportunity_id FROM {credits}) c USING (opportunity_id)
        CROSS JOIN ({_models_sql(models)}) m WHERE o.is_won AND o.closed_month IS NOT NULL GROUP BY ALL
    ),
    platform_spend AS (
        SELECT channel_group, date_trunc('month', date_day)::DATE AS month, sum(spend) AS spend FROM {ad_spend} GROUP BY ALL
    ),
    finance_spend AS (
        SELECT {finance_group_sql} AS channel_group, date_trunc('month', period_month)::DATE AS month,
               sum(CAST(amount AS DOUBLE)) AS spend
        FROM {finance} GROUP BY ALL
    ),
    spend AS (
        SELECT coalesce(p.channel_group, f.channel_group) AS channel_group, coalesce(p.month, f.month) AS month,
               coalesce(p.spend, f.spend) AS spend,
               CASE WHEN p.spend IS NOT NULL THEN 'ad_platforms' ELSE 'finance' END AS spend_source
        FROM platform_spend p FULL JOIN finance_spend f ON f.channel_group = p.channel_group AND f.month = p.month
    ),
    lead_touch AS (
        SELECT c.contact_id, date_trunc('month', c.lead_date)::DATE AS month,
               coalesce(arg_max(t.channel_group, t.touchpoint_date), '{UNATTRIBUTED}') AS channel_group
        FROM {contacts} c LEFT JOIN {touchpoints} t ON t.contact_id = c.contact_id AND t.touchpoint_date <= c.lead_date
        WHERE c.lead_date IS NOT NULL GROUP BY ALL
    ),
    leads AS (SELECT channel_group, month, count(*) AS leads FROM lead_touch GROUP BY ALL),
    keys AS (
        SELECT DISTINCT channel_group, month FROM (
            SELECT channel_group, month FROM pipe UNION ALL SELECT channel_group, month FROM won
            UNION ALL SELECT channel_group, month FROM spend UNION ALL SELECT channel_group, month FROM leads)
        WHERE month IS NOT NULL
    ),
    grid AS (SELECT m.model, k.channel_group, k.month FROM keys k CROSS JOIN ({_models_sql(models)}) m)
    SELECT g.model, g.channel_group, g.month, s.spend, s.spend_source,
           CASE WHEN s.spend IS NULL THEN 'no spend data' WHEN s.spend = 0 THEN 'zero spend' ELSE 'ok' END AS spend_status,
           coalesce(l.leads, 0) AS leads, coalesce(p.opportunities, 0) AS opportunities, coalesce(p.pipeline, 0) AS pipeline,
           coalesce(w.customers, 0) AS customers, coalesce(w.won_revenue, 0) AS won_revenue,
           w.won_revenue / nullif(s.spend, 0) AS roas,
           (coalesce(w.won_revenue, 0) - s.spend) / nullif(s.spend, 0) * 100 AS roi_pct,
           s.spend / nullif(l.leads, 0) AS cpl,
           s.spend / nullif(p.opportunities, 0) AS cost_per_opportunity,
           s.spend / nullif(w.customers, 0) AS cac
    FROM grid g
    LEFT JOIN spend s ON s.channel_group = g.channel_group AND s.month = g.month
    LEFT JOIN leads l ON l.channel_group = g.channel_group AND l.month = g.month
    LEFT JOIN pipe p ON p.model = g.model AND p.channel_group = g.channel_group AND p.month = g.month
    LEFT JOIN won w ON w.model = g.model AND w.channel_group = g.channel_group AND w.month = g.month
    ORDER BY g.model, g.month, g.channel_group"""
