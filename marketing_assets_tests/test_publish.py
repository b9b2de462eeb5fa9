"""Pseudonyms, PII scanning and atomic extract files."""

import hashlib
import hmac
import random
import time
import uuid

import pandas as pd
import pytest

from marketing_assets.lib.publish import (
    STAGING_DIR,
    AuditFailed,
    AuditResult,
    PseudonymKeyMissing,
    _looks_like_phone,
    audit_no_pii,
    audit_published_columns,
    audit_report_html,
    extract_files,
    find_pii,
    pseudonymise,
    resolve_key,
    write_extract,
)
from marketing_assets.lib.reports import write_report


def test_pseudonyms_are_keyed_stable_and_null_safe():
    ids = pd.Series(["C1", "C2", "C1", None])
    a = pseudonymise(ids, b"secret", prefix="c_")
    assert a[0] == a[2] != a[1] and a[3] is None
    assert a[0] == "c_" + hmac.new(b"secret", b"C1", hashlib.sha256).hexdigest()[:16]
    assert pseudonymise(ids, b"other")[0] != a[0].removeprefix("c_")


def test_key_is_required_outside_demo_mode():
    with pytest.raises(PseudonymKeyMissing, match="MARKETING_PSEUDONYM_KEY"):
        resolve_key(None, demo_mode=False)
    assert resolve_key("k", demo_mode=False) == b"k"
    assert resolve_key(None, demo_mode=True)


def test_pii_scan_finds_emails_and_phones_but_not_ids_or_amounts():
    frame = pd.DataFrame(
        {
            "note": ["call +44 20 7946 0958", "ok", None],
            "who": ["jane.doe@acme.com", "c_1a2b3c", "x"],
            "amount": [12345678.9, 1.0, 2.0],
            "amount_text": ["12345678901.23", "-98765432109", "0.000000001"],
            "id": ["CUST-0000001", "2026-11-23", "A0000474"],
            "when": ["2026-11-23T10:00:00", "2026-11-23 10:00", None],
        }
    )
    found = find_pii(frame)
    assert set(found) == {"note", "who"}
    assert find_pii(pd.DataFrame({"phone": ["(555) 123-4567", "020 7946 0958"]})) == {"phone": ["(5***", "02***"]}
    assert all("@" not in s for s in found["who"])


def test_extract_files_round_trip_and_leave_no_temp_files(tmp_path):
    frame = pd.DataFrame({"month": pd.to_datetime(["2026-01-01", "2026-02-01"]), "revenue": [10.5, 20.25], "channel": ["Email", None]})
    paths = write_extract(frame, "executive_kpis", tmp_path)
    back = pd.read_parquet(paths["parquet"])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    csv = pd.read_csv(paths["csv"], parse_dates=["month"])
    assert csv["revenue"].tolist() == [10.5, 20.25]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["executive_kpis.csv", "executive_kpis.parquet"]
    assert paths["csv"].stat().st_mode & 0o044  # readable by a BI tool running as another user


def test_pii_scan_finds_no_phone_in_100k_random_uuids_quickly():
    rng = random.Random(20261204)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(100_000)]
    frame = pd.DataFrame({"run_id": ids, "run_id_upper": [i.upper() for i in ids], "in_text": [f"run {i} finished" for i in ids]})
    start = time.perf_counter()
    assert find_pii(frame) == {}
    assert time.perf_counter() - start < 5.0
    # the id the scan used to flag (digit groups 8751-4850-9154 read as a phone number)
    assert not _looks_like_phone("2876cebc-8751-4850-9154-efce22db7050")


def test_pii_scan_ignores_hashes_pseudonyms_dates_and_numbers():
    rng = random.Random(7)
    blobs = [rng.randbytes(24) for _ in range(3_000)]
    hashes = [h(b).hexdigest() for b in blobs for h in (hashlib.md5, hashlib.sha1, hashlib.sha256)]
    frame = pd.DataFrame(
        {
            "hash": hashes,
            "hash_upper": [h.upper() for h in hashes],
            "pseudonym": pseudonymise(pd.Series(range(len(hashes))), b"k", prefix="c_"),
            "pseudonym_bare": pseudonymise(pd.Series(range(len(hashes))), b"k"),
        }
    )
    assert find_pii(frame) == {}
    identifiers = [
        "2026-11-23T10:00:00+00:00", "2026-11-23 10:00:00.123456", "2026-11-23 15:40 UTC", "2025-07 2025-08 2025-09 2025-10",
        "12345678901.23", "-98765432109", "1.2345678901e+20", "0.000000001", "campaign 23851190012", "4155550100",
        "CUST-0000001-2026-11", "run 2876cebc-8751-4850-9154-efce22db7050 at 2026-11-23T10:00:00Z",
    ]
    assert find_pii(pd.DataFrame({"text": identifiers})) == {}


