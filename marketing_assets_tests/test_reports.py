"""Stakeholder HTML reports: self-contained, escaped, formatted, robust to missing frames, and they render."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import stat
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketing_assets.lib.kpis import dictionary_frame, load_kpi_dictionary
from marketing_assets.lib.reports import (
    fmt_value,
    render_data_quality,
    render_executive,
    render_marketing_roi,
    write_report,
)
from marketing_assets.lib.cohorts import pool_cohorts
from marketing_assets.lib.reports.cohorts import cohorts, ltv_curves
from marketing_assets.lib.reports.common import funnel_summary, funnel_totals
from marketing_assets.lib.reports.dictionary import KpiLookup
from marketing_assets.lib.reports.render import render_blocks

FRESH_TO = dt.date(2026, 11, 23)
GENERATED_AT = dt.datetime(2026, 11, 23, 16, 5, tzinfo=dt.UTC)
XSS = "<script>alert(1)</script>"
MODELS = ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based", "w_shaped", "markov", "shapley")
CHANNELS = ("Paid Search", "Paid Social", "Email", "Organic Search", XSS)


def kpi_dictionary() -> pd.DataFrame:
    """The governed dictionary itself: reports render its labels and definitions."""
    dictionary = load_kpi_dictionary()
    return dictionary_frame(dictionary).assign(dictionary_version=dictionary.version)


def executive_kpis(months: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    periods = pd.date_range(end="2026-11-01", periods=months, freq="MS")
    rev = 1_000_000 * (1 + 0.02 * np.arange(months)) * (1 + 0.1 * np.sin(np.arange(months) / 2)) + rng.normal(0, 20_000, months)
    rows = []

    def add(kpi, unit, values, dimension=None, dim_values=None):
        for i, p in enumerate(periods):
            if dimension is None:
                rows.append(("month", p, kpi, None, None, float(values[i]), unit, 1))
            else:
                for d, share in dim_values.items():
                    rows.append(("month", p, kpi, dimension, d, float(values[i] * share), unit, 1))

    add("total_revenue", "currency", rev)
    add("revenue_growth_mom", "percent", np.r_[np.nan, rev[1:] / rev[:-1] - 1])
    add("revenue_growth_yoy", "percent", np.r_[[np.nan] * 12, rev[12:] / rev[:-12] - 1])
    add("gross_margin_pct", "percent", np.full(months, 0.4213))
    add("ad_spend", "currency", rev / 4.25)
    add("blended_roas", "ratio", np.full(months, 4.25))
    add("cac", "currency", np.full(months, 123.456))
    add("conversion_rate_session_to_lead", "percent", np.full(months, 0.0234))
    add("inventory_turnover", "ratio", np.full(months, 1.3))
    products = {f"P{i:03d}": s for i, s in enumerate([0.3, 0.2, 0.1] + [0.4 / 12] * 12)}
    add("revenue_by_product", "currency", rev, "product_id", products)
    add("margin_by_product", "currency", rev * 0.42, "product_id", products)
    add("revenue_by_channel", "currency", rev, "sales_channel", {"web": 0.6, "direct": 0.3, "partner & <b>co</b>": 0.1})
    weeks = pd.date_range(end="2026-11-23", periods=8, freq="W-MON")
    rows += [("week", w, "total_revenue", None, None, 250_000.0, "currency", 1) for w in weeks]
    return pd.DataFrame(rows, columns=["grain", "period", "kpi", "dimension", "dimension_value", "value", "unit", "kpi_version"])


def marketing_roi() -> pd.DataFrame:
    rows = []
    for mi, model in enumerate(MODELS):
        for ci, ch in enumerate(CHANNELS):
            spend = 100_000.0 * (ci + 1) if ci < 3 else None
            revenue = 100_000.0 * (ci + 1) * (1.5 + 0.3 * ci + 0.1 * mi)
            rec, rule = (("scale", "clearly_above_break_even"), ("reduce", "clearly_below_break_even"), ("test", "interval_straddles_break_even"), (None, None), (None, None))[ci]
            mmm = (2.0 + ci / 10, 1.1 + ci, 1.5, 2.6) if ci < 3 else (None,) * 4
            plan = (spend, spend * (1.5 - 0.5 * ci), 0.5 - 0.5 * ci) if ci < 3 else (None,) * 3
            base = {"level": "channel", "channel_group": ch, "campaign_key": None, "attribution_model": model, "ad_spend": spend, "new_leads": 40 + ci,
                    "attributed_pipeline": revenue * 4, "attributed_revenue": revenue, "attributed_opportunities": 40.0 + ci, "attributed_won_deals": 20.0,
                    "channel_roas": revenue / spend if spend else None, "cost_per_opportunity": spend / (40 + ci) if spend else None,
                    "cost_per_won_deal": spend / 20 if spend else None, "cost_per_lead": spend / 40 if spend else None,
                    "mmm_roi": mmm[0], "mmm_roi_low": mmm[2], "mmm_roi_high": mmm[3], "mmm_marginal_roi": mmm[1], "mmm_marginal_roi_low": mmm[1] and mmm[1] - 0.3,
                    "mmm_marginal_roi_high": mmm[1] and mmm[1] + 0.3, "plan_current_spend": plan[0], "planned_spend": plan[1], "planned_spend_change_pct": plan[2],
                    "recommendation": rec, "recommendation_rule": rule, "recommendation_reason": f"marginal ROI 1.4× & ROAS 2.1× {XSS}" if rec else None}
            rows.append(base)
            rows.append({**base, "level": "campaign", "campaign_key": f"Campaign {ci} <img src=x onerror=alert(1)>", "ad_spend": spend,
                         **{k: None for k in ("mmm_roi", "mmm_roi_low", "mmm_roi_high", "mmm_marginal_roi", "mmm_marginal_roi_low", "mmm_marginal_roi_high",
                                              "plan_current_spend", "planned_spend", "planned_spend_change_pct")},
                         "recommendation_rule": f"follows_channel_group:{rule}" if rule else None, "recommendation_reason": "Follows the channel group" if rec else None})
        rows.append({"level": "all", "channel_group": "(all)", "attribution_model": model, "ad_spend": 600_000.0, "attributed_revenue": 5_000_000.0,
                     "paid_attributed_revenue": 1_500_000.0, "paid_media_roas": 2.5, "attributed_pipeline": 2e7, "attributed_won_deals": 100.0})
    frame = pd.DataFrame(rows)
    across_models = frame.groupby(["level", "channel_group", "campaign_key"], dropna=False)["attributed_revenue"]
    frame["attributed_revenue_min"], frame["attributed_revenue_max"] = across_models.transform("min"), across_models.transform("max")
    frame["attributed_revenue_model_spread"] = frame["attributed_revenue_max"] - frame["attributed_revenue_min"]
    frame["period_start"], frame["period_end"], frame["currency"] = "2025-12-01", "2026-11-30", "USD"
    return frame


def funnel() -> pd.DataFrame:
    rows = []
    for month in pd.date_range("2026-06-01", "2026-11-01", freq="MS"):
        for ch, known in (("(all)", 10_000.0 * len(CHANNELS)), *((ch, 10_000.0) for ch in CHANNELS)):
            n = known
            for order, stage in enumerate(("known", "engaged", "mql", "sql", "opportunity", "customer"), start=1):
                conversion = None if order == 1 else 0.5
                rows.append((month, ch, stage, order, n, conversion, 0.5 ** (order - 1), conversion, 0.5 ** (order - 1)))
                n *= 0.5
    return pd.DataFrame(rows, columns=["month", "channel_group", "stage", "stage_order", "contacts", "stage_conversion", "conversion_from_known",
                                       "stage_conversion_3m", "conversion_from_known_3m"])


def cohort_ltv() -> pd.DataFrame:
    rows = []
    for cohort in pd.date_range("2025-06-01", "2025-12-01", freq="MS"):
        for ci, ch in enumerate(CHANNELS):
            for m in range(13):
                ltv = (50 + 10 * ci) * np.log1p(m + 1)
                rows.append((cohort, ch, m, 100, 80 - 3 * m, ltv * 100, ltv * 100, ltv, 0.4, 0.3, 0.25, 120.0 + 10 * ci, 6))
    return pool_cohorts(pd.DataFrame(rows, columns=["cohort_month", "channel_group", "months_since_acquisition", "customers", "active_customers", "cumulative_revenue",
                                                    "cumulative_gross_margin", "ltv_per_customer", "retention_30d", "retention_60d", "retention_90d", "cac", "payback_month"]))


def pipeline_forecast() -> pd.DataFrame:
    rows = []
    for i, month in enumerate(pd.date_range("2026-12-01", periods=6, freq="MS")):
        for seg, share in (("All", 1.0), ("SMB", 0.4), ("Enterprise", 0.6)):
            exp = 900_000.0 * share * (1 - 0.08 * i)
            total = 900_000.0 * share * sum(1 - 0.08 * k for k in range(6))
            rows.append(("2026-11-23", month, seg, 120 * share, exp * 3, exp, exp * 0.8, exp * 1.2, "stage-probability × historical slippage", total, total * 0.9, total * 1.1))
    return pd.DataFrame(rows, columns=["as_of", "forecast_month", "sales_segment", "open_opportunities", "open_pipeline", "expected_revenue", "lower", "upper", "method",
                                       "horizon_expected_revenue", "horizon_lower", "horizon_upper"])


def mmm_contributions_wide() -> pd.DataFrame:
    weeks = pd.date_range("2025-01-06", periods=60, freq="W-MON")
    t = np.arange(60)
    frame = pd.DataFrame({"week": weeks, "baseline": 2_000_000.0, "trend": 1_000.0 * t, "seasonality": 50_000 * np.sin(t / 8), "promo": 0.0,
                          "google_search": 300_000.0, "meta": 50_000.0, "linkedin": 40_000.0})
    frame["predicted"] = frame.drop(columns="week").sum(axis=1)
    frame["actual"] = frame["predicted"] * 1.01
    return frame


LABELS = {"google_search": ("Paid Search", "Paid Search"), "meta": ("Paid Social", "Paid Social – Meta"), "linkedin": ("Paid Social", "Paid Social – LinkedIn")}


def mmm_budget_plan() -> pd.DataFrame:
    rows = [("optimal_same_total", ch, cur, plan, 7e7, 2.9e6, -7.6e5, 4.2e6) for ch, cur, plan in (("google_search", 7.5e5, 1.1e6), ("meta", 4.0e5, 3.2e5), ("linkedin", 3.7e5, 2.1e5))]
    rows += [("Paid Social – Meta +10%", "meta", 4.0e5, 4.4e5, 6.99e7, 4.06e4, None, None), ("Paid Social – Meta -10%", "meta", 4.0e5, 3.6e5, 6.9e7, -4.7e4, None, None)]
    frame = pd.DataFrame(rows, columns=["scenario", "channel", "current_spend", "scenario_spend", "media_contribution", "uplift", "uplift_low", "uplift_high"])
    frame["channel_group"], frame["channel_label"] = frame["channel"].map(lambda c: LABELS[c][0]), frame["channel"].map(lambda c: LABELS[c][1])
    frame["period_start"], frame["period_end"], frame["period_weeks"] = dt.date(2026, 11, 30), dt.date(2027, 2, 28), 13
    frame["spend_change"] = frame["scenario_spend"] - frame["current_spend"]
    frame["uplift_per_extra_spend"] = (frame["uplift"] / frame["spend_change"]).where(frame["scenario"] != "optimal_same_total")
    return frame


def mmm_roi() -> pd.DataFrame:
    frame = pd.DataFrame({"channel": ["google_search", "meta", "linkedin"], "roi": [6.98, 1.84, 2.12], "roi_low": [3.0, 1.6, 1.4], "roi_high": [7.5, 2.0, 2.2], "mroi": [2.2, 1.07, 0.85]})
    frame["channel_group"], frame["channel_label"] = frame["channel"].map(lambda c: LABELS[c][0]), frame["channel"].map(lambda c: LABELS[c][1])
    return frame


def data_quality_report() -> pd.DataFrame:
    at = pd.Timestamp("2026-11-23 15:40", tz="UTC")
    rows = [
        ("check", "sources/erp_orders", "contract", "ERROR", True, "failed", at, f"12 rows with a negative amount for {XSS}", "failed_rows", 12),
        ("check", "sources/erp_orders", "unique_key", "ERROR", True, "passed", at, "order_id + line_number unique", "duplicates", 0),
        ("check", "sources/web_sessions", "null_share", "WARN", False, "warned", at, "utm_source empty in 31% of sessions", "null_rate", 0.31),
        ("check", "attribution/attribution_credits", "credits_sum_to_one", "ERROR", True, "passed", at, "credits per opportunity sum to 1", "max_error", 0.0),
        ("check", "mmm/mmm_model", "holdout_mape", "WARN", False, "not_evaluated", None, "model not fitted yet", None, None),
        ("freshness", "sources/ads_google", "freshness", "WARN", False, "passed", at, "newest row 20 h old", "age_hours", 20.0),
        ("freshness", "sources/crm_contacts", "freshness", "ERROR", True, "warned", at, "newest row 50 h old", "age_hours", 50.0),
        ("identity", "identity/accounts_resolved", "account_match_rate", "WARN", False, "passed", at, "CRM accounts matched to ERP customers", "match_rate", 0.873),
        ("identity", "identity/contacts_resolved", "contact_dedup_rate", "WARN", False, "warned", at, "contacts merged into canonical contacts", "match_rate", 0.412),
    ]
    return pd.DataFrame(rows, columns=["section", "asset_key", "check_name", "severity", "blocking", "status", "evaluated_at", "description", "metric", "value"])


def all_frames() -> dict[str, pd.DataFrame]:
    return {
        "kpi_dictionary": kpi_dictionary(),
        "executive_kpis": executive_kpis(),
        "marketing_roi": marketing_roi(),
        "funnel": funnel(),
        "cohort_ltv": cohort_ltv(),
        "pipeline_forecast": pipeline_forecast(),
        "mmm_contributions": mmm_contributions_wide(),
        "mmm_budget_plan": mmm_budget_plan(),
        "mmm_roi": mmm_roi(),
        "data_quality_report": data_quality_report(),
    }


def render_all(data) -> dict[str, str]:
    kw = {"fresh_to": FRESH_TO, "generated_at": GENERATED_AT}
    return {"executive": render_executive(data, **kw), "marketing_roi": render_marketing_roi(data, **kw), "data_quality": render_data_quality(data, **kw)}


@pytest.fixture(scope="module")
def reports() -> dict[str, str]:
    return render_all(all_frames())


EXTERNAL = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_reports_are_self_contained(reports):
    for name, page in reports.items():
        assert page.startswith("<!DOCTYPE html>"), name
        assert '<meta name="viewport"' in page
        assert not EXTERNAL.search(page), name
        assert "<script" not in page.lower().replace("&lt;script", ""), name  # no scripts at all
        assert "@import" not in page and "url(" not in page, name
        for chart in re.findall(r"<svg.*?</svg>", page, re.DOTALL):  # every inline chart is well-formed XML
            ET.fromstring(chart)
        # the only URLs are SVG namespace identifiers
        assert set(re.findall(r"https?://[^\s\"'<>]+", page)) <= {"http://www.w3.org/2000/svg"}, name


def test_fresh_to_and_generated_time_are_prominent(reports):
    for page in reports.values():
        assert "Data fresh to 2026-11-23" in page
        assert "Generated 2026-11-23 16:05 UTC" in page


def test_executive_numbers_and_definitions(reports):
    page = reports["executive"]
    assert "Headline KPIs – Oct 2026" in page  # latest full month, the running November is left out
    assert "42.1%" in page  # gross margin % from a fraction, 1 decimal
    assert "4.25×" in page  # blended ROAS
    assert "$123.46" in page  # CAC with currency
    assert "2.3%" in page  # conversion rate
    assert re.search(r"\$\d{1,3}(,\d{3}){2}", page)  # revenue with thousands separators
    for name in ("gross_margin_pct", "blended_roas", "cac", "total_revenue"):
        assert f'href="#def-{name}"' in page and f'id="def-{name}"' in page
    assert "Gross Margin as a fraction of Total Revenue." in page and "Finance – FP&amp;A" in page and "v2" in page
    assert "Target ≥ 45.0%" in page and "Alert &lt; 30.0%" in page
    assert 'class="tile warn"' in page  # gross margin below target, above alert
    assert 'class="tile good"' in page  # ROAS above target
    assert "partner &amp; &lt;b&gt;co&lt;/b&gt;" in page or "partner &amp;amp;" in page
    assert "Pipeline revenue forecast" in page and "Likely range" in page
    # the horizon total and its interval as the extract publishes them (not a sum of the monthly bounds)
    assert "$4,320,000 (range $3,888,000 – $4,752,000)" in re.sub("<[^>]+>", "", page)


def test_marketing_roi_content(reports):
    page = reports["marketing_roi"]
    for text in ("Attribution model comparison", "Budget recommendations", "Funnel by stage", "Customer lifetime value", "Weekly revenue decomposed",
                 "Current Spend (run rate) vs Planned Spend (MMM budget plan) per channel group, 2026-11-30 to 2027-02-28 (13 weeks)",
                 "Markov", "Shapley", "W-shaped", "+$2,900,000", "The interval crosses zero", "Paid Social – Meta +10%"):
        assert text in page, text
    assert "badge scale" in page and "badge reduce" in page
    assert "+10%$40,000$40,6001.01×" in re.sub("<[^>]+>|\\s", "", page)  # what-if: spend change, uplift, revenue per extra unit (published)
    # the channel group whose attributed revenue differs most between models, with the extract's range across models
    assert "Models disagree most on &lt;script&gt;alert(1)&lt;/script&gt;: Attributed Revenue ranges from $1,350,000 to $1,750,000" in re.sub("<[^>]+>", "", page)
    assert 'id="def-markov"' in page and 'id="def-channel_roas"' in page and 'id="def-mmm_marginal_roi"' in page
    assert "google_search" not in page.replace('data-kpi="', "")  # MMM channels speak the channel-group vocabulary


def test_data_quality_content(reports):
    page = reports["data_quality"]
    assert "1 blocking check failed" in page
    assert page.index("12 rows with a negative amount") < page.index("order_id + line_number unique")  # problems first
    assert "31.0%" in page and "87.3%" in page  # rates as percent
    assert "Freshness" in page and "Identity match rates" in page
    assert "sources/crm_contacts" in page


def test_names_are_escaped(reports):
    for name, page in reports.items():
        assert XSS not in page, name
        assert "<img src=x" not in page, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in reports["marketing_roi"]
    assert "&lt;script&gt;" in reports["data_quality"]


def test_missing_and_empty_frames_render_not_available():
    data = all_frames()
    minimal = {"executive_kpis": data["executive_kpis"]}
    pages = render_all(minimal)
    assert "Not available" in pages["executive"] and "Monthly" in pages["executive"]
    assert "Not available" in pages["marketing_roi"] and "Not available" in pages["data_quality"]
    empty = {k: v.iloc[0:0] for k, v in data.items()}
    for page in render_all(empty).values():
        assert "Not available" in page
    for page in render_all({}).values():
        assert "Data fresh to 2026-11-23" in page
    # a long-form MMM decomposition works too; a plan without the marketing_roi extract says what is missing
    long = data["mmm_contributions"].melt(id_vars="week", value_vars=["baseline", "google_search", "meta"], var_name="component", value_name="contribution")
    page = render_marketing_roi({"mmm_contributions": long, "mmm_budget_plan": data["mmm_budget_plan"]}, fresh_to=FRESH_TO, generated_at=GENERATED_AT)
    assert "Weekly revenue decomposed" in page and "budget plan (mmm_budget_plan, marketing_roi) was not provided" in page


def test_number_formatting():
    assert fmt_value(1234567.8, "currency") == "$1,234,568"
    assert fmt_value(0.25, "percent") == "25.0%"
    assert fmt_value(3.456, "ratio") == "3.46×"
    assert fmt_value(12345, "count") == "12,345"
    assert fmt_value(-2500, "currency", currency="EUR") == "−€2,500"
    assert fmt_value(None, "currency") == "–" and fmt_value(float("nan"), "percent") == "–"


def test_write_report_is_atomic_and_world_readable(tmp_path):
    target = write_report("<!DOCTYPE html><p>x</p>", tmp_path / "reports" / "exec.html")
    assert target.read_text() == "<!DOCTYPE html><p>x</p>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_report("second", target)
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["exec.html"]  # no temp file left behind


# ------------------------------------------------------------------------------------------ screenshots


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Minimal PNG decoder (8-bit RGB/RGBA, non-interlaced): (width, height, rows of raw pixel bytes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i : i + 3]) for r in rows[::4] for i in range(0, len(r), bpp * 4)]


def _screenshot(html_path: Path, png: Path, size: tuple[int, int], profile: Path) -> None:
    cmd = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size[0]},{size[1]}",
           "--virtual-time-budget=5000", f"--screenshot={png}", html_path.as_uri()]
    subprocess.run(cmd, check=True, timeout=90, capture_output=True)


@pytest.mark.slow
def test_reports_render_in_headless_chromium(tmp_path, reports):
    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed")
    out = Path(os.environ.get("MARKETING_TEST_ARTEFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for name, page in reports.items():
        html_path = write_report(page, out / f"{name}.html")
        for label, size in (("desktop", (1280, 2000)), ("phone", (390, 1600))):
            png = out / f"{name}_{label}.png"
            _screenshot(html_path, png, size, tmp_path / f"profile-{name}-{label}")
            width, height, pixels = _png_pixels(png)
            assert width >= size[0] * 0.9 and height >= size[1] * 0.9, (png, width, height)
            non_white = sum(1 for p in pixels if min(p) < 235) / len(pixels)
            assert len(set(pixels)) > 30 and non_white > 0.05, (png, len(set(pixels)), non_white)


def test_funnel_totals_use_the_all_channels_rows_instead_of_adding_them_twice():
    months = pd.date_range("2026-08-01", "2026-10-01", freq="MS")
    rows = [(m, ch, "known", 1, n) for m in months for ch, n in (("(all)", 300.0), ("Email", 100.0), ("Paid Search", 200.0))]
    rows += [(m, ch, "mql", 2, n) for m in months for ch, n in (("(all)", 30.0), ("Email", 10.0), ("Paid Search", 20.0))]
    funnel = pd.DataFrame(rows, columns=["month", "channel_group", "stage", "stage_order", "contacts"])
    page = render_marketing_roi({"funnel": funnel}, fresh_to="2026-11-23", generated_at="2026-11-23T16:05:00Z")
    assert ">900<" in page and ">1,800<" not in page  # 3 months × 300 known, not (all) + channels
    assert ">(all)<" not in page  # the per-channel table lists channels only


def _funnel_with_a_hidden_stage(flags: bool = True) -> pd.DataFrame:
    """Aug–Oct 2026; Email and Paid Search (and their "(all)" sum); opportunity = SQL everywhere and flagged as such."""
    note = "all 270 contacts that reached the previous stage (all cohorts and channels) also reached this one"
    counts = {"known": 100.0, "engaged": 80.0, "mql": 60.0, "sql": 30.0, "opportunity": 30.0, "customer": 10.0}
    rows = []
    for m in pd.date_range("2026-08-01", "2026-10-01", freq="MS"):
        for ch, k in (("(all)", 3), ("Email", 1), ("Paid Search", 2)):
            for order, (stage, n) in enumerate(counts.items(), start=1):
                hidden = stage == "opportunity"
                rows.append((m, ch, stage, order, n * k, hidden, note if hidden else None))
    frame = pd.DataFrame(rows, columns=["month", "channel_group", "stage", "stage_order", "contacts", "hidden", "stage_note"])
    # the KPIs over the 3 months ending with the row's month, as the extract publishes them (same shares every month)
    previous = dict(zip(counts, [None, *counts.values()]))
    frame["stage_conversion_3m"] = [None if (h and flags) or previous[s] is None else counts[s] / previous[s] for s, h in zip(frame["stage"], frame["hidden"])]
    frame["conversion_from_known_3m"] = frame["stage"].map(lambda s: counts[s] / counts["known"])
    frame["stage_distinguishable"] = ~frame.pop("hidden")
    return frame if flags else frame.drop(columns=["stage_distinguishable", "stage_note"])


def test_funnel_totals_give_no_conversion_to_a_stage_not_distinguishable():
    tot = funnel_totals(_funnel_with_a_hidden_stage(), KpiLookup(None)).set_index("stage")
    assert tot.loc["sql", "conversion_from_previous"] == pytest.approx(0.5)
    assert pd.isna(tot.loc["opportunity", "conversion_from_previous"])  # not 100 %
    assert tot.loc["opportunity", "conversion_from_first"] == pytest.approx(0.3)  # share of known: still a fact
    assert not tot.loc["opportunity", "stage_distinguishable"] and tot.loc["opportunity", "stage_note"].startswith("all 270")
    assert tot.drop(index="opportunity")["stage_distinguishable"].all()
    old = funnel_totals(_funnel_with_a_hidden_stage(flags=False), KpiLookup(None)).set_index("stage")  # frames without the flag columns
    assert old.loc["opportunity", "conversion_from_previous"] == pytest.approx(1.0) and old["stage_distinguishable"].all()


def test_funnel_summary_says_not_distinguishable_instead_of_100_percent():
    html = render_blocks(funnel_summary(_funnel_with_a_hidden_stage(), "2026-11-23", KpiLookup(None)))
    opportunity_row = re.search(r"<tr><td>Opportunity</td>.*?</tr>", html).group(0)
    assert "not distinguishable in the data (see below)" in opportunity_row
    assert "%" not in opportunity_row.split("</td>")[2]  # the conversion-from-previous cell
    assert "Opportunity: not distinguishable in the data: all 270 contacts that reached the previous stage" in html
    assert "270  (not distinguishable)" in html and "270  (n/d)" in html  # chart notes, wide and narrow
    assert "(100.0%)" not in html and "270  (50.0%)" in html  # SQL 270 of MQL 540 (3 months of the "(all)" rows)
    assert "(not distinguishable)" not in render_blocks(funnel_summary(_funnel_with_a_hidden_stage(flags=False), "2026-11-23", KpiLookup(None)))


def test_per_channel_funnel_table_marks_the_stage_not_distinguishable():
    page = render_marketing_roi({"funnel": _funnel_with_a_hidden_stage()}, fresh_to="2026-11-23", generated_at="2026-11-23T16:05:00Z")
    section = page[page.index('id="funnel"'):]
    assert ">Opportunity (not distinguishable)<" in section and ">SQL<" in section
    assert "Opportunity: not distinguishable in the data: all 270 contacts" in section


# ------------------------------------------------------------------------------------------ cohort LTV curves


def _ltv_rows(channel: str, cohort: str, customers: float, ltv: list[float]) -> list[tuple]:
    return [(pd.Timestamp(cohort), channel, m, customers, v, v * customers) for m, v in enumerate(ltv)]


LTV_COLUMNS = ["cohort_month", "channel_group", "months_since_acquisition", "customers", "ltv_per_customer", "cumulative_gross_margin"]


def _polylines(svg_text: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg_text)
    return [[tuple(map(float, p.split(","))) for p in line.get("points").split()] for line in root.iter("{http://www.w3.org/2000/svg}polyline")]


def _wide_svgs(page: str) -> list[str]:
    return re.findall(r'<div class="wide">(<svg.*?</svg>)</div>', page, re.DOTALL)


def test_ltv_curve_averages_a_fixed_set_of_cohorts_old_enough():
    # A: an old cohort (1 customer, 4 months observed) and a young, richer one (3 customers, 2 months observed).
    # The naive per-month average mixes them: 77.5, 87.5, then 30 and 40 (the young cohort drops out) – it falls.
    # B: two cohorts old enough for 2 months, of 1 and 3 customers.
    rows = (_ltv_rows("A", "2025-01-01", 1, [10, 20, 30, 40]) + _ltv_rows("A", "2025-03-01", 3, [100, 110])
            + _ltv_rows("B", "2025-01-01", 1, [0, 10, 20, 30]) + _ltv_rows("B", "2025-02-01", 3, [40, 40, 80]))
    frame = pd.DataFrame(rows, columns=LTV_COLUMNS)
    naive = (frame.assign(lw=frame["ltv_per_customer"] * frame["customers"]).groupby(["channel_group", "months_since_acquisition"])[["lw", "customers"]].sum())
    naive = (naive["lw"] / naive["customers"]).loc["A"].tolist()
    assert naive == [77.5, 87.5, 30.0, 40.0]  # the old way falls after month 1

    f = pool_cohorts(frame, (1, 2, 3))  # the extract's pooled columns (12 and 24 months there)
    curves = ltv_curves(f, 2)
    assert curves["A"].tolist() == [10.0, 20.0, 30.0]  # only the cohort observed ≥ 2 months
    assert curves["B"].tolist() == [30.0, 32.5, 65.0]  # (0·1 + 40·3)/4, (10 + 120)/4, (20 + 240)/4
    assert ltv_curves(f, 1)["A"].tolist() == [77.5, 87.5]  # both A cohorts reached month 1
    assert list(ltv_curves(f, 3).columns) == ["A", "B"] and ltv_curves(f, 3)["B"].tolist() == [0.0, 10.0, 20.0, 30.0]

    html = render_blocks(cohorts(f, "USD", months=2, long_months=3))
    for line in _polylines(_wide_svgs(html)[0]):
        ys = [y for _, y in line]
        assert len(ys) == 3 and all(b <= a for a, b in zip(ys, ys[1:]))  # SVG y grows downwards: rising curve
    assert "observed for at least 2 months" in html and "2 monthly cohorts" in html
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    a = cells.index("A")
    assert cells[a + 1 : a + 5] == ["4", "1", "1", "$30.00"]  # customers acquired, cohorts ≥ 2 m, their customers, LTV at 2 months
    assert cells[a + 5].startswith("$40.00<br>") and "1 cohorts; $30.00 at 2 m" in cells[a + 5]
    b = cells.index("B")
    assert cells[b + 1 : b + 5] == ["4", "2", "4", "$65.00"]


def test_ltv_without_a_cohort_old_enough_says_so():
    frame = pool_cohorts(pd.DataFrame(_ltv_rows("A", "2026-09-01", 5, [1, 2, 3]), columns=LTV_COLUMNS))
    html = render_blocks(cohorts(frame, "USD"))
    assert "Not available" in html and "observed for 12 months" in html and "oldest: 2 months" in html


@pytest.mark.slow
def test_demo_graph_ltv_curves_never_fall(demo_graph):
    import duckdb

    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute("SELECT * FROM extracts.cohort_ltv").df()
    curves = ltv_curves(frame, 12)
    assert len(curves) == 13 and curves.shape[1] >= 3
    assert (curves.diff().iloc[1:].fillna(0) >= -1e-6).all().all(), curves
    lines = _polylines(_wide_svgs(render_blocks(cohorts(frame, "USD")))[0])
    assert len(lines) == curves.shape[1]
    for line in lines:
        ys = [y for _, y in line]
        assert all(b <= a + 0.05 for a, b in zip(ys, ys[1:])), line  # rounded to 0.1 px


# ------------------------------------------------------------------------------------------ layout measured in Chromium

_LAYOUT_JS = r"""<script>
window.addEventListener('load', () => {
 const out = [];
 document.querySelectorAll('.table-wrap').forEach(w => { if (w.offsetParent && w.scrollWidth > w.clientWidth + 1) out.push(['table', w.closest('section').id, w.scrollWidth, w.clientWidth]); });
 document.querySelectorAll('div.wide svg').forEach(svg => {
   const vb = svg.viewBox.baseVal, inv = svg.getCTM().inverse();
   const boxes = [...svg.querySelectorAll('text')].map(t => { const b = t.getBBox(), s = inv.multiply(t.getCTM());
     const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]].map(([x, y]) => [s.a * x + s.c * y + s.e, s.b * x + s.d * y + s.f]);
     const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
     return {t: t.textContent, x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys), rot: t.hasAttribute('transform')}; });
   boxes.forEach(b => { if (b.t.includes('…') || b.x0 < -0.5 || b.x1 > vb.width + 0.5 || b.y0 < -0.5 || b.y1 > vb.height + 0.5) out.push(['text', b.t]); });
   boxes.forEach((a, i) => boxes.slice(i + 1).forEach(b => { if (!a.rot && !b.rot && Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > 1 && Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > 2) out.push(['overlap', a.t, b.t]); }));
 });
 const pre = document.createElement('pre'); pre.id = 'layout-problems'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


