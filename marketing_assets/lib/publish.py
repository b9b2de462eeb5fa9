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
PHONE_PATTERN = re.compile(r"(?<![\w.])\+?\d[\d\s().-]{8,}\d(?![\w.])")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _looks_like_phone(text: str) -> bool:
    """A run of 9–15 digits written like a phone number (a leading ``+`` or spaces, dashes or
    parentheses between digit groups), that is not an ISO date, timestamp or plain decimal number."""
    for match in PHONE_PATTERN.finditer(text):
        candidate = match.group(0).strip()
        digits = sum(ch.isdigit() for ch in candidate)
        written_as_phone = candidate.startswith("+") or any(ch in candidate for ch in " -()")
        if 9 <= digits <= 15 and written_as_phone and not DATE_PATTERN.match(candidate):
            return True
    return False


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
    """Email- or phone-looking values per text column (masked samples), empty when clean."""
    found: dict[str, list[str]] = {}
    for col in columns if columns is not None else frame.columns:
        if frame[col].dtype != object and not pd.api.types.is_string_dtype(frame[col]):
            continue
        text = frame[col].dropna().astype(str)
        hits = text[text.str.contains(EMAIL_PATTERN) | text.map(_looks_like_phone)]
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
