"""Opt-in settings: strict mode, and the SQL sandbox turned off; SQL-on-files closed by default."""

import pytest

from server.process import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def opt_in_server(tmp_path_factory, audio_root):
    """A server with both opt-ins an administrator may choose: ``--strict``, and the SQL sandbox
    turned off (``EMOTICANA_SQL_SANDBOX=off``). Neither changes what the other's test checks."""
    running = ServerProcess(
        home=tmp_path_factory.mktemp("opt-in-home"),
        audio_roots=[audio_root],
        extra_args=["--strict"],
        env={"EMOTICANA_SQL_SANDBOX": "off"},
    ).start()
    yield running
    running.stop()


def test_sql_on_files_is_closed(cursor, audio_root):
    with pytest.raises(
        Exception, match="(?i)runSQLOnFiles|UNSUPPORTED|not supported|cannot be found"
    ):
        cursor.execute(f"SELECT * FROM binaryFile.`{audio_root}/variants`")
        cursor.fetchall()


def test_strict_mode_fails_the_query_naming_the_file(opt_in_server, audio_root):
    cursor = opt_in_server.connect().cursor()
    good = audio_root / "variants" / "clip_16k.flac"
    bad = audio_root / "bad" / "random.wav"
    cursor.execute(f"SELECT size(mfcc('{good}')), emotion('{good}') IS NOT NULL")
    assert cursor.fetchall() == [(12943, True)]
    with pytest.raises(
        Exception, match="strict mode: cannot use .*random.wav.*not a readable audio file"
    ):
        cursor.execute(f"SELECT mfcc(p) FROM VALUES ('{good}'), ('{bad}') AS t(p)")
        cursor.fetchall()
    with pytest.raises(Exception, match="strict mode: cannot use .*random.wav"):
        cursor.execute(f"SELECT emotion('{bad}')")
        cursor.fetchall()
    # audio_info stays the diagnostic: it reports instead of failing
    cursor.execute(f"SELECT audio_info('{bad}').error")
    assert "not a readable audio file" in cursor.fetchall()[0][0]


@pytest.mark.slow
def test_the_escape_hatch_turns_the_sandbox_off(opt_in_server, outside_dir):
    cursor = opt_in_server.connect().cursor()
    cursor.execute(f"CREATE TABLE outside_clips USING binaryFile OPTIONS (path '{outside_dir}')")
    cursor.execute("SELECT count(*) FROM outside_clips")
    assert cursor.fetchall() == [(1,)]
    cursor.execute("SELECT reflect('java.lang.String', 'valueOf', 'open')")
    assert cursor.fetchall() == [("open",)]
    cursor.execute("SET spark.sql.runSQLOnFiles=true")
    cursor.execute(f"SELECT count(*) FROM binaryFile.`{outside_dir}`")
    assert cursor.fetchall() == [(1,)]
