"""ALS and BPR matrix factorisation through the ``implicit`` library (CPU classes, seeded).

Both learn user factors U and item factors V from the binary training matrix (or the ratings when
``use_ratings`` is on); score(u, j) = U[u] . V[j], computed as a dense float32 block for the
requested users only.

- ALS (Hu, Koren and Volinsky 2008): confidence c = 1 + alpha * x on observed cells; implicit's
  conjugate-gradient solver. A new profile is folded in with implicit's own ``recalculate_user``
  (an exact least-squares solve against the fixed item factors).
- BPR (Rendle et al. 2009): pairwise ranking loss, SGD with sampled negatives. implicit stores an
  item bias as the last factor column and a constant 1 in the user's last column. implicit 0.7.3's
  BPR has no ``recalculate_user`` (it raises NotImplementedError), so a new profile is folded in
  by maximising the same BPR objective over the user vector with the item factors fixed:
  full-batch gradient ascent, ``iterations`` steps of ``learning_rate * |profile|`` each, which is
  the expected SGD update of one training epoch for a user with that many items.

Fitting runs with one BLAS thread (threadpoolctl) and, for BPR, one SGD thread: implicit's
multi-threaded BPR updates shared item factors without locks, so results would change run to run.
A user (or profile) with no interactions cannot be scored: the row is NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from reco_core.data import Interactions
from reco_core.errors import FitError
from reco_core.models._profiles import interaction_matrix, nan_empty_rows, profile_row
from reco_core.models.base import ConfigT, Context, ModelConfig, Scorer, param, register

# Negatives used per BPR fold-in: all items on small catalogues, a seeded sample on large ones
# (the gradient is a mean over pairs, so a sample keeps memory bounded at any catalogue size).
_FOLD_IN_NEGATIVES = 4096


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between the rows of a and b (a zero vector has similarity 0 to everything)."""
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    a = np.divide(a, na, out=np.zeros_like(a), where=na > 0)
    b = np.divide(b, nb, out=np.zeros_like(b), where=nb > 0)
    return (a @ b.T).astype(np.float32)


class _FactorModel(Scorer[ConfigT]):
    """Shared scoring for factor models: U[rows] @ V^T, NaN for users with no training items."""

    _user_factors: np.ndarray
    _item_factors: np.ndarray
    _x: sp.csr_matrix

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        out = np.asarray(self._user_factors[user_idx] @ self._item_factors.T, dtype=np.float32)
        return nan_empty_rows(out, self._x[user_idx])

    def _fit_model(self, make: Callable[[], Any], fix: str) -> Any:
        """Build (``make()``) and fit an ``implicit`` model on ``self._x`` with one BLAS thread; keep its factors.

        Built inside the thread limit too: implicit's constructor checks the BLAS thread count and warns.
        implicit reports NaN factors and bad input as ValueError or RuntimeError: they become a FitError
        naming the model and ``fix``. Returns the fitted implicit model.
        """
        with threadpool_limits(1, "blas"):
            model = make()
            try:
                model.fit(self._x, show_progress=False)
            except (ValueError, RuntimeError) as exc:
                raise FitError(f"{self.name} failed to fit: {exc}; {fix}") from exc
        self._user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self._item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return model

    def _latent_item_factors(self) -> np.ndarray:
        return self._item_factors

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """Cosine similarity of the item factor vectors, float32 [len(item_idx), len(to_items)]."""
        self._check_fitted()
        v = self._latent_item_factors()
        return _cosine(v[np.asarray(item_idx, dtype=np.int64)], v[np.asarray(to_items, dtype=np.int64)])


@dataclass(frozen=True)
class ALSConfig(ModelConfig):
    factors: int = param(64, low=2, high=512, step=1, help="Number of latent factors.")
    regularization: float = param(0.05, low=0.0, high=10.0, step=0.01, help="L2 penalty on the factors.")
    iterations: int = param(15, low=1, high=200, step=1, help="Alternating least-squares sweeps.")
    alpha: float = param(1.0, low=0.01, high=100.0, step=0.1, log=True, help="Confidence scale of observed cells.")
    use_ratings: bool = param(False, help="Use rating values as confidences instead of 1 per interaction.")


