"""Marketing-mix ground truth: the weekly revenue process the ERP orders are built to reproduce.

Weekly revenue (USD) = baseline + trend + yearly seasonality + promo effect + sum of media effects + noise,
where each media effect is ``coefficient * hill(adstock(spend))``:

- ``adstock_t = spend_t + decay * adstock_{t-1}`` (geometric, unnormalised, starting from 0 before week 0);
- ``hill(a) = a**slope / (a**slope + half_saturation**slope)``.

Spend per channel is the weekly USD spend derived from the ad-platform files (see ``mmm_truth.json``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from .ads import MMM_CHANNELS
from .config import N_WEEKS, Scale, Timeline

CHANNEL_SETUP: dict[str, dict[str, float]] = {
    "google_search": {"decay": 0.30, "slope": 1.8, "half_saturation_ratio": 0.90, "roi": 3.2},
    "google_display": {"decay": 0.60, "slope": 1.2, "half_saturation_ratio": 1.10, "roi": 1.1},
    "meta": {"decay": 0.45, "slope": 1.5, "half_saturation_ratio": 0.80, "roi": 2.0},
    "linkedin": {"decay": 0.70, "slope": 1.0, "half_saturation_ratio": 1.00, "roi": 1.5},
}
"""True response parameters; ``half_saturation`` = ratio x mean adstock of active weeks, ``coefficient`` is
set so that total contribution / total spend over the 156 complete weeks equals ``roi``."""

BASELINE_PER_WEEK = 1_250_000.0
TREND_SHARE_PER_WEEK = 0.0015
SEASON_SIN_SHARE, SEASON_COS_SHARE = 0.05, 0.07
PROMO_SHARE = 0.12
NOISE_SHARE = 0.02
WEBSHOP_FLOOR_SHARE = 0.35
"""Web-shop revenue is at least this share of the nominal baseline every week (B2B deals are lumpy)."""

PROMOS = (("NEWYEAR", 1, 8), ("SPRING", 3, 20), ("SUMMER", 7, 10))


def adstock(x: np.ndarray, decay: float) -> np.ndarray:
    """Geometric adstock starting from zero."""
    out = np.empty_like(x, dtype=float)
    acc = 0.0
    for i, v in enumerate(x):
        acc = v + decay * acc
        out[i] = acc
    return out


def hill(a: np.ndarray, half_saturation: float, slope: float) -> np.ndarray:
    a = np.maximum(a, 0.0)
    return a**slope / (a**slope + half_saturation**slope)


def promo_weeks(timeline: Timeline) -> dict[int, str]:
    """Week index -> promo code: New Year, spring and summer sales plus Black Friday week, each year."""
    out: dict[int, str] = {}
    start = timeline.start_date
    for year in range(start.year, timeline.end_date.year + 1):
        days = [(name, dt.date(year, m, d)) for name, m, d in PROMOS]
        thanksgiving = dt.date(year, 11, 1) + dt.timedelta(days=(3 - dt.date(year, 11, 1).weekday()) % 7 + 21)
        days.append(("BLACKFRIDAY", thanksgiving + dt.timedelta(days=1)))
        for name, day in days:
            w = (day - start).days // 7
            if 0 <= (day - start).days and w < timeline.n_sim_weeks:
                out[w] = f"{name}{year % 100:02d}"
    return out


@dataclass
class MMMTruth:
    """The weekly truth over all simulated weeks (the first ``N_WEEKS`` are complete)."""

    timeline: Timeline
    spend: dict[str, np.ndarray]
    params: dict[str, dict[str, float]]
    adstocked: dict[str, np.ndarray]
    contribution: dict[str, np.ndarray]
    promo: dict[int, str]
    baseline: float = 0.0
    trend: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seasonality: np.ndarray = field(default_factory=lambda: np.zeros(0))
    promo_effect: np.ndarray = field(default_factory=lambda: np.zeros(0))
    noise: np.ndarray = field(default_factory=lambda: np.zeros(0))
    revenue_cents: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    controls: dict[str, float] = field(default_factory=dict)

    @property
    def n_weeks(self) -> int:
        return len(self.revenue_cents)

    def day_fraction(self) -> np.ndarray:
        """Share of each simulated week covered by the history (1 for complete weeks)."""
        n = self.timeline.n_sim_weeks
        frac = np.ones(n)
        frac[-1] = (self.timeline.n_days - 7 * (n - 1)) / 7
        return frac

    def marginal_roi(self, channel: str) -> float:
        """d(total contribution)/d(total spend) when every week's spend is scaled by (1 + eps)."""
        p = self.params[channel]
        a = self.adstocked[channel][:N_WEEKS]
        k, s = p["half_saturation"], p["slope"]
        safe = np.where(a > 0, a, 1.0)
        deriv = np.where(a > 0, s * safe ** (s - 1) * k**s / (safe**s + k**s) ** 2, 0.0)
        return float(np.sum(p["coefficient"] * deriv * a) / self.spend[channel][:N_WEEKS].sum())


