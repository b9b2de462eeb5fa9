"""`make run` records the landing files a successful run ingested, for the landing sensor; a failed run does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from marketing_assets import sensors
from marketing_assets.run import landing_files, record_landing
from marketing_assets_tests.conftest import MINIMAL_CRM, land_before_as_of, write_csv
from marketing_assets_tests.test_warehouse_lock import cli_env


def crm_landing(root: Path) -> Path:
    for rel, (header, rows) in MINIMAL_CRM.items():
        write_csv(root, rel, header, rows)
    land_before_as_of(root)
    return root.resolve()


def materialised(*tables: str) -> dg.ExecuteInProcessResult:
    """A successful run that materialised the source assets of ``tables`` (and nothing else)."""
    assets = [dg.asset(key=["sources", t], name=None)(lambda: None) for t in tables]
    return dg.materialize(assets)


def test_record_holds_the_files_of_the_sources_the_run_ingested(tmp_path):
    root = crm_landing(tmp_path / "landing")
    record = tmp_path / "wh.landing_scan.json"
    before = landing_files(root)
    assert set(before) == set(MINIMAL_CRM)

    full = materialised("crm_contacts", "crm_marketing_touchpoints", "crm_sales_touchpoints", "crm_opportunities")
    assert record_landing(record, root, before, full) == 4
    stored = json.loads(record.read_text())
    assert stored["landing"] == str(root) and stored["run_id"] == full.run_id and stored["files"] == before

    # A narrower run (one source) updates that source's files and keeps the others' entries.
    write_csv(root, "crm/contacts.csv", ["contact_id", "account_id"], [["c7", "a7"]])
    land_before_as_of(root, hours=0.25)
    now = landing_files(root)
    one = materialised("crm_contacts")
    assert record_landing(record, root, now, one) == 1
    files = sensors.read_landing_record(record, root)["files"]
    assert files["crm/contacts.csv"] == now["crm/contacts.csv"] != before["crm/contacts.csv"]
    assert files["crm/opportunities.csv"] == before["crm/opportunities.csv"]

    # A run that ingested no source (attribution, MMM) leaves the record as it is.
    unchanged = record.read_text()
    assert record_landing(record, root, now, dg.materialize([dg.asset(lambda: 1, name="other")])) == 0
    assert record.read_text() == unchanged


def test_failed_run_records_nothing(tmp_path):
    """The real CLI: a run in which some sources materialised but one failed exits 1 and leaves the record alone."""
    root = crm_landing(tmp_path / "landing")
    write_csv(root, "crm/opportunities.csv", ["opportunity_id"], [["o1"]])  # required columns missing: that source fails
    land_before_as_of(root)
    record = tmp_path / "wh.landing_scan.json"
    record.write_text("previous record")
    env = cli_env(tmp_path, tmp_path / "unused_home")
    env.pop("DAGSTER_HOME")  # ephemeral instance
    proc = subprocess.run(
        [sys.executable, "-m", "marketing_assets.run", "--job", "sources_refresh"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "sources/crm_contacts" in proc.stdout and "FAILURE" in proc.stdout  # other sources did materialise
    assert "landing files ingested" not in proc.stdout
    assert record.read_text() == "previous record"
