"""Re-rankers after fusion (MMR, calibrated, popularity), list movement (RBO, slots changed) and Holm's
correction: hand-worked examples from reco_core/rerank.py's docstring and docs/reranking.md, plus properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from bench.common import bench_deps_on_path
from reco_core.calibration import kl_divergence
from reco_core.errors import ConfigError
from reco_core.eval_context import EvalContext
from reco_core.ranking import Ranking
from reco_core.rerank import (
    RERANKERS,
    RerankInputs,
    rank_biased_overlap,
    relevance,
    rerank,
    slots_changed,
)
from reco_core.stats import holm_adjust, paired_table

# Items 0 and 1 are genre A, item 2 genre B, item 3 genres A and B; popularity 99, 9, 0, 3.
GENRES = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 1]]))
CTX = EvalContext(n_items=4, item_popularity=np.array([99, 9, 0, 3]), item_genres=GENRES)


def _one_user(items: list[int], scores: list[float]) -> Ranking:
    return Ranking(np.array([0]), np.array([items], dtype=np.int32), np.array([scores], dtype=np.float32))


FUSED = _one_user([0, 1, 2], [3.0, 2.0, 1.0])  # relevance 1, 0.5, 0


def test_relevance_is_per_user_min_max() -> None:
    rel = relevance(np.array([[3.0, 2.0, 1.0], [5.0, 5.0, np.nan]]), np.array([[1, 1, 1], [1, 1, 0]], bool))
    assert rel[0].tolist() == [1.0, 0.5, 0.0]
    assert rel[1, :2].tolist() == [1.0, 1.0] and rel[1, 2] == -np.inf


def test_mmr_worked_example() -> None:
    inputs = RerankInputs(CTX)
    # lam 0.5: slot 1 takes item 0 (0.5 * 1); then item 1 scores 0.5*0.5 - 0.5*1 = -0.25 (same genre as
    # item 0) and item 2 scores 0.5*0 - 0.5*0 = 0, so item 2 comes second.
    assert rerank(FUSED, 3, "mmr", 0.5, inputs).item_idx.tolist() == [[0, 2, 1]]
    # lam 0.2: item 1 scores 0.8*0.5 - 0.2*1 = 0.2 > item 2's 0: the fused order stays.
    assert rerank(FUSED, 3, "mmr", 0.2, inputs).item_idx.tolist() == [[0, 1, 2]]


def test_calibrated_worked_example() -> None:
    # The user's history: item 3 (A and B, half each) -> p = (0.5, 0.5).
    history = sp.csr_matrix(np.array([[0, 0, 0, 1]]))
    inputs = RerankInputs(CTX, history)
    # Slot 1: a one-genre item gives q~ = 0.99*(1, 0) + 0.01*(0.5, 0.5) = (0.995, 0.005), KL = 1.9585 for
    # item 0 and for item 2 alike; item 0 is more relevant. Slot 2: adding item 1 keeps q = (1, 0) (KL
    # 1.9585, objective 0.5*(1 + 0.5) - 0.5*1.9585 = -0.229); adding item 2 makes q = p (KL 0, objective
    # 0.5*(1 + 0) = 0.5): item 2 wins.
    assert rerank(FUSED, 2, "calibrated", 0.5, inputs).item_idx.tolist() == [[0, 2]]
    kl = kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert kl == pytest.approx(0.5 * math.log(0.5 / 0.995) + 0.5 * math.log(0.5 / 0.005))
    assert rerank(FUSED, 2, "calibrated", 0.1, inputs).item_idx.tolist() == [[0, 1]]


def test_popularity_worked_example() -> None:
    inputs = RerankInputs(CTX)
    # pop = log(1 + count) / log(100): item 0 -> 1, item 1 -> 0.5, item 2 -> 0. With lam 0.4 the objectives
    # are 0.6*1 - 0.4*1 = 0.2, 0.6*0.5 - 0.4*0.5 = 0.1 and 0: the fused order is kept.
    assert rerank(FUSED, 3, "popularity", 0.4, inputs).item_idx.tolist() == [[0, 1, 2]]
    # lam 0.6: 0.4 - 0.6 = -0.2, 0.2 - 0.3 = -0.1, 0: the unpopular item 2 rises to the top.
    assert rerank(FUSED, 3, "popularity", 0.6, inputs).item_idx.tolist() == [[2, 1, 0]]


@pytest.mark.parametrize("method", list(RERANKERS))
def test_lambda_zero_keeps_the_fused_head(method: str) -> None:
    inputs = RerankInputs(CTX, sp.csr_matrix(np.array([[0, 0, 0, 1]])))
    out = rerank(FUSED, 2, method, 0.0, inputs)
    assert out.item_idx.tolist() == [[0, 1]] and out.score.tolist() == [[3.0, 2.0]]


@given(
    st.integers(min_value=1, max_value=4),
    st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False, width=32), min_size=4, max_size=4),
    st.floats(min_value=0, max_value=1),
    st.sampled_from(list(RERANKERS)),
    st.integers(min_value=0, max_value=2),
)
def test_rerank_picks_k_distinct_candidates(k: int, scores: list[float], lam: float, method: str, pad: int) -> None:
    # Lists of 4 slots with `pad` padded ones at the end: the output holds the valid candidates only, each once.
    order = np.argsort(-np.array(scores), kind="stable")
    items = np.array([0, 1, 2, 3])[order]
    fused_scores = np.array(scores, dtype=np.float32)[order]
    if pad:
        items[-pad:], fused_scores[-pad:] = -1, np.nan
    fused = Ranking(np.array([0]), items[None].astype(np.int32), fused_scores[None])
    out = rerank(fused, k, method, lam, RerankInputs(CTX, sp.csr_matrix(np.array([[1, 0, 1, 0]]))))
    chosen = out.item_idx[0]
    valid = chosen[chosen >= 0]
    assert len(valid) == min(k, 4 - pad) and len(set(valid.tolist())) == len(valid)
    assert set(valid.tolist()) <= set(items[items >= 0].tolist())
    assert (chosen[len(valid) :] == -1).all()


def test_rerank_errors_name_the_fix() -> None:
    inputs = RerankInputs(CTX)
    with pytest.raises(ConfigError, match="unknown; choose one of mmr, calibrated, popularity"):
        rerank(FUSED, 2, "shuffle", 0.5, inputs)
    with pytest.raises(ConfigError, match=r"from 0 \(no re-ranking\) to 1"):
        rerank(FUSED, 2, "mmr", 1.5, inputs)
    with pytest.raises(ConfigError, match="fuse to a longer list"):
        rerank(FUSED, 4, "mmr", 0.5, inputs)
    with pytest.raises(ConfigError, match="training histories"):
        rerank(FUSED, 2, "calibrated", 0.5, inputs)
    with pytest.raises(ConfigError, match=r"needs item text embeddings.*use genre similarity"):
        rerank(FUSED, 2, "mmr", 0.5, RerankInputs(CTX, similarity="text"))


def test_mmr_text_similarity_uses_cosine() -> None:
    # Items 0 and 1 point the same way, item 2 is orthogonal: like the genre example, item 2 moves up.
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    ctx = EvalContext(n_items=4, item_popularity=np.array([1, 1, 1, 1]), item_vectors=vectors)
    assert rerank(FUSED, 3, "mmr", 0.5, RerankInputs(ctx, similarity="text")).item_idx.tolist() == [[0, 2, 1]]


def test_rank_biased_overlap_worked_example() -> None:
    a = _one_user([1, 2, 3], [3, 2, 1])
    b = _one_user([1, 3, 2], [3, 2, 1])
    # X_1 = 1, X_2 = 1, X_3 = 3; p = 0.5: (3/3) 0.5^3 + (0.5/0.5) (1/1 0.5 + 1/2 0.25 + 3/3 0.125) = 0.875
    assert rank_biased_overlap(a, b, p=0.5).tolist() == [pytest.approx(0.875)]
    assert rank_biased_overlap(a, a, p=0.9).tolist() == [pytest.approx(1.0)]
    c = _one_user([4, 5, 6], [3, 2, 1])
    assert rank_biased_overlap(a, c).tolist() == [0.0]
    assert slots_changed(a, b).tolist() == [pytest.approx(2 / 3)]
    assert slots_changed(a, a).tolist() == [0.0]


def test_holm_adjust_worked_example() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm_adjust([0.5, float("nan"), 0.01])
    assert np.isnan(out[1]) and out[[0, 2]].tolist() == pytest.approx([0.5, 0.02])
    assert holm_adjust([0.9, 0.8]).tolist() == [1.0, 1.0]
    with pytest.raises(ConfigError, match="between 0 and 1"):
        holm_adjust([1.5])


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=20))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(ps: list[float]) -> None:
    adj = holm_adjust(ps)
    p = np.array(ps)
    assert (adj >= p - 1e-15).all() and (adj <= 1).all()
    order = np.argsort(p, kind="stable")
    assert (np.diff(adj[order]) >= -1e-15).all()


def test_paired_table_adjusts_p_over_the_metrics_compared() -> None:
    rng = np.random.default_rng(0)
    a = {"ndcg@10": rng.random(60), "recall@10": rng.random(60), "novelty@10": rng.random(60)}
    b = {
        "ndcg@10": a["ndcg@10"] + 0.2,  # every user better: tiny p, a real difference even after Holm
        "recall@10": a["recall@10"].copy(),  # identical: p = 1
        "novelty@10": a["novelty@10"] + rng.normal(0.05, 0.2, 60),  # a small, noisy shift
    }
    table = paired_table(a, b, ["ndcg@10", "recall@10", "novelty@10"], n_boot=200)
    assert table["metric"].tolist() == ["ndcg@10", "recall@10", "novelty@10"]
    np.testing.assert_allclose(table["p (Holm)"], holm_adjust(table["p"].to_numpy()))
    assert table.loc[0, "verdict"] == "a real difference" and table.loc[0, "B - A"] == pytest.approx(0.2)
    # Identical per-user values: nothing to test, and the verdict says so rather than "could be chance".
    assert table.loc[1, "p"] == 1.0 and table.loc[1, "verdict"] == "no difference"
    assert (table["p (Holm)"] >= table["p"]).all()


def test_rank_biased_overlap_matches_the_rbo_package() -> None:
    # rbo 0.1.3 (changyaochen/rbo, installed into .bench-deps by `make test`): its rbo_ext is eq. 32 too.
    assert bench_deps_on_path(), "rbo is missing: `make test` installs it into .bench-deps"
    from rbo import RankingSimilarity

    rng = np.random.default_rng(5)
    a_lists = [rng.permutation(30)[:10] for _ in range(40)]
    b_lists = [np.where(rng.random(10) < 0.5, a, rng.permutation(30)[:10]) for a in a_lists]
    b_lists = [np.array(list(dict.fromkeys(b.tolist()))[:10] + [-1] * 10)[:10] for b in b_lists]
    keep = [i for i, b in enumerate(b_lists) if (b >= 0).all()]
    a = Ranking(np.arange(len(keep)), np.array([a_lists[i] for i in keep]), np.zeros((len(keep), 10), np.float32))
    b = Ranking(np.arange(len(keep)), np.array([b_lists[i] for i in keep]), np.zeros((len(keep), 10), np.float32))
    ours = rank_biased_overlap(a, b, p=0.9)
    theirs = [RankingSimilarity(a.item_idx[r].tolist(), b.item_idx[r].tolist()).rbo_ext(p=0.9) for r in range(len(a))]
    assert len(keep) > 10
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
