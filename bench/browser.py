"""What the real-browser test (tests/e2e) and the benchmark's browser sessions share: how Chromium is
launched here, and how a local ``streamlit run app.py`` server is started, found healthy and stopped
(``streamlit_server``). Standard library only, so the test suite can import it without pulling in any
benchmark code.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # where app.py is; the server runs there

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


def log_tail(path: Path, n: int = 40) -> str:
    """The last ``n`` lines of a server log, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


class ServerStartError(RuntimeError):
    """The server exited, or did not answer its health check in time; the message ends with its log's tail."""


@dataclass(frozen=True)
class StreamlitServer:
    """A running ``streamlit run app.py``: its base URL (no trailing slash), process and log."""

    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.monotonic() at launch


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process, killing it when it does not exit within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def streamlit_server(
    log_path: Path, env: Mapping[str, str] | None = None, start_timeout: float = 60.0, cwd: Path = ROOT
) -> Iterator[StreamlitServer]:
    """Start ``streamlit run app.py`` with this interpreter on a free loopback port (headless, no file
    watcher, no usage statistics), its stdout and stderr to ``log_path`` (``env`` replaces the environment
    when given; ``cwd`` is the folder whose app.py runs: the dashboard's by default, a test's tiny app else),
    and yield it once /_stcore/health answers. Raises ServerStartError, with the log's tail,
    when it exits first or ``start_timeout`` seconds pass. Stopped on leaving: terminate, wait, kill."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=None if env is None else dict(env)
        )
    server = StreamlitServer(base=base, proc=proc, log_path=log_path, started=time.monotonic())
    try:
        deadline = time.monotonic() + start_timeout
        while not healthy(f"{base}/_stcore/health"):
            if proc.poll() is not None:
                raise ServerStartError(
                    f"streamlit exited with code {proc.returncode} before serving; log:\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"streamlit did not answer {base}/_stcore/health in {start_timeout:g} s; log:\n{log_tail(log_path)}"
                )
            time.sleep(0.5)
        yield server
    finally:
        stop_process(proc)
