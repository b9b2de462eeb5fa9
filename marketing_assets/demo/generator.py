"""Orchestration: simulate every system, write the landing zone and the planted ground truth.

``generate()`` is deterministic: the same seed, scale and end date give byte-identical files. Nothing
depends on the wall clock except the default end date (today, UTC) when none is given.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import ads as ads_mod
from . import crm as crm_mod
from . import csvio, defects, erp, truth, web
from .channels import PAID_WEIGHT, SOURCES, WEB_SOURCES, SourceSampler
from .config import FX_TO_USD, GENERATOR_VERSION, N_WEEKS, NO_IDS, SCALES, IdBase, Timeline, child_rng
from .landing import LAYOUTS, DefectLog, TableLayout

TRUTH_DIR = "_truth"
WEB_PAID_WEIGHT = 0.35
# The four CRM tables attribution needs; ``minimal`` mode writes only these, with their required columns.
MINIMAL_TABLES = ("crm_contacts", "crm_marketing_touchpoints", "crm_sales_touchpoints", "crm_opportunities")


@dataclass
class LandingWriter:
    """Writes one table as one or several files, planting defects per file and recording row counts."""

    root: Path
    rows_per_file: int | None
    seed: int
    minimal: bool = False
    log: DefectLog = field(default_factory=DefectLog)
    files: dict[str, int] = field(default_factory=dict)

    def write(self, layout: TableLayout, n_rows: int, formatter: Callable[[int, int], pa.Table]) -> None:
        if self.minimal and layout.table_name not in MINIMAL_TABLES:
            return
        rng = self.defect_rng(layout)
        keys = defects.KeyFactory(layout)
        per = self.rows_per_file or max(n_rows, 1)
        n_parts = max(1, -(-n_rows // per))
        for part in range(n_parts):
            lo, hi = part * per, min(n_rows, (part + 1) * per)
            self.write_file(layout, part + 1 if n_parts > 1 else 0, formatter(lo, hi), rng, keys)

    def write_file(self, layout: TableLayout, part: int, table: pa.Table, rng: np.random.Generator,
                   keys: defects.KeyFactory) -> None:
        """Plant this file's defects and write it (``part`` 0 = the table's only file, else its part number)."""
        suffix = f"_part_{part:03d}" if part else ""
        rel = f"{layout.stem}{suffix}.{layout.extension}"
        n_bad, n_dup = defects.counts_for(layout, table.num_rows)
        table = defects.plant(layout, table, n_bad, n_dup, rng, keys, rel, self.log)
        if self.minimal:
            table = table.select([c.header for c in layout.columns if c.key or c.required])
        csvio.write_csv(self.root / rel, table)
        self.files[rel] = table.num_rows

    def defect_rng(self, layout: TableLayout) -> np.random.Generator:
        return child_rng(self.seed, 100 + list(LAYOUTS).index(layout.table_name))

    def write_parquet(self, layout: TableLayout, table: pa.Table) -> None:
        if self.minimal and layout.table_name not in MINIMAL_TABLES:
            return
        rel = f"{layout.stem}.parquet"
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
        self.files[rel] = table.num_rows


def _clear(root: Path) -> None:
    """Remove landing files of the tables this generator writes, and previous truth.

    Only a previous demo landing zone (one with a truth manifest) is cleared: a folder holding
    anyone's real exports is never touched.
    """
    has_files = root.is_dir() and any(p.is_file() for p in root.rglob("*"))
    if has_files and not (root / TRUTH_DIR / "manifest.json").is_file():
        raise FileExistsError(
            f"{root} already holds files and is not a demo landing zone (no {TRUTH_DIR}/manifest.json); "
            "choose an empty folder for demo data"
        )
    for layout in LAYOUTS.values():
        for path in root.glob(layout.stem + "*"):
            if path.is_file():
                path.unlink()
    shutil.rmtree(root / TRUTH_DIR, ignore_errors=True)


def _write_truth_csv(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _resolve_end_date(end_date) -> dt.date:
    if end_date is None:
        return dt.datetime.now(dt.timezone.utc).date()
    if isinstance(end_date, dt.datetime):
        return end_date.date()
    if isinstance(end_date, dt.date):
        return end_date
    return dt.date.fromisoformat(str(end_date))


def prepare(out_dir, end_date=None) -> tuple[Path, Timeline]:
    """The emptied landing folder ``out_dir`` and the timeline ending ``end_date`` (default today, UTC)."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    _clear(root)
    return root, Timeline(_resolve_end_date(end_date))


