"""Build the server's SparkSession: Hive catalog under the state directory, loopback sockets."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from server.auth import PROVIDER_CLASS, PROVIDER_JAR
from server.settings import (
    ENV_AUTH_FILE,
    ENV_TLS_KEYSTORE_PASSWORD,
    HIVE_AUTHENTICATION,
    HIVE_CUSTOM_AUTH_CLASS,
    HIVE_KEYSTORE_PASSWORD,
    HIVE_KEYSTORE_PATH,
    HIVE_USE_SSL,
    KEY_DRIVER_CLASSPATH,
    KEY_DRIVER_JAVA_OPTIONS,
    KEY_METASTORE_URL,
    KEY_THRIFT_HOST,
    KEY_THRIFT_PORT,
    KEY_WAREHOUSE,
    PROJECT_ROOT,
    Settings,
)


def state_conf(settings: Settings) -> dict[str, str]:
    """Spark settings derived from the state directory and bind address."""
    home = settings.home
    return {
        "spark.sql.catalogImplementation": "hive",
        KEY_WAREHOUSE: str(settings.warehouse_dir),
        KEY_METASTORE_URL: f"jdbc:derby:;databaseName={settings.metastore_dir};create=true",
        "spark.hadoop.hive.exec.scratchdir": str(home / "scratch"),
        "spark.hadoop.hive.exec.local.scratchdir": str(home / "scratch-local"),
        "spark.hadoop.hive.downloaded.resources.dir": str(home / "resources"),
        "spark.hadoop.hive.server2.logging.operation.log.location": str(home / "operation_logs"),
        KEY_THRIFT_PORT: str(settings.port),
        KEY_THRIFT_HOST: settings.host,
        "spark.driver.host": settings.host,
        "spark.driver.bindAddress": settings.host,
        "spark.ui.host": settings.host,
    }


def access_conf(settings: Settings, spark_defaults: dict[str, str]) -> dict[str, str]:
    """Thrift authentication and TLS settings, when turned on; the JVM must start with them."""
    conf: dict[str, str] = {}
    if settings.auth_file is not None:
        conf[f"spark.hadoop.{HIVE_AUTHENTICATION}"] = "CUSTOM"
        conf[f"spark.hadoop.{HIVE_CUSTOM_AUTH_CLASS}"] = PROVIDER_CLASS
        # HiveServer2 builds each login's provider from a fresh HiveConf, which sees only
        # hive-site.xml and system properties, not Spark's settings.
        conf[KEY_DRIVER_JAVA_OPTIONS] = f"-D{HIVE_CUSTOM_AUTH_CLASS}={PROVIDER_CLASS}"
        # The system class path, where HiveConf.getClass finds it (spark.jars would not do).
        classpath = spark_defaults.get(KEY_DRIVER_CLASSPATH, "")
        conf[KEY_DRIVER_CLASSPATH] = ":".join(p for p in (classpath, str(PROVIDER_JAR)) if p)
    if settings.tls_keystore is not None:
        conf[f"spark.hadoop.{HIVE_USE_SSL}"] = "true"
        conf[f"spark.hadoop.{HIVE_KEYSTORE_PATH}"] = str(settings.tls_keystore)
        # A Spark setting, so a spark-submit argument that local users can see in ps: the only
        # way that reached the Thrift service's HiveConf (see README, TLS).
        conf[f"spark.hadoop.{HIVE_KEYSTORE_PASSWORD}"] = settings.tls_keystore_password or ""
    return conf


def launch_environment(settings: Settings) -> None:
    """Environment the JVM and the Python workers inherit; must be set before Spark starts."""
    os.environ["SPARK_CONF_DIR"] = str(settings.conf_dir)
    os.environ["SPARK_LOCAL_IP"] = settings.host
    if settings.auth_file is not None:
        # Read by the Java provider at every login (server/java/.../PasswordFileAuthenticator.java).
        os.environ[ENV_AUTH_FILE] = str(settings.auth_file)
    # Settings hold it; the JVM and the Python workers (whose environment SQL can read
    # through reflect) need not.
    os.environ.pop(ENV_TLS_KEYSTORE_PASSWORD, None)
    # Workers run this very interpreter, so a server started from .venv/bin/python
    # needs no activated virtual environment.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) on every worker is noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


def build_spark(
    settings: Settings,
    spark_defaults: dict[str, str],
    *,
    app_name: str = "Emoticana",
    catalog: str = "hive",
    extra: dict[str, str] | None = None,
) -> SparkSession:
    """Start Spark with conf/ < state-derived settings < ``extra`` < --conf flags.

    ``catalog="in-memory"`` is for helper applications such as the trainer: the
    embedded Derby metastore admits only the server.
    """
    launch_environment(settings)
    conf = dict(state_conf(settings))
    if catalog != "hive":
        conf = {k: v for k, v in conf.items() if k.startswith(("spark.driver.", "spark.ui."))}
        conf["spark.sql.catalogImplementation"] = catalog
    for key in spark_defaults:
        # A value the operator wrote into conf/spark-defaults.conf is kept
        # unless a flag overrides it; spark-submit reads that file itself.
        conf.pop(key, None)
    if catalog == "hive":
        access = access_conf(settings, spark_defaults)
        java_opts = " ".join(o for o in (spark_defaults.get(KEY_DRIVER_JAVA_OPTIONS, ""), access.pop(KEY_DRIVER_JAVA_OPTIONS, "")) if o)
        conf[KEY_DRIVER_JAVA_OPTIONS] = f"{java_opts} -Dderby.system.home={settings.home}".strip()
        conf.update(access)
    conf.update(extra or {})
    conf.update(settings.extra_conf)
    builder = SparkSession.builder.master(settings.master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if catalog == "hive":
        builder = builder.enableHiveSupport()
    return builder.getOrCreate()
