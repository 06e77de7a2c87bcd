"""The Fusion Lab's "Learned fusion" tab (ui.learned_view, issue 12), drawn on its own with the default lab.

Training on MovieLens-100K (members refitted on train minus validation, LightGBM, the weight search for the
comparison) takes some seconds, so it runs once per module (``trained``) at a small top-N; the other tests read
the shared ``learned`` store it filled, or start from an empty one.

Training runs in a background thread and the tab polls it with ``st.fragment(run_every=...)``, which AppTest does
not drive: ``wait`` reruns the script every half second until the job has ended (at most ``WAIT`` seconds).
"""

from __future__ import annotations

import time

import pytest
from apptest_helpers import TIMEOUT, assert_clean, button, messages, values
from streamlit.testing.v1 import AppTest

import reco_core.learned
from reco_core.errors import ConfigError
from ui import cached, learned_view

pytestmark = pytest.mark.slow

TOP_N = 20
TRAIN = "Train on validation"
TOP_N_KEY = "fusion_lab:learned_top_n:100"  # the bound (the session's top-N) is part of the key
WAIT = 60.0  # seconds a training run may take in these tests (top-N 20 on MovieLens-100K: a few)


def _tab(n_members: int = 3, k: int = 10) -> None:
    """The script: the tab for the default configuration (its first ``n_members`` members, at ``k``)."""
    from ui import lab, state
    from ui.learned_view import learned_tab

    values = {"k": k}
    if n_members == 1:
        values |= {"user_models": ["itemknn"], "item_models": []}
    cfg = state.config_from_values(values)
    learned_tab(cfg, lab.get_lab(cfg))


def open_tab(n_members: int = 3, k: int = 10, top_n: int | None = TOP_N) -> AppTest:
    at = AppTest.from_function(_tab, args=(n_members, k), default_timeout=TIMEOUT).run()
    assert_clean(at)
    if top_n is not None and at.number_input(key=TOP_N_KEY).value != top_n:
        at.number_input(key=TOP_N_KEY).set_value(top_n).run()
    return at


def text(at: AppTest) -> str:
    """Markdown and captions of the page, one string, Markdown escapes removed."""
    return " | ".join(values(at.markdown) + values(at.caption)).replace("\\", "")


def running(at: AppTest) -> bool:
    """The tab shows a running job's progress bar."""
    return bool(at.get("progress"))


def ended(at: AppTest) -> bool:
    return "after Holm's correction over 2 tests" in text(at) or bool(at.error)


def wait(at: AppTest, limit: float = WAIT) -> AppTest:
    """Rerun ``at`` (as the tab's poller would) until the job has ended: its result or its error is drawn."""
    deadline = time.monotonic() + limit
    while not ended(at):
        assert time.monotonic() < deadline, f"training did not end within {limit:.0f} s: {text(at)}"
        time.sleep(0.5)
        at.run()
        assert_clean(at)
    return at


@pytest.fixture
def fresh_learned(monkeypatch: pytest.MonkeyPatch) -> cached.BoundedStore:
    """An empty ``learned`` store for this test; every other store (the warm lab) stays."""
    stores = {**cached.stores(), "learned": cached.BoundedStore(cached.MAX_LEARNED)}
    monkeypatch.setattr(cached, "stores", lambda: stores)
    return stores["learned"]


@pytest.fixture(scope="module")
def trained(warm_lab: AppTest) -> AppTest:
    """The tab after pressing "Train on validation" at top-N = 20 (k = 10)."""
    at = open_tab()
    button(at, TRAIN).click().run()
    assert_clean(at)
    return wait(at)


def test_before_training_there_is_the_button_and_no_result(warm_lab: AppTest, fresh_learned) -> None:
    at = open_tab(top_n=None)
    assert button(at, TRAIN)
    assert at.number_input(key=TOP_N_KEY).value == 50  # reco_core.learned.DEFAULT_TOP_N
    assert "LambdaRank" in text(at)
    assert "not trained yet" in text(at).lower()
    assert not at.dataframe and not at.get("plotly_chart")
    assert "do not apply to the learned ranker" in messages(at)
    assert len(fresh_learned) == 0  # nothing was trained or started before the press


