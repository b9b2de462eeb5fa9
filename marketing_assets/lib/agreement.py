"""Published figures recomputed from their one definition: a KPI shown in an extract must equal the dictionary's
value for the same period, grain and filter. No Dagster import.

:func:`kpi_mismatches` takes published rows, the columns that carry KPIs and how each row's keys map onto the
KPI's dimensions, recomputes every KPI with :func:`marketing_assets.lib.kpis.compute_kpis` and returns the cells
that differ (beyond the half cent that publishing money in cents allows). Because every extract is checked
against the same definitions, the same KPI for the same period and filter agrees across extracts too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from marketing_assets.lib.kpis import KpiDictionary, KpiScope, compute_kpis

MONEY_TOLERANCE = 0.005  # published money is rounded to cents
RELATIVE_TOLERANCE = 1e-9


def _key(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def kpi_mismatches(
    con: Any,
    rows: pd.DataFrame,
    columns: Mapping[str, str],
    dims: Sequence[str],
    dictionary: KpiDictionary,
    *,
    grain: str = "total",
    period: str | None = None,
    between: tuple[Any, Any] | None = None,
    fill: Mapping[str, Any] | None = None,
    label: str = "",
    scope: KpiScope | None = None,
) -> pd.DataFrame:
    """Cells of ``rows`` whose KPI value differs from the dictionary's.

    Args:
        rows: published rows, all at one grain and with the same dimension set.
        columns: published column -> KPI name.
        dims: KPI dimensions, named as the published key columns (e.g. ``channel_group``); a KPI that lacks
            one of them (spend has no attribution model) is computed without it and compared on every row.
        period: published column holding the period start (``None`` for ``grain="total"``).
        between: date range of the base rows (see :func:`compute_kpis`).
        fill: the value a NULL dimension is published as (e.g. ``{"campaign_key": "(no campaign)"}``).
        label: prefix naming the row set in the output.
        scope: shares computed KPIs and built base relations with other calls (see :class:`KpiScope`); the KPIs of
            one dimension set are computed in one call either way.

    Returns one row per differing cell: ``where``, ``column``, ``kpi``, ``key``, ``published``, ``definition``.
    """
    out = []
    if rows.empty:
        return pd.DataFrame(columns=["where", "column", "kpi", "key", "published", "definition"])
    by_dims: dict[tuple[str, ...], list[str]] = {}
    for kpi_name in dict.fromkeys(columns.values()):
        by_dims.setdefault(tuple(d for d in dims if d in dictionary[kpi_name].dims), []).append(kpi_name)
    with contextlib.nullcontext(scope) if scope is not None else KpiScope(con, dictionary) as shared:
        computed = {
            kdims: compute_kpis(con, names, grain, list(kdims), dictionary=dictionary, between=between, scope=shared)
            for kdims, names in by_dims.items()
        }
    for column, kpi_name in columns.items():
        kpi = dictionary[kpi_name]
        kdims = [d for d in dims if d in kpi.dims]
        recomputed = computed[tuple(kdims)]
        recomputed = recomputed[recomputed["kpi"] == kpi_name].copy()
        for d, value in (fill or {}).items():
            if d in recomputed:
                recomputed[d] = recomputed[d].astype(object).where(recomputed[d].notna(), value)
        lookup = {
            tuple(_key(v) for v in key): value
            for key, value in zip(recomputed[["period", *kdims]].itertuples(index=False, name=None), recomputed["value"])
        }
        keys = rows[[period] if period else []].assign(**({} if period else {"_p": None}))
        published = zip(
            (tuple(_key(v) for v in k) for k in pd.concat([keys, rows[kdims]], axis=1).itertuples(index=False, name=None)),
            rows[column],
        )
        for key, value in published:
            want = lookup.get(key)
            have = None if _key(value) is None else float(value)
            if want is not None and pd.isna(want):
                want = None
            if have is None and want is None:
                continue
            tolerance = (MONEY_TOLERANCE if kpi.unit == "currency" else 0.0) + RELATIVE_TOLERANCE * abs(want or 0.0)
            if have is None or want is None or abs(have - want) > tolerance:
                out.append({"where": label, "column": column, "kpi": kpi_name, "key": ", ".join(map(str, key)), "published": have, "definition": want})
    return pd.DataFrame(out, columns=["where", "column", "kpi", "key", "published", "definition"])
