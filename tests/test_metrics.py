"""Metrics: the worked example of docs/metrics.md, a slow reference implementation, properties, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reco_core.data import Interactions, ItemCatalog
from reco_core.errors import ConfigError
from reco_core.ids import IdMap
from reco_core.metrics import METRICS, EvalContext, Evaluation, evaluate, hit_matrix
from reco_core.ranking import Ranking, top_k


def interactions(lists: dict[int, list[int]], n_users: int, n_items: int) -> Interactions:
    rows = [u for u, items in lists.items() for _ in items]
    cols = [i for items in lists.values() for i in items]
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return Interactions(IdMap.from_values(range(n_users)), IdMap.from_values(range(n_items)), m)


def ranking(user_idx: list[int], lists: list[list[int]], k: int) -> Ranking:
    items = np.full((len(lists), k), -1, dtype=np.int32)
    for r, row in enumerate(lists):
        items[r, : len(row)] = row
    score = np.where(items >= 0, -np.arange(k, dtype=np.float32)[None, :], np.nan).astype(np.float32)
    return Ranking(np.asarray(user_idx, dtype=np.int32), items, score)


# ---------------------------------------------------------------------------------------------------
# The worked example (docs/metrics.md, "Worked example"): 10 items, 2 users, k = 5.

N_ITEMS = 10
POP = np.array([4, 2, 0, 1, 3, 6, 1, 3, 0, 0])  # training counts, total 20
GENRES = ["A", "AB", "", "B", "ABC", "C", "", "AC", "", "B"]
VECTORS = np.array(
    [[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6], [1, 0], [0, 1], [-1, 0], [0.6, 0.8], [1, 0], [0, 1]], dtype=np.float32
)
TEST = {0: [1, 3, 6], 1: [0]}
LISTS = [[5, 3, 7, 1, 0], [4, 2, 6, 1]]  # user 1 has only 4 rankable items: one padded slot
HISTORY = {0: [4, 8], 1: [5, 9]}  # the users' training items (not in their lists)


def genre_matrix(genres: list[str]) -> sp.csr_matrix:
    rows = [i for i, g in enumerate(genres) for _ in g]
    cols = ["ABC".index(c) for g in genres for c in g]
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(genres), 3))


@pytest.fixture
def worked() -> tuple[Ranking, Interactions, EvalContext]:
    test = interactions(TEST, 2, N_ITEMS)
    history = interactions(HISTORY, 2, N_ITEMS).matrix
    ctx = EvalContext(N_ITEMS, POP, genre_matrix(GENRES), VECTORS, history=history)
    return ranking([0, 1], LISTS, 5), test, ctx


def test_worked_example_accuracy(worked):
    rank, test, ctx = worked
    ev = evaluate(rank, test, ctx, ks=(2, 5))
    l2 = 1 / math.log2(3)  # discount at rank 2
    l4 = 1 / math.log2(5)  # discount at rank 4
    # User 0: T = {1, 3, 6}, list [5, 3, 7, 1, 0], hits at ranks 2 and 4. User 1: T = {0}, no hit.
    expected = {
        "precision@5": [2 / 5, 0],
        "recall@5": [2 / 3, 0],
        "hit_rate@5": [1, 0],
        "ndcg@5": [(l2 + l4) / (1 + l2 + 1 / 2), 0],
        "map@5": [(1 / 2 + 2 / 4) / 3, 0],
        "mrr@5": [1 / 2, 0],
        "precision@2": [1 / 2, 0],
        "recall@2": [1 / 3, 0],
        "ndcg@2": [l2 / (1 + l2), 0],
        "map@2": [(1 / 2) / 2, 0],
        "mrr@2": [1 / 2, 0],
    }
    for key, values in expected.items():
        np.testing.assert_allclose(ev.per_user[key], values, rtol=0, atol=1e-12, err_msg=key)
    # The decimals printed in docs/metrics.md.
    assert round(ev.per_user["ndcg@5"][0], 6) == 0.498189
    assert round(ev.per_user["ndcg@2"][0], 6) == 0.386853
    assert round(ev.per_user["map@5"][0], 6) == 0.333333


def test_worked_example_beyond_accuracy(worked):
    rank, test, ctx = worked
    ev = evaluate(rank, test, ctx, ks=(2, 5))
    bits = [math.log2(20 / max(c, 1)) for c in POP]  # -log2 p_i, unseen items count as 1 interaction
    np.testing.assert_allclose(
        ev.per_user["novelty@5"], [np.mean([bits[i] for i in LISTS[0]]), np.mean([bits[i] for i in LISTS[1]])]
    )
    assert round(ev.per_user["novelty@5"][0], 6) == 2.887943
    assert round(ev.per_user["novelty@5"][1], 6) == 3.675687
    np.testing.assert_allclose(ev.per_user["arp@5"], [16 / 5, 6 / 4])
    # Genre distances: user 0 sums to 23/3 over 10 pairs; user 1 to 13/3 over 6 pairs (items 2 and 6
    # both have no genre: distance 0).
    np.testing.assert_allclose(ev.per_user["ild_genre@5"], [23 / 30, 13 / 18], atol=1e-12)
    np.testing.assert_allclose(ev.per_user["ild_text@5"], [1 - 6.16 / 10, 1 + 0.2 / 6], atol=1e-6)
    np.testing.assert_allclose(ev.per_user["ild_text@2"], [0.4, 0.4], atol=1e-6)
    assert ev.global_values["coverage@5"] == pytest.approx(0.8)
    assert ev.global_values["gini@5"] == pytest.approx(25 / 90)
    assert ev.global_values["personalisation@5"] == pytest.approx(1 - 1 / 8)
    assert ev.global_values["coverage@2"] == pytest.approx(0.4)
    assert ev.global_values["gini@2"] == pytest.approx(24 / 40)
    assert ev.global_values["personalisation@2"] == pytest.approx(1.0)


def test_worked_example_popularity_and_calibration(worked):
    rank, test, ctx = worked
    ev = evaluate(rank, test, ctx, ks=(2, 5))
    # Popularity order 5, 0, 4, 7, 1, 3, 6, 2, 8, 9: the head (20% of 10 items) is {5, 0}.
    np.testing.assert_allclose(ev.per_user["long_tail_share@5"], [3 / 5, 1.0], atol=1e-12)
    np.testing.assert_allclose(ev.per_user["long_tail_share@2"], [1 / 2, 1.0], atol=1e-12)
    # Consumed ARP 1.5 and 3, offered 3.2 and 1.5 (k = 5), 3.5 and 1.5 (k = 2).
    np.testing.assert_allclose(ev.per_user["pop_gap@5"], [(3.2 - 1.5) / 1.5, -0.5], atol=1e-12)
    np.testing.assert_allclose(ev.per_user["pop_gap@2"], [(3.5 - 1.5) / 1.5, -0.5], atol=1e-12)
    # POP_0@5 = {5, 0, 7, 1, 3} holds both hits; POP_0@2 = {5, 0} misses the hit at rank 2.
    np.testing.assert_allclose(ev.per_user["serendipity@5"], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(ev.per_user["serendipity@2"], [0.5, 0.0], atol=1e-12)
    q0 = np.array([0.4, 0.3, 0.3]) * 0.99 + 0.01 / 3
    mc0 = sum(1 / 3 * math.log((1 / 3) / q) for q in q0)
    q1 = np.array([5 / 12, 5 / 12, 1 / 6]) * 0.99 + 0.01 * np.array([0, 0.5, 0.5])
    mc1 = 0.5 * math.log(0.5 / q1[1]) + 0.5 * math.log(0.5 / q1[2])
    np.testing.assert_allclose(ev.per_user["miscalibration@5"], [mc0, mc1], atol=1e-12)
    assert round(mc0, 6) == 0.009282 and round(mc1, 6) == 0.629567  # the decimals in docs/metrics.md
    # Without histories the three history metrics are skipped with a note; asked for by name, refused.
    plain = evaluate(rank, test, EvalContext(N_ITEMS, POP, genre_matrix(GENRES)), ks=(5,))
    assert "pop_gap@5" not in plain.per_user and "long_tail_share@5" in plain.per_user
    assert any("serendipity skipped" in n for n in plain.notes)
    with pytest.raises(ConfigError, match="needs genres and history"):
        evaluate(rank, test, EvalContext(N_ITEMS, POP, genre_matrix(GENRES)), metrics=["miscalibration"], ks=(5,))


def test_long_tail_head_is_checked_and_moves_the_head(worked):
    rank, test, _ = worked
    with pytest.raises(ConfigError, match="long_tail_head"):
        EvalContext(N_ITEMS, POP, long_tail_head=1.5)
    wide = evaluate(rank, test, EvalContext(N_ITEMS, POP, long_tail_head=0.5), ks=(5,))  # head {5, 0, 4, 7, 1}
    np.testing.assert_allclose(wide.per_user["long_tail_share@5"], [1 / 5, 2 / 4], atol=1e-12)


def test_hit_matrix_marks_test_items_and_never_padding(worked):
    rank, test, _ = worked
    expected = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(hit_matrix(rank, test), expected)
    # Padding never hits, even for a user whose test set is non-empty.
    padded = Ranking(np.array([0], np.int32), np.array([[-1, 1]], np.int32), np.array([[np.nan, 1]], np.float32))
    np.testing.assert_array_equal(hit_matrix(padded, test), [[False, True]])


# ---------------------------------------------------------------------------------------------------
# A slow, obviously-correct reference, compared with evaluate() on random instances.


def reference(lists, tests, pop, genres, vectors, k):
    # docs/metrics.md: the total counts at least one interaction, so a training part in which no item was
    # ever seen gives p_i = 1 (novelty 0) rather than a division by zero.
    total = max(int(sum(pop)), 1)
    out = {m: [] for m in ("precision", "recall", "hit_rate", "ndcg", "map", "mrr", "novelty", "arp", "ild_genre")}
    out["ild_text"] = []
    for items, t in zip(lists, tests, strict=True):
        top = [x for x in items[:k]]
        rel = [1 if (x >= 0 and x in t) else 0 for x in top] + [0] * (k - len(top))
        valid = [x for x in top if x >= 0]
        out["precision"].append(sum(rel) / k)
        out["recall"].append(sum(rel) / len(t))
        out["hit_rate"].append(float(sum(rel) > 0))
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(t), k)))
        out["ndcg"].append(dcg / idcg)
        ap = sum(sum(rel[: i + 1]) / (i + 1) for i, r in enumerate(rel) if r)
        out["map"].append(ap / min(len(t), k))
        out["mrr"].append(next((1 / (i + 1) for i, r in enumerate(rel) if r), 0.0))
        out["novelty"].append(np.mean([-math.log2(max(pop[x], 1) / total) for x in valid]) if valid else 0.0)
        out["arp"].append(np.mean([pop[x] for x in valid]) if valid else 0.0)
        pairs = list(itertools.combinations(valid, 2))
        gd, td = [], []
        for a, b in pairs:
            ga, gb = genres[a], genres[b]
            gd.append(0.0 if not (ga | gb) else 1 - len(ga & gb) / len(ga | gb))
            td.append(1 - float(np.dot(vectors[a].astype(np.float64), vectors[b].astype(np.float64))))
        out["ild_genre"].append(np.mean(gd) if pairs else 0.0)
        out["ild_text"].append(np.mean(td) if pairs else 0.0)
    return out


def reference_global(lists, n_items, k):
    counts = np.zeros(n_items)
    sets = []
    for items in lists:
        s = {x for x in items[:k] if x >= 0}
        sets.append(s)
        for x in s:
            counts[x] += 1
    c = np.sort(counts)
    n = n_items
    gini = sum((2 * (i + 1) - n - 1) * c[i] for i in range(n)) / (n * c.sum()) if c.sum() else float("nan")
    jac = [len(a & b) / len(a | b) if (a | b) else 1.0 for a, b in itertools.combinations(sets, 2)]
    return {
        "coverage": float((counts > 0).sum() / n_items),
        "gini": gini,
        "personalisation": 1 - float(np.mean(jac)) if jac else float("nan"),
    }


@st.composite
def instances(draw):
    n_items = draw(st.integers(3, 25))
    n_users = draw(st.integers(1, 7))
    k = draw(st.integers(1, n_items))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    tests, lists = [], []
    for _ in range(n_users):
        tests.append(set(rng.choice(n_items, size=rng.integers(1, n_items + 1), replace=False).tolist()))
        length = int(rng.integers(0, k + 1))
        lists.append(rng.choice(n_items, size=length, replace=False).tolist())
    pop = rng.integers(0, 5, n_items)
    genres = [set(np.flatnonzero(rng.random(4) < 0.4).tolist()) for _ in range(n_items)]
    vectors = rng.standard_normal((n_items, 3)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return n_items, k, tests, lists, pop, genres, vectors


def build(n_items, k, tests, lists, pop, genres, vectors):
    n_users = len(tests)
    test = interactions({u: sorted(t) for u, t in enumerate(tests)}, n_users, n_items)
    rows = [i for i, g in enumerate(genres) for _ in g]
    cols = [j for g in genres for j in sorted(g)]
    g = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_items, 4))
    ctx = EvalContext(n_items, pop, g, vectors)
    return ranking(list(range(n_users)), lists, k), test, ctx


def _unit_rows(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# Found by a random run: every training count 0 (the reference divided by a zero total).
ALL_COUNTS_ZERO = (
    3,
    2,
    [{0, 2}, {1}],
    [[0, 1], [2]],
    np.zeros(3, dtype=np.int64),
    [set(), {1}, {0, 1}],
    _unit_rows([[1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]]),
)


@settings(max_examples=60, deadline=None)
@given(instances())
@example(ALL_COUNTS_ZERO)
def test_evaluate_matches_reference(inst):
    n_items, k, tests, lists, pop, genres, vectors = inst
    rank, test, ctx = build(*inst)
    ev = evaluate(rank, test, ctx, ks=(k,))
    ref = reference(lists, tests, pop, genres, vectors, k)
    for name, values in ref.items():
        tol = 1e-6 if name == "ild_text" else 1e-12  # float32 vector sums
        np.testing.assert_allclose(ev.per_user[f"{name}@{k}"], values, rtol=0, atol=tol, err_msg=name)
    for name, value in reference_global(lists, n_items, k).items():
        np.testing.assert_allclose(ev.global_values[f"{name}@{k}"], value, rtol=0, atol=1e-12, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_bounded_metrics_stay_in_range(inst):
    rank, test, ctx = build(*inst)
    ev = evaluate(rank, test, ctx, ks=(rank.k,))
    for key, values in ev.per_user.items():
        name = key.split("@")[0]
        upper = {"ild_text": 2.0, "novelty": np.inf, "arp": np.inf}.get(name, 1.0)
        assert np.all((values >= 0) & (values <= upper + 1e-9)), key
    for key, value in ev.global_values.items():
        assert np.isnan(value) or 0 <= value <= 1, key


@settings(max_examples=60, deadline=None)
@given(instances())
def test_ks_in_one_pass_equal_separate_evaluations(inst):
    rank, test, ctx = build(*inst)
    ks = sorted({1, max(1, rank.k // 2), rank.k})
    together = evaluate(rank, test, ctx, ks=ks)
    for k in ks:
        alone = evaluate(rank.head(k), test, ctx, ks=(k,))
        for key, values in alone.per_user.items():
            np.testing.assert_array_equal(together.per_user[key], values)
        for key, value in alone.global_values.items():
            np.testing.assert_equal(together.global_values[key], value)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 1000))
def test_a_perfect_list_scores_one(n_test, k, seed):
    n_items = 40
    rng = np.random.default_rng(seed)
    t = rng.choice(n_items, size=n_test, replace=False)
    others = np.setdiff1d(np.arange(n_items), t)
    items = np.concatenate([t, others])[:k].tolist()
    test = interactions({0: t.tolist()}, 1, n_items)
    ev = evaluate(ranking([0], [items], k), test, EvalContext(n_items, np.ones(n_items)), ks=(k,))
    for name in ("ndcg", "map", "mrr", "hit_rate"):
        assert ev.per_user[f"{name}@{k}"][0] == pytest.approx(1.0, abs=1e-12)
    if n_test >= k:
        assert ev.per_user[f"precision@{k}"][0] == pytest.approx(1.0)
    if n_test <= k:
        assert ev.per_user[f"recall@{k}"][0] == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10), st.integers(1, 10), st.integers(0, 1000))
def test_no_hits_scores_zero(n_test, k, seed):
    n_items = 30
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_items)
    t, items = perm[:n_test], perm[n_test : n_test + k]
    test = interactions({0: t.tolist()}, 1, n_items)
    ev = evaluate(ranking([0], [items.tolist()], k), test, EvalContext(n_items, np.ones(n_items)), ks=(k,))
    for name in ("precision", "recall", "hit_rate", "ndcg", "map", "mrr"):
        assert ev.per_user[f"{name}@{k}"][0] == 0.0


# ---------------------------------------------------------------------------------------------------
# Conventions


def test_users_without_test_items_are_left_out_and_counted(worked):
    *_, ctx = worked
    test3 = interactions(TEST, 3, N_ITEMS)  # user 2 has nothing held out
    rank = ranking([0, 2, 1], [LISTS[0], [9, 8], LISTS[1]], 5)
    ev = evaluate(rank, test3, ctx, ks=(5,))
    np.testing.assert_array_equal(ev.user_idx, [0, 1])
    assert ev.n_users_without_test == 1
    assert any("1 ranked users without test items" in note for note in ev.notes)
    # Global metrics use only the evaluated users' lists: items 8 and 9 are not covered.
    assert ev.global_values["coverage@5"] == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="none of the 1 ranked users"):
        evaluate(ranking([2], [[9, 8]], 2), test3, ctx, ks=(2,))


def test_personalisation_sampling_is_seeded_and_exact_on_extremes():
    n_users, n_items, k = 40, 50, 5
    test = interactions({u: [u % n_items] for u in range(n_users)}, n_users, n_items)
    rng = np.random.default_rng(3)
    lists = [rng.choice(n_items, size=k, replace=False).tolist() for _ in range(n_users)]
    small = EvalContext(n_items, np.ones(n_items), personalisation_pairs=50, seed=1)  # 780 pairs > 50: sampled
    a = evaluate(ranking(range(n_users), lists, k), test, small, metrics=["personalisation"], ks=(k,))
    b = evaluate(ranking(range(n_users), lists, k), test, small, metrics=["personalisation"], ks=(k,))
    assert a.global_values == b.global_values
    exact = evaluate(ranking(range(n_users), lists, k), test, EvalContext(n_items, np.ones(n_items)), ks=(k,))
    assert exact.global_values["personalisation@5"] == pytest.approx(
        reference_global(lists, n_items, k)["personalisation"], abs=1e-12
    )
    assert a.global_values["personalisation@5"] == pytest.approx(exact.global_values["personalisation@5"], abs=0.05)
    same = evaluate(ranking(range(n_users), [[1, 2, 3]] * n_users, 3), test, small, ks=(3,))
    assert same.global_values["personalisation@3"] == 0.0
    disjoint = [[5 * (u % 10) + j for j in range(5)] for u in range(10)]
    apart = evaluate(ranking(range(10), disjoint, 5), test, small, ks=(5,))
    assert apart.global_values["personalisation@5"] == 1.0


def test_context_from_train_uses_counts_and_genres():
    train = interactions({0: [0, 1], 1: [1, 2]}, 2, 4)
    ids = train.items
    catalog = ItemCatalog(
        ids,
        np.array(["a", "b", "c", "d"], dtype=object),
        np.full(4, np.nan),
        (("Drama",), ("Drama", "War"), (), ("Comedy",)),
        np.array(["a", "b", "c", "d"], dtype=object),
    )
    ctx = EvalContext.from_train(train, catalog)
    np.testing.assert_array_equal(ctx.item_popularity, [1, 2, 1, 0])
    assert ctx.item_genres.shape == (4, 3)
    bare = EvalContext.from_train(train, ItemCatalog.bare(ids))
    assert bare.item_genres is None  # a catalogue without genres: ild_genre is skipped, with a note
    ev = evaluate(ranking([0, 1], [[2, 3], [0, 3]], 2), train, bare, ks=(2,))
    assert "ild_genre@2" not in ev.per_user and "ild_text@2" not in ev.per_user
    assert any("ild_genre skipped" in n for n in ev.notes) and any("ild_text skipped" in n for n in ev.notes)


def test_item_vectors_are_renormalised():
    ctx = EvalContext(2, np.ones(2), item_vectors=np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(ctx.item_vectors, [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)


# ---------------------------------------------------------------------------------------------------
# Evaluation object


def test_evaluation_values_summary_and_subset(worked):
    rank, test, ctx = worked
    ev = evaluate(rank, test, ctx, ks=(5,))
    assert ev.value("precision@5") == pytest.approx(0.2)
    assert ev.value("coverage@5") == pytest.approx(0.8)
    values = ev.values()
    assert list(values)[:6] == ["precision@5", "recall@5", "hit_rate@5", "ndcg@5", "map@5", "mrr@5"]
    assert set(values) == {f"{m}@5" for m in METRICS}
    with pytest.raises(ConfigError, match="known keys are precision@5"):
        ev.value("ndcg@20")
    table = ev.summary(n_boot=200, seed=0)
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high"]
    row = table.set_index("metric").loc["precision@5"]
    assert row.ci_low <= row.value <= row.ci_high
    assert table.set_index("metric").loc["gini@5"][["ci_low", "ci_high"]].isna().all()
    assert table.equals(ev.summary(n_boot=200, seed=0))
    seg = ev.subset(np.array([True, False]))
    assert isinstance(seg, Evaluation) and seg.global_values == {}
    np.testing.assert_array_equal(seg.user_idx, [0])
    assert seg.value("precision@5") == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="boolean array of length 2"):
        ev.subset(np.array([0, 1]))


def test_metric_specs_are_complete():
    assert list(METRICS) == [
        "precision",
        "recall",
        "hit_rate",
        "ndcg",
        "map",
        "mrr",
        "coverage",
        "gini",
        "ild_genre",
        "ild_text",
        "novelty",
        "arp",
        "long_tail_share",
        "pop_gap",
        "miscalibration",
        "serendipity",
        "personalisation",
    ]
    assert {m for m, s in METRICS.items() if s.scope == "global"} == {"coverage", "gini", "personalisation"}
    assert all(s.formula and s.description and s.label for s in METRICS.values())


def test_top_k_rankings_evaluate_end_to_end():
    train = interactions({0: [0, 1], 1: [2]}, 2, 6)
    test = interactions({0: [2, 3], 1: [0]}, 2, 6)
    scores = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5]], dtype=np.float32)
    rank = top_k(scores, 3, np.array([0, 1]), exclude=train.matrix)
    ev = evaluate(rank, test, EvalContext.from_train(train), ks=(1, 3), metrics=["precision", "recall"])
    np.testing.assert_allclose(ev.per_user["precision@1"], [1, 0])
    np.testing.assert_allclose(ev.per_user["recall@3"], [1, 0])


# ---------------------------------------------------------------------------------------------------
# Errors name the argument and the fix


def test_bad_arguments_raise_config_errors(worked):
    rank, test, ctx = worked
    with pytest.raises(ConfigError, match="k=6 is larger than the ranking's list length 5"):
        evaluate(rank, test, ctx, ks=(6,))
    with pytest.raises(ConfigError, match="k=0 is not valid"):
        evaluate(rank, test, ctx, ks=(0,))
    with pytest.raises(ConfigError, match="ks is empty"):
        evaluate(rank, test, ctx, ks=())
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        evaluate(rank, test, ctx, metrics=["auc"], ks=(5,))
    with pytest.raises(ConfigError, match="needs item_vectors"):
        evaluate(rank, test, EvalContext(N_ITEMS, POP), metrics=["ild_text"], ks=(5,))
    with pytest.raises(ConfigError, match="EvalContext is for 9 items"):
        evaluate(rank, test, EvalContext(9, POP[:9]), ks=(5,))
    dup = ranking([0], [[1, 2, 1]], 3)
    with pytest.raises(ConfigError, match="lists item index 1 more than once"):
        evaluate(dup, test, ctx, ks=(3,))
    with pytest.raises(ConfigError, match="item index 10, outside the 10 catalogue items"):
        evaluate(ranking([0], [[10]], 1), test, ctx, ks=(1,))
    with pytest.raises(ConfigError, match="user index 5, outside the 2 users"):
        evaluate(ranking([5], [[1]], 1), test, ctx, ks=(1,))
    with pytest.raises(ConfigError, match="item_popularity must be 10"):
        EvalContext(N_ITEMS, POP[:3])
    with pytest.raises(ConfigError, match="item_genres has 3 rows"):
        EvalContext(N_ITEMS, POP, genre_matrix(GENRES[:3]))
    with pytest.raises(ConfigError, match="item_vectors contain NaN"):
        EvalContext(2, np.ones(2), item_vectors=np.array([[np.nan, 1.0], [1.0, 0.0]]))
