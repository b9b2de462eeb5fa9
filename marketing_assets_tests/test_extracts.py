"""Extracts on demo data: files published atomically with the documented columns; checks failing on bad data."""

import shutil

import dagster as dg
import duckdb
import pandas as pd
import pytest

from marketing_assets.constants import EXTRACTS
from marketing_assets.extracts import EXTRACT_COLUMNS
from marketing_assets_tests.conftest import copy_graph, rerun_checks


def test_extracts_are_written_as_parquet_and_csv_with_published_columns(demo_graph):
    result, tmp, _ = demo_graph
    for name, columns in EXTRACT_COLUMNS.items():
        parquet = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
        csv = pd.read_csv(tmp / "extracts" / f"{name}.csv")
        assert list(parquet.columns) == list(columns) == list(csv.columns)
        assert len(parquet) == len(csv) > 0
    checks = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == EXTRACTS]
    assert checks and all(e.passed for e in checks), {e.check_name: e.description for e in checks if not e.passed}
    assert not [p for p in (tmp / "extracts").iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_executive_kpis_come_from_the_dictionary(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        kpis = {r[0] for r in con.execute("SELECT DISTINCT kpi FROM extracts.executive_kpis").fetchall()}
        defined = {r[0] for r in con.execute("SELECT name FROM extracts.kpi_dictionary").fetchall()}
        monthly = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='month' AND kpi='total_revenue' AND dimension IS NULL"
        ).fetchone()[0]
        weekly = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='week' AND kpi='total_revenue' AND dimension IS NULL"
        ).fetchone()[0]
        by_product = con.execute(
            "SELECT sum(value) FROM extracts.executive_kpis WHERE grain='month' AND kpi='revenue_by_product'"
        ).fetchone()[0]
    assert kpis <= defined and {"total_revenue", "gross_margin_pct", "roas", "cac", "inventory_turnover"} <= kpis
    assert weekly == pytest.approx(monthly) and by_product == pytest.approx(monthly)


def _tamper_files(demo_graph, tmp_path, name, mutate):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    frame = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
    frame = mutate(frame)
    frame.to_parquet(tmp / "extracts" / f"{name}.parquet", index=False)
    frame.to_csv(tmp / "extracts" / f"{name}.csv", index=False)
    return rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, name]))


def test_pii_in_an_extract_file_fails_its_check(demo_graph, tmp_path):
    evals = _tamper_files(demo_graph, tmp_path, "executive_kpis", lambda f: f.assign(dimension_value=f["dimension_value"].where(f.index != 0, "jane.doe@acme.com")))
    assert not evals["no_pii_in_files"].passed


def test_renamed_column_fails_the_published_column_check(demo_graph, tmp_path):
    evals = _tamper_files(demo_graph, tmp_path, "kpi_dictionary", lambda f: f.rename(columns={"owner": "team"}))
    assert not evals["published_columns"].passed


def test_revenue_that_does_not_reconcile_with_erp_fails(demo_graph, tmp_path):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    shutil.copytree(demo_graph[1] / "extracts", tmp / "extracts")
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute("UPDATE extracts.executive_kpis SET value = value * 1.01 WHERE kpi = 'total_revenue' AND grain = 'month' AND rowid % 7 = 0")
    assert not rerun_checks(tmp, landing, dg.AssetKey([EXTRACTS, "executive_kpis"]))["revenue_reconciles_with_erp"].passed
