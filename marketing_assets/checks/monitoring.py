"""Reconciliation (CRM ↔ ERP revenue, ad platforms ↔ finance spend) and anomaly checks (CPA spike, ROAS drop,
conversion-rate drop, data arrival). Thresholds live in ``config/checks.yaml`` (sections ``reconciliation``,
``anomalies``). Reconciliation failures are ERROR but not blocking: the graph still refreshes and the alert
sensor raises them. Anomalies WARN. Every failure names the months / channels / campaigns and the money.
"""

import dagster as dg
import pandas as pd

from marketing_assets.constants import IDENTITY, INGEST_LOG_TABLE, SOURCES, SPEND
from marketing_assets.lib import anomalies
from marketing_assets.lib.channels import crm_label_group_sql, load_channel_config
from marketing_assets.lib.quality import table_exists
from marketing_assets.lib.refs import ref
from marketing_assets.lib.sql import literal
from marketing_assets.lib.spend import possible_groups, reporting_currency, split_platforms
from marketing_assets.resources import CheckThresholds, Warehouse
from marketing_assets.sources import CONTRACTS

WARN = dg.AssetCheckSeverity.WARN


def _records(frame: pd.DataFrame, limit: int = 20) -> list[dict]:
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()} for row in frame.head(limit).to_dict("records")]


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _gap_check(gaps: pd.DataFrame, what: str, label, tolerance: float) -> dg.AssetCheckResult:
    compared = int(gaps["compared"].iloc[0]) if len(gaps) else None
    if gaps.empty:
        return dg.AssetCheckResult(passed=True, description=f"{what}: every compared month within {tolerance:.0%}", metadata={"tolerance": tolerance})
    worst = gaps.reindex(gaps["gap"].abs().sort_values(ascending=False).index)
    items = [f"{label(r)}: {_money(r.amount_left)} vs {_money(r.amount_right)} (gap {_money(r.gap)}, {r.gap_pct:+.1%})" for r in worst.itertuples()]
    return dg.AssetCheckResult(
        passed=False,
        description=f"{what}: {len(gaps)} month(s) outside {tolerance:.0%}: " + "; ".join(items[:3]),
        metadata={"tolerance": tolerance, "months_outside_tolerance": len(gaps), "compared": compared,
                  "gaps": dg.MetadataValue.json(_records(worst.drop(columns="compared")))},
    )


def _anomaly_result(hits: pd.DataFrame, items: list[str], what: str, ok: str) -> dg.AssetCheckResult:
    """WARN naming the first episodes in words; every episode (up to 20) in the metadata."""
    return dg.AssetCheckResult(
        passed=hits.empty, severity=WARN,
        description=ok if hits.empty else f"{what}: " + "; ".join(items[:3]),
        metadata={"anomalies": len(hits), "episodes": dg.MetadataValue.json(_records(hits))},
    )


