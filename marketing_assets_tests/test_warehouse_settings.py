"""DuckDB's memory limit and threads follow the machine unless configured; spills go next to the warehouse."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from marketing_assets.resources import (
    DuckDBSettings,
    Warehouse,
    build_resources,
    clean_spill_dir,
    duckdb_settings,
    machine_cpus,
    machine_memory_bytes,
)

GIB = 2**30


@pytest.mark.parametrize(
    ("memory", "cpus", "expected"),
    [
        (24 * GIB, 2, DuckDBSettings("4423MiB", 2)),  # 24 GiB × 0.18 = 4423.7 MiB
        (25_276_203_008, 2, DuckDBSettings("4338MiB", 2)),  # this kind of machine: 4 549 716 541 B = 4338.9 MiB
        (3 * GIB, 16, DuckDBSettings("552MiB", 16)),
        (GIB // 2, 0, DuckDBSettings("512MiB", 1)),  # never below 512 MiB nor 1 thread
    ],
)
def test_settings_are_18_percent_of_the_memory_and_every_cpu(memory, cpus, expected):
    assert duckdb_settings(memory, cpus) == expected


def test_an_explicit_setting_wins():
    assert duckdb_settings(24 * GIB, 2, memory_limit="3GB") == DuckDBSettings("3GB", 2)
    assert duckdb_settings(24 * GIB, 2, threads=8) == DuckDBSettings("4423MiB", 8)
    with Warehouse(database=":memory:", memory_limit="1GB", threads=1).get_connection() as con:
        assert con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone() == ("953.6 MiB", 1)


def test_env_vars_configure_the_warehouse(monkeypatch):
    monkeypatch.setenv("MARKETING_DUCKDB_MEMORY_LIMIT", "2GB")
    monkeypatch.setenv("MARKETING_DUCKDB_THREADS", "1")
    assert build_resources()["warehouse"].settings() == DuckDBSettings("2GB", 1)
    monkeypatch.delenv("MARKETING_DUCKDB_MEMORY_LIMIT")
    monkeypatch.delenv("MARKETING_DUCKDB_THREADS")
    assert build_resources()["warehouse"].settings() == duckdb_settings(machine_memory_bytes(), machine_cpus())


def test_cgroup_limits_lower_the_machine(tmp_path):
    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    (v2 / "job").mkdir(parents=True)
    (v2 / "job" / "memory.max").write_text("1073741824\n")
    (v2 / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "cgroup2").write_text("0::/job\n")
    assert machine_memory_bytes(v2, tmp_path / "cgroup2") == GIB
    assert machine_cpus(v2, tmp_path / "cgroup2") == min(2, len(os.sched_getaffinity(0)))  # 1.5 CPUs: 2 threads
    (v1 / "memory" / "job").mkdir(parents=True)
    (v1 / "cpu").mkdir()
    (v1 / "memory" / "job" / "memory.limit_in_bytes").write_text(str(2 * GIB))
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    (tmp_path / "cgroup1").write_text("4:memory:/job\n1:cpu,cpuacct:/\n")
    assert machine_memory_bytes(v1, tmp_path / "cgroup1") == 2 * GIB
    assert machine_cpus(v1, tmp_path / "cgroup1") == 1
    (tmp_path / "none").write_text("0::/\n")  # no limits: the machine itself
    assert machine_memory_bytes(tmp_path / "missing", tmp_path / "none") == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert machine_cpus(tmp_path / "missing", tmp_path / "none") == len(os.sched_getaffinity(0))


def test_spills_go_next_to_the_warehouse(tmp_path):
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    assert warehouse.spill_dir == tmp_path / "w.duckdb.tmp"
    with warehouse.get_connection() as con:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone()[0] == str(tmp_path / "w.duckdb.tmp")
    assert Warehouse(database=":memory:").spill_dir is None


def test_only_spill_files_of_dead_processes_are_cleaned(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    spill = tmp_path / "w.duckdb.tmp"
    spill.mkdir()
    (spill / f"duckdb_temp_{dead.stdout.strip()}_0_owner").write_text("")
    live = spill / f"duckdb_temp_{os.getpid()}_0_owner"
    live.write_text("")
    clean_spill_dir(spill)
    assert [p.name for p in spill.iterdir()] == [live.name]
    live.unlink()
    clean_spill_dir(spill)
    assert not spill.exists()
