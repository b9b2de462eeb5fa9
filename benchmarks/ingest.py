"""Ingestion throughput: stage an N-row web-sessions CSV through the contract and quarantine rules.

    .venv/bin/python benchmarks/ingest.py --rows 10000000

Prints rows/s and peak RSS. The file is written by DuckDB itself (0.1% of rows made bad), so the
benchmark measures ingestion, not data generation.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import duckdb

from marketing_assets.lib.landing import contract_from_model, ingest_table
from marketing_assets.schemas import WebSessions


def write_sessions(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.execute(
        f"""COPY (
            SELECT 's' || i AS session_id, 'cid' || (i % 1000003) AS client_id,
                   CASE WHEN i % 1000 = 7 THEN 'not a date'
                        ELSE strftime(TIMESTAMP '2024-01-01' + INTERVAL (i % 86400000) SECOND, '%Y-%m-%dT%H:%M:%SZ') END AS session_start,
                   '/p/' || (i % 50) AS landing_page, NULL AS page_referrer,
                   CASE i % 4 WHEN 0 THEN 'google' WHEN 1 THEN 'Facebook' WHEN 2 THEN NULL ELSE 'newsletter' END AS utm_source,
                   CASE i % 4 WHEN 0 THEN 'cpc' WHEN 1 THEN 'paid_social' WHEN 2 THEN NULL ELSE 'email' END AS utm_medium,
                   'campaign_' || (i % 40) AS utm_campaign, NULL AS utm_content, NULL AS utm_term,
                   CASE WHEN i % 9 = 0 THEN 'gclid' || i END AS gclid, NULL AS fbclid,
                   'desktop' AS device_category, 'US' AS country,
                   CASE WHEN i % 1000 = 500 THEN -1 ELSE i % 12 END AS pageviews,
                   (i % 300) * 1.5 AS engagement_time_seconds, i % 2 AS conversions,
                   NULL AS form_email
            FROM range({rows}) t(i)
        ) TO '{path}' (HEADER, DELIMITER ',')"""
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "landing"
        t0 = time.perf_counter()
        write_sessions(root / "web" / "sessions.csv", args.rows)
        size_mb = (root / "web" / "sessions.csv").stat().st_size / 1e6
        print(f"wrote {args.rows:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - t0:.1f}s")
        con = duckdb.connect(str(Path(tmp) / "wh.duckdb"))
        con.execute("SET TimeZone='UTC'")
        t0 = time.perf_counter()
        result = ingest_table(con, contract_from_model("web_sessions", WebSessions), root, "sources", "_rejected_web_sessions")
        secs = time.perf_counter() - t0
        print(
            f"ingested {result.rows_read:,} rows in {secs:.1f}s ({result.rows_read / secs:,.0f} rows/s): "
            f"{result.rows_staged:,} staged, {result.rows_quarantined:,} quarantined {result.quarantine_by_reason}"
        )
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