@pytest.mark.slow
def test_no_table_overflows_and_no_chart_label_is_cut_or_overlaps_at_1280px_in_chromium(tmp_path, reports):
    """Chromium's own text boxes at 1,280 px: every table fits its card, every chart label is whole, inside its chart and clear of the others."""
    import html as html_lib
    import json

    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed")
    for name, page in reports.items():
        path = write_report(page.replace("</body>", _LAYOUT_JS + "</body>"), tmp_path / f"{name}.html")
        cmd = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / ('profile-' + name)}", "--window-size=1280,2000",
               "--virtual-time-budget=5000", "--dump-dom", path.as_uri()]
        dom = subprocess.run(cmd, check=True, timeout=90, capture_output=True, text=True).stdout
        found = re.search(r'<pre id="layout-problems">(.*?)</pre>', dom, re.DOTALL)
        assert found, name
        assert json.loads(html_lib.unescape(found.group(1))) == [], name


# ------------------------------------------------------------------------------------------ one name per definition


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="card" id="([^"]+)">(.*?)</section>', page, re.DOTALL))


def test_report_figures_are_dictionary_kpis_under_their_label_and_definition(reports):
    import html as html_lib

    from marketing_assets.attribution import AttributionConfig
    from marketing_assets.lib.reports import marketing_terms

    dictionary = load_kpi_dictionary()
    labels = {k.name: k.label for k in dictionary}
    for name, page in reports.items():
        tagged = set(re.findall(r'data-kpi="([^"]+)"', page))
        assert tagged <= set(labels), (name, tagged - set(labels))
        for table in re.findall(r"<table>.*?</table>", page, re.DOTALL):
            caption = html_lib.unescape("".join(re.findall(r"<caption>(.*?)</caption>", table)))
            for kpi, header in re.findall(r'<th[^>]*data-kpi="([^"]+)"[^>]*>(.*?)</th>', table):
                assert html_lib.unescape(header).startswith(labels[kpi]) or labels[kpi] in caption, (name, kpi, header)
        # every definition shown is the dictionary's own text; a KPI shown is defined on the page
        for kpi, desc in re.findall(r'<div class="def" id="def-([a-z0-9_]+)"><dt>.*?<p class="desc">(.*?)</p>', page, re.DOTALL):
            if kpi in labels:
                assert html_lib.unescape(desc) == dictionary[kpi].description, kpi
        defined = set(re.findall(r'id="def-([a-z0-9_]+)"', page))
        assert tagged <= defined, (name, tagged - defined)
    # the glossary explains words (models, actions), never a figure under another definition
    for terms in (marketing_terms(), marketing_terms(AttributionConfig().model_dump())):
        assert not {t.lower() for t in terms} & {v.lower() for v in labels.values()}
        assert not any(re.search(r"÷|divided by|\bspend\b", text) for text in terms.values())
    # in the marketing ROI sections that show KPIs, every number names the KPI it is
    sections = _sections(reports["marketing_roi"])
    for sid in ("channels", "models", "recommendations", "campaigns"):
        cells = re.findall(r'<td class="num"([^>]*)>', sections[sid])
        assert cells and all("data-kpi=" in c for c in cells), sid
    tiles = re.findall(r'<div class="tile"[^>]*data-kpi="([^"]+)"', sections["channels"])
    assert tiles == ["ad_spend", "attributed_revenue", "paid_attributed_revenue", "paid_media_roas", "attributed_pipeline", "attributed_won_deals"]
    assert set(re.findall(r'class="tile [a-z]+"[^>]*data-kpi="([^"]+)"', reports["executive"])) >= {"total_revenue", "blended_roas", "cac"}


