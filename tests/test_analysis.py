"""The analyses the dashboard draws (reco_core.analysis), on fixtures small enough to check by hand.

The hand-made world: six users u0..u5 where user j rated items i0..ij, so users have 1..6 training
interactions and items i0..i5 have 6, 5, 4, 3, 2, 1 (21 in all). Genres: i0 Comedy, i1 Comedy+Drama,
i2 Drama, the rest none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reco_core import analysis
from reco_core.config import FusionSpec
from reco_core.data import Interactions, ItemCatalog
from reco_core.fusion import fuse
from reco_core.live import LiveSession
from reco_core.metrics import EvalContext, Evaluation
from reco_core.ranking import Ranking, top_k
from reco_core.splitting import random_split

NEG = -np.inf


@pytest.fixture(scope="module")
def train() -> Interactions:
    rows = [(f"u{u}", f"i{i}", 1.0) for u in range(6) for i in range(u + 1)]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "value"]))


@pytest.fixture(scope="module")
def catalog(train: Interactions) -> ItemCatalog:
    titles = np.array(["Toy Story", "Heat (1995)", "Brazil", "Fargo", "Babe", "Clue"], dtype=object)
    years = np.array([1995, 1995, np.nan, 1996, 1995, 1985], dtype=float)
    genres = (("Comedy",), ("Comedy", "Drama"), ("Drama",), (), (), ())
    return ItemCatalog(train.items, titles, years, genres, titles.copy())


def ranking(items: list[list[int]]) -> Ranking:
    idx = np.array(items, dtype=np.int32)
    return Ranking(np.arange(len(idx), dtype=np.int32), idx, np.where(idx >= 0, 1.0, np.nan).astype(np.float32))


# ------------------------------------------------------------------------------------------ items in words


def test_item_titles_add_a_known_year_once_and_pad_with_empty_text(catalog: ItemCatalog) -> None:
    got = analysis.item_titles(catalog, np.array([0, 1, 2, -1, 5]))
    assert got == ["Toy Story (1995)", "Heat (1995)", "Brazil", "", "Clue (1985)"]
    assert analysis.item_titles(catalog, [[3]]) == ["Fargo (1996)"]  # any shape, read in order


def test_item_genres_are_joined_and_padding_is_empty(catalog: ItemCatalog) -> None:
    assert analysis.item_genres(catalog, np.array([1, 3, -1, 0])) == ["Comedy, Drama", "", "", "Comedy"]


# ------------------------------------------------------------------------------------------ segments


def test_activity_segments_are_terciles_of_the_given_users(train: Interactions) -> None:
    # Counts 1..6: the cuts are the 1/3 and 2/3 quantiles, 2.67 and 4.33.
    assert analysis.activity_segments(train, np.arange(6)).tolist() == [0, 0, 1, 1, 2, 2]
    assert analysis.activity_segments(train, np.array([5, 0])).tolist() == [2, 0]
    # Only users u4 and u5 (counts 5 and 6): the cuts are 5.33 and 5.67, so the middle third is empty.
    assert analysis.activity_segments(train, np.array([4, 5])).tolist() == [0, 2]
    assert analysis.activity_segments(train, np.array([], dtype=np.int64)).shape == (0,)


def test_activity_ranges(train: Interactions) -> None:
    assert analysis.activity_ranges(train, np.arange(6)) == {"light": "1-2", "medium": "3-4", "heavy": "5-6"}
    assert analysis.activity_ranges(train, np.array([4, 5])) == {"light": "5-5", "medium": "none", "heavy": "6-6"}


def test_segment_table_means_by_segment_per_series(train: Interactions) -> None:
    fused = Evaluation(np.arange(6), {"ndcg@2": np.array([0.0, 1.0, 0.2, 0.4, 1.0, 1.0])}, {"coverage@2": 0.5})
    heavy_only = Evaluation(np.array([4, 5]), {"ndcg@2": np.array([0.5, 0.25])}, {})
    other_metric = Evaluation(np.arange(6), {"recall@2": np.ones(6)}, {})
    table = analysis.segment_table(train, {"fusion": fused, "als": heavy_only, "pop": other_metric}, "ndcg@2")
    assert list(table.columns) == ["segment", "series", "value", "n"]
    assert table["series"].tolist() == ["fusion"] * 3 + ["als"] * 3  # a series without the key is left out
    assert table["segment"].tolist() == list(analysis.SEGMENTS) * 2
    assert table["value"].tolist()[:3] == pytest.approx([0.5, 0.3, 1.0])
    assert table["n"].tolist() == [2, 2, 2, 1, 0, 1]
    als = table[table["series"] == "als"]["value"].tolist()  # segments over the series' own users
    assert als[0] == 0.5 and np.isnan(als[1]) and als[2] == 0.25


# ------------------------------------------------------------------------------------------ head, tail, genres


def test_head_items_are_the_most_popular_fraction(train: Interactions) -> None:
    assert analysis.head_items(train).tolist() == [True, False, False, False, False, False]  # round(0.2 * 6) = 1
    assert analysis.head_items(train, 0.5).tolist() == [True, True, True, False, False, False]
    assert analysis.head_items(train, 0.01).sum() == 1  # at least one item


def test_head_items_break_ties_by_the_lower_item_index() -> None:
    rows = [("u0", f"i{i}", 1.0) for i in range(4)]
    flat = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "value"]))
    assert analysis.head_items(flat, 0.5).tolist() == [True, True, False, False]


def test_tail_share_per_series_and_in_training(train: Interactions) -> None:
    rankings = {"a": ranking([[0, 3], [1, -1]]), "none": ranking([[-1, -1]])}
    table = analysis.tail_share(train, rankings, head_frac=0.5)  # head: items 0, 1, 2
    assert table.index.tolist() == ["a", "none", analysis.TRAINING]
    assert table.loc["a"].tolist() == pytest.approx([2 / 3, 1 / 3])  # slots 0, 3, 1; padding left out
    assert table.loc["none"].isna().all()
    assert table.loc[analysis.TRAINING].tolist() == pytest.approx([15 / 21, 6 / 21])  # (6 + 5 + 4) / 21


def test_genre_share_per_series_and_in_training(train: Interactions, catalog: ItemCatalog) -> None:
    table = analysis.genre_share(train, catalog, {"a": ranking([[0, 3], [1, -1]])})
    assert table.index.tolist() == ["Comedy", "Drama"]
    assert table.columns.tolist() == ["a", analysis.TRAINING]
    assert table["a"].tolist() == pytest.approx([2 / 3, 1 / 3])  # slots 0, 3, 1: Comedy in 0 and 1, Drama in 1
    assert table[analysis.TRAINING].tolist() == pytest.approx([11 / 21, 9 / 21])  # (6 + 5) and (5 + 4) of 21


def test_genre_share_is_empty_without_genres(train: Interactions) -> None:
    assert analysis.genre_share(train, ItemCatalog.bare(train.items), {"a": ranking([[0]])}).empty


# ------------------------------------------------------------------------------------------ members and fusion


@pytest.fixture(scope="module")
def session(toy_interactions, toy_members) -> LiveSession:
    split = random_split(toy_interactions, 0.25, seed=1)
    return LiveSession(toy_members(split.train), split, EvalContext.from_train(split.train), top_n=20, max_k=10)


def test_member_evaluations_are_the_sessions_own(session: LiveSession) -> None:
    evs = analysis.member_evaluations(session, 5)
    assert list(evs) == ["a", "b", "pop"]
    assert all(evs[n] is session.member_evaluation(n, 5) for n in evs)


def test_metric_table_rows_are_the_fusion_then_each_member(session: LiveSession) -> None:
    result = session.update([0.5, 0.3, 0.2], k=5)
    table = analysis.metric_table(session, result, 5)
    assert table.index.tolist() == [analysis.FUSION, "a", "b", "pop"]
    assert table.loc[analysis.FUSION].to_dict() == pytest.approx(result.evaluation.values())
    assert table.loc["b"].to_dict() == pytest.approx(session.member_evaluation("b", 5).values())
    assert analysis.metric_table(session, None, 5).index.tolist() == ["a", "b", "pop"]


def test_rankings_at_cut_every_list_at_k(session: LiveSession) -> None:
    result = session.update([0.5, 0.3, 0.2], k=10)
    got = analysis.rankings_at(session, result, 3)
    assert list(got) == [analysis.FUSION, "a", "b", "pop"]
    np.testing.assert_array_equal(got[analysis.FUSION].item_idx, result.ranking.item_idx[:, :3])
    np.testing.assert_array_equal(got["pop"].item_idx, session.member_ranking("pop").item_idx[:, :3])
    assert list(analysis.rankings_at(session, None, 3)) == ["a", "b", "pop"]


def test_ablation_table_removes_one_member_at_a_time(session: LiveSession) -> None:
    spec = FusionSpec("rrf", k=5)
    keys = ["ndcg@5", "coverage@5"]
    table = analysis.ablation_table(session, [0.5, 0.3, 0.2], spec, keys)
    assert table.index.name == "without" and table.index.tolist() == ["a", "b", "pop"]
    assert table.columns.tolist() == ["ndcg@5", "change in ndcg@5", "coverage@5", "change in coverage@5"]
    full = session.apply([0.5, 0.3, 0.2], spec).evaluation
    without_b = session.apply([0.5, 0.0, 0.2], spec).evaluation
    assert table.loc["b", "ndcg@5"] == pytest.approx(without_b.value("ndcg@5"))
    assert table.loc["b", "change in ndcg@5"] == pytest.approx(without_b.value("ndcg@5") - full.value("ndcg@5"))
    # Only "a" has weight: without it nothing is left (NaN); without "b" the fusion is unchanged (change 0).
    alone = analysis.ablation_table(session, [1.0, 0.0, 0.0], spec, keys, full=full)
    assert alone.loc["a"].isna().all()
    only_a = session.apply([1.0, 0.0, 0.0], spec).evaluation
    assert alone.loc["b", "ndcg@5"] == pytest.approx(only_a.value("ndcg@5"))
    assert alone.loc["b", "change in ndcg@5"] == pytest.approx(only_a.value("ndcg@5") - full.value("ndcg@5"))


# ------------------------------------------------------------------------------------------ one user's list

# One user, five items, item 4 in the history (-inf for both). Min-max: als [1, .5, 0, .25], knn [0, 1, 2/3, -];
# the weighted sum (0.5 each) ranks item 1 (.75), item 0 (.5), item 2 (1/3). Own top-3: als 0, 1, 3; knn 1, 2, 0.
ALS = np.array([0.9, 0.5, 0.1, 0.3, NEG], dtype=np.float32)
KNN = np.array([0.2, 0.8, 0.6, np.nan, NEG], dtype=np.float32)


def view_of(method: str, k: int, top_n: int, held_out: list[int], normaliser: str = "minmax") -> analysis.UserView:
    scores = {"als": ALS, "knn": KNN}
    lists = [top_k(r[None, :], top_n) for r in scores.values()]
    blocks = [s[None, :] for s in scores.values()]
    result = fuse(blocks, lists, [0.5, 0.5], method, normaliser, k, 5, [0], top_n=top_n, member_names=list(scores))
    return analysis.UserView(7, np.array([4]), scores, result, np.array(held_out))


class _Similar:
    """A member that relates items: similarity of item t to any item is t / 10 (item 0: 0, not a reason)."""

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        return np.asarray([[t / 10 for t in to_items]], dtype=np.float32)


def test_user_view_items_and_member_lists() -> None:
    view = view_of("wsum", 3, 3, [2])
    assert view.items.tolist() == [1, 0, 2]
    assert view.member_list("als", 3).tolist() == [0, 1, 3]
    assert view.member_list("knn", 5).tolist() == [1, 2, 0, -1, -1]  # NaN and history items never listed


def test_normalised_rows() -> None:
    rows = analysis.normalised_rows(view_of("wsum", 3, 3, []), "minmax")
    np.testing.assert_allclose(rows["als"], [1.0, 0.5, 0.0, 0.25, np.nan], rtol=1e-6)
    np.testing.assert_allclose(rows["knn"], [0.0, 1.0, 2 / 3, np.nan, np.nan], rtol=1e-6)


def test_slot_table_says_who_brought_each_item_in(catalog: ItemCatalog) -> None:
    view = view_of("wsum", 3, 3, [2])
    table = analysis.slot_table(view, {"als": object(), "knn": object()}, catalog)
    columns = ["rank", "title", "genres", "held out", "brought in by", "als share", "knn share", "because you liked"]
    assert table.columns.tolist() == [*columns, "item"]
    assert table["item"].tolist() == [1, 0, 2] and table["rank"].tolist() == [1, 2, 3]
    assert table["title"].tolist() == ["Heat (1995)", "Toy Story (1995)", "Brazil"]
    assert table["held out"].tolist() == [False, False, True]
    assert table["brought in by"].tolist() == [
        "knn (67% of the score)",  # in both own lists: the larger part (.5 of .75)
        "als (100% of the score)",  # in both own lists (knn's third), all of it from als
        "knn (only in its own top-3; 100% of the score)",
    ]
    assert table["als share"].tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert table["because you liked"].tolist() == ["", "", ""]  # neither member can relate items


def test_slot_table_interleaving_and_items_in_no_top_k(catalog: ItemCatalog) -> None:
    placed = analysis.slot_table(view_of("interleave", 3, 3, [], "none"), {}, catalog)
    assert placed["brought in by"].tolist()[0] == "als (its turn in the interleaving)"
    # RRF over the top 5: item 2 is third in both lists, so it outscores each list's first (1/61 < 2/63) while in
    # neither top-2; equal contributions go to the first member.
    a = np.array([0.9, 0.8, 0.7, 0.0, 0.0], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.7, 0.9, 0.8], dtype=np.float32)
    scores = {"als": a, "knn": b}
    res = fuse([a[None, :], b[None, :]], None, [1, 1], "rrf", "none", 2, 5, [0], top_n=3, member_names=["als", "knn"])
    view = analysis.UserView(None, np.zeros(0, dtype=np.int64), scores, res, np.zeros(0, dtype=np.int64))
    table = analysis.slot_table(view, {}, catalog)
    assert table["item"].tolist() == [2, 0]
    assert table["brought in by"].tolist() == [
        "als (50% of the score; in no member's own top-2)",
        "als (only in its own top-2; 100% of the score)",
    ]


def test_slot_table_because_you_liked_asks_the_member_that_brought_the_item_first(catalog: ItemCatalog) -> None:
    scores = {"als": ALS, "knn": KNN}
    res = fuse([ALS[None, :], KNN[None, :]], None, [0.5, 0.5], "wsum", "minmax", 3, 5, [0], member_names=list(scores))
    view = analysis.UserView(None, np.array([3, 4]), scores, res, np.zeros(0, dtype=np.int64))
    # Only knn relates items: its reasons are used for every slot, named in brackets, best first.
    table = analysis.slot_table(view, {"als": object(), "knn": _Similar()}, catalog, because=1)
    assert table["because you liked"].tolist() == ["Babe (1995) (knn)"] * 3
    both = analysis.slot_table(view, {"als": object(), "knn": _Similar()}, catalog)
    assert both["because you liked"].tolist()[0] == "Babe (1995); Fargo (1996) (knn)"
