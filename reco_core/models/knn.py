"""Neighbourhood models: item-kNN and user-kNN with cosine similarity, sparse top-K neighbours.

Cosine with shrinkage between two columns a, b of a matrix M (items of X for item-kNN, users of
X^T for user-kNN):

    sim(a, b) = (M_a . M_b) / (||M_a|| ||M_b|| + shrink),     sim(a, a) = 0

Only the K most similar neighbours of each column are kept, so the model is a sparse matrix and
fits at any catalogue size: the Gram matrix is built in column blocks of bounded size, dense where most
columns share rows, sparse (near-linear in the interactions) on a wide, sparse catalogue (``cosine_top_k``).
Ties at the K-th place go to the lower index, so the neighbour lists are the same on every platform.
X is the binary training matrix (every stored cell 1), or the ratings when ``use_ratings`` is on.

- item-kNN: S[i, j] = sim(i, j) if i is one of item j's K neighbours (``prune="target"``, the default),
  or if j is one of item i's K neighbours counting i itself (``prune="source"``, implicit's convention);
  score(u, j) = sum_i X[u, i] S[i, j].
- user-kNN: W[u, v] = sim(u, v) if v is one of user u's K neighbours; score(u, j) = sum_v W[u, v] X[v, j].

A user (or profile) with no interactions cannot be scored: the row is NaN.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from reco_core.data import Interactions
from reco_core.errors import ConfigError
from reco_core.models._profiles import interaction_matrix, nan_empty_rows, profile_row
from reco_core.models.base import Context, ModelConfig, Scorer, param, register

# Bytes allowed for one block of the Gram matrix while selecting neighbours (dense cells, or a sparse
# block's stored products at 32 bytes each).
_BLOCK_BYTES = 64 * 2**20
# The sparse layout is used when the pairs of columns sharing a row are fewer than n_cols^2 / this.
# Measured on the 2-core machine: the dense layout costs about 6e-8 s per Gram cell (n_cols^2), the sparse
# one about 5e-7 s per product (``pair_work``), so they break even near 8.
_DENSE_RATIO = 8


PRUNE_RULES = ("target", "source")


def top_rows(values: np.ndarray, keep: int) -> np.ndarray:
    """bool mask of ``values``'s shape: per column, the ``keep`` largest rows; ties go to the lower row index.

    Exact ties are common (two items rated by the same users have equal cosines), and which of them
    ``np.argpartition`` returns depends on its introselect path, so the neighbour lists could differ
    between numpy builds and platforms. Everything strictly above the keep-th largest value is kept,
    then the tied rows at that value in row order until ``keep`` are chosen.
    """
    n = values.shape[0]
    if keep >= n:
        return np.ones(values.shape, dtype=bool)
    if keep <= 0:
        return np.zeros(values.shape, dtype=bool)
    kth = -np.partition(-values, keep - 1, axis=0)[keep - 1]
    above = values > kth
    tied = values == kth
    room = keep - above.sum(axis=0)
    return above | (tied & (np.cumsum(tied, axis=0, dtype=np.int32) <= room))


def pair_work(m: sp.spmatrix) -> np.ndarray:
    """Per column j of ``m``: the multiply-adds of ``m_j . m_i`` over every other column i (int64 [n_cols]).

    That is the sum, over the rows r where column j is stored, of row r's number of stored cells; it
    bounds the stored similarities of column j (the pairs of columns that share a row) and sums to
    ``sum_r nnz(r)^2`` over the matrix. Linear in the stored cells to compute.
    """
    csc = sp.csc_matrix(m)
    row_nnz = np.diff(sp.csr_matrix(m).indptr).astype(np.int64)
    per_cell = np.concatenate([[0], np.cumsum(row_nnz[csc.indices])])
    return per_cell[csc.indptr[1:]] - per_cell[csc.indptr[:-1]]


def cosine_top_k(
    m: sp.csr_matrix, k: int, shrink: float = 0.0, prune: str = "target", *, layout: str = "auto"
) -> sp.csc_matrix:
    """Sparse S [n_cols, n_cols] of the cosine similarities between the columns of ``m``, pruned to K per item.

    sim(a, b) = m_a . m_b / (||m_a|| ||m_b|| + shrink). S[i, j] is what liking i adds to j's score.

    - ``prune="target"``: column j keeps the ``k`` columns most similar to j, the item itself not
      counted (every candidate is scored from its own K neighbours).
    - ``prune="source"``: row i keeps the ``k`` columns most similar to i, counting i itself as one of
      them (implicit's ``CosineRecommender`` convention: each liked item passes its score to its K - 1
      nearest others).

    Ties at the K-th place go to the lower item index (``top_rows``), so the lists are the same on every
    platform. Self-similarity and zero similarities are never stored.

    ``layout`` says how the Gram matrix is walked; both give the same matrix, bit for bit:

    - ``"dense"``: column blocks of ``n_cols x block`` dense cells (``_BLOCK_BYTES``), then ``top_rows``.
      Time grows with n_cols^2 whatever the data: right when most pairs of columns share a row
      (MovieLens-100K: 943 users, 1,682 items).
    - ``"sparse"``: the block's products stay sparse and the K largest are selected among the stored
      similarities only (``_top_stored``). Time and memory grow with the pairs of columns that share a
      row (``pair_work``: sum over rows of nnz(row)^2), near-linear in the interactions of a wide,
      sparse catalogue (10,000 users x 100,000 items, 98,000 interactions: about 1 s, where the dense
      blocks would take about 10 minutes).
    - ``"auto"`` (default): sparse when those pairs are fewer than ``n_cols^2 / _DENSE_RATIO``.
    """
    if prune not in PRUNE_RULES:
        raise ConfigError(f"prune={prune!r} is not valid: choose one of {', '.join(PRUNE_RULES)}")
    if layout not in ("auto", "dense", "sparse"):
        raise ConfigError(f"layout={layout!r} is not valid: choose auto, dense or sparse")
    m = sp.csc_matrix(m, dtype=np.float32)
    n = m.shape[1]
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0), dtype=np.float64).ravel())
    keep = min(k, n) if prune == "source" else min(k, max(n - 1, 0))
    work = pair_work(m) if layout != "dense" else None
    if layout == "auto":
        assert work is not None
        layout = "sparse" if float(work.sum()) * _DENSE_RATIO < float(n) * float(n) else "dense"
    if work is not None and layout == "sparse":
        parts = _sparse_pairs(m, work, norms, keep, shrink, prune)
    else:
        parts = _dense_pairs(m, norms, keep, shrink, prune)
    if not parts:
        return sp.csc_matrix((n, n), dtype=np.float32)
    near = np.concatenate([p[0] for p in parts])
    this = np.concatenate([p[1] for p in parts])
    vals = np.concatenate([p[2] for p in parts])
    # Per target the neighbours are the sources (rows of S); per source they are the targets.
    rows, cols = (near, this) if prune == "target" else (this, near)
    out = sp.csc_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _dense_pairs(m: sp.csc_matrix, norms: np.ndarray, keep: int, shrink: float, prune: str) -> list[_Pairs]:
    """(near, this, float32 similarity) of the chosen pairs, from dense Gram blocks of n x block columns."""
    n = m.shape[1]
    mt = m.T.tocsr()
    block = max(1, min(n, _BLOCK_BYTES // max(1, 4 * n)))
    out = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        gram = (mt @ m[:, start:stop]).toarray().astype(np.float64)
        denom = norms[:, None] * norms[None, start:stop] + shrink
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = np.where(denom > 0, gram / np.where(denom > 0, denom, 1.0), 0.0)
        diagonal = (np.arange(start, stop), np.arange(stop - start))
        if prune == "target":
            sim[diagonal] = 0.0
        chosen = top_rows(sim, keep)
        chosen[diagonal] = False
        chosen &= sim != 0
        near, this = np.nonzero(chosen)
        out.append((near, this + start, sim[near, this].astype(np.float32)))
    return out


def _sparse_pairs(
    m: sp.csc_matrix, work: np.ndarray, norms: np.ndarray, keep: int, shrink: float, prune: str
) -> list[_Pairs]:
    """The same pairs as ``_dense_pairs``, from sparse products whose stored cells are bounded per block.

    Column blocks are cut so that each block's products (``work``) stay under ``_BLOCK_BYTES / 32``
    stored cells (a column with more gets a block of its own). The block's Gram columns are computed as
    rows of ``m[:, block].T @ m``: the same sums over the same rows in the same order as the dense
    layout's ``m.T @ m[:, block]``, so every similarity is equal bit for bit.
    """
    n = m.shape[1]
    mr = m.tocsr()
    budget = max(1, _BLOCK_BYTES // 32)
    ends = np.cumsum(work)
    out = []
    start = 0
    while start < n:
        before = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, before + budget, side="right")))
        stop = min(stop, n)
        g = (m[:, start:stop].T.tocsr() @ mr).tocsr()
        this = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(g.indptr))
        near = g.indices.astype(np.int64)
        gram = g.data.astype(np.float64)
        denom = norms[near] * norms[this + start] + shrink
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = np.where(denom > 0, gram / np.where(denom > 0, denom, 1.0), 0.0)
        if prune == "target":
            sim[near == this + start] = 0.0
        chosen = _top_stored(this, near, sim, stop - start, n, keep)
        chosen &= near != this + start
        out.append((near[chosen], this[chosen] + start, sim[chosen].astype(np.float32)))
        start = stop
    return out


def _top_stored(this: np.ndarray, near: np.ndarray, sim: np.ndarray, width: int, n: int, keep: int) -> np.ndarray:
    """bool mask over the stored cells (column ``this``, row ``near``, value ``sim``) of a block of ``width``
    columns with ``n`` rows each: the nonzero cells ``top_rows`` would keep on the dense block.

    Unstored cells are zeros. In ``top_rows``'s order (value descending, then lower row) a column lists
    its positive cells, then all its zeros, then its negative ones; so a positive cell's place is its rank
    among the column's positives, a negative cell's is that plus the column's zeros, and a cell is kept
    when its place is below ``keep``.
    """
    nonzero = sim != 0
    order = np.flatnonzero(nonzero)
    order = order[np.lexsort((near[order], -sim[order], this[order]))]
    col = this[order]
    per = np.bincount(col, minlength=width)
    first = np.concatenate([[0], np.cumsum(per)[:-1]])
    place = np.arange(len(order), dtype=np.int64) - first[col]
    positives = np.bincount(col, weights=sim[order] > 0, minlength=width).astype(np.int64)
    zeros = n - per
    place = np.where(place >= positives[col], place + zeros[col], place)
    chosen = np.zeros(len(sim), dtype=bool)
    chosen[order[place < keep]] = True
    return chosen


# Rows per thread below which scoring stays on the calling thread (a thread's start-up costs more).
_MIN_ROWS_PER_THREAD = 16


@functools.cache
def _dense_rows_kernel() -> Callable[..., None] | None:
    """The compiled kernel of ``rows_times_sparse`` (numba, compiled on first use), or None without numba.

    Per output row: for each stored cell (i, v) of the row of ``a``, add ``v * b[i, :]`` into the dense
    row, in stored order: the very additions, in the very order, of scipy's sparse product
    (``csr_matmat``), so the sums are equal bit for bit, but written straight into the dense block. scipy
    instead counts the product's cells in a first pass, fills a sparse result (96% full at 10M size) in a
    second and densifies it in a third: the kernel took about 2.7x less CPU per user on synthetic 10M.
    """
    try:
        import numba
    except ImportError:  # numba is optional: scipy's product gives the same numbers, slower
        return None

    @numba.njit(nogil=True, cache=True)
    def kernel(a_ptr, a_idx, a_val, rows, b_ptr, b_idx, b_val, out):
        for r in range(len(rows)):
            u = rows[r]
            for p in range(a_ptr[u], a_ptr[u + 1]):
                i = a_idx[p]
                v = a_val[p]
                for q in range(b_ptr[i], b_ptr[i + 1]):
                    out[r, b_idx[q]] += v * b_val[q]

    return kernel


def rows_times_sparse(a: sp.csr_matrix, rows: np.ndarray, b: sp.csr_matrix, threads: int | None = None) -> np.ndarray:
    """``(a[rows] @ b).toarray()`` as float32, equal to it bit for bit, without the sparse intermediate.

    ``a`` and ``b`` are CSR with sorted indices (the fitted models' matrices). With numba the product is
    written straight into the dense block (``_dense_rows_kernel``), the rows split over ``threads``
    threads (default ``torch.get_num_threads()``, the engine's intra-op thread count, which
    ``reco_core.scale`` sets to 1 inside its own worker threads); each row is computed by one thread
    whatever the split, so the result does not depend on it. Without numba: scipy's product.
    """
    rows = np.asarray(rows, dtype=np.int64)
    a, b = a.tocsr(), b.tocsr()  # no copy when they already are
    kernel = _dense_rows_kernel()
    dtype = np.result_type(a.dtype, b.dtype)
    if kernel is None or dtype not in (np.float32, np.float64):
        return np.asarray((a[rows] @ b).toarray(), dtype=np.float32)
    a_val, b_val = a.data.astype(dtype, copy=False), b.data.astype(dtype, copy=False)
    out = np.zeros((len(rows), b.shape[1]), dtype=dtype)
    n_threads = max(1, min(threads or torch.get_num_threads(), len(rows) // _MIN_ROWS_PER_THREAD))

    def part(chunk: slice) -> None:
        kernel(a.indptr, a.indices, a_val, rows[chunk], b.indptr, b.indices, b_val, out[chunk])

    if n_threads == 1:
        part(slice(None))
    else:
        bounds = np.linspace(0, len(rows), n_threads + 1).astype(int)
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(part, [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]))
    return out.astype(np.float32, copy=False)


def _neighbours(default: int, per: str) -> Any:
    """The K field: the same range for both models, each with its own default."""
    return param(default, low=1, high=2000, step=1, help=f"Neighbours kept per {per} (K).")


@dataclass(frozen=True)
class KNNConfig(ModelConfig):
    """What item-kNN and user-kNN share; each redeclares ``k`` with its own default (fields keep this order)."""

    k: int = _neighbours(50, "item or user")
    shrink: float = param(
        0.0, low=0.0, high=1000.0, step=1.0, help="Added to the cosine denominator; damps rare co-occurrences."
    )
    use_ratings: bool = param(False, help="Weight interactions by rating instead of treating each as 1.")


@dataclass(frozen=True)
class ItemKNNConfig(KNNConfig):
    k: int = _neighbours(100, "item")
    prune: str = param(
        "target",
        choices=PRUNE_RULES,
        help="Which K neighbours are kept: per candidate item ('target', the default) or per liked item,"
        " counting the item itself ('source', implicit's CosineRecommender).",
    )


@register
class ItemKNN(Scorer[ItemKNNConfig]):
    """Item-based collaborative filtering: score(u, j) = sum over u's items i of S[i, j] (top-K cosine)."""

    name = "itemknn"
    label = "Item-kNN"
    kind = "user"
    config_cls = ItemKNNConfig
    description = "Recommends items similar (cosine, K nearest neighbours) to the items the user interacted with."

    def _fit(self, train: Interactions, context: Context) -> None:
        self._x = interaction_matrix(train, self.config.use_ratings)
        self._sim = cosine_top_k(self._x, self.config.k, self.config.shrink, self.config.prune).tocsr()

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        out = rows_times_sparse(self._x, user_idx, self._sim)
        return nan_empty_rows(out, self._x[user_idx])

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        row = profile_row(item_idx, values, self._sim.shape[0], self.config.use_ratings)
        return nan_empty_rows((row @ self._sim).toarray().astype(np.float32), row)[0]

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """S[i, j]: how much liking item i adds to item j's score (0 when i is not among j's K neighbours)."""
        self._check_fitted()
        return self._sim[np.asarray(item_idx, dtype=np.int64)][:, np.asarray(to_items, dtype=np.int64)].toarray()


@dataclass(frozen=True)
class UserKNNConfig(KNNConfig):
    k: int = _neighbours(50, "user")


@register
class UserKNN(Scorer[UserKNNConfig]):
    """User-based collaborative filtering: score(u, j) = sum over u's K nearest users v of W[u, v] X[v, j]."""

    name = "userknn"
    label = "User-kNN"
    kind = "user"
    config_cls = UserKNNConfig
    description = "Recommends what the most similar users (cosine, K nearest neighbours) interacted with."

    def _fit(self, train: Interactions, context: Context) -> None:
        self._x = interaction_matrix(train, self.config.use_ratings)
        # cosine_top_k keeps neighbours per column; users are the columns of X^T, and the transpose
        # gives one row of neighbour weights per user.
        self._neighbours = cosine_top_k(self._x.T.tocsr(), self.config.k, self.config.shrink).T.tocsr()
        self._user_norms = np.sqrt(np.asarray(self._x.multiply(self._x).sum(axis=1), dtype=np.float64).ravel())

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        out = rows_times_sparse(self._neighbours, user_idx, self._x)
        return nan_empty_rows(out, self._x[user_idx])

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        row = profile_row(item_idx, values, self._x.shape[1], self.config.use_ratings)
        if row.nnz == 0:
            return np.full(self._x.shape[1], np.nan, dtype=np.float32)
        dots = np.asarray((self._x @ row.T).toarray(), dtype=np.float64).ravel()
        denom = self._user_norms * float(np.sqrt(row.multiply(row).sum())) + self.config.shrink
        sims = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        # Same neighbour rule as in fit: the K most similar training users, zero similarities dropped.
        top = np.flatnonzero(top_rows(sims[:, None], self.config.k)[:, 0] & (sims != 0))
        return np.asarray(sims[top] @ self._x[top].toarray(), dtype=np.float32)
