"""The preflight summary of a first run on one's own exports, and absent tables in the run summary."""

from pathlib import Path

import dagster as dg

from marketing_assets.definitions import defs
from marketing_assets.lib.kpis import load_kpi_dictionary
from marketing_assets.preflight import preflight, render, table_uses
from marketing_assets.run import _rows_text, preflight_text
from marketing_assets.sources import CONTRACTS


def _entries(root: Path) -> dict:
    return {e.table: e for e in preflight(root, CONTRACTS, defs.resolve_asset_graph())}


def test_preflight_names_found_and_absent_tables_of_a_minimal_crm_export(minimal_landing):
    entries = _entries(minimal_landing)
    found = {t for t, e in entries.items() if e.status == "found"}
    assert found == {"crm_contacts", "crm_marketing_touchpoints", "crm_sales_touchpoints", "crm_opportunities"}
    assert entries["crm_opportunities"].files == ("crm/opportunities.csv",) and entries["crm_opportunities"].bytes > 0
    assert entries["ads_google"].status == "absent" and entries["ads_google"].optional

    text = render(list(entries.values()), minimal_landing)
    assert text.splitlines()[0].endswith("(own data): 4 of 15 source tables have files")
    google = next(i for i, line in enumerate(text.splitlines()) if line.strip().startswith("absent  ads_google"))
    without = text.splitlines()[google + 1]
    # what an absent ad export leaves without rows: the spend table and the spend KPIs of the dictionary
    assert "spend/ad_spend_daily gets none of its rows" in without and "ad_spend" in without and "blended_roas" in without
    assert "the run will stop" not in text


def test_preflight_warns_when_a_required_table_is_absent_and_marks_an_empty_file(minimal_landing):
    (minimal_landing / "crm" / "opportunities.csv").unlink()
    (minimal_landing / "ads").mkdir()
    (minimal_landing / "ads" / "google_ads.csv").write_bytes(b"")
    entries = _entries(minimal_landing)
    assert entries["crm_opportunities"].status == "absent" and not entries["crm_opportunities"].optional
    assert entries["ads_google"].status == "empty"
    text = render(list(entries.values()), minimal_landing)
    assert "crm_opportunities          REQUIRED" in text
    assert "the run will stop: required table(s) crm_opportunities have no landing file" in text


def test_table_uses_follow_the_graph_and_the_dictionary():
    graph, dictionary = defs.resolve_asset_graph(), load_kpi_dictionary()
    feeds, kpis = table_uses(graph, dictionary, "erp_inventory")
    assert "sources/quarantine" not in feeds
    # every KPI listed reads the table or an asset that reads it directly, and every such KPI is listed
    reads = {"sources/erp_inventory", *feeds}
    assert set(kpis) == {k.name for k in dictionary if reads & set(k.source_assets)} and "inventory_turnover" in kpis
    for child in feeds:
        assert dg.AssetKey(["sources", "erp_inventory"]) in graph.get(dg.AssetKey.from_user_string(child)).parent_keys


def test_preflight_text_of_the_run_resolves_the_landing_path(minimal_landing, monkeypatch):
    monkeypatch.chdir(minimal_landing.parent)
    text = preflight_text(defs, Path("landing"))
    assert text.startswith(f"preflight: landing zone {minimal_landing.resolve()} (own data)")


def test_run_summary_shows_an_absent_source_as_absent_not_zero_rows():
    absent = {"dagster/row_count": dg.IntMetadataValue(0), "file_count": dg.IntMetadataValue(0)}
    empty_file = {"dagster/row_count": dg.IntMetadataValue(0), "file_count": dg.IntMetadataValue(1)}
    assert _rows_text(absent).strip().startswith("absent (no landing file")
    assert _rows_text(empty_file).strip() == "0 rows"
    assert _rows_text({}).strip() == "- rows"
