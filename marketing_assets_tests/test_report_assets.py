"""The three HTML report assets on the demo graph: written, self-contained, dated, and non-blank in headless Chromium."""

import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from marketing_assets_tests.test_reports import _png_pixels, _screenshot

REPORTS = ("executive", "marketing_roi", "data_quality")


def test_report_assets_write_self_contained_dated_files(demo_graph):
    result, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        newest_order = con.execute("SELECT max(order_date)::DATE FROM sources.erp_orders").fetchone()[0]
    for name in REPORTS:
        text = (tmp / "reports" / f"{name}.html").read_text(encoding="utf-8")
        assert "Data fresh to" in text and str(newest_order) in text, name
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.I), name
        assert "<script" not in text.lower(), name
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in result.get_asset_check_evaluations()}
    for asset in ("executive_report", "marketing_roi_report", "data_quality_html"):
        assert checks[(asset, "self_contained_and_dated")], asset


def test_data_quality_report_reads_this_runs_check_results(demo_graph):
    result, tmp, _ = demo_graph
    evaluated = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT asset_key, check_name, status, run_id FROM extracts.data_quality_report WHERE section = 'check'"
        ).fetchall()
    own = {"extracts/data_quality_report", "extracts/data_quality_html"}  # evaluated after the report is written
    for asset_key, check_name, status, run_id in rows:
        if asset_key in own:
            assert (status, run_id) == ("pending", None), (asset_key, check_name)
            continue
        ev = evaluated[(asset_key, check_name)]
        said_skipped = "skipped" in ev.metadata and ev.metadata["skipped"].value
        expected = "skipped" if said_skipped else "passed" if ev.passed else ("warned" if ev.severity.value == "WARN" else "failed")
        assert (status, run_id) == (expected, result.run_id), (asset_key, check_name)


def test_every_check_and_freshness_row_names_its_owner(demo_graph):
    """The owner of a check is its asset layer's team (config/owners.yaml), as the Dagster UI shows for the asset."""
    import dagster as dg

    from marketing_assets.definitions import defs
    from marketing_assets.lib.owners import load_owners

    _, tmp, _ = demo_graph
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT asset_key, owner FROM extracts.data_quality_report WHERE section IN ('check', 'freshness')").fetchall()
    graph = defs.resolve_asset_graph()
    assert rows
    for asset_key, owner in rows:
        assert owner == load_owners()[asset_key.split("/")[0]], asset_key
        assert graph.get(dg.AssetKey(asset_key.split("/"))).owners == [owner], asset_key
    assert set(load_owners()) == {graph.get(k).group_name for k in graph.get_all_asset_keys()}


@pytest.mark.slow
def test_report_assets_render_non_blank_in_headless_chromium(demo_graph, tmp_path):
    if shutil.which("chromium") is None:
        if os.environ.get("MARKETING_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (MARKETING_REQUIRE_CHROMIUM=1) but not installed")
        pytest.skip("chromium not installed")
    _, tmp, _ = demo_graph
    out = Path(os.environ.get("MARKETING_TEST_ARTEFACTS") or tmp_path) / "demo_reports"
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORTS:
        png = out / f"{name}.png"
        _screenshot(tmp / "reports" / f"{name}.html", png, (1280, 3000), tmp_path / f"profile-{name}")
        width, height, pixels = _png_pixels(png)
        non_white = sum(1 for p in pixels if min(p) < 235) / len(pixels)
        assert width >= 1150 and len(set(pixels)) > 30 and non_white > 0.05, (png, len(set(pixels)), non_white)
