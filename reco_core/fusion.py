"""Fusion of several members' scores or top-N lists into one ranking.

Everything goes through one entry point, :func:`fuse`. Methods and normalisers live in registries
(``METHODS``, ``NORMALISERS``); each is a pure function over arrays, vectorised over users.

Conventions (docs/fusion.md gives formulas and worked examples):

* **Weights** are non-negative, finite, not all zero, one per member; they are divided by their sum
  before use (no method's ranking depends on their scale). A member with weight 0 has no effect at all:
  it is dropped before fusing, exactly as if it were not there (it still gets a column of zero
  contributions, so explanations keep one column per member).
* **Score blocks** are float32 ``[n_users, n_items]`` *already masked*: training items are ``-inf``
  (``ranking.mask_rows``) and NaN means "cannot score". Normalisers treat every non-finite cell as
  *absent*: it does not enter a row's min, max, mean, std or ranks, and it stays absent (NaN) after
  normalising. So excluded training items never influence a row's normalisation.
* **Top-N lists** are :class:`~reco_core.ranking.Ranking` objects from ``ranking.top_k`` with training
  items excluded (padding -1/NaN at the end). Result-level methods see only these lists; an item that
  no (positively weighted) member lists cannot be recommended by them.
* **Ties** in a fused score go to the lower item index (the ranker's rule), except where a method
  says otherwise (``vote``; interleaving has no scores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.stats
from numpy.typing import ArrayLike

from reco_core.checks import AT_LEAST, check_whole
from reco_core.data import Interactions
from reco_core.errors import ConfigError, FitError, RecoError
from reco_core.models.base import Context, ModelConfig, Scorer, as_indices, param
from reco_core.ranking import Ranking, check_k, mask_rows, top_k

__all__ = [
    "DEFAULT_TOP_N",
    "METHODS",
    "NORMALISERS",
    "FusedConfig",
    "FusedScorer",
    "FusionMethod",
    "FusionResult",
    "NormalisedScores",
    "check_method",
    "check_normaliser",
    "check_weights",
    "fuse",
    "fused_scores",
    "normalise",
    "normalise_members",
]

DEFAULT_TOP_N = 100
# Votes are compared after rounding to this fraction of the weight total, so that 0.1 + 0.2 and 0.3
# count as the same vote and the tie-break decides, as a person reading the weights would expect.
_VOTE_RESOLUTION = 1e-9
# Interleaving deficits closer than this are a tie (shares are floats such as 1/3).
_DEFICIT_TOL = 1e-9


# --------------------------------------------------------------------------------------------------
# Normalisers: per user row, over the row's finite cells only.
# --------------------------------------------------------------------------------------------------

Normaliser = Callable[[np.ndarray], np.ndarray]


def _finite_stats(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    finite = np.isfinite(block)
    count = finite.sum(axis=1, keepdims=True)
    x = np.where(finite, block, 0.0).astype(np.float64)
    return finite, count, x


def normalise_none(block: np.ndarray) -> np.ndarray:
    """Raw scores; absent (non-finite) cells become NaN."""
    out = np.array(block, dtype=np.float32, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def normalise_minmax(block: np.ndarray) -> np.ndarray:
    """``(s - min) / (max - min)`` over the row's finite cells, in [0, 1]; a constant row gives 0.

    Works in float32 over the block (the span in float64): half the memory traffic of a float64 pass,
    within 6e-8 of it, and this is the hottest loop of large-scale evaluation.
    """
    block = np.asarray(block, dtype=np.float32)
    finite = np.isfinite(block)
    lo = np.where(finite, block, np.inf).min(axis=1, keepdims=True)
    hi = np.where(finite, block, -np.inf).max(axis=1, keepdims=True)
    span = hi.astype(np.float64) - lo
    ok = np.isfinite(span) & (span > 0)
    scale = np.where(ok, 1.0 / np.where(ok, span, 1.0), 0.0).astype(np.float32)
    # (s - lo) * 0 = 0 for constant rows; absent cells (and rows with no finite cell) get NaN below.
    with np.errstate(invalid="ignore"):  # -inf * 0 in excluded cells of constant rows; overwritten below
        out = block - np.where(np.isfinite(lo), lo, 0).astype(np.float32)
        out *= scale
    np.copyto(out, np.float32(np.nan), where=~finite)
    return out


def normalise_zscore(block: np.ndarray) -> np.ndarray:
    """``(s - mean) / std`` over the row's finite cells (population std, as ranx's zmuv); constant row gives 0."""
    finite, count, x = _finite_stats(block)
    safe = np.maximum(count, 1)
    mean = x.sum(axis=1, keepdims=True) / safe
    var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / safe
    std = np.sqrt(var)
    ok = std > 0
    out = np.where(ok, (x - mean) / np.where(ok, std, 1.0), 0.0).astype(np.float32)
    out[~finite] = np.nan
    return out


def normalise_rank(block: np.ndarray) -> np.ndarray:
    """``rank / n`` over the row's n finite cells: the best item gets 1, the worst 1/n (ranx's rank norm,
    ``1 - i/n`` with 0-based position i). Tied scores share their average rank."""
    finite = np.isfinite(block)
    absent = (~finite).sum(axis=1, keepdims=True)
    count = block.shape[1] - absent
    # Absent cells are moved below every finite one, so they take the lowest ranks; subtracting their
    # number gives ranks 1..n among the finite cells.
    filled = np.where(finite, block, -np.inf)
    ranks = scipy.stats.rankdata(filled, method="average", axis=1) - absent
    out = (ranks / np.maximum(count, 1)).astype(np.float32)
    out[~finite] = np.nan
    return out


NORMALISERS: dict[str, Normaliser] = {
    "none": normalise_none,
    "minmax": normalise_minmax,
    "zscore": normalise_zscore,
    "rank": normalise_rank,
}


def check_normaliser(name: str) -> str:
    key = str(name).strip().lower()
    if key not in NORMALISERS:
        raise ConfigError(f"unknown normaliser {name!r}: choose one of {', '.join(NORMALISERS)}")
    return key


def normalise(block: np.ndarray, normaliser: str) -> np.ndarray:
    """Normalise each row of a masked score block (float32 [n, n_items]); absent cells come back NaN."""
    return NORMALISERS[check_normaliser(normaliser)](np.asarray(block))


@dataclass(frozen=True)
class NormalisedScores:
    """Members' normalised blocks, ready to combine: ``values[m]`` has 0 in absent cells, ``absent[m]`` marks them.

    Normalising does not depend on the weights, so the live loop computes this once per normaliser.
    """

    normaliser: str
    values: tuple[np.ndarray, ...]
    absent: tuple[np.ndarray, ...]

    @property
    def n_items(self) -> int:
        return self.values[0].shape[1]


def normalise_members(member_scores: Sequence[np.ndarray], normaliser: str) -> NormalisedScores:
    """Normalise every member's masked block with the same normaliser."""
    key = check_normaliser(normaliser)
    values, absent = [], []
    for block in member_scores:
        norm = NORMALISERS[key](np.asarray(block))
        miss = np.isnan(norm)
        norm[miss] = 0.0
        values.append(norm)
        absent.append(miss)
    return NormalisedScores(key, tuple(values), tuple(absent))


