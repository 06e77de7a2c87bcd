"""Score-level methods: they need the members' masked score blocks, normalised per user row.

* ``wsum``: the weighted sum of the normalised scores over the full catalogue; ties in the fused score
  go to the lower item index (the ranker's rule).
* ``vote``: weighted votes over the members' top-N; ties by the weighted sum of normalised scores,
  then item index.
"""

from __future__ import annotations

import numpy as np

from reco_core.fusion.inputs import _gather, _Inputs, _member_candidates, _Output, _scatter, _take
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


def _wsum(inp: _Inputs) -> _Output:
    dense = _wsum_dense(inp)
    ranking = top_k(dense, inp.k, inp.user_idx)
    norm = inp.normalised
    assert norm is not None
    contrib = np.stack([w * _gather(v, ranking.item_idx) for w, v in zip(inp.weights, norm.values, strict=True)], -1)
    return _Output(ranking, contrib.astype(np.float32), dense=dense)


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
