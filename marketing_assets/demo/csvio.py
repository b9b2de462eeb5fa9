"""Fast, deterministic text formatting and CSV encoding built on Arrow compute kernels.

Every landing value is formatted explicitly (fixed decimals, ISO timestamps, zero-padded ids) so that the
same inputs always give byte-identical files. Columns are Arrow string arrays where null means an empty
field; the encoder quotes a field only when it contains a delimiter, a quote, a line break or surrounding
whitespace, and writes one physical line per record.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_QUOTE = r'[",\r\n]|^\s|\s$'


@lru_cache(maxsize=1)
def _time_of_day_strings() -> pa.Array:
    """``THH:MM:SSZ`` for every second of a day, indexed by second of day."""
    sec = np.arange(86400)
    labels = [f"T{h:02d}:{m:02d}:{s:02d}Z" for h, m, s in zip(sec // 3600, (sec // 60) % 60, sec % 60)]
    return pa.array(labels, type=pa.string())


@lru_cache(maxsize=8)
def _fraction_strings(decimals: int) -> pa.Array:
    """``.00`` … ``.99`` style fractional parts for ``decimals`` <= 4, indexed by value."""
    return pa.array([f".{i:0{decimals}d}" for i in range(10**decimals)], type=pa.string())


def _mask(null_mask: np.ndarray | None) -> np.ndarray | None:
    return None if null_mask is None or not null_mask.any() else np.asarray(null_mask, dtype=bool)


def _apply_nulls(arr: pa.Array, null_mask: np.ndarray | None) -> pa.Array:
    mask = _mask(null_mask)
    if mask is None:
        return arr
    return pc.if_else(pa.array(mask), pa.nulls(len(arr), pa.string()), arr)


def fmt_str(values, null_mask: np.ndarray | None = None) -> pa.Array:
    """Python/NumPy strings to an Arrow string array (``None`` or masked entries become null)."""
    arr = values if isinstance(values, pa.Array) else pa.array(list(values) if not isinstance(values, list) else values, type=pa.string())
    return _apply_nulls(arr, null_mask)


def fmt_choice(labels: list[str], index: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Pick ``labels[index]`` per row; negative indices or masked rows become null."""
    index = np.asarray(index)
    neg = index < 0
    safe = np.where(neg, 0, index).astype(np.int32)
    arr = pc.take(pa.array(labels, type=pa.string()), pa.array(safe))
    mask = neg if null_mask is None else (neg | null_mask)
    return _apply_nulls(arr, mask)


def fmt_int(values: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Integers as decimal text."""
    arr = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return _apply_nulls(arr, null_mask)


def fmt_id(prefix: str, numbers: np.ndarray, width: int, null_mask: np.ndarray | None = None) -> pa.Array:
    """``prefix`` + zero-padded number, e.g. ``C0000042``."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0")
    arr = pc.binary_join_element_wise(pa.scalar(prefix), digits, "")
    return _apply_nulls(arr, null_mask)


def fmt_scaled(units: np.ndarray, decimals: int, null_mask: np.ndarray | None = None) -> pa.Array:
    """Fixed-point text of integer ``units`` of ``10**-decimals`` (e.g. cents with ``decimals=2``)."""
    units = np.asarray(units, dtype=np.int64)
    if decimals == 0:
        return fmt_int(units, null_mask)
    neg = units < 0
    mag = np.abs(units)
    scale = 10**decimals
    whole = pc.cast(pa.array(mag // scale), pa.string())
    frac_int = mag % scale
    if decimals <= 4:
        frac = pc.take(_fraction_strings(decimals), pa.array(frac_int))
    else:
        frac = pc.binary_join_element_wise(
            pa.scalar("."), pc.utf8_lpad(pc.cast(pa.array(frac_int), pa.string()), decimals, "0"), ""
        )
    arr = pc.binary_join_element_wise(whole, frac, "")
    if neg.any():
        arr = pc.if_else(pa.array(neg), pc.binary_join_element_wise(pa.scalar("-"), arr, ""), arr)
    return _apply_nulls(arr, null_mask)


def fmt_fixed(values: np.ndarray, decimals: int, null_mask: np.ndarray | None = None) -> pa.Array:
    """Floats rounded half-to-even to ``decimals`` places, as fixed-point text."""
    units = np.rint(np.asarray(values, dtype=np.float64) * 10**decimals).astype(np.int64)
    return fmt_scaled(units, decimals, null_mask)


def _day_lookup(days: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    lo = int(days.min()) if len(days) else 0
    hi = int(days.max()) if len(days) else 0
    labels = pa.array(np.arange(lo, hi + 1, dtype=np.int32), type=pa.date32()).cast(pa.string())
    return labels, (days - lo).astype(np.int32)


def fmt_date(days: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Days since 1970-01-01 as ``YYYY-MM-DD``."""
    days = np.asarray(days, dtype=np.int64)
    mask = _mask(null_mask)
    if mask is not None:
        days = np.where(mask, days[~mask].min() if (~mask).any() else 0, days)
    labels, idx = _day_lookup(days)
    return _apply_nulls(pc.take(labels, pa.array(idx)), mask)


def fmt_ts(seconds: np.ndarray, null_mask: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds as ISO-8601 UTC with ``Z`` (``2021-05-10T22:25:39Z``)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    mask = _mask(null_mask)
    if mask is not None:
        seconds = np.where(mask, seconds[~mask].min() if (~mask).any() else 0, seconds)
    days = seconds // 86400
    labels, idx = _day_lookup(days)
    day_part = pc.take(labels, pa.array(idx))
    tod = pc.take(_time_of_day_strings(), pa.array((seconds - days * 86400).astype(np.int32)))
    return _apply_nulls(pc.binary_join_element_wise(day_part, tod, ""), mask)


def _quote(col: pa.Array) -> pa.Array:
    needs = pc.fill_null(pc.match_substring_regex(col, _NEEDS_QUOTE), False)
    if not pc.any(needs).as_py():
        return col
    quoted = pc.binary_join_element_wise(pa.scalar('"'), pc.replace_substring(col, '"', '""'), pa.scalar('"'), "")
    return pc.if_else(needs, quoted, col)


def _quote_header(name: str) -> str:
    if any(ch in name for ch in ',"\r\n') or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


def _encode_parts(table: pa.Table) -> list:
    """Header bytes and a zero-copy view of the encoded body."""
    header = (",".join(_quote_header(n) for n in table.column_names) + "\n").encode("utf-8")
    if table.num_rows == 0:
        return [header]
    cols = [_quote(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    line = pc.binary_join_element_wise(*cols, ",", null_handling="replace", null_replacement="")
    del cols
    line = pc.binary_join_element_wise(line, pa.scalar("\n"), "").cast(pa.large_string())
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int64)
    start, end = int(offsets[line.offset]), int(offsets[line.offset + len(line)])
    return [header, memoryview(line.buffers()[2])[start:end]]


def encode_csv(table: pa.Table) -> bytes:
    """Encode an all-string table as RFC 4180 CSV (``\\n`` line ends, header first, nulls empty)."""
    return b"".join(bytes(p) for p in _encode_parts(table))


def write_csv(path: Path, table: pa.Table) -> None:
    """Write ``table`` as UTF-8 CSV without BOM, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for part in _encode_parts(table):
            fh.write(part)


def string_table(columns: dict[str, pa.Array]) -> pa.Table:
    """Build an all-string Arrow table, checking every column is text."""
    arrays = []
    for name, arr in columns.items():
        if arr.type != pa.string():
            arr = arr.cast(pa.string())
        arrays.append(arr)
    return pa.table(arrays, names=list(columns))
