"""Channel mapping as SQL: GA4 default channel grouping with overrides, CRM labels to groups.

The rules come from ``config/channels.yaml`` and compile to one DuckDB ``CASE`` expression, so
10M sessions are classified in a single vectorised pass. No Dagster import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files
from marketing_assets.lib.dialect import stable_hash
from marketing_assets.lib.sql import literal

DEFAULT_CHANNELS_FILE = CONFIG_DIR / "channels.yaml"


def load_channel_config(path: Path | str = DEFAULT_CHANNELS_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml_files.safe_load(fh)


def _in(expr: str, values: Sequence[str]) -> str:
    return f"{expr} IN ({', '.join(literal(str(v).lower()) for v in values)})" if values else "false"


def _site_regex(sites: Sequence[str]) -> str:
    """Matches a source naming one of ``sites``, with or without ``www.`` and a domain suffix."""
    alt = "|".join(re.escape(s.lower()) for s in sites)
    return f"^(www\\.)?({alt})(\\.[a-z.]+)?$"


def _matches(expr: str, regex: str) -> str:
    return f"coalesce(regexp_matches({expr}, {literal(regex)}), false)"


def _norm(expr: str) -> str:
    return f"nullif(lower(trim({expr})), '')"


def web_channel_sql(
    cfg: Mapping[str, Any],
    utm_source: str = "utm_source",
    utm_medium: str = "utm_medium",
    utm_campaign: str = "utm_campaign",
    gclid: str = "gclid",
    fbclid: str = "fbclid",
    referrer: str = "page_referrer",
) -> tuple[str, str]:
    """SQL expressions ``(channel_name, channel_group)`` for a row of web-session attributes.

    Google Ads auto-tagging (a ``gclid`` without UTMs) counts as google / cpc. A session with
    neither UTMs nor click ids is Direct without a referrer, else Organic Search / Organic Social /
    Referral by the referrer's host. Overrides (first match wins) set both name and group; otherwise
    the channel name is the GA4 group itself.
    """
    g = cfg["ga4"]
    src = f"coalesce({_norm(utm_source)}, CASE WHEN {_norm(gclid)} IS NOT NULL THEN 'google' END)"
    med = f"coalesce({_norm(utm_medium)}, CASE WHEN {_norm(gclid)} IS NOT NULL AND {_norm(utm_source)} IS NULL THEN 'cpc' END)"
    camp = f"coalesce({_norm(utm_campaign)}, '')"
    ref = f"coalesce({_norm(referrer)}, '')"
    s, m = f"coalesce({src}, '')", f"coalesce({med}, '')"
    paid = _matches(m, g["paid_medium_regex"])
    search, social = _matches(s, _site_regex(g["search_sources"])), _matches(s, _site_regex(g["social_sources"]))
    video, shopping_src = _matches(s, _site_regex(g["video_sources"])), _matches(s, _site_regex(g["shopping_sources"]))
    shopping = f"({shopping_src} OR {_matches(camp, g['shopping_campaign_regex'])})"
    ref_has = lambda hosts: "(" + " OR ".join(f"contains({ref}, {literal(h)})" for h in hosts) + ")" if hosts else "false"  # noqa: E731
    rules = [
        (f"{src} IS NULL AND {med} IS NULL AND {ref} = '' AND {_norm(fbclid)} IS NULL", "Direct"),
        (f"{src} IS NULL AND {med} IS NULL AND {ref_has(g['search_referrers'])}", "Organic Search"),
        (f"{src} IS NULL AND {med} IS NULL AND ({ref_has(g['social_referrers'])} OR {_norm(fbclid)} IS NOT NULL)", "Organic Social"),
        (f"{src} IS NULL AND {med} IS NULL", "Referral"),
        (f"contains({camp}, 'cross-network')", "Cross-network"),
        (f"{shopping} AND {paid}", "Paid Shopping"),
        (f"{search} AND {paid}", "Paid Search"),
        (f"{social} AND {paid}", "Paid Social"),
        (f"{video} AND {paid}", "Paid Video"),
        (_in(m, g["display_mediums"]), "Display"),
        (paid, "Paid Other"),
        (shopping, "Organic Shopping"),
        (f"{social} OR {_in(m, g['social_mediums'])}", "Organic Social"),
        (f"{video} OR {_matches(m, g['video_medium_regex'])}", "Organic Video"),
        (f"{search} OR {m} = 'organic'", "Organic Search"),
        (_in(m, g["referral_mediums"]), "Referral"),
        (f"{_in(s, g['email_values'])} OR {_in(m, g['email_values'])}", "Email"),
        (_in(m, g["affiliate_mediums"]), "Affiliates"),
        (_in(m, g["audio_mediums"]), "Audio"),
        (f"{_in(s, g['sms_values'])} OR {_in(m, g['sms_values'])}", "SMS"),
        (_matches(m, g["push_medium_regex"]), "Mobile Push Notifications"),
    ]
    group = "CASE " + " ".join(f"WHEN {cond} THEN {literal(name)}" for cond, name in rules) + " ELSE 'Unassigned' END"
    fields = {"utm_source": s, "utm_medium": m, "utm_campaign": camp}
    override_name, override_group = _override_cases(cfg.get("overrides") or [], fields)
    return f"coalesce({override_name}, {group})", f"coalesce({override_group}, {group})"


def _override_cases(overrides: Sequence[Mapping[str, Any]], fields: Mapping[str, str]) -> tuple[str, str]:
    if not overrides:
        return "NULL", "NULL"
    names, groups = [], []
    for rule in overrides:
        conds = []
        for field, value in (rule.get("match") or {}).items():
            values = value if isinstance(value, list) else [value]
            conds.append(_in(fields[field], [str(v).strip() for v in values]))
        cond = " AND ".join(conds) or "true"
        names.append(f"WHEN {cond} THEN {literal(rule['channel_name'])}")
        groups.append(f"WHEN {cond} THEN {literal(rule['channel_group'])}")
    return f"CASE {' '.join(names)} END", f"CASE {' '.join(groups)} END"


def crm_label_group_sql(cfg: Mapping[str, Any], label: str = "channel_name") -> str:
    """SQL mapping a CRM channel label (compared lower-cased and trimmed) to its channel group."""
    cases = " ".join(f"WHEN {literal(k.lower().strip())} THEN {literal(v)}" for k, v in sorted(cfg["crm_labels"].items()))
    return f"CASE lower(trim({label})) {cases} ELSE {literal(cfg.get('unknown_group', 'Unassigned'))} END"


def _host_sql(expr: str) -> str:
    host = f"regexp_replace(lower(trim({expr})), '^[a-z]+://', '')"
    host = f"regexp_replace({host}, '^www[0-9]*\\.', '')"
    return f"nullif(regexp_replace({host}, '[/?#:].*$', ''), '')"


WEB_SIGNATURE_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "has_gclid", "has_fbclid", "referrer_host")


def web_signature_sql(
    utm_source: str = "utm_source",
    utm_medium: str = "utm_medium",
    utm_campaign: str = "utm_campaign",
    gclid: str = "gclid",
    fbclid: str = "fbclid",
    referrer: str = "page_referrer",
) -> dict[str, str]:
    """The normalised acquisition signature of a session: what its channel depends on, nothing more.

    ``channel_map`` holds one row per distinct signature; sessions join it on ``signature_id``.
    """
    cols = {
        "utm_source": _norm(utm_source),
        "utm_medium": _norm(utm_medium),
        "utm_campaign": _norm(utm_campaign),
        "has_gclid": f"{_norm(gclid)} IS NOT NULL",
        "has_fbclid": f"{_norm(fbclid)} IS NOT NULL",
        "referrer_host": _host_sql(referrer),
    }
    cols["signature_id"] = stable_hash(*(cols[c] for c in WEB_SIGNATURE_COLUMNS))  # the same key on every engine
    return cols


def crm_label_key_sql(label: str = "channel_name") -> str:
    """Spelling variants that differ only in case or spaces share one key."""
    return f"lower(regexp_replace(trim({label}), '\\s+', ' ', 'g'))"


def campaign_key_sql(expr: str) -> str:
    """SQL normalising a campaign name or utm_campaign to the key campaigns are matched on (``brand_search_us``)."""
    return f"nullif(trim(regexp_replace(lower(trim({expr})), '[^a-z0-9]+', '_', 'g'), '_'), '')"
