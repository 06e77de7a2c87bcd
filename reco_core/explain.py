"""Explanations of a fused list: who contributed what, "because you liked", and list differences.

* :func:`contributions`: for one user of a :class:`~reco_core.fusion.FusionResult`, one row per
  (slot, member) with the member's weight, its part of the fused score, its rank of the item in its own
  top-N list, and (interleaving) whether it placed the slot.
* :func:`because_you_liked`: the history items most similar to a recommended one, by the model's own
  item-item similarity (``SimilarItems``), its item embeddings (``HasEmbeddings``) or given item
  vectors (cosine, e.g. text embeddings).
* :func:`diff_lists`: a user's list before and after a change: items that entered, left, and moved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reco_core.checks import check_whole
from reco_core.errors import ConfigError
from reco_core.fusion import FusionResult
from reco_core.models.base import HasEmbeddings, SimilarItems

__all__ = ["ListDiff", "because_you_liked", "contributions", "diff_lists", "member_ranks"]


def member_ranks(result: FusionResult) -> np.ndarray | None:
    """int32 [n, k, m]: 1-based rank of each fused item in each member's top-N list, 0 when it is not
    listed; None when the fusion had no member lists (wsum fused from score blocks only)."""
    if result.member_rankings is None:
        return None
    items = result.ranking.item_idx
    out = np.zeros((*items.shape, result.n_members), dtype=np.int32)
    for j, r in enumerate(result.member_rankings):
        if r is None:  # a zero-weight member whose list was never made
            continue
        eq = items[:, :, None] == r.item_idx[:, None, :]
        hit = eq.any(axis=2) & (items >= 0)
        out[:, :, j] = np.where(hit, eq.argmax(axis=2) + 1, 0)
    return out


def contributions(result: FusionResult, user_row: int) -> pd.DataFrame:
    """One row per (slot, member) for the user in row ``user_row`` of the result.

    Columns: rank (1-based slot), item (index), member, weight (normalised to sum 1), contribution (the
    member's part of the fused score, see FusionResult), share (contribution / the slot's total, NaN when
    the total is 0), member_rank (rank of the item in the member's top-N, NaN when unlisted or unknown),
    placed (this member placed the slot: interleaving only, otherwise False). Padding slots are left out.
    """
    n = len(result.ranking)
    if isinstance(user_row, bool) or not isinstance(user_row, (int, np.integer)) or not 0 <= user_row < n:
        raise ConfigError(f"user_row={user_row!r} is not valid: give a row between 0 and {n - 1}")
    items = result.ranking.item_idx[user_row]
    contrib = result.contributions[user_row].astype(np.float64)  # [k, m]
    ranks = member_ranks(result)
    m = result.n_members
    rows = []
    for slot in np.flatnonzero(items >= 0):
        total = float(contrib[slot].sum())
        for j in range(m):
            c = float(contrib[slot, j])
            r = int(ranks[user_row, slot, j]) if ranks is not None else 0
            rows.append(
                {
                    "rank": int(slot) + 1,
                    "item": int(items[slot]),
                    "member": result.member_names[j],
                    "weight": float(result.weights[j]),
                    "contribution": c,
                    "share": c / total if total != 0 else float("nan"),
                    "member_rank": float(r) if r > 0 else float("nan"),
                    "placed": bool(result.placed_by is not None and result.placed_by[user_row, slot] == j),
                }
            )
    columns = ["rank", "item", "member", "weight", "contribution", "share", "member_rank", "placed"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------------
# "Because you liked"
# --------------------------------------------------------------------------------------------------


def _cosine(vectors: np.ndarray, item: int, to_items: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    a = v[item]
    b = v[to_items]
    denom = np.linalg.norm(a) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, b @ a / np.where(denom > 0, denom, 1.0), np.nan)


def _n_items_of(source: Any) -> int | None:
    if isinstance(source, np.ndarray):
        return source.shape[0]
    train = getattr(source, "train", None)
    return train.n_items if train is not None else None


# How each kind of source gives similarities of one item to several: checked in order, first match wins
# (a model's own similarity before its embeddings).
_SIMILARITY: tuple[tuple[Callable[[Any], bool], Callable[[Any, int, np.ndarray], np.ndarray]], ...] = (
    (
        lambda s: isinstance(s, np.ndarray),
        lambda s, item, hist: _cosine(s, item, hist),
    ),
    (
        lambda s: isinstance(s, SimilarItems),
        lambda s, item, hist: np.asarray(s.similar_items(np.array([item]), hist), dtype=np.float64).reshape(-1),
    ),
    (
        lambda s: isinstance(s, HasEmbeddings),
        lambda s, item, hist: _cosine(s.item_embeddings(), item, hist),
    ),
)


def because_you_liked(source: Any, history_items: np.ndarray, rec_item: int, n: int = 3) -> list[tuple[int, float]]:
    """The ``n`` history items most similar to ``rec_item``: [(item index, similarity)], best first.

    ``source``: a fitted model with ``similar_items`` (collaborative item similarity) or
    ``item_embeddings``, or an item-vector array [n_items, dim] (cosine, e.g. text embeddings). The
    recommended item itself and items with NaN similarity are skipped; equal similarities go to the
    lower item index. An empty history gives an empty list.
    """
    check_whole(n, "n")
    way = next((fn for test, fn in _SIMILARITY if test(source)), None)
    if way is None:
        raise ConfigError(
            f"{type(source).__name__} cannot say which items are similar: give a model with similar_items or "
            "item_embeddings, or an item-vector array"
        )
    n_items = _n_items_of(source)
    hist = np.unique(np.asarray(history_items, dtype=np.int64).reshape(-1))
    rec = int(rec_item)
    for what, idx in (("rec_item", np.array([rec])), ("history item", hist)):
        if n_items is not None and idx.size and (idx.min() < 0 or idx.max() >= n_items):
            raise ConfigError(f"{what} index out of range: indices must be in 0..{n_items - 1}")
    hist = hist[hist != rec]
    if hist.size == 0:
        return []
    sims = np.asarray(way(source, rec, hist), dtype=np.float64)
    ok = np.isfinite(sims)
    hist, sims = hist[ok], sims[ok]
    order = np.lexsort((hist, -sims))[:n]
    return [(int(hist[i]), float(sims[i])) for i in order]


# --------------------------------------------------------------------------------------------------
# Before / after
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListDiff:
    """``entered``/``left``: items (in list order of after/before); ``moved``: (item, old_rank, new_rank),
    1-based, for items in both lists at different ranks, in the order of the new list."""

    entered: list[int]
    left: list[int]
    moved: list[tuple[int, int, int]]

    @property
    def unchanged(self) -> bool:
        return not (self.entered or self.left or self.moved)


def diff_lists(before: np.ndarray, after: np.ndarray) -> ListDiff:
    """Compare one user's list before and after a change (padding -1 ignored)."""
    b = [int(x) for x in np.asarray(before).reshape(-1) if x >= 0]
    a = [int(x) for x in np.asarray(after).reshape(-1) if x >= 0]
    for name, lst in (("before", b), ("after", a)):
        if len(set(lst)) != len(lst):
            raise ConfigError(f"the {name} list holds an item twice: give one user's ranked list")
    old = {item: r + 1 for r, item in enumerate(b)}
    new = {item: r + 1 for r, item in enumerate(a)}
    entered = [x for x in a if x not in old]
    left = [x for x in b if x not in new]
    moved = [(x, old[x], new[x]) for x in a if x in old and old[x] != new[x]]
    return ListDiff(entered, left, moved)
