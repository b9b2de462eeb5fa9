"""Touchpoint checks: contracts, the window rule, uniqueness, referential integrity and channel coverage."""

import dagster as dg

from marketing_assets.checks.contracts import build_contract_checks, outcome_result
from marketing_assets.constants import SOURCES, TOUCHPOINTS
from marketing_assets.lib import quality
from marketing_assets.lib.refs import ref
from marketing_assets.resources import CheckThresholds, Warehouse
from marketing_assets.schemas import TOUCHPOINT_MODELS

OPP_TP = dg.AssetKey([TOUCHPOINTS, "opportunity_touchpoints"])
TP = dg.AssetKey([TOUCHPOINTS, "touchpoints"])


@dg.asset_check(asset=OPP_TP, name="touchpoints_inside_window", blocking=True)
def touchpoints_inside_window(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every touch lies in [created - lookback, created] and belongs to the opportunity's account."""
    with warehouse.get_connection() as con:
        outside, wrong_account = con.execute(
            f"""SELECT
                count(*) FILTER (WHERE ot.touchpoint_date > ot.opportunity_created_date
                                   OR ot.touchpoint_date < ot.opportunity_created_date - to_days(CAST(ot.lookback_days AS INTEGER))),
                count(*) FILTER (WHERE t.account_id IS DISTINCT FROM ot.account_id)
                FROM {ref(TOUCHPOINTS, 'opportunity_touchpoints')} ot LEFT JOIN {ref(TOUCHPOINTS, 'touchpoints')} t USING (touchpoint_id)"""
        ).fetchone()
    ok = outside == 0 and wrong_account == 0
    return dg.AssetCheckResult(
        passed=ok,
        description="every touch inside its window and account" if ok else f"{outside} outside the window, {wrong_account} on another account",
        metadata={"outside_window": int(outside), "other_account": int(wrong_account)},
    )


@dg.asset_check(asset=OPP_TP, name="unique_opportunity_touchpoint", blocking=True)
def unique_opportunity_touchpoint(warehouse: Warehouse) -> dg.AssetCheckResult:
    """(opportunity_id, touchpoint_id) is unique and touch_order is 1..touch_count without gaps."""
    with warehouse.get_connection() as con:
        dups, bad_order = con.execute(
            f"""SELECT
                (SELECT count(*) FROM (SELECT opportunity_id, touchpoint_id FROM {ref(TOUCHPOINTS, 'opportunity_touchpoints')} GROUP BY ALL HAVING count(*) > 1)),
                (SELECT count(*) FROM (SELECT opportunity_id FROM {ref(TOUCHPOINTS, 'opportunity_touchpoints')} GROUP BY ALL
                    HAVING count(DISTINCT touch_order) <> count(*) OR max(touch_order) <> count(*) OR max(touch_count) <> count(*)))"""
        ).fetchone()
    ok = dups == 0 and bad_order == 0
    return dg.AssetCheckResult(
        passed=ok,
        description="unique and gap-free" if ok else f"{dups} duplicated pairs, {bad_order} opportunities with a broken touch order",
        metadata={"duplicated_pairs": int(dups), "broken_touch_order": int(bad_order)},
    )


@dg.asset_check(asset=TP, name="referential_integrity")
def referential_integrity(warehouse: Warehouse) -> dg.AssetCheckResult:
    """WARN on orphans along touchpoint → contact → account → opportunity (counted and shown, not dropped silently)."""
    with warehouse.get_connection() as con:
        (has_accounts,) = con.execute(f"SELECT count(*) > 0 FROM {ref(SOURCES, 'crm_accounts')}").fetchone()
        counts = dict(
            con.execute(
                f"""SELECT 'marketing_touchpoints_without_contact', count(*) FROM {ref(SOURCES, 'crm_marketing_touchpoints')} ANTI JOIN {ref(SOURCES, 'crm_contacts')} USING (contact_id)
                UNION ALL SELECT 'sales_touchpoints_without_contact', count(*) FROM {ref(SOURCES, 'crm_sales_touchpoints')} ANTI JOIN {ref(SOURCES, 'crm_contacts')} USING (contact_id)
                UNION ALL SELECT 'contacts_without_account', CASE WHEN {has_accounts} THEN count(*) ELSE 0 END FROM {ref(SOURCES, 'crm_contacts')} ANTI JOIN {ref(SOURCES, 'crm_accounts')} USING (account_id)
                UNION ALL SELECT 'opportunities_without_account', CASE WHEN {has_accounts} THEN count(*) ELSE 0 END FROM {ref(SOURCES, 'crm_opportunities')} ANTI JOIN {ref(SOURCES, 'crm_accounts')} USING (account_id)
                UNION ALL SELECT 'opportunities_without_contacts', count(*) FROM {ref(SOURCES, 'crm_opportunities')} ANTI JOIN {ref(SOURCES, 'crm_contacts')} USING (account_id)"""
            ).fetchall()
        )
    orphans = {k: int(v) for k, v in counts.items()}
    bad = {k: v for k, v in orphans.items() if v}
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        description="no orphans" if not bad else "orphans: " + ", ".join(f"{k} {v}" for k, v in bad.items()),
        metadata={**orphans, "accounts_table_present": bool(has_accounts)},
    )


@dg.asset_check(asset=TP, name="channel_coverage")
def touchpoint_channel_coverage(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when too many touchpoints have an unknown channel group."""
    limit = float(thresholds.section("touchpoints")["max_unknown_channel_share"])
    with warehouse.get_connection() as con:
        outcome = quality.unassigned_share(con, ref(TOUCHPOINTS, "touchpoints"), limit, what="touchpoints")
    return outcome_result(outcome, severity=dg.AssetCheckSeverity.WARN)


touchpoint_checks = [
    *build_contract_checks(TOUCHPOINTS, TOUCHPOINT_MODELS),
    touchpoints_inside_window,
    unique_opportunity_touchpoint,
    referential_integrity,
    touchpoint_channel_coverage,
]
