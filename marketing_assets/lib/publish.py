"""Publishing extracts and reports: keyed pseudonyms for identifiers, a PII scan, and write-audit-publish
for Parquet, CSV and HTML files. No Dagster import.

Identifiers leave the warehouse only as HMAC-SHA256 pseudonyms under a secret key, so the same
customer gets the same token in every extract and refresh while nobody without the key can map
it back.

Write-audit-publish: a file is first written into a private folder under ``.staging/`` next to its
published name, audited there (the same audit functions the blocking asset checks run on the published
files), and moved into place with ``os.replace`` only when every audit passes. A failed audit removes the
staged files and raises :class:`AuditFailed`; the previously published version stays untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from marketing_assets.lib.sql import ident, literal, unordered_writes

PSEUDONYM_HEX = 16
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Tokens that are identifiers or numbers, never contact details; masked before the phone search.
# An alphanumeric neighbour (or one joined by a dash) makes a digit group part of a larger token.
_NOT_AFTER = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]-)"
_NOT_BEFORE = r"(?![0-9A-Za-z])(?!-[0-9A-Za-z])"
IDENTIFIER_PATTERN = re.compile(
    "|".join(
        rf"{_NOT_AFTER}(?:{body}){_NOT_BEFORE}"
        for body in (
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",  # UUIDs, Dagster run ids
            r"[0-9a-fA-F]{16,}",  # hashes, HMAC pseudonyms (after their prefix): 16+ hex digits is no phone number
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?",  # ISO dates, timestamps
            r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])",  # ISO year-months
            r"[+-]?\d+\.\d+(?:[eE][+-]?\d+)?",  # decimals
        )
    )
)
# 9–15 digits (E.164 allows at most 15), optionally led by ``+`` or ``(``, at most two separators between digits,
# not inside a larger token (a sentence's full stop may follow).
PHONE_PATTERN = re.compile(
    rf"(?<!\w)(?<!\d\.)(?<![0-9A-Za-z]-)[+(]?\d(?:[ \t().-]{{0,2}}\d){{8,14}}(?!\w)(?!\.\w){_NOT_BEFORE}"
)


def _written_as_phone(candidate: str) -> bool:
    """A leading ``+`` or spaces, dashes or parentheses between digit groups; a bare digit run is an id or an amount."""
    return candidate.startswith("+") or any(ch in candidate for ch in " -()")


def _phone_in_masked(masked: str) -> bool:
    return any(_written_as_phone(m.group(0)) for m in PHONE_PATTERN.finditer(masked))


def _looks_like_phone(text: str) -> bool:
    """Whether ``text`` holds a phone number written like one, once identifiers (UUIDs, hashes, pseudonyms),
    ISO dates and timestamps and decimal numbers are masked; a digit group inside a larger token does not count."""
    return _phone_in_masked(IDENTIFIER_PATTERN.sub("x", text))


def _phone_mask(text: pd.Series) -> pd.Series:
    """:func:`_looks_like_phone` over a column: vectorised regex passes, Python only for the few candidates."""
    masked = text.str.replace(IDENTIFIER_PATTERN, "x", regex=True)
    candidates = masked[masked.str.contains(PHONE_PATTERN).astype(bool)]
    phones = [i for i, t in candidates.items() if _phone_in_masked(t)]
    return pd.Series(text.index.isin(phones), index=text.index)


class PseudonymKeyMissing(RuntimeError):
    """No pseudonymisation key is configured outside demo mode."""


DEMO_MANIFEST = ("_truth", "manifest.json")
"""Written by the demo generator (``marketing_assets.demo``) into every landing zone it fills, and only there."""


def is_demo_landing(root: Path) -> bool:
    """Whether a landing zone holds generated demo data (its truth manifest), where a public key will do."""
    return Path(root, *DEMO_MANIFEST).is_file()


def resolve_key(key: str | None, demo_mode: bool) -> bytes:
    """The HMAC key: the configured one, or a fixed public key for demo data only."""
    if key:
        return key.encode("utf-8")
    if demo_mode:
        return b"marketing-assets-demo-key (demo data only: not secret)"
    raise PseudonymKeyMissing(
        "MARKETING_PSEUDONYM_KEY is not set: extracts would expose raw identifiers. Set it to a secret "
        "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) and keep it out of the repository."
    )


def pseudonym_token(key: bytes, value: Any, prefix: str = "") -> str:
    """The keyed pseudonym of one value: ``prefix`` + the first PSEUDONYM_HEX hex digits of HMAC-SHA256(key, its text)."""
    return prefix + hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def pseudonymise(values: pd.Series, key: bytes, prefix: str = "") -> pd.Series:
    """Keyed pseudonym per value (NULL stays NULL); each distinct value is hashed once."""
    uniques = values.dropna().unique()
    mapping = {v: pseudonym_token(key, v, prefix) for v in uniques}
    return values.map(mapping).astype("object").where(values.notna(), None)


def find_pii(frame: pd.DataFrame, columns: Iterable[str] | None = None, sample: int = 5) -> dict[str, list[str]]:
    """Email- or phone-looking values per text column (masked samples), empty when clean.

    Each distinct value is scanned once; identifiers and numbers are never reported (see ``IDENTIFIER_PATTERN``).
    """
    found: dict[str, list[str]] = {}
    for col in columns if columns is not None else frame.columns:
        if frame[col].dtype != object and not pd.api.types.is_string_dtype(frame[col]):
            continue
        text = pd.Series(frame[col].dropna().astype(str).unique(), dtype=object)
        hits = text[text.str.contains(EMAIL_PATTERN) | _phone_mask(text)]
        if len(hits):
            found[col] = [h[:2] + "***" for h in hits.head(sample)]
    return found


# ---------------------------------------------------------------------------------------------- audits


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """One audit of a set of files: its name (the asset check that runs it on the published files), verdict,
    a description naming the files and what is wrong (never the offending values) and JSON-able metadata."""

    audit: str
    passed: bool
    description: str
    metadata: dict[str, Any]


Audit = Callable[[Mapping[str, Path]], AuditResult]  # {file kind: path} -> result


class AuditFailed(RuntimeError):
    """Staged files failed an audit; nothing was published."""

    def __init__(self, what: str, failed: Sequence[AuditResult]):
        self.what, self.failed = what, list(failed)
        audits = "; ".join(f"audit {r.audit} failed: {r.description}" for r in failed)
        super().__init__(f"{what} not published: {audits}. The previously published version is unchanged.")


PANDAS_KIND = {"string": "O", "int": "i", "float": "f", "date": "O", "bool": "b", "timestamp": "M"}


def audit_published_columns(files: Mapping[str, Path], columns: Mapping[str, str]) -> AuditResult:
    """The Parquet file (and the CSV file, when published) hold exactly ``columns`` ({name: published type}), in order,
    with those types."""
    problems = []
    expected = list(columns)
    parquet = pd.read_parquet(files["parquet"])
    if list(parquet.columns) != expected:
        problems.append(f"{files['parquet'].name} columns {list(parquet.columns)}")
    if "csv" in files and (csv_cols := list(pd.read_csv(files["csv"], nrows=0).columns)) != expected:
        problems.append(f"{files['csv'].name} columns {csv_cols}")
    for col, kind in columns.items():
        if col in parquet and len(parquet) and parquet[col].dropna().size and parquet[col].dtype.kind not in (PANDAS_KIND[kind], "i" if kind == "float" else "_"):
            problems.append(f"{files['parquet'].name}: {col} is {parquet[col].dtype}, published as {kind}")
    return AuditResult(
        "published_columns", not problems,
        "files match the published column list" if not problems else "; ".join(problems),
        {"published_columns": expected, "problems": problems},
    )


_TAG = re.compile(r"<[^>]+>")


def _text_frame(path: Path) -> pd.DataFrame:
    """A file's text values: every column of a Parquet or CSV file (CSV read as text), an HTML page's text runs."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str)
    return pd.DataFrame({"text": _TAG.sub(" ", path.read_text(encoding="utf-8")).split("  ")})


def audit_no_pii(files: Mapping[str, Path]) -> AuditResult:
    """No e-mail address or phone number in any text value of the files (see :func:`find_pii`)."""
    found = {}
    for path in files.values():
        found |= {f"{path.name}:{c}": v for c, v in find_pii(_text_frame(path)).items()}
    return AuditResult(
        "no_pii_in_files", not found,
        "no email or phone pattern" if not found else f"PII-like values in {', '.join(found)}",
        {"columns_with_pii": found},
    )


_EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def audit_report_html(files: Mapping[str, Path]) -> AuditResult:
    """The HTML page exists, loads nothing from the network (no external src/href, no script), states the day
    its data is fresh to, and carries no e-mail or phone number."""
    path = files["html"]
    if not path.exists():
        return AuditResult("self_contained_and_dated", False, f"{path.name} is missing", {"path": str(path)})
    text = path.read_text(encoding="utf-8")
    problems = []
    if _EXTERNAL_REF.search(text):
        problems.append("references an external resource")
    if "<script" in text.lower():
        problems.append("contains a script")
    if "Data fresh to" not in text:
        problems.append("does not state the day its data is fresh to")
    if not audit_no_pii(files).passed:
        problems.append("contains an email or phone pattern")
    return AuditResult(
        "self_contained_and_dated", not problems,
        f"{path.name}: self-contained, dated, no PII ({len(text) / 1024:.0f} KiB)" if not problems else f"{path.name}: " + "; ".join(problems),
        {"path": str(path), "size_kib": round(len(text) / 1024, 1), "problems": problems},
    )


