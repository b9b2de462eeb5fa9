"""Identity resolution on tiny hand-built tables."""

import duckdb
import pandas as pd
import pytest

from marketing_assets.lib.identity import (
    company_name_sql,
    connected_component_labels,
    domain_sql,
    email_sql,
    load_identity_config,
    pairwise_precision_recall,
    resolve_contacts,
)

RULES = load_identity_config()


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@ACME.com ", "jane.doe@acme.com"),
        ("jane.doe+webinar@acme.com", "jane.doe@acme.com"),
        ("J.A.N.E+x@GoogleMail.com", "jane@gmail.com"),
        ("not-an-email", None),
        ("", None),
        (None, None),
    ],
)
def test_email_normalisation(con, raw, expected):
    assert con.execute(f"SELECT {email_sql('$1', RULES['email'])}", [raw]).fetchone()[0] == expected


def test_plus_tags_kept_when_configured_off(con):
    rules = {**RULES["email"], "strip_plus_tags": False}
    assert con.execute(f"SELECT {email_sql('$1', rules)}", ["a+b@x.com"]).fetchone()[0] == "a+b@x.com"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("https://www.Acme.com/about", "acme.com"), ("acme.com", "acme.com"), ("www2.acme.co.uk:8080", "acme.co.uk"), ("jo@acme.io", "acme.io"), ("", None)],
)
def test_domain_normalisation(con, raw, expected):
    assert con.execute(f"SELECT {domain_sql('$1')}", [raw]).fetchone()[0] == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ACME, Inc.", "acme"), ("The Acme Group Ltd", "acme"), ("Smith & Sons GmbH", "smith and sons"), ("Inc", None)],
)
def test_company_name_normalisation(con, raw, expected):
    assert con.execute(f"SELECT {company_name_sql('$1', RULES['accounts']['legal_suffixes'])}", [raw]).fetchone()[0] == expected


def test_connected_components_include_isolated_nodes():
    labels = connected_component_labels(
        pd.Series(["a", "b"]).to_numpy(dtype=object), pd.Series(["b", "c"]).to_numpy(dtype=object), pd.Series(["a", "z"]).to_numpy(dtype=object)
    )
    assert labels["a"] == labels["b"] == labels["c"] != labels["z"]


def test_resolve_contacts_by_email_and_web_client(con):
    con.execute(
        """CREATE TABLE contacts AS SELECT * FROM (VALUES
            ('c1', 'a1', TIMESTAMP '2025-01-01', 'Jane.Doe@acme.com'),
            ('c2', 'a1', TIMESTAMP '2025-02-01', ' jane.doe+ebook@ACME.com'),
            ('c3', 'a1', TIMESTAMP '2024-06-01', 'jd@personal.org'),
            ('c4', 'a2', TIMESTAMP '2025-03-01', 'bob@beta.io'),
            ('c5', 'a3', NULL, NULL),
            ('c6', 'a4', TIMESTAMP '2025-01-01', 'x1@kiosk.com'),
            ('c7', 'a5', TIMESTAMP '2025-01-01', 'x2@kiosk.com')
        ) t(contact_id, account_id, created_at, email)"""
    )
    con.execute(
        """CREATE TABLE sessions AS SELECT * FROM (VALUES
            ('w1', 'jane.doe@acme.com'), ('w1', 'JD@personal.org'), ('w2', 'bob@beta.io'), ('w3', NULL),
            ('kiosk', 'x1@kiosk.com'), ('kiosk', 'x2@kiosk.com'), ('kiosk', 'x3@kiosk.com'), ('kiosk', 'x4@kiosk.com')
        ) t(client_id, form_email)"""
    )
    stats = resolve_contacts(con, "contacts", "sessions", "resolved", "clients", RULES)
    got = con.execute("SELECT contact_id, canonical_contact_id, match_method FROM resolved ORDER BY 1").fetchall()
    assert got == [
        ("c1", "c3", "email"),
        ("c2", "c3", "email"),
        ("c3", "c3", "web_client_id"),
        ("c4", "c4", "self"),
        ("c5", "c5", "self"),
        ("c6", "c6", "self"),  # the kiosk submitted 4 emails: a shared device links nobody
        ("c7", "c7", "self"),
    ]
    clients = dict(con.execute("SELECT client_id, canonical_contact_id FROM clients").fetchall())
    assert clients == {"kiosk": None, "w1": "c3", "w2": "c4"}
    assert stats == {"contacts": 7, "people": 5, "contacts_without_valid_email": 1, "clients_linked": 2, "shared_devices": 1}


