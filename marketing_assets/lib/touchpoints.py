"""Touchpoints, opportunity windows and journeys, as DuckDB SQL. No Dagster import.

A touchpoint belongs to an opportunity when its contact's account is the opportunity's account
and ``opportunity_created_date - window <= touchpoint_date <= opportunity_created_date`` (both
ends inclusive). Ties on the same timestamp are broken by type (marketing, sales, web), then id.
"""

from __future__ import annotations

from collections.abc import Sequence

from marketing_assets.lib.channels import campaign_key_sql

TYPE_ORDER_SQL = "CASE touchpoint_type WHEN 'marketing' THEN 1 WHEN 'sales' THEN 2 ELSE 3 END"
TOUCH_ORDER = "touchpoint_date, type_order, touchpoint_id"


def touch_order_key(alias: str) -> str:
    """:data:`TOUCH_ORDER` over the columns of ``alias`` as one sortable key, for ``arg_max`` / ``arg_min``: the
    last / first touch. touchpoint_id is unique, so two touches never tie (a bare ``touchpoint_date`` key lets
    DuckDB pick any of the touches at the same time, a different one from one run to the next)."""
    return "(" + ", ".join(f"{alias}.{column.strip()}" for column in TOUCH_ORDER.split(",")) + ")"


def touchpoints_sql(
    marketing: str,
    sales: str,
    sessions: str,
    contacts_resolved: str,
    web_clients: str,
    channel_map: str,
    contacts: str,
) -> str:
    """SELECT of every touchpoint on a known contact: CRM marketing, CRM sales and contact-linked web sessions.

    CRM touchpoints keep their CRM id and take the channel of their (case/space-merged) label;
    web touchpoints get ``web:<session_id>`` and the channel of their acquisition signature, and
    belong to the canonical contact of their browser client.
    """
    from marketing_assets.lib.channels import crm_label_key_sql, web_signature_sql

    # The channel of a CRM label, a session's channel and a campaign key depend on a few distinct values (tens of
    # labels and campaigns, about a thousand acquisition signatures): each is computed once per distinct value and
    # joined to the touches, not evaluated on every touch (regular expressions and MD5 on millions of rows).
    row_sig = web_signature_sql(gclid="s.gclid", fbclid="s.fbclid")
    sig = web_signature_sql(gclid="CASE WHEN has_gclid THEN 'x' END", fbclid="CASE WHEN has_fbclid THEN 'x' END")
    signature_inputs = ("utm_source", "utm_medium", "utm_campaign", "has_gclid", "has_fbclid", "page_referrer")
    session_rows = (f"SELECT s.session_id, s.client_id, s.session_start, s.utm_source, s.utm_medium, s.utm_campaign, s.page_referrer,"
                    f" {row_sig['has_gclid']} AS has_gclid, {row_sig['has_fbclid']} AS has_fbclid FROM {sessions} s")
    same_signature = " AND ".join(f"g.{c} IS NOT DISTINCT FROM s.{c}" for c in signature_inputs)
    return f"""
    WITH labels AS (
        SELECT crm_label_key, channel_name, channel_group FROM {channel_map} WHERE source_kind = 'crm_label'
    ),
    people AS (
        SELECT r.contact_id, r.account_id, r.canonical_contact_id, c.lead_date
        FROM {contacts_resolved} r LEFT JOIN {contacts} c USING (contact_id)
    ),
    crm AS (
        SELECT marketing_touchpoint_id AS touchpoint_id, 'marketing' AS touchpoint_type, contact_id,
               marketing_touchpoint_date AS touchpoint_date, channel_name AS channel_label,
               utm_source, utm_medium, utm_campaign
        FROM {marketing}
        UNION ALL
        SELECT sales_touchpoint_id, 'sales', contact_id, sales_touchpoint_date, channel_name, NULL, NULL, NULL
        FROM {sales}
    ),
    crm_channels AS (  -- one row per distinct CRM channel label
        SELECT d.channel_label, coalesce(l.channel_name, trim(d.channel_label)) AS channel_name,
               coalesce(l.channel_group, 'Unassigned') AS channel_group
        FROM (SELECT channel_label, {crm_label_key_sql('channel_label')} AS crm_label_key
              FROM (SELECT DISTINCT channel_name AS channel_label FROM {marketing} UNION SELECT DISTINCT channel_name FROM {sales})) d
        LEFT JOIN labels l ON l.crm_label_key = d.crm_label_key
    ),
    crm_touches AS (
        SELECT t.touchpoint_id, t.touchpoint_type, t.contact_id, p.canonical_contact_id, p.account_id, t.touchpoint_date,
               l.channel_name, l.channel_group, t.utm_source, t.utm_medium, t.utm_campaign, p.lead_date
        FROM crm t
        JOIN people p USING (contact_id)
        JOIN crm_channels l ON l.channel_label IS NOT DISTINCT FROM t.channel_label
    ),
    web_channels AS (  -- one row per distinct acquisition signature input
        SELECT {', '.join(f'g.{c}' for c in signature_inputs)}, m.channel_name, m.channel_group
        FROM (SELECT *, {sig['signature_id']} AS signature_id FROM (SELECT DISTINCT {', '.join(signature_inputs)} FROM ({session_rows}))) g
        LEFT JOIN (SELECT signature_id, channel_name, channel_group FROM {channel_map} WHERE source_kind = 'web') m
               ON m.signature_id = g.signature_id
    ),
    web_touches AS (
        SELECT 'web:' || s.session_id AS touchpoint_id, 'web' AS touchpoint_type, k.canonical_contact_id AS contact_id,
               k.canonical_contact_id, p.account_id, s.session_start AS touchpoint_date,
               g.channel_name, g.channel_group, s.utm_source, s.utm_medium, s.utm_campaign, p.lead_date
        FROM ({session_rows}) s
        JOIN {web_clients} k ON k.client_id = s.client_id AND k.canonical_contact_id IS NOT NULL
        JOIN people p ON p.contact_id = k.canonical_contact_id
        JOIN web_channels g ON {same_signature}
    ),
    campaigns AS (  -- one row per distinct utm_campaign
        SELECT utm_campaign, {campaign_key_sql('utm_campaign')} AS campaign_key
        FROM (SELECT DISTINCT utm_campaign FROM {marketing} UNION SELECT DISTINCT utm_campaign FROM {sessions})
    )
    SELECT t.*, {TYPE_ORDER_SQL} AS type_order, channel_group = 'Direct' AS is_direct, c.campaign_key
    FROM (SELECT * FROM crm_touches UNION ALL BY NAME SELECT * FROM web_touches) t
    LEFT JOIN campaigns c ON c.utm_campaign = t.utm_campaign"""


