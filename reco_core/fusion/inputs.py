"""What every fusion method is given and returns, and the candidate sets the list methods score.

:class:`_Inputs` holds only the positively weighted members, their weights summing to 1 (``core._prepare``
builds it); a method returns an :class:`_Output`. Methods over the members' top-N lists (vote and the
result-level ones) score each user's distinct listed items (:class:`_Candidates`) instead of the whole
catalogue; the helpers here scatter member values into those columns and rank them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reco_core.fusion.normalisers import NormalisedScores
from reco_core.ranking import Ranking, top_k


@dataclass(frozen=True)
class _Inputs:
    """What a method sees: only the positively weighted members, weights summing to 1."""

    weights: np.ndarray  # float64 [m'] (positive, sum 1)
    members: np.ndarray  # int [m'] original member positions
    n_members: int  # all members, including zero-weight ones
    normalised: NormalisedScores | None  # subset of members, or None for result-level methods
    rankings: tuple[Ranking, ...] | None  # subset of members
    normaliser: str
    k: int
    n_items: int
    user_idx: np.ndarray
    params: Mapping[str, Any]  # the method's declared parameters (FusionMethod.params), each with its value
    seed: int
    cache: dict | None = None  # kept by the caller between calls over the same member lists
    # wsum only: the weighted members' raw masked blocks when wsum normalises only the cells it needs
    # (``normalised`` is then None), and whether the caller needs the dense fused block (``fused_scores``).
    blocks: tuple[np.ndarray, ...] | None = None
    dense: bool = False

    @property
    def n(self) -> int:
        return len(self.user_idx)


@dataclass(frozen=True)
class _Output:
    """A method's result: the ranking, contributions [n, k, m'] (subset), who placed each slot, dense scores."""

    ranking: Ranking
    contributions: np.ndarray
    placed_by: np.ndarray | None = None  # [n, k] subset positions, -1 padding
    dense: np.ndarray | None = None  # [n, n_items] fused scores, -inf = not rankable
    compact: tuple[_Candidates, np.ndarray] | None = None  # candidates and their fused scores [n, M]


@dataclass(frozen=True)
class _Candidates:
    """Per user, the distinct items of the members' lists: ``items[n, M]`` ascending, -1 padding at the end.

    Result-level methods score these M <= sum N columns instead of the whole catalogue; because the
    columns are in item order, the ranker's "lower column wins a tie" is still "lower item wins".
    ``slots[m][u, j]`` is the column of member m's j-th listed item (-1 for its padding).
    """

    items: np.ndarray
    slots: tuple[np.ndarray, ...]
    # Per member, flat indices of its listed entries in [n, N] (src) and of their columns in [n, M] (dst).
    src: tuple[np.ndarray, ...]
    dst: tuple[np.ndarray, ...]

    @property
    def valid(self) -> np.ndarray:
        return self.items >= 0


def _candidates(lists: Sequence[np.ndarray], n_items: int) -> _Candidates:
    n = lists[0].shape[0]
    widths = [x.shape[1] for x in lists]
    total = int(sum(widths))
    allx = np.concatenate(lists, axis=1).astype(np.int64)
    valid = allx >= 0
    # One integer sort per row orders the entries by item and remembers where each came from
    # (key = item * total + entry position); padding sorts last as item n_items.
    key = np.where(valid, allx, n_items) * total + np.arange(total, dtype=np.int64)[None, :]
    key.sort(axis=1)
    item, entry = np.divmod(key, total)
    first = np.ones(key.shape, dtype=bool)
    first[:, 1:] = item[:, 1:] != item[:, :-1]
    first &= item < n_items
    col = np.cumsum(first, axis=1) - 1
    rows = np.arange(n)[:, None]
    colmap = np.empty((n, total), dtype=np.int64)
    colmap[rows, entry] = col
    colmap[~valid] = -1
    width = max(int(first.sum(axis=1).max()) if n else 0, 1)
    items = np.full((n, width), -1, dtype=np.int32)
    rr, cc = np.nonzero(first)
    items[rr, col[rr, cc]] = item[rr, cc]
    bounds = np.cumsum([0, *widths])
    slots = tuple(colmap[:, bounds[j] : bounds[j + 1]] for j in range(len(lists)))
    src, dst = [], []
    for sl in slots:
        rr, cc = np.nonzero(sl >= 0)
        src.append(rr * sl.shape[1] + cc)
        dst.append(rr * width + sl[rr, cc])
    return _Candidates(items, slots, tuple(src), tuple(dst))


def _member_candidates(inp: _Inputs) -> _Candidates:
    """The candidates of the weighted members, from the caller's cache when it has them (the live loop
    fuses the same lists again and again with other weights)."""
    rankings = inp.rankings
    assert rankings is not None
    key = ("candidates", *(id(r.item_idx) for r in rankings))
    if inp.cache is not None and key in inp.cache:
        return inp.cache[key]
    cands = _candidates([r.item_idx for r in rankings], inp.n_items)
    if inp.cache is not None:
        inp.cache[key] = cands
    return cands


def _scatter(values: np.ndarray, cands: _Candidates, j: int, out: np.ndarray) -> None:
    """out[u, column of member j's i-th item] += values[u, i] (a member never lists an item twice)."""
    out.reshape(-1)[cands.dst[j]] += np.ascontiguousarray(values).reshape(-1)[cands.src[j]]


def _rank_columns(key: np.ndarray, cands: _Candidates, k: int, user_idx: np.ndarray) -> tuple[Ranking, np.ndarray]:
    """Top-k over candidate columns (``key`` float32 [n, M], -inf = not rankable) -> Ranking, chosen columns."""
    m_cols = key.shape[1]
    width = min(k, m_cols)
    r = top_k(key, width, user_idx)
    cols = np.full((key.shape[0], k), -1, dtype=np.int64)
    cols[:, :width] = r.item_idx
    ok = cols >= 0
    items = np.where(ok, np.take_along_axis(cands.items, np.maximum(cols, 0), axis=1), -1).astype(np.int32)
    score = np.full(cols.shape, np.nan, dtype=np.float32)
    score[:, :width] = r.score
    return Ranking(np.asarray(user_idx, dtype=np.int32), items, score), cols


def _take(values: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.where(cols >= 0, np.take_along_axis(values, np.maximum(cols, 0), axis=1), 0.0)


def _gather(block: np.ndarray, items: np.ndarray) -> np.ndarray:
    """block[row, items[row, j]], 0 where items is -1 (padding)."""
    rows = np.arange(items.shape[0])[:, None]
    vals = block[rows, np.maximum(items, 0)]
    return np.where(items >= 0, vals, 0).astype(np.float32)
