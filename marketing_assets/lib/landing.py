"""Landing-zone ingestion: typed staging with quarantine, in DuckDB SQL.

A table's contract (a Pandera ``DataFrameModel`` whose field metadata describe the landing
columns, see :mod:`marketing_assets.schemas`) becomes a :class:`TableContract`. ``ingest_table``
reads every matching CSV/Parquet file of the table as text, maps headers case-insensitively,
types each column, and splits the rows in three:

- staged: the typed table, one row per distinct record;
- quarantined: rows breaking a row rule (unparseable value, null key or required value,
  negative amount, value outside its allowed set, conflicting duplicate key), each with file,
  line, column, raw value and reason;
- collapsed: exact duplicates of a staged row (same typed content), counted per file.

Every read row lands in exactly one of the three, per file. The work happens in DuckDB so
10M-row files stream instead of passing through pandas. No Dagster import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandera.pandas as pa

REASONS = (
    "unparseable_value",
    "null_key",
    "null_required_value",
    "negative_value",
    "invalid_value",
    "conflicting_duplicate_key",
)
"""Quarantine reason codes, in the order rules are evaluated on a row."""

FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
PII_MASK = "***"


class LandingError(ValueError):
    """A landing file cannot be read under its table's contract."""


class MissingColumnsError(LandingError):
    def __init__(self, table: str, file: str, missing: Sequence[str], present: Sequence[str]):
        self.table, self.file, self.missing = table, file, list(missing)
        super().__init__(
            f"{file}: missing required column(s) {', '.join(self.missing)} for table {table} "
            f"(header has: {', '.join(present)})"
        )


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    name: str
    sql_type: str
    required: bool = False
    key: bool = False
    nullable: bool = True
    ge: float | None = None
    isin: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    pii: bool = False

    @property
    def header_names(self) -> set[str]:
        return {normalise_header(n) for n in (self.name, *self.aliases)}


@dataclasses.dataclass(frozen=True)
class TableContract:
    name: str
    landing_glob: str
    columns: tuple[ColumnSpec, ...]
    event_time: str | None = None
    optional_table: bool = True

    @property
    def key(self) -> list[str]:
        return [c.name for c in self.columns if c.key]

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


@dataclasses.dataclass
class FileStats:
    source_file: str
    rows_read: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    duplicates_collapsed: int = 0
    ignored_columns: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class IngestResult:
    table: str
    files: list[FileStats]
    rows_staged: int
    rows_quarantined: int
    quarantine_by_reason: dict[str, int]

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def duplicates_collapsed(self) -> int:
        return sum(f.duplicates_collapsed for f in self.files)


# ------------------------------------------------------------------------------------- contracts

