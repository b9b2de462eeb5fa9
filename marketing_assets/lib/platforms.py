"""The ad-platform registry (``config/ad_platforms.yaml``): one entry per platform, validated on load.

Each entry names the source contract of the platform export (``source_table``, a model of
``schemas.SOURCE_MODELS``), maps its columns to the unified spend columns, and gives the platform's channel
groups and MMM spend channels. Unified spend (:mod:`.spend`), the reconciliation check, the channel-group
coverage check and the MMM frame (:mod:`.mmm.frame`) read it; adding a platform is one entry here plus its
source contract. ``MARKETING_AD_PLATFORMS`` points at another registry file (tests, deployments).

No Dagster import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketing_assets.lib import yaml_files
from marketing_assets.lib.platform_names import DEFAULT_PLATFORMS_FILE, PLATFORMS_ENV, platform_names, registry_path
from marketing_assets.schemas import SOURCE_MODELS

UNIFIED_TYPES = {
    "date_day": "DATE",
    "account_id": "VARCHAR",
    "currency": "VARCHAR",
    "campaign_id": "VARCHAR",
    "campaign_name": "VARCHAR",
    "campaign_type": "VARCHAR",
    "spend_local": "DOUBLE",
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "conversions": "DOUBLE",
    "conversion_value": "DOUBLE",
}
"""Unified spend columns every platform maps (``fields``) and their SQL types."""

# Words of a field expression that are SQL, not source columns.
_SQL_WORDS = {
    "null", "true", "false", "and", "or", "not", "case", "when", "then", "else", "end", "as", "is", "in", "cast",
    "double", "bigint", "varchar", "date", "integer", "timestamp", "decimal", "interval", "day", "like", "between",
}
_WORD = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")
_STRING = re.compile(r"'(?:[^']|'')*'")


class PlatformRegistryError(ValueError):
    """The ad-platform registry names an unknown table or column, or misses a required entry."""


@dataclass(frozen=True)
class AdPlatform:
    name: str
    label: str
    source_table: str
    fields: Mapping[str, str]
    default_group: str
    groups_by_campaign_type: Mapping[str, str]
    mmm_channels: tuple[tuple[str | None, str], ...]

    @property
    def currency_field(self) -> str:
        return self.fields["currency"]


def field_columns(expr: str) -> set[str]:
    """Source column names an SQL field expression reads (functions, keywords and literals left out)."""
    text = _STRING.sub("''", str(expr))
    return {w for w in _WORD.findall(text) if w.lower() not in _SQL_WORDS}


def _contract_columns(source_models: Mapping[str, Any], table: str) -> set[str]:
    return set(source_models[table].to_schema().columns)


def parse_platforms(raw: Mapping[str, Any], source_models: Mapping[str, Any] | None = None, where: str = "ad_platforms") -> dict[str, AdPlatform]:
    """Validate a registry mapping (the YAML's content) against the source contracts and build the entries."""
    source_models = SOURCE_MODELS if source_models is None else source_models
    entries = (raw or {}).get("platforms")
    if not isinstance(entries, Mapping):
        raise PlatformRegistryError(f"{where}: needs a `platforms` mapping")
    out: dict[str, AdPlatform] = {}
    for name, entry in entries.items():
        at = f"{where}: platform {name!r}"
        if not isinstance(entry, Mapping):
            raise PlatformRegistryError(f"{at}: must be a mapping")
        table = entry.get("source_table")
        if table not in source_models:
            raise PlatformRegistryError(f"{at}: source_table {table!r} is not a source contract (schemas.SOURCE_MODELS: {sorted(source_models)})")
        fields = {str(k): str(v) for k, v in (entry.get("fields") or {}).items()}
        missing, extra = sorted(set(UNIFIED_TYPES) - set(fields)), sorted(set(fields) - set(UNIFIED_TYPES))
        if missing or extra:
            raise PlatformRegistryError(f"{at}: fields must map exactly {list(UNIFIED_TYPES)} (missing {missing}, unknown {extra}); use NULL where the export lacks one")
        columns = _contract_columns(source_models, table)
        for field, expr in fields.items():
            unknown = sorted(field_columns(expr) - columns)
            if unknown:
                raise PlatformRegistryError(f"{at}: field {field} = {expr!r} reads {unknown}, not columns of {table} ({sorted(columns)})")
        groups = entry.get("channel_group") or {}
        if not isinstance(groups, Mapping) or not groups.get("default"):
            raise PlatformRegistryError(f"{at}: channel_group.default is required")
        if "mmm_channels" not in entry:
            raise PlatformRegistryError(f"{at}: mmm_channels is required (`[]` to leave its spend out of the MMM on purpose)")
        rules = []
        for rule in entry.get("mmm_channels") or []:
            if not (isinstance(rule, (list, tuple)) and len(rule) == 2 and rule[1]):
                raise PlatformRegistryError(f"{at}: mmm_channels entries are [campaign_type or null, mmm_channel], got {rule!r}")
            rules.append((None if rule[0] is None else str(rule[0]), str(rule[1])))
        out[str(name)] = AdPlatform(
            str(name), str(entry.get("label") or name), str(table), fields, str(groups["default"]),
            {str(k).upper(): str(v) for k, v in (groups.get("by_campaign_type") or {}).items()}, tuple(rules),
        )
    return out


def load_platforms(path: Path | str | None = None) -> dict[str, AdPlatform]:
    """The registry (``path``, else ``$MARKETING_AD_PLATFORMS``, else ``config/ad_platforms.yaml``), validated."""
    path = Path(path) if path else registry_path()
    with open(path, encoding="utf-8") as fh:
        return parse_platforms(yaml_files.safe_load(fh), where=str(path))


def mmm_channel_rules(platforms: Mapping[str, AdPlatform] | None = None) -> tuple[tuple[str, str | None, str], ...]:
    """``(platform, campaign_type or None, mmm_channel)`` rules of every platform, registry order; first match wins."""
    reg = platforms if platforms is not None else load_platforms()
    return tuple((p.name, ctype, channel) for p in reg.values() for ctype, channel in p.mmm_channels)


def platform_labels(platforms: Mapping[str, AdPlatform] | None = None) -> dict[str, str]:
    reg = platforms if platforms is not None else load_platforms()
    return {p.name: p.label for p in reg.values()}


__all__ = [
    "DEFAULT_PLATFORMS_FILE", "PLATFORMS_ENV", "UNIFIED_TYPES", "AdPlatform", "PlatformRegistryError", "field_columns",
    "load_platforms", "mmm_channel_rules", "parse_platforms", "platform_labels", "platform_names", "registry_path",
]
