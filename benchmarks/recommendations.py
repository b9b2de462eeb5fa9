"""Budget recommendations of ``extracts.marketing_roi`` against the demo generator's planted truth.

    .venv/bin/python benchmarks/recommendations.py                      # seeds 1-8, default scale
    .venv/bin/python benchmarks/recommendations.py --seeds 1 --keep     # one seed, keep its folder
    .venv/bin/python benchmarks/recommendations.py --seeds 1-3,7 --json /tmp/rec.json

For each seed: generate the demo landing zone (fixed ``--end-date``, so results do not depend on today) into a
temporary folder, materialise in-process only the upstream closure of ``extracts/marketing_roi`` (no asset
checks; product defaults, e.g. 20 bootstrap draws of the MMM), then read the channel-group rows of the
reference attribution model that carry a recommendation. A channel group's true marginal ROI is the
spend-weighted mean of its MMM channels' true marginal ROIs (``_truth/mmm_truth.json``; MMM channel → group
from ``mmm.mmm_model``): exact, since scaling a group's spend scales each member's spend by the same factor.
Where the truth is unambiguous (true mROI >= 1.3 → ``scale``, <= 0.8 → ``reduce``) the recommendation is
scored; in between it is printed as ambiguous. A contradiction is ``scale`` while the budget plan cuts the
group, or ``reduce`` while it raises it. Prints the per-seed table and the share matched (target >= 90 %) and
contradictions (target 0). A script that prints numbers, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from marketing_assets.constants import EXTRACTS, MMM, SPEND
from marketing_assets.definitions import defs
from marketing_assets.demo import generate
from marketing_assets.lib import kpis, recommend
from marketing_assets.lib.mmm.frame import channel_groups_sql
from marketing_assets.resources import CheckThresholds, LandingZone, Warehouse
from marketing_assets.sensors import Alerts

SCALE_AT = 1.3  # true marginal ROI at or above which `scale` is the right call
REDUCE_AT = 0.8  # true marginal ROI at or below which `reduce` is the right call
TARGET_MATCH = 0.90
TARGET_CONTRADICTIONS = 0
TARGET = dg.AssetKey([EXTRACTS, "marketing_roi"])
COLUMNS = ["channel_group", "recommendation", "recommendation_rule", "mmm_marginal_roi", "mmm_marginal_roi_low",
           "mmm_marginal_roi_high", "planned_spend_change_pct", "channel_roas"]  # fmt: skip


def parse_seeds(tokens: list[str]) -> list[int]:
    """``["1-8"]``, ``["1", "3"]`` or ``["1-3,7"]`` → sorted distinct seeds."""
    seeds: set[int] = set()
    for token in tokens:
        for part in filter(None, token.split(",")):
            lo, _, hi = part.partition("-")
            seeds.update(range(int(lo), int(hi or lo) + 1))
    return sorted(seeds)


def build(landing: Path, root: Path) -> None:
    """Materialise the upstream closure of ``extracts/marketing_roi`` into ``root/warehouse.duckdb``."""
    resources = {
        "landing": LandingZone(path=str(landing)),
        "warehouse": Warehouse(
            database=str(root / "warehouse.duckdb"), extracts_dir=str(root / "extracts"), reports_dir=str(root / "reports")
        ),
        "thresholds": CheckThresholds(),
        "alerts": Alerts(alerts_file=str(root / "alerts.jsonl")),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            list(defs.assets),
            selection=dg.AssetSelection.assets(TARGET).upstream(),
            resources=resources,
            raise_on_error=True,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
    if not result.success:
        raise RuntimeError("materialisation failed")


def true_group_mroi(truth: dict, groups: dict[str, str]) -> dict[str, tuple[float, list[str]]]:
    """Channel group → (spend-weighted true marginal ROI of its MMM channels, those channels)."""
    members: dict[str, list[str]] = {}
    for channel in truth["channels"]:
        if channel in groups:
            members.setdefault(groups[channel], []).append(channel)
    out = {}
    for group, channels in members.items():
        spend = [truth["channels"][c]["total_spend_usd"] for c in channels]
        mroi = [truth["channels"][c]["marginal_roi"] for c in channels]
        out[group] = (sum(s * m for s, m in zip(spend, mroi, strict=True)) / sum(spend), channels)
    return out


def expected(mroi: float | None) -> str | None:
    if mroi is None:
        return None
    return "scale" if mroi >= SCALE_AT else "reduce" if mroi <= REDUCE_AT else "ambiguous"


def num(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def run_seed(seed: int, scale: str, end_date: str, reference_model: str, keep: bool) -> tuple[list[dict], dict]:
    """One row per channel group with a recommendation, and the seed's timings and MMM status."""
    root = Path(tempfile.mkdtemp(prefix=f"rec_bench_{seed}_"))
    landing = root / "landing"
    try:
        t0 = time.perf_counter()
        generate(landing, scale=scale, seed=seed, end_date=end_date)
        t1 = time.perf_counter()
        build(landing, root)
        t2 = time.perf_counter()
        truth = json.loads((landing / "_truth" / "mmm_truth.json").read_text())
        with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
            model = con.execute(f"SELECT channel, channel_group, mroi, mroi_low, mroi_high FROM {MMM}.mmm_model").df()
            groups = dict(zip(model["channel"], model["channel_group"], strict=True))
            if not groups:  # no fitted model: the product's own MMM channel → group mapping still names the truth
                groups = dict(con.execute(channel_groups_sql(ad_spend=f"{SPEND}.ad_spend_daily")).fetchall())
            frame = con.execute(
                f"""SELECT {", ".join(COLUMNS)} FROM {EXTRACTS}.marketing_roi
                    WHERE level = 'channel' AND attribution_model = ? AND recommendation IS NOT NULL
                    ORDER BY channel_group""",
                [reference_model],
            ).df()
        true = true_group_mroi(truth, groups)
        rows = []
        for rec in frame.to_dict("records"):
            mroi, channels = true.get(rec["channel_group"], (None, []))
            want = expected(mroi)
            plan = num(rec["planned_spend_change_pct"])
            contradiction = plan is not None and (
                (rec["recommendation"] == "scale" and plan < 0) or (rec["recommendation"] == "reduce" and plan > 0)
            )
            rows.append(
                {
                    "seed": seed,
                    "channel_group": rec["channel_group"],
                    "mmm_channels": "+".join(channels),
                    "true_mroi": mroi,
                    "mroi": num(rec["mmm_marginal_roi"]),
                    "mroi_low": num(rec["mmm_marginal_roi_low"]),
                    "mroi_high": num(rec["mmm_marginal_roi_high"]),
                    "plan_change_pct": plan,
                    "channel_roas": num(rec["channel_roas"]),
                    "recommendation": rec["recommendation"],
                    "rule": rec["recommendation_rule"],
                    "expected": want,
                    "match": None if want in (None, "ambiguous") else rec["recommendation"] == want,
                    "contradiction": contradiction,
                }
            )
        status = {
            "seed": seed,
            "generate_s": t1 - t0,
            "materialise_s": t2 - t1,
            "wall_s": time.perf_counter() - t0,
            "mmm_channels_fitted": len(model),
            "mmm_channels": [
                {"channel": m["channel"], "true_mroi": truth["channels"].get(m["channel"], {}).get("marginal_roi"),
                 "mroi": num(m["mroi"]), "mroi_low": num(m["mroi_low"]), "mroi_high": num(m["mroi_high"])}
                for m in model.to_dict("records")
            ],
            "folder": str(root) if keep else None,
        }
        return rows, status
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def fmt(v, spec: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_seed(rows: list[dict], status: dict) -> None:
    header = (f"{'seed':>4}  {'channel group':<16}{'mmm channels':<28}{'true mROI':>9}  {'est. mROI [80% int.]':<22}"
              f"{'plan':>7}  {'rec.':<7}{'rule':<38}{'expected':<10}{'match':<6}{'contra.':<7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in rows:
        est = f"{fmt(r['mroi'])} [{fmt(r['mroi_low'])}, {fmt(r['mroi_high'])}]" if r["mroi"] is not None else "–"
        plan = "–" if r["plan_change_pct"] is None else f"{r['plan_change_pct']:+.0%}"
        match = "–" if r["match"] is None else "yes" if r["match"] else "no"
        print(
            f"{r['seed']:>4}  {r['channel_group']:<16}{r['mmm_channels'] or '(not modelled)':<28}{fmt(r['true_mroi']):>9}  {est:<22}"
            f"{plan:>7}  {r['recommendation']:<7}{r['rule']:<38}{r['expected'] or 'no truth':<10}{match:<6}"
            f"{'yes' if r['contradiction'] else 'no':<7}"
        )
    print(
        f"seed {status['seed']}: wall {status['wall_s']:.1f}s (generate {status['generate_s']:.1f}s, "
        f"materialise {status['materialise_s']:.1f}s); MMM channels fitted: {status['mmm_channels_fitted']}"
        + (f"; kept {status['folder']}" if status["folder"] else "")
    )
    per_channel = []
    for m in status["mmm_channels"]:
        t, lo, hi = m["true_mroi"], m["mroi_low"], m["mroi_high"]
        missed = t is not None and lo is not None and hi is not None and not lo <= t <= hi
        per_channel.append(f"{m['channel']} {fmt(t)} vs {fmt(m['mroi'])} [{fmt(lo)}, {fmt(hi)}]" + (" (truth outside)" if missed else ""))
    if per_channel:
        print("  MMM channel mROI, true vs estimated [90% interval]: " + "; ".join(per_channel))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", default=["1-8"], help="seeds: ranges and lists, e.g. 1-8, 1 3 5, 1-3,7")
    parser.add_argument("--scale", default="default", choices=["small", "default", "large"])
    parser.add_argument("--end-date", default="2025-11-30", help="last day of demo history (fixed so runs are comparable)")
    parser.add_argument("--keep", action="store_true", help="keep each seed's temporary folder (landing, warehouse, extracts)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the rows and timings as JSON")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    rules = recommend.load_rules(recommend.kpi_goals(kpis.load_kpi_dictionary()))
    print(
        f"seeds {seeds}, scale {args.scale}, end date {args.end_date}, reference model {rules.reference_model}, "
        f"rules version {rules.version}; expected: true mROI >= {SCALE_AT} -> scale, <= {REDUCE_AT} -> reduce\n",
        flush=True,
    )
    rows: list[dict] = []
    statuses: list[dict] = []
    start = time.perf_counter()
    for seed in seeds:
        seed_rows, status = run_seed(seed, args.scale, args.end_date, rules.reference_model, args.keep)
        print_seed(seed_rows, status)
        sys.stdout.flush()
        rows += seed_rows
        statuses.append(status)
    total_s = time.perf_counter() - start

    scored = [r for r in rows if r["match"] is not None]
    matched = sum(r["match"] for r in scored)
    share = matched / len(scored) if scored else float("nan")
    contradictions = sum(r["contradiction"] for r in rows)
    ambiguous = sum(r["expected"] == "ambiguous" for r in rows)
    untruthed = sum(r["expected"] is None for r in rows)
    print("Summary")
    print(f"  channel-group rows with a recommendation: {len(rows)} ({ambiguous} ambiguous, {untruthed} without MMM truth)")
    print(f"  recommendations: {pd.Series([r['recommendation'] for r in rows]).value_counts().to_dict()}")
    if scored:
        print("  scored, expected x issued:")
        table = pd.crosstab(pd.Series([r["expected"] for r in scored], name="expected"),
                            pd.Series([r["recommendation"] for r in scored], name="issued"))
        print("    " + table.to_string().replace("\n", "\n    "))
    match_ok = bool(scored) and share >= TARGET_MATCH
    contra_ok = contradictions <= TARGET_CONTRADICTIONS
    print(f"  unambiguous channels scored: {len(scored)}")
    print(f"  matches: {matched}")
    print(f"  share matched: {fmt(share, '.1%')} (target >= {TARGET_MATCH:.0%}): {'PASS' if match_ok else 'MISS'}")
    print(f"  contradictions with the budget plan: {contradictions} (target {TARGET_CONTRADICTIONS}): {'PASS' if contra_ok else 'MISS'}")
    print(f"  overall: {'PASS' if match_ok and contra_ok else 'MISS'}")
    print(f"  wall time: {total_s:.0f}s for {len(seeds)} seed(s) ({total_s / max(len(seeds), 1):.0f}s per seed)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": seeds, "scale": args.scale, "end_date": args.end_date, "reference_model": rules.reference_model,
                    "rules_version": rules.version, "rows": rows, "seeds_status": statuses,
                    "summary": {"scored": len(scored), "matched": matched, "share_matched": share, "contradictions": contradictions,
                                "target_share": TARGET_MATCH, "target_contradictions": TARGET_CONTRADICTIONS, "wall_s": total_s},
                },
                indent=2,
                default=str,
            )
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
