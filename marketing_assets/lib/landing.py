"""Landing-zone ingestion: typed staging with quarantine, in DuckDB SQL.

A table's contract (a Pandera ``DataFrameModel`` whose field metadata describe the landing
columns, see :mod:`marketing_assets.schemas`) becomes a :class:`TableContract`. ``ingest_table``
reads every matching CSV/Parquet file of the table as text, maps headers case-insensitively,
types each column, and splits the rows in three:

- staged: the typed table, one row per distinct record;
- quarantined: records that cannot be split into fields (wrong field count, quote not closed) or
  are not UTF-8, and rows breaking a row rule (unparseable value, implausible date, null key or
  required value, negative amount, value outside its allowed set, conflicting duplicate key), each
  with file, physical start line, column, raw value (PII masked) and reason;
- collapsed: exact duplicates of a staged row (same typed content), counted per file.

Every read row lands in exactly one of the three, per file. CSV records are split by DuckDB's strict
CSV reader and streamed straight into the typing and rules (:func:`_engine_csv`); Python sees the
file's line count and the few lines DuckDB rejects. A file DuckDB cannot number or classify as
Python's ``csv`` module would (a record over several lines, a blank line, a quote left open) is
split by :func:`csv_records` instead and handed to DuckDB as a clean file. Files are opened by their
exact names, never as patterns. The recount of :func:`count_landing_rows` never uses DuckDB's
CSV reader. No Dagster import here.

On Spark (:class:`marketing_assets.lib.spark_engine.SparkConnection`) the same SQL runs on the same
contracts; what differs is isolated in the reading of a file: every CSV file goes through the splitter
(no engine reader numbers lines), and a Parquet file's numbered rows are written as text by DuckDB on the
driver (the text of a typed value is DuckDB's on both engines); both copies are written to a scratch
directory of the Spark warehouse, which every executor reads.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import gzip
import itertools
import os
import re
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from marketing_assets.lib.dialect import stable_hash
from marketing_assets.lib.sql import ident, literal

REASONS = (
    "malformed_record",
    "invalid_encoding",
    "unparseable_value",
    "implausible_date",
    "null_key",
    "null_required_value",
    "negative_value",
    "invalid_value",
    "conflicting_duplicate_key",
)
"""Quarantine reason codes, in the order rules are evaluated on a row."""

FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet")
PII_MASK = "***"
RECORD_COLUMN = "(record)"
"""``column_name`` of a quarantined record that could not be split into fields."""


@dataclasses.dataclass(frozen=True)
class DateBounds:
    """Plausible instants: from ``min_date`` to ``max_days_after_newest_file`` after the newest landing file's mtime."""

    min_date: dt.date = dt.date(1990, 1, 1)
    max_days_after_newest_file: int = 366

    def window(self, files: Sequence[Path]) -> tuple[dt.datetime, dt.datetime]:
        newest = max((p.stat().st_mtime for p in files), default=dt.datetime.now(dt.timezone.utc).timestamp())
        upper = dt.datetime.fromtimestamp(newest, dt.timezone.utc).replace(tzinfo=None)
        return dt.datetime.combine(self.min_date, dt.time()), upper + dt.timedelta(days=self.max_days_after_newest_file)


class LandingError(ValueError):
    """A landing file cannot be read under its table's contract."""


class MissingColumnsError(LandingError):
    def __init__(self, table: str, file: str, missing: Sequence[str], present: Sequence[str]):
        self.table, self.file, self.missing = table, file, list(missing)
        super().__init__(
            f"{file}: missing required column(s) {', '.join(self.missing)} for table {table} "
            f"(header has: {', '.join(header_label(h) for h in present[:40])}{', ...' if len(present) > 40 else ''})"
        )


def header_label(name: str) -> str:
    """A header name fit for an error message: a file without a header shows data there, so what
    looks like a value (an e-mail, a long text) is masked."""
    name = name.strip()
    return PII_MASK if "@" in name or len(name) > 64 else name


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


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def check_inside(root: Path | str, path: Path, label: str) -> None:
    """Refuse a landing file (or link) that resolves outside the landing zone; names only the landing entry."""
    try:
        path.resolve(strict=True).relative_to(Path(root).resolve())
    except (ValueError, OSError):
        raise LandingError(
            f"{label}: resolves outside the landing zone (a link leaving it?); refused, nothing of the target was read"
        ) from None


def _literal_parquet(path: Path, tmp: Path) -> str:
    """``read_parquet`` of exactly ``path``: read through a link with a glob-free name, so no character is a pattern."""
    link = tmp / f"landing_{len(os.listdir(tmp))}.parquet"
    os.symlink(path.resolve(), link)
    return f"read_parquet({literal(str(link))})"


def _is_spark(con) -> bool:
    """Whether ``con`` runs its SQL on Spark (:class:`marketing_assets.lib.spark_engine.SparkConnection`)."""
    return getattr(con, "engine", "duckdb") == "spark"


@dataclasses.dataclass(frozen=True)
class _Scratch:
    """Where the engine reads a landing file's rewritten copy (a clean CSV, a numbered Parquet file), written first
    to ``local``, the file's own temporary folder: in place on DuckDB; on Spark copied to ``remote``, a scratch
    directory of the warehouse (:meth:`SparkConnection.scratch`) that every executor reads."""

    local: Path
    con: object = None
    remote: str | None = None

    def publish(self, path: Path) -> str:
        """The path the engine reads ``path`` (a file under ``local``) at."""
        if self.remote is None:
            return str(path)
        uri = f"{self.remote}/{self.local.name}_{path.name}"
        self.con.put_file(path, uri)
        return uri


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


