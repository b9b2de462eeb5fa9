"""Reporting assets read by stakeholders: the data-quality report (from the Dagster instance's check results)
and the three self-contained HTML reports in ``MARKETING_REPORTS_DIR`` (executive, marketing ROI, data quality).

``data_quality_report`` runs last in a run (lowest step priority) so that the checks of every other
asset in the same run have been evaluated when it reads the instance. Its check tally
(:mod:`marketing_assets.lib.tally`) covers every check planned in the run except the report's own
(on ``data_quality_report`` and ``data_quality_html``), which run after it: the same tally the run summary
prints and the HTML page shows.
"""

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.alerts import Alerts
from marketing_assets.attribution import AttributionConfig
from marketing_assets.constants import EXTRACTS, IDENTITY, MMM, QUARANTINE_TABLE, SOURCES
from marketing_assets.extracts import EXTRACT_COLUMNS, publish_extract, published_extract_files
from marketing_assets.lib import kpis, recommend, tally
from marketing_assets.lib import reports as html_reports
from marketing_assets.lib.freshness import FRESH_TO, fresh_to, fresh_to_sql
from marketing_assets.lib.owners import owner_of
from marketing_assets.lib.publish import EMAIL_PATTERN, AuditFailed, audit_report_html, find_pii
from marketing_assets.lib.quality import table_exists
from marketing_assets.lib.refs import recording, ref
from marketing_assets.lib.reports.pages import NOT_COUNTED, REPORT_FILES
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse

RUN_LAST = {"dagster/priority": "-100"}  # in-process executor: runs after every other ready step (the checks)
_METADATA_LIMIT = 400  # characters of check metadata kept per row


def _metadata_json(metadata: dict) -> str:
    small = {}
    for key, entry in metadata.items():
        value = getattr(entry, "value", entry)
        if isinstance(value, (int, float, str, bool)) or value is None:
            small[key] = value if not isinstance(value, str) else value[:120]
    text = json.dumps(small, default=str, sort_keys=True)
    return text if len(text) <= _METADATA_LIMIT else text[: _METADATA_LIMIT - 3] + "..."


# The data-quality report's own assets: their checks run after the report is written, so no tally counts them.
REPORT_OWN_ASSETS = frozenset(dg.AssetKey([EXTRACTS, a]) for a in ("data_quality_report", "data_quality_html"))


def planned_check_keys(job_def: dg.JobDefinition, run: dg.DagsterRun) -> set[dg.AssetCheckKey]:
    """The checks ``run`` was planned to evaluate: its check selection, else every check of its selected assets."""
    if run.asset_check_selection is not None:
        return set(run.asset_check_selection)
    layer = job_def.asset_layer
    assets = set(run.asset_selection) if run.asset_selection else set(layer.selected_asset_keys)
    return {k for k in layer.asset_graph.asset_check_keys if k.asset_key in assets}


def _outcome(evaluation: dg.AssetCheckEvaluation, order: float) -> tally.CheckOutcome:
    skipped = (evaluation.metadata or {}).get("skipped")
    return tally.CheckOutcome(
        asset_key=evaluation.asset_key.to_user_string(), check_name=evaluation.check_name, passed=bool(evaluation.passed),
        severity=evaluation.severity.value, skipped=bool(getattr(skipped, "value", skipped)), order=order,
        blocking=bool(evaluation.blocking), description=evaluation.description or "",
    )


def run_tallies(
    evaluations: list[tuple[float, dg.AssetCheckEvaluation]], planned: set[dg.AssetCheckKey], blocking: dict[dg.AssetCheckKey, bool]
) -> tuple[tally.CheckTally, tally.CheckTally]:
    """The run's check tally (:data:`~marketing_assets.lib.tally.SCOPE`) and the tally of the report's own checks,
    from the run's ``(time or sequence, evaluation)`` pairs and its planned checks (planned, no evaluation = skipped)."""
    outcomes = [
        tally.CheckOutcome(k.asset_key.to_user_string(), k.name, None, blocking=blocking.get(k, False), description="did not execute in this run")
        for k in planned
    ] + [_outcome(ev, order) for order, ev in evaluations]
    own = {k.to_user_string() for k in REPORT_OWN_ASSETS}
    return tally.tally(o for o in outcomes if o.asset_key not in own), tally.tally(o for o in outcomes if o.asset_key in own)


