"""Metric dictionary: every KPI against hand-computed values on a tiny in-memory warehouse, validation, YAML edits."""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from marketing_assets.lib.attribution import MODELS as ATTRIBUTION_MODELS
from marketing_assets.lib.funnel import stage_distinguishability
from marketing_assets.lib.kpis import (
    BASE_RELATIONS,
    DEFAULT_KPI_FILE,
    KpiDictionaryError,
    KpiScope,
    base_relations_sql,
    compute_kpis,
    dictionary_frame,
    kpi_sql,
    kpi_tables,
    load_kpi_dictionary,
    missing_tables,
    parse_kpi_dictionary,
)
from marketing_assets.lib.touchpoints import TYPE_ORDER_SQL

REQUIRED_KPIS = [
    "total_revenue", "revenue_growth_wow", "revenue_growth_mom", "revenue_growth_yoy", "revenue_by_product",
    "revenue_by_channel", "gross_margin_pct", "margin_by_product", "blended_roas", "cac", "cost_per_lead", "cost_per_platform_conversion",
    "conversion_rate_session_to_lead", "conversion_rate_lead_to_customer", "mql_conversion_rate",
    "sql_conversion_rate", "marketing_sourced_pipeline_pct", "marketing_influenced_revenue_pct",
    "inventory_turnover", "ltv", "ltv_to_cac", "payback_months",
]  # fmt: skip

# ----------------------------------------------------------------------------------- the fixture
# Products: P1 (category A, unit cost 6), P2 (category B, unit cost 20).
# Orders (2026-01-05 and 2026-01-12 are Mondays):
#   O0 2025-02-03 sale   C4 P2 qty 1  amount  40 direct
#   O1 2026-01-05 sale   C1 P1 qty 10 amount 100 web       week 2026-01-05
#   O5 2026-01-13 sale   C2 P1 qty 2  amount  20 direct    week 2026-01-12
#   O2 2026-01-20 sale   C2 P2 qty 2  amount  80 direct    week 2026-01-19
#   R1 2026-01-25 return C1 P1 qty 1  amount  10 web       week 2026-01-19
#   O3 2026-02-10 sale   C1 P1 qty 5  amount  50 web       week 2026-02-09
#   O4 2026-02-15 sale   C3 P2 qty 3  amount 150 partner   week 2026-02-09
ORDERS = [
    ("O0", 1, "2025-02-03 10:00:00", "sale", "C4", "P2", 1, 40, "direct"),
    ("O1", 1, "2026-01-05 10:00:00", "sale", "C1", "P1", 10, 100, "web"),
    ("O5", 1, "2026-01-13 10:00:00", "sale", "C2", "P1", 2, 20, "direct"),
    ("O2", 1, "2026-01-20 10:00:00", "sale", "C2", "P2", 2, 80, "direct"),
    ("R1", 1, "2026-01-25 10:00:00", "return", "C1", "P1", 1, 10, "web"),
    ("O3", 1, "2026-02-10 10:00:00", "sale", "C1", "P1", 5, 50, "web"),
    ("O4", 1, "2026-02-15 10:00:00", "sale", "C3", "P2", 3, 150, "partner"),
]


def _create(con: duckdb.DuckDBPyConnection, table: str, columns: str, rows: list[tuple]) -> None:
    con.execute(f"CREATE TABLE {table} ({columns})")
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


# Credit share of an opportunity's FIRST touch per attribution model; its second touch gets the rest.
# OP1 (1000): T1 Paid Search 'brand_search' first, T5 Outbound Sales (no campaign) second.
# OP2 (500):  T6 Outbound Sales (no campaign) first, T7 Email 'newsletter' second.
# OP3 (300):  T8 Direct only, 300 under every model. OP4 (200): no credit row at all -> '(unattributed)'.
# E.g. linear: OP1 T1 500 + T5 500, OP2 T6 250 + T7 250; time_decay: OP1 400 + 600, OP2 200 + 300.
FIRST_SHARE = {
    "first_touch": 1.0, "last_touch": 0.0, "last_non_direct": 0.0, "linear": 0.5, "time_decay": 0.4,
    "position_based": 0.5, "w_shaped": 0.5, "markov": 0.7, "shapley": 0.6,
}  # fmt: skip
assert set(FIRST_SHARE) == set(ATTRIBUTION_MODELS)


def _credit_rows() -> list[tuple]:
    """(opportunity_id, touchpoint_id, channel_group, first_touch_credit, opportunity_created_date,
    sales_segment, campaign_key, pipeline_amount, <the other eight model credits in MODELS order>)."""
    touches = [  # (opp, touch, group, campaign, created, segment, amount, is first touch)
        ("OP1", "T1", "Paid Search", "brand_search", "2026-01-15", "Enterprise", 1000.0, True),
        ("OP1", "T5", "Outbound Sales", None, "2026-01-15", "Enterprise", 1000.0, False),
        ("OP2", "T6", "Outbound Sales", None, "2026-01-20", "SMB", 500.0, True),
        ("OP2", "T7", "Email", "newsletter", "2026-01-20", "SMB", 500.0, False),
    ]
    rows = []
    for opp, touch, group, campaign, created, segment, amount, first in touches:
        credit = {m: amount * (s if first else 1 - s) for m, s in FIRST_SHARE.items()}
        others = [credit[m] for m in ATTRIBUTION_MODELS if m != "first_touch"]
        rows.append((opp, touch, group, credit["first_touch"], created, segment, campaign, amount, *others))
    rows.append(("OP3", "T8", "Direct", 300.0, "2026-02-05", "SMB", None, 300.0, *[300.0] * 8))
    return rows


