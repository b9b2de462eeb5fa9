"""compare_relations: rows paired by key, numbers within tolerance, everything else exact; key-less tables as multisets."""

import duckdb
import pytest

from marketing_assets.lib.parity import compare_relations, contract_key
from marketing_assets.schemas import ATTRIBUTION_TABLE_MODELS, IDENTITY_MODELS


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE a AS SELECT * FROM (VALUES (1, 'x', 1.0::DOUBLE, DATE '2026-01-01'), (2, 'y', 1e6::DOUBLE, DATE '2026-01-02'),"
              " (3, NULL, NULL::DOUBLE, NULL::DATE)) t(id, s, v, d)")
    yield c
    c.close()


def _b(con, sql: str) -> None:
    con.execute(f"CREATE OR REPLACE TABLE b AS {sql}")


def test_identical_copies_agree(con):
    _b(con, "SELECT * FROM a ORDER BY id DESC")  # row order does not matter
    diff = compare_relations(con, "t", "a", "b", key=["id"])
    assert diff.same and (diff.rows_left, diff.rows_right) == (3, 3)


def test_numbers_within_the_relative_tolerance_agree_beyond_it_differ(con):
    _b(con, "SELECT id, s, CASE id WHEN 2 THEN v * (1 + 5e-10) ELSE v END AS v, d FROM a")  # 5e-10 relative: inside 1e-9
    assert compare_relations(con, "t", "a", "b", key=["id"]).same
    _b(con, "SELECT id, s, CASE id WHEN 2 THEN v * (1 + 2e-9) ELSE v END AS v, d FROM a")  # 2e-9: outside
    assert compare_relations(con, "t", "a", "b", key=["id"]).problems == ["column v differs: 1 row(s), e.g. key 2"]
    _b(con, "SELECT id, s, CASE id WHEN 3 THEN 0.0 ELSE v END AS v, d FROM a")  # NULL vs a number
    assert compare_relations(con, "t", "a", "b", key=["id"]).problems == ["column v differs: 1 row(s), e.g. key 3"]


def test_decimals_compare_as_numbers(con):
    _b(con, "SELECT id, s, CAST(v AS DECIMAL(38, 10)) AS v, d FROM a")
    assert compare_relations(con, "t", "a", "b", key=["id"]).same
    _b(con, "SELECT id, s, CAST(round(v, -1) AS DECIMAL(38, 10)) AS v, d FROM a")  # 1.0 -> 0
    assert compare_relations(con, "t", "a", "b", key=["id"]).problems == ["column v differs: 1 row(s), e.g. key 1"]


def test_strings_dates_and_nulls_must_be_identical(con):
    _b(con, "SELECT id, CASE id WHEN 1 THEN 'X' ELSE s END AS s, v, CASE id WHEN 3 THEN DATE '2026-01-03' ELSE d END AS d FROM a")
    assert compare_relations(con, "t", "a", "b", key=["id"]).problems == [
        "column s differs: 1 row(s), e.g. key 1", "column d differs: 1 row(s), e.g. key 3"]


def test_rows_and_columns_on_one_side_only_are_reported(con):
    _b(con, "SELECT id, s, v FROM a WHERE id <> 2 UNION ALL SELECT 4, 'z', 0.0")
    diff = compare_relations(con, "t", "a", "b", key=["id"])
    assert diff.problems == ["column d only in left", "only in left: 1 row(s), e.g. key 2", "only in right: 1 row(s), e.g. key 4"]
    assert (diff.rows_left, diff.rows_right) == (3, 3)


def test_without_a_key_rows_compare_as_a_multiset(con):
    con.execute("CREATE OR REPLACE TABLE a AS SELECT * FROM (VALUES ('x', 1.0), ('x', 2.0), ('x', 2.0), ('y', 3.0)) t(s, v)")
    _b(con, "SELECT * FROM (VALUES ('y', 3.0), ('x', 2.0), ('x', 1.0), ('x', 2.0 + 1e-12)) t(s, v)")
    assert compare_relations(con, "t", "a", "b").same
    _b(con, "SELECT * FROM (VALUES ('y', 3.0), ('x', 2.0), ('x', 1.0), ('x', 1.0)) t(s, v)")  # one 2.0 became a second 1.0
    assert compare_relations(con, "t", "a", "b").problems == ["column v differs: 1 row(s), e.g. key x"]
    _b(con, "SELECT * FROM (VALUES ('y', 3.0), ('x', 2.0), ('x', 1.0)) t(s, v)")
    assert compare_relations(con, "t", "a", "b").problems == ["only in left: 1 row(s), e.g. key x"]


def test_contract_key_comes_from_the_contract():
    assert contract_key(ATTRIBUTION_TABLE_MODELS["attribution_credits"]) == ["opportunity_id", "touchpoint_id"]
    assert contract_key(IDENTITY_MODELS["contacts_resolved"]) == ["contact_id"]


def test_timestamp_types_compare_as_instants_and_kinds_must_match(con):
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE OR REPLACE TABLE a AS SELECT 1 AS id, CAST(TIMESTAMP '2026-01-31 23:30:00' AS TIMESTAMP_NS) AS t, 5 AS n")
    # Spark writes UTC-adjusted timestamps and BIGINTs: the same values
    _b(con, "SELECT CAST(1 AS BIGINT) AS id, CAST(TIMESTAMP '2026-01-31 23:30:00' AS TIMESTAMPTZ) AS t, CAST(5 AS BIGINT) AS n")
    assert compare_relations(con, "t", "a", "b", key=["id"]).same
    _b(con, "SELECT 1 AS id, CAST(TIMESTAMP '2026-02-01 00:30:00' AS TIMESTAMPTZ) AS t, '5' AS n")
    assert compare_relations(con, "t", "a", "b", key=["id"]).problems == [
        "column n is INTEGER in left, VARCHAR in right", "column t differs: 1 row(s), e.g. key 1"]
