"""What the beyond-accuracy metrics know about the catalogue, fixed per split: ``EvalContext``.

Training popularity (novelty, ARP, long-tail share), the genre matrix (ild_genre) and text vectors
(ild_text), each with a padded lookup so that list padding (-1) reads a neutral value, and the users'
training histories (miscalibration, serendipity, popularity gap). ``reco_core.metrics`` evaluates with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from reco_core.calibration import history_distribution, item_genre_table
from reco_core.data import Interactions, ItemCatalog
from reco_core.errors import ConfigError


@dataclass(frozen=True)
class EvalContext:
    """What beyond-accuracy metrics need to know about the catalogue, fixed per split.

    ``item_popularity`` holds training interaction counts; ``item_genres`` is the multi-hot
    item x genre matrix (``ItemCatalog.genre_matrix()``); ``item_vectors`` are text embeddings
    (re-normalised to unit length here if they are not). Either may be None: the metric that needs
    it is then skipped with a note (or refused with ``ConfigError`` when asked for by name).
    ``history`` is the training matrix (users x items; only which cells are stored matters) for the
    metrics that compare a list with what the user consumed; ``long_tail_head`` is the share of the
    catalogue, most popular first (ties by item index), that counts as the popular head.
    """

    n_items: int
    item_popularity: np.ndarray
    item_genres: sp.csr_matrix | None = None
    item_vectors: np.ndarray | None = None
    personalisation_pairs: int = 5000
    seed: int = 0
    history: sp.csr_matrix | None = None
    long_tail_head: float = 0.2
    # Derived lookups, each with one extra trailing row so that padding (-1) indexes a neutral value.
    _pop_pad: np.ndarray = field(init=False, repr=False, compare=False)
    _info_pad: np.ndarray = field(init=False, repr=False, compare=False)
    _genre_bits_pad: np.ndarray | None = field(init=False, repr=False, compare=False)
    _vectors_pad: np.ndarray | None = field(init=False, repr=False, compare=False)
    _sqnorm_pad: np.ndarray | None = field(init=False, repr=False, compare=False)
    _pop_rank_pad: np.ndarray = field(init=False, repr=False, compare=False)
    _genre_table_pad: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.n_items
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"EvalContext n_items={n!r} is not valid: give the catalogue size (at least 1)")
        pop = np.asarray(self.item_popularity)
        if (
            pop.shape != (n,)
            or not np.issubdtype(pop.dtype, np.number)
            or not np.isfinite(pop).all()
            or (pop < 0).any()
        ):
            raise ConfigError(
                f"EvalContext item_popularity must be {n} finite non-negative counts (one per item), got shape"
                f" {pop.shape}: build it with EvalContext.from_train(train)"
            )
        pop = pop.astype(np.int64)
        pairs = self.personalisation_pairs
        if not isinstance(pairs, (int, np.integer)) or pairs < 1:
            raise ConfigError(f"EvalContext personalisation_pairs={pairs!r} is not valid: give a whole number >= 1")
        object.__setattr__(self, "item_popularity", pop)
        total = max(int(pop.sum()), 1)
        info = -np.log2(np.maximum(pop, 1) / total)
        object.__setattr__(self, "_pop_pad", np.append(pop.astype(np.float64), 0.0))
        object.__setattr__(self, "_info_pad", np.append(info, 0.0))
        object.__setattr__(
            self, "_genre_bits_pad", None if self.item_genres is None else _genre_bits(self.item_genres, n)
        )
        vectors, sqnorm = (None, None) if self.item_vectors is None else _unit_vectors(self.item_vectors, n)
        object.__setattr__(self, "item_vectors", None if vectors is None else vectors[:-1])
        object.__setattr__(self, "_vectors_pad", vectors)
        object.__setattr__(self, "_sqnorm_pad", sqnorm)
        # Position of each item in the popularity order (most interactions first, ties by item index);
        # padding gets n, past every real item.
        order = np.lexsort((np.arange(n), -pop))
        rank = np.empty(n + 1, dtype=np.int64)
        rank[order] = np.arange(n)
        rank[n] = n
        object.__setattr__(self, "_pop_rank_pad", rank)
        object.__setattr__(
            self, "_genre_table_pad", None if self._genre_bits_pad is None else item_genre_table(self.item_genres)
        )
        head = self.long_tail_head
        if isinstance(head, bool) or not isinstance(head, (int, float, np.number)) or not 0 < float(head) < 1:
            raise ConfigError(
                f"EvalContext long_tail_head={head!r} is out of range: give the popular head's share of the"
                " catalogue, 0 < share < 1, such as 0.2"
            )
        if self.history is not None:
            h = self.history
            if not sp.issparse(h) or h.ndim != 2 or h.shape[1] != n:
                raise ConfigError(
                    f"EvalContext history must be a sparse users x {n} matrix, got {getattr(h, 'shape', type(h))}:"
                    " pass the split's train.matrix"
                )
            object.__setattr__(self, "history", sp.csr_matrix(h))

    # Per-user lookups over the whole history, built on first use (cached_property writes the instance
    # __dict__ directly, which a frozen dataclass allows) so a context whose history metrics are never
    # asked for costs nothing extra; every later evaluation only indexes them by user.

    @cached_property
    def history_keys(self) -> np.ndarray:
        """Sorted ``user * (n_items + 1) + popularity position`` of every training interaction."""
        h = self._require_history()
        rows = np.repeat(np.arange(h.shape[0], dtype=np.int64), np.diff(h.indptr))
        return np.sort(rows * (self.n_items + 1) + self._pop_rank_pad[h.indices])

    @cached_property
    def consumed_popularity(self) -> np.ndarray:
        """Mean training count of each user's training items (0 for a user without any)."""
        h = self._require_history()
        size = np.diff(h.indptr)
        rows = np.repeat(np.arange(h.shape[0]), size)
        total = np.bincount(rows, self._pop_pad[h.indices], minlength=h.shape[0])
        return np.divide(total, size, out=np.zeros(h.shape[0]), where=size > 0)

    @cached_property
    def history_genres(self) -> np.ndarray:
        """p(g | u) of every user's training history [n_users, genres] (reco_core.calibration)."""
        h = self._require_history()
        if self._genre_table_pad is None:
            raise ConfigError(
                "the EvalContext has no item genres: build it with EvalContext.from_train(train, catalog)"
            )
        return history_distribution(self._genre_table_pad[:-1], h, np.arange(h.shape[0]))

    def _require_history(self) -> sp.csr_matrix:
        if self.history is None:
            raise ConfigError("the EvalContext has no training histories: build it with EvalContext.from_train(train)")
        return self.history

    @property
    def head_size(self) -> int:
        """How many items form the popular head: ceil(long_tail_head x catalogue), at least 1."""
        return max(1, int(np.ceil(float(self.long_tail_head) * self.n_items - 1e-9)))

    @classmethod
    def from_train(
        cls,
        train: Interactions,
        catalog: ItemCatalog | None = None,
        item_vectors: np.ndarray | None = None,
        personalisation_pairs: int = 5000,
        seed: int = 0,
        long_tail_head: float = 0.2,
    ) -> EvalContext:
        """Popularity from ``train``; genres from ``catalog`` (left out when it has no genres at all)."""
        genres = None
        if catalog is not None:
            if catalog.items != train.items:
                raise ConfigError(
                    f"catalog has {len(catalog.items)} items that do not match the {train.n_items} items of train:"
                    " pass the catalogue of the same dataset"
                )
            g = catalog.genre_matrix()
            genres = g if g.shape[1] > 0 and g.nnz > 0 else None
        return cls(
            n_items=train.n_items,
            item_popularity=train.item_counts(),
            item_genres=genres,
            item_vectors=item_vectors,
            personalisation_pairs=personalisation_pairs,
            seed=seed,
            history=train.matrix,
            long_tail_head=long_tail_head,
        )


