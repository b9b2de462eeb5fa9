"""The production instance (deploy/dagster.postgres.yaml) against a real, throwaway PostgreSQL 15.

A private cluster is initdb'ed under a temp dir, started on 127.0.0.1 with a free port and trust
auth, and stopped (``pg_ctl stop -m immediate``) when the module ends, pass or fail. PostgreSQL
refuses to run as root, so as root the cluster is owned and run by the ``postgres`` system user
(created by the Debian package; ``nobody`` otherwise).

Without the PostgreSQL 15 binaries the module is skipped, unless MARKETING_REQUIRE_POSTGRES=1
(set by .ci/run), in which case it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus

from marketing_assets.resources import LandingZone
from marketing_assets_tests.conftest import MINIMAL_CRM, make_resources, write_csv

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[1]
DEPLOY_YAML = REPO / "deploy" / "dagster.postgres.yaml"
PG_BIN = Path(os.environ.get("MARKETING_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "dagster"  # superuser role created by initdb (trust auth on 127.0.0.1)
REQUIRED = os.environ.get("MARKETING_REQUIRE_POSTGRES") == "1"
CRM_ACCOUNTS = dg.AssetKey(["sources", "crm_accounts"])
PROJECT_SENSOR = "landing_zone_sensor"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (MARKETING_REQUIRE_POSTGRES=1, so this is an error, not a skip)", pytrace=False)
    pytest.skip(f"{reason}; install postgresql-15 (see .ci/run) or set MARKETING_PG_BIN")


# ------------------------------------------------------------------------------ the cluster


def _run_as_kwargs(owner: pwd.struct_passwd | None, cwd: str) -> dict:
    """subprocess kwargs that run a PostgreSQL binary as ``owner`` (None: as ourselves)."""
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
    if owner is None:
        return {"cwd": cwd, "env": {**os.environ, **env}}
    env["HOME"] = cwd
    return {"cwd": cwd, "env": env, "user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _pg(cmd: list[str], kwargs: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_server():
    """A running PostgreSQL 15 cluster: {host, port, user}. Stopped and deleted at module end."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            _unavailable(f"PostgreSQL 15 binary {PG_BIN / tool} not found")
    try:
        import dagster_postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as exc:
        _unavailable(f"{exc.name} is not installed (pip install -e '.[postgres]')")

    owner = None
    if os.geteuid() == 0:  # initdb / postgres refuse to run as root
        for name in ("postgres", "nobody"):
            try:
                owner = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        else:
            _unavailable("running as root and neither a `postgres` nor a `nobody` user exists")

    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, unreachable for the cluster owner.
    root = Path(tempfile.mkdtemp(prefix="marketing-pg-"))
    data, sockets, log = root / "data", root / "sock", root / "postgres.log"
    sockets.mkdir()
    if owner is not None:
        for p in (root, sockets):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    kwargs = _run_as_kwargs(owner, str(root))
    port = _free_port()
    started = False
    try:
        init = _pg(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
             "--locale=C", "--wal-segsize=1", "--no-sync", "--no-instructions"],
            kwargs,
        )
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        # Durability off: a throwaway cluster, speed matters more than crash safety.
        opts = (f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=100")
        start = _pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"], kwargs, 90)
        started = start.returncode == 0
        assert started, f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{log.read_text() if log.exists() else ''}"
        yield {"host": "127.0.0.1", "port": port, "user": PG_USER, "owner": owner.pw_name if owner else None}
    finally:
        if started or (data / "postmaster.pid").exists():
            _pg([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], kwargs)
        shutil.rmtree(root, ignore_errors=True)


def _connect(pg: dict, dbname: str):
    import psycopg2

    return psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], dbname=dbname)


# ------------------------------------------------------------------------------ the instance


