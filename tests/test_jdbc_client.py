"""A generic JDBC client (tests/java/JdbcClient.java) on the documented class path.

The class path is pyspark's whole ``jars`` folder, as docs/clients.md tells a JDBC tool. The
client reads every function's result, and every field of a struct result, with ``getObject``,
whose class must be the one ``getColumnClassName`` declares.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pyspark
import pytest

from tests.helpers import assert_logged_once, log_lines_since
from udfs.registry import SQL_FUNCTIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
JARS = Path(pyspark.__file__).parent / "jars"
CLASS_PATH = f"{JARS}/*"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def jdbc(server, tmp_path_factory):
    """Run JdbcClient with the given queries; its output lines after each ``### query``."""
    classes = tmp_path_factory.mktemp("jdbc-client")
    subprocess.run(
        [
            "javac",
            "--release",
            "17",
            "-d",
            str(classes),
            str(PROJECT_ROOT / "tests" / "java" / "JdbcClient.java"),
        ],
        check=True,
        timeout=300,
    )

    def run(*queries: str) -> dict[str, list[str]]:
        result = subprocess.run(
            [
                "java",
                "-cp",
                f"{CLASS_PATH}:{classes}",
                "JdbcClient",
                f"jdbc:hive2://127.0.0.1:{server.port}/default",
                *queries,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        answers: dict[str, list[str]] = {}
        for line in result.stdout.splitlines():
            if line.startswith("### "):
                current = answers.setdefault(line[4:], [])
            else:
                current.append(line)
        return answers

    return run


def function_query(function, clip: str) -> str:
    call = f"{function.name}({function.example_args.format(clip=clip)})"
    if function.kind == "table":
        return f"SELECT * FROM {call}"
    columns = [f"{call} AS {function.name}"]
    if function.return_ddl.startswith("struct<"):
        fields = re.findall(r"(\w+):", function.return_ddl)
        columns += [f"{call}.{field} AS {field}" for field in fields]
    return "SELECT " + ", ".join(columns)


def test_every_function_reads_with_its_declared_java_class(jdbc, audio_root):
    clip = f"'{audio_root / 'ravdess' / '03-01-05-02-01-02-12.wav'}'"
    queries = [function_query(function, clip) for function in SQL_FUNCTIONS]
    answers = jdbc(*queries)
    classes = {}
    for query in queries:
        assert answers[query], query
        for line in answers[query]:
            column, declared, actual, _value = line.split("\t", 3)
            assert actual in (declared, "null"), line
            if actual != "null":
                classes[column] = actual
    assert classes["emotion"] == "java.lang.String"
    assert classes["sample_rate"] == "java.lang.Integer" and classes["frames"] == "java.lang.Long"
    assert classes["duration_s"] == classes["angry"] == "java.lang.Double"
    assert classes["active"] == "java.lang.Boolean"


def test_describe_function_gives_usage_arguments_and_example(jdbc):
    queries = [f"DESCRIBE FUNCTION EXTENDED {function.name}" for function in SQL_FUNCTIONS]
    answers = jdbc(*queries)
    for function, query in zip(SQL_FUNCTIONS, queries):
        text = "\n".join(line.split("\t", 3)[3] for line in answers[query])
        assert f"Usage: {function.signature} - returns {function.return_ddl}" in text
        assert "N/A" not in text
        assert f"> {function.example};" in text
        for argument in function.argument_names:
            assert f"* {argument} - " in text


def test_show_functions_lists_each_once(jdbc):
    answers = jdbc("SHOW FUNCTIONS LIKE 'emotion*'")
    names = [line.split("\t", 3)[3] for line in answers["SHOW FUNCTIONS LIKE 'emotion*'"]]
    assert names == sorted(f.name for f in SQL_FUNCTIONS if f.name.startswith("emotion"))


def test_get_functions_lists_each_once(jdbc):
    answers = jdbc(
        "META getFunctions emotion%", "META getFunctions %", "META getFunctions EMOTION\\_%"
    )
    names = [line.split("\t")[1] for line in answers["META getFunctions emotion%"]]
    assert names == sorted(f.name for f in SQL_FUNCTIONS if f.name.startswith("emotion"))
    # Built-in and Emoticana's functions belong to no schema: once each, whatever the databases.
    every = [line.split("\t") for line in answers["META getFunctions %"]]
    assert len({name for _, name in every}) == len(every)
    assert {f.name for f in SQL_FUNCTIONS} <= {name for schema, name in every if schema == "null"}
    # JDBC's escape: "\_" is an underscore, not any character.
    escaped = [line.split("\t")[1] for line in answers["META getFunctions EMOTION\\_%"]]
    assert escaped == sorted(f.name for f in SQL_FUNCTIONS if f.name.startswith("emotion_"))


def test_a_user_error_reaches_jdbc_and_the_log_as_one_line(jdbc, server):
    start = len(server.lines)
    query = "SELECT activate_model('no_such_model/36')"
    answers = jdbc(query)
    assert len(answers[query]) == 1, answers[query]
    error, state, message = answers[query][0].split("\t")
    assert (error, state) == ("ERROR", "38000")
    assert message == (
        f"ModelError: no model 'no_such_model/36' under {server.home / 'models'}, "
        f"{PROJECT_ROOT / 'models'}"
    )
    assert_logged_once(log_lines_since(server, start), "no_such_model/36")


def test_a_result_of_many_feature_matrices_reaches_jdbc_whole(jdbc):
    """The driver fetches 1,000 rows an answer and refuses a message over 100 MB, after which its
    connection is unusable: 1,000 rows of mfcc's 12,943 numbers, as text, are about 120 MB. The
    server answers with fewer rows (ServiceHooks.fetchResults); the driver asks again."""
    matrix = "array_repeat(CAST(-615.8291 AS FLOAT), 12943)"
    query = f"COUNT SELECT id, {matrix} AS features FROM range(1200)"
    # Rows that grow two hundred thousand times after the first fifty: an answer sized by the
    # rows before would carry 950 of 200 KB.
    growing = "COUNT SELECT id, IF(id < 50, 'x', repeat('x', 200000)) AS s FROM range(1000)"
    nulls = "SELECT id, IF(id % 3 = 0, NULL, id * 2) AS v FROM range(150)"
    after = "SELECT count(*) AS n FROM range(3)"
    answers = jdbc(query, growing, nulls, after)
    ids = sum(len(str(i)) for i in range(1200))
    # "[-615.8291,...]": 12,943 values of 9 characters, their commas and the brackets; the ids.
    assert answers[query] == [f"rows\t1200\t{1200 * (12943 * 10 + 1) + ids}"]
    ids = sum(len(str(i)) for i in range(1000))
    assert answers[growing] == [f"rows\t1000\t{50 + 950 * 200000 + ids}"]
    # Null marks stay on their rows where an answer joins the rows it took a few at a time.
    assert answers[nulls] == [
        line
        for i in range(150)
        for line in (
            f"id\tjava.lang.Long\tjava.lang.Long\t{i}",
            "v\tjava.lang.Long\tnull\tnull"
            if i % 3 == 0
            else f"v\tjava.lang.Long\tjava.lang.Long\t{2 * i}",
        )
    ]
    assert answers[after] == ["n\tjava.lang.Long\tjava.lang.Long\t3"]


def test_metadata_patterns_that_could_hold_the_server_are_refused_in_one_line(jdbc):
    """Spark matches getTables' and getColumns' patterns as regular expressions on the thread
    that serves the connection: a nested quantifier against a long name held a core for hours,
    and a very long pattern stalled the metastore for every session."""
    view = "a" * 24 + "c"
    refused = {
        "META getTables (x?)(a+)+\\1b": "the table pattern may hold letters, digits",
        "META getColumns (a|b)": "the column pattern may hold letters, digits",
        "META getTables %a%a%c": "the table pattern may hold at most 2 '%' wildcards",
        "META getTables " + "a" * 200: "the table pattern is longer than 128 characters",
        "META getFunctions emotion(_+)+x": "the function pattern may hold letters, digits",
    }
    answers = jdbc(
        f"CREATE TEMPORARY VIEW {view} AS SELECT 1 AS a_col",
        *refused,
        f"META getTables {view[:6]}%",
        "META getColumns a\\_%",
    )
    for query, message in refused.items():
        [line] = answers[query]
        assert line.startswith(f"ERROR\t42000\temoticana: {message}"), (query, line)
    assert ("null", view) in [
        tuple(line.split("\t")) for line in answers[f"META getTables {view[:6]}%"]
    ]
    assert (view, "a_col") in [tuple(line.split("\t")) for line in answers["META getColumns a\\_%"]]
