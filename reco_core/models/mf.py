"""Explicit matrix factorisation on ratings (biases + factors), squared loss with L2, trained in torch.

    r_hat(u, i) = mu + b_u + b_i + p_u . q_i
    loss = mean over a mini-batch of observed (u, i, r) of
           (r - r_hat(u, i))^2 + reg * (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)

``mu`` is the training mean (fixed); the rest is learnt with mini-batch Adam on the CPU, one torch
thread, a seeded ``torch.Generator`` for the initial factors (normal, std ``init_std``) and the
shuffles, so the same seed gives the same numbers. ``score`` is the predicted rating of every item.

A rating predictor ranks poorly for top-k over all items: it models how much a user would like an
item *if* they rated it, not which items they choose to watch, so obscure items with a few high
ratings rise to the top. Its NDCG@10 on ML-100K is reported as measured in docs/models.md.

Users or items with no training rating keep zero factors and biases: they are predicted at
``mu + b_u`` (or ``mu + b_i``), a prior, not a random guess.

Unseen profile: fold-in by ridge regression with the item parameters frozen. With X the rows
[q_j, 1] of the profile's items and y_j = r_j - mu - b_j, [p; b] = (X^T X + reg * n * I)^-1 X^T y
(n = profile length, matching the per-rating L2 of training). A profile given without ratings
(every value 1, the default for a list of liked items) is read as liked items, each at the
highest rating seen in training, when the training ratings go above 1.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from reco_core.data import Interactions
from reco_core.models.base import Context, ModelConfig, Scorer, param, register
from reco_core.models.content import unit_rows


@dataclass(frozen=True)
class MFConfig(ModelConfig):
    factors: int = param(64, low=2, high=256, step=2, help="Length of the user and item factor vectors.")
    epochs: int = param(30, low=1, high=500, step=1, help="Passes over the training ratings.")
    lr: float = param(0.02, low=1e-4, high=0.5, log=True, help="Adam learning rate.")
    reg: float = param(0.1, low=0.0, high=10.0, help="L2 weight on the factors and biases of each rating.")
    batch_size: int = param(4096, low=16, high=1_000_000, step=16, help="Ratings per Adam step.")
    init_std: float = param(0.1, low=1e-4, high=1.0, log=True, help="Std of the normal initial factors.")


# torch's thread count is process-wide: two fits in two threads (two dashboard sessions) must not
# change it under each other, so torch work inside ``torch_threads`` is serialised by this lock.
_TORCH_LOCK = threading.RLock()


class torch_threads:
    """Context manager: run torch with ``n`` intra-op threads, then restore the previous count.

    One thread makes the float reductions' order, and so the result, the same on every run. Holds a
    process-wide lock for its duration, so concurrent fits cannot change each other's thread count.
    """

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def __enter__(self) -> None:
        _TORCH_LOCK.acquire()
        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        try:
            torch.set_num_threads(self.previous)
        finally:
            _TORCH_LOCK.release()


@register
class MatrixFactorization(Scorer[MFConfig]):
    """Biased MF on explicit ratings (squared loss + L2); scores are predicted ratings."""

    name = "mf"
    label = "Matrix factorisation (ratings)"
    kind = "user"
    config_cls = MFConfig
    description = "Predicts each rating as global mean + user bias + item bias + a dot product of learnt factors."

    def _fit(self, train: Interactions, context: Context) -> None:
        cfg = self.config
        coo = train.matrix.tocoo()
        users = torch.from_numpy(coo.row.astype(np.int64))
        items = torch.from_numpy(coo.col.astype(np.int64))
        ratings = torch.from_numpy(coo.data.astype(np.float32))
        n_users, n_items = train.n_users, train.n_items
        self._mu = float(ratings.mean()) if len(ratings) else 0.0
        self._max_rating = float(ratings.max()) if len(ratings) else 1.0
        with torch_threads(1):
            gen = torch.Generator().manual_seed(int(cfg.seed))
            p = (torch.randn(n_users, cfg.factors, generator=gen) * cfg.init_std).requires_grad_()
            q = (torch.randn(n_items, cfg.factors, generator=gen) * cfg.init_std).requires_grad_()
            bu = torch.zeros(n_users, requires_grad=True)
            bi = torch.zeros(n_items, requires_grad=True)
            opt = torch.optim.Adam([p, q, bu, bi], lr=cfg.lr)
            n = len(ratings)
            for epoch in range(cfg.epochs):
                order = torch.randperm(n, generator=gen)
                for start in range(0, n, cfg.batch_size):
                    b = order[start : start + cfg.batch_size]
                    u, i, r = users[b], items[b], ratings[b]
                    pu, qi, bu_b, bi_b = p[u], q[i], bu[u], bi[i]
                    pred = self._mu + bu_b + bi_b + (pu * qi).sum(1)
                    penalty = (pu * pu).sum(1) + (qi * qi).sum(1) + bu_b * bu_b + bi_b * bi_b
                    loss = ((r - pred) ** 2 + cfg.reg * penalty).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                context.report((epoch + 1) / cfg.epochs, f"mf: epoch {epoch + 1} of {cfg.epochs}")
        self._p = p.detach().numpy().astype(np.float32)
        self._q = q.detach().numpy().astype(np.float32)
        self._bu = bu.detach().numpy().astype(np.float32)
        self._bi = bi.detach().numpy().astype(np.float32)
        # Parameters of users/items without a rating were never trained: zero them (a prior, not noise).
        self._p[train.user_counts() == 0] = 0.0
        self._bu[train.user_counts() == 0] = 0.0
        self._q[train.item_counts() == 0] = 0.0
        self._bi[train.item_counts() == 0] = 0.0

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._mu + self._bu[user_idx, None] + self._bi[None, :] + self._p[user_idx] @ self._q.T

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        if len(item_idx) == 0:
            return self._mu + self._bi.copy()
        ratings = values.astype(np.float64)
        if self._max_rating > 1.0 and np.all(ratings == 1.0):
            ratings = np.full_like(ratings, self._max_rating)
        x = np.hstack([self._q[item_idx].astype(np.float64), np.ones((len(item_idx), 1))])
        y = ratings - self._mu - self._bi[item_idx]
        lam = self.config.reg * len(item_idx)
        w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        return (self._mu + w[-1] + self._bi + self._q @ w[:-1].astype(np.float32)).astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        """float32 [n_items, factors]: the item factors q_i."""
        self._check_fitted()
        return self._q.copy()

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """Cosine of item factors, float32 [len(item_idx), len(to_items)]."""
        self._check_fitted()
        q = unit_rows(self._q)
        return (q[np.asarray(item_idx, dtype=np.int64)] @ q[np.asarray(to_items, dtype=np.int64)].T).astype(np.float32)
