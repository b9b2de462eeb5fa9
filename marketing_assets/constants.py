"""Names shared across the project: groups (= key prefixes = warehouse schemas), defaults."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "config"

# Paths are relative to the working directory (the repository root for `make` and `dagster dev`).
DEFAULT_LANDING_DIR = "data/landing"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
DEFAULT_EXTRACTS_DIR = "data/extracts"
DEFAULT_SPARK_WAREHOUSE = "data/spark_warehouse"
ENGINES = ("duckdb", "spark")
DEFAULT_REPORTS_DIR = "data/reports"

SOURCES = "sources"
SPEND = "spend"
IDENTITY = "identity"
TOUCHPOINTS = "touchpoints"
ATTRIBUTION = "attribution"
MMM = "mmm"
KPIS = "kpis"  # the metric dictionary's base relations, each built once per run (kpi_bases.py)
EXTRACTS = "extracts"
GROUPS = (SOURCES, SPEND, IDENTITY, TOUCHPOINTS, ATTRIBUTION, MMM, KPIS, EXTRACTS)

ALL_CHANNELS = "(all)"  # channel_group of extract rows over every channel group

QUARANTINE_TABLE = "quarantine"
INGEST_LOG_TABLE = "_ingest_log"


def rejected_table(table: str) -> str:
    """Per-source table of rejected rows, unioned by the ``quarantine`` asset."""
    return f"_rejected_{table}"


def fq(schema: str, table: str) -> str:
    """Fully qualified, quoted warehouse table name."""
    return f'"{schema}"."{table}"'
