"""Opportunity windows, tie-breaks, lead-creation touch and journeys; touchpoint checks failing on bad data."""

import dagster as dg
import duckdb
import pytest

from marketing_assets.constants import TOUCHPOINTS
from marketing_assets.lib.touchpoints import conversion_paths_sql, lead_touches_sql, opportunity_touchpoints_sql
from marketing_assets_tests.conftest import checks_after_tampering


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute(
        """CREATE TABLE opps AS SELECT * FROM (VALUES
            ('o1', 'a1', 100.0, TIMESTAMP '2021-05-10 22:25:39', 'SMB'),
            ('o2', 'a2', 50.0, TIMESTAMP '2021-06-01 00:00:00', 'Enterprise'),
            ('o3', 'a3', 10.0, TIMESTAMP '2021-06-01 00:00:00', 'SMB')
        ) t(opportunity_id, account_id, pipeline_amount, opportunity_created_date, sales_segment)"""
    )
    c.execute(
        """CREATE TABLE tps AS SELECT *, CASE touchpoint_type WHEN 'marketing' THEN 1 WHEN 'sales' THEN 2 ELSE 3 END AS type_order,
                  channel_group = 'Direct' AS is_direct, contact_id AS canonical_contact_id, NULL AS campaign_key, NULL AS utm_campaign
           FROM (VALUES
            ('t_edge', 'marketing', 'Email', 'Email', 'c1', 'a1', TIMESTAMP '2021-02-09 22:25:39', NULL::TIMESTAMP),
            ('t_early', 'marketing', 'Email', 'Email', 'c1', 'a1', TIMESTAMP '2021-02-09 22:25:38', NULL),
            ('t_b', 'sales', 'Outbound Call', 'Outbound Sales', 'c1', 'a1', TIMESTAMP '2021-04-01 10:00:00', TIMESTAMP '2021-04-20'),
            ('t_a', 'marketing', 'Paid Search', 'Paid Search', 'c2', 'a1', TIMESTAMP '2021-04-01 10:00:00', TIMESTAMP '2021-04-01 10:00:00'),
            ('t_web', 'web', 'Direct', 'Direct', 'c2', 'a1', TIMESTAMP '2021-04-01 10:00:00', NULL),
            ('t_last', 'marketing', 'Webinar', 'Events', 'c1', 'a1', TIMESTAMP '2021-05-10 22:25:39', NULL),
            ('t_after', 'marketing', 'Webinar', 'Events', 'c1', 'a1', TIMESTAMP '2021-05-10 22:25:40', NULL),
            ('t_other', 'marketing', 'Email', 'Email', 'c3', 'a2', TIMESTAMP '2021-05-20 00:00:00', NULL),
            ('t_old', 'marketing', 'Email', 'Email', 'c9', 'a9', TIMESTAMP '2020-01-01 00:00:00', NULL),
            ('t_old2', 'marketing', 'Display', 'Display', 'c9', 'a9', TIMESTAMP '2020-01-05 00:00:00', NULL),
            ('t_new', 'marketing', 'Display', 'Display', 'c9', 'a9', TIMESTAMP '2021-01-05 00:00:00', NULL)
           ) t(touchpoint_id, touchpoint_type, channel_name, channel_group, contact_id, account_id, touchpoint_date, lead_date)"""
    )
    yield c
    c.close()


def test_window_is_inclusive_at_both_ends_and_ties_break_by_type_then_id(con):
    rows = con.execute(
        f"SELECT opportunity_id, touchpoint_id, touch_order, touch_count, is_lead_creation FROM ({opportunity_touchpoints_sql('opps', 'tps', 90)}) ORDER BY 1, 3"
    ).fetchall()
    assert rows == [
        # exactly 90 days before is in, one second earlier is out; one second after creation is out
        ("o1", "t_edge", 1, 5, False),
        # same timestamp: marketing before sales before web; t_a is the last touch at or before the first lead date
        ("o1", "t_a", 2, 5, True),
        ("o1", "t_b", 3, 5, False),
        ("o1", "t_web", 4, 5, False),
        ("o1", "t_last", 5, 5, False),
        ("o2", "t_other", 1, 1, False),
    ]


