"""Fusion evaluation at any size: score, fuse and rank in user blocks, then evaluate once.

``evaluate_fusion_blocked`` is the whole-population counterpart of ``live.LiveSession``: the live
session keeps every member's users x items block in memory (fine for MovieLens-100K or a user sample),
this module never holds more than one block of users at a time, so memory is bounded by
``block_size x n_items``, not by users x items.

Per block of users:

1. each member scores the block only (``Scorer.score``); training items are set to -inf with
   ``ranking.mask_rows``, exactly as the live session does;
2. the blocks are normalised and fused by ``reco_core.fusion.fuse`` (its registries hold every rule:
   nothing is re-implemented here), which ranks with ``ranking.top_k`` (``torch.topk``);
3. only the block's top-k is kept: int32 items and float32 scores, ``n_users x k`` in all (5.5 MB for
   138,493 users at k = 10).

After the last block, ``metrics.evaluate`` reads the concatenated top-k once. So the per-user metrics
and the global ones (coverage, gini, personalisation) come from the same code as everywhere else, and
the blocked result equals the whole-matrix one exactly: every step above works row by row.

Candidates (``candidates=N``): each member first keeps its own top-N (``ranking.top_k``), and fusion
runs only over the union of those lists (at most members x N columns instead of the catalogue). This
is approximate for score-level methods: the normaliser then sees the union, not the whole row (min-max
takes its minimum over the candidates), and an item outside every member's top-N cannot be
recommended. With ``N >= n_items`` the union is every rankable item and the answer is exact.
Result-level methods (rrf, borda, combsum, combmnz) only use the members' top-``top_n`` lists, so they
are exact whenever ``N >= top_n``. docs/benchmarks.md reports how close N = 25..200 is at MovieLens-1M
size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from reco_core.checks import check_whole
from reco_core.errors import ConfigError
from reco_core.fusion import DEFAULT_TOP_N, check_method, check_normaliser, check_weights, fuse
from reco_core.metrics import EvalContext, Evaluation, evaluate
from reco_core.models.base import Scorer
from reco_core.ranking import Ranking, check_k, excluded_cells, mask_rows, top_k
from reco_core.splitting import Split, check_part

__all__ = [
    "DEFAULT_BLOCK_CELLS",
    "auto_block_size",
    "evaluate_fusion_blocked",
    "fuse_masked_block",
    "overlap_at_k",
    "rank_fusion_blocked",
]

# Cells (users x items) per block when no block size is given: 1M float32 cells is 4 MB per member
# block, so a block and the fusion's temporaries stay near the CPU caches. Measured at 10M size
# (10,677 items): 47-94 users per block ran 10-15% faster than 188 and ~2x faster than 1,498.
DEFAULT_BLOCK_CELLS = 1_000_000
_MAX_AUTO_BLOCK = 4096
_T = TypeVar("_T")


def auto_block_size(n_items: int, cells: int = DEFAULT_BLOCK_CELLS) -> int:
    """Users per block so that one member's block holds about ``cells`` float32 cells (at least 1 user)."""
    return int(max(1, min(_MAX_AUTO_BLOCK, cells // max(int(n_items), 1))))


def _check_members(members: Mapping[str, Scorer], split: Split) -> tuple[str, ...]:
    if not isinstance(members, Mapping) or not members:
        raise ConfigError("members must be a non-empty mapping {name: fitted model}")
    n_items = split.train.n_items
    for name, model in members.items():
        if not isinstance(model, Scorer):
            raise ConfigError(f"member {name!r} is a {type(model).__name__}, not a model: give fitted Scorers")
        if not model.fitted:
            raise ConfigError(f"member {name!r} is not fitted: fit it on split.train first")
        if model.n_items != n_items:
            raise ConfigError(
                f"member {name!r} scores {model.n_items} items but the split has {n_items}: "
                "fuse only members fitted on this split's catalogue"
            )
    return tuple(str(n) for n in members)


def _check_weights(weights: Mapping[str, float] | Sequence[float], names: tuple[str, ...]) -> np.ndarray:
    if isinstance(weights, Mapping):
        unknown = [str(n) for n in weights if n not in names]
        if unknown:
            raise ConfigError(f"weights name unknown member {unknown[0]!r}: members are {', '.join(names)}")
        missing = [n for n in names if n not in weights]
        if missing:
            raise ConfigError(f"no weight for member {missing[0]!r}: give every member a weight (0 leaves it out)")
        weights = [weights[n] for n in names]
    return check_weights(weights, len(names), names)


def _check_users(users: np.ndarray | None, split: Split, part: str) -> np.ndarray:
    if users is None:
        out = split.eval_users(part)
        if len(out) == 0:
            raise ConfigError(f"no user has held-out items in {part}: use a larger held-out fraction")
        return out.astype(np.int32)
    arr = np.asarray(users)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError("users must be a non-empty 1-d array of user indices")
    n_users = split.train.n_users
    if arr.min() < 0 or arr.max() >= n_users:
        bad = int(arr[(arr < 0) | (arr >= n_users)][0])
        raise ConfigError(f"user index {bad} is out of range: user indices must be in 0..{n_users - 1}")
    if len(np.unique(arr)) != len(arr):
        raise ConfigError("users holds an index twice: give each user once")
    return arr.astype(np.int32)


def _union(lists: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Per row, the distinct items of the members' lists, ascending, padded with -1: int64 [n, M].

    Ascending order matters: the ranker breaks ties by the lower column, which is then the lower item
    index, as in the exact path.
    """
    pad = np.int64(n_items)
    cand = np.sort(np.concatenate([np.where(x >= 0, x, pad) for x in lists], axis=1).astype(np.int64), axis=1)
    dup = np.zeros(cand.shape, dtype=bool)
    dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
    cand[dup] = pad
    cand = np.sort(cand, axis=1)
    width = int((cand < pad).sum(axis=1).max()) if cand.size else 0
    cand = cand[:, :width]
    return np.where(cand == pad, -1, cand)


def _gather(block: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """block[row, cand[row, j]] as float32 [n, M]; NaN (cannot score, so absent) at padding."""
    rows = np.arange(cand.shape[0])[:, None]
    out = block[rows, np.maximum(cand, 0)]
    out[cand < 0] = np.nan
    return out


def _fuse_block(
    blocks: list[np.ndarray],
    rows: np.ndarray,
    weights: np.ndarray,
    names: tuple[str, ...],
    method: str,
    normaliser: str,
    k: int,
    n_items: int,
    candidates: int | None,
    rrf_k: float,
    top_n: int,
    seed: int,
    params: Mapping[str, Any] | None,
) -> Ranking:
    if candidates is None:
        result = fuse(
            blocks,
            None,
            weights,
            method,
            normaliser,
            k,
            n_items,
            rows,
            rrf_k,
            seed,
            top_n=top_n,
            member_names=names,
            params=params,
        )
        return result.ranking
    n_top = min(candidates, n_items)
    # The blocks are already masked (training items -inf), so top_k needs no exclusion matrix here.
    lists = [top_k(b, n_top, rows).item_idx for b in blocks]
    cand = _union(lists, n_items)
    n, width = cand.shape
    items = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), np.nan, dtype=np.float32)
    if width == 0:  # no member can rank anything for these users
        return Ranking(rows.astype(np.int32), items, scores)
    # Thin adapter: fuse() sees a "catalogue" of the union's columns, and its column ranking is mapped
    # back to item indices. Every normalising and combining rule is still fusion.fuse's own.
    compact = [_gather(b, cand) for b in blocks]
    k_eff = min(k, width)
    result = fuse(
        compact,
        None,
        weights,
        method,
        normaliser,
        k_eff,
        width,
        rows,
        rrf_k,
        seed,
        top_n=min(top_n, width),
        member_names=names,
        params=params,
    )
    cols = result.ranking.item_idx.astype(np.int64)
    ok = cols >= 0
    items[:, :k_eff] = np.where(ok, np.take_along_axis(cand, np.maximum(cols, 0), axis=1), -1)
    scores[:, :k_eff] = result.ranking.score
    return Ranking(rows.astype(np.int32), items, scores)


def _map_blocks(fn: Callable[[int], _T], starts: range, workers: int) -> list[_T]:
    """fn over the block starts, in order; with several workers, in threads with one BLAS/torch thread each.

    numpy, scipy's sparse products, BLAS and torch release the GIL, so blocks run truly in parallel;
    their own thread pools are held to one thread meanwhile so that workers x threads <= workers.
    """
    if workers == 1 or len(starts) < 2:
        return [fn(s) for s in starts]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1), ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, starts))
    finally:
        torch.set_num_threads(previous)


def rank_fusion_blocked(
    members: Mapping[str, Scorer],
    split: Split,
    weights: Mapping[str, float] | Sequence[float],
    method: str = "wsum",
    normaliser: str = "minmax",
    k: int = 10,
    block_size: int | None = None,
    users: np.ndarray | None = None,
    candidates: int | None = None,
    *,
    part: str = "test",
    rrf_k: float = 60,
    top_n: int = DEFAULT_TOP_N,
    workers: int = 1,
    profile: dict[str, float] | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> Ranking:
    """The fused top-k of ``users`` (default: ``split.eval_users(part)``), computed block by block.

    ``block_size`` users per block (default ``auto_block_size(n_items)``). Members with weight 0 are not
    scored at all (fusion treats them as absent anyway). ``workers`` > 1 processes that many blocks at
    once in threads (same answer; memory grows to ``workers`` blocks); models must then allow concurrent
    ``score`` calls, which every registered model does (scoring reads fitted arrays only). ``profile``,
    when given, receives the seconds spent in "score" (members' scoring and masking) and "fuse"
    (normalise, combine, rank), summed over blocks (so over workers too). See the module docstring for
    ``candidates``. ``seed`` (team-draft's coin flips) and ``params`` (the method's declared parameters)
    are ``fusion.fuse``'s.
    """
    names = _check_members(members, split)
    part = check_part(part, split)
    w = _check_weights(weights, names)
    check_method(method)
    check_normaliser(normaliser)
    n_items = split.train.n_items
    check_k(k, n_items)
    k = int(k)
    check_whole(top_n, "top_n")
    bs = auto_block_size(n_items) if block_size is None else check_whole(block_size, "block_size")
    if candidates is not None:
        candidates = check_whole(candidates, "candidates")
        if candidates < k:
            raise ConfigError(
                f"candidates={candidates} is smaller than k={k}: each member must list at least k items; "
                f"give candidates >= {k} (100 is usual) or None for the exact answer"
            )
    n_workers = check_whole(workers, "workers")
    user_idx = _check_users(users, split, part)
    keep = np.flatnonzero(w > 0)
    models = [members[names[i]] for i in keep]
    used_names = tuple(names[i] for i in keep)
    used_w = w[keep]
    exclude = split.train.matrix

    def one_block(start: int) -> tuple[Ranking, float, float]:
        rows = user_idx[start : start + bs]
        t0 = time.perf_counter()
        # A copy, because mask_rows writes into the block and a model may hand out an array it keeps.
        cells = excluded_cells(exclude, rows)
        blocks = [mask_rows(np.array(m.score(rows), dtype=np.float32, copy=True), exclude, rows, cells) for m in models]
        t1 = time.perf_counter()
        ranking = _fuse_block(
            blocks, rows, used_w, used_names, method, normaliser, k, n_items, candidates, rrf_k, top_n, seed, params
        )
        return ranking, t1 - t0, time.perf_counter() - t1

    done = _map_blocks(one_block, range(0, len(user_idx), bs), n_workers)
    parts = [d[0] for d in done]
    if profile is not None:
        profile["score"] = profile.get("score", 0.0) + sum(d[1] for d in done)
        profile["fuse"] = profile.get("fuse", 0.0) + sum(d[2] for d in done)
    return Ranking.concat(parts)


def evaluate_fusion_blocked(
    members: Mapping[str, Scorer],
    split: Split,
    ctx: EvalContext,
    weights: Mapping[str, float] | Sequence[float],
    method: str = "wsum",
    normaliser: str = "minmax",
    k: int = 10,
    block_size: int | None = None,
    users: np.ndarray | None = None,
    candidates: int | None = None,
    *,
    part: str = "test",
    ks: Sequence[int] | None = None,
    metrics: Sequence[str] | None = None,
    rrf_k: float = 60,
    top_n: int = DEFAULT_TOP_N,
    workers: int = 1,
    profile: dict[str, float] | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> Evaluation:
    """Evaluate a fusion of ``members`` for every evaluated user (or ``users``) with bounded memory.

    Equals ``metrics.evaluate(fuse(whole blocks).ranking, target, ctx, ks)`` on the same users (the
    live session's answer), for any ``block_size``; ``candidates=N`` trades exactness for speed (module
    docstring). ``ks`` defaults to ``(k,)`` and must not exceed k; ``metrics=None`` means every metric
    ``ctx`` supports. ``workers``: blocks processed at once (see ``rank_fusion_blocked``). ``profile``
    receives "score", "fuse" and "evaluate" seconds.
    """
    part = check_part(part, split)
    if ctx.n_items != split.train.n_items:
        raise ConfigError(
            f"EvalContext is for {ctx.n_items} items but the split has {split.train.n_items}: "
            "build it with EvalContext.from_train(split.train)"
        )
    ranking = rank_fusion_blocked(
        members,
        split,
        weights,
        method,
        normaliser,
        k,
        block_size,
        users,
        candidates,
        part=part,
        rrf_k=rrf_k,
        top_n=top_n,
        workers=workers,
        profile=profile,
        seed=seed,
        params=params,
    )
    target = split.test if part == "test" else split.valid
    assert target is not None  # check_part refused a missing validation part
    t0 = time.perf_counter()
    out = evaluate(ranking, target, ctx, ks=tuple(ks) if ks is not None else (k,), metrics=metrics)
    if profile is not None:
        profile["evaluate"] = profile.get("evaluate", 0.0) + time.perf_counter() - t0
    return out


def overlap_at_k(a: Ranking, b: Ranking, k: int | None = None) -> np.ndarray:
    """Per user, |top-k of a  intersect  top-k of b| / k (float64 [n]); padding never counts.

    Both rankings must list the same users in the same order; ``k`` defaults to the shorter list.
    """
    if not np.array_equal(np.asarray(a.user_idx), np.asarray(b.user_idx)):
        raise ConfigError("the two rankings list other users (or another order): rank the same users to compare")
    k = min(a.k, b.k) if k is None else check_whole(k, "k")
    if k > min(a.k, b.k):
        raise ConfigError(f"k={k} is longer than the lists ({a.k} and {b.k} items): choose k <= {min(a.k, b.k)}")
    x, y = a.item_idx[:, :k], b.item_idx[:, :k]
    inside = ((x[:, :, None] == y[:, None, :]) & (x[:, :, None] >= 0)).any(axis=2)
    return inside.sum(axis=1) / float(k)


def fuse_masked_block(
    blocks: Sequence[np.ndarray],
    user_idx: np.ndarray,
    weights: Sequence[float] | np.ndarray,
    names: Sequence[str],
    method: str = "wsum",
    normaliser: str = "minmax",
    k: int = 10,
    *,
    candidates: int | None = None,
    rrf_k: float = 60,
    top_n: int = DEFAULT_TOP_N,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> Ranking:
    """One block of ``rank_fusion_blocked`` from members' score blocks that are already masked.

    ``blocks``: float32 [n, n_items] per member with weight > 0, training items already -inf
    (``ranking.mask_rows``); ``user_idx``: the block's user indices (team-draft's coin flips depend on
    them). For engines that score a block elsewhere (``reco_core.spark`` inside ``mapInPandas``) and must
    normalise, fuse and rank it exactly as this module does.
    """
    n_items = int(blocks[0].shape[1])
    return _fuse_block(
        list(blocks),
        np.asarray(user_idx),
        np.asarray(weights, dtype=np.float64),
        tuple(names),
        method,
        normaliser,
        int(k),
        n_items,
        candidates,
        rrf_k,
        top_n,
        seed,
        params,
    )
