"""Traffic sources shared by the CRM and web simulations, and their messy real-world spellings.

A *source* is what brought a person in: a paid campaign (one per ad campaign, whose daily weight follows
its spend) or an unpaid channel (webinars, email, organic search, events, ...). CRM touchpoints and web
sessions draw sources per day, so CRM and web activity move with ad spend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ads import CAMPAIGNS, AdsData
from .config import Timeline


@dataclass(frozen=True)
class Source:
    """One traffic source with its CRM label, UTMs and web appearance."""

    key: str
    crm_channel: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    crm_campaign_id: str | None
    campaign_index: int
    weight: float
    exposure: float
    kind: str  # paid_search | display | paid_social | email | webinar | organic | direct | referral | events | syndication | social
    landing_pages: tuple[str, ...]


_PAID_EXPOSURE = {"google_search": 0.32, "google_display": 0.06, "meta": 0.12, "linkedin": 0.26}
_PAID_KIND = {"google_search": "paid_search", "google_display": "display", "meta": "paid_social", "linkedin": "paid_social"}
PAID_WEIGHT = 0.42
"""Average share of CRM touches coming from paid campaigns."""


def _paid_sources() -> list[Source]:
    out = []
    for j, c in enumerate(CAMPAIGNS):
        page = "/lp/" + c.utm_campaign.replace("_", "-")
        out.append(
            Source(f"paid:{c.campaign_id}", c.crm_channel, c.utm_source, c.utm_medium, c.utm_campaign,
                   f"CMP-{1001 + j}", j, 0.0, _PAID_EXPOSURE[c.mmm_channel], _PAID_KIND[c.mmm_channel],
                   (page, page, "/pricing", "/demo"))
        )
    return out


UNPAID_SOURCES: tuple[Source, ...] = (
    Source("webinar_masterclass", "Webinar", "on24", "webinar", "webinar_attribution_masterclass", "CMP-0101", -1,
           0.045, 0.45, "webinar", ("/webinars/attribution-masterclass",)),
    Source("webinar_roadmap", "Webinar", "on24", "webinar", "webinar_product_roadmap", "CMP-0102", -1, 0.035, 0.45,
           "webinar", ("/webinars/product-roadmap",)),
    Source("webinar_customer", "Webinar", "zoom", "webinar", "webinar_customer_stories", "CMP-0103", -1, 0.03, 0.4,
           "webinar", ("/webinars/customer-stories",)),
    Source("email_newsletter", "Email", "hubspot", "email", "monthly_newsletter", "CMP-0201", -1, 0.11, 0.1, "email",
           ("/blog", "/blog/mmm-explained", "/blog/attribution-models")),
    Source("email_nurture", "Email", "hubspot", "email", "nurture_track", "CMP-0202", -1, 0.09, 0.14, "email",
           ("/resources/guide", "/pricing")),
    Source("email_product", "Email", "hubspot", "email", "product_update", "CMP-0203", -1, 0.04, 0.1, "email",
           ("/product/whats-new",)),
    Source("organic_search", "Organic Search", "google", "organic", None, None, -1, 0.17, 0.2, "organic",
           ("/", "/blog/attribution-models", "/blog/mmm-explained", "/product/analytics", "/pricing")),
    Source("events_tradeshow", "Events", "event", "offline", "trade_show_booth", "CMP-0301", -1, 0.03, 0.6, "events",
           ("/events",)),
    Source("events_roadshow", "Events", "event", "offline", "customer_roadshow", "CMP-0302", -1, 0.02, 0.6, "events",
           ("/events",)),
    Source("direct", "Direct", None, None, None, None, -1, 0.09, 0.15, "direct", ("/", "/login", "/pricing")),
    Source("referral_g2", "Referral", "g2.com", "referral", None, None, -1, 0.035, 0.35, "referral",
           ("/", "/product/analytics")),
    Source("referral_partner", "Referral", "partner_portal", "referral", "partner_program", "CMP-0401", -1, 0.025, 0.35,
           "referral", ("/partners",)),
    Source("content_syndication", "Content Syndication", "techtarget", "syndication", "cs_whitepaper_program",
           "CMP-0501", -1, 0.045, 0.2, "syndication", ("/resources/whitepaper",)),
)

SOCIAL_ORGANIC = Source("organic_social", None, None, None, None, None, -1, 0.06, 0.0, "social",
                        ("/", "/blog/attribution-models", "/careers"))
"""Web-only source (organic social referrals); never logged as a CRM touchpoint."""

SOURCES: tuple[Source, ...] = tuple(_paid_sources()) + UNPAID_SOURCES
WEB_SOURCES: tuple[Source, ...] = SOURCES + (SOCIAL_ORGANIC,)

CRM_LABEL_VARIANTS: dict[str, tuple[tuple[str, float], ...]] = {
    "Paid Search": (("Paid Search", 0.84), ("paid search", 0.08), (" Paid Search ", 0.04), ("PAID SEARCH", 0.04)),
    "Paid Social": (("Paid Social", 0.86), ("paid social", 0.08), ("Paid Social ", 0.06)),
    "Display": (("Display", 0.9), ("display", 0.1)),
    "Webinar": (("Webinar", 0.88), ("webinar", 0.07), ("Webinar ", 0.05)),
    "Email": (("Email", 0.85), ("email", 0.1), ("EMAIL", 0.05)),
    "Organic Search": (("Organic Search", 0.9), ("organic search", 0.1)),
    "Events": (("Events", 0.9), ("events", 0.05), (" Events", 0.05)),
    "Direct": (("Direct", 0.95), ("direct", 0.05)),
    "Referral": (("Referral", 0.92), ("referral", 0.08)),
    "Content Syndication": (("Content Syndication", 0.9), ("content syndication", 0.1)),
}

SALES_CHANNELS: tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...] = (
    ("Outbound Call", 0.4, (("Outbound Call", 0.9), ("outbound call", 0.1))),
    ("Sales Email", 0.35, (("Sales Email", 0.88), ("Sales email", 0.07), ("Sales Email ", 0.05))),
    ("Meeting", 0.25, (("Meeting", 0.92), (" Meeting", 0.04), ("meeting", 0.04))),
)

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")

_SEGMENT_TILT = {
    "SMB": {"paid_search": 1.3, "paid_social": 1.35, "display": 1.1, "events": 0.35, "syndication": 0.6, "webinar": 0.9},
    "Mid-Market": {},
    "Enterprise": {"paid_search": 0.8, "paid_social": 1.0, "display": 0.7, "events": 2.2, "syndication": 1.8,
                   "webinar": 1.3, "email": 1.2},
}


def label_table() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All CRM marketing labels, per canonical label the slice of variants and their cumulative weights."""
    labels: list[str] = []
    starts, cums = [], []
    for canonical, variants in CRM_LABEL_VARIANTS.items():
        starts.append(len(labels))
        w = np.array([v[1] for v in variants])
        cums.append(np.cumsum(w / w.sum()))
        labels += [v[0] for v in variants]
    return labels, np.array(starts), cums  # type: ignore[return-value]


