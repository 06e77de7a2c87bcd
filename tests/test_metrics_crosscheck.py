"""Accuracy metrics agree with ranx (computed here) and with Microsoft Recommenders (pinned numbers).

ranx's map@k divides by |T| (every relevant item), ours and Recommenders' map_at_k by min(|T|, k);
the two agree when |T| <= k, and otherwise ours = ranx * |T| / k. Both are checked.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.ids import IdMap
from reco_core.metrics import EvalContext, evaluate
from reco_core.ranking import Ranking

ranx = pytest.importorskip("ranx")

ACCURACY = ("precision", "recall", "ndcg", "hit_rate", "mrr", "map")


def make(tests: list[list[int]], lists: list[list[int]], n_items: int, k: int) -> tuple[Ranking, Interactions]:
    n = len(tests)
    rows = [u for u, t in enumerate(tests) for _ in t]
    cols = [i for t in tests for i in t]
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n_items), dtype=np.float32)
    m.sort_indices()
    test = Interactions(IdMap.from_values(range(n)), IdMap.from_values(range(n_items)), m)
    items = np.full((n, k), -1, dtype=np.int32)
    for u, row in enumerate(lists):
        items[u, : len(row)] = row[:k]
    score = np.where(items >= 0, 0.0, np.nan).astype(np.float32)
    return Ranking(np.arange(n, dtype=np.int32), items, score), test


def test_accuracy_metrics_agree_with_ranx():
    rng = np.random.default_rng(7)
    n_users, n_items, k = 80, 60, 10
    tests = [sorted(rng.choice(n_items, size=int(rng.integers(1, 25)), replace=False).tolist()) for _ in range(n_users)]
    # Lists of 1..k items (shorter ones are padded), biased towards test items so that hits are common.
    lists = []
    for t in tests:
        pool = np.unique(np.concatenate([t, rng.choice(n_items, size=20, replace=False)]))
        lists.append(rng.permutation(pool)[: int(rng.integers(1, k + 1))].tolist())
    ranking, test = make(tests, lists, n_items, k)
    ev = evaluate(ranking, test, EvalContext(n_items, np.ones(n_items)), ks=(k,), metrics=ACCURACY)

    # ranx.evaluate also takes arrays ([query, doc, (id, relevance)] and [query, rank, (id, score)]):
    # the same metric kernels as with Qrels/Run, without the dict conversion whose numba compilation
    # costs ~15 s per process. Padding: relevance-0 rows (ranx drops them) and ids that match nothing.
    n_max = max(len(t) for t in tests)
    qrels = np.zeros((n_users, n_max, 2))
    qrels[:, :, 0] = -1
    for u, t in enumerate(tests):
        qrels[u, : len(t)] = np.column_stack([t, np.ones(len(t))])
    run = np.zeros((n_users, k, 2))
    run[:, :, 0] = -2
    for u, row in enumerate(lists):
        run[u, : len(row)] = np.column_stack([row, k - np.arange(len(row))])
    names = [f"{m}@{k}" for m in ACCURACY]
    scores = ranx.evaluate(qrels, run, names, return_mean=False, threads=1)
    n_rel = np.array([len(t) for t in tests], dtype=np.float64)
    assert (n_rel > k).any() and (n_rel <= k).any()  # both sides of the map difference are exercised
    assert ev.per_user[f"precision@{k}"].sum() > 0
    for name in names:
        theirs = np.asarray(scores[name], dtype=np.float64)
        ours = ev.per_user[name]
        if name.startswith("map"):
            np.testing.assert_allclose(ours[n_rel <= k], theirs[n_rel <= k], rtol=0, atol=1e-9, err_msg=name)
            theirs = theirs * n_rel / np.minimum(n_rel, k)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9, err_msg=name)


# Microsoft Recommenders, tests/unit/recommenders/evaluation (conftest.py fixtures rating_true and
# rating_pred, test_python_evaluation.py expected values at k=10, tolerance 1e-4 there). Their
# python_evaluation.precision_at_k divides by k, recall_at_k by |T|, ndcg_at_k (binary relevance)
# normalises by the ideal list of min(|T|, k) hits, and map_at_k divides by min(|T|, k).
MS_TRUE = {1: [3, 1, 2], 2: [1, 4, 5, 6, 7], 3: [2, 5, 6, 8, 9, 10, 11, 12, 13, 14]}
MS_PRED = {  # item: predicted score, per user; the list is the items by descending score
    1: {12: 12, 3: 14, 10: 13},
    2: {10: 14, 3: 13, 5: 12, 11: 11, 13: 10},
    3: {4: 14, 10: 13, 7: 12, 13: 11, 1: 10, 3: 9, 5: 8, 2: 7, 11: 6, 14: 5},
}
MS_EXPECTED = {"precision": 0.26666, "recall": 0.37777, "ndcg": 0.38172, "map": 0.23613}


def test_microsoft_recommenders_worked_example():
    users = sorted(MS_TRUE)
    tests = [MS_TRUE[u] for u in users]
    lists = [sorted(MS_PRED[u], key=lambda i, u=u: -MS_PRED[u][i]) for u in users]
    ranking, test = make(tests, lists, 15, 10)
    ev = evaluate(ranking, test, EvalContext(15, np.ones(15)), ks=(10,), metrics=ACCURACY)
    for name, value in MS_EXPECTED.items():
        assert ev.value(f"{name}@10") == pytest.approx(value, abs=1e-4), name
    # The exact values behind those rounded numbers: user 1 hits at rank 1 (|T| = 3), user 2 at rank 3
    # (|T| = 5), user 3 at ranks 2, 4, 7, 8, 9, 10 (|T| = 10).
    d = [1 / math.log2(r + 1) for r in range(1, 11)]
    exact = {
        "precision": (1 + 1 + 6) / 30,
        "recall": (1 / 3 + 1 / 5 + 6 / 10) / 3,
        "ndcg": (d[0] / sum(d[:3]) + d[2] / sum(d[:5]) + (d[1] + d[3] + d[6] + d[7] + d[8] + d[9]) / sum(d[:10])) / 3,
        "map": (1 / 3 + (1 / 3) / 5 + (1 / 2 + 2 / 4 + 3 / 7 + 4 / 8 + 5 / 9 + 6 / 10) / 10) / 3,
    }
    for name, value in exact.items():
        assert ev.value(f"{name}@10") == pytest.approx(value, abs=1e-12), name
    # Their fixture's perfect ranking (rating_pred = rating_true) gives precision@10 = 0.6 (18 hits / 30 slots).
    perfect, _ = make(tests, tests, 15, 10)
    assert evaluate(perfect, test, EvalContext(15, np.ones(15)), ks=(10,), metrics=["precision"]).value(
        "precision@10"
    ) == pytest.approx(0.6)
