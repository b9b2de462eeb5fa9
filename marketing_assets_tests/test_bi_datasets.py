"""BI datasets: the per-touchpoint credit drill-down (opportunity_credit), the published copies of the MMM and attribution
tables, and the data-quality report's quarantine and alert sections. Contracts, no raw identifiers, reconciliation, and
every new check failing on corrupted data."""

import hashlib
import hmac
import json
import shutil

import dagster as dg
import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from marketing_assets.alerts import Alerts
from marketing_assets.checks import extracts as extract_checks
from marketing_assets.constants import EXTRACTS
from marketing_assets.extracts import EXTRACT_COLUMNS, PSEUDONYM_COLUMNS, SQL_EXTRACTS, TABLE_COPIES, extract_formats, mmm_weekly_sql, table_copy_sql
from marketing_assets.lib import bi_datasets
from marketing_assets.lib.attribution.models import model_names
from marketing_assets.lib.publish import PSEUDONYM_HEX, audit_pseudonymised_at_scale, pseudonymise, register_pseudonym
from marketing_assets.reports import alert_rows
from marketing_assets.resources import Warehouse
from marketing_assets_tests.conftest import TEST_PSEUDONYM_KEY, copy_graph, rerun_checks

NEW_EXTRACTS = list(SQL_EXTRACTS)
COPIES = [n for n in SQL_EXTRACTS if n != "opportunity_credit"]


def _warehouse(tmp) -> Warehouse:
    return Warehouse(database=str(tmp / "warehouse.duckdb"), extracts_dir=str(tmp / "extracts"))


def _evaluations(result) -> dict:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == EXTRACTS}


# ------------------------------------------------------------------------------------------------ contracts


@pytest.mark.parametrize("name", NEW_EXTRACTS)
def test_published_files_hold_the_contract_columns(demo_graph, name):
    result, tmp, _ = demo_graph
    parquet = pq.read_table(tmp / "extracts" / f"{name}.parquet").to_pandas()
    assert list(parquet.columns) == list(EXTRACT_COLUMNS[name]) and len(parquet) > 0
    if "csv" in extract_formats(name):
        csv = pd.read_csv(tmp / "extracts" / f"{name}.csv")
        assert list(csv.columns) == list(EXTRACT_COLUMNS[name]) and len(csv) == len(parquet)
    else:  # Parquet only: no CSV written
        assert not (tmp / "extracts" / f"{name}.csv").exists()
    evals = _evaluations(result)
    for check in ("published_columns", "no_pii_in_files"):
        assert evals[(name, check)].passed, evals[(name, check)].description


def test_opportunity_credit_columns_and_types(demo_graph):
    _, tmp, _ = demo_graph
    models = model_names()
    assert list(EXTRACT_COLUMNS["opportunity_credit"]) == [
        "opportunity_key", "touchpoint_key", "opportunity_created_date", "opportunity_month", "sales_segment",
        "channel_group", "channel_name", "campaign_key", "touchpoint_type", "touchpoint_date", "days_before_opportunity", "touch_order",
        "touch_count", "lookback_days", "pipeline_amount", "is_won", *(f"credit_{m}" for m in models),
        *(f"attributed_pipeline_{m}" for m in models), *(f"attributed_revenue_{m}" for m in models), "dictionary_version"]
    schema = pq.read_schema(tmp / "extracts" / "opportunity_credit.parquet")
    assert str(schema.field("opportunity_created_date").type) == "date32[day]" and str(schema.field("is_won").type) == "bool"
    assert str(schema.field("touch_order").type) == "int64" and str(schema.field("credit_markov").type) == "double"
    per_model = " + ".join(
        f"""(abs(attributed_pipeline_{m} - credit_{m} * pipeline_amount) > 1e-6)::INT + (NOT is_won AND attributed_revenue_{m} <> 0)::INT""" for m in models)
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        roi_models = {r[0] for r in con.execute("SELECT DISTINCT attribution_model FROM extracts.marketing_roi").fetchall()}
        n, touches, untouched = con.execute(
            """SELECT (SELECT count(*) FROM extracts.opportunity_credit), (SELECT count(*) FROM attribution.attribution_credits),
                      (SELECT count(*) FROM sources.crm_opportunities ANTI JOIN attribution.attribution_credits USING (opportunity_id))""").fetchone()
        bad = con.execute(
            f"""SELECT coalesce(sum({per_model}), 0),
                      count(*) FILTER (WHERE opportunity_month <> date_trunc('month', opportunity_created_date)),
                      count(*) FILTER (WHERE campaign_key IS NULL OR channel_group IS NULL)
               FROM extracts.opportunity_credit"""
        ).fetchone()
        distinct = con.execute(f"SELECT {', '.join(f'count(DISTINCT credit_{m})' for m in models)} FROM extracts.opportunity_credit").fetchone()
    assert set(models) == roi_models
    assert untouched > 0 and n == touches + untouched  # one row per touch (every model's credit in it), one per untouched opportunity
    assert bad == (0, 0, 0)
    assert len(set(distinct)) > 1  # the models' credit columns are not copies of one another
    assert extract_formats("opportunity_credit") == ("parquet",) and not (tmp / "extracts" / "opportunity_credit.csv").exists()


