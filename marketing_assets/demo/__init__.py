"""Synthetic, internally consistent demo data for the marketing_assets pipeline.

``generate(out_dir, scale="default", seed=42, end_date=None)`` writes a full landing zone (ad platforms, web
analytics, CRM, ERP, finance, experiments) plus the planted ground truth under ``out_dir/_truth/`` and returns
the manifest. Run ``python -m marketing_assets.demo generate --help`` for the command line.
"""

from .api import generate

__all__ = ["generate"]
