"""What DuckDB and Spark do differently, in one place. No Dagster import.

The project writes each transformation once, as SQL in DuckDB's dialect. :func:`to_spark` translates a
statement for Spark SQL with SQLGlot and then applies this module's rules, one per difference that the plain
translation gets wrong *silently* (it runs on Spark and returns another answer):

- ``date_diff(part, a, b)`` counts the ``part`` boundaries crossed in DuckDB (Jan 31 → Feb 1 is 1 month) and
  whole elapsed units in Spark (0 months; 23:00 → 01:00 the next day is 0 days): rewritten to boundary counts.
- ``epoch(ts)`` keeps the fraction of a second in DuckDB; Spark's ``unix_timestamp`` drops it: rewritten to
  ``unix_micros(ts) / 1e6``.
- ``list(x ORDER BY y)`` keeps the order and the NULLs in DuckDB; Spark's ``collect_list`` drops both:
  rewritten to a sort of ``(keys, value)`` structs; ``first(x ORDER BY y)`` / ``last`` take its first / last element.
- ``INTERVAL (n) DAY`` (a computed interval) is not Spark syntax: rewritten to ``make_dt_interval`` /
  ``make_ym_interval``.
- ``any_value(x) FILTER (…)`` and ``arg_max(x, (a, b))`` are not Spark syntax as SQLGlot writes them: rewritten
  to ``any_value(x, TRUE)`` (NULLs skipped, as in DuckDB) and ``max_by(x, STRUCT(a, b))``.
- ``list[i]`` is NULL past the end in DuckDB and an error in Spark: ``try_element_at``; ``to_days(n)`` is
  ``make_dt_interval(n, 0, 0, 0)``.
- ``isfinite(x)`` does not exist in Spark: written out (NULL stays NULL, NaN and ±inf are not finite).
- ``jaro_winkler_similarity``: Spark 4.3's built-in gives 1 for two empty strings (DuckDB 0) and adds the Winkler
  bonus below a Jaro similarity of 0.7 (DuckDB does not): :func:`jaro_winkler_similarity`, DuckDB's, runs as a UDF.
- ``list_filter(l, lambda x, i: …)`` / ``list_transform``: DuckDB numbers the elements from 1, Spark's ``filter`` /
  ``transform`` from 0: the index parameter is read as ``i + 1`` in the lambda's body.
- ``list_slice(l, begin, end)`` (1-based, both ends included) is not Spark's: rewritten to ``slice(l, begin, length)``
  with the length never negative (an empty slice, as in DuckDB, where Spark would raise).
- ``unnest(list_of_structs, recursive := true)`` (one row per element, one column per field) is Spark's ``inline``.
- ``a / b`` is always DOUBLE in DuckDB; Spark divides decimals as DECIMAL, cut to a few places (``n / 86400.0``
  kept 7 decimals, and a rounded average flipped a cent): the numerator is cast to DOUBLE.
- ``format('… {} … {:,} …', …)`` is DuckDB's fmt syntax; SQLGlot writes Spark's ``format_string``, which prints the
  braces as they are: the placeholders become ``%s`` and ``%,d`` (thousands separators, integers); others are refused.
- ``WITH x AS MATERIALIZED (…)`` (a DuckDB planning hint) is not Spark syntax: the hint is dropped.
- A named window defined from another (``WINDOW wa AS (w ROWS …)``) is not Spark syntax: every window is
  written out where it is used.
- ``hash()`` is a different function in each engine (every value hashes differently): not translated —
  :func:`stable_hash` is the portable spelling.

Three differences are settled by the session, not the text (:data:`SPARK_CONF`): DECIMAL(38,10) products keep
their scale (Spark otherwise rounds them to 6 decimals), ``to_json`` keeps a NULL field (Spark otherwise drops it), and
division by zero raises (ANSI) where DuckDB returns ``inf``/``NaN`` — the project divides through :func:`safe_divide`
(NULL on zero in both engines).

What has no faithful translation (``hash()``, ``struct_insert``, ``list_zip``, ``list_reduce``, ``UNION … BY NAME``
without a known column list, an interval unit or date part not listed above) raises :class:`NotPortable` naming the construct, so a
statement never runs on Spark with a changed meaning.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.spark import Spark

SPARK_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",  # DuckDB's TIMESTAMP has no zone: Spark reads and writes them as UTC
    "spark.sql.ansi.enabled": "true",  # an unguarded 1/0 raises (DuckDB: inf) instead of yielding NULL silently
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",  # DECIMAL(38,10) * DECIMAL(38,10) keeps 20 places
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # readable by every engine (not INT96)
    "spark.sql.jsonGenerator.ignoreNullFields": "false",  # to_json writes "x":null for a NULL field, as DuckDB does
    # Inferring constraints over a projection of many aliased CASE expressions (ingestion's checked rows) grows
    # exponentially: localCheckpoint (a temporary table) ran out of heap on one 18-column table. Results do not change.
    "spark.sql.constraintPropagation.enabled": "false",
}
"""Session settings every Spark session of the project runs with."""

HASH_HEX_DIGITS = 16
"""Length of :func:`stable_hash`'s key: 64 bits of MD5."""

