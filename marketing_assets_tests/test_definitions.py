"""The code location loads; every job, schedule and asset resolves with the expected keys."""

import dagster as dg

from marketing_assets.constants import SOURCES
from marketing_assets.definitions import defs
from marketing_assets.schemas import SOURCE_MODELS


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_source_table_is_an_asset_in_the_sources_group():
    graph = defs.resolve_asset_graph()
    expected = {dg.AssetKey([SOURCES, t]) for t in [*SOURCE_MODELS, "quarantine"]}
    assert expected <= set(graph.get_all_asset_keys())
    for k in expected:
        node = graph.get(k)
        assert node.group_name == SOURCES
        assert node.description, k


def test_every_source_asset_has_contract_and_rule_checks():
    graph = defs.resolve_asset_graph()
    names_by_asset: dict[dg.AssetKey, set[str]] = {}
    for ck in graph.asset_check_keys:
        names_by_asset.setdefault(ck.asset_key, set()).add(ck.name)
    for table in SOURCE_MODELS:
        assert names_by_asset[dg.AssetKey([SOURCES, table])] >= {
            "contract", "primary_key_unique", "critical_not_null", "row_conservation", "freshness", "new_data_arrival"
        }
    assert names_by_asset[dg.AssetKey([SOURCES, "quarantine"])] == {"contract", "quarantine_share"}


def test_jobs_and_schedules_resolve():
    for name in ("full_refresh", "sources_refresh"):
        assert defs.resolve_job_def(name) is not None
    schedule = defs.resolve_schedule_def("daily_full_refresh")
    assert schedule.job_name == "full_refresh"


def test_identity_group_assets_and_checks():
    from marketing_assets.constants import IDENTITY

    graph = defs.resolve_asset_graph()
    expected = {"channel_map", "contacts_resolved", "web_client_identities", "accounts_resolved", "campaigns_resolved"}
    keys = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == IDENTITY}
    assert keys == expected
    checked = {ck.asset_key.path[-1] for ck in graph.asset_check_keys if ck.asset_key.path[0] == IDENTITY}
    assert checked == expected  # every identity asset has at least its contract check


def test_spend_group_holds_the_unified_spend_and_its_checks():
    from marketing_assets.constants import SPEND

    graph = defs.resolve_asset_graph()
    key = dg.AssetKey([SPEND, "ad_spend_daily"])
    assert {k for k in graph.get_all_asset_keys() if k.path[0] == SPEND} == {key}
    assert graph.get(key).group_name == SPEND
    assert {ck.name for ck in graph.asset_check_keys if ck.asset_key == key} >= {"contract", "spend_reconciles_to_sources", "platform_vs_finance_spend"}


def test_touchpoints_group_assets_and_checks():
    from marketing_assets.constants import TOUCHPOINTS

    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == TOUCHPOINTS}
    assert keys == {"touchpoints", "opportunity_touchpoints", "conversion_paths"}
    checked = {ck.asset_key.path[-1] for ck in graph.asset_check_keys if ck.asset_key.path[0] == TOUCHPOINTS}
    assert checked == keys


def test_attribution_group_assets_and_checks():
    from marketing_assets.constants import ATTRIBUTION

    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == ATTRIBUTION}
    assert keys == {
        "attribution_credits", "attribution_by_channel", "attribution_by_segment_channel",
        "attribution_by_campaign", "attribution_model_comparison", "channel_roi",
    }
    checked = {ck.asset_key.path[-1] for ck in graph.asset_check_keys if ck.asset_key.path[0] == ATTRIBUTION}
    assert checked == keys


def test_run_summary_flags_blocking_failures_and_counts_warnings():
    from marketing_assets.run import summarise

    @dg.asset
    def tiny():
        return dg.MaterializeResult(metadata={"dagster/row_count": 3})

    @dg.asset_check(asset=tiny, blocking=True)
    def must_hold():
        return dg.AssetCheckResult(passed=False, description="broken")

    @dg.asset_check(asset=tiny)
    def nice_to_have():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="stale")

    @dg.asset_check(asset=tiny)
    def fine():
        return dg.AssetCheckResult(passed=True)

    @dg.asset(deps=[tiny])
    def after_tiny():
        return None

    @dg.asset_check(asset=after_tiny)
    def never_runs():  # its asset is skipped: the blocking check upstream failed
        return dg.AssetCheckResult(passed=True)

    result = dg.materialize([tiny, after_tiny, must_hold, nice_to_have, fine, never_runs], raise_on_error=False)
    text, blocking_failed = summarise(result)
    assert blocking_failed
    assert "checks: 1 passed, 1 warned, 1 failed, 1 skipped (1 blocking)" in text
    assert "FAIL tiny:must_hold: broken" in text and "WARN tiny:nice_to_have: stale" in text
    assert "SKIP after_tiny:never_runs: did not execute in this run" in text
    assert "tiny" in text and "3 rows" in text


def test_mmm_group_assets_and_checks():
    from marketing_assets.constants import MMM

    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == MMM}
    assert keys == {"mmm_weekly_frame", "mmm_model", "mmm_fit", "mmm_lift_test_fit", "mmm_channel_group_roi", "mmm_contributions",
                    "mmm_response_curves", "mmm_budget_plan"}
    checked = {ck.asset_key.path[-1] for ck in graph.asset_check_keys if ck.asset_key.path[0] == MMM}
    assert {"mmm_weekly_frame", "mmm_model", "mmm_fit", "mmm_lift_test_fit", "mmm_channel_group_roi", "mmm_budget_plan"} <= checked


def test_extracts_group_assets_and_checks():
    from marketing_assets.constants import EXTRACTS

    graph = defs.resolve_asset_graph()
    keys = {k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == EXTRACTS}
    assert {"kpi_dictionary", "executive_kpis"} <= keys
    checked = {ck.asset_key.path[-1] for ck in graph.asset_check_keys if ck.asset_key.path[0] == EXTRACTS}
    assert checked == keys


def test_stakeholder_assets_carry_a_freshness_policy():
    from marketing_assets.constants import EXTRACTS

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        if key.path[0] == EXTRACTS:
            assert policy is not None and policy.fail_window.to_timedelta().total_seconds() == 30 * 3600, key
        else:
            assert policy is None, key
