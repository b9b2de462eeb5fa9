"""The engine differences of marketing_assets.lib.dialect, run on both engines.

Each silent difference between DuckDB and Spark gets a test with edge values: the statement runs on DuckDB as
written and on a local Spark session as :func:`to_spark` translates it, and both must return the same rows.
Where SQLGlot's plain translation is the hazard, the test also runs that translation and asserts it differs,
so each rule is shown to be needed (and a Spark release that removes the difference shows up here).

The Spark session is the shared ``spark`` fixture (conftest): skipped without Java or ``pyspark`` unless
``MARKETING_REQUIRE_SPARK=1`` (CI).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
import sqlglot

from marketing_assets.lib.dialect import NotPortable, jaro_winkler_similarity, safe_divide, stable_hash, to_spark


def on_duckdb(sql: str) -> list[tuple]:
    return duckdb.connect().execute(sql).fetchall()


def on_spark(spark, sql: str) -> list[tuple]:
    return [tuple(row) for row in spark.sql(sql).collect()]


def plain(sql: str) -> str:
    """SQLGlot's translation without the dialect module's rules."""
    return sqlglot.transpile(sql, read="duckdb", write="spark")[0]


def test_month_boundaries_counted_like_duckdb(spark):
    sql = """SELECT date_diff('month', a, b) AS months, date_diff('quarter', a, b) AS quarters,
                    date_diff('year', a, b) AS years
             FROM (VALUES (DATE '2026-01-31', DATE '2026-02-01'), (DATE '2025-12-31', DATE '2026-01-01'),
                          (DATE '2026-03-01', DATE '2026-01-31'), (DATE '2026-01-01', DATE '2026-01-31')) t(a, b)
             ORDER BY a, b"""
    expected = [(1, 1, 1), (0, 0, 0), (1, 0, 0), (-2, 0, 0)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected  # Spark counts whole months: Jan 31 -> Feb 1 is 0


def test_day_and_second_boundaries_counted_like_duckdb(spark):
    sql = """SELECT date_diff('day', a, b) AS days, date_diff('hour', a, b) AS hours, date_diff('second', a, b) AS secs
             FROM (VALUES (TIMESTAMP '2026-01-01 23:00:00', TIMESTAMP '2026-01-02 01:00:00'),
                          (TIMESTAMP '2026-01-01 00:59:59.9', TIMESTAMP '2026-01-01 01:00:00.1'),
                          (TIMESTAMP '2026-01-02 01:00:00', TIMESTAMP '2026-01-01 23:00:00')) t(a, b)
             ORDER BY a, b"""
    expected = [(0, 1, 1), (1, 2, 7200), (-1, -2, -7200)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected  # Spark counts elapsed units: 23:00 -> 01:00 is 0 days


def test_epoch_keeps_the_fraction_of_a_second(spark):
    sql = "SELECT epoch(ts) AS s FROM (VALUES (TIMESTAMP '2026-01-01 00:00:01.5'), (TIMESTAMP '1969-12-31 23:59:59.25')) t(ts) ORDER BY ts"
    expected = [(-0.75,), (1767225601.5,)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected  # unix_timestamp drops the half second


def test_ordered_list_keeps_order_and_nulls(spark):
    sql = """SELECT g, list(x ORDER BY y) AS asc_y, list(x ORDER BY y DESC) AS desc_y, list(x ORDER BY z, y) AS by_z_y,
                    list(x ORDER BY y NULLS FIRST) AS nulls_first
             FROM (VALUES (1, 'b', 2, 1), (1, 'a', 1, 1), (1, NULL, 3, 0), (1, 'c', 0, NULL), (1, 'd', NULL, 2)) t(g, x, y, z)
             GROUP BY g"""
    expected = [(1, ["c", "a", "b", None, "d"], [None, "b", "a", "c", "d"], [None, "a", "b", "d", "c"],
                 ["d", "c", "a", "b", None])]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected  # collect_list drops the NULL and the order


def test_unordered_list_keeps_nulls(spark):
    sql = "SELECT array_length(list(x)) AS n FROM (VALUES ('a'), (NULL), (NULL)) t(x)"
    assert on_duckdb(sql) == [(3,)]
    assert on_spark(spark, to_spark(sql)) == [(3,)]


def test_ordered_string_agg_translates_as_is(spark):
    """string_agg skips NULLs in both engines and Spark 4's LISTAGG keeps the order: no rule needed, tested."""
    sql = "SELECT string_agg(x, ' > ' ORDER BY y) AS path FROM (VALUES ('b', 2), ('a', 1), (NULL, 3), ('c', 0)) t(x, y)"
    assert on_duckdb(sql) == [("c > a > b",)]
    assert on_spark(spark, to_spark(sql)) == [("c > a > b",)]


