"""Whole-graph scaling: wall time, peak memory and the slowest steps of a full run at each demo scale.

    .venv/bin/python benchmarks/scale.py --scales small default large xlarge --work /tmp/bench_scale --runs 1

For each scale, ``<work>/<scale>/landing`` gets demo data (seed 42, ``--end-date``) unless a previous invocation
left it there (landing zones are reused; the generator's own time and peak RSS are recorded when it runs).
Each run starts from an empty warehouse, extracts, reports and ``DAGSTER_HOME`` (``<work>/<scale>/run``) and
runs ``python -m marketing_assets.run`` in a subprocess. Recorded per run: wall time; peak RSS of the run's
process tree (``/proc`` polled every 0.2 s, children included) and the kernel's ``ru_maxrss`` of the process
(``wait4``); landing rows (the demo manifest); every step's duration from the run's Dagster event log
(``STEP_START`` to ``STEP_SUCCESS``/``STEP_FAILURE`` per step key). Prints the machine (cores, RAM, load
average before and after), a table per scale with the targets beside the numbers, and the scaling exponent
``log(t2/t1) / log(n2/n1)`` of time against landing rows between consecutive scales, for the whole graph and
for each of the ten slowest steps; writes JSON next to it (``<work>/scale_benchmark.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from marketing_assets.resources import duckdb_settings, machine_cpus, machine_memory_bytes

TARGETS = {"large_s": 200.0, "xlarge_s": 20 * 60.0, "rss_over_duckdb_gb": 1.5, "peak_rss_default_gb": 6.0, "step_exponent": 1.0}
STEP_EXPONENT_SLACK = 1.2
"""A step's exponent above this is flagged (the target is ~1; small steps are noisy)."""
SLOWEST = 10
_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def duckdb_limit_gb() -> float:
    """The runs' DuckDB memory limit in GB (decimal): MARKETING_DUCKDB_MEMORY_LIMIT, else the one the warehouse derives
    from this machine (:func:`marketing_assets.resources.duckdb_settings`)."""
    limit = duckdb_settings(machine_memory_bytes(), machine_cpus(), os.environ.get("MARKETING_DUCKDB_MEMORY_LIMIT") or None).memory_limit
    text = limit.strip().lower().replace(" ", "")
    m = re.fullmatch(r"([\d.]+)([a-z]+)", text)
    if m is None or m.group(2) not in _UNITS:
        raise SystemExit(f"cannot read the DuckDB memory limit {limit!r}")
    return float(m.group(1)) * _UNITS[m.group(2)] / 1e9


