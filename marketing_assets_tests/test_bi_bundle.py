"""The dashboards spec and its Superset import bundle: charts read published columns, descriptions come from the
extracts and the KPI dictionary, every dashboard filters by date, model and channel, roles get what they open."""

import io
import json
import re
import zipfile

import pytest
import yaml

from marketing_assets import extracts
from marketing_assets.bi import bundle
from marketing_assets.lib.attribution.models import model_label, model_names
from marketing_assets.lib.kpis import load_kpi_dictionary

SPEC = bundle.load_spec()
CHARTS = bundle.charts(SPEC)
DICTIONARY = load_kpi_dictionary()


@pytest.fixture
def published():
    """Skip while an extract of the spec is not in EXTRACT_COLUMNS yet (it is published by another change)."""
    missing = bundle.missing_extracts(SPEC)
    if missing:
        pytest.skip(f"extracts not in EXTRACT_COLUMNS yet: {', '.join(missing)}")


@pytest.fixture
def files(published, tmp_path):
    out = bundle.build_bundle(tmp_path / "bundle.zip", tmp_path / "bi.duckdb")
    with zipfile.ZipFile(out) as zf:
        return {n.split("/", 1)[1]: yaml.safe_load(zf.read(n)) for n in zf.namelist()}


@pytest.mark.parametrize("slug", list(CHARTS))
def test_every_chart_reads_published_columns_and_defined_metrics(slug):
    chart = CHARTS[slug]
    name = chart["dataset"]
    if name not in extracts.EXTRACT_COLUMNS:
        pytest.skip(f"{name} is not in EXTRACT_COLUMNS yet")
    columns = extracts.EXTRACT_COLUMNS[name]
    assert set(bundle.chart_columns(chart)) <= set(columns)
    metrics = bundle.metric_definitions(name, SPEC, DICTIONARY)
    assert set(chart.get("metrics", [])) <= set(metrics)
    assert {metrics[m]["column"] for m in chart.get("metrics", [])} <= set(columns)
    assert set(chart) <= bundle.CHART_KEYS


def test_spec_passes_its_checks(published):
    bundle.check_spec(SPEC, DICTIONARY)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda c: c.update(groupby=["no_such_column"]), "has no column no_such_column"),
        (lambda c: c.update(metrics=["no_such_metric"]), "has no metric no_such_metric"),
        (lambda c: c.update(colour="red"), "unknown key colour"),
    ],
)
def test_check_spec_names_the_broken_chart(published, change, problem):
    spec = bundle.load_spec()
    change(bundle.rows(spec["dashboards"]["channel-performance"])[0]["chan-spend-leads"])
    with pytest.raises(ValueError, match=f"chan-spend-leads: .*{problem}"):
        bundle.check_spec(spec, DICTIONARY)


def test_metrics_aggregate_one_published_column_and_never_recompute_a_kpi(published):
    one_column = re.compile(r'^(MAX|MIN|SUM|COUNT)\("[a-z0-9_]+"\)$')
    long_form = re.compile(r'^MAX\(CASE WHEN "kpi" = \'[a-z0-9_]+\' THEN "value" END\)$')
    for name in SPEC["datasets"]:
        for metric, d in bundle.metric_definitions(name, SPEC, DICTIONARY).items():
            assert one_column.match(d["expression"]) or long_form.match(d["expression"]), (name, metric, d["expression"])


def test_kpi_metrics_take_label_description_and_format_from_the_dictionary(files):
    checked = 0
    for path, body in files.items():
        if not path.startswith("datasets/"):
            continue
        for metric in body["metrics"]:
            kpi = DICTIONARY.kpis.get(metric["metric_name"])
            per_model = (metric.get("extra") or {}).get("kpi")
            if kpi is None and per_model:  # one model's figure of a KPI published per model: the KPI's words, the model named
                k, model = DICTIONARY[per_model], model_label(metric["metric_name"].removeprefix(per_model + "_"))
                assert metric["metric_name"].removeprefix(per_model + "_") in model_names()
                assert (metric["verbose_name"], metric["description"]) == (f"{k.label} ({model})", f"{model} model. {k.description}")
                assert metric["d3format"] == SPEC["number_formats"][k.unit]
                checked += 1
                continue
            if kpi is None:
                assert metric["description"] == extracts.column_descriptions(body["table_name"], DICTIONARY).get(
                    re.search(r'"([a-z0-9_]+)"', metric["expression"]).group(1), "")
                continue
            checked += 1
            assert (metric["verbose_name"], metric["description"]) == (kpi.label, kpi.description)
            assert metric["d3format"] == SPEC["number_formats"][kpi.unit]
            assert metric["extra"] == {"kpi": kpi.name}
    assert checked > 20
    # the spec never re-types a KPI's label or unit
    for name, dataset in SPEC["datasets"].items():
        for metric, body in (dataset.get("metrics") or {}).items():
            if metric in DICTIONARY.kpis:
                assert not (isinstance(body, dict) and {"label", "unit"} & set(body)), (name, metric)


