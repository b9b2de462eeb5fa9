"""One tally of asset-check outcomes for the run summary, the data-quality report and its HTML page. No Dagster import.

Statuses: ``passed``, ``warned`` (failed at WARN severity), ``failed`` (failed at ERROR severity) and
``skipped``: the check did not execute in the run (its asset or an upstream blocking check failed, so
it produced no evaluation), or it executed and said it skipped (``skipped`` in its metadata, e.g. an
optional source was absent). Each check counts once, keyed by (asset key, check name): an evaluation
beats a planned check without one, and the latest evaluation wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

STATUSES = ("passed", "warned", "failed", "skipped")
# Checks of the data-quality report itself are evaluated after the report is written, so no tally can include them.
SCOPE = (
    "every asset check planned in the run, counted once with its latest result, except the checks of "
    "data_quality_report and data_quality_html, which run after the report is written"
)


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """One check of a run: ``passed`` is None when it was planned but produced no evaluation."""

    asset_key: str
    check_name: str
    passed: bool | None
    severity: str = "ERROR"  # ERROR or WARN
    skipped: bool = False  # evaluated, and said it skipped
    order: float = 0.0  # evaluation time (or sequence number): the latest evaluation of a check wins
    blocking: bool = False
    description: str = ""
    ref: Any = dataclasses.field(default=None, compare=False)  # the caller's handle on the source (e.g. a row label)

    @property
    def key(self) -> tuple[str, str]:
        return self.asset_key, self.check_name

    @property
    def status(self) -> str:
        if self.passed is None or self.skipped:
            return "skipped"
        if self.passed:
            return "passed"
        return "warned" if str(self.severity).upper() == "WARN" else "failed"


@dataclasses.dataclass(frozen=True)
class CheckTally:
    """Counts per status over deduplicated checks, and those checks (sorted by asset key and check name)."""

    checks: tuple[CheckOutcome, ...]

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def counts(self) -> dict[str, int]:
        return {s: self.count(s) for s in STATUSES}

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.status == "failed" and c.blocking]

    def text(self) -> str:
        return ", ".join(f"{n} {s}" for s, n in self.counts.items())

    def __len__(self) -> int:
        return len(self.checks)


def latest_outcomes(outcomes: Iterable[CheckOutcome]) -> list[CheckOutcome]:
    """One outcome per (asset key, check name): an evaluation beats none; among evaluations the highest
    ``order`` wins, and on a tie the one listed later."""
    best: dict[tuple[str, str], CheckOutcome] = {}
    for o in outcomes:
        held = best.get(o.key)
        if held is None or (o.passed is not None and (held.passed is None or o.order >= held.order)):
            best[o.key] = o
    return [best[k] for k in sorted(best)]


def tally(outcomes: Iterable[CheckOutcome]) -> CheckTally:
    """The tally of ``outcomes``: each check once (see :func:`latest_outcomes`), four statuses."""
    return CheckTally(tuple(latest_outcomes(outcomes)))


def _order(value: Any) -> float:
    ts = pd.to_datetime(value, errors="coerce", utc=True)
    return float("-inf") if pd.isna(ts) else ts.timestamp()


def outcomes_from_rows(rows: pd.DataFrame) -> list[CheckOutcome]:
    """Outcomes from status rows (``asset_key``, ``check_name``, ``status``, optional ``severity``, ``blocking``,
    ``evaluated_at``, ``description``), e.g. the ``data_quality_report`` extract's check rows. Rows with a
    status outside :data:`STATUSES` (a check not counted in the tally) are left out."""
    out = []
    for rec in rows.to_dict("records"):
        status = str(rec.get("status")).lower()
        if status not in STATUSES:
            continue
        evaluated = _order(rec.get("evaluated_at"))
        out.append(
            CheckOutcome(
                asset_key=str(rec.get("asset_key")),
                check_name=str(rec.get("check_name")),
                passed=(None if evaluated == float("-inf") else True) if status == "skipped" else status == "passed",
                severity="WARN" if status == "warned" else "ERROR",
                skipped=status == "skipped",
                order=evaluated,
                blocking=bool(rec.get("blocking")) if not pd.isna(rec.get("blocking", False)) else False,
                description=str(rec.get("description") or ""),
                ref=rec.get("_row", rec.get("index")),
            )
        )
    return out


def metadata(t: CheckTally) -> Mapping[str, Any]:
    """The tally as flat, JSON-able metadata (``checks_passed`` … ``checks_skipped``, ``checks``, ``tally_scope``)."""
    return {**{f"checks_{s}": n for s, n in t.counts.items()}, "checks": len(t), "tally_scope": SCOPE}