def opportunity_touchpoints_sql(opportunities: str, touchpoints: str, window_days: int, lead_touches: str | None = None) -> str:
    """SELECT of opportunity × touchpoint rows inside the lookback window (both ends inclusive).

    Adds the touch order, the touch count, and ``is_lead_creation``: the latest touch at or before
    the earliest lead date among the opportunity's touching contacts (at most one per opportunity).
    ``lead_touches``: a table holding :func:`lead_touches_sql` of the same inputs (else computed inline).
    """
    return _windowed_sql(opportunities, touchpoints, [int(window_days)], lead_touches)


def opportunity_touchpoints_by_window_sql(opportunities: str, touchpoints: str, windows: Sequence[int], lead_touches: str | None = None) -> str:
    """SELECT of lookback window × opportunity × touchpoint rows: for each ``w`` in ``windows``, the rows of
    :func:`opportunity_touchpoints_sql` ``(w)`` (``lookback_days`` = ``w``), from one join with the widest window.

    The windows nest (a touch is in window ``w`` when it is at most ``w`` days before the opportunity), so the
    touches are joined once and each one is repeated for every window it falls in; touch order, count and the
    lead-creation touch are computed per opportunity × window. ``lead_touches`` as in :func:`opportunity_touchpoints_sql`.
    """
    return _windowed_sql(opportunities, touchpoints, _lookbacks(windows), lead_touches)


