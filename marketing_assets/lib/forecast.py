"""Revenue forecast of the open CRM pipeline, with a Monte-Carlo interval and a backtest. No Dagster import.

What is forecast: the won revenue that the opportunities *open at* ``as_of`` will close in each of the
next ``horizon_months`` calendar months. Pipeline created after ``as_of`` is not forecast (it is not in
the CRM yet), so the numbers are a floor of total bookings, and the backtest compares like with like.

Method (all rates use only what was known at ``as_of``):

- *Cut-off.* ``as_of`` is a date; the information cut-off is the start of the next day, ``C``. An
  opportunity is known when created before ``C`` and closed when its ``closed_date`` is before ``C``;
  one closed on or after ``C`` is open at ``as_of`` (its later outcome is never read), so re-running a
  past ``as_of`` on today's table gives the forecast that could have been made then.
- *Win timing by age.* There is no stage history, so the history is the age axis: every opportunity
  created before ``C`` is followed from creation (age 0, in whole days) until it closed won, closed
  lost, or ``C`` (censored, still open). Per segment and age day ``k``, the discrete hazards are
  ``h_won(k) = won(k) / at_risk(k)`` and ``h_lost(k) = lost(k) / at_risk(k)``, where ``at_risk(k)``
  counts the opportunities still open at age ``k`` and observed that long. For an opportunity open at
  age ``a``, the probability to close won ``u`` days after ``as_of`` is the Aalen-Johansen cumulative
  incidence conditioned on being open at age ``a``:
  ``prod(1 - h_won(j) - h_lost(j), j = a .. a+u-1) * h_won(a+u)``. This is exactly "among the past
  opportunities still open at age a, the share won, and when", with the still-open ones counted as
  censored instead of silently dropped (dropping them would overstate early closes).
- *Thin data.* Ages are bucketed (:data:`DEFAULT_AGE_BUCKETS`: 0-30, 31-60, 61-90, 91-180, 181+
  days). For a segment and bucket with fewer than ``min_history`` opportunities at risk at the
  bucket's first day, the bucket's hazards come from all segments pooled; if the pooled history is
  thin too, from the pooled bucket-constant rate (events / opportunity-days in the bucket).
- *Value.* Expected value in month ``m`` = won-amount ratio x ``pipeline_amount`` x P(closes won in
  ``m`` | age, segment). The ratio is ``sum(won_amount) / sum(pipeline_amount)`` of the segment's won
  opportunities closed before ``C`` (pooled when the segment has fewer than ``min_history`` wins,
  1.0 without any win). A won deal with no ``won_amount`` counts 0, in the ratio and in the backtest.
- *Interval.* Monte-Carlo: each simulation draws every open opportunity's outcome (won in forecast
  month 1..M, or not won within the horizon) from its probabilities, and sums ratio x amount per
  segment and month; the ``'All'`` row's interval is a quantile of the simulated total, not a sum of
  bounds. With ``bootstrap=True`` parameter uncertainty is added by a Poisson bootstrap of the
  history: a bootstrap replicate reweights every history opportunity by a Poisson(1) draw, which on
  the aggregated (segment, exit day, outcome) counts is exactly one Poisson draw per cell. Each block
  of ``SIMS_PER_REPLICATE`` simulations uses one replicate. The won-amount ratio is not bootstrapped.
- *Large segments.* A segment with more than :data:`EXACT_MAX_OPEN` open opportunities at ``as_of`` is
  not simulated deal by deal: SQL hands over only, per age day ``k``, the count, ``sum(v)`` and
  ``sum(v^2)`` of its open opportunities (``v`` = ratio x amount). Its expected revenue is still exact,
  ``sum_k p_km sum(v)_k``. Its simulated month totals are drawn, per simulation, from a multivariate
  normal with the exact conditional moments given the replicate's month probabilities ``p_k``: mean
  ``sum_k p_km sum(v)_k`` and covariance ``sum_k sum(v^2)_k (diag(p_k) - p_k p_k')`` across months (an
  opportunity closes won in at most one month, hence the negative covariances), clipped at 0. Such a
  total is the sum of thousands of independent bounded terms, so the normal law is accurate: on the
  large benchmark (three segments of 19k-27k open deals) the 5%/95% bounds differ from the exact
  simulation's by at most 0.4%, as much as the exact simulation's own bounds move between seeds. The
  bootstrap replicate per block, the seed and the segment independence (the ``'All'`` total is the sum
  of the segments' draws) are kept. Small segments, where single large deals matter, keep the exact
  per-opportunity simulation, and so do all segments of a pipeline of the default demo's size. Where a
  large segment expects only a handful of wins in a month (the last horizon month of a short sales
  cycle), the normal law is crude (lower bound 0, upper bound off by a few deals' value), on an amount
  that is small by construction.

Why the current ``stage`` is not used for the rates: it is the stage *now*. The history gives no
opportunity's stage at a past age, so a stage-specific rate would have to be estimated from
opportunities whose recorded stage is their final one (Closed Won / Closed Lost) or from the ones
still open today, which is both biased and, in a backtest, leakage. Stage (and ``is_won``) is only
used as a data-quality guard: a row that says it is closed (``is_won`` true or a stage starting with
"closed") but has no ``closed_date`` cannot be placed in time and is left out of history and pipeline.

Win probability is per opportunity count (not amount-weighted) and deals are assumed to close
independently; rates are assumed stable over the history (no recency weighting).

Timing is in whole days: an opportunity open at age ``a`` that closes at age ``k`` is placed ``k - a``
days after ``as_of`` (within a day of the true date), which decides its forecast month.

Heavy work (grouped scans of the opportunity table) is DuckDB SQL; the rest is vectorised numpy over
segments x age days and over blocks of simulations, never a Python loop over opportunities. Only the
open opportunities of segments up to :data:`EXACT_MAX_OPEN` reach numpy one by one, so the work per
forecast is bounded by segments x ``EXACT_MAX_OPEN`` x ``n_sims`` whatever the table's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from marketing_assets.constants import SOURCES
from marketing_assets.lib.refs import ref



def opportunities_table() -> str:
    """The default opportunity table, ``sources.crm_opportunities``, named through ``ref()`` (the forecast reads it)."""
    return ref(SOURCES, "crm_opportunities")


DEFAULT_AGE_BUCKETS: tuple[int, ...] = (0, 31, 61, 91, 181)
"""First age day of each age bucket: 0-30, 31-60, 61-90, 91-180 and 181+ days."""
ALL_SEGMENTS = "All"
UNKNOWN_SEGMENT = "(unknown)"
SIMS_PER_REPLICATE = 10
"""Simulations drawn per bootstrap replicate of the history."""
MAX_DRAWS_PER_BLOCK = 4_000_000
"""Upper bound on uniforms held in memory at once (simulations x open opportunities)."""
EXACT_MAX_OPEN = 5_000
"""Segments with at most this many open opportunities at ``as_of`` are simulated deal by deal; larger ones from the
exact conditional moments of their month totals (module docstring, *Large segments*). At 5,000 open deals a segment's
month total sums hundreds of expected wins (a few % of the pipeline closes won per month), where the normal law's
quantile error is below the exact simulation's own Monte-Carlo error; the default demo's segments (a few hundred open
deals) stay well below it and keep the exact simulation."""
FORECAST_COLUMNS = [
    "as_of", "forecast_month", "sales_segment", "open_opportunities", "open_pipeline",
    "expected_revenue", "lower", "upper", "method", "horizon_expected_revenue", "horizon_lower", "horizon_upper",
]  # fmt: skip
BACKTEST_COLUMNS = [
    "as_of", "forecast_month", "sales_segment", "expected_revenue", "lower", "upper",
    "actual_revenue", "abs_pct_error", "covered",
]  # fmt: skip

# Tiers of the hazard used for a segment and age bucket.
_SEGMENT, _POOLED, _POOLED_CONSTANT = 0, 1, 2


def _to_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _month_start(d: dt.date, add: int = 0) -> dt.date:
    idx = d.year * 12 + d.month - 1 + add
    return dt.date(idx // 12, idx % 12 + 1, 1)


CLOSED_WITHOUT_DATE_SQL = "(closed_date IS NULL AND (coalesce(is_won, false) OR lower(coalesce(stage, '')) LIKE 'closed%'))"
"""A row that says it is closed (won, or a stage starting with "closed") but has no close date: neither open nor
closed at any ``as_of``, so left out of the forecast and of every reconciliation with it."""


def _base_sql(table: str) -> str:
    """Opportunities known before the cut-off ``$cutoff``, with segment, outcome flags and amounts."""
    return f"""
        SELECT CAST(opportunity_id AS VARCHAR) AS opportunity_id,
               coalesce(CAST(sales_segment AS VARCHAR), '{UNKNOWN_SEGMENT}') AS seg,
               CAST(opportunity_created_date AS TIMESTAMP) AS created,
               CAST(closed_date AS TIMESTAMP) AS closed,
               coalesce(is_won, false) AS won,
               CAST(coalesce(pipeline_amount, 0) AS DOUBLE) AS amount,
               CAST(coalesce(pipeline_amount, 0) AS DECIMAL(38, 10)) AS amount_exact,  -- exact sums: reproducible
               CAST(coalesce(won_amount, 0) AS DECIMAL(38, 10)) AS won_exact,
               closed_date IS NOT NULL AND CAST(closed_date AS TIMESTAMP) < $cutoff AS is_closed
        FROM {table}
        WHERE opportunity_created_date IS NOT NULL
          AND CAST(opportunity_created_date AS TIMESTAMP) < $cutoff
          AND NOT {CLOSED_WITHOUT_DATE_SQL}"""


def _days(ts_expr: str) -> str:
    return f"greatest(0, floor((epoch({ts_expr}) - epoch(created)) / 86400))::BIGINT"


def latest_date(con: duckdb.DuckDBPyConnection, table: str | None = None) -> dt.date | None:
    """The latest creation or close date in the opportunity table (the default ``as_of``)."""
    table = table or opportunities_table()
    row = con.execute(f"SELECT greatest(max(opportunity_created_date), max(closed_date)) FROM {table}").fetchone()
    return None if row is None or row[0] is None else _to_date(row[0])


# ------------------------------------------------------------------------------------------- history


@dataclass
class _History:
    """Aggregated history at the cut-off and the open opportunities."""

    segments: list[str]
    won: np.ndarray  # (S, G) won closes by segment x age day
    lost: np.ndarray  # (S, G)
    censored: np.ndarray  # (S, G) still open at the cut-off, by age at the cut-off
    ratio: np.ndarray  # (S,) won-amount ratio
    open_seg: np.ndarray  # (N,) segment index of each open opportunity of a segment simulated exactly
    open_age: np.ndarray  # (N,) age in days at the cut-off
    open_amount: np.ndarray  # (N,)
    agg_seg: np.ndarray  # (A,) segment of each (segment, age) of the open pipeline of the aggregated segments
    agg_age: np.ndarray  # (A,) age in days at the cut-off
    agg_n: np.ndarray  # (A,) open opportunities
    agg_amount: np.ndarray  # (A,) their sum of amounts
    agg_amount2: np.ndarray  # (A,) their sum of squared amounts


def _load_history(
    con, table: str, cutoff: dt.datetime, horizon_days: int, min_history: int, exact_max_open: int = EXACT_MAX_OPEN
) -> _History:
    params = {"cutoff": cutoff}
    with_segments = f"""WITH o AS ({_base_sql(table)}),
        segs AS (SELECT seg, (row_number() OVER (ORDER BY seg) - 1)::BIGINT AS seg_idx FROM (SELECT DISTINCT seg FROM o)),
        x AS (SELECT * FROM o JOIN segs USING (seg))"""
    segments = [r[0] for r in con.execute(f"{with_segments} SELECT seg FROM segs ORDER BY seg_idx", params).fetchall()]
    cells = con.execute(
        f"""{with_segments}
        SELECT seg_idx, CASE WHEN NOT is_closed THEN 0 WHEN won THEN 1 ELSE 2 END AS outcome,
               CASE WHEN is_closed THEN {_days("closed")} ELSE {_days("$cutoff")} END AS day, count(*)::DOUBLE AS n,
               -- the open pipeline's sums, exact (squares to 1e-6) so that the same seed gives the same draws
               sum(amount_exact) FILTER (WHERE NOT is_closed)::DOUBLE AS amount,
               sum(CAST(amount * amount AS DECIMAL(38, 6))) FILTER (WHERE NOT is_closed)::DOUBLE AS amount2
        FROM x GROUP BY ALL""",
        params,
    ).fetchnumpy()
    ratios = con.execute(
        f"""{with_segments}
        SELECT seg_idx, count(*)::DOUBLE AS n, sum(won_exact)::DOUBLE AS won_amount, sum(amount_exact)::DOUBLE AS amount
        FROM x WHERE is_closed AND won GROUP BY ALL""",
        params,
    ).fetchnumpy()
    n_seg = len(segments)
    # open opportunities per segment (the still-open cells): segments above exact_max_open stay aggregated
    is_open = cells["outcome"] == 0
    cell_seg = cells["seg_idx"].astype(np.int64)
    n_open = np.bincount(cell_seg[is_open], weights=cells["n"][is_open], minlength=n_seg)
    exact = [s for s in range(n_seg) if n_open[s] <= exact_max_open]
    opens = {"seg_idx": np.zeros(0, np.int64), "age": np.zeros(0, np.int64), "amount": np.zeros(0)}
    if exact and n_open[exact].sum() > 0:
        only_exact = "" if len(exact) == n_seg else f" AND seg_idx IN ({', '.join(map(str, exact))})"
        opens = con.execute(  # in a fixed order, so that the same seed gives the same simulation
            f"""{with_segments}
            SELECT seg_idx, {_days("$cutoff")} AS age, amount FROM x WHERE NOT is_closed{only_exact}
            ORDER BY seg_idx, created, opportunity_id, amount""",
            params,
        ).fetchnumpy()
    agg = np.flatnonzero(is_open & (n_open[cell_seg] > exact_max_open))
    agg = agg[np.lexsort((cells["day"][agg], cell_seg[agg]))]  # by segment and age: a fixed order for a fixed seed

    max_day = int(max(cells["day"].max(initial=0), opens["age"].max(initial=0)))
    grid = max_day + horizon_days + 2
    counts = np.zeros((3, n_seg, grid))
    np.add.at(
        counts,
        (cells["outcome"].astype(np.int64), cells["seg_idx"].astype(np.int64), cells["day"].astype(np.int64)),
        cells["n"].astype(float),
    )

    n_won = np.zeros(n_seg)
    won_amt = np.zeros(n_seg)
    pipe_amt = np.zeros(n_seg)
    idx = ratios["seg_idx"].astype(np.int64)
    n_won[idx], won_amt[idx], pipe_amt[idx] = ratios["n"], ratios["won_amount"], ratios["amount"]
    pooled_ratio = won_amt.sum() / pipe_amt.sum() if pipe_amt.sum() > 0 else 1.0
    seg_ratio = np.divide(won_amt, pipe_amt, out=np.full(n_seg, pooled_ratio), where=pipe_amt > 0)
    ratio = np.where(n_won >= max(min_history, 1), seg_ratio, pooled_ratio)

    return _History(
        segments=segments,
        censored=counts[0],
        won=counts[1],
        lost=counts[2],
        ratio=ratio,
        open_seg=opens["seg_idx"].astype(np.int64),
        open_age=opens["age"].astype(np.int64),
        open_amount=opens["amount"].astype(float),
        agg_seg=cell_seg[agg],
        agg_age=cells["day"][agg].astype(np.int64),
        agg_n=cells["n"][agg].astype(float),
        agg_amount=cells["amount"][agg].astype(float),
        agg_amount2=cells["amount2"][agg].astype(float),
    )


# ------------------------------------------------------------------------------------------- hazards


def _at_risk(exits: np.ndarray) -> np.ndarray:
    """Opportunities still open at the start of each age day: exits on that day or later (last axis)."""
    return np.flip(np.cumsum(np.flip(exits, -1), -1), -1)


def _bucket_bounds(buckets: Sequence[int], grid: int) -> list[tuple[int, int]]:
    starts = [b for b in buckets if b < grid]
    return [(lo, (starts[i + 1] if i + 1 < len(starts) else grid)) for i, lo in enumerate(starts)]


def _tiers(won, lost, censored, bounds, min_history: int) -> np.ndarray:
    """Per segment x bucket: which hazard to use (segment, pooled daily, pooled bucket-constant)."""
    n = _at_risk(won + lost + censored)
    pooled = n.sum(0)
    tiers = np.empty((n.shape[0], len(bounds)), dtype=np.int8)
    for b, (lo, _) in enumerate(bounds):
        tiers[:, b] = np.where(
            n[:, lo] >= min_history, _SEGMENT, np.where(pooled[lo] >= min_history, _POOLED, _POOLED_CONSTANT)
        )
    return tiers


def _hazards(won, lost, censored, tiers, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Daily won and lost hazards per segment x age day, each bucket from the source its tier names."""
    n = _at_risk(won + lost + censored)
    hw = np.divide(won, n, out=np.zeros_like(won), where=n > 0)
    hl = np.divide(lost, n, out=np.zeros_like(lost), where=n > 0)
    pw, pl, pn = won.sum(0), lost.sum(0), n.sum(0)
    phw = np.divide(pw, pn, out=np.zeros_like(pw), where=pn > 0)
    phl = np.divide(pl, pn, out=np.zeros_like(pl), where=pn > 0)
    for b, (lo, hi) in enumerate(bounds):
        exposure = pn[lo:hi].sum()
        const_w = pw[lo:hi].sum() / exposure if exposure > 0 else 0.0
        const_l = pl[lo:hi].sum() / exposure if exposure > 0 else 0.0
        pooled = tiers[:, b] == _POOLED
        hw[pooled, lo:hi], hl[pooled, lo:hi] = phw[lo:hi], phl[lo:hi]
        const = tiers[:, b] == _POOLED_CONSTANT
        hw[const, lo:hi], hl[const, lo:hi] = const_w, const_l
    return hw, hl


