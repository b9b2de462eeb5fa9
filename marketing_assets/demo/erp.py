"""ERP: products, customers (CRM-won accounts with name/domain variations plus web-shop buyers), order and
return lines, month-end inventory, and finance's marketing-spend journal.

Revenue is built to reconcile exactly: B2B orders book each won opportunity's ``won_amount`` on its close
day for the matched customer; web-shop orders then fill every week so that net revenue (sales minus
returns) equals the MMM truth's weekly revenue to the cent.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import csvio, names
from .ads import AdsData
from .config import FX_TO_USD, N_WEEKS, NO_IDS, IdBase, Scale, Timeline
from .crm import DAY, CrmData

B2B_PRODUCTS = (
    ("Platform License - Enterprise", "Software Licenses", 1_200_000, 0.12),
    ("Platform License - Team", "Software Licenses", 240_000, 0.15),
    ("Professional Services (day)", "Services", 180_000, 0.55),
    ("Onboarding Package", "Services", 450_000, 0.5),
)
WEB_CATEGORIES = ("Software Add-ons", "Hardware", "Accessories", "Training", "Subscriptions", "Templates")
LOCATIONS = ("WH-US-EAST", "WH-US-WEST", "WH-EU-DE")
DOW_WEIGHTS = np.array([1.05, 1.0, 1.0, 1.0, 1.05, 0.95, 0.95])
RETURN_RATE = 0.03
DISCREPANCY_SHARE = 0.08

FINANCE_PLATFORM_LINES = {
    ("google", "SEARCH"): ("Paid Search", "Google Ads", "6100 Advertising - Digital"),
    ("google", "DISPLAY"): ("Display", "Google Ads", "6100 Advertising - Digital"),
    ("meta", None): ("Paid Social", "Meta Platforms", "6100 Advertising - Digital"),
    ("linkedin", None): ("Paid Social", "LinkedIn", "6100 Advertising - Digital"),
}
FINANCE_VENDOR_PLATFORM = {"Google Ads": "google", "Meta Platforms": "meta", "LinkedIn": "linkedin"}
OFFLINE_LINES = (
    ("Events", ("Eventbrite", "SaaStr", "Gartner Symposium", "Booth Builders Inc"), "6150 Events & Sponsorships", 38_000),
    ("Content", ("Northpeak Content Agency", "Freelance Writers Co"), "6200 Content & Creative", 16_000),
    ("Sponsorships", ("Podcast Network Co", "Analytics Weekly"), "6150 Events & Sponsorships", 9_000),
    ("Agency Fees", ("Performance Agency Ltd",), "6300 Agency Fees", 12_000),
    ("PR", ("Brightline PR",), "6400 Public Relations", 7_000),
)


@dataclass
class Products:
    name: list[str]
    category: list[str]
    price: np.ndarray  # cents
    cost: np.ndarray
    active: np.ndarray
    web_weight: np.ndarray  # popularity in the web shop (0 for B2B products)


@dataclass
class Customers:
    """ERP customers; ``rank`` is each customer's 0-based position in the final id order (by creation)."""

    name: list[str]
    website: list
    country: np.ndarray
    created: np.ndarray
    account: np.ndarray  # CRM account index, -1 for web-shop customers
    match_kind: list
    name_variant: list
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass
class OrderLines:
    """All order and return lines, sorted as written; ids are final."""

    order_no: np.ndarray
    is_return: np.ndarray
    line: np.ndarray
    day: np.ndarray
    customer: np.ndarray  # final customer number
    product: np.ndarray
    qty: np.ndarray
    price: np.ndarray
    discount: np.ndarray
    amount: np.ndarray
    original_no: np.ndarray  # -1 when not a return
    promo: np.ndarray  # index into promo codes, -1 none
    channel: np.ndarray  # 0 web, 1 direct, 2 partner
    promo_codes: list[str]


