"""emotion_segments and whole-recording emotion over JDBC, against the real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.sqlscript import read_script
from tests.audiogen import voiced_signal, write_clip
from tests.segmentgen import write_plan_in_blocks
from udfs.labels import EMOTIONS
from udfs.segments import EMOTION_SEGMENTS_DDL

pytestmark = pytest.mark.slow

#: Stated tolerance of segment boundaries, in seconds (docs/long-recordings.md).
BOUNDARY_TOLERANCE_S = 0.05
CALL_PLAN = [
    ("silence", 1.5),
    ("speech", 7.0),
    ("silence", 2.0),
    ("noise", 1.5),
    ("silence", 2.0),
    ("speech", 2.2),
    ("silence", 3.0),
    ("speech", 5.0),
    ("silence", 1.0),
]
SCORES = ", ".join(f"s.{name}" for name in EMOTIONS)


@pytest.fixture(scope="module")
def calls(server, audio_root):
    """A folder of recordings: a long call, a short clip, a silent hour, and an unreadable file."""
    directory = audio_root / "calls"
    truth = {
        "call.flac": write_plan_in_blocks(
            directory / "call.flac", np.random.default_rng(21), CALL_PLAN
        ),
        "silent_hour.wav": write_plan_in_blocks(
            directory / "silent_hour.wav",
            np.random.default_rng(22),
            [("silence", 3600.0)],
            format="WAV",
        ),
    }
    write_clip(
        directory / "short.wav",
        voiced_signal(np.random.default_rng(23), sample_rate=48000, seconds=1.5),
        48000,
        subtype="PCM_16",
    )
    (directory / "broken.wav").write_bytes(b"RIFF not really a wave file" * 10)
    cursor = server.connect().cursor()
    cursor.execute("DROP TABLE IF EXISTS calls")
    cursor.execute(f"CREATE TABLE calls USING binaryFile OPTIONS (path '{directory}')")
    return directory, truth


def rows(cursor, sql):
    cursor.execute(sql)
    return cursor.fetchall()


def name_of(path):
    return path.rsplit("/", 1)[-1]


def segments_by_file(cursor, column="path"):
    found = {}
    for path, *values in rows(
        cursor,
        f"SELECT c.path, s.* FROM calls c, LATERAL emotion_segments(c.{column}) s "
        "ORDER BY c.path, s.start_s",
    ):
        found.setdefault(name_of(path), []).append(values)
    return found


def test_segments_per_row_follow_the_speech(cursor, calls):
    _, truth = calls
    found = segments_by_file(cursor)
    assert "silent_hour.wav" not in found  # silence gives no rows
    call = found["call.flac"]
    for start, end in truth["call.flac"]:
        inside = [r for r in call if r[1] > start - 0.5 and r[0] < end + 0.5]
        assert inside[0][0] == pytest.approx(start, abs=BOUNDARY_TOLERANCE_S)
        assert inside[-1][1] == pytest.approx(end, abs=BOUNDARY_TOLERANCE_S)
    for start_s, end_s, emotion, confidence, *scores, error in call:
        assert error is None and start_s < end_s
        assert any(a - 0.05 <= start_s and end_s <= b + 0.05 for a, b in truth["call.flac"])
        assert sum(scores) == pytest.approx(1, abs=1e-4)
        assert emotion == EMOTIONS[int(np.argmax(scores))] and confidence == max(scores)
    assert len(found["short.wav"]) == 1
    # Bytes and path give the same rows.
    by_content = segments_by_file(cursor, "content")
    for name in ("call.flac", "short.wav"):
        np.testing.assert_allclose(
            np.array([r[:2] + r[3:-1] for r in by_content[name]], dtype=float),
            np.array([r[:2] + r[3:-1] for r in found[name]], dtype=float),
            atol=1e-5,
        )


def test_bad_row_is_one_row_with_a_reason(cursor, calls):
    broken = segments_by_file(cursor)["broken.wav"]
    assert len(broken) == 1
    assert broken[0][:-1] == [None] * (4 + len(EMOTIONS))
    assert "not a readable audio file" in broken[0][-1]
    assert rows(
        cursor, "SELECT emotion(path) IS NULL FROM calls WHERE path LIKE '%broken.wav'"
    ) == [(True,)]


def test_whole_recording_is_the_duration_weighted_mean_of_its_segments(cursor, calls):
    call = segments_by_file(cursor)["call.flac"]
    durations = np.array([r[1] - r[0] for r in call])
    expected = durations @ np.array([r[4:-1] for r in call], dtype=float) / durations.sum()
    ((scores_json, label, label_of_bytes),) = rows(
        cursor,
        "SELECT to_json(emotion_scores(path)), emotion(path), emotion(content) FROM calls "
        "WHERE path LIKE '%call.flac'",
    )
    import json

    scores = json.loads(scores_json)
    np.testing.assert_allclose([scores[e] for e in EMOTIONS], expected, atol=1e-5)
    assert label == label_of_bytes == EMOTIONS[int(np.argmax(expected))]
    assert rows(
        cursor, "SELECT emotion(path) IS NULL FROM calls WHERE path LIKE '%silent_hour.wav'"
    ) == [(True,)]


def test_short_clip_answers_as_before(cursor, calls):
    ((same_scores, same_label),) = rows(
        cursor,
        "SELECT to_json(emotion_scores(path)) = to_json(emotion_scores(mfcc(path))), "
        "emotion(content) = emotion(path) FROM calls WHERE path LIKE '%short.wav'",
    )
    assert same_scores and same_label


def test_declared_columns(cursor, calls):
    cursor.execute("DESCRIBE QUERY SELECT s.* FROM calls c, LATERAL emotion_segments(c.path) s")
    declared = [(name, kind) for name, kind, _ in cursor.fetchall()]
    assert declared == [tuple(column.split()) for column in EMOTION_SEGMENTS_DDL.split(", ")]


def test_summary_view_is_persistent_and_scalar(server, calls):
    cursor = server.connect().cursor()
    # The example runs on `clips`; here clips are the calls.
    cursor.execute("DROP TABLE IF EXISTS clips")
    cursor.execute(f"CREATE TABLE clips USING binaryFile OPTIONS (path '{calls[0]}')")
    statements = read_script(
        Path(__file__).resolve().parent.parent / "sql/examples/07_call_summary.sql"
    )
    for statement in statements:
        cursor.execute(statement)
    other = server.connect().cursor()  # a persistent view: every session sees it
    other.execute("DESCRIBE call_emotion_summary")
    columns = {name: kind for name, kind, _ in other.fetchall()}
    assert all(kind in ("string", "double") for kind in columns.values()), columns
    summary = {
        values["file"]: values
        for values in (
            dict(zip(columns, row, strict=True))
            for row in rows(other, "SELECT * FROM call_emotion_summary")
        )
    }
    assert set(summary) == {"call.flac", "short.wav"}
    call = summary["call.flac"]
    speech = sum(b - a for a, b in calls[1]["call.flac"])
    assert call["speech_s"] == pytest.approx(speech, abs=0.2)
    assert sum(call[f"share_{e}"] for e in EMOTIONS) == pytest.approx(1.0)
    assert call["dominant_emotion"] in EMOTIONS and call["last_30s_emotion"] in EMOTIONS
    assert 0 <= call["angriest_start_s"] < 30 and 0 < call["angriest_confidence"] <= 1


def test_console_draws_a_timeline_of_segments(server, calls):
    import urllib.request

    from tests.console_client import chromium

    sql = (
        "SELECT c.path, s.start_s, s.end_s, s.emotion, s.confidence "
        "FROM calls c, LATERAL emotion_segments(c.path) s WHERE c.path LIKE '%call.flac'"
    )
    url = f"http://127.0.0.1:{server.console_port}/?run=1&sql=" + urllib.request.quote(sql)
    dom = chromium("--virtual-time-budget=60000", "--dump-dom", url).stdout
    assert 'data-state="done"' in dom and 'data-kind="timeline"' in dom, dom[-2000:]
    assert dom.count("data-start=") >= 4 and 'class="play"' in dom