@dg.asset_check(asset=dg.AssetKey([IDENTITY, "accounts_resolved"]), name="crm_won_vs_erp_revenue")
def crm_won_vs_erp_revenue(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Per month: CRM won amount (by close date) vs ERP net revenue (sales − returns) of the customers matched to a
    CRM account. Fails on months differing by more than the tolerance."""
    cfg = thresholds.section("reconciliation")
    with warehouse.get_connection() as con:
        if not table_exists(con, SOURCES, "erp_orders") or not con.execute(f"SELECT count(*) FROM {ref(SOURCES, 'erp_orders')}").fetchone()[0]:
            return dg.AssetCheckResult(passed=True, description="skipped: no ERP orders", metadata={"skipped": True})
        crm = con.execute(
            f"""SELECT date_trunc('month', closed_date)::DATE AS month, sum(won_amount)::DOUBLE AS amount
                FROM {ref(SOURCES, 'crm_opportunities')} WHERE is_won AND closed_date IS NOT NULL GROUP BY 1"""
        ).df()
        erp = con.execute(
            f"""SELECT date_trunc('month', o.order_date)::DATE AS month,
                       sum(CASE WHEN o.transaction_type = 'return' THEN -o.amount ELSE o.amount END)::DOUBLE AS amount
                FROM {ref(SOURCES, 'erp_orders')} o
                JOIN (SELECT DISTINCT customer_id FROM {ref(IDENTITY, 'accounts_resolved')}
                      WHERE account_id IS NOT NULL AND customer_id IS NOT NULL) m USING (customer_id)
                GROUP BY 1"""
        ).df()
    gaps = anomalies.monthly_gaps(crm, erp, ["month"], tolerance=float(cfg["tolerance"]), min_amount=float(cfg["min_amount"]))
    return _gap_check(gaps, "CRM won vs ERP booked revenue", lambda r: f"{r.month:%Y-%m} CRM won vs ERP", float(cfg["tolerance"]))


@dg.asset_check(asset=dg.AssetKey([SPEND, "ad_spend_daily"]), name="platform_vs_finance_spend")
def platform_vs_finance_spend(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """Per month × channel group with ad-platform spend: platform spend (reporting currency) vs the marketing spend
    booked by finance, over the months both sources cover.

    When an ad export lacks the column that splits a platform's spend into channel groups (Google's campaign type),
    the comparison is per month over those groups combined, and says so. When an export has no currency column, its
    spend is taken to be in the reporting currency: a gap may then be a currency difference, so the check WARNs."""
    cfg = thresholds.section("reconciliation")
    groups = list(cfg["platform_channel_groups"])
    with warehouse.get_connection() as con:
        if not table_exists(con, SOURCES, "finance_marketing_spend"):
            return dg.AssetCheckResult(passed=True, description="skipped: no finance spend", metadata={"skipped": True})
        finance = con.execute(
            f"""SELECT period_month::DATE AS month, {crm_label_group_sql(load_channel_config(), 'channel')} AS channel_group,
                       sum(amount)::DOUBLE AS amount
                FROM {ref(SOURCES, 'finance_marketing_spend')} GROUP BY ALL"""
        ).df()
        platform = con.execute(
            f"""SELECT date_trunc('month', date_day)::DATE AS month, channel_group, sum(spend)::DOUBLE AS amount
                FROM {ref(SPEND, 'ad_spend_daily')} GROUP BY ALL"""
        ).df()
        unsplit = dict(con.execute(
            f"""SELECT platform, count(*) FROM {ref(SPEND, 'ad_spend_daily')}
                WHERE campaign_type IS NULL AND platform IN ({', '.join(literal(p) for p in sorted(split_platforms())) or 'NULL'})
                GROUP BY ALL ORDER BY ALL"""
        ).fetchall())
        (assumed_currency,) = con.execute(f"SELECT count(*) FILTER (WHERE is_currency_assumed) FROM {ref(SPEND, 'ad_spend_daily')}").fetchone()
    if finance.empty or platform.empty:
        return dg.AssetCheckResult(passed=True, description="skipped: one side has no rows", metadata={"skipped": True})
    first, last = max(finance.month.min(), platform.month.min()), min(finance.month.max(), platform.month.max())
    notes, keys = [], ["month", "channel_group"]
    if unsplit:
        combined = sorted(set(groups) | possible_groups(unsplit))
        notes.append(
            f"compared per month over {' + '.join(combined)} combined: {_rows(unsplit)} have no campaign type, "
            "so their spend cannot be split into channel groups"
        )
        groups = combined
    keep = lambda f: f[(f.month >= first) & (f.month <= last) & f.channel_group.isin(groups)]  # noqa: E731
    platform_side, finance_side = keep(platform), keep(finance)
    if unsplit:
        keys = ["month"]
        platform_side, finance_side = (f.groupby("month", as_index=False)["amount"].sum() for f in (platform_side, finance_side))
    if assumed_currency:
        notes.append(
            f"{assumed_currency:,} ad-spend rows have no currency and are taken to be in {reporting_currency()}: "
            "a gap may be a currency difference (WARN, not ERROR)"
        )
    gaps = anomalies.monthly_gaps(platform_side, finance_side, keys, tolerance=float(cfg["tolerance"]), min_amount=float(cfg["min_amount"]))
    label = (lambda r: f"{r.month:%Y-%m} platform vs finance") if unsplit else (lambda r: f"{r.month:%Y-%m} {r.channel_group} platform vs finance")
    result = _gap_check(gaps, f"ad-platform vs finance spend ({', '.join(groups)})", label, float(cfg["tolerance"]))
    description = result.description + "".join(f" [{n}]" for n in notes)
    return dg.AssetCheckResult(
        passed=result.passed, severity=WARN if assumed_currency else dg.AssetCheckSeverity.ERROR, description=description,
        metadata={**result.metadata, "months": f"{first:%Y-%m} to {last:%Y-%m}", "grain": " × ".join(keys),
                  "rows_without_campaign_type": sum(unsplit.values()), "rows_currency_assumed": int(assumed_currency)},
    )


def _rows(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {platform} rows" for platform, n in counts.items())


@dg.asset_check(asset=dg.AssetKey([SPEND, "ad_spend_daily"]), name="cpa_spike")
def cpa_spike(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when a campaign-week's CPA is more than the configured share above the campaign's baseline CPA and its
    conversions are significantly fewer than its spend buys at the baseline CPA (exact test of two Poisson rates)."""
    cfg = thresholds.section("anomalies")
    with warehouse.get_connection() as con:
        hits = anomalies.cpa_spikes(con, ref(SPEND, "ad_spend_daily"), lookback_days=cfg["lookback_days"], baseline_days=cfg["baseline_days"],
                                    above=cfg["cpa_above_baseline"], alpha=cfg["cpa_spike_alpha"])
    items = [f"{r.platform} campaign {r.campaign_id} '{r.campaign_name}' week {r.start_date:%Y-%m-%d}: "
             + (f"CPA {r.cpa:,.2f} vs baseline {r.baseline_cpa:,.2f} ({r.change:+.0%})" if pd.notna(r.cpa) else f"no conversion (baseline CPA {r.baseline_cpa:,.2f})")
             + f", {r.conversions:,.1f} conversions vs {r.expected_conversions:,.1f} expected at baseline CPA (p = {r.p_value:.2g})"
             for r in hits.itertuples()]
    ok = "no campaign-week CPA above baseline + {:.0%} with significantly fewer conversions than expected (p < {}) in the last {} days".format(
        cfg["cpa_above_baseline"], cfg["cpa_spike_alpha"], cfg["lookback_days"])
    return _anomaly_result(hits, items, "CPA spike", ok)


