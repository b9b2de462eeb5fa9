"""Extract assets: governed KPI definitions and dashboard marts, in the warehouse and as Parquet + CSV files.

Every KPI value comes from its formula in ``config/kpis.yaml`` (via :mod:`marketing_assets.lib.kpis`);
nothing here re-types a formula. Files are written atomically to ``MARKETING_EXTRACTS_DIR``.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.constants import ATTRIBUTION, EXTRACTS, IDENTITY, SOURCES, fq
from marketing_assets.lib import kpis
from marketing_assets.lib.publish import write_extract
from marketing_assets.resources import Warehouse

# Published column lists: a BI tool connects once; changing one is a versioned, announced change.
EXTRACT_COLUMNS: dict[str, dict[str, str]] = {
    "kpi_dictionary": {
        "name": "string", "label": "string", "description": "string", "formula": "string", "base": "string",
        "time_grains": "string", "dimensions": "string", "source_assets": "string", "owner": "string",
        "refresh": "string", "unit": "string", "version": "int", "dictionary_version": "int",
    },
    "executive_kpis": {
        "grain": "string", "period": "date", "kpi": "string", "dimension": "string", "dimension_value": "string",
        "value": "float", "unit": "string", "kpi_version": "int",
    },
}

EXECUTIVE_KPIS = {
    "week": ["total_revenue", "revenue_growth_wow", "gross_margin_pct", "roas", "cac", "conversion_rate_session_to_lead",
             "revenue_by_product", "margin_by_product", "revenue_by_channel"],
    "month": ["total_revenue", "revenue_growth_mom", "revenue_growth_yoy", "gross_margin_pct", "roas", "cac",
              "conversion_rate_session_to_lead", "inventory_turnover", "revenue_by_product", "margin_by_product", "revenue_by_channel"],
}
BREAKDOWN_COLUMNS = ("product_name", "product_id", "category", "sales_channel", "channel_group")


def _publish(context: dg.AssetExecutionContext, warehouse: Warehouse, con, name: str, frame: pd.DataFrame) -> dict:
    frame = frame[list(EXTRACT_COLUMNS[name])]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {EXTRACTS}")
    con.register("_extract_df", frame)
    con.execute(f"CREATE OR REPLACE TABLE {fq(EXTRACTS, name)} AS SELECT * FROM _extract_df")
    con.unregister("_extract_df")
    paths = write_extract(frame, name, Path(warehouse.extracts_dir))
    context.log.info(f"{name}: {len(frame)} rows written to {paths['parquet'].parent}")
    return {
        "dagster/row_count": len(frame),
        "files": [str(p) for p in paths.values()],
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in EXTRACT_COLUMNS[name].items()]),
    }


@dg.asset(kinds={"duckdb", "parquet", "csv"})
def kpi_dictionary(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per governed KPI: definition, SQL formula, grains, sources, owner, refresh, unit, target and version."""
    dictionary = kpis.load_kpi_dictionary()
    frame = kpis.dictionary_frame(dictionary)
    frame["dictionary_version"] = dictionary.version
    with warehouse.get_connection() as con:
        meta = _publish(context, warehouse, con, "kpi_dictionary", frame)
    return dg.MaterializeResult(metadata={**meta, "dictionary_version": dictionary.version, "kpis": len(frame)})


def _long_form(frame: pd.DataFrame, grain: str, versions: dict[str, int]) -> pd.DataFrame:
    present = [c for c in BREAKDOWN_COLUMNS if c in frame.columns]
    out = pd.DataFrame({"grain": grain, "period": pd.to_datetime(frame["period"]).dt.date, "kpi": frame["kpi"]})
    out["dimension"], out["dimension_value"] = None, None
    for col in present:
        has = frame[col].notna() & out["dimension"].isna()
        out.loc[has, "dimension"] = col
        out.loc[has, "dimension_value"] = frame.loc[has, col].astype(str)
    out["value"], out["unit"] = frame["value"].astype(float), frame["unit"]
    out["kpi_version"] = out["kpi"].map(versions).astype(int)
    return out


@dg.asset(
    deps=[dg.AssetKey([SOURCES, t]) for t in ("erp_orders", "erp_products", "erp_inventory", "erp_customers", "web_sessions", "crm_contacts", "crm_opportunities")]
    + [dg.AssetKey([IDENTITY, "ad_spend_daily"]), dg.AssetKey([ATTRIBUTION, "attribution_credits"]), dg.AssetKey([EXTRACTS, "kpi_dictionary"])],
    kinds={"duckdb", "parquet", "csv"},
)
def executive_kpis(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per grain (week, month) × period × KPI × dimension: revenue, growth, margin, ROAS, CAC, conversion, inventory turnover, by product and channel."""
    dictionary = kpis.load_kpi_dictionary()
    versions = {k.name: k.version for k in dictionary}
    with warehouse.get_connection() as con:
        parts = [
            _long_form(kpis.compute_kpis(con, names, grain, dictionary=dictionary, skip_missing=True), grain, versions)
            for grain, names in EXECUTIVE_KPIS.items()
        ]
        frame = pd.concat(parts, ignore_index=True)
        meta = _publish(context, warehouse, con, "executive_kpis", frame)
    latest = frame[(frame.grain == "month") & frame.dimension.isna()].sort_values("period").groupby("kpi").tail(1)
    return dg.MaterializeResult(
        metadata={**meta, "dictionary_version": dictionary.version, "latest_month": dg.MetadataValue.md(latest[["kpi", "period", "value", "unit"]].to_markdown(index=False))}
    )
