"""SparkConnection: the DuckDB statements the project writes, run on Spark with tables as Parquet directories,
and one library module (every attribution model's credits) giving DuckDB's numbers on Spark.

The Spark session is the shared ``spark`` fixture (conftest): skipped without Java or ``pyspark`` unless
``MARKETING_REQUIRE_SPARK=1`` (CI).
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.attribution.credits import attribution_credits_sql
from marketing_assets.lib.spark_engine import SparkConnection

SETUP = [
    'CREATE SCHEMA IF NOT EXISTS "src"',
    """CREATE OR REPLACE TABLE "src"."t" AS SELECT * FROM (VALUES (1, 'a', DATE '2026-01-31'), (2, 'b', DATE '2026-02-01'),
                                                              (3, NULL, DATE '2026-03-01')) v(id, name, d)""",
    """INSERT INTO "src"."t" (id, d) VALUES (4, DATE '2026-04-01')""",
    """UPDATE "src"."t" SET name = 'z' WHERE id = 3""",
    """UPDATE "src"."t" SET name = 'n' WHERE name = 'nobody'""",
    """DELETE FROM "src"."t" WHERE id = 1 OR name = 'nobody'""",  # NULL condition on id 4: the row stays
    """CREATE OR REPLACE TABLE "src"."t" AS SELECT id * 10 AS id, name, d FROM "src"."t" """,  # reads what it replaces
    """CREATE TEMP TABLE tmp AS SELECT id, date_diff('month', DATE '2026-01-31', d) AS months FROM "src"."t" """,
    "BEGIN TRANSACTION",
    "COMMIT",
]
QUERIES = [
    'SELECT * FROM "src"."t" ORDER BY id',
    "SELECT * FROM tmp ORDER BY id",
    "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = 'src'",
    'DESCRIBE "src"."t"',
]


@pytest.fixture
def both(spark, tmp_path):
    con = SparkConnection(spark, tmp_path / "spark_warehouse")
    yield duckdb.connect(), con
    con.close()


def test_statements_give_duckdbs_rows(both):
    duck, spark_con = both
    for sql in SETUP:
        duck.execute(sql)
        spark_con.execute(sql)
    for sql in QUERIES:
        assert spark_con.execute(sql).fetchall() == duck.execute(sql).fetchall(), sql
    assert spark_con.execute('SELECT * FROM "src"."t" ORDER BY id').fetchall() == [
        (20, "b", dt.date(2026, 2, 1)), (30, "z", dt.date(2026, 3, 1)), (40, None, dt.date(2026, 4, 1))]


def test_parameters_register_and_results(both):
    duck, spark_con = both
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    for con in both:
        con.register("frame", frame)
    sql = "SELECT sum(a) AS s, count(b) AS n FROM frame WHERE a >= $low"
    assert spark_con.execute(sql, {"low": 2}).fetchone() == duck.execute(sql, {"low": 2}).fetchone() == (5, 1)
    assert spark_con.execute("SELECT a FROM frame ORDER BY a").df()["a"].tolist() == [1, 2, 3]
    assert list(spark_con.execute("SELECT a FROM frame ORDER BY a").fetchnumpy()["a"]) == [1, 2, 3]
    spark_con.unregister("frame")
    with pytest.raises(Exception, match="frame"):
        spark_con.execute("SELECT * FROM frame").fetchall()


def test_missing_table_and_existing_table(both):
    _, spark_con = both
    with pytest.raises(LookupError, match="src.nothing"):
        spark_con.execute('SELECT * FROM "src"."nothing"')
    spark_con.execute('CREATE TABLE "src"."once" AS SELECT 1 AS a')
    with pytest.raises(ValueError, match="already exists"):
        spark_con.execute('CREATE TABLE "src"."once" AS SELECT 2 AS a')
    spark_con.execute('CREATE TABLE IF NOT EXISTS "src"."once" AS SELECT 2 AS a')
    assert spark_con.execute('SELECT a FROM "src"."once"').fetchall() == [(1,)]
    spark_con.execute('DROP TABLE "src"."once"')
    assert spark_con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'once'").fetchone() == (0,)


T0 = dt.datetime(2024, 3, 1)


def _touches() -> list[tuple]:
    """Opportunities with ties on the same timestamp, NULL dates, direct and lead-creation touches, one touch."""
    rows = []
    channels = ["Email", "Paid Search", "Direct", "Organic Social", "Events"]
    for o in range(12):
        n = 1 + (o * 7) % 6
        for k in range(n):
            days = None if (o, k) == (5, 2) else float((o * 13 + k * 5) % 40) + (0.5 if k % 3 == 0 else 0.0)
            if (o, k) in {(3, 1), (3, 2)}:
                days = 4.0  # exact tie
            rows.append((f"o{o:02d}", 1000.0 + 250 * o, T0, f"t{o:02d}{k}", ["marketing", "sales", "web"][(o + k) % 3],
                         None if days is None else T0 - dt.timedelta(days=days), channels[(o + 2 * k) % 5],
                         channels[(o + 2 * k) % 5] == "Direct", k == min(1, n - 1)))
    return rows


def test_every_attribution_model_gives_duckdbs_credits_on_spark(both):
    duck, spark_con = both
    weights = {"markov": {"Email": 0.4, "Paid Search": 0.3, "Direct": 0.1, "Organic Social": 0.2},
               "shapley": {"Email": 0.25, "Paid Search": 0.25, "Events": 0.5}}
    results = []
    for con in both:
        con.execute(
            "CREATE TEMP TABLE src (opportunity_id VARCHAR, pipeline_amount DECIMAL(18, 2), opportunity_created_date TIMESTAMP,"
            " touchpoint_id VARCHAR, touchpoint_type VARCHAR, touchpoint_date TIMESTAMP, channel_name VARCHAR,"
            " is_direct BOOLEAN, is_lead_creation BOOLEAN)")
        con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", _touches())
        attribution_credits_sql(con, "src", "credits", channel_weights=weights)
        results.append(con.execute("SELECT * FROM credits ORDER BY opportunity_id, touch_order").df())
    expected, got = results
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) == len(_touches())
    for column in expected.columns:
        for want, have in zip(expected[column], got[column]):
            if isinstance(want, float) or isinstance(have, float):
                assert (pd.isna(want) and pd.isna(have)) or math.isclose(float(want), float(have), rel_tol=1e-9, abs_tol=1e-9), column
            else:
                assert (pd.isna(want) and pd.isna(have)) or want == have, column


def test_copy_writes_one_file_like_duckdb(both, tmp_path):
    duck, spark_con = both
    select = """SELECT * FROM (VALUES (1, 'a', TIMESTAMP '2026-01-02 03:04:05', 1.5), (2, NULL, NULL, NULL)) t(id, name, ts, x)"""
    for label, con in (("duck", duck), ("spark", spark_con)):
        con.execute(f"COPY ({select}) TO '{tmp_path / (label + '.parquet')}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
        con.execute(f"COPY ({select}) TO '{tmp_path / (label + '.csv')}' (FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S')")
    assert (tmp_path / "spark.parquet").is_file() and (tmp_path / "spark.csv").is_file()
    read = "SELECT * FROM read_parquet('{}') ORDER BY id"
    assert duck.execute(read.format(tmp_path / "spark.parquet")).fetchall() == duck.execute(read.format(tmp_path / "duck.parquet")).fetchall()
    assert (tmp_path / "spark.csv").read_text().splitlines() == (tmp_path / "duck.csv").read_text().splitlines() == [
        "id,name,ts,x", "1,a,2026-01-02T03:04:05,1.5", "2,,,"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_union_by_name_like_duckdb(both):
    duck, spark_con = both
    sql = """WITH a AS (SELECT 1 AS id, 'x' AS name, DATE '2026-01-01' AS d), b AS (SELECT 'y' AS name, 2 AS id, 1.5 AS score)
             SELECT * FROM (SELECT * FROM a UNION ALL BY NAME SELECT * FROM b UNION ALL BY NAME SELECT 3 AS id) ORDER BY id"""
    expected = [(1, "x", dt.date(2026, 1, 1), None), (2, "y", None, 1.5), (3, None, None, None)]
    assert [tuple(float(v) if isinstance(v, (int, float)) and c == 3 and v is not None else v for c, v in enumerate(r))
            for r in duck.execute(sql).fetchall()] == expected
    got = spark_con.execute(sql).fetchall()
    assert [(r[0], r[1], r[2], None if r[3] is None else float(r[3])) for r in got] == expected


def test_temp_views_and_unpivot(both):
    duck, spark_con = both
    setup = ["CREATE SCHEMA IF NOT EXISTS mmm",
             """CREATE TABLE mmm.wide AS SELECT * FROM (VALUES (DATE '2026-01-05', 1.0, 2.0), (DATE '2026-01-12', NULL, 4.0)) t(week, a, b)""",
             "CREATE OR REPLACE TEMP VIEW v AS SELECT week, a + b AS total FROM mmm.wide"]
    for sql in setup:
        duck.execute(sql)
        spark_con.execute(sql)
    for sql in ("SELECT * FROM v ORDER BY week",
                "SELECT w.week, w.component, w.value FROM mmm.wide UNPIVOT INCLUDE NULLS (value FOR component IN (a, b)) AS w ORDER BY 1, 2"):
        assert spark_con.execute(sql).fetchall() == duck.execute(sql).fetchall(), sql


def test_temp_schema_and_union_by_name_in_nested_ctes(both):
    duck, spark_con = both
    for con in both:
        con.execute("CREATE TEMP TABLE _scope AS SELECT 1 AS id, 'x' AS name")
    sql = """WITH outer_cte AS (WITH inner_a AS (SELECT * FROM temp._scope), inner_b AS (SELECT 'y' AS name, 2 AS id)
                                SELECT * FROM inner_a UNION ALL BY NAME SELECT * FROM inner_b)
             SELECT * FROM outer_cte ORDER BY id"""
    assert spark_con.execute(sql).fetchall() == duck.execute(sql).fetchall() == [(1, "x"), (2, "y")]
    # a later CTE that reads the one holding the union: not in the scope the union's sides are analysed with
    sql = """WITH outer_cte AS (WITH inner_a AS (SELECT * FROM temp._scope) SELECT * FROM inner_a UNION ALL BY NAME SELECT 3 AS id),
                  later AS (SELECT id, name FROM outer_cte)
             SELECT * FROM later ORDER BY id"""
    assert spark_con.execute(sql).fetchall() == duck.execute(sql).fetchall() == [(1, "x"), (3, None)]


CONNECT_CLIENT = """
import json, sys
from marketing_assets.lib.spark_engine import SparkConnection, spark_session
from marketing_assets_tests.test_spark_engine import CONNECT_QUERIES, SETUP
remote = spark_session(remote=sys.argv[1])
con = SparkConnection(remote, sys.argv[2])
for sql in SETUP:
    con.execute(sql)
