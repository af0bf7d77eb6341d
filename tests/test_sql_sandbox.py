"""The SQL sandbox: SQL reaches no server file, program or code outside the audio roots and the
warehouse.

Refusals run against the shared test server (sandbox on, as shipped); a server with
``EMOTICANA_SQL_SANDBOX=off`` (in test_strict_and_files) shows that the same statements then
succeed, so it is the sandbox that refuses them. Path canonicalisation is checked on its own
through the Java class's command line, without a server.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pyspark
import pytest

from server.settings import (
    KEY_SQL_READ_ROOTS,
    KEY_SQL_SANDBOX,
    KEY_SQL_WRITE_ROOTS,
    SERVER_JAR,
    load_settings,
    sql_sandbox_on,
    sql_sandbox_roots,
)
from tests.helpers import beeline
from udfs.errors import ConfigError

SPARK_JARS = Path(pyspark.__file__).parent / "jars"
OUTSIDE_ROOTS = "is outside the allowed roots"
SANDBOX = r"\(SQL sandbox\)"


def canonical(roots: list[Path | str], *paths: str) -> list[tuple[str, str]]:
    """The Java side's verdict (inside, outside, refused) and canonical form for each path."""
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{SERVER_JAR}{os.pathsep}{SPARK_JARS}/*",
            "org.emoticana.sandbox.AllowedRoots",
            ",".join(str(r) for r in roots),
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [tuple(line.split("\t", 1)) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def links(tmp_path_factory):
    """An audio root holding a link to a folder outside it, and that outside folder."""
    base = tmp_path_factory.mktemp("sandbox-paths")
    root, outside = base / "audio", base / "outside"
    (root / "clips").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "clips" / "secret-link.txt").symlink_to(outside / "secret.txt")
    return root, outside


def test_canonical_paths_resolve_dot_dot_links_and_schemes(links):
    root, outside = links
    verdicts = canonical(
        [root],
        f"{root}/clips",
        f"file://{root}/clips",
        f"file:{root}/new/folder",
        str(root),
        f"{root}/clips/../../outside/secret.txt",
        f"{root}/escape/secret.txt",
        f"{root}/escape",
        f"{root}/clips/secret-link.txt",
        f"{root}2",
        "/etc/passwd",
        "hdfs://namenode/" + str(root).lstrip("/"),
        f"{root}/{{a,b}}",
        "relative/path",
    )
    real_root = root.resolve()
    assert verdicts == [
        ("inside", f"file://{real_root}/clips/"),
        ("inside", f"file://{real_root}/clips/"),
        ("inside", f"file://{real_root}/new/folder"),
        ("inside", f"file://{real_root}/"),
        ("outside", f"file://{outside.resolve()}/secret.txt"),
        ("outside", f"file://{outside.resolve()}/secret.txt"),
        ("outside", f"file://{outside.resolve()}/"),
        ("outside", f"file://{outside.resolve()}/secret.txt"),
        ("outside", f"file://{real_root}2"),
        ("outside", "file:///etc/passwd"),
        ("outside", f"hdfs://namenode{root}"),
        ("refused", f"path '{root}/{{a,b}}' holds a brace glob ({{...}}), which is not allowed"),
        ("outside", f"file://{Path.cwd().resolve()}/relative/path"),
    ]


def test_remote_roots_compare_scheme_authority_and_folder(links):
    verdicts = canonical(
        ["hdfs://NameNode:8020/warehouse"],
        "hdfs://namenode:8020/warehouse/t",
        "hdfs://namenode:8020/warehouse/../etc",
        "hdfs://other:8020/warehouse/t",
        "s3a://namenode:8020/warehouse/t",
        "hdfs://namenode:8020/warehouse2",
    )
    assert [verdict for verdict, _ in verdicts] == [
        "inside",
        "outside",
        "outside",
        "outside",
        "outside",
    ]


def test_sandbox_roots_and_switch_come_from_settings(tmp_path):
    settings = load_settings(home=str(tmp_path), audio_roots="/data/a:/data/b", environ={})
    assert sql_sandbox_roots(settings) == {
        KEY_SQL_READ_ROOTS: f"/data/a,/data/b,{tmp_path / 'warehouse'}",
        KEY_SQL_WRITE_ROOTS: str(tmp_path / "warehouse"),
    }
    assert sql_sandbox_on(settings, {}) is True
    assert sql_sandbox_on(settings, {KEY_SQL_SANDBOX: "false"}) is False
    off = load_settings(home=str(tmp_path), environ={"EMOTICANA_SQL_SANDBOX": "off"})
    assert sql_sandbox_on(off, {KEY_SQL_SANDBOX: "true"}) is False
    with pytest.raises(ConfigError, match="comma"):
        sql_sandbox_roots(load_settings(home=str(tmp_path), audio_roots="/data/a,b", environ={}))
    # A root may not hold the server's own files (symbolic links resolved).
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    for roots, env, what in (
        (str(tmp_path), {}, "the state directory (EMOTICANA_HOME)"),
        (f"/data/a:{tmp_path / 'link'}", {}, "the state directory (EMOTICANA_HOME)"),
        ("/srv", {"EMOTICANA_AUTH_FILE": "/srv/secrets/users"}, "the password file"),
        ("/srv", {"EMOTICANA_TLS_KEYSTORE": "/srv/tls/server.p12"}, "the TLS keystore"),
    ):
        home = str(tmp_path / "home") if what != "the state directory (EMOTICANA_HOME)" else None
        settings = load_settings(home=home or str(tmp_path), audio_roots=roots, environ=env)
        with pytest.raises(ConfigError, match=re.escape(what)):
            sql_sandbox_roots(settings)
    assert sql_sandbox_roots(load_settings(home=str(tmp_path / "home"), environ={}))
    # Nor may a root lie inside the state directory, but for its own audio folder.
    inside = load_settings(
        home=str(tmp_path / "home"), audio_roots=str(tmp_path / "home" / "metastore_db"), environ={}
    )
    with pytest.raises(ConfigError, match="inside the state directory"):
        sql_sandbox_roots(inside)
    own = str(tmp_path / "home" / "audio" / "calls")
    assert sql_sandbox_roots(
        load_settings(home=str(tmp_path / "home"), audio_roots=own, environ={})
    )


# --- Against the real server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_paths(audio_root, outside_dir):
    """A link inside the test server's audio root to the folder outside it, and a table to write
    into."""
    links = audio_root / "sandbox-links"
    links.mkdir(exist_ok=True)
    escape = links / "escape"
    if not escape.is_symlink():
        escape.symlink_to(outside_dir, target_is_directory=True)
    return {"root": audio_root, "outside": outside_dir, "escape": escape}


REFUSED = [
    (
        "CREATE TABLE s_passwd USING text OPTIONS (path '/etc/passwd')",
        (
            rf"emoticana: table \S+s_passwd location 'file:/etc/passwd' {OUTSIDE_ROOTS} "
            rf"\(.*{{root}}.*\); add its folder to EMOTICANA_AUDIO_ROOTS"
        ),
    ),
    (
        "CREATE TABLE s_csv USING csv OPTIONS (path '{outside}', header 'true')",
        rf"location 'file:{{outside}}' {OUTSIDE_ROOTS}",
    ),
    (
        "CREATE TABLE s_loc (line STRING) USING text LOCATION '/etc'",
        rf"location 'file:/etc' {OUTSIDE_ROOTS}",
    ),
    (
        "CREATE TABLE s_hive (line STRING) STORED AS TEXTFILE LOCATION '/etc'",
        rf"location 'file:/etc' {OUTSIDE_ROOTS}",
    ),
    (
        "CREATE TEMPORARY VIEW s_view USING text OPTIONS (path '/etc/passwd')",
        rf"option path '/etc/passwd' {OUTSIDE_ROOTS}",
    ),
    (
        "CREATE TABLE s_link USING binaryFile OPTIONS (path '{escape}')",
        rf"location 'file:{{escape}}' {OUTSIDE_ROOTS}",
    ),
    (
        (
            "CREATE TABLE s_dots USING binaryFile "
            "OPTIONS (path '{root}/variants/../../{outside_name}')"
        ),
        rf"location 'file:{{outside}}' {OUTSIDE_ROOTS}",
    ),
    (
        "CREATE TABLE s_glob USING text OPTIONS (path '{root}/{{zz/zz,..}}/../x')",
        r"paths may not hold glob or escape characters",
    ),
    ("ALTER TABLE sandbox_in_root SET LOCATION '/etc'", rf"table location '/etc' {OUTSIDE_ROOTS}"),
    (
        "ALTER TABLE sandbox_kept SET SERDEPROPERTIES ('path' = '/etc')",
        r"emoticana: ALTER TABLE \.\.\. SET SERDEPROPERTIES is refused",
    ),
    ("CREATE TABLE s_like LIKE sandbox_kept LOCATION '/etc'", rf"location '/etc' {OUTSIDE_ROOTS}"),
    (
        "LOAD DATA LOCAL INPATH '/etc/passwd' INTO TABLE sandbox_kept",
        r"emoticana: LOAD DATA is refused",
    ),
    (
        "LOAD DATA INPATH '{root}/variants/clip_16k.flac' INTO TABLE sandbox_kept",
        r"emoticana: LOAD DATA is refused",
    ),
    (
        "SET spark.sql.runSQLOnFiles=true",
        (
            r"emoticana: SET spark.sql.runSQLOnFiles is refused: "
            rf"it would reopen reading files through SQL {SANDBOX}"
        ),
    ),
    (
        "SET spark.hadoop.fs.file.impl=org.example.Evil",
        r"emoticana: SET spark.hadoop.fs.file.impl is refused: settings under spark.hadoop.\*",
    ),
    (
        (
            "SET spark.sql.catalog.evil="
            "org.apache.spark.sql.execution.datasources.v2.jdbc.JDBCTableCatalog"
        ),
        r"emoticana: SET spark.sql.catalog.evil is refused",
    ),
    (
        "SET hive.exec.scratchdir=/tmp/emoticana-sandbox",
        r"emoticana: SET hive.exec.scratchdir is refused: settings under hive.exec.\* are fixed",
    ),
    (
        "SET spark.emoticana.sql.readRoots=/",
        r"emoticana: SET spark.emoticana.sql.readRoots is refused",
    ),
    (
        "SET spark.sql.execution.pyspark.python=/bin/sh",
        r"emoticana: SET spark.sql.execution.pyspark.python is refused",
    ),
    (
        "INSERT OVERWRITE LOCAL DIRECTORY '/tmp/emoticana-sandbox' SELECT 1",
        (
            r"emoticana: INSERT OVERWRITE DIRECTORY is refused: "
            rf"it writes files on the server {SANDBOX}"
        ),
    ),
    (
        "INSERT OVERWRITE DIRECTORY '{root}/written' USING parquet SELECT 1",
        r"emoticana: INSERT OVERWRITE DIRECTORY is refused",
    ),
    (
        "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
        (
            r"emoticana: reflect/java_method is refused: "
            rf"it calls Java methods inside the server {SANDBOX}"
        ),
    ),
    (
        "SELECT java_method('java.lang.System', 'getProperty', 'user.home')",
        r"emoticana: reflect/java_method is refused",
    ),
    (
        "SELECT try_reflect('java.lang.System', 'getenv', 'HOME')",
        r"emoticana: reflect/java_method is refused",
    ),
    (
        "SELECT 1 WHERE 1 IN (SELECT length(reflect('java.lang.System', 'getenv', 'HOME')))",
        r"emoticana: reflect/java_method is refused",
    ),
    (
        (
            "CREATE OR REPLACE VIEW s_reflect AS "
            "SELECT java_method('java.lang.System', 'getenv', 'HOME') AS home"
        ),
        r"emoticana: reflect/java_method is refused",
    ),
    (
        "SELECT TRANSFORM(id) USING 'cat /etc/passwd' AS (line) FROM range(1)",
        rf"emoticana: TRANSFORM ... USING is refused: it runs a program on the server {SANDBOX}",
    ),
    ("ADD JAR /tmp/emoticana-sandbox.jar", r"emoticana: ADD JAR/FILE/ARCHIVE is refused"),
    ("ADD FILE /etc/passwd", r"emoticana: ADD JAR/FILE/ARCHIVE is refused"),
    ("ADD ARCHIVE /tmp/emoticana-sandbox.zip", r"emoticana: ADD JAR/FILE/ARCHIVE is refused"),
    (
        (
            "CREATE TEMPORARY FUNCTION s_reflect "
            "AS 'org.apache.hadoop.hive.ql.udf.generic.GenericUDFReflect'"
        ),
        (
            r"emoticana: CREATE \[TEMPORARY\] FUNCTION \.\.\. AS 'class' is refused: "
            r"it loads Java code"
        ),
    ),
    (
        "CREATE FUNCTION s_jar AS 'org.example.Udf' USING JAR '/tmp/emoticana-sandbox.jar'",
        r"emoticana: CREATE .*FUNCTION .* is refused",
    ),
    (
        "EXECUTE IMMEDIATE 'SELECT reflect(''java.lang.System'', ''getenv'', ''HOME'')'",
        r"emoticana: reflect/java_method is refused",
    ),
    (
        "EXECUTE IMMEDIATE 'CREATE TABLE s_imm USING text OPTIONS (path ''/etc/passwd'')'",
        rf"location 'file:/etc/passwd' {OUTSIDE_ROOTS}",
    ),
    (
        "EXECUTE IMMEDIATE 'SET spark.sql.runSQLOnFiles=true'",
        r"emoticana: SET spark.sql.runSQLOnFiles is refused",
    ),
    (
        "CREATE DATABASE s_db LOCATION '{outside}/db'",
        (
            r"emoticana: database location '.*/db' is outside the warehouse \(.*\), "
            r"the only place SQL may write"
        ),
    ),
    (
        (
            "CREATE TEMPORARY VIEW s_jdbc USING jdbc "
            "OPTIONS (url 'jdbc:derby:/tmp/emoticana-sandbox', dbtable 'T')"
        ),
        r"emoticana: data source 'jdbc' is refused",
    ),
    (
        "INSERT INTO sandbox_in_root VALUES ('x')",
        r"emoticana: writing to 'file:{root}/sandbox-table' is outside the warehouse",
    ),
    (
        "CREATE TABLE s_ctas USING parquet LOCATION '{root}/ctas' AS SELECT 1 AS a",
        r"emoticana: writing to table \S+s_ctas at '.*/ctas' is outside the warehouse",
    ),
    (
        "SELECT from_xml('<a>1</a>', 'a INT', map('rowValidationXSDPath', '/etc/passwd'))",
        r"emoticana: xpath, from_xml and schema_of_xml are refused",
    ),
]


