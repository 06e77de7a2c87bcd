"""Errors that reach a person. Every message names the bad argument or file, the value, and the fix.

The CLI prints ``str(error)`` on one line and exits with code 2; the dashboard shows it with
``st.error``. Nothing outside these classes is expected to escape the engine's public calls.
"""

from __future__ import annotations

import os
import stat


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


# ------------------------------------------------------------------------------- quoting a person's value

QUOTE_CHARS = 80
"""How many characters of a person's value a message quotes (``quote``)."""


def quote(value: object, n: int = QUOTE_CHARS) -> str:
    """``repr(value)`` on one line, at most ``n`` characters: a message quotes a person's value without echoing it.

    A longer value is cut with an ellipsis inside its quotes and followed by its full length, so a 30 MB method
    name reads ``'aaaa...' (30,000,000 characters)``. Text and bytes are cut before ``repr`` is taken, so quoting
    a huge value costs only its first ``n`` characters; a short value is exactly its ``repr`` (``'als'``, ``0``).
    """
    n = max(int(n), 8)
    if isinstance(value, (str, bytes)):
        unit = "characters" if isinstance(value, str) else "bytes"
        text = " ".join(repr(value[:n]).split())
        if len(value) <= n and len(text) <= n:
            return text
        # Keep the closing quote: cut the body, then "..." and the quote character repr chose.
        return f"{text[: n - 4]}...{text[-1]} ({len(value):,} {unit})"
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a repr that raises is the value's problem, not a reason to lose the message
        text = f"<{type(value).__name__}>"
    if len(text) <= n:
        return text
    return f"{text[: n - 3]}... ({len(text):,} characters)"


class Quoted:
    """A value that formats as ``quote(value)`` under ``{x}``, ``{x!r}`` and ``{x!s}``: for message templates
    filled with ``str.format`` (``reco_core.checks``), whose ``{value!r}`` would otherwise repeat it in full."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return quote(self.value)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(quote(self.value), spec)


# ------------------------------------------------------------------------------- a path that is not a file


def path_kind(path: str | os.PathLike[str]) -> str:
    """What ``path`` is: ``"file"`` (a regular file), ``"missing"``, ``"directory"``, or another kind in words
    (``"a character device"``, ``"a named pipe"``, ``"a socket"``, ``"a block device"``). Nothing is opened,
    so a device or a pipe is never read."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, TypeError, ValueError):
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    for check, words in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if check(mode):
            return words
    return "not a regular file"


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """A one-line reason why ``path`` exists but cannot be read as a file, or None (a regular file, or nothing
    there: the callers keep their own "no such file" wording). ``'/tmp' is a directory: give a file``."""
    kind = path_kind(path)
    if kind in ("file", "missing"):
        return None
    shown = quote(str(path), 300)
    if kind == "directory":
        return f"{shown} is a directory: give a file"
    what = "" if kind == "not a regular file" else f" ({kind})"
    return f"{shown} is not a regular file{what}: give a file"