def lead_touches_sql(opportunities: str, touchpoints: str, windows: Sequence[int]) -> str:
    """SELECT of each opportunity's lead-creation touch (``lead_touchpoint_id``), one row per opportunity (× lookback
    window, ``lookback_days``, when there are several ``windows``) that has one: the latest touch of the window at or
    before the first lead date of its touches' contacts; on a tie, the touch of the contact who became the lead, then
    marketing before sales before web, then the smaller touchpoint_id (unique in touchpoints: one touch).

    From its own join of the few columns it reads. Computed from the windowed rows instead, those are read twice (by
    this and by the table's SELECT), so the engine materialises them whole: a second copy of the widest rows, which
    spilled at scale. Kept in a table of its own (a few rows per thousand touches) before the windowed statement, the
    narrow join also frees its memory before the window's sort needs it. Measured on 2 cores with a 4.3 GB DuckDB limit:
    opportunity_touchpoints at ``xlarge`` (35.7M rows) 177 s -> 140 s, at ``large`` (7.1M rows, no spilling) 20 s -> 25-28 s.
    """
    windows = _lookbacks(windows)
    if len(windows) == 1:
        keys, firsts, in_lookback = "opportunity_id", "SELECT opportunity_id, min(lead_date) AS first_lead_date FROM touches GROUP BY ALL", ""
    else:
        keys = "opportunity_id, lookback_days"
        firsts = f"""SELECT n.opportunity_id, w.lookback_days, min(n.lead_date) AS first_lead_date
            FROM touches n JOIN {_windows(windows)} w ON n.touchpoint_date >= n.opportunity_created_date - INTERVAL (w.lookback_days) DAY
            GROUP BY ALL"""
        in_lookback = " AND n.touchpoint_date >= n.opportunity_created_date - INTERVAL (f.lookback_days) DAY"
    return f"""
    WITH touches AS (
        SELECT o.opportunity_id, o.opportunity_created_date, t.touchpoint_id, t.touchpoint_date, t.type_order, t.lead_date
        FROM {opportunities} o JOIN {touchpoints} t ON {_in_window('o', 't', max(windows))}
    ),
    firsts AS ({firsts})
    SELECT f.{keys.replace(", ", ", f.")}, arg_min(n.touchpoint_id, (
               -epoch(n.touchpoint_date), CASE WHEN n.lead_date = f.first_lead_date THEN 0 ELSE 1 END, n.type_order, n.touchpoint_id
           )) AS lead_touchpoint_id
    FROM touches n JOIN firsts f ON f.opportunity_id = n.opportunity_id AND n.touchpoint_date <= f.first_lead_date{in_lookback}
    GROUP BY ALL"""


def _in_window(o: str, t: str, days: int) -> str:
    """Touch ``t`` is on the account of opportunity ``o`` and at most ``days`` days before it (both ends inclusive)."""
    return (f"{t}.account_id = {o}.account_id AND {t}.touchpoint_date BETWEEN {o}.opportunity_created_date - INTERVAL ({int(days)}) DAY"
            f" AND {o}.opportunity_created_date")


def _lookbacks(windows: Sequence[int]) -> list[int]:
    """The distinct lookback windows in days, ascending; at least one."""
    days = sorted({int(w) for w in windows})
    if not days:
        raise ValueError("at least one lookback window is needed")
    return days


def _windowed_sql(opportunities: str, touchpoints: str, windows: list[int], lead_touches: str | None) -> str:
    """``windows``: as :func:`_lookbacks` returns them."""
    widest = max(windows)
    by_opp = "OVER (PARTITION BY opportunity_id)"
    if len(windows) == 1:  # the window is a constant: nothing to join, partition or carry through the sorts
        partition, drop, lookback = "opportunity_id", "", f"{widest} AS lookback_days"
        ordered = f"""
        -- one window operator (one sort of the wide rows): the touch count shares the ordered one's partitions
        SELECT *, row_number() OVER (PARTITION BY opportunity_id ORDER BY {TOUCH_ORDER}) AS touch_order, count(*) {by_opp} AS touch_count
        FROM joined"""
    else:
        # The windows nest and the touch order starts with the date: the touches of a narrower window are the last ones
        # of the widest window's order. One sort of the widest window's touches gives every window's order (the place in
        # the widest window minus the touches before the narrower one's start) and count; each touch is then repeated for
        # every window it falls in.
        partition, drop, lookback = "opportunity_id, lookback_days", " EXCLUDE (lookback_days)", "o.lookback_days"
        narrower = [w for w in windows if w != widest]
        per_window = [f"count(*) FILTER (WHERE touchpoint_date >= opportunity_created_date - INTERVAL ({int(w)}) DAY) {by_opp} AS _n_{w}"
                      for w in narrower]
        cases = " ".join(f"WHEN {int(w)} THEN _n_{w}" for w in narrower)
        count = f"CASE w.lookback_days {cases} ELSE _n_{widest} END"
        ordered = f"""
        SELECT x.* EXCLUDE (_order, {", ".join(f"_n_{w}" for w in windows)}), w.lookback_days,
               _order - _n_{widest} + {count} AS touch_order, {count} AS touch_count
        FROM (
            SELECT *, row_number() OVER (PARTITION BY opportunity_id ORDER BY {TOUCH_ORDER}) AS _order,
                   count(*) {by_opp} AS _n_{widest}, {", ".join(per_window)}
            FROM joined
        ) x
        JOIN {_windows(windows)} w ON x.touchpoint_date >= x.opportunity_created_date - INTERVAL (w.lookback_days) DAY"""
    lead = lead_touches or f"({lead_touches_sql(opportunities, touchpoints, windows)})"
    return f"""
    WITH joined AS (
        SELECT o.opportunity_id, o.account_id, CAST(o.pipeline_amount AS DOUBLE) AS pipeline_amount,
               o.opportunity_created_date, o.sales_segment,
               t.touchpoint_id, t.touchpoint_type, t.channel_name, t.channel_group, t.contact_id, t.touchpoint_date,
               t.canonical_contact_id, t.campaign_key, t.utm_campaign, t.is_direct, t.type_order
        FROM {opportunities} o JOIN {touchpoints} t ON {_in_window('o', 't', widest)}
    ),
    ordered AS ({ordered}
    )
    SELECT o.*{drop},
           coalesce(o.touchpoint_id = l.lead_touchpoint_id, false) AS is_lead_creation,
           date_diff('second', o.touchpoint_date, o.opportunity_created_date) / 86400.0 AS days_before_opportunity,
           {lookback}
    FROM ordered o LEFT JOIN {lead} l USING ({partition})"""


