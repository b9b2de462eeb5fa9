"""Pandera contracts compiled to DuckDB SQL: every kind of rule fails on a planted row, with the row in the samples."""

import warnings

import duckdb
import pandas as pd
import pandera.extensions
import pandera.pandas as pa
import pytest
from pandera.errors import SchemaErrors
from pandera.typing import Series

from marketing_assets.lib import contract_sql
from marketing_assets.lib.landing import PII_MASK


class Orders(pa.DataFrameModel):
    order_id: Series[str] = pa.Field(unique=True, metadata={"key": True})
    customer_id: Series[str] = pa.Field()
    line: Series[int] = pa.Field(ge=1)
    kind: Series[str] = pa.Field(isin=["sale", "return"])
    qty: Series[int] = pa.Field(gt=0)  # landed as text: checked as the contract's type
    amount: Series[float] = pa.Field(ge=0, le=1000, nullable=True)
    currency: Series[str] = pa.Field(str_length={"min_value": 3, "max_value": 3}, nullable=True)
    code: Series[str] = pa.Field(str_matches=r"[A-Z]{2}-\d+", nullable=True)
    params: Series[str] = pa.Field(str_startswith="{", nullable=True)
    email: Series[str] = pa.Field(str_contains="@", nullable=True, metadata={"pii": True})
    placed_at: Series[pd.Timestamp] = pa.Field()
    is_paid: Series[bool] = pa.Field()

    class Config:
        coerce = True
        strict = False
        unique = ["customer_id", "line"]


ROWS = """('o1', 'c1', 1, 'sale', '2', 10.5, 'EUR', 'AB-1', '{}', 'ann@example.com', TIMESTAMP '2026-11-01 10:00', TRUE),
          ('o2', 'c1', 2, 'return', '1', NULL, NULL, NULL, NULL, NULL, TIMESTAMP '2026-11-02 10:00', FALSE),
          ('o3', 'c2', 1, 'sale', '5', 0, 'USD', 'CD-22', '{"a": 1}', 'bob@example.com', TIMESTAMP '2026-11-03 10:00', TRUE)"""


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        """CREATE TABLE orders (order_id VARCHAR, customer_id VARCHAR, line BIGINT, kind VARCHAR, qty VARCHAR, amount DOUBLE,
           currency VARCHAR, code VARCHAR, params VARCHAR, email VARCHAR, placed_at TIMESTAMP, is_paid BOOLEAN)"""
    )
    con.execute(f"INSERT INTO orders VALUES {ROWS}")
    yield con
    con.close()


