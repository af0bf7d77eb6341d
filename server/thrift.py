"""Run Spark's HiveServer2 (Thrift/JDBC) service inside this process's SparkSession."""

from __future__ import annotations

import time

from pyspark.sql import SparkSession

from udfs.errors import ConfigError


def start_thrift_server(spark: SparkSession):
    """Start the Thrift service on the session's context; returns the JVM server object."""
    jvm = spark._jvm
    return jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithContext(
        spark._jsparkSession.sqlContext()
    )


def connect(host: str, port: int, *, username: str = "emoticana", **kwargs):
    """A PyHive DB-API connection (the same client BI tools use through ``hive://``)."""
    from pyhive import hive

    return hive.connect(host=host, port=port, username=username, **kwargs)


def wait_until_ready(host: str, port: int, *, timeout_s: float) -> float:
    """Block until ``SELECT 1`` answers over JDBC; returns the seconds waited."""
    start = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - start < timeout_s:
        try:
            connection = connect(host, port)
            try:
                cursor = connection.cursor()
                cursor.execute("SELECT 1")
                cursor.fetchall()
                return time.monotonic() - start
            finally:
                connection.close()
        except Exception as exc:  # the service is still starting: refused, reset, not yet open
            last_error = exc
            time.sleep(0.5)
    raise ConfigError(f"Thrift server on {host}:{port} did not answer within {timeout_s:.0f}s: {last_error}")


def server_message(exc: Exception) -> str:
    """The server's own error message from a PyHive exception, without the Java stack."""
    response = exc.args[0] if exc.args else None
    message = getattr(getattr(response, "status", None), "errorMessage", None) or str(exc)
    return clean_message(message) or type(exc).__name__


def clean_message(message: str) -> str:
    """First meaningful line of a HiveServer2 error message (a UDF's cause rather than its traceback)."""
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
