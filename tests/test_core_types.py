"""IdMap, Interactions and top_k: the types everything else trusts."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reco_core.data import Interactions, ItemCatalog, LoadReport, UserTable, item_text
from reco_core.errors import ConfigError, DataError, UnknownIdError
from reco_core.ids import IdMap
from reco_core.ranking import Ranking, top_k


def test_idmap_orders_numeric_ids_numerically_and_round_trips():
    m = IdMap.from_values([10, 2, "2", 1])
    assert list(m.ids) == ["1", "2", "10"]
    assert list(m.index_of([10, "1"])) == [2, 0]
    assert list(m.ids_of([1, -1])) == ["2", None]


def test_idmap_unknown_id_names_the_id():
    m = IdMap.from_values(["a", "b"])
    with pytest.raises(UnknownIdError, match="unknown user 'zz'"):
        m.index_of(["a", "zz"], what="user")
    assert list(m.index_of(["zz", "b"], missing="mask")) == [-1, 1]


def test_idmap_equality_and_hash_follow_the_ids():
    a = IdMap.from_values(["b", "a", "c"])
    same = IdMap.from_values(["c", "b", "a", "a"])  # another object, same sorted ids
    assert a is not same and a == same
    assert (a != same) is False
    assert hash(a) == hash(same) and a.fingerprint == same.fingerprint
    assert len({a, same}) == 1 and {a: 1}[same] == 1
    # Same ids in another order: index i means another id, so the maps differ.
    reordered = IdMap(np.array(["c", "b", "a"], dtype=object))
    assert a != reordered and a.fingerprint != reordered.fingerprint
    assert a != IdMap.from_values(["a", "b"])  # fewer ids
    assert a != IdMap.from_values(["a", "b", "d"])  # other content
    assert IdMap.from_values(["a,b"]) != IdMap.from_values(["a", "b"])  # ids are not joined ambiguously
    # ids are strings: "1" and the integer 1 look up differently, so they do not compare equal.
    assert IdMap(np.array(["1", "2"], dtype=object)) != IdMap(np.array([1, 2], dtype=object))
    assert IdMap(np.array([np.str_("a")], dtype=object)) == IdMap.from_values(["a"])
    assert IdMap.from_values([]) == IdMap.from_values([])
    assert a != list(a.ids) and a != "a"


@given(st.lists(st.text(max_size=4), max_size=8), st.randoms(use_true_random=False))
@settings(max_examples=50, deadline=None)
def test_idmap_equal_iff_same_ids_in_order(values, rnd):
    a = IdMap.from_values(values)
    shuffled = list(values)
    rnd.shuffle(shuffled)
    b = IdMap.from_values(shuffled)  # from_values sorts, so the order given does not matter
    assert a == b and hash(a) == hash(b)
    if len(a) > 1:
        assert IdMap(a.ids[::-1].copy()) != a  # same ids, another order


def _frame():
    return pd.DataFrame(
        {"user": ["u1", "u1", "u2"], "item": ["i1", "i2", "i2"], "value": [5.0, 3.0, 4.0], "timestamp": [0, 10, 20]}
    )


def test_interactions_from_frame_round_trip_keeps_zero_timestamp():
    inter = Interactions.from_frame(_frame())
    assert inter.matrix.shape == (2, 2) and inter.nnz == 3
    back = inter.to_frame().sort_values(["user", "item"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, _frame().astype({"value": float, "timestamp": float}), check_dtype=False)
    assert list(inter.item_counts()) == [1, 2]
    assert list(inter.user_counts()) == [2, 1]


def test_interactions_refuse_duplicates_and_nan():
    dup = pd.concat([_frame(), _frame().iloc[:1]])
    with pytest.raises(DataError, match="duplicate"):
        Interactions.from_frame(dup)
    bad = _frame().assign(value=[1.0, np.nan, 2.0])
    with pytest.raises(DataError, match="finite"):
        Interactions.from_frame(bad)


def test_broken_data_types_raise_data_error():
    users, items = IdMap.from_values(["u1", "u2"]), IdMap.from_values(["i1"])
    good = sp.csr_matrix(np.ones((2, 1), dtype=np.float32))
    with pytest.raises(DataError, match="must be CSR"):
        Interactions(users, items, sp.coo_matrix(good))
    with pytest.raises(DataError, match="float32"):
        Interactions(users, items, good.astype(np.float64))
    with pytest.raises(DataError, match=r"matrix shape \(1, 1\)"):
        Interactions(users, items, good[:1])
    with pytest.raises(DataError, match="non-finite"):
        Interactions(users, items, sp.csr_matrix(np.array([[np.nan], [1]], dtype=np.float32)))
    with pytest.raises(DataError, match="timestamps"):
        Interactions(users, items, good, sp.csr_matrix(np.ones((1, 1))))
    with pytest.raises(DataError, match="no column 'value'"):
        Interactions.from_frame(_frame().drop(columns="value"))
    with pytest.raises(DataError, match="one entry per item"):
        ItemCatalog(items, np.array(["A", "B"], object), np.array([np.nan]), ((),), np.array(["A"], object))
    with pytest.raises(DataError, match="one row per user"):
        UserTable(users, pd.DataFrame({"age": [30]}))


def test_item_text_and_genre_matrix():
    assert item_text("Toy Story", 1995.0, ("Animation", "Comedy")) == "Toy Story (1995). Genres: Animation, Comedy"
    assert item_text("Heat (1995)", 1995.0, ()) == "Heat (1995)"
    items = IdMap.from_values(["a", "b"])
    cat = ItemCatalog(
        items,
        np.array(["A", "B"], object),
        np.array([np.nan, 2000.0]),
        (("x",), ("x", "y")),
        np.array(["A", "B"], object),
    )
    assert cat.genre_names == ["x", "y"]
    assert cat.genre_matrix().toarray().tolist() == [[1, 0], [1, 1]]


def test_load_report_balances():
    r = LoadReport(source="f.csv", rows_read=10, rows_kept=7, duplicates_merged=1)
    r.drop("rating below threshold", 2)
    assert r.balanced() and "2 dropped: rating below threshold" in r.summary()


def test_top_k_excludes_training_items_breaks_ties_by_index_and_pads():
    scores = np.array([[0.5, 0.9, 0.9, np.nan], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0], [1, 0, 1, 1]], dtype=np.float32))
    r = top_k(scores, 3, np.array([0, 1]), exclude=exclude)
    assert r.item_idx.tolist() == [[1, 2, 0], [1, -1, -1]]
    assert np.isnan(r.score[1, 1:]).all() and r.score[0, 0] == pytest.approx(0.9)


def test_ranking_concat_joins_blocks_end_to_end_as_one_top_k():
    rng = np.random.default_rng(3)
    scores = rng.random((5, 8)).astype(np.float32)
    users = np.array([4, 0, 2, 3, 1])
    whole = top_k(scores, 3, users)
    joined = Ranking.concat([top_k(scores[:2], 3, users[:2]), top_k(scores[2:], 3, users[2:])])
    assert joined.user_idx.tolist() == users.tolist()
    assert joined.item_idx.tolist() == whole.item_idx.tolist()
    np.testing.assert_array_equal(joined.score, whole.score)


def test_top_k_rejects_bad_k():
    s = np.zeros((1, 3), np.float32)
    with pytest.raises(ConfigError, match="larger than the catalogue"):
        top_k(s, 4)
    with pytest.raises(ConfigError, match="at least 1"):
        top_k(s, 0)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(2, 30), st.integers(0, 10_000))
def test_top_k_matches_a_stable_sort(n, n_items, seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(n, n_items)).astype(np.float32)  # many ties on purpose
    k = int(rng.integers(1, n_items + 1))
    r = top_k(scores, k)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    assert r.item_idx.tolist() == expected.tolist()
