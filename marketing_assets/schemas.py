"""Data contracts: one Pandera ``DataFrameModel`` per persisted table.

Source contracts double as the landing-zone specification. Field metadata drives ingestion:

- ``required``: the column must be present in every landing file of the table;
- ``key``: part of the table's primary key (nulls quarantined as ``null_key``);
- ``aliases``: other header spellings accepted (matched case-insensitively);
- ``pii``: personal data, masked in quarantine records, check metadata and logs;
- ``sql_type``: the warehouse type when the Python annotation is not precise enough
  (``DATE``, ``DECIMAL(38,10)`` for money that must keep its decimals).

``nullable=False`` quarantines rows with a null value, ``ge=0`` quarantines negative values, and
every non-null raw value must parse as the column's type. ``Config.metadata`` carries the landing
glob, the event-time column (for freshness) and whether the table may be absent.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from marketing_assets.lib.attribution import models as attribution_models
from marketing_assets.lib.platform_names import platform_names

MONEY = "DECIMAL(38,10)"


def _key(description: str, sql_type: str | None = None, aliases=(), **kwargs) -> pa.Field:
    meta = {"key": True, "required": True, "aliases": list(aliases)}
    if sql_type:
        meta["sql_type"] = sql_type
    return pa.Field(nullable=False, description=description, metadata=meta, **kwargs)


def _req(description: str, nullable: bool = False, sql_type: str | None = None, aliases=(), **kwargs) -> pa.Field:
    meta = {"required": True, "aliases": list(aliases)}
    if sql_type:
        meta["sql_type"] = sql_type
    return pa.Field(nullable=nullable, description=description, metadata=meta, **kwargs)


def _opt(description: str, sql_type: str | None = None, aliases=(), pii: bool = False, **kwargs) -> pa.Field:
    meta = {"required": False, "aliases": list(aliases), "pii": pii}
    if sql_type:
        meta["sql_type"] = sql_type
    return pa.Field(nullable=True, description=description, metadata=meta, **kwargs)


class SourceModel(pa.DataFrameModel):
    """Base for landing tables: lineage columns added by ingestion."""

    source_file: Series[str] = pa.Field(description="Landing file the row came from, relative to the landing dir.")
    source_line: Series[int] = pa.Field(ge=1, description="1-based line in the file (header is line 1); row number for Parquet.")

    class Config:
        coerce = True
        strict = False


# ---------------------------------------------------------------------------------------------- ads


class AdsGoogle(SourceModel):
    """Google Ads campaign performance report (API field names, cost in micros)."""

    segments_date: Series[pd.Timestamp] = _key("Report day.", sql_type="DATE", aliases=["segments.date"])
    customer_id: Series[str] = _key("Google Ads customer (account) id.", aliases=["customer.id"])
    customer_currency_code: Series[str] = _opt("Account currency (ISO 4217).", aliases=["customer.currency_code"])
    campaign_id: Series[str] = _key("Campaign id.", aliases=["campaign.id"])
    campaign_name: Series[str] = _opt("Campaign name.", aliases=["campaign.name"])
    campaign_advertising_channel_type: Series[str] = _opt(
        "SEARCH, DISPLAY, VIDEO, SHOPPING, PERFORMANCE_MAX.", aliases=["campaign.advertising_channel_type"]
    )
    metrics_impressions: Series[int] = _opt("Impressions.", ge=0, aliases=["metrics.impressions"])
    metrics_clicks: Series[int] = _opt("Clicks.", ge=0, aliases=["metrics.clicks"])
    metrics_cost_micros: Series[int] = _req("Cost in micros of the account currency.", ge=0, aliases=["metrics.cost_micros"])
    metrics_conversions: Series[float] = _opt("Platform-reported conversions.", ge=0, aliases=["metrics.conversions"])
    metrics_conversions_value: Series[float] = _opt("Platform-reported conversion value.", ge=0, aliases=["metrics.conversions_value"])

    class Config:
        metadata = {"landing_glob": "ads/google_ads*", "event_time": "segments_date", "optional_table": True}


class AdsMeta(SourceModel):
    """Meta Ads Insights export at campaign × day level."""

    date_start: Series[pd.Timestamp] = _key("Report day.", sql_type="DATE")
    date_stop: Series[pd.Timestamp] = _opt("Report day end (same as date_start for daily rows).", sql_type="DATE")
    account_id: Series[str] = _key("Ad account id.")
    account_currency: Series[str] = _opt("Ad account currency (ISO 4217).")
    campaign_id: Series[str] = _key("Campaign id.")
    campaign_name: Series[str] = _opt("Campaign name.")
    objective: Series[str] = _opt("Campaign objective.")
    impressions: Series[int] = _opt("Impressions.", ge=0)
    clicks: Series[int] = _opt("Link clicks.", ge=0, aliases=["inline_link_clicks"])
    amount_spent: Series[float] = _req("Spend in the account currency.", ge=0, sql_type=MONEY, aliases=["spend"])
    conversions: Series[float] = _opt("Results (leads or purchases).", ge=0, aliases=["results"])

    class Config:
        metadata = {"landing_glob": "ads/meta_ads*", "event_time": "date_start", "optional_table": True}


class AdsLinkedin(SourceModel):
    """LinkedIn Marketing API ad analytics, pivoted by campaign, daily."""

    start_date: Series[pd.Timestamp] = _key("Report day.", sql_type="DATE", aliases=["date", "dateRange.start"])
    account_id: Series[str] = _key("Sponsored account id.")
    currency: Series[str] = _opt("Account currency (ISO 4217).", aliases=["account_currency"])
    campaign_id: Series[str] = _key("Sponsored campaign id.")
    campaign_name: Series[str] = _opt("Campaign name.")
    impressions: Series[int] = _opt("Impressions.", ge=0)
    clicks: Series[int] = _opt("Clicks.", ge=0)
    cost_in_local_currency: Series[float] = _req(
        "Spend in the account currency.", ge=0, sql_type=MONEY, aliases=["costInLocalCurrency"]
    )
    cost_in_usd: Series[float] = _opt("Spend in USD as reported by LinkedIn.", ge=0, sql_type=MONEY, aliases=["costInUsd"])
    one_click_leads: Series[int] = _opt("Lead-gen form submissions.", ge=0, aliases=["oneClickLeads"])
    external_website_conversions: Series[int] = _opt(
        "Website conversions.", ge=0, aliases=["externalWebsiteConversions"]
    )

    class Config:
        metadata = {"landing_glob": "ads/linkedin_ads*", "event_time": "start_date", "optional_table": True}


# ---------------------------------------------------------------------------------------------- web


class WebSessions(SourceModel):
    """GA4-style session export: one row per session with its acquisition parameters."""

    session_id: Series[str] = _key("Session id.")
    client_id: Series[str] = _req("Browser (cookie) client id.")
    session_start: Series[pd.Timestamp] = _req("Session start, UTC.", aliases=["session_start_at"])
    landing_page: Series[str] = _opt("Landing page path.")
    page_referrer: Series[str] = _opt("Referrer URL.", aliases=["referrer"])
    utm_source: Series[str] = _opt("utm_source as landed (unnormalised).")
    utm_medium: Series[str] = _opt("utm_medium as landed (unnormalised).")
    utm_campaign: Series[str] = _opt("utm_campaign as landed (unnormalised).")
    utm_content: Series[str] = _opt("utm_content.")
    utm_term: Series[str] = _opt("utm_term.")
    gclid: Series[str] = _opt("Google click id.")
    fbclid: Series[str] = _opt("Meta click id.")
    device_category: Series[str] = _opt("desktop, mobile or tablet.")
    country: Series[str] = _opt("Country (ISO 3166-1 alpha-2).")
    pageviews: Series[int] = _opt("Page views in the session.", ge=0)
    engagement_time_seconds: Series[float] = _opt("Engaged time.", ge=0)
    conversions: Series[int] = _opt("Conversion events in the session.", ge=0)
    form_email: Series[str] = _opt("Email submitted in a form during the session.", pii=True)

    class Config:
        metadata = {"landing_glob": "web/sessions*", "event_time": "session_start", "optional_table": True}


# ---------------------------------------------------------------------------------------------- crm


class CrmAccounts(SourceModel):
    """CRM accounts (companies)."""

    account_id: Series[str] = _key("CRM account id.")
    account_name: Series[str] = _opt("Account name.")
    domain: Series[str] = _opt("Company web domain.", aliases=["website"])
    sales_segment: Series[str] = _opt("Sales segment (e.g. SMB, Mid-Market, Enterprise).")
    country: Series[str] = _opt("Country.")
    industry: Series[str] = _opt("Industry.")
    created_at: Series[pd.Timestamp] = _opt("Record creation time, UTC.")

    class Config:
        metadata = {"landing_glob": "crm/accounts*", "event_time": "created_at", "optional_table": True}


class CrmContacts(SourceModel):
    """CRM contacts (people) with lifecycle dates and first-touch UTMs."""

    contact_id: Series[str] = _key("CRM contact id.")
    account_id: Series[str] = _req("Account the contact belongs to.")
    email: Series[str] = _opt("Email as typed.", pii=True)
    first_name: Series[str] = _opt("First name.", pii=True)
    last_name: Series[str] = _opt("Last name.", pii=True)
    created_at: Series[pd.Timestamp] = _opt("Record creation time, UTC.")
    lifecycle_stage: Series[str] = _opt("subscriber, lead, mql, sql, opportunity, customer.")
    lead_date: Series[pd.Timestamp] = _opt("Became a lead.")
    mql_date: Series[pd.Timestamp] = _opt("Became marketing-qualified.")
    sql_date: Series[pd.Timestamp] = _opt("Became sales-qualified.")
    customer_date: Series[pd.Timestamp] = _opt("Became a customer.")
    utm_source: Series[str] = _opt("First-touch utm_source.")
    utm_medium: Series[str] = _opt("First-touch utm_medium.")
    utm_campaign: Series[str] = _opt("First-touch utm_campaign.")

    class Config:
        metadata = {"landing_glob": "crm/contacts*", "event_time": "created_at", "optional_table": False}


class CrmMarketingTouchpoints(SourceModel):
    """Marketing touchpoints logged in the CRM (form fills, webinars, ad clicks, emails, events)."""

    marketing_touchpoint_id: Series[str] = _key("Touchpoint id.")
    channel_name: Series[str] = _req("CRM channel label as entered.")
    contact_id: Series[str] = _req("Contact touched.")
    marketing_touchpoint_date: Series[pd.Timestamp] = _req("When, UTC.")
    utm_source: Series[str] = _opt("utm_source.")
    utm_medium: Series[str] = _opt("utm_medium.")
    utm_campaign: Series[str] = _opt("utm_campaign.")
    campaign_id: Series[str] = _opt("CRM campaign id.")

    class Config:
        metadata = {
            "landing_glob": "crm/marketing_touchpoints*",
            "event_time": "marketing_touchpoint_date",
            "optional_table": False,
        }


class CrmSalesTouchpoints(SourceModel):
    """Sales touchpoints logged in the CRM (calls, meetings, outbound emails)."""

    sales_touchpoint_id: Series[str] = _key("Touchpoint id.")
    channel_name: Series[str] = _req("CRM channel label as entered.")
    contact_id: Series[str] = _req("Contact touched.")
    sales_touchpoint_date: Series[pd.Timestamp] = _req("When, UTC.")
    owner_id: Series[str] = _opt("Sales rep.")

    class Config:
        metadata = {
            "landing_glob": "crm/sales_touchpoints*",
            "event_time": "sales_touchpoint_date",
            "optional_table": False,
        }


class CrmOpportunities(SourceModel):
    """CRM opportunities with pipeline and outcome."""

    opportunity_id: Series[str] = _key("Opportunity id.")
    account_id: Series[str] = _req("Account the opportunity belongs to.")
    pipeline_amount: Series[float] = _req("Pipeline value (exact to 10 decimals in the warehouse).", ge=0, sql_type=MONEY)
    opportunity_created_date: Series[pd.Timestamp] = _req("Created, UTC.")
    sales_segment: Series[str] = _req("Sales segment.")
    stage: Series[str] = _opt("Current stage.")
    is_won: Series[bool] = _opt("Closed won.")
    closed_date: Series[pd.Timestamp] = _opt("Closed, UTC.")
    won_amount: Series[float] = _opt("Won value.", ge=0, sql_type=MONEY)
    currency: Series[str] = _opt("Currency (ISO 4217).")

    class Config:
        metadata = {"landing_glob": "crm/opportunities*", "event_time": "opportunity_created_date", "optional_table": False}


# ---------------------------------------------------------------------------------------------- erp


class ErpCustomers(SourceModel):
    """ERP customer master."""

    customer_id: Series[str] = _key("ERP customer id.")
    customer_name: Series[str] = _opt("Legal or trading name.", aliases=["companyname"])
    website: Series[str] = _opt("Web site or domain.", aliases=["url"])
    country: Series[str] = _opt("Country.")
    currency: Series[str] = _opt("Billing currency.")
    created_at: Series[pd.Timestamp] = _opt("Created, UTC.", aliases=["datecreated"])

    class Config:
        metadata = {"landing_glob": "erp/customers*", "event_time": "created_at", "optional_table": True}


class ErpProducts(SourceModel):
    """ERP item master with price and unit cost."""

    product_id: Series[str] = _key("Item id / SKU.", aliases=["sku", "item_id"])
    product_name: Series[str] = _opt("Item name.")
    category: Series[str] = _opt("Product category.")
    unit_price: Series[float] = _opt("List price.", ge=0, sql_type=MONEY)
    unit_cost: Series[float] = _opt("Standard unit cost.", ge=0, sql_type=MONEY)
    currency: Series[str] = _opt("Currency.")
    is_active: Series[bool] = _opt("Sellable.")

    class Config:
        metadata = {"landing_glob": "erp/products*", "event_time": None, "optional_table": True}


class ErpOrders(SourceModel):
    """ERP sales order and return lines (returns are positive amounts with transaction_type = return)."""

    order_id: Series[str] = _key("Transaction id.")
    line_number: Series[int] = _key("Line on the transaction.", ge=1)
    order_date: Series[pd.Timestamp] = _req("Transaction date, UTC.", aliases=["trandate"])
    transaction_type: Series[str] = _req("sale or return.", isin=["sale", "return"])
    customer_id: Series[str] = _req("ERP customer id.")
    product_id: Series[str] = _req("Item id.", aliases=["item_id", "sku"])
    quantity: Series[int] = _req("Units.", ge=0)
    unit_price: Series[float] = _opt("Unit price.", ge=0, sql_type=MONEY)
    amount: Series[float] = _req("Line amount net of discount, in the transaction currency.", ge=0, sql_type=MONEY)
    discount_amount: Series[float] = _opt("Discount on the line.", ge=0, sql_type=MONEY)
    currency: Series[str] = _opt("Currency.")
    original_order_id: Series[str] = _opt("For returns: the order returned.")
    promo_code: Series[str] = _opt("Promotion code applied.")
    sales_channel: Series[str] = _opt("web, direct or partner.")

    class Config:
        metadata = {"landing_glob": "erp/orders*", "event_time": "order_date", "optional_table": True}


class ErpInventory(SourceModel):
    """Month-end inventory snapshot per product and location."""

    snapshot_date: Series[pd.Timestamp] = _key("Snapshot day (month end).", sql_type="DATE")
    product_id: Series[str] = _key("Item id.")
    location_id: Series[str] = _key("Warehouse / location.")
    quantity_on_hand: Series[int] = _req("Units on hand.", ge=0)
    inventory_value: Series[float] = _opt("Value at unit cost.", ge=0, sql_type=MONEY)

    class Config:
        metadata = {"landing_glob": "erp/inventory*", "event_time": "snapshot_date", "optional_table": True}


class FinanceMarketingSpend(SourceModel):
    """Marketing spend booked by finance (GL journal lines), monthly."""

    journal_line_id: Series[str] = _key("GL journal line id.")
    period_month: Series[pd.Timestamp] = _req("Accounting period (first day of month).", sql_type="DATE")
    channel: Series[str] = _req("Finance's marketing channel category.")
    vendor: Series[str] = _opt("Vendor.")
    gl_account: Series[str] = _opt("GL account.")
    amount: Series[float] = _req("Booked amount.", ge=0, sql_type=MONEY)
    currency: Series[str] = _opt("Currency.")
    memo: Series[str] = _opt("Memo.")

    class Config:
        metadata = {"landing_glob": "erp/marketing_spend*", "event_time": "period_month", "optional_table": True}


class Experiments(SourceModel):
    """Lift tests (geo or conversion-lift experiments) with the measured incremental outcome."""

    test_id: Series[str] = _key("Experiment id.")
    channel: Series[str] = _req("Channel tested.")
    start_date: Series[pd.Timestamp] = _req("First day (inclusive).", sql_type="DATE")
    end_date: Series[pd.Timestamp] = _req("Last day (inclusive).", sql_type="DATE")
    lift: Series[float] = _req("Incremental outcome measured over the window (may be negative).")
    lift_se: Series[float] = _opt("Standard error of the lift.", ge=0)
    metric: Series[str] = _opt("Outcome measured (revenue).")
    method: Series[str] = _opt("geo_holdout, conversion_lift, ...")

    class Config:
        metadata = {"landing_glob": "experiments/lift_tests*", "event_time": "end_date", "optional_table": True}


class Quarantine(pa.DataFrameModel):
    """Every rejected landing row: where it came from, what was wrong, and the raw record."""

    table_name: Series[str] = pa.Field(description="Source asset the row was meant for.")
    source_file: Series[str] = pa.Field(description="Landing file, relative to the landing dir.")
    source_line: Series[int] = pa.Field(ge=1, description="1-based line in the file (header is line 1).")
    column_name: Series[str] = pa.Field(description="First offending column; `(record)` when the record could not be split into fields.")
    raw_value: Series[str] = pa.Field(nullable=True, description="Offending value as landed (PII columns masked).")
    reason: Series[str] = pa.Field(
        isin=[
            "malformed_record", "invalid_encoding", "unparseable_value", "implausible_date", "invalid_value",
            "negative_value", "null_key", "null_required_value", "conflicting_duplicate_key",
        ],
        description="Reason code.",
    )
    detail: Series[str] = pa.Field(description="Human-readable explanation.")
    violations: Series[int] = pa.Field(ge=1, description="Number of rule violations on the row.")
    raw_record: Series[str] = pa.Field(description="The landed row as JSON (all values as text, PII masked); `{}` for an unusable record.")

    class Config:
        coerce = True
        strict = False


SOURCE_MODELS: dict[str, type[SourceModel]] = {
    "ads_google": AdsGoogle,
    "ads_meta": AdsMeta,
    "ads_linkedin": AdsLinkedin,
    "web_sessions": WebSessions,
    "crm_accounts": CrmAccounts,
    "crm_contacts": CrmContacts,
    "crm_marketing_touchpoints": CrmMarketingTouchpoints,
    "crm_sales_touchpoints": CrmSalesTouchpoints,
    "crm_opportunities": CrmOpportunities,
    "erp_customers": ErpCustomers,
    "erp_products": ErpProducts,
    "erp_orders": ErpOrders,
    "erp_inventory": ErpInventory,
    "finance_marketing_spend": FinanceMarketingSpend,
    "experiments": Experiments,
}
"""Source asset name -> contract. The order is the landing zone's reading order."""


