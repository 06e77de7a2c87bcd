"""The faster engine paths give today's answers (issue 15): bit for bit where the arithmetic is the same.

- item-kNN / user-kNN scoring (``knn.rows_times_sparse``) against scipy's sparse product;
- wsum's compiled pass over raw blocks (``fusion.wsum_kernel``, the blocked evaluation's path) against the
  dense wsum, on hostile blocks too;
- wsum over the members' candidates (threshold check, dense fallback per row) against the dense wsum,
  from raw blocks (the path without numba) and from a live session's cached normalised blocks;
- the result-level methods with the caller's cache of weight-free pieces against a fresh call;
- ``ranking.top_k`` on narrow rows (argpartition) against the torch.topk path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import reco_core.fusion.score_methods as score_methods
import reco_core.fusion.wsum_kernel as wsum_kernel
import reco_core.models.knn as knn
import reco_core.ranking as ranking
from reco_core.data import Interactions
from reco_core.fusion import fuse, normalise_members
from reco_core.live import LiveSession
from reco_core.metrics import EvalContext
from reco_core.ranking import mask_rows, top_k
from reco_core.splitting import random_split


def _random_csr(rng: np.random.Generator, shape: tuple[int, int], density: float, dtype: type) -> sp.csr_matrix:
    m = sp.random(*shape, density=density, format="csr", random_state=rng, dtype=np.float64)
    m.data = rng.random(m.nnz).round(2) + 0.01  # repeated values, as cosines of binary data have
    return m.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_rows_times_sparse_equals_scipy_bit_for_bit(dtype: type, threads: int) -> None:
    rng = np.random.default_rng(0)
    a = _random_csr(rng, (80, 60), 0.2, dtype)
    a.data[a.indptr[5] : a.indptr[6]] = 0  # an empty row
    a.eliminate_zeros()
    b = _random_csr(rng, (60, 70), 0.3, np.float32)
    rows = np.array([3, 5, 0, 79, 3, 41] * 10)  # repeated and unsorted rows
    expected = np.asarray((a[rows] @ b).toarray(), dtype=np.float32)
    got = knn.rows_times_sparse(a, rows, b, threads=threads)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_rows_times_sparse_without_numba_is_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    a, b = _random_csr(rng, (20, 30), 0.3, np.float32), _random_csr(rng, (30, 25), 0.3, np.float32)
    rows = np.arange(0, 20, 3)
    with_kernel = knn.rows_times_sparse(a, rows, b)
    monkeypatch.setattr(knn, "_dense_rows_kernel", lambda: None)
    np.testing.assert_array_equal(knn.rows_times_sparse(a, rows, b), with_kernel)


def test_item_knn_scores_equal_the_scipy_product(toy_interactions) -> None:
    from reco_core import models

    model = models.make_model("itemknn", k=5).fit(toy_interactions)
    users = np.arange(toy_interactions.n_users)
    x, s = model._x, model._sim
    expected = np.asarray((x[users] @ s).toarray(), dtype=np.float32)
    np.testing.assert_array_equal(model.score(users), expected)
    user_model = models.make_model("userknn", k=4).fit(toy_interactions)
    expected_u = np.asarray((user_model._neighbours[users] @ user_model._x).toarray(), dtype=np.float32)
    np.testing.assert_array_equal(user_model.score(users), expected_u)


def _blocks(seed: int, n: int, n_items: int, members: int = 3) -> list[np.ndarray]:
    """Masked score blocks with ties, NaN rows and cells, -inf training cells and an occasional +inf."""
    rng = np.random.default_rng(seed)
    out = []
    for m in range(members):
        b = (rng.integers(0, 12, (n, n_items)) / 4.0 if m == 0 else rng.standard_normal((n, n_items))).astype(
            np.float32
        )
        b[rng.random((n, n_items)) < 0.1] = -np.inf  # training items
        if m == 1:
            b[2] = np.nan  # a user this member cannot score
            b[rng.random((n, n_items)) < 0.05] = np.nan
        if m == 2 and n > 4:
            b[4, 3] = np.inf
            b[6] = 1.5  # a constant row
        out.append(b)
    return out


def _dense_reference(blocks, weights, normaliser, k, users):
    """wsum over the whole catalogue: normalised blocks given without lists take the dense path."""
    norm = normalise_members(blocks, normaliser)
    return fuse(None, None, weights, "wsum", normaliser, k, blocks[0].shape[1], users, normalised=norm)


def _assert_same_fusion(got, want) -> None:
    np.testing.assert_array_equal(got.ranking.item_idx, want.ranking.item_idx)
    np.testing.assert_array_equal(got.ranking.score, want.ranking.score)
    np.testing.assert_array_equal(got.contributions, want.contributions)


def _without_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """wsum as it runs without numba: raw blocks without lists take the candidate path."""
    monkeypatch.setattr(score_methods, "wsum_top_k", lambda *args: None)


@pytest.mark.parametrize("path", ["kernel", "candidates"])
@pytest.mark.parametrize("normaliser", ["minmax", "none", "zscore", "rank"])
@pytest.mark.parametrize(("n_items", "k", "list_len"), [(300, 10, 50), (300, 10, 12), (40, 5, 50), (12, 12, 50)])
def test_wsum_from_blocks_equals_the_dense_wsum(
    monkeypatch: pytest.MonkeyPatch, path: str, normaliser: str, n_items: int, k: int, list_len: int
) -> None:
    """The compiled pass, and the candidate path with short lists too (most rows then fail the check and go
    dense)."""
    if path == "candidates":
        _without_kernel(monkeypatch)
    monkeypatch.setattr(score_methods, "_LIST_LEN", list_len)
    n = 40
    users = np.arange(100, 100 + n)
    for seed, weights in enumerate(([0.5, 0.3, 0.2], [1.0, 0.0, 1.0], [0.0, 0.0, 2.0], [1e-6, 1.0, 0.1])):
        blocks = _blocks(seed, n, n_items)
        got = fuse(blocks, None, weights, "wsum", normaliser, k, n_items, users)
        _assert_same_fusion(got, _dense_reference(blocks, weights, normaliser, k, users))


def test_wsum_candidate_path_takes_most_rows_and_sends_the_rest_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both branches run on one call: rows passing the threshold check and rows fused densely."""
    rng = np.random.default_rng(7)
    n, n_items = 60, 500
    blocks = [rng.random((n, n_items)).astype(np.float32) ** p for p in (1, 4, 8)]
    blocks[0][:20] = 0.5  # constant rows: every cell ties, no list can bound them
    dense_rows = []
    real = score_methods._with_normalised

    def spy(inp, rows=None):
        if rows is not None:
            dense_rows.append(len(rows))
        return real(inp, rows)

    monkeypatch.setattr(score_methods, "_with_normalised", spy)
    _without_kernel(monkeypatch)
    users = np.arange(n)
    got = fuse(blocks, None, [0.2, 0.5, 0.3], "wsum", "minmax", 10, n_items, users)
    assert dense_rows and 0 < dense_rows[0] < n
    _assert_same_fusion(got, _dense_reference(blocks, [0.2, 0.5, 0.3], "minmax", 10, users))