def build_media(timeline: Timeline, weekly_spend: dict[str, np.ndarray]) -> MMMTruth:
    """Channel parameters and contributions from weekly USD spend."""
    params, adst, contrib = {}, {}, {}
    for ch in MMM_CHANNELS:
        setup = CHANNEL_SETUP[ch]
        x = weekly_spend[ch]
        a = adstock(x, setup["decay"])
        active = a[:N_WEEKS][a[:N_WEEKS] > 0]
        half_sat = float(setup["half_saturation_ratio"] * active.mean())
        h = hill(a, half_sat, setup["slope"])
        coef = float(setup["roi"] * x[:N_WEEKS].sum() / h[:N_WEEKS].sum())
        params[ch] = {
            "decay": setup["decay"],
            "half_saturation": round(half_sat, 4),
            "slope": setup["slope"],
            "coefficient": round(coef, 4),
        }
        h = hill(a, params[ch]["half_saturation"], setup["slope"])
        adst[ch] = a
        contrib[ch] = params[ch]["coefficient"] * h
    return MMMTruth(timeline, dict(weekly_spend), params, adst, contrib, promo_weeks(timeline))


def finalize(truth: MMMTruth, b2b_weekly_cents: np.ndarray, scale: Scale, rng: np.random.Generator) -> None:
    """Fix baseline, trend, seasonality, promo and noise, then the weekly revenue in cents.

    The baseline is the nominal level for the scale, raised if needed so that revenue minus B2B (CRM won)
    revenue leaves the web shop at least ``WEBSHOP_FLOOR_SHARE`` of the nominal baseline every week.
    """
    tl = truth.timeline
    n = tl.n_sim_weeks
    frac = truth.day_fraction()
    nominal = BASELINE_PER_WEEK * scale.volume
    w = np.arange(n)
    week_doy = tl.day_of_year()[::7][:n]
    phase = 2 * np.pi * week_doy / 365.25
    trend_per_week = TREND_SHARE_PER_WEEK * nominal
    sin_amp, cos_amp = SEASON_SIN_SHARE * nominal, SEASON_COS_SHARE * nominal
    trend = trend_per_week * w
    season = sin_amp * np.sin(phase) + cos_amp * np.cos(phase)
    promo_ind = np.array([1.0 if i in truth.promo else 0.0 for i in range(n)])
    promo_effect = PROMO_SHARE * nominal * promo_ind
    noise_sd = NOISE_SHARE * nominal
    noise = rng.normal(0, noise_sd, n)
    media = sum(truth.contribution[ch] for ch in MMM_CHANNELS)
    rest = trend + season + promo_effect + media + noise
    floor = WEBSHOP_FLOOR_SHARE * nominal
    needed = (b2b_weekly_cents / 100.0 + floor * frac - rest * frac) / frac
    baseline = float(np.ceil(max(nominal, needed[:N_WEEKS].max(), needed.max()) / 1000.0) * 1000.0)
    revenue = (baseline + rest) * frac
    truth.baseline = baseline
    truth.trend, truth.seasonality, truth.promo_effect, truth.noise = trend, season, promo_effect, noise
    truth.revenue_cents = np.rint(revenue * 100).astype(np.int64)
    truth.controls = {
        "baseline_per_week": baseline,
        "nominal_baseline_per_week": nominal,
        "trend_per_week": trend_per_week,
        "seasonality_sin_amplitude": sin_amp,
        "seasonality_cos_amplitude": cos_amp,
        "promo_effect_per_promo_week": PROMO_SHARE * nominal,
        "noise_sd": noise_sd,
    }


def lift_tests(truth: MMMTruth, rng: np.random.Generator) -> list[dict]:
    """Two to three geo-holdout tests whose measured lift = true incremental revenue + noise."""
    plans = (("meta", 6, (60, 95)), ("linkedin", 8, (96, 125)), ("google_display", 4, (126, N_WEEKS - 6)))
    tests = []
    for i, (ch, length, (lo, hi)) in enumerate(plans, start=1):
        spend = truth.spend[ch]
        starts = np.arange(lo, hi - length + 1)
        totals = np.array([spend[s : s + length].sum() for s in starts])
        start = int(starts[int(np.argmax(totals))])
        weeks = slice(start, start + length)
        true_lift = float(truth.contribution[ch][weeks].sum())
        se = round(0.12 * true_lift + 500.0, 2)
        measured = round(true_lift + float(rng.normal(0, se)), 2)
        start_day = truth.timeline.start_date + dt.timedelta(days=7 * start)
        tests.append(
            {
                "test_id": f"LT-{start_day.year}-{i:02d}",
                "channel": ch,
                "start_date": start_day.isoformat(),
                "end_date": (start_day + dt.timedelta(days=7 * length - 1)).isoformat(),
                "start_week": start,
                "weeks": length,
                "true_lift": round(true_lift, 2),
                "lift": measured,
                "lift_se": se,
                "spend_in_window_usd": round(float(spend[weeks].sum()), 2),
                "metric": "revenue",
                "method": "geo_holdout",
            }
        )
    return tests
