"""Preflight: what the landing zone holds before a run, and what each source table feeds.

Printed by ``python -m marketing_assets.run`` before the run starts, so a first run on one's own exports
says up front which tables were found, which are absent, and what an absent table leaves empty: the assets
that read it directly and the KPIs of the metric dictionary (every figure a report or extract shows is one)
that read it or one of those assets. Everything is derived from the contracts, the asset graph and the
dictionary's ``source_assets``; nothing is listed here by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from marketing_assets.constants import QUARANTINE_TABLE, SOURCES
from marketing_assets.lib.kpis import KpiDictionary, load_kpi_dictionary
from marketing_assets.lib.landing import TableContract, discover_files
from marketing_assets.lib.publish import is_demo_landing


@dataclass(frozen=True)
class TablePreflight:
    table: str
    optional: bool
    landing_glob: str
    files: tuple[str, ...]
    bytes: int
    feeds: tuple[str, ...] = ()
    kpis: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        if not self.files:
            return "absent"
        return "empty" if self.bytes == 0 else "found"


def table_uses(asset_graph, dictionary: KpiDictionary, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Assets that read ``sources/<table>`` directly, and KPIs whose ``source_assets`` name the table or one of them."""
    key = dg.AssetKey([SOURCES, table])
    children = sorted(
        c.to_user_string() for c in asset_graph.get(key).child_keys if c != dg.AssetKey([SOURCES, QUARANTINE_TABLE])
    )
    reads = {key.to_user_string(), *children}
    kpis = tuple(k.name for k in dictionary if reads & set(k.source_assets))
    return tuple(children), kpis


def preflight(
    landing_root: Path, contracts: Mapping[str, TableContract], asset_graph, dictionary: KpiDictionary | None = None
) -> list[TablePreflight]:
    """One entry per source table, in contract order: its landing files and what it feeds."""
    dictionary = dictionary or load_kpi_dictionary()
    out = []
    for table, contract in contracts.items():
        files = discover_files(landing_root, contract)
        feeds, kpis = table_uses(asset_graph, dictionary, table)
        out.append(TablePreflight(
            table=table, optional=contract.optional_table, landing_glob=contract.landing_glob,
            files=tuple(str(p.relative_to(landing_root)) for p in files), bytes=sum(p.stat().st_size for p in files),
            feeds=feeds, kpis=kpis,
        ))
    return out


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _names(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def render(entries: Sequence[TablePreflight], landing_root: Path) -> str:
    """The preflight summary as text: found tables first, then absent ones with what gets none of their rows."""
    found = [e for e in entries if e.status != "absent"]
    absent = [e for e in entries if e.status == "absent"]
    kind = "demo data" if is_demo_landing(landing_root) else "own data"
    lines = [f"preflight: landing zone {landing_root} ({kind}): {len(found)} of {len(entries)} source tables have files"]
    width = max(len(e.table) for e in entries) if entries else 10
    for e in found:
        what = f"{len(e.files)} file{'s' if len(e.files) != 1 else ''}, {_size(e.bytes)}"
        lines.append(f"  found   {e.table:<{width}}  {what:<22} feeds {_names(list(e.feeds), 4)}")
    missing_required = [e for e in absent if not e.optional]
    for e in absent:
        role = "REQUIRED" if not e.optional else "optional"
        lines.append(f"  absent  {e.table:<{width}}  {role:<22} no file matches {e.landing_glob}(.csv|.parquet)")
        left = f"{_names(list(e.feeds), 4)} get{'s' if len(e.feeds) == 1 else ''} none of its rows"
        if e.kpis:
            left += f"; {len(e.kpis)} KPI{'s use' if len(e.kpis) != 1 else ' uses'} it: {_names(list(e.kpis), 6)}"
        lines.append(f"  {'':<{width + 8}}  without it: {left}")
    if missing_required:
        lines.append(
            "  the run will stop: required table(s) " + ", ".join(e.table for e in missing_required) + " have no landing file"
        )
    return "\n".join(lines)
