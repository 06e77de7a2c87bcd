"""Fusion: every method pinned on the worked example of docs/fusion.md, normalisers, properties, errors,
and FusedScorer tested like a model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reco_core.data import Interactions
from reco_core.errors import ConfigError, NotFittedError
from reco_core.fusion import (
    METHODS,
    NORMALISERS,
    FusedConfig,
    FusedScorer,
    check_weights,
    fuse,
    fused_scores,
    normalise,
    normalise_members,
)
from reco_core.ids import IdMap
from reco_core.ranking import Ranking, mask_rows, top_k

NEG = -np.inf
NAN = np.nan

# The worked example of docs/fusion.md: one user, five items; item 4 is a training item (masked -inf),
# member B cannot score item 3 (NaN).
A = np.array([[0.9, 0.5, 0.1, 0.3, NEG]], dtype=np.float32)
B = np.array([[0.2, 0.8, 0.6, NAN, NEG]], dtype=np.float32)


def _fuse(method: str, weights=(0.5, 0.5), k: int = 3, normaliser: str = "minmax", **kw):
    return fuse([A, B], None, list(weights), method, normaliser, k, 5, [0], top_n=3, **kw)


# -- normalisers ------------------------------------------------------------------------------------


ROW = np.array([[3.0, 1.0, NEG, NAN, 2.0]], dtype=np.float32)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("none", [3.0, 1.0, NAN, NAN, 2.0]),
        ("minmax", [1.0, 0.0, NAN, NAN, 0.5]),
        ("zscore", [np.sqrt(1.5), -np.sqrt(1.5), NAN, NAN, 0.0]),  # mean 2, population std sqrt(2/3)
        ("rank", [1.0, 1 / 3, NAN, NAN, 2 / 3]),
    ],
)
def test_normalisers_on_a_hand_row(name: str, expected: list[float]) -> None:
    np.testing.assert_allclose(normalise(ROW, name)[0], expected, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize(("name", "expected"), [("minmax", 0.0), ("zscore", 0.0), ("rank", 0.75), ("none", 5.0)])
def test_constant_rows_are_finite(name: str, expected: float) -> None:
    out = normalise(np.array([[5.0, 5.0, NEG]], dtype=np.float32), name)[0]
    np.testing.assert_allclose(out, [expected, expected, NAN], equal_nan=True)


@pytest.mark.parametrize("name", list(NORMALISERS))
def test_a_row_with_nothing_scorable_stays_absent(name: str) -> None:
    assert np.isnan(normalise(np.array([[NEG, NAN]], dtype=np.float32), name)).all()


@pytest.mark.parametrize("name", list(NORMALISERS))
def test_masked_training_scores_do_not_move_the_normalisation(name: str) -> None:
    masked = np.array([[0.2, 0.4, NEG, 0.9]], dtype=np.float32)
    other = masked.copy()
    other[0, 2] = NEG  # the same cell masked, whatever its raw value was
    base = normalise(masked, name)
    assert np.isnan(base[0, 2])
    np.testing.assert_array_equal(base, normalise(other, name))
    # Absent cells contribute nothing to the statistics: the row with the cell removed agrees.
    np.testing.assert_allclose(np.delete(base, 2, axis=1), normalise(np.delete(masked, 2, axis=1), name))


# -- every method on the worked example ------------------------------------------------------------


def test_wsum_worked_example() -> None:
    # minmax: A -> [1, .5, 0, .25], B -> [0, 1, 2/3, absent]; fused = (A + B) / 2, B's NaN counts 0.
    r = _fuse("wsum", k=4)
    assert r.ranking.item_idx.tolist() == [[1, 0, 2, 3]]
    np.testing.assert_allclose(r.ranking.score[0], [0.75, 0.5, 1 / 3, 0.125], rtol=1e-6)
    np.testing.assert_allclose(r.contributions[0, 0], [0.25, 0.5], rtol=1e-6)
    np.testing.assert_allclose(r.contributions[0, 3], [0.125, 0.0], rtol=1e-6)


def test_vote_worked_example() -> None:
    # Top-3: A [0, 1, 3], B [1, 2, 0]. Votes 0: 1, 1: 1, 2: .5, 3: .5; ties by the wsum score (0.75 > 0.5,
    # 1/3 > 0.125).
    r = _fuse("vote")
    assert r.ranking.item_idx.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(r.ranking.score[0], [1.0, 1.0, 0.5])
    np.testing.assert_allclose(r.contributions[0], [[0.5, 0.5], [0.5, 0.5], [0.0, 0.5]])


def test_rrf_worked_example() -> None:
    r = _fuse("rrf")
    assert r.ranking.item_idx.tolist() == [[1, 0, 2]]
    expected = [0.5 / 62 + 0.5 / 61, 0.5 / 61 + 0.5 / 63, 0.5 / 62]
    np.testing.assert_allclose(r.ranking.score[0], expected, rtol=1e-6)
    np.testing.assert_allclose(r.contributions[0, 1], [0.5 / 61, 0.5 / 63], rtol=1e-6)
    # rrf_k = 0: 1/rank.
    r0 = _fuse("rrf", rrf_k=0)
    np.testing.assert_allclose(r0.ranking.score[0], [0.5 / 2 + 0.5 / 1, 0.5 / 1 + 0.5 / 3, 0.5 / 2], rtol=1e-6)


def test_borda_worked_example() -> None:
    # Candidates C = {0, 1, 2, 3}, |C| = 4; listed: |C| - rank + 1, unlisted: (|C| - 3 + 1) / 2 = 1.
    # A: 0->4, 1->3, 3->2, 2->1.  B: 1->4, 2->3, 0->2, 3->1.  Halved: 1: 3.5, 0: 3, 2: 2, 3: 1.5.
    r = _fuse("borda")
    assert r.ranking.item_idx.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(r.ranking.score[0], [3.5, 3.0, 2.0])
    np.testing.assert_allclose(r.contributions[0, 2], [0.5, 1.5])


def test_combsum_and_combmnz_worked_example() -> None:
    # Top-3 scores min-max normalised: A [.9, .5, .3] -> [1, 1/3, 0], B [.8, .6, .2] -> [1, 2/3, 0].
    # Item 3 (A's last) gets 0; with k = 3 the list is 1, 0, 2.
    r = _fuse("combsum")
    assert r.ranking.item_idx.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(r.ranking.score[0], [2 / 3, 0.5, 1 / 3], atol=1e-6)
    m = _fuse("combmnz")
    assert m.ranking.item_idx.tolist() == [[1, 0, 2]]
    np.testing.assert_allclose(m.ranking.score[0], [4 / 3, 1.0, 1 / 3], atol=1e-6)
    # Contributions include the multiplier, so they add up to the fused score.
    np.testing.assert_allclose(m.contributions[0].sum(axis=1), m.ranking.score[0], atol=1e-6)


def test_interleave_worked_example() -> None:
    # A takes slot 1 (tie, earlier member), B slot 2, A slot 3: A's next item 1 is placed, so it skips to 3.
    r = _fuse("interleave")
    assert r.ranking.item_idx.tolist() == [[0, 1, 3]]
    assert r.placed_by.tolist() == [[0, 1, 0]]
    np.testing.assert_array_equal(r.contributions[0], [[1, 0], [0, 1], [1, 0]])


def test_every_method_is_pinned_above() -> None:
    pinned = {"wsum", "vote", "rrf", "borda", "combsum", "combmnz", "interleave", "team_draft"}
    assert set(METHODS) == pinned


@pytest.mark.parametrize("method", ["wsum", "rrf", "borda", "combsum", "combmnz"])
def test_contributions_add_up_to_the_fused_score(method: str) -> None:
    r = _fuse(method, weights=(0.7, 0.3))
    np.testing.assert_allclose(r.contributions[0].sum(axis=1), r.ranking.score[0], rtol=1e-5, atol=1e-7)


def test_the_normaliser_matters_for_wsum_but_not_for_rank_methods() -> None:
    assert _fuse("wsum", normaliser="none").ranking.score[0, 0] != _fuse("wsum").ranking.score[0, 0]
    for method in ("rrf", "borda", "interleave"):
        a, b = _fuse(method, normaliser="none"), _fuse(method, normaliser="zscore")
        np.testing.assert_array_equal(a.ranking.item_idx, b.ranking.item_idx)


# -- interleaving ----------------------------------------------------------------------------------


def _lists(*rows: list[int]) -> list[Ranking]:
    out = []
    for row in rows:
        items = np.array([row], dtype=np.int32)
        score = np.linspace(1.0, 0.5, len(row), dtype=np.float32)[None, :]
        out.append(Ranking(np.array([0], dtype=np.int32), items, score))
    return out


def test_weighted_round_robin_gives_slots_in_proportion() -> None:
    lists = _lists(list(range(0, 10)), list(range(10, 20)), list(range(20, 30)))
    r = fuse(None, lists, [0.5, 0.3, 0.2], "interleave", "none", 10, 30, [0])
    assert np.bincount(r.placed_by[0], minlength=3).tolist() == [5, 3, 2]
    # The member furthest behind its share (share * slots so far - taken) takes each slot:
    # slot 1 (.5 .3 .2) A; 2 (0 .6 .4) B; 3 (.5 -.1 .6) C; 4 (1 .2 -.2) A; 5 (.5 .5 0) tie -> A;
    # 6 (0 .8 .2) B; 7 (.5 .1 .4) A; 8 (0 .4 .6) C; 9 (.5 .7 -.2) B; 10 (1 0 0) A.
    assert r.placed_by[0].tolist() == [0, 1, 2, 0, 0, 1, 0, 2, 1, 0]
    # Each member's items appear in its own order.
    for j in range(3):
        placed = r.ranking.item_idx[0][r.placed_by[0] == j]
        assert placed.tolist() == sorted(placed.tolist())


def test_interleaving_skips_duplicates_and_exhausted_members() -> None:
    lists = _lists([1, 2, 3], [1, 4])
    r = fuse(None, lists, [0.5, 0.5], "interleave", "none", 5, 6, [0])
    # A: 1; B: 1 is taken, so 4; A: 2; B has nothing left, so A fills the rest.
    assert r.ranking.item_idx.tolist() == [[1, 4, 2, 3, -1]]
    assert r.placed_by.tolist() == [[0, 1, 0, 0, -1]]
    assert np.isnan(r.ranking.score[0, -1])


def test_team_draft_is_seeded_balanced_and_per_user() -> None:
    n, n_items = 40, 200
    rng = np.random.default_rng(3)
    lists = []
    for _ in range(2):
        items = np.stack([rng.choice(n_items, 20, replace=False) for _ in range(n)]).astype(np.int32)
        lists.append(Ranking(np.arange(n, dtype=np.int32), items, np.ones((n, 20), np.float32)))
    run = lambda seed: fuse(None, lists, [1, 1], "team_draft", "none", 10, n_items, np.arange(n), seed=seed)  # noqa: E731
    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.ranking.item_idx, b.ranking.item_idx)
    assert not np.array_equal(a.placed_by, c.placed_by)  # other coin flips
    # Classic team draft: after every pair of slots each team has picked once.
    for slot in range(2, 11, 2):
        counts = np.stack([(a.placed_by[:, :slot] == j).sum(axis=1) for j in range(2)], axis=1)
        assert (counts == slot // 2).all()
    # Both members start some lists (coin flips, not the member order).
    assert set(a.placed_by[:, 0].tolist()) == {0, 1}
    # A user's list does not depend on the other users fused beside it.
    one = fuse(
        None,
        [Ranking(r.user_idx[5:6], r.item_idx[5:6], r.score[5:6]) for r in lists],
        [1, 1], "team_draft", "none", 10, n_items, [5], seed=0,
    )  # fmt: skip
    np.testing.assert_array_equal(one.ranking.item_idx[0], a.ranking.item_idx[5])


# -- properties ------------------------------------------------------------------------------------


@st.composite
def _members(draw, min_members: int = 2, max_members: int = 3):
    """Integer score blocks (distinct per row, so rankings have no ties), with a few masked cells."""
    m = draw(st.integers(min_members, max_members))
    n = draw(st.integers(1, 4))
    n_items = draw(st.integers(4, 12))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    masked = rng.random((n, n_items)) < 0.2
    masked[:, :3] = False  # every user keeps a few rankable items
    blocks = []
    for _ in range(m):
        b = np.stack([rng.permutation(n_items) for _ in range(n)]).astype(np.float32)
        b[masked] = NEG
        blocks.append(b)
    return blocks


def _all_methods_ranking(blocks, weights, method, normaliser="minmax", k=3, top_n=5):
    n, n_items = blocks[0].shape
    return fuse(blocks, None, weights, method, normaliser, k, n_items, np.arange(n), top_n=top_n)


@settings(max_examples=40, deadline=None)
@given(_members(), st.sampled_from(["wsum", "rrf", "borda", "combsum", "combmnz", "vote", "interleave", "team_draft"]))
def test_weights_one_zero_reproduce_the_first_member(blocks, method) -> None:
    # Holds for every method here because member scores are distinct integers: min-max of integers keeps
    # them distinct in float32. With near-equal float scores, min-max/z-score rounding can create ties
    # that the ranker breaks by item index (docs/fusion.md says so).
    n = blocks[0].shape[0]
    weights = [1.0] + [0.0] * (len(blocks) - 1)
    fused = _all_methods_ranking(blocks, weights, method)
    alone = top_k(blocks[0], 3, np.arange(n))
    np.testing.assert_array_equal(fused.ranking.item_idx, alone.item_idx)


@settings(max_examples=40, deadline=None)
@given(_members(), st.sampled_from(["wsum", "rrf", "borda", "combsum", "combmnz"]), st.integers(0, 2**16))
def test_member_order_does_not_matter(blocks, method, seed) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 5, size=len(blocks)).astype(float)
    perm = rng.permutation(len(blocks))
    n = blocks[0].shape[0]
    a = fused_scores(blocks, weights, method, "minmax", np.arange(n), top_n=5)
    b = fused_scores([blocks[i] for i in perm], weights[perm], method, "minmax", np.arange(n), top_n=5)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(_members(), st.integers(0, 2**16))
def test_vote_does_not_depend_on_member_order(blocks, seed) -> None:
    # Vote has no fused score, only an order: compare the votes and the tie-break values slot by slot. Items
    # whose tie-break values are equal in exact arithmetic may be rounded apart differently by float32 sums
    # in another member order, so the items themselves are compared only through these values.
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 5, size=len(blocks)).astype(float)
    perm = rng.permutation(len(blocks))
    n, n_items = blocks[0].shape
    users = np.arange(n)
    a = fuse(blocks, None, weights, "vote", "minmax", n_items, n_items, users, top_n=5)
    b = fuse([blocks[i] for i in perm], None, weights[perm], "vote", "minmax", n_items, n_items, users, top_n=5)
    np.testing.assert_allclose(a.ranking.score, b.ranking.score, equal_nan=True)
    tiebreak = fused_scores(blocks, weights, "wsum", "minmax", users)
    rows = np.arange(n)[:, None]
    ta = np.where(a.ranking.item_idx >= 0, tiebreak[rows, np.maximum(a.ranking.item_idx, 0)], np.nan)
    tb = np.where(b.ranking.item_idx >= 0, tiebreak[rows, np.maximum(b.ranking.item_idx, 0)], np.nan)
    np.testing.assert_allclose(ta, tb, rtol=1e-5, atol=1e-6, equal_nan=True)


@settings(max_examples=30, deadline=None)
@given(_members(3, 3), st.sampled_from(sorted(METHODS)))
def test_a_zero_weight_member_is_the_same_as_no_member(blocks, method) -> None:
    n, n_items = blocks[0].shape
    with_zero = fuse(blocks, None, [2, 0, 1], method, "zscore", 3, n_items, np.arange(n), top_n=5)
    without = fuse([blocks[0], blocks[2]], None, [2, 1], method, "zscore", 3, n_items, np.arange(n), top_n=5)
    np.testing.assert_array_equal(with_zero.ranking.item_idx, without.ranking.item_idx)
    np.testing.assert_array_equal(with_zero.contributions[:, :, 1], 0)
    assert with_zero.weights.tolist() == pytest.approx([2 / 3, 0, 1 / 3])


@settings(max_examples=30, deadline=None)
@given(_members(), st.sampled_from(sorted(METHODS)), st.integers(1, 6))
def test_fused_lists_are_valid(blocks, method, k) -> None:
    n, n_items = blocks[0].shape
    k = min(k, n_items)
    r = _all_methods_ranking(blocks, [1.0] * len(blocks), method, k=k, top_n=max(k, 4))
    for u in range(n):
        row = r.ranking.item_idx[u]
        listed = row[row >= 0]
        assert len(set(listed.tolist())) == len(listed)  # no duplicates
        assert all(blocks[0][u, i] > NEG for i in listed)  # never a masked (training) item
        assert (row[len(listed) :] == -1).all()  # padding only at the end
        assert np.isfinite(r.ranking.score[u, : len(listed)]).all()
    # Scaling every weight changes nothing (weights are divided by their sum).
    scaled = _all_methods_ranking(blocks, [7.0] * len(blocks), method, k=k, top_n=max(k, 4))
    np.testing.assert_array_equal(r.ranking.item_idx, scaled.ranking.item_idx)


def test_wsum_never_lists_an_item_no_member_can_score() -> None:
    a = np.array([[NAN, 1.0, 2.0, NEG]], dtype=np.float32)
    b = np.array([[NAN, NAN, 0.5, NEG]], dtype=np.float32)
    r = fuse([a, b], None, [1, 1], "wsum", "minmax", 4, 4, [0])
    assert r.ranking.item_idx.tolist() == [[2, 1, -1, -1]]


def test_borda_with_lists_of_different_lengths() -> None:
    # A lists 3 items, B only 1 (the user had one rankable item for B). C = {0, 1, 2}.
    # A: 0->3, 1->2, 2->1.  B: 2->3, unlisted (3 - 1 + 1) / 2 = 1.5 for 0 and 1.
    lists = _lists([0, 1, 2], [2])
    r = fuse(None, lists, [1, 1], "borda", "none", 3, 3, [0])
    assert r.ranking.item_idx.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(r.ranking.score[0], [(3 + 1.5) / 2, (1 + 3) / 2, (2 + 1.5) / 2])


def test_vote_ties_on_rounded_votes_go_to_the_tie_break() -> None:
    # Item 0 is listed by A and B (0.1 + 0.2), item 1 by C (0.3): the same vote; the scores decide.
    a = np.array([[5.0, 0.0, 1.0]], dtype=np.float32)
    b = np.array([[5.0, 0.0, 1.0]], dtype=np.float32)
    c = np.array([[0.0, 5.0, 1.0]], dtype=np.float32)
    lists = [top_k(x, 1) for x in (a, b, c)]  # each member lists only its best item
    r = fuse([a, b, c], lists, [0.1, 0.2, 0.3], "vote", "minmax", 2, 3, [0])
    # wsum tie-break: item 0 -> 0.1 + 0.2 = 0.3 of 0.6, item 1 -> 0.3 of 0.6: a full tie, so the lower index.
    assert r.ranking.item_idx.tolist() == [[0, 1]]
    np.testing.assert_allclose(r.ranking.score[0], [0.5, 0.5])


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "sum"}, "unknown fusion method 'sum': choose one of wsum, vote, rrf"),
        ({"normaliser": "l2"}, "unknown normaliser 'l2': choose one of none, minmax, zscore, rank"),
        ({"weights": [0.5, np.nan]}, "weight of 'member 2' is nan"),
        ({"weights": [0.5, -0.1]}, "weight of 'member 2' is -0.1: weights must be >= 0"),
        ({"weights": [0, 0]}, "all weights are zero"),
        ({"weights": [1, 1, 1]}, "3 weights given for 2 members"),
        ({"weights": ["a", 1]}, "are not numbers"),
        ({"k": 9}, "k=9 is larger than the catalogue (5 items)"),
        ({"k": 0}, "k=0 is not valid"),
        ({"rrf_k": -1}, "rrf_k=-1 is not valid"),
        ({"top_n": 0}, "top_n=0 is not valid"),
        ({"member_names": ["a"]}, "1 member names for 2 members"),
    ],
)
def test_bad_arguments_are_named(kwargs, words) -> None:
    args = {"weights": [0.5, 0.5], "method": "wsum", "normaliser": "minmax", "k": 3}
    args.update(kwargs)
    with pytest.raises(ConfigError) as err:
        fuse([A, B], None, args.pop("weights"), args.pop("method"), args.pop("normaliser"), args.pop("k"), 5, [0],
             **args)  # fmt: skip
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_member_problems_are_named() -> None:
    with pytest.raises(ConfigError, match=r"member 'text' has no scores .*failed to fit"):
        fuse([A, None], None, [1, 1], "wsum", "minmax", 3, 5, [0], member_names=["als", "text"])
    wide = np.zeros((1, 6), dtype=np.float32)
    with pytest.raises(ConfigError, match="member 'b' scores 6 items but the catalogue has 5"):
        fuse([A, wide], None, [1, 1], "wsum", "minmax", 3, 5, [0], member_names=["a", "b"])
    r = top_k(A, 3)
    with pytest.raises(ConfigError, match="member 'member 2' has no ranking"):
        fuse(None, [r, None], [1, 1], "rrf", "none", 3, 5, [0])
    other = Ranking(np.array([7], dtype=np.int32), r.item_idx, r.score)
    with pytest.raises(ConfigError, match="ranks other users"):
        fuse(None, [r, other], [1, 1], "rrf", "none", 3, 5, [0])
    big = Ranking(r.user_idx, np.array([[0, 1, 9]], dtype=np.int32), r.score)
    with pytest.raises(ConfigError, match="lists item index 9 but the catalogue has 5 items"):
        fuse(None, [r, big], [1, 1], "rrf", "none", 3, 5, [0])
    with pytest.raises(ConfigError, match="method 'wsum' fuses scores: give the members' score blocks"):
        fuse(None, [r, r], [1, 1], "wsum", "minmax", 3, 5, [0])
    with pytest.raises(ConfigError, match="no members given"):
        fuse([], None, [], "wsum", "minmax", 3, 5, [0])
    with pytest.raises(ConfigError, match="give one score block and/or ranking per member"):
        fuse([A, B], [r], [1, 1], "rrf", "none", 3, 5, [0])


def test_check_weights_accepts_good_weights() -> None:
    assert check_weights([0, 2.5], 2).tolist() == [0.0, 2.5]


@pytest.mark.parametrize("scale", [1.0, 1e308, 5e-324], ids=["one", "huge", "subnormal"])
def test_only_the_proportions_of_the_weights_count_at_any_scale(scale: float) -> None:
    # [1e308] * 2 summed directly is inf (every share 0); 5e-324 / sum underflows. Scaling by the largest first
    # keeps the shares 1/2, 1/2 and the ranking that of weights [1, 1].
    res = fuse([A, B], None, [scale, scale], "wsum", "minmax", 3, 5, [0])
    np.testing.assert_allclose(res.weights, [0.5, 0.5])
    same = fuse([A, B], None, [1, 1], "wsum", "minmax", 3, 5, [0])
    np.testing.assert_array_equal(res.ranking.item_idx, same.ranking.item_idx)


@pytest.mark.parametrize("users", [None, "0", [0.5], [[0]], [-1], [2**31]])
def test_user_idx_must_be_a_list_of_row_indices(users: object) -> None:
    with pytest.raises(ConfigError, match=r"^user_idx "):
        fuse([A, B], None, [1, 1], "wsum", "minmax", 3, 5, users)  # type: ignore[arg-type]
    assert fuse([A, B], None, [1, 1], "wsum", "minmax", 3, 5, [0.0]).ranking.user_idx.tolist() == [0]


def test_normalised_scores_must_match_the_normaliser() -> None:
    norm = normalise_members([A, B], "zscore")
    with pytest.raises(ConfigError, match="normalised scores were made with 'zscore', not 'minmax'"):
        fuse(None, None, [1, 1], "wsum", "minmax", 3, 5, [0], normalised=norm)
    same = fuse(None, None, [1, 1], "wsum", "zscore", 3, 5, [0], normalised=norm)
    np.testing.assert_array_equal(
        same.ranking.item_idx, fuse([A, B], None, [1, 1], "wsum", "zscore", 3, 5, [0]).ranking.item_idx
    )


# -- FusedScorer ------------------------------------------------------------------------------------


def _train() -> Interactions:
    frame = pd.DataFrame({"user": ["u0", "u0", "u1", "u2"], "item": ["i0", "i3", "i1", "i5"], "value": 1.0})
    return Interactions.from_frame(frame, IdMap.from_values([f"u{i}" for i in range(3)]),
                                   IdMap.from_values([f"i{i}" for i in range(6)]))  # fmt: skip


@pytest.fixture()
def fitted(fixed_scorer):
    """A training matrix (3 users x 6 items) and two fixed-score members fitted on it."""
    rng = np.random.default_rng(0)
    train = _train()
    a = fixed_scorer(rng.random((3, 6))).fit(train)
    b = fixed_scorer(rng.random((3, 6))).fit(train)
    return train, a, b


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fused_scorer_ranks_like_fuse(fitted, method: str) -> None:
    train, a, b = fitted
    model = FusedScorer([(a, 0.6), (b, 0.4)], FusedConfig(method=method, normaliser="zscore", top_n=4))
    users = np.arange(3)
    scores = model.score(users)
    assert scores.shape == (3, 6) and scores.dtype == np.float32
    assert np.isnan(scores[0, [0, 3]]).all()  # training items cannot be scored by the fusion
    blocks = [m.score(users).copy() for m in (a, b)]
    for blk in blocks:
        mask_rows(blk, train.matrix, users)
    expected = fuse(blocks, None, [0.6, 0.4], method, "zscore", 3, 6, users, top_n=4)
    np.testing.assert_array_equal(top_k(scores, 3, users, exclude=train.matrix).item_idx, expected.ranking.item_idx)
    # A block of one user agrees with the full block (team draft's coin flips are per user).
    np.testing.assert_array_equal(model.score([2])[0], scores[2])


def test_fused_scorer_profile_and_fit(fitted) -> None:
    train, a, b = fitted
    model = FusedScorer([(a, 1.0), (b, 1.0)], names=["a", "b"])
    prof = model.score_profile([1, 2])
    assert prof.shape == (6,) and np.isnan(prof[[1, 2]]).all() and np.isfinite(prof[[0, 3, 4, 5]]).all()
    model.fit(train)
    assert a.fit_calls == 2 and b.fit_calls == 2  # fit refits every member
    assert model.fitted and model.n_items == 6


def test_fused_scorer_refuses_bad_members(fitted, fixed_scorer) -> None:
    train, a, b = fitted
    with pytest.raises(NotFittedError):
        FusedScorer([(a, 1.0), (fixed_scorer(np.zeros((3, 6))), 1.0)]).score([0])
    with pytest.raises(ConfigError, match="weights must be >= 0"):
        FusedScorer([(a, 1.0), (b, -1.0)])
    with pytest.raises(ConfigError, match="needs at least one member"):
        FusedScorer([])
    with pytest.raises(ConfigError, match="is not a \\(model, weight\\) pair"):
        FusedScorer([(a, 1.0), ("als", 1.0)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="method='mix' is not valid: choose one of wsum"):
        FusedScorer([(a, 1.0)], FusedConfig(method="mix"))
    other = fixed_scorer(np.zeros((3, 7)))
    frame = pd.DataFrame({"user": ["u0"], "item": ["i0"], "value": 1.0})
    wide = Interactions.from_frame(frame, train.users, IdMap.from_values([f"i{i}" for i in range(7)]))
    other.fit(wide)
    with pytest.raises(ConfigError, match="fuse only members fitted on the same catalogue"):
        FusedScorer([(a, 1.0), (other, 1.0)], names=["a", "other"])
