"""The server through the clients users have: SQLAlchemy hive://, beeline, the sql CLI."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyspark
import pytest
from sqlalchemy import create_engine, inspect, text

from server.settings import SERVER_JAR
from tests.helpers import assert_logged_once, beeline, log_lines_since, spark_jobs
from udfs.labels import EMOTIONS
from udfs.model_store import DEFAULT_MODEL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPARK_JARS = Path(pyspark.__file__).parent / "jars"
USER_ERRORS_CLASS = "org.emoticana.thrift.UserErrors"

pytestmark = pytest.mark.slow


def test_sqlalchemy_hive_dialect(server, audio_root):
    engine = create_engine(f"hive://tester@127.0.0.1:{server.port}/default")
    clip = audio_root / "variants" / "pcm16_16k_mono.wav"
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT audio_info('{clip}').sample_rate AS rate, size(mfcc('{clip}')) AS n")
        ).fetchall()
        assert rows == [(16000, 12943)]
        connection.execute(
            text("CREATE TABLE IF NOT EXISTS sa_table (id INT, label STRING) USING parquet")
        )
    inspector = inspect(engine)
    assert "emoticana" in inspector.get_schema_names()
    assert [c["name"] for c in inspector.get_columns("sa_table")] == ["id", "label"]


def test_emoticana_dialect_lists_tables_and_views(server):
    engine = create_engine(f"emoticana://tester@127.0.0.1:{server.port}/default")
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS listed_table (id INT) USING parquet"))
        connection.execute(
            text("CREATE OR REPLACE VIEW listed_view AS SELECT id FROM listed_table")
        )
        connection.execute(text("CREATE OR REPLACE TEMPORARY VIEW session_only AS SELECT 1 AS x"))
    inspector = inspect(engine)
    tables = inspector.get_table_names("default")
    assert "listed_table" in tables and "default" not in tables
    assert "listed_view" in inspector.get_view_names("default")
    assert "session_only" not in tables


def test_beeline_runs_a_query(server, audio_root):
    clip = audio_root / "variants" / "clip_16k.flac"
    result = beeline(
        server,
        "--outputformat=csv2",
        "-e",
        f"SELECT audio_info('{clip}').format AS fmt, "
        "ravdess_meta('03-01-05-02-01-02-12.wav').emotion AS e",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fmt,e\nFLAC,angry" in result.stdout


def test_examples_run_unchanged_with_beeline_f(server, audio_root):
    audio_dir = audio_root / "ravdess"
    outputs = {}
    for script in sorted((PROJECT_ROOT / "sql" / "examples").glob("*.sql")):
        result = beeline(
            server, "--outputformat=csv2", "--hivevar", f"audio_dir={audio_dir}", "-f", str(script)
        )
        assert result.returncode == 0, (script.name, result.stderr[-2000:])
        assert "Error" not in result.stderr, (script.name, result.stderr[-2000:])
        outputs[script.name] = result.stdout
    assert len(outputs) == 9
    assert "WAV,3" in outputs["01_audio_functions.sql"]  # three WAV clips, none unreadable
    assert "03-01-05-02-01-02-12.wav,WAV,48000,1" in outputs["01_audio_functions.sql"]
    assert "predicted_emotion,clips,mean_confidence" in outputs["04_emotion_bi.sql"]
    assert "accuracy,unweighted_accuracy,clips" in outputs["05_evaluate.sql"]
    assert "file,speech_s,dominant_emotion,share_angry" in outputs["07_call_summary.sql"]
    # The three clips share a folder, the example's speaker: each judged against the other two.
    against = outputs["08_against_speaker.sql"].split("file,against_speaker,with_voice,")[1]
    answers = [line.split(",") for line in against.splitlines()[1:] if line.endswith(",3")]
    assert len(answers) == 3 and all(a in EMOTIONS and b in EMOTIONS for _, a, b, _ in answers)
    default_name, default_version = DEFAULT_MODEL.split("/")
    assert (
        f"{default_name},{default_version},true" in outputs["06_models.sql"]
    )  # the shipped model, active
    # and its figures on each corpus left out of its training
    assert f"{default_name},{default_version},corpus left out,emodb," in outputs["06_models.sql"]


def test_dropping_the_clips_table_keeps_the_audio(server, audio_root):
    before = sorted(os.listdir(audio_root / "ravdess"))
    result = beeline(
        server,
        "--hivevar",
        f"audio_dir={audio_root / 'ravdess'}",
        "-f",
        str(PROJECT_ROOT / "sql" / "examples" / "00_clips.sql"),
    )
    assert result.returncode == 0
    result = beeline(server, "-e", "DROP TABLE clips")
    assert result.returncode == 0
    assert sorted(os.listdir(audio_root / "ravdess")) == before


def test_sql_cli_splits_with_sqlparse(server, tmp_path):
    script = tmp_path / "script.sql"
    script.write_text(
        "-- comment; with a semicolon\n"
        "CREATE OR REPLACE TEMPORARY VIEW semi AS SELECT 'a;b' AS s;\n"
        "/* block; */ SELECT s, length(s) FROM semi;\n"
        "SELECT ravdess_meta('03-01-03-01-01-01-02.wav').emotion AS e\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "server", "sql", str(script), "--port", str(server.port)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["s\tlength(s)", "a;b\t3", "e", "happy"]
    assert result.stderr.count("row(s)") == 3


@pytest.fixture(scope="module")
def clip(audio_root) -> str:
    return str(audio_root / "ravdess" / "03-01-05-02-01-02-12.wav")


# A user's errors, each with a value no other test uses, the start of the one line a client shows
# for it, and its SQLSTATE.
USER_ERRORS = {
    "bad model": (
        "SELECT activate_model('no_such_model/31')",
        "ModelError: no model 'no_such_model/31'",
        "38000",
    ),
    "bad argument": (
        "SELECT emotion('{clip}', 'no_such_model/32')",
        "ModelError: no model 'no_such_model/32'",
        "38000",
    ),
    "unknown table": (
        "SELECT * FROM no_such_table_33",
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table_33` cannot be found",
        "42P01",
    ),
    "refused": (
        "SET spark.hadoop.no_such_setting_34=1",
        "emoticana: SET spark.hadoop.no_such_setting_34 is refused",
        "42000",
    ),
    "raised by the statement": (
        "SELECT assert_true(1 = 2, 'no_such_clip_36 is needed')",
        "[USER_RAISED_EXCEPTION] no_such_clip_36 is needed",
        "P0001",
    ),
}


def one_line_without_stack(text: str) -> bool:
    return (
        "\n" not in text and "\\n" not in text and "Traceback" not in text and "\tat " not in text
    )


@pytest.mark.parametrize("case", USER_ERRORS, ids=list(USER_ERRORS))
def test_a_user_error_reaches_pyhive_and_the_log_as_one_line(server, clip, case):
    statement, expected, sql_state = USER_ERRORS[case]
    statement = statement.format(clip=clip)
    value = re.search(r"no_such_\w+", statement).group(0)
    cursor = server.connect().cursor()
    start = len(server.lines)
    with pytest.raises(Exception) as caught:
        cursor.execute(statement)
    status = caught.value.args[0].status
    assert status.errorMessage.startswith(expected), status.errorMessage
    assert status.sqlState == sql_state
    assert one_line_without_stack(status.errorMessage) and not status.infoMessages
    # What PyHive's exception prints: the whole Thrift status, now a few hundred characters.
    assert one_line_without_stack(str(caught.value)) and len(str(caught.value)) < 1000
    assert value in status.errorMessage
    assert_logged_once(log_lines_since(server, start), value)


def test_a_user_error_reaches_beeline_as_one_line(server):
    result = beeline(server, "-e", "SELECT activate_model('no_such_model/35')")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "no_such_model/35" in line]
    assert errors == [errors[0]] and errors[0].startswith(
        "Error: ModelError: no model 'no_such_model/35'"
    ), result.stderr
    assert errors[0].endswith("(state=38000,code=0)")
    assert "Traceback" not in result.stderr and "\tat " not in result.stderr


def test_a_statement_stopped_by_its_time_cap_or_a_cancel_says_so_in_one_line(server):
    """HiveServer2 leaves a timed-out statement without a message (PyHive read "Expected state
    FINISHED, but found TIMEDOUT" and a Java stack) and a cancelled one likewise."""
    from TCLIService.ttypes import TOperationState

    cursor = server.connect().cursor()
    cursor.execute("SET spark.sql.thriftServer.queryTimeout=2s")
    slow = "SELECT count(DISTINCT sha2(CAST(id AS STRING), 256)) FROM range(0, 1000000000, 1, 2)"
    timed_out = (
        "emoticana: the statement ran past its time cap and was stopped "
        "(spark.sql.thriftServer.queryTimeout is 2s in this session, "
        "or the client's query timeout if shorter)"
    )
    with pytest.raises(Exception) as caught:
        cursor.execute(slow)
        cursor.fetchall()
    status = caught.value.args[0].status
    assert (status.errorMessage, status.sqlState) == (timed_out, "HYT00")
    assert not status.infoMessages

    cursor.execute(slow, async_=True)
    deadline = time.monotonic() + 120
    while (state := cursor.poll()).operationState in (
        TOperationState.INITIALIZED_STATE,
        TOperationState.PENDING_STATE,
        TOperationState.RUNNING_STATE,
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state.operationState == TOperationState.TIMEDOUT_STATE
    assert (state.errorMessage, state.sqlState) == (timed_out, "HYT00")

    cursor.execute("SET spark.sql.thriftServer.queryTimeout=0")
    cursor.execute(slow, async_=True)
    cursor.cancel()
    with pytest.raises(Exception) as caught:
        cursor.fetchall()
    status = caught.value.args[0].status
    assert status.errorMessage == "emoticana: the statement was cancelled before it finished"
    assert status.sqlState == "HY008" and not status.infoMessages
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)]