@pytest.mark.slow
def test_demo_report_shows_the_extracts_numbers(demo_graph):
    """The marketing ROI report on the demo graph shows, per channel group, exactly the extract's KPI values (formatted)."""
    import html as html_lib

    import duckdb

    _, tmp, _ = demo_graph
    page = (tmp / "reports" / "marketing_roi.html").read_text(encoding="utf-8")
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        roi = con.execute("SELECT * FROM extracts.marketing_roi WHERE level = 'channel' AND attribution_model = 'linear'").df()
    units = {k.name: k.unit for k in load_kpi_dictionary()}
    rows = roi.set_index("channel_group")
    compared = 0
    for row in re.findall(r"<tr>(.*?)</tr>", _sections(page)["channels"], re.DOTALL):
        first = re.match(r"<td[^>]*>(.*?)</td>", row)
        if not first or html_lib.unescape(first.group(1)) not in rows.index:
            continue
        group = html_lib.unescape(first.group(1))
        for kpi, text in re.findall(r'<td class="num" data-kpi="([^"]+)">(.*?)</td>', row):
            value = rows.loc[group, kpi]
            assert html_lib.unescape(text) == fmt_value(None if pd.isna(value) else value, units[kpi]), (group, kpi, text, value)
            compared += 1
    assert compared >= 20
