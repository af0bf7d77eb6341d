"""Many clients: the load script in a short form, and a client that vanishes mid-query."""

import json
import subprocess
import sys
import time

import pytest

from server.process import PROJECT_ROOT
from tests.helpers import running_jobs

pytestmark = pytest.mark.slow

#: Hours of work if nobody cancels it: a cross join of 10^11 rows.
ENDLESS_QUERY = (
    "SELECT sum(hash(a.id, b.id)) FROM range(0, 1000000) a CROSS JOIN range(0, 100000) b"
)
CANCEL_WITHIN_S = 30
#: How long the clients start new steps. Client n starts with step n (mod 5), so every kind of step
#: and an isolation check per client run once each client has set up its session in that time; the
#: rest is more rounds of the same.
LOAD_S = 15


@pytest.fixture(scope="module")
def load_server(server):
    """The session server: its Spark UI is on a known port (the REST API shows running jobs)."""
    return server


def test_eight_clients_mixed_work_no_errors_and_isolated(load_server, audio_root, tmp_path):
    figures_file = tmp_path / "load.json"
    result = subprocess.run(
        [
            sys.executable,
            "bench/load_clients.py",
            "--clients",
            "8",
            "--duration-s",
            str(LOAD_S),
            "--max-queries",
            "3000",
            "--port",
            str(load_server.port),
            "--json",
            str(figures_file),
            "--audio-dir",
            str(audio_root),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(result.stdout)
    assert figures_file.exists(), result.stdout + result.stderr
    figures = json.loads(figures_file.read_text())
    assert figures["errors"] == [] and figures["violations"] == [], result.stdout + result.stderr
    assert result.returncode == 0
    # Every kind of work ran, every client checked its isolation, and the per-kind table was
    # printed.
    for kind in (
        "features",
        "classify",
        "create",
        "insert",
        "select",
        "show",
        "drop",
        "set",
        "use",
        "check",
    ):
        assert figures["kinds"].get(kind, {}).get("count", 0) >= 1, (kind, figures["kinds"])
        assert f"| {kind} |" in result.stdout
    assert figures["kinds"]["check"]["count"] >= 8 * 2
    assert figures["seconds"] < LOAD_S + 300


#: The vanishing synchronous client lowers the statement time cap for its own session (server
#: default 3600 s).
SYNC_CLIENT_TIMEOUT_S = 10


def test_statements_are_capped_in_time_by_default(load_server):
    cursor = load_server.connect().cursor()
    cursor.execute("SET spark.sql.thriftServer.queryTimeout")
    assert cursor.fetchall()[0][1] in ("3600s", "3600000ms")


@pytest.mark.parametrize("run_async", [True, False], ids=["async-like-jdbc", "pyhive-sync"])
def test_client_killed_mid_query_does_not_leave_its_job_running(load_server, run_async):
    """An asynchronous client's session is closed on disconnect, which cancels its query at once;
    a synchronous one's is noticed only when the statement ends, so the time cap stops it."""
    session_setup = (
        ""
        if run_async
        else f"cursor.execute('SET spark.sql.thriftServer.queryTimeout={SYNC_CLIENT_TIMEOUT_S}s')\n"
    )
    start = len(load_server.lines)
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pyhive import hive\n"
            f"cursor = hive.connect(host='127.0.0.1', port={load_server.port}, "
            "username='vanishing').cursor()\n"
            f"{session_setup}"
            f"cursor.execute({ENDLESS_QUERY!r}, async_={run_async})\n"
            "import time; time.sleep(600)\n",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not running_jobs(load_server.ui_port):
            assert client.poll() is None, client.stdout.read()
            assert time.monotonic() < deadline, "the query never started"
            time.sleep(0.5)
    finally:
        client.kill()  # SIGKILL: no close, no cancel; the kernel just drops the socket
        client.wait(30)
    killed = time.monotonic()
    bound = CANCEL_WITHIN_S + (0 if run_async else SYNC_CLIENT_TIMEOUT_S)
    while running_jobs(load_server.ui_port):
        assert time.monotonic() - killed < bound, "the vanished client's job is still running"
        time.sleep(1)
    # The server is still fine for everyone else, and closing the vanished client's session did
    # not kill the thread that served it (Hive's function registry cannot load, see ThriftServer).
    cursor = load_server.connect().cursor()
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)]
    died = [line for line in load_server.lines[start:] if line.startswith("Exception in thread")]
    assert not died, "".join(load_server.lines[start:])[-3000:]


def test_each_session_has_its_own_resources_folder_which_its_close_removes(load_server):
    """HiveServer2 deletes a session's downloaded-resources folder when the session closes: one
    folder shared by every session made sessions opening meanwhile fail to open."""
    resources = load_server.home / "resources"
    before = set(resources.iterdir())
    first, second = load_server.connect(), load_server.connect()
    assert len(set(resources.iterdir()) - before) == 2
    first.close()
    assert len(set(resources.iterdir()) - before) == 1
    cursor = second.cursor()
    cursor.execute("SELECT 1")
    assert cursor.fetchall() == [(1,)]
    second.close()
    assert not set(resources.iterdir()) - before
