"""The shared catalog: a Hive metastore in a real PostgreSQL server, seen by every process.

Two servers with their own state directories, the same metastore database, warehouse and
models directory; a third process (a plain Spark application built the way the server and
the trainer build theirs) reads the same catalog.  PostgreSQL is a private server on a free
loopback port (``tests/pgserver.py``); ``make test`` installs it when missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from server.cluster import free_port
from server.metastore import metastore_conf, with_timeouts
from server.process import PROJECT_ROOT, ServerProcess
from server.settings import (
    ENV_METASTORE_PASSWORD,
    ENV_POSTGRES_JDBC_JAR,
    KEY_DRIVER_CLASSPATH,
    KEY_METASTORE_PASSWORD,
    KEY_METASTORE_URL,
    KEY_METASTORE_USER,
    KEY_WAREHOUSE,
    load_settings,
)
from tests.helpers import assert_one_line_failure
from tests.pgserver import PostgresServer, start_postgres
from udfs.errors import ConfigError

PG_URL = "jdbc:postgresql://127.0.0.1:5432/emoticana"


def test_derby_stays_the_default(tmp_path):
    settings = load_settings(home=str(tmp_path), environ={})
    assert metastore_conf(settings, {}, environ={}) == {}
    assert settings.models_dir == tmp_path / "models"


def test_postgres_conf_keeps_the_password_off_the_command_line(tmp_path):
    jar = tmp_path / "postgresql.jar"
    jar.write_bytes(b"")
    environ = {ENV_METASTORE_PASSWORD: "s3cret", ENV_POSTGRES_JDBC_JAR: str(jar)}
    settings = load_settings(
        home=str(tmp_path), metastore_url=PG_URL, warehouse=str(tmp_path / "wh"), environ={}
    )
    conf = metastore_conf(settings, {KEY_DRIVER_CLASSPATH: "/opt/other.jar"}, environ=environ)
    assert "s3cret" not in json.dumps(conf)
    assert conf[KEY_METASTORE_PASSWORD] == "${env." + ENV_METASTORE_PASSWORD + "}"
    assert conf[KEY_METASTORE_URL] == PG_URL + "?connectTimeout=10&loginTimeout=10"
    assert conf[KEY_METASTORE_USER] == "emoticana"
    assert conf[KEY_DRIVER_CLASSPATH] == f"/opt/other.jar:{jar}"
    assert conf[KEY_WAREHOUSE] == str(tmp_path / "wh")
    # The whole schema at start-up: a table created lazily inside a transaction deadlocks on
    # PostgreSQL.
    autostart = conf["spark.hadoop.datanucleus.autoStartClassNames"].split(",")
    assert conf["spark.hadoop.datanucleus.autoStartMechanism"] == "Classes"
    assert {"MDatabase", "MTable", "MTablePrivilege", "MFunction"} <= {
        name.rsplit(".", 1)[1] for name in autostart
    }
    assert (
        "org.apache.hadoop.hive.metastore.model.MFieldSchema" not in autostart
    )  # embedded only: no table


def test_timeouts_are_not_duplicated():
    assert (
        with_timeouts(PG_URL + "?ssl=true&connectTimeout=3")
        == PG_URL + "?ssl=true&connectTimeout=3&loginTimeout=10"
    )


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        (
            "jdbc:mysql://127.0.0.1/x",
            {ENV_METASTORE_PASSWORD: "x"},
            "must be a PostgreSQL JDBC URL",
        ),
        (PG_URL, {}, f"{ENV_METASTORE_PASSWORD} is not set"),
        (
            PG_URL,
            {ENV_METASTORE_PASSWORD: "x", ENV_POSTGRES_JDBC_JAR: "/nonexistent/pg.jar"},
            "make postgres",
        ),
    ],
)
def test_bad_metastore_settings(tmp_path, url, environ, expected):
    settings = load_settings(home=str(tmp_path), metastore_url=url, environ={})
    with pytest.raises(ConfigError, match=expected):
        metastore_conf(settings, {}, environ=environ)


# --- against a real PostgreSQL server ------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> PostgresServer:
    server = start_postgres(free_port())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shared")
    return {"warehouse": root / "warehouse", "models": root / "models"}


def shared_args(postgres: PostgresServer, shared_dirs) -> list[str]:
    return [
        "--metastore-url",
        postgres.jdbc_url,
        "--warehouse",
        str(shared_dirs["warehouse"]),
        "--models-dir",
        str(shared_dirs["models"]),
    ]


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory, postgres, shared_dirs, audio_root):
    """Server A, then server B (A creates the metastore schema first)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_METASTORE_PASSWORD, postgres.password)
        patch.setenv("EMOTICANA_METASTORE_USER", postgres.user)
        servers = []
        try:
            for name in ("a", "b"):
                servers.append(
                    ServerProcess(
                        home=tmp_path_factory.mktemp(f"home-{name}"),
                        audio_roots=[audio_root],
                        extra_args=shared_args(postgres, shared_dirs),
                    ).start()
                )
            yield servers
        finally:
            for server in servers:
                server.stop()


def rows(server: ServerProcess, sql: str) -> list[tuple]:
    connection = server.connect()
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


