"""Streaming (sharded) generation of the demo data, as ``xlarge`` uses it, at a tiny test scale.

The shards draw their own random streams, so the files differ from a one-shot run of the same scale; what
must hold is everything the one-shot tests check (``test_demo``'s checks run again on the sharded landing
zone), plus: ids unique, every foreign key resolves, the configured row counts, full parts of
``rows_per_file`` rows, and the smaller scales never taking the sharded path.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from marketing_assets.demo import config, generate
from marketing_assets_tests import test_demo as one_shot
from marketing_assets_tests.test_demo import END_DATE, SEED, digest, good_rows

# The one-shot module's fixtures and checks, run again on the sharded landing zone defined below.
manifest, planted, excluded = one_shot.manifest, one_shot.planted, one_shot.excluded
test_every_contract_table_written_with_required_columns = one_shot.test_every_contract_table_written_with_required_columns
test_bad_rows_point_at_real_defects = one_shot.test_bad_rows_point_at_real_defects
test_quarantine_rules_flag_exactly_the_planted_rows = one_shot.test_quarantine_rules_flag_exactly_the_planted_rows
test_bad_row_share_is_about_a_tenth_of_a_percent = one_shot.test_bad_row_share_is_about_a_tenth_of_a_percent
test_duplicate_contacts_truth = one_shot.test_duplicate_contacts_truth
test_account_matches_reference_existing_ids = one_shot.test_account_matches_reference_existing_ids
test_finance_matches_platform_spend_except_planted_month = one_shot.test_finance_matches_platform_spend_except_planted_month
test_weekly_erp_net_revenue_equals_truth = one_shot.test_weekly_erp_net_revenue_equals_truth
test_crm_won_vs_erp_discrepancy_only_in_planted_month = one_shot.test_crm_won_vs_erp_discrepancy_only_in_planted_month
test_end_date_respected = one_shot.test_end_date_respected
test_unattributed_share_and_lift_tests = one_shot.test_unattributed_share_and_lift_tests

TINY = dataclasses.replace(config.SCALES["small"], name="tiny_sharded", shard_accounts=160, rows_per_file=9_000)


@pytest.fixture(scope="module")
def tiny_scale():
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(config.SCALES, TINY.name, TINY)
        yield TINY.name


@pytest.fixture(scope="module")
def landing(tmp_path_factory, tiny_scale) -> Path:
    root = tmp_path_factory.mktemp("demo_sharded")
    generate(root, scale=tiny_scale, seed=SEED, end_date=END_DATE)
    return root


def test_sharded_generation_is_deterministic(landing, tiny_scale, tmp_path):
    generate(tmp_path, scale=tiny_scale, seed=SEED, end_date=END_DATE)
    assert digest(tmp_path) == digest(landing)


def test_shards_and_configured_row_counts(manifest):
    assert manifest["shards"] == 4  # 620 accounts in shards of at most 160
    assert manifest["scale"] == TINY.name
    assert manifest["crm"]["accounts"] == manifest["rows_per_table"]["crm_accounts"] == TINY.n_accounts
    assert manifest["crm"]["contacts"] + manifest["bad_rows"]["crm_contacts"] == manifest["rows_per_table"]["crm_contacts"]
    assert manifest["crm"]["opportunities"] + manifest["bad_rows"]["crm_opportunities"] == \
        manifest["rows_per_table"]["crm_opportunities"]
    tp = manifest["touchpoints"]
    for table, n in (("crm_marketing_touchpoints", tp["marketing"]), ("crm_sales_touchpoints", tp["sales"]),
                     ("web_sessions", tp["web_sessions"])):
        assert manifest["rows_per_table"][table] == n + manifest["bad_rows"][table] + manifest["exact_duplicates"][table]


def test_parts_hold_rows_per_file_rows(landing, manifest, planted):
    bad, dups = planted
    extra: dict[str, int] = {}
    for r in bad + dups:
        extra[r["source_file"]] = extra.get(r["source_file"], 0) + 1
    parts = sorted(f for f in manifest["files"] if "_part_" in f)
    assert {p.split("_part_")[0] for p in parts} >= {"web/sessions", "crm/marketing_touchpoints", "erp/orders"}
    for stem in {p.split("_part_")[0] for p in parts}:
        mine = [p for p in parts if p.startswith(stem + "_part_")]
        assert mine == [f"{stem}_part_{i:03d}.csv" for i in range(1, len(mine) + 1)]
        generated = [manifest["files"][p] - extra.get(p, 0) for p in mine]
        assert all(n == TINY.rows_per_file for n in generated[:-1]), stem
        assert 0 < generated[-1] <= TINY.rows_per_file, stem


def _ids(rows: list[dict], column: str) -> list[str]:
    return [r[column] for r in rows]


def test_ids_unique_and_foreign_keys_resolve(landing, excluded):
    rows = {t: good_rows(landing, t, *excluded) for t in (
        "crm_accounts", "crm_contacts", "crm_marketing_touchpoints", "crm_sales_touchpoints", "crm_opportunities",
        "web_sessions", "erp_customers", "erp_products", "erp_orders")}
    for table, key in (("crm_accounts", "account_id"), ("crm_contacts", "contact_id"),
                       ("crm_marketing_touchpoints", "marketing_touchpoint_id"),
                       ("crm_sales_touchpoints", "sales_touchpoint_id"), ("crm_opportunities", "opportunity_id"),
                       ("web_sessions", "session_id"), ("erp_customers", "customer_id")):
        ids = _ids(rows[table], key)
        assert len(ids) == len(set(ids)), table
    accounts = set(_ids(rows["crm_accounts"], "account_id"))
    contacts = set(_ids(rows["crm_contacts"], "contact_id"))
    assert set(_ids(rows["crm_contacts"], "account_id")) <= accounts
    assert set(_ids(rows["crm_opportunities"], "account_id")) <= accounts
    assert set(_ids(rows["crm_marketing_touchpoints"], "contact_id")) <= contacts
    assert set(_ids(rows["crm_sales_touchpoints"], "contact_id")) <= contacts
    assert set(_ids(rows["erp_orders"], "customer_id")) <= set(_ids(rows["erp_customers"], "customer_id"))
    assert set(_ids(rows["erp_orders"], "product_id")) <= set(_ids(rows["erp_products"], "product_id"))
    names = [r["customer_name"] for r in rows["erp_customers"] if r["website"]]
    assert len(names) == len(set(names))  # matched and business web-shop customers: one name each
    lines = {(r["order_id"], r["line_number"]) for r in rows["erp_orders"]}
    assert len(lines) == len(rows["erp_orders"])
    sales = {r["order_id"] for r in rows["erp_orders"] if r["transaction_type"] == "sale"}
    returns = [r for r in rows["erp_orders"] if r["transaction_type"] == "return"]
    assert returns and {r["original_order_id"] for r in returns} <= sales
    # every shard's accounts and customers appear: ids run without gaps across shard boundaries
    assert sorted(accounts) == [f"A{i:07d}" for i in range(1, TINY.n_accounts + 1)]
    truth_contacts = json.loads((landing / "_truth" / "manifest.json").read_text())["crm"]["contacts"]
    with (landing / "_truth" / "duplicate_contacts.csv").open(encoding="utf-8", newline="") as fh:
        assert [r["contact_id"] for r in csv.DictReader(fh)] == [f"C{i:08d}" for i in range(1, truth_contacts + 1)]


def test_one_anomaly_per_kind_across_shards(landing):
    anomalies = json.loads((landing / "_truth" / "anomalies.json").read_text())["anomalies"]
    web = [a for a in anomalies if a["kind"] == "web_conversion_rate_drop"]
    assert len(web) == 1 and web[0]["conversion_rate"] < web[0]["normal_conversion_rate"] / 3
    discrepancy = json.loads((landing / "_truth" / "discrepancies.json").read_text())["erp_vs_crm_won_revenue"]
    assert discrepancy["account_id"].startswith("A")


@pytest.mark.parametrize("scale", ["small", "default", "large"])
def test_smaller_scales_keep_the_one_shot_path(scale):
    assert config.SCALES[scale].shard_accounts is None
    assert config.SCALES["xlarge"].shard_accounts
