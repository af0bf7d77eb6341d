"""Durability: tables, views and the active model across a clean stop and across kill -9 during
CREATE TABLE AS SELECT, the state directory's lock, broken model files."""

import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from server.cluster import free_port
from server.preflight import read_spark_defaults
from server.process import PROJECT_ROOT, ServerProcess
from server.warehouse import orphaned_table_dirs
from tests.helpers import assert_one_line_failure, running_jobs, serve
from tests.processes import kill_tree, process_tree
from udfs.model_store import DEFAULT_MODEL

SHIPPED_MODEL = PROJECT_ROOT / "models" / DEFAULT_MODEL
#: A version the repository does not ship: the copy of the shipped model goes there.
COPY = 90
CTAS_ROWS = 8_000_000
CTAS = (
    f"CREATE TABLE big USING parquet AS SELECT id, sha2(CAST(id AS STRING), 256) AS digest "
    f"FROM range(0, {CTAS_ROWS}, 1, 8)"
)
#: The same table again after the restart, smaller: the name must be usable, the rows complete.
AGAIN_ROWS = 100_000
CTAS_AGAIN = CTAS.replace(f"range(0, {CTAS_ROWS}, 1, 8)", f"range(0, {AGAIN_ROWS}, 1, 8)")


def copy_shipped_model(home: Path, version: int) -> Path:
    """The shipped model as another version in the state directory's model store."""
    target = home / "models" / "emoticana" / str(version)
    shutil.copytree(SHIPPED_MODEL, target)
    return target


def kill_minus_nine(server: ServerProcess) -> None:
    kill_tree(server.process.pid)
    server.process.wait(30)


def active_model(cursor) -> list:
    cursor.execute("SELECT name, version FROM emotion_models() WHERE active")
    return cursor.fetchall()


@pytest.mark.slow
def test_state_survives_a_clean_stop_and_kill_during_ctas_leaves_all_or_nothing(
    tmp_path, audio_root
):
    """One state directory, three servers: a clean stop, then kill -9 of the whole process tree in
    the middle of a CREATE TABLE AS SELECT (Derby and the lock left as they are), then a restart."""
    home = tmp_path / "home"
    copy_shipped_model(home, COPY)
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
        cursor.execute(f"SELECT activate_model('emoticana/{COPY}')")
        assert active_model(cursor) == [("emoticana", COPY)]
        connection.close()

        rival = ServerProcess(home=home, audio_roots=[audio_root])
        with pytest.raises(RuntimeError, match="is locked by another Emoticana server"):
            rival.start(timeout_s=120)
    finally:
        assert first.stop(signal.SIGTERM) == 0
    assert "Emoticana stopping" in first.output()

    second = ServerProcess(home=home, audio_roots=[audio_root]).start()
    outcome = {}
    try:
        cursor = second.connect().cursor()
        cursor.execute("SELECT emotion FROM kept_emotions ORDER BY emotion")
        assert cursor.fetchall() == [("angry",), ("neutral",), ("surprised",)]
        cursor.execute("SELECT sum(id) FROM kept_numbers")
        assert cursor.fetchall() == [(10,)]
        assert active_model(cursor) == [("emoticana", COPY)]

        def create_big():
            try:
                second.connect().cursor().execute(CTAS)
                outcome["finished"] = True
            except Exception as exc:  # the connection dies with the server
                outcome["error"] = exc

        writer = threading.Thread(target=create_big, daemon=True)
        writer.start()
        table_dir = home / "warehouse" / "big"
        deadline = time.monotonic() + 120
        while (
            not any(table_dir.rglob("part-*")) and time.monotonic() < deadline and writer.is_alive()
        ):
            time.sleep(0.2)
        assert writer.is_alive() and any(table_dir.rglob("part-*")), (
            "the CTAS should be writing when the server is killed"
        )
        kill_minus_nine(second)
        writer.join(60)
    finally:
        second.stop()
    assert "finished" not in outcome
    assert (home / "models" / "ACTIVE").read_text().strip() == f"emoticana/{COPY}"

    third = ServerProcess(home=home, audio_roots=[audio_root]).start()
    try:
        cursor = third.connect().cursor()
        assert active_model(cursor) == [("emoticana", COPY)]
        cursor.execute("SELECT count(*) FROM kept")
        assert cursor.fetchall() == [(3,)]
        cursor.execute("SHOW TABLES LIKE 'big'")
        if cursor.fetchall():  # all of it ...
            cursor.execute("SELECT count(*) FROM big")
            assert cursor.fetchall() == [(CTAS_ROWS,)]
            cursor.execute("DROP TABLE big")
        else:  # ... or nothing, and its half-written directory out of the way
            assert "table directory that no table uses" in third.output()
            assert list((home / "orphaned").glob("*/big"))
        cursor.execute(CTAS_AGAIN)
        cursor.execute("SELECT count(*), count(DISTINCT digest) FROM big")
        assert cursor.fetchall() == [(AGAIN_ROWS, AGAIN_ROWS)]
    finally:
        assert third.stop() == 0


