"""The product's Superset dashboards as code: ``dashboards.yaml`` expanded into a Superset import bundle. No Dagster import.

The spec names datasets (published extracts), their metrics, and the charts of each dashboard. Everything else
comes from its one registry: column types from :data:`marketing_assets.extracts.EXTRACT_COLUMNS`, column
descriptions from :func:`marketing_assets.extracts.column_descriptions`, and a metric named after a KPI takes
its label, description and number format from ``config/kpis.yaml``. UUIDs are uuid5 of a fixed namespace, the
kind and the name, so a rebuilt bundle is byte-identical and other code can compute them
(:func:`dataset_uuid`, :func:`chart_uuid`, :func:`dashboard_uuid`).

Usage: ``python -m marketing_assets.bi.bundle OUT.zip BI_DATABASE.duckdb``, then
``superset import-dashboards -p OUT.zip -u admin``. Superset's importer creates databases, datasets and charts
that do not exist yet and overwrites dashboards (not charts or datasets: import into fresh metadata, or
delete them first, to change those).
"""

from __future__ import annotations

import functools
import json
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

from marketing_assets import extracts
from marketing_assets.lib import bi_datasets, kpis, yaml_files
from marketing_assets.lib.attribution import models
from marketing_assets.lib.sql import ident, literal

SPEC_PATH = Path(__file__).with_name("dashboards.yaml")
NAMESPACE = uuid.UUID("6f1c2a4e-8d3b-5b7e-9a10-4c2e7d9b0f31")  # fixed forever: the UUIDs of every object derive from it
VERSION = "1.0.0"  # Superset's import format version
TIMESTAMP = "2026-01-01T00:00:00+00:00"  # fixed, so the bundle is deterministic
ROOT = "marketing_dashboards"  # the bundle's top folder (Superset's importer strips it)
SCHEMA = "extracts"  # the BI database's schema (marketing_assets.lib.bi_database.SCHEMA)
SQL_TYPES = {"string": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN"}
TEMPORAL = {"date", "timestamp"}
VIZ = {"table": "table", "big_number_total": "big_number_total", "big_number": "big_number", "line": "echarts_timeseries_line",
       "bar": "echarts_timeseries_bar", "pie": "pie", "pivot": "pivot_table_v2"}
WIDTHS = {"big_number": 3, "big_number_total": 3}  # default chart width (of 12); others 6
NO_FILTER = "No filter"
ROW_LIMIT = 10000
TABLE_PAGE_LENGTH = 20  # rows a table chart draws per page
FLOAT_FORMAT = ",.2f"  # number columns of a table of rows that carry no KPI and no metric of the spec
CHART_KEYS = {"title", "description", "viz", "dataset", "metrics", "groupby", "columns", "x", "grain", "rows", "cols", "where", "where_sql",
              "order_by", "limit", "width", "unfiltered", "stack", "dashboard"}


def _uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def dataset_uuid(name: str) -> str:
    """UUID of the Superset dataset of extract ``name``."""
    return _uuid("dataset", name)


def chart_uuid(slug: str) -> str:
    """UUID of the chart ``slug`` (a key under a dashboard's ``rows`` in the spec)."""
    return _uuid("chart", slug)


def dashboard_uuid(slug: str) -> str:
    """UUID of the dashboard ``slug``."""
    return _uuid("dashboard", slug)


def database_uuid(name: str) -> str:
    """UUID of the Superset database ``name``."""
    return _uuid("database", name)


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> dict:
    return yaml_files.safe_load(path.read_text())


def load_spec(path: Path | str | None = None) -> dict:
    """The dashboards spec (``dashboards.yaml``) as a dict (a fresh copy), its per-model metrics and columns expanded
    (:func:`expand_per_model`)."""
    return expand_per_model(json.loads(json.dumps(_load(Path(path or SPEC_PATH)))))


def expand_per_model(spec: dict) -> dict:
    """One metric and one column per attribution model of the registry where the spec names a per-model figure once.

    A dataset metric with ``per_model: true`` over a prefix of :data:`marketing_assets.lib.bi_datasets.PER_MODEL_COLUMNS`
    (its ``column``, default its name) becomes the metrics ``<name>_<model>``: the aggregate of that model's column,
    labelled "<KPI label> (<model label>)" when the name is a KPI. A chart naming such a metric, or a per-model column
    prefix among its table columns, gets every model's in registry order, or with ``models: reference`` only the
    reference model's (``config/attribution.yaml``; each model's column is a scan of its own); ``order_by`` a per-model
    metric orders by the reference model's. Adding a model to the registry adds its metrics and columns here."""
    groups: dict[str, dict[str, list[str]]] = {}  # dataset -> per-model name -> its expanded names
    for name, dataset in spec["datasets"].items():
        metrics = {}
        for metric, body in (dataset.get("metrics") or {}).items():
            if isinstance(body, dict) and body.get("per_model"):
                rest = {k: v for k, v in body.items() if k not in ("per_model", "column")}
                per_model = {bi_datasets.per_model_column(metric, model): {
                    **rest, "column": column, "per_model_of": metric, "model": model}
                    for column, model in bi_datasets.per_model_columns(body.get("column", metric)).items()}
                metrics.update(per_model)
                groups.setdefault(name, {})[metric] = list(per_model)
            else:
                metrics[metric] = body
        if dataset.get("metrics"):
            dataset["metrics"] = metrics
    reference = models.reference_model()
    for dashboard in spec["dashboards"].values():
        for row in rows(dashboard):
            for chart in row.values():
                only = chart.pop("models", "all")
                if only not in ("all", "reference"):
                    raise ValueError(f"chart {chart.get('title')!r}: models must be all or reference, not {only!r}")
                keep = (lambda name: name.endswith("_" + reference)) if only == "reference" else (lambda name: True)
                expanded = {k: [n for n in v if keep(n)] for k, v in groups.get(chart.get("dataset"), {}).items()}
                if chart.get("metrics"):
                    chart["metrics"] = [m for name in chart["metrics"] for m in expanded.get(name, [name])]
                if chart.get("columns"):
                    chart["columns"] = [c for name in chart["columns"] for c in
                                        ([n for n in bi_datasets.per_model_columns(name) if keep(n)] if name in bi_datasets.PER_MODEL_COLUMNS else [name])]
                if chart.get("order_by") in expanded:
                    chart["order_by"] = bi_datasets.per_model_column(chart["order_by"], reference)
    return spec


def tabs(board: dict) -> dict[str | None, list[dict]]:
    """A dashboard's rows of charts by tab title, in order (``None``: a dashboard without tabs, all its rows)."""
    if ("rows" in board) == ("tabs" in board):
        raise ValueError(f"dashboard {board.get('title')!r}: give either rows or tabs")
    return {None: board["rows"]} if "rows" in board else dict(board["tabs"])


def rows(board: dict) -> list[dict]:
    """Every row of charts of a dashboard, tab after tab."""
    return [row for tab_rows in tabs(board).values() for row in tab_rows]


def first_view(slug: str, spec: dict | None = None) -> list[str]:
    """The charts a dashboard draws when it opens: those of its first tab (the other tabs draw when opened)."""
    spec = spec or load_spec()
    return [chart for row in next(iter(tabs(spec["dashboards"][slug]).values())) for chart in row]


def charts(spec: dict | None = None) -> dict[str, dict]:
    """Chart slug -> chart spec with its ``dashboard`` added, in layout order."""
    spec = spec or load_spec()
    out = {}
    for slug, dashboard in spec["dashboards"].items():
        for row in rows(dashboard):
            for chart, body in row.items():
                if chart in out:
                    raise ValueError(f"chart {chart!r} appears twice (dashboards {out[chart]['dashboard']!r} and {slug!r})")
                out[chart] = {**body, "dashboard": slug}
    return out


def dashboard_datasets(spec: dict | None = None) -> dict[str, set[str]]:
    """Dashboard slug -> names of the extracts its charts read."""
    spec = spec or load_spec()
    out: dict[str, set[str]] = {slug: set() for slug in spec["dashboards"]}
    for chart in charts(spec).values():
        out[chart["dashboard"]].add(chart["dataset"])
    return out


def role_grants(spec: dict | None = None) -> dict[str, dict]:
    """Role -> the dashboards it may open, the datasets those dashboards read (sorted), whether any of them is
    row-level (``drill_down``: the role may drill to detail) and whether it gets SQL Lab (``sql_lab_roles``)."""
    spec = spec or load_spec()
    used = dashboard_datasets(spec)
    drill_down = {n for n, d in spec["datasets"].items() if d.get("drill_down")}
    grants = {}
    for role, slugs in spec["roles"].items():
        datasets = sorted(set().union(*(used[s] for s in slugs)))
        grants[role] = {"dashboards": list(slugs), "datasets": datasets, "row_level": bool(drill_down & set(datasets)),
                        "sql_lab": role in spec.get("sql_lab_roles", [])}
    return grants


def missing_extracts(spec: dict | None = None) -> list[str]:
    """Datasets of the spec that are not (yet) published extracts in ``EXTRACT_COLUMNS``."""
    spec = spec or load_spec()
    return sorted(set(spec["datasets"]) - set(extracts.EXTRACT_COLUMNS))


# ------------------------------------------------------------------------------------------ metrics


def metric_definitions(name: str, spec: dict | None = None, dictionary: kpis.KpiDictionary | None = None) -> dict[str, dict]:
    """Metric name -> {column, aggregate, expression, label, unit, description, kpi} of dataset ``name``.

    A metric named after a KPI takes the KPI's label, unit and description; any other names a column, and its
    description is the column's published description."""
    spec = spec or load_spec()
    dictionary = dictionary or kpis.load_kpi_dictionary()
    dataset = spec["datasets"][name]
    described = extracts.column_descriptions(name, dictionary)
    published = extracts.published_names(name)
    out = {}
    rows = dataset.get("kpi_rows")
    for kpi in rows["kpis"] if rows else ():
        k = dictionary[kpi]
        expression = f"{rows['aggregate']}(CASE WHEN {ident(rows['key'])} = {literal(kpi)} THEN {ident(rows['value'])} END)"
        out[kpi] = {"column": rows["value"], "aggregate": rows["aggregate"], "expression": expression, "label": k.label,
                    "unit": k.unit, "description": k.description, "kpi": kpi}
    for metric, body in (dataset.get("metrics") or {}).items():
        body = body if isinstance(body, dict) else {"aggregate": body}
        if metric in dictionary.kpis:
            if "label" in body or "unit" in body:
                raise ValueError(f"dataset {name}: metric {metric} is a KPI; its label and unit come from config/kpis.yaml")
            k = dictionary[metric]
            column = body.get("column", metric if metric in extracts.EXTRACT_COLUMNS[name] else published.get(metric, metric))
            label, unit, description = k.label, k.unit, k.description
        elif body.get("per_model_of") in dictionary.kpis:  # one model's column of a per-model KPI (expand_per_model)
            k = dictionary[body["per_model_of"]]
            column, label, unit = body["column"], f"{k.label} ({models.model_label(body['model'])})", k.unit
            description = f"{models.model_label(body['model'])} model. {k.description}"
        else:
            column, label, unit = body["column"], body["label"], body["unit"]
            label = f"{label} ({models.model_label(body['model'])})" if "model" in body else label
            description = described.get(column, "")
        kpi = metric if metric in dictionary.kpis else body.get("per_model_of") if body.get("per_model_of") in dictionary.kpis else None
        out[metric] = {"column": column, "aggregate": body["aggregate"], "expression": f"{body['aggregate']}({ident(column)})",
                       "label": label, "unit": unit, "description": description, "kpi": kpi}
    return out


# ------------------------------------------------------------------------------------------ checks


def chart_columns(chart: dict) -> list[str]:
    """Every column a chart spec names (axis, groupings, table columns, filters)."""
    cols = [*chart.get("groupby", []), *chart.get("columns", []), *chart.get("rows", []), *chart.get("cols", []), *chart.get("where", {})]
    return cols + ([chart["x"]] if "x" in chart else [])


def check_spec(spec: dict | None = None, dictionary: kpis.KpiDictionary | None = None) -> None:
    """Raise ValueError naming every chart whose dataset, columns or metrics the extracts and the spec do not have."""
    spec = spec or load_spec()
    dictionary = dictionary or kpis.load_kpi_dictionary()
    problems = [f"dataset {n} is not in EXTRACT_COLUMNS" for n in missing_extracts(spec)]
    metrics = {n: metric_definitions(n, spec, dictionary) for n in spec["datasets"] if n in extracts.EXTRACT_COLUMNS}
    for n, defs in metrics.items():
        problems += [f"dataset {n}: metric {m} reads unknown column {d['column']}" for m, d in defs.items()
                     if d["column"] not in extracts.EXTRACT_COLUMNS[n]]
        time = spec["datasets"][n].get("time_column")
        if time and extracts.EXTRACT_COLUMNS[n].get(time) not in TEMPORAL:
            problems.append(f"dataset {n}: time_column {time} is not a date or timestamp column")
    for role, slugs in spec["roles"].items():
        problems += [f"role {role}: unknown dashboard {s}" for s in slugs if s not in spec["dashboards"]]
    for slug, chart in charts(spec).items():
        problems += [f"chart {slug}: unknown key {k}" for k in sorted(set(chart) - CHART_KEYS)]
        name = chart["dataset"]
        if name not in metrics:
            problems.append(f"chart {slug}: unknown dataset {name}")
            continue
        if chart["viz"] not in VIZ:
            problems.append(f"chart {slug}: unknown viz {chart['viz']}")
        problems += [f"chart {slug}: {name} has no column {c}" for c in chart_columns(chart) if c not in extracts.EXTRACT_COLUMNS[name]]
        problems += [f"chart {slug}: {name} has no metric {m}" for m in chart.get("metrics", []) if m not in metrics[name]]
        if chart["viz"] in ("big_number", "line") and "x" not in chart and not spec["datasets"][name].get("time_column"):
            problems.append(f"chart {slug}: {chart['viz']} needs x or a dataset time_column")
        if bool(chart.get("columns")) == bool(chart.get("metrics")):
            problems.append(f"chart {slug}: give either metrics or columns (a table of rows)")
    if problems:
        raise ValueError("dashboards.yaml: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------ YAML objects


def database_yaml(spec: dict, bi_database: Path) -> dict:
    """The read-only DuckDB BI database."""
    return {
        "database_name": spec["database"], "sqlalchemy_uri": f"duckdb:///{Path(bi_database).expanduser().resolve()}",
        "cache_timeout": None, "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
        "allow_dml": False, "allow_file_upload": False, "impersonate_user": False, "configuration_method": "sqlalchemy_form",
        "extra": {"engine_params": {"connect_args": {"read_only": True}}, "metadata_params": {}, "allows_virtual_table_explore": True},
        "uuid": database_uuid(spec["database"]), "version": VERSION,
    }


def dataset_yaml(name: str, spec: dict, dictionary: kpis.KpiDictionary) -> dict:
    """One extract as a physical dataset: typed, described columns and the spec's metrics."""
    dataset = spec["datasets"][name]
    described = extracts.column_descriptions(name, dictionary)
    formats = spec["number_formats"]
    columns = [
        {"column_name": col, "verbose_name": None, "is_dttm": kind in TEMPORAL, "is_active": True, "type": SQL_TYPES[kind],
         "advanced_data_type": None, "groupby": True, "filterable": True, "expression": None, "description": described.get(col) or None,
         "python_date_format": None, "extra": {}}
        for col, kind in extracts.EXTRACT_COLUMNS[name].items()
    ]
    metrics = [
        {"metric_name": metric, "verbose_name": d["label"], "metric_type": d["aggregate"].lower(), "expression": d["expression"],
         "description": d["description"], "d3format": formats[d["unit"]], "currency": None, "warning_text": None,
         "extra": {"kpi": d["kpi"]} if d["kpi"] else {}}
        for metric, d in metric_definitions(name, spec, dictionary).items()
    ]
    return {
        "table_name": name, "main_dttm_col": dataset.get("time_column"), "description": dataset.get("description"),
        "default_endpoint": None, "offset": 0, "cache_timeout": None, "schema": SCHEMA, "sql": None, "params": None,
        "template_params": None, "filter_select_enabled": True, "fetch_values_predicate": None, "extra": None,
        "normalize_columns": False, "catalog": None, "currency_code_column": None, "always_filter_main_dttm": False, "folders": None,
        "uuid": dataset_uuid(name), "metrics": metrics, "columns": columns, "version": VERSION,
        "database_uuid": database_uuid(spec["database"]),
    }


def column_format(name: str, column: str, spec: dict, dictionary: kpis.KpiDictionary) -> str:
    """d3 format of a number column shown as is: its KPI's unit, else the unit of the spec's metric of that name over it."""
    kpi = extracts.column_kpi(name, column, dictionary)
    if kpi is not None:
        return spec["number_formats"][dictionary[kpi].unit]
    same = metric_definitions(name, spec, dictionary).get(column)  # a metric named after the column shows the same figure
    if same is not None and same["column"] == column:
        return spec["number_formats"][same["unit"]]
    return spec["number_formats"]["count"] if extracts.EXTRACT_COLUMNS[name][column] == "int" else FLOAT_FORMAT


def _adhoc_filters(slug: str, chart: dict, time_column: str | None) -> list[dict]:
    out = []
    for i, (col, value) in enumerate(chart.get("where", {}).items()):
        op = "IS NULL" if value is None else "IN" if isinstance(value, list) else "=="
        out.append({"clause": "WHERE", "expressionType": "SIMPLE", "subject": col, "operator": op,
                    "operatorId": {"==": "EQUALS", "IN": "IN", "IS NULL": "IS_NULL"}[op], "comparator": value, "isExtra": False,
                    "isNew": False, "filterOptionName": f"filter_{slug}_{i}"})
    if chart.get("where_sql"):
        out.append({"clause": "WHERE", "expressionType": "SQL", "sqlExpression": chart["where_sql"], "isExtra": False, "isNew": False,
                    "filterOptionName": f"filter_{slug}_sql"})
    if time_column:
        out.append({"clause": "WHERE", "expressionType": "SIMPLE", "subject": time_column, "operator": "TEMPORAL_RANGE",
                    "comparator": NO_FILTER, "isExtra": False, "isNew": False, "filterOptionName": f"filter_{slug}_time"})
    return out


def _query_filters(adhoc: list[dict]) -> tuple[list[dict], str]:
    """Adhoc filters as a query object's ``filters`` and ``extras.where``."""
    filters, where = [], []
    for f in adhoc:
        if f["expressionType"] == "SQL":
            where.append(f"({f['sqlExpression']})")
        elif f["operator"] == "IS NULL":
            filters.append({"col": f["subject"], "op": "IS NULL"})
        else:
            filters.append({"col": f["subject"], "op": f["operator"], "val": f["comparator"]})
    return filters, " AND ".join(where)


def _axis(column: str, grain: str | None) -> dict:
    out = {"columnType": "BASE_AXIS", "sqlExpression": column, "label": column, "expressionType": "SQL"}
    return {"timeGrain": grain, **out} if grain else out


def chart_yaml(slug: str, chart: dict, spec: dict, dictionary: kpis.KpiDictionary) -> dict:
    """One chart: ``params`` (the explore form data) and the matching ``query_context`` the chart-data API runs."""
    name = chart["dataset"]
    kinds = extracts.EXTRACT_COLUMNS[name]
    time_column = spec["datasets"][name].get("time_column")
    viz = VIZ[chart["viz"]]
    metrics = list(chart.get("metrics", []))
    defs = metric_definitions(name, spec, dictionary)
    number_format = spec["number_formats"][defs[metrics[0]]["unit"]] if metrics else "SMART_NUMBER"
    limit = chart.get("limit", ROW_LIMIT)
    adhoc = _adhoc_filters(slug, chart, time_column)
    filters, where = _query_filters(adhoc)
    base = {"datasource": "0__table", "viz_type": viz, "adhoc_filters": adhoc, "annotation_layers": [], "extra_form_data": {},
            "dashboards": [], "url_params": {}}
    if time_column:
        base["granularity_sqla"] = time_column
    query: dict[str, Any] = {"filters": filters, "extras": {"having": "", "where": where}, "applied_time_extras": {}, "columns": [],
                             "metrics": metrics, "orderby": [], "annotation_layers": [], "row_limit": limit, "series_limit": 0,
                             "order_desc": True, "url_params": {}, "custom_params": {}, "custom_form_data": {}, "time_range": NO_FILTER}
    groupby = list(chart.get("groupby", []))
    order = chart.get("order_by") or (metrics[0] if metrics else None)
    if viz == "table":
        if chart.get("columns"):
            params = {"query_mode": "raw", "all_columns": chart["columns"], "groupby": [], "metrics": [], "order_by_cols": [],
                      "percent_metrics": [], "row_limit": limit,
                      "column_config": {c: {"d3NumberFormat": column_format(name, c, spec, dictionary)} for c in chart["columns"]
                                        if kinds[c] in ("float", "int")}}
            query.update(columns=chart["columns"], metrics=[], orderby=[])
        else:
            params = {"query_mode": "aggregate", "groupby": groupby, "metrics": metrics, "all_columns": [], "percent_metrics": [],
                      "timeseries_limit_metric": order, "order_desc": True, "row_limit": limit}
            query.update(columns=groupby, orderby=[[order, False]])
        # 20 rows a page: a dashboard draws a page, not every row (search and sorting still cover all of them)
        params.update(table_timestamp_format="smart_date", server_pagination=False, include_search=True, show_cell_bars=True,
                      allow_render_html=False, page_length=TABLE_PAGE_LENGTH)
    elif viz == "pivot_table_v2":
        params = {"groupbyRows": chart["rows"], "groupbyColumns": chart.get("cols", []), "metrics": metrics, "metricsLayout": "COLUMNS",
                  "aggregateFunction": "Maximum", "valueFormat": number_format, "row_limit": limit, "order_desc": True,
                  "rowOrder": "key_a_to_z", "colOrder": "key_a_to_z", "rowTotals": False, "colTotals": False, "date_format": "smart_date",
                  "time_grain_sqla": "P1D"}
        query.update(columns=[*chart["rows"], *chart.get("cols", [])], orderby=[[metrics[0], False]])
    elif viz == "pie":
        params = {"groupby": groupby, "metric": metrics[0], "row_limit": limit, "sort_by_metric": True, "show_labels": True,
                  "label_type": "key_percent", "number_format": number_format, "show_legend": True, "donut": False}
        query.update(columns=groupby, orderby=[[metrics[0], False]])
    elif viz == "big_number_total":
        params = {"metric": metrics[0], "y_axis_format": number_format, "header_font_size": 0.4, "subheader_font_size": 0.15}
    else:  # big_number, echarts_timeseries_line / _bar: an x axis (temporal with a grain, or categorical / numeric)
        x = chart.get("x", time_column)
        grain = chart.get("grain", "P1D") if kinds[x] in TEMPORAL else None
        if viz == "big_number":
            params = {"metric": metrics[0], "x_axis": x, "time_grain_sqla": grain, "compare_lag": 1, "compare_suffix": "vs previous period",
                      "show_trend_line": True, "start_y_axis_at_zero": False, "y_axis_format": number_format,
                      "header_font_size": 0.4, "subheader_font_size": 0.15, "rolling_type": "None"}
        else:
            params = {"x_axis": x, "time_grain_sqla": grain, "metrics": metrics, "groupby": groupby, "row_limit": limit,
                      "series_limit": chart.get("limit", 0), "series_limit_metric": order if chart.get("limit") else None,
                      "order_desc": True, "truncate_metric": True, "show_legend": True, "legendType": "scroll",
                      "legendOrientation": "top", "rich_tooltip": True, "x_axis_time_format": "smart_date",
                      "y_axis_format": number_format, "markerEnabled": viz.endswith("line"), "zoomable": False}
            if viz.endswith("bar"):
                params.update(orientation="vertical", stack="Stack" if chart.get("stack") else None, x_axis_sort_asc=True)
        params["row_limit"] = ROW_LIMIT  # `limit` caps the series here, not the rows
        query.update(columns=[_axis(x, grain), *groupby], series_columns=groupby, orderby=[[metrics[0], False]] if groupby else [],
                     series_limit=chart.get("limit", 0), row_limit=ROW_LIMIT)
        if groupby and chart.get("limit"):
            query["series_limit_metric"] = order
        query["post_processing"] = [
            {"operation": "pivot", "options": {"index": [x], "columns": groupby, "aggregates": {m: {"operator": "mean"} for m in metrics},
                                               "drop_missing_columns": False}},
            {"operation": "flatten"},
        ]
    form_data = {**base, **params}
    query_context = {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [query], "form_data": form_data,
                     "result_format": "json", "result_type": "full"}
    return {
        "slice_name": chart["title"], "description": chart.get("description"), "certified_by": None, "certification_details": None,
        "viz_type": viz, "params": form_data, "query_context": json.dumps(query_context, sort_keys=True), "cache_timeout": None,
        "uuid": chart_uuid(slug), "version": VERSION, "dataset_uuid": dataset_uuid(name),
    }


def native_filters(slug: str, spec: dict, chart_ids: dict[str, int]) -> list[dict]:
    """The dashboard's date-range, attribution-model and channel filters, each excluding the charts whose dataset
    lacks the filtered column (or that pin it: ``unfiltered``). ``scope.excluded`` holds the bundle's chart ids
    (``position`` ``meta.chartId``), which Superset's importer remaps to the new ids."""
    on_board = {c: chart for c, chart in charts(spec).items() if chart["dashboard"] == slug}
    out = []
    for key, label in spec["filters"].items():
        def has(chart: dict, key: str = key) -> bool:
            dataset = spec["datasets"][chart["dataset"]]
            present = dataset.get("time_column") if key == "date" else key in extracts.EXTRACT_COLUMNS[chart["dataset"]]
            return bool(present) and key not in chart.get("unfiltered", [])
        excluded = sorted(chart_ids[c] for c, chart in on_board.items() if not has(chart))
        flt = {"id": f"NATIVE_FILTER-{_uuid('filter', f'{slug}:{key}')[:18]}", "name": label, "type": "NATIVE_FILTER", "description": "",
               "cascadeParentIds": [], "scope": {"rootPath": ["ROOT_ID"], "excluded": excluded},
               "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}}}
        if key == "date":
            flt.update(filterType="filter_time", targets=[{}], controlValues={"enableEmptyFilter": False})
        else:
            target = next(c["dataset"] for c in on_board.values() if has(c)) if len(excluded) < len(on_board) else None
            if target is None:
                raise ValueError(f"dashboard {slug}: no chart has column {key} for its {label} filter")
            flt.update(filterType="filter_select", targets=[{"datasetUuid": dataset_uuid(target), "column": {"name": key}}],
                       controlValues={"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                                      "searchAllOptions": False, "inverseSelection": False})
        out.append(flt)
    return out


def dashboard_yaml(slug: str, spec: dict, chart_ids: dict[str, int]) -> dict:
    """One dashboard: rows of charts (in tabs, when the spec has them: Superset draws a tab's charts when it is opened)
    and its native filters."""
    board = spec["dashboards"][slug]
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"id": "ROOT_ID", "type": "ROOT", "children": []},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": board["title"]}},
    }
    by_tab = tabs(board)
    if None in by_tab:
        position["ROOT_ID"]["children"].append("GRID_ID")
        position["GRID_ID"] = {"id": "GRID_ID", "type": "GRID", "children": [], "parents": ["ROOT_ID"]}
        containers = {None: ("GRID_ID", ["ROOT_ID", "GRID_ID"])}
    else:
        tabs_id = f"TABS-{slug}"
        position["ROOT_ID"]["children"].append(tabs_id)
        position[tabs_id] = {"id": tabs_id, "type": "TABS", "children": [], "parents": ["ROOT_ID"], "meta": {}}
        containers = {}
        for t, title in enumerate(by_tab):
            tab_id = f"TAB-{slug}-{t}"
            position[tabs_id]["children"].append(tab_id)
            position[tab_id] = {"id": tab_id, "type": "TAB", "children": [], "parents": ["ROOT_ID", tabs_id],
                                "meta": {"text": title, "defaultText": title, "placeholder": title}}
            containers[title] = (tab_id, ["ROOT_ID", tabs_id, tab_id])
    i = 0
    for title, tab_rows in by_tab.items():
        parent, path = containers[title]
        for row in tab_rows:
            row_id = f"ROW-{slug}-{i}"
            position[parent]["children"].append(row_id)
            position[row_id] = {"id": row_id, "type": "ROW", "children": [], "parents": path,
                                "meta": {"background": "BACKGROUND_TRANSPARENT"}}
            for chart, body in row.items():
                chart_id = f"CHART-{chart}"
                position[row_id]["children"].append(chart_id)
                width = body.get("width", WIDTHS.get(body["viz"], 6))
                position[chart_id] = {"id": chart_id, "type": "CHART", "children": [], "parents": [*path, row_id],
                                      "meta": {"chartId": chart_ids[chart], "uuid": chart_uuid(chart), "sliceName": body["title"],
                                               "width": width, "height": 50}}
            if sum(position[c]["meta"]["width"] for c in position[row_id]["children"]) > 12:
                raise ValueError(f"dashboard {slug}: row {i} is wider than 12")
            i += 1
    metadata = {
        "native_filter_configuration": native_filters(slug, spec, chart_ids), "chart_configuration": {},
        "global_chart_configuration": {"scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "chartsInScope": []},
        "cross_filters_enabled": True, "color_scheme": "", "refresh_frequency": 0, "expanded_slices": {}, "label_colors": {},
        "shared_label_colors": [], "map_label_colors": {}, "color_scheme_domain": [], "timed_refresh_immune_slices": [],
    }
    return {
        "dashboard_title": board["title"], "description": board.get("description"), "css": "", "slug": slug, "certified_by": None,
        "certification_details": None, "published": True, "uuid": dashboard_uuid(slug), "position": position, "metadata": metadata,
        "version": VERSION,
    }


def bundle_files(bi_database: Path, spec: dict | None = None) -> dict[str, dict]:
    """Path inside the bundle -> YAML object, for every file of the import bundle."""
    spec = spec or load_spec()
    dictionary = kpis.load_kpi_dictionary()
    check_spec(spec, dictionary)
    db_file = spec["database"].replace(" ", "_")
    files = {"metadata.yaml": {"version": VERSION, "type": "Dashboard", "timestamp": TIMESTAMP},
             f"databases/{db_file}.yaml": database_yaml(spec, bi_database)}
    for name in sorted(spec["datasets"]):
        files[f"datasets/{db_file}/{name}.yaml"] = dataset_yaml(name, spec, dictionary)
    all_charts = charts(spec)
    chart_ids = {slug: i for i, slug in enumerate(all_charts, start=1)}
    for slug, chart in all_charts.items():
        files[f"charts/{slug}.yaml"] = chart_yaml(slug, chart, spec, dictionary)
    for slug in spec["dashboards"]:
        files[f"dashboards/{slug}.yaml"] = dashboard_yaml(slug, spec, chart_ids)
    return files


def build_bundle(out_zip: Path, bi_database: Path) -> Path:
    """Write the Superset import bundle (zip of YAML) of the spec's dashboards over the BI database file
    ``bi_database`` (opened read-only); byte-identical for the same spec, extracts and path. Returns ``out_zip``."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    files = bundle_files(Path(bi_database))
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{ROOT}/{path}", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, yaml.safe_dump(files[path], sort_keys=True, allow_unicode=True, width=120))
    return out_zip


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m marketing_assets.bi.bundle OUT.zip BI_DATABASE.duckdb")
    sys.stdout.write(f"{build_bundle(Path(sys.argv[1]), Path(sys.argv[2]))}\n")
