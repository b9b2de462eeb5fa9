"""Pandera contracts compiled to DuckDB SQL: a table is validated where it lies, no rows pulled. No Dagster import.

The rules come from the table's own ``pa.DataFrameSchema`` (``schemas.py``), never from a second copy:
the dtype (values the contract's type cannot hold), ``nullable``, ``unique`` (a column's, or the schema's
column sets), every Pandera check by its registered name and statistics (``ge``, ``isin``, ``str_length``,
``str_matches``, ...) and ``required``/``strict`` columns. One scan counts every row rule, one ``GROUP BY``
per uniqueness rule counts duplicated rows; only a failing rule reads rows again, a few, for its samples.

Semantics follow Pandera's pandas backend: checks ignore nulls (NaN counts as null in float columns) unless
``ignore_na=False``, failures are labelled ``<column>: <check>`` with Pandera's check text, and a duplicated
value fails on every row that holds it. Stricter than pandas on purpose: a null in a non-nullable bool column
fails (pandas coerces it to False), and uniqueness holds over the whole table, not per batch. A custom check
gets its SQL form with :func:`sql_check`; a contract with a rule that has none is refused when it is compiled,
so no rule is skipped silently.

Not Pandera's Ibis backend: it has no column ``unique``, no coercion (an INTEGER column fails an ``int`` contract),
and its failure cases carry neither keys nor row positions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa

from marketing_assets.lib.landing import PII_MASK
from marketing_assets.lib.quality import SAMPLE_ROWS, CheckOutcome, table_columns
from marketing_assets.lib.sql import ident, literal


SqlCheck = Callable[[str, Mapping[str, Any]], str]
"""(SQL expression of the checked value, the check's statistics) -> SQL predicate true where the value passes."""

SQL_CHECKS: dict[str, SqlCheck] = {}


def sql_check(name: str) -> Callable[[SqlCheck], SqlCheck]:
    """Register the SQL form of the Pandera check called ``name`` (a custom check registered with
    ``pandera.extensions.register_check_method`` keeps its pandas form there and states its SQL form here)."""

    def register(fn: SqlCheck) -> SqlCheck:
        SQL_CHECKS[name] = fn
        return fn

    return register


def sql_value(value: Any) -> str:
    """A Python value as a SQL literal of its type."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, pd.Timestamp | dt.datetime):
        return f"TIMESTAMP {literal(pd.Timestamp(value).isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {literal(value.isoformat())}"
    return literal(value)


def _values(values) -> str:
    return ", ".join(sql_value(v) for v in sorted(values, key=repr)) if isinstance(values, set | frozenset) else ", ".join(map(sql_value, values))


def _range(x: str, s: Mapping[str, Any]) -> str:
    low = f"{x} {'>=' if s.get('include_min', True) else '>'} {sql_value(s['min_value'])}"
    high = f"{x} {'<=' if s.get('include_max', True) else '<'} {sql_value(s['max_value'])}"
    return f"{low} AND {high}"


def _length(x: str, s: Mapping[str, Any]) -> str:
    if s.get("exact_value") is not None:
        return f"length({x}) = {int(s['exact_value'])}"
    bounds = [f"length({x}) >= {int(s['min_value'])}" if s.get("min_value") is not None else "",
              f"length({x}) <= {int(s['max_value'])}" if s.get("max_value") is not None else ""]
    return " AND ".join(b for b in bounds if b) or "TRUE"


SQL_CHECKS.update({
    "equal_to": lambda x, s: f"{x} = {sql_value(s['value'])}",
    "not_equal_to": lambda x, s: f"{x} <> {sql_value(s['value'])}",
    "greater_than": lambda x, s: f"{x} > {sql_value(s['min_value'])}",
    "greater_than_or_equal_to": lambda x, s: f"{x} >= {sql_value(s['min_value'])}",
    "less_than": lambda x, s: f"{x} < {sql_value(s['max_value'])}",
    "less_than_or_equal_to": lambda x, s: f"{x} <= {sql_value(s['max_value'])}",
    "in_range": _range,
    "isin": lambda x, s: f"{x} IN ({_values(s['allowed_values'])})",
    "notin": lambda x, s: f"{x} NOT IN ({_values(s['forbidden_values'])})",
    # Pandera's str_matches is re.match (anchored at the start), str_contains re.search
    "str_matches": lambda x, s: f"regexp_matches({x}, {literal('^(?:' + s['pattern'] + ')')})",
    "str_contains": lambda x, s: f"regexp_matches({x}, {literal(s['pattern'])})",
    "str_startswith": lambda x, s: f"starts_with({x}, {literal(s['string'])})",
    "str_endswith": lambda x, s: f"ends_with({x}, {literal(s['string'])})",
    "str_length": _length,
})

# The contract's dtype -> (DuckDB type its values are checked as, column types that hold it as they are).
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
_FLOATS = {"FLOAT", "DOUBLE"}
_TIMES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE", "DATE"}
_DTYPES: dict[str, tuple[str, set[str] | None]] = {
    "str": ("VARCHAR", None),  # every value has a text form: never a coercion failure
    "string": ("VARCHAR", None),
    "int64": ("BIGINT", _INTS),
    "Int64": ("BIGINT", _INTS),
    "float64": ("DOUBLE", _INTS | _FLOATS | {"HUGEINT", "UBIGINT", "DECIMAL"}),
    "bool": ("BOOLEAN", {"BOOLEAN"}),
    "boolean": ("BOOLEAN", {"BOOLEAN"}),
    "datetime64[ns]": ("TIMESTAMP", _TIMES),
}
# pandas' nanosecond timestamps end here; a value outside cannot take the contract's type
_NS_RANGE = f"TIMESTAMP {literal(pd.Timestamp.min.ceil('us').isoformat(sep=' '))} AND TIMESTAMP {literal(pd.Timestamp.max.floor('us').isoformat(sep=' '))}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One contract rule: rows where ``failing`` holds fail (row rule), or rows sharing ``group`` values (uniqueness)."""

    column: str
    check: str
    failing: str = ""
    group: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.column}: {self.check}"


