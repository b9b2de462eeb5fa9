"""The attribution-model registry: every fact about a model in one entry.

A model is either a *rule* model (an SQL expression over one opportunity's ordered touches, see
:func:`marketing_assets.lib.attribution.credits.attribution_credits_sql` for the names it may use) or a
*data-driven* model (an SQL aggregate of the journey table, and a library function that turns the
aggregate into per-channel weights; the opportunity is then split over its channels in proportion). The credit columns, the table contracts,
the roll-ups, the KPI bases, the report labels and the glossary all read :data:`REGISTRY`; adding a model
is one :func:`register` call (or one entry below).

``reference_model`` (``config/attribution.yaml``) is the one model a headline uses: the recommendations'
reasons, the channel ROI and roll-up metadata and the marketing ROI report's tiles. Changing it changes
which model those headlines show, never a number.

No Dagster import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files

DEFAULT_ATTRIBUTION_FILE = CONFIG_DIR / "attribution.yaml"
KINDS = ("rule", "data_driven")


@dataclass(frozen=True)
class AttributionModel:
    """One attribution model.

    Attributes:
        name: model name; its credit column is ``<name>_credit``.
        kind: ``rule`` (``sql``) or ``data_driven`` (``weights``).
        label: reader-facing name (reports, charts).
        definition: glossary sentence; ``{parameter}`` placeholders are filled from the attribution config.
        fallback: glossary sentence when a parameter it names is not known.
        parameters: names of the attribution-config parameters the model reads.
        sql: rule models: ``f(t) -> SQL`` where ``t`` holds the SQL fragments of one touch (``t.amount``,
            ``t.n``, ``t.is_first``, ...) and the validated parameters.
        aggregate: data-driven models: ``f(journeys, params) -> SQL``, a SELECT aggregating the journey
            relation ``journeys`` (columns ``path``, ``conversions``, ``value``, ``nulls``) into what the
            model reads; its size is bounded by the channels (never one row per journey).
        weights: data-driven models: ``f(aggregate, params) -> ({channel: weight}, per-channel result frame)``
            where ``aggregate`` is the result of ``aggregate`` as a DataFrame.
        column_description: description of the credit column in the table contract.
    """

    name: str
    kind: str
    label: str
    definition: str
    fallback: str = ""
    parameters: tuple[str, ...] = ()
    sql: Callable[[SimpleNamespace], str] | None = None
    aggregate: Callable[[str, Mapping[str, Any]], str] | None = None
    weights: Callable[[pd.DataFrame, Mapping[str, Any]], tuple[dict[str, float], pd.DataFrame]] | None = None
    column_description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"attribution model {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        data_driven = self.weights is not None and self.aggregate is not None
        if (self.kind == "rule") != (self.sql is not None) or (self.kind == "data_driven") != data_driven:
            raise ValueError(f"attribution model {self.name!r}: a rule model needs `sql`, a data-driven model `aggregate` and `weights`")

    @property
    def credit_column(self) -> str:
        return f"{self.name}_credit"

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """The glossary sentence with the parameters in force (``fallback`` when one is missing)."""
        params = params or {}
        if any(params.get(p) is None for p in self.parameters):
            return self.fallback or self.definition
        values = {p: _Param(params[p]) for p in self.parameters}
        try:
            return self.definition.format(**values)
        except (IndexError, KeyError, ValueError):
            return self.fallback or self.definition


class _Param:
    """A parameter value for ``str.format``: ``{w_weights[0]:pct}`` is a share as ``30 %``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getitem__(self, i: int) -> _Param:
        return _Param(self.value[i])

    def __format__(self, spec: str) -> str:
        if spec == "pct":
            return f"{float(self.value) * 100:g} %"
        return format(self.value, spec)


# -------------------------------------------------------------------------------------- rule models

def _share(t: SimpleNamespace, condition: str) -> str:
    return f"{t.amount} * CASE WHEN {condition} THEN {t.real(1)} ELSE {t.real(0)} END"


def _position_based(t: SimpleNamespace) -> str:
    first, middle, last = t.position_weights
    pair = first + last
    two_first, two_last = (first / pair, last / pair) if pair > 0 else (0.5, 0.5)
    return (
        f"{t.amount} * CASE WHEN {t.n} = 1 THEN {t.real(1)}"
        f" WHEN {t.n} = 2 THEN CASE WHEN {t.is_first} THEN {t.real(two_first)} ELSE {t.real(two_last)} END"
        f" WHEN {t.is_first} THEN {t.real(first)} WHEN {t.is_last} THEN {t.real(last)}"
        f" ELSE {t.real(middle)} / ({t.n} - 2) END"
    )


def _w_shaped(t: SimpleNamespace) -> str:
    return (
        f"{t.amount} * CASE WHEN {t.n} = 1 THEN {t.real(1)} WHEN {t.is_first} OR {t.is_last} OR {t.lead} THEN"
        f" CASE WHEN {t.rest} = 0 THEN {t.role_weight} / {t.real(t.w_roles)} ELSE {t.role_weight} END"
        f" ELSE {t.real(t.w_weights[3])} / {t.rest} END"
    )


def _markov_order(params: Mapping[str, Any]) -> int:
    return int(params.get("markov_order") or 1)


def _markov_transitions(journeys: str, params: Mapping[str, Any]) -> str:
    from marketing_assets.lib.attribution.markov import markov_transitions_sql

    return markov_transitions_sql(journeys, order=_markov_order(params))


def _markov_weights(transitions: pd.DataFrame, params: Mapping[str, Any]) -> tuple[dict[str, float], pd.DataFrame]:
    from marketing_assets.lib.attribution.markov import markov_from_transitions

    result = markov_from_transitions(transitions, order=_markov_order(params))
    return dict(zip(result["channel"], result["conversions"], strict=True)), result


