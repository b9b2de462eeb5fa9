"""The model comparison from one windowing and one credit pass equals the per-window computation.

The reference is the per-window definition: ``opportunity_touchpoints_sql(w)`` credited by
``attribution_credits_sql`` and rolled up per model from the credits unpivoted to long form,
one window at a time. Touches sit on the window edges (exactly ``w`` days, ``w`` days and one
second, ``w + 1`` days before the opportunity).
"""

from __future__ import annotations

import datetime as dt
import math
import random

import dagster as dg
import duckdb
import pytest

from marketing_assets.attribution import ComparisonConfig, attribution_model_comparison
from marketing_assets.lib.attribution import attribution_credits_sql, rule_models
from marketing_assets.lib.rollups import UNATTRIBUTED, rollup_sql
from marketing_assets.lib.touchpoints import opportunity_touchpoints_by_window_sql, opportunity_touchpoints_sql
from marketing_assets.resources import Warehouse

T0 = dt.datetime(2026, 3, 31)
RULE_CREDITS = [f"{m}_credit" for m in rule_models()]
OPPORTUNITY_COLUMNS = ("opportunity_id VARCHAR, account_id VARCHAR, pipeline_amount DECIMAL(38, 10), opportunity_created_date TIMESTAMP,"
                       " sales_segment VARCHAR, is_won BOOLEAN, won_amount DECIMAL(38, 10), closed_date TIMESTAMP")
TOUCH_COLUMNS = ("touchpoint_id VARCHAR, touchpoint_type VARCHAR, contact_id VARCHAR, canonical_contact_id VARCHAR, account_id VARCHAR,"
                 " touchpoint_date TIMESTAMP, channel_name VARCHAR, channel_group VARCHAR, utm_campaign VARCHAR, lead_date TIMESTAMP,"
                 " type_order INTEGER, is_direct BOOLEAN, campaign_key VARCHAR")


def before(days: float, seconds: int = 0) -> dt.datetime:
    return T0 - dt.timedelta(days=days, seconds=seconds)


def touch(tid, account, when, channel, ttype="marketing", direct=False, lead_date=None, contact="c1"):
    order = {"marketing": 1, "sales": 2}.get(ttype, 3)
    return (tid, ttype, contact, contact, account, when, channel, "Direct" if direct else channel, None, lead_date, order, direct, None)


def load(con, opportunities, touches, opportunities_table="opps", touches_table="tps"):
    con.execute(f"CREATE OR REPLACE TABLE {opportunities_table} ({OPPORTUNITY_COLUMNS})")
    con.execute(f"CREATE OR REPLACE TABLE {touches_table} ({TOUCH_COLUMNS})")
    con.executemany(f"INSERT INTO {opportunities_table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", opportunities)
    if touches:
        con.executemany(f"INSERT INTO {touches_table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", touches)


# o1: touches 31 d (no window), exactly 30 d (30 only), 8 d = 7 + 1 (30 only), exactly 7 d and 1 d (both windows);
# its contact became a lead 8 days before, so its lead-creation touch is the 8-day one in the 30-day window and
# there is none in the 7-day window. The last two touches are direct.
HAND_OPPORTUNITIES = [
    ("o1", "a1", 1000, T0, "SMB", True, 1000, T0),
    ("o2", "a2", 500, T0, "Enterprise", False, None, None),  # one touch 7 days and 1 second before: 30-day window only
    ("o3", "a3", 200, T0, "SMB", False, None, None),  # no touch at all
]
HAND_TOUCHES = [
    touch("tA", "a1", before(31), "Display", lead_date=before(8)),
    touch("tB", "a1", before(30), "Paid Search", lead_date=before(8)),
    touch("tC", "a1", before(8), "Email", lead_date=before(8)),
    touch("tD", "a1", before(7), "Direct", direct=True, lead_date=before(8)),
    touch("tE", "a1", before(1), "Direct", ttype="web", direct=True, lead_date=before(8)),
    touch("tF", "a2", before(7, seconds=1), "Email"),
]


def one_pass_credits(con, windows, **kwargs):
    con.execute(f"CREATE OR REPLACE VIEW ot_all AS SELECT * EXCLUDE (touch_order, touch_count) FROM ({opportunity_touchpoints_by_window_sql('opps', 'tps', windows)})")
    attribution_credits_sql(con, "ot_all", "credits_all", partition_by=("lookback_days",), **kwargs)
    return con.execute("SELECT * FROM credits_all ORDER BY lookback_days, opportunity_id, touch_order").df()


