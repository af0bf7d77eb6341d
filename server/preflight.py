"""Checks that run before Spark starts, so that a bad set-up fails with one clear line."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import IO

from server.auth import check_password_file
from server.settings import (
    CONF_FILES,
    ENV_ADMINS,
    ENV_CONSOLE_PORT,
    ENV_TLS_KEYSTORE_PASSWORD,
    KEY_THRIFT_HOST,
    KEY_THRIFT_PORT,
    KEY_WAREHOUSE,
    MIN_JAVA_MAJOR,
    SERVER_JAR,
    Settings,
    sql_sandbox_on,
)
from udfs.errors import ConfigError

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not os.access(candidate, os.X_OK):
            raise ConfigError(
                f"JAVA_HOME={java_home} has no bin/java; install Java {MIN_JAVA_MAJOR}+ or fix "
                "JAVA_HOME"
            )
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise ConfigError(
            f"Java not found: install a JDK {MIN_JAVA_MAJOR}+ (e.g. apt-get install "
            "openjdk-17-jdk-headless) or set JAVA_HOME"
        )
    return found


def check_java() -> int:
    """Return the Java major version, or raise ConfigError if it is missing or too old."""
    java = java_executable()
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run {java} -version: {exc}") from None
    match = _JAVA_VERSION.search(result.stderr + result.stdout)
    if not match:
        raise ConfigError(f"cannot tell the version of {java}: {result.stderr.strip()[:200]!r}")
    major = int(match.group(1))
    if major == 1:  # "1.8.0_392" style
        major = int(match.group(2) or 0)
    if major < MIN_JAVA_MAJOR:
        raise ConfigError(
            f"Java {major} at {java} is too old: Spark 4 needs Java {MIN_JAVA_MAJOR} or newer"
        )
    return major


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use; stop that process or choose another "
                    "port"
                ) from None
            raise ConfigError(f"cannot bind {host}:{port}: {exc.strerror}") from None


def read_spark_defaults(path: Path) -> dict[str, str]:
    """Parse a spark-defaults.conf file (``key value`` or ``key=value`` lines, ``#`` comments)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"\s+|=", line, maxsplit=1)
        if len(parts) != 2 or not parts[0]:
            raise ConfigError(f"{path}:{number}: expected 'key value', got {raw!r}")
        values[parts[0]] = parts[1].strip()
    return values


def check_conf_dir(conf_dir: Path) -> dict[str, str]:
    """Check every conf file is present, readable and well-formed; return spark-defaults."""
    if not conf_dir.is_dir():
        raise ConfigError(f"conf directory {conf_dir} does not exist")
    for name in CONF_FILES:
        path = conf_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read conf file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"conf file {path} is not UTF-8 text") from None
        if name.endswith(".xml"):
            try:
                ElementTree.fromstring(text)
            except ElementTree.ParseError as exc:
                raise ConfigError(f"conf file {path} is not well-formed XML: {exc}") from None
    return read_spark_defaults(conf_dir / "spark-defaults.conf")


