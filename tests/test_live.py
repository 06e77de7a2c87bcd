"""The live loop: computed once, then update() re-fuses and re-evaluates exactly as fuse + evaluate would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reco_core.data import Interactions
from reco_core.errors import ConfigError, ScaleError
from reco_core.fusion import fuse
from reco_core.ids import IdMap
from reco_core.live import LiveSession, sample_users
from reco_core.metrics import EvalContext, evaluate
from reco_core.ranking import mask_rows, top_k
from reco_core.splitting import random_split, with_validation

N_USERS, N_ITEMS = 30, 40  # the size of conftest's toy_interactions


@pytest.fixture(scope="module")
def setup(toy_interactions, toy_members):
    split = random_split(toy_interactions, 0.25, seed=1)
    ctx = EvalContext.from_train(split.train)
    models = toy_members(split.train)
    session = LiveSession(models, split, ctx, top_n=20, max_k=10)
    return split, ctx, models, session


def _masked(models, split, users):
    return [mask_rows(m.score(users).copy(), split.train.matrix, users) for m in models.values()]


@pytest.mark.parametrize("method", ["wsum", "vote", "rrf", "borda", "combmnz", "team_draft"])
def test_update_is_fuse_then_evaluate(setup, method: str) -> None:
    split, ctx, models, session = setup
    users = split.eval_users("test")
    weights = [0.5, 0.3, 0.2]
    res = session.update(weights, method, "zscore", k=5)
    blocks = _masked(models, split, users)
    lists = [top_k(b, 20, users) for b in blocks]
    expected = fuse(blocks, lists, weights, method, "zscore", 5, N_ITEMS, users)
    np.testing.assert_array_equal(res.ranking.item_idx, expected.ranking.item_idx)
    ev = evaluate(expected.ranking, split.test, ctx, ks=(5,))
    assert res.evaluation.values() == pytest.approx(ev.values())
    assert res.fusion.member_names == ("a", "b", "pop")
    assert res.metric == "ndcg@5" and res.seconds >= 0


def test_member_evaluations_and_the_best_member(setup) -> None:
    split, ctx, models, session = setup
    users = split.eval_users("test")
    values = {}
    for name, block in zip(models, _masked(models, split, users), strict=True):
        ev = evaluate(top_k(block, 10, users), split.test, ctx, ks=(10,))
        assert session.member_evaluation(name, 10).values() == pytest.approx(ev.values())
        values[name] = ev.value("ndcg@10")
    assert session.best_member(10) == max(values, key=values.get)
    res = session.update([1, 1, 1], k=10)
    assert res.best_member == session.best_member(10)
    assert res.best_evaluation is session.member_evaluation(res.best_member, 10)


def test_a_single_member_weight_reproduces_that_member(setup) -> None:
    _, _, _, session = setup
    for method in ("wsum", "rrf", "borda", "combsum", "interleave"):
        res = session.update({"a": 0, "b": 1, "pop": 0}, method, k=10)
        np.testing.assert_array_equal(res.ranking.item_idx, session.member_ranking("b").item_idx[:, :10])
        np.testing.assert_array_equal(
            res.evaluation.per_user["ndcg@10"], session.member_evaluation("b", 10).per_user["ndcg@10"]
        )


def test_comparison_is_fused_minus_best_member(setup) -> None:
    _, _, _, session = setup
    res = session.update([0.4, 0.4, 0.2], k=10)
    cmp = res.comparison
    fused = res.evaluation.per_user["ndcg@10"]
    best = res.best_evaluation.per_user["ndcg@10"]
    assert cmp.n == len(fused)
    assert cmp.mean_diff == pytest.approx(float((fused - best).mean()))
    assert res.comparison is cmp  # computed once
    assert res.best_member in res.comparison_sentence() and "fused" in res.comparison_sentence()
    assert res.compare("recall@10").metric == "recall@10"
    with pytest.raises(ConfigError, match="coverage@10' is not a per-user metric"):
        res.compare("coverage@10")


def test_normalised_blocks_are_cached_per_normaliser(setup) -> None:
    _, _, _, session = setup
    first = session.normalised("minmax")
    session.update([1, 2, 3], "wsum", "minmax")
    assert session.normalised("minmax") is first
    assert session.normalised("rank") is not first


def test_user_rows_raw_and_normalised(setup) -> None:
    split, _, models, session = setup
    user = int(session.users[3])
    raw = session.user_scores(user)
    train_items = split.train.items_of(user)
    assert set(raw) == {"a", "b", "pop"}
    assert np.isneginf(raw["a"][train_items]).all()
    rest = np.setdiff1d(np.arange(N_ITEMS), train_items)
    np.testing.assert_array_equal(raw["b"][rest], models["b"].score([user])[0][rest])
    norm = session.user_normalised_scores(user, "minmax")
    assert np.isnan(norm["b"][train_items]).all()
    assert norm["b"][rest].min() == 0.0 and norm["b"][rest].max() == 1.0
    with pytest.raises(ConfigError, match="is not in this session"):
        session.user_scores(10_000)
    assert session.has_user(user) and not session.has_user(10_000) and not session.has_user(-1)
    # A whole-valued float or numpy integer is that user; text, None, NaN, 1.5 and booleans are no user at all.
    np.testing.assert_array_equal(session.user_scores(float(user))["a"], raw["a"])
    np.testing.assert_array_equal(session.user_scores(np.int64(user))["a"], raw["a"])
    for junk in ("3", None, float("nan"), user + 0.5, True):
        assert not session.has_user(junk)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="is not a whole number: give a 0-based user index"):
            session.user_scores(junk)  # type: ignore[arg-type]


def test_ablation_removes_one_member_at_a_time(setup) -> None:
    _, _, _, session = setup
    out = session.ablation([0.5, 0.5, 0.0], "rrf", k=5)
    assert list(out) == ["a", "b", "pop"]
    without_a = session.update([0, 0.5, 0], "rrf", k=5).evaluation
    assert out["a"].values() == pytest.approx(without_a.values())
    assert out["pop"].values() == pytest.approx(session.update([0.5, 0.5, 0], "rrf", k=5).evaluation.values())
    assert session.ablation([1, 0, 0], k=5)["a"] is None  # nothing would be left to fuse


def test_overlap_of_lists(setup) -> None:
    _, _, _, session = setup
    ov = session.overlap(10)
    jac = ov.jaccard.to_numpy()
    np.testing.assert_allclose(np.diag(jac), 1.0)
    np.testing.assert_allclose(jac, jac.T)
    assert ((jac >= 0) & (jac <= 1)).all()
    assert ov.share is None
    only_a = session.update([1, 0, 0], k=10)
    share = session.overlap(10, only_a).share
    assert share.loc["a", "in_list"] == 1.0 and share.loc["(none)", "in_list"] == 0.0
    assert share.loc["b", "only_in_list"] == 0.0


def test_overlap_counts_by_hand(toy_interactions, fixed_scorer) -> None:
    # Two members with the same top-2 for every user: Jaccard 1; the fused list shares everything.
    split = random_split(toy_interactions, 0.25, seed=1)
    m = np.tile(np.arange(N_ITEMS, dtype=np.float32), (N_USERS, 1))
    models = {"x": fixed_scorer(m).fit(split.train), "y": fixed_scorer(m * 2).fit(split.train)}
    session = LiveSession(models, split, EvalContext.from_train(split.train), top_n=5, max_k=5)
    assert session.overlap(2).jaccard.loc["x", "y"] == 1.0
    share = session.overlap(2, session.update([1, 1], k=2)).share
    assert share.loc["x", "in_list"] == 1.0 and share.loc["x", "only_in_list"] == 0.0


def test_user_sample_and_memory_limit(setup) -> None:
    split, ctx, models, _ = setup
    users = sample_users(split, 7, seed=3)
    assert len(users) == 7 and np.all(np.diff(users) > 0) and np.isin(users, split.eval_users()).all()
    np.testing.assert_array_equal(users, sample_users(split, 7, seed=3))
    small = LiveSession(models, split, ctx, users=users, top_n=20, max_k=10)
    assert small.update([1, 1, 1]).evaluation.n == 7
    left_out = np.setdiff1d(split.eval_users(), users)
    assert all(small.has_user(u) for u in users) and not any(small.has_user(u) for u in left_out)
    with pytest.raises(ScaleError, match="pass a user sample"):
        LiveSession(models, split, ctx, max_bytes=1000)


def test_validation_sessions_need_members_fitted_without_validation(toy_interactions, toy_members) -> None:
    base = random_split(toy_interactions, 0.25, seed=1)
    split = with_validation(base, 0.2, seed=2)
    ctx = EvalContext.from_train(split.train)
    good = toy_members(split.train)
    session = LiveSession(good, split, ctx, part="valid", top_n=20, max_k=10)
    assert session.part == "valid" and session.target is split.valid
    assert np.isin(session.users, split.eval_users("valid")).all()
    leaky = toy_members(base.train)  # fitted on train including the validation items
    with pytest.raises(ConfigError, match=r"member 'a' was fitted on .* fit it on train minus validation"):
        LiveSession(leaky, split, ctx, part="valid")
    with pytest.raises(ConfigError, match="the split has no validation part"):
        LiveSession(good, base, ctx, part="valid")


def test_bad_session_arguments(setup, fixed_scorer) -> None:
    split, ctx, models, session = setup
    with pytest.raises(ConfigError, match="member 'text' is missing \\(it failed to fit\\)"):
        LiveSession({**models, "text": None}, split, ctx)
    with pytest.raises(ConfigError, match="member 'new' is not fitted"):
        LiveSession({**models, "new": fixed_scorer(np.zeros((N_USERS, N_ITEMS)))}, split, ctx)
    with pytest.raises(ConfigError, match="part='train' is not valid"):
        LiveSession(models, split, ctx, part="train")
    with pytest.raises(ConfigError, match="at least one member"):
        LiveSession({}, split, ctx)
    other_ctx = EvalContext(n_items=N_ITEMS + 1, item_popularity=np.zeros(N_ITEMS + 1))
    with pytest.raises(ConfigError, match="EvalContext is for 41 items"):
        LiveSession(models, split, other_ctx)
    no_test = np.setdiff1d(np.arange(N_USERS), split.eval_users("test"))
    if len(no_test):
        with pytest.raises(ConfigError, match="have nothing held out"):
            LiveSession(models, split, ctx, users=no_test[:1])
    with pytest.raises(ConfigError, match="max_k=30 is larger than top_n=20"):
        LiveSession(models, split, ctx, top_n=20, max_k=30)
    with pytest.raises(ConfigError, match="k=20 is larger than this session's max_k=10"):
        session.update([1, 1, 1], k=20)
    with pytest.raises(ConfigError, match="weights name unknown member 'als'"):
        session.update({"als": 1.0, "a": 1, "b": 1, "pop": 1})
    with pytest.raises(ConfigError, match="no weight for member 'pop'"):
        session.update({"a": 1.0, "b": 1.0})
    with pytest.raises(ConfigError, match="all weights are zero"):
        session.update([0, 0, 0])
    with pytest.raises(ConfigError, match="unknown fusion method 'mean'"):
        session.update([1, 1, 1], "mean")
    with pytest.raises(ConfigError, match="unknown member 'c'"):
        session.member_evaluation("c")
    with pytest.raises(ConfigError, match=r"unknown member \['a'\]"):
        session.member_evaluation(["a"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"metric=\['ndcg@10'\] is not a metric key"):
        session.best_member(10, ["ndcg@10"])  # type: ignore[arg-type]


def test_other_catalogue_member_is_refused(setup, fixed_scorer) -> None:
    split, ctx, models, _ = setup
    frame = pd.DataFrame({"user": ["u00"], "item": ["z"], "value": [1.0]})
    other = Interactions.from_frame(frame, split.train.users, IdMap.from_values(["z"]))
    wrong = fixed_scorer(np.zeros((N_USERS, 1))).fit(other)
    with pytest.raises(ConfigError, match="member 'z' scores 1 items but the split has 40"):
        LiveSession({**models, "z": wrong}, split, ctx)
