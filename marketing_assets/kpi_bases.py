"""KPI base assets: the metric dictionary's expensive base relations, each built once per run as a warehouse table.

A base relation (``lib/kpis.py`` BASE_RELATIONS: the order lines, customers, customer months, leads, funnel stages, ...)
is what every KPI over it aggregates. The KPI extracts and their ``kpis_match_dictionary`` checks used to build the
same bases again, each in its own TEMP tables; the bases in :data:`BASE_TABLES` are built here once, as
``kpis.<base>`` from their one definition (:func:`kpis.base_table_sql`), and a :class:`kpis.KpiScope` given
``base_tables=BASE_TABLES`` reads them in place. Every other base stays inline: a KPI query builds it (only the rows of
its date window, where it has one), which costs less than writing the whole base (see ``BASE_TABLES``).

Deps come from the SQL, as everywhere (``upstream``): a base's own tables, and ``kpis/<base>`` for a base it selects
from that is a table too.
"""

import functools

import dagster as dg

from marketing_assets.constants import KPIS
from marketing_assets.lib import kpis
from marketing_assets.lib.refs import this
from marketing_assets.lineage import upstream
from marketing_assets.resources import Warehouse

# Measured at large scale (16.6M landing rows, 2 cores): building each as a table costs revenue_lines 1.1 s, customers 2.5 s,
# customer_months 5.3 s, leads 1.4 s, funnel_stages 11 s, and saves the rebuild in the extracts and checks that read them
# (funnel_stages and customer_months twice; leads twice over marketing_roi's window at 2 s each plus executive_kpis'
# queries). Left inline: credited_pipeline / credited_wins (17 s and 11 s whole, 44M and 12M rows, credited_wins about half
# that since it selects the won opportunities before its unpivot; marketing_roi reads only its 90-day window, 1.3 s), and the
# small bases (spend_days, sessions, opportunities, mmm_*, finance_spend,
# inventory_snapshots: under 0.5 s each).
BASE_TABLES = ("revenue_lines", "customers", "customer_months", "leads", "funnel_stages")


def base_sql(base: str, dictionary: kpis.KpiDictionary) -> str:
    """The SELECT that builds ``kpis.<base>`` (the bases it selects from that are tables read from them)."""
    return kpis.base_table_sql(base, dictionary.parameters, BASE_TABLES)


@functools.cache
def definition_dictionary() -> kpis.KpiDictionary:
    """The dictionary for deps at definition time, loaded once per process before ``upstream`` records (loading it
    validates every base's SQL, whose table references a recording would take for the asset's). Runs load it afresh."""
    return kpis.load_kpi_dictionary()


def _build_base_asset(base: str) -> dg.AssetsDefinition:
    relation = kpis.BASE_RELATIONS[base]
    dictionary = definition_dictionary()

    @dg.asset(
        key=dg.AssetKey([KPIS, base]), group_name=KPIS, deps=upstream(lambda: base_sql(base, dictionary)), kinds={"duckdb"},
        description=f"{relation.description} Base relation of the metric dictionary (config/kpis.yaml), built once per run for "
                    "the KPI extracts and their checks.",
    )
    def _base(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        sql = base_sql(base, kpis.load_kpi_dictionary())
        with warehouse.get_connection() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {KPIS}")
            con.execute(f"CREATE OR REPLACE TABLE {this(KPIS, base)} AS {sql}")
            (rows,) = con.execute(f"SELECT count(*) FROM {this(KPIS, base)}").fetchone()
        context.log.info(f"{KPIS}.{base}: {rows} rows")
        return dg.MaterializeResult(metadata={"dagster/row_count": int(rows), "key": list(relation.key)})

    return _base


kpi_base_assets = [_build_base_asset(base) for base in BASE_TABLES]


def kpi_scope(con, dictionary: kpis.KpiDictionary, materialize_bases: bool = False) -> kpis.KpiScope:
    """A :class:`kpis.KpiScope` of an asset or check that runs after the base assets: it reads their tables."""
    return kpis.KpiScope(con, dictionary, materialize_bases=materialize_bases, base_tables=BASE_TABLES)


def kpi_reads(names) -> list[dg.AssetKey]:
    """Deps of an asset computing the named KPIs in a :func:`kpi_scope`: the base tables and the source tables of the
    inline bases they read (from the SQL, see ``upstream``)."""
    dictionary = definition_dictionary()
    return upstream(lambda: kpis.kpi_bases_sql(names, dictionary, BASE_TABLES))
