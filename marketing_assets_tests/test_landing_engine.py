"""DuckDB's CSV reader as the landing splitter: each reject type maps to the splitter's reason, line and detail,
and every file it cannot number identically goes to the Python splitter, with the same staged rows and quarantine."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from marketing_assets.lib import landing
from marketing_assets.lib.landing import contract_from_model, count_landing_rows, ingest_table
from marketing_assets.schemas import SOURCE_MODELS
from marketing_assets_tests.test_landing import con  # noqa: F401  (the same UTC DuckDB connection fixture)
from marketing_assets_tests.test_landing_faults import write_text as write  # a landing file with a fixed mtime

OPP = "opportunity_id,account_id,pipeline_amount,opportunity_created_date,sales_segment\n"
CONTACTS = "contact_id,account_id,email,first_name,last_name,created_at\n"


def run(con, root: Path, table: str, *, engine: bool, monkeypatch, counted: bool = True) -> tuple[list, list, list, bool]:
    """(staged rows, quarantine rows, rows read per file, whether the Python splitter read a CSV file)."""
    used_splitter = []
    real_load_csv = landing._load_csv

    def spy(*args, **kwargs):
        used_splitter.append(True)
        return real_load_csv(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(landing, "_load_csv", spy)
        if not engine:
            m.setattr(landing, "_engine_csv", lambda *a, **k: None)
        result = ingest_table(con, contract_from_model(table, SOURCE_MODELS[table]), root, "sources", "_rejected")
    staged = con.execute(f"SELECT * FROM sources.{table} ORDER BY ALL").fetchall()
    rejected = con.execute("SELECT * FROM sources._rejected ORDER BY ALL").fetchall()
    read = [(f.source_file, f.rows_read) for f in result.files]
    for f in result.files:
        assert f.rows_read == f.rows_staged + f.rows_quarantined + f.duplicates_collapsed
        assert not counted or f.rows_read == count_landing_rows(con, root / f.source_file)
    return staged, rejected, read, bool(used_splitter)


def same_both_ways(con, root: Path, table: str, monkeypatch, *, engine_reads: bool, counted: bool = True):
    """Ingest with the engine and with the splitter alone: identical tables; return the engine's rejects."""
    staged, rejected, read, splitter = run(con, root, table, engine=True, monkeypatch=monkeypatch, counted=counted)
    assert splitter is not engine_reads, "the file went the other way than expected"
    assert (staged, rejected, read) == run(con, root, table, engine=False, monkeypatch=monkeypatch, counted=counted)[:3]
    return staged, rejected


def lines_reasons(rejected) -> list[tuple[int, str, str, str]]:
    # quarantine columns: table_name, source_file, source_line, column_name, raw_value, reason, detail, violations, raw_record
    return [(r[2], r[3], r[5], r[6]) for r in rejected]


# ------------------------------------------------------------------ reject types the engine maps


def test_missing_columns_is_a_malformed_record_and_later_lines_keep_their_numbers(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + "o1,a1,5,2026-01-01,SMB\no2,a1,5\no3,a1,7,2026-01-02,SMB\n")
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [(r[0], r[-1]) for r in staged] == [("o1", 2), ("o3", 4)]
    assert lines_reasons(rejected) == [(3, "(record)", "malformed_record", "record on line 3 has 3 field(s), the header 5")]


def test_too_many_columns_is_a_malformed_record(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + "o1,a1,5,2026-01-01,SMB,x,y\no2,a1,6,2026-01-02,SMB\n")
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [(r[0], r[-1]) for r in staged] == [("o2", 3)]
    assert lines_reasons(rejected) == [(2, "(record)", "malformed_record", "record on line 2 has 7 field(s), the header 5")]


@pytest.mark.parametrize("where", ["middle", "last"])
def test_invalid_encoding_is_quarantined_without_content(tmp_path, con, monkeypatch, where):
    bad = "c2,a1,mia@example.com,Mïa,Allen,2026-01-02\n".encode("latin-1")
    if where == "last":
        bad = "c2,a1,mia@example.com,Mia,Allën,2026-01-02".encode("latin-1")  # no final newline either
    body = CONTACTS.encode() + b"c1,a1,ann@example.com,Ann,Lee,2026-01-01\n" + (bad if where == "last" else bad + b"c3,a2,bob@example.com,Bob,Roe,2026-01-03\n")
    write(tmp_path, "crm/contacts.csv", body)
    staged, rejected = same_both_ways(con, tmp_path, "crm_contacts", monkeypatch, engine_reads=True)
    assert [(r[0], r[-1]) for r in staged] == ([("c1", 2), ("c3", 4)] if where == "middle" else [("c1", 2)])
    assert lines_reasons(rejected) == [(3, "(record)", "invalid_encoding", "record starting on line 3 holds bytes that are not UTF-8")]
    assert "mia" not in str(rejected) and "Allen" not in str(rejected)


