"""The whole graph on each engine: DuckDB (embedded) and Spark (``local[N]``), time, peak memory and the per-step ratio.

    .venv/bin/python benchmarks/engines.py --scales small default --work /tmp/bench_engines
    .venv/bin/python benchmarks/engines.py --scales default large --spark-master 'local[2]' --work /tmp/bench_engines
    .venv/bin/python benchmarks/engines.py --scales default --via-make --work /tmp/bench_engines   # as `make run ENGINE=...`

For each scale, demo data (seed 42) in ``<work>/<scale>/landing`` (kept across invocations), then one run per engine
from an empty warehouse (``<work>/<scale>/<engine>``): ``python -m marketing_assets.run`` in a subprocess with
``MARKETING_ENGINE`` set, measured as ``benchmarks/scale.py`` measures (wall time, peak RSS of the process tree: on
Spark that includes the JVM the run starts, each step's seconds from the Dagster event log). Prints per scale: both
engines' wall time, peak RSS and check summary; the steps with the largest Spark time and their Spark / DuckDB ratio;
and, from the Spark figures, what a cluster would need for ``--target-factor`` times the largest scale measured.
Writes ``<work>/engines_benchmark.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale as bench  # noqa: E402  (benchmarks/scale.py: the same measurement)

ENGINES = ("duckdb", "spark")
TOP = 15


def run_engine(work: Path, engine: str, checks_as_of: str, spark_master: str, via_make: bool = False) -> dict:
    env = {"MARKETING_ENGINE": engine}
    if engine == "spark":
        env.update({"MARKETING_SPARK_MASTER": spark_master, "MARKETING_SPARK_WAREHOUSE": str(work / engine / "spark")})
    # via make: the README's `make run ENGINE=...` of this checkout (its .venv, installed by make if missing)
    command = ["make", "-C", str(bench.REPO), "--no-print-directory", "run", f"ENGINE={engine}"] if via_make else None
    result = bench.run_graph(work, checks_as_of, run_name=engine, env_extra=env, command=command)
    print(f"  {engine}: {result['wall_s']:.0f} s, peak RSS {result['peak_rss_tree_gb']:.2f} GB, exit {result['exit']}; {result['checks']}",
          flush=True)
    return result


def cores_of(master: str) -> int:
    inside = master.partition("[")[2].rstrip("]")
    return int(inside) if inside.isdigit() else (bench.os.cpu_count() or 1)


def report(results: dict, spark_master: str, target_factor: float, node_cores: int, efficiency: float, target_hours: float) -> dict:
    m = bench.machine()
    print(f"\nMachine: {m['cores']} cores, {m['ram_gb']} GB RAM, load average {' '.join(map(str, m['load_average']))} after; "
          f"Spark master {spark_master}\n")
    print("| scale | landing rows | engine | whole graph | peak RSS | exit | checks |")
    print("|---|---|---|---|---|---|---|")
    for scale, r in results.items():
        for engine in ENGINES:
            if engine in r["runs"]:
                run = r["runs"][engine]
                print(f"| {scale} | {r['landing_rows']:,} | {engine} | {run['wall_s']:.0f} s | {run['peak_rss_tree_gb']:.2f} GB | "
                      f"{run['exit']} | {run['checks']} |")
    summary = {}
    for scale, r in results.items():
        runs = r["runs"]
        if not all(e in runs for e in ENGINES):
            continue
        duck, spark = runs["duckdb"]["steps"], runs["spark"]["steps"]
        ratios = {k: spark[k] / duck[k] for k in spark if duck.get(k, 0) > 0}
        whole = runs["spark"]["wall_s"] / runs["duckdb"]["wall_s"]
        summary[scale] = {"whole_graph_ratio": whole, "median_step_ratio": statistics.median(ratios.values()) if ratios else None}
        print(f"\n{scale}: Spark / DuckDB, whole graph × {whole:.1f}, median step × {summary[scale]['median_step_ratio'] or 0:.1f}; "
              f"the {TOP} slowest steps on Spark\n")
        print("| step | DuckDB s | Spark s | ratio |")
        print("|---|---|---|---|")
        for key, secs in sorted(spark.items(), key=lambda kv: -kv[1])[:TOP]:
            d = duck.get(key)
            print(f"| {key} | {d if d is not None else '-'} | {secs:.1f} | {'-' if not d else f'{secs / d:.1f}'} |")
    # On paper: the largest scale measured on Spark, times target_factor, on a cluster. Work in core-seconds is the
    # local run's wall time × its cores (an upper bound: not every step keeps every core busy), grown linearly with
    # rows (scale.py's exponents are ≤ ~1 on DuckDB; the same SQL on Spark shuffles in proportion to rows).
    measured = [(s, r) for s, r in results.items() if "spark" in r["runs"] and r["runs"]["spark"]["exit"] == 0]
    if measured:
        scale, r = max(measured, key=lambda sr: sr[1]["landing_rows"])
        core_s = r["runs"]["spark"]["wall_s"] * cores_of(spark_master)
        work = core_s * target_factor
        rows = r["landing_rows"] * target_factor
        print(f"\nOn paper: {target_factor:g} × {scale} ({rows:,.0f} landing rows) on Spark; local work {core_s:,.0f} core-s "
              f"× {target_factor:g} = {work:,.0f} core-s, at {efficiency:.0%} parallel efficiency\n")
        print("| nodes × cores | hours | meets the target |")
        print("|---|---|---|")
        for nodes in (10,):
            for cores in sorted({node_cores, node_cores * 2, max(4, node_cores // 2)}):
                hours = work / (nodes * cores * efficiency) / 3600
                print(f"| {nodes} × {cores} | {hours:.2f} | {'yes' if hours <= target_hours else 'no'} (≤ {target_hours:g} h) |")
        need = math.ceil(work / (target_hours * 3600 * efficiency))
        summary["cluster"] = {"scale": scale, "factor": target_factor, "core_seconds": work, "cores_for_target": need}
        print(f"\nCores for {target_hours:g} h: {need} (e.g. {math.ceil(need / 10)} per node on 10 nodes).")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "default"], choices=["small", "default", "large", "xlarge"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_engines"))
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--via-make", action="store_true",
                        help="run each engine with `make run ENGINE=<engine>` of this checkout instead of `python -m marketing_assets.run`")
    parser.add_argument("--end-date", default="2026-11-30")
    parser.add_argument("--target-factor", type=float, default=100.0, help="the on-paper estimate: this many times the largest scale")
    parser.add_argument("--node-cores", type=int, default=8)
    parser.add_argument("--efficiency", type=float, default=0.6)
    parser.add_argument("--target-hours", type=float, default=1.0)
    args = parser.parse_args()
    import datetime as dt

    as_of = (dt.date.fromisoformat(args.end_date) + dt.timedelta(days=1)).isoformat()
    results = {}
    for scale in args.scales:
        work = args.work / scale
        work.mkdir(parents=True, exist_ok=True)
        print(f"{scale}: {work}", flush=True)
        bench.ensure_landing(work, scale, args.end_date)
        manifest = json.loads((work / "landing" / "_truth" / "manifest.json").read_text())
        results[scale] = {"landing_rows": sum(manifest["files"].values()),
                          "runs": {e: run_engine(work, e, as_of, args.spark_master, args.via_make) for e in args.engines}}
    summary = report(results, args.spark_master, args.target_factor, args.node_cores, args.efficiency, args.target_hours)
    out = args.work / "engines_benchmark.json"
    out.write_text(json.dumps({"machine": bench.machine(), "spark_master": args.spark_master, "scales": results, "summary": summary}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