def pick_variant(canonical_idx: np.ndarray, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Messy CRM label per touch: index into the returned label list."""
    labels, starts, cums = label_table()
    out = np.empty(len(canonical_idx), dtype=np.int32)
    u = rng.random(len(canonical_idx))
    for k, cum in enumerate(cums):
        sel = canonical_idx == k
        out[sel] = starts[k] + np.searchsorted(cum, u[sel], side="right").clip(0, len(cum) - 1)
    return labels, out


CANONICAL_LABELS = list(CRM_LABEL_VARIANTS)


class SourceSampler:
    """Per-day categorical distributions over sources (paid weights follow campaign spend)."""

    def __init__(self, sources: tuple[Source, ...], ads: AdsData, timeline: Timeline, paid_weight: float):
        self.sources = sources
        n_days = timeline.n_days
        total = ads.usd.sum(axis=1)
        mean_total = total.mean()
        doy = timeline.day_of_year()
        season = 1 + 0.08 * np.cos(2 * np.pi * (doy - 20) / 365.25)
        w = np.zeros((n_days, len(sources)))
        for i, s in enumerate(sources):
            if s.campaign_index >= 0:
                w[:, i] = paid_weight * ads.usd[:, s.campaign_index] / mean_total
            else:
                w[:, i] = s.weight * season
        self.weights = w
        self.demand = total / mean_total * paid_weight + (1 - paid_weight) * season
        self._cum: dict[str, np.ndarray] = {}

    def cumulative(self, segment: str | None) -> np.ndarray:
        key = segment or "_all"
        if key not in self._cum:
            tilt = _SEGMENT_TILT.get(segment or "", {})
            mult = np.array([tilt.get(s.kind, 1.0) for s in self.sources])
            w = self.weights * mult
            cum = np.cumsum(w, axis=1)
            self._cum[key] = cum / cum[:, -1:]
        return self._cum[key]

    def sample(self, days: np.ndarray, rng: np.random.Generator, segment: str | None = None,
               chunk: int = 400_000) -> np.ndarray:
        """Source index per event on the given day indices."""
        cum = self.cumulative(segment)
        out = np.empty(len(days), dtype=np.int32)
        u = rng.random(len(days))
        for lo in range(0, len(days), chunk):
            hi = min(lo + chunk, len(days))
            out[lo:hi] = (u[lo:hi, None] > cum[days[lo:hi]]).sum(axis=1)
        return np.minimum(out, len(self.sources) - 1)

    def sample_days(self, n: int, rng: np.random.Generator, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Days drawn proportionally to overall demand (spend plus seasonal unpaid interest)."""
        hi = len(self.demand) if hi is None else hi
        cdf = np.cumsum(self.demand[lo:hi])
        return lo + np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, hi - lo - 1)
