"""KPI base tables: built once per run as kpis.<base>, read in place by a KpiScope given them, checked against their definition."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pandas as pd
import pytest

from marketing_assets.constants import KPIS
from marketing_assets.kpi_bases import BASE_TABLES, kpi_reads
from marketing_assets.lib.kpis import (
    BASE_RELATIONS,
    KpiScope,
    base_table_sql,
    compute_kpis,
    kpi_bases_sql,
    load_kpi_dictionary,
)
from marketing_assets.lib.refs import refs_of
from marketing_assets_tests.conftest import checks_after_tampering
from marketing_assets_tests.test_kpis import _CountingConnection, _warehouse


@pytest.fixture(scope="module")
def dictionary():
    return load_kpi_dictionary()


@pytest.fixture(scope="module")
def con(dictionary) -> duckdb.DuckDBPyConnection:
    """test_kpis' hand-made warehouse with every base of BASE_TABLES built as kpis.<base>, as the base assets build them."""
    c = _warehouse()
    c.execute(f"CREATE SCHEMA {KPIS}")
    for base in BASE_TABLES:  # in dependency order
        c.execute(f'CREATE TABLE {KPIS}."{base}" AS {base_table_sql(base, dictionary.parameters, BASE_TABLES)}')
    yield c
    c.close()


def test_base_tables_are_listed_after_the_bases_they_select_from():
    for i, base in enumerate(BASE_TABLES):
        assert all(dep in BASE_TABLES[:i] for dep in BASE_RELATIONS[base].depends_on if dep in BASE_TABLES), base


def test_a_base_table_holds_its_definition_rows(con, dictionary):
    for base in BASE_TABLES:
        definition = con.execute(f"WITH x AS ({KpiScope(con, dictionary).base_sql(base)}) SELECT count(*) FROM (SELECT * FROM x EXCEPT ALL "
                                 f'SELECT * FROM {KPIS}."{base}")').fetchone()[0]
        table = con.execute(f'SELECT count(*) FROM (SELECT * FROM {KPIS}."{base}" EXCEPT ALL ({KpiScope(con, dictionary).base_sql(base)}))').fetchone()[0]
        assert (definition, table) == (0, 0), base


@pytest.mark.parametrize("materialize", [False, True])
@pytest.mark.parametrize(
    ("names", "grain", "dims", "between"),
    [
        (["total_revenue", "gross_margin_pct", "revenue_growth_mom", "blended_roas", "cac", "new_leads", "cost_per_lead"], "month", (), None),
        (["new_leads", "cost_per_lead", "attributed_revenue"], "total", ("channel_group",), (dt.date(2026, 1, 16), dt.date(2026, 2, 28))),
        (["funnel_contacts", "funnel_stage_conversion"], "trailing_3_months", ("stage",), None),
        (["funnel_contacts", "funnel_stage_conversion"], "trailing_3_months", ("stage",), (dt.date(2026, 1, 1), dt.date(2026, 1, 31))),
        (["cohort_customers", "cohort_ltv"], "month", ("channel_group", "months_since_acquisition"), None),
        (["repeat_rate_30d", "new_customers", "cac"], "month", ("channel_group",), None),
    ],
)  # fmt: skip
def test_a_scope_reading_the_base_tables_gives_the_numbers_of_the_definitions(con, dictionary, names, grain, dims, between, materialize):
    defined = compute_kpis(con, names, grain, dims, dictionary=dictionary, between=between)
    with KpiScope(con, dictionary, materialize_bases=materialize, base_tables=BASE_TABLES) as scope:
        read = compute_kpis(con, names, grain, dims, dictionary=dictionary, between=between, scope=scope)
    pd.testing.assert_frame_equal(read, defined)


