"""CRM simulation: accounts, people and their (duplicate) contact records, buying journeys, opportunities.

Each warm account runs a few *buying cycles*: a burst of marketing touchpoints spread over its contacts.
Whether a cycle turns into an opportunity depends on its exposure (how many touches, through which
channels), so attribution has signal. Opportunities open shortly after the cycle's last touch; sales
touchpoints cluster around creation. *Cold* accounts (outbound or partner sourced) have no marketing or
web activity: their opportunities have no touchpoint in the 90 days before creation (unattributed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import csvio, names
from .channels import CANONICAL_LABELS, SALES_CHANNELS, SEGMENTS, SOURCES, SourceSampler, pick_variant
from .config import NO_IDS, IdBase, Scale, Timeline

DAY = 86400
OPP_CONVERSION = 0.56
"""Average share of buying cycles that open an opportunity."""
COLD_OPP_SHARE = 0.07
"""Target share of opportunities from cold accounts (no touchpoint before creation)."""
DUPLICATE_PERSON_SHARE = 0.03
WIN_RATE = np.array([0.32, 0.27, 0.22])
AMOUNT_MEDIAN = np.array([6_000.0, 25_000.0, 90_000.0])
CYCLE_DAYS = ((14, 60), (30, 120), (60, 240))
CONTACTS_BASE = np.array([1, 2, 4])
CONTACTS_EXTRA = np.array([1.0, 2.0, 4.0])
TOUCH_MULT = np.array([0.7, 1.1, 1.7]) / 0.92
SPAN_DAYS = ((20, 90), (40, 150), (60, 240))
OPEN_STAGES = ["Qualification", "Discovery", "Proposal", "Negotiation"]
STAGES = OPEN_STAGES + ["Closed Won", "Closed Lost"]
LIFECYCLE = ["subscriber", "lead", "mql", "sql", "opportunity", "customer"]
VARIANT_KINDS = ["canonical", "case", "whitespace", "plus_tag", "gmail_dots"]
PLUS_TAGS = ["webinar", "news", "events", "demo", "trial"]
NAME_WORDS = ["", "Analytics", "Health", "Logistics", "Capital", "Labs", "Foods", "Media", "Robotics", "Security",
              "Studios", "Partners", "Solutions", "Systems", "Networks", "Energy", "Bio", "Retail", "Finance",
              "Cloud", "Consulting"]


@dataclass
class CrmData:
    """Numeric CRM state; string columns are built when formatting."""

    # accounts (index = account number - 1)
    acc_segment: np.ndarray
    acc_country: np.ndarray
    acc_industry: np.ndarray
    acc_name: list[str]
    acc_base: list[str]
    acc_suffix: np.ndarray
    acc_domain: list[str]
    acc_created: np.ndarray
    acc_cold: np.ndarray
    acc_owner: np.ndarray
    acc_person_start: np.ndarray
    acc_person_count: np.ndarray
    # people
    person_account: np.ndarray
    person_first: np.ndarray
    person_last: np.ndarray
    person_email: list[str]
    person_record: np.ndarray  # canonical record index
    # contact records (index = contact number - 1, ordered by creation)
    rec_person: np.ndarray
    rec_kind: np.ndarray
    rec_email: list[str]
    rec_created: np.ndarray
    rec_lead: np.ndarray
    rec_mql: np.ndarray
    rec_sql: np.ndarray
    rec_customer: np.ndarray
    rec_stage: np.ndarray
    rec_first_source: np.ndarray
    # marketing touchpoints (ordered by time)
    mt_record: np.ndarray
    mt_ts: np.ndarray
    mt_source: np.ndarray
    mt_label: np.ndarray
    mt_labels: list[str]
    # opportunities (ordered by creation)
    opp_account: np.ndarray
    opp_created: np.ndarray
    opp_units: np.ndarray  # pipeline amount in 1e-10 USD
    opp_stage: np.ndarray
    opp_won: np.ndarray  # 1 won, 0 lost, -1 open
    opp_closed: np.ndarray
    opp_won_cents: np.ndarray
    opp_cold: np.ndarray
    # sales touchpoints (ordered by time)
    st_record: np.ndarray
    st_ts: np.ndarray
    st_label: np.ndarray
    st_labels: list[str]
    st_owner: np.ndarray

    @property
    def n_accounts(self) -> int:
        return len(self.acc_segment)

    @property
    def rec_account(self) -> np.ndarray:
        return self.person_account[self.rec_person]


@dataclass
class SharedNames:
    """Names already taken by earlier shards, so company names, domains and gmail addresses stay unique."""

    company_bases: dict[str, int] = field(default_factory=dict)
    gmail: set[str] = field(default_factory=set)


def _company_names(n: int, country: np.ndarray, rng: np.random.Generator, seen: dict[str, int] | None = None):
    pre = rng.integers(len(names.COMPANY_PREFIXES), size=n)
    core = rng.integers(len(names.COMPANY_CORES), size=n)
    word = rng.integers(len(NAME_WORDS), size=n)
    suffix = rng.integers(len(names.COMPANY_SUFFIXES), size=n)
    seen = {} if seen is None else seen
    bases, domains, full = [], [], []
    for i in range(n):
        base = names.COMPANY_PREFIXES[pre[i]] + names.COMPANY_CORES[core[i]]
        if NAME_WORDS[word[i]]:
            base += " " + NAME_WORDS[word[i]]
        k = seen.get(base, 0)
        seen[base] = k + 1
        if k:
            base = f"{base} {k + 1}"
        slug = "".join(ch for ch in base.lower() if ch.isalnum())
        bases.append(base)
        domains.append(f"{slug}.{names.COUNTRY_TLD[names.COUNTRIES[country[i]]]}")
        full.append(f"{base} {names.COMPANY_SUFFIXES[suffix[i]]}")
    return bases, suffix, domains, full


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"


def _person_emails(first: np.ndarray, last: np.ndarray, domains: list[str], account: np.ndarray,
                   rng: np.random.Generator, taken_gmail: set[str] | None = None) -> list[str]:
    gmail = rng.random(len(first)) < 0.07
    tag = rng.integers(10, 99, size=len(first))
    out, seen = [], set()
    fn = [f.lower() for f in names.FIRST_NAMES]
    ln = ["".join(ch for ch in s.lower() if ch.isalpha()) for s in names.LAST_NAMES]
    for i in range(len(first)):
        local = f"{fn[first[i]]}.{ln[last[i]]}"
        domain = "gmail.com" if gmail[i] else domains[account[i]]
        if gmail[i]:
            local += str(tag[i])
        email, k = f"{local}@{domain}", 1
        while _normalise_email(email) in seen or (taken_gmail is not None and _normalise_email(email) in taken_gmail):
            k += 1
            email = f"{local}{k}@{domain}"
        seen.add(_normalise_email(email))
        if taken_gmail is not None and gmail[i]:
            taken_gmail.add(_normalise_email(email))
        out.append(email)
    return out


def _email_variant(email: str, kind: int, rng: np.random.Generator) -> str:
    local, _, domain = email.partition("@")
    if kind == 1:
        return email.upper() if rng.random() < 0.3 else ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()
    if kind == 2:
        return (" " if rng.random() < 0.5 else "") + email + (" " if rng.random() < 0.7 else "  ")
    if kind == 3:
        return f"{local}+{PLUS_TAGS[int(rng.integers(len(PLUS_TAGS)))]}@{domain}"
    return local.replace(".", "") + "@" + domain


def _business_seconds(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rng.normal(14.5 * 3600, 3.2 * 3600, n), 6 * 3600, 23 * 3600 + 3599).astype(np.int64)


def _group_first(keys: np.ndarray, values: np.ndarray, n: int, fill: int, reducer=np.minimum) -> np.ndarray:
    out = np.full(n, fill, dtype=np.int64)
    reducer.at(out, keys, values)
    return out


def simulate(timeline: Timeline, scale: Scale, sampler: SourceSampler, rng: np.random.Generator,
             shared: SharedNames | None = None) -> CrmData:
    """Simulate the CRM end to end (see the module docstring); ``shared`` keeps names unique across shards."""
    n_days, start_ts, end_ts = timeline.n_days, timeline.start_ts, timeline.end_ts
    n_acc = scale.n_accounts

    # ---------------------------------------------------------------- accounts
    seg = rng.choice(3, size=n_acc, p=[0.6, 0.3, 0.1]).astype(np.int8)
    warm_opps_per_acc = scale.cycles_per_account * OPP_CONVERSION * 0.93
    cold_frac = COLD_OPP_SHARE * warm_opps_per_acc / (1.35 * (1 - COLD_OPP_SHARE) + COLD_OPP_SHARE * warm_opps_per_acc)
    cold = rng.random(n_acc) < cold_frac
    country = rng.choice(len(names.COUNTRIES), size=n_acc, p=names.COUNTRY_WEIGHTS / names.COUNTRY_WEIGHTS.sum())
    industry = rng.integers(len(names.INDUSTRIES), size=n_acc)
    base, suffix, domain, full = _company_names(n_acc, country, rng, shared.company_bases if shared else None)
    owner = rng.integers(scale.n_sales_reps, size=n_acc)

    # ---------------------------------------------------------------- people
    per_acc = CONTACTS_BASE[seg] + rng.poisson(CONTACTS_EXTRA[seg])
    p_start = np.concatenate([[0], np.cumsum(per_acc)[:-1]])
    n_people = int(per_acc.sum())
    p_account = np.repeat(np.arange(n_acc), per_acc)
    p_first = rng.integers(len(names.FIRST_NAMES), size=n_people)
    p_last = rng.integers(len(names.LAST_NAMES), size=n_people)
    p_email = _person_emails(p_first, p_last, domain, p_account, rng, shared.gmail if shared else None)

    # ---------------------------------------------------------------- buying cycles and marketing touches
    n_cyc_acc = np.where(cold, 0, rng.poisson(scale.cycles_per_account, n_acc))
    cyc_account = np.repeat(np.arange(n_acc), n_cyc_acc)
    n_cyc = len(cyc_account)
    cyc_seg = seg[cyc_account]
    cyc_start = sampler.sample_days(n_cyc, rng, 0, n_days - 3)
    span_lo = np.array([s[0] for s in SPAN_DAYS])[cyc_seg]
    span_hi = np.array([s[1] for s in SPAN_DAYS])[cyc_seg]
    cyc_span = rng.uniform(span_lo, span_hi)
    mean_extra = np.maximum(scale.touches_per_cycle * TOUCH_MULT[cyc_seg] - 1, 0.05)
    n_touch = 1 + rng.negative_binomial(2, 2 / (2 + mean_extra))
    n_touch = np.minimum(n_touch, 45)
    t_cycle = np.repeat(np.arange(n_cyc), n_touch)
    t_day = cyc_start[t_cycle] + np.floor(rng.random(len(t_cycle)) ** 1.3 * cyc_span[t_cycle]).astype(np.int64)
    keep = t_day < n_days
    t_cycle, t_day = t_cycle[keep], t_day[keep]
    t_ts = start_ts + t_day * DAY + _business_seconds(len(t_day), rng)
    t_acc = cyc_account[t_cycle]
    t_person = p_start[t_acc] + np.floor(rng.random(len(t_acc)) * per_acc[t_acc]).astype(np.int64)
    t_source = np.empty(len(t_day), dtype=np.int32)
    t_seg = seg[t_acc]
    for s, name in enumerate(SEGMENTS):
        sel = t_seg == s
        t_source[sel] = sampler.sample(t_day[sel], rng, segment=name)

    # ---------------------------------------------------------------- opportunities from cycles
    exposure = np.array([s.exposure for s in SOURCES])
    score = np.bincount(t_cycle, exposure[t_source], minlength=n_cyc)
    has_touch = np.bincount(t_cycle, minlength=n_cyc) > 0
    lo, hi = 0.01, 20.0
    for _ in range(40):
        k = (lo + hi) / 2
        if (1 - np.exp(-k * score[has_touch])).mean() < OPP_CONVERSION:
            lo = k
        else:
            hi = k
    p_opp = 1 - np.exp(-k * score)
    anchor = _group_first(t_cycle, t_ts, n_cyc, -1, np.maximum)
    lag = np.minimum(rng.exponential(10 * DAY, n_cyc), 80 * DAY).astype(np.int64) + rng.integers(600, DAY, n_cyc)
    created = anchor + lag
    opens = has_touch & (rng.random(n_cyc) < p_opp) & (created <= end_ts)
    w_cycle = np.nonzero(opens)[0]
    w_account, w_created = cyc_account[w_cycle], created[w_cycle]
    w_score = score[w_cycle] / max(score[w_cycle].mean(), 1e-9)

    cold_idx = np.nonzero(cold)[0]
    n_cold_opps = 1 + rng.poisson(0.35, len(cold_idx))
    c_account = np.repeat(cold_idx, n_cold_opps)
    c_created = start_ts + rng.integers(30, n_days, len(c_account)) * DAY + _business_seconds(len(c_account), rng)

    o_account = np.concatenate([w_account, c_account])
    o_created = np.concatenate([w_created, c_created])
    o_cold = np.concatenate([np.zeros(len(w_account), bool), np.ones(len(c_account), bool)])
    o_score = np.concatenate([w_score, np.full(len(c_account), 0.8)])
    order = np.lexsort((o_account, o_created))
    o_account, o_created, o_cold, o_score = o_account[order], o_created[order], o_cold[order], o_score[order]
    n_opp = len(o_account)
    o_seg = seg[o_account]
    amount_cents = np.rint(AMOUNT_MEDIAN[o_seg] * np.exp(rng.normal(0, 0.55, n_opp)) * 100).astype(np.int64)
    units = amount_cents * 10**8
    precise = rng.random(n_opp) < 0.06
    units[precise] += rng.integers(1, 10**8, precise.sum())
    cyc_lo = np.array([c[0] for c in CYCLE_DAYS])[o_seg]
    cyc_hi = np.array([c[1] for c in CYCLE_DAYS])[o_seg]
    closed = o_created + (rng.uniform(cyc_lo, cyc_hi) * DAY).astype(np.int64)
    p_win = np.clip(WIN_RATE[o_seg] * np.clip(0.6 + 0.4 * o_score, 0.5, 1.6), 0.02, 0.9)
    is_closed = closed <= end_ts
    won = np.where(is_closed, (rng.random(n_opp) < p_win).astype(np.int8), -1).astype(np.int8)
    progress = np.clip((end_ts - o_created) / np.maximum(closed - o_created, 1), 0, 0.999)
    stage = np.where(won == 1, 4, np.where(won == 0, 5, np.floor(progress * 4))).astype(np.int8)
    won_cents = np.where(won == 1, np.rint(units / 10**8 * rng.uniform(0.85, 1.0, n_opp)), 0).astype(np.int64)
    closed = np.where(is_closed, closed, -1)

    # ---------------------------------------------------------------- account creation dates
    acc_first = _group_first(cyc_account, start_ts + cyc_start * DAY, n_acc, np.iinfo(np.int64).max)
    acc_first = np.minimum(acc_first, _group_first(o_account, o_created, n_acc, np.iinfo(np.int64).max))
    idle = acc_first == np.iinfo(np.int64).max
    acc_first[idle] = start_ts + rng.integers(0, n_days, idle.sum()) * DAY
    acc_created = acc_first - rng.integers(DAY, 90 * DAY, n_acc)

    # ---------------------------------------------------------------- contact records and duplicates
    p_created = _group_first(t_person, t_ts - rng.integers(60, 3600, len(t_ts)), n_people, np.iinfo(np.int64).max)
    quiet = p_created == np.iinfo(np.int64).max
    p_created[quiet] = np.minimum(acc_created[p_account[quiet]] + rng.integers(DAY, 60 * DAY, quiet.sum()), end_ts - DAY)
    dup_person = np.nonzero(rng.random(n_people) < DUPLICATE_PERSON_SHARE)[0]
    n_extra = np.where(rng.random(len(dup_person)) < 0.7, 1, 2)
    x_person = np.repeat(dup_person, n_extra)
    x_created = p_created[x_person] + rng.integers(3 * DAY, 200 * DAY, len(x_person))
    ok = x_created <= end_ts - 3600
    x_person, x_created = x_person[ok], x_created[ok]
    is_gmail = np.array([e.endswith("@gmail.com") for e in p_email])
    x_kind = rng.choice([1, 2, 3], size=len(x_person), p=[0.4, 0.25, 0.35])
    x_kind = np.where(is_gmail[x_person] & (rng.random(len(x_person)) < 0.7), 4, x_kind)
    r_person = np.concatenate([np.arange(n_people), x_person])
    r_kind = np.concatenate([np.zeros(n_people, np.int8), x_kind]).astype(np.int8)
    r_created = np.concatenate([p_created, x_created])
    order = np.lexsort((r_kind, r_person, r_created))
    r_person, r_kind, r_created = r_person[order], r_kind[order], r_created[order]
    n_rec = len(r_person)
    canonical = np.empty(n_people, dtype=np.int64)
    canon_mask = r_kind == 0
    canonical[r_person[canon_mask]] = np.nonzero(canon_mask)[0]
    r_email = [
        p_email[p] if k == 0 else _email_variant(p_email[p], int(k), rng) for p, k in zip(r_person.tolist(), r_kind.tolist())
    ]

    # touches of a duplicated person sometimes land on a later duplicate record
    extra_recs = np.nonzero(~canon_mask)[0]
    t_record = canonical[t_person]
    if len(extra_recs):
        extra_by_person = pd.Series(extra_recs).groupby(r_person[extra_recs]).first()
        has_extra = np.isin(t_person, extra_by_person.index.to_numpy())
        idx = np.nonzero(has_extra & (rng.random(len(t_person)) < 0.35))[0]
        alt = extra_by_person.reindex(t_person[idx]).to_numpy()
        use = r_created[alt] <= t_ts[idx]
        t_record[idx[use]] = alt[use]

    order = np.lexsort((t_record, t_ts))
    mt_record, mt_ts, mt_source = t_record[order], t_ts[order], t_source[order]
    canon_label = np.array([CANONICAL_LABELS.index(s.crm_channel) for s in SOURCES])
    mt_labels, mt_label = pick_variant(canon_label[mt_source], rng)

    # ---------------------------------------------------------------- sales touches
    spo = scale.sales_touches_per_opp * np.array([0.7, 1.1, 1.6])[o_seg]
    n_st = np.minimum(1 + rng.poisson(np.maximum(spo - 1, 0)), 25)
    s_opp = np.repeat(np.arange(n_opp), n_st)
    warm_offset = np.clip(rng.normal(-4 * DAY, 9 * DAY, len(s_opp)), -40 * DAY, 30 * DAY)
    cold_offset = rng.uniform(3600, 40 * DAY, len(s_opp))
    s_ts = o_created[s_opp] + np.where(o_cold[s_opp], cold_offset, warm_offset).astype(np.int64)
    s_ts = (s_ts // DAY) * DAY + _business_seconds(len(s_ts), rng)
    s_ts = np.where(o_cold[s_opp] & (s_ts <= o_created[s_opp]), o_created[s_opp] + 7200, s_ts)
    s_acc = o_account[s_opp]
    s_person = p_start[s_acc] + np.floor(rng.random(len(s_acc)) * per_acc[s_acc]).astype(np.int64)
    s_record = canonical[s_person]
    s_ts = np.maximum(s_ts, r_created[s_record] + 600)  # never before the contact exists
    keep = (s_ts <= end_ts) & (s_ts >= start_ts)
    s_opp, s_ts, s_acc, s_record = s_opp[keep], s_ts[keep], s_acc[keep], s_record[keep]
    s_owner = np.where(rng.random(len(s_acc)) < 0.9, owner[s_acc], rng.integers(scale.n_sales_reps, size=len(s_acc)))
    ch_p = np.array([c[1] for c in SALES_CHANNELS])
    s_channel = rng.choice(len(SALES_CHANNELS), size=len(s_acc), p=ch_p / ch_p.sum())
    st_labels: list[str] = []
    starts, cums = [], []
    for _, _, variants in SALES_CHANNELS:
        starts.append(len(st_labels))
        w = np.array([v[1] for v in variants])
        cums.append(np.cumsum(w / w.sum()))
        st_labels += [v[0] for v in variants]
    u = rng.random(len(s_channel))
    s_label = np.empty(len(s_channel), dtype=np.int32)
    for k, cum in enumerate(cums):
        sel = s_channel == k
        s_label[sel] = starts[k] + np.searchsorted(cum, u[sel], side="right").clip(0, len(cum) - 1)
    order = np.lexsort((s_record, s_ts))
    s_record, s_ts, s_label, s_owner = s_record[order], s_ts[order], s_label[order], s_owner[order]

    # ---------------------------------------------------------------- lifecycle per record
    r_account = p_account[r_person]
    big = np.int64(1) << 40
    opp_key = o_account.astype(np.int64) * big + (o_created - start_ts + 400 * DAY)
    okey_order = np.argsort(opp_key, kind="stable")
    sorted_keys = opp_key[okey_order]
    rec_key = r_account.astype(np.int64) * big + (r_created - start_ts + 400 * DAY)
    pos = np.searchsorted(sorted_keys, rec_key, side="left")
    pos_c = np.minimum(pos, n_opp - 1)
    nxt = okey_order[pos_c]
    has_opp = (pos < n_opp) & (o_account[nxt] == r_account)
    n_rec_touch = np.bincount(mt_record, minlength=n_rec)
    lead = r_created.copy()
    mql_gap = rng.uniform(0.5 * DAY, 20 * DAY, n_rec).astype(np.int64)
    mql = np.where((n_rec_touch >= 2) | has_opp, lead + mql_gap, -1)
    opp_c = np.where(has_opp, o_created[nxt], -1)
    mql = np.where(has_opp & (mql >= opp_c), lead + (opp_c - lead) // 2, mql)
    sql = np.where(has_opp, np.maximum(opp_c - rng.integers(0, 2 * DAY, n_rec), mql + 1800), -1)
    cust = np.where(has_opp & (won[nxt] == 1), np.maximum(closed[nxt], sql + 3600), -1)
    for arr in (mql, sql, cust):
        arr[arr > end_ts] = -1
    sql[mql < 0] = -1
    cust[sql < 0] = -1
    stage_idx = np.where(
        cust >= 0, 5,
        np.where(sql >= 0, np.where(won[nxt] == -1, 4, 3), np.where(mql >= 0, 2, np.where(n_rec_touch > 0, 1, 0))),
    ).astype(np.int8)
    first_touch_pos = _group_first(mt_record, np.arange(len(mt_record)), n_rec, np.iinfo(np.int64).max)
    first_source = np.where(first_touch_pos == np.iinfo(np.int64).max, -1,
                            mt_source[np.minimum(first_touch_pos, max(len(mt_source) - 1, 0))]).astype(np.int32)

    return CrmData(
        acc_segment=seg, acc_country=country, acc_industry=industry, acc_name=full, acc_base=base,
        acc_suffix=suffix, acc_domain=domain, acc_created=acc_created, acc_cold=cold, acc_owner=owner,
        acc_person_start=p_start, acc_person_count=per_acc,
        person_account=p_account, person_first=p_first, person_last=p_last, person_email=p_email,
        person_record=canonical,
        rec_person=r_person, rec_kind=r_kind, rec_email=r_email, rec_created=r_created, rec_lead=lead,
        rec_mql=mql, rec_sql=sql, rec_customer=cust, rec_stage=stage_idx, rec_first_source=first_source,
        mt_record=mt_record, mt_ts=mt_ts, mt_source=mt_source, mt_label=mt_label, mt_labels=mt_labels,
        opp_account=o_account, opp_created=o_created, opp_units=units, opp_stage=stage, opp_won=won,
        opp_closed=closed, opp_won_cents=won_cents, opp_cold=o_cold,
        st_record=s_record, st_ts=s_ts, st_label=s_label, st_labels=st_labels, st_owner=s_owner,
    )


# ------------------------------------------------------------------------------------------ formatting

def _src_attr(attr: str, idx: np.ndarray) -> pa.Array:
    return csvio.fmt_choice([getattr(s, attr) or "" for s in SOURCES], idx, null_mask=_empty_attr(attr, idx))


def _empty_attr(attr: str, idx: np.ndarray) -> np.ndarray:
    empty = np.array([getattr(s, attr) is None for s in SOURCES] + [True])
    return empty[np.where(idx < 0, len(SOURCES), idx)]


def format_accounts(crm: CrmData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    idx = np.arange(lo, hi)
    return csvio.string_table({
        "account_id": csvio.fmt_id("A", ids.account + idx + 1, 7),
        "account_name": csvio.fmt_str(crm.acc_name[lo:hi]),
        "domain": csvio.fmt_str(crm.acc_domain[lo:hi]),
        "sales_segment": csvio.fmt_choice(list(SEGMENTS), crm.acc_segment[lo:hi]),
        "country": csvio.fmt_choice(names.COUNTRIES, crm.acc_country[lo:hi]),
        "industry": csvio.fmt_choice(names.INDUSTRIES, crm.acc_industry[lo:hi]),
        "created_at": csvio.fmt_ts(crm.acc_created[lo:hi]),
    })


def format_contacts(crm: CrmData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    idx = np.arange(lo, hi)
    person = crm.rec_person[lo:hi]
    fs = crm.rec_first_source[lo:hi]

    def ts(a: np.ndarray) -> pa.Array:
        return csvio.fmt_ts(a[lo:hi], null_mask=a[lo:hi] < 0)

    return csvio.string_table({
        "contact_id": csvio.fmt_id("C", ids.contact + idx + 1, 8),
        "account_id": csvio.fmt_id("A", ids.account + crm.person_account[person] + 1, 7),
        "email": csvio.fmt_str(crm.rec_email[lo:hi]),
        "first_name": csvio.fmt_choice(names.FIRST_NAMES, crm.person_first[person]),
        "last_name": csvio.fmt_choice(names.LAST_NAMES, crm.person_last[person]),
        "created_at": ts(crm.rec_created),
        "lifecycle_stage": csvio.fmt_choice(LIFECYCLE, crm.rec_stage[lo:hi]),
        "lead_date": ts(crm.rec_lead),
        "mql_date": ts(crm.rec_mql),
        "sql_date": ts(crm.rec_sql),
        "customer_date": ts(crm.rec_customer),
        "utm_source": _src_attr("utm_source", fs),
        "utm_medium": _src_attr("utm_medium", fs),
        "utm_campaign": _src_attr("utm_campaign", fs),
    })


def format_marketing_touchpoints(crm: CrmData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    src = crm.mt_source[lo:hi]
    return csvio.string_table({
        "marketing_touchpoint_id": csvio.fmt_id("MT", ids.marketing_touchpoint + np.arange(lo, hi) + 1, 9),
        "channel_name": csvio.fmt_choice(crm.mt_labels, crm.mt_label[lo:hi]),
        "contact_id": csvio.fmt_id("C", ids.contact + crm.mt_record[lo:hi] + 1, 8),
        "marketing_touchpoint_date": csvio.fmt_ts(crm.mt_ts[lo:hi]),
        "utm_source": _src_attr("utm_source", src),
        "utm_medium": _src_attr("utm_medium", src),
        "utm_campaign": _src_attr("utm_campaign", src),
        "campaign_id": _src_attr("crm_campaign_id", src),
    })


def format_sales_touchpoints(crm: CrmData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    return csvio.string_table({
        "sales_touchpoint_id": csvio.fmt_id("ST", ids.sales_touchpoint + np.arange(lo, hi) + 1, 9),
        "channel_name": csvio.fmt_choice(crm.st_labels, crm.st_label[lo:hi]),
        "contact_id": csvio.fmt_id("C", ids.contact + crm.st_record[lo:hi] + 1, 8),
        "sales_touchpoint_date": csvio.fmt_ts(crm.st_ts[lo:hi]),
        "owner_id": csvio.fmt_id("U", crm.st_owner[lo:hi] + 1, 4),
    })


def format_opportunities(crm: CrmData, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    units = crm.opp_units[lo:hi]
    precise = units % 10**8 != 0
    amount = pc.if_else(pa.array(precise), csvio.fmt_scaled(units, 10), csvio.fmt_scaled(units // 10**8, 2))
    won = crm.opp_won[lo:hi]
    closed = crm.opp_closed[lo:hi]
    return csvio.string_table({
        "opportunity_id": csvio.fmt_id("O", ids.opportunity + np.arange(lo, hi) + 1, 8),
        "account_id": csvio.fmt_id("A", ids.account + crm.opp_account[lo:hi] + 1, 7),
        "pipeline_amount": amount,
        "opportunity_created_date": csvio.fmt_ts(crm.opp_created[lo:hi]),
        "sales_segment": csvio.fmt_choice(list(SEGMENTS), crm.acc_segment[crm.opp_account[lo:hi]]),
        "stage": csvio.fmt_choice(STAGES, crm.opp_stage[lo:hi]),
        "is_won": csvio.fmt_choice(["false", "true"], np.maximum(won, 0)),
        "closed_date": csvio.fmt_ts(closed, null_mask=closed < 0),
        "won_amount": csvio.fmt_scaled(crm.opp_won_cents[lo:hi], 2, null_mask=won != 1),
        "currency": csvio.fmt_choice(["USD"], np.zeros(hi - lo, dtype=np.int32)),
    })

