"""SQLAlchemy dialect ``hive+emoticana://``: PyHive's Hive dialect, fitted to Spark's answers.

The URL's backend is ``hive``, so Superset (and any tool that picks its SQL dialect by backend)
treats the server as Hive: SQL Lab and chart SQL keep backquoted identifiers.  The driver part
fixes what PyHive's ``hive://`` gets wrong against Spark:

- ``SHOW TABLES`` and ``SHOW VIEWS`` put the database first on Spark and the name first on Hive;
  this driver's cursors return the name first, as Hive does, so Superset's Hive support and
  every inspector list names, not ``default`` once per table;
- ``get_table_names`` lists tables only and ``get_view_names`` views only (Spark's
  ``SHOW TABLES`` lists both), persistent ones only;
- ``has_table`` asks ``SHOW TABLES ... LIKE`` instead of ``DESCRIBE <name>``: Spark describes a
  query given in place of a name, so pandas took ``read_sql("SELECT ...")`` for a table;
- result columns keep Spark's names whole: PyHive cuts a name at its last dot (Hive sends
  ``table.column``), and Spark names an unaliased expression after its text, so
  ``round(s.neutral, 3)`` became ``neutral, 3)`` and two such columns one name;
- ``get_columns`` knows Spark's types: PyHive's Hive map made ``timestamp_ntz`` a NullType (so
  not a time column for a dashboard), ``binary`` text and ``decimal(12,3)`` a bare DECIMAL;
  the default schema is the connection's database.

``emoticana://`` names the same dialect for SQLAlchemy URLs written before; Superset needs
``hive+emoticana://`` (with ``emoticana://`` it does not know the backend).
"""

from __future__ import annotations

import re

from pyhive import hive
from pyhive.sqlalchemy_hive import (
    HiveDecimal,
    HiveDialect,
    HiveExecutionContext,
    HiveTimestamp,
    _type_map,
)
from sqlalchemy import exc, text, types

#: Spark's column types that PyHive's map of Hive's lacks or gets wrong.
_SPARK_TYPES = {
    **_type_map,
    "timestamp_ntz": HiveTimestamp,
    "timestamp_ltz": HiveTimestamp,
    "binary": types.LargeBinary,
    "void": types.NullType,
}

#: Spark's listing statements whose first column is the database, not the name.
_LISTING = re.compile(r"^\s*SHOW\s+(TABLES|VIEWS)\b", re.IGNORECASE)


def _name_first(values):
    """Spark's (namespace, name, isTemporary) as Hive's order: (name, namespace, isTemporary)."""
    return (values[1], values[0], *values[2:]) if len(values) >= 2 else values


class EmoticanaCursor(hive.Cursor):
    """PyHive's cursor, with Spark's ``SHOW TABLES``/``SHOW VIEWS`` rows in Hive's column order."""

    _listing = False
    _raw_description = False

    def execute(self, operation, parameters=None, **kwargs):
        self._listing = bool(_LISTING.match(operation))
        return super().execute(operation, parameters, **kwargs)

    @property
    def description(self):
        described = super().description
        if self._listing and described and not self._raw_description:
            return _name_first(described)
        return described

    def _fetch_more(self):
        # PyHive decodes each column by its type in the server's order.
        before = len(self._data)
        self._raw_description = True
        try:
            super()._fetch_more()
        finally:
            self._raw_description = False
        if self._listing:
            fetched = [self._data.pop() for _ in range(len(self._data) - before)]
            self._data.extend(_name_first(row) for row in reversed(fetched))


class EmoticanaConnection(hive.Connection):
    def cursor(self, *args, **kwargs):
        return EmoticanaCursor(self, *args, **kwargs)


class EmoticanaExecutionContext(HiveExecutionContext):
    def _translate_colname(self, colname):
        return colname, None  # Spark never prefixes the table


class EmoticanaDialect(HiveDialect):
    name = "hive"
    driver = "emoticana"
    supports_statement_cache = False
    execution_ctx_cls = EmoticanaExecutionContext

    @classmethod
    def import_dbapi(cls):
        # Declared on this class, not only inherited: SQLAlchemy 2 looks in the dialect's own
        # class and otherwise takes PyHive's old dbapi() with a deprecation warning.
        return hive

    def connect(self, *cargs, **cparams):
        return EmoticanaConnection(*cargs, **cparams)

    def _in_schema(self, schema: str | None) -> str:
        return " IN " + self.identifier_preparer.quote_identifier(schema) if schema else ""

    def _persistent(self, connection, command: str, schema: str | None) -> list[str]:
        rows = connection.execute(text(command + self._in_schema(schema)))
        # (name, namespace, isTemporary): temporary views belong to one session, not the schema.
        return [row[0] for row in rows if len(row) < 3 or not row[2]]

    def get_view_names(self, connection, schema=None, **kw):
        return self._persistent(connection, "SHOW VIEWS", schema)

    def get_table_names(self, connection, schema=None, **kw):
        views = set(self.get_view_names(connection, schema))
        return [
            name
            for name in self._persistent(connection, "SHOW TABLES", schema)
            if name not in views
        ]

    def has_table(self, connection, table_name, schema=None, **kw):
        """Whether a persistent table or view of this name exists (never runs the name as SQL)."""
        if not table_name or "'" in table_name or "\\" in table_name:
            return False
        rows = connection.execute(
            text(f"SHOW TABLES{self._in_schema(schema)} LIKE '{table_name}'")
        ).fetchall()
        return any(row[0].lower() == table_name.lower() and not row[2] for row in rows)

    def _get_table_columns(self, connection, table_name, schema):
        if not self.has_table(connection, table_name, schema):
            raise exc.NoSuchTableError(f"{schema}.{table_name}" if schema else table_name)
        quote = self.identifier_preparer.quote_identifier
        name = f"{quote(schema)}.{quote(table_name)}" if schema else quote(table_name)
        return connection.execute(text(f"DESCRIBE TABLE {name}")).fetchall()

    def get_columns(self, connection, table_name, schema=None, **kw):
        columns = []
        for row in self._get_table_columns(connection, table_name, schema):
            name, declared = (row[0] or "").strip(), (row[1] or "").strip()
            if name.startswith("#"):
                break  # "# Partition Information" and what follows repeat columns or describe
            if not name:
                continue
            base = re.match(r"\w*", declared).group(0).lower()
            decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", declared, re.IGNORECASE)
            if decimal:
                kind = HiveDecimal(int(decimal.group(1)), int(decimal.group(2)))
            else:
                kind = _SPARK_TYPES.get(base, types.NullType)
            columns.append({"name": name, "type": kind, "nullable": True, "default": None})
        return columns

    def _get_default_schema_name(self, connection):
        return connection.execute(text("SELECT current_database()")).scalar()
