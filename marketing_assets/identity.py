"""Identity assets: channel mapping, unified ad spend, resolved contacts, accounts and campaigns."""

from pathlib import Path

import dagster as dg

from marketing_assets.constants import IDENTITY, SOURCES, SPEND
from marketing_assets.lib import channels as ch
from marketing_assets.lib import identity as idl
from marketing_assets.lib.refs import ref, this
from marketing_assets.lineage import upstream
from marketing_assets.resources import LandingZone, Warehouse

TRUTH_DIR = "_truth"


def channel_map_sql(cfg: dict) -> str:
    """CREATE statement of ``identity.channel_map`` under the channel rules ``cfg``."""
    sig = ch.web_signature_sql()
    name_sql, group_sql = ch.web_channel_sql(
        cfg, gclid="CASE WHEN has_gclid THEN 'x' END", fbclid="CASE WHEN has_fbclid THEN 'x' END", referrer="referrer_host"
    )
    sig_cols = ", ".join(f"{expr} AS {name}" for name, expr in sig.items())
    key = ch.crm_label_key_sql("channel_name")
    return f"""CREATE OR REPLACE TABLE {this(IDENTITY, 'channel_map')} AS
            WITH web AS (
                SELECT signature_id, {', '.join(ch.WEB_SIGNATURE_COLUMNS)}, count(*) AS n
                FROM (SELECT {sig_cols} FROM {ref(SOURCES, 'web_sessions')}) GROUP BY ALL
            ),
            labels AS (
                SELECT {key} AS crm_label_key, trim(channel_name) AS label, count(*) AS n FROM (
                    SELECT channel_name FROM {ref(SOURCES, 'crm_marketing_touchpoints')}
                    UNION ALL SELECT channel_name FROM {ref(SOURCES, 'crm_sales_touchpoints')}
                ) GROUP BY ALL
            ),
            crm AS (
                SELECT crm_label_key, first(label ORDER BY n DESC, label) AS channel_name, sum(n) AS n, count(*) AS spellings
                FROM labels GROUP BY ALL
            )
            SELECT 'web' AS source_kind, signature_id, {', '.join(ch.WEB_SIGNATURE_COLUMNS)},
                   NULL::VARCHAR AS crm_label_key, {name_sql} AS channel_name, {group_sql} AS channel_group,
                   n AS rows, 1 AS spellings
            FROM web
            UNION ALL
            SELECT 'crm_label', NULL, NULL, NULL, NULL, NULL, NULL, NULL, crm_label_key, channel_name,
                   {ch.crm_label_group_sql(cfg, 'channel_name')}, n, spellings
            FROM crm
            ORDER BY source_kind, rows DESC, crm_label_key, signature_id"""


