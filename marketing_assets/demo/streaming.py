"""Streaming generation for the largest scales: the company is simulated in shards of CRM accounts.

A shard is a smaller company of about ``Scale.shard_accounts`` accounts, with its share of anonymous
visitors, web-shop customers and web-shop orders, simulated by the same code as a one-shot run but with its
own random streams (``shard_rng``). Its rows are appended to the landing files, which are cut into
``rows_per_file`` parts as they fill (defects are planted per part, as in a one-shot run), and the shard is
dropped before the next one starts. Ids continue across shards (``IdBase``); company names, domains and
gmail addresses stay unique across shards (``SharedNames``).

What couples the shards is small and kept in memory: ad spend and the MMM truth, B2B revenue per week and
per month (the revenue truth and the planted ERP-vs-CRM discrepancy need every shard's won deals), the
product catalogue, id counters and the planted-defect log (0.12 % of the rows). Two passes:

1. per shard: CRM and web, written; its B2B orders and the names of its accounts go to a temporary folder;
2. with the revenue truth known, per shard: ERP customers and orders, the web-shop part filling the shard's
   share of every week's revenue, so weekly ERP net revenue still equals the MMM truth to the cent.

Peak memory is one shard's simulation plus at most one part of each open table's formatted rows, plus the
small company-wide state above (it grows with the company, by well under 1 KB per account: gmail addresses,
defect log, per-shard weekly arrays). Measured: 1.35 GB peak RSS for ``xlarge`` (40 shards of 50,000
accounts, 500,000-row parts, 82.7M rows), against 2.9 GB for the one-shot ``large`` (16.6M rows).
"""

from __future__ import annotations

import csv
import dataclasses
import pickle
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import ads as ads_mod
from . import crm as crm_mod
from . import defects, erp, truth, web
from .channels import PAID_WEIGHT, SOURCES, WEB_SOURCES, SourceSampler
from .config import N_WEEKS, IdBase, Scale, Timeline, child_rng, shard_rng
from .crm import DAY
from .generator import (
    ACCOUNT_MATCHES_HEADER,
    DUPLICATE_CONTACTS_HEADER,
    MINIMAL_TABLES,
    TRUTH_DIR,
    WEB_PAID_WEIGHT,
    LandingWriter,
    _account_match_rows,
    _duplicate_contact_rows,
    _lift_table,
    _manifest,
    _write_company_truth,
    _write_defect_truth,
    _write_json,
    crm_counts,
)
from .landing import LAYOUTS, TableLayout

FORMAT_ROWS = 200_000
"""Rows formatted at a time before they join a file's buffer."""


class TableStream:
    """One landing table written incrementally: rows are buffered until a part is full, then planted and written."""

    def __init__(self, writer: LandingWriter, layout: TableLayout):
        self.writer, self.layout = writer, layout
        self.skip = writer.minimal and layout.table_name not in MINIMAL_TABLES
        self.rng = writer.defect_rng(layout)
        self.keys = defects.KeyFactory(layout)
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.parts = 0

    def append(self, n_rows: int, formatter) -> None:
        """Append rows ``0 .. n_rows-1`` of ``formatter(lo, hi)``, formatting a slice at a time."""
        if self.skip:
            return
        for lo in range(0, n_rows, FORMAT_ROWS):
            table = formatter(lo, min(n_rows, lo + FORMAT_ROWS))
            self.buffer.append(table)
            self.buffered += table.num_rows
            per = self.writer.rows_per_file
            while per and self.buffered > per:  # strictly more: the last part is never empty
                rows = pa.concat_tables(self.buffer)
                self.parts += 1
                self.writer.write_file(self.layout, self.parts, rows.slice(0, per), self.rng, self.keys)
                rest = rows.slice(per)
                self.buffer, self.buffered = [rest], rest.num_rows
                del rows

    def close(self) -> None:
        if self.skip or not self.buffer:
            return
        part = self.parts + 1 if self.parts else 0
        self.writer.write_file(self.layout, part, pa.concat_tables(self.buffer), self.rng, self.keys)
        self.buffer, self.buffered = [], 0


