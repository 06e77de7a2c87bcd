"""AppTest fixtures: one warm lab shared by every test in the process, and a switch to run the AppTests in
another order.

Fitted members live in ``ui.cached``'s process-wide stores (an ``st.cache_resource`` holder), so once
``warm_lab`` has run the Fusion Lab, later AppTests in this process reuse the dataset, split, members and
live session instead of refitting (the whole suite then takes about a minute instead of several).

The warm lab is a speed-up, never a precondition: the stores are bounded LRUs, so other tests' labs (uploads,
failing members, other member sets) may push the default one out, and the next page rebuilds what it needs.
A test that opens a page on the default dataset requests ``warm_lab`` (else, run alone, its first run pays
for the whole fit); a test that needs a lab *not* to be in the stores uses ``empty_stores``.

Every test passes alone and in any order. To check, run the AppTests reversed or shuffled (the other tests of
the session keep their places)::

    RECO_TEST_ORDER=reverse .venv/bin/python -m pytest tests/app
    RECO_TEST_ORDER=shuffle:7 .venv/bin/python -m pytest tests/app   # any integer seed; "shuffle" is seed 0
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from apptest_helpers import FUSION_LAB, assert_clean, open_page
from streamlit.testing.v1 import AppTest

from ui import cached

HERE = Path(__file__).resolve().parent
ORDER_ENV = "RECO_TEST_ORDER"


def _reordered(tests: list[pytest.Item], order: str) -> list[pytest.Item]:
    if order == "reverse":
        return tests[::-1]
    name, _, seed = order.partition(":")
    if name == "shuffle" and (seed or "0").lstrip("-").isdigit():
        shuffled = list(tests)
        random.Random(int(seed or 0)).shuffle(shuffled)
        return shuffled
    raise pytest.UsageError(f"{ORDER_ENV}={order!r}: use reverse, shuffle or shuffle:SEED (an integer)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With RECO_TEST_ORDER set, reorder the tests under tests/app among their own places in the run."""
    order = os.environ.get(ORDER_ENV, "").strip().lower()
    if not order:
        return
    places = [i for i, item in enumerate(items) if HERE in item.path.resolve().parents]
    for i, item in zip(places, _reordered([items[i] for i in places], order), strict=True):
        items[i] = item


@pytest.fixture(scope="session")
def warm_lab() -> AppTest:
    """The Fusion Lab run once with the default configuration, so the default lab is cached for later tests."""
    at = open_page(FUSION_LAB)
    assert_clean(at)
    return at


@pytest.fixture
def empty_stores(monkeypatch: pytest.MonkeyPatch) -> dict[str, cached.BoundedStore]:
    """Fresh, empty ``ui.cached`` stores for this test only (the shared ones, warm lab included, come back after):
    the page builds everything itself instead of reusing what an earlier test left in the process."""
    fresh = {kind: cached.BoundedStore(store.max_entries) for kind, store in cached.stores().items()}
    monkeypatch.setattr(cached, "stores", lambda: fresh)
    return fresh
