"""Budget recommendation rules (config/recommendations.yaml): each rule on a crafted row, order, YAML edits, validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from marketing_assets.lib.kpis import load_kpi_dictionary
from marketing_assets.lib.recommend import DEFAULT_RULES_FILE, RuleError, campaign_reason, kpi_goals, load_rules, recommend


@pytest.fixture(scope="module")
def goals() -> dict:
    return kpi_goals(load_kpi_dictionary())


@pytest.fixture(scope="module")
def rules(goals):
    return load_rules(goals)


# A channel group whose MMM marginal ROI interval 0.8-1.3 contains break-even 1.0: test.
STRADDLE = {
    "channel_group": "Paid Social", "ad_spend": 5000.0, "attributed_opportunities": 10.0, "attributed_revenue": 10000.0,
    "channel_roas": 2.0, "channel_roas_min": 1.5, "channel_roas_max": 2.5, "mmm_roi": 1.8, "mmm_marginal_roi": 1.05,
    "mmm_marginal_roi_low": 0.8, "mmm_marginal_roi_high": 1.3, "plan_current_spend": 4000.0, "planned_spend": 3000.0,
    "planned_spend_change_pct": -0.25, "plan_period": "2026-03-02 to 2026-05-31", "mmm_best_other_group": "Paid Search",
    "mmm_marginal_roi_gap_low": -1.6, "mmm_marginal_roi_gap_high": 0.2,
}  # fmt: skip


def row(**changes) -> dict:
    return {**STRADDLE, **changes}


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_RULES_FILE.read_text(encoding="utf-8"))


def _rule(raw: dict, name: str) -> dict:
    return next(r for r in raw["rules"] if r["name"] == name)


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "recommendations.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ loading


def test_break_even_comes_from_the_metric_dictionary(goals, rules):
    # kpis.yaml: mmm_marginal_roi threshold 1.0 (break-even, revenue basis).
    assert goals["threshold:mmm_marginal_roi"] == 1.0
    assert "target:total_revenue" not in goals  # no target in the dictionary
    assert rules.version == 2 and rules.window_days == 90 and rules.reference_model == "linear"
    assert rules.value(rules.break_even) == 1.0 and rules.value(1000) == 1000.0
    assert [r.name for r in rules.rules] == [
        "no_marketing_mix_estimate", "too_little_spend", "clearly_above_break_even", "clearly_below_break_even",
        "clearly_better_than_the_alternatives", "clearly_worse_than_the_alternatives", "model_and_plan_disagree",
        "interval_straddles_break_even",
    ]  # fmt: skip
    with pytest.raises(RuleError, match="target:nope"):
        rules.value("target:nope")


# ------------------------------------------------------------------------------------- each rule


def test_interval_straddling_break_even_means_test(rules):
    rec, name, reason = recommend(row(), rules)
    assert (rec, name) == ("test", "interval_straddles_break_even")
    assert reason.startswith(
        "Not clear whether the next dollar pays back: MMM Marginal ROI 1.05 has a 80 % interval 0.80–1.30 that contains "
        "break-even 1.00. The budget plan for 2026-03-02 to 2026-05-31 moves the group -25%;"
    )
    assert reason.endswith("Attribution context: Channel ROAS (linear) 2.00.")


def test_interval_clearly_above_break_even_means_scale(rules):
    r = row(mmm_marginal_roi=2.3, mmm_marginal_roi_low=1.1, mmm_marginal_roi_high=2.8, planned_spend=6000.0, planned_spend_change_pct=0.5)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("scale", "clearly_above_break_even")
    assert "MMM Marginal ROI 2.30 (80 % interval 1.10–2.80) is above break-even 1.00" in reason
    assert "moves the group +50% (4,000 → 6,000)" in reason and "Channel ROAS (linear) 2.00 (1.50–2.50 across models)" in reason
    # The interval's lower end exactly at break-even is not clearly above it.
    assert recommend({**r, "mmm_marginal_roi_low": 1.0}, rules)[1] == "interval_straddles_break_even"
    # A plan that keeps the group's spend is not against scaling (>= 0).
    assert recommend({**r, "planned_spend_change_pct": 0.0}, rules)[0] == "scale"


def test_interval_clearly_below_break_even_means_reduce(rules):
    r = row(mmm_marginal_roi=0.6, mmm_marginal_roi_low=0.2, mmm_marginal_roi_high=0.9, planned_spend_change_pct=-0.5, channel_roas=1.9)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("reduce", "clearly_below_break_even")
    assert "MMM Marginal ROI 0.60 (80 % interval 0.20–0.90) is below break-even 1.00" in reason
    # Attribution ROAS above break-even does not overrule the model: it is cited as context.
    assert "Channel ROAS (linear) 1.90" in reason


def test_clearly_worse_than_where_the_plan_moves_the_money_means_reduce(rules):
    # Break-even is inside the interval 0.8-1.3, but every draw but the top 10 % says a dollar in Paid Search returns more.
    r = row(mmm_marginal_roi_gap_low=-1.9, mmm_marginal_roi_gap_high=-0.4)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("reduce", "clearly_worse_than_the_alternatives")
    assert reason.startswith("A dollar here returns clearly less than in Paid Search: the 80 % interval of the difference in MMM Marginal ROI is -1.90 to -0.40")
    assert "moves the group -25% (4,000 → 3,000)" in reason and "80 % interval 0.80–1.30, break-even 1.00" in reason
    # The plan keeping the group's budget is no reason to cut it: the rules say test.
    assert recommend({**r, "planned_spend_change_pct": 0.0}, rules)[1] == "interval_straddles_break_even"
    # A group whose last dollars clearly pay back is not cut for doing less well than another: model and plan disagree.
    clearly_pays = {**r, "mmm_marginal_roi": 1.3, "mmm_marginal_roi_low": 1.1, "mmm_marginal_roi_high": 1.5}
    assert recommend(clearly_pays, rules)[:2] == ("test", "model_and_plan_disagree")


def test_clearly_better_than_the_alternatives_means_scale(rules):
    r = row(mmm_marginal_roi_gap_low=0.3, mmm_marginal_roi_gap_high=1.2, planned_spend=5000.0, planned_spend_change_pct=0.25)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("scale", "clearly_better_than_the_alternatives")
    assert "returns clearly more than in Paid Search" in reason and "shift budget in rather than add it" in reason
    assert recommend({**r, "planned_spend_change_pct": -0.1}, rules)[1] == "interval_straddles_break_even"
    # A group clearly below break-even is not scaled for beating another: with the plan adding to it, model and plan disagree.
    assert recommend({**r, "mmm_marginal_roi_low": 0.5, "mmm_marginal_roi_high": 0.9}, rules)[1] == "model_and_plan_disagree"


@pytest.mark.parametrize(
    "changes",
    [
        # Clearly above break-even, but the same-total plan cuts the group: not scale.
        {"mmm_marginal_roi": 1.4, "mmm_marginal_roi_low": 1.1, "mmm_marginal_roi_high": 1.7, "planned_spend_change_pct": -0.1},
        # Clearly below, but the plan adds to the group: not reduce.
        {"mmm_marginal_roi": 0.7, "mmm_marginal_roi_low": 0.5, "mmm_marginal_roi_high": 0.95, "planned_spend_change_pct": 0.2},
        # No plan direction at all.
        {"mmm_marginal_roi_low": 1.1, "mmm_marginal_roi_high": 1.7, "planned_spend_change_pct": None},
    ],
)
def test_never_against_the_budget_plan_without_saying_why(rules, changes):
    rec, name, reason = recommend(row(**changes), rules)
    assert (rec, name) == ("test", "model_and_plan_disagree")
    assert "moves the group the other way" in reason


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_no_mmm_estimate_means_test(rules, missing):
    rec, name, reason = recommend(row(mmm_marginal_roi=missing, mmm_marginal_roi_low=missing, mmm_marginal_roi_high=missing), rules)
    assert (rec, name) == ("test", "no_marketing_mix_estimate")
    assert "Channel ROAS (linear) 2.00 on 5,000 spend" in reason
    # A row without the metric at all behaves the same.
    assert recommend({k: v for k, v in row().items() if k != "mmm_marginal_roi"}, rules)[1] == "no_marketing_mix_estimate"


def test_too_little_spend_means_test(rules):
    r = row(ad_spend=800.0, mmm_marginal_roi_low=1.5, mmm_marginal_roi_high=2.0, planned_spend_change_pct=0.3)
    rec, name, reason = recommend(r, rules)
    assert (rec, name) == ("test", "too_little_spend") and "(800)" in reason


def test_campaign_reason_says_the_figures_are_the_channel_groups(rules):
    text = campaign_reason(
        {"channel_group": "Paid Search", "group_recommendation": "scale", "channel_roas": 2.5, "group_channel_roas": 2.64,
         "cost_per_opportunity": 2913.0, "group_cost_per_opportunity": 2597.4}, rules)  # fmt: skip
    assert text.startswith("Follows the Paid Search recommendation (scale): the marketing-mix model and the budget plan measure channel groups")
    assert "Channel ROAS 2.50 against 2.64 for the whole group, Cost per Opportunity 2,913 against 2,597." in text


# ------------------------------------------------------------------------------------------- order


def test_rule_order_comes_from_the_file(goals, tmp_path):
    raw = _raw()
    r = row(ad_spend=500.0, mmm_marginal_roi_low=1.2, mmm_marginal_roi_high=2.0, planned_spend_change_pct=0.1)
    assert recommend(r, load_rules(goals))[1] == "too_little_spend"
    raw["rules"].insert(0, raw["rules"].pop(2))  # clearly_above_break_even first
    assert recommend(r, load_rules(goals, _write(tmp_path, raw)))[:2] == ("scale", "clearly_above_break_even")


# ------------------------------------------------------------------------------------ editing the YAML


def test_editing_a_threshold_changes_the_outcome(goals, rules, tmp_path):
    r = row(ad_spend=800.0)
    assert recommend(r, rules)[1] == "too_little_spend"
    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    old = '{metric: ad_spend, op: "<", value: 1000}'
    assert text.count(old) == 1
    path = tmp_path / "recommendations.yaml"
    path.write_text(text.replace(old, '{metric: ad_spend, op: "<", value: 500}'), encoding="utf-8")
    assert recommend(r, load_rules(goals, path))[1] == "interval_straddles_break_even"


def test_break_even_follows_the_metric_dictionary(goals):
    # A break-even of 0.7 in the dictionary puts the whole interval 0.8-1.3 above it; the reason quotes it.
    r = row(planned_spend_change_pct=0.1)
    rec, _, reason = recommend(r, load_rules({**goals, "threshold:mmm_marginal_roi": 0.7}))
    assert rec == "scale" and "above break-even 0.70" in reason
    assert recommend(r, load_rules({**goals, "threshold:mmm_marginal_roi": 1.5}))[0] == "test"


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: _rule(r, "clearly_above_break_even")["all"][0].update(value="threshold:nope"),
            r"rule 'clearly_above_break_even': value 'threshold:nope': no such KPI goal",
        ),
        (
            lambda r: _rule(r, "clearly_below_break_even")["all"][0].update(op="=>"),
            r"rule 'clearly_below_break_even': condition .* needs metric and op",
        ),
        (
            lambda r: _rule(r, "model_and_plan_disagree")["any"][0].pop("metric"),
            r"rule 'model_and_plan_disagree': condition .* needs metric",
        ),
        (
            lambda r: _rule(r, "clearly_above_break_even")["all"][0].pop("value"),
            r"rule 'clearly_above_break_even': condition .* a value unless op is missing/present",
        ),
        (
            lambda r: _rule(r, "interval_straddles_break_even").update(all=[{"metric": "ad_spend", "op": ">", "value": 0}]),
            r"rule 'interval_straddles_break_even': the last rule must be an unconditional default",
        ),
        (
            lambda r: _rule(r, "model_and_plan_disagree").update(any=[]),
            r"rule 'model_and_plan_disagree': has no condition, so the rules after it never apply",
        ),
        (
            lambda r: _rule(r, "clearly_below_break_even").update(recommendation="grow"),
            r"rule 'clearly_below_break_even': recommendation must be one of",
        ),
        (
            lambda r: _rule(r, "too_little_spend").update(all=[]),
            r"rule 'too_little_spend': give exactly one of 'all' or 'any'",
        ),
        (
            lambda r: _rule(r, "clearly_below_break_even").update(reason="Best {value:target:nope:ratio}."),
            r"rule 'clearly_below_break_even': value 'target:nope'",
        ),
        (lambda r: r.update(campaign_reason="{value:threshold:nope}"), r"value 'threshold:nope'"),
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
    raw["rules"] = [r for r in raw["rules"] if r["name"] != "interval_straddles_break_even"]
    with pytest.raises(RuleError, match=r"rule 'model_and_plan_disagree': the last rule must be an unconditional default"):
        load_rules(goals, _write(tmp_path, raw))
    raw["rules"] = []
    with pytest.raises(RuleError, match=r"rules: none given"):
        load_rules(goals, _write(tmp_path, raw))