print(json.dumps([[list(map(str, row)) for row in con.execute(sql).fetchall()] for sql in CONNECT_QUERIES]))
con.close()
remote.stop()
"""
CONNECT_QUERIES = [*QUERIES, "SELECT jaro_winkler_similarity('acme', 'acne') AS s, epoch(TIMESTAMP '2026-01-01 00:00:00.5') AS e"]


def test_spark_connect_runs_the_statements_like_a_local_session(spark_connect_url, tmp_path):
    """MARKETING_SPARK_REMOTE: the same statements through a Spark Connect server (here a local one, run by a client
    process) give DuckDB's rows, the DuckDB functions registered as UDFs included."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CONNECT_CLIENT, spark_connect_url, str(tmp_path / "connect_warehouse")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    duck = duckdb.connect()
    for sql in SETUP:
        duck.execute(sql)
    expected = [[list(map(str, row)) for row in duck.execute(sql).fetchall()] for sql in CONNECT_QUERIES]
    assert got == expected


PATHS = [("Email > Paid Search > Email", 3, 300.0, 1), ("Paid Search", 1, 50.0, 4), ("Email > Email > Direct", 0, 0.0, 2),
         ("", 1, 10.0, 0), ("Direct > Paid Search > Events > Email", 2, 120.0, 1), ("Events", 0, 0.0, 3)]


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_transition_counts_equal_on_both_engines(both, order):
    from marketing_assets.lib.attribution import markov_transitions_sql

    results = []
    for con in both:
        con.execute("CREATE TEMP TABLE paths (path VARCHAR, conversions BIGINT, value DOUBLE, nulls BIGINT)")
        con.executemany("INSERT INTO paths VALUES (?, ?, ?, ?)", PATHS)
        rows = con.execute(markov_transitions_sql("paths", order)).fetchall()
        results.append([tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in row) for row in rows])
    expected, got = results
    assert got == expected
    # hand count, order 1: (start) -> Email is taken by the two journeys starting with Email (3 + 1 and 0 + 2)
    if order == 1:
        assert [r[2] for r in expected if r[0] == () and r[1] == ("Email",)] == [6.0]
        assert [r[2:4] for r in expected if r[0] == () and r[1] is None] == [(1.0, 1.0)]  # the path without a channel


