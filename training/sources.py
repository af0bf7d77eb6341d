"""The trainer's side of a training view: the running server computes the features.

The trainer reaches the view through the running server over JDBC (the embedded
Derby catalog admits one process only, and the view's tables live there).  The
server runs ``mfcc`` over the view in Spark, distributed, into a Parquet table
under its warehouse; the trainer's own Spark application reads that Parquet
directly and feeds TensorFlowOnSpark from it.  The features are therefore
computed by the very UDF that serves queries.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from udfs.errors import EmoticanaError
from udfs.labels import EMOTIONS

AUDIO_COLUMN_CANDIDATES = ("content", "audio", "path")
#: A view's optional column naming the corpus of each clip: a clip teaches only about the
#: emotions its corpus has (training.schedule), and figures are reported per corpus.
CORPUS_COLUMN = "corpus"
#: A view's optional column saying how a row's audio was made: rows other than ``'clean'``
#: (augmented copies, e.g. ``degrade(content, ...)``) are trained on but never validated or
#: tested on, so figures are always of audio as recorded.
CONDITION_COLUMN = "condition"
FEATURES_DATABASE = "emoticana"
FEATURES_TABLE_PREFIX = "train_features_"


class TrainingDataError(EmoticanaError):
    """The training view cannot be used as it is: no rows, unknown labels, missing columns."""


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def quote_name(name: str) -> str:
    """Quote a possibly qualified name (``db.view``) part by part."""
    return ".".join(quote(part) for part in name.split("."))


@dataclass
class PreparedFeatures:
    view: str
    table: str
    location: str
    view_sql: str
    rows: int
    usable_rows: int
    unreadable: int
    label_counts: dict[str, int]
    speakers: list[str]
    files_digest: str
    seconds: float
    #: Corpus -> the emotions it has (sorted); a view without a corpus column is one corpus.
    corpora: dict[str, list[str]]
    #: Speaker -> corpus.
    speaker_corpus: dict[str, str]


def _rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall()


def view_columns(cursor, view: str) -> dict[str, str]:
    try:
        rows = _rows(cursor, f"DESCRIBE {quote_name(view)}")
    except Exception as exc:
        message = str(exc)
        if "TABLE_OR_VIEW_NOT_FOUND" in message or "not found" in message.lower():
            raise TrainingDataError(
                f"training view {view!r} does not exist on the server"
            ) from None
        raise
    columns = {}
    for name, data_type, *_ in rows:
        if not name or name.startswith("#"):
            break
        columns[name.strip().lower()] = (data_type or "").strip().lower()
    return columns


def pick_columns(
    columns: dict[str, str], *, view: str, audio: str | None, label: str, speaker: str
) -> tuple[str, str, str]:
    if audio is None:
        audio = next((c for c in AUDIO_COLUMN_CANDIDATES if c in columns), None)
        if audio is None:
            raise TrainingDataError(
                f"training view {view!r} needs an audio column named one of "
                f"{', '.join(AUDIO_COLUMN_CANDIDATES)} "
                f"(has: {', '.join(columns)}); or pass --audio-column"
            )
    for role, column in (("audio", audio), ("label", label), ("speaker", speaker)):
        if column.lower() not in columns:
            hint = (
                " (validation is split by speaker, so the view must say who speaks)"
                if role == "speaker"
                else ""
            )
            raise TrainingDataError(
                f"training view {view!r} has no {role} column {column!r}{hint}; it has: "
                f"{', '.join(columns)}"
            )
    if columns[audio.lower()] not in ("binary", "string"):
        raise TrainingDataError(
            f"audio column {audio!r} of {view!r} is {columns[audio.lower()]}, expected binary "
            "(bytes) or string (path)"
        )
    return audio, label, speaker


def prepare_features(
    cursor,
    view: str,
    *,
    audio_column: str | None = None,
    label_column: str = "label",
    speaker_column: str = "speaker",
    reuse: str | None = None,
) -> PreparedFeatures:
    """Materialise ``mfcc`` of every row of ``view`` on the server; check labels and counts.

    ``reuse`` names the features table of an earlier run of the same view (kept with
    ``--keep-features``): its features are read again instead of computed, so a second recipe
    or a rerun costs no feature time.
    """
    started = time.monotonic()
    if reuse:
        # The trainer prints the qualified name; the bare table name it ends with is as clear.
        if reuse.startswith(FEATURES_TABLE_PREFIX):
            reuse = f"{FEATURES_DATABASE}.{reuse}"
        if not re.fullmatch(rf"{FEATURES_DATABASE}\.{FEATURES_TABLE_PREFIX}\w+", reuse):
            raise TrainingDataError(
                f"--features-table must name a table that emoticana train kept "
                f"({FEATURES_DATABASE}.{FEATURES_TABLE_PREFIX}...), got {reuse!r}"
            )
        try:
            _rows(
                cursor, f"SELECT features, label, speaker, corpus, condition FROM {reuse} LIMIT 0"
            )
        except Exception as exc:
            from server.thrift import server_message

            raise TrainingDataError(
                f"features table {reuse!r} cannot be read: {server_message(exc)}"
            ) from None
        return _summarise(cursor, view, reuse, started)
    columns = view_columns(cursor, view)
    audio, label, speaker = pick_columns(
        columns, view=view, audio=audio_column, label=label_column, speaker=speaker_column
    )
    # No leading underscore: Spark's file listing skips paths that start with "_" or ".".
    table = f"{FEATURES_DATABASE}.{FEATURES_TABLE_PREFIX}{uuid.uuid4().hex[:12]}"
    condition = (
        f"CAST({quote(CONDITION_COLUMN)} AS STRING)" if CONDITION_COLUMN in columns else "'clean'"
    )
    corpus = (
        f"CAST({quote(CORPUS_COLUMN)} AS STRING)"
        if CORPUS_COLUMN in columns
        else "'" + view.replace("'", "") + "'"
    )
    _rows(cursor, f"CREATE DATABASE IF NOT EXISTS {FEATURES_DATABASE}")
    try:
        _rows(
            cursor,
            f"CREATE TABLE {table} USING parquet AS SELECT "
            f"mfcc({quote(audio)}) AS features, "
            f"CAST({quote(label)} AS STRING) AS label, "
            f"CAST({quote(speaker)} AS STRING) AS speaker, "
            f"{corpus} AS corpus, "
            f"{condition} AS condition, "
            f"sha2(CAST({quote(audio)} AS BINARY), 256) AS digest "
            f"FROM {quote_name(view)}",
        )
    except Exception as exc:
        # E.g. a table under the view was dropped, or lies outside the audio roots: the server's
        # own first line, not a Thrift response with a Java stack.
        from server.thrift import server_message

        raise TrainingDataError(
            f"training view {view!r} cannot be read on the server: {server_message(exc)}"
        ) from None
    return _summarise(cursor, view, table, started, drop_on_error=True)


def _summarise(
    cursor, view: str, table: str, started: float, *, drop_on_error: bool = False
) -> PreparedFeatures:
    """Check a features table and describe it (counts, labels, speakers, corpora, digest)."""
    try:
        ((rows, usable),) = _rows(cursor, f"SELECT count(*), count(features) FROM {table}")
        if rows == 0:
            raise TrainingDataError(f"training view {view!r} has no rows")
        if usable == 0:
            raise TrainingDataError(
                f"none of the {rows} clips of {view!r} could be decoded; see audio_info(...).error"
            )
        label_counts = dict(
            _rows(
                cursor,
                f"SELECT label, count(*) FROM {table} WHERE features IS NOT NULL GROUP BY label "
                "ORDER BY label",
            )
        )
        unknown = {k: v for k, v in label_counts.items() if k not in EMOTIONS}
        if unknown:
            described = ", ".join(
                f"{k!r} ({v} rows)" for k, v in sorted(unknown.items(), key=lambda kv: str(kv[0]))
            )
            raise TrainingDataError(
                f"training view {view!r} has labels outside {', '.join(EMOTIONS)}: {described}"
            )
        speakers = [
            row[0]
            for row in _rows(
                cursor,
                f"SELECT DISTINCT speaker FROM {table} WHERE features IS NOT NULL ORDER BY speaker",
            )
        ]
        if any(s is None for s in speakers):
            raise TrainingDataError(f"training view {view!r} has rows whose speaker is NULL")
        corpora = {
            str(name): labels.split(",")
            for name, labels in _rows(
                cursor,
                f"SELECT corpus, concat_ws(',', sort_array(collect_set(label))) FROM {table} "
                "WHERE features IS NOT NULL GROUP BY corpus",
            )
        }
        if None in corpora or "None" in corpora:
            raise TrainingDataError(f"training view {view!r} has rows whose corpus is NULL")
        speaker_corpus = {}
        for speaker_name, corpus_name in _rows(
            cursor, f"SELECT DISTINCT speaker, corpus FROM {table} WHERE features IS NOT NULL"
        ):
            if speaker_corpus.setdefault(str(speaker_name), str(corpus_name)) != corpus_name:
                raise TrainingDataError(
                    f"speaker {speaker_name!r} of {view!r} appears in more than one corpus; "
                    "speakers are split between folds, so name them per corpus"
                )
        ((digest,),) = _rows(
            cursor,
            f"SELECT sha2(concat_ws(',', sort_array(collect_list(digest))), 256) FROM {table}",
        )
        location = next(
            row[1]
            for row in _rows(cursor, f"DESCRIBE TABLE EXTENDED {table}")
            if row[0] == "Location"
        )
        view_sql = _rows(cursor, f"SHOW CREATE TABLE {quote_name(view)}")[0][0]
    except BaseException:
        if drop_on_error:
            drop_features(cursor, table)
        raise
    return PreparedFeatures(
        view=view,
        table=table,
        location=location,
        view_sql=view_sql,
        rows=int(rows),
        usable_rows=int(usable),
        unreadable=int(rows - usable),
        label_counts={k: int(v) for k, v in label_counts.items()},
        speakers=[str(s) for s in speakers],
        files_digest=digest,
        seconds=time.monotonic() - started,
        corpora=corpora,
        speaker_corpus=speaker_corpus,
    )


def drop_features(cursor, table: str) -> None:
    try:
        _rows(cursor, f"DROP TABLE IF EXISTS {table}")
    except Exception:
        pass  # best effort: a leftover train_features_ table only costs disk
