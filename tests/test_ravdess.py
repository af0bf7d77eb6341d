import pytest

from udfs.labels import EMOTIONS
from udfs.ravdess import parse_ravdess_name


def test_full_example():
    meta = parse_ravdess_name("/data/Actor_12/03-01-05-02-01-02-12.wav")
    assert meta._asdict() == {
        "modality": "audio-only",
        "vocal_channel": "speech",
        "emotion": "angry",
        "intensity": "strong",
        "statement": "Kids are talking by the door",
        "repetition": 2,
        "actor": 12,
        "gender": "female",
    }


@pytest.mark.parametrize("code,emotion", [(i + 1, name) for i, name in enumerate(EMOTIONS)])
def test_every_emotion_code(code, emotion):
    assert parse_ravdess_name(f"file:/x/03-01-{code:02d}-01-01-01-07.flac").emotion == emotion


@pytest.mark.parametrize("actor,gender", [(1, "male"), (2, "female"), (23, "male"), (24, "female")])
def test_gender_from_actor(actor, gender):
    assert parse_ravdess_name(f"03-02-01-01-02-01-{actor:02d}.wav").gender == gender


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "nope.wav",
        "03-01-09-01-01-01-01.wav",
        "03-01-00-01-01-01-01.wav",
        "04-01-01-01-01-01-01.wav",
        "03-03-01-01-01-01-01.wav",
        "03-01-01-03-01-01-01.wav",
        "03-01-01-01-03-01-01.wav",
        "03-01-01-01-01-03-01.wav",
        "03-01-01-01-01-01-00.wav",
        "03-01-01-01-01-01.wav",
        "03-01-01-01-01-01-01-01.wav",
        "3-1-1-1-1-1-1.wav",
    ],
)
def test_not_the_scheme(name):
    assert parse_ravdess_name(name) is None
