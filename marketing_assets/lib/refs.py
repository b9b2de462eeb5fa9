"""Table references: the one way SQL builders name the warehouse tables they read. No Dagster import.

dbt's ``ref()`` done in Python. ``ref(group, table)`` returns the quoted warehouse name (``"group"."table"``,
the same text as :func:`marketing_assets.constants.fq`) and, while a :func:`recording` is active, records
the reference. An asset module builds its SQL (or calls its builder with representative parameters) at
definition time inside :func:`recording` and takes its upstream assets from what was recorded, so the
dependencies cannot drift from the SQL that reads the tables::

    with recording() as refs:
        sql = touchpoints_sql(...)              # every ref() inside is recorded
    refs.tables  # {("sources", "crm_contacts"), ...}

``this(group, table)`` names a table the asset itself writes (its own output, or a working table of its
own): the same quoted text, never recorded, so an asset's writes never become its dependencies.
Group == asset key prefix == warehouse schema, so ``(group, table)`` is also the asset key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from marketing_assets.constants import fq


@dataclass
class RefRecorder:
    """The tables referenced through :func:`ref` while it was active, in first-reference order."""

    refs: dict[tuple[str, str], None] = field(default_factory=dict)

    @property
    def tables(self) -> list[tuple[str, str]]:
        return list(self.refs)

    def asset_paths(self) -> list[str]:
        """References as asset key paths (``group/table``), the spelling of the KPI dictionary's ``source_assets``."""
        return [f"{g}/{t}" for g, t in self.refs]


_ACTIVE: ContextVar[tuple[RefRecorder, ...]] = ContextVar("marketing_assets_ref_recorders", default=())


def ref(group: str, table: str) -> str:
    """Quoted name of an upstream table ``group.table`` that the caller's SQL reads; recorded when recording."""
    for recorder in _ACTIVE.get():
        recorder.refs.setdefault((group, table), None)
    return fq(group, table)


def this(group: str, table: str) -> str:
    """Quoted name of a table the caller writes (its own output): not a dependency, never recorded."""
    return fq(group, table)


@contextmanager
def recording() -> Iterator[RefRecorder]:
    """Record every :func:`ref` made in this context (nested recordings each see the references)."""
    recorder = RefRecorder()
    token = _ACTIVE.set((*_ACTIVE.get(), recorder))
    try:
        yield recorder
    finally:
        _ACTIVE.reset(token)


def refs_of(build: Callable[..., Any], *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """The tables ``build(*args, **kwargs)`` references (builds the SQL once with a recorder active)."""
    with recording() as recorder:
        build(*args, **kwargs)
    return recorder.tables


def ref_working(group: str, table: str, asset: str) -> str:
    """Quoted name of a working table (``_``-prefixed) that upstream asset ``group/asset`` writes besides its own
    table (a source's rejected rows); records ``(group, asset)``, the asset that produces it."""
    for recorder in _ACTIVE.get():
        recorder.refs.setdefault((group, asset), None)
    return fq(group, table)
