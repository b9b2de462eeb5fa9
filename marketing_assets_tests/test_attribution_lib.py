"""Attribution math: rule-model credits in DuckDB, exact Markov and Shapley on path tables and on their SQL aggregates.

Every expectation is either computed by hand in the test or by an independent reference
implementation written here (plain SQL, explicit absorbing-chain algebra, permutation enumeration).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections import defaultdict

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketing_assets.lib.attribution import (
    MODELS,
    attribution_credits_sql,
    channel_sets_sql,
    markov_attribution,
    markov_from_transitions,
    markov_transitions_sql,
    pooled_shapley_from_sets,
    pooled_shapley_weights,
    shapley_attribution,
    shapley_from_sets,
)

T0 = dt.datetime(2024, 3, 1)
COLUMNS = (
    "opportunity_id",
    "pipeline_amount",
    "opportunity_created_date",
    "touchpoint_id",
    "touchpoint_type",
    "touchpoint_date",
    "channel_name",
    "is_direct",
    "is_lead_creation",
)
RULE_CREDITS = [f"{m}_credit" for m in MODELS[:7]]


def days_before(days: float) -> dt.datetime:
    return T0 - dt.timedelta(days=days)


def touch(tid, ttype="marketing", days=1.0, channel="Email", direct=False, lead=False, opp="o1", amount=1000.0):
    """One source row; the opportunity is created at T0."""
    return (opp, amount, T0, tid, ttype, days_before(days), channel, direct, lead)


def run_credits(rows, **kwargs) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE src (opportunity_id VARCHAR, pipeline_amount DECIMAL(18, 2), opportunity_created_date TIMESTAMP,"
        " touchpoint_id VARCHAR, touchpoint_type VARCHAR, touchpoint_date TIMESTAMP, channel_name VARCHAR,"
        " is_direct BOOLEAN, is_lead_creation BOOLEAN)"
    )
    if rows:
        con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    attribution_credits_sql(con, "src", "credits", **kwargs)
    return con.execute("SELECT * FROM credits ORDER BY opportunity_id, touch_order").df()


def shares(df: pd.DataFrame, model: str) -> list[float]:
    """Credits of one opportunity as shares of its pipeline, in touch order."""
    return list(df[f"{model}_credit"] / df["pipeline_amount"].astype(float))


# --------------------------------------------------------------------------- rule models


def test_single_touch_gets_everything():
    df = run_credits([touch("t1", days=3)], channel_weights={"markov": {"Email": 1.0}, "shapley": {"Email": 2.0}})
    assert list(df.touch_order) == [1] and list(df.touch_count) == [1]
    for model in MODELS:
        assert shares(df, model) == pytest.approx([1.0], abs=1e-12), model


def test_two_touches_by_hand():
    df = run_credits([touch("late", days=3, channel="Paid Search"), touch("early", days=10)])
    assert list(df.touchpoint_id) == ["early", "late"]
    assert shares(df, "first_touch") == [1.0, 0.0]
    assert shares(df, "last_touch") == [0.0, 1.0]
    assert shares(df, "last_non_direct") == [0.0, 1.0]
    assert shares(df, "linear") == pytest.approx([0.5, 0.5])
    assert shares(df, "position_based") == pytest.approx([0.5, 0.5])
    # No lead touch: first 0.30 + 0.15, last 0.30 + 0.15, no rest -> the 0.10 spreads 50/50.
    assert shares(df, "w_shaped") == pytest.approx([0.5, 0.5])
    w_early, w_late = 2 ** (-10 / 7), 2 ** (-3 / 7)
    assert shares(df, "time_decay") == pytest.approx([w_early / (w_early + w_late), w_late / (w_early + w_late)])


def test_two_touches_with_lead_on_first():
    df = run_credits([touch("a", days=5, lead=True), touch("b", days=1)])
    # first 0.3 + lead 0.3 = 0.6, last 0.3; no rest: scaled by 1 / 0.9.
    assert shares(df, "w_shaped") == pytest.approx([2 / 3, 1 / 3])


def test_time_decay_by_hand():
    rows = [touch("t0", days=0), touch("t7", days=7), touch("t14", days=14)]
    df = run_credits(rows)
    assert list(df.touchpoint_id) == ["t14", "t7", "t0"]
    assert shares(df, "time_decay") == pytest.approx([1 / 7, 2 / 7, 4 / 7], rel=1e-12)
    df = run_credits(rows, half_life_days=14.0)
    w = [2 ** -1.0, 2 ** -0.5, 1.0]
    assert shares(df, "time_decay") == pytest.approx([x / sum(w) for x in w], rel=1e-12)


def test_time_decay_far_past_touches_do_not_underflow():
    df = run_credits([touch("a", days=40000), touch("b", days=40001)], half_life_days=1.0)
    assert df["time_decay_credit"].sum() == pytest.approx(1000.0, rel=1e-12)


def test_ties_broken_by_type_then_id():
    same_day = 2.0
    rows = [
        touch("w1", "web", same_day),
        touch("s9", "sales", same_day),
        touch("m2", "marketing", same_day),
        touch("m1", "marketing", same_day),
        touch("x0", "web", 5.0),
    ]
    df = run_credits(rows)
    assert list(df.touchpoint_id) == ["x0", "m1", "m2", "s9", "w1"]
    assert list(df.touch_order) == [1, 2, 3, 4, 5]
    assert shares(df, "first_touch") == [1, 0, 0, 0, 0]
    assert shares(df, "last_touch") == [0, 0, 0, 0, 1]
    assert shares(df, "position_based") == pytest.approx([0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4])


def test_exact_duplicate_ties_never_double_count():
    rows = [touch("dup", days=1.0), touch("dup", days=1.0), touch("dup", days=1.0)]
    df = run_credits(rows)
    assert sorted(df.touch_order) == [1, 2, 3]
    for col in RULE_CREDITS:
        assert df[col].sum() == pytest.approx(1000.0, rel=1e-12), col
    assert sorted(shares(df, "first_touch")) == [0, 0, 1]
    assert sorted(shares(df, "last_touch")) == [0, 0, 1]


def test_last_non_direct():
    rows = [
        touch("a", days=9, channel="Email"),
        touch("b", days=5, channel="Paid Search"),
        touch("c", days=2, channel="Direct", direct=True),
        touch("d", days=1, channel="Direct", direct=True),
    ]
    assert shares(run_credits(rows), "last_non_direct") == [0, 1, 0, 0]
    all_direct = [touch("a", days=3, direct=True), touch("b", days=2, direct=True)]
    assert shares(run_credits(all_direct), "last_non_direct") == [0, 1]


def test_position_based_three_and_four_touches():
    three = run_credits([touch("a", days=3), touch("b", days=2), touch("c", days=1)])
    assert shares(three, "position_based") == pytest.approx([0.4, 0.2, 0.4])
    four = run_credits([touch(str(i), days=10 - i) for i in range(4)])
    assert shares(four, "position_based") == pytest.approx([0.4, 0.1, 0.1, 0.4])
    custom = run_credits([touch("a", days=2), touch("b", days=1)], position_weights=(0.3, 0.4, 0.3))
    assert shares(custom, "position_based") == pytest.approx([0.5, 0.5])


def test_w_shaped_with_lead_in_the_middle():
    rows = [touch("t1", days=9), touch("t2", days=7), touch("t3", days=5, lead=True)]
    rows += [touch("t4", days=3), touch("t5", days=1)]
    assert shares(run_credits(rows), "w_shaped") == pytest.approx([0.3, 0.05, 0.3, 0.05, 0.3])


def test_w_shaped_without_lead_touch():
    rows = [touch(f"t{i}", days=10 - i) for i in range(5)]
    assert shares(run_credits(rows), "w_shaped") == pytest.approx([0.45, 0.1 / 3, 0.1 / 3, 0.1 / 3, 0.45])


def test_w_shaped_coinciding_roles():
    lead_last = [touch("a", days=3), touch("b", days=2), touch("c", days=1, lead=True)]
    assert shares(run_credits(lead_last), "w_shaped") == pytest.approx([0.3, 0.1, 0.6])
    lead_first = [touch("a", days=3, lead=True), touch("b", days=2), touch("c", days=1)]
    assert shares(run_credits(lead_first), "w_shaped") == pytest.approx([0.6, 0.1, 0.3])
    # Three touches, lead in the middle: no rest touch, the 10% spreads over 30/30/30.
    lead_mid = [touch("a", days=3), touch("b", days=2, lead=True), touch("c", days=1)]
    assert shares(run_credits(lead_mid), "w_shaped") == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    single = [touch("a", days=3, lead=True)]
    assert shares(run_credits(single), "w_shaped") == pytest.approx([1.0])


def test_w_shaped_several_lead_flags_share_the_lead_weight():
    rows = [touch("a", days=5), touch("b", days=4, lead=True), touch("c", days=3, lead=True), touch("d", days=2),
            touch("e", days=1)]
    assert shares(run_credits(rows), "w_shaped") == pytest.approx([0.3, 0.15, 0.15, 0.1, 0.3])
    # Both flagged touches are role touches; no rest touch, so the 10% spreads over 30/15/15/30.
    no_rest = rows[:3] + rows[4:]
    assert shares(run_credits(no_rest), "w_shaped") == pytest.approx([1 / 3, 1 / 6, 1 / 6, 1 / 3])


def test_channel_weighted_credits():
    rows = [
        touch("a", days=4, channel="Email"),
        touch("b", days=3, channel="Paid Search"),
        touch("c", days=2, channel="Email"),
        touch("d", days=1, channel="Unknown"),
        touch("x", days=2, channel="Unknown", opp="o2", amount=300.0),
        touch("y", days=1, channel="Webinar", opp="o2", amount=300.0),
    ]
    weights = {"markov": {"Email": 3.0, "Paid Search": 1.0, "Webinar": 0.0}, "shapley": {"Paid Search": -2.0}}
    df = run_credits(rows, channel_weights=weights)
    o1, o2 = df[df.opportunity_id == "o1"], df[df.opportunity_id == "o2"]
    # Email 3/4 split over its two touches, Paid Search 1/4, Unknown 0.
    assert shares(o1, "markov") == pytest.approx([0.375, 0.25, 0.375, 0.0])
    # All channels weightless (negative counts as 0): linear fallback.
    assert shares(o1, "shapley") == pytest.approx([0.25] * 4)
    assert shares(o2, "markov") == pytest.approx([0.5, 0.5])
    no_weights = run_credits(rows)
    assert "markov_credit" not in no_weights.columns and "shapley_credit" not in no_weights.columns
    only_markov = run_credits(rows, channel_weights={"markov": {"Email": 1.0}})
    assert "markov_credit" in only_markov.columns and "shapley_credit" not in only_markov.columns


def test_channel_weights_split_over_touches_per_channel_null_channel_included():
    """Touches per opportunity × channel (NULL channel its own group): Email 2 touches, NULL 2, Webinar 1 of weights
    2 / 1 (NULL: 0 unless mapped) / 1. Markov: Email 2/3 shared by its 2 touches, Webinar 1/3. A second opportunity's
    touches are counted apart."""
    rows = [
        touch("a", days=5, channel="Email"), touch("b", days=4, channel=None), touch("c", days=3, channel="Email"),
        touch("d", days=2, channel=None), touch("e", days=1, channel="Webinar"),
        touch("x", days=1, channel="Email", opp="o2", amount=90.0),
    ]
    df = run_credits(rows, channel_weights={"markov": {"Email": 2.0, "Webinar": 1.0}})
    o1, o2 = df[df.opportunity_id == "o1"], df[df.opportunity_id == "o2"]
    assert list(o1["markov_credit"]) == pytest.approx([1000 / 3, 0, 1000 / 3, 0, 1000 / 3], rel=1e-12)
    assert list(o2["markov_credit"]) == [90.0]


def test_credits_into_a_temporary_table():
    con = duckdb.connect()
    con.execute("CREATE TABLE src AS SELECT 'o1' AS opportunity_id, 10.0 AS pipeline_amount, TIMESTAMP '2024-01-10' AS opportunity_created_date,"
                " 't1' AS touchpoint_id, 'web' AS touchpoint_type, TIMESTAMP '2024-01-09' AS touchpoint_date, 'Direct' AS channel_name")
    attribution_credits_sql(con, "src", "tmp_credits", temporary=True)
    assert con.execute("SELECT temporary FROM duckdb_tables() WHERE table_name = 'tmp_credits'").fetchall() == [(True,)]
    assert con.execute("SELECT linear_credit FROM tmp_credits").fetchall() == [(10.0,)]
    # the write-order setting is restored afterwards
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)


def test_keep_projects_the_named_source_columns_with_the_same_credits():
    rows = [touch("a", days=5, channel="Email"), touch("b", days=2, channel="Webinar", direct=True), touch("c", days=1, channel="Email"),
            touch("x", days=1, channel="Email", opp="o2", amount=90.0)]
    con = duckdb.connect()
    con.register("_rows", pd.DataFrame(rows, columns=list(COLUMNS)))
    con.execute("CREATE TABLE src AS SELECT * FROM _rows")
    attribution_credits_sql(con, "src", "full_credits", channel_weights={"markov": {"Email": 2.0, "Webinar": 1.0}})
    attribution_credits_sql(con, "src", "narrow", channel_weights={"markov": {"Email": 2.0, "Webinar": 1.0}},
                            keep=("OPPORTUNITY_ID", "channel_name"))
    narrow = [r[0] for r in con.execute("DESCRIBE narrow").fetchall()]
    credit_columns = [c for c in narrow if c.endswith("_credit")]
    assert narrow == ["opportunity_id", "channel_name", "touch_order", "touch_count", *credit_columns]
    assert credit_columns == [*RULE_CREDITS, "markov_credit"]  # every rule model and markov
    cols = ", ".join(["opportunity_id", "channel_name", "touch_order", "touch_count", *credit_columns])
    assert con.execute(f"SELECT {cols} FROM narrow ORDER BY ALL").fetchall() == con.execute(f"SELECT {cols} FROM full_credits ORDER BY ALL").fetchall()
    with pytest.raises(ValueError, match="keep columns"):
        attribution_credits_sql(con, "src", "bad", keep=("opportunity_id", "no_such_column"))


def test_output_keeps_source_columns_and_accepts_missing_flags():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE src AS SELECT 'o1' AS opportunity_id, 10.0 AS pipeline_amount, 'EMEA' AS sales_segment,"
        " TIMESTAMP '2024-01-10' AS opportunity_created_date, 1 AS touchpoint_id, 'web' AS touchpoint_type,"
        " TIMESTAMP '2024-01-09' AS touchpoint_date, 'Direct' AS channel_name"
    )
    attribution_credits_sql(con, "src", "main.out")
    cols = [r[0] for r in con.execute("DESCRIBE out").fetchall()]
    assert cols[:8] == ["opportunity_id", "pipeline_amount", "sales_segment", "opportunity_created_date",
                        "touchpoint_id", "touchpoint_type", "touchpoint_date", "channel_name"]
    assert cols[8:] == ["touch_order", "touch_count"] + RULE_CREDITS
    assert con.execute("SELECT last_non_direct_credit, w_shaped_credit FROM out").fetchall() == [(10.0, 10.0)]


def test_invalid_arguments():
    con = duckdb.connect()
    con.execute("CREATE TABLE src AS SELECT 'o1' AS opportunity_id, 1.0 AS pipeline_amount")
    with pytest.raises(ValueError, match="lacks required columns"):
        attribution_credits_sql(con, "src", "out")
    with pytest.raises(ValueError, match="source"):
        attribution_credits_sql(con, "src; DROP TABLE x", "out")
    clash = duckdb.connect()
    clash.execute(
        "CREATE TABLE src AS SELECT 'o1' AS opportunity_id, 1.0 AS pipeline_amount, now() AS opportunity_created_date,"
        " 't' AS touchpoint_id, 'web' AS touchpoint_type, now() AS touchpoint_date, 'Direct' AS channel_name,"
        " 1 AS touch_order"
    )
    with pytest.raises(ValueError, match="already has output"):
        attribution_credits_sql(clash, "src", "out")
    with pytest.raises(ValueError, match="sum to 1"):
        attribution_credits_sql(con, "src", "out", position_weights=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="half_life_days"):
        attribution_credits_sql(con, "src", "out", half_life_days=0)
    with pytest.raises(ValueError, match="channel_weights"):
        attribution_credits_sql(con, "src", "out", channel_weights={"linear": {}})


def random_touch_table(seed: int, opportunities: int = 60) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for o in range(opportunities):
        amount = round(rng.uniform(1, 1e6), 2)
        n = rng.randint(1, 9)
        lead = rng.randrange(n) if rng.random() < 0.6 else None
        for k in range(n):
            rows.append(
                touch(
                    f"t{o}_{k}",
                    rng.choice(["marketing", "sales", "web"]),
                    float(rng.randint(0, 4)),  # few distinct days: many same-day ties
                    rng.choice(["Email", "Paid Search", "Direct", "Events"]),
                    rng.random() < 0.4,
                    k == lead,
                    f"o{o}",
                    amount,
                )
            )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_model_sums_to_pipeline(seed):
    weights = {"markov": {"Email": 0.5, "Paid Search": 0.3, "Events": 0.2}, "shapley": {"Direct": 1.0, "Email": 0.1}}
    df = run_credits(random_touch_table(seed), channel_weights=weights)
    sums = df.groupby("opportunity_id")[[f"{m}_credit" for m in MODELS]].sum()
    amount = df.groupby("opportunity_id")["pipeline_amount"].first().astype(float)
    for col in sums.columns:
        np.testing.assert_allclose(sums[col], amount, rtol=1e-9, err_msg=col)
    assert (df[[f"{m}_credit" for m in MODELS]] >= 0).all().all()
    counts = df.groupby("opportunity_id").agg(
        n=("touch_order", "size"), mx=("touch_order", "max"), tc=("touch_count", "first")
    )
    assert (counts.n == counts.mx).all() and (counts.n == counts.tc).all()


def test_first_last_linear_match_plain_sql_reference():
    rows = random_touch_table(7, opportunities=150)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE src (opportunity_id VARCHAR, pipeline_amount DOUBLE, opportunity_created_date TIMESTAMP,"
        " touchpoint_id VARCHAR, touchpoint_type VARCHAR, touchpoint_date TIMESTAMP, channel_name VARCHAR,"
        " is_direct BOOLEAN, is_lead_creation BOOLEAN)"
    )
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    attribution_credits_sql(con, "src", "credits")
    # Reference: the first/last touch is the min/max of (date, type, id) per opportunity (types
    # sort alphabetically as marketing < sales < web); linear is amount / number of touches.
    diff = con.execute(
        """
        WITH keyed AS (
            SELECT *, struct_pack(d := touchpoint_date, t := touchpoint_type, i := touchpoint_id) AS k FROM src
        ),
        ends AS (
            SELECT opportunity_id, min(k) AS first_k, max(k) AS last_k, count(*) AS n FROM keyed GROUP BY opportunity_id
        ),
        ref AS (
            SELECT keyed.opportunity_id, keyed.touchpoint_id,
                   CASE WHEN k = first_k THEN pipeline_amount ELSE 0 END AS f,
                   CASE WHEN k = last_k THEN pipeline_amount ELSE 0 END AS l,
                   pipeline_amount / n AS lin
            FROM keyed JOIN ends USING (opportunity_id)
        )
        SELECT count(*), max(abs(f - first_touch_credit)), max(abs(l - last_touch_credit)),
               max(abs(lin - linear_credit))
        FROM ref JOIN credits USING (opportunity_id, touchpoint_id)
        """
    ).fetchone()
    assert diff[0] == len(rows)
    assert diff[1] == 0 and diff[2] == 0 and diff[3] < 1e-6


# --------------------------------------------------------------------------- Markov


def test_markov_tiny_hand_computed():
    paths = pd.DataFrame({"path": ["A > B", "B"], "conversions": [1, 0], "nulls": [0, 1]})
    res = markov_attribution(paths).set_index("channel")
    # start->A 1/2, start->B 1/2, A->B 1, B->conv 1/2, B->null 1/2: P = 1/2.
    assert res.attrs["conversion_probability"] == pytest.approx(0.5)
    # Without A: start->A goes to null, P = 1/4 -> 0.5; without B: P = 0 -> 1.
    assert res.removal_effect.to_dict() == pytest.approx({"A": 0.5, "B": 1.0})
    assert res.conversions.to_dict() == pytest.approx({"A": 1 / 3, "B": 2 / 3})
    assert res.value.to_dict() == pytest.approx({"A": 1 / 3, "B": 2 / 3})


def test_markov_value_uses_value_removal_effects():
    paths = pd.DataFrame(
        {
            "path": ["A", "B", "A > B", "C"],
            "conversions": [1, 1, 0, 0],
            "value": [100.0, 10.0, 0.0, 7.0],
            "nulls": [1, 1, 1, 1],
        }
    )
    res = markov_attribution(paths).set_index("channel")
    # start->A 3/6, start->B 2/6, start->C 1/6; A->B 1/3, A->conv 1/3 (value 100/3 per visit of A),
    # B->conv 1/3 (value 10/3 per visit of B); C never converts (its 7.0 is not conversion value).
    # E[value] = 3/6 (100/3 + 1/3 * 10/3) + 2/6 * 10/3 = 55/3.
    # Without A: 2/6 * 10/3 = 10/9 -> 1 - (10/9) / (55/3) = 31/33. Without B: 3/6 * 100/3 -> 1/11.
    assert res.removal_effect_value.to_dict() == pytest.approx({"A": 31 / 33, "B": 1 / 11, "C": 0.0})
    re_sum = 31 / 33 + 1 / 11
    assert res.value.to_dict() == pytest.approx({"A": 110 * (31 / 33) / re_sum, "B": 110 * (1 / 11) / re_sum, "C": 0.0})
    assert res.attrs["dropped"]["value_without_conversions"] == 7.0
    # Conversions: P = 3/6 (1/3 + 1/3 * 1/3) + 2/6 * 1/3 = 1/3; without A 1/9 -> 2/3; without B 1/6 -> 1/2.
    assert res.removal_effect.to_dict() == pytest.approx({"A": 2 / 3, "B": 1 / 2, "C": 0.0})
    assert res.conversions.to_dict() == pytest.approx({"A": 2 * (2 / 3) / (7 / 6), "B": 2 * (1 / 2) / (7 / 6), "C": 0})


def chain_states(path: list[str], order: int) -> list[tuple[str, ...]]:
    collapsed = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return [tuple(collapsed[max(0, i - order + 1): i + 1]) for i in range(len(collapsed))]


def brute_force_markov(records, order: int):
    """Removal effects from the fundamental matrix of an explicitly built absorbing chain."""
    counts: dict = defaultdict(lambda: defaultdict(float))
    value_end: dict = defaultdict(float)
    for path, conv, nulls, value in records:
        if conv + nulls <= 0 or not path:
            continue
        states = ["(start)"] + chain_states(path, order)
        for a, b in zip(states, states[1:]):
            counts[a][b] += conv + nulls
        counts[states[-1]]["(conversion)"] += conv
        counts[states[-1]]["(null)"] += nulls
        value_end[states[-1]] += value if conv > 0 else 0.0  # value belongs to conversions
    transient = ["(start)"] + sorted(s for s in counts if s != "(start)")
    index = {s: i for i, s in enumerate(transient)}

    def absorb(removed: str | None):
        n = len(transient)
        q = np.zeros((n, n))
        r = np.zeros((n, 2))
        for s, outs in counts.items():
            if removed is not None and s != "(start)" and removed in s:
                continue  # redirected to (null)
            total = sum(outs.values())
            for t, w in outs.items():
                if t == "(conversion)":
                    r[index[s], 0] += w / total
                elif t != "(null)":
                    q[index[s], index[t]] += w / total
            r[index[s], 1] = value_end[s] / total
        fundamental = np.linalg.inv(np.eye(n) - q)
        return (fundamental @ r)[0]

    base = absorb(None)
    channels = sorted({c for p, *_ in records for c in p})
    return {c: 1 - absorb(c) / base for c in channels}, base


def random_records(rng: random.Random, n_paths: int, channels: str, max_len: int = 5):
    records = []
    for _ in range(n_paths):
        path = [rng.choice(channels) for _ in range(rng.randint(1, max_len))]
        records.append((path, rng.randint(0, 3), rng.randint(0, 3), round(rng.uniform(0, 100), 2)))
    return records


def records_frame(records, as_lists: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "path": [list(p) if as_lists else " > ".join(p) for p, *_ in records],
            "conversions": [r[1] for r in records],
            "nulls": [r[2] for r in records],
            "value": [r[3] for r in records],
        }
    )


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_markov_matches_fundamental_matrix(order, seed):
    rng = random.Random(seed * 10 + order)
    records = random_records(rng, 25, "ABCD" if seed % 2 else "ABCDE")
    effects, base = brute_force_markov(records, order)
    res = markov_attribution(records_frame(records, as_lists=seed == 3), order=order).set_index("channel")
    assert res.attrs["conversion_probability"] == pytest.approx(base[0], rel=1e-10)
    for c, (re_conv, re_value) in effects.items():
        assert res.removal_effect[c] == pytest.approx(re_conv, abs=1e-10)
        assert res.removal_effect_value[c] == pytest.approx(re_value, abs=1e-10)
    total_re = sum(e[0] for e in effects.values())
    total_conv = sum(r[1] for r in records)
    for c, (re_conv, _) in effects.items():
        assert res.conversions[c] == pytest.approx(re_conv / total_re * total_conv, rel=1e-9)


def test_markov_conversion_probability_matches_matrix_power():
    records = random_records(random.Random(42), 15, "ABC")
    _, base = brute_force_markov(records, 1)
    # Independent check of the chain itself: absorbed mass after many steps of the full matrix.
    states = sorted({s for p, *_ in records for s in chain_states(p, 1)})
    nodes = ["(start)"] + states + ["(conversion)", "(null)"]
    idx = {s: i for i, s in enumerate(nodes)}
    m = np.zeros((len(nodes), len(nodes)))
    for path, conv, nulls, _ in records:
        seq = ["(start)"] + chain_states(path, 1)
        for a, b in zip(seq, seq[1:]):
            m[idx[a], idx[b]] += conv + nulls
        m[idx[seq[-1]], idx["(conversion)"]] += conv
        m[idx[seq[-1]], idx["(null)"]] += nulls
    m[idx["(conversion)"], idx["(conversion)"]] = m[idx["(null)"], idx["(null)"]] = 1
    m = m / m.sum(axis=1, keepdims=True)
    absorbed = np.linalg.matrix_power(m, 4000)[0, idx["(conversion)"]]
    assert absorbed == pytest.approx(base[0], rel=1e-9)
    probability = markov_attribution(records_frame(records)).attrs["conversion_probability"]
    assert probability == pytest.approx(absorbed, rel=1e-9)


def test_markov_inputs_and_edge_cases():
    # Missing value and nulls columns, custom names, spacing variants and empty paths.
    paths = pd.DataFrame({"journey": ["A>B", " A >  B ", "", None, "C > C"], "conv": [1, 2, 5, 5, 1]})
    res = markov_attribution(paths, var_path="journey", var_conv="conv", var_value=None, var_null=None)
    assert list(res.channel) == ["A", "B", "C"]
    assert res.conversions.sum() == pytest.approx(4.0) and res.value.sum() == pytest.approx(4.0)
    assert res.attrs["dropped"]["conversions"] == 10.0
    none = markov_attribution(pd.DataFrame({"path": ["A > B", "B"], "conversions": [0, 0], "nulls": [1, 2]}))
    assert (none.conversions == 0).all() and "no conversions" in none.attrs["note"]
    with pytest.raises(ValueError, match="negative"):
        markov_attribution(pd.DataFrame({"path": ["A"], "conversions": [-1]}))
    empty = pd.DataFrame({"path": pd.Series([], dtype=object), "conversions": pd.Series([], dtype=float)})
    for fn in (markov_attribution, shapley_attribution):
        assert fn(empty).empty
    # A bare token equal to the parser's internal path boundary character is handled too.
    odd = pd.DataFrame({"path": ["A>\x1e>B", "A > B"], "conversions": [1, 1], "nulls": [1, 0]})
    assert list(markov_attribution(odd).channel) == ["A", "B"]
    assert markov_attribution(odd).conversions.sum() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="order"):
        markov_attribution(paths, order=0, var_path="journey", var_conv="conv")


# --------------------------------------------------------------------------- Shapley


def brute_force_shapley(records):
    """Average marginal contribution over every ordering, with the characteristic function
    evaluated directly from the journeys."""
    channels = sorted({c for p, *_ in records for c in p})
    with_nulls = sum(r[2] for r in records) > 0

    def v(coalition: frozenset, k: int) -> float:
        inside = [r for r in records if r[0] and set(r[0]) <= coalition]
        conv = sum(r[1] for r in inside)
        nulls = sum(r[2] for r in inside)
        amount = conv if k == 0 else sum(r[3] for r in inside if r[1] > 0)
        if not with_nulls:
            return amount
        return amount / (conv + nulls) if conv + nulls > 0 else 0.0

    result = {}
    perms = list(itertools.permutations(channels))
    for k in (0, 1):
        phi = dict.fromkeys(channels, 0.0)
        for perm in perms:
            seen: set = set()
            for c in perm:
                before = v(frozenset(seen), k)
                seen.add(c)
                phi[c] += v(frozenset(seen), k) - before
        grand = v(frozenset(channels), k)
        total = sum(r[1] if k == 0 else r[3] * (r[1] > 0) for r in records if r[0])
        result[k] = {c: phi[c] / len(perms) / grand * total for c in channels}
    return result


@pytest.mark.parametrize("seed", range(4))
def test_shapley_matches_permutation_enumeration(seed):
    rng = random.Random(100 + seed)
    records = random_records(rng, 20, "ABCDE"[: 3 + seed % 3])
    if seed == 3:  # no nulls anywhere: the count game
        records = [(p, c + 1, 0, v) for p, c, _, v in records]
    expected = brute_force_shapley(records)
    res = shapley_attribution(records_frame(records)).set_index("channel")
    assert res.attrs["characteristic"] == ("count" if seed == 3 else "rate")
    for c in res.index:
        assert res.conversions[c] == pytest.approx(expected[0][c], rel=1e-9, abs=1e-9)
        assert res.value[c] == pytest.approx(expected[1][c], rel=1e-9, abs=1e-9)


def test_shapley_channel_limit_and_null_players():
    many = pd.DataFrame({"path": [f"c{i}" for i in range(6)], "conversions": [1] * 6})
    with pytest.raises(ValueError, match="max_channels"):
        shapley_attribution(many, max_channels=5)
    paths = pd.DataFrame({"path": ["A", "B", "Z"], "conversions": [1, 2, 0], "nulls": [1, 0, 0]})
    res = shapley_attribution(paths, max_channels=2).set_index("channel")
    assert res.loc["Z", "conversions"] == 0 and res.attrs["n_players"] == 2
    assert res.conversions.sum() == pytest.approx(3.0)


# --------------------------------------------------------------------------- properties

journeys = st.lists(
    st.tuples(
        st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=6),
        st.integers(0, 4),
        st.integers(0, 4),
        st.floats(0, 1000, allow_nan=False).map(lambda x: round(x, 2)),
    ),
    min_size=1,
    max_size=12,
)
FAST = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _totals(records):
    return sum(r[1] for r in records), sum(r[3] for r in records if r[1] > 0)


@FAST
@given(journeys, st.sampled_from([1, 2]))
def test_property_conservation(records, order):
    conv, value = _totals(records)
    frame = records_frame(records)
    for res in (markov_attribution(frame, order=order), shapley_attribution(frame)):
        if res.attrs["note"]:
            continue
        assert res.conversions.sum() == pytest.approx(conv, rel=1e-9, abs=1e-9)
        if value > 0 and "value" not in res.attrs["note"]:
            assert res.value.sum() == pytest.approx(value, rel=1e-9, abs=1e-6)


@FAST
@given(journeys, st.permutations("ABCDE"), st.sampled_from([1, 2]))
def test_property_relabelling_permutes_result(records, perm, order):
    mapping = dict(zip("ABCDE", perm))
    renamed = [([mapping[c] for c in p], *rest) for p, *rest in records]
    for fn, kwargs in ((markov_attribution, {"order": order}), (shapley_attribution, {})):
        a = fn(records_frame(records), **kwargs).set_index("channel")
        b = fn(records_frame(renamed), **kwargs).set_index("channel")
        b.index = [next(k for k, v in mapping.items() if v == c) for c in b.index]
        b = b.loc[a.index]
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-6)


@FAST
@given(journeys, st.data())
def test_property_repeats_collapse(records, data):
    repeated = []
    for path, *rest in records:
        times = data.draw(st.lists(st.integers(1, 3), min_size=len(path), max_size=len(path)))
        repeated.append(([c for c, k in zip(path, times) for _ in range(k)], *rest))
    for fn in (markov_attribution, shapley_attribution):
        a = fn(records_frame(records))
        b = fn(records_frame(repeated))
        np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a.value, b.value, rtol=1e-9, atol=1e-6)
    # Repeats matter to Markov only when not collapsed; channel sets never see them.
    sets_a = shapley_attribution(records_frame(records), collapse_repeats=False)
    sets_b = shapley_attribution(records_frame(repeated), collapse_repeats=False)
    np.testing.assert_allclose(sets_a.conversions, sets_b.conversions, rtol=1e-9, atol=1e-9)


@FAST
@given(journeys)
def test_property_string_and_list_paths_agree(records):
    a = markov_attribution(records_frame(records))
    b = markov_attribution(records_frame(records, as_lists=True))
    np.testing.assert_allclose(a.conversions, b.conversions, rtol=1e-12, atol=1e-12)
    assert math.isclose(a.attrs["conversion_probability"], b.attrs["conversion_probability"], rel_tol=1e-12)


# --------------------------------------------------------------------------- SQL aggregates


def sql_frame(paths: pd.DataFrame, sql_builder, *args, **kwargs) -> pd.DataFrame:
    """The aggregate ``sql_builder`` writes, run by DuckDB over ``paths`` registered as a relation."""
    con = duckdb.connect()
    con.register("journeys", paths)
    return con.execute(sql_builder("journeys", *args, **kwargs)).df()


def as_rows(frame: pd.DataFrame, *columns: str) -> set:
    return {
        tuple(tuple(v) if isinstance(v, (list, np.ndarray)) else (None if v is None or v is pd.NA else v) for v in row)
        for row in frame[list(columns)].itertuples(index=False)
    }


HAND_PATHS = pd.DataFrame(
    {
        "path": ["A > B > C", "A > C", "B > C", "B"],
        "conversions": [1, 0, 1, 0],
        "nulls": [0, 1, 0, 1],
        "value": [100.0, 0.0, 50.0, 0.0],
    }
)


def test_markov_transition_counts_by_hand():
    counts = sql_frame(HAND_PATHS, markov_transitions_sql)
    # start->A: A>B>C and A>C; start->B: B>C and B; C ends the two conversions and one null.
    assert as_rows(counts, "from_state", "to_state", "weight", "conversions", "nulls", "value") == {
        ((), ("A",), 2, 0, 0, 0), ((), ("B",), 2, 0, 0, 0),
        (("A",), ("B",), 1, 0, 0, 0), (("A",), ("C",), 1, 0, 0, 0),
        (("B",), ("C",), 2, 0, 0, 0), (("B",), None, 1, 0, 1, 0),
        (("C",), None, 3, 2, 1, 150),
    }
    second = sql_frame(HAND_PATHS, markov_transitions_sql, 2)
    assert as_rows(second, "from_state", "to_state", "weight") == {
        ((), ("A",), 2), ((), ("B",), 2), (("A",), ("A", "B"), 1), (("A",), ("A", "C"), 1), (("A", "B"), ("B", "C"), 1),
        (("B",), ("B", "C"), 1), (("B",), None, 1), (("A", "C"), None, 1), (("B", "C"), None, 2),
    }


@pytest.mark.parametrize("route", ["paths", "sql"])
def test_markov_three_channels_by_hand(route):
    # P(start->A) = P(start->B) = 1/2; A->B 1/2, A->C 1/2; B->C 2/3, B->null 1/3; C->conv 2/3, C->null 1/3.
    # P(conv | C) = 2/3, | B = 4/9, | A = 1/2 * 4/9 + 1/2 * 2/3 = 5/9, | start = 1/2 (5/9 + 4/9) = 1/2.
    # Without A: 1/2 * 4/9 = 2/9 -> 5/9. Without B: 1/2 * (1/2 * 2/3) = 1/6 -> 2/3. Without C: 0 -> 1.
    if route == "paths":
        res = markov_attribution(HAND_PATHS)
    else:
        res = markov_from_transitions(sql_frame(HAND_PATHS, markov_transitions_sql))
    res = res.set_index("channel")
    assert res.attrs["conversion_probability"] == pytest.approx(0.5, abs=1e-15)
    assert res.removal_effect.to_dict() == pytest.approx({"A": 5 / 9, "B": 2 / 3, "C": 1.0}, abs=1e-15)
    # Removal effects sum to 20/9; 2 conversions and 150 of value are split in that proportion
    # (all value ends in C, so the value removal effects are the same).
    assert res.conversions.to_dict() == pytest.approx({"A": 1 / 2, "B": 3 / 5, "C": 9 / 10}, abs=1e-15)
    assert res.removal_effect_value.to_dict() == pytest.approx({"A": 5 / 9, "B": 2 / 3, "C": 1.0}, abs=1e-15)
    assert res.value.to_dict() == pytest.approx({"A": 37.5, "B": 45.0, "C": 67.5}, abs=1e-12)
    assert res.attrs["n_states"] == 3 and res.attrs["n_journeys"] == 4


def test_channel_sets_by_hand():
    paths = pd.DataFrame(
        {"path": ["A > B", "B > A > B", "B", "", "C"], "conversions": [1, 2, 0, 1, 0], "nulls": [1, 0, 1, 0, 1]}
    )
    sets = sql_frame(paths, channel_sets_sql, var_value=None)
    assert as_rows(sets, "channels", "conversions", "nulls", "value", "paths") == {
        (("A", "B"), 3, 1, 3, 2), (("B",), 0, 1, 0, 1), (("C",), 0, 1, 0, 1), ((), 1, 0, 1, 1),
    }


@pytest.mark.parametrize("route", ["paths", "sql"])
def test_shapley_two_channels_by_hand(route):
    paths = pd.DataFrame(
        {
            "path": ["A", "B", "A > B", "B > A > B"],
            "conversions": [1, 1, 2, 1],
            "nulls": [1, 3, 1, 0],
            "value": [10.0, 20.0, 20.0, 10.0],
        }
    )
    res = shapley_attribution(paths) if route == "paths" else shapley_from_sets(sql_frame(paths, channel_sets_sql))
    res = res.set_index("channel")
    # Rate game: v(A) = 1/2, v(B) = 1/4, v(AB) = 5/10. phi_A = (1/2 + (1/2 - 1/4)) / 2 = 3/8,
    # phi_B = (1/4 + (1/2 - 1/2)) / 2 = 1/8; scaled to the 5 conversions: 15/4 and 5/4.
    assert res.attrs["characteristic"] == "rate"
    assert res.shapley_value.to_dict() == pytest.approx({"A": 3 / 8, "B": 1 / 8}, abs=1e-15)
    assert res.conversions.to_dict() == pytest.approx({"A": 15 / 4, "B": 5 / 4}, abs=1e-14)
    # Value game: v(A) = 10/2, v(B) = 20/4, v(AB) = 60/10: phi = (5 + 1) / 2 each, half of the 60 each.
    assert res.shapley_value_value.to_dict() == pytest.approx({"A": 3.0, "B": 3.0}, abs=1e-14)
    assert res.value.to_dict() == pytest.approx({"A": 30.0, "B": 30.0}, abs=1e-12)


@pytest.mark.parametrize("route", ["paths", "sql"])
def test_shapley_three_channels_count_game_by_hand(route):
    # No nulls: v(S) = conversions of the journeys whose channel set lies within S. Each set's
    # conversions are then shared equally by its channels: {A} 2, {B} 1, {A, B} 3, {A, B, C} 6 give
    # A = 2 + 3/2 + 6/3 = 5.5, B = 1 + 3/2 + 2 = 4.5, C = 2.
    paths = pd.DataFrame({"path": ["A", "B", "B > A", "C > A > B"], "conversions": [2, 1, 3, 6]})
    if route == "paths":
        res = shapley_attribution(paths)
    else:  # a relation has no optional columns: say there are no value and null columns
        res = shapley_from_sets(sql_frame(paths, channel_sets_sql, var_value=None, var_null=None))
    res = res.set_index("channel")
    assert res.attrs["characteristic"] == "count"
    assert res.conversions.to_dict() == pytest.approx({"A": 5.5, "B": 4.5, "C": 2.0}, abs=1e-14)


def messy_paths(rng: random.Random, n_paths: int, channels: list[str]) -> pd.DataFrame:
    """Random journeys written the ways a path table can be: spacing (also tabs and no-break spaces),
    repeats, empty names and paths, NULL paths, zero-weight rows and value on rows without conversions."""
    spaces = ["", " ", "  ", "\t", "\u00a0"]
    rows = []
    for _ in range(n_paths):
        names = [rng.choice(channels) for _ in range(rng.randint(0, 7))]
        if names and rng.random() < 0.2:
            names.insert(rng.randrange(len(names)), "")
        path = ">".join(rng.choice(spaces) + c + rng.choice(spaces) for c in names)
        rows.append(
            (None if rng.random() < 0.03 else path, rng.choice([0, 0, 1, 2]), rng.choice([0, 1, 1, 3]), round(rng.uniform(0, 500), 2))
        )
    rows += rows[: n_paths // 5]  # identical paths repeated
    return pd.DataFrame(rows, columns=["path", "conversions", "nulls", "value"])


def assert_same_result(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.channel) == list(b.channel)
    for column in a.columns.drop("channel"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-12, atol=1e-12, err_msg=column)
    for key, expected in a.attrs.items():
        if isinstance(expected, float):
            assert b.attrs[key] == pytest.approx(expected, rel=1e-12, abs=1e-12), key
        elif isinstance(expected, dict):
            assert b.attrs[key] == pytest.approx(expected, rel=1e-12), key
        else:
            assert b.attrs[key] == expected, key


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_sql_aggregates_equal_the_path_route(order, seed):
    rng = random.Random(1000 + seed)
    paths = messy_paths(rng, 400, ["Paid Search", "Email", "Events", "Direct", "Référral", "x y"])
    markov = markov_from_transitions(sql_frame(paths, markov_transitions_sql, order), order=order)
    assert_same_result(markov_attribution(paths, order=order), markov)
    assert_same_result(shapley_attribution(paths), shapley_from_sets(sql_frame(paths, channel_sets_sql)))
    # Without collapsing repeats, and with the value and null columns absent.
    bare = paths[["path", "conversions"]].rename(columns={"path": "journey", "conversions": "conv"})
    options = {"var_path": "journey", "var_conv": "conv", "var_value": None, "var_null": None, "collapse_repeats": False}
    counts = sql_frame(bare, markov_transitions_sql, order, **options)
    assert_same_result(markov_attribution(bare, order=order, **options), markov_from_transitions(counts, order=order))


def test_pooled_shapley_sql_equals_path_route():
    paths = messy_paths(random.Random(7), 300, [f"c{i}" for i in range(9)])
    for max_channels in (4, 20):
        by_paths, result_paths = pooled_shapley_weights(paths, max_channels)
        by_sets, result_sets = pooled_shapley_from_sets(sql_frame(paths, channel_sets_sql), max_channels)
        assert by_paths.keys() == by_sets.keys() and len(by_paths) == 9
        assert list(by_sets.values()) == pytest.approx(list(by_paths.values()), rel=1e-12)
        assert_same_result(result_paths, result_sets)
        assert sum(by_sets.values()) == pytest.approx(paths.loc[paths.path.fillna("").str.strip() != "", "conversions"].sum())


def test_sql_aggregates_without_journeys():
    empty = pd.DataFrame({"path": pd.Series([], dtype=object), "conversions": pd.Series([], dtype=float)})
    counts = sql_frame(empty, markov_transitions_sql, var_value=None, var_null=None)
    assert counts.empty and markov_from_transitions(counts).empty
    sets = sql_frame(empty, channel_sets_sql, var_value=None, var_null=None)
    assert sets.empty and shapley_from_sets(sets).empty
    none = pd.DataFrame({"path": ["A > B", "B"], "conversions": [0, 0], "nulls": [1, 2]})
    res = markov_from_transitions(sql_frame(none, markov_transitions_sql, var_value=None))
    assert (res.conversions == 0).all() and "no conversions" in res.attrs["note"]
    with pytest.raises(ValueError, match="order"):
        markov_transitions_sql("journeys", order=0)


def _with_touch_order(rows) -> duckdb.DuckDBPyConnection:
    """``src`` of ``rows`` plus ``position``: each touch's place in the documented touch order (date, type, id)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE raw (opportunity_id VARCHAR, pipeline_amount DECIMAL(18, 2), opportunity_created_date TIMESTAMP,"
        " touchpoint_id VARCHAR, touchpoint_type VARCHAR, touchpoint_date TIMESTAMP, channel_name VARCHAR,"
        " is_direct BOOLEAN, is_lead_creation BOOLEAN)"
    )
    con.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        "CREATE TABLE src AS SELECT *, row_number() OVER (PARTITION BY opportunity_id ORDER BY touchpoint_date,"
        " CASE touchpoint_type WHEN 'marketing' THEN 0 WHEN 'sales' THEN 1 ELSE 2 END, touchpoint_id) AS position FROM raw"
    )
    return con


