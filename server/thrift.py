"""Run Spark's HiveServer2 (Thrift/JDBC) service inside this process's SparkSession."""

from __future__ import annotations

import functools
import os
import secrets
import ssl
import time
from typing import TYPE_CHECKING

from udfs.errors import ConfigError

if TYPE_CHECKING:  # the client side (emoticana sql, the console) runs without pyspark
    from pyspark.sql import SparkSession

#: The name the server's own probes log in with; no password file should hold it.
PROBE_USER = "emoticana-probe"


def start_thrift_server(spark: SparkSession):
    """Start the Thrift service on the session's context; returns the JVM server object.

    Spark's HiveThriftServer2 with Emoticana's Thrift service (server/java/org/emoticana/thrift):
    a user's error reaches the client as one line, and getFunctions lists each function once.
    """
    return spark._jvm.org.emoticana.thrift.ThriftServer.start(spark._jsparkSession)


def connect(
    host: str,
    port: int,
    *,
    username: str = "emoticana",
    password: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **kwargs,
):
    """A PyHive DB-API connection (the same client BI tools use through ``hive://``).

    ``password`` logs in to a server with authentication on (PyHive's ``auth="CUSTOM"``:
    SASL PLAIN); ``ssl_context`` speaks TLS to a server with a keystore.
    """
    from pyhive import hive

    if ssl_context is not None:
        transport = tls_transport(
            host, port, username=username, password=password, ssl_context=ssl_context
        )
        return hive.connect(thrift_transport=transport, username=username, **kwargs)
    if password is not None:
        kwargs.update(auth="CUSTOM", password=password)
    return hive.connect(host=host, port=port, username=username, **kwargs)


def client_options(environ: dict[str, str] | None = None) -> dict:
    """``connect`` keywords for Emoticana's own clients, from the environment.

    ``EMOTICANA_PASSWORD`` (with ``EMOTICANA_USER``, default: the login name) logs in to a
    server with authentication on; ``EMOTICANA_TLS_CA`` (a PEM certificate) speaks TLS and
    trusts that certificate.
    """
    import getpass

    from server.settings import ENV_PASSWORD, ENV_TLS_CA, ENV_USER

    env = os.environ if environ is None else environ
    options: dict = {}
    if env.get(ENV_PASSWORD):
        options.update(username=env.get(ENV_USER) or getpass.getuser(), password=env[ENV_PASSWORD])
    elif env.get(ENV_USER):
        options.update(username=env[ENV_USER])
    if env.get(ENV_TLS_CA):
        options.update(ssl_context=tls_client_context(env[ENV_TLS_CA]))
    return options


def tls_transport(
    host: str, port: int, *, username: str, password: str | None, ssl_context: ssl.SSLContext
):
    """HiveServer2's binary protocol (SASL PLAIN) over TLS, for
    ``hive.connect(thrift_transport=...)``.

    PyHive speaks TLS only in HTTP mode; the binary port with ``hive.server2.use.SSL`` needs
    its SASL transport over a TLS socket, which is all this builds.
    """
    import thrift_sasl
    from pyhive.hive import get_installed_sasl
    from thrift.transport.TSSLSocket import TSSLSocket

    socket = TSSLSocket(host, port, ssl_context=ssl_context, server_hostname=host)
    # Without authentication the server accepts any PLAIN password; PyHive sends "x" too.
    secret = "x" if password is None else password
    return thrift_sasl.TSaslClientTransport(
        lambda: get_installed_sasl(
            host=host, sasl_auth="PLAIN", username=username, password=secret
        ),
        "PLAIN",
        socket,
    )


def tls_client_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context trusting ``ca_file`` (PEM), or the system's CAs when None."""
    return ssl.create_default_context(cafile=ca_file)


