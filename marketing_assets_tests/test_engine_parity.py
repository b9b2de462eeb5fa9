"""The same landing zone through both engines: the same warehouse, extracts, quarantine and check outcomes.

The small demo is materialised once on DuckDB (conftest ``demo_graph``) and here again, whole graph and every check,
on Spark (the shared local session; tables as Parquet directories). Every table and every published extract is then
compared in DuckDB (:func:`marketing_assets.lib.parity.compare_relations`): rows paired by the contract's key,
strings, integers and dates exact, numbers within 1e-9 relative. The quarantine is a table like any other (same
rows, same reasons). Each silent difference between the engines has its own test in ``test_dialect.py``.

Skipped without Java or pyspark unless ``MARKETING_REQUIRE_SPARK=1`` (CI).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from marketing_assets.lib.parity import compare_relations, contract_key
from marketing_assets.lib.sql import literal
from marketing_assets.resources import Warehouse

from marketing_assets_tests.conftest import TEST_PSEUDONYM_KEY, make_resources

REL_TOL = 1e-9

# What is not the data and so differs between any two runs, whatever the engine: when and how fast a table or extract was
# written. Compared: everything else.
RUN_COLUMNS = frozenset({"run_id", "evaluated_at", "ingested_at", "fitted_at", "fit_seconds"})


def _models() -> dict[str, type]:
    from marketing_assets import schemas

    models: dict[str, type] = {}
    for name in dir(schemas):
        value = getattr(schemas, name)
        if name.endswith("_MODELS") and isinstance(value, dict):
            models.update(value)
    return models


@pytest.fixture(scope="module")
def spark_graph(demo_graph, spark, tmp_path_factory):
    import dagster as dg

    from marketing_assets.checks import all_checks
    from marketing_assets.definitions import defs

    _, _, landing = demo_graph
    tmp = tmp_path_factory.mktemp("spark_graph")
    resources = make_resources(tmp, landing)
    resources["warehouse"] = Warehouse(
        database=str(tmp / "warehouse.duckdb"), extracts_dir=str(tmp / "extracts"), reports_dir=str(tmp / "reports"),
        pseudonym_key=TEST_PSEUDONYM_KEY, engine="spark", spark_warehouse=str(tmp / "spark"), spark_master="local[1]",
    )
    result = dg.materialize([*defs.assets, *all_checks], resources=resources, raise_on_error=False)
    return result, tmp


def _spark_tables(root: Path) -> dict[str, Path]:
    return {f"{s.name}.{t.name}": t for s in sorted(root.iterdir()) if s.is_dir() and not s.name.startswith(".")
            for t in sorted(s.iterdir()) if t.is_dir() and not t.name.startswith(".") and any(t.glob("*.parquet"))}


def _without_run_columns(con, relation: str, root: Path) -> str:
    """``relation`` without RUN_COLUMNS; in text, the run's own folder (report paths in check metadata) as ``<run>`` and
    the fit's timings in the MMM parameters (``fit_seconds…``) left out."""
    columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()

    def kept(name: str, kind: str) -> str:
        column = f'"{name}"'
        if kind != "VARCHAR":
            return column
        text = f"replace({column}, {literal(str(root))}, '<run>')"
        return f"""regexp_replace({text}, '"fit_seconds[a-z_]*": [0-9.e+-]+', '', 'g') AS {column}"""

    return f"(SELECT {', '.join(kept(name, kind) for name, kind, *_ in columns if name not in RUN_COLUMNS)} FROM {relation})"


def test_every_step_and_check_ran_on_spark(demo_graph, spark_graph):
    duck, _, _ = demo_graph
    result, _ = spark_graph
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not failed, f"steps failed on Spark: {failed}"
    materialised = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialised == {e.asset_key for e in duck.get_asset_materialization_events()}


def test_same_check_outcomes(demo_graph, spark_graph):
    duck, _, _ = demo_graph
    result, _ = spark_graph

    def outcomes(res) -> dict[str, tuple[bool, str]]:
        return {f"{e.asset_key.to_user_string()}:{e.check_name}": (e.passed, e.severity.value) for e in res.get_asset_check_evaluations()}

    want, got = outcomes(duck), outcomes(result)
    assert set(got) == set(want)
    differ = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not differ, f"check outcomes differ (DuckDB, Spark): {differ}"


def test_every_table_equal(demo_graph, spark_graph):
    _, duck_tmp, _ = demo_graph
    _, spark_tmp = spark_graph
    models = _models()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH {literal(str(duck_tmp / 'warehouse.duckdb'))} AS duck (READ_ONLY)")
    duck_tables = {f"{s}.{t}" for s, t in con.execute(
        """SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'duck' AND NOT temporary
           UNION ALL  -- a view over a published file (opportunity_credit) is a table on Spark, which keeps no views
           SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'duck' AND NOT temporary AND NOT internal""").fetchall()}
    spark_tables = _spark_tables(spark_tmp / "spark")
    assert set(spark_tables) == duck_tables
    problems = []
    for name in sorted(duck_tables):
        schema, table = name.split(".")
        left = _without_run_columns(con, f'duck."{schema}"."{table}"', duck_tmp)
        right = _without_run_columns(con, f"read_parquet({literal(str(spark_tables[name] / '*.parquet'))})", spark_tmp)
        key = contract_key(models[table]) if table in models else None
        diff = compare_relations(con, name, left, right, key=key or None, rtol=REL_TOL)
        if not diff.same:
            problems.append(f"{name} ({diff.rows_left} vs {diff.rows_right} rows): {'; '.join(diff.problems)}")
    assert not problems, "\n".join(problems)
    # the quarantine is among them: the same rejected records, with the same reasons, on both engines
    assert "sources.quarantine" in duck_tables


def test_every_extract_equal(demo_graph, spark_graph):
    _, duck_tmp, _ = demo_graph
    _, spark_tmp = spark_graph
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    want = {p.name for p in (duck_tmp / "extracts").glob("*.parquet")} | {p.name for p in (duck_tmp / "extracts").glob("*.csv")}
    got = {p.name for p in (spark_tmp / "extracts").glob("*.parquet")} | {p.name for p in (spark_tmp / "extracts").glob("*.csv")}
    assert want and got == want
    problems = []
    for name in sorted(want):
        reader = "read_parquet" if name.endswith(".parquet") else "read_csv"
        left, right = (_without_run_columns(con, f"{reader}({literal(str(d / 'extracts' / name))})", d) for d in (duck_tmp, spark_tmp))
        diff = compare_relations(con, name, left, right, rtol=REL_TOL)
        if not diff.same:
            problems.append(f"{name} ({diff.rows_left} vs {diff.rows_right} rows): {'; '.join(diff.problems)}")
    assert not problems, "\n".join(problems)
