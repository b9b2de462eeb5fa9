"""Who owns each layer's assets and checks (``config/owners.yaml``). No Dagster import."""

from __future__ import annotations

import functools
from pathlib import Path

from marketing_assets.lib import yaml_files

OWNERS_FILE = Path(__file__).resolve().parents[1] / "config" / "owners.yaml"


@functools.cache
def load_owners() -> dict[str, str]:
    """Asset group -> owning team."""
    return dict(yaml_files.safe_load(OWNERS_FILE.read_text()))


def owner_of(asset_key: str | None) -> str | None:
    """Owner of an asset given as ``group/name`` (its group is its key prefix); None for rows about no asset."""
    if not asset_key:
        return None
    return load_owners().get(asset_key.split("/", 1)[0])