@dataclass
class AccountNames:
    """What the ERP pass needs of a shard's CRM accounts (duck-types ``CrmData`` for ``erp.build_customers``)."""

    acc_base: list[str]
    acc_suffix: np.ndarray
    acc_domain: list[str]
    acc_name: list[str]
    acc_country: np.ndarray

    @property
    def n_accounts(self) -> int:
        return len(self.acc_base)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def _conversion_counts(sessions: web.WebData, tl: Timeline) -> np.ndarray:
    """Conversions and sessions in the 28-day baseline and on the day of the planted conversion-rate drop."""
    day = (sessions.ts - tl.start_ts) // DAY
    target = tl.n_days - 5
    base = (day >= target - 28) & (day < target)
    on_day = day == target
    return np.array([sessions.converted[base].sum(), base.sum(), sessions.converted[on_day].sum(), on_day.sum()],
                    dtype=np.int64)


def _conversion_drop(anomaly: dict, counts: np.ndarray) -> dict:
    """A shard's conversion-drop anomaly with the company-wide rates."""
    base_conv, base_n, day_conv, day_n = (int(x) for x in counts)
    return {**anomaly, "normal_conversion_rate": round(base_conv / max(base_n, 1), 5),
            "conversion_rate": round(day_conv / max(day_n, 1), 5), "sessions": day_n, "conversions": day_conv}


class _TruthCsv:
    """A truth CSV written row batch by row batch."""

    def __init__(self, path: Path, header: list[str], enabled: bool):
        self.fh = None
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = path.open("w", newline="", encoding="utf-8")
            self.w = csv.writer(self.fh, lineterminator="\n")
            self.w.writerow(header)

    def rows(self, rows) -> None:
        if self.fh:
            self.w.writerows(rows)

    def close(self) -> None:
        if self.fh:
            self.fh.close()


