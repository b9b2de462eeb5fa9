"""GA4 default channel grouping and CRM label mapping, case by case."""

import duckdb
import pytest

from marketing_assets.lib.channels import crm_label_group_sql, load_channel_config, web_channel_sql

CFG = load_channel_config()


def classify(src=None, med=None, camp=None, gclid=None, fbclid=None, ref=None, cfg=CFG):
    name_sql, group_sql = web_channel_sql(cfg)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s AS SELECT ?::VARCHAR utm_source, ?::VARCHAR utm_medium, ?::VARCHAR utm_campaign, "
        "?::VARCHAR gclid, ?::VARCHAR fbclid, ?::VARCHAR page_referrer",
        [src, med, camp, gclid, fbclid, ref],
    )
    return con.execute(f"SELECT {name_sql}, {group_sql} FROM s").fetchone()


@pytest.mark.parametrize(
    ("kwargs", "group"),
    [
        ({}, "Direct"),
        ({"ref": "https://www.google.com/"}, "Organic Search"),
        ({"ref": "https://www.linkedin.com/feed/"}, "Organic Social"),
        ({"fbclid": "IwAR0"}, "Organic Social"),
        ({"ref": "https://news.example.org/post"}, "Referral"),
        ({"gclid": "Cj0K"}, "Paid Search"),
        ({"src": "Google ", "med": "CPC"}, "Paid Search"),
        ({"src": "GOOGLE", "med": "ppc"}, "Paid Search"),
        ({"src": "bing", "med": "paid"}, "Paid Search"),
        ({"src": "facebook", "med": "paid_social"}, "Paid Social"),
        ({"src": "linkedin", "med": "cpc"}, "Paid Social"),
        ({"src": "youtube", "med": "cpv"}, "Paid Video"),
        ({"src": "google", "med": "display"}, "Display"),
        ({"src": "taboola", "med": "cpc"}, "Paid Other"),
        ({"src": "google", "med": "cpc", "camp": "shopping_feed"}, "Paid Shopping"),
        ({"src": "google", "med": "organic"}, "Organic Search"),
        ({"src": "linkedin", "med": "social"}, "Organic Social"),
        ({"src": "newsletter", "med": "Email"}, "Email"),
        ({"src": "hubspot", "med": "e-mail"}, "Email"),
        ({"src": "blog", "med": "referral"}, "Referral"),
        ({"src": "x", "med": "cross-network", "camp": "pmax cross-network"}, "Cross-network"),
        ({"src": "somewhere", "med": "weird"}, "Unassigned"),
    ],
)
def test_ga4_default_channel_grouping(kwargs, group):
    name, got = classify(**kwargs)
    assert got == group and name == group


def test_override_sets_name_and_group_before_ga4_rules():
    assert classify(src="G2", med="cpc") == ("Review Sites", "Referral")
    assert classify(src="acme", med=" Partner ") == ("Partner", "Referral")


def test_overrides_are_configurable():
    cfg = {**CFG, "overrides": [{"match": {"utm_source": "google", "utm_medium": "cpc"}, "channel_name": "Google Ads", "channel_group": "Paid Search"}]}
    assert classify(src="google", med="cpc", cfg=cfg) == ("Google Ads", "Paid Search")
    assert classify(src="bing", med="cpc", cfg=cfg) == ("Paid Search", "Paid Search")


@pytest.mark.parametrize(
    ("label", "group"),
    [("Paid Search", "Paid Search"), (" paid search ", "Paid Search"), ("Webinar", "Events"), ("Outbound Call", "Outbound Sales"), ("Carrier pigeon", "Unassigned")],
)
def test_crm_labels_map_to_groups(label, group):
    con = duckdb.connect()
    assert con.execute(f"SELECT {crm_label_group_sql(CFG, '?')}", [label]).fetchone()[0] == group
