"""Ingestion on Spark: the landing-fault cases of test_landing.py / test_landing_faults.py ingested by DuckDB and by a
SparkConnection give the same staged and quarantine tables (compare_relations), the same per-file counts and the same
errors naming the file. The Spark session is the shared ``spark`` fixture (conftest)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.landing import LandingError, MissingColumnsError, contract_from_model, count_landing_rows, ingest_table
from marketing_assets.lib.parity import compare_relations
from marketing_assets.lib.spark_engine import SCRATCH_DIR, SparkConnection
from marketing_assets.schemas import SOURCE_MODELS

FILE_TIME = dt.datetime(2026, 2, 1, tzinfo=dt.timezone.utc).timestamp()  # the plausible window does not follow today
OPP = "opportunity_id,account_id,pipeline_amount,opportunity_created_date,sales_segment,is_won\n"
CONTACT = "contact_id,account_id,email,first_name,last_name,created_at\n"
ORDER = "order_id,line_number,order_date,transaction_type,customer_id,product_id,quantity,amount\n"


def _inventory(rows: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buffer, index=False)
    return buffer.getvalue()


CASES = {
    "opportunity_rules_and_broken_records": ("crm_opportunities", {
        "crm/opportunities.csv": OPP
        + "o1,a1,100.25,2026-01-05T10:00:00Z,SMB,true\n"
        + "o2,a1,100.25,2026-13-45,SMB,true\no3,a1,12,5a,2026-01-05,SMB\no4,a1,100,2026-01-05,SMB,maybe\n"
        + "o5,a1,-3.5,2026-01-05,SMB,true\n,a1,100,2026-01-05,SMB,true\no6,  ,100,2026-01-05,SMB,true\no7,a1,100,,SMB,true\n"
        + "o1,a9,5,2026-01-06,SMB,false\no1,a1,100.25,2026-01-05T10:00:00Z,SMB,true\n"  # conflicting, then exact duplicate
        + 'o8,"a\n8",7,2026-01-07 08:30:00,Enterprise,\n\no9,a1,infinity,epoch,SMB,\no10,a1,1,1985-06-01,SMB,\n'
        + 'o11,"a1,2,2026-01-02,SMB\no12,a1,3,2021-05-10T22:25:39+02:00,SMB,F\n"",a1,4,2026-01-04,SMB,yes\n'
        + "o13,a1,5,2026-01-05,SMB,true,extra\nO00000806,A0000468,5167.737787",  # extra field; truncated last line
        "crm/opportunities_b.csv": "\ufeffSales_Segment,Opportunity_Created_Date,Pipeline_Amount,ACCOUNT_ID,Opportunity_ID,currency\n"
        + "Enterprise,2026-02-01,0.0000000001,a2,o20,EUR\nSMB,2026-01-05T10:00:00Z,999,a1,o1,USD\n"  # only required columns
        + "SMB,2026-01-05T10:00:00Z,100.25,a1,o13,\n",
        "crm/opportunities_c.csv": OPP,  # header only
    }),
    "contacts_encoding_pii_and_spaces": ("crm_contacts", {
        "crm/contacts.csv": CONTACT.encode()
        + "c1,a1,ann@example.com,Ann,Lee,2026-01-01\n".encode()
        + "c2,a1,mia.allen@example.com,Mïa,Allen,2026-01-02\n".encode("latin-1")
        + 'c3,a2,bob@example.com,"Bob\nby",Roe,yesterday\nc4 ,\ta1,\tcy@example.com , Cy\t,"",2026-01-03\n'.encode()
        + "c5,a3,,Eve,Doe,2026-01-04 10:00\nc6,a3,x@example.com,Él,\"O\"\"Hara\",2026-01-04\n".encode(),
    }),
    "orders_strict_integers_and_allowed_values": ("erp_orders", {
        "erp/orders.csv": ORDER
        + "".join(f"so{i},1,2026-01-05,sale,cu1,p1,{q},20\n" for i, q in enumerate(["12.7", "1_000", "0x1F", "-0.4", "1e3", "nan", "12.0", "+7"]))
        + "so9,1,2026-01-05,refund,cu1,p1,1,10\nso10,2,2026-01-05 00:00:00,sale,cu1,p1,2,20.00\n",
        "erp/orders_empty.csv": "",
    }),
    "inventory_parquet": ("erp_inventory", {
        "erp/inventory.parquet": _inventory({"snapshot_date": pd.to_datetime(["2026-01-31", "2026-01-31", "2026-02-28", "2026-01-31"]).date,
                                             "product_id": ["p1", "p2", "p1", "p3"], "location_id": ["w1", "w1", "w1", None],
                                             "quantity_on_hand": [5.0, 12.7, -1.0, 7.0], "inventory_value": [50.0, 0.0, 70.0, 1e20]}),
        "erp/inventory*.parquet": _inventory({"snapshot_date": pd.to_datetime(["2026-01-31 00:00:00"]),
                                              "product_id": ["p1"], "location_id": ["w1"], "quantity_on_hand": [5]}),
    }),
    # 18 columns: a temporary table of their checked rows once ran Spark out of heap (constraint propagation, SPARK_CONF)
    "web_sessions_wide_table": ("web_sessions", {
        "web/sessions.csv": "session_id,client_id,session_start,landing_page,page_referrer,utm_source,utm_medium,utm_campaign,"
        "utm_content,utm_term,gclid,fbclid,device_category,country,pageviews,engagement_time_seconds,conversions,form_email\n"
        "S1,1964039835.17,2026-01-04T04:00:52Z,/pricing,https://www.bing.com/,,,,,,,,mobile,CA,5,27.63,0,\n"
        "S2,293291327.17,2026-01-04T09:39:06Z,/login,,google,cpc,brand,,,g1,,desktop,US,-4,39.56,0,ann@example.com\n"
        "S3,415588410.17,2026-01-04 14:26:14,/product,,,,,,,,,mobile,US,1,1e3,2.0,\n"
        "S1,1964039835.17,2026-01-04T04:00:52Z,/pricing,https://www.bing.com/,,,,,,,,mobile,CA,5,27.63,0,\n",
    }),
    "google_ads_aliases_semicolons_and_floats": ("ads_google", {
        "ads/google_ads.csv": "segments.date;customer.id;campaign.id;metrics.cost_micros;metrics.conversions\n"
        + '2026-01-05;x;c1;1000;"2.5"\n2026-01-06;x;"c;2";7;1\n2026-01-07;x;c3;7;NaN\n2026-01-08;x;c4;7;-Infinity\n'
        + "2026-01-09;x;c5;7;1_000\n2026-01-10;x;c6;7;.5e1\n",
    }),
}


def _land(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))
        os.utime(path, (FILE_TIME, FILE_TIME))


@pytest.fixture
def engines(spark, tmp_path):
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    con = SparkConnection(spark, tmp_path / "spark_warehouse")
    yield duck, con
    con.close()
    duck.close()


def _spark_table(con: SparkConnection, table: str) -> str:
    return f"read_parquet('{con.table_path('sources', table)}/*.parquet')"


@pytest.mark.parametrize("case", list(CASES))
def test_spark_ingestion_stages_and_quarantines_as_duckdb_does(engines, tmp_path, case):
    duck, con = engines
    table, files = CASES[case]
    root = tmp_path / "landing"
    _land(root, files)
    contract = contract_from_model(table, SOURCE_MODELS[table])
    expected = ingest_table(duck, contract, root, "sources", "_rejected")
    got = ingest_table(con, contract, root, "sources", "_rejected")

    assert got == expected
    assert expected.rows_staged and expected.rows_quarantined  # the case exercises both
    for f in got.files:  # conservation, against the independent recount
        assert f.rows_read == f.rows_staged + f.rows_quarantined + f.duplicates_collapsed == count_landing_rows(con, root / f.source_file), f
    for name in (table, "_rejected"):
        difference = compare_relations(duck, name, f"sources.{name}", _spark_table(con, name), key=["source_file", "source_line"])
        assert difference.same, difference
        assert difference.rows_left == difference.rows_right
        types = {r[0]: r[1] for r in duck.execute(f"DESCRIBE sources.{name}").fetchall()}
        assert {r[0]: r[1] for r in duck.execute(f"DESCRIBE SELECT * FROM {_spark_table(con, name)}").fetchall()} == types
    assert not list((tmp_path / "spark_warehouse" / SCRATCH_DIR).iterdir())  # the landing copies are removed


def test_spark_ingestion_quarantine_rows_are_the_hand_checked_ones(engines, tmp_path):
    """The rows compared above are the expected ones, not two equal mistakes (a few hand-checked quarantine rows)."""
    _, con = engines
    table, files = CASES["contacts_encoding_pii_and_spaces"]
    _land(tmp_path / "landing", files)
    ingest_table(con, contract_from_model(table, SOURCE_MODELS[table]), tmp_path / "landing", "sources", "_rejected")
    rows = duckdb.sql(f"SELECT source_line, column_name, reason, raw_record FROM {_spark_table(con, '_rejected')} ORDER BY source_line").fetchall()
    assert [r[:3] for r in rows] == [(3, "(record)", "invalid_encoding"), (4, "created_at", "unparseable_value")]
    assert rows[1][3] == ('{"contact_id":"c3","account_id":"a2","email":"***","first_name":"***","last_name":"***",'
                          '"created_at":"yesterday","lifecycle_stage":null,"lead_date":null,"mql_date":null,"sql_date":null,'
                          '"customer_date":null,"utm_source":null,"utm_medium":null,"utm_campaign":null}')
    staged = duckdb.sql(f"SELECT contact_id, account_id, email, last_name, source_line FROM {_spark_table(con, table)} ORDER BY source_line").fetchall()
    assert staged == [("c1", "a1", "ann@example.com", "Lee", 2), ("c4", "a1", "cy@example.com", None, 6),
                      ("c5", "a3", None, "Doe", 7), ("c6", "a3", "x@example.com", 'O"Hara', 8)]


def test_spark_ingests_parquet_with_nanosecond_timestamps_as_duckdb_does(engines, tmp_path):
    """Spark's own Parquet reader refuses TIMESTAMP(NANOS) columns (pandas writes them by default). Landing Parquet is
    read on the driver by DuckDB into the scratch folder, so a nanosecond export stages on Spark as on DuckDB: the
    instants cut to the microsecond, the same rows, none quarantined for its timestamp."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    duck, con = engines
    starts = pa.array([1_767_225_600_123_456_789, 1_767_312_000_000_000_001, None], type=pa.timestamp("ns", tz="UTC"))
    sessions = pa.table({"session_id": ["S1", "S2", "S3"], "client_id": ["c1", "c2", "c3"], "session_start": starts})
    root = tmp_path / "landing"
    (root / "web").mkdir(parents=True)
    pq.write_table(sessions, root / "web" / "sessions.parquet")
    os.utime(root / "web" / "sessions.parquet", (FILE_TIME, FILE_TIME))
    assert pq.read_schema(root / "web" / "sessions.parquet").field("session_start").type.unit == "ns"  # the case is what it says

    contract = contract_from_model("web_sessions", SOURCE_MODELS["web_sessions"])
    expected = ingest_table(duck, contract, root, "sources", "_rejected")
    got = ingest_table(con, contract, root, "sources", "_rejected")
    assert got == expected
    assert (expected.rows_staged, expected.rows_quarantined) == (2, 1)  # S3: no session start (required)
    staged = duckdb.sql(f"SELECT session_id, session_start FROM {_spark_table(con, 'web_sessions')} ORDER BY session_id").fetchall()
    assert staged == [("S1", dt.datetime(2026, 1, 1, 0, 0, 0, 123456)), ("S2", dt.datetime(2026, 1, 2, 0, 0, 0))]
    difference = compare_relations(duck, "web_sessions", "sources.web_sessions", _spark_table(con, "web_sessions"), key=["source_file", "source_line"])
    assert difference.same, difference