def test_windowed_rollup_of_every_model_equal_on_both_engines(both):
    from marketing_assets.lib.rollups import rollup_sql

    results = []
    for con in both:
        con.execute("CREATE TEMP TABLE credits (lookback_days INTEGER, opportunity_id VARCHAR, channel_group VARCHAR,"
                    " first_touch_credit DOUBLE, linear_credit DOUBLE)")
        con.executemany("INSERT INTO credits VALUES (?, ?, ?, ?, ?)", [
            (30, "o1", "Email", 100.0, 50.0), (30, "o1", "Direct", None, 50.0), (90, "o1", "Email", 100.0, 100.0),
            (90, "o2", "Events", 40.0, 40.0)])
        con.execute("CREATE TEMP TABLE opps (opportunity_id VARCHAR, sales_segment VARCHAR, pipeline_amount DOUBLE,"
                    " is_won BOOLEAN, won_amount DOUBLE, opportunity_created_date TIMESTAMP, closed_date TIMESTAMP)")
        con.executemany("INSERT INTO opps VALUES (?, ?, ?, ?, ?, ?, ?)", [
            ("o1", "SMB", 100.0, True, 100.0, dt.datetime(2026, 1, 5), dt.datetime(2026, 2, 1)),
            ("o2", "ENT", 40.0, False, None, dt.datetime(2026, 1, 9), None),
            ("o3", "SMB", 10.0, False, None, dt.datetime(2026, 1, 9), None)])
        sql = rollup_sql("credits", "opps", ["first_touch", "linear"], ["channel_group"], windows=[30, 90])
        results.append(con.execute(f"SELECT * FROM ({sql}) ORDER BY 1, 2, 3").fetchall())
    expected, got = results
    assert len(expected) == 11  # window 30: first touch 1 + linear 2 channels, 90: 2 + 2; each with an unattributed row per model
    assert got == expected