@pytest.mark.slow
def test_tables_and_views_are_shared(two_servers, postgres):
    a, b = two_servers
    rows(a, "CREATE TABLE shared_calls (path STRING, n INT) USING parquet")
    rows(a, "INSERT INTO shared_calls VALUES ('x.wav', 1), ('y.wav', 2), ('z.wav', 3)")
    rows(a, "CREATE VIEW shared_long AS SELECT path, n * 10 AS tens FROM shared_calls WHERE n >= 2")
    tables = {row[1] for row in rows(b, "SHOW TABLES")}
    assert {"shared_calls", "shared_long"} <= tables
    assert rows(b, "SELECT path, tens FROM shared_long ORDER BY path") == [
        ("y.wav", 20),
        ("z.wav", 30),
    ]
    # And the other way round: B's table is in A's catalog.
    rows(b, "CREATE TABLE from_b USING parquet AS SELECT path FROM shared_calls WHERE n = 1")
    assert rows(a, "SELECT path FROM from_b") == [("x.wav",)]
    # The catalog is PostgreSQL's, not a Derby directory under either state directory.
    assert not (a.home / "metastore_db").exists() and not (b.home / "metastore_db").exists()
    assert (
        "shared_calls"
        in postgres.psql('SELECT "TBL_NAME" FROM "TBLS"', database=postgres.database).split()
    )


@pytest.mark.slow
def test_active_model_is_shared(two_servers, shared_dirs, audio_root):
    from tests.modelgen import write_biased_model

    a, b = two_servers
    clip = audio_root / "ravdess" / "03-01-05-02-01-02-12.wav"
    for version, favour in ((1, "sad"), (2, "surprised")):
        write_biased_model(shared_dirs["models"], "shared", version, favour=favour)
    for version, favour in ((1, "sad"), (2, "surprised")):
        assert rows(a, f"SELECT activate_model('shared/{version}')") == [(f"shared/{version}",)]
        listed = {
            (name, int(v)): active
            for name, v, active, *_ in rows(b, "SELECT * FROM emotion_models()")
        }
        assert listed[("shared", version)] is True
        assert sum(listed.values()) == 1
        assert rows(b, f"SELECT emotion('{clip}')") == [(favour,)]


@pytest.mark.slow
def test_servers_sharing_a_warehouse_write_a_table_one_at_a_time(two_servers, shared_dirs):
    """Two writers of one table folder take each other's files: the operating system's lock on a
    hidden file in the folder refuses a second writer through the other server too."""
    a, b = two_servers
    rows(a, "CREATE TABLE shared_appended (id BIGINT, digest STRING) USING parquet")
    many = 6_000_000
    outcome = {}

    def append_many():
        try:
            rows(
                a,
                "INSERT INTO shared_appended SELECT id, sha2(CAST(id AS STRING), 256) "
                f"FROM range(0, {many}, 1, 8)",
            )
            outcome["finished"] = True
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    writer = threading.Thread(target=append_many, daemon=True)
    writer.start()
    table_dir = shared_dirs["warehouse"] / "shared_appended"
    deadline = time.monotonic() + 120
    while not (table_dir / "_temporary").exists() and writer.is_alive():
        assert time.monotonic() < deadline, "the first insert should be writing"
        time.sleep(0.05)
    assert writer.is_alive(), outcome
    with pytest.raises(Exception) as refused:
        rows(b, "INSERT INTO shared_appended SELECT -1, 'late'")
    message = str(refused.value)
    assert "another statement is writing into the table folder 'shared_appended' now" in message
    assert str(shared_dirs["warehouse"]) not in message
    writer.join(300)
    assert outcome == {"finished": True}
    assert rows(b, "SELECT count(*), min(id) FROM shared_appended") == [(many, 0)]
    rows(b, "INSERT OVERWRITE shared_appended SELECT -1, 'late'")
    assert rows(a, "SELECT count(*), min(id) FROM shared_appended") == [(1, -1)]


THIRD_PROCESS = """
import json, sys
from server.preflight import check_conf_dir
from server.settings import load_settings
from server.spark import build_spark

settings = load_settings(
    home=sys.argv[1], metastore_url=sys.argv[2], warehouse=sys.argv[3], master="local[1]"
)
spark = build_spark(settings, check_conf_dir(settings.conf_dir), app_name="catalog reader")
try:
    print(json.dumps([list(r) for r in spark.sql("SELECT path, tens FROM third_view").collect()]))
finally:
    spark.stop()
"""


@pytest.mark.slow
def test_a_third_spark_application_reads_the_view(two_servers, postgres, shared_dirs, tmp_path):
    a, _ = two_servers
    rows(
        a, "CREATE TABLE IF NOT EXISTS third_calls USING parquet AS SELECT 'q.wav' AS path, 7 AS n"
    )
    rows(a, "CREATE OR REPLACE VIEW third_view AS SELECT path, n * 10 AS tens FROM third_calls")
    env = dict(
        os.environ,
        **{ENV_METASTORE_PASSWORD: postgres.password, "EMOTICANA_METASTORE_USER": postgres.user},
    )
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            THIRD_PROCESS,
            str(tmp_path / "home-c"),
            postgres.jdbc_url,
            str(shared_dirs["warehouse"]),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [["q.wav", 70]]


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["wrong password", "nothing listening"])
def test_unusable_metastore_stops_start_up(tmp_path, postgres, problem):
    url = (
        postgres.jdbc_url
        if problem == "wrong password"
        else f"jdbc:postgresql://127.0.0.1:{free_port()}/emoticana"
    )
    env = dict(
        os.environ,
        **{ENV_METASTORE_PASSWORD: "not-the-password", "EMOTICANA_METASTORE_USER": postgres.user},
    )
    command = [
        sys.executable,
        "-m",
        "server",
        "serve",
        "--home",
        str(tmp_path / "home"),
        "--port",
        str(free_port()),
        "--console-port",
        "0",
        "--metastore-url",
        url,
    ]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    expected = (
        "password authentication failed"
        if problem == "wrong password"
        else "Connection to 127.0.0.1"
    )
    assert_one_line_failure(result, f"cannot use the metastore database {url}")
    assert expected in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
