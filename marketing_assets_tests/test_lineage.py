"""Lineage: every asset's declared upstream assets are exactly the tables its SQL reads.

The deps are derived from ``ref()`` at definition time (``marketing_assets/lineage.py``); this test checks the
derivation against what really runs. It materialises the whole graph on small demo data with a warehouse whose
connections record every statement each asset step executes, asks DuckDB's own parser/binder which tables each
statement references (``get_table_names``, views expanded), and compares per asset:

    tables read (warehouse schemas only) == declared upstream assets ∪ the asset's own outputs

Underscore-prefixed working tables of ``sources`` and unqualified temp tables / registered frames are not assets;
a source's ``_rejected_<table>`` counts as a read of that source asset (it writes them, ``quarantine`` reads them).
It fails when a builder reads a table its asset does not declare, and when an asset declares a table it never reads.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from contextlib import contextmanager

import dagster as dg
import duckdb
import pytest
import yaml

from marketing_assets.constants import GROUPS, SOURCES
from marketing_assets.lib import kpis
from marketing_assets.lib.refs import recording, ref, ref_working, this
from marketing_assets.reports import REPORTS_ON
from marketing_assets.resources import Warehouse
from marketing_assets_tests.conftest import DEMO_END_DATE, land_before_as_of, make_resources

# Declared reads that the small demo does not exercise, with the branch that reads them.
CONDITIONAL_READS = {
    # won CRM opportunities stand in for revenue only when there are no ERP orders
    "mmm/mmm_weekly_frame": {"sources/crm_opportunities"},
}
# Declared deps that are not table reads: the data-quality report lists the check results of these extracts (from the
# Dagster instance), so it runs after them. Stated once, in reports.py.
ORDERING_ONLY = {
    "extracts/data_quality_report": {"undeclared": set(), "unread": {k.to_user_string() for k in REPORTS_ON}},
}

_CAPTURE: dict[tuple[str, ...], list[str]] = defaultdict(list)


def _current_op() -> tuple[str, ...] | None:
    """Asset keys of the asset step on the stack (None inside an asset check or outside a run)."""
    frame = sys._getframe(2)
    while frame is not None:
        context = frame.f_locals.get("context")
        if isinstance(context, dg.AssetExecutionContext):
            return tuple(sorted(k.to_user_string() for k in context.assets_def.keys))
        frame = frame.f_back
    return None


class RecordingConnection:
    """A DuckDB connection that records, per asset step, the SQL text of everything executed on it (then runs it unchanged)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def _record(self, sql) -> None:
        op = _current_op()
        if op is not None:
            _CAPTURE[op].append(str(sql))

    def execute(self, query, *args, **kwargs):
        self._record(query)
        return self._con.execute(query, *args, **kwargs)

    def executemany(self, query, *args, **kwargs):
        self._record(query)
        return self._con.executemany(query, *args, **kwargs)

    def sql(self, query, *args, **kwargs):
        self._record(query)
        return self._con.sql(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


class RecordingWarehouse(Warehouse):
    @contextmanager
    def get_connection(self):
        with super().get_connection() as con:
            yield RecordingConnection(con)


# DuckDB's parser (json_serialize_sql, parse only: no binding, so temp tables and parameters are fine) reads SELECTs;
# the query of CREATE ... AS / INSERT INTO is what a write reads.
_PARSER = duckdb.connect()
_WRITE_PREFIX = re.compile(
    r"^\s*(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?[\w.\"]+\s*(?:\([^)]*\)\s*)?AS\s+"
    r"|INSERT\s+(?:OR\s+REPLACE\s+)?INTO\s+[\w.\"]+\s*(?:\([^)]*\)\s*)?)",
    re.IGNORECASE,
)
# COPY (query) TO 'file' (...) reads its query; DESCRIBE <table> reads the table's columns.
_COPY = re.compile(r"^\s*COPY\s*\((?P<body>.*)\)\s*TO\s+'(?:[^']|'')*'\s*(?:\([^)]*\))?\s*$", re.IGNORECASE | re.DOTALL)
_DESCRIBE = re.compile(r"^\s*DESCRIBE\s+(?P<table>[\w.\"]+)\s*$", re.IGNORECASE)
# Statements that read no table (DDL without a query, transaction control, deletes from a source's own ingest log,
# a temporary macro, which reads only its own temporary table, the in-memory scratch database ingestion attaches).
NO_READ = re.compile(r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?TEMP\s+MACRO\s|CREATE\s+SCHEMA|ATTACH\s+':memory:'|DETACH\s|CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+)?TABLE\s+(IF\s+NOT\s+EXISTS\s+)?[\w.\"]+\s*\(|DROP\s|BEGIN|COMMIT|ROLLBACK|SET\s|DELETE\s+FROM\s+sources\._ingest_log\s+WHERE\s+table_name\s*=\s*\?\s*$)", re.IGNORECASE)


def _base_tables(node, out: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and node.get("table_name"):
            out.add(f"{node.get('schema_name') or ''}.{node['table_name']}".lstrip("."))
        for value in node.values():
            _base_tables(value, out)
    elif isinstance(node, list):
        for value in node:
            _base_tables(value, out)


def referenced_tables(sql: str) -> set[str]:
    """``schema.table`` (or a bare name) of every table a statement reads; ValueError for a statement DuckDB
    cannot serialise that is not a known no-read statement."""
    out: set[str] = set()
    for statement in duckdb.extract_statements(sql):
        text = statement.query
        copy, describe = _COPY.match(text), _DESCRIBE.match(text)
        text = copy.group("body") if copy else f"SELECT * FROM {describe.group('table')}" if describe else text
        match = _WRITE_PREFIX.match(text)
        body = text[match.end():] if match else text
        if re.match(r"^\s*VALUES\b", body, re.IGNORECASE):
            continue
        tree = json.loads(_PARSER.execute("SELECT json_serialize_sql(?)", [body]).fetchone()[0])
        if tree.get("error"):
            if NO_READ.match(text):
                continue
            raise ValueError(f"{tree.get('error_message')}: {text[:200]}")
        _base_tables(tree, out)
    return out


def asset_path(qualified: str) -> str | None:
    """``schema.table`` as the asset it is, or None when it is no asset (temp table, working table, CTE name)."""
    parts = qualified.split(".")
    if len(parts) != 2 or parts[0] not in GROUPS:
        return None
    schema, table = parts
    if table.startswith("_rejected_") and schema == SOURCES:
        return f"{schema}/{table.removeprefix('_rejected_')}"
    return None if table.startswith("_") else f"{schema}/{table}"


def mismatches(capture, assets_defs) -> dict[str, dict[str, set[str]]]:
    """Per asset step: tables read but not declared, and declared but not read (conditional reads left out)."""
    by_op = {tuple(sorted(k.to_user_string() for k in a.keys)): a for a in assets_defs}
    out = {}
    for op, assets_def in by_op.items():
        own = {k.to_user_string() for k in assets_def.keys}
        declared = {d.to_user_string() for k in assets_def.keys for d in assets_def.asset_deps[k]} - own
        read = {p for sql in capture.get(op, []) for t in referenced_tables(sql) for p in [asset_path(t)] if p} - own
        undeclared = read - declared
        unread = declared - read - set().union(*(CONDITIONAL_READS.get(a, set()) for a in own))
        if undeclared or unread:
            out[", ".join(op)] = {"undeclared": undeclared, "unread": unread}
    return out


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    from marketing_assets.definitions import defs
    from marketing_assets.demo import generate

    tmp = tmp_path_factory.mktemp("lineage")
    landing = tmp / "landing"
    generate(landing, scale="small", seed=3, end_date=DEMO_END_DATE)
    land_before_as_of(landing)
    resources = make_resources(tmp, landing)
    resources["warehouse"] = RecordingWarehouse(**resources["warehouse"].model_dump())
    _CAPTURE.clear()
    result = dg.materialize(list(defs.assets), resources=resources, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return dict(_CAPTURE), [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.is_materializable]


def test_every_asset_reads_exactly_its_declared_upstream_assets(captured):
    capture, assets_defs = captured
    # anything else: name the table through ref() in the builder the asset derives deps from
    assert mismatches(capture, assets_defs) == ORDERING_ONLY


def test_every_asset_step_ran_sql(captured):
    capture, assets_defs = captured
    silent = {", ".join(sorted(k.to_user_string() for k in a.keys)) for a in assets_defs} - {", ".join(op) for op in capture}
    assert silent == set()


def test_an_undeclared_read_is_reported():
    """The comparison itself: a builder that joins a table its asset does not declare is caught."""

    class Fake:
        keys = {dg.AssetKey(["touchpoints", "opportunity_touchpoints"])}
        asset_deps = {next(iter(keys)): {dg.AssetKey(["sources", "crm_opportunities"]), dg.AssetKey(["touchpoints", "touchpoints"])}}

    op = ("touchpoints/opportunity_touchpoints",)
    extra_join = """CREATE OR REPLACE TABLE "touchpoints"."opportunity_touchpoints" AS
        SELECT o.*, t.* FROM "sources"."crm_opportunities" o JOIN "touchpoints"."touchpoints" t USING (account_id)
        JOIN "sources"."crm_contacts" c ON c.contact_id = t.contact_id"""
    assert mismatches({op: [extra_join]}, [Fake]) == {op[0]: {"undeclared": {"sources/crm_contacts"}, "unread": set()}}
    temp_only = "CREATE TEMP TABLE _x AS SELECT * FROM _cmp_ot, sources._ingest_log, touchpoints.touchpoints"
    assert mismatches({op: [temp_only]}, [Fake]) == {op[0]: {"undeclared": set(), "unread": {"sources/crm_opportunities"}}}


def test_ref_records_reads_and_this_does_not():
    with recording() as outer:
        assert ref("sources", "crm_contacts") == '"sources"."crm_contacts"'
        assert this("identity", "contacts_resolved") == '"identity"."contacts_resolved"'
        with recording() as inner:
            ref_working("sources", "_rejected_crm_contacts", "crm_contacts")
    assert outer.tables == [("sources", "crm_contacts")] and inner.tables == [("sources", "crm_contacts")]
    assert ref("sources", "erp_orders") == '"sources"."erp_orders"'  # no recorder: just the name


# ------------------------------------------------------------------------------------- KPI dictionary


def _raw_dictionary() -> dict:
    return yaml.safe_load(kpis.DEFAULT_KPI_FILE.read_text(encoding="utf-8"))


def _entry(raw: dict, name: str) -> dict:
    return next(k for k in raw["kpis"] if k["name"] == name)


@pytest.mark.parametrize(
    ("name", "source_assets", "message"),
    [
        # cac once lacked the identity match its base joins: the dictionary refuses it
        ("new_customers", ["sources/erp_orders", "sources/erp_products", "touchpoints/touchpoints"], r"lacks \['identity/accounts_resolved'\]"),
        ("ad_spend", ["spend/ad_spend_daily", "sources/erp_customers"], r"has \['sources/erp_customers'\], not read by the SQL of base"),
        ("blended_roas", ["sources/erp_orders", "sources/erp_products", "spend/ad_spend_daily", "sources/web_sessions"],
         r"has \['sources/web_sessions'\], read by none of its referenced KPIs"),
    ],
)
def test_dictionary_source_assets_must_equal_the_tables_the_sql_reads(name, source_assets, message):
    raw = _raw_dictionary()
    _entry(raw, name)["source_assets"] = source_assets
    with pytest.raises(kpis.KpiDictionaryError, match=message):
        kpis.parse_kpi_dictionary(raw)


def test_every_kpi_sql_references_exactly_its_source_assets():
    dictionary = kpis.load_kpi_dictionary()
    for kpi in dictionary:
        with recording() as recorder:
            kpis.kpi_sql(kpi, kpi.time_grains[0], dictionary=dictionary)
        assert sorted(recorder.asset_paths()) == sorted(kpi.source_assets), kpi.name


def test_base_source_assets_are_recorded_from_the_sql():
    assert kpis.base_source_assets("customers") == (
        "identity/accounts_resolved", "sources/erp_orders", "sources/erp_products", "touchpoints/touchpoints",
    )
    assert kpis.base_source_assets("won_deals") == ("attribution/attribution_credits", "sources/crm_opportunities")


def test_fixed_edges_in_the_resolved_graph():
    from marketing_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    key = dg.AssetKey.from_user_string
    assert key("kpis/customers") in graph.get(key("extracts/executive_kpis")).parent_keys  # CAC's customers base, built once per run
    assert key("identity/accounts_resolved") in graph.get(key("kpis/customers")).parent_keys  # ... matching customers to accounts
    assert key("sources/crm_contacts") in graph.get(key("touchpoints/touchpoints")).parent_keys
    assert key("spend/ad_spend_daily") in graph.get(key("mmm/mmm_model")).parent_keys  # MMM channel groups
    assert key("sources/erp_customers") not in graph.get(key("extracts/executive_kpis")).parent_keys  # never read
