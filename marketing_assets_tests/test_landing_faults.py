"""Damaged and unusual landing files: bad records quarantine themselves, values parse strictly, paths stay literal."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.landing import (
    DateBounds,
    LandingError,
    MissingColumnsError,
    contract_from_model,
    count_landing_rows,
    discover_files,
    ingest_table,
)
from marketing_assets.schemas import SOURCE_MODELS
from marketing_assets_tests.conftest import write_csv

OPP_HEADER = ["opportunity_id", "account_id", "pipeline_amount", "opportunity_created_date", "sales_segment"]
CONTACT_HEADER = ["contact_id", "account_id", "email", "first_name", "last_name", "created_at"]
ORDER_HEADER = ["order_id", "line_number", "order_date", "transaction_type", "customer_id", "product_id", "quantity", "amount"]
# Every file of these tests is dated 2026-02-01, so the plausible window does not follow today's date.
FILE_TIME = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc).timestamp()


from marketing_assets_tests.test_landing import con  # noqa: E402,F401  (the same UTC DuckDB connection fixture)


def write_text(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    os.utime(path, (FILE_TIME, FILE_TIME))
    return path


def ingest(con, root: Path, table: str, bounds: DateBounds | None = None):
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.utime(p, (FILE_TIME, FILE_TIME))
    result = ingest_table(con, contract_from_model(table, SOURCE_MODELS[table]), root, "sources", "_rejected", bounds)
    staged = con.execute(f"SELECT * FROM sources.{table} ORDER BY source_file, source_line").df()
    rejected = con.execute("SELECT * FROM sources._rejected ORDER BY source_file, source_line").df()
    for f in result.files:
        assert f.rows_read == f.rows_staged + f.rows_quarantined + f.duplicates_collapsed, f
        assert f.rows_read == count_landing_rows(con, root / f.source_file), f
    return result, staged, rejected


def reasons(rejected) -> list[tuple[int, str, str]]:
    return [(int(r.source_line), r.column_name, r.reason) for r in rejected.itertuples()]


def opp_rows(n: int) -> str:
    return "".join(f"o{i},a{i},{i}.5,2026-01-0{1 + i % 9},SMB\n" for i in range(n))


# ------------------------------------------------------------------ 1. row-level tolerance


def test_truncated_last_line_is_quarantined_and_the_rest_loads(tmp_path, con):
    write_text(tmp_path, "crm/opportunities.csv", ",".join(OPP_HEADER) + "\n" + opp_rows(3) + "O00000806,A0000468,5167.737787")
    result, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_id"].tolist() == ["o0", "o1", "o2"]
    assert reasons(rejected) == [(5, "(record)", "malformed_record")]
    assert "3 field(s)" in rejected.iloc[0].detail and "O00000806" not in rejected.iloc[0].detail
    assert result.quarantine_by_reason == {"malformed_record": 1}


def test_extra_fields_are_quarantined_not_a_file_failure(tmp_path, con):
    write_text(tmp_path, "crm/opportunities.csv", ",".join(OPP_HEADER) + "\n" + opp_rows(1) + "o9,a1,5,2026-01-01,SMB,extra,x\n" + opp_rows(2)[len(opp_rows(1)):])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_id"].tolist() == ["o0", "o1"]
    assert reasons(rejected) == [(3, "(record)", "malformed_record")]


def test_unterminated_quote_costs_one_record(tmp_path, con):
    body = 'o0,a0,1,2026-01-01,SMB\no1,"a1,2,2026-01-02,SMB\no2,a2,3,2026-01-03,SMB\no3,a3,4,2026-01-04,SMB\n'
    write_text(tmp_path, "crm/opportunities.csv", ",".join(OPP_HEADER) + "\n" + body)
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_id"].tolist() == ["o0", "o2", "o3"]
    assert staged["source_line"].tolist() == [2, 4, 5]
    assert reasons(rejected) == [(3, "(record)", "malformed_record")]


def test_latin1_byte_is_quarantined_without_leaking_the_row(tmp_path, con):
    rows = "c1,a1,ann@example.com,Ann,Lee,2026-01-01\n".encode() + "c2,a1,mia.allen@example.com,Mïa,Allen,2026-01-02\n".encode("latin-1")
    rows += "c3,a2,bob@example.com,Bob,Roe,2026-01-03\n".encode()
    write_text(tmp_path, "crm/contacts.csv", (",".join(CONTACT_HEADER) + "\n").encode() + rows)
    _, staged, rejected = ingest(con, tmp_path, "crm_contacts")
    assert staged["contact_id"].tolist() == ["c1", "c3"]
    assert reasons(rejected) == [(3, "(record)", "invalid_encoding")]
    text = " ".join(str(v) for v in rejected.iloc[0].tolist())
    assert "mia.allen" not in text and "Allen" not in text and "c2" not in text


def test_multiline_quoted_field_keeps_physical_start_lines(tmp_path, con):
    body = 'c1,a1,ann@example.com,"Ann\nMarie",Lee,2026-01-01\nc2,a1,bob@example.com,Bob,Roe,yesterday\n'
    write_text(tmp_path, "crm/contacts.csv", ",".join(CONTACT_HEADER) + "\n" + body)
    _, staged, rejected = ingest(con, tmp_path, "crm_contacts")
    assert staged["source_line"].tolist() == [2]
    assert reasons(rejected) == [(4, "created_at", "unparseable_value")]


def test_zero_byte_optional_file_is_an_empty_table(tmp_path, con):
    write_text(tmp_path, "erp/orders.csv", b"")
    result, staged, rejected = ingest(con, tmp_path, "erp_orders")
    assert staged.empty and rejected.empty
    assert [(f.source_file, f.rows_read) for f in result.files] == [("erp/orders.csv", 0)]


def test_header_only_file_is_an_empty_table(tmp_path, con):
    write_text(tmp_path, "crm/opportunities.csv", ",".join(OPP_HEADER) + "\n")
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged.empty and rejected.empty


def test_duplicated_header_column_fails_the_file_naming_it(tmp_path, con):
    write_text(tmp_path, "crm/opportunities.csv", ",".join([*OPP_HEADER, "Account_ID"]) + "\n" + "o1,a1,5,2026-01-01,SMB,a2\n")
    with pytest.raises(LandingError, match=r"crm/opportunities\.csv.*Account_ID.*more than once"):
        ingest(con, tmp_path, "crm_opportunities")


def test_header_breaking_the_contract_names_file_without_row_content(tmp_path, con):
    write_text(tmp_path, "crm/contacts.csv", "contact_id,email\nc1,secret.person@example.com\n")
    with pytest.raises(LandingError) as err:
        ingest(con, tmp_path, "crm_contacts")
    assert "crm/contacts.csv" in str(err.value) and "account_id" in str(err.value)
    assert "secret.person" not in str(err.value)


# ------------------------------------------------------------------ 2. strict values


@pytest.mark.parametrize("quantity", ["12.7", "1_000", "0x1F", "-0.4", "1e3", "nan"])
def test_integers_reject_non_integers(tmp_path, con, quantity):
    write_csv(tmp_path, "erp/orders.csv", ORDER_HEADER, [["so1", "1", "2026-01-05", "sale", "cu1", "p1", quantity, "20"],
                                                         ["so2", "1", "2026-01-05", "sale", "cu1", "p1", "12.0", "20"]])
    _, staged, rejected = ingest(con, tmp_path, "erp_orders")
    assert staged["quantity"].tolist() == [12]
    assert reasons(rejected) == [(2, "quantity", "unparseable_value")]


def test_parquet_integers_reject_fractions(tmp_path, con):
    (tmp_path / "erp").mkdir()
    pd.DataFrame({"snapshot_date": ["2026-01-31", "2026-01-31"], "product_id": ["p1", "p2"], "location_id": ["w1", "w1"],
                  "quantity_on_hand": [5.0, 12.7]}).to_parquet(tmp_path / "erp" / "inventory.parquet", index=False)
    _, staged, rejected = ingest(con, tmp_path, "erp_inventory")
    assert staged["quantity_on_hand"].tolist() == [5]
    assert reasons(rejected) == [(2, "quantity_on_hand", "unparseable_value")]


@pytest.mark.parametrize(
    ("value", "reason"),
    [("infinity", "unparseable_value"), ("epoch", "unparseable_value"), ("-infinity", "unparseable_value"),
     ("1985-06-01", "implausible_date"), ("2099-01-01T00:00:00Z", "implausible_date"), ("2027-03-01", "implausible_date")],
)
def test_timestamps_reject_specials_and_implausible_instants(tmp_path, con, value, reason):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [["o1", "a1", "5", "2026-01-05", "SMB"], ["o2", "a1", "5", value, "SMB"]])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities", DateBounds(dt.date(1990, 1, 1), 365))
    assert staged["opportunity_id"].tolist() == ["o1"]
    assert reasons(rejected) == [(3, "opportunity_created_date", reason)]


def test_plausible_window_follows_the_newest_file_not_today(tmp_path, con):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [["o1", "a1", "5", "2026-12-30", "SMB"]])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities", DateBounds(dt.date(1990, 1, 1), 30))
    assert staged.empty and reasons(rejected) == [(2, "opportunity_created_date", "implausible_date")]


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "1_000"])
def test_floats_reject_non_finite_values(tmp_path, con, value):
    header = ["segments_date", "customer_id", "campaign_id", "metrics_cost_micros", "metrics_conversions"]
    write_csv(tmp_path, "ads/google_ads.csv", header, [["2026-01-05", "x", "c1", "1000", "2.5"], ["2026-01-06", "x", "c1", "1000", value]])
    _, staged, rejected = ingest(con, tmp_path, "ads_google")
    assert staged["metrics_conversions"].tolist() == [2.5]
    assert reasons(rejected) == [(3, "metrics_conversions", "unparseable_value")]


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_money_rejects_non_finite_values(tmp_path, con, value):
    write_csv(tmp_path, "crm/opportunities.csv", OPP_HEADER, [["o1", "a1", value, "2026-01-05", "SMB"]])
    _, staged, rejected = ingest(con, tmp_path, "crm_opportunities")
    assert staged.empty and reasons(rejected) == [(2, "pipeline_amount", "unparseable_value")]


def test_text_values_are_trimmed_of_spaces_and_tabs(tmp_path, con):
    write_csv(tmp_path, "crm/contacts.csv", CONTACT_HEADER, [["c1 ", "\ta1", "\tann@example.com ", " Ann\t", "Lee", "2026-01-01"]])
    _, staged, rejected = ingest(con, tmp_path, "crm_contacts")
    assert rejected.empty
    assert staged[["contact_id", "account_id", "email", "first_name"]].values.tolist() == [["c1", "a1", "ann@example.com", "Ann"]]


# ------------------------------------------------------------------ 3. paths


@pytest.mark.parametrize("name", ["opportunities*.csv", "opportunities[a].csv", "opportunities?.csv", "opportunities{x}.csv"])
def test_glob_characters_in_a_file_name_are_literal(tmp_path, con, name):
    write_csv(tmp_path, "crm/opportunities_2025.csv", OPP_HEADER, [["o1", "a1", "5", "2026-01-05", "SMB"], ["o2", "a1", "6", "2026-01-05", "SMB"]])
    write_csv(tmp_path, "crm/opportunitiesa.csv", OPP_HEADER, [["o3", "a1", "7", "2026-01-05", "SMB"]])
    write_csv(tmp_path, f"crm/{name}", OPP_HEADER, [["o9", "a1", "9", "2026-01-05", "SMB"]])
    result, staged, _ = ingest(con, tmp_path, "crm_opportunities")
    assert {f.source_file: f.rows_read for f in result.files}[f"crm/{name}"] == 1
    assert sorted(staged["opportunity_id"]) == ["o1", "o2", "o3", "o9"]
    assert count_landing_rows(con, tmp_path / "crm" / name) == 1


def test_glob_characters_in_a_parquet_name_are_literal(tmp_path, con):
    (tmp_path / "erp").mkdir()
    frame = pd.DataFrame({"snapshot_date": ["2026-01-31"], "product_id": ["p1"], "location_id": ["w1"], "quantity_on_hand": [5]})
    frame.to_parquet(tmp_path / "erp" / "inventory_a.parquet", index=False)
    frame.to_parquet(tmp_path / "erp" / "inventory*.parquet", index=False)
    result, staged, _ = ingest(con, tmp_path, "erp_inventory")
    assert [f.rows_read for f in result.files] == [1, 1]
    assert count_landing_rows(con, tmp_path / "erp" / "inventory*.parquet") == 1


def test_link_leaving_the_landing_zone_is_refused_without_printing_the_target(tmp_path, con):
    outside = tmp_path / "outside.csv"
    outside.write_text("salary,ssn\n100000,123-45-6789\n")
    root = tmp_path / "landing"
    write_csv(root, "crm/opportunities.csv", OPP_HEADER, [["o1", "a1", "5", "2026-01-05", "SMB"]])
    (root / "crm" / "opportunities_link.csv").symlink_to(outside)
    with pytest.raises(LandingError, match="opportunities_link.csv.*outside the landing zone") as err:
        ingest(con, root, "crm_opportunities")
    assert "salary" not in str(err.value) and "123-45" not in str(err.value) and "outside.csv" not in str(err.value)


def test_link_inside_the_landing_zone_is_read(tmp_path, con):
    write_csv(tmp_path, "archive/opps.csv", OPP_HEADER, [["o1", "a1", "5", "2026-01-05", "SMB"]])
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "opportunities.csv").symlink_to(tmp_path / "archive" / "opps.csv")
    _, staged, _ = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_id"].tolist() == ["o1"]


def test_recount_is_independent_of_duckdb(tmp_path, con):
    path = write_text(tmp_path, "crm/opportunities.csv", ",".join(OPP_HEADER) + '\no1,a1,5,2026-01-05,"S\nMB"\n\no2,a1,5,2026-01-05,SMB\n')
    assert count_landing_rows(con, path) == 2
    assert discover_files(tmp_path, contract_from_model("crm_opportunities", SOURCE_MODELS["crm_opportunities"])) == [path]


# ------------------------------------------------------------------ through the source assets


def _run_sources(tmp_path, landing):
    import dagster as dg

    from marketing_assets_tests.test_sources import run_sources

    result = run_sources(tmp_path, landing, selection=dg.AssetSelection.groups("sources"), raise_on_error=False)
    return result, " ".join(str(e) for e in result.all_events)


def _run_with_only_rejects(tmp_path, landing) -> str:
    """Run the sources: the run succeeds and no check fails but the quarantine share; the events as text."""
    result, events = _run_sources(tmp_path, landing)
    assert result.success
    failed = {(e.asset_key.path[-1], e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed <= {("quarantine", "quarantine_share")}
    return events


def test_damaged_crm_files_load_with_rejects_and_conservation_holds(tmp_path, minimal_landing):
    with open(minimal_landing / "crm" / "opportunities.csv", "ab") as fh:
        fh.write(b"O00000806,A0000468,5167.737787")
    with open(minimal_landing / "crm" / "contacts.csv", "ab") as fh:
        fh.write("c3,a1,mia.allen@example.com,2026-01-01\n".encode().replace(b"mia", b"m\xefa"))
    events = _run_with_only_rejects(tmp_path, minimal_landing)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT table_name, source_line, reason FROM sources.quarantine ORDER BY ALL").fetchall()
        staged = con.execute("SELECT count(*) FROM sources.crm_opportunities").fetchone()[0]
    assert rows == [("crm_contacts", 4, "invalid_encoding"), ("crm_opportunities", 4, "malformed_record")]
    assert staged == 2
    assert "allen@" not in events and "A0000468" not in events


def test_glob_named_file_is_one_file_for_the_asset_and_its_recount(tmp_path, minimal_landing):
    write_csv(minimal_landing, "crm/opportunities*.csv", OPP_HEADER, [["o9", "a1", "9", "2026-01-05", "SMB"]])
    result, _ = _run_sources(tmp_path, minimal_landing)
    assert result.success
    conservation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "row_conservation" and e.asset_key.path[-1] == "crm_opportunities")
    assert conservation.passed
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        per_file = dict(con.execute("SELECT source_file, rows_read FROM sources._ingest_log WHERE table_name = 'crm_opportunities'").fetchall())
    assert per_file == {"crm/opportunities*.csv": 1, "crm/opportunities.csv": 2}


def test_link_leaving_the_zone_fails_the_asset_without_the_target(tmp_path, minimal_landing):
    outside = tmp_path / "payroll.csv"
    outside.write_text("employee_email,salary\nceo@example.com,900000\n")
    (minimal_landing / "crm" / "contacts_extra.csv").symlink_to(outside)
    result, events = _run_sources(tmp_path, minimal_landing)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "crm/contacts_extra.csv" in str(failure.event_specific_data.error)
    assert "ceo@" not in events and "salary" not in events and "payroll" not in events


def test_file_without_header_fails_without_quoting_its_first_row(tmp_path, con):
    write_text(tmp_path, "crm/contacts.csv", "c1,a1,jane.doe@example.com,Jane,Doe,2026-01-01\n")
    with pytest.raises(LandingError, match="crm/contacts.csv: missing required column") as err:
        ingest(con, tmp_path, "crm_contacts")
    assert "jane.doe" not in str(err.value)


def test_aliased_and_semicolon_delimited_headers_still_map(tmp_path, con):
    header = ["segments.date", "customer.id", "campaign.id", "metrics.cost_micros", "metrics.conversions"]
    path = tmp_path / "ads" / "google_ads.csv"
    path.parent.mkdir()
    path.write_text(";".join(header) + '\n2026-01-05;x;c1;1000;"2.5"\n2026-01-06;x;"c;2";7;1\n')
    _, staged, rejected = ingest(con, tmp_path, "ads_google")
    assert rejected.empty
    assert staged[["campaign_id", "metrics_cost_micros", "source_line"]].values.tolist() == [["c1", 1000, 2], ["c;2", 7, 3]]


def test_corrupt_parquet_fails_naming_the_file_without_a_chained_reader_error(tmp_path, con):
    write_text(tmp_path, "erp/inventory.parquet", b"PAR1 not really parquet, jane.doe@example.com")
    with pytest.raises(LandingError, match="erp/inventory.parquet: cannot be read as Parquet") as err:
        ingest(con, tmp_path, "erp_inventory")
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert "jane.doe" not in str(err.value)


def test_implausible_and_special_dates_are_quarantined_not_a_blocked_contract(tmp_path, minimal_landing):
    with open(minimal_landing / "crm" / "opportunities.csv", "a") as fh:
        fh.write("o3,a1,10,infinity,SMB\no4,a1,10,2099-01-01,SMB\no5,a1,12.5,epoch,SMB\n")
    _run_with_only_rejects(tmp_path, minimal_landing)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT source_line, column_name, reason FROM sources.quarantine ORDER BY ALL").fetchall()
    assert rows == [
        (4, "opportunity_created_date", "unparseable_value"),
        (5, "opportunity_created_date", "implausible_date"),
        (6, "opportunity_created_date", "unparseable_value"),
    ]


# ------------------------------------------------------------------ files read concurrently


def test_files_read_on_worker_cursors_keep_the_callers_time_zone(tmp_path):
    """Each file is read on a cursor of its own; a time without an offset is still read in the caller's time zone."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    con.execute("SET threads = 2")
    for name in ("opportunities_a.csv", "opportunities_b.csv"):
        write_csv(tmp_path, f"crm/{name}", OPP_HEADER, [[f"o_{name[-5]}", "a1", "5", "2026-01-05 10:00:00", "SMB"]])
    _, staged, _ = ingest(con, tmp_path, "crm_opportunities")
    assert staged["opportunity_created_date"].astype(str).tolist() == ["2026-01-05 15:00:00"] * 2  # 10:00 EST = 15:00 UTC
    assert con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE '_landing_%'").fetchone() == (0,)


def test_the_first_bad_file_in_reading_order_is_the_one_reported(tmp_path, con):
    con.execute("SET threads = 2")
    write_text(tmp_path, "crm/opportunities_a.csv", "opportunity_id,account_id\no1,a1\n")
    write_text(tmp_path, "crm/opportunities_b.csv", "opportunity_id\no2\n")
    with pytest.raises(MissingColumnsError) as err:
        ingest(con, tmp_path, "crm_opportunities")
    assert err.value.file == "crm/opportunities_a.csv"
