"""Label order of the emotion model, declared once for the UDFs, the trainer and SQL.

``EMOTIONS`` follows the RAVDESS emotion codes 01..08, so ``EMOTIONS[code - 1]``
is the name of a RAVDESS code.  ``MERGED_CLASSES`` is the seed project's five-class
view; each merged probability is the sum of its members' probabilities.
"""

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

MERGED_CLASSES: dict[str, tuple[str, ...]] = {
    "neu+calm": ("neutral", "calm"),
    "happy": ("happy",),
    "ang+sur": ("angry", "surprised"),
    "sad+fea": ("sad", "fearful"),
    "disg": ("disgust",),
}

# DOUBLE, not FLOAT: HiveServer2 sends FLOAT values as doubles, so a JDBC client's getObject would
# give java.lang.Double for a column whose declared class is java.lang.Float.
EMOTION_SCORES_DDL = "struct<" + ", ".join(f"{name}:double" for name in EMOTIONS) + ">"