# ------------------------------------------------------------------------------------------------ no personal data


def test_opportunity_credit_has_no_raw_identifier_or_contact_column(demo_graph):
    _, tmp, _ = demo_graph
    frame = pd.read_parquet(tmp / "extracts" / "opportunity_credit.parquet")
    assert not [c for c in frame.columns if c.endswith("_id") or any(w in c for w in ("email", "contact", "account", "name_first", "phone"))]
    text = set()
    for col in frame.columns:
        if frame[col].dtype == object:
            text |= set(frame[col].dropna().astype(str))
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        raw = set()
        for sql in ("SELECT DISTINCT opportunity_id FROM attribution.attribution_credits", "SELECT DISTINCT touchpoint_id FROM attribution.attribution_credits",
                    "SELECT DISTINCT contact_id FROM attribution.attribution_credits", "SELECT DISTINCT account_id FROM attribution.attribution_credits",
                    "SELECT DISTINCT email FROM sources.crm_contacts WHERE email IS NOT NULL"):
            raw |= {str(r[0]) for r in con.execute(sql).fetchall()}
        opp_ids = [r[0] for r in con.execute("SELECT DISTINCT opportunity_id FROM sources.crm_opportunities").fetchall()]
        tp_ids = [r[0] for r in con.execute("SELECT DISTINCT touchpoint_id FROM attribution.attribution_credits").fetchall()]
    assert raw and not (text & raw)
    # the keys are the project's keyed pseudonyms (Python's HMAC) of the raw ids
    key = TEST_PSEUDONYM_KEY.encode()
    assert set(pseudonymise(pd.Series(opp_ids), key, "opp_")) == set(frame["opportunity_key"])
    assert set(pseudonymise(pd.Series(tp_ids), key, "tp_")) == set(frame["touchpoint_key"].dropna())
    assert frame.loc[frame["touchpoint_key"].isna(), "channel_group"].eq("(unattributed)").all()


@pytest.mark.parametrize("key", [b"k", b"a-secret-key", "ünïcode key".encode(), b"x" * 64, b"y" * 100])
def test_pseudonym_in_duckdb_equals_python_hmac(key):
    values = ["opp-1", "0061a000004AbCdE", "ünï ☃", "", "a'quote", "x" * 300, None]
    with duckdb.connect() as con:
        register_pseudonym(con, key)
        con.execute("CREATE TABLE t AS SELECT unnest($1::VARCHAR[]) AS v", [values])
        got = dict(con.execute("SELECT v, pseudonym('opp_', v) FROM t WHERE v IS NOT NULL").fetchall())
        (null,) = con.execute("SELECT pseudonym('opp_', NULL::VARCHAR)").fetchone()
        sql_text = " ".join(str(r) for r in con.execute("SELECT * FROM duckdb_functions() WHERE function_name = 'pseudonym'").fetchall())
    for v in values[:-1]:
        assert got[v] == "opp_" + hmac.new(key, v.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
        assert got[v] == pseudonymise(pd.Series([v]), key, "opp_")[0]
    assert null is None
    assert key.hex() not in sql_text  # the key is bound, never written into SQL text


def test_pii_in_the_drill_down_file_fails_its_check(demo_graph, tmp_path):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    with duckdb.connect() as con:
        path = tmp / "extracts" / "opportunity_credit.parquet"
        con.execute(f"""COPY (SELECT * REPLACE (CASE WHEN touch_order = 1 THEN 'jane.doe@acme.com' ELSE channel_name END AS channel_name)
                              FROM read_parquet('{path}')) TO '{tmp / "tampered.parquet"}' (FORMAT parquet)""")
        shutil.move(tmp / "tampered.parquet", path)
    evals = rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, "opportunity_credit"]))
    assert not evals["no_pii_in_files"].passed and "channel_name" in evals["no_pii_in_files"].description
    assert "jane" not in str(evals["no_pii_in_files"].metadata) and "acme" not in evals["no_pii_in_files"].description
    assert evals["published_columns"].passed


def _keys_file(tmp_path, rows: list[tuple]) -> dict:
    path = tmp_path / "keys.parquet"
    frame = pd.DataFrame(rows, columns=["opportunity_key", "touchpoint_key", "channel_group", "channel_name"])
    frame.to_parquet(path, index=False)
    return {"parquet": path}


