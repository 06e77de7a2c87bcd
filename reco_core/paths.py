"""Where the engine keeps files it can rebuild (embedding cache, downloaded datasets)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$RECO_CACHE_DIR`` or ``~/.cache/reco-fusion-lab``; created on first use by whoever writes there."""
    env = os.environ.get("RECO_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reco-fusion-lab"
