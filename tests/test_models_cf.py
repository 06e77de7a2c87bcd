"""Collaborative user models checked by hand: pop, itemknn, userknn, ease, als, bpr."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numeric import assert_scores_close
from scipy.stats import spearmanr

import reco_core.models as models
from reco_core.data import Interactions
from reco_core.errors import ScaleError
from reco_core.ids import IdMap
from reco_core.models import knn
from reco_core.models.ease import ease_weights


def _interactions(dense: np.ndarray) -> Interactions:
    """Interactions from a dense users x items array (0 = no interaction), ids u0.. and i0.."""
    n_users, n_items = dense.shape
    users = IdMap.from_values([f"u{u}" for u in range(n_users)])
    items = IdMap.from_values([f"i{i}" for i in range(n_items)])
    r, c = np.nonzero(dense)
    frame = pd.DataFrame({"user": [f"u{u}" for u in r], "item": [f"i{i}" for i in c], "value": dense[r, c]})
    return Interactions.from_frame(frame, users=users, items=items)


# X is symmetric, so its user-user and item-item cosines are the same numbers:
# columns c0 = (1,1,0), c1 = (1,1,1), c2 = (0,1,0);
# cos(0,1) = 2 / (sqrt2 sqrt3) = 0.8165, cos(0,2) = 1 / sqrt2 = 0.7071, cos(1,2) = 1 / sqrt3 = 0.5774.
X3 = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.float32)
C01, C02, C12 = 2 / np.sqrt(6), 1 / np.sqrt(2), 1 / np.sqrt(3)
S3 = np.array([[0, C01, C02], [C01, 0, C12], [C02, C12, 0]], dtype=np.float32)


@pytest.fixture(scope="module")
def blocks() -> Interactions:
    """60 users x 40 items in two taste blocks with 10% cross-over, ratings 1..5 (seeded)."""
    rng = np.random.default_rng(7)
    taste = np.arange(60) % 2
    item_block = np.arange(40) % 2
    p = np.where(taste[:, None] == item_block[None, :], 0.45, 0.05)
    liked = rng.random((60, 40)) < p
    liked[np.arange(60), np.arange(60) % 40] = True  # nobody is empty
    return _interactions(np.where(liked, rng.integers(1, 6, size=liked.shape), 0).astype(np.float32))


def test_pop_scores_are_training_counts() -> None:
    train = _interactions(np.array([[1, 0, 5, 0], [2, 0, 3, 0], [0, 0, 4, 1]], dtype=np.float32))
    model = models.make_model("pop").fit(train)
    expected = np.array([2, 0, 3, 1], dtype=np.float32)  # counts, not rating sums
    np.testing.assert_array_equal(model.score([0, 1, 2]), np.tile(expected, (3, 1)))
    np.testing.assert_array_equal(model.score_profile([3]), expected)
    np.testing.assert_array_equal(model.score_profile([]), expected)


def test_itemknn_cosine_by_hand() -> None:
    model = models.make_model("itemknn", k=2).fit(_interactions(X3))
    np.testing.assert_allclose(model.similar_items(np.arange(3), np.arange(3)), S3, rtol=1e-6)
    # score(u, j) = sum over u's items i of S[i, j]
    np.testing.assert_allclose(model.score([0, 1, 2]), X3 @ S3, rtol=1e-6)
    np.testing.assert_allclose(model.score([2])[0], [C01, 0, C12], rtol=1e-6)


def test_itemknn_keeps_k_neighbours_per_target_item() -> None:
    model = models.make_model("itemknn", k=1).fit(_interactions(X3))
    # Item 0's nearest is item 1, item 1's is item 0, item 2's is item 0 (0.7071 > 0.5774).
    expected = np.array([[0, C01, C02], [C01, 0, 0], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(model.similar_items(np.arange(3), np.arange(3)), expected, rtol=1e-6)
    np.testing.assert_allclose(model.score([2])[0], [C01, 0, 0], rtol=1e-6)


def test_itemknn_shrinkage_and_ratings() -> None:
    shrunk = models.make_model("itemknn", k=2, shrink=1.0).fit(_interactions(X3))
    assert shrunk.similar_items(np.array([0]), np.array([1]))[0, 0] == pytest.approx(2 / (np.sqrt(6) + 1), rel=1e-6)
    rated = X3 * np.array([[2, 1, 0], [1, 1, 3], [0, 4, 0]], dtype=np.float32)
    model = models.make_model("itemknn", k=2, use_ratings=True).fit(_interactions(rated))
    c = rated / np.linalg.norm(rated, axis=0)
    s = c.T @ c
    np.fill_diagonal(s, 0)
    np.testing.assert_allclose(model.score([0, 1, 2]), rated @ s, rtol=1e-5)


def test_cosine_top_k_is_the_same_in_small_blocks(blocks: Interactions, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = knn.cosine_top_k(blocks.binary(), 7, 2.0)
    monkeypatch.setattr(knn, "_BLOCK_BYTES", 4 * 40 * 3)  # three columns per block
    parts = knn.cosine_top_k(blocks.binary(), 7, 2.0)
    assert (whole != parts).nnz == 0
    assert np.all(np.diff(whole.indptr) <= 7) and whole.diagonal().sum() == 0


def test_top_rows_breaks_ties_by_the_lower_row() -> None:
    values = np.array([[0.5, 1.0], [0.9, 1.0], [0.5, 1.0], [0.5, 2.0], [0.1, 1.0]])
    # Column 0: 0.9 first, then three rows tie at 0.5 for the last place: row 0 wins.
    # Column 1: 2.0 first, then four rows tie at 1.0: rows 0 and 1 win.
    chosen = knn.top_rows(values, 2)
    np.testing.assert_array_equal(chosen[:, 0], [True, True, False, False, False])
    np.testing.assert_array_equal(knn.top_rows(values, 3)[:, 1], [True, True, False, True, False])
    assert knn.top_rows(values, 5).all() and not knn.top_rows(values, 0).any()


def test_itemknn_ties_at_the_kth_place_go_to_the_lower_item() -> None:
    # Item 0 is liked by users 0-3; items 1-4 each by one of them: four neighbours tie at cos = 1/2.
    dense = np.zeros((4, 5), dtype=np.float32)
    dense[:, 0] = 1
    dense[np.arange(4), np.arange(1, 5)] = 1
    model = models.make_model("itemknn", k=2).fit(_interactions(dense))
    neighbours_of_0 = model.similar_items(np.arange(5), np.array([0]))[:, 0]
    np.testing.assert_allclose(neighbours_of_0, [0, 0.5, 0.5, 0, 0], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit converts its own transpose
def test_prune_source_is_implicits_cosine_recommender(blocks: Interactions) -> None:
    from implicit.nearest_neighbours import CosineRecommender

    # Ratings as values: cosines are distinct, so no tie decides which neighbours survive.
    ours = models.make_model("itemknn", k=6, use_ratings=True, prune="source").fit(blocks)
    theirs = CosineRecommender(K=6)
    theirs.fit(blocks.matrix.tocsr(), show_progress=False)
    expected = theirs.similarity.toarray()
    np.fill_diagonal(expected, 0)  # implicit keeps the item itself as one of its K; we never store it
    got = ours.similar_items(np.arange(40), np.arange(40))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.all((got != 0).sum(axis=1) <= 5)  # K - 1 others per liked item
    target = models.make_model("itemknn", k=6, use_ratings=True).fit(blocks)
    assert np.all((target.similar_items(np.arange(40), np.arange(40)) != 0).sum(axis=0) == 6)


def test_userknn_by_hand() -> None:
    model = models.make_model("userknn", k=2).fit(_interactions(X3))
    # score(u, j) = sum over u's neighbours v of cos(u, v) X[v, j]; the user-user cosines equal S3.
    np.testing.assert_allclose(model.score([0, 1, 2]), S3 @ X3, rtol=1e-6)
    one = models.make_model("userknn", k=1).fit(_interactions(X3))
    np.testing.assert_allclose(one.score([2])[0], C02 * X3[0], rtol=1e-6)  # user 2's nearest is user 0


def test_ease_matches_numpy_closed_form() -> None:
    rng = np.random.default_rng(3)
    dense = (rng.random((9, 6)) < 0.5).astype(np.float32)
    dense[0, :] = 1  # no empty user
    reg = 2.0
    p = np.linalg.inv(dense.T.astype(np.float64) @ dense + reg * np.eye(6))
    b = np.eye(6) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(np.diag(b), 0, atol=1e-12)
    model = models.make_model("ease", reg=reg).fit(_interactions(dense))
    np.testing.assert_allclose(ease_weights(sp.csr_matrix(dense), reg), b, atol=1e-10)
    np.testing.assert_allclose(model.score(np.arange(9)), dense @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.similar_items(np.array([1, 2]), np.array([0, 5])), b[np.ix_([1, 2], [0, 5])])


def test_ease_refuses_large_catalogues_naming_the_memory_and_the_alternative() -> None:
    train = _interactions(np.eye(101, dtype=np.float32))
    with pytest.raises(ScaleError, match=r"101 items.*GiB.*itemknn"):
        models.make_model("ease", max_items=100).fit(train)


@pytest.mark.parametrize("name", ["itemknn", "ease"])
def test_profile_of_a_training_user_equals_their_score(name: str, blocks: Interactions) -> None:
    # Both are linear in the user's row (x_u @ S, x_u @ B), so folding in the same items gives the same
    # scores, to float32 rounding (a single row and a block may be summed in another order).
    model = models.make_model(name).fit(blocks)
    for u in range(0, 60, 7):
        m = blocks.matrix
        items, values = m.indices[m.indptr[u] : m.indptr[u + 1]], m.data[m.indptr[u] : m.indptr[u + 1]]
        assert_scores_close(model.score_profile(items, values), model.score([u])[0])


@pytest.mark.parametrize(
    ("name", "params", "floor"), [("userknn", {}, 0.95), ("als", {"factors": 8}, 0.95), ("bpr", {}, 0.9)]
)
def test_profile_of_a_training_user_ranks_like_their_score(
    name: str, params: dict[str, int], floor: float, blocks: Interactions
) -> None:
    # userknn: the profile finds the user as its own neighbour; als: an exact solve instead of the
    # fit's conjugate-gradient steps (8 factors: 64 would overfit 40 items and leave only noise to
    # compare); bpr: our full-batch fold-in instead of SGD. Rankings of unseen items stay close.
    model = models.make_model(name, **params).fit(blocks)
    rhos = []
    for u in range(0, 60, 6):
        items = blocks.items_of(u)
        fold = model.score_profile(items)
        unseen = np.setdiff1d(np.arange(40), items)
        rhos.append(spearmanr(fold[unseen], model.score([u])[0][unseen])[0])
    assert np.mean(rhos) > floor, rhos


@pytest.mark.parametrize("name", ["itemknn", "userknn", "ease", "als", "bpr"])
def test_no_history_cannot_be_scored(name: str) -> None:
    dense = X3.copy()
    dense[2] = 0  # user 2 has no interactions
    model = models.make_model(name, **({"iterations": 2} if name in ("als", "bpr") else {})).fit(_interactions(dense))
    scores = model.score([0, 1, 2])
    assert np.isnan(scores[2]).all() and np.isfinite(scores[:2]).all()
    assert np.isnan(model.score_profile([])).all()


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_models_are_seeded(name: str, blocks: Interactions) -> None:
    a = models.make_model(name, seed=1).fit(blocks)
    b = models.make_model(name, seed=1).fit(blocks)
    c = models.make_model(name, seed=2).fit(blocks)
    users = np.arange(60)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    assert not np.array_equal(a.score(users), c.score(users))
    np.testing.assert_array_equal(a.score_profile([0, 2, 4]), b.score_profile([0, 2, 4]))


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_similar_items_is_a_cosine(name: str, blocks: Interactions) -> None:
    model = models.make_model(name).fit(blocks)
    sim = model.similar_items(np.array([0, 1, 2]), np.array([0, 1, 2, 3]))
    assert sim.shape == (3, 4) and sim.dtype == np.float32
    np.testing.assert_allclose(np.diag(sim[:, :3]), 1.0, rtol=1e-5)
    assert (np.abs(sim) <= 1 + 1e-6).all()
    # Items of the same taste block are closer than items of the other block.
    assert sim[0, 2] > sim[0, 1] and sim[1, 3] > sim[1, 2]


def test_als_profile_uses_implicits_recalculate_user(blocks: Interactions) -> None:
    model = models.make_model("als").fit(blocks)
    row = sp.csr_matrix((np.ones(3, np.float32), ([0, 0, 0], [1, 3, 5])), shape=(1, 40))
    user = model._model.recalculate_user(0, row)
    np.testing.assert_allclose(model.score_profile([1, 3, 5]), model._item_factors @ user, rtol=1e-5)