def probe_context() -> ssl.SSLContext:
    """For the server's probe of its own port only: it checks the service answers and sends no
    secret."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def login_refused(exc: Exception) -> bool:
    """True when HiveServer2 answered a login by refusing the credentials (SASL PLAIN)."""
    return "Error validating the login" in str(exc)


def wait_until_ready(
    host: str,
    port: int,
    *,
    timeout_s: float,
    auth: bool = False,
    tls: bool = False,
    go_on=lambda: True,
) -> float:
    """Block until the Thrift service answers (or ``go_on()`` is false); returns the seconds
    waited.

    Without authentication the probe runs ``SELECT 1``. With it on, the server holds no
    password, so the probe logs in with a random one and counts the refusal as the answer:
    HiveServer2 checks credentials in the service itself, once it is serving.  The provider
    is checked before (``check_auth_provider``), so a refusal is not a broken provider.
    """
    start = time.monotonic()
    last_error: Exception | None = None
    credentials = {"username": PROBE_USER, "password": secrets.token_urlsafe(16)} if auth else {}
    while time.monotonic() - start < timeout_s:
        if not go_on():
            return time.monotonic() - start
        try:
            connection = connect(
                host, port, ssl_context=probe_context() if tls else None, **credentials
            )
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                return time.monotonic() - start
            finally:
                connection.close()
        except Exception as exc:  # the service is still starting: refused, reset, not yet open
            if auth and login_refused(exc):
                return time.monotonic() - start
            last_error = exc
            time.sleep(0.5)
    raise ConfigError(
        f"Thrift server on {host}:{port} did not answer within {timeout_s:.0f}s: {last_error}"
    )


def check_auth_provider(spark: SparkSession) -> None:
    """Load the provider as HiveServer2 will (class from a fresh HiveConf) and try a login.

    A refusal of a random user is the expected answer; anything else (class not found,
    password file unreadable by the JVM) stops start-up with the reason.
    """
    from server.auth import PROVIDER_CLASS
    from server.settings import HIVE_CUSTOM_AUTH_CLASS

    jvm = spark._jvm
    try:
        hive_conf = jvm.org.apache.hadoop.hive.conf.HiveConf()
        configured = hive_conf.get(HIVE_CUSTOM_AUTH_CLASS)
        if configured != PROVIDER_CLASS:
            raise ConfigError(
                f"HiveServer2 would use authentication class {configured!r}, not {PROVIDER_CLASS}"
            )
        hive_conf.getClassByName(configured)  # the class loader HiveServer2 will ask
        provider = functools.reduce(getattr, PROVIDER_CLASS.split("."), jvm)()
        provider.Authenticate(PROBE_USER, secrets.token_urlsafe(16))
    except ConfigError:
        raise
    except Exception as exc:
        message = str(exc)
        if "Invalid user name or password" in message:
            return
        java_line = next(
            (line for line in message.splitlines() if "Exception" in line),
            message.splitlines()[0] if message else "",
        )
        raise ConfigError(
            f"authentication provider {PROVIDER_CLASS} does not work: {java_line.strip()}"
        ) from None
    raise ConfigError(
        f"authentication provider {PROVIDER_CLASS} accepted a random password for {PROBE_USER}"
    )


def server_message(exc: Exception) -> str:
    """The server's own error message from a PyHive exception, without the Java stack."""
    response = exc.args[0] if exc.args else None
    message = getattr(getattr(response, "status", None), "errorMessage", None) or str(exc)
    return clean_message(message) or type(exc).__name__


def clean_message(message: str) -> str:
    """First meaningful line of a HiveServer2 error message (a UDF's cause rather than its
    traceback)."""
    message = (message or "").removeprefix("Error running query: ")
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    # A Python UDF error carries the worker's traceback; its last line names the cause.
    if "Traceback (most recent call last)" in message:
        causes = [line.strip() for line in lines if "Error: " in line or "Exception: " in line]
        if causes:
            return causes[-1].removesuffix(" SQLSTATE: 38000").strip()
    return lines[0]
