"""The sessions benchmark's protocol client (``bench.ws_client``) speaks Streamlit's WebSocket protocol as a
browser does (issue 16).

A tiny app (a URL-bound slider and a metric that depends on it, and a fragment with its own slider, metric
and an expander drawn only while open) runs in a real ``streamlit run`` server; no model is fitted, so the module
takes a few seconds. The client must connect, find a slider by its label, change it, get the run's
``script_finished`` (a whole run, and a fragment run), read the new metric from the deltas, and open the
expander; two clients changing the same slider at once must each read back only their own value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.browser import streamlit_server
from bench.ws_client import RUN_ENDS, ProtocolError, StreamlitClient

APP = """
import streamlit as st

w = st.slider("Weight of a", 0.0, 1.0, 0.4, 0.05, key="w.a", bind="query-params")
st.metric("Score", f"{w * 10:.2f}")
st.caption(f"query {st.query_params.to_dict()}")


@st.fragment
def part():
    v = st.slider("Inner", 0, 10, 3, key="inner")
    st.metric("Inner doubled", str(2 * v))
    box = st.expander("Details", key="details", on_change="rerun")
    if box.open:
        with box:
            st.code(f"inner={v}")


part()
"""


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("ws-app")
    (folder / "app.py").write_text(APP)
    with streamlit_server(folder / "server.log", cwd=folder) as server:
        yield server.base


def test_a_client_changes_a_slider_and_reads_the_new_metric(tiny_server: str) -> None:
    async def scenario() -> None:
        client = StreamlitClient(tiny_server)
        try:
            first = await client.open(timeout=60)
            assert first.status == 0 and first.seconds is not None
            assert client.page_script_hash  # learnt from the server, sent with every later request
            assert client.value("Weight of a", "slider") == pytest.approx(0.4)
            assert client.metric("Score") == "4.00"
            with pytest.raises(ProtocolError):
                client.widget("Weight of b")

            run = await client.set_widget("Weight of a", 0.55, "slider", timeout=20)
            assert run.status == 0  # a widget outside fragments: the whole script reruns
            assert run.seconds is not None and 0 < run.seconds < 20 and run.messages > 0
            assert client.metric("Score") == "5.50"
            assert client.value("Weight of a") == pytest.approx(0.55)
            # The slider is bound to the URL: the address bar (and the next request's query) carries it, as in
            # a browser, and the server reads it from there.
            assert client.query_string == "w.a=0.55"
            assert any("'w.a': '0.55'" in t for t in client.texts("markdown"))

            # A widget inside a fragment reruns the fragment alone: its own end status, its own elements.
            run = await client.set_widget("Inner", 7, "slider", timeout=20)
            assert run.status == 3 and run.status in RUN_ENDS and run.fragment_ids
            assert client.metric("Inner doubled") == "14"
            assert client.metric("Score") == "5.50"  # outside the fragment: kept, not cleared

            # An expander drawn only while open: closed, nothing inside; opened, its contents, which then follow
            # the fragment's later runs (its open state is sent with every request, as a browser's).
            assert not client.texts("code")
            with pytest.raises(ProtocolError):
                await client.open_expander("No such box")
            await client.open_expander("Details", timeout=20)
            assert client.texts("code") == ["inner=7"]
            await client.set_widget("Inner", 2, "slider", timeout=20)
            assert client.texts("code") == ["inner=2"]

            # Back at the default, the parameter leaves the address.
            await client.set_widget("Weight of a", 0.4, "slider", timeout=20)
            assert client.query_string == "" and client.metric("Score") == "4.00"
        finally:
            await client.close()

    asyncio.run(scenario())


def test_two_clients_are_isolated(tiny_server: str) -> None:
    async def scenario() -> None:
        a, b = StreamlitClient(tiny_server), StreamlitClient(tiny_server, query="who=b")
        try:
            await a.open(timeout=60)
            await b.open(timeout=60)
            runs = await asyncio.gather(
                a.set_widget("Weight of a", 0.8, "slider", timeout=20),
                b.set_widget("Weight of a", 0.2, "slider", timeout=20),
            )
            assert all(r.status == 0 for r in runs)
            assert (a.metric("Score"), b.metric("Score")) == ("8.00", "2.00")
            assert a.value("Weight of a") == pytest.approx(0.8) and b.value("Weight of a") == pytest.approx(0.2)
            # Each session keeps its own query too.
            assert a.query_string == "w.a=0.8" and b.query_string == "w.a=0.2&who=b"
            # A rerun with nothing changed keeps each session's own value.
            await asyncio.gather(a.rerun(timeout=20), b.rerun(timeout=20))
            assert (a.metric("Score"), b.metric("Score")) == ("8.00", "2.00")
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())
