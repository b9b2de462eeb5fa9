"""Numbers, dates and names for people: the only place a report turns a value into text."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import pandas as pd

from marketing_assets.lib.attribution.models import REGISTRY
from marketing_assets.lib.attribution.models import model_label as registry_model_label

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CHF": "CHF ", "CAD": "C$", "AUD": "A$"}
MODEL_LABELS = {name: model.label for name, model in REGISTRY.items()}
"""Labels of the models registered at import (``lib/attribution/models.py``); :func:`model_label` reads the registry."""
STAGE_LABELS = {"known": "Known", "engaged": "Engaged", "mql": "MQL", "sql": "SQL", "opportunity": "Opportunity", "customer": "Customer"}


def is_num(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return False
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def currency_symbol(code: str) -> str:
    return CURRENCY_SYMBOLS.get(code, f"{code} ")


def fmt_value(v: Any, unit: str | None = None, *, currency: str = "USD", compact: bool = False, signed: bool = False) -> str:
    """A number for people: thousands separators, currency symbol, percentages from fractions (1 decimal)."""
    if not is_num(v):
        return "–"
    f = float(v)
    sign = "+" if signed and f > 0 else ""
    unit = (unit or "").lower()
    if unit == "percent":
        f = 0.0 if round(f * 100, 1) == 0 else f
        sign = "+" if signed and f > 0 else ""
        return f"{sign}{f * 100:,.1f}%"
    if unit == "ratio":
        return f"{sign}{f:,.2f}×"
    if unit == "months":
        return f"{sign}{f:,.1f} months"
    if unit == "count":
        return f"{sign}{f:,.0f}"
    if unit == "currency":
        sym = currency_symbol(currency)
        neg = "−" if f < 0 else sign
        a = abs(f)
        if compact and a >= 1e6:
            return f"{neg}{sym}{a / 1e6:,.1f}M"
        if compact and a >= 1e4:
            return f"{neg}{sym}{a / 1e3:,.0f}k"
        return f"{neg}{sym}{a:,.0f}" if a >= 1000 else f"{neg}{sym}{a:,.2f}"
    if abs(f) >= 100 or f == int(f):
        return f"{sign}{f:,.0f}"
    return f"{sign}{f:,.2f}"


def fmt_tile(v: Any, unit: str | None, currency: str) -> str:
    """Tile numbers stay short: currency in millions with 2 decimals from 1M (the full figure is the hover title)."""
    if unit == "currency" and is_num(v) and abs(float(v)) >= 1e6:
        return f"{'−' if float(v) < 0 else ''}{currency_symbol(currency)}{abs(float(v)) / 1e6:,.2f}M"
    return fmt_value(v, unit, currency=currency)


def fmt_date(v: Any) -> str:
    if is_missing(v):
        return "–"
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        return str(v)
    if pd.isna(ts):
        return "–"
    return ts.strftime("%Y-%m-%d")


def fmt_month(v: Any) -> str:
    return pd.Timestamp(v).strftime("%b %Y")


def fmt_datetime(v: Any) -> str:
    if v is None:
        return "–"
    ts = pd.Timestamp(v)
    if pd.isna(ts):
        return "–"
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
        return ts.strftime("%Y-%m-%d %H:%M UTC")
    if ts.hour == ts.minute == ts.second == 0 and not isinstance(v, (dt.datetime, pd.Timestamp)):
        return ts.strftime("%Y-%m-%d")
    return ts.strftime("%Y-%m-%d %H:%M")


def slug(name: Any) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", str(name).lower()).strip("-") or "x"


def model_label(m: Any) -> str:
    return registry_model_label(m)


def stage_label(s: Any) -> str:
    return STAGE_LABELS.get(str(s), str(s))


def plural(n: Any, word: str) -> str:
    return word if n == 1 else word + "s"