# ---------------------------------------------------------------------------------------------- writing

STAGING_DIR = ".staging"


EXTRACT_FORMATS = ("parquet", "csv")  # every format an extract can be published in; each extract states its own


def extract_files(out_dir: Path | str, name: str, formats: Sequence[str] = EXTRACT_FORMATS) -> dict[str, Path]:
    """Published paths of extract ``name`` in ``formats``: ``{"parquet": …, "csv": …}``."""
    out = Path(out_dir)
    return {fmt: out / f"{name}.{fmt}" for fmt in formats}


def _readable(path: Path) -> None:
    # mkstemp/mkdtemp create owner-only files; published files get the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def write_audit_publish(
    targets: Mapping[str, Path], writers: Mapping[str, Callable[[Path], None]], audits: Sequence[Audit] = (), what: str = "files",
    retired: Sequence[Path] = (),
) -> Iterator[dict[str, Path]]:
    """Write each ``targets[kind]`` with ``writers[kind](staged_path)`` into a private folder under ``.staging/``
    next to it (same file name), run ``audits`` on the staged files, then yield the staged paths.

    When the ``with`` body finishes without an exception, every staged file is moved onto its published name
    with ``os.replace`` (atomic per file; all audits passed before the first move). A failed audit raises
    :class:`AuditFailed` before the body runs; on any exception nothing is moved. The staging folder is removed
    in every case, so a reader only ever sees complete, audited files. ``retired``: files of a format no longer
    published (a stale copy would outlive its data), removed once the new files are in place.
    """
    parents = {p.parent for p in targets.values()}
    stages = {}
    for parent in parents:
        (parent / STAGING_DIR).mkdir(parents=True, exist_ok=True)
        stages[parent] = Path(tempfile.mkdtemp(prefix=f"{what.replace('/', '_').replace(' ', '_')}.", dir=parent / STAGING_DIR))
    staged = {kind: stages[path.parent] / path.name for kind, path in targets.items()}
    try:
        for kind, path in staged.items():
            writers[kind](path)
            _readable(path)
        failed = [r for r in (audit(staged) for audit in audits) if not r.passed]
        if failed:
            raise AuditFailed(what, failed)
        yield staged
        for kind, path in staged.items():
            os.replace(path, targets[kind])
        for path in retired:
            path.unlink(missing_ok=True)
    finally:
        for parent, stage in stages.items():
            shutil.rmtree(stage, ignore_errors=True)
            with contextlib.suppress(OSError):  # another writer may be staging next to us
                (parent / STAGING_DIR).rmdir()


def _extract_writers(frame: pd.DataFrame) -> dict[str, Callable[[Path], None]]:
    return {
        "parquet": lambda p: frame.to_parquet(p, index=False),
        "csv": lambda p: frame.to_csv(p, index=False, date_format="%Y-%m-%dT%H:%M:%S"),
    }


