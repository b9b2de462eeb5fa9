"""The KPI dictionary as a report reads it: labels, units, descriptions, targets, and which KPIs add up.

A KPI missing from the dictionary still renders (label from its name, no target), so a report never fails on it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from marketing_assets.lib.kpis import KpiDictionary, load_kpi_dictionary
from marketing_assets.lib.reports.blocks import Link
from marketing_assets.lib.reports.formatting import fmt_value, is_missing, is_num

_PLAIN_AGGREGATE = re.compile(r"^\s*(sum|count)\s*\([^()]*\)(\s*filter\s*\(\s*where\s[^()]*\))?\s*$", re.IGNORECASE)
_KPI_REF = re.compile(r"\{kpi:([a-z0-9_]+)\}")
_LINEAR_LEFTOVER = re.compile(r"^[\s()+\-,0]*$")


@functools.cache
def governed_dictionary() -> KpiDictionary:
    return load_kpi_dictionary()


class KpiLookup:
    """KPI dictionary lookups (the ``kpi_dictionary`` extract), and the list of KPIs a page shows."""

    def __init__(self, frame: pd.DataFrame | None):
        self.rows: dict[str, dict[str, Any]] = {}
        if frame is not None and "name" in frame.columns:
            for rec in frame.to_dict("records"):
                self.rows[str(rec["name"])] = rec
        self.used: list[str] = []

    def get(self, name: str, field: str, default: Any = None) -> Any:
        v = self.rows.get(name, {}).get(field)
        return default if is_missing(v) else v

    def label(self, name: str) -> str:
        return str(self.get(name, "label", name.replace("_", " ").capitalize()))

    def unit(self, name: str, default: str | None = None) -> str | None:
        return self.get(name, "unit", default)

    def use(self, *names: str) -> None:
        """Note that the page shows ``names``: their definitions are listed in the page's definitions."""
        for name in names:
            if name not in self.used:
                self.used.append(name)

    def link(self, name: str, text: str | None = None) -> Link:
        """The KPI's label (or ``text``) linking to its definition."""
        self.use(name)
        return Link(name, text or self.label(name), str(self.get(name, "description", "")))

    def _definition(self, name: str) -> tuple[str, str]:
        """(formula, base) from the page's dictionary extract, else from the packaged dictionary."""
        if name in self.rows:
            return str(self.get(name, "formula", "")), str(self.get(name, "base", ""))
        kpi = governed_dictionary().kpis.get(name)
        return (kpi.formula, kpi.base) if kpi else ("", "")

    def is_additive(self, name: str) -> bool:
        """Whether values of ``name`` for disjoint periods or members add up to its value for their union: its formula
        is a plain ``sum(...)`` / ``count(...)`` over a base, or (derived) a sum or difference of additive KPIs."""
        formula, base = self._definition(name)
        if base != "derived":
            return bool(_PLAIN_AGGREGATE.match(formula))
        refs = _KPI_REF.findall(formula)
        leftover = _KPI_REF.sub("", formula.replace("coalesce", ""))
        return bool(refs) and bool(_LINEAR_LEFTOVER.match(leftover)) and all(self.is_additive(r) for r in refs if r != name)

    def status(self, name: str, value: Any) -> tuple[str, str]:
        """('good'|'warn'|'bad'|'none', human text) against the dictionary's target and alert threshold."""
        if not is_num(value):
            return "none", ""
        v = float(value)
        unit = self.unit(name)
        notes, state = [], "none"
        target, tdir = self.get(name, "target_value"), str(self.get(name, "target_direction", "higher_is_better"))
        thr, hdir = self.get(name, "threshold_value"), str(self.get(name, "threshold_direction", tdir))
        lower_t = "lower" in tdir or "below" in tdir or tdir == "min"
        lower_h = "lower" in hdir or "below" in hdir or hdir == "min"
        if is_num(target):
            t = float(target)
            meets = v <= t if lower_t else v >= t
            notes.append(f"Target {'≤' if lower_t else '≥'} {fmt_value(t, unit)}")
            state = "good" if meets else "warn"
        if is_num(thr):
            h = float(thr)
            breached = v > h if lower_h else v < h
            notes.append(f"Alert {'>' if lower_h else '<'} {fmt_value(h, unit)}")
            if breached:
                state = "bad"
            elif state == "none":
                state = "good"
        return state, " · ".join(notes)

    def higher_is_better(self, name: str) -> bool | None:
        d = self.get(name, "target_direction") or self.get(name, "threshold_direction")
        if d is None:
            return None
        d = str(d)
        return not ("lower" in d or "below" in d)

    def change_kpi(self, name: str, available: Iterable[str]) -> str | None:
        """The dictionary's period-over-period change of ``name`` among ``available`` KPIs: a derived KPI whose formula
        reads only ``name`` and ``name`` one period earlier (Revenue Growth % (MoM) for Total Revenue)."""
        for other in available:
            formula, base = self._definition(other)
            refs = set(re.findall(r"\{kpi:([a-z0-9_]+)(\|lag=\d+)?\}", formula))
            if base == "derived" and refs == {(name, ""), (name, "|lag=1")}:
                return other
        return None