def test_pairwise_precision_recall_by_hand():
    predicted = pd.Series({"a": 1, "b": 1, "c": 1, "d": 2})
    truth = pd.Series({"a": "x", "b": "x", "c": "y", "d": "y"})
    # predicted pairs ab, ac, bc (3); true pairs ab, cd (2); correct: ab.
    assert pairwise_precision_recall(predicted, truth) == {"precision": 1 / 3, "recall": 1 / 2, "predicted_pairs": 3.0, "true_pairs": 2.0}


def test_match_accounts_domain_name_fuzzy_ambiguous_unmatched(con):
    from marketing_assets.lib.identity import match_accounts, pair_precision_recall

    con.execute(
        """CREATE TABLE accounts AS SELECT * FROM (VALUES
            ('a1', 'Acme Inc', 'https://www.acme.com', 'US'),
            ('a2', 'Globex Corporation', NULL, 'US'),
            ('a3', 'Initech', NULL, 'US'),
            ('a4', 'Umbrella Holdings', 'umbrella.io', 'UK'),
            ('a5', 'Umbrella Group', 'umbrella.io', 'UK'),
            ('a6', 'Hooli', NULL, 'US'),
            ('a7', 'Lonely Co', NULL, 'DE')
        ) t(account_id, account_name, domain, country)"""
    )
    con.execute(
        """CREATE TABLE contacts AS SELECT * FROM (VALUES
            ('a6', 'gav@hooli.xyz'), ('a6', 'pb@hooli.xyz'), ('a6', 'someone@gmail.com'), ('a3', 'x@gmail.com')
        ) t(account_id, email)"""
    )
    con.execute(
        """CREATE TABLE customers AS SELECT * FROM (VALUES
            ('C1', 'ACME, Inc.', 'acme.com', 'US'),
            ('C2', 'Globex Corp.', NULL, 'US'),
            ('C3', 'Initeck', NULL, 'US'),
            ('C4', 'Umbrella', 'www.umbrella.io', 'UK'),
            ('C5', 'Hooli XYZ', 'http://hooli.xyz/store', 'US'),
            ('C6', 'Web Shopper', NULL, 'FR'),
            ('C7', 'Initech', 'initech.com', 'DE')
        ) t(customer_id, customer_name, website, country)"""
    )
    stats = match_accounts(con, "accounts", "customers", "matched", RULES, contacts="contacts")
    rows = con.execute("SELECT account_id, customer_id, match_method FROM matched ORDER BY 2 NULLS LAST, 1").fetchall()
    assert rows == [
        ("a1", "C1", "domain"),
        ("a2", "C2", "name"),
        ("a3", "C3", "fuzzy_name"),
        (None, "C4", "ambiguous"),  # umbrella.io belongs to two CRM accounts: reported, not guessed
        ("a6", "C5", "domain"),  # a6 has no domain: borrowed from its contacts' company emails
        (None, "C6", "unmatched_erp"),
        (None, "C7", "unmatched_erp"),  # same name as a3 but another country
        ("a4", None, "unmatched_crm"),
        ("a5", None, "unmatched_crm"),
        ("a7", None, "unmatched_crm"),
    ]
    assert stats["domain"] == 2 and stats["ambiguous"] == 1
    truth = pd.DataFrame({"account_id": ["a1", "a2", "a3", "a4", "a6"], "customer_id": ["C1", "C2", "C3", "C4", "C5"]})
    pr = pair_precision_recall(con.execute("SELECT * FROM matched").df(), truth)
    assert pr["precision"] == 1.0 and pr["recall"] == 0.8
