"""Extract checks: the published column list holds, no PII pattern in any file, KPIs reconcile with their sources."""

from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.constants import EXTRACTS, SOURCES, fq
from marketing_assets.extracts import EXTRACT_COLUMNS
from marketing_assets.lib.publish import find_pii
from marketing_assets.resources import Warehouse

_PANDAS_KIND = {"string": "O", "int": "i", "float": "f", "date": "O"}


def _build_file_checks(name: str) -> list[dg.AssetChecksDefinition]:
    key = dg.AssetKey([EXTRACTS, name])

    @dg.asset_check(asset=key, name="published_columns", blocking=True)
    def published_columns(warehouse: Warehouse) -> dg.AssetCheckResult:
        """Parquet and CSV files hold exactly the published columns, in order, with the published types."""
        problems = []
        expected = list(EXTRACT_COLUMNS[name])
        parquet = pd.read_parquet(Path(warehouse.extracts_dir) / f"{name}.parquet")
        csv_cols = list(pd.read_csv(Path(warehouse.extracts_dir) / f"{name}.csv", nrows=0).columns)
        if list(parquet.columns) != expected:
            problems.append(f"parquet columns {list(parquet.columns)}")
        if csv_cols != expected:
            problems.append(f"csv columns {csv_cols}")
        for col, kind in EXTRACT_COLUMNS[name].items():
            if col in parquet and len(parquet) and parquet[col].dropna().size and parquet[col].dtype.kind not in (_PANDAS_KIND[kind], "i" if kind == "float" else "_"):
                problems.append(f"{col} is {parquet[col].dtype}, published as {kind}")
        return dg.AssetCheckResult(
            passed=not problems,
            description="files match the published column list" if not problems else "; ".join(problems),
            metadata={"published_columns": expected, "problems": problems},
        )

    @dg.asset_check(asset=key, name="no_pii_in_files", blocking=True)
    def no_pii_in_files(warehouse: Warehouse) -> dg.AssetCheckResult:
        """No email address or phone number pattern in any text column of the published files."""
        found = {}
        for suffix, reader in ((".parquet", pd.read_parquet), (".csv", lambda p: pd.read_csv(p, dtype=str))):
            hits = find_pii(reader(Path(warehouse.extracts_dir) / f"{name}{suffix}"))
            found |= {f"{suffix[1:]}:{c}": v for c, v in hits.items()}
        return dg.AssetCheckResult(
            passed=not found,
            description="no email or phone pattern" if not found else f"PII-like values in {', '.join(found)}",
            metadata={"columns_with_pii": found},
        )

    return [published_columns, no_pii_in_files]


@dg.asset_check(asset=dg.AssetKey([EXTRACTS, "executive_kpis"]), name="revenue_reconciles_with_erp", blocking=True)
def revenue_reconciles_with_erp(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Monthly total revenue summed over all months = ERP sales − returns (to the cent)."""
    with warehouse.get_connection() as con:
        extract, erp = con.execute(
            f"""SELECT
                (SELECT coalesce(sum(value), 0) FROM {fq(EXTRACTS, 'executive_kpis')}
                  WHERE grain = 'month' AND kpi = 'total_revenue' AND dimension IS NULL),
                (SELECT coalesce(sum(CASE WHEN transaction_type = 'sale' THEN amount ELSE -amount END), 0)::DOUBLE
                  FROM {fq(SOURCES, 'erp_orders')})"""
        ).fetchone()
    gap = extract - erp
    return dg.AssetCheckResult(
        passed=abs(gap) <= 0.01,
        description=f"extract {extract:,.2f} vs ERP net {erp:,.2f} (gap {gap:,.2f})",
        metadata={"extract_revenue": extract, "erp_net_revenue": erp, "gap": gap},
    )


extract_checks = [c for name in EXTRACT_COLUMNS for c in _build_file_checks(name)] + [revenue_reconciles_with_erp]
