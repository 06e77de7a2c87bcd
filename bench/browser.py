"""What the real-browser test (tests/e2e) and the benchmark's browser sessions share: how Chromium is
launched here and how a local Streamlit server is found healthy. Standard library only, so the test
suite can import it without pulling in any benchmark code.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

# Debian's chromium (`make browser-deps`); Playwright cannot download browsers on this machine.
CHROMIUM = Path(os.environ.get("RECO_CHROMIUM", "/usr/bin/chromium"))
# DESIGN.md §9: without the background-networking flags Chromium's calls out are refused many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str) -> bool:
    """True when ``url`` (a server's /_stcore/health) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False
