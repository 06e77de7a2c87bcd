"""Score-level methods: they need the members' masked score blocks, normalised per user row.

* ``wsum``: the weighted sum of the normalised scores over the full catalogue; ties in the fused score
  go to the lower item index (the ranker's rule). From raw blocks without lists (the blocked evaluation)
  by one compiled pass per row (``wsum_kernel``); otherwise over the members' candidates where the
  threshold check proves that exact, else over the whole catalogue (``_wsum``). All three give the dense
  answer.
* ``vote``: weighted votes over the members' top-N; ties by the weighted sum of normalised scores,
  then item index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from reco_core.fusion.inputs import (
    _candidates,
    _gather,
    _Inputs,
    _member_candidates,
    _Output,
    _rank_columns,
    _scatter,
    _take,
)
from reco_core.fusion.normalisers import NormalisedScores, minmax_offsets, minmax_scale, normalise_members
from reco_core.fusion.wsum_kernel import wsum_top_k
from reco_core.ranking import Ranking, top_k

# Votes are compared after rounding to this fraction of the weight total, so that 0.1 + 0.2 and 0.3
# count as the same vote and the tie-break decides, as a person reading the weights would expect.
_VOTE_RESOLUTION = 1e-9


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


def _wsum_whole(inp: _Inputs) -> tuple[np.ndarray, Ranking, np.ndarray]:
    """The dense path: fused block, its top-k and the contributions [n, k, m']."""
    dense = _wsum_dense(inp)
    ranking = top_k(dense, inp.k, inp.user_idx)
    norm = inp.normalised
    assert norm is not None
    contrib = np.stack([w * _gather(v, ranking.item_idx) for w, v in zip(inp.weights, norm.values, strict=True)], -1)
    return dense, ranking, contrib.astype(np.float32)


def _wsum(inp: _Inputs) -> _Output:
    """Weighted sum of the normalised scores; over the members' candidates where that is provably exact.

    The fused top-k usually lies among the items some member ranks high, so the sum is taken over the
    union of the members' lists (the live session's top-N, or each block's top ``_LIST_LEN``) and checked
    with the threshold rule (Fagin's TA): every normaliser is non-decreasing in the raw score, so an item
    missing from member m's list has a normalised value no larger than that of m's last listed item (or 0,
    the value of an absent cell), and float32 products and sums are monotone too. So no unlisted item can
    fuse above ``bound = sum_m w_m * max(last_m, 0)``, computed with the same float32 operations. Rows whose
    k-th candidate scores strictly above the bound have their exact list (every item scoring at least the
    k-th is a candidate, so ties still go to the lower item); the other rows are fused over the whole
    catalogue. The scores, lists and contributions are those of the dense path, bit for bit.
    """
    dense_needed = inp.dense or (inp.rankings is None and inp.blocks is None)
    if not dense_needed and inp.rankings is None and inp.blocks is not None:
        # Raw blocks and no lists (the blocked evaluation): the compiled pass gives the dense path's answer.
        made = wsum_top_k(inp.blocks, inp.weights, inp.normaliser, inp.k, inp.user_idx)
        if made is not None:
            return _Output(*made)
    if not dense_needed and inp.k <= inp.n_items:
        out = _wsum_candidates(inp)
        if out is not None:
            return out
    dense, ranking, contrib = _wsum_whole(_with_normalised(inp))
    return _Output(ranking, contrib, dense=dense)


# Each member's list length when wsum makes its own candidates from raw blocks (the blocked evaluation):
# long enough that the threshold check passes for most rows, short enough that torch.topk stays cheap.
_LIST_LEN = 50


def _with_normalised(inp: _Inputs, rows: np.ndarray | None = None) -> _Inputs:
    """``inp`` with every cell normalised (the dense path), restricted to ``rows`` when given."""
    norm = inp.normalised
    if rows is None:
        if norm is not None:
            return inp
        assert inp.blocks is not None
        return replace(inp, normalised=normalise_members(inp.blocks, inp.normaliser))
    if norm is not None:
        sub = NormalisedScores(
            norm.normaliser, tuple(v[rows] for v in norm.values), tuple(a[rows] for a in norm.absent)
        )
    else:
        assert inp.blocks is not None
        sub = normalise_members([b[rows] for b in inp.blocks], inp.normaliser)
    return replace(inp, normalised=sub, user_idx=inp.user_idx[rows], cache=None)


def _own_lists(inp: _Inputs) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Each raw block's top ``_LIST_LEN`` items per row (-1 where the row has no more finite cells), its
    largest finite cell per row, and the rows the candidate path cannot bound: those holding a +inf
    (absent to the normalisers, yet first in any list); they are fused over the whole catalogue."""
    assert inp.blocks is not None
    width = min(_LIST_LEN, inp.n_items)
    lists, tops, odd = [], [], []
    for b in inp.blocks:
        work = np.ascontiguousarray(b, dtype=np.float32)
        # torch.topk ranks NaN first: rows holding one are listed from a copy where NaN is -inf (never
        # listed). Blocks of models that score every item have no such row and are not copied.
        nan_rows = np.flatnonzero(np.isnan(work).any(axis=1))
        if nan_rows.size:
            work = work.copy() if work is b else work
            work[nan_rows] = np.fmax(work[nan_rows], np.float32(-np.inf))
        if not work.flags.writeable:  # a cached, read-only block: torch.from_numpy wants a writable array
            work = work.copy()
        top = torch.topk(torch.from_numpy(work), width, dim=1)
        vals = top.values.numpy()
        items = top.indices.numpy().astype(np.int32)
        items[~np.isfinite(vals)] = -1
        lists.append(items)
        tops.append(vals[:, :1])
        odd.append(np.isposinf(vals[:, 0]))
    return lists, tops, odd


def _given_lists(inp: _Inputs) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``_own_lists`` from the member rankings given with the raw blocks, checked against the blocks: a row
    is bounded only when its listed scores are the block's and every cell above the last listed score
    is listed (for a list shorter than N: every finite cell), one comparison pass instead of a top-N."""
    assert inp.blocks is not None and inp.rankings is not None
    lists, tops, odd, lows = [], [], [], []
    for b, r in zip(inp.blocks, inp.rankings, strict=True):
        # By score, best first, padding last (a caller's list need not be sorted): the last entry is then
        # the lowest listed score, which ``_candidate_values`` bounds the unlisted items with.
        key = np.where(r.item_idx >= 0, r.score, -np.inf)
        order = np.argsort(-key, axis=1, kind="stable")
        items = np.take_along_axis(r.item_idx, order, axis=1)
        score = np.take_along_axis(r.score, order, axis=1)
        valid = items >= 0
        n = len(items)
        got = b[np.arange(n)[:, None], np.maximum(items, 0)]
        same = np.where(valid, got == score, True).all(axis=1)
        n_valid = valid.sum(axis=1)
        last = np.where(valid[:, -1], score[:, -1], np.float32(-np.inf)).astype(np.float32)
        # Rows whose finite cells are all listed (runs given as blocks that are NaN elsewhere) need nothing
        # more: one counting pass. The others: every cell above the last listed score must be listed.
        n_finite = np.count_nonzero(b > -np.inf, axis=1)  # NaN is not above -inf; +inf is
        whole = n_finite == n_valid
        ok = whole.copy()
        rest = np.flatnonzero(~whole)
        if rest.size:
            part = b if rest.size == n else b[rest]
            with np.errstate(invalid="ignore"):
                above = np.count_nonzero(part > last[rest, None], axis=1)
                listed_above = np.count_nonzero(valid[rest] & (score[rest] > last[rest, None]), axis=1)
            ok[rest] = above == listed_above
        first = np.where(valid[:, :1], score[:, :1], np.float32(-np.inf)).astype(np.float32)
        lists.append(items)
        tops.append(first)
        odd.append(~same | ~ok | np.isposinf(first[:, 0]))
        # There the row's minimum is the lowest listed score: no pass over the block for it.
        lowest = score[np.arange(n), np.maximum(n_valid - 1, 0)]
        lows.append(np.where(whole & (n_valid > 0), lowest, np.float32(np.nan)).astype(np.float32)[:, None])
    return lists, tops, odd, lows


def _candidate_values(
    inp: _Inputs,
    cands: Any,
    lists: Sequence[np.ndarray],
    cacheable: bool,
    tops: Sequence[np.ndarray] | None = None,
    lows: Sequence[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per member: normalised values at the candidates [n, M] (0 where absent), the absent mask, and a bound
    [n] (float32) on the normalised value of every item the member does not list (+inf: no bound known).

    ``cacheable``: the lists are the caller's own (live session), so the cells are kept in ``inp.cache``.
    ``tops``: each raw block's largest cell per row (from its list), min-max's row maximum wherever the
    row holds neither NaN nor +inf (the other rows are fused densely, whatever their values here).
    """
    n = inp.n
    rows = np.arange(n)[:, None]
    at = np.arange(n)
    safe = np.maximum(cands.items, 0)
    pad = cands.items < 0
    values, absents, bounds = [], [], []
    for j, listed in enumerate(lists):
        full = listed[:, -1] >= 0
        last = np.maximum(listed[:, -1], 0)
        if inp.normalised is not None:
            key = ("wsum-cells", id(inp.normalised.values[j]), id(cands))
            got = inp.cache.get(key) if (cacheable and inp.cache is not None) else None
            if got is None:
                v, a = inp.normalised.values[j], inp.normalised.absent[j]
                cell_v = np.where(pad, np.float32(0), v[rows, safe])
                cell_a = pad | a[rows, safe]
                # A listed item that is absent to the normaliser (a +inf score) breaks the order: no bound.
                tail = np.where(full, v[at, last], np.float32(0))
                bound = np.where(full & a[at, last], np.float32(np.inf), np.maximum(tail, np.float32(0)))
                got = (cell_v, cell_a, bound.astype(np.float32))
                if cacheable and inp.cache is not None:
                    inp.cache[key] = got
            cell_v, cell_a, bound = got
        else:
            assert inp.blocks is not None
            b = inp.blocks[j]
            if inp.normaliser == "minmax" and tops is not None:
                # The row maximum is the list's first value; the minimum needs one pass (finite = above
                # -inf on the rows this result is used for).
                lo_row = lows[j].copy() if lows is not None else np.full((n, 1), np.nan, np.float32)
                need = np.isnan(lo_row[:, 0])
                part = b if need.all() else b[need]
                if part.shape[0]:
                    with np.errstate(invalid="ignore"):
                        lo_row[need] = np.min(part, axis=1, where=part > -np.inf, initial=np.inf, keepdims=True)
                hi_row = np.where(np.isfinite(tops[j]), tops[j], np.float32(-np.inf))
                lo, scale = minmax_scale(lo_row, hi_row)
            elif inp.normaliser == "minmax":
                lo, scale = minmax_offsets(b)
            else:  # "none": the raw scores
                lo, scale = np.zeros((n, 1), np.float32), np.ones((n, 1), np.float32)
            raw = b[rows, safe]
            cell_a = pad | ~np.isfinite(raw)
            with np.errstate(invalid="ignore"):
                cell_v = (raw - lo) * scale
                tail = ((b[at, last][:, None] - lo) * scale)[:, 0]
            cell_v[cell_a] = 0
            tail = np.where(full & np.isfinite(tail), tail, np.float32(0))
            bound = np.maximum(tail, np.float32(0)).astype(np.float32)
        values.append(cell_v)
        absents.append(cell_a)
        bounds.append(bound)
    return values, absents, bounds


def _wsum_candidates(inp: _Inputs) -> _Output | None:
    """wsum over the members' candidates with the threshold check (see ``_wsum``); None = use the dense path."""
    # The live session's lists go with its normalised blocks (no raw blocks): trusted and cached. Lists
    # given with raw blocks are checked (``_given_lists``); without lists, each block's top is taken.
    own = inp.blocks is not None
    if not own:
        assert inp.rankings is not None
        lists = [r.item_idx for r in inp.rankings]
        cands = _member_candidates(inp)
    else:
        if inp.rankings is not None:
            lists, tops, odd, lows = _given_lists(inp)
        else:
            (lists, tops, odd), lows = _own_lists(inp), None
        cands = _candidates(lists, inp.n_items)
    if cands.items.shape[1] < inp.k:
        return None
    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf rows are redone densely below
        values, absents, bounds = _candidate_values(
            inp, cands, lists, not own, tops if own else None, lows if own else None
        )
    if own:
        bounds = [np.where(o, np.float32(np.inf), t) for o, t in zip(odd, bounds, strict=True)]
    # The same float32 operations in the same order as _wsum_dense, on the candidate cells and on the bound.
    fused = values[0] * np.float32(inp.weights[0])
    bound = bounds[0] * np.float32(inp.weights[0])
    for w, v, t in zip(inp.weights[1:], values[1:], bounds[1:], strict=True):
        fused += np.float32(w) * v
        bound += np.float32(w) * t
    nobody = np.logical_and.reduce(absents) if len(absents) > 1 else absents[0]
    np.copyto(fused, np.float32(-np.inf), where=nobody)
    ranking, cols = _rank_columns(fused, cands, inp.k, inp.user_idx)
    contrib = np.stack([w * _take(v, cols) for w, v in zip(inp.weights, values, strict=True)], -1)
    contrib = contrib.astype(np.float32)
    kth = ranking.score[:, inp.k - 1]
    with np.errstate(invalid="ignore"):
        redo = np.flatnonzero(~(kth > bound))
    if redo.size:
        if redo.size == inp.n:
            return None
        _, r2, c2 = _wsum_whole(_with_normalised(inp, redo))
        ranking.item_idx[redo] = r2.item_idx
        ranking.score[redo] = r2.score
        contrib[redo] = c2
    return _Output(ranking, contrib)


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