def test_lead_touches_kept_in_a_table_give_the_same_rows(con):
    # o1: t_a, the latest touch at or before the first lead date (c2's, 2021-04-01 10:00), ahead of t_b and t_web at
    # the same second (c2 became the lead; marketing first); o2's only contact has no lead date: no lead touch
    con.execute(f"CREATE TEMP TABLE lead AS {lead_touches_sql('opps', 'tps', [90])}")
    assert con.execute("SELECT * FROM lead").fetchall() == [("o1", "t_a")]
    inline = con.execute(f"SELECT * FROM ({opportunity_touchpoints_sql('opps', 'tps', 90)}) ORDER BY ALL").fetchall()
    kept = con.execute(f"SELECT * FROM ({opportunity_touchpoints_sql('opps', 'tps', 90, lead_touches='lead')}) ORDER BY ALL").fetchall()
    assert kept == inline and sum(row[-3] for row in kept) == 1


def test_window_length_is_configurable(con):
    ids = [r[0] for r in con.execute(f"SELECT touchpoint_id FROM ({opportunity_touchpoints_sql('opps', 'tps', 7)}) WHERE opportunity_id = 'o1'").fetchall()]
    assert ids == ["t_last"]


def test_conversion_paths_converting_and_closed_non_converting(con):
    con.execute(f"CREATE TABLE ot AS {opportunity_touchpoints_sql('opps', 'tps', 90)}")
    got = con.execute(
        f"SELECT journey_kind, journey_id, path, conversions, value, nulls FROM ({conversion_paths_sql('ot', 'tps', 'opps', 90, '2021-06-30')}) ORDER BY 1, 2"
    ).fetchall()
    assert got == [
        # one second too early for o1's window: a journey of its own that did not convert
        ("non_converting", "a1#1", "Email", 0, 0.0, 1),
        # a9's touches split where the gap exceeds 90 days; its last journey is older than 90 days before the data end
        ("non_converting", "a9#1", "Email > Display", 0, 0.0, 1),
        ("non_converting", "a9#2", "Display", 0, 0.0, 1),
        ("opportunity", "o1", "Email > Paid Search > Outbound Call > Direct > Webinar", 1, 100.0, 0),
        ("opportunity", "o2", "Email", 1, 50.0, 0),
    ]


def evals(result, asset):
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey([TOUCHPOINTS, asset])}


def test_touchpoint_assets_on_demo_data(demo_graph):
    result, tmp, _ = demo_graph
    for asset in ("touchpoints", "opportunity_touchpoints", "conversion_paths"):
        assert all(e.passed for e in evals(result, asset).values() if e.severity == dg.AssetCheckSeverity.ERROR), asset
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        types = dict(con.execute("SELECT touchpoint_type, count(*) FROM touchpoints.touchpoints GROUP BY ALL").fetchall())
        opps, with_tp = con.execute(
            "SELECT (SELECT count(*) FROM sources.crm_opportunities), (SELECT count(DISTINCT opportunity_id) FROM touchpoints.opportunity_touchpoints)"
        ).fetchone()
    assert set(types) == {"marketing", "sales", "web"}
    assert 0.85 < with_tp / opps < 1.0  # a few opportunities have no touch in 90 days: they stay unattributed


TAMPER = [
    ("opportunity_touchpoints", "UPDATE touchpoints.opportunity_touchpoints SET touchpoint_date = opportunity_created_date + INTERVAL 1 DAY WHERE rowid = 0", "touchpoints_inside_window"),
    ("opportunity_touchpoints", "INSERT INTO touchpoints.opportunity_touchpoints SELECT * FROM touchpoints.opportunity_touchpoints LIMIT 1", "unique_opportunity_touchpoint"),
    ("opportunity_touchpoints", "UPDATE touchpoints.opportunity_touchpoints SET touch_order = 0 WHERE rowid = 0", "contract"),
    ("touchpoints", "UPDATE touchpoints.touchpoints SET channel_group = 'Unassigned' WHERE rowid % 5 = 0", "channel_coverage"),
    ("touchpoints", "UPDATE touchpoints.touchpoints SET touchpoint_type = 'fax' WHERE rowid = 0", "contract"),
    ("touchpoints", "DELETE FROM sources.crm_contacts WHERE rowid < 3", "referential_integrity"),
    ("conversion_paths", "UPDATE touchpoints.conversion_paths SET conversions = 2 WHERE rowid = 0", "contract"),
]


@pytest.mark.parametrize(("asset", "sql", "check"), TAMPER, ids=[f"{a}-{c}" for a, _, c in TAMPER])
def test_each_touchpoint_check_fails_on_bad_data(demo_graph, tmp_path, asset, sql, check):
    ev = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([TOUCHPOINTS, asset]), sql)[check]
    assert not ev.passed, ev.description


