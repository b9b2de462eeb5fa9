"""The data-quality page as data, from the ``data_quality_report`` extract (section check/freshness/identity,
asset_key, check_name, severity, blocking, status, evaluated_at, description, metric, value): pass/warn/fail
counts, problems first, all checks by asset, freshness and identity match rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from marketing_assets.lib import tally
from marketing_assets.lib.reports import text as T
from marketing_assets.lib.reports.blocks import Callout, Details, How, Page, Problem, Problems, Section, Strong, Tile, Tiles, badge
from marketing_assets.lib.reports.common import Col, col, figure, get_frame, na, table
from marketing_assets.lib.reports.formatting import fmt_date, fmt_datetime, fmt_value, is_missing, is_num

STATUS_ORDER = {"failed": 0, "warned": 1, "skipped": 2, "passed": 3, "pending": 4, "not_in_run": 5}


def dq_value(v: Any, rec: Mapping[str, Any]) -> str:
    metric = str(rec.get("metric") or "").lower()
    if is_num(v):
        f = float(v)
        if any(k in metric for k in ("rate", "pct", "share", "ratio", "fraction")) and -1.0 <= f <= 1.0:
            return fmt_value(f, "percent")
        if "hour" in metric:
            return f"{f:,.1f} h"
        return fmt_value(f, None)
    return "–" if is_missing(v) else str(v)


def problem(rec: Mapping[str, Any]) -> Problem:
    status = str(rec.get("status"))
    facts: list = []
    if not is_missing(rec.get("metric")):
        facts.append([f"{rec.get('metric')} = ", Strong(dq_value(rec.get("value"), rec))])
    facts.append([f"severity {rec.get('severity') or '–'}"])
    facts.append([Strong("blocking")] if rec.get("blocking") else ["not blocking"])
    facts.append([f"evaluated {fmt_datetime(rec.get('evaluated_at'))}"])
    return Problem("bad" if status == "failed" else "warn", badge(status), str(rec.get("asset_key")), str(rec.get("check_name") or "–"),
                   str(rec.get("description") or ""), facts)


COLUMNS = [Col("status", "Status", lambda v, r: [badge(v)]), Col("asset_key", "Asset"), Col("check_name", "Check"), Col("severity", "Severity"),
           Col("blocking", "Blocking", lambda v, r: ["yes" if v else "no"]), Col("metric", "Metric"), Col("value", "Value", lambda v, r: [dq_value(v, r)]),
           Col("description", "What it checks / what was found"), Col("evaluated_at", "Evaluated", "datetime")]


def _columns(*without: str) -> list[Col]:
    return [c for c in COLUMNS if c.name not in without]


def summary(counted: tally.CheckTally, checks: pd.DataFrame, others: pd.DataFrame) -> list:
    n_fail, n_warn, n_pass, n_skip = (counted.count(k) for k in ("failed", "warned", "passed", "skipped"))
    blocking_fail = len(counted.blocking_failures)
    state = "bad" if blocking_fail else ("warn" if n_fail or n_warn else "good")
    verdict = T.DQ_VERDICT[state].format(n=blocking_fail, s="" if blocking_fail == 1 else "s")
    warned_blocking = sum(1 for c in counted.checks if c.status == "warned" and c.blocking)
    tiles = [Tile([label], f"{n:,}", state=cls, delta=[sub]) for label, n, cls, sub in (
        ("Failed", n_fail, "bad" if n_fail else "none", f"{blocking_fail} blocking"), ("Warned", n_warn, "warn" if n_warn else "none", f"{warned_blocking} on blocking checks"),
        ("Passed", n_pass, "good", "checks"), ("Skipped", n_skip, "none", "did not execute or said skipped"))]
    note = T.DQ_COUNTED.format(scope=tally.SCOPE) + "".join(T.DQ_NOT_COUNTED.format(n=f"{int(n):,}", status=k.replace("_", " ")) for k, n in others["status"].value_counts().items())
    blocks = [Callout([Strong(verdict)], state), Tiles(tiles), How([note])]
    last_eval = pd.to_datetime(checks["evaluated_at"], errors="coerce", utc=True).max()
    if not pd.isna(last_eval):
        blocks.append(How([T.DQ_LAST.format(when=fmt_datetime(last_eval), checks=f"{len(checks):,}", assets=f"{checks['asset_key'].nunique():,}")]))
    return blocks


def checks_by_asset(checks: pd.DataFrame) -> list:
    if checks.empty:
        return [na("no_checks")]
    blocks = []
    for asset, g in sorted(checks.groupby("asset_key"), key=lambda kv: (kv[1]["_o"].min(), kv[0])):
        c = g["status"].value_counts()
        problems = int(c.get("failed", 0)) + int(c.get("warned", 0))
        note = " · ".join(f"{int(c.get(k, 0))} {k.replace('_', ' ')}" for k in STATUS_ORDER if c.get(k, 0))
        blocks.append(Details(str(asset), note, bool(problems), table(g.sort_values(["_o", "check_name"]), _columns("asset_key"), wrap=("description",))))
    return blocks


def identity(ident: pd.DataFrame) -> list:
    if ident.empty:
        return [na("no_identity")]
    ib = ident.copy()
    ib["_v"] = pd.to_numeric(ib["value"], errors="coerce")
    rates = ib[ib["metric"].astype(str).str.contains("rate|share|pct", case=False, regex=True) & ib["_v"].between(0, 1)]
    blocks: list = []
    if not rates.empty:
        labels = [str(c if not is_missing(c) else m).replace("_", " ") for c, m in zip(rates["check_name"], rates["metric"])]
        blocks.append(figure(T.DQ_RATES_FIGURE, "hbar", labels, (rates["_v"] * 100).tolist(), "", how=T.DQ_RATES_HOW, compact=True,
                             value_labels=[fmt_value(v, "percent") for v in rates["_v"]], label_width=260, color="#59a14f"))
    blocks.append(table(ib.sort_values(["_o", "asset_key"]), _columns("severity"), wrap=("description",)))
    return blocks


def data_quality_page(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any) -> Page:
    dq = get_frame(data, "data_quality_report", ["status"])
    titles = T.DQ_SECTIONS
    if dq is None:
        sections = [Section(sid, title, [na("data_quality_report")]) for sid, title in titles.items()]
        return Page(T.DQ_TITLE, [T.DQ_SUBTITLE_EMPTY], fmt_date(fresh_to), fmt_datetime(generated_at), sections, template="data_quality.html.j2")
    f = dq.copy()
    if "section" not in f.columns:
        f["section"] = "check"
    f["status"] = f["status"].astype(str).str.lower()
    f["blocking"] = col(f, "blocking", False).fillna(False).astype(bool)
    for c in ("asset_key", "check_name", "severity", "description", "metric", "value", "evaluated_at"):
        if c not in f.columns:
            f[c] = None
    f["asset_key"] = f["asset_key"].fillna("(no asset)").astype(str)
    f["_o"] = f["status"].map(STATUS_ORDER).fillna(6)
    # The tally (lib.tally): each check once, latest result wins; the page lists exactly the checks it counts.
    all_checks = f[f["section"] == "check"]
    counted = tally.tally(tally.outcomes_from_rows(all_checks.assign(_row=all_checks.index)))
    others = all_checks[~all_checks["status"].isin(tally.STATUSES)].drop_duplicates(["asset_key", "check_name"], keep="last")
    checks = pd.concat([all_checks.loc[[o.ref for o in counted.checks]], others])
    problems = checks[checks["status"].isin(["failed", "warned"])].sort_values(["_o", "blocking", "asset_key"], ascending=[True, False, True])
    fresh = f[f["section"] == "freshness"]
    sections = [
        Section("summary", titles["summary"], summary(counted, checks, others), [T.HOW["dq_summary"]]),
        Section("problems", titles["problems"], [Problems([problem(r) for r in problems.to_dict("records")])] if not problems.empty else [Callout([T.DQ_NOTHING_WRONG], "good")],
                [T.HOW["dq_problems"]]),
        Section("checks", titles["checks"], checks_by_asset(checks), [T.HOW["dq_checks"]]),
        Section("freshness", titles["freshness"], [table(fresh.sort_values(["_o", "asset_key"]), _columns("check_name"), wrap=("description",))] if not fresh.empty else [na("no_freshness")],
                [T.HOW["dq_freshness"]]),
        Section("identity", titles["identity"], identity(f[f["section"] == "identity"])),
    ]
    return Page(T.DQ_TITLE, [T.DQ_SUBTITLE], fmt_date(fresh_to), fmt_datetime(generated_at), sections, template="data_quality.html.j2")
