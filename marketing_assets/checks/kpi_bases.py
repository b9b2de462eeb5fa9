"""KPI base checks: each ``kpis.<base>`` table has its definition's columns and types, and a unique, non-NULL key."""

import dagster as dg

from marketing_assets.constants import KPIS
from marketing_assets.kpi_bases import BASE_TABLES, base_sql
from marketing_assets.lib import kpis
from marketing_assets.lib.kpis import load_kpi_dictionary
from marketing_assets.lib.refs import ref
from marketing_assets.lib.sql import ident
from marketing_assets.resources import Warehouse


def _columns(con, select_sql: str) -> list[tuple[str, str]]:
    """(name, type) of a SELECT's columns, from an empty result (nothing is computed)."""
    frame = con.execute(f"SELECT * FROM ({select_sql}) AS q LIMIT 0").df()
    return [(c, str(t)) for c, t in frame.dtypes.items()]


def _key_counts(con, table: str, key: tuple[str, ...]) -> tuple[int, int, int]:
    """Rows, rows with a NULL key column and duplicated key values, in one statement (one grouping of the key)."""
    cols = ", ".join(ident(k) for k in key)
    nulls = " OR ".join(f"{ident(k)} IS NULL" for k in key)
    rows, null_rows, duplicated = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE {nulls}),
                   (SELECT count(*) FROM (SELECT {cols} FROM {table} GROUP BY {cols} HAVING count(*) > 1) AS d)
            FROM {table}"""
    ).fetchone()
    return int(rows), int(null_rows), int(duplicated)


def _build_contract_check(base: str) -> dg.AssetChecksDefinition:
    key = kpis.BASE_RELATIONS[base].key

    @dg.asset_check(
        asset=dg.AssetKey([KPIS, base]), name="matches_definition", blocking=True,
        description="The table has the columns and types of the base relation's definition (lib/kpis.py), in order"
                    + (f"; ({', '.join(key)}) is unique and never NULL." if key else "."),
    )
    def matches_definition(warehouse: Warehouse) -> dg.AssetCheckResult:
        table = ref(KPIS, base)
        with warehouse.get_connection() as con:
            have, want = _columns(con, f"SELECT * FROM {table}"), _columns(con, base_sql(base, load_kpi_dictionary()))
            columns_ok = have == want
            if key and columns_ok:
                rows, null_rows, duplicated = _key_counts(con, table, key)
            else:
                (rows,), null_rows, duplicated = con.execute(f"SELECT count(*) FROM {table}").fetchone(), None, None
        problems = [] if columns_ok else [f"columns {have} differ from the definition's {want}"]
        problems += [f"{duplicated} duplicated key value(s) on ({', '.join(key)})"] if duplicated else []
        problems += [f"{null_rows} rows with a NULL in the key ({', '.join(key)})"] if null_rows else []
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) if problems else f"{rows} rows with the definition's {len(want)} columns"
            + (f", unique non-NULL key ({', '.join(key)})" if key else ""),
            metadata={"rows": rows, "columns": [c for c, _ in have], "key": list(key), "duplicated_keys": duplicated,
                      "rows_with_null_key": null_rows},  # counts only: the keys are CRM / ERP ids
        )

    return matches_definition


kpi_base_checks = [_build_contract_check(base) for base in BASE_TABLES]