@dg.asset_check(asset=dg.AssetKey([SPEND, "ad_spend_daily"]), name="roas_drop")
def roas_drop(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN when a campaign's platform ROAS stays under the configured share of its baseline for N consecutive days."""
    cfg = thresholds.section("anomalies")
    with warehouse.get_connection() as con:
        hits = anomalies.roas_drops(con, ref(SPEND, "ad_spend_daily"), lookback_days=cfg["lookback_days"], baseline_days=cfg["baseline_days"],
                                    below=cfg["roas_below_baseline"], min_days=cfg["roas_consecutive_days"])
    items = [f"{r.platform} campaign {r.campaign_id} '{r.campaign_name}' {r.start_date:%Y-%m-%d} to {r.end_date:%Y-%m-%d} ({r.consecutive_days} days): ROAS {', '.join(f'{x:.2f}' for x in r.daily_roas)} vs baseline {r.baseline_roas:.2f}" for r in hits.itertuples()]
    ok = "no campaign with ROAS under {:.0%} of baseline for {}+ days".format(cfg["roas_below_baseline"], cfg["roas_consecutive_days"])
    return _anomaly_result(hits.assign(daily_roas=hits["daily_roas"].map(list)) if len(hits) else hits, items, "ROAS drop", ok)


@dg.asset_check(asset=dg.AssetKey([SOURCES, "web_sessions"]), name="conversion_rate_drop")
def conversion_rate_drop(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
    """WARN on days whose web conversion rate has a robust z-score under the threshold against the preceding baseline."""
    cfg = thresholds.section("anomalies")
    with warehouse.get_connection() as con:
        hits = anomalies.conversion_rate_drops(con, ref(SOURCES, "web_sessions"), lookback_days=cfg["lookback_days"], baseline_days=cfg["baseline_days"],
                                               min_z=cfg["conversion_rate_min_z"], min_sessions=cfg["min_day_sessions"],
                                               today=thresholds.now().date())
    items = [f"{pd.Timestamp(r.day):%Y-%m-%d}: {r.conversion_rate:.2%} of {r.sessions:,} sessions converted vs median {r.baseline_median:.2%} (z {r.robust_z:.1f})" for r in hits.itertuples()]
    return _anomaly_result(hits, items, "Web conversion-rate drop (all sessions)", "no day with web conversion-rate z-score under {}".format(cfg["conversion_rate_min_z"]))


def _build_arrival_check(table: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey([SOURCES, table]), name="new_data_arrival")
    def new_data_arrival(warehouse: Warehouse, thresholds: CheckThresholds) -> dg.AssetCheckResult:
        """WARN when the table's newest landing file arrived longer ago than its arrival window (config/checks.yaml)."""
        hours_cfg = thresholds.section("anomalies")["arrival_hours"]
        limit = hours_cfg.get(table, hours_cfg["default"])
        if limit is None:
            return dg.AssetCheckResult(passed=True, description="arrival not monitored for this table", metadata={"skipped": True})
        with warehouse.get_connection() as con:
            newest = con.execute(
                f"SELECT max(file_modified_at) FROM {SOURCES}.{INGEST_LOG_TABLE} WHERE table_name = ?", [table]
            ).fetchone()[0] if table_exists(con, SOURCES, INGEST_LOG_TABLE) else None
        if newest is None:
            return dg.AssetCheckResult(passed=False, severity=WARN, description=f"no landing file for {table} has ever arrived", metadata={"limit_hours": limit})
        age = (thresholds.now().replace(tzinfo=None) - newest).total_seconds() / 3600
        return dg.AssetCheckResult(
            passed=age <= limit, severity=WARN,
            description=f"newest {table} file arrived {age:.1f} h ago (limit {limit} h)" + ("" if age <= limit else ": no new data"),
            metadata={"newest_file_at": newest.isoformat(), "age_hours": round(age, 2), "limit_hours": limit},
        )

    return new_data_arrival


monitoring_checks = [crm_won_vs_erp_revenue, platform_vs_finance_spend, cpa_spike, roas_drop, conversion_rate_drop] + [
    _build_arrival_check(t) for t in CONTRACTS
]
