"""Parse RAVDESS file names (``03-01-05-02-01-02-12.wav``) into their seven fields."""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from udfs.labels import EMOTIONS

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_MODALITY = {1: "full-AV", 2: "video-only", 3: "audio-only"}
_VOCAL_CHANNEL = {1: "speech", 2: "song"}
_INTENSITY = {1: "normal", 2: "strong"}
_STATEMENT = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}

RAVDESS_META_DDL = (
    "struct<modality:string, vocal_channel:string, emotion:string, intensity:string, "
    "statement:string, repetition:int, actor:int, gender:string>"
)


class RavdessMeta(NamedTuple):
    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: int
    gender: str


def parse_ravdess_name(path: str | None) -> RavdessMeta | None:
    """Return the fields encoded in a RAVDESS file name, or None when it does not follow the scheme.

    Parameters
    ----------
    path : str or None
        A file name, a path or a ``file:`` URI; only the base name without its
        extension is read, so ``/data/Actor_12/03-01-05-02-01-02-12.wav`` works.
    """
    if not path:
        return None
    stem = os.path.splitext(os.path.basename(path.rstrip("/")))[0]
    match = _NAME.match(stem)
    if match is None:
        return None
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, match.groups())
    if (
        modality not in _MODALITY
        or channel not in _VOCAL_CHANNEL
        or not 1 <= emotion <= len(EMOTIONS)
        or intensity not in _INTENSITY
        or statement not in _STATEMENT
        or repetition not in (1, 2)
        or actor < 1
    ):
        return None
    return RavdessMeta(
        modality=_MODALITY[modality],
        vocal_channel=_VOCAL_CHANNEL[channel],
        emotion=EMOTIONS[emotion - 1],
        intensity=_INTENSITY[intensity],
        statement=_STATEMENT[statement],
        repetition=repetition,
        actor=actor,
        gender="male" if actor % 2 else "female",
    )
