"""Identity resolution: email normalisation, contact deduplication, CRM account <-> ERP customer.

Heavy lifting runs in DuckDB SQL; connected components (union-find over shared identifiers) run
on integer-coded edges with scipy's sparse graph routines. No Dagster import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from marketing_assets.constants import CONFIG_DIR
from marketing_assets.lib.sql import literal

DEFAULT_IDENTITY_FILE = CONFIG_DIR / "identity.yaml"
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def load_identity_config(path: Path | str = DEFAULT_IDENTITY_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


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


def connected_component_labels(left: np.ndarray, right: np.ndarray, nodes: np.ndarray) -> pd.Series:
    """Union-find over an edge list: component label (0..k-1) for every node in ``nodes`` and the edges."""
    codes, uniques = pd.factorize(np.concatenate([nodes, left, right]), sort=True)
    n_nodes, n_edges = len(uniques), len(left)
    start = len(nodes)
    a, b = codes[start : start + n_edges], codes[start + n_edges :]
    graph = coo_matrix((np.ones(n_edges, dtype=np.int8), (a, b)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels, index=pd.Index(uniques, name="node"), name="component")


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
    (then smallest id). Writes ``target`` (one row per contact) and ``target_clients`` (one row
    per client id seen in form fills, with its canonical contact when it has one).
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
            f"""CREATE OR REPLACE TEMP TABLE _id_forms AS
            SELECT client_id, email_normalized, count(*) AS form_fills FROM (
                SELECT client_id, {email_sql('form_email', email_rules)} AS email_normalized FROM {sessions}
                WHERE form_email IS NOT NULL
            ) WHERE email_normalized IS NOT NULL GROUP BY ALL"""
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _id_forms (client_id VARCHAR, email_normalized VARCHAR, form_fills BIGINT)")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _id_clients AS
        SELECT client_id, count(DISTINCT email_normalized) AS emails, count(DISTINCT email_normalized) > {max_emails} AS is_shared_device
        FROM _id_forms GROUP BY ALL"""
    )
    edges = con.execute(
        """SELECT 'c:' || contact_id AS a, 'e:' || email_normalized AS b FROM _id_contacts WHERE email_normalized IS NOT NULL
           UNION ALL
           SELECT 'w:' || f.client_id, 'e:' || f.email_normalized FROM _id_forms f
           JOIN _id_clients c USING (client_id) WHERE NOT c.is_shared_device"""
    ).df()
    nodes = con.execute("SELECT 'c:' || contact_id FROM _id_contacts").df().iloc[:, 0].to_numpy(dtype=object)
    labels = connected_component_labels(edges["a"].to_numpy(dtype=object), edges["b"].to_numpy(dtype=object), nodes)
    components = labels.reset_index()
    con.register("_id_components_df", components)
    con.execute("CREATE OR REPLACE TEMP TABLE _id_components AS SELECT * FROM _id_components_df")
    con.unregister("_id_components_df")
    con.execute(
        f"""CREATE OR REPLACE TABLE {target} AS
        WITH labelled AS (
            SELECT c.*, k.component FROM _id_contacts c JOIN _id_components k ON k.node = 'c:' || c.contact_id
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
               cluster_size, component AS identity_cluster_id
        FROM ranked ORDER BY contact_id"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE {target_clients} AS
        SELECT c.client_id, c.emails AS form_emails, c.is_shared_device,
               CASE WHEN NOT c.is_shared_device THEN r.canonical_contact_id END AS canonical_contact_id
        FROM _id_clients c
        LEFT JOIN _id_components k ON k.node = 'w:' || c.client_id
        LEFT JOIN (SELECT DISTINCT identity_cluster_id, canonical_contact_id FROM {target}) r ON r.identity_cluster_id = k.component
        ORDER BY c.client_id"""
    )
    stats = con.execute(
        f"""SELECT count(*), count(DISTINCT canonical_contact_id), count(*) FILTER (WHERE email_normalized IS NULL),
                   (SELECT count(*) FROM {target_clients} WHERE canonical_contact_id IS NOT NULL),
                   (SELECT count(*) FROM {target_clients} WHERE is_shared_device)
            FROM {target}"""
    ).fetchone()
    for t in ("_id_contacts", "_id_forms", "_id_clients", "_id_components"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    keys = ("contacts", "people", "contacts_without_valid_email", "clients_linked", "shared_devices")
    return dict(zip(keys, (int(v) for v in stats), strict=True))


def pairwise_precision_recall(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision / recall of a clustering against the true one (both indexed by item id).

    A pair of items is predicted together when they share a predicted cluster; correct when they
    also share a true cluster. Items missing from ``truth`` are ignored.
    """
    frame = pd.DataFrame({"p": predicted, "t": truth}).dropna()
    pairs = lambda sizes: float((sizes * (sizes - 1) / 2).sum())  # noqa: E731
    tp = pairs(frame.groupby(["p", "t"]).size())
    pred, true = pairs(frame.groupby("p").size()), pairs(frame.groupby("t").size())
    return {
        "precision": tp / pred if pred else 1.0,
        "recall": tp / true if true else 1.0,
        "predicted_pairs": pred,
        "true_pairs": true,
    }


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
    """
    acc = rules.get("accounts", {})
    freemail = acc.get("freemail_domains") or []
    suffixes = acc.get("legal_suffixes") or []
    conf = {"domain": 0.99, "name": 0.9, "fuzzy_name": 0.8, **(acc.get("confidences") or {})}
    threshold = float(acc.get("fuzzy_min_similarity", 0.93))
    email_domains = (
        f"""SELECT account_id, arg_min(d, (-n, d)) AS email_domain FROM (  -- most contacts; a tie: the first by name
                SELECT account_id, {domain_sql('email')} AS d, count(*) AS n FROM {contacts}
                WHERE email LIKE '%@%' GROUP BY ALL) WHERE NOT {_is_in('d', freemail)} GROUP BY ALL"""
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
        f"""CREATE OR REPLACE TEMP TABLE _am_pairs AS
        WITH by_domain AS (
            SELECT e.customer_id, min(c.account_id) AS account_id, count(*) AS candidates
            FROM _am_erp e JOIN _am_crm c ON c.domain_norm = e.domain_norm AND NOT {_is_in('e.domain_norm', freemail)}
            GROUP BY ALL
        ),
        by_name AS (
            SELECT e.customer_id, min(c.account_id) AS account_id, count(*) AS candidates
            FROM _am_erp e JOIN _am_crm c ON c.name_norm = e.name_norm
                AND (c.country IS NULL OR e.country IS NULL OR lower(c.country) = lower(e.country))
            WHERE e.customer_id NOT IN (SELECT customer_id FROM by_domain)
            GROUP BY ALL
        ),
        left_over AS (
            SELECT * FROM _am_erp
            WHERE customer_id NOT IN (SELECT customer_id FROM by_domain UNION ALL SELECT customer_id FROM by_name)
              AND name_norm IS NOT NULL
        ),
        fuzzy_scored AS (
            SELECT l.customer_id, c.account_id, jaro_winkler_similarity(l.name_norm, c.name_norm) AS sim
            -- Blocking on the first four characters keeps the comparison count near-linear.
            FROM left_over l JOIN _am_crm c ON left(c.name_norm, 4) = left(l.name_norm, 4)
                AND (c.country IS NULL OR l.country IS NULL OR lower(c.country) = lower(l.country))
            WHERE c.name_norm IS NOT NULL
        ),
        by_fuzzy AS (
            SELECT customer_id, arg_max(account_id, sim) AS account_id, max(sim) AS sim,
                   count(*) FILTER (WHERE sim >= {threshold}) AS candidates
            FROM fuzzy_scored WHERE sim >= {threshold} GROUP BY ALL
        )
        SELECT customer_id, account_id, 'domain' AS match_method, {conf['domain']} AS confidence, candidates FROM by_domain
        UNION ALL SELECT customer_id, account_id, 'name', {conf['name']}, candidates FROM by_name
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
    for t in ("_am_crm", "_am_erp", "_am_pairs"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return {k: int(v) for k, v in stats.items()}


def pair_precision_recall(predicted: pd.DataFrame, truth: pd.DataFrame, cols=("account_id", "customer_id")) -> dict[str, float]:
    """Precision / recall of predicted (account, customer) pairs against the true pairs."""
    p = set(map(tuple, predicted[list(cols)].dropna().astype(str).values.tolist()))
    t = set(map(tuple, truth[list(cols)].dropna().astype(str).values.tolist()))
    hit = len(p & t)
    return {
        "precision": hit / len(p) if p else 1.0,
        "recall": hit / len(t) if t else 1.0,
        "predicted_pairs": float(len(p)),
        "true_pairs": float(len(t)),
    }