class _Lines:
    """Physical lines of a file, decoded as UTF-8, with their numbers; lines can be pushed back to re-parse."""

    def __init__(self, raw: Iterator[bytes]):
        self.raw, self.lineno = raw, 0
        self.pending: list[tuple[int, str, bool]] = []
        self.taken: list[tuple[int, str, bool]] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.pending:
            item = self.pending.pop()
        else:
            raw = next(self.raw)
            self.lineno += 1
            try:
                text, ok = raw.decode("utf-8"), True
            except UnicodeDecodeError:
                text, ok = raw.decode("utf-8", errors="replace"), False
            item = (self.lineno, text.lstrip("\ufeff") if self.lineno == 1 else text, ok)
        self.taken.append(item)
        return item[1]

    def push_back_after_first(self) -> None:
        """Re-read every line of the current record but its first (recovers from a runaway quote)."""
        self.pending.extend(reversed(self.taken[1:]))


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _simple_record(delim: str) -> re.Pattern[str]:
    """One line whose fields are unquoted without quotes, or fully quoted with doubled inner quotes."""
    d = re.escape(delim)
    field = f'(?:"(?:[^"\\r\\n]|"")*"|[^"{d}\\r\\n]*)'
    return re.compile(f"{field}(?:{d}{field})*")


def csv_records(path: Path) -> Iterator[tuple[int, list[str] | None, str | None, str, str | None]]:
    """``(start line, fields, reason, detail, plain line)`` per record of a CSV file, the header first.

    ``fields`` is None for a record that cannot be used: ``malformed_record`` (wrong field count,
    quote not closed or misplaced) or ``invalid_encoding`` (bytes that are not UTF-8). A malformed
    record spanning several lines is rejected on its first line and the following lines are read
    again, so one stray quote costs one record. Details never quote the record's content.
    ``plain line`` is the record's text when it is one line of plain or fully quoted fields (any
    reader splits it the same way), else None.
    """
    with _open_binary(path) as fh:
        lines = _Lines(iter(fh))
        try:
            next(lines)
        except StopIteration:
            return
        delim = _delimiter(lines.taken[0][1])
        simple = _simple_record(delim)
        lines.push_back_after_first()
        lines.pending.append(lines.taken[0])
        expected: int | None = None
        reader = csv.reader(lines, delimiter=delim, strict=True)
        while True:
            lines.taken = []
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                start = lines.taken[0][0] if lines.taken else lines.lineno
                yield start, None, "malformed_record", f"record starting on line {start}: quote not closed or misplaced", None
                lines.push_back_after_first()
                reader = csv.reader(lines, delimiter=delim, strict=True)
                continue
            taken = lines.taken
            start = taken[0][0]
            if not fields or (len(taken) == 1 and len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if not all(ok for _, _, ok in taken):
                yield start, None, "invalid_encoding", f"record starting on line {start} holds bytes that are not UTF-8", None
                continue
            if expected is None:
                expected = len(fields)
                yield start, fields, None, "", None
                continue
            if len(fields) != expected:
                yield start, None, "malformed_record", f"record on line {start} has {len(fields)} field(s), the header {expected}", None
                if len(taken) > 1:
                    lines.push_back_after_first()
                    reader = csv.reader(lines, delimiter=delim, strict=True)
                continue
            text = taken[0][1].rstrip("\r\n")
            yield start, fields, None, "", text if len(taken) == 1 and simple.fullmatch(text) else None


def map_headers(contract: TableContract, headers: Sequence[str], file_label: str) -> tuple[dict[str, str], list[str]]:
    """Map contract column -> file header; raise on missing required or ambiguous columns."""
    by_norm: dict[str, str] = {}
    for h in headers:
        if normalise_header(h) in by_norm:
            raise LandingError(f"{file_label}: column {header_label(h)!r} appears more than once in the header (table {contract.name})")
        by_norm[normalise_header(h)] = h
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


_INT_RE = r"^[+-]?[0-9]+(\.0*)?$"
_NUM_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9:.]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
_WS = "' \t\r\n'"
_EDGE_WS_RE = r"^[ \t\r\n]|[ \t\r\n]$"


def _trimmed(raw: str) -> str:
    """Text without surrounding spaces, tabs and line breaks; NULL when nothing is left.

    ``trim`` with a character set costs more than the rest of the check, so it runs only on values
    that start or end with one of those characters (the others it would return unchanged)."""
    return f"nullif(CASE WHEN regexp_matches({raw}, '{_EDGE_WS_RE}') THEN trim({raw}, {_WS}) ELSE {raw} END, '')"


def _typed_expr(col: ColumnSpec, raw: str) -> str:
    """SQL turning the raw text column into the contract type (NULL when it does not parse).

    Parsing is strict: integers are digits (``12.0`` allowed, not ``12.7``, ``1_000``, ``0x1F``),
    numbers are finite decimals, instants are ISO-8601 dates (no ``infinity`` or ``epoch``).
    """
    return _typed_from_trimmed(col, _trimmed(raw))


def _typed_from_trimmed(col: ColumnSpec, s: str) -> str:
    """:func:`_typed_expr` over ``s``, the text already trimmed (NULL when blank)."""
    t = col.sql_type.upper()
    if t == "VARCHAR":
        return s
    if t == "BOOLEAN":
        return (
            f"CASE WHEN lower({s}) IN ('true','t','1','yes','y') THEN true "
            f"WHEN lower({s}) IN ('false','f','0','no','n') THEN false END"
        )
    if t in ("TIMESTAMP", "DATE"):
        instant = f"(CASE WHEN regexp_matches({s}, '{_DATE_RE}') THEN try_cast({s} AS TIMESTAMPTZ) END AT TIME ZONE 'UTC')"
        return instant if t == "TIMESTAMP" else f"CAST({instant} AS DATE)"
    if t in ("BIGINT", "INTEGER", "SMALLINT", "HUGEINT"):
        return f"CASE WHEN regexp_matches({s}, '{_INT_RE}') THEN try_cast(regexp_replace({s}, '\\.0*$', '') AS {col.sql_type}) END"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return f"CASE WHEN regexp_matches({s}, '{_NUM_RE}') THEN try_cast({s} AS {col.sql_type}) END"
    return f"try_cast({s} AS {col.sql_type})"


