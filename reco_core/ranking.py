"""The one ranker: top_k over score blocks, training items excluded.

``torch.topk`` is used because on this machine it was about 6.5x faster than ``np.argpartition``
on float32 blocks (DESIGN.md section 7); torch is already a dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from reco_core.checks import check_whole
from reco_core.errors import ConfigError
from reco_core.ids import IdMap


@dataclass(frozen=True)
class Ranking:
    """Top-k lists: ``item_idx[n, k]`` (int32, -1 = padding) and ``score[n, k]`` (NaN = padding)."""

    user_idx: np.ndarray
    item_idx: np.ndarray
    score: np.ndarray

    @property
    def k(self) -> int:
        return self.item_idx.shape[1]

    def __len__(self) -> int:
        return len(self.user_idx)

    @classmethod
    def concat(cls, parts: Sequence[Ranking]) -> Ranking:
        """The rankings of ``parts`` end to end (users in the order given); all parts must share k."""
        return cls(
            np.concatenate([p.user_idx for p in parts]),
            np.concatenate([p.item_idx for p in parts]),
            np.concatenate([p.score for p in parts]),
        )

    def head(self, k: int) -> Ranking:
        """The first k columns (a ranking at a smaller k)."""
        return Ranking(self.user_idx, self.item_idx[:, :k], self.score[:, :k])

    def to_frame(self, users: IdMap, items: IdMap) -> pd.DataFrame:
        """Long frame (user, rank, item, score) with external ids; padding left out."""
        valid = self.item_idx >= 0
        rows, cols = np.nonzero(valid)
        return pd.DataFrame(
            {
                "user": users.ids_of(self.user_idx[rows]),
                "rank": (cols + 1).astype(np.int64),
                "item": items.ids_of(self.item_idx[rows, cols]),
                "score": self.score[rows, cols].astype(np.float64),
            }
        )


def check_k(k: int, n_items: int) -> None:
    """k must be a positive integer no larger than the catalogue."""
    check_whole(k, "k")
    if k > n_items:
        raise ConfigError(f"k={k} is larger than the catalogue ({n_items} items): choose k <= {n_items}")


def excluded_cells(exclude: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(block row, item) of every stored cell of ``exclude``'s ``rows``: where ``mask_rows`` writes -inf.

    Read straight from the CSR arrays: scipy's ``exclude[rows]`` builds a matrix first, which cost more
    than the masking itself on small blocks. A caller masking several members' blocks of the same users
    computes this once (``scale.rank_fusion_blocked``).
    """
    rows = np.asarray(rows, dtype=np.int64)
    starts = exclude.indptr[rows].astype(np.int64)
    lengths = exclude.indptr[rows + 1] - starts
    block_row = np.repeat(np.arange(len(rows)), lengths)
    # Position of each cell in exclude.indices: its row's start plus its place within the row.
    offsets = np.cumsum(lengths) - lengths
    pos = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
    return block_row, exclude.indices[pos]


