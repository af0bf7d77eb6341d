"""The browser console end to end: its HTTP API, and the page in headless Chromium."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.console_client import api, chromium, run_query

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
pytestmark = pytest.mark.slow


def test_query_results_and_server_errors(server):
    job = run_query(
        server,
        "SELECT 1 AS one, 'a;b' AS s; SELECT ravdess_meta('03-01-05-02-01-02-12.wav').emotion AS e",
    )
    assert job["state"] == "done" and job["statements"] == 2
    assert job["columns"] == ["e"] and job["rows"] == [["angry"]]
    job = run_query(server, "SELECT * FROM no_such_table_here")
    assert job["state"] == "error"
    assert "TABLE_OR_VIEW_NOT_FOUND" in job["error"] and "at org.apache" not in job["error"]


def test_long_query_can_be_cancelled(server):
    status, body = api(
        server,
        "/api/queries",
        method="POST",
        body={"sql": "SELECT count(*) FROM range(0, 100000000000, 1, 2)"},
    )
    job_id = json.loads(body)["id"]
    time.sleep(3)
    assert json.loads(api(server, f"/api/queries/{job_id}")[1])["state"] == "running"
    status, body = api(server, f"/api/queries/{job_id}", method="DELETE")
    assert status == 200
    deadline = time.monotonic() + 60
    while (
        json.loads(api(server, f"/api/queries/{job_id}")[1])["state"] == "running"
        and time.monotonic() < deadline
    ):
        time.sleep(0.3)
    assert json.loads(api(server, f"/api/queries/{job_id}")[1])["state"] == "cancelled"


def test_examples_and_audio_confinement(server, audio_root, outside_dir):
    status, body = api(server, "/api/examples")
    names = [e["name"] for e in json.loads(body)]
    assert status == 200 and "02_classify.sql" in names and "04_emotion_bi.sql" in names
    status, body = api(server, f"/api/audio?path={audio_root}/variants/clip_16k.flac")
    assert status == 200 and body[:4] == b"fLaC"
    status, body = api(server, f"/api/audio?path={outside_dir}/secret.wav")
    assert status == 403 and b"outside the readable audio roots" in body
    status, body = api(server, f"/api/audio?path={audio_root}/../{outside_dir.name}/secret.wav")
    assert status == 403


def test_page_runs_an_example_and_draws_table_and_chart(server, audio_root):
    cursor = server.connect().cursor()
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(
        "CREATE TABLE clips USING binaryFile "
        f"OPTIONS (path '{audio_root / 'ravdess'}', pathGlobFilter '*.wav')"
    )
    url = f"http://127.0.0.1:{server.console_port}/?example=02_classify.sql&run=1"
    result = chromium("--virtual-time-budget=60000", "--dump-dom", url)
    dom = result.stdout
    assert 'data-state="done"' in dom, (dom[-3000:], result.stderr[-2000:])
    assert dom.count("<tr>") >= 4  # header + three clips
    assert 'class="dist"' in dom  # a probability bar per row
    assert 'data-kind="counts"' in dom  # the summary chart
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "console.png"
    result = chromium("--virtual-time-budget=60000", f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]


def test_rows_with_audio_paths_get_a_player(server, audio_root):
    sql = (
        "SELECT path, emotion(path) AS emotion "
        f"FROM VALUES ('{audio_root}/variants/clip_16k.flac') AS t(path)"
    )
    url = f"http://127.0.0.1:{server.console_port}/?run=1&sql=" + urllib.request.quote(sql)
    dom = chromium("--virtual-time-budget=30000", "--dump-dom", url).stdout
    assert 'data-state="done"' in dom and 'class="play"' in dom


def test_page_draws_a_confusion_heatmap(server, audio_root):
    sql = (
        "SELECT actual, predicted, n FROM VALUES ('angry','angry',5), ('angry','sad',1), "
        "('sad','sad',4) AS t(actual, predicted, n)"
    )
    url = f"http://127.0.0.1:{server.console_port}/?run=1&sql=" + urllib.request.quote(sql)
    dom = chromium("--virtual-time-budget=30000", "--dump-dom", url).stdout
    assert 'data-kind="confusion"' in dom


@pytest.fixture
def bare_console(tmp_path):
    """A console whose SQL server is not running: what it answers before any query runs. Its
    host spelled in capitals, as an operator may write it."""
    from server.console import Console

    console = Console(
        host="LOCALHOST", port=0, jdbc_host="127.0.0.1", jdbc_port=1, audio_roots=[str(tmp_path)]
    )
    console.start()
    yield console
    console.stop()


def bare_request(console, method, path, body=None, headers=None):
    import http.client

    port = console._http.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_odd_requests_get_an_answer_not_a_dropped_connection(bare_console, tmp_path):
    status, body = bare_request(bare_console, "GET", "/api/examples")
    assert status == 200  # Host 127.0.0.1 is this console, however its host was spelled
    status, body = bare_request(bare_console, "GET", f"/api/audio?path={tmp_path}/a%00b.wav")
    assert status == 403 and b"NUL character" in body
    # A negative length would make the handler wait for the client to close.
    status, body = bare_request(
        bare_console,
        "POST",
        "/api/queries",
        body=b'{"sql": "SELECT 1"}',
        headers={"Content-Type": "application/json", "Content-Length": "-1"},
    )
    assert status == 400 and b"send JSON" in body


def test_a_console_on_a_container_name_answers_its_published_loopback_port():
    """docker-compose binds the console to the container's name and publishes its port on the
    host's 127.0.0.1: the browser's Host is then 127.0.0.1."""
    from server.console import Console

    console = Console(
        host="emoticana", port=10080, jdbc_host="emoticana", jdbc_port=10000, audio_roots=[]
    )
    assert {"emoticana:10080", "127.0.0.1:10080", "localhost:10080"} <= console.allowed_hosts()
    assert "evil.example:10080" not in console.allowed_hosts()
