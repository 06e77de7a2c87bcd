"""Blocked fusion evaluation (reco_core.scale) equals the whole-matrix answer; candidates=n_items is exact."""

from __future__ import annotations

import numpy as np
import pytest
from numeric import assert_evaluations_match, assert_rankings_match, differing_rows

from reco_core import datasets, splitting
from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.live import LiveSession
from reco_core.metrics import EvalContext, Evaluation
from reco_core.models import Context, Scorer, make_model
from reco_core.ranking import Ranking, top_k
from reco_core.scale import (
    DEFAULT_BLOCK_CELLS,
    auto_block_size,
    evaluate_fusion_blocked,
    overlap_at_k,
    rank_fusion_blocked,
)


class Partial(Scorer):
    """Item-count scores plus a seeded jitter; NaN ("cannot score") for every third item and for users 0-2.

    Exercises the absent cells of the normalisers; records the rows of every score call.
    """

    name = "partial"
    label = "Partial"
    kind = "user"

    def _fit(self, train: Interactions, context: Context) -> None:
        rng = np.random.default_rng(3)
        self._base = train.item_counts().astype(np.float32) + rng.random(train.n_items).astype(np.float32)
        self._user = rng.random(train.n_users).astype(np.float32)
        self.calls: list[np.ndarray] = []

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(user_idx))
        out = self._base[None, :] * (1.0 + self._user[user_idx, None])
        out[:, ::3] = np.nan
        out[user_idx < 3] = np.nan
        return out.astype(np.float32)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self._base.copy()


@pytest.fixture(scope="module")
def setup() -> tuple[dict[str, Scorer], splitting.Split, EvalContext]:
    ds = datasets.synthetic(90, 60, 1800, seed=5, min_user_interactions=8)
    split = splitting.make_split(ds.interactions, "random", test_frac=0.25, seed=1)
    ctx_model = Context(catalog=ds.catalog)
    members: dict[str, Scorer] = {
        "als": make_model("als", factors=8, iterations=4, seed=1).fit(split.train, ctx_model),
        "itemknn": make_model("itemknn", k=10).fit(split.train, ctx_model),
        "pop": make_model("pop").fit(split.train, ctx_model),
        "partial": Partial().fit(split.train, ctx_model),
    }
    ctx = EvalContext.from_train(split.train, ds.catalog)
    return members, split, ctx


WEIGHTS = {"als": 0.5, "itemknn": 0.3, "pop": 0.1, "partial": 0.1}


def _assert_same(a: Evaluation, b: Evaluation) -> None:
    np.testing.assert_array_equal(a.user_idx, b.user_idx)
    assert a.per_user.keys() == b.per_user.keys()
    for key in a.per_user:
        np.testing.assert_allclose(a.per_user[key], b.per_user[key], rtol=0, atol=1e-12, err_msg=key)
    assert a.global_values.keys() == b.global_values.keys()
    for key in a.global_values:
        assert a.global_values[key] == pytest.approx(b.global_values[key], abs=1e-12), key


@pytest.mark.parametrize("method", ["wsum", "vote", "rrf", "borda", "combmnz"])
@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_blocked_equals_live_session(setup, method: str, block_size: int) -> None:
    members, split, ctx = setup
    # Members score blocks of other shapes than the live session's, so scores agree to float32 rounding and
    # lists up to near-ties; users whose lists are the same have the same metrics (docs/numerics.md).
    live = LiveSession(members, split, ctx).update(WEIGHTS, method, "minmax", k=10)
    got = rank_fusion_blocked(members, split, WEIGHTS, method, "minmax", k=10, block_size=block_size)
    assert_rankings_match(got, live.ranking)
    ev = evaluate_fusion_blocked(members, split, ctx, WEIGHTS, method, "minmax", k=10, block_size=block_size)
    assert_evaluations_match(ev, live.evaluation, got, live.ranking)


