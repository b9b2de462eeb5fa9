"""Every table asset's column schema (``dagster/column_schema``), read from the table's Pandera contract.

``definitions.py`` maps :func:`with_column_schema` over all asset specs, so no asset repeats its columns:
a column's name, type, nullability and description are stated once, in ``schemas.py`` (extracts: in
``extracts.EXTRACT_COLUMNS`` and the KPI dictionary). HTML reports publish a file, not a table: they name it instead.
"""

from __future__ import annotations

import copy

import dagster as dg
import pandera.pandas as pa

from marketing_assets import extracts, schemas
from marketing_assets.constants import ATTRIBUTION, EXTRACTS, IDENTITY, KPIS, MMM, QUARANTINE_TABLE, SOURCES, SPEND, TOUCHPOINTS
from marketing_assets.lib import kpis
from marketing_assets.lib.reports.pages import REPORT_FILES

_SQL_TO_DISPLAY = {"VARCHAR": "string", "BIGINT": "int", "DOUBLE": "float", "BOOLEAN": "bool", "TIMESTAMP": "timestamp (UTC)", "DATE": "date"}
_DTYPE_TO_DISPLAY = {"str": "string", "int64": "int", "Int64": "int", "float64": "float", "bool": "bool", "datetime64[ns]": "timestamp (UTC)"}
_EXTRACT_DTYPES = {"string": str, "float": float, "int": "Int64", "bool": "boolean", "date": "datetime64[ns]", "timestamp": "datetime64[ns]"}


def _display_type(column: pa.Column) -> str:
    """The warehouse type when the contract states one (``sql_type``, extracts' published ``type``), else the dtype's."""
    meta = column.metadata or {}
    if "type" in meta:
        return meta["type"]
    if "sql_type" in meta:
        return _SQL_TO_DISPLAY.get(meta["sql_type"], meta["sql_type"].lower())
    return _DTYPE_TO_DISPLAY.get(str(column.dtype), str(column.dtype))


def table_schema(schema: pa.DataFrameSchema) -> dg.TableSchema:
    """A Pandera schema as Dagster's column schema; per-channel columns (see ``schemas.PER_CHANNEL_COLUMN``) as ``<channel>``."""
    columns = [
        dg.TableColumn(
            name, _display_type(column), description=column.description,
            constraints=dg.TableColumnConstraints(nullable=column.nullable, unique=column.unique),
        )
        for name, column in schema.columns.items()
    ]
    per_channel = (schema.metadata or {}).get(schemas.PER_CHANNEL_COLUMN)
    if per_channel:
        columns.append(dg.TableColumn("<channel>", "float", description=per_channel))
    return dg.TableSchema(columns=columns)


def extract_schema(name: str, dictionary: kpis.KpiDictionary) -> pa.DataFrameSchema:
    """An extract's published columns as a Pandera schema, described from the KPI dictionary and the column notes."""
    descriptions = extracts.column_descriptions(name, dictionary)
    return pa.DataFrameSchema(
        {
            column: pa.Column(_EXTRACT_DTYPES[kind], nullable=True, description=descriptions[column], metadata={"type": kind})
            for column, kind in extracts.EXTRACT_COLUMNS[name].items()
        },
        name=name,
    )


def contract(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    """The model's schema, carrying its ``Config.metadata`` (``to_schema`` leaves it out), with the model's own
    columns before those it inherits (a source table's lineage columns ``source_file``, ``source_line`` come last)."""
    schema = copy.copy(model.to_schema())  # to_schema is cached: never change the shared one
    schema.metadata = dict(getattr(model.Config, "metadata", None) or {})
    own = vars(model).get("__annotations__", {})
    schema.columns = {name: col for name, col in schema.columns.items() if name in own} | {
        name: col for name, col in schema.columns.items() if name not in own
    }
    return schema


def table_schemas() -> dict[dg.AssetKey, pa.DataFrameSchema]:
    """Every table asset's contract, by asset key."""
    models = {
        SOURCES: {**schemas.SOURCE_MODELS, QUARANTINE_TABLE: schemas.Quarantine},
        SPEND: schemas.SPEND_MODELS,
        IDENTITY: schemas.IDENTITY_MODELS,
        TOUCHPOINTS: schemas.TOUCHPOINT_MODELS,
        ATTRIBUTION: schemas.ATTRIBUTION_TABLE_MODELS,
        MMM: {**schemas.MMM_MODELS, **schemas.MMM_UNCHECKED_MODELS},
        KPIS: schemas.KPI_BASE_MODELS,
    }
    out = {dg.AssetKey([group, name]): contract(model) for group, tables in models.items() for name, model in tables.items()}
    dictionary = kpis.load_kpi_dictionary()
    return out | {dg.AssetKey([EXTRACTS, name]): extract_schema(name, dictionary) for name in extracts.EXTRACT_COLUMNS}


def with_column_schema(spec: dg.AssetSpec, contracts: dict[dg.AssetKey, pa.DataFrameSchema]) -> dg.AssetSpec:
    """The spec with its table's column schema, or (HTML reports) the file it publishes under the reports dir."""
    if spec.key in contracts:
        return spec.merge_attributes(metadata={"dagster/column_schema": table_schema(contracts[spec.key])})
    if spec.key.path[0] == EXTRACTS and spec.key.path[-1] in REPORT_FILES:
        return spec.merge_attributes(metadata={"published_file": f"<MARKETING_REPORTS_DIR>/{REPORT_FILES[spec.key.path[-1]]}"})
    return spec
