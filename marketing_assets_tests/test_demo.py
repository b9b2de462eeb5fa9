"""Tests of the synthetic demo-data generator (``marketing_assets.demo``) at small scale."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from marketing_assets.demo import generate
from marketing_assets.schemas import SOURCE_MODELS

END_DATE = "2025-11-19"
SEED = 7

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


# ----------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Rule:
    kind: str
    key: bool
    nullable: bool
    ge: float | None
    isin: tuple | None
    names: tuple[str, ...]
    required: bool


def contract(table_name: str) -> dict[str, Rule]:
    """Column rules of one source contract, read from ``schemas.py``."""
    schema = SOURCE_MODELS[table_name].to_schema()
    rules = {}
    for name, col in schema.columns.items():
        if name in ("source_file", "source_line"):
            continue
        meta = col.metadata or {}
        dtype = str(col.dtype).lower()
        if "datetime" in dtype:
            kind = "date" if meta.get("sql_type") == "DATE" else "timestamp"
        elif "int" in dtype:
            kind = "int"
        elif "float" in dtype:
            kind = "decimal"
        elif "bool" in dtype:
            kind = "bool"
        else:
            kind = "str"
        ge = isin = None
        for check in col.checks:
            if check.name == "greater_than_or_equal_to":
                ge = check.statistics["min_value"]
            if check.name == "isin":
                isin = tuple(check.statistics["allowed_values"])
        rules[name] = Rule(kind, bool(meta.get("key")), bool(col.nullable), ge, isin,
                           tuple(n.lower() for n in [name, *meta.get("aliases", [])]), bool(meta.get("required")))
    return rules


def landing_glob(table_name: str) -> str:
    return SOURCE_MODELS[table_name].Config.metadata["landing_glob"]


def files_of(root: Path, table_name: str) -> list[Path]:
    return sorted(p for p in root.glob(landing_glob(table_name)) if p.is_file())


def parses(kind: str, value: str) -> bool:
    if kind == "str":
        return True
    if kind == "int":
        return bool(_INT.match(value))
    if kind == "decimal":
        return bool(_DEC.match(value))
    if kind == "bool":
        return value.lower() in ("true", "false")
    if kind == "date":
        if not _DATE.match(value):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if not _TS.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows; asserts one physical line per record."""
    text = path.read_text(encoding="utf-8")
    assert not text.startswith("\ufeff")
    lines = text.split("\n")
    assert lines[-1] == ""
    rows = list(csv.reader(lines[:-1]))
    return rows[0], rows[1:]


def column_map(header: list[str], rules: dict[str, Rule]) -> dict[str, int]:
    """Contract field -> header position (case-insensitive, aliases accepted)."""
    lower = [h.lower() for h in header]
    out = {}
    for name, rule in rules.items():
        for alias in rule.names:
            if alias in lower:
                out[name] = lower.index(alias)
                break
    return out


def validate_table(root: Path, table_name: str):
    """Apply the quarantine rules; return ({(file, line): [(column, reason)]}, {(file, line): dup_of_line})."""
    rules = contract(table_name)
    keys = [n for n, r in rules.items() if r.key]
    violations: dict[tuple, list] = defaultdict(list)
    exact: dict[tuple, int] = {}
    seen: dict[tuple, tuple] = {}
    for path in files_of(root, table_name):
        if path.suffix == ".parquet":
            continue
        rel = path.relative_to(root).as_posix()
        header, rows = read_rows(path)
        cmap = column_map(header, rules)
        for i, row in enumerate(rows):
            line = i + 2
            found = []
            for name, rule in rules.items():
                if name not in cmap:
                    continue
                value = row[cmap[name]]
                if value == "":
                    if rule.key:
                        found.append((name, "null_key"))
                    elif not rule.nullable:
                        found.append((name, "null_required_value"))
                    continue
                if not parses(rule.kind, value):
                    found.append((name, "unparseable_value"))
                    continue
                if rule.ge is not None and rule.kind in ("int", "decimal") and Decimal(value) < rule.ge:
                    found.append((name, "negative_value"))
                if rule.isin is not None and value not in rule.isin:
                    found.append((name, "invalid_value"))
            if found:
                violations[(rel, line)] += found
                continue
            key = tuple(row[cmap[k]] for k in keys)
            if key in seen:
                first_rel, first_line, content = seen[key]
                if content == tuple(row) and first_rel == rel:
                    exact[(rel, line)] = first_line
                else:
                    violations[(rel, line)].append((keys[0], "conflicting_duplicate_key"))
            else:
                seen[key] = (rel, line, tuple(row))
    return violations, exact