# ------------------------------------------------------------------------------------------ identity


class ChannelMap(pa.DataFrameModel):
    """Channel of every web acquisition signature and CRM channel label."""

    source_kind: Series[str] = pa.Field(isin=["web", "crm_label"], description="web signature or CRM label.")
    signature_id: Series[str] = pa.Field(nullable=True, description="Hash key of the web signature (web rows): 16 hex digits.")
    utm_source: Series[str] = pa.Field(nullable=True, description="utm_source of the signature (web rows).")
    utm_medium: Series[str] = pa.Field(nullable=True, description="utm_medium of the signature (web rows).")
    utm_campaign: Series[str] = pa.Field(nullable=True, description="utm_campaign of the signature (web rows).")
    has_gclid: Series[bool] = pa.Field(nullable=True, description="The sessions carry a Google Ads click id (web rows).")
    has_fbclid: Series[bool] = pa.Field(nullable=True, description="The sessions carry a Meta click id (web rows).")
    referrer_host: Series[str] = pa.Field(nullable=True, description="Referrer host of the signature (web rows).")
    crm_label_key: Series[str] = pa.Field(nullable=True, description="Lower-cased, space-normalised CRM label (CRM rows).")
    channel_name: Series[str] = pa.Field(description="Channel label: CRM's most frequent spelling, or the web channel.")
    channel_group: Series[str] = pa.Field(description="GA4 default channel group (plus Events, Outbound Sales).")
    rows: Series[int] = pa.Field(ge=1, description="Landed rows with this signature or label.")
    spellings: Series[int] = pa.Field(ge=1, description="CRM spellings merged into the label (1 for web rows).")

    class Config:
        coerce = True
        strict = False