def _month_probabilities(hw, hl, key_seg, key_age, month_starts: np.ndarray, horizon_days: int) -> np.ndarray:
    """P(closes won in each forecast month | open at age a) for each distinct (segment, age) key."""
    window = np.lib.stride_tricks.sliding_window_view  # row k: the horizon_days hazards from age key_age[k] on
    w = window(hw, horizon_days, axis=1)[key_seg, key_age]  # (K, H)
    keep_open = 1.0 - w - window(hl, horizon_days, axis=1)[key_seg, key_age]
    survival = np.concatenate([np.ones((len(key_seg), 1)), np.cumprod(keep_open, axis=1)[:, :-1]], axis=1)
    return np.add.reduceat(survival * w, month_starts, axis=1) if len(key_seg) else np.zeros((0, len(month_starts)))


def _total_moments(probs: np.ndarray, key_seg: np.ndarray, value: np.ndarray, value2: np.ndarray, n_seg: int):
    """Mean (S, M) and covariance (S, M, M) of each segment's won value per month, summed over independent deals.

    Key ``k`` (a segment and age) holds deals of total value ``value[k]`` and total squared value ``value2[k]``,
    each closing won in month ``m`` with probability ``probs[k, m]`` and in at most one month: a deal of value
    ``v`` adds ``v p_m`` to the mean and ``v^2 (p_m [m = n] - p_m p_n)`` to the covariance.
    """
    n_months = probs.shape[1]
    mean = np.zeros((n_seg, n_months))
    np.add.at(mean, key_seg, probs * value[:, None])
    second = np.zeros((n_seg, n_months, n_months))
    np.add.at(second, key_seg, probs[:, :, None] * probs[:, None, :] * value2[:, None, None])
    diag = np.zeros((n_seg, n_months))
    np.add.at(diag, key_seg, probs * value2[:, None])
    cov = -second
    cov[:, np.arange(n_months), np.arange(n_months)] += diag
    return mean, cov