def check_tls_keystore(keystore: Path, password: str | None) -> None:
    """The keystore must open with its password: keytool says so before the Thrift port would
    fail."""
    if password is None:
        raise ConfigError(f"TLS keystore {keystore} is set but {ENV_TLS_KEYSTORE_PASSWORD} is not")
    if not keystore.is_file():
        raise ConfigError(f"TLS keystore {keystore} does not exist or is not a file")
    keytool = Path(java_executable()).resolve().parent / "keytool"
    try:
        result = subprocess.run(
            [
                str(keytool),
                "-list",
                "-keystore",
                str(keystore),
                "-storepass:env",
                ENV_TLS_KEYSTORE_PASSWORD,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, ENV_TLS_KEYSTORE_PASSWORD: password},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run {keytool} to check the TLS keystore: {exc}") from None
    if result.returncode != 0:
        reason = (result.stdout + result.stderr).strip().splitlines()
        raise ConfigError(
            f"TLS keystore {keystore} does not open with {ENV_TLS_KEYSTORE_PASSWORD}: "
            f"{reason[-1] if reason else 'keytool failed'}"
        )
    if "PrivateKeyEntry" not in result.stdout:
        raise ConfigError(
            f"TLS keystore {keystore} holds no private key entry (the server's key and certificate)"
        )


#: Spark settings the server derives from its own: set as Spark settings they would leave the
#: server checking and probing one port or address while Spark binds another, or the SQL
#: sandbox's write root on a warehouse no longer used.
SERVER_SETTINGS = {
    KEY_THRIFT_PORT: "EMOTICANA_PORT (--port)",
    KEY_THRIFT_HOST: "EMOTICANA_HOST (--host)",
    KEY_WAREHOUSE: "EMOTICANA_WAREHOUSE (--warehouse)",
}


def check_server_settings(settings: Settings, spark_defaults: dict[str, str]) -> None:
    for key, own in SERVER_SETTINGS.items():
        for where, values in (
            ("--conf", settings.extra_conf),
            ("spark-defaults.conf", spark_defaults),
        ):
            if key in values:
                raise ConfigError(
                    f"{key} is set with {where}: the server sets it from {own}; use that"
                )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (an address or localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_access(settings: Settings, spark_defaults: dict[str, str]) -> None:
    """Password file, the server's jar (provider and SQL sandbox), TLS keystore: whichever are
    turned on."""
    if settings.auth_file is not None:
        check_password_file(settings.auth_file)
    if settings.admins and settings.auth_file is None:
        raise ConfigError(
            f"{ENV_ADMINS} (--admins) needs passwords on (--auth-file): without them there are "
            "no users to tell apart"
        )
    if settings.admins and not sql_sandbox_on(settings, spark_defaults):
        raise ConfigError(
            f"{ENV_ADMINS} (--admins) needs the SQL sandbox on: it is what checks owners and "
            "administrators"
        )
    if not SERVER_JAR.is_file():
        raise ConfigError(
            f"the server's jar {SERVER_JAR} (its Thrift service, SQL sandbox and authentication "
            "provider) is missing; build it with: make server-jar"
        )
    if settings.tls_keystore is not None:
        if settings.console_port and not is_loopback(settings.host):
            # The console speaks plain HTTP: its logins and results would cross the network in
            # the clear that TLS keeps the JDBC port from.
            raise ConfigError(
                f"with TLS on, the console (plain HTTP) cannot listen on {settings.host}: turn it "
                f"off with {ENV_CONSOLE_PORT}=0 (--console-port 0), or bind 127.0.0.1"
            )
        check_tls_keystore(settings.tls_keystore, settings.tls_keystore_password)


def lock_state_dir(home: Path) -> IO[str]:
    """Take the state directory's lock for the life of this process.

    flock is released by the kernel when the process dies, so a server killed
    with -9 leaves no lock behind to clean up by hand.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = open(home / "server.lock", "a+", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot use state directory {home}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise ConfigError(
            f"state directory {home} is locked by another Emoticana server (pid {owner})"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def preflight(settings: Settings) -> tuple[dict[str, str], IO[str]]:
    """All start-up checks, in the order a user would fix them; returns spark-defaults and the
    lock."""
    check_java()
    spark_defaults = check_conf_dir(settings.conf_dir)
    check_server_settings(settings, spark_defaults)
    check_access(settings, spark_defaults)
    if settings.console_port == settings.port:
        raise ConfigError(
            f"the console port ({ENV_CONSOLE_PORT}, --console-port) is the JDBC port "
            f"{settings.port}: give it another, or 0 for no console"
        )
    lock = lock_state_dir(settings.home)
    try:
        check_port_free(settings.host, settings.port)
        if settings.console_port:
            check_port_free(settings.host, settings.console_port)
    except ConfigError:
        lock.close()
        raise
    return spark_defaults, lock