def per_window_credits(con, window, **kwargs):
    con.execute(f"CREATE OR REPLACE TABLE ot_{window} AS SELECT * EXCLUDE (touch_order, touch_count) FROM ({opportunity_touchpoints_sql('opps', 'tps', window)})")
    attribution_credits_sql(con, f"ot_{window}", f"credits_{window}", **kwargs)
    return con.execute(f"SELECT * FROM credits_{window} ORDER BY opportunity_id, touch_order").df()


def reference_rollup(con, window) -> dict[tuple[str, str], float]:
    """Per-window pipeline by model × channel as the comparison defined it: credits unpivoted, then one sum per model."""
    cols = ", ".join(RULE_CREDITS)
    rows = con.execute(
        f"""SELECT replace(model, '_credit', ''), channel_name, sum(credit)
            FROM (UNPIVOT (SELECT channel_name, {cols} FROM credits_{window}) ON {cols} INTO NAME model VALUE credit) GROUP BY ALL
            UNION ALL
            SELECT m.model, '{UNATTRIBUTED}', sum(CAST(o.pipeline_amount AS DOUBLE))
            FROM opps o ANTI JOIN (SELECT DISTINCT opportunity_id FROM credits_{window}) USING (opportunity_id)
            CROSS JOIN (SELECT unnest({list(rule_models())}) AS model) m GROUP BY ALL"""
    ).fetchall()
    return {(m, ch): v for m, ch, v in rows}


def assert_one_pass_equals_per_window(con, windows):
    together = one_pass_credits(con, windows)
    assert sorted(together["lookback_days"].unique()) == sorted(w for w in windows if not per_window_credits(con, w).empty)
    for w in windows:
        alone = per_window_credits(con, w)
        mine = together[together["lookback_days"] == w].drop(columns="lookback_days").reset_index(drop=True)
        alone = alone.drop(columns="lookback_days")
        assert list(mine.columns) == list(alone.columns)
        for c in mine.columns:
            if c in RULE_CREDITS:
                assert mine[c].to_numpy() == pytest.approx(alone[c].to_numpy(), rel=1e-12), (w, c)
            else:
                assert mine[c].tolist() == alone[c].tolist(), (w, c)
    got = con.execute(f"SELECT lookback_days, model, channel_name, pipeline_amount FROM ({rollup_sql('credits_all', 'opps', rule_models(), ['channel_name'], windows=windows)})").fetchall()
    expected = {(w, m, ch): v for w in windows for (m, ch), v in reference_rollup(con, w).items()}
    assert {k[:3] for k in got} == set(expected)
    for w, m, ch, v in got:
        assert v == pytest.approx(expected[(w, m, ch)], rel=1e-12, abs=1e-9), (w, m, ch)


def test_hand_made_edges_match_the_per_window_computation():
    con = duckdb.connect()
    load(con, HAND_OPPORTUNITIES, HAND_TOUCHES)
    assert_one_pass_equals_per_window(con, [7, 30])
    assert_one_pass_equals_per_window(con, [7, 30, 90])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_journeys_on_the_edges_match_the_per_window_computation(seed):
    """Many opportunities per account, touches on and next to every window edge, ties on the same second, leads."""
    rng = random.Random(seed)
    windows = [7, 30, 90]
    opportunities = [(f"o{i}", f"a{i % 7}", rng.choice([0, 100, 250.5, 1000]), before(rng.choice([0, 3, 10, 40])),
                      rng.choice(["SMB", "Enterprise"]), rng.random() < 0.4, 10, T0) for i in range(25)]
    offsets = [(w + d, s) for w in windows for d in (-1, 0, 1) for s in (-1, 0, 1)] + [(0, 0), (2, 0)]
    touches = []
    for i in range(400):
        days, seconds = rng.choice(offsets)
        touches.append(touch(
            f"t{i}", f"a{rng.randrange(7)}", before(days + rng.choice([0, 3, 10, 40]), seconds),
            rng.choice(["Email", "Paid Search", "Direct", "Display"]), ttype=rng.choice(["marketing", "sales", "web"]),
            direct=rng.random() < 0.3, lead_date=rng.choice([None, before(rng.randrange(120))]), contact=f"c{rng.randrange(12)}",
        ))
    con = duckdb.connect()
    load(con, opportunities, touches)
    assert_one_pass_equals_per_window(con, windows)


