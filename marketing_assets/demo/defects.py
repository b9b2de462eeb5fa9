"""Planting of bad rows and exact duplicates into landing files, with exact line bookkeeping.

Every planted bad row is an *extra* row inserted into the file (a spoiled copy of a real row), so the good
rows keep every aggregate of the ground truth exact (spend, revenue, pipeline). Each planted row breaks
exactly one rule of the contract:

- ``unparseable_value``: a non-text column holds text that does not parse as its type;
- ``negative_value``: a ``ge=0`` number is negative;
- ``null_key``: one primary-key column is empty;
- ``null_required_value``: a non-key ``nullable=False`` column is empty;
- ``conflicting_duplicate_key``: a later line repeats an earlier line's full key with other content (the
  earlier line is the good one).

Copies that are not conflicting duplicates get a fresh, never-used key, so they collide with nothing.
Exact duplicates (identical content, later line) are planted separately and are not bad rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa

from .landing import DefectLog, DuplicateRow, PlantedRow, TableLayout

BAD_ROW_SHARE = 0.001
EXACT_DUPLICATE_SHARE = 0.0002

REASONS = ("unparseable_value", "negative_value", "null_key", "null_required_value", "conflicting_duplicate_key")

GARBAGE: dict[str, tuple[str, ...]] = {
    "date": ("2024-13-45", "not a date", "2023-02-30"),
    "timestamp": ("2023-02-30T10:00:00Z", "not a date", "2024-13-45T25:61:00Z"),
    "int": ("12,5a", "1O", "seven"),
    "decimal": ("12,5a", "1.2.3", "USD 40"),
    "bool": ("maybe", "yes please"),
}

_CONFLICT_TEXT = {
    ("crm_marketing_touchpoints", "channel_name"): ("Email", "Webinar", "Paid Search"),
    ("crm_sales_touchpoints", "channel_name"): ("Meeting", "Outbound Call", "Sales Email"),
    ("crm_contacts", "last_name"): ("Smith", "Garcia", "Miller"),
}

EXACT_DUPLICATE_TABLES = ("ads_google", "web_sessions", "crm_marketing_touchpoints", "erp_orders")


class KeyFactory:
    """Fresh primary keys for spoiled copies: ids from a reserved range, or unused report days for ads."""

    def __init__(self, layout: TableLayout):
        self.layout = layout
        self.counter = 0
        self.reserved_base = 9 * 10 ** (layout.id_width - 1) if layout.id_width else 0
        self._ads_free: list[tuple] = []
        self._ads_templates: dict[tuple, dict] = {}

    def _next_id(self) -> str:
        self.counter += 1
        return f"{self.layout.id_prefix}{self.reserved_base + self.counter:0{self.layout.id_width}d}"

    def observe(self, table: pa.Table) -> None:
        """Register an ads file's keys: spoiled copies move to a (day, campaign) the report does not hold."""
        if self.layout.id_width:
            return
        key_headers = [c.header for c in self.layout.key_columns]
        attr_headers = [c.header for c in self.layout.columns if c.kind == "str" and not c.key]
        cols = {h: table.column(h).to_pylist() for h in key_headers + attr_headers}
        existing = set(zip(*[cols[h] for h in key_headers]))
        templates: dict[tuple, dict] = {}
        for i in range(table.num_rows):
            camp = tuple(cols[h][i] for h in key_headers[1:])
            if camp not in templates:
                templates[camp] = {h: cols[h][i] for h in key_headers[1:] + attr_headers}
        present = [d for d in cols[key_headers[0]] if d]
        first, last = dt.date.fromisoformat(min(present)), dt.date.fromisoformat(max(present))
        days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        self._ads_free = [(d, camp) for camp in sorted(templates) for d in days if (d, *camp) not in existing]
        self._ads_templates = templates

    def fresh(self, row: dict, rng: np.random.Generator) -> dict:
        row = dict(row)
        key_cols = self.layout.key_columns
        if self.layout.id_width:
            row[key_cols[0].header] = self._next_id()
            for extra in key_cols[1:]:
                row[extra.header] = "1"
            return row
        if not self._ads_free:
            raise RuntimeError(f"no free (day, campaign) for a spoiled copy in {self.layout.table_name}")
        day, camp = self._ads_free.pop(int(rng.integers(len(self._ads_free))))
        row.update(self._ads_templates[camp])
        row[key_cols[0].header] = day
        return row


def _decimals(value: str) -> int:
    return len(value.split(".", 1)[1]) if "." in value else 0


