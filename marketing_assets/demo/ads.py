"""Ad platforms: campaign catalogue, daily spend with flighting and seasonality, delivery metrics, alerts.

Spend is simulated per campaign and day in USD, then booked in each account's currency (Google in cost
micros, Meta and LinkedIn in cents of EUR/GBP/USD). USD spend used everywhere downstream is recomputed from
the booked local amounts with the constant FX rates, so it can be derived exactly from the landing files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from . import csvio
from .config import FX_TO_USD, Scale, Timeline, slugify

MMM_CHANNELS = ("google_search", "google_display", "meta", "linkedin")
"""Media channels of the MMM ground truth (platform x campaign type)."""

SPEND_FACTOR = 2.5
"""Multiplier on the catalogue's base daily budgets at the default scale."""


@dataclass(frozen=True)
class Campaign:
    """One ad campaign and how it maps to channels, UTMs and the MMM."""

    platform: str
    account_id: str
    currency: str
    campaign_id: str
    name: str
    campaign_type: str
    mmm_channel: str
    crm_channel: str
    utm_source: str
    utm_medium: str
    base_daily_usd: float
    always_on: bool = False
    launch_week: int = 0
    cpm: float = 10.0
    ctr: float = 0.01
    cvr: float = 0.05
    value_per_conversion: float = 300.0

    @property
    def utm_campaign(self) -> str:
        return slugify(self.name)


GOOGLE_ACCOUNT = "4819302756"
META_US, META_EU = "act_2093847561", "act_5548120937"
LINKEDIN_US, LINKEDIN_UK = "508812345", "509934871"

CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820011", "Brand Search - US", "SEARCH", "google_search", "Paid Search",
             "google", "cpc", 650, True, cpm=300, ctr=0.16, cvr=0.11, value_per_conversion=420),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820012", "Generic Search - US", "SEARCH", "google_search", "Paid Search",
             "google", "cpc", 1300, True, cpm=420, ctr=0.055, cvr=0.06, value_per_conversion=380),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820013", "Competitor Search - US", "SEARCH", "google_search",
             "Paid Search", "google", "cpc", 450, cpm=480, ctr=0.04, cvr=0.04, value_per_conversion=350),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820014", "Brand Search - UK", "SEARCH", "google_search", "Paid Search",
             "google", "cpc", 160, True, cpm=260, ctr=0.15, cvr=0.10, value_per_conversion=400),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820015", "Generic Search - DE", "SEARCH", "google_search",
             "Paid Search", "google", "cpc", 340, launch_week=38, cpm=380, ctr=0.05, cvr=0.05, value_per_conversion=360),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820021", "Display Prospecting - US", "DISPLAY", "google_display",
             "Display", "google", "display", 850, cpm=5.5, ctr=0.004, cvr=0.012, value_per_conversion=250),
    Campaign("google", GOOGLE_ACCOUNT, "USD", "17364820022", "Display Retargeting - US", "DISPLAY", "google_display",
             "Display", "google", "display", 420, cpm=8.0, ctr=0.006, cvr=0.03, value_per_conversion=280),
    Campaign("meta", META_US, "USD", "23851190001", "Prospecting - US", "OUTCOME_LEADS", "meta", "Paid Social",
             "facebook", "paid_social", 1050, cpm=14, ctr=0.009, cvr=0.05),
    Campaign("meta", META_US, "USD", "23851190002", "Retargeting - US", "OUTCOME_SALES", "meta", "Paid Social",
             "facebook", "paid_social", 430, cpm=18, ctr=0.012, cvr=0.08),
    Campaign("meta", META_EU, "EUR", "23851190011", "Prospecting - DE", "OUTCOME_LEADS", "meta", "Paid Social",
             "facebook", "paid_social", 480, cpm=11, ctr=0.008, cvr=0.045),
    Campaign("meta", META_EU, "EUR", "23851190012", "Lead Gen - FR", "OUTCOME_LEADS", "meta", "Paid Social",
             "facebook", "paid_social", 300, launch_week=64, cpm=10, ctr=0.008, cvr=0.05),
    Campaign("linkedin", LINKEDIN_US, "USD", "612840011", "ABM Enterprise - US", "SPONSORED_CONTENT", "linkedin",
             "Paid Social", "linkedin", "paid_social", 780, cpm=55, ctr=0.0055, cvr=0.09),
    Campaign("linkedin", LINKEDIN_US, "USD", "612840012", "Thought Leadership - US", "SPONSORED_CONTENT", "linkedin",
             "Paid Social", "linkedin", "paid_social", 420, cpm=42, ctr=0.005, cvr=0.05),
    Campaign("linkedin", LINKEDIN_UK, "GBP", "612840021", "Lead Gen - UK", "SPONSORED_CONTENT", "linkedin",
             "Paid Social", "linkedin", "paid_social", 330, cpm=48, ctr=0.006, cvr=0.08),
)

