"""Every setting of the server: names of environment variables, Spark keys and defaults.

Precedence, highest first: command-line flag, environment variable, ``conf/``
file, built-in default.  Code reads keys from here, never from scattered literals.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from udfs.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

ENV_PORT = "EMOTICANA_PORT"
ENV_HOME = "EMOTICANA_HOME"
ENV_AUDIO_ROOTS = "EMOTICANA_AUDIO_ROOTS"
ENV_MASTER = "EMOTICANA_MASTER"
ENV_HOST = "EMOTICANA_HOST"
ENV_CONF_DIR = "EMOTICANA_CONF_DIR"
ENV_STRICT = "EMOTICANA_STRICT"
ENV_CONSOLE_PORT = "EMOTICANA_CONSOLE_PORT"
ENV_AUTH_FILE = "EMOTICANA_AUTH_FILE"
ENV_TLS_KEYSTORE = "EMOTICANA_TLS_KEYSTORE"
#: Only ever from the environment: a password on a command line is visible to every local user.
ENV_TLS_KEYSTORE_PASSWORD = "EMOTICANA_TLS_KEYSTORE_PASSWORD"
# Emoticana's own clients (emoticana sql, emoticana train) log in and verify TLS with these.
ENV_USER = "EMOTICANA_USER"
ENV_PASSWORD = "EMOTICANA_PASSWORD"
ENV_TLS_CA = "EMOTICANA_TLS_CA"
# Shared catalog (several servers and the trainer): metastore database, warehouse, models.
ENV_METASTORE_URL = "EMOTICANA_METASTORE_URL"
ENV_METASTORE_USER = "EMOTICANA_METASTORE_USER"
ENV_METASTORE_PASSWORD = "EMOTICANA_METASTORE_PASSWORD"
ENV_WAREHOUSE = "EMOTICANA_WAREHOUSE"
ENV_MODELS_DIR = "EMOTICANA_MODELS_DIR"
ENV_POSTGRES_JDBC_JAR = "EMOTICANA_POSTGRES_JDBC_JAR"
#: on (the default) or off: the SQL sandbox (server/java/org/emoticana/sandbox), see
#: docs/security.md, "Threat model".
ENV_SQL_SANDBOX = "EMOTICANA_SQL_SANDBOX"
#: Administrators' user names, comma-separated: with passwords on, they may change any table or
#: view and switch the server-wide model (docs/security.md, "Owners and administrators").
ENV_ADMINS = "EMOTICANA_ADMINS"
#: Another build of the server's jar (a branch's own, for its tests); default SERVER_JAR below.
ENV_SERVER_JAR = "EMOTICANA_SERVER_JAR"

DEFAULT_PORT = 10000
DEFAULT_CONSOLE_PORT = 10080
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HOME = ".emoticana"
DEFAULT_MASTER = "local[*]"
DEFAULT_CONF_DIR = PROJECT_ROOT / "conf"
SQL_INIT_DIR = PROJECT_ROOT / "sql" / "init"
SHIPPED_MODELS_DIR = PROJECT_ROOT / "models"
CONF_FILES = ("spark-defaults.conf", "hive-site.xml", "log4j2.properties")

DEFAULT_METASTORE_USER = "emoticana"
# Debian's libpostgresql-jdbc-java (make postgres installs it).
DEFAULT_POSTGRES_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
# Seconds a PostgreSQL metastore may take to accept a connection before start-up gives up.
METASTORE_CONNECT_TIMEOUT_S = 10

MIN_JAVA_MAJOR = 17
READY_TIMEOUT_S = 180.0

# On a cluster master: where the shipped code zip is built (under the state directory), and how
# long start-up waits for executors to register (until none has come for EXECUTOR_SETTLE_S).
CODE_ZIP_DIR = "pyfiles"
EXECUTOR_WAIT_S = 120.0
EXECUTOR_SETTLE_S = 4.0

# Spark and Hive keys Emoticana sets itself.
KEY_THRIFT_PORT = "spark.hadoop.hive.server2.thrift.port"
KEY_THRIFT_HOST = "spark.hadoop.hive.server2.thrift.bind.host"
KEY_WAREHOUSE = "spark.sql.warehouse.dir"
KEY_METASTORE_URL = "spark.hadoop.javax.jdo.option.ConnectionURL"
KEY_DRIVER_CLASSPATH = "spark.driver.extraClassPath"
KEY_DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
KEY_EXTRA_LISTENERS = "spark.extraListeners"
# Access: HiveServer2 authentication and TLS (Hive names; HiveConf reads them without the
# spark.hadoop. prefix).
HIVE_AUTHENTICATION = "hive.server2.authentication"
HIVE_CUSTOM_AUTH_CLASS = "hive.server2.custom.authentication.class"
HIVE_USE_SSL = "hive.server2.use.SSL"
HIVE_KEYSTORE_PATH = "hive.server2.keystore.path"
HIVE_KEYSTORE_PASSWORD = "hive.server2.keystore.password"
KEY_METASTORE_USER = "spark.hadoop.javax.jdo.option.ConnectionUserName"
KEY_METASTORE_PASSWORD = "spark.hadoop.javax.jdo.option.ConnectionPassword"
KEY_METASTORE_DRIVER = "spark.hadoop.javax.jdo.option.ConnectionDriverName"
KEY_PYSPARK_PYTHON = "spark.pyspark.python"
KEY_SQL_EXTENSIONS = "spark.sql.extensions"
# The SQL sandbox: the switch (conf/spark-defaults.conf), and the folders it lets SQL read and
# write, which the server derives and the Java side reads (SqlSandbox.KEY_READ_ROOTS,
# KEY_WRITE_ROOTS).
KEY_SQL_SANDBOX = "spark.emoticana.sql.sandbox"
KEY_SQL_READ_ROOTS = "spark.emoticana.sql.readRoots"
KEY_SQL_WRITE_ROOTS = "spark.emoticana.sql.writeRoots"
# With passwords on, owners of tables and views are recorded and checked, and these users are
# administrators (Owners.KEY_OWNERS, KEY_ADMINS in the Java sandbox).
KEY_SQL_OWNERS = "spark.emoticana.sql.owners"
KEY_SQL_ADMINS = "spark.emoticana.sql.admins"
SQL_SANDBOX_CLASS = "org.emoticana.sandbox.SqlSandbox"
#: Kills a task of the statement that holds the most slots when another waits for
#: ``spark.emoticana.scheduler.preemptAfter`` (conf/spark-defaults.conf).
SLOT_PREEMPTION_CLASS = "org.emoticana.scheduler.SlotPreemption"
#: Cancels the jobs a statement starts after it was cancelled, timed out or closed.
ENDED_STATEMENTS_CLASS = "org.emoticana.scheduler.EndedStatements"
#: The server's Java classes (password provider, SQL sandbox), built by ``make server-jar`` into the
#: virtual environment, unless EMOTICANA_SERVER_JAR names another build.
SERVER_JAR = Path(
    os.environ.get(ENV_SERVER_JAR)
    or Path(sys.prefix) / "share" / "emoticana" / "emoticana-server.jar"
).absolute()


@dataclass(frozen=True)
class Settings:
    port: int
    host: str
    home: Path
    master: str
    audio_roots: tuple[str, ...]
    conf_dir: Path
    extra_conf: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    #: Port of the browser console; 0 turns it off.
    console_port: int = DEFAULT_CONSOLE_PORT
    #: Password file of ``emoticana passwd``; set, it turns on password authentication.
    auth_file: Path | None = None
    #: Java keystore (JKS or PKCS12) with the server's key and certificate; set, it turns on TLS.
    tls_keystore: Path | None = None
    tls_keystore_password: str | None = field(default=None, repr=False)
    #: JDBC URL of a shared metastore database; None: the embedded Derby one under ``home``.
    metastore_url: str | None = None
    #: None: ``spark-defaults.conf``'s user, else DEFAULT_METASTORE_USER.
    metastore_user: str | None = None
    #: Hadoop path of the warehouse; None: ``home/warehouse``.
    warehouse: str | None = None
    #: Trained versions and the ACTIVE pointer; None: ``home/models``.
    models_home: Path | None = None
    #: The SQL sandbox on or off from a flag or the environment; None: ``spark-defaults.conf``, else
    #: on.
    sql_sandbox: bool | None = None
    #: User names that may change any table or view and switch the model (passwords on).
    admins: tuple[str, ...] = ()

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"

    @property
    def metastore_dir(self) -> Path:
        return self.home / "metastore_db"

    @property
    def warehouse_dir(self) -> Path | str:
        return self.warehouse or self.home / "warehouse"

    @property
    def default_audio_root(self) -> Path:
        return self.home / "audio"

    @property
    def models_dir(self) -> Path:
        """Where trained versions and the ACTIVE pointer live."""
        return self.models_home or self.home / "models"

    @property
    def model_roots(self) -> tuple[str, ...]:
        """Model store search path: trained versions first, then the shipped ones."""
        return (str(self.models_dir), str(SHIPPED_MODELS_DIR))

    @property
    def state_dirs(self) -> tuple[Path, ...]:
        """Directories under the state directory that must exist before Spark and Hive start."""
        dirs = [
            self.home / name for name in ("scratch", "scratch-local", "resources", "operation_logs")
        ] + [self.models_dir]
        if str(self.default_audio_root) in self.audio_roots:
            dirs.append(self.default_audio_root)
        return tuple(dirs)


def _port(value: str, source: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{source} must be a port number, got {value!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"{source} must be between 1 and 65535, got {port}")
    return port


def parse_conf_pairs(pairs: list[str] | None) -> dict[str, str]:
    conf: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf expects KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def load_settings(
    *,
    port: int | None = None,
    host: str | None = None,
    home: str | None = None,
    master: str | None = None,
    audio_roots: str | None = None,
    conf_dir: str | None = None,
    conf: list[str] | None = None,
    strict: bool | None = None,
    console_port: int | None = None,
    auth_file: str | None = None,
    tls_keystore: str | None = None,
    metastore_url: str | None = None,
    warehouse: str | None = None,
    models_dir: str | None = None,
    sql_sandbox: bool | None = None,
    admins: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Resolve the settings from flags (the keyword arguments) over the environment over
    defaults."""
    env = os.environ if environ is None else environ
    resolved_port = (
        port if port is not None else _port(env.get(ENV_PORT, str(DEFAULT_PORT)), ENV_PORT)
    )
    resolved_home = Path(home or env.get(ENV_HOME) or DEFAULT_HOME).expanduser().absolute()
    roots_text = audio_roots if audio_roots is not None else env.get(ENV_AUDIO_ROOTS)
    if roots_text is None:
        roots = (str(resolved_home / "audio"),)
    else:
        roots = tuple(
            str(Path(r).expanduser().absolute()) for r in roots_text.split(":") if r.strip()
        )
    return Settings(
        port=_port(str(resolved_port), "--port"),
        host=host or env.get(ENV_HOST) or DEFAULT_HOST,
        home=resolved_home,
        master=master or env.get(ENV_MASTER) or DEFAULT_MASTER,
        audio_roots=roots,
        conf_dir=Path(conf_dir or env.get(ENV_CONF_DIR) or DEFAULT_CONF_DIR).absolute(),
        extra_conf=parse_conf_pairs(conf),
        strict=strict if strict is not None else _flag(env.get(ENV_STRICT, ""), ENV_STRICT),
        console_port=_console_port(console_port, env),
        auth_file=_optional_path(auth_file or env.get(ENV_AUTH_FILE)),
        tls_keystore=_optional_path(tls_keystore or env.get(ENV_TLS_KEYSTORE)),
        tls_keystore_password=env.get(ENV_TLS_KEYSTORE_PASSWORD),
        metastore_url=metastore_url or env.get(ENV_METASTORE_URL) or None,
        metastore_user=env.get(ENV_METASTORE_USER) or None,
        warehouse=_warehouse(warehouse or env.get(ENV_WAREHOUSE)),
        models_home=_optional_path(models_dir or env.get(ENV_MODELS_DIR)),
        sql_sandbox=sql_sandbox
        if sql_sandbox is not None
        else _optional_flag(env.get(ENV_SQL_SANDBOX), ENV_SQL_SANDBOX),
        admins=_user_names(admins if admins is not None else env.get(ENV_ADMINS, "")),
    )