_UNIT_MICROS = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000, "HOUR": 3_600_000_000}
_YEAR_MONTH_UNITS = {"YEAR", "MONTH"}
_DAY_TIME_UNITS = ("DAY", "HOUR", "MINUTE", "SECOND")
_UNIT_ALIASES = {"DAYS": "DAY", "D": "DAY", "MONTHS": "MONTH", "MON": "MONTH", "YEARS": "YEAR", "Y": "YEAR",
                 "HOURS": "HOUR", "H": "HOUR", "MINUTES": "MINUTE", "M": "MINUTE", "SECONDS": "SECOND", "S": "SECOND",
                 "QUARTERS": "QUARTER", "MILLISECONDS": "MILLISECOND", "MS": "MILLISECOND",
                 "MICROSECONDS": "MICROSECOND", "US": "MICROSECOND"}


class NotPortable(ValueError):
    """A DuckDB construct with no faithful Spark translation."""


# ------------------------------------------------------------------------------------------ portable spellings


def stable_hash(*exprs: str) -> str:
    """A hash key of ``exprs`` that both engines compute identically: the first 64 bits of the MD5 of the values'
    text (NULL and the empty string hash differently), as 16 hex digits."""
    if not exprs:
        raise ValueError("stable_hash needs at least one expression")
    parts = ", ".join(f"coalesce(CAST({e} AS VARCHAR), chr(0))" for e in exprs)
    text = parts if len(exprs) == 1 else f"concat_ws(chr(31), {parts})"
    return f"substr(md5({text}), 1, {HASH_HEX_DIGITS})"


def safe_divide(numerator: str, denominator: str) -> str:
    """``numerator / denominator``, NULL when the denominator is 0 (DuckDB gives inf or NaN, Spark raises)."""
    return f"(({numerator}) / NULLIF({denominator}, 0))"


def jaro_winkler_similarity(a: str | None, b: str | None) -> float | None:
    """DuckDB's ``jaro_winkler_similarity`` (Spark has none; the Spark engine registers this as a UDF): Jaro
    similarity with the Winkler bonus of 0.1 per common prefix character (at most 4) when it exceeds 0.7; 0 when
    either string is empty. Equal to DuckDB's to 1e-12 (tested on 22,000 pairs)."""
    if a is None or b is None:
        return None
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return 0.0
    window = max(0, max(n1, n2) // 2 - 1)
    used_a, used_b = [False] * n1, [False] * n2
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(n2, i + window + 1)):
            if not used_b[j] and b[j] == ch:
                used_a[i] = used_b[j] = True
                matches += 1
                break
    if matches == 0:
        return 0.0
    in_a = (a[i] for i in range(n1) if used_a[i])
    in_b = (b[j] for j in range(n2) if used_b[j])
    transpositions = sum(x != y for x, y in zip(in_a, in_b)) // 2
    jaro = (matches / n1 + matches / n2 + (matches - transpositions) / matches) / 3
    if jaro <= 0.7:
        return jaro
    prefix = 0
    for x, y in zip(a[:4], b[:4]):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


SPARK_FUNCTIONS = {"duckdb_jaro_winkler_similarity": (jaro_winkler_similarity, "double")}
"""DuckDB functions Spark lacks or computes differently, registered as UDFs on every Spark session of the project
under these names (a built-in of the same name would win over a session function)."""


# ------------------------------------------------------------------------------------------ translation


