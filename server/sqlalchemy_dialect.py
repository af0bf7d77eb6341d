"""SQLAlchemy dialect ``emoticana://``: PyHive's Hive dialect with Spark's table listing.

PyHive's ``hive://`` dialect reads the first column of ``SHOW TABLES``; Hive puts the
table name there, Spark the database name, so Superset and other inspectors would
list ``default`` once per table.  This dialect reads Spark's ``tableName`` column and
lists views with ``SHOW VIEWS``; everything else is PyHive's.  URL:
``emoticana://user@127.0.0.1:10000/default``.
"""

from __future__ import annotations

from pyhive.sqlalchemy_hive import HiveDialect
from sqlalchemy import text


class EmoticanaDialect(HiveDialect):
    name = "emoticana"

    def _names(self, connection, command: str, schema: str | None) -> list[str]:
        query = command + (
            " IN " + self.identifier_preparer.quote_identifier(schema) if schema else ""
        )
        names = []
        for row in connection.execute(text(query)):
            if (
                len(row) >= 3
            ):  # Spark: (namespace, name, isTemporary); temporary views are per session
                if not row[2]:
                    names.append(row[1])
            else:  # Hive: (name)
                names.append(row[0])
        return names

    def get_table_names(self, connection, schema=None, **kw):
        return self._names(connection, "SHOW TABLES", schema)

    def get_view_names(self, connection, schema=None, **kw):
        return self._names(connection, "SHOW VIEWS", schema)
