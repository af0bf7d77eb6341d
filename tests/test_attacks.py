"""Attacks an ordinary login could try over JDBC, grouped by what they are after, each refused by
the sandbox's allow-list (server/java/.../StatementPolicy.java) with one line naming the rule,
before anything runs: no table, file, database or request is left behind.

test_sql_sandbox.py holds the first sandbox's refusals (locations outside the roots, writes
outside the warehouse, programs and code) and test_variables.py the substitution of secrets;
the product's own statements still working is checked there and at the end of this module.
"""

from __future__ import annotations

import gc
import os
import re
import socket
import stat

import pytest

from tests.helpers import assert_logged_once, log_lines_since

GLOB = r"paths may not hold glob or escape characters"
SERDE = r"ROW FORMAT SERDE and STORED AS INPUTFORMAT/OUTPUTFORMAT are refused"
OPTION = r"option '{key}' is refused: a table or view may take only the documented options"
SOURCE = r"data source '{name}' is refused"
XML = r"xpath, from_xml and schema_of_xml are refused"
SETTING = r"is refused: a session may change spark.sql.\* settings and script variables only"
GLOBAL_VIEW = r"CREATE GLOBAL TEMPORARY VIEW is refused"
NOT_ALLOWED = r"is refused: it is not among the statements SQL may run"
WAREHOUSE = r"is refused: it lies in the warehouse \(.*\), whose folders belong to managed tables"
MANAGED = r"is refused for default.attack_(kept|parts): it is a managed table, whose folders Spark"
DEFAULT = r"DEFAULT .* is refused: a column.{1,2}s default may be a literal"
RELATIVE = r"is refused: name an absolute path"