def build_products(scale: Scale, rng: np.random.Generator) -> Products:
    n_web = scale.n_products - len(B2B_PRODUCTS)
    cat = rng.integers(len(WEB_CATEGORIES), size=n_web)
    price = np.clip(np.rint(np.exp(rng.normal(np.log(150), 0.8, n_web))) * 100 - 1, 899, 399_999).astype(np.int64)
    cost = np.rint(price * rng.uniform(0.25, 0.65, n_web)).astype(np.int64)
    adjectives = ("Pro", "Lite", "Plus", "Max", "Mini", "Studio", "Core", "Edge")
    nouns = {"Software Add-ons": "Add-on", "Hardware": "Sensor Kit", "Accessories": "Cable Set", "Training": "Course",
             "Subscriptions": "Annual Plan", "Templates": "Template Pack"}
    pname = [f"{names.COMPANY_PREFIXES[i % len(names.COMPANY_PREFIXES)]} {nouns[WEB_CATEGORIES[c]]} "
             f"{adjectives[(i // 7) % len(adjectives)]} {i + 1}" for i, c in enumerate(cat)]
    active = rng.random(n_web) > 0.05
    weight = np.where(active, 1.0 / (1 + np.arange(n_web)) ** 0.8, 0.0)
    weight = rng.permutation(weight)
    active = active | (weight > 0)
    return Products(
        name=[p[0] for p in B2B_PRODUCTS] + pname,
        category=[p[1] for p in B2B_PRODUCTS] + [WEB_CATEGORIES[c] for c in cat],
        price=np.concatenate([[p[2] for p in B2B_PRODUCTS], price]).astype(np.int64),
        cost=np.concatenate([[int(p[2] * p[3]) for p in B2B_PRODUCTS], cost]).astype(np.int64),
        active=np.concatenate([np.ones(len(B2B_PRODUCTS), bool), active]),
        web_weight=np.concatenate([np.zeros(len(B2B_PRODUCTS)), weight / weight.sum()]),
    )


