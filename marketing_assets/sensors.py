"""Sensors: landed files trigger a refresh of what they feed; failed runs and checks raise alerts.

``landing_zone_sensor`` keeps one content hash per landing file in its cursor
(``{relative path: {"sha256", "size", "mtime_ns"}}``, stored by Dagster with each tick) and asks
for one ``landing_refresh`` run per tick: the sources whose files are new, changed or deleted, plus
everything downstream. The request is kept in the cursor (``_pending``) until its run succeeded; a
failed or canceled run gives its files back, so they are asked for again (:func:`settle_pending`). With no
cursor yet, it starts from the landing scan the last successful `make run` recorded next to the warehouse
(:func:`write_landing_record`), so files that run ingested are not ingested again. The alert sensors append one
JSON line per failed run and per change of a check's state into WARN or ERROR to the alerts file (by default
next to the warehouse, :func:`~marketing_assets.alerts.warehouse_sidecar`), and post it to a Slack-compatible webhook when
one is set (the ``Alerts`` resource, in :mod:`marketing_assets.alerts`).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg

from marketing_assets import jobs
from marketing_assets.alerts import Alerts, warehouse_file, warehouse_sidecar
from marketing_assets.constants import QUARANTINE_TABLE, SOURCES
from marketing_assets.lib.landing import TableContract, discover_files
from marketing_assets.resources import LandingZone
from marketing_assets.sources import CONTRACTS

LANDING_RECORD_SUFFIX = ".landing_scan.json"
SETTLE_SECONDS = 10.0
"""A landing file modified more recently than this is taken as still being written."""

# ------------------------------------------------------------------------------- landing zone


@dataclass
class LandingScan:
    """One look at the landing zone against the previous cursor."""

    cursor: dict[str, dict[str, Any]]
    changes: dict[str, str] = field(default_factory=dict)  # relative path -> new | changed | deleted
    tables: set[str] = field(default_factory=set)  # tables to refresh
    checked: int = 0
    deferred: set[str] = field(default_factory=set)  # tables with a file still being written


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def tables_of(rel: str, contracts: Mapping[str, TableContract]) -> set[str]:
    """Tables whose landing glob matches a relative path (also for files that no longer exist)."""
    p = PurePosixPath(rel)
    found = set()
    for table, contract in contracts.items():
        folder, _, pattern = contract.landing_glob.rpartition("/")
        if p.parent.as_posix() == (folder or ".") and fnmatch.fnmatchcase(p.name, pattern):
            found.add(table)
    return found


def _ignored(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return any(part.startswith((".", "_", "~")) for part in parts) or rel.endswith(("~", ".tmp", ".part"))


def scan_landing(
    root: Path,
    previous: Mapping[str, Mapping[str, Any]],
    contracts: Mapping[str, TableContract] = CONTRACTS,
    settle_seconds: float = SETTLE_SECONDS,
    now: float | None = None,
) -> LandingScan:
    """Compare the landing files of every table with ``previous``; hash only files whose size or mtime moved.

    A table with a file still being written is deferred whole (ingestion reads all its files), and
    its entries keep their previous state so the change is seen again on a later tick.
    """
    now = time.time() if now is None else now
    files: dict[str, Path] = {}
    for contract in contracts.values():
        for path in discover_files(root, contract):
            rel = path.relative_to(root).as_posix()
            if not _ignored(rel):
                files[rel] = path
    scan = LandingScan(cursor={}, checked=len(files))
    unsettled: set[str] = set()
    for rel, path in sorted(files.items()):
        old = previous.get(rel)
        try:
            before = path.stat()
            if now - before.st_mtime < settle_seconds:
                raise BlockingIOError
            if old and old["size"] == before.st_size and old["mtime_ns"] == before.st_mtime_ns:
                scan.cursor[rel] = dict(old)
                continue
            digest = sha256_file(path)
            after = path.stat()
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise BlockingIOError  # written to while hashed
        except (BlockingIOError, FileNotFoundError):
            unsettled.add(rel)
            if old:
                scan.cursor[rel] = dict(old)
            continue
        scan.cursor[rel] = {"sha256": digest, "size": after.st_size, "mtime_ns": after.st_mtime_ns}
        if old is None:
            scan.changes[rel] = "new"
        elif old["sha256"] != digest:
            scan.changes[rel] = "changed"
    for rel, old in previous.items():
        if rel not in files and tables_of(rel, contracts):
            scan.changes[rel] = "deleted"
    # A file that vanished between listing and stat waits a tick: the next listing shows it deleted.
    scan.deferred = {t for rel in unsettled for t in tables_of(rel, contracts)}
    for rel, kind in list(scan.changes.items()):
        owners = tables_of(rel, contracts)
        if owners & scan.deferred:
            del scan.changes[rel]
            if rel in previous:
                scan.cursor[rel] = dict(previous[rel])
            else:
                scan.cursor.pop(rel, None)
        else:
            scan.tables |= owners
    return scan


def write_landing_record(path: str | Path, root: Path, files: Mapping[str, Mapping[str, Any]], run_id: str) -> None:
    """Record the landing files a successful run ingested (cursor format of :func:`scan_landing`), atomically.

    The landing sensor starts from this record when it has no cursor yet, so files `make run` already
    ingested are not ingested again by the first tick of `make ui`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "landing": str(root),
        "run_id": run_id,
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": {rel: dict(state) for rel, state in sorted(files.items())},
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(tmp, path)  # atomic: readers see the old record or the new one


