"""MARKETING_PSEUDONYM_KEY is read through the warehouse resource and required for data that is not the demo's."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from marketing_assets import sources
from marketing_assets.lib.publish import PseudonymKeyMissing
from marketing_assets.resources import Warehouse, build_resources
from marketing_assets_tests.conftest import make_resources


def demo_marker(root: Path) -> None:
    (root / "_truth").mkdir(parents=True, exist_ok=True)
    (root / "_truth" / "manifest.json").write_text(json.dumps({"scale": "small"}))


def test_key_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKETING_PSEUDONYM_KEY", "s3cret")
    warehouse = build_resources()["warehouse"]
    assert isinstance(warehouse.pseudonym_key, dg.EnvVar)  # shown as the variable's name, never its value
    # A context manager: the warehouse releases its run lock on teardown (no lock outside a run).
    with warehouse.process_config_and_initialize_cm() as initialised:
        assert initialised.pseudonym_key_for(tmp_path) == b"s3cret"
    monkeypatch.delenv("MARKETING_PSEUDONYM_KEY")
    assert build_resources()["warehouse"].pseudonym_key is None


def test_key_required_outside_demo_data(tmp_path):
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    with pytest.raises(PseudonymKeyMissing, match="MARKETING_PSEUDONYM_KEY is not set"):
        warehouse.pseudonym_key_for(tmp_path)
    demo_marker(tmp_path)
    assert warehouse.pseudonym_key_for(tmp_path)  # the public demo key
    assert Warehouse(database=str(tmp_path / "w.duckdb"), pseudonym_key="k").pseudonym_key_for(tmp_path) == b"k"


def crm_assets():
    return [a for a in sources.source_assets if a.key.path[-1] in {"crm_contacts", "crm_accounts"}]


def test_run_on_own_data_without_the_key_fails_with_the_documented_message(tmp_path, minimal_landing):
    resources = make_resources(tmp_path, minimal_landing)
    resources["warehouse"] = Warehouse(database=str(tmp_path / "warehouse.duckdb"), extracts_dir=str(tmp_path / "extracts"))
    result = dg.materialize(crm_assets(), resources=resources, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures and all("MARKETING_PSEUDONYM_KEY is not set" in e.event_specific_data.error.message for e in failures)
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing was read or written

    demo_marker(minimal_landing)  # the same files as demo data: the public key will do
    assert dg.materialize(crm_assets(), resources=resources, raise_on_error=False).success