#: Seconds of analysis and planning (400 branches) before its first job, and hours of work after.
SLOW_TO_PLAN = " UNION ALL ".join(
    ["SELECT count(DISTINCT sha2(CAST(id AS STRING), 256)) AS {tag} FROM range(0, 10000000000)"]
    * 400
)


@pytest.mark.parametrize("stop", ["cancel", "time cap"])
def test_a_statement_stopped_while_being_planned_runs_no_job(server, stop):
    """Spark's Thrift server stops a statement by cancelling the jobs it has: one stopped while
    still being planned had none, and then started them and ran for hours with nobody waiting
    (a dashboard cancels as its user leaves the page). Its jobs are cancelled as they start."""
    from TCLIService.ttypes import TOperationState

    tag = f"stopped_{uuid.uuid4().hex}"
    start = len(server.lines)
    cursor = server.connect().cursor()
    if stop == "time cap":
        cursor.execute("SET spark.sql.thriftServer.queryTimeout=1s")
    cursor.execute(SLOW_TO_PLAN.format(tag=tag), async_=True)
    if stop == "cancel":
        deadline = time.monotonic() + 60
        while cursor.poll().operationState != TOperationState.RUNNING_STATE:
            assert time.monotonic() < deadline, "the statement did not start"
            time.sleep(0.05)
        cursor.cancel()
    stopped = {"cancel": TOperationState.CANCELED_STATE, "time cap": TOperationState.TIMEDOUT_STATE}
    deadline = time.monotonic() + 60
    while (state := cursor.poll().operationState) != stopped[stop]:
        assert time.monotonic() < deadline, f"the statement did not stop: {state}"
        time.sleep(0.2)

    def its_jobs() -> list[dict]:
        return [job for job in spark_jobs(server.ui_port) if tag in (job.get("description") or "")]

    # Planning goes on after the stop (unless the interrupt ends it); a job it starts must be
    # cancelled soon.
    planned_by = time.monotonic() + 60
    while True:
        jobs = its_jobs()
        if jobs and all(job["status"] != "RUNNING" for job in jobs):
            break
        if not jobs and time.monotonic() > planned_by:
            break
        assert time.monotonic() < planned_by + 30, f"the stopped statement's jobs: {jobs}"
        time.sleep(1)
    assert all(job["status"] == "FAILED" for job in jobs), jobs
    # Spark's warning with the interrupt's stack is not logged: stopping is no fault.
    lines = log_lines_since(server, start)
    assert not any(line.startswith("\tat ") for line in lines), "".join(lines)[-3000:]


