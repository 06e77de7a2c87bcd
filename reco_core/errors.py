"""Errors that reach a person. Every message names the bad argument or file, the value, and the fix.

The CLI prints ``str(error)`` on one line and exits with code 2; the dashboard shows it with
``st.error``. Nothing outside these classes is expected to escape the engine's public calls.
"""

from __future__ import annotations


class RecoError(Exception):
    """Base class: a problem the user can fix. ``str()`` is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataError(RecoError):
    """A data file or frame is malformed (missing column, bad value, empty file...)."""


class DatasetNotFoundError(RecoError):
    """No source could provide the requested dataset."""


class ConfigError(RecoError):
    """A model, split, fusion or metric argument is out of range or unknown."""


class UnknownIdError(RecoError):
    """A user or item id that the data does not contain."""


class NotFittedError(RecoError):
    """A model was asked to score before ``fit``."""


class FitError(RecoError):
    """A model raised while fitting; the message names the model."""


class ScaleError(RecoError):
    """A model cannot run at this size (for example EASE's dense item-item inverse)."""
