"""Funnel stage evidence: which stages the data can tell apart from the stage before. No Dagster import.

The rule is stated once, in the ``funnel_stages`` base relation of :mod:`marketing_assets.lib.kpis`
(``stage_distinguishable`` and ``stage_note``); this module only reads it per stage.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from marketing_assets.lib import kpis


def stage_distinguishability(con: Any, dictionary: kpis.KpiDictionary | None = None, scope: kpis.KpiScope | None = None) -> pd.DataFrame:
    """One row per funnel stage: ``stage``, ``stage_order``, ``stage_distinguishable`` (bool), ``stage_note``.

    A stage is not distinguishable from the previous one when, in the whole data set (every cohort and
    channel), no contact reached it by a signal of its own (it is only implied by later stages), or every
    contact that reached the previous stage also reached it. The note says which, with the count.
    ``scope`` reads the base from the scope's table when it builds one (see :class:`kpis.KpiScope`).
    """
    dictionary = dictionary or kpis.load_kpi_dictionary()
    sql = scope.base_sql("funnel_stages") if scope is not None else kpis.base_relation_sql("funnel_stages", dictionary.parameters)
    frame = con.execute(
        f"""SELECT stage, stage_order, bool_and(stage_distinguishable) AS stage_distinguishable,
                   any_value(stage_note) AS stage_note
            FROM ({sql}) GROUP BY stage, stage_order ORDER BY stage_order"""
    ).df()
    frame["stage_distinguishable"] = frame["stage_distinguishable"].astype(bool)
    return frame
