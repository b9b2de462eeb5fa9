"""In-process materialisation of the `sources` group and its checks, and each check failing on bad data."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
import pytest

from marketing_assets import sources
from marketing_assets.checks import sources as checks
from marketing_assets.constants import SOURCES
from marketing_assets.schemas import SOURCE_MODELS
from marketing_assets.resources import CheckThresholds
from marketing_assets_tests.conftest import AS_OF, make_resources, write_csv

ASSETS = [*sources.source_assets, sources.quarantine]
ALL_CHECKS = [*checks.source_checks, *checks.quarantine_checks]


def key(table: str) -> dg.AssetKey:
    return dg.AssetKey([SOURCES, table])


def prefixed_assets():
    return dg.load_assets_from_modules([sources], group_name=SOURCES, key_prefix=SOURCES)


def run_sources(tmp_path, landing, selection=None, raise_on_error=True):
    return dg.materialize(
        [*prefixed_assets(), *ALL_CHECKS],
        resources=make_resources(tmp_path, landing),
        selection=selection,
        raise_on_error=raise_on_error,
    )


def evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def metadata(result, table: str) -> dict:
    mats = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == key(table)
    ]
    return {k: v.value for k, v in mats[-1].metadata.items()}


@pytest.fixture
def materialised(tmp_path, minimal_landing):
    return run_sources(tmp_path, minimal_landing), tmp_path, minimal_landing


def test_sources_group_materialises_with_checks(materialised):
    result, tmp_path, _ = materialised
    assert result.success
    evals = evaluations(result)
    assert len(evals) == 5 * len(SOURCE_MODELS) + 2
    failed = {k: e.description for k, e in evals.items() if not e.passed}
    assert failed == {}
    assert metadata(result, "crm_opportunities")["dagster/row_count"] == 2
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='sources'").fetchall()}
    assert set(SOURCE_MODELS) | {"quarantine", "_ingest_log"} <= tables


def test_absent_optional_system_materialises_empty_with_note(materialised):
    result, tmp_path, _ = materialised
    meta = metadata(result, "erp_orders")
    assert meta["dagster/row_count"] == 0
    assert "optional" in meta["note"]
    evals = evaluations(result)
    assert evals[("erp_orders", "freshness")].passed
    assert "skipped" in evals[("erp_orders", "freshness")].description


def test_missing_required_crm_table_fails_naming_the_glob(tmp_path, minimal_landing):
    (minimal_landing / "crm" / "contacts.csv").unlink()
    result = run_sources(tmp_path, minimal_landing, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "crm/contacts*" in str(failure.event_specific_data.error)


def test_missing_required_column_fails_the_asset_naming_file_and_column(tmp_path, minimal_landing):
    write_csv(minimal_landing, "crm/opportunities.csv", ["opportunity_id", "account_id", "sales_segment"], [["o1", "a1", "SMB"]])
    result = run_sources(tmp_path, minimal_landing, raise_on_error=False)
    errors = [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert any("crm/opportunities.csv" in m and "pipeline_amount" in m for m in errors), errors


def test_quarantine_collects_rejects_of_every_table(tmp_path, minimal_landing):
    write_csv(
        minimal_landing,
        "crm/sales_touchpoints_late.csv",
        ["sales_touchpoint_id", "channel_name", "contact_id", "sales_touchpoint_date"],
        [["s9", "Meeting", "c2", "soon"]],
    )
    write_csv(
        minimal_landing,
        "ads/meta_ads.csv",
        ["date_start", "account_id", "campaign_id", "amount_spent"],
        [["2026-11-01", "act1", "cmp1", "-10"]],
    )
    result = run_sources(tmp_path, minimal_landing)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT table_name, source_file, source_line, column_name, reason FROM sources.quarantine").fetchall()
    assert rows == [
        ("ads_meta", "ads/meta_ads.csv", 2, "amount_spent", "negative_value"),
        ("crm_sales_touchpoints", "crm/sales_touchpoints_late.csv", 2, "sales_touchpoint_date", "unparseable_value"),
    ]
    assert evaluations(result)[("quarantine", "contract")].passed
    share = evaluations(result)[("quarantine", "quarantine_share")]
    assert not share.passed and share.severity == dg.AssetCheckSeverity.WARN  # 1 of 1 Meta rows rejected


# ------------------------------------------------------------------- each check fails on bad data


def rerun_checks(tmp_path, landing, table: str):
    result = dg.materialize(
        [*prefixed_assets(), *ALL_CHECKS],
        resources=make_resources(tmp_path, landing),
        selection=dg.AssetSelection.checks_for_assets(key(table)),
        raise_on_error=False,
    )
    return evaluations(result)


def tamper(tmp_path, sql: str) -> None:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute(sql)


@pytest.mark.parametrize(
    ("sql", "check", "evidence"),
    [
        (
            "INSERT INTO sources.crm_opportunities VALUES ('o9','a1',-5,'2026-11-12','SMB',NULL,NULL,NULL,NULL,NULL,'x.csv',9)",
            "contract",
            "pipeline_amount: greater_than_or_equal_to(0)",
        ),
        (
            "INSERT INTO sources.crm_opportunities SELECT * FROM sources.crm_opportunities LIMIT 1",
            "primary_key_unique",
            "duplicated_keys",
        ),
        ("UPDATE sources.crm_opportunities SET account_id = NULL WHERE opportunity_id = 'o2'", "critical_not_null", "account_id"),
        ("DELETE FROM sources.crm_opportunities WHERE opportunity_id = 'o2'", "row_conservation", "crm/opportunities.csv"),
        ("UPDATE sources.crm_opportunities SET opportunity_created_date = '2020-01-01'", "freshness", "age_hours"),
    ],
)
def test_each_source_check_fails_on_bad_data(materialised, sql, check, evidence):
    _, tmp_path, landing = materialised
    tamper(tmp_path, sql)
    ev = rerun_checks(tmp_path, landing, "crm_opportunities")[("crm_opportunities", check)]
    assert not ev.passed
    assert evidence in str(ev.metadata) or evidence in (ev.description or "")
    expected = dg.AssetCheckSeverity.WARN if check == "freshness" else dg.AssetCheckSeverity.ERROR
    assert ev.severity == expected
    assert ev.blocking == (check != "freshness")


def test_conservation_fails_when_a_landing_file_changes_after_ingestion(materialised):
    _, tmp_path, landing = materialised
    with open(landing / "crm" / "contacts.csv", "a") as fh:
        fh.write("c3,a3,carl@example.com,2026-11-03\n")
    ev = rerun_checks(tmp_path, landing, "crm_contacts")[("crm_contacts", "row_conservation")]
    assert not ev.passed and ev.metadata["files_not_reconciled"].value == ["crm/contacts.csv"]


def test_contract_failure_samples_mask_pii(materialised):
    _, tmp_path, landing = materialised
    tamper(tmp_path, "UPDATE sources.crm_contacts SET email = 'ann@example.com', created_at = NULL, contact_id = NULL")
    ev = rerun_checks(tmp_path, landing, "crm_contacts")[("crm_contacts", "contract")]
    assert not ev.passed
    assert "ann@example.com" not in str(ev.metadata)


def test_freshness_window_comes_from_versioned_yaml():
    from marketing_assets.resources import CheckThresholds

    t = CheckThresholds()
    assert t.freshness_hours("crm_opportunities") == 48
    assert t.freshness_hours("experiments") is None
    assert t.load()["version"] >= 1
    assert 0 < t.max_quarantine_share() < 1


def test_check_clock_is_the_wall_clock_unless_pinned():
    before = dt.datetime.now(dt.timezone.utc)
    assert before <= CheckThresholds().now() <= dt.datetime.now(dt.timezone.utc)
    assert CheckThresholds(as_of="2026-11-30T12:00:00Z").now() == dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    assert CheckThresholds(as_of="2026-11-30T13:00:00+01:00").now() == dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    assert CheckThresholds(as_of="2026-11-30 12:00").now().tzinfo == dt.timezone.utc  # naive = UTC


def test_check_clock_can_be_pinned_from_the_environment(monkeypatch):
    from marketing_assets.resources import build_resources

    monkeypatch.setenv("MARKETING_CHECKS_AS_OF", "2026-11-30T12:00:00Z")
    assert build_resources()["thresholds"].now() == dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc)
    monkeypatch.delenv("MARKETING_CHECKS_AS_OF")
    assert build_resources()["thresholds"].as_of is None


def test_freshness_check_reads_the_pinned_clock(materialised):
    # the same rows are fresh as of AS_OF and stale a year later
    _, tmp_path, landing = materialised
    assert rerun_checks(tmp_path, landing, "crm_opportunities")[("crm_opportunities", "freshness")].passed
    later = AS_OF + dt.timedelta(days=365)
    result = dg.materialize(
        [*prefixed_assets(), *ALL_CHECKS],
        resources={**make_resources(tmp_path, landing), "thresholds": CheckThresholds(as_of=later.isoformat())},
        selection=dg.AssetSelection.checks_for_assets(key("crm_opportunities")),
        raise_on_error=False,
    )
    ev = evaluations(result)[("crm_opportunities", "freshness")]
    assert not ev.passed and ev.metadata["age_hours"].value > 24 * 364


def test_freshness_counts_plain_dates_from_the_end_of_day():
    from marketing_assets.lib.quality import freshness

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT DATE '2026-11-22' AS d")
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.timezone.utc)
    assert freshness(con, "t", "d", 13, now).passed
    assert not freshness(con, "t", "d", 11, now).passed
