"""Governed metric dictionary: load, validate and compute the KPIs of ``config/kpis.yaml``. No Dagster import.

Every KPI is computed from its YAML ``formula`` and nothing else:

- a *base* KPI's formula is a SQL aggregate expression over one base relation. The base relations
  (order lines, customers, leads, sessions, opportunities, won deals, ad-spend days, inventory
  snapshot lines) are defined once, in :data:`BASE_RELATIONS`, over the warehouse tables. Each has an
  ``event_date`` column that the time grain truncates, and a set of dimension columns;
- a *derived* KPI (``base: derived``) combines other KPIs through placeholders: ``{kpi:NAME}`` is
  NAME's value for the same period and dimensions, ``{kpi:NAME|lag=N}`` its value N periods earlier
  (a date offset of N days / weeks / months, so gaps in the data never shift the comparison).

Usage::

    dictionary = load_kpi_dictionary()                 # or load_kpi_dictionary("my/kpis.yaml")
    df = compute_kpis(con, ["total_revenue", "roas"], grain="month", dictionary=dictionary)

``compute_kpis`` returns long form: ``period``, the requested dimensions, ``kpi``, ``value``, ``unit``.
``period`` is the first day of the day / ISO week (Monday) / month, and NULL for ``grain="total"``.
At ``grain="trailing_3_months"`` a period is the last of three calendar months: the row aggregates the base
rows of that month and the two before it (a report's trailing quarter, ending with any month of the data).
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from marketing_assets.constants import ATTRIBUTION, CONFIG_DIR, IDENTITY, KPIS, MMM, SOURCES, SPEND, TOUCHPOINTS
from marketing_assets.lib import yaml_files
from marketing_assets.lib.attribution import model_names
from marketing_assets.lib.channels import campaign_key_sql, crm_label_group_sql, load_channel_config
from marketing_assets.lib.refs import recording, ref
from marketing_assets.lib.sql import literal
from marketing_assets.lib.touchpoints import touch_order_key

DEFAULT_KPI_FILE = CONFIG_DIR / "kpis.yaml"

TIME_GRAINS = ("day", "week", "month", "trailing_3_months", "total")
TRAILING_MONTHS = {"trailing_3_months": 3}
"""Grains whose period is the last month of a window of N calendar months (the window's base rows all count)."""
DERIVED = "derived"
UNITS = ("currency", "percent", "ratio", "count", "months")
REFRESHES = ("hourly", "daily", "weekly", "monthly")
DIRECTIONS = ("higher_is_better", "lower_is_better")
REQUIRED_FIELDS = (
    "name",
    "label",
    "description",
    "formula",
    "base",
    "grains",
    "source_assets",
    "owner",
    "refresh",
    "unit",
    "version",
    "changed",
)
OPTIONAL_FIELDS = ("target", "threshold", "breakdown")
UNATTRIBUTED = "(unattributed)"
DEFAULT_NON_MARKETING_GROUPS = ("Outbound Sales", "Direct", "Unassigned", UNATTRIBUTED)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ASSET_RE = re.compile(r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$")
_REF_RE = re.compile(r"\{kpi:([a-z][a-z0-9_]*)(?:\|lag=(\d+))?\}")
_LAG_UNIT = {"day": "DAY", "week": "WEEK", "month": "MONTH"}


class KpiDictionaryError(ValueError):
    """The metric dictionary is invalid; the message names the KPI and the field."""


# ------------------------------------------------------------------------------------------ bases


@dataclass(frozen=True)
class BaseRelation:
    """One base relation: its description, dimensions and the earlier bases its SQL selects from by name.

    The SQL is in :func:`base_relations_sql`; the tables it reads are recorded from that SQL
    (:func:`base_source_assets`), never listed here.
    """

    name: str
    description: str
    dims: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    rows_of_dependency: bool = False
    """Each row is one row of its one dependency with the same ``event_date`` (and a row's values depend only on its
    row): its rows in a date range come from the dependency's rows in that range."""
    key: tuple[str, ...] = ()
    """Columns identifying a row (unique, never NULL), when the base has such a key."""


BASE_RELATIONS: dict[str, BaseRelation] = {
    "revenue_lines": BaseRelation(
        "revenue_lines",
        "One row per ERP order or return line; returns carry negative net_revenue, net_quantity and cogs.",
        ("product_id", "product_name", "category", "sales_channel"),
        key=("order_id", "line_number"),
    ),
    "customers": BaseRelation(
        "customers",
        "One row per ERP customer with a sale; event_date = first sale; lifetime revenue, cogs, margin, repeat "
        "purchase; channel_group = acquisition channel (group of the matched CRM account's last touch up to the first sale, "
        "last in touch order: time, then marketing < sales < web, then touchpoint id).",
        ("channel_group",),
        ("revenue_lines",),
        key=("customer_id",),
    ),
    "customer_months": BaseRelation(
        "customer_months",
        "One row per ERP customer × month since acquisition (0 = first-sale month) up to the latest order month; "
        "event_date = acquisition month; cumulative revenue and gross margin to the end of that month.",
        ("channel_group", "months_since_acquisition"),
        ("revenue_lines", "customers"),
        key=("customer_id", "months_since_acquisition"),
    ),
    "spend_days": BaseRelation(
        "spend_days",
        "One row per day × platform × account × campaign of unified ad spend; campaign_key = normalised campaign name.",
        ("platform", "channel_group", "campaign_key"),
    ),
    "leads": BaseRelation(
        "leads",
        "One row per CRM contact that became a lead; channel_group / campaign_key of the last touch up to the end of the lead day "
        "(last in touch order: time, then marketing < sales < web, then touchpoint id).",
        ("channel_group", "campaign_key"),
        key=("contact_id",),
    ),
    "sessions": BaseRelation(
        "sessions",
        "One row per web session; has_form_fill = an email was submitted in a form.",
        (),
    ),
    "opportunities": BaseRelation(
        "opportunities",
        "One row per CRM opportunity dated by creation; channel_group = first-touch channel group.",
        ("sales_segment", "channel_group"),
    ),
    "won_deals": BaseRelation(
        "won_deals",
        "One row per won CRM opportunity, dated by its close date.",
        ("sales_segment", "channel_group"),
        ("opportunities",),
    ),
    "credited_pipeline": BaseRelation(
        "credited_pipeline",
        "One row per attribution model × opportunity × credited touch, dated by the opportunity's creation; "
        "opportunities without a touch in their window are one '(unattributed)' row per model.",
        ("attribution_model", "channel_group", "campaign_key", "sales_segment"),
    ),
    "credited_wins": BaseRelation(
        "credited_wins",
        "The rows of credited_pipeline for won opportunities, dated by the close date, with the won amount's share.",
        ("attribution_model", "channel_group", "campaign_key", "sales_segment"),
    ),
    "paid_credited_wins": BaseRelation(
        "paid_credited_wins",
        "The rows of credited_wins; is_paid_media = the channel group has ad-platform spend (spend/ad_spend_daily).",
        ("attribution_model", "channel_group", "campaign_key", "sales_segment"),
        ("credited_wins",),
        rows_of_dependency=True,
    ),
    "finance_spend": BaseRelation(
        "finance_spend",
        "One row per finance journal line of marketing spend, dated by its period month; channel_group from the line's "
        "channel label (config/channels.yaml crm_labels).",
        ("channel_group",),
    ),
    "mmm_channels": BaseRelation(
        "mmm_channels",
        "One row per channel of the fitted marketing-mix model (fit period: no event date); spend, contribution, mroi.",
        ("channel_group",),
    ),
    "mmm_channel_groups": BaseRelation(
        "mmm_channel_groups",
        "One row per channel group of the fitted marketing-mix model with the bootstrap intervals of the group.",
        ("channel_group",),
    ),
    "budget_plan": BaseRelation(
        "budget_plan",
        "One row per MMM channel of the optimal same-total budget plan, dated by the first day of the planned period; "
        "current_spend = run rate of the period before, planned_spend = the plan.",
        ("channel_group",),
    ),
    "funnel_stages": BaseRelation(
        "funnel_stages",
        "One row per CRM contact × funnel stage (known, engaged, mql, sql, opportunity, customer), dated by the "
        "contact's creation (the cohort); reached / reached_previous say whether the contact got to the stage "
        "and to the one before (a later stage implies the earlier ones), reached_own whether by the stage's own "
        "signal. stage_distinguishable is false, with a stage_note saying why, when in the whole data set the "
        "stage is reached only by implication, or every contact that reached the previous stage reached it too. "
        "channel_group = group of the contact's first touch.",
        ("channel_group", "stage"),
        key=("contact_id", "stage"),
    ),
    "inventory_snapshots": BaseRelation(
        "inventory_snapshots",
        "One row per inventory snapshot date × product × location, valued at cost.",
        ("product_id", "category", "location_id"),
    ),
}


@functools.lru_cache(maxsize=1)
def _finance_group_sql() -> str:
    """Channel group of a finance journal line's channel label (config/channels.yaml), read once per process."""
    return crm_label_group_sql(load_channel_config(), "channel")


def base_relations_sql(parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The SELECT of every base relation over the warehouse tables, keyed by base name.

    ``parameters`` is the dictionary's ``parameters`` block (``non_marketing_channel_groups``).
    A base's SQL may select from an earlier base by its bare name (see ``BaseRelation.depends_on``);
    :func:`kpi_sql` emits the needed bases as CTEs in dependency order. Tables are named through
    ``ref()``, so :func:`base_source_assets` knows what each base reads.
    """
    return {name: build() for name, build in _base_builders(parameters).items()}


def base_relation_sql(name: str, parameters: Mapping[str, Any] | None = None) -> str:
    """The SELECT of one base relation (see :func:`base_relations_sql`); names only the tables that base reads."""
    return _base_builders(parameters)[name]()


def base_table_sql(base: str, parameters: Mapping[str, Any] | None = None, base_tables: Iterable[str] = ()) -> str:
    """The SELECT of ``base`` that builds its warehouse table ``kpis.<base>``: its definition, the bases it selects
    from read from their tables when in ``base_tables`` (see :class:`KpiScope`), else from their definitions."""
    return f"WITH {_base_ctes(base, parameters, set(base_tables) - {base})}\nSELECT * FROM {base}"


def kpi_bases_sql(names: Iterable[str], dictionary: KpiDictionary | None = None, base_tables: Iterable[str] = ()) -> str:
    """The definitions (as CTEs) of every base relation the named KPIs (and the KPIs they reference) read, the bases in
    ``base_tables`` as reads of their tables ``kpis.<base>``: the text whose ``ref()`` calls name the tables a
    :class:`KpiScope` with those ``base_tables`` reads to compute the KPIs (for an asset's dependencies; not a statement
    to run: two bases may define the same CTE)."""
    dictionary = dictionary or load_kpi_dictionary()
    bases: dict[str, None] = {}

    def add(kpi: Kpi) -> None:
        if kpi.base != DERIVED:
            bases.setdefault(kpi.base, None)
        for name, _ in kpi.references:
            add(dictionary[name])

    for name in names:
        add(dictionary[name])
    return ",\n".join(_base_ctes(base, dictionary.parameters, set(base_tables)) for base in bases)


def base_source_assets(base: str, parameters: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The tables (as asset keys ``group/table``) that the SQL of ``base`` and of the bases it selects from reads,
    recorded from that SQL. A base KPI's ``source_assets`` must equal them (checked when the dictionary loads)."""
    builders = _base_builders(parameters)
    with recording() as recorder:
        for name in _bases_needed(base):
            builders[name]()
    return tuple(sorted(recorder.asset_paths()))


def _base_builders(parameters: Mapping[str, Any] | None = None) -> dict[str, Callable[[], str]]:
    params = dict(parameters or {})
    groups = params.get("non_marketing_channel_groups", DEFAULT_NON_MARKETING_GROUPS)
    non_mkt = ", ".join(literal(g) for g in groups)
    models = model_names()  # the registry at build time (a model registered later is included)
    credit_cols = [f"{m}_credit" for m in models]

    def credited(won_only: bool) -> str:
        """credited_pipeline's SELECT; ``won_only``: of the won opportunities only."""
        won = f"SEMI JOIN (SELECT opportunity_id FROM {ref(SOURCES, 'crm_opportunities')} WHERE is_won) w USING (opportunity_id)" if won_only else ""
        return f"""
            SELECT replace(model, '_credit', '') AS attribution_model, opportunity_id, event_date, sales_segment,
                   coalesce(channel_group, {literal(UNATTRIBUTED)}) AS channel_group, campaign_key,
                   credit AS credited_pipeline, credit / nullif(pipeline_amount, 0) AS credited_opportunities
            FROM (SELECT opportunity_id, opportunity_created_date AS event_date, sales_segment, channel_group,
                         campaign_key, pipeline_amount, {", ".join(credit_cols)} FROM {ref(ATTRIBUTION, "attribution_credits")} {won})
                 UNPIVOT (credit FOR model IN ({", ".join(credit_cols)}))
            WHERE credit <> 0
            UNION ALL
            SELECT m.attribution_model, o.opportunity_id, o.opportunity_created_date, o.sales_segment,
                   {literal(UNATTRIBUTED)}, NULL, o.pipeline_amount, 1.0
            FROM {ref(SOURCES, "crm_opportunities")} o
            ANTI JOIN (SELECT DISTINCT opportunity_id FROM {ref(ATTRIBUTION, "attribution_credits")}) c USING (opportunity_id)
            {won}
            CROSS JOIN (SELECT unnest([{", ".join(literal(m) for m in models)}]) AS attribution_model) m"""

    # One builder per base, so the tables each base reads can be recorded on their own (base_source_assets).
    return {
        "revenue_lines": lambda: f"""
            SELECT o.order_id, o.line_number, o.order_date AS event_date, o.transaction_type, o.customer_id,
                   o.product_id, coalesce(p.product_name, o.product_id) AS product_name,
                   coalesce(p.category, '(unknown)') AS category, coalesce(o.sales_channel, '(unknown)') AS sales_channel,
                   CASE WHEN o.transaction_type = 'return' THEN -1 ELSE 1 END * o.quantity AS net_quantity,
                   CASE WHEN o.transaction_type = 'sale' THEN o.amount ELSE 0 END AS gross_sales,
                   CASE WHEN o.transaction_type = 'return' THEN o.amount ELSE 0 END AS returns,
                   CASE WHEN o.transaction_type = 'return' THEN -1 ELSE 1 END * o.amount AS net_revenue,
                   CASE WHEN o.transaction_type = 'return' THEN -1 ELSE 1 END * o.quantity * p.unit_cost AS cogs
            FROM {ref(SOURCES, "erp_orders")} o LEFT JOIN {ref(SOURCES, "erp_products")} p ON p.product_id = o.product_id""",
        "customers": lambda: f"""
            SELECT c.customer_id, c.event_date, c.net_revenue, c.cogs, c.gross_margin, c.active_months,
                   datediff('day', c.event_date, c.second_sale_date) AS days_to_repeat,
                   datediff('day', c.event_date, (SELECT max(event_date) FROM revenue_lines)) AS days_observed,
                   coalesce(a.channel_group, {literal(UNATTRIBUTED)}) AS channel_group
            FROM (
                SELECT customer_id, min(event_date) FILTER (WHERE transaction_type = 'sale') AS event_date,
                       sum(net_revenue) AS net_revenue, coalesce(sum(cogs), 0) AS cogs,
                       sum(net_revenue) - coalesce(sum(cogs), 0) AS gross_margin,
                       datediff('month', min(event_date) FILTER (WHERE transaction_type = 'sale'), max(event_date)) + 1
                           AS active_months,
                       list_sort(list(DISTINCT CAST(event_date AS DATE)) FILTER (WHERE transaction_type = 'sale'))[2]
                           AS second_sale_date
                FROM revenue_lines GROUP BY customer_id
                HAVING min(event_date) FILTER (WHERE transaction_type = 'sale') IS NOT NULL
            ) c
            LEFT JOIN (
                SELECT f.customer_id, arg_max(t.channel_group, {touch_order_key('t')}) AS channel_group
                FROM (SELECT customer_id, min(event_date) AS first_sale FROM revenue_lines
                      WHERE transaction_type = 'sale' GROUP BY customer_id) f
                JOIN {ref(IDENTITY, "accounts_resolved")} r ON r.customer_id = f.customer_id
                JOIN {ref(TOUCHPOINTS, "touchpoints")} t ON t.account_id = r.account_id AND t.touchpoint_date <= f.first_sale
                GROUP BY f.customer_id
            ) a ON a.customer_id = c.customer_id""",
        # Cumulated over the months with orders (from the first sale, month 0), each row then repeated over the months
        # up to the next such month (or the latest order month): no window or join over every customer × month.
        "customer_months": lambda: """
            SELECT customer_id, event_date, channel_group, months_since_acquisition,
                   coalesce(cumulative_revenue, 0) AS cumulative_revenue,
                   coalesce(cumulative_gross_margin, 0) AS cumulative_gross_margin,
                   coalesce(months_since_acquisition = order_month AND has_sale, false) AS is_active
            FROM (
                SELECT *, unnest(range(order_month, next_order_month)) AS months_since_acquisition
                FROM (
                    SELECT m.customer_id, c.event_date, c.channel_group, m.order_month, m.has_sale,
                           sum(m.net_revenue) OVER w AS cumulative_revenue, sum(m.gross_margin) OVER w AS cumulative_gross_margin,
                           coalesce(lead(m.order_month) OVER w,
                                    datediff('month', c.event_date, (SELECT max(event_date) FROM revenue_lines)) + 1) AS next_order_month
                    FROM (
                        SELECT l.customer_id, datediff('month', c.event_date, l.event_date) AS order_month,
                               sum(l.net_revenue) AS net_revenue, sum(l.net_revenue) - coalesce(sum(l.cogs), 0) AS gross_margin,
                               bool_or(l.transaction_type = 'sale') AS has_sale
                        FROM revenue_lines l JOIN customers c USING (customer_id) GROUP BY ALL
                    ) m JOIN customers c USING (customer_id)
                    WHERE m.order_month >= 0
                    WINDOW w AS (PARTITION BY m.customer_id ORDER BY m.order_month)
                )
            )""",
        "spend_days": lambda: f"""
            SELECT date_day AS event_date, platform, channel_group, {campaign_key_sql("campaign_name")} AS campaign_key,
                   spend, clicks, conversions
            FROM {ref(SPEND, "ad_spend_daily")}""",
        "leads": lambda: f"""
            SELECT c.contact_id, coalesce(c.lead_date, c.mql_date, c.sql_date, c.customer_date) AS event_date,
                   c.mql_date, c.sql_date, c.customer_date, coalesce(lt.channel_group, {literal(UNATTRIBUTED)}) AS channel_group,
                   lt.campaign_key
            FROM {ref(SOURCES, "crm_contacts")} c
            LEFT JOIN (  -- group and campaign of the same (last) touch: arg_max would skip a NULL campaign
                SELECT contact_id, last_touch.channel_group AS channel_group, last_touch.campaign_key AS campaign_key
                FROM (
                    SELECT t.contact_id, arg_max({{'channel_group': t.channel_group, 'campaign_key': t.campaign_key}},
                                                 {touch_order_key('t')}) AS last_touch
                    FROM {ref(TOUCHPOINTS, "touchpoints")} t JOIN {ref(SOURCES, "crm_contacts")} k ON k.contact_id = t.contact_id
                    WHERE t.touchpoint_date < CAST(coalesce(k.lead_date, k.mql_date, k.sql_date, k.customer_date) AS DATE)
                                              + INTERVAL 1 DAY  -- CRM lead dates are days: the lead day's touches count
                    GROUP BY t.contact_id
                )
            ) lt ON lt.contact_id = c.contact_id
            WHERE coalesce(c.lead_date, c.mql_date, c.sql_date, c.customer_date) IS NOT NULL""",
        "paid_credited_wins": lambda: f"""
            SELECT *, channel_group IN (SELECT DISTINCT channel_group FROM {ref(SPEND, "ad_spend_daily")} WHERE spend > 0)
                          AS is_paid_media
            FROM credited_wins""",
        "finance_spend": lambda: f"""
            SELECT period_month AS event_date, {_finance_group_sql()} AS channel_group,
                   CAST(amount AS DOUBLE) AS spend
            FROM {ref(SOURCES, "finance_marketing_spend")}""",
        "mmm_channels": lambda: f"""
            SELECT CAST(NULL AS DATE) AS event_date, channel_group, spend, contribution, mroi FROM {ref(MMM, "mmm_model")}""",
        "mmm_channel_groups": lambda: f"""
            SELECT CAST(NULL AS DATE) AS event_date, channel_group, roi_low, roi_high, mroi_low, mroi_high, mroi_gap_low, mroi_gap_high
            FROM {ref(MMM, "mmm_channel_group_roi")}""",
        "budget_plan": lambda: f"""
            SELECT period_start AS event_date, channel_group, current_spend, scenario_spend AS planned_spend
            FROM {ref(MMM, "mmm_budget_plan")} WHERE scenario = 'optimal_same_total'""",
        "sessions": lambda: f"""
            SELECT session_id, session_start AS event_date,
                   coalesce(trim(form_email), '') <> '' AS has_form_fill, coalesce(conversions, 0) AS conversions
            FROM {ref(SOURCES, "web_sessions")}""",
        "opportunities": lambda: f"""
            SELECT o.opportunity_id, o.opportunity_created_date AS event_date, o.sales_segment,
                   coalesce(ft.channel_group, {literal(UNATTRIBUTED)}) AS channel_group,
                   o.pipeline_amount, coalesce(o.is_won, false) AS is_won, o.won_amount, o.closed_date,
                   coalesce(ft.channel_group, {literal(UNATTRIBUTED)}) NOT IN ({non_mkt}) AS is_marketing_sourced,
                   coalesce(inf.has_marketing_touch, false) AS is_marketing_influenced
            FROM {ref(SOURCES, "crm_opportunities")} o
            LEFT JOIN (
                SELECT opportunity_id, arg_max(channel_group, first_touch_credit) AS channel_group
                FROM {ref(ATTRIBUTION, "attribution_credits")} WHERE first_touch_credit > 0 GROUP BY opportunity_id
            ) ft ON ft.opportunity_id = o.opportunity_id
            LEFT JOIN (
                SELECT opportunity_id, bool_or(coalesce(channel_group, {literal(UNATTRIBUTED)}) NOT IN ({non_mkt}))
                    AS has_marketing_touch
                FROM {ref(ATTRIBUTION, "attribution_credits")} GROUP BY opportunity_id
            ) inf ON inf.opportunity_id = o.opportunity_id""",
        "credited_pipeline": lambda: credited(won_only=False),
        # credited_pipeline's rows of won opportunities: the same definition, its opportunities restricted before the
        # unpivot (a join after it probes every model × touch row: twice the time at large scale)
        "credited_wins": lambda: f"""
            SELECT p.attribution_model, p.opportunity_id, o.closed_date AS event_date, p.sales_segment, p.channel_group,
                   p.campaign_key, p.credited_opportunities AS credited_customers,
                   p.credited_opportunities * o.won_amount AS credited_revenue
            FROM ({credited(won_only=True)}
            ) p JOIN {ref(SOURCES, "crm_opportunities")} o USING (opportunity_id)
            WHERE o.is_won""",
        "funnel_stages": lambda: f"""
            WITH contact_stages AS (
                SELECT contact_id, event_date, channel_group, s.stage, s.stage_order, s.reached, s.reached_previous,
                       s.reached_own
                FROM (
                    SELECT *, unnest([
                        {{'stage': 'known', 'stage_order': 1, 'reached': true, 'reached_previous': true, 'reached_own': true}},
                        {{'stage': 'engaged', 'stage_order': 2, 'reached': r_engaged, 'reached_previous': true,
                          'reached_own': o_engaged}},
                        {{'stage': 'mql', 'stage_order': 3, 'reached': r_mql, 'reached_previous': r_engaged, 'reached_own': o_mql}},
                        {{'stage': 'sql', 'stage_order': 4, 'reached': r_sql, 'reached_previous': r_mql, 'reached_own': o_sql}},
                        {{'stage': 'opportunity', 'stage_order': 5, 'reached': r_opportunity, 'reached_previous': r_sql,
                          'reached_own': o_opportunity}},
                        {{'stage': 'customer', 'stage_order': 6, 'reached': r_customer, 'reached_previous': r_opportunity,
                          'reached_own': o_customer}}
                    ]) AS s
                    FROM (
                        SELECT *, o_customer AS r_customer,
                               o_customer OR o_opportunity AS r_opportunity,
                               o_customer OR o_opportunity OR o_sql AS r_sql,
                               o_customer OR o_opportunity OR o_sql OR o_mql AS r_mql,
                               o_customer OR o_opportunity OR o_sql OR o_mql OR o_engaged AS r_engaged
                        FROM (
                            SELECT c.contact_id, coalesce(c.created_at, c.lead_date, c.mql_date, c.sql_date, c.customer_date)
                                       AS event_date,
                                   coalesce(ft.channel_group, {literal(UNATTRIBUTED)}) AS channel_group,
                                   c.customer_date IS NOT NULL
                                       OR coalesce(o.last_won >= coalesce(c.created_at, c.lead_date), false) AS o_customer,
                                   coalesce(o.last_created >= coalesce(c.created_at, c.lead_date), false)
                                       OR lower(c.lifecycle_stage) IN ('opportunity', 'customer') AS o_opportunity,
                                   c.sql_date IS NOT NULL AS o_sql, c.mql_date IS NOT NULL AS o_mql,
                                   -- a lead date set when the contact is created is no sign of engagement
                                   coalesce(ft.has_engagement, false)
                                       OR coalesce(CAST(c.lead_date AS DATE) > CAST(c.created_at AS DATE), false) AS o_engaged
                            FROM {ref(SOURCES, "crm_contacts")} c
                            LEFT JOIN (
                                SELECT contact_id, arg_min(channel_group, (touchpoint_date, channel_group)) AS channel_group,
                                       bool_or(touchpoint_type <> 'sales') AS has_engagement  -- a tie goes to the first group by name
                                FROM {ref(TOUCHPOINTS, "touchpoints")} GROUP BY contact_id
                            ) ft ON ft.contact_id = c.contact_id
                            LEFT JOIN (
                                SELECT account_id, max(opportunity_created_date) AS last_created,
                                       max(closed_date) FILTER (WHERE is_won) AS last_won
                                FROM {ref(SOURCES, "crm_opportunities")} GROUP BY account_id
                            ) o ON o.account_id = c.account_id
                        )
                    )
                )
            ),
            stage_evidence AS (  -- a property of the whole data set, not of a cohort or channel
                SELECT stage, count(*) FILTER (WHERE reached) AS reached_total,
                       count(*) FILTER (WHERE reached_own) AS own_total,
                       count(*) FILTER (WHERE reached_previous) AS previous_total,
                       count(*) FILTER (WHERE reached_previous AND NOT reached) AS stopped_total
                FROM contact_stages GROUP BY stage
            )
            SELECT c.contact_id, c.event_date, c.channel_group, c.stage, c.stage_order, c.reached, c.reached_previous,
                   c.reached_own,
                   c.stage_order = 1 OR NOT ((e.reached_total > 0 AND e.own_total = 0)
                                             OR (e.previous_total > 0 AND e.stopped_total = 0)) AS stage_distinguishable,
                   CASE WHEN c.stage_order = 1 THEN NULL
                        WHEN e.reached_total > 0 AND e.own_total = 0
                            THEN 'no contact has a signal of its own for this stage: it is only implied by later stages'
                        WHEN e.previous_total > 0 AND e.stopped_total = 0
                            THEN format('all {{:,}} contacts that reached the previous stage (all cohorts and channels) also '
                                        || 'reached this one', e.previous_total)
                   END AS stage_note
            FROM contact_stages c JOIN stage_evidence e ON e.stage = c.stage""",
        "won_deals": lambda: """
            SELECT * REPLACE (closed_date AS event_date) FROM opportunities WHERE is_won""",
        "inventory_snapshots": lambda: f"""
            SELECT i.snapshot_date AS event_date, i.product_id, coalesce(p.category, '(unknown)') AS category,
                   i.location_id, i.quantity_on_hand,
                   coalesce(i.inventory_value, i.quantity_on_hand * p.unit_cost) AS inventory_value
            FROM {ref(SOURCES, "erp_inventory")} i LEFT JOIN {ref(SOURCES, "erp_products")} p ON p.product_id = i.product_id""",
    }


# ------------------------------------------------------------------------------------- dictionary


@dataclass(frozen=True)
class Kpi:
    """One governed KPI definition (a validated row of ``kpis.yaml``)."""

    name: str
    label: str
    description: str
    formula: str
    base: str
    grains: tuple[str, ...]
    source_assets: tuple[str, ...]
    owner: str
    refresh: str
    unit: str
    version: int
    changed: str
    breakdown: tuple[str, ...] = ()
    target: Mapping[str, Any] | None = None
    threshold: Mapping[str, Any] | None = None

    @property
    def time_grains(self) -> tuple[str, ...]:
        """Allowed time grains (``day``, ``week``, ``month``, ``total``)."""
        return tuple(g for g in self.grains if g in TIME_GRAINS)

    @property
    def dims(self) -> tuple[str, ...]:
        """Allowed dimensions."""
        return tuple(g for g in self.grains if g not in TIME_GRAINS)

    @property
    def references(self) -> list[tuple[str, int]]:
        """``(kpi name, lag)`` of every ``{kpi:...}`` placeholder in the formula, in order of appearance."""
        return [(m.group(1), int(m.group(2) or 0)) for m in _REF_RE.finditer(self.formula)]


@dataclass(frozen=True)
class KpiDictionary:
    """The validated metric dictionary."""

    version: int
    changelog: tuple[Mapping[str, Any], ...]
    kpis: dict[str, Kpi]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __getitem__(self, name: str) -> Kpi:
        try:
            return self.kpis[name]
        except KeyError:
            raise KeyError(f"unknown KPI {name!r}; known: {', '.join(sorted(self.kpis))}") from None

    def __iter__(self) -> Iterator[Kpi]:
        return iter(self.kpis.values())

    def __len__(self) -> int:
        return len(self.kpis)


def _fail(where: str, field_name: str, problem: str) -> None:
    raise KpiDictionaryError(f"{where}: field {field_name!r} {problem}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(where: str, field_name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(where, field_name, "must be a non-empty list of strings")
    if len(set(value)) != len(value):
        _fail(where, field_name, f"has duplicates: {value}")
    return tuple(value)


def _goal(where: str, field_name: str, value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"value", "direction"}:
        _fail(where, field_name, "must be a mapping with exactly 'value' and 'direction'")
    if not isinstance(value["value"], (int, float)) or isinstance(value["value"], bool):
        _fail(where, field_name, f"value must be a number, got {value['value']!r}")
    if value["direction"] not in DIRECTIONS:
        _fail(where, field_name, f"direction must be one of {list(DIRECTIONS)}, got {value['direction']!r}")
    return dict(value)


def _parse_kpi(raw: Any, index: int) -> Kpi:
    if not isinstance(raw, Mapping):
        raise KpiDictionaryError(f"kpis[{index}]: must be a mapping, got {type(raw).__name__}")
    name = raw.get("name")
    where = f"KPI {name!r}" if isinstance(name, str) and name else f"kpis[{index}]"
    for f in REQUIRED_FIELDS:
        if raw.get(f) in (None, "", []):
            _fail(where, f, "is missing")
    unknown = set(raw) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS)
    if unknown:
        _fail(where, min(unknown), f"is not a dictionary field (allowed: {REQUIRED_FIELDS + OPTIONAL_FIELDS})")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        _fail(where, "name", "must be a snake_case identifier")
    for f in ("label", "description", "formula", "owner", "changed"):
        if not isinstance(raw[f], str):
            _fail(where, f, "must be a string")
    if raw["base"] != DERIVED and raw["base"] not in BASE_RELATIONS:
        _fail(where, "base", f"is unknown: {raw['base']!r} (known: {sorted(BASE_RELATIONS)} or {DERIVED!r})")
    if not _is_int(raw["version"]) or raw["version"] < 1:
        _fail(where, "version", f"must be a positive integer, got {raw['version']!r}")
    if raw["unit"] not in UNITS:
        _fail(where, "unit", f"must be one of {list(UNITS)}, got {raw['unit']!r}")
    if raw["refresh"] not in REFRESHES:
        _fail(where, "refresh", f"must be one of {list(REFRESHES)}, got {raw['refresh']!r}")
    grains = _str_list(where, "grains", raw["grains"])
    if not any(g in TIME_GRAINS for g in grains):
        _fail(where, "grains", f"must include at least one time grain of {list(TIME_GRAINS)}")
    assets = _str_list(where, "source_assets", raw["source_assets"])
    for asset in assets:
        if not _ASSET_RE.match(asset):
            _fail(where, "source_assets", f"has {asset!r}, not an asset key like 'sources/erp_orders'")
    breakdown = _str_list(where, "breakdown", raw["breakdown"]) if raw.get("breakdown") is not None else ()
    for dim in breakdown:
        if dim not in grains or dim in TIME_GRAINS:
            _fail(where, "breakdown", f"dimension {dim!r} is not among the KPI's grains")
    has_refs = bool(_REF_RE.search(raw["formula"]))
    if raw["base"] == DERIVED and not has_refs:
        _fail(where, "formula", "of a derived KPI must reference other KPIs as {kpi:NAME}")
    if raw["base"] != DERIVED and has_refs:
        _fail(where, "formula", "references other KPIs; set base: derived")
    if raw["base"] != DERIVED and "{" in raw["formula"]:
        _fail(where, "formula", "has a '{' that is not a {kpi:NAME} placeholder")
    return Kpi(
        name=name,
        label=raw["label"],
        description=" ".join(raw["description"].split()),
        formula=raw["formula"].strip(),
        base=raw["base"],
        grains=grains,
        source_assets=assets,
        owner=raw["owner"],
        refresh=raw["refresh"],
        unit=raw["unit"],
        version=raw["version"],
        changed=raw["changed"],
        breakdown=breakdown,
        target=_goal(where, "target", raw.get("target")),
        threshold=_goal(where, "threshold", raw.get("threshold")),
    )


def _check_graph(kpis: Mapping[str, Kpi], parameters: Mapping[str, Any] | None = None) -> None:
    """References exist, form no cycle, and grains / dims / source assets are consistent with them.

    A base KPI's ``source_assets`` are exactly the tables its base relation's SQL reads (recorded from the SQL,
    see :func:`base_source_assets`); a derived KPI's are exactly the union of its referenced KPIs'.
    """
    for kpi in kpis.values():
        where = f"KPI {kpi.name!r}"
        if kpi.base != DERIVED:
            base = BASE_RELATIONS[kpi.base]
            bad = [d for d in kpi.dims if d not in base.dims]
            if bad:
                _fail(where, "grains", f"has {bad}, not dimensions of base {kpi.base!r} (allowed: {list(base.dims)})")
            read = base_source_assets(kpi.base, parameters)
            missing = [a for a in read if a not in kpi.source_assets]
            if missing:
                _fail(where, "source_assets", f"lacks {missing}, read by base {kpi.base!r}")
            extra = [a for a in kpi.source_assets if a not in read]
            if extra:
                _fail(where, "source_assets", f"has {extra}, not read by the SQL of base {kpi.base!r} (it reads {list(read)})")
            continue
        for ref, lag in kpi.references:
            if ref not in kpis:
                _fail(where, "formula", f"references unknown KPI {ref!r}")
            if lag and "total" in kpi.grains:
                _fail(where, "grains", "includes 'total', which has no previous period for a lag")
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise KpiDictionaryError(
                f"KPI {name!r}: field 'formula' has a reference cycle: {' -> '.join(trail + [name])}"
            )
        state[name] = 1
        for ref, _ in kpis[name].references:
            visit(ref, trail + [name])
        state[name] = 2

    for name in kpis:
        visit(name, [])
    for kpi in kpis.values():
        if kpi.base != DERIVED:
            continue
        where = f"KPI {kpi.name!r}"
        parents = [kpis[ref] for ref in dict.fromkeys(r for r, _ in kpi.references)]
        for dim in kpi.dims:
            if not any(dim in p.dims for p in parents):
                _fail(where, "grains", f"has dimension {dim!r}, which no referenced KPI has")
        for ref in {r for r, _ in kpi.references}:
            parent = kpis[ref]
            bad = [g for g in kpi.time_grains if g not in parent.time_grains]
            if bad:
                _fail(where, "grains", f"has {bad}, not allowed for referenced KPI {ref!r}")
            missing = [a for a in parent.source_assets if a not in kpi.source_assets]
            if missing:
                _fail(where, "source_assets", f"lacks {missing}, read by referenced KPI {ref!r}")
            unsplit = [d for d in parent.breakdown if d not in kpi.breakdown]
            if unsplit:
                _fail(where, "breakdown", f"lacks {unsplit}, the breakdown of referenced KPI {ref!r}")
        read = {a for ref in {r for r, _ in kpi.references} for a in kpis[ref].source_assets}
        extra = [a for a in kpi.source_assets if a not in read]
        if extra:
            _fail(where, "source_assets", f"has {extra}, read by none of its referenced KPIs")


def parse_kpi_dictionary(raw: Any, path: str | None = None) -> KpiDictionary:
    """Validate a parsed ``kpis.yaml`` document and return the dictionary.

    Raises :class:`KpiDictionaryError` naming the KPI and field at fault.
    """
    if not isinstance(raw, Mapping):
        raise KpiDictionaryError("dictionary: must be a mapping with 'version', 'changelog' and 'kpis'")
    if not _is_int(raw.get("version")) or raw["version"] < 1:
        _fail("dictionary", "version", f"must be a positive integer, got {raw.get('version')!r}")
    changelog = raw.get("changelog")
    if not isinstance(changelog, list) or not changelog:
        _fail("dictionary", "changelog", "must be a non-empty list")
    for i, entry in enumerate(changelog):
        if (
            not isinstance(entry, Mapping)
            or not {"version", "date", "change"} <= set(entry)
            or not _is_int(entry["version"])
        ):
            _fail("dictionary", "changelog", f"entry {i} needs an integer 'version', a 'date' and a 'change'")
    if raw["version"] not in {e["version"] for e in changelog}:
        _fail("dictionary", "changelog", f"has no entry for version {raw['version']}")
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        _fail("dictionary", "parameters", "must be a mapping")
    groups = parameters.get("non_marketing_channel_groups", DEFAULT_NON_MARKETING_GROUPS)
    if isinstance(groups, list):
        _str_list("dictionary", "parameters.non_marketing_channel_groups", groups)
    elif not isinstance(groups, tuple):
        _fail("dictionary", "parameters.non_marketing_channel_groups", "must be a list of channel groups")
    entries = raw.get("kpis")
    if not isinstance(entries, list) or not entries:
        _fail("dictionary", "kpis", "must be a non-empty list")
    kpis: dict[str, Kpi] = {}
    for i, entry in enumerate(entries):
        kpi = _parse_kpi(entry, i)
        if kpi.name in kpis:
            _fail(f"KPI {kpi.name!r}", "name", f"is duplicated (entries {list(kpis).index(kpi.name)} and {i})")
        kpis[kpi.name] = kpi
    _check_graph(kpis, parameters)
    return KpiDictionary(raw["version"], tuple(changelog), kpis, dict(parameters), path)


def load_kpi_dictionary(path: Path | str | None = None) -> KpiDictionary:
    """Load and validate the metric dictionary (default ``config/kpis.yaml``; any copy via ``path``)."""
    path = Path(path) if path is not None else DEFAULT_KPI_FILE
    with open(path, encoding="utf-8") as fh:
        raw = yaml_files.safe_load(fh)
    return parse_kpi_dictionary(raw, str(path))


# -------------------------------------------------------------------------------------------- SQL


def _period_expr(grain: str, column: str = "event_date") -> str:
    if grain == "total":
        return "CAST(NULL AS DATE)"
    if grain in TRAILING_MONTHS:
        return "window_month"
    return f"CAST(date_trunc('{grain}', {column}) AS DATE)"


def _windowed(base: str, grain: str) -> str:
    """The base as the ``FROM`` of a KPI query: at a trailing-months grain, every row once per window it falls in
    (``window_month``: its month and the next N - 1), windows ending after the base's last month left out."""
    if grain not in TRAILING_MONTHS:
        return base
    month = "CAST(date_trunc('month', event_date) AS DATE)"
    ends = ", ".join(f"CAST({month} + INTERVAL {k} MONTH AS DATE)" for k in range(TRAILING_MONTHS[grain]))
    return f"""(SELECT *, unnest([{ends}]) AS window_month FROM {base}) AS {base}
        WHERE window_month <= (SELECT max({month}) FROM {base})"""


def _effective_dims(kpi: Kpi, grain: str, dims: Sequence[str]) -> list[str]:
    if grain not in TIME_GRAINS:
        raise ValueError(f"unknown grain {grain!r}; use one of {list(TIME_GRAINS)}")
    if grain not in kpi.grains:
        raise ValueError(f"KPI {kpi.name!r} is not defined at grain {grain!r} (allowed: {list(kpi.time_grains)})")
    out = list(dict.fromkeys([*dims, *kpi.breakdown]))
    bad = [d for d in out if d not in kpi.dims]
    if bad:
        raise ValueError(f"KPI {kpi.name!r} has no dimension {bad} (allowed: {list(kpi.dims)})")
    return out


def _bases_needed(base: str, tables: Iterable[str] = ()) -> list[str]:
    """``base`` and the bases it selects from, each after those it selects from; a base in ``tables`` (read from its
    table) is listed without the bases it is built from."""
    order: list[str] = []
    tables = set(tables)

    def add(name: str) -> None:
        for dep in () if name in tables else BASE_RELATIONS[name].depends_on:
            add(dep)
        if name not in order:
            order.append(name)

    add(base)
    return order


def _between_sql(between: tuple[Any, Any] | None) -> list[str]:
    if between is None:
        return []
    start, end = (pd.Timestamp(v).date().isoformat() for v in between)
    return [f"event_date >= DATE '{start}'", f"event_date < DATE '{end}' + INTERVAL 1 DAY"]


def kpi_sql(
    kpi: str | Kpi,
    grain: str = "month",
    dims: Sequence[str] = (),
    dictionary: KpiDictionary | None = None,
    between: tuple[Any, Any] | None = None,
) -> str:
    """A SELECT computing one KPI from its dictionary formula at ``grain`` and by ``dims``.

    Columns: ``period`` (DATE, NULL for ``total``), the dimensions (requested plus the KPI's
    ``breakdown``), ``value`` (DOUBLE). ``between=(first_day, last_day)`` keeps base rows whose
    ``event_date`` falls in those days (both included) — e.g. a trailing 90-day ``total``. A derived
    KPI computes a referenced KPI by the requested dimensions it has; a referenced KPI without one of
    them (spend has no attribution model) is the same value for every member of that dimension.
    Raises ``ValueError`` for a grain or dimension the KPI does not allow.
    """
    dictionary = dictionary or load_kpi_dictionary()
    kpi = dictionary[kpi] if isinstance(kpi, str) else kpi
    dim_list = _effective_dims(kpi, grain, dims)
    if kpi.base == DERIVED:
        return _derived_sql(kpi, grain, dim_list, dictionary, between)
    return _base_sql([kpi], grain, dim_list, dictionary, between, value_names=["value"])


def _base_ctes(base: str, parameters: Mapping[str, Any] | None, tables: Iterable[str] = ()) -> str:
    """The CTEs defining ``base`` and the bases it selects from, from their one definition (:func:`_base_builders`);
    a base in ``tables`` is read from its warehouse table ``kpis.<base>`` (see :class:`KpiScope`)."""
    builders = _base_builders(parameters)  # only the bases needed: no ref() to a table the KPI does not read
    return ",\n".join(f"{name} AS ({_base_table_select(name) if name in tables else builders[name]()}\n)"
                       for name in _bases_needed(base, tables))


def _base_table_select(base: str) -> str:
    return f"SELECT * FROM {ref(KPIS, base)}"


def _base_sql(
    kpis: Sequence[Kpi],
    grain: str,
    dim_list: Sequence[str],
    dictionary: KpiDictionary,
    between: tuple[Any, Any] | None,
    value_names: Sequence[str] | None = None,
    ctes: str | None = None,
) -> str:
    """One SELECT computing several KPIs of the same base in a single pass (one value column each).

    ``ctes`` defines the base under its name (default: from its definition, :func:`_base_ctes`)."""
    base = kpis[0].base
    ctes = ctes if ctes is not None else _base_ctes(base, dictionary.parameters)
    cols = ", ".join([f"{_period_expr(grain)} AS period", *dim_list])
    values = ", ".join(
        f'CAST(({k.formula}) AS DOUBLE) AS "{name}"' for k, name in zip(kpis, value_names or [k.name for k in kpis])
    )
    conditions = ([] if grain == "total" else ["event_date IS NOT NULL"]) + _between_sql(between)
    source = _windowed(base, grain)
    where = f"{'AND' if grain in TRAILING_MONTHS else 'WHERE'} {' AND '.join(conditions)}" if conditions else ""
    group = ", ".join(str(i) for i in range(1, len(dim_list) + 2))
    return f"WITH {ctes}\nSELECT {cols}, {values}\nFROM {source} {where}\nGROUP BY {group}"


def _reference_dims(kpi: Kpi, dims: Sequence[str], dictionary: KpiDictionary) -> dict[str, list[str]]:
    """Per KPI a derived KPI references: the dimensions of ``dims`` it is computed by (those it has)."""
    return {n: [d for d in dims if d in dictionary[n].dims] for n in dict.fromkeys(r for r, _ in kpi.references)}


def _derived_sql(
    kpi: Kpi,
    grain: str,
    dims: list[str],
    dictionary: KpiDictionary,
    between: tuple[Any, Any] | None = None,
    reference_sql: Callable[[Kpi, list[str]], str] | None = None,
) -> str:
    """The SELECT of a derived KPI joining its references' values; ``reference_sql(kpi, dims)`` gives the SELECT of a
    reference's ``period``, dims and ``value`` (default: computed from its definition, :func:`kpi_sql`)."""
    refs = kpi.references
    names = list(dict.fromkeys(r for r, _ in refs))
    alias = {name: f"r{i}" for i, name in enumerate(names)}
    ref_dims = _reference_dims(kpi, dims, dictionary)
    if reference_sql is None:
        reference_sql = lambda ref, ref_dims: kpi_sql(ref, grain, ref_dims, dictionary, between)  # noqa: E731
    ctes = [f"{alias[n]} AS ({reference_sql(dictionary[n], ref_dims[n])}\n)" for n in names]
    key_cols = ["period", *dims]
    anchors = [n for n in names if any(r == n and lag == 0 for r, lag in refs)] or names

    def anchor_keys(name: str) -> str:
        # A dimension the anchor lacks takes every value it has in the references that have it.
        missing = [d for d in dims if d not in ref_dims[name]]
        sources = {d: next(alias[n] for n in names if d in ref_dims[n]) for d in missing}
        cols = ", ".join(f"{'a' if c == 'period' or c in ref_dims[name] else 'x_' + c}.{c}" for c in key_cols)
        cross = "".join(f" CROSS JOIN (SELECT DISTINCT {d} FROM {src}) x_{d}" for d, src in sources.items())
        return f"SELECT {cols} FROM {alias[name]} a{cross}"

    keys = " UNION ".join(anchor_keys(n) for n in anchors)
    ctes.append(f"keys AS ({keys})")
    joins: list[str] = []
    slots: dict[tuple[str, int], str] = {}
    for name, lag in dict.fromkeys(refs):
        slot = f"{alias[name]}_lag{lag}" if lag else alias[name]
        slots[(name, lag)] = slot
        if lag:
            if grain not in _LAG_UNIT:
                raise ValueError(
                    f"KPI {kpi.name!r}: a lagged reference needs a day, week or month grain, not {grain!r}"
                )
            period_on = f"{slot}.period = CAST(k.period - INTERVAL {lag} {_LAG_UNIT[grain]} AS DATE)"
        else:
            period_on = f"{slot}.period IS NOT DISTINCT FROM k.period"
        on = " AND ".join([period_on, *(f"{slot}.{d} IS NOT DISTINCT FROM k.{d}" for d in ref_dims[name])])
        joins.append(f"LEFT JOIN {alias[name]} AS {slot} ON {on}")
    expr = _REF_RE.sub(lambda m: f"{slots[(m.group(1), int(m.group(2) or 0))]}.value", kpi.formula)
    cols = ", ".join(f"k.{c}" for c in key_cols)
    return (
        "WITH " + ",\n".join(ctes) + "\n"
        f"SELECT {cols}, CAST(({expr}) AS DOUBLE) AS value\nFROM keys k\n" + "\n".join(joins)
    )


# ---------------------------------------------------------------------------------------- compute


def kpi_tables(kpi: str | Kpi, dictionary: KpiDictionary | None = None) -> list[str]:
    """Warehouse tables (``schema.table``) a KPI reads: its source asset keys with ``/`` as ``.``."""
    dictionary = dictionary or load_kpi_dictionary()
    kpi = dictionary[kpi] if isinstance(kpi, str) else kpi
    return [asset.replace("/", ".") for asset in kpi.source_assets]


def _present_tables(con: Any) -> set[str]:
    return {
        f"{schema}.{table}"
        for schema, table in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    }


def missing_tables(
    con: Any, kpi: str | Kpi, dictionary: KpiDictionary | None = None, present: set[str] | None = None
) -> list[str]:
    """The tables of :func:`kpi_tables` that do not exist on ``con`` (an optional source never landed).

    ``present`` (the existing ``schema.table`` names) saves the catalogue query when checking many KPIs.
    """
    present = _present_tables(con) if present is None else present
    return [t for t in kpi_tables(kpi, dictionary) if t not in present]


def _between_key(between: tuple[Any, Any] | None) -> tuple[str, str] | None:
    return None if between is None else tuple(pd.Timestamp(v).date().isoformat() for v in between)


class KpiScope:
    """Work shared by the KPI computations on one connection: each KPI at a grain, dimensions and date range is
    computed once (a derived KPI reads the computed values of the KPIs it references), and with
    ``materialize_bases`` each base relation is built once, as a TEMP table from its one definition, for every
    query that reads it. Results and bases live in TEMP tables dropped when the scope closes.

    ``base_tables`` names bases already built as warehouse tables ``kpis.<base>`` (by the pipeline, once per run,
    from the same definition: :func:`base_table_sql`): those are read from their tables, never rebuilt. Without it
    (a notebook, a test, a library call) every base comes from its definition.

    Use as a context manager around computations that read the same data (one asset, one check)::

        with KpiScope(con, dictionary, materialize_bases=True) as scope:
            a = compute_kpis(con, names, "month", ["channel_group"], dictionary=dictionary, scope=scope)
            b = compute_kpis(con, names, "month", [], dictionary=dictionary, scope=scope)

    The warehouse tables must not change while the scope is open (its tables would be stale).
    """

    _count = 0

    def __init__(self, con: Any, dictionary: KpiDictionary | None = None, materialize_bases: bool = False,
                 base_tables: Iterable[str] = ()):
        KpiScope._count += 1
        self.con = con
        self.dictionary = dictionary or load_kpi_dictionary()
        self.materialize_bases = materialize_bases
        self.base_tables = frozenset(base_tables)
        unknown = sorted(self.base_tables - set(BASE_RELATIONS))
        if unknown:
            raise ValueError(f"base_tables {unknown} are not base relations (known: {sorted(BASE_RELATIONS)})")
        self._prefix = f"_kpi_scope{KpiScope._count}_"
        self._tables: list[str] = []
        self._bases: dict[tuple[str, tuple[str, str] | None], str] = {}
        # (kpi, grain, dims, between) -> (table, column): where the KPI's values are
        self._results: dict[tuple[str, str, tuple[str, ...], tuple[str, str] | None], tuple[str, str]] = {}

    def __enter__(self) -> KpiScope:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Drop the scope's TEMP tables."""
        while self._tables:
            self.con.execute(f'DROP TABLE IF EXISTS temp."{self._tables.pop()}"')
        self._bases.clear()
        self._results.clear()

    def _create(self, select_sql: str) -> str:
        table = f"{self._prefix}{len(self._tables)}"
        self._tables.append(table)
        self.con.execute(f'CREATE TEMP TABLE "{table}" AS {select_sql}')
        return f'temp."{table}"'

    def _base_table(self, base: str, between: tuple[Any, Any] | None) -> str:
        """The TEMP table of ``base`` (its rows in ``between`` when given), built on first use. The bases it selects
        from are read from their tables when built (a whole base only builds whole bases), else from their definitions."""
        key = _between_key(between)
        for k in ((base, None), (base, key)):
            if k in self._bases:
                return self._bases[k]
        if base in self.base_tables:  # the whole base, read in place (a KPI query applies ``between`` itself)
            self._bases[(base, None)] = ref(KPIS, base)
            return self._bases[(base, None)]
        builders = _base_builders(self.dictionary.parameters)
        deps = []
        if key is not None and BASE_RELATIONS[base].rows_of_dependency:
            (dep,) = BASE_RELATIONS[base].depends_on
            deps.append(f"{dep} AS (SELECT * FROM {self._base_table(dep, between)})")
        for dep in [] if deps else _bases_needed(base, self.base_tables)[:-1]:
            if key is None or dep in self.base_tables:
                deps.append(f"{dep} AS (SELECT * FROM {self._base_table(dep, None)})")
            elif (dep, None) in self._bases:
                deps.append(f"{dep} AS (SELECT * FROM {self._bases[(dep, None)]})")
            else:
                deps.append(f"{dep} AS ({builders[dep]()}\n)")
        where = " AND ".join(_between_sql(between))
        select = f"SELECT * FROM ({builders[base]()}\n)" + (f" WHERE {where}" if where else "")
        self._bases[(base, key)] = self._create((f"WITH {', '.join(deps)}\n" if deps else "") + select)
        return self._bases[(base, key)]

    def base_sql(self, base: str) -> str:
        """A SELECT of the rows of ``base``: from its table when in ``base_tables``, from its TEMP table with
        ``materialize_bases``, else its definition."""
        if self.materialize_bases or base in self.base_tables:
            return f"SELECT * FROM {self._base_table(base, None)}"
        return base_relation_sql(base, self.dictionary.parameters) if not BASE_RELATIONS[base].depends_on else (
            f"WITH {_base_ctes(base, self.dictionary.parameters, self.base_tables)}\nSELECT * FROM {base}")

    def _ctes(self, base: str, grain: str, between: tuple[Any, Any] | None) -> str | None:
        # a trailing window's last month is that of the whole base: not from a table of the rows in ``between``
        if base in self.base_tables:
            return f"{base} AS (SELECT * FROM {self._base_table(base, None)})"
        if not self.materialize_bases or (between is not None and grain in TRAILING_MONTHS and (base, None) not in self._bases):
            return _base_ctes(base, self.dictionary.parameters, self.base_tables) if self.base_tables else None
        return f"{base} AS (SELECT * FROM {self._base_table(base, between)})"

    def _compute_batch(self, batch: Sequence[Kpi], grain: str, dims: Sequence[str], between: tuple[Any, Any] | None) -> None:
        table = self._create(_base_sql(batch, grain, dims, self.dictionary, between, ctes=self._ctes(batch[0].base, grain, between)))
        for kpi in batch:
            self._results[(kpi.name, grain, tuple(dims), _between_key(between))] = (table, kpi.name)

    def result(self, kpi: Kpi, grain: str, dims: Sequence[str], between: tuple[Any, Any] | None = None) -> tuple[str, str]:
        """``(table, column)`` holding ``kpi`` by ``period`` and ``dims`` (its effective dimensions), computed on first use."""
        key = (kpi.name, grain, tuple(dims), _between_key(between))
        if key not in self._results:
            if kpi.base == DERIVED:
                sql = _derived_sql(kpi, grain, list(dims), self.dictionary, between, lambda ref, ref_dims: self.reference_sql(ref, grain, ref_dims, between))
                self._results[key] = (self._create(sql), "value")
            else:
                self._compute_batch([kpi], grain, dims, between)
        return self._results[key]

    def reference_sql(self, kpi: Kpi, grain: str, dims: Sequence[str], between: tuple[Any, Any] | None = None) -> str:
        """SELECT ``period``, dims, ``value`` of ``kpi`` (computed once, see :meth:`result`)."""
        dims = _effective_dims(kpi, grain, dims)
        table, column = self.result(kpi, grain, dims, between)
        return f'SELECT {", ".join(["period", *dims])}, "{column}" AS value FROM {table}'

    def compute(self, batches: Mapping[tuple[str, tuple[str, ...]], Sequence[Kpi]], grain: str, between: tuple[Any, Any] | None) -> None:
        """Compute the base KPIs not yet computed, those of one base and dimensions in one pass."""
        for (_, kdims), batch in batches.items():
            todo = [k for k in batch if (k.name, grain, kdims, _between_key(between)) not in self._results]
            if todo:
                self._compute_batch(todo, grain, kdims, between)


def _plan(kpi: Kpi, grain: str, dims: Sequence[str], dictionary: KpiDictionary, batches: dict[tuple[str, tuple[str, ...]], list[Kpi]]) -> None:
    """Add ``kpi`` (a derived one: the base KPIs it references, at their dimensions) to the batches of one base and
    dimension set: KPIs over the same base and dimensions share one scan of the base."""
    if kpi.base != DERIVED:
        batch = batches.setdefault((kpi.base, tuple(dims)), [])
        if kpi not in batch:
            batch.append(kpi)
        return
    for name, ref_dims in _reference_dims(kpi, dims, dictionary).items():
        _plan(dictionary[name], grain, _effective_dims(dictionary[name], grain, ref_dims), dictionary, batches)


def compute_kpis(
    con: Any,
    names: Iterable[str] | None = None,
    grain: str = "month",
    dims: Sequence[str] = (),
    dictionary: KpiDictionary | None = None,
    skip_missing: bool = False,
    between: tuple[Any, Any] | None = None,
    scope: KpiScope | None = None,
) -> pd.DataFrame:
    """Compute KPIs on a DuckDB connection in long form: ``period``, dimensions, ``kpi``, ``value``, ``unit``.

    ``names=None`` computes every KPI defined at ``grain`` with all of ``dims``; named KPIs that do not
    allow the grain or a dimension raise ``ValueError``. The dimension columns are the requested ones
    followed by any KPI ``breakdown`` dimensions (NULL for KPIs without them). Rows are sorted by KPI,
    period and dimensions. With ``skip_missing``, KPIs whose source tables do not exist (see
    :func:`missing_tables`) are left out instead of failing. ``between`` restricts the base rows to a
    date range (see :func:`kpi_sql`). KPIs of one base and dimensions share one scan of the base, and a
    derived KPI reads the values computed for the KPIs it references; ``scope`` (a :class:`KpiScope`) shares
    that work with other calls on the same connection.
    """
    dictionary = dictionary or (scope.dictionary if scope is not None else load_kpi_dictionary())
    if names is None:
        selected = [k for k in dictionary if grain in k.grains and all(d in k.dims for d in dims)]
    else:
        selected = [dictionary[n] for n in names]
    all_dims = list(dims)
    wanted: list[tuple[Kpi, list[str]]] = []
    batches: dict[tuple[str, tuple[str, ...]], list[Kpi]] = {}
    present = _present_tables(con) if skip_missing else set()
    for kpi in selected:
        kdims = _effective_dims(kpi, grain, dims)
        if skip_missing and missing_tables(con, kpi, dictionary, present):
            continue
        all_dims += [d for d in kdims if d not in all_dims]
        wanted.append((kpi, kdims))
        _plan(kpi, grain, kdims, dictionary, batches)
    columns = ["period", *all_dims, "kpi", "value", "unit"]
    if not wanted:
        return pd.DataFrame(columns=columns)
    own = scope is None
    scope = scope or KpiScope(con, dictionary)
    try:
        scope.compute(batches, grain, between)
        frames = []
        for kpi, kdims in wanted:
            frame = con.execute(scope.reference_sql(kpi, grain, kdims, between)).df()
            frames.append(frame.assign(kpi=kpi.name, unit=kpi.unit))
    finally:
        if own:
            scope.close()
    out = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True)
    out["period"] = pd.to_datetime(out["period"])
    out["value"] = out["value"].astype("float64")
    return out.sort_values(["kpi", "period", *all_dims], na_position="first", kind="stable").reset_index(drop=True)


def compute_wide(
    con: Any,
    names: Sequence[str],
    grain: str,
    dims: Sequence[str],
    dictionary: KpiDictionary | None = None,
    between: tuple[Any, Any] | None = None,
    skip_missing: bool = False,
    scope: KpiScope | None = None,
) -> pd.DataFrame:
    """KPIs as columns, one row per ``period`` × ``dims``: a KPI without one of ``dims`` (spend has no attribution
    model) is computed by the dimensions it has and repeated over the others' members. A KPI left out by
    ``skip_missing`` (its source table is absent) is an empty column. ``scope``: see :func:`compute_kpis`."""
    dictionary = dictionary or (scope.dictionary if scope is not None else load_kpi_dictionary())
    by_dims: dict[tuple[str, ...], list[str]] = {}
    for name in names:
        by_dims.setdefault(tuple(d for d in dims if d in dictionary[name].dims), []).append(name)
    keys = ["period", *dims]
    out: pd.DataFrame | None = None
    with contextlib.nullcontext(scope) if scope is not None else KpiScope(con, dictionary) as shared:
        for kdims, batch in sorted(by_dims.items(), key=lambda kv: -len(kv[0])):
            long = compute_kpis(con, batch, grain, kdims, dictionary=dictionary, between=between, skip_missing=skip_missing, scope=shared)
            if long.empty:
                continue
            wide = long.set_index(["period", *kdims, "kpi"])["value"].unstack("kpi").reset_index().rename_axis(columns=None)
            wide["period"] = wide["period"].astype("datetime64[ns]")
            missing = [d for d in dims if d not in kdims]
            if missing:  # repeat over the members the other KPIs have (or NULL when none has them)
                members = out[missing].drop_duplicates() if out is not None else pd.DataFrame({d: [None] for d in missing})
                wide = wide.merge(members, how="cross")
            out = wide if out is None else out.merge(wide, on=keys, how="outer")
    frame = out if out is not None else pd.DataFrame(columns=keys)
    for name in names:
        if name not in frame:
            frame[name] = float("nan")
    return frame[[*keys, *names]].sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


def dictionary_frame(dictionary: KpiDictionary | None = None) -> pd.DataFrame:
    """One row per KPI with every governance field (lists joined by ``", "``), for the ``kpi_dictionary`` asset."""
    dictionary = dictionary or load_kpi_dictionary()
    rows = []
    for k in dictionary:
        target, threshold = k.target or {}, k.threshold or {}
        rows.append(
            {
                "name": k.name,
                "label": k.label,
                "description": k.description,
                "formula": k.formula,
                "base": k.base,
                "time_grains": ", ".join(k.time_grains),
                "dimensions": ", ".join(k.dims),
                "breakdown": ", ".join(k.breakdown),
                "source_assets": ", ".join(k.source_assets),
                "owner": k.owner,
                "refresh": k.refresh,
                "unit": k.unit,
                "target_value": target.get("value"),
                "target_direction": target.get("direction"),
                "threshold_value": threshold.get("value"),
                "threshold_direction": threshold.get("direction"),
                "version": k.version,
                "changed": k.changed,
                "dictionary_version": dictionary.version,
            }
        )
    frame = pd.DataFrame(rows)
    for col in ("target_value", "threshold_value"):
        frame[col] = frame[col].astype("float64")
    return frame
