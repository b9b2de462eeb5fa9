"""Platform vs finance spend on ad exports without the optional columns that split spend by channel group or name its currency."""

import json

import dagster as dg
import duckdb

from marketing_assets.checks import monitoring
from marketing_assets.constants import SOURCES, SPEND
from marketing_assets.resources import Warehouse
from marketing_assets_tests.conftest import copy_graph, pinned_thresholds


def _check(tmp) -> dg.AssetCheckResult:
    warehouse = Warehouse(database=str(tmp / "warehouse.duckdb"), extracts_dir=str(tmp / "extracts"))
    return monitoring.platform_vs_finance_spend(warehouse=warehouse, thresholds=pinned_thresholds())


def _copy(demo_graph, tmp_path, *sql: str):
    tmp, landing = copy_graph(demo_graph, tmp_path)
    planted = json.loads((landing / "_truth" / "discrepancies.json").read_text())["finance_missing_platform_spend"]
    with duckdb.connect(str(tmp / "warehouse.duckdb")) as con:
        # the finance line the demo leaves out on purpose, so that only what the test changes can differ
        con.execute(
            f"""INSERT INTO {SOURCES}.finance_marketing_spend (journal_line_id, period_month, channel, vendor, amount, currency)
                VALUES ('JL-test', DATE '{planted['period_month']}', '{planted['finance_channel']}', '{planted['vendor']}',
                        {planted['platform_spend_usd']}, 'USD')"""
        )
        for statement in sql:
            con.execute(statement)
    return tmp


# A Google Ads export without campaign.advertising_channel_type: every campaign takes the platform's default group.
NO_CAMPAIGN_TYPE = f"UPDATE {SPEND}.ad_spend_daily SET campaign_type = NULL, channel_group = 'Paid Search', channel_name = 'Paid Search' WHERE platform = 'google_ads'"


def test_google_export_without_campaign_type_is_compared_per_month_not_failed_per_group(demo_graph, tmp_path):
    tmp = _copy(demo_graph, tmp_path, NO_CAMPAIGN_TYPE)
    result = _check(tmp)
    # Compared per month × group, Display would be 0 on the platform side in every month finance books it.
    assert result.passed, result.description
    assert result.metadata["grain"].value == "month" and result.metadata["rows_without_campaign_type"].value > 0
    assert "google_ads rows have no campaign type" in result.description and "Display" in result.description


def test_per_month_comparison_still_fails_on_a_changed_month(demo_graph, tmp_path):
    tmp = _copy(
        demo_graph, tmp_path, NO_CAMPAIGN_TYPE,
        f"UPDATE {SOURCES}.finance_marketing_spend SET amount = amount * 0.5 WHERE channel = 'Paid Search' AND period_month = DATE '2025-03-01'",
    )
    result = _check(tmp)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "2025-03 platform vs finance" in result.description and result.metadata["months_outside_tolerance"].value == 1


def test_spend_without_currency_warns_instead_of_failing(demo_graph, tmp_path):
    tmp = _copy(
        demo_graph, tmp_path, f"UPDATE {SPEND}.ad_spend_daily SET is_currency_assumed = true WHERE platform = 'meta_ads'",
        f"UPDATE {SOURCES}.finance_marketing_spend SET amount = amount * 0.5 WHERE channel = 'Paid Search' AND period_month = DATE '2025-03-01'",
    )
    result = _check(tmp)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "taken to be in USD" in result.description and result.metadata["rows_currency_assumed"].value > 0


def test_complete_exports_keep_the_month_by_group_error(demo_graph, tmp_path):
    tmp = _copy(demo_graph, tmp_path, f"UPDATE {SOURCES}.finance_marketing_spend SET amount = amount * 0.5 WHERE channel = 'Display' AND period_month = DATE '2025-03-01'")
    result = _check(tmp)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "2025-03 Display platform vs finance" in result.description and result.metadata["grain"].value == "month × channel_group"