@pytest.mark.parametrize(
    "value",
    [
        "+1 415 555 0100", "(415) 555-0100", "+44 20 7946 0958", "415-555-0100", "call 415-555-0100.", "+14155550100",
        "020 7946 0958", "run 2876cebc-8751-4850-9154-efce22db7050, call +1 415 555 0100",
        "jane.doe@acme.com", "J.Doe+news@Example.co.uk", "owner: ops@marketing-assets.io (2026-11-23)",
    ],
)
def test_pii_scan_finds_real_phones_and_emails(value):
    found = find_pii(pd.DataFrame({"text": ["ok", value, "2876cebc-8751-4850-9154-efce22db7050"]}))
    assert list(found) == ["text"] and len(found["text"]) == 1
    assert value[:2] + "***" == found["text"][0]


# ------------------------------------------------------------------------------------ write-audit-publish


def _failing_audit(files):
    return AuditResult("always_fails", False, f"{', '.join(p.name for p in files.values())} rejected", {})


def test_failed_audit_keeps_the_published_extract_and_empties_staging(tmp_path):
    old = pd.DataFrame({"channel": ["Email"], "revenue": [1.0]})
    paths = write_extract(old, "funnel", tmp_path)
    before = {k: p.read_bytes() for k, p in paths.items()}
    with pytest.raises(AuditFailed, match=r"extract funnel not published: audit no_pii_in_files failed: PII-like values in funnel\.parquet:channel") as err:
        write_extract(pd.DataFrame({"channel": ["jane.doe@acme.com"], "revenue": [2.0]}), "funnel", tmp_path, audits=[audit_no_pii])
    assert "jane" not in str(err.value)
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert not (tmp_path / STAGING_DIR).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["funnel.csv", "funnel.parquet"]
    # the staged file was audited under its published name, and a passing write replaces the files
    with pytest.raises(AuditFailed, match=r"funnel\.csv, funnel\.parquet rejected|funnel\.parquet, funnel\.csv rejected"):
        write_extract(old, "funnel", tmp_path, audits=[_failing_audit])
    write_extract(pd.DataFrame({"channel": ["Paid Search"], "revenue": [3.0]}), "funnel", tmp_path, audits=[audit_no_pii])
    assert pd.read_parquet(paths["parquet"])["channel"].tolist() == ["Paid Search"]
    assert not (tmp_path / STAGING_DIR).exists()


def test_published_columns_audit_fails_on_renamed_or_retyped_columns(tmp_path):
    columns = {"channel": "string", "revenue": "float"}
    files = write_extract(pd.DataFrame({"channel": ["Email"], "revenue": [1.0]}), "x", tmp_path)
    assert audit_published_columns(files, columns).passed
    renamed = write_extract(pd.DataFrame({"team": ["Email"], "revenue": [1.0]}), "y", tmp_path)
    assert not audit_published_columns(renamed, columns).passed
    retyped = write_extract(pd.DataFrame({"channel": ["Email"], "revenue": ["a lot"]}), "z", tmp_path)
    result = audit_published_columns(retyped, columns)
    assert not result.passed and "revenue is object, published as float" in result.description


def test_report_audit_fails_on_undated_external_or_pii_pages(tmp_path):
    good = "<html><p>Data fresh to 2026-11-23</p><p>run 2876cebc-8751-4850-9154-efce22db7050</p></html>"
    path = write_report(good, tmp_path / "r.html", audits=[audit_report_html])
    assert audit_report_html({"html": path}).passed
    for bad, problem in (
        ("<html><p>no date</p></html>", "does not state the day"),
        ('<html><p>Data fresh to 2026-11-23</p><img src="https://cdn.example.com/x.png"></html>', "external resource"),
        ("<html><p>Data fresh to 2026-11-23</p><p>call +1 415 555 0100</p></html>", "email or phone"),
    ):
        with pytest.raises(AuditFailed, match=problem):
            write_report(bad, path, audits=[audit_report_html])
        assert path.read_text() == good
        assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert not audit_report_html({"html": tmp_path / "missing.html"}).passed


def _failure_message(result) -> str:
    (failure,) = result.get_step_failure_events()
    data = failure.step_failure_data
    return (data.user_failure_data.description if data.user_failure_data else None) or data.error.message


