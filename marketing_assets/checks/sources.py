"""Asset checks: the Pandera contract of every source table plus its business rules.

Per source table (one multi-check step, one warehouse connection):
``contract`` (Pandera, blocking), ``primary_key_unique`` (blocking), ``critical_not_null``
(blocking), ``row_conservation`` (read = staged + quarantined + collapsed per file, blocking) and
``freshness`` (WARN, never blocking, so historical exports still load).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from marketing_assets.constants import INGEST_LOG_TABLE, QUARANTINE_TABLE, SOURCES, rejected_table
from marketing_assets.lib import contract_sql, quality
from marketing_assets.lib.landing import count_landing_rows, discover_files
from marketing_assets.lib.refs import ref
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse
from marketing_assets.schemas import SOURCE_MODELS, Quarantine
from marketing_assets.sources import CONTRACTS

SOURCE_CHECKS = {
    "contract": (True, "Every staged row conforms to the table's Pandera contract (types, nulls, ranges, allowed values)."),
    "primary_key_unique": (True, "The primary key is unique."),
    "critical_not_null": (True, "Key and required columns hold no nulls."),
    "row_conservation": (True, "Per landing file, rows read = rows staged + rows quarantined + exact duplicates collapsed."),
    "freshness": (False, "The newest event is within the configured number of hours (WARN: historical exports still load)."),
}


def _result(key: dg.AssetKey, name: str, outcome: quality.CheckOutcome, severity=dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=bool(outcome.passed),
        severity=severity,
        description=outcome.description,
        metadata=outcome.metadata,
    )


def _recount(con, root, files) -> dict[str, int]:
    """Records per landing file, counted independently of ingestion (on its own cursor, for a thread)."""
    try:
        return {p.relative_to(root).as_posix(): count_landing_rows(con, p) for p in files}
    finally:
        con.close()


def build_source_checks(table: str) -> dg.AssetChecksDefinition:
    key = dg.AssetKey([SOURCES, table])
    contract, model = CONTRACTS[table], SOURCE_MODELS[table]
    specs = [
        dg.AssetCheckSpec(name, asset=key, blocking=blocking, description=desc)
        for name, (blocking, desc) in SOURCE_CHECKS.items()
    ]
    critical = [c.name for c in contract.columns if not c.nullable]

    @dg.multi_asset_check(specs=specs, name=f"{table}_checks", can_subset=True)
    def _checks(
        context: dg.AssetCheckExecutionContext, landing: LandingZone, warehouse: Warehouse, thresholds: CheckThresholds
    ) -> Iterator[dg.AssetCheckResult]:
        selected = {k.name for k in context.selected_asset_check_keys}
        fq = ref(SOURCES, table)
        with warehouse.get_connection() as con, ThreadPoolExecutor(max_workers=1) as pool:
            landed = None
            if "row_conservation" in selected:  # the recount reads the files in Python while DuckDB runs the other checks
                files = discover_files(landing.root, contract)
                landed = pool.submit(_recount, con.cursor(), landing.root, files)
            if "contract" in selected:
                yield _result(key, "contract", contract_sql.validate_contract(con, fq, model))
            if "primary_key_unique" in selected:
                yield _result(key, "primary_key_unique", quality.duplicate_keys(con, fq, contract.key))
            if "critical_not_null" in selected:
                yield _result(key, "critical_not_null", quality.null_counts(con, fq, critical))
            if landed is not None:
                log = con.execute(
                    f"SELECT source_file, rows_read, duplicates_collapsed FROM {SOURCES}.{INGEST_LOG_TABLE} WHERE table_name = ?",
                    [table],
                ).df()
                staged = dict(con.execute(f"SELECT source_file, count(*) FROM {fq} GROUP BY ALL").fetchall())
                rejected = dict(
                    con.execute(f"SELECT source_file, count(*) FROM {SOURCES}.{rejected_table(table)} GROUP BY ALL").fetchall()
                )
                yield _result(key, "row_conservation", quality.row_conservation(landed.result(), log, staged, rejected))
            if "freshness" in selected:
                hours = thresholds.freshness_hours(table)
                (rows,) = con.execute(f"SELECT count(*) FROM {fq}").fetchone()
                events = con.execute(f"SELECT count({contract.event_time}) FROM {fq}").fetchone()[0] if contract.event_time else 0
                if hours is None or contract.event_time is None or rows == 0 or events == 0:
                    why = (
                        "no freshness window configured" if hours is None or contract.event_time is None
                        else "table is empty (absent optional source)" if rows == 0
                        else f"no {contract.event_time} values (optional column absent or empty)"
                    )
                    yield dg.AssetCheckResult(
                        asset_key=key, check_name="freshness", passed=True, severity=dg.AssetCheckSeverity.WARN,
                        description=f"skipped: {why}", metadata={"skipped": why},
                    )
                else:
                    outcome = quality.freshness(con, fq, contract.event_time, float(hours), thresholds.now())
                    yield _result(key, "freshness", outcome, severity=dg.AssetCheckSeverity.WARN)

    return _checks


QUARANTINE_KEY = dg.AssetKey([SOURCES, QUARANTINE_TABLE])


@dg.asset_check(asset=QUARANTINE_KEY, blocking=True, name="contract")
def quarantine_contract(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every quarantined row names its table, file, line, column and a known reason."""
    with warehouse.get_connection() as con:
        outcome = contract_sql.validate_contract(con, f"{SOURCES}.{QUARANTINE_TABLE}", Quarantine)
    return _result(QUARANTINE_KEY, "contract", outcome)


@dg.asset_check(asset=QUARANTINE_KEY, name="quarantine_share")
def quarantine_share(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when a table loses more than the configured share of its landed rows to quarantine."""
    limit = thresholds.max_quarantine_share()
    with warehouse.get_connection() as con:
        shares = con.execute(
            f"""SELECT l.table_name, sum(l.rows_read) AS rows_read, sum(l.rows_quarantined) AS rows_quarantined,
                       sum(l.rows_quarantined) / greatest(sum(l.rows_read), 1) AS share
                FROM {SOURCES}.{INGEST_LOG_TABLE} l GROUP BY ALL ORDER BY share DESC"""
        ).df()
    over = shares[shares["share"] > limit]
    return dg.AssetCheckResult(
        passed=over.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(over)} table(s) above {limit:.1%} quarantined: " + ", ".join(f"{r.table_name} ({r.share:.2%})" for r in over.itertuples())
            if not over.empty else f"every table within {limit:.1%} quarantined"
        ),
        metadata={
            "max_share": limit,
            "by_table": dg.MetadataValue.md(_shares_markdown(shares)),
            "tables_over_limit": list(over["table_name"]),
        },
    )


def _shares_markdown(shares: pd.DataFrame) -> str:
    lines = ["| table | read | quarantined | share |", "|---|---:|---:|---:|"]
    lines += [f"| {r.table_name} | {int(r.rows_read)} | {int(r.rows_quarantined)} | {r.share:.3%} |" for r in shares.itertuples()]
    return "\n".join(lines)


source_checks = [build_source_checks(table) for table in SOURCE_MODELS]
quarantine_checks = [quarantine_contract, quarantine_share]
