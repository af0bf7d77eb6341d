"""Tables and views survive a restart; a killed server restarts without manual clean-up."""

import signal

import pytest

from server.process import ServerProcess

pytestmark = pytest.mark.slow


def test_restart_keeps_tables_and_views_and_lock_is_exclusive(tmp_path, audio_root):
    home = tmp_path / "home"
    first = ServerProcess(home=home, audio_roots=[audio_root]).start()
    try:
        connection = first.connect()
        cursor = connection.cursor()
        cursor.execute(
            f"CREATE TABLE kept USING binaryFile OPTIONS (path '{audio_root / 'ravdess'}')"
        )
        cursor.execute(
            "CREATE VIEW kept_emotions AS SELECT ravdess_meta(path).emotion AS emotion FROM kept"
        )
        cursor.execute("CREATE TABLE kept_numbers USING parquet AS SELECT id FROM range(5)")
        connection.close()

        rival = ServerProcess(home=home, audio_roots=[audio_root])
        with pytest.raises(RuntimeError, match="is locked by another Emoticana server"):
            rival.start(timeout_s=120)
    finally:
        assert first.stop(signal.SIGTERM) == 0
    assert "Emoticana stopping" in first.output()

    second = ServerProcess(home=home, audio_roots=[audio_root]).start()
    try:
        cursor = second.connect().cursor()
        cursor.execute("SELECT emotion FROM kept_emotions ORDER BY emotion")
        assert cursor.fetchall() == [("angry",), ("neutral",), ("surprised",)]
        cursor.execute("SELECT sum(id) FROM kept_numbers")
        assert cursor.fetchall() == [(10,)]
    finally:
        second.process.kill()  # kill -9: no clean shutdown, Derby and the lock left as they are
        second.process.wait(30)

    third = ServerProcess(home=home, audio_roots=[audio_root]).start()
    try:
        cursor = third.connect().cursor()
        cursor.execute("SELECT count(*) FROM kept")
        assert cursor.fetchall() == [(3,)]
    finally:
        assert third.stop() == 0
