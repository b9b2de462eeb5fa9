"""Attribution assets: credits per opportunity × touchpoint for every model, roll-ups and channel ROI."""

import dagster as dg
import pandas as pd
from pydantic import Field

from marketing_assets.constants import ATTRIBUTION, SOURCES, TOUCHPOINTS
from marketing_assets.kpi_bases import kpi_reads, kpi_scope
from marketing_assets.lib import attribution as attr
from marketing_assets.lib import kpis, rollups
from marketing_assets.lib.refs import ref, this
from marketing_assets.lib.rollups import spend_status
from marketing_assets.lib.sql import unordered_writes
from marketing_assets.lib.touchpoints import lead_touches_sql, opportunity_touchpoints_by_window_sql
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse



class AttributionConfig(dg.Config):
    half_life_days: float = Field(default=7.0, gt=0, description="Half-life of the time-decay model, in days.")
    position_weights: list[float] = Field(default=[0.4, 0.2, 0.4], description="U-shaped first / middle / last shares.")
    w_weights: list[float] = Field(default=[0.3, 0.3, 0.3, 0.1], description="W-shaped first / lead / opportunity / rest shares.")
    markov_order: int = Field(default=1, ge=1, le=4, description="Order of the Markov chain.")


class ComparisonConfig(dg.Config):
    lookback_windows: list[int] = Field(default=[7, 30, 90], description="Lookback windows (days) to compare.")
    half_life_days: float = Field(default=7.0, gt=0)


OTHER_CHANNELS = attr.OTHER_CHANNELS
shapley_weights = attr.pooled_shapley_weights


def credits_inputs() -> dict[str, str]:
    """What ``attribution_credits`` reads: the journeys (data-driven weights) and the touchpoints to credit."""
    return {
        "journeys": ref(TOUCHPOINTS, "conversion_paths"),
        # touch_order is kept: the credits read it instead of sorting the touches again
        "source_view": "CREATE OR REPLACE TEMP VIEW _attr_source AS SELECT * EXCLUDE (touch_count) FROM "
        f"{ref(TOUCHPOINTS, 'opportunity_touchpoints')}",
    }


def _channel_weights(con, params: dict, journeys: str | None = None) -> tuple[dict[str, dict[str, float]], dict[str, pd.DataFrame]]:
    """Per data-driven model of the registry: its channel weights and its per-channel result.

    ``journeys`` is the journey relation (``path``, ``conversions``, ``value``, ``nulls``; default: the
    conversion paths). Each model aggregates it in DuckDB; Python only reads the aggregates.
    """
    journeys = journeys or credits_inputs()["journeys"]
    (conversions,) = con.execute(f"SELECT coalesce(sum(conversions), 0) FROM {journeys}").fetchone()
    if not conversions:
        return {}, {}
    models = {m: attr.get_model(m) for m in attr.data_driven_models()}
    fitted = {m: model.weights(con.execute(model.aggregate(journeys, params)).df(), params) for m, model in models.items()}
    return {m: w for m, (w, _) in fitted.items()}, {m: r for m, (_, r) in fitted.items()}


