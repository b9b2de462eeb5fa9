"""Sensors, evaluated directly (no daemon): the landing-zone cursor and the alert sensors."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from marketing_assets import sensors
from marketing_assets.alerts import DEFAULT_ALERTS_FILE, Alerts
from marketing_assets.definitions import defs
from marketing_assets.resources import LandingZone
from marketing_assets.sensors import asset_check_alert_sensor, landing_zone_sensor, run_failure_alert_sensor
from marketing_assets_tests.conftest import MINIMAL_CRM, write_csv

# ------------------------------------------------------------------------------- landing zone


def settle(path: Path, seconds_ago: float = 60) -> Path:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))
    return path


def land(root: Path, relpath: str, rows: list[list[object]] | None = None, age: float | None = 60) -> Path:
    """Write a landing CSV (CRM contacts layout, content from ``rows``), settled ``age`` seconds ago."""
    header, default_rows = MINIMAL_CRM["crm/contacts.csv"]
    path = write_csv(root, relpath, header, default_rows if rows is None else rows)
    return settle(path, age) if age is not None else path


def tick(landing: Path, cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": LandingZone(path=str(landing))}, definitions=defs)
    return landing_zone_sensor(context)


def selected(result) -> set[str]:
    (request,) = result.run_requests
    return {k.to_user_string() for k in request.asset_selection}


def selected_sources(result) -> set[str]:
    return {k.split("/", 1)[1] for k in selected(result) if k.startswith("sources/")}


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    land(root, "crm/contacts.csv")
    header, rows = MINIMAL_CRM["crm/opportunities.csv"]
    settle(write_csv(root, "crm/opportunities.csv", header, rows))
    return root


def test_first_tick_requests_changed_sources_and_everything_downstream(landing):
    result = tick(landing)
    (request,) = result.run_requests
    keys = selected(result)
    assert selected_sources(result) == {"crm_contacts", "crm_opportunities", "quarantine"}
    assert {"identity/contacts_resolved", "identity/accounts_resolved", "touchpoints/opportunity_touchpoints",
            "attribution/attribution_credits", "mmm/mmm_weekly_frame", "extracts/executive_kpis"} <= keys
    # Downstream of ads only: not affected.
    assert "sources/ads_google" not in keys and "spend/ad_spend_daily" not in keys
    checks = {ck.to_user_string() for ck in request.asset_check_keys}
    assert "sources/crm_contacts:contract" in checks and "identity/contacts_resolved:contract" in checks
    assert not any(c.startswith("sources/ads_google:") for c in checks)
    assert request.tags["marketing_assets/landing_tables"] == "crm_contacts,crm_opportunities"

    cursor = json.loads(result.cursor)
    assert set(cursor) == {"crm/contacts.csv", "crm/opportunities.csv", sensors.PENDING}
    assert cursor[sensors.PENDING]["run_key"] == request.run_key and cursor[sensors.PENDING]["previous"] == {}
    entry = cursor["crm/contacts.csv"]
    stat = (landing / "crm/contacts.csv").stat()
    assert entry == {
        "sha256": hashlib.sha256((landing / "crm/contacts.csv").read_bytes()).hexdigest(),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    # A re-evaluated tick (same cursor in, same files) asks under the same run key: Dagster launches once.
    assert tick(landing).run_requests[0].run_key == request.run_key


def test_run_request_is_valid_for_the_landing_refresh_job(landing):
    """What the code server does with a tick: validate the request and subset the job to it."""
    context = dg.build_sensor_context(resources={"landing": LandingZone(path=str(landing))}, definitions=defs)
    (request,) = landing_zone_sensor.evaluate_tick(context).run_requests
    job = defs.resolve_job_def("landing_refresh").get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys)
    )
    assert job.asset_layer.executable_asset_keys == set(request.asset_selection)


def test_unchanged_landing_skips_and_is_not_rehashed(landing, monkeypatch):
    cursor = tick(landing).cursor
    monkeypatch.setattr(sensors, "sha256_file", lambda path: pytest.fail(f"re-hashed unchanged {path}"))
    again = tick(landing, cursor)
    assert not again.run_requests
    assert "2 file(s) checked" in again.skip_reason.skip_message
    assert json.loads(again.cursor) == {k: v for k, v in json.loads(cursor).items() if k != sensors.PENDING}
    assert tick(landing, again.cursor).cursor == again.cursor


def record_run(landing: Path, record: Path, run_id: str = "make-run-1") -> None:
    """What a successful `make run` leaves next to the warehouse: the landing files it ingested."""
    files = sensors.scan_landing(landing.resolve(), {}, settle_seconds=0).cursor
    sensors.write_landing_record(record, landing.resolve(), files, run_id)


def test_first_tick_starts_from_the_landing_record_of_make_run(landing, tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETING_WAREHOUSE", str(tmp_path / "own.duckdb"))  # the record lives next to it
    record_run(landing, tmp_path / "own.landing_scan.json")
    seeded = tick(landing)  # no cursor yet (`make ui` after `make run`)
    assert not seeded.run_requests
    assert "No landing change in 2 file(s) checked" in seeded.skip_reason.skip_message
    assert set(json.loads(seeded.cursor)) == {"crm/contacts.csv", "crm/opportunities.csv"}

    # A file changed after the run is still refreshed, on the first tick as on later ones.
    land(landing, "crm/contacts.csv", rows=[["c9", "a9", "new@example.com", "2024-01-01"]])
    assert selected_sources(tick(landing)) == {"crm_contacts", "quarantine"}
    assert selected_sources(tick(landing, seeded.cursor)) == {"crm_contacts", "quarantine"}


def test_landing_record_of_another_landing_zone_or_damaged_is_ignored(landing, tmp_path):
    record = tmp_path / "wh.landing_scan.json"
    other = tmp_path / "other"
    other.mkdir()
    files = sensors.scan_landing(landing.resolve(), {}, settle_seconds=0).cursor
    sensors.write_landing_record(record, other.resolve(), files, "make-run-1")
    sensor = sensors.build_landing_zone_sensor(landing_record=str(record))
    context = lambda: dg.build_sensor_context(resources={"landing": LandingZone(path=str(landing))}, definitions=defs)  # noqa: E731
    assert selected_sources(sensor(context())) == {"crm_contacts", "crm_opportunities", "quarantine"}
    record.write_text("{not json")
    assert selected_sources(sensor(context())) == {"crm_contacts", "crm_opportunities", "quarantine"}
    record_run(landing, record)
    assert not sensor(context()).run_requests
    assert not list(tmp_path.glob("*.tmp"))  # written atomically (temporary file renamed)


def test_touch_without_content_change_skips_but_updates_cursor(landing):
    cursor = tick(landing).cursor
    settle(landing / "crm/contacts.csv", seconds_ago=30)
    result = tick(landing, cursor)
    assert not result.run_requests
    before, after = json.loads(cursor)["crm/contacts.csv"], json.loads(result.cursor)["crm/contacts.csv"]
    assert after["sha256"] == before["sha256"] and after["mtime_ns"] != before["mtime_ns"]


def test_changed_content_refreshes_that_table_only(landing):
    cursor = tick(landing).cursor
    land(landing, "crm/contacts.csv", rows=[["c9", "a9", "new@example.com", "2024-01-01"]])
    result = tick(landing, cursor)
    assert selected_sources(result) == {"crm_contacts", "quarantine"}
    assert "identity/contacts_resolved" in selected(result)
    assert "touchpoints/opportunity_touchpoints" in selected(result)  # via contacts_resolved -> touchpoints
    assert not tick(landing, result.cursor).run_requests


def test_new_file_for_another_table_refreshes_that_table(landing):
    cursor = tick(landing).cursor
    land(landing, "ads/google_ads_2024.csv")
    result = tick(landing, cursor)
    assert selected_sources(result) == {"ads_google", "quarantine"}
    assert "spend/ad_spend_daily" in selected(result) and "identity/contacts_resolved" not in selected(result)
    assert "ads/google_ads_2024.csv" in json.loads(result.cursor)


def test_second_file_of_a_table_and_deletion_refresh_it(landing):
    cursor = tick(landing).cursor
    land(landing, "crm/contacts_2.csv", rows=[["c3", "a3", "c3@example.com", "2024-01-01"]])
    added = tick(landing, cursor)
    assert selected_sources(added) == {"crm_contacts", "quarantine"}

    (landing / "crm/contacts_2.csv").unlink()
    removed = tick(landing, added.cursor)
    assert selected_sources(removed) == {"crm_contacts", "quarantine"}  # its rows disappear
    assert "crm/contacts_2.csv" not in json.loads(removed.cursor)
    assert not tick(landing, removed.cursor).run_requests


def test_file_still_being_written_waits_until_settled(landing):
    cursor = tick(landing).cursor
    fresh = land(landing, "web/sessions.csv", age=0)  # mtime = now (the sensor's clock, not the file system's)
    waiting = tick(landing, cursor)
    assert not waiting.run_requests and "web_sessions" in waiting.skip_reason.skip_message
    assert "web/sessions.csv" not in json.loads(waiting.cursor)

    settle(fresh)
    result = tick(landing, waiting.cursor)
    assert selected_sources(result) == {"web_sessions", "quarantine"}


def test_table_with_an_unsettled_file_is_deferred_whole(landing):
    cursor = tick(landing).cursor
    land(landing, "crm/contacts.csv", rows=[["c9", "a9", "x@example.com", "2024-01-01"]])  # settled change
    land(landing, "crm/contacts_part2.csv", age=0)  # same table, still being written
    land(landing, "ads/meta_ads.csv")  # another table, settled
    result = tick(landing, cursor)
    assert selected_sources(result) == {"ads_meta", "quarantine"}
    # The contacts change is not consumed: the next tick after settling still sees it.
    assert json.loads(result.cursor)["crm/contacts.csv"] == json.loads(cursor)["crm/contacts.csv"]
    settle(landing / "crm/contacts_part2.csv")
    assert selected_sources(tick(landing, result.cursor)) == {"crm_contacts", "quarantine"}


def test_restart_with_persisted_cursor_does_not_reingest(landing, tmp_path):
    persisted = tmp_path / "cursor.txt"
    persisted.write_text(tick(landing).cursor)  # what Dagster stored with the tick
    result = tick(landing, persisted.read_text())  # a fresh context: nothing but the stored string
    assert not result.run_requests


def test_truth_hidden_and_temp_files_are_ignored(landing):
    cursor = tick(landing).cursor
    for rel in ("_truth/duplicate_contacts.csv", "crm/.contacts_3.csv", "crm/contacts_4.csv.tmp", "crm/contacts_5.csv.part"):
        land(landing, rel)
    result = tick(landing, cursor)
    assert not result.run_requests
    assert "2 file(s) checked" in result.skip_reason.skip_message


def test_missing_landing_folder_is_not_read_as_deletions(landing, tmp_path):
    cursor = tick(landing).cursor
    result = tick(tmp_path / "unmounted", cursor)
    assert isinstance(result, dg.SkipReason) and "does not exist" in result.skip_message


def test_tables_of_matches_every_contract_glob():
    assert sensors.tables_of("crm/contacts_2024.csv", sensors.CONTRACTS) == {"crm_contacts"}
    assert sensors.tables_of("ads/google_ads.parquet", sensors.CONTRACTS) == {"ads_google"}
    assert sensors.tables_of("crm/sub/contacts.csv", sensors.CONTRACTS) == set()
    assert sensors.tables_of("_truth/duplicate_contacts.csv", sensors.CONTRACTS) == set()


# ------------------------------------------------------------------------------------- alerts


@pytest.fixture
def webhook():
    """A local Slack stand-in: records every JSON body POSTed to it."""
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@dg.asset
def tiny():
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@dg.asset_check(asset=tiny)
def must_hold():
    return dg.AssetCheckResult(passed=False, description="2 rows break the rule", metadata={"bad_rows": 2, "ratio": float("nan")})


@dg.asset_check(asset=tiny)
def nice_to_have():
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="stale", metadata={"hours": 30.5})


@dg.asset_check(asset=tiny)
def fine():
    return dg.AssetCheckResult(passed=True)


def read_alerts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_check_alert_sensor_writes_one_line_per_failed_evaluation_and_posts(tmp_path, webhook):
    url, received = webhook
    alerts_file = tmp_path / "alerts" / "alerts.jsonl"
    resources = {"alerts": Alerts(alerts_file=str(alerts_file), webhook_url=url)}
    with dg.instance_for_test() as instance:
        run = dg.materialize([tiny, must_hold, nice_to_have, fine], instance=instance, raise_on_error=False)

        result = asset_check_alert_sensor(dg.build_sensor_context(instance=instance, cursor=None, resources=resources))
        lines = read_alerts(alerts_file)
        assert sorted((a["check_name"], a["severity"]) for a in lines) == [("must_hold", "ERROR"), ("nice_to_have", "WARN")]
        error = next(a for a in lines if a["check_name"] == "must_hold")
        assert error["kind"] == "asset_check" and error["asset_key"] == "tiny" and error["run_id"] == run.run_id
        assert error["job"] == run.dagster_run.job_name and error["description"] == "2 rows break the rule"
        assert error["metadata"] == {"bad_rows": 2, "ratio": None}  # NaN made JSON-safe
        assert error["ts"].endswith("+00:00")
        assert len(received) == 2 and all(set(body) == {"text", "blocks"} for body in received)
        assert any("tiny:must_hold" in body["text"] for body in received)

        again = asset_check_alert_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources=resources))
        assert len(read_alerts(alerts_file)) == 2 and len(received) == 2
        assert "No new" in (again.skip_message if isinstance(again, dg.SkipReason) else again.skip_reason.skip_message)

        # A tick re-evaluated from a lost cursor finds the same evaluations: no duplicate line or post.
        asset_check_alert_sensor(dg.build_sensor_context(instance=instance, cursor=None, resources=resources))
        assert len(read_alerts(alerts_file)) == 2 and len(received) == 2

        # A second run evaluates the same checks to the same states: no new alert (one per state change).
        dg.materialize([tiny, must_hold, nice_to_have, fine], instance=instance, raise_on_error=False)
        asset_check_alert_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, resources=resources))
        assert len(read_alerts(alerts_file)) == 2 and len(received) == 2


def test_webhook_outage_keeps_the_json_line(tmp_path):
    alerts = Alerts(alerts_file=str(tmp_path / "alerts.jsonl"), webhook_url="http://127.0.0.1:9/unreachable", timeout_seconds=1)
    with dg.instance_for_test() as instance:
        dg.materialize([tiny, must_hold], instance=instance, raise_on_error=False)
        asset_check_alert_sensor(dg.build_sensor_context(instance=instance, resources={"alerts": alerts}))
    assert [a["check_name"] for a in read_alerts(tmp_path / "alerts.jsonl")] == ["must_hold"]


def test_run_failure_alert_names_steps_not_exception_text(tmp_path, webhook):
    url, received = webhook

    @dg.asset
    def exploding():
        raise ValueError("row for ann@example.com is broken")

    alerts_file = tmp_path / "alerts.jsonl"
    with dg.instance_for_test() as instance:
        result = dg.materialize([exploding], instance=instance, raise_on_error=False)
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"alerts": Alerts(alerts_file=str(alerts_file), webhook_url=url)},
        ).for_run_failure()
        run_failure_alert_sensor(context)
        run_failure_alert_sensor(context)  # the same failure handled twice: one alert

    (alert,) = read_alerts(alerts_file)
    assert alert["kind"] == "run_failure" and alert["severity"] == "ERROR" and alert["run_id"] == result.run_id
    assert alert["asset_key"] is None and alert["check_name"] is None and alert["job"] == result.dagster_run.job_name
    assert "exploding" in alert["description"] and alert["metadata"]["error_types"] == ["ValueError"]
    assert "ann@example.com" not in alerts_file.read_text()
    assert len(received) == 1 and "failed" in received[0]["text"]


def test_alerts_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MARKETING_ALERTS_FILE", str(tmp_path / "a.jsonl"))
    monkeypatch.delenv("MARKETING_ALERT_WEBHOOK", raising=False)
    alerts = Alerts.from_env().process_config_and_initialize()  # EnvVars resolve at launch
    assert alerts.alerts_file == str(tmp_path / "a.jsonl") and alerts.webhook_url is None
    monkeypatch.delenv("MARKETING_ALERTS_FILE")
    monkeypatch.delenv("MARKETING_WAREHOUSE", raising=False)
    assert Alerts.from_env().alerts_file == DEFAULT_ALERTS_FILE


# ------------------------------------------------------------------------------ jobs, schedules


def test_jobs_schedules_and_sensors_resolve():
    for name in ("full_refresh", "sources_refresh", "attribution_refresh", "mmm_refit", "landing_refresh"):
        job = defs.resolve_job_def(name)
        assert job.executor_def is dg.in_process_executor
        assert job.run_tags.get("marketing_assets/warehouse") == "duckdb"
    attribution = {k.to_user_string() for k in defs.resolve_job_def("attribution_refresh").asset_layer.executable_asset_keys}
    assert "attribution/attribution_credits" in attribution and "extracts/marketing_roi" in attribution
    assert "extracts/executive_kpis" not in attribution  # none of its KPIs reads attribution (deps come from their SQL)
    assert not any(k.startswith(("sources/", "touchpoints/", "mmm/")) for k in attribution)
    mmm = {k.to_user_string() for k in defs.resolve_job_def("mmm_refit").asset_layer.executable_asset_keys}
    assert "mmm/mmm_model" in mmm and all(k.startswith(("mmm/", "extracts/")) for k in mmm)

    daily, weekly = defs.resolve_schedule_def("daily_full_refresh"), defs.resolve_schedule_def("weekly_mmm_refit")
    assert (daily.cron_schedule, daily.job_name) == ("0 5 * * *", "full_refresh")
    assert (weekly.cron_schedule, weekly.job_name, weekly.execution_timezone) == ("0 6 * * 1", "mmm_refit", "UTC")
    assert daily.default_status == weekly.default_status == dg.DefaultScheduleStatus.RUNNING

    for name in ("landing_zone_sensor", "asset_check_alert_sensor", "run_failure_alert_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("landing_zone_sensor").job_name == "landing_refresh"