def _channel_sets(journeys: str, params: Mapping[str, Any]) -> str:
    from marketing_assets.lib.attribution.shapley import channel_sets_sql

    return channel_sets_sql(journeys)


def _shapley_weights(sets: pd.DataFrame, params: Mapping[str, Any]) -> tuple[dict[str, float], pd.DataFrame]:
    from marketing_assets.lib.attribution.shapley import pooled_shapley_from_sets

    return pooled_shapley_from_sets(sets)


REGISTRY: dict[str, AttributionModel] = {}
"""Model name -> model, in the order of the credit columns (rule models first)."""


def register(model: AttributionModel) -> AttributionModel:
    """Add (or replace) a model; rule models stay ahead of data-driven ones in the column order."""
    REGISTRY[model.name] = model
    ordered = sorted(REGISTRY.values(), key=lambda m: KINDS.index(m.kind))
    REGISTRY.clear()
    REGISTRY.update({m.name: m for m in ordered})
    return model


for _model in (
    AttributionModel(
        "first_touch", "rule", "First touch", "All credit to the first touchpoint before the opportunity.",
        sql=lambda t: _share(t, t.is_first), column_description="First touch.",
    ),
    AttributionModel(
        "last_touch", "rule", "Last touch", "All credit to the last touchpoint before the opportunity.",
        sql=lambda t: _share(t, t.is_last), column_description="Last touch.",
    ),
    AttributionModel(
        "last_non_direct", "rule", "Last non-direct", "All credit to the last touchpoint that was not direct traffic.",
        sql=lambda t: _share(t, f"{t.last_nd} OR ({t.nd_total} = 0 AND {t.is_last})"),
        column_description="Last non-direct touch.",
    ),
    AttributionModel(
        "linear", "rule", "Linear", "Equal credit to every touchpoint.",
        sql=lambda t: f"{t.amount} / {t.n}", column_description="Equal split.",
    ),
    AttributionModel(
        "time_decay", "rule", "Time decay",
        "More credit to touchpoints close to the opportunity (credit halves every {half_life_days:g} days further away).",
        fallback="More credit to touchpoints close to the opportunity.", parameters=("half_life_days",),
        sql=lambda t: f"{t.amount} * {t.decay} / {t.decay_total}",
        column_description="Exponential decay with the configured half-life.",
    ),
    AttributionModel(
        "position_based", "rule", "Position-based",
        "{position_weights[0]:pct} first, {position_weights[2]:pct} last, {position_weights[1]:pct} shared by the touchpoints in between.",
        fallback="Fixed shares for the first and last touchpoints, the rest shared by the touchpoints in between.",
        parameters=("position_weights",), sql=_position_based,
        column_description="U-shaped: configured first / middle / last shares.",
    ),
    AttributionModel(
        "w_shaped", "rule", "W-shaped",
        "{w_weights[0]:pct} to first touch, {w_weights[1]:pct} to lead creation, {w_weights[2]:pct} to opportunity creation; "
        "{w_weights[3]:pct} shared by the rest.",
        fallback="Most credit to first touch, lead creation and opportunity creation; the rest shared.",
        parameters=("w_weights",), sql=_w_shaped,
        column_description="W-shaped: configured first / lead / opportunity / rest shares.",
    ),
    AttributionModel(
        "markov", "data_driven", "Markov",
        "Data-driven: credit equals the drop in conversions when the channel is removed from all journeys.",
        parameters=(), aggregate=_markov_transitions, weights=_markov_weights,
        column_description="Markov removal effects, split over the opportunity's channels.",
    ),
    AttributionModel(
        "shapley", "data_driven", "Shapley",
        "Data-driven: each channel's average marginal contribution over all channel combinations.",
        aggregate=_channel_sets, weights=_shapley_weights, column_description="Shapley values, split over the opportunity's channels.",
    ),
):
    register(_model)


def model_names() -> tuple[str, ...]:
    """Every registered model, in credit-column order."""
    return tuple(REGISTRY)


def rule_models() -> tuple[str, ...]:
    return tuple(m.name for m in REGISTRY.values() if m.kind == "rule")


def data_driven_models() -> tuple[str, ...]:
    return tuple(m.name for m in REGISTRY.values() if m.kind == "data_driven")


def get_model(name: str) -> AttributionModel:
    if name not in REGISTRY:
        raise ValueError(f"unknown attribution model {name!r}; registered: {model_names()}")
    return REGISTRY[name]


def model_label(name: Any) -> str:
    model = REGISTRY.get(str(name))
    return model.label if model else str(name).replace("_", " ").capitalize()


def model_terms(params: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Glossary entries ``{label: definition}`` of every model, parameters filled from ``params``."""
    return {m.label: m.describe(params) for m in REGISTRY.values()}


def load_attribution_config(path: Path | str | None = None) -> dict[str, Any]:
    with open(path or DEFAULT_ATTRIBUTION_FILE, encoding="utf-8") as fh:
        return yaml_files.safe_load(fh) or {}


def reference_model(path: Path | str | None = None) -> str:
    """The model headlines use (``reference_model`` in ``config/attribution.yaml``), validated against the registry."""
    name = str(load_attribution_config(path).get("reference_model", ""))
    if name not in REGISTRY:
        raise ValueError(f"config/attribution.yaml: reference_model {name!r} is not a registered model {model_names()}")
    return name


__all__ = [
    "REGISTRY", "AttributionModel", "data_driven_models", "get_model", "model_label", "model_names", "model_terms",
    "reference_model", "register", "rule_models",
]
