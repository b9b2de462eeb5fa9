"""Identity checks: contracts plus the business rules of each reconciled identity table."""

import dagster as dg

from marketing_assets.checks.contracts import build_contract_checks, outcome_result
from marketing_assets.constants import IDENTITY, SOURCES
from marketing_assets.identity import TRUTH_DIR
from marketing_assets.lib import identity as idl
from marketing_assets.lib import quality
from marketing_assets.lib.refs import ref
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse
from marketing_assets.schemas import IDENTITY_MODELS


def key(table: str) -> dg.AssetKey:
    return dg.AssetKey([IDENTITY, table])


@dg.asset_check(asset=key("channel_map"), name="channel_coverage")
def channel_coverage(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when too many web sessions fall in no channel (Unassigned): a UTM convention the mapping misses."""
    limit = float(thresholds.section("identity")["max_unassigned_share"])
    with warehouse.get_connection() as con:
        outcome = quality.unassigned_share(
            con, ref(IDENTITY, "channel_map"), limit, weight="rows", where="source_kind = 'web'",
            show=("utm_source", "utm_medium", "referrer_host"), what="web sessions",
        )
    return outcome_result(outcome, severity=dg.AssetCheckSeverity.WARN)


@dg.asset_check(asset=key("contacts_resolved"), name="identity_map_consistent", blocking=True)
def identity_map_consistent(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Every staged contact appears once, and every canonical id is a contact that is its own canonical."""
    with warehouse.get_connection() as con:
        missing, extra, not_canonical = con.execute(
            f"""SELECT
                (SELECT count(*) FROM {ref(SOURCES, 'crm_contacts')} c ANTI JOIN {ref(IDENTITY, 'contacts_resolved')} r USING (contact_id)),
                (SELECT count(*) - count(DISTINCT contact_id) FROM {ref(IDENTITY, 'contacts_resolved')}),
                (SELECT count(*) FROM {ref(IDENTITY, 'contacts_resolved')} r
                   LEFT JOIN {ref(IDENTITY, 'contacts_resolved')} k ON k.contact_id = r.canonical_contact_id
                   WHERE k.contact_id IS NULL OR k.canonical_contact_id <> k.contact_id)"""
        ).fetchone()
    ok = missing == 0 and extra == 0 and not_canonical == 0
    return dg.AssetCheckResult(
        passed=ok,
        description="one canonical id per contact" if ok else f"{missing} missing, {extra} repeated, {not_canonical} pointing to a non-canonical id",
        metadata={"contacts_missing": int(missing), "contacts_repeated": int(extra), "bad_canonical_refs": int(not_canonical)},
    )


def _truth_check(
    warehouse: Warehouse, landing: LandingZone, truth_file: str, predicted: str, floors: tuple[float, float], pairwise: bool
) -> dg.AssetCheckResult:
    """Precision / recall of the ``predicted`` table against a planted-truth file, counted in the warehouse."""
    path = landing.root / TRUTH_DIR / truth_file
    if not path.is_file():
        return dg.AssetCheckResult(passed=True, description="skipped: no planted ground truth in the landing zone", metadata={"skipped": True})
    measure = idl.pairwise_precision_recall if pairwise else idl.pair_precision_recall
    with warehouse.get_connection() as con:
        pr = measure(con, predicted, idl.truth_csv_sql(path))
    ok = pr["precision"] >= floors[0] and pr["recall"] >= floors[1]
    return dg.AssetCheckResult(
        passed=ok,
        description=f"precision {pr['precision']:.4f} (floor {floors[0]}), recall {pr['recall']:.4f} (floor {floors[1]})",
        metadata={**{k: round(v, 5) for k, v in pr.items()}, "min_precision": floors[0], "min_recall": floors[1]},
    )


@dg.asset_check(asset=key("contacts_resolved"), name="truth_precision_recall")
def contacts_truth_precision_recall(warehouse: Warehouse, landing: LandingZone, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Pairwise precision / recall of the deduplication against planted truth (demo data only; skipped otherwise)."""
    t = thresholds.section("identity")
    floors = (t["min_contact_precision"], t["min_contact_recall"])
    return _truth_check(warehouse, landing, "duplicate_contacts.csv", ref(IDENTITY, "contacts_resolved"), floors, True)


@dg.asset_check(asset=key("accounts_resolved"), name="truth_precision_recall")
def accounts_truth_precision_recall(warehouse: Warehouse, landing: LandingZone, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Precision / recall of CRM account ↔ ERP customer pairs against planted truth (demo data only; skipped otherwise)."""
    t = thresholds.section("identity")
    floors = (t["min_account_precision"], t["min_account_recall"])
    return _truth_check(warehouse, landing, "account_matches.csv", ref(IDENTITY, "accounts_resolved"), floors, False)


@dg.asset_check(asset=key("accounts_resolved"), name="one_account_per_customer", blocking=True)
def one_account_per_customer(warehouse: Warehouse) -> dg.AssetCheckResult:
    """An ERP customer is matched to at most one CRM account."""
    with warehouse.get_connection() as con:
        dup = con.execute(
            f"""SELECT customer_id, count(*) AS accounts FROM {ref(IDENTITY, 'accounts_resolved')}
                WHERE customer_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1 ORDER BY accounts DESC LIMIT 10"""
        ).df()
    return dg.AssetCheckResult(
        passed=dup.empty,
        description="every ERP customer matched at most once" if dup.empty else f"{len(dup)} customer(s) matched to several accounts",
        metadata={"sample": dup.astype(str).to_dict("records")},
    )


@dg.asset_check(asset=key("accounts_resolved"), name="won_account_match_rate")
def won_account_match_rate(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Share of CRM accounts with won opportunities that match an ERP customer (skipped without ERP customers)."""
    floor = float(thresholds.section("identity")["min_won_account_match_rate"])
    with warehouse.get_connection() as con:
        (customers,) = con.execute(f"SELECT count(*) FROM {ref(SOURCES, 'erp_customers')}").fetchone()
        won, matched = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE account_id IN (
                    SELECT account_id FROM {ref(IDENTITY, 'accounts_resolved')} WHERE customer_id IS NOT NULL AND account_id IS NOT NULL))
                FROM (SELECT DISTINCT account_id FROM {ref(SOURCES, 'crm_opportunities')} WHERE is_won)"""
        ).fetchone()
    if customers == 0 or won == 0:
        return dg.AssetCheckResult(passed=True, description="skipped: no ERP customers or no won opportunities", metadata={"skipped": True})
    rate = matched / won
    return dg.AssetCheckResult(
        passed=rate >= floor,
        description=f"{rate:.2%} of {won} won accounts matched to ERP (floor {floor:.0%})",
        metadata={"won_accounts": int(won), "matched": int(matched), "match_rate": round(rate, 5), "floor": floor},
    )


@dg.asset_check(asset=key("campaigns_resolved"), name="unique_ad_campaigns", blocking=True)
def unique_ad_campaigns(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Each ad campaign appears once (its utm_campaign match is unambiguous)."""
    with warehouse.get_connection() as con:
        (dups,) = con.execute(
            f"""SELECT count(*) FROM (SELECT platform, account_id, campaign_id FROM {ref(IDENTITY, 'campaigns_resolved')}
                WHERE campaign_id IS NOT NULL GROUP BY ALL HAVING count(*) > 1)"""
        ).fetchone()
    return dg.AssetCheckResult(passed=dups == 0, description=f"{dups} ad campaign(s) listed more than once", metadata={"duplicated": int(dups)})


identity_checks = [
    *build_contract_checks(IDENTITY, IDENTITY_MODELS),
    channel_coverage,
    identity_map_consistent,
    contacts_truth_precision_recall,
    accounts_truth_precision_recall,
    one_account_per_customer,
    won_account_match_rate,
    unique_ad_campaigns,
]