def _normal_totals(rng: np.random.Generator, n_draws: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``n_draws`` x (S, M) draws of independent multivariate normals (one per segment), clipped at 0."""
    eigval, eigvec = np.linalg.eigh(cov)  # cov is positive semi-definite; clip rounding below 0
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))[:, None, :]  # root @ root.T == cov
    z = rng.standard_normal((n_draws, *mean.shape))
    return np.clip(mean + np.einsum("smn,dsn->dsm", root, z), 0.0, None)


# ------------------------------------------------------------------------------------------- forecast


def pipeline_forecast(
    con: duckdb.DuckDBPyConnection,
    as_of=None,
    horizon_months: int = 3,
    interval: float = 0.90,
    n_sims: int = 2000,
    seed: int = 0,
    min_history: int = 30,
    *,
    age_buckets: Sequence[int] = DEFAULT_AGE_BUCKETS,
    bootstrap: bool = True,
    table: str | None = None,
    exact_max_open: int = EXACT_MAX_OPEN,
) -> pd.DataFrame:
    """Expected won revenue of the pipeline open at ``as_of``, per forecast month and segment, with an interval.

    ``as_of`` (date, default: the latest creation or close date in ``table``) is a whole day: what
    happened during it is known. Forecast months are the ``horizon_months`` calendar months starting
    with the month of the day after ``as_of``; the first one is therefore the *rest* of ``as_of``'s month
    (only closes after ``as_of`` count), or the next full month when ``as_of`` is a month's last day.

    One row per forecast month x segment with open opportunities, plus one ``'All'`` row per month whose
    ``lower`` / ``upper`` are quantiles of the simulated total. ``horizon_expected_revenue`` /
    ``horizon_lower`` / ``horizon_upper`` are the segment's expected revenue over the whole horizon and the
    quantiles of its simulated horizon total (the same on every month's row; the interval of a total is not
    the sum of the monthly bounds). ``open_opportunities`` / ``open_pipeline``
    describe the pipeline at ``as_of`` (the same on every month's row). See the module docstring for the
    method; ``interval`` is the central probability of [lower, upper]. Segments with more than ``exact_max_open``
    open opportunities are simulated from the moments of their totals (module docstring, *Large segments*).
    """
    table = table or opportunities_table()
    if horizon_months < 1:
        raise ValueError("horizon_months must be at least 1")
    if not 0 < interval < 1:
        raise ValueError("interval must be between 0 and 1")
    if as_of is None:
        as_of = latest_date(con, table)
        if as_of is None:  # no opportunities at all: nothing is open, nothing to forecast
            return _typed_forecast([])
    as_of = _to_date(as_of)
    cut_day = as_of + dt.timedelta(days=1)
    cutoff = dt.datetime.combine(cut_day, dt.time())
    months = [_month_start(cut_day, i) for i in range(horizon_months)]
    bounds_days = [max(0, (m - cut_day).days) for m in months] + [
        (_month_start(cut_day, horizon_months) - cut_day).days
    ]
    horizon_days = bounds_days[-1]
    month_offsets = np.array(bounds_days[:-1])

    hist = _load_history(con, table, cutoff, horizon_days, min_history, exact_max_open)
    n_seg, grid = hist.won.shape
    bounds = _bucket_bounds(sorted({0, *age_buckets}), grid)

    # distinct (segment, age) keys of the open opportunities
    if len(hist.open_seg):
        keys, key_idx = np.unique(np.stack([hist.open_seg, hist.open_age]), axis=1, return_inverse=True)
        key_idx = key_idx.reshape(-1)
        key_seg, key_age = keys[0], keys[1]
    else:
        key_idx = np.zeros(0, dtype=np.int64)
        key_seg = key_age = np.zeros(0, dtype=np.int64)

    tiers = _tiers(hist.won, hist.lost, hist.censored, bounds, min_history)
    hw, hl = _hazards(hist.won, hist.lost, hist.censored, tiers, bounds)
    probs = _month_probabilities(hw, hl, key_seg, key_age, month_offsets, horizon_days)[key_idx]  # (N, M)

    value = hist.open_amount * hist.ratio[hist.open_seg]
    expected = np.zeros((n_seg, horizon_months))
    np.add.at(expected, hist.open_seg, probs * value[:, None])
    # aggregated segments: per (segment, age) key, the sums of value and value^2
    agg_value, agg_value2 = hist.agg_amount * hist.ratio[hist.agg_seg], hist.agg_amount2 * hist.ratio[hist.agg_seg] ** 2
    agg_segs = np.unique(hist.agg_seg)
    agg_probs = _month_probabilities(hw, hl, hist.agg_seg, hist.agg_age, month_offsets, horizon_days)
    np.add.at(expected, hist.agg_seg, agg_probs * agg_value[:, None])

    # Monte-Carlo: simulated revenue per simulation x segment x month
    rng = np.random.default_rng(seed)
    n_open = len(value)
    sims = np.zeros((n_sims, n_seg, horizon_months))
    if (n_open or len(agg_segs)) and n_sims:
        onehot = np.zeros((n_open, n_seg))
        onehot[np.arange(n_open), hist.open_seg] = value
        block = max(1, min(SIMS_PER_REPLICATE, MAX_DRAWS_PER_BLOCK // max(n_open, 1)))
        point_cum = np.cumsum(probs, axis=1)
        point_moments = _total_moments(agg_probs, hist.agg_seg, agg_value, agg_value2, n_seg)
        for start in range(0, n_sims, block):
            stop = min(n_sims, start + block)
            if bootstrap:  # one Poisson-bootstrap replicate of the history per block
                w_, l_, c_ = (rng.poisson(x).astype(float) for x in (hist.won, hist.lost, hist.censored))
                bw, bl = _hazards(w_, l_, c_, tiers, bounds)
                cum = np.cumsum(_month_probabilities(bw, bl, key_seg, key_age, month_offsets, horizon_days), axis=1)[
                    key_idx
                ]
                if len(agg_segs):
                    replicate = _month_probabilities(bw, bl, hist.agg_seg, hist.agg_age, month_offsets, horizon_days)
                    mean, cov = _total_moments(replicate, hist.agg_seg, agg_value, agg_value2, n_seg)
            else:
                cum, (mean, cov) = point_cum, point_moments
            if n_open:
                u = rng.random((stop - start, n_open))
                lower_edge = np.zeros(n_open)
                for m in range(horizon_months):
                    hit = (u >= lower_edge) & (u < cum[:, m])
                    sims[start:stop, :, m] = hit.astype(float) @ onehot
                    lower_edge = cum[:, m]
            if len(agg_segs):
                sims[start:stop, agg_segs, :] = _normal_totals(rng, stop - start, mean[agg_segs], cov[agg_segs])

    alpha = (1.0 - interval) / 2.0
    n_open_seg = np.bincount(hist.open_seg, minlength=n_seg) + np.bincount(
        hist.agg_seg, weights=hist.agg_n, minlength=n_seg
    ).astype(np.int64)
    pipe_seg = np.bincount(hist.open_seg, weights=hist.open_amount, minlength=n_seg)
    pipe_seg = pipe_seg + np.bincount(hist.agg_seg, weights=hist.agg_amount, minlength=n_seg)

    def pooled_share(seg: np.ndarray, age: np.ndarray) -> np.ndarray:  # in an age bucket that uses pooled rates
        bucket_of_age = np.searchsorted([lo for lo, _ in bounds], age, side="right") - 1
        return tiers[seg, np.clip(bucket_of_age, 0, len(bounds) - 1)] != _SEGMENT

    # pipeline whose current age bucket uses pooled rates, for the method note
    fallback = pooled_share(hist.open_seg, hist.open_age)
    fallback_pipe = np.bincount(hist.open_seg[fallback], weights=hist.open_amount[fallback], minlength=n_seg)
    fallback = pooled_share(hist.agg_seg, hist.agg_age)
    fallback_pipe = fallback_pipe + np.bincount(
        hist.agg_seg[fallback], weights=hist.agg_amount[fallback], minlength=n_seg
    )
    base_method = f"age-hazard win timing (Aalen-Johansen); MC {n_sims} sims" + (" + bootstrap" if bootstrap else "")

    normal_note = f"; normal totals for segments over {exact_max_open} open"

    def method(pipe: float, fb: float, normal: bool) -> str:
        share = fb / pipe if pipe > 0 else 0.0
        pooled = f"; pooled rates for {share:.0%} of pipeline" if share > 0 else ""
        return base_method + (normal_note if normal else "") + pooled

    def quantiles(x: np.ndarray) -> tuple[float, float]:
        if not len(x):
            return 0.0, 0.0
        lo, hi = np.quantile(x, [alpha, 1 - alpha])
        return float(lo), float(hi)

    seg_horizon = [quantiles(sims[:, s, :].sum(axis=1)) for s in range(n_seg)]
    all_horizon = quantiles(sims.sum(axis=(1, 2)))
    rows = []
    for m, month in enumerate(months):
        for s, segment in enumerate(hist.segments):
            if n_open_seg[s] == 0:
                continue
            lo, hi = quantiles(sims[:, s, m])
            rows.append(
                (
                    as_of,
                    month,
                    segment,
                    int(n_open_seg[s]),
                    float(pipe_seg[s]),
                    float(expected[s, m]),
                    lo,
                    hi,
                    method(pipe_seg[s], fallback_pipe[s], s in agg_segs),
                    float(expected[s].sum()),
                    *seg_horizon[s],
                )
            )
        lo, hi = quantiles(sims[:, :, m].sum(axis=1))
        rows.append(
            (
                as_of,
                month,
                ALL_SEGMENTS,
                int(n_open_seg.sum()),
                float(pipe_seg.sum()),
                float(expected[:, m].sum()),
                lo,
                hi,
                method(pipe_seg.sum(), fallback_pipe.sum(), len(agg_segs) > 0),
                float(expected.sum()),
                *all_horizon,
            )
        )
    return _typed_forecast(rows)


def _typed_forecast(rows: list) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=FORECAST_COLUMNS)
    return out.astype(
        {
            "open_opportunities": "int64",
            "open_pipeline": float,
            "expected_revenue": float,
            "lower": float,
            "upper": float,
            "horizon_expected_revenue": float,
            "horizon_lower": float,
            "horizon_upper": float,
        }
    )


# ------------------------------------------------------------------------------------------- backtest


def actual_revenue(
    con: duckdb.DuckDBPyConnection, as_of, horizon_months: int = 3, table: str | None = None
) -> pd.DataFrame:
    """Won revenue closed in each forecast month by the opportunities open at ``as_of``: forecast_month, actual_revenue."""
    table = table or opportunities_table()
    cut_day = _to_date(as_of) + dt.timedelta(days=1)
    cutoff = dt.datetime.combine(cut_day, dt.time())
    months = [_month_start(cut_day, i) for i in range(horizon_months)]
    got = con.execute(
        f"""SELECT date_trunc('month', t.closed_date)::DATE AS forecast_month,
               sum(CAST(coalesce(t.won_amount, 0) AS DECIMAL(38, 10)))::DOUBLE AS actual_revenue
        FROM {table} t
        WHERE t.opportunity_created_date < $cutoff AND t.closed_date >= $cutoff AND coalesce(t.is_won, false)
          AND t.closed_date < $horizon_end
        GROUP BY ALL""",
        {"cutoff": cutoff, "horizon_end": dt.datetime.combine(_month_start(cut_day, horizon_months), dt.time())},
    ).df()
    actual = dict(zip(pd.to_datetime(got["forecast_month"]).dt.date, got["actual_revenue"]))
    return pd.DataFrame({"forecast_month": months, "actual_revenue": [float(actual.get(m, 0.0)) for m in months]})


def backtest(con: duckdb.DuckDBPyConnection, as_of_dates: Iterable, horizon_months: int = 3, **kw) -> pd.DataFrame:
    """Forecast at each past ``as_of`` and compare each month's ``'All'`` total with what actually closed won.

    Actual revenue is the ``won_amount`` closed in the forecast month (after ``as_of``) by opportunities
    open at ``as_of``. Months that end after the table's latest date are not fully observed and are left
    out. ``abs_pct_error`` = |expected - actual| / actual (NaN when actual is 0); ``covered`` = actual in
    [lower, upper]. ``kw`` goes to :func:`pipeline_forecast`.
    """
    table = kw.get("table") or opportunities_table()
    last = latest_date(con, table)
    frames = []
    for as_of in as_of_dates:
        fc = pipeline_forecast(con, as_of, horizon_months, **kw)
        fc = fc[fc["sales_segment"] == ALL_SEGMENTS]
        act = actual_revenue(con, as_of, horizon_months, table)
        df = fc.merge(act, on="forecast_month", how="left")
        if last is not None:
            df = df[[_month_start(m, 1) <= last + dt.timedelta(days=1) for m in df["forecast_month"]]]
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=BACKTEST_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    actual = out["actual_revenue"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["abs_pct_error"] = np.where(actual > 0, np.abs(out["expected_revenue"] - actual) / actual, np.nan)
    out["covered"] = (out["lower"] <= actual) & (actual <= out["upper"])
    return out[BACKTEST_COLUMNS].reset_index(drop=True)
