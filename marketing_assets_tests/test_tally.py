"""The one check tally: statuses, deduplication, skipped as its own status, and the same numbers from report rows."""

import pandas as pd
import pytest

from marketing_assets.lib.tally import STATUSES, CheckOutcome, latest_outcomes, outcomes_from_rows, tally


def outcome(asset, name, passed, severity="ERROR", order=0.0, **kw):
    return CheckOutcome(asset, name, passed, severity=severity, order=order, **kw)


@pytest.mark.parametrize(
    ("o", "status"),
    [
        (outcome("a", "c", True), "passed"),
        (outcome("a", "c", False, "ERROR"), "failed"),
        (outcome("a", "c", False, "WARN"), "warned"),
        (outcome("a", "c", True, "WARN"), "passed"),
        (outcome("a", "c", None), "skipped"),  # planned, never evaluated
        (outcome("a", "c", True, skipped=True), "skipped"),  # evaluated and said it skipped
    ],
)
def test_status(o, status):
    assert o.status == status


def test_duplicates_count_once_and_the_latest_evaluation_wins():
    outcomes = [
        outcome("sources/erp_orders", "contract", False, order=1.0),
        outcome("sources/erp_orders", "contract", True, order=2.0),  # re-evaluated later: passed
        outcome("sources/ads_meta", "freshness", False, "WARN", order=5.0),
        outcome("sources/ads_meta", "freshness", True, order=3.0),  # older: loses
        outcome("mmm/mmm_model", "lift", None, order=9.0),  # planned only
        outcome("mmm/mmm_model", "lift", False, "WARN", order=1.0),  # any evaluation beats none
        outcome("extracts/funnel", "reconciles", None),
        outcome("extracts/funnel", "reconciles", None),
    ]
    t = tally(outcomes)
    assert t.counts == {"passed": 1, "warned": 2, "failed": 0, "skipped": 1}
    assert len(t) == 4 and [c.key for c in t.checks] == sorted({o.key for o in outcomes})
    assert t.text() == "1 passed, 2 warned, 0 failed, 1 skipped"


def test_warn_versus_error_and_blocking_failures():
    t = tally([
        outcome("a", "x", False, "ERROR", blocking=True),
        outcome("a", "y", False, "ERROR", blocking=False),
        outcome("a", "z", False, "WARN", blocking=True),
    ])
    assert t.counts == {"passed": 0, "warned": 1, "failed": 2, "skipped": 0}
    assert [c.check_name for c in t.blocking_failures] == ["x"]


def test_same_order_keeps_the_later_listed_evaluation():
    first, second = outcome("a", "x", True, order=1.0), outcome("a", "x", False, order=1.0)
    assert latest_outcomes([first, second]) == [second]


def test_report_rows_give_the_same_tally_and_leave_uncounted_statuses_out():
    evaluated = [
        outcome("sources/erp_orders", "contract", False, blocking=True, order=pd.Timestamp("2026-11-23 10:00", tz="UTC").timestamp()),
        outcome("sources/ads_meta", "freshness", False, "WARN", order=pd.Timestamp("2026-11-23 10:01", tz="UTC").timestamp()),
        outcome("mmm/mmm_model", "lift", True, skipped=True, order=pd.Timestamp("2026-11-23 10:02", tz="UTC").timestamp()),
        outcome("extracts/funnel", "reconciles", None),
        outcome("extracts/funnel", "published_columns", True, order=pd.Timestamp("2026-11-23 10:03", tz="UTC").timestamp()),
    ]
    expected = tally(evaluated)
    rows = pd.DataFrame(
        [
            {"asset_key": o.asset_key, "check_name": o.check_name, "status": o.status, "blocking": o.blocking,
             "evaluated_at": pd.Timestamp(o.order, unit="s") if o.passed is not None else pd.NaT}
            for o in evaluated
        ]
        + [
            {"asset_key": "extracts/data_quality_report", "check_name": "covers_every_check", "status": "pending", "blocking": True, "evaluated_at": pd.NaT},
            {"asset_key": "sources/erp_orders", "check_name": "contract", "status": "failed", "blocking": True,
             "evaluated_at": pd.Timestamp("2026-11-23 09:00")},  # duplicate, older
        ]
    )
    from_rows = tally(outcomes_from_rows(rows))
    assert from_rows.counts == expected.counts == {"passed": 1, "warned": 1, "failed": 1, "skipped": 2}
    assert [c.key for c in from_rows.checks] == [c.key for c in expected.checks]
    assert [c.check_name for c in from_rows.blocking_failures] == ["contract"]
    assert set(STATUSES) == {"passed", "warned", "failed", "skipped"}
