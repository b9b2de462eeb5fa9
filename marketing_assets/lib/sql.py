"""Quoting for SQL built as text: one string literal and one identifier rule for every SQL builder. No Dagster import."""


def literal(value: object) -> str:
    """A SQL string literal of ``value`` (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