@dataclasses.dataclass(frozen=True)
class CompiledContract:
    rules: list[Rule]
    missing: list[str]  # required columns the table lacks (``column_in_dataframe``)
    unexpected: list[str]  # columns a strict contract does not name (``column_in_schema``)
    keys: list[str]  # columns that identify a failing row in samples (never personal data)
    pii: list[str]  # columns whose values never appear in samples


def _base_type(sql_type: str) -> str:
    return sql_type.split("(", 1)[0]


def key_columns(schema: pa.DataFrameSchema) -> list[str]:
    """Columns naming a row: the primary key (``key`` metadata), else the unique column(s), never personal data."""
    cols = schema.columns
    keys = [n for n, c in cols.items() if (c.metadata or {}).get("key")]
    keys = keys or [n for n, c in cols.items() if c.unique]
    if not keys and schema.unique:
        keys = list(schema.unique) if all(isinstance(u, str) for u in schema.unique) else list(schema.unique[0])
    return [k for k in keys if k in cols and not (cols[k].metadata or {}).get("pii")]


def _check_sql(check: pa.Check, x: str, where: str) -> str:
    if check.name not in SQL_CHECKS:
        raise ValueError(f"{where}: check {check.name!r} has no SQL form; register one with contract_sql.sql_check({check.name!r})")
    return SQL_CHECKS[check.name](x, check.statistics or {})


def compile_contract(schema: pa.DataFrameSchema, table_types: Mapping[str, str]) -> CompiledContract:
    """The schema's rules as SQL over a table with columns ``table_types`` (name -> DuckDB type)."""
    rules, missing = [], []
    for name, col in schema.columns.items():
        where = f"{schema.name}.{name}"
        if col.regex:
            raise ValueError(f"{where}: regex column names have no SQL form")
        if name not in table_types:
            if col.required:
                missing.append(name)
            continue
        c, typ = ident(name), _base_type(table_types[name])
        is_null = f"({c} IS NULL OR isnan({c}))" if typ in _FLOATS else f"{c} IS NULL"
        target, holds = _DTYPES.get(str(col.dtype), (None, None))
        if target is None:
            raise ValueError(f"{where}: dtype {col.dtype} has no SQL form")
        as_is = typ == "VARCHAR" if holds is None else typ in holds
        x = c if as_is else f"TRY_CAST({c} AS {target})"
        if holds is not None:  # the contract's type cannot hold some values: coercion fails on those rows
            bad = [f"{x} IS NULL"] if x != c else []
            if target == "TIMESTAMP":
                bad.append(f"{x} NOT BETWEEN {_NS_RANGE}")
            if bad:
                rules.append(Rule(name, f"coerce_dtype('{col.dtype}')", f"NOT ({is_null}) AND ({' OR '.join(bad)})"))
        if not col.nullable:
            rules.append(Rule(name, "not_nullable", is_null))
        for check in col.checks:
            passes = _check_sql(check, x, where)
            failing = f"NOT ({is_null}) AND NOT ({passes})" if check.ignore_na else f"({passes}) IS NOT TRUE"
            rules.append(Rule(name, check.error or check.name, failing))
        if col.unique:
            rules.append(Rule(name, "field_uniqueness", group=(name,)))
    subsets = [schema.unique] if schema.unique and all(isinstance(u, str) for u in schema.unique) else list(schema.unique or [])
    for subset in subsets:
        present = tuple(u for u in subset if u in table_types)
        if present:
            rules.append(Rule(", ".join(present), "multiple_fields_uniqueness", group=present))
    if schema.checks:
        raise ValueError(f"{schema.name}: dataframe-wide checks have no SQL form; state the rule on a column")
    unexpected = [n for n in table_types if n not in schema.columns] if schema.strict is True else []
    pii = [n for n, col in schema.columns.items() if (col.metadata or {}).get("pii")]
    return CompiledContract(rules, missing, unexpected, key_columns(schema), pii)