@pytest.mark.parametrize("seed", [4, 5])
def test_given_touch_order_gives_the_same_credits(seed):
    """With ``touch_order`` (the source's own order column) every model credits exactly as when the rows are sorted."""
    weights = {"markov": {"Email": 0.5, "Paid Search": 0.3, "Events": 0.2}, "shapley": {"Direct": 1.0, "Email": 0.1}}
    con = _with_touch_order(random_touch_table(seed))
    attribution_credits_sql(con, "raw", "sorted", channel_weights=weights)
    attribution_credits_sql(con, "src", "given", channel_weights=weights, touch_order="position")
    key = "ORDER BY opportunity_id, touchpoint_id"
    sorted_, given = con.execute(f"SELECT * FROM sorted {key}").df(), con.execute(f"SELECT * FROM given {key}").df()
    assert list(given.columns) == list(sorted_.columns)  # position becomes touch_order
    pd.testing.assert_frame_equal(given, sorted_, check_exact=False, rtol=1e-12)


def test_given_touch_order_is_read_not_recomputed():
    """The given order decides which touch is first / last: reversing it swaps first- and last-touch credit."""
    con = _with_touch_order([touch("a", days=3), touch("b", days=2, direct=True), touch("c", days=1, direct=True)])
    con.execute("CREATE TABLE reversed AS SELECT * EXCLUDE (position), 4 - position AS position FROM src")
    attribution_credits_sql(con, "reversed", "credits", touch_order="position")
    df = con.execute("SELECT touchpoint_id, touch_order, first_touch_credit, last_touch_credit, last_non_direct_credit"
                     " FROM credits ORDER BY touch_order").df()
    assert df.touchpoint_id.tolist() == ["c", "b", "a"]
    assert df.first_touch_credit.tolist() == [1000.0, 0.0, 0.0]
    assert df.last_touch_credit.tolist() == [0.0, 0.0, 1000.0]
    assert df.last_non_direct_credit.tolist() == [0.0, 0.0, 1000.0]  # a: the only non-direct touch, now last
    with pytest.raises(ValueError, match="touch_order"):
        attribution_credits_sql(con, "src", "out", touch_order="no_such_column")