def mask_rows(
    scores: np.ndarray,
    exclude: sp.csr_matrix | None,
    rows: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Set excluded (user, item) cells of a score block to -inf, in place; returns the block.

    ``cells``: ``excluded_cells(exclude, rows)`` when the caller has it already."""
    if exclude is None:
        return scores
    r, c = excluded_cells(exclude, rows) if cells is None else cells
    scores[r, c] = -np.inf
    return scores


def top_k(
    scores: np.ndarray,
    k: int,
    user_idx: np.ndarray | None = None,
    exclude: sp.csr_matrix | None = None,
) -> Ranking:
    """Top-k items per row of ``scores`` (float32 [n, n_items]).

    ``exclude`` is a users x items CSR whose stored cells are never recommended (the training
    items); row ``i`` of ``scores`` belongs to user ``user_idx[i]``. NaN ("cannot score"), excluded
    cells and cells already set to -inf are never ranked; rows with fewer than k rankable items are
    padded with -1 / NaN. Ties are broken by the lower item index, so results are deterministic.
    """
    try:
        scores = np.asarray(scores)
    except (TypeError, ValueError):  # ragged nested lists
        raise ConfigError("scores are not a block: give a 2-d array [users, items] with one row per user") from None
    if scores.ndim != 2:
        raise ConfigError(f"scores of shape {scores.shape} are not a block: give a 2-d array [users, items]")
    n, n_items = scores.shape
    check_k(k, n_items)
    if user_idx is None:
        user_idx = np.arange(n, dtype=np.int32)
    _check_rows(np.asarray(user_idx), n, n_items, exclude)
    try:
        block = np.array(scores, dtype=np.float32, copy=True)
    except (TypeError, ValueError):
        raise ConfigError(
            f"scores of dtype {scores.dtype} are not numbers: give a float block [users, items]"
        ) from None
    # NaN -> -inf (fmax ignores NaN); -inf cells (already masked) stay unrankable; +inf -> largest float.
    # Same result as nan_to_num(nan=-inf, neginf=-inf), about 6x faster on a 943 x 1,682 block.
    np.fmax(block, np.float32(-np.inf), out=block)
    np.minimum(block, np.finfo(np.float32).max, out=block)
    mask_rows(block, exclude, np.asarray(user_idx))
    # Neither torch.topk nor argpartition promises an order among equal values; the rows where that could
    # matter are found below and ranked again by (score desc, item asc), so the method does not change
    # any list.
    vals_np, idx_np = _top_sorted(block, k)
    ties = (vals_np[:, :-1] == vals_np[:, 1:]).any(axis=1) if k > 1 else np.zeros(n, bool)
    if k < n_items:
        ties |= _boundary_ties(block, vals_np, k)
    if ties.any():
        rows = np.flatnonzero(ties)
        idx_np[rows], vals_np[rows] = _stable_top_k(block[rows], k, vals_np[rows, k - 1])
    invalid = ~np.isfinite(vals_np)
    idx_np = np.where(invalid, -1, idx_np).astype(np.int32)
    vals_np = np.where(invalid, np.nan, vals_np).astype(np.float32)
    return Ranking(np.asarray(user_idx, dtype=np.int32), idx_np, vals_np)


def _check_rows(users: np.ndarray, n: int, n_items: int, exclude: sp.csr_matrix | None) -> None:
    """One integer user index per row, and an ``exclude`` matrix over the same catalogue that holds them."""
    if users.shape != (n,) or (users.size and users.dtype.kind not in "iu"):
        raise ConfigError(
            f"user_idx of shape {users.shape} ({users.dtype}) does not fit {n} score rows: give one integer user"
            " index per row"
        )
    if exclude is None:
        return
    if exclude.shape[1] != n_items:
        raise ConfigError(
            f"exclude has {exclude.shape[1]} items but the scores have {n_items}: exclude with the same split's train"
        )
    if users.size and (users.min() < 0 or users.max() >= exclude.shape[0]):
        raise ConfigError(f"user_idx must be in 0..{exclude.shape[0] - 1} (the rows of exclude)")


# Rows at most this wide are ranked with numpy's argpartition: on a narrow block (the candidate columns of
# the fusion methods) it took about half of torch.topk's CPU time here (943 x 300, k = 10: 1.8 vs 3.2 ms),
# and torch's thread pool slowed small calls several-fold when other jobs shared the cores. Wider rows
# (the catalogue) go to torch.topk, which was ~6.5x faster there (DESIGN.md section 7).
_NARROW_ROWS = 512


def _top_sorted(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values float32 [n, k], columns int32 [n, k]) of each row's k largest cells, by descending value;
    equal values in any order (``top_k`` settles ties). ``block`` has no NaN."""
    width = block.shape[1]
    if width > _NARROW_ROWS:
        top = torch.topk(torch.from_numpy(block), k, dim=1, largest=True, sorted=True)
        return top.values.numpy(), top.indices.numpy().astype(np.int32)
    cols = np.argpartition(block, width - k, axis=1)[:, width - k :] if k < width else np.indices(block.shape)[1]
    vals = np.take_along_axis(block, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(cols, order, axis=1).astype(np.int32)


def _boundary_ties(block: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Rows where an item outside the top k ties with the k-th score (topk may pick either)."""
    kth = vals[:, k - 1 : k]
    return (np.isfinite(kth[:, 0])) & ((block == kth).sum(axis=1) > 1)


def _stable_top_k(block: np.ndarray, k: int, kth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top k of each row by (score desc, item asc), sorting only the cells at or above the row's k-th
    score ``kth`` (at least k per row): a full-row argsort cost ~20x more on tied 943 x 1,682 blocks."""
    r, c = np.nonzero(block >= kth[:, None])
    v = block[r, c]
    order = np.lexsort((c, -v, r))  # by row, then score descending, then item ascending
    starts = np.concatenate(([0], np.cumsum(np.bincount(r, minlength=block.shape[0]))[:-1]))
    take = order[starts[:, None] + np.arange(k)]
    return c[take].astype(np.int32), v[take]
