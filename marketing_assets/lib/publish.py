"""Publishing extracts: keyed pseudonyms for identifiers, atomic Parquet + CSV files. No Dagster import.

Identifiers leave the warehouse only as HMAC-SHA256 pseudonyms under a secret key, so the same
customer gets the same token in every extract and refresh while nobody without the key can map
it back. Files appear atomically: written to a temporary name in the target folder, then renamed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

PSEUDONYM_HEX = 16
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Tokens that are identifiers or numbers, never contact details; masked before the phone search.
# An alphanumeric neighbour (or one joined by a dash) makes a digit group part of a larger token.
_NOT_AFTER = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]-)"
_NOT_BEFORE = r"(?![0-9A-Za-z])(?!-[0-9A-Za-z])"
IDENTIFIER_PATTERN = re.compile(
    "|".join(
        rf"{_NOT_AFTER}(?:{body}){_NOT_BEFORE}"
        for body in (
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",  # UUIDs, Dagster run ids
            r"[0-9a-fA-F]{16,}",  # hashes, HMAC pseudonyms (after their prefix): 16+ hex digits is no phone number
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?",  # ISO dates, timestamps
            r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])",  # ISO year-months
            r"[+-]?\d+\.\d+(?:[eE][+-]?\d+)?",  # decimals
        )
    )
)
# 9–15 digits (E.164 allows at most 15), optionally led by ``+`` or ``(``, at most two separators between digits,
# not inside a larger token (a sentence's full stop may follow).
PHONE_PATTERN = re.compile(
    rf"(?<!\w)(?<!\d\.)(?<![0-9A-Za-z]-)[+(]?\d(?:[ \t().-]{{0,2}}\d){{8,14}}(?!\w)(?!\.\w){_NOT_BEFORE}"
)


def _written_as_phone(candidate: str) -> bool:
    """A leading ``+`` or spaces, dashes or parentheses between digit groups; a bare digit run is an id or an amount."""
    return candidate.startswith("+") or any(ch in candidate for ch in " -()")


def _phone_in_masked(masked: str) -> bool:
    return any(_written_as_phone(m.group(0)) for m in PHONE_PATTERN.finditer(masked))


def _looks_like_phone(text: str) -> bool:
    """Whether ``text`` holds a phone number written like one, once identifiers (UUIDs, hashes, pseudonyms),
    ISO dates and timestamps and decimal numbers are masked; a digit group inside a larger token does not count."""
    return _phone_in_masked(IDENTIFIER_PATTERN.sub("x", text))


def _phone_mask(text: pd.Series) -> pd.Series:
    """:func:`_looks_like_phone` over a column: vectorised regex passes, Python only for the few candidates."""
    masked = text.str.replace(IDENTIFIER_PATTERN, "x", regex=True)
    candidates = masked[masked.str.contains(PHONE_PATTERN).astype(bool)]
    phones = [i for i, t in candidates.items() if _phone_in_masked(t)]
    return pd.Series(text.index.isin(phones), index=text.index)


class PseudonymKeyMissing(RuntimeError):
    """No pseudonymisation key is configured outside demo mode."""


def resolve_key(key: str | None, demo_mode: bool) -> bytes:
    """The HMAC key: the configured one, or a fixed public key for demo data only."""
    if key:
        return key.encode("utf-8")
    if demo_mode:
        return b"marketing-assets-demo-key (demo data only: not secret)"
    raise PseudonymKeyMissing(
        "MARKETING_PSEUDONYM_KEY is not set: extracts would expose raw identifiers. Set it to a secret "
        "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) and keep it out of the repository."
    )


def pseudonymise(values: pd.Series, key: bytes, prefix: str = "") -> pd.Series:
    """Keyed pseudonym per value (NULL stays NULL); each distinct value is hashed once."""
    uniques = values.dropna().unique()
    mapping = {v: prefix + hmac.new(key, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX] for v in uniques}
    return values.map(mapping).astype("object").where(values.notna(), None)


def find_pii(frame: pd.DataFrame, columns: Iterable[str] | None = None, sample: int = 5) -> dict[str, list[str]]:
    """Email- or phone-looking values per text column (masked samples), empty when clean.

    Each distinct value is scanned once; identifiers and numbers are never reported (see ``IDENTIFIER_PATTERN``).
    """
    found: dict[str, list[str]] = {}
    for col in columns if columns is not None else frame.columns:
        if frame[col].dtype != object and not pd.api.types.is_string_dtype(frame[col]):
            continue
        text = pd.Series(frame[col].dropna().astype(str).unique(), dtype=object)
        hits = text[text.str.contains(EMAIL_PATTERN) | _phone_mask(text)]
        if len(hits):
            found[col] = [h[:2] + "***" for h in hits.head(sample)]
    return found


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates owner-only files; published extracts get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_extract(frame: pd.DataFrame, name: str, out_dir: Path | str) -> dict[str, Path]:
    """Write ``name.parquet`` and ``name.csv`` atomically; a reader never sees a half-written file."""
    out = Path(out_dir)
    paths = {"parquet": out / f"{name}.parquet", "csv": out / f"{name}.csv"}
    _atomic_write(paths["parquet"], lambda p: frame.to_parquet(p, index=False))
    _atomic_write(paths["csv"], lambda p: frame.to_csv(p, index=False, date_format="%Y-%m-%dT%H:%M:%S"))
    return paths
