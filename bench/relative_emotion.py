"""Emotion against a group's own baseline, measured through SQL on audio the models never heard.

A model's ``cv_predictions.csv`` holds, for every clip, the probabilities given to it by a fold
model that never heard its corpus (``cv_by`` = corpus: leave one corpus out) or its speaker.
Those rows, after the model's calibration (as ``emotion_scores`` answers), go to a running
server as a temporary view, and the server's own functions judge each
clip against the mean of its group's scores (``emotion_baseline(s) OVER (PARTITION BY ...)``):
its speaker's clips, or its whole corpus (one table of recordings).  Figures per corpus as the
trainer records them (:func:`training.metrics.corpus_figures`: UA over the corpus's own
emotions), beside the same predictions taken as they are; also ``emotion_relative``'s own answer
(the most outstanding of all eight) against ``emotion``'s (the most probable of all eight).

Groups whose clips mostly carry one emotion are where a baseline can mislead: ``--dominant
EMOTION`` keeps, per speaker, every clip of that emotion and one in five of the others (chosen by
the clip's hash) before measuring.

    .venv/bin/python bench/relative_emotion.py --port 10400 \\
        [--predictions models/emoticana/22/cv_predictions.csv] [--cv-by corpus] [--dominant neutral]

Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.thrift import client_options, connect  # noqa: E402
from training.metrics import corpus_figures  # noqa: E402
from training.trainer import read_cv_predictions, with_calibration  # noqa: E402
from udfs.labels import EMOTIONS  # noqa: E402
from udfs.model_store import DEFAULT_MODEL  # noqa: E402

SHIPPED_PREDICTIONS = (
    Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL / "cv_predictions.csv"
)


def load(path: Path, cv_by: str, dominant: str | None) -> list[dict]:
    """The rows of ``cv_by`` folds, their probabilities as the model answers: after its
    calibration (``emotion_scores`` gives those; the file holds the fold models' own)."""
    # A file from before the cv_by column holds the model's one cross-validation.
    only = json.loads((path.parent / "metrics.json").read_text())["cross_validation"]["by"]
    manifest = json.loads((path.parent / "manifest.json").read_text())
    calibration = {
        "temperature": manifest.get("temperature", 1.0),
        "slope": manifest.get("distance_slope", 0.0),
    }
    rows = [
        {**row, **dict(zip(EMOTIONS, row["probabilities"]))}
        for row in with_calibration(
            [row for row in read_cv_predictions(path) if row.get("cv_by", only) == cv_by],
            calibration,
        )
    ]
    if dominant:
        rows = [
            row
            for row in rows
            if row["label"] == dominant or int(row["clip_sha256"][:8], 16) % 5 == 0
        ]
    return rows


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def upload(cursor, rows: list[dict]) -> None:
    values = ",\n".join(
        f"({literal(r['corpus'])}, {literal(r['speaker'])}, {literal(r['label'])}, "
        + ", ".join(f"{float(r[name])!r}D" for name in EMOTIONS)
        + ")"
        for r in rows
    )
    scores = ", ".join(f"'{name}', {name}" for name in EMOTIONS)
    cursor.execute(
        "CREATE OR REPLACE TEMPORARY VIEW held_out AS SELECT corpus, speaker, label, "
        f"named_struct({scores}) AS s FROM VALUES {values} "
        f"AS t(corpus, speaker, label, {', '.join(EMOTIONS)})"
    )


def measure(cursor, group: str | None) -> tuple[list[dict], list[str]]:
    """Per clip the scores relative to the group's baseline (as probabilities, for figures among
    a corpus's own emotions), and ``emotion_relative``'s answer (plain scores without a group)."""
    if group is None:
        ratio = "s"
        answer = (
            "emotion_relative(s, named_struct("
            + ", ".join(f"'{name}', 1.0D" for name in EMOTIONS)
            + "))"
        )
        source = "held_out"
    else:
        ratio = (
            "named_struct("
            + ", ".join(f"'{n}', s.{n} / greatest(b.{n}, 1e-12D)" for n in EMOTIONS)
            + ")"
        )
        answer = "emotion_relative(s, b)"
        source = f"(SELECT *, emotion_baseline(s) OVER (PARTITION BY {group}) AS b FROM held_out)"
    cursor.execute(f"SELECT corpus, label, to_json({ratio}), {answer} FROM {source}")
    rows, answers = [], []
    for corpus, label, scored, answered in cursor.fetchall():
        values = json.loads(scored)
        p = np.array([values[name] for name in EMOTIONS])
        rows.append({"corpus": corpus, "label": label, "probabilities": p / p.sum()})
        answers.append(answered)
    return rows, answers


def figures(rows: list[dict], answers: list[str], emotions: dict[str, list[str]]) -> dict:
    out = {}
    for corpus in sorted(emotions):
        chosen = [i for i, r in enumerate(rows) if r["corpus"] == corpus]
        y = np.array([EMOTIONS.index(rows[i]["label"]) for i in chosen])
        p = np.array([rows[i]["probabilities"] for i in chosen])
        among_own = corpus_figures(y, p, emotions[corpus])["unweighted_accuracy"]
        # NULL (nothing stands out, a group of one clip) counts as a wrong answer.
        eight = np.array([EMOTIONS.index(answers[i]) if answers[i] else -1 for i in chosen])
        recalls = [np.mean(eight[y == k] == k) for k in sorted(set(y))]
        out[corpus] = (among_own, float(np.mean(recalls)), float(np.mean(eight == y)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, default=SHIPPED_PREDICTIONS)
    parser.add_argument(
        "--cv-by", default="corpus", choices=("corpus", "speaker"), help="which folds' rows"
    )
    parser.add_argument(
        "--dominant", choices=EMOTIONS, help="make each speaker mostly this emotion"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=10000)
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = load(args.predictions, args.cv_by, args.dominant)
    emotions = {}
    for row in rows:
        emotions.setdefault(row["corpus"], set()).add(row["label"])
    emotions = {c: [e for e in EMOTIONS if e in found] for c, found in emotions.items()}
    connection = connect(args.host, args.port, **client_options())
    cursor = connection.cursor()
    upload(cursor, rows)
    print(f"{len(rows)} held-out predictions ({args.cv_by} folds) from {args.predictions}")
    if args.dominant:
        shares = {
            c: np.mean([r["label"] == args.dominant for r in rows if r["corpus"] == c])
            for c in sorted(emotions)
        }
        print(
            "share of "
            + args.dominant
            + ": "
            + ", ".join(f"{c} {v:.2f}" for c, v in shares.items())
        )
    print("UA over each corpus's own emotions / UA and accuracy of the answer among all eight:")
    for title, group in (("as given", None), ("per speaker", "speaker"), ("per corpus", "corpus")):
        found = figures(*measure(cursor, group), emotions)
        own = np.mean([v[0] for v in found.values()])
        line = ", ".join(f"{c} {a:.3f} / {b:.3f} {w:.3f}" for c, (a, b, w) in found.items())
        print(f"  {title:12s} {line}; mean {own:.3f}")
    connection.close()
    print(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
