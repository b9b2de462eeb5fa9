"""Compare two copies of a table, in SQL: the same rows by key, strings, integers and dates exact, numbers within a
relative tolerance.

Used to prove that two engines (DuckDB, Spark) turn the same landing zone into the same warehouse and extracts: both
sides are relations DuckDB can read (a table of an attached warehouse, ``read_parquet`` over a Spark table's Parquet
directory or over a published extract). The work runs in the engine; Python receives counts and at most
``samples`` differing keys per table.

Rows are paired by ``key`` (a table's unique columns, from its contract). Without a key, every column that is not a
float or decimal is the key and rows with the same key are paired in the order of their numbers, so a table of
duplicates still compares as a multiset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandera.pandas as pa

from marketing_assets.lib.sql import ident

APPROXIMATE_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")


@dataclass(frozen=True)
class TableDifference:
    """What differs between two copies of one table (empty ``problems``: they agree)."""

    name: str
    rows_left: int
    rows_right: int
    problems: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.problems


def contract_key(model: type[pa.DataFrameModel]) -> list[str]:
    """The unique key of a Pandera contract: ``Config.unique`` columns, else the one column marked ``unique``."""
    schema = model.to_schema()
    unique = schema.unique
    if unique:
        return [unique] if isinstance(unique, str) else list(unique)
    return [name for name, column in schema.columns.items() if column.unique][:1]


def _columns(con, relation: str) -> dict[str, str]:
    return {row[0]: str(row[1]).upper() for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _approximate(kind: str) -> bool:
    return kind.startswith(APPROXIMATE_TYPES)


def _kind(sql_type: str) -> str:
    """What a value is, whatever its width or precision: engines store the same value in different types (DuckDB's
    TIMESTAMP_NS from pandas and Spark's UTC-adjusted TIMESTAMP WITH TIME ZONE; INTEGER and BIGINT)."""
    if sql_type.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    if sql_type in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "INTEGER"
    return "NUMBER" if _approximate(sql_type) else sql_type


def _normalised(relation: str, columns: dict[str, str]) -> str:
    """``relation`` with its timestamps as plain TIMESTAMP (an instant read in the session's time zone, UTC here)."""
    if not any(_kind(t) == "TIMESTAMP" and t != "TIMESTAMP" for t in columns.values()):
        return relation
    select = ", ".join(f"CAST({ident(c)} AS TIMESTAMP) AS {ident(c)}" if _kind(t) == "TIMESTAMP" else ident(c) for c, t in columns.items())
    return f"(SELECT {select} FROM {relation})"


def compare_relations(
    con,
    name: str,
    left: str,
    right: str,
    key: Sequence[str] | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    samples: int = 3,
) -> TableDifference:
    """Compare relations ``left`` and ``right`` (SQL FROM items) on ``con`` (DuckDB).

    A number agrees when ``|a - b| <= atol + rtol * max(|a|, |b|)`` (NaN with NaN, NULL with NULL); any other value
    when it is identical (NULL with NULL; timestamps as instants). Reports columns present on one side only, columns
    whose values are of another kind (text vs number, date vs timestamp; not a wider integer or another timestamp type),
    rows present on one side only, and for each differing column the count and up to ``samples`` keys."""
    lcols, rcols = _columns(con, left), _columns(con, right)
    left, right = _normalised(left, lcols), _normalised(right, rcols)
    rows_left, rows_right = (con.execute(f"SELECT count(*) FROM {r}").fetchone()[0] for r in (left, right))
    problems = [f"column {c} only in {side}" for side, a, b in (("left", lcols, rcols), ("right", rcols, lcols)) for c in a if c not in b]
    problems += [f"column {c} is {lcols[c]} in left, {rcols[c]} in right" for c in lcols
                 if c in rcols and _kind(lcols[c]) != _kind(rcols[c])]
    shared = [c for c in lcols if c in rcols]
    approx = [c for c in shared if _approximate(lcols[c]) or _approximate(rcols[c])]
    exact = [c for c in shared if c not in approx]
    key = list(key) if key else exact
    missing = [k for k in key if k not in shared]
    if missing:
        return TableDifference(name, rows_left, rows_right, [*problems, f"key column(s) {missing} not on both sides"])
    # rows with the same key paired in the order of their values (a key-less table compares as a multiset)
    order = ", ".join([*(ident(c) for c in approx), *(ident(c) for c in exact if c not in key)]) or "1"
    partition = ", ".join(ident(k) for k in key) or "1"

    def numbered(relation: str) -> str:
        return f"(SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS _pair FROM {relation})"

    on = " AND ".join([*(f"l.{ident(k)} IS NOT DISTINCT FROM r.{ident(k)}" for k in key), "l._pair = r._pair"])
    differs = {}
    for c in shared:
        if c in key:
            continue
        lc, rc = f"l.{ident(c)}", f"r.{ident(c)}"
        if c in approx:
            a, b = f"CAST({lc} AS DOUBLE)", f"CAST({rc} AS DOUBLE)"
            agree = (f"(({a} IS NULL AND {b} IS NULL) OR (isnan({a}) AND isnan({b})) OR "
                     f"abs({a} - {b}) <= {atol!r} + {rtol!r} * greatest(abs({a}), abs({b})))")
            differs[c] = f"NOT coalesce({agree}, false)"
        else:
            differs[c] = f"{lc} IS DISTINCT FROM {rc}"
    both = "l._pair IS NOT NULL AND r._pair IS NOT NULL"
    key_text = " || '|' || ".join(f"coalesce(CAST(coalesce(l.{ident(k)}, r.{ident(k)}) AS VARCHAR), 'NULL')" for k in key) or "'(no key)'"
    checks = {"only_left": "r._pair IS NULL", "only_right": "l._pair IS NULL",
              **{f"col:{c}": f"{both} AND {cond}" for c, cond in differs.items()}}
    select = ", ".join(f"count(*) FILTER (WHERE {cond}), list({key_text}) FILTER (WHERE {cond})[1:{int(samples)}]" for cond in checks.values())
    row = con.execute(f"SELECT {select} FROM {numbered(left)} l FULL JOIN {numbered(right)} r ON {on}").fetchone()
    for i, label in enumerate(checks):
        count, keys = row[2 * i], row[2 * i + 1]
        if not count:
            continue
        what = {"only_left": "only in left", "only_right": "only in right"}.get(label, f"column {label[4:]} differs")
        problems.append(f"{what}: {count} row(s), e.g. key {', '.join(map(str, keys))}")
    return TableDifference(name, rows_left, rows_right, problems)
