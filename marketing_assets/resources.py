"""Resources: the landing zone, the warehouse and the check thresholds, configured through env vars."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import yaml
from dagster_duckdb import DuckDBResource
from pydantic import Field

from marketing_assets.constants import CONFIG_DIR, DEFAULT_EXTRACTS_DIR, DEFAULT_LANDING_DIR, DEFAULT_REPORTS_DIR, DEFAULT_WAREHOUSE


class LandingZone(dg.ConfigurableResource):
    """Folder of raw exports, one sub-folder per system (``ads/``, ``web/``, ``crm/``, ``erp/``, ``experiments/``)."""

    path: str = Field(default=DEFAULT_LANDING_DIR, description="Landing folder (MARKETING_LANDING_DIR).")

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve()


class Warehouse(DuckDBResource):
    """The embedded DuckDB warehouse (MARKETING_WAREHOUSE); every table write goes through it.

    Sessions run in UTC. Another engine can be plugged in by a resource exposing the same
    ``get_connection()`` contract (a DB-API connection that speaks DuckDB-compatible SQL).
    """

    database: str = Field(default=DEFAULT_WAREHOUSE, description="DuckDB file (MARKETING_WAREHOUSE).")
    extracts_dir: str = Field(default=DEFAULT_EXTRACTS_DIR, description="Extract folder (MARKETING_EXTRACTS_DIR).")
    reports_dir: str = Field(default=DEFAULT_REPORTS_DIR, description="Stakeholder HTML reports (MARKETING_REPORTS_DIR).")
    memory_limit: str = Field(
        default="3GB", description="DuckDB memory limit; larger joins spill to disk next to the warehouse instead of growing the process."
    )
    pseudonym_key: str | None = Field(
        default=None,
        description="Secret key of the HMAC pseudonyms in extracts (MARKETING_PSEUDONYM_KEY); required outside demo data.",
    )

    def pseudonym_key_for(self, landing_root: Path) -> bytes:
        """The pseudonym key for data from ``landing_root``; raises ``PseudonymKeyMissing`` for non-demo data without one."""
        from marketing_assets.lib.publish import is_demo_landing, resolve_key

        key = configured(self.pseudonym_key) if self.pseudonym_key is not None else None
        return resolve_key(key, demo_mode=is_demo_landing(landing_root))

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as con:
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"SET memory_limit = '{self.memory_limit}'")
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
            return yaml.safe_load(fh)

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


def configured(value: str | dg.EnvVar) -> str:
    """A resource field's value as a string, reading the environment for an ``EnvVar``."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def build_resources() -> dict[str, Any]:
    from marketing_assets.sensors import Alerts  # sensors.py imports this module

    return {
        "landing": LandingZone(path=_env_or("MARKETING_LANDING_DIR", DEFAULT_LANDING_DIR)),
        "warehouse": Warehouse(
            database=_env_or("MARKETING_WAREHOUSE", DEFAULT_WAREHOUSE),
            extracts_dir=_env_or("MARKETING_EXTRACTS_DIR", DEFAULT_EXTRACTS_DIR),
            reports_dir=_env_or("MARKETING_REPORTS_DIR", DEFAULT_REPORTS_DIR),
            pseudonym_key=dg.EnvVar("MARKETING_PSEUDONYM_KEY") if os.environ.get("MARKETING_PSEUDONYM_KEY") else None,
        ),
        "thresholds": CheckThresholds(as_of=dg.EnvVar("MARKETING_CHECKS_AS_OF") if os.environ.get("MARKETING_CHECKS_AS_OF") else None),
        "alerts": Alerts.from_env(),
    }
