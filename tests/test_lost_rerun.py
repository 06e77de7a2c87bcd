"""A slider the person moved is never sent back by the server on later runs of the same page (issue 16).

``ui.state.keep_across_pages`` re-asserts bound widget values (``st.session_state[k] = st.session_state[k]``)
that a page link dropped from the URL. Streamlit reads the address bar into ``st.query_params`` on a page
change only, so on later runs of the same page every value the person changed looked "dropped" and was
re-asserted on every rerun: each such slider went out with ``set_value``, the server's value pushed over
the browser's, and a key pressed while that run was still going could be undone. Now it acts on a page's
first run only; these tests run a two-slider script in AppTest and the page tracking on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ui import state


def _two_sliders() -> None:
    import streamlit as st

    from ui import state
    from ui.widgets import BOUND

    state.keep_across_pages(["w.als", "w.itemknn"], st.query_params)
    st.slider("Weight of als", 0.0, 1.0, 0.4, 0.05, key="w.als", **BOUND)
    st.slider("Weight of itemknn", 0.0, 1.0, 0.4, 0.05, key="w.itemknn", **BOUND)


def _sent_back(at: AppTest) -> dict[str, bool]:
    """Which sliders this run told the browser to take the server's value (the proto's ``set_value``)."""
    return {str(s.key): bool(s.proto.set_value) for s in at.slider}


def test_a_moved_slider_is_not_sent_back_on_the_reruns_of_the_same_page() -> None:
    at = AppTest.from_function(_two_sliders, default_timeout=30).run()
    assert _sent_back(at) == {"w.als": False, "w.itemknn": False}
    at.slider(key="w.als").set_value(0.45).run()
    assert at.slider(key="w.als").value == pytest.approx(0.45)
    assert _sent_back(at) == {"w.als": False, "w.itemknn": False}  # was True: the value went back to the browser
    at.slider(key="w.itemknn").set_value(0.5).run()
    assert _sent_back(at) == {"w.als": False, "w.itemknn": False}
    assert [s.value for s in at.slider] == pytest.approx([0.45, 0.5])


class _Ctx:
    def __init__(self, page: str) -> None:
        self.page_script_hash = page


def test_values_are_reasserted_on_the_first_run_of_each_page_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit.runtime.scriptrunner as scriptrunner

    session: dict[str, Any] = {"w.als": 0.7}  # came from a shared link, not in the new page's URL
    writes: list[str] = []

    class Session(dict):
        def __setitem__(self, key: str, value: Any) -> None:
            writes.append(key)
            super().__setitem__(key, value)

    ss = Session(session)
    page = {"hash": "lab"}
    monkeypatch.setattr(state, "_session", lambda: ss)
    monkeypatch.setattr(scriptrunner, "get_script_run_ctx", lambda suppress_warning=False: _Ctx(page["hash"]))

    def reasserted() -> bool:
        writes.clear()
        state.keep_across_pages(["w.als"], {})
        return "w.als" in writes

    assert reasserted()  # first run on the Fusion Lab
    assert not reasserted()  # a rerun of the same page
    assert not reasserted()
    page["hash"] = "explorer"
    assert reasserted()  # a page switch
    assert not reasserted()
    page["hash"] = "lab"
    assert reasserted()  # and back
    # Another set of keys (a page's own, such as the explorer's user id) keeps its own record of the page.
    writes.clear()
    ss["user"] = "42"
    state.keep_across_pages(["user"], {})
    assert "user" in writes


def test_outside_a_script_run_values_are_reasserted_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    ss: dict[str, Any] = {"w.als": 0.7}
    monkeypatch.setattr(state, "_session", lambda: ss)
    state.keep_across_pages(["w.als"], {})  # no ScriptRunContext: nothing to compare, so it acts
    assert ss["w.als"] == 0.7
