"""Source assets: one per landing table, typed against its contract, rejects kept for ``quarantine``."""


import datetime as dt

import dagster as dg

from marketing_assets.constants import INGEST_LOG_TABLE, QUARANTINE_TABLE, SOURCES, rejected_table
from marketing_assets.lib.landing import DateBounds, IngestResult, LandingError, TableContract, contract_from_model, discover_files, ingest_table
from marketing_assets.lib.publish import PseudonymKeyMissing
from marketing_assets.lib.refs import ref_working, this
from marketing_assets.lineage import upstream
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse
from marketing_assets.schemas import SOURCE_MODELS, SourceModel

CONTRACTS: dict[str, TableContract] = {name: contract_from_model(name, model) for name, model in SOURCE_MODELS.items()}


def _files_markdown(result: IngestResult) -> str:
    lines = ["| file | read | staged | quarantined | duplicates collapsed |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {f.source_file} | {f.rows_read} | {f.rows_staged} | {f.rows_quarantined} | {f.duplicates_collapsed} |"
        for f in result.files
    ]
    return "\n".join(lines)


def _write_ingest_log(con, result: IngestResult, landing_root) -> None:
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {SOURCES}.{INGEST_LOG_TABLE} (
            table_name VARCHAR, source_file VARCHAR, rows_read BIGINT, rows_staged BIGINT,
            rows_quarantined BIGINT, duplicates_collapsed BIGINT, file_bytes BIGINT,
            file_modified_at TIMESTAMP, ingested_at TIMESTAMP)"""
    )
    con.execute(f"DELETE FROM {SOURCES}.{INGEST_LOG_TABLE} WHERE table_name = ?", [result.table])
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for f in result.files:
        stat = (landing_root / f.source_file).stat()
        con.execute(
            f"INSERT INTO {SOURCES}.{INGEST_LOG_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                result.table, f.source_file, f.rows_read, f.rows_staged, f.rows_quarantined, f.duplicates_collapsed,
                stat.st_size, dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).replace(tzinfo=None), now,
            ],
        )


def date_bounds(thresholds: CheckThresholds) -> DateBounds:
    conf = thresholds.plausible_dates()
    default = DateBounds()
    min_date = conf.get("min_date", default.min_date)
    return DateBounds(
        min_date=min_date if isinstance(min_date, dt.date) else dt.date.fromisoformat(str(min_date)),
        max_days_after_newest_file=int(conf.get("max_days_after_newest_file", default.max_days_after_newest_file)),
    )


def build_source_asset(table: str, model: type[SourceModel]) -> dg.AssetsDefinition:
    contract = CONTRACTS[table]
    doc = (model.__doc__ or "").strip()

    @dg.asset(
        name=table,
        description=f"{doc} One row per distinct landed record of `{contract.landing_glob}`; rejects go to `quarantine`.",
        kinds={"duckdb"},
        metadata={
            "landing_glob": contract.landing_glob,
            "primary_key": ", ".join(contract.key),
            "optional_table": contract.optional_table,
        },
    )
    def _source(
        context: dg.AssetExecutionContext, landing: LandingZone, warehouse: Warehouse, thresholds: CheckThresholds
    ) -> dg.MaterializeResult:
        try:  # before anything is read: own data is never processed without a pseudonym key
            warehouse.pseudonym_key_for(landing.root)
        except PseudonymKeyMissing as err:
            raise dg.Failure(description=f"{err} (the landing zone holds no demo data: no _truth/manifest.json)") from None
        files = discover_files(landing.root, contract)
        if not files and not contract.optional_table:
            raise dg.Failure(
                f"No landing file matches {contract.landing_glob}(.csv|.parquet) under {landing.root}; "
                f"table {table} is required for attribution."
            )
        with warehouse.get_connection() as con:
            try:
                result = ingest_table(con, contract, landing.root, SOURCES, rejected_table(table), date_bounds(thresholds))
            except LandingError as exc:  # the message names the file and never quotes a record
                raise dg.Failure(str(exc)) from None
            _write_ingest_log(con, result, landing.root)
        context.log.info(
            f"{table}: {result.rows_read} read, {result.rows_staged} staged, "
            f"{result.rows_quarantined} quarantined, {result.duplicates_collapsed} duplicates collapsed "
            f"from {len(files)} file(s)"
        )
        metadata = {
            "dagster/row_count": result.rows_staged,
            "rows_read": result.rows_read,
            "rows_quarantined": result.rows_quarantined,
            "duplicates_collapsed": result.duplicates_collapsed,
            "quarantine_by_reason": result.quarantine_by_reason,
            "files": dg.MetadataValue.md(_files_markdown(result)),
            "file_count": len(files),
        }
        ignored = sorted({c for f in result.files for c in f.ignored_columns})
        if ignored:
            metadata["ignored_columns"] = ", ".join(ignored)
        if not files:
            metadata["note"] = (
                f"No landing file matches {contract.landing_glob}: the table is optional and was materialised "
                "empty; checks that need it are skipped."
            )
        return dg.MaterializeResult(metadata=metadata)

    return _source


source_assets = [build_source_asset(table, model) for table, model in SOURCE_MODELS.items()]


def quarantine_parts(tables) -> list[str]:
    """One SELECT per source table's rejected rows (the ``_rejected_<table>`` working table its asset writes)."""
    return [f"SELECT * FROM {ref_working(SOURCES, rejected_table(t), t)}" for t in tables]


@dg.asset(
    name=QUARANTINE_TABLE,
    deps=upstream(lambda: quarantine_parts(SOURCE_MODELS)),
    kinds={"duckdb"},
)
def quarantine(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per rejected landing row, with its file, line, column, raw value (PII masked) and reason."""
    with warehouse.get_connection() as con:
        existing = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SOURCES]
            ).fetchall()
        }
        parts = quarantine_parts([t for t in SOURCE_MODELS if rejected_table(t) in existing])
        body = " UNION ALL ".join(parts) if parts else (
            "SELECT NULL::VARCHAR AS table_name, NULL::VARCHAR AS source_file, NULL::BIGINT AS source_line, "
            "NULL::VARCHAR AS column_name, NULL::VARCHAR AS raw_value, NULL::VARCHAR AS reason, NULL::VARCHAR AS detail, "
            "NULL::BIGINT AS violations, NULL::VARCHAR AS raw_record WHERE false"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {this(SOURCES, QUARANTINE_TABLE)} AS "
            f"SELECT * FROM ({body}) ORDER BY table_name, source_file, source_line"
        )
        by_table = dict(con.execute(f"SELECT table_name, count(*) FROM {this(SOURCES, QUARANTINE_TABLE)} GROUP BY ALL ORDER BY ALL").fetchall())
        by_reason = dict(con.execute(f"SELECT reason, count(*) FROM {this(SOURCES, QUARANTINE_TABLE)} GROUP BY ALL ORDER BY ALL").fetchall())
    total = sum(by_table.values())
    context.log.info(f"quarantine: {total} rejected row(s) across {len(by_table)} table(s)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "rows_by_table": {k: int(v) for k, v in by_table.items()},
            "rows_by_reason": {k: int(v) for k, v in by_reason.items()},
        }
    )
