"""The error hierarchy shared by the server, the UDFs and the trainer.

Messages name the bad value and what was expected, so that a user reading one
line (a start-up failure, or ``audio_info(...).error`` for a bad row) knows
what to change.
"""


class EmoticanaError(Exception):
    """Base class of every error Emoticana raises on purpose."""


class ConfigError(EmoticanaError):
    """A setting, a conf file or the environment is unusable; start-up stops."""


class AudioError(EmoticanaError):
    """One clip cannot be read or decoded; its row becomes NULL with this reason."""


class ModelError(EmoticanaError):
    """A model directory is missing, corrupt, or expects other features."""


class ArgumentError(EmoticanaError):
    """A SQL function was given an argument of the wrong kind (the whole query fails)."""