def test_orphaned_dirs_are_only_those_no_table_or_database_uses(tmp_path):
    warehouse = tmp_path / "warehouse"
    for name in (
        "kept",
        "orphan",
        "sales.db/orders",
        "sales.db/stale",
        "ext/inner",
        "_tmp",
        ".hidden",
    ):
        (warehouse / name).mkdir(parents=True)
    (warehouse / "a_file").write_text("not a directory")
    databases = {warehouse, warehouse / "sales.db", tmp_path / "elsewhere.db"}
    tables = {
        warehouse / "kept",
        warehouse / "sales.db" / "orders",
        warehouse / "ext" / "inner",
        tmp_path / "outside",
    }
    assert orphaned_table_dirs(warehouse, databases, tables) == [
        warehouse / "orphan",
        warehouse / "sales.db" / "stale",
    ]


def break_active_model(home: Path, how: str) -> Path:
    directory = copy_shipped_model(home, COPY)
    (home / "models" / "ACTIVE").write_text(f"emoticana/{COPY}\n")
    model_file = directory / "model.keras"
    if how == "truncated":
        data = model_file.read_bytes()
        model_file.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        model_file.write_bytes(b"\x00not a keras archive\xff" * 1000)
    else:
        model_file.unlink()
    return model_file


@pytest.mark.parametrize("how", ["truncated", "garbage", "missing"])
def test_broken_active_model_file_stops_startup_naming_it(tmp_path, how):
    model_file = break_active_model(tmp_path / "home", how)
    result = serve(tmp_path, "--port", str(free_port()), "--console-port", "0")
    assert_one_line_failure(result, f"active model emoticana/{COPY}")
    line = result.stderr.strip()
    assert str(model_file) in line or (
        str(model_file.parent) in line and model_file.name in line
    ), line


def test_activation_replaces_the_pointer_whole_and_leaves_no_temporary_file(tmp_path):
    from udfs.features import DEFAULT_FEATURES
    from udfs.model_store import ModelStore

    home = tmp_path / "home"
    copy_shipped_model(home, COPY)
    store = ModelStore((str(home / "models"), str(PROJECT_ROOT / "models")), DEFAULT_FEATURES)
    assert store.active_reference() == DEFAULT_MODEL
    store.activate(f"emoticana/{COPY}")
    assert store.active_reference() == f"emoticana/{COPY}"
    store.activate(DEFAULT_MODEL)
    assert (home / "models" / "ACTIVE").read_text() == DEFAULT_MODEL + "\n"
    assert sorted(p.name for p in (home / "models").iterdir()) == ["ACTIVE", "emoticana"]


@pytest.mark.parametrize(
    "master, expected",
    [
        ("local[*]", "local[*,4]"),
        ("local[2]", "local[2,4]"),
        ("local", "local[1,4]"),
        ("local[2,1]", "local[2,1]"),  # the operator's own choice
        ("spark://127.0.0.1:7077", "spark://127.0.0.1:7077"),
    ],
)
def test_the_server_retries_tasks_in_local_mode(master, expected):
    from server.spark import with_task_retries

    assert with_task_retries(master) == expected


