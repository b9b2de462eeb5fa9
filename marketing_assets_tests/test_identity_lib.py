"""Identity resolution on tiny hand-built tables."""

import itertools
import json
import random

import duckdb
import pytest

from marketing_assets.lib.identity import (
    company_name_sql,
    connected_components,
    domain_sql,
    email_sql,
    load_identity_config,
    match_accounts,
    pair_precision_recall,
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


def components(con, nodes, edges, node_type="INTEGER") -> tuple[dict, int]:
    """Run connected_components on literal node / edge lists; returns ({node: component}, rounds)."""
    con.execute(f"CREATE OR REPLACE TABLE nodes (node {node_type})")
    con.execute(f"CREATE OR REPLACE TABLE edges (a {node_type}, b {node_type})")
    for n in nodes:
        con.execute("INSERT INTO nodes VALUES (?)", [n])
    for a, b in edges:
        con.execute("INSERT INTO edges VALUES (?, ?)", [a, b])
    rounds = connected_components(con, "nodes", "edges", "comp")
    got = dict(con.execute("SELECT node, component FROM comp").fetchall())
    assert con.execute("SELECT count(*) FROM comp").fetchone()[0] == len(got)  # one row per node
    return got, rounds


def path(seq):
    return list(itertools.pairwise(seq))


# Local minima alternate with larger nodes along the path: hooking to the smallest neighbour merges only
# pairs in a round, so several rounds (and pointer-jumping passes) are needed.
ZIGZAG = [8, 20, 6, 21, 4, 22, 2, 23, 1, 24, 3, 25, 5, 26, 7]


@pytest.mark.parametrize(
    ("nodes", "edges", "expected"),
    [
        pytest.param([], path(ZIGZAG), dict.fromkeys(ZIGZAG, 1), id="zigzag-chain-14-hops"),
        pytest.param([], path(list(range(1, 31))), dict.fromkeys(range(1, 31), 1), id="sorted-chain-29-hops"),
        pytest.param([], path(list(range(30, 0, -1))), dict.fromkeys(range(1, 31), 1), id="reversed-chain-29-hops"),
        pytest.param([], path([4, 9, 2, 7, 5, 8, 4]), dict.fromkeys([2, 4, 5, 7, 8, 9], 2), id="cycle"),
        pytest.param([40, 41, 42], [(41, 43)], {40: 40, 41: 41, 42: 42, 43: 41}, id="isolated-nodes-and-edge-only-nodes"),
        pytest.param([10], [(10, 10), (11, 11), (12, 11)], {10: 10, 11: 11, 12: 11}, id="self-loops"),
        pytest.param([], [(21, 20), (20, 21), (21, 20), (21, 22), (22, 21)], {20: 20, 21: 20, 22: 20}, id="duplicate-edges"),
        pytest.param([None, 30], [(30, None), (None, None), (None, 31), (31, 32)], {30: 30, 31: 31, 32: 31}, id="null-keys-link-nothing"),
        pytest.param(
            [50, 99],
            [*path([60, 55, 70, 65]), *path([80, 52, 90]), (90, 53), (99, 99)],
            {50: 50, 55: 55, 60: 55, 65: 55, 70: 55, 52: 52, 53: 52, 80: 52, 90: 52, 99: 99},
            id="several-components",
        ),
        pytest.param([], [], {}, id="empty-graph"),
    ],
)
def test_connected_components_by_hand(con, nodes, edges, expected):
    got, _ = components(con, nodes, edges)
    assert got == expected


def test_connected_components_take_several_rounds_on_a_zigzag_chain(con):
    got, rounds = components(con, [], path(ZIGZAG))
    assert set(got.values()) == {1}
    assert rounds == 2  # hand-traced: round 1 leaves the path 8-6-4-2-1-3-5-7, round 2 merges it


def test_connected_components_of_text_keys(con):
    got, _ = components(con, ["zed", "c:9"], [("c:2", "e:x"), ("w:1", "e:x"), ("w:1", "e:y"), ("c:10", "e:y"), ("e:z", "w:2")], "VARCHAR")
    # text order: 'c:10' < 'c:2' < 'c:9'
    assert got == {"zed": "zed", "c:9": "c:9", "c:2": "c:10", "e:x": "c:10", "w:1": "c:10", "e:y": "c:10", "c:10": "c:10",
                   "e:z": "e:z", "w:2": "e:z"}


@pytest.mark.parametrize("seed", range(5))
def test_connected_components_match_union_find_on_random_graphs(con, seed):
    rng = random.Random(seed)
    n = 300
    edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(150, 400))]
    parent = list(range(n))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)  # the smaller root survives: roots are component minima
    got, _ = components(con, list(range(n)), edges)
    assert got == {v: root(v) for v in range(n)}


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


