"""One registry per extension point: a new ad platform and a new attribution model, registered in a fixture,
flow through unified spend, the MMM frame, attribution, the marketing_roi extract and the report."""

from __future__ import annotations

import copy
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml
from pandera.typing import Series

from marketing_assets import schemas, sources
from marketing_assets.definitions import defs  # built before the fixture registers anything (the graph reads the registries once)
from marketing_assets.lib.attribution import models as attribution_models
from marketing_assets.lib.landing import contract_from_model
from marketing_assets.lib.platforms import DEFAULT_PLATFORMS_FILE, PLATFORMS_ENV, PlatformRegistryError, load_platforms, parse_platforms
from marketing_assets_tests.conftest import days_ago, make_resources, write_csv


class AdsTiktok(schemas.SourceModel):
    """TikTok Ads campaign report, daily."""

    stat_time_day: Series[pd.Timestamp] = schemas._key("Report day.", sql_type="DATE")
    advertiser_id: Series[str] = schemas._key("Advertiser id.")
    currency: Series[str] = schemas._opt("Advertiser currency (ISO 4217).")
    campaign_id: Series[str] = schemas._key("Campaign id.")
    campaign_name: Series[str] = schemas._opt("Campaign name.")
    spend: Series[float] = schemas._req("Spend in the advertiser currency.", ge=0)
    impressions: Series[int] = schemas._opt("Impressions.", ge=0)
    clicks: Series[int] = schemas._opt("Clicks.", ge=0)

    class Config:
        metadata = {"landing_glob": "ads/tiktok_ads*", "event_time": "stat_time_day", "optional_table": True}


TIKTOK = {
    "label": "TikTok",
    "source_table": "ads_tiktok",
    "fields": {
        "date_day": "stat_time_day", "account_id": "advertiser_id", "currency": "currency", "campaign_id": "campaign_id",
        "campaign_name": "campaign_name", "campaign_type": "NULL", "spend_local": "spend", "impressions": "impressions",
        "clicks": "clicks", "conversions": "NULL", "conversion_value": "NULL",
    },
    "channel_group": {"default": "Paid Social"},
    "mmm_channels": [[None, "tiktok"]],
}

FIRST_LAST = attribution_models.AttributionModel(
    "first_last", "rule", "First and last",
    "{first_last_share:pct} each to the first and the last touchpoint.", parameters=("first_last_share",),
    sql=lambda t: f"{t.amount} * CASE WHEN {t.n} = 1 THEN {t.real(1)} WHEN {t.is_first} OR {t.is_last} THEN {t.real(getattr(t, 'first_last_share', 0.5))} ELSE {t.real(0)} END",
    column_description="Half to the first touch, half to the last.",
)


def _registry_with_tiktok() -> dict:
    raw = yaml.safe_load(DEFAULT_PLATFORMS_FILE.read_text(encoding="utf-8"))
    raw["platforms"]["tiktok_ads"] = copy.deepcopy(TIKTOK)
    return raw


@pytest.fixture
def extended(tmp_path: Path, monkeypatch):
    """TikTok Ads registered (its contract, a registry file through MARKETING_AD_PLATFORMS) and the first_last model."""
    monkeypatch.setitem(schemas.SOURCE_MODELS, "ads_tiktok", AdsTiktok)
    monkeypatch.setitem(sources.CONTRACTS, "ads_tiktok", contract_from_model("ads_tiktok", AdsTiktok))
    path = tmp_path / "ad_platforms.yaml"
    path.write_text(yaml.safe_dump(_registry_with_tiktok()), encoding="utf-8")
    monkeypatch.setenv(PLATFORMS_ENV, str(path))
    saved = dict(attribution_models.REGISTRY)
    attribution_models.register(FIRST_LAST)
    yield sources.build_source_asset("ads_tiktok", AdsTiktok)
    attribution_models.REGISTRY.clear()
    attribution_models.REGISTRY.update(saved)


def test_registry_rejects_unknown_table_and_column():
    raw = _registry_with_tiktok()
    with pytest.raises(PlatformRegistryError, match="ads_tiktok.*not a source contract"):
        parse_platforms(raw)
    raw = yaml.safe_load(DEFAULT_PLATFORMS_FILE.read_text(encoding="utf-8"))
    raw["platforms"]["meta_ads"]["fields"]["spend_local"] = "coalesce(amount_spend, 0)"
    with pytest.raises(PlatformRegistryError, match=r"spend_local.*\['amount_spend'\].*ads_meta"):
        parse_platforms(raw)
    assert list(load_platforms()) == ["google_ads", "meta_ads", "linkedin_ads"]


def test_new_platform_and_model_flow_to_spend_mmm_attribution_extracts_and_report(extended, minimal_landing, tmp_path):
    from marketing_assets.lib.reports import marketing_terms

    write_csv(minimal_landing, "ads/tiktok_ads.csv", ["stat_time_day", "advertiser_id", "currency", "campaign_id", "campaign_name", "spend"],
              [[days_ago(d, None), "adv1", "USD", "tt1", "Spring", "100"] for d in range(1, 15)])
    resources = make_resources(tmp_path, minimal_landing)
    source_assets = [a for a in defs.assets if next(iter(a.keys)).path[0] == "sources"]
    # The registry is read when the graph is built; this graph was built before TikTok was registered, so its
    # source lands first (in a graph built with the registry file in place, ad_spend_daily depends on it).
    assert dg.materialize([*source_assets, extended], resources=resources).success
    result = dg.materialize([a for a in defs.assets if next(iter(a.keys)).path[0] != "sources"], resources=resources, raise_on_error=False)
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert not failed, failed

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        spend = con.execute("SELECT channel_group, sum(spend) FROM spend.ad_spend_daily WHERE platform = 'tiktok_ads' GROUP BY ALL").fetchall()
        assert spend == [("Paid Social", 1400.0)]
        assert "tiktok" in [r[0] for r in con.execute("DESCRIBE mmm.mmm_weekly_frame").fetchall()]
        credits = con.execute("SELECT sum(first_last_credit), sum(pipeline_amount) FROM attribution.attribution_credits").fetchone()
        assert credits[0] == pytest.approx(credits[1])
        by_channel = dict(con.execute("SELECT model, sum(pipeline_amount) FROM attribution.attribution_by_channel GROUP BY ALL").fetchall())
        assert by_channel["first_last"] == pytest.approx(by_channel["linear"])
        roi_models = {r[0] for r in con.execute("SELECT DISTINCT attribution_model FROM extracts.marketing_roi").fetchall()}
        assert "first_last" in roi_models
    report = (tmp_path / "reports" / "marketing_roi.html").read_text(encoding="utf-8")
    assert "First and last" in report
    assert marketing_terms({"first_last_share": 0.5})["First and last"] == "50 % each to the first and the last touchpoint."
