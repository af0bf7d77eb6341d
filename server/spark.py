"""Build the server's SparkSession: Hive catalog under the state directory, loopback sockets."""

from __future__ import annotations

import os
import re
import sys
import time

from pyspark.sql import SparkSession

from server.auth import PROVIDER_CLASS
from server.code_zip import build_code_zip, is_local_master
from server.metastore import metastore_conf
from server.settings import (
    CODE_ZIP_DIR,
    ENDED_STATEMENTS_CLASS,
    ENV_AUTH_FILE,
    ENV_TLS_KEYSTORE_PASSWORD,
    EXECUTOR_SETTLE_S,
    EXECUTOR_WAIT_S,
    HIVE_AUTHENTICATION,
    HIVE_CUSTOM_AUTH_CLASS,
    HIVE_KEYSTORE_PASSWORD,
    HIVE_KEYSTORE_PATH,
    HIVE_USE_SSL,
    KEY_DRIVER_CLASSPATH,
    KEY_DRIVER_JAVA_OPTIONS,
    KEY_EXTRA_LISTENERS,
    KEY_METASTORE_URL,
    KEY_PYSPARK_PYTHON,
    KEY_SQL_ADMINS,
    KEY_SQL_EXTENSIONS,
    KEY_SQL_OWNERS,
    KEY_THRIFT_HOST,
    KEY_THRIFT_PORT,
    KEY_WAREHOUSE,
    PROJECT_ROOT,
    SERVER_JAR,
    SLOT_PREEMPTION_CLASS,
    SQL_SANDBOX_CLASS,
    Settings,
    sql_sandbox_on,
    sql_sandbox_roots,
)
from udfs.errors import ConfigError
from udfs.model_cache import ENV_TF_THREADS


def state_conf(settings: Settings) -> dict[str, str]:
    """Spark settings derived from the state directory and bind address."""
    home = settings.home
    return {
        "spark.sql.catalogImplementation": "hive",
        KEY_WAREHOUSE: str(settings.warehouse_dir),
        KEY_METASTORE_URL: f"jdbc:derby:;databaseName={settings.metastore_dir};create=true",
        "spark.hadoop.hive.exec.scratchdir": str(home / "scratch"),
        "spark.hadoop.hive.exec.local.scratchdir": str(home / "scratch-local"),
        # One folder a session: HiveServer2 deletes the session's folder when it closes, and a
        # shared one made concurrent sessions fail to open ("Couldn't create directory").
        "spark.hadoop.hive.downloaded.resources.dir": str(home / "resources")
        + "/${hive.session.id}",
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
        # Spark's UI has no login and shows every user's SQL text and name to whoever reaches
        # its port: off when users have passwords, unless the operator turns it on.
        conf["spark.ui.enabled"] = "false"
    if settings.tls_keystore is not None:
        conf[f"spark.hadoop.{HIVE_USE_SSL}"] = "true"
        conf[f"spark.hadoop.{HIVE_KEYSTORE_PATH}"] = str(settings.tls_keystore)
        # A Spark setting, so a spark-submit argument that local users can see in ps: the only
        # way that reached the Thrift service's HiveConf (see docs/security.md, "TLS").
        conf[f"spark.hadoop.{HIVE_KEYSTORE_PASSWORD}"] = settings.tls_keystore_password or ""
    return conf


def sandbox_conf(settings: Settings, spark_defaults: dict[str, str]) -> dict[str, str]:
    """The SQL sandbox extension and its roots, unless turned off.

    See docs/security.md, "Threat model".
    """
    if not sql_sandbox_on(settings, spark_defaults):
        return {}
    extensions = [e for e in (spark_defaults.get(KEY_SQL_EXTENSIONS, ""), SQL_SANDBOX_CLASS) if e]
    conf = {
        KEY_SQL_EXTENSIONS: ",".join(dict.fromkeys(extensions)),
        # Spark's substitution reads ${env:...}, ${system:...} and every setting into SQL; the
        # sandbox's parser substitutes script variables (${hivevar:NAME}) alone.
        "spark.sql.variable.substitute": "false",
        **sql_sandbox_roots(settings),
        **owners_conf(settings),
    }
    if KEY_SQL_ADMINS in conf:
        # SET shows every user the settings: the administrators' names are the logins worth
        # guessing a password for.
        redaction = spark_defaults.get(KEY_REDACTION, SPARK_REDACTION_DEFAULT)
        conf[KEY_REDACTION] = f"{redaction}|(?i){re.escape(KEY_SQL_ADMINS)}"
    return conf


def scheduler_conf(spark_defaults: dict[str, str]) -> dict[str, str]:
    """The server's scheduler listeners (server/java/org/emoticana/scheduler/): one statement
    cannot hold every task slot while another waits, and an ended statement starts no job."""
    listeners = [
        name
        for name in (
            spark_defaults.get(KEY_EXTRA_LISTENERS, ""),
            SLOT_PREEMPTION_CLASS,
            ENDED_STATEMENTS_CLASS,
        )
        if name
    ]
    return {KEY_EXTRA_LISTENERS: ",".join(dict.fromkeys(listeners))}


def owners_conf(settings: Settings) -> dict[str, str]:
    """With passwords on: owners of tables and views, and the administrators (the sandbox checks
    them, see docs/security.md, "Owners and administrators")."""
    if settings.auth_file is None:
        return {}
    return {KEY_SQL_OWNERS: "true", KEY_SQL_ADMINS: ",".join(settings.admins)}


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
    # needs no activated virtual environment; on a cluster whose machines keep the
    # interpreter elsewhere, --conf spark.pyspark.python=PATH names theirs.
    os.environ["PYSPARK_PYTHON"] = settings.extra_conf.get(KEY_PYSPARK_PYTHON, sys.executable)
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) on every worker is noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = [str(PROJECT_ROOT)] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))


