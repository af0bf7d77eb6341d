"""Apache Superset end to end, through the documented URL ``hive+emoticana://``.

A real Superset (its own virtual environment, ``make superset``) with a SQLite metadata
database in a temporary directory: add the database, test the connection, list tables and
views, run SQL Lab with backquoted and ``+``-named columns, create a dataset on ``emotion_bi``
and a bar chart of predicted emotions, read the chart's data through Superset's API, and save a
screenshot of the chart (``test-artifacts/superset-chart.png``).  Every answer is compared with
the rows the server gives PyHive directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from server.cluster import free_port
from server.sqlscript import read_script

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPERSET_VENV = PROJECT_ROOT / ".venv-superset"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
EXAMPLES = PROJECT_ROOT / "sql" / "examples"
ADMIN, ADMIN_PASSWORD = "admin", "superset-test-password"

pytestmark = pytest.mark.slow

CONFIG = """\
SECRET_KEY = {secret!r}
SQLALCHEMY_DATABASE_URI = {metadata!r}
# The test talks to the REST API with a bearer token; no browser forms but the login.
WTF_CSRF_ENABLED = False
TALISMAN_ENABLED = False
SCARF_ANALYTICS = False
RATELIMIT_STORAGE_URI = "memory://"
"""


def superset_command(*args: str) -> list[str]:
    executable = SUPERSET_VENV / "bin" / "superset"
    assert executable.exists(), f"{executable} is missing: run `make superset`"
    return [str(executable), *args]


@pytest.fixture(scope="module")
def superset(tmp_path_factory):
    """A Superset web server on a free loopback port; its base URL."""
    home = tmp_path_factory.mktemp("superset")
    config = home / "superset_config.py"
    config.write_text(
        CONFIG.format(secret=os.urandom(24).hex(), metadata=f"sqlite:///{home / 'superset.db'}")
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SUPERSET_CONFIG_PATH=str(config), SUPERSET_HOME=str(home / "home"))
    for args in (
        ("db", "upgrade"),
        (
            "fab",
            "create-admin",
            "--username",
            ADMIN,
            "--firstname",
            "Test",
            "--lastname",
            "Admin",
            "--email",
            "admin@example.org",
            "--password",
            ADMIN_PASSWORD,
        ),
        ("init",),
    ):
        done = subprocess.run(
            superset_command(*args), env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    port = free_port()
    log = open(home / "superset.log", "w")
    process = subprocess.Popen(
        superset_command("run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=10) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (home / "superset.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Superset did not answer /health within 300 s"
            time.sleep(1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        log.close()


class SupersetApi:
    def __init__(self, base: str):
        self.base = base
        self.token = None
        status, body = self.call(
            "POST",
            "/api/v1/security/login",
            {"username": ADMIN, "password": ADMIN_PASSWORD, "provider": "db", "refresh": True},
        )
        assert status == 200, body
        self.token = body["access_token"]

    def call(self, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")[:3000]


@pytest.fixture(scope="module")
def bi_views(server, audio_root):
    """``clips`` over the RAVDESS-named clips, with the views of examples 03 and 04."""
    connection = server.connect()
    cursor = connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(
        f"CREATE TABLE clips USING binaryFile OPTIONS (path '{audio_root / 'ravdess'}', "
        "pathGlobFilter '*.wav')"
    )
    for script in ("03_seed_predictions.sql", "04_emotion_bi.sql"):
        for statement in read_script(EXAMPLES / script):
            cursor.execute(statement)
    yield cursor
    connection.close()


@pytest.fixture(scope="module")
def api(superset):
    return SupersetApi(superset)


@pytest.fixture(scope="module")
def database_id(api, server, bi_views):
    url = f"hive+emoticana://superset@127.0.0.1:{server.port}/default"
    status, body = api.call(
        "POST", "/api/v1/database/test_connection/", {"sqlalchemy_uri": url, "database_name": "x"}
    )
    assert status == 200, body
    status, body = api.call(
        "POST",
        "/api/v1/database/",
        {"database_name": "emoticana", "sqlalchemy_uri": url, "expose_in_sqllab": True},
    )
    assert status == 201, body
    assert body["result"]["driver"] == "emoticana"
    return body["id"]


def test_superset_sees_hive_and_lists_tables_and_views(api, database_id):
    status, body = api.call("GET", f"/api/v1/database/{database_id}")
    assert status == 200, body
    assert body["result"]["backend"] == "hive"  # Superset's Hive support: backquotes are kept
    status, body = api.call(
        "GET", f"/api/v1/database/{database_id}/tables/?q=(schema_name:default)"
    )
    assert status == 200, body
    listed = {(entry["value"], entry["type"]) for entry in body["result"]}
    assert ("clips", "table") in listed
    assert ("emotion_bi", "view") in listed and ("seed_predictions", "view") in listed
    names = [name for name, _ in listed]
    assert len(names) == len(set(names)), listed  # each once: no view listed as a table too
    assert "default" not in names


def test_sql_lab_keeps_backquoted_and_plus_named_columns(api, database_id, bi_views):
    sql = (
        "SELECT b.`file`, b.`predicted_emotion`, round(s.`neu+calm`, 4) AS `neu+calm` "
        "FROM emotion_bi b JOIN seed_predictions s ON s.value = b.path ORDER BY b.`file`"
    )
    status, body = api.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": database_id, "sql": sql, "schema": "default", "runAsync": False},
    )
    assert status == 200, body
    bi_views.execute(sql)
    expected = bi_views.fetchall()
    got = [(row["file"], row["predicted_emotion"], row["neu+calm"]) for row in body["data"]]
    assert got == [tuple(row) for row in expected]
    # Rewritten as a string literal, `file` would be the word "file" in every row.
    assert [row[0] for row in got] == [
        "03-01-01-01-01-01-01.wav",
        "03-01-05-02-01-02-12.wav",
        "03-01-08-01-02-01-07.wav",
    ]


def test_bar_chart_of_predicted_emotions(api, database_id, bi_views, superset):
    status, body = api.call(
        "POST",
        "/api/v1/dataset/",
        {"database": database_id, "schema": "default", "table_name": "emotion_bi"},
    )
    assert status == 201, body
    dataset_id = body["id"]
    query_context = {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [
            {
                "columns": ["predicted_emotion"],
                "metrics": ["count"],
                "orderby": [["count", False]],
                "row_limit": 100,
            }
        ],
        "result_format": "json",
        "result_type": "full",
    }
    params = {
        "datasource": f"{dataset_id}__table",
        "viz_type": "echarts_timeseries_bar",
        "x_axis": "predicted_emotion",
        "metrics": ["count"],
        "groupby": [],
        "row_limit": 100,
        "x_axis_sort": "count",
        "x_axis_sort_asc": False,
        "show_value": True,
        "show_legend": False,
    }
    status, body = api.call(
        "POST",
        "/api/v1/chart/",
        {
            "slice_name": "Clips per predicted emotion",
            "viz_type": "echarts_timeseries_bar",
            "datasource_id": dataset_id,
            "datasource_type": "table",
            "params": json.dumps(params),
            "query_context": json.dumps(query_context),
        },
    )
    assert status == 201, body
    chart_id = body["id"]
    status, body = api.call("GET", f"/api/v1/chart/{chart_id}/data/")
    assert status == 200, body
    result = body["result"][0]
    assert result["status"] == "success" and "`predicted_emotion`" in result["query"]
    got = sorted((row["predicted_emotion"], row["count"]) for row in result["data"])
    bi_views.execute("SELECT predicted_emotion, count(*) FROM emotion_bi GROUP BY 1")
    assert got == sorted(tuple(row) for row in bi_views.fetchall())
    assert sum(count for _, count in got) == 3  # the three RAVDESS-named clips

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "superset-chart.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run(
        [
            str(SUPERSET_VENV / "bin" / "python"),
            str(PROJECT_ROOT / "tests" / "superset_screenshot.py"),
            superset,
            ADMIN,
            ADMIN_PASSWORD,
            str(chart_id),
            str(shot),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert shot.stat().st_size > 5_000
