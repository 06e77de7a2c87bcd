"""Interleaving (weighted round robin, team draft): members take the fused list's slots in turn.

There is no fused score: a slot's "score" is ``k - position``. Ties between members go to the earlier
member (round robin) or to a seeded coin flip that depends only on (seed, user, slot, member) (team draft).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reco_core.fusion.inputs import _Inputs, _Output
from reco_core.ranking import Ranking

# Interleaving deficits closer than this are a tie (shares are floats such as 1/3).
_DEFICIT_TOL = 1e-9


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
