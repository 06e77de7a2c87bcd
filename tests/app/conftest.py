"""AppTest fixtures: one warm lab shared by every test in the process.

Fitted members live in ``ui.cached``'s process-wide stores (an ``st.cache_resource`` holder), so once
``warm_lab`` has run the Fusion Lab, later AppTests in this process reuse the dataset, split, members and
live session instead of refitting (the whole suite then takes about a minute instead of several).
"""

from __future__ import annotations

import pytest
from apptest_helpers import FUSION_LAB, assert_clean, open_page
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="session")
def warm_lab() -> AppTest:
    """The Fusion Lab run once with the default configuration, so the default lab is cached for all tests."""
    at = open_page(FUSION_LAB)
    assert_clean(at)
    return at
