"""Extract checks: the published column list holds, no PII pattern in any file, KPIs reconcile with their sources."""

import functools
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.constants import ALL_CHANNELS, ATTRIBUTION, EXTRACTS, KPIS, MMM, SOURCES, SPEND
from marketing_assets.extracts import (
    ALL_LEVEL,
    COLUMN_GRAINS,
    COLUMN_KPIS,
    EXTRACT_COLUMNS,
    FUNNEL_STAGES,
    NO_CAMPAIGN,
    PSEUDONYM_COLUMNS,
    ROI_MMM_KPIS,
    ROI_MODEL_KPIS,
    ROI_PAID_KPIS,
    ROI_PLAN_KPIS,
    ROI_SPEND_KPIS,
    TABLE_COPIES,
    extract_audits,
    extract_formats,
    published_extract_files,
)
from marketing_assets.kpi_bases import kpi_scope
from marketing_assets.lib import bi_datasets
from marketing_assets.lib.agreement import kpi_mismatches
from marketing_assets.lib.bi_datasets import per_model_columns, per_model_sums_sql
from marketing_assets.lib.forecast import CLOSED_WITHOUT_DATE_SQL
from marketing_assets.lib.kpis import UNATTRIBUTED, compute_kpis, load_kpi_dictionary
from marketing_assets.lib.publish import (
    AuditResult,
    audit_report_html,
)
from marketing_assets.lib.quality import column_names
from marketing_assets.lib.refs import ref
from marketing_assets.lib.reports.pages import NOT_COUNTED, REPORT_FILES
from marketing_assets.lib.sql import ident, literal
from marketing_assets.lib.tally import STATUSES
from marketing_assets.resources import Warehouse


def _check_result(audit: AuditResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=audit.passed, description=audit.description, metadata=audit.metadata)