def test_invalid_encoding_and_wrong_field_count_on_one_line_is_invalid_encoding(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/contacts.csv", CONTACTS.encode() + "c1,a1,x@example.com,Mïa\nc2,a1,y@example.com,Bo,Lee,2026-01-01\n".encode("latin-1"))
    _, rejected = same_both_ways(con, tmp_path, "crm_contacts", monkeypatch, engine_reads=True)
    assert [r[5] for r in rejected] == ["invalid_encoding"]


def test_whitespace_only_line_is_not_a_record(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + "o1,a1,5,2026-01-01,SMB\n   \no2,a1,6,2026-01-02,SMB\n")
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [(r[0], r[-1]) for r in staged] == [("o1", 2), ("o2", 4)] and rejected == []


def test_several_rejects_renumber_every_line_after_them(tmp_path, con, monkeypatch):
    rows = ["o1,a1,5,2026-01-01,SMB", "o2,a1", "o3,a1,5,2026-01-01,SMB", "x,y,z,1,2,3", "o4", "o5,a1,5,2026-01-01,SMB"]
    write(tmp_path, "crm/opportunities.csv", OPP.replace("\n", "\r\n") + "\r\n".join(rows) + "\r\n")
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [(r[0], r[-1]) for r in staged] == [("o1", 2), ("o3", 4), ("o5", 7)]
    assert [r[2] for r in rejected] == [3, 5, 6]


def test_row_rules_still_apply_on_the_engine_path(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + 'o1,a1,-5,2026-01-01,SMB\n"o2"," a1 ",6,2026-01-02,"S,MB"\n,a1,1,2026-01-01,SMB\n')
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [(r[0], r[1], r[-1]) for r in staged] == [("o2", "a1", 3)]
    assert [(r[2], r[5]) for r in rejected] == [(2, "negative_value"), (4, "null_key")]


def test_gzip_and_semicolon_files_go_through_the_engine(tmp_path, con, monkeypatch):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write((OPP.replace(",", ";") + "o1;a1;5;2026-01-01;SMB\no2;a1\n").encode())
    write(tmp_path, "crm/opportunities.csv.gz", buf.getvalue())
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=True)
    assert [r[0] for r in staged] == ["o1"] and [(r[2], r[5]) for r in rejected] == [(3, "malformed_record")]


def test_reject_tables_do_not_stay_behind(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + "o1,a1,5\n")
    run(con, tmp_path, "crm_opportunities", engine=True, monkeypatch=monkeypatch)
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not {n for n in names if "reject" in n and not n.startswith("_rejected")}


# ------------------------------------------------------------------ what the engine hands to the splitter


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('o1,a1,5,2026-01-01,"S\nMB"\no2,a1,6,2026-01-02,SMB\n', id="multi-line quoted field"),
        pytest.param('o1,"a1,5,2026-01-01,SMB\no2,a1,6,2026-01-02,SMB\no3,a1,7,2026-01-03,SMB\n', id="quote never closed (UNQUOTED VALUE)"),
        pytest.param('o1,a1,5,2026-01-01,"SMB"x\no2,a1,6,2026-01-02,SMB\n', id="text after a closing quote (UNQUOTED VALUE)"),
        pytest.param('o1,a1,5,2026-01-01,"SMB"  \no2,a1,6,2026-01-02,SMB\n', id="spaces after a closing quote"),
        pytest.param('o1, "a1",5,2026-01-01,SMB\n', id="space before an opening quote"),
        pytest.param("o1,a1,5,2026-01-01,SMB\n\no2,a1,6,2026-01-02,SMB\n", id="empty line"),
        pytest.param("o1,a1,5,2026-01-01,SMB\r\no2,a1\r\n", id="header ends in LF, records in CRLF"),
    ],
)
def test_files_the_engine_cannot_number_go_to_the_splitter(tmp_path, con, monkeypatch, body):
    write(tmp_path, "crm/opportunities.csv", OPP + body)
    same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=False)


def test_bare_carriage_return_goes_to_the_splitter(tmp_path, con, monkeypatch):
    """(The recount reads a bare CR as a line end where the splitter does not: a known gap, not the engine's.)"""
    write(tmp_path, "crm/opportunities.csv", OPP + "o1,a1,5,2026-01-01,S\rMB\no2,a1,6,2026-01-02,SMB\n")
    same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=False, counted=False)


