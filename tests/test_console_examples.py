"""The console's example runner: each example's result, its charts, and unknown example names."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from server.sqlscript import read_script
from tests.console_client import chromium, run_query

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = PROJECT_ROOT / "sql" / "examples"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(server, audio_root):
    connection = server.connect()
    cursor = connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(
        f"CREATE TABLE clips USING binaryFile OPTIONS (path '{audio_root / 'ravdess'}', "
        "pathGlobFilter '*.wav')"
    )
    yield cursor
    connection.close()


def page(server, query: str) -> str:
    url = f"http://127.0.0.1:{server.console_port}/?{query}"
    result = chromium("--virtual-time-budget=90000", "--dump-dom", url, timeout=240)
    return result.stdout


def chart_counts(dom: str) -> dict[str, int]:
    """Label -> count of the page's 'clips per predicted emotion' chart."""
    chart = re.search(r'<svg[^>]*data-kind="counts".*?</svg>', dom, re.S)
    assert chart, dom[-3000:]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", chart.group(0))
    return {label: int(count) for label, count in zip(texts[::2], texts[1::2])}


def test_evaluate_example_keeps_the_last_result_with_rows(server, clips):
    job = run_query(server, (EXAMPLES / "05_evaluate.sql").read_text(), timeout_s=300)
    assert job["state"] == "done", job["error"]
    assert job["statement"] == job["statements"] == len(read_script(EXAMPLES / "05_evaluate.sql"))
    assert job["columns"] == ["actual", "predicted", "n"]  # not UNCACHE TABLE's empty result
    assert sum(row[2] for row in job["rows"]) == 3
    dom = page(server, "example=05_evaluate&run=1")
    assert 'data-state="done"' in dom and 'data-kind="confusion"' in dom


def test_summary_chart_counts_from_the_count_column(server, clips):
    sql = (
        "SELECT predicted_emotion, clips "
        "FROM VALUES ('angry', 5), ('sad', 2) AS t(predicted_emotion, clips)"
    )
    dom = page(server, "run=1&sql=" + urllib.request.quote(sql))
    assert chart_counts(dom) == {"angry": 5, "sad": 2}
    dom = page(server, "example=04_emotion_bi&run=1")
    assert 'data-state="done"' in dom
    clips.execute("SELECT predicted_emotion, count(*) FROM emotion_bi GROUP BY predicted_emotion")
    assert chart_counts(dom) == dict(clips.fetchall())


def test_example_names_with_or_without_sql_and_unknown_ones(server, clips):
    dom = page(server, "example=02_classify&run=1")
    assert 'data-state="done"' in dom and "<th>surprised</th>" in dom
    dom = page(server, "example=02_clasify&run=1")
    assert 'data-state="unknown-example"' in dom
    assert "no example named" in dom and "02_classify" in dom
