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


def opportunity_touchpoints_sql(opportunities: str, touchpoints: str, window_days: int) -> str:
    """SELECT of opportunity × touchpoint rows inside the lookback window (both ends inclusive).

    Adds the touch order, the touch count, and ``is_lead_creation``: the latest touch at or before
    the earliest lead date among the opportunity's touching contacts (at most one per opportunity).
    """
    return _windowed_sql(opportunities, touchpoints, [int(window_days)])


def opportunity_touchpoints_by_window_sql(opportunities: str, touchpoints: str, windows: Sequence[int]) -> str:
    """SELECT of lookback window × opportunity × touchpoint rows: for each ``w`` in ``windows``, the rows of
    :func:`opportunity_touchpoints_sql` ``(w)`` (``lookback_days`` = ``w``), from one join with the widest window.

    The windows nest (a touch is in window ``w`` when it is at most ``w`` days before the opportunity), so the
    touches are joined once and each one is repeated for every window it falls in; touch order, count and the
    lead-creation touch are computed per opportunity × window.
    """
    return _windowed_sql(opportunities, touchpoints, sorted({int(w) for w in windows}))


def _windowed_sql(opportunities: str, touchpoints: str, windows: Sequence[int]) -> str:
    if not windows:
        raise ValueError("at least one lookback window is needed")
    widest = max(windows)
    ordered_window = f"""
        -- one window operator (one sort of the wide rows): the whole-partition aggregates share the ordered one's partitions
        SELECT *,
               min(lead_date) OVER (PARTITION BY opportunity_id) AS first_lead_date,
               row_number() OVER (PARTITION BY opportunity_id ORDER BY {TOUCH_ORDER}) AS touch_order,
               count(*) OVER (PARTITION BY opportunity_id) AS touch_count
        FROM joined"""
    if len(windows) == 1:  # the window is a constant: nothing to join, partition or carry through the sorts
        partition, drop, lookback, ordered = "opportunity_id", "", f"{widest} AS lookback_days", ordered_window
    else:
        # The windows nest and the touch order starts with the date: the touches of a narrower window are the last ones
        # of the widest window's order. One sort of the widest window's touches gives every window's order (the place in
        # the widest window minus the touches before the narrower one's start), count and first lead date; each touch is
        # then repeated for every window it falls in.
        partition, drop, lookback = "opportunity_id, lookback_days", ", lookback_days", "o.lookback_days"
        by_opp = "OVER (PARTITION BY opportunity_id)"
        narrower = [w for w in windows if w != widest]
        in_w = {w: f"touchpoint_date >= opportunity_created_date - INTERVAL ({int(w)}) DAY" for w in narrower}
        per_window = [f"count(*) FILTER (WHERE {in_w[w]}) {by_opp} AS _n_{w}, min(lead_date) FILTER (WHERE {in_w[w]}) {by_opp} AS _lead_{w}"
                      for w in narrower]

        def pick(prefix: str) -> str:
            cases = " ".join(f"WHEN {int(w)} THEN {prefix}{w}" for w in narrower)
            return f"CASE w.lookback_days {cases} ELSE {prefix}{widest} END"

        helpers = ", ".join(["_order", *(f"_n_{w}" for w in windows), *(f"_lead_{w}" for w in windows)])
        ordered = f"""
        SELECT x.* EXCLUDE ({helpers}), w.lookback_days, {pick('_lead_')} AS first_lead_date,
               _order - _n_{widest} + {pick('_n_')} AS touch_order, {pick('_n_')} AS touch_count
        FROM (
            SELECT *, row_number() OVER (PARTITION BY opportunity_id ORDER BY {TOUCH_ORDER}) AS _order,
                   count(*) {by_opp} AS _n_{widest}, min(lead_date) {by_opp} AS _lead_{widest}, {", ".join(per_window)}
            FROM joined
        ) x
        JOIN (SELECT unnest([{', '.join(map(str, windows))}]) AS lookback_days) w
          ON x.touchpoint_date >= x.opportunity_created_date - INTERVAL (w.lookback_days) DAY"""
    return f"""
    WITH joined AS (
        SELECT o.opportunity_id, o.account_id, CAST(o.pipeline_amount AS DOUBLE) AS pipeline_amount,
               o.opportunity_created_date, o.sales_segment,
               t.touchpoint_id, t.touchpoint_type, t.channel_name, t.channel_group, t.contact_id, t.touchpoint_date,
               t.canonical_contact_id, t.campaign_key, t.utm_campaign, t.is_direct, t.type_order, t.lead_date
        FROM {opportunities} o
        JOIN {touchpoints} t
          ON t.account_id = o.account_id
         AND t.touchpoint_date BETWEEN o.opportunity_created_date - INTERVAL ({int(widest)}) DAY AND o.opportunity_created_date
    ),
    ordered AS ({ordered}
    ),
    lead_touch AS (
        -- The latest touch at or before the first lead date; on a tie, the touch of the contact who
        -- became the lead, then marketing before sales before web.
        SELECT {partition}, arg_min(touch_order, (
                   -epoch(touchpoint_date), CASE WHEN lead_date = first_lead_date THEN 0 ELSE 1 END, type_order, touchpoint_id
               )) AS lead_touch_order
        FROM ordered WHERE touchpoint_date <= first_lead_date GROUP BY ALL
    )
    SELECT o.* EXCLUDE (first_lead_date, lead_date{drop}),
           coalesce(o.touch_order = l.lead_touch_order, false) AS is_lead_creation,
           date_diff('second', o.touchpoint_date, o.opportunity_created_date) / 86400.0 AS days_before_opportunity,
           {lookback}
    FROM ordered o LEFT JOIN lead_touch l USING ({partition})"""


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