def _retired(out_dir: Path | str, name: str, formats: Sequence[str]) -> list[Path]:
    """The files of extract ``name`` in a format it is no longer published in."""
    return [p for fmt, p in extract_files(out_dir, name).items() if fmt not in formats]


def stage_extract(frame: pd.DataFrame, name: str, out_dir: Path | str, audits: Sequence[Audit] = (), formats: Sequence[str] = EXTRACT_FORMATS):
    """:func:`write_audit_publish` for extract ``name`` in ``formats`` (Parquet + CSV by default): a context manager yielding
    the staged paths; files of the other formats are removed once the new ones are in place."""
    return write_audit_publish(extract_files(out_dir, name, formats), _extract_writers(frame), audits, what=f"extract {name}",
                               retired=_retired(out_dir, name, formats))


def write_extract(frame: pd.DataFrame, name: str, out_dir: Path | str, audits: Sequence[Audit] = ()) -> dict[str, Path]:
    """Write ``name.parquet`` and ``name.csv`` through staging and ``audits``; a reader never sees a half-written
    or unaudited file."""
    with stage_extract(frame, name, out_dir, audits):
        pass
    return extract_files(out_dir, name)


# ---------------------------------------------------------------------------------------------- at scale (DuckDB)
# Extracts too large for one pandas frame (tens of millions of rows) are written by DuckDB (COPY), pseudonymised
# inside DuckDB, and audited from the Parquet schema and the DISTINCT values of their text columns.

PSEUDONYM_MACRO = "pseudonym"
_PSEUDONYM_KEY_TABLE = "_pseudonym_key"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer HMAC-SHA256 pads of ``key`` (RFC 2104: a key longer than the block is hashed first)."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def register_pseudonym(con, key: bytes) -> None:
    """Define the temporary SQL macro ``pseudonym(prefix, value)`` on ``con``: the same token as :func:`pseudonymise`
    (``prefix`` + the first PSEUDONYM_HEX hex digits of HMAC-SHA256(key, value)), NULL for NULL, computed by DuckDB.
    The key's pads are bound as parameters into a temporary table, never written into SQL text. On Spark the macro is
    a session function computing :func:`pseudonym_token` (its closure holds the key, see ``SparkConnection.create_function``)."""
    if getattr(con, "engine", "duckdb") == "spark":
        con.create_function(PSEUDONYM_MACRO, lambda prefix, value: None if value is None else pseudonym_token(key, value, prefix))
        return
    inner, outer = hmac_pads(key)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_PSEUDONYM_KEY_TABLE} AS SELECT $1::BLOB AS ipad, $2::BLOB AS opad", [inner, outer])
    con.execute(
        f"""CREATE OR REPLACE TEMP MACRO {PSEUDONYM_MACRO}(prefix, value) AS
            CASE WHEN value IS NOT NULL THEN prefix || substr(sha256(
                (SELECT opad FROM {_PSEUDONYM_KEY_TABLE}) ||
                unhex(sha256((SELECT ipad FROM {_PSEUDONYM_KEY_TABLE}) || encode(CAST(value AS VARCHAR))))), 1, {PSEUDONYM_HEX}) END"""
    )


def drop_pseudonym(con) -> None:
    """Remove the key table and macro :func:`register_pseudonym` created."""
    if getattr(con, "engine", "duckdb") == "spark":
        con.drop_function(PSEUDONYM_MACRO)
        return
    con.execute(f"DROP MACRO IF EXISTS {PSEUDONYM_MACRO}")
    con.execute(f"DROP TABLE IF EXISTS {_PSEUDONYM_KEY_TABLE}")


def _arrow_kind(arrow_type) -> str:
    import pyarrow as pa

    checks = (
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)), ("bool", pa.types.is_boolean),
        ("int", pa.types.is_integer), ("float", pa.types.is_floating), ("date", pa.types.is_date),
        ("timestamp", pa.types.is_timestamp), ("null", pa.types.is_null),
    )
    return next((kind for kind, test in checks if test(arrow_type)), str(arrow_type))


