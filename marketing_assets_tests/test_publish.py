"""Pseudonyms, PII scanning and atomic extract files."""

import hashlib
import hmac
import random
import time
import uuid

import pandas as pd
import pytest

from marketing_assets.lib.publish import PseudonymKeyMissing, _looks_like_phone, find_pii, pseudonymise, resolve_key, write_extract


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


def test_pii_scan_finds_no_phone_in_100k_random_uuids_quickly():
    rng = random.Random(20261204)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(100_000)]
    frame = pd.DataFrame({"run_id": ids, "run_id_upper": [i.upper() for i in ids], "in_text": [f"run {i} finished" for i in ids]})
    start = time.perf_counter()
    assert find_pii(frame) == {}
    assert time.perf_counter() - start < 5.0
    # the id the scan used to flag (digit groups 8751-4850-9154 read as a phone number)
    assert not _looks_like_phone("2876cebc-8751-4850-9154-efce22db7050")


def test_pii_scan_ignores_hashes_pseudonyms_dates_and_numbers():
    rng = random.Random(7)
    blobs = [rng.randbytes(24) for _ in range(3_000)]
    hashes = [h(b).hexdigest() for b in blobs for h in (hashlib.md5, hashlib.sha1, hashlib.sha256)]
    frame = pd.DataFrame(
        {
            "hash": hashes,
            "hash_upper": [h.upper() for h in hashes],
            "pseudonym": pseudonymise(pd.Series(range(len(hashes))), b"k", prefix="c_"),
            "pseudonym_bare": pseudonymise(pd.Series(range(len(hashes))), b"k"),
        }
    )
    assert find_pii(frame) == {}
    identifiers = [
        "2026-11-23T10:00:00+00:00", "2026-11-23 10:00:00.123456", "2026-11-23 15:40 UTC", "2025-07 2025-08 2025-09 2025-10",
        "12345678901.23", "-98765432109", "1.2345678901e+20", "0.000000001", "campaign 23851190012", "4155550100",
        "CUST-0000001-2026-11", "run 2876cebc-8751-4850-9154-efce22db7050 at 2026-11-23T10:00:00Z",
    ]
    assert find_pii(pd.DataFrame({"text": identifiers})) == {}


@pytest.mark.parametrize(
    "value",
    [
        "+1 415 555 0100", "(415) 555-0100", "+44 20 7946 0958", "415-555-0100", "call 415-555-0100.", "+14155550100",
        "020 7946 0958", "run 2876cebc-8751-4850-9154-efce22db7050, call +1 415 555 0100",
        "jane.doe@acme.com", "J.Doe+news@Example.co.uk", "owner: ops@marketing-assets.io (2026-11-23)",
    ],
)
def test_pii_scan_finds_real_phones_and_emails(value):
    found = find_pii(pd.DataFrame({"text": ["ok", value, "2876cebc-8751-4850-9154-efce22db7050"]}))
    assert list(found) == ["text"] and len(found["text"]) == 1
    assert value[:2] + "***" == found["text"][0]