def read_truth_csv(root: Path, name: str) -> list[dict]:
    with (root / "_truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def good_rows(root: Path, table_name: str, bad: set, dups: set) -> list[dict]:
    """Rows of a table keyed by contract field, without planted bad rows and exact duplicates."""
    rules = contract(table_name)
    out = []
    for path in files_of(root, table_name):
        rel = path.relative_to(root).as_posix()
        header, rows = read_rows(path)
        cmap = column_map(header, rules)
        for i, row in enumerate(rows):
            if (rel, i + 2) in bad or (rel, i + 2) in dups:
                continue
            out.append({name: row[pos] for name, pos in cmap.items()})
    return out


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"


def digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_small")
    generate(root, scale="small", seed=SEED, end_date=END_DATE)
    return root


@pytest.fixture(scope="module")
def manifest(landing) -> dict:
    return json.loads((landing / "_truth" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def planted(landing):
    bad = read_truth_csv(landing, "bad_rows.csv")
    dups = read_truth_csv(landing, "exact_duplicates.csv")
    return bad, dups


@pytest.fixture(scope="module")
def excluded(planted):
    bad, dups = planted
    return ({(r["source_file"], int(r["source_line"])) for r in bad},
            {(r["source_file"], int(r["source_line"])) for r in dups})


# ----------------------------------------------------------------------------------------- tests


def test_deterministic_and_seed_sensitive(landing, tmp_path):
    same, other = tmp_path / "same", tmp_path / "other"
    generate(same, scale="small", seed=SEED, end_date=END_DATE)
    assert digest(same) == digest(landing)
    generate(other, scale="small", seed=SEED + 1, end_date=END_DATE)
    a, b = digest(other), digest(landing)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in ("crm/contacts.csv", "web/sessions.csv", "erp/orders.csv"))


def test_every_contract_table_written_with_required_columns(landing):
    for table_name in SOURCE_MODELS:
        paths = files_of(landing, table_name)
        assert paths, f"no landing file for {table_name}"
        rules = contract(table_name)
        for path in paths:
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                header = pq.read_schema(path).names
            else:
                header = read_rows(path)[0]
            cmap = column_map(header, rules)
            missing = [n for n, r in rules.items() if r.required and n not in cmap]
            assert not missing, f"{path}: missing {missing}"
            if table_name not in ("ads_google", "ads_meta", "ads_linkedin"):
                assert [h for h in header] == list(rules), f"{path}: header should be exactly the contract fields"


def test_bad_rows_point_at_real_defects(landing, planted):
    bad, _ = planted
    assert bad
    cache: dict[str, tuple] = {}
    for r in bad:
        table = r["table_name"]
        assert table in SOURCE_MODELS
        rules = contract(table)
        path = landing / r["source_file"]
        if r["source_file"] not in cache:
            cache[r["source_file"]] = read_rows(path)
        header, rows = cache[r["source_file"]]
        cmap = column_map(header, rules)
        line = int(r["source_line"])
        row = rows[line - 2]
        col = r["column_name"]
        assert col in rules
        value = row[cmap[col]]
        reason = r["reason"]
        if reason in ("null_key", "null_required_value"):
            assert value == ""
            assert rules[col].key == (reason == "null_key")
        elif reason == "unparseable_value":
            assert value != "" and not parses(rules[col].kind, value)
        elif reason == "negative_value":
            assert Decimal(value) < 0 and rules[col].ge == 0
        elif reason == "conflicting_duplicate_key":
            keys = [n for n, rule in rules.items() if rule.key]
            key = tuple(row[cmap[k]] for k in keys)
            earlier = [x for x in rows[: line - 2] if tuple(x[cmap[k]] for k in keys) == key]
            assert earlier and all(x != row for x in earlier)
        else:
            pytest.fail(f"unexpected reason {reason}")


def test_quarantine_rules_flag_exactly_the_planted_rows(landing, planted):
    bad, dups = planted
    expected = {(r["source_file"], int(r["source_line"])): (r["column_name"], r["reason"]) for r in bad}
    expected_dups = {(r["source_file"], int(r["source_line"])): int(r["duplicate_of_line"]) for r in dups}
    found_all, dups_all = {}, {}
    for table_name in SOURCE_MODELS:
        violations, exact = validate_table(landing, table_name)
        for where, items in violations.items():
            assert len(items) == 1, f"{where} has {len(items)} violations: {items}"
            found_all[where] = items[0]
        dups_all.update(exact)
    assert found_all == expected
    assert dups_all == expected_dups


def test_bad_row_share_is_about_a_tenth_of_a_percent(manifest, planted):
    bad, _ = planted
    planted_tables = {"ads_google", "ads_meta", "ads_linkedin", "web_sessions", "crm_contacts",
                      "crm_marketing_touchpoints", "crm_sales_touchpoints", "crm_opportunities", "erp_orders",
                      "finance_marketing_spend"}
    assert {r["table_name"] for r in bad} == planted_tables
    rows = sum(manifest["rows_per_table"][t] for t in planted_tables)
    assert 0.0005 <= len(bad) / rows <= 0.003
    assert {r["reason"] for r in bad} == {"unparseable_value", "negative_value", "null_key", "null_required_value",
                                          "conflicting_duplicate_key"}


def test_duplicate_contacts_truth(landing, excluded):
    contacts = {r["contact_id"]: r for r in good_rows(landing, "crm_contacts", *excluded)}
    truth = read_truth_csv(landing, "duplicate_contacts.csv")
    assert {t["contact_id"] for t in truth} == set(contacts)
    dupes = [t for t in truth if t["contact_id"] != t["canonical_contact_id"]]
    assert 0.015 <= len(dupes) / len(truth) <= 0.08
    assert {t["variant_kind"] for t in dupes} >= {"case", "whitespace", "plus_tag"}
    for t in dupes:
        c, k = contacts[t["contact_id"]], contacts[t["canonical_contact_id"]]
        assert c["account_id"] == k["account_id"]
        assert normalise_email(c["email"]) == normalise_email(k["email"])
        assert c["email"] != k["email"]
        assert t["canonical_contact_id"] < t["contact_id"]
    canon = [normalise_email(contacts[t["contact_id"]]["email"]) for t in truth if t["variant_kind"] == "canonical"]
    assert len(canon) == len(set(canon))


def test_account_matches_reference_existing_ids(landing, excluded):
    accounts = {r["account_id"]: r for r in good_rows(landing, "crm_accounts", *excluded)}
    customers = {r["customer_id"]: r for r in good_rows(landing, "erp_customers", *excluded)}
    opps = good_rows(landing, "crm_opportunities", *excluded)
    matches = read_truth_csv(landing, "account_matches.csv")
    assert matches
    won_accounts = {o["account_id"] for o in opps if o["is_won"] == "true"}
    assert won_accounts <= {m["account_id"] for m in matches}
    for m in matches:
        assert m["account_id"] in accounts and m["customer_id"] in customers
        site = customers[m["customer_id"]]["website"]
        if m["match_kind"].startswith("domain"):
            bare = re.sub(r"^(https?://)?(www\.)?", "", site).rstrip("/")
            assert bare == accounts[m["account_id"]]["domain"]
        else:
            assert m["match_kind"] == "name" and site == ""
    assert len({m["customer_id"] for m in matches}) == len(matches)


def _platform_month_usd(landing: Path, excluded) -> dict[tuple, float]:
    fx = json.loads((landing / "_truth" / "manifest.json").read_text())["fx_to_usd"]
    out: dict[tuple, float] = defaultdict(float)
    for r in good_rows(landing, "ads_google", *excluded):
        out[(r["segments_date"][:7], "google")] += int(r["metrics_cost_micros"]) / 1e6
    for r in good_rows(landing, "ads_meta", *excluded):
        out[(r["date_start"][:7], "meta")] += float(r["amount_spent"]) * fx[r["account_currency"]]
    for r in good_rows(landing, "ads_linkedin", *excluded):
        out[(r["start_date"][:7], "linkedin")] += float(r["cost_in_local_currency"]) * fx[r["currency"]]
    return out


def test_finance_matches_platform_spend_except_planted_month(landing, excluded):
    platform = _platform_month_usd(landing, excluded)
    vendor_platform = {"Google Ads": "google", "Meta Platforms": "meta", "LinkedIn": "linkedin"}
    finance: dict[tuple, float] = defaultdict(float)
    for r in good_rows(landing, "finance_marketing_spend", *excluded):
        if r["vendor"] in vendor_platform:
            finance[(r["period_month"][:7], vendor_platform[r["vendor"]])] += float(r["amount"])
    planted = json.loads((landing / "_truth" / "discrepancies.json").read_text())["finance_missing_platform_spend"]
    planted_key = (planted["period_month"][:7], planted["platform"])
    mismatched = {k for k in platform if abs(platform[k] - finance.get(k, 0.0)) > 0.05}
    assert mismatched == {planted_key}
    assert platform[planted_key] == pytest.approx(planted["platform_spend_usd"], abs=0.05)


def test_weekly_erp_net_revenue_equals_truth(landing, excluded):
    weekly = read_truth_csv(landing, "mmm_weekly.csv")
    assert len(weekly) == 156
    start = dt.date.fromisoformat(weekly[0]["week_start"])
    assert start.weekday() == 0
    net: dict[int, Decimal] = defaultdict(Decimal)
    for r in good_rows(landing, "erp_orders", *excluded):
        w = (dt.date.fromisoformat(r["order_date"][:10]) - start).days // 7
        amount = Decimal(r["amount"])
        net[w] += amount if r["transaction_type"] == "sale" else -amount
    for row in weekly:
        assert net[int(row["week_index"])] == Decimal(row["revenue"]), row["week_start"]
    truth = json.loads((landing / "_truth" / "mmm_truth.json").read_text())
    assert set(truth["channels"]) == {"google_search", "google_display", "meta", "linkedin"}
    for ch in truth["channels"].values():
        assert ch["roi"] > 0 and ch["marginal_roi"] > 0 and 0 < ch["decay"] < 1


def test_crm_won_vs_erp_discrepancy_only_in_planted_month(landing, excluded):
    matches = {m["customer_id"]: m["account_id"] for m in read_truth_csv(landing, "account_matches.csv")}
    crm: dict[str, Decimal] = defaultdict(Decimal)
    for o in good_rows(landing, "crm_opportunities", *excluded):
        if o["is_won"] == "true":
            crm[o["closed_date"][:7]] += Decimal(o["won_amount"])
    erp: dict[str, Decimal] = defaultdict(Decimal)
    for r in good_rows(landing, "erp_orders", *excluded):
        if r["customer_id"] in matches:
            sign = 1 if r["transaction_type"] == "sale" else -1
            erp[r["order_date"][:7]] += sign * Decimal(r["amount"])
    planted = json.loads((landing / "_truth" / "discrepancies.json").read_text())["erp_vs_crm_won_revenue"]
    off = {m for m in set(crm) | set(erp) if abs(erp[m] - crm[m]) > Decimal("0.01") * max(crm[m], 1)}
    assert off == {planted["month"][:7]}
    pct = (erp[planted["month"][:7]] / crm[planted["month"][:7]] - 1) * 100
    assert 5 <= pct <= 11


def test_end_date_respected(landing, manifest, excluded):
    assert manifest["end_date"] == END_DATE
    end = dt.date.fromisoformat(END_DATE)
    checks = {
        "ads_google": "segments_date", "web_sessions": "session_start", "erp_orders": "order_date",
        "crm_marketing_touchpoints": "marketing_touchpoint_date", "crm_opportunities": "opportunity_created_date",
    }
    for table, col in checks.items():
        days = {r[col][:10] for r in good_rows(landing, table, *excluded)}
        assert max(days) == END_DATE, table
        assert min(days) >= manifest["start_date"], table
    assert (end - dt.date.fromisoformat(manifest["start_date"])).days + 1 >= 156 * 7
    anomalies = json.loads((landing / "_truth" / "anomalies.json").read_text())["anomalies"]
    assert {a["kind"] for a in anomalies} == {"cpa_spike", "roas_drop", "web_conversion_rate_drop"}
    for a in anomalies:
        first = dt.date.fromisoformat(a.get("start_date", a.get("date")))
        assert (end - first).days < 30


def test_unattributed_share_and_lift_tests(landing, excluded):
    contacts = {r["contact_id"]: r["account_id"] for r in good_rows(landing, "crm_contacts", *excluded)}
    touches: dict[str, list] = defaultdict(list)
    for r in good_rows(landing, "crm_marketing_touchpoints", *excluded):
        touches[contacts[r["contact_id"]]].append(dt.datetime.fromisoformat(r["marketing_touchpoint_date"]))
    for r in good_rows(landing, "crm_sales_touchpoints", *excluded):
        touches[contacts[r["contact_id"]]].append(dt.datetime.fromisoformat(r["sales_touchpoint_date"]))
    opps = good_rows(landing, "crm_opportunities", *excluded)
    unattributed = 0
    for o in opps:
        created = dt.datetime.fromisoformat(o["opportunity_created_date"])
        window = [t for t in touches[o["account_id"]] if created - dt.timedelta(days=90) <= t <= created]
        unattributed += not window
    assert 0.04 <= unattributed / len(opps) <= 0.12
    lift = read_truth_csv(landing, "lift_tests_truth.csv")
    assert 2 <= len(lift) <= 3
    for t in lift:
        assert float(t["true_lift"]) > 0 and float(t["lift_se"]) > 0


def test_generator_never_overwrites_real_exports(tmp_path):
    from marketing_assets.demo import generate

    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts.csv").write_text("contact_id,account_id\nreal,acct\n")
    with pytest.raises(FileExistsError, match="not a demo landing zone"):
        generate(tmp_path, scale="small", seed=1, end_date="2026-01-31")
    assert (tmp_path / "crm" / "contacts.csv").read_text().endswith("real,acct\n")