ERRORS = {
    "missing_required_column": ("crm_contacts", {"crm/contacts.csv": "contact_id,email\nc1,secret.person@example.com\n"}, MissingColumnsError),
    "duplicated_header_column": ("crm_opportunities", {"crm/opportunities.csv": OPP.strip() + ",Account_ID\no1,a1,5,2026-01-01,SMB,true,a2\n"}, LandingError),
    "corrupt_parquet": ("erp_inventory", {"erp/inventory.parquet": b"PAR1 not really parquet, jane.doe@example.com"}, LandingError),
    "no_header": ("crm_contacts", {"crm/contacts.csv": "c1,a1,jane.doe@example.com,Jane,Doe,2026-01-01\n"}, MissingColumnsError),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_spark_ingestion_fails_a_file_as_duckdb_does(engines, tmp_path, case):
    duck, con = engines
    table, files, error = ERRORS[case]
    _land(tmp_path / "landing", files)
    contract = contract_from_model(table, SOURCE_MODELS[table])
    messages = []
    for engine in (duck, con):
        with pytest.raises(error) as err:
            ingest_table(engine, contract, tmp_path / "landing", "sources", "_rejected")
        assert err.value.__cause__ is None
        messages.append(str(err.value))
    if case == "corrupt_parquet":  # the readers' own words differ: the file, the table and what failed do not
        assert messages[1].split(" (")[0] == messages[0].split(" (")[0] == "erp/inventory.parquet: cannot be read as Parquet for table erp_inventory"
    else:
        assert messages[1] == messages[0]
    assert next(iter(files)) in messages[0] and "secret.person" not in messages[0] and "jane.doe" not in messages[0]


def test_a_cursor_shares_the_warehouse_and_closes_only_its_own_temporary_tables(engines):
    """The source checks recount landing files on ``con.cursor()`` in a thread and close it afterwards."""
    _, con = engines
    con.execute("CREATE SCHEMA IF NOT EXISTS sources")
    con.execute("CREATE TABLE sources.t AS SELECT 1 AS a")
    con.execute("CREATE TEMP TABLE mine AS SELECT 2 AS b")
    cursor = con.cursor()
    cursor.execute("CREATE TEMP TABLE its AS SELECT 3 AS c")
    assert cursor.execute("SELECT a FROM sources.t").fetchall() == [(1,)]
    cursor.close()
    assert con.execute("SELECT b FROM mine").fetchall() == [(2,)]
    with pytest.raises(Exception, match="its"):
        con.execute("SELECT * FROM its").fetchall()
