"""Where the Hive catalog lives: embedded Derby (one process) or a shared PostgreSQL database.

Derby under the state directory is the single-machine default: no set-up, but only one
process may open it.  A catalog several processes share (two servers, a Spark application
of the trainer's, a cluster's Thrift server) is Spark's built-in Hive 2.3 metastore client
talking to PostgreSQL through DataNucleus; the schema is created on first use
(``datanucleus.schema.autoCreateAll`` in ``conf/hive-site.xml``).

The password never appears on a command line: Spark passes its settings to the JVM as
``--conf`` arguments, so the value handed to Hive is Hadoop's ``${env.NAME}`` reference,
which the JVM resolves from its own environment when Hive reads it.
"""

from __future__ import annotations

import os
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


def configured_url(settings: Settings, spark_defaults: dict[str, str]) -> str | None:
    """The shared metastore URL from flag/environment over ``spark-defaults.conf``; None: Derby."""
    url = settings.metastore_url or spark_defaults.get(KEY_METASTORE_URL)
    if url is None or url.startswith(DERBY_PREFIX):
        return None
    if not url.startswith(POSTGRES_PREFIX):
        raise ConfigError(f"{ENV_METASTORE_URL} must be a PostgreSQL JDBC URL (jdbc:postgresql://HOST:PORT/DATABASE), got {url!r}")
    return url


def with_timeouts(url: str) -> str:
    """Bounded connect and login waits, so an unreachable database fails start-up instead of hanging it."""
    extra = [f"{key}={METASTORE_CONNECT_TIMEOUT_S}" for key in ("connectTimeout", "loginTimeout") if f"{key}=" not in url]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + "&".join(extra)


def postgres_jar(environ=os.environ) -> Path:
    jar = Path(environ.get(ENV_POSTGRES_JDBC_JAR) or DEFAULT_POSTGRES_JDBC_JAR)
    if not jar.is_file():
        raise ConfigError(f"PostgreSQL JDBC driver {jar} not found: run `make postgres` "
                          f"(apt-get install libpostgresql-jdbc-java) or set {ENV_POSTGRES_JDBC_JAR}")
    return jar


def metastore_conf(settings: Settings, spark_defaults: dict[str, str], environ=os.environ) -> dict[str, str]:
    """Spark settings for the catalog: nothing extra for Derby, the PostgreSQL client otherwise."""
    conf = {KEY_WAREHOUSE: str(settings.warehouse)} if settings.warehouse else {}
    url = configured_url(settings, spark_defaults)
    if url is None:
        return conf
    if ENV_METASTORE_PASSWORD not in environ:
        raise ConfigError(f"{ENV_METASTORE_PASSWORD} is not set: the PostgreSQL metastore {url} needs its password")
    classpath = [spark_defaults.get(KEY_DRIVER_CLASSPATH, ""), str(postgres_jar(environ))]
    conf.update({
        KEY_METASTORE_URL: with_timeouts(url),
        KEY_METASTORE_DRIVER: POSTGRES_DRIVER,
        KEY_METASTORE_USER: settings.metastore_user or spark_defaults.get(KEY_METASTORE_USER) or DEFAULT_METASTORE_USER,
        KEY_METASTORE_PASSWORD: "${env.%s}" % ENV_METASTORE_PASSWORD,
        KEY_DRIVER_CLASSPATH: os.pathsep.join(p for p in classpath if p),
    })
    return conf


def check_metastore(spark, settings: Settings, spark_defaults: dict[str, str], environ=os.environ) -> None:
    """Log in to a PostgreSQL metastore once, before Hive does, so a bad URL or password is one clear line.

    Hive's own client retries for minutes and logs stack traces; this probe uses the same
    driver from the JVM, with the same bounded timeouts, and reports the server's reason.
    """
    url = configured_url(settings, spark_defaults)
    if url is None:
        return
    from py4j.protocol import Py4JJavaError

    jvm = spark.sparkContext._jvm
    properties = jvm.java.util.Properties()
    properties.setProperty("user", metastore_conf(settings, spark_defaults, environ)[KEY_METASTORE_USER])
    properties.setProperty("password", environ[ENV_METASTORE_PASSWORD])
    try:
        connection = jvm.org.postgresql.Driver().connect(with_timeouts(url), properties)
        connection.close()
    except Py4JJavaError as exc:
        reason = str(exc.java_exception.getMessage() or exc.java_exception.toString()).strip().splitlines()[0]
        raise ConfigError(f"cannot use the metastore database {url}: {reason}") from None