def python_workers(server: ServerProcess) -> list[int]:
    """The server's forked PySpark workers: children of its Python daemon process (a fork keeps
    its parent's command line, so the daemon is the one whose parent is not a daemon)."""
    from server.spark import SERVER_DAEMON_MODULE

    tree = process_tree(server.process.pid)
    forked = []
    for pid in tree:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if SERVER_DAEMON_MODULE.encode() in command:
            forked.append(pid)
    daemons = [pid for pid in forked if _parent(pid) not in forked]
    return [pid for pid in forked if _parent(pid) in daemons]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


@pytest.mark.slow
def test_a_python_worker_killed_mid_query_costs_a_retry_not_the_query(server, views):
    """Killed (out of memory, by an operator) during a UDF, a worker's task runs again."""
    import os

    cursor = server.connect().cursor()
    cursor.execute("SELECT count(mfcc(content)) FROM synth")  # the clips with features
    clips = cursor.fetchall()[0][0]
    query = (
        "SELECT count(m) FROM (SELECT mfcc(s.content) AS m FROM synth s "
        "CROSS JOIN range(12) r) WHERE m IS NOT NULL"
    )
    result: dict = {}

    def run():
        try:
            cursor.execute(query)
            result["rows"] = cursor.fetchall()
        except Exception as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        if python_workers(server):
            time.sleep(1.0)  # into the UDF's work; every worker then, the busy ones among them
            for pid in python_workers(server):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        else:
            time.sleep(0.2)
    thread.join(600)
    assert killed, "no Python worker to kill appeared"
    assert "error" not in result, result.get("error")
    assert result["rows"] == [(clips * 12,)]


@pytest.mark.slow
def test_a_query_that_runs_out_of_heap_fails_alone_and_the_server_stays_up(server):
    cursor = server.connect().cursor()
    with pytest.raises(Exception) as caught:
        cursor.execute("SELECT max(size(sequence(1L, id + 700000000L))) FROM range(1)")
    message = caught.value.args[0].status.errorMessage
    assert message == (
        "the statement ran out of memory (java.lang.OutOfMemoryError: Java heap space) and failed "
        "alone; the server is unaffected: ask for less per row or per query"
    )
    other = server.connect().cursor()
    other.execute("SELECT 1")
    assert other.fetchall() == [(1,)]


#: A statement whose tasks each run for seconds on this machine's cores; it must end exact.
#: A statement whose tasks would run for hours: only preemption lets another query in.
HOG_ROWS = 10_000_000_000_000


@pytest.mark.slow
def test_one_statement_cannot_hold_every_slot_and_a_preempted_task_runs_again(server):
    """Every slot runs the hog's tasks, which last for hours: the other session's query answers
    only because a hog task is preempted, and the preempted task is queued and runs again."""
    from TCLIService.ttypes import TOperationState

    def hog_holds_every_slot() -> bool:  # 2 slots in local mode here
        return any(job["numActiveTasks"] >= 2 for job in running_jobs(server.ui_port))

    hog = server.connect().cursor()
    hog.execute(f"SELECT count(*) FROM range({HOG_ROWS})", async_=True)
    try:
        deadline = time.monotonic() + 60
        while not hog_holds_every_slot():
            assert time.monotonic() < deadline, "the hog did not start"
            time.sleep(0.2)
        other = server.connect().cursor()
        answer: dict = {}
        thread = threading.Thread(
            target=lambda: answer.update(
                rows=(other.execute("SELECT count(*) FROM range(1000)"), other.fetchall())[1]
            ),
            daemon=True,
        )
        thread.start()
        thread.join(120)
        assert answer.get("rows") == [(1000,)]
        assert hog.poll().operationState == TOperationState.RUNNING_STATE
        # The preempted task runs again: the hog holds every slot once more.
        deadline = time.monotonic() + 60
        while not hog_holds_every_slot():
            assert time.monotonic() < deadline, "the preempted task did not run again"
            time.sleep(0.2)
    finally:
        hog.cancel()