#: Settings the server adds its own values to, after the operator's (build_spark).
MERGED = frozenset(
    (KEY_SQL_EXTENSIONS, KEY_EXTRA_LISTENERS, KEY_DRIVER_CLASSPATH, KEY_DRIVER_JAVA_OPTIONS)
)

KEY_KILL_ON_FATAL_ERROR = "spark.executor.killOnFatalError.depth"
KEY_DAEMON_MODULE = "spark.python.daemon.module"
#: The server's Python daemon: it imports the UDF modules once for every worker it forks.
SERVER_DAEMON_MODULE = "udfs.worker_daemon"
KEY_PYSPARK_MEMORY = "spark.executor.pyspark.memory"
KEY_COMMIT_PROTOCOL = "spark.sql.sources.commitProtocolClass"
#: INSERT OVERWRITE removes a table's old files when its job commits, not before it starts, so a
#: statement that fails midway keeps the old rows (server/java/org/emoticana/storage/).
OVERWRITE_ON_COMMIT_CLASS = "org.emoticana.storage.OverwriteOnCommitProtocol"
KEY_JARS = "spark.jars"
#: Which settings' values SET, the logs and the UI hide; Spark's default first.
KEY_REDACTION = "spark.redaction.regex"
SPARK_REDACTION_DEFAULT = "(?i)secret|password|token|access[.]?key"
KEY_METADATA_TTL = "spark.sql.metadataCacheTTLSeconds"
#: How long a session keeps a table's list of files: files added to or removed from a table's
#: folder outside the server are seen within it (the server's own writes at once: ServiceHooks).
METADATA_TTL = "10s"
#: The server's Python worker memory limit unless spark-defaults.conf sets KEY_PYSPARK_MEMORY.
PYSPARK_WORKER_MEMORY = "4g"

