"""ui/learn_examples.py: hand-checkable worked examples that agree with the engine's metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.ids import IdMap
from reco_core.metrics import EvalContext, evaluate
from reco_core.ranking import Ranking
from ui import learn_examples as le


def interactions(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    frame = pd.DataFrame({"user": [str(u) for u, _ in pairs], "item": [str(i) for _, i in pairs], "value": 1.0})
    return Interactions.from_frame(
        frame, IdMap.from_values([str(u) for u in range(n_users)]), IdMap.from_values([str(i) for i in range(n_items)])
    )


# -- RRF -------------------------------------------------------------------------------------------------


def test_rrf_by_hand() -> None:
    a = np.array([5, 4, 3, 2, 1, 0], np.float32)  # A's list: 0 1 2 3 4 5
    b = np.array([0, 1, np.nan, 3, 4, 5], np.float32)  # B's list: 5 4 3 1 0 (2 cannot be scored)
    ex = le.rrf_example({"A": a, "B": b}, {"A": 1.0, "B": 0.5}, exclude=[0], rrf_k=60, depth=3, show=4, per_member=2)
    t = ex.table.set_index("item_idx")
    # Item 0 is a training item: never ranked. A's top 3 is then 1, 2, 3; B's is 5, 4, 3.
    assert 0 not in t.index
    assert t.loc[3, "rank · A"] == 3 and t.loc[3, "rank · B"] == 3
    # Weights 1 and 0.5 are used as 2/3 and 1/3 (divided by their sum).
    assert t.loc[3, "fused score"] == pytest.approx((2 / 3) / 63 + (1 / 3) / 63)
    assert t.loc[1, "fused score"] == pytest.approx((2 / 3) / 61)
    assert pd.isna(t.loc[1, "rank · B"]) and t.loc[1, "weighted · B"] == 0.0
    assert t.loc[5, "weighted · B"] == pytest.approx((1 / 3) / 61)
    assert ex.weights == pytest.approx({"A": 2 / 3, "B": 1 / 3})
    # Final order: 3 (in both lists) beats A's favourite; B's favourite comes after A's list.
    assert ex.fused_top.tolist() == [3, 1, 2, 5]
    assert ex.table["final rank"].tolist() == [1, 2, 3, 4, 5]
    assert ex.table["item_idx"].tolist() == [3, 1, 2, 5, 4]


def test_rrf_table_columns_add_up() -> None:
    rng = np.random.default_rng(0)
    scores = {m: rng.normal(size=50).astype(np.float32) for m in ("als", "itemknn", "text")}
    w = {"als": 0.5, "itemknn": 0.3, "text": 0.2}
    ex = le.rrf_example(scores, w, exclude=[1, 2, 3], rrf_k=10, depth=20)
    weighted = sum(ex.table[f"weighted · {m}"] for m in w)
    np.testing.assert_allclose(weighted, ex.table["fused score"])
    for m in w:
        r = ex.table[f"rank · {m}"]
        got = ex.table.loc[r.notna(), f"1/(k+rank) · {m}"]
        np.testing.assert_allclose(got, 1.0 / (10 + r[r.notna()].astype(float)))
    assert (np.diff(ex.table["fused score"]) <= 0).all()


@pytest.mark.parametrize("weights", [(0.6, 0.3, 0.1), (1.0, 0.0, 2.0), (1.0, 1.0, 1.0)])
def test_rrf_example_matches_the_engine(weights: tuple[float, float, float]) -> None:
    from reco_core.fusion import fuse
    from reco_core.ranking import mask_rows

    rng = np.random.default_rng(7)
    n_items, exclude = 80, np.array([4, 9, 30])
    names = ("als", "itemknn", "text")
    raw = {m: rng.normal(size=n_items).astype(np.float32) for m in names}
    raw["text"][rng.choice(n_items, 5, replace=False)] = np.nan
    ex = le.rrf_example(raw, dict(zip(names, weights, strict=True)), exclude, rrf_k=60, depth=25, show=10)
    train = sp.csr_matrix((np.ones(3, np.float32), (np.zeros(3, int), exclude)), shape=(1, n_items))
    blocks = [mask_rows(raw[m][None, :].copy(), train, np.array([0])) for m in names]
    res = fuse(blocks, None, list(weights), "rrf", "none", 10, n_items, [0], rrf_k=60, top_n=25, member_names=names)
    assert ex.fused_top.tolist() == res.ranking.item_idx[0].tolist()
    by_item = ex.table.set_index("item_idx")["fused score"]
    np.testing.assert_allclose(by_item.loc[res.ranking.item_idx[0]].to_numpy(), res.ranking.score[0], rtol=1e-5)


def test_rrf_single_member_keeps_its_order() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.7], np.float32)
    ex = le.rrf_example({"only": s}, {"only": 1.0}, exclude=[], depth=4, show=4)
    assert ex.fused_top.tolist() == [1, 3, 2, 0]


def test_rrf_zero_weight_member_contributes_nothing() -> None:
    a = np.array([3, 2, 1, 0], np.float32)
    b = np.array([0, 1, 2, 3], np.float32)
    ex = le.rrf_example({"a": a, "b": b}, {"a": 1.0, "b": 0.0}, exclude=[], depth=4, show=4)
    assert ex.fused_top.tolist() == [0, 1, 2, 3]
    assert (ex.table["weighted · b"] == 0).all()


@pytest.mark.parametrize(
    ("weights", "message"),
    [({"a": 0.0}, "all weights are zero"), ({"a": -1.0}, "weight of a"), ({"a": float("nan")}, "weight of a")],
)
def test_rrf_bad_weights(weights: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        le.rrf_example({"a": np.ones(3, np.float32)}, weights, exclude=[])


def test_rrf_item_labels_are_used() -> None:
    ex = le.rrf_example({"a": np.array([1, 2], np.float32)}, {"a": 1}, [], depth=2, item_labels=["x", "y"])
    assert ex.table["item"].tolist() == ["y", "x"]


# -- NDCG ------------------------------------------------------------------------------------------------


def test_ndcg_worked_example() -> None:
    # List 3, 1, (empty), 2 against T = {1, 2, 9}: hits at positions 2 and 4.
    ex = le.ndcg_example([3, 1, -1, 2], [1, 2, 9], k=4)
    assert ex.table["rel_i"].tolist() == [0, 1, 0, 1]
    assert ex.table["item"].tolist()[2] == le.EMPTY_SLOT
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # min(|T|, k) = 3 ideal hits
    assert ex.dcg == pytest.approx(dcg) and ex.idcg == pytest.approx(idcg)
    assert ex.ndcg == pytest.approx(dcg / idcg)
    assert ex.ideal_hits == 3 and ex.n_relevant == 3


def test_ndcg_perfect_list_is_one_and_short_list_is_padded() -> None:
    assert le.ndcg_example([4, 5], [4, 5], k=2).ndcg == pytest.approx(1.0)
    ex = le.ndcg_example([4], [4, 7], k=3)
    assert len(ex.table) == 3 and ex.table["rel_i"].tolist() == [1, 0, 0]


def test_ndcg_needs_relevant_items() -> None:
    with pytest.raises(ConfigError, match="no held-out items"):
        le.ndcg_example([1, 2], [], k=2)


# -- agreement with reco_core.metrics ----------------------------------------------------------------------


@pytest.fixture
def small_eval() -> tuple[Ranking, Interactions, Interactions]:
    rng = np.random.default_rng(3)
    n_users, n_items, k = 30, 25, 5
    train_pairs = [(u, i) for u in range(n_users) for i in rng.choice(n_items, 6, replace=False)]
    test_pairs = []
    for u in range(n_users):
        seen = {i for uu, i in train_pairs if uu == u}
        rest = [i for i in range(n_items) if i not in seen]
        test_pairs += [(u, int(i)) for i in rng.choice(rest, 1 + u % 8, replace=False)]
    train = interactions(train_pairs, n_users, n_items)
    test = interactions(test_pairs, n_users, n_items)
    items = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_users)]).astype(np.int32)
    items[0, -2:] = -1  # padding must be handled the same way
    ranking = Ranking(np.arange(n_users, dtype=np.int32), items, np.zeros(items.shape, np.float32))
    return ranking, train, test


def test_our_conventions_equal_the_engine(small_eval) -> None:
    ranking, train, test = small_eval
    ctx = EvalContext.from_train(train)
    ev = evaluate(ranking, test, ctx, ks=(5,))
    p = le.precision_conventions(ranking, test, 5)
    nv = le.novelty_conventions(ranking, train.item_counts(), 5)
    np.testing.assert_allclose(p["over k"], ev.per_user["precision@5"])
    np.testing.assert_allclose(nv["training popularity"], ev.per_user["novelty@5"])
    user = 4
    relevant = test.items_of(user)
    ex = le.ndcg_example(ranking.item_idx[user], relevant, 5)
    assert ex.ndcg == pytest.approx(ev.per_user["ndcg@5"][user])


def test_precision_over_min_k_t_is_never_smaller(small_eval) -> None:
    ranking, _, test = small_eval
    p = le.precision_conventions(ranking, test, 5)
    n_rel = np.diff(test.matrix.indptr)
    assert (p["over min(k, |T|)"] >= p["over k"] - 1e-12).all()
    big = n_rel >= 5
    np.testing.assert_allclose(p["over min(k, |T|)"][big], p["over k"][big])
    assert (p["over min(k, |T|)"] > p["over k"]).any()  # the fixture has users with |T| < 5 and a hit


def test_novelty_from_recommendations_by_hand() -> None:
    # Two lists: [0, 1] and [0, 2]; item 0 fills 2 of 4 slots (p = 1/2), items 1 and 2 one each (p = 1/4).
    ranking = Ranking(np.array([0, 1], np.int32), np.array([[0, 1], [0, 2]], np.int32), np.zeros((2, 2), np.float32))
    nv = le.novelty_conventions(ranking, np.array([10, 0, 30]), 2)
    np.testing.assert_allclose(nv["recommendation popularity"], [(1 + 2) / 2, (1 + 2) / 2])
    # Training: total 40; item 1 never seen counts as 1 interaction.
    np.testing.assert_allclose(nv["training popularity"][0], (-math.log2(10 / 40) - math.log2(1 / 40)) / 2)


def test_conventions_table(small_eval) -> None:
    ranking, train, test = small_eval
    table = le.conventions_table({"fusion": ranking, "other": ranking.head(3)}, test, train.item_counts(), 3)
    assert table.index.tolist() == ["fusion", "other"]
    row = table.loc["fusion"]
    expected = 100 * (row["precision (over min(k, |T|))"] - row["precision (over k)"]) / row["precision (over k)"]
    assert row["precision change %"] == pytest.approx(expected)
    assert np.isfinite(table.to_numpy(dtype=float)).all()


def test_convention_k_is_checked(small_eval) -> None:
    ranking, train, test = small_eval
    with pytest.raises(ConfigError, match="k=6"):
        le.precision_conventions(ranking, test, 6)
    with pytest.raises(ConfigError, match="k=0"):
        le.novelty_conventions(ranking, train.item_counts(), 0)


def test_pick_example_user_prefers_a_typical_user() -> None:
    n_test = np.array([1, 5, 5, 40, 4])
    n_train = np.array([50, 10, 30, 30, 31])
    pos = le.pick_example_user(n_test, n_train, seed=0)
    assert pos in (2, 4)  # 3..20 test items, history nearest the median (30)
    assert le.pick_example_user(n_test, n_train, seed=0) == pos
    with pytest.raises(ConfigError):
        le.pick_example_user(np.array([]), np.array([]))


def test_every_fusion_method_and_normaliser_has_a_formula() -> None:
    # The Learn page explains each registered method and normaliser; a new one needs its formula here.
    from reco_core.fusion import METHODS, NORMALISERS

    assert set(METHODS) <= set(le.METHOD_FORMULAS)
    assert set(NORMALISERS) <= set(le.NORMALISER_FORMULAS)


def test_rrf_accepts_a_fractional_constant() -> None:
    ex = le.rrf_example({"a": np.array([2, 1], np.float32)}, {"a": 1}, [], rrf_k=0.5, depth=2)
    assert ex.table["fused score"].tolist() == pytest.approx([1 / 1.5, 1 / 2.5])


def test_pruning_table_compares_the_two_rules_on_the_same_split() -> None:
    from reco_core import datasets, splitting
    from reco_core.experiment import evaluate_scorer
    from reco_core.models import make_model

    ds = datasets.synthetic(60, 40, 900, seed=2, min_user_interactions=8)
    split = splitting.make_split(ds.interactions, "random", test_frac=0.25, seed=1)
    ctx = EvalContext.from_train(split.train, ds.catalog)
    models = {rule: make_model("itemknn", k=5, prune=rule).fit(split.train) for rule in ("target", "source")}
    table = le.pruning_table(models, split, ctx, 5)
    assert list(table.index) == [le.PRUNE_WORDS["target"], le.PRUNE_WORDS["source"]]
    assert list(table.columns) == ["NDCG@5", "precision@5", "recall@5", "coverage@5"]
    for rule, model in models.items():
        ev = evaluate_scorer(model, split, ctx, ks=(5,))
        assert table.loc[le.PRUNE_WORDS[rule], "NDCG@5"] == ev.value("ndcg@5")
    assert table["NDCG@5"].nunique() == 2  # the rule matters on this data
