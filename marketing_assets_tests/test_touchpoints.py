"""Opportunity windows, tie-breaks, lead-creation touch and journeys; touchpoint checks failing on bad data."""

import dagster as dg
import duckdb
import pytest

from marketing_assets.constants import TOUCHPOINTS
from marketing_assets.lib.touchpoints import conversion_paths_sql, opportunity_touchpoints_sql
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