@register
class ALS(_FactorModel[ALSConfig]):
    """Implicit-feedback ALS (implicit.cpu.als.AlternatingLeastSquares)."""

    name = "als"
    label = "ALS"
    kind = "user"
    config_cls = ALSConfig
    description = "Matrix factorisation for implicit feedback by alternating least squares (implicit library)."

    def _fit(self, train: Interactions, context: Context) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        self._x = interaction_matrix(train, cfg.use_ratings)
        context.report(0.0, "ALS: fitting")
        self._model = self._fit_model(
            lambda: AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                num_threads=1,
            ),
            "try a larger regularization or fewer factors",
        )
        context.report(1.0, "ALS: done")

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        n_items = self._item_factors.shape[0]
        if item_idx.size == 0:
            return np.full(n_items, np.nan, dtype=np.float32)
        row = profile_row(item_idx, values, n_items, self.config.use_ratings)
        with threadpool_limits(1, "blas"):
            user = self._model.recalculate_user(0, row)
        return np.asarray(self._item_factors @ np.asarray(user, dtype=np.float32), dtype=np.float32)


@dataclass(frozen=True)
class BPRConfig(ModelConfig):
    factors: int = param(64, low=2, high=512, step=1, help="Number of latent factors.")
    learning_rate: float = param(0.005, low=0.0001, high=1.0, step=0.001, log=True, help="SGD step size.")
    regularization: float = param(0.01, low=0.0, high=1.0, step=0.001, help="L2 penalty on the factors.")
    iterations: int = param(100, low=1, high=1000, step=1, help="Training epochs.")


@register
class BPR(_FactorModel[BPRConfig]):
    """Bayesian personalised ranking (implicit.cpu.bpr.BayesianPersonalizedRanking), one thread."""

    name = "bpr"
    label = "BPR"
    kind = "user"
    config_cls = BPRConfig
    description = "Matrix factorisation trained to rank each user's items above the others (implicit library)."

    def _fit(self, train: Interactions, context: Context) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg = self.config
        self._x = train.binary()  # BPR treats every stored cell as a positive whatever its value
        context.report(0.0, "BPR: fitting")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # implicit warns when a user likes every item
            self._fit_model(
                lambda: BayesianPersonalizedRanking(
                    factors=cfg.factors,
                    learning_rate=cfg.learning_rate,
                    regularization=cfg.regularization,
                    iterations=cfg.iterations,
                    random_state=cfg.seed,
                    num_threads=1,
                ),
                "try a smaller learning_rate",
            )
        context.report(1.0, "BPR: done")

    def _latent_item_factors(self) -> np.ndarray:
        # The last column is the item bias (popularity), not taste: leave it out of similarity.
        return self._item_factors[:, :-1]

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        v = self._item_factors.astype(np.float64)
        n_items = v.shape[0]
        positives = np.unique(item_idx)
        if positives.size == 0:
            return np.full(n_items, np.nan, dtype=np.float32)
        negatives = np.setdiff1d(np.arange(n_items), positives, assume_unique=True)
        if negatives.size == 0:
            # Nothing to rank the profile against: the item bias is all the model knows.
            return self._item_factors[:, -1].astype(np.float32)
        if negatives.size > _FOLD_IN_NEGATIVES:
            rng = np.random.default_rng(self.config.seed)
            negatives = np.sort(rng.choice(negatives, _FOLD_IN_NEGATIVES, replace=False))
        user = np.zeros(v.shape[1])
        user[-1] = 1.0  # implicit's bias column: the user side is the constant 1
        step = self.config.learning_rate * positives.size
        vp, vn = v[positives], v[negatives]
        for _ in range(self.config.iterations):
            # x_ij = u . (v_i - v_j); d/du ln sigmoid(x_ij) = sigmoid(-x_ij) (v_i - v_j)
            x = (vp @ user)[:, None] - (vn @ user)[None, :]
            w = 1.0 / (1.0 + np.exp(np.clip(x, -50, 50)))
            grad = (w.sum(axis=1) @ vp - w.sum(axis=0) @ vn) / w.size - self.config.regularization * user
            grad[-1] = 0.0
            user += step * grad
        return np.asarray(v @ user, dtype=np.float32)