def test_extract_asset_with_pii_fails_and_leaves_the_published_version(tmp_path, minimal_landing, monkeypatch):
    import dagster as dg
    import duckdb

    from marketing_assets import extracts
    from marketing_assets_tests.conftest import make_resources

    resources = make_resources(tmp_path, minimal_landing)
    assert dg.materialize([extracts.kpi_dictionary], resources=resources).success
    files = extract_files(tmp_path / "extracts", "kpi_dictionary")
    before = {k: p.read_bytes() for k, p in files.items()}

    real = extracts.kpis.dictionary_frame
    monkeypatch.setattr(extracts.kpis, "dictionary_frame", lambda d: real(d).assign(owner="jane.doe@acme.com"))
    result = dg.materialize([extracts.kpi_dictionary], resources=resources, raise_on_error=False)
    assert not result.success
    message = _failure_message(result)
    assert "extract kpi_dictionary not published" in message and "no_pii_in_files" in message and "kpi_dictionary.parquet:owner" in message
    assert "jane" not in message
    assert {k: p.read_bytes() for k, p in files.items()} == before
    assert not (tmp_path / "extracts" / STAGING_DIR).exists()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        owners = {r[0] for r in con.execute("SELECT DISTINCT owner FROM extracts.kpi_dictionary").fetchall()}
    assert owners and not any("@" in str(o) for o in owners)  # the table keeps the previous version too

    monkeypatch.setattr(extracts.kpis, "dictionary_frame", lambda d: real(d).assign(owner="Marketing Ops"))
    assert dg.materialize([extracts.kpi_dictionary], resources=resources).success
    assert set(pd.read_parquet(files["parquet"])["owner"]) == {"Marketing Ops"}
    assert files["csv"].read_bytes() != before["csv"]


def test_report_asset_failing_its_audit_keeps_the_published_page(tmp_path, minimal_landing, monkeypatch):
    import dagster as dg

    from marketing_assets import reports
    from marketing_assets.lib import reports as html_reports
    from marketing_assets_tests.conftest import make_resources

    resources = make_resources(tmp_path, minimal_landing)
    page = tmp_path / "reports" / "data_quality.html"
    assert dg.materialize([reports.data_quality_html], resources=resources).success
    before = page.read_bytes()
    real = html_reports.render_data_quality
    monkeypatch.setattr(html_reports, "render_data_quality", lambda *a, **kw: real(*a, **kw).replace("</body>", "<p>call +1 415 555 0100</p></body>"))
    result = dg.materialize([reports.data_quality_html], resources=resources, raise_on_error=False)
    assert not result.success
    message = _failure_message(result)
    assert "report data_quality.html not published" in message and "self_contained_and_dated" in message and "415" not in message
    assert page.read_bytes() == before
    assert [p.name for p in page.parent.iterdir()] == ["data_quality.html"]


def test_unordered_writes_restores_the_setting_and_sql_extract_keeps_the_rows(tmp_path):
    import duckdb

    from marketing_assets.lib.publish import stage_sql_extract
    from marketing_assets.lib.sql import unordered_writes

    con = duckdb.connect()
    for start in (True, False):
        con.execute(f"SET preserve_insertion_order = {start}")
        with unordered_writes(con):
            assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (start,)
    with pytest.raises(duckdb.Error), unordered_writes(con):
        con.execute("SELECT * FROM no_such_table")
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (False,)
    con.execute("SET preserve_insertion_order = true")
    select = "SELECT i, i * 2 AS j FROM range(5000) t(i)"
    with stage_sql_extract(con, select, "x", tmp_path, formats=("parquet",), ordered=False):
        pass
    assert con.execute(f"SELECT count(*), sum(i), sum(j) FROM read_parquet('{tmp_path / 'x.parquet'}')").fetchone() == (5000, 12497500, 24995000)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)


def test_sql_extract_parquet_has_no_dictionary_pages(tmp_path):
    """DuckDB writes SQL extracts without dictionary pages (building one per column costs a quarter of the writing time
    of a wide extract); the values read back unchanged."""
    import duckdb
    import pyarrow.parquet as pq

    from marketing_assets.lib.publish import stage_sql_extract

    con = duckdb.connect()
    select = "SELECT i, CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END AS parity FROM range(1000) t(i)"
    with stage_sql_extract(con, select, "x", tmp_path, formats=("parquet",)):
        pass
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata
    encodings = {e for g in range(meta.num_row_groups) for c in range(meta.num_columns) for e in meta.row_group(g).column(c).encodings}
    assert not encodings & {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert con.execute(f"SELECT count(*) FILTER (WHERE parity = 'even'), sum(i) FROM read_parquet('{tmp_path / 'x.parquet'}')").fetchone() == (500, 499500)