ATTACKS = {
    # Server files read through tables: globs and escapes Hadoop expands after the check, and
    # Hive formats that read a list of paths from a file or take classes from SQL.
    "files": [
        ("CREATE TABLE a_star USING text OPTIONS (path '{root}/*/../../../../etc')", GLOB),
        ("CREATE TABLE a_question (line STRING) USING text LOCATION '{root}/?'", GLOB),
        ("CREATE TABLE a_class (line STRING) STORED AS TEXTFILE LOCATION '{root}/[a-z]*'", GLOB),
        ("CREATE TABLE a_escape (line STRING) USING text LOCATION '{root}/\\\\.\\\\./etc'", GLOB),
        ("CREATE TABLE a_brace USING binaryFile OPTIONS (path '{root}/{{a,..}}')", GLOB),
        ("CREATE TEMPORARY VIEW a_view USING text OPTIONS (path '{root}/[!x]*')", GLOB),
        ("CREATE TABLE a_paths USING text OPTIONS (paths '[\"{root}/*\"]')", GLOB),
        ("ALTER TABLE attack_kept SET LOCATION '{root}/*'", GLOB),
        ("ALTER TABLE attack_kept ADD PARTITION (p = 1) LOCATION '{root}/{{a,b}}'", GLOB),
        ("CREATE TABLE a_like LIKE attack_kept LOCATION '{root}/*'", GLOB),
        ("CREATE DATABASE a_db_glob LOCATION '{root}/*'", GLOB),
        (
            "CREATE TABLE a_symlink (line STRING) STORED AS "
            "INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat' "
            "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat' "
            "LOCATION '{root}/attack-lists'",
            SERDE,
        ),
        (
            "CREATE TABLE a_regex (line STRING) ROW FORMAT SERDE "
            "'org.apache.hadoop.hive.serde2.RegexSerDe' STORED AS TEXTFILE",
            SERDE,
        ),
        (
            "CREATE TABLE a_like_format LIKE attack_kept STORED AS "
            "INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat' "
            "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
            SERDE,
        ),
        (
            "CREATE TABLE a_avro STORED AS AVRO TBLPROPERTIES ('avro.schema.url' = '/etc/passwd')",
            r"STORED AS AVRO is refused: tables may be STORED AS",
        ),
        ("CREATE TABLE a_seq (line STRING) STORED AS SEQUENCEFILE", r"STORED AS SEQUENCEFILE"),
        ("ALTER TABLE attack_kept SET SERDEPROPERTIES ('path' = '/etc')", r"SET SERDEPROPERTIES"),
        ("CREATE TABLE a_base USING text OPTIONS (path '{root}', basePath '/etc')", r"/etc"),
        (
            "CREATE TABLE a_codec USING text OPTIONS (compression "
            "'org.apache.hadoop.io.compress.GzipCodec') AS SELECT 'a' AS v",
            r"option compression 'org.apache.hadoop.io.compress.GzipCodec' is refused: name a",
        ),
    ],
    # Hadoop settings in a table's or a view's options or properties: file-system remapping
    # (viewfs mount tables), implementations by class, input folders.
    "hadoop settings": [
        (
            "CREATE TABLE a_viewfs USING text OPTIONS "
            "(path '{root}', 'fs.viewfs.mounttable.default.link./audio' = 'file:/etc')",
            OPTION.format(key="fs.viewfs.mounttable.default.link./audio"),
        ),
        (
            "CREATE TABLE a_impl USING csv OPTIONS (path '{root}', 'fs.file.impl' = 'x.Evil')",
            OPTION.format(key="fs.file.impl"),
        ),
        (
            "CREATE TEMPORARY VIEW a_inputdir USING text OPTIONS "
            "(path '{root}', 'mapreduce.input.fileinputformat.inputdir' = '/etc')",
            OPTION.format(key="mapreduce.input.fileinputformat.inputdir"),
        ),
        (
            "CREATE TABLE a_defaultfs USING parquet OPTIONS "
            "(path '{root}', 'fs.defaultFS' = 'file:///etc')",
            OPTION.format(key="fs.defaultFS"),
        ),
        (
            "CREATE TABLE a_props (line STRING) USING text "
            "TBLPROPERTIES ('fs.defaultFS' = 'file:///etc')",
            r"table property 'fs.defaultFS' is refused",
        ),
        (
            "ALTER TABLE attack_kept SET TBLPROPERTIES ('avro.schema.url' = '/etc/passwd')",
            r"table property 'avro.schema.url' is refused",
        ),
        (
            "CREATE DATABASE a_db_props WITH DBPROPERTIES ('fs.defaultFS' = 'file:///etc')",
            r"database property 'fs.defaultFS' is refused",
        ),
        (
            "CREATE TABLE a_hive_props (line STRING) STORED AS TEXTFILE "
            "TBLPROPERTIES ('hive.exec.scratchdir' = '/etc')",
            r"table property 'hive.exec.scratchdir' is refused",
        ),
        (
            "CREATE TABLE a_serde_props (line STRING) ROW FORMAT DELIMITED "
            "FIELDS TERMINATED BY ',' STORED AS TEXTFILE "
            "TBLPROPERTIES ('serialization.lib' = 'x.Evil')",
            r"table property 'serialization.lib' is refused",
        ),
        (
            "CREATE TABLE a_class_source USING "
            "org.apache.spark.sql.execution.datasources.csv.CSVFileFormat OPTIONS (path '{root}')",
            SOURCE.format(name="org.apache.spark.sql.execution.datasources.csv.CSVFileFormat"),
        ),
        (
            "CREATE TEMPORARY VIEW a_jdbc USING jdbc OPTIONS "
            "(url 'jdbc:derby:memory:x;create=true', dbtable 'x')",
            SOURCE.format(name="jdbc"),
        ),
        ("CREATE TABLE a_xml USING xml OPTIONS (path '{root}')", SOURCE.format(name="xml")),
        ("CREATE TABLE a_avro_source USING avro OPTIONS (path '{root}')", r"data source 'avro'"),
        ("CREATE TABLE a_noop USING noop", SOURCE.format(name="noop")),
    ],
    # Side effects during analysis, before a check on the analysed plan could run: a catalog
    # or metastore setting, a location outside the roots, a request an XML document makes.
    "side effects": [
        (
            "CREATE TABLE a_chmod (line STRING) STORED AS TEXTFILE LOCATION '{outside}'",
            r"is outside the allowed roots",
        ),
        (
            "CREATE TABLE a_chmod_ctas STORED AS TEXTFILE LOCATION '{outside}/ctas' AS SELECT 1",
            r"is outside",
        ),
        ("SET fs.defaultFS=file:///etc", r"SET fs.defaultFS is refused"),
        ("SET mapreduce.job.reduces=1", "SET mapreduce.job.reduces is refused"),
        ("SET some.plugin.setting=1", "SET some.plugin.setting " + SETTING),
        ("SET yarn.resourcemanager.address=127.0.0.1:1", "SET yarn.resourcemanager.address"),
        (
            "SET spark.sql.catalog.a_derby.url=jdbc:derby:{outside}/derby",
            r"SET spark.sql.catalog.a_derby.url is refused",
        ),
        (
            "SELECT xpath('<!DOCTYPE a SYSTEM \"http://127.0.0.1:9/a.dtd\"><a>1</a>', 'a/text()')",
            XML,
        ),
        ("SELECT xpath_string('<a>1</a>', 'a')", XML),
        ("SELECT xpath_int('<a>1</a>', 'a')", XML),
        ("SELECT xpath_boolean('<a>1</a>', 'a')", XML),
        ("SELECT schema_of_xml('<a>1</a>')", XML),
        (
            "CREATE OR REPLACE TEMPORARY VIEW a_xml_view AS SELECT xpath_double('<a>1</a>', 'a') x",
            XML,
        ),
        (
            "CREATE OR REPLACE FUNCTION a_xml_f(s STRING) RETURNS STRING "
            "RETURN xpath_string(s, 'a')",
            XML,
        ),
        ("SELECT from_xml('<a>1</a>', 'a INT')", XML),
        ("SELECT 1 WHERE EXISTS (SELECT xpath_long('<a>1</a>', 'a'))", XML),
        ("EXECUTE IMMEDIATE 'SELECT xpath_short(''<a>1</a>'', ''a'')'", XML),
    ],
    # What SET and error messages hide: the metastore's connection URL among the redacted values.
    "secrets": [
        (
            "SET spark.sql.redaction.options.regex=nothing",
            r"settings under spark.sql.redaction.\* are fixed by the server",
        ),
        (
            "SET spark.sql.redaction.string.regex=nothing",
            r"settings under spark.sql.redaction.\* are fixed by the server",
        ),
    ],
    # Another user's session: global temporary views are one namespace for every session.
    "between users": [
        ("CREATE GLOBAL TEMPORARY VIEW a_global AS SELECT 1 AS x", GLOBAL_VIEW),
        ("CREATE OR REPLACE GLOBAL TEMP VIEW a_global2 AS SELECT 1 AS x", GLOBAL_VIEW),
        ("CREATE GLOBAL TEMPORARY VIEW a_global3 USING text OPTIONS (path '{root}')", GLOBAL_VIEW),
        # Another user's managed table is a folder in the warehouse: naming it from SQL would read
        # or overwrite it behind its owner's back.
        (
            "CREATE TABLE a_wh_table (line STRING) USING text LOCATION '{warehouse}/attack_kept'",
            WAREHOUSE,
        ),
        (
            "CREATE TEMPORARY VIEW a_wh_view USING parquet "
            "OPTIONS (path '{warehouse}/attack_kept')",
            WAREHOUSE,
        ),
        ("CREATE DATABASE a_wh_db LOCATION '{warehouse}/a_wh_db'", WAREHOUSE),
        ("ALTER TABLE attack_kept SET LOCATION '{warehouse}/elsewhere'", WAREHOUSE),
    ],
    # A relative path is judged against the server's working folder but Spark resolves it
    # against another (a partition's against its table's): a partition landed outside the roots.
    "relative paths": [
        (
            "ALTER TABLE attack_parts ADD PARTITION (p = 4) "
            "LOCATION '../../{root}/attack-elsewhere'",
            RELATIVE,
        ),
        ("ALTER TABLE attack_parts PARTITION (p = 0) SET LOCATION 'attack-elsewhere'", RELATIVE),
        ("CREATE TABLE a_relative USING text OPTIONS (path 'etc')", RELATIVE),
        ("CREATE TEMPORARY VIEW a_relative_view USING text OPTIONS (path '../etc')", RELATIVE),
    ],
    # The audio deleted or replaced through a managed table: Spark deletes a managed table's
    # folders on DROP TABLE, TRUNCATE, DROP PARTITION and INSERT OVERWRITE, wherever they are.
    "audio through managed tables": [
        ("ALTER TABLE attack_kept SET LOCATION '{root}/attack-victim'", MANAGED),
        ("ALTER TABLE attack_kept SET LOCATION '{root}'", MANAGED),
        ("ALTER TABLE attack_parts ADD PARTITION (p = 1) LOCATION '{root}/attack-victim'", MANAGED),
        (
            "ALTER TABLE attack_parts ADD PARTITION (p = 2) "
            "PARTITION (p = 3) LOCATION '{root}/attack-victim'",
            MANAGED,
        ),
        ("ALTER TABLE attack_parts PARTITION (p = 0) SET LOCATION '{root}/attack-victim'", MANAGED),
    ],
    # Expressions Spark evaluates as it creates or alters a table, before the checks every query
    # passes: a column DEFAULT calling xpath opened the DTD files and URLs an XML document names.
    "evaluated at creation": [
        (
            "CREATE TABLE a_default (a INT, b STRING DEFAULT "
            "xpath_string('<!DOCTYPE a SYSTEM \"file:///etc/hostname\"><a>x</a>', '/a')) "
            "USING parquet",
            DEFAULT,
        ),
        (
            "CREATE TABLE a_default2 (a INT, b STRING DEFAULT schema_of_xml('<r><a>1</a></r>')) "
            "USING parquet",
            DEFAULT,
        ),
        ("REPLACE TABLE attack_kept (line STRING DEFAULT upper('x')) USING text", DEFAULT),
        (
            "ALTER TABLE attack_kept ADD COLUMNS (b STRING DEFAULT xpath_string('<a>x</a>', '/a'))",
            DEFAULT,
        ),
        (
            "ALTER TABLE attack_kept ALTER COLUMN line "
            "SET DEFAULT reflect('java.lang.System', 'exit')",
            DEFAULT,
        ),
        (
            "CREATE TABLE a_generated (a INT, b STRING GENERATED ALWAYS AS "
            "(xpath_string('<a>x</a>', '/a'))) USING parquet",
            r"GENERATED ALWAYS AS \(expression\) is refused",
        ),
        (
            "CREATE TABLE a_check (a STRING, CONSTRAINT c CHECK (xpath_string(a, '/a') = 'x')) "
            "USING parquet",
            r"CHECK constraints are refused",
        ),
    ],
    # Statements outside the allow-list: lists of the server's files, scripting that could hide
    # a statement, commands no SQL user needs.
    "statements": [
        ("LIST JAR", "LIST JARS " + NOT_ALLOWED),
        ("ANALYZE TABLES IN default COMPUTE STATISTICS", "ANALYZE TABLES " + NOT_ALLOWED),
        ("LIST FILE", "LIST FILES " + NOT_ALLOWED),
        (
            "EXECUTE IMMEDIATE 'ADD JAR /tmp/emoticana-attack.jar'",
            r"ADD JAR/FILE/ARCHIVE is refused",
        ),
        ("EXECUTE IMMEDIATE 'LIST JAR'", NOT_ALLOWED),
        ("BEGIN SELECT 1; END", NOT_ALLOWED),
        ("REFRESH '/etc/passwd'", NOT_ALLOWED),
        ("CREATE INDEX a_index ON attack_kept (line)", NOT_ALLOWED),
        (
            "CREATE TEMPORARY FUNCTION a_udf AS 'org.apache.hadoop.hive.ql.udf.UDFReflect'",
            r"AS 'class'",
        ),
        ("CREATE TABLE a_ctas_avro STORED AS AVRO AS SELECT 1 AS x", r"STORED AS AVRO is refused"),
    ],
    # Names that are paths: CREATE TABLE AS SELECT writes its rows into the folder its name makes
    # before Spark checks the name, so into another user's table or a new partition of it.
    "names": [
        (
            "CREATE TABLE `../attack_kept` USING text AS SELECT 'injected' AS line",
            r"the name `../attack_kept` is refused: the names of tables and databases are letters",
        ),
        (
            "CREATE TABLE `attack_parts/p=7` USING parquet AS SELECT 'injected' AS v",
            r"the name `attack_parts/p=7` is refused",
        ),
        (
            "CREATE TABLE `default`.`.` USING parquet AS SELECT 'injected' AS v",
            r"the name `\.` is refused",
        ),
    ],
    # Folders Hive makes in the audio roots when they are missing: a Hive-format table's LOCATION,
    # a partition's folder (an ingestion tool could then not make a file of that name).
    "folders": [
        (
            "CREATE TABLE a_mkdir (a STRING) STORED AS TEXTFILE LOCATION '{root}/attack-made'",
            r"table location '.*attack-made' is refused: there is no such folder",
        ),
        (
            "CREATE TABLE a_like_mkdir LIKE attack_external LOCATION '{root}/attack-made-like'",
            r"table location '.*attack-made-like' is refused: there is no such folder",
        ),
        (
            "ALTER TABLE attack_external ADD PARTITION (p = 'made_by_sql')",
            r"partition folder '.*attack-external/p=made_by_sql' is refused: there is no such",
        ),
    ],
    # Settings Spark reads a class name or a reference from.
    "settings": [
        (
            "SET spark.sql.sources.default=java.util.Timer",
            r"SET spark.sql.sources.default is refused: it is fixed by the server",
        ),
        ("SET spark.sql.session.timeZone=UTC${{ x}}", r"a value may not contain \$\{{"),
    ],
    # Patterns Spark matches as regular expressions where no cancel or time cap reaches: a nested
    # quantifier against a long view name holds a core for hours.
    "name patterns": [
        (r"SHOW TABLES LIKE '(x?)(a+)+\\1b'", r"SHOW TABLES is refused: the LIKE pattern may hold"),
        (r"SHOW VIEWS LIKE '[a-z]+'", r"SHOW VIEWS is refused: the LIKE pattern may hold"),
        ("SHOW FUNCTIONS LIKE 'a*a*a*b'", r"at most 2 '\*' wildcards"),
        ("SHOW DATABASES LIKE '" + "a" * 200 + "'", r"longer than 128 characters"),
    ],
}