def _warehouse() -> duckdb.DuckDBPyConnection:
    """Tiny warehouse with only the columns the base relations read."""
    c = duckdb.connect()
    for schema in ("sources", "spend", "identity", "attribution", "touchpoints"):
        c.execute(f"CREATE SCHEMA {schema}")
    _create(c, "sources.erp_products", "product_id VARCHAR, product_name VARCHAR, category VARCHAR, unit_price DECIMAL(38,10), unit_cost DECIMAL(38,10)",
            [("P1", "Widget", "A", 10, 6), ("P2", "Gadget", "B", 40, 20)])  # fmt: skip
    _create(c, "sources.erp_orders", "order_id VARCHAR, line_number INTEGER, order_date TIMESTAMP, transaction_type VARCHAR, "
            "customer_id VARCHAR, product_id VARCHAR, quantity INTEGER, amount DECIMAL(38,10), sales_channel VARCHAR", ORDERS)  # fmt: skip
    # Month-end snapshots: Jan P1 60 + P2 100 = 160; Feb P1 30 + P2 (no value: 4 on hand × cost 20 = 80) = 110.
    _create(c, "sources.erp_inventory", "snapshot_date DATE, product_id VARCHAR, location_id VARCHAR, quantity_on_hand INTEGER, inventory_value DECIMAL(38,10)",
            [("2026-01-31", "P1", "L1", 10, 60), ("2026-01-31", "P2", "L1", 5, 100),
             ("2026-02-28", "P1", "L1", 5, 30), ("2026-02-28", "P2", "L1", 4, None)])  # fmt: skip
    # Campaign names normalise to campaign keys: both Paid Search rows -> 'brand_search', Paid Social -> 'prospecting_eu'.
    _create(c, "spend.ad_spend_daily", "date_day DATE, platform VARCHAR, channel_group VARCHAR, campaign_name VARCHAR, spend DOUBLE, clicks DOUBLE, conversions DOUBLE",
            [("2026-01-10", "google_ads", "Paid Search", "Brand Search", 60, 30, 3),
             ("2026-01-15", "meta_ads", "Paid Social", " Prospecting-EU ", 40, 20, 1),
             ("2026-02-12", "google_ads", "Paid Search", "BRAND  search!", 90, 45, 3)])  # fmt: skip
    # Leads: K1..K3 in January, K4 in February; K5 and K6 never became leads.
    # Funnel (contact-creation cohort; created_at and lifecycle_stage are read by the funnel only):
    #   K1 created 01-01: every stage (customer date; opportunities OP1 01-15 / OP2 01-20 on A1 after creation).
    #   K2 created 01-05: engaged, MQL; no SQL date and no opportunity on A2 -> stops at MQL.
    #   K3 created 01-20: lead only by its dates, but OP3 on A3 was created 02-05 and won 02-20 -> customer, and
    #      so (monotone stages) also opportunity, SQL, MQL, engaged.
    #   K4 created 02-01: engaged, MQL, SQL, opportunity (OP4 on A4 created 02-07, not won).
    #   K5 created 02-15: known only (its one touch is a sales touch, not engagement).
    #   K6 created 02-20: no dates and no touch, lifecycle stage 'Opportunity' -> opportunity, SQL, MQL, engaged.
    _create(c, "sources.crm_contacts", "contact_id VARCHAR, account_id VARCHAR, lead_date TIMESTAMP, mql_date TIMESTAMP, sql_date TIMESTAMP, customer_date TIMESTAMP, "
            "created_at TIMESTAMP, lifecycle_stage VARCHAR",
            [("K1", "A1", "2026-01-03", "2026-01-10", "2026-01-20", "2026-02-01", "2026-01-01", "customer"),
             ("K2", "A2", "2026-01-08", "2026-01-12", None, None, "2026-01-05", "mql"),
             ("K3", "A3", "2026-01-25", None, None, None, "2026-01-20", "lead"),
             ("K4", "A4", "2026-02-02", "2026-02-05", "2026-02-09", None, "2026-02-01", "sql"),
             ("K5", "A5", None, None, None, None, "2026-02-15", "subscriber"),
             ("K6", "A6", None, None, None, None, "2026-02-20", "Opportunity")])  # fmt: skip
    # Lead channel = last touch up to the lead date: K1 Paid Search, K2 Email (T3 is after), K3 none, K4 Paid Search.
    # Lead campaign likewise: K1 brand_search, K2 newsletter, K3 none, K4 brand_search.
    # T9 (K5, a sales touch) and T10 (K3, 02-20, after K3's lead date) change no lead.
    # Funnel channel = first touch: K1 Paid Search, K2 Email, K3 Email (T10), K4 Paid Search, K5 Outbound Sales,
    # K6 (unattributed).
    # type_order is derived from touchpoint_type as in the touchpoints asset (so rows are inserted without it).
    _create(c, "touchpoints.touchpoints", "touchpoint_id VARCHAR, contact_id VARCHAR, touchpoint_date TIMESTAMP, channel_group VARCHAR, "
            f"touchpoint_type VARCHAR, account_id VARCHAR, campaign_key VARCHAR, type_order INTEGER GENERATED ALWAYS AS ({TYPE_ORDER_SQL})",
            [("T1", "K1", "2026-01-02", "Paid Search", "marketing", "A1", "brand_search"),
             ("T2", "K2", "2026-01-01", "Email", "marketing", "A2", "newsletter"),
             ("T3", "K2", "2026-01-09", "Paid Social", "web", "A2", "prospecting_eu"),
             ("T4", "K4", "2026-02-01", "Paid Search", "marketing", "A4", "brand_search"),
             ("T9", "K5", "2026-02-16", "Outbound Sales", "sales", "A5", None),
             ("T10", "K3", "2026-02-20", "Email", "marketing", "A3", "newsletter")])  # fmt: skip
    # ERP customer -> CRM account. Acquisition channel = the account's last touch up to the first sale:
    #   C1 (A1, first sale 2026-01-05): T1 Paid Search 01-02.
    #   C2 (A2, first sale 2026-01-13): T2 Email 01-01, T3 Paid Social 01-09 -> the last, Paid Social.
    #   C3 (A3, first sale 2026-02-15): only T10 on 02-20, after the first sale -> (unattributed).
    #   C4 (first sale 2025-02-03): no account -> (unattributed).
    _create(c, "identity.accounts_resolved", "account_id VARCHAR, customer_id VARCHAR",
            [("A1", "C1"), ("A2", "C2"), ("A3", "C3"), ("A4", None)])  # fmt: skip
    # Sessions: January 4 (2 with a form email), February 1 (none).
    _create(c, "sources.web_sessions", "session_id VARCHAR, session_start TIMESTAMP, conversions INTEGER, form_email VARCHAR",
            [("S1", "2026-01-02", 1, "a@x.io"), ("S2", "2026-01-03", 0, None), ("S3", "2026-01-04", 0, ""),
             ("S4", "2026-01-05", 1, "b@x.io"), ("S5", "2026-02-01", 0, None)])  # fmt: skip
    # OP2 is a second deal of account A1 (K1's), so K2's account A2 has no opportunity (see the funnel above).
    _create(c, "sources.crm_opportunities", "opportunity_id VARCHAR, account_id VARCHAR, pipeline_amount DECIMAL(38,10), opportunity_created_date TIMESTAMP, "
            "sales_segment VARCHAR, is_won BOOLEAN, closed_date TIMESTAMP, won_amount DECIMAL(38,10)",
            [("OP1", "A1", 1000, "2026-01-15", "Enterprise", True, "2026-02-10", 800),
             ("OP2", "A1", 500, "2026-01-20", "SMB", False, None, None),
             ("OP3", "A3", 300, "2026-02-05", "SMB", True, "2026-02-20", 300),
             ("OP4", "A4", 200, "2026-02-07", "SMB", False, None, None)])  # fmt: skip
    # OP1 first touch Paid Search (sourced, influenced); OP2 first touch Outbound Sales + an Email touch
    # (influenced, not sourced); OP3 Direct only (neither); OP4 no touch at all (neither).
    # All nine model credits per touch: see FIRST_SHARE.
    credit_cols = ", ".join(f"{m}_credit DOUBLE" for m in ATTRIBUTION_MODELS if m != "first_touch")
    _create(c, "attribution.attribution_credits", "opportunity_id VARCHAR, touchpoint_id VARCHAR, channel_group VARCHAR, first_touch_credit DOUBLE, "
            f"opportunity_created_date TIMESTAMP, sales_segment VARCHAR, campaign_key VARCHAR, pipeline_amount DOUBLE, {credit_cols}",
            _credit_rows())  # fmt: skip
    # Finance journals: Events 500 in January (label 'Trade Show'), Paid Search 120 in February; an unknown label is Unassigned.
    _create(c, "sources.finance_marketing_spend", "period_month DATE, channel VARCHAR, amount DECIMAL(38,10)",
            [("2026-01-01", "Trade Show", 500), ("2026-02-01", " paid search ", 120), ("2026-02-01", "Mystery", 7)])  # fmt: skip
    # Marketing-mix model: Paid Social is two MMM channels (meta 100 spend, mROI 1.2; linkedin 300, mROI 0.8).
    c.execute("CREATE SCHEMA mmm")
    _create(c, "mmm.mmm_model", "channel VARCHAR, channel_group VARCHAR, spend DOUBLE, contribution DOUBLE, mroi DOUBLE",
            [("google_search", "Paid Search", 100, 300, 2.0), ("meta", "Paid Social", 100, 150, 1.2), ("linkedin", "Paid Social", 300, 300, 0.8)])  # fmt: skip
    _create(c, "mmm.mmm_channel_group_roi", "channel_group VARCHAR, roi_low DOUBLE, roi_high DOUBLE, mroi_low DOUBLE, mroi_high DOUBLE, "
            "mroi_gap_low DOUBLE, mroi_gap_high DOUBLE",
            [("Paid Search", 1.0, 4.0, 1.5, 2.5, 0.4, 1.8), ("Paid Social", 0.9, 1.3, 0.6, 1.1, -1.8, -0.4)])  # fmt: skip
    # Budget plan for 2026-03-02 on: Paid Search 50 -> 75, Paid Social 30 + 20 -> 20 + 5; a what-if row is not the plan.
    _create(c, "mmm.mmm_budget_plan", "period_start DATE, scenario VARCHAR, channel_group VARCHAR, current_spend DOUBLE, scenario_spend DOUBLE",
            [("2026-03-02", "optimal_same_total", "Paid Search", 50, 75), ("2026-03-02", "optimal_same_total", "Paid Social", 30, 20),
             ("2026-03-02", "optimal_same_total", "Paid Social", 20, 5), ("2026-03-02", "Paid Search +10%", "Paid Search", 50, 55)])  # fmt: skip
    return c


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = _warehouse()
    yield c
    c.close()


@pytest.fixture(scope="module")
def dictionary():
    return load_kpi_dictionary()


def values(con, dictionary, name: str, grain: str = "month", dims: tuple[str, ...] = (), between=None) -> dict:
    """``{period-or-(period, dims...): value}`` with ``period`` as an ISO date string ('total' at total grain)
    and a NULL dimension value as None."""
    df = compute_kpis(con, [name], grain, dims, dictionary=dictionary, between=between)
    out = {}
    for row in df.itertuples(index=False):
        period = "total" if pd.isna(row.period) else row.period.date().isoformat()
        dim_values = (None if pd.isna(getattr(row, d)) else getattr(row, d) for d in df.columns[1:-3])
        key = (period, *dim_values) if len(df.columns) > 4 else period
        out[key] = None if pd.isna(row.value) else row.value
    return out


def close(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), (actual, expected)
    for key, want in expected.items():
        if want is None:
            assert actual[key] is None, (key, actual[key])
        else:
            assert actual[key] == pytest.approx(want, abs=1e-9), (key, actual[key], want)


# ------------------------------------------------------------------------------------ the dictionary


def test_dictionary_covers_required_kpis_with_governance_fields(dictionary):
    assert set(REQUIRED_KPIS) <= set(dictionary.kpis)
    frame = dictionary_frame(dictionary)
    assert list(frame["name"]) == list(dictionary.kpis)
    for col in ("description", "formula", "owner", "refresh", "unit", "source_assets", "changed", "time_grains"):
        assert frame[col].astype(str).str.len().gt(0).all(), col
    assert frame["version"].ge(1).all() and (frame["dictionary_version"] == dictionary.version).all()
    assert frame.loc[frame["name"] == "ltv_to_cac", "target_value"].item() == 3.0


def test_every_kpi_compiles_at_every_allowed_grain(con, dictionary):
    for kpi in dictionary:
        for grain in kpi.time_grains:
            con.execute(f"SELECT * FROM ({kpi_sql(kpi, grain, (), dictionary)}) LIMIT 0").fetchall()
            if kpi.dims:
                con.execute(f"SELECT * FROM ({kpi_sql(kpi, grain, kpi.dims[:1], dictionary)}) LIMIT 0").fetchall()


def test_base_relations_cover_every_base(dictionary):
    assert set(base_relations_sql(dictionary.parameters)) == set(BASE_RELATIONS)


# ----------------------------------------------------------------------------------------- revenue


def test_total_revenue_net_of_returns(con, dictionary):
    # Feb 2025: 40. Jan 2026: 100 + 20 + 80 - 10 (return) = 190. Feb 2026: 50 + 150 = 200.
    close(values(con, dictionary, "total_revenue"), {"2025-02-01": 40, "2026-01-01": 190, "2026-02-01": 200})
    close(values(con, dictionary, "total_revenue", "total"), {"total": 430})


def test_revenue_growth_mom_yoy_wow(con, dictionary):
    # MoM: Feb 2025 and Jan 2026 have no revenue in the previous month -> NULL; Feb 2026 (200 - 190) / 190.
    close(
        values(con, dictionary, "revenue_growth_mom"), {"2025-02-01": None, "2026-01-01": None, "2026-02-01": 10 / 190}
    )
    # YoY: Feb 2026 vs Feb 2025: (200 - 40) / 40 = 4.
    close(values(con, dictionary, "revenue_growth_yoy"), {"2025-02-01": None, "2026-01-01": None, "2026-02-01": 4.0})
    # Weeks: 01-05: 100, 01-12: 20, 01-19: 80 - 10 = 70, 02-09: 200 (02-02 has no revenue).
    close(
        values(con, dictionary, "revenue_growth_wow", "week"),
        {
            "2025-02-03": None,
            "2026-01-05": None,
            "2026-01-12": (20 - 100) / 100,
            "2026-01-19": (70 - 20) / 20,
            "2026-02-09": None,
        },
    )
    with pytest.raises(ValueError, match="revenue_growth_wow.*grain 'month'"):
        compute_kpis(con, ["revenue_growth_wow"], "month", dictionary=dictionary)


def test_revenue_growth_by_product(con, dictionary):
    # P1: Jan 100 + 20 - 10 = 110, Feb 50 -> (50 - 110) / 110. P2: Jan 80, Feb 150 -> 70 / 80.
    got = values(con, dictionary, "revenue_growth_mom", "month", ("product_id",))
    assert got[("2026-02-01", "P1")] == pytest.approx(-60 / 110)
    assert got[("2026-02-01", "P2")] == pytest.approx(70 / 80)


