"""The Fusion Lab's "Learned fusion" tab (ui.learned_view, issue 12), drawn on its own with the default lab.

Training on MovieLens-100K (members refitted on train minus validation, LightGBM, the weight search for the
comparison) takes some seconds, so it runs once per module (``trained``) at a small top-N; the other tests read
the shared ``learned`` store it filled, or start from an empty one.
"""

from __future__ import annotations

import pytest
from apptest_helpers import TIMEOUT, assert_clean, button, messages, values
from streamlit.testing.v1 import AppTest

from reco_core.errors import ConfigError
from ui import cached, learned_view

pytestmark = pytest.mark.slow

TOP_N = 20
TRAIN = "Train on validation"
TOP_N_KEY = "fusion_lab:learned_top_n:100"  # the bound (the session's top-N) is part of the key


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
    return at


def test_before_training_there_is_the_button_and_no_result(warm_lab: AppTest, fresh_learned) -> None:
    at = open_tab(top_n=None)
    assert button(at, TRAIN)
    assert at.number_input(key=TOP_N_KEY).value == 50  # reco_core.learned.DEFAULT_TOP_N
    assert "LambdaRank" in text(at)
    assert "not trained yet" in text(at).lower()
    assert not at.dataframe and not at.get("plotly_chart")
    assert "do not apply to the learned ranker" in messages(at)
    assert fresh_learned.stats["builds"] == 0  # nothing heavy runs before the press


def test_training_shows_metrics_importances_and_holm_corrected_tests(trained: AppTest) -> None:
    at = trained
    shown = text(at)
    assert "Holm" in shown and "Holm-adjusted p" in shown
    assert "Against the best member" in shown and "Against searched weights" in shown
    assert "Wilcoxon p" in shown and "learned" in shown
    assert "weights, fusion method and normaliser do not apply" in messages(at)
    tables = [d.value for d in at.dataframe]
    metrics = tables[0]
    assert "learned" in metrics.index and "searched weights" in metrics.index and len(metrics.index) == 3
    assert "NDCG@10" in metrics.columns
    importances = next(t for t in tables if "gain_share" in t.columns)
    assert {"agreement", "history_length", "als_score", "itemknn_rank"} <= set(importances["feature"])
    assert importances["gain_share"].sum() == pytest.approx(1.0)
    assert at.get("plotly_chart"), "no importance chart"
    assert not at.error


def test_the_result_is_shared_and_a_rerun_does_not_retrain(trained: AppTest) -> None:
    store = cached.store("learned")
    before = store.stats["builds"]
    trained.run()  # a rerun of the same session, no press
    other = open_tab()  # another browser session, same configuration: the result without pressing
    for at in (trained, other):
        assert_clean(at)
        assert "Holm-adjusted p" in text(at)
    assert store.stats["builds"] == before


def test_another_k_reuses_the_trained_model(trained: AppTest) -> None:
    at = open_tab(k=5)
    assert "trained, but its test report at k = 5 is not computed yet" in text(at)
    assert "the report below is at k = 5" in messages(at)
    assert not at.dataframe


def test_an_engine_error_is_one_line(warm_lab: AppTest, fresh_learned, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise ConfigError("only 3 validation users have a validation item among the candidates")

    monkeypatch.setattr(learned_view, "fit_learned", refuse)
    at = open_tab()
    button(at, TRAIN).click().run()
    assert_clean(at)
    assert [e for e in values(at.error) if "only 3 validation users" in e.replace("\\", "")]
    assert "Holm" not in text(at)


def test_one_member_needs_two(warm_lab: AppTest) -> None:
    at = AppTest.from_function(_tab, args=(1, 10), default_timeout=TIMEOUT).run()
    assert_clean(at)
    assert "needs at least two members" in messages(at)
    assert not [b for b in at.button if b.label == TRAIN]