class _DuckDBAsWritten(DuckDB):
    """DuckDB read with each list index kept as written (1-based). Plain DuckDB parsing makes an index 0-based only
    when SQLGlot can type it as an integer (``l[2]``, not ``l[i]``), so after it no rule could tell which is which."""

    INDEX_OFFSET = 0


class _Spark(Spark):
    """Spark SQL as SQLGlot writes it, except that a WITH inside a subquery stays there: SQLGlot moves every CTE to
    the top, where the KPI engine's nested queries (each with its own ``revenue_lines``…) collide; Spark 3+ reads
    nested WITH clauses."""

    class Generator(Spark.Generator):
        EXPRESSIONS_WITHOUT_NESTED_CTES: set = set()


def _unit(node: exp.Expression | None, default: str = "DAY") -> str:
    name = (node.name if node is not None else default).upper()
    return _UNIT_ALIASES.get(name, name)


def _spark(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read=_Spark)


def _sql(node: exp.Expression) -> str:
    """A sub-expression as Spark SQL, its own DuckDB constructs translated first (a replaced node's children are not
    visited again by the outer transform)."""
    return node.transform(_rewrite).sql(dialect=_Spark)


def _date_diff(node: exp.DateDiff) -> exp.Expression:
    """DuckDB's boundary count ``date_diff(unit, start, end)`` (``this`` = end, ``expression`` = start)."""
    unit = _unit(node.args.get("unit"))
    end, start = _sql(node.this), _sql(node.expression)
    if unit == "YEAR":
        text = f"(YEAR({end}) - YEAR({start}))"
    elif unit == "QUARTER":
        text = f"((YEAR({end}) - YEAR({start})) * 4 + QUARTER({end}) - QUARTER({start}))"
    elif unit == "MONTH":
        text = f"((YEAR({end}) - YEAR({start})) * 12 + MONTH({end}) - MONTH({start}))"
    elif unit == "DAY":
        text = f"DATEDIFF(CAST({end} AS DATE), CAST({start} AS DATE))"
    elif unit in _UNIT_MICROS:
        per = _UNIT_MICROS[unit]
        micros = "UNIX_MICROS(CAST({} AS TIMESTAMP_LTZ))"
        text = (f"(FLOOR({micros.format(end)} / {per}) - FLOOR({micros.format(start)} / {per}))" if per > 1
                else f"({micros.format(end)} - {micros.format(start)})")
    else:
        raise NotPortable(f"date_diff by {unit.lower()}: only year, quarter, month, day, hour, minute, second, "
                          "millisecond and microsecond are translated")
    return _spark(f"CAST({text} AS BIGINT)")


def _epoch(node: exp.TimeToUnix) -> exp.Expression:
    return _spark(f"(CAST(UNIX_MICROS(CAST({_sql(node.this)} AS TIMESTAMP_LTZ)) AS DOUBLE) / 1000000)")


def _ordered_list(node: exp.ArrayAgg, where: exp.Expression | None = None) -> exp.Expression:
    """``list([DISTINCT] x [ORDER BY k…]) [FILTER (WHERE …)]`` with NULL values kept (DISTINCT keeps one) and the keys'
    order (ASC NULLS LAST unless stated)."""
    inner = node.this
    keys: list[exp.Ordered] = []
    if isinstance(inner, exp.Order):
        keys = list(inner.expressions)
        inner = inner.this
    distinct = isinstance(inner, exp.Distinct)
    if distinct:
        if keys or len(inner.expressions) != 1:
            raise NotPortable("list(DISTINCT … ORDER BY …) or over several expressions")
        inner = inner.expressions[0]
    fields = [f"'k{i}', {_sql(k.this)}" for i, k in enumerate(keys)] + [f"'v', {_sql(inner)}"]
    collected = f"COLLECT_LIST(NAMED_STRUCT({', '.join(fields)}))"
    if where is not None:
        collected += f" FILTER (WHERE {_sql(where.this)})"
    if not keys:
        values = f"TRANSFORM({collected}, s -> s.v)"
        return _spark(f"ARRAY_DISTINCT({values})" if distinct else values)
    compare = "0"
    for i, key in reversed(list(enumerate(keys))):
        desc = bool(key.args.get("desc"))
        nulls_first = key.args.get("nulls_first")
        nulls_first = bool(nulls_first)  # DuckDB's default: NULLS LAST, ascending or descending
        lt, gt = ("1", "-1") if desc else ("-1", "1")
        null_l, null_r = ("-1", "1") if nulls_first else ("1", "-1")
        compare = (f"CASE WHEN l.k{i} IS NULL AND r.k{i} IS NULL THEN {compare} WHEN l.k{i} IS NULL THEN {null_l} "
                   f"WHEN r.k{i} IS NULL THEN {null_r} WHEN l.k{i} < r.k{i} THEN {lt} WHEN l.k{i} > r.k{i} THEN {gt} "
                   f"ELSE {compare} END")
    return _spark(f"TRANSFORM(ARRAY_SORT({collected}, (l, r) -> {compare}), s -> s.v)")


