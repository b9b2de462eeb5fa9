"""`python -m marketing_assets.run`: materialise every asset in-process and print a summary.

Fills an empty landing zone with synthetic demo data first (scale from MARKETING_DEMO_SCALE,
default ``default``). Exits 1 when the run fails or a blocking check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg

from marketing_assets.constants import DEFAULT_LANDING_DIR
from marketing_assets.resources import configured


def landing_is_empty(root: Path) -> bool:
    return not root.exists() or not any(p.is_file() and not p.name.startswith(".") for p in root.rglob("*"))


def ensure_demo_data(root: Path, scale: str, seed: int) -> bool:
    """Generate demo data into ``root`` only when it holds no file; returns whether it did."""
    if not landing_is_empty(root):
        return False
    from marketing_assets.demo import generate

    start = time.perf_counter()
    manifest = generate(root, scale=scale, seed=seed)
    rows = sum(manifest.get("files", {}).values())
    print(f"demo data: {rows:,} rows ({scale}, seed {seed}) written to {root} in {time.perf_counter() - start:.1f}s")
    return True


def summarise(result: dg.ExecuteInProcessResult) -> tuple[str, bool]:
    """Text summary of a run, and whether a blocking check failed."""
    lines = ["", "assets materialised:"]
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        rows = mat.metadata.get("dagster/row_count")
        count = f"{rows.value:>12,}" if rows is not None else f"{'-':>12}"
        lines.append(f"  {mat.asset_key.to_user_string():<45} {count} rows")
    tally: Counter[str] = Counter()
    blocking_failures = []
    problems = []
    for ev in result.get_asset_check_evaluations():
        if ev.passed:
            tally["passed"] += 1
            continue
        warn = ev.severity == dg.AssetCheckSeverity.WARN
        tally["warned" if warn else "failed"] += 1
        name = f"{ev.asset_key.to_user_string()}:{ev.check_name}"
        problems.append(f"  {'WARN' if warn else 'FAIL'} {name}: {ev.description or ''}")
        if ev.blocking and not warn:
            blocking_failures.append(name)
    lines.append(
        f"checks: {tally['passed']} passed, {tally['warned']} warned, {tally['failed']} failed"
        + (f" ({len(blocking_failures)} blocking)" if blocking_failures else " (none blocking)" if tally["failed"] else "")
    )
    lines += problems
    lines.append(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    return "\n".join(lines), bool(blocking_failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m marketing_assets.run", description=__doc__)
    parser.add_argument("--job", default="full_refresh")
    parser.add_argument("--scale", default=os.environ.get("MARKETING_DEMO_SCALE", "default"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-level", default="WARNING", help="Dagster console log level (DEBUG shows every event)")
    args = parser.parse_args(argv)

    landing = Path(os.environ.get("MARKETING_LANDING_DIR") or DEFAULT_LANDING_DIR)
    ensure_demo_data(landing, args.scale, args.seed)

    from marketing_assets.definitions import defs

    start = time.perf_counter()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with instance:
        result = defs.resolve_job_def(args.job).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": args.log_level.upper()}}}},
        )
    text, blocking_failed = summarise(result)
    print(text)
    warehouse = defs.resources["warehouse"]
    for label, folder, pattern in (("extracts", configured(warehouse.extracts_dir), "*.parquet"), ("reports", configured(warehouse.reports_dir), "*.html")):
        files = sorted(p.name for p in Path(folder).glob(pattern))
        print(f"{label} in {folder}: {', '.join(files) if files else 'none'}")
    print(f"{args.job} finished in {time.perf_counter() - start:.1f}s")
    return 1 if (blocking_failed or not result.success) else 0


if __name__ == "__main__":
    sys.exit(main())