#: Attempts of each task in local mode. Spark's ``local[N]`` gives a task one attempt, so a Python
#: worker killed mid-query (out of memory, by an operator) would fail the whole query; with
#: ``local[N,F]`` it costs a retry. Cluster masters retry by ``spark.task.maxFailures`` already.
LOCAL_TASK_ATTEMPTS = 4


def with_task_retries(master: str) -> str:
    """``local``/``local[N]``/``local[*]`` as ``local[N,LOCAL_TASK_ATTEMPTS]``; any other master
    (a cluster, or ``local[N,F]`` an operator chose) as given."""
    match = re.fullmatch(r"\s*local(?:\[(\*|\d+)\])?\s*", master)
    if match is None:
        return master
    return f"local[{match.group(1) or 1},{LOCAL_TASK_ATTEMPTS}]"


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
    code_zip = None
    if not is_local_master(settings.master):
        code_zip = build_code_zip(settings.home / CODE_ZIP_DIR)
    master, conf = spark_conf(
        settings, spark_defaults, catalog=catalog, extra=extra, code_zip=code_zip
    )
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if catalog == "hive":
        builder = builder.enableHiveSupport()
    spark = builder.getOrCreate()
    if code_zip is not None:
        spark.sparkContext.addPyFile(str(code_zip))
    return spark


def spark_conf(
    settings: Settings,
    spark_defaults: dict[str, str],
    *,
    catalog: str = "hive",
    extra: dict[str, str] | None = None,
    code_zip=None,
) -> tuple[str, dict[str, str]]:
    """The master and the settings :func:`build_spark` starts Spark with (besides the file,
    which spark-submit reads itself)."""
    # What the operator set: the file, and --conf over it. The settings the server adds to
    # (extensions, listeners, class path, Java options) keep the operator's values and its own:
    # --conf spark.sql.extensions=... must not drop the SQL sandbox.
    operator = {**spark_defaults, **settings.extra_conf}
    conf = dict(state_conf(settings))
    if catalog != "hive":
        conf = {k: v for k, v in conf.items() if k.startswith(("spark.driver.", "spark.ui."))}
        conf["spark.sql.catalogImplementation"] = catalog
    for key in spark_defaults:
        # A value the operator wrote into conf/spark-defaults.conf is kept
        # unless a flag overrides it; spark-submit reads that file itself.
        conf.pop(key, None)
    if catalog == "hive":
        access = access_conf(settings, operator)
        shared_catalog = metastore_conf(settings, operator)
        sandbox = sandbox_conf(settings, operator)
        scheduler = scheduler_conf(operator)
        java_opts = " ".join(
            o
            for o in (
                operator.get(KEY_DRIVER_JAVA_OPTIONS, ""),
                access.pop(KEY_DRIVER_JAVA_OPTIONS, ""),
            )
            if o
        )
        conf[KEY_DRIVER_JAVA_OPTIONS] = f"{java_opts} -Dderby.system.home={settings.home}".strip()
        # The shared catalog may add the PostgreSQL driver to the system class path.
        parts = (access, shared_catalog, sandbox, scheduler)
        added = [
            p for part in parts for p in part.pop(KEY_DRIVER_CLASSPATH, "").split(os.pathsep) if p
        ]
        for part in parts:
            conf.update(part)
    else:
        added = []
    # The server's jar always, on the system class path (where HiveConf.getClass finds the password
    # provider and a session its extension; spark.jars would not do): the Thrift service, the
    # sandbox, the provider, the preemption listener and the filter conf/log4j2.properties names.
    added.append(str(SERVER_JAR))
    own = [p for p in operator.get(KEY_DRIVER_CLASSPATH, "").split(os.pathsep) if p]
    conf[KEY_DRIVER_CLASSPATH] = os.pathsep.join(dict.fromkeys(own + added))
    if code_zip is not None:
        conf.update(executor_environment(code_zip))
    conf.update(extra or {})
    conf.update({k: v for k, v in settings.extra_conf.items() if not (k in MERGED and k in conf)})
    # The server retries failed tasks; the trainer does not (a TensorFlowOnSpark node that ran
    # twice would register twice).
    master = with_task_retries(settings.master) if catalog == "hive" else settings.master
    if (
        catalog == "hive"
        and is_local_master(master)
        and KEY_KILL_ON_FATAL_ERROR not in spark_defaults
    ):
        # In local mode the executor is the server: a task that runs out of heap (one huge
        # array) fails its query with OutOfMemoryError instead of stopping the SparkContext.
        conf.setdefault(KEY_KILL_ON_FATAL_ERROR, "0")
    if catalog == "hive" and KEY_COMMIT_PROTOCOL not in operator:
        conf[KEY_COMMIT_PROTOCOL] = OVERWRITE_ON_COMMIT_CLASS
        if not is_local_master(master):
            # Executors get the protocol with their tasks: they need its class too.
            jars = [j.strip() for j in operator.get(KEY_JARS, "").split(",") if j.strip()]
            conf[KEY_JARS] = ",".join(dict.fromkeys([*jars, str(SERVER_JAR)]))
    if catalog == "hive" and KEY_METADATA_TTL not in operator:
        conf[KEY_METADATA_TTL] = METADATA_TTL
    if catalog == "hive" and KEY_DAEMON_MODULE not in spark_defaults:
        conf.setdefault(KEY_DAEMON_MODULE, SERVER_DAEMON_MODULE)
    if catalog == "hive" and KEY_PYSPARK_MEMORY not in spark_defaults:
        # Each of the server's Python workers under an address-space limit: a row that would need
        # more fails its task with MemoryError instead of taking the machine's memory from the
        # server and the other workers. Not the trainer's: TensorFlow's multi-worker runtime maps
        # more address space than it uses.
        conf.setdefault(KEY_PYSPARK_MEMORY, PYSPARK_WORKER_MEMORY)
    return master, conf