def check_rows(context: dg.AssetExecutionContext, specs: list[dg.AssetCheckSpec]) -> tuple[pd.DataFrame, tally.CheckTally]:
    """One row per asset check, and the run's check tally (the rows whose status is one of the tally's four).

    Checks planned in this run get this run's result (``skipped`` when they did not execute); the report's own
    checks are ``pending``; checks outside this run are ``not_in_run``, with their latest earlier evaluation."""
    instance, run_id = context.instance, context.run_id
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [(r.timestamp, r.dagster_event.event_specific_data) for r in records if r.dagster_event is not None]
    planned = planned_check_keys(context.job_def, context.run)
    run_tally, _ = run_tallies(evaluations, planned, {s.key: bool(s.blocking) for s in specs})
    counted = {o.key: o for o in run_tally.checks}
    metadata = {(ev.asset_key.to_user_string(), ev.check_name): dict(ev.metadata or {}) for _, ev in evaluations}
    earlier = instance.event_log_storage.get_latest_asset_check_execution_by_key([s.key for s in specs if s.key not in planned])
    rows = []
    for spec in specs:
        key = (spec.asset_key.to_user_string(), spec.name)
        row = {"section": "check", "asset_key": key[0], "check_name": spec.name, "severity": None, "blocking": bool(spec.blocking),
               "evaluated_at": pd.NaT, "run_id": None, "description": spec.description, "metric": None, "value": float("nan"), "metadata_json": "{}"}
        if key in counted:
            o = counted[key]
            row |= {"status": o.status, "run_id": run_id, "description": o.description or spec.description}
            if o.passed is not None:
                row |= {"severity": o.severity, "evaluated_at": pd.Timestamp(o.order, unit="s"), "metadata_json": _metadata_json(metadata.get(key, {}))}
        elif spec.key in planned:
            row |= {"status": "pending", "description": f"{NOT_COUNTED['pending']}: {spec.description or ''}".rstrip(": ")}
        else:
            record = earlier.get(spec.key)
            evaluation = getattr(getattr(record, "event", None), "dagster_event", None)
            evaluation = getattr(evaluation, "event_specific_data", None)
            row["status"] = "not_in_run"
            if getattr(evaluation, "passed", None) is not None:
                last = _outcome(evaluation, record.create_timestamp)
                row |= {"severity": last.severity, "evaluated_at": pd.Timestamp(last.order, unit="s"), "run_id": record.run_id,
                        "description": f"{NOT_COUNTED['not_in_run']}; last result {last.status}: {last.description}",
                        "metadata_json": _metadata_json(dict(evaluation.metadata or {}))}
        rows.append(row)
    return pd.DataFrame(rows), run_tally


def freshness_rows(checks: pd.DataFrame) -> pd.DataFrame:
    """Per source table: age of the newest event in hours, from the latest ``freshness`` check evaluation."""
    fresh = checks[checks["check_name"] == "freshness"].copy()
    meta = fresh["metadata_json"].map(json.loads)
    fresh["section"], fresh["metric"] = "freshness", "age_hours"
    fresh["value"] = meta.map(lambda m: m.get("age_hours")).astype("float64")
    fresh["description"] = [
        f"newest event {m.get('newest_event') or 'none'}; limit {m.get('max_age_hours')} h" for m in meta
    ]
    return fresh


