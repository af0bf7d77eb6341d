"""How a model does on labelled audio, measured through SQL as a user would: by corpus and by
recording condition.

For every condition, every clip of the view goes through ``emotion_scores(mfcc(degrade(content,
condition, seed)), model)`` on a running server; the figures are those the trainer records
(:func:`training.metrics.corpus_figures`: UA over each corpus's own emotions, recall, calibration
of the answers).  The view needs ``content``, ``label`` and ``corpus`` (``sql/training/*.sql``)::

    .venv/bin/python bench/evaluate_views.py --view emotion_train --model emoticana/22 \\
        --where "corpus <> 'ravdess'" --conditions clean,telephone,noise:10,reverb:0.5 \\
        --out /tmp/eval.json

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
from training.metrics import figures_by_corpus  # noqa: E402
from udfs.labels import EMOTIONS  # noqa: E402
from udfs.model_store import DEFAULT_MODEL  # noqa: E402

#: The conditions of the robustness table (issue 30): as recorded, phone, noise, short, room, quiet.
TABLE_CONDITIONS = "clean,telephone,noise:10,crop:1.5,reverb:0.5,gain:-20"


def scores(cursor, view: str, model: str, condition: str, where: str) -> list[dict]:
    audio = "content" if condition == "clean" else f"degrade(content, '{condition}', hash(content))"
    cursor.execute(
        f"SELECT corpus, label, to_json(emotion_scores(mfcc({audio}), '{model}')) "
        f"FROM {view} WHERE {where}"
    )
    rows = []
    for corpus, label, scored in cursor.fetchall():
        if scored is None or label not in EMOTIONS:
            continue
        probabilities = json.loads(scored)
        rows.append(
            {
                "corpus": corpus,
                "label": label,
                "probabilities": [probabilities[name] for name in EMOTIONS],
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--view", default="emotion_train")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--where", default="true", help="SQL filter on the view's rows")
    parser.add_argument("--conditions", default=TABLE_CONDITIONS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=10000)
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = parser.parse_args(argv)

    connection = connect(args.host, args.port, **client_options())
    cursor = connection.cursor()
    corpora = {
        corpus: labels.split(",")
        for corpus, labels in _rows(
            cursor,
            f"SELECT corpus, concat_ws(',', sort_array(collect_set(label))) FROM {args.view} "
            f"WHERE {args.where} GROUP BY corpus",
        )
    }
    results = {}
    for condition in args.conditions.split(","):
        started = time.monotonic()
        rows = scores(cursor, args.view, args.model, condition, args.where)
        figures = figures_by_corpus(rows, corpora)
        figures["seconds"] = time.monotonic() - started
        results[condition] = figures
        by_corpus = "  ".join(
            f"{name} {f['unweighted_accuracy']:.3f} (ECE {f['expected_calibration_error']:.2f}, "
            f">=0.9 right {_share(f['confident_accuracy'])} of {f['confident_share']:.0%})"
            for name, f in figures["corpora"].items()
        )
        print(
            f"{condition}: mean UA {figures['unweighted_accuracy_mean']:.3f}, lowest "
            f"{figures['unweighted_accuracy_min']:.3f}, mean ECE "
            f"{figures['expected_calibration_error_mean']:.3f} ({figures['seconds']:.0f}s) | "
            + by_corpus,
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps({"model": args.model, "view": args.view, **results}))
    connection.close()
    return 0


def _rows(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall()


def _share(value) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.0%}"


if __name__ == "__main__":
    sys.exit(main())
