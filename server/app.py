"""The Emoticana server: Spark with the audio functions, behind Spark's Thrift/JDBC service."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from pyspark.sql import SparkSession

from server.code_zip import is_local_master
from server.functions import register_sql_functions
from server.metastore import check_metastore
from server.preflight import preflight
from server.settings import READY_TIMEOUT_S, SQL_INIT_DIR, Settings
from server.spark import build_spark, wait_for_executors
from server.sqlscript import read_script
from server.thrift import check_auth_provider, start_thrift_server, wait_until_ready
from udfs.errors import ConfigError, ModelError
from udfs.features import DEFAULT_FEATURES
from udfs.registry import UdfContext


def run_init_scripts(spark: SparkSession, directory=SQL_INIT_DIR) -> int:
    """Run ``sql/init/*.sql`` in name order; they must be idempotent (IF NOT EXISTS, OR REPLACE)."""
    count = 0
    for script in sorted(directory.glob("*.sql")):
        for number, statement in enumerate(read_script(script), start=1):
            try:
                spark.sql(statement).collect()
            except Exception as exc:
                first_line = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                raise ConfigError(
                    f"{script.name} statement {number} failed: {first_line}"
                ) from None
            count += 1
    return count


def warm_clip_bytes() -> bytes:
    """A one-second synthetic WAV clip, used to exercise the audio path before serving."""
    import io

    import numpy as np
    import soundfile as sf

    t = np.arange(16000) / 16000
    samples = 0.3 * np.sin(2 * np.pi * 220 * t) * np.hanning(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def warm_workers(spark: SparkSession, expressions: list[str]) -> None:
    """Start one Python worker per core and run each expression once in it.

    Workers are reused across tasks and queries, so the imports, JIT compilation and
    model loading paid here are not paid by the first user query.
    """
    from pyspark.sql import functions as F

    parallelism = spark.sparkContext.defaultParallelism
    frame = spark.range(parallelism, numPartitions=parallelism).select(
        F.lit(warm_clip_bytes()).alias("content")
    )
    frame.selectExpr(
        *[f"{expression} AS warm_{i}" for i, expression in enumerate(expressions)]
    ).collect()


def check_active_model(context: UdfContext) -> str:
    """The active model must exist, match the server's features and be intact before serving."""
    from udfs.model_store import check_model_file

    store = context.model_store
    reference = store.active_reference()
    if not store.versions():
        print(
            f"emoticana: warning: no model under {', '.join(store.roots)}; emotion() and "
            "emotion_scores() fail until one is trained (emoticana train)",
            file=sys.stderr,
            flush=True,
        )
        return reference
    try:
        check_model_file(store.resolve(reference))
    except ModelError as exc:
        raise ConfigError(f"active model {reference}: {exc}") from None
    return reference


def _worker_reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if "Error: " in line]
    return lines[-1] if lines else str(exc).strip().splitlines()[0]


def _cancel_jobs(spark: SparkSession) -> None:
    try:
        spark.sparkContext.cancelAllJobs()
    except Exception:
        pass  # stopping anyway: the job then ends with the context


class StartupStopped(Exception):
    """A stop was asked for (SIGTERM, Ctrl-C) while the server was starting."""


class EmoticanaServer:
    def __init__(self, settings: Settings, stop_requested: threading.Event | None = None):
        self.settings = settings
        # Start-up takes a minute or more (the JVM, the workers' warm-up, the ready probe); a stop
        # must not wait for all of it (docker stop kills after its grace period).  It is looked at
        # between the steps, never inside one: a step cut short (the JVM half launched) would
        # leave things running that stop() does not know about.
        self._stop_requested = stop_requested or threading.Event()
        self.spark: SparkSession | None = None
        self._thrift = None
        self._lock: IO[str] | None = None
        self.console = None
        self.startup_seconds: float | None = None

    def request_stop(self) -> None:
        """Ask for a stop (safe in a signal handler): start-up ends after its current step, a
        Spark job it runs (the workers' warm-up) cancelled; once serving, the owner stops."""
        self._stop_requested.set()
        spark = self.spark
        if self.startup_seconds is None and spark is not None:
            # From another thread: the main thread may be inside a Py4J call on its connection.
            threading.Thread(target=_cancel_jobs, args=(spark,), daemon=True).start()

    def _go_on(self) -> bool:
        return not self._stop_requested.is_set()

    def _step_done(self) -> None:
        if self._stop_requested.is_set():
            raise StartupStopped()

    def start(self) -> None:
        """Start Spark, the functions and the Thrift service; raises StartupStopped (with what
        was started still to stop()) when a stop was asked for meanwhile."""
        started = time.monotonic()
        spark_defaults, self._lock = preflight(self.settings)
        for directory in self.settings.state_dirs:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create directory {directory}: {exc.strerror}") from None
        check_metastore(self.settings, spark_defaults)
        # The model check needs no JVM: a corrupt or missing model file stops start-up before Spark
        # starts.
        context = UdfContext(
            self.settings.audio_roots,
            DEFAULT_FEATURES,
            self.settings.model_roots,
            strict=self.settings.strict,
        )
        active = check_active_model(context)
        self._step_done()
        self.spark = build_spark(self.settings, spark_defaults)
        self._step_done()
        if not is_local_master(self.settings.master):
            # so that the warm-up reaches every executor's cores
            wait_for_executors(self.spark, go_on=self._go_on)
            self._step_done()
        self.move_orphaned_table_dirs(spark_defaults)
        register_sql_functions(self.spark, context)
        run_init_scripts(self.spark)
        self._step_done()
        audio_checks = ["size(mfcc(content))", "audio_info(content).error", "ravdess_meta('x.wav')"]
        model_checks = (
            ["emotion_scores(mfcc(content)).angry", "emotion(content)"]
            if context.model_store.versions()
            else []
        )
        try:
            warm_workers(self.spark, audio_checks + model_checks)
        except Exception as exc:
            self._step_done()  # cancelled by request_stop()
            raise ConfigError(
                f"active model {active} failed to load in the Python workers: {_worker_reason(exc)}"
            ) from None
        self._step_done()
        auth, tls = self.settings.auth_file is not None, self.settings.tls_keystore is not None
        self._thrift = start_thrift_server(self.spark)
        if auth:
            check_auth_provider(self.spark)
        wait_until_ready(
            self.settings.host,
            self.settings.port,
            timeout_s=READY_TIMEOUT_S,
            auth=auth,
            tls=tls,
            go_on=self._go_on,
        )
        self._step_done()
        if self.settings.console_port:
            from server.console import Console

            self.console = Console(
                host=self.settings.host,
                port=self.settings.console_port,
                jdbc_host=self.settings.host,
                jdbc_port=self.settings.port,
                audio_roots=self.settings.audio_roots,
                auth=auth,
                tls=tls,
            )
            try:
                self.console.start()
            except OSError as exc:
                # Taken since the preflight checked it.
                raise ConfigError(
                    f"the console cannot listen on {self.settings.host}:"
                    f"{self.settings.console_port}: {exc.strerror}"
                ) from None
        self.startup_seconds = time.monotonic() - started

    def move_orphaned_table_dirs(self, spark_defaults: dict[str, str]) -> None:
        from server.metastore import configured_url
        from server.warehouse import move_orphaned_table_dirs

        if (
            configured_url(self.settings, spark_defaults) is not None
            or self.settings.warehouse is not None
        ):
            # A shared catalog and warehouse: a directory with no table yet may be another
            # server's CREATE TABLE AS SELECT in progress, so nothing is moved.
            return
        moved = move_orphaned_table_dirs(
            self.spark, self.settings.warehouse_dir, self.settings.home
        )
        if moved:
            print(
                f"emoticana: warning: moved {len(moved)} table "
                f"director{'y' if len(moved) == 1 else 'ies'} that no table uses (left by an "
                f"interrupted CREATE TABLE AS SELECT) to {self.settings.home / 'orphaned'}",
                file=sys.stderr,
                flush=True,
            )

    def alive(self) -> bool:
        try:
            self.spark._jvm.java.lang.System.currentTimeMillis()
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
            self.console = None
        if self._thrift is not None:
            try:
                self._thrift.stop()
            except Exception:
                pass  # the JVM may already be gone; nothing left to stop there
            self._thrift = None
        if self.spark is not None:
            try:
                self.spark.stop()
            except Exception:
                pass
            self.spark = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