def generate_sharded(root: Path, sc: Scale, seed: int, tl: Timeline, minimal: bool) -> dict:
    """Generate ``sc`` into ``root`` shard by shard (see the module docstring) and return the manifest."""
    n_shards = -(-sc.n_accounts // sc.shard_accounts)
    shard_scales = [
        dataclasses.replace(sc, n_accounts=a, anon_visitors=v, n_webshop_customers=c, webshop_orders_per_week=o)
        for a, v, c, o in zip(_split(sc.n_accounts, n_shards), _split(sc.anon_visitors, n_shards),
                              _split(sc.n_webshop_customers, n_shards), _split(sc.webshop_orders_per_week, n_shards))
    ]
    ads = ads_mod.simulate(tl, sc, child_rng(seed, 1))
    mmm = truth.build_media(tl, ads.channel_weekly_usd(tl))
    crm_sampler = SourceSampler(SOURCES, ads, tl, PAID_WEIGHT)
    web_sampler = SourceSampler(WEB_SOURCES, ads, tl, WEB_PAID_WEIGHT)
    writer = LandingWriter(root, sc.rows_per_file, seed, minimal=minimal)
    streams = {name: TableStream(writer, LAYOUTS[name]) for name in (
        "web_sessions", "crm_accounts", "crm_contacts", "crm_marketing_touchpoints", "crm_sales_touchpoints",
        "crm_opportunities", "erp_customers", "erp_orders")}
    tdir = root / TRUTH_DIR
    dup_truth = _TruthCsv(tdir / "duplicate_contacts.csv", DUPLICATE_CONTACTS_HEADER, not minimal)
    match_truth = _TruthCsv(tdir / "account_matches.csv", ACCOUNT_MATCHES_HEADER, not minimal)

    # ---------------------------------------------------------------- pass 1: CRM and web, shard by shard
    shared = crm_mod.SharedNames()
    ids = IdBase()
    bases: list[IdBase] = []
    counts: dict[str, int] = {}
    touch = np.zeros(3, dtype=np.int64)
    conv = np.zeros(4, dtype=np.int64)
    web_anomaly: dict = {}
    won: erp.WonByMonth | None = None
    b2b_week = []
    tmp = tempfile.TemporaryDirectory(prefix="marketing-demo-shards-")
    try:
        for k, sub in enumerate(shard_scales):
            bases.append(ids)
            crm = crm_mod.simulate(tl, sub, crm_sampler, shard_rng(seed, 2, k), shared)
            sessions = web.simulate(tl, sub, crm, web_sampler, shard_rng(seed, 3, k))
            streams["web_sessions"].append(len(sessions.ts), partial(web.format_sessions, sessions, ids=ids))
            streams["crm_accounts"].append(crm.n_accounts, partial(crm_mod.format_accounts, crm, ids=ids))
            streams["crm_contacts"].append(len(crm.rec_person), partial(crm_mod.format_contacts, crm, ids=ids))
            streams["crm_marketing_touchpoints"].append(
                len(crm.mt_ts), partial(crm_mod.format_marketing_touchpoints, crm, ids=ids))
            streams["crm_sales_touchpoints"].append(len(crm.st_ts), partial(crm_mod.format_sales_touchpoints, crm, ids=ids))
            streams["crm_opportunities"].append(len(crm.opp_created), partial(crm_mod.format_opportunities, crm, ids=ids))
            dup_truth.rows(_duplicate_contact_rows(crm, ids))

            b2b = erp.b2b_orders(crm, tl, shard_rng(seed, 4, k))
            shard_won = erp.won_by_month(b2b, tl, ids.account)
            if won is None:
                won = shard_won
            else:
                won.merge(shard_won)
            b2b_week.append(erp.b2b_weekly_cents(b2b, tl).astype(np.int64))
            names = AccountNames(crm.acc_base, crm.acc_suffix, crm.acc_domain, crm.acc_name, crm.acc_country)
            with open(Path(tmp.name) / f"shard_{k:05d}.pkl", "wb") as fh:
                pickle.dump((b2b, names), fh, protocol=pickle.HIGHEST_PROTOCOL)

            for key, value in crm_counts(crm).items():
                counts[key] = counts.get(key, 0) + value
            touch += (len(crm.mt_ts), len(crm.st_ts), len(sessions.ts))
            conv += _conversion_counts(sessions, tl)
            web_anomaly = web_anomaly or sessions.anomalies[0]
            ids = dataclasses.replace(
                ids, account=ids.account + crm.n_accounts, contact=ids.contact + len(crm.rec_person),
                marketing_touchpoint=ids.marketing_touchpoint + len(crm.mt_ts),
                sales_touchpoint=ids.sales_touchpoint + len(crm.st_ts),
                opportunity=ids.opportunity + len(crm.opp_created), session=ids.session + len(sessions.ts))
            del crm, sessions, b2b, names
        dup_truth.close()

        # ------------------------------------------------------------ company-wide: discrepancy and revenue truth
        extra, erp_discrepancy = erp.plant_discrepancy(won, tl, child_rng(seed, 4))
        host = int(np.searchsorted([b.account for b in bases], extra[1], side="right")) - 1
        extra = (extra[0], extra[1] - bases[host].account, *extra[2:])
        b2b_week[host] = b2b_week[host] + np.bincount([extra[0] // 7], [sum(x[4] for x in extra[2])],
                                                      minlength=tl.n_sim_weeks).astype(np.int64)
        b2b_total = np.sum(b2b_week, axis=0)
        truth.finalize(mmm, b2b_total.astype(np.float64), sc, child_rng(seed, 5))
        webshop = mmm.revenue_cents - b2b_total
        shop_customers = np.array([s.n_webshop_customers for s in shard_scales], dtype=np.int64)
        webshop_share = webshop[None, :] * shop_customers[:, None] // shop_customers.sum()
        webshop_share[-1] = webshop - webshop_share[:-1].sum(axis=0)
        products = erp.build_products(sc, child_rng(seed, 6))

        # ------------------------------------------------------------ pass 2: ERP customers and orders, shard by shard
        net = np.zeros(tl.n_sim_weeks, dtype=np.int64)
        customer = sale = ret = shop_number = 0
        for k, sub in enumerate(shard_scales):
            with open(Path(tmp.name) / f"shard_{k:05d}.pkl", "rb") as fh:
                b2b, names = pickle.load(fh)
            if k == host:
                erp.add_order(b2b, extra)
            ids = dataclasses.replace(bases[k], customer=customer, sale_order=sale, return_order=ret)
            customers = erp.build_customers(names, b2b, sub, tl, shard_rng(seed, 7, k), shop_number)
            orders = erp.build_orders(b2b_week[k] + webshop_share[k], b2b, customers, products, mmm.promo, sub, tl,
                                      shard_rng(seed, 8, k))
            net += erp.weekly_net_cents(orders, tl.n_sim_weeks)
            streams["erp_customers"].append(len(customers.account), partial(erp.format_customers, customers, ids=ids))
            streams["erp_orders"].append(len(orders.day), partial(erp.format_orders, orders, tl, ids=ids))
            match_truth.rows(_account_match_rows(names, customers, ids))
            customer += len(customers.account)
            shop_number += sub.n_webshop_customers
            sale += int(orders.order_no[~orders.is_return].max(initial=0))
            ret += int(orders.order_no[orders.is_return].max(initial=0))
            del b2b, names, customers, orders
        match_truth.close()
    finally:
        tmp.cleanup()
    if not np.array_equal(net[:N_WEEKS], mmm.revenue_cents[:N_WEEKS]):
        raise AssertionError("weekly ERP net revenue does not reproduce the MMM truth")
    for stream in streams.values():
        stream.close()

    # ---------------------------------------------------------------- company-wide tables (small, in memory)
    ads_tables = ads_mod.landing_tables(ads, tl)
    for name in ("ads_google", "ads_meta", "ads_linkedin"):
        t = ads_tables[name]
        writer.write(LAYOUTS[name], t.num_rows, lambda lo, hi, t=t: t.slice(lo, hi - lo))
    prod_table = erp.format_products(products)
    writer.write(LAYOUTS["erp_products"], prod_table.num_rows, lambda lo, hi: prod_table.slice(lo, hi - lo))
    writer.write_parquet(LAYOUTS["erp_inventory"], erp.inventory_table(products, tl, child_rng(seed, 10)))
    finance = erp.build_finance(ads, sc, tl, child_rng(seed, 9))
    fin = finance.table
    writer.write(LAYOUTS["finance_marketing_spend"], fin.num_rows, lambda lo, hi: fin.slice(lo, hi - lo))
    lift = truth.lift_tests(mmm, child_rng(seed, 11))
    exp_table = _lift_table(lift)
    writer.write(LAYOUTS["experiments"], exp_table.num_rows, lambda lo, hi: exp_table.slice(lo, hi - lo))

    # ---------------------------------------------------------------- ground truth and manifest
    if not minimal:
        _write_defect_truth(tdir, writer.log)
        _write_company_truth(tdir, mmm, tl, b2b_total, lift, erp_discrepancy, finance.missing,
                             ads.anomalies + [_conversion_drop(web_anomaly, conv)])
    manifest = _manifest(seed, sc.name, minimal, tl, writer, counts,
                         (int(touch[0]), int(touch[1]), 0 if minimal else int(touch[2])))
    manifest["shards"] = n_shards
    _write_json(tdir / "manifest.json", manifest)
    return manifest