# --------------------------------------------------------------------------------------------------
# Inputs shared by every method
# --------------------------------------------------------------------------------------------------


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
    rrf_k: float
    seed: int
    cache: dict | None = None  # kept by the caller between calls over the same member lists

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


# --------------------------------------------------------------------------------------------------
# Score-level methods (need the members' masked score blocks)
# --------------------------------------------------------------------------------------------------


def _wsum_dense(inp: _Inputs) -> np.ndarray:
    """sum_m w_m * norm_m over the catalogue; -inf where no member can score the item."""
    norm = inp.normalised
    assert norm is not None  # guaranteed by fuse(): score-level methods always get blocks
    out = norm.values[0] * np.float32(inp.weights[0])
    for w, v in zip(inp.weights[1:], norm.values[1:], strict=True):
        out += np.float32(w) * v
    # An item no weighted member can score stays out of the list; one that some member scores is kept and
    # the others contribute 0 for it (0 = the row minimum under minmax, the row mean under zscore).
    key = ("nobody", *(id(a) for a in norm.absent))
    nobody = inp.cache.get(key) if inp.cache is not None else None
    if nobody is None:
        nobody = np.logical_and.reduce(norm.absent) if len(norm.absent) > 1 else norm.absent[0]
        if inp.cache is not None:
            inp.cache[key] = nobody
    np.copyto(out, np.float32(-np.inf), where=nobody)
    return out


def _gather(block: np.ndarray, items: np.ndarray) -> np.ndarray:
    """block[row, items[row, j]], 0 where items is -1 (padding)."""
    rows = np.arange(items.shape[0])[:, None]
    vals = block[rows, np.maximum(items, 0)]
    return np.where(items >= 0, vals, 0).astype(np.float32)


def _wsum(inp: _Inputs) -> _Output:
    dense = _wsum_dense(inp)
    ranking = top_k(dense, inp.k, inp.user_idx)
    norm = inp.normalised
    assert norm is not None
    contrib = np.stack([w * _gather(v, ranking.item_idx) for w, v in zip(inp.weights, norm.values, strict=True)], -1)
    return _Output(ranking, contrib.astype(np.float32), dense=dense)


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