@dg.asset(deps=upstream(lambda: channel_map_sql(ch.load_channel_config())), kinds={"duckdb"})
def channel_map(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per distinct web acquisition signature (UTMs, click ids, referrer host) or CRM channel label, with its channel and GA4 group."""
    cfg = ch.load_channel_config()
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {IDENTITY}")
        con.execute(channel_map_sql(cfg))
        summary = con.execute(
            f"""SELECT source_kind, channel_group, sum(rows) AS rows FROM {this(IDENTITY, 'channel_map')}
                GROUP BY ALL ORDER BY source_kind, rows DESC"""
        ).df()
        (n,) = con.execute(f"SELECT count(*) FROM {this(IDENTITY, 'channel_map')}").fetchone()
    unassigned = summary.loc[summary["channel_group"].eq("Unassigned"), "rows"].sum()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(n),
            "rows_by_group": dg.MetadataValue.md(summary.to_markdown(index=False)),
            "unassigned_rows": int(unassigned),
            "channels_config_version": cfg["version"],
        }
    )


def _contact_inputs() -> tuple[str, str]:
    """The tables identity resolution reads: CRM contacts and web sessions (form e-mails, client ids)."""
    return ref(SOURCES, "crm_contacts"), ref(SOURCES, "web_sessions")


def _truth_file(landing: LandingZone, name: str) -> Path | None:
    path = landing.root / TRUTH_DIR / name
    return path if path.is_file() else None


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "contacts_resolved",
            deps=upstream(_contact_inputs),
            description="One row per CRM contact: its canonical (deduplicated) contact id, account, normalised email and match method.",
            kinds={"duckdb"},
        ),
        dg.AssetSpec(
            "web_client_identities",
            deps=upstream(_contact_inputs),
            description="One row per browser client id that submitted a form: the canonical contact it belongs to (none for shared devices).",
            kinds={"duckdb"},
        ),
    ]
)
def contacts_resolved(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone):
    rules = idl.load_identity_config()
    truth_path = _truth_file(landing, "duplicate_contacts.csv")
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {IDENTITY}")
        stats = idl.resolve_contacts(
            con, *_contact_inputs(), this(IDENTITY, "contacts_resolved"), this(IDENTITY, "web_client_identities"), rules
        )
        methods = dict(con.execute(f"SELECT match_method, count(*) FROM {this(IDENTITY, 'contacts_resolved')} GROUP BY ALL").fetchall())
        if truth_path is not None:
            pr = idl.pairwise_precision_recall(con, this(IDENTITY, "contacts_resolved"), idl.truth_csv_sql(truth_path))
    meta = {"dagster/row_count": stats["contacts"], **stats, "by_match_method": {k: int(v) for k, v in methods.items()}}
    if truth_path is not None:
        meta |= {"truth_precision": round(pr["precision"], 5), "truth_recall": round(pr["recall"], 5), "truth_pairs": pr["true_pairs"]}
        context.log.info(f"contacts_resolved vs planted truth: precision {pr['precision']:.4f}, recall {pr['recall']:.4f}")
    yield dg.MaterializeResult(asset_key=context.asset_key_for_output("contacts_resolved"), metadata=meta)
    yield dg.MaterializeResult(
        asset_key=context.asset_key_for_output("web_client_identities"),
        metadata={"clients_linked": stats["clients_linked"], "shared_devices": stats["shared_devices"]},
    )


def _account_inputs() -> dict[str, str]:
    """The relations account matching reads: CRM accounts (plus accounts only referenced by contacts or
    opportunities, which still take part), ERP customers and CRM contacts (e-mail domains)."""
    accounts = f"""(
        SELECT account_id, account_name, domain, country FROM {ref(SOURCES, 'crm_accounts')}
        UNION ALL
        SELECT DISTINCT account_id, NULL, NULL, NULL FROM (
            SELECT account_id FROM {ref(SOURCES, 'crm_contacts')} UNION SELECT account_id FROM {ref(SOURCES, 'crm_opportunities')}
        ) WHERE account_id NOT IN (SELECT account_id FROM {ref(SOURCES, 'crm_accounts')})
    )"""
    return {"accounts": accounts, "customers": ref(SOURCES, "erp_customers"), "contacts": ref(SOURCES, "crm_contacts")}


@dg.asset(deps=upstream(_account_inputs), kinds={"duckdb"})
def accounts_resolved(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone) -> dg.MaterializeResult:
    """One row per matched CRM account × ERP customer, plus each unmatched account and customer, with match method and confidence."""
    rules = idl.load_identity_config()
    inputs = _account_inputs()
    truth_path = _truth_file(landing, "account_matches.csv")
    with warehouse.get_connection() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {IDENTITY}")
        stats = idl.match_accounts(
            con, inputs["accounts"], inputs["customers"], this(IDENTITY, "accounts_resolved"), rules, contacts=inputs["contacts"]
        )
        rows, matched = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE account_id IS NOT NULL AND customer_id IS NOT NULL)
                FROM {this(IDENTITY, 'accounts_resolved')}"""
        ).fetchone()
        if truth_path is not None:
            pr = idl.pair_precision_recall(con, this(IDENTITY, "accounts_resolved"), idl.truth_csv_sql(truth_path))
    meta = {"dagster/row_count": int(rows), "by_match_method": stats, "matched_pairs": int(matched)}
    if truth_path is not None:
        meta |= {"truth_precision": round(pr["precision"], 5), "truth_recall": round(pr["recall"], 5), "truth_pairs": pr["true_pairs"]}
        context.log.info(f"accounts_resolved vs planted truth: precision {pr['precision']:.4f}, recall {pr['recall']:.4f}")
    return dg.MaterializeResult(metadata=meta)


