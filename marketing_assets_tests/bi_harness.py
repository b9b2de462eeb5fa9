"""The dashboards' server for the tests and the benchmark: set up and serve Superset through the project's own
CLI (``python -m marketing_assets.bi setup`` / ``serve``), log in as a user, call the API, open pages in Chromium.

Logging in goes through Superset's login form, as a person does; the session cookie then serves both the API
calls (POSTs carry the session's CSRF token) and the browser (the cookie is handed to Chromium).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from marketing_assets_tests.browser import CdpBrowser, free_port, killpg

REPO = Path(__file__).resolve().parents[1]


def bi_env(warehouse: Path, extracts: Path, landing: Path, home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_BI_")}
    env.update(
        MARKETING_WAREHOUSE=str(warehouse), MARKETING_EXTRACTS_DIR=str(extracts), MARKETING_LANDING_DIR=str(landing),
        MARKETING_BI_HOME=str(home), BI_PORT=str(port), MARKETING_BI_VENV=os.environ.get("MARKETING_BI_VENV", str(REPO / ".venv-bi")),
    )
    return env


class SupersetServer:
    """``python -m marketing_assets.bi setup`` then ``serve`` in its own process group; ``stop`` ends it."""

    def __init__(self, warehouse: Path, extracts: Path, landing: Path, home: Path, log: Path, port: int | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = bi_env(warehouse, extracts, landing, home, self.port)
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.setup_seconds = self.ready_seconds = None

    def setup(self) -> subprocess.CompletedProcess:
        t0 = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "marketing_assets.bi", "setup"], cwd=REPO, env=self.env, capture_output=True,
                                text=True, timeout=900)
        self.setup_seconds = time.monotonic() - t0
        with self.log.open("a") as fh:
            fh.write(result.stdout + result.stderr)
        assert result.returncode == 0, f"bi setup failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def start(self, timeout: float = 120) -> None:
        t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "marketing_assets.bi", "serve"], cwd=REPO, env=self.env,
                                     stdout=self.log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - t0 < timeout:
            assert self.proc.poll() is None, f"Superset exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}"
            try:
                with _OPENER.open(f"{self.base}/health", timeout=5) as r:
                    if r.status == 200:
                        self.ready_seconds = time.monotonic() - t0
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"Superset did not answer /health within {timeout} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HttpError(AssertionError):
    def __init__(self, status: int, url: str, body: str):
        super().__init__(f"{status} from {url}: {body[:500]}")
        self.status = status


class SupersetSession:
    """One logged-in user: form login, then JSON API calls with the session cookie (and CSRF token on POST)."""

    def __init__(self, base: str, username: str, password: str):
        self.base, self.username = base, username
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.jar))
        page = self._open("/login/").decode()
        token = re.search(r'id="csrf_token"\s+value="([^"]+)"', page) or re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, "no CSRF token on the login page"
        form = urllib.parse.urlencode({"username": username, "password": password, "csrf_token": token.group(1)}).encode()
        self._open("/login/", data=form)
        me = json.loads(self._open("/api/v1/me/"))["result"]
        assert me["username"] == username, f"logged in as {me['username']}, not {username}"
        self._csrf = None

    def _open(self, path: str, data: bytes | None = None, headers: dict | None = None) -> bytes:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=120) as r:
                return r.read()
        except urllib.error.HTTPError as err:
            raise HttpError(err.code, path, err.read().decode(errors="replace")) from None

    def get(self, path: str) -> dict:
        return json.loads(self._open(path, headers={"Accept": "application/json"}))

    def post(self, path: str, payload: dict) -> dict:
        if self._csrf is None:
            self._csrf = self.get("/api/v1/security/csrf_token/")["result"]
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": self._csrf, "Referer": self.base}
        return json.loads(self._open(path, data=body, headers=headers))

    def status(self, path: str) -> int:
        try:
            self._open(path, headers={"Accept": "application/json"})
            return 200
        except HttpError as err:
            return err.status

    @property
    def session_cookie(self) -> dict:
        cookie = next(c for c in self.jar if c.name == "session")
        return {"name": cookie.name, "value": cookie.value, "domain": "127.0.0.1", "path": "/", "httpOnly": True}


def browser_as(browser: CdpBrowser, session: SupersetSession) -> None:
    """Give the browser the user's session: it is then logged in as ``session.username``."""
    browser.call("Network.enable")
    browser.call("Network.clearBrowserCookies")
    browser.call("Network.setCookie", url=session.base, **{k: v for k, v in session.session_cookie.items() if k != "domain"})


# Every chart of a dashboard has drawn: as many chart holders as the dashboard has charts, each with a
# canvas, svg or table and no loading spinner or error inside.
def open_tab_js(title: str) -> str:
    """Click the dashboard tab titled ``title``."""
    return (f"(() => {{ const t = [...document.querySelectorAll('[role=tab]')].find(e => e.innerText.trim() === {json.dumps(title)});"
            " if (!t) return false; t.click(); return true; })()")


def open_other_tabs(browser, slug: str) -> dict[str, float]:
    """On an open dashboard, click each tab after the first in turn and wait until its charts have drawn too (a tab's
    charts stay in the page once drawn, so each wait counts every chart drawn so far); tab title -> seconds."""
    from marketing_assets.bi import bundle

    charts = {title: sum(len(row) for row in rows) for title, rows in bundle.tabs(bundle.load_spec()["dashboards"][slug]).items()}
    titles, out = list(charts), {}
    drawn = charts[titles[0]]
    for title in titles[1:]:
        assert browser.evaluate(open_tab_js(title)) is True, f"{slug}: no tab {title!r}"
        drawn += charts[title]
        out[title] = browser.wait_for(charts_drawn_js(drawn), f"{slug}: charts of tab {title!r}")
    return out


def charts_drawn_js(expected: int) -> str:
    return (
        "(() => { const h = [...document.querySelectorAll('.dashboard-component-chart-holder')];"
        f" return h.length >= {expected} && h.every(e => e.querySelector('canvas, svg, table, .superset-legacy-chart-big_number,"
        " .big_number, .header-line, [data-test=\"big-number\"]') && !e.querySelector('.loading, [data-test=\"loading-indicator\"]'))"
        " && !document.querySelector('.loading'); })()"
    )