@pytest.fixture(scope="module")
def session(toy_interactions, toy_members):
    split = random_split(toy_interactions, 0.25, seed=1)
    ctx = EvalContext.from_train(split.train)
    return LiveSession(toy_members(split.train), split, ctx, top_n=8, max_k=8)


@pytest.mark.parametrize("normaliser", ["minmax", "zscore", "rank", "none"])
def test_live_wsum_equals_the_dense_wsum(session: LiveSession, normaliser: str) -> None:
    rng = np.random.default_rng(3)
    norm = session.normalised(normaliser)
    for w in [*rng.dirichlet(np.ones(3), size=5), np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 0.0])]:
        for k in (1, 5, 8):
            got = session.fuse(w, "wsum", normaliser, k)
            want = fuse(None, None, w, "wsum", normaliser, k, session.n_items, session.users, normalised=norm)
            _assert_same_fusion(got, want)


def test_live_wsum_at_ml_size_equals_the_dense_wsum(fixed_scorer) -> None:
    """A session as wide as MovieLens-100K (943 x 1,682): popular items, three members of other shapes."""
    rng = np.random.default_rng(11)
    n_users, n_items = 943, 1682
    items = np.concatenate([rng.zipf(1.3, 60000) % n_items, np.arange(n_users), np.arange(n_users) + 7])
    users = np.concatenate([rng.integers(0, n_users, 60000), np.arange(n_users), np.arange(n_users)])
    frame = pd.DataFrame({"user": users, "item": items, "value": 1.0}).drop_duplicates(["user", "item"])
    split = random_split(Interactions.from_frame(frame), 0.2, seed=2)
    ctx = EvalContext.from_train(split.train)
    shape = (split.train.n_users, split.train.n_items)
    pop = np.tile(split.train.item_counts().astype(np.float32), (shape[0], 1))
    spread = (1 + rng.random(shape[0]))[:, None]
    mats = {"a": rng.random(shape), "b": rng.standard_normal(shape) * spread, "pop": pop}
    sess = LiveSession({name: fixed_scorer(m).fit(split.train) for name, m in mats.items()}, split, ctx)
    for normaliser in ("minmax", "zscore"):
        norm = sess.normalised(normaliser)
        for w in rng.dirichlet(np.ones(3), size=3):
            got = sess.fuse(w, "wsum", normaliser, 10)
            want = fuse(None, None, w, "wsum", normaliser, 10, sess.n_items, sess.users, normalised=norm)
            _assert_same_fusion(got, want)


