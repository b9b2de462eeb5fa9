"""A run whose process is killed with ``kill -9`` stays STARTED: `make run` fails it at start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from marketing_assets.run import fail_stale_runs

HANGING_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg

    @dg.asset
    def slow():
        Path(sys.argv[1]).write_text("started")
        time.sleep(120)

    with dg.DagsterInstance.get() as instance:
        dg.materialize([slow], instance=instance)
    """
)


def test_run_left_started_by_a_killed_process_is_failed(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    marker = tmp_path / "started"
    script = tmp_path / "hang.py"
    script.write_text(HANGING_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(marker)], env={**os.environ, "DAGSTER_HOME": str(home)})
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the hanging run did not start"
            time.sleep(0.2)
        with dg.DagsterInstance.get() as instance:
            assert fail_stale_runs(instance) == []  # its process still runs: left alone
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # what Dagster leaves behind
        unrelated = dg.materialize([dg.asset(lambda: 1, name="other")], instance=instance).run_id

        lines = fail_stale_runs(instance)
        assert lines == [f"stale run {run.run_id} ({run.job_name}): process {proc.pid} is gone; marked FAILURE"]
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(unrelated).status == dg.DagsterRunStatus.SUCCESS
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "no longer runs" in failure[-1].message
        assert fail_stale_runs(instance) == []  # once


def test_started_run_without_a_start_event_is_left_alone():
    with dg.instance_for_test() as instance:
        from dagster._core.test_utils import create_run_for_test

        run = create_run_for_test(instance, status=dg.DagsterRunStatus.STARTED)
        # No RUN_START event (no pid to check): not touched.
        assert fail_stale_runs(instance, pid_alive=lambda pid: False) == []
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