def test_dataset_columns_are_typed_and_described_by_the_extracts(files):
    datasets = {b["table_name"]: b for p, b in files.items() if p.startswith("datasets/")}
    assert set(datasets) == set(SPEC["datasets"])
    for name, body in datasets.items():
        described = extracts.column_descriptions(name, DICTIONARY)
        assert [c["column_name"] for c in body["columns"]] == list(extracts.EXTRACT_COLUMNS[name])
        for col in body["columns"]:
            assert (col["description"] or "") == described[col["column_name"]]
            assert col["is_dttm"] == (extracts.EXTRACT_COLUMNS[name][col["column_name"]] in bundle.TEMPORAL)
        assert body["uuid"] == bundle.dataset_uuid(name)
        assert body["schema"] == "extracts"


def test_database_is_the_read_only_bi_file(files, tmp_path):
    (db,) = [b for p, b in files.items() if p.startswith("databases/")]
    assert db["database_name"] == "Marketing extracts"
    assert db["sqlalchemy_uri"] == f"duckdb:///{(tmp_path / 'bi.duckdb').resolve()}"
    assert db["extra"]["engine_params"] == {"connect_args": {"read_only": True}}
    assert files["metadata.yaml"]["type"] == "Dashboard"


def test_every_chart_carries_a_query_context_matching_its_params(files):
    charts = {p.removeprefix("charts/").removesuffix(".yaml"): b for p, b in files.items() if p.startswith("charts/")}
    assert set(charts) == set(CHARTS)
    for slug, body in charts.items():
        assert body["uuid"] == bundle.chart_uuid(slug)
        assert body["dataset_uuid"] == bundle.dataset_uuid(CHARTS[slug]["dataset"])
        context = json.loads(body["query_context"])
        assert context["form_data"] == body["params"] and body["params"]["viz_type"] == body["viz_type"]
        (query,) = context["queries"]
        assert query["metrics"] == CHARTS[slug].get("metrics", [])
        assert query["columns"], slug


@pytest.mark.parametrize("slug", list(SPEC["dashboards"]))
def test_every_dashboard_filters_date_model_and_channel_scoped_to_charts_with_the_column(files, slug):
    board = files[f"dashboards/{slug}.yaml"]
    assert board["uuid"] == bundle.dashboard_uuid(slug) and board["slug"] == slug
    on_board = {c["meta"]["chartId"]: c["id"].removeprefix("CHART-") for c in board["position"].values()
                if isinstance(c, dict) and c.get("type") == "CHART"}
    assert set(on_board.values()) == {c for c, chart in CHARTS.items() if chart["dashboard"] == slug}
    filters = board["metadata"]["native_filter_configuration"]
    kinds = {(f["filterType"], f["targets"][0].get("column", {}).get("name")) for f in filters}
    assert kinds == {("filter_time", None), ("filter_select", "attribution_model"), ("filter_select", "channel_group")}
    for f in filters:
        column = f["targets"][0].get("column", {}).get("name")
        excluded = set(f["scope"]["excluded"])
        assert excluded <= set(on_board) and excluded != set(on_board), f["name"]  # at least one chart in scope
        for chart_id, chart_slug in on_board.items():
            chart = CHARTS[chart_slug]
            if column is None:
                applies = bool(SPEC["datasets"][chart["dataset"]].get("time_column"))
            else:
                applies = column in extracts.EXTRACT_COLUMNS[chart["dataset"]] and column not in chart.get("unfiltered", [])
            assert (chart_id not in excluded) == applies, (f["name"], chart_slug)
        if column is not None:
            target = f["targets"][0]["datasetUuid"]
            assert target in {bundle.dataset_uuid(d) for d in bundle.dashboard_datasets(SPEC)[slug]}


def test_bundle_is_deterministic(published, tmp_path):
    first = bundle.build_bundle(tmp_path / "a.zip", tmp_path / "bi.duckdb").read_bytes()
    second = bundle.build_bundle(tmp_path / "b.zip", tmp_path / "bi.duckdb").read_bytes()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        names = zf.namelist()
    assert names == sorted(names) and all(n.startswith(f"{bundle.ROOT}/") for n in names)


def test_uuids_are_stable_and_distinct():
    assert bundle.chart_uuid("exec-revenue") == bundle.chart_uuid("exec-revenue")
    assert bundle.dashboard_uuid("attribution") != bundle.chart_uuid("attribution") != bundle.dataset_uuid("attribution")
    assert len({bundle.chart_uuid(c) for c in CHARTS}) == len(CHARTS)


def test_role_grants_cover_the_datasets_of_the_granted_dashboards():
    grants = bundle.role_grants(SPEC)
    used = bundle.dashboard_datasets(SPEC)
    assert set(grants) == {"executive", "marketing", "analyst"}
    for role, grant in grants.items():
        assert set(grant["dashboards"]) <= set(SPEC["dashboards"])
        for slug in grant["dashboards"]:
            assert used[slug] <= set(grant["datasets"]), (role, slug)
        assert set(grant["datasets"]) == set().union(*(used[s] for s in grant["dashboards"]))
    assert {r for r, g in grants.items() if "opportunity_credit" in g["datasets"]} == {"marketing", "analyst"}
    drill_down = {n for n, d in SPEC["datasets"].items() if d.get("drill_down")}
    assert drill_down and not drill_down & set(grants["executive"]["datasets"])
    assert set(grants["analyst"]["dashboards"]) == set(SPEC["dashboards"])
    assert "data-quality" not in grants["marketing"]["dashboards"]
    assert "channel-performance" not in grants["executive"]["dashboards"]
