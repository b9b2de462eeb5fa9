"""Identity resolution: email normalisation, contact deduplication, CRM account <-> ERP customer.

Everything row-proportional runs in DuckDB SQL, connected components (contacts linked by shared identifiers)
included: Python only sends statements and reads counts. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib import yaml_files
from marketing_assets.lib.sql import literal

DEFAULT_IDENTITY_FILE = CONFIG_DIR / "identity.yaml"
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def load_identity_config(path: Path | str = DEFAULT_IDENTITY_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml_files.safe_load(fh)


def _is_in(expr: str, values) -> str:
    """SQL ``expr IN (values)`` (NULL for a NULL ``expr``) as ``list_contains``: DuckDB 2.0 fails to bind
    ``IN`` over an expression its statistics prove all-NULL ("BindBuiltinScalarFunction did not return a
    BoundFunctionExpression"), which is what an export without the optional column gives."""
    return f"list_contains([{', '.join(literal(v) for v in values)}]::VARCHAR[], {expr})"


def email_sql(expr: str, rules: Mapping[str, Any]) -> str:
    """SQL normalising an email: trim, lower-case, domain aliases, plus-tags and provider dots; NULL if invalid."""
    e = f"nullif(lower(trim({expr})), '')"
    aliases = rules.get("domain_aliases") or {}
    raw_domain = f"split_part({e}, '@', 2)"
    domain = (
        f"CASE {raw_domain} " + " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in aliases.items()) + f" ELSE {raw_domain} END"
        if aliases
        else raw_domain
    )
    local = f"split_part({e}, '@', 1)"
    if rules.get("strip_plus_tags", True):
        local = f"regexp_replace({local}, '\\+.*$', '')"
    dotless = rules.get("dotless_domains") or []
    if dotless:
        local = f"CASE WHEN {_is_in(domain, dotless)} THEN replace({local}, '.', '') ELSE {local} END"
    return f"CASE WHEN regexp_matches({e}, {literal(EMAIL_REGEX)}) THEN {local} || '@' || {domain} END"


def domain_sql(expr: str) -> str:
    """SQL normalising a web site / domain / email domain to a bare host (``https://www.acme.com/x`` -> ``acme.com``)."""
    host = f"lower(trim({expr}))"
    host = f"regexp_replace({host}, '^[a-z]+://', '')"
    host = f"regexp_replace({host}, '^[^@]*@', '')"
    host = f"regexp_replace({host}, '^www[0-9]*\\.', '')"
    host = f"regexp_replace({host}, '[/?#:].*$', '')"
    return f"nullif(trim({host}, '. '), '')"


def company_name_sql(expr: str, legal_suffixes) -> str:
    """SQL normalising a company name: lower-case, '&' as 'and', punctuation and legal-form words dropped."""
    name = f"lower(trim({expr}))"
    name = f"replace({name}, '&', ' and ')"
    name = f"regexp_replace({name}, '[^a-z0-9 ]+', ' ', 'g')"
    suffixes = "|".join(sorted(legal_suffixes, key=len, reverse=True))
    if suffixes:
        name = f"regexp_replace({name}, '\\b({suffixes})\\b', ' ', 'g')"
    name = f"regexp_replace(trim({name}), '\\s+', ' ', 'g')"
    return f"nullif({name}, '')"


def has_values(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    """Whether ``column`` of ``table`` holds any non-NULL value.

    Normalising SQL is only applied to columns that do: DuckDB 2.0 folds an all-NULL column to a constant
    and then fails to bind some nested expressions over it ("BindBuiltinScalarFunction did not return a
    BoundFunctionExpression"), and an export without the optional column lands it all-NULL.
    """
    return bool(con.execute(f"SELECT count({column}) > 0 FROM {table}").fetchone()[0])


def connected_components(con: duckdb.DuckDBPyConnection, nodes: str, edges: str, target: str) -> int:
    """Connected components of an undirected graph, in SQL: writes the temporary table ``target`` (one row per
    node: ``node``, ``component``), ``component`` being the smallest node of the node's component. Returns the
    number of rounds.

    ``nodes`` is a relation with a ``node`` column (isolated nodes included); ``edges`` one with ``a`` and ``b``,
    whose endpoints are nodes too. Any ordered key type works; NULL keys are ignored (a NULL links nothing),
    self-loops and repeated edges change nothing.

    Min-label hooking with pointer jumping and graph contraction, every step one set-based statement (only
    counts reach Python). A round hooks every node of the graph to its smallest neighbour (or itself), follows
    the hooks to their roots by pointer jumping (each pass halves the remaining distance, until no root
    changes), relabels every node whose label was hooked, and contracts each edge to the edge between the
    two roots, dropping the edges inside a root. A component's smallest node is never hooked elsewhere, so
    when no edge is left each node is labelled with the smallest node of its component. The contracted graph
    shrinks fast: on the identity graph, one round leaves only a few edges.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cc_adjacent AS
        SELECT src, dst FROM (SELECT a AS src, b AS dst FROM {edges} UNION ALL SELECT b, a FROM {edges})
        WHERE src IS NOT NULL AND dst IS NOT NULL AND src <> dst"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cc_labels AS
        SELECT node, node AS label FROM (SELECT node FROM {nodes} UNION SELECT src FROM _cc_adjacent) WHERE node IS NOT NULL"""
    )
    rounds = 0
    while con.execute("SELECT count(*) FROM _cc_adjacent").fetchone()[0]:
        rounds += 1
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _cc_root AS SELECT src AS node, least(src, min(dst)) AS root FROM _cc_adjacent GROUP BY src"
        )
        changed = 1
        while changed:
            con.execute(
                """CREATE OR REPLACE TEMP TABLE _cc_next AS
                SELECT r.node, p.root, r.root AS previous FROM _cc_root r JOIN _cc_root p ON p.node = r.root"""
            )
            (changed,) = con.execute("SELECT count(*) FILTER (WHERE root <> previous) FROM _cc_next").fetchone()
            con.execute("CREATE OR REPLACE TEMP TABLE _cc_root AS SELECT node, root FROM _cc_next")
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _cc_labels AS
            SELECT l.node, coalesce(r.root, l.label) AS label FROM _cc_labels l LEFT JOIN _cc_root r ON r.node = l.label"""
        )
        con.execute(
            """CREATE OR REPLACE TEMP TABLE _cc_adjacent AS
            SELECT DISTINCT s.root AS src, d.root AS dst FROM _cc_adjacent a
            JOIN _cc_root s ON s.node = a.src JOIN _cc_root d ON d.node = a.dst
            WHERE s.root <> d.root"""
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT node, label AS component FROM _cc_labels")
    for t in ("_cc_adjacent", "_cc_labels", "_cc_root", "_cc_next"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return rounds


def _contact_components(con: duckdb.DuckDBPyConnection) -> int:
    """Components of the identity graph of ``_id_contacts``, ``_id_forms`` and ``_id_clients``; returns the rounds taken.

    Nodes are the contacts, the normalised emails and the client ids of devices that are not shared;
    an edge joins a contact to its email and a client to each email it submitted. Contacts are numbered
    first, in contact_id order (emails and client ids after them, in any order), so the component of a
    person is named by its smallest contact. Writes ``_id_contact_nodes`` / ``_id_client_nodes`` (key ->
    node), ``_id_components`` (node -> component) and ``_id_people`` (one row per component with a contact:
    ``identity_cluster_id`` 0, 1, ... in the order of the smallest contact_id).
    """
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_links AS
        SELECT f.client_id, f.email_normalized FROM _id_forms f JOIN _id_clients c USING (client_id)
        WHERE NOT c.is_shared_device AND f.client_id IS NOT NULL"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_contact_nodes AS
        SELECT contact_id, (row_number() OVER (ORDER BY contact_id))::INTEGER AS node
        FROM (SELECT DISTINCT contact_id FROM _id_contacts WHERE contact_id IS NOT NULL)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_email_nodes AS
        SELECT email_normalized, ((SELECT count(*) FROM _id_contact_nodes) + row_number() OVER (ORDER BY email_normalized))::INTEGER AS node FROM (
            SELECT email_normalized FROM _id_contacts WHERE contact_id IS NOT NULL UNION SELECT email_normalized FROM _id_links
        ) WHERE email_normalized IS NOT NULL"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_client_nodes AS
        SELECT client_id,
               ((SELECT count(*) FROM _id_contact_nodes) + (SELECT count(*) FROM _id_email_nodes) + row_number() OVER (ORDER BY client_id))::INTEGER AS node
        FROM (SELECT DISTINCT client_id FROM _id_links)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_edges AS
        SELECT c.node AS a, e.node AS b FROM _id_contacts x
        JOIN _id_contact_nodes c USING (contact_id) JOIN _id_email_nodes e USING (email_normalized)
        UNION ALL
        SELECT w.node, e.node FROM _id_links l
        JOIN _id_client_nodes w USING (client_id) JOIN _id_email_nodes e USING (email_normalized)"""
    )
    for t in ("_id_links", "_id_email_nodes"):
        con.execute(f"DROP TABLE {t}")
    rounds = connected_components(con, "_id_contact_nodes", "_id_edges", "_id_components")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _id_people AS
        SELECT component, (row_number() OVER (ORDER BY component) - 1)::INTEGER AS identity_cluster_id
        FROM (SELECT DISTINCT k.component FROM _id_contact_nodes n JOIN _id_components k USING (node))"""
    )
    con.execute("DROP TABLE _id_edges")
    return rounds


def resolve_contacts(
    con: duckdb.DuckDBPyConnection,
    contacts: str,
    sessions: str | None,
    target: str,
    target_clients: str,
    rules: Mapping[str, Any],
) -> dict[str, int]:
    """Deduplicate contacts: one canonical id per person, over shared normalised emails and web client ids.

    Contacts sharing a normalised email are one person; a browser client id that submitted form
    emails links those emails (unless it submitted more than ``web.max_emails_per_client``
    distinct emails: a shared device). The canonical contact is the component's earliest created
    (then smallest id); ``identity_cluster_id`` numbers the people 0, 1, ... in the order of their smallest
    contact_id. A contact without an id is left out and a form without a client id links nothing. Writes
    ``target`` (one row per contact) and ``target_clients`` (one row per client id seen in form fills, with
    its canonical contact when it has one). The components are computed in SQL (:func:`connected_components`).
    """
    email_rules = rules.get("email", {})
    max_emails = int(rules.get("web", {}).get("max_emails_per_client", 3))
    email = email_sql("email", email_rules) if has_values(con, contacts, "email") else "NULL::VARCHAR"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _id_contacts AS
        SELECT contact_id, account_id, created_at, {email} AS email_normalized FROM {contacts}"""
    )
    if sessions and has_values(con, sessions, "form_email"):
        con.execute(
            # MATERIALIZED: else the optimizer pushes ``email_normalized IS NOT NULL`` into the scan as the whole
            # normalisation expression, evaluated there a second time and without common-subexpression reuse
            f"""CREATE OR REPLACE TEMP TABLE _id_forms AS
            WITH normalized AS MATERIALIZED (
                SELECT client_id, {email_sql('form_email', email_rules)} AS email_normalized FROM {sessions}
                WHERE form_email IS NOT NULL
            )
            SELECT client_id, email_normalized, count(*) AS form_fills FROM normalized
            WHERE email_normalized IS NOT NULL GROUP BY ALL"""
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _id_forms (client_id VARCHAR, email_normalized VARCHAR, form_fills BIGINT)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _id_clients AS
        SELECT client_id, count(DISTINCT email_normalized) AS emails, count(DISTINCT email_normalized) > {max_emails} AS is_shared_device
        FROM _id_forms GROUP BY ALL"""
    )
    _contact_components(con)
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
        WITH labelled AS (
            SELECT c.*, k.component, p.identity_cluster_id FROM _id_contacts c
            JOIN _id_contact_nodes n USING (contact_id) JOIN _id_components k USING (node) JOIN _id_people p USING (component)
        ),
        ranked AS (
            SELECT *,
                first_value(contact_id) OVER w AS canonical_contact_id,
                first_value(account_id) OVER w AS canonical_account_id,
                count(*) OVER (PARTITION BY component) AS cluster_size,
                count(*) OVER (PARTITION BY component, email_normalized) AS same_email
            FROM labelled
            WINDOW w AS (PARTITION BY component ORDER BY created_at NULLS LAST, contact_id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        )
        SELECT contact_id, account_id, canonical_contact_id, canonical_account_id, email_normalized,
               contact_id = canonical_contact_id AS is_canonical,
               CASE WHEN cluster_size = 1 THEN 'self'
                    WHEN email_normalized IS NOT NULL AND same_email > 1 THEN 'email'
                    ELSE 'web_client_id' END AS match_method,
               cluster_size, identity_cluster_id
        FROM ranked ORDER BY contact_id"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {target_clients} AS
        SELECT c.client_id, c.emails AS form_emails, c.is_shared_device,
               CASE WHEN NOT c.is_shared_device THEN r.canonical_contact_id END AS canonical_contact_id
        FROM _id_clients c
        LEFT JOIN _id_client_nodes w USING (client_id)
        LEFT JOIN _id_components k ON k.node = w.node
        LEFT JOIN _id_people p ON p.component = k.component
        LEFT JOIN (SELECT DISTINCT identity_cluster_id, canonical_contact_id FROM {target}) r USING (identity_cluster_id)
        ORDER BY c.client_id"""
    )
    stats = con.execute(
        f"""SELECT count(*), count(DISTINCT canonical_contact_id), count(*) FILTER (WHERE email_normalized IS NULL),
                   (SELECT count(*) FROM {target_clients} WHERE canonical_contact_id IS NOT NULL),
                   (SELECT count(*) FROM {target_clients} WHERE is_shared_device)
            FROM {target}"""
    ).fetchone()
    for t in ("_id_contacts", "_id_forms", "_id_clients", "_id_contact_nodes", "_id_client_nodes", "_id_components", "_id_people"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    keys = ("contacts", "people", "contacts_without_valid_email", "clients_linked", "shared_devices")
    return dict(zip(keys, (int(v) for v in stats), strict=True))


def truth_csv_sql(path: Path | str) -> str:
    """SQL reading a planted-truth CSV, every column as text (an empty field is NULL)."""
    return f"read_csv({literal(str(path))}, header = true, all_varchar = true)"


def pairwise_precision_recall(
    con: duckdb.DuckDBPyConnection, predicted: str, truth: str, item: str = "contact_id", cluster: str = "canonical_contact_id"
) -> dict[str, float]:
    """Pairwise precision / recall of a clustering against the true one, counted in SQL.

    ``predicted`` and ``truth`` are relations with columns ``item`` and ``cluster``. A pair of items is
    predicted together when they share a predicted cluster; correct when they also share a true cluster.
    Only items present in both, with both clusters known, count.
    """
    pairs = lambda by: f"(SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM _both GROUP BY {by}))"
    tp, pred, true = con.execute(
        f"""WITH _both AS (
                SELECT p.{cluster} AS p, t.{cluster} AS t FROM {predicted} p JOIN {truth} t ON t.{item} = p.{item}
                WHERE p.{cluster} IS NOT NULL AND t.{cluster} IS NOT NULL
            )
            SELECT {pairs('p, t')}, {pairs('p')}, {pairs('t')}"""
    ).fetchone()
    tp, pred, true = float(tp), float(pred), float(true)
    return {
        "precision": tp / pred if pred else 1.0,
        "recall": tp / true if true else 1.0,
        "predicted_pairs": pred,
        "true_pairs": true,
    }


FUZZY_WINDOW = 10  # CRM names compared on each side of a customer's name in name order (identity.yaml: accounts.fuzzy_window)


_CRM_RANKED = """crm_ranked AS (
            SELECT account_id, name_norm, country, left(name_norm, 4) AS block,
                   row_number() OVER (PARTITION BY left(name_norm, 4) ORDER BY name_norm, account_id) AS block_rank
            FROM _am_crm WHERE name_norm IS NOT NULL
        )"""
"""CTE: the CRM names in name order within their block (the first four characters of the normalised name)."""


def _left_over_sql(window: int) -> str:
    """SELECT of the customers left for the fuzzy match (``_am_erp`` rows matched neither by domain nor by name,
    ``_am_exact``) with their ``block`` and, for a ``window`` > 0, ``crm_rank``: the CRM names of the block that sort at
    or before the customer's name (equal names before it).

    Its own statement (a temporary table read by :func:`_fuzzy_candidates_sql`). Streamed straight into the scoring join
    in one statement with the exact matches, DuckDB 2.0 spent 3 s in this window at ``large`` and 87 s at ``xlarge`` (7M
    names in 236 blocks; 7.8 s alone): that statement took 62-69 s at ``xlarge``, the three statements now 3 + 10 + 3 s."""
    left_over = """left_over AS (
            SELECT customer_id, name_norm, country, left(name_norm, 4) AS block FROM _am_erp
            WHERE customer_id NOT IN (SELECT customer_id FROM _am_exact) AND name_norm IS NOT NULL
        )"""
    if window == 0:
        return f"WITH {left_over} SELECT * FROM left_over"
    return f"""
        WITH {left_over}, {_CRM_RANKED}
        SELECT customer_id, name_norm, country, block, crm_rank FROM (
            SELECT customer_id, name_norm, country, block, is_crm,
                   sum(is_crm) OVER (PARTITION BY block ORDER BY name_norm, is_crm DESC, id ROWS UNBOUNDED PRECEDING) AS crm_rank
            FROM (SELECT account_id AS id, NULL AS customer_id, name_norm, NULL AS country, block, 1 AS is_crm FROM crm_ranked
                  UNION ALL
                  SELECT customer_id, customer_id, name_norm, country, block, 0 FROM left_over)
        ) WHERE is_crm = 0"""


def _fuzzy_candidates_sql(window: int) -> str:
    """CTEs ``crm_ranked`` and ``candidates`` (over ``_am_left_over``, :func:`_left_over_sql`, and ``_am_crm``): each
    left-over customer paired with the ``window`` CRM names just before and the ``window`` just after its own name in
    name order, within its block (the first four characters of the normalised name; a fuzzy match shares them, as
    Jaro-Winkler's prefix weight favours). A sorted neighbourhood: the comparisons grow with the rows (at most
    2 × ``window`` per customer), where comparing every pair of a block grows with the square of the block (the demo's
    blocks hold thousands of names at ``large``). A customer's closest names sort next to it, so the window keeps them;
    ``window`` = 0 compares whole blocks.

    ``candidates`` names each CRM name to compare by (``block``, ``block_rank``), the rank computed from the customer's
    position and the window's shift: the join to ``crm_ranked`` is then one hash join on both. Joined on ``block`` with the
    rank as a condition over the cross product with the shifts instead, DuckDB's join ordering hashed on ``block`` alone,
    scoring every pair of a block (the square of the block again) and only then keeping the window."""
    if window == 0:
        return _CRM_RANKED + """,
        candidates AS (
            SELECT l.customer_id, l.name_norm, l.country, l.block, c.block_rank
            FROM _am_left_over l JOIN crm_ranked c ON c.block = l.block
        )"""
    offsets = ", ".join(f"({k})" for k in range(1 - window, window + 1))
    return _CRM_RANKED + f""",
        candidates AS (
            SELECT p.customer_id, p.name_norm, p.country, p.block, p.crm_rank + o.shift AS block_rank
            FROM _am_left_over p CROSS JOIN (VALUES {offsets}) o(shift)
        )"""


def match_accounts(
    con: duckdb.DuckDBPyConnection,
    accounts: str,
    customers: str,
    target: str,
    rules: Mapping[str, Any],
    contacts: str | None = None,
) -> dict[str, int]:
    """Match CRM accounts to ERP customers: by domain, then normalised name, then fuzzy name.

    An account without a domain borrows the most common company email domain of its contacts
    (free-mail domains never count). Every ERP customer matches at most one account; a customer
    whose domain or name fits several accounts is reported ``ambiguous`` instead of guessed. Writes
    ``target``: matched pairs with method and confidence, plus every unmatched account and
    customer on its own row.

    The domain and exact-name matches join each customer to the CRM accounts grouped by domain (by name and country),
    not to every account: a domain or name shared by k accounts and m customers costs k + m rows, not k × m (synthetic
    and real data have both: "Acme Ltd" duplicates, a corporate mail domain shared by many accounts).
    """
    acc = rules.get("accounts", {})
    freemail = acc.get("freemail_domains") or []
    suffixes = acc.get("legal_suffixes") or []
    conf = {"domain": 0.99, "name": 0.9, "fuzzy_name": 0.8, **(acc.get("confidences") or {})}
    threshold = float(acc.get("fuzzy_min_similarity", 0.93))
    window = int(acc.get("fuzzy_window", FUZZY_WINDOW))
    if window < 0:
        raise ValueError("accounts.fuzzy_window must be 0 (whole blocks) or more")
    email_domains = (
        # most contacts; a tie: the first by name. Free-mail domains are left out in the aggregate's FILTER, not a WHERE
        # on the domain, which DuckDB pushes below the GROUP BY and so normalises every e-mail twice (twice the time).
        f"""SELECT account_id, arg_min(d, (-n, d)) FILTER (WHERE NOT {_is_in('d', freemail)}) AS email_domain FROM (
                SELECT account_id, {domain_sql('email')} AS d, count(*) AS n FROM {contacts}
                WHERE email LIKE '%@%' GROUP BY ALL) GROUP BY ALL"""
        if contacts
        else "SELECT NULL::VARCHAR AS account_id, NULL::VARCHAR AS email_domain WHERE false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _am_crm AS
        SELECT a.account_id, a.account_name, a.country,
               coalesce({domain_sql('a.domain')}, e.email_domain) AS domain_norm,
               {company_name_sql('a.account_name', suffixes)} AS name_norm
        FROM {accounts} a LEFT JOIN ({email_domains}) e USING (account_id)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _am_erp AS
        SELECT customer_id, customer_name, country, {domain_sql('website')} AS domain_norm,
               {company_name_sql('customer_name', suffixes)} AS name_norm
        FROM {customers}"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _am_exact AS
        WITH crm_domains AS (
            SELECT domain_norm, min(account_id) AS account_id, count(*) AS candidates FROM _am_crm WHERE domain_norm IS NOT NULL GROUP BY ALL
        ),
        by_domain AS (
            SELECT e.customer_id, min(c.account_id) AS account_id, sum(c.candidates)::BIGINT AS candidates
            FROM _am_erp e JOIN crm_domains c ON c.domain_norm = e.domain_norm AND NOT {_is_in('e.domain_norm', freemail)}
            GROUP BY ALL
        ),
        crm_names AS (
            SELECT name_norm, lower(country) AS country, min(account_id) AS account_id, count(*) AS candidates
            FROM _am_crm WHERE name_norm IS NOT NULL GROUP BY ALL
        ),
        by_name AS (
            SELECT e.customer_id, min(c.account_id) AS account_id, sum(c.candidates)::BIGINT AS candidates
            FROM _am_erp e JOIN crm_names c ON c.name_norm = e.name_norm
                AND (c.country IS NULL OR e.country IS NULL OR c.country = lower(e.country))
            WHERE e.customer_id NOT IN (SELECT customer_id FROM by_domain)
            GROUP BY ALL
        )
        SELECT customer_id, account_id, 'domain' AS match_method, {conf['domain']} AS confidence, candidates FROM by_domain
        UNION ALL SELECT customer_id, account_id, 'name', {conf['name']}, candidates FROM by_name"""
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _am_left_over AS {_left_over_sql(window)}")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _am_pairs AS
        WITH {_fuzzy_candidates_sql(window)},
        fuzzy_scored AS (
            SELECT l.customer_id, c.account_id, jaro_winkler_similarity(l.name_norm, c.name_norm) AS sim
            FROM candidates l JOIN crm_ranked c USING (block, block_rank)
            WHERE c.country IS NULL OR l.country IS NULL OR lower(c.country) = lower(l.country)
        ),
        by_fuzzy AS (
            SELECT customer_id, arg_max(account_id, sim) AS account_id, max(sim) AS sim,
                   count(*) FILTER (WHERE sim >= {threshold}) AS candidates
            FROM fuzzy_scored WHERE sim >= {threshold} GROUP BY ALL
        )
        SELECT * FROM _am_exact
        UNION ALL SELECT customer_id, account_id, 'fuzzy_name', round({conf['fuzzy_name']} * sim, 4), candidates FROM by_fuzzy"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
        WITH decided AS (
            SELECT customer_id, CASE WHEN candidates = 1 THEN account_id END AS account_id,
                   CASE WHEN candidates = 1 THEN match_method ELSE 'ambiguous' END AS match_method,
                   CASE WHEN candidates = 1 THEN confidence END AS confidence,
                   CASE WHEN candidates > 1 THEN candidates END AS ambiguous_candidates
            FROM _am_pairs
        )
        SELECT c.account_id, c.account_name, e.customer_id, e.customer_name,
               coalesce(d.match_method, CASE WHEN e.customer_id IS NULL THEN 'unmatched_crm' ELSE 'unmatched_erp' END) AS match_method,
               d.confidence, d.ambiguous_candidates, coalesce(c.domain_norm, e.domain_norm) AS domain
        FROM _am_erp e
        LEFT JOIN decided d USING (customer_id)
        FULL JOIN _am_crm c ON c.account_id = d.account_id
        ORDER BY c.account_id NULLS LAST, e.customer_id"""
    )
    stats = dict(con.execute(f"SELECT match_method, count(*) FROM {target} GROUP BY ALL").fetchall())
    for t in ("_am_crm", "_am_erp", "_am_exact", "_am_left_over", "_am_pairs"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {k: int(v) for k, v in stats.items()}


def pair_precision_recall(
    con: duckdb.DuckDBPyConnection, predicted: str, truth: str, cols: tuple[str, str] = ("account_id", "customer_id")
) -> dict[str, float]:
    """Precision / recall of predicted (account, customer) pairs against the true pairs, counted in SQL.

    ``predicted`` and ``truth`` are relations with the two ``cols``; pairs with a NULL side are no pairs,
    and pairs compare as text.
    """
    x, y = cols
    pairs = lambda rel: f"SELECT DISTINCT {x}::VARCHAR AS x, {y}::VARCHAR AS y FROM {rel} WHERE {x} IS NOT NULL AND {y} IS NOT NULL"
    hit, pred, true = con.execute(
        f"""WITH p AS ({pairs(predicted)}), t AS ({pairs(truth)})
            SELECT (SELECT count(*) FROM p JOIN t USING (x, y)), (SELECT count(*) FROM p), (SELECT count(*) FROM t)"""
    ).fetchone()
    return {
        "precision": hit / pred if pred else 1.0,
        "recall": hit / true if true else 1.0,
        "predicted_pairs": float(pred),
        "true_pairs": float(true),
    }