def _write_instance_yaml(home: Path, overrides: dict | None = None) -> Path:
    """deploy/dagster.postgres.yaml as $DAGSTER_HOME/dagster.yaml, verbatim unless ``overrides``."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if overrides:
        config = yaml.safe_load(DEPLOY_YAML.read_text())
        for dotted, value in overrides.items():
            node = config
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        target.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        shutil.copy(DEPLOY_YAML, target)
    return target


@pytest.fixture
def pg_env(pg_server, tmp_path, monkeypatch):
    """A fresh database on the cluster and the DAGSTER_PG_* / DAGSTER_HOME env pointing at it."""
    db = f"dagster_{uuid.uuid4().hex[:10]}"
    con = _connect(pg_server, "postgres")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    con.close()
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", pg_server["user"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
    monkeypatch.setenv("DAGSTER_PG_HOST", pg_server["host"])
    monkeypatch.setenv("DAGSTER_PG_DB", db)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(pg_server["port"]))
    return {**pg_server, "db": db, "home": home}


@pytest.fixture
def pg_instance(pg_env):
    _write_instance_yaml(pg_env["home"])
    instance = dg.DagsterInstance.from_config(str(pg_env["home"]))
    try:
        yield instance
    finally:
        instance.dispose()


def _scalar(pg_env: dict, sql: str, params=()):
    con = _connect(pg_env, pg_env["db"])
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]
    finally:
        con.close()


# ------------------------------------------------------------------------------ sensors


def _landing_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


@dg.sensor(
    name="pg_test_landing_sensor",
    job_name="sources_refresh",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def fallback_landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone):
    """Stand-in for the project's `landing_zone_sensor` where it does not exist: a run per change."""
    files = _landing_files(landing.root)
    cursor = json.dumps(files, sort_keys=True)
    if cursor == context.cursor:
        return dg.SkipReason("landing zone unchanged")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=hashlib.sha1(cursor.encode()).hexdigest()[:16])], cursor=cursor
    )


def project_defs_and_sensor() -> tuple[dg.Definitions, dg.SensorDefinition]:
    """The project's definitions and its `landing_zone_sensor`, else with the stand-in added."""
    from marketing_assets.definitions import defs

    if defs.get_repository_def().has_sensor_def(PROJECT_SENSOR):
        return defs, defs.resolve_sensor_def(PROJECT_SENSOR)
    return dg.Definitions.merge(defs, dg.Definitions(sensors=[fallback_landing_sensor])), fallback_landing_sensor


def _one_csv_landing(tmp_path: Path) -> Path:
    """A landing zone with one tiny CSV (crm/accounts.csv)."""
    landing = tmp_path / "landing"
    write_csv(landing, "crm/accounts.csv", ["account_id", "account_name", "sales_segment"], [["a1", "Acme", "SMB"]])
    return landing


