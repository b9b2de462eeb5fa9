"""Dagster history, alert log and landing record follow the warehouse file; `make run` and `make ui` agree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from marketing_assets import sensors
from marketing_assets.run import dagster_home_for
from marketing_assets.alerts import DEFAULT_ALERTS_FILE, Alerts, warehouse_sidecar

REPO = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_paths_are_keyed_by_the_warehouse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dagster_home_for("data/warehouse.duckdb") == tmp_path / "data" / ".dagster" / "warehouse"
    assert dagster_home_for("/srv/dw/own.duckdb") == Path("/srv/dw/.dagster/own")
    assert DEFAULT_ALERTS_FILE == "data/warehouse.alerts.jsonl"
    assert warehouse_sidecar("/srv/dw/own.duckdb", sensors.LANDING_RECORD_SUFFIX) == "/srv/dw/own.landing_scan.json"


def test_alerts_default_follows_the_warehouse_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("MARKETING_ALERTS_FILE", raising=False)
    monkeypatch.delenv("MARKETING_WAREHOUSE", raising=False)
    assert Alerts.from_env().alerts_file == "data/warehouse.alerts.jsonl"
    monkeypatch.setenv("MARKETING_WAREHOUSE", str(tmp_path / "own.duckdb"))
    alerts = Alerts.from_env()
    assert alerts.alerts_file == str(tmp_path / "own.alerts.jsonl")
    assert alerts.state_file == tmp_path / "own.alerts.check_states.json"
    monkeypatch.setenv("MARKETING_ALERTS_FILE", str(tmp_path / "mine.jsonl"))
    assert Alerts.from_env().process_config_and_initialize().alerts_file == str(tmp_path / "mine.jsonl")


def make(*args: str, **env: str | None) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "MARKETING_WAREHOUSE", "MAKEFLAGS")}
    environ.update({k: v for k, v in env.items() if v is not None})
    proc = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def make_home(**env: str | None) -> str:
    return make("-s", "--eval", "print-home: ; @echo $(DAGSTER_HOME)", "print-home", **env).strip()


@needs_make
@pytest.mark.parametrize("warehouse", [None, "data/warehouse.duckdb", "elsewhere/own.duckdb", "/srv/dw/own.v2.duckdb"])
def test_makefile_derives_the_same_home(warehouse):
    expected = REPO / "data" / ".dagster" / "warehouse" if warehouse is None else dagster_home_for(REPO / warehouse)
    assert make_home(MARKETING_WAREHOUSE=warehouse) == str(expected)


@needs_make
def test_make_run_and_make_ui_share_the_home_an_explicit_one_wins_and_clean_data_removes_it(tmp_path):
    warehouse = tmp_path / "own.duckdb"  # a home that does not exist yet: both targets create it
    home = tmp_path / ".dagster" / "own"
    for target in ("run", "ui"):
        assert f"mkdir -p {home}\n" in make("-n", target, MARKETING_WAREHOUSE=str(warehouse))
    assert make_home(MARKETING_WAREHOUSE=str(warehouse), DAGSTER_HOME="/opt/dagster") == "/opt/dagster"
    clean = make("-n", "clean-data", MARKETING_WAREHOUSE=str(warehouse)).split()
    for path in (home, warehouse, f"{warehouse}.lock", tmp_path / "own.alerts.jsonl", tmp_path / "own.alerts.check_states.json",
                 tmp_path / "own.landing_scan.json"):
        assert str(path) in clean