# Identity match rates of the data-quality report: (asset, metric, SQL of (numerator, denominator), what is counted).
IDENTITY_RATES: tuple[tuple[str, str, Callable[[], str], str], ...] = (
    ("identity/accounts_resolved", "erp_customers_matched_to_crm",
     lambda: f"""SELECT (SELECT count(DISTINCT customer_id) FROM {ref(IDENTITY, 'accounts_resolved')} WHERE customer_id IS NOT NULL),
                        (SELECT count(*) FROM {ref(SOURCES, 'erp_customers')})""",
     "ERP customers matched to a CRM account"),
    ("identity/accounts_resolved", "won_accounts_matched_to_erp",
     lambda: f"""SELECT count(*) FILTER (WHERE r.customer_id IS NOT NULL), count(*)
                 FROM (SELECT DISTINCT account_id FROM {ref(SOURCES, 'crm_opportunities')} WHERE is_won) w
                 LEFT JOIN {ref(IDENTITY, 'accounts_resolved')} r USING (account_id)""",
     "CRM accounts with a won deal matched to an ERP customer"),
    ("identity/web_client_identities", "web_sessions_linked_to_contact",
     lambda: f"""SELECT count(*) FILTER (WHERE k.canonical_contact_id IS NOT NULL), count(*)
                 FROM {ref(SOURCES, 'web_sessions')} s LEFT JOIN {ref(IDENTITY, 'web_client_identities')} k USING (client_id)""",
     "web sessions linked to a known contact"),
    ("identity/contacts_resolved", "contacts_merged_as_duplicates",
     lambda: f"""SELECT count(*) FILTER (WHERE contact_id <> canonical_contact_id), count(*)
                 FROM {ref(IDENTITY, 'contacts_resolved')}""",
     "CRM contacts merged into another contact"),
)


def identity_rows(con) -> pd.DataFrame:
    """Identity match rates: ERP customers ↔ CRM accounts, won accounts matched, web sessions linked to contacts.
    A rate whose tables do not all exist is left out."""
    metrics: list[tuple[str, str, str, float | None]] = []
    for asset, metric, sql, what in IDENTITY_RATES:
        with recording() as tables:
            text = sql()
        if not all(table_exists(con, group, table) for group, table in tables.tables):
            continue
        num, den = con.execute(text).fetchone()
        metrics.append((asset, metric, f"{num:,} of {den:,} {what}", num / den if den else None))
    return pd.DataFrame(
        [
            {"section": "identity", "asset_key": asset, "check_name": None, "severity": None, "blocking": False,
             "status": "measured", "evaluated_at": pd.Timestamp.now(tz="UTC").tz_localize(None), "run_id": None,
             "description": text, "metric": metric, "value": value, "metadata_json": "{}"}
            for asset, metric, text, value in metrics
        ]
    )


def quarantine_sql() -> str:
    """Input rows quarantined per source table and reason (counts only: never a file, line or value)."""
    return f"""SELECT table_name, reason, count(DISTINCT (source_file, source_line)) AS rows_quarantined
               FROM {ref(SOURCES, QUARANTINE_TABLE)} GROUP BY ALL ORDER BY ALL"""


def _report_row(section: str, **values) -> dict:
    return {"section": section, "check_name": None, "severity": None, "blocking": False, "run_id": None, "metadata_json": "{}",
            "evaluated_at": pd.Timestamp.now(tz="UTC").tz_localize(None), **values}


def quarantine_rows(con) -> pd.DataFrame:
    """One row per source table × quarantine reason: the number of input rows rejected for it."""
    if not table_exists(con, SOURCES, QUARANTINE_TABLE):
        return pd.DataFrame()
    return pd.DataFrame(
        [_report_row("quarantine", asset_key=f"{SOURCES}/{table}", status="quarantined", metric=reason, value=float(n),
                     description=f"{n:,} input rows of {table} quarantined: {reason}")
         for table, reason, n in con.execute(quarantine_sql()).fetchall()]
    )


def _masked(text: str | None) -> str | None:
    """A description without contact details: e-mail addresses masked, a phone-like value withholds the text."""
    if text is None:
        return None
    text = EMAIL_PATTERN.sub("<email>", text)
    return "(description withheld: it holds a phone-like value)" if find_pii(pd.DataFrame({"d": [text]})) else text