def _windows(windows: Sequence[int]) -> str:
    """A relation of one ``lookback_days`` row per window."""
    return f"(SELECT unnest([{', '.join(str(int(w)) for w in windows)}]) AS lookback_days)"


def conversion_paths_sql(opportunity_touchpoints: str, touchpoints: str, opportunities: str, window_days: int, data_end: str) -> str:
    """SELECT of journeys: one converting path per opportunity with touchpoints, and non-converting ones.

    Non-converting journeys are an account's touchpoints that fall in no opportunity window,
    split where two touches are more than ``window_days`` apart; a journey whose last touch is
    within ``window_days`` of ``data_end`` may still convert and is left out.
    """
    return f"""
    WITH converting AS (
        SELECT 'opportunity' AS journey_kind, opportunity_id AS journey_id, any_value(account_id) AS account_id,
               string_agg(channel_name, ' > ' ORDER BY touch_order) AS path,
               count(*) AS touch_count, 1 AS conversions, any_value(pipeline_amount) AS value, 0 AS nulls,
               min(touchpoint_date) AS first_touch_at, max(touchpoint_date) AS last_touch_at
        FROM {opportunity_touchpoints} GROUP BY opportunity_id
    ),
    loose AS (
        SELECT t.* FROM {touchpoints} t
        ANTI JOIN {opportunities} o
          ON o.account_id = t.account_id
         AND t.touchpoint_date BETWEEN o.opportunity_created_date - INTERVAL ({int(window_days)}) DAY AND o.opportunity_created_date + INTERVAL ({int(window_days)}) DAY
    ),
    gaps AS (
        SELECT *, CASE WHEN lag(touchpoint_date) OVER w IS NULL
                         OR touchpoint_date - lag(touchpoint_date) OVER w > INTERVAL ({int(window_days)}) DAY THEN 1 ELSE 0 END AS starts
        FROM loose WINDOW w AS (PARTITION BY account_id ORDER BY touchpoint_date, type_order, touchpoint_id)
    ),
    numbered AS (
        SELECT *, sum(starts) OVER (PARTITION BY account_id ORDER BY touchpoint_date, type_order, touchpoint_id) AS journey_no FROM gaps
    ),
    non_converting AS (
        SELECT 'non_converting' AS journey_kind, account_id || '#' || journey_no AS journey_id, account_id,
               string_agg(channel_name, ' > ' ORDER BY touchpoint_date, type_order, touchpoint_id) AS path,
               count(*) AS touch_count, 0 AS conversions, 0.0 AS value, 1 AS nulls,
               min(touchpoint_date) AS first_touch_at, max(touchpoint_date) AS last_touch_at
        FROM numbered GROUP BY account_id, journey_no
        HAVING max(touchpoint_date) < TIMESTAMP '{data_end}' - INTERVAL ({int(window_days)}) DAY
    )
    SELECT * FROM converting UNION ALL SELECT * FROM non_converting"""
