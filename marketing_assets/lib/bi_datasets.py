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


# opportunity_credit's columns per attribution model: {prefix: published type}; one column "<prefix>_<model>" per model
# of the registry, so a touch is one row carrying every model's credit (a chart compares the models side by side and
# scans one row per touch, not one per touch and model).
PER_MODEL_COLUMNS = {"credit": "float", "attributed_pipeline": "float", "attributed_revenue": "float"}
OPPORTUNITY_CREDIT_TOUCH_COLUMNS = {
    "opportunity_key": "string", "touchpoint_key": "string", "opportunity_created_date": "date", "opportunity_month": "date",
    "sales_segment": "string", "channel_group": "string", "channel_name": "string", "campaign_key": "string", "touchpoint_type": "string",
    "touchpoint_date": "date", "days_before_opportunity": "int", "touch_order": "int", "touch_count": "int", "lookback_days": "int",
    "pipeline_amount": "float", "is_won": "bool",
}


def per_model_column(prefix: str, model: str) -> str:
    """The opportunity_credit column of ``prefix`` (PER_MODEL_COLUMNS) for attribution model ``model``."""
    return f"{prefix}_{model}"


def per_model_columns(prefix: str) -> dict[str, str]:
    """{column: model} of ``prefix`` for every model of the registry, in registry order."""
    return {per_model_column(prefix, m): m for m in REGISTRY}


def opportunity_credit_columns() -> dict[str, str]:
    """Published columns of opportunity_credit with their types: the touch's, then each prefix of PER_MODEL_COLUMNS
    for every model, then the dictionary version."""
    per_model = {c: kind for prefix, kind in PER_MODEL_COLUMNS.items() for c in per_model_columns(prefix)}
    return {**OPPORTUNITY_CREDIT_TOUCH_COLUMNS, **per_model, "dictionary_version": "int"}