CPA_ANOMALY_CAMPAIGN = "Generic Search - US"
ROAS_ANOMALY_CAMPAIGN = "Brand Search - US"
DOW_FACTOR = np.array([1.12, 1.15, 1.14, 1.1, 1.0, 0.72, 0.67])  # Monday .. Sunday


@dataclass
class AdsData:
    """Daily delivery per campaign (rows = days, columns = campaigns); zero spend means no report row."""

    campaigns: tuple[Campaign, ...]
    local_units: np.ndarray  # Google: cost micros; others: cents of the account currency
    usd: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    conversions: np.ndarray  # Google: 2 decimals; Meta: whole results
    conversion_value: np.ndarray
    leads: np.ndarray
    site_conversions: np.ndarray
    anomalies: list[dict] = field(default_factory=list)

    def channel_daily_usd(self) -> dict[str, np.ndarray]:
        out = {}
        for ch in MMM_CHANNELS:
            idx = [i for i, c in enumerate(self.campaigns) if c.mmm_channel == ch]
            out[ch] = self.usd[:, idx].sum(axis=1)
        return out

    def channel_weekly_usd(self, timeline: Timeline) -> dict[str, np.ndarray]:
        weeks = np.arange(timeline.n_days) // 7
        return {ch: np.bincount(weeks, v, minlength=timeline.n_sim_weeks) for ch, v in self.channel_daily_usd().items()}