def _first_or_last(node: exp.First | exp.Last, where: exp.Expression | None = None) -> exp.Expression:
    """``first(x ORDER BY k)`` / ``last(…)``: the first / last element of the ordered list (NULL values count, as in
    DuckDB); Spark's FIRST takes no ORDER BY."""
    ordered = _ordered_list(exp.ArrayAgg(this=node.this), where)
    return exp.Anonymous(this="ELEMENT_AT", expressions=[ordered, exp.Literal.number(1 if isinstance(node, exp.First) else -1)])


def _interval(node: exp.Interval) -> exp.Expression:
    """``INTERVAL (expr) unit`` with a computed amount (a literal amount translates as is)."""
    amount = node.this
    if isinstance(amount, exp.Literal):
        return node
    unit = _unit(node.args.get("unit"))
    value = _sql(amount)
    if unit in _YEAR_MONTH_UNITS:
        args = f"{value}, 0" if unit == "YEAR" else f"0, {value}"
        return _spark(f"MAKE_YM_INTERVAL({args})")
    if unit in _DAY_TIME_UNITS:
        slots = ["0"] * 4
        slots[_DAY_TIME_UNITS.index(unit)] = value
        return _spark(f"MAKE_DT_INTERVAL({', '.join(slots)})")
    raise NotPortable(f"a computed interval in {unit.lower()}s: only years, months, days, hours, minutes and seconds")


def _inline_windows(select: exp.Select) -> exp.Select:
    """``WINDOW w AS (…), wa AS (w ROWS …)`` + ``OVER wa``: each window written out where it is used (Spark
    resolves a named window but not one defined from another)."""
    named = {w.this.name.lower(): w for w in select.args.get("windows") or []}

    def resolved(name: str, trail: tuple[str, ...] = ()) -> dict[str, exp.Expression | None]:
        if name in trail or name not in named:
            raise NotPortable(f"window {name!r} is not defined in its SELECT" if name not in named else f"window {name!r} refers to itself")
        window = named[name]
        base = resolved(window.alias.lower(), (*trail, name)) if window.alias else {}
        own = {k: window.args.get(k) for k in ("partition_by", "order", "spec")}
        return {k: own[k] if own[k] else base.get(k) for k in own}

    def expand(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Window) and node.alias and node.alias.lower() in named and not isinstance(node.this, exp.Identifier):
            spec = resolved(node.alias.lower())
            for key, value in spec.items():
                if value and not node.args.get(key):
                    node.set(key, value.copy())
            node.set("alias", None)
        return node

    for expression in select.expressions:
        expression.transform(expand, copy=False)
    for clause in ("qualify", "order"):
        if select.args.get(clause):
            select.args[clause].transform(expand, copy=False)
    select.set("windows", None)
    return select


_UNTRANSLATED = {
    "hash": " (use marketing_assets.lib.dialect.stable_hash)",
    "struct_insert": "",
    "list_zip": " (Spark's arrays_zip names the fields after its arguments)",
    "list_reduce": " (Spark's aggregate needs a start value)",
    "list_apply": " (spell it list_transform)",
}


