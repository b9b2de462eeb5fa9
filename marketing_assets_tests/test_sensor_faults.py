"""Fault tests of the sensors: a bad or hostile alert webhook, repeated check states, failed landing refreshes."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from marketing_assets import sensors
from marketing_assets.alerts import Alerts, WebhookUrlError, webhook_target
from marketing_assets.definitions import defs
from marketing_assets.resources import LandingZone
from marketing_assets.sensors import asset_check_alert_sensor, landing_zone_sensor
from marketing_assets_tests.test_sensors import land, must_hold, read_alerts, tiny

SECRET = "T000/B000/s3cr3t-token"


class RecordingLog:
    def __init__(self):
        self.lines: list[str] = []

    def warning(self, msg, *args, **kwargs):
        self.lines.append(str(msg))

    info = error = debug = warning


def alert(alert_id: str = "asset_check:r1:tiny:must_hold") -> dict:
    return {"alert_id": alert_id, "ts": "2025-11-30T00:00:00+00:00", "kind": "asset_check", "severity": "ERROR",
            "asset_key": "tiny", "check_name": "must_hold", "run_id": "r1", "job": "j", "description": "bad", "metadata": {}}


@contextmanager
def local_server(handler_factory, lifetime_seconds: float = 20.0) -> Iterator[tuple[str, list]]:
    """An HTTP server on 127.0.0.1 that records requests and stops itself after ``lifetime_seconds`` at the latest."""
    hits: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self):
            hits.append((self.command, self.path))
            handler_factory(self)

        do_GET = do_POST = _handle

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(lifetime_seconds, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def ok(handler):
    if handler.command == "POST":
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    handler.send_response(200)
    handler.end_headers()
    handler.wfile.write(b"ok")


# ----------------------------------------------------------------------------------- webhook


@pytest.mark.parametrize(
    "url",
    [f"hooks.example.com/services/{SECRET}", f"file:///tmp/{SECRET}", f"ftp://hooks.example.com/{SECRET}", f"http:///{SECRET}", ""],
)
def test_webhook_url_must_be_http_and_the_error_hides_it(url):
    with pytest.raises(WebhookUrlError) as info:
        webhook_target(url)
    assert SECRET not in str(info.value) and "http" in str(info.value)


def test_file_url_is_not_opened_and_no_scheme_does_not_raise(tmp_path):
    target = tmp_path / SECRET.replace("/", "_")
    target.write_text("local file")
    for url in (target.as_uri(), f"hooks.example.com/services/{SECRET}"):
        log = RecordingLog()
        alerts_file = tmp_path / "alerts.jsonl"
        alerts_file.unlink(missing_ok=True)
        assert Alerts(alerts_file=str(alerts_file), webhook_url=url).send([alert()], log) == 1
        assert [a["alert_id"] for a in read_alerts(alerts_file)] == [alert()["alert_id"]]  # the line is kept
        (line,) = log.lines
        assert "http" in line and SECRET not in line and str(tmp_path) not in line and "s3cr3t" not in line
    assert target.read_text() == "local file"


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_to_another_host_is_not_followed_and_not_logged(tmp_path, code):
    with local_server(ok) as (other, other_hits):
        other_host = other.replace("127.0.0.1", "localhost")  # same machine, another host name

        def redirect(handler):
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            handler.send_response(code)
            handler.send_header("Location", f"http://{other_host}/collect?{SECRET}")
            handler.end_headers()

        with local_server(redirect) as (hook, hook_hits):
            log = RecordingLog()
            Alerts(alerts_file=str(tmp_path / "a.jsonl"), webhook_url=f"http://{hook}/hook/{SECRET}", timeout_seconds=5).send([alert()], log)
    assert hook_hits == [("POST", f"/hook/{SECRET}")]
    assert other_hits == []
    (line,) = log.lines
    assert str(code) in line and "redirect not followed" in line and SECRET not in line and other_host not in line


def test_bad_webhook_does_not_fail_the_sensor_tick(tmp_path):
    alerts = Alerts(alerts_file=str(tmp_path / "alerts.jsonl"), webhook_url=f"hooks.example.com/services/{SECRET}")
    with dg.instance_for_test() as instance:
        dg.materialize([tiny, must_hold], instance=instance, raise_on_error=False)
        result = asset_check_alert_sensor(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))
    assert "1 new alert" in result.skip_reason.skip_message
    assert [a["check_name"] for a in read_alerts(tmp_path / "alerts.jsonl")] == ["must_hold"]
    assert SECRET not in (tmp_path / "alerts.jsonl").read_text()


# ----------------------------------------------------------------------------- check states

OUTCOME = {"state": "passed"}


@dg.asset
def flappy():
    return 1


@dg.asset_check(asset=flappy)
def flips():
    state = OUTCOME["state"]
    if state == "passed":
        return dg.AssetCheckResult(passed=True)
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity[state], description=f"now {state}")


def run_with(instance, state: str) -> None:
    OUTCOME["state"] = state
    dg.materialize([flappy, flips], instance=instance, raise_on_error=False)


def evaluate(instance, alerts: Alerts, cursor: str | None):
    result = asset_check_alert_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts}))
    return result.cursor if isinstance(result, dg.SensorResult) else cursor


def test_one_alert_per_check_state_change(tmp_path):
    alerts_file = tmp_path / "alerts.jsonl"
    cursor = None
    with dg.instance_for_test() as instance:
        for state in ("passed", "ERROR", "ERROR", "ERROR", "WARN", "WARN", "ERROR", "passed", "passed", "WARN"):
            run_with(instance, state)
            # A fresh resource every tick, as after a restart of the daemon: the states come from disk.
            cursor = evaluate(instance, Alerts(alerts_file=str(alerts_file)), cursor)
    assert [(a["previous_state"], a["severity"]) for a in read_alerts(alerts_file)] == [
        ("passed", "ERROR"), ("ERROR", "WARN"), ("WARN", "ERROR"), ("passed", "WARN")
    ]
    assert json.loads(Alerts(alerts_file=str(alerts_file)).state_file.read_text()) == {"flappy:flips": "WARN"}


def test_lost_cursor_does_not_realert(tmp_path):
    alerts = Alerts(alerts_file=str(tmp_path / "alerts.jsonl"))
    with dg.instance_for_test() as instance:
        run_with(instance, "ERROR")
        evaluate(instance, alerts, None)
        run_with(instance, "ERROR")
        evaluate(instance, alerts, None)  # every evaluation read again from the start
    assert len(read_alerts(tmp_path / "alerts.jsonl")) == 1


def test_several_runs_in_one_tick_alert_per_change(tmp_path):
    alerts = Alerts(alerts_file=str(tmp_path / "alerts.jsonl"))
    with dg.instance_for_test() as instance:
        for state in ("ERROR", "passed", "ERROR", "ERROR"):
            run_with(instance, state)
        evaluate(instance, alerts, None)
    assert [a["severity"] for a in read_alerts(tmp_path / "alerts.jsonl")] == ["ERROR", "ERROR"]


# ------------------------------------------------------------------------- landing refreshes

def landing_tick(instance, landing: Path, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": LandingZone(path=str(landing))}, definitions=defs
    )
    return landing_zone_sensor(context)


def sensor_run(instance, run_key: str, status: dg.DagsterRunStatus):
    """The run Dagster would have launched for a request, in the given state."""
    return create_run_for_test(
        instance, job_name="landing_refresh", status=status,
        tags={"dagster/run_key": run_key, "dagster/sensor_name": "landing_zone_sensor"},
    )


@pytest.fixture
def zone(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    land(root, "crm/contacts.csv")
    return root


@pytest.mark.parametrize("status", [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED])
def test_failed_or_killed_refresh_does_not_consume_its_files(zone, status):
    with dg.instance_for_test() as instance:
        first = landing_tick(instance, zone, None)
        (request,) = first.run_requests
        failed = sensor_run(instance, request.run_key, status)

        retry = landing_tick(instance, zone, first.cursor)
        (again,) = retry.run_requests  # the same files, asked for again under a new run key
        assert again.run_key != request.run_key
        assert {k.to_user_string() for k in again.asset_selection} == {k.to_user_string() for k in request.asset_selection}
        assert json.loads(retry.cursor)[sensors.PENDING]["previous"] == {}

        sensor_run(instance, again.run_key, dg.DagsterRunStatus.SUCCESS)
        done = landing_tick(instance, zone, retry.cursor)
        assert not done.run_requests and "No landing change" in done.skip_reason.skip_message
        assert sensors.PENDING not in json.loads(done.cursor)
        assert failed.run_id not in done.cursor


def test_running_refresh_makes_the_tick_wait(zone):
    with dg.instance_for_test() as instance:
        first = landing_tick(instance, zone, None)
        (request,) = first.run_requests
        run = sensor_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
        land(zone, "ads/google_ads.csv")  # a new change while the refresh runs waits for it
        waiting = landing_tick(instance, zone, first.cursor)
        assert not waiting.run_requests and waiting.cursor == first.cursor
        assert run.run_id in waiting.skip_reason.skip_message and "STARTED" in waiting.skip_reason.skip_message

        instance.delete_run(run.run_id)
        sensor_run(instance, request.run_key, dg.DagsterRunStatus.SUCCESS)
        after = landing_tick(instance, zone, waiting.cursor)
        (next_request,) = after.run_requests
        assert next_request.tags["marketing_assets/landing_tables"] == "ads_google"


def test_request_never_launched_is_retried_after_a_grace_period(zone, monkeypatch):
    with dg.instance_for_test() as instance:
        first = landing_tick(instance, zone, None)
        early = landing_tick(instance, zone, first.cursor)
        assert not early.run_requests and "not been created" in early.skip_reason.skip_message
        monkeypatch.setattr(sensors, "MISSING_RUN_GRACE_SECONDS", 0.0)
        late = landing_tick(instance, zone, first.cursor)
        (retry,) = late.run_requests
        assert retry.run_key != first.run_requests[0].run_key


def test_refresh_failing_every_time_gives_up_after_max_attempts(zone):
    keys = []
    with dg.instance_for_test() as instance:
        result = landing_tick(instance, zone, None)
        for _ in range(sensors.MAX_REFRESH_ATTEMPTS):
            (request,) = result.run_requests
            keys.append(request.run_key)
            sensor_run(instance, request.run_key, dg.DagsterRunStatus.FAILURE)
            result = landing_tick(instance, zone, result.cursor)
        assert not result.run_requests and "No landing change" in result.skip_reason.skip_message
        assert len(set(keys)) == sensors.MAX_REFRESH_ATTEMPTS

        land(zone, "crm/contacts.csv", rows=[["c9", "a9", "x@example.com", "2024-01-01"]])  # a fixed file: asked anew
        (fresh,) = landing_tick(instance, zone, result.cursor).run_requests
        assert fresh.tags["marketing_assets/landing_tables"] == "crm_contacts"