def _vote(inp: _Inputs) -> _Output:
    """Weighted votes over the members' top-N; ties by the weighted sum of normalised scores, then item index."""
    rankings, norm = inp.rankings, inp.normalised
    assert rankings is not None and norm is not None
    cands = _member_candidates(inp)
    n, m_cols = cands.items.shape
    safe = np.maximum(cands.items, 0)
    votes = np.zeros((n, m_cols), dtype=np.float64)
    per_member = []
    for j, (w, r) in enumerate(zip(inp.weights, rankings, strict=True)):
        mine = np.zeros((n, m_cols), dtype=np.float64)
        _scatter(np.full(r.item_idx.shape, w), cands, j, mine)
        votes += mine
        per_member.append(mine)
    # The tie-break is the wsum score of the candidate (a member that cannot score it adds 0).
    flat = (np.arange(n, dtype=np.int64)[:, None] * inp.n_items + safe).reshape(-1)
    tb = sum(
        np.float32(w) * np.take(v.reshape(-1), flat).reshape(n, m_cols)
        for w, v in zip(inp.weights, norm.values, strict=True)
    ).astype(np.float64)
    level = np.where(cands.valid, np.rint(votes / _VOTE_RESOLUTION), -1.0)
    tb = np.where(cands.valid, tb, -np.inf)
    # lexsort's last key is primary and it is stable, so equal (vote, tie-break) keep column = item order.
    order = np.lexsort((-tb, -level), axis=1)
    width = min(inp.k, m_cols)
    cols = np.full((n, inp.k), -1, dtype=np.int64)
    cols[:, :width] = np.where(np.take_along_axis(cands.valid, order[:, :width], axis=1), order[:, :width], -1)
    items = np.where(cols >= 0, np.take_along_axis(cands.items, np.maximum(cols, 0), axis=1), -1).astype(np.int32)
    score = np.where(cols >= 0, _take(votes, cols), np.nan).astype(np.float32)
    ranking = Ranking(np.asarray(inp.user_idx, dtype=np.int32), items, score)
    contrib = np.stack([_take(v, cols) for v in per_member], -1)
    return _Output(ranking, contrib.astype(np.float32))