def read_landing_record(path: str | Path, root: Path) -> dict[str, Any] | None:
    """The landing record at ``path`` when it is one of ``root`` (another landing zone's record does not apply)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        files = record["files"]
        if Path(record["landing"]) != root or not isinstance(files, dict):
            return None
        if not all(isinstance(v, dict) and {"sha256", "size", "mtime_ns"} <= v.keys() for v in files.values()):
            return None
        return record
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _run_key(previous: Mapping[str, Any], scan: LandingScan, retry_of: str | None = None) -> str:
    """Same previous cursor and same changes (a re-evaluated tick) give the same key; anything else differs.

    ``retry_of`` (the failed run's id) makes a retry of the same changes a new key: Dagster launches a
    run key only once."""
    changes = [(rel, kind, scan.cursor.get(rel)) for rel, kind in sorted(scan.changes.items())]
    body: dict[str, Any] = {"previous": previous, "changes": changes}
    if retry_of:
        body["retry_of"] = retry_of
    payload = json.dumps(body, sort_keys=True)
    return "landing-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


PENDING = "_pending"
"""Cursor entry of the refresh last requested: its run key, when, and the file states before it.
(No landing path starts with ``_``: such files are ignored.)"""
MISSING_RUN_GRACE_SECONDS = 600.0
"""A requested run not in the instance after this long is taken as lost, and its files are retried."""
MAX_REFRESH_ATTEMPTS = 3
"""Runs asked for the same landing changes before they count as consumed (a file that fails every run
must not relaunch a run every tick); changing a file again asks anew."""
_FINISHED_BAD = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass
class PendingOutcome:
    """What became of the refresh the cursor is waiting for."""

    files: dict[str, Any]  # file states to compare the landing zone with
    waiting: str | None = None  # why this tick must wait (the run is still queued or running)
    retry_of: str | None = None  # id of the failed run whose files are retried
    attempt: int = 1  # attempt number of the next request
    note: str = ""


def settle_pending(
    context: dg.SensorEvaluationContext, cursor: Mapping[str, Any], sensor_name: str, now: float | None = None
) -> PendingOutcome:
    """Resolve the cursor's pending refresh against the instance's runs.

    Succeeded (or nothing pending, or no instance to ask): the files it took stay consumed. Failed,
    canceled, or never launched: the file states from before it come back, so the same changes are
    requested again. Queued or running: the tick waits, cursor unchanged.
    """
    files = {k: v for k, v in cursor.items() if k != PENDING}
    pending = cursor.get(PENDING)
    if not isinstance(pending, Mapping):
        return PendingOutcome(files)
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a unit test): nothing to ask
        return PendingOutcome(files)
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={"dagster/run_key": pending["run_key"], "dagster/sensor_name": sensor_name}), limit=1
    )
    previous = dict(pending.get("previous") or {})
    attempt = int(pending.get("attempt", 1))

    def retry(failed: str, why: str) -> PendingOutcome:
        if attempt >= MAX_REFRESH_ATTEMPTS:
            return PendingOutcome(files, note=f"{why}; {attempt} attempts failed, its files now count as consumed (change a file to refresh again)")
        return PendingOutcome(previous, retry_of=failed, attempt=attempt + 1, note=f"{why}; its files are requested again (attempt {attempt + 1})")

    if not runs:
        now = time.time() if now is None else now
        if now - float(pending.get("requested_at", 0)) < MISSING_RUN_GRACE_SECONDS:
            return PendingOutcome(files, waiting="the requested landing_refresh run has not been created yet")
        return retry("missing:" + pending["run_key"], "the requested refresh was never launched")
    run = runs[0]
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return PendingOutcome(files)
    if run.status in _FINISHED_BAD:
        return retry(run.run_id, f"run {run.run_id} ended {run.status.value}")
    return PendingOutcome(files, waiting=f"run {run.run_id} is {run.status.value}")


def refresh_selection(asset_graph, tables: Iterable[str]) -> tuple[list[dg.AssetKey], list[dg.AssetCheckKey]]:
    """The source assets of ``tables``, the quarantine, everything downstream, and their checks."""
    keys = [dg.AssetKey([SOURCES, t]) for t in sorted(tables)]
    selection = dg.AssetSelection.assets(*keys).downstream() | dg.AssetSelection.assets(
        dg.AssetKey([SOURCES, QUARANTINE_TABLE])
    )
    assets = selection.resolve(asset_graph)
    checks = [ck for ck in asset_graph.asset_check_keys if ck.asset_key in assets]
    return sorted(assets, key=lambda k: k.to_user_string()), sorted(checks, key=lambda ck: ck.to_user_string())


def build_landing_zone_sensor(
    name: str = "landing_zone_sensor",
    settle_seconds: float = SETTLE_SECONDS,
    minimum_interval_seconds: int = 30,
    landing_record: str | None = None,
) -> dg.SensorDefinition:
    """``landing_record``: the landing scan recorded by `make run` (default: next to the warehouse, read at each tick)."""

    def seed_from_record(context: dg.SensorEvaluationContext, root: Path) -> dict[str, Any]:
        path = landing_record or warehouse_sidecar(warehouse_file(), LANDING_RECORD_SUFFIX)
        record = read_landing_record(path, root)
        if record is None:
            return {}
        context.log.info(
            f"No cursor yet: starting from the {len(record['files'])} landing file(s) run {record['run_id']} "
            f"ingested ({record['recorded_at']}, recorded in {path})."
        )
        return record["files"]

    @dg.sensor(
        name=name,
        job=jobs.landing_refresh,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Hashes every landing file of every source table; new, changed or deleted files launch one "
            f"landing_refresh of their tables and everything downstream. Files younger than {settle_seconds:g} s "
            "wait for the next tick; the files of a failed or canceled refresh are requested again. Without a "
            "cursor it starts from the files the last successful `make run` ingested (recorded next to the warehouse)."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult | dg.SkipReason:
        root = landing.root
        if not root.is_dir():  # an unmounted landing zone must not read as "every file deleted"
            return dg.SkipReason(f"Landing folder {root} does not exist; cursor kept.")
        stored = json.loads(context.cursor) if context.cursor else seed_from_record(context, root)
        outcome = settle_pending(context, stored, name)
        if outcome.waiting:  # one refresh at a time: its files count as consumed only once it succeeded
            return dg.SensorResult(skip_reason=f"Waiting: {outcome.waiting}; cursor kept.", cursor=context.cursor)
        if outcome.note:
            context.log.warning(outcome.note)
        previous = outcome.files
        scan = scan_landing(root, previous, settle_seconds=settle_seconds)
        cursor = json.dumps(scan.cursor, sort_keys=True)
        waiting = f"; waiting for {', '.join(sorted(scan.deferred))} to settle" if scan.deferred else ""
        if not scan.tables:
            return dg.SensorResult(skip_reason=f"No landing change in {scan.checked} file(s) checked{waiting}.", cursor=cursor)
        if context.repository_def is None:
            raise dg.DagsterInvariantViolationError(f"{name} resolves downstream assets from its repository; none given.")
        assets, checks = refresh_selection(context.repository_def.asset_graph, scan.tables)
        context.log.info(
            f"{len(scan.changes)} landing change(s) in {scan.checked} file(s): "
            + ", ".join(f"{rel} ({kind})" for rel, kind in sorted(scan.changes.items()))
            + waiting
        )
        run_key = _run_key(previous, scan, outcome.retry_of)
        request = dg.RunRequest(
            run_key=run_key,
            asset_selection=assets,
            asset_check_keys=checks,
            tags={"marketing_assets/landing_tables": ",".join(sorted(scan.tables))},
        )
        pending = {"run_key": run_key, "requested_at": time.time(), "previous": previous, "attempt": outcome.attempt}
        return dg.SensorResult(run_requests=[request], cursor=json.dumps({**scan.cursor, PENDING: pending}, sort_keys=True))

    return _sensor


landing_zone_sensor = build_landing_zone_sensor()

# ------------------------------------------------------------------------------------- alerts


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    return str(value)


def small_metadata(metadata: Mapping[str, Any], max_keys: int = 20, max_chars: int = 500) -> dict[str, Any]:
    """Check metadata as plain JSON, each value capped (large tables and markdown are summarised)."""
    out: dict[str, Any] = {}
    for key, value in list(metadata.items())[:max_keys]:
        raw = _json_safe(value.value if isinstance(value, dg.MetadataValue) else value)
        text = json.dumps(raw)
        out[key] = raw if len(text) <= max_chars else f"<{type(value).__name__} of {len(text)} chars omitted>"
    return out


def make_alert(
    kind: str, severity: str, run_id: str | None, job: str | None, description: str | None, *,
    asset_key: str | None = None, check_name: str | None = None, metadata: Mapping[str, Any] | None = None,
    ts: float | None = None, alert_id: str,
) -> dict[str, Any]:
    when = dt.datetime.fromtimestamp(time.time() if ts is None else ts, dt.UTC)
    return {
        "alert_id": alert_id,
        "ts": when.isoformat(timespec="seconds"),
        "kind": kind,
        "severity": severity,
        "asset_key": asset_key,
        "check_name": check_name,
        "run_id": run_id,
        "job": job,
        "description": (description or "")[:1000],
        "metadata": small_metadata(metadata or {}),
    }


def check_state_key(evaluation: dg.AssetCheckEvaluation) -> str:
    partition = f":{evaluation.partition}" if evaluation.partition else ""
    return f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}{partition}"


def check_state(evaluation: dg.AssetCheckEvaluation) -> str:
    return "passed" if evaluation.passed else evaluation.severity.value


def check_alert(evaluation: dg.AssetCheckEvaluation, entry, previous_state: str = "passed") -> dict[str, Any]:
    asset = evaluation.asset_key.to_user_string()
    alert = make_alert(
        "asset_check", evaluation.severity.value, entry.run_id, entry.job_name, evaluation.description,
        asset_key=asset, check_name=evaluation.check_name, metadata=evaluation.metadata, ts=entry.timestamp,
        alert_id=f"asset_check:{entry.run_id}:{check_state_key(evaluation)}",
    )
    alert["previous_state"] = previous_state
    return alert


def state_change_alerts(entries: Iterable[Any], states: dict[str, str]) -> list[dict[str, Any]]:
    """Alerts for evaluations (in event order) that move a check into WARN or ERROR from another state.

    ``states`` (check -> last state; unknown means passed) is updated in place with every evaluation, so a
    check that keeps failing alerts once, and again only after it passed or changed severity.
    """
    out = []
    for entry in entries:
        evaluation = entry.dagster_event.event_specific_data
        key, state = check_state_key(evaluation), check_state(evaluation)
        previous = states.get(key, "passed")
        if state != previous and state != "passed":
            out.append(check_alert(evaluation, entry, previous))
        states[key] = state
    return out


@dg.sensor(
    name="asset_check_alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "One alert per change of an asset check's state into WARN or ERROR (passed -> failed, WARN -> ERROR, ...), "
        "read from the event log; the last state of every check is kept next to the alerts file."
    ),
)
def asset_check_alert_sensor(context: dg.SensorEvaluationContext, alerts: Alerts) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor) if context.cursor else -1
    # Check evaluations are indexed with a global storage id on every storage, including the
    # run-sharded SQLite default (where get_event_records refuses a plain storage-id cursor).
    events = context.instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=after, dagster_event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=500
    )
    if not events:
        return dg.SkipReason("No new asset check evaluations.")
    entries = [entry for _, entry in sorted(events.items())]
    states = alerts.load_check_states()
    changed = state_change_alerts(entries, states)
    not_passed = sum(not e.dagster_event.event_specific_data.passed for e in entries)
    sent = alerts.send(changed, context.log)  # before the states: a crash in between re-sends nothing (alert ids)
    alerts.save_check_states(states)
    return dg.SensorResult(
        skip_reason=(
            f"{len(events)} check evaluation(s) read, {not_passed} did not pass, "
            f"{len(changed)} changed state, {sent} new alert(s)."
        ),
        cursor=str(max(events)),
    )


def _user_error_type(error) -> str:
    """Class of the user's exception under Dagster's wrapping (``DagsterExecutionStepExecutionError``)."""
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error.cls_name


_RUN_TAGS = ("dagster/schedule_name", "dagster/sensor_name", "marketing_assets/landing_tables")


def run_failure_alert(run: dg.DagsterRun, step_failures: Sequence[dg.DagsterEvent]) -> dict[str, Any]:
    """Alert for a failed run: step keys and error types only (exception messages may quote data)."""
    steps = sorted({e.step_key for e in step_failures if e.step_key})
    errors = sorted({_user_error_type(e.event_specific_data.error) for e in step_failures if getattr(e.event_specific_data, "error", None)})
    detail = f"failed step(s): {', '.join(steps)}" if steps else "no step failed (run-level failure)"
    return make_alert(
        "run_failure", "ERROR", run.run_id, run.job_name, f"Run of {run.job_name} failed; {detail}.",
        metadata={"failed_steps": steps, "error_types": errors, "tags": {k: v for k, v in run.tags.items() if k in _RUN_TAGS}},
        alert_id=f"run_failure:{run.run_id}",
    )


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    # Every run on the instance: scheduled, sensor-launched, ad hoc from the UI, and `make run`
    # (executed in process, so it carries no code-location origin a narrower filter would match).
    monitor_all_code_locations=True,
    description="One alert per failed run on this Dagster instance (scheduled, sensor-launched, ad hoc or `make run`).",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: Alerts) -> None:
    alerts.send([run_failure_alert(context.dagster_run, context.get_step_failure_events())], context.log)


all_sensors = [landing_zone_sensor, asset_check_alert_sensor, run_failure_alert_sensor]
