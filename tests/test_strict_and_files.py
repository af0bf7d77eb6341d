"""Opt-in strict mode, and SQL-on-files closed by default."""

import pytest

from server.process import ServerProcess

pytestmark = pytest.mark.slow


def test_sql_on_files_is_closed(cursor, audio_root):
    with pytest.raises(
        Exception, match="(?i)runSQLOnFiles|UNSUPPORTED|not supported|cannot be found"
    ):
        cursor.execute(f"SELECT * FROM binaryFile.`{audio_root}/variants`")
        cursor.fetchall()


def test_strict_mode_fails_the_query_naming_the_file(tmp_path, audio_root):
    strict = ServerProcess(
        home=tmp_path / "home", audio_roots=[audio_root], extra_args=["--strict"]
    ).start()
    try:
        cursor = strict.connect().cursor()
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
    finally:
        strict.stop()