CASES = [
    (group, statement, message) for group, items in ATTACKS.items() for statement, message in items
]


@pytest.fixture(scope="module")
def attack(server, audio_root, outside_dir):
    """A cursor on the shared server, a table to alter, and the paths the attacks name."""
    (audio_root / "attack-lists").mkdir(exist_ok=True)
    (audio_root / "attack-lists" / "list.txt").write_text("/etc/passwd\n")
    connection = server.connect()
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS attack_kept (line STRING) USING text")
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS attack_parts (v STRING, p INT) USING parquet PARTITIONED BY (p)"
    )
    cursor.execute("INSERT INTO attack_parts VALUES ('kept', 0)")
    (audio_root / "attack-external" / "p=kept").mkdir(parents=True, exist_ok=True)
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS attack_external (v STRING) PARTITIONED BY (p STRING) "
        f"STORED AS TEXTFILE LOCATION '{audio_root / 'attack-external'}'"
    )
    (audio_root / "attack-victim").mkdir(exist_ok=True)
    (audio_root / "attack-victim" / "keep.wav").write_bytes(b"RIFF")
    mode = stat.S_IMODE(os.stat(outside_dir).st_mode)
    yield {
        "cursor": cursor,
        "root": audio_root,
        "outside": outside_dir,
        "warehouse": server.home / "warehouse",
        "mode": mode,
    }
    connection.close()


