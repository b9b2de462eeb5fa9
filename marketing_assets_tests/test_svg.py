"""SVG charts: valid, self-contained XML with one mark per series."""

import base64
import datetime as dt
import xml.etree.ElementTree as ET

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