@pytest.mark.slow
def test_python_workers_run_under_the_configured_memory_limit(server, views):
    """The server's memory limit reaches every Python worker that ran a UDF (local mode too)."""
    from server.spark import PYSPARK_WORKER_MEMORY as limit

    assert "spark.executor.pyspark.memory" not in read_spark_defaults(
        PROJECT_ROOT / "conf" / "spark-defaults.conf"
    )
    assert limit.endswith("g")
    expected = int(limit[:-1]) << 30
    cursor = server.connect().cursor()
    cursor.execute("SELECT count(mfcc(content)) FROM synth")
    cursor.fetchall()
    workers = python_workers(server)
    assert workers
    for pid in workers:
        limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
        address_space = next(line for line in limits if line.startswith("Max address space"))
        assert address_space.split()[3:5] == [str(expected), str(expected)], address_space


@pytest.mark.slow
def test_a_file_too_large_for_a_row_fails_at_once_naming_it(server, audio_root):
    """A binaryFile row holds a whole file in the heap: past the bound, the query fails before
    reading it (a sparse file, so nothing is written) and the server stays up."""
    folder = audio_root / "huge"
    folder.mkdir()
    with open(folder / "huge.wav", "wb") as huge:
        huge.truncate(300 << 20)
    cursor = server.connect().cursor()
    cursor.execute(
        f"CREATE TABLE huge_files USING binaryFile OPTIONS (path '{folder}', "
        "pathGlobFilter '*.wav')"
    )
    try:
        with pytest.raises(Exception) as caught:
            cursor.execute("SELECT length(content) FROM huge_files")
        message = caught.value.args[0].status.errorMessage
        assert message.startswith(f"file file:{folder / 'huge.wav'} is {300 << 20} bytes, which ")
        assert "exceeds the max length allowed: 268435456 bytes" in message
        assert "\n" not in message
        cursor.execute("SELECT count(*) FROM huge_files")
        assert cursor.fetchall() == [(1,)]
    finally:
        cursor.execute("DROP TABLE huge_files")
        shutil.rmtree(folder)  # other tests list the audio root


def test_insert_overwrite_that_fails_keeps_the_rows_it_would_replace(cursor, server):
    """Spark clears a table's folder before INSERT OVERWRITE writes; the server's commit protocol
    (server/java/org/emoticana/storage/) removes the old files only when the new ones commit."""

    def rows(sql):
        cursor.execute(sql)
        return cursor.fetchall()

    failing = "IF(id = 105, raise_error('overwrite stopped midway'), id)"
    cursor.execute("CREATE TABLE overwritten USING parquet AS SELECT id FROM range(5)")
    with pytest.raises(Exception, match="overwrite stopped midway"):
        cursor.execute(f"INSERT OVERWRITE overwritten SELECT {failing} FROM range(100, 110, 1, 2)")
    assert rows("SELECT count(*), sum(id) FROM overwritten") == [(5, 10)]
    cursor.execute("INSERT OVERWRITE overwritten SELECT id FROM range(100, 103)")
    assert rows("SELECT count(*), sum(id) FROM overwritten") == [(3, 303)]
    table_dir = server.home / "warehouse" / "overwritten"
    assert not (table_dir / "_temporary").exists()
    # What a statement killed with the server (kill -9) leaves: committed task files under
    # _temporary/0. Neither an append nor an overwrite takes them into the table.
    stale = table_dir / "_temporary" / "0" / "task_202612070000_0000_m_000000"
    stale.mkdir(parents=True)
    for number, part in enumerate(sorted(table_dir.glob("part-*.parquet"))):
        shutil.copy(part, stale / f"part-{number:05d}-killed-c000.snappy.parquet")
    cursor.execute("INSERT INTO overwritten SELECT 7")
    assert rows("SELECT count(*), sum(id) FROM overwritten") == [(4, 310)]
    stale.mkdir(parents=True)
    shutil.copy(next(table_dir.glob("part-*.parquet")), stale / "part-00000-killed.parquet")
    cursor.execute("INSERT OVERWRITE overwritten SELECT 8")
    assert rows("SELECT count(*), sum(id) FROM overwritten") == [(1, 8)]
    assert not (table_dir / "_temporary").exists()

    cursor.execute(
        "CREATE TABLE overwritten_parts USING parquet PARTITIONED BY (part) AS "
        "SELECT id, CAST(id % 2 AS INT) AS part FROM range(10)"
    )
    with pytest.raises(Exception, match="overwrite stopped midway"):
        cursor.execute(
            f"INSERT OVERWRITE overwritten_parts PARTITION (part = 1) "
            f"SELECT {failing} FROM range(100, 110, 1, 2)"
        )
    assert rows("SELECT part, count(*) FROM overwritten_parts GROUP BY part ORDER BY part") == [
        (0, 5),
        (1, 5),
    ]
    cursor.execute("INSERT OVERWRITE overwritten_parts PARTITION (part = 1) SELECT 42")
    assert rows("SELECT part, sum(id) FROM overwritten_parts GROUP BY part ORDER BY part") == [
        (0, 20),
        (1, 42),
    ]
    cursor.execute("INSERT OVERWRITE overwritten_parts SELECT 7, 0")
    assert rows("SELECT id, part FROM overwritten_parts") == [(7, 0)]
    assert not (server.home / "warehouse" / "overwritten_parts" / "part=1").exists()

    # A CREATE TABLE AS SELECT that fails leaves nothing that keeps the name from being used again
    # (the writer's lock file goes when it is all the folder holds).
    with pytest.raises(Exception, match="overwrite stopped midway"):
        cursor.execute(
            f"CREATE TABLE failed_ctas USING parquet AS SELECT {failing} AS id "
            "FROM range(100, 110, 1, 2)"
        )
    cursor.execute("CREATE TABLE failed_ctas USING parquet AS SELECT 1 AS id")
    assert rows("SELECT id FROM failed_ctas") == [(1,)]


