"""Every table asset shows its columns in the UI: a described column schema that matches the table it writes."""

import dagster as dg
import duckdb
import pytest

from marketing_assets.column_schemas import contract, table_schema
from marketing_assets.definitions import defs
from marketing_assets.lib.reports.pages import REPORT_FILES
from marketing_assets.schemas import MmmWeeklyFrame

ASSET_GRAPH = defs.resolve_asset_graph()
TABLE_ASSETS = sorted(
    (k for k in ASSET_GRAPH.get_all_asset_keys() if k.path[-1] not in REPORT_FILES), key=lambda k: k.to_user_string()
)
PER_CHANNEL = "<channel>"


def _schema(key: dg.AssetKey) -> dg.TableSchema:
    return ASSET_GRAPH.get(key).metadata.get("dagster/column_schema")


def test_every_table_asset_has_a_described_column_schema():
    assert len(TABLE_ASSETS) > 40
    for key in TABLE_ASSETS:
        schema = _schema(key)
        assert isinstance(schema, dg.TableSchema) and schema.columns, key.to_user_string()
        assert [c.name for c in schema.columns if not (c.description or "").strip()] == [], key.to_user_string()
        assert all(c.type and c.constraints.nullable in (True, False) for c in schema.columns), key.to_user_string()


def test_report_assets_name_their_file_instead():
    for name, file in REPORT_FILES.items():
        spec = ASSET_GRAPH.get(dg.AssetKey(["extracts", name]))
        assert "dagster/column_schema" not in spec.metadata and spec.metadata["published_file"].endswith(file)


def test_per_channel_columns_show_as_one_described_column():
    columns = {c.name: c for c in table_schema(contract(MmmWeeklyFrame)).columns}
    assert "week" in columns and "one column per channel" in columns[PER_CHANNEL].description


def test_column_schemas_match_the_materialised_tables(demo_graph):
    result, tmp, _ = demo_graph
    assert result.success
    with duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True) as con:
        found = {}
        for schema, table, column in con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns").fetchall():
            found.setdefault(dg.AssetKey([schema, table]), set()).add(column)
    wrong = {}
    for key in TABLE_ASSETS:
        declared = {c.name for c in _schema(key).columns}
        actual = found.get(key, set())
        if PER_CHANNEL in declared:  # one column per MMM channel: at least one, every other column declared
            declared.discard(PER_CHANNEL)
            channels = actual - declared
            if not channels:
                wrong[key.to_user_string()] = "no per-channel column"
            actual = actual - channels
        if declared != actual:
            wrong[key.to_user_string()] = {"undeclared": sorted(actual - declared), "not in table": sorted(declared - actual)}
    assert wrong == {}
