"""Landing-file layouts: header spelling, contract field, value kind and quarantine rules per column.

Columns and their rules (keys, ``nullable=False``, ``ge=0``, types) come from the contracts in
``marketing_assets.schemas``, so the generator corrupts exactly what ingestion rejects; only the
export spelling of headers and the generator's own settings are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marketing_assets.lib.landing import contract_from_model
from marketing_assets.schemas import SOURCE_MODELS


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
    columns: tuple[Col, ...]
    stem: str
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


_KINDS = {"VARCHAR": "str", "BIGINT": "int", "DOUBLE": "decimal", "DATE": "date", "TIMESTAMP": "timestamp", "BOOLEAN": "bool"}

# How each source system spells a header when it differs from the contract field name.
EXPORT_HEADERS: dict[str, dict[str, str]] = {
    "ads_google": {
        "segments_date": "segments.date", "customer_id": "customer.id", "customer_currency_code": "customer.currency_code",
        "campaign_id": "campaign.id", "campaign_name": "campaign.name",
        "campaign_advertising_channel_type": "campaign.advertising_channel_type",
        "metrics_impressions": "metrics.impressions", "metrics_clicks": "metrics.clicks",
        "metrics_cost_micros": "metrics.cost_micros", "metrics_conversions": "metrics.conversions",
        "metrics_conversions_value": "metrics.conversions_value",
    },
    "ads_linkedin": {
        "cost_in_local_currency": "costInLocalCurrency", "cost_in_usd": "costInUsd",
        "one_click_leads": "oneClickLeads", "external_website_conversions": "externalWebsiteConversions",
    },
}

# Generator settings per table: file stem, style of fresh ids, the column a conflicting duplicate changes.
_TABLES: dict[str, dict] = {
    "ads_google": {"stem": "ads/google_ads", "conflict_column": "metrics.cost_micros"},
    "ads_meta": {"stem": "ads/meta_ads", "conflict_column": "amount_spent"},
    "ads_linkedin": {"stem": "ads/linkedin_ads", "conflict_column": "costInLocalCurrency"},
    "web_sessions": {"stem": "web/sessions", "id_prefix": "S", "id_width": 10, "conflict_column": "pageviews"},
    "crm_accounts": {"stem": "crm/accounts", "plant_defects": False},
    "crm_contacts": {"stem": "crm/contacts", "id_prefix": "C", "id_width": 8, "conflict_column": "last_name"},
    "crm_marketing_touchpoints": {"stem": "crm/marketing_touchpoints", "id_prefix": "MT", "id_width": 9, "conflict_column": "channel_name"},
    "crm_sales_touchpoints": {"stem": "crm/sales_touchpoints", "id_prefix": "ST", "id_width": 9, "conflict_column": "channel_name"},
    "crm_opportunities": {"stem": "crm/opportunities", "id_prefix": "O", "id_width": 8, "conflict_column": "pipeline_amount"},
    "erp_customers": {"stem": "erp/customers", "plant_defects": False},
    "erp_products": {"stem": "erp/products", "plant_defects": False},
    "erp_orders": {"stem": "erp/orders", "id_prefix": "SO-", "id_width": 8, "conflict_column": "amount"},
    "erp_inventory": {"stem": "erp/inventory", "extension": "parquet", "plant_defects": False},
    "finance_marketing_spend": {"stem": "erp/marketing_spend", "id_prefix": "JL-", "id_width": 7, "conflict_column": "amount"},
    "experiments": {"stem": "experiments/lift_tests", "plant_defects": False},
}


def _layout(table_name: str, settings: dict) -> TableLayout:
    """The landing layout of a table, its columns and rules taken from the table's contract."""
    contract = contract_from_model(table_name, SOURCE_MODELS[table_name])
    headers = EXPORT_HEADERS.get(table_name, {})
    columns = tuple(
        Col(
            header=headers.get(c.name, c.name),
            kind="decimal" if c.sql_type.startswith("DECIMAL") else _KINDS[c.sql_type],
            key=c.key,
            required=not c.nullable,
            ge0=c.ge is not None,
            name=c.name if c.name in headers else "",
        )
        for c in contract.columns
    )
    return TableLayout(table_name, columns=columns, **settings)


LAYOUTS: dict[str, TableLayout] = {name: _layout(name, settings) for name, settings in _TABLES.items()}
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