@pytest.fixture(scope="module")
def sandbox_cursor(server, sandbox_paths):
    connection = server.connect()
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS sandbox_kept (line STRING) USING text")
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS sandbox_in_root (line STRING) USING text "
        f"LOCATION '{sandbox_paths['root']}/sandbox-table'"
    )
    yield cursor
    connection.close()


def _fill(text: str, paths: dict) -> str:
    return (
        text.replace("{root}", str(paths["root"]))
        .replace("{outside_name}", paths["outside"].name)
        .replace("{outside}", str(paths["outside"]))
        .replace("{escape}", str(paths["escape"]))
        .replace("{{", "{")
        .replace("}}", "}")
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "statement, message", REFUSED, ids=[s.split(" (")[0][:60] for s, _ in REFUSED]
)
def test_refused_with_one_clear_message(sandbox_cursor, sandbox_paths, statement, message):
    with pytest.raises(Exception, match=_fill(message, sandbox_paths)):
        sandbox_cursor.execute(_fill(statement, sandbox_paths))
        sandbox_cursor.fetchall()


@pytest.mark.slow
def test_nothing_refused_was_made(sandbox_cursor, sandbox_paths):
    sandbox_cursor.execute("SHOW TABLES")
    assert not [row[1] for row in sandbox_cursor.fetchall() if row[1].startswith("s_")]
    assert not (sandbox_paths["root"] / "written").exists()
    assert not Path("/tmp/emoticana-sandbox").exists()
    sandbox_cursor.execute("SET spark.sql.runSQLOnFiles")
    assert sandbox_cursor.fetchall() == [("spark.sql.runSQLOnFiles", "false")]


