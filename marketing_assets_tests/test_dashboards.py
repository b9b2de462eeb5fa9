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
from pathlib import Path

import duckdb
import pytest

from marketing_assets.bi import bundle
from marketing_assets.bi.server import DEMO_PASSWORD, ROLES, dashboard_url
from marketing_assets_tests.bi_harness import HttpError, SupersetServer, SupersetSession, browser_as, charts_drawn_js
from marketing_assets_tests.browser import CdpBrowser, ink_share

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REQUIRE_CHROMIUM = os.environ.get("MARKETING_REQUIRE_CHROMIUM") == "1"


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


def _chart_id(session: SupersetSession, slug: str, chart: str) -> int:
    charts = session.get(f"/api/v1/dashboard/{slug}/charts")["result"]
    wanted = str(bundle.chart_uuid(chart))
    for c in charts:
        if c.get("form_data", {}).get("slice_id") and str(c.get("uuid", "")) == wanted:
            return c["id"]
    found = session.get(f"/api/v1/chart/?q=(filters:!((col:uuid,opr:eq,value:'{wanted}')))") if False else None
    ids = [c["id"] for c in charts if c.get("slice_name") == bundle.load_spec()["dashboards"][slug]["charts"][chart]["title"]]
    assert ids, f"chart {chart} not on dashboard {slug}: {[c.get('slice_name') for c in charts]} {found}"
    return ids[0]


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
            n = len(session.get(f"/api/v1/dashboard/{slug}/charts")["result"])
            timings[f"{slug} as {role}"] = round(browser.load(url, charts_drawn_js(n)), 2)
            assert "error" not in browser.evaluate(
                "[...document.querySelectorAll('.dashboard-component-chart-holder')].map(e => e.innerText).join(' ').toLowerCase()"
                ".includes('unexpected error') ? 'error' : 'ok'"
            )
            png = artefacts / f"dashboard-{slug}-{role}.png"
            browser.screenshot(png)
            assert ink_share(png) > 0.02, f"{png} looks blank"
    (artefacts / "dashboard_load_s.json").write_text(json.dumps(timings, indent=2))
