"""Start-up: failures give one clear line on stderr and a non-zero exit, before Spark starts; the
test harness starts again on new ports when Spark took the one it found free."""

import fcntl
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server.cluster import free_port
from server.process import ServerProcess
from server.settings import (
    ENDED_STATEMENTS_CLASS,
    KEY_DRIVER_CLASSPATH,
    KEY_DRIVER_JAVA_OPTIONS,
    KEY_EXTRA_LISTENERS,
    KEY_SQL_EXTENSIONS,
    KEY_SQL_SANDBOX,
    SERVER_JAR,
    SLOT_PREEMPTION_CLASS,
    SQL_SANDBOX_CLASS,
    load_settings,
    sql_sandbox_on,
)
from server.spark import (
    KEY_COMMIT_PROTOCOL,
    KEY_JARS,
    KEY_METADATA_TTL,
    METADATA_TTL,
    OVERWRITE_ON_COMMIT_CLASS,
    spark_conf,
)
from tests.helpers import assert_one_line_failure, serve
from tests.processes import kill_tree, process_tree
from udfs.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_java_home_without_java(tmp_path):
    result = serve(tmp_path, env_overrides={"JAVA_HOME": str(tmp_path / "no-jdk")})
    assert_one_line_failure(result, "has no bin/java")


def test_java_not_on_path(tmp_path):
    env = {"PATH": str(tmp_path / "empty-bin"), "JAVA_HOME": ""}
    (tmp_path / "empty-bin").mkdir()
    result = serve(tmp_path, env_overrides=env)
    assert_one_line_failure(result, "Java not found")


def test_java_too_old(tmp_path):
    fake = tmp_path / "jdk11" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n")
    (fake / "java").chmod(0o755)
    result = serve(tmp_path, env_overrides={"JAVA_HOME": str(tmp_path / "jdk11")})
    assert_one_line_failure(result, "Java 11")


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--port", str(port))
    assert_one_line_failure(result, f"port {port} on 127.0.0.1 is already in use")