@pytest.mark.parametrize("normaliser", ["minmax", "zscore", "rank", "none"])
def test_candidates_over_the_whole_catalogue_are_exact(setup, normaliser: str) -> None:
    members, split, ctx = setup
    n_items = split.train.n_items
    exact = rank_fusion_blocked(members, split, WEIGHTS, "wsum", normaliser, k=10, block_size=16)
    approx = rank_fusion_blocked(members, split, WEIGHTS, "wsum", normaliser, k=10, block_size=16, candidates=n_items)
    np.testing.assert_array_equal(approx.item_idx, exact.item_idx)
    np.testing.assert_allclose(approx.score, exact.score, rtol=1e-6, equal_nan=True)
    _assert_same(
        evaluate_fusion_blocked(members, split, ctx, WEIGHTS, "wsum", normaliser, k=10, candidates=n_items),
        evaluate_fusion_blocked(members, split, ctx, WEIGHTS, "wsum", normaliser, k=10),
    )


def test_candidate_lists_come_from_the_members_top_n(setup) -> None:
    members, split, _ = setup
    users = split.eval_users()
    got = rank_fusion_blocked(members, split, WEIGHTS, "wsum", "minmax", k=10, block_size=13, candidates=12)
    assert got.item_idx.shape == (len(users), 10)
    train = split.train.matrix
    union = [set() for _ in users]
    for model in members.values():
        lists = top_k(model.score(users), 12, users, exclude=train).item_idx
        for row, items in enumerate(lists):
            union[row].update(int(i) for i in items if i >= 0)
    for row, u in enumerate(users):
        listed = [int(i) for i in got.item_idx[row] if i >= 0]
        assert len(set(listed)) == len(listed)
        assert set(listed) <= union[row]
        assert not set(listed) & set(train[u].indices.tolist())


@pytest.mark.parametrize("candidates", [None, 15])
def test_workers_give_the_same_answer(setup, candidates: int | None) -> None:
    members, split, _ = setup
    one = rank_fusion_blocked(members, split, WEIGHTS, block_size=5, candidates=candidates)
    two = rank_fusion_blocked(members, split, WEIGHTS, block_size=5, candidates=candidates, workers=2)
    assert_rankings_match(two, one)  # BLAS in two threads may take other kernels: float32 rounding


def test_each_member_scores_blocks_of_at_most_block_size(setup) -> None:
    members, split, ctx = setup
    partial = members["partial"]
    partial.calls.clear()
    evaluate_fusion_blocked(members, split, ctx, WEIGHTS, block_size=11)
    sizes = [len(c) for c in partial.calls]
    assert max(sizes) <= 11
    scored = np.concatenate(partial.calls)
    np.testing.assert_array_equal(np.sort(scored), split.eval_users())  # every user once, no more


def test_zero_weight_member_is_not_scored_and_changes_nothing(setup) -> None:
    members, split, ctx = setup
    partial = members["partial"]
    partial.calls.clear()
    with_zero = evaluate_fusion_blocked(members, split, ctx, {**WEIGHTS, "partial": 0.0}, block_size=32)
    assert partial.calls == []
    without = {n: m for n, m in members.items() if n != "partial"}
    rest = {n: w for n, w in WEIGHTS.items() if n != "partial"}
    _assert_same(with_zero, evaluate_fusion_blocked(without, split, ctx, rest, block_size=32))


def test_user_subset_gives_the_same_per_user_values(setup) -> None:
    members, split, ctx = setup
    full = evaluate_fusion_blocked(members, split, ctx, WEIGHTS, block_size=9)
    some = split.eval_users()[::4]
    part = evaluate_fusion_blocked(members, split, ctx, WEIGHTS, block_size=9, users=some)
    # Other users share the blocks, so the lists agree up to near-ties; users with the same list, same values.
    full_lists = rank_fusion_blocked(members, split, WEIGHTS, block_size=9)
    part_lists = rank_fusion_blocked(members, split, WEIGHTS, block_size=9, users=some)
    rows = np.isin(full_lists.user_idx, some)
    full_rows = Ranking(full_lists.user_idx[rows], full_lists.item_idx[rows], full_lists.score[rows])
    same = ~differing_rows(part_lists, full_rows)
    mask = np.isin(full.user_idx, some)
    assert same.mean() >= 0.95
    for key, values in part.per_user.items():
        np.testing.assert_allclose(values[same], full.per_user[key][mask][same], rtol=0, atol=1e-12, err_msg=key)