def _ar1(n: int, phi: float, sd: float, rng: np.random.Generator) -> np.ndarray:
    eps = rng.normal(0, sd, n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + eps[i]
        out[i] = acc
    return out


def _flights(n: int, on: tuple[int, int], off: tuple[int, int], level: tuple[float, float], rng) -> np.ndarray:
    out = np.zeros(n)
    w = int(rng.integers(0, 3))
    while w < n:
        length = int(rng.integers(on[0], on[1] + 1))
        out[w : w + length] = rng.uniform(*level)
        w += length + int(rng.integers(off[0], off[1] + 1))
    return out


def channel_patterns(n_weeks: int, timeline: Timeline, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weekly budget multipliers per MMM channel: independent processes so the channels are not collinear."""
    week_doy = timeline.day_of_year()[::7][:n_weeks]
    year_phase = 2 * np.pi * week_doy / 365.25
    w = np.arange(n_weeks)
    search = 1 + 0.18 * np.sin(year_phase + 0.6) + _ar1(n_weeks, 0.85, 0.06, rng) + 0.002 * w
    for step in rng.choice(np.arange(20, n_weeks - 20), size=3, replace=False):
        search[step:] *= rng.uniform(0.8, 1.25)
    display = _flights(n_weeks, (4, 10), (2, 7), (0.5, 1.6), rng)
    meta = _flights(n_weeks, (3, 8), (1, 5), (0.45, 1.7), rng) * (1 + 0.25 * np.cos(year_phase - 5.6))
    quarter = (w // 13).astype(int)
    q_levels = rng.uniform(0.35, 1.6, quarter.max() + 1)
    linkedin = q_levels[quarter] * np.exp(_ar1(n_weeks, 0.6, 0.12, rng))
    linkedin[rng.random(n_weeks) < 0.12] = 0.0
    return {
        "google_search": np.clip(search, 0.35, None),
        "google_display": display,
        "meta": meta,
        "linkedin": linkedin,
    }


def simulate(timeline: Timeline, scale: Scale, rng: np.random.Generator) -> AdsData:
    """Simulate daily spend and delivery for every campaign, then plant the alerting anomalies."""
    n_days, n_weeks = timeline.n_days, timeline.n_sim_weeks
    patterns = channel_patterns(n_weeks, timeline, rng)
    camps = CAMPAIGNS
    n_c = len(camps)
    day_week = np.arange(n_days) // 7
    dow = np.arange(n_days) % 7
    usd = np.zeros((n_days, n_c))
    protect_from = n_weeks - 10  # keep the last ten weeks free of pauses (alerting window)
    for j, c in enumerate(camps):
        weekly = patterns[c.mmm_channel] * np.exp(_ar1(n_weeks, 0.7, 0.1, rng))
        weekly[: c.launch_week] = 0.0
        if not c.always_on:
            for _ in range(int(rng.integers(0, 3))):
                start = int(rng.integers(c.launch_week, protect_from))
                weekly[start : min(start + int(rng.integers(1, 5)), protect_from)] = 0.0
        daily = c.base_daily_usd * SPEND_FACTOR * scale.volume * weekly[day_week] * DOW_FACTOR[dow]
        daily *= np.exp(rng.normal(0, 0.15, n_days))
        usd[:, j] = np.where(daily >= 1.0, daily, 0.0)

    local = np.zeros((n_days, n_c), dtype=np.int64)
    for j, c in enumerate(camps):
        if c.platform == "google":
            local[:, j] = np.rint(usd[:, j] * 1e6 / 10) * 10
            usd[:, j] = local[:, j] / 1e6
        else:
            local[:, j] = np.rint(usd[:, j] / FX_TO_USD[c.currency] * 100)
            usd[:, j] = local[:, j] / 100 * FX_TO_USD[c.currency]

    cpm = np.array([c.cpm for c in camps])
    ctr = np.array([c.ctr for c in camps])
    cvr = np.array([c.cvr for c in camps])
    vpc = np.array([c.value_per_conversion for c in camps])
    noise = lambda sd: np.exp(rng.normal(0, sd, usd.shape))  # noqa: E731 - local shorthand
    impressions = rng.poisson(usd / cpm * 1000 * noise(0.1))
    clicks = rng.binomial(impressions, np.clip(ctr * noise(0.12), 0, 0.9))
    conv_rate = np.clip(cvr * noise(0.2), 0, 0.9)
    is_google = np.array([c.platform == "google" for c in camps])
    conversions = np.where(is_google, np.round(clicks * conv_rate, 2), rng.binomial(clicks, conv_rate)).astype(float)
    conversion_value = np.round(conversions * vpc * noise(0.12), 2)
    leads = rng.binomial(clicks, conv_rate)
    site_conversions = rng.binomial(clicks, np.clip(conv_rate * 0.3, 0, 0.9))
    active = usd > 0
    for arr in (impressions, clicks, conversions, conversion_value, leads, site_conversions):
        arr[~active] = 0
    data = AdsData(camps, local, usd, impressions, clicks, conversions, conversion_value, leads, site_conversions)
    _plant_anomalies(data, timeline)
    return data


def _plant_anomalies(data: AdsData, timeline: Timeline) -> None:
    names = [c.name for c in data.campaigns]
    last = timeline.n_days - 1

    cpa_j = names.index(CPA_ANOMALY_CAMPAIGN)
    dates = timeline.day_dates()
    # A calendar week (Monday to Sunday), as the CPA check measures; day 0 of the epoch was a Thursday.
    monday = last - 21 - int((dates[last - 21].astype("datetime64[D]").astype(np.int64) + 3) % 7)
    cpa_days = np.arange(monday, monday + 7)
    base_days = np.arange(cpa_days[0] - 28, cpa_days[0])
    normal_cpa = data.usd[base_days, cpa_j].sum() / data.conversions[base_days, cpa_j].sum()
    jump = np.random.default_rng(len(cpa_days) + last).uniform(1.45, 1.75, len(cpa_days))
    data.conversions[cpa_days, cpa_j] = np.round(data.usd[cpa_days, cpa_j] / (normal_cpa * jump), 2)
    anomalous_cpa = data.usd[cpa_days, cpa_j].sum() / data.conversions[cpa_days, cpa_j].sum()

    roas_j = names.index(ROAS_ANOMALY_CAMPAIGN)
    roas_days = np.arange(last - 9, last - 6)
    base_r = np.arange(roas_days[0] - 28, roas_days[0])
    normal_roas = data.conversion_value[base_r, roas_j].sum() / data.usd[base_r, roas_j].sum()
    drop = np.random.default_rng(len(roas_days) + last).uniform(0.15, 0.25, len(roas_days))
    data.conversion_value[roas_days, roas_j] = np.round(data.usd[roas_days, roas_j] * normal_roas * drop, 2)
    daily_roas = data.conversion_value[roas_days, roas_j] / data.usd[roas_days, roas_j]

    cpa_c, roas_c = data.campaigns[cpa_j], data.campaigns[roas_j]
    data.anomalies += [
        {
            "kind": "cpa_spike",
            "platform": cpa_c.platform,
            "table_name": "ads_google",
            "campaign_id": cpa_c.campaign_id,
            "campaign_name": cpa_c.name,
            "start_date": str(dates[cpa_days[0]]),
            "end_date": str(dates[cpa_days[-1]]),
            "normal_cpa_usd": round(float(normal_cpa), 2),
            "anomalous_cpa_usd": round(float(anomalous_cpa), 2),
            "cpa_change_pct": round(float(anomalous_cpa / normal_cpa - 1) * 100, 1),
            "baseline_window": [str(dates[base_days[0]]), str(dates[base_days[-1]])],
        },
        {
            "kind": "roas_drop",
            "platform": roas_c.platform,
            "table_name": "ads_google",
            "campaign_id": roas_c.campaign_id,
            "campaign_name": roas_c.name,
            "start_date": str(dates[roas_days[0]]),
            "end_date": str(dates[roas_days[-1]]),
            "consecutive_days": 3,
            "normal_roas": round(float(normal_roas), 3),
            "daily_roas": [round(float(x), 3) for x in daily_roas],
            "baseline_window": [str(dates[base_r[0]]), str(dates[base_r[-1]])],
        },
    ]


def landing_tables(data: AdsData, timeline: Timeline) -> dict[str, pa.Table]:
    """The three platform exports as all-string tables (rows ordered by day, then campaign)."""
    day0 = timeline.start_epoch_day
    out = {}
    for platform, table_name in (("google", "ads_google"), ("meta", "ads_meta"), ("linkedin", "ads_linkedin")):
        idx = [j for j, c in enumerate(data.campaigns) if c.platform == platform]
        sub_active = data.usd[:, idx] > 0
        d, k = np.nonzero(sub_active)
        j = np.asarray(idx)[k]
        camp = [data.campaigns[i] for i in idx]

        def attr(name: str, k=k, camp=camp) -> pa.Array:
            return csvio.fmt_choice([getattr(c, name) for c in camp], k)

        days = day0 + d
        imp, clk = data.impressions[d, j], data.clicks[d, j]
        local = data.local_units[d, j]
        if platform == "google":
            cols = {
                "segments.date": csvio.fmt_date(days),
                "customer.id": attr("account_id"),
                "customer.currency_code": attr("currency"),
                "campaign.id": attr("campaign_id"),
                "campaign.name": attr("name"),
                "campaign.advertising_channel_type": attr("campaign_type"),
                "metrics.impressions": csvio.fmt_int(imp),
                "metrics.clicks": csvio.fmt_int(clk),
                "metrics.cost_micros": csvio.fmt_int(local),
                "metrics.conversions": csvio.fmt_fixed(data.conversions[d, j], 2),
                "metrics.conversions_value": csvio.fmt_fixed(data.conversion_value[d, j], 2),
            }
        elif platform == "meta":
            cols = {
                "date_start": csvio.fmt_date(days),
                "date_stop": csvio.fmt_date(days),
                "account_id": attr("account_id"),
                "account_currency": attr("currency"),
                "campaign_id": attr("campaign_id"),
                "campaign_name": attr("name"),
                "objective": attr("campaign_type"),
                "impressions": csvio.fmt_int(imp),
                "clicks": csvio.fmt_int(clk),
                "amount_spent": csvio.fmt_scaled(local, 2),
                "conversions": csvio.fmt_int(data.conversions[d, j].astype(np.int64)),
            }
        else:
            fx = np.array([FX_TO_USD[c.currency] for c in camp])[k]
            cols = {
                "start_date": csvio.fmt_date(days),
                "account_id": attr("account_id"),
                "currency": attr("currency"),
                "campaign_id": attr("campaign_id"),
                "campaign_name": attr("name"),
                "impressions": csvio.fmt_int(imp),
                "clicks": csvio.fmt_int(clk),
                "costInLocalCurrency": csvio.fmt_scaled(local, 2),
                "costInUsd": csvio.fmt_scaled(np.rint(local * fx).astype(np.int64), 2),
                "oneClickLeads": csvio.fmt_int(data.leads[d, j]),
                "externalWebsiteConversions": csvio.fmt_int(data.site_conversions[d, j]),
            }
        out[table_name] = csvio.string_table(cols)
    return out