def sql_sandbox_on(settings: Settings, spark_defaults: dict[str, str]) -> bool:
    """Flag or environment, else ``spark.emoticana.sql.sandbox`` given with --conf or in
    spark-defaults.conf, else on."""
    if settings.sql_sandbox is not None:
        return settings.sql_sandbox
    if KEY_SQL_SANDBOX in settings.extra_conf:
        return _flag(settings.extra_conf[KEY_SQL_SANDBOX], f"--conf {KEY_SQL_SANDBOX}")
    value = spark_defaults.get(KEY_SQL_SANDBOX)
    return True if value is None else _flag(value, f"{KEY_SQL_SANDBOX} in spark-defaults.conf")


def sql_sandbox_roots(settings: Settings) -> dict[str, str]:
    """The folders the sandbox lets SQL read (audio roots and warehouse) and write (the warehouse).

    Comma-separated, since a warehouse URI (``hdfs://host:8020/...``) holds colons.
    """
    read = [*settings.audio_roots, str(settings.warehouse_dir)]
    for root in read:
        if "," in root:
            raise ConfigError(
                f"the SQL sandbox cannot use a folder whose name holds a comma: {root!r}"
            )
    # SQL reads every file under an audio root (a binaryFile table): none may hold the server's
    # own files, the metastore and its password hashes among them.
    private = {
        "the state directory (EMOTICANA_HOME)": settings.home,
        "the password file": settings.auth_file,
        "the TLS keystore": settings.tls_keystore,
    }
    home, own_audio = settings.home.resolve(), settings.default_audio_root.resolve()
    for root in settings.audio_roots:
        resolved_root = Path(root).resolve()
        for what, path in private.items():
            if path is not None and Path(path).resolve().is_relative_to(resolved_root):
                raise ConfigError(
                    f"{ENV_AUDIO_ROOTS} holds {root}, which holds {what} {path}: SQL could read "
                    "it through a binaryFile table; keep the audio roots apart from it"
                )
        if resolved_root.is_relative_to(home) and not resolved_root.is_relative_to(own_audio):
            raise ConfigError(
                f"{ENV_AUDIO_ROOTS} holds {root}, inside the state directory {settings.home}: "
                f"of it, only {settings.default_audio_root} may be an audio root"
            )
    return {KEY_SQL_READ_ROOTS: ",".join(read), KEY_SQL_WRITE_ROOTS: str(settings.warehouse_dir)}