OPP, TP = "opp_" + "0123456789abcdef", "tp_" + "fedcba9876543210"
KEY_AUDITS = [  # (rows, passes, named in the description)
    ([(OPP, TP, "Email", "Newsletter"), (OPP, None, "(unattributed)", "(unattributed)")], True, ""),
    ([(OPP, TP, "Email", "Newsletter"), ("0061a000004AbCdE", TP, "Email", "Newsletter")], False, "1 values of keys.parquet:opportunity_key"),
    ([(OPP, "tp_" + "FEDCBA9876543210", "Email", "Newsletter")], False, "keys.parquet:touchpoint_key"),  # uppercase: not our HMAC
    ([(OPP, TP + "0", "Email", "Newsletter")], False, "keys.parquet:touchpoint_key"),  # too long
    ([(OPP, "jane.doe@acme.com", "Email", "Newsletter")], False, "keys.parquet:touchpoint_key"),
    ([(OPP, None, "Email", "Newsletter")], False, "keys.parquet:touchpoint_key"),  # NULL only on unattributed rows
    ([(None, None, "(unattributed)", "(unattributed)")], False, "keys.parquet:opportunity_key"),  # never NULL
    ([(OPP, TP, "Email", "call +1 (555) 123-4567")], False, "keys.parquet:channel_name"),
    ([(OPP, TP, "jane.doe@acme.com", "Newsletter")], False, "keys.parquet:channel_group"),
]


def test_pseudonym_audit_fails_on_a_missing_key_column(tmp_path):
    files = _keys_file(tmp_path, [(OPP, TP, "Email", "Newsletter")])
    pd.read_parquet(files["parquet"]).rename(columns={"touchpoint_key": "touchpoint_id"}).to_parquet(files["parquet"], index=False)
    result = audit_pseudonymised_at_scale(files, PSEUDONYM_COLUMNS["opportunity_credit"])
    assert not result.passed and "keys.parquet:touchpoint_key is missing" in result.description


@pytest.mark.parametrize(("rows", "passes", "named"), KEY_AUDITS, ids=[str(i) for i in range(len(KEY_AUDITS))])
def test_pseudonym_audit_requires_every_key_to_be_a_pseudonym(tmp_path, rows, passes, named):
    result = audit_pseudonymised_at_scale(_keys_file(tmp_path, rows), PSEUDONYM_COLUMNS["opportunity_credit"])
    assert result.audit == "no_pii_in_files" and result.passed is passes and named in result.description, result.description
    assert not any(v in str(result.metadata) + result.description for v in ("0061a000004AbCdE", "jane.doe", "555) 123"))  # counts, masked samples


def test_non_pseudonym_key_in_the_drill_down_file_fails_its_check(demo_graph, tmp_path):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    path = tmp / "extracts" / "opportunity_credit.parquet"
    with duckdb.connect() as con:  # a raw-looking id that no e-mail or phone pattern would catch
        con.execute(f"""COPY (SELECT * REPLACE (CASE WHEN touch_order = 2 THEN 'OPP-000123' ELSE opportunity_key END AS opportunity_key)
                              FROM read_parquet('{path}')) TO '{tmp / "tampered.parquet"}' (FORMAT parquet)""")
        shutil.move(tmp / "tampered.parquet", path)
    evals = rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, "opportunity_credit"]))
    assert not evals["no_pii_in_files"].passed and "opportunity_key are not pseudonyms" in evals["no_pii_in_files"].description
    assert evals["no_pii_in_files"].metadata["non_pseudonym_values"].value["opportunity_credit.parquet:opportunity_key"] > 0
    assert "OPP-000123" not in str(evals["no_pii_in_files"].metadata) + evals["no_pii_in_files"].description


def test_renamed_column_in_a_copy_fails_the_published_column_check(demo_graph, tmp_path):
    from marketing_assets.lib.publish import audit_file_schema, extract_files

    tmp, _ = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    files = extract_files(tmp / "extracts", "mmm_channels")
    frame = pd.read_parquet(files["parquet"]).rename(columns={"roi": "return"})
    frame.to_parquet(files["parquet"], index=False)
    assert not audit_file_schema(files, EXTRACT_COLUMNS["mmm_channels"]).passed
    frame = pd.read_parquet(files["parquet"]).rename(columns={"return": "roi"}).assign(decay=lambda f: f["decay"].astype(str))
    frame.to_parquet(files["parquet"], index=False)
    result = audit_file_schema(files, EXTRACT_COLUMNS["mmm_channels"])
    assert not result.passed and "decay is string" in result.description


# ------------------------------------------------------------------------------------------------ numbers agree


def _long() -> str:
    """The drill-down in long form (one row per touch × model), read here independently of the checks' SQL."""
    per_model = [f"{p}_{m}" for p in ("credit", "attributed_pipeline", "attributed_revenue") for m in model_names()]
    return " UNION ALL ".join(
        f"""SELECT * EXCLUDE ({", ".join(per_model)}), '{m}' AS attribution_model, credit_{m} AS credit,
                   attributed_pipeline_{m} AS attributed_pipeline, attributed_revenue_{m} AS attributed_revenue FROM extracts.opportunity_credit"""
        for m in model_names())


