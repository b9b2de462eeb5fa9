"""The run summary: the check tally agrees with the data-quality report and its page; stale published files are named."""

import re

import dagster as dg
import duckdb
import pandas as pd

from marketing_assets.constants import EXTRACTS
from marketing_assets.lib import tally
from marketing_assets.reports import published_files
from marketing_assets.run import summarise
from marketing_assets_tests.conftest import make_resources


def _summary_counts(text: str) -> dict[str, int]:
    line = next(line for line in text.splitlines() if line.startswith("checks: "))
    return {status: int(n) for n, status in re.findall(r"(\d+) (passed|warned|failed|skipped)", line)}


def test_check_tally_is_the_same_in_run_summary_report_metadata_extract_and_page(demo_graph):
    result, tmp, _ = demo_graph
    text, _ = summarise(result)
    from_summary = _summary_counts(text)
    assert set(from_summary) == set(tally.STATUSES) and tally.SCOPE in text

    (mat,) = [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey([EXTRACTS, "data_quality_report"])]
    from_metadata = {s: mat.metadata[f"checks_{s}"].value for s in tally.STATUSES}
    assert mat.metadata["tally_scope"].value == tally.SCOPE

    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM extracts.data_quality_report WHERE section = 'check'").df()
    from_extract = tally.tally(tally.outcomes_from_rows(rows)).counts

    page = (tmp / "reports" / "data_quality.html").read_text(encoding="utf-8")
    tiles = dict(re.findall(r'<div class="label">(Failed|Warned|Passed|Skipped)</div><div class="value">([\d,]+)', page))
    from_page = {label.lower().replace("skipped", "skipped"): int(n.replace(",", "")) for label, n in tiles.items()}

    assert from_summary == from_metadata == from_extract == from_page, (from_summary, from_metadata, from_extract, from_page)
    assert sum(from_summary.values()) == mat.metadata["checks"].value
    # every check of the run is counted exactly once: the tally plus the report's own checks cover all evaluations
    evaluated = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()}
    own = {k for k in evaluated if k[0] in ("extracts/data_quality_report", "extracts/data_quality_html")}
    assert sum(from_summary.values()) == len(evaluated - own) and len(own) == 4
    assert f"the data-quality report's own checks: {len(own)} passed" in text
    # the page lists each counted check once
    listed = re.findall(r'<details class="asset"', page)
    assert listed and len(rows) == len(rows.drop_duplicates(["asset_key", "check_name"]))


def test_run_summary_names_stale_files_with_their_publish_time_and_reason(tmp_path, minimal_landing, monkeypatch):
    from marketing_assets import extracts
    from marketing_assets.definitions import defs

    resources = make_resources(tmp_path, minimal_landing)
    assets = [defs.get_assets_def(dg.AssetKey([EXTRACTS, name])) for name in ("kpi_dictionary", "executive_report")]
    assert dg.materialize(assets, resources=resources).success
    published = published_files(str(tmp_path / "extracts"), str(tmp_path / "reports"))

    real = extracts.kpis.dictionary_frame
    monkeypatch.setattr(extracts.kpis, "dictionary_frame", lambda d: real(d).assign(owner="+1 415 555 0100"))
    result = dg.materialize(assets, resources=resources, raise_on_error=False)
    assert not result.success
    text, _ = summarise(result, published)
    mtime = pd.Timestamp((tmp_path / "extracts" / "kpi_dictionary.parquet").stat().st_mtime, unit="s", tz="UTC")
    assert f"stale: kpi_dictionary.parquet (published {mtime:%Y-%m-%d %H:%M} UTC; not refreshed by this run: asset failed)" in text
    assert "stale: kpi_dictionary.csv (published" in text
    assert re.search(r"stale: executive\.html \(published [\d-]+ [\d:]+ UTC; not refreshed by this run: skipped: upstream extracts/kpi_dictionary failed\)", text)
    assert "missing: funnel.parquet (never published; not written by this run: not selected)" in text
    assert "415" not in text  # no raw PII in the summary


def test_stale_file_names_the_failed_blocking_check_upstream(tmp_path):
    @dg.asset
    def tiny():
        return None

    @dg.asset_check(asset=tiny, blocking=True)
    def must_hold():
        return dg.AssetCheckResult(passed=False, description="broken")

    @dg.asset(deps=[tiny])
    def downstream():
        return None

    old = tmp_path / "downstream.csv"
    old.write_text("a\n1\n")
    result = dg.materialize([tiny, downstream, must_hold], raise_on_error=False)
    text, blocking_failed = summarise(result, {downstream.key: [old], tiny.key: [tmp_path / "tiny.csv"]})
    assert blocking_failed
    assert "stale: downstream.csv (published " in text and "not refreshed by this run: skipped: upstream tiny:must_hold failed)" in text
    assert "tiny.csv" not in text  # tiny materialised in this run: nothing stale