def opportunity_credit_sql(no_campaign: str, dictionary_version: int) -> str:
    """One row per opportunity touchpoint of ``attribution_credits`` (whose credit columns hold pipeline amounts) with,
    for every attribution model, the credit share (``credit_<model>``), the attributed pipeline (``attributed_pipeline_<model>``:
    the credit column, credit × pipeline_amount, the KPI base ``credited_pipeline``) and the attributed revenue
    (``attributed_revenue_<model>``: credit × won amount of a won opportunity, the KPI base ``credited_wins``; 0 otherwise).
    An opportunity without any credited touch has one row, as the KPI base and the attribution roll-ups count it under
    every model: channel group and name "(unattributed)", campaign ``no_campaign``, no touchpoint (touch_count 0, the other
    touch columns NULL), credit 1, its whole pipeline and won amount.

    Identifiers only as keyed pseudonyms (the ``pseudonym`` macro, see :func:`marketing_assets.lib.publish.register_pseudonym`),
    hashed once per distinct opportunity (a join: an opportunity has several touches) and once per row for touchpoints
    (most are credited to one opportunity: a DISTINCT and a join back cost more than the few repeated hashes); no
    contact or account column. No ORDER BY: nothing row-proportional
    is sorted."""
    models = list(REGISTRY.values())
    opp, tp = (literal(OPPORTUNITY_CREDIT_PSEUDONYMS[k][0]) for k in ("opportunity_key", "touchpoint_key"))
    source, crm, unattributed = ref(ATTRIBUTION, "attribution_credits"), ref(SOURCES, "crm_opportunities"), literal(UNATTRIBUTED)

    def share(m) -> str:  # the model's credit share: an opportunity without a touch is credited whole (its one row)
        return f"CASE WHEN touch_count = 0 THEN 1.0 ELSE {ident(m.credit_column)} / nullif(pipeline_amount, 0) END"

    exprs = {"credit": share, "attributed_pipeline": lambda m: ident(m.credit_column),
             "attributed_revenue": lambda m: f"CASE WHEN is_won THEN ({share(m)}) * won_amount ELSE 0.0 END"}
    per_model = ",\n               ".join(f"({exprs[prefix](m)})::DOUBLE AS {ident(per_model_column(prefix, m.name))}"
                                        for prefix in PER_MODEL_COLUMNS for m in models)
    return f"""
        WITH opportunity_keys AS (
            SELECT opportunity_id, {PSEUDONYM_MACRO}({opp}, opportunity_id) AS opportunity_key
            FROM (SELECT opportunity_id FROM {crm} UNION SELECT opportunity_id FROM {source})),
        touched AS (
            SELECT k.opportunity_key, {PSEUDONYM_MACRO}({tp}, c.touchpoint_id) AS touchpoint_key, c.opportunity_created_date, c.sales_segment,
                   coalesce(c.channel_group, {unattributed}) AS channel_group, c.channel_name,
                   coalesce(c.campaign_key, {literal(no_campaign)}) AS campaign_key, c.touchpoint_type, c.touchpoint_date, c.touch_order,
                   c.touch_count, c.lookback_days, c.pipeline_amount, coalesce(o.is_won, false) AS is_won, o.won_amount,
                   {", ".join(f"c.{ident(m.credit_column)}" for m in models)}
            FROM {source} c
            LEFT JOIN {crm} o USING (opportunity_id)
            LEFT JOIN opportunity_keys k USING (opportunity_id)),
        untouched AS (
            SELECT k.opportunity_key, NULL AS touchpoint_key, o.opportunity_created_date, o.sales_segment, {unattributed} AS channel_group,
                   {unattributed} AS channel_name, {literal(no_campaign)} AS campaign_key, NULL AS touchpoint_type, NULL AS touchpoint_date,
                   NULL AS touch_order, 0 AS touch_count, NULL AS lookback_days, o.pipeline_amount, coalesce(o.is_won, false) AS is_won,
                   o.won_amount, {", ".join(f"o.pipeline_amount AS {ident(m.credit_column)}" for m in models)}
            FROM {crm} o
            ANTI JOIN (SELECT DISTINCT opportunity_id FROM {source}) c USING (opportunity_id)
            LEFT JOIN opportunity_keys k USING (opportunity_id))
        SELECT opportunity_key, {typed("touchpoint_key", "string")} AS touchpoint_key,
               CAST(opportunity_created_date AS DATE) AS opportunity_created_date,
               CAST(date_trunc('month', opportunity_created_date) AS DATE) AS opportunity_month,
               sales_segment, channel_group, channel_name, campaign_key, {typed("touchpoint_type", "string")} AS touchpoint_type,
               CAST(touchpoint_date AS DATE) AS touchpoint_date,
               date_diff('day', CAST(touchpoint_date AS DATE), CAST(opportunity_created_date AS DATE))::BIGINT AS days_before_opportunity,
               touch_order::BIGINT AS touch_order, touch_count::BIGINT AS touch_count, lookback_days::BIGINT AS lookback_days,
               pipeline_amount::DOUBLE AS pipeline_amount, is_won,
               {per_model},
               {int(dictionary_version)}::BIGINT AS dictionary_version
        FROM (SELECT * FROM touched UNION ALL BY NAME SELECT * FROM untouched)"""


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


def per_model_sums_sql(relation: str, prefix: str, group_by: Sequence[str], where: str = "true") -> str:
    """Long form of opportunity_credit's ``prefix`` columns summed per group: one row per model × group of ``relation``'s
    rows matching ``where``, columns attribution_model, ``group_by``…, value (one scan; the unpivot sees only the groups)."""
    columns = per_model_columns(prefix)
    groups = ", ".join(ident(c) for c in group_by)
    sums = ", ".join(f"sum({ident(c)}) AS {ident(m)}" for c, m in columns.items())
    return f"""SELECT attribution_model, {groups}, value
               FROM (SELECT {groups}, {sums} FROM {relation} WHERE {where} GROUP BY ALL)
               UNPIVOT INCLUDE NULLS (value FOR attribution_model IN ({", ".join(ident(m) for m in columns.values())}))"""