class AdSpendDaily(pa.DataFrameModel):
    """Unified ad spend."""

    date_day: Series[pd.Timestamp] = pa.Field(description="Day.")
    platform: Series[str] = pa.Field(isin=platform_names(), description="Ad platform (config/ad_platforms.yaml).")
    account_id: Series[str] = pa.Field(description="Ad account.")
    campaign_id: Series[str] = pa.Field(description="Campaign.")
    campaign_name: Series[str] = pa.Field(nullable=True, description="Campaign name as exported by the platform.")
    campaign_type: Series[str] = pa.Field(nullable=True, description="Platform campaign type or objective (NULL when the export has none).")
    channel_name: Series[str] = pa.Field(description="Channel label of the campaign.")
    channel_group: Series[str] = pa.Field(description="Channel group of the campaign.")
    currency: Series[str] = pa.Field(str_length={"min_value": 3, "max_value": 3}, description="Account currency.")
    is_currency_assumed: Series[bool] = pa.Field(description="The export gave no currency: the account's configured currency is assumed.")
    spend_local: Series[float] = pa.Field(ge=0, description="Spend in the account currency.")
    fx_rate: Series[float] = pa.Field(gt=0, description="Reporting currency per unit of the account currency.")
    spend: Series[float] = pa.Field(ge=0, description="Spend in the reporting currency.")
    impressions: Series[float] = pa.Field(ge=0, nullable=True, description="Impressions.")
    clicks: Series[float] = pa.Field(ge=0, nullable=True, description="Clicks.")
    conversions: Series[float] = pa.Field(ge=0, nullable=True, description="Platform-reported conversions.")
    conversion_value: Series[float] = pa.Field(ge=0, nullable=True, description="Platform-reported conversion value, account currency (NULL when not exported).")

    class Config:
        coerce = True
        strict = False
        unique = ["date_day", "platform", "account_id", "campaign_id"]