def test_revenue_by_product_and_channel_sum_to_total(con, dictionary):
    close(
        values(con, dictionary, "revenue_by_product"),
        {
            ("2025-02-01", "P2"): 40,
            ("2026-01-01", "P1"): 110,
            ("2026-01-01", "P2"): 80,
            ("2026-02-01", "P1"): 50,
            ("2026-02-01", "P2"): 150,
        },
    )
    close(
        values(con, dictionary, "revenue_by_channel", "total"),
        {("total", "web"): 100 - 10 + 50, ("total", "direct"): 40 + 20 + 80, ("total", "partner"): 150},
    )
    df = compute_kpis(
        con, ["total_revenue", "revenue_by_product", "revenue_by_channel"], "month", dictionary=dictionary
    )
    sums = df.groupby(["kpi", "period"])["value"].sum().unstack("kpi")
    assert (sums["revenue_by_product"] == sums["total_revenue"]).all()
    assert (sums["revenue_by_channel"] == sums["total_revenue"]).all()


# ------------------------------------------------------------------------------------------ margin


def test_gross_margin_and_margin_by_product(con, dictionary):
    # COGS Jan: 10×6 + 2×6 + 2×20 - 1×6 = 106; Feb: 5×6 + 3×20 = 90; Feb 2025: 1×20 = 20.
    close(values(con, dictionary, "cogs"), {"2025-02-01": 20, "2026-01-01": 106, "2026-02-01": 90})
    # Margin %: Jan (190 - 106) / 190, Feb (200 - 90) / 200, total (430 - 216) / 430.
    close(
        values(con, dictionary, "gross_margin_pct"),
        {"2025-02-01": 20 / 40, "2026-01-01": 84 / 190, "2026-02-01": 110 / 200},
    )
    close(values(con, dictionary, "gross_margin_pct", "total"), {"total": 214 / 430})
    # By product, total: P1 revenue 160, cogs 96 -> 64; P2 revenue 270, cogs 120 -> 150. Sum 214 = gross margin.
    close(values(con, dictionary, "margin_by_product", "total"), {("total", "P1"): 64, ("total", "P2"): 150})
    close(values(con, dictionary, "gross_margin", "total"), {"total": 214})
    # Category is an extra dimension on top of the product breakdown.
    assert values(con, dictionary, "margin_by_product", "total", ("category",)) == {
        ("total", "A", "P1"): 64,
        ("total", "B", "P2"): 150,
    }


# ----------------------------------------------------------------------------------- spend efficiency


def test_roas_cpa_spend(con, dictionary):
    # Spend: Jan 60 + 40 = 100, Feb 90. ROAS: Jan 190 / 100, Feb 200 / 90, Feb 2025 no spend -> NULL.
    close(values(con, dictionary, "blended_roas"), {"2025-02-01": None, "2026-01-01": 1.9, "2026-02-01": 200 / 90})
    close(values(con, dictionary, "blended_roas", "total"), {"total": 430 / 190})
    # CPA = spend / platform conversions: Jan 100 / 4, Feb 90 / 3; Jan Paid Search 60 / 3, Paid Social 40 / 1.
    close(values(con, dictionary, "cost_per_platform_conversion"), {"2026-01-01": 25, "2026-02-01": 30})
    got = values(con, dictionary, "cost_per_platform_conversion", "month", ("channel_group",))
    assert got[("2026-01-01", "Paid Search")] == 20 and got[("2026-01-01", "Paid Social")] == 40
    # Spend by channel group adds up to total spend (190).
    assert sum(values(con, dictionary, "ad_spend", "total", ("channel_group",)).values()) == 190


def test_cpl_and_cac(con, dictionary):
    # Leads Jan 3, Feb 1 -> CPL 100 / 3 and 90 / 1; total 190 / 4.
    close(values(con, dictionary, "cost_per_lead"), {"2026-01-01": 100 / 3, "2026-02-01": 90.0})
    close(values(con, dictionary, "cost_per_lead", "total"), {"total": 47.5})
    # New customers (first sale): Feb 2025 C4; Jan 2026 C1, C2; Feb 2026 C3.
    close(values(con, dictionary, "new_customers"), {"2025-02-01": 1, "2026-01-01": 2, "2026-02-01": 1})
    # CAC: Jan 100 / 2, Feb 90 / 1, Feb 2025 no spend -> NULL; total 190 / 4.
    close(values(con, dictionary, "cac"), {"2025-02-01": None, "2026-01-01": 50, "2026-02-01": 90})
    close(values(con, dictionary, "cac", "total"), {"total": 47.5})


# ------------------------------------------------------------------------------------------- funnel


def test_conversion_rates(con, dictionary):
    # Sessions: Jan 2 of 4 with a form email (an empty string is no email), Feb 0 of 1; total 2 / 5.
    close(values(con, dictionary, "conversion_rate_session_to_lead"), {"2026-01-01": 0.5, "2026-02-01": 0.0})
    close(values(con, dictionary, "conversion_rate_session_to_lead", "total"), {"total": 0.4})
    # Lead cohorts: Jan K1, K2, K3 (MQL: K1, K2; SQL: K1; customer: K1); Feb K4 (MQL, SQL).
    close(values(con, dictionary, "mql_conversion_rate"), {"2026-01-01": 2 / 3, "2026-02-01": 1.0})
    close(values(con, dictionary, "sql_conversion_rate"), {"2026-01-01": 1 / 2, "2026-02-01": 1.0})
    close(values(con, dictionary, "conversion_rate_lead_to_customer"), {"2026-01-01": 1 / 3, "2026-02-01": 0.0})
    close(values(con, dictionary, "mql_conversion_rate", "total"), {"total": 3 / 4})
    close(values(con, dictionary, "sql_conversion_rate", "total"), {"total": 2 / 3})


def test_leads_by_lead_channel_sum_to_total(con, dictionary):
    # K1 Paid Search, K2 Email (the Paid Social touch came after the lead date), K3 none, K4 Paid Search.
    close(
        values(con, dictionary, "new_leads", "total", ("channel_group",)),
        {("total", "Paid Search"): 2, ("total", "Email"): 1, ("total", "(unattributed)"): 1},
    )
    close(values(con, dictionary, "new_leads", "total"), {"total": 4})


def test_lead_campaign_is_the_campaign_of_the_last_touch(con, dictionary):
    # Channel and campaign of the same last touch: K1 Paid Search / brand_search, K2 Email / newsletter,
    # K3 none, K4 Paid Search / brand_search.
    close(
        values(con, dictionary, "new_leads", "total", ("channel_group", "campaign_key")),
        {("total", "Paid Search", "brand_search"): 2, ("total", "Email", "newsletter"): 1,
         ("total", "(unattributed)", None): 1},
    )  # fmt: skip
    c = _warehouse()
    try:
        # T11: a sales touch without a campaign at K1's lead time (2026-01-03 00:00), after T1 (brand_search):
        # K1's last touch is now Outbound Sales with no campaign, not Outbound Sales with T1's campaign.
        c.execute(
            "INSERT INTO touchpoints.touchpoints VALUES ('T11', 'K1', '2026-01-03', 'Outbound Sales', 'sales', 'A1', NULL)"
        )
        close(
            values(c, dictionary, "new_leads", "total", ("channel_group", "campaign_key")),
            {("total", "Outbound Sales", None): 1, ("total", "Paid Search", "brand_search"): 1,
             ("total", "Email", "newsletter"): 1, ("total", "(unattributed)", None): 1},
        )  # fmt: skip
    finally:
        c.close()


# ----------------------------------------------------------------------------------------- pipeline


def test_marketing_sourced_pipeline_pct(con, dictionary):
    # Jan: OP1 1000 (Paid Search first) of 1000 + 500 -> 2/3. Feb: OP3 Direct, OP4 unattributed -> 0 of 500.
    close(values(con, dictionary, "marketing_sourced_pipeline_pct"), {"2026-01-01": 1000 / 1500, "2026-02-01": 0.0})
    close(values(con, dictionary, "marketing_sourced_pipeline_pct", "total"), {"total": 1000 / 2000})
    # Enterprise: OP1 only -> 1. SMB: OP2 (Outbound first), OP3, OP4 -> 0 of 1000.
    close(
        values(con, dictionary, "marketing_sourced_pipeline_pct", "total", ("sales_segment",)),
        {("total", "Enterprise"): 1.0, ("total", "SMB"): 0.0},
    )


def test_marketing_influenced_revenue_pct(con, dictionary):
    # Won in Feb (close date): OP1 800 (Paid Search touch) and OP3 300 (Direct only) -> 800 / 1100.
    close(values(con, dictionary, "marketing_influenced_revenue_pct"), {"2026-02-01": 800 / 1100})


def test_non_marketing_groups_come_from_the_yaml(con, dictionary, tmp_path):
    raw = yaml.safe_load(DEFAULT_KPI_FILE.read_text(encoding="utf-8"))
    raw["parameters"]["non_marketing_channel_groups"] = ["Outbound Sales", "Unassigned", "(unattributed)"]
    edited = parse_kpi_dictionary(raw)
    # Direct now counts as marketing: OP3 (Direct first touch, 300) becomes sourced in February.
    close(values(con, edited, "marketing_sourced_pipeline_pct"), {"2026-01-01": 1000 / 1500, "2026-02-01": 300 / 500})


# ---------------------------------------------------------------------------------------- inventory


def test_inventory_turnover(con, dictionary):
    # Average inventory: Jan 160, Feb 110, total (160 + 110) / 2 snapshots = 135.
    close(values(con, dictionary, "average_inventory_value"), {"2026-01-01": 160, "2026-02-01": 110})
    # Turnover = COGS / average inventory: Jan 106 / 160, Feb 90 / 110; Feb 2025 has no snapshot -> NULL.
    close(
        values(con, dictionary, "inventory_turnover"),
        {"2025-02-01": None, "2026-01-01": 106 / 160, "2026-02-01": 90 / 110},
    )
    close(values(con, dictionary, "inventory_turnover", "total"), {"total": 216 / 135})
    # P1: COGS 60 + 12 - 6 + 30 = 96 over (60 + 30) / 2 = 45.
    assert values(con, dictionary, "inventory_turnover", "total", ("product_id",))[("total", "P1")] == pytest.approx(
        96 / 45
    )


