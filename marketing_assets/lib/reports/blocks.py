"""The plain data a report template lays out: pages, sections, tiles, tables, figures, definitions.

The view modules (:mod:`.executive`, :mod:`.marketing_roi`, :mod:`.data_quality`) build these from the extracts;
the Jinja templates in ``marketing_assets/templates`` turn them into HTML. Nothing here holds markup: running text
is a list of parts (plain strings, :class:`Link`, :class:`Strong`, :class:`Badge`, :class:`Note`), which
:func:`rich` builds from a line of copy with ``{name}`` placeholders and ``**bold**``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from marketing_assets.lib.reports.formatting import is_missing, slug

Parts = list  # of str | Link | Anchor | Span | Code | Strong | Badge | Note | Break


@dataclass(frozen=True)
class Link:
    """A KPI label linking to its definition on the page (its description is the hover title)."""

    kpi: str
    text: str
    title: str = ""
    kind: str = "link"


@dataclass(frozen=True)
class Anchor:
    """A link to a section of the page."""

    target: str
    text: str
    kind: str = "anchor"


@dataclass(frozen=True)
class Span:
    """Text in a style class of the stylesheet (``up``/``down``/``flat`` for a tile's change)."""

    text: str
    cls: str
    kind: str = "span"


@dataclass(frozen=True)
class Code:
    text: str
    kind: str = "code"


@dataclass(frozen=True)
class Strong:
    text: str
    kind: str = "strong"


@dataclass(frozen=True)
class Badge:
    text: str
    cls: str
    kind: str = "badge"


@dataclass(frozen=True)
class Note:
    """Secondary text: inline (``span``) or on its own line (``div``)."""

    parts: Parts
    block: bool = False
    nowrap: bool = False
    kind: str = "note"


@dataclass(frozen=True)
class Break:
    kind: str = "br"


PART_TYPES = (Link, Anchor, Span, Code, Strong, Badge, Note, Break)
BADGE_CLASSES = ("scale", "reduce", "test", "hold", "passed", "failed", "warned", "skipped", "pending", "not_in_run")
_TOKEN = re.compile(r"\*\*(.+?)\*\*|\{([a-z_0-9]+)\}")


def _plain(value: Any) -> str:
    return value.text if isinstance(value, (Link, Anchor, Span, Code, Strong, Badge)) else str(value)


def rich(text: str, **values: Any) -> Parts:
    """Parts of a line of copy: ``{name}`` takes ``values[name]`` (a part, a list of parts, or any value as text),
    ``**text**`` is bold (placeholders inside it become plain text)."""
    parts: Parts = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        if m.group(1) is not None:
            parts.append(Strong(re.sub(r"\{([a-z_0-9]+)\}", lambda ref: _plain(values[ref.group(1)]), m.group(1))))
        else:
            value = values[m.group(2)]
            parts.extend(value if isinstance(value, list) else [value if isinstance(value, PART_TYPES) else str(value)])
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def badge(v: Any) -> Badge:
    text = "" if is_missing(v) else str(v)
    return Badge(text.replace("_", " ") or "–", slug(text) if slug(text) in BADGE_CLASSES else "other")


@dataclass
class Cell:
    parts: Parts
    kpi: str | None = None
    num: bool = False  # right-aligned figure
    wrap: bool = False  # long text
    inner_num: bool = False  # the content sits in a right-aligned div (a figure in a text column)


@dataclass
class Column:
    header: str
    kpi: str | None = None
    num: bool = False


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell] | str]  # a str row is a group heading spanning the table
    caption: str | None = None
    kind: str = "table"


@dataclass
class Chart:
    """A chart as data: the :mod:`marketing_assets.lib.svg` function (``kind``), its arguments (the series), and
    the overrides for the narrow (phone) version; the renderer draws it twice, wide and narrow."""

    kind: str
    args: tuple
    options: dict = field(default_factory=dict)
    narrow: dict = field(default_factory=dict)


@dataclass
class Figure:
    title: str
    chart: Chart
    how: Parts | None = None
    compact: bool = False
    kind: str = "figure"


@dataclass
class Callout:
    parts: Parts
    state: str = ""
    kind: str = "callout"


@dataclass
class How:
    parts: Parts
    kind: str = "how"


@dataclass
class Subheading:
    text: str
    kind: str = "h3"


@dataclass
class NotAvailable:
    what: str
    kind: str = "na"


@dataclass
class Tile:
    label: Parts
    value: str
    value_title: str | None = None
    kpi: str | None = None
    state: str | None = None  # good / warn / bad / none; None = a plain tile
    title: str | None = None
    delta: Parts = field(default_factory=list)
    target: str | None = None


@dataclass
class Tiles:
    tiles: list[Tile]
    legend: bool = False
    kind: str = "tiles"


@dataclass
class Grid:
    columns: list[list]
    kind: str = "grid2"


@dataclass
class Definition:
    slug: str
    term: str
    description: str
    code: str | None = None  # the KPI's name, shown as code
    fields: list[tuple[str, Parts]] = field(default_factory=list)
    missing: bool = False  # a KPI the dictionary does not define


@dataclass
class Definitions:
    items: list[Definition]
    kind: str = "definitions"


@dataclass
class Problem:
    state: str
    badge: Badge
    asset: str
    check: str
    description: str
    facts: list[Parts]


@dataclass
class Problems:
    cards: list[Problem]
    kind: str = "problems"


@dataclass
class Details:
    summary: str
    note: str
    open: bool
    table: Table
    kind: str = "details"


@dataclass
class Section:
    id: str
    title: str
    blocks: list
    how: Parts | None = None


@dataclass
class Page:
    title: str
    subtitle: Parts
    fresh_to: str
    generated: str
    sections: list[Section]
    pills: list[str] = field(default_factory=list)
    template: str = "page.html.j2"