def test_resolve_contacts_along_a_long_chain_of_web_clients(con):
    con.execute(
        """CREATE TABLE contacts AS SELECT * FROM (VALUES
            ('c0', 'a0', TIMESTAMP '2025-01-05', 'solo@x.io'),
            ('c1', 'a1', TIMESTAMP '2025-03-01', 'p1@x.io'),
            ('c2', 'a1', TIMESTAMP '2025-02-01', 'p2@x.io'),
            ('c3', 'a1', TIMESTAMP '2025-04-01', 'p3@x.io'),
            ('c4', 'a2', TIMESTAMP '2025-01-01', 'p4@x.io'),
            ('c5', 'a1', NULL, 'p5@x.io'),
            ('c6', 'a1', TIMESTAMP '2025-05-01', 'P6@X.io'),
            ('c7', 'a3', TIMESTAMP '2025-01-01', 'p3@x.io'),
            ('c8', 'a4', TIMESTAMP '2025-01-01', NULL)
        ) t(contact_id, account_id, created_at, email)"""
    )
    # w1..w5 chain the emails p1 - p2 - ... - p6: c1 reaches c6 over 12 hops.
    con.execute(
        """CREATE TABLE sessions AS SELECT * FROM (VALUES
            ('w1', 'p1@x.io'), ('w1', 'p2@x.io'), ('w2', 'p2@x.io'), ('w2', 'p3@x.io'), ('w3', 'p3@x.io'), ('w3', 'p4@x.io'),
            ('w4', 'p4@x.io'), ('w4', 'p5@x.io'), ('w5', 'p5@x.io'), ('w5', 'p6@x.io'), ('w5', 'p6@x.io'),
            ('w6', 'other@y.io'), ('w7', NULL)
        ) t(client_id, form_email)"""
    )
    stats = resolve_contacts(con, "contacts", "sessions", "resolved", "clients", RULES)
    got = con.execute(
        "SELECT contact_id, canonical_contact_id, canonical_account_id, match_method, cluster_size, identity_cluster_id FROM resolved ORDER BY 1"
    ).fetchall()
    # One person c1..c7, canonical c4 (earliest created; c7 ties on the date and has the larger id); clusters numbered
    # in the order of their smallest contact_id: c0 -> 0, c1's person -> 1, c8 -> 2.
    assert got == [
        ("c0", "c0", "a0", "self", 1, 0),
        ("c1", "c4", "a2", "web_client_id", 7, 1),
        ("c2", "c4", "a2", "web_client_id", 7, 1),
        ("c3", "c4", "a2", "email", 7, 1),
        ("c4", "c4", "a2", "web_client_id", 7, 1),
        ("c5", "c4", "a2", "web_client_id", 7, 1),
        ("c6", "c4", "a2", "web_client_id", 7, 1),
        ("c7", "c4", "a2", "email", 7, 1),
        ("c8", "c8", "a4", "self", 1, 2),
    ]
    clients = con.execute("SELECT client_id, form_emails, canonical_contact_id FROM clients ORDER BY 1").fetchall()
    assert clients == [("w1", 2, "c4"), ("w2", 2, "c4"), ("w3", 2, "c4"), ("w4", 2, "c4"), ("w5", 2, "c4"), ("w6", 1, None)]
    assert stats == {"contacts": 9, "people": 3, "contacts_without_valid_email": 1, "clients_linked": 5, "shared_devices": 0}
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0  # working tables dropped


