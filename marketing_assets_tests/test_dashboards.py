"""The dashboards end to end: the real CLI sets up Superset on the small demo's published extracts, the real
server answers the API, and headless Chromium draws every dashboard for every role allowed to see it.

One server for the module (setup ≈ 1 min with the BI venv installed, the first time also the install):

- access: every dashboard opens for the roles granted it and is refused to the others, in the API and in the
  browser; the opportunity-level dataset and drill to detail are refused to the executive role;
- numbers: for three figures per dashboard the chart-data API returns the published extract's value, computed
  here independently with DuckDB over the extract's Parquet file;
- drill to detail returns opportunity rows (pseudonymised keys, no raw identifiers); a filter changes the
  figures (and they equal the extract's figures for that filter); a refreshed extract shows without a restart;
- screenshots of every dashboard for each allowed role and of a drill to detail, in MARKETING_TEST_ARTEFACTS
  (else the test's temp dir), asserted not blank.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest

from marketing_assets.bi import bundle
from marketing_assets.bi.server import DEMO_PASSWORD, ROLES, dashboard_url
from marketing_assets.lib.attribution.models import model_names, reference_model
from marketing_assets_tests.bi_harness import HttpError, SupersetServer, SupersetSession, browser_as, charts_drawn_js, open_other_tabs, open_tab_js
from marketing_assets_tests.browser import CdpBrowser, ink_share

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REQUIRE_CHROMIUM = os.environ.get("MARKETING_REQUIRE_CHROMIUM") == "1"
SETTLE_S = 1.5  # drawn charts still animate (lines grow, bars rise): screenshots wait for the final picture


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    root = os.environ.get("MARKETING_TEST_ARTEFACTS")
    out = Path(root) / "dashboards" if root else tmp_path_factory.mktemp("dashboard_artefacts")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def bi(demo_graph, tmp_path_factory, artefacts):
    """The small demo's extracts served by Superset, set up by ``python -m marketing_assets.bi setup``.

    The extracts are copied: the refresh test rewrites one, and the session-wide demo graph must stay as it is."""
    _, graph, landing = demo_graph
    tmp = tmp_path_factory.mktemp("bi")
    extracts = tmp / "extracts"
    shutil.copytree(graph / "extracts", extracts)
    server = SupersetServer(graph / "warehouse.duckdb", extracts, landing, tmp / "bi_home", artefacts / "superset.log")
    try:
        server.setup()
        server.start()
        yield server, extracts
    finally:
        server.stop()
        (artefacts / "timings.json").write_text(json.dumps({"setup_s": server.setup_seconds, "ready_s": server.ready_seconds}, indent=2))


@pytest.fixture(scope="module")
def sessions(bi) -> dict[str, SupersetSession]:
    server, _ = bi
    return {role: SupersetSession(server.base, role, DEMO_PASSWORD) for role in ROLES}


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if REQUIRE_CHROMIUM:
            pytest.fail("chromium is required (MARKETING_REQUIRE_CHROMIUM=1) but not installed")
        pytest.skip("chromium not installed")
    b = CdpBrowser(chromium, timeout=90)
    b.call("Emulation.setDeviceMetricsOverride", width=1600, height=2400, deviceScaleFactor=1, mobile=False)
    try:
        yield b
    finally:
        b.close()


def _granted(role: str) -> list[str]:
    return list(bundle.role_grants()[role]["dashboards"])


def _slugs() -> list[str]:
    return list(bundle.dashboard_datasets())


# ----------------------------------------------------------------------------------------------- access


def test_every_dashboard_is_served_to_its_roles_and_refused_to_the_others(sessions):
    for role, session in sessions.items():
        listed = {d["slug"] for d in session.get("/api/v1/dashboard/?q=(page_size:100)")["result"]}
        assert listed == set(_granted(role)), f"{role} lists {sorted(listed)}"
        for slug in _slugs():
            status = session.status(f"/api/v1/dashboard/{slug}")
            if slug in _granted(role):
                assert status == 200, f"{role} cannot open {slug} ({status})"
            else:
                assert status in (403, 404), f"{role} opens {slug} ({status}) but is not granted it"


def _charts_of(slug: str) -> list[str]:
    return [chart for chart, body in bundle.charts().items() if body["dashboard"] == slug]


def _screenshot(browser: CdpBrowser, png: Path) -> None:
    assert "error" not in browser.evaluate(
        "[...document.querySelectorAll('.dashboard-component-chart-holder')].map(e => e.innerText).join(' ').toLowerCase()"
        ".includes('unexpected error') ? 'error' : 'ok'"
    )
    time.sleep(SETTLE_S)
    browser.screenshot(png)
    assert ink_share(png) > 0.02, f"{png} looks blank"


def test_a_tabbed_dashboard_draws_only_its_first_tab_until_another_is_opened(sessions, browser, bi):
    """The executive overview opens on its first tab: only that tab's charts are queried and drawn; its second tab's
    charts draw when the tab is clicked."""
    server, _ = bi
    slug = "executive-overview"
    by_tab = bundle.tabs(bundle.load_spec()["dashboards"][slug])
    assert len(by_tab) >= 2
    browser_as(browser, sessions["analyst"])
    first = bundle.first_view(slug)
    browser.load(dashboard_url(server.base, slug), charts_drawn_js(len(first)))
    holders = "document.querySelectorAll('.dashboard-component-chart-holder').length"
    assert browser.evaluate(holders) == len(first)
    second = list(by_tab)[1]
    both = len(first) + sum(len(row) for row in by_tab[second])
    assert browser.evaluate(open_tab_js(second)) is True
    browser.wait_for(charts_drawn_js(both), f"tab {second}")
    assert browser.evaluate(holders) == both


def test_every_dashboard_draws_in_chromium_for_each_allowed_role(sessions, browser, bi, artefacts):
    server, _ = bi
    timings = {}
    for role, session in sessions.items():
        browser_as(browser, session)
        for slug in _slugs():
            url = dashboard_url(server.base, slug)
            if slug not in _granted(role):
                browser.load(url, "document.body.innerText.length > 0")
                browser.wait_for("!document.querySelector('.dashboard-component-chart-holder')", f"{role} refused {slug}")
                continue
            # the first tab draws on opening; each further tab draws when clicked
            assert len(session.get(f"/api/v1/dashboard/{slug}/charts")["result"]) == len(_charts_of(slug))
            timings[f"{slug} as {role}"] = round(browser.load(url, charts_drawn_js(len(bundle.first_view(slug)))), 2)
            _screenshot(browser, artefacts / f"dashboard-{slug}-{role}.png")
            for t, (title, seconds) in enumerate(open_other_tabs(browser, slug).items(), start=2):
                timings[f"{slug} as {role}, tab {title}"] = round(seconds, 2)
                _screenshot(browser, artefacts / f"dashboard-{slug}-{role}-tab{t}.png")
    (artefacts / "dashboard_load_s.json").write_text(json.dumps(timings, indent=2))


# ----------------------------------------------------------------------------------------------- numbers

# Three figures per dashboard: (chart, key columns, metric, SQL giving the expected rows (keys..., value)).
# The SQL reads the warehouse tables the extracts are published from where it can (an independent source),
# else the published Parquet file ({extract} is replaced by read_parquet of the served file). Dates as epoch ms,
# as the chart-data API returns them.
FIGURES = {
    "executive-overview": [
        ("exec-revenue", ["period"], "total_revenue",
         "SELECT epoch_ms(period::TIMESTAMP), value FROM {executive_kpis} WHERE grain = 'month' AND kpi = 'total_revenue' AND dimension IS NULL AND period_complete"),
        ("exec-roi-by-channel", ["channel_group"], "ad_spend",
         "SELECT channel_group, ad_spend FROM {marketing_roi} WHERE level = 'channel' AND attribution_model = 'linear'"),
        ("exec-pipeline-by-channel", ["channel_group", "attribution_model"], "attributed_pipeline",
         "SELECT channel_group, attribution_model, attributed_pipeline FROM {marketing_roi} WHERE level = 'channel'"),
    ],
    "channel-performance": [
        ("chan-spend-leads", ["channel_group"], "cost_per_lead",
         "SELECT channel_group, cost_per_lead FROM {marketing_roi} WHERE level = 'channel' AND attribution_model = 'linear'"),
        ("chan-roas-by-model", ["channel_group", "attribution_model"], "channel_roas",
         "SELECT channel_group, attribution_model, channel_roas FROM {marketing_roi} WHERE level = 'channel'"),
        # the drill-down dataset adds up to the warehouse's attribution by campaign (every opportunity, every model;
        # the extracts label an opportunity without touches "(no campaign)", the warehouse "(unattributed)")
        # (the reference model's column)
        ("chan-pipeline-by-campaign", ["channel_group", "campaign_key"], f"attributed_pipeline_{reference_model()}",
         "SELECT channel_group, CASE WHEN channel_group = '(unattributed)' OR campaign_key IS NULL THEN '(no campaign)' ELSE campaign_key END,"
         f" pipeline_amount FROM attribution.attribution_by_campaign WHERE model = '{reference_model()}'"),
    ],
    "attribution": [
        ("attr-model-comparison", ["channel_group", "attribution_model"], "attributed_revenue",
         "SELECT channel_group, attribution_model, attributed_revenue FROM {marketing_roi} WHERE level = 'channel'"),
        ("attr-lookback", ["channel_name", "model", "lookback_days"], "share",
         "SELECT channel_name, model, lookback_days, share FROM attribution.attribution_model_comparison"),
        ("attr-lift-bars", ["channel"], "lift", "SELECT channel, lift FROM mmm.mmm_lift_test_fit"),
    ],
    "mmm-budget": [
        ("mmm-fit", ["week"], "actual", "SELECT epoch_ms(week::TIMESTAMP), actual FROM mmm.mmm_contributions"),
        ("mmm-channel-roi", ["channel_label"], "roi", "SELECT channel_label, roi FROM mmm.mmm_model"),
        ("mmm-scenario-spend", ["channel_label", "scenario"], "scenario_spend",
         "SELECT channel_label, scenario, scenario_spend FROM mmm.mmm_budget_plan"),
    ],
    "funnel-pipeline": [
        ("fun-funnel", ["stage_order", "stage", "channel_group"], "funnel_contacts",
         "SELECT stage_order, stage, channel_group, sum(contacts) FROM {funnel} GROUP BY ALL"),
        ("pipe-by-segment", ["forecast_month", "sales_segment"], "expected_revenue",
         "SELECT epoch_ms(forecast_month::TIMESTAMP), sales_segment, expected_revenue FROM {pipeline_forecast}"),
        ("cohort-retention", ["channel_group"], "pooled_cac_12m",
         "SELECT channel_group, max(pooled_cac_12m) FROM {cohort_ltv} GROUP BY ALL"),
    ],
    "data-quality": [
        ("dq-status", ["status"], "report_rows",
         "SELECT status, count(*) FROM {data_quality_report} WHERE section = 'check' GROUP BY ALL"),
        ("dq-freshness", ["asset_key"], "value",
         "SELECT asset_key, value FROM {data_quality_report} WHERE section = 'freshness'"),
        ("dq-quarantine", ["asset_key", "metric"], "value",
         "SELECT asset_key, metric, value FROM {data_quality_report} WHERE section = 'quarantine'"),
    ],
}


def _chart_ids(session: SupersetSession) -> dict[str, int]:
    """Chart slug of dashboards.yaml -> Superset chart id (matched by the bundle's deterministic UUIDs)."""
    by_uuid = {c["uuid"]: c["id"] for c in session.get("/api/v1/chart/?q=(columns:!(id,uuid),page_size:100)")["result"]}
    return {slug: by_uuid[str(bundle.chart_uuid(slug))] for slug in bundle.charts() if str(bundle.chart_uuid(slug)) in by_uuid}


def _expected(sql: str, warehouse: Path, extracts: Path) -> dict[tuple, float]:
    names = {n: f"read_parquet('{extracts / (n + '.parquet')}')" for n in bundle.load_spec()["datasets"]}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(sql.format(**names)).fetchall()
    return {tuple(_key(v) for v in r[:-1]): r[-1] for r in rows}


def _key(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _chart_figures(session: SupersetSession, chart_id: int, keys: list[str], metric: str, payload: dict | None = None) -> dict[tuple, float]:
    if payload is None:
        result = session.get(f"/api/v1/chart/{chart_id}/data/")["result"][0]
    else:
        result = session.post("/api/v1/chart/data", payload)["result"][0]
    assert not result.get("error"), result["error"]
    return {tuple(_key(row[k]) for k in keys): row[metric] for row in result["data"]}


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 0.006 + 1e-9 * abs(b)  # published money is rounded to cents


def test_three_figures_per_dashboard_equal_the_extracts(bi, sessions, demo_graph):
    _, graph, _ = demo_graph
    server, extracts = bi
    analyst = sessions["analyst"]
    ids = _chart_ids(analyst)
    assert set(FIGURES) == set(_slugs())
    for slug, figures in FIGURES.items():
        assert len(figures) >= 3
        for chart, keys, metric, sql in figures:
            assert bundle.charts()[chart]["dashboard"] == slug, f"{chart} is not on {slug}"
            expected = _expected(sql, graph / "warehouse.duckdb", extracts)
            got = _chart_figures(analyst, ids[chart], keys, metric)
            assert expected, f"{slug}/{chart}: the extract has no rows to compare"
            missing = set(expected) - set(got)
            assert not missing, f"{slug}/{chart}: the chart lacks {sorted(missing)[:5]}"
            wrong = {k: (got[k], v) for k, v in expected.items() if not _close(got[k], v)}
            assert not wrong, f"{slug}/{chart}: chart vs extract differ: {dict(list(wrong.items())[:5])}"


def _with_filter(session: SupersetSession, chart_id: int, flt: dict) -> dict:
    """The chart's saved query context with one more filter, as a native filter sets it (a time range replaces
    the chart's own "No filter" range on that column: Superset applies the first one only)."""
    context = json.loads(session.get(f"/api/v1/chart/{chart_id}")["result"]["query_context"])
    for query in context["queries"]:
        kept = [f for f in query.get("filters", []) if not (f["col"] == flt["col"] and f["op"] == flt["op"] == "TEMPORAL_RANGE")]
        query["filters"] = [*kept, flt]
        if flt["op"] == "TEMPORAL_RANGE":
            query["time_range"] = flt["val"]  # the range Superset computes the bounds from
    return context


def test_a_date_filter_changes_the_figures_to_the_extracts_for_that_window(bi, sessions):
    """Attributed pipeline per campaign from the drill-down dataset, over marketing_roi's window: the figures
    change from the all-time ones and equal marketing_roi's campaign rows (the same KPI for the same period), for
    every model the chart shows (one column each)."""
    _, extracts = bi
    analyst = sessions["analyst"]
    chart = _chart_ids(analyst)["chan-pipeline-by-campaign"]
    keys = ["channel_group", "campaign_key"]
    with duckdb.connect() as con:
        start, end = con.execute(f"SELECT min(period_start), max(period_end) + 1 FROM read_parquet('{extracts / 'marketing_roi.parquet'}')").fetchone()
        expected = {tuple(r[:-1]): r[-1] for r in con.execute(
            f"SELECT attribution_model, channel_group, campaign_key, attributed_pipeline FROM read_parquet('{extracts / 'marketing_roi.parquet'}')"
            " WHERE level = 'campaign' AND attributed_pipeline > 0").fetchall()}
    assert expected, "marketing_roi has no campaign rows with pipeline"
    context = _with_filter(analyst, chart, {"col": "opportunity_created_date", "op": "TEMPORAL_RANGE", "val": f"{start} : {end}"})
    shown = [m for m in model_names() if f"attributed_pipeline_{m}" in bundle.charts()["chan-pipeline-by-campaign"]["metrics"]]
    assert shown
    for model in shown:
        metric = f"attributed_pipeline_{model}"
        all_time = _chart_figures(analyst, chart, keys, metric)
        window = _chart_figures(analyst, chart, keys, metric, context)
        assert window != all_time and sum(filter(None, window.values())) < sum(filter(None, all_time.values())), model
        wrong = {k: (window.get(k[1:]), v) for k, v in expected.items() if k[0] == model and not _close(window.get(k[1:]) or 0.0, v)}
        assert not wrong, f"filtered chart vs marketing_roi ({model}): {dict(list(wrong.items())[:5])}"


def _dataset_id(session: SupersetSession, name: str) -> int:
    found = session.get(f"/api/v1/dataset/?q=(filters:!((col:table_name,opr:eq,value:{name})))")["result"]
    assert len(found) == 1, f"dataset {name}: {found}"
    return found[0]["id"]


def _samples(session: SupersetSession, dataset_id: int, filters: list[dict], per_page: int = 200) -> dict:
    """What drill to detail asks for: the dataset's rows under the clicked values' filters."""
    return session.post(f"/datasource/samples?datasource_type=table&datasource_id={dataset_id}&page=1&per_page={per_page}",
                        {"filters": filters})["result"]


def test_drill_to_detail_returns_the_opportunity_rows_of_a_campaign(bi, sessions, demo_graph):
    """channel -> campaign -> the opportunities' touchpoints with each model's credit, pseudonymised; refused to
    the executive role, which has aggregate dashboards only."""
    _, graph, _ = demo_graph
    _, extracts = bi
    analyst = sessions["analyst"]
    dataset = _dataset_id(analyst, "opportunity_credit")
    with duckdb.connect() as con:
        channel, campaign, n = con.execute(
            f"SELECT channel_group, campaign_key, count(*) FROM read_parquet('{extracts / 'opportunity_credit.parquet'}')"
            " WHERE campaign_key <> '(no campaign)' GROUP BY ALL ORDER BY 3 DESC, 1, 2 LIMIT 1").fetchone()
    filters = [{"col": "channel_group", "op": "==", "val": channel}, {"col": "campaign_key", "op": "==", "val": campaign}]
    result = _samples(analyst, dataset, filters)
    rows = result["data"]
    assert result["total_count"] == n and len(rows) == min(n, 200)
    assert {r["channel_group"] for r in rows} == {channel} and {r["campaign_key"] for r in rows} == {campaign}
    assert all(r["opportunity_key"].startswith("opp_") and r["credit_linear"] is not None for r in rows)
    # one opportunity: its touchpoints with the credit every model gave them
    opportunity = rows[0]["opportunity_key"]
    detail = _samples(analyst, dataset, [{"col": "opportunity_key", "op": "==", "val": opportunity}], per_page=1000)["data"]
    assert detail and all(r["opportunity_key"] == opportunity for r in detail)
    for model in model_names():
        assert abs(sum(r[f"credit_{model}"] for r in detail) - 1) < 1e-6, model
    # no raw identifier of the CRM reaches the BI side
    with duckdb.connect(str(graph / "warehouse.duckdb"), read_only=True) as con:
        raw = {r[0] for r in con.execute("SELECT opportunity_id FROM sources.crm_opportunities").fetchall()}
    assert not raw & {v for r in rows for v in r.values() if isinstance(v, str)}
    for role in ("executive",):
        with pytest.raises(HttpError) as refused:
            _samples(sessions[role], dataset, filters)
        assert refused.value.status in (401, 403, 404)
        assert sessions[role].status(f"/api/v1/dataset/{dataset}") in (403, 404)


def test_a_refreshed_extract_shows_without_a_restart(bi, sessions):
    """Publishing a new version of an extract (a file moved into place) changes the chart on the next query."""
    _, extracts = bi
    analyst = sessions["analyst"]
    chart = _chart_ids(analyst)["mmm-channel-roi"]
    before = _chart_figures(analyst, chart, ["channel_label"], "roi")
    path = extracts / "mmm_channels.parquet"
    saved = path.read_bytes()
    try:
        staged = extracts / ".mmm_channels.staged.parquet"
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT * REPLACE (roi * 2 AS roi) FROM read_parquet('{path}')) TO '{staged}' (FORMAT parquet)")
        os.replace(staged, path)
        after = _chart_figures(analyst, chart, ["channel_label"], "roi")
        assert after.keys() == before.keys() and all(_close(after[k], 2 * before[k]) for k in before)
    finally:
        path.write_bytes(saved)


def _menu_item(browser: CdpBrowser, text: str) -> list[float]:
    return browser.evaluate(
        f"(() => {{ const e = [...document.querySelectorAll('[role=menuitem]')].find(e => e.innerText.trim() === {json.dumps(text)});"
        " if (!e) return null; const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )


def test_drill_to_detail_in_the_browser(bi, sessions, browser, artefacts):
    """As a person does it: right-click a campaign row of the channel-performance dashboard, "Drill to detail by"
    → "all" (its channel and campaign): a modal lists that campaign's opportunity touchpoints."""
    server, _ = bi
    analyst = sessions["analyst"]
    browser_as(browser, analyst)
    browser.load(dashboard_url(server.base, "channel-performance"), charts_drawn_js(len(bundle.first_view("channel-performance"))))
    open_other_tabs(browser, "channel-performance")  # the opportunity tables have a tab of their own
    title = bundle.charts()["chan-pipeline-by-campaign"]["title"]
    x, y, channel = browser.evaluate(
        "(() => { const h = [...document.querySelectorAll('.dashboard-component-chart-holder')]"
        f".find(e => e.innerText.includes({json.dumps(title)})); h.scrollIntoView();"
        " const c = h.querySelector('tbody tr td'); const r = c.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2, c.innerText.trim()]; })()"
    )
    browser.click(x, y, button="right")
    browser.wait_for("[...document.querySelectorAll('[role=menuitem]')].some(e => e.innerText.trim() === 'Drill to detail by')", "context menu")
    time.sleep(0.5)  # the menu slides in: hover once it stands still, entering the item from its left
    hover = _menu_item(browser, "Drill to detail by")
    for dx in (-40, 0):
        browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=hover[0] + dx, y=hover[1])
    browser.wait_for("[...document.querySelectorAll('[role=menuitem]')].some(e => e.innerText.trim() === 'Drill to detail by all')", "submenu")
    time.sleep(0.5)
    browser.click(*_menu_item(browser, "Drill to detail by all"))
    browser.wait_for("!!document.querySelector('.ant-modal') && document.querySelector('.ant-modal').innerText.includes('opp_')", "drill modal")
    text = browser.evaluate("document.querySelector('.ant-modal').innerText")
    assert channel in text and "credit" in text
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=5, y=5)  # close the context menu's leftovers
    time.sleep(SETTLE_S)
    png = artefacts / "drill-to-detail-channel-performance.png"
    browser.screenshot(png)
    assert ink_share(png) > 0.02
