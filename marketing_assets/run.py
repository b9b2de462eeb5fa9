"""`python -m marketing_assets.run`: materialise every asset in-process and print a summary.

Fills an empty landing zone with synthetic demo data first (scale from MARKETING_DEMO_SCALE,
default ``default``). Exits 1 when the run fails or a blocking check fails.

Several of these may start at once: the Dagster instance (``DAGSTER_HOME``) is opened under a lock file
in it, and runs on one warehouse take turns on the warehouse's lock (``Warehouse`` resource). After a
successful run, the landing files it ingested are recorded next to the warehouse for the landing sensor.
`make run` / `make ui` keep the Dagster history next to the warehouse too (:func:`dagster_home_for`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from marketing_assets.constants import DEFAULT_LANDING_DIR
from marketing_assets.lib import tally
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


def dagster_home_for(warehouse: str | Path) -> Path:
    """The Dagster history `make run` / `make ui` keep for a warehouse file: ``<its folder>/.dagster/<its stem>``
    (``data/warehouse.duckdb`` -> ``data/.dagster/warehouse``). The Makefile derives the same default
    ``DAGSTER_HOME``; an explicitly set ``DAGSTER_HOME`` wins."""
    path = Path(os.path.abspath(Path(warehouse).expanduser()))
    return path.parent / ".dagster" / path.stem


INSTANCE_LOCK_FILE = ".instance.lock"


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block; waits for it."""
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def open_instance() -> dg.DagsterInstance:
    """The ``DAGSTER_HOME`` instance with its storages initialised, else an ephemeral one.

    Two processes creating the SQLite storages of a fresh home at once corrupt it ("table ... already
    exists", two alembic heads in ``runs.db``); the first one creates them under an exclusive lock on
    ``$DAGSTER_HOME/.instance.lock`` while the others wait, then find them complete."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return dg.DagsterInstance.ephemeral()
    if not Path(home).is_dir():
        return dg.DagsterInstance.get()  # Dagster's own error about the missing folder
    with exclusive_lock(Path(home) / INSTANCE_LOCK_FILE):
        instance = dg.DagsterInstance.get()
        try:
            # Storages initialise when the instance is built; touch each so a lazy one is created here too.
            instance.get_runs_count()
            instance.event_log_storage.get_maximum_record_id()
            if instance.schedule_storage is not None:
                instance.schedule_storage.all_instigator_state()
        except BaseException:
            instance.dispose()
            raise
    return instance


def landing_files(root: Path) -> dict[str, dict]:
    """The landing files as they are before the run (the landing sensor's cursor format).

    Taken before the run: a file changed while the run reads it differs from this record afterwards, so the
    sensor still refreshes it. No settling delay: the run reads the files as they are now."""
    from marketing_assets.sensors import scan_landing

    return scan_landing(root, {}, settle_seconds=0).cursor if root.is_dir() else {}


def record_landing(record: Path, root: Path, files: dict[str, dict], result: dg.ExecuteInProcessResult) -> int:
    """Record, for the landing sensor, the files of the source tables this successful run materialised.

    Entries of tables the run did not ingest (a narrower ``--job``) keep their previous record. Returns the
    number of files recorded."""
    from marketing_assets.constants import SOURCES
    from marketing_assets.sensors import read_landing_record, tables_of, write_landing_record
    from marketing_assets.sources import CONTRACTS

    ingested = {
        e.event_specific_data.materialization.asset_key for e in result.get_asset_materialization_events()
    }
    tables = {key.path[-1] for key in ingested if len(key.path) == 2 and key.path[0] == SOURCES}
    if not tables:
        return 0
    previous = (read_landing_record(record, root) or {}).get("files", {})
    kept = {rel: st for rel, st in previous.items() if not tables_of(rel, CONTRACTS) <= tables}
    fresh = {rel: st for rel, st in files.items() if tables_of(rel, CONTRACTS) <= tables}
    write_landing_record(record, root, {**kept, **fresh}, result.run_id)
    return len(fresh)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fail_stale_runs(instance: dg.DagsterInstance, pid_alive=_pid_alive) -> list[str]:
    """Mark FAILURE every STARTED run whose process (the pid of its RUN_START event) is gone; one line each.

    A run killed with ``kill -9`` stays STARTED and holds the one-run queue. Only a SQLite instance (one
    machine) is checked: the pid of a run on a shared PostgreSQL instance may belong to another host."""
    from dagster._core.storage.runs import SqliteRunStorage

    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    lines = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pid = starts[-1].dagster_event.pid if starts and starts[-1].dagster_event else None
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        message = f"Run was left STARTED by process {pid}, which no longer runs (killed?); marked failed at start-up of `make run`."
        instance.report_run_failed(run, message)
        lines.append(f"stale run {run.run_id} ({run.job_name}): process {pid} is gone; marked FAILURE")
    return lines


def _step_key(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> str:
    return str(result.job_def.asset_layer.get_op_output_handle(key).node_handle)


def _upstream_failures(result: dg.ExecuteInProcessResult, key: dg.AssetKey, failed_steps: set[str]) -> list[str]:
    """Failed assets and failed blocking checks upstream of ``key`` in this run, by name."""
    graph, selected = result.job_def.asset_layer.asset_graph, result.job_def.asset_layer.selected_asset_keys
    ancestors, todo = set(), [key]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            if parent not in ancestors and graph.has(parent):
                ancestors.add(parent)
                todo.append(parent)
    assets = sorted(k.to_user_string() for k in ancestors & set(selected) if _step_key(result, k) in failed_steps)
    checks = sorted(
        f"{e.asset_key.to_user_string()}:{e.check_name}" for e in result.get_asset_check_evaluations()
        if e.asset_key in ancestors and e.blocking and not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    )
    return assets + checks


def stale_files(result: dg.ExecuteInProcessResult, published: dict[dg.AssetKey, list[Path]]) -> list[str]:
    """One line per published file whose asset did not materialise in this run: its modification time and why."""
    materialised = {e.event_specific_data.materialization.asset_key for e in result.get_asset_materialization_events()}
    failed_steps = set(result.get_failed_step_keys())
    selected = set(result.dagster_run.asset_selection or result.job_def.asset_layer.selected_asset_keys)
    lines = []
    for key, paths in sorted(published.items(), key=lambda kv: kv[0].to_user_string()):
        if key in materialised:
            continue
        if key not in selected:
            why = "not selected"
        elif _step_key(result, key) in failed_steps:
            why = "asset failed"
        else:
            causes = _upstream_failures(result, key, failed_steps)
            why = f"skipped: upstream {', '.join(causes[:3])} failed" if causes else "skipped: an upstream asset or blocking check failed"
        for path in paths:
            if path.exists():
                mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
                lines.append(f"  stale: {path.name} (published {mtime:%Y-%m-%d %H:%M} UTC; not refreshed by this run: {why})")
            else:
                lines.append(f"  missing: {path.name} (never published; not written by this run: {why})")
    return lines


def _rows_text(metadata: dict) -> str:
    """Row count of a materialisation; a source table without a landing file is shown as absent, not as 0 rows."""
    files, rows = metadata.get("file_count"), metadata.get("dagster/row_count")
    if files is not None and files.value == 0:
        return f"{'absent':>12} (no landing file; optional table materialised empty)"
    return f"{rows.value:>12,} rows" if rows is not None else f"{'-':>12} rows"


def summarise(result: dg.ExecuteInProcessResult, published: dict[dg.AssetKey, list[Path]] | None = None) -> tuple[str, bool]:
    """Text summary of a run, and whether a blocking check failed.

    The check line is the tally the data-quality report and its HTML page show (:mod:`marketing_assets.lib.tally`);
    the report's own checks, evaluated after it, are counted on a line of their own. ``published`` (asset key ->
    files) adds the files this run did not refresh."""
    from marketing_assets.reports import planned_check_keys, run_tallies

    lines = ["", "assets materialised:"]
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        lines.append(f"  {mat.asset_key.to_user_string():<45} {_rows_text(mat.metadata)}")
    planned = planned_check_keys(result.job_def, result.dagster_run)
    graph = result.job_def.asset_layer.asset_graph
    blocking = {k: bool(graph.get_check_spec(k).blocking) for k in planned}
    evaluations = list(enumerate(result.get_asset_check_evaluations()))
    run_tally, own = run_tallies(evaluations, planned, blocking)
    blocking_failures = [f"{c.asset_key}:{c.check_name}" for t in (run_tally, own) for c in t.blocking_failures]
    lines.append(
        f"checks: {run_tally.text()}"
        + (f" ({len(blocking_failures)} blocking)" if blocking_failures else " (none blocking)" if run_tally.count("failed") or own.count("failed") else "")
    )
    lines.append(f"  counted: {tally.SCOPE}")
    if len(own):
        lines.append(f"  the data-quality report's own checks: {own.text()}")
    labels = {"warned": "WARN", "failed": "FAIL", "skipped": "SKIP"}
    for t in (run_tally, own):
        lines += [f"  {labels[c.status]} {c.asset_key}:{c.check_name}: {c.description}" for c in t.checks if c.status in labels]
    stale = stale_files(result, published) if published is not None else []
    if stale:
        lines.append("not refreshed by this run (the previous version stays published):")
        lines += stale
    lines.append(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
    return "\n".join(lines), bool(blocking_failures)


def preflight_text(defs: dg.Definitions, landing: Path) -> str:
    """The preflight summary of ``landing`` (:mod:`marketing_assets.preflight`) for the graph of ``defs``."""
    from marketing_assets.preflight import preflight, render
    from marketing_assets.sources import CONTRACTS

    root = landing.expanduser().resolve()
    return render(preflight(root, CONTRACTS, defs.resolve_asset_graph()), root)


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
    from marketing_assets.alerts import warehouse_sidecar
    from marketing_assets.sensors import LANDING_RECORD_SUFFIX

    print(preflight_text(defs, landing))
    start = time.perf_counter()
    warehouse = defs.resources["warehouse"]
    landing_root = Path(configured(defs.resources["landing"].path)).expanduser().resolve()
    before = landing_files(landing_root)
    with open_instance() as instance:
        for line in fail_stale_runs(instance):
            print(line)
        result = defs.resolve_job_def(args.job).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": args.log_level.upper()}}}},
        )
    from marketing_assets.reports import published_files

    text, blocking_failed = summarise(result, published_files(configured(warehouse.extracts_dir), configured(warehouse.reports_dir)))
    print(text)
    for label, folder, pattern in (("extracts", configured(warehouse.extracts_dir), "*.parquet"), ("reports", configured(warehouse.reports_dir), "*.html")):
        files = sorted(p.name for p in Path(folder).glob(pattern))
        print(f"{label} in {folder}: {', '.join(files) if files else 'none'}")
    failed = blocking_failed or not result.success
    if not failed and configured(warehouse.database) != ":memory:":  # a failed run's files stay unconsumed
        record = Path(warehouse_sidecar(configured(warehouse.database), LANDING_RECORD_SUFFIX))
        if record_landing(record, landing_root, before, result):
            print(f"landing files ingested: recorded in {record} (the landing sensor starts from it)")
    home = os.environ.get("DAGSTER_HOME")
    print(f"Dagster history: {home}" if home else "Dagster history: not kept (DAGSTER_HOME unset; `make run` keeps it next to the warehouse)")
    print(f"{args.job} finished in {time.perf_counter() - start:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