@pytest.mark.slow
def test_a_harness_start_that_loses_its_port_starts_again_and_keeps_what_it_printed(
    tmp_path, audio_root
):
    """Spark takes ports while it starts, so a free port found by the harness can be gone when the
    server binds it; the start is tried again, and what the lost attempt printed (start-up repairs
    say so there) stays in the server's output."""
    server = ServerProcess(home=tmp_path / "home", audio_roots=[audio_root], console_port=0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        lost = server.port
        server.start()
    try:
        assert server.port != lost
        assert f"port {lost} on 127.0.0.1 is already in use" in server.output()
        assert f"jdbc:hive2://127.0.0.1:{server.port}/" in server.output()
        cursor = server.connect().cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [(1,)]
    finally:
        assert server.stop() == 0


def test_malformed_conf(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    (conf / "hive-site.xml").write_text("<configuration><property>")
    result = serve(tmp_path, "--conf-dir", str(conf))
    assert_one_line_failure(result, "hive-site.xml is not well-formed XML")


def test_unreadable_conf(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    (conf / "log4j2.properties").unlink()
    (conf / "log4j2.properties").mkdir()  # unreadable as a file, even for root
    result = serve(tmp_path, "--conf-dir", str(conf))
    assert_one_line_failure(result, "cannot read conf file")


def test_bad_spark_defaults_line(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    with open(conf / "spark-defaults.conf", "a") as handle:
        handle.write("lonelykey\n")
    result = serve(tmp_path, "--conf-dir", str(conf))
    assert_one_line_failure(result, "spark-defaults.conf")


def test_state_directory_locked(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with open(home / "server.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        result = serve(tmp_path)
    assert_one_line_failure(result, "is locked by another Emoticana server (pid 4242)")


@pytest.mark.parametrize("where", ["--conf", "spark-defaults.conf"])
@pytest.mark.parametrize(
    "key,own",
    [
        ("spark.hadoop.hive.server2.thrift.port", "EMOTICANA_PORT"),
        ("spark.sql.warehouse.dir", "EMOTICANA_WAREHOUSE"),
    ],
)
def test_spark_settings_the_server_derives_are_refused(tmp_path, where, key, own):
    """Given as Spark settings, the server would probe one port while Spark bound another, or
    the sandbox would guard a warehouse no longer written to."""
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    args = ["--conf-dir", str(conf)]
    if where == "--conf":
        args += ["--conf", f"{key}=10001"]
    else:
        with open(conf / "spark-defaults.conf", "a") as handle:
            handle.write(f"{key} 10001\n")
    result = serve(tmp_path, *args)
    assert_one_line_failure(result, f"{key} is set with {where}: the server sets it from {own}")


def test_the_console_on_the_jdbc_port_is_refused(tmp_path):
    result = serve(tmp_path, "--port", "10599", "--console-port", "10599")
    assert_one_line_failure(result, "the console port")


def test_a_models_directory_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "models").write_text("")
    result = serve(tmp_path, env_overrides={"EMOTICANA_MODELS_DIR": str(tmp_path / "models")})
    assert_one_line_failure(result, f"cannot create directory {tmp_path / 'models'}")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["jvm", "warm-up"])
def test_sigterm_during_start_up_stops_soon_and_leaves_nothing_running(tmp_path, moment):
    """Start-up takes a minute or more; a stop (docker stop, a service manager) must not wait
    for it: not while Spark's JVM starts, nor while the workers warm up (a Spark job, then
    cancelled)."""
    for _ in range(3):  # a free port can be taken before the server binds it: another
        process, tree = start_until(tmp_path / "home", moment)
        if process is not None:
            break
    else:
        pytest.fail("three free ports were taken before the server bound them")
    try:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_tree(process.pid)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "emoticana: stopping on SIGTERM during start-up" in stderr
    assert "Emoticana ready" not in stdout
    deadline = time.monotonic() + 30
    while [pid for pid in tree if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in tree if Path(f"/proc/{pid}").exists()]


def start_until(home: Path, moment: str) -> tuple[subprocess.Popen | None, list[int]]:
    """``serve`` started and watched until Spark's JVM is among its processes (``jvm``) or
    the JVM has Python workers (``warm-up``); None if its port was taken meanwhile."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--home", str(home)]
        + ["--port", str(free_port()), "--console-port", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and process.poll() is None:
            tree = process_tree(process.pid)
            names = [command_name(pid) for pid in tree[1:]]
            if "java" in names and (moment == "jvm" or "python" in names[names.index("java") :]):
                return process, tree
            time.sleep(0.05)
    except BaseException:
        kill_tree(process.pid)
        raise
    if process.poll() is None:
        kill_tree(process.pid)
        pytest.fail(f"no {moment} within 180 s of start-up")
    stderr = process.communicate()[1]
    if "is already in use" in stderr:
        return None, []
    pytest.fail(f"serve ended before its {moment}: {stderr[-2000:]}")


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_bad_port_value(tmp_path):
    result = serve(tmp_path, env_overrides={"EMOTICANA_PORT": "ten"})
    assert_one_line_failure(result, "EMOTICANA_PORT must be a port number")


class TestSettings:
    def test_precedence_flag_over_env_over_default(self, tmp_path):
        env = {
            "EMOTICANA_PORT": "12000",
            "EMOTICANA_HOME": str(tmp_path),
            "EMOTICANA_AUDIO_ROOTS": "/a:/b",
        }
        assert load_settings(environ={}).port == 10000
        settings = load_settings(environ=env)
        assert (settings.port, settings.home, settings.audio_roots) == (
            12000,
            tmp_path,
            ("/a", "/b"),
        )
        assert load_settings(port=13000, environ=env).port == 13000
        assert settings.host == "127.0.0.1"
        assert settings.jdbc_url == "jdbc:hive2://127.0.0.1:12000/default"

    def test_default_audio_root_is_under_home(self, tmp_path):
        settings = load_settings(home=str(tmp_path), environ={})
        assert settings.audio_roots == (str(tmp_path / "audio"),)
        assert settings.default_audio_root in settings.state_dirs

    def test_conf_pairs(self):
        assert load_settings(conf=["a.b=1", "c = x=y"], environ={}).extra_conf == {
            "a.b": "1",
            "c": "x=y",
        }
        with pytest.raises(ConfigError, match="KEY=VALUE"):
            load_settings(conf=["novalue"], environ={})

    def test_operator_settings_add_to_the_servers_own_and_never_drop_the_sandbox(self, tmp_path):
        """--conf and spark-defaults.conf values of the settings the server adds to (extensions,
        listeners, class path, driver options) keep the server's: the SQL sandbox, its jar."""
        operator = {
            KEY_SQL_EXTENSIONS: "com.example.Extension",
            KEY_EXTRA_LISTENERS: "com.example.Listener",
            KEY_DRIVER_CLASSPATH: "/opt/extra.jar",
            KEY_DRIVER_JAVA_OPTIONS: "-Xss4m",
        }
        flags = [f"{key}={value}" for key, value in operator.items()]
        for defaults, conf_flags in [(operator, []), ({}, flags)]:
            settings = load_settings(home=str(tmp_path), conf=conf_flags, environ={})
            _, conf = spark_conf(settings, defaults)
            assert conf[KEY_SQL_EXTENSIONS].split(",") == [
                "com.example.Extension",
                SQL_SANDBOX_CLASS,
            ]
            assert conf[KEY_EXTRA_LISTENERS].split(",") == [
                "com.example.Listener",
                SLOT_PREEMPTION_CLASS,
                ENDED_STATEMENTS_CLASS,
            ]
            classpath = conf[KEY_DRIVER_CLASSPATH].split(":")
            assert classpath[0] == "/opt/extra.jar" and str(SERVER_JAR) in classpath
            assert conf[KEY_DRIVER_JAVA_OPTIONS].startswith("-Xss4m ")
            assert f"-Dderby.system.home={tmp_path}" in conf[KEY_DRIVER_JAVA_OPTIONS]
        off = load_settings(
            home=str(tmp_path), conf=[f"{KEY_SQL_SANDBOX}=false", *flags], environ={}
        )
        assert not sql_sandbox_on(off, {KEY_SQL_SANDBOX: "true"})
        assert spark_conf(off, {})[1][KEY_SQL_EXTENSIONS] == "com.example.Extension"

    def test_overwrites_commit_through_the_servers_protocol_unless_the_operator_names_one(
        self, tmp_path
    ):
        """INSERT OVERWRITE keeps the old rows until its job commits (test_server_sql.py checks
        it through SQL); on a cluster the executors get the protocol's jar."""
        _, conf = spark_conf(load_settings(home=str(tmp_path), environ={}), {})
        assert conf[KEY_COMMIT_PROTOCOL] == OVERWRITE_ON_COMMIT_CLASS
        assert conf[KEY_METADATA_TTL] == METADATA_TTL
        assert KEY_JARS not in conf  # in local mode the server is the executor
        cluster = load_settings(
            home=str(tmp_path),
            master="spark://127.0.0.1:7077",
            conf=[f"{KEY_JARS}=/opt/a.jar"],
            environ={},
        )
        assert spark_conf(cluster, {})[1][KEY_JARS].split(",") == ["/opt/a.jar", str(SERVER_JAR)]
        own = load_settings(
            home=str(tmp_path), conf=[f"{KEY_COMMIT_PROTOCOL}=com.example.Protocol"], environ={}
        )
        assert spark_conf(own, {})[1][KEY_COMMIT_PROTOCOL] == "com.example.Protocol"
        _, trainer = spark_conf(
            load_settings(home=str(tmp_path), environ={}), {}, catalog="in-memory"
        )
        assert KEY_COMMIT_PROTOCOL not in trainer