def machine() -> dict:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return {"cores": os.cpu_count(), "ram_gb": round(mem_kb / 1e6, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants, from ``/proc``."""
    parent: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def measured(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd``; wall time, peak RSS of its process tree (polled) and its ``ru_maxrss``, exit code."""
    peak = [0]
    samples: list[tuple[float, int]] = []  # (wall clock, tree RSS): which step the peak falls in
    with log.open("w") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                rss = _tree_rss_bytes(proc.pid)
                peak[0] = max(peak[0], rss)
                samples.append((time.time(), rss))
                done.wait(0.2)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(wall, 1), "peak_rss_tree_gb": round(peak[0] / 1e9, 2),
            "maxrss_gb": round(usage.ru_maxrss * 1024 / 1e9, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "exit": proc.returncode, "_samples": samples}


def ensure_landing(work: Path, scale: str, end_date: str) -> dict | None:
    """Demo data in ``work/landing`` (kept across invocations); the generator's measurements when it ran."""
    if (work / "landing" / "_truth" / "manifest.json").is_file():
        return None
    shutil.rmtree(work / "landing", ignore_errors=True)
    cmd = [sys.executable, "-m", "marketing_assets.demo", "generate", "--out", str(work / "landing"), "--scale", scale,
           "--seed", "42", "--end-date", end_date]
    result = measured(cmd, {**os.environ, "PYTHONPATH": str(REPO)}, work / "generate.log")
    result.pop("_samples")
    if result["exit"] != 0:
        raise SystemExit(f"demo generation failed:\n{(work / 'generate.log').read_text()[-3000:]}")
    print(f"  {scale}: demo data in {result['wall_s']:.0f} s, peak RSS {result['peak_rss_tree_gb']:.2f} GB", flush=True)
    return result


def step_durations(home: Path, step_windows: list | None = None) -> tuple[str | None, dict[str, float]]:
    """The latest run in the Dagster instance at ``home`` and each step's seconds (start to success/failure);
    ``step_windows`` receives each step's (start, end) wall-clock times."""
    step_windows = [] if step_windows is None else step_windows
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    instance = dg.DagsterInstance.get()
    try:
        runs = instance.get_runs(limit=1)
        if not runs:
            return None, {}
        run_id = runs[0].run_id
        kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
        start: dict[str, float] = {}
        out: dict[str, float] = {}
        windows: dict[str, tuple[float, float]] = {}
        for entry in instance.all_logs(run_id, of_type=kinds):
            key = entry.step_key
            if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
                start[key] = entry.timestamp
            elif key in start:
                out[key] = round(entry.timestamp - start[key], 2)
                windows[key] = (start[key], entry.timestamp)
        step_windows[:] = sorted(windows.items(), key=lambda kv: kv[1][0])
        return run_id, out
    finally:
        instance.dispose()
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def run_graph(work: Path, checks_as_of: str, run_name: str = "run", env_extra: dict | None = None,
              command: list[str] | None = None) -> dict:
    """One whole-graph run on ``work/landing`` into a fresh ``work/<run_name>`` (``env_extra``: more environment,
    e.g. the engine; ``command``: what runs it, default ``python -m marketing_assets.run``)."""
    run_dir = work / run_name
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / ".dagster").mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster.local.yaml", run_dir / ".dagster" / "dagster.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MARKETING_LANDING_DIR": str(work / "landing"),
           "MARKETING_WAREHOUSE": str(run_dir / "warehouse.duckdb"), "MARKETING_EXTRACTS_DIR": str(run_dir / "extracts"),
           "MARKETING_REPORTS_DIR": str(run_dir / "reports"), "DAGSTER_HOME": str(run_dir / ".dagster"),
           "MARKETING_CHECKS_AS_OF": checks_as_of, **(env_extra or {})}
    result = measured(command or [sys.executable, "-m", "marketing_assets.run"], env, run_dir / "run.log")
    text = (run_dir / "run.log").read_text(errors="replace")
    checks = re.search(r"^checks: .*$", text, re.MULTILINE)
    result["checks"] = checks.group(0) if checks else None
    windows: list = []
    result["run_id"], result["steps"] = step_durations(run_dir / ".dagster", windows)
    result["peak_rss_by_step_gb"] = peak_by_step(result.pop("_samples"), windows)
    return result


def peak_by_step(samples: list[tuple[float, int]], windows: list[tuple[str, tuple[float, float]]]) -> dict[str, float]:
    """The highest process-tree RSS sampled while each step ran (GB), highest first: where the run's peak is."""
    peaks: dict[str, float] = {}
    for key, (begin, end) in windows:
        inside = [rss for t, rss in samples if begin <= t <= end]
        if inside:
            peaks[key] = round(max(inside) / 1e9, 2)
    return dict(sorted(peaks.items(), key=lambda kv: -kv[1]))


