"""Landing ingestion rules, one broken file per rule: exact quarantine reason and row conservation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.landing import (
    MissingColumnsError,
    contract_from_model,
    count_landing_rows,
    discover_files,
    ingest_table,
)
from marketing_assets.schemas import SOURCE_MODELS
from marketing_assets_tests.conftest import write_csv

OPP_HEADER = ["opportunity_id", "account_id", "pipeline_amount", "opportunity_created_date", "sales_segment", "is_won"]
GOOD_OPP = ["o1", "a1", "100.25", "2026-01-05T10:00:00Z", "SMB", "true"]


def contract(table: str):
    return contract_from_model(table, SOURCE_MODELS[table])


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    yield c
    c.close()


def ingest(con, root: Path, table: str):
    result = ingest_table(con, contract(table), root, "sources", f"_rejected_{table}")
    staged = con.execute(f"SELECT * FROM sources.{table} ORDER BY source_file, source_line").df()
    rejected = con.execute(f"SELECT * FROM sources._rejected_{table} ORDER BY source_file, source_line").df()
    # Conservation, per file and in total: read = staged + quarantined + collapsed.
    for f in result.files:
        assert f.rows_read == f.rows_staged + f.rows_quarantined + f.duplicates_collapsed, f
    assert result.rows_read == len(staged) + len(rejected) + result.duplicates_collapsed
    return result, staged, rejected


@pytest.mark.parametrize(
    ("bad_row", "column", "reason"),
    [
        (["o2", "a1", "100.25", "2026-13-45", "SMB", "true"], "opportunity_created_date", "unparseable_value"),
        (["o2", "a1", "12,5a", "2026-01-05", "SMB", "true"], "pipeline_amount", "unparseable_value"),
        (["o2", "a1", "100", "2026-01-05", "SMB", "maybe"], "is_won", "unparseable_value"),
        (["o2", "a1", "-3.5", "2026-01-05", "SMB", "true"], "pipeline_amount", "negative_value"),
        (["", "a1", "100", "2026-01-05", "SMB", "true"], "opportunity_id", "null_key"),
        (["o2", "  ", "100", "2026-01-05", "SMB", "true"], "account_id", "null_required_value"),
        (["o2", "a1", "100", "", "SMB", "true"], "opportunity_created_date", "null_required_value"),
        (["o1", "a9", "5", "2026-01-06", "SMB", "false"], "opportunity_id", "conflicting_duplicate_key"),
    ],
)
def test_each_row_rule_quarantines_with_exact_reason(tmp_path, con, bad_row, column, reason):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [GOOD_OPP, bad_row, ["o3", "a2", "7", "2026-01-07", "SMB", ""]])
    result, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert list(staged["opportunity_id"]) == ["o1", "o3"]
    assert len(rejected) == 1
    q = rejected.iloc[0]
    assert (q.source_file, q.source_line, q.column_name, q.reason) == ("crm/opportunities.csv", 3, column, reason)
    assert q.table_name == "crm_opportunities"
    assert result.quarantine_by_reason == {reason: 1}


def test_conflicting_duplicate_names_the_first_occurrence_across_files(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities_2025.csv", OPP_HEADER, [GOOD_OPP])
    write_csv(tmp_path, "crm/opportunities_2026.csv", OPP_HEADER, [["o1", "a1", "999", "2026-01-05", "SMB", "true"]])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged["source_file"].tolist() == ["crm/opportunities_2025.csv"]
    assert rejected.iloc[0].reason == "conflicting_duplicate_key"
    assert "crm/opportunities_2025.csv:2" in rejected.iloc[0].detail
    assert (rejected.iloc[0].source_file, rejected.iloc[0].source_line) == ("crm/opportunities_2026.csv", 2)


def test_exact_duplicates_collapse_and_are_counted(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [GOOD_OPP, GOOD_OPP])
    write_csv(tmp_path, "crm/opportunities_copy.csv", OPP_HEADER, [GOOD_OPP])
    result, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert len(staged) == 1 and staged.iloc[0].source_line == 2
    assert rejected.empty
    assert result.duplicates_collapsed == 2
    assert {f.source_file: f.duplicates_collapsed for f in result.files} == {
        "crm/opportunities.csv": 1,
        "crm/opportunities_copy.csv": 1,
    }


def test_invalid_value_outside_allowed_set(tmp_path, con):
    header = ["order_id", "line_number", "order_date", "transaction_type", "customer_id", "product_id", "quantity", "amount"]
    write_csv(
        tmp_path,
        "erp/orders.csv",
        header,
        [["so1", "1", "2026-01-05", "sale", "cu1", "p1", "2", "20.00"], ["so2", "1", "2026-01-05", "refund", "cu1", "p1", "1", "10"]],
    )
    _, staged, rejected = ingest(con, tmp_path, "erp_orders")
    assert len(staged) == 1
    assert (rejected.iloc[0].column_name, rejected.iloc[0].reason, rejected.iloc[0].raw_value) == (
        "transaction_type",
        "invalid_value",
        "refund",
    )


def test_row_with_several_violations_is_quarantined_once(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [["", "", "-1", "nope", "", ""]])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged.empty and len(rejected) == 1
    assert rejected.iloc[0].violations == 5
    assert rejected.iloc[0].reason == "null_key"


def test_missing_required_column_names_file_and_columns(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities.csv", ["opportunity_id", "account_id", "sales_segment"], [["o1", "a1", "SMB"]])
    with pytest.raises(MissingColumnsError) as err:
        ingest_table(con, contract("crm_opportunities"), tmp_path, "sources", "_rejected")
    msg = str(err.value)
    assert "crm/opportunities.csv" in msg
    assert "pipeline_amount" in msg and "opportunity_created_date" in msg
    assert err.value.missing == ["pipeline_amount", "opportunity_created_date"]


def test_malformed_csv_record_is_quarantined_naming_file_and_line(tmp_path, con):
    path = tmp_path / "crm" / "opportunities.csv"
    path.parent.mkdir(parents=True)
    path.write_text(",".join(OPP_HEADER) + "\n" + ",".join(GOOD_OPP) + "\no2,a1,5,2026-01-01,SMB,true,extra,fields\n")
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_id"].tolist() == ["o1"]
    assert rejected[["source_file", "source_line", "reason"]].values.tolist() == [["crm/opportunities.csv", 3, "malformed_record"]]


def test_bom_mixed_case_headers_z_timestamps_and_ten_decimals(tmp_path, con):
    header = ["Opportunity_ID", "ACCOUNT_ID", "Pipeline_Amount", "Opportunity_Created_Date", "Sales_Segment"]
    write_csv(
        tmp_path,
        "crm/opportunities.csv",
        header,
        [
            ["o1", "a1", "12345678.1234567891", "2021-05-10T22:25:39Z", "SMB"],
            ["o2", "a1", "0.0000000001", "2021-05-10", "SMB"],
            ["o3", "a1", "98765.4321098765", "2021-05-10T22:25:39+02:00", "SMB"],
        ],
        bom=True,
    )
    assert (tmp_path / "crm/opportunities.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert rejected.empty
    amounts = con.execute("SELECT CAST(pipeline_amount AS VARCHAR) FROM sources.crm_opportunities ORDER BY source_line").fetchall()
    assert [Decimal(a) for (a,) in amounts] == [Decimal("12345678.1234567891"), Decimal("0.0000000001"), Decimal("98765.4321098765")]
    ts = staged["opportunity_created_date"].tolist()
    assert ts == [pd.Timestamp("2021-05-10 22:25:39"), pd.Timestamp("2021-05-10"), pd.Timestamp("2021-05-10 20:25:39")]


def test_union_by_name_across_files_with_different_column_sets(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities_a.csv", OPP_HEADER, [GOOD_OPP])
    write_csv(
        tmp_path,
        "crm/opportunities_b.csv",
        ["sales_segment", "opportunity_created_date", "pipeline_amount", "account_id", "opportunity_id", "currency"],
        [["Enterprise", "2026-02-01", "5", "a2", "o2", "EUR"]],
    )
    _, staged, _ = ingest(con, tmp_path, "crm_opportunities")
    assert staged[["opportunity_id", "is_won", "currency", "source_file"]].astype(object).where(staged.notna(), None).values.tolist() == [
        ["o1", True, None, "crm/opportunities_a.csv"],
        ["o2", None, "EUR", "crm/opportunities_b.csv"],
    ]


def test_parquet_rows_are_numbered_and_typed(tmp_path, con):
    (tmp_path / "erp").mkdir()
    frame = pd.DataFrame(
        {
            "snapshot_date": pd.to_datetime(["2026-01-31", "2026-01-31", "2026-02-28"]).date,
            "product_id": ["p1", "p2", "p1"],
            "location_id": ["w1", "w1", "w1"],
            "quantity_on_hand": [5, -1, 7],
            "inventory_value": [50.0, 0.0, 70.0],
        }
    )
    frame.to_parquet(tmp_path / "erp" / "inventory.parquet", index=False)
    _, staged, rejected = ingest(con, tmp_path, "erp_inventory")
    assert staged["quantity_on_hand"].tolist() == [5, 7]
    assert (rejected.iloc[0].source_file, rejected.iloc[0].source_line, rejected.iloc[0].reason) == (
        "erp/inventory.parquet",
        2,
        "negative_value",
    )
    assert count_landing_rows(con, tmp_path / "erp" / "inventory.parquet") == 3


def test_absent_optional_table_is_empty_and_typed(tmp_path, con):
    result, staged, rejected = ingest(con, tmp_path, "erp_orders")
    assert result.files == [] and staged.empty and rejected.empty
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'erp_orders'").fetchall())
    assert types["amount"] == "DECIMAL(38,10)" and types["order_date"] == "TIMESTAMP" and types["quantity"] == "BIGINT"


def test_pii_is_masked_in_quarantine(tmp_path, con):
    write_csv(
        tmp_path,
        "crm/contacts.csv",
        ["contact_id", "account_id", "email", "created_at"],
        [["c1", "a1", "ann@example.com", "yesterday"]],
    )
    _, _, rejected = ingest(con, tmp_path, "crm_contacts")
    assert rejected.iloc[0].column_name == "created_at"
    assert "ann@example.com" not in rejected.iloc[0].raw_record
    assert '"email":"***"' in rejected.iloc[0].raw_record.replace(" ", "")


def test_discovery_ignores_other_tables_and_hidden_files(tmp_path):
    for name in ["contacts.csv", "contacts_2.parquet", ".contacts_tmp.csv", "contacts.txt", "contacts_extra.CSV"]:
        (tmp_path / "crm").mkdir(exist_ok=True)
        (tmp_path / "crm" / name).write_text("x")
    (tmp_path / "crm" / "accounts.csv").write_text("x")
    found = [p.name for p in discover_files(tmp_path, contract("crm_contacts"))]
    assert found == ["contacts.csv", "contacts_2.parquet", "contacts_extra.CSV"]


def test_quoted_comma_far_beyond_the_sniffer_sample(tmp_path, con):
    """A quoted field with a comma deep in a big file is one value, not two columns."""
    rows = [[f"o{i}", "a1", "10", "2026-01-05", "SMB", "true"] for i in range(60_000)]
    rows.append(["o_bad", "a1", "12,5a", "2026-01-05", "SMB", "true"])
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, rows)
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert len(staged) == 60_000
    assert rejected[["source_line", "column_name", "raw_value", "reason"]].values.tolist() == [
        [60_002, "pipeline_amount", "12,5a", "unparseable_value"]
    ]
