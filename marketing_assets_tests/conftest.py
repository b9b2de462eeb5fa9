"""Shared fixtures: tiny hand-written landing zones, warehouse resources under tmp_path."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse


def write_csv(root: Path, relpath: str, header: list[str], rows: list[list[object]], bom: bool = False) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return path


MINIMAL_CRM = {
    "crm/contacts.csv": (
        ["contact_id", "account_id", "email", "created_at"],
        [["c1", "a1", "Ann@Example.com", "2026-11-01T10:00:00Z"], ["c2", "a2", "bob@example.com", "2026-11-02"]],
    ),
    "crm/marketing_touchpoints.csv": (
        ["marketing_touchpoint_id", "channel_name", "contact_id", "marketing_touchpoint_date"],
        [["m1", "Paid Search", "c1", "2026-11-03T09:00:00Z"], ["m2", "Email", "c2", "2026-11-04T09:00:00Z"]],
    ),
    "crm/sales_touchpoints.csv": (
        ["sales_touchpoint_id", "channel_name", "contact_id", "sales_touchpoint_date"],
        [["s1", "Outbound Call", "c1", "2026-11-05T09:00:00Z"]],
    ),
    "crm/opportunities.csv": (
        ["opportunity_id", "account_id", "pipeline_amount", "opportunity_created_date", "sales_segment"],
        [["o1", "a1", "1000.5", "2026-11-10T00:00:00Z", "SMB"], ["o2", "a2", "250", "2026-11-11", "Enterprise"]],
    ),
}


@pytest.fixture
def minimal_landing(tmp_path: Path) -> Path:
    """The four CRM tables attribution needs, nothing else (every other system absent)."""
    root = tmp_path / "landing"
    for rel, (header, rows) in MINIMAL_CRM.items():
        write_csv(root, rel, header, rows)
    return root


def make_resources(tmp_path: Path, landing: Path) -> dict:
    return {
        "landing": LandingZone(path=str(landing)),
        "warehouse": Warehouse(database=str(tmp_path / "warehouse.duckdb"), extracts_dir=str(tmp_path / "extracts")),
        "thresholds": CheckThresholds(),
    }