@pytest.mark.parametrize("method", ["rrf", "borda", "combsum", "combmnz"])
def test_list_methods_with_the_cache_equal_a_fresh_call(session: LiveSession, method: str) -> None:
    rng = np.random.default_rng(5)
    lists = [session.member_ranking(n) for n in session.members]
    for w in [*rng.dirichlet(np.ones(3), size=3), np.array([0.0, 2.0, 1.0])]:
        cached = session.fuse(w, method, "minmax", 5)
        fresh = fuse(None, lists, w, method, "minmax", 5, session.n_items, session.users, top_n=session.top_n)
        _assert_same_fusion(cached, fresh)


def test_top_k_on_narrow_rows_equals_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    block = (rng.integers(0, 20, (50, 300)) / 3).astype(np.float32)  # many ties
    block[rng.random(block.shape) < 0.2] = np.nan
    block[3] = np.nan
    exclude = sp.csr_matrix((rng.random((60, 300)) < 0.1).astype(np.float32))
    users = np.arange(5, 55)
    for k in (1, 10, 299, 300):
        narrow = top_k(block, k, users, exclude)
        monkeypatch.setattr(ranking, "_NARROW_ROWS", 0)
        wide = top_k(block, k, users, exclude)
        monkeypatch.setattr(ranking, "_NARROW_ROWS", 512)
        np.testing.assert_array_equal(narrow.item_idx, wide.item_idx)
        np.testing.assert_array_equal(narrow.score, wide.score)
    masked = mask_rows(block.copy(), exclude, users)
    assert np.isneginf(masked).any()


@pytest.mark.parametrize("normaliser", ["minmax", "none", "zscore"])
def test_wsum_with_given_lists_equals_the_dense_wsum(normaliser: str) -> None:
    """Lists given with raw blocks are checked, not trusted: sorted, shuffled, wrong, or all a run holds."""
    from reco_core.ranking import Ranking

    n, n_items = 30, 200
    users = np.arange(n)
    rng = np.random.default_rng(4)
    blocks = _blocks(9, n, n_items)
    weights = [0.3, 0.3, 0.4]
    want = _dense_reference(blocks, weights, normaliser, 10, users)
    lists = [top_k(b, 40, users) for b in blocks]
    _assert_same_fusion(fuse(blocks, lists, weights, "wsum", normaliser, 10, n_items, users), want)
    perm = rng.permuted(np.tile(np.arange(40), (n, 1)), axis=1)
    shuffled = [
        Ranking(r.user_idx, np.take_along_axis(r.item_idx, perm, 1), np.take_along_axis(r.score, perm, 1))
        for r in lists
    ]
    _assert_same_fusion(fuse(blocks, shuffled, weights, "wsum", normaliser, 10, n_items, users), want)
    wrong = [top_k(-b, 40, users) for b in blocks]  # the worst items, with their negated scores
    _assert_same_fusion(fuse(blocks, wrong, weights, "wsum", normaliser, 10, n_items, users), want)
    # Runs given as blocks that are NaN outside their lists (bench/fusion_peers.py).
    runs = []
    for r in lists:
        b = np.full((n, n_items), np.nan, dtype=np.float32)
        rows, cols = np.nonzero(r.item_idx >= 0)
        b[rows, r.item_idx[rows, cols]] = r.score[rows, cols]
        runs.append(b)
    got = fuse(runs, lists, weights, "wsum", normaliser, 10, n_items, users)
    _assert_same_fusion(got, _dense_reference(runs, weights, normaliser, 10, users))


def test_wsum_kernel_runs_for_raw_blocks_and_only_for_its_normalisers() -> None:
    """The blocked evaluation's call (raw blocks, no lists, minmax or none) is the compiled pass's."""
    assert wsum_kernel.available()  # numba is in requirements.txt: the fast path must not silently vanish
    blocks = _blocks(3, 8, 50)
    assert wsum_kernel.wsum_top_k(blocks, np.array([0.5, 0.3, 0.2]), "zscore", 5, np.arange(8)) is None
    made = wsum_kernel.wsum_top_k(blocks, np.array([0.5, 0.3, 0.2]), "minmax", 5, np.arange(8))
    assert made is not None and made[0].item_idx.shape == (8, 5) and made[1].shape == (8, 5, 3)