def test_training_shows_metrics_importances_and_holm_corrected_tests(trained: AppTest) -> None:
    at = trained
    shown = text(at)
    assert "Holm" in shown and "after Holm's correction over 2 tests" in shown
    assert "Against the best member" in shown and "Against searched weights" in shown
    assert "Wilcoxon p" in shown and "learned" in shown
    assert "weights, fusion method, normaliser and re-ranker do not apply" in messages(at)
    tables = [d.value for d in at.dataframe]
    metrics = tables[0]
    assert "learned" in metrics.index and "searched weights" in metrics.index and len(metrics.index) == 3
    assert "NDCG@10" in metrics.columns
    importances = next(t for t in tables if "gain_share" in t.columns)
    assert {"agreement", "history_length", "als_score", "itemknn_rank"} <= set(importances["feature"])
    assert importances["gain_share"].sum() == pytest.approx(1.0)
    assert at.get("plotly_chart"), "no importance chart"
    assert not at.error


def test_the_result_is_shared_and_a_rerun_does_not_retrain(trained: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(learned_view, "run_learned", lambda *args, **kwargs: calls.append(1))
    trained.run()  # a rerun of the same session, no press
    other = open_tab()  # another browser session, same configuration: the result without pressing
    button(other, TRAIN).click().run()  # a press with the result there: nothing runs again
    for at in (trained, other):
        assert_clean(at)
        assert "after Holm's correction over 2 tests" in text(at) and not running(at)
    assert calls == []


def test_another_k_reuses_the_trained_model(trained: AppTest) -> None:
    at = open_tab(k=5)
    assert "trained, but its test report at k = 5 is not computed yet" in text(at)
    assert "the report below is at k = 5" in messages(at)
    assert not at.dataframe


def test_an_engine_error_is_one_line_shown_once_and_a_press_retries(
    warm_lab: AppTest, fresh_learned, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise ConfigError("only 3 validation users have a validation item among the candidates")

    monkeypatch.setattr(learned_view, "run_learned", refuse)
    at = open_tab()
    button(at, TRAIN).click().run()
    wait(at)
    shown = [e.replace("\\", "") for e in values(at.error)]
    assert len(shown) == 1 and "only 3 validation users" in shown[0]  # one line, once (no failed status box)
    assert "\n" not in shown[0]
    assert "Holm" not in text(at) and not running(at)
    at.run()  # a rerun keeps the one line, and starts nothing
    assert len(values(at.error)) == 1 and calls == [1]
    button(at, TRAIN).click().run()  # a failed job is started afresh by the next press
    wait(at)
    assert calls == [1, 1] and len(values(at.error)) == 1


def test_a_rerun_or_another_press_during_training_does_not_lose_the_model(
    warm_lab: AppTest, fresh_learned, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = reco_core.learned.fit_learned
    calls: list[int] = []
    real_run = learned_view.run_learned

    def slow_fit(*args, **kwargs):
        time.sleep(3.0)  # long enough for the reruns below to land during model.fit
        return real_fit(*args, **kwargs)

    def counted_run(*args, **kwargs):
        calls.append(1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(reco_core.learned, "fit_learned", slow_fit)
    monkeypatch.setattr(learned_view, "run_learned", counted_run)
    at = open_tab()
    button(at, TRAIN).click().run()
    assert_clean(at)
    assert running(at), "no progress bar right after the press"
    at.run()  # a rerun (a slider move) while the model is being fitted
    assert_clean(at)
    assert running(at) and "not trained yet" not in text(at).lower()
    button(at, TRAIN).click().run()  # pressing again while it runs starts nothing new
    assert "training in progress" in messages(at) and running(at)
    other = open_tab()  # a second browser session on the same configuration sees the same run's progress
    assert running(other) and not other.error
    wait(at)
    wait(other)
    for session in (at, other):
        assert "after Holm's correction over 2 tests" in text(session) and not session.error and not running(session)
    assert calls == [1]
    assert "trained, but its test report at k = 5" in text(open_tab(k=5))  # the model is kept for another k


def test_one_member_needs_two(warm_lab: AppTest) -> None:
    at = AppTest.from_function(_tab, args=(1, 10), default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert "needs at least two members" in messages(at)
    assert not [b for b in at.button if b.label == TRAIN]
