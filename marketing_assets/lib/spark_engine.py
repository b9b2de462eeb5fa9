"""The project's SQL on Spark: a connection with the DuckDB methods the project calls, tables stored as Parquet.

No Dagster import. :class:`SparkConnection` takes the statements the assets already write for DuckDB
(``execute`` → ``df`` / ``fetchall`` / ``fetchone`` / ``fetchnumpy``, ``register``, ``executemany``) and runs
them on a Spark session, translating each with :func:`marketing_assets.lib.dialect.to_spark`:

- **Tables** ``"schema"."table"`` live as Parquet directories ``<root>/<schema>/<table>`` (a local path, HDFS or
  an object store URL, listed, moved and deleted through ``pyarrow.fs``), so every process and every Spark
  Connect client sees the same tables without a shared metastore. A reference is read through a temporary
  view ``schema__table`` over that directory.
- **Writes**: ``CREATE [OR REPLACE] TABLE … AS`` writes the result to a new directory and swaps it in (a
  statement that reads the table it replaces reads the old version); ``INSERT`` appends files; ``DELETE`` and
  ``UPDATE`` rewrite the table; ``DROP`` removes it. Temporary tables are cached DataFrames behind temp views.
- **UNION BY NAME** takes each side's columns from Spark's analysis of it and lines them up by name.
- **Catalogue**: ``information_schema.tables`` / ``.columns`` and ``DESCRIBE`` answer from the directories and
  their Parquet schemas, in DuckDB's column names.
- **No transactions**: ``BEGIN`` / ``COMMIT`` / ``ROLLBACK`` / ``CHECKPOINT`` / DuckDB ``SET`` and ``PRAGMA`` are
  accepted and do nothing; a table swap is the unit of atomicity (directory renames).
- **Scratch files**: :meth:`SparkConnection.scratch` is a directory under the root that every executor reads, for
  files a statement reads (ingestion's clean copies of landing files), removed afterwards.
- **Refused**, with :class:`marketing_assets.lib.dialect.NotPortable` naming the construct: what Spark cannot do as
  DuckDB does (``read_csv`` options other than the header or a clean file's fixed settings, views in a schema,
  ``COPY … FROM``, other file formats).
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlglot
from sqlglot import exp

from marketing_assets.lib.dialect import SPARK_CONF, SPARK_FUNCTIONS, NotPortable, to_spark

VIEW_SEPARATOR = "__"
SCRATCH_DIR = ".scratch"
"""Folder under the warehouse root holding :meth:`SparkConnection.scratch` directories (hidden: not a schema)."""
TEMP_SCHEMAS = {"temp", "main"}
"""DuckDB's names for the session's temporary objects (``temp._x``); on Spark they are temporary views."""
_NO_OPS = (exp.Transaction, exp.Commit, exp.Rollback, exp.Set, exp.Pragma)
_KEYWORD_NO_OPS = re.compile(r"^\s*(CHECKPOINT|FORCE\s+CHECKPOINT|INSTALL|LOAD)\b", re.IGNORECASE)


def spark_session(master: str | None = None, remote: str | None = None, app_name: str = "marketing_assets", conf: Mapping[str, str] | None = None):
    """A Spark session with the project's settings (:data:`marketing_assets.lib.dialect.SPARK_CONF`): Spark Connect
    when ``remote`` (``sc://host:15002``) is given, else a local session on ``master`` (default ``local[*]``)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    builder = builder.remote(remote) if remote else builder.master(master or "local[*]")
    settings = {**SPARK_CONF, "spark.sql.execution.arrow.pyspark.enabled": "true", **(conf or {})}
    if not remote:
        settings.setdefault("spark.ui.enabled", "false")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # local UDF workers import this project from this venv
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not remote:
        session.sparkContext.setLogLevel("ERROR")
    _register_functions(session)
    return session


def _register_functions(session) -> None:
    """The DuckDB functions Spark lacks (:data:`marketing_assets.lib.dialect.SPARK_FUNCTIONS`), as vectorised UDFs."""
    from pyspark.sql.functions import pandas_udf

    def binary(function):
        def vectorised(a: pd.Series, b: pd.Series) -> pd.Series:
            return pd.Series([function(x, y) for x, y in zip(a, b)], dtype="float64")
        return vectorised

    for name, (function, returns) in SPARK_FUNCTIONS.items():
        session.udf.register(name, pandas_udf(binary(function), returns))


class SparkResult:
    """The result of one statement, read the ways the project reads DuckDB results."""

    def __init__(self, frame=None, rows: list[tuple] | None = None, columns: Sequence[str] = ()):
        self._frame, self._rows, self._columns = frame, rows, list(columns)

    def _collected(self) -> list[tuple]:
        if self._rows is None:
            self._rows = [tuple(r) for r in self._frame.collect()] if self._frame is not None else []
        return self._rows

    def df(self) -> pd.DataFrame:
        """The rows as DuckDB's ``df()`` gives them: DATE and TIMESTAMP columns as ``datetime64[us]`` (Spark's
        ``toPandas`` gives ``datetime.date`` objects and nanoseconds, which print and serialise differently)."""
        if self._frame is not None and self._rows is None:
            frame = self._frame.toPandas()
            for field in self._frame.schema.fields:
                if field.dataType.typeName() in ("date", "timestamp", "timestamp_ntz") and field.name in frame.columns:
                    frame[field.name] = pd.to_datetime(frame[field.name]).astype("datetime64[us]")
            return frame
        return pd.DataFrame(self._collected(), columns=self._columns)

    def fetchall(self) -> list[tuple]:
        return list(self._collected())

    def fetchone(self) -> tuple | None:
        rows = self._collected()
        return rows[0] if rows else None

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        frame = self.df()
        return {c: frame[c].to_numpy() for c in frame.columns}


class SparkConnection:
    """A DuckDB-like connection over ``spark`` whose tables live under ``root`` (see the module docstring)."""

    engine = "spark"

    def __init__(self, spark, root: str | Path):
        self.spark = spark
        self.root = str(root).rstrip("/")
        self._temps: dict[str, Any] = {}  # temporary table name (lower case) -> cached DataFrame

    # ---------------------------------------------------------------------------------- storage

    def table_path(self, schema: str, table: str) -> str:
        return f"{self.root}/{schema}/{table}"

    def _fs(self, uri: str):
        """``(pyarrow filesystem, path)`` for a local path, ``file:``, ``hdfs://`` or object store URL: one way to list,
        move and delete whatever the warehouse root is."""
        from pyarrow import fs

        return fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri.removeprefix("file:")).resolve()))

    def _entries(self, uri: str) -> list:
        from pyarrow import fs

        filesystem, path = self._fs(uri)
        if filesystem.get_file_info(path).type != fs.FileType.Directory:
            return []
        return filesystem.get_file_info(fs.FileSelector(path))

    def _is_table(self, uri: str) -> bool:
        return any(e.is_file and e.base_name.endswith(".parquet") for e in self._entries(uri))

    def _exists(self, schema: str, table: str) -> bool:
        return self._is_table(self.table_path(schema, table))

    def _remove_dir(self, uri: str) -> bool:
        """Remove the directory ``uri``; whether there was one."""
        from pyarrow import fs

        filesystem, path = self._fs(uri)
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return False
        filesystem.delete_dir(path)
        return True

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """A new directory ``<root>/.scratch/<id>`` for files that statements read (every executor sees the warehouse
        root, not the driver's temporary folder); removed with its files on exit."""
        uri = f"{self.root}/{SCRATCH_DIR}/{uuid.uuid4().hex}"
        filesystem, path = self._fs(uri)
        filesystem.create_dir(path, recursive=True)
        try:
            yield uri
        finally:
            filesystem.delete_dir(path)

    def put_file(self, local: str | Path, uri: str) -> None:
        """Copy the driver's file ``local`` to ``uri`` (a path under :meth:`scratch`)."""
        from pyarrow import fs

        filesystem, path = self._fs(uri)
        fs.copy_files(str(Path(local).resolve()), path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=filesystem)

    def tables(self) -> list[tuple[str, str]]:
        """``(schema, table)`` of every stored table."""
        return sorted((s.base_name, t.base_name) for s in self._entries(self.root) if s.type.name == "Directory"
                      and not s.base_name.startswith(".") for t in self._entries(f"{self.root}/{s.base_name}")
                      if not t.base_name.startswith(".") and self._is_table(f"{self.root}/{s.base_name}/{t.base_name}"))

    def _write(self, frame, schema: str, table: str, mode: str = "replace") -> None:
        """Append files to a table, or write a new version next to it and swap it in by renaming directories (a
        statement that reads the table it replaces reads the old version until the swap)."""
        from pyarrow import fs

        target = self.table_path(schema, table)
        if mode == "append":
            frame.write.mode("append").parquet(target)
        else:
            filesystem, path = self._fs(target)
            parent = path.rsplit("/", 1)[0]
            staging, old = (f"{parent}/.{table}.{kind}{uuid.uuid4().hex}" for kind in ("", "old."))
            frame.write.parquet(self._uri(target, staging))
            replaced = filesystem.get_file_info(path).type != fs.FileType.NotFound
            if replaced:
                filesystem.move(path, old)
            filesystem.move(staging, path)
            if replaced:
                filesystem.delete_dir(old)
        self.spark.catalog.dropTempView(self._view(schema, table))

    @staticmethod
    def _uri(like: str, path: str) -> str:
        """``path`` (a filesystem path) as a URI of the same scheme as ``like``, for Spark's writer."""
        if "://" not in like:
            return path
        scheme, rest = like.split("://", 1)
        host = rest.split("/", 1)[0]
        return f"{scheme}://{path}" if path.startswith(host) else f"{scheme}://{host}{path}"

    @staticmethod
    def _view(schema: str, table: str) -> str:
        return f"{schema}{VIEW_SEPARATOR}{table}"

    # ---------------------------------------------------------------------------------- statements

    def execute(self, sql: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None) -> SparkResult:
        if _KEYWORD_NO_OPS.match(sql):
            return SparkResult()
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
        result = SparkResult()
        for tree in statements:
            result = self._statement(tree, parameters)
        return result

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.execute(_inline(sql, row))

    def cursor(self) -> SparkConnection:
        """A connection of its own on the same session and warehouse, as DuckDB's ``cursor()`` (the source checks recount
        landing files on one per thread): closing it drops only the temporary tables it created."""
        return SparkConnection(self.spark, self.root)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """``frame`` as the temporary view ``name``. A NaN in a float column is NULL, as DuckDB reads a pandas frame."""
        from pyspark.sql import functions as F

        df = self.spark.createDataFrame(frame) if len(frame.columns) else self.spark.range(0).drop("id")
        floats = [f.name for f in df.schema.fields if f.dataType.typeName() in ("double", "float")]
        if floats:
            df = df.select(*(F.when(~F.isnan(F.col(c)), F.col(c)).alias(c) if c in floats else F.col(c) for c in df.columns))
        self._temps[name.lower()] = df
        df.createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self._temps.pop(name.lower(), None)
        self.spark.catalog.dropTempView(name)

    def create_function(self, name: str, function, return_type: str = "string") -> None:
        """``name(a, b, …)`` in this session's SQL: ``function`` applied to each row's values (``None`` for NULL), as a
        vectorised UDF. Where DuckDB binds a secret into a macro through a temporary table, Spark gets a function
        whose closure holds it: shipped to the executors with the task, never written into SQL text."""
        from pyspark.sql.functions import pandas_udf

        def vectorised(*columns: pd.Series) -> pd.Series:
            rows = zip(*(c.astype(object).where(c.notna(), None) for c in columns))
            return pd.Series([function(*row) for row in rows], dtype=object)

        self.spark.udf.register(name, pandas_udf(vectorised, return_type))

    def drop_function(self, name: str) -> None:
        """Remove a function :meth:`create_function` registered."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"not a function name: {name!r}")
        self.spark.sql(f"DROP TEMPORARY FUNCTION IF EXISTS {name}")

    def close(self) -> None:
        for name in list(self._temps):
            self.spark.catalog.dropTempView(name)
        self._temps.clear()

    def _statement(self, tree: exp.Expression, parameters) -> SparkResult:
        if isinstance(tree, _NO_OPS):
            return SparkResult()
        if isinstance(tree, exp.Create):
            return self._create(tree, parameters)
        if isinstance(tree, exp.Drop):
            return self._drop(tree)
        if isinstance(tree, exp.Insert):
            return self._insert(tree, parameters)
        if isinstance(tree, exp.Delete):
            return self._delete(tree, parameters)
        if isinstance(tree, exp.Update):
            return self._update(tree, parameters)
        if isinstance(tree, exp.Describe):
            return self._describe(tree.this)
        if isinstance(tree, exp.Copy):
            return self._copy(tree, parameters)
        return SparkResult(self._query(tree, parameters))

    def _query(self, tree: exp.Expression, parameters):
        return self._run(self._union_by_name(self._resolve_tables(tree), parameters), parameters)

    def _union_by_name(self, tree: exp.Expression, parameters) -> exp.Expression:
        """``a UNION [ALL] BY NAME b``: the columns of both sides, by name in order of first appearance, NULL (cast to
        the other side's type) where a side lacks one, as DuckDB does. Each side's columns come from Spark's analysis
        of that side (with the statement's CTEs), which reads no data."""
        def scope(node: exp.Expression) -> exp.With | None:
            """The CTEs visible at ``node``: those of every enclosing WITH (of the WITH whose CTE holds ``node``, those
            before that CTE), an inner one shadowing an outer namesake."""
            found: dict[str, exp.CTE] = {}
            chain = []
            parent = node  # a set operation carries its own WITH
            while parent is not None:
                if parent.args.get("with_") is not None:
                    chain.append(parent.args["with_"])
                parent = parent.parent
            enclosing = set()
            walker = node
            while walker is not None:
                enclosing.add(id(walker))
                walker = walker.parent
            for with_ in reversed(chain):
                for cte in with_.expressions:
                    if id(cte) in enclosing:  # the CTE the node defines: it sees only the ones before it
                        break
                    found[cte.alias_or_name.lower()] = cte
            return exp.With(expressions=[c.copy() for c in found.values()]) if found else None

        while True:
            pending = [u for u in tree.find_all(exp.Union) if u.args.get("by_name")
                       and not any(v.args.get("by_name") for side in (u.this, u.expression) for v in side.find_all(exp.Union))]
            if not pending:
                return tree
            union = pending[0]
            ctes = scope(union)
            schemas = []
            for side in (union.this, union.expression):
                probe = side.copy()
                if ctes is not None and not probe.args.get("with_"):
                    probe.set("with_", ctes.copy())
                schemas.append({f.name: f.dataType.simpleString() for f in self._run(probe, parameters).schema.fields})
            names = list(dict.fromkeys([*schemas[0], *schemas[1]]))

            def side_select(side: exp.Expression, have: dict[str, str], other: dict[str, str]) -> exp.Expression:
                cols = ", ".join(_quote(n) if n in have else f"CAST(NULL AS {_duckdb_type(other[n])}) AS {_quote(n)}" for n in names)
                return sqlglot.parse_one(f"SELECT {cols} FROM ({side.sql(dialect='duckdb')}) AS __by_name", read="duckdb")

            union.set("this", side_select(union.this, schemas[0], schemas[1]))
            union.set("expression", side_select(union.expression, schemas[1], schemas[0]))
            union.set("by_name", None)

    def _run(self, tree: exp.Expression, parameters):
        sql = to_spark(tree.sql(dialect="duckdb"))
        if isinstance(parameters, Mapping):
            return self.spark.sql(sql, args=dict(parameters))
        return self.spark.sql(sql, args=list(parameters)) if parameters else self.spark.sql(sql)

    def _resolve_tables(self, tree: exp.Expression) -> exp.Expression:
        """Table references as temp views: ``"s"."t"`` → ``s__t`` over its Parquet directory;
        ``information_schema.*`` → the catalogue views."""
        def swap(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Table) and isinstance(node.this, (exp.ReadCSV, exp.ReadParquet)):
                view = self._file_view(node.this)
                alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(view))
                return exp.Table(this=exp.to_identifier(view), alias=alias)
            if not isinstance(node, exp.Table) or not node.name:
                return node
            schema = node.db
            if not schema:
                return node
            if schema.lower() in TEMP_SCHEMAS:  # DuckDB's temp.x / main.x: a temporary table or view of the session
                plain = node.copy()
                plain.set("db", None)
                plain.set("catalog", None)
                return plain
            if schema.lower() == "information_schema":
                view = self._catalogue_view(node.name.lower())
            else:
                view = self._view(schema, node.name)
                if not self._view_registered(view):
                    if not self._exists(schema, node.name):
                        raise LookupError(f"Table {schema}.{node.name} does not exist")
                    self.spark.read.parquet(self.table_path(schema, node.name)).createOrReplaceTempView(view)
            swapped = node.copy()  # keeps its alias, PIVOT/UNPIVOT and sample clauses
            swapped.set("this", exp.to_identifier(view))
            swapped.set("db", None)
            swapped.set("catalog", None)
            if not swapped.args.get("alias"):
                swapped.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
            return swapped

        return tree.transform(swap)

    def _file_view(self, reader: exp.Expression) -> str:
        """``read_csv('path', header = true, all_varchar = true)`` / ``read_parquet('path')`` as a temp view (CSV: every
        column as text, the header naming them; a clean file's fixed settings, see :meth:`_fixed_csv`; other options are
        refused rather than ignored)."""
        args = [reader.this] if reader.this is not None else []
        args += list(reader.expressions)
        paths = [a.name for a in args if isinstance(a, exp.Literal) and a.is_string]
        options = {a.this.name.lower(): a.expression for a in args if isinstance(a, exp.EQ)}
        if len(paths) != 1:
            raise NotPortable(f"{reader.sql(dialect='duckdb')}: one literal path is read on Spark")
        if isinstance(reader, exp.ReadCSV) and "columns" in options:
            frame = self._fixed_csv(paths[0], options)
        elif isinstance(reader, exp.ReadCSV):
            unknown = set(options) - {"header", "all_varchar"}
            if unknown or not all(isinstance(v, exp.Boolean) and v.this for v in options.values()):
                raise NotPortable(f"read_csv options {sorted(options)} on Spark: only header and all_varchar (true), or fixed settings")
            frame = self.spark.read.csv(paths[0], header=True)
        else:
            if options:
                raise NotPortable(f"read_parquet options {sorted(options)} on Spark")
            frame = self.spark.read.parquet(paths[0])
        view = f"__file_{uuid.uuid5(uuid.NAMESPACE_URL, reader.sql(dialect='duckdb')).hex}"
        frame.createOrReplaceTempView(view)
        return view

    def _fixed_csv(self, path: str, options: dict[str, exp.Expression]):
        """``read_csv(path, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"', columns = {'a':
        'VARCHAR', …})``: a clean CSV file (every record whole, quotes doubled inside quoted fields, which may span
        lines) read with DuckDB's meaning: the named text columns, the header line skipped, an empty unquoted or
        quoted field NULL; a record that does not fit fails the read (DuckDB's strict mode)."""
        def text(name: str, default: str | None = None) -> str | None:
            value = options.get(name)
            if value is None:
                return default
            if not (isinstance(value, exp.Literal) and value.is_string):
                raise NotPortable(f"read_csv {name} on Spark: a string literal")
            return value.name

        header, auto = options.get("header"), options.get("auto_detect")
        columns = options["columns"]
        unknown = set(options) - {"header", "auto_detect", "delim", "sep", "quote", "escape", "columns"}
        fields = [(e.this.name, e.expression) for e in columns.expressions if isinstance(e, exp.PropertyEQ)] if isinstance(columns, exp.Struct) else []
        delim, quote, escape = text("delim", text("sep", ",")), text("quote", '"'), text("escape", '"')
        if (unknown or not (isinstance(header, exp.Boolean) and header.this) or not (isinstance(auto, exp.Boolean) and not auto.this)
                or not fields or len(fields) != len(columns.expressions)
                or any(not (isinstance(t, exp.Literal) and t.name.upper() == "VARCHAR") for _, t in fields)
                or quote != '"' or escape != '"' or len(delim) != 1):
            raise NotPortable("read_csv with columns on Spark: header = true, auto_detect = false, one-character delim, "
                              "quote and escape '\"', every column VARCHAR")
        schema = ", ".join(f"`{name.replace('`', '``')}` STRING" for name, _ in fields)
        return self.spark.read.csv(path, schema=schema, header=True, sep=delim, quote='"', escape='"', multiLine=True,
                                   mode="FAILFAST")

    def _view_registered(self, view: str) -> bool:
        return bool(self.spark.catalog.tableExists(view))

    def _catalogue_view(self, name: str) -> str:
        if name == "tables":
            rows = [(s, t, "BASE TABLE") for s, t in self.tables()] + [("main", t, "LOCAL TEMPORARY") for t in self._temps]
            frame = pd.DataFrame(rows, columns=["table_schema", "table_name", "table_type"])
        elif name == "columns":
            rows = []
            for s, t in self.tables():
                fields = self.spark.read.parquet(self.table_path(s, t)).schema.fields
                rows += [(s, t, f.name, i + 1, _duckdb_type(f.dataType.simpleString())) for i, f in enumerate(fields)]
            frame = pd.DataFrame(rows, columns=["table_schema", "table_name", "column_name", "ordinal_position", "data_type"])
        else:
            raise LookupError(f"information_schema.{name} is not available on Spark")
        view = f"information_schema{VIEW_SEPARATOR}{name}"
        schema = ", ".join(f"{c} {'BIGINT' if c == 'ordinal_position' else 'STRING'}" for c in frame.columns)
        self.spark.createDataFrame(frame.values.tolist(), schema=schema).createOrReplaceTempView(view)
        return view

    def _target(self, table: exp.Table) -> tuple[str | None, str]:
        schema = table.db or None
        return (None if schema and schema.lower() in TEMP_SCHEMAS else schema), table.name

    def _create(self, tree: exp.Create, parameters) -> SparkResult:
        kind = (tree.args.get("kind") or "").upper()
        if kind == "SCHEMA":
            filesystem, path = self._fs(f"{self.root}/{tree.this.db or tree.this.name}")
            filesystem.create_dir(path, recursive=True)
            return SparkResult()
        if kind == "VIEW":
            target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            if target.db:
                raise NotPortable("views in a schema are not stored on Spark: create a table (or a temporary view)")
            self._query(tree.expression, parameters).createOrReplaceTempView(target.name)  # evaluated where it is read
            return SparkResult()
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        schema, name = self._target(target)
        exists = (self._exists(schema, name) if schema else name.lower() in self._temps)
        if exists and not tree.args.get("replace"):
            if tree.args.get("exists"):
                return SparkResult()
            raise ValueError(f"Table {schema + '.' if schema else ''}{name} already exists")
        if tree.expression is not None:
            frame = self._query(tree.expression, parameters)
        else:
            columns = ", ".join(f"`{c.name}` {c.args['kind'].sql(dialect='spark')}" for c in tree.this.expressions
                                if isinstance(c, exp.ColumnDef))
            frame = self.spark.createDataFrame([], schema=columns)
        temporary = any(isinstance(p, exp.TemporaryProperty) for p in (tree.args.get("properties") or exp.Properties()).expressions)
        if temporary or not schema:
            self._store_temp(name, frame)
        else:
            self._write(frame, schema, name)
        return SparkResult()

    def _store_temp(self, name: str, frame) -> None:
        cached = frame.localCheckpoint()  # materialised now: later writes to its inputs do not change it
        self._temps[name.lower()] = cached
        cached.createOrReplaceTempView(name)

    def _drop(self, tree: exp.Drop) -> SparkResult:
        for table in tree.args.get("tables") or [tree.this]:
            schema, name = self._target(table)
            if not schema:
                self._temps.pop(name.lower(), None)
                self.spark.catalog.dropTempView(name)
                continue
            if not self._remove_dir(self.table_path(schema, name)) and not tree.args.get("exists"):
                raise LookupError(f"Table {schema}.{name} does not exist")
            self.spark.catalog.dropTempView(self._view(schema, name))
        return SparkResult()

    def _current(self, schema: str | None, name: str):
        if not schema:
            return self._temps.get(name.lower()) or self.spark.table(name)  # a temporary table or view
        return self.spark.read.parquet(self.table_path(schema, name))

    def _replace(self, schema: str | None, name: str, frame) -> None:
        if schema:
            self._write(frame, schema, name)
        else:
            self._store_temp(name, frame)

    def _insert(self, tree: exp.Insert, parameters) -> SparkResult:
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        schema, name = self._target(target)
        current = self._current(schema, name)
        new = self._query(tree.expression, parameters)
        columns = [c.name for c in tree.this.expressions] if isinstance(tree.this, exp.Schema) else current.columns[: len(new.columns)]
        new = new.toDF(*columns)
        from pyspark.sql import functions as F

        filled = new.select(*[(F.col(f"`{c.name}`") if c.name in columns else F.lit(None)).cast(c.dataType).alias(c.name)
                              for c in current.schema.fields])
        if schema:
            self._write(filled, schema, name, mode="append")
        else:
            self._store_temp(name, current.unionByName(filled))
        return SparkResult()

    def _delete(self, tree: exp.Delete, parameters) -> SparkResult:
        schema, name = self._target(tree.this)
        where = tree.args.get("where")
        keep = "false" if where is None else f"NOT coalesce(({where.this.sql(dialect='duckdb')}), false)"
        table = tree.this.sql(dialect="duckdb")
        self._replace(schema, name, self._query(sqlglot.parse_one(f"SELECT * FROM {table} WHERE {keep}", read="duckdb"), parameters))
        return SparkResult()

    def _update(self, tree: exp.Update, parameters) -> SparkResult:
        schema, name = self._target(tree.this)
        where = tree.args.get("where")
        condition = "true" if where is None else f"coalesce(({where.this.sql(dialect='duckdb')}), false)"
        sets = {e.this.name.lower(): e.expression.sql(dialect="duckdb") for e in tree.expressions}
        columns = self._current(schema, name).columns
        select = ", ".join(f"CASE WHEN {condition} THEN {sets[c.lower()]} ELSE {_quote(c)} END AS {_quote(c)}"
                           if c.lower() in sets else _quote(c) for c in columns)
        table = tree.this.sql(dialect="duckdb")
        self._replace(schema, name, self._query(sqlglot.parse_one(f"SELECT {select} FROM {table}", read="duckdb"), parameters))
        return SparkResult()

    def _copy(self, tree: exp.Copy, parameters) -> SparkResult:
        """``COPY (query) TO 'file' (FORMAT parquet | csv, …)``: one file at that path, as DuckDB writes it (Spark
        writes a directory of parts: one part is written and moved into place)."""
        if tree.args.get("kind"):
            raise NotPortable("COPY … FROM on Spark: read the file with read_csv / read_parquet")
        files = tree.args.get("files") or []
        if len(files) != 1 or not isinstance(files[0], exp.Literal):
            raise NotPortable("COPY on Spark writes to one literal path")
        filesystem, target = self._fs(files[0].name)
        params = {p.this.name.upper(): p.args.get("expression") for p in tree.args.get("params") or []}
        fmt = (params.pop("FORMAT", None) or exp.var("parquet")).name.lower()
        source = tree.this.this if isinstance(tree.this, exp.Subquery) else exp.select("*").from_(tree.this)
        writer = self._query(source, parameters).coalesce(1).write.mode("overwrite")
        if fmt == "parquet":
            compression = params.pop("COMPRESSION", None)
            params.pop("ROW_GROUP_SIZE", None)  # Spark sizes row groups in bytes (parquet.block.size)
            writer = writer.option("compression", compression.name.lower() if compression is not None else "snappy")
        elif fmt == "csv":
            header = params.pop("HEADER", None)
            writer = writer.option("header", "true" if header is None or header.this in (True, "true", "TRUE") else "false")
            ts = params.pop("TIMESTAMPFORMAT", None)
            if ts is not None:
                pattern = _java_time_format(ts.name)
                writer = writer.option("timestampFormat", pattern).option("timestampNTZFormat", pattern)
            writer = writer.option("emptyValue", "").option("nullValue", "")
        else:
            raise NotPortable(f"COPY … (FORMAT {fmt}) on Spark: parquet or csv")
        if params:
            raise NotPortable(f"COPY options {sorted(params)} on Spark")
        parent, name = target.rsplit("/", 1)
        staging = f"{parent}/.{name}.{uuid.uuid4().hex}"
        getattr(writer, fmt)(self._uri(files[0].name, staging))
        try:
            parts = sorted(e.path for e in self._entries(self._uri(files[0].name, staging)) if e.base_name.startswith("part-"))
            if len(parts) != 1:
                raise RuntimeError(f"COPY to {name}: Spark wrote {len(parts)} parts, expected one")
            filesystem.move(parts[0], target)
        finally:
            filesystem.delete_dir(staging)
        return SparkResult()

    def _describe(self, target: exp.Expression) -> SparkResult:
        if isinstance(target, exp.Table) and target.db:
            frame = self._current(target.db, target.name)
        elif isinstance(target, exp.Table):
            frame = self._current(None, target.name)
        else:
            frame = self._query(target, None)
        rows = [(f.name, _duckdb_type(f.dataType.simpleString()), "YES" if f.nullable else "NO", None, None, None)
                for f in frame.schema.fields]
        return SparkResult(rows=rows, columns=["column_name", "column_type", "null", "key", "default", "extra"])


_SPARK_TO_DUCKDB = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT",
                    "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
                    "timestamp_ntz": "TIMESTAMP", "binary": "BLOB"}