def _utc_naive(ts: str | None) -> pd.Timestamp:
    when = pd.to_datetime(ts, utc=True, errors="coerce") if ts else pd.NaT
    return when.tz_localize(None) if pd.notna(when) else pd.NaT


def alert_rows(alerts: Alerts) -> pd.DataFrame:
    """One row per open alert: a check whose last state the alert sensor recorded is WARN or ERROR (alerts.py)."""
    return pd.DataFrame(
        [_report_row("alert", asset_key=a["asset_key"], check_name=a["check_name"], severity=a["severity"], status="open",
                     evaluated_at=_utc_naive(a["ts"]), description=_masked(a["description"]),
                     metric="open_alert", value=None)
         for a in alerts.open_alerts()]
    )


# Extracts whose checks the data-quality report lists: ordering deps (it reads their check results, not their tables).
REPORTS_ON = [dg.AssetKey([EXTRACTS, n]) for n in ("executive_kpis", "marketing_roi", "funnel", "cohort_ltv")]


def build_data_quality_report(checks: Sequence[dg.AssetChecksDefinition], *, key_prefix: str, group_name: str) -> dg.AssetsDefinition:
    """The ``data_quality_report`` asset over ``checks``, every check of the code location: ``definitions.py``
    passes them in, so this module never imports the checks package (whose extract checks read these reports)."""
    specs = sorted((spec for checks_def in checks for spec in checks_def.check_specs), key=lambda s: (s.asset_key.to_user_string(), s.name))

    @dg.asset(
        name="data_quality_report",
        key_prefix=key_prefix,
        group_name=group_name,
        # the tables its match rates read (derived), and the extracts whose checks it reports on, so that it runs after them
        deps=[*upstream(*(sql for _, _, sql, _ in IDENTITY_RATES), quarantine_sql), *REPORTS_ON],
        op_tags=RUN_LAST,
        kinds={"duckdb", "parquet", "csv"},
    )
    def data_quality_report(context: dg.AssetExecutionContext, warehouse: Warehouse, alerts: Alerts) -> dg.MaterializeResult:
        """One row per asset check with its status in this run, severity, time and key metadata (from the Dagster
        instance), plus source freshness, identity match rates, quarantined input rows per table and reason, and open
        alerts; the metadata carries the run's check tally."""
        checks, run_tally = check_rows(context, specs)
        with warehouse.get_connection() as con:
            parts = [checks, freshness_rows(checks), identity_rows(con), quarantine_rows(con), alert_rows(alerts)]
            frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
            frame["blocking"] = frame["blocking"].astype(bool)
            frame["evaluated_at"] = pd.to_datetime(frame["evaluated_at"])
            frame["owner"] = frame["asset_key"].map(owner_of)
            meta = publish_extract(context, warehouse, con, "data_quality_report", frame)
        problems = checks[checks["status"].isin(["failed", "warned"])][["asset_key", "check_name", "status", "description"]]
        return dg.MaterializeResult(
            metadata={
                **meta,
                **tally.metadata(run_tally),
                **{f"checks_{k}": int((checks["status"] == k).sum()) for k in NOT_COUNTED},
                "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "failed_or_warned": dg.MetadataValue.md(problems.to_markdown(index=False) if len(problems) else "none"),
            }
        )

    return data_quality_report


# ---------------------------------------------------------------------------------- HTML reports


def _read(con, schema: str, table: str) -> pd.DataFrame | None:
    return con.execute(f"SELECT * FROM {ref(schema, table)}").df() if table_exists(con, schema, table) else None


_MMM_FRAMES = {"mmm_contributions": "mmm_contributions", "mmm_budget_plan": "mmm_budget_plan", "mmm_roi": "mmm_model"}


def _frame_table(name: str) -> tuple[str, str]:
    return (MMM, _MMM_FRAMES[name]) if name in _MMM_FRAMES else (EXTRACTS, name)