def test_a_server_fault_keeps_its_stack(server):
    """Data files gone from under a table (storage lost them, or someone deleted them): the query
    fails with Spark's whole stack, for the client and in the log."""
    cursor = server.connect().cursor()
    cursor.execute("DROP TABLE IF EXISTS files_gone")
    cursor.execute("CREATE TABLE files_gone USING parquet AS SELECT id FROM range(10)")
    cursor.execute("SELECT sum(id) FROM files_gone")  # the session now knows its files
    assert cursor.fetchall() == [(45,)]
    files = list((server.home / "warehouse" / "files_gone").glob("*.parquet"))
    assert files
    for path in files:
        path.unlink()
    start = len(server.lines)
    with pytest.raises(Exception) as caught:
        cursor.execute("SELECT sum(id) FROM files_gone")
    status = caught.value.args[0].status
    assert "FAILED_READ_FILE" in status.errorMessage
    assert any("SparkExecuteStatementOperation" in frame for frame in status.infoMessages)
    lines = log_lines_since(server, start)
    assert not any("UserError: " in line for line in lines)
    assert any(line.startswith("\tat org.apache.spark.") for line in lines), lines
    cursor.execute("DROP TABLE files_gone")


def python_errors(*texts: str) -> list[str]:
    """The Java rule's verdict on Python worker errors (UserErrors.main)."""
    result = subprocess.run(
        ["java", "-cp", f"{SERVER_JAR}{os.pathsep}{SPARK_JARS}/*", USER_ERRORS_CLASS, *texts],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.splitlines()


def traceback(*exceptions: str) -> str:
    frame = '  File "/srv/udfs/inference.py", line 9, in run\n    raise error\n'
    chained = "\nDuring handling of the above exception, another exception occurred:\n\n"
    body = chained.join(f"Traceback (most recent call last):\n{frame}{e}" for e in exceptions)
    worker = "[PYTHON_EXCEPTION] An exception was thrown from the Python worker: "
    return f"{worker}{body}\n SQLSTATE: 38000"


def test_only_emoticanas_python_errors_are_the_users():
    assert python_errors(
        traceback("udfs.errors.ModelError: no model 'x/1' under /m"),
        traceback("ValueError: could not broadcast"),
        traceback("udfs.errors.AudioError: bad clip", "TypeError: 'NoneType' is not iterable"),
        traceback("KeyError: 'angry'", "udfs.errors.AudioError: clip 'a.wav' is empty"),
        "Python worker exited unexpectedly (crashed)",
    ) == [
        "ModelError: no model 'x/1' under /m",
        "server fault",
        "server fault",  # a bug while handling a user's error is still a bug
        "AudioError: clip 'a.wav' is empty",
        "server fault",
    ]


def test_every_getinfo_type_is_answered_and_the_connection_stays(server):
    """ODBC drivers ask GetInfo for many types; HiveServer2 answers few of them, and for the rest
    (and for the lengths it knows) its answer lacked the value Thrift requires, so the caller's
    connection was closed with no answer."""
    from pyhive import hive
    from TCLIService import ttypes

    connection = hive.connect(host="127.0.0.1", port=server.port, username="tester")
    try:
        answered, refused = {}, []
        for value, name in sorted(ttypes.TGetInfoType._VALUES_TO_NAMES.items()):
            response = connection._client.GetInfo(
                ttypes.TGetInfoReq(sessionHandle=connection._sessionHandle, infoType=value)
            )
            if response.status.statusCode == ttypes.TStatusCode.SUCCESS_STATUS:
                answered[name] = response.infoValue
            else:
                assert response.status.errorMessage == (
                    f"emoticana: this server does not answer GetInfo {name}"
                )
                assert response.status.sqlState == "HYC00"
                refused.append(name)
        # What the JDBC driver's getDatabaseProductName and -Version ask for.
        assert answered["CLI_DBMS_NAME"].stringValue
        assert answered["CLI_DBMS_VER"].stringValue == pyspark.__version__
        assert answered["CLI_MAX_TABLE_NAME_LEN"].lenValue > 0
        assert refused  # the case that used to close the connection
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [(1,)]
    finally:
        connection.close()
