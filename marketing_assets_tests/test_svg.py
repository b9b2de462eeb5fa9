"""SVG charts: valid, self-contained XML with one mark per series; labels that never overlap, leave the chart or get cut."""

import base64
import datetime as dt
import math
import re
import xml.etree.ElementTree as ET

import pytest

from marketing_assets.lib import svg as charts
from marketing_assets.lib.svg import bar_chart, line_chart, md_image, stacked_area_chart

NS = "{http://www.w3.org/2000/svg}"


def test_line_chart_is_valid_svg_with_a_polyline_per_series():
    days = [dt.date(2026, 1, 1) + dt.timedelta(weeks=i) for i in range(10)]
    svg = line_chart(days, {"actual": list(range(10)), "fitted": [v + 0.5 for v in range(10)]}, "Fit vs actual")
    root = ET.fromstring(svg)
    assert len(root.findall(f"{NS}polyline")) == 2
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # no external reference


def test_stacked_area_tops_out_at_the_total():
    svg = stacked_area_chart([0, 1, 2], {"base": [1, 1, 1], "media": [0, 2, 4]}, "Decomposition")
    assert len(ET.fromstring(svg).findall(f"{NS}polygon")) == 2


def test_bars_and_markdown_data_uri_round_trip():
    svg = bar_chart(["a", "b"], [3, -1], "ROI")
    assert len(ET.fromstring(svg).findall(f"{NS}rect")) == 1 + 2  # background + bars
    md = md_image(svg, "roi")
    assert md.startswith("![roi](data:image/svg+xml;base64,")
    assert base64.b64decode(md.split(",", 1)[1][:-1]).decode() == svg


def test_sparkline_fits_the_inline_limit_and_keeps_every_series():
    from marketing_assets.lib.svg import INLINE_LIMIT, sparkline_md

    md = sparkline_md({"actual": [float(i % 17) for i in range(156)], "fitted": [float(i % 13) for i in range(156)]}, "fit")
    assert len(md) <= INLINE_LIMIT
    svg = base64.b64decode(md.split(",", 1)[1][:-1]).decode()
    assert len(ET.fromstring(svg).findall(f"{NS}polyline")) == 2


# ------------------------------------------------------------------------------------------ label geometry

def text_boxes(svg_text: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Every <text> as (content, corners of its box) using the charts' own width estimate; rotations applied."""
    root = ET.fromstring(svg_text)
    base = float(root.get("font-size", charts.FONT_SIZE))
    out = []
    for t in root.iter(f"{NS}text"):
        text = t.text or ""
        size = float(t.get("font-size", base))
        x, y = float(t.get("x")), float(t.get("y"))
        w = charts.text_width(text, size, bold=t.get("font-weight") == "bold")
        x0 = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor", "start")]
        corners = [(x0, y - 0.8 * size), (x0 + w, y - 0.8 * size), (x0 + w, y + 0.2 * size), (x0, y + 0.2 * size)]
        m = re.match(r"rotate\(([-\d.]+) ([-\d.]+) ([-\d.]+)\)", t.get("transform", ""))
        if m:
            a, cx, cy = math.radians(float(m.group(1))), float(m.group(2)), float(m.group(3))
            corners = [(cx + (px - cx) * math.cos(a) - (py - cy) * math.sin(a), cy + (px - cx) * math.sin(a) + (py - cy) * math.cos(a)) for px, py in corners]
        out.append((text, corners))
    return out


def _separated(p: list[tuple[float, float]], q: list[tuple[float, float]]) -> bool:
    """Separating-axis test for two convex quadrilaterals (touching counts as separated)."""
    for poly in (p, q):
        for i in range(4):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % 4]
            nx, ny = y2 - y1, x1 - x2
            a = [nx * x + ny * y for x, y in p]
            b = [nx * x + ny * y for x, y in q]
            if max(a) <= min(b) + 1e-6 or max(b) <= min(a) + 1e-6:
                return True
    return False


def assert_clean_layout(svg_text: str) -> list[str]:
    """No two text boxes overlap, every box lies inside the viewBox, nothing is cut with an ellipsis; returns the texts."""
    root = ET.fromstring(svg_text)
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    boxes = text_boxes(svg_text)
    for text, corners in boxes:
        assert "…" not in text, text
        assert all(-0.5 <= x <= width + 0.5 and -0.5 <= y <= height + 0.5 for x, y in corners), (text, corners, width, height)
    for i, (a, pa) in enumerate(boxes):
        for b, pb in boxes[i + 1 :]:
            assert _separated(pa, pb), (a, b)
    return [t for t, _ in boxes]