def test_two_windows_by_hand():
    """Credits of o1 in the 7- and 30-day windows, computed by hand (half-life 7 days, U 40/20/40, W 30/30/30/10)."""
    con = duckdb.connect()
    load(con, HAND_OPPORTUNITIES, HAND_TOUCHES)
    df = one_pass_credits(con, [7, 30], half_life_days=7.0)
    o1 = {w: g.set_index("touchpoint_id") for w, g in df[df["opportunity_id"] == "o1"].groupby("lookback_days")}
    assert list(o1[7].index) == ["tD", "tE"] and list(o1[30].index) == ["tB", "tC", "tD", "tE"]
    assert list(o1[30]["is_lead_creation"]) == [False, True, False, False] and not o1[7]["is_lead_creation"].any()
    decay7 = [2 ** -1, 2 ** (-1 / 7)]
    decay30 = [2 ** (-30 / 7), 2 ** (-8 / 7), 2 ** -1, 2 ** (-1 / 7)]
    expected = {
        7: {
            "first_touch": [1000, 0], "last_touch": [0, 1000],
            "last_non_direct": [0, 1000],  # every touch is direct: the last touch
            "linear": [500, 500], "position_based": [500, 500],
            "w_shaped": [500, 500],  # no lead touch in the window: first and last share its weight, no rest
            "time_decay": [1000 * d / math.fsum(decay7) for d in decay7],
        },
        30: {
            "first_touch": [1000, 0, 0, 0], "last_touch": [0, 0, 0, 1000],
            "last_non_direct": [0, 1000, 0, 0], "linear": [250] * 4, "position_based": [400, 100, 100, 400],
            "w_shaped": [300, 300, 100, 300],  # first, lead creation (tC), opportunity creation (last); the rest to tD
            "time_decay": [1000 * d / math.fsum(decay30) for d in decay30],
        },
    }
    for w, models in expected.items():
        for model, credits in models.items():
            assert list(o1[w][f"{model}_credit"]) == pytest.approx(credits, rel=1e-12), (w, model)
    o2 = df[df["opportunity_id"] == "o2"]
    assert list(o2["lookback_days"]) == [30] and list(o2["linear_credit"]) == [500]


def test_asset_equals_the_per_window_computation(tmp_path):
    """The asset on a hand-made warehouse: per window × model × channel, the per-window roll-up; shares per window."""
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE SCHEMA sources")
        con.execute("CREATE SCHEMA touchpoints")
        load(con, HAND_OPPORTUNITIES, HAND_TOUCHES, "sources.crm_opportunities", "touchpoints.touchpoints")
    windows = [7, 30, 90]
    attribution_model_comparison(context=dg.build_asset_context(), config=ComparisonConfig(lookback_windows=windows),
                                 warehouse=Warehouse(database=str(database)))
    with duckdb.connect(str(database)) as con:
        got = con.execute("SELECT lookback_days, model, channel_name, pipeline_amount, share, share_change_vs_default_window"
                          " FROM attribution.attribution_model_comparison").fetchall()
        load(con, HAND_OPPORTUNITIES, HAND_TOUCHES)
        for w in windows:
            per_window_credits(con, w, half_life_days=ComparisonConfig().half_life_days)
        expected = {(w, m, ch): v for w in windows for (m, ch), v in reference_rollup(con, w).items()}
    assert {r[:3] for r in got} == set(expected)
    totals = {w: sum(v for (ww, m, _), v in expected.items() if ww == w and m == "linear") for w in windows}
    for w, m, ch, pipeline, share, change in got:
        assert pipeline == pytest.approx(expected[(w, m, ch)], rel=1e-12), (w, m, ch)
        assert share == pytest.approx(pipeline / totals[w], rel=1e-12)
        base = expected.get((90, m, ch))
        assert change == (pytest.approx(share - base / totals[90], abs=1e-12) if base is not None else None)
    # 7 days: o1's two last touches, o2 (7 days and a second) and o3 unattributed; 30 days: only o3
    assert expected[(7, "linear", UNATTRIBUTED)] == 700 and expected[(30, "linear", UNATTRIBUTED)] == 200