def pandas_checks(con) -> set[str]:
    """The checks Pandera's pandas backend fails on the same table (the reference semantics)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            Orders.to_schema().validate(con.execute("SELECT * FROM orders").df(), lazy=True)
    except SchemaErrors as err:
        return set(err.failure_cases["check"].astype(str))
    return set()


def test_clean_table_conforms(con):
    outcome = contract_sql.validate_contract(con, "orders", Orders)
    assert outcome.passed and outcome.description == "3 rows conform to Orders"
    assert outcome.metadata == {"rows_validated": 3, "failure_count": 0, "failures_by_check": {}, "sample_failures": [], "contract": "Orders"}
    assert pandas_checks(con) == set()


PLANTED = [
    ("UPDATE orders SET kind = NULL WHERE order_id = 'o2'", "kind: not_nullable", 1, "None"),
    ("UPDATE orders SET amount = 'NaN'::DOUBLE, line = NULL WHERE order_id = 'o2'", "line: not_nullable", 1, "None"),
    ("UPDATE orders SET amount = -1 WHERE order_id = 'o2'", "amount: greater_than_or_equal_to(0)", 1, "-1.0"),
    ("UPDATE orders SET amount = 5000 WHERE order_id = 'o2'", "amount: less_than_or_equal_to(1000)", 1, "5000.0"),
    ("UPDATE orders SET qty = '0' WHERE order_id = 'o2'", "qty: greater_than(0)", 1, "0"),
    ("UPDATE orders SET qty = 'many' WHERE order_id = 'o2'", "qty: coerce_dtype('int64')", 1, "many"),
    ("UPDATE orders SET placed_at = '2300-01-01' WHERE order_id = 'o2'", "placed_at: coerce_dtype('datetime64[ns]')", 1, "2300-01-01 00:00:00"),
    ("UPDATE orders SET kind = 'gift' WHERE order_id = 'o2'", "kind: isin(['sale', 'return'])", 1, "gift"),
    ("UPDATE orders SET currency = 'EURO' WHERE order_id = 'o2'", "currency: str_length(3, 3)", 1, "EURO"),
    ("UPDATE orders SET code = 'x-AB-1' WHERE order_id = 'o2'", "code: str_matches('[A-Z]{2}-\\d+')", 1, "x-AB-1"),
    ("UPDATE orders SET params = '[]' WHERE order_id = 'o2'", "params: str_startswith('{')", 1, "[]"),
    ("UPDATE orders SET order_id = 'o1' WHERE order_id = 'o2'", "order_id: field_uniqueness", 2, "o1"),
    ("UPDATE orders SET line = 1 WHERE order_id = 'o2'", "customer_id, line: multiple_fields_uniqueness", 2, "c1, 1"),
    ("UPDATE orders SET is_paid = NULL WHERE order_id = 'o2'", "is_paid: not_nullable", 1, "None"),
]


@pytest.mark.parametrize(("sql", "label", "count", "value"), PLANTED, ids=[p[1] for p in PLANTED])
def test_each_kind_of_rule_fails_on_a_planted_row(con, sql, label, count, value):
    con.execute(sql)
    outcome = contract_sql.validate_contract(con, "orders", Orders)
    assert not outcome.passed
    assert outcome.metadata["failures_by_check"] == {label: count}
    assert outcome.description == f"{count} contract failure(s) in 3 rows"
    sample = outcome.metadata["sample_failures"][0]
    column, check = label.split(": ", 1)
    assert (sample["column"], sample["check"], sample["failure_case"]) == (column, check, value)
    assert sample["row"] in {"0", "1"} and sample["key"]["order_id"] in {"o1", "o2"}
    if label.startswith("is_paid"):
        return  # pandas turns a null bool into False on coercion: the SQL contract is the stricter one
    if "coerce_dtype('datetime64" not in label:  # beyond pandas' nanosecond range the frame cannot even be built
        assert check in pandas_checks(con)  # the same rule fails under Pandera's pandas backend


def test_nan_counts_as_null_and_checks_ignore_nulls(con):
    con.execute("UPDATE orders SET amount = 'NaN'::DOUBLE, currency = NULL")
    assert contract_sql.validate_contract(con, "orders", Orders).passed
    assert pandas_checks(con) == set()


def test_samples_spread_over_rules_and_mask_personal_data(con):
    con.execute("UPDATE orders SET email = 'no address', kind = 'gift', amount = -1")
    outcome = contract_sql.validate_contract(con, "orders", Orders)
    meta = outcome.metadata
    assert meta["failures_by_check"] == {"kind: isin(['sale', 'return'])": 3, "amount: greater_than_or_equal_to(0)": 3, "email: str_contains('@')": 3}
    assert meta["failure_count"] == 9 and len(meta["sample_failures"]) == contract_sql.SAMPLE_ROWS
    assert {s["check"] for s in meta["sample_failures"]} == {"isin(['sale', 'return'])", "greater_than_or_equal_to(0)", "str_contains('@')"}
    emails = [s for s in meta["sample_failures"] if s["column"] == "email"]
    assert emails and all(s["failure_case"] == PII_MASK for s in emails)
    assert "no address" not in str(meta) and emails[0]["key"] == {"order_id": "o1"}


def test_a_missing_required_column_fails(con):
    con.execute("ALTER TABLE orders DROP COLUMN currency")
    outcome = contract_sql.validate_contract(con, "orders", Orders)
    assert outcome.metadata["failures_by_check"] == {"currency: column_in_dataframe": 1}
    assert outcome.metadata["sample_failures"][0]["failure_case"] == "currency"


def test_a_custom_check_needs_its_sql_form(con):
    @pandera.extensions.register_check_method(statistics=["divisor"])
    def divisible_by(pandas_obj, *, divisor):
        return pandas_obj % divisor == 0

    schema = pa.DataFrameSchema({"line": pa.Column(int, pa.Check.divisible_by(divisor=2))}, name="Even")
    with pytest.raises(ValueError, match="sql_check"):
        contract_sql.compile_contract(schema, {"line": "BIGINT"})
    contract_sql.sql_check("divisible_by")(lambda x, s: f"{x} % {s['divisor']} = 0")
    try:
        class Even(pa.DataFrameModel):
            line: Series[int] = pa.Field(divisible_by={"divisor": 2})

        outcome = contract_sql.validate_contract(con, "orders", Even)
        assert outcome.metadata["failures_by_check"] == {"line: divisible_by(divisor=2)": 2}
    finally:
        del contract_sql.SQL_CHECKS["divisible_by"]