CHANNELS = ["Outbound Sales", "Paid Search", "Organic Search", "Paid Social", "Email", "Events", "Direct", "(unattributed)", "Referral", "Display", "Paid Other",
            "Organic Social", "(all)"]
MODELS = ["First touch", "Last touch", "Last non-direct", "Linear", "Time decay", "Position-based", "W-shaped", "Markov", "Shapley"]
LONG = ["Outbound Sales & Partnerships (EMEA)", "google_search", "google_display", "web_sessions_linked_to_contact", "a"]


def test_text_width_and_wrap_are_hand_checkable():
    assert charts.text_width("Mil", 10) == pytest.approx((0.87 + 0.28 + 0.28) * 10 * 1.1)
    assert charts.text_width("ab", 10, bold=True) == pytest.approx((0.62 + 0.64) * 10 * 1.1 * 1.1)
    # "Outbound" = 0.78+0.56·2+0.5... : one word per line when the room is a single word wide, no word is ever cut
    assert charts.wrap_text("Outbound Sales & Partnerships", 60, 11) == ["Outbound", "Sales &", "Partnerships"]
    assert charts.wrap_text("google_search", 40, 11) == ["google_", "search"]
    assert "".join(charts.wrap_text("web_sessions_linked_to_contact", 1, 11)) == "web_sessions_linked_to_contact"


def _months(n: int, start: str = "2025-11-01") -> list[dt.date]:
    first = dt.date.fromisoformat(start)
    return [dt.date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def _axis_labels(svg_text: str) -> list[tuple[float, str]]:
    return [(float(t.get("x")), t.text) for t in ET.fromstring(svg_text).iter(f"{NS}text") if re.fullmatch(r"[A-Z][a-z]{2} \d{4}|\d{4}|\d{4}-\d{2}-\d{2}", t.text or "")]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 7, 12, 13, 18, 24, 30, 36])
@pytest.mark.parametrize("width", [760, 440])
def test_forecast_month_axis_names_each_month_once_at_its_start(n, width):
    months = _months(n)
    values = [100.0 + i for i in range(n)]
    chart = charts.band_chart(months, values, [v - 10 for v in values], [v + 10 for v in values], width=width, y_label="USD", name="Expected revenue", band_name="Likely range")
    labels = _axis_labels(chart)
    texts = [t for _, t in labels]
    assert texts and len(texts) == len(set(texts)), texts  # each month once
    dots = {round(float(c.get("cx")), 1): m for c, m in zip(ET.fromstring(chart).iter(f"{NS}circle"), months)}
    for x, text in labels:  # every tick sits on a data point that is a month start, and names that month
        m = dots[round(x, 1)]
        assert text in (m.strftime("%b %Y"), str(m.year)), (text, m)
    if n <= 3 or (n <= 6 and width >= 760):  # room for every month: each one is named
        assert texts == [m.strftime("%b %Y") for m in months]
    steps = {(dt.datetime.strptime(b, "%b %Y").year * 12 + dt.datetime.strptime(b, "%b %Y").month) - (dt.datetime.strptime(a, "%b %Y").year * 12 + dt.datetime.strptime(a, "%b %Y").month)
             for a, b in zip(texts, texts[1:])} if all(" " in t for t in texts) else {12}
    assert len(steps) <= 1  # evenly spaced
    assert_clean_layout(chart)


def test_three_month_forecast_axis_is_exactly_the_three_months():
    chart = charts.band_chart(_months(3, "2026-12-01"), [3.8e6, 4.2e6, 3.2e6], [2.9e6, 3.2e6, 2.2e6], [4.8e6, 5.3e6, 4.1e6])
    assert [t for _, t in _axis_labels(chart)] == ["Dec 2026", "Jan 2027", "Feb 2027"]


def test_weekly_axis_over_three_years_ticks_month_starts_only():
    weeks = [dt.date(2023, 12, 4) + dt.timedelta(weeks=i) for i in range(156)]
    chart = charts.line_chart(weeks, {"actual": [1.0] * 156}, "")
    texts = [t for _, t in _axis_labels(chart)]
    assert texts == ["Jan 2024", "Jul 2024", "Jan 2025", "Jul 2025", "Jan 2026", "Jul 2026"]