# ----------------------------------------------------------------------------------- unit economics


def test_ltv_ltv_to_cac_payback(con, dictionary):
    # Lifetime gross margin: C1 (100 - 10 + 50) - (60 - 6 + 30) = 56 over Jan..Feb = 2 active months;
    # C2 (20 + 80) - (12 + 40) = 48, 1 month; C3 150 - 60 = 90, 1 month; C4 40 - 20 = 20, 1 month.
    # LTV by acquisition month: Jan (56 + 48) / 2 = 52, Feb 90, Feb 2025 20; total 214 / 4.
    close(values(con, dictionary, "ltv"), {"2025-02-01": 20, "2026-01-01": 52, "2026-02-01": 90})
    close(values(con, dictionary, "ltv", "total"), {"total": 214 / 4})
    # LTV / CAC: Jan 52 / 50, Feb 90 / 90, total 53.5 / 47.5.
    close(values(con, dictionary, "ltv_to_cac"), {"2025-02-01": None, "2026-01-01": 52 / 50, "2026-02-01": 1.0})
    close(values(con, dictionary, "ltv_to_cac", "total"), {"total": 53.5 / 47.5})
    # Monthly margin per customer: Jan 104 / 3 months; total 214 / 5. Payback = CAC / that.
    close(
        values(con, dictionary, "payback_months"), {"2025-02-01": None, "2026-01-01": 50 / (104 / 3), "2026-02-01": 1.0}
    )
    close(values(con, dictionary, "payback_months", "total"), {"total": 47.5 / (214 / 5)})


# ---------------------------------------------------------------------- attribution (channel ROI)
# Shares s = FIRST_SHARE[model] (first touch's share). Credited pipeline, total:
#   Paid Search    1000·s            (OP1 T1)
#   Outbound Sales 1000·(1-s) + 500·s (OP1 T5, OP2 T6)
#   Email          500·(1-s)         (OP2 T7)
#   Direct         300               (OP3)
#   (unattributed) 200               (OP4, no credit row)
# A zero credit is no row (Paid Search under last_touch, Email under first_touch).
# Won (close date Feb 2026): OP1 800 split s / 1-s over Paid Search / Outbound Sales, OP3 300 Direct.
# Spend: Paid Search 60 (Jan) + 90 (Feb) = 150, Paid Social 40 (Jan); no other channel has spend.


def _nonzero(rows: dict) -> dict:
    return {k: v for k, v in rows.items() if v != 0}


def test_attributed_pipeline_per_model_and_channel(con, dictionary):
    got = values(con, dictionary, "attributed_pipeline", "total", ("attribution_model", "channel_group"))
    expected = {}
    for model, s in FIRST_SHARE.items():
        per_channel = {"Paid Search": 1000 * s, "Outbound Sales": 1000 * (1 - s) + 500 * s, "Email": 500 * (1 - s),
                       "Direct": 300, "(unattributed)": 200}  # fmt: skip
        expected.update({("total", model, ch): v for ch, v in _nonzero(per_channel).items()})
    close(got, expected)
    # Spelled out: first_touch Paid Search 1000, Outbound 500 (OP2's first touch), Direct 300, unattributed 200;
    # linear 500 / 500 + 250 = 750 / 250 / 300 / 200; last_touch no Paid Search row.
    assert got[("total", "first_touch", "Outbound Sales")] == 500 and ("total", "first_touch", "Email") not in got
    assert got[("total", "linear", "Outbound Sales")] == 750 and got[("total", "linear", "Email")] == 250
    assert ("total", "last_touch", "Paid Search") not in got
    # Credits + unattributed = CRM pipeline 1000 + 500 + 300 + 200 = 2000 under every model.
    close(
        values(con, dictionary, "attributed_pipeline", "total", ("attribution_model",)),
        {("total", m): 2000 for m in ATTRIBUTION_MODELS},
    )
    # By creation month (linear): Jan OP1 + OP2, Feb OP3 + OP4.
    monthly = values(con, dictionary, "attributed_pipeline", "month", ("attribution_model", "channel_group"))
    close(
        {k: v for k, v in monthly.items() if k[1] == "linear"},
        {("2026-01-01", "linear", "Paid Search"): 500, ("2026-01-01", "linear", "Outbound Sales"): 750,
         ("2026-01-01", "linear", "Email"): 250, ("2026-02-01", "linear", "Direct"): 300,
         ("2026-02-01", "linear", "(unattributed)"): 200},
    )  # fmt: skip
    # Fractional opportunities (linear): Paid Search 0.5, Outbound 0.5 + 0.5, Email 0.5, Direct 1, unattributed 1 = 4.
    close(
        {k: v for k, v in values(con, dictionary, "attributed_opportunities", "total", ("attribution_model", "channel_group")).items() if k[1] == "linear"},
        {("total", "linear", "Paid Search"): 0.5, ("total", "linear", "Outbound Sales"): 1.0,
         ("total", "linear", "Email"): 0.5, ("total", "linear", "Direct"): 1.0, ("total", "linear", "(unattributed)"): 1.0},
    )  # fmt: skip
    # By campaign (linear): brand_search 500 (T1), newsletter 250 (T7), no campaign 750 + 300 + 200 = 1250.
    close(
        {k: v for k, v in values(con, dictionary, "attributed_pipeline", "total", ("attribution_model", "campaign_key")).items() if k[1] == "linear"},
        {("total", "linear", "brand_search"): 500, ("total", "linear", "newsletter"): 250, ("total", "linear", None): 1250},
    )  # fmt: skip


def test_attributed_revenue_and_customers_per_model_and_channel(con, dictionary):
    revenue = values(con, dictionary, "attributed_revenue", "total", ("attribution_model", "channel_group"))
    customers = values(con, dictionary, "attributed_won_deals", "total", ("attribution_model", "channel_group"))
    want_revenue, want_customers = {}, {}
    for model, s in FIRST_SHARE.items():
        rev = {"Paid Search": 800 * s, "Outbound Sales": 800 * (1 - s), "Direct": 300}
        deals = {"Paid Search": s, "Outbound Sales": 1 - s, "Direct": 1}
        want_revenue.update({("total", model, ch): v for ch, v in _nonzero(rev).items()})
        want_customers.update({("total", model, ch): v for ch, v in _nonzero(deals).items()})
    close(revenue, want_revenue)
    close(customers, want_customers)
    # OP4, the only opportunity without credits, is not won: no '(unattributed)' revenue here (see the next test).
    # Dated by the close date: both wins in Feb 2026; the won amount 800 + 300 = 1100 and 2 deals per model.
    close(
        values(con, dictionary, "attributed_revenue", "month", ("attribution_model",)),
        {("2026-02-01", m): 1100 for m in ATTRIBUTION_MODELS},
    )
    close(
        values(con, dictionary, "attributed_won_deals", "total", ("attribution_model",)),
        {("total", m): 2 for m in ATTRIBUTION_MODELS},
    )


def test_won_deal_without_credits_is_unattributed_under_every_model(dictionary):
    c = _warehouse()
    try:
        # OP5: pipeline 400 created 2026-02-16, won 350 on 2026-02-25, no credit row.
        c.execute(
            "INSERT INTO sources.crm_opportunities VALUES ('OP5', 'A5', 400, '2026-02-16', 'SMB', true, '2026-02-25', 350)"
        )
        revenue = values(c, dictionary, "attributed_revenue", "total", ("attribution_model", "channel_group"))
        customers = values(c, dictionary, "attributed_won_deals", "total", ("attribution_model", "channel_group"))
        pipeline = values(c, dictionary, "attributed_pipeline", "total", ("attribution_model", "channel_group"))
        for m in ATTRIBUTION_MODELS:
            assert revenue[("total", m, "(unattributed)")] == 350
            assert customers[("total", m, "(unattributed)")] == 1
            assert pipeline[("total", m, "(unattributed)")] == 200 + 400  # OP4 + OP5
            # Credited + unattributed = CRM won amount 800 + 300 + 350 and won deals 3.
            assert sum(v for k, v in revenue.items() if k[1] == m) == pytest.approx(1450)
            assert sum(v for k, v in customers.items() if k[1] == m) == pytest.approx(3)
    finally:
        c.close()


def test_channel_roas_broadcasts_spend_over_models(con, dictionary):
    got = values(con, dictionary, "channel_roas", "total", ("attribution_model", "channel_group"))
    expected = {}
    for model, s in FIRST_SHARE.items():
        # Spend (150 Paid Search, 40 Paid Social) is the same for every model.
        expected[("total", model, "Paid Search")] = 800 * s / 150  # 0, not NULL, under last_touch (spend, no revenue)
        expected[("total", model, "Paid Social")] = 0.0  # spend-only channel: ROAS 0
        expected[("total", model, "Direct")] = None  # revenue 300 without spend: NULL
        if s < 1:  # Outbound Sales has revenue 800·(1-s) but no spend: NULL (no row under first_touch)
            expected[("total", model, "Outbound Sales")] = None
    close(got, expected)
    assert got[("total", "first_touch", "Paid Search")] == pytest.approx(800 / 150)
    assert got[("total", "linear", "Paid Search")] == pytest.approx(400 / 150)
    assert got[("total", "last_touch", "Paid Search")] == 0.0
    # Without the channel: won 1100 over all spend 190, the same for every model.
    close(
        values(con, dictionary, "channel_roas", "total", ("attribution_model",)),
        {("total", m): 1100 / 190 for m in ATTRIBUTION_MODELS},
    )
    # Monthly (linear): January has spend but no win -> 0 for both paid channels; February Paid Search 400 / 90.
    monthly = values(con, dictionary, "channel_roas", "month", ("attribution_model", "channel_group"))
    close(
        {k: v for k, v in monthly.items() if k[1] == "linear"},
        {("2026-01-01", "linear", "Paid Search"): 0.0, ("2026-01-01", "linear", "Paid Social"): 0.0,
         ("2026-02-01", "linear", "Paid Search"): 400 / 90, ("2026-02-01", "linear", "Outbound Sales"): None,
         ("2026-02-01", "linear", "Direct"): None},
    )  # fmt: skip
    # By campaign (linear): brand_search revenue 400 (T1's share of OP1) over its spend 60 + 90; prospecting_eu 0 / 40;
    # no campaign (OP1 T5 400 + OP3 300): no spend -> NULL.
    close(
        {k: v for k, v in values(con, dictionary, "channel_roas", "total", ("attribution_model", "campaign_key")).items() if k[1] == "linear"},
        {("total", "linear", "brand_search"): 400 / 150, ("total", "linear", "prospecting_eu"): 0.0, ("total", "linear", None): None},
    )  # fmt: skip


