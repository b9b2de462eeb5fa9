"""Shared fixtures: tiny hand-written landing zones, warehouse resources under tmp_path, one local Spark session."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse
from marketing_assets.alerts import Alerts


def write_csv(root: Path, relpath: str, header: list[str], rows: list[list[object]], bom: bool = False) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return path


# Tests never read the machine's clock: the demo ends on AS_OF's day, hand-written rows are dated relative to it,
# landing files arrive half an hour before it, and the checks take it as now (``CheckThresholds.as_of``).
AS_OF = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
DEMO_END_DATE = AS_OF.date()


def pinned_thresholds() -> CheckThresholds:
    """Check thresholds whose "now" is AS_OF."""
    return CheckThresholds(as_of=AS_OF.isoformat())


def land_before_as_of(root: Path, hours: float = 0.5) -> None:
    """Give every file under ``root`` a modification time ``hours`` before AS_OF (the arrival checks read it)."""
    when = (AS_OF - dt.timedelta(hours=hours)).timestamp()
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (when, when))


def days_ago(n: int, time: str | None = "09:00:00") -> str:
    """ISO date (with a `Z` time when ``time`` is given) ``n`` days before AS_OF, so freshness holds."""
    day = (AS_OF - dt.timedelta(days=n)).date().isoformat()
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
    land_before_as_of(root)
    return root


TEST_PSEUDONYM_KEY = "test-only-pseudonym-key"


def make_resources(tmp_path: Path, landing: Path) -> dict:
    return {
        "landing": LandingZone(path=str(landing)),
        "warehouse": Warehouse(
            database=str(tmp_path / "warehouse.duckdb"), extracts_dir=str(tmp_path / "extracts"), reports_dir=str(tmp_path / "reports"),
            pseudonym_key=TEST_PSEUDONYM_KEY,  # hand-built landing zones are not demo data
        ),
        "thresholds": pinned_thresholds(),
        "alerts": Alerts(alerts_file=str(tmp_path / "alerts.jsonl")),
    }


@pytest.fixture(scope="session")
def demo_graph(tmp_path_factory):
    """Small demo data generated once and every asset of the graph materialised with all checks."""
    import dagster as dg

    from marketing_assets.checks import all_checks
    from marketing_assets.definitions import defs
    from marketing_assets.demo import generate

    tmp = tmp_path_factory.mktemp("demo_graph")
    landing = tmp / "landing"
    generate(landing, scale="small", seed=11, end_date=DEMO_END_DATE)
    land_before_as_of(landing)
    result = dg.materialize([*defs.assets, *all_checks], resources=make_resources(tmp, landing), raise_on_error=False)
    return result, tmp, landing


def copy_graph(demo_graph, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the demo warehouse (tests that tamper with tables must not share one)."""
    import shutil

    _, tmp, landing = demo_graph
    shutil.copy(tmp / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return tmp_path, landing


def checks_after_tampering(demo_graph, tmp_path: Path, asset_key, sql: str):
    """Run ``sql`` on a private copy of the demo warehouse, then re-evaluate the asset's checks."""
    import duckdb

    tmp, landing = copy_graph(demo_graph, tmp_path)
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        con.execute(sql)
    return rerun_checks(tmp, landing, asset_key)


def rerun_checks(tmp_path: Path, landing: Path, asset_key):
    """Evaluate every check of one asset against the warehouse under ``tmp_path``; {check name: evaluation}."""
    import dagster as dg

    from marketing_assets.checks import all_checks
    from marketing_assets.definitions import defs

    result = dg.materialize(
        [*defs.assets, *all_checks],
        resources=make_resources(tmp_path, landing),
        selection=dg.AssetSelection.checks_for_assets(asset_key),
        raise_on_error=False,
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# Demo data plants one CRM/ERP revenue gap and one month of finance spend missing a platform: these two
# reconciliation checks must fail on it (test_monitoring.py asserts they fail on exactly those months).
PLANTED_RECONCILIATION_FAILURES = frozenset({"crm_won_vs_erp_revenue", "platform_vs_finance_spend"})


def error_check_failures(result, expected: frozenset[str] = PLANTED_RECONCILIATION_FAILURES) -> list[str]:
    """Checks of ERROR severity that did not pass, other than ``expected`` ones, as readable strings
    (WARNs are expected on demo data: planted anomalies, a dark ad flight)."""
    import dagster as dg

    return [
        f"{e.asset_key.to_user_string()}:{e.check_name} {e.description}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR and e.check_name not in expected
    ]


REQUIRE_SPARK = os.environ.get("MARKETING_REQUIRE_SPARK") == "1"


def _require_spark() -> None:
    """Skip without pyspark or Java, unless ``MARKETING_REQUIRE_SPARK=1`` (CI) makes that a failure."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if REQUIRE_SPARK:
            pytest.fail("pyspark is required (MARKETING_REQUIRE_SPARK=1) but not installed")
        pytest.skip("pyspark not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if REQUIRE_SPARK:
            pytest.fail("Java is required (MARKETING_REQUIRE_SPARK=1) but not installed")
        pytest.skip("no Java for Spark")


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (one core) with the project's settings, for every test that needs one (see _require_spark)."""
    _require_spark()
    from marketing_assets.lib.spark_engine import spark_session

    session = spark_session("local[1]", app_name="marketing_assets_tests", conf={"spark.sql.shuffle.partitions": "1"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_connect_url(tmp_path_factory):
    """``sc://localhost:<port>`` of a Spark Connect server started from the installed pyspark (``sbin/start-connect-server.sh``,
    master ``local[1]``, this venv's Python for UDF workers), as a cluster's would be; stopped after the session. A process
    holds local or remote Spark sessions, not both: connect to it from a subprocess."""
    _require_spark()
    import socket

    import pyspark

    home = Path(pyspark.__file__).parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = tmp_path_factory.mktemp("spark_connect")
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(run),
           "SPARK_PID_DIR": str(run), "SPARK_IDENT_STRING": f"tests{port}"}
    subprocess.run(["bash", str(home / "sbin" / "start-connect-server.sh"), "--master", "local[1]",
                    "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.sql.shuffle.partitions=1",
                    "--conf", "spark.ui.enabled=false"], env=env, check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text()[-2000:] for p in run.glob("*.out"))
                pytest.fail(f"the Spark Connect server did not listen on {port} within 120 s:\n{logs}")
            time.sleep(0.5)
        yield f"sc://localhost:{port}"
    finally:
        subprocess.run(["bash", str(home / "sbin" / "stop-connect-server.sh")], env=env, capture_output=True)
