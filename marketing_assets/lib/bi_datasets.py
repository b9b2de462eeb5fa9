"""SQL of the BI datasets DuckDB publishes without a pandas frame: the per-touchpoint credit drill-down and copies of
warehouse tables (the marketing-mix model's, the attribution model comparison). No Dagster import.

Every builder reads through :func:`ref` (the asset's upstream assets are what it references) and returns one SELECT
whose columns are exactly the published ones, in order, cast to the published types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from marketing_assets.constants import ATTRIBUTION, MMM, SOURCES
from marketing_assets.lib.attribution.models import REGISTRY
from marketing_assets.lib.kpis import UNATTRIBUTED
from marketing_assets.lib.publish import PSEUDONYM_MACRO
from marketing_assets.lib.refs import ref
from marketing_assets.lib.sql import ident, literal

SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "date": "DATE", "bool": "BOOLEAN", "timestamp": "TIMESTAMP"}
# opportunity_credit's pseudonym columns: {column: (prefix, SQL condition under which the column may be NULL, None = never)}
OPPORTUNITY_CREDIT_PSEUDONYMS = {
    "opportunity_key": ("opp_", None),
    "touchpoint_key": ("tp_", f"channel_group = {literal(UNATTRIBUTED)}"),  # an opportunity without a touch: no touchpoint
}


def typed(expr: str, kind: str) -> str:
    return f"CAST({expr} AS {SQL_TYPES[kind]})"


def opportunity_credit_sql(no_campaign: str, dictionary_version: int) -> str:
    """One row per opportunity touchpoint × attribution model of ``attribution_credits`` (whose credit columns hold
    pipeline amounts): the credit share, the attributed pipeline (the credit column: credit × pipeline_amount, the
    KPI base ``credited_pipeline``) and the attributed revenue (credit × won amount of a won opportunity, the KPI base
    ``credited_wins``; 0 otherwise). An opportunity without any credited touch has one row per model, as the KPI base
    and the attribution roll-ups count it: channel group and name "(unattributed)", campaign ``no_campaign``, no
    touchpoint (touch_count 0, the other touch columns NULL), credit 1, its whole pipeline and won amount.

    Identifiers only as keyed pseudonyms (the ``pseudonym`` macro, see :func:`marketing_assets.lib.publish.register_pseudonym`),
    hashed once per distinct opportunity and touchpoint; no contact or account column. No ORDER BY: the rows of a touch
    (one per model) stay together, which Parquet compresses well, and nothing row-proportional is sorted."""
    models = list(REGISTRY.values())
    credits = ", ".join(f"c.{ident(m.credit_column)} AS {ident(m.name)}" for m in models)
    opp, tp = (literal(OPPORTUNITY_CREDIT_PSEUDONYMS[k][0]) for k in ("opportunity_key", "touchpoint_key"))
    source, crm, unattributed = ref(ATTRIBUTION, "attribution_credits"), ref(SOURCES, "crm_opportunities"), literal(UNATTRIBUTED)
    return f"""
        WITH opportunity_keys AS (
            SELECT opportunity_id, {PSEUDONYM_MACRO}({opp}, opportunity_id) AS opportunity_key
            FROM (SELECT opportunity_id FROM {crm} UNION SELECT opportunity_id FROM {source})),
        touchpoint_keys AS (
            SELECT touchpoint_id, {PSEUDONYM_MACRO}({tp}, touchpoint_id) AS touchpoint_key FROM (SELECT DISTINCT touchpoint_id FROM {source})),
        touched AS (
            SELECT k.opportunity_key, t.touchpoint_key, c.opportunity_created_date, c.sales_segment,
                   coalesce(c.channel_group, {unattributed}) AS channel_group, c.channel_name,
                   coalesce(c.campaign_key, {literal(no_campaign)}) AS campaign_key, c.touchpoint_type, c.touchpoint_date, c.touch_order,
                   c.touch_count, c.lookback_days, c.pipeline_amount, coalesce(o.is_won, false) AS is_won, o.won_amount, {credits}
            FROM {source} c
            LEFT JOIN {crm} o USING (opportunity_id)
            LEFT JOIN opportunity_keys k USING (opportunity_id)
            LEFT JOIN touchpoint_keys t USING (touchpoint_id)),
        long AS (
            SELECT *, credited_pipeline / nullif(pipeline_amount, 0) AS credit
            FROM touched UNPIVOT INCLUDE NULLS (credited_pipeline FOR attribution_model IN ({", ".join(ident(m.name) for m in models)}))),
        untouched AS (
            SELECT k.opportunity_key, NULL AS touchpoint_key, o.opportunity_created_date, o.sales_segment, {unattributed} AS channel_group,
                   {unattributed} AS channel_name, {literal(no_campaign)} AS campaign_key, NULL AS touchpoint_type, NULL AS touchpoint_date,
                   NULL AS touch_order, 0 AS touch_count, NULL AS lookback_days, o.pipeline_amount, coalesce(o.is_won, false) AS is_won,
                   o.won_amount, m.attribution_model, o.pipeline_amount AS credited_pipeline, 1.0 AS credit
            FROM {crm} o
            ANTI JOIN (SELECT DISTINCT opportunity_id FROM {source}) c USING (opportunity_id)
            LEFT JOIN opportunity_keys k USING (opportunity_id)
            CROSS JOIN (SELECT unnest([{", ".join(literal(m.name) for m in models)}]) AS attribution_model) m)
        SELECT opportunity_key, {typed("touchpoint_key", "string")} AS touchpoint_key, attribution_model,
               CAST(opportunity_created_date AS DATE) AS opportunity_created_date,
               CAST(date_trunc('month', opportunity_created_date) AS DATE) AS opportunity_month,
               sales_segment, channel_group, channel_name, campaign_key, {typed("touchpoint_type", "string")} AS touchpoint_type,
               CAST(touchpoint_date AS DATE) AS touchpoint_date,
               date_diff('day', CAST(touchpoint_date AS DATE), CAST(opportunity_created_date AS DATE))::BIGINT AS days_before_opportunity,
               touch_order::BIGINT AS touch_order, touch_count::BIGINT AS touch_count, lookback_days::BIGINT AS lookback_days,
               credit::DOUBLE AS credit, pipeline_amount::DOUBLE AS pipeline_amount, credited_pipeline::DOUBLE AS attributed_pipeline, is_won,
               (CASE WHEN is_won THEN credit * won_amount ELSE 0.0 END)::DOUBLE AS attributed_revenue,
               {int(dictionary_version)}::BIGINT AS dictionary_version
        FROM (SELECT * FROM long UNION ALL BY NAME SELECT * FROM untouched)"""


def table_copy_sql(schema: str, table: str, columns: Mapping[str, str], present: Sequence[str] | None = None,
                   derived: Mapping[str, str] | None = None, order: Sequence[str] = ()) -> str:
    """``columns`` ({name: published type}) of warehouse table ``schema.table``, cast to their types; a column the
    table lacks (``present``: its columns, None = all) is NULL, ``derived`` columns are SQL expressions over the table.
    A table that does not exist (``present`` empty) gives no rows with the same columns."""
    derived = dict(derived or {})
    have = set(columns) if present is None else set(present)
    exprs = [typed(derived.get(c, ident(c) if c in have else "NULL"), kind) + f" AS {ident(c)}" for c, kind in columns.items()]
    if present is not None and not present:
        return empty_sql(columns)
    order_by = f" ORDER BY {', '.join(ident(c) for c in order)}" if order else ""
    return f"SELECT {', '.join(exprs)} FROM {ref(schema, table)}{order_by}"


MMM_WEEKLY_FIXED = ("week", "actual", "predicted")  # mmm_contributions columns that are not a component


def mmm_channels_sql() -> str:
    return f"SELECT channel, channel_group FROM {ref(MMM, 'mmm_model')}"


def empty_sql(columns: Mapping[str, str]) -> str:
    """No rows, with ``columns`` ({name: published type}): the dataset of an upstream that was skipped."""
    return f"SELECT {', '.join(typed('NULL', kind) + f' AS {ident(c)}' for c, kind in columns.items())} WHERE false"


def mmm_weekly_sql(columns: Mapping[str, str], components: Sequence[str], present: Sequence[str] | None = None) -> str:
    """``mmm_contributions`` (one column per component) in long form: one row per week × component, the media
    components (the model's channels, mmm_model) with their channel group. ``components``: the table's component
    columns, none when there is no fitted model (no rows); ``columns``: the published ones, in the SELECT's order."""
    predicted = "w.predicted" if present is None or "predicted" in present else "NULL"
    select = f"""SELECT CAST(w.week AS DATE) AS week, w.component, CASE WHEN m.channel IS NULL THEN 'base' ELSE 'media' END AS component_kind,
                        m.channel_group, w.contribution::DOUBLE AS contribution, w.actual::DOUBLE AS actual, {typed(predicted, 'float')} AS predicted"""
    if not components:
        return empty_sql(columns)
    return f"""{select}
               FROM {ref(MMM, 'mmm_contributions')} UNPIVOT INCLUDE NULLS (contribution FOR component IN ({', '.join(ident(c) for c in components)})) w
               LEFT JOIN ({mmm_channels_sql()}) m ON m.channel = w.component
               ORDER BY week, component_kind, w.component"""
