"""A two-tower model over ids in torch (``neural``), and the two-tower machinery ``hybrid`` shares.

Towers. Each side is an id embedding plus, optionally, a linear projection of dense side features
(empty for ``neural``; genres, text, demographics for ``hybrid``):

    u = E_user[u] + F_user[u] W_user          (d numbers)
    v_i = E_item[i] + F_item[i] W_item
    score(u, i) = u . v_i + b_i

Concatenating feature groups and applying one linear layer is the same as summing one projection
per group, so each group adds ``width x d`` weights and nothing else.

Training, on the binary train matrix (every stored cell is a positive; ratings are ignored):
- ``softmax`` (default): for a batch of users, a full softmax over the catalogue,
  loss = -(1/|P_B|) sum_{(u,i) in P_B} log softmax_i(score(u, .)). Exact (no sampling), cheap while
  batch x n_items fits in memory; this is what "sampled softmax" approaches when every item is sampled.
- ``bpr``: for each positive (u, i) one item j drawn uniformly from the catalogue,
  loss = -mean log sigmoid(score(u, i) - score(u, j)).
Both add ``reg * (mean_B |u|^2 + mean_items |v_i|^2)``, an L2 on the tower outputs, so features and
ids are regularised alike. Adam, CPU, one torch thread; id embeddings start from a seeded
``torch.Generator`` (normal, std ``init_std``; projections and biases start at zero), and the same
generator drives shuffles and negatives: the same seed gives identical scores.

Unseen profile (fold-in): the item tower and the user features stay fixed; a fresh user id
embedding e, starting at zero, is fitted to the profile by ``fold_in_steps`` Adam steps on the
training loss (softmax over the catalogue with the profile as positives; for ``bpr`` the exact
mean over profile items j and all other items k of -log sigmoid(s_j - s_k)) plus ``reg |u|^2``.
There is no sampling, so the result is deterministic. An empty profile scores the item bias b_i
plus the feature part of the user tower (which for ``neural`` is the item bias alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch.nn import functional as F

from reco_core.data import Interactions
from reco_core.models.base import Context, ModelConfig, Scorer, param, register
from reco_core.models.content import unit_rows
from reco_core.models.mf import torch_threads

LOSSES = ("softmax", "bpr")


@dataclass(frozen=True)
class TwoTowerConfig(ModelConfig):
    """Training settings shared by ``neural`` and ``hybrid``."""

    factors: int = param(64, low=4, high=512, step=4, help="Length of the user and item vectors.")
    loss: str = param("softmax", choices=LOSSES, help="Full softmax over the catalogue, or BPR with one negative.")
    epochs: int = param(40, low=1, high=1000, step=1, help="Passes over the training users (softmax) or pairs (bpr).")
    lr: float = param(0.01, low=1e-4, high=0.5, log=True, help="Adam learning rate.")
    reg: float = param(0.1, low=0.0, high=10.0, help="L2 weight on the user and item tower outputs.")
    batch_users: int = param(128, low=1, high=100_000, step=1, help="Users per Adam step (softmax loss).")
    batch_pairs: int = param(1024, low=1, high=10_000_000, step=1, help="(user, item) pairs per Adam step (bpr loss).")
    init_std: float = param(0.1, low=1e-4, high=1.0, log=True, help="Std of the normal initial weights.")
    fold_in_steps: int = param(50, low=1, high=1000, step=1, help="Adam steps that fit a new profile's user vector.")


TwoTowerConfigT = TypeVar("TwoTowerConfigT", bound=TwoTowerConfig)


class TwoTowerNet(torch.nn.Module):
    """Id embeddings plus linear projections of fixed dense features (widths may be 0)."""

    # Registered as buffers in __init__; declared here because Module.__getattr__ says Tensor | Module.
    user_features: torch.Tensor
    item_features: torch.Tensor

    def __init__(
        self,
        user_features: torch.Tensor,
        item_features: torch.Tensor,
        factors: int,
        init_std: float,
        gen: torch.Generator,
    ) -> None:
        super().__init__()
        n_users, n_items = user_features.shape[0], item_features.shape[0]
        self.register_buffer("user_features", user_features)
        self.register_buffer("item_features", item_features)
        self.user_id = torch.nn.Parameter(torch.randn(n_users, factors, generator=gen) * init_std)
        self.item_id = torch.nn.Parameter(torch.randn(n_items, factors, generator=gen) * init_std)
        self.item_bias = torch.nn.Parameter(torch.zeros(n_items))
        # Projections start at zero: an ids-only model then draws exactly the same initial weights
        # as ``neural`` with the same seed, and a feature column that never occurs in training keeps
        # a zero weight instead of adding a random vector at scoring time. They still learn, because
        # the gradient of u = e + f W with respect to W is f^T dL/du.
        fu, fi = user_features.shape[1], item_features.shape[1]
        self.user_proj = torch.nn.Parameter(torch.zeros(fu, factors)) if fu else None
        self.item_proj = torch.nn.Parameter(torch.zeros(fi, factors)) if fi else None

    def user_feature_part(self, features: torch.Tensor) -> torch.Tensor:
        if self.user_proj is None:
            return torch.zeros(features.shape[0], self.user_id.shape[1])
        return features @ self.user_proj

    def users(self, idx: torch.Tensor) -> torch.Tensor:
        return self.user_id[idx] + self.user_feature_part(self.user_features[idx])

    def item_feature_part(self) -> torch.Tensor:
        if self.item_proj is None:
            return torch.zeros_like(self.item_id)
        return self.item_features @ self.item_proj

    def items(self) -> torch.Tensor:
        if self.item_proj is None:
            return self.item_id
        return self.item_id + self.item_feature_part()


def _softmax_loss(u: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-softmax of the positive cells of ``targets`` (dense 0/1, [B, n_items])."""
    logp = F.log_softmax(u @ v.T + bias, dim=1)
    return -(logp * targets).sum() / targets.sum().clamp_min(1.0)