def _report_frames(con, names: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The frames a report reads: published extracts by name, and the MMM tables under the renderers' names."""
    frames = {name: _read(con, *_frame_table(name)) for name in names}
    return {k: v for k, v in frames.items() if v is not None}


def report_deps(frames: tuple[str, ...]) -> list[dg.AssetKey]:
    """A report's upstream assets: the tables of its frames and of its "data fresh to" date, as the SQL names them."""
    return upstream(*(lambda n=n: ref(*_frame_table(n)) for n in frames), *(lambda f=f: fresh_to_sql(*f) for f in FRESH_TO))


def published_files(extracts_dir: str, reports_dir: str) -> dict[dg.AssetKey, list[Path]]:
    """Every file an asset publishes for stakeholders: each extract's files (Parquet, and CSV unless Parquet-only), each HTML report."""
    files = {dg.AssetKey([EXTRACTS, name]): list(published_extract_files(extracts_dir, name).values()) for name in EXTRACT_COLUMNS}
    return files | {dg.AssetKey([EXTRACTS, asset]): [Path(reports_dir) / file] for asset, file in REPORT_FILES.items()}


def _write_html(context: dg.AssetExecutionContext, warehouse: Warehouse, render, frames: tuple[str, ...]) -> dg.MaterializeResult:
    """Render the asset's page and write-audit-publish it: the page is moved into place only when it passes
    ``self_contained_and_dated``'s audit; otherwise the asset fails and the previous page stays published."""
    file_name = REPORT_FILES[context.asset_key.path[-1]]
    with warehouse.get_connection() as con:
        frames, day = _report_frames(con, frames), fresh_to(con)
    html = render(frames, fresh_to=day, generated_at=dt.datetime.now(dt.timezone.utc))
    try:
        path = html_reports.write_report(html, Path(warehouse.reports_dir) / file_name, audits=[audit_report_html])
    except AuditFailed as err:
        raise dg.Failure(description=str(err), metadata={"failed_audits": [r.audit for r in err.failed]}) from err
    context.log.info(f"{file_name} audited and published ({len(html) / 1024:.0f} KiB), data fresh to {day}")
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "size_kib": round(len(html) / 1024, 1), "fresh_to": str(day)}
    )


REPORT_KINDS = {"duckdb", "html"}
EXECUTIVE_FRAMES = ("kpi_dictionary", "executive_kpis", "funnel", "pipeline_forecast")
MARKETING_ROI_FRAMES = ("kpi_dictionary", "marketing_roi", "funnel", "cohort_ltv", "mmm_contributions", "mmm_budget_plan", "mmm_roi")
DATA_QUALITY_FRAMES = ("data_quality_report",)


@dg.asset(deps=report_deps(EXECUTIVE_FRAMES), kinds=REPORT_KINDS)
def executive_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/reports/executive.html: headline KPIs against target, revenue trend, revenue by product and channel,
    spend vs revenue, funnel, pipeline forecast, with every KPI's definition one click away."""
    return _write_html(context, warehouse, html_reports.render_executive, EXECUTIVE_FRAMES)


@dg.asset(deps=report_deps(MARKETING_ROI_FRAMES), kinds=REPORT_KINDS)
def marketing_roi_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/reports/marketing_roi.html: channel performance by attribution model, recommendations with their reasons,
    funnel, cohort LTV curves, MMM decomposition and budget plan."""
    rules = recommend.load_rules(recommend.kpi_goals(kpis.load_kpi_dictionary()))
    # Headline figures use the attribution model the budget rules read, so the page and its recommendations agree;
    # the glossary states the attribution parameters of the attribution config (its defaults: runs may override them).
    terms = html_reports.marketing_terms(AttributionConfig().model_dump())
    render = functools.partial(html_reports.render_marketing_roi, model=rules.reference_model, terms=terms)
    return _write_html(context, warehouse, render, MARKETING_ROI_FRAMES)


@dg.asset(deps=report_deps(DATA_QUALITY_FRAMES), op_tags=RUN_LAST, kinds=REPORT_KINDS)
def data_quality_html(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """data/reports/data_quality.html: passed / warned / failed checks (problems first), freshness and identity match rates."""
    return _write_html(context, warehouse, html_reports.render_data_quality, DATA_QUALITY_FRAMES)
