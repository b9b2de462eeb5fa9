"""marketing_assets: marketing spend to pipeline and revenue, as a governed Dagster asset graph."""

__version__ = "0.1.0"