def test_resolve_contacts_null_keys_link_nothing(con):
    con.execute(
        """CREATE TABLE contacts AS SELECT * FROM (VALUES
            ('c1', 'a1', TIMESTAMP '2025-01-01', 'x@a.io'),
            ('c2', 'a2', TIMESTAMP '2025-01-01', 'y@a.io'),
            (NULL, 'a3', TIMESTAMP '2024-01-01', 'x@a.io')
        ) t(contact_id, account_id, created_at, email)"""
    )
    con.execute("CREATE TABLE sessions AS SELECT * FROM (VALUES (NULL, 'x@a.io'), (NULL, 'y@a.io')) t(client_id, form_email)")
    stats = resolve_contacts(con, "contacts", "sessions", "resolved", "clients", RULES)
    # A contact without an id is no identity (it is left out); a form without a client id links nobody.
    assert con.execute("SELECT contact_id, canonical_contact_id, match_method FROM resolved ORDER BY 1").fetchall() == [
        ("c1", "c1", "self"),
        ("c2", "c2", "self"),
    ]
    assert con.execute("SELECT client_id, form_emails, canonical_contact_id FROM clients").fetchall() == [(None, 2, None)]
    assert stats["people"] == 2 and stats["clients_linked"] == 0


def test_pairwise_precision_recall_by_hand(con):
    con.execute(
        """CREATE TABLE predicted AS SELECT * FROM (VALUES ('a', '1'), ('b', '1'), ('c', '1'), ('d', '2'), ('e', '2'))
           t(contact_id, canonical_contact_id)"""
    )
    con.execute(
        """CREATE TABLE truth AS SELECT * FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'y'), ('d', 'y'), ('e', NULL), ('f', 'y'))
           t(contact_id, canonical_contact_id)"""
    )
    # e has no true cluster and f no prediction: both ignored. Predicted pairs ab, ac, bc (3); true pairs ab, cd (2); correct: ab.
    got = pairwise_precision_recall(con, "predicted", "truth")
    assert got == {"precision": 1 / 3, "recall": 1 / 2, "predicted_pairs": 3.0, "true_pairs": 2.0}


def test_pairwise_precision_recall_without_pairs_is_perfect(con):
    con.execute("CREATE TABLE singles AS SELECT * FROM (VALUES ('a', 'a'), ('b', 'b')) t(contact_id, canonical_contact_id)")
    got = pairwise_precision_recall(con, "singles", "singles")
    assert got == {"precision": 1.0, "recall": 1.0, "predicted_pairs": 0.0, "true_pairs": 0.0}


def test_match_accounts_domain_name_fuzzy_ambiguous_unmatched(con):
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
    con.execute(
        """CREATE TABLE truth AS SELECT * FROM (VALUES
            ('a1', 'C1'), ('a2', 'C2'), ('a3', 'C3'), ('a4', 'C4'), ('a6', 'C5'), ('a6', 'C5'), ('a7', NULL)
        ) t(account_id, customer_id)"""
    )
    # 4 predicted pairs (unmatched rows are no pairs), all true; 5 true pairs (the repeat counts once, a7 has none).
    pr = pair_precision_recall(con, "matched", "truth")
    assert pr == {"precision": 1.0, "recall": 0.8, "predicted_pairs": 4.0, "true_pairs": 5.0}


def _block_of_names(con, window: int) -> list[tuple]:
    """One four-letter block ('init') of 40 CRM names; the customer 'Initech Systemz' sorts right after its true match
    'Initech Systems', ahead of 39 'Initial Widget <n>' names that share the block but not the name."""
    con.execute("CREATE OR REPLACE TABLE accounts AS SELECT 'w' || i AS account_id, 'Initial Widget ' || i AS account_name, "
                "NULL AS domain, 'US' AS country FROM range(39) t(i) UNION ALL SELECT 'a99', 'Initech Systems', NULL, 'US'")
    con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM (VALUES ('C1', 'Initech Systemz', NULL, 'US')) t(customer_id, customer_name, website, country)")
    rules = {**RULES, "accounts": {**RULES["accounts"], "fuzzy_window": window}}
    match_accounts(con, "accounts", "customers", "matched", rules)
    return con.execute("SELECT customer_id, account_id, match_method FROM matched WHERE customer_id IS NOT NULL ORDER BY 1").fetchall()


def test_fuzzy_match_compares_a_window_of_neighbours_in_name_order(con):
    # the match is the customer's neighbour in name order: one name each side finds what comparing the whole 40-name
    # block (window 0) finds
    whole = _block_of_names(con, 0)
    assert whole == [("C1", "a99", "fuzzy_name")]
    assert _block_of_names(con, 1) == whole
    assert _block_of_names(con, 10) == whole