def audit_file_schema(files: Mapping[str, Path], columns: Mapping[str, str]) -> AuditResult:
    """:func:`audit_published_columns` without reading the data: column names and types from the Parquet schema, the
    CSV header line (when a CSV is published). An integer column may be published as float; an all-NULL column has no
    type to check."""
    import pyarrow.parquet as pq

    problems, expected = [], list(columns)
    schema = pq.read_schema(files["parquet"])
    if schema.names != expected:
        problems.append(f"{files['parquet'].name} columns {schema.names}")
    if "csv" in files:
        with open(files["csv"], encoding="utf-8") as fh:
            csv_cols = pd.read_csv(fh, nrows=0).columns.tolist()
        if csv_cols != expected:
            problems.append(f"{files['csv'].name} columns {csv_cols}")
    for col, kind in columns.items():
        if col in schema.names:
            found = _arrow_kind(schema.field(col).type)
            if found not in (kind, "null") and not (kind == "float" and found == "int"):
                problems.append(f"{files['parquet'].name}: {col} is {found}, published as {kind}")
    return AuditResult(
        "published_columns", not problems,
        "files match the published column list" if not problems else "; ".join(problems),
        {"published_columns": expected, "problems": problems},
    )


PII_SCAN_LIMIT = 200_000  # candidate values per column handed to find_pii; more are reported as not scanned


def audit_no_pii_at_scale(files: Mapping[str, Path], limit: int = PII_SCAN_LIMIT, skip: Collection[str] = ()) -> AuditResult:
    """:func:`audit_no_pii` through DuckDB: per text column, the DISTINCT values that could hold an e-mail (an ``@``)
    or a phone number (9+ digits once 16+-digit hex runs, the identifiers find_pii ignores, are removed) go to
    :func:`find_pii`, at most ``limit`` per column (a column with more fails: it cannot be vouched for). The text
    columns are the Parquet file's string columns (the CSV is written from the same table: its numbers stay numbers);
    without a Parquet file every CSV column is read as text. Columns in ``skip`` are not scanned (the caller vouches
    for them, see :func:`audit_pseudonymised_at_scale`)."""
    import duckdb

    found: dict[str, list[str]] = {}
    unscanned: list[str] = []
    with duckdb.connect() as con:
        text_columns = None
        if "parquet" in files:
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(files['parquet'])})").fetchall()
            text_columns = [row[0] for row in described if row[1] == "VARCHAR"]
        for path in files.values():
            parquet = path.suffix == ".parquet"
            source = f"read_parquet({literal(path)})" if parquet else f"read_csv({literal(path)}, all_varchar = true, header = true)"
            present = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            scanned = [c for c in present if (text_columns is None or c in text_columns) and c not in skip]
            if not scanned:
                continue
            # every text column's distinct candidates, at most limit + 1 per column; a DISTINCT per column reads only
            # that column of a Parquet file
            distinct = " UNION ALL ".join(f"SELECT {literal(c)} AS column_name, v FROM (SELECT DISTINCT {ident(c)} AS v FROM {source})" for c in scanned)
            candidates = con.execute(
                f"""SELECT column_name, v FROM ({distinct})
                    WHERE contains(v, '@')
                       OR length(regexp_replace(regexp_replace(v, '[0-9a-fA-F]{{16,}}', '', 'g'), '[^0-9]', '', 'g')) >= 9
                    QUALIFY row_number() OVER (PARTITION BY column_name ORDER BY v) <= {limit + 1}"""
            ).df()
            for col, values in candidates.groupby("column_name"):
                if len(values) > limit:
                    unscanned.append(f"{path.name}:{col}")
                found |= {f"{path.name}:{c}": v for c, v in find_pii(pd.DataFrame({col: values["v"].head(limit).to_numpy()})).items()}
    passed = not found and not unscanned
    description = "no email or phone pattern" if passed else "; ".join(
        ([f"PII-like values in {', '.join(found)}"] if found else []) + ([f"more than {limit:,} candidate values in {', '.join(unscanned)}"] if unscanned else []))
    return AuditResult("no_pii_in_files", passed, description, {"columns_with_pii": found, "columns_not_scanned": unscanned})


