"""Where alerts go: the ``Alerts`` resource (a JSON-lines file next to the warehouse, optionally a
Slack-compatible webhook) and the warehouse-keyed file names it derives its default from.

It depends on no other module of the package, so ``resources.build_resources`` and the sensors both use it.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from marketing_assets.constants import DEFAULT_WAREHOUSE


def warehouse_file() -> str:
    """The warehouse runs write (MARKETING_WAREHOUSE, else ``data/warehouse.duckdb``); the files below are keyed by it."""
    return os.environ.get("MARKETING_WAREHOUSE") or DEFAULT_WAREHOUSE


def warehouse_sidecar(warehouse: str, suffix: str) -> str:
    """A file next to the warehouse, named after it: ``data/warehouse.duckdb`` + ``.alerts.jsonl`` ->
    ``data/warehouse.alerts.jsonl``. Another warehouse file gets its own alert log and landing record."""
    path = Path(warehouse).expanduser()
    return str(path.with_name(path.stem + suffix))


ALERTS_SUFFIX = ".alerts.jsonl"
DEFAULT_ALERTS_FILE = warehouse_sidecar(DEFAULT_WAREHOUSE, ALERTS_SUFFIX)


class Alerts(dg.ConfigurableResource):
    """Where alerts go: a JSON-lines file, and optionally a Slack-compatible incoming webhook."""

    alerts_file: str = Field(
        default=DEFAULT_ALERTS_FILE,
        description="JSON-lines alert log (MARKETING_ALERTS_FILE; default next to the warehouse, <warehouse stem>.alerts.jsonl).",
    )
    webhook_url: str | None = Field(default=None, description="Slack-compatible webhook (MARKETING_ALERT_WEBHOOK); optional.")
    timeout_seconds: float = Field(default=5.0, description="Webhook request timeout.")

    @classmethod
    def from_env(cls) -> Alerts:
        return cls(
            alerts_file=(
                dg.EnvVar("MARKETING_ALERTS_FILE")
                if os.environ.get("MARKETING_ALERTS_FILE")
                else warehouse_sidecar(warehouse_file(), ALERTS_SUFFIX)
            ),
            webhook_url=dg.EnvVar("MARKETING_ALERT_WEBHOOK") if os.environ.get("MARKETING_ALERT_WEBHOOK") else None,
        )

    def _logged_ids(self, path: Path) -> set[str]:
        if not path.exists():
            return set()
        ids = set()
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    ids.add(json.loads(line)["alert_id"])
                except (ValueError, KeyError, TypeError):
                    continue
        return ids

    def send(self, alerts: Sequence[dict[str, Any]], log) -> int:
        """Append the alerts not yet in the file (one ``write`` per line), then post each; returns how many were new."""
        if not alerts:
            return 0
        path = Path(self.alerts_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        logged = self._logged_ids(path)
        new = [a for a in alerts if a["alert_id"] not in logged]
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for alert in new:  # one write per line: concurrent sensors never interleave lines
                os.write(fd, (json.dumps(alert, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
        for alert in new:
            if self.webhook_url:
                self._post(alert, log)
        return len(new)

    @property
    def state_file(self) -> Path:
        """Last known state per check (``passed``, ``WARN``, ``ERROR``), next to the alerts file."""
        path = Path(self.alerts_file).expanduser()
        return path.with_name(path.stem + ".check_states.json")

    def load_check_states(self) -> dict[str, str]:
        try:
            states = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return {str(k): str(v) for k, v in states.items()} if isinstance(states, dict) else {}

    def save_check_states(self, states: Mapping[str, str]) -> None:
        path = self.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(dict(states), sort_keys=True, indent=0), encoding="utf-8")
        os.replace(tmp, path)  # atomic: a killed sensor leaves the old or the new states, never half a file

    def open_alerts(self) -> list[dict[str, Any]]:
        """The checks whose last known state (the state file) is WARN or ERROR, each with its latest asset-check alert of
        the alerts file (``asset_key``, ``check_name``, ``severity``, ``ts``, ``description``; no alert line: no description)."""
        states = {k: v for k, v in self.load_check_states().items() if v != "passed"}
        if not states:
            return []
        latest: dict[str, dict[str, Any]] = {}
        path = Path(self.alerts_file).expanduser()
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        alert = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(alert, dict) and alert.get("kind") == "asset_check":
                        latest[f"{alert.get('asset_key')}:{alert.get('check_name')}"] = alert  # the file is in time order
        out = []
        for key, state in sorted(states.items()):
            alert = latest.get(key, {})
            asset_key, _, check_name = key.partition(":")  # <asset key>:<check name>[:<partition>]
            out.append({"asset_key": asset_key, "check_name": check_name, "severity": state,
                        "ts": alert.get("ts"), "description": alert.get("description")})
        return out

    def _post(self, alert: Mapping[str, Any], log) -> None:
        """POST one alert; any failure is logged by type only (the URL is a secret) and never raised."""
        try:
            target = webhook_target(self.webhook_url or "")
            body = json.dumps(slack_body(alert)).encode()
            request = urllib.request.Request(target.geturl(), data=body, headers={"Content-Type": "application/json"}, method="POST")
            opener = urllib.request.build_opener(_NoRedirects())
            with opener.open(request, timeout=self.timeout_seconds) as response:
                response.read()
        except Exception as exc:  # the line is written; an outage or a bad URL must not stop the sensor
            log.warning(f"alert webhook failed for {alert['alert_id']}: {_safe_error(exc)} (the alert stays in the alerts file)")


class WebhookUrlError(ValueError):
    """The configured webhook is not an http(s) URL; its value is never shown (it holds the secret)."""


def webhook_target(url: str) -> urllib.parse.SplitResult:
    """The webhook URL, parsed, when it is ``http://host/...`` or ``https://host/...``."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise WebhookUrlError("MARKETING_ALERT_WEBHOOK must be an http:// or https:// URL with a host (value not shown)")
    return parts


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: a webhook answers where it is configured, and a 3xx to another host could
    carry the alert (or, on a same-host GET re-issue, lose its body). The 3xx ends the request as an HTTP error."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _safe_error(exc: BaseException) -> str:
    """An exception as text with no URL: urllib's messages quote the URL, reasons can quote hosts."""
    if isinstance(exc, WebhookUrlError):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}" + (" (redirect not followed)" if 300 <= exc.code < 400 else "")
    return type(exc).__name__


def slack_body(alert: Mapping[str, Any]) -> dict[str, Any]:
    icon = ":rotating_light:" if alert["severity"] == "ERROR" else ":warning:"
    if alert["kind"] == "asset_check":
        title = f"{alert['severity']} check `{alert['asset_key']}:{alert['check_name']}` did not pass"
    else:
        title = f"{alert['severity']} run of `{alert['job']}` failed"
    text = f"{icon} {title}: {alert['description']}"[:2900]
    context = f"run `{alert['run_id']}` · job `{alert['job']}` · {alert['ts']}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if alert["metadata"]:
        facts = "\n".join(f"• {k}: {json.dumps(v)}" for k, v in alert["metadata"].items())[:2900]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": facts}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": text, "blocks": blocks}
