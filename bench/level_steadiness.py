"""How often a model's answer changes when the same clip is played louder or quieter.

A consistency measure, not an accuracy: each clip is scaled by each gain, its features are
computed with the ``mfcc`` UDF's code (``udfs.features.mfcc_features``) and the model's
``emotion()`` (the arg-max of its saved probabilities) is compared with the answer for the clip
as recorded.  The clips may be ones the model was trained on: only the change is counted.

    .venv/bin/python bench/level_steadiness.py --audio ../shared/ravdess \
        --models emoticana/22 [--every 6] [--gains -12,-6,6,12]

Every ``--every``-th file in name order (6: 200 of RAVDESS's 1,200 speech clips, every actor and
emotion).  About 2 min on this 2-core machine for two models.  Not part of the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from udfs.audio import decode_audio  # noqa: E402
from udfs.features import mfcc_features  # noqa: E402
from udfs.model_format import load_keras_model, read_model_dir  # noqa: E402
from udfs.model_store import DEFAULT_MODEL  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--audio", type=Path, required=True, help="folder searched for .wav and .flac files"
    )
    parser.add_argument(
        "--models", default=DEFAULT_MODEL, help="name/version,... under --models-dir"
    )
    parser.add_argument(
        "--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models"
    )
    parser.add_argument("--every", type=int, default=6, help="use every N-th file")
    parser.add_argument("--gains", default="-12,-6,6,12", help="dB, comma-separated")
    args = parser.parse_args(argv)
    files = sorted(p for p in args.audio.rglob("*") if p.suffix.lower() in (".wav", ".flac"))[
        :: args.every
    ]
    if not files:
        print(f"level_steadiness: no .wav or .flac files under {args.audio}", file=sys.stderr)
        return 2
    gains = [float(g) for g in args.gains.split(",")]
    clips = [decode_audio(path.read_bytes()) for path in files]
    features = {
        g: np.stack([mfcc_features(y * 10 ** (g / 20), rate) for y, rate in clips])
        for g in [0.0, *gains]
    }
    print(f"{len(files)} clips from {args.audio}; answers changed against the clip as recorded:")
    for name in args.models.split(","):
        model = load_keras_model(read_model_dir(args.models_dir / name))
        answers = {
            g: model.predict(x, batch_size=50, verbose=0).argmax(axis=1)
            for g, x in features.items()
        }
        changed = "  ".join(
            f"{g:+g} dB {100 * np.mean(answers[g] != answers[0.0]):5.1f} %" for g in gains
        )
        print(f"{name:>14}  {changed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