def _violation_exprs(
    col: ColumnSpec, raw: str, typed: str, date_window: tuple[dt.datetime, dt.datetime] | None = None, trimmed: str | None = None
) -> list[tuple[str, str, str]]:
    """(condition, reason, detail SQL) per rule of the column, in evaluation order (``trimmed``: the trimmed text, if computed)."""
    c = literal(col.name)
    is_blank = f"{trimmed or _trimmed(raw)} IS NULL"
    out = [(f"(NOT ({is_blank}) AND {typed} IS NULL)", "unparseable_value", f"'cannot parse ' || {c} || ' value as {col.sql_type}'")]
    if date_window is not None and col.sql_type.upper() in ("TIMESTAMP", "DATE"):
        lo, hi = (f"TIMESTAMP '{x.isoformat(sep=' ')}'" for x in date_window)
        out.append((
            f"coalesce(CAST({typed} AS TIMESTAMP) NOT BETWEEN {lo} AND {hi}, false)",
            "implausible_date",
            f"{c} || ' outside the plausible window {date_window[0]:%Y-%m-%d} .. {date_window[1]:%Y-%m-%d}'",
        ))
    if not col.nullable:
        reason, kind = ("null_key", "key column") if col.key else ("null_required_value", "required column")
        out.append((is_blank, reason, f"'{kind} ' || {c} || ' is empty'"))
    if col.ge is not None:
        out.append((f"coalesce({typed} < {col.ge}, false)", "negative_value", f"{c} || ' is below {col.ge:g}'"))
    if col.isin is not None:
        allowed = ", ".join(literal(x) for x in col.isin)
        out.append((f"coalesce({typed} NOT IN ({allowed}), false)", "invalid_value", f"{c} || ' not in {{{', '.join(col.isin)}}}'"))
    return out


def _raw_value_sql(col: ColumnSpec, raw: str) -> str:
    return f"CASE WHEN {raw} IS NULL THEN NULL ELSE '{PII_MASK}' END" if col.pii else raw


def _checked_select(
    contract: TableContract, label: str, date_window: tuple[dt.datetime, dt.datetime] | None = None, source: str = "_landing_file"
) -> str:
    """SELECT over ``source`` (``source_line``, raw text ``raw__<col>``) yielding typed columns and, for bad rows only, the rejection."""
    cols = contract.columns
    typed = {c.name: ident(f"t__{c.name}") for c in cols}
    trimmed = {c.name: ident(f"s__{c.name}") for c in cols}
    rules = [
        (c, *r) for c in cols for r in _violation_exprs(c, ident(f"raw__{c.name}"), typed[c.name], date_window, trimmed[c.name])
    ]
    first = " ".join(
        f"WHEN {cond} THEN {{'column_name': {literal(c.name)}, 'reason': '{reason}', 'detail': {detail}, "
        f"'raw_value': {_raw_value_sql(c, ident('raw__' + c.name))}}}"
        for c, cond, reason, detail in rules
    )
    n_bad = " + ".join(f"CAST({cond} AS INTEGER)" for _, cond, _, _ in rules) or "0"
    record = "to_json({" + ", ".join(f"{literal(c.name)}: {_raw_value_sql(c, ident('raw__' + c.name))}" for c in cols) + "})::VARCHAR"
    rule = ident("_first_rule")  # the first broken rule's column, reason, detail and raw value; NULL on a good row
    fields = ", ".join(f"'{f}': {rule}.{f}" for f in ("column_name", "reason", "detail", "raw_value"))
    # Each value is trimmed once, then typed once; the rules read both.
    trim = ", ".join(["source_line"] + [f"{ident('raw__' + c.name)}, {_trimmed(ident('raw__' + c.name))} AS {trimmed[c.name]}" for c in cols])
    inner = ", ".join(
        ["source_line"]
        + [f"{ident('raw__' + c.name)}, {trimmed[c.name]}" for c in cols]
        + [f"{_typed_from_trimmed(c, trimmed[c.name])} AS {typed[c.name]}" for c in cols]
    )
    return f"""
        SELECT {literal(label)} AS source_file, source_line,
               {', '.join(f'{typed[c.name]} AS {ident(c.name)}' for c in cols)},
               CASE WHEN {rule} IS NOT NULL THEN {{{fields}, 'violations': {n_bad}, 'raw_record': {record}}} END AS rejection
        FROM (SELECT *, CASE {first} END AS {rule} FROM (SELECT {inner} FROM (SELECT {trim} FROM {source})))"""


def _raw_select(contract: TableContract, mapping: dict[str, str], line_sql: str) -> str:
    return ", ".join(
        [f"{line_sql} AS source_line"]
        + [
            (f"CAST({ident(mapping[c.name])} AS VARCHAR)" if c.name in mapping else "NULL::VARCHAR") + f" AS {ident('raw__' + c.name)}"
            for c in contract.columns
        ]
    )


def _safe_error(label: str, what: str, exc: Exception) -> LandingError:
    """A read error naming the file, without DuckDB's quotation of the offending line (another engine's error, which
    may quote a record, by its type only)."""
    quotable = isinstance(exc, (duckdb.Error, pyarrow.ArrowException))
    first = str(exc).splitlines()[0] if str(exc) and quotable else type(exc).__name__
    first = re.split(r"Original Line|Line:", first)[0].strip()[:200]
    return LandingError(f"{label}: cannot be read as {what} ({first})")


