"""Parsing of ChannelAttribution-style path tables into flat numpy arrays.

A path table has one row per (distinct or repeated) journey: ``path`` (channel names joined by a
separator, or a list/tuple of names), ``conversions``, optionally ``value`` and ``nulls``. The
parser aggregates identical paths first (hashing whole paths is cheaper than tokenising repeats),
then tokenises the distinct paths with one split of one joined string and one dictionary pass, so
a million rows cost a handful of C-level passes rather than Python work per row.

:func:`journeys_sql` is the same parse in DuckDB (one row per distinct path, its channels as a list), the
input of the SQL aggregates the models read (:func:`~.markov.markov_transitions_sql`,
:func:`~.shapley.channel_sets_sql`), so a warehouse table is never tokenised in Python.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from marketing_assets.lib.sql import ident, literal

# What str.strip() strips: every character Python calls whitespace (DuckDB's trim() strips spaces only).
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
# Marks the boundary between two paths inside the joined text; checked not to occur in the paths.
_ROW_MARK = "\x1e"


@dataclasses.dataclass(frozen=True)
class ParsedPaths:
    """Journeys as flat arrays; only journeys with at least one channel are kept.

    Attributes:
        channels: Channel names, sorted; a channel's code is its index in this list. Includes
            channels that only occur in journeys with zero weight.
        token_channel: Channel code of every touch, journey after journey, in journey order.
        path_start: Index of each journey's first touch in ``token_channel``, plus a final entry
            equal to the number of touches (so journey ``i`` is ``path_start[i]:path_start[i + 1]``).
        conversions, nulls, value: Per-journey totals (float64, identical paths aggregated).
        dropped: Totals of the rows whose path holds no channel at all (not attributable), plus
            ``value_without_conversions``: value on rows without conversions (ignored).
    """

    channels: list[str]
    token_channel: np.ndarray
    path_start: np.ndarray
    conversions: np.ndarray
    nulls: np.ndarray
    value: np.ndarray
    dropped: dict[str, float]

    @property
    def n_paths(self) -> int:
        """Number of distinct journeys."""
        return int(self.conversions.shape[0])

    @property
    def path_length(self) -> np.ndarray:
        """Number of touches of each journey."""
        return np.diff(self.path_start)


def _weight_column(paths: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """A finite, non-negative float64 column (missing values count as 0)."""
    values = pd.to_numeric(paths[column], errors="raise").to_numpy(dtype=np.float64, na_value=0.0)
    values = np.where(np.isnan(values), 0.0, values)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"column {column!r} ({name}) holds infinite numbers")
    if (values < 0).any():
        raise ValueError(f"column {column!r} ({name}) holds negative numbers")
    return values


_MARK_CODE = -2  # channel code of a journey boundary
_EMPTY_CODE = -1  # channel code of an empty name


class _Codes(dict):
    """Token -> code, numbering unseen tokens in order of first sight (the boundary mark is -1).

    Lookups of known tokens stay on ``dict``'s C path; ``__missing__`` only runs once per distinct
    token, so ``map(codes.__getitem__, tokens)`` codes a token list in a single pass.
    """

    def __init__(self) -> None:
        super().__init__({_ROW_MARK: -1})
        self.vocabulary: list[str] = []

    def __missing__(self, token: str) -> int:
        code = self[token] = len(self.vocabulary)
        self.vocabulary.append(token)
        return code


def _split_strings(texts: list[str], sep: str) -> tuple[list[Any], np.ndarray]:
    """Split every text on ``sep``.

    Returns ``(vocabulary, code)``: the distinct raw tokens, and for the concatenation of all
    texts the index of each raw token in ``vocabulary``, with ``-1`` between two texts (there is
    at least one token, possibly empty, between two boundaries).
    """
    tokens = (sep + _ROW_MARK + sep).join(texts).split(sep)
    lookup = _Codes()
    code = np.fromiter(map(lookup.__getitem__, tokens), dtype=np.int32, count=len(tokens))
    # Every boundary is one mark token; more means some path holds a bare mark token itself.
    if int(np.count_nonzero(code == -1)) == len(texts) - 1:
        return lookup.vocabulary, code
    # Some path contains the boundary mark itself: split each path on its own.
    flat: list[Any] = []
    for i, text in enumerate(texts):
        if i:
            flat.append(None)
        flat.append("")  # keeps boundaries apart, like the joined form
        flat.extend(text.split(sep))
    code, uniques = pd.factorize(pd.Series(flat, dtype=object).to_numpy(), use_na_sentinel=True)
    return list(uniques), code.astype(np.int32)


def _split_sequences(items: list[Any]) -> tuple[list[Any], np.ndarray]:
    """Flatten list/tuple paths; same return shape as :func:`_split_strings`."""
    flat: list[Any] = []
    for i, item in enumerate(items):
        if i:
            flat.append(None)
        flat.append("")
        if _is_sequence(item):
            flat.extend(x for x in item if x is not None and not (isinstance(x, float) and np.isnan(x)))
    code, uniques = pd.factorize(pd.Series(flat, dtype=object).to_numpy(), use_na_sentinel=True)
    return list(uniques), code.astype(np.int32)


def _first_valid(column: pd.Series) -> Any:
    """The first non-missing element of ``column`` (``None`` if there is none)."""
    for item in column.array:
        if _is_sequence(item) or not pd.isna(item):
            return item
    return None


def _is_sequence(item: Any) -> bool:
    return isinstance(item, (list, tuple, np.ndarray))


def parse_paths(
    paths: pd.DataFrame,
    *,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
    collapse_repeats: bool = True,
) -> ParsedPaths:
    """Parse a path table into :class:`ParsedPaths`.

    Channel names are split on ``sep`` and stripped of surrounding whitespace, so ``"A > B"`` and
    ``"A>B"`` are the same journey; empty names are ignored. A missing ``var_value`` column means
    value = conversions, a missing ``var_null`` column means no nulls. With ``collapse_repeats``
    consecutive repeats of a channel count once (``A > A > B`` is ``A > B``). Value is conversion
    value: on rows without conversions it is ignored (and reported in ``dropped``).

    Raises:
        ValueError: missing path or conversion column, negative or infinite weights, empty ``sep``.
    """
    if not isinstance(paths, pd.DataFrame):
        raise TypeError(f"paths must be a pandas DataFrame, got {type(paths).__name__}")
    for column, role in ((var_path, "var_path"), (var_conv, "var_conv")):
        if column not in paths.columns:
            raise ValueError(f"paths has no column {column!r} ({role}); columns: {list(paths.columns)}")
    if not sep:
        raise ValueError("sep must be a non-empty string")

    conv = _weight_column(paths, var_conv, "conversions")
    value = _weight_column(paths, var_value, "value") if var_value and var_value in paths.columns else conv
    nulls = (
        _weight_column(paths, var_null, "nulls")
        if var_null and var_null in paths.columns
        else np.zeros(len(paths), dtype=np.float64)
    )

    # Value is the value of conversions: on a row without conversions it is not attributable.
    orphan_value = (conv <= 0) & (value > 0)
    value_without_conversions = float(value[orphan_value].sum())
    if value_without_conversions:
        value = np.where(orphan_value, 0.0, value)

    column = paths[var_path]
    sequence_mode = _is_sequence(_first_valid(column))
    dropped = {"conversions": 0.0, "nulls": 0.0, "value": 0.0, "value_without_conversions": value_without_conversions}
    if sequence_mode:
        keys = pd.Series([tuple(x) if _is_sequence(x) else x for x in column.tolist()], dtype=object)
        raw_paths = keys.to_numpy()
    else:
        raw_paths = column.to_numpy(dtype=object)
    path_code, distinct = pd.factorize(raw_paths, use_na_sentinel=True)
    n_distinct = len(distinct)
    has_path = path_code >= 0
    if has_path.all():
        sums = [np.bincount(path_code, weights=w, minlength=n_distinct) for w in (conv, nulls, value)]
    else:
        sums = [
            np.bincount(path_code[has_path], weights=w[has_path], minlength=n_distinct)
            for w in (conv, nulls, value)
        ]
        for name, w in zip(("conversions", "nulls", "value"), (conv, nulls, value)):
            dropped[name] = float(w[~has_path].sum())
    distinct_list = distinct.tolist()
    if not sequence_mode and pd.api.types.infer_dtype(distinct, skipna=False) != "string":
        distinct_list = [str(x) for x in distinct_list]

    if n_distinct == 0:
        return ParsedPaths(
            channels=[],
            token_channel=np.empty(0, dtype=np.int32),
            path_start=np.zeros(1, dtype=np.int64),
            conversions=np.empty(0),
            nulls=np.empty(0),
            value=np.empty(0),
            dropped=dropped,
        )
    if sequence_mode:
        vocabulary, raw_code = _split_sequences(distinct_list)
    else:
        vocabulary, raw_code = _split_strings(distinct_list, sep)

    # Vocabulary (few distinct spellings) -> stripped channel names -> sorted channel codes.
    names = [str(tok).strip() for tok in vocabulary]
    channels = sorted({n for n in names if n})
    channel_index = {name: i for i, name in enumerate(channels)}
    to_channel = np.array([channel_index.get(n, _EMPTY_CODE) for n in names] + [_MARK_CODE], dtype=np.int32)
    token = to_channel[raw_code]  # raw code -1 (boundary) picks the trailing _MARK_CODE
    has_empty = bool((to_channel[:-1] == _EMPTY_CODE).any())
    if has_empty:
        token = token[token != _EMPTY_CODE]
    if collapse_repeats and len(token) > 1:
        keep = np.empty(len(token), dtype=bool)
        keep[0] = True
        np.not_equal(token[1:], token[:-1], out=keep[1:])
        if has_empty:  # only then can two boundaries meet (an empty journey): keep both
            keep |= token == _MARK_CODE
        token = token[keep]
    is_mark = token == _MARK_CODE
    marks = np.flatnonzero(is_mark)
    lengths = np.diff(np.concatenate([[-1], marks, [len(token)]])) - 1
    token = token[~is_mark]

    nonempty = lengths > 0
    for name, total in zip(("conversions", "nulls", "value"), sums):
        dropped[name] += float(total[~nonempty].sum())
    lengths = lengths[nonempty]
    path_start = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=path_start[1:])
    dist_conv, dist_nulls, dist_value = (total[nonempty] for total in sums)
    return ParsedPaths(
        channels=channels,
        token_channel=token,
        path_start=path_start,
        conversions=dist_conv,
        nulls=dist_nulls,
        value=dist_value,
        dropped=dropped,
    )


def journeys_sql(
    relation: str,
    *,
    var_path: str = "path",
    var_conv: str = "conversions",
    var_value: str | None = "value",
    var_null: str | None = "nulls",
    sep: str = ">",
    collapse_repeats: bool = True,
) -> str:
    """SELECT of one row per distinct path of ``relation``: :func:`parse_paths` in DuckDB.

    Columns: ``channels`` (VARCHAR[]: the names split on ``sep``, stripped of surrounding whitespace,
    empty names left out, consecutive repeats counted once with ``collapse_repeats``; ``[]`` for a path
    without any channel), ``conversions``, ``nulls``, ``value`` (conversion value: 0 on rows without
    conversions) and ``unconverted_value`` (the value left out that way), all DOUBLE. Missing weights
    count as 0; ``var_value=None`` means value = conversions, ``var_null=None`` means no nulls.
    ``var_path`` must be a string column (a list column is only accepted by :func:`parse_paths`).
    """
    if not sep:
        raise ValueError("sep must be a non-empty string")
    conv = f"coalesce(CAST({ident(var_conv)} AS DOUBLE), 0)"
    value = f"coalesce(CAST({ident(var_value)} AS DOUBLE), 0)" if var_value else conv
    nulls = f"coalesce(CAST({ident(var_null)} AS DOUBLE), 0)" if var_null else "0.0"
    path = ident(var_path)
    split = f"string_split({path}, {literal(sep)})"
    # trim(x) strips spaces only and is much faster than trim(x, characters): paths holding other
    # whitespace (tabs, no-break spaces, ...) take the slow branch.
    other_whitespace = _WHITESPACE.replace(" ", "")
    stripped = (
        f"CASE WHEN regexp_matches({path}, {literal('[' + other_whitespace + ']')})"
        f" THEN list_transform({split}, lambda x: trim(x, {literal(_WHITESPACE)}))"
        f" ELSE list_transform({split}, lambda x: trim(x)) END"
    )
    tokens = f"list_filter({stripped}, lambda x: x <> '')"
    channels = "list_filter(tokens, lambda x, i: i = 1 OR x <> tokens[i - 1])" if collapse_repeats else "tokens"
    return f"""
    SELECT {channels} AS channels, conversions, nulls, value, unconverted_value
    FROM (
        SELECT coalesce({tokens}, []) AS tokens, sum({conv}) AS conversions, sum({nulls}) AS nulls,
               sum(CASE WHEN {conv} > 0 THEN {value} ELSE 0 END) AS value,
               sum(CASE WHEN {conv} > 0 THEN 0 ELSE {value} END) AS unconverted_value
        FROM {relation} GROUP BY {path}
    )"""
