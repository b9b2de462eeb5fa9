"""The sources group on generated demo data: the quarantine holds exactly the planted bad rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from marketing_assets_tests.conftest import error_check_failures

QKEY = ["table_name", "source_file", "source_line", "column_name", "reason"]


def test_run_succeeds_and_blocking_checks_pass(demo_graph):
    result, _, _ = demo_graph
    assert result.success
    assert error_check_failures(result) == []


def test_quarantine_holds_exactly_the_planted_bad_rows(demo_graph):
    _, tmp, landing = demo_graph
    truth = pd.read_csv(landing / "_truth" / "bad_rows.csv", dtype=str)[QKEY]
    truth["source_line"] = truth["source_line"].astype(int)
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        got = con.execute(f"SELECT {', '.join(QKEY)} FROM sources.quarantine").df()
    as_set = lambda df: set(map(tuple, df[QKEY].astype(str).values.tolist()))  # noqa: E731
    assert len(truth) > 0
    assert as_set(got) == as_set(truth)


def test_exact_duplicates_collapse_as_planted_and_rows_reconcile(demo_graph):
    _, tmp, landing = demo_graph
    dups = pd.read_csv(landing / "_truth" / "exact_duplicates.csv", dtype=str)
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        log = con.execute(
            "SELECT table_name, sum(rows_read) r, sum(rows_staged) s, sum(rows_quarantined) q, sum(duplicates_collapsed) d "
            "FROM sources._ingest_log GROUP BY ALL"
        ).df().set_index("table_name")
        for table, row in log.iterrows():
            (staged,) = con.execute(f"SELECT count(*) FROM sources.{table}").fetchone()
            assert staged == row.s and row.r == row.s + row.q + row.d, table
    assert log["d"].to_dict() == {t: dups["table_name"].eq(t).sum() for t in log.index}


def test_make_run_entrypoint_generates_and_materialises(tmp_path):
    """The real CLI behind `make run`, on an empty landing zone (small demo scale)."""
    env = {
        **os.environ,
        "MARKETING_LANDING_DIR": str(tmp_path / "landing"),
        "MARKETING_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "MARKETING_EXTRACTS_DIR": str(tmp_path / "extracts"),
        "MARKETING_REPORTS_DIR": str(tmp_path / "reports"),
        "MARKETING_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
        "MARKETING_DEMO_SCALE": "small",
    }
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-m", "marketing_assets.run"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo data:" in proc.stdout
    assert "sources/quarantine" in proc.stdout and "checks:" in proc.stdout
    assert (tmp_path / "landing" / "crm").is_dir() and Path(tmp_path / "wh.duckdb").exists()
    assert "(none blocking)" in proc.stdout  # the planted reconciliation gaps fail, without blocking anything
    for name in ("executive", "marketing_roi", "data_quality"):
        assert (tmp_path / "reports" / f"{name}.html").is_file() and f"{name}.html" in proc.stdout
    assert (tmp_path / "extracts" / "marketing_roi.parquet").is_file()
    # A second run keeps the user's landing zone as it is.
    again = subprocess.run(
        [sys.executable, "-m", "marketing_assets.run"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert again.returncode == 0 and "demo data:" not in again.stdout
