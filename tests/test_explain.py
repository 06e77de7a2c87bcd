"""Explanations: contributions per slot and member, "because you liked", list differences."""

from __future__ import annotations

import numpy as np
import pytest

from reco_core.errors import ConfigError
from reco_core.explain import because_you_liked, contributions, diff_lists, member_ranks
from reco_core.fusion import fuse
from reco_core.ranking import top_k

NEG = -np.inf
A = np.array([[0.9, 0.5, 0.1, 0.3, NEG]], dtype=np.float32)
B = np.array([[0.2, 0.8, 0.6, np.nan, NEG]], dtype=np.float32)


def test_contributions_of_a_weighted_sum() -> None:
    lists = [top_k(A, 3), top_k(B, 3)]
    res = fuse([A, B], lists, [0.5, 0.5], "wsum", "minmax", 3, 5, [0], member_names=["als", "knn"])
    df = contributions(res, 0)
    assert list(df.columns) == ["rank", "item", "member", "weight", "contribution", "share", "member_rank", "placed"]
    assert len(df) == 6
    first = df[df["rank"] == 1].set_index("member")
    # Slot 1 is item 1: als gives 0.5 * 0.5, knn 0.5 * 1 (docs/fusion.md worked example).
    assert (first["item"] == 1).all()
    assert first.loc["als", "contribution"] == pytest.approx(0.25)
    assert first.loc["knn", "contribution"] == pytest.approx(0.5)
    assert first["share"].sum() == pytest.approx(1.0)
    assert first.loc["als", "member_rank"] == 2 and first.loc["knn", "member_rank"] == 1
    third = df[df["rank"] == 3].set_index("member")  # item 2: not in als's top 3
    assert np.isnan(third.loc["als", "member_rank"]) and third.loc["als", "contribution"] == 0
    assert not df["placed"].any()


def test_contributions_without_member_lists_have_no_ranks() -> None:
    res = fuse([A, B], None, [0.5, 0.5], "wsum", "minmax", 3, 5, [0])
    assert member_ranks(res) is None
    assert contributions(res, 0)["member_rank"].isna().all()


def test_interleaving_says_who_placed_each_slot() -> None:
    res = fuse([A, B], None, [0.5, 0.5], "interleave", "none", 3, 5, [0], top_n=3)
    df = contributions(res, 0)
    placed = df[df["placed"]]
    assert placed["member"].tolist() == ["member 1", "member 2", "member 1"]
    assert placed["item"].tolist() == [0, 1, 3]
    ranks = member_ranks(res)
    assert ranks[0, 2].tolist() == [3, 0]  # item 3: A's third, not in B's list


def test_contributions_padding_and_bad_rows() -> None:
    a = np.array([[1.0, NEG, NEG]], dtype=np.float32)
    res = fuse([a, a], None, [1, 1], "wsum", "none", 3, 3, [0])
    assert contributions(res, 0)["rank"].unique().tolist() == [1]  # padded slots are left out
    with pytest.raises(ConfigError, match="user_row=1 is not valid"):
        contributions(res, 1)


# -- because you liked -----------------------------------------------------------------------------


VECTORS = np.array(
    [
        [1.0, 0.0],  # 0
        [0.8, 0.6],  # 1: cos with 0 = 0.8
        [0.0, 1.0],  # 2: cos with 0 = 0
        [-1.0, 0.0],  # 3: cos with 0 = -1
        [2.0, 0.0],  # 4: cos with 0 = 1
        [0.0, 0.0],  # 5: no direction (NaN)
    ]
)


def test_because_you_liked_with_item_vectors() -> None:
    got = because_you_liked(VECTORS, [1, 2, 3, 4, 5, 0], rec_item=0, n=3)
    assert [i for i, _ in got] == [4, 1, 2]  # the item itself and the zero vector are skipped
    assert [s for _, s in got] == pytest.approx([1.0, 0.8, 0.0])
    assert because_you_liked(VECTORS, [], 0) == []
    assert because_you_liked(VECTORS, [0], 0) == []


class _Similar:
    """Anything with similar_items counts (collaborative similarity of a model)."""

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        return np.asarray([[float(t % 3) for t in to_items]], dtype=np.float32)


class _Embedded:
    def item_embeddings(self) -> np.ndarray:
        return VECTORS.astype(np.float32)


def test_because_you_liked_uses_the_model_similarity_first() -> None:
    got = because_you_liked(_Similar(), [3, 4, 5, 8], rec_item=0, n=2)
    assert got == [(5, 2.0), (8, 2.0)]  # equal similarities: lower index first
    emb = because_you_liked(_Embedded(), [1, 3], rec_item=0, n=5)
    assert [i for i, _ in emb] == [1, 3]


def test_because_you_liked_errors() -> None:
    with pytest.raises(ConfigError, match="cannot say which items are similar"):
        because_you_liked(object(), [1], 0)
    with pytest.raises(ConfigError, match="history item index out of range"):
        because_you_liked(VECTORS, [1, 9], 0)
    with pytest.raises(ConfigError, match="rec_item index out of range"):
        because_you_liked(VECTORS, [1], 6)
    with pytest.raises(ConfigError, match="n=0 is not valid"):
        because_you_liked(VECTORS, [1], 0, n=0)


# -- before / after --------------------------------------------------------------------------------


def test_diff_lists_by_hand() -> None:
    d = diff_lists(np.array([1, 2, 3, 4]), np.array([2, 1, 5, 3]))
    assert d.entered == [5]
    assert d.left == [4]
    assert d.moved == [(2, 2, 1), (1, 1, 2), (3, 3, 4)]
    assert not d.unchanged
    same = diff_lists(np.array([7, 8, -1]), np.array([7, 8]))
    assert same.unchanged
    with pytest.raises(ConfigError, match="the after list holds an item twice"):
        diff_lists(np.array([1, 2]), np.array([1, 1]))
