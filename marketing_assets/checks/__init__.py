"""Asset checks by layer; `all_checks` is what `definitions.py` registers."""

from marketing_assets.checks.attribution import attribution_checks
from marketing_assets.checks.extracts import build_covers_every_check, extract_checks
from marketing_assets.checks.identity import identity_checks
from marketing_assets.checks.kpi_bases import kpi_base_checks
from marketing_assets.checks.mmm import mmm_checks
from marketing_assets.checks.monitoring import monitoring_checks
from marketing_assets.checks.sources import quarantine_checks, source_checks
from marketing_assets.checks.spend import spend_checks
from marketing_assets.checks.touchpoints import touchpoint_checks

all_checks = [*source_checks, *quarantine_checks, *spend_checks, *identity_checks, *touchpoint_checks, *attribution_checks, *mmm_checks, *kpi_base_checks, *extract_checks, *monitoring_checks]
# The data-quality report must list every check, this one included: built over the list it completes.
data_quality_covers_every_check = build_covers_every_check(all_checks)
all_checks.append(data_quality_covers_every_check)

__all__ = ["all_checks", "attribution_checks", "data_quality_covers_every_check", "extract_checks", "identity_checks", "kpi_base_checks", "mmm_checks", "monitoring_checks", "quarantine_checks", "source_checks", "spend_checks", "touchpoint_checks"]