def _conflicting_value(table_name: str, col_kind: str, header: str, value: str | None,
                       rng: np.random.Generator) -> str:
    if col_kind == "int":
        base = int(value or 0)
        return str(base + max(1, base // 10 + 1))
    if col_kind == "decimal":
        dec = _decimals(value or "0.00")
        bumped = Decimal(value or "0") + Decimal("10.5") + Decimal(int(rng.integers(1, 500)))
        return f"{bumped:.{max(dec, 2)}f}"
    choices = [c for c in _CONFLICT_TEXT.get((table_name, header), ()) if c != value]
    if choices:
        return choices[int(rng.integers(len(choices)))]
    return (value or "x") + "-2"


def _negative_of(col_kind: str, value: str | None) -> str:
    if value is None or value.strip("0.") == "":
        value = "1" if col_kind == "int" else "12.50"
    return "-" + value


def _reason_columns(layout: TableLayout) -> dict[str, list]:
    cols = layout.columns
    out = {
        "unparseable_value": [c for c in cols if c.kind != "str"],
        "negative_value": [c for c in cols if c.ge0 and not c.key and c.kind in ("int", "decimal")],
        "null_key": [c for c in layout.key_columns],
        "null_required_value": [c for c in cols if c.required and not c.key],
        "conflicting_duplicate_key": [layout.col(layout.conflict_column)] if layout.conflict_column else [],
    }
    return {k: v for k, v in out.items() if v}


def plant(
    layout: TableLayout,
    table: pa.Table,
    n_bad: int,
    n_dup: int,
    rng: np.random.Generator,
    keys: KeyFactory,
    rel_path: str,
    log: DefectLog,
) -> pa.Table:
    """Insert ``n_bad`` spoiled rows and ``n_dup`` exact duplicates into one file's table; log their lines."""
    n = table.num_rows
    if n == 0 or (n_bad == 0 and n_dup == 0):
        return table
    keys.observe(table)
    n_bad = min(n_bad, n // 2)
    n_dup = min(n_dup, n // 4)
    sources = np.sort(rng.choice(n, size=n_bad + n_dup, replace=False))
    sources = sources[rng.permutation(len(sources))]
    originals = table.take(pa.array(sources)).to_pylist()
    reason_cols = _reason_columns(layout)
    reasons = list(reason_cols)
    offset = int(rng.integers(len(reasons)))

    inserted: list[dict] = []
    after: list[int] = []
    meta: list[tuple] = []  # (kind, source index, column field, reason)
    for j, (src, row) in enumerate(zip(sources[:n_bad], originals[:n_bad])):
        reason = reasons[(offset + j) % len(reasons)]
        candidates = reason_cols[reason]
        col = candidates[int(rng.integers(len(candidates)))]
        if reason == "conflicting_duplicate_key":
            new = dict(row)
            new[col.header] = _conflicting_value(layout.table_name, col.kind, col.header, row[col.header], rng)
            pos = int(rng.integers(src, n))
            meta.append(("bad", int(src), layout.key_columns[0].field, reason))
        else:
            new = keys.fresh(row, rng)
            if reason == "unparseable_value":
                options = GARBAGE[col.kind]
                new[col.header] = options[int(rng.integers(len(options)))]
            elif reason == "negative_value":
                new[col.header] = _negative_of(col.kind, row[col.header])
            else:
                new[col.header] = None
            pos = int(rng.integers(-1, n))
            meta.append(("bad", int(src), col.field, reason))
        inserted.append(new)
        after.append(pos)
    for src, row in zip(sources[n_bad:], originals[n_bad:]):
        inserted.append(dict(row))
        after.append(int(rng.integers(src, n)))
        meta.append(("dup", int(src), "", ""))

    extra = pa.Table.from_pylist(inserted, schema=table.schema)
    combined = pa.concat_tables([table, extra])
    sort_pos = np.concatenate([2 * np.arange(n, dtype=np.int64) + 1, 2 * np.asarray(after, dtype=np.int64) + 2])
    tiebreak = np.arange(len(sort_pos))
    order = np.lexsort((tiebreak, sort_pos))
    final_line = np.empty(len(order), dtype=np.int64)
    final_line[order] = np.arange(len(order)) + 2
    for j, (kind, src, field, reason) in enumerate(meta):
        line = int(final_line[n + j])
        if kind == "bad":
            log.bad_rows.append(PlantedRow(layout.table_name, rel_path, line, field, reason))
        else:
            log.duplicates.append(DuplicateRow(layout.table_name, rel_path, line, int(final_line[src])))
    return combined.take(pa.array(order))


def counts_for(layout: TableLayout, n_rows: int) -> tuple[int, int]:
    """How many bad rows and exact duplicates to plant into a file of ``n_rows`` data rows."""
    if not layout.plant_defects or n_rows == 0:
        return 0, 0
    n_bad = max(1, int(round(n_rows * BAD_ROW_SHARE)))
    n_dup = max(1, int(round(n_rows * EXACT_DUPLICATE_SHARE))) if layout.table_name in EXACT_DUPLICATE_TABLES else 0
    return n_bad, n_dup