def test_cost_per_won_deal(con, dictionary):
    got = values(con, dictionary, "cost_per_won_deal", "total", ("attribution_model", "channel_group"))
    expected = {}
    for model, s in FIRST_SHARE.items():
        # Paid Search: spend 150 over s won deals (none under last_touch -> NULL); Paid Social: no deal -> NULL;
        # Direct / Outbound Sales: deals without spend -> NULL.
        expected[("total", model, "Paid Search")] = 150 / s if s else None
        expected[("total", model, "Paid Social")] = None
        expected[("total", model, "Direct")] = None
        if s < 1:
            expected[("total", model, "Outbound Sales")] = None
    close(got, expected)
    # first_touch 150 / 1, linear 150 / 0.5 = 300, time_decay 150 / 0.4 = 375, shapley 150 / 0.6 = 250.
    assert got[("total", "linear", "Paid Search")] == pytest.approx(300)
    assert got[("total", "time_decay", "Paid Search")] == pytest.approx(375)
    # All channels: spend 190 over 2 won deals, every model.
    close(
        values(con, dictionary, "cost_per_won_deal", "total", ("attribution_model",)),
        {("total", m): 95 for m in ATTRIBUTION_MODELS},
    )


# ------------------------------------------------------------------------------------ date window


def test_between_filters_base_rows_by_event_day(con, dictionary):
    # Spend 2026-01-15 .. 2026-02-12, both days included: 40 + 90 (the 01-10 row is out).
    close(values(con, dictionary, "ad_spend", "total", between=("2026-01-15", "2026-02-12")), {"total": 130})
    row = con.execute(
        kpi_sql("ad_spend", "total", (), dictionary, between=(dt.date(2026, 1, 15), dt.date(2026, 2, 12)))
    ).fetchone()
    assert row == (None, 130.0)
    # Revenue 01-13 .. 01-25: O5 20 + O2 80 - R1 10 = 90 (R1 at 10:00 on the last day is in); 01-14 .. 01-24: 80.
    close(values(con, dictionary, "total_revenue", "total", between=("2026-01-13", "2026-01-25")), {"total": 90})
    close(values(con, dictionary, "total_revenue", "total", between=("2026-01-14", "2026-01-24")), {"total": 80})
    # Trailing 90 days up to 2026-02-15 (2025-11-18 .. 2026-02-15): everything but O0 (430 - 40), all spend 190.
    trailing = (dt.date(2026, 2, 15) - dt.timedelta(days=89), dt.date(2026, 2, 15))
    assert trailing[0] == dt.date(2025, 11, 18)
    close(values(con, dictionary, "total_revenue", "total", between=trailing), {"total": 390})
    close(values(con, dictionary, "blended_roas", "total", between=trailing), {"total": 390 / 190})
    # Month grain inside the window 01-13 .. 02-12: Jan 90, Feb O3 50 (O4 on 02-15 is out).
    close(
        values(con, dictionary, "total_revenue", "month", between=("2026-01-13", "2026-02-12")),
        {"2026-01-01": 90, "2026-02-01": 50},
    )
    # Derived KPIs filter every reference: ROAS 01-13 .. 02-12 = (90 + 50) / (40 + 90).
    close(values(con, dictionary, "blended_roas", "total", between=("2026-01-13", "2026-02-12")), {"total": 140 / 130})
    # Attributed revenue is dated by the close date: February (linear) has OP1 (02-10) and OP3 (02-20);
    # spend in February is Paid Search 90 only.
    close(
        {k: v for k, v in values(con, dictionary, "channel_roas", "total", ("attribution_model", "channel_group"), between=("2026-02-01", "2026-02-28")).items() if k[1] == "linear"},
        {("total", "linear", "Paid Search"): 400 / 90, ("total", "linear", "Outbound Sales"): None, ("total", "linear", "Direct"): None},
    )  # fmt: skip


# ------------------------------------------------------------------------------------ funnel stages
# Stages reached (see the contacts in the fixture):
#   Jan cohort K1 all six; K2 known, engaged, mql; K3 all six (account won).
#   Feb cohort K4 known..opportunity; K5 known; K6 known..opportunity (lifecycle stage).
STAGES = ["known", "engaged", "mql", "sql", "opportunity", "customer"]


def test_funnel_contacts_and_conversion_by_stage(con, dictionary):
    # Total: known 6, engaged 5 (not K5), mql 5, sql 4 (not K2), opportunity 4, customer 2 (K1, K3).
    counts = dict(zip(STAGES, [6, 5, 5, 4, 4, 2]))
    close(values(con, dictionary, "funnel_contacts", "total", ("stage",)), {("total", s): n for s, n in counts.items()})
    # Stage conversion = reached / reached the previous stage: 6/6, 5/6, 4/5, 2/4. MQL and opportunity cannot
    # be told apart from the stage before in this data set (every engaged contact reached MQL, 5 of 5; every
    # SQL contact an opportunity, 4 of 4): no conversion, not 100 %.
    close(
        values(con, dictionary, "funnel_stage_conversion", "total", ("stage",)),
        {("total", "known"): 1.0, ("total", "engaged"): 5 / 6, ("total", "mql"): None, ("total", "sql"): 4 / 5,
         ("total", "opportunity"): None, ("total", "customer"): 0.5},
    )  # fmt: skip
    close(
        values(con, dictionary, "funnel_conversion_from_known", "total", ("stage",)),
        {("total", s): n / 6 for s, n in counts.items()},
    )
    # By creation month: Jan 3, 3, 3, 2, 2, 2; Feb 3, 2, 2, 2, 2, 0.
    jan, feb = [3, 3, 3, 2, 2, 2], [3, 2, 2, 2, 2, 0]
    monthly = values(con, dictionary, "funnel_contacts", "month", ("stage",))
    close(
        monthly,
        {**{("2026-01-01", s): n for s, n in zip(STAGES, jan)}, **{("2026-02-01", s): n for s, n in zip(STAGES, feb)}},
    )
    for month in ("2026-01-01", "2026-02-01"):  # monotone: no stage has more contacts than the one before
        series = [monthly[(month, s)] for s in STAGES]
        assert series == sorted(series, reverse=True)
    close(
        values(con, dictionary, "funnel_stage_conversion", "month", ("stage",)),
        {**{("2026-01-01", s): v for s, v in zip(STAGES, [1, 1, None, 2 / 3, None, 1])},
         **{("2026-02-01", s): v for s, v in zip(STAGES, [1, 2 / 3, None, 1, None, 0])}},
    )  # fmt: skip
    # By first-touch channel: Paid Search K1, K4; Email K2, K3; Outbound Sales K5 (sales touch only); none K6.
    by_channel = {
        "Paid Search": [2, 2, 2, 2, 2, 1],
        "Email": [2, 2, 2, 1, 1, 1],
        "Outbound Sales": [1, 0, 0, 0, 0, 0],
        "(unattributed)": [1, 1, 1, 1, 1, 0],
    }
    close(
        values(con, dictionary, "funnel_contacts", "total", ("channel_group", "stage")),
        {("total", ch, s): n for ch, ns in by_channel.items() for s, n in zip(STAGES, ns)},
    )


def test_funnel_flags_stages_the_data_cannot_tell_apart_from_the_one_before(con, dictionary):
    flags = stage_distinguishability(con, dictionary).set_index("stage")
    assert list(flags.index) == STAGES and list(flags["stage_order"]) == [1, 2, 3, 4, 5, 6]
    assert flags["stage_distinguishable"].to_dict() == {
        "known": True, "engaged": True, "mql": False, "sql": True, "opportunity": False, "customer": True,
    }  # fmt: skip
    note = "all {} contacts that reached the previous stage (all cohorts and channels) also reached this one"
    assert flags.loc["mql", "stage_note"] == note.format(5)
    assert flags.loc["opportunity", "stage_note"] == note.format(4)
    assert flags.loc[flags["stage_distinguishable"], "stage_note"].isna().all()


def test_a_lead_date_set_at_creation_is_not_engagement(dictionary):
    c = _warehouse()
    # K7 was created as a lead (lead date = creation) and has no touch: known only. K8 became a lead a week
    # after it was created, without a touch or an MQL date: engaged, and the one engaged contact without an MQL.
    c.executemany(
        "INSERT INTO sources.crm_contacts VALUES (?, ?, ?, NULL, NULL, NULL, ?, 'lead')",
        [("K7", "A7", "2026-02-21 10:00", "2026-02-21 10:00"), ("K8", "A8", "2026-02-28", "2026-02-21")],
    )
    counts = dict(zip(STAGES, [8, 6, 5, 4, 4, 2]))
    close(values(c, dictionary, "funnel_contacts", "total", ("stage",)), {("total", s): n for s, n in counts.items()})
    conversion = values(c, dictionary, "funnel_stage_conversion", "total", ("stage",))
    assert conversion[("total", "engaged")] == pytest.approx(6 / 8) and conversion[("total", "mql")] == pytest.approx(5 / 6)
    assert stage_distinguishability(c, dictionary).set_index("stage").loc["mql", "stage_distinguishable"]


def test_a_stage_only_implied_by_later_stages_is_not_distinguishable(dictionary):
    c = _warehouse()
    c.execute("UPDATE sources.crm_contacts SET sql_date = NULL")  # a CRM without SQL dates
    flags = stage_distinguishability(c, dictionary).set_index("stage")
    assert not flags.loc["sql", "stage_distinguishable"]
    assert flags.loc["sql", "stage_note"] == "no contact has a signal of its own for this stage: it is only implied by later stages"
    # SQL is still reached by the contacts with an opportunity or a won deal (K1, K3, K4, K6): the count stays.
    assert values(c, dictionary, "funnel_contacts", "total", ("stage",))[("total", "sql")] == 4
    assert values(c, dictionary, "funnel_stage_conversion", "total", ("stage",))[("total", "sql")] is None


