"""Where the Hive catalog lives: embedded Derby (one process) or a shared PostgreSQL database.

Derby under the state directory is the single-machine default: no set-up, but only one
process may open it.  A catalog several processes share (two servers, a Spark application
of the trainer's, a cluster's Thrift server) is Spark's built-in Hive 2.3 metastore client
talking to PostgreSQL through DataNucleus; the schema is created on first use
(``datanucleus.schema.autoCreateAll`` in ``conf/hive-site.xml``).

DataNucleus creates a table the first time its class is used.  On PostgreSQL that can happen
inside a metastore transaction (the first CREATE TABLE makes ``TBL_PRIVS``, whose foreign key
needs a lock on ``TBLS``, which that same transaction holds): the server then waits on itself
for ever.  So the client is told to manage every class of Hive's model when it starts
(``datanucleus.autoStartMechanism``), which creates the whole schema up front, outside any
transaction.

The password never appears on a command line: Spark passes its settings to the JVM as
``--conf`` arguments, so the value handed to Hive is Hadoop's ``${env.NAME}`` reference,
which the JVM resolves from its own environment when Hive reads it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from functools import cache
from pathlib import Path

from server.settings import (
    DEFAULT_METASTORE_USER,
    DEFAULT_POSTGRES_JDBC_JAR,
    ENV_METASTORE_PASSWORD,
    ENV_METASTORE_URL,
    ENV_POSTGRES_JDBC_JAR,
    KEY_DRIVER_CLASSPATH,
    KEY_METASTORE_DRIVER,
    KEY_METASTORE_PASSWORD,
    KEY_METASTORE_URL,
    KEY_METASTORE_USER,
    KEY_WAREHOUSE,
    METASTORE_CONNECT_TIMEOUT_S,
    Settings,
)
from udfs.errors import ConfigError

POSTGRES_PREFIX = "jdbc:postgresql://"
POSTGRES_DRIVER = "org.postgresql.Driver"
DERBY_PREFIX = "jdbc:derby:"
# A JVM start and the connect and login timeouts, with room for a loaded machine.
PROBE_TIMEOUT_S = 90
KEY_AUTOSTART = "spark.hadoop.datanucleus.autoStartMechanism"
KEY_AUTOSTART_CLASSES = "spark.hadoop.datanucleus.autoStartClassNames"


def configured_url(settings: Settings, spark_defaults: dict[str, str]) -> str | None:
    """The shared metastore URL from flag/environment over ``spark-defaults.conf``; None: Derby."""
    url = settings.metastore_url or spark_defaults.get(KEY_METASTORE_URL)
    if url is None or url.startswith(DERBY_PREFIX):
        return None
    if not url.startswith(POSTGRES_PREFIX):
        raise ConfigError(
            f"{ENV_METASTORE_URL} must be a PostgreSQL JDBC URL "
            f"(jdbc:postgresql://HOST:PORT/DATABASE), got {url!r}"
        )
    return url


def with_timeouts(url: str) -> str:
    """Bounded connect and login waits, so an unreachable database fails start-up instead of hanging
    it."""
    extra = [
        f"{key}={METASTORE_CONNECT_TIMEOUT_S}"
        for key in ("connectTimeout", "loginTimeout")
        if f"{key}=" not in url
    ]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


@cache
def metastore_model_classes() -> tuple[str, ...]:
    """The persistent classes of Hive's metastore model, from ``package.jdo`` in pyspark's
    hive-metastore jar.

    Embedded-only classes have no table of their own and are left out.
    """
    import pyspark

    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hive-metastore-*.jar"))
    if not jars:
        raise ConfigError("pyspark has no hive-metastore jar: the Hive catalog is unavailable")
    with zipfile.ZipFile(jars[-1]) as jar:
        root = ElementTree.fromstring(jar.read("package.jdo"))
    return tuple(
        f"{package.get('name')}.{cls.get('name')}"
        for package in root.iter("package")
        for cls in package.iter("class")
        if cls.get("embedded-only") != "true"
    )


def postgres_jar(environ=os.environ) -> Path:
    jar = Path(environ.get(ENV_POSTGRES_JDBC_JAR) or DEFAULT_POSTGRES_JDBC_JAR)
    if not jar.is_file():
        raise ConfigError(
            f"PostgreSQL JDBC driver {jar} not found: run `make postgres` "
            f"(apt-get install libpostgresql-jdbc-java) or set {ENV_POSTGRES_JDBC_JAR}"
        )
    return jar


def metastore_conf(
    settings: Settings, spark_defaults: dict[str, str], environ=os.environ
) -> dict[str, str]:
    """Spark settings for the catalog: nothing extra for Derby, the PostgreSQL client otherwise."""
    conf = {KEY_WAREHOUSE: str(settings.warehouse)} if settings.warehouse else {}
    url = configured_url(settings, spark_defaults)
    if url is None:
        return conf
    if ENV_METASTORE_PASSWORD not in environ:
        raise ConfigError(
            f"{ENV_METASTORE_PASSWORD} is not set: the PostgreSQL metastore {url} needs its "
            "password"
        )
    classpath = [spark_defaults.get(KEY_DRIVER_CLASSPATH, ""), str(postgres_jar(environ))]
    conf.update(
        {
            KEY_METASTORE_URL: with_timeouts(url),
            KEY_METASTORE_DRIVER: POSTGRES_DRIVER,
            KEY_METASTORE_USER: settings.metastore_user
            or spark_defaults.get(KEY_METASTORE_USER)
            or DEFAULT_METASTORE_USER,
            KEY_METASTORE_PASSWORD: "${env." + ENV_METASTORE_PASSWORD + "}",
            KEY_DRIVER_CLASSPATH: os.pathsep.join(p for p in classpath if p),
            KEY_AUTOSTART: "Classes",
            KEY_AUTOSTART_CLASSES: ",".join(metastore_model_classes()),
        }
    )
    return conf


def check_metastore(settings: Settings, spark_defaults: dict[str, str], environ=os.environ) -> None:
    """Log in to a PostgreSQL metastore once before Spark starts, so a bad URL or password is one
    clear line.

    Hive's own client retries for minutes and logs stack traces from inside the server's JVM.
    This probe is a short-lived JVM of its own, Hive's beeline (shipped in pyspark) with the
    same driver and timeouts, whose output is read here rather than shown.  The password goes
    through a file only this user can read, removed at once, never the command line.
    """
    url = configured_url(settings, spark_defaults)
    if url is None:
        return
    from server.preflight import java_executable

    conf = metastore_conf(settings, spark_defaults, environ)
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    descriptor, password_file = tempfile.mkstemp(prefix="emoticana-metastore-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(environ[ENV_METASTORE_PASSWORD])
        command = [
            java_executable(),
            "-cp",
            f"{jars}/*{os.pathsep}{postgres_jar(environ)}",
            "org.apache.hive.beeline.BeeLine",
            "-u",
            conf[KEY_METASTORE_URL],
            "-n",
            conf[KEY_METASTORE_USER],
            "-w",
            password_file,
            "-d",
            POSTGRES_DRIVER,
            "-e",
            "SELECT 1",
        ]
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"cannot use the metastore database {url}: no answer within {PROBE_TIMEOUT_S} s"
            ) from None
    finally:
        os.unlink(password_file)
    if result.returncode != 0:
        errors = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("Error: ")
        ]
        reason = (
            errors[0][len("Error: ") :]
            if errors
            else (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]
        )
        raise ConfigError(
            f"cannot use the metastore database {url}: {re.sub(r' [(]state=.*[)]$', '', reason)}"
        )