def _duplicates(table: str, group: tuple[str, ...]) -> str:
    return f"SELECT {', '.join(map(ident, group))}, count(*) AS n FROM {table} GROUP BY ALL HAVING count(*) > 1"


def _samples(con: duckdb.DuckDBPyConnection, table: str, contract: CompiledContract, rule: Rule) -> list[dict[str, Any]]:
    """Up to ``SAMPLE_ROWS`` failing rows of one rule: position, key values and the failing value (personal data masked)."""
    if rule.group:
        value = "concat_ws(', ', " + ", ".join(f"t.{ident(g)}" for g in rule.group) + ")"
        on = " AND ".join(f"t.{ident(g)} IS NOT DISTINCT FROM d.{ident(g)}" for g in rule.group)
        source, masked = f"{table} t JOIN ({_duplicates(table, rule.group)}) d ON {on}", any(g in contract.pii for g in rule.group)
    else:
        value = f"CAST(t.{ident(rule.column)} AS VARCHAR)"
        source, masked = f"{table} t WHERE {rule.failing}", rule.column in contract.pii
    keys = "".join(f", CAST(t.{ident(k)} AS VARCHAR)" for k in contract.keys)
    rows = con.execute(f"SELECT t.rowid, {value}{keys} FROM {source} ORDER BY t.rowid LIMIT {SAMPLE_ROWS}").fetchall()
    out = []
    for row_id, failure, *key_values in rows:
        sample = {"column": rule.column, "check": rule.check, "failure_case": PII_MASK if masked and failure is not None else str(failure), "row": str(row_id)}
        if contract.keys:
            sample["key"] = dict(zip(contract.keys, map(str, key_values), strict=True))
        out.append(sample)
    return out


def validate_contract(con: duckdb.DuckDBPyConnection, table: str, model: type[pa.DataFrameModel]) -> CheckOutcome:
    """Validate ``table`` against its Pandera model inside DuckDB (lazy: every failing row counted, per rule)."""
    contract = compile_contract(model.to_schema(), dict(table_columns(con, table)))
    row_rules = [r for r in contract.rules if not r.group]
    group_rules = [r for r in contract.rules if r.group]
    exprs = ["count(*)", *(f"count_if({r.failing})" for r in row_rules)]  # count_if: ~20x faster than FILTER here
    exprs += [f"(SELECT coalesce(sum(n), 0) FROM ({_duplicates(table, r.group)}))" for r in group_rules]
    rows, *failing = con.execute(f"SELECT {', '.join(exprs)} FROM {table}").fetchone()
    failed = [(rule, int(n)) for rule, n in zip(row_rules + group_rules, failing, strict=True) if n]
    counts = {f"{m}: column_in_dataframe": 1 for m in contract.missing} | {f"{u}: column_in_schema": 1 for u in contract.unexpected}
    counts |= {rule.label: n for rule, n in failed}
    samples = [{"column": m, "check": "column_in_dataframe", "failure_case": m, "row": "None"} for m in contract.missing]
    per_rule = [_samples(con, table, contract, rule) for rule, _ in failed[:SAMPLE_ROWS]]
    samples += [s for round_ in itertools.zip_longest(*per_rule) for s in round_ if s is not None]  # every failing rule shown
    failures = sum(counts.values())
    return CheckOutcome(
        passed=failures == 0,
        metadata={
            "rows_validated": int(rows),
            "failure_count": failures,
            "failures_by_check": counts,
            "sample_failures": samples[:SAMPLE_ROWS],
            "contract": model.__name__,
        },
        description=f"{failures} contract failure(s) in {rows} rows" if failures else f"{rows} rows conform to {model.__name__}",
    )