def test_pseudonyms_equal_on_both_engines(both):
    from marketing_assets.lib.publish import PSEUDONYM_MACRO, drop_pseudonym, pseudonymise, register_pseudonym

    key = b"parity-test-key"
    results = []
    for con in both:
        con.execute("CREATE TEMP TABLE ids AS SELECT * FROM (VALUES ('opp-1'), (NULL), ('ü-2')) v(id)")
        register_pseudonym(con, key)
        results.append(con.execute(f"SELECT id, {PSEUDONYM_MACRO}('o_', id) AS token FROM ids ORDER BY id NULLS LAST").fetchall())
        drop_pseudonym(con)
    expected = list(zip(["opp-1", "ü-2", None], pseudonymise(pd.Series(["opp-1", "ü-2", None]), key, "o_")))
    assert results[0] == results[1] == expected
    assert expected[-1] == (None, None)


def test_dates_and_timestamps_reach_pandas_as_from_duckdb(both):
    sql = "SELECT DATE '2025-07-28' AS d, TIMESTAMP '2025-07-28 10:30:00.25' AS t, CAST(NULL AS DATE) AS n"
    duck, spark_con = both
    want, got = duck.execute(sql).df(), spark_con.execute(sql).df()
    assert list(got.dtypes.astype(str)) == list(want.dtypes.astype(str)) == ["datetime64[us]"] * 3
    assert got.to_json(date_format="iso") == want.to_json(date_format="iso")


def test_a_registered_frame_reads_nan_as_null_like_duckdb(both):
    frame = pd.DataFrame({"k": ["a", "b"], "value": [1.5, float("nan")]})
    results = []
    for con in both:
        con.register("frame_in", frame)
        results.append(con.execute("SELECT k, value, value IS NULL AS missing FROM frame_in ORDER BY k").fetchall())
    assert results[0] == results[1] == [("a", 1.5, False), ("b", None, True)]