def generate(out_dir, scale: str = "default", seed: int = 42, end_date=None, minimal: bool = False) -> dict:
    """Generate the demo landing zone into ``out_dir`` and return the manifest.

    ``scale`` is ``small``, ``default``, ``large`` or ``xlarge``; ``end_date`` (date or ``YYYY-MM-DD``) defaults to today
    in UTC. Ground truth goes to ``out_dir/_truth/``. ``minimal`` writes only the four CRM tables attribution
    needs, with their required columns only (the smallest export the contract accepts); its truth is the
    manifest alone, since nothing in it can be deduplicated or matched. In memory: a scale with ``shard_accounts``
    (``xlarge``) is generated by :func:`marketing_assets.demo.generate` in streaming shards instead.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    sc = SCALES[scale]
    if sc.shard_accounts:
        raise ValueError(f"scale {scale!r} is generated in streaming shards: use marketing_assets.demo.generate")
    root, tl = prepare(out_dir, end_date)

    # ------------------------------------------------------------------ simulate
    ads = ads_mod.simulate(tl, sc, child_rng(seed, 1))
    mmm = truth.build_media(tl, ads.channel_weekly_usd(tl))
    crm = crm_mod.simulate(tl, sc, SourceSampler(SOURCES, ads, tl, PAID_WEIGHT), child_rng(seed, 2))
    sessions = web.simulate(tl, sc, crm, SourceSampler(WEB_SOURCES, ads, tl, WEB_PAID_WEIGHT), child_rng(seed, 3))
    b2b, erp_discrepancy = erp.build_b2b_orders(crm, tl, child_rng(seed, 4))
    truth.finalize(mmm, erp.b2b_weekly_cents(b2b, tl), sc, child_rng(seed, 5))
    products = erp.build_products(sc, child_rng(seed, 6))
    customers = erp.build_customers(crm, b2b, sc, tl, child_rng(seed, 7))
    orders = erp.build_orders(mmm.revenue_cents, b2b, customers, products, mmm.promo, sc, tl, child_rng(seed, 8))
    net = erp.weekly_net_cents(orders, tl.n_sim_weeks)
    if not np.array_equal(net[:N_WEEKS], mmm.revenue_cents[:N_WEEKS]):
        raise AssertionError("weekly ERP net revenue does not reproduce the MMM truth")
    finance = erp.build_finance(ads, sc, tl, child_rng(seed, 9))
    inventory = erp.inventory_table(products, tl, child_rng(seed, 10))
    lift = truth.lift_tests(mmm, child_rng(seed, 11))

    # ------------------------------------------------------------------ landing files
    writer = LandingWriter(root, sc.rows_per_file, seed, minimal=minimal)
    ads_tables = ads_mod.landing_tables(ads, tl)
    for name in ("ads_google", "ads_meta", "ads_linkedin"):
        t = ads_tables[name]
        writer.write(LAYOUTS[name], t.num_rows, lambda lo, hi, t=t: t.slice(lo, hi - lo))
    writer.write(LAYOUTS["web_sessions"], len(sessions.ts), lambda lo, hi: web.format_sessions(sessions, lo, hi))
    writer.write(LAYOUTS["crm_accounts"], crm.n_accounts, lambda lo, hi: crm_mod.format_accounts(crm, lo, hi))
    writer.write(LAYOUTS["crm_contacts"], len(crm.rec_person), lambda lo, hi: crm_mod.format_contacts(crm, lo, hi))
    writer.write(LAYOUTS["crm_marketing_touchpoints"], len(crm.mt_ts),
                 lambda lo, hi: crm_mod.format_marketing_touchpoints(crm, lo, hi))
    writer.write(LAYOUTS["crm_sales_touchpoints"], len(crm.st_ts),
                 lambda lo, hi: crm_mod.format_sales_touchpoints(crm, lo, hi))
    writer.write(LAYOUTS["crm_opportunities"], len(crm.opp_created),
                 lambda lo, hi: crm_mod.format_opportunities(crm, lo, hi))
    writer.write(LAYOUTS["erp_customers"], len(customers.account), lambda lo, hi: erp.format_customers(customers, lo, hi))
    prod_table = erp.format_products(products)
    writer.write(LAYOUTS["erp_products"], prod_table.num_rows, lambda lo, hi: prod_table.slice(lo, hi - lo))
    writer.write(LAYOUTS["erp_orders"], len(orders.day), lambda lo, hi: erp.format_orders(orders, tl, lo, hi))
    writer.write_parquet(LAYOUTS["erp_inventory"], inventory)
    fin = finance.table
    writer.write(LAYOUTS["finance_marketing_spend"], fin.num_rows, lambda lo, hi: fin.slice(lo, hi - lo))
    exp_table = _lift_table(lift)
    writer.write(LAYOUTS["experiments"], exp_table.num_rows, lambda lo, hi: exp_table.slice(lo, hi - lo))

    # ------------------------------------------------------------------ ground truth
    tdir = root / TRUTH_DIR
    if not minimal:  # planted truth is about columns and systems a minimal export lacks
        _write_defect_truth(tdir, writer.log)
        _write_truth_csv(tdir / "duplicate_contacts.csv", DUPLICATE_CONTACTS_HEADER, _duplicate_contact_rows(crm))
        _write_truth_csv(tdir / "account_matches.csv", ACCOUNT_MATCHES_HEADER, _account_match_rows(crm, customers))
        _write_company_truth(tdir, mmm, tl, erp.b2b_weekly_cents(b2b, tl), lift, erp_discrepancy, finance.missing,
                             ads.anomalies + sessions.anomalies)
    manifest = _manifest(seed, scale, minimal, tl, writer, crm_counts(crm),
                         (len(crm.mt_ts), len(crm.st_ts), 0 if minimal else len(sessions.ts)))
    _write_json(tdir / "manifest.json", manifest)
    return manifest


def _lift_table(lift: list[dict]) -> pa.Table:
    """The experiments landing table of the planted lift tests."""
    return csvio.string_table({
        "test_id": csvio.fmt_str([t["test_id"] for t in lift]),
        "channel": csvio.fmt_str([t["channel"] for t in lift]),
        "start_date": csvio.fmt_str([t["start_date"] for t in lift]),
        "end_date": csvio.fmt_str([t["end_date"] for t in lift]),
        "lift": csvio.fmt_fixed(np.array([t["lift"] for t in lift]), 2),
        "lift_se": csvio.fmt_fixed(np.array([t["lift_se"] for t in lift]), 2),
        "metric": csvio.fmt_str([t["metric"] for t in lift]),
        "method": csvio.fmt_str([t["method"] for t in lift]),
    })


def crm_counts(crm: crm_mod.CrmData) -> dict[str, int]:
    """The manifest's CRM counts of one simulated company (or shard)."""
    return {
        "accounts": crm.n_accounts,
        "people": len(crm.person_account),
        "contacts": len(crm.rec_person),
        "duplicate_contact_records": int((crm.rec_kind > 0).sum()),
        "opportunities": len(crm.opp_created),
        "opportunities_from_cold_accounts": int(crm.opp_cold.sum()),
        "won_opportunities": int((crm.opp_won == 1).sum()),
    }


