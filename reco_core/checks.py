"""Boundary checks shared by the engine's modules: one rule for "a whole number of at least N".

A whole number here is a Python ``int`` or a numpy integer; ``bool`` is refused (True is not a count)
and so are floats, even 3.0 (a silent cast would hide a caller's mistake). The message names the
argument and the value (clipped by ``reco_core.errors.quote``, so a 1 MB text is not repeated in full);
modules keep their own wording through ``message``.
"""

from __future__ import annotations

import numpy as np

from reco_core.errors import ConfigError, Quoted

# Message templates, filled with ``str.format(name=..., value=..., low=...)``.
AT_LEAST = "{name}={value!r} is not valid: give a whole number of at least {low}"
MUST_BE = "{name}={value!r} must be a whole number >= {low}"


def check_whole(value: object, name: str, low: int = 1, message: str = AT_LEAST) -> int:
    """``value`` as an int when it is a whole number >= ``low``, else ConfigError(``message`` filled in)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(message.format(name=name, value=Quoted(value), low=low))
    return int(value)
