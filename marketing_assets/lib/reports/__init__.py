"""Self-contained HTML stakeholder reports: executive, marketing ROI and data quality. No Dagster import.

Three layers, each in its own place:

* views (:mod:`.executive`, :mod:`.marketing_roi` with :mod:`.cohorts` and :mod:`.mmm`, :mod:`.data_quality`; shared
  helpers in :mod:`.common`) take the extracts and the KPI dictionary and return a :class:`~.blocks.Page` of plain data (tiles, tables, chart series,
  captions). They reshape (filter, pivot, sort, pick the latest month) but compute no KPI: every figure is an
  extract's column, and sums over periods or members go through :func:`.common.additive_total`, which accepts only
  KPIs whose dictionary formula adds up. ``marketing_assets_tests/test_report_views.py`` enforces this.
* copy (:mod:`.text`): titles, how-to-read notes, captions, the glossary;
* templates and stylesheet (``marketing_assets/templates/*.html.j2``, ``report.css``, package data) lay the page out
  (:mod:`.render`); charts are inline SVG (:mod:`marketing_assets.lib.svg`); no scripts, fonts or network.

``write_report`` writes a page through staging and audits, then moves it into place atomically.
Missing or empty frames render a "not available" note instead of failing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from marketing_assets.lib.publish import Audit, write_audit_publish
from marketing_assets.lib.reports.data_quality import data_quality_page
from marketing_assets.lib.reports.executive import executive_page
from marketing_assets.lib.reports.formatting import fmt_value
from marketing_assets.lib.reports.marketing_roi import marketing_roi_page
from marketing_assets.lib.reports.render import render_page
from marketing_assets.lib.reports.text import marketing_terms

__all__ = ["fmt_value", "marketing_terms", "render_data_quality", "render_executive", "render_marketing_roi", "write_report"]


def render_executive(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", top_products: int = 10) -> str:
    """Executive summary: headline KPI tiles, revenue trend, revenue by product and channel, spend vs
    revenue, funnel, pipeline forecast and KPI definitions."""
    return render_page(executive_page(data, fresh_to=fresh_to, generated_at=generated_at, currency=currency, top_products=top_products))


def render_marketing_roi(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any, currency: str = "USD", model: str | None = None,
                         terms: Mapping[str, str] | None = None) -> str:
    """Marketing ROI: channel performance, attribution model comparison, recommendations, funnel, cohort LTV, MMM
    decomposition and budget plan, and definitions (``terms``: the glossary, see :func:`.text.marketing_terms`)."""
    return render_page(marketing_roi_page(data, fresh_to=fresh_to, generated_at=generated_at, currency=currency, model=model, terms=terms))


def render_data_quality(data: Mapping[str, pd.DataFrame], *, fresh_to: Any, generated_at: Any) -> str:
    """Data quality: pass/warn/fail counts, problems first, all checks by asset, freshness, identity match rates."""
    return render_page(data_quality_page(data, fresh_to=fresh_to, generated_at=generated_at))


def write_report(html_text: str, path: str | os.PathLike, audits: Sequence[Audit] = ()) -> Path:
    """Write-audit-publish one page: written (and fsynced) under ``.staging/`` next to ``path``, checked with
    ``audits`` (e.g. :func:`~marketing_assets.lib.publish.audit_report_html`), then moved into place with
    ``os.replace``; mode 0644. A failed audit raises :class:`~marketing_assets.lib.publish.AuditFailed` and
    leaves the published page as it was."""
    target = Path(path)

    def write(staged: Path) -> None:
        with open(staged, "w", encoding="utf-8") as fh:
            fh.write(html_text)
            fh.flush()
            os.fsync(fh.fileno())

    with write_audit_publish({"html": target}, {"html": write}, audits, what=f"report {target.name}") as staged:
        os.chmod(staged["html"], 0o644)
    return target