def executor_environment(code_zip) -> dict[str, str]:
    """``spark.executorEnv.*`` for a cluster: executors do not inherit the driver's environment.

    The zip's bare file name on ``PYTHONPATH`` resolves in the executor's working
    directory, where Spark puts added files (see ``server.code_zip``).
    """
    env = {
        "PYTHONPATH": code_zip.name,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    if ENV_TF_THREADS in os.environ:
        env[ENV_TF_THREADS] = os.environ[ENV_TF_THREADS]
    return {f"spark.executorEnv.{name}": value for name, value in env.items()}


def executor_count(spark: SparkSession) -> int:
    """Executors registered with the driver (the driver itself is not one)."""
    return max(0, len(spark.sparkContext._jsc.sc().statusTracker().getExecutorInfos()) - 1)


def wait_for_executors(
    spark: SparkSession,
    *,
    minimum: int = 1,
    settle_s: float = EXECUTOR_SETTLE_S,
    timeout_s: float = EXECUTOR_WAIT_S,
    go_on=lambda: True,
) -> int:
    """On a cluster, wait until ``minimum`` executors registered and no new one came for
    ``settle_s`` (or until ``go_on()`` is false: the count so far is returned).

    Executors register after the application starts; warming the Python workers (or
    placing one TensorFlowOnSpark node per executor) before they are all there would
    miss some.  Returns the number of executors; raises ConfigError if too few came.
    """
    deadline = time.monotonic() + timeout_s
    count, changed = executor_count(spark), time.monotonic()
    while time.monotonic() < deadline and go_on():
        time.sleep(0.5)
        now = executor_count(spark)
        if now != count:
            count, changed = now, time.monotonic()
        if count >= minimum and time.monotonic() - changed >= settle_s:
            return count
    if count >= minimum or not go_on():
        return count
    master = spark.sparkContext.master
    raise ConfigError(
        f"only {count} of {minimum} executor(s) registered with {master} within {timeout_s:.0f}s: "
        "are the workers running, with free cores and memory (spark.cores.max, "
        "spark.executor.memory)?"
    )