def test_a_scope_reads_a_base_table_instead_of_building_the_base(con, dictionary):
    counting = _CountingConnection(con)
    with KpiScope(counting, dictionary, materialize_bases=True, base_tables=BASE_TABLES) as scope:
        compute_kpis(counting, ["cohort_ltv", "new_customers", "total_revenue"], "month", dictionary=dictionary, scope=scope)
        assert counting.scans == 0  # no statement reads a source table: customer_months, customers, revenue_lines are tables
        assert scope.base_sql("funnel_stages") == f'SELECT * FROM "{KPIS}"."funnel_stages"'
    # ... and it is the table that counts: a row added to it is a customer more
    con.execute(f'CREATE TEMP TABLE _saved AS SELECT * FROM {KPIS}."customers"')
    try:
        con.execute(f'INSERT INTO {KPIS}."customers" SELECT * REPLACE (customer_id || \'-copy\' AS customer_id) FROM _saved LIMIT 1')
        with KpiScope(con, dictionary, base_tables=BASE_TABLES) as scope:
            more = compute_kpis(con, ["new_customers"], "total", dictionary=dictionary, scope=scope)["value"].sum()
        assert more == compute_kpis(con, ["new_customers"], "total", dictionary=dictionary)["value"].sum() + 1
    finally:
        con.execute(f'DELETE FROM {KPIS}."customers"')
        con.execute(f'INSERT INTO {KPIS}."customers" SELECT * FROM _saved')
        con.execute("DROP TABLE _saved")


def test_a_scope_without_base_tables_builds_every_base_from_its_definition(con, dictionary):
    with KpiScope(con, dictionary, materialize_bases=True) as scope:
        assert "FROM temp." in scope.base_sql("customers") and f'"{KPIS}"' not in scope.base_sql("customers")


def test_an_unknown_base_table_is_refused(con, dictionary):
    with pytest.raises(ValueError, match="not base relations"):
        KpiScope(con, dictionary, base_tables=["revenue_lines", "orders"])


def test_the_tables_a_scope_reads_are_the_base_tables_and_the_sources_of_the_inline_bases(dictionary):
    # cohort KPIs over customer_months and customers (tables); cac also reads spend_days (inline, spend/ad_spend_daily)
    assert set(refs_of(kpi_bases_sql, ["cohort_ltv", "cac"], dictionary, ["customers", "customer_months"])) == {
        (KPIS, "customer_months"), (KPIS, "customers"), ("spend", "ad_spend_daily")}
    # without tables: the dictionary's source_assets (customers' own sources and revenue_lines')
    assert {f"{g}/{t}" for g, t in refs_of(kpi_bases_sql, ["cohort_ltv"], dictionary)} == set(dictionary["cohort_ltv"].source_assets)
    # a base table's own SQL reads the base tables it selects from, not their sources
    assert refs_of(base_table_sql, "customer_months", dictionary.parameters, BASE_TABLES) == [(KPIS, "revenue_lines"), (KPIS, "customers")]
    assert set(kpi_reads(["funnel_contacts"])) == {dg.AssetKey([KPIS, "funnel_stages"])}


def test_every_base_table_check_passes_on_the_demo(demo_graph):
    result, _, _ = demo_graph
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == KPIS}
    assert set(evaluations) == set(BASE_TABLES)
    assert all(e.passed for e in evaluations.values()), {b: e.description for b, e in evaluations.items() if not e.passed}


TAMPER = [
    ("funnel_stages", f"INSERT INTO {KPIS}.funnel_stages SELECT * FROM {KPIS}.funnel_stages LIMIT 1", "duplicated key"),
    ("customers", f"UPDATE {KPIS}.customers SET customer_id = NULL WHERE rowid = 0", "rows with a NULL in the key"),
    ("leads", f"ALTER TABLE {KPIS}.leads DROP COLUMN campaign_key", "differ from the definition"),
    ("customer_months", f"ALTER TABLE {KPIS}.customer_months ALTER cumulative_revenue TYPE VARCHAR", "differ from the definition"),
]


@pytest.mark.parametrize(("base", "sql", "says"), TAMPER, ids=[f"{b}-{s.split()[0].lower()}" for b, s, _ in TAMPER])
def test_a_base_table_check_fails_on_bad_data(demo_graph, tmp_path, base, sql, says):
    ev = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([KPIS, base]), sql)["matches_definition"]
    assert not ev.passed and says in ev.description, ev.description
