"""Metric dictionary: every KPI against hand-computed values on a tiny in-memory warehouse, validation, YAML edits."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from marketing_assets.lib.kpis import (
    BASE_RELATIONS,
    DEFAULT_KPI_FILE,
    KpiDictionaryError,
    base_relations_sql,
    compute_kpis,
    dictionary_frame,
    kpi_sql,
    kpi_tables,
    load_kpi_dictionary,
    missing_tables,
    parse_kpi_dictionary,
)

REQUIRED_KPIS = [
    "total_revenue", "revenue_growth_wow", "revenue_growth_mom", "revenue_growth_yoy", "revenue_by_product",
    "revenue_by_channel", "gross_margin_pct", "margin_by_product", "roas", "cac", "cpl", "cpa",
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


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    """Tiny warehouse with only the columns the base relations read."""
    c = duckdb.connect()
    for schema in ("sources", "identity", "attribution", "touchpoints"):
        c.execute(f"CREATE SCHEMA {schema}")
    _create(c, "sources.erp_products", "product_id VARCHAR, product_name VARCHAR, category VARCHAR, unit_price DECIMAL(38,10), unit_cost DECIMAL(38,10)",
            [("P1", "Widget", "A", 10, 6), ("P2", "Gadget", "B", 40, 20)])  # fmt: skip
    _create(c, "sources.erp_orders", "order_id VARCHAR, line_number INTEGER, order_date TIMESTAMP, transaction_type VARCHAR, "
            "customer_id VARCHAR, product_id VARCHAR, quantity INTEGER, amount DECIMAL(38,10), sales_channel VARCHAR", ORDERS)  # fmt: skip
    # Month-end snapshots: Jan P1 60 + P2 100 = 160; Feb P1 30 + P2 (no value: 4 on hand × cost 20 = 80) = 110.
    _create(c, "sources.erp_inventory", "snapshot_date DATE, product_id VARCHAR, location_id VARCHAR, quantity_on_hand INTEGER, inventory_value DECIMAL(38,10)",
            [("2026-01-31", "P1", "L1", 10, 60), ("2026-01-31", "P2", "L1", 5, 100),
             ("2026-02-28", "P1", "L1", 5, 30), ("2026-02-28", "P2", "L1", 4, None)])  # fmt: skip
    _create(c, "identity.ad_spend_daily", "date_day DATE, platform VARCHAR, channel_group VARCHAR, spend DOUBLE, clicks DOUBLE, conversions DOUBLE",
            [("2026-01-10", "google_ads", "Paid Search", 60, 30, 3), ("2026-01-15", "meta_ads", "Paid Social", 40, 20, 1),
             ("2026-02-12", "google_ads", "Paid Search", 90, 45, 3)])  # fmt: skip
    # Leads: K1..K3 in January, K4 in February; K5 never became a lead.
    _create(c, "sources.crm_contacts", "contact_id VARCHAR, account_id VARCHAR, lead_date TIMESTAMP, mql_date TIMESTAMP, sql_date TIMESTAMP, customer_date TIMESTAMP",
            [("K1", "A1", "2026-01-03", "2026-01-10", "2026-01-20", "2026-02-01"),
             ("K2", "A2", "2026-01-08", "2026-01-12", None, None),
             ("K3", "A3", "2026-01-25", None, None, None),
             ("K4", "A4", "2026-02-02", "2026-02-05", "2026-02-09", None),
             ("K5", "A5", None, None, None, None)])  # fmt: skip
    # Lead channel = last touch up to the lead date: K1 Paid Search, K2 Email (T3 is after), K3 none, K4 Paid Search.
    _create(c, "touchpoints.touchpoints", "touchpoint_id VARCHAR, contact_id VARCHAR, touchpoint_date TIMESTAMP, channel_group VARCHAR",
            [("T1", "K1", "2026-01-02", "Paid Search"), ("T2", "K2", "2026-01-01", "Email"),
             ("T3", "K2", "2026-01-09", "Paid Social"), ("T4", "K4", "2026-02-01", "Paid Search")])  # fmt: skip
    # Sessions: January 4 (2 with a form email), February 1 (none).
    _create(c, "sources.web_sessions", "session_id VARCHAR, session_start TIMESTAMP, conversions INTEGER, form_email VARCHAR",
            [("S1", "2026-01-02", 1, "a@x.io"), ("S2", "2026-01-03", 0, None), ("S3", "2026-01-04", 0, ""),
             ("S4", "2026-01-05", 1, "b@x.io"), ("S5", "2026-02-01", 0, None)])  # fmt: skip
    _create(c, "sources.crm_opportunities", "opportunity_id VARCHAR, account_id VARCHAR, pipeline_amount DECIMAL(38,10), opportunity_created_date TIMESTAMP, "
            "sales_segment VARCHAR, is_won BOOLEAN, closed_date TIMESTAMP, won_amount DECIMAL(38,10)",
            [("OP1", "A1", 1000, "2026-01-15", "Enterprise", True, "2026-02-10", 800),
             ("OP2", "A2", 500, "2026-01-20", "SMB", False, None, None),
             ("OP3", "A3", 300, "2026-02-05", "SMB", True, "2026-02-20", 300),
             ("OP4", "A4", 200, "2026-02-07", "SMB", False, None, None)])  # fmt: skip
    # OP1 first touch Paid Search (sourced, influenced); OP2 first touch Outbound Sales + an Email touch
    # (influenced, not sourced); OP3 Direct only (neither); OP4 no touch at all (neither).
    _create(c, "attribution.attribution_credits", "opportunity_id VARCHAR, touchpoint_id VARCHAR, channel_group VARCHAR, first_touch_credit DOUBLE",
            [("OP1", "T1", "Paid Search", 1000), ("OP1", "T5", "Outbound Sales", 0),
             ("OP2", "T6", "Outbound Sales", 500), ("OP2", "T7", "Email", 0), ("OP3", "T8", "Direct", 300)])  # fmt: skip
    yield c
    c.close()


@pytest.fixture(scope="module")
def dictionary():
    return load_kpi_dictionary()


def values(con, dictionary, name: str, grain: str = "month", dims: tuple[str, ...] = ()) -> dict:
    """``{period-or-(period, dims...): value}`` with ``period`` as an ISO date string ('total' at total grain)."""
    df = compute_kpis(con, [name], grain, dims, dictionary=dictionary)
    out = {}
    for row in df.itertuples(index=False):
        period = "total" if pd.isna(row.period) else row.period.date().isoformat()
        key = (period, *(getattr(row, d) for d in df.columns[1:-3])) if len(df.columns) > 4 else period
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
    close(values(con, dictionary, "roas"), {"2025-02-01": None, "2026-01-01": 1.9, "2026-02-01": 200 / 90})
    close(values(con, dictionary, "roas", "total"), {"total": 430 / 190})
    # CPA = spend / platform conversions: Jan 100 / 4, Feb 90 / 3; Jan Paid Search 60 / 3, Paid Social 40 / 1.
    close(values(con, dictionary, "cpa"), {"2026-01-01": 25, "2026-02-01": 30})
    got = values(con, dictionary, "cpa", "month", ("channel_group",))
    assert got[("2026-01-01", "Paid Search")] == 20 and got[("2026-01-01", "Paid Social")] == 40
    # Spend by channel group adds up to total spend (190).
    assert sum(values(con, dictionary, "ad_spend", "total", ("channel_group",)).values()) == 190


def test_cpl_and_cac(con, dictionary):
    # Leads Jan 3, Feb 1 -> CPL 100 / 3 and 90 / 1; total 190 / 4.
    close(values(con, dictionary, "cpl"), {"2026-01-01": 100 / 3, "2026-02-01": 90.0})
    close(values(con, dictionary, "cpl", "total"), {"total": 47.5})
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


# ------------------------------------------------------------------------------------ long form, all


def test_compute_all_kpis_long_form(con, dictionary):
    df = compute_kpis(con, None, "month", dictionary=dictionary)
    assert list(df.columns[:1]) == ["period"] and list(df.columns[-3:]) == ["kpi", "value", "unit"]
    assert {"product_id", "sales_channel"} <= set(df.columns)  # breakdown dimensions of the by-X KPIs
    month_kpis = {k.name for k in dictionary if "month" in k.grains}
    assert set(df["kpi"]) == month_kpis
    assert df.loc[df["kpi"] == "roas", "unit"].unique().tolist() == ["ratio"]
    with pytest.raises(ValueError, match="no dimension"):
        compute_kpis(con, ["roas"], "month", ("product_id",), dictionary=dictionary)


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
    assert values(con, edited, "roas")["2026-01-01"] == pytest.approx(2.0)
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
        (lambda r: _kpi(r, "roas").pop("owner"), r"KPI 'roas': field 'owner' is missing"),
        (lambda r: r["kpis"].append(copy.deepcopy(_kpi(r, "cac"))), r"KPI 'cac': field 'name' is duplicated"),
        (lambda r: _kpi(r, "cpa").update(base="ad_clicks"), r"KPI 'cpa': field 'base' is unknown: 'ad_clicks'"),
        (lambda r: _kpi(r, "cpa").update(version="2"), r"KPI 'cpa': field 'version' must be a positive integer"),
        (
            lambda r: _kpi(r, "cpa").update(grains=["month", "product_id"]),
            r"KPI 'cpa': field 'grains' has \['product_id'\]",
        ),
        (
            lambda r: _kpi(r, "cpa").update(grains=["quarter"]),
            r"KPI 'cpa': field 'grains' must include at least one time grain",
        ),
        (lambda r: _kpi(r, "cpa").update(unit="dollars"), r"KPI 'cpa': field 'unit' must be one of"),
        (
            lambda r: _kpi(r, "roas").update(formula="{kpi:revenue} / {kpi:ad_spend}"),
            r"KPI 'roas': field 'formula' references unknown KPI 'revenue'",
        ),
        (lambda r: _kpi(r, "total_revenue").update(formula="{kpi:roas}", base="derived"), r"reference cycle"),
        (
            lambda r: _kpi(r, "cpa").update(source_assets=["sources/web_sessions"]),
            r"KPI 'cpa': field 'source_assets' lacks",
        ),
        (
            lambda r: _kpi(r, "roas").update(target={"value": "high", "direction": "higher_is_better"}),
            r"KPI 'roas': field 'target' value must be a number",
        ),
        (
            lambda r: _kpi(r, "revenue_growth_mom").update(grains=["month", "total"]),
            r"KPI 'revenue_growth_mom': field 'grains' includes 'total'",
        ),
        (
            lambda r: _kpi(r, "roas").update(formula="{kpi:revenue_by_product} / nullif({kpi:ad_spend}, 0)"),
            r"KPI 'roas': field 'breakdown' lacks \['product_id'\]",
        ),
        (lambda r: r.update(version=2), r"dictionary: field 'changelog' has no entry for version 2"),
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
    assert kpi_tables("roas", dictionary) == ["sources.erp_orders", "sources.erp_products", "identity.ad_spend_daily"]
    assert missing_tables(con, "roas", dictionary) == []
    empty = duckdb.connect()
    empty.execute("CREATE SCHEMA identity")
    empty.execute(
        "CREATE TABLE identity.ad_spend_daily (date_day DATE, platform VARCHAR, channel_group VARCHAR, spend DOUBLE, "
        "clicks DOUBLE, conversions DOUBLE)"
    )
    assert missing_tables(empty, "roas", dictionary) == ["sources.erp_orders", "sources.erp_products"]
    with pytest.raises(duckdb.CatalogException):
        compute_kpis(empty, ["roas"], "month", dictionary=dictionary)
    df = compute_kpis(empty, ["roas", "ad_spend"], "month", dictionary=dictionary, skip_missing=True)
    assert df.empty and list(df.columns) == ["period", "kpi", "value", "unit"]