def _duckdb_type(spark_type: str) -> str:
    """A Spark type's DuckDB spelling (``decimal(38,10)`` → ``DECIMAL(38,10)``, ``array<string>`` → ``VARCHAR[]``)."""
    if spark_type in _SPARK_TO_DUCKDB:
        return _SPARK_TO_DUCKDB[spark_type]
    if spark_type.startswith("decimal"):
        return spark_type.upper()
    if spark_type.startswith("array<") and spark_type.endswith(">"):
        return _duckdb_type(spark_type[6:-1]) + "[]"
    return spark_type.upper()


_STRFTIME_TO_JAVA = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss", "%f": "SSSSSS", "%T": "HH:mm:ss"}


def _java_time_format(strftime: str) -> str:
    """A DuckDB (strftime) timestamp format as Spark's (Java DateTimeFormatter) pattern; literal text quoted."""
    out, i = [], 0
    while i < len(strftime):
        token = strftime[i:i + 2]
        if token in _STRFTIME_TO_JAVA:
            out.append(_STRFTIME_TO_JAVA[token])
            i += 2
        elif token.startswith("%"):
            raise NotPortable(f"timestamp format {token} on Spark")
        else:
            out.append("'" + strftime[i] + "'" if strftime[i].isalpha() else strftime[i])
            i += 1
    return "".join(out)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _inline(sql: str, row: Sequence[Any]) -> str:
    """``?`` placeholders of ``sql`` replaced by the values of ``row`` as SQL literals (for ``executemany``)."""
    values = iter(row)

    def literal(_: re.Match) -> str:
        value = next(values)
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, (int, float, np.integer, np.floating)):
            return repr(value.item() if hasattr(value, "item") else value)
        return "'" + str(value).replace("'", "''") + "'"

    return re.sub(r"\?", literal, sql)
