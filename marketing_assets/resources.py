"""Resources: the landing zone, the warehouse and the check thresholds, configured through env vars."""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field, PrivateAttr

from marketing_assets.alerts import Alerts
from marketing_assets.constants import (
    CONFIG_DIR,
    DEFAULT_EXTRACTS_DIR,
    DEFAULT_LANDING_DIR,
    DEFAULT_REPORTS_DIR,
    DEFAULT_SPARK_WAREHOUSE,
    DEFAULT_WAREHOUSE,
    ENGINES,
)
from marketing_assets.lib import yaml_files
from marketing_assets.lib.sql import literal


class LandingZone(dg.ConfigurableResource):
    """Folder of raw exports, one sub-folder per system (``ads/``, ``web/``, ``crm/``, ``erp/``, ``experiments/``)."""

    path: str = Field(default=DEFAULT_LANDING_DIR, description="Landing folder (MARKETING_LANDING_DIR).")

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()


DEFAULT_LOCK_TIMEOUT_SECONDS = 1800.0
LOCK_POLL_SECONDS = 0.25


class WarehouseBusy(RuntimeError):
    """Another run kept the warehouse's lock for longer than the lock timeout."""


class WarehouseLock:
    """An exclusive ``flock`` on ``<warehouse>.lock``, naming its holder (pid, run id, since when) in the file.

    DuckDB admits one writer process per file: runs on one warehouse take turns instead of fighting over
    DuckDB's own lock. Re-entrant within a thread (a nested run shares the hold); the kernel
    drops the lock when the holding process dies, so a killed run never leaves the warehouse locked.
    """

    _held: dict[Path, list] = {}  # lock file -> [open file, hold count, holding thread], per process
    _guard = threading.Lock()

    def __init__(self, database: str | Path):
        self.database = Path(database).expanduser().resolve()
        self.path = self.database.with_name(self.database.name + ".lock")

    def holder(self) -> str:
        """The holder as written in the lock file, as text (``unknown`` while it has not written it yet)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {info['pid']}, run {info.get('run_id') or '-'}, since {info['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown"

    def acquire(self, run_id: str | None, timeout: float, log=None) -> None:
        """Wait up to ``timeout`` seconds for the lock, saying once who holds it; raises ``WarehouseBusy``."""
        with self._guard:
            held = self._held.get(self.path)
            if held and held[2] == threading.get_ident():  # a nested run in the same thread
                held[1] += 1
                return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (kept open while the lock is held)
        try:
            self._wait(fh, run_id, timeout, log)  # another thread's hold conflicts too: its own open file
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        fh.write(json.dumps({"pid": os.getpid(), "run_id": run_id, "since": since}))
        fh.flush()
        with self._guard:
            self._held[self.path] = [fh, 1, threading.get_ident()]

    def _wait(self, fh, run_id: str | None, timeout: float, log) -> None:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"Warehouse {self.database} is still in use by another run ({self.holder()}) after waiting "
                    f"{timeout:g}s; run {run_id or '-'} gives up. Wait for that run to finish, or raise "
                    f"MARKETING_WAREHOUSE_LOCK_TIMEOUT (lock file {self.path})."
                )
            if not told:
                told = True
                message = (
                    f"Warehouse {self.database} is in use by another run ({self.holder()}); run {run_id or '-'} "
                    f"waits up to {timeout:g}s for it to finish (lock file {self.path})."
                )
                (log.warning if log is not None else print)(message)
            time.sleep(min(LOCK_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))

    def release(self) -> None:
        with self._guard:
            held = self._held.get(self.path)
            if not held:
                return
            held[1] -= 1
            if held[1] == 0:
                fh = held[0]
                del self._held[self.path]
                fh.seek(0)
                fh.truncate()  # no stale holder once released
                fh.flush()
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                fh.close()


def lock_timeout(configured_seconds: float | None) -> float:
    """The resource's lock timeout, else MARKETING_WAREHOUSE_LOCK_TIMEOUT, else 1800 s."""
    if configured_seconds is not None:
        return float(configured_seconds)
    raw = os.environ.get("MARKETING_WAREHOUSE_LOCK_TIMEOUT")
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_SECONDS
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"MARKETING_WAREHOUSE_LOCK_TIMEOUT must be a number of seconds, not {raw!r}") from None


