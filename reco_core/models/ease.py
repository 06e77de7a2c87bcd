"""EASE (Steck, 2019): a closed-form item-item linear model with a zero diagonal.

    G = X^T X + lambda I,   P = G^-1,   B = I - P / diag(P)   (column j divided by P[j, j])
    score(u, j) = sum_i X[u, i] B[i, j]

X is the binary training matrix (or the ratings when ``use_ratings`` is on). B has a zero diagonal,
so an item never recommends itself. The inverse is dense: n_items^2 float64 cells, so EASE refuses
(ScaleError, before allocating anything) catalogues above ``max_items``; item-kNN is the sparse
alternative. A user (or profile) with no interactions cannot be scored: the row is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from reco_core.data import Interactions
from reco_core.errors import ScaleError
from reco_core.models._profiles import interaction_matrix, nan_empty_rows, profile_row
from reco_core.models.base import Context, ModelConfig, Scorer, param, register


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    reg: float = param(500.0, low=1.0, high=5000.0, step=10.0, log=True, help="L2 penalty lambda on B.")
    use_ratings: bool = param(False, help="Fit on rating values instead of binary interactions.")
    max_items: int = param(
        20_000, low=100, high=100_000, step=100, help="Refuse larger catalogues: the dense inverse needs n^2 x 8 bytes."
    )


def ease_weights(x: sp.csr_matrix, reg: float) -> np.ndarray:
    """B = I - P / diag(P) with P = (X^T X + reg I)^-1, as float64 [n_items, n_items]."""
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += reg
    # G is symmetric positive definite (reg > 0): a Cholesky-based inverse is stable and ~2x faster.
    p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False, assume_a="pos")
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


@register
class EASE(Scorer[EASEConfig]):
    """Embarrassingly shallow autoencoder: closed-form item-item weights with a zero diagonal."""

    name = "ease"
    label = "EASE"
    kind = "user"
    config_cls = EASEConfig
    description = "Closed-form linear item-item model (Steck 2019); strong on small and medium catalogues."

    def _fit(self, train: Interactions, context: Context) -> None:
        n = train.n_items
        if n > self.config.max_items:
            gib = 3 * n * n * 8 / 2**30  # Gram, inverse and B each hold n^2 float64 at the peak
            raise ScaleError(
                f"EASE on {n:,} items needs a dense {n:,} x {n:,} inverse (about {gib:,.1f} GiB): "
                f"use itemknn instead, or raise ease max_items above {self.config.max_items:,} if memory allows"
            )
        self._x = interaction_matrix(train, self.config.use_ratings)
        context.report(0.0, "EASE: inverting the item-item Gram matrix")
        # One BLAS thread: steady on a shared machine and identical results run to run.
        with threadpool_limits(1, "blas"):
            self._b = ease_weights(self._x, self.config.reg).astype(np.float32)
        context.report(1.0, "EASE: done")

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        rows = self._x[user_idx]
        return nan_empty_rows(np.asarray(rows @ self._b, dtype=np.float32), rows)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if item_idx.size == 0:
            return np.full(self._b.shape[0], np.nan, dtype=np.float32)
        row = profile_row(item_idx, values, self._b.shape[0], self.config.use_ratings)
        return np.asarray(row @ self._b, dtype=np.float32).ravel()

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """B[i, j]: how much liking item i adds to item j's score (can be negative)."""
        self._check_fitted()
        return self._b[np.ix_(np.asarray(item_idx, dtype=np.int64), np.asarray(to_items, dtype=np.int64))]
