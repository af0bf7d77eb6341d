"""The SQL contract through the real server and PyHive's DB-API."""

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from server.spark import METADATA_TTL
from udfs.audio import decode_audio
from udfs.features import DEFAULT_FEATURES, mfcc_features
from udfs.registry import SQL_FUNCTIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def scalar(cursor, sql, parameters=None):
    cursor.execute(sql, parameters)
    rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return rows[0][0]


def sql_string(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def example_call(function, audio_root) -> str:
    clip = sql_string(audio_root / "ravdess" / "03-01-05-02-01-02-12.wav")
    return f"{function.name}({function.example_args.format(clip=clip)})"


def test_every_registered_function_is_callable(cursor, audio_root):
    for function in SQL_FUNCTIONS:
        call = example_call(function, audio_root)
        if function.kind == "table":
            cursor.execute(f"SELECT * FROM {call}")
            assert len(cursor.fetchall()) >= 1, function.name
        else:
            assert scalar(cursor, f"SELECT {call}") is not None, function.name


def test_functions_have_their_declared_types(cursor, audio_root):
    for function in SQL_FUNCTIONS:
        call = example_call(function, audio_root)
        if function.kind == "table":
            cursor.execute(f"DESCRIBE QUERY SELECT * FROM {call}")
            declared = [(name, kind) for name, kind, _ in cursor.fetchall()]
            columns = function.return_ddl.removeprefix("table<").removesuffix(">")
            # Commas inside a column's type (map<string,double>) do not end the column.
            expected = [
                tuple(column.strip().split(None, 1)) for column in re.split(r",(?![^<]*>)", columns)
            ]
            assert declared == expected, function.name
        else:
            cursor.execute(f"SELECT typeof({call})")
            assert cursor.fetchall()[0][0].replace(" ", "") == function.return_ddl.replace(
                " ", ""
            ), function.name


def test_readme_documents_every_function():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for function in SQL_FUNCTIONS:
        assert f"`{function.signature}`" in readme, function.signature


def test_audio_info_path_and_bytes_identical(cursor, audio_root):
    cursor.execute(
        "CREATE OR REPLACE TEMPORARY VIEW variants USING binaryFile "
        f"OPTIONS (path {sql_string(audio_root / 'variants')})"
    )
    cursor.execute(
        "SELECT path, to_json(audio_info(path)), to_json(audio_info(content)) "
        "FROM variants ORDER BY path"
    )
    rows = cursor.fetchall()
    assert len(rows) == 8
    for path, from_path, from_bytes in rows:
        assert from_path == from_bytes, path
        info = json.loads(from_path)
        assert info.get("error") is None and info["sample_rate"] > 0 and info["frames"] > 0


@pytest.fixture(scope="module")
def variants_table(server, audio_root):
    connection = server.connect()
    cursor = connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS variant_clips")
    cursor.execute(
        "CREATE TABLE variant_clips USING binaryFile "
        f"OPTIONS (path {sql_string(audio_root / 'variants')}, pathGlobFilter '*.*')"
    )
    yield "variant_clips"
    connection.close()


def test_mfcc_path_bytes_and_local_agree(cursor, variants_table, audio_root):
    cursor.execute(
        "SELECT path, to_json(mfcc(path)), to_json(mfcc(content)) "
        f"FROM {variants_table} ORDER BY path"
    )
    rows = cursor.fetchall()
    assert len(rows) == 8
    for path, from_path, from_bytes in rows:
        assert from_path == from_bytes, path
        remote = np.asarray(json.loads(from_path), dtype=np.float32)
        local_path = path[len("file:") :] if path.startswith("file:") else path
        with open(local_path, "rb") as handle:
            y, rate = decode_audio(handle.read())
        local = mfcc_features(y, rate).ravel()
        assert remote.shape == (DEFAULT_FEATURES.n_rows * DEFAULT_FEATURES.n_frames,)
        np.testing.assert_allclose(remote, local, rtol=0, atol=1e-3)


def test_bad_rows_give_null_and_reason_while_good_rows_survive(cursor, audio_root, outside_dir):
    bad = audio_root / "bad"
    cases = {
        "missing": (str(audio_root / "nope.wav"), "no such file"),
        "directory": (str(bad / "a_directory.wav"), "is a directory"),
        "empty": (str(bad / "empty.wav"), "empty audio"),
        "header_only": (str(bad / "header_only.wav"), "no audio samples"),
        "truncated": (str(bad / "truncated_header.wav"), "not a readable audio file"),
        "random": (str(bad / "random.wav"), "not a readable audio file"),
        "text": (str(bad / "text.wav"), "not a readable audio file"),
        "one_hertz": (str(bad / "one_hertz.wav"), "sample rate 1 Hz is below 4000 Hz"),
        "outside": (str(outside_dir / "secret.wav"), "outside the readable audio roots"),
        "dotdot": (
            f"{audio_root}/../{outside_dir.name}/secret.wav",
            "outside the readable audio roots",
        ),
        "good": (str(audio_root / "variants" / "clip_16k.flac"), None),
    }
    values = ", ".join(f"({sql_string(k)}, {sql_string(p)})" for k, (p, _) in cases.items())
    cursor.execute(
        f"SELECT k, mfcc(p) IS NULL, audio_info(p).error FROM VALUES {values} AS t(k, p) ORDER BY k"
    )
    results = {k: (is_null, error) for k, is_null, error in cursor.fetchall()}
    assert set(results) == set(cases)
    for key, (_, reason) in cases.items():
        is_null, error = results[key]
        if reason is None:
            assert not is_null and error is None
        else:
            assert is_null, key
            assert reason in error, (key, error)


def test_symlink_escape_is_refused(cursor, audio_root, outside_dir):
    link = audio_root / "escape.wav"
    if not link.exists():
        link.symlink_to(outside_dir / "secret.wav")
    assert "outside" in scalar(cursor, f"SELECT audio_info({sql_string(link)}).error")
    assert scalar(cursor, f"SELECT mfcc({sql_string(link)}) IS NULL") is True


def test_null_and_non_audio_bytes(cursor):
    assert scalar(cursor, "SELECT audio_info(CAST(NULL AS BINARY)).error") == "audio is NULL"
    assert scalar(cursor, "SELECT mfcc(CAST(NULL AS STRING)) IS NULL") is True
    assert "empty path" in scalar(cursor, "SELECT audio_info('').error")
    assert "not a readable audio file" in scalar(
        cursor, "SELECT audio_info(CAST('hello, world' AS BINARY)).error"
    )


def test_ravdess_meta(cursor):
    cursor.execute(
        "SELECT m.emotion, m.actor, m.gender, m.intensity, m.repetition, m IS NULL "
        "FROM (SELECT ravdess_meta('file:/d/03-01-05-02-01-02-12.wav') AS m)"
    )
    assert cursor.fetchall() == [("angry", 12, "female", "strong", 2, False)]
    assert scalar(cursor, "SELECT ravdess_meta('not-ravdess.wav') IS NULL") is True


def test_ravdess_table_query(cursor, audio_root):
    cursor.execute(
        "CREATE OR REPLACE TEMPORARY VIEW rav USING binaryFile "
        f"OPTIONS (path {sql_string(audio_root / 'ravdess')})"
    )
    cursor.execute(
        "SELECT ravdess_meta(path).emotion AS emotion, size(mfcc(content)) "
        "FROM rav ORDER BY emotion"
    )
    assert cursor.fetchall() == [("angry", 12943), ("neutral", 12943), ("surprised", 12943)]


def test_sessions_are_isolated_but_share_functions(server, audio_root):
    first, second = server.connect(), server.connect()
    try:
        a, b = first.cursor(), second.cursor()
        a.execute("CREATE DATABASE IF NOT EXISTS iso_db")
        a.execute("USE iso_db")
        a.execute("SET spark.sql.emoticana_test.flag=on")
        a.execute("CREATE OR REPLACE TEMPORARY VIEW only_in_a AS SELECT 1 AS x")
        assert scalar(b, "SELECT current_database()") == "default"
        b.execute("SET spark.sql.emoticana_test.flag")
        assert b.fetchall()[0][1] == "<undefined>"
        with pytest.raises(Exception, match="only_in_a"):
            b.execute("SELECT * FROM only_in_a")
        assert scalar(a, "SELECT current_database()") == "iso_db"
        assert scalar(a, "SELECT x FROM only_in_a") == 1
        # both sessions see the functions
        clip = sql_string(audio_root / "variants" / "clip_16k.flac")
        assert scalar(a, f"SELECT audio_info({clip}).sample_rate") == 16000
        assert scalar(b, f"SELECT audio_info({clip}).sample_rate") == 16000
    finally:
        first.close()
        second.close()


def test_every_statement_reads_tables_as_they_are_now(server, audio_root):
    """A dashboard's long-lived session sees another session's writes at once, and new recordings
    in a binaryFile table's folder without REFRESH TABLE."""
    first, second = server.connect(), server.connect()
    try:
        writer, reader = first.cursor(), second.cursor()
        writer.execute("CREATE TABLE seen_now USING parquet AS SELECT id FROM range(3)")
        assert scalar(reader, "SELECT count(*) FROM seen_now") == 3
        writer.execute("INSERT INTO seen_now SELECT id FROM range(10, 15)")
        assert scalar(reader, "SELECT count(*) FROM seen_now") == 8
        writer.execute("INSERT OVERWRITE seen_now SELECT 42")
        reader.execute("SELECT id FROM seen_now")
        assert reader.fetchall() == [(42,)]
        writer.execute("DROP TABLE seen_now")
        writer.execute("CREATE TABLE seen_now USING parquet AS SELECT 'again' AS word")
        assert scalar(reader, "SELECT word FROM seen_now") == "again"
        # A cached table is still read from the cache by later statements of any session.
        writer.execute("CACHE TABLE seen_now")
        for cursor in (writer, reader):
            cursor.execute("EXPLAIN SELECT word FROM seen_now")
            assert "InMemoryRelation" in cursor.fetchall()[0][0]
        writer.execute("UNCACHE TABLE seen_now")
        # Statements that change a table without a commit: seen at once as well.
        writer.execute("TRUNCATE TABLE seen_now")
        assert scalar(reader, "SELECT count(*) FROM seen_now") == 0
        writer.execute("DROP TABLE seen_now")
        writer.execute("CREATE TABLE seen_now (name STRING, n INT) USING parquet")
        reader.execute("INSERT INTO seen_now VALUES ('new', 1)")
        writer.execute("SELECT name, n FROM seen_now")
        assert writer.fetchall() == [("new", 1)]
        writer.execute("/* a comment first */ ALTER TABLE seen_now RENAME TO seen_before")
        writer.execute("CREATE TABLE seen_now (other DOUBLE) USING parquet")
        reader.execute("INSERT INTO seen_now VALUES (2.5)")
        assert scalar(writer, "SELECT other FROM seen_now") == 2.5

        folder = audio_root / "arriving"
        folder.mkdir()
        clip = (audio_root / "variants" / "clip_16k.flac").read_bytes()
        (folder / "first.flac").write_bytes(clip)
        reader.execute(
            f"CREATE TABLE arriving USING binaryFile OPTIONS (path {sql_string(folder)})"
        )
        assert scalar(reader, "SELECT count(*) FROM arriving") == 1
        (folder / "second.flac").write_bytes(clip)
        # A file that arrives outside the server is seen once the session's listing is older
        # than spark.sql.metadataCacheTTLSeconds.
        time.sleep(float(METADATA_TTL.rstrip("s")) + 1)
        assert scalar(reader, "SELECT count(*) FROM arriving") == 2
        assert scalar(writer, "SELECT count(*) FROM arriving") == 2
    finally:
        first.close()
        second.close()


def test_rows_arrive_whole_with_their_nulls(cursor):
    """The server answers a fetch with rows it took from the result a few at a time
    (ServiceHooks.fetchResults): every value and null mark stays on its row."""
    cursor.execute(
        "SELECT id, IF(id % 3 = 0, NULL, id * 2) AS v, IF(id % 5 = 0, NULL, repeat('x', id)) AS s, "
        "IF(id % 7 = 0, NULL, id % 2 = 0) AS b, IF(id % 4 = 0, NULL, id / 8) AS d FROM range(700)"
    )
    assert cursor.fetchall() == [
        (
            i,
            None if i % 3 == 0 else 2 * i,
            None if i % 5 == 0 else "x" * i,
            None if i % 7 == 0 else i % 2 == 0,
            None if i % 4 == 0 else i / 8,
        )
        for i in range(700)
    ]


def test_a_cached_table_reads_what_a_truncate_left(server):
    """TRUNCATE refreshes a cached table through the session's own resolved table, which the
    server makes a session forget after another statement changed tables: the cache then kept
    the deleted files and every read of the table failed, in every session, until UNCACHE."""
    one, two = server.connect().cursor(), server.connect().cursor()

    def count(cursor):
        cursor.execute("SELECT count(*) FROM cached_then_truncated")
        return cursor.fetchall()[0][0]

    one.execute("CREATE TABLE cached_then_truncated (id INT) USING parquet")
    one.execute("INSERT INTO cached_then_truncated VALUES (1), (2)")
    one.execute("CACHE TABLE cached_then_truncated")
    assert (count(one), count(two)) == (2, 2)
    one.execute("TRUNCATE TABLE cached_then_truncated")
    assert (count(one), count(two)) == (0, 0)
    one.execute("INSERT INTO cached_then_truncated VALUES (3)")
    assert (count(two), count(one)) == (1, 1)
    two.execute("TRUNCATE TABLE cached_then_truncated")
    assert (count(one), count(two)) == (0, 0)
    one.execute("UNCACHE TABLE cached_then_truncated")
    one.execute("DROP TABLE cached_then_truncated")


def test_persistent_view_may_use_the_functions(cursor, audio_root):
    cursor.execute("DROP TABLE IF EXISTS default.variant_files")
    cursor.execute(
        "CREATE TABLE default.variant_files USING binaryFile "
        f"OPTIONS (path {sql_string(audio_root / 'variants')})"
    )
    cursor.execute(
        "CREATE OR REPLACE VIEW default.variant_info AS "
        "SELECT path, audio_info(content).sample_rate AS rate FROM default.variant_files"
    )
    cursor.execute("SELECT count(*), min(rate), max(rate) FROM default.variant_info")
    assert cursor.fetchall() == [(8, 8000, 96000)]