def test_multi_line_quoted_field_keeps_physical_lines(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", OPP + 'o1,a1,5,2026-01-01,"S\nMB"\no2,a1,6,2026-01-02,SMB\no3,a1\n')
    staged, rejected = same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=False)
    assert [(r[0], r[4], r[-1]) for r in staged] == [("o1", "S\nMB", 2), ("o2", "SMB", 4)]
    assert [(r[2], r[5]) for r in rejected] == [(5, "malformed_record")]


def test_header_not_on_line_one_or_single_column_goes_to_the_splitter(tmp_path, con, monkeypatch):
    write(tmp_path, "crm/opportunities.csv", "\n" + OPP + "o1,a1,5,2026-01-01,SMB\n")
    same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=False)


def test_many_rejects_go_to_the_splitter(tmp_path, con, monkeypatch):
    monkeypatch.setattr(landing, "_ENGINE_MAX_REJECTS", 2)
    write(tmp_path, "crm/opportunities.csv", OPP + "o1\no2\no3\no4,a1,5,2026-01-01,SMB\n")
    same_both_ways(con, tmp_path, "crm_opportunities", monkeypatch, engine_reads=False)


# ------------------------------------------------------------------ pieces


@pytest.mark.parametrize(
    ("raw", "verdict"),
    [
        (b"a,b,c\n", None),
        (b"a,b\n", ("malformed_record", "record on line 7 has 2 field(s), the header 3")),
        (b"a,b,c,d", ("malformed_record", "record on line 7 has 4 field(s), the header 3")),
        (b"a,\xe9,c\n", ("invalid_encoding", "record starting on line 7 holds bytes that are not UTF-8")),
        (b"  \t\r\n", "blank"),
        (b'a,"b\n', None),
        (b'a,"b"c,d\n', None),
    ],
)
def test_line_verdict_is_the_splitters(raw, verdict):
    assert landing._line_verdict(raw, 7, ",", 3) == verdict


@pytest.mark.parametrize(
    ("chunk", "odd"),
    [
        (b'a,"b ",c\n', False),
        (b'a,"b c",d\n', False),
        (b'a,"b" ,c\n', True),
        (b'a, "b",c\n', True),
        (b' "a",b\n', True),
        (b'a,"b"  \r\n', True),
        (b'a,"b" ', True),
        (b'a;"b" ;c\n', True),
    ],
)
def test_quote_next_to_space(chunk, odd):
    assert landing._quote_next_to_space(chunk, b";" if b";" in chunk else b",") is odd


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("a,b\n1,2\n3,4\n", 2),
        ("a,b\n1,2\n\n3,4", 2),
        ('a,b\n1,"x\ny"\n3,4\n', 2),
        ("a,b\n1,2\n  \n3,4\n", None),
        ("a,b\n1,2,3\n3,4\n", None),
        ('a,b\n1,"x\n', None),
        ("a\n1\n", None),
        ("", 0),
    ],
)
def test_plain_counter_agrees_with_the_replay_counter(text, plain):
    assert landing._count_plain_csv_records(io.StringIO(text, newline="")) == plain
    if plain is not None:
        assert plain == landing._count_csv_records(io.StringIO(text, newline=""))


@pytest.mark.parametrize(
    ("content", "one_line"),
    [
        (b"a,b\n1,2\n3,4\n", 2),
        (b"a,b\r\n1,2\r\n3,4", 2),
        (b'a;b\n1;"x;""y"""\n', 1),
        (b'a,b\n1,"x"y\n3,4\n', 2),  # a quote misplaced after its closing quote costs one record in either reader
        (b"a,b\n", 0),
        (b"", 0),
        (b"a,b\n1,2\n\n3,4", None),  # a blank line
        (b'a,b\n1,"x\ny"\n3,4\n', None),  # a record over two lines
        (b'a,b\n1,"x\ry"\n', None),  # a bare carriage return ends a line for Python's reader
        (b"a,b\n1,2,3\n3,4\n", None),
        (b'a,b\n1,"x\n', 1),  # a quote left open in the last record: one record in either reader
        (b"a\n1\n", None),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_one_line_counter_counts_single_line_records_or_declines(tmp_path, content, one_line, suffix):
    path = tmp_path / f"f{suffix}"
    path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    assert landing._count_one_line_records(path) == one_line
    if one_line is not None:
        with (gzip.open if suffix.endswith(".gz") else open)(path, "rt", encoding="utf-8", newline="") as fh:
            assert one_line == landing._count_csv_records(fh)
