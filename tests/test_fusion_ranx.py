"""Our fusion against ranx's ``fuse`` on the same small runs, wherever the two definitions coincide.

Correspondences (docs/fusion.md, "Agreement with ranx"):

* score-level ``wsum`` over the full catalogue  = ranx ``wsum`` on runs holding every rankable item, with
  norm None / "min-max" / "zmuv" / "rank" for our none / minmax / zscore / rank;
* ``combsum`` (our weights) = ranx ``wsum`` on the members' top-N runs, same normaliser;
  with equal weights also ranx ``sum``;
* ``combmnz`` with equal weights = ranx ``mnz`` (ranx's CombMNZ has no weights);
* ``rrf`` with equal weights = ranx ``rrf`` (ranx's RRF has no weights);
* ``borda`` = ranx ``w_bordafuse`` (weighted BordaFuse), and ``bordafuse`` with equal weights.

Our weights are divided by their sum, so our scores are ranx's divided by the weight total.
"""

from __future__ import annotations

import numpy as np
import pytest

ranx = pytest.importorskip("ranx")
from ranx import Run, fuse  # noqa: E402

from reco_core import fusion  # noqa: E402
from reco_core.ranking import top_k  # noqa: E402

N_USERS, N_ITEMS, TOP_N, K = 4, 25, 8, 10
NORMS = {"none": None, "minmax": "min-max", "zscore": "zmuv", "rank": "rank"}


def _blocks(seed: int = 7) -> list[np.ndarray]:
    """Three members' masked blocks: continuous scores (no ties), a few training items (-inf), a NaN."""
    rng = np.random.default_rng(seed)
    train = rng.random((N_USERS, N_ITEMS)) < 0.15
    blocks = []
    for j in range(3):
        b = (rng.random((N_USERS, N_ITEMS)) * (j + 1) - j).astype(np.float32)  # different scales per member
        b[train] = -np.inf
        blocks.append(b)
    blocks[2][0, 3] = np.nan  # member 3 cannot score item 3 for user 0
    return blocks


def _run(scores: np.ndarray, items: np.ndarray | None = None) -> Run:
    """A ranx Run from a block (every finite cell) or from top-N lists (items [n, N], scores [n, N])."""
    data = {}
    for u in range(scores.shape[0]):
        if items is None:
            cols = np.flatnonzero(np.isfinite(scores[u]))
            data[f"u{u}"] = {f"i{c}": float(scores[u, c]) for c in cols}
        else:
            ok = items[u] >= 0
            data[f"u{u}"] = {f"i{c}": float(s) for c, s in zip(items[u][ok], scores[u][ok], strict=True)}
    return Run.from_dict(data)


def _assert_same(ours: fusion.FusionResult, theirs: Run, weight_total: float, k: int = K) -> None:
    """Same fused score for every item we list, the same top-k scores, and the same items except where
    equal scores let the two libraries order ties differently (we put the lower item index first)."""
    d = theirs.to_dict()
    for u in range(N_USERS):
        fused = {int(doc[1:]): s for doc, s in d[f"u{u}"].items()}
        row = ours.ranking.item_idx[u]
        got = row[row >= 0]
        assert len(got) == min(k, len(fused))
        mine = ours.ranking.score[u, : len(got)].astype(np.float64) * weight_total
        np.testing.assert_allclose(mine, [fused[i] for i in got], rtol=1e-5, err_msg=f"user {u}")
        best = sorted(fused.values(), reverse=True)[: len(got)]
        np.testing.assert_allclose(mine, best, rtol=1e-5, err_msg=f"user {u}")
        # Our ties (equal float32 scores) go to the lower item index.
        for j in range(1, len(got)):
            if mine[j] == mine[j - 1]:
                assert got[j] > got[j - 1]
        # Wherever ranx's score is not (nearly) tied with another item's, the item is the same. Near-ties
        # are left out: we add in float32, ranx in float64, so equal sums may round apart.
        values = np.array(list(fused.values()))
        for j, item in enumerate(got):
            if np.sum(np.isclose(values, fused[item], rtol=1e-6, atol=1e-9)) == 1:
                rank = int(np.sum(values > fused[item]))
                assert rank == j, f"user {u}: item {item} is at {j + 1} in ours and {rank + 1} in ranx"


@pytest.mark.parametrize("normaliser", list(NORMS))
def test_score_level_wsum_matches_ranx_wsum(normaliser: str) -> None:
    blocks = _blocks()
    weights = [0.5, 0.3, 0.2]
    ours = fusion.fuse(blocks, None, weights, "wsum", normaliser, K, N_ITEMS, np.arange(N_USERS))
    theirs = fuse([_run(b) for b in blocks], norm=NORMS[normaliser], method="wsum", params={"weights": weights})
    _assert_same(ours, theirs, 1.0)


def _lists(blocks: list[np.ndarray]):
    return [top_k(b, TOP_N, np.arange(N_USERS)) for b in blocks]


def _list_runs(lists) -> list[Run]:
    return [_run(r.score, r.item_idx) for r in lists]


@pytest.mark.parametrize("normaliser", list(NORMS))
def test_combsum_matches_ranx_wsum_on_top_n_runs(normaliser: str) -> None:
    lists = _lists(_blocks(11))
    weights = [2.0, 1.0, 1.0]
    ours = fusion.fuse(None, lists, weights, "combsum", normaliser, K, N_ITEMS, np.arange(N_USERS))
    theirs = fuse(_list_runs(lists), norm=NORMS[normaliser], method="wsum", params={"weights": weights})
    _assert_same(ours, theirs, sum(weights))


def test_combsum_with_equal_weights_matches_ranx_sum() -> None:
    lists = _lists(_blocks(12))
    ours = fusion.fuse(None, lists, [1, 1, 1], "combsum", "minmax", K, N_ITEMS, np.arange(N_USERS))
    _assert_same(ours, fuse(_list_runs(lists), norm="min-max", method="sum"), 3.0)


def test_combmnz_with_equal_weights_matches_ranx_mnz() -> None:
    lists = _lists(_blocks(13))
    ours = fusion.fuse(None, lists, [1, 1, 1], "combmnz", "minmax", K, N_ITEMS, np.arange(N_USERS))
    _assert_same(ours, fuse(_list_runs(lists), norm="min-max", method="mnz"), 3.0)


@pytest.mark.parametrize("rrf_k", [60, 5])
def test_rrf_with_equal_weights_matches_ranx_rrf(rrf_k: int) -> None:
    lists = _lists(_blocks(14))
    ours = fusion.fuse(None, lists, [1, 1, 1], "rrf", "none", K, N_ITEMS, np.arange(N_USERS), rrf_k=rrf_k)
    _assert_same(ours, fuse(_list_runs(lists), norm=None, method="rrf", params={"k": rrf_k}), 3.0)


def test_borda_matches_ranx_weighted_bordafuse() -> None:
    lists = _lists(_blocks(15))
    weights = [0.6, 0.3, 0.1]
    ours = fusion.fuse(None, lists, weights, "borda", "none", K, N_ITEMS, np.arange(N_USERS))
    _assert_same(ours, fuse(_list_runs(lists), norm=None, method="w_bordafuse", params={"weights": weights}), 1.0)
    equal = fusion.fuse(None, lists, [1, 1, 1], "borda", "none", K, N_ITEMS, np.arange(N_USERS))
    _assert_same(equal, fuse(_list_runs(lists), norm=None, method="bordafuse"), 3.0)