def test_funnel_channel_of_two_first_touches_at_the_same_time_is_the_first_group_by_name(dictionary):
    c = _warehouse()  # K5's only touch is an Outbound Sales touch; a second touch at the same moment in 'Email' wins the tie
    c.execute("INSERT INTO touchpoints.touchpoints VALUES ('T11', 'K5', '2026-02-16', 'Email', 'marketing', 'A5', NULL)")
    known = {k[1]: v for k, v in values(c, dictionary, "funnel_contacts", "total", ("channel_group", "stage")).items() if k[2] == "known"}
    assert known == {"Paid Search": 2, "Email": 3, "(unattributed)": 1}


# -------------------------------------------------------------------------------- cohorts, retention
# Customers (first sale, second sale day, days observed up to the latest order 2026-02-15):
#   C1 2026-01-05, 2026-02-10 (36 days), 41 days;  C2 2026-01-13, 2026-01-20 (7 days), 33 days;
#   C3 2026-02-15, none, 0 days;                   C4 2025-02-03, none, 377 days.


def test_repeat_rates_only_count_customers_observed_long_enough(con, dictionary):
    # 30 days: observed >= 30 are C1, C2, C4; of those C2 repeated within 30 days -> 1 / 3.
    close(values(con, dictionary, "repeat_rate_30d", "total"), {"total": 1 / 3})
    # By cohort: Feb 2025 C4 0 / 1; Jan 2026 C2 of C1, C2 -> 1 / 2; Feb 2026 C3 observed 0 days -> NULL.
    close(values(con, dictionary, "repeat_rate_30d"), {"2025-02-01": 0.0, "2026-01-01": 0.5, "2026-02-01": None})
    # 60 / 90 days: only C4 is observed that long and it never repeated -> 0. C1 (36 days) and C2 (7 days)
    # repeated within 60 days but are not observed 60 days: they count in neither numerator nor denominator.
    close(values(con, dictionary, "repeat_rate_60d", "total"), {"total": 0.0})
    close(values(con, dictionary, "repeat_rate_90d", "total"), {"total": 0.0})
    close(values(con, dictionary, "repeat_rate_60d"), {"2025-02-01": 0.0, "2026-01-01": None, "2026-02-01": None})


def test_cohort_customers_and_ltv_by_months_since_acquisition(con, dictionary):
    # Observable months: C1, C2 (Jan 2026) 0..1; C3 (Feb 2026) 0; C4 (Feb 2025) 0..12.
    # Cumulative gross margin: C1 m0 (100 - 10) - (60 - 6) = 36, m1 36 + (50 - 30) = 56; C2 m0 100 - 52 = 48, m1 48;
    # C3 m0 150 - 60 = 90; C4 m0..m12 40 - 20 = 20.
    total_customers = {0: 4, 1: 3, **{m: 1 for m in range(2, 13)}}
    close(
        values(con, dictionary, "cohort_customers", "total", ("months_since_acquisition",)),
        {("total", m): n for m, n in total_customers.items()},
    )
    close(
        values(con, dictionary, "cohort_ltv", "total", ("months_since_acquisition",)),
        {
            ("total", 0): (36 + 48 + 90 + 20) / 4,
            ("total", 1): (56 + 48 + 20) / 3,
            **{("total", m): 20 for m in range(2, 13)},
        },
    )
    # By cohort month: Jan 2026 m0 (36 + 48) / 2 = 42, m1 (56 + 48) / 2 = 52 (= LTV of the Jan cohort);
    # Feb 2026 m0 90; Feb 2025 20 in every month.
    close(
        values(con, dictionary, "cohort_customers", "month", ("months_since_acquisition",)),
        {("2026-01-01", 0): 2, ("2026-01-01", 1): 2, ("2026-02-01", 0): 1, **{("2025-02-01", m): 1 for m in range(13)}},
    )
    close(
        values(con, dictionary, "cohort_ltv", "month", ("months_since_acquisition",)),
        {
            ("2026-01-01", 0): 42,
            ("2026-01-01", 1): 52,
            ("2026-02-01", 0): 90,
            **{("2025-02-01", m): 20 for m in range(13)},
        },
    )
    # Active (a sale in month m): m0 all 4, m1 only C1 (O3), later none. Cumulative revenue m1: 140 + 100 + 40.
    active = values(con, dictionary, "cohort_active_customers", "total", ("months_since_acquisition",))
    assert active[("total", 0)] == 4 and active[("total", 1)] == 1 and active[("total", 5)] == 0
    cumulative = values(con, dictionary, "cohort_cumulative_revenue", "total", ("months_since_acquisition",))
    assert cumulative[("total", 0)] == 90 + 100 + 150 + 40 and cumulative[("total", 1)] == 280


def test_new_customers_cac_ltv_by_acquisition_channel(con, dictionary):
    # Acquisition channel: C1 Paid Search, C2 Paid Social (its last touch before the first sale), C3 (touch after
    # the first sale) and C4 (no account) unattributed.
    close(
        values(con, dictionary, "new_customers", "month", ("channel_group",)),
        {("2025-02-01", "(unattributed)"): 1, ("2026-01-01", "Paid Search"): 1, ("2026-01-01", "Paid Social"): 1,
         ("2026-02-01", "(unattributed)"): 1},
    )  # fmt: skip
    close(
        values(con, dictionary, "new_customers", "total", ("channel_group",)),
        {("total", "Paid Search"): 1, ("total", "Paid Social"): 1, ("total", "(unattributed)"): 2},
    )
    # CAC = channel spend / channel new customers: Paid Search 150 / 1, Paid Social 40 / 1, unattributed no spend.
    close(
        values(con, dictionary, "cac", "total", ("channel_group",)),
        {("total", "Paid Search"): 150, ("total", "Paid Social"): 40, ("total", "(unattributed)"): None},
    )
    # Monthly: Jan Paid Search 60 / 1, Paid Social 40 / 1; Feb 2026 Paid Search spend 90 but no new customer -> NULL.
    close(
        values(con, dictionary, "cac", "month", ("channel_group",)),
        {("2025-02-01", "(unattributed)"): None, ("2026-01-01", "Paid Search"): 60, ("2026-01-01", "Paid Social"): 40,
         ("2026-02-01", "Paid Search"): None, ("2026-02-01", "(unattributed)"): None},
    )  # fmt: skip
    # LTV: Paid Search C1 56, Paid Social C2 48, unattributed (C3 90 + C4 20) / 2.
    close(
        values(con, dictionary, "ltv", "total", ("channel_group",)),
        {("total", "Paid Search"): 56, ("total", "Paid Social"): 48, ("total", "(unattributed)"): 55},
    )


# ------------------------------------------------------------------------------------------ batching


class _CountingConnection:
    """Delegates to a DuckDB connection and counts the statements executed and those reading a warehouse table
    (a scan of a base relation's sources; a statement reading only the scope's TEMP tables is not one)."""

    def __init__(self, con):
        self.con, self.statements, self.scans = con, 0, 0

    def execute(self, sql, *args, **kwargs):
        self.statements += 1
        self.scans += bool(re.search(r'"(sources|spend|identity|touchpoints|attribution|mmm)"\."', sql))
        return self.con.execute(sql, *args, **kwargs)


@pytest.mark.parametrize(
    ("names", "grain", "dims", "scans"),
    [
        # revenue_lines (2 KPIs), customers (4), spend_days (2), leads (2), sessions (1); derived roas and cac read
        # the values computed for their references: no scan of their own
        (["total_revenue", "cogs", "new_customers", "ltv", "monthly_margin_per_customer", "repeat_rate_30d",
          "ad_spend", "cost_per_platform_conversion", "new_leads", "mql_conversion_rate", "conversion_rate_session_to_lead", "blended_roas", "cac"],
         "month", (), 5),
        # credited_pipeline (2), credited_wins (2); derived channel_roas, cost_per_won_deal: no scan of their own (ad_spend: 1)
        (["attributed_pipeline", "attributed_opportunities", "attributed_revenue", "attributed_won_deals",
          "channel_roas", "cost_per_won_deal"], "total", ("attribution_model", "channel_group"), 3),
        # funnel_stages (3), customer_months (5)
        (["funnel_contacts", "funnel_stage_conversion", "funnel_conversion_from_known"], "month", ("channel_group", "stage"), 1),
        (["cohort_customers", "cohort_active_customers", "cohort_cumulative_revenue", "cohort_cumulative_margin",
          "cohort_ltv"], "month", ("channel_group", "months_since_acquisition"), 1),
    ],
)  # fmt: skip
def test_batching_gives_the_same_numbers_as_one_by_one(con, dictionary, names, grain, dims, scans):
    counting = _CountingConnection(con)
    batched = compute_kpis(counting, names, grain, dims, dictionary=dictionary)
    assert counting.scans == scans  # one scan per base and dimension set, none per derived KPI
    single = pd.concat([compute_kpis(con, [n], grain, dims, dictionary=dictionary) for n in names], ignore_index=True)
    key = ["kpi", "period", *[c for c in batched.columns if c not in ("kpi", "period", "value", "unit")]]
    batched = batched.sort_values(key, na_position="first").reset_index(drop=True)
    single = single.reindex(columns=batched.columns).sort_values(key, na_position="first").reset_index(drop=True)
    assert set(batched["kpi"]) == set(names)
    pd.testing.assert_frame_equal(batched, single, check_dtype=False)


def test_derived_dimension_must_exist_in_a_referenced_kpi():
    raw = _raw()
    # CPL = ad_spend / new_leads: neither has an attribution model.
    _kpi(raw, "cost_per_lead")["grains"] = ["month", "channel_group", "attribution_model"]
    with pytest.raises(
        KpiDictionaryError,
        match=r"KPI 'cost_per_lead': field 'grains' has dimension 'attribution_model', which no referenced KPI has",
    ):
        parse_kpi_dictionary(raw)
    # One referenced KPI having the dimension is enough (ad_spend has no model; attributed_revenue has).
    raw = _raw()
    assert "attribution_model" not in _kpi(raw, "ad_spend")["grains"]
    parse_kpi_dictionary(raw)
    # Time grains must be allowed for every referenced KPI.
    _kpi(raw, "ad_spend")["grains"] = ["week", "month", "total", "platform", "channel_group", "campaign_key"]
    with pytest.raises(
        KpiDictionaryError, match=r"KPI 'blended_roas': field 'grains' has \['day'\], not allowed for referenced KPI 'ad_spend'"
    ):
        parse_kpi_dictionary(raw)


# ------------------------------------------------------------------------------------ long form, all