def train_two_tower(
    matrix: sp.csr_matrix,
    user_features: np.ndarray,
    item_features: np.ndarray,
    cfg: TwoTowerConfig,
    context: Context,
    label: str,
) -> TwoTowerNet:
    """Fit a ``TwoTowerNet`` on the binary pattern of ``matrix``; deterministic for ``cfg.seed``."""
    binary = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    if binary.nnz == 0:  # no step would run: say so instead of failing on an unset loss
        from reco_core.errors import DataError

        raise DataError(f"{label} has no training interactions to learn from: fit it on a non-empty train split")
    n_items = binary.shape[1]
    with torch_threads(1):
        gen = torch.Generator().manual_seed(int(cfg.seed))
        net = TwoTowerNet(
            torch.from_numpy(np.ascontiguousarray(user_features, dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(item_features, dtype=np.float32)),
            cfg.factors,
            cfg.init_std,
            gen,
        )
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        active = np.flatnonzero(np.diff(binary.indptr) > 0)
        coo = binary.tocoo()
        pair_users = torch.from_numpy(coo.row.astype(np.int64))
        pair_items = torch.from_numpy(coo.col.astype(np.int64))
        for epoch in range(cfg.epochs):
            if cfg.loss == "softmax":
                order = active[torch.randperm(len(active), generator=gen).numpy()]
                for start in range(0, len(order), cfg.batch_users):
                    rows = order[start : start + cfg.batch_users]
                    targets = torch.from_numpy(binary[rows].toarray())
                    u = net.users(torch.from_numpy(rows))
                    v = net.items()
                    loss = _softmax_loss(u, v, net.item_bias, targets)
                    loss = loss + cfg.reg * ((u * u).sum(1).mean() + (v * v).sum(1).mean())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            else:
                order = torch.randperm(len(pair_users), generator=gen)
                negatives = torch.randint(0, n_items, (len(pair_users),), generator=gen)
                for start in range(0, len(order), cfg.batch_pairs):
                    b = order[start : start + cfg.batch_pairs]
                    u = net.users(pair_users[b])
                    v = net.items()
                    vi, vj = v[pair_items[b]], v[negatives[b]]
                    diff = (u * (vi - vj)).sum(1) + net.item_bias[pair_items[b]] - net.item_bias[negatives[b]]
                    loss = -F.logsigmoid(diff).mean()
                    loss = loss + cfg.reg * ((u * u).sum(1).mean() + (vi * vi).sum(1).mean() + (vj * vj).sum(1).mean())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            if not torch.isfinite(loss):
                from reco_core.errors import FitError

                raise FitError(f"{label} diverged at epoch {epoch + 1} (loss {float(loss)}): lower lr or raise reg")
            context.report((epoch + 1) / cfg.epochs, f"{label}: epoch {epoch + 1} of {cfg.epochs}")
    net.eval()
    return net


@dataclass
class TwoTowerState:
    """The fitted towers as plain arrays: user vectors, item vectors, item bias."""

    users: np.ndarray  # float32 [n_users, d]
    items: np.ndarray  # float32 [n_items, d]
    bias: np.ndarray  # float32 [n_items]

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.users[user_idx] @ self.items.T + self.bias[None, :]


def export_state(net: TwoTowerNet, matrix: sp.csr_matrix) -> TwoTowerState:
    """Tower outputs as arrays; users and items without training interactions keep only their feature part.

    A cold user's id embedding never saw a gradient, and a cold item's only ever saw "not this one"
    from other users' positives: either is noise, so the features alone place them (for ``neural``,
    without features, a cold item is scored by its bias alone).
    """
    with torch.no_grad():
        users = net.users(torch.arange(net.user_id.shape[0])).numpy().copy()
        cold_users = np.diff(matrix.indptr) == 0
        if cold_users.any():
            rows = torch.from_numpy(np.flatnonzero(cold_users))
            users[cold_users] = net.user_feature_part(net.user_features[rows]).numpy()
        items = net.items().numpy().copy()
        cold_items = np.bincount(matrix.indices, minlength=items.shape[0]) == 0
        if cold_items.any():
            items[cold_items] = net.item_feature_part().numpy()[cold_items]
        bias = net.item_bias.numpy().copy()
    return TwoTowerState(users.astype(np.float32), items.astype(np.float32), bias.astype(np.float32))


def fold_in(state: TwoTowerState, feature_part: np.ndarray, item_idx: np.ndarray, cfg: TwoTowerConfig) -> np.ndarray:
    """Scores for an unseen profile: fit a user id vector e (from 0), u = e + feature_part."""
    v = torch.from_numpy(state.items)
    b = torch.from_numpy(state.bias)
    f = torch.from_numpy(np.asarray(feature_part, dtype=np.float32)).reshape(1, -1)
    items = np.unique(np.asarray(item_idx, dtype=np.int64))
    if len(items) == 0:
        return (f @ v.T + b).numpy()[0].astype(np.float32)
    with torch_threads(1), torch.enable_grad():
        e = torch.zeros_like(f, requires_grad=True)
        opt = torch.optim.Adam([e], lr=cfg.lr * 5)
        pos = torch.from_numpy(items)
        mask = torch.ones(v.shape[0], dtype=torch.bool)
        mask[pos] = False
        targets = torch.zeros(1, v.shape[0])
        targets[0, pos] = 1.0
        for _ in range(cfg.fold_in_steps):
            u = e + f
            if cfg.loss == "softmax":
                loss = _softmax_loss(u, v, b, targets)
            else:
                s = (u @ v.T + b)[0]
                loss = -F.logsigmoid(s[pos][:, None] - s[mask][None, :]).mean()
            loss = loss + cfg.reg * (u * u).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        u = (e + f).detach()
    return (u @ v.T + b).numpy()[0].astype(np.float32)


class TwoTowerScorer(Scorer[TwoTowerConfigT]):
    """What every two-tower model shares once fitted: scores from its ``TwoTowerState``, item vectors and
    their cosine. Subclasses fit (setting ``_state``) and fold in profiles."""

    _state: TwoTowerState

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._state.score(user_idx)

    def item_embeddings(self) -> np.ndarray:
        """float32 [n_items, factors]: the item tower's output vectors."""
        self._check_fitted()
        return self._state.items.copy()

    def similar_items(self, item_idx: np.ndarray, to_items: np.ndarray) -> np.ndarray:
        """Cosine of item-tower vectors, float32 [len(item_idx), len(to_items)]."""
        self._check_fitted()
        v = unit_rows(self._state.items)
        return (v[np.asarray(item_idx, dtype=np.int64)] @ v[np.asarray(to_items, dtype=np.int64)].T).astype(np.float32)


@dataclass(frozen=True)
class NeuralConfig(TwoTowerConfig):
    """Two-tower over ids only."""


@register
class NeuralTwoTower(TwoTowerScorer[NeuralConfig]):
    """Two-tower over user and item ids (a learnt dot product), trained with softmax or BPR."""

    name = "neural"
    label = "Neural two-tower (ids)"
    kind = "user"
    config_cls = NeuralConfig
    description = "Learns a vector per user and per item in torch so that watched items score above the rest."

    def _fit(self, train: Interactions, context: Context) -> None:
        none_u = np.zeros((train.n_users, 0), dtype=np.float32)
        none_i = np.zeros((train.n_items, 0), dtype=np.float32)
        net = train_two_tower(train.matrix, none_u, none_i, self.config, context, self.name)
        self._state = export_state(net, train.matrix)

    def _score_profile(self, item_idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return fold_in(self._state, np.zeros(self.config.factors, dtype=np.float32), item_idx, self.config)
