"""Budget recommendation rules (config/recommendations.yaml): each rule on a crafted row, order, YAML edits, validation."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from marketing_assets.lib.kpis import load_kpi_dictionary
from marketing_assets.lib.recommend import (
    DEFAULT_RULES_FILE,
    RuleError,
    kpi_goals,
    load_rules,
    recommend,
    trailing_weeks_below,
)


@pytest.fixture(scope="module")
def goals() -> dict:
    return kpi_goals(load_kpi_dictionary())


@pytest.fixture(scope="module")
def rules(goals):
    return load_rules(goals)


# A row no rule fires on: enough spend (5,000 >= 1,000) and opportunities (10 >= 3), no sustained weeks under
# break-even, no model disagreement, ROAS 2.0 between break-even 1.0 and target 3.0, mROI 0.8 <= 1.
HOLD = {
    "spend": 5000.0, "attributed_opportunities": 10.0, "attributed_revenue": 10000.0, "roas": 2.0,
    "roas_min": 1.5, "roas_max": 2.5, "models_above_target": 0, "models_below_break_even": 0,
    "weeks_below_break_even": 0, "mmm_roi": 1.8, "mmm_mroi": 0.8, "mmm_roi_low": 1.2, "mmm_roi_high": 2.4,
}  # fmt: skip


def row(**changes) -> dict:
    return {**HOLD, **changes}


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))


def _rule(raw: dict, name: str) -> dict:
    return next(r for r in raw["rules"] if r["name"] == name)


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "recommendations.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ loading


def test_goals_come_from_the_metric_dictionary(goals, rules):
    # kpis.yaml: channel_roas target 3.0 and threshold 1.0 (break-even); cpa threshold 250.
    assert goals["target:channel_roas"] == 3.0 and goals["threshold:channel_roas"] == 1.0
    assert goals["threshold:cpa"] == 250.0
    assert "target:total_revenue" not in goals  # no target in the dictionary
    assert rules.version == 1 and rules.window_days == 90 and rules.reference_model == "linear"
    assert rules.value(rules.break_even) == 1.0
    assert rules.value("target:channel_roas") == 3.0 and rules.value(1000) == 1000.0
    assert [r.name for r in rules.rules] == [
        "too_little_data", "sustained_below_break_even", "models_disagree", "scale_efficient_channel",
        "below_break_even", "default_hold",
    ]  # fmt: skip
    with pytest.raises(RuleError, match="target:nope"):
        rules.value("target:nope")


# ------------------------------------------------------------------------------------- each rule


def test_default_hold(rules):
    rec, name, reason = recommend(row(), rules)
    assert (rec, name) == ("hold", "default_hold")
    assert reason.startswith("No rule fired: ROAS (linear) 2.00 between break-even and target")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # spend 800 < 1,000 (opportunities 10 are enough): any-condition rule.
        ({"spend": 800.0}, "Too little data to judge: 800 spend and 10.0 attributed opportunities in the window."),
        # opportunities 2.5 < 3 (spend 12,345.6 is enough): money is rounded with a thousands separator.
        (
            {"spend": 12345.6, "attributed_opportunities": 2.5},
            "Too little data to judge: 12,346 spend and 2.5 attributed",
        ),
    ],
)
def test_too_little_data_means_test(rules, changes, reason):
    rec, name, text = recommend(row(**changes), rules)
    assert (rec, name) == ("test", "too_little_data")
    assert text.startswith(reason)


def test_sustained_weeks_below_break_even_means_reduce(rules):
    # 4 weeks >= 4 and ROAS 0.6 < break-even 1.0.
    rec, name, reason = recommend(row(weeks_below_break_even=4, roas=0.6, roas_min=0.4, roas_max=1.4), rules)
    assert (rec, name) == ("reduce", "sustained_below_break_even")
    assert reason == (
        "ROAS (linear) has been below break-even 1.00 for the last 4 weeks with spend and is 0.60 over the window."
    )
    # 3 weeks are not sustained; another model at 1.4 is above break-even -> no reduce, hold.
    assert recommend(row(weeks_below_break_even=3, roas=0.6, roas_min=0.4, roas_max=1.4), rules)[1] == "default_hold"
    # 6 weeks but the window's ROAS 1.1 is above break-even -> not this rule.
    assert recommend(row(weeks_below_break_even=6, roas=1.1), rules)[1] == "default_hold"


def test_models_disagree_means_test(rules):
    # One model at or above target 3.0 and two below break-even 1.0.
    r = row(models_above_target=1, models_below_break_even=2, roas_min=0.5, roas_max=3.4, roas=1.5)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("test", "models_disagree")
    assert "ROAS ranges from 0.50 to 3.40 across models (1 at or above target, 2 below break-even)" in reason


def test_scale_efficient_channel(rules):
    # mROI 1.4 > 1 and ROAS 3.2 >= target 3.0 (every model above target: no disagreement).
    r = row(mmm_mroi=1.4, roas=3.2, roas_min=3.1, roas_max=3.6, models_above_target=9)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("scale", "scale_efficient_channel")
    assert "marginal ROI 1.40" in reason and "ROAS (linear) 3.20, at or above the 3.00 target" in reason
    # ROAS exactly at target counts (>=); mROI exactly 1 does not (> 1).
    assert recommend({**r, "roas": 3.0}, rules)[0] == "scale"
    assert recommend({**r, "mmm_mroi": 1.0}, rules)[0] == "hold"


def test_below_break_even_under_every_model_means_reduce(rules):
    # ROAS 0.7 and the best model 0.9 < 1.0, only 2 weeks in a row.
    r = row(roas=0.7, roas_min=0.3, roas_max=0.9, models_below_break_even=9, weeks_below_break_even=2)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("reduce", "below_break_even")
    assert reason.startswith("Below break-even under every attribution model (best 0.90, linear 0.70)")
    # The best model at 1.05 is above break-even -> hold.
    assert recommend({**r, "roas_max": 1.05}, rules)[1] == "default_hold"


# ------------------------------------------------------------------------------------------- order


def test_first_matching_rule_wins(rules):
    # Both too_little_data (spend 500) and scale_efficient_channel hold: the first listed wins.
    assert recommend(row(spend=500.0, mmm_mroi=1.4, roas=3.2), rules)[:2] == ("test", "too_little_data")
    # Both sustained_below_break_even (5 weeks, ROAS 0.5) and below_break_even (best 0.8) hold.
    r = row(weeks_below_break_even=5, roas=0.5, roas_max=0.8, models_below_break_even=9)
    assert recommend(r, rules)[1] == "sustained_below_break_even"
    # models_disagree comes before scale_efficient_channel.
    r = row(mmm_mroi=2.0, roas=3.5, models_above_target=2, models_below_break_even=1, roas_min=0.6, roas_max=4.0)
    assert recommend(r, rules)[:2] == ("test", "models_disagree")


def test_rule_order_comes_from_the_file(goals, tmp_path):
    raw = _raw()
    raw["rules"].insert(0, raw["rules"].pop(3))  # scale_efficient_channel first
    edited = load_rules(goals, _write(tmp_path, raw))
    assert recommend(row(spend=500.0, mmm_mroi=1.4, roas=3.2), edited)[:2] == ("scale", "scale_efficient_channel")


# ----------------------------------------------------------------------------------- missing metrics


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_missing_metrics_make_conditions_false(rules, missing):
    # No MMM estimate: scale cannot fire even with ROAS 3.2 -> hold; the reason shows n/a for a missing ROAS.
    assert recommend(row(mmm_mroi=missing, roas=3.2), rules)[1] == "default_hold"
    # Spend unknown, opportunities 10: the any-rule's other condition is false too -> not too_little_data.
    assert recommend(row(spend=missing), rules)[1] == "default_hold"
    # A missing weeks count does not make a sustained reduce; below_break_even still applies.
    r = row(weeks_below_break_even=missing, roas=0.5, roas_max=0.8)
    assert recommend(r, rules)[1] == "below_break_even"
    rec, name, reason = recommend(row(roas=missing), rules)
    assert (rec, name) == ("hold", "default_hold") and "ROAS (linear) n/a between" in reason
    # A row without the metric at all behaves the same.
    assert recommend({k: v for k, v in row(mmm_mroi=1.4, roas=3.2).items() if k != "mmm_mroi"}, rules)[0] == "hold"


# ------------------------------------------------------------------------------------ editing the YAML


def test_editing_a_threshold_changes_the_outcome(goals, rules, tmp_path):
    r = row(spend=800.0)
    assert recommend(r, rules)[1] == "too_little_data"
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    old = '{metric: spend, op: "<", value: 1000}'
    assert text.count(old) == 1
    path = tmp_path / "recommendations.yaml"
    path.write_text(text.replace(old, '{metric: spend, op: "<", value: 500}'), encoding="utf-8")
    edited = load_rules(goals, path)
    assert recommend(r, edited)[1] == "default_hold"  # 800 is enough data now
    # Three weeks become sustained when the YAML says 3.
    raw = _raw()
    _rule(raw, "sustained_below_break_even")["all"][0]["value"] = 3
    edited = load_rules(goals, _write(tmp_path, raw))
    r = row(weeks_below_break_even=3, roas=0.6, roas_max=0.9)
    assert recommend(r, rules)[1] == "below_break_even"
    assert recommend(r, edited)[:2] == ("reduce", "sustained_below_break_even")


def test_goal_values_follow_the_metric_dictionary(goals, tmp_path):
    # A different ROAS target in the dictionary moves the scale line and the reason's number.
    r = row(mmm_mroi=1.4, roas=3.2)
    assert recommend(r, load_rules({**goals, "target:channel_roas": 3.5}))[1] == "default_hold"
    rec, _, reason = recommend(r, load_rules({**goals, "target:channel_roas": 2.5}))
    assert rec == "scale" and "at or above the 2.50 target" in reason


def test_reason_placeholders_of_kpis_with_digits(goals, tmp_path):
    raw = _raw()
    _rule(raw, "default_hold")["reason"] = (
        "Hold; revenue YoY target {value:target:revenue_growth_yoy:pct}, spend {spend:money}."
    )
    edited = load_rules(goals, _write(tmp_path, raw))
    # kpis.yaml: revenue_growth_yoy target 0.15.
    assert recommend(row(), edited)[2] == "Hold; revenue YoY target 15.0%, spend 5,000."


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: _rule(r, "scale_efficient_channel")["all"][1].update(value="target:nope"),
            r"rule 'scale_efficient_channel': value 'target:nope': no such KPI goal",
        ),
        (
            lambda r: _rule(r, "sustained_below_break_even")["all"][0].update(op="=>"),
            r"rule 'sustained_below_break_even': condition .* needs metric, op",
        ),
        (
            lambda r: _rule(r, "models_disagree")["all"][0].pop("metric"),
            r"rule 'models_disagree': condition .* needs metric",
        ),
        (
            lambda r: _rule(r, "default_hold").update(all=[{"metric": "roas", "op": ">", "value": 0}]),
            r"rule 'default_hold': the last rule must be an unconditional default",
        ),
        (
            lambda r: _rule(r, "models_disagree").update(all=[]),
            r"rule 'models_disagree': has no condition, so the rules after it never apply",
        ),
        (
            lambda r: _rule(r, "below_break_even").update(recommendation="grow"),
            r"rule 'below_break_even': recommendation must be one of",
        ),
        (
            lambda r: _rule(r, "too_little_data").update(all=[]),
            r"rule 'too_little_data': give exactly one of 'all' or 'any'",
        ),
        (
            lambda r: _rule(r, "below_break_even").update(reason="Best {value:target:nope:ratio}."),
            r"rule 'below_break_even': value 'target:nope'",
        ),
        (lambda r: r.update(break_even="threshold:nope"), r"break_even: value 'threshold:nope'"),
    ],
)
def test_invalid_rules_raise_naming_the_rule(goals, tmp_path, edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(RuleError, match=message):
        load_rules(goals, _write(tmp_path, raw))


def test_rules_without_a_default_are_invalid(goals, tmp_path):
    raw = _raw()
    raw["rules"] = [r for r in raw["rules"] if r["name"] != "default_hold"]
    with pytest.raises(RuleError, match=r"rule 'below_break_even': the last rule must be an unconditional default"):
        load_rules(goals, _write(tmp_path, raw))
    raw["rules"] = []
    with pytest.raises(RuleError, match=r"rules: none given"):
        load_rules(goals, _write(tmp_path, raw))


# ---------------------------------------------------------------------------- trailing_weeks_below


def test_trailing_weeks_below_hand_computed():
    weeks = pd.to_datetime(["2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26", "2026-02-02", "2026-02-09"])
    nan = float("nan")
    rows = (
        # Paid Search, oldest to latest: 0.5, 1.2, 0.8, (no ROAS), 0.9, 0.4 -> latest run 0.4, 0.9, 0.8 = 3
        # (the week without a ROAS is skipped, 1.2 ends the run).
        [("Paid Search", w, v) for w, v in zip(weeks, [0.5, 1.2, 0.8, nan, 0.9, 0.4])]
        # Paid Social: 0.2, 0.3 -> 2 (every week).
        + [("Paid Social", w, v) for w, v in zip(weeks[:2], [0.2, 0.3])]
        # Email: 0.5, then exactly 1.0 in the latest week: not below -> 0.
        + [("Email", w, v) for w, v in zip(weeks[:2], [0.5, 1.0])]
        # Display: no week with a ROAS -> no entry.
        + [("Display", weeks[0], nan)]
    )
    weekly = pd.DataFrame(rows, columns=["channel_group", "period", "value"]).sample(frac=1, random_state=7)
    got = trailing_weeks_below(weekly, ["channel_group"], 1.0)
    assert got.to_dict() == {"Paid Search": 3, "Paid Social": 2, "Email": 0}
    # A lower line: Paid Search 0.4 < 0.5 but 0.9 is not -> 1; Paid Social 2; Email 0.
    assert trailing_weeks_below(weekly, ["channel_group"], 0.5).to_dict() == {
        "Paid Search": 1,
        "Paid Social": 2,
        "Email": 0,
    }


def test_trailing_weeks_below_by_campaign_keeps_null_keys():
    weeks = pd.to_datetime(["2026-01-05", "2026-01-12", "2026-01-19"])
    weekly = pd.DataFrame(
        {
            "channel_group": ["Paid Search"] * 6,
            "campaign_key": ["brand"] * 3 + [None] * 3,
            "period": list(weeks) * 2,
            # brand: 0.5, 1.5, 0.7 -> 1; no campaign: 0.5, 0.6, 0.7 -> 3.
            "value": [0.5, 1.5, 0.7, 0.5, 0.6, 0.7],
        }
    )
    got = trailing_weeks_below(weekly, ["channel_group", "campaign_key"], 1.0).rename("weeks").reset_index()
    got = {
        (g, None if (c is None or (isinstance(c, float) and math.isnan(c))) else c): w
        for g, c, w in got.itertuples(index=False)
    }
    assert got == {("Paid Search", "brand"): 1, ("Paid Search", None): 3}
    assert trailing_weeks_below(weekly.iloc[0:0], ["channel_group"], 1.0).empty