def test_fuzzy_window_bounds_the_comparisons(con):
    # 'Init ab Labz' sorts right after 'init ab labs' (a1): with window 1 its candidates are a1 and a2 only; a name
    # 3 places away in name order is never compared, even though it shares the block
    con.execute("CREATE OR REPLACE TABLE accounts AS SELECT * FROM (VALUES ('a1', 'Init aa', NULL, 'US'), ('a2', 'Init ab', NULL, 'US'), "
                "('a3', 'Init ac', NULL, 'US'), ('a4', 'Init ad', NULL, 'US'), ('a5', 'Init aez', NULL, 'US')) t(account_id, account_name, domain, country)")
    con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM (VALUES ('C1', 'Init aaz', NULL, 'US')) t(customer_id, customer_name, website, country)")
    rules = {**RULES, "accounts": {**RULES["accounts"], "fuzzy_window": 1, "fuzzy_min_similarity": 0.5}}
    match_accounts(con, "accounts", "customers", "matched", rules)
    # candidates a1 ('init aa' <= 'init aaz') and a2 (the next name): two above the threshold -> ambiguous, not a4/a5
    assert con.execute("SELECT match_method, ambiguous_candidates FROM matched WHERE customer_id = 'C1'").fetchone() == ("ambiguous", 2)
    rules["accounts"]["fuzzy_window"] = 0  # whole block: all five compared
    match_accounts(con, "accounts", "customers", "matched", rules)
    assert con.execute("SELECT match_method, ambiguous_candidates FROM matched WHERE customer_id = 'C1'").fetchone() == ("ambiguous", 5)


def test_fuzzy_window_must_not_be_negative(con):
    con.execute("CREATE TABLE accounts AS SELECT 'a1' AS account_id, 'Acme' AS account_name, NULL AS domain, 'US' AS country")
    con.execute("CREATE TABLE customers AS SELECT 'C1' AS customer_id, 'Acme' AS customer_name, NULL AS website, 'US' AS country")
    with pytest.raises(ValueError, match="fuzzy_window"):
        match_accounts(con, "accounts", "customers", "matched", {**RULES, "accounts": {**RULES["accounts"], "fuzzy_window": -1}})


class _PairsProfile:
    """A connection recording the plans of match_accounts' matching statements (the exact matches, the left-over
    customers' positions and the candidate pairs) and, run under DuckDB's profiler (``profile``: a JSON output file per
    statement, named after it), the rows each of their operators produced."""

    STATEMENTS = ("_am_exact", "_am_left_over", "_am_pairs")

    def __init__(self, con, profile=None):
        self.con, self.profile, self.plans, self.outputs = con, profile, [], []

    def execute(self, sql, *args):
        name = next((t for t in self.STATEMENTS if f"{t} AS" in sql), None)
        if name is None:
            return self.con.execute(sql, *args)
        self.plans += json.loads(self.con.execute("EXPLAIN (FORMAT json) " + sql.split(f"{name} AS", 1)[1]).fetchall()[0][1])
        if self.profile is None:
            return self.con.execute(sql, *args)
        output = self.profile.with_name(f"{self.profile.stem}{name}.json")
        self.outputs.append(output)
        self.con.execute("PRAGMA enable_profiling = 'json'")
        self.con.execute(f"PRAGMA profiling_output = '{output}'")
        try:
            return self.con.execute(sql, *args)
        finally:
            self.con.execute("PRAGMA disable_profiling")

    def joins(self) -> list[list[str]]:
        """The conditions of every join of the plans."""
        found = []

        def walk(node):
            if "JOIN" in node.get("name", ""):
                conditions = node.get("extra_info", {}).get("Conditions") or []
                found.append([conditions] if isinstance(conditions, str) else conditions)
            for child in node.get("children", []):
                walk(child)

        for node in self.plans:
            walk(node)
        return found

    def join_rows(self) -> list[int]:
        """Rows produced by each join of the statements, as profiled."""
        found = []

        def walk(node):
            if "JOIN" in node.get("type", ""):
                found.append(node["operator_cardinality"] if "operator_cardinality" in node else node["intermediate_rows"])
            for child in node.get("children", []):
                walk(child)

        assert len(self.outputs) == len(self.STATEMENTS), self.outputs
        for output in self.outputs:
            with open(output) as fh:
                for node in json.load(fh)["operator"]:
                    walk(node)
        return found