class ContactsResolved(pa.DataFrameModel):
    """Deduplicated contacts."""

    contact_id: Series[str] = pa.Field(unique=True, description="CRM contact id.")
    account_id: Series[str] = pa.Field(description="The contact's own account.")
    canonical_contact_id: Series[str] = pa.Field(description="The person's canonical contact id.")
    canonical_account_id: Series[str] = pa.Field(description="Account of the canonical contact.")
    email_normalized: Series[str] = pa.Field(nullable=True, description="Normalised email.")
    is_canonical: Series[bool] = pa.Field(description="The contact is its person's canonical contact.")
    match_method: Series[str] = pa.Field(isin=["self", "email", "web_client_id"], description="How the contact was linked.")
    cluster_size: Series[int] = pa.Field(ge=1, description="Contacts of the same person.")
    identity_cluster_id: Series[int] = pa.Field(description="Connected component of contacts linked as one person (run-specific number).")

    class Config:
        coerce = True
        strict = False


class WebClientIdentities(pa.DataFrameModel):
    """Browser client ids linked to contacts through form fills."""

    client_id: Series[str] = pa.Field(unique=True, description="Browser client id.")
    form_emails: Series[int] = pa.Field(ge=1, description="Distinct normalised emails submitted.")
    is_shared_device: Series[bool] = pa.Field(description="Too many emails: not used for linking.")
    canonical_contact_id: Series[str] = pa.Field(nullable=True, description="Person of the client (NULL for shared devices).")

    class Config:
        coerce = True
        strict = False


class AccountsResolved(pa.DataFrameModel):
    """CRM account ↔ ERP customer matches and the unmatched of both sides."""

    account_id: Series[str] = pa.Field(nullable=True, description="CRM account (NULL: unmatched or ambiguous ERP customer).")
    account_name: Series[str] = pa.Field(nullable=True, description="CRM account name.")
    customer_id: Series[str] = pa.Field(nullable=True, description="ERP customer (NULL: unmatched CRM account).")
    customer_name: Series[str] = pa.Field(nullable=True, description="ERP customer name.")
    domain: Series[str] = pa.Field(nullable=True, description="Web domain the match used (domain matches).")
    ambiguous_candidates: Series[float] = pa.Field(nullable=True, ge=0, description="CRM accounts the ERP customer matched equally well (ambiguous rows).")
    match_method: Series[str] = pa.Field(
        isin=["domain", "name", "fuzzy_name", "ambiguous", "unmatched_crm", "unmatched_erp"], description="How matched."
    )
    confidence: Series[float] = pa.Field(nullable=True, ge=0, le=1, description="Match confidence.")

    class Config:
        coerce = True
        strict = False


class CampaignsResolved(pa.DataFrameModel):
    """Ad campaigns ↔ utm_campaign values."""

    platform: Series[str] = pa.Field(nullable=True, description="Ad platform (NULL for utm-only campaigns).")
    account_id: Series[str] = pa.Field(nullable=True, description="Ad account (NULL for utm-only campaigns).")
    campaign_id: Series[str] = pa.Field(nullable=True, description="Ad campaign id.")
    campaign_name: Series[str] = pa.Field(nullable=True, description="Ad campaign name (NULL for utm-only campaigns).")
    channel_group: Series[str] = pa.Field(nullable=True, description="Channel group of the ad campaign (NULL for utm-only campaigns).")
    campaign_key: Series[str] = pa.Field(
        nullable=True, description="Normalised campaign name used for matching (NULL when the ad export has no campaign name)."
    )
    utm_campaign: Series[str] = pa.Field(nullable=True, description="Most used utm_campaign spelling of the campaign (NULL: no utm value matched).")
    utm_spellings: Series[float] = pa.Field(nullable=True, ge=0, description="Distinct utm_campaign spellings merged.")
    match_method: Series[str] = pa.Field(isin=["name", "unmatched_ad_campaign", "utm_only"], description="How matched.")
    sessions: Series[float] = pa.Field(ge=0, description="Web sessions tagged with the campaign.")
    crm_touchpoints: Series[float] = pa.Field(ge=0, description="CRM touchpoints tagged with the campaign.")
    spend: Series[float] = pa.Field(ge=0, description="Campaign spend in the reporting currency.")
    first_day: Series[pd.Timestamp] = pa.Field(nullable=True, description="First day with ad spend rows (NULL for utm-only campaigns).")
    last_day: Series[pd.Timestamp] = pa.Field(nullable=True, description="Last day with ad spend rows (NULL for utm-only campaigns).")

    class Config:
        coerce = True
        strict = False


SPEND_MODELS: dict[str, type[pa.DataFrameModel]] = {"ad_spend_daily": AdSpendDaily}

IDENTITY_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "channel_map": ChannelMap,
    "contacts_resolved": ContactsResolved,
    "web_client_identities": WebClientIdentities,
    "accounts_resolved": AccountsResolved,
    "campaigns_resolved": CampaignsResolved,
}


# --------------------------------------------------------------------------------------- touchpoints

TOUCHPOINT_TYPES = ["marketing", "sales", "web"]