def test_drill_down_reconciles_with_marketing_roi(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        start, end = con.execute("SELECT min(period_start), max(period_end) FROM extracts.marketing_roi").fetchone()
        frame = con.execute(
            f"""SELECT r.attribution_model, r.channel_group, r.attributed_pipeline AS roi, coalesce(x.pipeline, 0) AS drill
                FROM extracts.marketing_roi r LEFT JOIN (
                    SELECT attribution_model, channel_group, sum(attributed_pipeline) AS pipeline FROM ({_long()})
                    WHERE opportunity_created_date BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY ALL) x USING (attribution_model, channel_group)
                WHERE r.level = 'channel' AND r.attributed_pipeline IS NOT NULL"""
        ).df()
    assert len(frame) > 10 and (frame["roi"] - frame["drill"]).abs().max() <= 0.01
    assert frame["channel_group"].eq("(unattributed)").any()  # opportunities without a touch are in the drill-down too


def test_unattributed_rows_complete_the_drill_down(demo_graph):
    """Per model × channel group × campaign, the drill-down's attributed pipeline = attribution_by_campaign's (its NULL
    campaign_key is "(no campaign)"); an opportunity without a touch has one row, credited 1 under every model."""
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(
            f"""WITH src AS (
                   SELECT model AS attribution_model, channel_group,
                          coalesce(campaign_key, '(no campaign)') AS campaign_key,
                          sum(pipeline_amount) AS expected
                   FROM attribution.attribution_by_campaign GROUP BY ALL),
               ext AS (SELECT attribution_model, channel_group, campaign_key, sum(attributed_pipeline) AS drill FROM ({_long()}) GROUP BY ALL)
               SELECT * FROM src FULL JOIN ext USING (attribution_model, channel_group, campaign_key)"""
        ).df()
        rows = con.execute(
            f"""SELECT attribution_model, count(*), count(DISTINCT opportunity_key), count(*) FILTER (WHERE credit = 1 AND attributed_pipeline = pipeline_amount
                      AND campaign_key = '(no campaign)' AND channel_name = '(unattributed)' AND touchpoint_key IS NULL AND touch_order IS NULL
                      AND touchpoint_date IS NULL AND touchpoint_type IS NULL AND touch_count = 0 AND (is_won OR attributed_revenue = 0))
               FROM ({_long()}) WHERE touchpoint_key IS NULL GROUP BY ALL"""
        ).fetchall()
        (rows_untouched,) = con.execute("SELECT count(*) FROM extracts.opportunity_credit WHERE touchpoint_key IS NULL").fetchone()
        untouched, won = con.execute(
            """SELECT count(*), coalesce(sum(won_amount) FILTER (WHERE is_won), 0)::DOUBLE
               FROM sources.crm_opportunities ANTI JOIN attribution.attribution_credits USING (opportunity_id)""").fetchone()
        revenue = dict(con.execute(f"SELECT attribution_model, sum(attributed_revenue) FROM ({_long()}) WHERE touchpoint_key IS NULL GROUP BY ALL").fetchall())
    assert frame["expected"].notna().all() and frame["drill"].notna().all(), frame[frame.isna().any(axis=1)]
    assert (frame["expected"] - frame["drill"]).abs().max() <= 0.01 and frame["channel_group"].eq("(unattributed)").sum() == len(model_names())
    assert untouched > 0 and rows_untouched == untouched and sorted(r[0] for r in rows) == sorted(model_names())
    assert all(n == distinct == untouched == ok for _, n, distinct, ok in rows)
    assert all(abs(v - won) <= 0.01 for v in revenue.values()) and len(revenue) == len(model_names())


def _one_row_drill_down(channel_group: str = "(unattributed)") -> str:
    """opportunity_credit's SELECT for one unattributed row of opportunity OPP."""
    select = bi_datasets.empty_sql(EXTRACT_COLUMNS["opportunity_credit"]).replace(" WHERE false", "")
    return select.replace("CAST(NULL AS VARCHAR) AS \"opportunity_key\"", f"'{OPP}' AS opportunity_key").replace(
        "CAST(NULL AS VARCHAR) AS \"channel_group\"", f"'{channel_group}' AS channel_group")


def _kind(con, name: str) -> str | None:
    rows = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'extracts' AND table_name = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def test_parquet_only_publication_writes_no_csv_and_retires_an_old_one(tmp_path):
    from marketing_assets.extracts import publish_sql_extract

    warehouse = _warehouse(tmp_path)
    (tmp_path / "extracts").mkdir()
    stale = tmp_path / "extracts" / "opportunity_credit.csv"
    stale.write_text("opportunity_key\nopp_0000000000000000\n")
    select = _one_row_drill_down()
    with warehouse.get_connection() as con:
        meta = publish_sql_extract(dg.build_asset_context(), warehouse, con, "opportunity_credit", select)
        assert con.execute("SELECT opportunity_key FROM extracts.opportunity_credit").fetchall() == [(OPP,)]
    assert meta["files"] == [str(tmp_path / "extracts" / "opportunity_credit.parquet")] and not stale.exists()
    assert sorted(p.name for p in (tmp_path / "extracts").iterdir()) == ["opportunity_credit.parquet"]
    check = next(c for c in extract_checks.extract_checks if any(s.asset_key.path[-1] == "opportunity_credit" and s.name == "published_columns" for s in c.check_specs))
    assert check(warehouse=warehouse).passed


def test_drill_down_is_a_view_over_its_published_file_replacing_a_table(tmp_path):
    from marketing_assets.extracts import FILE_VIEWS, publish_sql_extract

    warehouse = _warehouse(tmp_path)
    parquet = tmp_path / "extracts" / "opportunity_credit.parquet"
    with warehouse.get_connection() as con:
        con.execute("CREATE SCHEMA extracts")
        con.execute("CREATE TABLE extracts.opportunity_credit AS SELECT 1 AS old_column")  # as published before
        publish_sql_extract(dg.build_asset_context(), warehouse, con, "opportunity_credit", _one_row_drill_down(), ordered=False)
        assert "opportunity_credit" in FILE_VIEWS and _kind(con, "opportunity_credit") == "VIEW"
        (definition,) = con.execute("SELECT sql FROM duckdb_views() WHERE schema_name = 'extracts' AND view_name = 'opportunity_credit'").fetchone()
        assert f"read_parquet('{parquet.resolve()}')" in definition  # the absolute path of the published file
        assert con.execute("SELECT opportunity_key, channel_group FROM extracts.opportunity_credit").fetchall() == [(OPP, "(unattributed)")]
    # the view reads the file: what is published is what the warehouse shows, without a copy of the rows
    pd.read_parquet(parquet).assign(channel_group="Email").to_parquet(parquet, index=False)
    with warehouse.get_connection() as con:
        assert con.execute("SELECT channel_group FROM extracts.opportunity_credit").fetchall() == [("Email",)]


def test_failed_audit_keeps_the_previous_view_and_file(tmp_path):
    from marketing_assets.extracts import publish_sql_extract

    warehouse = _warehouse(tmp_path)
    parquet = tmp_path / "extracts" / "opportunity_credit.parquet"
    with warehouse.get_connection() as con:
        publish_sql_extract(dg.build_asset_context(), warehouse, con, "opportunity_credit", _one_row_drill_down())
        before = parquet.read_bytes()
        with pytest.raises(dg.Failure, match="opportunity_credit not published: audit no_pii_in_files failed"):
            publish_sql_extract(dg.build_asset_context(), warehouse, con, "opportunity_credit", _one_row_drill_down("jane.doe@acme.com"))
        assert _kind(con, "opportunity_credit") == "VIEW" and parquet.read_bytes() == before
        assert con.execute("SELECT channel_group FROM extracts.opportunity_credit").fetchall() == [("(unattributed)",)]
    assert sorted(p.name for p in (tmp_path / "extracts").iterdir()) == ["opportunity_credit.parquet"]  # no staging left


class _NoViewsEngine:
    """A DuckDB connection presented as another engine (``con.engine``), as Spark, which stores no view in a schema."""

    engine = "spark"

    def __init__(self, con):
        self._con = con

    def execute(self, sql, parameters=None):
        return self._con.execute(sql, parameters) if parameters is not None else self._con.execute(sql)


def test_drill_down_stays_a_table_on_an_engine_without_views(tmp_path):
    from marketing_assets.extracts import publish_sql_extract

    warehouse = _warehouse(tmp_path)
    with warehouse.get_connection() as con:
        meta = publish_sql_extract(dg.build_asset_context(), warehouse, _NoViewsEngine(con), "opportunity_credit", _one_row_drill_down(), ordered=False)
        assert _kind(con, "opportunity_credit") == "BASE TABLE" and meta["dagster/row_count"] == 1
        assert con.execute("SELECT opportunity_key FROM extracts.opportunity_credit").fetchall() == [(OPP,)]
    assert pd.read_parquet(tmp_path / "extracts" / "opportunity_credit.parquet")["opportunity_key"].tolist() == [OPP]


@pytest.mark.parametrize(("check", "name"), [("reconciles_with_marketing_roi", "opportunity_credit"), ("credits_sum_to_one", "opportunity_credit"),
                                             *[("matches_warehouse_table", n) for n in COPIES]])
def test_new_checks_pass_blocking_on_demo_data(demo_graph, check, name):
    ev = _evaluations(demo_graph[0])[(name, check)]
    assert ev.passed and not ev.metadata.get("skipped"), ev.description
    assert ev.severity == dg.AssetCheckSeverity.ERROR


def _tampered(demo_graph, tmp_path, sql: str, check) -> dg.AssetCheckResult:
    tmp, _ = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        if OC in sql:  # a view over the demo's published file (FILE_VIEWS): tampered as a private table of its rows
            con.execute(f"CREATE TABLE extracts._oc AS FROM {OC}; DROP VIEW {OC}; ALTER TABLE extracts._oc RENAME TO opportunity_credit")
        con.execute(sql)
    return check(warehouse=_warehouse(tmp))


OC = "extracts.opportunity_credit"
ONE_ROW = f"rowid = (SELECT min(rowid) FROM {OC} WHERE credit_linear > 0 AND credit_linear < 1)"
IN_WINDOW = f"""rowid = (SELECT min(rowid) FROM {OC} WHERE attributed_pipeline_linear > 0
                                AND opportunity_created_date >= (SELECT max(period_start) FROM extracts.marketing_roi))"""
TAMPER = [
    (extract_checks.opportunity_credit_reconciles,
     f"UPDATE {OC} SET attributed_pipeline_linear = attributed_pipeline_linear * 1.1 WHERE channel_group = 'Paid Search'",
     "linear/Paid Search pipeline"),
    (extract_checks.opportunity_credit_reconciles, f"UPDATE {OC} SET attributed_pipeline_linear = attributed_pipeline_linear + 0.02 WHERE {IN_WINDOW}",
     "linear/"),
    (extract_checks.opportunity_credit_reconciles,
     f"UPDATE {OC} SET attributed_revenue_shapley = attributed_revenue_shapley * 2 WHERE channel_group = 'Email'",
     "shapley/Email revenue (all time)"),
    (extract_checks.opportunity_credit_sums_to_one, f"UPDATE {OC} SET credit_linear = credit_linear + 1e-6 WHERE {ONE_ROW}", "'linear': 1"),
    (extract_checks.opportunity_credit_sums_to_one, f"ALTER TABLE {OC} DROP COLUMN credit_markov", "models without a credit column: ['markov']"),
    (extract_checks.opportunity_credit_sums_to_one, f"UPDATE {OC} SET credit_linear = NULL WHERE {ONE_ROW}", "'linear': 1"),
    (extract_checks.opportunity_credit_reconciles, f"UPDATE {OC} SET attributed_pipeline_linear = 0 WHERE touchpoint_key IS NULL",
     "linear/(unattributed)/(no campaign) pipeline vs attribution_by_campaign"),
    (extract_checks.opportunity_credit_sums_to_one,
     f"UPDATE {OC} SET credit_markov = 0.5 WHERE touchpoint_key IS NULL AND pipeline_amount <> 0", "'markov'"),
]


@pytest.mark.parametrize(("check", "sql", "named"), TAMPER, ids=[str(i) for i in range(len(TAMPER))])
def test_drill_down_checks_fail_on_corrupted_data(demo_graph, tmp_path, check, sql, named):
    result = _tampered(demo_graph, tmp_path, sql, check)
    assert not result.passed and named in result.description, result.description


COPY_TAMPER = {
    "mmm_weekly": "UPDATE extracts.mmm_weekly SET contribution = contribution * 1.01 WHERE component = (SELECT min(component) FROM extracts.mmm_weekly WHERE component_kind = 'media')",
    "mmm_channels": "DELETE FROM extracts.mmm_channels WHERE rowid = (SELECT min(rowid) FROM extracts.mmm_channels)",
    "mmm_response_curves": "UPDATE extracts.mmm_response_curves SET mroi = mroi + 1 WHERE rowid = 3",
    "mmm_budget_plan": "UPDATE extracts.mmm_budget_plan SET scenario_spend = scenario_spend + 100 WHERE rowid = 0",
    "mmm_lift_tests": "INSERT INTO extracts.mmm_lift_tests SELECT * FROM extracts.mmm_lift_tests LIMIT 1",
    "attribution_model_comparison": "UPDATE extracts.attribution_model_comparison SET share = share * 2 WHERE rowid = 1",
}


@pytest.mark.parametrize("name", COPIES)
def test_matches_warehouse_table_fails_on_a_changed_copy(demo_graph, tmp_path, name):
    tmp, _ = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute(COPY_TAMPER[name])
    check = next(c for c in extract_checks.extract_checks if any(s.asset_key.path[-1] == name and s.name == "matches_warehouse_table" for s in c.check_specs))
    result = check(warehouse=_warehouse(tmp))
    assert not result.passed, result.description


def test_matches_warehouse_table_fails_when_the_source_changed(demo_graph, tmp_path):
    tmp, _ = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute("UPDATE mmm.mmm_model SET spend = spend * 2")
    check = next(c for c in extract_checks.extract_checks if any(s.asset_key.path[-1] == "mmm_channels" and s.name == "matches_warehouse_table" for s in c.check_specs))
    result = check(warehouse=_warehouse(tmp))
    assert not result.passed and "sum(spend)" in result.description


# ------------------------------------------------------------------------------------------------ MMM copies


def test_mmm_weekly_is_long_with_media_channels_from_the_model(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        weekly = con.execute("SELECT * FROM extracts.mmm_weekly").df()
        channels = con.execute("SELECT channel, channel_group FROM mmm.mmm_model").df()
        weeks = con.execute("SELECT count(*) FROM mmm.mmm_contributions").fetchone()[0]
    media = weekly[weekly["component_kind"] == "media"]
    assert set(media["component"]) == set(channels["channel"]) and media["channel_group"].notna().all()
    assert dict(zip(channels["channel"], channels["channel_group"])) == dict(media[["component", "channel_group"]].drop_duplicates().values)
    base = weekly[weekly["component_kind"] == "base"]
    assert {"baseline", "trend", "seasonality"} <= set(base["component"]) and base["channel_group"].isna().all()
    assert weekly.groupby("week").size().eq(weekly["component"].nunique()).all() and weekly["week"].nunique() == weeks


def test_response_curves_flag_the_current_spend_point(demo_graph):
    _, tmp, _ = demo_graph
    curves = pd.read_parquet(tmp / "extracts" / "mmm_response_curves.parquet")
    current = curves[curves["is_current_spend"]]
    assert (current["share_of_current_spend"] == 1).all() and sorted(current["channel"]) == sorted(curves["channel"].unique())


def test_copies_of_absent_tables_are_empty_with_the_contract_columns():
    with duckdb.connect() as con:  # no mmm or attribution schema at all: the upstream was skipped
        for name in TABLE_COPIES:
            frame = con.execute(table_copy_sql(con, name)).df()
            assert frame.empty and list(frame.columns) == list(EXTRACT_COLUMNS[name]), name
        frame = con.execute(mmm_weekly_sql(con)).df()
        assert frame.empty and list(frame.columns) == list(EXTRACT_COLUMNS["mmm_weekly"])
        con.execute("CREATE SCHEMA mmm")
        con.execute("CREATE TABLE mmm.mmm_contributions (week TIMESTAMP, actual DOUBLE)")  # the table of an unfitted model
        con.execute("CREATE TABLE mmm.mmm_model (channel VARCHAR, channel_group VARCHAR)")
        assert con.execute(mmm_weekly_sql(con)).df().empty
        con.execute("CREATE TABLE mmm.mmm_budget_plan (scenario VARCHAR, channel VARCHAR)")  # columns missing: published empty
        frame = con.execute(table_copy_sql(con, "mmm_budget_plan")).df()
        assert frame.empty and list(frame.columns) == list(EXTRACT_COLUMNS["mmm_budget_plan"])


def test_copy_sql_reads_only_its_table():
    from marketing_assets.lib.refs import refs_of

    for name, (schema, table, _, _) in TABLE_COPIES.items():
        assert refs_of(table_copy_sql, None, name) == [(schema, table)]
    assert set(refs_of(bi_datasets.opportunity_credit_sql, "(no campaign)", 1)) == {("attribution", "attribution_credits"), ("sources", "crm_opportunities")}


# ------------------------------------------------------------------------------------------------ data-quality report


def test_data_quality_report_counts_quarantined_rows_per_table_and_reason(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT asset_key, metric, value, description FROM extracts.data_quality_report WHERE section = 'quarantine'").df()
        expected = con.execute(
            """SELECT 'sources/' || table_name AS asset_key, reason AS metric, count(DISTINCT (source_file, source_line))::DOUBLE AS value
               FROM sources.quarantine GROUP BY ALL"""
        ).df()
        raw = {str(r[0]) for r in con.execute("SELECT DISTINCT raw_value FROM sources.quarantine WHERE raw_value IS NOT NULL").fetchall()}
    assert len(expected) and sorted(map(tuple, rows[["asset_key", "metric", "value"]].values)) == sorted(map(tuple, expected.values))
    assert not any(v in d for d in rows["description"] for v in raw if len(v) > 3)  # counts only, never a value


def test_open_alerts_become_rows_without_contact_details(tmp_path):
    alerts = Alerts(alerts_file=str(tmp_path / "alerts.jsonl"))
    lines = [
        {"alert_id": "a1", "kind": "asset_check", "asset_key": "extracts/funnel", "check_name": "reconciles_with_crm", "ts": "2026-12-01T05:00:00+00:00",
         "severity": "ERROR", "description": "older"},
        {"alert_id": "a2", "kind": "asset_check", "asset_key": "extracts/funnel", "check_name": "reconciles_with_crm", "ts": "2026-12-02T05:00:00+00:00",
         "severity": "ERROR", "description": "3 figures differ; contact jane.doe@acme.com"},
        {"alert_id": "a3", "kind": "asset_check", "asset_key": "sources/crm_contacts", "check_name": "freshness", "ts": "2026-12-02T05:00:00+00:00",
         "severity": "WARN", "description": "stale"},
        {"alert_id": "a4", "kind": "run_failure", "ts": "2026-12-02T05:00:00+00:00", "severity": "ERROR", "description": "run failed"},
    ]
    (tmp_path / "alerts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in lines), encoding="utf-8")
    alerts.save_check_states({"extracts/funnel:reconciles_with_crm": "ERROR", "sources/crm_contacts:freshness": "passed"})
    rows = alert_rows(alerts)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row.section, row.asset_key, row.check_name, row.severity, row.status) == ("alert", "extracts/funnel", "reconciles_with_crm", "ERROR", "open")
    assert "jane.doe" not in row.description and row.description.startswith("3 figures differ")
    assert alert_rows(Alerts(alerts_file=str(tmp_path / "none.jsonl"))).empty


# ------------------------------------------------------------------------------------------------ write-audit-publish at scale


def _lift_sql(channel: str) -> str:
    return f"""SELECT '{channel}' AS channel, DATE '2026-01-05' AS start_date, DATE '2026-02-01' AS end_date, 10.0::DOUBLE AS lift,
                      1.0::DOUBLE AS lift_se, 9.5::DOUBLE AS predicted_lift, -0.5::DOUBLE AS z"""


def test_a_failed_audit_of_a_duckdb_written_extract_publishes_nothing(tmp_path):
    from marketing_assets.extracts import publish_sql_extract
    from marketing_assets.lib.publish import extract_files

    warehouse = _warehouse(tmp_path)
    files = extract_files(tmp_path / "extracts", "mmm_lift_tests")
    context = dg.build_asset_context()
    with warehouse.get_connection() as con:
        meta = publish_sql_extract(context, warehouse, con, "mmm_lift_tests", _lift_sql("meta"))
        assert meta["dagster/row_count"] == 1
        with pytest.raises(dg.Failure, match="no_pii_in_files"):
            publish_sql_extract(context, warehouse, con, "mmm_lift_tests", _lift_sql("call +1 (555) 123-4567"))
        with pytest.raises(dg.Failure, match="published_columns"):
            publish_sql_extract(context, warehouse, con, "mmm_lift_tests", _lift_sql("meta").replace("AS z", "AS zed"))
        with pytest.raises(dg.Failure, match="lift is decimal"):  # a type other than the published one
            publish_sql_extract(context, warehouse, con, "mmm_lift_tests", _lift_sql("meta").replace("10.0::DOUBLE", "10.0"))
        assert con.execute("SELECT channel FROM extracts.mmm_lift_tests").fetchall() == [("meta",)]  # rolled back
    assert pd.read_parquet(files["parquet"])["channel"].tolist() == ["meta"] == pd.read_csv(files["csv"])["channel"].tolist()
    assert not (tmp_path / "extracts" / ".staging").exists()


def test_pii_scan_at_scale_reads_text_columns_and_fails_past_its_bound(tmp_path):
    from marketing_assets.lib.publish import audit_no_pii_at_scale

    with duckdb.connect() as con:
        con.execute("""CREATE TABLE t AS SELECT 'tp_' || substr(sha256(i::VARCHAR), 1, 16) AS touchpoint_key, 1234567.891234 * i AS amount,
                       'row ' || i AS note FROM range(5000) r(i)""")
        con.execute(f"COPY t TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)")
        con.execute(f"COPY t TO '{tmp_path / 'x.csv'}' (FORMAT csv, HEADER true)")
        files = {"parquet": tmp_path / "x.parquet", "csv": tmp_path / "x.csv"}
        assert audit_no_pii_at_scale(files).passed  # keys and big numbers are no phone numbers
        con.execute("UPDATE t SET note = 'mail jane.doe@acme.com' WHERE touchpoint_key = (SELECT min(touchpoint_key) FROM t)")
        con.execute(f"COPY t TO '{tmp_path / 'x.csv'}' (FORMAT csv, HEADER true)")
    result = audit_no_pii_at_scale(files)
    assert not result.passed and "x.csv:note" in result.description
    con = duckdb.connect()
    con.execute(f"COPY (SELECT '+1 555 ' || (1000000 + i)::VARCHAR AS note FROM range(50) r(i)) TO '{tmp_path / 'y.parquet'}' (FORMAT parquet)")
    bounded = audit_no_pii_at_scale({"parquet": tmp_path / "y.parquet"}, limit=10)
    assert not bounded.passed and "more than 10 candidate values" in bounded.description


def test_every_published_copy_has_its_warehouse_comparison():
    assert set(extract_checks.COPY_SOURCES) == set(SQL_EXTRACTS) - {"opportunity_credit"} == set(COPIES)
