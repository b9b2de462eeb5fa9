"""Quoting for SQL built as text (one string literal and one identifier rule for every SQL builder) and the write-order
setting of statements whose row order means nothing. No Dagster import."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


def literal(value: object) -> str:
    """A SQL string literal of ``value`` (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


@contextlib.contextmanager
def unordered_writes(con) -> Iterator[None]:
    """Within the block, ``con`` may write a table's rows in any order (``preserve_insertion_order = false``): a
    ``CREATE TABLE AS`` over a window, join or union is then written by every thread instead of one. For statements
    whose result order is not part of their meaning (tables read by joins and aggregates); the setting is restored after.
    A DuckDB setting: on another engine (``con.engine``, e.g. Spark, which never orders writes) nothing is set."""
    if getattr(con, "engine", "duckdb") != "duckdb":
        yield
        return
    (before,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if before else 'false'}")
