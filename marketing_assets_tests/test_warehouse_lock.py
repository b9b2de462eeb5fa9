"""Runs on one warehouse take turns on its lock file; `make run`s started together share a fresh DAGSTER_HOME."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from marketing_assets.resources import Warehouse, WarehouseBusy, WarehouseLock
from marketing_assets_tests.conftest import AS_OF, MINIMAL_CRM, TEST_PSEUDONYM_KEY, land_before_as_of, write_csv

REPO = Path(__file__).resolve().parents[1]


class Recorder:
    def __init__(self):
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)


def hold_as_other_process(lock_path: Path, pid: int = 4242, run_id: str = "run-a"):
    """Hold the lock the way another process would (a separate open file: flock locks conflict)."""
    fh = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    fh.truncate(0)
    fh.write(json.dumps({"pid": pid, "run_id": run_id, "since": "2026-12-05T01:00:00+00:00"}))
    fh.flush()
    return fh


def test_held_lock_names_its_holder_once_then_times_out(tmp_path):
    database = tmp_path / "wh.duckdb"
    lock = WarehouseLock(database)
    assert lock.path == tmp_path / "wh.duckdb.lock"
    other = hold_as_other_process(lock.path)
    log = Recorder()
    start = time.monotonic()
    with pytest.raises(WarehouseBusy) as err:
        lock.acquire("run-b", timeout=0.6, log=log)
    assert 0.5 < time.monotonic() - start < 5
    assert len(log.lines) == 1  # said once, not every poll
    for text in (log.lines[0], str(err.value)):
        assert str(database) in text and "pid 4242" in text and "run run-a" in text and "since 2026-12-05T01:00:00" in text
    assert "MARKETING_WAREHOUSE_LOCK_TIMEOUT" in str(err.value)

    fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    other.close()
    lock.acquire("run-b", timeout=0.6, log=log)
    try:
        held = json.loads(lock.path.read_text())
        assert held["pid"] == os.getpid() and held["run_id"] == "run-b" and held["since"]
        with pytest.raises(BlockingIOError), open(lock.path) as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process could not take it
    finally:
        lock.release()
    assert lock.path.read_text() == ""  # no stale holder once released


def test_lock_is_reentrant_in_a_thread_and_exclusive_across_threads(tmp_path):
    outer, nested = WarehouseLock(tmp_path / "wh.duckdb"), WarehouseLock(tmp_path / "wh.duckdb")
    outer.acquire("outer", timeout=1)
    nested.acquire("nested", timeout=0.1)  # a run nested in this thread's run shares the hold
    nested.release()
    waited: list[float] = []

    def other_thread():
        start = time.monotonic()
        lock = WarehouseLock(tmp_path / "wh.duckdb")
        lock.acquire("other", timeout=10)
        waited.append(time.monotonic() - start)
        lock.release()

    thread = threading.Thread(target=other_thread)
    thread.start()
    time.sleep(0.5)
    assert not waited  # still held by the outer hold
    outer.release()
    thread.join(timeout=10)
    assert waited and waited[0] >= 0.4


def _touch(warehouse: Warehouse):
    with warehouse.get_connection() as con:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT 1 AS x")


@dg.asset
def first(warehouse: Warehouse) -> None:
    _touch(warehouse)


@dg.asset(deps=[first])
def second(warehouse: Warehouse) -> None:
    _touch(warehouse)


def test_a_run_takes_the_lock_once_and_releases_it(tmp_path, monkeypatch):
    calls = []
    acquire = WarehouseLock.acquire
    monkeypatch.setattr(WarehouseLock, "acquire", lambda self, *a, **k: (calls.append(a[0]), acquire(self, *a, **k))[1])
    warehouse = Warehouse(database=str(tmp_path / "wh.duckdb"))
    result = dg.materialize([first, second], resources={"warehouse": warehouse})
    assert result.success and calls == [result.run_id]  # once per run (in-process executor), with its run id
    assert (tmp_path / "wh.duckdb.lock").read_text() == ""
    assert dg.materialize([first, second], resources={"warehouse": warehouse}).success  # released: the next run goes

    calls.clear()
    assert dg.materialize([first], resources={"warehouse": Warehouse(database=":memory:")}).success
    assert calls == []  # an in-memory database takes no lock
    with Warehouse(database=str(tmp_path / "wh.duckdb")).process_config_and_initialize_cm():
        assert calls == []  # nor does a warehouse initialised outside a run (a sensor's, a notebook's)


def test_a_run_fails_clearly_when_the_warehouse_stays_busy(tmp_path, monkeypatch):
    database = tmp_path / "wh.duckdb"
    other = hold_as_other_process(WarehouseLock(database).path, run_id="the-other-run")
    try:
        monkeypatch.setenv("MARKETING_WAREHOUSE_LOCK_TIMEOUT", "0.3")
        result = dg.materialize([first], resources={"warehouse": Warehouse(database=str(database))}, raise_on_error=False)
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE]
        text = failure.event_specific_data.error.to_string()
        assert "WarehouseBusy" in text and "the-other-run" in text and "after waiting 0.3s" in text
        # The resource field wins over the environment.
        monkeypatch.setenv("MARKETING_WAREHOUSE_LOCK_TIMEOUT", "600")
        start = time.monotonic()
        quick = dg.materialize(
            [first], resources={"warehouse": Warehouse(database=str(database), lock_timeout_seconds=0.2)}, raise_on_error=False
        )
        assert not quick.success and time.monotonic() - start < 30
    finally:
        other.close()


# ----------------------------------------------------------------- two `make run`s started together


def cli_env(tmp_path: Path, home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(home),
        "MARKETING_LANDING_DIR": str(tmp_path / "landing"),
        "MARKETING_WAREHOUSE": str(tmp_path / "wh.duckdb"),
        "MARKETING_EXTRACTS_DIR": str(tmp_path / "extracts"),
        "MARKETING_REPORTS_DIR": str(tmp_path / "reports"),
        "MARKETING_ALERTS_FILE": str(tmp_path / "alerts.jsonl"),
        "MARKETING_CHECKS_AS_OF": AS_OF.isoformat(),
        "MARKETING_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
    }
    env.pop("MARKETING_WAREHOUSE_LOCK_TIMEOUT", None)
    return env


def _step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    steps = [
        e.timestamp for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)
    ]
    return min(steps), max(steps)


def test_two_runs_started_together_on_a_fresh_home_both_succeed_one_after_the_other(tmp_path):
    for rel, (header, rows) in MINIMAL_CRM.items():
        write_csv(tmp_path / "landing", rel, header, rows)
    land_before_as_of(tmp_path / "landing")
    home = tmp_path / "dagster_home"  # fresh: no storage yet
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deploy" / "dagster.local.yaml").read_text())
    env = cli_env(tmp_path, home)

    # Hold the warehouse until both runs are waiting for it: they then start on the instance together and
    # must take turns on the warehouse (sources_refresh is the smallest job that writes it).
    holder = WarehouseLock(tmp_path / "wh.duckdb")
    holder.acquire("test-holder", timeout=1)
    procs, outs = [], []
    try:
        for i in range(2):
            out = open(tmp_path / f"run{i}.log", "w+")  # noqa: SIM115
            outs.append(out)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "marketing_assets.run", "--job", "sources_refresh"],
                env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True,
            ))
        deadline = time.monotonic() + 120
        logs = lambda: [(tmp_path / f"run{i}.log").read_text() for i in range(2)]  # noqa: E731
        while not all("is in use by another run" in text for text in logs()):
            assert all(p.poll() is None for p in procs), "\n----\n".join(t[-3000:] for t in logs())
            assert time.monotonic() < deadline, "the runs never waited for the warehouse:\n" + "\n----\n".join(t[-3000:] for t in logs())
            time.sleep(0.2)
    finally:
        holder.release()
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for out in outs:
            out.close()
    texts = logs()
    assert codes == [0, 0], "\n----\n".join(t[-3000:] for t in texts)
    for text in texts:
        waiting = [line for line in text.splitlines() if "is in use by another run" in line]
        assert len(waiting) == 1, text[-3000:]  # said once
        assert str(tmp_path / "wh.duckdb") in waiting[0] and f"pid {os.getpid()}, run test-holder" in waiting[0]

    record = json.loads((tmp_path / "wh.landing_scan.json").read_text())  # for the landing sensor of `make ui`
    assert set(record["files"]) == set(MINIMAL_CRM) and record["run_id"] in texts[0] + texts[1]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        (a_start, a_end), (b_start, b_end) = sorted(_step_window(instance, r.run_id) for r in runs)
        assert a_end <= b_start  # one run's steps all ran before the other's began
        third = dg.materialize([dg.asset(lambda: 1, name="third")], instance=instance)
        assert third.success and len(instance.get_runs()) == 3