def _manifest(seed: int, scale: str, minimal: bool, tl: Timeline, writer: LandingWriter, crm: dict[str, int],
              touchpoints: tuple[int, int, int]) -> dict:
    log = writer.log
    bad_counts = Counter(r.table_name for r in log.bad_rows)
    dup_counts = Counter(r.table_name for r in log.duplicates)
    marketing, sales, sessions = touchpoints
    return {
        "generator": "marketing_assets.demo",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "scale": scale,
        "minimal": bool(minimal),
        "start_date": tl.start_date.isoformat(),
        "end_date": tl.end_date.isoformat(),
        "mmm_weeks": N_WEEKS,
        "mmm_last_week_end": tl.last_full_week_end.isoformat(),
        "partial_week_days": tl.n_days - 7 * N_WEEKS,
        "fx_to_usd": FX_TO_USD,
        "files": dict(sorted(writer.files.items())),
        "rows_per_table": {name: sum(v for k, v in writer.files.items() if k.startswith(LAYOUTS[name].stem))
                           for name in LAYOUTS},
        "bad_rows": {name: bad_counts.get(name, 0) for name in LAYOUTS},
        "bad_rows_total": len(log.bad_rows),
        "exact_duplicates": {name: dup_counts.get(name, 0) for name in LAYOUTS},
        "exact_duplicates_total": len(log.duplicates),
        "crm": dict(crm),
        "touchpoints": {"marketing": marketing, "sales": sales, "web_sessions": sessions,
                        "total": marketing + sales + sessions},
    }


def _write_defect_truth(tdir: Path, log: DefectLog) -> None:
    log.bad_rows.sort(key=lambda r: (r.source_file, r.source_line))
    log.duplicates.sort(key=lambda r: (r.source_file, r.source_line))
    _write_truth_csv(tdir / "bad_rows.csv", ["table_name", "source_file", "source_line", "column_name", "reason"],
                     [(r.table_name, r.source_file, r.source_line, r.column_name, r.reason) for r in log.bad_rows])
    _write_truth_csv(tdir / "exact_duplicates.csv", ["table_name", "source_file", "source_line", "duplicate_of_line"],
                     [(r.table_name, r.source_file, r.source_line, r.duplicate_of_line) for r in log.duplicates])


