"""Where the ad-platform registry lives and the platform names it lists, read without validation.

For table contracts built at import time (``schemas.AdSpendDaily``); everything else uses
:func:`marketing_assets.lib.platforms.load_platforms`, which validates the registry against those contracts.
"""

from __future__ import annotations

import os
from pathlib import Path

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files

DEFAULT_PLATFORMS_FILE = CONFIG_DIR / "ad_platforms.yaml"
PLATFORMS_ENV = "MARKETING_AD_PLATFORMS"


def registry_path() -> Path:
    """``$MARKETING_AD_PLATFORMS`` when set, else ``config/ad_platforms.yaml``."""
    return Path(os.environ.get(PLATFORMS_ENV) or DEFAULT_PLATFORMS_FILE)


def platform_names(path: Path | str | None = None) -> list[str]:
    """Platform names of the registry file, in its order."""
    with open(Path(path) if path else registry_path(), encoding="utf-8") as fh:
        return list((yaml_files.safe_load(fh) or {}).get("platforms") or {})