def _build_file_checks(name: str) -> list[dg.AssetChecksDefinition]:
    """The published files' checks; the asset runs the same audits on its staged files before publishing them,
    so these confirm what was published (and catch a file changed after publishing)."""
    key = dg.AssetKey([EXTRACTS, name])

    columns_audit, pii_audit = extract_audits(name)
    files = " and ".join(f.capitalize() if f == "parquet" else f.upper() for f in extract_formats(name))

    @dg.asset_check(asset=key, name="published_columns", blocking=True,
                    description=f"The published {files} files hold exactly the published columns, in order, with the published types.")
    def published_columns(warehouse: Warehouse) -> dg.AssetCheckResult:
        return _check_result(columns_audit(published_extract_files(warehouse.extracts_dir, name)))

    @dg.asset_check(asset=key, name="no_pii_in_files", blocking=True,
                    description=f"No email address or phone number pattern in any text column of the published {files} files"
                    + ("; every pseudonym column holds only keyed pseudonyms." if name in PSEUDONYM_COLUMNS else "."))
    def no_pii_in_files(warehouse: Warehouse) -> dg.AssetCheckResult:
        return _check_result(pii_audit(published_extract_files(warehouse.extracts_dir, name)))

    return [published_columns, no_pii_in_files]


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "executive_kpis"]), name="revenue_reconciles_with_erp", blocking=True)
def revenue_reconciles_with_erp(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Monthly total revenue summed over all months = ERP sales − returns (to the cent)."""
    with warehouse.get_connection() as con:
        extract, erp = con.execute(
            f"""SELECT
                (SELECT coalesce(sum(value), 0) FROM {ref(EXTRACTS, 'executive_kpis')}
                  WHERE grain = 'month' AND kpi = 'total_revenue' AND dimension IS NULL),
                (SELECT coalesce(sum(CASE WHEN transaction_type = 'sale' THEN amount ELSE -amount END), 0)::DOUBLE
                  FROM {ref(SOURCES, 'erp_orders')})"""
        ).fetchone()
    gap = extract - erp
    return dg.AssetCheckResult(
        passed=abs(gap) <= 0.01,
        description=f"extract {extract:,.2f} vs ERP net {erp:,.2f} (gap {gap:,.2f})",
        metadata={"extract_revenue": extract, "erp_net_revenue": erp, "gap": gap},
    )


extract_checks = [c for name in EXTRACT_COLUMNS for c in _build_file_checks(name)] + [revenue_reconciles_with_erp]


def _gap_result(pairs: list[tuple[str, float, float]], tolerance: float, what: str) -> dg.AssetCheckResult:
    """Pass when every ``(label, extract, source)`` pair agrees within ``tolerance`` (relative, with a 1-cent floor)."""
    gaps = [
        {"item": label, "extract": round(a, 2), "source": round(b, 2), "gap": round(a - b, 2)}
        for label, a, b in pairs
        if abs(a - b) > max(0.01, tolerance * abs(b))
    ]
    return dg.AssetCheckResult(
        passed=not gaps,
        description=f"{what}: {len(pairs)} reconciled" if not gaps else f"{what}: {len(gaps)} of {len(pairs)} differ, e.g. " + "; ".join(f"{g['item']} {g['extract']:,} vs {g['source']:,}" for g in gaps[:3]),
        metadata={"compared": len(pairs), "differences": gaps[:20]},
    )


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "marketing_roi"]), name="reconciles_with_crm_and_spend", blocking=True)
def marketing_roi_reconciles(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Per attribution model and level over the extract's window: pipeline (attributed + unattributed) = CRM pipeline created,
    revenue = CRM won amount closed, spend = ad_spend_daily."""
    roi = ref(EXTRACTS, "marketing_roi")
    with warehouse.get_connection() as con:
        start, end = con.execute(f"SELECT min(period_start), max(period_end) FROM {roi}").fetchone()
        if start is None:
            return dg.AssetCheckResult(passed=True, description="skipped: empty extract", metadata={"skipped": True})
        window = f"BETWEEN DATE '{start}' AND DATE '{end}'"
        crm_pipe, crm_won = con.execute(
            f"""SELECT coalesce(sum(pipeline_amount) FILTER (WHERE CAST(opportunity_created_date AS DATE) {window}), 0)::DOUBLE,
                       coalesce(sum(won_amount) FILTER (WHERE is_won AND CAST(closed_date AS DATE) {window}), 0)::DOUBLE
                FROM {ref(SOURCES, 'crm_opportunities')}"""
        ).fetchone()
        spend = con.execute(f"SELECT coalesce(sum(spend), 0)::DOUBLE FROM {ref(SPEND, 'ad_spend_daily')} WHERE date_day {window}").fetchone()[0]
        rows = con.execute(
            f"""SELECT attribution_model, level, coalesce(sum(attributed_pipeline), 0), coalesce(sum(attributed_revenue), 0),
                       coalesce(sum(ad_spend), 0)
                FROM {roi} GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    pairs = []
    for model, level, pipe, won, sp in rows:
        pairs += [(f"{model}/{level} pipeline", pipe, crm_pipe), (f"{model}/{level} revenue", won, crm_won), (f"{model}/{level} spend", sp, spend)]
    return _gap_result(pairs, 1e-6, "pipeline, revenue and spend vs CRM and ad_spend_daily")


ADDITIVE_ROI_KPIS = ("ad_spend", "new_leads", "attributed_pipeline", "attributed_opportunities", "attributed_revenue", "attributed_won_deals")


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "marketing_roi"]), name="levels_add_up", blocking=True)
def marketing_roi_levels_add_up(warehouse: Warehouse) -> dg.AssetCheckResult:
    """For every attribution model and additive measure (spend, leads, pipeline, opportunities, revenue, won deals): the campaign
    rows of a channel group add up to the group's row, and the channel-group rows add up to the all-channels row (within the
    half cent per row that publishing money in cents allows)."""
    roi = ref(EXTRACTS, "marketing_roi")
    parts = []
    for measure in ADDITIVE_ROI_KPIS:
        parts.append(
            f"""SELECT '{measure}' AS measure, p.attribution_model, p.channel_group, 'campaign' AS child_level,
                       p.{measure} AS parent, c.total AS children, c.n
                FROM {roi} p JOIN (SELECT attribution_model, channel_group, sum({measure}) AS total, count(*) AS n FROM {roi}
                                   WHERE level = 'campaign' GROUP BY ALL) c USING (attribution_model, channel_group)
                WHERE p.level = 'channel'
                UNION ALL
                SELECT '{measure}', p.attribution_model, p.channel_group, 'channel', p.{measure}, c.total, c.n
                FROM {roi} p JOIN (SELECT attribution_model, sum({measure}) AS total, count(*) AS n FROM {roi}
                                   WHERE level = 'channel' GROUP BY ALL) c USING (attribution_model)
                WHERE p.level = 'all'"""
        )
    with warehouse.get_connection() as con:
        rows = con.execute(
            f"""SELECT * FROM ({" UNION ALL ".join(parts)})
                -- money is published in cents: each rounded row may be half a cent off
                WHERE abs(coalesce(parent, 0) - coalesce(children, 0)) > 0.005 * (n + 1) + 1e-9 * abs(coalesce(parent, 0))
                ORDER BY measure, attribution_model, channel_group"""
        ).df()
        (compared,) = con.execute(f"SELECT count(*) FROM {roi} WHERE level IN ('channel', 'all')").fetchone()
    return dg.AssetCheckResult(
        passed=rows.empty,
        description=(f"campaigns add up to their channel group and channel groups to all channels ({compared} rows × {len(ADDITIVE_ROI_KPIS)} measures)"
                     if rows.empty else f"{len(rows)} sums differ, e.g. " + "; ".join(
                         f"{r.measure} {r.attribution_model}/{r.channel_group}: {r.child_level} rows {r.children:,.2f} vs {r.parent:,.2f}" for r in rows.head(3).itertuples())),
        metadata={"differences": rows.head(20).round(2).astype(str).to_dict("records"), "measures": list(ADDITIVE_ROI_KPIS)},
    )


def _roi_agreement(con, dictionary, scope=None) -> list[pd.DataFrame]:
    roi = con.execute(f"SELECT * FROM {ref(EXTRACTS, 'marketing_roi')}").df()
    if roi.empty:
        return []
    window = (roi["period_start"].min(), roi["period_end"].max())
    window_kpis = [*ROI_MODEL_KPIS, *ROI_SPEND_KPIS]
    out = []
    for level, dims in ((ALL_LEVEL, []), ("channel", ["channel_group"]), ("campaign", ["channel_group", "campaign_key"])):
        rows = roi[roi["level"] == level]
        names = [k for k in window_kpis if all(d in dictionary[k].dims for d in dims)] + (list(ROI_PAID_KPIS) if level == ALL_LEVEL else [])
        out.append(kpi_mismatches(con, rows, {k: k for k in names}, ["attribution_model", *dims], dictionary, between=window,
                                  fill={"campaign_key": NO_CAMPAIGN}, label=f"marketing_roi/{level}", scope=scope))
    evidence = roi[(roi["level"] == "channel") & roi["mmm_roi"].notna()]
    out.append(kpi_mismatches(con, evidence, {k: k for k in (*ROI_MMM_KPIS, *ROI_PLAN_KPIS)}, ["channel_group"], dictionary, label="marketing_roi/evidence",
                               scope=scope))
    return out


def _executive_agreement(con, dictionary, scope=None) -> list[pd.DataFrame]:
    frame = con.execute(f"SELECT * FROM {ref(EXTRACTS, 'executive_kpis')}").df()
    out = []
    for (grain, kpi, dimension), rows in frame.groupby(["grain", "kpi", frame["dimension"].fillna("")]):
        dims = [dimension] if dimension else []
        rows = rows.assign(**({dimension: rows["dimension_value"]} if dimension else {}))
        out.append(kpi_mismatches(con, rows, {"value": kpi}, dims, dictionary, grain=grain, period="period", label=f"executive_kpis/{grain}",
                                   scope=scope))
    return out


def _by_channel_agreement(con, dictionary, name: str, time_column: str, extra_dims: list[str], scope=None) -> list[pd.DataFrame]:
    frame = con.execute(f"SELECT * FROM {ref(EXTRACTS, name)}").df()
    other_grains = COLUMN_GRAINS.get(name, {})
    columns = {c: k for c, k in COLUMN_KPIS[name].items() if c in frame.columns and c not in other_grains}
    if name == "cohort_ltv":  # the cohort's own KPIs (not by months since acquisition), on its month-0 row
        cohort = {c: c for c in ("new_customers", "cac") if c in frame.columns}
        month0 = frame[frame["months_since_acquisition"] == 0]
    out = []
    for label, rows, dims in (("(all)", frame[frame["channel_group"] == ALL_CHANNELS], extra_dims),
                              ("channels", frame[frame["channel_group"] != ALL_CHANNELS], ["channel_group", *extra_dims])):
        out.append(kpi_mismatches(con, rows, columns, dims, dictionary, grain="month", period=time_column, label=f"{name}/{label}", scope=scope))
        for grain in sorted(set(other_grains.values())):
            at_grain = {c: COLUMN_KPIS[name][c] for c, g in other_grains.items() if g == grain and c in frame.columns}
            out.append(kpi_mismatches(con, rows, at_grain, dims, dictionary, grain=grain, period=time_column, label=f"{name}/{label}/{grain}",
                                      scope=scope))
        if name == "cohort_ltv":
            part = month0[(month0["channel_group"] == ALL_CHANNELS) == (label == "(all)")]
            out.append(kpi_mismatches(con, part, cohort, [d for d in dims if d == "channel_group"], dictionary, grain="month",
                                      period=time_column, label=f"{name}/{label}/cohort", scope=scope))
    return out


AGREEMENT = {
    "marketing_roi": _roi_agreement,
    "executive_kpis": _executive_agreement,
    "cohort_ltv": lambda con, d, scope=None: _by_channel_agreement(con, d, "cohort_ltv", "cohort_month", ["months_since_acquisition"], scope),
    "funnel": lambda con, d, scope=None: _by_channel_agreement(con, d, "funnel", "month", ["stage"], scope),
}


# whether the check builds each inline base relation it reads once, as a TEMP table (worth it when several queries read it);
# the bases built by the pipeline (kpi_bases.BASE_TABLES) are read from their tables either way
AGREEMENT_MATERIALIZE = {"marketing_roi": True, "executive_kpis": False, "cohort_ltv": True, "funnel": True}


def _build_agreement_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([EXTRACTS, name]), name="kpis_match_dictionary", blocking=True)
    def kpis_match_dictionary(warehouse: Warehouse) -> dg.AssetCheckResult:
        """Every KPI figure of the extract equals the dictionary's value for the same period, grain and filter,
        recomputed from its formula (so the same KPI agrees across extracts and the reports that show them)."""
        dictionary = load_kpi_dictionary()
        with warehouse.get_connection() as con, kpi_scope(con, dictionary, materialize_bases=AGREEMENT_MATERIALIZE[name]) as scope:
            parts = [p for p in AGREEMENT[name](con, dictionary, scope) if len(p)]
        bad = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return dg.AssetCheckResult(
            passed=bad.empty,
            description="every KPI figure matches its definition" if bad.empty else f"{len(bad)} figures differ from their definition, e.g. " + "; ".join(
                f"{r.column} ({r.kpi}) at {r.key}: {r.published} vs {r.definition}" for r in bad.head(3).itertuples()),
            metadata={"differences": bad.head(20).astype(str).to_dict("records"), "differing_cells": len(bad)},
        )

    return kpis_match_dictionary


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "funnel"]), name="reconciles_with_crm", blocking=True)
def funnel_reconciles(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Known contacts per month = CRM contacts created that month; channel rows add up to the "(all)" rows per month and stage;
    no stage has more contacts than the stage before it."""
    funnel = ref(EXTRACTS, "funnel")
    with warehouse.get_connection() as con:
        known = con.execute(
            f"""SELECT strftime(f.month, '%Y-%m'), coalesce(f.contacts, 0), coalesce(c.n, 0)  -- a month without contacts: empty, 0
                FROM {funnel} f LEFT JOIN (
                    SELECT date_trunc('month', coalesce(created_at, lead_date, mql_date, sql_date, customer_date))::DATE AS month, count(*) AS n
                    FROM {ref(SOURCES, 'crm_contacts')} GROUP BY 1) c ON c.month = f.month
                WHERE f.channel_group = '(all)' AND f.stage = 'known' ORDER BY 1"""
        ).fetchall()
        split = con.execute(
            f"""SELECT strftime(month, '%Y-%m') || ' ' || stage, sum(contacts) FILTER (WHERE channel_group <> '(all)'),
                       sum(contacts) FILTER (WHERE channel_group = '(all)')
                FROM {funnel} GROUP BY month, stage ORDER BY 1"""
        ).fetchall()
        inverted = con.execute(
            f"""SELECT count(*) FROM (SELECT contacts, lag(contacts) OVER (PARTITION BY month, channel_group ORDER BY stage_order) AS prev FROM {funnel})
                WHERE contacts > prev"""
        ).fetchone()[0]
    result = _gap_result([(f"known {m}", a, b) for m, a, b in known] + [(f"channels {k}", a or 0, b or 0) for k, a, b in split], 0.0, "funnel vs CRM contacts")
    if inverted:
        return dg.AssetCheckResult(passed=False, description=f"{inverted} stage rows exceed the stage before them; " + result.description, metadata={**result.metadata, "inverted_stages": inverted})
    return result


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "funnel"]), name="stages_monotone_from_one_cohort", blocking=True)
def funnel_stages_from_one_cohort(warehouse: Warehouse) -> dg.AssetCheckResult:
    """For every month × channel group: all six stages are present, the first stage counts the CRM contacts created that
    month whose first touch is in the group (the cohort every stage is counted from: the known-stage rows of the
    funnel_stages base table, one per contact; reconciles_with_crm counts the month's contacts in crm_contacts itself),
    no stage has more contacts than the stage before, and a stage flagged as not distinguishable from the one before
    shows no conversion."""
    funnel = ref(EXTRACTS, "funnel")
    all_channels = ALL_CHANNELS.replace("'", "''")
    with warehouse.get_connection() as con:
        rows = con.execute(
            f"""WITH contacts AS (
                    SELECT date_trunc('month', event_date)::DATE AS month, channel_group
                    FROM {ref(KPIS, 'funnel_stages')} WHERE stage_order = 1),
                cohort AS (
                    SELECT month, channel_group, count(*) AS contacts FROM contacts WHERE month IS NOT NULL GROUP BY ALL
                    UNION ALL
                    SELECT month, '{all_channels}', count(*) FROM contacts WHERE month IS NOT NULL GROUP BY ALL),
                stepped AS (
                    SELECT *, lag(contacts) OVER w AS previous_contacts, lag(stage) OVER w AS previous_stage
                    FROM {funnel} WINDOW w AS (PARTITION BY month, channel_group ORDER BY stage_order))
                SELECT 'cohort' AS problem, coalesce(f.month, c.month) AS month, coalesce(f.channel_group, c.channel_group) AS channel_group,
                       coalesce(f.stage, 'known') AS stage, coalesce(f.contacts, 0) AS contacts, coalesce(c.contacts, 0) AS reference, 'CRM contacts created' AS reference_name
                FROM (SELECT * FROM {funnel} WHERE stage_order = 1) f
                FULL JOIN cohort c ON c.month = f.month AND c.channel_group = f.channel_group
                WHERE coalesce(f.contacts, 0) <> coalesce(c.contacts, 0)
                UNION ALL
                SELECT 'stages', month, channel_group, string_agg(stage, ', ' ORDER BY stage_order), count(*), {len(FUNNEL_STAGES)}, 'one per stage'
                FROM {funnel} GROUP BY month, channel_group
                HAVING count(DISTINCT stage) <> {len(FUNNEL_STAGES)} OR count(*) <> {len(FUNNEL_STAGES)} OR min(stage_order) <> 1
                UNION ALL
                SELECT 'monotone', month, channel_group, stage, contacts, previous_contacts, previous_stage FROM stepped WHERE contacts > previous_contacts
                UNION ALL
                SELECT 'conversion', month, channel_group, stage, stage_conversion, NULL, stage_note
                FROM {funnel} WHERE NOT stage_distinguishable AND stage_conversion IS NOT NULL
                ORDER BY 1, 2, 3"""
        ).fetchall()
        compared = con.execute(f"SELECT count(*) FROM {funnel}").fetchone()[0]
    what = {
        "cohort": "first-stage contacts {contacts:,.0f} vs {reference:,.0f} {reference_name}",
        "stages": "{contacts:.0f} rows, expected {reference:.0f} ({reference_name})",
        "monotone": "{contacts:,.0f} contacts, more than {reference:,.0f} at the stage before ({reference_name})",
        "conversion": "shows a conversion of {contacts:.1%} although not distinguishable from the stage before",
    }
    problems = [
        {"problem": p, "month": str(m)[:7] if m is not None else None, "channel_group": ch, "stage": st,
         "value": None if v is None else float(v), "reference": None if r is None else float(r), "reference_name": rn}
        for p, m, ch, st, v, r, rn in rows
    ]  # fmt: skip
    texts = [
        f"{x['month']} {x['channel_group']} {x['stage']}: "
        + what[x["problem"]].format(contacts=x["value"] or 0, reference=x["reference"] or 0, reference_name=x["reference_name"])
        for x in problems
    ]
    counts = {p: sum(1 for x in problems if x["problem"] == p) for p in what}
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{compared} funnel rows: one cohort per month and channel, stages monotone, no conversion on a stage not distinguishable"
        if not problems
        else f"{len(problems)} problems ({', '.join(f'{n} {p}' for p, n in counts.items() if n)}), e.g. " + "; ".join(texts[:3]),
        metadata={"rows_checked": compared, "problems_by_kind": counts, "problems": problems[:20], "examples": texts[:20]},
    )


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "cohort_ltv"]), name="reconciles_with_erp", blocking=True)
def cohort_ltv_reconciles(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Month-0 cohort sizes = ERP customers by first-sale month; each cohort's latest cumulative revenue = its customers'
    ERP net revenue since acquisition; channel rows add up to the "(all)" rows."""
    cohort = ref(EXTRACTS, "cohort_ltv")
    with warehouse.get_connection() as con:
        rows = con.execute(
            f"""WITH first AS (
                    SELECT customer_id, min(order_date) FILTER (WHERE transaction_type = 'sale') AS first_sale
                    FROM {ref(SOURCES, 'erp_orders')} GROUP BY 1 HAVING first_sale IS NOT NULL),
                erp AS (
                    SELECT date_trunc('month', f.first_sale)::DATE AS month, count(DISTINCT f.customer_id) AS customers,
                           sum(CASE WHEN o.transaction_type = 'return' THEN -o.amount ELSE o.amount END)::DOUBLE AS revenue
                    FROM first f JOIN {ref(SOURCES, 'erp_orders')} o ON o.customer_id = f.customer_id
                         AND date_trunc('month', o.order_date) >= date_trunc('month', f.first_sale)
                    GROUP BY 1),
                ext AS (
                    SELECT cohort_month AS month, arg_min(customers, months_since_acquisition) AS customers,
                           arg_max(cumulative_revenue, months_since_acquisition) AS revenue
                    FROM {cohort} WHERE channel_group = '(all)' GROUP BY 1)
                SELECT strftime(coalesce(e.month, x.month), '%Y-%m'), coalesce(x.customers, 0), coalesce(e.customers, 0),
                       coalesce(x.revenue, 0), coalesce(e.revenue, 0)
                FROM erp e FULL JOIN ext x ON x.month = e.month ORDER BY 1"""
        ).fetchall()
        split = con.execute(
            f"""SELECT strftime(cohort_month, '%Y-%m') || ' m' || months_since_acquisition,
                       sum(cumulative_revenue) FILTER (WHERE channel_group <> '(all)'), sum(cumulative_revenue) FILTER (WHERE channel_group = '(all)')
                FROM {cohort} GROUP BY cohort_month, months_since_acquisition ORDER BY 1"""
        ).fetchall()
    pairs = [(f"customers {m}", a, b) for m, a, b, _, _ in rows]
    pairs += [(f"revenue {m}", c, d) for m, _, _, c, d in rows]
    pairs += [(f"channels {k}", a or 0, b or 0) for k, a, b in split]
    return _gap_result(pairs, 1e-9, "cohorts vs ERP orders")


def build_covers_every_check(checks: Sequence[dg.AssetChecksDefinition]) -> dg.AssetChecksDefinition:
    """The ``covers_every_check`` check of ``data_quality_report`` over ``checks`` and itself: every check of the code
    location (``checks/__init__.py`` builds it over ``all_checks``)."""

    @dg.asset_check(asset=dg.AssetKey([EXTRACTS, "data_quality_report"]), name="covers_every_check", blocking=True)
    def data_quality_covers_every_check(warehouse: Warehouse) -> dg.AssetCheckResult:
        """The report lists every asset check of the code location exactly once, each with a status of the check tally
        (passed, warned, failed, skipped) or one it does not count (pending, not_in_run), and a freshness row per source."""
        expected = {(s.asset_key.to_user_string(), s.name) for c in [*checks, data_quality_covers_every_check] for s in c.check_specs}
        with warehouse.get_connection() as con:
            listed = con.execute(f"SELECT asset_key, check_name FROM {ref(EXTRACTS, 'data_quality_report')} WHERE section = 'check'").fetchall()
            statuses = {r[0] for r in con.execute(f"SELECT DISTINCT status FROM {ref(EXTRACTS, 'data_quality_report')} WHERE section = 'check'").fetchall()}
            fresh = con.execute(f"SELECT count(*) FROM {ref(EXTRACTS, 'data_quality_report')} WHERE section = 'freshness'").fetchone()[0]
        missing, duplicated = expected - set(listed), len(listed) - len(set(listed))
        unknown = sorted(str(s) for s in statuses - {*STATUSES, *NOT_COUNTED})
        sources_with_freshness = sum(1 for key, name in expected if name == "freshness")
        passed = not missing and not duplicated and not unknown and fresh == sources_with_freshness
        return dg.AssetCheckResult(
            passed=passed,
            description=f"{len(set(listed))} checks listed, {fresh} freshness rows" if passed
            else f"missing {sorted(missing)[:5]}, {duplicated} duplicated, unknown status {unknown}, {fresh} of {sources_with_freshness} freshness rows",
            metadata={"checks_expected": len(expected), "checks_listed": len(listed), "missing": [f"{a}:{n}" for a, n in sorted(missing)][:20], "unknown_statuses": unknown},
        )

    return data_quality_covers_every_check


extract_checks += [_build_agreement_check(name) for name in AGREEMENT]
extract_checks += [marketing_roi_reconciles, marketing_roi_levels_add_up, funnel_reconciles, funnel_stages_from_one_cohort, cohort_ltv_reconciles]


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "pipeline_forecast"]), name="reconciles_with_open_pipeline", blocking=True)
def pipeline_forecast_reconciles(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Per forecast month: the "All" open pipeline = CRM pipeline open at as_of = the sum over segments; every interval
    is ordered (0 <= lower <= upper). The mean may lie above a skewed interval (a few large, unlikely deals), so it is not tested against it."""
    with warehouse.get_connection() as con:
        rows = con.execute(
            f"""WITH f AS (SELECT * FROM {ref(EXTRACTS, 'pipeline_forecast')}),
                crm AS (
                    SELECT coalesce(sum(pipeline_amount), 0)::DOUBLE AS open_pipeline, count(*) AS n
                    FROM {ref(SOURCES, 'crm_opportunities')}
                    WHERE CAST(opportunity_created_date AS DATE) <= (SELECT max(as_of) FROM f)
                      AND (closed_date IS NULL OR CAST(closed_date AS DATE) > (SELECT max(as_of) FROM f))
                      AND NOT {CLOSED_WITHOUT_DATE_SQL})
                SELECT strftime(f.forecast_month, '%Y-%m'),
                       any_value(f.open_pipeline) FILTER (WHERE f.sales_segment = 'All'),
                       sum(f.open_pipeline) FILTER (WHERE f.sales_segment <> 'All'),
                       any_value(crm.open_pipeline),
                       count(*) FILTER (WHERE NOT (0 <= f.lower AND f.lower <= f.upper AND f.expected_revenue >= 0))
                FROM f CROSS JOIN crm GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    if not rows:
        return dg.AssetCheckResult(passed=True, description="skipped: no open pipeline", metadata={"skipped": True})
    pairs = [(f"{m} All vs CRM open", a or 0, c) for m, a, _, c, _ in rows] + [(f"{m} segments vs All", b or 0, a or 0) for m, a, b, _, _ in rows]
    result = _gap_result(pairs, 1e-6, "open pipeline vs CRM")
    outside = sum(r[4] for r in rows)
    if outside:
        return dg.AssetCheckResult(passed=False, description=f"{outside} rows with a negative value or an inverted interval; {result.description}", metadata={**result.metadata, "invalid_rows": outside})
    return result


extract_checks += [pipeline_forecast_reconciles]


def _build_report_check(asset: str, file_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([EXTRACTS, asset]), name="self_contained_and_dated")
    def self_contained_and_dated(warehouse: Warehouse) -> dg.AssetCheckResult:
        """The HTML file exists, loads nothing from the network (no external src/href, no script), states the day its
        data is fresh to, and carries no email or phone number (the audit the asset ran before publishing it)."""
        return _check_result(audit_report_html({"html": Path(warehouse.reports_dir) / file_name}))

    return self_contained_and_dated


extract_checks += [_build_report_check(asset, file_name) for asset, file_name in REPORT_FILES.items()]


# ------------------------------------------------------------------------------------------------- BI datasets

CREDIT_TOLERANCE = 1e-9


# reads marketing_roi and attribution_by_campaign: runs after them (additional_deps), never against the previous run's figures
@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "opportunity_credit"]), name="reconciles_with_marketing_roi", blocking=True,
                additional_deps=[dg.AssetKey([EXTRACTS, "marketing_roi"]), dg.AssetKey([ATTRIBUTION, "attribution_by_campaign"])])
def opportunity_credit_reconciles(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Per attribution model and channel group (with "(unattributed)": the opportunities without any touch): attributed
    pipeline of the opportunities created in marketing_roi's window = marketing_roi's channel-level attributed_pipeline, to
    the cent. Attributed revenue is dated by the close date, which the drill-down does not carry: over all time it must
    equal the KPI attributed_revenue per model and channel group. Over all time, per model × channel group × campaign,
    attributed pipeline = attribution_by_campaign's pipeline_amount (its NULL campaign is "(no campaign)" here)."""
    oc, roi, by_campaign = ref(EXTRACTS, "opportunity_credit"), ref(EXTRACTS, "marketing_roi"), ref(ATTRIBUTION, "attribution_by_campaign")
    unattributed, no_campaign = literal(UNATTRIBUTED), literal(NO_CAMPAIGN)
    with warehouse.get_connection() as con:
        start, end = con.execute(f"SELECT min(period_start), max(period_end) FROM {roi}").fetchone()  # the window of its rows
        if start is None:
            return dg.AssetCheckResult(passed=True, description="skipped: marketing_roi is empty", metadata={"skipped": True})
        # one scan of the drill-down: its sums by channel group × campaign × in the window, which the comparisons sum further
        sums = ", ".join(f"sum({ident(c)}) AS {ident(c)}" for p in ("attributed_pipeline", "attributed_revenue") for c in per_model_columns(p))
        con.execute(f"""CREATE TEMP TABLE _oc_groups AS
                        SELECT channel_group, campaign_key, coalesce(opportunity_created_date BETWEEN DATE '{start}' AND DATE '{end}', false)
                                   AS in_window, {sums}
                        FROM {oc} GROUP BY ALL""")
        groups = 'temp."_oc_groups"'
        pipeline = con.execute(
            f"""WITH ext AS (
                    SELECT attribution_model, channel_group, value AS pipeline
                    FROM ({per_model_sums_sql(groups, "attributed_pipeline", ["channel_group"], "in_window")})),
                r AS (SELECT attribution_model, channel_group, attributed_pipeline AS pipeline FROM {roi} WHERE level = 'channel')
                SELECT attribution_model, channel_group, coalesce(ext.pipeline, 0), coalesce(r.pipeline, 0)
                FROM r FULL JOIN ext USING (attribution_model, channel_group) ORDER BY ALL"""
        ).fetchall()
        campaigns = con.execute(
            f"""WITH ext AS (
                    SELECT attribution_model, channel_group, campaign_key, value AS pipeline
                    FROM ({per_model_sums_sql(groups, "attributed_pipeline", ["channel_group", "campaign_key"])})),
                src AS (
                    SELECT model AS attribution_model, coalesce(channel_group, {unattributed}) AS channel_group,
                           coalesce(campaign_key, {no_campaign}) AS campaign_key, sum(pipeline_amount) AS pipeline
                    FROM {by_campaign} GROUP BY ALL)
                SELECT attribution_model, channel_group, campaign_key, coalesce(ext.pipeline, 0), coalesce(src.pipeline, 0)
                FROM src FULL JOIN ext USING (attribution_model, channel_group, campaign_key) ORDER BY ALL"""
        ).fetchall()
        revenue = {(m, g): float(v or 0) for m, g, v in con.execute(per_model_sums_sql(groups, "attributed_revenue", ["channel_group"])).fetchall()}
        con.execute(f"DROP TABLE IF EXISTS {groups}")
        kpi = compute_kpis(con, ["attributed_revenue"], "total", ["attribution_model", "channel_group"], dictionary=load_kpi_dictionary())
    defined = {(m, g): float(v) for m, g, v in kpi[["attribution_model", "channel_group", "value"]].itertuples(index=False) if pd.notna(v)}
    pairs = [(f"{m}/{g} pipeline", float(a), float(b)) for m, g, a, b in pipeline]
    pairs += [(f"{m}/{g} revenue (all time)", revenue.get((m, g), 0.0), defined.get((m, g), 0.0)) for m, g in sorted(revenue.keys() | defined.keys())]
    pairs += [(f"{m}/{g}/{c} pipeline vs attribution_by_campaign (all time)", float(a), float(b)) for m, g, c, a, b in campaigns]
    return _gap_result(pairs, 1e-9, f"drill-down vs marketing_roi ({start} to {end}), KPI attributed_revenue and attribution_by_campaign")


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "opportunity_credit"]), name="credits_sum_to_one", blocking=True)
def opportunity_credit_sums_to_one(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Per opportunity and attribution model the credit shares sum to 1 (within 1e-9), for every model of the registry
    (each conserves the opportunity's pipeline, see attribution_credits' credits_sum_to_pipeline; an opportunity without a
    touch has one "(unattributed)" row of credit 1); an opportunity with a zero pipeline amount is not counted. Every model
    of the registry has its credit column. One scan for all models."""
    oc = ref(EXTRACTS, "opportunity_credit")
    with warehouse.get_connection() as con:
        present = set(column_names(con, EXTRACTS, "opportunity_credit"))
        columns = {c: m for c, m in per_model_columns("credit").items() if c in present}
        missing = [m for c, m in per_model_columns("credit").items() if c not in present]
        per_opportunity = ", ".join(f"coalesce(sum({ident(c)}), 0) AS {ident('t_' + m)}, count({ident(c)}) AS {ident('n_' + m)}"
                                    for c, m in columns.items())
        counts = ", ".join(f"count(*) FILTER (WHERE abs({ident('t_' + m)} - 1) > {CREDIT_TOLERANCE} OR {ident('n_' + m)} < touches)"
                           for m in columns.values())
        row = con.execute(
            f"""SELECT count(*){", " + counts if counts else ""}
                FROM (SELECT opportunity_key, count(*) AS touches{", " + per_opportunity if per_opportunity else ""}
                      FROM {oc} WHERE pipeline_amount <> 0 GROUP BY ALL)"""
        ).fetchone()
    opportunities = int(row[0])
    off = {m: int(n) for m, n in zip(columns.values(), row[1:]) if n}
    return dg.AssetCheckResult(
        passed=not off and not missing,
        description=f"credits sum to 1 for all {opportunities} opportunities and all {len(columns)} models" if not off and not missing
        else f"opportunities whose credits do not sum to 1: {off}; models without a credit column: {missing}",
        metadata={"opportunities": opportunities, "off_by_model": off, "missing_models": missing},
    )


def _mmm_weekly_pairs(con) -> list[tuple[str, float, float]]:
    """Rows = weeks × components of mmm_contributions, and each component's contribution = the sum of its column."""
    present = column_names(con, MMM, "mmm_contributions")
    components = [c for c in present if c not in bi_datasets.MMM_WEEKLY_FIXED]
    source = con.execute(f"SELECT count(*) * {len(components)}, {', '.join(f'sum({ident(c)})' for c in components) or 'NULL'} "
                         f"FROM {ref(MMM, 'mmm_contributions')}").fetchone() if present else (0,)
    ext = dict(con.execute(f"SELECT component, sum(contribution) FROM {ref(EXTRACTS, 'mmm_weekly')} GROUP BY ALL").fetchall())
    (rows,) = con.execute(f"SELECT count(*) FROM {ref(EXTRACTS, 'mmm_weekly')}").fetchone()
    return [("rows", rows, source[0])] + [(f"{c} contribution", ext.get(c) or 0.0, v or 0.0) for c, v in zip(components, source[1:])]


def _table_copy_pairs(con, name: str) -> list[tuple[str, float, float]]:
    """Row count and the sum of every published numeric column the warehouse table has, in the copy and in the table."""
    schema, table, _, _ = TABLE_COPIES[name]
    present = column_names(con, schema, table)
    numeric = [c for c, kind in EXTRACT_COLUMNS[name].items() if kind in ("int", "float") and c in present]
    sums = ", ".join(["count(*)", *(f"coalesce(sum({ident(c)}), 0)::DOUBLE" for c in numeric)])
    ext = con.execute(f"SELECT {sums} FROM {ref(EXTRACTS, name)}").fetchone()
    src = con.execute(f"SELECT {sums} FROM {ref(schema, table)}").fetchone() if present else (0, *([0.0] * len(numeric)))
    return [("rows", ext[0], src[0])] + [(f"sum({c})", a, b) for c, a, b in zip(numeric, ext[1:], src[1:])]


# published copy -> (its warehouse table, (label, published, warehouse) pairs that must agree)
COPY_SOURCES = {
    "mmm_weekly": (f"{MMM}.mmm_contributions", _mmm_weekly_pairs),
    **{name: (f"{schema}.{table}", functools.partial(_table_copy_pairs, name=name)) for name, (schema, table, _, _) in TABLE_COPIES.items()},
}


def _build_copy_check(name: str) -> dg.AssetChecksDefinition:
    source, pairs_of = COPY_SOURCES[name]

    @dg.asset_check(asset=dg.AssetKey([EXTRACTS, name]), name="matches_warehouse_table", blocking=True,
                    description=f"Same row count and the same sum of every numeric column as {source} (relative 1e-9, 1-cent floor).")
    def matches_warehouse_table(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.get_connection() as con:
            pairs = pairs_of(con)
        result = _gap_result(pairs, 1e-9, f"{name} vs {source}")
        rows = next((a, b) for label, a, b in pairs if label == "rows")
        if rows[0] != rows[1]:
            return dg.AssetCheckResult(passed=False, description=f"{rows[0]} rows vs {rows[1]}; {result.description}", metadata=result.metadata)
        return result

    return matches_warehouse_table


extract_checks += [opportunity_credit_reconciles, opportunity_credit_sums_to_one]
extract_checks += [_build_copy_check(name) for name in COPY_SOURCES]