def _write_company_truth(tdir: Path, mmm: truth.MMMTruth, tl: Timeline, b2b_week_cents: np.ndarray, lift: list[dict],
                         erp_discrepancy: dict, finance_missing: dict, anomalies: list[dict]) -> None:
    """Truth about the company as a whole: MMM, lift tests, planted discrepancies and anomalies."""
    _write_mmm(tdir, mmm, tl, b2b_week_cents)
    _write_truth_csv(
        tdir / "lift_tests_truth.csv",
        ["test_id", "channel", "start_date", "end_date", "weeks", "true_lift", "measured_lift", "lift_se",
         "spend_in_window_usd"],
        [(t["test_id"], t["channel"], t["start_date"], t["end_date"], t["weeks"], f"{t['true_lift']:.2f}",
          f"{t['lift']:.2f}", f"{t['lift_se']:.2f}", f"{t['spend_in_window_usd']:.2f}") for t in lift],
    )
    erp_discrepancy = dict(erp_discrepancy)
    erp_discrepancy["account_id"] = f"A{erp_discrepancy.pop('account_index') + 1:07d}"
    _write_json(tdir / "discrepancies.json", {
        "erp_vs_crm_won_revenue": erp_discrepancy,
        "finance_missing_platform_spend": finance_missing,
        "notes": [
            "Every other month: ERP revenue of CRM-matched customers equals CRM won_amount by closed_date month "
            "exactly (B2B orders are never returned).",
            "Every other month x platform: finance amount equals platform spend in USD up to cent rounding "
            "(finance vendor -> platform: " + json.dumps(erp.FINANCE_VENDOR_PLATFORM) + ").",
        ],
    })
    _write_json(tdir / "anomalies.json", {"anomalies": anomalies})


DUPLICATE_CONTACTS_HEADER = ["contact_id", "canonical_contact_id", "variant_kind"]
ACCOUNT_MATCHES_HEADER = ["account_id", "customer_id", "match_kind", "name_variant", "account_name", "customer_name",
                          "crm_domain", "erp_website"]


def _duplicate_contact_rows(crm: crm_mod.CrmData, ids: IdBase = NO_IDS) -> list[tuple]:
    canonical = crm.person_record[crm.rec_person]
    return [(f"C{ids.contact + i + 1:08d}", f"C{ids.contact + c + 1:08d}", crm_mod.VARIANT_KINDS[k])
            for i, (c, k) in enumerate(zip(canonical.tolist(), crm.rec_kind.tolist()))]


def _account_match_rows(crm, customers: erp.Customers, ids: IdBase = NO_IDS) -> list[tuple]:
    """Matched (account, customer) pairs, sorted; ``crm`` is a ``CrmData`` or a shard's ``AccountNames``."""
    rows = []
    for i in np.nonzero(customers.account >= 0)[0].tolist():
        a = int(customers.account[i])
        rows.append((f"A{ids.account + a + 1:07d}", f"CUST-{ids.customer + customers.rank[i] + 1:07d}",
                     customers.match_kind[i], customers.name_variant[i], crm.acc_name[a], customers.name[i],
                     crm.acc_domain[a], customers.website[i] or ""))
    rows.sort()
    return rows