@dg.asset(deps=upstream(credits_inputs), kinds={"duckdb"})
def attribution_credits(context: dg.AssetExecutionContext, config: AttributionConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per opportunity × touchpoint with one credit column per model (first, last, last non-direct, linear, time decay, U, W, Markov, Shapley)."""
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ATTRIBUTION}")
        weights, results = _channel_weights(con, config.model_dump())
        con.execute(credits_inputs()["source_view"])
        credits = this(ATTRIBUTION, "attribution_credits")
        attr.attribution_credits_sql(
            con, "_attr_source", credits,
            half_life_days=config.half_life_days,
            position_weights=tuple(config.position_weights),
            w_weights=tuple(config.w_weights),
            channel_weights=weights or {m: {} for m in attr.data_driven_models()},
            parameters=config.model_dump(),
            touch_order="touch_order",
        )
        models = attr.model_names()
        totals = con.execute(
            "SELECT count(*), " + ", ".join(f"coalesce(round(sum({attr.credit_column(m)}), 2), 0)" for m in models) + f" FROM {credits}"
        ).fetchone()
    meta = {"dagster/row_count": int(totals[0]), "credited_pipeline_by_model": dict(zip(models, map(float, totals[1:]), strict=True))}
    if not totals[0]:
        meta["note"] = "No opportunity has a touchpoint in its lookback window: nothing to credit; roll-ups show all pipeline as (unattributed)."
    for name, key in (("markov", "markov_removal_effects"), ("shapley", "shapley_values")):
        if name in results and not results[name].empty:
            meta[key] = dg.MetadataValue.md(results[name].round(4).to_markdown(index=False))
    return dg.MaterializeResult(metadata=meta)


def _rollup_asset(name: str, dims: list[str], description: str):
    def rollup_sql() -> str:
        return rollups.rollup_sql(ref(ATTRIBUTION, "attribution_credits"), ref(SOURCES, "crm_opportunities"), attr.model_names(), dims)

    @dg.asset(name=name, deps=upstream(rollup_sql), kinds={"duckdb"}, description=description)
    def _rollup(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        reference = attr.reference_model()
        with warehouse.get_connection() as con:
            con.execute(f"CREATE OR REPLACE TABLE {this(ATTRIBUTION, name)} AS {rollup_sql()}")
            (rows,) = con.execute(f"SELECT count(*) FROM {this(ATTRIBUTION, name)}").fetchone()
            top = con.execute(
                f"""SELECT {', '.join(dims)}, round(pipeline_amount, 0) AS pipeline FROM {this(ATTRIBUTION, name)}
                    WHERE model = ? ORDER BY pipeline_amount DESC LIMIT 10""", [reference]
            ).df()
        return dg.MaterializeResult(
            metadata={"dagster/row_count": int(rows), "reference_model": reference, f"top_{reference}": dg.MetadataValue.md(top.to_markdown(index=False))}
        )

    return _rollup


attribution_by_channel = _rollup_asset(
    "attribution_by_channel", ["channel_name", "channel_group"],
    "One row per model × channel: credited pipeline, opportunities and won revenue; unattributed pipeline as `(unattributed)`.",
)
attribution_by_segment_channel = _rollup_asset(
    "attribution_by_segment_channel", ["sales_segment", "channel_name", "channel_group"],
    "One row per model × sales segment × channel: credited pipeline, opportunities and won revenue.",
)
attribution_by_campaign = _rollup_asset(
    "attribution_by_campaign", ["channel_group", "campaign_key"],
    "One row per model × channel group × campaign (normalised utm_campaign): credited pipeline, opportunities and won revenue.",
)


# What the comparison's credits read of the windowed touches (the rest of opportunity_touchpoints is not needed).
_COMPARISON_COLUMNS = ("lookback_days", "opportunity_id", "pipeline_amount", "opportunity_created_date", "touchpoint_id",
                       "touchpoint_type", "touchpoint_date", "channel_name", "is_direct", "is_lead_creation", "touch_order")


COMPARISON_ROLLUP_KEYS = ("lookback_days", "opportunity_id", "channel_name")
"""What the comparison's roll-up reads of its credits besides the credit columns."""


def comparison_window_sql(windows: list[int]) -> tuple[str, str, str]:
    """Every lookback window's lead-creation touches (temporary table ``_cmp_lead``), the touchpoints of every window
    from one windowing pass (temporary table ``_cmp_ot``, one row per window × opportunity × touchpoint, with its touch
    order in the window) and the per-window roll-up of their credits (table ``_cmp_credits``)."""
    opportunities, touchpoints = ref(SOURCES, "crm_opportunities"), ref(TOUCHPOINTS, "touchpoints")
    lead = f"CREATE OR REPLACE TEMP TABLE _cmp_lead AS {lead_touches_sql(opportunities, touchpoints, windows)}"
    touches = (
        f"CREATE OR REPLACE TEMP TABLE _cmp_ot AS SELECT {', '.join(_COMPARISON_COLUMNS)} FROM "
        f"({opportunity_touchpoints_by_window_sql(opportunities, touchpoints, windows, lead_touches='_cmp_lead')})"
    )
    rollup = rollups.rollup_sql("_cmp_credits", opportunities, attr.rule_models(), ["channel_name"], windows=windows)
    return lead, touches, rollup


@dg.asset(deps=upstream(lambda: comparison_window_sql(ComparisonConfig().lookback_windows)), kinds={"duckdb"})
def attribution_model_comparison(context: dg.AssetExecutionContext, config: ComparisonConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per lookback window × channel: each rule model's credited pipeline and share, to show how sensitive a channel's credit is to model and window."""
    lead, touches, rollup = comparison_window_sql(config.lookback_windows)
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ATTRIBUTION}")  # may run before the other attribution assets
        # a temporary table (never written into the warehouse file): the credits read the windowed touches twice (the
        # touches and their per-window aggregates), a view would window them twice
        con.execute(lead)
        with unordered_writes(con):
            con.execute(touches)
        con.execute("DROP TABLE IF EXISTS _cmp_lead")
        # every window's credits in one pass: each opportunity × window is credited on its own, in the touch order of
        # its window (no second sort)
        # a temporary table: read twice by the roll-up, never kept, so not written into (and compressed in) the warehouse file
        # only the roll-up's keys are kept beside the credits (the touches' ids, dates and types are not read again)
        attr.attribution_credits_sql(con, "_cmp_ot", "_cmp_credits", half_life_days=config.half_life_days, partition_by=("lookback_days",),
                                     temporary=True, touch_order="touch_order", keep=COMPARISON_ROLLUP_KEYS)
        con.execute(
            f"""CREATE OR REPLACE TABLE {this(ATTRIBUTION, 'attribution_model_comparison')} AS
            WITH windows AS ({rollup}),
            shaped AS (
                SELECT lookback_days, channel_name, model, pipeline_amount,
                       pipeline_amount / sum(pipeline_amount) OVER (PARTITION BY lookback_days, model) AS share
                FROM windows
            )
            SELECT s.*, s.share - b.share AS share_change_vs_default_window,
                   max(s.share) OVER (PARTITION BY s.lookback_days, s.channel_name) - min(s.share) OVER (PARTITION BY s.lookback_days, s.channel_name) AS model_spread
            FROM shaped s LEFT JOIN shaped b
              ON b.channel_name = s.channel_name AND b.model = s.model AND b.lookback_days = {max(config.lookback_windows)}
            ORDER BY lookback_days, model, pipeline_amount DESC"""
        )
        con.execute("DROP TABLE IF EXISTS _cmp_credits")
        con.execute("DROP TABLE IF EXISTS _cmp_ot")
        (rows,) = con.execute(f"SELECT count(*) FROM {this(ATTRIBUTION, 'attribution_model_comparison')}").fetchone()
    return dg.MaterializeResult(metadata={"dagster/row_count": int(rows), "lookback_windows": config.lookback_windows})


CHANNEL_ROI_KPIS = ("ad_spend", "finance_marketing_spend", "new_leads", "attributed_pipeline", "attributed_opportunities", "attributed_revenue",
                    "attributed_won_deals", "channel_roas", "cost_per_lead", "cost_per_opportunity", "cost_per_won_deal")


@dg.asset(
    # upstream = what the KPIs' SQL reads: the KPI base tables (kpis.leads) and the source tables of the inline bases
    deps=kpi_reads(CHANNEL_ROI_KPIS),
    kinds={"duckdb"},
)
def channel_roi(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per model × channel group × month: ad spend and finance-journal spend, new leads, attributed pipeline,
    opportunities, revenue and won deals, channel ROAS and cost per lead / opportunity / won deal — every figure a
    KPI of the metric dictionary, computed from its definition."""
    dictionary = kpis.load_kpi_dictionary()
    with warehouse.get_connection() as con, kpi_scope(con, dictionary) as scope:  # new_leads: the kpis.leads table
        frame = kpis.compute_wide(con, CHANNEL_ROI_KPIS, "month", ["attribution_model", "channel_group"], dictionary=dictionary,
                                  skip_missing=True, scope=scope)
        frame = frame.dropna(subset=["attribution_model", "channel_group"]).rename(columns={"attribution_model": "model", "period": "month"})
        frame.insert(5, "spend_status", spend_status(frame["ad_spend"], frame["finance_marketing_spend"]))
        con.register("_channel_roi_df", frame)
        con.execute(f"CREATE OR REPLACE TABLE {this(ATTRIBUTION, 'channel_roi')} AS SELECT * FROM _channel_roi_df")
        con.unregister("_channel_roi_df")
    reference = attr.reference_model()
    totals = frame[frame["model"] == reference].groupby("channel_group")[["ad_spend", "attributed_revenue"]].sum(min_count=1)
    totals["channel_roas"] = totals["attributed_revenue"] / totals["ad_spend"].where(totals["ad_spend"] > 0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "reference_model": reference,
            f"{reference}_totals": dg.MetadataValue.md(totals.sort_values("ad_spend", ascending=False).round(2).reset_index().to_markdown(index=False)),
        }
    )