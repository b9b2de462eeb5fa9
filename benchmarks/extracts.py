"""Extract assets at scale (a script that prints numbers, not a test).

    .venv/bin/python benchmarks/attribution.py --scale large --work /tmp/bench_large   # builds the upstream tables
    .venv/bin/python benchmarks/extracts.py --work /tmp/bench_large

Times each extract asset (every KPI computed from the metric dictionary in DuckDB, then written to the
warehouse and as Parquet + CSV) on the warehouse under ``--work``, with the row counts of the largest
inputs, and prints the peak RSS. The MMM tables are used when present (else MMM columns stay empty).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from marketing_assets.constants import EXTRACTS
from marketing_assets.definitions import defs
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse

EXTRACT_ASSETS = ("kpi_dictionary", "executive_kpis", "marketing_roi", "funnel", "cohort_ltv", "pipeline_forecast")
INPUTS = ("sources.erp_orders", "sources.web_sessions", "sources.crm_contacts", "sources.crm_opportunities",
          "touchpoints.touchpoints", "attribution.attribution_credits")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/marketing_assets_bench", help="folder holding landing/ and warehouse.duckdb")
    args = parser.parse_args()
    work = Path(args.work)
    database = work / "warehouse.duckdb"
    if not database.is_file():
        print(f"{database} not found: build it first with benchmarks/attribution.py --work {work}", file=sys.stderr)
        return 2
    with duckdb.connect(str(database), read_only=True) as con:
        for table in INPUTS:
            print(f"{table:<36}{con.execute(f'SELECT count(*) FROM {table}').fetchone()[0]:>14,} rows")
    resources = {
        "landing": LandingZone(path=str(work / "landing")),
        "warehouse": Warehouse(database=str(database), extracts_dir=str(work / "extracts"), reports_dir=str(work / "reports")),
        "thresholds": CheckThresholds(),
    }
    print(f"\n{'asset':<24}{'seconds':>9}{'rows out':>12}")
    total = 0.0
    for name in EXTRACT_ASSETS:
        start = time.perf_counter()
        result = dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.assets(dg.AssetKey([EXTRACTS, name])), resources=resources,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        secs = time.perf_counter() - start
        total += secs
        rows = result.asset_materializations_for_node(name)[0].metadata["dagster/row_count"].value
        print(f"{name:<24}{secs:9.1f}{rows:12,}")
    print(f"{'total':<24}{total:9.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