def _genre_bits(genres: sp.spmatrix, n_items: int) -> np.ndarray:
    """Genre sets as uint64 bit masks [n_items + 1, words]; the last row (padding) is empty."""
    g = sp.csr_matrix(genres)
    if g.shape[0] != n_items:
        raise ConfigError(
            f"EvalContext item_genres has {g.shape[0]} rows but the catalogue has {n_items} items:"
            " pass ItemCatalog.genre_matrix() of the same dataset"
        )
    g.eliminate_zeros()
    words = max(1, -(-g.shape[1] // 64))
    bits = np.zeros((n_items + 1, words), dtype=np.uint64)
    rows = np.repeat(np.arange(n_items), np.diff(g.indptr))
    cols = g.indices.astype(np.int64)
    # A set bit per (item, genre); bitwise_or.at because one word may receive several genres.
    np.bitwise_or.at(bits, (rows, cols // 64), np.left_shift(np.uint64(1), (cols % 64).astype(np.uint64)))
    return bits


def _unit_vectors(vectors: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length float32 vectors [n_items + 1, d] (last row zero, for padding) and squared norms (float64)."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != n_items or not np.issubdtype(v.dtype, np.number):
        raise ConfigError(
            f"EvalContext item_vectors must be a numeric [{n_items}, d] array, got shape {v.shape}:"
            " pass one embedding per catalogue item"
        )
    if not np.isfinite(v).all():
        raise ConfigError("EvalContext item_vectors contain NaN or inf: fix the embeddings before evaluating")
    v = v.astype(np.float32)
    norms = np.linalg.norm(v.astype(np.float64), axis=1)
    if not np.allclose(norms[norms > 0], 1.0, atol=1e-4):
        v = (v / np.where(norms > 0, norms, 1.0)[:, None]).astype(np.float32)
    padded = np.vstack([v, np.zeros((1, v.shape[1]), dtype=np.float32)])
    sqnorm = np.einsum("ij,ij->i", padded.astype(np.float64), padded.astype(np.float64))
    return padded, sqnorm