def _settled_crm_landing(tmp_path: Path) -> Path:
    """The accounts CSV plus the four required CRM tables, all written an hour ago.

    Aged because the landing sensor defers files modified in the last seconds (still being written).
    """
    landing = _one_csv_landing(tmp_path)
    for rel, (header, rows) in MINIMAL_CRM.items():
        write_csv(landing, rel, header, rows)
    an_hour_ago = time.time() - 3600
    for path in landing.rglob("*.csv"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    return landing


# ------------------------------------------------------------------------------ tests


def test_instance_from_deploy_yaml_uses_postgres_for_every_storage(pg_instance, pg_env):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    assert type(pg_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    run_queue = pg_instance.get_concurrency_config().run_queue_config
    assert run_queue.max_concurrent_runs == 1
    assert [(t["key"], t["limit"]) for t in run_queue.tag_concurrency_limits] == [("marketing_assets/warehouse", 1)]
    assert not pg_instance.telemetry_enabled
    assert pg_instance.get_tick_retention_settings(InstigatorType.SENSOR)[TickStatus.SKIPPED] == 7
    # Dagster created its tables in the new database on first load.
    tables = _scalar(pg_env, "SELECT array_agg(table_name::text) FROM information_schema.tables WHERE table_schema='public'")
    assert {"runs", "event_logs", "job_ticks", "instigators"} <= set(tables)


def test_materialisation_is_stored_in_postgres(pg_instance, pg_env, tmp_path):
    from marketing_assets.definitions import defs

    landing = _one_csv_landing(tmp_path)
    result = dg.materialize(
        defs.assets, selection=[CRM_ACCOUNTS], resources=make_resources(tmp_path, landing), instance=pg_instance
    )
    assert result.success

    # Through the instance API ...
    assert pg_instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    event = pg_instance.get_latest_materialization_event(CRM_ACCOUNTS)
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.metadata["dagster/row_count"].value == 1

    # ... and straight from PostgreSQL.
    stored = _scalar(
        pg_env,
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        " AND asset_key = %s",
        (result.run_id, CRM_ACCOUNTS.to_string()),
    )
    assert stored == 1
    assert _scalar(pg_env, "SELECT status FROM runs WHERE run_id = %s", (result.run_id,)) == "SUCCESS"


def test_sensor_evaluates_against_postgres_instance(pg_instance, tmp_path):
    """Direct evaluation with the Postgres instance in the context; its cursor makes a re-tick a no-op."""
    defs, sensor = project_defs_and_sensor()
    resources = make_resources(tmp_path, _settled_crm_landing(tmp_path))

    # `with`: the warehouse resource releases its run lock on teardown, so it is a context manager.
    with dg.build_sensor_context(instance=pg_instance, definitions=defs, resources=resources) as context:
        first = sensor.evaluate_tick(context)
    assert first.run_requests, first.skip_message
    assert first.cursor
    with dg.build_sensor_context(instance=pg_instance, cursor=first.cursor, definitions=defs, resources=resources) as context:
        second = sensor.evaluate_tick(context)
    # Nothing new landed: no run request that the daemon would not dedupe by run_key.
    first_keys = {r.run_key for r in first.run_requests}
    assert all(r.run_key is not None and r.run_key in first_keys for r in second.run_requests or [])


def _daemon_workspace(tmp_path: Path, sensor: dg.SensorDefinition) -> Path:
    """The repository's workspace.yaml; a generated one adding the stand-in sensor when needed."""
    if sensor.name == PROJECT_SENSOR:
        return REPO / "workspace.yaml"
    location = tmp_path / "pg_test_location.py"
    location.write_text(
        "from marketing_assets_tests.test_postgres_instance import project_defs_and_sensor\n"
        "defs, _ = project_defs_and_sensor()\n"
    )
    workspace = tmp_path / "workspace.yaml"
    entry = {"relative_path": str(location), "working_directory": str(REPO), "location_name": "marketing_assets"}
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": entry}]}))
    return workspace


def _sensor_state(instance, name: str):
    states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == name]
    return states[0] if states else None


def test_daemon_sensor_tick_is_stored_in_postgres(pg_env, tmp_path, monkeypatch, request):
    """A real `dagster-daemon run` on the production config ticks the landing sensor into Postgres.

    The one change to the deploy config: max_concurrent_runs 0, so the requested run stays QUEUED
    instead of being launched (a launched run would outlive this test).
    """
    _write_instance_yaml(pg_env["home"], {"concurrency.runs.max_concurrent_runs": 0})
    landing = _settled_crm_landing(tmp_path)
    monkeypatch.setenv("MARKETING_LANDING_DIR", str(landing))
    monkeypatch.setenv("MARKETING_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("MARKETING_EXTRACTS_DIR", str(tmp_path / "extracts"))
    monkeypatch.setenv("MARKETING_ALERTS_FILE", str(tmp_path / "alerts.jsonl"))
    monkeypatch.delenv("MARKETING_ALERT_WEBHOOK", raising=False)

    _, sensor = project_defs_and_sensor()
    workspace = _daemon_workspace(tmp_path, sensor)
    instance = dg.DagsterInstance.from_config(str(pg_env["home"]))
    request.addfinalizer(instance.dispose)
    log = tmp_path / "daemon.log"
    proc = None
    try:
        if sensor.default_status != dg.DefaultSensorStatus.RUNNING:
            pytest.fail(f"{sensor.name} is not RUNNING by default; start it first (`dagster sensor start`)")
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        # Wait for a finished tick and for the sensor state to carry its cursor: the daemon writes
        # the tick first and the state right after, so killing it in between would lose the cursor.
        deadline = time.monotonic() + 75
        ticks, state = [], None
        while time.monotonic() < deadline and proc.poll() is None:
            state = _sensor_state(instance, sensor.name)
            if state is not None:
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id)
                ticks = [t for t in ticks if t.status != TickStatus.STARTED]
                if ticks and (ticks[-1].cursor is None or state.instigator_data.cursor == ticks[-1].cursor):
                    break
            time.sleep(0.25)
        else:
            pytest.fail(f"no completed {sensor.name} tick (daemon exit {proc.poll()}):\n{log.read_text()[-4000:]}")
    finally:
        if proc is not None:
            # The daemon and the code server it spawned (its own process group). SIGKILL, not a
            # graceful SIGTERM (~4 s more): the database and every file it used are thrown away.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    tick = ticks[-1]
    assert tick.status == TickStatus.SUCCESS, tick.error or tick.skip_reason
    assert len(tick.run_ids) == 1, "one run requested for the new landing files"
    # The tick, the sensor's state with its cursor and the requested run are rows in PostgreSQL.
    assert _scalar(pg_env, "SELECT count(*) FROM job_ticks WHERE selector_id = %s", (state.selector_id,)) >= 1
    assert _scalar(pg_env, "SELECT status FROM instigators WHERE selector_id = %s", (state.selector_id,)) in (
        "RUNNING", "DECLARED_IN_CODE")
    assert tick.cursor and state.instigator_data.cursor == tick.cursor
    run_id = tick.run_ids[0]
    assert _scalar(pg_env, "SELECT status FROM runs WHERE run_id = %s", (run_id,)) == "QUEUED"
    run = instance.get_run_by_id(run_id)
    assert run.tags["dagster/sensor_name"] == sensor.name
    assert CRM_ACCOUNTS in (run.asset_selection or set()) or run.job_name == "sources_refresh"
