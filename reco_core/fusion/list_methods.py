"""Result-level list methods (rrf, borda, combsum, combmnz), each a point rule over the members' top-N.

They see only the members' top-N lists (training items excluded, padding -1/NaN at the end): an item
that no (positively weighted) member lists cannot be recommended by them. Ties in the fused score go to
the lower item index (the ranker's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reco_core.fusion.inputs import (
    _Candidates,
    _Inputs,
    _member_candidates,
    _Output,
    _rank_columns,
    _scatter,
    _take,
)
from reco_core.fusion.normalisers import NORMALISERS
from reco_core.ranking import Ranking


def _points_rrf(inp: _Inputs, r: Ranking, ctx: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """1 / (rrf_k + rank) for listed items; nothing for the others."""
    rank = np.arange(1, r.k + 1, dtype=np.float64)[None, :]
    return np.broadcast_to(1.0 / (inp.params["rrf_k"] + rank), r.item_idx.shape), None


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


# How many sets of member pieces (``_pieces``) a caller's cache keeps: the live loop fuses the same lists
# with new weights, usually with one method and one set of weighted members; a set costs one or two
# float64 cells per candidate per member (``live.session_bytes`` counts one set).
_KEPT_PIECES = 1


def _pieces(
    inp: _Inputs, rule: _ListRule, cands: _Candidates
) -> tuple[list[tuple[np.ndarray | None, np.ndarray]], np.ndarray | None]:
    """The weight-free part of every member's points over the candidate columns, and combmnz's list count.

    Per member: ``unlisted`` (borda: its points for every candidate, [n, M]; else None) and ``listed``
    (its points minus ``unlisted`` at its listed items' columns, 0 elsewhere). ``run`` multiplies them by
    the weight: ``w * unlisted + w * listed`` takes the same float64 steps as adding ``w * points`` into
    zeros, so caching them changes no bit. Kept in ``inp.cache`` (the live loop) between calls.
    """
    rankings = inp.rankings
    assert rankings is not None
    key = (
        "list-pieces",
        id(rule),
        inp.normaliser,
        tuple(sorted((str(k), float(v)) for k, v in inp.params.items())),
        id(cands),
        *(id(r.item_idx) for r in rankings),
    )
    if inp.cache is not None and key in inp.cache:
        return inp.cache[key]
    n, m_cols = cands.items.shape
    valid = cands.valid
    ctx = {"n_candidates": valid.sum(axis=1)}
    count = np.zeros((n, m_cols), dtype=np.float64) if rule.mnz else None
    per_member: list[tuple[np.ndarray | None, np.ndarray]] = []
    for j, r in enumerate(rankings):
        listed_pts, unlisted_pts = rule.points(inp, r, ctx)
        unlisted = None
        if unlisted_pts is not None:
            # Every candidate gets the member's "unlisted" points; its listed items get the difference.
            unlisted = np.where(valid, np.asarray(unlisted_pts, dtype=np.float64), 0.0)
            listed_pts = listed_pts - unlisted_pts
        listed = np.zeros((n, m_cols), dtype=np.float64)
        _scatter(np.asarray(listed_pts, dtype=np.float64), cands, j, listed)
        per_member.append((unlisted, listed))
        if count is not None:
            _scatter(np.ones(r.item_idx.shape), cands, j, count)
    out = (per_member, count)
    if inp.cache is not None:
        held = [k for k in inp.cache if isinstance(k, tuple) and k and k[0] == "list-pieces"]
        for old in held[: max(0, len(held) - _KEPT_PIECES + 1)]:
            del inp.cache[old]
        inp.cache[key] = out
    return out


def _list_method(rule: _ListRule) -> Callable[[_Inputs], _Output]:
    def run(inp: _Inputs) -> _Output:
        cands = _member_candidates(inp)
        valid = cands.valid
        pieces, count = _pieces(inp, rule, cands)
        per_member = []
        for w, (unlisted, listed) in zip(inp.weights, pieces, strict=True):
            mine = w * listed if unlisted is None else w * unlisted + w * listed
            per_member.append(mine)
        fused = np.asarray(sum(per_member))  # a no-op on the summed array; tells mypy it is not sum()'s 0
        if count is not None:
            fused = fused * count
            per_member = [p * count for p in per_member]
        key = np.where(valid, fused, -np.inf).astype(np.float32)
        ranking, cols = _rank_columns(key, cands, inp.k, inp.user_idx)
        contrib = np.stack([_take(p, cols) for p in per_member], -1)
        return _Output(ranking, contrib.astype(np.float32), dense=None, compact=(cands, fused))

    return run