DUCKDB_MEMORY_SHARE = 0.18
"""DuckDB's share of the machine's memory. A run's Python holds only aggregates (at most about 1.5 GB over DuckDB's limit at
any scale), so a run stays within a quarter of the machine (18 % + 1.5 GB: 6 GB on 24 GB): room for the Dagster webserver and daemon,
the dashboards and the OS next to it. What does not fit spills to disk; give more with ``MARKETING_DUCKDB_MEMORY_LIMIT``."""
MIN_DUCKDB_MEMORY_MIB = 512


@dataclasses.dataclass(frozen=True)
class DuckDBSettings:
    memory_limit: str
    threads: int


def duckdb_settings(
    total_memory_bytes: int, cpus: int, memory_limit: str | None = None, threads: int | None = None
) -> DuckDBSettings:
    """DuckDB's memory limit and threads on a machine with ``total_memory_bytes`` and ``cpus``: 18 % of the memory
    (:data:`DUCKDB_MEMORY_SHARE`, at least 512 MiB) and one thread per CPU, unless ``memory_limit``/``threads`` are given."""
    derived_mib = max(MIN_DUCKDB_MEMORY_MIB, int(total_memory_bytes * DUCKDB_MEMORY_SHARE) // 2**20)
    return DuckDBSettings(memory_limit or f"{derived_mib}MiB", int(threads) if threads else max(1, cpus))


def _read_int(path: Path) -> int | None:
    """An integer control file (``max``, ``-1``, absent or unreadable: no limit)."""
    try:
        text = path.read_text(encoding="ascii").split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.lstrip("-").isdigit() and int(text) >= 0 else None


def _cgroup_dirs(root: Path, proc_cgroup: Path, controller: str) -> list[Path]:
    """The process's cgroup folders for ``controller`` (v1 hierarchy, or the unified v2 one) and the hierarchy root."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        lines = []
    dirs = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        base = root / controller if controller in controllers.split(",") else root if controllers == "" else None
        if base is not None:
            dirs += [base / path.lstrip("/"), base]
    return dirs


def machine_memory_bytes(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Physical memory, or the process's cgroup memory limit when lower (cgroup v1 or v2)."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    for d in _cgroup_dirs(root, proc_cgroup, "memory"):
        limits += [v for v in (_read_int(d / "memory.max"), _read_int(d / "memory.limit_in_bytes")) if v]
    return min(limits)


def _cpu_quota(d: Path) -> float | None:
    """CPUs a cgroup folder's quota allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None: no quota."""
    try:
        quota, period = (d / "cpu.max").read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        quota, period = _read_int(d / "cpu.cfs_quota_us"), _read_int(d / "cpu.cfs_period_us")
        return quota / period if quota and period else None


def machine_cpus(root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may run on (its affinity), or fewer when a cgroup CPU quota allows fewer (v1 or v2)."""
    quotas = [q for d in _cgroup_dirs(root, proc_cgroup, "cpu") if (q := _cpu_quota(d))]
    return min([len(os.sched_getaffinity(0))] + [max(1, math.ceil(q)) for q in quotas])


def clean_spill_dir(path: Path) -> None:
    """Remove spill files that DuckDB processes killed mid-query left behind (``duckdb_temp_<pid>_*`` of a dead pid),
    then the folder when empty. Files of a live process, or of unknown form, stay."""
    if not path.is_dir():
        return
    for f in path.iterdir():
        pid = f.name.removeprefix("duckdb_temp_").split("_", 1)[0]
        if f.name.startswith("duckdb_temp_") and pid.isdigit() and not _alive(int(pid)):
            f.unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:
        pass  # not empty: a live process spills there


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, someone else's
    return True


class Warehouse(DuckDBResource):
    """The embedded DuckDB warehouse (MARKETING_WAREHOUSE); every table write goes through it.

    Sessions run in UTC. Another engine can be plugged in by a resource exposing the same
    ``get_connection()`` contract (a DB-API connection that speaks DuckDB-compatible SQL).
    A run holds the warehouse's lock file (``<database>.lock``) from resource set-up to teardown, so runs
    on one warehouse take turns (in-memory databases take no lock).
    """

    database: str = Field(default=DEFAULT_WAREHOUSE, description="DuckDB file (MARKETING_WAREHOUSE).")
    extracts_dir: str = Field(default=DEFAULT_EXTRACTS_DIR, description="Extract folder (MARKETING_EXTRACTS_DIR).")
    reports_dir: str = Field(default=DEFAULT_REPORTS_DIR, description="Stakeholder HTML reports (MARKETING_REPORTS_DIR).")
    memory_limit: str | None = Field(
        default=None,
        description="DuckDB memory limit (MARKETING_DUCKDB_MEMORY_LIMIT, e.g. '8GB'); unset = 18 % of the machine's memory "
        "(cgroup limit if lower). Larger joins spill to <database>.tmp/ next to the warehouse instead of growing the process.",
    )
    threads: int | None = Field(
        default=None, description="DuckDB threads (MARKETING_DUCKDB_THREADS); unset = the CPUs the process may use (affinity, cgroup quota)."
    )
    pseudonym_key: str | None = Field(
        default=None,
        description="Secret key of the HMAC pseudonyms in extracts (MARKETING_PSEUDONYM_KEY); required outside demo data.",
    )

    engine: str = Field(default="duckdb", description=f"SQL engine (MARKETING_ENGINE): one of {', '.join(ENGINES)}.")
    spark_warehouse: str = Field(
        default=DEFAULT_SPARK_WAREHOUSE,
        description="Spark engine: where tables are stored as Parquet, <path>/<schema>/<table> (MARKETING_SPARK_WAREHOUSE; "
        "a local path, hdfs:// or an object store URL).",
    )
    spark_master: str | None = Field(default=None, description="Spark engine: master URL (MARKETING_SPARK_MASTER); unset = local[*].")
    spark_remote: str | None = Field(
        default=None, description="Spark engine: a Spark Connect server, sc://host:15002 (MARKETING_SPARK_REMOTE); overrides the master."
    )

    lock_timeout_seconds: float | None = Field(
        default=None,
        description="How long a run waits for another run to release the warehouse before it fails "
        "(MARKETING_WAREHOUSE_LOCK_TIMEOUT; unset = 1800 s).",
    )
    _lock: WarehouseLock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Called once per run process: the in-process executor of every job initialises resources once.
        # Outside a run (a sensor's or a notebook's resources) nothing is written: no lock, no wait.
        # Releasing in teardown makes this a context-manager resource: initialise it with
        # ``process_config_and_initialize_cm()`` / ``with build_sensor_context(...)`` outside runs.
        if self.database == ":memory:" or context.dagster_run is None:
            return
        lock = WarehouseLock(configured(self.database))
        lock.acquire(context.run_id, lock_timeout(self.lock_timeout_seconds), context.log)
        self._lock = lock
        clean_spill_dir(self.spill_dir)  # the run holds the warehouse: what a killed run spilled can go

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def pseudonym_key_for(self, landing_root: Path) -> bytes:
        """The pseudonym key for data from ``landing_root``; raises ``PseudonymKeyMissing`` for non-demo data without one."""
        from marketing_assets.lib.publish import is_demo_landing, resolve_key

        key = configured(self.pseudonym_key) if self.pseudonym_key is not None else None
        return resolve_key(key, demo_mode=is_demo_landing(landing_root))

    @property
    def spill_dir(self) -> Path | None:
        """Where DuckDB spills what does not fit its memory limit: ``<database>.tmp/`` (in-memory: DuckDB's default)."""
        database = configured(self.database)
        if database == ":memory:":
            return None
        path = Path(database).expanduser().resolve()
        return path.with_name(path.name + ".tmp")

    def settings(self) -> DuckDBSettings:
        """The memory limit and threads in force: the configured ones, else derived from the machine."""
        return duckdb_settings(
            machine_memory_bytes(),
            machine_cpus(),
            configured(self.memory_limit),
            configured(self.threads),
        )

    @property
    def engine_name(self) -> str:
        engine = (configured(self.engine) or "duckdb").strip().lower()
        if engine not in ENGINES:
            raise ValueError(f"MARKETING_ENGINE={engine!r}: use one of {', '.join(ENGINES)}")
        return engine

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.engine_name == "spark":
            from marketing_assets.lib.spark_engine import SparkConnection, spark_session

            session = spark_session(configured(self.spark_master), configured(self.spark_remote))
            con = SparkConnection(session, configured(self.spark_warehouse))
            try:
                yield con
            finally:
                con.close()
            return
        if self.database != ":memory:":
            Path(self.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        settings = self.settings()
        with super().get_connection() as con:
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"SET memory_limit = '{settings.memory_limit}'")
                con.execute(f"SET threads = {settings.threads}")
                spill = self.spill_dir
                (current,) = con.execute("SELECT current_setting('temp_directory')").fetchone()
                if spill is not None and Path(current).resolve() != spill:  # once used, DuckDB refuses any switch
                    con.execute(f"SET temp_directory = {literal(str(spill))}")
                yield con
            finally:
                con.close()


class CheckThresholds(dg.ConfigurableResource):
    """Versioned thresholds for asset checks, read from ``marketing_assets/config/checks.yaml``."""

    config_file: str = Field(default=str(CONFIG_DIR / "checks.yaml"), description="YAML with check thresholds.")
    as_of: str | None = Field(
        default=None,
        description="Instant (ISO 8601, UTC unless an offset is given) that time-based checks (freshness, data arrival, "
        "the incomplete current day) take as now (MARKETING_CHECKS_AS_OF); unset = the wall clock. Pins tests and backtests to a date.",
    )

    def now(self) -> dt.datetime:
        """The checks' "now": ``as_of`` when set, else the wall clock (timezone-aware, UTC)."""
        if self.as_of is None:
            return dt.datetime.now(dt.timezone.utc)
        when = dt.datetime.fromisoformat(configured(self.as_of))
        return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)

    def load(self) -> dict[str, Any]:
        with open(self.config_file, encoding="utf-8") as fh:
            return yaml_files.safe_load(fh)

    def freshness_hours(self, table: str) -> float | None:
        fresh = self.load()["sources"]["freshness_hours"]
        return fresh.get(table, fresh["default"])

    def max_quarantine_share(self) -> float:
        return float(self.load()["sources"]["max_quarantine_share"])

    def plausible_dates(self) -> dict[str, Any]:
        """``min_date`` and ``max_days_after_newest_file`` of landing instants (defaults when not configured)."""
        return self.load()["sources"].get("plausible_dates") or {}

    def section(self, name: str) -> dict[str, Any]:
        return self.load()[name]


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    """An ``EnvVar`` when the variable is set (shown as such in the UI), else the project default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def configured(value: Any) -> Any:
    """A resource field's value, reading the environment for an ``EnvVar`` (or ``EnvVar.int``)."""
    return value.get_value() if isinstance(value, dg.EnvVar) or hasattr(value, "env_var_name") else value


def build_resources() -> dict[str, Any]:
    return {
        "landing": LandingZone(path=_env_or("MARKETING_LANDING_DIR", DEFAULT_LANDING_DIR)),
        "warehouse": Warehouse(
            database=_env_or("MARKETING_WAREHOUSE", DEFAULT_WAREHOUSE),
            extracts_dir=_env_or("MARKETING_EXTRACTS_DIR", DEFAULT_EXTRACTS_DIR),
            reports_dir=_env_or("MARKETING_REPORTS_DIR", DEFAULT_REPORTS_DIR),
            pseudonym_key=dg.EnvVar("MARKETING_PSEUDONYM_KEY") if os.environ.get("MARKETING_PSEUDONYM_KEY") else None,
            memory_limit=dg.EnvVar("MARKETING_DUCKDB_MEMORY_LIMIT") if os.environ.get("MARKETING_DUCKDB_MEMORY_LIMIT") else None,
            threads=dg.EnvVar.int("MARKETING_DUCKDB_THREADS") if os.environ.get("MARKETING_DUCKDB_THREADS") else None,
            engine=_env_or("MARKETING_ENGINE", "duckdb"),
            spark_warehouse=_env_or("MARKETING_SPARK_WAREHOUSE", DEFAULT_SPARK_WAREHOUSE),
            spark_master=dg.EnvVar("MARKETING_SPARK_MASTER") if os.environ.get("MARKETING_SPARK_MASTER") else None,
            spark_remote=dg.EnvVar("MARKETING_SPARK_REMOTE") if os.environ.get("MARKETING_SPARK_REMOTE") else None,
        ),
        "thresholds": CheckThresholds(as_of=dg.EnvVar("MARKETING_CHECKS_AS_OF") if os.environ.get("MARKETING_CHECKS_AS_OF") else None),
        "alerts": Alerts.from_env(),
    }
