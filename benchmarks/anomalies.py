"""Recall and false alarms of the anomaly checks on the demo's planted anomalies (a script that prints numbers, not a test).

    .venv/bin/python benchmarks/anomalies.py                       # seeds 1-8 x 4 end dates over a year, small scale
    .venv/bin/python benchmarks/anomalies.py --seeds 1 2 --end-dates 2026-03-11 --scale default

For every seed x end date: generate the demo, materialise only the ad-platform and web-session sources and
``spend/ad_spend_daily``, then evaluate ``cpa_spike``, ``roas_drop`` and ``conversion_rate_drop`` as of noon on the
end date (``CheckThresholds.as_of``), and compare their episodes with ``_truth/anomalies.json``:

- found: a planted anomaly named by its check (CPA spike: same campaign and week; ROAS drop: same campaign and first
  day; web drop: same day);
- missed: a planted anomaly its check does not name;
- unscorable: a planted web drop on a day with fewer sessions than ``min_day_sessions`` (the check does not score
  such days by design; at small scale the planted day has about 25 sessions). Left out of the recall;
- false alarm: an episode that matches no planted anomaly.

Targets (issue 11): recall >= 95 %, at most 1 false alarm per run (on average; the maximum is printed too).

Measured (default run, 32 runs, small scale, 2026-12-05): with the CPA spike rule "CPA > baseline + 20 % and at least
20 conversions in the week": recall 100 %, 103 false alarms = 3.22 per run (all ``cpa_spike``, mostly thin campaigns).
With "CPA > baseline + 20 % and significantly fewer conversions than the spend buys" (one-sided p < 0.025, exact test
of two Poisson rates with the baseline's dispersion): recall 100 % (64/64), 13 false alarms = 0.41 per run, max 3 in one
run, all ``cpa_spike`` (``roas_drop`` and the web drop had none before or after). The weakest planted spikes (about 40
expected conversions, CPA +55 %) score p ~ 0.02, close to the level: at small scale they are near what a week of data
can tell from chance. Spot check at default scale (``--seeds 1 2 --scale default``, 8 runs): recall 100 % before and
after; false alarms 2.38 -> 1.00 per run (7 ``cpa_spike``, 1 web drop), max 3. With more conversions per week the
test is sharper and week-to-week variation beyond the daily dispersion shows: p ~ 0.001 on 4 of those alarms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from marketing_assets.checks import monitoring
from marketing_assets.constants import SOURCES, SPEND
from marketing_assets.definitions import defs
from marketing_assets.demo import generate
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse

END_DATES = ("2025-12-07", "2026-03-11", "2026-06-19", "2026-09-29")  # a Sunday, Wednesday, Friday, Tuesday
CHECKS = {"cpa_spike": monitoring.cpa_spike, "roas_drop": monitoring.roas_drop, "web_conversion_rate_drop": monitoring.conversion_rate_drop}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _day(value) -> str:
    return pd.Timestamp(value).date().isoformat()


def _matches(kind: str, planted: dict, episode: dict) -> bool:
    if kind == "web_conversion_rate_drop":
        return _day(episode["day"]) == planted["date"]
    return episode["campaign_id"] == planted["campaign_id"] and _day(episode["start_date"]) == planted["start_date"]


def run_one(work: Path, seed: int, end_date: str, scale: str) -> dict:
    """Generate, load what the three checks read, evaluate them; found / missed / unscorable / false alarms."""
    landing = work / "landing"
    generate(landing, scale=scale, seed=seed, end_date=end_date)
    thresholds = CheckThresholds(as_of=f"{end_date}T12:00:00+00:00")
    warehouse = Warehouse(database=str(work / "warehouse.duckdb"), extracts_dir=str(work / "extracts"), reports_dir=str(work / "reports"))
    needed = dg.AssetSelection.assets(dg.AssetKey([SPEND, "ad_spend_daily"])).upstream() | dg.AssetSelection.assets(
        dg.AssetKey([SOURCES, "web_sessions"])
    )
    dg.materialize(list(defs.assets), selection=needed, resources={"landing": LandingZone(path=str(landing)), "warehouse": warehouse,
                                                                    "thresholds": thresholds}, run_config=QUIET)
    planted = json.loads((landing / "_truth" / "anomalies.json").read_text())["anomalies"]
    min_sessions = thresholds.section("anomalies")["min_day_sessions"]
    out = {"found": [], "missed": [], "unscorable": [], "false_alarms": []}
    for kind, check in CHECKS.items():
        episodes = check(warehouse=warehouse, thresholds=thresholds).metadata["episodes"].value
        mine = [a for a in planted if a["kind"] == kind]
        for a in mine:
            label = f"{kind} {a.get('campaign_id', '')} {a.get('start_date', a.get('date'))}".replace("  ", " ")
            if kind == "web_conversion_rate_drop" and a["sessions"] < min_sessions:
                out["unscorable"].append(f"{label} ({a['sessions']} sessions)")
            elif any(_matches(kind, a, e) for e in episodes):
                out["found"].append(label)
            else:
                out["missed"].append(label)
        for e in episodes:
            if not any(_matches(kind, a, e) for a in mine):
                where = _day(e["day"]) if kind == "web_conversion_rate_drop" else f"{e['campaign_id']} {_day(e['start_date'])}"
                out["false_alarms"].append(f"{kind} {where}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 9)))
    parser.add_argument("--end-dates", nargs="+", default=list(END_DATES), type=lambda s: dt.date.fromisoformat(s).isoformat())
    parser.add_argument("--scale", default="small", choices=("small", "default", "large"))
    args = parser.parse_args()

    totals = {"found": 0, "missed": 0, "unscorable": 0, "false_alarms": 0}
    false_by_check = dict.fromkeys(CHECKS, 0)
    most_false = 0
    runs = 0
    start = time.perf_counter()
    print(f"{'seed':>4}  {'end date':<10}  {'found':>5}  {'missed':>6}  {'false':>5}  details")
    for end_date in args.end_dates:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="anomaly_bench_") as tmp:
                out = run_one(Path(tmp), seed, end_date, args.scale)
            runs += 1
            for k in totals:
                totals[k] += len(out[k])
            for f in out["false_alarms"]:
                false_by_check[f.split()[0]] += 1
            most_false = max(most_false, len(out["false_alarms"]))
            details = "; ".join([*(f"MISSED {m}" for m in out["missed"]), *(f"FALSE {f}" for f in out["false_alarms"]),
                                 *(f"unscorable {u}" for u in out["unscorable"])])
            print(f"{seed:>4}  {end_date:<10}  {len(out['found']):>5}  {len(out['missed']):>6}  {len(out['false_alarms']):>5}  {details}", flush=True)

    scored = totals["found"] + totals["missed"]
    recall = totals["found"] / scored if scored else float("nan")
    per_run = totals["false_alarms"] / runs if runs else float("nan")
    print(f"\n{runs} runs ({args.scale} scale, {time.perf_counter() - start:.0f} s): planted {scored + totals['unscorable']}, "
          f"scored {scored}, found {totals['found']}, missed {totals['missed']}, unscorable {totals['unscorable']}")
    print(f"recall {recall:.1%} (target >= 95 %): {'met' if recall >= 0.95 else 'NOT met'}")
    print(f"false alarms {totals['false_alarms']} = {per_run:.2f} per run, max {most_false} in one run (target <= 1 per run on "
          f"average): {'met' if per_run <= 1 else 'NOT met'}; by check: " + ", ".join(f"{k} {v}" for k, v in false_by_check.items()))
    return 0 if recall >= 0.95 and per_run <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
