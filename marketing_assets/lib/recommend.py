"""Budget recommendations (scale / reduce / test / hold) from versioned YAML rules. No Dagster import.

The rules file (``config/recommendations.yaml``) lists rules in order; the first whose conditions hold
gives a channel group its recommendation, the rule's name and a reason in words. A condition's value is a
number or a KPI goal of the metric dictionary (``threshold:mmm_marginal_roi``), so a goal is defined once;
``missing`` / ``present`` test whether the row has the metric at all. Campaign rows follow their channel
group (:func:`campaign_reason`): the evidence the rules read is measured per channel group. See the YAML's
header for the row metrics.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files
from marketing_assets.lib.attribution.models import reference_model

DEFAULT_RULES_FILE = CONFIG_DIR / "recommendations.yaml"
RECOMMENDATIONS = ("scale", "reduce", "test", "hold")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
PRESENCE_OPS = ("missing", "present")
_PLACEHOLDER = re.compile(r"\{([a-z0-9_:]+?)(?::(money|ratio|num|int|pct|signed_pct))?\}")


class RuleError(ValueError):
    """The rules file is invalid; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    recommendation: str
    conditions: tuple[Mapping[str, Any], ...]
    mode: str  # "all" or "any"
    reason: str


@dataclass(frozen=True)
class RuleSet:
    version: int
    window_days: int
    reference_model: str
    break_even: Any
    rules: tuple[Rule, ...]
    goals: Mapping[str, float]
    campaign_reason: str = ""

    def value(self, spec: Any) -> float:
        """A condition value: a number, or ``target:KPI`` / ``threshold:KPI`` from the metric dictionary."""
        if isinstance(spec, str):
            if spec not in self.goals:
                raise RuleError(f"value {spec!r}: no such KPI goal in the metric dictionary")
            return self.goals[spec]
        return float(spec)


def kpi_goals(dictionary: Any) -> dict[str, float]:
    """``{"target:NAME": value, "threshold:NAME": value}`` of every KPI that has one."""
    goals = {}
    for kpi in dictionary:
        for kind in ("target", "threshold"):
            goal = getattr(kpi, kind)
            if goal:
                goals[f"{kind}:{kpi.name}"] = float(goal["value"])
    return goals


def load_rules(goals: Mapping[str, float], path: Path | str | None = None) -> RuleSet:
    """Load and validate the rules; ``goals`` from :func:`kpi_goals`."""
    with open(path or DEFAULT_RULES_FILE, encoding="utf-8") as fh:
        raw = yaml_files.safe_load(fh)
    rules = []
    for i, r in enumerate(raw.get("rules") or []):
        if not isinstance(r, Mapping) or not r.get("name"):
            raise RuleError(f"rule {i}: must be a mapping with a 'name'")
        where = f"rule {r['name']!r}"
        if r.get("recommendation") not in RECOMMENDATIONS:
            raise RuleError(f"{where}: recommendation must be one of {RECOMMENDATIONS}")
        modes = [m for m in ("all", "any") if m in r]
        if len(modes) != 1:
            raise RuleError(f"{where}: give exactly one of 'all' or 'any'")
        conditions = tuple(r[modes[0]] or ())
        for c in conditions:
            presence = isinstance(c, Mapping) and c.get("op") in PRESENCE_OPS
            if not isinstance(c, Mapping) or "metric" not in c or not (presence or (c.get("op") in OPS and "value" in c)):
                raise RuleError(
                    f"{where}: condition {c} needs metric and op (one of {[*OPS, *PRESENCE_OPS]}), and a value unless op is missing/present"
                )
        rules.append(Rule(r["name"], r["recommendation"], conditions, modes[0], " ".join(str(r.get("reason", "")).split())))
    if not rules:
        raise RuleError("rules: none given; the last rule must be an unconditional default (all: [])")
    if rules[-1].conditions:
        raise RuleError(f"rule {rules[-1].name!r}: the last rule must be an unconditional default (all: [])")
    for rule in rules[:-1]:
        if not rule.conditions:
            raise RuleError(f"rule {rule.name!r}: has no condition, so the rules after it never apply")
    if "reference_model" in raw:
        raise RuleError("reference_model: set it once in config/attribution.yaml (every headline uses it), not in the rules")
    ruleset = RuleSet(
        int(raw["version"]), int(raw["window_days"]), reference_model(), raw["break_even"], tuple(rules), dict(goals),
        " ".join(str(raw.get("campaign_reason", "")).split()),
    )
    for rule in rules:  # unknown goals fail at load time, not on the first matching row
        specs = [c["value"] for c in rule.conditions if "value" in c]
        placeholders = (m.group(1) for m in _PLACEHOLDER.finditer(rule.reason + " " + ruleset.campaign_reason))
        specs += [p.removeprefix("value:") for p in placeholders if p.startswith("value:")]
        for spec in specs:
            try:
                ruleset.value(spec)
            except (TypeError, ValueError) as exc:
                raise RuleError(f"rule {rule.name!r}: {exc}") from None
    try:
        ruleset.value(ruleset.break_even)
    except (TypeError, ValueError) as exc:
        raise RuleError(f"break_even: {exc}") from None
    return ruleset


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _fmt(v: Any, style: str | None) -> str:
    if _missing(v):
        return "n/a"
    if style == "money":
        return f"{v:,.0f}"
    if style == "ratio":
        return f"{v:.2f}"
    if style == "pct":
        return f"{v:.1%}"
    if style == "signed_pct":
        return f"{v:+.0%}"
    if style == "int":
        return f"{int(v)}"
    if style == "num":
        return f"{v:,.1f}"
    return str(v)


def _holds(ruleset: RuleSet, cond: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    v = row.get(cond["metric"])
    if cond["op"] in PRESENCE_OPS:
        return _missing(v) == (cond["op"] == "missing")
    if _missing(v):
        return False
    return bool(OPS[cond["op"]](float(v), ruleset.value(cond["value"])))


def _reason(ruleset: RuleSet, rule: Rule, row: Mapping[str, Any]) -> str:
    return _render(ruleset, rule.reason, row)


def _render(ruleset: RuleSet, template: str, row: Mapping[str, Any]) -> str:
    def sub(m: re.Match) -> str:
        name, style = m.group(1), m.group(2)
        if name == "reference_model":
            return ruleset.reference_model
        if name.startswith("value:"):
            return _fmt(ruleset.value(name[len("value:"):]), style)
        return _fmt(row.get(name), style)

    return _PLACEHOLDER.sub(sub, template)


def recommend(row: Mapping[str, Any], ruleset: RuleSet) -> tuple[str, str, str]:
    """``(recommendation, rule name, reason)`` of the first rule that holds for ``row``."""
    for rule in ruleset.rules:
        results = [_holds(ruleset, c, row) for c in rule.conditions]
        if (all(results) if rule.mode == "all" else any(results)) or not rule.conditions:
            return rule.recommendation, rule.name, _reason(ruleset, rule, row)
    raise AssertionError("unreachable: the last rule is unconditional")


def campaign_reason(row: Mapping[str, Any], ruleset: RuleSet) -> str:
    """Reason of a campaign row, which follows its channel group's recommendation: the rules file's
    ``campaign_reason`` template over the campaign's metrics and its group's (``group_*`` names)."""
    return _render(ruleset, ruleset.campaign_reason, row)