def test_touchpoint_channels_and_campaign_keys_by_hand():
    """Channels and campaign keys are looked up once per distinct label / signature / campaign and joined back: every
    touch still gets its own value, NULL labels and campaigns included, blank click ids count as none."""
    from marketing_assets.lib.channels import web_signature_sql
    from marketing_assets.lib.touchpoints import touchpoints_sql

    c = duckdb.connect()
    c.execute("""CREATE TABLE mkt AS SELECT * FROM (VALUES
        ('m1', 'c1', TIMESTAMP '2021-01-01', '  Paid   SEARCH ', 'google', 'cpc', ' Brand Search-US '),
        ('m2', 'c1', TIMESTAMP '2021-01-02', ' Podcast ', NULL, NULL, NULL),
        ('m3', 'c9', TIMESTAMP '2021-01-03', 'paid search', NULL, NULL, NULL)
        ) t(marketing_touchpoint_id, contact_id, marketing_touchpoint_date, channel_name, utm_source, utm_medium, utm_campaign)""")
    c.execute("""CREATE TABLE sales AS SELECT * FROM (VALUES ('s1', 'c1', TIMESTAMP '2021-01-04', NULL::VARCHAR))
        t(sales_touchpoint_id, contact_id, sales_touchpoint_date, channel_name)""")
    c.execute("""CREATE TABLE sessions AS SELECT * FROM (VALUES
        ('w1', 'k1', TIMESTAMP '2021-01-05', 'google', 'cpc', 'brand', '  ', NULL, NULL),
        ('w2', 'k1', TIMESTAMP '2021-01-06', 'google', 'cpc', 'brand', 'abc', NULL, NULL),
        ('w3', 'k2', TIMESTAMP '2021-01-07', NULL, NULL, NULL, NULL, NULL, 'https://www.example.com/x')
        ) t(session_id, client_id, session_start, utm_source, utm_medium, utm_campaign, gclid, fbclid, page_referrer)""")
    c.execute("CREATE TABLE resolved AS SELECT * FROM (VALUES ('c1', 'a1', 'c1'), ('c9', 'a9', 'c9')) t(contact_id, account_id, canonical_contact_id)")
    c.execute("CREATE TABLE contacts AS SELECT * FROM (VALUES ('c1', TIMESTAMP '2021-01-03')) t(contact_id, lead_date)")
    c.execute("CREATE TABLE clients AS SELECT * FROM (VALUES ('k1', 'c1'), ('k2', 'c9')) t(client_id, canonical_contact_id)")
    sig = web_signature_sql(utm_source="s", utm_medium="m", utm_campaign="n", gclid="g", fbclid="f", referrer="r")["signature_id"]
    c.execute(f"""CREATE TABLE channel_map AS
        SELECT 'crm_label' AS source_kind, 'paid search' AS crm_label_key, NULL AS signature_id, 'Paid Search' AS channel_name, 'Paid' AS channel_group
        UNION ALL SELECT 'web', NULL, {sig}, channel_name, channel_group FROM (VALUES
            ('google', 'cpc', 'brand', NULL, NULL, NULL, 'Organic-ish', 'Organic'),
            ('google', 'cpc', 'brand', 'x', NULL, NULL, 'Paid Search', 'Paid'),
            (NULL, NULL, NULL, NULL, NULL, 'https://example.com', 'Referral', 'Referral')
        ) t(s, m, n, g, f, r, channel_name, channel_group)""")
    sql = touchpoints_sql("mkt", "sales", "sessions", "resolved", "clients", "channel_map", "contacts")
    got = {r[0]: r[1:] for r in c.execute(
        f"SELECT touchpoint_id, channel_name, channel_group, campaign_key, is_direct, type_order FROM ({sql})").fetchall()}
    assert got == {
        "m1": ("Paid Search", "Paid", "brand_search_us", False, 1),
        "m2": ("Podcast", "Unassigned", None, False, 1),
        "m3": ("Paid Search", "Paid", None, False, 1),
        "s1": (None, "Unassigned", None, False, 2),
        "web:w1": ("Organic-ish", "Organic", "brand", False, 3),  # a blank gclid is no gclid
        "web:w2": ("Paid Search", "Paid", "brand", False, 3),
        "web:w3": ("Referral", "Referral", None, False, 3),
    }