def _points_rrf(inp: _Inputs, r: Ranking, ctx: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """1 / (rrf_k + rank) for listed items; nothing for the others."""
    rank = np.arange(1, r.k + 1, dtype=np.float64)[None, :]
    return np.broadcast_to(1.0 / (inp.rrf_k + rank), r.item_idx.shape), None


def _points_borda(inp: _Inputs, r: Ranking, ctx: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """ranx BordaFuse: |C| - rank + 1 for listed items, (|C| - len + 1) / 2 for candidates the member does not list."""
    c = ctx["n_candidates"][:, None].astype(np.float64)
    length = (r.item_idx >= 0).sum(axis=1)[:, None].astype(np.float64)
    rank = np.arange(1, r.k + 1, dtype=np.float64)[None, :]
    return c - rank + 1.0, (c - length + 1.0) / 2.0


def _points_comb(inp: _Inputs, r: Ranking, ctx: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The member's top-N scores, normalised over its N listed scores with the chosen normaliser."""
    s = np.where(r.item_idx >= 0, r.score, np.nan).astype(np.float32)
    return np.nan_to_num(NORMALISERS[inp.normaliser](s), nan=0.0).astype(np.float64), None


@dataclass(frozen=True)
class _ListRule:
    """A result-level method as a point rule: fused(i) = multiplier(i) * sum_m w_m * points_m(i).

    ``points(inp, ranking, ctx)`` returns member points for each listed position [n, N] and, for borda,
    the points [n, 1] of every candidate the member does not list.
    """

    points: Callable[[_Inputs, Ranking, dict], tuple[np.ndarray, np.ndarray | None]]
    mnz: bool = False  # combmnz multiplies by the number of (weighted) lists holding the item


def _list_method(rule: _ListRule) -> Callable[[_Inputs], _Output]:
    def run(inp: _Inputs) -> _Output:
        rankings = inp.rankings
        assert rankings is not None
        cands = _member_candidates(inp)
        n, m_cols = cands.items.shape
        valid = cands.valid
        ctx = {"n_candidates": valid.sum(axis=1)}
        count = np.zeros((n, m_cols), dtype=np.float64)
        per_member = []
        for j, (w, r) in enumerate(zip(inp.weights, rankings, strict=True)):
            listed_pts, unlisted_pts = rule.points(inp, r, ctx)
            mine = np.zeros((n, m_cols), dtype=np.float64)
            if unlisted_pts is not None:
                # Every candidate gets the member's "unlisted" points; its listed items get the difference.
                mine += np.where(valid, w * unlisted_pts, 0.0)
                listed_pts = listed_pts - unlisted_pts
            _scatter(w * np.asarray(listed_pts, dtype=np.float64), cands, j, mine)
            per_member.append(mine)
            if rule.mnz:
                _scatter(np.ones(r.item_idx.shape), cands, j, count)
        fused = sum(per_member)
        if rule.mnz:
            fused = fused * count
            per_member = [p * count for p in per_member]
        key = np.where(valid, fused, -np.inf).astype(np.float32)
        ranking, cols = _rank_columns(key, cands, inp.k, inp.user_idx)
        contrib = np.stack([_take(p, cols) for p in per_member], -1)
        return _Output(ranking, contrib.astype(np.float32), dense=None, compact=(cands, fused))

    return run


def _coins(seed: int, user_idx: np.ndarray, slot: int, n_members: int) -> np.ndarray:
    """Uniform [0, 1) draws that depend only on (seed, user, slot, member): a user's team-draft list does
    not change with the other users fused beside it. SplitMix64 finaliser over a combined counter."""
    u = np.asarray(user_idx, dtype=np.uint64)[:, None]
    m = np.arange(n_members, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        x = (
            np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x9E3779B97F4A7C15)
            + u * np.uint64(0xD1B54A32D192ED03)
            + np.uint64(slot) * np.uint64(0xABC98388FB8FAC03)
            + m * np.uint64(0x8CB92BA72F3D8DD7)
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _interleaving(team_draft: bool) -> Callable[[_Inputs], _Output]:
    """Slots are handed out one at a time. The member furthest behind its share (share * slots - taken)
    takes the slot with its best item not yet placed (skipping duplicates); a member whose list is used up
    drops out. Ties: the earlier member (round robin) or a seeded coin flip (team draft)."""

    def run(inp: _Inputs) -> _Output:
        rankings = inp.rankings
        assert rankings is not None
        n, m, k = inp.n, len(rankings), inp.k
        width = max(r.k for r in rankings)  # lists may differ in length: pad them alike
        lists = np.full((n, m, width), -1, dtype=np.int64)  # [n, m, N]
        for j, r in enumerate(rankings):
            lists[:, j, : r.k] = r.item_idx
        big_n = lists.shape[2]
        rows = np.arange(n)
        rows_m = rows[:, None]
        cols_m = np.arange(m)[None, :]
        ptr = np.zeros((n, m), dtype=np.int64)
        taken = np.zeros((n, m))
        placed = np.zeros((n, inp.n_items), dtype=bool)
        item_idx = np.full((n, k), -1, dtype=np.int32)
        placed_by = np.full((n, k), -1, dtype=np.int16)
        order_key = -np.arange(m, dtype=np.float64)[None, :]
        for t in range(k):
            while True:  # advance each pointer past items already placed (a few steps at most)
                inside = ptr < big_n
                cand = np.where(inside, lists[rows_m, cols_m, np.minimum(ptr, big_n - 1)], -1)
                pad = inside & (cand < 0)
                dup = (cand >= 0) & placed[rows_m, np.maximum(cand, 0)]
                if not (pad.any() or dup.any()):
                    break
                ptr = np.where(pad, big_n, ptr + dup)
            eligible = cand >= 0
            if not eligible.any():
                break
            deficit = np.where(eligible, inp.weights[None, :] * (t + 1) - taken, -np.inf)
            tied = eligible & (deficit >= deficit.max(axis=1, keepdims=True) - _DEFICIT_TOL)
            tie_key = _coins(inp.seed, inp.user_idx, t, m) if team_draft else order_key
            choice = np.argmax(np.where(tied, tie_key, -np.inf), axis=1)
            has = eligible.any(axis=1)
            item = cand[rows, choice]
            sel = rows[has]
            item_idx[sel, t] = item[has]
            placed_by[sel, t] = choice[has]
            taken[sel, choice[has]] += 1
            ptr[sel, choice[has]] += 1
            placed[sel, item[has]] = True
        valid = item_idx >= 0
        score = np.where(valid, np.float32(k) - np.arange(k, dtype=np.float32)[None, :], np.nan).astype(np.float32)
        ranking = Ranking(np.asarray(inp.user_idx, dtype=np.int32), item_idx, score)
        contrib = (placed_by[:, :, None] == np.arange(m)[None, None, :]).astype(np.float32)
        return _Output(ranking, contrib, placed_by=placed_by)

    return run


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

Level = Literal["score", "result"]


@dataclass(frozen=True)
class FusionMethod:
    """A fusion method: its level, whether it has a dense fused score, and what it does."""

    name: str
    label: str
    level: Level
    run: Callable[[_Inputs], _Output]
    uses_normaliser: bool
    dense_scores: bool  # False: the fused order has no single score (vote, interleaving)
    description: str


METHODS: dict[str, FusionMethod] = {
    m.name: m
    for m in (
        FusionMethod(
            "wsum",
            "Weighted sum",
            "score",
            _wsum,
            True,
            True,
            "sum_m w_m * norm_m(s_m(u, i)) over the full catalogue; a member's NaN contributes 0",
        ),
        FusionMethod(
            "vote",
            "Weighted vote",
            "score",
            _vote,
            True,
            False,
            "sum of the weights of the members whose top-N holds the item; ties by the weighted sum of "
            "normalised scores, then item index",
        ),
        FusionMethod(
            "rrf",
            "Reciprocal rank fusion",
            "result",
            _list_method(_ListRule(_points_rrf)),
            False,
            True,
            "sum_m w_m / (rrf_k + rank_m(i)) over the lists holding i",
        ),
        FusionMethod(
            "borda",
            "Borda count",
            "result",
            _list_method(_ListRule(_points_borda)),
            False,
            True,
            "sum_m w_m * points_m(i): |C| - rank + 1 if listed, (|C| - len_m + 1) / 2 otherwise (ranx BordaFuse)",
        ),
        FusionMethod(
            "combsum",
            "CombSUM",
            "result",
            _list_method(_ListRule(_points_comb)),
            True,
            True,
            "sum_m w_m * norm(top-N score of i in m), 0 if unlisted",
        ),
        FusionMethod(
            "combmnz",
            "CombMNZ",
            "result",
            _list_method(_ListRule(_points_comb, mnz=True)),
            True,
            True,
            "CombSUM times the number of (weighted) lists holding i",
        ),
        FusionMethod(
            "interleave",
            "Weighted round robin",
            "result",
            _interleaving(team_draft=False),
            False,
            False,
            "members take slots in proportion to their weights, skipping duplicates; ties to the earlier member",
        ),
        FusionMethod(
            "team_draft",
            "Team-draft interleaving",
            "result",
            _interleaving(team_draft=True),
            False,
            False,
            "as round robin, but ties between members are settled by seeded coin flips",
        ),
    )
}


def check_method(name: str) -> FusionMethod:
    key = str(name).strip().lower()
    if key not in METHODS:
        raise ConfigError(f"unknown fusion method {name!r}: choose one of {', '.join(METHODS)}")
    return METHODS[key]


# --------------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusionResult:
    """The fused top-k and what explanations need.

    ``contributions[u, j, m]``: member m's part of the fused score of slot j (wsum: ``w_m * norm``; vote:
    ``w_m`` if m lists the item; rrf/borda/combsum: that member's term; combmnz: the term times the list
    count, so a row sums to the fused score; interleaving: 1 for the member that placed the slot). Weights
    are the ones given divided by their sum. ``placed_by[u, j]``: the member that placed slot j
    (interleaving only; -1 for padding). ``member_rankings``: the members' top-N lists when the method
    used them (or they were given).
    """

    ranking: Ranking
    method: str
    normaliser: str
    weights: np.ndarray
    contributions: np.ndarray
    member_names: tuple[str, ...]
    placed_by: np.ndarray | None = None
    member_rankings: tuple[Ranking | None, ...] | None = None

    @property
    def n_members(self) -> int:
        return len(self.member_names)


def check_weights(weights: ArrayLike, n_members: int, names: Sequence[str] | None = None) -> np.ndarray:
    """Validate weights (one per member, finite, >= 0, not all zero); returns them as float64."""
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"weights={weights!r} are not numbers: give one number per member") from exc
    if w.size != n_members:
        raise ConfigError(f"{w.size} weights given for {n_members} members: give exactly one weight per member")
    label = list(names) if names is not None else [f"member {i + 1}" for i in range(n_members)]
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        raise ConfigError(f"weight of {label[bad[0]]!r} is {w[bad[0]]}: weights must be finite numbers")
    neg = np.flatnonzero(w < 0)
    if neg.size:
        raise ConfigError(f"weight of {label[neg[0]]!r} is {w[neg[0]]:g}: weights must be >= 0")
    if not (w > 0).any():
        raise ConfigError("all weights are zero: give at least one member a positive weight")
    return w


def share_of_sum(weights: np.ndarray) -> np.ndarray:
    """``weights / weights.sum()`` for finite weights >= 0, not all zero, without overflow.

    The weights are first divided by the largest, so the sum is at most ``len(weights)``: summing
    ``[1e308] * 3`` directly gives inf, and every share would become 0.
    """
    scaled = weights / weights.max()
    return scaled / scaled.sum()


_INT32_MAX = np.iinfo(np.int32).max


def _check_user_idx(user_idx: ArrayLike) -> np.ndarray:
    """``user_idx`` as int32 [n]: whole numbers in 0..2**31 - 1, one per row, else ConfigError naming user_idx."""
    users = as_indices(user_idx, "user_idx")
    if np.ndim(user_idx) > 1:  # as_indices flattens; a table of users would be read row after row, silently
        raise ConfigError(f"user_idx has shape {np.shape(user_idx)}: give a 1-d list of user indices, one per row")
    if users.size and (users.min() < 0 or users.max() > _INT32_MAX):
        bad = users[(users < 0) | (users > _INT32_MAX)][0]
        raise ConfigError(f"user_idx holds {int(bad)}: user indices are 0-based rows, from 0 to {_INT32_MAX}")
    return users.astype(np.int32)


def _names(member_names: Sequence[str] | None, n: int) -> tuple[str, ...]:
    if member_names is None:
        return tuple(f"member {i + 1}" for i in range(n))
    names = tuple(str(x) for x in member_names)
    if len(names) != n:
        raise ConfigError(f"{len(names)} member names for {n} members: give one name per member")
    return names


def _check_blocks(blocks: Sequence[np.ndarray | None], names: tuple[str, ...], n: int, n_items: int) -> None:
    for name, b in zip(names, blocks, strict=True):
        if b is None:
            raise ConfigError(
                f"member {name!r} has no scores (it failed to fit or was not given): remove it or refit it"
            )
        if b.ndim != 2 or b.shape[0] != n:
            raise ConfigError(f"member {name!r} scores shape {b.shape}: expected ({n}, {n_items}), one row per user")
        if b.shape[1] != n_items:
            raise ConfigError(
                f"member {name!r} scores {b.shape[1]} items but the catalogue has {n_items}: "
                "fuse only members fitted on the same catalogue"
            )


def _check_rankings(
    rankings: Sequence[Ranking | None], names: tuple[str, ...], user_idx: np.ndarray, n_items: int
) -> None:
    for name, r in zip(names, rankings, strict=True):
        if r is None:
            raise ConfigError(
                f"member {name!r} has no ranking (it failed to fit or was not given): remove it or refit it"
            )
        if len(r.user_idx) != len(user_idx) or not np.array_equal(r.user_idx, user_idx):
            raise ConfigError(f"member {name!r} ranks other users than the fusion: give rankings for the same users")
        if r.item_idx.size and r.item_idx.max() >= n_items:
            raise ConfigError(
                f"member {name!r} lists item index {int(r.item_idx.max())} but the catalogue has {n_items} items: "
                "fuse only members over the same catalogue"
            )


_TOP_N_MESSAGE = AT_LEAST + " (100 is usual)"


@dataclass(frozen=True)
class _Prepared:
    spec: FusionMethod
    inputs: _Inputs
    names: tuple[str, ...]
    rankings: tuple[Ranking | None, ...] | None


def _prepare(
    member_scores: Sequence[np.ndarray | None] | None,
    member_rankings: Sequence[Ranking | None] | None,
    weights: ArrayLike,
    method: str,
    normaliser: str,
    k: int,
    n_items: int,
    user_idx: ArrayLike,
    rrf_k: float,
    seed: int,
    top_n: int,
    member_names: Sequence[str] | None,
    normalised: NormalisedScores | None,
    cache: dict | None = None,
) -> _Prepared:
    """Validate everything at the boundary and build the inputs of the method (positive-weight members only)."""
    spec = check_method(method)
    norm_key = check_normaliser(normaliser)
    users = _check_user_idx(user_idx)
    n_items = check_whole(
        n_items, "n_items", message="{name}={value!r} is not valid: give the catalogue size (a positive whole number)"
    )
    check_k(k, n_items)
    check_whole(top_n, "top_n", message=_TOP_N_MESSAGE)
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float, np.number)) or not np.isfinite(rrf_k) or rrf_k < 0:
        raise ConfigError(f"rrf_k={rrf_k!r} is not valid: give a number >= 0 (60 is usual)")
    sources = [x for x in (member_scores, member_rankings, normalised.values if normalised else None) if x is not None]
    if not sources or len(sources[0]) == 0:
        raise ConfigError("no members given: fuse at least one member's scores or ranking")
    n_members = len(sources[0])
    if any(len(x) != n_members for x in sources):
        raise ConfigError(
            f"members disagree in number ({', '.join(str(len(x)) for x in sources)} blocks/rankings): "
            "give one score block and/or ranking per member"
        )
    names = _names(member_names, n_members)
    w = check_weights(weights, n_members, names)
    keep = np.flatnonzero(w > 0)
    w_sub = share_of_sum(w[keep])

    if member_scores is not None:
        _check_blocks(member_scores, names, len(users), n_items)
    norm_sub: NormalisedScores | None = None
    if spec.level == "score":
        if normalised is not None:
            if normalised.normaliser != norm_key:
                raise ConfigError(f"normalised scores were made with {normalised.normaliser!r}, not {norm_key!r}")
            if normalised.n_items != n_items:
                raise ConfigError(
                    f"normalised scores cover {normalised.n_items} items but the catalogue has {n_items}: "
                    "fuse only members over the same catalogue"
                )
            norm_sub = NormalisedScores(
                norm_key, tuple(normalised.values[i] for i in keep), tuple(normalised.absent[i] for i in keep)
            )
        elif member_scores is not None:
            norm_sub = normalise_members([member_scores[i] for i in keep], norm_key)  # type: ignore[misc]
        else:
            raise ConfigError(f"method {spec.name!r} fuses scores: give the members' score blocks")

    rankings_all = tuple(member_rankings) if member_rankings is not None else None
    if rankings_all is not None:
        _check_rankings(rankings_all, names, users, n_items)
    lists_sub: tuple[Ranking, ...] | None = None
    if spec.name != "wsum":
        if rankings_all is None:
            if member_scores is None:
                raise ConfigError(f"method {spec.name!r} fuses top-N lists: give the members' rankings or scores")
            n_top = min(max(int(top_n), int(k)), n_items)
            made = {int(i): top_k(member_scores[i], n_top, users) for i in keep}  # type: ignore[arg-type]
            rankings_all = tuple(made.get(i) for i in range(n_members))
        lists_sub = tuple(rankings_all[i] for i in keep)  # type: ignore[misc]
    inp = _Inputs(
        w_sub, keep, n_members, norm_sub, lists_sub, norm_key, int(k), n_items, users, float(rrf_k), int(seed), cache
    )
    return _Prepared(spec, inp, names, rankings_all)


def fuse(
    member_scores: Sequence[np.ndarray | None] | None,
    member_rankings: Sequence[Ranking | None] | None,
    weights: ArrayLike,
    method: str,
    normaliser: str,
    k: int,
    n_items: int,
    user_idx: ArrayLike,
    rrf_k: float = 60,
    seed: int = 0,
    *,
    top_n: int = DEFAULT_TOP_N,
    member_names: Sequence[str] | None = None,
    normalised: NormalisedScores | None = None,
    cache: dict | None = None,
) -> FusionResult:
    """Fuse members into one top-k ranking for the users ``user_idx`` (the one entry point).

    ``member_scores``: masked float32 blocks [n, n_items] (training items -inf, NaN = cannot score);
    needed by the score-level methods (wsum, vote). ``member_rankings``: each member's top-N
    (training items excluded); needed by the result-level methods and by vote. When only blocks are
    given, the top-N lists are made from them with ``top_n`` (at least k). ``normalised`` (optional) is
    the blocks already normalised with ``normaliser`` (the live loop caches it); then ``member_scores``
    may be None. ``cache`` (optional) is a dict the caller keeps between calls over the *same* member
    rankings; fuse keeps the per-user candidate sets there. ``rrf_k`` is RRF's constant; ``seed``
    drives team-draft's coin flips. The normaliser is used by wsum, vote (tie-break) and
    combsum/combmnz (on the top-N scores); rrf, borda and interleaving use ranks only and ignore it.
    """
    prep = _prepare(
        member_scores,
        member_rankings,
        weights,
        method,
        normaliser,
        k,
        n_items,
        user_idx,
        rrf_k,
        seed,
        top_n,
        member_names,
        normalised,
        cache,
    )
    inp = prep.inputs
    out = prep.spec.run(inp)
    keep = inp.members
    contributions = np.zeros((inp.n, inp.k, inp.n_members), dtype=np.float32)
    contributions[:, :, keep] = out.contributions
    placed_by = None
    if out.placed_by is not None:
        placed_by = np.where(out.placed_by >= 0, keep[np.maximum(out.placed_by, 0)], -1).astype(np.int16)
    w_norm = np.zeros(inp.n_members)
    w_norm[keep] = inp.weights
    return FusionResult(
        out.ranking, prep.spec.name, inp.normaliser, w_norm, contributions, prep.names, placed_by, prep.rankings
    )


def fused_scores(
    member_scores: Sequence[np.ndarray | None],
    weights: ArrayLike,
    method: str,
    normaliser: str,
    user_idx: ArrayLike,
    rrf_k: float = 60,
    seed: int = 0,
    top_n: int = DEFAULT_TOP_N,
    member_names: Sequence[str] | None = None,
) -> np.ndarray:
    """A dense fused block float32 [n, n_items] from masked member blocks; NaN = not rankable.

    Methods with a fused score (wsum, rrf, borda, combsum, combmnz) return it. Vote and interleaving
    have no single score: they return ``L - position`` over their fused order of all candidates
    (L = that list's length), so ``ranking.top_k`` of the block gives back the fused list for any k.
    """
    spec = check_method(method)
    check_whole(top_n, "top_n", message=_TOP_N_MESSAGE)
    blocks = list(member_scores)
    first = next((b for b in blocks if b is not None), None)
    n_items = int(np.asarray(first).shape[1]) if first is not None else 1
    # Dense methods need no particular k; the others order every candidate (at most members x top-N items).
    k = 1 if spec.dense_scores else min(n_items, max(1, len(blocks)) * min(int(top_n), n_items))
    prep = _prepare(
        blocks, None, weights, spec.name, normaliser, k, n_items, user_idx, rrf_k, seed, top_n, member_names, None
    )
    out = prep.spec.run(prep.inputs)
    if out.dense is not None:
        dense = np.array(out.dense, dtype=np.float32, copy=True)
    elif out.compact is not None:
        cands, values = out.compact
        dense = np.full((prep.inputs.n, n_items), np.nan, dtype=np.float32)
        rows, cols = np.nonzero(cands.valid)
        dense[rows, cands.items[rows, cols]] = values[rows, cols]
    else:
        dense = np.full((prep.inputs.n, n_items), np.nan, dtype=np.float32)
        items = out.ranking.item_idx
        rows, cols = np.nonzero(items >= 0)
        dense[rows, items[rows, cols]] = np.float32(items.shape[1]) - cols.astype(np.float32)
    dense[~np.isfinite(dense)] = np.nan
    return dense


# --------------------------------------------------------------------------------------------------
# FusedScorer: a fusion that is itself a model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusedConfig(ModelConfig):
    """How a FusedScorer combines its members (the members and weights are given to the constructor)."""

    method: str = param("wsum", choices=tuple(METHODS), help="Fusion method.")
    normaliser: str = param("minmax", choices=tuple(NORMALISERS), help="Per-user score normaliser.")
    top_n: int = param(DEFAULT_TOP_N, low=1, high=100_000, step=1, help="Length of each member's list.")
    rrf_k: float = param(60.0, low=0.0, high=10_000.0, step=1.0, help="RRF constant.")


class FusedScorer(Scorer):
    """A weighted fusion of fitted members, itself a Scorer (kept out of ``MODELS``: it is built from members).

    ``score(user_idx)`` masks each member's block with the training matrix (so training items do not enter
    the normalisation), fuses with :func:`fused_scores` and returns the dense fused block: training items
    and items the fusion cannot rank are NaN. ``score_profile`` fuses the members' ``score_profile`` and
    treats the profile's items as the history (masked the same way). ``fit`` refits every member.
    """

    name = "fused"
    label = "Fused"
    kind = "hybrid"
    config_cls = FusedConfig
    description = "Weighted fusion of several members."

    def __init__(
        self,
        members: Sequence[tuple[Scorer, float]],
        config: FusedConfig | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(config)
        members = list(members)
        if not members:
            raise ConfigError("FusedScorer needs at least one member: give [(model, weight), ...]")
        self.member_names = _names(
            names if names is not None else [getattr(m, "name", "?") for m, _ in members], len(members)
        )
        for label, item in zip(self.member_names, members, strict=True):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Scorer)):
                raise ConfigError(f"member {label!r} is not a (model, weight) pair: give [(model, weight), ...]")
        self.members = [m for m, _ in members]
        self.weights = check_weights([w for _, w in members], len(members), self.member_names)
        check_method(self.config.method)
        check_normaliser(self.config.normaliser)
        if all(m.fitted for m in self.members):
            self._check_same_train()
            self.train = self.members[0].train

    def _check_same_train(self) -> None:
        first = self.members[0].train
        assert first is not None
        for label, m in zip(self.member_names, self.members, strict=True):
            t = m.train
            assert t is not None
            if t.n_items != first.n_items or list(t.items.ids) != list(first.items.ids):
                raise ConfigError(
                    f"member {label!r} has {t.n_items} items but {self.member_names[0]!r} has {first.n_items}: "
                    "fuse only members fitted on the same catalogue"
                )
            if t is not first and (t.matrix.shape != first.matrix.shape or t.nnz != first.nnz):
                raise ConfigError(
                    f"member {label!r} was fitted on other training data than {self.member_names[0]!r}: "
                    "fit every member on the same split"
                )

    def _fit(self, train: Interactions, context: Context) -> None:
        for label, m in zip(self.member_names, self.members, strict=True):
            try:
                m.fit(train, context)
            except RecoError:
                raise
            except Exception as exc:  # a member's own failure: name it
                raise FitError(f"member {label!r} failed to fit: {type(exc).__name__}: {exc}") from exc

    def _fuse_blocks(self, blocks: list[np.ndarray], user_idx: np.ndarray) -> np.ndarray:
        c = self.config
        return fused_scores(
            blocks, self.weights, c.method, c.normaliser, user_idx, c.rrf_k, c.seed, c.top_n, self.member_names
        )

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        assert self.train is not None
        exclude: sp.csr_matrix = self.train.matrix
        blocks = []
        for m in self.members:
            b = np.array(m.score(user_idx), dtype=np.float32, copy=True)
            blocks.append(mask_rows(b, exclude, user_idx))
        return self._fuse_blocks(blocks, user_idx)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        blocks = []
        for m in self.members:
            b = np.array(m.score_profile(item_idx, values), dtype=np.float32, copy=True)[None, :]
            b[0, item_idx] = -np.inf
            blocks.append(b)
        return self._fuse_blocks(blocks, np.zeros(1, dtype=np.int32))[0]
