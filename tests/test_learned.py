"""Learned fusion (reco_core.learned): candidates, features, the anchored LambdaRank meta-ranker."""

from __future__ import annotations

import numpy as np
import pytest

from reco_core.errors import ConfigError
from reco_core.learned import (
    ANCHOR_SCALE,
    BEST_MEMBER,
    SEARCHED,
    LearnedFusion,
    _union,
    candidates,
    fit_learned,
    report_learned,
    run_learned,
)
from reco_core.live import LiveSession
from reco_core.metrics import EvalContext
from reco_core.search import optimise
from reco_core.splitting import random_split, with_validation
from reco_core.stats import holm_adjust


def test_union_keeps_first_seen_order_and_pads() -> None:
    a = np.array([[3, 1], [0, -1]])
    b = np.array([[1, 2], [5, 0]])
    assert _union([a, b]).tolist() == [[3, 1, 2], [0, 5, -1]]


@pytest.fixture(scope="module")
def sessions(toy_interactions, toy_members):
    split = with_validation(random_split(toy_interactions, 0.25, seed=1), 0.3, seed=1)
    valid_train = split
    fv = toy_members(valid_train.train)
    valid = LiveSession(fv, split, EvalContext.from_train(split.train), part="valid", top_n=12, max_k=10)
    full = random_split(toy_interactions, 0.25, seed=1)
    ft = toy_members(full.train)
    test = LiveSession(ft, full, EvalContext.from_train(full.train), top_n=12, max_k=10)
    return valid, fv, test, ft


def test_candidate_features_are_what_the_docstring_says(sessions) -> None:
    valid, fv, _, _ = sessions
    year = np.arange(valid.n_items, dtype=float) + 1990
    cand = candidates(valid, fv, year, top_n=5)
    names = list(cand.feature_names)
    assert names == [
        "a_score",
        "a_rank",
        "b_score",
        "b_rank",
        "pop_score",
        "pop_rank",
        "agreement",
        "history_length",
        "genre_entropy",
        "log_popularity",
        "item_age",
    ]
    r = 0
    row = cand.items[r]
    a_list = valid.member_ranking("a").item_idx[r, :5].tolist()
    for j, item in enumerate(row[row >= 0]):
        f = dict(zip(names, cand.features[r, j], strict=True))
        assert f["a_rank"] == (a_list.index(item) + 1 if item in a_list else 6)
        listed = sum(item in valid.member_ranking(m).item_idx[r, :5].tolist() for m in ("a", "b", "pop"))
        assert f["agreement"] == listed
        assert f["history_length"] == valid.train.user_counts()[valid.users[r]]
        assert f["item_age"] == pytest.approx(year.max() - year[item])
        assert 0.0 <= f["a_score"] <= 1.0
    assert np.isnan(cand.features[~cand.valid]).all()
    with pytest.raises(ConfigError, match="larger than the session's lists"):
        candidates(valid, fv, top_n=13)
    with pytest.raises(ConfigError, match="session's own fitted members"):
        candidates(valid, {"b": fv["b"], "a": fv["a"], "pop": fv["pop"]})


def test_rank_breaks_ties_by_item_and_adds_the_anchor(sessions) -> None:
    valid, fv, _, _ = sessions
    cand = candidates(valid, fv, top_n=5)

    class Flat:  # a booster that predicts 0 for everything: the anchor's score decides
        def predict(self, x, num_iteration=None):
            return np.zeros(len(x))

    model = LearnedFusion(Flat(), ("a", "b", "pop"), cand.feature_names, 5, "pop", 1, 0, 0, 0)
    ranking = model.rank(cand, 4)
    col = cand.feature_names.index("pop_score")
    for r in range(len(cand.users)):
        valid_items = cand.items[r][cand.valid[r]]
        score = ANCHOR_SCALE * cand.features[r][cand.valid[r], col]
        expected = valid_items[np.lexsort((valid_items, -score))][:4]
        assert ranking.item_idx[r, : len(expected)].tolist() == expected.tolist()


def test_fit_is_deterministic_and_reports_against_the_best_member(sessions) -> None:
    valid, fv, test, ft = sessions
    one = fit_learned(valid, fv, top_n=10, seed=3)
    two = fit_learned(valid, fv, top_n=10, seed=3)
    assert one.anchor == valid.best_member(10)
    imp = one.importances()
    assert imp["gain_share"].sum() == pytest.approx(1.0) or imp["gain_share"].sum() == 0
    assert one.train_users + one.stop_users + one.users_without_positive == len(valid.users)
    rep_one = report_learned(one, test, ft, k=5)
    rep_two = report_learned(two, test, ft, k=5)
    np.testing.assert_array_equal(rep_one.ranking.item_idx, rep_two.ranking.item_idx)
    assert rep_one.best_member == test.best_member(5)
    assert rep_one.versus_best_member.n == len(test.users)
    with pytest.raises(ConfigError, match="validation part only"):
        fit_learned(test, ft)
    with pytest.raises(ConfigError, match="runs on the test part"):
        report_learned(one, valid, fv)


def test_run_learned_is_fit_then_report_with_holm_over_both_comparisons(sessions) -> None:
    valid, fv, test, ft = sessions
    calls: list[float] = []
    run = run_learned(valid, test, fv, ft, top_n=10, k=5, seed=3, progress=lambda f, _t: calls.append(f))
    model = fit_learned(valid, fv, top_n=10, seed=3)
    found = optimise(valid, test, metric="ndcg@5", step=0.1, seed=3)
    assert found.test is not None  # the toy search chooses weights: both comparisons are made
    rep = report_learned(model, test, ft, k=5, searched=found.test.evaluation)
    np.testing.assert_array_equal(run.report.ranking.item_idx, rep.ranking.item_idx)
    assert run.model.best_iteration == model.best_iteration and run.model.anchor == model.anchor
    assert run.evaluation.values() == pytest.approx(rep.evaluation.values())
    assert run.searched_weights == found.weights
    assert run.best_member == rep.best_member and run.best_evaluation.values() == pytest.approx(
        test.member_evaluation(rep.best_member, 5).values()
    )
    raw = [rep.versus_best_member.p_value, rep.versus_searched.p_value]
    assert [c.against for c in run.comparisons] == [BEST_MEMBER, SEARCHED]
    assert [c.comparison.p_value for c in run.comparisons] == pytest.approx(raw)
    holm = [c.p_holm for c in run.comparisons]
    assert holm == pytest.approx(list(holm_adjust(raw)))
    assert all(h >= p for h, p in zip(holm, raw, strict=True)) and all(c.tests == 2 for c in run.comparisons)
    lines = run.sentences()
    assert next(iter(lines)) == "versus best member" and list(lines)[1].startswith("versus searched weights (")
    for c, line in zip(run.comparisons, lines.values(), strict=True):
        assert "Wilcoxon p" in line and "over 2 tests" in line
        assert f"({c.p_holm:.3f} after Holm's correction over 2 tests)" in line or c.p_holm < 0.001
    assert calls == sorted(calls) and calls[-1] == 1.0  # one rising scale over fit, search and report
    # A model trained earlier is reused (no second fit) and gives the same report.
    again = run_learned(valid, test, fv, ft, top_n=10, k=5, seed=3, model=run.model)
    assert again.model is run.model and [c.p_holm for c in again.comparisons] == pytest.approx(holm)
    with pytest.raises(ConfigError, match="another top_n"):
        run_learned(valid, test, fv, ft, top_n=8, k=5, seed=3, model=run.model)