def test_wsum_kernel_hand_checked_row() -> None:
    """One row worked by hand: min-max per member, 0 for an absent cell, ties to the lower item, and an item
    that no member scores left out even when fewer than k remain."""
    a = np.array([[0.0, 2.0, 4.0, -np.inf, 4.0]], dtype=np.float32)  # min 0, max 4: 0, .5, 1, -, 1
    b = np.array([[1.0, 3.0, np.nan, np.nan, 1.0]], dtype=np.float32)  # min 1, max 3: 0, 1, -, -, 0
    ranking, contrib = wsum_kernel.wsum_top_k([a, b], np.array([0.5, 0.5]), "minmax", 5, np.array([7]))
    # fused: item0 0, item1 .75, item2 .5, item3 absent to both, item4 .5 (ties item2, which comes first)
    assert ranking.item_idx.tolist() == [[1, 2, 4, 0, -1]]
    np.testing.assert_array_equal(ranking.score[0, :4], np.float32([0.75, 0.5, 0.5, 0.0]))
    assert np.isnan(ranking.score[0, 4]) and ranking.user_idx.tolist() == [7]
    np.testing.assert_array_equal(contrib[0, :, 0], np.float32([0.25, 0.5, 0.5, 0.0, 0.0]))
    np.testing.assert_array_equal(contrib[0, :, 1], np.float32([0.5, 0.0, 0.0, 0.0, 0.0]))


def _hostile_blocks(seed: int, n: int, n_items: int, members: int) -> list[np.ndarray]:
    """Blocks from a small set of awkward values: ties everywhere, +-inf, NaN, +-0, huge magnitudes whose
    span overflows (min-max's inf * 0 = NaN cells), and whole rows of one kind."""
    rng = np.random.default_rng(seed)
    values = np.float32([0.0, -0.0, 1.0, 1.0, 2.5, -3.0, np.inf, -np.inf, -np.inf, np.nan, 3e38, -3e38, 1e-40])
    out = []
    for _ in range(members):
        b = rng.choice(values, size=(n, n_items)).astype(np.float32)
        b[0] = -np.inf  # nothing rankable for this member
        b[1] = np.nan
        b[2] = 2.5  # constant
        out.append(b)
    return out


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the dense reference's 3e38 - -3e38
@settings(max_examples=60, deadline=None)
@given(
    normaliser=st.sampled_from(["minmax", "none"]),
    seed=st.integers(0, 2**31),
    members=st.integers(1, 4),
    n_items=st.integers(1, 30),
    equal_weights=st.booleans(),
)
def test_wsum_kernel_equals_the_dense_wsum_on_hostile_blocks(
    normaliser: str, seed: int, members: int, n_items: int, equal_weights: bool
) -> None:
    rng = np.random.default_rng(seed)
    n = 12
    blocks = _hostile_blocks(seed, n, n_items, members)
    weights = np.ones(members) if equal_weights else rng.dirichlet(np.ones(members))
    for k in sorted({1, min(4, n_items), n_items}):
        users = np.arange(n)
        got = fuse(blocks, None, weights, "wsum", normaliser, k, n_items, users)
        _assert_same_fusion(got, _dense_reference(blocks, weights, normaliser, k, users))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n_users=st.integers(1, 12), n_items=st.integers(1, 15), n_rows=st.integers(0, 20))
def test_excluded_cells_are_scipys_rows(seed: int, n_users: int, n_items: int, n_rows: int) -> None:
    """The masking cells read from the CSR arrays are those of scipy's row selection, rows repeated or empty."""
    rng = np.random.default_rng(seed)
    exclude = sp.random(n_users, n_items, density=0.3, format="csr", random_state=rng)
    rows = rng.integers(0, n_users, n_rows)
    sub = exclude[rows]
    want_rows = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    got_rows, got_items = ranking.excluded_cells(exclude, rows)
    np.testing.assert_array_equal(got_rows, want_rows)
    np.testing.assert_array_equal(got_items, sub.indices)


def test_wsum_kernel_takes_read_only_and_writable_blocks_together() -> None:
    """A memory-mapped or frozen block beside a computed one: the kernel still runs, with the dense answer."""
    blocks = _blocks(5, 10, 40)
    blocks[1].flags.writeable = False
    users = np.arange(10)
    got = fuse(blocks, None, [0.5, 0.3, 0.2], "wsum", "minmax", 5, 40, users)
    _assert_same_fusion(got, _dense_reference([b.copy() for b in blocks], [0.5, 0.3, 0.2], "minmax", 5, users))
