"""The stakeholder pages and the statuses of checks the data-quality page lists without counting them.

No imports: the report assets, the checks of the pages and the run summary all read these names.
"""

# Report asset -> its file under MARKETING_REPORTS_DIR.
REPORT_FILES = {"executive_report": "executive.html", "marketing_roi_report": "marketing_roi.html", "data_quality_html": "data_quality.html"}

# Statuses of check rows outside the run's check tally, and what they mean.
NOT_COUNTED = {
    "pending": "evaluated after this report is written (see the run summary or the asset's checks)",
    "not_in_run": "not part of this run",
}