def test_stable_hash_equal_in_both_engines(spark):
    cols = "a, b, c, d"
    rows = """(VALUES ('x', NULL, DATE '2026-01-02', CAST(1.5 AS DECIMAL(38, 10))), ('x', '', DATE '2026-01-02', CAST(1.5 AS DECIMAL(38, 10))),
                      ('é', 'b', NULL, CAST(0 AS DECIMAL(38, 10)))) t(a, b, c, d)"""
    sql = f"SELECT {stable_hash('a')} AS one, {stable_hash(*cols.split(', '))} AS four FROM {rows} ORDER BY a, b NULLS FIRST"
    duck = on_duckdb(sql)
    assert on_spark(spark, to_spark(sql)) == duck
    assert len({four for _, four in duck}) == 3  # NULL and '' hash differently
    assert all(len(h) == 16 for row in duck for h in row)
    naive = "SELECT hash('abc') AS h"
    assert on_duckdb(naive) != on_spark(spark, plain(naive))  # the engines' own hash() differ
    with pytest.raises(NotPortable, match="stable_hash"):
        to_spark(naive)


def test_decimal_products_keep_their_scale(spark):
    sql = "SELECT CAST(1.2345678901 AS DECIMAL(38, 10)) * CAST(3.3333333333 AS DECIMAL(38, 10)) AS v"
    expected = [(Decimal("4.11522630029218107033"),)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    lossy = spark.conf.get("spark.sql.decimalOperations.allowPrecisionLoss")
    spark.conf.set("spark.sql.decimalOperations.allowPrecisionLoss", "true")  # Spark's default
    try:
        assert on_spark(spark, plain(sql)) == [(Decimal("4.115226"),)]
    finally:
        spark.conf.set("spark.sql.decimalOperations.allowPrecisionLoss", lossy)


def test_division_by_zero_is_null_in_both_through_safe_divide(spark):
    sql = f"SELECT {safe_divide('a', 'b')} AS q FROM (VALUES (1, 0), (3, 2), (0, 0)) t(a, b) ORDER BY a"
    assert on_duckdb(sql) == [(None,), (None,), (1.5,)]
    assert on_spark(spark, to_spark(sql)) == [(None,), (None,), (1.5,)]
    unguarded = "SELECT a / b AS q FROM (VALUES (1, 0)) t(a, b)"
    assert on_duckdb(unguarded) == [(float("inf"),)]
    with pytest.raises(Exception, match="DIVIDE_BY_ZERO"):  # ANSI mode: loud, never a silent NULL
        on_spark(spark, to_spark(unguarded))


def test_computed_intervals(spark):
    sql = """SELECT ts - INTERVAL (n) DAY AS days_back, ts + INTERVAL (n) HOUR AS hours_on, ts - INTERVAL (90) DAY AS fixed
             FROM (VALUES (TIMESTAMP '2026-03-10 00:00:00', 3), (TIMESTAMP '2026-01-01 12:00:00', 0)) t(ts, n) ORDER BY ts"""
    expected = [(dt.datetime(2026, 1, 1, 12), dt.datetime(2026, 1, 1, 12), dt.datetime(2025, 10, 3, 12)),
                (dt.datetime(2026, 3, 7), dt.datetime(2026, 3, 10, 3), dt.datetime(2025, 12, 10))]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected


def test_parameters_become_named_markers(spark):
    sql = "SELECT count(*) AS n FROM (VALUES (DATE '2026-01-01'), (DATE '2026-02-01')) t(d) WHERE d < $cutoff"
    assert duckdb.connect().execute(sql, {"cutoff": dt.date(2026, 1, 15)}).fetchall() == [(1,)]
    assert [tuple(r) for r in spark.sql(to_spark(sql), args={"cutoff": dt.date(2026, 1, 15)}).collect()] == [(1,)]


@pytest.mark.parametrize("sql, construct", [
    ("SELECT hash(a) FROM t", "hash"),
    ("SELECT struct_insert(s, x := 1) FROM t", "struct_insert"),
    ("SELECT a FROM t UNION ALL BY NAME SELECT a FROM u", "BY NAME"),
    ("SELECT date_diff('week', a, b) FROM t", "week"),
    ("SELECT list(DISTINCT a ORDER BY a) FROM t", "DISTINCT"),
    ("SELECT list_zip(a, b) FROM t", "list_zip"),
    ("SELECT list_reduce(a, lambda x, y: x + y) FROM t", "list_reduce"),
    ("SELECT list_apply(a, lambda x, i: i) FROM t", "list_apply"),
    ("SELECT list_filter(a, lambda x, i: list_filter(x, lambda y, i: i > 1) IS NOT NULL) FROM t", "reuses the index"),
])
def test_untranslatable_constructs_are_refused(sql, construct):
    with pytest.raises(NotPortable, match=construct):
        to_spark(sql)


def test_nested_constructs_are_translated_inside_replaced_ones():
    sql = "SELECT list(epoch(ts) ORDER BY date_diff('month', a, b)) FROM t"
    out = to_spark(sql)
    assert "UNIX_TIMESTAMP" not in out and "DATEDIFF(MONTH" not in out.upper()
    assert "UNIX_MICROS" in out and "MONTH(" in out.upper()


def test_named_windows_defined_from_others(spark):
    sql = """SELECT g, x, row_number() OVER w AS n, sum(x) OVER wr AS running, last_value(x) OVER wa AS last_x
             FROM (VALUES (1, 3), (1, 1), (1, 2), (2, 5)) t(g, x)
             WINDOW w AS (PARTITION BY g ORDER BY x), wa AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),
                    wr AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
             ORDER BY g, x"""
    expected = [(1, 1, 1, 1, 3), (1, 2, 2, 3, 3), (1, 3, 3, 6, 3), (2, 5, 1, 5, 5)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    with pytest.raises(Exception, match="(?i)syntax|parse"):
        on_spark(spark, plain(sql))  # Spark cannot define a window from another


def test_jaro_winkler_is_duckdbs_on_spark(spark):
    import random

    rnd = random.Random(7)
    pairs = [("martha", "marhta"), ("dixon", "dicksonx"), ("jellyfish", "smellyfish"), ("", ""), ("a", ""), ("ab", "ba"),
             ("acme corp", "acme corporation"), ("crate", "trace")]
    pairs += [("".join(rnd.choice("abcde f") for _ in range(rnd.randint(0, 10))),
               "".join(rnd.choice("abcde f") for _ in range(rnd.randint(0, 10)))) for _ in range(3000)]
    con = duckdb.connect()
    con.execute("CREATE TABLE p (i INTEGER, a VARCHAR, b VARCHAR)")
    con.executemany("INSERT INTO p VALUES (?, ?, ?)", [(i, a, b) for i, (a, b) in enumerate(pairs)])
    duck = [s for (s,) in con.execute("SELECT jaro_winkler_similarity(a, b) FROM p ORDER BY i").fetchall()]
    assert [jaro_winkler_similarity(a, b) for a, b in pairs] == pytest.approx(duck, rel=1e-12, abs=1e-15)
    assert jaro_winkler_similarity("martha", "marhta") == pytest.approx(0.9611111111111111)
    spark.createDataFrame(pairs[:200], "a string, b string").createOrReplaceTempView("jw_pairs")
    sql = "SELECT jaro_winkler_similarity(a, b) AS s FROM jw_pairs"
    got = [row[0] for row in spark.sql(to_spark(sql)).collect()]
    assert got == pytest.approx(duck[:200], rel=1e-12, abs=1e-15)
    builtin = [row[0] for row in spark.sql(sql).collect()]  # Spark 4.3's function of the same name
    assert builtin != pytest.approx(duck[:200], rel=1e-12, abs=1e-15)  # '' vs '' is 1, a bonus below 0.7


def test_first_and_last_by_order(spark):
    sql = """SELECT g, first(x ORDER BY n DESC, x) AS top, last(x ORDER BY n DESC, x) AS bottom, first(x ORDER BY n) AS low
             FROM (VALUES (1, 'b', 5), (1, 'a', 5), (1, 'c', 1), (1, NULL, 0), (2, 'z', NULL), (2, 'y', 3)) t(g, x, n)
             GROUP BY g ORDER BY g"""
    expected = [(1, "a", None, None), (2, "y", "z", "y")]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected


def test_isfinite(spark):
    sql = """SELECT x, isfinite(x) AS finite FROM (VALUES (1.5), (CAST('nan' AS DOUBLE)), (CAST('inf' AS DOUBLE)),
             (CAST('-inf' AS DOUBLE)), (NULL)) t(x) ORDER BY x NULLS FIRST"""
    duck = on_duckdb(sql)
    got = on_spark(spark, to_spark(sql))
    assert [f for _, f in got] == [f for _, f in duck] == [None, False, True, False, False]


def test_distinct_and_filtered_lists(spark):
    sql = """SELECT g, list_sort(list(DISTINCT x) FILTER (WHERE keep))[2] AS second, array_length(list(DISTINCT x)) AS n,
                    list(x ORDER BY x DESC) FILTER (WHERE keep) AS kept
             FROM (VALUES (1, 3, true), (1, NULL, true), (1, 3, true), (1, 1, true), (1, 9, false), (2, 5, true), (2, NULL, true)) t(g, x, keep)
             GROUP BY g ORDER BY g"""
    expected = [(1, 3, 4, [3, 3, 1, None]), (2, None, 2, [5, None])]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected


def test_nested_ctes_with_the_same_names(spark):
    sql = """SELECT * FROM (WITH a AS (SELECT 1 AS x) SELECT * FROM a) t1
             CROSS JOIN (WITH a AS (SELECT 2 AS y) SELECT * FROM a) t2"""
    assert on_duckdb(sql) == [(1, 2)]
    assert on_spark(spark, to_spark(sql)) == [(1, 2)]
    with pytest.raises(Exception, match="DUPLICATED_CTE_NAMES"):
        on_spark(spark, plain(sql))  # SQLGlot moves both to the top


def test_list_index_past_the_end_and_to_days(spark):
    sql = """SELECT l[1] AS first, l[2] AS second, l[3] AS third, ts - to_days(n) AS back
             FROM (VALUES ([5, 6], TIMESTAMP '2026-03-10 00:00:00', 2)) t(l, ts, n)"""
    expected = [(5, 6, None, dt.datetime(2026, 3, 8))]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected


def test_materialized_cte_hint_dropped(spark):
    sql = "WITH a AS MATERIALIZED (SELECT epoch(TIMESTAMP '2026-01-01 00:00:00.5') AS x) SELECT x FROM a"
    assert on_duckdb(sql) == [(1767225600.5,)]
    assert "MATERIALIZED" not in to_spark(sql).upper() and "UNIX_MICROS" in to_spark(sql)
    assert on_spark(spark, to_spark(sql)) == [(1767225600.5,)]


def test_list_lambda_index_counts_from_one_like_duckdb(spark):
    sql = """SELECT list_filter(l, lambda x, i: i > 1) AS tail, list_transform(l, lambda x, i: x * 10 + i) AS numbered,
                    list_transform(l, lambda x: x + 1) AS plus_one
             FROM (VALUES ([7, 8, 9])) t(l)"""
    expected = [([8, 9], [71, 82, 93], [8, 9, 10])]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected  # Spark's index counts from 0


def test_list_slice_with_both_ends_included_and_empty_slices(spark):
    sql = """SELECT i, list_slice(l, greatest(i - 1, 1), i) AS last_two, list_slice(l, i + 1, i) AS empty,
                    list_slice(l, 2, 9) AS past_the_end
             FROM (VALUES ([5, 6, 7], 0), ([5, 6, 7], 1), ([5, 6, 7], 3)) t(l, i) ORDER BY i"""
    expected = [(0, [], [], [6, 7]), (1, [5], [], [6, 7]), (3, [6, 7], [], [6, 7])]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    with pytest.raises(NotPortable, match="below 1"):
        to_spark("SELECT list_slice(l, -2, 3) FROM t")


def test_recursive_unnest_of_structs_is_inline(spark):
    sql = """SELECT * EXCLUDE (n) FROM (
                 SELECT k, unnest([{'model': 'first', 'n': a, 'x': a * 2}, {'model': 'last', 'n': b, 'x': b * 2}], recursive := true)
                 FROM (VALUES ('p', 1, NULL), ('q', 3, 4)) t(k, a, b))
             ORDER BY k, model"""
    expected = [("p", "first", 2), ("p", "last", None), ("q", "first", 6), ("q", "last", 8)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    with pytest.raises(NotPortable, match="flat structs"):
        to_spark("SELECT unnest(l, recursive := true) FROM t")


def test_list_index_by_a_column_and_inside_a_lambda(spark):
    # SQLGlot makes an index 0-based only when it can type it (l[2], not l[i]): both must read DuckDB's 1-based element
    sql = """SELECT l[i] AS by_column, l[i - 1] AS before, l[2] AS literal,
                    list_filter(l, lambda x, j: j = 1 OR x <> l[j - 1]) AS without_repeats
             FROM (VALUES (['a', 'c', 'b', 'b', 'a'], 3)) t(l, i)"""
    expected = [("b", "c", "c", ["a", "c", "b", "a"])]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    by_column = "SELECT l[i] FROM (VALUES (['a', 'c', 'b', 'b', 'a'], 2)) t(l, i)"
    assert on_duckdb(by_column) == on_spark(spark, to_spark(by_column)) == [("c",)]
    assert on_spark(spark, plain(by_column)) == [("b",)]  # as SQLGlot writes it, Spark reads l[i] 0-based


def test_division_is_double_like_duckdb(spark):
    # DuckDB divides DECIMALs as DOUBLE; Spark keeps DECIMAL and cuts it (an age in days kept 7 decimals, and a
    # rounded average of money landed on the other cent)
    sql = """SELECT seconds / 86400.0 AS days, round(revenue / customers, 2) AS per_customer
             FROM (VALUES (6628463, CAST(9174.555 AS DECIMAL(38, 10)), 3)) t(seconds, revenue, customers)"""
    expected = on_duckdb(sql)
    assert expected == [(6628463 / 86400, 3058.19)]
    assert on_spark(spark, to_spark(sql)) == expected
    assert on_spark(spark, plain(sql)) != expected


def test_fmt_placeholders_become_printf_ones(spark):
    sql = "SELECT format('all {:,} contacts of {} ({{x}}) at 5%', n, s) AS note FROM (VALUES (1566, 'Email')) t(n, s)"
    expected = [("all 1,566 contacts of Email ({x}) at 5%",)]
    assert on_duckdb(sql) == expected
    assert on_spark(spark, to_spark(sql)) == expected
    note = "SELECT format('all {:,} ' || 'contacts', 1566) AS note"  # a template written in parts
    assert on_spark(spark, to_spark(note)) == on_duckdb(note) == [("all 1,566 contacts",)]
    assert on_spark(spark, plain(note)) == [("all {:,} contacts",)]  # Spark's format_string prints the braces as they are
    with pytest.raises(NotPortable, match="placeholder"):
        to_spark("SELECT format('{:.2f}', x) FROM t")
