"""Data-quality measurements on warehouse tables, for asset checks. No Dagster import.

Each function returns a :class:`CheckOutcome` (passed + JSON-able metadata), so the same logic
runs in a Dagster check, a notebook or a test. Every measurement is SQL run where the table lies; Pandera
contracts are compiled to SQL by :mod:`marketing_assets.lib.contract_sql`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

SAMPLE_ROWS = 5


@dataclasses.dataclass
class CheckOutcome:
    passed: bool
    metadata: dict[str, Any]
    description: str = ""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def duplicate_keys(con: duckdb.DuckDBPyConnection, table: str, key: Sequence[str]) -> CheckOutcome:
    """Primary-key uniqueness: keys that occur more than once."""
    cols = ", ".join(_q(k) for k in key)
    (n_dups, n_rows) = con.execute(
        f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY ALL HAVING count(*) > 1)), (SELECT count(*) FROM {table})"
    ).fetchone()
    sample = con.execute(  # the keys grouped again only when some are duplicated
        f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC LIMIT {SAMPLE_ROWS}"
    ).df().astype(str).to_dict("records") if n_dups else []
    return CheckOutcome(
        passed=n_dups == 0,
        metadata={"key": list(key), "rows": int(n_rows), "duplicated_keys": int(n_dups), "sample": sample},
        description=f"{n_dups} duplicated key value(s) on ({', '.join(key)})",
    )


def null_counts(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> CheckOutcome:
    """Nulls in critical (key and required non-nullable) columns."""
    exprs = ", ".join(f"count(*) FILTER (WHERE {_q(c)} IS NULL)" for c in columns)
    values = con.execute(f"SELECT count(*), {exprs} FROM {table}").fetchone()
    nulls = {c: int(v) for c, v in zip(columns, values[1:], strict=True)}
    bad = {c: v for c, v in nulls.items() if v}
    return CheckOutcome(
        passed=not bad,
        metadata={"rows": int(values[0]), "null_counts": nulls, "columns_with_nulls": sorted(bad)},
        description=f"nulls in {', '.join(f'{c} ({v})' for c, v in bad.items())}" if bad else "no nulls in critical columns",
    )


def row_conservation(
    landed: dict[str, int], logged: pd.DataFrame, staged: dict[str, int], quarantined: dict[str, int]
) -> CheckOutcome:
    """Per landing file: rows read = rows staged + rows quarantined + duplicates collapsed.

    ``landed`` is an independent recount of the files, ``logged`` the ingestion log (one row per
    file with rows_read and duplicates_collapsed), ``staged``/``quarantined`` recounts from the warehouse.
    """
    rows, problems = [], []
    files = sorted(set(landed) | set(logged["source_file"]) | set(staged) | set(quarantined))
    log = logged.set_index("source_file") if len(logged) else logged
    for f in files:
        read = landed.get(f)
        collapsed = int(log.loc[f, "duplicates_collapsed"]) if f in getattr(log, "index", []) else 0
        logged_read = int(log.loc[f, "rows_read"]) if f in getattr(log, "index", []) else None
        s, q = staged.get(f, 0), quarantined.get(f, 0)
        ok = read is not None and logged_read == read and read == s + q + collapsed
        rows.append({"source_file": f, "rows_read": read, "staged": s, "quarantined": q, "collapsed": collapsed, "ok": ok})
        if not ok:
            problems.append(f)
    total = {k: sum((r[k] or 0) for r in rows) for k in ("rows_read", "staged", "quarantined", "collapsed")}
    return CheckOutcome(
        passed=not problems,
        metadata={**total, "files": rows, "files_not_reconciled": problems},
        description=(
            f"rows do not reconcile for {', '.join(problems)}" if problems
            else f"{total['rows_read']} read = {total['staged']} staged + {total['quarantined']} quarantined + {total['collapsed']} collapsed"
        ),
    )


def freshness(
    con: duckdb.DuckDBPyConnection, table: str, event_column: str, max_age_hours: float, now: dt.datetime
) -> CheckOutcome:
    """Newest event within ``max_age_hours`` of ``now`` (UTC)."""
    (newest,) = con.execute(f"SELECT max(CAST({_q(event_column)} AS TIMESTAMP)) FROM {table}").fetchone()
    if newest is None:
        return CheckOutcome(False, {"newest_event": None, "max_age_hours": max_age_hours}, "table has no events")
    now_naive = now.astimezone(dt.timezone.utc).replace(tzinfo=None)
    age = max((now_naive - newest).total_seconds() / 3600.0, 0.0)
    if newest.time() == dt.time(0, 0):  # a day-level date covers its whole day: age counts from its end
        age = max(age - 24.0, 0.0)
    return CheckOutcome(
        passed=age <= max_age_hours,
        metadata={"newest_event": newest.isoformat(), "age_hours": round(age, 2), "max_age_hours": max_age_hours, "event_column": event_column},
        description=f"newest {event_column} is {age:.1f} h old (limit {max_age_hours:g} h)",
    )


def column_names(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Columns of ``schema.table`` in order, none when it does not exist (an upstream that was skipped)."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]
    ).fetchall()
    return [r[0] for r in rows]


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists in the warehouse."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return bool(rows[0][0])


def unassigned_share(
    con: duckdb.DuckDBPyConnection, table: str, limit: float, *, weight: str = "1", where: str = "true", show: Sequence[str] = ("channel_name",), what: str = "rows"
) -> CheckOutcome:
    """Share of ``table``'s rows (weighted by ``weight``) whose ``channel_group`` is Unassigned, with the biggest offenders."""
    total, unassigned = con.execute(
        f"""SELECT coalesce(sum({weight}), 0), coalesce(sum({weight}) FILTER (WHERE channel_group = 'Unassigned'), 0)
            FROM {table} WHERE {where}"""
    ).fetchone()
    cols = ", ".join(_q(c) for c in show)
    top = con.execute(
        f"""SELECT {cols}, sum({weight}) AS n FROM {table} WHERE {where} AND channel_group = 'Unassigned'
            GROUP BY ALL ORDER BY n DESC LIMIT {SAMPLE_ROWS}"""
    ).df()
    share = unassigned / total if total else 0.0
    return CheckOutcome(
        passed=share <= limit,
        metadata={what: int(total), "unassigned": int(unassigned), "share": round(share, 5), "limit": limit, "top_unassigned": top.astype(str).to_dict("records")},
        description=f"{share:.2%} of {what} without a channel (limit {limit:.0%})",
    )