@pytest.mark.slow
def test_sql_on_files_stays_off(sandbox_cursor, sandbox_paths):
    with pytest.raises(Exception, match="TABLE_OR_VIEW_NOT_FOUND"):
        sandbox_cursor.execute("SELECT * FROM text.`/etc/passwd`")


@pytest.mark.slow
def test_settings_passed_when_the_session_opens_are_refused(server):
    """HiveServer2 copies ``set:hiveconf:`` keys of the session's opening into its Spark settings,
    with no SET."""
    with pytest.raises(
        Exception,
        match=r"emoticana: setting spark.sql.runSQLOnFiles=true in this session is refused",
    ):
        connection = server.connect(configuration={"set:hiveconf:spark.sql.runSQLOnFiles": "true"})
        connection.cursor().execute("SELECT * FROM text.`/etc/passwd`")
    # Script variables (beeline --hivevar, emoticana sql --hivevar) and beeline's own settings pass.
    connection = server.connect(
        configuration={
            "set:hivevar:audio_dir": "/data/calls",
            "set:hiveconf:hive.server2.thrift.resultset.default.fetch.size": "1000",
        }
    )
    cursor = connection.cursor()
    cursor.execute("SELECT '${hivevar:audio_dir}'")
    assert cursor.fetchall() == [("/data/calls",)]
    connection.close()