def _refuse(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() in _UNTRANSLATED:
        raise NotPortable(f"{node.name.lower()}() has no equal in Spark{_UNTRANSLATED[node.name.lower()]}")
    if isinstance(node, exp.Union) and node.args.get("by_name"):
        raise NotPortable("UNION … BY NAME: its columns depend on the sides' schemas (SparkConnection expands it)")
    return node


def _any_value(node: exp.Expression) -> exp.Expression:
    """DuckDB's ``any_value`` skips NULLs (SQLGlot marks it IGNORE NULLS, which Spark cannot parse before FILTER)."""
    return exp.Anonymous(this="ANY_VALUE", expressions=[_spark(_sql(node.this)), exp.true()])


def _by_row(node: exp.Expression) -> exp.Expression:
    """``arg_max(x, (a, b))``: DuckDB orders by the row value; Spark needs it spelled as a struct."""
    key = node.expression
    if isinstance(key, exp.Tuple):
        node = node.copy()
        node.set("expression", _spark(f"STRUCT({', '.join(_sql(e) for e in key.expressions)})"))
    return node


def _isfinite(node: exp.Anonymous) -> exp.Expression:
    (value,) = node.expressions
    x = _sql(value)
    return _spark(f"(CASE WHEN {x} IS NULL THEN NULL ELSE NOT ISNAN({x}) AND ABS({x}) != DOUBLE('infinity') END)")


def _element(node: exp.Bracket) -> exp.Expression:
    """``list[i]``: NULL outside the list in DuckDB, an error in Spark's ANSI mode; ``try_element_at`` is 1-based like
    DuckDB (the index is held as written, :class:`_DuckDBAsWritten`)."""
    (index,) = node.expressions
    return _spark(f"TRY_ELEMENT_AT({_sql(node.this)}, {_sql(index)})")


def _one_based_index(node: exp.ArrayFilter | exp.Transform) -> exp.Expression:
    """``list_filter`` / ``list_transform`` with a ``lambda x, i``: DuckDB's ``i`` counts from 1, Spark's from 0, so
    the body reads ``(i + 1)`` wherever DuckDB's reads ``i`` (a nested lambda that reuses the name is refused)."""
    fn = node.expression
    if not isinstance(fn, exp.Lambda) or len(fn.expressions) != 2:
        return node
    index = fn.expressions[1].name

    def shift(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Lambda) and n is not fn and any(p.name == index for p in n.expressions):
            raise NotPortable(f"a lambda inside list_filter/list_transform that reuses the index name {index!r}")
        if isinstance(n, (exp.Identifier, exp.Column)) and n.name == index and not isinstance(n.parent, exp.Column):
            return exp.Paren(this=exp.Add(this=exp.to_identifier(index), expression=exp.Literal.number(1)))
        return n

    node = node.copy()
    body = node.expression
    body.set("this", body.this.transform(shift).transform(_rewrite))  # the body's own constructs (not visited again)
    return node


def _list_slice(node: exp.Anonymous) -> exp.Expression:
    """``list_slice(l, begin, end)``: DuckDB's ends are 1-based and both included; Spark's ``slice`` takes a start and a
    length (and raises on a negative one, where DuckDB gives ``[]``). A step or a begin below 1 is refused."""
    if len(node.expressions) != 3:
        raise NotPortable("list_slice() with a step")
    items, begin, end = (_sql(e) for e in node.expressions)
    first = node.expressions[1]
    if isinstance(first, exp.Neg) or (isinstance(first, exp.Literal) and int(first.name) < 1):
        raise NotPortable("list_slice() from an index below 1 (DuckDB counts it from the end or clamps it)")
    return _spark(f"SLICE({items}, {begin}, GREATEST(({end}) - ({begin}) + 1, 0))")


def _recursive_unnest(node: exp.Explode) -> exp.Expression:
    """``unnest(l, recursive := true)`` of a list of structs: a row per element and a column per field, Spark's
    ``inline``. Only a list written out as structs of plain values is translated (a nested struct or list would be
    expanded further by DuckDB)."""
    items = node.this
    if not (isinstance(items, exp.Array) and items.expressions and all(isinstance(e, exp.Struct) for e in items.expressions)
            and not any(isinstance(f.expression, (exp.Struct, exp.Array)) for e in items.expressions for f in e.expressions
                        if isinstance(f, exp.PropertyEQ))):
        raise NotPortable("unnest(…, recursive := true) of anything but a written-out list of flat structs")
    return exp.Anonymous(this="INLINE", expressions=[_spark(_sql(items))])


_FMT_PLACEHOLDERS = {"{}": "%s", "{:,}": "%,d"}


def _format(node: exp.Format) -> exp.Expression:
    """DuckDB's ``format(template, args…)`` (fmt placeholders) as Spark's ``format_string`` (printf placeholders)."""
    def literal_text(e: exp.Expression) -> str | None:  # a string literal, or literals joined with ||
        if isinstance(e, exp.Literal) and e.is_string:
            return e.name
        if isinstance(e, exp.DPipe):
            parts = [literal_text(e.this), literal_text(e.expression)]
            return None if None in parts else "".join(parts)
        return None

    text = literal_text(node.this)
    if text is None:
        raise NotPortable("format() with a template that is not a string literal")
    out, i = [], 0
    while i < len(text):
        if text.startswith("{{", i):
            out.append("{")
            i += 2
        elif text[i] == "{":
            end = text.find("}", i)
            placeholder = text[i:end + 1] if end >= 0 else text[i:]
            if placeholder not in _FMT_PLACEHOLDERS:
                raise NotPortable(f"format() placeholder {placeholder!r} (only {', '.join(_FMT_PLACEHOLDERS)})")
            out.append(_FMT_PLACEHOLDERS[placeholder])
            i = end + 1
        elif text.startswith("}}", i):
            out.append("}")
            i += 2
        else:
            out.append("%%" if text[i] == "%" else text[i])
            i += 1
    args = ", ".join(_sql(a) for a in node.expressions)
    return _spark(f"FORMAT_STRING({exp.Literal.string(''.join(out)).sql(dialect=_Spark)}{', ' + args if args else ''})")


def _double_division(node: exp.Div) -> exp.Expression:
    """``a / b``: DOUBLE in DuckDB whatever the operands; Spark keeps DECIMAL operands DECIMAL (cut to its scale)."""
    return _spark(f"CAST({_sql(node.this)} AS DOUBLE) / ({_sql(node.expression)})")


def _rewrite(node: exp.Expression) -> exp.Expression:
    node = _refuse(node)
    if isinstance(node, exp.Format):
        return _format(node)
    if isinstance(node, exp.Div):
        return _double_division(node)
    if isinstance(node, exp.Explode) and any(
            isinstance(e, exp.PropertyEQ) and e.name.lower() == "recursive" for e in node.expressions or []):
        return _recursive_unnest(node)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "list_slice":
        return _list_slice(node)
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)  # a DuckDB planning hint with no Spark syntax; same node, so its body is still visited
        return node
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1 and not (
            isinstance(node.expressions[0], exp.Literal) and node.expressions[0].is_string):
        return _element(node)
    if isinstance(node, (exp.ArrayFilter, exp.Transform)):
        return _one_based_index(node)
    if isinstance(node, exp.ToDays):
        return _spark(f"MAKE_DT_INTERVAL({_sql(node.this)}, 0, 0, 0)")
    if isinstance(node, exp.Anonymous) and node.name.lower() == "isfinite":
        return _isfinite(node)
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(this="duckdb_jaro_winkler_similarity", expressions=[_spark(_sql(node.this)), _spark(_sql(node.expression))])
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return _any_value(node.this)
    if isinstance(node, exp.AnyValue):
        return _any_value(node)
    if isinstance(node, (exp.ArgMax, exp.ArgMin)) and isinstance(node.expression, exp.Tuple):
        return _by_row(node)
    if isinstance(node, exp.Select) and node.args.get("windows"):
        return _inline_windows(node)
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.TimeToUnix):
        return _epoch(node)
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg):
        return _ordered_list(node.this, node.expression)
    if isinstance(node, exp.Filter) and isinstance(node.this, (exp.First, exp.Last)) and isinstance(node.this.this, exp.Order):
        return _first_or_last(node.this, node.expression)
    if isinstance(node, exp.ArrayAgg):
        return _ordered_list(node)
    if isinstance(node, (exp.First, exp.Last)) and isinstance(node.this, exp.Order):
        return _first_or_last(node)
    if isinstance(node, exp.Interval):
        return _interval(node)
    return node


def to_spark(sql: str) -> str:
    """One DuckDB statement as Spark SQL, with the rules of this module applied. ``$name`` parameters become
    ``:name`` (pass them to ``spark.sql(..., args={...})``). Raises :class:`NotPortable`."""
    statements = [s for s in sqlglot.parse(sql, read=_DuckDBAsWritten) if s is not None]
    if len(statements) != 1:
        raise ValueError(f"to_spark translates one statement at a time, got {len(statements)}")
    tree = statements[0].transform(_rewrite)
    return tree.sql(dialect=_Spark)