def test_one_statement_at_a_time_writes_into_a_table(cursor, server):
    """Two jobs writing one table share the output committer's _temporary/0, and the first to
    commit would take the other's files with its own: the second writer is refused at once."""
    cursor.execute("CREATE TABLE appended (id BIGINT, digest STRING) USING parquet")
    rows = 6_000_000
    outcome = {}

    def append_many():
        try:
            server.connect().cursor().execute(
                "INSERT INTO appended SELECT id, sha2(CAST(id AS STRING), 256) "
                f"FROM range(0, {rows}, 1, 8)"
            )
            outcome["finished"] = True
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    writer = threading.Thread(target=append_many, daemon=True)
    writer.start()
    pending = server.home / "warehouse" / "appended" / "_temporary"
    deadline = time.monotonic() + 120
    while not pending.exists() and writer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pending.exists(), "the first insert should be writing"
    with pytest.raises(Exception) as refused:
        cursor.execute("INSERT INTO appended SELECT -1, 'late'")
    message = str(refused.value)
    assert "another statement is writing into the table folder 'appended' now" in message
    assert str(server.home) not in message
    writer.join(300)
    assert outcome == {"finished": True}
    cursor.execute("SELECT count(*), min(id) FROM appended")
    assert cursor.fetchall() == [(rows, 0)]
    cursor.execute("INSERT INTO appended SELECT -1, 'late'")
    cursor.execute("SELECT count(*), min(id) FROM appended")
    assert cursor.fetchall() == [(rows + 1, -1)]
    # A write that fails while it starts (its working folder cannot be made) lets go of the table.
    blocker = server.home / "warehouse" / "appended" / "_temporary"
    blocker.write_text("not a folder")
    with pytest.raises(Exception) as failed:
        cursor.execute("INSERT INTO appended SELECT -2, 'blocked'")
    assert "another statement is writing" not in str(failed.value)
    blocker.unlink(missing_ok=True)  # the failed job may have cleaned it up itself
    cursor.execute("INSERT INTO appended SELECT -2, 'after'")
    cursor.execute("SELECT count(*), min(id) FROM appended")
    assert cursor.fetchall() == [(rows + 2, -2)]
