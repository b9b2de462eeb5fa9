"""Anomaly detection and reconciliation over the warehouse, as DuckDB SQL. No Dagster import.

Each detector returns one row per anomaly *episode* that ends inside the lookback window, naming the
platform / campaign / table and the numbers, so an alert can be read without opening the data:

- :func:`cpa_spikes`: a campaign-week (ISO week) whose CPA exceeds its baseline CPA (the preceding
  ``baseline_days``) by more than ``above`` (0.20 = 20 %) *and* whose conversions are significantly fewer than the
  spend buys at the baseline CPA (exact one-sided test of two Poisson rates, quasi-Poisson dispersion, level
  ``alpha``), so chance on a few conversions is not a spike;
- :func:`roas_drops`: ``min_days`` or more consecutive days of a campaign's platform ROAS (conversion
  value / spend, both in the account currency) under ``below`` × its baseline ROAS;
- :func:`conversion_rate_drops`: days whose web conversion rate (sessions with a conversion / sessions)
  has a robust z-score (median and MAD of the preceding ``baseline_days``) under ``min_z``; the current
  (incomplete) UTC day, ``today`` (default: DuckDB's ``current_date``), and later days are not scored;
- :func:`monthly_gaps`: months (× key) where two monthly series differ by more than a relative tolerance.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd


def binomial_cdf(k: float, n: float, p: float) -> float:
    """``P(X <= k)`` for ``X ~ Binomial(n, p)``; ``k`` and ``n`` are rounded to whole counts (Google reports modelled,
    fractional conversions). Summed in log space: exact for small counts, no overflow for large ones."""
    k, n = int(math.floor(k + 0.5)), int(math.floor(n + 0.5))
    if k < 0:
        return 0.0
    if k >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    i = np.arange(k + 1)
    log_choose = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) for j in i])
    log_pmf = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
    top = log_pmf.max()
    return float(min(1.0, math.exp(top) * np.exp(log_pmf - top).sum()))


def cpa_spikes(
    con: duckdb.DuckDBPyConnection, ad_spend: str, *, lookback_days: int, baseline_days: int, above: float, alpha: float
) -> pd.DataFrame:
    """Campaign-weeks with ``CPA > (1 + above) × baseline CPA`` *and* significantly fewer conversions than their spend
    buys at the baseline CPA (one-sided p-value under ``alpha``); the baseline is the ``baseline_days`` before the week.

    The test compares two conversion rates per unit of spend, the week's and the baseline's, with the exact conditional
    test for two Poisson rates: given the ``n`` conversions of week + baseline, the week's count is
    ``Binomial(n, week spend / (week + baseline spend))`` if the rate did not change; p = P(X <= week conversions).
    Unlike a test against a fixed ``expected = spend / baseline CPA``, it also counts the uncertainty of a baseline built
    on few conversions. Conversion rates vary from day to day beyond Poisson chance, so the counts are divided by a
    quasi-Poisson ``dispersion`` first: the Pearson chi-square per degree of freedom of the baseline days (conversions vs
    spend × baseline rate), floored at 1. Examples (dispersion 1): a thin campaign with 4 baseline conversions on 2 weeks
    of spend converting 1 instead of 2 in a week of the same spend is chance, p = P(Bin(5, 1/3) <= 1) = 112/243 ≈ 0.46;
    60 instead of 100 (baseline 400 on 4 weeks) is not, p ≈ 6e-5. A week with no conversion counts as above the
    baseline CPA. The aggregation is SQL; the test runs on the (few) campaign-week rows."""
    weeks = con.execute(
        f"""WITH days AS (
                SELECT platform, campaign_id, max(campaign_name) AS campaign_name, date_day,
                       sum(spend) AS spend, sum(conversions) AS conversions
                FROM {ad_spend} GROUP BY platform, campaign_id, date_day),
            all_weeks AS (
                SELECT platform, campaign_id, arg_max(campaign_name, date_day) AS campaign_name,  -- the week's last name
                       date_trunc('week', date_day)::DATE AS week_start, sum(spend) AS spend, sum(conversions) AS conversions,
                       count(*) AS days
                FROM days GROUP BY ALL),
            weeks AS (  -- complete weeks ending in the lookback window
                SELECT * FROM all_weeks
                WHERE days = 7 AND week_start + INTERVAL 6 DAY > (SELECT max(date_day) FROM days) - INTERVAL {int(lookback_days)} DAY),
            base AS (  -- each scored week with the campaign's days of its baseline window
                SELECT w.platform, w.campaign_id, w.week_start, d.spend, d.conversions,
                       sum(d.conversions) OVER k / nullif(sum(d.spend) OVER k, 0) AS rate
                FROM weeks w JOIN days d ON d.platform = w.platform AND d.campaign_id = w.campaign_id
                 AND d.date_day >= w.week_start - INTERVAL {int(baseline_days)} DAY AND d.date_day < w.week_start
                WINDOW k AS (PARTITION BY w.platform, w.campaign_id, w.week_start)),
            baseline AS (
                SELECT platform, campaign_id, week_start, sum(spend) AS baseline_spend, sum(conversions) AS baseline_conversions,
                       sum((conversions - spend * rate) ^ 2 / (spend * rate)) FILTER (WHERE spend * rate > 0)
                         / nullif(count(*) FILTER (WHERE spend * rate > 0) - 1, 0) AS dispersion
                FROM base GROUP BY ALL)
            SELECT w.platform, w.campaign_id, w.campaign_name, w.week_start AS start_date, (w.week_start + INTERVAL 6 DAY)::DATE AS end_date,
                   round(w.spend, 2) AS spend, w.conversions, round(w.spend / nullif(w.conversions, 0), 2) AS cpa,
                   round(b.baseline_spend, 2) AS baseline_spend, b.baseline_conversions,
                   round(b.baseline_spend / b.baseline_conversions, 2) AS baseline_cpa,
                   round(w.spend / nullif(w.conversions, 0) / (b.baseline_spend / b.baseline_conversions) - 1, 4) AS change,
                   w.spend * b.baseline_conversions / b.baseline_spend AS expected_conversions,
                   greatest(coalesce(b.dispersion, 1), 1) AS dispersion
            FROM weeks w JOIN baseline b USING (platform, campaign_id, week_start)
            WHERE w.spend > 0 AND b.baseline_spend > 0 AND b.baseline_conversions > 0
              AND (w.conversions = 0 OR w.spend / w.conversions > (1 + {float(above)}) * b.baseline_spend / b.baseline_conversions)"""
    ).df()
    weeks["p_value"] = [
        binomial_cdf(conv / disp, (conv + base_conv) / disp, spend / (spend + base_spend))
        for conv, base_conv, spend, base_spend, disp in weeks[["conversions", "baseline_conversions", "spend", "baseline_spend", "dispersion"]].itertuples(index=False)
    ]
    weeks = weeks.round({"expected_conversions": 2, "dispersion": 2})
    hits = weeks[weeks["p_value"] < float(alpha)]
    return hits.sort_values(["p_value", "change"], ascending=[True, False]).reset_index(drop=True)


def roas_drops(
    con: duckdb.DuckDBPyConnection, ad_spend: str, *, lookback_days: int, baseline_days: int, below: float, min_days: int
) -> pd.DataFrame:
    """Runs of ``min_days``+ consecutive campaign-days with platform ROAS under ``below`` × the baseline ROAS."""
    return con.execute(
        f"""WITH days AS (
                SELECT platform, campaign_id, max(campaign_name) AS campaign_name, date_day,
                       sum(conversion_value) AS value, sum(spend_local) AS spend
                FROM {ad_spend} GROUP BY platform, campaign_id, date_day
                HAVING sum(conversion_value) IS NOT NULL),
            scored AS (
                SELECT *, value / nullif(spend, 0) AS roas,
                       sum(value) OVER w / nullif(sum(spend) OVER w, 0) AS baseline_roas
                FROM days
                WINDOW w AS (PARTITION BY platform, campaign_id ORDER BY date_day
                             RANGE BETWEEN INTERVAL {int(baseline_days)} DAY PRECEDING AND INTERVAL 1 DAY PRECEDING)),
            flagged AS (
                SELECT *, date_day - CAST(row_number() OVER (PARTITION BY platform, campaign_id ORDER BY date_day) AS INTEGER) AS run_id
                FROM scored WHERE spend > 0 AND baseline_roas > 0 AND roas < {float(below)} * baseline_roas),
            runs AS (
                SELECT platform, campaign_id, arg_max(campaign_name, date_day) AS campaign_name, min(date_day) AS start_date,
                       max(date_day) AS end_date, count(*) AS consecutive_days,
                       list(round(roas, 3) ORDER BY date_day) AS daily_roas,
                       round(arg_min(baseline_roas, date_day), 3) AS baseline_roas
                FROM flagged GROUP BY platform, campaign_id, run_id)
            SELECT * FROM runs
            WHERE consecutive_days >= {int(min_days)}
              AND end_date > (SELECT max(date_day) FROM days) - INTERVAL {int(lookback_days)} DAY
            ORDER BY end_date DESC"""
    ).df()


def _mad(values: np.ndarray) -> float:
    """Median absolute deviation from the median (NaN ignored)."""
    values = values[~np.isnan(values)]
    return float(np.median(np.abs(values - np.median(values)))) if values.size else float("nan")


def conversion_rate_drops(
    con: duckdb.DuckDBPyConnection, sessions: str, *, lookback_days: int, baseline_days: int, min_z: float, min_sessions: int,
    today: dt.date | None = None,
) -> pd.DataFrame:
    """Days before ``today`` whose session conversion rate has a robust z-score under ``min_z`` against the preceding baseline."""
    daily = con.execute(
        f"""SELECT CAST(session_start AS DATE) AS day, count(*) AS sessions,
                   count(*) FILTER (WHERE coalesce(conversions, 0) > 0) AS converting_sessions
            FROM {sessions} WHERE CAST(session_start AS DATE) < coalesce(CAST(? AS DATE), current_date)  -- today is still incomplete
            GROUP BY 1 ORDER BY 1""",
        [today],
    ).df()
    if daily.empty:
        return daily.assign(conversion_rate=[], baseline_median=[], robust_z=[])
    daily["conversion_rate"] = daily["converting_sessions"] / daily["sessions"]
    rates = daily.set_index(pd.to_datetime(daily["day"]))["conversion_rate"]
    window = f"{int(baseline_days)}D"
    shifted = rates.shift(1, freq="D").reindex(rates.index)  # baseline excludes the day itself
    median = shifted.rolling(window, min_periods=7).median()
    # MAD of the same baseline window: median of |x - median of the window| over the window's own values
    mad = shifted.rolling(window, min_periods=7).apply(_mad, raw=True)
    daily["baseline_median"] = median.to_numpy()
    daily["robust_z"] = ((rates - median) / (1.4826 * mad.where(mad > 0))).to_numpy()
    last = pd.to_datetime(daily["day"]).max()
    recent = pd.to_datetime(daily["day"]) > last - pd.Timedelta(days=lookback_days)
    hit = daily[recent & (daily["sessions"] >= min_sessions) & (daily["robust_z"] < min_z)]
    return hit.round({"conversion_rate": 5, "baseline_median": 5, "robust_z": 2}).reset_index(drop=True)


def monthly_gaps(left: pd.DataFrame, right: pd.DataFrame, keys: Sequence[str], *, tolerance: float, min_amount: float) -> pd.DataFrame:
    """Outer-join two frames of ``keys`` + ``amount`` and keep rows differing by more than ``tolerance`` × the larger
    side (rows where both sides are under ``min_amount`` are not compared)."""
    both = left.merge(right, on=list(keys), how="outer", suffixes=("_left", "_right")).fillna({"amount_left": 0.0, "amount_right": 0.0})
    both["gap"] = both["amount_left"] - both["amount_right"]
    scale = both[["amount_left", "amount_right"]].abs().max(axis=1)
    both["gap_pct"] = both["gap"] / scale.where(scale > 0)
    compared = scale >= min_amount
    out = both[compared & (both["gap"].abs() > tolerance * scale)]
    return out.sort_values(list(keys)).reset_index(drop=True).assign(compared=int(compared.sum()))
