"""The example scripts refuse to run without their variables, before they change anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyspark
import pytest

from server.sqlscript import read_script, script_variables, split_statements

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "sql" / "examples"
CLIPS_SCRIPT = EXAMPLES / "00_clips.sql"
BEELINE = Path(pyspark.__file__).parent / "bin" / "beeline"


def test_scripts_with_variables_check_them_first():
    scripts = [*EXAMPLES.glob("*.sql"), *(PROJECT_ROOT / "sql" / "training").glob("*.sql")]
    with_variables = {s.name: script_variables(read_script(s)) for s in scripts}
    with_variables = {name: names for name, names in with_variables.items() if names}
    assert with_variables == {
        "00_clips.sql": ["audio_dir"],
        "ravdess.sql": ["ravdess_dir"],
        "corpora.sql": ["corpora_dir", "ravdess_dir"],
    }
    for script in scripts:
        statements = read_script(script)
        for name in script_variables(statements):
            assert "assert_true" in statements[0] and f"${{hivevar:{name}}}" in statements[0]


def test_script_variables_are_found_wherever_the_server_substitutes_them():
    """Any case of the prefix, no prefix, in comments and in strings sqlparse misreads: the
    server substitutes them all (a variable not given becomes empty), so all must be given."""
    statements = split_statements(
        "SELECT '${HIVEVAR:upper}', '${bare}';\n"
        "SELECT 'C:\\\\', ' -- ', '${hivevar:after_backslash}';\n"
        "-- a comment with ${hivevar:in_comment}\n"
        "SELECT '${env:HOME}', '${hivevar:a.b}', '${bare}';\n"
    )
    assert script_variables(statements) == ["upper", "bare", "after_backslash", "in_comment"]


@pytest.mark.parametrize(
    ("script", "environment", "message"),
    [
        ("DROP TABLE IF EXISTS clips;\nSELECT '${audio_dir}'", {}, "needs --hivevar audio_dir"),
        ("SELECT 1", {"EMOTICANA_PORT": "abc"}, "EMOTICANA_PORT must be a port number"),
        (None, {}, "cannot read script"),
        (b"SELECT '\xff'", {}, "is not UTF-8 text"),
    ],
)
def test_sql_cli_refuses_bad_input_in_one_line_before_connecting(
    tmp_path, script, environment, message
):
    path = tmp_path / "script.sql"
    if isinstance(script, str):
        path.write_text(script)
    elif script is not None:
        path.write_bytes(script)
    port = [] if "EMOTICANA_PORT" in environment else ["--port", "1"]
    result = sql_cli(path, *port, environment=environment)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "cannot connect" not in lines[0], lines


def test_sql_cli_connects_to_the_host_emoticana_host_names(tmp_path):
    (tmp_path / "script.sql").write_text("SELECT 1")
    result = sql_cli(
        tmp_path / "script.sql", "--port", "1", environment={"EMOTICANA_HOST": "localhost"}
    )
    assert result.returncode == 2 and "cannot connect to localhost:1" in result.stderr


def sql_cli(script: Path, *args: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """``emoticana sql`` with none of this machine's EMOTICANA_ settings but ``environment``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOTICANA_")}
    return subprocess.run(
        [sys.executable, "-m", "server", "sql", str(script), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, **environment},
    )


@pytest.mark.parametrize(
    ("settings", "environment", "port"),
    [
        ([], {}, "10000"),
        (["PORT=10501"], {}, "10501"),
        ([], {"EMOTICANA_PORT": "10502"}, "10502"),  # the variable make serve takes
    ],
)
def test_make_sql_passes_variables_and_the_server_s_port(settings, environment, port):
    env = {k: v for k, v in os.environ.items() if k not in ("EMOTICANA_PORT", "PORT")}
    result = subprocess.run(
        ["make", "-n", "sql", "FILE=script.sql", "VARS=audio_dir=/data/calls other=x", *settings],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, **environment},
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"-m server sql script.sql --port {port} --hivevar audio_dir=/data/calls --hivevar other=x"
        in result.stdout
    )


@pytest.fixture
def clips(cursor, audio_root):
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(
        f"CREATE TABLE clips USING binaryFile OPTIONS (path '{audio_root / 'ravdess'}', "
        "pathGlobFilter '*.wav')"
    )
    return cursor


def clip_count(cursor) -> int:
    cursor.execute("SELECT count(*) FROM clips")
    return cursor.fetchall()[0][0]


@pytest.mark.slow
def test_sql_cli_refuses_a_script_without_its_variable(server, clips):
    for extra in ([], ["--hivevar", "audio_dir="]):
        result = subprocess.run(
            [sys.executable, "-m", "server", "sql", str(CLIPS_SCRIPT), "--port", str(server.port)]
            + extra,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 2
        assert "needs --hivevar audio_dir=VALUE; nothing was run" in result.stderr
    assert clip_count(clips) == 3


@pytest.mark.slow
@pytest.mark.parametrize("variable", [None, "audio_dir="])
def test_beeline_stops_at_the_guard(server, clips, variable):
    command = [str(BEELINE), "-u", f"jdbc:hive2://127.0.0.1:{server.port}/default", "-n", "tester"]
    if variable is not None:
        command += ["--hivevar", variable]
    result = subprocess.run(
        [*command, "-f", str(CLIPS_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "this script needs audio_dir" in result.stderr + result.stdout
    assert clip_count(clips) == 3  # not dropped: the guard failed first


@pytest.mark.slow
def test_server_side_guard_stops_a_script_sent_whole(server, clips):
    """The console's example button sends the script as it is, without variables."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.console_port}/api/queries",
        data=json.dumps({"sql": CLIPS_SCRIPT.read_text()}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        job = json.loads(answer.read())
    deadline = time.monotonic() + 120
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.console_port}/api/queries/{job['id']}?wait=2", timeout=60
        ) as answer:
            job = json.loads(answer.read())
    assert job["state"] == "error" and job["statement"] == 1
    assert "this script needs audio_dir" in job["error"]
    assert clip_count(clips) == 3
