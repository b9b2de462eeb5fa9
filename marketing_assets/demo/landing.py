"""Landing-file layouts: header spelling, contract field, value kind and quarantine rules per column.

These mirror ``marketing_assets.schemas`` (field names, keys, ``nullable=False``, ``ge=0``) so the generator
knows which values it may corrupt and how, without importing the contracts at generation time. The test
suite checks the two stay in line.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Col:
    """One landing column: ``header`` as exported, ``name`` as in the contract."""

    header: str
    kind: str = "str"  # str | int | decimal | date | timestamp | bool
    key: bool = False
    required: bool = False  # nullable=False (keys are always required)
    ge0: bool = False
    name: str = ""

    @property
    def field(self) -> str:
        return self.name or self.header


@dataclass(frozen=True)
class TableLayout:
    """A landing table: contract name, file stem (``crm/contacts``), columns and id style for fresh keys."""

    table_name: str
    stem: str
    columns: tuple[Col, ...]
    id_prefix: str = ""
    id_width: int = 0
    conflict_column: str = ""
    extension: str = "csv"
    plant_defects: bool = True

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def key_columns(self) -> list[Col]:
        return [c for c in self.columns if c.key]

    def col(self, header: str) -> Col:
        for c in self.columns:
            if c.header == header:
                return c
        raise KeyError(header)


def _c(header: str, kind: str = "str", *, key=False, req=False, ge0=False, name: str = "") -> Col:
    return Col(header=header, kind=kind, key=key, required=req or key, ge0=ge0, name=name)


ADS_GOOGLE = TableLayout(
    "ads_google",
    "ads/google_ads",
    (
        _c("segments.date", "date", key=True, name="segments_date"),
        _c("customer.id", key=True, name="customer_id"),
        _c("customer.currency_code", name="customer_currency_code"),
        _c("campaign.id", key=True, name="campaign_id"),
        _c("campaign.name", name="campaign_name"),
        _c("campaign.advertising_channel_type", name="campaign_advertising_channel_type"),
        _c("metrics.impressions", "int", ge0=True, name="metrics_impressions"),
        _c("metrics.clicks", "int", ge0=True, name="metrics_clicks"),
        _c("metrics.cost_micros", "int", req=True, ge0=True, name="metrics_cost_micros"),
        _c("metrics.conversions", "decimal", ge0=True, name="metrics_conversions"),
        _c("metrics.conversions_value", "decimal", ge0=True, name="metrics_conversions_value"),
    ),
    conflict_column="metrics.cost_micros",
)

ADS_META = TableLayout(
    "ads_meta",
    "ads/meta_ads",
    (
        _c("date_start", "date", key=True),
        _c("date_stop", "date"),
        _c("account_id", key=True),
        _c("account_currency"),
        _c("campaign_id", key=True),
        _c("campaign_name"),
        _c("objective"),
        _c("impressions", "int", ge0=True),
        _c("clicks", "int", ge0=True),
        _c("amount_spent", "decimal", req=True, ge0=True),
        _c("conversions", "decimal", ge0=True),
    ),
    conflict_column="amount_spent",
)

ADS_LINKEDIN = TableLayout(
    "ads_linkedin",
    "ads/linkedin_ads",
    (
        _c("start_date", "date", key=True),
        _c("account_id", key=True),
        _c("currency"),
        _c("campaign_id", key=True),
        _c("campaign_name"),
        _c("impressions", "int", ge0=True),
        _c("clicks", "int", ge0=True),
        _c("costInLocalCurrency", "decimal", req=True, ge0=True, name="cost_in_local_currency"),
        _c("costInUsd", "decimal", ge0=True, name="cost_in_usd"),
        _c("oneClickLeads", "int", ge0=True, name="one_click_leads"),
        _c("externalWebsiteConversions", "int", ge0=True, name="external_website_conversions"),
    ),
    conflict_column="costInLocalCurrency",
)

WEB_SESSIONS = TableLayout(
    "web_sessions",
    "web/sessions",
    (
        _c("session_id", key=True),
        _c("client_id", req=True),
        _c("session_start", "timestamp", req=True),
        _c("landing_page"),
        _c("page_referrer"),
        _c("utm_source"),
        _c("utm_medium"),
        _c("utm_campaign"),
        _c("utm_content"),
        _c("utm_term"),
        _c("gclid"),
        _c("fbclid"),
        _c("device_category"),
        _c("country"),
        _c("pageviews", "int", ge0=True),
        _c("engagement_time_seconds", "decimal", ge0=True),
        _c("conversions", "int", ge0=True),
        _c("form_email"),
    ),
    id_prefix="S",
    id_width=10,
    conflict_column="pageviews",
)

CRM_ACCOUNTS = TableLayout(
    "crm_accounts",
    "crm/accounts",
    (
        _c("account_id", key=True),
        _c("account_name"),
        _c("domain"),
        _c("sales_segment"),
        _c("country"),
        _c("industry"),
        _c("created_at", "timestamp"),
    ),
    plant_defects=False,
)

CRM_CONTACTS = TableLayout(
    "crm_contacts",
    "crm/contacts",
    (
        _c("contact_id", key=True),
        _c("account_id", req=True),
        _c("email"),
        _c("first_name"),
        _c("last_name"),
        _c("created_at", "timestamp"),
        _c("lifecycle_stage"),
        _c("lead_date", "timestamp"),
        _c("mql_date", "timestamp"),
        _c("sql_date", "timestamp"),
        _c("customer_date", "timestamp"),
        _c("utm_source"),
        _c("utm_medium"),
        _c("utm_campaign"),
    ),
    id_prefix="C",
    id_width=8,
    conflict_column="last_name",
)

CRM_MARKETING_TOUCHPOINTS = TableLayout(
    "crm_marketing_touchpoints",
    "crm/marketing_touchpoints",
    (
        _c("marketing_touchpoint_id", key=True),
        _c("channel_name", req=True),
        _c("contact_id", req=True),
        _c("marketing_touchpoint_date", "timestamp", req=True),
        _c("utm_source"),
        _c("utm_medium"),
        _c("utm_campaign"),
        _c("campaign_id"),
    ),
    id_prefix="MT",
    id_width=9,
    conflict_column="channel_name",
)

CRM_SALES_TOUCHPOINTS = TableLayout(
    "crm_sales_touchpoints",
    "crm/sales_touchpoints",
    (
        _c("sales_touchpoint_id", key=True),
        _c("channel_name", req=True),
        _c("contact_id", req=True),
        _c("sales_touchpoint_date", "timestamp", req=True),
        _c("owner_id"),
    ),
    id_prefix="ST",
    id_width=9,
    conflict_column="channel_name",
)

CRM_OPPORTUNITIES = TableLayout(
    "crm_opportunities",
    "crm/opportunities",
    (
        _c("opportunity_id", key=True),
        _c("account_id", req=True),
        _c("pipeline_amount", "decimal", req=True, ge0=True),
        _c("opportunity_created_date", "timestamp", req=True),
        _c("sales_segment", req=True),
        _c("stage"),
        _c("is_won", "bool"),
        _c("closed_date", "timestamp"),
        _c("won_amount", "decimal", ge0=True),
        _c("currency"),
    ),
    id_prefix="O",
    id_width=8,
    conflict_column="pipeline_amount",
)

ERP_CUSTOMERS = TableLayout(
    "erp_customers",
    "erp/customers",
    (
        _c("customer_id", key=True),
        _c("customer_name"),
        _c("website"),
        _c("country"),
        _c("currency"),
        _c("created_at", "timestamp"),
    ),
    plant_defects=False,
)

ERP_PRODUCTS = TableLayout(
    "erp_products",
    "erp/products",
    (
        _c("product_id", key=True),
        _c("product_name"),
        _c("category"),
        _c("unit_price", "decimal", ge0=True),
        _c("unit_cost", "decimal", ge0=True),
        _c("currency"),
        _c("is_active", "bool"),
    ),
    plant_defects=False,
)

ERP_ORDERS = TableLayout(
    "erp_orders",
    "erp/orders",
    (
        _c("order_id", key=True),
        _c("line_number", "int", key=True, ge0=True),
        _c("order_date", "date", req=True),
        _c("transaction_type", req=True),
        _c("customer_id", req=True),
        _c("product_id", req=True),
        _c("quantity", "int", req=True, ge0=True),
        _c("unit_price", "decimal", ge0=True),
        _c("amount", "decimal", req=True, ge0=True),
        _c("discount_amount", "decimal", ge0=True),
        _c("currency"),
        _c("original_order_id"),
        _c("promo_code"),
        _c("sales_channel"),
    ),
    id_prefix="SO-",
    id_width=8,
    conflict_column="amount",
)

ERP_INVENTORY = TableLayout(
    "erp_inventory",
    "erp/inventory",
    (
        _c("snapshot_date", "date", key=True),
        _c("product_id", key=True),
        _c("location_id", key=True),
        _c("quantity_on_hand", "int", req=True, ge0=True),
        _c("inventory_value", "decimal", ge0=True),
    ),
    extension="parquet",
    plant_defects=False,
)

FINANCE_MARKETING_SPEND = TableLayout(
    "finance_marketing_spend",
    "erp/marketing_spend",
    (
        _c("journal_line_id", key=True),
        _c("period_month", "date", req=True),
        _c("channel", req=True),
        _c("vendor"),
        _c("gl_account"),
        _c("amount", "decimal", req=True, ge0=True),
        _c("currency"),
        _c("memo"),
    ),
    id_prefix="JL-",
    id_width=7,
    conflict_column="amount",
)

EXPERIMENTS = TableLayout(
    "experiments",
    "experiments/lift_tests",
    (
        _c("test_id", key=True),
        _c("channel", req=True),
        _c("start_date", "date", req=True),
        _c("end_date", "date", req=True),
        _c("lift", "decimal", req=True),
        _c("lift_se", "decimal", ge0=True),
        _c("metric"),
        _c("method"),
    ),
    plant_defects=False,
)

LAYOUTS: dict[str, TableLayout] = {
    t.table_name: t
    for t in (
        ADS_GOOGLE, ADS_META, ADS_LINKEDIN, WEB_SESSIONS, CRM_ACCOUNTS, CRM_CONTACTS, CRM_MARKETING_TOUCHPOINTS,
        CRM_SALES_TOUCHPOINTS, CRM_OPPORTUNITIES, ERP_CUSTOMERS, ERP_PRODUCTS, ERP_ORDERS, ERP_INVENTORY,
        FINANCE_MARKETING_SPEND, EXPERIMENTS,
    )
}
"""Contract name -> layout, in the contracts' reading order."""


@dataclass
class PlantedRow:
    """One planted bad row (``line`` is 1-based within its file, header = 1)."""

    table_name: str
    source_file: str
    source_line: int
    column_name: str
    reason: str


@dataclass
class DuplicateRow:
    """One planted exact duplicate and the line it copies."""

    table_name: str
    source_file: str
    source_line: int
    duplicate_of_line: int


@dataclass
class DefectLog:
    """Everything planted while writing the landing files."""

    bad_rows: list[PlantedRow] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
