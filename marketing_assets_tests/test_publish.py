"""Pseudonyms, PII scanning and atomic extract files."""

import hashlib
import hmac

import pandas as pd
import pytest

from marketing_assets.lib.publish import PseudonymKeyMissing, find_pii, pseudonymise, resolve_key, write_extract


def test_pseudonyms_are_keyed_stable_and_null_safe():
    ids = pd.Series(["C1", "C2", "C1", None])
    a = pseudonymise(ids, b"secret", prefix="c_")
    assert a[0] == a[2] != a[1] and a[3] is None
    assert a[0] == "c_" + hmac.new(b"secret", b"C1", hashlib.sha256).hexdigest()[:16]
    assert pseudonymise(ids, b"other")[0] != a[0].removeprefix("c_")


def test_key_is_required_outside_demo_mode():
    with pytest.raises(PseudonymKeyMissing, match="MARKETING_PSEUDONYM_KEY"):
        resolve_key(None, demo_mode=False)
    assert resolve_key("k", demo_mode=False) == b"k"
    assert resolve_key(None, demo_mode=True)


def test_pii_scan_finds_emails_and_phones_but_not_ids_or_amounts():
    frame = pd.DataFrame(
        {
            "note": ["call +44 20 7946 0958", "ok", None],
            "who": ["jane.doe@acme.com", "c_1a2b3c", "x"],
            "amount": [12345678.9, 1.0, 2.0],
            "amount_text": ["12345678901.23", "-98765432109", "0.000000001"],
            "id": ["CUST-0000001", "2026-11-23", "A0000474"],
            "when": ["2026-11-23T10:00:00", "2026-11-23 10:00", None],
        }
    )
    found = find_pii(frame)
    assert set(found) == {"note", "who"}
    assert find_pii(pd.DataFrame({"phone": ["(555) 123-4567", "020 7946 0958"]})) == {"phone": ["(5***", "02***"]}
    assert all("@" not in s for s in found["who"])


def test_extract_files_round_trip_and_leave_no_temp_files(tmp_path):
    frame = pd.DataFrame({"month": pd.to_datetime(["2026-01-01", "2026-02-01"]), "revenue": [10.5, 20.25], "channel": ["Email", None]})
    paths = write_extract(frame, "executive_kpis", tmp_path)
    back = pd.read_parquet(paths["parquet"])
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    csv = pd.read_csv(paths["csv"], parse_dates=["month"])
    assert csv["revenue"].tolist() == [10.5, 20.25]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["executive_kpis.csv", "executive_kpis.parquet"]
    assert paths["csv"].stat().st_mode & 0o044  # readable by a BI tool running as another user