def _user_names(value: str) -> tuple[str, ...]:
    """``alice, bob`` as ("alice", "bob"); a name with a space or a colon could never log in."""
    names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    for name in names:
        if any(c.isspace() or c == ":" for c in name):
            raise ConfigError(
                f"{ENV_ADMINS} must be user names separated by commas, got {name!r} in {value!r}"
            )
    return names


def _optional_path(value: str | None) -> Path | None:
    return Path(value).expanduser().absolute() if value and value.strip() else None


def _warehouse(value: str | None) -> str | None:
    """Any Hadoop path (``hdfs://...``, ``s3a://...``); a plain path is made absolute."""
    if not value:
        return None
    return (
        value
        if "://" in value or value.startswith("file:")
        else str(Path(value).expanduser().absolute())
    )


def _console_port(flag: int | None, env) -> int:
    if flag is not None:
        return 0 if flag == 0 else _port(str(flag), "--console-port")
    value = env.get(ENV_CONSOLE_PORT, str(DEFAULT_CONSOLE_PORT))
    return 0 if value.strip() == "0" else _port(value, ENV_CONSOLE_PORT)


def _optional_flag(value: str | None, source: str) -> bool | None:
    return None if value is None or not value.strip() else _flag(value, source)


def _flag(value: str, source: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{source} must be true or false, got {value!r}")
