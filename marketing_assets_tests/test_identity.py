"""Identity assets on demo data: planted-truth floors, and each identity check failing on bad data."""

import dagster as dg
import duckdb
import pytest

from marketing_assets.constants import IDENTITY
from marketing_assets_tests.conftest import checks_after_tampering, error_check_failures


def evals(result, asset: str) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey([IDENTITY, asset])}


def test_identity_assets_materialise_and_error_checks_pass(demo_graph):
    result, _, _ = demo_graph
    assert result.success
    assert error_check_failures(result) == []
    for asset in ("channel_map", "contacts_resolved", "web_client_identities", "accounts_resolved", "campaigns_resolved"):
        assert evals(result, asset)["contract"].passed, asset


@pytest.mark.parametrize(("asset", "precision", "recall"), [("contacts_resolved", 0.99, 0.95), ("accounts_resolved", 0.99, 0.95)])
def test_identity_meets_precision_recall_floors_on_planted_truth(demo_graph, asset, precision, recall):
    ev = evals(demo_graph[0], asset)["truth_precision_recall"]
    assert ev.metadata["precision"].value >= precision
    assert ev.metadata["recall"].value >= recall


def test_web_sessions_mostly_get_a_channel(demo_graph):
    ev = evals(demo_graph[0], "channel_map")["channel_coverage"]
    assert ev.passed and ev.metadata["share"].value < 0.05


def test_ad_spend_is_in_reporting_currency(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rates = dict(con.execute("SELECT currency, any_value(fx_rate) FROM spend.ad_spend_daily GROUP BY ALL").fetchall())
        google = con.execute("SELECT sum(metrics_cost_micros) / 1e6 FROM sources.ads_google").fetchone()[0]
        unified = con.execute("SELECT sum(spend) FROM spend.ad_spend_daily WHERE platform = 'google_ads'").fetchone()[0]
    assert rates["USD"] == 1.0 and rates["EUR"] == pytest.approx(1.08)
    assert unified == pytest.approx(google, rel=1e-9)


TAMPER = [
    ("channel_map", "UPDATE identity.channel_map SET channel_group = 'Unassigned' WHERE source_kind = 'web'", "channel_coverage"),
    ("channel_map", "UPDATE identity.channel_map SET rows = 0", "contract"),
    ("spend/ad_spend_daily", "DELETE FROM spend.ad_spend_daily WHERE platform = 'meta_ads' AND rowid % 2 = 0", "spend_reconciles_to_sources"),
    ("spend/ad_spend_daily", "UPDATE spend.ad_spend_daily SET fx_rate = NULL WHERE currency = 'EUR'", "contract"),
    ("contacts_resolved", "UPDATE identity.contacts_resolved SET canonical_contact_id = 'nobody' WHERE rowid = 3", "identity_map_consistent"),
    ("contacts_resolved", "UPDATE identity.contacts_resolved SET canonical_contact_id = 'C00000001'", "truth_precision_recall"),
    ("contacts_resolved", "UPDATE identity.contacts_resolved SET match_method = 'guess' WHERE rowid = 1", "contract"),
    ("accounts_resolved", "INSERT INTO identity.accounts_resolved SELECT * REPLACE ('A-other' AS account_id) FROM identity.accounts_resolved WHERE match_method = 'domain' LIMIT 1", "one_account_per_customer"),
    ("accounts_resolved", "UPDATE identity.accounts_resolved SET customer_id = NULL, match_method = 'unmatched_crm' WHERE match_method IN ('domain', 'name')", "truth_precision_recall"),
    ("accounts_resolved", "UPDATE identity.accounts_resolved SET customer_id = NULL, match_method = 'unmatched_crm' WHERE match_method IN ('domain', 'name')", "won_account_match_rate"),
    ("campaigns_resolved", "INSERT INTO identity.campaigns_resolved SELECT * FROM identity.campaigns_resolved WHERE campaign_id IS NOT NULL LIMIT 1", "unique_ad_campaigns"),
    ("web_client_identities", "UPDATE identity.web_client_identities SET form_emails = 0", "contract"),
]


@pytest.mark.parametrize(("asset", "sql", "check"), TAMPER, ids=[f"{a}-{c}" for a, _, c in TAMPER])
def test_each_identity_check_fails_on_bad_data(demo_graph, tmp_path, asset, sql, check):
    key = dg.AssetKey.from_user_string(asset) if "/" in asset else dg.AssetKey([IDENTITY, asset])
    ev = checks_after_tampering(demo_graph, tmp_path, key, sql)[check]
    assert not ev.passed, ev.description