@pytest.mark.slow
def test_the_products_statements_still_work(sandbox_cursor, sandbox_paths):
    cursor, root = sandbox_cursor, sandbox_paths["root"]
    statements = [
        "CREATE DATABASE IF NOT EXISTS sandbox_db",
        "USE sandbox_db",
        (
            "CREATE TABLE IF NOT EXISTS sandbox_clips USING binaryFile "
            f"OPTIONS (path '{root / 'ravdess'}', pathGlobFilter '*.wav')"
        ),
        (
            "CREATE TABLE IF NOT EXISTS sandbox_all USING binaryFile "
            f"OPTIONS (path '{root / 'variants'}', recursiveFileLookup 'true')"
        ),
        (
            "CREATE OR REPLACE TEMPORARY VIEW sandbox_temp USING binaryFile "
            f"OPTIONS (path 'file://{root / 'ravdess'}')"
        ),
        (
            "CREATE TABLE IF NOT EXISTS sandbox_ctas AS "
            "SELECT path, audio_info(content).sample_rate AS rate FROM sandbox_clips"
        ),
        "CREATE TABLE IF NOT EXISTS sandbox_plain (a INT, b STRING)",
        "INSERT INTO sandbox_plain VALUES (1, 'x')",
        "INSERT OVERWRITE TABLE sandbox_plain SELECT 2, 'y'",
        "CREATE OR REPLACE VIEW sandbox_v AS SELECT a FROM sandbox_plain",
        "SET spark.sql.shuffle.partitions=4",
        "SET hive.exec.dynamic.partition.mode=nonstrict",
        f"SET hivevar:clips_dir={root / 'ravdess'}",
        "CREATE OR REPLACE FUNCTION sandbox_twice(x INT) RETURNS INT RETURN x * 2",
        "USE default",
    ]
    for statement in statements:
        cursor.execute(statement)
    cursor.execute("SELECT count(*), min(rate) FROM sandbox_db.sandbox_ctas")
    assert cursor.fetchall() == [(3, 48000)]
    cursor.execute("SELECT count(*) FROM sandbox_db.sandbox_all")
    assert cursor.fetchall()[0][0] > 0
    cursor.execute("SELECT a, sandbox_db.sandbox_twice(a) FROM sandbox_db.sandbox_v")
    assert cursor.fetchall() == [(2, 4)]
    cursor.execute(
        "SELECT ravdess_meta(path).emotion, size(mfcc(content)) > 0, emotion(content) IS NOT NULL "
        "FROM sandbox_temp ORDER BY path LIMIT 1"
    )
    assert cursor.fetchall() == [("neutral", True, True)]
    cursor.execute(f"SELECT audio_info('{root}/variants/clip_16k.flac').sample_rate")
    assert cursor.fetchall() == [(16000,)]


@pytest.mark.slow
def test_beeline_shows_the_refusal(server):
    result = beeline(server, "-e", "CREATE TABLE s_beeline USING text OPTIONS (path '/etc/passwd')")
    assert result.returncode != 0
    assert (
        "emoticana: table spark_catalog.default.s_beeline location 'file:/etc/passwd' "
        "is outside the allowed roots" in result.stderr
    )
