"""The read-only BI database: a small DuckDB file of views over the published extracts. No Dagster import.

BI tools (Superset, Metabase, Power BI through ODBC) open a new connection per query. They must never hold
the warehouse's write lock, and they must see an extract refresh without a restart. So they read a separate
DuckDB file holding only ``CREATE VIEW <extract> AS SELECT * FROM read_parquet('<published file>')``: the
views read the Parquet files the write-audit-publish step moves into place (:mod:`marketing_assets.lib.publish`),
so each query sees the latest published version, and the file itself changes only when the list of extracts
does. The file is written to a temporary name and renamed over the old one, so a reader never sees half of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb

from marketing_assets.lib.sql import ident, literal

SCHEMA = "extracts"


def view_sql(name: str, parquet: Path, schema: str = SCHEMA) -> str:
    """``CREATE VIEW`` of one extract in ``schema`` over its published Parquet file (absolute path, read literally)."""
    return f"CREATE OR REPLACE VIEW {ident(schema)}.{ident(name)} AS SELECT * FROM read_parquet({literal(str(Path(parquet).resolve()))})"


def build_bi_database(path: Path | str, extracts: Mapping[str, Path] | Iterable[tuple[str, Path]]) -> list[str]:
    """Write the BI database at ``path`` with one view per extract whose Parquet file is published.

    ``extracts`` maps extract name -> published Parquet path. Extracts not published yet are left out (a view
    over a missing file would fail every query) and listed in the return value's complement: the names of the
    views created are returned, sorted."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    items = sorted(dict(extracts).items())
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # DuckDB creates the file itself
    created = []
    try:
        with duckdb.connect(tmp) as con:
            con.execute(f"CREATE SCHEMA {SCHEMA}")
            for name, parquet in items:
                if Path(parquet).is_file():
                    con.execute(view_sql(name, Path(parquet)))
                    created.append(name)
            con.execute("CHECKPOINT")
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp + ".wal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return created


def read_only_connection(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A connection as BI tools should open the database: read-only, so nothing can write through it."""
    return duckdb.connect(str(Path(path).expanduser().resolve()), read_only=True)
