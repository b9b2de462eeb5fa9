"""Web analytics sessions: known people's browsing around their CRM touches, plus anonymous visitors.

Known people browse from one to three browsers (client ids). A form fill on a client records a messy
spelling of the person's email in ``form_email``, which is how client ids link to CRM contacts; about one
client in ten never fills a form and stays anonymous. Anonymous visitors never convert (non-converting
journeys). Acquisition parameters carry real-world mess: inconsistent UTM casing and mediums, click ids
without UTMs, lost UTMs, direct sessions without referrer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import csvio, names
from .channels import SOURCES, WEB_SOURCES, SourceSampler
from .config import NO_IDS, IdBase, Scale, Timeline
from .crm import DAY, CrmData

_SOURCE_SPELLINGS = {
    "google": (("google", 0.8), ("Google", 0.1), ("google ", 0.05), ("GOOGLE", 0.05)),
    "facebook": (("facebook", 0.75), ("fb", 0.1), ("Facebook", 0.1), ("meta", 0.05)),
    "linkedin": (("linkedin", 0.8), ("LinkedIn", 0.15), ("linkedin.com", 0.05)),
    "hubspot": (("hubspot", 0.85), ("HubSpot", 0.1), ("newsletter", 0.05)),
}
_MEDIUM_SPELLINGS = {
    "cpc": (("cpc", 0.8), ("CPC", 0.08), ("ppc", 0.07), ("paid", 0.05)),
    "paid_social": (("paid_social", 0.75), ("paidsocial", 0.1), ("Paid Social", 0.05), ("cpc", 0.1)),
    "display": (("display", 0.85), ("Display", 0.1), ("banner", 0.05)),
    "email": (("email", 0.8), ("Email", 0.12), ("e-mail", 0.08)),
}
_SEARCH_REFERRERS = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://www.google.co.uk/")
_SOCIAL_REFERRERS = ("https://www.linkedin.com/", "https://t.co/", "https://l.facebook.com/", "https://www.reddit.com/")
_REFERRAL_REFERRERS = {
    "referral_g2": ("https://www.g2.com/products/signalgrid/reviews", "https://www.capterra.com/p/analytics-tools/"),
    "referral_partner": ("https://partners.example-consulting.com/marketplace",),
}
_SEARCH_TERMS = ("marketing attribution software", "marketing mix modeling", "multi touch attribution",
                 "b2b analytics platform", "roi dashboard", "campaign analytics")
WEB_KINDS_MIRRORED = {"paid_search", "display", "paid_social", "email", "webinar", "organic", "direct", "referral"}


@dataclass
class WebData:
    """Sessions ordered by start time (index = session number - 1)."""

    ts: np.ndarray
    client: np.ndarray
    source: np.ndarray
    mess: np.ndarray  # 0 clean, 1 utms lost (click id only), 2 everything lost
    form_email: list  # per session, None or text
    converted: np.ndarray
    country: np.ndarray
    client_a: np.ndarray
    client_first: np.ndarray
    client_person: np.ndarray
    rng_seed: int
    anomalies: list[dict] = field(default_factory=list)


def _spell(values: list[str | None], rng: np.random.Generator, table: dict) -> list[str | None]:
    out = []
    u = rng.random(len(values))
    for v, x in zip(values, u):
        if v in table:
            acc = 0.0
            for spelling, w in table[v]:
                acc += w
                if x < acc:
                    v = spelling
                    break
        out.append(v)
    return out


def simulate(timeline: Timeline, scale: Scale, crm: CrmData, sampler: SourceSampler,
             rng: np.random.Generator) -> WebData:
    """Simulate every web session (see the module docstring)."""
    start_ts, end_ts, n_days = timeline.start_ts, timeline.end_ts, timeline.n_days
    n_people = len(crm.person_account)
    touch_person = crm.rec_person[crm.mt_record]
    active_people = np.unique(touch_person)

    # browsers per known person
    n_cli = np.zeros(n_people, dtype=np.int64)
    n_cli[active_people] = rng.choice([1, 2, 3], size=len(active_people), p=[0.7, 0.22, 0.08])
    cli_start = np.concatenate([[0], np.cumsum(n_cli)[:-1]])
    n_known_clients = int(n_cli.sum())

    def pick_client(person: np.ndarray) -> np.ndarray:
        return cli_start[person] + np.floor(rng.random(len(person)) * n_cli[person]).astype(np.int64)

    # (a) sessions mirroring digital CRM touches
    kinds = np.array([s.kind in WEB_KINDS_MIRRORED for s in SOURCES])
    mirror = kinds[crm.mt_source] & (rng.random(len(crm.mt_source)) < 0.6)
    m_person = touch_person[mirror]
    m_ts = np.maximum(crm.mt_ts[mirror] - rng.integers(0, 900, mirror.sum()), start_ts)
    m_source = crm.mt_source[mirror].astype(np.int32)
    m_client = pick_client(m_person)

    # (b) extra browsing of known people around their touches
    n_browse = int(len(crm.mt_ts) * scale.browse_sessions_per_touch)
    pick = rng.integers(0, len(crm.mt_ts), n_browse)
    b_person = touch_person[pick]
    offset = rng.integers(-20 * DAY, 20 * DAY, n_browse)
    b_ts = crm.mt_ts[pick] + offset
    b_ts = np.where((b_ts < start_ts) | (b_ts > end_ts), crm.mt_ts[pick] - offset, b_ts)
    b_ts = np.clip(b_ts, start_ts, end_ts)
    b_source = sampler.sample(((b_ts - start_ts) // DAY).astype(np.int64), rng)
    b_client = pick_client(b_person)

    # (c) anonymous visitors
    n_vis = scale.anon_visitors
    per_vis = 1 + rng.poisson(scale.anon_sessions_per_visitor - 1, n_vis)
    a_vis = np.repeat(np.arange(n_vis), per_vis)
    first_day = sampler.sample_days(n_vis, rng)
    a_day = np.minimum(first_day[a_vis] + np.where(np.arange(len(a_vis)) == np.repeat(np.cumsum(per_vis) - per_vis, per_vis),
                                                    0, rng.integers(0, 30, len(a_vis))), n_days - 1)
    a_ts = start_ts + a_day * DAY + rng.integers(0, DAY, len(a_day))
    a_source = sampler.sample(a_day.astype(np.int64), rng)
    a_client = n_known_clients + a_vis

    ts = np.concatenate([m_ts, b_ts, a_ts]).astype(np.int64)
    client = np.concatenate([m_client, b_client, a_client]).astype(np.int64)
    source = np.concatenate([m_source, b_source, a_source]).astype(np.int32)
    known = client < n_known_clients
    order = np.lexsort((client, ts))
    ts, client, source, known = ts[order], client[order], source[order], known[order]
    n = len(ts)
    n_clients = n_known_clients + n_vis
    client_person = np.full(n_clients, -1, dtype=np.int64)
    client_person[:n_known_clients] = np.repeat(np.arange(n_people), n_cli)
    person = np.where(known, client_person[client], -1)

    # form fills link known clients to their contact
    converted = np.zeros(n, dtype=np.int64)
    form_email: list = [None] * n
    first_of_client = np.full(n_clients, -1, dtype=np.int64)
    rev = np.arange(n)[::-1]
    first_of_client[client[rev]] = rev
    s0 = first_of_client[:n_known_clients]
    chosen = s0[(s0 >= 0) & (rng.random(n_known_clients) < 0.9)]
    fill = np.zeros(n, dtype=bool)
    fill[chosen] = True
    webinar = np.array([s.kind == "webinar" for s in WEB_SOURCES])
    fill |= known & webinar[source] & (rng.random(n) < 0.8)
    fill_pos = np.nonzero(fill)[0]
    converted[fill_pos] = 1
    variant = rng.random(len(fill_pos))
    for k, i in enumerate(fill_pos.tolist()):
        email = crm.person_email[person[i]]
        v = variant[k]
        if v < 0.12:
            email = email.upper() if v < 0.04 else email.capitalize()
        elif v < 0.2:
            email = " " + email if v < 0.16 else email + " "
        form_email[i] = email

    # acquisition mess: click ids without UTMs, or everything lost
    mess = np.zeros(n, dtype=np.int8)
    paid = np.array([s.campaign_index >= 0 for s in WEB_SOURCES])[source]
    u = rng.random(n)
    mess[paid & (u < 0.1)] = 1
    mess[paid & (u >= 0.1) & (u < 0.13)] = 2

    # country: known people use their account's country
    country = rng.choice(len(names.COUNTRIES), size=n, p=names.COUNTRY_WEIGHTS / names.COUNTRY_WEIGHTS.sum())
    kp = person >= 0
    country[kp] = crm.acc_country[crm.person_account[person[kp]]]

    client_first = np.full(n_clients, end_ts, dtype=np.int64)
    np.minimum.at(client_first, client, ts)
    client_a = rng.integers(100_000_000, 2_147_483_647, n_clients)

    data = WebData(ts, client, source, mess, form_email, converted, country, client_a, client_first, client_person,
                   int(rng.integers(2**31)))
    _plant_conversion_drop(data, timeline)
    return data


def _plant_conversion_drop(web: WebData, timeline: Timeline) -> None:
    day = (web.ts - timeline.start_ts) // DAY
    target = timeline.n_days - 5
    base = (day >= target - 28) & (day < target)
    sel = np.nonzero((day == target) & (web.converted > 0))[0]
    normal_rate = web.converted[base].sum() / max(base.sum(), 1)
    drop = sel[np.random.default_rng(web.rng_seed).random(len(sel)) < 0.95]
    web.converted[drop] = 0
    on_day = day == target
    rate = web.converted[on_day].sum() / max(on_day.sum(), 1)
    web.anomalies.append({
        "kind": "web_conversion_rate_drop",
        "table_name": "web_sessions",
        "date": str(timeline.day_dates()[target]),
        "normal_conversion_rate": round(float(normal_rate), 5),
        "conversion_rate": round(float(rate), 5),
        "sessions": int(on_day.sum()),
        "conversions": int(web.converted[on_day].sum()),
        "baseline_window": [str(timeline.day_dates()[target - 28]), str(timeline.day_dates()[target - 1])],
        "note": "conversion events stopped firing for almost all form fills; form_email is still captured",
    })


def format_sessions(web: WebData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    """Sessions ``lo .. hi-1`` as the landing table (acquisition mess is derived deterministically per chunk)."""
    rng = np.random.default_rng([web.rng_seed, lo])
    src = web.source[lo:hi]
    mess = web.mess[lo:hi]
    n = hi - lo
    srcs = WEB_SOURCES
    kind = np.array([s.kind for s in srcs])[src]
    utm_src = [srcs[i].utm_source for i in src.tolist()]
    utm_med = [srcs[i].utm_medium for i in src.tolist()]
    utm_cmp = [srcs[i].utm_campaign for i in src.tolist()]
    no_utm = (mess > 0) | np.isin(kind, ["organic", "direct", "social", "referral"])
    utm_src = _spell(utm_src, rng, _SOURCE_SPELLINGS)
    utm_med = _spell(utm_med, rng, _MEDIUM_SPELLINGS)
    title = rng.random(n) < 0.08
    utm_cmp = [(c.title() if (c and t) else c) for c, t in zip(utm_cmp, title.tolist())]
    plat = np.array([s.utm_source if s.campaign_index >= 0 else "" for s in srcs])[src]
    paid_search = kind == "paid_search"
    gclid = np.isin(plat, ["google"]) & (mess < 2)
    fbclid = (plat == "facebook") & (mess < 2)

    referrer = np.full(n, None, dtype=object)
    r = rng.random(n)
    search_ref = np.isin(kind, ["organic", "paid_search"])
    referrer[search_ref] = np.array(_SEARCH_REFERRERS, dtype=object)[(r[search_ref] * 4).astype(int) % 4]
    social_ref = (kind == "social") | (kind == "paid_social")
    referrer[social_ref] = np.array(_SOCIAL_REFERRERS, dtype=object)[(r[social_ref] * 4).astype(int) % 4]
    for key, refs in _REFERRAL_REFERRERS.items():
        sel = np.array([s.key == key for s in srcs])[src]
        referrer[sel] = np.array(refs, dtype=object)[(r[sel] * len(refs)).astype(int) % len(refs)]
    email_ref = (kind == "email") & (r < 0.2)
    referrer[email_ref] = "https://mail.google.com/"
    referrer[(kind == "display") & (r < 0.5)] = "https://googleads.g.doubleclick.net/"

    pages = [srcs[i].landing_pages for i in src.tolist()]
    pick = rng.random(n)
    landing = [p[int(x * len(p)) % len(p)] for p, x in zip(pages, pick.tolist())]

    pageviews = 1 + rng.geometric(0.45, n) - 1
    bounce = (pageviews == 1) & (rng.random(n) < 0.45)
    engagement = np.where(bounce, 0.0, np.exp(rng.normal(4.0, 0.9, n)))
    conv = web.converted[lo:hi]
    pageviews = np.where(conv > 0, np.maximum(pageviews, 2), pageviews)
    engagement = np.where(conv > 0, np.maximum(engagement, 30.0), engagement)
    device = rng.choice(3, size=n, p=[0.62, 0.34, 0.04])
    has_campaign = np.array([c is not None for c in utm_cmp], dtype=bool)
    content_null = ~(has_campaign & (rng.random(n) < 0.5))
    term_null = ~(paid_search & (rng.random(n) < 0.7))

    client = web.client[lo:hi]
    client_id = pc.binary_join_element_wise(
        csvio.fmt_int(web.client_a[client]), csvio.fmt_int(web.client_first[client]), "."
    )
    return csvio.string_table({
        "session_id": csvio.fmt_id("S", ids.session + np.arange(lo, hi) + 1, 10),
        "client_id": client_id,
        "session_start": csvio.fmt_ts(web.ts[lo:hi]),
        "landing_page": csvio.fmt_str(landing),
        "page_referrer": csvio.fmt_str(referrer.tolist()),
        "utm_source": csvio.fmt_str(utm_src, null_mask=no_utm),
        "utm_medium": csvio.fmt_str(utm_med, null_mask=no_utm),
        "utm_campaign": csvio.fmt_str(utm_cmp, null_mask=no_utm | ~has_campaign),
        "utm_content": csvio.fmt_id("ad_", rng.integers(1, 40, n), 2, null_mask=content_null | no_utm),
        "utm_term": csvio.fmt_choice(list(_SEARCH_TERMS), rng.integers(0, len(_SEARCH_TERMS), n),
                                     null_mask=term_null | no_utm),
        "gclid": csvio.fmt_id("CjwKCAiA", rng.integers(10**14, 10**15, n), 15, null_mask=~gclid),
        "fbclid": csvio.fmt_id("IwAR", rng.integers(10**15, 10**16, n), 16, null_mask=~fbclid),
        "device_category": csvio.fmt_choice(["desktop", "mobile", "tablet"], device),
        "country": csvio.fmt_choice(names.COUNTRIES, web.country[lo:hi]),
        "pageviews": csvio.fmt_int(pageviews),
        "engagement_time_seconds": csvio.fmt_fixed(engagement, 2),
        "conversions": csvio.fmt_int(conv),
        "form_email": csvio.fmt_str(web.form_email[lo:hi]),
    })