def exponent(t1: float, t2: float, n1: float, n2: float) -> float | None:
    if min(t1, t2, n1, n2) <= 0 or n1 == n2:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def _fmt_exp(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def summarize(scale: str, landing_rows: int, runs: list[dict], limit_gb: float) -> dict:
    keys = set().union(*(r["steps"] for r in runs))
    steps = {k: statistics.median([r["steps"][k] for r in runs if k in r["steps"]]) for k in keys}
    peak = max(r["peak_rss_tree_gb"] for r in runs)
    return {"scale": scale, "landing_rows": landing_rows, "wall_s": statistics.median(r["wall_s"] for r in runs),
            "steps_total_s": round(sum(steps.values()), 1), "peak_rss_gb": peak,
            "rss_over_duckdb_gb": round(peak - limit_gb, 2), "exits": [r["exit"] for r in runs],
            "peak_rss_by_step_gb": max(runs, key=lambda r: r["peak_rss_tree_gb"]).get("peak_rss_by_step_gb", {}),
            "steps_s": dict(sorted(steps.items(), key=lambda kv: -kv[1]))}


def report(summaries: list[dict], limit_gb: float, load_before: list[float], runs: int) -> None:
    m = machine()
    print(f"\nMachine: {m['cores']} cores, {m['ram_gb']} GB RAM, load average {' '.join(map(str, load_before))} before, "
          f"{' '.join(map(str, m['load_average']))} after; DuckDB memory_limit {limit_gb:g} GB; median of {runs} run(s)\n")
    print("| scale | landing rows | whole graph | steps (sum) | exponent vs previous | peak RSS | RSS − DuckDB limit | exit "
          "| target |")
    print("|---|---|---|---|---|---|---|---|---|")
    prev = None
    for s in summaries:
        exp = exponent(prev["wall_s"], s["wall_s"], prev["landing_rows"], s["landing_rows"]) if prev else None
        s["exponent_vs_previous"] = exp
        notes = [f"RSS − limit ≤ {TARGETS['rss_over_duckdb_gb']} GB {'ok' if s['rss_over_duckdb_gb'] <= TARGETS['rss_over_duckdb_gb'] else 'MISSED'}"]
        if not os.environ.get("MARKETING_DUCKDB_MEMORY_LIMIT"):  # the default settings: the whole run within 6 GB
            t = TARGETS["peak_rss_default_gb"]
            notes.append(f"peak ≤ {t:g} GB {'ok' if s['peak_rss_gb'] <= t else 'MISSED'}")
        for name in ("large", "xlarge"):
            if s["scale"] == name:
                t = TARGETS[f"{name}_s"]
                notes.insert(0, f"≤ {t:.0f} s {'ok' if s['wall_s'] <= t else 'MISSED'}")
        if exp is not None:
            notes.append(f"exponent ≤ ~1 {'ok' if exp <= STEP_EXPONENT_SLACK else 'MISSED'}")
        print(f"| {s['scale']} | {s['landing_rows']:,} | {s['wall_s']:.0f} s | {s['steps_total_s']:.0f} s | {_fmt_exp(exp)} | "
              f"{s['peak_rss_gb']:.2f} GB | "
              f"{s['rss_over_duckdb_gb']:+.2f} GB | {','.join(map(str, s['exits']))} | {'; '.join(notes)} |")
        prev = s
    for s in summaries:
        print(f"\n{s['scale']}: the steps with the highest process RSS while they ran: " + ", ".join(
            f"{k} {v:.2f} GB" for k, v in list(s.get("peak_rss_by_step_gb", {}).items())[:5]))
        print(f"\n{s['scale']}: ten slowest steps (of {len(s['steps_s'])})\n")
        print("| step | seconds | share of run |")
        print("|---|---|---|")
        for key, secs in list(s["steps_s"].items())[:SLOWEST]:
            print(f"| {key} | {secs:.1f} | {secs / s['wall_s'] * 100:.0f} % |")
    for a, b in itertools.pairwise(summaries):
        print(f"\n{a['scale']} → {b['scale']}: time exponent of the ten slowest steps at {b['scale']} "
              f"(rows × {b['landing_rows'] / a['landing_rows']:.1f}; target ≤ ~1, flagged above {STEP_EXPONENT_SLACK})\n")
        print(f"| step | {a['scale']} s | {b['scale']} s | exponent | |")
        print("|---|---|---|---|---|")
        b["step_exponents_vs_previous"] = {}
        for key, secs in list(b["steps_s"].items())[:SLOWEST]:
            before = a["steps_s"].get(key)
            exp = exponent(before, secs, a["landing_rows"], b["landing_rows"]) if before else None
            b["step_exponents_vs_previous"][key] = exp
            flag = "" if exp is None else ("ok" if exp <= STEP_EXPONENT_SLACK else "MISSED")
            print(f"| {key} | {before if before is not None else '-'} | {secs:.1f} | {_fmt_exp(exp)} | {flag} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", default=["small", "default"], choices=["small", "default", "large", "xlarge"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--end-date", default="2026-11-30")
    parser.add_argument("--checks-as-of", default=None, help="MARKETING_CHECKS_AS_OF for the runs (default: the day after --end-date)")
    args = parser.parse_args()
    import datetime as dt

    as_of = args.checks_as_of or (dt.date.fromisoformat(args.end_date) + dt.timedelta(days=1)).isoformat()
    limit_gb = duckdb_limit_gb()
    load_before = machine()["load_average"]
    results, summaries = {}, []
    for scale in args.scales:
        work = args.work / scale
        work.mkdir(parents=True, exist_ok=True)
        print(f"{scale}: {work}", flush=True)
        generated = ensure_landing(work, scale, args.end_date)
        manifest = json.loads((work / "landing" / "_truth" / "manifest.json").read_text())
        rows = sum(manifest["files"].values())
        runs = []
        for i in range(args.runs):
            r = run_graph(work, as_of)
            print(f"  run {i + 1}: {r['wall_s']:.0f} s, peak RSS {r['peak_rss_tree_gb']:.2f} GB, exit {r['exit']}; {r['checks']}",
                  flush=True)
            runs.append(r)
        results[scale] = {"landing_rows": rows, "generate": generated, "runs": runs}
        summaries.append(summarize(scale, rows, runs, limit_gb))
    report(summaries, limit_gb, load_before, args.runs)
    out = args.work / "scale_benchmark.json"
    out.write_text(json.dumps({"machine": machine(), "load_average_before": load_before, "duckdb_memory_limit_gb": limit_gb,
                               "targets": TARGETS, "scales": results, "summary": summaries}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