def test_compute_all_kpis_long_form(con, dictionary):
    df = compute_kpis(con, None, "month", dictionary=dictionary)
    assert list(df.columns[:1]) == ["period"] and list(df.columns[-3:]) == ["kpi", "value", "unit"]
    assert {"product_id", "sales_channel"} <= set(df.columns)  # breakdown dimensions of the by-X KPIs
    month_kpis = {k.name for k in dictionary if "month" in k.grains}
    assert set(df["kpi"]) == month_kpis
    assert df.loc[df["kpi"] == "blended_roas", "unit"].unique().tolist() == ["ratio"]
    with pytest.raises(ValueError, match="no dimension"):
        compute_kpis(con, ["blended_roas"], "month", ("product_id",), dictionary=dictionary)


# -------------------------------------------------------------------------------- editing the YAML


def _raw() -> dict:
    return yaml.safe_load(DEFAULT_KPI_FILE.read_text(encoding="utf-8"))


def _kpi(raw: dict, name: str) -> dict:
    return next(k for k in raw["kpis"] if k["name"] == name)


def test_editing_the_yaml_formula_changes_the_output(con, dictionary, tmp_path: Path):
    raw = _raw()
    _kpi(raw, "total_revenue")["formula"] = "sum(gross_sales)"
    _kpi(raw, "total_revenue")["version"] = 2
    path = tmp_path / "kpis.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    edited = load_kpi_dictionary(path)
    assert edited["total_revenue"].version == 2
    # Sales only: Jan 100 + 20 + 80 = 200 (the 10 return no longer subtracts), Feb 200, Feb 2025 40.
    close(values(con, edited, "total_revenue"), {"2025-02-01": 40, "2026-01-01": 200, "2026-02-01": 200})
    close(values(con, dictionary, "total_revenue"), {"2025-02-01": 40, "2026-01-01": 190, "2026-02-01": 200})
    # Everything derived from total_revenue follows: MoM Feb is now (200 - 200) / 200 = 0, ROAS Jan 200 / 100.
    close(values(con, edited, "revenue_growth_mom"), {"2025-02-01": None, "2026-01-01": None, "2026-02-01": 0.0})
    assert values(con, edited, "blended_roas")["2026-01-01"] == pytest.approx(2.0)
    assert dictionary_frame(edited).set_index("name").loc["total_revenue", "formula"] == "sum(gross_sales)"


