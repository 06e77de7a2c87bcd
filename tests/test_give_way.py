"""``ui.page.newer_rerun_pending``: a fragment-only run sees a queued fragment rerun (a later key press), and
nothing else, through Streamlit's own request queue (the real ``ScriptRequests``, not a stand-in)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

import ui.page as page


def _ctx(monkeypatch: pytest.MonkeyPatch, fragment_run: bool) -> ScriptRequests:
    requests = ScriptRequests()
    ctx = SimpleNamespace(fragment_ids_this_run=["live"] if fragment_run else [], script_requests=requests)
    monkeypatch.setattr(page, "get_script_run_ctx", lambda: ctx)
    return requests


def test_a_queued_fragment_rerun_makes_a_fragment_run_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    requests = _ctx(monkeypatch, fragment_run=True)
    assert not page.newer_rerun_pending()  # nothing queued
    requests.request_rerun(RerunData(fragment_id="live"))  # what a key press on a live slider sends
    assert page.newer_rerun_pending()


def test_a_full_app_rerun_is_left_to_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit preempts for a full-app rerun by itself; give_way must not turn it into a fragment rerun."""
    requests = _ctx(monkeypatch, fragment_run=True)
    requests.request_rerun(RerunData())
    assert not page.newer_rerun_pending()


def test_a_full_app_run_never_gives_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a full run a fragment-scoped st.rerun is not allowed: only fragment-only runs are considered."""
    requests = _ctx(monkeypatch, fragment_run=False)
    requests.request_rerun(RerunData(fragment_id="live"))
    assert not page.newer_rerun_pending()


def test_without_the_request_queue_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page, "get_script_run_ctx", lambda: SimpleNamespace(fragment_ids_this_run=["live"]))
    assert not page.newer_rerun_pending()
    monkeypatch.setattr(page, "get_script_run_ctx", lambda: None)
    assert not page.newer_rerun_pending()


def test_a_timers_rerun_is_not_a_newer_press(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fragment with run_every (the learned-fusion poller) queues auto-reruns; the live part must not restart
    for those."""
    requests = _ctx(monkeypatch, fragment_run=True)
    requests.request_rerun(RerunData(fragment_id="poller", is_auto_rerun=True))
    assert not page.newer_rerun_pending()
    requests.request_rerun(RerunData(fragment_id="live"))  # then a key press: the merged request is the person's
    assert page.newer_rerun_pending()