def campaigns_resolved_sql() -> str:
    """CREATE statement of ``identity.campaigns_resolved``."""
    return f"""CREATE OR REPLACE TABLE {this(IDENTITY, 'campaigns_resolved')} AS
            WITH ads AS (
                SELECT platform, account_id, campaign_id, arg_max(campaign_name, (date_day, campaign_name)) AS campaign_name,
                       arg_max(channel_group, (date_day, channel_group)) AS channel_group, round(sum(spend), 2) AS spend,
                       min(date_day) AS first_day, max(date_day) AS last_day,
                       {ch.campaign_key_sql('arg_max(campaign_name, (date_day, campaign_name))')} AS campaign_key  -- the latest name
                FROM {ref(SPEND, 'ad_spend_daily')} GROUP BY ALL
            ),
            utm_values AS (
                SELECT {ch.campaign_key_sql('utm_campaign')} AS campaign_key, trim(utm_campaign) AS utm_campaign,
                       count(*) FILTER (WHERE kind = 'web') AS sessions, count(*) FILTER (WHERE kind = 'crm') AS crm_touchpoints
                FROM (
                    SELECT utm_campaign, 'web' AS kind FROM {ref(SOURCES, 'web_sessions')}
                    UNION ALL SELECT utm_campaign, 'crm' FROM {ref(SOURCES, 'crm_marketing_touchpoints')}
                ) WHERE nullif(trim(utm_campaign), '') IS NOT NULL GROUP BY ALL
            ),
            utm AS (
                SELECT campaign_key, first(utm_campaign ORDER BY sessions + crm_touchpoints DESC, utm_campaign) AS utm_campaign,
                       count(*) AS utm_spellings, sum(sessions) AS sessions, sum(crm_touchpoints) AS crm_touchpoints
                FROM utm_values GROUP BY ALL
            )
            SELECT a.platform, a.account_id, a.campaign_id, a.campaign_name, a.channel_group,
                   coalesce(a.campaign_key, u.campaign_key) AS campaign_key, u.utm_campaign, u.utm_spellings,
                   CASE WHEN a.campaign_id IS NOT NULL AND u.campaign_key IS NOT NULL THEN 'name'
                        WHEN a.campaign_id IS NOT NULL THEN 'unmatched_ad_campaign'
                        ELSE 'utm_only' END AS match_method,
                   coalesce(u.sessions, 0) AS sessions, coalesce(u.crm_touchpoints, 0) AS crm_touchpoints,
                   coalesce(a.spend, 0) AS spend, a.first_day, a.last_day
            FROM ads a FULL JOIN utm u ON a.campaign_key = u.campaign_key
            ORDER BY a.platform NULLS LAST, a.campaign_id, u.campaign_key"""


@dg.asset(deps=upstream(campaigns_resolved_sql), kinds={"duckdb"})
def campaigns_resolved(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """One row per ad-platform campaign and per utm_campaign value, matched on the normalised campaign name."""
    with warehouse.get_connection() as con:
        con.execute(campaigns_resolved_sql())
        methods = dict(con.execute(f"SELECT match_method, count(*) FROM {this(IDENTITY, 'campaigns_resolved')} GROUP BY ALL").fetchall())
        (rows,) = con.execute(f"SELECT count(*) FROM {this(IDENTITY, 'campaigns_resolved')}").fetchone()
    return dg.MaterializeResult(metadata={"dagster/row_count": int(rows), "by_match_method": {k: int(v) for k, v in methods.items()}})