class Touchpoints(pa.DataFrameModel):
    """Every touchpoint on a known contact."""

    touchpoint_id: Series[str] = pa.Field(unique=True, description="CRM touchpoint id, or web:<session_id>.")
    touchpoint_type: Series[str] = pa.Field(isin=TOUCHPOINT_TYPES, description="marketing, sales or web.")
    contact_id: Series[str] = pa.Field(description="Contact touched (web: the canonical contact of the browser).")
    canonical_contact_id: Series[str] = pa.Field(description="The person's canonical contact id.")
    account_id: Series[str] = pa.Field(description="Account of the contact.")
    touchpoint_date: Series[pd.Timestamp] = pa.Field(description="When, UTC.")
    channel_name: Series[str] = pa.Field(description="Channel label (CRM spelling merged across case/space variants).")
    channel_group: Series[str] = pa.Field(description="Channel group.")
    utm_source: Series[str] = pa.Field(nullable=True, description="utm_source of the touch.")
    utm_medium: Series[str] = pa.Field(nullable=True, description="utm_medium of the touch.")
    utm_campaign: Series[str] = pa.Field(nullable=True, description="utm_campaign of the touch, as landed.")
    campaign_key: Series[str] = pa.Field(nullable=True, description="Normalised campaign name of utm_campaign (joins identity.campaigns_resolved).")
    lead_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="When the contact became a lead (CRM created_at), UTC.")
    type_order: Series[int] = pa.Field(isin=[1, 2, 3], description="Tie-break order of the type.")
    is_direct: Series[bool] = pa.Field(description="Channel group is Direct.")

    class Config:
        coerce = True
        strict = False


class OpportunityTouchpoints(pa.DataFrameModel):
    """Opportunity × touchpoint rows inside the lookback window (the classic attribution table)."""

    opportunity_id: Series[str] = pa.Field(description="Opportunity.")
    account_id: Series[str] = pa.Field(description="Account of the opportunity and of the touched contact.")
    pipeline_amount: Series[float] = pa.Field(ge=0, description="Opportunity pipeline.")
    opportunity_created_date: Series[pd.Timestamp] = pa.Field(description="Opportunity creation, UTC.")
    sales_segment: Series[str] = pa.Field(description="Sales segment.")
    touchpoint_id: Series[str] = pa.Field(description="Touchpoint.")
    touchpoint_type: Series[str] = pa.Field(isin=TOUCHPOINT_TYPES, description="marketing, sales or web.")
    channel_name: Series[str] = pa.Field(description="Channel label.")
    channel_group: Series[str] = pa.Field(description="Channel group.")
    contact_id: Series[str] = pa.Field(description="Contact touched.")
    canonical_contact_id: Series[str] = pa.Field(description="The touched person's canonical contact id.")
    touchpoint_date: Series[pd.Timestamp] = pa.Field(description="When, UTC.")
    campaign_key: Series[str] = pa.Field(nullable=True, description="Normalised campaign name (NULL: no utm_campaign).")
    utm_campaign: Series[str] = pa.Field(nullable=True, description="utm_campaign of the touch, as landed.")
    is_direct: Series[bool] = pa.Field(description="Channel group is Direct.")
    type_order: Series[int] = pa.Field(isin=[1, 2, 3], description="Tie-break order of the touchpoint type.")
    touch_order: Series[int] = pa.Field(ge=1, description="Position in the opportunity's journey (date, type, id).")
    touch_count: Series[int] = pa.Field(ge=1, description="Touches of the opportunity in the window.")
    is_lead_creation: Series[bool] = pa.Field(description="The lead-creation touch (at most one per opportunity).")
    days_before_opportunity: Series[float] = pa.Field(ge=0, description="Age of the touch at opportunity creation.")
    lookback_days: Series[int] = pa.Field(ge=1, description="Lookback window the touches were selected with.")

    class Config:
        coerce = True
        strict = False
        unique = ["opportunity_id", "touchpoint_id"]


class ConversionPaths(pa.DataFrameModel):
    """Converting and non-converting channel paths."""

    journey_kind: Series[str] = pa.Field(isin=["opportunity", "non_converting"], description="Converting or not.")
    journey_id: Series[str] = pa.Field(unique=True, description="Opportunity id, or account#n for non-converting journeys.")
    account_id: Series[str] = pa.Field(description="Account of the journey.")
    touch_count: Series[int] = pa.Field(ge=1, description="Touches in the journey.")
    first_touch_at: Series[pd.Timestamp] = pa.Field(description="First touch of the journey, UTC.")
    last_touch_at: Series[pd.Timestamp] = pa.Field(description="Last touch of the journey, UTC.")
    path: Series[str] = pa.Field(description="Channels in order, joined by ' > '.")
    conversions: Series[int] = pa.Field(isin=[0, 1], description="1 for an opportunity.")
    nulls: Series[int] = pa.Field(isin=[0, 1], description="1 for a non-converting journey.")
    value: Series[float] = pa.Field(ge=0, description="Pipeline of the opportunity (0 otherwise).")

    class Config:
        coerce = True
        strict = False


TOUCHPOINT_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "touchpoints": Touchpoints,
    "opportunity_touchpoints": OpportunityTouchpoints,
    "conversion_paths": ConversionPaths,
}


# --------------------------------------------------------------------------------------- attribution

ATTRIBUTION_MODELS = list(attribution_models.model_names())
"""Registered attribution models (``lib/attribution/models.py``), in credit-column order."""


class _AttributionCreditsBase(pa.DataFrameModel):
    """Credit per opportunity × touchpoint, one column per model, in pipeline currency."""

    opportunity_id: Series[str] = pa.Field(description="Opportunity.")
    account_id: Series[str] = pa.Field(description="Account of the opportunity.")
    opportunity_created_date: Series[pd.Timestamp] = pa.Field(description="Opportunity creation, UTC.")
    sales_segment: Series[str] = pa.Field(description="Sales segment.")
    touchpoint_type: Series[str] = pa.Field(isin=TOUCHPOINT_TYPES, description="marketing, sales or web.")
    channel_group: Series[str] = pa.Field(description="Channel group.")
    contact_id: Series[str] = pa.Field(description="Contact touched.")
    canonical_contact_id: Series[str] = pa.Field(description="The touched person's canonical contact id.")
    touchpoint_date: Series[pd.Timestamp] = pa.Field(description="When, UTC.")
    campaign_key: Series[str] = pa.Field(nullable=True, description="Normalised campaign name (NULL: no utm_campaign).")
    utm_campaign: Series[str] = pa.Field(nullable=True, description="utm_campaign of the touch, as landed.")
    is_direct: Series[bool] = pa.Field(description="Channel group is Direct.")
    type_order: Series[int] = pa.Field(isin=[1, 2, 3], description="Tie-break order of the touchpoint type.")
    is_lead_creation: Series[bool] = pa.Field(description="The lead-creation touch (at most one per opportunity).")
    days_before_opportunity: Series[float] = pa.Field(ge=0, description="Age of the touch at opportunity creation.")
    lookback_days: Series[int] = pa.Field(ge=1, description="Lookback window the touches were selected with.")
    touch_order: Series[int] = pa.Field(ge=1, description="Position in the opportunity's journey (date, type, id).")
    touch_count: Series[int] = pa.Field(ge=1, description="Touches of the opportunity in the window.")
    touchpoint_id: Series[str] = pa.Field(description="Touchpoint.")
    channel_name: Series[str] = pa.Field(description="Channel label.")
    pipeline_amount: Series[float] = pa.Field(ge=0, description="Opportunity pipeline.")

    class Config:
        coerce = True
        strict = False
        unique = ["opportunity_id", "touchpoint_id"]


