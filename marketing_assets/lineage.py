"""Asset dependencies derived from the SQL: the tables an asset's SQL names through ``ref()`` are its upstream assets.

An asset module builds its SQL (or calls its SQL builder with representative parameters) at definition time
with a recorder active (:func:`marketing_assets.lib.refs.recording`); whatever the SQL references through
``ref(group, table)`` becomes ``AssetKey([group, table])``. There is no second, hand-typed list of deps to
keep in step: adding a join adds the dependency. ``marketing_assets_tests/test_lineage.py`` runs the graph
with statement capture and proves the tables each asset's SQL reads are exactly its declared upstream assets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dagster as dg

from marketing_assets.lib.refs import recording


def keys(tables: Iterable[tuple[str, str]], own: Iterable[tuple[str, str]] = ()) -> list[dg.AssetKey]:
    """Asset keys of ``(group, table)`` references, in order, without the asset's own outputs."""
    mine = set(own)
    return [dg.AssetKey([g, t]) for g, t in dict.fromkeys(tables) if (g, t) not in mine]


def upstream(*builds: Callable[[], Any], own: Iterable[tuple[str, str]] = ()) -> list[dg.AssetKey]:
    """Deps of an asset: the tables its SQL builders reference when called (at definition time), minus ``own``.

    Each build is a no-argument callable (a lambda with representative run-time parameters) that builds the
    same SQL text the asset executes.
    """
    with recording() as recorder:
        for build in builds:
            build()
    return keys(recorder.tables, own)

