"""Start-up repair of the warehouse after an unclean stop.

A server killed during ``CREATE TABLE ... AS SELECT`` never registered the table
(Spark writes the data first and creates the catalog entry last), so the
catalog is consistent, but the half-written directory stays under the warehouse.
Spark then refuses the same CTAS with LOCATION_ALREADY_EXISTS.  Before serving,
directories under a database location that no catalog table uses are moved
(never deleted) to ``$EMOTICANA_HOME/orphaned/<time>/``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession


def _local(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(unquote(parsed.path)).resolve()


def _described(rows, key: str) -> str | None:
    for row in rows:
        if row[0] == key:
            return row[1]
    return None


def catalog_locations(spark: SparkSession) -> tuple[set[Path], set[Path]]:
    """The local directories of every database and of every table or view in the catalog."""
    databases, tables = set(), set()
    for (database,) in spark.sql("SHOW DATABASES").collect():
        location = _described(spark.sql(f"DESCRIBE DATABASE `{database}`").collect(), "Location")
        if location and (path := _local(location)):
            databases.add(path)
        for row in spark.sql(f"SHOW TABLES IN `{database}`").collect():
            if row[2]:  # a temporary view: no directory
                continue
            described = spark.sql(f"DESCRIBE TABLE EXTENDED `{database}`.`{row[1]}`").collect()
            location = _described(described, "Location")
            if location and (path := _local(location)):
                tables.add(path)
    return databases, tables


def orphaned_table_dirs(warehouse: Path, databases: set[Path], tables: set[Path]) -> list[Path]:
    """Directories directly under a database location inside ``warehouse`` that hold no table."""
    warehouse = warehouse.resolve()
    used = databases | tables
    orphans = []
    for database in sorted(databases):
        if not database.is_dir() or not database.is_relative_to(warehouse):
            continue
        for child in sorted(database.iterdir()):
            if not child.is_dir() or child.name.startswith((".", "_")) or child in used:
                continue
            if any(path.is_relative_to(child) for path in used):
                continue  # holds another database or a table with an explicit location
            orphans.append(child)
    return orphans


def move_orphaned_table_dirs(spark: SparkSession, warehouse: Path, home: Path) -> list[Path]:
    """Move orphaned table directories out of the warehouse; returns where they went."""
    try:
        databases, tables = catalog_locations(spark)
    except Exception:  # a table that cannot be described: no directory is provably unused
        return []
    orphans = orphaned_table_dirs(warehouse, databases, tables)
    if not orphans:
        return []
    target = home / "orphaned" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    moved = []
    for orphan in orphans:
        destination = target / orphan.relative_to(warehouse.resolve())
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(orphan), str(destination))
        moved.append(destination)
    return moved