def audit_pseudonymised_at_scale(files: Mapping[str, Path], pseudonyms: Mapping[str, tuple[str, str | None]],
                                 limit: int = PII_SCAN_LIMIT) -> AuditResult:
    """:func:`audit_no_pii_at_scale` for a large Parquet file whose identifier columns hold keyed pseudonyms, in one
    vectorised pass over its rows: every value of each ``pseudonyms`` column ({column: (prefix, SQL condition under which
    NULL is allowed, None = never)}) fully matches ``<prefix>`` + PSEUDONYM_HEX lowercase hex digits, so it can hold
    nothing else (stronger than a pattern search, and no DISTINCT over millions of keys); the other text columns (few
    distinct values) get the e-mail and phone scan of :func:`audit_no_pii_at_scale`. Only counts of non-pseudonym
    values are reported (per ``file:column``; -1: the column is missing), never a value."""
    import duckdb

    bad: dict[str, int] = {}
    with duckdb.connect() as con:
        for path in files.values():
            source = f"read_parquet({literal(path)})" if path.suffix == ".parquet" else f"read_csv({literal(path)}, all_varchar = true, header = true)"
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            tests = {}
            for col, (prefix, nullable) in pseudonyms.items():
                if col not in present:  # a renamed or dropped key column: nothing here vouches for its values
                    bad[f"{path.name}:{col}"] = -1
                    continue
                pattern = literal(f"^{re.escape(prefix)}[0-9a-f]{{{PSEUDONYM_HEX}}}$")
                null_ok = f"coalesce({nullable}, false)" if nullable else "false"
                tests[col] = (f"count(*) FILTER (WHERE CASE WHEN {ident(col)} IS NULL THEN NOT {null_ok} "
                              f"ELSE NOT regexp_full_match({ident(col)}, {pattern}) END)")
            if tests:
                counts = con.execute(f"SELECT {', '.join(tests.values())} FROM {source}").fetchone()
                bad |= {f"{path.name}:{col}": int(n) for col, n in zip(tests, counts) if n}
    text = audit_no_pii_at_scale(files, limit, skip=pseudonyms)
    passed = not bad and text.passed
    problems = [f"{k} is missing" if n < 0 else f"{n:,} values of {k} are not pseudonyms" for k, n in bad.items()]
    description = "pseudonym columns hold only pseudonyms; " + text.description if passed else "; ".join(
        problems + ([] if text.passed else [text.description]))
    return AuditResult("no_pii_in_files", passed, description, {**text.metadata, "non_pseudonym_values": bad})


PARQUET_ROW_GROUP_SIZE = 1_000_000
SQL_COPY_OPTIONS = {
    "parquet": f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {PARQUET_ROW_GROUP_SIZE}",
    "csv": "FORMAT csv, HEADER true, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S'",
}
# DuckDB only: no dictionary pages. DuckDB otherwise builds a dictionary for every column of a row group before it gives
# up on the high-cardinality ones (credits, amounts, pseudonyms): a quarter of opportunity_credit's writing time, for the
# same file size (zstd compresses the few repeated texts about as well).
DUCKDB_COPY_OPTIONS = {"parquet": ", DICTIONARY_SIZE_LIMIT 0", "csv": ""}


def stage_sql_extract(con, select_sql: str, name: str, out_dir: Path | str, audits: Sequence[Audit] = (),
                      formats: Sequence[str] = EXTRACT_FORMATS, ordered: bool = True):
    """:func:`stage_extract` for a SELECT: DuckDB writes the files in ``formats`` straight from it (``COPY``, no pandas
    frame, no intermediate table); files of the formats not published are removed once the new ones are in place.
    ``ordered=False``: the rows' order is not part of the extract (a SELECT without ORDER BY), so every thread writes
    (a window's or join's output is otherwise written by one thread to keep an order that means nothing)."""
    def copy(p: Path, fmt: str) -> None:
        with contextlib.nullcontext() if ordered else unordered_writes(con):
            engine_options = DUCKDB_COPY_OPTIONS[fmt] if getattr(con, "engine", "duckdb") == "duckdb" else ""
            con.execute(f"COPY ({select_sql}) TO {literal(p)} ({SQL_COPY_OPTIONS[fmt]}{engine_options})")

    writers = {fmt: (lambda p, fmt=fmt: copy(p, fmt)) for fmt in formats}
    return write_audit_publish(extract_files(out_dir, name, formats), writers, audits, what=f"extract {name}", retired=_retired(out_dir, name, formats))