def _lines_for_amount(amount: int, product: int, price: int) -> tuple[int, int, int]:
    """Quantity and discount so that quantity x price - discount == amount (discount < price)."""
    qty = max(1, -(-amount // price))
    return qty, price, qty * price - amount


@dataclass
class B2BOrders:
    day: list = field(default_factory=list)
    opp: list = field(default_factory=list)
    account: list = field(default_factory=list)
    lines: list = field(default_factory=list)  # per order: list of (product, qty, price, discount, amount)
    channel: list = field(default_factory=list)


def b2b_orders(crm: CrmData, timeline: Timeline, rng: np.random.Generator) -> B2BOrders:
    """One order per won opportunity on its close day."""
    out = B2BOrders()
    won = np.nonzero(crm.opp_won == 1)[0]
    start_ts = timeline.start_ts
    for i in won.tolist():
        amount = int(crm.opp_won_cents[i])
        day = int((crm.opp_closed[i] - start_ts) // DAY)
        seg = int(crm.acc_segment[crm.opp_account[i]])
        lines = []
        services = 0
        if amount >= 500_000 and rng.random() < 0.6:
            services = int(round(amount * rng.uniform(0.1, 0.25)))
        licence = amount - services
        lp = 0 if seg > 0 else 1
        q, p, d = _lines_for_amount(licence, lp, B2B_PRODUCTS[lp][2])
        lines.append((lp, q, p, d, licence))
        if services:
            q, p, d = _lines_for_amount(services, 2, B2B_PRODUCTS[2][2])
            lines.append((2, q, p, d, services))
        out.day.append(day)
        out.opp.append(i)
        out.account.append(int(crm.opp_account[i]))
        out.lines.append(lines)
        out.channel.append(2 if rng.random() < 0.15 else 1)
    return out


@dataclass
class WonByMonth:
    """B2B orders per calendar month: count, total cents, and the first largest order's cents and account."""

    counts: np.ndarray
    cents: np.ndarray
    top_cents: np.ndarray
    top_account: np.ndarray

    def merge(self, other: WonByMonth) -> None:
        """Add a later shard's months (a tie keeps the earlier shard's order, as one pass over all would)."""
        self.counts += other.counts
        self.cents += other.cents
        later = other.top_cents > self.top_cents
        self.top_cents[later] = other.top_cents[later]
        self.top_account[later] = other.top_account[later]


def won_by_month(b2b: B2BOrders, timeline: Timeline, account_base: int = 0) -> WonByMonth:
    month_idx, firsts = timeline.month_index()
    days = np.asarray(b2b.day, dtype=np.int64)
    amounts = np.array([sum(x[4] for x in ls) for ls in b2b.lines], dtype=np.int64)
    m_of = month_idx[days] if len(days) else np.zeros(0, dtype=np.int64)
    n_months = len(firsts)
    cents = np.zeros(n_months, dtype=np.int64)
    np.add.at(cents, m_of, amounts)
    top_cents = np.full(n_months, -1, dtype=np.int64)
    top_account = np.full(n_months, -1, dtype=np.int64)
    for m in np.unique(m_of).tolist():
        in_month = np.nonzero(m_of == m)[0]
        host = int(in_month[np.argmax(amounts[in_month])])
        top_cents[m] = amounts[host]
        top_account[m] = account_base + b2b.account[host]
    return WonByMonth(np.bincount(m_of, minlength=n_months), cents, top_cents, top_account)


def plant_discrepancy(won: WonByMonth, timeline: Timeline, rng: np.random.Generator) -> tuple[tuple, dict]:
    """The planted discrepancy: one month where ERP revenue of matched customers exceeds CRM won revenue by ~8%.

    Returns the extra order ``(day, account, lines, channel)`` and its description for the truth.
    """
    month_idx, firsts = timeline.month_index()
    n_months = len(firsts)
    candidates = [m for m in range(6, n_months - 6) if won.counts[m] >= 3]
    month = int(candidates[int(rng.integers(len(candidates)))]) if candidates else int(np.argmax(won.counts))
    crm_won = int(won.cents[month])
    extra = int(round(crm_won * DISCREPANCY_SHARE))
    account = int(won.top_account[month])
    month_days = np.nonzero(month_idx == month)[0]
    xday = int(month_days[min(len(month_days) - 1, 20)])
    q, p, d = _lines_for_amount(extra, 2, B2B_PRODUCTS[2][2])
    info = {
        "kind": "erp_vs_crm_won_revenue",
        "month": firsts[month].isoformat(),
        "crm_won_amount": crm_won / 100,
        "erp_matched_revenue": (crm_won + extra) / 100,
        "difference": extra / 100,
        "difference_pct": round(extra / crm_won * 100, 2) if crm_won else None,
        "account_index": account,
        "explanation": "an extra services order booked in the ERP for a matched customer with no CRM opportunity",
    }
    return (xday, account, [(2, q, p, d, extra)], 1), info


def add_order(b2b: B2BOrders, order: tuple) -> None:
    """Append an order ``(day, account, lines, channel)`` that no opportunity books."""
    day, account, lines, channel = order
    b2b.day.append(day)
    b2b.opp.append(-1)
    b2b.account.append(account)
    b2b.lines.append(lines)
    b2b.channel.append(channel)


def build_b2b_orders(crm: CrmData, timeline: Timeline, rng: np.random.Generator) -> tuple[B2BOrders, dict]:
    """One order per won opportunity on its close day, plus the planted discrepancy month's extra order."""
    out = b2b_orders(crm, timeline, rng)
    extra, info = plant_discrepancy(won_by_month(out, timeline), timeline, rng)
    add_order(out, extra)
    return out, info


def b2b_weekly_cents(b2b: B2BOrders, timeline: Timeline) -> np.ndarray:
    days = np.asarray(b2b.day, dtype=np.int64)
    amounts = np.array([sum(x[4] for x in ls) for ls in b2b.lines], dtype=np.float64)
    return np.bincount(days // 7, amounts, minlength=timeline.n_sim_weeks)


def _name_variant(base: str, suffix: str, kind: int, rng: np.random.Generator) -> str:
    if kind == 0:
        return f"{base} {suffix}"
    if kind == 1:
        return f"{base.upper()}, {suffix.upper()}."
    if kind == 2:
        options = names.SUFFIX_VARIANTS[suffix]
        v = options[int(rng.integers(len(options)))]
        return f"{base}{v}" if v.startswith(",") else f"{base} {v}"
    return base


NAME_VARIANTS = ["exact", "upper_punctuated", "suffix_variant", "suffix_dropped"]


def build_customers(crm: CrmData, b2b: B2BOrders, scale: Scale, timeline: Timeline,
                    rng: np.random.Generator, shop_number_base: int = 0) -> Customers:
    """Matched customers for every account with a B2B order, plus web-shop customers (creation set later).

    Business web-shop customers' names end in a running number, from ``shop_number_base + 1`` (earlier shards'
    web-shop customers come before), so names stay unique across shards."""
    accounts = np.unique(np.asarray(b2b.account, dtype=np.int64))
    first_day = np.full(crm.n_accounts, 10**9, dtype=np.int64)
    np.minimum.at(first_day, np.asarray(b2b.account), np.asarray(b2b.day))
    cname, web, kind, nvar = [], [], [], []
    for a in accounts.tolist():
        base = crm.acc_base[a]
        suffix = names.COMPANY_SUFFIXES[crm.acc_suffix[a]]
        v = int(rng.choice(4, p=[0.35, 0.25, 0.25, 0.15]))
        cname.append(_name_variant(base, suffix, v, rng))
        nvar.append(NAME_VARIANTS[v])
        domain = crm.acc_domain[a]
        w = rng.random()
        if w < 0.15:
            web.append(None)
            kind.append("name")
        elif w < 0.45:
            web.append(domain)
            kind.append("domain_exact")
        else:
            web.append(("www." + domain, "https://" + domain, "http://www." + domain + "/", "https://www." + domain)[
                int(rng.integers(4))])
            kind.append("domain_variant")
    created = timeline.start_ts + first_day[accounts] * DAY - rng.integers(DAY, 10 * DAY, len(accounts))
    n_shop = scale.n_webshop_customers
    first = rng.integers(len(names.FIRST_NAMES), size=n_shop)
    last = rng.integers(len(names.LAST_NAMES), size=n_shop)
    biz = rng.random(n_shop) < 0.12
    words = ("Studios", "Supplies", "Workshop", "Consulting", "Trading", "Designs")
    shop_names, shop_web = [], []
    for i in range(n_shop):
        ln = names.LAST_NAMES[last[i]]
        if biz[i]:
            nm = f"{ln} {words[i % len(words)]} {names.COMPANY_SUFFIXES[i % 3]} {shop_number_base + i + 1}"
            shop_names.append(nm)
            slug = "".join(ch for ch in nm.lower() if ch.isalnum())
            shop_web.append(f"www.{slug}-shop.com" if i % 2 else None)
        else:
            shop_names.append(f"{names.FIRST_NAMES[first[i]]} {ln}")
            shop_web.append(None)
    country = np.concatenate([
        crm.acc_country[accounts],
        rng.choice(len(names.COUNTRIES), size=n_shop, p=names.COUNTRY_WEIGHTS / names.COUNTRY_WEIGHTS.sum()),
    ])
    return Customers(
        name=cname + shop_names,
        website=web + shop_web,
        country=country,
        created=np.concatenate([created, np.zeros(n_shop, dtype=np.int64)]),
        account=np.concatenate([accounts, np.full(n_shop, -1, dtype=np.int64)]),
        match_kind=kind + [None] * n_shop,
        name_variant=nvar + [None] * n_shop,
    )


def _quantities(mean: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Units per line with the given mean: mostly single units for consumers, a long tail for bulk buyers."""
    if mean < 2.0:
        return 1 + rng.poisson(mean - 1.0, n)
    return np.maximum(1, np.rint(mean * np.exp(rng.normal(-0.32, 0.8, n)))).astype(np.int64)


def build_orders(truth_revenue_cents: np.ndarray, b2b: B2BOrders, customers: Customers, products: Products,
                 promo: dict[int, str], scale: Scale, timeline: Timeline, rng: np.random.Generator) -> OrderLines:
    """All order lines: B2B orders, then web-shop orders filling each week up to the truth revenue."""
    n_days, n_weeks = timeline.n_days, timeline.n_sim_weeks
    b2b_week = b2b_weekly_cents(b2b, timeline).astype(np.int64)
    target = truth_revenue_cents - b2b_week
    if (target[:N_WEEKS] <= 0).any():
        raise ValueError("web-shop revenue would be negative in some week")
    n_matched = int((customers.account >= 0).sum())
    n_shop = len(customers.account) - n_matched
    cust_w = 1.0 / (1 + np.arange(n_shop)) ** 0.55
    cust_cdf = np.cumsum(rng.permutation(cust_w))
    cust_cdf /= cust_cdf[-1]
    prod_cdf = np.cumsum(products.web_weight)
    prod_cdf /= prod_cdf[-1]
    mean_price = float((products.web_weight * products.price).sum())
    aov = target[:N_WEEKS].mean() / scale.webshop_orders_per_week
    q_mean = max(aov / (1.4 * mean_price), 1.0)
    promo_codes = sorted(set(promo.values()))
    returns_due = np.zeros(n_weeks + 8, dtype=np.int64)
    cols: dict[str, list] = {k: [] for k in ("order", "line", "day", "product", "qty", "price", "discount", "amount",
                                             "promo", "customer")}
    ret: dict[str, list] = {"line": [], "day": []}
    next_order = 0
    lines_before = 0
    for w in range(n_weeks):
        d0, d1 = 7 * w, min(7 * w + 7, n_days)
        goal = int(target[w] + returns_due[w])
        if goal <= 0:
            continue
        code = promo.get(w)
        pct = 0.25 if code and code.startswith("BLACKFRIDAY") else 0.15
        chunks = []
        total = 0
        while total < goal:
            n_o = int(goal / max(aov, 1) * 1.2) + 16
            per = 1 + rng.poisson(0.4, n_o)
            o = np.repeat(np.arange(n_o), per)
            prod = np.searchsorted(prod_cdf, rng.random(len(o)), side="right").clip(0, len(prod_cdf) - 1)
            qty = _quantities(q_mean, len(o), rng)
            price = products.price[prod]
            gross = qty * price
            has_promo = np.zeros(n_o, bool) if code is None else rng.random(n_o) < 0.45
            disc = np.where(has_promo[o], np.rint(gross * pct), 0).astype(np.int64)
            amount = gross - disc
            chunks.append((o + next_order, prod, qty, price, disc, amount, has_promo[o]))
            total += int(amount.sum())
            next_order += n_o
        o = np.concatenate([c[0] for c in chunks])
        prod = np.concatenate([c[1] for c in chunks])
        qty = np.concatenate([c[2] for c in chunks])
        price = np.concatenate([c[3] for c in chunks])
        disc = np.concatenate([c[4] for c in chunks])
        amount = np.concatenate([c[5] for c in chunks])
        promo_flag = np.concatenate([c[6] for c in chunks])
        cum = np.cumsum(amount)
        k = int(np.searchsorted(cum, goal, side="left"))
        keep = slice(0, k + 1)
        o, prod, qty, price, disc, amount, promo_flag = (a[keep] for a in (o, prod, qty, price, disc, amount, promo_flag))
        surplus = int(cum[k] - goal)
        amount[-1] -= surplus
        disc[-1] += surplus
        uo, o_local = np.unique(o, return_inverse=True)
        n_used = len(uo)
        dw = DOW_WEIGHTS[: d1 - d0] / DOW_WEIGHTS[: d1 - d0].sum()
        o_day = d0 + rng.choice(d1 - d0, size=n_used, p=dw)
        o_cust = n_matched + np.searchsorted(cust_cdf, rng.random(n_used), side="right").clip(0, n_shop - 1)
        line_no = np.arange(len(o)) - np.searchsorted(o, o, side="left") + 1
        cols["order"].append(o)
        cols["line"].append(line_no)
        cols["day"].append(o_day[o_local])
        cols["product"].append(prod)
        cols["qty"].append(qty)
        cols["price"].append(price)
        cols["discount"].append(disc)
        cols["amount"].append(amount)
        cols["promo"].append(np.where(promo_flag, promo_codes.index(code) if code else -1, -1))
        cols["customer"].append(o_cust[o_local])
        # returns of this week's lines land at least a week later
        returned = np.nonzero(rng.random(n_used) < RETURN_RATE)[0]
        first_line = np.searchsorted(o_local, returned, side="left")
        rday = o_day[returned] + rng.integers(7, 41, len(returned))
        ok = rday < n_days
        for li, rd in zip(first_line[ok].tolist(), rday[ok].tolist()):
            ret["line"].append(lines_before + li)
            ret["day"].append(rd)
            returns_due[rd // 7] += int(amount[li])
        lines_before += len(o)

    web = {k: np.concatenate(v) for k, v in cols.items()}
    n_web_lines = len(web["order"])
    # B2B lines
    b_rows = [(oi, ln, b2b.day[oi], p, q, pr, d, a) for oi, ls in enumerate(b2b.lines)
              for ln, (p, q, pr, d, a) in enumerate(ls, start=1)]
    acc_to_cust = {int(a): i for i, a in enumerate(customers.account[:n_matched].tolist())}
    b_order = np.array([r[0] for r in b_rows], dtype=np.int64) + next_order
    b = {
        "order": b_order,
        "line": np.array([r[1] for r in b_rows], dtype=np.int64),
        "day": np.array([r[2] for r in b_rows], dtype=np.int64),
        "product": np.array([r[3] for r in b_rows], dtype=np.int64),
        "qty": np.array([r[4] for r in b_rows], dtype=np.int64),
        "price": np.array([r[5] for r in b_rows], dtype=np.int64),
        "discount": np.array([r[6] for r in b_rows], dtype=np.int64),
        "amount": np.array([r[7] for r in b_rows], dtype=np.int64),
        "promo": np.full(len(b_rows), -1, dtype=np.int64),
        "customer": np.array([acc_to_cust[b2b.account[r[0]]] for r in b_rows], dtype=np.int64),
    }
    b_channel = np.array([b2b.channel[r[0]] for r in b_rows], dtype=np.int64)
    sales = {k: np.concatenate([web[k], b[k]]) for k in web}
    channel = np.concatenate([np.zeros(n_web_lines, dtype=np.int64), b_channel])

    # customer creation: web-shop customers shortly before their first order
    first_day = np.full(len(customers.account), n_days + 400, dtype=np.int64)
    np.minimum.at(first_day, sales["customer"], sales["day"])
    shop = np.arange(n_matched, len(customers.account))
    never = first_day[shop] > n_days
    fd = np.where(never, rng.integers(0, n_days, len(shop)), first_day[shop])
    customers.created[shop] = timeline.start_ts + fd * DAY - rng.integers(600, 2 * DAY, len(shop))
    rank = np.empty(len(customers.account), dtype=np.int64)
    rank[np.lexsort((np.arange(len(customers.account)), customers.created))] = np.arange(len(customers.account))
    customers.rank = rank

    # final sales order numbers by (day, internal order)
    internal = sales["order"]
    uniq, inv = np.unique(internal, return_inverse=True)
    first_day_order = np.full(len(uniq), n_days + 1, dtype=np.int64)
    np.minimum.at(first_day_order, inv, sales["day"])
    o_rank = np.empty(len(uniq), dtype=np.int64)
    o_rank[np.lexsort((uniq, first_day_order))] = np.arange(len(uniq))
    sale_no = o_rank[inv] + 1

    # return lines copy their original line
    r_src = np.asarray(ret["line"], dtype=np.int64)
    r_day = np.asarray(ret["day"], dtype=np.int64)
    r_order = np.argsort(np.lexsort((r_src, r_day)))
    r_no = r_order + 1
    n_ret = len(r_src)

    all_day = np.concatenate([sales["day"], r_day])
    is_ret = np.concatenate([np.zeros(len(sale_no), bool), np.ones(n_ret, bool)])
    number = np.concatenate([sale_no, r_no])
    line = np.concatenate([sales["line"], np.ones(n_ret, dtype=np.int64)])
    order = np.lexsort((line, number, is_ret, all_day))

    def pick(key: str) -> np.ndarray:
        return np.concatenate([sales[key], sales[key][r_src]])[order]

    return OrderLines(
        order_no=number[order],
        is_return=is_ret[order],
        line=line[order],
        day=all_day[order],
        customer=rank[pick("customer")] + 1,
        product=pick("product"),
        qty=pick("qty"),
        price=pick("price"),
        discount=pick("discount"),
        amount=pick("amount"),
        original_no=np.concatenate([np.full(len(sale_no), -1, dtype=np.int64), sale_no[r_src]])[order],
        promo=np.concatenate([sales["promo"], np.full(n_ret, -1, dtype=np.int64)])[order],
        channel=np.concatenate([channel, channel[r_src]])[order],
        promo_codes=promo_codes,
    )


def weekly_net_cents(orders: OrderLines, n_weeks: int) -> np.ndarray:
    signed = np.where(orders.is_return, -orders.amount, orders.amount).astype(np.float64)
    return np.rint(np.bincount(orders.day // 7, signed, minlength=n_weeks)).astype(np.int64)


def format_orders(orders: OrderLines, timeline: Timeline, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    day0 = timeline.start_epoch_day
    ret = orders.is_return[lo:hi]
    order_id = pc.if_else(pa.array(ret), csvio.fmt_id("RT-", ids.return_order + orders.order_no[lo:hi], 8),
                          csvio.fmt_id("SO-", ids.sale_order + orders.order_no[lo:hi], 8))
    orig = orders.original_no[lo:hi]
    return csvio.string_table({
        "order_id": order_id,
        "line_number": csvio.fmt_int(orders.line[lo:hi]),
        "order_date": csvio.fmt_date(day0 + orders.day[lo:hi]),
        "transaction_type": csvio.fmt_choice(["sale", "return"], ret.astype(np.int32)),
        "customer_id": csvio.fmt_id("CUST-", ids.customer + orders.customer[lo:hi], 7),
        "product_id": csvio.fmt_id("SKU-", orders.product[lo:hi] + 10001, 5),
        "quantity": csvio.fmt_int(orders.qty[lo:hi]),
        "unit_price": csvio.fmt_scaled(orders.price[lo:hi], 2),
        "amount": csvio.fmt_scaled(orders.amount[lo:hi], 2),
        "discount_amount": csvio.fmt_scaled(orders.discount[lo:hi], 2),
        "currency": csvio.fmt_choice(["USD"], np.zeros(hi - lo, dtype=np.int32)),
        "original_order_id": csvio.fmt_id("SO-", ids.sale_order + np.maximum(orig, 0), 8, null_mask=orig < 0),
        "promo_code": csvio.fmt_choice(orders.promo_codes or [""], orders.promo[lo:hi]),
        "sales_channel": csvio.fmt_choice(["web", "direct", "partner"], orders.channel[lo:hi]),
    })


def format_customers(customers: Customers, lo: int, hi: int, ids: IdBase = NO_IDS) -> pa.Table:
    order = np.argsort(customers.rank)[lo:hi]
    return csvio.string_table({
        "customer_id": csvio.fmt_id("CUST-", ids.customer + np.arange(lo, hi) + 1, 7),
        "customer_name": csvio.fmt_str([customers.name[i] for i in order.tolist()]),
        "website": csvio.fmt_str([customers.website[i] for i in order.tolist()]),
        "country": csvio.fmt_choice(names.COUNTRIES, customers.country[order]),
        "currency": csvio.fmt_choice(["USD"], np.zeros(len(order), dtype=np.int32)),
        "created_at": csvio.fmt_ts(customers.created[order]),
    })


def format_products(products: Products) -> pa.Table:
    n = len(products.name)
    return csvio.string_table({
        "product_id": csvio.fmt_id("SKU-", np.arange(n) + 10001, 5),
        "product_name": csvio.fmt_str(products.name),
        "category": csvio.fmt_str(products.category),
        "unit_price": csvio.fmt_scaled(products.price, 2),
        "unit_cost": csvio.fmt_scaled(products.cost, 2),
        "currency": csvio.fmt_choice(["USD"], np.zeros(n, dtype=np.int32)),
        "is_active": csvio.fmt_choice(["false", "true"], products.active.astype(np.int32)),
    })


def inventory_table(products: Products, timeline: Timeline, rng: np.random.Generator) -> pa.Table:
    """Month-end snapshots per product and location, typed for Parquet."""
    month_idx, firsts = timeline.month_index()
    ends = []
    for f in firsts:
        nxt = (f.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        end = nxt - dt.timedelta(days=1)
        if timeline.start_date <= end <= timeline.end_date:
            ends.append(end)
    n_p, n_l = len(products.name), len(LOCATIONS)
    snap = np.repeat(np.arange(len(ends)), n_p * n_l)
    prod = np.tile(np.repeat(np.arange(n_p), n_l), len(ends))
    loc = np.tile(np.arange(n_l), len(ends) * n_p)
    lam = 5 + 400 * products.web_weight[prod] * n_p / 10 + np.where(prod < len(B2B_PRODUCTS), 0, 10)
    qty = rng.poisson(lam)
    value_cents = qty * products.cost[prod]
    return pa.table({
        "snapshot_date": pa.array([ends[s] for s in snap.tolist()], type=pa.date32()),
        "product_id": csvio.fmt_id("SKU-", prod + 10001, 5),
        "location_id": csvio.fmt_choice(list(LOCATIONS), loc),
        "quantity_on_hand": pa.array(qty.astype(np.int64)),
        "inventory_value": pa.array([decimal.Decimal(int(v)).scaleb(-2) for v in value_cents.tolist()],
                                    type=pa.decimal128(18, 2)),
    })


@dataclass
class FinanceLines:
    table: pa.Table
    missing: dict
    platform_month_usd: dict  # (month iso, platform) -> cents booked by the platforms


def build_finance(ads: AdsData, scale: Scale, timeline: Timeline, rng: np.random.Generator) -> FinanceLines:
    """Monthly GL lines: platform spend in USD per finance channel (one month x platform left out) + offline."""
    month_idx, firsts = timeline.month_index()
    n_m = len(firsts)
    groups: dict[tuple, np.ndarray] = {}
    for j, c in enumerate(ads.campaigns):
        key = (c.platform, c.campaign_type if c.platform == "google" else None)
        usd_by_month = np.bincount(month_idx, ads.usd[:, j], minlength=n_m)
        groups[key] = groups.get(key, 0) + usd_by_month
    platform_month: dict[tuple, int] = {}
    for (platform, _), usd in groups.items():
        for m in range(n_m):
            k = (firsts[m].isoformat(), platform)
            platform_month[k] = platform_month.get(k, 0) + int(round(usd[m] * 100))
    missing_month = int(rng.integers(8, n_m - 8))
    missing_platform = "linkedin"
    rows = []
    for m in range(n_m):
        period = firsts[m]
        for key, usd in groups.items():
            channel, vendor, gl = FINANCE_PLATFORM_LINES[key]
            cents = int(round(usd[m] * 100))
            if cents <= 0 or (m == missing_month and key[0] == missing_platform):
                continue
            label = period.strftime("%Y-%m")
            if rng.random() < 0.25:
                first = int(cents * rng.uniform(0.9, 0.97))
                rows.append((period, channel, vendor, gl, first, f"{vendor} invoice {label}"))
                rows.append((period, channel, vendor, gl, cents - first, f"{vendor} true-up {label}"))
            else:
                rows.append((period, channel, vendor, gl, cents, f"{vendor} invoice {label}"))
        frac = (month_idx == m).sum() / 30.4
        for channel, vendors, gl, base in OFFLINE_LINES:
            if rng.random() < 0.15:
                continue
            cents = int(round(base * scale.volume * frac * np.exp(rng.normal(0, 0.35)) * 100))
            vendor = vendors[int(rng.integers(len(vendors)))]
            rows.append((period, channel, vendor, gl, cents, f"{channel} - {vendor} {period.strftime('%Y-%m')}"))
    n = len(rows)
    table = csvio.string_table({
        "journal_line_id": csvio.fmt_id("JL-", np.arange(n) + 1, 7),
        "period_month": csvio.fmt_str([r[0].isoformat() for r in rows]),
        "channel": csvio.fmt_str([r[1] for r in rows]),
        "vendor": csvio.fmt_str([r[2] for r in rows]),
        "gl_account": csvio.fmt_str([r[3] for r in rows]),
        "amount": csvio.fmt_scaled(np.array([r[4] for r in rows], dtype=np.int64), 2),
        "currency": csvio.fmt_choice(["USD"], np.zeros(n, dtype=np.int32)),
        "memo": csvio.fmt_str([r[5] for r in rows]),
    })
    missing_cents = platform_month[(firsts[missing_month].isoformat(), missing_platform)]
    missing = {
        "kind": "finance_missing_platform_spend",
        "period_month": firsts[missing_month].isoformat(),
        "platform": missing_platform,
        "finance_channel": "Paid Social",
        "vendor": "LinkedIn",
        "platform_spend_usd": missing_cents / 100,
        "finance_amount_usd": 0.0,
        "fx_to_usd": FX_TO_USD,
    }
    return FinanceLines(table, missing, platform_month)