# One credit column per registered model, described by the registry.
AttributionCredits = type(
    "AttributionCredits",
    (_AttributionCreditsBase,),
    {
        "__doc__": _AttributionCreditsBase.__doc__,
        "__module__": __name__,
        "__annotations__": {m.credit_column: Series[float] for m in attribution_models.REGISTRY.values()},
        **{m.credit_column: pa.Field(ge=0, description=m.column_description or m.label) for m in attribution_models.REGISTRY.values()},
    },
)


class _Rollup(pa.DataFrameModel):
    model: Series[str] = pa.Field(isin=ATTRIBUTION_MODELS, description="Attribution model.")
    pipeline_amount: Series[float] = pa.Field(ge=0, description="Credited pipeline.")
    opportunities: Series[float] = pa.Field(ge=0, description="Credited opportunities (fractional for fractional models).")
    customers: Series[float] = pa.Field(ge=0, description="Credited won opportunities.")
    won_revenue: Series[float] = pa.Field(ge=0, description="Credited won amount.")
    pipeline_share: Series[float] = pa.Field(ge=0, le=1.000001, nullable=True, description="Share of the model's pipeline.")

    class Config:
        coerce = True
        strict = False


class AttributionByChannel(_Rollup):
    """Credited pipeline by model and channel."""

    channel_name: Series[str] = pa.Field(description="Channel label, or (unattributed).")
    channel_group: Series[str] = pa.Field(description="Channel group, or (unattributed).")

    class Config:
        unique = ["model", "channel_name", "channel_group"]


class AttributionBySegmentChannel(_Rollup):
    """Credited pipeline by model, sales segment and channel."""

    sales_segment: Series[str] = pa.Field(description="Sales segment.")
    channel_name: Series[str] = pa.Field(description="Channel label, or (unattributed).")
    channel_group: Series[str] = pa.Field(description="Channel group, or (unattributed).")

    class Config:
        unique = ["model", "sales_segment", "channel_name", "channel_group"]


class AttributionByCampaign(_Rollup):
    """Credited pipeline by model, channel group and campaign."""

    channel_group: Series[str] = pa.Field(description="Channel group.")
    campaign_key: Series[str] = pa.Field(nullable=True, description="Normalised utm_campaign (NULL: no campaign).")


class AttributionModelComparison(pa.DataFrameModel):
    """Credit share by lookback window, model and channel."""

    lookback_days: Series[int] = pa.Field(ge=1, description="Lookback window.")
    channel_name: Series[str] = pa.Field(description="Channel.")
    model: Series[str] = pa.Field(isin=ATTRIBUTION_MODELS, description="Rule model.")
    pipeline_amount: Series[float] = pa.Field(ge=0, description="Credited pipeline.")
    share: Series[float] = pa.Field(ge=0, le=1.000001, description="Share of the window's pipeline.")
    share_change_vs_default_window: Series[float] = pa.Field(description="share minus the channel's share under the same model in the default window.")
    model_spread: Series[float] = pa.Field(ge=0, description="Highest minus lowest share of the channel across models, in this window.")

    class Config:
        coerce = True
        strict = False
        unique = ["lookback_days", "channel_name", "model"]


class ChannelRoi(pa.DataFrameModel):
    """Dictionary KPIs by model, channel group and month (column = KPI name, definition in config/kpis.yaml)."""

    model: Series[str] = pa.Field(isin=ATTRIBUTION_MODELS, description="Attribution model.")
    channel_group: Series[str] = pa.Field(description="Channel group.")
    month: Series[pd.Timestamp] = pa.Field(description="Month.")
    ad_spend: Series[float] = pa.Field(ge=0, nullable=True, description="KPI ad_spend (NULL: no ad-platform spend).")
    finance_marketing_spend: Series[float] = pa.Field(nullable=True, description="KPI finance_marketing_spend.")
    spend_status: Series[str] = pa.Field(
        isin=["ok", "zero spend", "finance spend only", "no spend data"], description="Why the spend ratios may be NULL."
    )
    new_leads: Series[float] = pa.Field(ge=0, nullable=True, description="KPI new_leads (lead month, last touch up to the lead day).")
    attributed_pipeline: Series[float] = pa.Field(nullable=True, description="KPI attributed_pipeline (creation month).")
    attributed_opportunities: Series[float] = pa.Field(nullable=True, description="KPI attributed_opportunities (creation month).")
    attributed_revenue: Series[float] = pa.Field(nullable=True, description="KPI attributed_revenue (close month).")
    attributed_won_deals: Series[float] = pa.Field(nullable=True, description="KPI attributed_won_deals (close month).")
    channel_roas: Series[float] = pa.Field(ge=0, nullable=True, description="KPI channel_roas.")
    cost_per_lead: Series[float] = pa.Field(ge=0, nullable=True, description="KPI cost_per_lead.")
    cost_per_opportunity: Series[float] = pa.Field(ge=0, nullable=True, description="KPI cost_per_opportunity.")
    cost_per_won_deal: Series[float] = pa.Field(ge=0, nullable=True, description="KPI cost_per_won_deal.")

    class Config:
        coerce = True
        strict = False
        unique = ["model", "channel_group", "month"]


ATTRIBUTION_TABLE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "attribution_credits": AttributionCredits,
    "attribution_by_channel": AttributionByChannel,
    "attribution_by_segment_channel": AttributionBySegmentChannel,
    "attribution_by_campaign": AttributionByCampaign,
    "attribution_model_comparison": AttributionModelComparison,
    "channel_roi": ChannelRoi,
}


# ----------------------------------------------------------------------------------------------- mmm


# Tables with one column per MMM channel (channels come from config, not from the model): the column schema
# shows them as one ``<channel>`` column described by ``Config.metadata["per_channel_column"]``.
PER_CHANNEL_COLUMN = "per_channel_column"


class MmmWeeklyFrame(pa.DataFrameModel):
    """Weekly design matrix."""

    week: Series[pd.Timestamp] = pa.Field(unique=True, description="Week start (Monday).")
    revenue: Series[float] = pa.Field(description="Net revenue of the week.")
    sales: Series[float] = pa.Field(description="Gross sales of the week (ERP sale lines).")
    returns: Series[float] = pa.Field(description="Returns of the week (ERP return lines).")
    orders: Series[int] = pa.Field(ge=0, description="Distinct ERP orders with a sale line.")
    promo_share: Series[float] = pa.Field(ge=0, le=1, description="Share of the week's sales with a promo code.")
    promo: Series[int] = pa.Field(isin=[0, 1], description="Promo week flag (control).")

    class Config:
        coerce = True
        strict = False
        metadata = {PER_CHANNEL_COLUMN: "Ad spend of the MMM channel in the week, reporting currency (one column per channel)."}


