"""Attribution assets on demo data: conservation, reconciliation with the CRM, and checks failing on bad data."""

import dagster as dg
import duckdb
import pytest

from marketing_assets.constants import ATTRIBUTION
from marketing_assets.schemas import ATTRIBUTION_MODELS
from marketing_assets_tests.conftest import checks_after_tampering


def evals(result, asset):
    return {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == dg.AssetKey([ATTRIBUTION, asset])}


def test_attribution_assets_pass_their_checks(demo_graph):
    result, _, _ = demo_graph
    for asset in ("attribution_credits", "attribution_by_channel", "attribution_by_segment_channel", "attribution_by_campaign", "attribution_model_comparison", "channel_roi"):
        got = evals(result, asset)
        assert got and all(e.passed for e in got.values()), (asset, {k: e.description for k, e in got.items()})


def test_every_model_reconciles_and_unattributed_is_its_own_row(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        crm = con.execute("SELECT sum(CAST(pipeline_amount AS DOUBLE)) FROM sources.crm_opportunities").fetchone()[0]
        totals = dict(con.execute("SELECT model, sum(pipeline_amount) FROM attribution.attribution_by_channel GROUP BY ALL").fetchall())
        unattributed = con.execute(
            "SELECT sum(CAST(pipeline_amount AS DOUBLE)) FROM sources.crm_opportunities WHERE opportunity_id NOT IN (SELECT opportunity_id FROM touchpoints.opportunity_touchpoints)"
        ).fetchone()[0]
        rows = dict(con.execute("SELECT model, pipeline_amount FROM attribution.attribution_by_channel WHERE channel_name = '(unattributed)'").fetchall())
        segments = con.execute("SELECT sum(pipeline_amount) FROM attribution.attribution_by_segment_channel WHERE model = 'linear'").fetchone()[0]
    assert set(totals) == set(ATTRIBUTION_MODELS)
    for model, total in totals.items():
        assert total == pytest.approx(crm, rel=1e-9), model
        assert rows[model] == pytest.approx(unattributed, rel=1e-9)
    assert segments == pytest.approx(crm, rel=1e-9)


def test_first_last_linear_match_plain_sql(demo_graph):
    """The classic exercise's semantics, written independently: first = earliest touch, last = latest, linear = equal split."""
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        reference = con.execute(
            """WITH w AS (
                SELECT o.opportunity_id, CAST(o.pipeline_amount AS DOUBLE) AS amount, t.channel_name,
                       row_number() OVER (PARTITION BY o.opportunity_id ORDER BY t.touchpoint_date, t.type_order, t.touchpoint_id) AS rn,
                       count(*) OVER (PARTITION BY o.opportunity_id) AS n
                FROM sources.crm_opportunities o JOIN touchpoints.touchpoints t
                  ON t.account_id = o.account_id
                 AND t.touchpoint_date >= o.opportunity_created_date - INTERVAL 90 DAY AND t.touchpoint_date <= o.opportunity_created_date)
               SELECT channel_name, sum(CASE WHEN rn = 1 THEN amount ELSE 0 END) AS first_touch,
                      sum(CASE WHEN rn = n THEN amount ELSE 0 END) AS last_touch, sum(amount / n) AS linear
               FROM w GROUP BY ALL"""
        ).df().set_index("channel_name")
        ours = con.execute(
            """PIVOT (SELECT model, channel_name, pipeline_amount FROM attribution.attribution_by_channel
                      WHERE model IN ('first_touch', 'last_touch', 'linear') AND channel_name <> '(unattributed)')
               ON model USING sum(pipeline_amount)"""
        ).df().set_index("channel_name")
    joined = reference.join(ours, rsuffix="_ours", how="outer").fillna(0.0)
    for model in ("first_touch", "last_touch", "linear"):
        assert joined[model].to_numpy() == pytest.approx(joined[f"{model}_ours"].to_numpy(), rel=1e-9, abs=1e-6)


def test_window_comparison_covers_7_30_90(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        windows = [r[0] for r in con.execute("SELECT DISTINCT lookback_days FROM attribution.attribution_model_comparison ORDER BY 1").fetchall()]
        shares = con.execute("SELECT lookback_days, model, sum(share) FROM attribution.attribution_model_comparison GROUP BY ALL").fetchall()
    assert windows == [7, 30, 90]
    assert all(s == pytest.approx(1.0) for *_, s in shares)


def test_channels_without_spend_say_so(demo_graph):
    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        organic = con.execute(
            "SELECT DISTINCT spend_status, channel_roas IS NULL, cost_per_won_deal IS NULL FROM attribution.channel_roi WHERE channel_group = 'Organic Search'"
        ).fetchall()
        paid = con.execute(
            "SELECT count(*) FROM attribution.channel_roi WHERE channel_group = 'Paid Search' AND spend_status = 'ok' AND channel_roas IS NOT NULL"
        ).fetchone()[0]
        finance_only = con.execute(
            "SELECT DISTINCT spend_status, channel_roas IS NULL FROM attribution.channel_roi WHERE channel_group = 'Events' AND finance_marketing_spend > 0"
        ).fetchall()
    assert organic == [("no spend data", True, True)]
    assert paid > 0
    assert finance_only == [("finance spend only", True)]  # ratios are defined on ad spend: journal spend does not stand in


def test_channel_roi_figures_are_the_dictionarys(demo_graph):
    """Every figure of channel_roi is the dictionary KPI of its name for the same month, model and channel group."""
    from marketing_assets.attribution import CHANNEL_ROI_KPIS
    from marketing_assets.lib.agreement import kpi_mismatches
    from marketing_assets.lib.kpis import load_kpi_dictionary

    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM attribution.channel_roi").df().rename(columns={"model": "attribution_model"})
        bad = kpi_mismatches(con, rows, {k: k for k in CHANNEL_ROI_KPIS}, ["attribution_model", "channel_group"], load_kpi_dictionary(),
                             grain="month", period="month")
    assert len(rows) > 100 and bad.empty, bad.head()


TAMPER = [
    ("attribution_credits", "UPDATE attribution.attribution_credits SET linear_credit = linear_credit * 1.01 WHERE rowid = 0", "credits_sum_to_pipeline"),
    ("attribution_credits", "UPDATE attribution.attribution_credits SET markov_credit = -1 WHERE rowid = 0", "contract"),
    ("attribution_by_channel", "DELETE FROM attribution.attribution_by_channel WHERE channel_name = '(unattributed)' AND model = 'shapley'", "reconciles_with_crm_pipeline"),
    ("attribution_by_channel", "UPDATE attribution.attribution_by_channel SET model = 'gut_feeling' WHERE rowid = 0", "contract"),
    ("channel_roi", "UPDATE attribution.channel_roi SET spend_status = 'fine' WHERE rowid = 0", "contract"),
    ("attribution_model_comparison", "UPDATE attribution.attribution_model_comparison SET share = 2 WHERE rowid = 0", "contract"),
]


@pytest.mark.parametrize(("asset", "sql", "check"), TAMPER, ids=[f"{a}-{c}" for a, _, c in TAMPER])
def test_each_attribution_check_fails_on_bad_data(demo_graph, tmp_path, asset, sql, check):
    ev = checks_after_tampering(demo_graph, tmp_path, dg.AssetKey([ATTRIBUTION, asset]), sql)[check]
    assert not ev.passed, ev.description


def test_shapley_pools_the_rarest_channels_past_the_exact_limit():
    import pandas as pd

    from marketing_assets.attribution import shapley_weights

    channels = [f"ch{i:02d}" for i in range(25)]
    paths = pd.DataFrame(
        {
            "path": [" > ".join(channels[: i + 1]) for i in range(25)] + channels,
            "conversions": [1] * 25 + [0] * 25,
            "value": [10.0] * 25 + [0.0] * 25,
            "nulls": [0] * 25 + [1] * 25,
        }
    )
    weights, result = shapley_weights(paths, max_channels=20)
    assert set(weights) == set(channels)
    assert sum(weights.values()) == pytest.approx(25.0)
    assert "(other channels)" in set(result["channel"])
    rare = [c for c in channels if c not in set(result["channel"])]
    assert len(rare) == 6 and len({round(weights[c], 12) for c in rare}) == 1


@pytest.mark.parametrize("order", [1, 2])
def test_data_driven_weights_from_sql_aggregates_equal_the_path_route(demo_graph, order):
    """The asset reads SQL aggregates of the journeys (transition counts, channel sets); the path-table route agrees to 1e-12."""
    from marketing_assets.attribution import AttributionConfig, _channel_weights
    from marketing_assets.lib.attribution import markov_attribution, pooled_shapley_weights

    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        weights, results = _channel_weights(con, AttributionConfig(markov_order=order).model_dump())
        paths = con.execute("SELECT path, conversions, value, nulls FROM touchpoints.conversion_paths").df()
    markov = markov_attribution(paths, order=order)
    expected = {"markov": dict(zip(markov["channel"], markov["conversions"], strict=True)), "shapley": pooled_shapley_weights(paths)[0]}
    assert weights.keys() == expected.keys() and results["markov"].attrs["n_journeys"] == markov.attrs["n_journeys"]
    for model, by_channel in expected.items():
        assert weights[model].keys() == by_channel.keys()
        for channel, weight in by_channel.items():
            assert weights[model][channel] == pytest.approx(weight, rel=1e-12, abs=1e-12), (model, channel)