def _line(width: int) -> str:
    return charts.line_chart(list(range(13)), {c: [float(i * k) for i in range(13)] for k, c in enumerate(CHANNELS)}, "", width=width, y_label="USD", height=300)


def _stacked(width: int) -> str:
    weeks = [dt.date(2024, 1, 1) + dt.timedelta(weeks=i) for i in range(60)]
    return charts.stacked_area_chart(weeks, {c: [1000.0] * 60 for c in ["baseline", "trend", "seasonality", "promo", *LONG[:3]]}, "", width=width, y_label="USD")


def _grouped(width: int) -> str:
    return charts.grouped_bar_chart(CHANNELS[:8], {m: [1e6 * (i + 1)] * 8 for i, m in enumerate(MODELS)}, "", width=width, height=360, y_label="USD")


def _grouped_long(width: int) -> str:
    return charts.grouped_bar_chart(LONG, {"Current spend": [1e6] * 5, "Planned spend": [2e6] * 5}, "", width=width, y_label="USD")


def _hbar(width: int) -> str:
    return charts.hbar_chart(LONG + CHANNELS, [float(i) - 3 for i in range(len(LONG) + len(CHANNELS))], "", width=width, value_labels=[f"${i}.0M ({i}.5%)" for i in range(18)])


def _interval(width: int) -> str:
    return charts.interval_chart(LONG, [3.96, 1.88, 1.69, 1.04, 0.2], [0.61, 1.64, 1.39, 0.5, 0.1], [5.75, 2.2, 1.94, 1.43, 0.3], "", width=width, reference=1.0,
                                 reference_label="break-even (1.0×)", value_labels=["3.96×", "1.88×", "1.69×", "1.04×", "0.20×"])


def _funnel(width: int) -> str:
    return charts.funnel_chart(["Known", "Engaged", "Marketing qualified lead", "SQL", "Opportunity", "Customer"], [1723, 1723, 902, 498, 498, 39], "", width=width,
                               notes=["", "100.0%", "52.4%", "55.2%", "100.0%", "7.8%"])


def _band(width: int) -> str:
    return charts.band_chart(_months(24), [1e6] * 24, [0.8e6] * 24, [1.2e6] * 24, "", width=width, y_label="USD", name="Expected revenue", band_name="Likely range (80 % interval)")


def _bar(width: int) -> str:
    return charts.bar_chart([f"{c} now" for c in LONG[:4]] + [f"{c} plan" for c in LONG[:4]], [1e6, 2e6, 3e6, 4e6, 2e6, 2e6, 1e6, 1e6], "Spend: current vs optimal plan", width=width)


CHARTS = {"line": _line, "stacked": _stacked, "grouped": _grouped, "grouped_long": _grouped_long, "hbar": _hbar, "interval": _interval, "funnel": _funnel, "band": _band, "bar": _bar}
WHOLE = {"line": CHANNELS, "stacked": LONG[:3], "grouped": CHANNELS[:8] + MODELS, "grouped_long": LONG, "hbar": LONG + CHANNELS, "interval": LONG,
         "funnel": ["Marketing qualified lead"], "band": ["Expected revenue", "Likely range (80 % interval)"], "bar": []}


@pytest.mark.parametrize("width", [1000, 760, 560, 440])
@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_labels_neither_overlap_nor_leave_the_chart_nor_get_cut(name, width):
    chart = CHARTS[name](width)
    texts = assert_clean_layout(chart)
    joined = " ".join(texts).replace("_ ", "_")
    for label in WHOLE[name]:  # every label is shown whole (on one line or wrapped onto several)
        assert label in texts or label in joined or " ".join(label.split()) in joined, (label, texts)


def test_layout_check_catches_overlap_and_cut_labels():
    """The geometry helper itself fails on the old faults: two labels on top of each other, a label cut with an ellipsis, a label off the chart."""
    head = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 50" font-size="12">'
    with pytest.raises(AssertionError):
        assert_clean_layout(head + '<text x="10" y="20">google_search</text><text x="60" y="20">google_display</text></svg>')
    with pytest.raises(AssertionError):
        assert_clean_layout(head + '<text x="10" y="20">Outbound…</text></svg>')
    with pytest.raises(AssertionError):
        assert_clean_layout(head + '<text x="230" y="20">Referral</text></svg>')
    assert_clean_layout(head + '<text x="10" y="20">google_search</text><text x="110" y="20">google_display</text></svg>')