class MmmModel(pa.DataFrameModel):
    """Fitted parameters and returns per media channel."""

    channel: Series[str] = pa.Field(unique=True, description="MMM channel key (platform × campaign type), as in lift tests.")
    channel_group: Series[str] = pa.Field(description="Channel group of the channel's spend (the vocabulary of attribution and reports).")
    channel_label: Series[str] = pa.Field(unique=True, description="Reader-facing name: the channel group, plus the platform when a group has several MMM channels.")
    decay: Series[float] = pa.Field(description="Geometric adstock decay (share of a week's effect carried to the next week).")
    half_saturation: Series[float] = pa.Field(description="Hill half-saturation point, in adstocked spend.")
    slope: Series[float] = pa.Field(description="Hill slope (shape of the saturation curve).")
    spend: Series[float] = pa.Field(ge=0, description="Spend over the fit period.")
    contribution: Series[float] = pa.Field(description="Modelled contribution over the fit period.")
    roi: Series[float] = pa.Field(description="Contribution / spend.")
    roi_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of roi.")
    roi_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of roi.")
    mroi: Series[float] = pa.Field(description="Marginal ROI at current spend.")
    mroi_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of mroi.")
    mroi_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of mroi.")

    class Config:
        coerce = True
        strict = False


class MmmChannelGroupRoi(pa.DataFrameModel):
    """Modelled returns per channel group, intervals from the bootstrap draws of the group."""

    channel_group: Series[str] = pa.Field(unique=True, description="Channel group with modelled media spend.")
    mmm_channels: Series[str] = pa.Field(description="Labels of the group's MMM channels, comma-separated.")
    spend: Series[float] = pa.Field(ge=0, description="Spend over the fit period.")
    contribution: Series[float] = pa.Field(description="Modelled contribution of the group's channels over the fit period.")
    roi: Series[float] = pa.Field(description="Modelled contribution / spend over the fit period.")
    roi_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of roi.")
    roi_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of roi.")
    mroi: Series[float] = pa.Field(description="Marginal ROI: d contribution / d spend with all the group's channels scaled together.")
    mroi_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of mroi (the decision interval).")
    mroi_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of mroi (the decision interval).")
    best_other_group: Series[str] = pa.Field(nullable=True, description="The other channel group with the highest marginal ROI.")
    mroi_gap: Series[float] = pa.Field(nullable=True, description="mroi minus best_other_group's mroi.")
    mroi_gap_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% interval of the gap, draw by draw.")
    mroi_gap_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% interval of the gap, draw by draw.")

    class Config:
        coerce = True
        strict = False


class MmmBudgetPlan(pa.DataFrameModel):
    """Optimal reallocation and what-if scenarios for the planning period."""

    period_start: Series[pd.Timestamp] = pa.Field(description="First day of the planned period (the week after the last modelled week).")
    period_end: Series[pd.Timestamp] = pa.Field(description="Last day of the planned period.")
    period_weeks: Series[int] = pa.Field(ge=1, description="Weeks in the planned period.")
    scenario: Series[str] = pa.Field(description="optimal_same_total or '<channel label> ±x%'.")
    channel: Series[str] = pa.Field(description="MMM channel key.")
    channel_group: Series[str] = pa.Field(description="Channel group of the MMM channel.")
    channel_label: Series[str] = pa.Field(description="Reader-facing channel name.")
    current_spend: Series[float] = pa.Field(ge=0, description="Spend of the last period_weeks weeks: the run rate the plan starts from.")
    scenario_spend: Series[float] = pa.Field(ge=0, description="Spend of the channel in the scenario over the planned period.")
    spend_change: Series[float] = pa.Field(nullable=True, description="scenario_spend - current_spend: the scenario's change of the channel's spend over the planned period.")
    uplift_per_extra_spend: Series[float] = pa.Field(
        nullable=True, description="uplift / spend_change on what-if rows that change spend: revenue per extra unit of spend; null on the optimal plan and unchanged rows."
    )
    bound_low: Series[float] = pa.Field(nullable=True, ge=0, description="Lowest spend the optimiser may give the channel (optimal scenario only).")
    bound_high: Series[float] = pa.Field(nullable=True, ge=0, description="Highest spend the optimiser may give the channel (optimal scenario only).")
    media_contribution: Series[float] = pa.Field(description="Modelled media contribution of the scenario over the planned period.")
    uplift: Series[float] = pa.Field(description="media_contribution minus that of the current run rate.")
    uplift_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of uplift (optimal scenario only).")
    uplift_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of uplift (optimal scenario only).")

    class Config:
        coerce = True
        strict = False


class MmmFit(pa.DataFrameModel):
    """The fitted model as data: one row with its status and the parameters the estimator is rebuilt from."""

    status: Series[str] = pa.Field(description="'fitted', or 'not fitted: ' and the unmet conditions (too few weeks or channels with spend).")
    fitted_at: Series[pd.Timestamp] = pa.Field(description="When the model was fitted (or found not fittable), UTC.")
    weeks: Series[int] = pa.Field(ge=0, description="Weeks in the weekly frame.")
    channels: Series[int] = pa.Field(ge=0, description="Media channels with spend.")
    holdout_weeks: Series[int] = pa.Field(ge=1, description="Last weeks held out to measure the forecast error.")
    holdout_mape: Series[float] = pa.Field(ge=0, nullable=True, description="Mean absolute percentage error on the held-out weeks; null when not fitted.")
    fit_seconds: Series[float] = pa.Field(ge=0, nullable=True, description="Wall time of the fit incl. bootstrap; null when not fitted.")
    lift_tests_used: Series[int] = pa.Field(ge=0, description="Lift tests on the model's channels given to the fit.")
    params: Series[str] = pa.Field(nullable=True, str_startswith="{", description="JSON from MarketingMixModel.to_params (settings, coefficients, channel and bootstrap parameters, intervals, lift calibration); null when not fitted.")

    class Config:
        coerce = True
        strict = False


class MmmLiftTestFit(pa.DataFrameModel):
    """Lift tests inside the fit period, measured vs modelled."""

    channel: Series[str] = pa.Field(description="MMM channel the test measured.")
    start_date: Series[pd.Timestamp] = pa.Field(description="First day of the test window.")
    end_date: Series[pd.Timestamp] = pa.Field(description="Last day of the test window.")
    lift: Series[float] = pa.Field(description="Measured lift (revenue) of the test.")
    lift_se: Series[float] = pa.Field(gt=0, description="Standard error of the measured lift.")
    predicted_lift: Series[float] = pa.Field(description="The model's lift over the test window.")
    z: Series[float] = pa.Field(description="(predicted_lift - lift) / lift_se.")

    class Config:
        coerce = True
        strict = False


class MmmContributions(pa.DataFrameModel):
    """Weekly revenue and its modelled decomposition."""

    week: Series[pd.Timestamp] = pa.Field(unique=True, description="Week start (Monday).")
    actual: Series[float] = pa.Field(description="Net revenue of the week.")
    baseline: Series[float] = pa.Field(nullable=True, description="Modelled baseline (intercept).")
    trend: Series[float] = pa.Field(nullable=True, description="Modelled trend.")
    seasonality: Series[float] = pa.Field(nullable=True, description="Modelled yearly seasonality.")
    promo: Series[float] = pa.Field(nullable=True, description="Modelled effect of the promo control.")
    predicted: Series[float] = pa.Field(nullable=True, description="Modelled revenue: the sum of the parts.")

    class Config:
        coerce = True
        strict = False
        metadata = {PER_CHANNEL_COLUMN: "Modelled revenue contribution of the MMM channel in the week (one column per channel)."}


