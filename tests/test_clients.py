"""The server through the clients users have: SQLAlchemy hive://, beeline, the sql CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.helpers import beeline
from udfs.model_store import DEFAULT_MODEL

PROJECT_ROOT = Path(__file__).resolve().parent.parent

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
    assert len(outputs) == 8
    assert "WAV,3" in outputs["01_audio_functions.sql"]  # three WAV clips, none unreadable
    assert "03-01-05-02-01-02-12.wav,WAV,48000,1" in outputs["01_audio_functions.sql"]
    assert "predicted_emotion,clips,mean_confidence" in outputs["04_emotion_bi.sql"]
    assert "accuracy,unweighted_accuracy,clips" in outputs["05_evaluate.sql"]
    assert "file,speech_s,dominant_emotion,share_angry" in outputs["07_call_summary.sql"]
    default_name, default_version = DEFAULT_MODEL.split("/")
    assert (
        f"{default_name},{default_version},true" in outputs["06_models.sql"]
    )  # the shipped model, active


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