def _write_mmm(tdir: Path, mmm: truth.MMMTruth, tl: Timeline, b2b_week_cents: np.ndarray) -> None:
    channels = list(ads_mod.MMM_CHANNELS)
    n = N_WEEKS
    b2b_week = b2b_week_cents[:n] / 100
    revenue = mmm.revenue_cents[:n] / 100
    starts = tl.week_starts(n)
    rows = []
    for w in range(n):
        row = [w, starts[w].isoformat()]
        row += [f"{mmm.spend[c][w]:.2f}" for c in channels]
        row += [f"{mmm.adstocked[c][w]:.2f}" for c in channels]
        row += [f"{mmm.contribution[c][w]:.2f}" for c in channels]
        row += [f"{mmm.baseline:.2f}", f"{mmm.trend[w]:.2f}", f"{mmm.seasonality[w]:.2f}",
                f"{mmm.promo_effect[w]:.2f}", mmm.promo.get(w, ""), f"{mmm.noise[w]:.2f}", f"{revenue[w]:.2f}",
                f"{b2b_week[w]:.2f}", f"{revenue[w] - b2b_week[w]:.2f}"]
        rows.append(row)
    header = (["week_index", "week_start"] + [f"spend_{c}" for c in channels] + [f"adstock_{c}" for c in channels]
              + [f"contribution_{c}" for c in channels]
              + ["baseline", "trend", "seasonality", "promo", "promo_code", "noise", "revenue", "b2b_revenue",
                 "webshop_revenue"])
    _write_truth_csv(tdir / "mmm_weekly.csv", header, rows)

    ch_info = {}
    for c in channels:
        spend = float(mmm.spend[c][:n].sum())
        contrib = float(mmm.contribution[c][:n].sum())
        ch_info[c] = {
            **mmm.params[c],
            "total_spend_usd": round(spend, 2),
            "total_contribution": round(contrib, 2),
            "roi": round(contrib / spend, 4),
            "marginal_roi": round(mmm.marginal_roi(c), 4),
        }
    _write_json(tdir / "mmm_truth.json", {
        "n_weeks": n,
        "first_week_start": starts[0].isoformat(),
        "last_week_end": tl.last_full_week_end.isoformat(),
        "week_definition": "Monday-Sunday weeks; week t = 0..155 starts at first_week_start + 7t days",
        "revenue_definition": "ERP erp/orders: sum(amount) of transaction_type 'sale' minus sum(amount) of "
                              "'return' by order_date week (USD), quarantined rows and exact duplicates excluded",
        "model": "revenue_t = baseline + trend_per_week * t + seasonality_sin_amplitude * sin(2*pi*doy_t/365.25) "
                 "+ seasonality_cos_amplitude * cos(2*pi*doy_t/365.25) + promo_effect_per_promo_week * promo_t "
                 "+ sum_c coefficient_c * hill(adstock_c,t) + noise_t; doy_t = day of year of week t's Monday",
        "adstock": "adstock_t = spend_t + decay * adstock_{t-1}, adstock_{-1} = 0 (spend in USD per week)",
        "hill": "hill(a) = a**slope / (a**slope + half_saturation**slope)",
        "roi_definition": "total contribution / total spend over the 156 weeks",
        "marginal_roi_definition": "d(total contribution) / d(total spend) when every week's spend is scaled by "
                                   "the same factor, at actual spend",
        "channels": ch_info,
        "controls": {k: round(v, 2) for k, v in mmm.controls.items()},
        "promo_weeks": [{"week_index": w, "week_start": starts[w].isoformat(), "promo_code": code}
                        for w, code in sorted(mmm.promo.items()) if w < n],
        "total_revenue": round(float(revenue.sum()), 2),
        "total_media_contribution": round(sum(v["total_contribution"] for v in ch_info.values()), 2),
        "fx_to_usd": FX_TO_USD,
        "spend_mapping": {
            "google_search": {"file": "ads/google_ads*", "filter": "campaign.advertising_channel_type == 'SEARCH'",
                              "usd": "metrics.cost_micros / 1e6 (account currency USD)"},
            "google_display": {"file": "ads/google_ads*", "filter": "campaign.advertising_channel_type == 'DISPLAY'",
                               "usd": "metrics.cost_micros / 1e6 (account currency USD)"},
            "meta": {"file": "ads/meta_ads*", "filter": "all campaigns",
                     "usd": "amount_spent * fx_to_usd[account_currency]"},
            "linkedin": {"file": "ads/linkedin_ads*", "filter": "all campaigns",
                         "usd": "costInLocalCurrency * fx_to_usd[currency] (costInUsd equals it up to rounding)"},
        },
        "campaigns": [
            {"platform": c.platform, "account_id": c.account_id, "currency": c.currency, "campaign_id": c.campaign_id,
             "campaign_name": c.name, "campaign_type": c.campaign_type, "mmm_channel": c.mmm_channel,
             "crm_channel": c.crm_channel, "utm_source": c.utm_source, "utm_medium": c.utm_medium,
             "utm_campaign": c.utm_campaign}
            for c in ads_mod.CAMPAIGNS
        ],
    })


def summarize(manifest: dict, seconds: float) -> str:
    """One short human-readable summary of a generation run."""
    rows = sum(manifest["files"].values())
    return (f"marketing_assets demo data ({manifest['scale']}, seed {manifest['seed']}, "
            f"{manifest['start_date']} .. {manifest['end_date']}): {len(manifest['files'])} files, {rows:,} rows, "
            f"{manifest['bad_rows_total']} planted bad rows, {manifest['exact_duplicates_total']} exact duplicates, "
            f"{manifest['touchpoints']['total']:,} touchpoints, {manifest['crm']['opportunities']:,} opportunities "
            f"in {seconds:.1f} s")
