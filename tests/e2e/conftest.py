"""Fixtures for the real-browser test: a `streamlit run app.py` server on a free port and headless Chromium.

The server runs with this interpreter (the repo's .venv) so it sees the same packages as the tests; its
output goes to test-artifacts/e2e-server.log, whose tail is shown when the server fails to come up.
Chromium is Debian's (/usr/bin/chromium, installed by `make browser-deps`): Playwright cannot download
browsers here. A missing browser fails the test with that instruction rather than skipping it, so CI
cannot pass without ever running the browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, CHROMIUM_ARGS, ServerStartError
from bench.browser import streamlit_server as start_streamlit

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
SERVER_START_S = 60  # until /_stcore/health answers (imports only; models are fitted on the first page load)


@pytest.fixture(scope="module")
def streamlit_server() -> Iterator[str]:
    """Base URL of a fresh `streamlit run app.py` on loopback; stopped (and waited for) after the module."""
    ARTIFACTS.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with start_streamlit(ARTIFACTS / "e2e-server.log", env=env, start_timeout=SERVER_START_S) as server:
            yield server.base
    except ServerStartError as exc:  # fail the test with the message, which ends with the server log's tail
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright's sync API."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser test needs it. Install it with `make browser-deps` "
            "(apt-get install chromium) or point RECO_CHROMIUM at a Chromium binary."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