_PY_TO_SQL = {"str": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN", "boolean": "BOOLEAN", "datetime64[ns]": "TIMESTAMP"}


def _sql_type(pandera_dtype: object) -> str:
    return _PY_TO_SQL[str(pandera_dtype).lower()]


def normalise_header(name: str) -> str:
    """Header matching key: case-insensitive, surrounding spaces and a UTF-8 BOM ignored."""
    return name.replace("\ufeff", "").strip().lower()


def contract_from_model(name: str, model: type[pa.DataFrameModel]) -> TableContract:
    """Build the ingestion contract of a landing table from its Pandera model."""
    schema = model.to_schema()
    table_meta = model.get_metadata()[model.__name__]["dataframe"] or {}
    columns = []
    for col_name, col in schema.columns.items():
        meta = col.metadata or {}
        if "required" not in meta:  # lineage columns added by ingestion, not landed
            continue
        ge, isin = None, None
        for check in col.checks:
            stats = check.statistics or {}
            if check.name == "greater_than_or_equal_to":
                ge = float(stats["min_value"])
            elif check.name == "isin":
                isin = tuple(sorted(str(v) for v in stats["allowed_values"]))
        columns.append(
            ColumnSpec(
                name=col_name,
                sql_type=meta.get("sql_type") or _sql_type(col.dtype),
                required=bool(meta["required"]),
                key=bool(meta.get("key", False)),
                nullable=bool(col.nullable),
                ge=ge,
                isin=isin,
                aliases=tuple(meta.get("aliases", ())),
                pii=bool(meta.get("pii", False)),
            )
        )
    return TableContract(
        name=name,
        landing_glob=table_meta["landing_glob"],
        columns=tuple(columns),
        event_time=table_meta.get("event_time"),
        optional_table=bool(table_meta.get("optional_table", True)),
    )


# ----------------------------------------------------------------------------------------- files


def discover_files(landing_dir: Path | str, contract: TableContract) -> list[Path]:
    """Landing files of a table, sorted by path (the reading order used for duplicate keys)."""
    root = Path(landing_dir)
    folder, _, pattern = contract.landing_glob.rpartition("/")
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(
        p
        for p in base.glob(pattern)
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(FILE_SUFFIXES)
    )


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(path: Path) -> str:
    p = _sql_str(str(path))
    if path.name.lower().endswith(".parquet"):
        return f"read_parquet({p})"
    # Standard CSV quoting is fixed (a sniffer that saw no quote in its sample would split quoted
    # commas); the delimiter is still detected.
    return f"read_csv({p}, all_varchar=true, header=true, auto_detect=true, quote='\"', escape='\"')"


def map_headers(contract: TableContract, headers: Sequence[str], file_label: str) -> tuple[dict[str, str], list[str]]:
    """Map contract column -> file header; raise on missing required or ambiguous columns."""
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(normalise_header(h), h)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for col in contract.columns:
        found = [by_norm[n] for n in col.header_names if n in by_norm]
        if len(found) > 1:
            raise LandingError(
                f"{file_label}: column {col.name} of table {contract.name} appears under several headers: {', '.join(found)}"
            )
        if found:
            mapping[col.name] = found[0]
            used.add(found[0])
    missing = [c.name for c in contract.columns if c.required and c.name not in mapping]
    if missing:
        raise MissingColumnsError(contract.name, file_label, missing, list(headers))
    return mapping, [h for h in headers if h not in used]


# ------------------------------------------------------------------------------------------- SQL


def _typed_expr(col: ColumnSpec, raw: str) -> str:
    """SQL turning the raw text column into the contract type (NULL when it does not parse)."""
    t = col.sql_type.upper()
    s = f"nullif(trim({raw}), '')"
    if t == "VARCHAR":
        return f"nullif({raw}, '')"
    if t == "BOOLEAN":
        return (
            f"CASE WHEN lower({s}) IN ('true','t','1','yes','y') THEN true "
            f"WHEN lower({s}) IN ('false','f','0','no','n') THEN false END"
        )
    if t == "TIMESTAMP":
        return f"(try_cast({s} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
    if t == "DATE":
        return f"CAST(try_cast({s} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE)"
    return f"try_cast({s} AS {col.sql_type})"


def _violation_exprs(col: ColumnSpec, raw: str, typed: str) -> list[tuple[str, str, str]]:
    """(condition, reason, detail SQL) per rule of the column, in evaluation order."""
    c = _sql_str(col.name)
    is_blank = f"nullif(trim({raw}), '') IS NULL"
    out = [(f"(NOT ({is_blank}) AND {typed} IS NULL)", "unparseable_value", f"'cannot parse ' || {c} || ' value as {col.sql_type}'")]
    if not col.nullable:
        reason, kind = ("null_key", "key column") if col.key else ("null_required_value", "required column")
        out.append((is_blank, reason, f"'{kind} ' || {c} || ' is empty'"))
    if col.ge is not None:
        out.append((f"coalesce({typed} < {col.ge}, false)", "negative_value", f"{c} || ' is below {col.ge:g}'"))
    if col.isin is not None:
        allowed = ", ".join(_sql_str(x) for x in col.isin)
        out.append((f"coalesce({typed} NOT IN ({allowed}), false)", "invalid_value", f"{c} || ' not in {{{', '.join(col.isin)}}}'"))
    return out


def _raw_value_sql(col: ColumnSpec, raw: str) -> str:
    return f"CASE WHEN {raw} IS NULL THEN NULL ELSE '{PII_MASK}' END" if col.pii else raw


def _checked_select(contract: TableContract, label: str, line_offset: int) -> str:
    """SELECT over ``_landing_file`` (raw text, ``raw__<col>``) yielding typed columns and, for bad rows only, the rejection."""
    cols = contract.columns
    typed = {c.name: _ident(f"t__{c.name}") for c in cols}
    rules = [(c, *r) for c in cols for r in _violation_exprs(c, _ident(f"raw__{c.name}"), typed[c.name])]
    any_bad = " OR ".join(cond for _, cond, _, _ in rules) or "false"
    first = " ".join(
        f"WHEN {cond} THEN {{'column_name': {_sql_str(c.name)}, 'reason': '{reason}', 'detail': {detail}, "
        f"'raw_value': {_raw_value_sql(c, _ident('raw__' + c.name))}}}"
        for c, cond, reason, detail in rules
    )
    n_bad = " + ".join(f"CAST({cond} AS INTEGER)" for _, cond, _, _ in rules) or "0"
    record = "to_json({" + ", ".join(f"{_sql_str(c.name)}: {_raw_value_sql(c, _ident('raw__' + c.name))}" for c in cols) + "})::VARCHAR"
    inner = ", ".join(
        [f"rowid + {line_offset} AS source_line"]
        + [_ident(f"raw__{c.name}") for c in cols]
        + [f"{_typed_expr(c, _ident('raw__' + c.name))} AS {typed[c.name]}" for c in cols]
    )
    return f"""
        SELECT {_sql_str(label)} AS source_file, source_line,
               {', '.join(f'{typed[c.name]} AS {_ident(c.name)}' for c in cols)},
               CASE WHEN {any_bad} THEN struct_insert(CASE {first} END, violations := {n_bad}, raw_record := {record}) END AS rejection
        FROM (SELECT {inner} FROM _landing_file)"""


def ingest_table(
    con: duckdb.DuckDBPyConnection,
    contract: TableContract,
    landing_dir: Path | str,
    schema: str,
    quarantine_table: str,
) -> IngestResult:
    """Stage ``contract``'s landing files into ``schema.<name>`` and rejects into ``schema.<quarantine_table>``.

    Both tables are replaced in one transaction; an absent table yields empty, typed tables.
    Raises :class:`MissingColumnsError` naming the file when a required column is absent, and
    :class:`LandingError` naming the file when it cannot be parsed as CSV/Parquet at all.
    """
    root = Path(landing_dir)
    files = discover_files(root, contract)
    cols = contract.columns
    stats: list[FileStats] = []
    typed_cols = ", ".join(f"{_ident(c.name)} {c.sql_type}" for c in cols)

    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    con.execute("DROP TABLE IF EXISTS _landing_checked")
    con.execute(
        f"""CREATE TEMP TABLE _landing_checked (source_file VARCHAR, source_line BIGINT, {typed_cols},
            rejection STRUCT(column_name VARCHAR, reason VARCHAR, detail VARCHAR, raw_value VARCHAR, violations INTEGER, raw_record VARCHAR))"""
    )
    for path in files:
        label = path.relative_to(root).as_posix()
        reader = _reader(path)
        try:
            headers = [d[0] for d in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
            mapping, ignored = map_headers(contract, headers, label)
            select = ", ".join(
                (f"CAST({_ident(mapping[c.name])} AS VARCHAR)" if c.name in mapping else "NULL::VARCHAR") + f" AS {_ident('raw__' + c.name)}"
                for c in cols
            )
            con.execute("DROP TABLE IF EXISTS _landing_file")
            # A table built from an ordered scan keeps insertion order, so rowid is the data-row index.
            con.execute(f"CREATE TEMP TABLE _landing_file AS SELECT {select} FROM {reader}")
        except duckdb.Error as exc:
            raise LandingError(f"{label}: cannot be read as table {contract.name}: {exc}") from exc
        line_offset = 1 if path.name.lower().endswith(".parquet") else 2
        con.execute(f"INSERT INTO _landing_checked {_checked_select(contract, label, line_offset)}")
        (n,) = con.execute("SELECT count(*) FROM _landing_file").fetchone()
        stats.append(FileStats(source_file=label, rows_read=int(n), ignored_columns=ignored))
        con.execute("DROP TABLE IF EXISTS _landing_file")

    content = ", ".join(_ident(c.name) for c in cols)
    key = ", ".join(_ident(k) for k in contract.key) or content
    key_value = " || ', ' || ".join(f"coalesce(CAST({_ident(k)} AS VARCHAR), 'NULL')" for k in contract.key) or "''"
    record = "to_json({" + ", ".join(
        f"{_sql_str(c.name)}: " + (f"CASE WHEN {_ident(c.name)} IS NULL THEN NULL ELSE '{PII_MASK}' END" if c.pii else f"CAST({_ident(c.name)} AS VARCHAR)")
        for c in cols
    ) + "})::VARCHAR"
    # Only keys seen more than once need ranking: exact duplicates collapse to their first row,
    # and a later row with the same key but other content is a conflicting duplicate.
    con.execute("DROP TABLE IF EXISTS _landing_ranked")
    con.execute(
        f"""CREATE TEMP TABLE _landing_ranked AS
        WITH multi AS (
            SELECT {key} FROM _landing_checked WHERE rejection IS NULL GROUP BY ALL HAVING count(*) > 1
        ),
        candidates AS (
            SELECT c.*, hash({', '.join('c.' + _ident(x.name) for x in cols)}) AS content_hash
            FROM _landing_checked c SEMI JOIN multi USING ({key}) WHERE c.rejection IS NULL
        ),
        dedup AS (
            SELECT *, row_number() OVER (PARTITION BY {key}, content_hash ORDER BY source_file, source_line) AS dup_rank
            FROM candidates
        )
        SELECT * EXCLUDE (content_hash),
            row_number() OVER (PARTITION BY {key}, dup_rank = 1 ORDER BY source_file, source_line) AS key_rank,
            first_value(source_file || ':' || source_line) OVER (
                PARTITION BY {key}, dup_rank = 1 ORDER BY source_file, source_line) AS key_first_seen
        FROM dedup"""
    )
    table = f"{_ident(schema)}.{_ident(contract.name)}"
    qtable = f"{_ident(schema)}.{_ident(quarantine_table)}"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""CREATE OR REPLACE TABLE {table} AS
            SELECT {content}, source_file, source_line FROM (
                SELECT * FROM _landing_checked c WHERE rejection IS NULL
                  AND NOT EXISTS (SELECT 1 FROM _landing_ranked r WHERE r.source_file = c.source_file AND r.source_line = c.source_line)
                UNION ALL BY NAME
                SELECT * EXCLUDE (dup_rank, key_rank, key_first_seen) FROM _landing_ranked WHERE dup_rank = 1 AND key_rank = 1
            )"""
        )
        con.execute(
            f"""CREATE OR REPLACE TABLE {qtable} AS
            SELECT {_sql_str(contract.name)} AS table_name, source_file, source_line, column_name, raw_value,
                   reason, detail, violations, raw_record
            FROM (
                SELECT source_file, source_line, rejection.* FROM _landing_checked WHERE rejection IS NOT NULL
                UNION ALL BY NAME
                SELECT source_file, source_line, {_sql_str(contract.key[0] if contract.key else '')} AS column_name,
                       CAST({_ident(contract.key[0]) if contract.key else "''"} AS VARCHAR) AS raw_value,
                       'conflicting_duplicate_key' AS reason,
                       'key (' || {key_value} || ') already staged from ' || key_first_seen || ' with different values' AS detail,
                       1 AS violations, {record} AS raw_record
                FROM _landing_ranked WHERE dup_rank = 1 AND key_rank > 1
            ) ORDER BY source_file, source_line"""
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise

    staged = dict(con.execute(f"SELECT source_file, count(*) FROM {table} GROUP BY ALL").fetchall())
    collapsed = dict(con.execute("SELECT source_file, count(*) FROM _landing_ranked WHERE dup_rank > 1 GROUP BY ALL").fetchall())
    quarantined = dict(con.execute(f"SELECT source_file, count(*) FROM {qtable} GROUP BY ALL").fetchall())
    by_reason = dict(con.execute(f"SELECT reason, count(*) FROM {qtable} GROUP BY ALL ORDER BY ALL").fetchall())
    for fs in stats:
        fs.rows_staged = int(staged.get(fs.source_file, 0))
        fs.duplicates_collapsed = int(collapsed.get(fs.source_file, 0))
        fs.rows_quarantined = int(quarantined.get(fs.source_file, 0))
    for tmp in ("_landing_checked", "_landing_ranked"):
        con.execute(f"DROP TABLE IF EXISTS {tmp}")
    return IngestResult(
        table=contract.name,
        files=stats,
        rows_staged=sum(f.rows_staged for f in stats),
        rows_quarantined=sum(f.rows_quarantined for f in stats),
        quarantine_by_reason={k: int(v) for k, v in by_reason.items()},
    )


def count_landing_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Data rows in one landing file, counted independently of ingestion (for conservation checks)."""
    (n,) = con.execute(f"SELECT count(*) FROM {_reader(path)}").fetchone()
    return int(n)