def test_profile_reports_each_phase(setup) -> None:
    members, split, ctx = setup
    profile: dict[str, float] = {}
    evaluate_fusion_blocked(members, split, ctx, WEIGHTS, profile=profile)
    assert set(profile) == {"score", "fuse", "evaluate"}
    assert all(v >= 0 for v in profile.values())


def test_overlap_at_k_by_hand() -> None:
    a = Ranking(np.array([0, 1], np.int32), np.array([[1, 2, 3], [4, 5, -1]], np.int32), np.zeros((2, 3), np.float32))
    b = Ranking(np.array([0, 1], np.int32), np.array([[3, 1, 9], [7, -1, -1]], np.int32), np.zeros((2, 3), np.float32))
    np.testing.assert_allclose(overlap_at_k(a, b), [2 / 3, 0.0])
    np.testing.assert_allclose(overlap_at_k(a, b, k=1), [0.0, 0.0])
    other = Ranking(np.array([1, 0], np.int32), b.item_idx, b.score)
    with pytest.raises(ConfigError, match="other users"):
        overlap_at_k(a, other)


def test_auto_block_size_bounds_the_cells() -> None:
    assert auto_block_size(26_744) * 26_744 <= DEFAULT_BLOCK_CELLS < (auto_block_size(26_744) + 1) * 26_744
    assert auto_block_size(10**9) == 1
    assert auto_block_size(10) == 4096


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"candidates": 5}, "candidates=5 is smaller than k=10"),
        ({"candidates": 0}, "candidates=0"),
        ({"block_size": 0}, "block_size=0"),
        ({"workers": 0}, "workers=0"),
        ({"users": np.array([0, 10_000])}, "user index 10000 is out of range"),
        ({"users": np.array([4, 4])}, "twice"),
        ({"k": 0}, "k=0"),
        ({"method": "nope"}, "unknown fusion method"),
        ({"part": "valid"}, "no validation part"),
    ],
)
def test_bad_arguments_name_the_fix(setup, kwargs: dict, match: str) -> None:
    members, split, ctx = setup
    with pytest.raises(ConfigError, match=match):
        evaluate_fusion_blocked(members, split, ctx, WEIGHTS, **kwargs)


def test_bad_members_and_weights(setup) -> None:
    members, split, ctx = setup
    with pytest.raises(ConfigError, match="non-empty"):
        evaluate_fusion_blocked({}, split, ctx, [])
    with pytest.raises(ConfigError, match="not fitted"):
        evaluate_fusion_blocked({"pop": make_model("pop")}, split, ctx, [1.0])
    with pytest.raises(ConfigError, match="no weight for member 'pop'"):
        evaluate_fusion_blocked(members, split, ctx, {"als": 1.0, "itemknn": 1.0, "partial": 1.0})
    with pytest.raises(ConfigError, match="all weights are zero"):
        evaluate_fusion_blocked(members, split, ctx, dict.fromkeys(members, 0.0))


def test_seed_and_method_parameters_reach_every_block(setup) -> None:
    members, split, ctx = setup
    for method, params in (("team_draft", None), ("rrf", {"rrf_k": 5.0})):
        live = LiveSession(members, split, ctx).update(WEIGHTS, method, "minmax", k=10, seed=7, params=params)
        got = rank_fusion_blocked(members, split, WEIGHTS, method, "minmax", k=10, block_size=9, seed=7, params=params)
        assert_rankings_match(got, live.ranking)
        ev = evaluate_fusion_blocked(
            members, split, ctx, WEIGHTS, method, "minmax", k=10, block_size=9, seed=7, params=params
        )
        assert_evaluations_match(ev, live.evaluation, got, live.ranking)
    with pytest.raises(ConfigError, match=r"rrf\.rrf_k=-1 is out of range"):
        rank_fusion_blocked(members, split, WEIGHTS, "rrf", params={"rrf_k": -1})
