"""Shared fixtures: tiny hand-written landing zones, warehouse resources under tmp_path."""

from __future__ import annotations

import csv
import datetime as dt
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


def days_ago(n: int, time: str | None = "09:00:00") -> str:
    """ISO date (with a `Z` time when ``time`` is given) ``n`` days before today, so freshness holds."""
    day = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=n)).date().isoformat()
    return f"{day}T{time}Z" if time else day


MINIMAL_CRM = {
    "crm/contacts.csv": (
        ["contact_id", "account_id", "email", "created_at"],
        [["c1", "a1", "Ann@Example.com", days_ago(2)], ["c2", "a2", "bob@example.com", days_ago(1, None)]],
    ),
    "crm/marketing_touchpoints.csv": (
        ["marketing_touchpoint_id", "channel_name", "contact_id", "marketing_touchpoint_date"],
        [["m1", "Paid Search", "c1", days_ago(2)], ["m2", "Email", "c2", days_ago(1)]],
    ),
    "crm/sales_touchpoints.csv": (
        ["sales_touchpoint_id", "channel_name", "contact_id", "sales_touchpoint_date"],
        [["s1", "Outbound Call", "c1", days_ago(1)]],
    ),
    "crm/opportunities.csv": (
        ["opportunity_id", "account_id", "pipeline_amount", "opportunity_created_date", "sales_segment"],
        [["o1", "a1", "1000.5", days_ago(1, "00:00:00"), "SMB"], ["o2", "a2", "250", days_ago(0, None), "Enterprise"]],
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
