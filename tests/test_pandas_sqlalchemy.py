"""pandas and the SQLAlchemy inspector through ``hive+emoticana://``."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(server):
    engine = create_engine(f"hive+emoticana://tester@127.0.0.1:{server.port}/default")
    with engine.connect() as connection:
        connection.execute(text("DROP TABLE IF EXISTS pd_scores"))
        connection.execute(
            text("CREATE TABLE pd_scores (id INT, label STRING, score DOUBLE) USING parquet")
        )
        connection.execute(text("INSERT INTO pd_scores VALUES (1, 'angry', 0.75), (2, 'sad', 0.5)"))
        connection.execute(
            text(
                "CREATE OR REPLACE VIEW pd_view AS "
                "SELECT id, label AS `file`, score AS `neu+calm` FROM pd_scores"
            )
        )
        connection.execute(text("CREATE OR REPLACE TEMPORARY VIEW pd_temp AS SELECT 1 AS x"))
        connection.execute(text("DROP TABLE IF EXISTS pd_types"))
        connection.execute(
            text(
                "CREATE TABLE pd_types (at TIMESTAMP_NTZ, seen TIMESTAMP, clip BINARY, "
                "cost DECIMAL(12,3), tags ARRAY<STRING>) USING parquet PARTITIONED BY (day DATE)"
            )
        )
    yield engine
    engine.dispose()


def test_read_sql_with_a_query_string(engine):
    frame = pd.read_sql("SELECT `file`, `neu+calm` FROM pd_view ORDER BY id", engine)
    assert frame.to_dict("records") == [
        {"file": "angry", "neu+calm": 0.75},
        {"file": "sad", "neu+calm": 0.5},
    ]


def test_read_sql_with_a_text_clause(engine, audio_root):
    clip = audio_root / "variants" / "pcm16_16k_mono.wav"
    frame = pd.read_sql(
        text(f"SELECT audio_info('{clip}').sample_rate AS rate, size(mfcc('{clip}')) AS n"),
        engine,
    )
    assert frame.to_dict("records") == [{"rate": 16000, "n": 12943}]


def test_read_sql_keeps_spark_column_names_with_dots(engine):
    """Unaliased expressions are named after their text, dots included, as beeline shows them
    (PyHive cut a name at its last dot: both columns below became ``5 * score)``)."""
    frame = pd.read_sql("SELECT 0.5 * score, 1.5 * score, label FROM pd_scores ORDER BY id", engine)
    assert list(frame.columns) == ["(0.5 * score)", "(1.5 * score)", "label"]
    assert frame.to_dict("records")[0] == {
        "(0.5 * score)": 0.375,
        "(1.5 * score)": 1.125,
        "label": "angry",
    }


@pytest.mark.parametrize("name", ["pd_scores", "pd_view"])
def test_read_sql_with_a_table_or_view_name(engine, name):
    frame = pd.read_sql(name, engine)
    assert len(frame) == 2 and "id" in frame.columns


def test_has_table_answers_for_tables_and_views_only(engine):
    with engine.connect() as connection:
        dialect = engine.dialect
        assert dialect.has_table(connection, "pd_scores")
        assert dialect.has_table(connection, "pd_view")
        assert not dialect.has_table(connection, "SELECT 1 AS x")
        assert not dialect.has_table(connection, "no_such_table")
        assert not dialect.has_table(connection, "pd_temp")  # another session's, never the schema's


def test_inspector_lists_tables_views_and_columns(engine):
    inspector = inspect(engine)
    tables = inspector.get_table_names("default")
    views = inspector.get_view_names("default")
    assert "pd_scores" in tables and "pd_view" not in tables and "default" not in tables
    assert "pd_view" in views and "pd_scores" not in views
    assert "pd_temp" not in tables + views
    assert inspector.get_table_names() == tables  # the connection's database
    columns = inspector.get_columns("pd_view", "default")
    assert [(c["name"], str(c["type"])) for c in columns] == [
        ("id", "INTEGER"),
        ("file", "VARCHAR"),
        ("neu+calm", "FLOAT"),
    ]
    # Spark's types as SQLAlchemy's (a dashboard finds its time columns by them), each once.
    typed = inspector.get_columns("pd_types", "default")
    assert [(c["name"], str(c["type"])) for c in typed] == [
        ("at", "TIMESTAMP"),
        ("seen", "TIMESTAMP"),
        ("clip", "BLOB"),
        ("cost", "DECIMAL(12, 3)"),
        ("tags", "VARCHAR"),
        ("day", "DATE"),
    ]
    assert inspector.default_schema_name == "default"


def test_the_dialect_loads_without_sqlalchemy_deprecation_warnings():
    """SQLAlchemy 2 warns about a dialect that only inherits PyHive's old ``dbapi()``; users
    see that warning in every notebook."""
    import warnings

    from sqlalchemy.exc import SADeprecationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_engine("hive+emoticana://tester@127.0.0.1:1/default").dispose()
    assert not [w for w in caught if issubclass(w.category, SADeprecationWarning)], [
        str(w.message) for w in caught
    ]