def _fill(text: str, attack: dict) -> str:
    return (
        text.replace("{root}", str(attack["root"]))
        .replace("{outside}", str(attack["outside"]))
        .replace("{warehouse}", str(attack["warehouse"]))
        .replace("{{", "{")
        .replace("}}", "}")
    )


def test_at_least_sixty_attacks():
    assert len(CASES) >= 60


@pytest.mark.slow
@pytest.mark.parametrize(
    "group, statement, message", CASES, ids=[f"{g}: {s[:50]}" for g, s, _ in CASES]
)
def test_attack_is_refused_in_one_line(attack, group, statement, message):
    cursor = attack["cursor"]
    with pytest.raises(Exception) as refused:
        cursor.execute(_fill(statement, attack))
        cursor.fetchall()
    text = str(refused.value)
    assert "emoticana: " in text, text[:500]
    assert re.search(_fill(message, attack), text), text[:800]


@pytest.mark.slow
def test_the_attacks_left_nothing_behind(attack):
    cursor = attack["cursor"]
    cursor.execute("SHOW TABLES")
    assert not [row[1] for row in cursor.fetchall() if row[1].startswith("a_")]
    cursor.execute("SHOW DATABASES")
    assert not [row[0] for row in cursor.fetchall() if row[0].startswith("a_")]
    cursor.execute("SHOW TABLES IN global_temp")
    assert not [row[1] for row in cursor.fetchall() if row[1].startswith("a_")]
    # No chmod, no Derby database, no file outside the roots.
    assert stat.S_IMODE(os.stat(attack["outside"]).st_mode) == attack["mode"]
    assert not (attack["outside"] / "derby").exists()
    assert not (attack["outside"] / "ctas").exists()
    # The audio folders managed tables were pointed at are as they were, and so are the tables.
    assert (attack["root"] / "attack-victim" / "keep.wav").read_bytes() == b"RIFF"
    assert not list(attack["root"].glob("attack-made*"))
    assert [p.name for p in (attack["root"] / "attack-external").iterdir()] == ["p=kept"]
    cursor.execute("SELECT count(*) FROM attack_kept")
    assert cursor.fetchall() == [(0,)]
    cursor.execute("SELECT v, p FROM attack_parts")
    assert cursor.fetchall() == [("kept", 0)]
    cursor.execute("TRUNCATE TABLE attack_parts")
    cursor.execute("TRUNCATE TABLE attack_kept")
    assert (attack["root"] / "attack-victim" / "keep.wav").read_bytes() == b"RIFF"