def test_fuzzy_window_is_one_hash_join_on_block_and_rank(con):
    # joined on the block alone, every customer is scored against the whole block (its square) before the window applies
    profile = _PairsProfile(con)
    con.execute("CREATE TABLE accounts AS SELECT 'w' || i AS account_id, 'Initial Widget ' || i AS account_name, NULL AS domain, 'US' AS country "
                "FROM range(39) t(i) UNION ALL SELECT 'a99', 'Initech Systems', NULL, 'US'")
    con.execute("CREATE TABLE customers AS SELECT * FROM (VALUES ('C1', 'Initech Systemz', NULL, 'US')) t(customer_id, customer_name, website, country)")
    match_accounts(profile, "accounts", "customers", "matched", RULES)
    scoring = [c for c in profile.joins() if any("jaro_winkler" in x for x in c)]
    assert len(scoring) == 1 and any("block_rank" in x and "jaro" not in x for x in scoring[0]), scoring


def test_shared_domain_and_name_cost_accounts_plus_customers_not_their_product(con, tmp_path):
    # 30 accounts and 30 customers share one domain, 30 accounts without a country and 30 customers in the US share the name
    # Acme (900 account x customer pairs each); 9 accounts named Globex (3 in the US, 2 without a country, 4 in DE) and 4
    # Globex customers, all without a website
    con.execute(
        """CREATE TABLE accounts AS
        SELECT 'd' || lpad(i::VARCHAR, 2, '0') AS account_id, 'Shared ' || i AS account_name, 'shared.example' AS domain, 'US' AS country FROM range(30) t(i)
        UNION ALL SELECT 'n' || lpad(i::VARCHAR, 2, '0'), 'Acme Ltd', NULL, NULL FROM range(30) t(i)
        UNION ALL SELECT * FROM (VALUES ('g1', 'Globex', NULL, 'US'), ('g2', 'Globex Inc', NULL, 'US'), ('g3', 'Globex Ltd', NULL, 'US'),
                                        ('g4', 'Globex', NULL, NULL), ('g5', 'Globex', NULL, NULL),
                                        ('g6', 'Globex', NULL, 'DE'), ('g7', 'Globex', NULL, 'DE'), ('g8', 'Globex', NULL, 'DE'), ('g9', 'Globex', NULL, 'DE'),
                                        ('s1', 'Solo', NULL, NULL))"""
    )
    con.execute(
        """CREATE TABLE customers AS
        SELECT 'S' || lpad(i::VARCHAR, 2, '0') AS customer_id, 'Shared customer ' || i AS customer_name, 'https://www.shared.example/x' AS website,
               'US' AS country FROM range(30) t(i)
        UNION ALL SELECT 'N' || lpad(i::VARCHAR, 2, '0'), 'ACME', NULL, 'US' FROM range(30) t(i)
        UNION ALL SELECT * FROM (VALUES ('G-us', 'GLOBEX', NULL, 'us'), ('G-none', 'Globex', NULL, NULL), ('G-fr', 'Globex', NULL, 'FR'),
                                        ('G-de', 'Globex GmbH', NULL, 'DE'), ('S-fr', 'Solo', NULL, 'FR'))"""
    )
    profile = _PairsProfile(con, tmp_path / "pairs.json")
    match_accounts(profile, "accounts", "customers", "matched", RULES)
    got = dict(con.execute("SELECT customer_id, (match_method, ambiguous_candidates, account_id) FROM matched WHERE customer_id IS NOT NULL").fetchall())
    # every shared-domain customer: 30 candidates; Globex in the US: 3 US + 2 without a country; without a country: all 9;
    # in FR: the 2 without one; in DE: 4 + 2; Solo (no country) is the one candidate of a customer in FR
    for prefix in "SN":
        assert {k: v for k, v in got.items() if k[0] == prefix and k[1] != "-"} == {f"{prefix}{i:02d}": ("ambiguous", 30, None) for i in range(30)}
    assert {k: got[k] for k in ("G-us", "G-none", "G-fr", "G-de", "S-fr")} == {
        "G-us": ("ambiguous", 5, None), "G-none": ("ambiguous", 9, None), "G-fr": ("ambiguous", 2, None), "G-de": ("ambiguous", 6, None),
        "S-fr": ("name", None, "s1")}
    # the domain and name joins give one row per customer and group of accounts (of its domain; of its name by country),
    # not one per account: no join of the statement gives more rows than there are accounts and customers
    assert max(profile.join_rows()) <= 70 + 65, profile.join_rows()