def test_editing_a_growth_lag_changes_the_output(con, tmp_path: Path):
    raw = _raw()
    _kpi(raw, "revenue_growth_mom")["formula"] = "{kpi:total_revenue} / nullif({kpi:total_revenue|lag=1}, 0)"
    edited = parse_kpi_dictionary(raw)
    assert values(con, edited, "revenue_growth_mom")["2026-02-01"] == pytest.approx(200 / 190)


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: _kpi(r, "blended_roas").pop("owner"), r"KPI 'blended_roas': field 'owner' is missing"),
        (lambda r: r["kpis"].append(copy.deepcopy(_kpi(r, "cac"))), r"KPI 'cac': field 'name' is duplicated"),
        (lambda r: _kpi(r, "cost_per_platform_conversion").update(base="ad_clicks"), r"KPI 'cost_per_platform_conversion': field 'base' is unknown: 'ad_clicks'"),
        (lambda r: _kpi(r, "cost_per_platform_conversion").update(version="2"), r"KPI 'cost_per_platform_conversion': field 'version' must be a positive integer"),
        (
            lambda r: _kpi(r, "cost_per_platform_conversion").update(grains=["month", "product_id"]),
            r"KPI 'cost_per_platform_conversion': field 'grains' has \['product_id'\]",
        ),
        (
            lambda r: _kpi(r, "cost_per_platform_conversion").update(grains=["quarter"]),
            r"KPI 'cost_per_platform_conversion': field 'grains' must include at least one time grain",
        ),
        (lambda r: _kpi(r, "cost_per_platform_conversion").update(unit="dollars"), r"KPI 'cost_per_platform_conversion': field 'unit' must be one of"),
        (
            lambda r: _kpi(r, "blended_roas").update(formula="{kpi:revenue} / {kpi:ad_spend}"),
            r"KPI 'blended_roas': field 'formula' references unknown KPI 'revenue'",
        ),
        (lambda r: _kpi(r, "total_revenue").update(formula="{kpi:blended_roas}", base="derived"), r"reference cycle"),
        (
            lambda r: _kpi(r, "cost_per_platform_conversion").update(source_assets=["sources/web_sessions"]),
            r"KPI 'cost_per_platform_conversion': field 'source_assets' lacks",
        ),
        (
            lambda r: _kpi(r, "blended_roas").update(target={"value": "high", "direction": "higher_is_better"}),
            r"KPI 'blended_roas': field 'target' value must be a number",
        ),
        (
            lambda r: _kpi(r, "revenue_growth_mom").update(grains=["month", "total"]),
            r"KPI 'revenue_growth_mom': field 'grains' includes 'total'",
        ),
        (
            lambda r: _kpi(r, "blended_roas").update(formula="{kpi:revenue_by_product} / nullif({kpi:ad_spend}, 0)"),
            r"KPI 'blended_roas': field 'breakdown' lacks \['product_id'\]",
        ),
        (lambda r: r.update(version=99), r"dictionary: field 'changelog' has no entry for version 99"),
    ],
)
def test_validation_errors_name_kpi_and_field(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(KpiDictionaryError, match=message):
        parse_kpi_dictionary(raw)


def test_validation_error_from_a_file(tmp_path: Path):
    raw = _raw()
    del _kpi(raw, "ltv")["formula"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KpiDictionaryError, match=r"KPI 'ltv': field 'formula' is missing"):
        load_kpi_dictionary(path)


def test_changelog_dates_parse(dictionary):
    assert all(isinstance(e["date"], (dt.date, str)) for e in dictionary.changelog)


def test_missing_optional_sources_are_skipped_on_request(con, dictionary):
    assert kpi_tables("blended_roas", dictionary) == ["sources.erp_orders", "sources.erp_products", "spend.ad_spend_daily"]
    assert missing_tables(con, "blended_roas", dictionary) == []
    empty = duckdb.connect()
    empty.execute("CREATE SCHEMA spend")
    empty.execute(
        "CREATE TABLE spend.ad_spend_daily (date_day DATE, platform VARCHAR, channel_group VARCHAR, campaign_name VARCHAR, "
        "spend DOUBLE, clicks DOUBLE, conversions DOUBLE)"
    )
    assert missing_tables(empty, "blended_roas", dictionary) == ["sources.erp_orders", "sources.erp_products"]
    with pytest.raises(duckdb.CatalogException):
        compute_kpis(empty, ["blended_roas"], "month", dictionary=dictionary)
    df = compute_kpis(empty, ["blended_roas", "ad_spend"], "month", dictionary=dictionary, skip_missing=True)
    assert df.empty and list(df.columns) == ["period", "kpi", "value", "unit"]


# ----------------------------------------------------------------- one name per question (dictionary v3)


def test_mmm_returns_by_channel_group(con, dictionary):
    # Paid Social: ROI (150 + 300) / (100 + 300); marginal ROI spend-weighted (1.2 × 100 + 0.8 × 300) / 400.
    close(values(con, dictionary, "mmm_roi", "total", ("channel_group",)), {("total", "Paid Search"): 3.0, ("total", "Paid Social"): 1.125})
    close(values(con, dictionary, "mmm_marginal_roi", "total", ("channel_group",)), {("total", "Paid Search"): 2.0, ("total", "Paid Social"): 0.9})
    close(values(con, dictionary, "mmm_marginal_roi_low", "total", ("channel_group",)), {("total", "Paid Search"): 1.5, ("total", "Paid Social"): 0.6})
    close(values(con, dictionary, "mmm_marginal_roi_high", "total", ("channel_group",)), {("total", "Paid Search"): 2.5, ("total", "Paid Social"): 1.1})
    close(values(con, dictionary, "mmm_marginal_roi_gap_high", "total", ("channel_group",)), {("total", "Paid Search"): 1.8, ("total", "Paid Social"): -0.4})
    # An interval end is one group's: over several groups it is undefined, not a sum.
    close(values(con, dictionary, "mmm_marginal_roi_high", "total"), {"total": None})


def test_budget_plan_kpis(con, dictionary):
    close(values(con, dictionary, "plan_current_spend", "total", ("channel_group",)), {("total", "Paid Search"): 50, ("total", "Paid Social"): 50})
    close(values(con, dictionary, "planned_spend", "total", ("channel_group",)), {("total", "Paid Search"): 75, ("total", "Paid Social"): 25})
    close(values(con, dictionary, "planned_spend_change_pct", "total", ("channel_group",)), {("total", "Paid Search"): 0.5, ("total", "Paid Social"): -0.5})


def test_paid_media_roas_counts_only_groups_with_ad_spend(con, dictionary):
    # Won: OP1 800 (first touch Paid Search, second Outbound Sales), OP3 300 (Direct). Ad spend 190 in total.
    got = values(con, dictionary, "paid_attributed_revenue", "total", ("attribution_model",))
    close({k: v for k, v in got.items() if k[1] in ("first_touch", "linear", "last_touch")},
          {("total", "first_touch"): 800, ("total", "linear"): 400, ("total", "last_touch"): 0})
    got = values(con, dictionary, "paid_media_roas", "total", ("attribution_model",))
    assert got[("total", "linear")] == pytest.approx(400 / 190) and got[("total", "first_touch")] == pytest.approx(800 / 190)
    assert values(con, dictionary, "blended_roas", "total") == pytest.approx({"total": 430 / 190})


def test_cost_per_opportunity(con, dictionary):
    # Paid Search spend 150; linear credits OP1's first touch (Paid Search) half an opportunity.
    got = values(con, dictionary, "cost_per_opportunity", "total", ("attribution_model", "channel_group"))
    assert got[("total", "linear", "Paid Search")] == pytest.approx(300.0)
    assert got[("total", "first_touch", "Paid Search")] == pytest.approx(150.0)


def test_lead_channel_counts_a_touch_on_the_lead_day():
    # K3 became a lead on 2026-01-25 (a date: midnight); a Paid Social touch at 14:00 that day is its lead source.
    c = _warehouse()
    c.execute("INSERT INTO touchpoints.touchpoints VALUES ('T11', 'K3', '2026-01-25 14:00:00', 'Paid Social', 'web', 'A3', 'prospecting_eu')")
    dictionary = load_kpi_dictionary()
    got = values(c, dictionary, "new_leads", "total", ("channel_group",))
    assert got[("total", "Paid Social")] == 1 and ("total", "(unattributed)") not in got


# Touches at the same moment: the last touch is the last in touch order (time, then marketing < sales < web, then
# touchpoint id), whatever order the rows are stored in. A bare timestamp key let DuckDB pick any of them, a different
# one from run to run on a large warehouse, so an extract and the check recomputing it disagreed by a lead or a customer.
SAME_TIME_LEAD_TOUCHES = {
    # K3 became a lead on 2026-01-25 without a touch; two touches on that day at 09:00.
    "web after marketing": ([("T11", "Paid Social", "web", "prospecting_eu"), ("T12", "Paid Search", "marketing", "brand_search")],
                            ("Paid Social", "prospecting_eu")),
    "sales after marketing": ([("T11", "Outbound Sales", "sales", None), ("T12", "Paid Search", "marketing", "brand_search")],
                              ("Outbound Sales", None)),
    "same type: higher id": ([("T12", "Events", "marketing", None), ("T11", "Email", "marketing", "newsletter")], ("Events", None)),
}  # fmt: skip


@pytest.mark.parametrize("stored", ["as listed", "reversed"])
@pytest.mark.parametrize("case", list(SAME_TIME_LEAD_TOUCHES))
def test_lead_channel_and_campaign_of_touches_at_the_same_time_follow_the_touch_order(dictionary, case, stored):
    touches, (group, campaign) = SAME_TIME_LEAD_TOUCHES[case]
    c = _warehouse()
    for touch, touch_group, kind, touch_campaign in touches if stored == "as listed" else touches[::-1]:
        c.execute("INSERT INTO touchpoints.touchpoints VALUES (?, 'K3', '2026-01-25 09:00', ?, ?, 'A3', ?)",
                  [touch, touch_group, kind, touch_campaign])  # fmt: skip
    by_campaign = values(c, dictionary, "new_leads", "total", ("channel_group", "campaign_key"))
    assert by_campaign[("total", group, campaign)] == 1 and ("total", "(unattributed)", None) not in by_campaign
    # the campaign rows of a group add up to the group (one touch gives both)
    by_group = values(c, dictionary, "new_leads", "total", ("channel_group",))
    assert by_group == {g: sum(v for k, v in by_campaign.items() if k[1] == g[1]) for g in by_group}


@pytest.mark.parametrize("stored", ["as listed", "reversed"])
def test_acquisition_channel_of_touches_at_the_same_time_follows_the_touch_order(dictionary, stored):
    # C3 (account A3, first sale 2026-02-15 10:00) had no touch before it; two touches of K3 at the same moment
    # before the first sale: the sales touch comes after the marketing touch.
    touches = [("T11", "Outbound Sales", "sales"), ("T12", "Events", "marketing")]
    c = _warehouse()
    for touch, group, kind in touches if stored == "as listed" else touches[::-1]:
        c.execute("INSERT INTO touchpoints.touchpoints VALUES (?, 'K3', '2026-02-14 09:00', ?, ?, 'A3', NULL)", [touch, group, kind])
    got = values(c, dictionary, "new_customers", "month", ("channel_group",))
    assert got[("2026-02-01", "Outbound Sales")] == 1 and ("2026-02-01", "Events") not in got


def test_finance_marketing_spend_by_channel_group(con, dictionary):
    got = values(con, dictionary, "finance_marketing_spend", "month", ("channel_group",))
    close(got, {("2026-01-01", "Events"): 500, ("2026-02-01", "Paid Search"): 120, ("2026-02-01", "Unassigned"): 7})



# ------------------------------------------------------------------------------------------ customer months


def test_customer_months_rows_over_gaps_returns_and_lines_before_the_first_sale():
    """One customer, first sale 2026-01-10 (month 0); the latest order month of the data is 2026-06 (month 5):
    a return in 2025-12 (before the first sale: not counted), sale 100 in month 0, nothing in months 1 and 2,
    a return of 30 in month 3 (not active), sale 50 + return 20 in month 4 (active), nothing in month 5.
    Cost 0.5 a unit (one unit a line): margin month 0 100 - 0.5, month 3 -30 + 0.5, month 4 50 - 20 - 0.5 + 0.5."""
    c = duckdb.connect()
    for schema in ("sources", "identity", "touchpoints"):
        c.execute(f"CREATE SCHEMA {schema}")
    _create(c, "sources.erp_products", "product_id VARCHAR, product_name VARCHAR, category VARCHAR, unit_cost DECIMAL(38,10)", [("P", "P", "A", 0.5)])
    _create(c, "sources.erp_orders", "order_id VARCHAR, line_number INTEGER, order_date TIMESTAMP, transaction_type VARCHAR, "
            "customer_id VARCHAR, product_id VARCHAR, quantity INTEGER, amount DECIMAL(38,10), sales_channel VARCHAR",
            [("R0", 1, "2025-12-20", "return", "C", "P", 1, 7, "web"), ("S1", 1, "2026-01-10", "sale", "C", "P", 1, 100, "web"),
             ("R1", 1, "2026-04-03", "return", "C", "P", 1, 30, "web"), ("S2", 1, "2026-05-02", "sale", "C", "P", 1, 50, "web"),
             ("R2", 1, "2026-05-09", "return", "C", "P", 1, 20, "web"), ("X", 1, "2026-06-30", "sale", "Z", "P", 1, 1, "web")])  # fmt: skip
    _create(c, "identity.accounts_resolved", "account_id VARCHAR, customer_id VARCHAR", [])
    _create(c, "touchpoints.touchpoints", "touchpoint_id VARCHAR, contact_id VARCHAR, touchpoint_date TIMESTAMP, channel_group VARCHAR, "
            f"touchpoint_type VARCHAR, account_id VARCHAR, campaign_key VARCHAR, type_order INTEGER GENERATED ALWAYS AS ({TYPE_ORDER_SQL})", [])
    rows = c.execute(
        f"""SELECT months_since_acquisition, cumulative_revenue::DOUBLE, cumulative_gross_margin::DOUBLE, is_active, channel_group
            FROM ({KpiScope(c).base_sql("customer_months")}) WHERE customer_id = 'C' ORDER BY 1"""
    ).fetchall()
    assert rows == [
        (0, 100.0, 99.5, True, "(unattributed)"),
        (1, 100.0, 99.5, False, "(unattributed)"),
        (2, 100.0, 99.5, False, "(unattributed)"),
        (3, 70.0, 70.0, False, "(unattributed)"),
        (4, 100.0, 100.0, True, "(unattributed)"),
        (5, 100.0, 100.0, False, "(unattributed)"),
    ]
    c.close()


# ------------------------------------------------------------------------------------------ scope


EXECUTIVE_NAMES = ["total_revenue", "gross_margin_pct", "revenue_growth_mom", "blended_roas", "cac", "new_leads", "cost_per_lead"]


@pytest.mark.parametrize("materialize", [False, True])
@pytest.mark.parametrize(
    ("names", "grain", "dims", "between"),
    [
        (EXECUTIVE_NAMES, "month", (), None),
        (["attributed_pipeline", "attributed_revenue", "channel_roas", "cost_per_won_deal", "paid_media_roas"], "total",
         ("attribution_model",), (dt.date(2026, 1, 16), dt.date(2026, 2, 28))),
        (["funnel_contacts", "funnel_stage_conversion"], "trailing_3_months", ("stage",), None),
        (["funnel_contacts", "funnel_stage_conversion"], "trailing_3_months", ("stage",), (dt.date(2026, 1, 1), dt.date(2026, 1, 31))),
        (["cohort_customers", "cohort_ltv"], "month", ("channel_group", "months_since_acquisition"), None),
    ],
)  # fmt: skip
def test_a_scope_gives_the_numbers_of_separate_calls(con, dictionary, names, grain, dims, between, materialize):
    alone = compute_kpis(con, names, grain, dims, dictionary=dictionary, between=between)
    with KpiScope(con, dictionary, materialize_bases=materialize) as scope:
        compute_kpis(con, names[:1], grain, dims, dictionary=dictionary, between=between, scope=scope)  # computed before, reused
        shared = compute_kpis(con, names, grain, dims, dictionary=dictionary, between=between, scope=scope)
    pd.testing.assert_frame_equal(shared, alone)


def test_a_scope_builds_each_base_once_and_drops_its_tables(con, dictionary):
    counting = _CountingConnection(con)
    before = set(con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall())
    with KpiScope(counting, dictionary, materialize_bases=True) as scope:
        for grain in ("week", "month", "total"):
            compute_kpis(counting, ["total_revenue", "gross_margin_pct", "ad_spend"], grain, (), dictionary=dictionary, scope=scope)
        compute_kpis(counting, ["total_revenue"], "month", ("category",), dictionary=dictionary, scope=scope)
        assert counting.scans == 2  # revenue_lines and spend_days, each built once
        assert "FROM temp." in scope.base_sql("revenue_lines")
    after = set(con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall())
    assert after == before


def test_a_derived_kpi_reads_its_references_computed_once(con, dictionary):
    # cac and ltv_to_cac both need new_customers and ad_spend; payback_months needs cac: ad_spend and the customers'
    # KPIs are computed once each: one scan of spend_days, one of customers for new_customers, ltv and monthly margin.
    counting = _CountingConnection(con)
    names = ["cac", "ltv_to_cac", "payback_months", "new_customers"]
    together = compute_kpis(counting, names, "month", (), dictionary=dictionary)
    assert counting.scans == 2
    alone = pd.concat([compute_kpis(con, [n], "month", (), dictionary=dictionary) for n in names], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone.sort_values(["kpi", "period"], kind="stable").reset_index(drop=True))
    # hand-computed: January: spend 100, new customers C1, C2 -> cac 50; February: spend 90, C3 -> 90
    cac = together[together["kpi"] == "cac"].set_index("period")["value"]
    assert cac[pd.Timestamp("2026-01-01")] == 50 and cac[pd.Timestamp("2026-02-01")] == 90


def test_a_base_made_of_its_dependency_rows_has_exactly_one_dependency():
    # KpiScope restricts such a base to a date range by restricting its dependency (see BaseRelation.rows_of_dependency)
    flagged = [b for b in BASE_RELATIONS.values() if b.rows_of_dependency]
    assert flagged and all(len(b.depends_on) == 1 for b in flagged)
