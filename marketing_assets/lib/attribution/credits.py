"""Per-opportunity × touchpoint credits for every attribution model, computed inside DuckDB.

One statement: a projection of the source (time-decay weight, type rank, optional channel
weights), one window operator over ``PARTITION BY opportunity_id ORDER BY <touch order>`` that
shares a single sort between every window function, and a final projection of the credit columns.
Whole-opportunity totals use ``PARTITION BY``-only windows: an ordered full frame would make DuckDB
evaluate floating-point sums order-sensitively, which costs about as much as the sort itself. No
Python work per row, so it scales with DuckDB rather than with the interpreter. Values that are
cheap to re-derive (flags, the amount as DOUBLE) are not computed before the window: every column
computed there travels through the sort.

A source that already holds each touch's place in the order (``touch_order=``, e.g. opportunity_touchpoints) is not
sorted at all: every per-opportunity value is then one GROUP BY over the narrow columns it reads, joined back to the
touches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from types import SimpleNamespace

import duckdb

from marketing_assets.lib.attribution.models import REGISTRY, data_driven_models, model_names, rule_models
from marketing_assets.lib.sql import ident, unordered_writes

MODELS: tuple[str, ...] = model_names()
"""Every attribution model at import time, in the order the credit columns appear (the registry, :mod:`.models`,
is the source: code that must see models registered later calls :func:`model_names`)."""

RULE_MODELS: tuple[str, ...] = rule_models()
"""Models computed from the touch sequence alone (no channel weights needed)."""

WEIGHTED_MODELS: tuple[str, ...] = data_driven_models()
"""Models whose credits need per-channel weights (``channel_weights``)."""

REQUIRED_COLUMNS: tuple[str, ...] = (
    "opportunity_id",
    "pipeline_amount",
    "opportunity_created_date",
    "touchpoint_id",
    "touchpoint_type",
    "touchpoint_date",
    "channel_name",
)
"""Columns the source must have; ``is_direct`` and ``is_lead_creation`` are read when present."""

FLAG_COLUMNS: tuple[str, ...] = ("is_direct", "is_lead_creation")

# Exponents of the time-decay weight 2^e are clamped to +-_MAX_EXPONENT so the per-opportunity
# sum never underflows to 0 or overflows (2^-960 is still a normal double).
_MAX_EXPONENT = 960.0
_PREFIX = "__att_"
# The non-direct and lead-creation counts of an opportunity travel in one BIGINT sum.
_FLAG_BASE = 1 << 31
_PART = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = re.compile(rf"^{_PART}(?:\.{_PART}){{0,2}}$")


def credit_column(model: str) -> str:
    """Name of the credit column of ``model`` (``<model>_credit``)."""
    if model not in REGISTRY:
        raise ValueError(f"unknown model {model!r}; models: {model_names()}")
    return f"{model}_credit"


def _real(x: float) -> str:
    """A DOUBLE literal (a bare ``0.4`` would be a DECIMAL in DuckDB)."""
    return f"CAST({float(x)!r} AS DOUBLE)"


def _text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _check_name(name: str, role: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ValueError(f"{role} must be a (optionally schema-qualified) table name, got {name!r}")
    return name.strip()


def _fractions(weights: Sequence[float], size: int, role: str) -> tuple[float, ...]:
    """Validate non-negative weights summing to 1 (within 1e-9) and renormalise them exactly."""
    values = tuple(float(w) for w in weights)
    if len(values) != size:
        raise ValueError(f"{role} needs {size} weights, got {len(values)}")
    if any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"{role} must be finite and non-negative, got {values}")
    total = math.fsum(values)
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{role} must sum to 1, got {values} (sum {total})")
    return tuple(w / total for w in values)


def _clean_channel_weights(
    channel_weights: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, float]]:
    weighted = data_driven_models()
    unknown = set(channel_weights) - set(weighted)
    if unknown:
        raise ValueError(f"channel_weights keys must be among {weighted}, got {sorted(unknown)}")
    cleaned: dict[str, dict[str, float]] = {}
    for model in weighted:
        if model not in channel_weights:
            continue
        cleaned[model] = {}
        for channel, weight in (channel_weights[model] or {}).items():
            w = float(weight) if weight is not None else 0.0
            # Negative (e.g. Shapley) or undefined weights give the channel no share.
            cleaned[model][str(channel)] = w if math.isfinite(w) and w > 0 else 0.0
    return cleaned


def _not_columns(names: Sequence[str], lower: Mapping[str, str]) -> list:
    """The entries of ``names`` that are not a column (``lower``: lower-cased name -> column)."""
    return [c for c in names if not isinstance(c, str) or c.lower() not in lower]


def attribution_credits_sql(
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    *,
    half_life_days: float = 7.0,
    position_weights: Sequence[float] = (0.4, 0.2, 0.4),
    w_weights: Sequence[float] = (0.3, 0.3, 0.3, 0.1),
    channel_weights: Mapping[str, Mapping[str, float]] | None = None,
    parameters: Mapping[str, Any] | None = None,
    partition_by: Sequence[str] = (),
    temporary: bool = False,
    touch_order: str | None = None,
    keep: Sequence[str] | None = None,
) -> None:
    """Create ``target`` (``CREATE OR REPLACE TABLE``) with every model's credit per touchpoint.

    ``source`` (table or view) has one row per opportunity × touchpoint with ``opportunity_id``,
    ``pipeline_amount`` (DOUBLE or DECIMAL), ``opportunity_created_date``, ``touchpoint_id``,
    ``touchpoint_type`` (``marketing`` / ``sales`` / ``web``), ``touchpoint_date``,
    ``channel_name`` and, when present, ``is_direct`` and ``is_lead_creation`` (BOOLEAN; a missing
    column or NULL counts as false). ``target`` keeps every source column and adds ``touch_order``
    (1-based), ``touch_count`` and one DOUBLE credit column per model, in currency, that sums to
    ``pipeline_amount`` over each opportunity (NULL where ``pipeline_amount`` is NULL).

    With ``partition_by`` (source columns, e.g. ``lookback_days``), each opportunity × ``partition_by``
    value is credited on its own, as if it were a separate opportunity: one statement credits several
    touch sets of an opportunity (one per lookback window) the way separate calls would.

    Touch order: ``touchpoint_date``, then ``touchpoint_type`` (marketing < sales < web < any
    other), then ``touchpoint_id`` (NULLs last); row_number makes exact ties count once.

    Models:
        - ``first_touch`` / ``last_touch``: everything to the first / last touch.
        - ``last_non_direct``: the last touch whose ``is_direct`` is false; the last touch when
          every touch is direct.
        - ``linear``: equal split.
        - ``time_decay``: weight ``2^(-age / half_life_days)`` with age = opportunity_created_date
          - touchpoint_date in days (exponent clamped to +-960, so the weights never underflow to 0;
          a NULL date gets the smallest weight).
        - ``position_based`` (U-shaped, ``position_weights`` = first, middle, last): one touch gets
          100%; two touches split first:last in proportion (50/50 for 40/20/40); otherwise first and
          last get their share and the middle touches share the middle weight equally.
        - ``w_shaped`` (``w_weights`` = first, lead creation, opportunity creation = last touch,
          rest): the lead-creation touch is the one flagged ``is_lead_creation`` (should several be
          flagged, they share its weight equally); without one, its weight is split equally between
          first and last touch. Weights of coinciding roles add up; the rest weight is shared
          equally by the other touches, or, when there are none, spread over the role touches in
          proportion to their role weight. Always sums to 100%.
        - ``markov`` / ``shapley`` (only with ``channel_weights``): the opportunity is split over
          its distinct channels in proportion to ``channel_weights[model][channel]``, then equally
          over that channel's touches; when every channel of the opportunity has weight 0 (or is
          not in the mapping) the split is linear. Negative or non-finite weights count as 0. A
          column is produced for each model present in ``channel_weights``.
        - every other rule model of the registry (:mod:`.models`): its ``sql(touch)`` expression over
          the fragments ``touch.amount``, ``touch.n``, ``touch.is_first``, ``touch.is_last``, ... .

    Args:
        con: DuckDB connection holding ``source``; ``target`` is created there.
        source: Table or view name (optionally schema-qualified; SQL identifier syntax).
        target: Name of the table to create or replace.
        half_life_days: Half-life of the time-decay model, > 0.
        position_weights: First / middle / last shares of the position-based model (sum 1).
        w_weights: First / lead-creation / opportunity-creation / rest shares of the W-shaped
            model (sum 1, the first three not all 0).
        channel_weights: ``{"markov": {channel: weight}, "shapley": {...}}``, e.g. the
            ``conversions`` of :func:`markov_attribution` / :func:`shapley_attribution`.
        parameters: further parameters of registered rule models (the attribution config), readable
            in their SQL as ``touch.<name>``; the SQL fragments above take precedence.
        partition_by: further source columns that, with ``opportunity_id``, delimit one credited set of
            touches.
        temporary: create ``target`` as a temporary table (kept in memory, spilled when needed; never written
            into the database file): for an intermediate that is read and dropped by the caller.
        touch_order: a source column that already holds each touch's 1-based position in the touch order within its
            credited set (e.g. ``opportunity_touchpoints.touch_order``; the caller vouches that it follows the order
            above). Every model then reads per-set aggregates joined back to the touches: no window sorts the rows.
            The column becomes the target's ``touch_order``; rule models cannot read ``touch.nd_run`` then.
        keep: the source columns ``target`` keeps (default: every one). An intermediate read by a roll-up keeps only
            its keys: the credits are the same, the table is narrower (less memory for a temporary one).

    Raises:
        ValueError: invalid names or parameters, missing source columns, or source columns that
            clash with the output columns.
    """
    source = _check_name(source, "source")
    target = _check_name(target, "target")
    if not (isinstance(half_life_days, (int, float)) and math.isfinite(half_life_days) and half_life_days > 0):
        raise ValueError(f"half_life_days must be a positive number, got {half_life_days!r}")
    p_first, p_middle, p_last = _fractions(position_weights, 3, "position_weights")
    w_first, w_lead, w_opp, w_rest = _fractions(w_weights, 4, "w_weights")
    w_roles = w_first + w_lead + w_opp
    if w_roles <= 0:
        raise ValueError("w_weights: the first three (role) weights must not all be 0")
    weights = _clean_channel_weights(channel_weights) if channel_weights is not None else {}

    columns = [row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()]
    lower = {c.lower(): c for c in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in lower]
    if missing:
        raise ValueError(f"{source} lacks required columns {missing}; it has {columns}")
    unknown = _not_columns(partition_by, lower)
    if unknown:
        raise ValueError(f"partition_by columns {unknown} are not columns of {source}; it has {columns}")
    if touch_order is not None:
        if not isinstance(touch_order, str) or touch_order.lower() not in lower:
            raise ValueError(f"touch_order {touch_order!r} is not a column of {source}; it has {columns}")
        order_column = lower[touch_order.lower()]
        columns = [c for c in columns if c != order_column]  # it is the target's touch_order
    if keep is not None:
        absent = _not_columns(keep, lower)
        if absent:
            raise ValueError(f"keep columns {absent} are not columns of {source}; it has {columns}")
        wanted = {c.lower() for c in keep}
        kept = [c for c in columns if c.lower() in wanted]
    outputs = ["touch_order", "touch_count"] + [credit_column(m) for m in rule_models() + tuple(weights)]
    clash = [c for c in columns if c.lower() in outputs or c.lower().startswith(_PREFIX)]
    if clash:
        raise ValueError(f"{source} already has output column(s) {clash}; drop or rename them first")

    def col(name: str) -> str:
        return "s." + ident(lower[name.lower()])

    keys = ["opportunity_id", *(c.lower() for c in partition_by)]  # one credited set of touches
    partition = ", ".join(ident(lower[c]) for c in keys)

    hl_seconds = _real(86400.0 * float(half_life_days))
    exponent = (
        f"COALESCE(GREATEST(LEAST((epoch({col('touchpoint_date')}) - epoch({col('opportunity_created_date')}))"
        f" / {hl_seconds}, {_real(_MAX_EXPONENT)}), {_real(-_MAX_EXPONENT)}), {_real(-_MAX_EXPONENT)})"
    )
    # Only what the window functions need is computed before the sort (everything computed here
    # travels through it); the flags and the amount are re-derived from the source columns after.
    src_select = [
        "s.*",
        f"pow(CAST(2 AS DOUBLE), {exponent}) AS {_PREFIX}decay",
        f"CASE {col('touchpoint_type')} WHEN 'marketing' THEN 0 WHEN 'sales' THEN 1 WHEN 'web' THEN 2 ELSE 3 END"
        f" AS {_PREFIX}type_rank",
    ]
    join = ""
    if weights:
        channels = sorted(set().union(*(w.keys() for w in weights.values())))
        models = list(weights)
        if channels:
            rows = ", ".join(
                "(" + ", ".join([_text(ch)] + [_real(weights[m].get(ch, 0.0)) for m in models]) + ")"
                for ch in channels
            )
            names = ", ".join(["channel"] + [f"w_{m}" for m in models])
            join = (
                f" LEFT JOIN (VALUES {rows}) AS {_PREFIX}weights({names})"
                f" ON CAST({col('channel_name')} AS VARCHAR) = {_PREFIX}weights.channel"
            )
            for m in models:
                src_select.append(f"COALESCE({_PREFIX}weights.w_{m}, {_real(0)}) AS {_PREFIX}w_{m}")
        else:
            for m in models:
                src_select.append(f"{_real(0)} AS {_PREFIX}w_{m}")
        # touches per opportunity × channel from a GROUP BY joined back (a window partitioned by the channel would sort
        # every wide row once more)
        group = [ident(lower[c]) for c in (*keys, "channel_name")]
        join += (
            f" JOIN (SELECT {', '.join(group)}, count(*) AS {_PREFIX}n FROM {source} GROUP BY ALL) AS {_PREFIX}ct ON "
            + " AND ".join(f"{col(c)} IS NOT DISTINCT FROM {_PREFIX}ct.{g}" for c, g in zip((*keys, "channel_name"), group))
        )
        src_select.append(f"{_PREFIX}ct.{_PREFIX}n AS {_PREFIX}channel_touches")

    p = _PREFIX
    direct = f"COALESCE({ident(lower['is_direct'])}, FALSE)" if "is_direct" in lower else "FALSE"
    lead = f"COALESCE({ident(lower['is_lead_creation'])}, FALSE)" if "is_lead_creation" in lower else "FALSE"
    amount = f"CAST({ident(lower['pipeline_amount'])} AS DOUBLE)"
    src = f"SELECT {', '.join(src_select)} FROM {source} AS s{join}"
    weight_totals = {m: f"sum({p}w_{m} / {p}channel_touches)" for m in weights}
    if touch_order is None:
        # Whole-opportunity aggregates use PARTITION BY only (DuckDB computes them on the same sorted
        # partitions without an order-sensitive frame); the two flag counts share one packed sum.
        whole = f"(PARTITION BY {partition})"
        win_select = [
            f"row_number() OVER w AS {p}order",
            f"count(*) OVER {whole} AS {p}n",
            # sum(BIGINT) is a HUGEINT; casting back keeps the arithmetic on it cheap.
            f"CAST(sum(CAST(NOT {direct} AS BIGINT) + CAST({lead} AS BIGINT) * {_FLAG_BASE}) OVER {whole} AS BIGINT)"
            f" AS {p}flags",
            f"count(*) FILTER (WHERE NOT {direct}) OVER wr AS {p}nd_run",
            f"first_value({lead}) OVER wa AS {p}lead_first",
            f"last_value({lead}) OVER wa AS {p}lead_last",
            f"sum({p}decay) OVER {whole} AS {p}decay_total",
        ] + [f"{total} OVER {whole} AS {p}{m}_total" for m, total in weight_totals.items()]
        order, n = f"{p}order", f"{p}n"
        nd_total = f"({p}flags % {_FLAG_BASE})"
        lead_total = f"({p}flags // {_FLAG_BASE})"
        last_nd = f"(NOT {direct} AND {p}nd_run = {nd_total})"
        ordered = {"nd_run": f"{p}nd_run"}
    else:
        # The touch order is given: every per-set value is an aggregate of the set (one GROUP BY over the narrow
        # columns it reads), joined back to the touches; the wide rows are never sorted.
        order, n = ident(order_column), f"{p}n"
        keys_out = [f"{ident(lower[c])} AS {p}k{i}" for i, c in enumerate(keys)]
        set_select = keys_out + [
            f"count(*) AS {p}n",
            f"count(*) FILTER (WHERE NOT {direct}) AS {p}nd_total",
            f"count(*) FILTER (WHERE {lead}) AS {p}lead_total",
            f"max({order}) FILTER (WHERE NOT {direct}) AS {p}nd_last",
            f"COALESCE(min({order}) FILTER (WHERE {lead}) = 1, FALSE) AS {p}lead_first",
            f"COALESCE(max({order}) FILTER (WHERE {lead}) = count(*), FALSE) AS {p}lead_last",
            f"sum({p}decay) AS {p}decay_total",
        ] + [f"{total} AS {p}{m}_total" for m, total in weight_totals.items()]
        on = " AND ".join(f"{p}t.{ident(lower[c])} IS NOT DISTINCT FROM {p}sets.{p}k{i}" for i, c in enumerate(keys))
        nd_total, lead_total = f"{p}nd_total", f"{p}lead_total"
        last_nd = f"COALESCE({order} = {p}nd_last, FALSE)"
        ordered = {}
    is_first, is_last = f"({order} = 1)", f"({order} = {n})"
    role_weight = (
        f"(CASE WHEN {is_first} THEN {_real(w_first)} ELSE 0 END"
        f" + CASE WHEN {is_last} THEN {_real(w_opp)} ELSE 0 END"
        f" + CASE WHEN {lead_total} = 0 THEN"
        f" CASE WHEN {is_first} THEN {_real(w_lead / 2)} ELSE 0 END"
        f" + CASE WHEN {is_last} THEN {_real(w_lead / 2)} ELSE 0 END"
        f" WHEN {lead} THEN {_real(w_lead)} / {lead_total} ELSE 0 END)"
    )
    # Role touches: first, last and every flagged touch (for n >= 2).
    n_roles = (
        f"(2 + {lead_total} - CASE WHEN {p}lead_first THEN 1 ELSE 0 END - CASE WHEN {p}lead_last THEN 1 ELSE 0 END)"
    )
    rest = f"({n} - {n_roles})"
    # The SQL fragments a rule model's expression (models.REGISTRY[...].sql) is written in.
    touch = SimpleNamespace(**{**dict(parameters or {}), **dict(
        amount=amount, n=n, is_first=is_first, is_last=is_last, direct=direct, lead=lead,
        nd_total=nd_total, last_nd=last_nd, decay=f"{p}decay", decay_total=f"{p}decay_total",
        role_weight=role_weight, rest=rest, w_roles=w_roles, real=_real,
        position_weights=(p_first, p_middle, p_last), w_weights=(w_first, w_lead, w_opp, w_rest),
        half_life_days=float(half_life_days), **ordered,
    )})
    credits = {m: REGISTRY[m].sql(touch) for m in rule_models()}
    for m in weights:
        credits[m] = (
            f"CASE WHEN {p}{m}_total > 0 THEN {amount} * ({p}w_{m} / {p}channel_touches) / {p}{m}_total"
            f" ELSE {amount} / {n} END"
        )

    out_select = (
        [ident(c) for c in (columns if keep is None else kept)]
        + [f"{order} AS touch_order", f"{n} AS touch_count"]
        + [f"{expr} AS {credit_column(m)}" for m, expr in credits.items()]
    )
    if touch_order is None:
        order_by = (
            f"touchpoint_date ASC NULLS LAST, {p}type_rank, touchpoint_type ASC NULLS LAST,"
            f" touchpoint_id ASC NULLS LAST"
        )
        body = f"""
WITH {p}src AS (
    {src}
),
{p}win AS (
    SELECT *, {", ".join(win_select)}
    FROM {p}src
    WINDOW w AS (PARTITION BY {partition} ORDER BY {order_by}),
           wa AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING),
           wr AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT {", ".join(out_select)}
FROM {p}win
"""
    else:
        # the source projection twice rather than one CTE read twice (DuckDB would materialise the wide rows)
        body = f"""
SELECT {", ".join(out_select)}
FROM ({src}) AS {p}t
JOIN (SELECT {", ".join(set_select)} FROM ({src}) AS {p}s GROUP BY ALL) AS {p}sets ON {on}
"""
    sql = f"CREATE OR REPLACE {'TEMP TABLE' if temporary else 'TABLE'} {target} AS{body}"
    with unordered_writes(con):  # the rows come out of a window in no set order: every thread writes
        con.execute(sql)
