"""Superset configuration of the project's dashboards (loaded by Superset through ``SUPERSET_CONFIG_PATH``).

Runs inside the BI virtual environment (``.venv-bi``), which does not have the project installed: this file
imports nothing from ``marketing_assets`` and reads its settings from the environment that
``python -m marketing_assets.bi`` sets (``MARKETING_BI_HOME``, ``SUPERSET_SECRET_KEY``).

- Metadata (users, roles, dashboards) lives in SQLite under ``MARKETING_BI_HOME``; the dashboards' data is the
  read-only DuckDB file of views over the published extracts (``marketing_assets.lib.bi_database``).
- No caching of chart data: the views read the Parquet files the extracts publish, so a refresh shows on the
  next query without a restart (the queries run on aggregates and take milliseconds).
- Dashboard access by role (``DASHBOARD_RBAC``) and drill to detail on; anonymous users get nothing. Drill by is
  off: it asks the server for every chart's drill options when a dashboard opens (one request per chart,
  competing with the chart queries), and drill to detail already reaches every opportunity and touch.
- Offline and private: the content security policy allows only the server itself, which also blocks the
  frontend's telemetry pixel (``SCARF_ANALYTICS = False`` does not stop it); no map tiles, no thumbnails.
"""

import logging
import os
from pathlib import Path

from superset.utils.log import AbstractEventLogger

BI_HOME = Path(os.environ.get("MARKETING_BI_HOME", "data/.superset")).resolve()
BI_HOME.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
LOG_LEVEL = getattr(logging, os.environ.get("SUPERSET_LOG_LEVEL", "warning").upper(), logging.WARNING)
SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}?check_same_thread=false"

FEATURE_FLAGS = {
    "DASHBOARD_RBAC": True,
    "DRILL_TO_DETAIL": True,
    "DRILL_BY": False,
    "THUMBNAILS": False,
    "ALERT_REPORTS": False,
}
SCARF_ANALYTICS = False
PUBLIC_ROLE_LIKE = None
AUTH_ROLE_PUBLIC = "Public"
AUTH_USER_REGISTRATION = False
RECAPTCHA_PUBLIC_KEY = ""

# Chart data straight from the BI database on every query (see module docstring); metadata caching is harmless.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 86400}
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
RATELIMIT_STORAGE_URI = "memory://"



class NoEventLogger(AbstractEventLogger):
    """Superset writes an action log row to its metadata database on every request (and the frontend posts its
    own events): on SQLite that serialises the concurrent chart queries of a dashboard behind one write lock.
    The dashboards need no usage log; Dagster and the extracts' metadata record what changed."""

    def log(self, *args, **kwargs) -> None:  # noqa: D102
        return None


EVENT_LOGGER = NoEventLogger()

ROW_LIMIT = 50000
SAMPLES_ROW_LIMIT = 1000
SQL_MAX_ROW = 100000

_SELF = ["'self'"]
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": _SELF,
        "default-src": _SELF,
        "img-src": [*_SELF, "blob:", "data:"],
        "worker-src": [*_SELF, "blob:"],
        "connect-src": _SELF,
        "object-src": "'none'",
        "style-src": [*_SELF, "'unsafe-inline'"],
        "font-src": _SELF,
        "script-src": [*_SELF, "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG
