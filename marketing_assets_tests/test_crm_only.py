"""A real-world shaped CRM-only landing zone: the four required CRM tables, 2019–2021, nothing else."""

import shutil

import dagster as dg
import duckdb
import pytest

from marketing_assets.checks import all_checks
from marketing_assets.definitions import defs
from marketing_assets.demo import generate
from marketing_assets_tests.conftest import error_check_failures, make_resources

REQUIRED = ("contacts", "marketing_touchpoints", "sales_touchpoints", "opportunities")


@pytest.fixture(scope="module")
def crm_only(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crm_only")
    demo = tmp / "demo"
    generate(demo, scale="small", seed=5, end_date="2021-12-31")
    landing = tmp / "landing"
    (landing / "crm").mkdir(parents=True)
    for table in REQUIRED:
        for path in (demo / "crm").glob(f"{table}*"):
            shutil.copy(path, landing / "crm" / path.name)
    result = dg.materialize([*defs.assets, *all_checks], resources=make_resources(tmp, landing), raise_on_error=False)
    return result, tmp


def test_crm_only_zone_runs_with_no_error_check_failing(crm_only):
    result, _ = crm_only
    assert result.success
    assert error_check_failures(result, expected=frozenset()) == []  # no ERP, no finance: nothing to reconcile
    stale = {e.asset_key.path[-1] for e in result.get_asset_check_evaluations() if e.check_name == "freshness" and not e.passed}
    assert {"crm_opportunities", "crm_marketing_touchpoints"} <= stale  # 2021 data: WARN, never a failure


def test_crm_only_zone_yields_first_last_linear_by_channel_and_segment(crm_only):
    _, tmp = crm_only
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        by_channel = con.execute(
            "SELECT model, count(*), sum(pipeline_amount) FROM attribution.attribution_by_channel WHERE model IN ('first_touch','last_touch','linear') GROUP BY ALL"
        ).fetchall()
        by_segment = con.execute("SELECT count(DISTINCT sales_segment) FROM attribution.attribution_by_segment_channel").fetchone()[0]
        crm = con.execute("SELECT sum(CAST(pipeline_amount AS DOUBLE)) FROM sources.crm_opportunities").fetchone()[0]
        spend = con.execute("SELECT count(*), count(*) FILTER (WHERE spend_status = 'no spend data') FROM attribution.channel_roi").fetchone()
        years = con.execute("SELECT min(year(opportunity_created_date)), max(year(opportunity_created_date)) FROM sources.crm_opportunities").fetchone()
    assert len(by_channel) == 3
    for _, channels, total in by_channel:
        assert channels > 3 and total == pytest.approx(crm, rel=1e-9)
    assert by_segment >= 2
    assert spend[0] == spend[1]  # no ads, no finance: every ROI row says so instead of dividing by zero
    assert years[0] >= 2019 and years[1] == 2021


def test_mmm_explains_instead_of_fitting_with_too_little_data(crm_only):
    result, _ = crm_only
    model = next(
        e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key == dg.AssetKey(["mmm", "mmm_model"])
    )
    assert "not fitted" in model["status"].value
    mmm_checks = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "mmm" and e.check_name != "contract"]
    # no ad export at all: nothing to model, so the model's checks are skipped with the reason, not six warnings
    assert mmm_checks and all(e.passed and e.metadata["skipped"].value for e in mmm_checks)
    assert all(e.description.startswith("skipped: no ad spend to model") and "not fitted" in e.description for e in mmm_checks)


def test_mmm_checks_warn_when_there_is_spend_but_too_little_history(tmp_path):
    from marketing_assets.checks import mmm as mmm_checks
    from marketing_assets.mmm import MmmConfig, _write_fit

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA mmm; CREATE SCHEMA spend")
        _write_fit(con, "not fitted: 30 weeks of data (need 52)", 30, 3, MmmConfig())
        con.execute("CREATE TABLE spend.ad_spend_daily AS SELECT 120.0 AS spend")
        status, _ = mmm_checks._status(con)
        warned = mmm_checks._not_fitted(status)
        con.execute("DELETE FROM spend.ad_spend_daily")
        skipped = mmm_checks._not_fitted(mmm_checks._status(con)[0])
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN and warned.description == "not fitted: 30 weeks of data (need 52)"
    assert skipped.passed and skipped.metadata["skipped"] and skipped.description.startswith("skipped: no ad spend to model")


def test_bi_datasets_of_an_unfitted_model_publish_empty_with_their_columns(crm_only):
    import pandas as pd

    from marketing_assets.extracts import EXTRACT_COLUMNS, TABLE_COPIES

    result, tmp = crm_only
    mmm = [n for n in ("mmm_weekly", *TABLE_COPIES) if n.startswith("mmm_")]
    for name in mmm:
        frame = pd.read_parquet(tmp / "extracts" / f"{name}.parquet")
        assert frame.empty and list(frame.columns) == list(EXTRACT_COLUMNS[name]), name
    assert len(pd.read_parquet(tmp / "extracts" / "opportunity_credit.parquet")) > 0
    evals = [e for e in result.get_asset_check_evaluations() if e.asset_key.path[-1] in (*mmm, "opportunity_credit")]
    assert evals and all(e.passed for e in evals), [(e.asset_key.path[-1], e.check_name, e.description) for e in evals if not e.passed]