def _load_parquet(con, contract: TableContract, path: Path, label: str, scratch: _Scratch) -> tuple[int, list[str]]:
    """``_landing_file`` from a Parquet file (row n is line n); returns rows read and ignored columns.

    DuckDB numbers the rows and writes each value as text, on ``con``; for another engine (which numbers no rows,
    and whose text of a number differs: Spark writes 1.2345678E7) on a DuckDB connection of the driver, into a
    Parquet copy of text columns that the engine reads, so both engines check the same text."""
    local = con if scratch.remote is None else duckdb.connect()
    try:
        if local is not con:
            local.execute("SET TimeZone = 'UTC'")  # the Spark session's zone (SPARK_CONF)
        reader = _literal_parquet(path, scratch.local)
        try:
            headers = [d[0] for d in local.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
        except duckdb.Error as exc:
            raise _safe_error(label, f"Parquet for table {contract.name}", exc) from None
        mapping, ignored = map_headers(contract, headers, label)
        numbered = reader[:-1] + ", file_row_number=true)"
        select = f"SELECT {_raw_select(contract, mapping, 'file_row_number + 1')} FROM {numbered}"
        if local is con:
            con.execute(f"CREATE TEMP TABLE _landing_file AS {select}")
        else:
            copy = scratch.local / f"text_{len(os.listdir(scratch.local))}.parquet"
            try:
                local.execute(f"COPY ({select}) TO {literal(str(copy))} (FORMAT parquet)")
            except duckdb.Error as exc:
                raise _safe_error(label, f"Parquet for table {contract.name}", exc) from None
            con.execute(f"CREATE TEMP TABLE _landing_file AS SELECT * FROM read_parquet({literal(scratch.publish(copy))})")
    finally:
        if local is not con:
            local.close()
    (n,) = con.execute("SELECT count(*) FROM _landing_file").fetchone()
    return int(n), ignored


def _insert_rejected_records(con, checked: str, label: str, bad: list[tuple[int, str, str]]) -> None:
    """Records that cannot be split into fields, ``(line, reason, detail)``, into table ``checked`` in one statement."""
    if not bad:
        return
    frame = pd.DataFrame(bad, columns=["source_line", "reason", "detail"]).astype({"source_line": "int64"})
    con.register("_landing_bad_records", frame)
    try:
        con.execute(
            f"INSERT INTO {checked} (source_file, source_line, rejection) SELECT {literal(label)}, source_line, "
            f"{{'column_name': {literal(RECORD_COLUMN)}, 'reason': reason, 'detail': detail, 'raw_value': NULL::VARCHAR, "
            "'violations': 1, 'raw_record': '{}'} FROM _landing_bad_records"
        )
    finally:
        con.unregister("_landing_bad_records")


ENGINE_REJECTS = {
    "INVALID ENCODING": "invalid_encoding",
    "MISSING COLUMNS": "malformed_record",
    "TOO MANY COLUMNS": "malformed_record",
}
"""DuckDB CSV reject types that stay within one physical line, by the quarantine reason they map to.

Each such line is classified again by :func:`_line_verdict` (the splitter's rules on one line), which
also writes its detail; a line on which the two readers disagree hands the file to :func:`csv_records`.
The other types (``UNQUOTED VALUE``: DuckDB drops the rest of the file after a quote left open;
``LINE SIZE OVER MAXIMUM``, ``INVALID STATE``) always do."""

_ENGINE_MAX_REJECTS = 256
"""Above this many rejected lines in one file the Python splitter numbers the lines instead."""

_CHUNK = 1 << 24


def _first_line_header(path: Path) -> tuple[list[str], str] | None:
    """Header fields and delimiter when line 1 alone is a clean UTF-8 header of several fields, else None."""
    with _open_binary(path) as fh:
        raw = fh.readline()
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return None
    if not raw:
        return None
    delim = _delimiter(text)
    try:
        rows = list(csv.reader([text], delimiter=delim, strict=True))
    except csv.Error:
        return None
    if len(rows) != 1 or len(rows[0]) < 2:
        return None  # blank first line, header spanning lines, or one column (a blank line would be a value)
    return rows[0], delim


def _quote_next_to_space(chunk: bytes, delim: bytes) -> bool:
    """True when a quoted field has spaces outside its quotes (``"a" ,`` or ``, "a"``): DuckDB drops
    such spaces where the splitter keeps them (or rejects the record), so the file is not the engine's."""
    after = b"\r\n" + delim
    i = chunk.find(b'" ')
    while i >= 0:
        j = i + 1
        while j < len(chunk) and chunk[j] == 0x20:
            j += 1
        if j >= len(chunk) or chunk[j] in after:
            return True
        i = chunk.find(b'" ', j)
    before = b"\n" + delim
    i = chunk.find(b' "')
    while i >= 0:
        j = i
        while j > 0 and chunk[j - 1] == 0x20:
            j -= 1
        if j == 0 or chunk[j - 1] in before:
            return True
        i = chunk.find(b' "', i + 2)
    return False


def _line_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes in chunks cut at line ends."""
    with _open_binary(path) as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk + fh.readline()


def _scan_physical_lines(path: Path, delim: str) -> tuple[int, bool]:
    """(physical lines, whether a quote sits next to a space outside it), reading bytes in chunks cut at line ends."""
    lines, odd, last = 0, False, b"\n"
    for chunk in _line_chunks(path):
        lines += chunk.count(b"\n")
        odd = odd or _quote_next_to_space(chunk, delim.encode())
        last = chunk[-1:]
    return lines + (last != b"\n"), odd


def _line_verdict(raw: bytes, lineno: int, delim: str, expected: int) -> tuple[str, str] | str | None:
    """The splitter's verdict on one physical line DuckDB rejected: ``(reason, detail)``, ``"blank"`` (not a
    record), or None when the splitter would accept the line or read on past it (the readers disagree)."""
    try:
        text, ok = raw.decode("utf-8"), True
    except UnicodeDecodeError:
        text, ok = raw.decode("utf-8", errors="replace"), False
    try:
        rows = list(csv.reader([text], delimiter=delim, strict=True))
    except csv.Error:
        return None
    if len(rows) > 1:
        return None
    fields = rows[0] if rows else []
    if not fields or (len(fields) == 1 and not fields[0].strip()):
        return "blank"
    if not ok:
        return "invalid_encoding", f"record starting on line {lineno} holds bytes that are not UTF-8"
    if len(fields) != expected:
        return "malformed_record", f"record on line {lineno} has {len(fields)} field(s), the header {expected}"
    return None


def _physical_lines_at(path: Path, numbers: set[int]) -> dict[int, bytes]:
    with _open_binary(path) as fh:
        return {n: line for n, line in enumerate(fh, 1) if n in numbers}


def _engine_csv(con, contract: TableContract, path: Path, label: str, tmp: Path, date_window, checked: str) -> tuple[int, list[str]] | None:
    """Check the records of a CSV file into table ``checked`` with DuckDB's reader; None hands the file to the splitter.

    DuckDB splits and checks the records in one streaming statement (strict mode, every field text,
    rejects stored). Row n of the scan is physical line n + 1 only when every record is one line, which
    holds when the scan's rows plus its rejected lines plus the header are the file's physical lines.
    Anything DuckDB cannot classify as the splitter does (a record over several lines, a blank line,
    a quote left open, spaces outside quotes, too many rejects) leaves ``checked`` without a
    row of this file and returns None.
    """
    first = _first_line_header(path)
    if first is None:
        return None
    header, delim = first
    physical, odd = _scan_physical_lines(path, delim)
    if odd:
        return None
    mapping, ignored = map_headers(contract, header, label)
    positional = {name: f"c{header.index(h)}" for name, h in mapping.items()}
    link = tmp / f"landing_{len(os.listdir(tmp))}{'.csv.gz' if path.name.lower().endswith('.gz') else '.csv'}"
    os.symlink(path.resolve(), link)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    reader = (
        f"read_csv({literal(str(link))}, header=true, auto_detect=false, delim={literal(delim)}, quote='\"', escape='\"', "
        f"strict_mode=true, store_rejects=true, rejects_table='_landing_rejects', rejects_scan='_landing_reject_scans', "
        f"columns={columns}) WITH ORDINALITY"
    )
    source = f"(SELECT {_raw_select(contract, positional, 'CAST(ordinality + 1 AS BIGINT)')} FROM {reader})"
    for t in ("_landing_rejects", "_landing_reject_scans"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    try:
        (rows,) = con.execute(f"INSERT INTO {checked} {_checked_select(contract, label, date_window, source)}").fetchone()
        rejected = con.execute(
            "SELECT line, list(DISTINCT CAST(error_type AS VARCHAR)) FROM _landing_rejects GROUP BY ALL ORDER BY line"
            f" LIMIT {_ENGINE_MAX_REJECTS + 1}"  # more hand the file to the splitter: Python never holds them all
        ).fetchall()
    except duckdb.Error:
        rejected = None
    finally:
        for t in ("_landing_rejects", "_landing_reject_scans"):
            con.execute(f"DROP TABLE IF EXISTS {t}")

    def hand_over() -> None:
        con.execute(f"DELETE FROM {checked} WHERE source_file = ?", [label])

    if rejected is None or len(rejected) > _ENGINE_MAX_REJECTS or rows + len(rejected) + 1 != physical:
        hand_over()
        return None
    if any(t not in ENGINE_REJECTS for _, types in rejected for t in types):
        hand_over()
        return None
    raw_lines = _physical_lines_at(path, {int(line) for line, _ in rejected}) if rejected else {}
    bad: list[tuple[int, str, str]] = []
    skipped: list[int] = []
    for line, types in rejected:
        verdict = _line_verdict(raw_lines.get(int(line), b""), int(line), delim, len(header))
        if verdict is None or (verdict != "blank" and verdict[0] not in {ENGINE_REJECTS[t] for t in types}):
            hand_over()
            return None
        if verdict == "blank":
            skipped.append(int(line))
        else:
            bad.append((int(line), *verdict))
    if rejected:
        # Scan row k sits below the header, after the rejected lines that precede it: line k + 1 + that many.
        before = [int(line) - 1 - j for j, (line, _) in enumerate(rejected, 1)]
        shift = " + ".join(f"CAST(source_line > {b + 1} AS BIGINT)" for b in before)
        con.execute(f"UPDATE {checked} SET source_line = source_line + {shift} WHERE source_file = ?", [label])
    _insert_rejected_records(con, checked, label, bad)
    return rows + len(bad), ignored


def _load_csv(con, contract: TableContract, path: Path, label: str, scratch: _Scratch, checked: str) -> tuple[int, list[str]]:
    """``_landing_file`` from a CSV file split by :func:`csv_records`; unusable records go to table ``checked``.

    The usable records are rewritten, with their physical start line, to a plain UTF-8 CSV that
    DuckDB reads with fixed settings, so DuckDB never meets a broken record (nor quotes one).
    """
    records = csv_records(path)
    first = next(records, None)
    cols = contract.columns
    if first is None:  # 0-byte file: an empty table
        con.execute(
            "CREATE TEMP TABLE _landing_file AS SELECT NULL::BIGINT AS source_line, "
            + ", ".join(f"NULL::VARCHAR AS {ident('raw__' + c.name)}" for c in cols)
            + " WHERE false"
        )
        return 0, []
    _, header, reason, _, _ = first
    if header is None:
        raise LandingError(f"{label}: the header line cannot be read ({reason}) for table {contract.name}")
    mapping, ignored = map_headers(contract, header, label)
    with _open_binary(path) as fh:
        delim = _delimiter(fh.readline().decode("utf-8", errors="replace"))
    positional = {name: f"c{header.index(h)}" for name, h in mapping.items()}
    clean = scratch.local / f"clean_{len(os.listdir(scratch.local))}.csv"
    bad: list[tuple[int, str, str]] = []
    n = 0
    with open(clean, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delim, lineterminator="\n")
        writer.writerow(["source_line", *(f"c{i}" for i in range(len(header)))])
        for start, fields, why, detail, plain in records:
            n += 1
            if fields is None:
                bad.append((start, why or "malformed_record", detail))
            elif plain is not None:  # copied as is: re-quoting every record costs more than the split
                fh.write(f"{start}{delim}{plain}\n")
            else:
                writer.writerow([start, *fields])
    columns = "{" + ", ".join(f"{literal(k)}: 'VARCHAR'" for k in ["source_line", *(f"c{i}" for i in range(len(header)))]) + "}"
    reader = (
        f"read_csv({literal(scratch.publish(clean))}, header=true, auto_detect=false, delim={literal(delim)}, "
        f"quote='\"', escape='\"', columns={columns})"
    )
    try:
        con.execute(
            f"CREATE TEMP TABLE _landing_file AS SELECT {_raw_select(contract, positional, 'CAST(source_line AS BIGINT)')} FROM {reader}"
        )
    except Exception as exc:  # noqa: BLE001  the engine's error, without a record's content
        raise _safe_error(label, f"CSV for table {contract.name}", exc) from None
    _insert_rejected_records(con, checked, label, bad)
    return n, ignored


def ingest_table(
    con: duckdb.DuckDBPyConnection,
    contract: TableContract,
    landing_dir: Path | str,
    schema: str,
    quarantine_table: str,
    date_bounds: DateBounds | None = None,
) -> IngestResult:
    """Stage ``contract``'s landing files into ``schema.<name>`` and rejects into ``schema.<quarantine_table>``.

    Both tables are replaced in one transaction; an absent table yields empty, typed tables.
    Raises :class:`MissingColumnsError` naming the file when a required column is absent, and
    :class:`LandingError` naming the file when its header is unusable (duplicated column, not
    UTF-8), when it cannot be read as Parquet, or when it resolves outside the landing zone.
    Bad records only quarantine themselves. No error quotes a record's content. On DuckDB files are
    read concurrently, one per DuckDB thread, each on a cursor of ``con``; the first failing file in
    reading order raises. On Spark (``con`` a :class:`~marketing_assets.lib.spark_engine.SparkConnection`)
    the files are read one after another through the splitter (see the module docstring).
    """
    root = Path(landing_dir)
    files = discover_files(root, contract)
    window = (date_bounds or DateBounds()).window(files)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
    if _is_spark(con):  # a temporary table of the session; the files one after another
        checked = f"_landing_checked_{uuid.uuid4().hex[:12]}"
        try:
            return _stage(con, contract, root, files, schema, quarantine_table, window, checked, _check_files_spark)
        finally:
            con.execute(f"DROP TABLE IF EXISTS {checked}")
    # The checked rows live in an in-memory database of their own, which every cursor of ``con``
    # sees: files are read concurrently (one DuckDB read numbers one file's lines on one thread).
    scratch = f"_landing_{uuid.uuid4().hex[:12]}"
    con.execute(f"ATTACH ':memory:' AS {scratch}")
    try:
        return _stage(con, contract, root, files, schema, quarantine_table, window, f"{scratch}.checked", _check_files_duckdb)
    finally:
        con.execute(f"DETACH DATABASE IF EXISTS {scratch}")


def _check_file(cur, zone: str | None, contract: TableContract, root: Path, path: Path, scratch: _Scratch, date_window, checked: str) -> FileStats:
    """Check one landing file's records into table ``checked`` on ``cur``: on DuckDB a cursor of its own (a session whose
    temporary tables, the file's and DuckDB's rejects, are its own), in a worker thread, reading text without an
    offset in the caller's time ``zone``; on Spark the connection itself (the session's time zone)."""
    label = path.relative_to(root).as_posix()
    if zone is not None:
        cur.execute(f"SET TimeZone = {literal(zone)}")  # text without an offset is read in the caller's time zone
    check_inside(root, path, label)
    scratch.local.mkdir()
    spark = _is_spark(cur)  # no engine reader: Spark reads the splitter's clean copy
    engine = None if _is_parquet(path) or spark else _engine_csv(cur, contract, path, label, scratch.local, date_window, checked)
    if engine is not None:
        read, ignored = engine
    else:
        try:
            if _is_parquet(path):
                read, ignored = _load_parquet(cur, contract, path, label, scratch)
            else:
                read, ignored = _load_csv(cur, contract, path, label, scratch, checked)
            cur.execute(f"INSERT INTO {checked} {_checked_select(contract, label, date_window)}")
        finally:
            if spark:  # the next file's table (or the next table's) has the same name on the one session
                cur.execute("DROP TABLE IF EXISTS _landing_file")
    return FileStats(source_file=label, rows_read=read, ignored_columns=ignored)


def _check_files_duckdb(con, contract: TableContract, root: Path, files: list[Path], date_window, checked: str) -> list[FileStats]:
    """The files checked concurrently, one per DuckDB thread, each on a cursor of ``con``."""
    threads, zone = con.execute("SELECT current_setting('threads'), current_setting('TimeZone')").fetchone()
    cursors = [con.cursor() for _ in files]
    try:
        with tempfile.TemporaryDirectory(prefix="landing_") as tmp, ThreadPoolExecutor(max(1, min(int(threads), len(files)))) as pool:
            futures = [
                pool.submit(_check_file, cur, zone, contract, root, path, _Scratch(Path(tmp) / str(i)), date_window, checked)
                for i, (cur, path) in enumerate(zip(cursors, files, strict=True))
            ]
            try:
                return [f.result() for f in futures]  # the first failing file in reading order raises
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        for cur in cursors:
            cur.close()


def _check_files_spark(con, contract: TableContract, root: Path, files: list[Path], date_window, checked: str) -> list[FileStats]:
    """The files checked one after another on ``con`` (Spark parallelises each read), their rewritten copies in a
    scratch directory of the warehouse that every executor reads."""
    with tempfile.TemporaryDirectory(prefix="landing_") as tmp, con.scratch() as remote:
        return [
            _check_file(con, None, contract, root, path, _Scratch(Path(tmp) / str(i), con, remote), date_window, checked)
            for i, path in enumerate(files)
        ]


def _stage(
    con, contract: TableContract, root: Path, files: list[Path], schema: str, quarantine_table: str, date_window, checked: str, check_files
) -> IngestResult:
    """:func:`ingest_table` with the checked rows gathered in table ``checked`` by ``check_files`` (the engine's way)."""
    cols = contract.columns
    typed_cols = ", ".join(f"{ident(c.name)} {c.sql_type}" for c in cols)
    con.execute(
        f"""CREATE TABLE {checked} (source_file VARCHAR, source_line BIGINT, {typed_cols},
            rejection STRUCT(column_name VARCHAR, reason VARCHAR, detail VARCHAR, raw_value VARCHAR, violations INTEGER, raw_record VARCHAR))"""
    )
    stats = check_files(con, contract, root, files, date_window, checked)

    content = ", ".join(ident(c.name) for c in cols)
    row = f"source_file, source_line, {content}"
    c_row = ", ".join(["c.source_file", "c.source_line", *("c." + ident(x.name) for x in cols)])
    key = ", ".join(ident(k) for k in contract.key) or content
    key_value = " || ', ' || ".join(f"coalesce(CAST({ident(k)} AS VARCHAR), 'NULL')" for k in contract.key) or "''"
    record = "to_json({" + ", ".join(
        f"{literal(c.name)}: " + (f"CASE WHEN {ident(c.name)} IS NULL THEN NULL ELSE '{PII_MASK}' END" if c.pii else f"CAST({ident(c.name)} AS VARCHAR)")
        for c in cols
    ) + "})::VARCHAR"
    # Only keys seen more than once need ranking: exact duplicates collapse to their first row,
    # and a later row with the same key but other content is a conflicting duplicate.
    con.execute("DROP TABLE IF EXISTS _landing_ranked")
    con.execute(
        f"""CREATE TEMP TABLE _landing_ranked AS
        WITH multi AS (
            SELECT {key} FROM {checked} WHERE rejection IS NULL GROUP BY ALL HAVING count(*) > 1
        ),
        candidates AS (
            SELECT {c_row}, {stable_hash(*('c.' + ident(x.name) for x in cols))} AS content_hash
            FROM {checked} c SEMI JOIN multi USING ({key}) WHERE c.rejection IS NULL
        ),
        dedup AS (
            SELECT *, row_number() OVER (PARTITION BY {key}, content_hash ORDER BY source_file, source_line) AS dup_rank
            FROM candidates
        )
        SELECT {row}, dup_rank,
            row_number() OVER (PARTITION BY {key}, dup_rank = 1 ORDER BY source_file, source_line) AS key_rank,
            first_value(source_file || ':' || source_line) OVER (
                PARTITION BY {key}, dup_rank = 1 ORDER BY source_file, source_line) AS key_first_seen
        FROM dedup"""
    )
    table = f"{ident(schema)}.{ident(contract.name)}"
    qtable = f"{ident(schema)}.{ident(quarantine_table)}"
    rejection = ", ".join(f"rejection.{f} AS {f}" for f in ("column_name", "raw_value", "reason", "detail", "violations", "raw_record"))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""CREATE OR REPLACE TABLE {table} AS
            SELECT {content}, source_file, source_line FROM (
                SELECT {c_row} FROM {checked} c
                ANTI JOIN (SELECT DISTINCT {key} FROM _landing_ranked) USING ({key})
                WHERE c.rejection IS NULL  -- the complement of the ranked candidates (their SEMI JOIN on the key)
                UNION ALL
                SELECT {row} FROM _landing_ranked WHERE dup_rank = 1 AND key_rank = 1
            )"""
        )
        con.execute(
            f"""CREATE OR REPLACE TABLE {qtable} AS
            SELECT {literal(contract.name)} AS table_name, source_file, source_line, column_name, raw_value,
                   reason, detail, violations, raw_record
            FROM (
                SELECT source_file, source_line, {rejection} FROM {checked} WHERE rejection IS NOT NULL
                UNION ALL
                SELECT source_file, source_line, {literal(contract.key[0] if contract.key else '')} AS column_name,
                       CAST({ident(contract.key[0]) if contract.key else "''"} AS VARCHAR) AS raw_value,
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

    staged = dict(con.execute(f"SELECT source_file, count(*) FROM {table} GROUP BY source_file").fetchall())
    collapsed = dict(con.execute("SELECT source_file, count(*) FROM _landing_ranked WHERE dup_rank > 1 GROUP BY source_file").fetchall())
    quarantined = dict(con.execute(f"SELECT source_file, count(*) FROM {qtable} GROUP BY source_file").fetchall())
    by_reason = dict(con.execute(f"SELECT reason, count(*) FROM {qtable} GROUP BY reason ORDER BY reason").fetchall())
    for fs in stats:
        fs.rows_staged = int(staged.get(fs.source_file, 0))
        fs.duplicates_collapsed = int(collapsed.get(fs.source_file, 0))
        fs.rows_quarantined = int(quarantined.get(fs.source_file, 0))
    con.execute("DROP TABLE IF EXISTS _landing_ranked")
    return IngestResult(
        table=contract.name,
        files=stats,
        rows_staged=sum(f.rows_staged for f in stats),
        rows_quarantined=sum(f.rows_quarantined for f in stats),
        quarantine_by_reason={k: int(v) for k, v in by_reason.items()},
    )


def count_landing_rows(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Records in one landing file, counted independently of ingestion (for conservation checks).

    CSV is counted by pyarrow's CSV parser when every record is one line, else with Python's ``csv``
    module, over the file opened by its exact name (so a reader that expands a name as a pattern shows
    up as extra rows); Parquet from its footer, read by pyarrow (``con`` is not used: any engine's checks count).
    A record spanning several lines whose field count differs from the header's is counted as one
    record, and its following lines are counted again, as ingestion quarantines it that way.
    """
    if _is_parquet(path):
        with pyarrow.OSFile(str(path)) as raw:  # the exact name, never a pattern
            return int(pq.ParquetFile(raw).metadata.num_rows)
    one_line = _count_one_line_records(path)
    if one_line is not None:
        return one_line
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        plain = _count_plain_csv_records(fh)
    if plain is not None:
        return plain
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as fh:
        return _count_csv_records(fh)


def _count_one_line_records(path: Path) -> int | None:
    """Records of a file in which every record is one physical line, counted by pyarrow's multi-threaded CSV
    parser (not DuckDB's reader, nor Python's); None when a record spans lines, a line is blank, a record's
    field count differs from the header's, the header has one field, or pyarrow cannot parse the file.

    Line by line, Python's ``csv`` module and pyarrow agree on the record count (a quote misplaced after
    a closing quote fails the first and not the second, but costs each one record); over several lines
    they can differ, so those files are counted by the readers below."""
    with _open_binary(path) as fh:
        first = fh.readline().decode("utf-8", errors="replace").lstrip("\ufeff")
    if not first:
        return 0
    delim = _delimiter(first)
    try:
        if len(next(csv.reader([first], delimiter=delim, strict=True))) < 2:
            return None  # one-field records may be blank lines
    except (csv.Error, StopIteration):
        return None
    physical, last = 0, b"\n"
    for chunk in _line_chunks(path):  # lines end as Python's universal newlines end them: \r\n, \n or \r
        physical += chunk.count(b"\n") + (chunk.count(b"\r") - chunk.count(b"\r\n") if b"\r" in chunk else 0)
        last = chunk[-1:]
    physical += last not in (b"\n", b"\r")
    read = pa_csv.ReadOptions(autogenerate_column_names=True, block_size=1 << 20)  # the header is counted as a row
    parse = pa_csv.ParseOptions(delimiter=delim, quote_char='"', double_quote=True, escape_char=False, newlines_in_values=True)
    convert = pa_csv.ConvertOptions(include_columns=["f0"], column_types={"f0": pyarrow.binary()}, check_utf8=False)
    try:
        with pyarrow.OSFile(str(path)) as raw:  # the exact name, never a pattern
            src = pyarrow.CompressedInputStream(raw, "gzip") if path.name.lower().endswith(".gz") else raw
            rows = sum(b.num_rows for b in pa_csv.open_csv(src, read_options=read, parse_options=parse, convert_options=convert))
    except pyarrow.ArrowException:  # a record with another field count, a quote left open, ...
        return None
    return rows - 1 if rows == physical else None


def _count_plain_csv_records(fh) -> int | None:
    """Records of a file whose records all have the header's field count, counted by the C ``csv`` reader
    with no Python per record; None when a record is unusable or could be blank (:func:`_count_csv_records` decides)."""
    first = fh.readline()
    if not first:
        return 0
    reader = csv.reader(itertools.chain([first], fh), delimiter=_delimiter(first.lstrip("\ufeff")), strict=True)
    try:
        width = len(next(reader))
        widths = collections.Counter(map(len, reader))
    except csv.Error:
        return None
    if width < 2 or set(widths) - {0, width}:  # one-field records may be blank lines; other widths need the replay
        return None
    return widths[width]  # a 0-width record is an empty line


class _Replay:
    """Lines of a text file with a stack of lines to read again."""

    def __init__(self, fh):
        self.fh, self.replay, self.current = fh, [], []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.replay.pop() if self.replay else self.fh.readline()
        if not line:
            raise StopIteration
        self.current.append(line)
        return line


def _count_csv_records(fh) -> int:
    src = _Replay(fh)
    first = fh.readline()
    if not first:
        return 0
    src.replay.append(first)
    delim = _delimiter(first.lstrip("\ufeff"))
    count, width = 0, None
    reader = csv.reader(src, delimiter=delim, strict=True)
    while True:
        src.current = []
        try:
            fields = next(reader)
        except StopIteration:
            return count
        except csv.Error:
            fields = None
        if fields is not None and (not fields or (len(src.current) == 1 and len(fields) == 1 and not fields[0].strip())):
            continue
        if fields is not None and width is None:
            width = len(fields)
            continue
        count += 1
        if (fields is None or len(fields) != width) and len(src.current) > 1:
            src.replay.extend(reversed(src.current[1:]))
            reader = csv.reader(src, delimiter=delim, strict=True)
