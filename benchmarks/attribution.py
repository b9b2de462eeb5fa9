"""End-to-end attribution benchmark on generated data (a script that prints numbers, not a test).

    .venv/bin/python benchmarks/attribution.py --scale large --work /tmp/bench_large

Generates the demo landing zone at the scale asked (or reuses the one under ``--work``),
materialises sources → identity → touchpoints once (timed, without checks), then times the
attribution assets one by one, the path models on the real conversion paths, and a hand-written
DuckDB baseline computing only first touch, last touch and linear on the same
``opportunity_touchpoints``. Prints rows/s, the ratio to the baseline and peak RSS. The library-level
benchmark on synthetic paths (1M paths over 8 and 15 channels) is ``benchmarks/attribution_lib.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from marketing_assets.constants import ATTRIBUTION, IDENTITY, SOURCES, TOUCHPOINTS
from marketing_assets.definitions import defs
from marketing_assets.demo import generate
from marketing_assets.lib.attribution import attribution_credits_sql, markov_attribution, shapley_attribution
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse

BASELINE = """
CREATE OR REPLACE TABLE bench_baseline AS
SELECT * EXCLUDE (rn, n, amount),
       CASE WHEN rn = 1 THEN amount ELSE 0 END AS first_touch_credit,
       CASE WHEN rn = n THEN amount ELSE 0 END AS last_touch_credit,
       amount / n AS linear_credit
FROM (
    SELECT * EXCLUDE (touch_order, touch_count), CAST(pipeline_amount AS DOUBLE) AS amount,
           row_number() OVER (PARTITION BY opportunity_id ORDER BY touchpoint_date, touchpoint_type, touchpoint_id) AS rn,
           count(*) OVER (PARTITION BY opportunity_id) AS n
    FROM touchpoints.opportunity_touchpoints
)"""


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def materialise(selection: dg.AssetSelection, resources: dict) -> float:
    start = time.perf_counter()
    result = dg.materialize(
        list(defs.assets),
        selection=selection,
        resources=resources,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    assert result.success
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", choices=["small", "default", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", default="/tmp/marketing_assets_bench", help="folder for landing zone and warehouse")
    args = parser.parse_args()

    work = Path(args.work)
    landing = work / "landing"
    if not (landing / "_truth" / "manifest.json").is_file():
        start = time.perf_counter()
        generate(landing, scale=args.scale, seed=args.seed)
        print(f"generate {args.scale}: {time.perf_counter() - start:.1f}s")
    resources = {
        "landing": LandingZone(path=str(landing)),
        "warehouse": Warehouse(database=str(work / "warehouse.duckdb"), extracts_dir=str(work / "extracts")),
        "thresholds": CheckThresholds(),
    }
    for group in (SOURCES, IDENTITY, TOUCHPOINTS):
        print(f"setup {group:<12} {materialise(dg.AssetSelection.groups(group), resources):8.1f}s")

    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as con:
        (rows,) = con.execute("SELECT count(*) FROM touchpoints.opportunity_touchpoints").fetchone()
        paths = con.execute(
            "SELECT path, sum(conversions) AS conversions, sum(value) AS value, sum(nulls) AS nulls FROM touchpoints.conversion_paths GROUP BY path"
        ).df()
        (journeys,) = con.execute("SELECT count(*) FROM touchpoints.conversion_paths").fetchone()
    print(f"\nopportunity_touchpoints: {rows:,} rows; conversion paths: {journeys:,} journeys, {len(paths):,} distinct")

    start = time.perf_counter()
    markov = markov_attribution(paths)
    markov_s = time.perf_counter() - start
    start = time.perf_counter()
    shapley = shapley_attribution(paths)
    shapley_s = time.perf_counter() - start
    weights = {
        "markov": dict(zip(markov["channel"], markov["conversions"], strict=True)),
        "shapley": dict(zip(shapley["channel"], shapley["conversions"], strict=True)),
    }
    print(f"markov (exact, order 1) on the real paths   {markov_s:8.2f}s")
    print(f"shapley (exact) on the real paths           {shapley_s:8.2f}s")

    timings = {}
    for asset in ("attribution_credits", "attribution_by_channel", "attribution_by_segment_channel", "attribution_by_campaign", "channel_roi", "attribution_model_comparison"):
        timings[asset] = materialise(dg.AssetSelection.assets(dg.AssetKey([ATTRIBUTION, asset])), resources)
    with duckdb.connect(str(work / "warehouse.duckdb")) as con:
        start = time.perf_counter()
        con.execute(BASELINE)
        baseline_s = time.perf_counter() - start
        con.execute("CREATE OR REPLACE TEMP VIEW bench_src AS SELECT * EXCLUDE (touch_order, touch_count) FROM touchpoints.opportunity_touchpoints")
        start = time.perf_counter()
        attribution_credits_sql(con, "bench_src", "bench_rules")
        rules_s = time.perf_counter() - start
        start = time.perf_counter()
        attribution_credits_sql(con, "bench_src", "bench_all", channel_weights=weights)
        all_s = time.perf_counter() - start
        for t in ("bench_baseline", "bench_rules", "bench_all"):
            con.execute(f"DROP TABLE IF EXISTS {t}")

    print(f"\n{'step':<42}{'seconds':>9}{'rows/s':>14}")
    for asset, secs in timings.items():
        print(f"{asset:<42}{secs:9.2f}{rows / secs:14,.0f}")
    print(f"{'SQL: 7 rule models (library)':<42}{rules_s:9.2f}{rows / rules_s:14,.0f}")
    print(f"{'SQL: all 9 models (library)':<42}{all_s:9.2f}{rows / all_s:14,.0f}")
    print(f"{'SQL baseline: first + last + linear':<42}{baseline_s:9.2f}{rows / baseline_s:14,.0f}")
    print(f"\nrule models / baseline: {rules_s / baseline_s:.2f}x (target <= 1.5x); all 9 models / baseline: {all_s / baseline_s:.2f}x")
    print(f"attribution_credits asset (incl. path models and run overhead) / baseline: {timings['attribution_credits'] / baseline_s:.2f}x")
    print(f"peak RSS {peak_rss_gb():.2f} GB (target <= 4 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