@pytest.mark.slow
def test_a_catalog_setting_sent_when_the_session_opens_is_refused_before_analysis(
    server, outside_dir
):
    key = "spark.sql.catalog.a_open"
    with pytest.raises(Exception, match=rf"emoticana: setting {key}=.* in this session is refused"):
        connection = server.connect(
            configuration={f"set:hiveconf:{key}": "org.apache.spark.sql.x.Evil"}
        )
        connection.cursor().execute("SELECT 1")
    with pytest.raises(Exception, match=r"emoticana: setting fs.defaultFS=.* is refused"):
        connection = server.connect(configuration={"set:hiveconf:fs.defaultFS": "file:///etc"})
        connection.cursor().execute("SELECT 1")


#: Settings a client may send as it opens a session, which HiveServer2 acts on before any
#: statement (a JVM system property, the metastore client's settings, a proxy user) or when the
#: session closes (a Derby database created at the named path, a connection to the named
#: metastore): (key, value, the refusal). ``{outside}`` and ``{port}`` are filled in.
OPENING_ATTACKS = {
    "derby database": (
        "set:hiveconf:javax.jdo.option.ConnectionURL",
        "jdbc:derby:;databaseName={outside}/derby-at-close;create=true",
        r"settings under javax\.jdo\.\* are fixed by the server",
    ),
    "metastore": (
        "set:hiveconf:hive.metastore.uris",
        "thrift://127.0.0.1:{port}",
        r"settings under hive\.metastore\.\* are fixed by the server",
    ),
    "system property": (
        "set:system:fs.defaultFS",
        "file:///etc",
        r"opening a session with set:system:fs\.defaultFS is refused",
    ),
    "metastore client": (
        "set:metaconf:hive.metastore.try.direct.sql",
        "false",
        r"opening a session with set:metaconf:",
    ),
    "proxy user": ("hive.server2.proxy.user", "admin", SETTING),
    # HiveServer2 substitutes opening values itself: the variable would hold the environment.
    "environment in a variable": (
        "set:hivevar:home",
        "${{env:HOME}}",
        r"opening a session with set:hivevar:home is refused: .* may not contain \$\{",
    ),
    "setting in a setting": (
        "set:hiveconf:spark.sql.shuffle.partitions",
        "${{hiveconf:hive.server2.thrift.port}}",
        r"may not contain \$\{",
    ),
    "prefix case": (
        "SET:hiveconf:fs.defaultFS",
        "file:///etc",
        r"opening a session with SET:hiveconf:fs\.defaultFS is refused",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", OPENING_ATTACKS, ids=list(OPENING_ATTACKS))
def test_a_session_opened_with_server_settings_is_refused_before_it_exists(
    server, outside_dir, case
):
    key, value, refusal = OPENING_ATTACKS[case]
    # A metastore the server must never call: any connection to it is counted.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    value = value.format(outside=outside_dir, port=listener.getsockname()[1])
    start = len(server.lines)
    try:
        with pytest.raises(Exception) as caught:
            server.connect(configuration={key: value})
        status = caught.value.args[0].status
        assert status.errorMessage.startswith("emoticana: "), status.errorMessage
        assert re.search(refusal, status.errorMessage), status.errorMessage
        assert status.sqlState == "42000" and "\n" not in status.errorMessage
        # A session that was opened after all is closed when its dropped connection is collected.
        gc.collect()
        assert_logged_once(log_lines_since(server, start), key.rsplit(":", 1)[-1])
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert not (outside_dir / "derby-at-close").exists()
    # A system property would also have become "the server's own value" of that setting.
    with pytest.raises(Exception, match=r"setting fs\.defaultFS=file:///etc in this session"):
        server.connect(configuration={"set:hiveconf:fs.defaultFS": "file:///etc"})
    cursor = server.connect(
        configuration={"set:hivevar:x": "1", "use:database": "default"}
    ).cursor()
    cursor.execute("SELECT '${x}'")
    assert cursor.fetchall() == [("1",)]


@pytest.mark.slow
def test_what_users_do_is_still_allowed(attack):
    cursor, root = attack["cursor"], attack["root"]
    statements = [
        f"CREATE TABLE IF NOT EXISTS allowed_csv (path STRING, label STRING) USING csv "
        f"OPTIONS (path '{root}/attack-lists', header 'true', sep ',', mode 'PERMISSIVE')",
        "CREATE TABLE IF NOT EXISTS allowed_hive (a INT, b STRING) ROW FORMAT DELIMITED "
        "FIELDS TERMINATED BY ',' STORED AS TEXTFILE "
        "TBLPROPERTIES ('skip.header.line.count' = '1')",
        "CREATE TABLE IF NOT EXISTS allowed_parquet (a INT) USING parquet",
        "CREATE TABLE allowed_gzip USING csv OPTIONS (compression 'GZIP') AS SELECT 1 AS a",
        "DROP TABLE allowed_gzip",
        "CREATE TABLE IF NOT EXISTS allowed_orc (a INT) STORED AS ORC",
        "INSERT INTO allowed_parquet VALUES (1)",
        # A temporary view has no folder: any name Spark takes is read back (not only a table's).
        "CREATE OR REPLACE TEMPORARY VIEW `allowed-view é` AS SELECT 1 AS a",
        "SELECT * FROM `allowed-view é`",
        # Dropped: closing a session with it fails in Spark itself (its name is not re-quoted).
        "DROP VIEW `allowed-view é`",
        "CREATE OR REPLACE TEMPORARY VIEW allowed_temp AS SELECT a FROM allowed_parquet",
        "CACHE TABLE allowed_temp",
        "UNCACHE TABLE allowed_temp",
        "CREATE OR REPLACE TEMPORARY FUNCTION allowed_twice(x INT) RETURNS INT RETURN x * 2",
        "DECLARE OR REPLACE VARIABLE allowed_var INT DEFAULT 1",
        "SET VAR allowed_var = 2",
        "EXECUTE IMMEDIATE 'SELECT a FROM allowed_parquet'",
        "DESCRIBE FUNCTION emotion",
        "DESCRIBE TABLE allowed_parquet",
        "SHOW CREATE TABLE allowed_parquet",
        "SHOW TABLES LIKE 'allowed_*|attack_k*'",
        "SHOW FUNCTIONS LIKE 'emotion*'",
        "ANALYZE TABLE allowed_parquet COMPUTE STATISTICS",
        "CREATE TABLE allowed_defaults (a INT DEFAULT -1, b STRING DEFAULT 'x', "
        "c DOUBLE DEFAULT CAST(1 AS DOUBLE), d TIMESTAMP DEFAULT current_timestamp()) "
        "USING parquet",
        "INSERT INTO allowed_defaults (a) VALUES (2)",
        "ALTER TABLE allowed_defaults ALTER COLUMN b SET DEFAULT 'y'",
        "INSERT INTO allowed_defaults (a) VALUES (3)",
        f"CREATE TABLE allowed_external (v STRING) USING text LOCATION '{root}/attack-lists'",
        f"ALTER TABLE allowed_external SET LOCATION '{root}/attack-victim'",
        "DROP TABLE allowed_external",
        "ALTER TABLE allowed_parquet SET TBLPROPERTIES ('comment' = 'kept')",
        "EXPLAIN SELECT * FROM allowed_parquet",
        "SET spark.sql.ansi.enabled=true",
        "RESET spark.sql.ansi.enabled",
        "DROP TABLE allowed_csv",
        "DROP TABLE allowed_hive",
        "DROP TABLE allowed_orc",
    ]
    for statement in statements:
        cursor.execute(statement)
    cursor.execute("SELECT allowed_var, count(*), allowed_twice(3) FROM allowed_parquet")
    assert cursor.fetchall() == [(2, 1, 6)]
    cursor.execute("SELECT a, b, c, d IS NOT NULL FROM allowed_defaults ORDER BY a")
    assert cursor.fetchall() == [(2, "x", 1.0, True), (3, "y", 1.0, True)]
    cursor.execute("DROP TABLE allowed_defaults")
    cursor.execute("DROP TABLE allowed_parquet")


@pytest.mark.slow
def test_a_table_over_audio_is_external_and_dropping_it_keeps_the_audio(attack):
    # Spark deletes a managed table's folder with it: a table named onto the audio roots must be
    # external, whichever way it is created, or DROP TABLE would delete the audio.
    cursor, root = attack["cursor"], attack["root"]
    folder = root / "attack-kept-audio"
    folder.mkdir(exist_ok=True)
    (folder / "keep.wav").write_bytes(b"RIFF")
    for name, create in [
        ("over_audio_source", f"CREATE TABLE over_audio_source USING text LOCATION '{folder}'"),
        (
            "over_audio_hive",
            f"CREATE TABLE over_audio_hive (v STRING) STORED AS TEXTFILE LOCATION '{folder}'",
        ),
        (
            "over_audio_like",
            f"CREATE TABLE over_audio_like LIKE attack_kept LOCATION '{folder}'",
        ),
    ]:
        cursor.execute(create)
        cursor.execute(f"DESCRIBE TABLE EXTENDED {name}")
        described = {row[0].strip(): (row[1] or "").strip() for row in cursor.fetchall()}
        assert described["Type"] == "EXTERNAL", (name, described)
        cursor.execute(f"DROP TABLE {name}")
        assert (folder / "keep.wav").read_bytes() == b"RIFF", name