class MmmResponseCurves(pa.DataFrameModel):
    """Modelled response of each channel to its spend, 0–200% of current."""

    channel: Series[str] = pa.Field(description="MMM channel key.")
    channel_group: Series[str] = pa.Field(nullable=True, description="Channel group of the MMM channel.")
    channel_label: Series[str] = pa.Field(nullable=True, description="Reader-facing channel name.")
    spend: Series[float] = pa.Field(ge=0, description="Spend level over the fit period.")
    share_of_current_spend: Series[float] = pa.Field(nullable=True, ge=0, description="Spend level / current spend (0 to 2).")
    contribution: Series[float] = pa.Field(nullable=True, description="Modelled contribution at the spend level.")
    roi: Series[float] = pa.Field(nullable=True, description="contribution / spend (NULL at zero spend).")
    mroi: Series[float] = pa.Field(nullable=True, description="Marginal ROI at the spend level.")
    contribution_low: Series[float] = pa.Field(nullable=True, description="Lower end of the 80% bootstrap interval of contribution.")
    contribution_high: Series[float] = pa.Field(nullable=True, description="Upper end of the 80% bootstrap interval of contribution.")

    class Config:
        coerce = True
        strict = False


MMM_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "mmm_weekly_frame": MmmWeeklyFrame,
    "mmm_model": MmmModel,
    "mmm_fit": MmmFit,
    "mmm_lift_test_fit": MmmLiftTestFit,
    "mmm_channel_group_roi": MmmChannelGroupRoi,
    "mmm_budget_plan": MmmBudgetPlan,
}

MMM_UNCHECKED_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "mmm_contributions": MmmContributions,
    "mmm_response_curves": MmmResponseCurves,
}
"""Described but not contract-checked: without a fitted model these tables are written with two columns only."""


# ------------------------------------------------------------------------------------------ KPI base tables
# The metric dictionary's base relations built once per run (kpi_bases.py); their rows are defined in lib/kpis.py
# (BASE_RELATIONS), these contracts name and describe the columns for the UI. The tables' check compares them with the
# definition's columns and types (checks/kpi_bases.py).


class KpiModel(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = False


def _money(description: str, nullable: bool = False) -> pa.Field:
    return pa.Field(nullable=nullable, description=description, metadata={"sql_type": MONEY})


class RevenueLines(KpiModel):
    """One row per ERP order or return line; returns carry negative net revenue, quantity and cogs."""

    order_id: Series[str] = pa.Field(description="ERP transaction id.")
    line_number: Series[int] = pa.Field(description="Line on the transaction.")
    event_date: Series[pd.Timestamp] = pa.Field(description="Order date, UTC.")
    transaction_type: Series[str] = pa.Field(description="sale or return.")
    customer_id: Series[str] = pa.Field(description="ERP customer id.")
    product_id: Series[str] = pa.Field(description="Item id.")
    product_name: Series[str] = pa.Field(description="Item name from the ERP product list (the item id without one).")
    category: Series[str] = pa.Field(description="Product category; (unknown) without one.")
    sales_channel: Series[str] = pa.Field(description="web, direct or partner; (unknown) without one.")
    net_quantity: Series[int] = pa.Field(description="Units, negative on a return.")
    gross_sales: Series[float] = _money("Line amount of a sale, as landed (0 on a return).")
    returns: Series[float] = _money("Line amount of a return, as landed (0 on a sale).")
    net_revenue: Series[float] = _money("Line amount, negative on a return.")
    cogs: Series[float] = _money("Units × the product's unit cost, negative on a return; empty without a cost.", nullable=True)


class Customers(KpiModel):
    """One row per ERP customer with a sale."""

    customer_id: Series[str] = pa.Field(description="ERP customer id.")
    event_date: Series[pd.Timestamp] = pa.Field(description="First sale, UTC.")
    net_revenue: Series[float] = _money("Lifetime net revenue.")
    cogs: Series[float] = _money("Lifetime cost of goods.")
    gross_margin: Series[float] = _money("Net revenue minus cogs.")
    active_months: Series[int] = pa.Field(description="Months from the first sale to the last order, both counted.")
    days_to_repeat: Series[int] = pa.Field(nullable=True, description="Days from the first sale to the second; empty without one.")
    days_observed: Series[int] = pa.Field(description="Days from the first sale to the latest order date in the data.")
    channel_group: Series[str] = pa.Field(description="Acquisition channel group: the matched CRM account's last touch up to the first sale.")


class CustomerMonths(KpiModel):
    """One row per ERP customer × month since acquisition up to the latest order month."""

    customer_id: Series[str] = pa.Field(description="ERP customer id.")
    event_date: Series[pd.Timestamp] = pa.Field(description="Acquisition month (the cohort).")
    channel_group: Series[str] = pa.Field(description="Acquisition channel group.")
    months_since_acquisition: Series[int] = pa.Field(description="0 = the month of the first sale.")
    cumulative_revenue: Series[float] = _money("Net revenue to the end of the month.")
    cumulative_gross_margin: Series[float] = _money("Gross margin to the end of the month.")
    is_active: Series[bool] = pa.Field(description="The customer bought in the month.")


class Leads(KpiModel):
    """One row per CRM contact that became a lead."""

    contact_id: Series[str] = pa.Field(description="CRM contact id.")
    event_date: Series[pd.Timestamp] = pa.Field(description="Lead date, UTC.")
    mql_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="Marketing-qualified date; empty if never.")
    sql_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="Sales-qualified date; empty if never.")
    customer_date: Series[pd.Timestamp] = pa.Field(nullable=True, description="Became a customer; empty if never.")
    channel_group: Series[str] = pa.Field(description="Channel group of the last touch up to the end of the lead day.")
    campaign_key: Series[str] = pa.Field(nullable=True, description="Normalised campaign of that touch; empty without one.")


class FunnelStages(KpiModel):
    """One row per CRM contact × funnel stage, dated by the contact's creation (the cohort)."""

    contact_id: Series[str] = pa.Field(description="CRM contact id.")
    event_date: Series[pd.Timestamp] = pa.Field(description="Contact created, UTC (the cohort).")
    channel_group: Series[str] = pa.Field(description="Channel group of the contact's first touch.")
    stage: Series[str] = pa.Field(description="known, engaged, mql, sql, opportunity or customer.")
    stage_order: Series[int] = pa.Field(description="1 (known) to 6 (customer).")
    reached: Series[bool] = pa.Field(description="The contact got to the stage (a later stage implies the earlier ones).")
    reached_previous: Series[bool] = pa.Field(description="The contact got to the stage before.")
    reached_own: Series[bool] = pa.Field(description="Reached by the stage's own signal, not only implied.")
    stage_distinguishable: Series[bool] = pa.Field(description="In the whole data set the stage is told apart from the one before.")
    stage_note: Series[str] = pa.Field(nullable=True, description="Why a stage is not distinguishable; empty when it is.")


KPI_BASE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "revenue_lines": RevenueLines, "customers": Customers, "customer_months": CustomerMonths, "leads": Leads,
    "funnel_stages": FunnelStages,
}
